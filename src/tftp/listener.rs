//! The TFTP port on each address served, where requests arrive: its sockets, and the
//! limits of the transfers requested there (the block size fits the interface's MTU).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use mio::{Interest, Poll, Token};

use super::endpoint::Arrival;
use super::transfer::Limits;
use crate::{net, sockets};

/// MTU assumed when listening on 0.0.0.0, where the interface is not known.
const UNKNOWN_INTERFACE_MTU: u32 = 1500;

struct Listener {
    address: Ipv4Addr,
    socket: mio::net::UdpSocket,
    limits: Limits,
}

/// The listening sockets; the `i`-th is watched with `Token(i)`.
pub struct Listeners {
    port: u16,
    /// The configured limits, before the MTU of an interface lowers the block size.
    limits: Limits,
    listeners: Vec<Listener>,
    /// The root served, for the log.
    root: String,
}

impl Listeners {
    /// Listeners on `port` granting `limits`, serving `root` (for the log).
    pub fn new(port: u16, limits: Limits, root: String) -> Listeners {
        Listeners {
            port,
            limits,
            listeners: Vec::new(),
            root,
        }
    }

    /// Listens on `address`, unless it does already.
    pub fn listen(&mut self, poll: &Poll, address: Ipv4Addr) -> Result<(), String> {
        if self.listeners.iter().any(|l| l.address == address) {
            return Ok(());
        }
        let at = SocketAddrV4::new(address, self.port);
        let mut socket = sockets::udp_socket(at)
            .map_err(|e| sockets::explain_bind_error(&format!("TFTP on {at}"), &e))?;
        poll.registry()
            .register(&mut socket, Token(self.listeners.len()), Interest::READABLE)
            .map_err(|e| format!("cannot watch the TFTP socket: {e}"))?;
        let mtu = if address.is_unspecified() {
            Some(UNKNOWN_INTERFACE_MTU)
        } else {
            mtu_of(address)
        };
        let limits = self.limits.with_mtu(mtu);
        log::info!(
            "serving TFTP on {at} from {} (block size up to {}, window up to {})",
            self.root,
            limits.max_blksize,
            limits.max_windowsize
        );
        self.listeners.push(Listener {
            address,
            socket,
            limits,
        });
        Ok(())
    }

    /// The next datagram waiting on the `index`-th socket, in `buffer`: where it
    /// arrived, who sent it and its length. `None` once the socket has no more.
    pub fn receive(&self, index: usize, buffer: &mut [u8]) -> Option<(Arrival, SocketAddr, usize)> {
        let listener = self.listeners.get(index)?;
        let (n, peer) = match listener.socket.recv_from(buffer) {
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
        Some((arrival, peer, n))
    }
}

fn mtu_of(address: Ipv4Addr) -> Option<u32> {
    let addresses = net::interface_addresses().ok()?;
    let label = addresses.iter().find(|a| a.ip == address)?.label.clone();
    net::read_mtu(label.split(':').next().unwrap_or(&label))
}
