//! The TFTP service thread: a thin mio shell around the sans-IO [`Endpoint`], which
//! makes every protocol decision and holds every transfer. The shell owns the sockets
//! (the TFTP port on each served address, and each transfer's own port, see
//! `tid_socket`), reads datagrams in batches, polls briefly before sleeping
//! (`busy_poll`), opens sources when the endpoint asks and feeds it their bytes
//! (`source`), sends what it hands out, and logs what it says. What leaves from the
//! TFTP port (single-port mode) is sent in batches at the end of each loop turn.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use mio::{Events, Poll, Token, Waker};

use super::busy_poll::BusyPoll;
use super::endpoint::{
    Arrival, Endpoint, Event, OpenError, OpenFailure, Settings, SourceSpec, TransferId, Transmit,
};
use super::file_cache::FileCache;
use super::listener::{self, Listeners};
use super::port::{self, Port};
use super::source::{self, HttpReaders, ReaderCount, Source};
use super::transfer::{Limits, MAX_BLKSIZE};
use crate::batch_receive::{self, ReceiveBatch};
use crate::config::{Config, FilterRule, TftpConfig};
use crate::event::{Event as BusEvent, Message};
use crate::files::root::RootDir;
use crate::files::served::{Served, open_served};
use crate::metrics::{self, Metrics};
use crate::service_loop::{self, WAKER};
use crate::status_page::{InFlightSchedule, Service as StatusService};

/// Listener tokens are 0..; a transfer's token is this plus its id.
const FIRST_TRANSFER_TOKEN: usize = 1 << 32;

pub struct TftpService {
    pub config: TftpConfig,
    /// Where to listen from the start (`[tftp] address`, or detected with `-t`).
    pub address: Option<Ipv4Addr>,
    pub poll: Poll,
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    /// `[filters]` rules, in file order.
    pub filter_rules: Vec<FilterRule>,
    /// The configuration file's directory: a filter's fixed path is taken from it.
    pub config_dir: PathBuf,
    /// Where the endpoint's counts are published for `/metrics`.
    pub metrics: Arc<Metrics>,
}

struct Shell {
    endpoint: Endpoint<Port>,
    /// The root directory, held open (`None` for an http:// root).
    root_dir: Option<RootDir>,
    listeners: Listeners,
    waker: Arc<Waker>,
    files: FileCache,
    readers: HttpReaders,
    batch: ReceiveBatch,
    busy_poll: BusyPoll,
}

impl TftpService {
    pub fn run(self) -> Result<(), String> {
        let TftpService {
            config: c,
            address,
            mut poll,
            waker,
            inbox,
            filter_rules,
            config_dir,
            metrics,
        } = self;
        let Prepared {
            root_dir,
            served,
            settings,
            limits,
        } = prepare(&c, &filter_rules, &config_dir)?;
        let mut shell = Shell {
            endpoint: Endpoint::new(settings, Instant::now()),
            root_dir,
            listeners: Listeners::new(c.port, limits, served, c.single_port),
            waker,
            files: FileCache::default(),
            readers: HttpReaders {
                count: ReaderCount::default(),
                max: c.max_transfers,
                timeout: c.http_timeout,
            },
            batch: ReceiveBatch::default(),
            busy_poll: BusyPoll::new(c.busy_poll),
        };
        if let Some(address) = address {
            shell.listeners.listen(&poll, address)?;
        }
        let mut events = Events::with_capacity(1024);
        let mut told = InFlightSchedule::default();
        loop {
            let start = Instant::now();
            let timeout = shell.endpoint.poll_timeout();
            let timeout = timeout.map(|at| at.saturating_duration_since(start));
            let in_flight = shell.endpoint.transfer_count() > 0;
            let busy_poll = &mut shell.busy_poll;
            let caught = busy_poll.spin(&mut poll, &mut events, start, in_flight, timeout);
            if !caught.map_err(|e| format!("poll failed: {e}"))? {
                service_loop::poll(&mut poll, &mut events, timeout)
                    .map_err(|e| format!("poll failed: {e}"))?;
            }
            // One clock read serves the whole batch of events: timeouts are seconds.
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        let inbox = service_loop::drain(&inbox);
                        if inbox.stop {
                            return Ok(());
                        }
                        if let Some(config) = &inbox.reload {
                            shell.reload(config, now);
                        }
                        for e in inbox.events {
                            if let BusEvent::ServerAddress(a) = e
                                && address.is_none()
                            {
                                shell.listeners.listen(&poll, a)?;
                            }
                        }
                        // HTTP readers wake this loop too.
                        let mut index = 0;
                        while let Some(id) = shell.endpoint.http_transfer(index) {
                            source::supply(&mut shell.endpoint, &mut shell.files, id, now);
                            index += 1;
                        }
                    }
                    Token(i) if i < FIRST_TRANSFER_TOKEN => shell.on_listener(i, now),
                    Token(i) => {
                        let id = TransferId::from_index(i - FIRST_TRANSFER_TOKEN);
                        shell.on_transfer_socket(id, now);
                    }
                }
                shell.flush(&poll, now);
            }
            shell.endpoint.handle_timeout(now);
            shell.flush(&poll, now);
            shell.listeners.send_queued();
            metrics.publish_transfers(metrics::Service::Tftp, shell.endpoint.counts());
            shell.tell_status(&metrics, &mut told, now);
        }
    }
}

/// What the service is configured with, made from the configuration at start and
/// at each reload.
struct Prepared {
    /// The root directory, held open (`None` for an http:// root).
    root_dir: Option<RootDir>,
    /// The root, for the log.
    served: String,
    settings: Settings,
    limits: Limits,
}

/// Opens the root and compiles the filters of `c`; an error names the setting.
fn prepare(
    c: &TftpConfig,
    filter_rules: &[FilterRule],
    config_dir: &std::path::Path,
) -> Result<Prepared, String> {
    let Served {
        root,
        root_dir,
        served,
        filters,
    } = open_served(c.root.clone(), "[tftp] root", filter_rules, config_dir)?;
    let settings = Settings {
        root,
        filters,
        max_transfers: c.max_transfers,
        max_transfers_per_client: c.max_transfers_per_client,
        http_timeout: c.http_timeout,
        single_port: c.single_port,
    };
    let max_blksize = c.max_blocksize.unwrap_or(MAX_BLKSIZE);
    let limits = Limits::new(max_blksize, c.max_windowsize, c.timeout, c.retries)
        .with_max_timeout(c.max_timeout);
    Ok(Prepared {
        root_dir,
        served,
        settings,
        limits,
    })
}

impl Shell {
    /// Gives `/status` the transfers that ended and, when due, those in flight.
    fn tell_status(&mut self, metrics: &Metrics, in_flight: &mut InFlightSchedule, now: Instant) {
        let mut ended = Vec::new();
        while let Some(e) = self.endpoint.poll_ended() {
            ended.push(e);
        }
        let count = self.endpoint.transfer_count();
        let tell = in_flight.due(now, count);
        if ended.is_empty() && !tell {
            return;
        }
        let transfers = tell.then(|| self.endpoint.in_flight());
        metrics.record(|log| {
            for e in ended {
                log.handle_ended(now, e);
            }
            if let Some(transfers) = transfers {
                log.handle_in_flight(StatusService::Tftp, transfers);
            }
        });
    }

    /// SIGHUP's configuration: the endpoint serves new requests with it, and
    /// transfers in flight keep their open files. A root that cannot be opened
    /// keeps the whole old TFTP configuration in force.
    fn reload(&mut self, config: &Config, now: Instant) {
        let prepared = match prepare(&config.tftp, &config.filters, &config.dir) {
            Ok(prepared) => prepared,
            Err(e) => {
                log::error!("reload: {e}; TFTP keeps serving with its old configuration");
                return;
            }
        };
        self.root_dir = prepared.root_dir;
        self.listeners
            .reconfigure(prepared.limits, prepared.served.clone());
        self.readers.max = config.tftp.max_transfers;
        self.readers.timeout = config.tftp.http_timeout;
        self.endpoint.handle_reload(now, prepared.settings);
        log::info!("reload: TFTP serves new requests from {}", prepared.served);
    }

    fn on_listener(&mut self, index: usize, now: Instant) {
        while let Some((arrival, received)) = self.listeners.receive(index) {
            for slot in 0..received {
                let (bytes, Some(peer)) = self.listeners.datagram(slot) else {
                    continue;
                };
                // In single-port mode, an ACK for a transfer: read what it wants next.
                if let Some(id) = self.endpoint.handle_datagram(now, arrival, peer, bytes) {
                    source::supply(&mut self.endpoint, &mut self.files, id, now);
                }
            }
            // A short batch emptied the queue: a later datagram raises a new event.
            if received < listener::RECEIVE_SLOTS {
                break;
            }
        }
    }

    fn on_transfer_socket(&mut self, id: TransferId, now: Instant) {
        while let Some(receiver) = self.endpoint.io(id).and_then(Port::receiver) {
            let received = match self.batch.receive(receiver) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if let Some(port) = self.endpoint.io(id) {
                        log::debug!("{}: receive error: {e}", port.client());
                    }
                    break;
                }
            };
            for slot in 0..received {
                if let (bytes, Some(from)) = self.batch.datagram(slot) {
                    self.endpoint
                        .handle_datagram(now, Arrival::Transfer(id), from, bytes);
                }
            }
            // A short batch emptied the queue: a later datagram raises a new event.
            if received < batch_receive::SLOTS {
                break;
            }
        }
        source::supply(&mut self.endpoint, &mut self.files, id, now);
    }

    /// Sends what the endpoint has to send and does what it asks, until it has nothing.
    fn flush(&mut self, poll: &Poll, now: Instant) {
        loop {
            while let Some(transmit) = self.endpoint.poll_transmit(now) {
                if let Some(Transmit::FromServerPort {
                    local,
                    to,
                    datagram,
                }) = port::send(transmit)
                {
                    self.listeners.queue(local, to, datagram);
                }
            }
            let Some(event) = self.endpoint.poll_event() else {
                return;
            };
            match event {
                Event::Log(level, line) => log::log!(level, "{line}"),
                Event::Received { client, received } => log::trace!("{client}: {received:?}"),
                Event::ReadIndirect { id, path } => {
                    let file = match &self.root_dir {
                        Some(root) => source::read_indirect(root, &path),
                        None => Err(OpenError::not_found("an indirection needs a local root")),
                    };
                    self.endpoint.handle_indirect(now, id, file);
                }
                Event::Open {
                    id,
                    client,
                    local,
                    source,
                    own_port,
                } => match self.open(poll, id, client, local, source, own_port) {
                    Ok((port, size)) => {
                        self.endpoint.handle_source_opened(now, id, port, size);
                        source::supply(&mut self.endpoint, &mut self.files, id, now);
                    }
                    Err(failure) => self.endpoint.handle_open_failed(now, id, failure),
                },
                Event::Closed { io, position } => {
                    io.close(poll).release(&mut self.files, position);
                }
            }
        }
    }

    /// Opens a transfer's source, then its port when it gets one of its own; the size
    /// is a local file's.
    fn open(
        &mut self,
        poll: &Poll,
        id: TransferId,
        client: SocketAddr,
        local: Ipv4Addr,
        spec: SourceSpec,
        own_port: bool,
    ) -> Result<(Port, Option<u64>), OpenFailure> {
        let waker = Arc::clone(&self.waker);
        let wake = move || drop(waker.wake());
        let (files, readers) = (&mut self.files, &self.readers);
        let root = self.root_dir.as_ref();
        let (source, size) = Source::open(spec, root, files, readers, wake)?;
        if !own_port {
            return Ok((Port::on_server_port(client, source), size));
        }
        let token = Token(FIRST_TRANSFER_TOKEN + id.index());
        match Port::open(poll, token, client, local, source) {
            Ok(port) => Ok((port, size)),
            Err((failure, source)) => {
                source.release(&mut self.files, 0);
                Err(failure)
            }
        }
    }
}
