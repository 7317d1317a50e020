//! The BOOTP/DHCP service thread: a mio loop around the served interface's socket.

use std::io;

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};

use crate::event::{Event, EventBus, Message};
use crate::net::NetConfig;
use crate::service_loop::{self, WAKER};

const SOCKET: Token = Token(0);

pub struct BootpService {
    pub net: NetConfig,
    pub socket: mio::net::UdpSocket,
    pub poll: Poll,
    pub inbox: Receiver<Message>,
    pub events: EventBus,
}

impl BootpService {
    pub fn run(mut self) -> Result<(), String> {
        self.poll
            .registry()
            .register(&mut self.socket, SOCKET, Interest::READABLE)
            .map_err(|e| format!("cannot watch the BOOTP socket: {e}"))?;
        self.events.publish(Event::ServerAddress(self.net.server));
        log::info!(
            "serving BOOTP/DHCP on {} ({}/{}) as {}",
            self.net.device,
            self.net.network(),
            self.net.prefix_len,
            self.net.server
        );
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 65536];
        loop {
            service_loop::poll(&mut self.poll, &mut events, None)
                .map_err(|e| format!("poll failed: {e}"))?;
            for event in events.iter() {
                if event.token() == WAKER && service_loop::drain(&self.inbox).stop {
                    return Ok(());
                }
            }
            loop {
                match self.socket.recv_from(&mut buf) {
                    Ok((n, peer)) => log::debug!("BOOTP datagram of {n} bytes from {peer} dropped"),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => log::debug!("BOOTP receive error: {e}"),
                }
            }
        }
    }
}
