//! The TFTP service thread: a mio loop around the listening socket(s).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};

use crate::config::TftpConfig;
use crate::event::{Event, Message};
use crate::service_loop::{self, WAKER};
use crate::sockets;

pub struct TftpService {
    pub config: TftpConfig,
    /// Where to listen from the start (`[tftp] address`, or detected with `-t`).
    pub address: Option<Ipv4Addr>,
    pub poll: Poll,
    pub inbox: Receiver<Message>,
}

impl TftpService {
    pub fn run(mut self) -> Result<(), String> {
        let mut listeners: Vec<(Ipv4Addr, mio::net::UdpSocket)> = Vec::new();
        if let Some(address) = self.address {
            self.listen(&mut listeners, address)?;
        }
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; 65536];
        loop {
            service_loop::poll(&mut self.poll, &mut events, None)
                .map_err(|e| format!("poll failed: {e}"))?;
            for event in events.iter() {
                if event.token() == WAKER {
                    let inbox = service_loop::drain(&self.inbox);
                    if inbox.stop {
                        return Ok(());
                    }
                    for e in inbox.events {
                        if let Event::ServerAddress(address) = e
                            && self.address.is_none()
                        {
                            self.listen(&mut listeners, address)?;
                        }
                    }
                }
            }
            for (_, socket) in &listeners {
                loop {
                    match socket.recv_from(&mut buf) {
                        Ok((n, peer)) => {
                            log::debug!("TFTP datagram of {n} bytes from {peer} dropped")
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => log::debug!("TFTP receive error: {e}"),
                    }
                }
            }
        }
    }

    fn listen(
        &mut self,
        listeners: &mut Vec<(Ipv4Addr, mio::net::UdpSocket)>,
        address: Ipv4Addr,
    ) -> Result<(), String> {
        if listeners.iter().any(|(a, _)| *a == address) {
            return Ok(());
        }
        let at = SocketAddrV4::new(address, self.config.port);
        let mut socket = sockets::udp_socket(at)
            .map_err(|e| sockets::explain_bind_error(&format!("TFTP on {at}"), &e))?;
        self.poll
            .registry()
            .register(&mut socket, Token(listeners.len()), Interest::READABLE)
            .map_err(|e| format!("cannot watch the TFTP socket: {e}"))?;
        log::info!("serving TFTP on {at}");
        listeners.push((address, socket));
        Ok(())
    }
}
