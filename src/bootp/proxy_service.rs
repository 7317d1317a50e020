//! The proxyDHCP service thread, the I/O shell around [`ProxyEndpoint`]: two
//! sockets per served interface (port 67 and the boot server's port 4011, each
//! bound to its device), the HTTP authorisation workers and the mio loop. It
//! reads datagrams into the endpoint and does what the endpoint asks: send, ask
//! the HTTP server, publish, log. There is no lease file: a proxy keeps no lease.
//! Every protocol rule lives in the endpoint.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};

use super::auth_workers::{AuthResult, AuthWorkers};
use super::http_auth::Answer;
use super::proxy_endpoint::{Event, Port, ProxyEndpoint, Transmit};
use super::pxe::HttpServer;
use crate::config::{Access, Config};
use crate::event::{EventBus, Message};
use crate::metrics::Metrics;
use crate::net::NetConfig;
use crate::service_loop::{self, WAKER};

/// One served network and its two sockets.
pub struct ProxySockets {
    pub net: NetConfig,
    /// Port 67 (`[bootp] port`).
    pub dhcp: mio::net::UdpSocket,
    /// Port 4011.
    pub boot_server: mio::net::UdpSocket,
}

pub struct ProxyService {
    pub config: Config,
    pub served: Vec<ProxySockets>,
    pub poll: Poll,
    /// Wakes the loop: the supervisor's messages, and HTTP authorisation answers.
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    pub events: EventBus,
    /// Where the HTTP service answers, when it runs: HTTP boot clients get URLs on it.
    pub http: Option<HttpServer>,
    /// Where the endpoint's counts are published for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// What the endpoint's requests are carried out with.
struct Shell {
    endpoint: ProxyEndpoint,
    served: Vec<ProxySockets>,
    events: EventBus,
    /// With `access = http`: the workers, and where their answers arrive.
    authorisers: Option<(AuthWorkers, Receiver<AuthResult>)>,
    /// Wakes the loop when a worker answers (for workers a reload starts).
    waker: Arc<Waker>,
}

/// The token of network `index`'s socket for `port`, and back.
fn token(index: usize, port: Port) -> Token {
    match port {
        Port::Dhcp => Token(index * 2),
        Port::BootServer => Token(index * 2 + 1),
    }
}

fn socket_of(token: Token) -> (usize, Port) {
    let port = if token.0.is_multiple_of(2) {
        Port::Dhcp
    } else {
        Port::BootServer
    };
    (token.0 / 2, port)
}

impl ProxyService {
    pub fn run(self) -> Result<(), String> {
        let ProxyService {
            config,
            mut served,
            mut poll,
            waker,
            inbox,
            events,
            http,
            metrics,
        } = self;
        for (index, sockets) in served.iter_mut().enumerate() {
            let device = &sockets.net.device;
            poll.registry()
                .register(
                    &mut sockets.dhcp,
                    token(index, Port::Dhcp),
                    Interest::READABLE,
                )
                .map_err(|e| format!("cannot watch the proxyDHCP socket of {device}: {e}"))?;
            poll.registry()
                .register(
                    &mut sockets.boot_server,
                    token(index, Port::BootServer),
                    Interest::READABLE,
                )
                .map_err(|e| format!("cannot watch the PXE boot server socket of {device}: {e}"))?;
        }
        let authorisers = match config.bootp.access {
            Some(Access::Http) => {
                let (sender, answers) = crossbeam_channel::unbounded();
                let workers = AuthWorkers::new(config.http.max_queries, sender, Arc::clone(&waker));
                Some((workers, answers))
            }
            _ => None,
        };
        let nets: Vec<NetConfig> = served.iter().map(|s| s.net.clone()).collect();
        let mut shell = Shell {
            endpoint: ProxyEndpoint::new(&config, &nets, http, log::max_level()),
            served,
            events,
            authorisers,
            waker,
        };
        shell.flush();
        let mut events_buf = Events::with_capacity(64);
        let mut buf = vec![0u8; 65536];
        loop {
            let timeout = shell
                .endpoint
                .poll_timeout()
                .map(|t| t.saturating_duration_since(Instant::now()));
            service_loop::poll(&mut poll, &mut events_buf, timeout)
                .map_err(|e| format!("poll failed: {e}"))?;
            for event in events_buf.iter() {
                match event.token() {
                    WAKER => {
                        let inbox = service_loop::drain(&inbox);
                        if inbox.stop {
                            return Ok(());
                        }
                        if let Some(config) = &inbox.reload {
                            shell.reload(config);
                        }
                        shell.take_answers();
                    }
                    token => {
                        let (index, port) = socket_of(token);
                        shell.receive(index, port, &mut buf);
                    }
                }
            }
            let now = Instant::now();
            if shell.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                shell.endpoint.handle_timeout(now);
                shell.flush();
            }
            metrics.publish_proxy(shell.endpoint.counts());
        }
    }
}

impl Shell {
    /// SIGHUP's configuration: the endpoint answers new requests with it; the
    /// authorisation workers start if `access = http` is new.
    fn reload(&mut self, config: &Config) {
        if config.bootp.access == Some(Access::Http) && self.authorisers.is_none() {
            let (sender, answers) = crossbeam_channel::unbounded();
            let workers =
                AuthWorkers::new(config.http.max_queries, sender, Arc::clone(&self.waker));
            self.authorisers = Some((workers, answers));
        }
        self.endpoint.handle_reload(Instant::now(), config);
        self.flush();
    }

    fn socket(&self, index: usize, port: Port) -> Option<&mio::net::UdpSocket> {
        let sockets = self.served.get(index)?;
        Some(match port {
            Port::Dhcp => &sockets.dhcp,
            Port::BootServer => &sockets.boot_server,
        })
    }

    /// Reads every datagram waiting on that socket.
    fn receive(&mut self, index: usize, port: Port, buf: &mut [u8]) {
        while let Some(socket) = self.socket(index, port) {
            let (n, peer) = match socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if let Some(sockets) = self.served.get(index) {
                        log::debug!("proxyDHCP receive error on {}: {e}", sockets.net.device);
                    }
                    break;
                }
            };
            let SocketAddr::V4(source) = peer else {
                continue;
            };
            self.endpoint
                .handle_datagram(Instant::now(), index, port, source, &buf[..n]);
            self.flush();
        }
    }

    /// Hands the workers' answers to the endpoint.
    fn take_answers(&mut self) {
        let Some((_, answers)) = &self.authorisers else {
            return;
        };
        let answers: Vec<AuthResult> = answers.try_iter().collect();
        for result in answers {
            self.endpoint
                .handle_auth_answer(Instant::now(), result.id, result.answer);
        }
        self.flush();
    }

    /// Does everything the endpoint asks for, until it asks for nothing more.
    fn flush(&mut self) {
        loop {
            if let Some(event) = self.endpoint.poll_event() {
                self.perform(event);
            } else if let Some(transmit) = self.endpoint.poll_transmit() {
                self.send(transmit);
            } else {
                return;
            }
        }
    }

    fn perform(&mut self, event: Event) {
        match event {
            Event::Log { level, line } => log::log!(level, "{line}"),
            Event::Publish(event) => self.events.publish(event),
            Event::Authorise(query) => {
                let id = query.id;
                let queued = self
                    .authorisers
                    .as_mut()
                    .is_some_and(|(workers, _)| workers.submit(query));
                if !queued {
                    let answer = Answer::Failed("too many authorisation queries waiting".into());
                    self.endpoint.handle_auth_answer(Instant::now(), id, answer);
                }
            }
        }
    }

    fn send(&mut self, transmit: Transmit) {
        let Some(socket) = self.socket(transmit.network, transmit.port) else {
            return;
        };
        match socket.send_to(&transmit.bytes, SocketAddr::V4(transmit.destination)) {
            Ok(_) => {
                if let Some(line) = transmit.sent_line {
                    log::info!("{line}");
                }
            }
            Err(e) => log::warn!(
                "{}: cannot send the answer to {}: {e}",
                transmit.mac,
                transmit.destination
            ),
        }
    }
}
