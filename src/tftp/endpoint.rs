//! The TFTP endpoint (sans-IO): every protocol decision of the TFTP service and every
//! piece of per-client state, with no socket, no clock, no file and no thread.
//!
//! It owns the transfer registry (one entry per client endpoint, each in a [`State`]:
//! its source being opened, waiting for an HTTP answer, running, or failing with an
//! ERROR still to send), the retransmission and stall timers, the refusals (server
//! busy, repeated request, upload, malformed request, stray packets, a foreign
//! endpoint on a transfer's port) and the `[filters]` rewriting of requested names.
//!
//! The service shell drives it with the vocabulary of every sans-IO machine here:
//! - input: [`Endpoint::handle_datagram`] (from the TFTP port or a transfer's port),
//!   [`Endpoint::handle_timeout`], and the `handle_*` answers to what it asked for:
//!   an indirection file read ([`Endpoint::handle_indirect`]), a source and port
//!   opened or not ([`Endpoint::handle_source_opened`], [`Endpoint::handle_open_failed`]),
//!   and the source's bytes ([`Endpoint::handle_source_read`] for a local file,
//!   [`Endpoint::handle_source_answered`], [`Endpoint::handle_source_data`],
//!   [`Endpoint::handle_source_end`], [`Endpoint::handle_source_failed`] for HTTP);
//! - output: [`Endpoint::poll_transmit`] (what to send, from which port, to whom; DATA
//!   is lent from the transfer's buffer with its header apart, so it reaches `sendmsg`
//!   without a copy), [`Endpoint::poll_timeout`] (when to call `handle_timeout`), and
//!   [`Endpoint::poll_event`] (log lines, "read this indirection file", "open this
//!   source and a port", "this transfer is over: close its I/O").
//!
//! Each transfer talks from a port of its own (its TID, RFC 1350) unless
//! [`Settings::single_port`] serves every transfer from the TFTP port, as dnsmasq's
//! `--tftp-single-port` does: the shell can then read the ACKs of every client with
//! one system call and send the blocks of every transfer with another, and a client
//! behind NAT or a stateful firewall gets its blocks from the port it asked. A
//! transfer is then known by its client's endpoint alone, so the TID rules change:
//! a datagram from an endpoint with no transfer is a stray packet on the TFTP port
//! (dropped, as there; no ERROR 5 is sent, since no transfer's port was reached),
//! and refusals come from the TFTP port instead of a new one.
//!
//! The shell's per-transfer I/O (the transfer's port, where its bytes come from) is the
//! type parameter `Io`: the endpoint holds it in the transfer's entry and gives it back
//! with [`Event::Closed`], so the shell keeps no map of its own. Entries live in a slab
//! indexed by [`TransferId`], which the shell turns into its poll token, so a datagram on
//! a transfer's port finds its transfer without hashing; a map from client endpoint to id
//! serves the requests on the TFTP port.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

// Looked up on every request; foldhash keeps a random per-process seed.
use foldhash::HashMap;
use log::Level;

use super::timer::TimerWheel;
use super::transfer::{Datagram, Limits, Outcome, Received, Transfer};
use super::wire::{self, ErrorCode, Packet, Request};
use crate::config::TftpRoot;
use crate::files::name::{self, Refusal};
use crate::filters::{self, Filters, Rewrite};
use crate::metrics::TransferCounts;
use crate::status_page::{Ended, InFlight, Service as StatusService};

/// Timer wheel: 10 ms ticks, 4096 slots (41 s per revolution).
const TICK: Duration = Duration::from_millis(10);
const SLOTS: usize = 4096;
/// How much of an indirection file is read for the name it holds.
pub const INDIRECT_READ: usize = 4096;

/// What the endpoint is configured with.
#[derive(Debug)]
pub struct Settings {
    /// Where names are served from; a directory is given canonical.
    pub root: TftpRoot,
    /// `[filters]`, compiled.
    pub filters: Filters,
    pub max_transfers: usize,
    /// Transfers one client address may hold at once.
    pub max_transfers_per_client: usize,
    /// How long an HTTP source may keep a transfer waiting (answer or bytes).
    pub http_timeout: Duration,
    /// Every transfer talks from the TFTP port where its request arrived, rather
    /// than from a port of its own.
    pub single_port: bool,
}

/// Why a name cannot be served: the TFTP error to send and the reason to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub code: ErrorCode,
    /// Sent to the client: short, no server paths.
    pub client_message: &'static str,
    /// Logged: the full reason.
    pub reason: String,
}

impl OpenError {
    /// ERROR 2: the name exists but may not be served.
    pub fn refused(reason: impl Into<String>) -> OpenError {
        OpenError {
            code: ErrorCode::AccessViolation,
            client_message: "access violation",
            reason: reason.into(),
        }
    }

    /// ERROR 1.
    pub fn not_found(reason: impl Into<String>) -> OpenError {
        OpenError {
            code: ErrorCode::FileNotFound,
            client_message: "file not found",
            reason: reason.into(),
        }
    }
}

impl From<Refusal> for OpenError {
    fn from(r: Refusal) -> OpenError {
        OpenError::refused(format!("refused name: {r}"))
    }
}

/// A transfer, as the shell names it (its poll token is made from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferId(usize);

impl TransferId {
    pub fn index(self) -> usize {
        self.0
    }

    pub fn from_index(index: usize) -> TransferId {
        TransferId(index)
    }
}

/// Where a datagram arrived.
#[derive(Debug, Clone, Copy)]
pub enum Arrival {
    /// The TFTP port on `address`, whose transfers get `limits`.
    Listener { address: Ipv4Addr, limits: Limits },
    /// A transfer's own port.
    Transfer(TransferId),
}

/// What to open for a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The file `name` under the root directory (confined to it).
    File { name: String },
    /// The URL, streamed by a reader thread.
    Http { url: String },
    /// A file the operator named in a `[filters]` value, outside the root.
    OperatorFile { path: PathBuf },
}

/// The start of an indirection file, as the shell read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectFile {
    /// Where it really is (for the log).
    pub path: PathBuf,
    /// Its first [`INDIRECT_READ`] bytes.
    pub content: Vec<u8>,
}

/// Why the shell could not open a transfer's source or port.
#[derive(Debug)]
pub enum OpenFailure {
    /// The file cannot be served (no such file, outside the root, not a regular file).
    Source(OpenError),
    /// `running` HTTP readers are still at work: no more may start.
    ReadersBusy { running: usize },
    /// The HTTP reader cannot start.
    Reader(std::io::Error),
    /// The transfer's port cannot be opened.
    Socket(std::io::Error),
    /// The transfer's port cannot be watched.
    Watch(std::io::Error),
}

/// How an HTTP source failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFailure {
    /// The request failed: no connection, a non-2xx status, a broken body.
    Http { status: Option<u16>, reason: String },
    /// The reader went away without a word.
    ReaderEnded,
}

/// What the shell should do or log, in order.
#[derive(Debug)]
pub enum Event<Io> {
    /// A line for the log.
    Log(Level, String),
    /// A datagram from a transfer's client and what it did (for trace logs).
    Received {
        client: SocketAddr,
        received: Received,
    },
    /// Read the start of `path` under the root directory (confined to it) and give it
    /// to [`Endpoint::handle_indirect`].
    ReadIndirect { id: TransferId, path: String },
    /// Open `source`, and when `own_port` a port on `local`, for the transfer to
    /// `client`, then call [`Endpoint::handle_source_opened`] or
    /// [`Endpoint::handle_open_failed`]. Without a port of its own the transfer talks
    /// from the TFTP port on `local` ([`Transmit::FromServerPort`]), and its client's
    /// datagrams arrive there.
    Open {
        id: TransferId,
        client: SocketAddr,
        local: Ipv4Addr,
        source: SourceSpec,
        own_port: bool,
    },
    /// The transfer is over: close its I/O. A local file was read up to `position`.
    Closed { io: Io, position: u64 },
}

/// A datagram to send.
#[derive(Debug)]
pub enum Transmit<'a, Io> {
    /// From a transfer's port to its client.
    ToClient {
        io: &'a mut Io,
        client: SocketAddr,
        datagram: Datagram<'a>,
    },
    /// From a transfer's port to another endpoint (ERROR 5).
    FromTransfer {
        io: &'a mut Io,
        to: SocketAddr,
        bytes: &'a [u8],
    },
    /// From a new port on `local`, as a transfer would answer, so that clients that
    /// lock onto the server's port accept it (a refused request).
    FromNewPort {
        local: Ipv4Addr,
        to: SocketAddr,
        bytes: &'a [u8],
    },
    /// From the TFTP port on `local` (single-port mode): a transfer's datagram to its
    /// client, or a refusal.
    FromServerPort {
        local: Ipv4Addr,
        to: SocketAddr,
        datagram: Datagram<'a>,
    },
}

/// Where a transfer stands.
#[derive(Debug)]
// Nearly every entry is `Running`: boxing the transfer would only add a pointer chase
// to every DATA and ACK.
#[expect(clippy::large_enum_variant)]
enum State {
    /// The shell is reading an indirection file or opening the source and port.
    Opening {
        request: Request,
        limits: Limits,
        /// The `[filters]` line of an indirection being read.
        filter_line: usize,
    },
    /// The HTTP source is asked; the transfer starts with its answer, whose length
    /// answers `tsize`.
    WaitingForSource {
        request: Request,
        limits: Limits,
    },
    Running(Transfer),
    /// The source failed before the transfer began: `error` goes to the client, then
    /// the transfer ends with `reason`.
    Failing {
        error: Vec<u8>,
        sent: bool,
        reason: String,
    },
}

impl State {
    /// Takes the state out to move into the next one; the placeholder left behind
    /// allocates nothing and is replaced at once.
    fn take(&mut self) -> State {
        std::mem::replace(
            self,
            State::Failing {
                error: Vec::new(),
                sent: true,
                reason: String::new(),
            },
        )
    }
}

#[derive(Debug)]
struct Entry<Io> {
    client: SocketAddr,
    /// The address the request came to: the transfer answers from it.
    local: Ipv4Addr,
    /// The shell's I/O; `None` while opening.
    io: Option<Io>,
    state: State,
    /// An HTTP source's last sign of life (its start, answer or bytes): the stall rule.
    http_progress: Option<Instant>,
    /// Source bytes taken so far: where the next read of a local file starts.
    position: u64,
    /// The size the source announced: a local file's when it was opened, an HTTP
    /// answer's length. A source that ends before it or runs past it has changed
    /// under the transfer, which then ends with an ERROR rather than a short block.
    size: Option<u64>,
    /// For the log: the requested name made printable, and the name served.
    requested: String,
    served: String,
    started: Instant,
    /// The deadline the wheel holds for this transfer (see `settle`).
    armed: Option<Instant>,
    /// In `ready`: it has new input and is settled once it has nothing more to send.
    ready: bool,
}

impl<Io> Entry<Io> {
    fn has_datagram(&self) -> bool {
        self.io.is_some()
            && match &self.state {
                State::Running(transfer) => transfer.has_datagram(),
                State::Failing { sent, .. } => !sent,
                _ => false,
            }
    }

    /// The end of the name in log lines: ` (as served)` when a filter renamed it.
    fn shown_name(&self) -> String {
        format!("{}{}", self.requested, arrow(&self.requested, &self.served))
    }
}

/// An ERROR not sent by a transfer's state machine.
#[derive(Debug)]
struct Queued {
    from: QueuedFrom,
    to: SocketAddr,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
enum QueuedFrom {
    NewPort(Ipv4Addr),
    ServerPort(Ipv4Addr),
    Transfer(TransferId),
}

/// The transfers one client address holds, and the requests it was refused meanwhile
/// (logged at info once, then counted and summed up when its last transfer ends).
#[derive(Debug, Default)]
struct AddressShare {
    transfers: usize,
    refused: u64,
}

/// The TFTP endpoint. See the module documentation.
#[derive(Debug)]
pub struct Endpoint<Io> {
    settings: Settings,
    /// The registry: entries by id (`None`: a free slot, listed in `free`).
    transfers: Vec<Option<Entry<Io>>>,
    free: Vec<usize>,
    by_client: HashMap<SocketAddr, TransferId>,
    /// What each client address holds (an entry only while it holds a transfer).
    by_address: HashMap<IpAddr, AddressShare>,
    /// Requests refused since the service was last full (`max_transfers`).
    busy_refused: u64,
    /// Transfers reading an HTTP source: the shell reads them when a reader wakes it.
    http: Vec<TransferId>,
    wheel: TimerWheel<TransferId>,
    expired: Vec<TransferId>,
    /// Transfers with new input, in order: drained and settled by `poll_transmit`.
    ready: VecDeque<TransferId>,
    queued: VecDeque<Queued>,
    /// The queued datagram `poll_transmit` lent last.
    sending: Vec<u8>,
    events: VecDeque<Event<Io>>,
    /// What the service did, for `/metrics`.
    counts: TransferCounts,
    /// Transfers ended since the shell last took them, for `/status`.
    ended: VecDeque<Ended>,
}

/// The most ended transfers kept for the shell between two of its turns.
const MAX_ENDED: usize = 4096;

impl<Io> Endpoint<Io> {
    pub fn new(settings: Settings, now: Instant) -> Endpoint<Io> {
        Endpoint {
            settings,
            transfers: Vec::new(),
            free: Vec::new(),
            by_client: HashMap::default(),
            by_address: HashMap::default(),
            busy_refused: 0,
            http: Vec::new(),
            wheel: TimerWheel::new(now, TICK, SLOTS),
            expired: Vec::new(),
            ready: VecDeque::new(),
            queued: VecDeque::new(),
            sending: Vec::new(),
            events: VecDeque::new(),
            counts: TransferCounts::default(),
            ended: VecDeque::new(),
        }
    }

    /// The next transfer that ended (sent whole, failed or refused), for `/status`.
    pub fn poll_ended(&mut self) -> Option<Ended> {
        self.ended.pop_front()
    }

    /// The transfers under way: client, name, bytes acknowledged, size if known.
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.transfers
            .iter()
            .flatten()
            .filter_map(|entry| match &entry.state {
                State::Running(transfer) => Some(InFlight {
                    client: entry.client,
                    name: entry.shown_name(),
                    sent: transfer.stats().bytes,
                    size: entry.size,
                }),
                _ => None,
            })
            .collect()
    }

    fn note_ended(
        &mut self,
        client: SocketAddr,
        name: String,
        bytes: u64,
        took: Duration,
        failure: Option<String>,
    ) {
        if self.ended.len() >= MAX_ENDED {
            self.ended.pop_front();
        }
        self.ended.push_back(Ended {
            service: StatusService::Tftp,
            client: client.ip(),
            name,
            bytes,
            took,
            failure,
        });
    }

    /// A reloaded configuration: requests from now on are served with `settings`
    /// (root, filters, limits on transfers); transfers in flight keep the source
    /// they opened and the options they negotiated, and run to their end. Whether
    /// transfers talk from a port of their own is a matter of sockets, which a
    /// reload does not touch: that setting stays.
    pub fn handle_reload(&mut self, _now: Instant, settings: Settings) {
        let single_port = self.settings.single_port;
        self.settings = Settings {
            single_port,
            ..settings
        };
        let line = format!(
            "reload: new requests are served with the new root, filters and limits; {} transfers in flight go on",
            self.transfer_count()
        );
        self.events.push_back(Event::Log(Level::Info, line));
    }

    /// Transfers in the registry, from their request to their end.
    pub fn transfer_count(&self) -> usize {
        self.by_client.len()
    }

    /// What the service did since it started: requests taken, how they ended,
    /// bytes and retransmits of the transfers that ended.
    pub fn counts(&self) -> &TransferCounts {
        &self.counts
    }

    /// The `index`-th transfer reading an HTTP source (`None` past the last).
    pub fn http_transfer(&self, index: usize) -> Option<TransferId> {
        self.http.get(index).copied()
    }

    /// The transfer's I/O (`None` while its source and port are being opened).
    pub fn io(&self, id: TransferId) -> Option<&Io> {
        self.entry(id)?.io.as_ref()
    }

    /// The transfer's I/O when its source should be read now: bytes are wanted, or an
    /// HTTP answer is awaited. `None` otherwise.
    pub fn source_wanted(&self, id: TransferId) -> Option<&Io> {
        let entry = self.entry(id)?;
        match &entry.state {
            State::WaitingForSource { .. } => entry.io.as_ref(),
            State::Running(transfer) if transfer.wanted_bytes() > 0 => entry.io.as_ref(),
            _ => None,
        }
    }

    /// A datagram `bytes` from `from`, arrived at `arrival`. Returns the transfer it
    /// went to, if any: its source may be wanted now.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        arrival: Arrival,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<TransferId> {
        match arrival {
            Arrival::Listener { address, limits } => {
                if let Some(id) = self.served_from_server_port(address, from, bytes) {
                    self.on_transfer(now, id, from, bytes);
                    return Some(id);
                }
                self.on_listener(now, address, limits, from, bytes);
                None
            }
            Arrival::Transfer(id) => {
                self.on_transfer(now, id, from, bytes);
                Some(id)
            }
        }
    }

    /// In single-port mode, the transfer a datagram on the TFTP port on `local` is
    /// for: the one `from` holds there. Requests always go to `on_listener`, which
    /// ignores a repeated one.
    fn served_from_server_port(
        &self,
        local: Ipv4Addr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<TransferId> {
        if !self.settings.single_port || is_request(bytes) {
            return None;
        }
        let id = *self.by_client.get(&from)?;
        (self.entry(id)?.local == local).then_some(id)
    }

    fn on_listener(
        &mut self,
        now: Instant,
        address: Ipv4Addr,
        limits: Limits,
        peer: SocketAddr,
        bytes: &[u8],
    ) {
        match Packet::parse(bytes) {
            Ok(Packet::Rrq(request)) => self.on_read_request(now, address, limits, peer, request),
            Ok(Packet::Wrq(request)) => {
                self.log(
                    Level::Info,
                    format!(
                        "{peer}: refused upload of {}: bootd is a read-only server",
                        printable(&request.filename)
                    ),
                );
                self.refuse(
                    address,
                    peer,
                    ErrorCode::AccessViolation,
                    "read-only server: uploads are refused",
                );
            }
            Ok(other) => self.log(
                Level::Debug,
                format!("{peer}: stray {} on the TFTP port dropped", kind(&other)),
            ),
            Err(e) if is_request(bytes) => {
                // A read or write request we cannot parse (a NUL inside the name turns
                // the rest into the "mode"): answer, as tftp-hpa does, so the client
                // stops retrying; nothing is served.
                let message = malformed_request_message(&e);
                self.log(
                    Level::Info,
                    format!("{peer}: refused a malformed request: {message}"),
                );
                self.refuse(address, peer, ErrorCode::IllegalOperation, message);
            }
            Err(e) => self.log(
                Level::Debug,
                format!("{peer}: malformed packet on the TFTP port dropped: {e:?}"),
            ),
        }
    }

    fn on_read_request(
        &mut self,
        now: Instant,
        local: Ipv4Addr,
        limits: Limits,
        peer: SocketAddr,
        request: Request,
    ) {
        if self.by_client.contains_key(&peer) {
            self.log(
                Level::Debug,
                format!(
                    "{peer}: repeated request for {} ignored: its transfer is running",
                    printable(&request.filename)
                ),
            );
            return;
        }
        let most = self.settings.max_transfers_per_client;
        if let Some(share) = self.by_address.get_mut(&peer.ip())
            && share.transfers >= most
        {
            share.refused += 1;
            // Once at info per address and episode, then at debug: a flood of
            // requests makes one line, not one each.
            let level = if share.refused == 1 {
                Level::Info
            } else {
                Level::Debug
            };
            self.log(
                level,
                format!(
                    "{peer}: refused {}: {} already holds {most} transfers ([tftp] max_transfers_per_client)",
                    printable(&request.filename),
                    peer.ip()
                ),
            );
            self.refuse(
                local,
                peer,
                ErrorCode::NotDefined,
                "too many transfers from your address",
            );
            return;
        }
        if self.transfer_count() >= self.settings.max_transfers {
            self.busy_refused += 1;
            // A warning when the service fills up, then debug lines: requests from
            // forged addresses would otherwise make one warning each.
            let level = if self.busy_refused == 1 {
                Level::Warn
            } else {
                Level::Debug
            };
            self.log(
                level,
                format!(
                    "{peer}: refused {}: {} transfers already running ([tftp] max_transfers)",
                    printable(&request.filename),
                    self.transfer_count()
                ),
            );
            self.refuse(
                local,
                peer,
                ErrorCode::NotDefined,
                "server busy, try again later",
            );
            return;
        }
        let rewrite = self.settings.filters.apply(&request.filename);
        let filter_line = match rewrite {
            Rewrite::Indirect { line, .. } => line,
            _ => 0,
        };
        let entry = Entry {
            client: peer,
            local,
            io: None,
            // For the log: a name may hold control characters (refused, but logged first).
            requested: printable(&request.filename).into_owned(),
            served: request.filename.clone(),
            state: State::Opening {
                request,
                limits,
                filter_line,
            },
            http_progress: None,
            position: 0,
            size: None,
            started: now,
            armed: None,
            ready: false,
        };
        let id = self.insert(entry);
        match rewrite {
            Rewrite::Unchanged => self.open(id),
            Rewrite::Name { name, .. } => {
                if let Some(entry) = self.entry_mut(id) {
                    entry.served = name;
                }
                self.open(id);
            }
            Rewrite::Local { path, .. } => {
                if let Some(entry) = self.entry_mut(id) {
                    entry.served = path.display().to_string();
                }
                self.events.push_back(Event::Open {
                    id,
                    client: peer,
                    local,
                    own_port: !self.settings.single_port,
                    source: SourceSpec::OperatorFile { path },
                });
            }
            Rewrite::Indirect { path, line } => match &self.settings.root {
                TftpRoot::Dir(_) => self.events.push_back(Event::ReadIndirect { id, path }),
                TftpRoot::Url(_) => self.refuse_opening(
                    id,
                    OpenError::not_found(format!(
                        "[filters] line {line}: a [path] indirection needs a local [tftp] root"
                    )),
                ),
            },
        }
    }

    /// The indirection file asked for with [`Event::ReadIndirect`], or why it could
    /// not be read: its first line names the file to serve.
    pub fn handle_indirect(
        &mut self,
        _now: Instant,
        id: TransferId,
        file: Result<IndirectFile, OpenError>,
    ) {
        let Some(Entry {
            state: State::Opening { filter_line, .. },
            ..
        }) = self.entry(id)
        else {
            return;
        };
        let line = *filter_line;
        let file = match file {
            Ok(file) => file,
            Err(e) => return self.refuse_opening(id, e),
        };
        match filters::indirect_target(&String::from_utf8_lossy(&file.content)) {
            Some(name) => {
                if let Some(entry) = self.entry_mut(id) {
                    entry.served = name;
                }
                self.open(id);
            }
            None => self.refuse_opening(
                id,
                OpenError::not_found(format!(
                    "[filters] line {line}: {} names no file",
                    file.path.display()
                )),
            ),
        }
    }

    /// Asks the shell to open the source of the name to serve, and the port.
    fn open(&mut self, id: TransferId) {
        let Some(Entry {
            client,
            local,
            served,
            state: State::Opening { .. },
            ..
        }) = self.entry(id)
        else {
            return;
        };
        let (client, local) = (*client, *local);
        let source = match &self.settings.root {
            TftpRoot::Dir(_) => SourceSpec::File {
                name: served.clone(),
            },
            TftpRoot::Url(prefix) => match name::url_for(prefix, served) {
                Ok(url) => SourceSpec::Http { url },
                Err(refusal) => return self.refuse_opening(id, refusal.into()),
            },
        };
        let own_port = !self.settings.single_port;
        self.events.push_back(Event::Open {
            id,
            client,
            local,
            source,
            own_port,
        });
    }

    /// The source and the port [`Event::Open`] asked for are open; `size` is a local
    /// file's (an HTTP source's comes with its answer).
    pub fn handle_source_opened(
        &mut self,
        now: Instant,
        id: TransferId,
        io: Io,
        size: Option<u64>,
    ) {
        // A local file (under the root, or the operator's named by a filter, also
        // with an http:// root) comes with its size; an HTTP source's comes later.
        let http = size.is_none();
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        if !matches!(entry.state, State::Opening { .. }) {
            return;
        }
        let State::Opening {
            request, limits, ..
        } = entry.state.take()
        else {
            return;
        };
        let options: Vec<String> = request
            .options
            .iter()
            .map(|o| format!("{}={}", o.name, o.value))
            .collect();
        let line = format!(
            "{}: read {}{} ({}{}{})",
            entry.client,
            entry.requested,
            arrow(&request.filename, &entry.served),
            match (http, size) {
                (false, Some(size)) => format!("{size} bytes"),
                _ => "size not yet known".into(),
            },
            if options.is_empty() { "" } else { ", asks " },
            options.join(" ")
        );
        entry.io = Some(io);
        entry.size = size;
        if http {
            entry.http_progress = Some(now);
            entry.state = State::WaitingForSource { request, limits };
        } else {
            entry.state = State::Running(Transfer::start(&request, &limits, size, now));
        }
        self.log(Level::Info, line);
        if http {
            self.http.push(id);
        }
        self.mark_ready(id);
    }

    /// The source or the port [`Event::Open`] asked for could not be opened (the shell
    /// has closed what it had opened).
    pub fn handle_open_failed(&mut self, _now: Instant, id: TransferId, failure: OpenFailure) {
        let Some(Entry {
            client,
            state: State::Opening { .. },
            ..
        }) = self.entry(id)
        else {
            return;
        };
        let client = *client;
        match failure {
            OpenFailure::Source(e) => self.refuse_opening(id, e),
            OpenFailure::ReadersBusy { running } => self.refuse_opening(
                id,
                OpenError {
                    code: ErrorCode::NotDefined,
                    client_message: "server busy, try again later",
                    reason: format!("{running} HTTP downloads still running"),
                },
            ),
            OpenFailure::Reader(e) => self.refuse_opening(
                id,
                OpenError {
                    code: ErrorCode::NotDefined,
                    client_message: "server cannot fetch the file",
                    reason: format!("cannot start an HTTP reader: {e}"),
                },
            ),
            OpenFailure::Socket(e) => {
                self.log(
                    Level::Warn,
                    format!("{client}: cannot open a transfer socket: {e}"),
                );
                if let Some(local) = self.remove_opening(id) {
                    self.refuse(
                        local,
                        client,
                        ErrorCode::NotDefined,
                        "server cannot open a socket",
                    );
                }
            }
            OpenFailure::Watch(e) => {
                self.log(
                    Level::Warn,
                    format!("{client}: cannot watch a transfer socket: {e}"),
                );
                self.remove_opening(id);
            }
        }
    }

    /// Lets `read` fill what the transfer wants from a local file: it gets the file
    /// position and the room, and returns how many bytes it wrote there (fewer than
    /// the room only at the end of the file).
    pub fn handle_source_read<E: fmt::Display>(
        &mut self,
        now: Instant,
        id: TransferId,
        read: impl FnOnce(u64, &mut [u8]) -> Result<usize, E>,
    ) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        let State::Running(transfer) = &mut entry.state else {
            return;
        };
        let wanted = transfer.wanted_bytes();
        if wanted == 0 {
            return;
        }
        let position = entry.position;
        // Just what the window needs: the block is copied out of the shared chunk
        // right before it is sent (see file_cache).
        match transfer.feed_with(wanted, |room| read(position, room)) {
            Ok(n) => {
                entry.position += n as u64;
                if n < wanted {
                    match entry.size {
                        Some(size) if entry.position < size => {
                            let line = format!(
                                "{}: {} ended after {} of its {size} bytes: the file changed during the transfer",
                                entry.client, entry.served, entry.position
                            );
                            transfer.abort(
                                now,
                                ErrorCode::NotDefined,
                                "file changed on the server",
                            );
                            self.log(Level::Warn, line);
                        }
                        _ => transfer.feed_eof(),
                    }
                }
            }
            Err(e) => {
                let line = format!("{}: read error on {}: {e}", entry.client, entry.served);
                transfer.abort(now, ErrorCode::NotDefined, "read error on the server");
                self.log(Level::Warn, line);
            }
        }
        self.mark_ready(id);
    }

    /// The HTTP source answered (2xx) with `length` bytes to come, when it said so:
    /// the transfer starts.
    pub fn handle_source_answered(&mut self, now: Instant, id: TransferId, length: Option<u64>) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        if !matches!(entry.state, State::WaitingForSource { .. }) {
            return;
        }
        let State::WaitingForSource { request, limits } = entry.state.take() else {
            return;
        };
        entry.http_progress = Some(now);
        entry.size = length;
        entry.state = State::Running(Transfer::start(&request, &limits, length, now));
        let line = format!(
            "{}: {} answered ({})",
            entry.client,
            entry.served,
            length.map_or("no length".into(), |l| format!("{l} bytes"))
        );
        self.log(Level::Debug, line);
        self.mark_ready(id);
    }

    /// Bytes from the HTTP source.
    pub fn handle_source_data(&mut self, now: Instant, id: TransferId, bytes: &[u8]) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        // Bytes before the answer cannot happen (the reader answers first): dropped.
        let State::Running(transfer) = &mut entry.state else {
            return;
        };
        entry.http_progress = Some(now);
        entry.position += bytes.len() as u64;
        match entry.size {
            Some(size) if entry.position > size => {
                let line = format!(
                    "{}: {} sent more than its {size} bytes",
                    entry.client, entry.served
                );
                transfer.abort(now, ErrorCode::NotDefined, "remote source failed");
                self.log(Level::Warn, line);
            }
            _ => transfer.feed(bytes),
        }
        self.mark_ready(id);
    }

    /// The HTTP source has no more bytes.
    pub fn handle_source_end(&mut self, now: Instant, id: TransferId) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        let State::Running(transfer) = &mut entry.state else {
            return;
        };
        match entry.size {
            Some(size) if entry.position < size => {
                let line = format!(
                    "{}: {} ended after {} of its {size} bytes",
                    entry.client, entry.served, entry.position
                );
                transfer.abort(now, ErrorCode::NotDefined, "remote source failed");
                self.log(Level::Warn, line);
            }
            _ => transfer.feed_eof(),
        }
        self.mark_ready(id);
    }

    /// The HTTP source failed: before its answer the client is told the file cannot be
    /// had; during the transfer, the transfer is aborted.
    pub fn handle_source_failed(&mut self, now: Instant, id: TransferId, failure: SourceFailure) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        let (client, served) = (entry.client, entry.served.clone());
        if let State::Running(transfer) = &mut entry.state {
            transfer.abort(now, ErrorCode::NotDefined, "remote source failed");
            if let SourceFailure::Http { reason, .. } = failure {
                self.log(Level::Warn, format!("{client}: {served}: {reason}"));
            }
        } else if let State::WaitingForSource { .. } = entry.state {
            match failure {
                SourceFailure::Http { status, reason } => {
                    let message = match status {
                        Some(404) | Some(410) => "file not found",
                        _ => "remote source failed",
                    };
                    self.log(
                        Level::Info,
                        format!("{client}: cannot serve {served}: {reason}"),
                    );
                    self.fail(id, ErrorCode::FileNotFound, message, reason);
                }
                SourceFailure::ReaderEnded => self.fail(
                    id,
                    ErrorCode::NotDefined,
                    "remote source failed",
                    "the HTTP reader ended without an answer".into(),
                ),
            }
        }
        self.mark_ready(id);
    }

    /// Fires the timers due at `now`: retransmissions, and the HTTP stall rule.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.expired);
        expired.clear();
        self.wheel.expire(now, &mut expired);
        for &id in &expired {
            let http_timeout = self.settings.http_timeout;
            let Some(entry) = self.entry_mut(id) else {
                continue;
            };
            if stall_deadline(entry, http_timeout).is_some_and(|at| at <= now) {
                // The HTTP source kept the transfer waiting for too long.
                let message = "remote source did not answer";
                match &mut entry.state {
                    State::Running(transfer) => transfer.abort(now, ErrorCode::NotDefined, message),
                    _ => {
                        let line = format!(
                            "{}: {} did not answer within {} s",
                            entry.client,
                            entry.served,
                            http_timeout.as_secs_f64()
                        );
                        self.log(Level::Warn, line);
                        self.fail(
                            id,
                            ErrorCode::NotDefined,
                            message,
                            "the remote source did not answer".into(),
                        );
                    }
                }
            } else if let State::Running(transfer) = &mut entry.state {
                transfer.handle_timeout(now);
            }
            self.mark_ready(id);
        }
        self.expired = expired;
    }

    /// When `handle_timeout` should be called next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.wheel.poll_timeout()
    }

    /// What the shell should do or log next.
    pub fn poll_event(&mut self) -> Option<Event<Io>> {
        self.events.pop_front()
    }

    /// The next datagram to send, `None` when there is none now. Call until `None`,
    /// after every `handle_*`: transfers with nothing more to send are settled on the
    /// way (their timer re-armed, or ended once over).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<'_, Io>> {
        while let Some(queued) = self.queued.pop_front() {
            let gone = match queued.from {
                QueuedFrom::Transfer(id) => self.entry(id).is_none_or(|e| e.io.is_none()),
                QueuedFrom::NewPort(_) | QueuedFrom::ServerPort(_) => false,
            };
            if gone {
                continue;
            }
            self.sending = queued.bytes;
            let bytes = &self.sending;
            let to = queued.to;
            return match queued.from {
                QueuedFrom::NewPort(local) => Some(Transmit::FromNewPort { local, to, bytes }),
                QueuedFrom::ServerPort(local) => Some(Transmit::FromServerPort {
                    local,
                    to,
                    datagram: Datagram::Whole(bytes),
                }),
                QueuedFrom::Transfer(id) => {
                    let entry = self.transfers.get_mut(id.0)?.as_mut()?;
                    let io = entry.io.as_mut()?;
                    Some(Transmit::FromTransfer { io, to, bytes })
                }
            };
        }
        let id = loop {
            let id = *self.ready.front()?;
            if self.entry(id).is_some_and(|e| e.ready && e.has_datagram()) {
                break id;
            }
            self.ready.pop_front();
            self.settle(id, now);
        };
        let single_port = self.settings.single_port;
        let entry = self.transfers.get_mut(id.0)?.as_mut()?;
        let (client, local) = (entry.client, entry.local);
        let io = entry.io.as_mut()?;
        let datagram = match &mut entry.state {
            State::Running(transfer) => transfer.poll_transmit(now)?,
            State::Failing { error, sent, .. } => {
                *sent = true;
                Datagram::Whole(error)
            }
            _ => return None,
        };
        if single_port {
            return Some(Transmit::FromServerPort {
                local,
                to: client,
                datagram,
            });
        }
        Some(Transmit::ToClient {
            io,
            client,
            datagram,
        })
    }

    /// A transfer with nothing more to send: ends it when it is over, or sets its timer.
    fn settle(&mut self, id: TransferId, now: Instant) {
        let http_timeout = self.settings.http_timeout;
        let Some(entry) = self.transfers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        entry.ready = false;
        let deadline = match &entry.state {
            State::Running(transfer) if transfer.is_finished() => return self.close(id, now),
            State::Failing { .. } => return self.close(id, now),
            State::Opening { .. } => return,
            State::Running(transfer) => {
                match (transfer.poll_timeout(), stall_deadline(entry, http_timeout)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::WaitingForSource { .. } => stall_deadline(entry, http_timeout),
        };
        match deadline {
            // Every packet moves the deadline later. Rescheduling each time would leave
            // one stale entry per packet in the wheel (its cancellation is lazy), which
            // `poll_timeout` then rehashes on every loop turn. A timer that is already
            // set no later stays: when it fires early, `handle_timeout` finds the
            // transfer not yet due and this re-arms it at the current deadline.
            Some(at)
                if entry.armed.is_some_and(|armed| armed <= at) && self.wheel.is_scheduled(&id) => {
            }
            Some(at) => {
                self.wheel.schedule(id, at);
                entry.armed = Some(at);
            }
            None => {
                self.wheel.cancel(&id);
                entry.armed = None;
            }
        }
    }

    /// Removes an ended transfer, logs its end line, and gives its I/O back.
    fn close(&mut self, id: TransferId, now: Instant) {
        let Some(entry) = self.remove(id) else {
            return;
        };
        let key = entry.client;
        let name = entry.shown_name();
        match &entry.state {
            State::Running(transfer) => {
                let took = transfer
                    .ended_at()
                    .unwrap_or(now)
                    .saturating_duration_since(entry.started);
                let s = transfer.stats();
                self.counts.bytes += s.bytes;
                self.counts.retransmits += s.retransmits;
                match transfer.outcome() {
                    Some(Outcome::Completed) | None => {
                        self.counts.completed += 1;
                        self.counts.durations.observe(took);
                    }
                    Some(_) => self.counts.failed += 1,
                }
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
                let failure = match transfer.outcome() {
                    Some(Outcome::Completed) | None => None,
                    Some(Outcome::ClientError { code, message }) => {
                        Some(format!("ended by the client (error {code}: {message})"))
                    }
                    Some(Outcome::TimedOut) => Some("the client stopped answering".to_string()),
                    Some(Outcome::Aborted { message, .. }) => Some(format!("aborted: {message}")),
                };
                let ended = (key, entry.shown_name(), s.bytes, took, failure);
                let (level, line) = match transfer.outcome() {
                    Some(Outcome::Completed) | None => {
                        (Level::Info, format!("{key}: sent {name}: {summary}"))
                    }
                    Some(Outcome::ClientError { code, message }) => (
                        Level::Info,
                        format!(
                            "{key}: {name} ended by the client (error {code}: {message}) after {summary}"
                        ),
                    ),
                    Some(Outcome::TimedOut) => (
                        Level::Warn,
                        format!(
                            "{key}: {name} abandoned: the client stopped answering after {summary}"
                        ),
                    ),
                    Some(Outcome::Aborted { message, .. }) => (
                        Level::Warn,
                        format!("{key}: {name} aborted: {message}, after {summary}"),
                    ),
                };
                self.log(level, line);
                let (client, name, bytes, took, failure) = ended;
                self.note_ended(client, name, bytes, took, failure);
            }
            State::Failing { reason, error, .. } => {
                self.counts.failed += 1;
                let took = now.saturating_duration_since(entry.started);
                // What the client was told (the ERROR's message, after opcode and
                // code): the logged reason may name this server's paths or URLs.
                let message = error.get(4..).unwrap_or_default();
                let message = message.split(|b| *b == 0).next().unwrap_or_default();
                let told = String::from_utf8_lossy(message).into_owned();
                self.note_ended(key, name.clone(), 0, took, Some(told));
                self.log(Level::Info, format!("{key}: {name} failed: {reason}"))
            }
            State::Opening { .. } | State::WaitingForSource { .. } => {}
        }
        if let Some(io) = entry.io {
            self.events.push_back(Event::Closed {
                io,
                position: entry.position,
            });
        }
    }

    /// The source failed before the transfer began: `message` goes to the client as
    /// ERROR `code`, then the transfer ends with `reason`.
    fn fail(&mut self, id: TransferId, code: ErrorCode, message: &str, reason: String) {
        if let Some(entry) = self.entry_mut(id) {
            entry.state = State::Failing {
                error: wire::error_packet(code, message),
                sent: false,
                reason,
            };
        }
    }

    /// A datagram from a transfer's port.
    fn on_transfer(&mut self, now: Instant, id: TransferId, from: SocketAddr, bytes: &[u8]) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        let client = entry.client;
        if from != client {
            // RFC 1350: a packet from another endpoint gets ERROR 5 and changes nothing.
            self.queued.push_back(Queued {
                from: QueuedFrom::Transfer(id),
                to: from,
                bytes: wire::error_packet(ErrorCode::UnknownTransferId, "unknown transfer ID"),
            });
            self.log(
                Level::Debug,
                format!("{from}: packet for {client}'s transfer answered with ERROR 5"),
            );
            return;
        }
        if let State::Running(transfer) = &mut entry.state {
            let received = transfer.handle_datagram(now, bytes);
            self.events.push_back(Event::Received { client, received });
            self.mark_ready(id);
        }
    }

    /// Refuses a request being opened with `error` from a new port, and forgets it.
    fn refuse_opening(&mut self, id: TransferId, error: OpenError) {
        let Some(entry) = self.entry(id) else {
            return;
        };
        let State::Opening { request, .. } = &entry.state else {
            return;
        };
        let line = format!(
            "{}: refused {}{}: {}",
            entry.client,
            entry.requested,
            arrow(&request.filename, &entry.served),
            error.reason
        );
        let client = entry.client;
        let name = entry.shown_name();
        self.counts.failed += 1;
        // What the client was told: the logged reason names paths on this server,
        // and the status page is served to the network.
        let told = error.client_message.to_string();
        self.note_ended(client, name, 0, Duration::ZERO, Some(told));
        self.log(Level::Info, line);
        if let Some(local) = self.remove_opening(id) {
            self.refuse(local, client, error.code, error.client_message);
        }
    }

    /// Removes a transfer still opening; returns the address its request came to.
    fn remove_opening(&mut self, id: TransferId) -> Option<Ipv4Addr> {
        let entry = self.entry(id)?;
        let State::Opening { .. } = entry.state else {
            return None;
        };
        let local = entry.local;
        self.remove(id);
        Some(local)
    }

    /// Sends ERROR `code` with `message` to `peer` from a new port on `local`, or
    /// from the TFTP port there in single-port mode.
    fn refuse(&mut self, local: Ipv4Addr, peer: SocketAddr, code: ErrorCode, message: &str) {
        let from = if self.settings.single_port {
            QueuedFrom::ServerPort(local)
        } else {
            QueuedFrom::NewPort(local)
        };
        self.queued.push_back(Queued {
            from,
            to: peer,
            bytes: wire::error_packet(code, message),
        });
    }

    fn log(&mut self, level: Level, line: String) {
        self.events.push_back(Event::Log(level, line));
    }

    fn mark_ready(&mut self, id: TransferId) {
        if let Some(entry) = self.entry_mut(id)
            && !entry.ready
        {
            entry.ready = true;
            self.ready.push_back(id);
        }
    }

    fn entry(&self, id: TransferId) -> Option<&Entry<Io>> {
        self.transfers.get(id.0)?.as_ref()
    }

    fn entry_mut(&mut self, id: TransferId) -> Option<&mut Entry<Io>> {
        self.transfers.get_mut(id.0)?.as_mut()
    }

    fn insert(&mut self, entry: Entry<Io>) -> TransferId {
        self.counts.started += 1;
        let client = entry.client;
        let id = match self.free.pop() {
            Some(index) => {
                if let Some(slot) = self.transfers.get_mut(index) {
                    *slot = Some(entry);
                }
                TransferId(index)
            }
            None => {
                self.transfers.push(Some(entry));
                TransferId(self.transfers.len() - 1)
            }
        };
        self.by_client.insert(client, id);
        self.by_address.entry(client.ip()).or_default().transfers += 1;
        id
    }

    fn remove(&mut self, id: TransferId) -> Option<Entry<Io>> {
        let entry = self.transfers.get_mut(id.0)?.take()?;
        self.free.push(id.0);
        self.by_client.remove(&entry.client);
        if self.busy_refused > 0 {
            let refused = std::mem::take(&mut self.busy_refused);
            self.log(
                Level::Info,
                format!("a transfer slot is free again; {refused} requests were refused while all {} were taken", self.settings.max_transfers),
            );
        }
        let address = entry.client.ip();
        if let Some(share) = self.by_address.get_mut(&address) {
            share.transfers = share.transfers.saturating_sub(1);
            if share.transfers == 0 {
                let refused = share.refused;
                self.by_address.remove(&address);
                if refused > 1 {
                    let most = self.settings.max_transfers_per_client;
                    self.log(
                        Level::Info,
                        format!(
                            "{address}: {refused} requests refused while it held {most} transfers"
                        ),
                    );
                }
            }
        }
        self.wheel.cancel(&id);
        if entry.http_progress.is_some() {
            self.http.retain(|&other| other != id);
        }
        Some(entry)
    }
}

/// When an HTTP source has kept the transfer waiting for too long: `http_timeout` after
/// its last sign of life, while the transfer waits for its answer or for bytes.
fn stall_deadline<Io>(entry: &Entry<Io>, http_timeout: Duration) -> Option<Instant> {
    let progress = entry.http_progress?;
    let waiting = match &entry.state {
        State::WaitingForSource { .. } => true,
        State::Running(transfer) => transfer.wanted_bytes() > 0,
        _ => false,
    };
    waiting.then(|| progress + http_timeout)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::FilterRule;
    use crate::tftp::wire::{Mode, TftpOption};

    /// The shell's I/O, as far as the endpoint can tell: a label.
    type Io = &'static str;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 100], port))
    }

    fn limits() -> Limits {
        Limits::new(1468, 16, Duration::from_secs(1), 3).with_max_timeout(Duration::from_secs(10))
    }

    fn endpoint(root: TftpRoot, max_transfers: usize, rules: &[(&str, &str)]) -> Endpoint<Io> {
        let rules: Vec<FilterRule> = rules
            .iter()
            .enumerate()
            .map(|(i, (pattern, value))| FilterRule {
                pattern: pattern.to_string(),
                value: value.to_string(),
                line: i + 1,
            })
            .collect();
        let settings = Settings {
            root,
            filters: Filters::new(&rules).unwrap(),
            max_transfers,
            max_transfers_per_client: 32,
            http_timeout: HTTP_TIMEOUT,
            single_port: false,
        };
        Endpoint::new(settings, Instant::now())
    }

    fn local_root() -> TftpRoot {
        TftpRoot::Dir("/srv/tftp".into())
    }

    fn http_root() -> TftpRoot {
        TftpRoot::Url("http://mirror.example/netboot".into())
    }

    fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
        Packet::Rrq(Request {
            filename: name.into(),
            mode: Mode::Octet,
            options: options.iter().map(|(n, v)| TftpOption::new(n, v)).collect(),
        })
        .to_bytes()
    }

    fn ack(block: u16) -> Vec<u8> {
        Packet::Ack { block }.to_bytes()
    }

    fn error(code: ErrorCode, message: &str) -> Vec<u8> {
        wire::error_packet(code, message)
    }

    /// A datagram the endpoint handed out, as whole bytes.
    #[derive(Debug, PartialEq, Eq)]
    enum Sent {
        ToClient(Io, SocketAddr, Vec<u8>),
        FromTransfer(Io, SocketAddr, Vec<u8>),
        FromNewPort(Ipv4Addr, SocketAddr, Vec<u8>),
        FromServerPort(Ipv4Addr, SocketAddr, Vec<u8>),
    }

    fn whole(datagram: Datagram<'_>) -> Vec<u8> {
        match datagram {
            Datagram::Whole(bytes) => bytes.to_vec(),
            Datagram::Data { header, payload } => [&header, payload].concat(),
        }
    }

    /// What the endpoint has to send and to say now, as the shell drains it.
    fn flush(endpoint: &mut Endpoint<Io>, now: Instant) -> (Vec<Sent>, Vec<Event<Io>>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        loop {
            while let Some(transmit) = endpoint.poll_transmit(now) {
                sent.push(match transmit {
                    Transmit::ToClient {
                        io,
                        client,
                        datagram,
                    } => Sent::ToClient(io, client, whole(datagram)),
                    Transmit::FromTransfer { io, to, bytes } => {
                        Sent::FromTransfer(io, to, bytes.to_vec())
                    }
                    Transmit::FromNewPort { local, to, bytes } => {
                        Sent::FromNewPort(local, to, bytes.to_vec())
                    }
                    Transmit::FromServerPort {
                        local,
                        to,
                        datagram,
                    } => Sent::FromServerPort(local, to, whole(datagram)),
                });
                assert!(sent.len() < 10_000, "runaway transmit");
            }
            match endpoint.poll_event() {
                Some(event) => events.push(event),
                None => return (sent, events),
            }
        }
    }

    fn logs(events: &[Event<Io>]) -> Vec<(Level, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Log(level, line) => Some((*level, line.clone())),
                _ => None,
            })
            .collect()
    }

    fn has_log(events: &[Event<Io>], level: Level, text: &str) -> bool {
        logs(events)
            .iter()
            .any(|(l, line)| *l == level && line.contains(text))
    }

    fn request(endpoint: &mut Endpoint<Io>, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let arrival = Arrival::Listener {
            address: LOCAL,
            limits: limits(),
        };
        endpoint.handle_datagram(now, arrival, from, bytes);
    }

    /// The transfer an RRQ opened, with what it asks the shell to open.
    fn opened(events: &[Event<Io>]) -> Option<(TransferId, SourceSpec)> {
        events.iter().find_map(|e| match e {
            Event::Open {
                id, local, source, ..
            } => {
                assert_eq!(*local, LOCAL);
                Some((*id, source.clone()))
            }
            _ => None,
        })
    }

    /// Requests `name` from `from` and opens it as a local file of `content`, as the
    /// shell would; returns the transfer and what was sent.
    fn start_local(
        endpoint: &mut Endpoint<Io>,
        now: Instant,
        from: SocketAddr,
        name: &str,
        content: &[u8],
        io: Io,
    ) -> (TransferId, Vec<Sent>) {
        request(endpoint, now, from, &rrq(name, &[]));
        let (_, events) = flush(endpoint, now);
        let (id, _) = opened(&events).expect("an Open event");
        endpoint.handle_source_opened(now, id, io, Some(content.len() as u64));
        read_local(endpoint, now, id, content);
        (id, flush(endpoint, now).0)
    }

    /// What the shell's supply does for a local file of `content`.
    fn read_local(endpoint: &mut Endpoint<Io>, now: Instant, id: TransferId, content: &[u8]) {
        while endpoint.source_wanted(id).is_some() {
            endpoint.handle_source_read(now, id, |at, room: &mut [u8]| {
                let at = usize::try_from(at).unwrap().min(content.len());
                let n = room.len().min(content.len() - at);
                room[..n].copy_from_slice(&content[at..at + n]);
                Ok::<_, std::io::Error>(n)
            });
        }
    }

    fn data(block: u16, payload: &[u8]) -> Vec<u8> {
        [&wire::data_header(block)[..], payload].concat()
    }

    #[test]
    fn a_local_file_is_served_and_its_io_given_back() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        request(&mut ep, t0, client(2000), &rrq("boot/pxelinux.0", &[]));
        let (sent, events) = flush(&mut ep, t0);
        assert!(sent.is_empty());
        let (id, source) = opened(&events).unwrap();
        assert_eq!(
            source,
            SourceSpec::File {
                name: "boot/pxelinux.0".into()
            }
        );
        assert_eq!(ep.transfer_count(), 1);
        assert!(ep.io(id).is_none(), "no I/O until the shell opened it");
        let content = [7u8; 700];
        ep.handle_source_opened(t0, id, "port-a", Some(700));
        read_local(&mut ep, t0, id, &content);
        let (sent, events) = flush(&mut ep, t0);
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100:2000: read boot/pxelinux.0 (700 bytes)"
        ));
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(1, &[7; 512]))]
        );
        // The block's retransmission timer, rounded up to the wheel's tick.
        let due = ep.poll_timeout().unwrap();
        assert!(due >= t0 + Duration::from_secs(1) && due < t0 + Duration::from_millis(1020));
        // Lost: the timer resends it.
        ep.handle_timeout(due);
        let (sent, _) = flush(&mut ep, due);
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(1, &[7; 512]))]
        );
        let at = due + Duration::from_millis(3);
        ep.handle_datagram(at, Arrival::Transfer(id), client(2000), &ack(1));
        read_local(&mut ep, at, id, &content);
        let (sent, events) = flush(&mut ep, at);
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(2, &[7; 188]))]
        );
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Received {
                received: Received::Advanced { acked: 1 },
                ..
            }
        )));
        ep.handle_datagram(at, Arrival::Transfer(id), client(2000), &ack(2));
        let (sent, events) = flush(&mut ep, at);
        assert!(sent.is_empty());
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100:2000: sent boot/pxelinux.0: 700 bytes in 2 blocks of 512, window 1, 1 retransmits"
        ));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Closed {
                io: "port-a",
                position: 700
            }
        )));
        assert_eq!(ep.transfer_count(), 0);
        assert_eq!(ep.poll_timeout(), None);
    }

    #[test]
    fn a_served_file_is_counted_with_its_bytes_retransmits_and_duration() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        request(&mut ep, t0, client(2000), &rrq("boot/pxelinux.0", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, _) = opened(&events).unwrap();
        let content = [7u8; 700];
        ep.handle_source_opened(t0, id, "port-a", Some(700));
        read_local(&mut ep, t0, id, &content);
        flush(&mut ep, t0);
        let due = ep.poll_timeout().unwrap();
        ep.handle_timeout(due);
        flush(&mut ep, due);
        let at = due + Duration::from_millis(3);
        ep.handle_datagram(at, Arrival::Transfer(id), client(2000), &ack(1));
        read_local(&mut ep, at, id, &content);
        flush(&mut ep, at);
        assert_eq!(ep.counts().started, 1);
        assert_eq!(ep.counts().completed, 0, "not before the last ACK");
        ep.handle_datagram(at, Arrival::Transfer(id), client(2000), &ack(2));
        flush(&mut ep, at);
        let counts = ep.counts();
        assert_eq!((counts.completed, counts.failed), (1, 0));
        assert_eq!((counts.bytes, counts.retransmits), (700, 1));
        assert_eq!(counts.durations.count, 1);
        let ended = ep.poll_ended().unwrap();
        assert_eq!((ended.name.as_str(), ended.bytes), ("boot/pxelinux.0", 700));
        assert_eq!(ended.client, client(2000).ip());
        assert_eq!(ended.failure, None);
        assert_eq!(ep.poll_ended(), None);
        // A request for a missing name is a failed transfer.
        request(&mut ep, at, client(2001), &rrq("missing", &[]));
        let (_, events) = flush(&mut ep, at);
        let (id, _) = opened(&events).unwrap();
        let failure = OpenFailure::Source(OpenError {
            code: ErrorCode::FileNotFound,
            client_message: "file not found",
            reason: "no such file".into(),
        });
        ep.handle_open_failed(at, id, failure);
        flush(&mut ep, at);
        assert_eq!((ep.counts().started, ep.counts().failed), (2, 1));
        let ended = ep.poll_ended().unwrap();
        assert_eq!(ended.name, "missing");
        assert_eq!(ended.failure.as_deref(), Some("file not found"));
    }

    #[test]
    fn a_reload_serves_new_requests_with_new_filters_and_keeps_a_transfer_in_flight() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        let content = [5u8; 700];
        let (id, sent) = start_local(&mut ep, t0, client(2000), "pxelinux.0", &content, "port-a");
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(1, &[5; 512]))]
        );
        // The configuration changes under the transfer: a filter now renames the
        // file, and only one transfer may run at a time.
        let t1 = t0 + Duration::from_millis(500);
        let rules = [FilterRule {
            pattern: "pxelinux.0".into(),
            value: "lpxelinux.0".into(),
            line: 1,
        }];
        let settings = Settings {
            root: local_root(),
            filters: Filters::new(&rules).unwrap(),
            max_transfers: 2,
            max_transfers_per_client: 32,
            http_timeout: HTTP_TIMEOUT,
            single_port: true,
        };
        ep.handle_reload(t1, settings);
        let (_, events) = flush(&mut ep, t1);
        assert!(has_log(&events, Level::Info, "1 transfers in flight go on"));
        // The transfer in flight goes on where it was, from its own port: whether
        // transfers talk from the TFTP port is not changed by a reload.
        assert!(!ep.settings.single_port);
        ep.handle_datagram(t1, Arrival::Transfer(id), client(2000), &ack(1));
        read_local(&mut ep, t1, id, &content);
        let (sent, _) = flush(&mut ep, t1);
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(2, &[5; 188]))]
        );
        // Its retransmission timer still runs after the reload.
        let due = t1 + Duration::from_millis(1100);
        ep.handle_timeout(due);
        let (sent, _) = flush(&mut ep, due);
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(2, &[5; 188]))]
        );
        // A new request is renamed by the new filter.
        request(&mut ep, due, client(2001), &rrq("pxelinux.0", &[]));
        let (_, events) = flush(&mut ep, due);
        let (_, source) = opened(&events).unwrap();
        assert_eq!(
            source,
            SourceSpec::File {
                name: "lpxelinux.0".into()
            }
        );
        // And the new limit on transfers holds: a third is refused as busy.
        request(&mut ep, due, client(2002), &rrq("pxelinux.0", &[]));
        let (sent, _) = flush(&mut ep, due);
        assert!(
            matches!(&sent[..], [Sent::FromNewPort(_, to, _)] if *to == client(2002)),
            "{sent:?}"
        );
        ep.handle_datagram(due, Arrival::Transfer(id), client(2000), &ack(2));
        let (_, events) = flush(&mut ep, due);
        assert!(has_log(&events, Level::Info, "sent pxelinux.0: 700 bytes"));
    }

    #[test]
    fn a_busy_server_refuses_with_error_0() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 1, &[]);
        start_local(&mut ep, t0, client(2000), "a", &[1; 100], "port-a");
        request(&mut ep, t0, client(2001), &rrq("b", &[]));
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromNewPort(
                LOCAL,
                client(2001),
                error(ErrorCode::NotDefined, "server busy, try again later")
            )]
        );
        assert!(has_log(
            &events,
            Level::Warn,
            "10.0.0.100:2001: refused b: 1 transfers already running ([tftp] max_transfers)"
        ));
        assert!(opened(&events).is_none());
        assert_eq!(ep.transfer_count(), 1);
        // More requests while it is full: debug lines, then one summary line once a
        // slot is free.
        for port in 2002..2100 {
            request(&mut ep, t0, client(port), &rrq("b", &[]));
        }
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(sent.len(), 98);
        assert!(
            logs(&events)
                .iter()
                .all(|(level, _)| *level == Level::Debug)
        );
        ep.handle_datagram(t0, Arrival::Transfer(TransferId(0)), client(2000), &ack(1));
        let (_, events) = flush(&mut ep, t0);
        assert!(has_log(
            &events,
            Level::Info,
            "a transfer slot is free again; 99 requests were refused while all 1 were taken"
        ));
        request(&mut ep, t0, client(2001), &rrq("b", &[]));
        assert!(opened(&flush(&mut ep, t0).1).is_some());
    }

    /// 1,100 requests from one address asking `timeout=255`, then silence, filled
    /// `max_transfers` for 25 minutes. One address now holds at most its share, the
    /// rest of its requests are refused (logged once at info, then at debug), others
    /// are still served, and its silent transfers end after `retries` timeouts of
    /// the server's own (the 255 s asked is above the maximum granted).
    #[test]
    fn one_client_address_cannot_take_the_whole_service() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 1000, &[]);
        let mut opened_ids = Vec::new();
        let mut refusals = Vec::new();
        let mut events = Vec::new();
        for port in 1..=1100u16 {
            request(
                &mut ep,
                t0,
                client(port),
                &rrq("kernel", &[("timeout", "255")]),
            );
            let (sent, new_events) = flush(&mut ep, t0);
            if let Some((id, _)) = opened(&new_events) {
                ep.handle_source_opened(t0, id, "port", Some(100_000));
                read_local(&mut ep, t0, id, &[0; 100_000]);
                flush(&mut ep, t0);
                opened_ids.push(id);
            }
            refusals.extend(sent);
            events.extend(new_events);
        }
        assert_eq!(opened_ids.len(), 32);
        assert_eq!(refusals.len(), 1068);
        assert_eq!(
            refusals[0],
            Sent::FromNewPort(
                LOCAL,
                client(33),
                error(
                    ErrorCode::NotDefined,
                    "too many transfers from your address"
                )
            )
        );
        let info: Vec<_> = logs(&events)
            .into_iter()
            .filter(|(level, line)| *level == Level::Info && line.contains("refused"))
            .collect();
        assert_eq!(
            info,
            vec![(
                Level::Info,
                "10.0.0.100:33: refused kernel: 10.0.0.100 already holds 32 transfers ([tftp] max_transfers_per_client)".to_string()
            )]
        );
        assert!(has_log(
            &events,
            Level::Debug,
            "10.0.0.100:1100: refused kernel: 10.0.0.100 already holds 32 transfers"
        ));
        // Another machine is served.
        let other = SocketAddr::from(([10, 0, 0, 101], 2000));
        request(&mut ep, t0, other, &rrq("kernel", &[]));
        let (_, new_events) = flush(&mut ep, t0);
        assert!(opened(&new_events).is_some());
        // The silent transfers end within (retries + 1) × 1 s.
        let mut now = t0;
        while let Some(due) = ep.poll_timeout() {
            now = due;
            ep.handle_timeout(now);
            let (_, new_events) = flush(&mut ep, now);
            events.extend(new_events);
            if ep.transfer_count() == 1 {
                break;
            }
        }
        assert!(now <= t0 + Duration::from_millis(4100), "{:?}", now - t0);
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100: 1068 requests refused while it held 32 transfers"
        ));
        // Its slots are free again.
        request(&mut ep, now, client(5000), &rrq("kernel", &[]));
        assert!(opened(&flush(&mut ep, now).1).is_some());
    }

    #[test]
    fn a_repeated_request_is_ignored() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        let (id, first) = start_local(&mut ep, t0, client(2000), "a", &[1; 600], "port-a");
        assert_eq!(first.len(), 1);
        // The client did not see DATA 1 yet and asks again, on the TFTP port.
        request(&mut ep, t0, client(2000), &rrq("a", &[]));
        let (sent, events) = flush(&mut ep, t0);
        assert!(sent.is_empty());
        assert!(opened(&events).is_none());
        assert!(has_log(
            &events,
            Level::Debug,
            "10.0.0.100:2000: repeated request for a ignored: its transfer is running"
        ));
        assert_eq!(ep.transfer_count(), 1);
        assert!(ep.io(id).is_some());
    }

    #[test]
    fn uploads_are_refused_with_error_2() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        let wrq = Packet::Wrq(Request {
            filename: "upload.bin".into(),
            mode: Mode::Octet,
            options: Vec::new(),
        })
        .to_bytes();
        request(&mut ep, t0, client(2000), &wrq);
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromNewPort(
                LOCAL,
                client(2000),
                error(
                    ErrorCode::AccessViolation,
                    "read-only server: uploads are refused"
                )
            )]
        );
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100:2000: refused upload of upload.bin: bootd is a read-only server"
        ));
        assert_eq!(ep.transfer_count(), 0);
    }

    #[test]
    fn a_malformed_request_is_answered_and_stray_packets_are_dropped() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        // opcode 1 | "f" NUL | "binary" NUL: not a mode.
        request(&mut ep, t0, client(2000), b"\x00\x01f\x00binary\x00");
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromNewPort(
                LOCAL,
                client(2000),
                error(
                    ErrorCode::IllegalOperation,
                    "unknown transfer mode: use octet or netascii"
                )
            )]
        );
        assert!(has_log(
            &events,
            Level::Info,
            "refused a malformed request: unknown transfer mode"
        ));
        // An ACK, and an unknown opcode, on the TFTP port: dropped without a word.
        request(&mut ep, t0, client(2000), &ack(1));
        request(&mut ep, t0, client(2000), b"\x00\x09junk");
        let (sent, events) = flush(&mut ep, t0);
        assert!(sent.is_empty());
        assert!(has_log(
            &events,
            Level::Debug,
            "10.0.0.100:2000: stray ACK on the TFTP port dropped"
        ));
        assert!(has_log(
            &events,
            Level::Debug,
            "malformed packet on the TFTP port dropped"
        ));
        assert_eq!(ep.transfer_count(), 0);
    }

    #[test]
    fn a_foreign_endpoint_gets_error_5_and_the_transfer_goes_on() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        let content = [3u8; 600];
        let (id, _) = start_local(&mut ep, t0, client(2000), "a", &content, "port-a");
        let intruder = SocketAddr::from(([10, 0, 0, 66], 2000));
        ep.handle_datagram(t0, Arrival::Transfer(id), intruder, &ack(1));
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromTransfer(
                "port-a",
                intruder,
                error(ErrorCode::UnknownTransferId, "unknown transfer ID")
            )]
        );
        assert!(has_log(
            &events,
            Level::Debug,
            "10.0.0.66:2000: packet for 10.0.0.100:2000's transfer answered with ERROR 5"
        ));
        // The intruder's ACK changed nothing: the client's own moves the transfer on.
        ep.handle_datagram(t0, Arrival::Transfer(id), client(2000), &ack(1));
        read_local(&mut ep, t0, id, &content);
        let (sent, _) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(2, &[3; 88]))]
        );
    }

    #[test]
    fn an_http_source_that_never_answers_ends_with_error_0_after_http_timeout() {
        let t0 = Instant::now();
        let mut ep = endpoint(http_root(), 10, &[]);
        request(&mut ep, t0, client(2000), &rrq("linux", &[("tsize", "0")]));
        let (_, events) = flush(&mut ep, t0);
        let (id, source) = opened(&events).unwrap();
        assert_eq!(
            source,
            SourceSpec::Http {
                url: "http://mirror.example/netboot/linux".into()
            }
        );
        ep.handle_source_opened(t0, id, "port-a", None);
        assert_eq!(ep.http_transfer(0), Some(id));
        assert!(ep.source_wanted(id).is_some(), "the answer is awaited");
        let (sent, events) = flush(&mut ep, t0);
        assert!(sent.is_empty());
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100:2000: read linux (size not yet known, asks tsize=0)"
        ));
        let due = ep.poll_timeout().unwrap();
        assert!(due >= t0 + HTTP_TIMEOUT && due < t0 + HTTP_TIMEOUT + TICK * 2);
        ep.handle_timeout(due - TICK);
        assert!(
            flush(&mut ep, due - TICK).0.is_empty(),
            "not before the timeout"
        );
        ep.handle_timeout(due);
        let (sent, events) = flush(&mut ep, due);
        assert_eq!(
            sent,
            vec![Sent::ToClient(
                "port-a",
                client(2000),
                error(ErrorCode::NotDefined, "remote source did not answer")
            )]
        );
        assert!(has_log(
            &events,
            Level::Warn,
            "10.0.0.100:2000: linux did not answer within 5 s"
        ));
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100:2000: linux failed: the remote source did not answer"
        ));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Closed { io: "port-a", .. }))
        );
        assert_eq!(ep.transfer_count(), 0);
        assert_eq!(ep.http_transfer(0), None);
    }

    #[test]
    fn an_http_source_that_stalls_mid_transfer_aborts_it_with_error_0() {
        let t0 = Instant::now();
        let mut ep = endpoint(http_root(), 10, &[]);
        request(&mut ep, t0, client(2000), &rrq("linux", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, _) = opened(&events).unwrap();
        ep.handle_source_opened(t0, id, "port-a", None);
        flush(&mut ep, t0);
        let t1 = t0 + Duration::from_secs(1);
        ep.handle_source_answered(t1, id, Some(100_000));
        ep.handle_source_data(t1, id, &[5; 512]);
        let (sent, events) = flush(&mut ep, t1);
        assert!(has_log(
            &events,
            Level::Debug,
            "10.0.0.100:2000: linux answered (100000 bytes)"
        ));
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(1, &[5; 512]))]
        );
        // The client keeps up; the source sends nothing more. Timers set earlier may
        // fire first (they re-arm lazily): nothing is sent until the stall.
        ep.handle_datagram(t1, Arrival::Transfer(id), client(2000), &ack(1));
        flush(&mut ep, t1);
        let (due, sent, events) = loop {
            let due = ep.poll_timeout().unwrap();
            ep.handle_timeout(due);
            let (sent, events) = flush(&mut ep, due);
            if !sent.is_empty() {
                break (due, sent, events);
            }
        };
        assert!(due >= t1 + HTTP_TIMEOUT && due < t1 + HTTP_TIMEOUT + TICK * 2);
        assert_eq!(
            sent,
            vec![Sent::ToClient(
                "port-a",
                client(2000),
                error(ErrorCode::NotDefined, "remote source did not answer")
            )]
        );
        assert!(has_log(
            &events,
            Level::Warn,
            "10.0.0.100:2000: linux aborted: remote source did not answer, after 512 bytes"
        ));
        assert_eq!(ep.transfer_count(), 0);
    }

    #[test]
    fn an_http_source_failing_before_its_answer_is_error_1_or_0() {
        let cases = [
            (
                SourceFailure::Http {
                    status: Some(404),
                    reason: "GET x: HTTP 404 Not Found".into(),
                },
                error(ErrorCode::FileNotFound, "file not found"),
                "failed: GET x: HTTP 404 Not Found",
            ),
            (
                SourceFailure::Http {
                    status: Some(500),
                    reason: "GET x: HTTP 500 Oops".into(),
                },
                error(ErrorCode::FileNotFound, "remote source failed"),
                "failed: GET x: HTTP 500 Oops",
            ),
            (
                SourceFailure::ReaderEnded,
                error(ErrorCode::NotDefined, "remote source failed"),
                "failed: the HTTP reader ended without an answer",
            ),
        ];
        for (failure, expected, end) in cases {
            let t0 = Instant::now();
            let mut ep = endpoint(http_root(), 10, &[]);
            request(&mut ep, t0, client(2000), &rrq("linux", &[]));
            let (_, events) = flush(&mut ep, t0);
            let (id, _) = opened(&events).unwrap();
            ep.handle_source_opened(t0, id, "port-a", None);
            flush(&mut ep, t0);
            let is_http = matches!(failure, SourceFailure::Http { .. });
            ep.handle_source_failed(t0, id, failure);
            let (sent, events) = flush(&mut ep, t0);
            assert_eq!(sent, vec![Sent::ToClient("port-a", client(2000), expected)]);
            assert!(has_log(&events, Level::Info, end), "{events:?}");
            assert_eq!(
                has_log(
                    &events,
                    Level::Info,
                    "10.0.0.100:2000: cannot serve linux: GET x"
                ),
                is_http
            );
            assert_eq!(ep.transfer_count(), 0);
        }
    }

    #[test]
    fn a_filter_naming_the_operators_file_serves_it_though_the_root_is_a_mirror() {
        let t0 = Instant::now();
        let mut ep = endpoint(
            http_root(),
            10,
            &[("pxelinux.cfg/*", "pybootd/etc/pxe.cfg")],
        );
        ep.settings
            .filters
            .set_local_for_tests(1, PathBuf::from("/etc/bootd/pybootd/etc/pxe.cfg"));
        request(&mut ep, t0, client(2000), &rrq("pxelinux.cfg/01-aa", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, source) = opened(&events).unwrap();
        assert_eq!(
            source,
            SourceSpec::OperatorFile {
                path: "/etc/bootd/pybootd/etc/pxe.cfg".into()
            }
        );
        // A local file, read as one (its size known at once), not awaited as HTTP.
        ep.handle_source_opened(t0, id, "port-a", Some(4));
        read_local(&mut ep, t0, id, b"CFG\n");
        let (sent, events) = flush(&mut ep, t0);
        assert!(has_log(
            &events,
            Level::Info,
            "read pxelinux.cfg/01-aa (as /etc/bootd/pybootd/etc/pxe.cfg) (4 bytes)"
        ));
        assert!(!sent.is_empty());
        // Names not matched still come from the mirror.
        request(&mut ep, t0, client(2001), &rrq("linux", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (_, source) = opened(&events).unwrap();
        assert!(matches!(source, SourceSpec::Http { .. }));
    }

    #[test]
    fn filters_rename_and_an_indirection_names_the_file() {
        let t0 = Instant::now();
        let rules = [
            ("pxelinux.cfg/*", "pxelinux.cfg/default"),
            ("grub/*", "[links/{filename}]"),
        ];
        let mut ep = endpoint(local_root(), 10, &rules);
        request(&mut ep, t0, client(2000), &rrq("pxelinux.cfg/01-aa", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, source) = opened(&events).unwrap();
        assert!(matches!(source, SourceSpec::File { name, .. } if name == "pxelinux.cfg/default"));
        ep.handle_source_opened(t0, id, "port-a", Some(0));
        let (_, events) = flush(&mut ep, t0);
        assert!(has_log(
            &events,
            Level::Info,
            "read pxelinux.cfg/01-aa (as pxelinux.cfg/default) (0 bytes)"
        ));

        request(&mut ep, t0, client(2001), &rrq("grub/grub.cfg", &[]));
        let (_, events) = flush(&mut ep, t0);
        assert!(opened(&events).is_none(), "the indirection is read first");
        let Some(Event::ReadIndirect { id, path }) = events
            .into_iter()
            .find(|e| matches!(e, Event::ReadIndirect { .. }))
        else {
            panic!("no ReadIndirect");
        };
        assert_eq!(path, "links/grub/grub.cfg");
        let file = IndirectFile {
            path: "/srv/tftp/links/grub/grub.cfg".into(),
            content: b"\n  images/grub.cfg  \nignored\n".to_vec(),
        };
        ep.handle_indirect(t0, id, Ok(file));
        let (_, events) = flush(&mut ep, t0);
        let (_, source) = opened(&events).unwrap();
        assert!(matches!(source, SourceSpec::File { name, .. } if name == "images/grub.cfg"));

        // An indirection file naming nothing refuses the request.
        request(&mut ep, t0, client(2002), &rrq("grub/x", &[]));
        let (_, events) = flush(&mut ep, t0);
        let id = events
            .iter()
            .find_map(|e| match e {
                Event::ReadIndirect { id, .. } => Some(*id),
                _ => None,
            })
            .unwrap();
        let empty = IndirectFile {
            path: "/srv/tftp/links/grub/x".into(),
            content: b"\n \n".to_vec(),
        };
        ep.handle_indirect(t0, id, Ok(empty));
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromNewPort(
                LOCAL,
                client(2002),
                error(ErrorCode::FileNotFound, "file not found")
            )]
        );
        assert!(has_log(
            &events,
            Level::Info,
            "10.0.0.100:2002: refused grub/x: [filters] line 2: /srv/tftp/links/grub/x names no file"
        ));
    }

    #[test]
    fn an_indirection_needs_a_local_root() {
        let t0 = Instant::now();
        let mut ep = endpoint(http_root(), 10, &[("*", "[{filename}.link]")]);
        request(&mut ep, t0, client(2000), &rrq("linux", &[]));
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromNewPort(
                LOCAL,
                client(2000),
                error(ErrorCode::FileNotFound, "file not found")
            )]
        );
        assert!(has_log(
            &events,
            Level::Info,
            "refused linux: [filters] line 1: a [path] indirection needs a local [tftp] root"
        ));
        assert_eq!(ep.transfer_count(), 0);
    }

    #[test]
    fn a_source_or_port_that_cannot_be_opened_refuses_the_request() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        let failures = [
            (
                OpenFailure::Source(OpenError::not_found("/srv/tftp/a: no such file")),
                Some(error(ErrorCode::FileNotFound, "file not found")),
                (
                    Level::Info,
                    "10.0.0.100:2000: refused a: /srv/tftp/a: no such file",
                ),
            ),
            (
                OpenFailure::ReadersBusy { running: 10 },
                Some(error(ErrorCode::NotDefined, "server busy, try again later")),
                (Level::Info, "refused a: 10 HTTP downloads still running"),
            ),
            (
                OpenFailure::Socket(std::io::Error::other("no ports left")),
                Some(error(ErrorCode::NotDefined, "server cannot open a socket")),
                (Level::Warn, "cannot open a transfer socket: no ports left"),
            ),
            (
                OpenFailure::Watch(std::io::Error::other("epoll full")),
                None,
                (Level::Warn, "cannot watch a transfer socket: epoll full"),
            ),
        ];
        for (failure, answer, (level, line)) in failures {
            request(&mut ep, t0, client(2000), &rrq("a", &[]));
            let (_, events) = flush(&mut ep, t0);
            let (id, _) = opened(&events).unwrap();
            ep.handle_open_failed(t0, id, failure);
            let (sent, events) = flush(&mut ep, t0);
            let expected: Vec<Sent> = answer
                .into_iter()
                .map(|bytes| Sent::FromNewPort(LOCAL, client(2000), bytes))
                .collect();
            assert_eq!(sent, expected);
            assert!(has_log(&events, level, line), "{events:?}");
            // Forgotten: the client may ask again.
            assert_eq!(ep.transfer_count(), 0);
        }
    }

    #[test]
    fn a_read_error_aborts_the_transfer() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        request(&mut ep, t0, client(2000), &rrq("a", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, _) = opened(&events).unwrap();
        ep.handle_source_opened(t0, id, "port-a", Some(1000));
        ep.handle_source_read(t0, id, |_, _: &mut [u8]| {
            Err(std::io::Error::other("disk on fire"))
        });
        assert!(ep.source_wanted(id).is_none());
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::ToClient(
                "port-a",
                client(2000),
                error(ErrorCode::NotDefined, "read error on the server")
            )]
        );
        assert!(has_log(
            &events,
            Level::Warn,
            "10.0.0.100:2000: read error on a: disk on fire"
        ));
        assert!(has_log(
            &events,
            Level::Warn,
            "a aborted: read error on the server, after 0 bytes"
        ));
        assert_eq!(ep.transfer_count(), 0);
    }

    /// A local file truncated while it is sent: the client was told its size (or
    /// will compare what it got with the file), so it gets an ERROR, never a short
    /// last block that would end the transfer as if complete.
    #[test]
    fn a_local_file_that_shrinks_during_its_transfer_ends_with_an_error() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 10, &[]);
        request(&mut ep, t0, client(2000), &rrq("a", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, _) = opened(&events).unwrap();
        ep.handle_source_opened(t0, id, "port-a", Some(2000));
        // Only 700 of the 2000 bytes opened are left when it is read.
        let left = [4u8; 700];
        read_local(&mut ep, t0, id, &left);
        let (sent, _) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::ToClient("port-a", client(2000), data(1, &[4; 512]))]
        );
        ep.handle_datagram(t0, Arrival::Transfer(id), client(2000), &ack(1));
        read_local(&mut ep, t0, id, &left);
        let (sent, events) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::ToClient(
                "port-a",
                client(2000),
                error(ErrorCode::NotDefined, "file changed on the server")
            )]
        );
        assert!(
            has_log(
                &events,
                Level::Warn,
                "10.0.0.100:2000: a ended after 700 of its 2000 bytes: the file changed during the transfer"
            ),
            "{events:?}"
        );
        assert!(has_log(
            &events,
            Level::Warn,
            "a aborted: file changed on the server, after 512 bytes"
        ));
        assert_eq!(ep.transfer_count(), 0);
    }

    /// An HTTP source whose body ends before, or runs past, the length it announced
    /// ends the transfer with an ERROR.
    #[test]
    fn an_http_source_inconsistent_with_its_length_ends_with_an_error() {
        for (fed, end, log) in [
            (600, true, "linux ended after 600 of its 1000 bytes"),
            (1200, false, "linux sent more than its 1000 bytes"),
        ] {
            let t0 = Instant::now();
            let mut ep = endpoint(http_root(), 10, &[]);
            request(&mut ep, t0, client(2000), &rrq("linux", &[]));
            let (_, events) = flush(&mut ep, t0);
            let (id, _) = opened(&events).unwrap();
            ep.handle_source_opened(t0, id, "port-a", None);
            ep.handle_source_answered(t0, id, Some(1000));
            ep.handle_source_data(t0, id, &vec![5u8; fed]);
            if end {
                ep.handle_source_end(t0, id);
            }
            let (sent, events) = flush(&mut ep, t0);
            let errors: Vec<&Sent> = sent
                .iter()
                .filter(|s| matches!(s, Sent::ToClient(_, _, bytes) if bytes[1] == 5))
                .collect();
            assert_eq!(
                errors,
                vec![&Sent::ToClient(
                    "port-a",
                    client(2000),
                    error(ErrorCode::NotDefined, "remote source failed")
                )],
                "{fed}: {sent:?}"
            );
            assert!(
                sent.iter()
                    .all(|s| !matches!(s, Sent::ToClient(_, _, bytes) if bytes[1] == 3 && bytes.len() < 516)),
                "{fed}: a short DATA block was sent: {sent:?}"
            );
            assert!(has_log(&events, Level::Warn, log), "{events:?}");
            assert_eq!(ep.transfer_count(), 0);
        }
    }

    #[test]
    fn transfers_of_many_clients_keep_apart_and_ids_are_reused() {
        let t0 = Instant::now();
        let mut ep = endpoint(local_root(), 100, &[]);
        let labels = ["p0", "p1", "p2"];
        let ids: Vec<TransferId> = (0..3)
            .map(|i| {
                let from = client(3000 + i as u16);
                start_local(&mut ep, t0, from, "f", &[i as u8; 10], labels[i]).0
            })
            .collect();
        assert_eq!(ep.transfer_count(), 3);
        // The middle one completes; a new client takes its place.
        ep.handle_datagram(t0, Arrival::Transfer(ids[1]), client(3001), &ack(1));
        let (_, events) = flush(&mut ep, t0);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Closed { io: "p1", .. }))
        );
        let (id, sent) = start_local(&mut ep, t0, client(4000), "g", &[9; 3], "p3");
        assert_eq!(id, ids[1]);
        assert_eq!(
            sent,
            vec![Sent::ToClient("p3", client(4000), data(1, &[9; 3]))]
        );
        assert_eq!(ep.transfer_count(), 3);
    }

    proptest::proptest! {
        /// Any datagrams, on the TFTP port or a transfer's, from any of a few clients,
        /// with time passing: no panic, no runaway output, and every transfer ends.
        #[test]
        fn random_traffic_never_panics_and_every_transfer_ends(
            packets in proptest::collection::vec(
                (0u8..4, 0u16..4, proptest::collection::vec(proptest::num::u8::ANY, 0..24), 0u64..1500),
                0..120,
            ),
        ) {
            let mut now = Instant::now();
            let mut ep = endpoint(local_root(), 3, &[("x*", "[{filename}]")]);
            let content = [1u8; 1500];
            let mut ids = Vec::new();
            for (kind, port, junk, step) in packets {
                now += Duration::from_millis(step);
                let from = client(2000 + port);
                let bytes = match kind {
                    0 => rrq(if port == 3 { "x" } else { "f" }, &[("blksize", "8"), ("windowsize", "4")]),
                    1 => ack(u16::from(junk.first().copied().unwrap_or(0))),
                    _ => junk,
                };
                match (kind, ids.last()) {
                    (0, _) | (_, None) => request(&mut ep, now, from, &bytes),
                    (_, Some(&id)) => {
                        ep.handle_datagram(now, Arrival::Transfer(id), from, &bytes);
                    }
                }
                for &id in &ids {
                    read_local(&mut ep, now, id, &content);
                }
                ep.handle_timeout(now);
                // Answer what the endpoint asks, as the shell does, until it is quiet.
                loop {
                    let (_, events) = flush(&mut ep, now);
                    let mut asked = false;
                    for event in events {
                        match event {
                            Event::Open { id, .. } => {
                                ids.push(id);
                                ep.handle_source_opened(now, id, "port", Some(1500));
                                read_local(&mut ep, now, id, &content);
                                asked = true;
                            }
                            Event::ReadIndirect { id, .. } => {
                                let path = "x".into();
                                let file = IndirectFile { path, content: b"f".to_vec() };
                                ep.handle_indirect(now, id, Ok(file));
                                asked = true;
                            }
                            _ => {}
                        }
                    }
                    if !asked {
                        break;
                    }
                }
                proptest::prop_assert!(ep.transfer_count() <= 3);
            }
            // Left alone, every transfer gives up in the end.
            for _ in 0..100 {
                let Some(due) = ep.poll_timeout() else { break };
                now = now.max(due);
                ep.handle_timeout(now);
                flush(&mut ep, now);
            }
            proptest::prop_assert_eq!(ep.transfer_count(), 0);
            proptest::prop_assert_eq!(ep.poll_timeout(), None);
        }
    }

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

    fn single_port_endpoint(max_transfers: usize) -> Endpoint<Io> {
        let mut ep = endpoint(local_root(), max_transfers, &[]);
        ep.settings.single_port = true;
        ep
    }

    /// A datagram arriving on the TFTP port, where single-port transfers listen too.
    fn on_tftp_port(
        ep: &mut Endpoint<Io>,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<TransferId> {
        let arrival = Arrival::Listener {
            address: LOCAL,
            limits: limits(),
        };
        ep.handle_datagram(now, arrival, from, bytes)
    }

    #[test]
    fn in_single_port_mode_a_transfer_talks_from_the_tftp_port_and_its_acks_arrive_there() {
        let t0 = Instant::now();
        let mut ep = single_port_endpoint(10);
        assert_eq!(
            on_tftp_port(&mut ep, t0, client(2000), &rrq("a", &[])),
            None
        );
        let (sent, events) = flush(&mut ep, t0);
        assert!(sent.is_empty());
        let own_port = events.iter().find_map(|e| match e {
            Event::Open { own_port, .. } => Some(*own_port),
            _ => None,
        });
        assert_eq!(own_port, Some(false), "no port of its own is opened");
        let (id, _) = opened(&events).unwrap();
        let content = [5u8; 600];
        ep.handle_source_opened(t0, id, "tftp-port", Some(600));
        read_local(&mut ep, t0, id, &content);
        let (sent, _) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromServerPort(
                LOCAL,
                client(2000),
                data(1, &[5; 512])
            )]
        );
        // A repeated request from the same endpoint is not an ACK, and not a second
        // transfer.
        assert_eq!(
            on_tftp_port(&mut ep, t0, client(2000), &rrq("a", &[])),
            None
        );
        let (sent, events) = flush(&mut ep, t0);
        assert!(sent.is_empty() && opened(&events).is_none());
        assert_eq!(ep.transfer_count(), 1);
        // The ACK reaches the transfer, which says so: the shell reads on for it.
        assert_eq!(on_tftp_port(&mut ep, t0, client(2000), &ack(1)), Some(id));
        read_local(&mut ep, t0, id, &content);
        let (sent, _) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromServerPort(LOCAL, client(2000), data(2, &[5; 88]))]
        );
        // Lost: the timer resends it from the TFTP port too.
        let due = ep.poll_timeout().unwrap();
        ep.handle_timeout(due);
        let (sent, _) = flush(&mut ep, due);
        assert_eq!(
            sent,
            vec![Sent::FromServerPort(LOCAL, client(2000), data(2, &[5; 88]))]
        );
        assert_eq!(on_tftp_port(&mut ep, due, client(2000), &ack(2)), Some(id));
        let (sent, events) = flush(&mut ep, due);
        assert!(sent.is_empty());
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Closed {
                io: "tftp-port",
                position: 600
            }
        )));
        assert_eq!(ep.transfer_count(), 0);
    }

    #[test]
    fn in_single_port_mode_a_stray_datagram_is_dropped_without_error_5() {
        let t0 = Instant::now();
        let mut ep = single_port_endpoint(10);
        let content = [3u8; 600];
        request(&mut ep, t0, client(2000), &rrq("a", &[]));
        let (_, events) = flush(&mut ep, t0);
        let (id, _) = opened(&events).unwrap();
        ep.handle_source_opened(t0, id, "tftp-port", Some(600));
        read_local(&mut ep, t0, id, &content);
        flush(&mut ep, t0);
        // Another port of the client, and another host: neither holds a transfer.
        for stray in [client(2001), SocketAddr::from(([10, 0, 0, 66], 2000))] {
            assert_eq!(on_tftp_port(&mut ep, t0, stray, &ack(1)), None);
            let (sent, _) = flush(&mut ep, t0);
            assert!(sent.is_empty(), "{sent:?}");
        }
        // The transfer's own client still moves it on.
        assert_eq!(on_tftp_port(&mut ep, t0, client(2000), &ack(1)), Some(id));
        read_local(&mut ep, t0, id, &content);
        let (sent, _) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromServerPort(LOCAL, client(2000), data(2, &[3; 88]))]
        );
        // An ACK the client sends to another served address is not this transfer's.
        let elsewhere = Arrival::Listener {
            address: Ipv4Addr::new(10, 0, 1, 1),
            limits: limits(),
        };
        assert_eq!(
            ep.handle_datagram(t0, elsewhere, client(2000), &ack(2)),
            None
        );
        assert_eq!(ep.transfer_count(), 1);
    }

    #[test]
    fn in_single_port_mode_refusals_leave_from_the_tftp_port() {
        let t0 = Instant::now();
        let mut ep = single_port_endpoint(1);
        request(&mut ep, t0, client(2000), &rrq("a", &[]));
        flush(&mut ep, t0);
        request(&mut ep, t0, client(2001), &rrq("b", &[]));
        let (sent, _) = flush(&mut ep, t0);
        assert_eq!(
            sent,
            vec![Sent::FromServerPort(
                LOCAL,
                client(2001),
                error(ErrorCode::NotDefined, "server busy, try again later")
            )]
        );
    }
}
