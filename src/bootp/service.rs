//! The BOOTP/DHCP service thread, the I/O shell around [`Endpoint`]: one socket
//! per served interface (each bound to its device, so a reply leaves where its
//! request came in), the lease file, the HTTP authorisation workers and the mio
//! loop. It reads datagrams into the endpoint and does what the endpoint asks:
//! send, append lease records (all or nothing, see [`super::lease_file`]),
//! rewrite the lease file, ask the HTTP server, publish, log. Every protocol rule
//! lives in the endpoint.
//!
//! One turn of the loop reads each readable socket in batches (recvmmsg) and
//! hands every datagram to the endpoint, sending at once what needs no write
//! (offers, answers to clients already bound); then appends the lease records
//! the turn decided with one write made durable with one fdatasync, and only
//! then sends the replies that depend on them. While serving, the lease file is
//! rewritten by a helper thread; the loop only adds the lines appended meanwhile
//! and renames it. (At start-up, before any client waits, it is rewritten in
//! place.)

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};

use super::auth_workers::{AuthResult, AuthWorkers};
use super::endpoint::{Backlog, Endpoint, Event};
use super::http_auth::Answer;
use super::lease_file::LeaseJournal;
use super::leases::LeaseRecord;
use super::pxe::HttpServer;
use super::replies::Replies;
use crate::batch_receive::{self, ReceiveBatch};
use crate::config::{Access, Config, DnsSetting};
use crate::event::{EventBus, Message};
use crate::metrics::{Metrics, NetworkGauges};
use crate::net::NetConfig;
use crate::service_loop::{self, WAKER};
use crate::status_page::Service as StatusService;

/// Datagrams one recvmmsg takes: a storm's worth read in one system call, so the
/// endpoint sees requests and new clients side by side and answers in one go.
const BATCH: usize = 64;
/// Datagrams read from one socket in one turn before the turn's records are
/// written: a socket that never empties still gets its replies out.
const TURN_DATAGRAMS: usize = 16 * BATCH;
/// The receive queue asked for each socket (the kernel grants at most twice
/// net.core.rmem_max): room for a storm's datagrams while the loop waits for a
/// disk flush or a CPU, and for the endpoint to see the queue fill up and shed
/// new clients before the kernel drops anything.
const RECEIVE_QUEUE: usize = 4 << 20;

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
    /// Where the endpoint's counts are published for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// The lease gauges of the served networks, as last published.
struct LeaseGauges {
    /// Each network's gauges and the bound count last published.
    networks: Vec<(NetworkGauges, u64)>,
    published: Instant,
}

/// How stale the free-address gauges may get while bindings do not change
/// (offers come and go): counting them walks the pool's free ranges.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

impl LeaseGauges {
    fn new(metrics: &Metrics, endpoint: &Endpoint) -> LeaseGauges {
        let networks = endpoint
            .lease_counts()
            .map(|(network, bound, free)| {
                let gauges = metrics.register_network(network);
                gauges.set(bound, free);
                (gauges, bound)
            })
            .collect();
        LeaseGauges {
            networks,
            published: Instant::now(),
        }
    }

    /// Publishes the counts when a network's bindings changed or a while passed.
    fn publish(&mut self, endpoint: &Endpoint) {
        let now = Instant::now();
        let changed = endpoint
            .lease_counts_bound()
            .zip(&self.networks)
            .any(|(bound, (_, last))| bound != *last);
        if !changed && now < self.published + GAUGES_EVERY {
            return;
        }
        self.published = now;
        for ((_, bound, free), (gauges, last)) in endpoint.lease_counts().zip(&mut self.networks) {
            gauges.set(bound, free);
            *last = bound;
        }
    }
}

/// What the endpoint's requests are carried out with.
struct Shell {
    endpoint: Endpoint,
    sockets: Vec<mio::net::UdpSocket>,
    /// Sockets that may hold datagrams not read yet (mio reports edges only).
    readable: Vec<bool>,
    batch: ReceiveBatch<BATCH>,
    /// What the turn has to send, sent at the end of each `flush`.
    replies: Replies,
    journal: LeaseJournal,
    lease_file: PathBuf,
    events: EventBus,
    /// Wakes the loop when a rewrite's copy is written.
    waker: Arc<Waker>,
    /// False until the loop starts: the start-up rewrite is done in place, as no
    /// client waits yet.
    serving: bool,
    /// When the rewrite under way started, and how long it held the loop up.
    rewrite: Option<(Instant, Duration)>,
    /// How long the endpoint took over the last commit's result.
    handled_in: Duration,
    /// With `access = http`: the workers, and where their answers arrive.
    authorisers: Option<(AuthWorkers, Receiver<AuthResult>)>,
}

/// The resolv.conf whose resolvers `dns = auto` hands out: this host's, unless it
/// names only resolvers on this host (systemd-resolved's stub, 127.0.0.53), then
/// the upstream servers systemd-resolved lists.
fn read_resolv_conf() -> Option<String> {
    let host = std::fs::read_to_string("/etc/resolv.conf").ok();
    if host
        .as_deref()
        .is_some_and(|text| !super::server::nameservers(text).is_empty())
    {
        return host;
    }
    std::fs::read_to_string("/run/systemd/resolve/resolv.conf")
        .ok()
        .or(host)
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
            metrics,
        } = self;
        let lease_file = config.bootp.lease_file.clone();
        let resolv_conf = match config.bootp.dns {
            DnsSetting::Auto => read_resolv_conf(),
            _ => None,
        };
        let (nets, mut sockets): (Vec<NetConfig>, Vec<_>) = served.into_iter().unzip();
        for (index, (net, socket)) in nets.iter().zip(&mut sockets).enumerate() {
            poll.registry()
                .register(socket, Token(index), Interest::READABLE)
                .map_err(|e| format!("cannot watch the BOOTP socket of {}: {e}", net.device))?;
            let queue = socket2::SockRef::from(&*socket);
            match queue
                .set_recv_buffer_size(RECEIVE_QUEUE)
                .and_then(|()| queue.recv_buffer_size())
            {
                Ok(size) => log::debug!(
                    "BOOTP socket of {}: a receive queue of {} KiB",
                    net.device,
                    size / 1024
                ),
                Err(e) => log::debug!(
                    "BOOTP socket of {}: the default receive queue ({e})",
                    net.device
                ),
            }
        }
        let authorisers = match config.bootp.access {
            Some(Access::Http) => {
                let (sender, answers) = crossbeam_channel::unbounded();
                let workers = AuthWorkers::new(config.http.max_queries, sender, Arc::clone(&waker));
                Some((workers, answers))
            }
            _ => None,
        };
        let resolv_conf = resolv_conf.as_deref();
        let mut shell = Shell {
            endpoint: Endpoint::new(&config, &nets, records, resolv_conf, http, log::max_level()),
            readable: vec![true; sockets.len()],
            sockets,
            batch: ReceiveBatch::default(),
            replies: Replies::default(),
            journal,
            lease_file,
            events,
            waker,
            serving: false,
            rewrite: None,
            handled_in: Duration::ZERO,
            authorisers,
        };
        shell.flush();
        shell.serving = true;
        let mut gauges = LeaseGauges::new(&metrics, &shell.endpoint);
        let mut events_buf = Events::with_capacity(64);
        loop {
            // A socket left with datagrams in its queue raises no new edge: the
            // next turn starts at once.
            let timeout = if shell.readable.contains(&true) {
                Some(Duration::ZERO)
            } else {
                shell
                    .endpoint
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(Instant::now()))
            };
            service_loop::poll(&mut poll, &mut events_buf, timeout)
                .map_err(|e| format!("poll failed: {e}"))?;
            let mut woken = false;
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
                        woken = true;
                    }
                    Token(index) => {
                        if let Some(readable) = shell.readable.get_mut(index) {
                            *readable = true;
                        }
                    }
                }
            }
            shell.turn(&nets, woken);
            metrics.publish_dhcp(shell.endpoint.counts());
            let mut refused = Vec::new();
            while let Some(refusal) = shell.endpoint.poll_refused() {
                refused.push(refusal);
            }
            let mut phases = Vec::new();
            while let Some(phase) = shell.endpoint.poll_phase() {
                phases.push(phase);
            }
            if !refused.is_empty() || !phases.is_empty() {
                let now = Instant::now();
                metrics.record(|log| {
                    for (mac, reason) in refused {
                        log.handle_refused(now, StatusService::Dhcp, mac.to_string(), reason);
                    }
                    for (at, mac, phase) in phases {
                        log.handle_dhcp_phase(at, mac, phase);
                    }
                });
            }
            gauges.publish(&shell.endpoint);
        }
    }
}

impl Shell {
    /// SIGHUP's configuration: the endpoint answers new requests with it; the
    /// authorisation workers start if `access = http` is new. What the endpoint
    /// decides again (requests parked on a policy that is gone) is sent at the
    /// end of this turn, after its lease records are written.
    fn reload(&mut self, config: &Config) {
        if config.bootp.access == Some(Access::Http) && self.authorisers.is_none() {
            let (sender, answers) = crossbeam_channel::unbounded();
            let workers =
                AuthWorkers::new(config.http.max_queries, sender, Arc::clone(&self.waker));
            self.authorisers = Some((workers, answers));
        }
        self.endpoint.handle_reload(Instant::now(), config);
    }

    /// One turn: reads what the sockets hold, takes the workers' answers (when
    /// they `woke` the loop) and the timers that are due, writes the lease
    /// records all that decided, and sends the replies.
    fn turn(&mut self, nets: &[NetConfig], woke: bool) {
        for index in 0..self.sockets.len() {
            if self.readable.get(index) == Some(&true) {
                self.receive(index, nets);
            }
        }
        // Only answers that woke the loop: one that came in as a deadline passed
        // is too late, as the endpoint's timer says first.
        if woke {
            self.take_answers();
        }
        let now = Instant::now();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.commit();
        self.flush();
        self.finish_rewrite();
    }

    /// Reads the datagrams waiting on network `index`'s socket, up to a turn's
    /// worth, sending after each batch what needs no write.
    fn receive(&mut self, index: usize, nets: &[NetConfig]) {
        let mut taken = 0;
        while taken < TURN_DATAGRAMS {
            let Some(socket) = self.sockets.get(index) else {
                return;
            };
            let received = match self.batch.receive(socket) {
                Ok(received) => received,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock
                        && let Some(net) = nets.get(index)
                    {
                        log::debug!("BOOTP receive error on {}: {e}", net.device);
                    }
                    self.readable[index] = false;
                    return;
                }
            };
            let (now, epoch) = (Instant::now(), unix_seconds());
            // A full batch may have left datagrams behind: what is left in the
            // queue, and how long the batch waited in it, say whether the loop
            // keeps up. A batch with room to spare emptied the queue.
            if received < BATCH {
                self.endpoint.handle_queue_drained(index);
            } else if let Ok(memory) = batch_receive::queue_memory(socket) {
                let waited = batch_receive::last_arrival(socket)
                    .ok()
                    .and_then(|arrival| SystemTime::now().duration_since(arrival).ok());
                let backlog = Backlog {
                    queued: memory.queued,
                    limit: memory.limit,
                    drops: memory.drops,
                    waited,
                };
                self.endpoint.handle_backlog(now, index, backlog);
            }
            for slot in 0..received {
                if let (bytes, Some(SocketAddr::V4(source))) = self.batch.datagram(slot) {
                    self.endpoint
                        .handle_datagram(now, epoch, index, source, bytes);
                }
            }
            self.flush();
            taken += received;
            if received < BATCH {
                self.readable[index] = false;
                return;
            }
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
    }

    /// Writes the turn's lease records: one write, one fdatasync, for all of
    /// them; then the endpoint releases the replies that waited on them, or
    /// none when the write failed.
    fn commit(&mut self) {
        if let Some(commit) = self.endpoint.poll_commit() {
            let result = self.journal.append_all(&commit.records);
            let handling = Instant::now();
            self.endpoint.handle_committed(commit.id, result);
            // Includes taking the records of a rewrite it asks for.
            self.handled_in = handling.elapsed();
        }
    }

    /// Puts a rewritten lease file in place once its copy is written.
    fn finish_rewrite(&mut self) {
        let Some((started, held_up)) = self.rewrite else {
            return;
        };
        let finishing = Instant::now();
        let Some(result) = self.journal.finish_rewrite() else {
            return;
        };
        self.rewrite = None;
        let held_up = held_up + finishing.elapsed();
        let path = self.lease_file.display();
        match result {
            Ok(done) => log::info!(
                "rewrote the lease file {path}: {} bindings in {:.3} s beside the service, which it held up for {:.1} ms (to take the bindings, then to add the {} lines appended meanwhile and rename the file)",
                done.records,
                started.elapsed().as_secs_f64(),
                held_up.as_secs_f64() * 1000.0,
                done.appended_meanwhile
            ),
            // A failed rewrite costs nothing but room: the file in use stays.
            Err(e) => log::warn!("cannot rewrite the lease file {path}: {e}"),
        }
    }

    /// Does everything the endpoint asks for, until it asks for nothing more, then
    /// sends the replies it handed out.
    fn flush(&mut self) {
        loop {
            if let Some(event) = self.endpoint.poll_event() {
                self.perform(event);
            } else if let Some(transmit) = self.endpoint.poll_transmit() {
                self.replies.queue(transmit, &self.sockets);
            } else {
                break;
            }
        }
        self.replies.send_all(&self.sockets);
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
            Event::Compact(records) if !self.serving => {
                // A failed rewrite costs nothing but room: the file in use stays.
                if let Err(e) = self.journal.compact(&records) {
                    log::warn!(
                        "cannot rewrite the lease file {}: {e}",
                        self.lease_file.display()
                    );
                }
            }
            Event::Compact(records) => {
                let starting = Instant::now();
                let waker = Arc::clone(&self.waker);
                let wake = move || {
                    // The loop also finds the copy written at its next turn.
                    let _ = waker.wake();
                };
                match self.journal.start_rewrite(records, wake) {
                    Ok(true) => {
                        let held_up = self.handled_in + starting.elapsed();
                        self.rewrite = Some((starting, held_up));
                    }
                    // One is under way: the next is asked for soon enough.
                    Ok(false) => {}
                    // A failed rewrite costs nothing but room: the file in use stays.
                    Err(e) => log::warn!(
                        "cannot rewrite the lease file {}: {e}",
                        self.lease_file.display()
                    ),
                }
            }
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
