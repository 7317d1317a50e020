//! The NBD service thread: a thin mio shell around the sans-IO [`Endpoint`]. It
//! opens the images, listens on TCP, accepts connections, moves bytes between the
//! sockets and the endpoint, performs the disk operations the endpoint asks for on
//! the [`Disks`] (images and overlays), and logs what the endpoint says.
//!
//! Disk operations run on this thread: images are read through the page cache (or
//! from memory with `copy_to_ram`) and overlays live in memory or in files of
//! their own, so an operation costs a copy, and handing each one to a worker thread
//! would cost more than it saves.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use super::endpoint::{ConnId, Endpoint, Event, ExportSpec, OverlayKey, Settings};
use super::overlay::{DiskError, Disks, Image, OverlayStore};
use crate::config::{NbdConfig, NbdMode};
use crate::event::{Event as BusEvent, Message};
use crate::metrics::{self, Metrics};
use crate::service_loop::{self, WAKER};
use crate::sockets;

/// Listener tokens are 0..; a connection's token is this plus its id.
const FIRST_CONNECTION_TOKEN: usize = 1 << 32;
/// Largest read from a socket at once.
const READ_BUFFER: usize = 256 << 10;
/// Buffers handed to one `writev`.
const WRITE_SLICES: usize = 32;
/// A machine that vanished (powered off, cable pulled) is noticed after about
/// this long without an answer to TCP keepalives, and its overlay's clock starts.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 3;

pub struct NbdService {
    pub config: NbdConfig,
    /// Where to listen from the start (`[nbd] address`, or detected with `-n`);
    /// `None`: on each address the BOOTP side serves from.
    pub address: Option<Ipv4Addr>,
    pub poll: Poll,
    pub waker: Arc<Waker>,
    pub inbox: Receiver<Message>,
    /// Where the endpoint's counts are published for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// A connection's socket, and whether it may have more to read or room to write.
struct Stream {
    socket: TcpStream,
    readable: bool,
    writable: bool,
}

struct Shell {
    endpoint: Endpoint<Stream>,
    disks: Disks<OverlayKey>,
    listeners: Vec<(Ipv4Addr, TcpListener)>,
    port: u16,
    buffer: Vec<u8>,
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    }
}

impl NbdService {
    pub fn run(self) -> Result<(), String> {
        let NbdService {
            config,
            address,
            mut poll,
            waker: _waker,
            inbox,
            metrics,
        } = self;
        let store = match &config.cow_dir {
            Some(dir) => OverlayStore::Dir(dir.clone()),
            None => OverlayStore::Memory,
        };
        let mut images = Vec::new();
        let mut specs = Vec::new();
        for export in &config.exports {
            let image = Image::open(
                &export.path,
                export.mode == NbdMode::Write,
                export.copy_to_ram,
            )
            .map_err(|e| {
                format!(
                    "[nbd] export {}: cannot open {}: {e}",
                    export.name,
                    export.path.display()
                )
            })?;
            let mut line = format!(
                "NBD export {}: {}, {}, {}",
                export.name,
                export.path.display(),
                size_text(image.size()),
                export.mode.as_str()
            );
            if export.mode == NbdMode::Cow {
                let place = match &store {
                    OverlayStore::Memory => "in memory".to_string(),
                    OverlayStore::Dir(dir) => format!("in {}", dir.display()),
                };
                line.push_str(&format!(
                    " (each machine's overlay {place}, up to {}, kept {} s after its last connection)",
                    size_text(config.cow_max_size),
                    config.cow_keep.as_secs()
                ));
            }
            if export.copy_to_ram {
                line.push_str(&format!(
                    ", copied to RAM: {}",
                    size_text(image.ram_bytes())
                ));
            }
            log::info!("{line}");
            specs.push(ExportSpec {
                name: export.name.clone(),
                size: image.size(),
                mode: export.mode,
            });
            images.push(image);
        }
        let settings = Settings {
            exports: specs,
            max_connections: config.max_connections,
            cow_keep: config.cow_keep,
            cow_max_size: config.cow_max_size,
        };
        let mut shell = Shell {
            endpoint: Endpoint::new(settings),
            disks: Disks::new(images, store, config.cow_max_size),
            listeners: Vec::new(),
            port: config.port,
            buffer: vec![0u8; READ_BUFFER],
        };
        if let Some(address) = address {
            shell.listen(&poll, address)?;
        }
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = shell
                .endpoint
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()));
            service_loop::poll(&mut poll, &mut events, timeout)
                .map_err(|e| format!("poll failed: {e}"))?;
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        let inbox = service_loop::drain(&inbox);
                        if inbox.stop {
                            let overlays = shell.disks.overlay_count();
                            if overlays > 0 {
                                log::info!("NBD: stopping; {overlays} overlays deleted");
                            }
                            return Ok(());
                        }
                        for e in inbox.events {
                            match e {
                                BusEvent::ServerAddress(a) if address.is_none() => {
                                    shell.listen(&poll, a)?
                                }
                                BusEvent::ServerAddress(_) => {}
                                BusEvent::Lease(lease) => shell.endpoint.handle_lease(&lease),
                            }
                        }
                    }
                    Token(i) if i < FIRST_CONNECTION_TOKEN => shell.accept(&poll, i, now),
                    Token(i) => {
                        let id = ConnId::from_index(i - FIRST_CONNECTION_TOKEN);
                        if let Some(stream) = shell.endpoint.io_mut(id) {
                            stream.readable |= event.is_readable() || event.is_read_closed();
                            stream.writable |= event.is_writable() || event.is_error();
                        }
                        shell.drive(&poll, id, now);
                    }
                }
            }
            shell.endpoint.handle_timeout(now);
            shell.run_events(&poll, now);
            metrics.publish_transfers(metrics::Service::Nbd, shell.endpoint.counts());
        }
    }
}

impl Shell {
    fn listen(&mut self, poll: &Poll, address: Ipv4Addr) -> Result<(), String> {
        if self.listeners.iter().any(|(a, _)| *a == address) {
            return Ok(());
        }
        let at = SocketAddrV4::new(address, self.port);
        let mut listener = tcp_listener(at)
            .map_err(|e| sockets::explain_bind_error(&format!("NBD on {at}"), &e))?;
        poll.registry()
            .register(
                &mut listener,
                Token(self.listeners.len()),
                Interest::READABLE,
            )
            .map_err(|e| format!("cannot watch the NBD socket: {e}"))?;
        log::info!("serving NBD on {at}");
        self.listeners.push((address, listener));
        Ok(())
    }

    fn accept(&mut self, poll: &Poll, index: usize, now: Instant) {
        loop {
            let Some((_, listener)) = self.listeners.get(index) else {
                return;
            };
            let (socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: the client waits in the backlog.
                    log::warn!("cannot accept an NBD connection: {e}");
                    return;
                }
            };
            // Replies are small and requests pipelined: never wait to fill a segment.
            let _ = socket.set_nodelay(true);
            let keepalive = TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_PROBES);
            let _ = SockRef::from(&socket).set_tcp_keepalive(&keepalive);
            let stream = Stream {
                socket,
                readable: true,
                writable: true,
            };
            let id = match self.endpoint.handle_accept(now, peer, stream) {
                Ok(id) => id,
                Err(_refused) => {
                    self.run_events(poll, now);
                    continue;
                }
            };
            let token = Token(FIRST_CONNECTION_TOKEN + id.index());
            let registered = match self.endpoint.io_mut(id) {
                Some(stream) => poll.registry().register(
                    &mut stream.socket,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                ),
                None => continue,
            };
            if let Err(e) = registered {
                self.endpoint
                    .handle_closed(now, id, &format!("cannot watch the connection: {e}"));
            }
            self.drive(poll, id, now);
        }
    }

    /// Moves bytes both ways and performs what the endpoint asks until the
    /// connection can do no more without a new event.
    fn drive(&mut self, poll: &Poll, id: ConnId, now: Instant) {
        loop {
            let mut progress = self.run_events(poll, now);
            progress |= self.send(id, now);
            progress |= self.receive(id, now);
            if !progress {
                return;
            }
        }
    }

    fn send(&mut self, id: ConnId, now: Instant) -> bool {
        if !self.endpoint.has_output(id) {
            return false;
        }
        let Some((stream, output)) = self.endpoint.io_and_output(id) else {
            return false;
        };
        if !stream.writable {
            return false;
        }
        let slices: Vec<IoSlice<'_>> = output.take(WRITE_SLICES).map(IoSlice::new).collect();
        match stream.socket.write_vectored(&slices) {
            Ok(0) => {
                self.endpoint
                    .handle_closed(now, id, "the connection closed while sending");
                true
            }
            Ok(n) => {
                self.endpoint.handle_transmitted(now, id, n);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream.writable = false;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.endpoint
                    .handle_closed(now, id, &format!("send failed: {e}"));
                true
            }
        }
    }

    fn receive(&mut self, id: ConnId, now: Instant) -> bool {
        let room = self.endpoint.input_room(id).min(self.buffer.len());
        let Some(stream) = self.endpoint.io_mut(id) else {
            return false;
        };
        if !stream.readable || room == 0 {
            return false;
        }
        match stream.socket.read(&mut self.buffer[..room]) {
            Ok(0) => {
                self.endpoint
                    .handle_closed(now, id, "the client closed the connection");
                true
            }
            Ok(n) => {
                let bytes = &self.buffer[..n];
                self.endpoint.handle_input(now, id, bytes);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream.readable = false;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.endpoint
                    .handle_closed(now, id, &format!("receive failed: {e}"));
                true
            }
        }
    }

    /// Does what the endpoint asks; true when it asked anything.
    fn run_events(&mut self, poll: &Poll, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.endpoint.poll_event() {
            any = true;
            match event {
                Event::Log(level, line) => log::log!(level, "{line}"),
                Event::Read {
                    id,
                    disk,
                    offset,
                    len,
                } => {
                    let result = self.disks.read(disk, offset, len);
                    let result = result.map_err(|e| disk_error(&e, "read", offset));
                    self.endpoint.handle_read(now, id, result);
                }
                Event::Write {
                    id,
                    disk,
                    offset,
                    data,
                    fua,
                } => {
                    let result = self.disks.write(disk, offset, &data, fua);
                    let result = result.map_err(|e| disk_error(&e, "write", offset));
                    self.endpoint.handle_done(now, id, result);
                }
                Event::Flush { id, disk } => {
                    let result = self
                        .disks
                        .flush(disk)
                        .map_err(|e| disk_error(&e, "flush", 0));
                    self.endpoint.handle_done(now, id, result);
                }
                Event::Trim {
                    id,
                    disk,
                    offset,
                    len,
                } => {
                    let result = self.disks.trim(disk, offset, len);
                    let result = result.map_err(|e| disk_error(&e, "trim", offset));
                    self.endpoint.handle_done(now, id, result);
                }
                Event::WriteZeroes {
                    id,
                    disk,
                    offset,
                    len,
                    fua,
                } => {
                    let result = self.disks.write_zeroes(disk, offset, len, fua);
                    let result = result.map_err(|e| disk_error(&e, "write zeroes", offset));
                    self.endpoint.handle_done(now, id, result);
                }
                Event::Close { mut io } => {
                    let _ = poll.registry().deregister(&mut io.socket);
                }
                Event::DropOverlay { key, why } => {
                    if let Some(bytes) = self.disks.drop_overlay(&key) {
                        log::info!("{why} ({} KiB)", bytes / 1024);
                    }
                }
            }
        }
        any
    }
}

/// The NBD error for a failed disk operation; an I/O error is logged (a full
/// overlay is logged by the endpoint, once).
fn disk_error(error: &DiskError, what: &str, offset: u64) -> u32 {
    if let DiskError::Io(e) = error {
        log::warn!("NBD: {what} at offset {offset} failed: {e}");
    }
    error.errno()
}

/// A non-blocking TCP listener on `at`. SO_REUSEADDR lets a restarted bootd listen
/// again while old connections linger in TIME_WAIT; it does not let two servers
/// share the port.
fn tcp_listener(at: SocketAddrV4) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(at).into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}
