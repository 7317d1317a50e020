//! The NBD endpoint (sans-IO): every connection of the NBD service and every
//! decision above a single connection, with no socket, file or clock.
//!
//! It holds the exports as clients see them, the connections (each a
//! [`Connection`] with the shell's I/O beside it), which machine each connection
//! is (the MAC the BOOTP side bound to its address, learnt from lease events, else
//! the address itself), which disk each connection reads and writes (on a `cow`
//! export, the overlay of that machine on that export: never another's), how long
//! an overlay outlives its last connection, and the limit on connections.
//!
//! The shell drives it like the other endpoints: input with `handle_accept`,
//! `handle_input`, `handle_transmitted`, `handle_read`/`handle_done` (the answers to
//! the disk operations it asked for), `handle_closed`, `handle_lease` and
//! `handle_timeout`; output with `poll_transmit`, `poll_event` (log lines, disk
//! operations, sockets to close, overlays to delete) and `poll_timeout`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use log::Level;

use super::connection::{self, Connection, ExportInfo};
use super::overlay::Disk;
use super::wire;
use crate::config::NbdMode;
use crate::event::{EventKind, LeaseEvent};
use crate::metrics::TransferCounts;
use crate::types::MacAddr;

/// Who a connection is: overlays are kept per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Machine {
    /// The MAC bootd bound to the connecting address.
    Mac(MacAddr),
    /// An address bootd gave no lease to (or NBD runs alone).
    Address(IpAddr),
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Machine::Mac(mac) => write!(f, "{mac}"),
            Machine::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// One machine's overlay on one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OverlayKey {
    pub export: usize,
    pub machine: Machine,
}

/// An export as the endpoint serves it.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub name: String,
    pub size: u64,
    pub mode: NbdMode,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub exports: Vec<ExportSpec>,
    pub max_connections: usize,
    pub cow_keep: Duration,
    /// For the log line of a full overlay.
    pub cow_max_size: u64,
}

/// A connection, as the shell names it (its poll token is made from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(usize);

impl ConnId {
    pub fn index(self) -> usize {
        self.0
    }
    pub fn from_index(index: usize) -> ConnId {
        ConnId(index)
    }
}

/// What the shell should do or log, in order.
#[derive(Debug)]
pub enum Event<Io> {
    Log(Level, String),
    /// Answer with [`Endpoint::handle_read`].
    Read {
        id: ConnId,
        disk: Disk<OverlayKey>,
        offset: u64,
        len: u32,
    },
    /// Answer each of these with [`Endpoint::handle_done`].
    Write {
        id: ConnId,
        disk: Disk<OverlayKey>,
        offset: u64,
        data: Vec<u8>,
        fua: bool,
    },
    Flush {
        id: ConnId,
        disk: Disk<OverlayKey>,
    },
    Trim {
        id: ConnId,
        disk: Disk<OverlayKey>,
        offset: u64,
        len: u32,
    },
    WriteZeroes {
        id: ConnId,
        disk: Disk<OverlayKey>,
        offset: u64,
        len: u32,
        fua: bool,
    },
    /// The connection is over: close its socket.
    Close {
        io: Io,
    },
    /// Delete this overlay (if it was ever written); `why` for the log.
    DropOverlay {
        key: OverlayKey,
        why: String,
    },
}

struct Entry<Io> {
    conn: Connection,
    io: Io,
    machine: Machine,
    /// Set once the client chose an export.
    disk: Option<Disk<OverlayKey>>,
    /// `peer` and, when known, the machine's MAC: the start of its log lines.
    label: String,
}

/// How an overlay is used.
#[derive(Debug, Default)]
struct OverlayUse {
    connections: usize,
    /// When its last connection closed.
    idle_since: Option<Instant>,
    /// A write went to it (until then it holds nothing worth mentioning).
    written: bool,
    full_logged: bool,
}

pub struct Endpoint<Io> {
    settings: Settings,
    infos: Vec<ExportInfo>,
    entries: Vec<Option<Entry<Io>>>,
    free: Vec<usize>,
    open: usize,
    /// Address → the MAC bootd bound to it.
    machines: HashMap<Ipv4Addr, MacAddr>,
    overlays: HashMap<OverlayKey, OverlayUse>,
    events: VecDeque<Event<Io>>,
    /// What the service did, for `/metrics`.
    counts: TransferCounts,
}

/// The transmission flags of an export in `mode`: only what the server does.
pub fn transmission_flags(mode: NbdMode) -> u16 {
    // Every connection is served by one thread against one store, and FLUSH flushes
    // the whole image: what one connection wrote, another of the same machine reads.
    let common = wire::TX_HAS_FLAGS | wire::TX_CAN_MULTI_CONN;
    match mode {
        NbdMode::ReadOnly => common | wire::TX_READ_ONLY,
        NbdMode::Cow | NbdMode::Write => {
            common
                | wire::TX_SEND_FLUSH
                | wire::TX_SEND_FUA
                | wire::TX_SEND_TRIM
                | wire::TX_SEND_WRITE_ZEROES
        }
    }
}

impl<Io> Endpoint<Io> {
    pub fn new(settings: Settings) -> Endpoint<Io> {
        let infos = settings
            .exports
            .iter()
            .map(|e| ExportInfo {
                name: e.name.clone(),
                size: e.size,
                flags: transmission_flags(e.mode),
            })
            .collect();
        Endpoint {
            settings,
            infos,
            entries: Vec::new(),
            free: Vec::new(),
            open: 0,
            machines: HashMap::new(),
            overlays: HashMap::new(),
            events: VecDeque::new(),
            counts: TransferCounts::default(),
        }
    }

    #[cfg(test)]
    pub fn connection_count(&self) -> usize {
        self.open
    }

    /// A client connected from `peer`; refused (its I/O handed back) past the limit.
    /// What the service did since it started: connections, how they ended, the
    /// bytes of the blocks read.
    pub fn counts(&self) -> &TransferCounts {
        &self.counts
    }

    pub fn handle_accept(&mut self, now: Instant, peer: SocketAddr, io: Io) -> Result<ConnId, Io> {
        self.counts.started += 1;
        if self.open >= self.settings.max_connections {
            self.counts.failed += 1;
            self.events.push_back(Event::Log(
                Level::Info,
                format!(
                    "{peer}: refused: {} NBD connections are open ([nbd] max_connections)",
                    self.open
                ),
            ));
            return Err(io);
        }
        let machine = match peer.ip() {
            IpAddr::V4(ip) => self
                .machines
                .get(&ip)
                .map_or(Machine::Address(peer.ip()), |mac| Machine::Mac(*mac)),
            ip => Machine::Address(ip),
        };
        let label = match machine {
            Machine::Mac(mac) => format!("{peer} ({mac})"),
            Machine::Address(_) => peer.to_string(),
        };
        let entry = Entry {
            conn: Connection::new(now),
            io,
            machine,
            disk: None,
            label,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(entry);
                i
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.open += 1;
        let id = ConnId(index);
        self.events
            .push_back(Event::Log(Level::Debug, format!("{peer}: connected")));
        Ok(id)
    }

    fn entry(&self, id: ConnId) -> Option<&Entry<Io>> {
        self.entries.get(id.0)?.as_ref()
    }

    pub fn io_mut(&mut self, id: ConnId) -> Option<&mut Io> {
        Some(&mut self.entries.get_mut(id.0)?.as_mut()?.io)
    }

    /// The connection's I/O and the bytes it has to send, borrowed together.
    pub fn io_and_output(&mut self, id: ConnId) -> Option<(&mut Io, impl Iterator<Item = &[u8]>)> {
        let entry = self.entries.get_mut(id.0)?.as_mut()?;
        Some((&mut entry.io, entry.conn.poll_transmit()))
    }

    pub fn input_room(&self, id: ConnId) -> usize {
        self.entry(id).map_or(0, |e| e.conn.input_room())
    }

    pub fn has_output(&self, id: ConnId) -> bool {
        self.entry(id).is_some_and(|e| e.conn.output_len() > 0)
    }

    pub fn handle_input(&mut self, now: Instant, id: ConnId, bytes: &[u8]) {
        self.with(now, id, |conn, infos| conn.handle_input(now, bytes, infos));
    }

    pub fn handle_transmitted(&mut self, now: Instant, id: ConnId, n: usize) {
        self.with(now, id, |conn, infos| {
            conn.handle_transmitted(now, n, infos)
        });
    }

    pub fn handle_read(&mut self, now: Instant, id: ConnId, result: Result<Vec<u8>, u32>) {
        if let Ok(data) = &result {
            self.counts.bytes += data.len() as u64;
        }
        self.with(now, id, |conn, infos| conn.handle_read(result, infos));
    }

    pub fn handle_done(&mut self, now: Instant, id: ConnId, result: Result<(), u32>) {
        if result == Err(wire::ENOSPC) {
            self.note_full(id);
        }
        self.with(now, id, |conn, infos| conn.handle_done(result, infos));
    }

    /// The socket closed or failed (`why`, for the log): the connection is over.
    pub fn handle_closed(&mut self, now: Instant, id: ConnId, why: &str) {
        if let Some(entry) = self.entry(id) {
            let level = if entry.disk.is_some() {
                Level::Info
            } else {
                Level::Debug
            };
            let line = format!("{}: {why}", entry.label);
            self.events.push_back(Event::Log(level, line));
        }
        self.remove(now, id);
    }

    /// A lease event from the BOOTP side: who holds which address.
    pub fn handle_lease(&mut self, lease: &LeaseEvent) {
        match lease.kind {
            EventKind::Boot | EventKind::Lease => {
                self.machines.insert(lease.ip, lease.mac);
            }
            EventKind::Release => {
                if self.machines.get(&lease.ip) == Some(&lease.mac) {
                    self.machines.remove(&lease.ip);
                }
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let connections = self
            .entries
            .iter()
            .flatten()
            .filter_map(|e| e.conn.poll_timeout());
        let overlays = self
            .overlays
            .values()
            .filter_map(|u| u.idle_since.map(|at| at + self.settings.cow_keep));
        connections.chain(overlays).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for index in 0..self.entries.len() {
            let id = ConnId(index);
            let due = self
                .entry(id)
                .and_then(|e| e.conn.poll_timeout())
                .is_some_and(|at| at <= now);
            if due {
                self.with(now, id, |conn, _| conn.handle_timeout(now));
            }
        }
        let keep = self.settings.cow_keep;
        let expired: Vec<OverlayKey> = self
            .overlays
            .iter()
            .filter(|(_, u)| u.idle_since.is_some_and(|at| at + keep <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.overlays.remove(&key);
            let why = format!(
                "deleted the overlay of {} on export {}: unused for {} s ([nbd] cow_keep)",
                key.machine,
                self.export_name(key.export),
                keep.as_secs()
            );
            self.events.push_back(Event::DropOverlay { key, why });
        }
    }

    pub fn poll_event(&mut self) -> Option<Event<Io>> {
        self.events.pop_front()
    }

    fn export_name(&self, export: usize) -> &str {
        self.infos.get(export).map_or("?", |i| i.name.as_str())
    }

    /// Runs `f` on the connection `id`, then takes its events and ends it if it is over.
    fn with(&mut self, now: Instant, id: ConnId, f: impl FnOnce(&mut Connection, &[ExportInfo])) {
        let Some(Some(entry)) = self.entries.get_mut(id.0) else {
            return;
        };
        f(&mut entry.conn, &self.infos);
        loop {
            let Some(Some(entry)) = self.entries.get_mut(id.0) else {
                return;
            };
            let Some(event) = entry.conn.poll_event() else {
                if entry.conn.is_finished() {
                    self.remove_finished(now, id);
                }
                return;
            };
            let out = match (event, entry.disk) {
                (connection::Event::Log(level, line), _) => {
                    Event::Log(level, format!("{}: {line}", entry.label))
                }
                (connection::Event::Selected { export }, _) => {
                    self.select(id, export);
                    continue;
                }
                (connection::Event::Read { offset, len }, Some(disk)) => Event::Read {
                    id,
                    disk,
                    offset,
                    len,
                },
                (connection::Event::Write { offset, data, fua }, Some(disk)) => Event::Write {
                    id,
                    disk,
                    offset,
                    data,
                    fua,
                },
                (connection::Event::Flush, Some(disk)) => Event::Flush { id, disk },
                (connection::Event::Trim { offset, len }, Some(disk)) => Event::Trim {
                    id,
                    disk,
                    offset,
                    len,
                },
                (connection::Event::WriteZeroes { offset, len, fua }, Some(disk)) => {
                    Event::WriteZeroes {
                        id,
                        disk,
                        offset,
                        len,
                        fua,
                    }
                }
                // A disk operation comes only after an export was chosen.
                (_, None) => continue,
            };
            if let Event::Write { disk, .. } | Event::WriteZeroes { disk, .. } = &out
                && let Some(key) = disk.overlay
                && let Some(usage) = self.overlays.get_mut(&key)
            {
                usage.written = true;
            }
            self.events.push_back(out);
        }
    }

    fn select(&mut self, id: ConnId, export: usize) {
        let Some(spec) = self.settings.exports.get(export) else {
            return;
        };
        let (mode, name) = (spec.mode, spec.name.clone());
        let Some(Some(entry)) = self.entries.get(id.0) else {
            return;
        };
        let machine = entry.machine;
        let key = OverlayKey { export, machine };
        let mut line = format!("{}: export {name} ({})", entry.label, mode.as_str());
        let overlay = match mode {
            NbdMode::Cow => {
                let usage = self.overlays.entry(key).or_default();
                if usage.connections == 0 && usage.written {
                    line.push_str(", its overlay from an earlier connection kept");
                }
                usage.connections += 1;
                usage.idle_since = None;
                Some(key)
            }
            NbdMode::Write => {
                let others: Vec<String> = self
                    .entries
                    .iter()
                    .flatten()
                    .filter(|e| e.disk.is_some_and(|d| d.export == export) && e.machine != machine)
                    .map(|e| e.machine.to_string())
                    .collect();
                if !others.is_empty() {
                    self.events.push_back(Event::Log(
                        Level::Warn,
                        format!(
                            "export {name} (mode write) is now written by several machines at once ({machine} and {}): their writes go to the same image",
                            others.join(", ")
                        ),
                    ));
                }
                None
            }
            NbdMode::ReadOnly => None,
        };
        self.events.push_back(Event::Log(Level::Info, line));
        if let Some(Some(entry)) = self.entries.get_mut(id.0) {
            entry.disk = Some(Disk { export, overlay });
        }
    }

    fn note_full(&mut self, id: ConnId) {
        let Some(entry) = self.entry(id) else { return };
        let Some(Disk {
            overlay: Some(key), ..
        }) = entry.disk
        else {
            return;
        };
        let label = entry.label.clone();
        let name = self.export_name(key.export).to_string();
        let max = self.settings.cow_max_size;
        if let Some(usage) = self.overlays.get_mut(&key)
            && !usage.full_logged
        {
            usage.full_logged = true;
            self.events.push_back(Event::Log(
                Level::Warn,
                format!(
                    "{label}: the overlay of {} on export {name} is full ({max} bytes, [nbd] cow_max_size): writes get ENOSPC",
                    key.machine
                ),
            ));
        }
    }

    fn remove_finished(&mut self, now: Instant, id: ConnId) {
        if let Some(entry) = self.entry(id) {
            let level = if entry.disk.is_some() {
                Level::Info
            } else {
                Level::Debug
            };
            let line = format!("{}: connection closed", entry.label);
            self.events.push_back(Event::Log(level, line));
        }
        self.remove(now, id);
    }

    fn remove(&mut self, now: Instant, id: ConnId) {
        let Some(slot) = self.entries.get_mut(id.0) else {
            return;
        };
        let Some(entry) = slot.take() else { return };
        self.free.push(id.0);
        self.open -= 1;
        // A connection that chose an export served its machine; one that ended in
        // the handshake did not.
        if entry.disk.is_some() {
            self.counts.completed += 1;
        } else {
            self.counts.failed += 1;
        }
        if let Some(Disk {
            overlay: Some(key), ..
        }) = entry.disk
            && let Some(usage) = self.overlays.get_mut(&key)
        {
            usage.connections = usage.connections.saturating_sub(1);
            if usage.connections == 0 {
                usage.idle_since = Some(now);
            }
        }
        self.events.push_back(Event::Close { io: entry.io });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nbd::wire::{InfoRequest, OptionCode, OptionHeader};

    fn settings(max_connections: usize) -> Settings {
        Settings {
            exports: vec![
                ExportSpec {
                    name: "cow".into(),
                    size: 1 << 20,
                    mode: NbdMode::Cow,
                },
                ExportSpec {
                    name: "shared".into(),
                    size: 1 << 20,
                    mode: NbdMode::Write,
                },
            ],
            max_connections,
            cow_keep: Duration::from_secs(60),
            cow_max_size: 1 << 20,
        }
    }

    fn peer(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    /// Connects from `peer` and sends GO for `export`; returns the connection.
    fn connect(e: &mut Endpoint<u32>, now: Instant, peer: SocketAddr, export: &str) -> ConnId {
        let id = e.handle_accept(now, peer, 0).ok().unwrap();
        let mut bytes = 3u32.to_be_bytes().to_vec();
        let go = InfoRequest {
            name: export.into(),
            requests: vec![],
        }
        .emit();
        bytes.extend(
            OptionHeader {
                code: OptionCode::Go,
                length: go.len() as u32,
            }
            .emit(),
        );
        bytes.extend(go);
        e.handle_input(now, id, &bytes);
        id
    }

    thread_local! {
        /// Log lines `disk_of` passed over, for `logs`.
        static SKIPPED: std::cell::RefCell<Vec<(Level, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// The disk the next write of `id` goes to.
    fn disk_of(e: &mut Endpoint<u32>, now: Instant, id: ConnId) -> Disk<OverlayKey> {
        let mut request = crate::nbd::wire::Request {
            flags: 0,
            command: crate::nbd::wire::Command::Write,
            cookie: 1,
            offset: 0,
            length: 1,
        }
        .emit();
        request.push(b'x');
        e.handle_input(now, id, &request);
        loop {
            match e.poll_event() {
                Some(Event::Write { disk, id: at, .. }) if at == id => {
                    e.handle_done(now, id, Ok(()));
                    return disk;
                }
                Some(Event::Log(level, line)) => {
                    SKIPPED.with(|s| s.borrow_mut().push((level, line)));
                }
                Some(_) => continue,
                None => panic!("no write"),
            }
        }
    }

    fn logs(e: &mut Endpoint<u32>) -> Vec<(Level, String)> {
        let mut lines = SKIPPED.with(|s| std::mem::take(&mut *s.borrow_mut()));
        lines.extend(
            std::iter::from_fn(|| e.poll_event()).filter_map(|ev| match ev {
                Event::Log(level, line) => Some((level, line)),
                _ => None,
            }),
        );
        lines
    }

    fn lease(kind: EventKind, mac: &str, last: u8) -> LeaseEvent {
        LeaseEvent {
            kind,
            mac: mac.parse().unwrap(),
            uuid: None,
            ip: Ipv4Addr::new(10, 0, 0, last),
            boot_file: None,
            server_ip: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn overlays_are_keyed_by_the_leased_mac_never_by_the_port() {
        let now = Instant::now();
        let mut e = Endpoint::new(settings(10));
        e.handle_lease(&lease(EventKind::Lease, "02-00-00-00-00-0a", 5));
        let a = connect(&mut e, now, peer(5, 1000), "cow");
        let b = connect(&mut e, now, peer(5, 2000), "cow");
        let other = connect(&mut e, now, peer(6, 1000), "cow");
        let mac = Machine::Mac("02-00-00-00-00-0a".parse().unwrap());
        let da = disk_of(&mut e, now, a);
        assert_eq!(
            da.overlay,
            Some(OverlayKey {
                export: 0,
                machine: mac
            })
        );
        assert_eq!(
            disk_of(&mut e, now, b),
            da,
            "another port, the same machine"
        );
        let d_other = disk_of(&mut e, now, other);
        assert_eq!(
            d_other.overlay.map(|k| k.machine),
            Some(Machine::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6))))
        );
        // A released address no longer stands for the machine.
        e.handle_lease(&lease(EventKind::Release, "02-00-00-00-00-0a", 5));
        let c = connect(&mut e, now, peer(5, 3000), "cow");
        assert_ne!(disk_of(&mut e, now, c), da);
        let lines = logs(&mut e);
        assert!(
            lines
                .iter()
                .any(|(_, l)| l.contains("10.0.0.5:1000 (02-00-00-00-00-0A): export cow (cow)")),
            "{lines:?}"
        );
    }

    #[test]
    fn an_overlay_outlives_its_connections_by_cow_keep_then_is_dropped() {
        let now = Instant::now();
        let mut e = Endpoint::new(settings(10));
        let a = connect(&mut e, now, peer(5, 1000), "cow");
        let key = disk_of(&mut e, now, a).overlay.unwrap();
        e.handle_closed(now, a, "the client closed the connection");
        logs(&mut e);
        assert_eq!(e.poll_timeout(), Some(now + Duration::from_secs(60)));
        // A reconnection within the time keeps it, and says so.
        let later = now + Duration::from_secs(30);
        let b = connect(&mut e, later, peer(5, 1001), "cow");
        assert_eq!(disk_of(&mut e, later, b).overlay, Some(key));
        let lines = logs(&mut e);
        assert!(
            lines
                .iter()
                .any(|(_, l)| l.contains("overlay from an earlier connection kept"))
        );
        // In use again: its deletion is off (the deadline left is the unread reply's).
        assert_eq!(e.poll_timeout(), Some(later + connection::STALL_TIMEOUT));
        e.handle_closed(later, b, "gone");
        e.handle_timeout(later + Duration::from_secs(59));
        assert!(
            !std::iter::from_fn(|| e.poll_event())
                .any(|ev| matches!(ev, Event::DropOverlay { .. }))
        );
        e.handle_timeout(later + Duration::from_secs(60));
        let dropped: Vec<OverlayKey> = std::iter::from_fn(|| e.poll_event())
            .filter_map(|ev| match ev {
                Event::DropOverlay { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, vec![key]);
    }

    #[test]
    fn connections_past_the_limit_are_refused_with_one_line_each() {
        let now = Instant::now();
        let mut e = Endpoint::new(settings(2));
        assert!(e.handle_accept(now, peer(1, 1), 1).is_ok());
        assert!(e.handle_accept(now, peer(1, 2), 2).is_ok());
        assert_eq!(e.handle_accept(now, peer(1, 3), 3).err(), Some(3));
        let lines = logs(&mut e);
        let refused: Vec<_> = lines
            .iter()
            .filter(|(_, l)| l.contains("refused"))
            .collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(e.connection_count(), 2);
        e.handle_closed(now, ConnId(0), "gone");
        assert!(e.handle_accept(now, peer(1, 4), 4).is_ok());
    }

    #[test]
    fn a_second_machine_on_a_write_export_is_warned_about() {
        let now = Instant::now();
        let mut e = Endpoint::new(settings(10));
        let a = connect(&mut e, now, peer(5, 1000), "shared");
        assert_eq!(disk_of(&mut e, now, a).overlay, None);
        logs(&mut e);
        connect(&mut e, now, peer(5, 1001), "shared");
        assert!(
            !logs(&mut e).iter().any(|(l, _)| *l == Level::Warn),
            "same machine"
        );
        connect(&mut e, now, peer(6, 1000), "shared");
        let lines = logs(&mut e);
        assert!(
            lines
                .iter()
                .any(|(l, line)| *l == Level::Warn && line.contains("several machines")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_full_overlay_is_logged_once() {
        let now = Instant::now();
        let mut e = Endpoint::new(settings(10));
        let a = connect(&mut e, now, peer(5, 1000), "cow");
        disk_of(&mut e, now, a);
        let mut full = 0;
        for _ in 0..3 {
            let mut request = crate::nbd::wire::Request {
                flags: 0,
                command: crate::nbd::wire::Command::Write,
                cookie: 1,
                offset: 0,
                length: 1,
            }
            .emit();
            request.push(b'x');
            e.handle_input(now, a, &request);
            while let Some(ev) = e.poll_event() {
                match ev {
                    Event::Write { .. } => e.handle_done(now, a, Err(wire::ENOSPC)),
                    Event::Log(_, line) if line.contains("is full") => full += 1,
                    _ => {}
                }
            }
        }
        assert_eq!(full, 1);
    }
}
