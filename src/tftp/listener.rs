//! The TFTP port on each address served, where requests arrive: its sockets, and the
//! limits of the transfers requested there (the block size fits the interface's MTU).
//! In single-port mode every transfer's datagrams arrive there too, and its blocks
//! leave from there in batches, one system call for all the transfers that moved in
//! a turn of the loop (see `send_batch`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use mio::{Interest, Poll, Token};

use super::endpoint::Arrival;
use super::tid_socket::TidSocket;
use super::transfer::{Datagram, Limits};
use crate::batch_receive::ReceiveBatch;
use crate::send_batch::SendBatch;
use crate::{net, sockets};

/// MTU assumed when listening on 0.0.0.0, where the interface is not known.
const UNKNOWN_INTERFACE_MTU: u32 = 1500;
/// Datagrams taken from a TFTP port per system call: in single-port mode, the ACKs
/// of as many clients.
pub const RECEIVE_SLOTS: usize = 64;

struct Listener {
    address: Ipv4Addr,
    socket: TidSocket,
    limits: Limits,
    /// What leaves from this port at the end of the loop's turn (single-port mode).
    outgoing: SendBatch,
}

/// The listening sockets; the `i`-th is watched with `Token(i)`.
pub struct Listeners {
    port: u16,
    /// The configured limits, before the MTU of an interface lowers the block size.
    limits: Limits,
    /// Transfers talk from these sockets (single-port mode): each gets a twin that
    /// sends (see `tid_socket`).
    single_port: bool,
    listeners: Vec<Listener>,
    /// The datagrams of the last `receive`.
    batch: ReceiveBatch<RECEIVE_SLOTS>,
    /// The root served, for the log.
    root: String,
}

impl Listeners {
    /// Listeners on `port` granting `limits`, serving `root` (for the log); in
    /// single-port mode, every transfer talks from them.
    pub fn new(port: u16, limits: Limits, root: String, single_port: bool) -> Listeners {
        Listeners {
            port,
            limits,
            single_port,
            listeners: Vec::new(),
            batch: ReceiveBatch::default(),
            root,
        }
    }

    /// A reloaded configuration: requests that arrive from now on get `limits`
    /// (each listener's interface MTU still caps the block size); transfers in
    /// flight keep the options they negotiated.
    pub fn reconfigure(&mut self, limits: Limits, root: String) {
        self.limits = limits;
        self.root = root;
        for listener in &mut self.listeners {
            let mtu = if listener.address.is_unspecified() {
                Some(UNKNOWN_INTERFACE_MTU)
            } else {
                mtu_of(listener.address)
            };
            listener.limits = limits.with_mtu(mtu);
        }
    }

    /// Listens on `address`, unless it does already.
    pub fn listen(&mut self, poll: &Poll, address: Ipv4Addr) -> Result<(), String> {
        if self.listeners.iter().any(|l| l.address == address) {
            return Ok(());
        }
        let at = SocketAddrV4::new(address, self.port);
        let mut socket = TidSocket::bind(at, self.single_port)
            .map_err(|e| sockets::explain_bind_error(&format!("TFTP on {at}"), &e))?;
        poll.registry()
            .register(
                socket.receiver_mut(),
                Token(self.listeners.len()),
                Interest::READABLE,
            )
            .map_err(|e| format!("cannot watch the TFTP socket: {e}"))?;
        let mtu = if address.is_unspecified() {
            Some(UNKNOWN_INTERFACE_MTU)
        } else {
            mtu_of(address)
        };
        let limits = self.limits.with_mtu(mtu);
        log::info!(
            "serving TFTP on {at} from {} (block size up to {}, window up to {}{})",
            self.root,
            limits.max_blksize,
            limits.max_windowsize,
            if self.single_port {
                ", every transfer from this port"
            } else {
                ""
            }
        );
        self.listeners.push(Listener {
            address,
            socket,
            limits,
            outgoing: SendBatch::default(),
        });
        Ok(())
    }

    /// Takes the datagrams waiting on the `index`-th socket, up to `RECEIVE_SLOTS`:
    /// where they arrived and how many there are (fewer than `RECEIVE_SLOTS`: the
    /// socket has no more; read them with `datagram`). `None` when there were none.
    pub fn receive(&mut self, index: usize) -> Option<(Arrival, usize)> {
        let listener = self.listeners.get(index)?;
        let received = match self.batch.receive(listener.socket.receiver()) {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => {
                log::debug!("receive error on the TFTP port: {e}");
                return None;
            }
        };
        let arrival = Arrival::Listener {
            address: listener.address,
            limits: listener.limits,
        };
        Some((arrival, received))
    }

    /// Datagram `slot` of the last `receive` and who sent it (`None`: not IPv4).
    pub fn datagram(&self, slot: usize) -> (&[u8], Option<SocketAddr>) {
        self.batch.datagram(slot)
    }

    /// Queues `datagram` for `to`, to leave from the TFTP port on `local` with the
    /// next `send_queued` (at once when the batch is full).
    pub fn queue(&mut self, local: Ipv4Addr, to: SocketAddr, datagram: Datagram<'_>) {
        let Some(listener) = self.listeners.iter_mut().find(|l| l.address == local) else {
            log::debug!("{to}: no TFTP port on {local} to send from");
            return;
        };
        match datagram {
            Datagram::Whole(bytes) => listener.outgoing.push(&[bytes], to),
            Datagram::Data { header, payload } => listener.outgoing.push(&[&header, payload], to),
        };
        if listener.outgoing.is_full() {
            listener.socket.send_batch(&mut listener.outgoing);
        }
    }

    /// Sends what `queue` gathered.
    pub fn send_queued(&mut self) {
        for listener in &mut self.listeners {
            if !listener.outgoing.is_empty() {
                listener.socket.send_batch(&mut listener.outgoing);
            }
        }
    }
}

fn mtu_of(address: Ipv4Addr) -> Option<u32> {
    let addresses = net::interface_addresses().ok()?;
    let label = addresses.iter().find(|a| a.ip == address)?.label.clone();
    net::read_mtu(label.split(':').next().unwrap_or(&label))
}
