//! A transfer's I/O, as the endpoint holds it for the service: the port it talks
//! from (see `tid_socket`; none in single-port mode, where the listener's socket
//! serves every transfer), its client's address as socket calls take it, and its
//! source; and the sending of what the endpoint hands out from a transfer's port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use mio::{Interest, Poll, Token};
use socket2::SockAddr;

use super::endpoint::{OpenFailure, Transmit};
use super::source::Source;
use super::tid_socket::TidSocket;

pub struct Port {
    /// The transfer's own port; `None` when it talks from the TFTP port.
    socket: Option<TidSocket>,
    /// The client as the socket calls take it (made once, used for every block).
    client: SockAddr,
    source: Source,
}

impl AsRef<Source> for Port {
    fn as_ref(&self) -> &Source {
        &self.source
    }
}

impl Port {
    /// Opens a port on `local` for `client`'s transfer from `source`, watched by `poll`
    /// with `token`. On failure the source comes back, for the caller to release.
    pub fn open(
        poll: &Poll,
        token: Token,
        client: SocketAddr,
        local: Ipv4Addr,
        source: Source,
    ) -> Result<Port, (OpenFailure, Source)> {
        let mut socket = match TidSocket::open(local) {
            Ok(socket) => socket,
            Err(e) => return Err((OpenFailure::Socket(e), source)),
        };
        let registry = poll.registry();
        if let Err(e) = registry.register(socket.receiver_mut(), token, Interest::READABLE) {
            return Err((OpenFailure::Watch(e), source));
        }
        Ok(Port {
            socket: Some(socket),
            client: client.into(),
            source,
        })
    }

    /// The I/O of a transfer served from the TFTP port: its source alone.
    pub fn on_server_port(client: SocketAddr, source: Source) -> Port {
        Port {
            socket: None,
            client: client.into(),
            source,
        }
    }

    /// Stops watching the port (it closes when dropped) and gives the source back.
    pub fn close(self, poll: &Poll) -> Source {
        let Port { socket, source, .. } = self;
        if let Some(mut socket) = socket {
            let _ = poll.registry().deregister(socket.receiver_mut());
        }
        source
    }

    /// The socket the transfer's datagrams arrive on (`None`: the TFTP port's).
    pub fn receiver(&self) -> Option<&mio::net::UdpSocket> {
        self.socket.as_ref().map(TidSocket::receiver)
    }

    /// The client, for log lines.
    pub fn client(&self) -> String {
        self.client
            .as_socket()
            .map_or_else(|| "?".into(), |client| client.to_string())
    }
}

/// Sends a datagram the endpoint hands out from a transfer's own port or a new one;
/// gives back one that leaves from the TFTP port, for the listener's batch.
pub fn send(transmit: Transmit<'_, Port>) -> Option<Transmit<'_, Port>> {
    match transmit {
        Transmit::ToClient {
            io,
            client,
            datagram,
        } => match io.socket.as_mut()?.send_datagram(datagram, &io.client) {
            Ok(_) => {}
            // A full socket buffer is a lost datagram: the timer resends it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => log::debug!("{client}: send failed: {e}"),
        },
        Transmit::FromTransfer { io, to, bytes } => {
            let _ = io.socket.as_mut()?.send_to(bytes, to);
        }
        Transmit::FromNewPort { local, to, bytes } => {
            if let Ok(socket) = UdpSocket::bind(SocketAddrV4::new(local, 0)) {
                let _ = socket.send_to(bytes, to);
            }
        }
        other @ Transmit::FromServerPort { .. } => return Some(other),
    }
    None
}
