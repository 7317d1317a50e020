//! A small blocking HTTP/1.1 client for `http://` TFTP roots (and the authorisation
//! server): one GET per connection, with every wait bounded.
//!
//! What a mirror or an authorisation server may make bootd do is capped here,
//! whatever it sends:
//! - connecting takes at most `connect_timeout` per address;
//! - the response head must be complete within `head_timeout`, in at most
//!   [`response::MAX_HEAD`] bytes and [`response::MAX_HEADERS`] fields;
//! - every read or write waits at most `idle_timeout` for a byte, so a server that
//!   stops sending frees the thread reading it (a whole-exchange deadline could not
//!   do that for a body read at a TFTP client's pace), and an optional `deadline`
//!   bounds the whole exchange where an answer is needed by a given time;
//! - redirections are never followed: a 3xx is an error naming its `Location`, so a
//!   mirror cannot send bootd to its own loopback services or anywhere the operator
//!   did not configure;
//! - the body is delimited by its framing, and one that ends before its framing says
//!   it is complete (a short `Content-Length`, a chunked body without its last
//!   chunk) is a read error (`response::BodyError` inside an `io::Error`), never a silent
//!   end of file.
//!
//! Like every other tool, it goes through the proxy `http_proxy` / `https_proxy`
//! name unless `no_proxy` names the host ([`proxy`]): an `http://` URL is asked of
//! the proxy in absolute form, an `https://` one through a `CONNECT` tunnel.
//!
//! The parsing and framing are sans-IO, in [`response`]; this module only moves
//! bytes. `https://` URLs need the `https` cargo feature, on by default: rustls,
//! trusting the CA certificates of the host (its store, or the files
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` name, as OpenSSL's tools do), read once, at
//! the first `https://` URL. The handshake is done at connection time, so a
//! certificate the host does not trust is a connection error naming the server.
//! Without the feature, `https://` URLs are refused with a message saying so.

pub mod proxy;
pub mod response;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proxy::ProxyEnv;

use response::{Body, MAX_HEAD};
pub use response::{Framing, Head, HeadError};

/// How long each step of an exchange may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// To connect to one address of the server.
    pub connect_timeout: Duration,
    /// For the whole response head, from the start of the exchange.
    pub head_timeout: Duration,
    /// For any one read or write to make progress.
    pub idle_timeout: Duration,
    /// When the whole exchange, body included, must be over (none: the body may take
    /// as long as it keeps moving).
    pub deadline: Option<Instant>,
}

impl Options {
    /// The same `timeout` for connecting, for the head and for every read.
    pub fn all(timeout: Duration) -> Options {
        Options {
            connect_timeout: timeout,
            head_timeout: timeout,
            idle_timeout: timeout,
            deadline: None,
        }
    }
}

/// Why a GET failed.
#[derive(Debug)]
pub enum Error {
    /// Not a URL this client can fetch.
    Url(String),
    /// The server's name does not resolve, or no address accepted the connection.
    Connect(String),
    /// The server did not answer (or stopped answering) in time.
    TimedOut(String),
    /// Sending the request or reading the head failed.
    Io(io::Error),
    /// The response head was refused.
    Head(HeadError),
    /// A redirection, never followed.
    Redirect {
        status: u16,
        location: Option<String>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(what) | Error::Connect(what) | Error::TimedOut(what) => f.write_str(what),
            Error::Io(e) => write!(f, "{e}"),
            Error::Head(e) => write!(f, "{e}"),
            Error::Redirect { status, location } => write!(
                f,
                "HTTP {status} redirection to {} not followed (bootd follows no redirection: configure the final URL)",
                location.as_deref().unwrap_or("nowhere")
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A parsed `http://host[:port]/path` (or `https://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path and query, from its `/`.
    pub target: String,
}

impl Url {
    /// Parses `url`; the error says what is wrong, without repeating the URL.
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::Url(why.to_string());
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (false, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else {
            return Err(bad("only http:// URLs are fetched"));
        };
        if tls && !cfg!(feature = "https") {
            return Err(bad(
                "https:// needs bootd built with the `https` feature; use an http:// URL",
            ));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, target) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(bad("user names in URLs are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("bad port"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("bad host"));
        }
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("spaces or control characters in the path"));
        }
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The `Host` header: the host, and the port unless it is the scheme's.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (false, 80) | (true, 443) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The connection: plain TCP, or TLS over it.
trait Connection: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Connection for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

#[cfg(feature = "https")]
impl Connection for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// An answer whose head has arrived; its body is read through [`Read`].
pub struct Response {
    pub head: Head,
    connection: Box<dyn Connection>,
    /// Bytes read and not yet decoded: `buffer[start..end]`.
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    body: Body,
    options: Options,
    url: String,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("head", &self.head)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Bytes read from the connection at a time.
const READ_BUFFER: usize = 16 * 1024;

/// GETs `url`: connects, sends the request and reads the head. A 3xx is an
/// [`Error::Redirect`]; any other status is returned for the caller to judge.
/// Through the proxy the environment names, if any.
pub fn get(url: &str, options: &Options) -> Result<Response, Error> {
    get_through(url, options, proxies())
}

/// [`get`], with the proxy settings `proxies`.
fn get_through(url: &str, options: &Options, proxies: &ProxyEnv) -> Result<Response, Error> {
    let started = Instant::now();
    let parsed = Url::parse(url).map_err(|e| Error::Url(format!("{url}: {e}")))?;
    let head_by = earliest(started + options.head_timeout, options.deadline);
    let proxy = proxies.proxy_for(&parsed);
    let (mut connection, target) = match proxy {
        None => (connect(&parsed, options, head_by)?, parsed.target.clone()),
        // The proxy fetches it: the request names the whole URL.
        Some(proxy) if !parsed.tls => {
            let tcp = connect_tcp(&proxy.host, proxy.port, options, head_by)?;
            let target = format!("http://{}{}", parsed.host_header(), parsed.target);
            (Box::new(tcp) as Box<dyn Connection>, target)
        }
        Some(proxy) => {
            let tcp = connect_tcp(&proxy.host, proxy.port, options, head_by)?;
            let tcp = tunnel(tcp, &parsed, options, head_by).map_err(|e| {
                prefix_error(
                    e,
                    &format!("{url}: through the proxy {}:{}", proxy.host, proxy.port),
                )
            })?;
            (wrap(&parsed, tcp)?, parsed.target.clone())
        }
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bootd/{}\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        target,
        parsed.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    set_timeouts(connection.tcp(), options.idle_timeout, Some(head_by)).map_err(Error::Io)?;
    connection
        .write_all(request.as_bytes())
        .and_then(|()| connection.flush())
        .map_err(|e| timed_out_or(e, || format!("{url}: sending the request timed out")))?;
    let mut buffer = vec![0u8; MAX_HEAD.max(READ_BUFFER)].into_boxed_slice();
    let mut end = 0;
    loop {
        if let Some((head, used)) = response::parse_head(&buffer[..end]).map_err(Error::Head)? {
            buffer.copy_within(used..end, 0);
            end -= used;
            if head.is_interim() {
                continue;
            }
            if head.is_redirect() {
                return Err(Error::Redirect {
                    status: head.status,
                    location: head.header("location").map(str::to_string),
                });
            }
            let body = Body::new(head.framing().map_err(Error::Head)?);
            return Ok(Response {
                head,
                connection,
                buffer,
                start: 0,
                end,
                body,
                options: *options,
                url: url.to_string(),
            });
        }
        let room = buffer.get_mut(end..MAX_HEAD).unwrap_or_default();
        if room.is_empty() {
            return Err(Error::Head(HeadError::TooLarge));
        }
        set_timeouts(connection.tcp(), options.idle_timeout, Some(head_by)).map_err(|_| {
            Error::TimedOut(format!(
                "{url}: no complete answer within {} s",
                options.head_timeout.as_secs_f64()
            ))
        })?;
        match connection.read(room) {
            Ok(0) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{url}: the connection closed before a complete answer"),
                )));
            }
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(timed_out_or(e, || {
                    format!(
                        "{url}: no answer for {} s",
                        options.idle_timeout.as_secs_f64()
                    )
                }));
            }
        }
    }
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The body's length, when the answer says it (`Content-Length`).
    pub fn content_length(&self) -> Option<u64> {
        match self.body.framing() {
            Framing::Length(length) => Some(length),
            _ => None,
        }
    }

    /// Reads the whole body, refusing one larger than `max` bytes.
    pub fn read_body(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let read = self.take(max as u64 + 1).read_to_end(&mut body)?;
        if read > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: body larger than {max} bytes", self.url),
            ));
        }
        Ok(body)
    }
}

impl Read for Response {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let pending = &self.buffer[self.start..self.end];
            let (used, data) = self
                .body
                .decode(pending, out.len())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let n = data.len();
            out[..n].copy_from_slice(data);
            self.start += used;
            if n > 0 {
                return Ok(n);
            }
            if self.body.is_done() {
                return Ok(0);
            }
            if used > 0 {
                continue;
            }
            // More bytes are needed: make room after what is pending.
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buffer.len() {
                // Cannot happen (framing lines are capped below the buffer), but an
                // error beats a loop.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "framing line too long",
                ));
            }
            set_timeouts(
                self.connection.tcp(),
                self.options.idle_timeout,
                self.options.deadline,
            )
            .map_err(|_| timed_out(format!("{}: the exchange's deadline passed", self.url)))?;
            match self.connection.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    return match self.body.finish() {
                        Ok(()) => Ok(0),
                        Err(e) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, e)),
                    };
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(timed_out(format!(
                        "{}: no bytes for {} s",
                        self.url,
                        self.options.idle_timeout.as_secs_f64()
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// This process's proxy settings, read from its environment once; a proxy
/// variable that cannot be used is logged then, once.
fn proxies() -> &'static ProxyEnv {
    static PROXIES: OnceLock<ProxyEnv> = OnceLock::new();
    PROXIES.get_or_init(|| {
        let (proxies, ignored) = ProxyEnv::from_vars(|name| std::env::var(name).ok());
        for why in ignored {
            log::warn!("proxy setting ignored: {why}");
        }
        proxies
    })
}

/// Connects to the first address of `url`'s host that answers.
fn connect(url: &Url, options: &Options, by: Instant) -> Result<Box<dyn Connection>, Error> {
    let tcp = connect_tcp(&url.host, url.port, options, by)?;
    wrap(url, tcp)
}

/// Connects to the first address of `host` that answers.
fn connect_tcp(host: &str, port: u16, options: &Options, by: Instant) -> Result<TcpStream, Error> {
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Connect(format!("{host}: {e}")))?
        .collect();
    let mut last = None;
    for address in addresses {
        let left = by.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&address, options.connect_timeout.min(left)) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(format!("{address}: {e}")),
        }
    }
    Err(match last {
        Some(last) => Error::Connect(format!("cannot connect to {host}: {last}")),
        None => Error::TimedOut(format!("cannot connect to {host} in time")),
    })
}

/// Asks the proxy at the other end of `tcp` for a tunnel to `url`'s host
/// (`CONNECT host:port`); the tunnel is open once it answers 2xx.
fn tunnel(
    mut tcp: TcpStream,
    url: &Url,
    options: &Options,
    by: Instant,
) -> Result<TcpStream, Error> {
    let authority = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    set_timeouts(&tcp, options.idle_timeout, Some(by)).map_err(Error::Io)?;
    tcp.write_all(request.as_bytes())
        .map_err(|e| timed_out_or(e, || "sending CONNECT timed out".into()))?;
    // Read byte by byte: what follows the head is the tunnel's, not the proxy's.
    let mut head = Vec::with_capacity(256);
    loop {
        if let Some((answer, _)) = response::parse_head(&head).map_err(Error::Head)? {
            if (200..300).contains(&answer.status) {
                return Ok(tcp);
            }
            return Err(Error::Connect(format!(
                "the proxy refused the tunnel: HTTP {}",
                answer.status
            )));
        }
        if head.len() >= MAX_HEAD {
            return Err(Error::Head(HeadError::TooLarge));
        }
        set_timeouts(&tcp, options.idle_timeout, Some(by)).map_err(Error::Io)?;
        let mut byte = [0u8; 1];
        match tcp.read(&mut byte) {
            Ok(0) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the proxy closed the connection before answering CONNECT",
                )));
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(timed_out_or(e, || "no answer to CONNECT in time".into())),
        }
    }
}

/// `e`, its message preceded by `context`.
fn prefix_error(e: Error, context: &str) -> Error {
    match e {
        Error::Connect(m) => Error::Connect(format!("{context}: {m}")),
        Error::TimedOut(m) => Error::TimedOut(format!("{context}: {m}")),
        Error::Io(e) => Error::Io(io::Error::new(e.kind(), format!("{context}: {e}"))),
        other => other,
    }
}

#[cfg(not(feature = "https"))]
fn wrap(_url: &Url, tcp: TcpStream) -> Result<Box<dyn Connection>, Error> {
    Ok(Box::new(tcp))
}

#[cfg(feature = "https")]
fn wrap(url: &Url, mut tcp: TcpStream) -> Result<Box<dyn Connection>, Error> {
    use std::sync::{Arc, OnceLock};
    if !url.tls {
        return Ok(Box::new(tcp));
    }
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(tls_config)
        .clone()
        .map_err(|e| Error::Connect(format!("TLS set-up: {e}")))?;
    let name = rustls::pki_types::ServerName::try_from(url.host.clone())
        .map_err(|e| Error::Url(format!("{}: {e}", url.host)))?;
    let mut connection = rustls::ClientConnection::new(config, name)
        .map_err(|e| Error::Connect(format!("TLS to {}: {e}", url.host)))?;
    // The handshake now, within the socket's timeouts, so that an untrusted
    // certificate is said as such rather than as a failed request write.
    while connection.is_handshaking() {
        connection.complete_io(&mut tcp).map_err(|e| {
            if is_timeout(&e) {
                return Error::TimedOut(format!("TLS handshake with {} timed out", url.host));
            }
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
            let why = match inner {
                Some(rustls::Error::InvalidCertificate(reason)) => format!(
                    "its certificate is not trusted ({reason:?}): add its CA to the host's store, or name a CA file with SSL_CERT_FILE"
                ),
                _ => e.to_string(),
            };
            Error::Connect(format!(
                "TLS handshake with {}:{}: {why}",
                url.host, url.port
            ))
        })?;
    }
    Ok(Box::new(rustls::StreamOwned::new(connection, tcp)))
}

/// The TLS client set-up: ring, safe protocol versions, and the host's CA
/// certificates (an error when none could be read).
#[cfg(feature = "https")]
fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use std::sync::Arc;
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
        return Err(format!(
            "no CA certificate could be read from the host's store, SSL_CERT_FILE or SSL_CERT_DIR{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        ));
    }
    for e in &found.errors {
        log::warn!("some CA certificates could not be read: {e}");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| e.to_string())
}

/// Sets the socket's read and write timeouts to `idle`, or less if `by` is sooner;
/// an error once `by` has passed.
fn set_timeouts(tcp: &TcpStream, idle: Duration, by: Option<Instant>) -> io::Result<()> {
    let wait = match by {
        Some(by) => {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::from(io::ErrorKind::TimedOut));
            }
            idle.min(left)
        }
        None => idle,
    };
    // A zero timeout means "none" to the socket: never ask for one.
    let wait = Some(wait.max(Duration::from_millis(1)));
    tcp.set_read_timeout(wait)?;
    tcp.set_write_timeout(wait)
}

fn earliest(a: Instant, b: Option<Instant>) -> Instant {
    b.map_or(a, |b| a.min(b))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn timed_out(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, message)
}

fn timed_out_or(e: io::Error, message: impl FnOnce() -> String) -> Error {
    if is_timeout(&e) {
        Error::TimedOut(message())
    } else {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on loopback that answers the first connection with `answer` (in one
    /// write), then keeps it open for `hold` before closing it.
    fn serve(answer: Vec<u8>, hold: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(&answer);
                std::thread::sleep(hold);
            }
        });
        format!("http://{address}/file")
    }

    fn quick() -> Options {
        Options::all(Duration::from_millis(500))
    }

    /// A proxy on loopback: answers the first connection with `answer` and hands
    /// back the request it got.
    fn proxy(answer: &'static [u8]) -> (ProxyEnv, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                let n = stream.read(&mut request).unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&request[..n]).into_owned());
                let _ = stream.write_all(answer);
            }
        });
        let (proxies, ignored) = ProxyEnv::from_vars(|name| {
            (name == "http_proxy" || name == "https_proxy").then(|| format!("http://{address}"))
        });
        assert!(ignored.is_empty());
        (proxies, rx)
    }

    #[test]
    fn an_http_url_is_asked_of_the_proxy_in_absolute_form() {
        let (proxies, request) = proxy(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        // Nothing listens on the mirror's address: only the proxy can answer.
        let mut response =
            get_through("http://mirror.invalid:8080/d-i/linux", &quick(), &proxies).unwrap();
        assert_eq!(response.read_body(16).unwrap(), b"ok");
        let request = request.recv().unwrap();
        assert!(
            request.starts_with(
                "GET http://mirror.invalid:8080/d-i/linux HTTP/1.1\r\nHost: mirror.invalid:8080\r\n"
            ),
            "{request}"
        );
    }

    #[test]
    fn a_tunnel_the_proxy_refuses_is_a_connect_error() {
        if !cfg!(feature = "https") {
            return;
        }
        let (proxies, request) = proxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        let e = get_through("https://mirror.invalid/x", &quick(), &proxies).unwrap_err();
        assert!(
            e.to_string()
                .contains("the proxy refused the tunnel: HTTP 403"),
            "{e}"
        );
        assert_eq!(
            request.recv().unwrap(),
            "CONNECT mirror.invalid:443 HTTP/1.1\r\nHost: mirror.invalid:443\r\n\r\n"
        );
    }

    #[test]
    fn urls_are_parsed_and_only_http_is_taken() {
        let url = Url::parse("http://mirror.example:8080/d-i/linux?x=1#frag").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str(), url.tls),
            ("mirror.example", 8080, "/d-i/linux?x=1", false)
        );
        assert_eq!(url.host_header(), "mirror.example:8080");
        let url = Url::parse("HTTP://[::1]/x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 80));
        assert_eq!(url.host_header(), "[::1]");
        assert_eq!(Url::parse("http://h").unwrap().target, "/");
        for bad in [
            "ftp://h/x",
            "h/x",
            "http://h:0/x",
            "http://h:99999/x",
            "http://user:pw@h/x",
            "http:///x",
            "http://h/a b",
        ] {
            assert!(matches!(Url::parse(bad), Err(Error::Url(_))), "{bad}");
        }
        if !cfg!(feature = "https") {
            let e = Url::parse("https://h/x").unwrap_err();
            assert!(e.to_string().contains("`https` feature"), "{e}");
        }
    }

    #[test]
    fn a_body_is_read_through_its_framing() {
        let url = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        let mut response = get(&url, &quick()).unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_length(), None);
        assert_eq!(response.read_body(100).unwrap(), b"abcde");
        let url = serve(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope".to_vec(),
            Duration::ZERO,
        );
        let mut response = get(&url, &quick()).unwrap();
        assert_eq!(
            (response.status(), response.content_length()),
            (404, Some(4))
        );
        assert_eq!(response.read_body(100).unwrap(), b"nope");
        let url = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789".to_vec(),
            Duration::ZERO,
        );
        let e = get(&url, &quick()).unwrap().read_body(5).unwrap_err();
        assert!(e.to_string().contains("larger than 5 bytes"), "{e}");
    }

    /// A redirection is never followed, whatever it points at: the error names it.
    #[test]
    fn a_redirect_is_an_error_naming_its_location() {
        let url = serve(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:8080/secret\r\nContent-Length: 0\r\n\r\n".to_vec(),
            Duration::ZERO,
        );
        let e = get(&url, &quick()).unwrap_err();
        assert!(
            matches!(&e, Error::Redirect { status: 302, location: Some(l) } if l == "http://127.0.0.1:8080/secret"),
            "{e:?}"
        );
        assert_eq!(e.status(), Some(302));
        assert!(
            e.to_string()
                .contains("redirection to http://127.0.0.1:8080/secret not followed")
        );
    }

    #[test]
    fn cut_bodies_are_read_errors() {
        let url = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n".to_vec(),
            Duration::ZERO,
        );
        let e = get(&url, &quick()).unwrap().read_body(100).unwrap_err();
        assert!(e.to_string().contains("before its last chunk"), "{e}");
        let url = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            Duration::ZERO,
        );
        let e = get(&url, &quick()).unwrap().read_body(100).unwrap_err();
        assert!(e.to_string().contains("3 of 10"), "{e}");
    }

    /// A server that accepts and never answers, or stops in the middle of a body,
    /// frees the reader within the timeouts.
    #[test]
    fn a_silent_server_times_out() {
        let url = serve(Vec::new(), Duration::from_secs(5));
        let started = Instant::now();
        let e = get(&url, &quick()).unwrap_err();
        assert!(matches!(e, Error::TimedOut(_)), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let url = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            Duration::from_secs(5),
        );
        let mut response = get(&url, &quick()).unwrap();
        let started = Instant::now();
        let e = response.read_body(100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("no bytes for 0.5 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // A deadline bounds a body that keeps trickling.
        let url = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            Duration::from_secs(5),
        );
        let options = Options {
            deadline: Some(Instant::now() + Duration::from_millis(200)),
            ..Options::all(Duration::from_secs(3))
        };
        let started = Instant::now();
        let e = get(&url, &options).unwrap().read_body(100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// An endless head (a long line ended by a bare LF, then more and more header)
    /// costs a buffer of the cap, and is refused.
    #[test]
    fn an_endless_head_is_refused_without_holding_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let mut line = b"HTTP/1.1 200 OK\r\nX-A: ".to_vec();
                line.extend(std::iter::repeat_n(b'a', 8191));
                line.push(b'\n');
                let _ = stream.write_all(&line);
                let more = b"X-B: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
                    .repeat(1000);
                // Up to 256 MiB, or until the client hangs up.
                for _ in 0..4096 {
                    if stream.write_all(&more).is_err() {
                        break;
                    }
                }
            }
        });
        let e = get(&format!("http://{address}/x"), &quick()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Head(HeadError::TooLarge | HeadError::TooManyHeaders)
            ),
            "{e:?}"
        );
    }

    #[test]
    fn nobody_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let e = get(&format!("http://{address}/x"), &quick()).unwrap_err();
        assert!(matches!(e, Error::Connect(_)), "{e:?}");
    }
}
