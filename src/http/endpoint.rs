//! The HTTP endpoint (sans-IO): every decision of the file service and every
//! connection's state, with no socket, no file, no clock and no thread.
//!
//! It owns the connection registry (bounded by `max_connections`: a new client takes
//! the slot of the longest-idle connection when all are held, and is refused with 503
//! only when none is idle), the bindings learnt from the lease events (`check_ip`),
//! and the resolution of a request: method, `Host`, the address check, the target
//! decoded and rewritten by `[filters]`, and the source to open: a file under the
//! root, a file the operator named in a filter, a URL under an `http://` root, or a
//! name the room's builder published (menu, torrents, OS files), looked up first.
//!
//! The shell drives it with the vocabulary of every sans-IO machine here:
//! - input: [`Endpoint::handle_accept`], [`Endpoint::handle_received`] and
//!   [`Endpoint::handle_received_end`], [`Endpoint::handle_written`] (and the other
//!   outcomes of a write), the answers to what it asked ([`Endpoint::handle_opened`],
//!   [`Endpoint::handle_indirect`], and a stream's [`Endpoint::handle_stream_answered`],
//!   [`Endpoint::handle_stream_data`], [`Endpoint::handle_stream_end`],
//!   [`Endpoint::handle_stream_failed`]), [`Endpoint::handle_lease`] and
//!   [`Endpoint::handle_timeout`];
//! - output: [`Endpoint::next_ready`] and [`Endpoint::poll_write`] (which connection
//!   has something to write, and what: bytes, a span of its file for `sendfile`, or
//!   a shutdown), [`Endpoint::poll_timeout`], and [`Endpoint::poll_event`] (log lines,
//!   "open this source", "read this indirection file", "release this source", "this
//!   connection is over: close its I/O", "make this built-in page" for `/metrics` and
//!   `/status`, answered with [`Endpoint::handle_page`]); its counts for `/metrics`
//!   ([`Endpoint::counts`]) and, for `/status`, the requests answered
//!   ([`Endpoint::poll_ended`]) and the responses under way ([`Endpoint::in_flight`]).
//!
//! The shell's per-connection I/O (its socket and open source) is the type parameter
//! `Io`: the endpoint holds it in the connection's slot, so the shell keeps no map.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use foldhash::HashMap;
use log::Level;

use super::connection::{Connection, Exchange, Note, Timeouts, Write, printable};
use super::wire::{self, Method, Request, Status};
use crate::config::TftpRoot;
use crate::event::{EventKind, LeaseEvent};
use crate::files::name;
use crate::filters::{self, Filters, Rewrite};
use crate::metrics::TransferCounts;
use crate::room::published::{Content, Published};
use crate::status_page::{Ended, InFlight, Service as StatusService};
use crate::types::MacAddr;

/// What the endpoint is configured with.
#[derive(Debug)]
pub struct Settings {
    /// Where names are served from: a directory (canonical) or an `http://` prefix.
    pub root: TftpRoot,
    pub filters: Filters,
    /// Serve only addresses that hold a binding (`false` also when no DHCP runs).
    pub check_ip: bool,
    pub max_connections: usize,
    pub timeouts: Timeouts,
    /// Names served before the root is looked at: a room's menu, torrents and OS files.
    pub published: Published,
}

/// A connection, as the shell names it (its poll token is made from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(usize);

impl ConnectionId {
    pub fn index(self) -> usize {
        self.0
    }

    pub fn from_index(index: usize) -> ConnectionId {
        ConnectionId(index)
    }
}

/// What to open for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The file `name` under the root directory (confined to it).
    File { name: String },
    /// A file the operator named in a `[filters]` value.
    OperatorFile { path: PathBuf },
    /// The URL, streamed by a reader thread.
    Url { url: String },
    /// A published name's content (generated, or an OS's file).
    Published(Content),
}

/// How the shell opened a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A regular file of `size` bytes.
    File { size: u64 },
    /// A stream: its answer follows.
    Stream,
}

/// Why a source could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFailure {
    /// 404: nothing by that name, or not a regular file.
    NotFound(String),
    /// 403: refused as written, leading out of the root, or unreadable.
    Refused(String),
    /// 503: no room to start a reader.
    Busy(String),
}

/// What the shell should do or log, in order.
#[derive(Debug)]
pub enum Event<Io> {
    Log(Level, String),
    /// Open `source` for the connection, then call [`Endpoint::handle_opened`].
    Open {
        id: ConnectionId,
        source: SourceSpec,
    },
    /// Read the start of `path` under the root (confined to it), then call
    /// [`Endpoint::handle_indirect`].
    ReadIndirect {
        id: ConnectionId,
        path: String,
    },
    /// The connection's source is no longer needed: close it.
    ReleaseSource {
        id: ConnectionId,
    },
    /// The connection is over: close its I/O.
    Closed {
        io: Io,
    },
    /// Make `page` and give it to [`Endpoint::handle_page`].
    Page {
        id: ConnectionId,
        page: Page,
    },
}

/// The pages bootd makes itself. Their paths win over files of the same name
/// under the root, and `check_ip` does not apply to them: they are for the
/// operator's browser and monitoring, which hold no lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/metrics`: the counters in Prometheus's text format.
    Metrics,
    /// `/status`: what the boot network is doing, as one HTML page.
    Status,
}

impl Page {
    /// The page a request target names (its query aside), if any.
    pub fn for_target(target: &str) -> Option<Page> {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        match path {
            "/metrics" => Some(Page::Metrics),
            "/status" => Some(Page::Status),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Slot<Io> {
    io: Io,
    connection: Connection,
    /// In the `ready` queue.
    queued: bool,
    /// Its last write would have blocked: it waits for the socket to be writable.
    blocked: bool,
    /// The name served, when a filter renamed the request (for the log).
    served: Option<String>,
    /// Its source is a stream (in `streams`).
    streaming: bool,
}

/// The HTTP endpoint. See the module documentation.
#[derive(Debug)]
pub struct Endpoint<Io> {
    settings: Settings,
    slots: Vec<Option<Slot<Io>>>,
    free: Vec<usize>,
    count: usize,
    bindings: HashMap<Ipv4Addr, MacAddr>,
    ready: VecDeque<ConnectionId>,
    streams: Vec<ConnectionId>,
    events: VecDeque<Event<Io>>,
    /// Connections refused since the service was last full.
    refused: u64,
    /// What the service did, for `/metrics`.
    counts: TransferCounts,
    /// Requests answered since the shell last took them, for `/status`.
    ended: VecDeque<Ended>,
}

/// The most ended requests kept for the shell between two of its turns.
const MAX_ENDED: usize = 4096;

impl<Io> Endpoint<Io> {
    pub fn new(settings: Settings) -> Endpoint<Io> {
        Endpoint {
            settings,
            slots: Vec::new(),
            free: Vec::new(),
            count: 0,
            bindings: HashMap::default(),
            ready: VecDeque::new(),
            streams: Vec::new(),
            events: VecDeque::new(),
            refused: 0,
            counts: TransferCounts::default(),
            ended: VecDeque::new(),
        }
    }

    #[cfg(test)]
    pub fn connection_count(&self) -> usize {
        self.count
    }

    /// The `index`-th connection reading a stream (the shell reads them when a
    /// reader wakes it).
    pub fn stream_connection(&self, index: usize) -> Option<ConnectionId> {
        self.streams.get(index).copied()
    }

    pub fn io(&self, id: ConnectionId) -> Option<&Io> {
        self.slot(id).map(|s| &s.io)
    }

    pub fn io_mut(&mut self, id: ConnectionId) -> Option<&mut Io> {
        self.slot_mut(id).map(|s| &mut s.io)
    }

    /// A reloaded configuration's root and filters (SIGHUP): requests from now
    /// on are resolved with them; a connection already answering keeps the
    /// source it opened.
    pub fn handle_reload(&mut self, root: TftpRoot, filters: Filters) {
        self.settings.root = root;
        self.settings.filters = filters;
    }

    /// A lease event: ACKs bind the address to the MAC, a release unbinds it.
    pub fn handle_lease(&mut self, lease: &LeaseEvent) {
        match lease.kind {
            EventKind::Boot | EventKind::Lease => {
                self.bindings.insert(lease.ip, lease.mac);
            }
            EventKind::Release => {
                if self.bindings.get(&lease.ip) == Some(&lease.mac) {
                    self.bindings.remove(&lease.ip);
                }
            }
        }
    }

    /// A client connected. Returns its id, or, when every slot is held by a
    /// connection under way, the I/O back with the 503 to send it before closing.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        io: Io,
    ) -> Result<ConnectionId, (Io, Vec<u8>)> {
        if self.count >= self.settings.max_connections {
            let idle = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
                .filter(|(_, s)| s.connection.is_idle())
                .min_by_key(|(_, s)| s.connection.idle_since())
                .map(|(i, _)| ConnectionId(i));
            match idle {
                Some(oldest) => {
                    let held = self.slot(oldest).map(|s| s.connection.peer);
                    if let Some(held) = held {
                        self.log(
                            Level::Debug,
                            format!("{held}: idle connection closed to make room for {peer}"),
                        );
                    }
                    self.remove(oldest);
                }
                None => {
                    self.refused += 1;
                    let level = if self.refused == 1 {
                        Level::Warn
                    } else {
                        Level::Debug
                    };
                    self.log(
                        level,
                        format!(
                            "{peer}: refused: {} connections are busy ([httpd] max_connections)",
                            self.count
                        ),
                    );
                    let mut out = Vec::new();
                    let text = wire::error_body(Status::ServiceUnavailable);
                    wire::ResponseHead {
                        status: Status::ServiceUnavailable,
                        content_type: "text/plain; charset=utf-8",
                        content_length: Some(text.len() as u64),
                        content_range: None,
                        keep_alive: false,
                    }
                    .emit(&mut out);
                    out.extend_from_slice(text.as_bytes());
                    return Err((io, out));
                }
            }
        } else if self.count + 1 < self.settings.max_connections {
            self.refused = 0;
        }
        let slot = Slot {
            io,
            connection: Connection::new(now, peer),
            queued: false,
            blocked: false,
            served: None,
            streaming: false,
        };
        self.count += 1;
        let id = match self.free.pop() {
            Some(i) => {
                if let Some(entry) = self.slots.get_mut(i) {
                    *entry = Some(slot);
                }
                ConnectionId(i)
            }
            None => {
                self.slots.push(Some(slot));
                ConnectionId(self.slots.len() - 1)
            }
        };
        Ok(id)
    }

    /// Bytes from the client.
    pub fn handle_received(&mut self, now: Instant, id: ConnectionId, bytes: &[u8]) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.receive(now, bytes);
        }
        self.after(now, id);
    }

    /// The client closed its side.
    pub fn handle_received_end(&mut self, now: Instant, id: ConnectionId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.receive_end();
        }
        self.after(now, id);
    }

    /// The next connection with something to write and a socket that takes it.
    pub fn next_ready(&mut self) -> Option<ConnectionId> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(slot) = self.slot_mut(id) {
                slot.queued = false;
                if !slot.blocked && slot.has_work() {
                    return Some(id);
                }
            }
        }
        None
    }

    /// What to write on connection `id` next, with its I/O.
    pub fn poll_write(&mut self, id: ConnectionId) -> Option<(&mut Io, Write<'_>)> {
        let slot = self.slots.get_mut(id.0)?.as_mut()?;
        if slot.blocked {
            return None;
        }
        let write = slot.connection.write()?;
        Some((&mut slot.io, write))
    }

    /// `n` bytes were written (0 for a shutdown).
    pub fn handle_written(&mut self, now: Instant, id: ConnectionId, n: u64) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.written(now, n);
        }
        self.after(now, id);
    }

    /// The socket took no more: the connection waits for it to be writable.
    pub fn handle_blocked(&mut self, id: ConnectionId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.blocked = true;
        }
    }

    /// The socket is writable again.
    pub fn handle_writable(&mut self, id: ConnectionId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.blocked = false;
        }
        self.enqueue(id);
    }

    /// The connection wrote its share for this turn: others go first.
    pub fn handle_turn_over(&mut self, id: ConnectionId) {
        self.enqueue(id);
    }

    pub fn handle_write_failed(&mut self, now: Instant, id: ConnectionId, reason: &str) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.write_failed(now, reason);
        }
        self.after(now, id);
    }

    /// The file ended before the span [`Write::File`] asked for.
    pub fn handle_file_ended(&mut self, now: Instant, id: ConnectionId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.file_ended(now);
        }
        self.after(now, id);
    }

    /// The source [`Event::Open`] asked for, opened or not.
    pub fn handle_opened(
        &mut self,
        now: Instant,
        id: ConnectionId,
        opened: Result<Opened, OpenFailure>,
    ) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        match opened {
            Ok(Opened::File { size }) => {
                let name = slot.served_name();
                slot.connection
                    .respond_file(now, size, wire::content_type(&name));
            }
            Ok(Opened::Stream) => {
                slot.connection.await_stream();
                slot.streaming = true;
                self.streams.push(id);
            }
            Err(failure) => self.fail_open(now, id, failure),
        }
        self.after(now, id);
    }

    /// The start of the indirection file [`Event::ReadIndirect`] asked for, or why it
    /// could not be read: its first line names the file to serve.
    pub fn handle_indirect(
        &mut self,
        now: Instant,
        id: ConnectionId,
        content: Result<(PathBuf, Vec<u8>), OpenFailure>,
    ) {
        match content {
            Err(failure) => self.handle_opened(now, id, Err(failure)),
            Ok((path, content)) => {
                match filters::indirect_target(&String::from_utf8_lossy(&content)) {
                    Some(name) => {
                        if let Some(slot) = self.slot_mut(id) {
                            slot.served = Some(name.clone());
                        }
                        self.open_name(now, id, name);
                        self.after(now, id);
                    }
                    None => self.handle_opened(
                        now,
                        id,
                        Err(OpenFailure::NotFound(format!(
                            "{} names no file",
                            path.display()
                        ))),
                    ),
                }
            }
        }
    }

    /// The page [`Event::Page`] asked for, made.
    pub fn handle_page(
        &mut self,
        now: Instant,
        id: ConnectionId,
        content_type: &'static str,
        body: &[u8],
    ) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.respond_page(now, content_type, body);
        }
        self.after(now, id);
    }

    /// What the service did since it started: file requests, how they ended, the
    /// body bytes they sent.
    pub fn counts(&self) -> &TransferCounts {
        &self.counts
    }

    /// The next request answered (a file sent, or refused), for `/status`.
    pub fn poll_ended(&mut self) -> Option<Ended> {
        self.ended.pop_front()
    }

    /// The responses whose body is being sent: client, target, bytes sent, size.
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|slot| {
                let (target, sent, size) = slot.connection.progress()?;
                Some(InFlight {
                    client: slot.connection.peer,
                    name: target.to_string(),
                    sent,
                    size,
                })
            })
            .collect()
    }

    /// Connections whose response body is being sent.
    pub fn sending_count(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|slot| slot.connection.progress().is_some())
            .count()
    }

    /// Whether connection `id` waits for its stream and has room for it.
    pub fn wants_stream(&self, id: ConnectionId) -> bool {
        self.slot(id).is_some_and(|s| s.connection.wants_stream())
    }

    /// The mirror answered 2xx, announcing `length` (if it did).
    pub fn handle_stream_answered(&mut self, now: Instant, id: ConnectionId, length: Option<u64>) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let name = slot.served_name();
        slot.connection
            .respond_stream(now, length, wire::content_type(&name));
        self.after(now, id);
    }

    pub fn handle_stream_data(&mut self, now: Instant, id: ConnectionId, bytes: &[u8]) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.stream_data(now, bytes);
        }
        self.after(now, id);
    }

    pub fn handle_stream_end(&mut self, now: Instant, id: ConnectionId) {
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.stream_end(now);
        }
        self.after(now, id);
    }

    /// The stream failed: `status` is the mirror's, when it answered one.
    pub fn handle_stream_failed(
        &mut self,
        now: Instant,
        id: ConnectionId,
        status: Option<u16>,
        reason: String,
    ) {
        let status = match status {
            Some(404 | 410) => Status::NotFound,
            Some(401 | 403) => Status::Forbidden,
            // No answer, a broken one, or another status: the mirror failed.
            Some(_) | None => Status::BadGateway,
        };
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.source_failed(now, status, reason);
        }
        self.after(now, id);
    }

    /// Expires the connections whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeouts = self.settings.timeouts;
        let due: Vec<ConnectionId> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let deadline = s.as_ref()?.connection.deadline(&timeouts)?;
                (deadline <= now).then_some(ConnectionId(i))
            })
            .collect();
        for id in due {
            if let Some(slot) = self.slot_mut(id) {
                slot.connection.expire(now, &timeouts);
            }
            self.after(now, id);
        }
    }

    /// When to call [`Endpoint::handle_timeout`]: the earliest deadline, or now when
    /// a connection is ready to write.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let writable = |id: &ConnectionId| self.slot(*id).is_some_and(|s| !s.blocked);
        if self.ready.iter().any(writable) {
            return Some(now);
        }
        let timeouts = self.settings.timeouts;
        self.slots
            .iter()
            .filter_map(|s| s.as_ref()?.connection.deadline(&timeouts))
            .min()
    }

    pub fn poll_event(&mut self) -> Option<Event<Io>> {
        self.events.pop_front()
    }

    /// Acts on what connection `id` noted, and queues it if it has something to write.
    fn after(&mut self, now: Instant, id: ConnectionId) {
        loop {
            let Some(slot) = self.slot_mut(id) else {
                return;
            };
            let Some(note) = slot.connection.take_note() else {
                break;
            };
            match note {
                Note::Request(request) => self.resolve(now, id, request),
                Note::Done(exchange) => self.log_exchange(id, exchange),
                Note::ReleaseSource => {
                    if let Some(slot) = self.slot_mut(id) {
                        slot.streaming = false;
                    }
                    self.streams.retain(|s| *s != id);
                    self.events.push_back(Event::ReleaseSource { id });
                }
                Note::Debug(line) => {
                    let peer = slot.connection.peer;
                    self.log(Level::Debug, format!("{peer}: {line}"));
                }
            }
        }
        let closed = self.slot(id).is_some_and(|s| s.connection.is_closed());
        if closed {
            self.remove(id);
        } else {
            self.enqueue(id);
        }
    }

    /// Decides what answers `request`: an error at once, or a source to open.
    fn resolve(&mut self, now: Instant, id: ConnectionId, request: Request) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        slot.served = None;
        let peer = slot.connection.peer;
        if Page::for_target(&request.target).is_none() {
            self.counts.started += 1;
        }
        let refuse = |endpoint: &mut Endpoint<Io>, status: Status, reason: Option<String>| {
            if let Some(slot) = endpoint.slot_mut(id) {
                match reason {
                    Some(reason) => slot.connection.source_failed(now, status, reason),
                    None => slot.connection.respond_error(now, status),
                }
            }
        };
        if request.method == Method::Other {
            return refuse(self, Status::MethodNotAllowed, None);
        }
        if request.minor_version >= 1 && !request.has_host {
            return refuse(self, Status::BadRequest, Some("no Host field".into()));
        }
        if let Some(page) = Page::for_target(&request.target) {
            self.events.push_back(Event::Page { id, page });
            return;
        }
        if self.settings.check_ip && !self.is_bound(peer.ip()) {
            return refuse(
                self,
                Status::Unauthorized,
                Some(format!("{} holds no lease ([httpd] check_ip)", peer.ip())),
            );
        }
        // The name relative to the root, as a TFTP client would write it: one leading
        // `/` is the URL's, so `/c:/x` is the `c:/x` it stands for (and refused).
        let name = match wire::target_name(&request.target) {
            Ok(name) => name.strip_prefix('/').map(str::to_owned).unwrap_or(name),
            Err(e) => return refuse(self, Status::BadRequest, Some(e.to_string())),
        };
        if name.trim_matches('/').is_empty() {
            return refuse(self, Status::NotFound, Some("no index is served".into()));
        }
        if let Some(content) = self.settings.published.lookup(&name) {
            return self.events.push_back(Event::Open {
                id,
                source: SourceSpec::Published(content),
            });
        }
        match self.settings.filters.apply(&name) {
            Rewrite::Unchanged => self.open_name(now, id, name),
            Rewrite::Name { name: served, .. } => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.served = Some(served.clone());
                }
                self.open_name(now, id, served);
            }
            Rewrite::Local { path, .. } => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.served = Some(path.display().to_string());
                }
                self.events.push_back(Event::Open {
                    id,
                    source: SourceSpec::OperatorFile { path },
                });
            }
            Rewrite::Indirect { path, line } => match &self.settings.root {
                TftpRoot::Dir(_) => self.events.push_back(Event::ReadIndirect { id, path }),
                TftpRoot::Url(_) => refuse(
                    self,
                    Status::NotFound,
                    Some(format!(
                        "[filters] line {line}: a [path] indirection needs a local root"
                    )),
                ),
            },
        }
    }

    /// Asks the shell to open `served` under the root.
    fn open_name(&mut self, now: Instant, id: ConnectionId, served: String) {
        let source = match &self.settings.root {
            TftpRoot::Dir(_) => match name::normalise(&served) {
                Ok(_) => SourceSpec::File { name: served },
                Err(refusal) => {
                    let reason = format!("refused name: {refusal}");
                    return self.fail_open(now, id, OpenFailure::Refused(reason));
                }
            },
            TftpRoot::Url(prefix) => match name::url_for(prefix, &served) {
                Ok(url) => SourceSpec::Url { url },
                Err(refusal) => {
                    let reason = format!("refused name: {refusal}");
                    return self.fail_open(now, id, OpenFailure::Refused(reason));
                }
            },
        };
        self.events.push_back(Event::Open { id, source });
    }

    /// Answers the request with the status `failure` calls for; the caller settles
    /// the connection (`after`).
    fn fail_open(&mut self, now: Instant, id: ConnectionId, failure: OpenFailure) {
        let (status, reason) = match failure {
            OpenFailure::NotFound(r) => (Status::NotFound, r),
            OpenFailure::Refused(r) => (Status::Forbidden, r),
            OpenFailure::Busy(r) => (Status::ServiceUnavailable, r),
        };
        if let Some(slot) = self.slot_mut(id) {
            slot.connection.source_failed(now, status, reason);
        }
    }

    fn is_bound(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.bindings.contains_key(&v4),
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .is_some_and(|v4| self.bindings.contains_key(&v4)),
        }
    }

    /// One line per request: client (and MAC), method, target (and what was served),
    /// status, body bytes, duration.
    fn log_exchange(&mut self, id: ConnectionId, exchange: Exchange) {
        let Some(slot) = self.slot(id) else {
            return;
        };
        let peer = slot.connection.peer;
        let ended_name = match &slot.served {
            Some(served) => format!("{} (as {served})", exchange.target),
            None => exchange.target.clone(),
        };
        let mut line = format!("{peer}");
        let mac = match peer.ip() {
            IpAddr::V4(v4) => self.bindings.get(&v4),
            IpAddr::V6(_) => None,
        };
        if let Some(mac) = mac {
            let _ = write!(line, " ({mac})");
        }
        let _ = write!(line, ": {} {}", exchange.method, exchange.target);
        if let Some(served) = &slot.served {
            let _ = write!(line, " (as {})", printable(served));
        }
        match exchange.status {
            Some(status) => {
                let _ = write!(line, " {}", status.code());
            }
            None => line.push_str(" -"),
        }
        if let Some((first, last, size)) = exchange.range {
            let _ = write!(line, " bytes {first}-{last}/{size}");
        }
        let took = exchange.ended.saturating_duration_since(exchange.started);
        let seconds = took.as_secs_f64();
        // Built-in pages are not transfers; they are logged all the same.
        if Page::for_target(&exchange.target).is_none() {
            // The status, not the logged reason: the page is served to the network,
            // and a refusal's reason names paths on this server.
            let failure = match (&exchange.cut, exchange.status) {
                (None, Some(Status::Ok | Status::PartialContent)) => None,
                (_, Some(Status::Ok | Status::PartialContent)) => Some("cut short".to_string()),
                (_, Some(status)) => Some(format!("{} {}", status.code(), status.reason())),
                (_, None) => Some("no answer".to_string()),
            };
            if self.ended.len() >= MAX_ENDED {
                self.ended.pop_front();
            }
            self.ended.push_back(Ended {
                service: StatusService::Http,
                client: peer.ip(),
                name: ended_name,
                bytes: exchange.bytes,
                took,
                failure,
            });
            self.counts.bytes += exchange.bytes;
            match (&exchange.cut, exchange.status) {
                (None, Some(Status::Ok | Status::PartialContent)) => {
                    self.counts.completed += 1;
                    self.counts.durations.observe(took);
                }
                _ => self.counts.failed += 1,
            }
        }
        let _ = write!(line, ", {} bytes in {seconds:.3} s", exchange.bytes);
        let level = match (&exchange.cut, exchange.status) {
            (Some(cut), Some(Status::Ok | Status::PartialContent)) => {
                let _ = write!(line, ", cut: {cut}");
                Level::Warn
            }
            (Some(cut), _) => {
                let _ = write!(line, ": {cut}");
                Level::Info
            }
            (None, _) => Level::Info,
        };
        self.log(level, line);
    }

    fn enqueue(&mut self, id: ConnectionId) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        if !slot.queued && !slot.blocked && slot.has_work() {
            slot.queued = true;
            self.ready.push_back(id);
        }
    }

    fn remove(&mut self, id: ConnectionId) {
        let Some(slot) = self.slots.get_mut(id.0).and_then(Option::take) else {
            return;
        };
        self.count -= 1;
        self.free.push(id.0);
        if slot.streaming {
            self.streams.retain(|s| *s != id);
        }
        self.ready.retain(|r| *r != id);
        self.events.push_back(Event::Closed { io: slot.io });
    }

    fn log(&mut self, level: Level, line: String) {
        self.events.push_back(Event::Log(level, line));
    }

    fn slot(&self, id: ConnectionId) -> Option<&Slot<Io>> {
        self.slots.get(id.0)?.as_ref()
    }

    fn slot_mut(&mut self, id: ConnectionId) -> Option<&mut Slot<Io>> {
        self.slots.get_mut(id.0)?.as_mut()
    }
}

impl<Io> Slot<Io> {
    /// Something to write, or room for a stream's bytes that may be waiting (a
    /// reader's wake-up may have come while there was no room).
    fn has_work(&self) -> bool {
        self.connection.write().is_some() || (self.streaming && self.connection.wants_stream())
    }

    /// The name served (for its content type): as a filter renamed it, else as asked.
    fn served_name(&self) -> String {
        match &self.served {
            Some(served) => served.clone(),
            None => self.connection.current_name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterRule;
    use std::time::Duration;

    /// The shell's I/O in these tests: a number naming the connection.
    type Io = u32;

    const TIMEOUTS: Timeouts = Timeouts {
        idle: Duration::from_secs(30),
        request: Duration::from_secs(10),
    };

    fn settings(root: TftpRoot, check_ip: bool, max_connections: usize) -> Settings {
        let rules = [
            ("pxelinux.cfg/*", "pxelinux.cfg/default"),
            ("local.cfg", "/etc/bootd-local.cfg"),
            ("pick", "[names/{filename}]"),
        ];
        let rules: Vec<FilterRule> = rules
            .iter()
            .enumerate()
            .map(|(i, (pattern, value))| FilterRule {
                pattern: (*pattern).into(),
                value: (*value).into(),
                line: 20 + i,
            })
            .collect();
        let mut filters = Filters::new(&rules).unwrap();
        // A fixed value naming an operator's file, as `with_local_files` finds it.
        filters.set_local_for_tests(21, PathBuf::from("/etc/bootd-local.cfg"));
        Settings {
            root,
            filters,
            check_ip,
            max_connections,
            timeouts: TIMEOUTS,
            published: Published::default(),
        }
    }

    fn endpoint() -> Endpoint<Io> {
        Endpoint::new(settings(TftpRoot::Dir("/srv/tftp".into()), false, 8))
    }

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 5], port))
    }

    fn accept(endpoint: &mut Endpoint<Io>, now: Instant, port: u16) -> ConnectionId {
        match endpoint.handle_accept(now, peer(port), u32::from(port)) {
            Ok(id) => id,
            Err(_) => panic!("refused"),
        }
    }

    /// Everything the endpoint has to write, written whole: (bytes, file spans).
    fn drain(endpoint: &mut Endpoint<Io>, now: Instant) -> (String, Vec<(u64, u64)>) {
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        while let Some(id) = endpoint.next_ready() {
            while let Some((_, write)) = endpoint.poll_write(id) {
                let n = match write {
                    Write::Bytes(b) => {
                        bytes.extend_from_slice(b);
                        b.len() as u64
                    }
                    Write::File { offset, len } => {
                        spans.push((offset, len));
                        len
                    }
                    Write::Shutdown => {
                        bytes.extend_from_slice(b"<shutdown>");
                        0
                    }
                };
                endpoint.handle_written(now, id, n);
            }
        }
        (String::from_utf8(bytes).unwrap(), spans)
    }

    fn events(endpoint: &mut Endpoint<Io>) -> Vec<Event<Io>> {
        std::iter::from_fn(|| endpoint.poll_event()).collect()
    }

    fn opened(events: &[Event<Io>]) -> Vec<SourceSpec> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Open { source, .. } => Some(source.clone()),
                _ => None,
            })
            .collect()
    }

    fn logs(events: &[Event<Io>]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Log(_, line) => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    fn closed(events: &[Event<Io>]) -> Vec<Io> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Closed { io } => Some(*io),
                _ => None,
            })
            .collect()
    }

    fn get(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n").into_bytes()
    }

    #[test]
    fn a_published_name_is_served_before_the_root_and_the_filters() {
        let now = Instant::now();
        let settings = settings(TftpRoot::Dir("/srv/tftp".into()), false, 8);
        let content = crate::room::published::Content::Disk("/srv/oss/a/vmlinuz".into());
        settings
            .published
            .replace("oss/", vec![("oss/a/vmlinuz".into(), content.clone())]);
        let mut e = Endpoint::new(settings);
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/oss/a/vmlinuz"));
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::Published(content)]
        );
        e.handle_opened(now, id, Ok(Opened::File { size: 10 }));
        let _ = drain(&mut e, now);
        // A name not published still comes from the root.
        e.handle_received(now, id, &get("/oss/a/initrd"));
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::File {
                name: "oss/a/initrd".into()
            }]
        );
    }

    #[test]
    fn a_get_is_answered_from_the_file_byte_for_byte_and_the_connection_kept() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/boot/grubx64.efi"));
        let ev = events(&mut e);
        assert_eq!(
            opened(&ev),
            vec![SourceSpec::File {
                name: "boot/grubx64.efi".into()
            }]
        );
        e.handle_opened(now, id, Ok(Opened::File { size: 1000 }));
        let (head, spans) = drain(&mut e, now);
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\n\
             Server: bootd\r\n\
             Content-Type: application/efi\r\n\
             Content-Length: 1000\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: keep-alive\r\n\r\n"
        );
        assert_eq!(spans, vec![(0, 1000)]);
        let ev = events(&mut e);
        assert!(matches!(ev.first(), Some(Event::ReleaseSource { .. })));
        assert_eq!(
            logs(&ev),
            vec!["10.0.0.5:1: GET /boot/grubx64.efi 200, 1000 bytes in 0.000 s"]
        );
        // A second answer to the same open is ignored.
        e.handle_opened(now, id, Ok(Opened::File { size: 5 }));
        assert_eq!(drain(&mut e, now), (String::new(), vec![]));
        // Kept for the next request.
        assert_eq!(e.connection_count(), 1);
        e.handle_received(now, id, &get("/x"));
        assert_eq!(opened(&events(&mut e)).len(), 1);
    }

    #[test]
    fn metrics_is_made_by_bootd_over_a_file_of_that_name_and_not_counted() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/metrics?x=1"));
        let ev = events(&mut e);
        assert!(opened(&ev).is_empty(), "no file is opened");
        assert!(matches!(
            ev.as_slice(),
            [Event::Page {
                page: Page::Metrics,
                ..
            }]
        ));
        e.handle_page(now, id, "text/plain", b"a 1\n");
        let (text, spans) = drain(&mut e, now);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\n\
             Server: bootd\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: 4\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: keep-alive\r\n\r\n\
             a 1\n"
        );
        assert!(spans.is_empty());
        assert_eq!(
            logs(&events(&mut e)),
            vec!["10.0.0.5:1: GET /metrics?x=1 200, 4 bytes in 0.000 s"]
        );
        assert_eq!(*e.counts(), TransferCounts::default());
        // A file is counted: started, then completed with its bytes.
        e.handle_received(now, id, &get("/metricsfile"));
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::File { size: 10 }));
        drain(&mut e, now);
        events(&mut e);
        let c = e.counts();
        assert_eq!((c.started, c.completed, c.failed, c.bytes), (1, 1, 0, 10));
        assert_eq!(c.durations.count, 1);
        e.handle_received(now, id, &get("/missing"));
        events(&mut e);
        e.handle_opened(now, id, Err(OpenFailure::NotFound("none".into())));
        drain(&mut e, now);
        events(&mut e);
        assert_eq!((e.counts().started, e.counts().failed), (2, 1));
        let ended: Vec<_> = std::iter::from_fn(|| e.poll_ended()).collect();
        assert_eq!(ended.len(), 2, "pages are not transfers: {ended:?}");
        assert_eq!(
            (ended[0].name.as_str(), ended[0].bytes),
            ("/metricsfile", 10)
        );
        assert_eq!(ended[0].failure, None);
        assert_eq!(ended[1].failure.as_deref(), Some("404 Not Found"));
        // /status is bootd's too.
        e.handle_received(now, id, &get("/status"));
        assert!(matches!(
            events(&mut e).as_slice(),
            [Event::Page {
                page: Page::Status,
                ..
            }]
        ));
    }

    #[test]
    fn a_range_gets_206_an_unsatisfiable_one_416_and_head_no_body() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        let request = "GET /vmlinuz HTTP/1.1\r\nHost: h\r\nRange: bytes=-100\r\n\r\n";
        e.handle_received(now, id, request.as_bytes());
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::File { size: 1000 }));
        let (head, spans) = drain(&mut e, now);
        assert!(
            head.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nContent-Length: 100\r\nContent-Range: bytes 900-999/1000\r\n"));
        assert_eq!(spans, vec![(900, 100)]);
        assert!(logs(&events(&mut e))[0].contains(" 206 bytes 900-999/1000, 100 bytes"));

        let request = "GET /vmlinuz HTTP/1.1\r\nHost: h\r\nRange: bytes=1000-\r\n\r\n";
        e.handle_received(now, id, request.as_bytes());
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::File { size: 1000 }));
        let (head, spans) = drain(&mut e, now);
        assert_eq!(
            head,
            "HTTP/1.1 416 Range Not Satisfiable\r\n\
             Server: bootd\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 26\r\n\
             Content-Range: bytes */1000\r\n\
             Accept-Ranges: bytes\r\n\
             Connection: keep-alive\r\n\r\n\
             416 Range Not Satisfiable\n"
        );
        assert!(spans.is_empty());
        events(&mut e);

        // HEAD: the head GET would have, no body; If-Range (no validators): all of it.
        let request = "HEAD /a.iso HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\nIf-Range: x\r\n\r\n";
        e.handle_received(now, id, request.as_bytes());
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::File { size: 1000 }));
        let (head, spans) = drain(&mut e, now);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: application/vnd.efi-iso\r\nContent-Length: 1000\r\n"));
        assert!(spans.is_empty());
        assert!(logs(&events(&mut e))[0].contains("HEAD /a.iso 200, 0 bytes"));
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_on_one_connection() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        let mut two = get("/a");
        two.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        e.handle_received(now, id, &two);
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::File { name: "a".into() }]
        );
        e.handle_opened(now, id, Ok(Opened::File { size: 1 }));
        drain(&mut e, now);
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::File { name: "b".into() }]
        );
        e.handle_opened(now, id, Ok(Opened::File { size: 2 }));
        let (bytes, spans) = drain(&mut e, now);
        assert!(
            bytes.contains("Connection: close\r\n\r\n<shutdown>"),
            "{bytes}"
        );
        assert_eq!(spans, vec![(0, 2)]);
        // The client closes after reading: the connection is over.
        e.handle_received_end(now, id);
        assert_eq!(closed(&events(&mut e)), vec![1]);
        assert_eq!(e.connection_count(), 0);
    }

    #[test]
    fn check_ip_serves_only_leased_addresses_and_logs_their_mac() {
        let now = Instant::now();
        let mut e: Endpoint<Io> = Endpoint::new(settings(TftpRoot::Dir("/srv".into()), true, 8));
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/vmlinuz"));
        let (bytes, _) = drain(&mut e, now);
        assert!(
            bytes.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
            "{bytes}"
        );
        let ev = events(&mut e);
        assert!(opened(&ev).is_empty());
        assert!(
            logs(&ev)[0]
                .contains("401, 0 bytes in 0.000 s: 10.0.0.5 holds no lease ([httpd] check_ip)")
        );
        let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
        let mut lease = LeaseEvent {
            kind: EventKind::Boot,
            mac,
            uuid: None,
            ip: Ipv4Addr::new(10, 0, 0, 5),
            boot_file: None,
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
        };
        e.handle_lease(&lease);
        e.handle_received(now, id, &get("/vmlinuz"));
        assert_eq!(opened(&events(&mut e)).len(), 1);
        e.handle_opened(now, id, Ok(Opened::File { size: 5 }));
        drain(&mut e, now);
        let line = &logs(&events(&mut e))[0];
        assert!(
            line.starts_with("10.0.0.5:1 (52-54-00-12-34-56): GET /vmlinuz 200"),
            "{line}"
        );
        lease.kind = EventKind::Release;
        e.handle_lease(&lease);
        e.handle_received(now, id, &get("/vmlinuz"));
        assert!(drain(&mut e, now).0.starts_with("HTTP/1.1 401 "));
    }

    #[test]
    fn every_hostile_name_is_refused_before_any_file_is_opened() {
        let now = Instant::now();
        let mut settings = settings(TftpRoot::Dir("/srv/tftp".into()), false, 8);
        // Without filters: a rule may map a hostile name to a fixed, harmless one.
        settings.filters = Filters::default();
        let mut e: Endpoint<Io> = Endpoint::new(settings);
        for (i, name) in crate::files::name::HOSTILE.iter().enumerate() {
            // Every byte escaped, then the same name written as plainly as HTTP allows.
            let escaped: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
            let plain: String = name
                .bytes()
                .map(|b| {
                    if b.is_ascii_graphic() {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            for target in [format!("/{escaped}"), format!("/{plain}")] {
                let id = accept(&mut e, now, i as u16);
                e.handle_received(now, id, &get(&target));
                let ev = events(&mut e);
                let opened = opened(&ev);
                if !opened.is_empty() {
                    // Decoded, an escaped `/` is a plain one: `/%2fetc/passwd` asks for
                    // the root's own `etc/passwd`, which is no way out of it.
                    assert!(
                        matches!(&opened[..], [SourceSpec::File { name }] if name::normalise(name).is_ok_and(|n| !n.contains("..") && !n.contains('%'))),
                        "{name:?} as {target}: {opened:?}"
                    );
                    e.handle_received_end(now, id);
                    events(&mut e);
                    continue;
                }
                let (bytes, _) = drain(&mut e, now);
                assert!(
                    ["HTTP/1.1 400 ", "HTTP/1.1 403 ", "HTTP/1.1 404 "]
                        .iter()
                        .any(|s| bytes.starts_with(s)),
                    "{name:?} as {target}: {bytes}"
                );
                e.handle_received_end(now, id);
                events(&mut e);
            }
        }
        // A name with a drive prefix is refused once the URL's own `/` is gone.
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/c:/boot.ini"));
        assert!(opened(&events(&mut e)).is_empty());
        assert!(drain(&mut e, now).0.starts_with("HTTP/1.1 403 "));
    }

    #[test]
    fn filters_rename_serve_the_operators_file_and_read_indirections() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/pxelinux.cfg/01-52-54-00-12-34-56"));
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::File {
                name: "pxelinux.cfg/default".into()
            }]
        );
        e.handle_opened(now, id, Ok(Opened::File { size: 3 }));
        drain(&mut e, now);
        assert!(
            logs(&events(&mut e))[0]
                .contains("GET /pxelinux.cfg/01-52-54-00-12-34-56 (as pxelinux.cfg/default) 200")
        );
        e.handle_received(now, id, &get("/local.cfg"));
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::OperatorFile {
                path: "/etc/bootd-local.cfg".into()
            }]
        );
        e.handle_opened(now, id, Ok(Opened::File { size: 3 }));
        drain(&mut e, now);
        events(&mut e);
        e.handle_received(now, id, &get("/pick"));
        let ev = events(&mut e);
        assert!(matches!(&ev[..], [Event::ReadIndirect { path, .. }] if path == "names/pick"));
        e.handle_indirect(
            now,
            id,
            Ok(("/srv/tftp/names/pick".into(), b"images/k\n".to_vec())),
        );
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::File {
                name: "images/k".into()
            }]
        );
    }

    #[test]
    fn other_methods_get_405_a_missing_host_400_and_failures_their_status() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, b"DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n");
        let (bytes, _) = drain(&mut e, now);
        assert!(bytes.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(bytes.contains("Allow: GET, HEAD\r\n"));
        e.handle_received(now, id, b"GET /x HTTP/1.1\r\n\r\n");
        let (bytes, _) = drain(&mut e, now);
        assert!(bytes.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bytes}");
        assert!(bytes.ends_with("<shutdown>"), "{bytes}");
        let id = accept(&mut e, now, 2);
        for (failure, status) in [
            (OpenFailure::NotFound("gone".into()), "404 Not Found"),
            (OpenFailure::Refused("mode".into()), "403 Forbidden"),
            (OpenFailure::Busy("full".into()), "503 Service Unavailable"),
        ] {
            e.handle_received(now, id, &get("/x"));
            events(&mut e);
            e.handle_opened(now, id, Err(failure));
            let (bytes, _) = drain(&mut e, now);
            assert!(
                bytes.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{bytes}"
            );
        }
        // Only the 503 closes: a full server may be free on the next connection.
        assert!(e.next_ready().is_none());
    }

    #[test]
    fn a_slow_head_gets_408_an_idle_connection_closes_and_a_huge_head_431() {
        let start = Instant::now();
        let mut e = endpoint();
        let slow = accept(&mut e, start, 1);
        let idle = accept(&mut e, start, 2);
        e.handle_received(start, slow, b"GET /vmlinuz HT");
        assert_eq!(e.poll_timeout(start), Some(start + TIMEOUTS.request));
        // Trickling bytes does not move the deadline.
        let later = start + Duration::from_secs(9);
        e.handle_received(later, slow, b"T");
        e.handle_timeout(later);
        assert!(drain(&mut e, later).0.is_empty());
        let at = start + TIMEOUTS.request;
        e.handle_timeout(at);
        let (bytes, _) = drain(&mut e, at);
        assert!(
            bytes.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{bytes}"
        );
        assert!(bytes.ends_with("<shutdown>"));
        let ev = events(&mut e);
        assert!(
            logs(&ev)[0].contains("408, 0 bytes in 0.000 s: request head not complete within 10 s")
        );
        // Lingering: closed when the client closes, or after a while.
        e.handle_timeout(at + connection_linger());
        assert_eq!(closed(&events(&mut e)), vec![1]);
        // The idle one closes at its own deadline, silently.
        e.handle_timeout(start + TIMEOUTS.idle);
        let ev = events(&mut e);
        assert_eq!(closed(&ev), vec![2]);
        assert!(logs(&ev)[0].ends_with("idle for 30 s"));
        let _ = idle;

        let big = accept(&mut e, start, 3);
        e.handle_received(start, big, b"GET /x HTTP/1.1\r\nX-Big: ");
        e.handle_received(start, big, &vec![b'a'; wire::MAX_HEAD]);
        let (bytes, _) = drain(&mut e, start);
        assert!(bytes.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(bytes.contains("Connection: close\r\n") && bytes.ends_with("<shutdown>"));
        // The rest of the head is read and dropped, up to a point, then cut.
        e.handle_received(start, big, &vec![b'a'; 100 * 1024]);
        assert!(closed(&events(&mut e)).is_empty());
        e.handle_received(start, big, &vec![b'a'; 200 * 1024]);
        assert_eq!(closed(&events(&mut e)), vec![3]);
    }

    fn connection_linger() -> Duration {
        super::super::connection::LINGER
    }

    #[test]
    fn a_client_that_stops_reading_is_cut_after_the_idle_timeout() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/big"));
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::File { size: 1 << 30 }));
        let ready = e.next_ready();
        assert_eq!(ready, Some(id));
        let n = match e.poll_write(id) {
            Some((_, Write::Bytes(b))) => b.len() as u64,
            other => panic!("{other:?}"),
        };
        e.handle_written(now, id, n);
        e.handle_written(now, id, 4096);
        e.handle_blocked(id);
        assert!(e.poll_write(id).is_none());
        // Sending more requests meanwhile does not keep a stalled answer alive.
        e.handle_received(now + Duration::from_secs(20), id, &get("/next"));
        let at = now + TIMEOUTS.idle;
        assert_eq!(e.poll_timeout(now), Some(at));
        e.handle_timeout(at);
        let ev = events(&mut e);
        let line = &logs(&ev)[0];
        assert!(
            line.contains("GET /big 200, 4096 bytes in 30.000 s, cut: no progress for 30 s"),
            "{line}"
        );
        assert_eq!(closed(&ev), vec![1]);
    }

    #[test]
    fn a_file_that_shrinks_cuts_the_response() {
        let now = Instant::now();
        let mut e = endpoint();
        let id = accept(&mut e, now, 1);
        e.handle_received(now, id, &get("/f"));
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::File { size: 100 }));
        let _ = drain_head(&mut e, now, id);
        e.handle_file_ended(now, id);
        let ev = events(&mut e);
        assert!(logs(&ev)[0].contains("cut: the file ended before its announced size"));
        assert_eq!(closed(&ev), vec![1]);
    }

    fn drain_head(e: &mut Endpoint<Io>, now: Instant, id: ConnectionId) -> String {
        let Some((_, Write::Bytes(b))) = e.poll_write(id) else {
            panic!("no head");
        };
        let head = String::from_utf8(b.to_vec()).unwrap();
        e.handle_written(now, id, head.len() as u64);
        head
    }

    #[test]
    fn a_full_service_closes_its_longest_idle_connection_or_answers_503() {
        let now = Instant::now();
        let mut e: Endpoint<Io> = Endpoint::new(settings(TftpRoot::Dir("/srv".into()), false, 2));
        let first = accept(&mut e, now, 1);
        let second = accept(&mut e, now + Duration::from_secs(1), 2);
        // Both idle: a third client takes the place of the one idle longest.
        let third = accept(&mut e, now + Duration::from_secs(2), 3);
        assert_eq!(closed(&events(&mut e)), vec![1]);
        assert_eq!(third, first, "the slot is reused");
        // Both busy: the next one is refused with 503.
        for id in [second, third] {
            e.handle_received(now, id, &get("/x"));
        }
        events(&mut e);
        match e.handle_accept(now, peer(4), 4) {
            Err((io, bytes)) => {
                assert_eq!(io, 4);
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
                assert!(text.ends_with("Connection: close\r\n\r\n503 Service Unavailable\n"));
            }
            Ok(_) => panic!("admitted past max_connections"),
        }
        assert!(logs(&events(&mut e))[0].contains("refused: 2 connections are busy"));
    }

    #[test]
    fn a_stream_is_sent_as_it_comes_with_its_range_and_its_failures() {
        let now = Instant::now();
        let root = TftpRoot::Url("http://mirror/netboot".into());
        let mut e: Endpoint<Io> = Endpoint::new(settings(root, false, 8));
        let id = accept(&mut e, now, 1);
        let request = "GET /linux HTTP/1.1\r\nHost: h\r\nRange: bytes=3-6\r\n\r\n";
        e.handle_received(now, id, request.as_bytes());
        assert_eq!(
            opened(&events(&mut e)),
            vec![SourceSpec::Url {
                url: "http://mirror/netboot/linux".into()
            }]
        );
        e.handle_opened(now, id, Ok(Opened::Stream));
        assert_eq!(e.stream_connection(0), Some(id));
        assert!(e.wants_stream(id));
        e.handle_stream_answered(now, id, Some(10));
        let head = drain_head(&mut e, now, id);
        assert!(head.contains("206 Partial Content\r\n"), "{head}");
        assert!(head.contains("Content-Length: 4\r\nContent-Range: bytes 3-6/10\r\n"));
        assert!(e.wants_stream(id));
        e.handle_stream_data(now, id, b"0123");
        e.handle_stream_data(now, id, b"");
        let (body, _) = drain(&mut e, now);
        assert_eq!(body, "3");
        e.handle_stream_data(now, id, b"456789");
        let (body, _) = drain(&mut e, now);
        assert_eq!(body, "456");
        // The range is whole: the reader is let go and the connection kept.
        let ev = events(&mut e);
        assert!(ev.iter().any(|e| matches!(e, Event::ReleaseSource { .. })));
        assert!(logs(&ev)[0].contains("GET /linux 206 bytes 3-6/10, 4 bytes"));
        assert_eq!(e.stream_connection(0), None);

        // The mirror's 404 is a 404; a mirror that fails later cuts the body.
        e.handle_received(now, id, &get("/missing"));
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::Stream));
        e.handle_stream_failed(now, id, Some(404), "GET …: HTTP 404".into());
        assert!(
            drain(&mut e, now)
                .0
                .starts_with("HTTP/1.1 404 Not Found\r\n")
        );
        events(&mut e);
        e.handle_received(now, id, &get("/linux"));
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::Stream));
        e.handle_stream_answered(now, id, Some(10));
        e.handle_stream_data(now, id, b"01234");
        drain(&mut e, now);
        e.handle_stream_end(now, id);
        let ev = events(&mut e);
        assert!(logs(&ev)[0].contains("cut: the source ended before its announced length"));
        assert_eq!(closed(&ev), vec![1]);

        // No length announced: the body ends with the connection.
        let id = accept(&mut e, now, 2);
        e.handle_received(now, id, &get("/linux"));
        events(&mut e);
        e.handle_opened(now, id, Ok(Opened::Stream));
        e.handle_stream_answered(now, id, None);
        e.handle_stream_data(now, id, b"abc");
        e.handle_stream_end(now, id);
        let (bytes, _) = drain(&mut e, now);
        assert!(!bytes.contains("Content-Length"), "{bytes}");
        assert!(
            bytes.ends_with("Connection: close\r\n\r\nabc<shutdown>"),
            "{bytes}"
        );
    }

    mod random_traffic {
        use super::*;
        use proptest::prelude::*;

        const PIECES: &[&[u8]] = &[
            b"GET /vmlinuz HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HEAD /a.efi HTTP/1.1\r\nHost: h\r\nRange: bytes=5-\r\n\r\n",
            b"GET /x HTTP/1.0\r\n\r\n",
            b"GET /../x HTTP/1.1\r\nHost: h\r\n\r\n",
            b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
            b"GET /pxelinux.cfg/1 HT",
            b"TP/1.1\r\nHost: h\r\n\r\n",
            b"\x16\x03\x01garbage\r\n\r\n",
            b"\r\n",
        ];

        #[derive(Debug, Clone)]
        enum Op {
            Accept,
            Receive(usize, usize),
            End(usize),
            Open(bool, u64),
            Write(usize, u64),
            Block(usize),
            Writable(usize),
            Wait(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                Just(Op::Accept),
                (0..6usize, 0..PIECES.len()).prop_map(|(c, p)| Op::Receive(c, p)),
                (0..6usize).prop_map(Op::End),
                (any::<bool>(), 0..3000u64).prop_map(|(ok, size)| Op::Open(ok, size)),
                (0..6usize, 0..5000u64).prop_map(|(c, n)| Op::Write(c, n)),
                (0..6usize).prop_map(Op::Block),
                (0..6usize).prop_map(Op::Writable),
                (0..40u64).prop_map(Op::Wait),
            ]
        }

        proptest! {
            #[test]
            fn random_traffic_never_panics_and_every_connection_ends(ops in proptest::collection::vec(op(), 1..80)) {
                let mut now = Instant::now();
                let mut e: Endpoint<Io> = Endpoint::new(settings(TftpRoot::Dir("/srv".into()), false, 4));
                let mut ids: Vec<ConnectionId> = Vec::new();
                let mut opening: Vec<ConnectionId> = Vec::new();
                let mut port = 0u16;
                for op in ops {
                    match op {
                        Op::Accept => {
                            port += 1;
                            if let Ok(id) = e.handle_accept(now, peer(port), u32::from(port)) {
                                ids.push(id);
                            }
                        }
                        Op::Receive(c, p) => if let Some(id) = ids.get(c) {
                            e.handle_received(now, *id, PIECES[p]);
                        },
                        Op::End(c) => if let Some(id) = ids.get(c) {
                            e.handle_received_end(now, *id);
                        },
                        Op::Open(ok, size) => if let Some(id) = opening.pop() {
                            let opened = if ok { Ok(Opened::File { size }) } else { Err(OpenFailure::NotFound("x".into())) };
                            e.handle_opened(now, id, opened);
                        },
                        Op::Write(c, n) => {
                            if let Some(id) = ids.get(c).copied()
                                && let Some((_, write)) = e.poll_write(id)
                            {
                                let n = match write {
                                    Write::Bytes(b) => n.min(b.len() as u64),
                                    Write::File { len, .. } => n.min(len),
                                    Write::Shutdown => 0,
                                };
                                e.handle_written(now, id, n);
                            }
                        }
                        Op::Block(c) => if let Some(id) = ids.get(c) {
                            e.handle_blocked(*id);
                        },
                        Op::Writable(c) => if let Some(id) = ids.get(c) {
                            e.handle_writable(*id);
                        },
                        Op::Wait(s) => {
                            now += Duration::from_secs(s);
                            e.handle_timeout(now);
                        }
                    }
                    while let Some(event) = e.poll_event() {
                        if let Event::Open { id, .. } = event {
                            opening.push(id);
                        }
                    }
                    prop_assert!(e.connection_count() <= 4);
                }
                // Left alone, every connection ends: idle, cut, or closed after lingering.
                for _ in 0..4 {
                    now += Duration::from_secs(3600);
                    e.handle_timeout(now);
                    while e.poll_event().is_some() {}
                }
                prop_assert_eq!(e.connection_count(), 0);
            }
        }
    }
}
