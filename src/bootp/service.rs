//! The BOOTP/DHCP service thread: a mio loop around the served interface's
//! socket. It reads datagrams, hands them to `server::handle`, writes confirmed
//! bindings to the lease file before the ACK leaves, sends replies, publishes
//! events and logs. Every protocol rule lives in `server`.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};

use super::leases::{self, LeaseJournal, LeaseTable};
use super::server::{
    self, Action, AllowAll, DropReason, Interface, Outcome, ServerConfig, ServerState,
};
use super::wire::{MessageType, tag};
use crate::config::{Config, DnsSetting};
use crate::event::{Event, EventBus, Message};
use crate::net::NetConfig;
use crate::service_loop::{self, WAKER};

const SOCKET: Token = Token(0);
/// Rewrite the lease file once it holds this many more lines than bindings.
const COMPACT_AFTER_APPENDS: usize = 10_000;
/// Refusals and warnings already logged (per MAC and text); forgotten past this size.
const REFUSALS_REMEMBERED: usize = 10_000;

pub struct BootpService {
    pub config: Config,
    pub net: NetConfig,
    pub socket: mio::net::UdpSocket,
    pub poll: Poll,
    pub inbox: Receiver<Message>,
    pub events: EventBus,
}

impl BootpService {
    pub fn run(mut self) -> Result<(), String> {
        self.poll
            .registry()
            .register(&mut self.socket, SOCKET, Interest::READABLE)
            .map_err(|e| format!("cannot watch the BOOTP socket: {e}"))?;
        let lease_file = self.config.bootp.lease_file.clone();
        let (mut journal, table) = open_leases(&self.config, &lease_file)?;
        let mut state = ServerState::new(table);
        let resolv_conf = match self.config.bootp.dns {
            DnsSetting::Auto => std::fs::read_to_string("/etc/resolv.conf").ok(),
            _ => None,
        };
        let dns = server::resolve_dns(
            &self.config.bootp.dns,
            resolv_conf.as_deref(),
            self.net.server,
        );
        let server_config = ServerConfig::new(&self.config, &dns);
        let interface = Interface {
            server_ip: self.net.server,
            netmask: self.config.bootp.netmask.unwrap_or(self.net.netmask),
            broadcast: self.net.broadcast,
        };
        self.events.publish(Event::ServerAddress(self.net.server));
        log::info!(
            "serving BOOTP/DHCP on {} ({}/{}) as {}: pool {} + {}, {} bindings in {}",
            self.net.device,
            self.net.network(),
            self.net.prefix_len,
            self.net.server,
            self.config
                .bootp
                .pool_start
                .map_or("-".into(), |p| p.to_string()),
            self.config.bootp.pool_count,
            state.leases.bound_count(),
            lease_file.display()
        );
        let mut access = AllowAll;
        let mut said_once: HashSet<(crate::config::MacAddr, String)> = HashSet::new();
        let mut appended = 0usize;
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 65536];
        loop {
            service_loop::poll(&mut self.poll, &mut events, None)
                .map_err(|e| format!("poll failed: {e}"))?;
            for event in events.iter() {
                if event.token() == WAKER && service_loop::drain(&self.inbox).stop {
                    return Ok(());
                }
            }
            loop {
                let (n, peer) = match self.socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::debug!("BOOTP receive error: {e}");
                        break;
                    }
                };
                let SocketAddr::V4(source) = peer else {
                    continue;
                };
                let now = Instant::now();
                let outcome = server::handle_datagram(
                    &server_config,
                    &mut state,
                    &buf[..n],
                    source,
                    interface,
                    &mut access,
                    now,
                    unix_seconds(),
                );
                if self.apply(outcome, &mut state, &mut journal, &mut said_once, source) {
                    appended += 1;
                }
                if appended >= COMPACT_AFTER_APPENDS {
                    appended = 0;
                    if let Err(e) = journal.compact(&state.leases.records()) {
                        log::warn!(
                            "cannot rewrite the lease file {}: {e}",
                            lease_file.display()
                        );
                    }
                }
            }
        }
    }

    /// Persists, sends, logs and publishes one outcome; true when it appended a
    /// line to the lease file.
    fn apply(
        &self,
        outcome: Outcome,
        state: &mut ServerState,
        journal: &mut LeaseJournal,
        said_once: &mut HashSet<(crate::config::MacAddr, String)>,
        source: SocketAddrV4,
    ) -> bool {
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
        let mut appended = false;
        if let Some(record) = &outcome.persist {
            if let Err(e) = journal.append(record) {
                state.leases.mark_unpersisted(record.mac);
                log::error!(
                    "{}: cannot write the lease file {} ({e}); no answer sent, the client will ask again",
                    record.mac,
                    self.config.bootp.lease_file.display()
                );
                return false;
            }
            appended = true;
        }
        match outcome.action {
            Action::Reply(reply) => {
                let mac = reply.message.client_mac();
                match self
                    .socket
                    .send_to(&reply.bytes, SocketAddr::V4(reply.destination))
                {
                    Ok(_) => log::info!("{}", describe_reply(&reply.message, reply.destination)),
                    Err(e) => {
                        log::warn!("{mac}: cannot send the reply to {}: {e}", reply.destination)
                    }
                }
            }
            Action::Silent | Action::Pending => {}
            Action::Drop(reason) => log_drop(&reason, source, said_once),
        }
        if let Some(event) = outcome.event {
            self.events.publish(Event::Lease(event));
        }
        appended
    }
}

/// Opens (creating it and its directory if needed) and reads the lease file; a bad
/// line is reported with its number and skipped, the rest is served.
fn open_leases(config: &Config, path: &Path) -> Result<(LeaseJournal, LeaseTable), String> {
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
    let (mut journal, text) = LeaseJournal::open(path)
        .map_err(|e| format!("[bootp] lease_file = {}: cannot open: {e}", path.display()))?;
    let (records, errors) = leases::parse_lease_file(&text);
    for (line, error) in &errors {
        log::warn!("{}:{line}: {error}; line ignored", path.display());
    }
    let mut table = LeaseTable::new(
        config.bootp.pool_start,
        config.bootp.pool_count,
        &config.static_dhcp,
    );
    table.load(records);
    // Start from a clean file: one line per binding, bad lines gone.
    if let Err(e) = journal.compact(&table.records()) {
        log::warn!("cannot rewrite the lease file {}: {e}", path.display());
    }
    Ok((journal, table))
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
fn log_drop(
    reason: &DropReason,
    source: SocketAddrV4,
    said_once: &mut HashSet<(crate::config::MacAddr, String)>,
) {
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
