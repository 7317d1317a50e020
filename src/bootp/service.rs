//! The BOOTP/DHCP service thread: a mio loop around one socket per served
//! interface (each bound to its device, so a reply leaves where its request came
//! in and names that interface's address). It reads datagrams, hands them to `server::handle`, writes confirmed
//! bindings to the lease file before the ACK leaves, sends replies, publishes
//! events and logs. Every protocol rule lives in `server`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};

use super::acl::{MacList, UuidList};
use super::auth_workers::{AuthResult, AuthWorkers};
use super::http_auth::{Answer, HttpDecisions};
use super::leases::{self, LeaseJournal, LeaseRecord, LeaseTable};
use super::server::{
    self, Action, AllowAll, DropReason, Interface, Outcome, ServerConfig, ServerState,
};
use super::wire::{MessageType, tag};
use crate::config::{Access, Config, DnsSetting};
use crate::event::{Event, EventBus, EventKind, Message};
use crate::net::NetConfig;
use crate::service_loop::{self, WAKER};
use crate::types::MacAddr;

/// Rewrite the lease file once this many lines were appended since the last rewrite.
const COMPACT_AFTER_APPENDS: usize = 10_000;
/// Refusals and warnings already logged (per MAC and text); forgotten past this size.
const REFUSALS_REMEMBERED: usize = 10_000;

type SaidOnce = HashSet<(MacAddr, String)>;

pub struct BootpService {
    pub config: Config,
    /// Each served network with its socket, bound to that network's interface.
    pub served: Vec<(NetConfig, mio::net::UdpSocket)>,
    pub poll: Poll,
    /// Wakes the loop: the supervisor's messages, and HTTP authorisation answers.
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    pub events: EventBus,
}

/// One served network: its socket, what it tells clients, and its leases.
struct Network {
    net: NetConfig,
    socket: mio::net::UdpSocket,
    interface: Interface,
    state: ServerState,
}

/// The lease file, shared by every network.
struct Leases {
    journal: LeaseJournal,
    /// Records of networks not served now: kept, so a rewrite never loses them.
    foreign: Vec<LeaseRecord>,
    appended: usize,
}

impl BootpService {
    pub fn run(self) -> Result<(), String> {
        let BootpService {
            config,
            served,
            mut poll,
            waker,
            inbox,
            events,
        } = self;
        let lease_file = config.bootp.lease_file.clone();
        let (journal, records) = open_lease_file(&lease_file)?;
        let mut leases = Leases {
            journal,
            foreign: Vec::new(),
            appended: 0,
        };
        let resolv_conf = match config.bootp.dns {
            DnsSetting::Auto => std::fs::read_to_string("/etc/resolv.conf").ok(),
            _ => None,
        };
        let mut networks = Vec::new();
        let mut dns_lists = Vec::new();
        let mut records = records;
        for (index, ((net, mut socket), pool_start)) in served
            .into_iter()
            .zip(config.bootp.pools.iter().copied())
            .enumerate()
        {
            poll.registry()
                .register(&mut socket, Token(index), Interest::READABLE)
                .map_err(|e| format!("cannot watch the BOOTP socket of {}: {e}", net.device))?;
            let statics: Vec<_> = config
                .static_dhcp
                .iter()
                .filter(|s| net.contains(s.ip))
                .copied()
                .collect();
            let (mine, others): (Vec<_>, Vec<_>) =
                records.into_iter().partition(|r| net.contains(r.ip));
            records = others;
            let mut table = LeaseTable::new(Some(pool_start), config.bootp.pool_count, &statics);
            table.load(mine);
            dns_lists.push(server::resolve_dns(
                &config.bootp.dns,
                resolv_conf.as_deref(),
                net.server(),
            ));
            networks.push(Network {
                interface: Interface {
                    server_ip: net.server(),
                    netmask: config.bootp.netmask.unwrap_or(net.network.netmask()),
                    broadcast: net.network.broadcast(),
                },
                state: ServerState::new(table),
                net,
                socket,
            });
        }
        leases.foreign = records;
        leases.compact(&networks, &lease_file);
        let server_configs: Vec<ServerConfig<'_>> = dns_lists
            .iter()
            .map(|dns| ServerConfig::new(&config, dns))
            .collect();
        for (network, pool_start) in networks.iter().zip(&config.bootp.pools) {
            events.publish(Event::ServerAddress(network.net.server()));
            log::info!(
                "serving BOOTP/DHCP on {} ({}) as {}: pool {pool_start} + {}, {} bindings in {}",
                network.net.device,
                network.net.network,
                network.net.server(),
                config.bootp.pool_count,
                network.state.leases.bound_count(),
                lease_file.display()
            );
        }
        let mut policy = Policy::from_config(&config, &waker)?;
        let mut said_once = SaidOnce::new();
        let mut events_buf = Events::with_capacity(64);
        let mut buf = vec![0u8; 65536];
        let mut shared = Shared {
            networks,
            leases,
            said_once: &mut said_once,
            events: &events,
            lease_file: &lease_file,
        };
        loop {
            let timeout = policy
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            service_loop::poll(&mut poll, &mut events_buf, timeout)
                .map_err(|e| format!("poll failed: {e}"))?;
            for event in events_buf.iter() {
                let index = match event.token() {
                    WAKER => {
                        if service_loop::drain(&inbox).stop {
                            return Ok(());
                        }
                        policy.take_answers(&mut shared, &server_configs);
                        continue;
                    }
                    Token(index) => index,
                };
                while let Some(network) = shared.networks.get_mut(index) {
                    let (n, peer) = match network.socket.recv_from(&mut buf) {
                        Ok(r) => r,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::debug!("BOOTP receive error on {}: {e}", network.net.device);
                            break;
                        }
                    };
                    let SocketAddr::V4(source) = peer else {
                        continue;
                    };
                    policy.process(&mut shared, &server_configs, index, &buf[..n], source);
                }
                if shared.leases.appended >= COMPACT_AFTER_APPENDS {
                    shared.leases.compact(&shared.networks, &lease_file);
                }
            }
            policy.expire(&mut shared, Instant::now());
        }
    }
}

/// What handling a request touches besides the access policy.
struct Shared<'a> {
    networks: Vec<Network>,
    leases: Leases,
    said_once: &'a mut SaidOnce,
    events: &'a EventBus,
    lease_file: &'a Path,
}

/// A request waiting for its HTTP authorisation.
struct Parked {
    index: usize,
    bytes: Vec<u8>,
    source: SocketAddrV4,
}

/// HTTP delegation: the decisions, the workers, and the requests waiting.
struct HttpGate {
    decisions: HttpDecisions,
    workers: AuthWorkers,
    answers: Receiver<AuthResult>,
    parked: HashMap<MacAddr, Parked>,
}

/// `[bootp] access`: who may boot.
enum Policy {
    Everyone(AllowAll),
    Macs(MacList),
    Uuids(UuidList),
    Http(Box<HttpGate>),
}

/// Worker threads asking the HTTP authorisation server at once.
const AUTH_WORKERS: usize = 4;

impl Policy {
    fn from_config(config: &Config, waker: &Arc<Waker>) -> Result<Policy, String> {
        Ok(match config.bootp.access {
            None => Policy::Everyone(AllowAll),
            Some(Access::Mac) => Policy::Macs(MacList {
                rules: config.mac_acl.clone(),
            }),
            Some(Access::Uuid) => Policy::Uuids(UuidList {
                rules: config.uuid_acl.clone(),
            }),
            Some(Access::Http) => {
                let (sender, answers) = crossbeam_channel::unbounded();
                let workers = AuthWorkers::start(
                    AUTH_WORKERS,
                    config.http.timeout,
                    sender,
                    Arc::clone(waker),
                )
                .map_err(|e| format!("cannot start the HTTP authorisation workers: {e}"))?;
                Policy::Http(Box::new(HttpGate {
                    decisions: HttpDecisions::new(&config.http),
                    workers,
                    answers,
                    parked: HashMap::new(),
                }))
            }
        })
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self {
            Policy::Http(gate) => gate.decisions.next_deadline(),
            _ => None,
        }
    }

    /// Handles one request; a request waiting for its HTTP answer is parked (a
    /// retransmission replaces it) and its query handed to the workers.
    fn process(
        &mut self,
        shared: &mut Shared<'_>,
        configs: &[ServerConfig<'_>],
        index: usize,
        bytes: &[u8],
        source: SocketAddrV4,
    ) {
        let now = Instant::now();
        let Some(network) = shared.networks.get_mut(index) else {
            return;
        };
        let access: &mut dyn server::AccessPolicy = match self {
            Policy::Everyone(p) => p,
            Policy::Macs(p) => p,
            Policy::Uuids(p) => p,
            Policy::Http(gate) => &mut gate.decisions,
        };
        let outcome = server::handle_datagram(
            &configs[index],
            &mut network.state,
            bytes,
            source,
            network.interface,
            access,
            now,
            unix_seconds(),
        );
        if !matches!(outcome.action, Action::Pending) {
            apply(outcome, index, shared, source);
            return;
        }
        let Policy::Http(gate) = self else { return };
        let Some(mac) = client_mac(bytes) else { return };
        gate.parked.insert(
            mac,
            Parked {
                index,
                bytes: bytes.to_vec(),
                source,
            },
        );
        let mut failed = Vec::new();
        for query in gate.decisions.take_queries() {
            log::debug!("{}: asking {}", query.mac, query.url);
            let id = query.id;
            if !gate.workers.submit(query) {
                failed.push(id);
            }
        }
        let mut refused = Vec::new();
        for id in failed {
            let answer = Answer::Failed("too many authorisation queries waiting".into());
            if let Some((mac, _)) = gate.decisions.answer(id, answer, now) {
                refused.push(mac);
            }
        }
        for mac in refused {
            self.resume(shared, configs, mac);
        }
    }

    /// Answers from the workers: each resumes its parked request.
    fn take_answers(&mut self, shared: &mut Shared<'_>, configs: &[ServerConfig<'_>]) {
        let Policy::Http(gate) = self else { return };
        let now = Instant::now();
        let mut resumed = Vec::new();
        while let Ok(result) = gate.answers.try_recv() {
            if let Some((mac, line)) = gate.decisions.answer(result.id, result.answer, now) {
                log::info!("{mac}: {line}");
                resumed.push(mac);
            }
        }
        for mac in resumed {
            self.resume(shared, configs, mac);
        }
    }

    fn resume(&mut self, shared: &mut Shared<'_>, configs: &[ServerConfig<'_>], mac: MacAddr) {
        let Policy::Http(gate) = self else { return };
        if let Some(parked) = gate.parked.remove(&mac) {
            self.process(shared, configs, parked.index, &parked.bytes, parked.source);
        }
    }

    /// Requests whose authorisation did not come in time are dropped, with a line
    /// saying so.
    fn expire(&mut self, shared: &mut Shared<'_>, now: Instant) {
        let Policy::Http(gate) = self else { return };
        for (mac, reason) in gate.decisions.expire(now) {
            gate.parked.remove(&mac);
            let reason = DropReason::Refused { mac, reason };
            let source = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
            log_drop(&reason, source, shared.said_once);
        }
    }
}

/// chaddr's first six bytes, read without parsing the whole message.
fn client_mac(bytes: &[u8]) -> Option<MacAddr> {
    let chaddr: [u8; 6] = bytes.get(28..34)?.try_into().ok()?;
    Some(MacAddr(chaddr))
}

impl Leases {
    /// Rewrites the lease file with one line per binding of every network.
    fn compact(&mut self, networks: &[Network], path: &Path) {
        let mut records = self.foreign.clone();
        for network in networks {
            records.extend(network.state.leases.records());
        }
        if let Err(e) = self.journal.compact(&records) {
            log::warn!("cannot rewrite the lease file {}: {e}", path.display());
        }
        self.appended = 0;
    }
}

fn apply(outcome: Outcome, index: usize, shared: &mut Shared<'_>, source: SocketAddrV4) {
    let Shared {
        networks,
        leases,
        said_once,
        events,
        lease_file,
    } = shared;
    let Some(network) = networks.get_mut(index) else {
        return;
    };
    for notice in &outcome.notices {
        match notice {
            // Every retransmission repeats it: say it once per client.
            server::Notice::DefaultBootFile { mac, .. } => {
                if said_once.insert((*mac, notice.to_string())) {
                    log::warn!("{notice}");
                }
            }
            _ => log::info!("{notice}"),
        }
    }
    // The binding reaches the disk before the client hears of it: a crash after
    // the ACK never loses an address a machine believes it has.
    if let Some(record) = &outcome.persist {
        if let Err(e) = leases.journal.append(record) {
            network.state.leases.mark_unpersisted(record.mac);
            log::error!(
                "{}: cannot write the lease file {} ({e}); no answer sent, the client will ask again",
                record.mac,
                lease_file.display()
            );
            return;
        }
        leases.appended += 1;
    }
    match outcome.action {
        Action::Reply(reply) => {
            let mac = reply.message.client_mac();
            match network
                .socket
                .send_to(&reply.bytes, SocketAddr::V4(reply.destination))
            {
                Ok(_) => log::info!("{}", describe_reply(&reply.message, reply.destination)),
                Err(e) => log::warn!("{mac}: cannot send the reply to {}: {e}", reply.destination),
            }
        }
        Action::Silent => {
            if let Some(event) = &outcome.event
                && event.kind == EventKind::Release
            {
                log::info!("{}: released {}", event.mac, event.ip);
            }
        }
        Action::Pending => {}
        Action::Drop(reason) => log_drop(&reason, source, said_once),
    }
    if let Some(event) = outcome.event {
        events.publish(Event::Lease(event));
    }
}

/// Opens (creating it and its directory if needed) and reads the lease file; a bad
/// line is reported with its number and skipped, the rest is served.
fn open_lease_file(path: &Path) -> Result<(LeaseJournal, Vec<LeaseRecord>), String> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "[bootp] lease_file = {}: cannot create its directory: {e}",
                path.display()
            )
        })?;
    }
    let (journal, text) = LeaseJournal::open(path)
        .map_err(|e| format!("[bootp] lease_file = {}: cannot open: {e}", path.display()))?;
    let (records, errors) = leases::parse_lease_file(&text);
    for (line, error) in &errors {
        log::warn!("{}:{line}: {error}; line ignored", path.display());
    }
    Ok((journal, records))
}

fn describe_reply(message: &super::wire::Message, destination: SocketAddrV4) -> String {
    let kind = match message.message_type() {
        Some(t) => format!("{t}"),
        None => "BOOTREPLY".into(),
    };
    let mac = message.client_mac();
    let address = if message.yiaddr != Ipv4Addr::UNSPECIFIED {
        message.yiaddr
    } else {
        message.ciaddr
    };
    let file = String::from_utf8_lossy(&message.file);
    let file = file.trim_end_matches('\0');
    let pxe = message.options.contains(tag::VENDOR_SPECIFIC);
    let mut line = format!("{mac}: {kind} {address} via {destination}");
    if message.message_type() == Some(MessageType::Nak) {
        return format!("{mac}: NAK via {destination}");
    }
    if !file.is_empty() {
        line.push_str(&format!(", boot file {file}"));
    }
    if pxe {
        line.push_str(" (PXE)");
    }
    line
}

/// A dropped packet is a debug line; a refused client an info line, once per reason.
fn log_drop(reason: &DropReason, source: SocketAddrV4, said_once: &mut SaidOnce) {
    let refused_mac = match reason {
        DropReason::SimpleClientNotAllowed { mac }
        | DropReason::Refused { mac, .. }
        | DropReason::PoolExhausted { mac, .. }
        | DropReason::NoBootFile { mac, .. } => Some(*mac),
        _ => None,
    };
    match refused_mac {
        Some(mac) => {
            let text = reason.to_string();
            if said_once.len() >= REFUSALS_REMEMBERED {
                said_once.clear();
            }
            if said_once.insert((mac, text.clone())) {
                log::info!("{text}");
            } else {
                log::debug!("{text}");
            }
        }
        None => log::debug!("{source}: dropped: {reason}"),
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
