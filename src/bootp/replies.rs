//! The replies one turn of the DHCP loop has to send, gathered per socket and sent
//! with one sendmmsg per batch (`crate::send_batch`) rather than one sendto each: in
//! a storm the loop answers dozens of clients per batch it reads, and the system
//! call per reply was half of what the service spent. Each reply's info line is
//! logged once it has left, a failed one is told with its client's MAC, as before.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use super::endpoint::Transmit;
use crate::send_batch::SendBatch;
use crate::types::MacAddr;

/// What is said about one reply once the kernel took it or refused it.
struct Sent {
    mac: MacAddr,
    destination: SocketAddrV4,
    line: Option<String>,
}

/// The replies waiting to leave one socket, in order.
#[derive(Default)]
struct Waiting {
    batch: SendBatch,
    sent: Vec<Sent>,
}

/// The replies waiting to leave each network's socket.
#[derive(Default)]
pub struct Replies {
    per_network: Vec<Waiting>,
}

impl Replies {
    /// Queues `transmit` on its network's socket; a full batch leaves at once.
    pub fn queue<S: AsRawFd>(&mut self, transmit: Transmit, sockets: &[S]) {
        let network = transmit.network;
        let Some(socket) = sockets.get(network) else {
            return;
        };
        if self.per_network.len() <= network {
            self.per_network.resize_with(network + 1, Waiting::default);
        }
        let waiting = &mut self.per_network[network];
        let destination = SocketAddr::V4(transmit.destination);
        waiting.batch.push(&[&transmit.bytes], destination);
        waiting.sent.push(Sent {
            mac: transmit.mac,
            destination: transmit.destination,
            line: transmit.sent_line,
        });
        if waiting.batch.is_full() {
            waiting.send(socket);
        }
    }

    /// Sends every reply queued, from each network's socket.
    pub fn send_all<S: AsRawFd>(&mut self, sockets: &[S]) {
        for (waiting, socket) in self.per_network.iter_mut().zip(sockets) {
            if !waiting.batch.is_empty() {
                waiting.send(socket);
            }
        }
    }
}

impl Waiting {
    /// Sends the whole batch in as few system calls as the kernel allows; a reply
    /// it refuses is told and skipped, as one sendto's failure was.
    fn send(&mut self, socket: &impl AsRawFd) {
        let mut next = 0;
        while next < self.batch.len() {
            match self.batch.send_from(socket, next) {
                Ok(0) => break,
                Ok(left) => {
                    for sent in self.sent.iter().skip(next).take(left) {
                        if let Some(line) = &sent.line {
                            log::info!("{line}");
                        }
                    }
                    next += left;
                }
                Err(e) => {
                    if let Some(sent) = self.sent.get(next) {
                        log::warn!(
                            "{}: cannot send the reply to {}: {e}",
                            sent.mac,
                            sent.destination
                        );
                    }
                    next += 1;
                }
            }
        }
        self.batch.clear();
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;

    fn transmit(network: usize, to: SocketAddr, byte: u8) -> Transmit {
        let SocketAddr::V4(destination) = to else {
            panic!("IPv4 only");
        };
        Transmit {
            network,
            destination,
            bytes: vec![byte; 300],
            mac: MacAddr([2, 0, 0, 0, 0, byte]),
            sent_line: None,
        }
    }

    #[test]
    fn replies_leave_in_order_from_their_networks_socket_when_sent_or_when_a_batch_fills() {
        let sockets: Vec<UdpSocket> = (0..2)
            .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let to = client.local_addr().unwrap();
        let mut replies = Replies::default();
        replies.queue(transmit(1, to, 7), &sockets);
        replies.queue(transmit(0, to, 8), &sockets);
        replies.queue(transmit(5, to, 9), &sockets); // no such network: dropped
        let mut buf = [0u8; 512];
        assert!(
            client.recv_from(&mut buf).is_err(),
            "nothing before send_all"
        );
        replies.send_all(&sockets);
        let mut got = Vec::new();
        while let Ok((n, from)) = client.recv_from(&mut buf) {
            assert_eq!(n, 300);
            got.push((buf[0], from));
        }
        got.sort();
        let from = |i: usize| sockets[i].local_addr().unwrap();
        assert_eq!(got, vec![(7, from(1)), (8, from(0))]);

        // A full batch does not wait for send_all.
        for i in 0..crate::send_batch::MAX_DATAGRAMS {
            replies.queue(transmit(0, to, i as u8), &sockets);
        }
        let mut count = 0;
        while client.recv_from(&mut buf).is_ok() {
            assert_eq!(buf[0], count as u8, "in order");
            count += 1;
        }
        assert_eq!(count, crate::send_batch::MAX_DATAGRAMS);
    }
}
