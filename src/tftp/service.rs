//! The TFTP service thread: a mio loop around the listening socket(s) and one
//! ephemeral port per transfer (RFC 1350 TIDs, see `tid_socket`). Transfers are
//! keyed by client endpoint; retransmissions are driven by a timer wheel. All
//! protocol decisions live in `transfer`; this loop moves bytes and logs.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
// Looked up several times per block; foldhash keeps a random per-process seed.
use foldhash::{HashMap, HashSet};
use mio::{Events, Interest, Poll, Token, Waker};

use super::busy_poll::BusyPoll;
use super::file_cache::{FileCache, FileKey};
use super::path;
use super::source::{self, HttpChunk, OpenError, ReaderCount};
use super::tid_socket::TidSocket;
use super::timer::TimerWheel;
use super::transfer::{Datagram, Limits, Outcome, Transfer};
use super::wire::{self, ErrorCode, Packet, Request};
use crate::batch_receive::{self, ReceiveBatch};
use crate::config::{TftpConfig, TftpRoot};
use crate::event::{Event, Message};
use crate::filters::{self, Filters, Rewrite};
use crate::net;
use crate::service_loop::{self, WAKER};
use crate::sockets;

/// Listener tokens are 0..; transfer tokens start here.
const FIRST_TRANSFER_TOKEN: usize = 1 << 32;
/// Timer wheel: 10 ms ticks, 4096 slots (41 s per revolution).
const TICK: Duration = Duration::from_millis(10);
const SLOTS: usize = 4096;
/// Largest datagram a client may send us (an RRQ with options fits in far less).
const RECEIVE_BUFFER: usize = 65536;
/// MTU assumed when listening on 0.0.0.0, where the interface is not known.
const UNKNOWN_INTERFACE_MTU: u32 = 1500;

pub struct TftpService {
    pub config: TftpConfig,
    /// Where to listen from the start (`[tftp] address`, or detected with `-t`).
    pub address: Option<Ipv4Addr>,
    pub poll: Poll,
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    /// `[filters]` rules, in file order.
    pub filter_rules: Vec<crate::config::FilterRule>,
}

struct Listener {
    address: Ipv4Addr,
    socket: mio::net::UdpSocket,
    limits: Limits,
}

enum Source {
    /// A file under the root, shared with the other transfers reading it; `offset`
    /// is where the next bytes fed to the transfer start.
    Local { file: FileKey, offset: u64 },
    Http {
        chunks: Receiver<HttpChunk>,
        /// Last time the reader delivered anything (stall detection).
        progress: Instant,
    },
}

struct Active {
    client: SocketAddr,
    /// `client` as the socket calls take it (made once, used for every block).
    client_address: socket2::SockAddr,
    socket: TidSocket,
    token: Token,
    /// `None` while an HTTP source has not answered yet.
    transfer: Option<Transfer>,
    /// The request, kept until the HTTP answer gives the size for `tsize`.
    request: Request,
    limits: Limits,
    source: Source,
    /// What the client asked for and what was served (after filters).
    requested: String,
    served: String,
    started: Instant,
    /// The deadline the wheel holds for this transfer (see `drive`).
    armed: Option<Instant>,
}

struct Roots {
    dir: Option<PathBuf>,
    url: Option<String>,
}

pub struct Runner {
    config: TftpConfig,
    waker: Arc<Waker>,
    filters: Filters,
    roots: Roots,
    listeners: Vec<Listener>,
    transfers: HashMap<SocketAddr, Active>,
    files: FileCache,
    by_token: HashMap<Token, SocketAddr>,
    http_transfers: HashSet<SocketAddr>,
    wheel: TimerWheel<SocketAddr>,
    next_token: usize,
    readers: ReaderCount,
    datagram: Vec<u8>,
    batch: ReceiveBatch,
    expired: Vec<SocketAddr>,
    busy_poll: BusyPoll,
}

impl TftpService {
    pub fn run(self) -> Result<(), String> {
        let TftpService {
            config,
            address,
            mut poll,
            waker,
            inbox,
            filter_rules,
        } = self;
        let filters = Filters::new(&filter_rules).map_err(|e| e.to_string())?;
        let roots = match &config.root {
            TftpRoot::Dir(dir) => Roots {
                dir: Some(
                    dir.canonicalize()
                        .map_err(|e| format!("[tftp] root = {}: {e}", dir.display()))?,
                ),
                url: None,
            },
            TftpRoot::Url(url) => Roots {
                dir: None,
                url: Some(url.clone()),
            },
        };
        let mut runner = Runner {
            busy_poll: BusyPoll::new(config.busy_poll),
            config,
            waker,
            filters,
            roots,
            listeners: Vec::new(),
            transfers: HashMap::default(),
            files: FileCache::default(),
            by_token: HashMap::default(),
            http_transfers: HashSet::default(),
            wheel: TimerWheel::new(Instant::now(), TICK, SLOTS),
            next_token: FIRST_TRANSFER_TOKEN,
            readers: ReaderCount::default(),
            datagram: vec![0u8; RECEIVE_BUFFER],
            batch: ReceiveBatch::default(),
            expired: Vec::new(),
        };
        if let Some(address) = address {
            runner.listen(&poll, address)?;
        }
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = runner.wheel.next_timeout(Instant::now());
            if !runner.spin(&mut poll, &mut events, timeout)? {
                service_loop::poll(&mut poll, &mut events, timeout)
                    .map_err(|e| format!("poll failed: {e}"))?;
            }
            // One clock read serves the whole batch of events: timeouts are seconds.
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        let inbox = service_loop::drain(&inbox);
                        if inbox.stop {
                            return Ok(());
                        }
                        for e in inbox.events {
                            if let Event::ServerAddress(a) = e
                                && address.is_none()
                            {
                                runner.listen(&poll, a)?;
                            }
                        }
                        // HTTP readers wake this loop too.
                        runner.drive_http(&poll, now);
                    }
                    Token(i) if i < FIRST_TRANSFER_TOKEN => runner.on_listener(&poll, i),
                    token => runner.on_transfer_socket(&poll, token, now),
                }
            }
            runner.on_timers(&poll, now);
        }
    }
}

impl Runner {
    /// Polls without sleeping for as long as the busy-poll policy allows; true when
    /// events arrived (they are in `events`), false to go on to a sleeping poll.
    fn spin(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> Result<bool, String> {
        let start = Instant::now();
        let budget = self
            .busy_poll
            .spin_for(start, !self.transfers.is_empty(), timeout);
        if budget.is_zero() {
            return Ok(false);
        }
        loop {
            service_loop::poll(poll, events, Some(Duration::ZERO))
                .map_err(|e| format!("poll failed: {e}"))?;
            let now = Instant::now();
            let caught = !events.is_empty();
            if caught || now.duration_since(start) >= budget {
                self.busy_poll.record(now, caught);
                return Ok(caught);
            }
            std::hint::spin_loop();
        }
    }

    fn listen(&mut self, poll: &Poll, address: Ipv4Addr) -> Result<(), String> {
        if self.listeners.iter().any(|l| l.address == address) {
            return Ok(());
        }
        let at = SocketAddrV4::new(address, self.config.port);
        let mut socket = sockets::udp_socket(at)
            .map_err(|e| sockets::explain_bind_error(&format!("TFTP on {at}"), &e))?;
        poll.registry()
            .register(&mut socket, Token(self.listeners.len()), Interest::READABLE)
            .map_err(|e| format!("cannot watch the TFTP socket: {e}"))?;
        let mtu = if address.is_unspecified() {
            Some(UNKNOWN_INTERFACE_MTU)
        } else {
            mtu_of(address)
        };
        let limits = Limits::from_config(&self.config, mtu);
        log::info!(
            "serving TFTP on {at} from {} (block size up to {}, window up to {})",
            match (&self.roots.dir, &self.roots.url) {
                (Some(d), _) => d.display().to_string(),
                (_, Some(u)) => u.clone(),
                _ => "?".into(),
            },
            limits.max_blksize,
            limits.max_windowsize
        );
        self.listeners.push(Listener {
            address,
            socket,
            limits,
        });
        Ok(())
    }

    fn on_listener(&mut self, poll: &Poll, index: usize) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (n, peer) = match listener.socket.recv_from(&mut self.datagram) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("receive error on the TFTP port: {e}");
                    return;
                }
            };
            let (address, limits) = (listener.address, listener.limits);
            let bytes = self.datagram[..n].to_vec();
            match Packet::parse(&bytes) {
                Ok(Packet::Rrq(request)) => {
                    self.on_read_request(poll, address, limits, peer, request)
                }
                Ok(Packet::Wrq(request)) => {
                    log::info!(
                        "{peer}: refused upload of {}: bootd is a read-only server",
                        printable(&request.filename)
                    );
                    refuse(
                        address,
                        peer,
                        ErrorCode::AccessViolation,
                        "read-only server: uploads are refused",
                    );
                }
                Ok(other) => log::debug!("{peer}: stray {} on the TFTP port dropped", kind(&other)),
                Err(e) if is_request(&bytes) => {
                    // A read or write request we cannot parse (a NUL inside the name
                    // turns the rest into the "mode"): answer, as tftp-hpa does, so
                    // the client stops retrying; nothing is served.
                    let message = malformed_request_message(&e);
                    log::info!("{peer}: refused a malformed request: {message}");
                    refuse(address, peer, ErrorCode::IllegalOperation, message);
                }
                Err(e) => log::debug!("{peer}: malformed packet on the TFTP port dropped: {e:?}"),
            }
        }
    }

    fn on_read_request(
        &mut self,
        poll: &Poll,
        address: Ipv4Addr,
        limits: Limits,
        peer: SocketAddr,
        request: Request,
    ) {
        if self.transfers.contains_key(&peer) {
            log::debug!(
                "{peer}: repeated request for {} ignored: its transfer is running",
                printable(&request.filename)
            );
            return;
        }
        if self.transfers.len() >= self.config.max_transfers {
            log::warn!(
                "{peer}: refused {}: {} transfers already running ([tftp] max_transfers)",
                printable(&request.filename),
                self.transfers.len()
            );
            refuse(
                address,
                peer,
                ErrorCode::NotDefined,
                "server busy, try again later",
            );
            return;
        }
        // For the log: a name may hold control characters (refused, but logged first).
        let requested = printable(&request.filename).into_owned();
        let served = match self.rewrite(&request.filename) {
            Ok(name) => name,
            Err(e) => {
                log::info!("{peer}: refused {requested}: {}", e.reason);
                refuse(address, peer, e.code, e.client_message);
                return;
            }
        };
        let now = Instant::now();
        let (source, transfer, size) = match self.open(&served, now) {
            Ok(opened) => opened,
            Err(e) => {
                log::info!(
                    "{peer}: refused {requested}{}: {}",
                    arrow(&request.filename, &served),
                    e.reason
                );
                refuse(address, peer, e.code, e.client_message);
                return;
            }
        };
        let mut socket = match TidSocket::open(address) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{peer}: cannot open a transfer socket: {e}");
                self.release_source(source);
                refuse(
                    address,
                    peer,
                    ErrorCode::NotDefined,
                    "server cannot open a socket",
                );
                return;
            }
        };
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = poll
            .registry()
            .register(socket.receiver_mut(), token, Interest::READABLE)
        {
            log::warn!("{peer}: cannot watch a transfer socket: {e}");
            self.release_source(source);
            return;
        }
        let options: Vec<String> = request
            .options
            .iter()
            .map(|o| format!("{}={}", o.name, o.value))
            .collect();
        log::info!(
            "{peer}: read {requested}{} ({}{}{})",
            arrow(&request.filename, &served),
            size.map_or("size not yet known".into(), |s| format!("{s} bytes")),
            if options.is_empty() { "" } else { ", asks " },
            options.join(" ")
        );
        let transfer = transfer.map(|()| Transfer::start(&request, &limits, size, now));
        let is_http = matches!(source, Source::Http { .. });
        self.transfers.insert(
            peer,
            Active {
                client: peer,
                client_address: peer.into(),
                socket,
                token,
                transfer,
                request,
                limits,
                source,
                requested,
                served,
                started: now,
                armed: None,
            },
        );
        self.by_token.insert(token, peer);
        if is_http {
            self.http_transfers.insert(peer);
            // The reader must answer within http_timeout.
            self.wheel.schedule(peer, now + self.config.http_timeout);
        }
        self.drive(poll, peer, now);
    }

    /// Lets go of a transfer's source: a shared file closes with its last reader.
    fn release_source(&mut self, source: Source) {
        if let Source::Local { file, offset } = source {
            self.files.release(file, offset);
        }
    }

    /// The name to serve after `[filters]`, with `[path]` indirection resolved.
    fn rewrite(&self, requested: &str) -> Result<String, OpenError> {
        match self.filters.apply(requested) {
            Rewrite::Unchanged => Ok(requested.to_string()),
            Rewrite::Name { name, .. } => Ok(name),
            Rewrite::Indirect { path, line } => {
                let Some(root) = &self.roots.dir else {
                    return Err(OpenError {
                        code: ErrorCode::FileNotFound,
                        client_message: "file not found",
                        reason: format!(
                            "[filters] line {line}: a [path] indirection needs a local [tftp] root"
                        ),
                    });
                };
                let mut file = source::open_local(root, &path)?;
                let mut buf = Vec::new();
                source::read_up_to(&mut file.file, 4096, &mut buf).map_err(|e| OpenError {
                    code: ErrorCode::FileNotFound,
                    client_message: "file not found",
                    reason: format!("{}: {e}", file.path.display()),
                })?;
                filters::indirect_target(&String::from_utf8_lossy(&buf)).ok_or(OpenError {
                    code: ErrorCode::FileNotFound,
                    client_message: "file not found",
                    reason: format!(
                        "[filters] line {line}: {} names no file",
                        file.path.display()
                    ),
                })
            }
        }
    }

    /// Opens the source; `Some(())` means "start the transfer now" (size known),
    /// `None` means "start it when the HTTP answer arrives".
    fn open(
        &mut self,
        served: &str,
        now: Instant,
    ) -> Result<(Source, Option<()>, Option<u64>), OpenError> {
        if let Some(root) = &self.roots.dir {
            let local = source::open_local(root, served)?;
            let file = self.files.adopt(local.file).map_err(|e| OpenError {
                code: ErrorCode::AccessViolation,
                client_message: "access violation",
                reason: format!("{}: {e}", local.path.display()),
            })?;
            return Ok((
                Source::Local { file, offset: 0 },
                Some(()),
                Some(file.size()),
            ));
        }
        let prefix = self.roots.url.as_deref().unwrap_or_default();
        let url = path::url_for(prefix, served)?;
        if self.readers.live() >= self.config.max_transfers {
            return Err(OpenError {
                code: ErrorCode::NotDefined,
                client_message: "server busy, try again later",
                reason: format!("{} HTTP downloads still running", self.readers.live()),
            });
        }
        let waker = Arc::clone(&self.waker);
        let chunks = source::spawn_http_reader(url, &self.readers, move || {
            let _ = waker.wake();
        })
        .map_err(|e| OpenError {
            code: ErrorCode::NotDefined,
            client_message: "server cannot fetch the file",
            reason: format!("cannot start an HTTP reader: {e}"),
        })?;
        Ok((
            Source::Http {
                chunks,
                progress: now,
            },
            None,
            None,
        ))
    }

    fn on_transfer_socket(&mut self, poll: &Poll, token: Token, now: Instant) {
        let Some(&client) = self.by_token.get(&token) else {
            return;
        };
        loop {
            let Some(active) = self.transfers.get_mut(&client) else {
                return;
            };
            let received = match self.batch.receive(active.socket.receiver()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("{client}: receive error: {e}");
                    break;
                }
            };
            for slot in 0..received {
                let (bytes, from) = self.batch.datagram(slot);
                let Some(from) = from else { continue };
                if from != client {
                    // RFC 1350: a packet from another endpoint gets ERROR 5 and changes nothing.
                    let packet =
                        wire::error_packet(ErrorCode::UnknownTransferId, "unknown transfer ID");
                    let _ = active.socket.send_to(&packet, from);
                    log::debug!("{from}: packet for {client}'s transfer answered with ERROR 5");
                    continue;
                }
                if let Some(transfer) = active.transfer.as_mut() {
                    let outcome = transfer.on_packet(bytes, now);
                    log::trace!("{client}: {outcome:?}");
                }
            }
            // A short batch emptied the queue: a later datagram raises a new event.
            if received < batch_receive::SLOTS {
                break;
            }
        }
        self.drive(poll, client, now);
    }

    fn drive_http(&mut self, poll: &Poll, now: Instant) {
        let keys: Vec<SocketAddr> = self.http_transfers.iter().copied().collect();
        for key in keys {
            self.drive(poll, key, now);
        }
    }

    fn on_timers(&mut self, poll: &Poll, now: Instant) {
        let mut expired = std::mem::take(&mut self.expired);
        expired.clear();
        self.wheel.expire(now, &mut expired);
        for key in &expired {
            let Some(active) = self.transfers.get_mut(key) else {
                continue;
            };
            let stalled = match &active.source {
                Source::Http { progress, .. } => {
                    now.duration_since(*progress) >= self.config.http_timeout
                        && active
                            .transfer
                            .as_ref()
                            .is_none_or(|t| t.wanted_bytes() > 0)
                }
                Source::Local { .. } => false,
            };
            if stalled {
                let message = "remote source did not answer";
                match active.transfer.as_mut() {
                    Some(t) => t.abort(ErrorCode::NotDefined, message),
                    None => {
                        log::warn!(
                            "{key}: {} did not answer within {} s",
                            active.served,
                            self.config.http_timeout.as_secs_f64()
                        );
                        let packet = wire::error_packet(ErrorCode::NotDefined, message);
                        let _ = active.socket.send_to(&packet, active.client);
                        self.finish(poll, *key, Some("the remote source did not answer"));
                        continue;
                    }
                }
            } else if let Some(t) = active.transfer.as_mut()
                && t.next_timeout().is_some_and(|d| d <= now)
            {
                t.on_timeout(now);
            }
            self.drive(poll, *key, now);
        }
        self.expired = expired;
    }

    /// Feeds the transfer, sends what it wants sent, re-arms its timer, and ends it
    /// when it is over.
    fn drive(&mut self, poll: &Poll, key: SocketAddr, now: Instant) {
        let Some(active) = self.transfers.get_mut(&key) else {
            return;
        };
        if let Source::Http { chunks, progress } = &mut active.source
            && active.transfer.is_none()
        {
            match chunks.try_recv() {
                Ok(HttpChunk::Start { length }) => {
                    *progress = now;
                    active.transfer = Some(Transfer::start(
                        &active.request,
                        &active.limits,
                        length,
                        now,
                    ));
                    log::debug!(
                        "{key}: {} answered ({})",
                        active.served,
                        length.map_or("no length".into(), |l| format!("{l} bytes"))
                    );
                }
                Ok(HttpChunk::Failed { status, reason }) => {
                    log::info!("{key}: cannot serve {}: {reason}", active.served);
                    let message = match status {
                        Some(404) | Some(410) => "file not found",
                        _ => "remote source failed",
                    };
                    let packet = wire::error_packet(ErrorCode::FileNotFound, message);
                    let _ = active.socket.send_to(&packet, active.client);
                    self.finish(poll, key, Some(&reason));
                    return;
                }
                Ok(_) | Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    let packet = wire::error_packet(ErrorCode::NotDefined, "remote source failed");
                    let _ = active.socket.send_to(&packet, active.client);
                    self.finish(poll, key, Some("the HTTP reader ended without an answer"));
                    return;
                }
            }
        }
        let Some(transfer) = active.transfer.as_mut() else {
            return;
        };
        // Supply the bytes the window needs.
        loop {
            let wanted = transfer.wanted_bytes();
            if wanted == 0 {
                break;
            }
            match &mut active.source {
                Source::Local { file, offset } => {
                    // Just what the window needs: the block is copied out of the shared
                    // chunk right before it is sent (see file_cache).
                    let files = &mut self.files;
                    match transfer.feed_with(wanted, |room| files.read(*file, *offset, room)) {
                        Ok(n) => {
                            *offset += n as u64;
                            if n < wanted {
                                transfer.feed_eof();
                            }
                        }
                        Err(e) => {
                            log::warn!("{key}: read error on {}: {e}", active.served);
                            transfer.abort(ErrorCode::NotDefined, "read error on the server");
                        }
                    }
                }
                Source::Http { chunks, progress } => match chunks.try_recv() {
                    Ok(HttpChunk::Data(data)) => {
                        *progress = now;
                        transfer.feed(&data);
                    }
                    Ok(HttpChunk::End) => transfer.feed_eof(),
                    Ok(HttpChunk::Failed { reason, .. }) => {
                        log::warn!("{key}: {}: {reason}", active.served);
                        transfer.abort(ErrorCode::NotDefined, "remote source failed");
                    }
                    Ok(HttpChunk::Start { .. }) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        transfer.abort(ErrorCode::NotDefined, "remote source failed");
                    }
                },
            }
        }
        while let Some(datagram) = transfer.next_datagram(now) {
            // DATA goes out from the transfer's buffer, its header in a second slice.
            let sent = match datagram {
                Datagram::Whole(bytes) => active
                    .socket
                    .send(&[io::IoSlice::new(bytes)], &active.client_address),
                Datagram::Data { header, payload } => active.socket.send(
                    &[io::IoSlice::new(&header), io::IoSlice::new(payload)],
                    &active.client_address,
                ),
            };
            match sent {
                Ok(_) => {}
                // A full socket buffer is a lost datagram: the timer resends it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => log::debug!("{key}: send failed: {e}"),
            }
        }
        if transfer.is_finished().is_some() {
            self.finish(poll, key, None);
            return;
        }
        let stall_check = match &active.source {
            Source::Http { progress, .. } if transfer.wanted_bytes() > 0 => {
                Some(*progress + self.config.http_timeout)
            }
            _ => None,
        };
        let deadline = match (transfer.next_timeout(), stall_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => None,
        };
        match deadline {
            // Every packet moves the deadline later. Rescheduling each time would leave
            // one stale entry per packet in the wheel (its cancellation is lazy), which
            // `next_timeout` then rehashes on every loop turn. A timer that is already
            // set no later stays: when it fires early, `on_timers` finds the transfer
            // not yet due and this re-arms it at the current deadline.
            Some(at)
                if active.armed.is_some_and(|armed| armed <= at)
                    && self.wheel.is_scheduled(&key) => {}
            Some(at) => {
                self.wheel.schedule(key, at);
                active.armed = Some(at);
            }
            None => {
                self.wheel.cancel(&key);
                active.armed = None;
            }
        }
    }

    /// Removes the transfer and logs its end line.
    fn finish(&mut self, poll: &Poll, key: SocketAddr, failure: Option<&str>) {
        self.wheel.cancel(&key);
        self.http_transfers.remove(&key);
        let Some(mut active) = self.transfers.remove(&key) else {
            return;
        };
        self.by_token.remove(&active.token);
        let _ = poll.registry().deregister(active.socket.receiver_mut());
        self.release_source(active.source);
        let took = active.started.elapsed();
        let name = format!(
            "{}{}",
            active.requested,
            arrow(&active.requested, &active.served)
        );
        let Some(transfer) = active.transfer else {
            log::info!("{key}: {name} failed: {}", failure.unwrap_or("no answer"));
            return;
        };
        let s = transfer.stats();
        let rate = s.bytes as f64 / took.as_secs_f64().max(1e-6);
        let summary = format!(
            "{} bytes in {} blocks of {}, window {}, {} retransmits, {:.3} s, {}",
            s.bytes,
            s.blocks,
            s.blksize,
            s.windowsize,
            s.retransmits,
            took.as_secs_f64(),
            human_rate(rate)
        );
        match transfer.is_finished() {
            Some(Outcome::Completed) => log::info!("{key}: sent {name}: {summary}"),
            Some(Outcome::ClientError { code, message }) => {
                log::info!(
                    "{key}: {name} ended by the client (error {code}: {message}) after {summary}"
                )
            }
            Some(Outcome::TimedOut) => {
                log::warn!("{key}: {name} abandoned: the client stopped answering after {summary}")
            }
            Some(Outcome::Aborted { message, .. }) => {
                log::warn!("{key}: {name} aborted: {message}, after {summary}")
            }
            None => log::info!("{key}: {name} ended: {}", failure.unwrap_or("stopped")),
        }
    }
}

/// Sends an ERROR for a request that will not be served, from a fresh port as a
/// transfer would, so clients that lock onto the server's TID accept it.
fn refuse(address: Ipv4Addr, peer: SocketAddr, code: ErrorCode, message: &str) {
    if let Ok(socket) = StdUdpSocket::bind(SocketAddrV4::new(address, 0)) {
        let _ = socket.send_to(&wire::error_packet(code, message), peer);
    }
}

/// True when `bytes` carries the RRQ or WRQ opcode.
fn is_request(bytes: &[u8]) -> bool {
    matches!(bytes.get(..2), Some([0, 1]) | Some([0, 2]))
}

/// What a client is told about a request it got wrong.
fn malformed_request_message(error: &wire::ParseError) -> &'static str {
    match error {
        wire::ParseError::UnknownMode(_) => "unknown transfer mode: use octet or netascii",
        wire::ParseError::EmptyFilename => "empty file name",
        wire::ParseError::NotUtf8 => "file name is not UTF-8",
        _ => "malformed request",
    }
}

fn kind(packet: &Packet<'_>) -> &'static str {
    match packet {
        Packet::Rrq(_) => "RRQ",
        Packet::Wrq(_) => "WRQ",
        Packet::Data { .. } => "DATA",
        Packet::Ack { .. } => "ACK",
        Packet::Error { .. } => "ERROR",
        Packet::Oack { .. } => "OACK",
    }
}

fn arrow(requested: &str, served: &str) -> String {
    if requested == served {
        String::new()
    } else {
        format!(" (as {})", printable(served))
    }
}

/// A client-chosen name fit for a log line: control characters (a newline could forge
/// a log line, an escape sequence rewrite the terminal) are shown escaped.
fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut shown = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    std::borrow::Cow::Owned(shown)
}

fn human_rate(bytes_per_second: f64) -> String {
    if bytes_per_second >= 1e6 {
        format!("{:.1} MB/s", bytes_per_second / 1e6)
    } else {
        format!("{:.1} kB/s", bytes_per_second / 1e3)
    }
}

fn mtu_of(address: Ipv4Addr) -> Option<u32> {
    let addresses = net::interface_addresses().ok()?;
    let label = addresses.iter().find(|a| a.ip == address)?.label.clone();
    net::read_mtu(label.split(':').next().unwrap_or(&label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_logged_without_control_characters() {
        assert_eq!(printable("pxelinux.cfg/default"), "pxelinux.cfg/default");
        assert!(matches!(
            printable("ünïcode"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            printable("x\n2026-01-01 [INFO] (tftp) forged"),
            "x\\n2026-01-01 [INFO] (tftp) forged"
        );
        assert_eq!(
            printable("\x1b[31mred\r\t\x7f"),
            "\\u{1b}[31mred\\r\\t\\u{7f}"
        );
        assert_eq!(arrow("a\nb", "default"), " (as default)");
        assert_eq!(arrow("*", "a\nb"), " (as a\\nb)");
        assert_eq!(arrow("same", "same"), "");
    }
}
