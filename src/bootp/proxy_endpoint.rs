//! The proxyDHCP endpoint, sans-IO: every network bootd boots machines on beside
//! the site's DHCP server (`[bootp] proxy = on`), the access policy with its HTTP
//! decisions, the requests parked while an authorisation runs, and a bounded
//! memory of the clients it answered (the route each was offered, its UUID, the
//! notification already sent). It keeps no lease and writes nothing: addresses
//! are the site's server's business.
//!
//! It is fed with `handle_datagram` (from either socket of a network: port 67 or
//! the boot server's port 4011), `handle_auth_answer` and `handle_timeout`, and
//! drained with [`ProxyEndpoint::poll_transmit`] (answers, each with the network
//! and port whose socket sends it), [`ProxyEndpoint::poll_event`] (log lines,
//! events to publish, authorisation queries for the workers) and
//! [`ProxyEndpoint::poll_timeout`].
//!
//! What each request gets is in [`super::proxy`]. Who is answered: PXE firmware
//! and UEFI HTTP boot clients that the access policy allows, on port 67 their
//! DHCPDISCOVERs and on port 4011 their DHCPREQUESTs; nothing else, and never a
//! port-67 DHCPREQUEST.
//!
//! `notify` gets one `BOOT` per boot, with the address the machine got from the
//! site's server as bootd sees it: for firmware that comes to port 4011, the
//! request's `ciaddr` (else its source address), when its ACK is sent; for the
//! others, which never talk to bootd after the offer, the address their
//! DHCPREQUEST to the site's server asks for (option 50; it is broadcast, so
//! bootd sees it).
//!
//! Whatever clients send, what it keeps per client is bounded: `[bootp]
//! remembered_clients` clients, and `[http] max_queries` authorisation queries
//! with the requests parked on them.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use log::{Level, LevelFilter};

use super::acl::AccessControl;
use super::http_auth::{Answer, Query};
use super::proxy::{self, ProxyConfig, ProxyReply, Route};
use super::pxe;
use super::pxe::HttpServer;
use super::recent::RecentMap;
use super::said_once::SaidOnce;
use super::server::{AccessGrant, AccessQuery, AccessVerdict, DropReason, Notice, Phase};
use super::wire::{HTYPE_ETHERNET, Message, MessageType, OP_BOOTREQUEST, Packet};
use crate::config::{BootFiles, Config, MacRule};
use crate::event::{self as bus, EventKind, LeaseEvent};
use crate::metrics::{self, ProxyCounts, ProxyPortCounts};
use crate::net::NetConfig;
use crate::types::{Ipv4Network, MacAddr, Uuid};

/// Which socket of a served network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// UDP 67: DHCP.
    Dhcp,
    /// UDP 4011: the PXE boot server.
    BootServer,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Which served network's socket sends it (the one its request came in on)…
    pub network: usize,
    /// …and which of its two sockets.
    pub port: Port,
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
    /// For the notifier, TFTP and NBD threads.
    Publish(bus::Event),
    /// Ask the HTTP authorisation server; answer with `handle_auth_answer`.
    Authorise(Query),
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// A reason the DHCP server has too.
    Dhcp(DropReason),
    /// Neither PXE firmware nor a UEFI HTTP boot client: the site's server's.
    NotABootClient {
        mac: MacAddr,
        kind: Option<MessageType>,
    },
    /// A message on port 67 that a proxy leaves to the site's server.
    NotForAProxy {
        mac: MacAddr,
        kind: Option<MessageType>,
    },
    /// On port 4011, anything but a DHCPREQUEST.
    NotABootServerRequest {
        mac: MacAddr,
        kind: Option<MessageType>,
    },
    /// A UEFI HTTP boot client on port 4011, which is PXE's: its URL came with
    /// the offer.
    HttpClientOnBootServer { mac: MacAddr },
    /// A port-4011 request whose source is no host of the served network: the
    /// unicast answer would leave for somewhere else.
    ForeignSource { mac: MacAddr, source: SocketAddrV4 },
}

impl Ignored {
    /// The reason's label in `/metrics` (one of `metrics::PROXY_REFUSALS`).
    pub fn label(&self) -> &'static str {
        match self {
            Ignored::Dhcp(reason) => reason.label(),
            Ignored::NotABootClient { .. } => "not_a_boot_client",
            Ignored::NotForAProxy { .. } => "for_the_site_server",
            Ignored::NotABootServerRequest { .. } => "not_a_boot_server_request",
            Ignored::HttpClientOnBootServer { .. } => "http_client_on_boot_server",
            Ignored::ForeignSource { .. } => "foreign_source",
        }
    }
}

/// `DHCPREQUEST`, or `BOOTREQUEST` for a message without option 53.
fn kind_name(kind: Option<MessageType>) -> String {
    kind.map_or("BOOTREQUEST".into(), |k| k.to_string())
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::Dhcp(reason) => reason.fmt(f),
            Ignored::NotABootClient { mac, kind } => write!(
                f,
                "{mac}: {} from a client that is no PXE or HTTP boot firmware (no option 60 PXEClient or HTTPClient): left to the site's DHCP server",
                kind_name(*kind)
            ),
            Ignored::NotForAProxy { mac, kind } => write!(
                f,
                "{mac}: {} not answered: bootd is a proxy, the site's DHCP server answers it",
                kind_name(*kind)
            ),
            Ignored::NotABootServerRequest { mac, kind } => write!(
                f,
                "{mac}: {} on port {}, where only DHCPREQUESTs are answered",
                kind_name(*kind),
                proxy::BOOT_SERVER_PORT
            ),
            Ignored::HttpClientOnBootServer { mac } => write!(
                f,
                "{mac}: a UEFI HTTP boot client on port {}, where only PXE firmware is answered (its URL came with the offer)",
                proxy::BOOT_SERVER_PORT
            ),
            Ignored::ForeignSource { mac, source } => write!(
                f,
                "{mac}: port-{} request from {source}, which is no host of this network: not answered",
                proxy::BOOT_SERVER_PORT
            ),
        }
    }
}

#[cfg(test)]
/// How many entries each map keyed by client holds: what must stay bounded
/// whatever clients send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSizes {
    pub clients: usize,
    pub said_once: usize,
    pub http_answers: usize,
    pub http_queries: usize,
    pub parked: usize,
}

/// A request waiting for its HTTP authorisation.
struct Parked {
    network: usize,
    port: Port,
    bytes: Vec<u8>,
    source: SocketAddrV4,
}

/// What bootd told a client, and what it has said of it.
#[derive(Debug, Clone)]
struct Seen {
    network: usize,
    route: Route,
    uuid: Option<Uuid>,
    file: String,
    /// The transaction whose `BOOT` notification went out.
    notified: Option<u32>,
}

pub struct ProxyEndpoint {
    boot_files: BootFiles,
    buggy_clients: Vec<MacRule>,
    server_name: String,
    http: Option<HttpServer>,
    /// Each served network: this server's address there, with its prefix.
    networks: Vec<Ipv4Network>,
    access: AccessControl,
    parked: HashMap<MacAddr, Parked>,
    clients: RecentMap<MacAddr, Seen>,
    /// Hashes of the (MAC, line) pairs already logged at their full level.
    said_once: SaidOnce,
    /// The most detailed level logged: lines below it are not even formatted.
    verbosity: LevelFilter,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// What each port was asked, answered and left, for `/metrics`.
    counts: ProxyCounts,
}

impl ProxyEndpoint {
    /// Boots machines on `nets` (one per pool_start, or the network of `[bootp]
    /// address`).
    pub fn new(
        config: &Config,
        nets: &[NetConfig],
        http: Option<HttpServer>,
        verbosity: LevelFilter,
    ) -> ProxyEndpoint {
        let bootp = &config.bootp;
        let mut endpoint = ProxyEndpoint {
            boot_files: config.boot_files.clone(),
            buggy_clients: config.buggy_clients.clone(),
            // The same name the DHCP server gives.
            server_name: super::server::server_name(&bootp.servername, &bootp.domain),
            http,
            networks: nets.iter().map(|n| n.network).collect(),
            access: AccessControl::new(config),
            parked: HashMap::new(),
            clients: RecentMap::new(bootp.remembered_clients),
            said_once: SaidOnce::new(bootp.remembered_clients),
            verbosity,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counts: ProxyCounts::default(),
        };
        for net in nets {
            endpoint
                .events
                .push_back(Event::Publish(bus::Event::ServerAddress(net.server())));
            let line = format!(
                "serving proxyDHCP on {} ({}) as {}: boot information on ports 67 and {}, no address handed out (the site's DHCP server gives them)",
                net.device,
                net.network,
                net.server(),
                proxy::BOOT_SERVER_PORT
            );
            endpoint.log(Level::Info, || line);
        }
        endpoint
    }

    /// One datagram that arrived at `now` on the socket of network `network`
    /// listening on `port`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        network: usize,
        port: Port,
        source: SocketAddrV4,
        bytes: &[u8],
    ) {
        // Counted once as it arrives, not again when a parked request resumes.
        let kind = Packet::new_checked(bytes)
            .ok()
            .map(|packet| packet.message_type_byte());
        self.port_counts(port)
            .request(metrics::dhcp_type_label(kind));
        self.process(now, network, port, source, bytes);
    }

    /// What each port (DHCP, then the boot server) was asked, answered and
    /// left unanswered since the service started.
    pub fn counts(&self) -> &ProxyCounts {
        &self.counts
    }

    fn port_counts(&mut self, port: Port) -> &mut ProxyPortCounts {
        let [dhcp, boot_server] = &mut self.counts;
        match port {
            Port::Dhcp => dhcp,
            Port::BootServer => boot_server,
        }
    }

    /// A reloaded configuration (SIGHUP), already checked: requests from now on
    /// get its boot files, access list, buggy clients and server name. Requests
    /// parked on an HTTP authorisation are kept while `access` stays `http`, or
    /// are decided again at once under the new policy when it changes. The
    /// networks served (the sockets) stay as at start.
    pub fn handle_reload(&mut self, now: Instant, config: &Config) {
        self.boot_files = config.boot_files.clone();
        self.buggy_clients = config.buggy_clients.clone();
        self.server_name =
            super::server::server_name(&config.bootp.servername, &config.bootp.domain);
        let keeps_decisions = matches!(self.access, AccessControl::Http(_))
            && config.bootp.access == Some(crate::config::Access::Http);
        if !keeps_decisions {
            self.access = AccessControl::new(config);
            let parked: Vec<Parked> = self.parked.drain().map(|(_, p)| p).collect();
            for request in parked {
                self.process(
                    now,
                    request.network,
                    request.port,
                    request.source,
                    &request.bytes,
                );
            }
        }
        let line = format!(
            "reload: new requests are answered with the new access list and boot files; {} parked requests kept",
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
            self.process(
                now,
                parked.network,
                parked.port,
                parked.source,
                &parked.bytes,
            );
        }
    }

    /// Gives up on authorisations that did not come in time (their requests are
    /// dropped, with a line saying so).
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired = match &mut self.access {
            AccessControl::Http(decisions) => decisions.expire(now),
            _ => Vec::new(),
        };
        for (mac, reason) in expired {
            if let Some(parked) = self.parked.remove(&mac) {
                let reason = Ignored::Dhcp(DropReason::Refused { mac, reason });
                self.log_ignored(&reason, parked.port, parked.source);
            }
        }
    }

    /// When `handle_timeout` next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.access {
            AccessControl::Http(decisions) => decisions.next_deadline(),
            _ => None,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The size of every map keyed by client.
    #[cfg(test)]
    pub fn state_sizes(&self) -> StateSizes {
        let mut sizes = StateSizes {
            clients: self.clients.len(),
            said_once: self.said_once.len(),
            parked: self.parked.len(),
            ..StateSizes::default()
        };
        if let AccessControl::Http(decisions) = &self.access {
            sizes.http_answers = decisions.remembered();
            sizes.http_queries = decisions.pending();
        }
        sizes
    }

    fn process(
        &mut self,
        now: Instant,
        index: usize,
        port: Port,
        source: SocketAddrV4,
        bytes: &[u8],
    ) {
        let Some(network) = self.networks.get(index).copied() else {
            return;
        };
        let answered = match Message::parse(bytes) {
            Err(error) => Err(Ignored::Dhcp(DropReason::Malformed(error))),
            Ok(message) => self.answer(now, index, network, port, source, bytes, &message),
        };
        if let Err(reason) = answered {
            self.log_ignored(&reason, port, source);
        }
    }

    /// Answers a well-formed message, or says why not.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        now: Instant,
        index: usize,
        network: Ipv4Network,
        port: Port,
        source: SocketAddrV4,
        bytes: &[u8],
        message: &Message,
    ) -> Result<(), Ignored> {
        check_header(message, network).map_err(Ignored::Dhcp)?;
        match port {
            Port::Dhcp => self.on_dhcp_port(now, index, network, source, bytes, message),
            Port::BootServer => {
                self.on_boot_server_port(now, index, network, source, bytes, message)
            }
        }
    }

    /// Port 67: DHCPDISCOVERs of boot clients get a proxy offer; their
    /// DHCPREQUESTs to the site's server are watched for the address, never
    /// answered; everything else is left alone.
    fn on_dhcp_port(
        &mut self,
        now: Instant,
        index: usize,
        network: Ipv4Network,
        source: SocketAddrV4,
        bytes: &[u8],
        message: &Message,
    ) -> Result<(), Ignored> {
        let mac = message.client_mac();
        let kind = message.message_type();
        match kind {
            Some(MessageType::Discover) => {}
            Some(MessageType::Request) => {
                self.watch_request(index, network, message);
                return Err(Ignored::NotForAProxy { mac, kind });
            }
            _ => return Err(Ignored::NotForAProxy { mac, kind }),
        }
        let Some(route) = Route::of(&message.options) else {
            return Err(Ignored::NotABootClient { mac, kind });
        };
        let uuid = pxe::client_uuid(&message.options);
        let Some(grant) =
            self.authorise(now, index, Port::Dhcp, source, bytes, message, uuid, None)?
        else {
            return Ok(());
        };
        let config = self.config();
        let reply = proxy::offer(&config, network.address(), message, route, source, &grant)
            .map_err(Ignored::Dhcp)?;
        let seen = Seen {
            network: index,
            route,
            uuid,
            file: reply.file.clone(),
            notified: None,
        };
        self.clients.insert(mac, seen);
        self.send(index, Port::Dhcp, reply);
        Ok(())
    }

    /// Port 4011: a DHCPREQUEST of PXE firmware that has its address gets the
    /// boot server's ACK, sent back to where it came from.
    fn on_boot_server_port(
        &mut self,
        now: Instant,
        index: usize,
        network: Ipv4Network,
        source: SocketAddrV4,
        bytes: &[u8],
        message: &Message,
    ) -> Result<(), Ignored> {
        let mac = message.client_mac();
        let kind = message.message_type();
        if kind != Some(MessageType::Request) {
            return Err(Ignored::NotABootServerRequest { mac, kind });
        }
        match Route::of(&message.options) {
            None => return Err(Ignored::NotABootClient { mac, kind }),
            Some(Route::Http) => return Err(Ignored::HttpClientOnBootServer { mac }),
            Some(Route::OfferedFile | Route::BootServer) => {}
        }
        let from = *source.ip();
        if !network.is_host(from) || from == network.address() || source.port() == 0 {
            return Err(Ignored::ForeignSource { mac, source });
        }
        // The request says where the client is; the offer may have been made
        // before a restart, or by no one (the site's server may name bootd as
        // its boot server): the answer needs no memory of it.
        let address = if message.ciaddr.is_unspecified() {
            from
        } else {
            message.ciaddr
        };
        let seen = self.clients.get(&mac).filter(|s| s.network == index);
        let uuid = pxe::client_uuid(&message.options).or_else(|| seen.and_then(|s| s.uuid));
        let notified = seen.and_then(|s| s.notified);
        let Some(grant) = self.authorise(
            now,
            index,
            Port::BootServer,
            source,
            bytes,
            message,
            uuid,
            Some(address),
        )?
        else {
            return Ok(());
        };
        let config = self.config();
        let reply = proxy::boot_server_ack(&config, network.address(), message, source, &grant)
            .map_err(Ignored::Dhcp)?;
        if notified != Some(message.xid) {
            self.notify_boot(mac, uuid, address, &reply.file, network.address());
        }
        let seen = Seen {
            network: index,
            route: Route::BootServer,
            uuid,
            file: reply.file.clone(),
            notified: Some(message.xid),
        };
        self.clients.insert(mac, seen);
        self.send(index, Port::BootServer, reply);
        Ok(())
    }

    /// A client bootd offered a file to, and that will not come to port 4011,
    /// takes its address from the site's server: that is its boot, and the
    /// DHCPREQUEST names the address.
    fn watch_request(&mut self, index: usize, network: Ipv4Network, message: &Message) {
        let mac = message.client_mac();
        let server_id = message.options.server_id();
        // Only the firmware's request to the site's server is its choice of it;
        // the operating system it boots asks again later, with no PXE sign.
        if server_id == Some(network.address()) || Route::of(&message.options).is_none() {
            return;
        }
        let address = message.options.requested_ip().or_else(|| {
            let ciaddr = message.ciaddr;
            (!ciaddr.is_unspecified()).then_some(ciaddr)
        });
        let Some(address) = address.filter(|a| network.contains(*a)) else {
            return;
        };
        let Some(seen) = self.clients.get_mut(&mac) else {
            return;
        };
        if seen.network != index
            || seen.route.asks_boot_server()
            || seen.notified == Some(message.xid)
        {
            return;
        }
        seen.notified = Some(message.xid);
        let uuid = pxe::client_uuid(&message.options).or(seen.uuid);
        let file = seen.file.clone();
        let from = server_id.map_or_else(
            || "its DHCP server".into(),
            |s| format!("the DHCP server {s}"),
        );
        self.log(Level::Info, || {
            format!("{mac}: takes {address} from {from} and boots {file} as bootd offered")
        });
        self.notify_boot(mac, uuid, address, &file, network.address());
    }

    fn notify_boot(
        &mut self,
        mac: MacAddr,
        uuid: Option<Uuid>,
        ip: Ipv4Addr,
        file: &str,
        server_ip: Ipv4Addr,
    ) {
        let event = LeaseEvent {
            kind: EventKind::Boot,
            mac,
            uuid,
            ip,
            boot_file: Some(file.to_string()),
            server_ip,
        };
        self.events
            .push_back(Event::Publish(bus::Event::Lease(event)));
    }

    /// Asks the access policy; `Ok(None)` when the request is parked on an
    /// authorisation query.
    #[allow(clippy::too_many_arguments)]
    fn authorise(
        &mut self,
        now: Instant,
        index: usize,
        port: Port,
        source: SocketAddrV4,
        bytes: &[u8],
        message: &Message,
        uuid: Option<Uuid>,
        address: Option<Ipv4Addr>,
    ) -> Result<Option<AccessGrant>, Ignored> {
        let mac = message.client_mac();
        // Firmware only: a proxy never hears from the operating system.
        let query = AccessQuery {
            mac,
            uuid,
            pxe: true,
            phase: Phase::Pxe,
            next_phase: Phase::Pxe,
            address,
            message_type: message.message_type(),
        };
        match self.access.policy().check(now, &query) {
            AccessVerdict::Allow(grant) => Ok(Some(grant)),
            AccessVerdict::Deny(reason) => Err(Ignored::Dhcp(DropReason::Refused { mac, reason })),
            AccessVerdict::Pending => {
                // A retransmission replaces the request parked before it.
                let parked = Parked {
                    network: index,
                    port,
                    bytes: bytes.to_vec(),
                    source,
                };
                self.parked.insert(mac, parked);
                self.forward_queries();
                Ok(None)
            }
        }
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

    fn config(&self) -> ProxyConfig<'_> {
        ProxyConfig {
            boot_files: &self.boot_files,
            buggy_clients: &self.buggy_clients,
            server_name: &self.server_name,
            http: self.http,
        }
    }

    fn send(&mut self, index: usize, port: Port, reply: ProxyReply) {
        for notice in &reply.notices {
            let line = notice.to_string();
            match notice {
                // Every retransmission repeats it: say it once per client.
                Notice::DefaultBootFile { mac, .. } => {
                    if self.said_once.first_time(*mac, &line) {
                        self.log(Level::Warn, || line);
                    }
                }
                _ => self.log(Level::Info, || line),
            }
        }
        let sent_line = (Level::Info <= self.verbosity).then(|| reply.to_string());
        self.port_counts(port).replies += 1;
        self.transmits.push_back(Transmit {
            network: index,
            port,
            destination: reply.destination,
            mac: reply.mac(),
            bytes: reply.bytes,
            sent_line,
        });
    }

    /// A refused client is an info line, once per reason; any other request
    /// left unanswered is a debug line.
    fn log_ignored(&mut self, reason: &Ignored, port: Port, source: SocketAddrV4) {
        self.port_counts(port).refusal(reason.label());
        let refused = match reason {
            Ignored::Dhcp(DropReason::Refused { mac, .. } | DropReason::NoBootFile { mac, .. }) => {
                Some(*mac)
            }
            _ => None,
        };
        match refused {
            Some(mac) => {
                let text = reason.to_string();
                if self.said_once.first_time(mac, &text) {
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
}

/// What every request must be before a proxy looks at it: a BOOTREQUEST from
/// Ethernet, relayed (if at all) from the served network, from a client that
/// claims no address off it.
fn check_header(message: &Message, network: Ipv4Network) -> Result<(), DropReason> {
    if message.op != OP_BOOTREQUEST {
        return Err(DropReason::NotARequest { op: message.op });
    }
    if message.htype != HTYPE_ETHERNET || message.hlen != 6 {
        return Err(DropReason::NotEthernet {
            htype: message.htype,
            hlen: message.hlen,
        });
    }
    let mac = message.client_mac();
    if !message.giaddr.is_unspecified() && !network.contains(message.giaddr) {
        return Err(DropReason::ForeignRelay {
            mac,
            giaddr: message.giaddr,
        });
    }
    if !message.ciaddr.is_unspecified() && !network.contains(message.ciaddr) {
        return Err(DropReason::ForeignClientAddress {
            mac,
            ciaddr: message.ciaddr,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "proxy_endpoint_tests.rs"]
mod tests;
