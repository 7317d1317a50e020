//! The port a transfer talks from (its TID, RFC 1350), held by two sockets; in
//! single-port mode, the TFTP port itself, which every transfer talks from.
//!
//! `receiver` is watched by the service loop and takes every datagram sent to the
//! port; `sender` is never watched and sends the transfer's packets. One socket
//! would do, but each datagram a socket sends, once freed, wakes that socket's
//! waiters (write space), and an epoll registration is such a waiter even when it
//! never asks for writability: two IRQ-disabled lock sections per block, about 4%
//! of the server's CPU at 200 concurrent transfers. A sender nobody watches has no
//! waiters, so the wake-up is skipped.
//!
//! The sender shares the port through SO_REUSEPORT, which lets only sockets of the
//! same user join. The receiver takes its ephemeral port before it sets the option,
//! so the kernel never picks a port another transfer holds. A one-instruction
//! classic BPF program makes the group deliver every datagram to its first member,
//! the receiver. If any of that fails (an old kernel, a filter forbidding the
//! option), the transfer sends from the receiver, as a single socket would.
//!
//! The sender also sets IP_PMTUDISC_DO: datagrams leave with DF set, as they do by
//! default, but since the kernel will never fragment them it gives them IP ID 0
//! (RFC 6864) instead of hashing a fresh one for each, about 4% more. When a route
//! or a learned path MTU is smaller than a block, the send fails with EMSGSIZE; the
//! sender then lets the kernel fragment, as it does by default, and sends again.
//!
//! On the TFTP port the receiver binds before it sets SO_REUSEPORT, as on a
//! transfer's port: a server already holding the port makes the bind fail ("address
//! in use"), and a server started later, which binds without the option, fails.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use super::transfer::Datagram;
use crate::send_batch::SendBatch;
use crate::sockets;

pub struct TidSocket {
    receiver: mio::net::UdpSocket,
    /// `None`: the twin could not be set up; the receiver sends.
    sender: Option<Socket>,
    /// The kernel may fragment what this transfer sends (a block exceeded the MTU).
    fragmenting: bool,
}

impl TidSocket {
    /// Opens the port on `address`, with an ephemeral port number.
    pub fn open(address: Ipv4Addr) -> io::Result<TidSocket> {
        TidSocket::bind(SocketAddrV4::new(address, 0), true)
    }

    /// Opens port `at` (an ephemeral one when its port is 0), with its unwatched
    /// sender when `twin`; without, the port sends from the socket it receives on.
    pub fn bind(at: SocketAddrV4, twin: bool) -> io::Result<TidSocket> {
        let receiver = sockets::udp_socket(at)?;
        let sender = match twin.then(|| twin_sender(&receiver)).transpose() {
            Ok(sender) => sender,
            Err(e) => {
                log::debug!("{at}: sends from its receiving socket: {e}");
                None
            }
        };
        Ok(TidSocket {
            receiver,
            sender,
            fragmenting: false,
        })
    }

    /// The socket to watch for incoming datagrams.
    pub fn receiver(&self) -> &mio::net::UdpSocket {
        &self.receiver
    }

    /// The same, for registering with and deregistering from a poll.
    pub fn receiver_mut(&mut self) -> &mut mio::net::UdpSocket {
        &mut self.receiver
    }

    /// Sends one datagram made of `parts` to `to`.
    pub fn send(&mut self, parts: &[IoSlice<'_>], to: &SockAddr) -> io::Result<usize> {
        match self.send_once(parts, to) {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) && !self.fragmenting => {
                self.fragmenting = true;
                let bytes: usize = parts.iter().map(|p| p.len()).sum();
                log::info!(
                    "{}: a {bytes}-byte datagram does not fit the path MTU; the kernel fragments this transfer's blocks from now on (a smaller [tftp] blocksize avoids fragments)",
                    describe(to)
                );
                set_path_mtu_discovery(&*self.sending(), libc::IP_PMTUDISC_WANT)?;
                self.send_once(parts, to)
            }
            other => other,
        }
    }

    /// Sends a transfer's datagram; DATA goes out from the transfer's buffer, its
    /// header in a second slice.
    pub fn send_datagram(&mut self, datagram: Datagram<'_>, to: &SockAddr) -> io::Result<usize> {
        match datagram {
            Datagram::Whole(bytes) => self.send(&[IoSlice::new(bytes)], to),
            Datagram::Data { header, payload } => {
                self.send(&[IoSlice::new(&header), IoSlice::new(payload)], to)
            }
        }
    }

    /// Sends one datagram in one piece (an ERROR).
    pub fn send_to(&mut self, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.send(&[IoSlice::new(bytes)], &to.into())
    }

    /// Sends every datagram of `batch`, in as few system calls as it allows, and
    /// empties it. A datagram the kernel refuses is lost, as on the wire (a full
    /// buffer, an unreachable client): its transfer's timer sends it again.
    pub fn send_batch(&mut self, batch: &mut SendBatch) {
        let mut next = 0;
        while next < batch.len() {
            match batch.send_from(&*self.sending(), next) {
                Ok(0) => break,
                Ok(sent) => next += sent,
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) && !self.fragmenting => {
                    self.fragmenting = true;
                    let (to, bytes) = batch
                        .describe(next)
                        .unwrap_or((SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), 0));
                    log::info!(
                        "{to}: a {bytes}-byte datagram does not fit the path MTU; the kernel fragments the blocks sent from this port from now on (a smaller [tftp] blocksize avoids fragments)"
                    );
                    if let Err(e) = set_path_mtu_discovery(&*self.sending(), libc::IP_PMTUDISC_WANT)
                    {
                        log::debug!("cannot let the kernel fragment: {e}");
                        next += 1;
                    }
                }
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock
                        && let Some((to, _)) = batch.describe(next)
                    {
                        log::debug!("{to}: send failed: {e}");
                    }
                    next += 1;
                }
            }
        }
        batch.clear();
    }

    fn send_once(&self, parts: &[IoSlice<'_>], to: &SockAddr) -> io::Result<usize> {
        self.sending().send_to_vectored(parts, to)
    }

    fn sending(&self) -> SockRef<'_> {
        match &self.sender {
            Some(sender) => SockRef::from(sender),
            None => SockRef::from(&self.receiver),
        }
    }
}

/// A socket on `receiver`'s port that never receives.
fn twin_sender(receiver: &mio::net::UdpSocket) -> io::Result<Socket> {
    let local = receiver.local_addr()?;
    SockRef::from(receiver).set_reuse_port(true)?;
    let sender = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    sender.set_nonblocking(true)?;
    sender.set_reuse_port(true)?;
    set_path_mtu_discovery(&sender, libc::IP_PMTUDISC_DO)?;
    sender.bind(&local.into())?;
    // The group was formed by this bind, with the receiver first: steer every
    // datagram to member 0.
    deliver_to_first_member(&sender)?;
    Ok(sender)
}

/// SO_ATTACH_REUSEPORT_CBPF with `ret #0`: the group's socket 0 gets every datagram.
fn deliver_to_first_member(socket: &Socket) -> io::Result<()> {
    let mut program = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // The kernel copies the program out of `program` during the call.
    set_option(
        socket,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_REUSEPORT_CBPF,
        &fprog,
    )
}

/// IP_MTU_DISCOVER: `IP_PMTUDISC_DO` (never fragment) or `IP_PMTUDISC_WANT`.
fn set_path_mtu_discovery(socket: &impl AsRawFd, mode: libc::c_int) -> io::Result<()> {
    set_option(socket, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &mode)
}

/// setsockopt(2), for the two options socket2 does not wrap. `T` is the plain C
/// struct or int the option takes.
fn set_option<T>(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the kernel reads size_of::<T>() bytes from `value`, which is borrowed
    // for the whole call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn describe(address: &SockAddr) -> String {
    address
        .as_socket()
        .map_or_else(|| "?".to_string(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn client() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    #[test]
    fn every_datagram_to_the_port_reaches_the_receiver_and_none_the_sender() {
        let tid = TidSocket::open(Ipv4Addr::LOCALHOST).unwrap();
        assert!(tid.sender.is_some(), "the twin sender was not set up");
        let port = tid.receiver().local_addr().unwrap();
        // Many source ports: SO_REUSEPORT's hash alone would send about half of
        // them to the sender.
        let clients: Vec<UdpSocket> = (0..64).map(|_| client()).collect();
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&[i as u8], port).unwrap();
        }
        let mut seen = Vec::new();
        let mut buf = [0u8; 16];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < clients.len() && std::time::Instant::now() < deadline {
            match tid.receiver().recv_from(&mut buf) {
                Ok((1, _)) => seen.push(buf[0]),
                Ok(_) => panic!("unexpected datagram"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<u8>>());
        let sender = tid.sender.as_ref().unwrap();
        let mut spare = [std::mem::MaybeUninit::<u8>::uninit(); 16];
        let error = sender.recv_from(&mut spare).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn blocks_leave_from_the_transfer_port_in_one_datagram() {
        let mut tid = TidSocket::open(Ipv4Addr::LOCALHOST).unwrap();
        let port = tid.receiver().local_addr().unwrap();
        let c = client();
        let to: SockAddr = c.local_addr().unwrap().into();
        let sent = tid
            .send(
                &[IoSlice::new(&[0, 3, 0, 1]), IoSlice::new(b"payload")],
                &to,
            )
            .unwrap();
        assert_eq!(sent, 11);
        let mut buf = [0u8; 64];
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x00\x03\x00\x01payload");
        assert_eq!(from, port);
    }

    #[test]
    fn another_transfer_never_gets_the_same_port() {
        // All open at once, as in a boot storm: each holds its port.
        let open: Vec<TidSocket> = (0..200)
            .map(|_| TidSocket::open(Ipv4Addr::LOCALHOST).unwrap())
            .collect();
        let ports: std::collections::HashSet<u16> = open
            .iter()
            .map(|t| t.receiver().local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), open.len());
    }
}
