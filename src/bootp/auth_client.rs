//! One GET to the HTTP authorisation server that ends by its deadline whatever
//! the server does (says nothing, trickles a byte at a time, never closes), and
//! holds at most [`READ_LIMIT`] bytes of any answer (a header that never ends
//! is refused at [`HEAD_LIMIT`]).
//!
//! Written here rather than taken from the HTTP client crate: its timeout is in
//! whole seconds and is kept by a thread it spawns per request, which goes on
//! reading after the caller gave up; and its header limit can be overrun. A
//! query needs one plain HTTP/1.0 exchange: the request line, `Host`, and an
//! answer read until `Content-Length`, the last chunk, or the end of the
//! connection. (`https://` locations, with the `https` feature, go through the
//! crate, whose timeout is rounded up to whole seconds.)
//!
//! Only resolving a host name is not bounded by the deadline (the resolver has
//! its own timeouts); an address in `[http] location` needs no resolving.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

use super::http_auth::MAX_BODY;

/// The largest answer header read.
pub const HEAD_LIMIT: usize = 16 * 1024;
/// The most bytes of one answer read: its header, and its body with room for
/// chunk framing.
pub const READ_LIMIT: usize = HEAD_LIMIT + 2 * MAX_BODY;

/// Asks `url` (`http://host[:port]/path?query`); the status code and up to
/// [`MAX_BODY`] bytes of body, or why there is none.
pub fn get(url: &str, deadline: Instant) -> Result<(u16, Vec<u8>), String> {
    let target = Target::parse(url)?;
    let mut stream = connect(&target, deadline)?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: bootd\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| failure("sending the request", &e))?;
    let mut answer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if answer.len() >= READ_LIMIT {
            return match parse(&answer, End::Limit)? {
                Parsed::Done { code, body } => Ok((code, body)),
                Parsed::Incomplete => Err("the answer is too large".into()),
            };
        }
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| failure("waiting for the answer", &e))?;
        let read = match stream.read(&mut chunk) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failure("waiting for the answer", &e)),
        };
        if read == 0 {
            return match parse(&answer, End::Closed)? {
                Parsed::Done { code, body } => Ok((code, body)),
                Parsed::Incomplete => Err("the answer was cut short".into()),
            };
        }
        let room = READ_LIMIT - answer.len();
        answer.extend_from_slice(&chunk[..read.min(room)]);
        if let Parsed::Done { code, body } = parse(&answer, End::Open)? {
            return Ok((code, body));
        }
    }
}

/// Where a URL points.
#[derive(Debug)]
struct Target<'a> {
    /// `host[:port]`, as the `Host` header says it.
    authority: &'a str,
    host: &'a str,
    port: u16,
    /// From the first `/`, query included.
    path: &'a str,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Target<'a>, String> {
        let rest = url
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or_else(|| {
                if url.to_ascii_lowercase().starts_with("https://") {
                    "https:// needs bootd built with the https feature".to_string()
                } else {
                    format!("{url} is not an http:// URL")
                }
            })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, "/"),
        };
        // An IPv6 literal is bracketed: its colons are not the port's.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("{url}: `{port}` is not a port"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url} names no host"));
        }
        Ok(Target {
            authority,
            host,
            port,
            path,
        })
    }
}

/// Connects to the first of the host's addresses that answers in time.
fn connect(target: &Target<'_>, deadline: Instant) -> Result<TcpStream, String> {
    let addresses = (target.host, target.port)
        .to_socket_addrs()
        .map_err(|e| failure(&format!("resolving {}", target.host), &e))?;
    let mut last = format!("{} has no address", target.host);
    for address in addresses {
        match TcpStream::connect_timeout(&address, remaining(deadline)?) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = failure(&format!("connecting to {address}"), &e),
        }
    }
    Err(last)
}

/// The time left before `deadline`; an error once it has passed.
fn remaining(deadline: Instant) -> Result<std::time::Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("no answer within the timeout".into())
    } else {
        Ok(left)
    }
}

fn failure(doing: &str, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within the timeout ({doing})")
        }
        _ => format!("{doing}: {error}"),
    }
}

/// How far an answer has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// More may come.
    Open,
    /// The server closed the connection.
    Closed,
    /// [`READ_LIMIT`] bytes were read: what is there is all there will be.
    Limit,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Incomplete,
    Done { code: u16, body: Vec<u8> },
}

/// Reads an HTTP/1.x answer from its first bytes.
fn parse(answer: &[u8], end: End) -> Result<Parsed, String> {
    let Some((head_len, body_start)) = head_end(answer) else {
        return if answer.len() > HEAD_LIMIT {
            Err(format!(
                "the answer's header is larger than {HEAD_LIMIT} bytes"
            ))
        } else if end == End::Open {
            Ok(Parsed::Incomplete)
        } else {
            Err("the answer ended within its header".into())
        };
    };
    if head_len > HEAD_LIMIT {
        return Err(format!(
            "the answer's header is larger than {HEAD_LIMIT} bytes"
        ));
    }
    let head = String::from_utf8_lossy(&answer[..head_len]);
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let status = lines.next().unwrap_or_default();
    let code = status
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split(' ').nth(1))
        .filter(|code| code.len() == 3)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| *code >= 100)
        .ok_or_else(|| format!("`{}` is not an HTTP status line", status.escape_debug()))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| {
                format!("Content-Length `{}` is not a length", value.escape_debug())
            })?);
        } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = &answer[body_start..];
    let done = |body: &[u8]| Parsed::Done {
        code,
        body: body[..body.len().min(MAX_BODY)].to_vec(),
    };
    if chunked {
        let (decoded, last_chunk_seen) = dechunk(body)?;
        return match end {
            _ if last_chunk_seen => Ok(done(&decoded)),
            End::Limit => Ok(done(&decoded)),
            End::Closed => Err("the answer was cut short before its last chunk".into()),
            End::Open => Ok(Parsed::Incomplete),
        };
    }
    match length {
        Some(length) if body.len() >= length.min(MAX_BODY) => {
            Ok(done(&body[..length.min(body.len())]))
        }
        Some(_) if end == End::Closed => {
            Err("the answer was cut short of its Content-Length".into())
        }
        Some(_) if end == End::Open => Ok(Parsed::Incomplete),
        None if end == End::Open => Ok(Parsed::Incomplete),
        _ => Ok(done(body)),
    }
}

/// Where the header ends: its length without the blank line, and where the
/// body starts. A bare LF ends lines as well as CRLF.
fn head_end(answer: &[u8]) -> Option<(usize, usize)> {
    let mut start = 0;
    while let Some(newline) = answer[start..].iter().position(|b| *b == b'\n') {
        let line_end = start + newline;
        let line = &answer[start..line_end];
        if line.is_empty() || line == b"\r" {
            return Some((start, line_end + 1));
        }
        start = line_end + 1;
    }
    None
}

/// The chunks of a chunked body so far, and whether the last one came.
fn dechunk(mut body: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let mut decoded = Vec::new();
    loop {
        let Some(newline) = body.iter().position(|b| *b == b'\n') else {
            return Ok((decoded, false));
        };
        let line = String::from_utf8_lossy(&body[..newline]);
        let size = line.trim().split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| format!("`{}` is not a chunk size", size.escape_debug()))?;
        if size == 0 {
            return Ok((decoded, true));
        }
        let data = &body[newline + 1..];
        if data.len() < size || decoded.len() >= MAX_BODY {
            decoded.extend_from_slice(&data[..data.len().min(size)]);
            return Ok((decoded, false));
        }
        decoded.extend_from_slice(&data[..size]);
        // The chunk's CRLF (or LF).
        let after = &data[size..];
        body = after
            .strip_prefix(b"\r\n")
            .or_else(|| after.strip_prefix(b"\n"))
            .unwrap_or(after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    fn done(code: u16, body: &str) -> Result<Parsed, String> {
        Ok(Parsed::Done {
            code,
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn answers_end_at_their_length_their_last_chunk_or_the_close() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse(plain, End::Open), done(200, "hello"));
        assert_eq!(parse(&plain[..40], End::Open), Ok(Parsed::Incomplete));
        assert!(parse(&plain[..40], End::Closed).is_err(), "cut short");
        let chunked =
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(chunked, End::Open), done(200, "abcde"));
        assert_eq!(parse(&chunked[..55], End::Open), Ok(Parsed::Incomplete));
        assert!(parse(&chunked[..55], End::Closed).is_err(), "no last chunk");
        let until_close = b"HTTP/1.0 401 Unauthorized\r\n\r\nnot you\n";
        assert_eq!(parse(until_close, End::Open), Ok(Parsed::Incomplete));
        assert_eq!(parse(until_close, End::Closed), done(401, "not you\n"));
    }

    #[test]
    fn a_bad_answer_is_an_error_not_a_panic() {
        for answer in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.0 20 OK\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse(answer, End::Closed).is_err(), "{answer:?}");
        }
        let endless_header = [b"HTTP/1.0 200 OK\r\nX: ".as_slice(), &[b'a'; HEAD_LIMIT]].concat();
        assert!(
            parse(&endless_header, End::Open)
                .unwrap_err()
                .contains("larger than")
        );
    }

    #[test]
    fn urls_name_host_port_and_path() {
        let t = Target::parse("http://10.0.0.2:8080/boot?mac=AA").unwrap();
        assert_eq!(
            (t.host, t.port, t.path, t.authority),
            ("10.0.0.2", 8080, "/boot?mac=AA", "10.0.0.2:8080")
        );
        let t = Target::parse("HTTP://[::1]/x").unwrap();
        assert_eq!((t.host, t.port), ("::1", 80));
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://host:port/").is_err());
        assert!(
            Target::parse("https://x/")
                .unwrap_err()
                .contains("https feature")
        );
    }

    /// A server on loopback that accepts, reads the request, then runs `serve`.
    fn server(serve: impl FnOnce(TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                serve(stream);
            }
        });
        format!("http://127.0.0.1:{port}/boot?mac=AA")
    }

    #[test]
    fn a_silent_server_costs_the_timeout_and_no_more() {
        let url = server(|stream| {
            std::thread::sleep(Duration::from_secs(5));
            drop(stream);
        });
        let started = Instant::now();
        let error = get(&url, started + Duration::from_millis(300)).unwrap_err();
        let took = started.elapsed();
        assert!(error.contains("no answer within the timeout"), "{error}");
        assert!(took < Duration::from_millis(800), "{took:?}");
    }

    #[test]
    fn a_trickling_server_costs_the_timeout_and_no_more() {
        let url = server(|mut stream| {
            for _ in 0..100 {
                if stream.write_all(b"H").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        assert!(get(&url, started + Duration::from_millis(400)).is_err());
        assert!(started.elapsed() < Duration::from_millis(900));
    }

    #[test]
    fn an_endless_header_is_refused_at_its_limit() {
        // A line of 8,191 bytes ended by a bare LF, then header without end.
        let url = server(|mut stream| {
            let mut line = b"HTTP/1.0 200 OK\r\nX-Long: ".to_vec();
            line.resize(8191, b'a');
            line.push(b'\n');
            let _ = stream.write_all(&line);
            let filler = [b'b'; 65536];
            for _ in 0..4096 {
                if stream.write_all(&filler).is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let error = get(&url, started + Duration::from_secs(5)).unwrap_err();
        assert!(error.contains("larger than"), "{error}");
    }

    #[test]
    fn a_plain_answer_is_read_whole() {
        let url = server(|mut stream| {
            let _ =
                stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nClient: test\n");
            // Keeps the connection open: the length says the answer is whole.
            std::thread::sleep(Duration::from_secs(2));
        });
        let started = Instant::now();
        let (code, body) = get(&url, started + Duration::from_secs(1)).unwrap();
        assert_eq!((code, body.as_slice()), (200, &b"Client: test\n"[..]));
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
