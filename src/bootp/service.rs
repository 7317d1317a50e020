//! The BOOTP/DHCP service thread, the I/O shell around [`Endpoint`]: one socket
//! per served interface (each bound to its device, so a reply leaves where its
//! request came in), the lease file, the HTTP authorisation workers and the mio
//! loop. It reads datagrams into the endpoint and does what the endpoint asks:
//! send, append a lease record (all or nothing, see [`super::lease_file`]),
//! rewrite the lease file, ask the HTTP server, publish, log. Every protocol rule
//! lives in the endpoint.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};

use super::auth_workers::{AuthResult, AuthWorkers};
use super::endpoint::{Endpoint, Event, Transmit};
use super::http_auth::Answer;
use super::lease_file::LeaseJournal;
use super::leases::LeaseRecord;
use super::pxe::HttpServer;
use crate::config::{Access, Config, DnsSetting};
use crate::event::{EventBus, Message};
use crate::net::NetConfig;
use crate::service_loop::{self, WAKER};

pub struct BootpService {
    pub config: Config,
    /// Each served network with its socket, bound to that network's interface.
    pub served: Vec<(NetConfig, mio::net::UdpSocket)>,
    pub poll: Poll,
    /// Wakes the loop: the supervisor's messages, and HTTP authorisation answers.
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    pub events: EventBus,
    /// The lease file, opened and locked before any service started.
    pub journal: LeaseJournal,
    /// The records read from it.
    pub records: Vec<LeaseRecord>,
    /// bootd's HTTP file service, when it runs (`-H`).
    pub http: Option<HttpServer>,
}

/// What the endpoint's requests are carried out with.
struct Shell {
    endpoint: Endpoint,
    sockets: Vec<mio::net::UdpSocket>,
    journal: LeaseJournal,
    lease_file: PathBuf,
    events: EventBus,
    /// With `access = http`: the workers, and where their answers arrive.
    authorisers: Option<(AuthWorkers, Receiver<AuthResult>)>,
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
            journal,
            records,
            http,
        } = self;
        let lease_file = config.bootp.lease_file.clone();
        let resolv_conf = match config.bootp.dns {
            DnsSetting::Auto => std::fs::read_to_string("/etc/resolv.conf").ok(),
            _ => None,
        };
        let (nets, mut sockets): (Vec<NetConfig>, Vec<_>) = served.into_iter().unzip();
        for (index, (net, socket)) in nets.iter().zip(&mut sockets).enumerate() {
            poll.registry()
                .register(socket, Token(index), Interest::READABLE)
                .map_err(|e| format!("cannot watch the BOOTP socket of {}: {e}", net.device))?;
        }
        let authorisers = match config.bootp.access {
            Some(Access::Http) => {
                let (sender, answers) = crossbeam_channel::unbounded();
                let workers = AuthWorkers::new(config.http.max_queries, sender, waker);
                Some((workers, answers))
            }
            _ => None,
        };
        let resolv_conf = resolv_conf.as_deref();
        let mut shell = Shell {
            endpoint: Endpoint::new(&config, &nets, records, resolv_conf, http, log::max_level()),
            sockets,
            journal,
            lease_file,
            events,
            authorisers,
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
                        if service_loop::drain(&inbox).stop {
                            return Ok(());
                        }
                        shell.take_answers();
                    }
                    Token(index) => shell.receive(index, &nets, &mut buf),
                }
            }
            let now = Instant::now();
            if shell.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                shell.endpoint.handle_timeout(now);
                shell.flush();
            }
        }
    }
}

impl Shell {
    /// Reads every datagram waiting on network `index`'s socket.
    fn receive(&mut self, index: usize, nets: &[NetConfig], buf: &mut [u8]) {
        while let Some(socket) = self.sockets.get(index) {
            let (n, peer) = match socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if let Some(net) = nets.get(index) {
                        log::debug!("BOOTP receive error on {}: {e}", net.device);
                    }
                    break;
                }
            };
            let SocketAddr::V4(source) = peer else {
                continue;
            };
            let (now, epoch) = (Instant::now(), unix_seconds());
            self.endpoint
                .handle_datagram(now, epoch, index, source, &buf[..n]);
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
            Event::Persist { id, record } => {
                let result = self.journal.append(&record);
                self.endpoint.handle_persisted(id, result);
            }
            Event::Compact(records) => {
                // A failed rewrite costs nothing but room: the file in use stays.
                if let Err(e) = self.journal.compact(&records) {
                    log::warn!(
                        "cannot rewrite the lease file {}: {e}",
                        self.lease_file.display()
                    );
                }
            }
        }
    }

    fn send(&mut self, transmit: Transmit) {
        let Some(socket) = self.sockets.get(transmit.network) else {
            return;
        };
        match socket.send_to(&transmit.bytes, SocketAddr::V4(transmit.destination)) {
            Ok(_) => {
                if let Some(line) = transmit.sent_line {
                    log::info!("{line}");
                }
            }
            Err(e) => log::warn!(
                "{}: cannot send the reply to {}: {e}",
                transmit.mac,
                transmit.destination
            ),
        }
    }
}

/// The shell's clock in Unix seconds: lease records and the lease file's notes are
/// stamped with it.
pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
