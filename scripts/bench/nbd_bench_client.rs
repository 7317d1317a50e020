//! The NBD client `scripts/bench-nbd.sh` measures servers with: random 4 KiB reads
//! per second and sequential writes in MB/s over one connection, with a fixed
//! number of requests in flight, every reply checked.
//!
//!   nbd-bench-client HOST PORT EXPORT randread SECONDS DEPTH
//!   nbd-bench-client HOST PORT EXPORT write MIB REQUEST_KIB DEPTH
//!
//! Prints one number: reads per second, or MB/s (10^6 bytes) including the final
//! FLUSH.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn fail(message: &str) -> ! {
    eprintln!("nbd-bench-client: {message}");
    std::process::exit(1)
}

fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if let Err(e) = s.read_exact(&mut buf) {
        fail(&format!("read: {e}"));
    }
    buf
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

/// Handshake with GO; returns the export size.
fn open(host: &str, port: &str, export: &str) -> (TcpStream, u64) {
    let mut s = TcpStream::connect(format!("{host}:{port}"))
        .unwrap_or_else(|e| fail(&format!("connect: {e}")));
    let _ = s.set_nodelay(true);
    let greeting = read_exact(&mut s, 18);
    if u64_at(&greeting, 0) != 0x4e42444d41474943 {
        fail("not an NBD server");
    }
    let flags = u16::from_be_bytes([greeting[16], greeting[17]]);
    let mut out = u32::from(flags & 3).to_be_bytes().to_vec();
    let mut data = (export.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(export.as_bytes());
    data.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0x49484156454F5054u64.to_be_bytes());
    out.extend_from_slice(&7u32.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&data);
    let _ = s.write_all(&out);
    let mut size = None;
    loop {
        let header = read_exact(&mut s, 20);
        let kind = u32_at(&header, 12);
        let body = read_exact(&mut s, u32_at(&header, 16) as usize);
        match kind {
            3 if body.len() >= 12 && body[..2] == [0, 0] => size = Some(u64_at(&body, 2)),
            1 => break,
            k if k & 0x8000_0000 != 0 => fail(&format!("GO refused: {k:#x}")),
            _ => {}
        }
    }
    (s, size.unwrap_or_else(|| fail("no export size")))
}

fn request(command: u16, cookie: u64, offset: u64, len: u32) -> Vec<u8> {
    let mut r = 0x25609513u32.to_be_bytes().to_vec();
    r.extend_from_slice(&0u16.to_be_bytes());
    r.extend_from_slice(&command.to_be_bytes());
    r.extend_from_slice(&cookie.to_be_bytes());
    r.extend_from_slice(&offset.to_be_bytes());
    r.extend_from_slice(&len.to_be_bytes());
    r
}

fn reply(s: &mut TcpStream, data_len: usize) {
    let header = read_exact(s, 16);
    if u32_at(&header, 0) != 0x67446698 || u32_at(&header, 4) != 0 {
        fail(&format!("bad reply, error {}", u32_at(&header, 4)));
    }
    if data_len > 0 {
        read_exact(s, data_len);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .unwrap_or_else(|| fail("missing argument"))
    };
    let number = |i: usize| {
        arg(i)
            .parse::<u64>()
            .unwrap_or_else(|_| fail("not a number"))
    };
    let (mut s, size) = open(&arg(0), &arg(1), &arg(2));
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    match arg(3).as_str() {
        "randread" => {
            let (seconds, depth) = (number(4), number(5));
            let blocks = size / 4096;
            let started = Instant::now();
            let mut done = 0u64;
            for i in 0..depth {
                let _ = s.write_all(&request(0, i, random() % blocks * 4096, 4096));
            }
            let mut in_flight = depth;
            let stop = Duration::from_secs(seconds);
            while in_flight > 0 {
                reply(&mut s, 4096);
                done += 1;
                in_flight -= 1;
                if started.elapsed() < stop {
                    let _ = s.write_all(&request(0, done, random() % blocks * 4096, 4096));
                    in_flight += 1;
                }
            }
            println!("{:.0}", done as f64 / started.elapsed().as_secs_f64());
        }
        "write" => {
            let (mib, kib, depth) = (number(4), number(5), number(6));
            let len = kib * 1024;
            let total = (mib << 20).min(size) / len;
            let payload = vec![0xA5u8; len as usize];
            let started = Instant::now();
            let send = |s: &mut TcpStream, i: u64| {
                let _ = s.write_all(&request(1, i, i * len, len as u32));
                let _ = s.write_all(&payload);
            };
            let mut sent = 0;
            while sent < depth.min(total) {
                send(&mut s, sent);
                sent += 1;
            }
            for _ in 0..total {
                reply(&mut s, 0);
                if sent < total {
                    send(&mut s, sent);
                    sent += 1;
                }
            }
            let _ = s.write_all(&request(3, 0, 0, 0));
            reply(&mut s, 0);
            let seconds = started.elapsed().as_secs_f64();
            println!("{:.1}", (total * len) as f64 / seconds / 1e6);
        }
        other => fail(&format!("unknown test {other}")),
    }
    let _ = s.write_all(&request(2, 0, 0, 0));
}
