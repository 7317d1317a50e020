//! tftp-bench-client: the TFTP client `scripts/bench-tftp.sh` measures servers with.
//!
//! None of the packaged clients both asks for `windowsize` (RFC 7440) and runs hundreds
//! of transfers at once, so the benchmark brings its own. It is written from the RFCs
//! and shares no code with bootd's TFTP implementation, so it cannot hide a bootd bug.
//!
//! One thread, one mio loop, one UDP socket per transfer (its own TID). Each transfer
//! sends an RRQ with `blksize`, `tsize` and (optionally) `windowsize`, takes what the
//! OACK grants (512 bytes and a window of 1 when the server answers with DATA directly),
//! ACKs every W-th in-order block and the last, ACKs the last in-order block once on a
//! gap or a duplicate, resends its last packet after a quiet second, and fails after an
//! overall deadline. Every block is compared with the reference file as it arrives, and
//! the length is checked at the end (and against `tsize`): byte-for-byte verification.
//!
//! Prints one `key=value` line on stdout; failures go to stderr. `first_end` and
//! `last_end` are when the first and the last transfer ended, in seconds from the
//! first RRQ: far apart, the server served some clients before others.
//! MB/s are 10^6 bytes per second.
//!
//! ```text
//! tftp-bench-client --server 10.97.0.11 --file big.bin --reference /path/big.bin \
//!     [--port 69] [--bind 10.97.0.2] [--blksize 1468] [--windowsize 16] \
//!     [--count 200] [--timeout 120] [--probe]
//! ```
//!
//! `--probe` stops each transfer (ERROR 0) at the OACK or the first DATA: it only
//! reports what the server grants.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

const OP_RRQ: u16 = 1;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;
/// Resend the last packet after this long without hearing from the server.
const QUIET: Duration = Duration::from_secs(1);
/// Resends of the same packet before the transfer is given up.
const MAX_RESENDS: u32 = 8;

struct Options {
    server: IpAddr,
    port: u16,
    bind: IpAddr,
    file: String,
    reference: String,
    blksize: Option<u16>,
    windowsize: Option<u16>,
    count: usize,
    timeout: Duration,
    probe: bool,
}

fn usage() -> String {
    "usage: tftp-bench-client --server ADDR --file NAME --reference PATH [--port N] \
     [--bind ADDR] [--blksize N] [--windowsize N] [--count N] [--timeout SECS] [--probe]"
        .to_string()
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        server: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 69,
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        file: String::new(),
        reference: String::new(),
        blksize: None,
        windowsize: None,
        count: 1,
        timeout: Duration::from_secs(120),
        probe: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--server" => o.server = value()?.parse().map_err(|e| bad(&e))?,
            "--port" => o.port = value()?.parse().map_err(|e| bad(&e))?,
            "--bind" => o.bind = value()?.parse().map_err(|e| bad(&e))?,
            "--file" => o.file = value()?,
            "--reference" => o.reference = value()?,
            "--blksize" => o.blksize = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--windowsize" => o.windowsize = Some(value()?.parse().map_err(|e| bad(&e))?),
            "--count" => o.count = value()?.parse().map_err(|e| bad(&e))?,
            "--timeout" => {
                o.timeout = Duration::from_secs_f64(value()?.parse().map_err(|e| bad(&e))?)
            }
            "--probe" => o.probe = true,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if o.server.is_unspecified() || o.file.is_empty() || o.reference.is_empty() || o.count == 0 {
        return Err(usage());
    }
    Ok(o)
}

#[derive(PartialEq)]
enum State {
    /// RRQ sent, nothing heard yet.
    Requested,
    /// OACK or DATA seen.
    Receiving,
    Done,
    Failed(String),
}

struct Xfer {
    socket: UdpSocket,
    /// The server's transfer endpoint (its TID), learned from its first answer.
    tid: Option<SocketAddr>,
    state: State,
    blksize: usize,
    window: u16,
    tsize: Option<u64>,
    /// What the OACK granted (0: not acknowledged).
    granted_blksize: u16,
    granted_window: u16,
    /// Next block number expected (wraps past 65535 to 0).
    expected: u16,
    received: usize,
    since_ack: u16,
    /// A gap/duplicate ACK was sent and no in-order block has come since.
    complained: bool,
    last_sent: Vec<u8>,
    /// Last time the transfer moved on (OACK, in-order DATA) or we resent.
    last_progress: Instant,
    resends: u32,
    started: Instant,
    ended: Option<Instant>,
}

fn rrq(o: &Options) -> Vec<u8> {
    let mut p = OP_RRQ.to_be_bytes().to_vec();
    let mut put = |s: &str| {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    };
    put(&o.file);
    put("octet");
    put("tsize");
    put("0");
    if let Some(b) = o.blksize {
        put("blksize");
        put(&b.to_string());
    }
    if let Some(w) = o.windowsize {
        put("windowsize");
        put(&w.to_string());
    }
    p
}

fn ack(block: u16) -> Vec<u8> {
    let mut p = OP_ACK.to_be_bytes().to_vec();
    p.extend_from_slice(&block.to_be_bytes());
    p
}

fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let mut p = OP_ERROR.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(message.as_bytes());
    p.push(0);
    p
}

/// OACK body: NUL-terminated name/value pairs.
fn oack_options(body: &[u8]) -> Vec<(String, String)> {
    let fields: Vec<String> = body
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    fields
        .chunks(2)
        .filter(|c| c.len() == 2 && !c[0].is_empty())
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

impl Xfer {
    fn send(&mut self, packet: Vec<u8>, to: SocketAddr) {
        // A full buffer is a lost packet: the quiet-timer resends it.
        let _ = self.socket.send_to(&packet, to);
        self.last_sent = packet;
    }

    fn fail(&mut self, why: String) {
        if matches!(self.state, State::Requested | State::Receiving) {
            self.state = State::Failed(why);
            self.ended = Some(Instant::now());
        }
    }

    fn on_datagram(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        reference: &[u8],
        probe: bool,
        now: Instant,
    ) {
        if !matches!(self.state, State::Requested | State::Receiving) {
            return;
        }
        match self.tid {
            None => self.tid = Some(from),
            Some(tid) if tid != from => {
                let _ = self
                    .socket
                    .send_to(&error_packet(5, "unknown transfer ID"), from);
                return;
            }
            Some(_) => {}
        }
        if datagram.len() < 4 {
            return;
        }
        let opcode = u16::from_be_bytes([datagram[0], datagram[1]]);
        let word = u16::from_be_bytes([datagram[2], datagram[3]]);
        match opcode {
            OP_OACK => {
                if self.state == State::Requested {
                    for (name, value) in oack_options(&datagram[2..]) {
                        match name.as_str() {
                            "blksize" => {
                                self.granted_blksize = value.parse().unwrap_or(0);
                                self.blksize = self.granted_blksize as usize;
                            }
                            "windowsize" => {
                                self.granted_window = value.parse().unwrap_or(0);
                                self.window = self.granted_window.max(1);
                            }
                            "tsize" => self.tsize = value.parse().ok(),
                            _ => {}
                        }
                    }
                    if self.blksize < 8 {
                        let to = from;
                        self.send(error_packet(8, "bad blksize"), to);
                        self.fail(format!("OACK with blksize {}", self.blksize));
                        return;
                    }
                    self.state = State::Receiving;
                    self.last_progress = now;
                    self.resends = 0;
                    if probe {
                        self.send(error_packet(0, "probe only"), from);
                        self.state = State::Done;
                        self.ended = Some(now);
                        return;
                    }
                }
                if self.received == 0 {
                    // First or repeated OACK before any data: (re)acknowledge it.
                    self.send(ack(0), from);
                }
            }
            OP_DATA => {
                // DATA 1 without an OACK: the server took none of the options.
                self.state = State::Receiving;
                if probe {
                    self.send(error_packet(0, "probe only"), from);
                    self.state = State::Done;
                    self.ended = Some(now);
                    return;
                }
                let payload = &datagram[4..];
                if word != self.expected {
                    // A gap (RFC 7440) or a duplicate: ACK the last in-order block, once
                    // per window (the quiet timer resends it); in lock-step always, as
                    // the server is resending because our ACK was lost.
                    if !self.complained || self.window == 1 {
                        self.complained = true;
                        self.since_ack = 0;
                        self.send(ack(self.expected.wrapping_sub(1)), from);
                    }
                    return;
                }
                if payload.len() > self.blksize {
                    self.fail(format!("block {word}: {} bytes", payload.len()));
                    return;
                }
                let end = self.received + payload.len();
                if end > reference.len() || reference[self.received..end] != *payload {
                    self.send(error_packet(0, "data mismatch"), from);
                    self.fail(format!("data differs from the reference in block {word}"));
                    return;
                }
                self.received = end;
                self.last_progress = now;
                self.resends = 0;
                self.expected = word.wrapping_add(1);
                self.complained = false;
                self.since_ack += 1;
                if payload.len() < self.blksize {
                    self.send(ack(word), from);
                    if self.received != reference.len() {
                        self.fail(format!(
                            "short file: {} of {} bytes",
                            self.received,
                            reference.len()
                        ));
                    } else if self.tsize.is_some_and(|t| t != reference.len() as u64) {
                        self.fail(format!("tsize {:?} is wrong", self.tsize));
                    } else {
                        self.state = State::Done;
                        self.ended = Some(now);
                    }
                } else if self.since_ack >= self.window {
                    self.since_ack = 0;
                    self.send(ack(word), from);
                }
            }
            OP_ERROR => {
                let message = String::from_utf8_lossy(&datagram[4..]);
                let message = message.trim_end_matches('\0');
                self.fail(format!("server error {word}: {message}"));
            }
            other => self.fail(format!("unexpected opcode {other}")),
        }
    }

    fn on_tick(&mut self, server: SocketAddr, deadline: Duration, now: Instant) {
        if !matches!(self.state, State::Requested | State::Receiving) {
            return;
        }
        if now.duration_since(self.started) > deadline {
            self.fail(format!(
                "timed out after {:.0} s with {} bytes",
                deadline.as_secs_f64(),
                self.received
            ));
        } else if now.duration_since(self.last_progress) >= QUIET {
            if self.resends >= MAX_RESENDS {
                self.fail(format!("server silent, {} bytes received", self.received));
                return;
            }
            self.resends += 1;
            self.last_progress = now;
            self.complained = false;
            let to = self.tid.unwrap_or(server);
            let packet = std::mem::take(&mut self.last_sent);
            self.send(packet, to);
        }
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn run(o: &Options) -> io::Result<bool> {
    let reference = std::fs::read(&o.reference)?;
    let server = SocketAddr::new(o.server, o.port);
    let mut poll = Poll::new()?;
    let request = rrq(o);
    let mut xfers = Vec::with_capacity(o.count);
    for i in 0..o.count {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        // As large as the host allows (net.core.rmem_max): 200 windows in flight.
        let _ = socket.set_recv_buffer_size(4 << 20);
        socket.set_nonblocking(true)?;
        socket.bind(&SocketAddr::new(o.bind, 0).into())?;
        let mut socket = UdpSocket::from_std(socket.into());
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)?;
        let now = Instant::now();
        xfers.push(Xfer {
            socket,
            tid: None,
            state: State::Requested,
            blksize: 512,
            window: 1,
            tsize: None,
            granted_blksize: 0,
            granted_window: 0,
            expected: 1,
            received: 0,
            since_ack: 0,
            complained: false,
            last_sent: Vec::new(),
            last_progress: now,
            resends: 0,
            started: now,
            ended: None,
        });
    }
    let cpu_before = cpu_seconds();
    let first = Instant::now();
    for x in &mut xfers {
        x.started = Instant::now();
        x.last_progress = x.started;
        x.send(request.clone(), server);
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 65536];
    let mut live = xfers.len();
    let mut last_tick = Instant::now();
    while live > 0 {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for event in events.iter() {
            let x = &mut xfers[event.token().0];
            loop {
                match x.socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        x.on_datagram(&buf[..n], from, &reference, o.probe, Instant::now())
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        x.fail(format!("receive error: {e}"));
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= Duration::from_millis(50) {
            last_tick = now;
            for x in &mut xfers {
                x.on_tick(server, o.timeout, now);
            }
        }
        live = xfers
            .iter()
            .filter(|x| matches!(x.state, State::Requested | State::Receiving))
            .count();
    }
    let cpu = cpu_seconds() - cpu_before;
    let last = xfers.iter().filter_map(|x| x.ended).max().unwrap_or(first);
    let earliest = xfers.iter().filter_map(|x| x.ended).min().unwrap_or(first);
    let wall = last.duration_since(first).as_secs_f64().max(1e-9);
    let mut ok = 0;
    let mut bytes = 0u64;
    for (i, x) in xfers.iter().enumerate() {
        match &x.state {
            State::Done => {
                ok += 1;
                bytes += x.received as u64;
            }
            State::Failed(why) => eprintln!("transfer {i}: {why}"),
            _ => {}
        }
    }
    // Single-transfer rate: that transfer's own time; aggregate: first RRQ to last end.
    let first_x = &xfers[0];
    println!(
        "transfers={} ok={} failed={} bytes={} seconds={:.3} mbps={:.2} blksize={} \
         windowsize={} tsize={} client_cpu={:.3} first_end={:.3} last_end={:.3}",
        xfers.len(),
        ok,
        xfers.len() - ok,
        bytes,
        wall,
        bytes as f64 / wall / 1e6,
        first_x.granted_blksize,
        first_x.granted_window,
        first_x.tsize.map_or("-".into(), |t| t.to_string()),
        cpu,
        earliest.duration_since(first).as_secs_f64(),
        wall,
    );
    Ok(ok == xfers.len())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tftp-bench-client: {e}");
            ExitCode::from(2)
        }
    }
}
