//! Address assignment: the dynamic pool, `[static_dhcp]` reservations, and sticky
//! MAC→address bindings, plus the lease file that keeps bindings across restarts.
//!
//! pybootd's promise is kept and strengthened: a MAC keeps its address, now also
//! across restarts. Confirmed bindings do not expire while the pool has room
//! (`lease_time` is what clients are told); RELEASE and DECLINE end them, and
//! when the pool is full a binding unused for longer than its lease goes to a
//! new machine ([`LeaseTable::reclaim_expired`], the least recently used
//! first; never a `[static_dhcp]` reservation). Renewals are written to the
//! lease file (once its record is [`RENEWAL_RECORDED_AFTER`] old), so the file
//! says when each machine was last seen. A released address goes back to the
//! pool, but the MAC is remembered and gets the same address again as long as
//! no one else took it; new clients get never-used addresses first so that
//! this usually holds.
//!
//! The pool of a served network holds only host addresses of that network other
//! than the server's own ([`LeaseTable::for_network`]).
//!
//! An OFFER only reserves an address tentatively, in memory, for [`OFFER_HOLD`]:
//! it is no commitment, so when no address is free the oldest offer yields to a
//! new client ([`LeaseTable::take_oldest_offer`]), and offers are held for a
//! bounded number of clients ([`LeaseTable::remembering`]). The ACK confirms it
//! and yields a [`LeaseRecord`] that the I/O shell appends to the lease file,
//! flushed, before the ACK leaves.
//!
//! Everything kept per MAC is bounded: bindings by the pool and the
//! reservations, offers and MACs whose binding ended by the limit given to
//! [`LeaseTable::remembering`]. A [`PoolIndex`] keeps the free addresses in
//! order, so choosing one costs O(log n) whatever the table holds.
//!
//! The lease file is a line-based journal, one record per line, later lines
//! overriding earlier ones for the same MAC:
//!
//! ```text
//! # bootd leases
//! 52-54-00-12-34-56 192.168.25.100 1718000000 bound pxe uuid=01020304-0506-0708-090a-0b0c0d0e0f10
//! 52-54-00-12-34-57 192.168.25.101 1718000042 released
//! ```
//!
//! Fields: MAC, address, Unix time of the event, state (`bound`, `released`,
//! `declined`), then optional attributes: `pxe` (the MAC has PXE-booted through
//! bootd, so its OS is served even with `allow_simple_dhcp` off) and `uuid=`.
//! Everything here is pure; the file itself is [`super::lease_file`]'s.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::pool::{PoolIndex, Slot};
use crate::config::StaticLease;
use crate::types::{Ipv4Network, MacAddr, Uuid};

/// How long an OFFER keeps its address reserved without an ACK.
pub const OFFER_HOLD: Duration = Duration::from_secs(60);
/// How long a declined address stays out of use (dnsmasq uses the same 10 minutes).
pub const DECLINE_QUARANTINE: Duration = Duration::from_secs(600);
/// MACs whose binding ended that a table remembers unless told otherwise
/// ([`LeaseTable::remembering`]).
pub const IDLE_REMEMBERED: usize = 10_000;
/// Seconds a binding's record may age before a renewal writes it again: the
/// recorded time of a binding in use lags the truth by less than this, so a
/// binding is reclaimed only this long after its lease could have run out.
pub const RENEWAL_RECORDED_AFTER: u64 = 60;

/// The state a lease-file line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Bound,
    Released,
    Declined,
}

impl RecordState {
    fn as_str(self) -> &'static str {
        match self {
            RecordState::Bound => "bound",
            RecordState::Released => "released",
            RecordState::Declined => "declined",
        }
    }
}

/// One line of the lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    /// Unix time of the event (seconds), from the shell's clock.
    pub epoch: u64,
    pub state: RecordState,
    /// The MAC has PXE-booted through bootd.
    pub pxe: bool,
    pub uuid: Option<Uuid>,
}

/// The line to append for `record`, with its newline.
pub fn format_binding(record: &LeaseRecord) -> String {
    let mut line = format!(
        "{} {} {} {}",
        record.mac,
        record.ip,
        record.epoch,
        record.state.as_str()
    );
    if record.pxe {
        line.push_str(" pxe");
    }
    if let Some(uuid) = record.uuid {
        line.push_str(" uuid=");
        line.push_str(&uuid.to_string());
    }
    line.push('\n');
    line
}

/// Why a lease-file line was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseLineError {
    MissingFields {
        found: usize,
    },
    BadMac(String),
    BadAddress(String),
    BadTime(String),
    BadState(String),
    BadAttribute(String),
    /// Bytes that are not UTF-8 text.
    NotText,
    /// The last line has no newline: its write never completed.
    CutShort,
}

impl fmt::Display for LeaseLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseLineError::MissingFields { found } => write!(
                f,
                "expected `MAC ADDRESS TIME STATE`, found {found} field(s) (truncated line?)"
            ),
            LeaseLineError::BadMac(t) => write!(f, "`{t}` is not a MAC address"),
            LeaseLineError::BadAddress(t) => write!(f, "`{t}` is not an IPv4 address"),
            LeaseLineError::BadTime(t) => write!(f, "`{t}` is not a Unix time"),
            LeaseLineError::BadState(t) => {
                write!(f, "`{t}` is not bound, released or declined")
            }
            LeaseLineError::BadAttribute(t) => write!(f, "unknown attribute `{t}`"),
            LeaseLineError::NotText => write!(f, "not text (bytes that are not UTF-8)"),
            LeaseLineError::CutShort => write!(
                f,
                "the last line has no newline: a write cut short (by a crash or a full disk), whose binding no client was told of"
            ),
        }
    }
}

fn parse_line(line: &str) -> Result<LeaseRecord, LeaseLineError> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let [mac, ip, epoch, state, attributes @ ..] = fields.as_slice() else {
        return Err(LeaseLineError::MissingFields {
            found: fields.len(),
        });
    };
    let mut record = LeaseRecord {
        mac: mac
            .parse()
            .map_err(|_| LeaseLineError::BadMac(mac.to_string()))?,
        ip: ip
            .parse()
            .map_err(|_| LeaseLineError::BadAddress(ip.to_string()))?,
        epoch: epoch
            .parse()
            .map_err(|_| LeaseLineError::BadTime(epoch.to_string()))?,
        state: match *state {
            "bound" => RecordState::Bound,
            "released" => RecordState::Released,
            "declined" => RecordState::Declined,
            other => return Err(LeaseLineError::BadState(other.to_string())),
        },
        pxe: false,
        uuid: None,
    };
    for attribute in attributes {
        if *attribute == "pxe" {
            record.pxe = true;
        } else if let Some(uuid) = attribute
            .strip_prefix("uuid=")
            .and_then(|text| text.parse().ok())
        {
            record.uuid = Some(uuid);
        } else {
            return Err(LeaseLineError::BadAttribute(attribute.to_string()));
        }
    }
    Ok(record)
}

/// A line of the lease file that gives no record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine<'a> {
    /// 1-based.
    pub number: usize,
    pub error: LeaseLineError,
    /// The line as it is in the file, without its newline.
    pub bytes: &'a [u8],
}

/// What a lease file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFileContent<'a> {
    /// The records of every good line, in order.
    pub records: Vec<LeaseRecord>,
    /// Every whole line that could not be read, in order.
    pub rejected: Vec<RejectedLine<'a>>,
    /// A last line without its newline. bootd writes a record and its newline in
    /// one write and tells no client of it before it is on disk, so such a line is
    /// a write cut short; even when it reads as a record it may be a shorter one
    /// (`…100` cut to `…10`), so it is never used.
    pub torn: Option<RejectedLine<'a>>,
    /// The length of the file up to its last newline: the file without `torn`.
    pub whole_len: usize,
}

/// Reads a lease file. Blank lines and `#` comments are skipped; a bad line is
/// reported and never hides the lines after it.
pub fn parse_lease_file(bytes: &[u8]) -> LeaseFileContent<'_> {
    let whole_len = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |newline| newline + 1);
    let (whole, tail) = bytes.split_at(whole_len);
    let mut content = LeaseFileContent {
        records: Vec::new(),
        rejected: Vec::new(),
        torn: None,
        whole_len,
    };
    let mut number = 0;
    // `whole` is empty or ends with a newline; the lines are what comes before it.
    if let Some(body) = whole.strip_suffix(b"\n") {
        for line in body.split(|b| *b == b'\n') {
            number += 1;
            let rejected = |error| RejectedLine {
                number,
                error,
                bytes: line,
            };
            let Ok(text) = std::str::from_utf8(line) else {
                content.rejected.push(rejected(LeaseLineError::NotText));
                continue;
            };
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            match parse_line(text) {
                Ok(record) => content.records.push(record),
                Err(error) => content.rejected.push(rejected(error)),
            }
        }
    }
    if !tail.is_empty() {
        content.torn = Some(RejectedLine {
            number: number + 1,
            error: LeaseLineError::CutShort,
            bytes: tail,
        });
    }
    content
}

/// Why no address could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseError {
    /// Every pool address is bound, offered, reserved or quarantined.
    PoolExhausted { pool_count: u32 },
}

impl fmt::Display for LeaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseError::PoolExhausted { pool_count } => write!(
                f,
                "no free address: all {pool_count} pool addresses are taken (raise pool_count, or add a [static_dhcp] entry)"
            ),
        }
    }
}

/// The answer to a DHCPREQUEST's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestVerdict {
    /// The address is the client's: ACK it (then [`LeaseTable::confirm`]).
    Grant(Ipv4Addr),
    /// NAK: the client asked for an address it cannot have.
    Refuse(RefuseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefuseReason {
    /// The client holds (or has been offered) another address.
    HoldsAnother { requested: Ipv4Addr, held: Ipv4Addr },
    /// The address is someone else's, reserved, quarantined, or not ours to give.
    Unavailable { requested: Ipv4Addr },
    /// A DHCPREQUEST naming no address (neither option 50 nor ciaddr) from a
    /// client that holds none: RFC 2131 §4.3.2 has no such request, and
    /// binding a fresh address for it would let anyone empty the pool.
    NoAddress,
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefuseReason::HoldsAnother { requested, held } => {
                write!(f, "asked for {requested} but its address is {held}")
            }
            RefuseReason::Unavailable { requested } => write!(
                f,
                "asked for {requested}, which is not free in this server's pool"
            ),
            RefuseReason::NoAddress => {
                write!(f, "named no address and holds none")
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Binding {
    ip: Ipv4Addr,
    /// False once released: the address is free, the MAC only remembered.
    bound: bool,
    pxe: bool,
    uuid: Option<Uuid>,
    epoch: u64,
    /// The current state reached the lease file.
    persisted: bool,
}

#[derive(Debug, Clone, Copy)]
struct Offer {
    ip: Ipv4Addr,
    until: Instant,
}

/// Tentative offers, in two generations so that expired ones go in bulk: every
/// [`OFFER_HOLD`] the older generation, expired by then to the last offer, is
/// dropped and the younger one takes its place. Offers to machines that never
/// come back (a flood of made-up MACs) are thus forgotten within two holds, and
/// no packet pays for a scan.
#[derive(Debug, Clone, Default)]
struct Offers {
    young: HashMap<MacAddr, Offer>,
    old: HashMap<MacAddr, Offer>,
    /// When `old` is dropped next; `None` while there is no offer.
    rotate_at: Option<Instant>,
}

impl Offers {
    fn get(&self, mac: &MacAddr) -> Option<&Offer> {
        self.young.get(mac).or_else(|| self.old.get(mac))
    }

    fn insert(&mut self, mac: MacAddr, offer: Offer) {
        self.old.remove(&mac);
        self.young.insert(mac, offer);
        // Every offer in `young` ends before the rotation after next.
        self.rotate_at.get_or_insert(offer.until);
    }

    fn remove(&mut self, mac: &MacAddr) -> Option<Offer> {
        self.young.remove(mac).or_else(|| self.old.remove(mac))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// The offers dropped at `now`: the older generation, when it is due. Each
    /// of them was made before the last rotation, so ended at most one hold after
    /// it, which is when this one is due.
    fn rotate(&mut self, now: Instant) -> Option<HashMap<MacAddr, Offer>> {
        if self.rotate_at.is_none_or(|at| at > now) {
            return None;
        }
        let expired = std::mem::replace(&mut self.old, std::mem::take(&mut self.young));
        self.rotate_at = (!self.old.is_empty()).then_some(now + OFFER_HOLD);
        Some(expired)
    }
}

/// All address state of one server. Pure: times come in as arguments.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    /// The pool is `pool_len` addresses from `pool_start`, less `server`.
    pool_start: u32,
    pool_len: u32,
    /// The served network: only its host addresses are handed out.
    network: Option<Ipv4Network>,
    /// This server's own address, never handed out.
    server: Option<Ipv4Addr>,
    statics: HashMap<MacAddr, Ipv4Addr>,
    static_ips: HashSet<Ipv4Addr>,
    bindings: HashMap<MacAddr, Binding>,
    /// Address → MAC whose binding is `bound` on it.
    holders: HashMap<Ipv4Addr, MacAddr>,
    /// Address → MAC that released it and would like it back.
    remembered: HashMap<Ipv4Addr, MacAddr>,
    offers: Offers,
    offered: HashMap<Ipv4Addr, MacAddr>,
    quarantine: HashMap<Ipv4Addr, Instant>,
    /// What each pool address is to a new client, for a DISCOVER to find the
    /// lowest free one without walking the others. Updated by [`LeaseTable::refresh`]
    /// wherever the maps above change for an address.
    index: PoolIndex,
    /// The latest time seen: offers and quarantines are judged at it when a
    /// change comes without a time of its own (a confirmation, a release).
    clock: Option<Instant>,
    /// Bound pool addresses (reservations aside) by the Unix time their record
    /// was last written, least recently used first: what the pool gives back
    /// first when it is full.
    in_use: BTreeSet<(u64, MacAddr)>,
    /// Unix time of the first request after start-up: bindings read from the
    /// lease file count as used then, since bootd cannot know whether their
    /// machines renewed while it was not running.
    started: Option<u64>,
    /// MACs whose binding ended (released, or its address given to another), by
    /// the Unix time of their record, oldest first: beyond `idle_limit` the
    /// oldest is forgotten, so made-up MACs cannot grow the table.
    idle: BTreeSet<(u64, MacAddr)>,
    idle_limit: usize,
    /// Addresses weighed by `available_to`: what tests hold a DISCOVER's cost to.
    #[cfg(test)]
    examined: std::cell::Cell<u64>,
}

impl LeaseTable {
    /// A table for `pool_count` addresses from `pool_start` (none without a start),
    /// with `[static_dhcp]` reservations.
    pub fn new(pool_start: Option<Ipv4Addr>, pool_count: u32, statics: &[StaticLease]) -> Self {
        let start = pool_start.map_or(0, u32::from);
        // The pool must not wrap past 255.255.255.255.
        let count = if pool_start.is_some() {
            let room = u64::from(u32::MAX) - u64::from(start) + 1;
            u32::try_from(u64::from(pool_count).min(room)).unwrap_or(u32::MAX)
        } else {
            0
        };
        let mut table = LeaseTable {
            pool_start: start,
            pool_len: count,
            statics: statics.iter().map(|s| (s.mac, s.ip)).collect(),
            static_ips: statics.iter().map(|s| s.ip).collect(),
            index: PoolIndex::new(count),
            idle_limit: IDLE_REMEMBERED,
            ..LeaseTable::default()
        };
        for lease in statics {
            table.refresh(lease.ip);
        }
        table
    }

    /// A table for the part of `pool_count` addresses from `pool_start` that are
    /// host addresses of `network` (whose address is this server's): the network
    /// and broadcast addresses, addresses past the network and the server's own
    /// are never handed out, nor reserved by `[static_dhcp]`.
    pub fn for_network(
        network: Ipv4Network,
        pool_start: Ipv4Addr,
        pool_count: u32,
        statics: &[StaticLease],
    ) -> Self {
        let server = network.address();
        let usable = |ip: Ipv4Addr| network.is_host(ip) && ip != server;
        let statics: Vec<StaticLease> = statics.iter().filter(|s| usable(s.ip)).copied().collect();
        let (first, last) = network.host_range();
        let start = u32::from(pool_start).max(u32::from(first));
        let end = (u64::from(u32::from(pool_start)) + u64::from(pool_count))
            .saturating_sub(1)
            .min(u64::from(u32::from(last)));
        let len = if pool_count == 0 || end < u64::from(start) {
            0
        } else {
            u32::try_from(end - u64::from(start) + 1).unwrap_or(u32::MAX)
        };
        let mut table = LeaseTable {
            network: Some(network),
            server: Some(server),
            ..LeaseTable::new(Some(Ipv4Addr::from(start)), len, &statics)
        };
        if table.in_range(server) {
            let index = u32::from(server).wrapping_sub(table.pool_start);
            table.index.set(index, Slot::Taken);
        }
        table
    }

    /// Replaces the `[static_dhcp]` reservations (a reload). Bindings stand: a
    /// machine bound to an address now reserved for another keeps it until its
    /// binding ends, and a machine whose reservation moved gets its new address
    /// at its next request. Reservations of addresses that may not be handed out
    /// are left out, as at start.
    pub fn set_reservations(&mut self, statics: &[StaticLease]) {
        let old: Vec<Ipv4Addr> = self.static_ips.drain().collect();
        let usable: Vec<StaticLease> = statics
            .iter()
            .filter(|s| self.usable(s.ip))
            .copied()
            .collect();
        self.statics = usable.iter().map(|s| (s.mac, s.ip)).collect();
        self.static_ips = usable.iter().map(|s| s.ip).collect();
        for ip in old.into_iter().chain(usable.iter().map(|s| s.ip)) {
            self.refresh(ip);
        }
    }

    /// Remembers at most `limit` MACs whose binding ended (their preference for
    /// their old address, whether they PXE-booted, their UUID), and holds at
    /// most `limit` offers of pool addresses: beyond, the oldest yields (a
    /// client that accepts it anyway still gets its address, see
    /// [`LeaseTable::offered_to`]), so a flood costs the same memory whatever
    /// the pool's size.
    pub fn remembering(mut self, limit: usize) -> Self {
        self.idle_limit = limit;
        self
    }

    /// True when `ip` may be handed out at all: a host address of the served
    /// network other than the server's own.
    fn usable(&self, ip: Ipv4Addr) -> bool {
        self.network.is_none_or(|n| n.is_host(ip)) && Some(ip) != self.server
    }

    /// Applies lease-file records in order (later lines win). Records of addresses that may not be handed out (the network's own or
    /// broadcast address, or this server's) are skipped.
    pub fn load(&mut self, records: impl IntoIterator<Item = LeaseRecord>) {
        for record in records {
            if !self.usable(record.ip) {
                continue;
            }
            self.unbind(record.mac);
            match record.state {
                RecordState::Bound | RecordState::Released => {
                    let bound = record.state == RecordState::Bound;
                    // A later record may give the address to another MAC.
                    if bound {
                        self.unhold(record.ip);
                    }
                    self.insert_binding(
                        record.mac,
                        Binding {
                            ip: record.ip,
                            bound,
                            pxe: record.pxe,
                            uuid: record.uuid,
                            epoch: record.epoch,
                            persisted: true,
                        },
                    );
                }
                RecordState::Declined => {}
            }
        }
    }

    /// One record per known MAC: what compaction writes.
    pub fn records(&self) -> Vec<LeaseRecord> {
        let mut records: Vec<LeaseRecord> = self
            .bindings
            .iter()
            .map(|(mac, b)| LeaseRecord {
                mac: *mac,
                ip: b.ip,
                epoch: b.epoch,
                state: if b.bound {
                    RecordState::Bound
                } else {
                    RecordState::Released
                },
                pxe: b.pxe,
                uuid: b.uuid,
            })
            .collect();
        records.sort_by_key(|r| (u32::from(r.ip), r.mac));
        records
    }

    /// How many addresses the pool really has.
    pub fn pool_count(&self) -> u32 {
        self.pool_len - u32::from(self.server.is_some_and(|ip| self.in_range(ip)))
    }

    /// The first and last pool address, when the pool has any.
    pub fn pool_range(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let last = self.pool_len.checked_sub(1)?;
        let first = Ipv4Addr::from(self.pool_start);
        Some((first, Ipv4Addr::from(self.pool_start.wrapping_add(last))))
    }

    /// True when this server's own address lies within the pool's range (and is
    /// left out of it).
    pub fn pool_skips_server(&self) -> bool {
        self.server.is_some_and(|ip| self.in_range(ip))
    }

    /// The pool as start-up and `bootd --check` describe it: `4 addresses,
    /// 10.0.0.250 to 10.0.0.254 without this server's own`.
    pub fn describe_pool(&self) -> String {
        let count = self.pool_count();
        match self.pool_range() {
            Some((first, last)) if count > 0 => format!(
                "{count} address{}, {first} to {last}{}",
                if count == 1 { "" } else { "es" },
                if self.pool_skips_server() {
                    " without this server's own"
                } else {
                    ""
                }
            ),
            _ => match self.network {
                Some(network) => format!("no address: none is a host address of {network}"),
                None => "no address".to_string(),
            },
        }
    }

    fn in_range(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip).wrapping_sub(self.pool_start) < self.pool_len
    }

    /// Offers remembered (expired ones included until they are swept).
    #[cfg(test)]
    pub fn offer_count(&self) -> usize {
        self.offers.len()
    }

    /// MACs known to the table: bound, or remembered after their binding ended.
    #[cfg(test)]
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// Pool addresses a new client could be offered now.
    pub fn free_count(&self) -> u64 {
        self.index.free_count()
    }

    /// Number of MACs with a confirmed, unreleased binding.
    pub fn bound_count(&self) -> usize {
        self.holders.len()
    }

    pub fn in_pool(&self, ip: Ipv4Addr) -> bool {
        self.in_range(ip) && Some(ip) != self.server
    }

    /// The address `mac` holds right now: its reservation, its confirmed
    /// binding, or an unexpired offer.
    pub fn current_address(&self, mac: MacAddr, now: Instant) -> Option<Ipv4Addr> {
        if let Some(ip) = self.statics.get(&mac) {
            return Some(*ip);
        }
        if let Some(b) = self.bindings.get(&mac).filter(|b| b.bound) {
            return Some(b.ip);
        }
        self.offers
            .get(&mac)
            .filter(|o| o.until > now)
            .map(|o| o.ip)
    }

    /// The MAC `ip` is bound to, reserved for, or offered to (until its offer
    /// ends).
    pub fn owner_of(&self, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        self.holders
            .get(&ip)
            .copied()
            .or_else(|| {
                self.statics
                    .iter()
                    .find(|(_, reserved)| **reserved == ip)
                    .map(|(mac, _)| *mac)
            })
            .or_else(|| self.offered_to(ip, now))
    }

    /// True when the MAC has PXE-booted through bootd (kept in the lease file).
    pub fn has_pxe_booted(&self, mac: MacAddr) -> bool {
        self.bindings.get(&mac).is_some_and(|b| b.pxe)
    }

    /// The UUID last seen for `mac` in a PXE request, if recorded.
    pub fn uuid_of(&self, mac: MacAddr) -> Option<Uuid> {
        self.bindings.get(&mac).and_then(|b| b.uuid)
    }

    /// True when `ip` could be handed to `mac` now. `strict` also refuses
    /// addresses another MAC released and would like back.
    fn available_to(&self, ip: Ipv4Addr, mac: MacAddr, now: Instant, strict: bool) -> bool {
        #[cfg(test)]
        self.examined.set(self.examined.get() + 1);
        let ours = self.in_pool(ip) || self.statics.get(&mac) == Some(&ip);
        let reserved_for_other =
            self.static_ips.contains(&ip) && self.statics.get(&mac) != Some(&ip);
        let held_by_other = self.holders.get(&ip).is_some_and(|m| *m != mac);
        let offered_to_other = self.offered.get(&ip).is_some_and(|m| {
            *m != mac
                && self
                    .offers
                    .get(m)
                    .is_some_and(|o| o.until > now && o.ip == ip)
        });
        let quarantined = self.quarantine.get(&ip).is_some_and(|until| *until > now);
        let wanted_back = strict && self.remembered.get(&ip).is_some_and(|m| *m != mac);
        ours && !reserved_for_other
            && !held_by_other
            && !offered_to_other
            && !quarantined
            && !wanted_back
    }

    /// The number of pool address `ip` (none for the server's own).
    fn pool_index(&self, ip: Ipv4Addr) -> Option<u32> {
        self.in_pool(ip)
            .then(|| u32::from(ip).wrapping_sub(self.pool_start))
    }

    /// The pool address numbered `index`.
    fn pool_address(&self, index: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.pool_start.wrapping_add(index))
    }

    /// What pool address `ip` is now to a client that holds no address; offers
    /// and quarantines are judged at the latest time seen.
    fn slot(&self, ip: Ipv4Addr) -> Slot {
        let now = self.clock;
        if self.holders.contains_key(&ip) || self.static_ips.contains(&ip) {
            return Slot::Taken;
        }
        if let Some(until) = self.quarantine.get(&ip).copied()
            && now.is_none_or(|now| until > now)
        {
            return Slot::Quarantined(until);
        }
        let offer = self
            .offered
            .get(&ip)
            .and_then(|mac| self.offers.get(mac))
            .filter(|o| o.ip == ip && now.is_none_or(|now| o.until > now));
        if let Some(offer) = offer {
            return Slot::Offered(offer.until);
        }
        if self.remembered.contains_key(&ip) {
            Slot::Reusable
        } else {
            Slot::Free
        }
    }

    /// Tells the pool index what `ip` is now: called wherever a map it reads
    /// changes for that address.
    fn refresh(&mut self, ip: Ipv4Addr) {
        if let Some(index) = self.pool_index(ip) {
            let slot = self.slot(ip);
            self.index.set(index, slot);
        }
    }

    /// Moves the clock to `now` and frees the addresses whose offer or
    /// quarantine ended by then.
    fn advance(&mut self, now: Instant) {
        if self.clock.is_none_or(|seen| seen < now) {
            self.clock = Some(now);
        }
        let now = self.clock.unwrap_or(now);
        while let Some(index) = self.index.due(now) {
            let ip = self.pool_address(index);
            if self.quarantine.get(&ip).is_some_and(|until| *until <= now) {
                self.quarantine.remove(&ip);
            }
            self.refresh(ip);
        }
    }

    /// Takes `ip` out of `holders`.
    fn remove_holder(&mut self, ip: Ipv4Addr) -> Option<MacAddr> {
        let holder = self.holders.remove(&ip);
        self.refresh(ip);
        holder
    }

    /// Reserves an address for `mac` (DISCOVER): its reservation or binding, else
    /// the address it released if still free, else its requested address (option
    /// 50) if free, else the first never-used pool address, else the first free
    /// address another MAC released.
    pub fn offer(
        &mut self,
        mac: MacAddr,
        requested: Option<Ipv4Addr>,
        now: Instant,
    ) -> Result<Ipv4Addr, LeaseError> {
        self.advance(now);
        if let Some(ip) = self.current_address(mac, now) {
            if self.offers.get(&mac).is_some_and(|o| o.ip == ip) {
                self.hold(mac, ip, now);
            }
            return Ok(ip);
        }
        // `mac` holds no address here, so the index's free addresses are free for
        // it, and the one it released and wants back is its binding's.
        let ip = self
            .bindings
            .get(&mac)
            .map(|b| b.ip)
            .filter(|ip| self.available_to(*ip, mac, now, true))
            .or_else(|| requested.filter(|ip| self.available_to(*ip, mac, now, true)))
            .or_else(|| self.index.first_free().map(|i| self.pool_address(i)))
            .or_else(|| self.index.first_reusable().map(|i| self.pool_address(i)))
            .ok_or(LeaseError::PoolExhausted {
                pool_count: self.pool_count(),
            })?;
        self.hold(mac, ip, now);
        Ok(ip)
    }

    /// When the pool is exhausted, the oldest offer still holding (an offer is
    /// no commitment) moves to `mac`: the address, the MAC it was offered to,
    /// and since when. `None` when no pool address is merely offered.
    pub fn take_oldest_offer(
        &mut self,
        mac: MacAddr,
        now: Instant,
    ) -> Option<(Ipv4Addr, MacAddr, Instant)> {
        self.advance(now);
        let ip = self.pool_address(self.index.oldest_offer()?);
        let from = *self.offered.get(&ip)?;
        let since = self.offers.get(&from)?.until.checked_sub(OFFER_HOLD)?;
        self.cancel_offer(from);
        self.hold(mac, ip, now);
        Some((ip, from, since))
    }

    /// The MAC another client's unexpired offer of `ip` is for.
    pub fn offered_to(&self, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        let mac = *self.offered.get(&ip)?;
        self.offers
            .get(&mac)
            .is_some_and(|o| o.ip == ip && o.until > now)
            .then_some(mac)
    }

    /// Notes the Unix time of a request; the first one after start-up is when
    /// bindings read from the lease file count as last used.
    pub fn note_epoch(&mut self, epoch: u64) {
        self.started.get_or_insert(epoch);
    }

    /// When the pool is full: the binding unused the longest, if unused for
    /// longer than `lease_time` (and the slack of an unrecorded renewal), ends
    /// and its address is offered to `mac`. Returns the address, the MAC that
    /// held it and when its record was last written. Reservations are never
    /// taken.
    pub fn reclaim_expired(
        &mut self,
        mac: MacAddr,
        now: Instant,
        epoch: u64,
        lease_time: u32,
    ) -> Option<(Ipv4Addr, MacAddr, u64)> {
        self.advance(now);
        let started = *self.started.get_or_insert(epoch);
        let (seen, from) = *self.in_use.first()?;
        let expires = seen
            .max(started)
            .saturating_add(u64::from(lease_time))
            .saturating_add(RENEWAL_RECORDED_AFTER);
        if epoch <= expires {
            return None;
        }
        let ip = self.bindings.get(&from)?.ip;
        self.unhold(ip);
        self.hold(mac, ip, now);
        Some((ip, from, seen))
    }

    /// When [`LeaseTable::sweep_offers`] next has offers to forget.
    pub fn offers_sweep_at(&self) -> Option<Instant> {
        self.offers.rotate_at
    }

    /// Forgets offers that expired by `now` and were never taken up (those that
    /// are due: an expired offer may be kept up to one more hold).
    pub fn sweep_offers(&mut self, now: Instant) {
        self.advance(now);
        for (mac, offer) in self.offers.rotate(now).unwrap_or_default() {
            if self.offered.get(&offer.ip) == Some(&mac) {
                self.offered.remove(&offer.ip);
                self.refresh(offer.ip);
            }
        }
    }

    fn hold(&mut self, mac: MacAddr, ip: Ipv4Addr, now: Instant) {
        self.cancel_offer(mac);
        // An expired offer of the same address to another MAC is over: forget it,
        // so each address is offered to one MAC at most and offers never
        // outnumber the addresses.
        if let Some(previous) = self.offered.insert(ip, mac)
            && previous != mac
            && self.offers.get(&previous).is_some_and(|o| o.ip == ip)
        {
            self.offers.remove(&previous);
        }
        self.offers.insert(
            mac,
            Offer {
                ip,
                until: now + OFFER_HOLD,
            },
        );
        self.refresh(ip);
        while self.index.offer_count() > self.idle_limit {
            let Some(oldest) = self.index.oldest_offer() else {
                break;
            };
            match self.offered.get(&self.pool_address(oldest)).copied() {
                Some(other) if other != mac => self.cancel_offer(other),
                _ => break,
            }
        }
    }

    /// Forgets a tentative offer (the client chose another server).
    pub fn cancel_offer(&mut self, mac: MacAddr) {
        if let Some(offer) = self.offers.remove(&mac)
            && self.offered.get(&offer.ip) == Some(&mac)
        {
            self.offered.remove(&offer.ip);
            self.refresh(offer.ip);
        }
    }

    /// Decides a DHCPREQUEST (`requested` = option 50 or ciaddr).
    pub fn request(
        &mut self,
        mac: MacAddr,
        requested: Option<Ipv4Addr>,
        now: Instant,
    ) -> RequestVerdict {
        match (self.current_address(mac, now), requested) {
            (Some(held), Some(requested)) if held != requested => {
                RequestVerdict::Refuse(RefuseReason::HoldsAnother { requested, held })
            }
            (Some(held), _) => RequestVerdict::Grant(held),
            (None, Some(requested)) => {
                // A client we have no current record of (its offer expired, or it
                // reboots with an address it remembers): grant it when free.
                if self.available_to(requested, mac, now, true) {
                    RequestVerdict::Grant(requested)
                } else {
                    RequestVerdict::Refuse(RefuseReason::Unavailable { requested })
                }
            }
            (None, None) => RequestVerdict::Refuse(RefuseReason::NoAddress),
        }
    }

    /// Confirms `mac` on `ip` (ACK, or a BOOTP reply). Returns the record to
    /// append to the lease file when the file does not already say this.
    pub fn confirm(
        &mut self,
        mac: MacAddr,
        ip: Ipv4Addr,
        epoch: u64,
        pxe: bool,
        uuid: Option<Uuid>,
    ) -> Option<LeaseRecord> {
        self.cancel_offer(mac);
        let previous = self.bindings.get(&mac).cloned();
        let pxe = pxe || previous.as_ref().is_some_and(|b| b.pxe);
        let uuid = uuid.or(previous.as_ref().and_then(|b| b.uuid));
        let unchanged = previous.as_ref().is_some_and(|b| {
            b.bound
                && b.persisted
                && b.ip == ip
                && b.pxe == pxe
                && b.uuid == uuid
                && epoch.saturating_sub(b.epoch) < RENEWAL_RECORDED_AFTER
        });
        if unchanged {
            return None;
        }
        self.unbind(mac);
        self.unhold(ip);
        self.insert_binding(
            mac,
            Binding {
                ip,
                bound: true,
                pxe,
                uuid,
                epoch,
                persisted: true,
            },
        );
        Some(LeaseRecord {
            mac,
            ip,
            epoch,
            state: RecordState::Bound,
            pxe,
            uuid,
        })
    }

    /// The shell could not write the record of `mac`: the next ACK retries.
    pub fn mark_unpersisted(&mut self, mac: MacAddr) {
        if let Some(b) = self.bindings.get_mut(&mac) {
            b.persisted = false;
        }
    }

    /// DHCPRELEASE: frees `ip` if `mac` holds it; the MAC stays remembered.
    pub fn release(&mut self, mac: MacAddr, ip: Ipv4Addr, epoch: u64) -> Option<LeaseRecord> {
        self.cancel_offer(mac);
        let binding = self.bindings.get(&mac).filter(|b| b.bound && b.ip == ip)?;
        let record = LeaseRecord {
            mac,
            ip,
            epoch,
            state: RecordState::Released,
            pxe: binding.pxe,
            uuid: binding.uuid,
        };
        // The release is the binding's last use; it stays remembered among the
        // ended bindings from then.
        if let Some(binding) = self.bindings.get_mut(&mac) {
            self.in_use.remove(&(binding.epoch, mac));
            binding.epoch = epoch;
        }
        self.remembered.insert(ip, mac);
        self.unhold(ip);
        Some(record)
    }

    /// DHCPDECLINE: the client found `ip` in use. If `mac` held or was offered it,
    /// the address is quarantined for [`DECLINE_QUARANTINE`] and the binding
    /// dropped, so the next DISCOVER gets another address. Returns the record to
    /// persist, or `None` when the decline did not concern this client's address.
    pub fn decline(
        &mut self,
        mac: MacAddr,
        ip: Ipv4Addr,
        now: Instant,
        epoch: u64,
    ) -> Option<LeaseRecord> {
        self.advance(now);
        if self.current_address(mac, now) != Some(ip) {
            return None;
        }
        self.cancel_offer(mac);
        self.quarantine.insert(ip, now + DECLINE_QUARANTINE);
        self.refresh(ip);
        let pxe = self.has_pxe_booted(mac);
        let uuid = self.uuid_of(mac);
        self.unbind(mac);
        Some(LeaseRecord {
            mac,
            ip,
            epoch,
            state: RecordState::Declined,
            pxe,
            uuid,
        })
    }

    /// True when `ip` is quarantined at `now`.
    #[cfg(test)]
    pub fn is_quarantined(&self, ip: Ipv4Addr, now: Instant) -> bool {
        self.quarantine.get(&ip).is_some_and(|until| *until > now)
    }

    fn unbind(&mut self, mac: MacAddr) {
        if let Some(old) = self.bindings.remove(&mac) {
            self.in_use.remove(&(old.epoch, mac));
            self.idle.remove(&(old.epoch, mac));
            if self.holders.get(&old.ip) == Some(&mac) {
                self.remove_holder(old.ip);
            }
            if self.remembered.get(&old.ip) == Some(&mac) {
                self.remembered.remove(&old.ip);
                self.refresh(old.ip);
            }
        }
    }

    /// Ends the binding bound on `ip`, if any; its MAC stays known (PXE, UUID).
    fn unhold(&mut self, ip: Ipv4Addr) -> Option<MacAddr> {
        let holder = self.remove_holder(ip)?;
        if let Some(b) = self.bindings.get_mut(&holder) {
            self.in_use.remove(&(b.epoch, holder));
            b.bound = false;
            self.idle.insert((b.epoch, holder));
            self.forget_oldest_idle();
        }
        Some(holder)
    }

    /// Keeps the MACs whose binding ended within `idle_limit`, forgetting the
    /// oldest first.
    fn forget_oldest_idle(&mut self) {
        while self.idle.len() > self.idle_limit {
            match self.idle.pop_first() {
                Some((_, mac)) => self.unbind(mac),
                None => return,
            }
        }
    }

    fn insert_binding(&mut self, mac: MacAddr, binding: Binding) {
        let ip = binding.ip;
        if binding.bound {
            self.holders.insert(ip, mac);
            if self.in_pool(ip) && !self.static_ips.contains(&ip) {
                self.in_use.insert((binding.epoch, mac));
            }
        } else {
            self.remembered.insert(ip, mac);
            self.idle.insert((binding.epoch, mac));
        }
        self.bindings.insert(mac, binding);
        self.refresh(ip);
        self.forget_oldest_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, last])
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 25, last)
    }

    fn table(count: u32) -> LeaseTable {
        LeaseTable::new(Some(ip(100)), count, &[])
    }

    #[test]
    fn first_clients_get_pool_in_order_and_keep_it() {
        let now = Instant::now();
        let mut t = table(10);
        assert_eq!(t.offer(mac(1), None, now), Ok(ip(100)));
        assert_eq!(t.offer(mac(2), None, now), Ok(ip(101)));
        assert_eq!(t.offer(mac(1), None, now), Ok(ip(100)));
    }

    #[test]
    fn static_addresses_are_never_given_to_others() {
        let now = Instant::now();
        let statics = [StaticLease {
            mac: mac(9),
            ip: ip(100),
            line: 3,
        }];
        let mut t = LeaseTable::new(Some(ip(100)), 3, &statics);
        assert_eq!(t.offer(mac(1), None, now), Ok(ip(101)));
        assert_eq!(t.offer(mac(9), None, now), Ok(ip(100)));
        // Even when asked for explicitly.
        assert_eq!(
            t.request(mac(2), Some(ip(100)), now),
            RequestVerdict::Refuse(RefuseReason::Unavailable { requested: ip(100) })
        );
        // A static address outside the pool is still the reserved MAC's.
        let statics = [StaticLease {
            mac: mac(9),
            ip: ip(5),
            line: 3,
        }];
        let mut t = LeaseTable::new(Some(ip(100)), 3, &statics);
        assert_eq!(
            t.request(mac(9), Some(ip(5)), now),
            RequestVerdict::Grant(ip(5))
        );
    }

    #[test]
    fn exhaustion_is_typed() {
        let now = Instant::now();
        let mut t = table(2);
        t.offer(mac(1), None, now).unwrap();
        t.offer(mac(2), None, now).unwrap();
        assert_eq!(
            t.offer(mac(3), None, now),
            Err(LeaseError::PoolExhausted { pool_count: 2 })
        );
        // pool_count 0: static-only server.
        assert!(table(0).offer(mac(1), None, now).is_err());
    }

    #[test]
    fn pool_never_wraps_past_the_last_address() {
        let now = Instant::now();
        let mut t = LeaseTable::new(Some(Ipv4Addr::new(255, 255, 255, 254)), 10, &[]);
        assert_eq!(t.pool_count(), 2);
        assert!(t.offer(mac(1), None, now).is_ok());
        assert!(t.offer(mac(2), None, now).is_ok());
        assert!(t.offer(mac(3), None, now).is_err());
        let t = LeaseTable::new(Some(Ipv4Addr::UNSPECIFIED), u32::MAX, &[]);
        assert_eq!(t.pool_count(), u32::MAX);
    }

    #[test]
    fn a_network_table_hands_out_its_host_addresses_only() {
        let now = Instant::now();
        let network = Ipv4Network::new(ip(1), 24).unwrap();
        let broadcast = [StaticLease {
            mac: mac(9),
            ip: ip(255),
            line: 3,
        }];
        let mut t = LeaseTable::for_network(network, ip(253), 10, &broadcast);
        assert_eq!(t.pool_count(), 2);
        assert_eq!(t.pool_range(), Some((ip(253), ip(254))));
        assert_eq!(
            t.offer(mac(9), None, now),
            Ok(ip(253)),
            "a reservation of the broadcast address is ignored"
        );
        let bound = |m: u8, a: u8| LeaseRecord {
            mac: mac(m),
            ip: ip(a),
            epoch: 1,
            state: RecordState::Bound,
            pxe: false,
            uuid: None,
        };
        t.load([bound(5, 255), bound(6, 0), bound(7, 1), bound(8, 254)]);
        for m in [5, 6, 7] {
            assert_eq!(t.current_address(mac(m), now), None, "mac {m}");
        }
        assert_eq!(t.current_address(mac(8), now), Some(ip(254)));
        // The server's own address is all the range holds.
        let t = LeaseTable::for_network(network, ip(0), 2, &[]);
        assert_eq!((t.pool_count(), t.pool_skips_server()), (0, true));
        assert_eq!(
            LeaseTable::for_network(network, ip(100), 0, &[]).pool_range(),
            None
        );
    }

    /// A made-up MAC for each number, as a flood of DISCOVERs brings them.
    fn flood_mac(n: u32) -> MacAddr {
        let [a, b, c, d] = n.to_be_bytes();
        MacAddr([0x02, a, b, c, d, 0x01])
    }

    /// Finding a free address must not walk the addresses already offered: under
    /// a flood of new MACs every DISCOVER would cost more than the one before.
    #[test]
    fn a_new_client_costs_the_same_however_many_offers_are_out() {
        let now = Instant::now();
        let mut t = LeaseTable::new(Some(Ipv4Addr::new(10, 1, 0, 0)), 65_000, &[]);
        let mut most = 0;
        for n in 0..5_000 {
            t.examined.set(0);
            let ip = t.offer(flood_mac(n), None, now).unwrap();
            most = most.max(t.examined.get());
            // Bindings and releases among the offers change nothing.
            if n % 3 == 0 {
                t.confirm(flood_mac(n), ip, 1, false, None);
            }
            if n % 9 == 0 {
                t.release(flood_mac(n), ip, 2);
            }
        }
        assert!(most <= 4, "one DISCOVER weighed {most} addresses");
    }

    /// MACs whose binding ended are remembered up to the limit, the oldest
    /// forgotten first; bound ones never are.
    #[test]
    fn ended_bindings_are_remembered_up_to_the_limit() {
        let now = Instant::now();
        let mut t = table(10).remembering(100);
        let kept = t.offer(mac(1), None, now).unwrap();
        t.confirm(mac(1), kept, 1, true, None);
        for n in 0..5_000u32 {
            let ip = t.offer(flood_mac(n), None, now).unwrap();
            t.confirm(flood_mac(n), ip, 10 + u64::from(n), false, None);
            t.release(flood_mac(n), ip, 10 + u64::from(n));
            assert!(t.binding_count() <= 101, "{}", t.binding_count());
        }
        assert_eq!(t.current_address(mac(1), now), Some(kept));
        assert!(t.has_pxe_booted(mac(1)));
        // The most recent releases are remembered, and get their address back.
        let last = flood_mac(4_999);
        assert_eq!(
            t.offer(last, None, now),
            t.bindings
                .get(&last)
                .map(|b| b.ip)
                .ok_or(LeaseError::PoolExhausted { pool_count: 10 })
        );
        assert!(!t.bindings.contains_key(&flood_mac(0)));
    }

    /// However large the pool, offers beyond the limit make the oldest yield.
    #[test]
    fn offers_beyond_the_limit_yield_the_oldest() {
        let start = Instant::now();
        let mut t = LeaseTable::new(Some(Ipv4Addr::new(10, 1, 0, 0)), 65_000, &[]).remembering(100);
        for n in 0..1_000u32 {
            let now = start + Duration::from_millis(u64::from(n));
            t.offer(flood_mac(n), None, now).unwrap();
            assert!(t.offer_count() <= 100, "{}", t.offer_count());
        }
        let now = start + Duration::from_secs(1);
        assert_eq!(t.current_address(flood_mac(0), now), None);
        // The flood cycles through 101 addresses; the rest of the pool stays free.
        let last = t.current_address(flood_mac(999), now).unwrap();
        assert!(last <= Ipv4Addr::new(10, 1, 0, 100), "{last}");
    }

    #[test]
    fn unconfirmed_offers_expire() {
        let now = Instant::now();
        let mut t = table(1);
        t.offer(mac(1), None, now).unwrap();
        assert!(
            t.offer(mac(2), None, now + Duration::from_secs(30))
                .is_err()
        );
        assert_eq!(t.offer(mac(2), None, now + OFFER_HOLD), Ok(ip(100)));
    }

    #[test]
    fn expired_offers_are_swept_and_live_ones_kept() {
        let now = Instant::now();
        let mut t = table(10);
        assert_eq!(t.offers_sweep_at(), None);
        t.offer(mac(1), None, now).unwrap();
        assert_eq!(t.offers_sweep_at(), Some(now + OFFER_HOLD));
        t.offer(mac(2), None, now + Duration::from_secs(30))
            .unwrap();
        // The first sweep keeps both: mac(2)'s offer still holds.
        t.sweep_offers(now + OFFER_HOLD);
        assert_eq!(t.offer_count(), 2);
        assert_eq!(t.current_address(mac(2), now + OFFER_HOLD), Some(ip(101)));
        let next = t.offers_sweep_at().unwrap();
        assert!(next >= now + Duration::from_secs(30) + OFFER_HOLD);
        t.sweep_offers(next);
        assert_eq!((t.offer_count(), t.offers_sweep_at()), (0, None));
        assert_eq!(t.offer(mac(3), None, next), Ok(ip(100)));
        // A confirmed offer is gone at once.
        t.confirm(mac(3), ip(100), 1, false, None);
        assert_eq!(t.offer_count(), 0);
    }

    #[test]
    fn confirmed_bindings_never_expire() {
        let now = Instant::now();
        let mut t = table(1);
        let a = t.offer(mac(1), None, now).unwrap();
        assert!(t.confirm(mac(1), a, 1000, false, None).is_some());
        let much_later = now + Duration::from_secs(10 * 365 * 86400);
        assert!(t.offer(mac(2), None, much_later).is_err());
        assert_eq!(t.offer(mac(1), None, much_later), Ok(a));
    }

    /// A renewal is written once the recorded time is a minute old, so the file
    /// says when each machine was last seen, give or take that minute.
    #[test]
    fn renewals_are_recorded_once_the_last_record_is_a_minute_old() {
        let now = Instant::now();
        let mut t = table(4);
        let a = t.offer(mac(1), None, now).unwrap();
        assert!(t.confirm(mac(1), a, 1000, false, None).is_some());
        assert!(t.confirm(mac(1), a, 1059, false, None).is_none());
        let record = t.confirm(mac(1), a, 1060, false, None).unwrap();
        assert_eq!((record.epoch, record.state), (1060, RecordState::Bound));
    }

    #[test]
    fn confirm_reports_only_changes() {
        let now = Instant::now();
        let mut t = table(4);
        let a = t.offer(mac(1), None, now).unwrap();
        assert!(t.confirm(mac(1), a, 1, false, None).is_some());
        assert!(
            t.confirm(mac(1), a, 2, false, None).is_none(),
            "renewal: nothing new"
        );
        assert!(
            t.confirm(mac(1), a, 3, true, Some(Uuid(7))).is_some(),
            "now PXE"
        );
        t.mark_unpersisted(mac(1));
        assert!(
            t.confirm(mac(1), a, 4, true, Some(Uuid(7))).is_some(),
            "write failed: retry"
        );
    }

    #[test]
    fn request_rules() {
        let now = Instant::now();
        let mut t = table(4);
        let a = t.offer(mac(1), None, now).unwrap();
        assert_eq!(t.request(mac(1), Some(a), now), RequestVerdict::Grant(a));
        assert_eq!(
            t.request(mac(1), Some(ip(103)), now),
            RequestVerdict::Refuse(RefuseReason::HoldsAnother {
                requested: ip(103),
                held: a
            })
        );
        // Unknown client asking for a free pool address: granted.
        assert_eq!(
            t.request(mac(2), Some(ip(102)), now),
            RequestVerdict::Grant(ip(102))
        );
        // Unknown client asking for someone's address, or one outside the pool.
        assert!(matches!(
            t.request(mac(3), Some(a), now),
            RequestVerdict::Refuse(_)
        ));
        assert!(matches!(
            t.request(mac(3), Some(Ipv4Addr::new(10, 0, 0, 1)), now),
            RequestVerdict::Refuse(_)
        ));
        // No address named at all by a client holding none: no fresh binding.
        assert_eq!(
            t.request(mac(4), None, now),
            RequestVerdict::Refuse(RefuseReason::NoAddress)
        );
    }

    #[test]
    fn release_frees_but_the_mac_gets_its_address_back() {
        let now = Instant::now();
        let mut t = table(3);
        let a = t.offer(mac(1), None, now).unwrap();
        t.confirm(mac(1), a, 1, false, None);
        let record = t.release(mac(1), a, 2).unwrap();
        assert_eq!(record.state, RecordState::Released);
        // A new client gets a never-used address first...
        assert_eq!(t.offer(mac(2), None, now), Ok(ip(101)));
        // ...so the releasing MAC finds its address again.
        assert_eq!(t.offer(mac(1), None, now), Ok(a));
        // Releasing an address it does not hold does nothing.
        assert_eq!(t.release(mac(1), ip(102), 3), None);
    }

    #[test]
    fn released_addresses_are_reused_when_nothing_else_is_left() {
        let now = Instant::now();
        let mut t = table(1);
        let a = t.offer(mac(1), None, now).unwrap();
        t.confirm(mac(1), a, 1, false, None);
        t.release(mac(1), a, 2);
        assert_eq!(t.offer(mac(2), None, now), Ok(a));
        t.confirm(mac(2), a, 3, false, None);
        // mac(1)'s preference is taken: the pool is exhausted for it.
        assert!(t.offer(mac(1), None, now).is_err());
    }

    #[test]
    fn decline_quarantines_and_moves_the_client() {
        let now = Instant::now();
        let mut t = table(3);
        let a = t.offer(mac(1), None, now).unwrap();
        t.confirm(mac(1), a, 1, false, None);
        assert_eq!(t.decline(mac(2), a, now, 2), None, "not mac(2)'s address");
        let record = t.decline(mac(1), a, now, 2).unwrap();
        assert_eq!(record.state, RecordState::Declined);
        assert!(t.is_quarantined(a, now));
        let b = t.offer(mac(1), None, now).unwrap();
        assert_ne!(a, b);
        // After the quarantine the address is usable again.
        let later = now + DECLINE_QUARANTINE;
        assert!(!t.is_quarantined(a, later));
        assert_eq!(t.offer(mac(3), None, later), Ok(a));
    }

    #[test]
    fn lease_file_round_trip() {
        let records = vec![
            LeaseRecord {
                mac: mac(1),
                ip: ip(100),
                epoch: 1718000000,
                state: RecordState::Bound,
                pxe: true,
                uuid: Some(Uuid(0x0102030405060708090a0b0c0d0e0f10)),
            },
            LeaseRecord {
                mac: mac(2),
                ip: ip(101),
                epoch: 1718000042,
                state: RecordState::Released,
                pxe: false,
                uuid: None,
            },
        ];
        let text: String = records.iter().map(format_binding).collect();
        assert_eq!(
            text,
            "52-54-00-00-00-01 192.168.25.100 1718000000 bound pxe uuid=01020304-0506-0708-090a-0b0c0d0e0f10\n\
             52-54-00-00-00-02 192.168.25.101 1718000042 released\n"
        );
        let content = parse_lease_file(text.as_bytes());
        assert_eq!(content.records, records);
        assert!(content.rejected.is_empty() && content.torn.is_none());
        assert_eq!(content.whole_len, text.len());
    }

    #[test]
    fn corrupt_and_truncated_lines_are_reported_and_skipped() {
        let text = "# bootd leases\n\
                    52-54-00-00-00-01 192.168.25.100 1 bound\n\
                    52-54-00-00-00-02 192.168.25.999 2 bound\n\
                    zz-54-00-00-00-03 192.168.25.102 3 bound\n\
                    52-54-00-00-00-04 192.168.25.103 x bound\n\
                    52-54-00-00-00-05 192.168.25.104 5 lost\n\
                    52-54-00-00-00-06 192.168.25.105 6 bound color=red\n\
                    \n\
                    52-54-00-00-00-07 192.168.25.106 7 bound\n\
                    52-54-00-00-00-08 192.16\n\
                    52-54-00-00-00-09 192.168.25.10";
        let content = parse_lease_file(text.as_bytes());
        let records = &content.records;
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].mac, mac(7));
        let errors = &content.rejected;
        let lines: Vec<usize> = errors.iter().map(|line| line.number).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 10]);
        assert_eq!(errors[5].error, LeaseLineError::MissingFields { found: 2 });
        assert_eq!(errors[5].bytes, b"52-54-00-00-00-08 192.16");
        assert_eq!(
            errors[0].error.to_string(),
            "`192.168.25.999` is not an IPv4 address"
        );
        // The last line lacks its newline: cut short, so never used, although it
        // reads as a record (of the wrong address: 192.168.25.10 for .107).
        let torn = content.torn.as_ref().unwrap();
        assert_eq!(
            (torn.number, &torn.error, torn.bytes),
            (
                11,
                &LeaseLineError::CutShort,
                &b"52-54-00-00-00-09 192.168.25.10"[..]
            )
        );
        assert_eq!(&text.as_bytes()[content.whole_len..], torn.bytes);
    }

    #[test]
    fn bytes_that_are_not_text_are_reported_and_skipped() {
        let content =
            parse_lease_file(b"\xff\xfe bound\n52-54-00-00-00-01 192.168.25.100 1 bound\n");
        assert_eq!(content.records.len(), 1);
        assert_eq!(content.rejected.len(), 1);
        assert_eq!(content.rejected[0].error, LeaseLineError::NotText);
        assert_eq!(content.rejected[0].bytes, b"\xff\xfe bound");
        for text in [&b""[..], b"\n\n# only a comment\n"] {
            let content = parse_lease_file(text);
            assert!(content.records.is_empty() && content.rejected.is_empty());
            assert_eq!((content.torn, content.whole_len), (None, text.len()));
        }
    }

    #[test]
    fn load_replays_the_journal() {
        let now = Instant::now();
        let text = "52-54-00-00-00-01 192.168.25.100 1 bound pxe\n\
                    52-54-00-00-00-02 192.168.25.101 2 bound\n\
                    52-54-00-00-00-02 192.168.25.101 3 released\n\
                    52-54-00-00-00-03 192.168.25.102 4 bound\n\
                    52-54-00-00-00-03 192.168.25.102 5 declined\n";
        let records = parse_lease_file(text.as_bytes()).records;
        let mut t = table(5);
        t.load(records);
        assert_eq!(t.current_address(mac(1), now), Some(ip(100)));
        assert!(t.has_pxe_booted(mac(1)));
        assert_eq!(t.current_address(mac(2), now), None);
        assert_eq!(
            t.offer(mac(2), None, now),
            Ok(ip(101)),
            "sticky after release"
        );
        assert_eq!(t.current_address(mac(3), now), None);
        assert_eq!(t.bound_count(), 1);
        // A new MAC does not get a bound address.
        assert_eq!(t.offer(mac(9), None, now), Ok(ip(102)));
    }

    #[test]
    fn compaction_keeps_one_line_per_mac() {
        let mut t = table(5);
        let now = Instant::now();
        let a = t.offer(mac(1), None, now).unwrap();
        t.confirm(mac(1), a, 1, false, None);
        t.confirm(mac(1), a, 2, true, None);
        let records = t.records();
        assert_eq!(records.len(), 1);
        assert!(records[0].pxe);
    }

    #[test]
    fn addresses_freed_below_the_scan_start_are_found_again() {
        let now = Instant::now();
        let mut t = table(10);
        for m in 1..=4 {
            let ip = t.offer(mac(m), None, now).unwrap();
            t.confirm(mac(m), ip, 1, false, None);
        }
        // mac(2) moves to another address: 101 is free again, before the others.
        t.confirm(mac(2), ip(108), 2, false, None);
        assert_eq!(t.offer(mac(5), None, now), Ok(ip(101)));
        t.confirm(mac(5), ip(101), 3, false, None);
        assert_eq!(t.offer(mac(6), None, now), Ok(ip(104)));
        // A later lease-file record handing 100 to mac(6) frees 104.
        t.load([LeaseRecord {
            mac: mac(6),
            ip: ip(100),
            epoch: 4,
            state: RecordState::Bound,
            pxe: false,
            uuid: None,
        }]);
        t.cancel_offer(mac(6));
        assert_eq!(t.offer(mac(7), None, now), Ok(ip(104)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Offer(u8, Option<u8>),
        Request(u8, Option<u8>),
        Confirm(u8, u8),
        Release(u8),
        Decline(u8),
        Cancel(u8),
        Wait(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let m = 1u8..24;
        let a = 98u8..118;
        prop_oneof![
            4 => (m.clone(), proptest::option::of(a.clone())).prop_map(|(m, a)| Op::Offer(m, a)),
            2 => (m.clone(), proptest::option::of(a.clone())).prop_map(|(m, a)| Op::Request(m, a)),
            3 => (m.clone(), a).prop_map(|(m, a)| Op::Confirm(m, a)),
            1 => m.clone().prop_map(Op::Release),
            1 => m.clone().prop_map(Op::Decline),
            1 => m.prop_map(Op::Cancel),
            1 => (0u64..700).prop_map(Op::Wait),
        ]
    }

    /// The address `offer` must choose, found by a walk of the whole pool.
    fn offer_by_whole_scan(
        t: &LeaseTable,
        mac: MacAddr,
        requested: Option<Ipv4Addr>,
        now: Instant,
    ) -> Result<Ipv4Addr, LeaseError> {
        if let Some(ip) = t.current_address(mac, now) {
            return Ok(ip);
        }
        t.bindings
            .get(&mac)
            .map(|b| b.ip)
            .filter(|ip| t.available_to(*ip, mac, now, true))
            .or_else(|| requested.filter(|ip| t.available_to(*ip, mac, now, true)))
            .or_else(|| {
                (0..t.pool_len)
                    .map(|i| t.pool_address(i))
                    .find(|ip| t.available_to(*ip, mac, now, true))
            })
            .or_else(|| {
                (0..t.pool_len)
                    .map(|i| t.pool_address(i))
                    .find(|ip| t.available_to(*ip, mac, now, false))
            })
            .ok_or(LeaseError::PoolExhausted {
                pool_count: t.pool_count(),
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// The pool index finds the same address as a walk of the whole pool
        /// after any history, and places every address where the maps say it is.
        #[test]
        fn the_pool_index_never_changes_the_address_chosen(
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let statics = [StaticLease { mac: mac(30), ip: ip(103), line: 1 }];
            let mut t = LeaseTable::new(Some(ip(100)), 16, &statics);
            let mut now = Instant::now();
            for op in ops {
                match op {
                    Op::Offer(m, a) => {
                        let want = offer_by_whole_scan(&t, mac(m), a.map(ip), now);
                        proptest::prop_assert_eq!(t.offer(mac(m), a.map(ip), now), want);
                    }
                    Op::Request(m, a) => {
                        t.request(mac(m), a.map(ip), now);
                    }
                    Op::Confirm(m, a) => {
                        t.confirm(mac(m), ip(a), 1, false, None);
                    }
                    Op::Release(m) => {
                        if let Some(a) = t.current_address(mac(m), now) {
                            t.release(mac(m), a, 1);
                        }
                    }
                    Op::Decline(m) => {
                        if let Some(a) = t.current_address(mac(m), now) {
                            t.decline(mac(m), a, now, 1);
                        }
                    }
                    Op::Cancel(m) => t.cancel_offer(mac(m)),
                    Op::Wait(s) => now += Duration::from_secs(s),
                }
                let mut settled = t.clone();
                settled.advance(now);
                for i in 0..t.pool_len {
                    let a = settled.pool_address(i);
                    proptest::prop_assert_eq!(settled.index.slot_of(i), settled.slot(a), "{}", a);
                }
            }
        }
    }
}
