//! The answer to one BOOTP/DHCP/PXE request, sans-IO: a parsed request with its
//! source and time, the configuration, the served network it arrived on (what the
//! server tells clients there, its leases and its clients' phases) and the access
//! policy in; an [`Outcome`] out: a reply with its destination, or a drop with its
//! reason, plus the lease event to publish, the lease-file record that must be on
//! disk before the reply leaves, and notices worth a log line.
//!
//! [`super::endpoint`] calls [`handle`] and does everything around it: parking
//! requests, holding replies until their record is durable, logging once.
//!
//! Access control plugs in through [`AccessPolicy`]: the handler asks it once per
//! DISCOVER/REQUEST/INFORM/BOOTP request, after the phase gate and before any
//! address is reserved. A policy that must wait for an HTTP worker answers
//! [`AccessVerdict::Pending`]; the handler then returns [`Action::Pending`] with no
//! state changed, and is called again with the same request once the answer is
//! in, the policy then answering from its cache. Retransmissions while pending
//! also reach the policy, which must not start a second query.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use crate::config::{BootFiles, BootpConfig, DnsSetting, MacRule};
use crate::event::{EventKind, LeaseEvent};
use crate::types::{Ipv4Network, MacAddr, Uuid};

use super::leases::{LeaseError, LeaseRecord, LeaseTable, RefuseReason, RequestVerdict};
use super::pxe::{self, BootFileChoice, HttpServer};
use super::recent::RecentMap;
use super::wire::{
    self, CLIENT_PORT, FLAG_BROADCAST, HTYPE_ETHERNET, Message, MessageType, OP_BOOTREPLY,
    OP_BOOTREQUEST, Options, ParseError, SERVER_PORT, tag,
};

/// How long after its ACK a client may decline its address: the ARP probes of
/// RFC 5227 take under 10 s.
pub const DECLINE_WINDOW: Duration = Duration::from_secs(60);

/// What the server tells the clients of one served network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// This server's address there (siaddr, option 54, default router) with the
    /// network's prefix.
    pub network: Ipv4Network,
    /// Option 1: `[bootp] netmask`, else the network's own.
    pub netmask: Ipv4Addr,
    /// Option 28, from the advertised netmask.
    pub broadcast: Ipv4Addr,
    /// Option 6, already resolved (see [`resolve_dns`]; reading resolv.conf is I/O).
    pub dns: Vec<Ipv4Addr>,
}

impl Link {
    /// The link of `network`, advertising `netmask` when one is configured.
    pub fn new(network: Ipv4Network, netmask: Option<Ipv4Addr>, dns: Vec<Ipv4Addr>) -> Link {
        let advertised = netmask
            .and_then(|mask| Ipv4Network::with_netmask(network.address(), mask))
            .unwrap_or(network);
        Link {
            network,
            netmask: netmask.unwrap_or(network.netmask()),
            broadcast: advertised.broadcast(),
            dns,
        }
    }

    /// This server's address on the link.
    pub fn server_ip(&self) -> Ipv4Addr {
        self.network.address()
    }
}

/// The configuration parts the logic reads.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig<'a> {
    pub bootp: &'a BootpConfig,
    pub boot_files: &'a BootFiles,
    pub buggy_clients: &'a [MacRule],
    /// bootd's HTTP file service, when it runs (`-H`): iPXE's `[bootfile] ipxe`
    /// and the files of UEFI HTTP boot clients are URLs on it.
    pub http: Option<HttpServer>,
}

/// The resolvers of a resolv.conf text a client can use: its IPv4 `nameserver`
/// lines, less loopback and unspecified addresses, which name a resolver on this
/// host (systemd-resolved's 127.0.0.53, a local dnsmasq) that a client would look
/// for on itself.
pub fn nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next()?.parse::<Ipv4Addr>().ok())
                .flatten()
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect()
}

/// The addresses for option 6: the configured list, or for `auto` the resolvers
/// `resolv_conf` lists that a client can use ([`nameservers`]), or the server
/// itself when it lists none.
pub fn resolve_dns(
    setting: &DnsSetting,
    resolv_conf: Option<&str>,
    server_ip: Ipv4Addr,
) -> Vec<Ipv4Addr> {
    match setting {
        DnsSetting::None => Vec::new(),
        DnsSetting::List(list) => list.clone(),
        DnsSetting::Auto => {
            let found = nameservers(resolv_conf.unwrap_or(""));
            if found.is_empty() {
                vec![server_ip]
            } else {
                found
            }
        }
    }
}

/// The sname field: the host name, qualified by the domain when there is one
/// (never `host.` with a dangling dot).
pub fn server_name(host: &str, domain: &str) -> String {
    if domain.is_empty() {
        host.to_string()
    } else {
        format!("{host}.{domain}")
    }
}

/// The boot phase of a MAC, as pybootd tracked it: it decides who is served when
/// `allow_simple_dhcp` is off, and which HTTP path an authorisation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Never PXE-booted through bootd.
    Idle,
    /// Its PXE ROM talks to us.
    Pxe,
    /// Its operating system asks for its address after a PXE boot.
    OsDhcp,
}

/// The next phase after a request. Unlike pybootd, a PXE REQUEST from an idle
/// client (bootd restarted between DISCOVER and REQUEST) moves it to PXE too.
pub fn next_phase(current: Phase, pxe: bool, kind: Option<MessageType>) -> Phase {
    let boot_step = matches!(
        kind,
        None | Some(MessageType::Discover) | Some(MessageType::Request)
    );
    match current {
        _ if pxe && boot_step => Phase::Pxe,
        Phase::Pxe if !pxe && kind == Some(MessageType::Request) => Phase::OsDhcp,
        other => other,
    }
}

/// One served network: what the server tells its clients, and what it knows
/// about them (their addresses, and which boot phase each MAC is in).
///
/// Phases and UUIDs are remembered for a bounded number of recent clients: a
/// bound machine's are also in its binding (the lease table's `pxe` and UUID),
/// so forgetting them costs at most a client between its DISCOVER and its first
/// ACK, under a flood of new MACs.
#[derive(Debug, Clone)]
pub struct ServedNetwork {
    pub link: Link,
    pub leases: LeaseTable,
    phases: RecentMap<MacAddr, Phase>,
    /// UUID of each MAC's PXE phase, inherited by its OS requests.
    uuids: RecentMap<MacAddr, Uuid>,
    /// Addresses ACKed to clients not yet using them (no ciaddr in their
    /// REQUEST), and when: only these may be declined.
    acked: RecentMap<MacAddr, (Ipv4Addr, Instant)>,
}

impl ServedNetwork {
    /// A network remembering the phase and UUID of at most `remembered` clients.
    pub fn new(link: Link, leases: LeaseTable, remembered: usize) -> Self {
        ServedNetwork {
            link,
            leases,
            phases: RecentMap::new(remembered),
            uuids: RecentMap::new(remembered),
            acked: RecentMap::new(remembered),
        }
    }

    /// True when `ip` was ACKed to `mac` within [`DECLINE_WINDOW`] of `now`, and
    /// the client has not said since that it uses it (by renewing).
    fn just_acked(&self, mac: MacAddr, ip: Ipv4Addr, now: Instant) -> bool {
        self.acked
            .get(&mac)
            .is_some_and(|(acked, at)| *acked == ip && now < *at + DECLINE_WINDOW)
    }

    /// The MAC's phase; a MAC the lease file says PXE-booted counts as in its OS
    /// phase after a restart.
    pub fn phase(&self, mac: MacAddr) -> Phase {
        self.phases.get(&mac).copied().unwrap_or_else(|| {
            if self.leases.has_pxe_booted(mac) {
                Phase::OsDhcp
            } else {
                Phase::Idle
            }
        })
    }

    /// MACs whose boot phase, whose UUID, and whose fresh ACK are remembered.
    #[cfg(test)]
    pub fn remembered(&self) -> (usize, usize, usize) {
        (self.phases.len(), self.uuids.len(), self.acked.len())
    }

    /// The UUID known for a MAC (from this run or the lease file).
    pub fn known_uuid(&self, mac: MacAddr) -> Option<Uuid> {
        self.uuids
            .get(&mac)
            .copied()
            .or_else(|| self.leases.uuid_of(mac))
    }
}

/// What an access policy is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessQuery {
    pub mac: MacAddr,
    /// From option 97, or inherited from the MAC's PXE phase.
    pub uuid: Option<Uuid>,
    pub pxe: bool,
    pub phase: Phase,
    pub next_phase: Phase,
    /// The address the MAC holds, if any.
    pub address: Option<Ipv4Addr>,
    pub message_type: Option<MessageType>,
}

/// Extra data an allowing policy may attach (HTTP `Client:` / `File:` lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessGrant {
    /// Option 12 for this client.
    pub host_name: Option<String>,
    /// Boot file overriding `[bootfile]` for this client.
    pub boot_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessVerdict {
    Allow(AccessGrant),
    /// Refused; the reason names the rule (entry and line, HTTP status...).
    Deny(String),
    /// The decision is being made elsewhere; ask again later.
    Pending,
}

/// Decides who may boot. Implementations: mac/uuid lists, HTTP delegation.
pub trait AccessPolicy {
    fn check(&mut self, now: Instant, query: &AccessQuery) -> AccessVerdict;
}

/// No `access` option: everyone is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl AccessPolicy for AllowAll {
    fn check(&mut self, _now: Instant, _query: &AccessQuery) -> AccessVerdict {
        AccessVerdict::Allow(AccessGrant::default())
    }
}

/// One request as it came in.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub bytes: &'a [u8],
    /// UDP source of the datagram.
    pub source: SocketAddrV4,
    /// Drives offer holds, quarantines and access decisions.
    pub now: Instant,
    /// Unix seconds: only stamps lease-file records.
    pub epoch: u64,
}

/// Everything one request leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    /// Append to the lease file, flushed, before the reply is sent.
    pub persist: Option<LeaseRecord>,
    pub event: Option<LeaseEvent>,
    pub notices: Vec<Notice>,
}

impl Outcome {
    fn drop(reason: DropReason) -> Self {
        Outcome {
            action: Action::Drop(reason),
            persist: None,
            event: None,
            notices: Vec::new(),
        }
    }

    /// The reply, if there is one.
    #[cfg(test)]
    pub fn reply(&self) -> Option<&Reply> {
        match &self.action {
            Action::Reply(reply) => Some(reply),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Handled, nothing to send (RELEASE, DECLINE).
    Silent,
    /// Ignored, for this reason.
    Drop(DropReason),
    /// Waiting for the access policy about this MAC; [`handle`] the same
    /// datagram again when it has decided.
    Pending {
        mac: MacAddr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub message: Message,
    /// The encoded message, padded to 300 bytes and within the client's limit.
    pub bytes: Vec<u8>,
    pub destination: SocketAddrV4,
}

impl Reply {
    /// The log line for this reply once it is sent.
    pub fn describe(&self) -> String {
        let message = &self.message;
        let destination = self.destination;
        let mac = message.client_mac();
        if message.message_type() == Some(MessageType::Nak) {
            return format!("{mac}: NAK via {destination}");
        }
        let kind = match message.message_type() {
            Some(t) => format!("{t}"),
            None => "BOOTREPLY".into(),
        };
        let address = if message.yiaddr != Ipv4Addr::UNSPECIFIED {
            message.yiaddr
        } else {
            message.ciaddr
        };
        let mut line = format!("{mac}: {kind} {address} via {destination}");
        let file = String::from_utf8_lossy(&message.file);
        let file = file.trim_end_matches('\0');
        if !file.is_empty() {
            line.push_str(&format!(", boot file {file}"));
        }
        if message.options.contains(tag::VENDOR_SPECIFIC) {
            line.push_str(" (PXE)");
        } else if message.options.vendor_class() == Some(pxe::HTTP_CLIENT_CLASS) {
            line.push_str(" (HTTP boot)");
        }
        line
    }
}

/// Things worth a log line that do not change the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `[bootfile]` has no entry for the architecture: `default` was sent.
    DefaultBootFile {
        mac: MacAddr,
        arch: u16,
        file: String,
    },
    /// An iPXE client would have been handed `file`, an iPXE loader, again: it
    /// was sent no boot file instead.
    IpxeLoaderRefused { mac: MacAddr, file: String },
    /// A NAK was sent.
    Nak { mac: MacAddr, reason: RefuseReason },
    /// The client found its address in use; it is quarantined.
    Declined { mac: MacAddr, ip: Ipv4Addr },
    /// Options left out to respect the client's maximum message size.
    OptionsOmitted { mac: MacAddr, tags: Vec<u8> },
    /// The pool was exhausted by offers alone: the oldest, never taken up, went
    /// to this client.
    OfferYielded {
        mac: MacAddr,
        ip: Ipv4Addr,
        from: MacAddr,
        /// Seconds since it was offered.
        age: u64,
    },
    /// The pool was full: a binding unused past its lease went to this client.
    Reclaimed {
        mac: MacAddr,
        ip: Ipv4Addr,
        from: MacAddr,
        /// Seconds since its machine was last seen.
        unseen: u64,
        lease_time: u32,
    },
    /// A client accepted an offer of `ip` that had since been made to another
    /// MAC (the pool was exhausted): the REQUEST wins over that offer.
    OfferReclaimed {
        mac: MacAddr,
        ip: Ipv4Addr,
        from: MacAddr,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::DefaultBootFile { mac, arch, file } => write!(
                f,
                "{mac}: no [bootfile] entry for architecture {arch} ({}), sending default `{file}`",
                pxe::arch_name(*arch)
            ),
            Notice::IpxeLoaderRefused { mac, file } => write!(
                f,
                "{mac}: runs iPXE already, and [bootfile] would hand it {file}, an iPXE loader: sent no boot file, since iPXE would load itself again forever; set [bootfile] ipxe to what iPXE should boot (a script, with -H served over HTTP)"
            ),
            Notice::Nak { mac, reason } => write!(f, "{mac}: DHCPNAK, {reason}"),
            Notice::Declined { mac, ip } => write!(
                f,
                "{mac}: declined {ip} (address in use on the network?); kept out of use for {} s",
                super::leases::DECLINE_QUARANTINE.as_secs()
            ),
            Notice::OptionsOmitted { mac, tags } => write!(
                f,
                "{mac}: options {tags:?} left out to fit the client's maximum message size"
            ),
            Notice::OfferYielded { mac, ip, from, age } => write!(
                f,
                "{mac}: the pool is exhausted by offers: offering {ip}, offered to {from} {age} s ago and not taken up"
            ),
            Notice::Reclaimed {
                mac,
                ip,
                from,
                unseen,
                lease_time,
            } => write!(
                f,
                "{mac}: the pool is full: reclaiming {ip} from {from}, not seen for {unseen} s (its lease was {lease_time} s)"
            ),
            Notice::OfferReclaimed { mac, ip, from } => write!(
                f,
                "{mac}: accepts the offer of {ip}, offered since to {from}: the REQUEST wins"
            ),
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    Malformed(ParseError),
    /// `op` is not BOOTREQUEST (a reply from another server, or noise).
    NotARequest {
        op: u8,
    },
    NotEthernet {
        htype: u8,
        hlen: u8,
    },
    /// `ciaddr` is not on the interface's network: a unicast reply would leave
    /// for a network bootd has no pool for.
    ForeignClientAddress {
        mac: MacAddr,
        ciaddr: Ipv4Addr,
    },
    /// Relayed from a network bootd has no pool for: its pools are those of its
    /// own interfaces, so it would hand out addresses of the wrong network (and a
    /// forged relay address must not receive replies).
    ForeignRelay {
        mac: MacAddr,
        giaddr: Ipv4Addr,
    },
    /// A BOOTREQUEST whose ciaddr is another machine's address, this server's,
    /// or no host's (`owner`: the MAC bound to it or reserving it).
    ClaimsAddress {
        mac: MacAddr,
        ip: Ipv4Addr,
        owner: Option<MacAddr>,
    },
    /// A DHCPDECLINE of an address its MAC was not just given: a client
    /// declines right after the ACK, before it uses the address, so a later
    /// one names a machine that is using it.
    LateDecline {
        mac: MacAddr,
        ip: Ipv4Addr,
    },
    /// A DHCPREQUEST naming no address from a client that holds none.
    RequestWithoutAddress {
        mac: MacAddr,
    },
    /// A message type servers do not receive (OFFER, ACK, NAK, unknown).
    UnexpectedType {
        mac: MacAddr,
        kind: MessageType,
    },
    /// Option 54 names another server: the client chose it.
    ForAnotherServer {
        mac: MacAddr,
        server_id: Ipv4Addr,
    },
    /// `allow_simple_dhcp` is off and this MAC has not PXE-booted through bootd.
    SimpleClientNotAllowed {
        mac: MacAddr,
    },
    Refused {
        mac: MacAddr,
        reason: String,
    },
    PoolExhausted {
        mac: MacAddr,
        pool_count: u32,
    },
    /// A PXE client for which `[bootfile]` has neither an entry nor `default`.
    NoBootFile {
        mac: MacAddr,
        arch: Option<u16>,
    },
    /// An iPXE client whose boot file would be an iPXE loader, with no
    /// `[bootfile] ipxe` to give it instead: answering would make it loop.
    IpxeLoaderRefused {
        mac: MacAddr,
        file: String,
    },
    /// A UEFI HTTP boot client whose boot file is a path, while no HTTP
    /// service runs to turn it into a URL: it could load nothing from bootd.
    HttpBootWithoutHttp {
        mac: MacAddr,
        file: String,
    },
    /// RELEASE or DECLINE for an address the MAC does not hold.
    NotHolder {
        mac: MacAddr,
        kind: MessageType,
        ip: Option<Ipv4Addr>,
    },
}

impl DropReason {
    /// The reason's label in `/metrics` (one of `metrics::DHCP_REFUSALS`).
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Malformed(_) => "malformed",
            DropReason::NotARequest { .. } => "not_a_request",
            DropReason::NotEthernet { .. } => "not_ethernet",
            DropReason::ForeignClientAddress { .. } => "foreign_client_address",
            DropReason::ForeignRelay { .. } => "foreign_relay",
            DropReason::ClaimsAddress { .. } => "claims_address",
            DropReason::LateDecline { .. } => "late_decline",
            DropReason::RequestWithoutAddress { .. } => "request_without_address",
            DropReason::UnexpectedType { .. } => "unexpected_type",
            DropReason::ForAnotherServer { .. } => "for_another_server",
            DropReason::SimpleClientNotAllowed { .. } => "simple_client_not_allowed",
            DropReason::Refused { .. } => "access_refused",
            DropReason::PoolExhausted { .. } => "pool_exhausted",
            DropReason::NoBootFile { .. } => "no_boot_file",
            DropReason::IpxeLoaderRefused { .. } => "ipxe_loader_refused",
            DropReason::HttpBootWithoutHttp { .. } => "http_boot_without_http",
            DropReason::NotHolder { .. } => "not_holder",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Malformed(error) => write!(f, "malformed BOOTP message: {error}"),
            DropReason::NotARequest { op } => write!(f, "op {op} is not a BOOTREQUEST"),
            DropReason::ForeignClientAddress { mac, ciaddr } => write!(
                f,
                "{mac}: ciaddr {ciaddr} is not on this interface's network: not answered"
            ),
            DropReason::ForeignRelay { mac, giaddr } => write!(
                f,
                "{mac}: relayed by {giaddr}, but bootd has no pool for that network (pools serve the networks of bootd's own interfaces): not answered"
            ),
            DropReason::NotEthernet { htype, hlen } => write!(
                f,
                "hardware type {htype} / length {hlen} is not Ethernet (1/6)"
            ),
            DropReason::ClaimsAddress { mac, ip, owner } => match owner {
                Some(owner) => write!(
                    f,
                    "{mac}: claims {ip} (ciaddr), which is {owner}'s: not answered (a spoofed address?)"
                ),
                None => write!(
                    f,
                    "{mac}: claims {ip} (ciaddr), which no client may hold here: not answered"
                ),
            },
            DropReason::LateDecline { mac, ip } => write!(
                f,
                "{mac}: DHCPDECLINE of {ip}, which it was not given in the last {} s (a client declines right after its ACK): ignored (a forged DECLINE?)",
                DECLINE_WINDOW.as_secs()
            ),
            DropReason::RequestWithoutAddress { mac } => write!(
                f,
                "{mac}: DHCPREQUEST names no address (neither option 50 nor ciaddr) and this MAC holds none: not answered"
            ),
            DropReason::UnexpectedType { mac, kind } => {
                write!(f, "{mac}: {kind} is not for a server")
            }
            DropReason::ForAnotherServer { mac, server_id } => {
                write!(f, "{mac}: message for server {server_id}, not us")
            }
            DropReason::SimpleClientNotAllowed { mac } => write!(
                f,
                "{mac}: not PXE-booted through bootd and allow_simple_dhcp is off (idle phase)"
            ),
            DropReason::Refused { mac, reason } => write!(f, "{mac}: refused: {reason}"),
            DropReason::PoolExhausted { mac, pool_count } => write!(
                f,
                "{mac}: no address left: all {pool_count} pool addresses are bound or offered"
            ),
            DropReason::NoBootFile {
                mac,
                arch: Some(arch),
            } => write!(
                f,
                "{mac}: PXE client of architecture {arch} ({}) but [bootfile] has no entry for it and no default",
                pxe::arch_name(*arch)
            ),
            DropReason::NoBootFile { mac, arch: None } => {
                write!(f, "{mac}: PXE client but [bootfile] has no default")
            }
            DropReason::IpxeLoaderRefused { mac, file } => write!(
                f,
                "{mac}: runs iPXE already, and [bootfile] would hand it {file}, an iPXE loader: not answered, since iPXE would load itself again forever; set [bootfile] ipxe to what iPXE should boot (a script, with -H served over HTTP)"
            ),
            DropReason::HttpBootWithoutHttp { mac, file } => write!(
                f,
                "{mac}: UEFI HTTP boot client, but its boot file {file} is no URL and bootd's HTTP service does not run: not answered (run bootd with -H, or give [bootfile] an http:// URL)"
            ),
            DropReason::NotHolder { mac, kind, ip } => match ip {
                Some(ip) => write!(f, "{mac}: {kind} for {ip}, which it does not hold"),
                None => write!(f, "{mac}: {kind} without an address"),
            },
        }
    }
}

/// What kind of answer is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyKind {
    Offer,
    Ack,
    InformAck,
    Bootp,
}

/// Per-request facts gathered once.
struct Client<'a> {
    mac: MacAddr,
    /// Boot firmware: a PXE ROM (iPXE too) or a UEFI HTTP boot client.
    pxe: bool,
    /// A UEFI HTTP boot client (option 60 `HTTPClient`).
    http_boot: bool,
    uuid: Option<Uuid>,
    message: &'a Message,
    source: SocketAddrV4,
}

/// What an answer to an allowed client is built from.
struct Answer<'a> {
    config: &'a ServerConfig<'a>,
    client: &'a Client<'a>,
    grant: &'a AccessGrant,
}

/// Handles one datagram that arrived on `network`; parse errors become drops.
pub fn handle(
    config: &ServerConfig<'_>,
    network: &mut ServedNetwork,
    access: &mut dyn AccessPolicy,
    datagram: &Datagram<'_>,
) -> Outcome {
    let message = match Message::parse(datagram.bytes) {
        Ok(message) => message,
        Err(error) => return Outcome::drop(DropReason::Malformed(error)),
    };
    let message = &message;
    if message.op != OP_BOOTREQUEST {
        return Outcome::drop(DropReason::NotARequest { op: message.op });
    }
    if message.htype != HTYPE_ETHERNET || message.hlen != 6 {
        return Outcome::drop(DropReason::NotEthernet {
            htype: message.htype,
            hlen: message.hlen,
        });
    }
    let mac = message.client_mac();
    network.leases.note_epoch(datagram.epoch);
    let served = network.link.network;
    // A relay agent must sit on the served network (dnsmasq and Kea likewise pick
    // the pool by giaddr, and answer nothing they have no pool for).
    if message.giaddr != Ipv4Addr::UNSPECIFIED && !served.contains(message.giaddr) {
        return Outcome::drop(DropReason::ForeignRelay {
            mac,
            giaddr: message.giaddr,
        });
    }
    // A client address is answered by unicast: it must be on this network too.
    if message.ciaddr != Ipv4Addr::UNSPECIFIED && !served.contains(message.ciaddr) {
        return Outcome::drop(DropReason::ForeignClientAddress {
            mac,
            ciaddr: message.ciaddr,
        });
    }
    let kind = message.message_type();
    if let Some(other @ (MessageType::Offer | MessageType::Ack | MessageType::Nak)) = kind {
        return Outcome::drop(DropReason::UnexpectedType { mac, kind: other });
    }
    if let Some(other @ MessageType::Other(_)) = kind {
        return Outcome::drop(DropReason::UnexpectedType { mac, kind: other });
    }
    if matches!(
        kind,
        Some(MessageType::Request | MessageType::Decline | MessageType::Release)
    ) && let Some(server_id) = message.options.server_id()
        && server_id != network.link.server_ip()
    {
        // The client picked another server's offer: ours is free again.
        network.leases.cancel_offer(mac);
        return Outcome::drop(DropReason::ForAnotherServer { mac, server_id });
    }

    // UEFI HTTP boot clients are firmware too: their operating system is
    // served after them when allow_simple_dhcp is off.
    let http_boot = pxe::is_http_client(&message.options);
    let pxe = http_boot || pxe::is_pxe_client(&message.options);
    let request_uuid = pxe::client_uuid(&message.options);
    let uuid = request_uuid.or_else(|| network.known_uuid(mac));
    let phase = network.phase(mac);
    let next = next_phase(phase, pxe, kind);
    if next == Phase::Idle && !config.bootp.allow_simple_dhcp {
        return Outcome::drop(DropReason::SimpleClientNotAllowed { mac });
    }
    let client = Client {
        mac,
        pxe,
        http_boot,
        uuid,
        message,
        source: datagram.source,
    };
    let (now, epoch) = (datagram.now, datagram.epoch);

    let outcome = match kind {
        Some(MessageType::Release) => release(network, &client, epoch),
        Some(MessageType::Decline) => decline(network, &client, now, epoch),
        _ => {
            // Access control decides before any address is reserved; see the
            // module documentation.
            let query = AccessQuery {
                mac,
                uuid,
                pxe,
                phase,
                next_phase: next,
                address: network.leases.current_address(mac, now),
                message_type: kind,
            };
            let grant = match access.check(now, &query) {
                AccessVerdict::Allow(grant) => grant,
                AccessVerdict::Deny(reason) => {
                    return Outcome::drop(DropReason::Refused { mac, reason });
                }
                AccessVerdict::Pending => {
                    return Outcome {
                        action: Action::Pending { mac },
                        persist: None,
                        event: None,
                        notices: Vec::new(),
                    };
                }
            };
            let answer = Answer {
                config,
                client: &client,
                grant: &grant,
            };
            match kind {
                Some(MessageType::Discover) => discover(&answer, network, now, epoch),
                Some(MessageType::Request) => dhcp_request(&answer, network, now, epoch),
                Some(MessageType::Inform) => inform(&answer, &network.link),
                _ => bootp(&answer, network, now, epoch),
            }
        }
    };
    if matches!(outcome.action, Action::Reply(_) | Action::Silent) {
        network.phases.insert(mac, next);
        if pxe && let Some(uuid) = request_uuid {
            network.uuids.insert(mac, uuid);
        }
    }
    outcome
}

/// The boot file for this client as its reply names it, or the drop when boot
/// firmware can be given none.
///
/// iPXE's own entry becomes a URL on the HTTP service when it runs (iPXE loads
/// scripts and kernels over HTTP far faster than over TFTP); without it the
/// entry goes as written, for TFTP. A UEFI HTTP boot client can load nothing
/// but a URL, so its file always becomes one, and without the HTTP service a
/// file that is no URL leaves it unanswered. Values already written as URLs go
/// as they are.
fn boot_file(
    answer: &Answer<'_>,
    link: &Link,
    notices: &mut Vec<Notice>,
) -> Result<Option<String>, DropReason> {
    let client = answer.client;
    let http = answer.config.http;
    let file = match &answer.grant.boot_file {
        Some(file) => file.clone(),
        None => {
            let options = &client.message.options;
            let choice = pxe::choose_boot_file(
                answer.config.boot_files,
                pxe::client_architecture(options),
                pxe::is_ipxe(options),
            );
            match choice {
                BootFileChoice::None { arch } if client.pxe => {
                    return Err(DropReason::NoBootFile {
                        mac: client.mac,
                        arch,
                    });
                }
                BootFileChoice::None { .. } => return Ok(None),
                BootFileChoice::IpxeLoaderRefused { file } => {
                    notices.push(Notice::IpxeLoaderRefused {
                        mac: client.mac,
                        file,
                    });
                    return Ok(None);
                }
                BootFileChoice::ForIpxe { file } => {
                    return Ok(Some(match http {
                        Some(http) => http.url(&file, link.server_ip()),
                        None => file,
                    }));
                }
                BootFileChoice::DefaultForUnlistedArch { arch, file } => {
                    notices.push(Notice::DefaultBootFile {
                        mac: client.mac,
                        arch,
                        file: file.clone(),
                    });
                    file
                }
                BootFileChoice::ForArch { file, .. } | BootFileChoice::Default { file } => file,
            }
        }
    };
    if !client.http_boot || pxe::is_url(&file) {
        return Ok(Some(file));
    }
    match http {
        Some(http) => Ok(Some(http.url(&file, link.server_ip()))),
        None => Err(DropReason::HttpBootWithoutHttp {
            mac: client.mac,
            file,
        }),
    }
}

/// An address for a client that holds none: a free one, else (offers are no
/// commitments) the one of the oldest offer no one took up, else the one of the
/// binding unused the longest, once unused past its lease.
fn allocate(
    answer: &Answer<'_>,
    network: &mut ServedNetwork,
    requested: Option<Ipv4Addr>,
    now: Instant,
    epoch: u64,
    notices: &mut Vec<Notice>,
) -> Result<Ipv4Addr, DropReason> {
    let client = answer.client;
    let pool_count = match network.leases.offer(client.mac, requested, now) {
        Ok(ip) => return Ok(ip),
        Err(LeaseError::PoolExhausted { pool_count }) => pool_count,
    };
    if let Some((ip, from, since)) = network.leases.take_oldest_offer(client.mac, now) {
        notices.push(Notice::OfferYielded {
            mac: client.mac,
            ip,
            from,
            age: now.saturating_duration_since(since).as_secs(),
        });
        return Ok(ip);
    }
    let lease_time = answer.config.bootp.lease_time;
    if let Some((ip, from, seen)) = network
        .leases
        .reclaim_expired(client.mac, now, epoch, lease_time)
    {
        notices.push(Notice::Reclaimed {
            mac: client.mac,
            ip,
            from,
            unseen: epoch.saturating_sub(seen),
            lease_time,
        });
        return Ok(ip);
    }
    Err(DropReason::PoolExhausted {
        mac: client.mac,
        pool_count,
    })
}

fn discover(answer: &Answer<'_>, network: &mut ServedNetwork, now: Instant, epoch: u64) -> Outcome {
    let client = answer.client;
    let mut notices = Vec::new();
    let file = match boot_file(answer, &network.link, &mut notices) {
        Ok(file) => file,
        Err(reason) => return Outcome::drop(reason),
    };
    let requested = client.message.options.requested_ip();
    let ip = match allocate(answer, network, requested, now, epoch, &mut notices) {
        Ok(ip) => ip,
        Err(reason) => return Outcome::drop(reason),
    };
    let reply = build_reply(
        answer,
        &network.link,
        ReplyKind::Offer,
        ip,
        file.as_deref(),
        &mut notices,
    );
    Outcome {
        action: Action::Reply(reply),
        persist: None,
        event: None,
        notices,
    }
}

fn dhcp_request(
    answer: &Answer<'_>,
    network: &mut ServedNetwork,
    now: Instant,
    epoch: u64,
) -> Outcome {
    let client = answer.client;
    let message = client.message;
    let requested = message
        .options
        .requested_ip()
        .or_else(|| (message.ciaddr != Ipv4Addr::UNSPECIFIED).then_some(message.ciaddr));
    let mut notices = Vec::new();
    let mut verdict = network.leases.request(client.mac, requested, now);
    // SELECTING (option 54 names us): the client accepts an offer of ours. If the
    // pool ran out meanwhile and the address was offered again, the client that
    // asks for it wins over the one that was merely offered it, so a flood of
    // DISCOVERs cannot keep a machine from ever completing its exchange.
    let selecting = message.options.server_id() == Some(network.link.server_ip())
        && message.ciaddr == Ipv4Addr::UNSPECIFIED;
    if selecting
        && let RequestVerdict::Refuse(RefuseReason::Unavailable { requested }) = verdict
        && let Some(from) = network.leases.offered_to(requested, now)
    {
        network.leases.cancel_offer(from);
        verdict = network.leases.request(client.mac, Some(requested), now);
        if verdict == RequestVerdict::Grant(requested) {
            notices.push(Notice::OfferReclaimed {
                mac: client.mac,
                ip: requested,
                from,
            });
        }
    }
    let ip = match verdict {
        RequestVerdict::Grant(ip) => ip,
        // RFC 2131 §4.3.2 gives this request no meaning: ignored, as dnsmasq does.
        RequestVerdict::Refuse(RefuseReason::NoAddress) => {
            return Outcome::drop(DropReason::RequestWithoutAddress { mac: client.mac });
        }
        RequestVerdict::Refuse(reason) => {
            return nak(answer.config, client, &network.link, reason);
        }
    };
    let file = match boot_file(answer, &network.link, &mut notices) {
        Ok(file) => file,
        Err(reason) => return Outcome::drop(reason),
    };
    let persist = network
        .leases
        .confirm(client.mac, ip, epoch, client.pxe, client.uuid);
    // A client that names its address in ciaddr uses it already (RENEWING,
    // REBINDING): it has nothing left to decline.
    if message.ciaddr == Ipv4Addr::UNSPECIFIED {
        network.acked.insert(client.mac, (ip, now));
    } else {
        network.acked.remove(&client.mac);
    }
    let reply = build_reply(
        answer,
        &network.link,
        ReplyKind::Ack,
        ip,
        file.as_deref(),
        &mut notices,
    );
    Outcome {
        action: Action::Reply(reply),
        persist,
        event: Some(event(client, &network.link, ip, file)),
        notices,
    }
}

fn event(client: &Client<'_>, link: &Link, ip: Ipv4Addr, file: Option<String>) -> LeaseEvent {
    LeaseEvent {
        kind: if client.pxe {
            EventKind::Boot
        } else {
            EventKind::Lease
        },
        mac: client.mac,
        uuid: client.uuid,
        ip,
        boot_file: file,
        server_ip: link.server_ip(),
    }
}

fn inform(answer: &Answer<'_>, link: &Link) -> Outcome {
    let mut notices = Vec::new();
    // INFORM asks for configuration only; a boot file is not an error to lack.
    let file = boot_file(answer, link, &mut notices).unwrap_or(None);
    let reply = build_reply(
        answer,
        link,
        ReplyKind::InformAck,
        Ipv4Addr::UNSPECIFIED,
        file.as_deref(),
        &mut notices,
    );
    Outcome {
        action: Action::Reply(reply),
        persist: None,
        event: None,
        notices,
    }
}

fn release(network: &mut ServedNetwork, client: &Client<'_>, epoch: u64) -> Outcome {
    let ip = client.message.ciaddr;
    match network.leases.release(client.mac, ip, epoch) {
        Some(record) => Outcome {
            action: Action::Silent,
            persist: Some(record),
            event: Some(LeaseEvent {
                kind: EventKind::Release,
                mac: client.mac,
                uuid: client.uuid,
                ip,
                boot_file: None,
                server_ip: network.link.server_ip(),
            }),
            notices: Vec::new(),
        },
        None => Outcome::drop(DropReason::NotHolder {
            mac: client.mac,
            kind: MessageType::Release,
            ip: Some(ip),
        }),
    }
}

/// DHCPDECLINE: the client found the address it was just given in use. DHCP
/// has no authentication, so anyone may send one in another machine's name;
/// what bootd can check is that the MAC holds that address on this network and
/// was given it moments ago, before it could use it.
fn decline(network: &mut ServedNetwork, client: &Client<'_>, now: Instant, epoch: u64) -> Outcome {
    let ip = client.message.options.requested_ip();
    if let Some(ip) = ip
        && network.leases.current_address(client.mac, now) == Some(ip)
        && !network.just_acked(client.mac, ip, now)
    {
        return Outcome::drop(DropReason::LateDecline {
            mac: client.mac,
            ip,
        });
    }
    match ip.and_then(|ip| network.leases.decline(client.mac, ip, now, epoch)) {
        Some(record) => Outcome {
            action: Action::Silent,
            notices: vec![Notice::Declined {
                mac: client.mac,
                ip: record.ip,
            }],
            persist: Some(record),
            event: None,
        },
        None => Outcome::drop(DropReason::NotHolder {
            mac: client.mac,
            kind: MessageType::Decline,
            ip,
        }),
    }
}

fn bootp(answer: &Answer<'_>, network: &mut ServedNetwork, now: Instant, epoch: u64) -> Outcome {
    let client = answer.client;
    let mut notices = Vec::new();
    let file = match boot_file(answer, &network.link, &mut notices) {
        Ok(file) => file,
        Err(reason) => return Outcome::drop(reason),
    };
    let message = client.message;
    // RFC 951: a client that knows its address only wants the boot parameters.
    // It is answered, and its address announced, only when the address is its
    // own or no one's: not another machine's, nor one no host may hold.
    if message.ciaddr != Ipv4Addr::UNSPECIFIED {
        let ip = message.ciaddr;
        let link = &network.link;
        let usable = link.network.is_host(ip) && ip != link.server_ip();
        let owner = network
            .leases
            .owner_of(ip, now)
            .filter(|owner| *owner != client.mac);
        if !usable || owner.is_some() {
            return Outcome::drop(DropReason::ClaimsAddress {
                mac: client.mac,
                ip,
                owner,
            });
        }
    }
    let (ip, persist) = if message.ciaddr != Ipv4Addr::UNSPECIFIED {
        (message.ciaddr, None)
    } else {
        let ip = match allocate(answer, network, None, now, epoch, &mut notices) {
            Ok(ip) => ip,
            Err(reason) => return Outcome::drop(reason),
        };
        // BOOTP has no second step: the reply is the binding.
        let persist = network
            .leases
            .confirm(client.mac, ip, epoch, client.pxe, client.uuid);
        (ip, persist)
    };
    let yiaddr = if message.ciaddr != Ipv4Addr::UNSPECIFIED {
        Ipv4Addr::UNSPECIFIED
    } else {
        ip
    };
    let reply = build_reply(
        answer,
        &network.link,
        ReplyKind::Bootp,
        yiaddr,
        file.as_deref(),
        &mut notices,
    );
    Outcome {
        action: Action::Reply(reply),
        persist,
        event: Some(event(client, &network.link, ip, file)),
        notices,
    }
}

/// The size of the BOOTP `file` field (RFC 951).
const FILE_FIELD_LEN: usize = 128;

/// Whether `file` fits the `file` field with its terminating NUL.
fn fits_file_field(file: &str) -> bool {
    file.len() < FILE_FIELD_LEN
}

/// The reply header every answer shares: RFC 2131 table 3.
fn reply_header(request: &Message) -> Message {
    Message {
        op: OP_BOOTREPLY,
        htype: request.htype,
        hlen: request.hlen,
        hops: 0,
        xid: request.xid,
        secs: 0,
        flags: request.flags,
        giaddr: request.giaddr,
        chaddr: request.chaddr,
        ..Message::default()
    }
}

/// The options echoed at the end of every DHCP reply: client identifier
/// (RFC 6842) then relay agent information, last (RFC 3046 §2.2).
fn echo_options(request: &Options, reply: &mut Options) {
    if let Some(client_id) = request.client_id() {
        reply.set(tag::CLIENT_ID, client_id.to_vec());
    }
    if let Some(relay_info) = request.relay_agent_info() {
        reply.set(tag::RELAY_AGENT_INFO, relay_info.to_vec());
    }
}

fn build_reply(
    answer: &Answer<'_>,
    link: &Link,
    kind: ReplyKind,
    yiaddr: Ipv4Addr,
    file: Option<&str>,
    notices: &mut Vec<Notice>,
) -> Reply {
    let (config, client) = (answer.config, answer.client);
    let bootp = config.bootp;
    let server_ip = link.server_ip();
    let asked = &client.message.options;
    let mut message = reply_header(client.message);
    message.ciaddr = match kind {
        ReplyKind::Offer => Ipv4Addr::UNSPECIFIED,
        _ => client.message.ciaddr,
    };
    message.yiaddr = yiaddr;
    message.siaddr = server_ip;
    message.sname = server_name(&bootp.servername, &bootp.domain).into_bytes();
    // A name cut short would name another file: one too long for the field goes
    // in option 67 alone.
    message.file = file
        .filter(|f| fits_file_field(f))
        .unwrap_or("")
        .as_bytes()
        .to_vec();

    let o = &mut message.options;
    // Essentials first, so a small option-57 limit only ever cuts extras.
    let message_type = match kind {
        ReplyKind::Offer => Some(MessageType::Offer),
        ReplyKind::Ack | ReplyKind::InformAck => Some(MessageType::Ack),
        ReplyKind::Bootp => None,
    };
    if let Some(message_type) = message_type {
        o.set(tag::MESSAGE_TYPE, [message_type.to_byte()]);
        o.set(tag::SERVER_ID, server_ip.octets());
    }
    if matches!(kind, ReplyKind::Offer | ReplyKind::Ack) {
        let lease = bootp.lease_time;
        o.set(tag::LEASE_TIME, lease.to_be_bytes());
        // T1/T2 (RFC 2131 §4.4.5: 0.5 and 0.875 of the lease); meaningless for
        // an infinite lease.
        if lease != u32::MAX {
            if asked.requests(tag::RENEWAL_TIME) {
                o.set(tag::RENEWAL_TIME, (lease / 2).to_be_bytes());
            }
            if asked.requests(tag::REBINDING_TIME) {
                let t2 = u64::from(lease) * 7 / 8;
                o.set(
                    tag::REBINDING_TIME,
                    u32::try_from(t2).unwrap_or(u32::MAX).to_be_bytes(),
                );
            }
        }
    }
    o.set(tag::SUBNET_MASK, link.netmask.octets());
    if bootp.send_gateway {
        o.set(tag::ROUTER, bootp.gateway.unwrap_or(server_ip).octets());
    }
    if !link.dns.is_empty() {
        // One TLV listing every server (RFC 2132 §3.8), not one TLV each.
        let list: Vec<u8> = link.dns.iter().flat_map(|a| a.octets()).collect();
        o.set(tag::DNS_SERVERS, list);
    }
    if asked.requests(tag::BROADCAST_ADDRESS) {
        o.set(tag::BROADCAST_ADDRESS, link.broadcast.octets());
    }
    if asked.requests(tag::DOMAIN_NAME) && !bootp.domain.is_empty() {
        o.set(tag::DOMAIN_NAME, bootp.domain.as_bytes().to_vec());
    }
    if asked.requests(tag::HOST_NAME)
        && let Some(name) = answer.grant.host_name.as_deref().filter(|n| !n.is_empty())
    {
        o.set(tag::HOST_NAME, name.as_bytes().to_vec());
    }
    if asked.requests(tag::TFTP_SERVER_NAME) {
        o.set(tag::TFTP_SERVER_NAME, server_ip.to_string().into_bytes());
    }
    // A UEFI HTTP boot client reads its URL from option 67 first; any client
    // gets it there when the `file` field is too short to hold it whole.
    if let Some(file) = file.filter(|f| !f.is_empty())
        && (asked.requests(tag::BOOT_FILE_NAME) || client.http_boot || !fits_file_field(file))
    {
        o.set(tag::BOOT_FILE_NAME, file.as_bytes().to_vec());
    }
    if client.http_boot {
        // EDK2 takes an offer as an HTTP boot offer only when it says
        // HTTPClient; option 43 (PXE's) means nothing to it.
        o.set(tag::VENDOR_CLASS, pxe::HTTP_CLIENT_CLASS.to_vec());
        if let Some(machine_id) = asked.client_machine_id() {
            o.set(tag::CLIENT_UUID, machine_id.to_vec());
        }
    } else if client.pxe {
        // A reply must say PXEClient for the ROM to take it as a PXE offer.
        o.set(tag::VENDOR_CLASS, pxe::PXE_CLIENT_CLASS.to_vec());
        if let Some(machine_id) = asked.client_machine_id() {
            o.set(tag::CLIENT_UUID, machine_id.to_vec());
        }
        o.set(tag::VENDOR_SPECIFIC, pxe::vendor_options_boot_file_only());
    }
    if kind != ReplyKind::Bootp {
        echo_options(asked, o);
    }
    finish(config, client, message, false, notices)
}

fn nak(
    config: &ServerConfig<'_>,
    client: &Client<'_>,
    link: &Link,
    reason: RefuseReason,
) -> Outcome {
    let mut message = reply_header(client.message);
    if message.giaddr != Ipv4Addr::UNSPECIFIED {
        // RFC 2131 §4.3.2: the relay must broadcast the NAK.
        message.flags |= FLAG_BROADCAST;
    }
    let o = &mut message.options;
    o.set(tag::MESSAGE_TYPE, [MessageType::Nak.to_byte()]);
    o.set(tag::SERVER_ID, link.server_ip().octets());
    o.set(tag::MESSAGE, reason.to_string().into_bytes());
    echo_options(&client.message.options, o);
    let mut notices = vec![Notice::Nak {
        mac: client.mac,
        reason,
    }];
    let reply = finish(config, client, message, true, &mut notices);
    Outcome {
        action: Action::Reply(reply),
        persist: None,
        event: None,
        notices,
    }
}

fn finish(
    config: &ServerConfig<'_>,
    client: &Client<'_>,
    mut message: Message,
    is_nak: bool,
    notices: &mut Vec<Notice>,
) -> Reply {
    let emitted = message.emit(wire::max_reply_len(&client.message.options));
    // `Reply::message` describes what is on the wire.
    for omitted in &emitted.omitted {
        message.options.remove(*omitted);
    }
    if !emitted.omitted.is_empty() {
        notices.push(Notice::OptionsOmitted {
            mac: client.mac,
            tags: emitted.omitted,
        });
    }
    let buggy = config
        .buggy_clients
        .iter()
        .any(|rule| rule.allow && rule.matches(client.mac));
    Reply {
        destination: reply_destination(client.message, client.source, buggy, is_nak),
        message,
        bytes: emitted.bytes,
    }
}

/// Where a reply goes (RFC 2131 §4.1): relayed → the relay on port 67; NAK or
/// no client address → 255.255.255.255; client address → unicast to it.
/// Unicast to `yiaddr` before the client has its address would need an ARP
/// entry the socket API cannot make, so that case broadcasts whatever the flag
/// says. `[buggy_clients]` (firmware that ignores everything else) always get
/// the limited broadcast. Client replies go to the request's source port, which
/// is 68 for real clients and lets tools on unprivileged ports get answers.
pub fn reply_destination(
    request: &Message,
    source: SocketAddrV4,
    buggy_client: bool,
    is_nak: bool,
) -> SocketAddrV4 {
    let client_port = match source.port() {
        0 | SERVER_PORT => CLIENT_PORT,
        port => port,
    };
    if buggy_client {
        return SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port);
    }
    if request.giaddr != Ipv4Addr::UNSPECIFIED {
        return SocketAddrV4::new(request.giaddr, SERVER_PORT);
    }
    if is_nak || request.ciaddr == Ipv4Addr::UNSPECIFIED {
        return SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port);
    }
    SocketAddrV4::new(request.ciaddr, client_port)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
