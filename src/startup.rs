//! The end of start-up, and the supervisor's duties after it: wait until every
//! service listens, then drop root for good ([`crate::privileges`]) and tell the
//! service manager READY=1; keep its STATUS line current; tell it STOPPING=1.
//!
//! The TFTP, HTTP and NBD services bind their listening sockets in their own
//! threads, as soon as they know their addresses (from the configuration, or from
//! the BOOTP service's announcements). Ports below 1024 need root, so root is kept
//! until every one of them is bound, which is seen by looking at this process's
//! own sockets: the listeners the configuration calls for, each found bound.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::daemon::Plan;
use crate::event::Message;
use crate::metrics::Metrics;
use crate::privileges::{self, RunAs};
use crate::status::StatusLine;
use crate::supervisor::Duties;
use crate::systemd::{self, State};

/// How often the sockets are looked at while start-up waits for them.
const LISTEN_CHECK: Duration = Duration::from_millis(10);
/// How long start-up waits for every listener before it goes on without the
/// missing ones (a late bind below 1024 then fails, and says so).
const LISTEN_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

/// A socket a service is to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub service: &'static str,
    pub protocol: Protocol,
    pub address: SocketAddrV4,
}

/// The listening sockets `plan` makes the services open: each on its configured
/// address, or on every address the BOOTP service serves from.
pub fn expected_listeners(config: &Config, plan: &Plan) -> Vec<Listener> {
    let announced: Vec<Ipv4Addr> = if plan.services.bootp() {
        plan.nets.iter().map(|n| n.server()).collect()
    } else {
        Vec::new()
    };
    let on = |address: Option<Ipv4Addr>| match address {
        Some(address) => vec![address],
        None => announced.clone(),
    };
    let mut listeners = Vec::new();
    let mut add = |service, protocol, addresses: Vec<Ipv4Addr>, port| {
        for address in addresses {
            listeners.push(Listener {
                service,
                protocol,
                address: SocketAddrV4::new(address, port),
            });
        }
    };
    if plan.services.tftp() {
        add(
            "TFTP",
            Protocol::Udp,
            on(plan.tftp_address),
            config.tftp.port,
        );
    }
    if plan.services.http() {
        let port = config.httpd.clone().unwrap_or_default().port;
        add("HTTP", Protocol::Tcp, on(plan.http_address), port);
    }
    if plan.nbd {
        add("NBD", Protocol::Tcp, on(plan.nbd_address), config.nbd.port);
    }
    listeners
}

/// The listeners of `expected` that `bound` does not hold.
fn missing(expected: &[Listener], bound: &[(Protocol, SocketAddrV4)]) -> Vec<Listener> {
    expected
        .iter()
        .filter(|l| !bound.contains(&(l.protocol, l.address)))
        .cloned()
        .collect()
}

/// The IPv4 UDP and TCP sockets this process holds, with their local addresses.
fn bound_sockets() -> io::Result<Vec<(Protocol, SocketAddrV4)>> {
    let mut bound = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // Only sockets: `socket:[inode]`. A descriptor closed meanwhile is skipped.
        let is_socket = std::fs::read_link(entry.path()).is_ok_and(|target| {
            target
                .as_os_str()
                .as_encoded_bytes()
                .starts_with(b"socket:")
        });
        if is_socket && let Some(found) = socket_name(fd) {
            bound.push(found);
        }
    }
    Ok(bound)
}

/// The protocol and local address of the IPv4 socket `fd`.
fn socket_name(fd: libc::c_int) -> Option<(Protocol, SocketAddrV4)> {
    let mut kind: libc::c_int = 0;
    let mut kind_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `kind_len` bytes into `kind`, which we own.
    // `fd` may have been closed, or reused, since it was listed: the call then
    // fails or describes another socket of ours, which only reads.
    let status = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut kind_len,
        )
    };
    let protocol = match (status, kind) {
        (0, libc::SOCK_DGRAM) => Protocol::Udp,
        (0, libc::SOCK_STREAM) => Protocol::Tcp,
        _ => return None,
    };
    // SAFETY: an all-zero sockaddr_in is a valid value of this plain C struct.
    let mut address: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `address`, which we own;
    // a longer (IPv6, Unix) name is cut, and told apart by its family below.
    let status = unsafe {
        libc::getsockname(
            fd,
            (&mut address as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    if status != 0 || i32::from(address.sin_family) != libc::AF_INET {
        return None;
    }
    let ip = Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr));
    Some((
        protocol,
        SocketAddrV4::new(ip, u16::from_be(address.sin_port)),
    ))
}

/// The supervisor's duties from the moment the services are started.
pub struct StartUp {
    /// The listeners not yet seen bound; empty once start-up is over.
    waiting: Vec<Listener>,
    started: Instant,
    /// Whether start-up is over (READY sent, root dropped).
    ready: bool,
    run_as: RunAs,
    /// The status line, and the lease events it counts (only under a service
    /// manager: nobody else reads it).
    status: Option<(StatusLine, Receiver<Message>)>,
    /// Where the file services tell their transfers in flight.
    metrics: Arc<Metrics>,
}

impl StartUp {
    /// Start-up waits for `listeners`, then runs as `run_as`.
    pub fn new(
        now: Instant,
        listeners: Vec<Listener>,
        run_as: RunAs,
        status: Option<(StatusLine, Receiver<Message>)>,
        metrics: Arc<Metrics>,
    ) -> StartUp {
        StartUp {
            waiting: listeners,
            started: now,
            ready: false,
            run_as,
            status,
            metrics,
        }
    }

    /// Once every listener is bound (or the wait is over): drop root, then READY.
    fn finish(&mut self, now: Instant) -> Result<(), String> {
        if !self.waiting.is_empty() {
            let bound =
                bound_sockets().map_err(|e| format!("cannot list this process's sockets: {e}"))?;
            self.waiting = missing(&self.waiting, &bound);
        }
        if !self.waiting.is_empty() {
            if now < self.started + LISTEN_WAIT {
                return Ok(());
            }
            let names: Vec<String> = self
                .waiting
                .iter()
                .map(|l| format!("{} on {}", l.service, l.address))
                .collect();
            log::warn!(
                "still not listening after {} s: {}; start-up goes on without them",
                LISTEN_WAIT.as_secs(),
                names.join(", ")
            );
            self.waiting.clear();
        }
        match &self.run_as {
            RunAs::User(account) => {
                privileges::become_user(account)?;
                log::info!(
                    "running as the user {account} from now on, with no capability: the sockets are open"
                );
            }
            RunAs::Root => log::warn!(
                "running as root for the whole run ([bootd] user = root): every file bootd opens from now on is opened as root"
            ),
            RunAs::AsStarted => {}
        }
        self.ready = true;
        match self.status.as_mut() {
            Some((status, _)) => {
                let text = status.poll_status(now).unwrap_or_else(|| status.text());
                systemd::notify(&[State::Ready, State::Status(&text)]);
            }
            None => systemd::notify(&[State::Ready]),
        }
        Ok(())
    }
}

impl Duties for StartUp {
    fn poll_timeout(&self) -> Option<Instant> {
        if !self.ready {
            return Some(Instant::now() + LISTEN_CHECK);
        }
        self.status.as_ref().and_then(|(s, _)| s.poll_timeout())
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), String> {
        if let Some((status, inbox)) = self.status.as_mut() {
            while let Ok(message) = inbox.try_recv() {
                if let Message::Event(event) = message {
                    status.handle_event(&event);
                }
            }
            if status.sample_due(now) {
                status.handle_transfers(now, self.metrics.transfers_in_flight());
            }
        }
        if !self.ready {
            return self.finish(now);
        }
        if let Some((status, _)) = self.status.as_mut()
            && let Some(text) = status.poll_status(now)
        {
            systemd::notify(&[State::Status(&text)]);
        }
        Ok(())
    }

    fn stopping(&mut self) {
        systemd::notify(&[State::Stopping]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Service, Services};
    use crate::net::NetConfig;
    use crate::types::Ipv4Network;

    fn net(address: [u8; 4]) -> NetConfig {
        NetConfig {
            device: "eth1".into(),
            label: "eth1".into(),
            index: None,
            network: Ipv4Network::new(Ipv4Addr::from(address), 24).unwrap(),
            mtu: None,
        }
    }

    fn plan(services: Services) -> Plan {
        Plan {
            services,
            nets: vec![net([10, 0, 0, 1]), net([10, 0, 1, 1])],
            tftp_address: None,
            nbd: true,
            http_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
            nbd_address: None,
            warnings: Vec::new(),
            run_as: RunAs::AsStarted,
            places: Vec::new(),
            log_file: None,
        }
    }

    fn listener(service: &'static str, protocol: Protocol, address: &str) -> Listener {
        Listener {
            service,
            protocol,
            address: address.parse().unwrap(),
        }
    }

    #[test]
    fn each_service_listens_where_it_is_told_or_on_every_served_address() {
        let config = Config::default();
        let listeners = expected_listeners(&config, &plan(Services::ALL.with_http()));
        assert_eq!(
            listeners,
            vec![
                listener("TFTP", Protocol::Udp, "10.0.0.1:69"),
                listener("TFTP", Protocol::Udp, "10.0.1.1:69"),
                listener("HTTP", Protocol::Tcp, "10.0.0.1:80"),
                listener("NBD", Protocol::Tcp, "10.0.0.1:10809"),
                listener("NBD", Protocol::Tcp, "10.0.1.1:10809"),
            ]
        );
        // Without the BOOTP service nothing is announced: a service listens only
        // where it is told.
        let mut alone = plan(Services::only(Service::Tftp));
        alone.nbd = false;
        alone.tftp_address = Some(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            expected_listeners(&config, &alone),
            vec![listener("TFTP", Protocol::Udp, "10.0.0.1:69")]
        );
    }

    #[test]
    fn a_listener_is_found_by_protocol_and_address() {
        let expected = [
            listener("TFTP", Protocol::Udp, "10.0.0.1:69"),
            listener("HTTP", Protocol::Tcp, "10.0.0.1:80"),
        ];
        let bound = [
            (Protocol::Tcp, "10.0.0.1:69".parse().unwrap()),
            (Protocol::Tcp, "10.0.0.1:80".parse().unwrap()),
        ];
        assert_eq!(missing(&expected, &bound), vec![expected[0].clone()]);
    }

    #[test]
    fn this_processs_sockets_are_seen_with_their_addresses() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let as_v4 = |a: std::net::SocketAddr| match a {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => panic!("IPv4 expected"),
        };
        let bound = bound_sockets().unwrap();
        assert!(bound.contains(&(Protocol::Udp, as_v4(udp.local_addr().unwrap()))));
        assert!(bound.contains(&(Protocol::Tcp, as_v4(tcp.local_addr().unwrap()))));
    }
}
