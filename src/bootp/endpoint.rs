//! The BOOTP/DHCP endpoint, sans-IO: every served network with its leases, the
//! access policy and its HTTP decisions, the requests parked while an HTTP
//! authorisation runs, replies held until the lease record they depend on is on
//! disk, and the memory of what was already said once.
//!
//! It is fed with `handle_datagram`, `handle_auth_answer`, `handle_committed` and
//! `handle_timeout`, and drained with [`Endpoint::poll_transmit`] (replies, each
//! with the network whose socket sends it), [`Endpoint::poll_event`] (log lines,
//! events to publish, authorisation queries for the workers, lease-file
//! rewrites), [`Endpoint::poll_commit`] (the lease records to make durable, once
//! per turn of the shell's loop) and [`Endpoint::poll_timeout`] (when to call
//! `handle_timeout`).
//!
//! Durability is a hard rule: a reply, event or log line that follows from a lease
//! record waits until the shell has written and fsynced that record and said so
//! with `handle_committed`. The records decided in one turn are committed as a
//! group, one write and one fdatasync for all, so a storm of new clients costs
//! one disk flush per turn rather than one per client. A failed write releases
//! nothing of its group (the clients retry). Later answers to the same MAC wait
//! behind a write still in progress; answers that need no write (clients already
//! bound, offers) never wait behind one.
//!
//! Overload: the shell says, after every batch it reads, how full each socket's
//! receive queue is and how long the batch waited in it (`handle_backlog`).
//! While datagrams wait longer than [`QUEUE_WAIT`], or the queue is more than
//! half full, DISCOVERs from clients that hold no address are shed (the clients
//! ask again), while requests, and clients that already hold an address or an
//! offer, are always answered. So when new clients come faster than bootd can
//! bind them, it keeps the queue short, before its wait outlasts the clients'
//! patience or the kernel has to drop datagrams, whatever they are, and finishes
//! the exchanges it started instead of starting ones it cannot finish. It says
//! so in the log once a second at most, with the datagrams the kernel dropped
//! all the same.
//!
//! Whatever clients send, what it keeps per client is bounded
//! ([`Endpoint::state_sizes`] reports every map): `[bootp] remembered_clients`
//! clients, `[http] max_queries` authorisation queries and the requests parked
//! on them, and bindings no more than the pool and the reservations hold.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter};

use super::acl::AccessControl;
use super::http_auth::{Answer, Query};
use super::leases::{LeaseRecord, LeaseTable};
use super::pxe::HttpServer;
use super::said_once::SaidOnce;
use super::server::{
    self, Action, Datagram, DropReason, Link, Notice, Outcome, ServedNetwork, ServerConfig,
};
use super::wire::{Message, MessageType, Packet};
use crate::config::{BootFiles, BootpConfig, Config, MacRule};
use crate::event::{self as bus, EventKind};
use crate::metrics::{self, DhcpCounts};
use crate::net::NetConfig;
use crate::status_page::DhcpPhase;
use crate::types::MacAddr;

/// Rewrite the lease file once this many lines were appended since the last rewrite.
const COMPACT_AFTER_APPENDS: usize = 10_000;
/// The longest wait in the receive queue at which new clients are still offered
/// addresses: a DHCP exchange is two such waits, well within the second most
/// clients wait for an answer before they ask again.
pub const QUEUE_WAIT: Duration = Duration::from_millis(200);
/// The overload line is said at most this often.
const OVERLOAD_LINE_EVERY: Duration = Duration::from_secs(1);

/// How full a socket's receive queue was after the shell read a batch from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Bytes waiting, in the kernel's accounting.
    pub queued: usize,
    /// The most the queue holds (0: unknown).
    pub limit: usize,
    /// Datagrams the kernel dropped since the socket was made, the queue full.
    pub drops: u64,
    /// How long the batch's last datagram waited in the queue, when known.
    pub waited: Option<Duration>,
}

/// Names one group of lease records handed out for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitId(u64);

/// The lease records decided in one turn: the shell appends them with one write,
/// makes them durable with one fdatasync, and reports with `handle_committed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: CommitId,
    pub records: Vec<LeaseRecord>,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which served network's socket sends it (the one its request came in on).
    pub network: usize,
    pub destination: SocketAddrV4,
    pub bytes: Vec<u8>,
    /// The client it answers, for a line about a failed send.
    pub mac: MacAddr,
    /// The info line to log once it is sent (`None` when info is not logged).
    pub sent_line: Option<String>,
}

/// What the shell must do besides sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Log {
        level: Level,
        line: String,
    },
    /// For the notifier and TFTP threads.
    Publish(bus::Event),
    /// Ask the HTTP authorisation server; answer with `handle_auth_answer`.
    Authorise(Query),
    /// Rewrite the lease file with exactly these records.
    Compact(Vec<LeaseRecord>),
}

#[cfg(test)]
/// How many entries each map keyed by client holds, summed over the served
/// networks: what must stay bounded whatever clients send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSizes {
    pub phases: usize,
    pub uuids: usize,
    /// Fresh ACKs, which a DECLINE may still undo.
    pub acks: usize,
    pub offers: usize,
    /// Bound MACs, and MACs remembered after their binding ended.
    pub bindings: usize,
    /// Lines said once per client.
    pub said_once: usize,
    pub http_answers: usize,
    pub http_queries: usize,
    pub parked: usize,
}

/// A request waiting for its HTTP authorisation.
struct Parked {
    network: usize,
    bytes: Vec<u8>,
    source: SocketAddrV4,
}

/// What one answer releases once its lease record is durable.
enum Held {
    Transmit(Transmit),
    Event(Event),
}

/// Lease records of one commit, and what waits on them.
#[derive(Default)]
struct Group {
    records: Vec<LeaseRecord>,
    /// The (network, MAC) of each record.
    clients: Vec<(usize, MacAddr)>,
    /// In the order they were decided.
    held: Vec<Held>,
}

/// What a socket's receive queue was like at the last batch.
#[derive(Default, Clone, Copy)]
struct Queue {
    /// Too long a wait, or more than half full: new clients wait.
    crowded: bool,
    /// The kernel's count of drops then.
    drops: u64,
}

/// What overload cost since the overload line was last said.
#[derive(Default)]
struct Shedding {
    /// DISCOVERs of new clients shed.
    shed: u64,
    /// Datagrams the kernel dropped.
    dropped: u64,
    /// When the first of them was lost.
    since: Option<Instant>,
    /// When the line was last said.
    said: Option<Instant>,
}

pub struct Endpoint {
    bootp: BootpConfig,
    boot_files: BootFiles,
    /// bootd's HTTP file service, when it runs: where iPXE and UEFI HTTP boot
    /// clients are sent.
    http: Option<HttpServer>,
    buggy_clients: Vec<MacRule>,
    networks: Vec<ServedNetwork>,
    access: AccessControl,
    parked: HashMap<MacAddr, Parked>,
    /// Hashes of the (MAC, line) pairs already logged at their full level, for
    /// the clients remembered: a few bytes each, however long the line.
    said_once: SaidOnce,
    /// Lease-file records of networks not served now: kept, so a rewrite never
    /// loses them.
    foreign: Vec<LeaseRecord>,
    appended: usize,
    /// The records decided since the last commit was handed out.
    open: Group,
    /// The id the open group will be handed out with.
    open_id: CommitId,
    /// Groups handed out, not yet reported written.
    committing: HashMap<CommitId, Group>,
    /// The commit each (network, MAC) waits on.
    writing: HashMap<(usize, MacAddr), CommitId>,
    /// Each network's socket queue.
    queues: Vec<Queue>,
    shedding: Shedding,
    /// The last (now, Unix seconds) seen: stamps records of resumed requests.
    clock: Option<(Instant, u64)>,
    /// The most detailed level logged: lines below it are not even formatted.
    verbosity: LevelFilter,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// What the service was asked and refused, for `/metrics`.
    counts: DhcpCounts,
    /// Clients refused since the shell last took them (once per client and
    /// reason, as the log says it), for `/status`.
    refused: VecDeque<(MacAddr, String)>,
    /// DHCP phases seen and taken since the shell last took them, for `/status`.
    phases: VecDeque<(Instant, MacAddr, DhcpPhase)>,
}

/// The most refusals kept for the shell between two of its turns.
const MAX_REFUSED: usize = 1024;
/// The most DHCP phases kept for the shell between two of its turns.
const MAX_PHASES: usize = 1024;

impl Endpoint {
    /// Serves `nets` (one per pool of `[bootp] pool_start`, in order) with the
    /// records read from the lease file. `resolv_conf` is the text of
    /// /etc/resolv.conf for `dns = auto`; `http` is bootd's HTTP file service
    /// when it runs (`-H`).
    pub fn new(
        config: &Config,
        nets: &[NetConfig],
        records: Vec<LeaseRecord>,
        resolv_conf: Option<&str>,
        http: Option<HttpServer>,
        verbosity: LevelFilter,
    ) -> Endpoint {
        let bootp = &config.bootp;
        let mut records = records;
        let mut networks = Vec::new();
        for (net, pool_start) in nets.iter().zip(&bootp.pools) {
            let statics: Vec<_> = config
                .static_dhcp
                .iter()
                .filter(|s| net.contains(s.ip))
                .copied()
                .collect();
            let (mine, others): (Vec<_>, Vec<_>) =
                records.into_iter().partition(|r| net.contains(r.ip));
            records = others;
            let mut leases =
                LeaseTable::for_network(net.network, *pool_start, bootp.pool_count, &statics)
                    .remembering(bootp.remembered_clients);
            leases.load(mine);
            let dns = server::resolve_dns(&bootp.dns, resolv_conf, net.server());
            let link = Link::new(net.network, bootp.netmask, dns);
            networks.push(ServedNetwork::new(link, leases, bootp.remembered_clients));
        }
        let access = AccessControl::new(config);
        let mut endpoint = Endpoint {
            bootp: bootp.clone(),
            boot_files: config.boot_files.clone(),
            http,
            buggy_clients: config.buggy_clients.clone(),
            networks,
            access,
            parked: HashMap::new(),
            said_once: SaidOnce::new(bootp.remembered_clients),
            foreign: records,
            appended: 0,
            open: Group::default(),
            open_id: CommitId(0),
            committing: HashMap::new(),
            writing: HashMap::new(),
            queues: vec![Queue::default(); nets.len()],
            shedding: Shedding::default(),
            clock: None,
            verbosity,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counts: DhcpCounts::default(),
            refused: VecDeque::new(),
            phases: VecDeque::new(),
        };
        endpoint.compact();
        let served: Vec<_> = nets.iter().zip(&bootp.pools).enumerate().collect();
        for (index, (net, pool_start)) in served {
            let Some(leases) = endpoint.networks.get(index).map(|n| &n.leases) else {
                break;
            };
            let pool = leases.describe_pool();
            let line = format!(
                "serving BOOTP/DHCP on {} ({}) as {}: pool {} + {} ({pool}), {} bindings in {}",
                net.device,
                net.network,
                net.server(),
                pool_start,
                bootp.pool_count,
                leases.bound_count(),
                bootp.lease_file.display()
            );
            endpoint
                .events
                .push_back(Event::Publish(bus::Event::ServerAddress(net.server())));
            endpoint.log(Level::Info, || line);
        }
        endpoint
    }

    /// The next client refused (its MAC, and the reason as logged), for `/status`.
    pub fn poll_refused(&mut self) -> Option<(MacAddr, String)> {
        self.refused.pop_front()
    }

    /// The next DHCP phase of a client (when, whose, which), for `/status`.
    pub fn poll_phase(&mut self) -> Option<(Instant, MacAddr, DhcpPhase)> {
        self.phases.pop_front()
    }

    /// What the service was asked and refused since it started.
    pub fn counts(&self) -> &DhcpCounts {
        &self.counts
    }

    /// Each served network (as `10.0.0.0/24`) with its bound addresses and the pool
    /// addresses a new client could be offered.
    pub fn lease_counts(&self) -> impl Iterator<Item = (String, u64, u64)> + '_ {
        self.networks.iter().map(|n| {
            let leases = &n.leases;
            (
                n.link.network.to_string(),
                leases.bound_count() as u64,
                leases.free_count(),
            )
        })
    }

    /// Each served network's bound addresses (cheaper than [`Endpoint::lease_counts`]).
    pub fn lease_counts_bound(&self) -> impl Iterator<Item = u64> + '_ {
        self.networks.iter().map(|n| n.leases.bound_count() as u64)
    }

    /// One datagram that arrived on the socket of network `network` at `now`
    /// (`epoch`: the same instant in Unix seconds).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        epoch: u64,
        network: usize,
        source: SocketAddrV4,
        bytes: &[u8],
    ) {
        self.clock = Some((now, epoch));
        self.process(now, epoch, network, source, bytes);
    }

    /// A reloaded configuration (SIGHUP), already checked: requests from now on
    /// are answered with its access list, boot files, buggy clients,
    /// reservations and per-request settings (server name, domain, gateway,
    /// lease time). Nothing in flight is dropped: bindings and offers stand,
    /// replies waiting for their lease record still wait for it, and requests
    /// parked on an HTTP authorisation are kept while `access` stays `http`
    /// (with the authorisations already answered), or are decided again at
    /// once under the new policy when it changes. What the sockets and pools
    /// were made from (port, pools, lease file, DNS, netmask) stays as at start.
    pub fn handle_reload(&mut self, now: Instant, config: &Config) {
        let old = &self.bootp;
        self.bootp = BootpConfig {
            proxy: old.proxy,
            address: old.address,
            port: old.port,
            pools: old.pools.clone(),
            pool_count: old.pool_count,
            lease_file: old.lease_file.clone(),
            remembered_clients: old.remembered_clients,
            dns: old.dns.clone(),
            netmask: old.netmask,
            ..config.bootp.clone()
        };
        self.boot_files = config.boot_files.clone();
        self.buggy_clients = config.buggy_clients.clone();
        for network in &mut self.networks {
            network.leases.set_reservations(&config.static_dhcp);
        }
        let keeps_decisions = matches!(self.access, AccessControl::Http(_))
            && config.bootp.access == Some(crate::config::Access::Http);
        if !keeps_decisions {
            self.access = AccessControl::new(config);
            // Requests parked on a policy that is gone are decided by the new one.
            let parked: Vec<Parked> = self.parked.drain().map(|(_, p)| p).collect();
            let epoch = self.epoch_at(now);
            for request in parked {
                self.process(now, epoch, request.network, request.source, &request.bytes);
            }
        }
        let bound: usize = self.networks.iter().map(|n| n.leases.bound_count()).sum();
        let line = format!(
            "reload: new requests are answered with the new access list, boot files and reservations; {bound} bindings and {} parked requests kept",
            self.parked.len()
        );
        self.log(Level::Info, || line);
    }

    /// The HTTP authorisation server's answer to query `id` (also a failure to
    /// ask it); the request it parked is handled again.
    pub fn handle_auth_answer(&mut self, now: Instant, id: u64, answer: Answer) {
        let AccessControl::Http(decisions) = &mut self.access else {
            return;
        };
        let Some((mac, line)) = decisions.answer(id, answer, now) else {
            return;
        };
        self.log(Level::Info, || format!("{mac}: {line}"));
        if let Some(parked) = self.parked.remove(&mac) {
            let epoch = self.epoch_at(now);
            self.process(now, epoch, parked.network, parked.source, &parked.bytes);
        }
    }

    /// How full the receive queue of network `network`'s socket is, read just
    /// before a batch of its datagrams is handed in: while datagrams wait in it
    /// longer than [`QUEUE_WAIT`] or it is more than half full, new clients'
    /// DISCOVERs are shed; what the kernel dropped is told.
    pub fn handle_backlog(&mut self, now: Instant, network: usize, backlog: Backlog) {
        let Some(queue) = self.queues.get_mut(network) else {
            return;
        };
        let half_full = backlog.queued.saturating_mul(2) > backlog.limit && backlog.limit > 0;
        queue.crowded = half_full || backlog.waited.is_some_and(|w| w > QUEUE_WAIT);
        let dropped = backlog.drops.saturating_sub(queue.drops);
        queue.drops = backlog.drops;
        if dropped > 0 {
            self.shedding.dropped += dropped;
            self.lost(now);
        }
    }

    /// The shell read network `network`'s receive queue empty (a batch with room
    /// to spare): it is not crowded, and reading how full it is would cost two
    /// system calls for nothing.
    pub fn handle_queue_drained(&mut self, network: usize) {
        if let Some(queue) = self.queues.get_mut(network) {
            queue.crowded = false;
        }
    }

    /// The lease records decided since the last call, to append with one write
    /// and make durable with one fdatasync, then report with `handle_committed`.
    /// The shell calls it once per turn of its loop, after the turn's datagrams.
    pub fn poll_commit(&mut self) -> Option<Commit> {
        if self.open.records.is_empty() {
            return None;
        }
        let id = self.open_id;
        self.open_id = CommitId(id.0.wrapping_add(1));
        let mut group = std::mem::take(&mut self.open);
        let records = std::mem::take(&mut group.records);
        self.committing.insert(id, group);
        Some(Commit { id, records })
    }

    /// The shell wrote the records of commit `id` (`Ok`: written and fsynced):
    /// what waited on them is released; after a failure, nothing is, and the next
    /// request of each of those clients writes its binding again.
    pub fn handle_committed(&mut self, id: CommitId, result: io::Result<()>) {
        let Some(group) = self.committing.remove(&id) else {
            return;
        };
        for client in &group.clients {
            if self.writing.get(client) == Some(&id) {
                self.writing.remove(client);
            }
        }
        match result {
            Ok(()) => {
                self.release(group.held);
                self.appended += group.clients.len();
                if self.appended >= COMPACT_AFTER_APPENDS {
                    self.compact();
                }
            }
            Err(e) => {
                let mut macs: Vec<MacAddr> = Vec::new();
                for &(network, mac) in &group.clients {
                    if let Some(network) = self.networks.get_mut(network) {
                        network.leases.mark_unpersisted(mac);
                    }
                    if !macs.contains(&mac) {
                        macs.push(mac);
                    }
                }
                let path = self.bootp.lease_file.display();
                let line = match macs.as_slice() {
                    [mac] => format!(
                        "{mac}: cannot write the lease file {path} ({e}); no answer sent, the client will ask again"
                    ),
                    _ => {
                        let named: Vec<String> =
                            macs.iter().take(8).map(MacAddr::to_string).collect();
                        let more = match macs.len().saturating_sub(8) {
                            0 => String::new(),
                            n => format!(" and {n} more"),
                        };
                        format!(
                            "cannot write the lease file {path} ({e}); no answer sent to {} clients ({}{more}), they will ask again",
                            macs.len(),
                            named.join(", ")
                        )
                    }
                };
                self.log(Level::Error, || line);
            }
        }
    }

    /// Gives up on authorisations that did not come in time (their requests are
    /// dropped, with a line saying so) and forgets offers no one took up.
    pub fn handle_timeout(&mut self, now: Instant) {
        for network in &mut self.networks {
            network.leases.sweep_offers(now);
        }
        let expired = match &mut self.access {
            AccessControl::Http(decisions) => decisions.expire(now),
            _ => Vec::new(),
        };
        for (mac, reason) in expired {
            self.parked.remove(&mac);
            let reason = DropReason::Refused { mac, reason };
            self.log_drop(&reason, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
        }
        if self.overload_line_at().is_some_and(|at| at <= now) {
            self.say_overload(now);
        }
    }

    /// When `handle_timeout` next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let authorisation = match &self.access {
            AccessControl::Http(decisions) => decisions.next_deadline(),
            _ => None,
        };
        let sweeps = self.networks.iter().map(|n| n.leases.offers_sweep_at());
        sweeps
            .chain([authorisation, self.overload_line_at()])
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The served network of that index.
    #[cfg(test)]
    pub fn network(&self, index: usize) -> Option<&ServedNetwork> {
        self.networks.get(index)
    }

    /// Requests waiting for their HTTP authorisation.
    #[cfg(test)]
    pub fn parked_count(&self) -> usize {
        self.parked.len()
    }

    /// The size of every map keyed by client.
    #[cfg(test)]
    pub fn state_sizes(&self) -> StateSizes {
        let mut sizes = StateSizes {
            said_once: self.said_once.len(),
            parked: self.parked.len(),
            ..StateSizes::default()
        };
        if let AccessControl::Http(decisions) = &self.access {
            sizes.http_answers = decisions.remembered();
            sizes.http_queries = decisions.pending();
        }
        for network in &self.networks {
            let (phases, uuids, acks) = network.remembered();
            sizes.phases += phases;
            sizes.uuids += uuids;
            sizes.acks += acks;
            sizes.offers += network.leases.offer_count();
            sizes.bindings += network.leases.binding_count();
        }
        sizes
    }

    fn process(
        &mut self,
        now: Instant,
        epoch: u64,
        index: usize,
        source: SocketAddrV4,
        bytes: &[u8],
    ) {
        let Some(network) = self.networks.get_mut(index) else {
            return;
        };
        // Whether the client holds an address (a binding, a reservation or an
        // offer): answering it commits nothing new.
        let packet = Packet::new_checked(bytes).ok();
        let mac = packet.as_ref().map(|packet| {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&packet.chaddr()[..6]);
            MacAddr(mac)
        });
        let known = mac.map(|mac| network.leases.current_address(mac, now).is_some());
        let kind = packet.as_ref().map(|packet| packet.message_type_byte());
        self.counts.request(metrics::dhcp_type_label(kind));
        let crowded = self.queues.get(index).is_some_and(|q| q.crowded);
        if known == Some(false) && crowded && is_discover(bytes) {
            self.counts.refusal("overload");
            self.shedding.shed += 1;
            self.lost(now);
            return;
        }
        let seen = match kind {
            Some(Some(1)) => Some(DhcpPhase::DiscoverSeen),
            Some(Some(3)) => Some(DhcpPhase::RequestSeen),
            _ => None,
        };
        if let (Some(mac), Some(phase)) = (mac, seen) {
            push_phase(&mut self.phases, now, mac, phase);
        }
        let config = ServerConfig {
            bootp: &self.bootp,
            boot_files: &self.boot_files,
            buggy_clients: &self.buggy_clients,
            http: self.http,
        };
        let datagram = Datagram {
            bytes,
            source,
            now,
            epoch,
        };
        let outcome = server::handle(&config, network, self.access.policy(), &datagram);
        if let Action::Pending { mac } = outcome.action {
            // A retransmission replaces the request parked before it.
            let parked = Parked {
                network: index,
                bytes: bytes.to_vec(),
                source,
            };
            self.parked.insert(mac, parked);
            self.forward_queries();
            return;
        }
        self.apply(now, outcome, index, source);
    }

    /// Hands the queries the HTTP decisions asked for to the shell.
    fn forward_queries(&mut self) {
        let AccessControl::Http(decisions) = &mut self.access else {
            return;
        };
        for query in decisions.take_queries() {
            if Level::Debug <= self.verbosity {
                self.events.push_back(Event::Log {
                    level: Level::Debug,
                    line: format!("{}: asking {}", query.mac, query.url),
                });
            }
            self.events.push_back(Event::Authorise(query));
        }
    }

    fn apply(&mut self, now: Instant, outcome: Outcome, index: usize, source: SocketAddrV4) {
        let Outcome {
            action,
            persist,
            event,
            notices,
        } = outcome;
        for notice in &notices {
            if let Notice::Nak { .. } = notice {
                self.counts.refusal("nak");
            }
            match notice {
                // Every retransmission repeats it: say it once per client.
                Notice::DefaultBootFile { mac, .. } | Notice::IpxeLoaderRefused { mac, .. } => {
                    let line = notice.to_string();
                    if self.said_once.first_time(*mac, &line) {
                        self.log(Level::Warn, || line);
                    }
                }
                // Routine while the pool is short; a flood makes one per packet.
                Notice::OfferYielded { .. } | Notice::OfferReclaimed { .. } => {
                    self.log(Level::Debug, || notice.to_string())
                }
                _ => self.log(Level::Info, || notice.to_string()),
            }
        }
        let mut held = Vec::new();
        let mut client = event.as_ref().map(|e| e.mac);
        match action {
            Action::Reply(reply) => {
                let mac = reply.message.client_mac();
                client = Some(mac);
                let taken = match reply.message.message_type() {
                    Some(MessageType::Offer) => Some(DhcpPhase::OfferSent {
                        ip: reply.message.yiaddr,
                    }),
                    Some(MessageType::Nak) => Some(DhcpPhase::NakSent),
                    _ => None,
                };
                if let Some(phase) = taken {
                    push_phase(&mut self.phases, now, mac, phase);
                }
                let sent_line = (Level::Info <= self.verbosity).then(|| reply.describe());
                held.push(Held::Transmit(Transmit {
                    network: index,
                    destination: reply.destination,
                    bytes: reply.bytes,
                    mac,
                    sent_line,
                }));
            }
            Action::Silent => {
                if let Some(event) = &event
                    && event.kind == EventKind::Release
                {
                    held.push(Held::Event(Event::Log {
                        level: Level::Info,
                        line: format!("{}: released {}", event.mac, event.ip),
                    }));
                }
            }
            Action::Pending { .. } => {}
            Action::Drop(reason) => self.log_drop(&reason, source),
        }
        if let Some(event) = event {
            held.push(Held::Event(Event::Publish(bus::Event::Lease(event))));
        }
        // The binding reaches the disk before the client hears of it: a crash
        // after the ACK never loses an address a machine believes it has.
        if let Some(record) = persist {
            let mac = record.mac;
            self.open.records.push(record);
            self.open.clients.push((index, mac));
            self.open.held.extend(held);
            self.writing.insert((index, mac), self.open_id);
            return;
        }
        // An answer that repeats a binding still being written depends on it too.
        if let Some(mac) = client
            && let Some(&id) = self.writing.get(&(index, mac))
        {
            let group = if id == self.open_id {
                Some(&mut self.open)
            } else {
                self.committing.get_mut(&id)
            };
            if let Some(group) = group {
                group.held.extend(held);
                return;
            }
        }
        self.release(held);
    }

    /// Queues what no longer waits for the disk.
    fn release(&mut self, held: Vec<Held>) {
        for held in held {
            match held {
                Held::Transmit(transmit) => self.transmits.push_back(transmit),
                Held::Event(event) => self.events.push_back(event),
            }
        }
    }

    /// Counts a datagram lost to overload (shed, or dropped by the kernel): says
    /// so now when the line was not said within the last second, else when that
    /// second is over.
    fn lost(&mut self, now: Instant) {
        let shedding = &mut self.shedding;
        shedding.since.get_or_insert(now);
        if shedding
            .said
            .is_none_or(|said| now >= said + OVERLOAD_LINE_EVERY)
        {
            self.say_overload(now);
        }
    }

    /// When what overload cost since the last line is to be told.
    fn overload_line_at(&self) -> Option<Instant> {
        let shedding = &self.shedding;
        (shedding.shed + shedding.dropped > 0)
            .then_some(shedding.said)
            .flatten()
            .map(|said| said + OVERLOAD_LINE_EVERY)
    }

    fn say_overload(&mut self, now: Instant) {
        let Shedding {
            shed,
            dropped,
            since,
            ..
        } = std::mem::take(&mut self.shedding);
        self.shedding.said = Some(now);
        let mut parts = Vec::new();
        if shed > 0 {
            parts.push(format!(
                "{shed} DISCOVERs from new clients left unanswered while the receive queue held datagrams longer than {} s or was more than half full (they will ask again; requests and the clients already known are answered)",
                QUEUE_WAIT.as_secs_f64()
            ));
        }
        if dropped > 0 {
            parts.push(format!(
                "the kernel dropped {dropped} datagrams for want of room in the receive queue"
            ));
        }
        if parts.is_empty() {
            return;
        }
        let over = since.map_or(0.0, |since| {
            now.saturating_duration_since(since).as_secs_f64()
        });
        self.log(Level::Warn, || {
            format!("overloaded for {over:.1} s: {}", parts.join("; "))
        });
    }

    /// A dropped packet is a debug line; a refused client an info line, once per
    /// reason.
    fn log_drop(&mut self, reason: &DropReason, source: SocketAddrV4) {
        self.counts.refusal(reason.label());
        let refused_mac = match reason {
            DropReason::SimpleClientNotAllowed { mac }
            | DropReason::ClaimsAddress { mac, .. }
            | DropReason::LateDecline { mac, .. }
            | DropReason::Refused { mac, .. }
            | DropReason::PoolExhausted { mac, .. }
            | DropReason::NoBootFile { mac, .. }
            | DropReason::HttpBootWithoutHttp { mac, .. } => Some(*mac),
            _ => None,
        };
        match refused_mac {
            Some(mac) => {
                let text = reason.to_string();
                if self.said_once.first_time(mac, &text) {
                    if self.refused.len() >= MAX_REFUSED {
                        self.refused.pop_front();
                    }
                    self.refused.push_back((mac, text.clone()));
                    self.log(Level::Info, || text);
                } else {
                    self.log(Level::Debug, || text);
                }
            }
            None => self.log(Level::Debug, || format!("{source}: dropped: {reason}")),
        }
    }

    /// Queues a log line, formatting it only when its level is logged.
    fn log(&mut self, level: Level, line: impl FnOnce() -> String) {
        if level <= self.verbosity {
            self.events.push_back(Event::Log {
                level,
                line: line(),
            });
        }
    }

    /// Asks for the lease file to be rewritten with one line per binding.
    fn compact(&mut self) {
        let mut records = self.foreign.clone();
        for network in &self.networks {
            records.extend(network.leases.records());
        }
        self.events.push_back(Event::Compact(records));
        self.appended = 0;
    }

    /// Unix seconds at `now`, from the last datagram's clock reading.
    fn epoch_at(&self, now: Instant) -> u64 {
        self.clock.map_or(0, |(then, epoch)| {
            epoch.saturating_add(now.saturating_duration_since(then).as_secs())
        })
    }
}

/// Queues a phase for `/status`, forgetting the oldest past [`MAX_PHASES`].
fn push_phase(
    phases: &mut VecDeque<(Instant, MacAddr, DhcpPhase)>,
    at: Instant,
    mac: MacAddr,
    phase: DhcpPhase,
) {
    if phases.len() >= MAX_PHASES {
        phases.pop_front();
    }
    phases.push_back((at, mac, phase));
}

/// Whether `bytes` is a DHCPDISCOVER.
fn is_discover(bytes: &[u8]) -> bool {
    Message::parse(bytes).is_ok_and(|m| m.message_type() == Some(MessageType::Discover))
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
