//! Receiving several datagrams in one system call (recvmmsg(2)).
//!
//! mio registers sockets edge-triggered, so a readable socket has to be read until
//! it reports `WouldBlock`: with `recv_from` that costs one extra, empty system call
//! per event, a third of the calls a lock-step TFTP block needs. `recvmmsg` with
//! room for several datagrams answers both questions at once: when it returns fewer
//! than it had room for, the queue was empty, and any datagram arriving later raises
//! a new edge. Neither mio nor socket2 wraps recvmmsg, so this calls it through libc.
//!
//! A socket where one client's datagrams arrive takes [`ReceiveBatch`] (a few slots);
//! a socket that many clients share, such as the TFTP port when every transfer is
//! served from it, takes a [`ReceiveBatchOf`] with more, so one call serves them all.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// Datagrams taken per call by a [`ReceiveBatch`]. One event usually stands for one
/// datagram (an ACK); four leaves room for a burst without much memory.
pub const SLOTS: usize = 4;
/// Each slot holds the largest UDP payload, so nothing a client sends is cut.
/// The pages are only touched as far as datagrams fill them.
const SLOT_BYTES: usize = 65536;

/// Buffers for one batch of up to `SLOTS` datagrams, reused from call to call.
pub type ReceiveBatch = ReceiveBatchOf<SLOTS>;

/// Buffers for one batch of up to `N` datagrams, reused from call to call.
pub struct ReceiveBatchOf<const N: usize> {
    buffers: Vec<u8>,
    lengths: [usize; N],
    senders: [Option<SocketAddr>; N],
}

impl<const N: usize> Default for ReceiveBatchOf<N> {
    fn default() -> Self {
        ReceiveBatchOf {
            buffers: vec![0; N * SLOT_BYTES],
            lengths: [0; N],
            senders: [None; N],
        }
    }
}

impl<const N: usize> ReceiveBatchOf<N> {
    /// Takes up to `N` datagrams from a non-blocking IPv4 socket. `Ok(n)` with
    /// `n < N` means the socket had no more; `WouldBlock` means it had none.
    pub fn receive(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        let mut addresses = [MaybeUninit::<libc::sockaddr_in>::zeroed(); N];
        let mut vectors: [libc::iovec; N] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        for (vector, chunk) in vectors
            .iter_mut()
            .zip(self.buffers.chunks_exact_mut(SLOT_BYTES))
        {
            vector.iov_base = chunk.as_mut_ptr().cast();
            vector.iov_len = chunk.len();
        }
        // SAFETY: mmsghdr is plain data; all-zero is a valid value for each field.
        let mut headers: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
        for ((header, vector), address) in headers
            .iter_mut()
            .zip(vectors.iter_mut())
            .zip(addresses.iter_mut())
        {
            header.msg_hdr.msg_name = address.as_mut_ptr().cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            header.msg_hdr.msg_iov = vector;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live iovec over its own SLOT_BYTES of
        // `self.buffers` and at its own sockaddr_in, all outliving the call; the
        // kernel writes at most the lengths given.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                N as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = (received as usize).min(N);
        for slot in 0..received {
            let header = &headers[slot];
            self.lengths[slot] = header.msg_len as usize;
            self.senders[slot] =
                if header.msg_hdr.msg_namelen as usize >= size_of::<libc::sockaddr_in>() {
                    // SAFETY: the kernel filled in a sockaddr_in of the length it reported.
                    let address = unsafe { addresses[slot].assume_init() };
                    (address.sin_family == libc::AF_INET as libc::sa_family_t).then(|| {
                        SocketAddr::V4(SocketAddrV4::new(
                            Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr)),
                            u16::from_be(address.sin_port),
                        ))
                    })
                } else {
                    None
                };
        }
        Ok(received)
    }

    /// Datagram `slot` of the last batch and who sent it (`None`: not IPv4).
    pub fn datagram(&self, slot: usize) -> (&[u8], Option<SocketAddr>) {
        let start = slot * SLOT_BYTES;
        let length = self.lengths.get(slot).copied().unwrap_or(0);
        (
            self.buffers
                .get(start..start + length.min(SLOT_BYTES))
                .unwrap_or_default(),
            self.senders.get(slot).copied().flatten(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn pair() -> (UdpSocket, UdpSocket) {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        (receiver, sender)
    }

    #[test]
    fn an_empty_socket_would_block() {
        let (receiver, _) = pair();
        let error = ReceiveBatch::default().receive(&receiver).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn queued_datagrams_come_in_order_with_their_senders() {
        let (receiver, sender) = pair();
        let to = receiver.local_addr().unwrap();
        let payloads: [&[u8]; 3] = [b"\x00\x04\x00\x01", b"", &[0xab; 9000]];
        for p in payloads {
            sender.send_to(p, to).unwrap();
        }
        let mut batch = ReceiveBatch::default();
        // Loopback delivers synchronously: all three are queued now.
        assert_eq!(batch.receive(&receiver).unwrap(), 3);
        for (slot, p) in payloads.iter().enumerate() {
            let (bytes, from) = batch.datagram(slot);
            assert_eq!(bytes, *p);
            assert_eq!(from, Some(sender.local_addr().unwrap()));
        }
        assert_eq!(
            batch.receive(&receiver).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn a_full_batch_leaves_the_rest_for_the_next_call() {
        let (receiver, sender) = pair();
        let to = receiver.local_addr().unwrap();
        for i in 0..SLOTS + 2 {
            sender.send_to(&[i as u8], to).unwrap();
        }
        let mut batch = ReceiveBatch::default();
        assert_eq!(batch.receive(&receiver).unwrap(), SLOTS);
        assert_eq!(batch.datagram(SLOTS - 1).0, [(SLOTS - 1) as u8]);
        assert_eq!(batch.receive(&receiver).unwrap(), 2);
        assert_eq!(batch.datagram(1).0, [(SLOTS + 1) as u8]);
    }

    #[test]
    fn the_largest_udp_payload_arrives_whole() {
        let (receiver, sender) = pair();
        let big = vec![0x5a; 65507];
        sender
            .send_to(&big, receiver.local_addr().unwrap())
            .unwrap();
        let mut batch = ReceiveBatch::default();
        assert_eq!(batch.receive(&receiver).unwrap(), 1);
        assert_eq!(batch.datagram(0).0, &big[..]);
    }
}
