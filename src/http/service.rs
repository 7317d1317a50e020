//! The HTTP service thread: a thin mio shell around the sans-IO [`Endpoint`], which
//! makes every decision and holds every connection. The shell owns the listening
//! sockets and each connection's socket and source (a file under the root or the
//! operator's, or an `http://` reader thread's channel), reads what clients send,
//! writes what the endpoint hands out (local files with `sendfile(2)`, so their
//! bytes never pass through user space), and logs what it says. It also makes the
//! built-in pages from what every service published: `/metrics` and `/status`.
//!
//! Nothing here blocks on a client: sockets are non-blocking, each connection writes
//! at most [`TURN_BYTES`] before the others get their turn, and a mirror is read by
//! reader threads whose bounded channels hold them back (backpressure) until the
//! client has taken what they delivered.

use std::fs::File;
use std::io::{self, Read, Write as _};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, TryRecvError};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use super::connection::{Timeouts, Write};
use super::endpoint::{
    ConnectionId, Endpoint, Event, OpenFailure, Opened, Page, Settings, SourceSpec,
};
use crate::config::{Config, FilterRule, HttpdConfig, TftpRoot};
use crate::event::Event as BusEvent;
use crate::event::Message;
use crate::files::root::{OpenErrorKind, RootDir};
use crate::files::served::{Served, open_served};
use crate::metrics::{self, Metrics};
use crate::room::published::{Content, Published};
use crate::service_loop::{self, WAKER};
use crate::status_page::{InFlightSchedule, Service as StatusService};
use crate::tftp::endpoint::OpenError as TftpOpenError;
use crate::tftp::source::{self, HttpChunk, ReaderCount};
use crate::tftp::wire::ErrorCode;

/// Listener tokens are 0..; a connection's token is this plus its id.
const FIRST_CONNECTION_TOKEN: usize = 1 << 32;
/// Bytes one connection may write before the others get their turn.
const TURN_BYTES: u64 = 512 * 1024;
/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 16 * 1024;
/// Pending connections the kernel keeps for the listener.
const BACKLOG: i32 = 1024;

pub struct HttpService {
    pub config: HttpdConfig,
    /// What is served: `[httpd] root`, else the TFTP root.
    pub root: TftpRoot,
    /// Where to listen from the start (`[httpd] address`, or detected without DHCP).
    pub address: Option<Ipv4Addr>,
    /// Whether `check_ip` is enforced (it is only when the DHCP service runs).
    pub check_ip: bool,
    /// How long an `http://` root may keep a response waiting at any step.
    pub http_timeout: std::time::Duration,
    pub poll: Poll,
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    pub filter_rules: Vec<FilterRule>,
    /// The configuration file's directory: a filter's fixed path is taken from it.
    pub config_dir: PathBuf,
    /// What a room's builder publishes (menu, torrents, OS files), served first.
    pub published: Published,
    /// Every service's counts: this one's are published there, `/metrics` reads them.
    pub metrics: Arc<Metrics>,
}

/// A connection's I/O.
pub struct Io {
    stream: TcpStream,
    source: Option<Source>,
}

enum Source {
    File(File),
    Stream(Receiver<HttpChunk>),
}

struct Shell {
    endpoint: Endpoint<Io>,
    root_dir: Option<RootDir>,
    listeners: Vec<(Ipv4Addr, TcpListener)>,
    port: u16,
    served: String,
    waker: Arc<Waker>,
    readers: ReaderCount,
    max_readers: usize,
    http_timeout: std::time::Duration,
    buffer: Vec<u8>,
    metrics: Arc<Metrics>,
}

impl HttpService {
    pub fn run(self) -> Result<(), String> {
        let HttpService {
            config,
            root,
            address,
            check_ip,
            http_timeout,
            mut poll,
            waker,
            inbox,
            filter_rules,
            config_dir,
            published,
            metrics,
        } = self;
        let Served {
            root,
            root_dir,
            served,
            filters,
        } = open_served(root, "[httpd] root", &filter_rules, &config_dir)?;
        let settings = Settings {
            root,
            filters,
            check_ip,
            max_connections: config.max_connections,
            timeouts: Timeouts {
                idle: config.timeout,
                request: config.request_timeout,
            },
            published,
        };
        let mut shell = Shell {
            endpoint: Endpoint::new(settings),
            root_dir,
            listeners: Vec::new(),
            port: config.port,
            served,
            waker,
            readers: ReaderCount::default(),
            max_readers: config.max_connections,
            http_timeout,
            buffer: vec![0u8; READ_BUFFER],
            metrics,
        };
        if let Some(address) = address {
            shell.listen(&poll, address)?;
        }
        let mut events = Events::with_capacity(1024);
        let mut told = InFlightSchedule::default();
        loop {
            let start = Instant::now();
            let timeout = shell
                .endpoint
                .poll_timeout(start)
                .map(|at| at.saturating_duration_since(start));
            service_loop::poll(&mut poll, &mut events, timeout)
                .map_err(|e| format!("poll failed: {e}"))?;
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        let inbox = service_loop::drain(&inbox);
                        if inbox.stop {
                            return Ok(());
                        }
                        if let Some(config) = &inbox.reload {
                            shell.reload(config);
                        }
                        for e in inbox.events {
                            match e {
                                BusEvent::ServerAddress(a) if address.is_none() => {
                                    shell.listen(&poll, a)?
                                }
                                BusEvent::ServerAddress(_) => {}
                                BusEvent::Lease(lease) => {
                                    shell.endpoint.handle_lease(&lease);
                                    shell.metrics.record(|log| log.handle_lease(now, &lease));
                                }
                            }
                        }
                        // Reader threads wake this loop too.
                        let mut streams = Vec::new();
                        while let Some(id) = shell.endpoint.stream_connection(streams.len()) {
                            streams.push(id);
                        }
                        for id in streams {
                            shell.supply(id, now);
                        }
                    }
                    Token(i) if i < FIRST_CONNECTION_TOKEN => shell.accept(&poll, i, now),
                    Token(i) => {
                        let id = ConnectionId::from_index(i - FIRST_CONNECTION_TOKEN);
                        if event.is_writable() {
                            shell.endpoint.handle_writable(id);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            shell.read(id, now);
                        }
                    }
                }
                shell.handle_events(&poll, now);
            }
            shell.endpoint.handle_timeout(now);
            shell.handle_events(&poll, now);
            shell.write_turn(&poll, now);
            let counts = shell.endpoint.counts();
            shell
                .metrics
                .publish_transfers(metrics::Service::Http, counts);
            shell.tell_status(&mut told, now);
        }
    }
}

impl Shell {
    /// SIGHUP's configuration: new requests are served from its root (`[httpd]
    /// root`, else the TFTP root) with its `[filters]`; a response under way
    /// keeps the file or stream it opened. A root that cannot be opened keeps
    /// the old one in force.
    fn reload(&mut self, config: &Config) {
        let httpd = config.httpd.clone().unwrap_or_default();
        let root = httpd.root.unwrap_or_else(|| config.tftp.root.clone());
        let prepared = match open_served(root, "[httpd] root", &config.filters, &config.dir) {
            Ok(prepared) => prepared,
            Err(e) => {
                log::error!("reload: {e}; HTTP keeps serving with its old root and filters");
                return;
            }
        };
        self.root_dir = prepared.root_dir;
        self.served = prepared.served;
        self.endpoint.handle_reload(prepared.root, prepared.filters);
        log::info!("reload: HTTP serves new requests from {}", self.served);
    }

    /// Gives `/status` the requests answered and, when due, the responses under way.
    fn tell_status(&mut self, told: &mut InFlightSchedule, now: Instant) {
        let mut ended = Vec::new();
        while let Some(e) = self.endpoint.poll_ended() {
            ended.push(e);
        }
        let tell = told.due(now, self.endpoint.sending_count());
        if ended.is_empty() && !tell {
            return;
        }
        let transfers = tell.then(|| self.endpoint.in_flight());
        self.metrics.record(|log| {
            for e in ended {
                log.handle_ended(now, e);
            }
            if let Some(transfers) = transfers {
                log.handle_in_flight(StatusService::Http, transfers);
            }
        });
    }

    fn listen(&mut self, poll: &Poll, address: Ipv4Addr) -> Result<(), String> {
        if self.listeners.iter().any(|(a, _)| *a == address) {
            return Ok(());
        }
        let at = SocketAddrV4::new(address, self.port);
        let mut listener = tcp_listener(at)
            .map_err(|e| crate::sockets::explain_bind_error(&format!("HTTP on {at}"), &e))?;
        let token = Token(self.listeners.len());
        poll.registry()
            .register(&mut listener, token, Interest::READABLE)
            .map_err(|e| format!("cannot watch the HTTP socket on {at}: {e}"))?;
        log::info!("serving HTTP on {at} from {}", self.served);
        self.listeners.push((address, listener));
        Ok(())
    }

    fn accept(&mut self, poll: &Poll, index: usize, now: Instant) {
        loop {
            let Some((_, listener)) = self.listeners.get(index) else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the next connection retries.
                    log::warn!("cannot accept an HTTP connection: {e}");
                    return;
                }
            };
            // Small heads and error bodies must not wait for an ACK (Nagle).
            let _ = stream.set_nodelay(true);
            let io = Io {
                stream,
                source: None,
            };
            match self.endpoint.handle_accept(now, peer, io) {
                Ok(id) => {
                    let token = Token(FIRST_CONNECTION_TOKEN + id.index());
                    let registered = match self.endpoint.io_mut(id) {
                        Some(io) => poll.registry().register(
                            &mut io.stream,
                            token,
                            Interest::READABLE | Interest::WRITABLE,
                        ),
                        None => Ok(()),
                    };
                    if let Err(e) = registered {
                        let reason = format!("cannot watch the connection: {e}");
                        self.endpoint.handle_write_failed(now, id, &reason);
                    }
                }
                Err((mut io, refusal)) => {
                    // Best effort: the socket buffer of a new connection takes it.
                    let _ = io.stream.write(&refusal);
                }
            }
            self.handle_events(poll, now);
        }
    }

    /// Reads what the client sent, until the socket is empty or the connection ends.
    fn read(&mut self, id: ConnectionId, now: Instant) {
        loop {
            let Some(io) = self.endpoint.io_mut(id) else {
                return;
            };
            match io.stream.read(&mut self.buffer) {
                Ok(0) => return self.endpoint.handle_received_end(now, id),
                Ok(n) => {
                    let bytes = self.buffer.get(..n).unwrap_or_default();
                    self.endpoint.handle_received(now, id, bytes);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return self.endpoint.handle_write_failed(
                        now,
                        id,
                        &format!("receive failed: {e}"),
                    );
                }
            }
        }
    }

    /// Lets each connection with something to write write its turn.
    fn write_turn(&mut self, poll: &Poll, now: Instant) {
        let mut ready = Vec::new();
        while let Some(id) = self.endpoint.next_ready() {
            ready.push(id);
        }
        for id in ready {
            self.write(id, now);
            self.handle_events(poll, now);
        }
    }

    fn write(&mut self, id: ConnectionId, now: Instant) {
        let mut budget = TURN_BYTES;
        loop {
            self.supply(id, now);
            let Some((io, write)) = self.endpoint.poll_write(id) else {
                return;
            };
            let write_kind = match write {
                Write::File { .. } => WriteKind::File,
                _ => WriteKind::Bytes,
            };
            let (result, shutdown) = match write {
                Write::Bytes(bytes) => (io.stream.write(bytes).map(|n| n as u64), false),
                Write::File { offset, len } => {
                    let len = len.min(budget);
                    (send_file(io, offset, len, &mut self.buffer), false)
                }
                Write::Shutdown => (io.stream.shutdown(Shutdown::Write).map(|_| 0), true),
            };
            match result {
                // A write that takes nothing makes no progress: for a file, it ended.
                Ok(0) if !shutdown => match write_kind {
                    WriteKind::File => return self.endpoint.handle_file_ended(now, id),
                    WriteKind::Bytes => {
                        return self.endpoint.handle_write_failed(
                            now,
                            id,
                            "the socket took nothing",
                        );
                    }
                },
                Ok(n) => {
                    self.endpoint.handle_written(now, id, n);
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        return self.endpoint.handle_turn_over(id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.endpoint.handle_blocked(id);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.endpoint.handle_write_failed(now, id, &e.to_string()),
            }
        }
    }

    /// Gives connection `id` what its stream has for it now.
    fn supply(&mut self, id: ConnectionId, now: Instant) {
        while self.endpoint.wants_stream(id) {
            let chunk = match self.endpoint.io(id) {
                Some(Io {
                    source: Some(Source::Stream(chunks)),
                    ..
                }) => chunks.try_recv(),
                _ => return,
            };
            match chunk {
                Ok(HttpChunk::Start { length }) => {
                    self.endpoint.handle_stream_answered(now, id, length)
                }
                Ok(HttpChunk::Data(data)) => self.endpoint.handle_stream_data(now, id, &data),
                Ok(HttpChunk::End) => self.endpoint.handle_stream_end(now, id),
                Ok(HttpChunk::Failed { status, reason }) => {
                    self.endpoint.handle_stream_failed(now, id, status, reason)
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => self.endpoint.handle_stream_failed(
                    now,
                    id,
                    None,
                    "the mirror's reader ended without a word".into(),
                ),
            }
        }
    }

    /// Does what the endpoint asks, until it asks nothing more.
    fn handle_events(&mut self, poll: &Poll, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Log(level, line) => log::log!(level, "{line}"),
                Event::Open { id, source } => {
                    let opened = self.open(id, source);
                    self.endpoint.handle_opened(now, id, opened);
                    self.supply(id, now);
                }
                Event::ReadIndirect { id, path } => {
                    let content = match &self.root_dir {
                        Some(root) => source::read_indirect(root, &path)
                            .map(|file| (file.path, file.content))
                            .map_err(failure),
                        None => Err(OpenFailure::NotFound(
                            "an indirection needs a local root".into(),
                        )),
                    };
                    self.endpoint.handle_indirect(now, id, content);
                }
                Event::ReleaseSource { id } => {
                    if let Some(io) = self.endpoint.io_mut(id) {
                        io.source = None;
                    }
                }
                Event::Closed { mut io } => {
                    let _ = poll.registry().deregister(&mut io.stream);
                }
                Event::Page { id, page } => match page {
                    Page::Metrics => {
                        let text = metrics::render(&self.metrics.snapshot());
                        let body = text.as_bytes();
                        let kind = metrics::CONTENT_TYPE;
                        self.endpoint.handle_page(now, id, kind, body);
                    }
                    Page::Status => {
                        let page = self.metrics.status_page(now);
                        let kind = "text/html; charset=utf-8";
                        self.endpoint.handle_page(now, id, kind, page.as_bytes());
                    }
                },
            }
        }
    }

    /// Opens what the endpoint asked for and keeps it in the connection's I/O.
    fn open(&mut self, id: ConnectionId, spec: SourceSpec) -> Result<Opened, OpenFailure> {
        let (source, opened) = match spec {
            SourceSpec::File { name } => {
                let root = self
                    .root_dir
                    .as_ref()
                    .ok_or_else(|| OpenFailure::NotFound("a file needs a local root".into()))?;
                let opened = root.open_file(&name).map_err(|e| match e.kind {
                    OpenErrorKind::NotFound | OpenErrorKind::NotAFile => {
                        OpenFailure::NotFound(e.reason)
                    }
                    OpenErrorKind::Refused => OpenFailure::Refused(e.reason),
                })?;
                let size = file_size(&opened.file, &opened.path)?;
                (Source::File(opened.file), Opened::File { size })
            }
            SourceSpec::OperatorFile { path } => {
                let opened = source::open_operator_file(&path).map_err(failure)?;
                let size = file_size(&opened.file, &opened.path)?;
                (Source::File(opened.file), Opened::File { size })
            }
            SourceSpec::Published(Content::Disk(path)) => {
                let opened = source::open_operator_file(&path).map_err(failure)?;
                let size = file_size(&opened.file, &opened.path)?;
                (Source::File(opened.file), Opened::File { size })
            }
            SourceSpec::Published(Content::Memory(file)) => {
                // A descriptor of its own; sendfile reads at explicit offsets, so
                // connections sharing the in-memory file never disturb each other.
                let file = file.try_clone().map_err(|e| {
                    OpenFailure::Busy(format!("cannot share a generated file: {e}"))
                })?;
                let size = file_size(&file, std::path::Path::new("(generated)"))?;
                (Source::File(file), Opened::File { size })
            }
            SourceSpec::Url { url } => {
                let running = self.readers.live();
                if running >= self.max_readers {
                    return Err(OpenFailure::Busy(format!(
                        "{running} mirror readers are still at work"
                    )));
                }
                let waker = Arc::clone(&self.waker);
                let wake = move || drop(waker.wake());
                let chunks = source::spawn_http_reader(url, &self.readers, self.http_timeout, wake)
                    .map_err(|e| OpenFailure::Busy(format!("cannot start a reader: {e}")))?;
                (Source::Stream(chunks), Opened::Stream)
            }
        };
        if let Some(io) = self.endpoint.io_mut(id) {
            io.source = Some(source);
        }
        Ok(opened)
    }
}

/// What a write was, once its borrow of the endpoint is over.
#[derive(Clone, Copy)]
enum WriteKind {
    Bytes,
    File,
}

fn file_size(file: &File, path: &std::path::Path) -> Result<u64, OpenFailure> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| OpenFailure::Refused(format!("{}: {e}", path.display())))
}

/// A TFTP open error as the HTTP status it stands for.
fn failure(e: TftpOpenError) -> OpenFailure {
    match e.code {
        ErrorCode::FileNotFound => OpenFailure::NotFound(e.reason),
        _ => OpenFailure::Refused(e.reason),
    }
}

/// Sends up to `len` bytes of the connection's file from `offset` with
/// `sendfile(2)`: the kernel copies from the page cache to the socket. Where the
/// file's filesystem does not support it (`EINVAL`, `ENOSYS`), the bytes are read
/// into `buffer` and written; 0 means the file ended.
fn send_file(io: &mut Io, offset: u64, len: u64, buffer: &mut [u8]) -> io::Result<u64> {
    let Some(Source::File(file)) = &io.source else {
        return Err(io::Error::other("no file to send"));
    };
    match sendfile(io, file, offset, len) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            use std::os::unix::fs::FileExt;
            let want = usize::try_from(len).unwrap_or(usize::MAX).min(buffer.len());
            let room = buffer.get_mut(..want).unwrap_or_default();
            let read = file.read_at(room, offset)?;
            if read == 0 {
                return Ok(0);
            }
            let bytes = room.get(..read).unwrap_or_default();
            io.stream.write(bytes).map(|n| n as u64)
        }
        other => other,
    }
}

fn sendfile(io: &Io, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    let mut at = libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let count = usize::try_from(len).unwrap_or(usize::MAX);
    // SAFETY: two valid descriptors owned by `io`, and an off_t the call updates.
    let sent = unsafe { libc::sendfile(io.stream.as_raw_fd(), file.as_raw_fd(), &mut at, count) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as u64)
}

/// A non-blocking TCP listener on `at` (SO_REUSEADDR: a restart finds the port free
/// although old connections linger in TIME_WAIT).
fn tcp_listener(at: SocketAddrV4) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(at).into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
