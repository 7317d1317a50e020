//! Receiving several datagrams in one system call (recvmmsg(2)).
//!
//! mio registers sockets edge-triggered, so a readable socket has to be read until
//! it reports `WouldBlock`: with `recv_from` that costs one extra, empty system call
//! per event, a third of the calls a lock-step TFTP block needs. `recvmmsg` with
//! room for several datagrams answers both questions at once: when it returns fewer
//! than it had room for, the queue was empty, and any datagram arriving later raises
//! a new edge. Neither mio nor socket2 wraps recvmmsg, so this calls it through libc.
//!
//! The number of slots is the type's parameter: a socket where one client's
//! datagrams arrive takes the default few; a socket many clients share (the DHCP
//! port in a storm, the TFTP port when every transfer is served from it) takes
//! more, so one call serves them all. [`queue_memory`] and [`last_arrival`] say
//! how full a socket's queue is after a batch and how long its datagrams waited:
//! whether the reader keeps up.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Datagrams taken per call by default. One event usually stands for one datagram
/// (an ACK); four leaves room for a burst without much memory.
pub const SLOTS: usize = 4;
/// Each slot holds the largest UDP payload, so nothing a client sends is cut.
/// The pages are only touched as far as datagrams fill them.
const SLOT_BYTES: usize = 65536;

/// Buffers for one batch of up to `N` datagrams, reused from call to call. The
/// message headers the kernel reads are made once, pointing at the buffers, so a
/// call only resets the address lengths the last one overwrote: a storm's loop
/// makes tens of thousands of calls a second.
pub struct ReceiveBatch<const N: usize = SLOTS> {
    buffers: Vec<u8>,
    /// One per slot, each over its own `SLOT_BYTES` of `buffers`; read only by
    /// the kernel, through the headers.
    #[allow(dead_code)]
    vectors: Vec<libc::iovec>,
    /// Where the kernel writes each sender.
    addresses: Vec<libc::sockaddr_in>,
    /// One per slot, pointing at its vector and address.
    headers: Vec<libc::mmsghdr>,
    lengths: [usize; N],
    senders: [Option<SocketAddr>; N],
}

// SAFETY: the raw pointers in `vectors` and `headers` point only into the heap
// blocks of `buffers`, `vectors` and `addresses`, which the batch owns and never
// grows or shrinks: they move to another thread with it, and stay where they are.
unsafe impl<const N: usize> Send for ReceiveBatch<N> {}

impl<const N: usize> Default for ReceiveBatch<N> {
    fn default() -> Self {
        // Zeroed memory from the allocator: pages are only mapped in as
        // datagrams reach them.
        let mut buffers = vec![0u8; N * SLOT_BYTES];
        let mut vectors: Vec<libc::iovec> = buffers
            .chunks_exact_mut(SLOT_BYTES)
            .map(|chunk| libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            })
            .collect();
        // SAFETY: sockaddr_in and mmsghdr are plain data; all-zero is a valid
        // value for each of their fields.
        let mut addresses: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; N];
        let headers = vectors
            .iter_mut()
            .zip(addresses.iter_mut())
            .map(|(vector, address)| {
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_name = std::ptr::from_mut(address).cast();
                header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                header.msg_hdr.msg_iov = vector;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        ReceiveBatch {
            buffers,
            vectors,
            addresses,
            headers,
            lengths: [0; N],
            senders: [None; N],
        }
    }
}

impl<const N: usize> ReceiveBatch<N> {
    /// Takes up to `N` datagrams from a non-blocking IPv4 socket. `Ok(n)` with
    /// `n < N` means the socket had no more; `WouldBlock` means it had none.
    pub fn receive(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        // SAFETY: every header points at its own live iovec over its own
        // SLOT_BYTES of `self.buffers` and at its own sockaddr_in, all owned by
        // `self` and outliving the call; the kernel writes at most the lengths
        // given.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
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
            let header = &mut self.headers[slot];
            self.lengths[slot] = header.msg_len as usize;
            let named = header.msg_hdr.msg_namelen as usize >= size_of::<libc::sockaddr_in>();
            // The kernel wrote the sender's length over the room it had.
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let address = &self.addresses[slot];
            self.senders[slot] =
                (named && address.sin_family == libc::AF_INET as libc::sa_family_t).then(|| {
                    SocketAddr::V4(SocketAddrV4::new(
                        Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr)),
                        u16::from_be(address.sin_port),
                    ))
                });
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

/// What the kernel holds for a socket, as `getsockopt(SO_MEMINFO)` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueMemory {
    /// Bytes of datagrams waiting to be read, in the kernel's accounting (each
    /// counts with its buffer's overhead, several times a small datagram's size).
    pub queued: usize,
    /// The most it holds: past it, datagrams are dropped.
    pub limit: usize,
    /// Datagrams dropped since the socket was made (its queue was full).
    pub drops: u64,
}

/// How full `socket`'s receive queue is: read after a batch, it says whether the
/// reader keeps up (see [`QueueMemory`]). `Unsupported` where the kernel's option
/// is not known.
pub fn queue_memory(socket: &impl AsRawFd) -> io::Result<QueueMemory> {
    #[cfg(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "powerpc64",
        target_arch = "s390x"
    ))]
    {
        /// `SO_MEMINFO`, which the libc crate does not name: 55 in the kernel's
        /// generic socket options, which these architectures use.
        const SO_MEMINFO: libc::c_int = 55;
        /// The number of values it fills in.
        const SK_MEMINFO_VARS: usize = 9;
        let mut values = [0u32; SK_MEMINFO_VARS];
        let mut len = size_of_val(&values) as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `values`, which lives
        // across the call, and sets `len` to what it wrote.
        let result = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                values.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        let value = |index: libc::c_int| {
            usize::try_from(index)
                .ok()
                .filter(|i| (i + 1) * size_of::<u32>() <= len as usize)
                .and_then(|i| values.get(i))
                .copied()
                .unwrap_or(0)
        };
        Ok(QueueMemory {
            queued: value(libc::SK_MEMINFO_RMEM_ALLOC) as usize,
            limit: value(libc::SK_MEMINFO_RCVBUF) as usize,
            drops: u64::from(value(libc::SK_MEMINFO_DROPS)),
        })
    }
    #[cfg(not(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "powerpc64",
        target_arch = "s390x"
    )))]
    {
        let _ = socket;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// When the last datagram read from `socket` arrived, by the kernel's clock
/// (`ioctl(SIOCGSTAMPNS)`): read after a batch, it says how long the queue made
/// it wait. The first call only switches the kernel's time stamps on, and fails
/// (`NotFound`); so does a call before any datagram was read since.
pub fn last_arrival(socket: &impl AsRawFd) -> io::Result<SystemTime> {
    /// `SIOCGSTAMPNS`, which the libc crate does not name: the same on the
    /// architectures bootd is built for.
    const SIOCGSTAMPNS: libc::c_ulong = 0x8907;
    let mut stamp = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the kernel writes one timespec into `stamp`, which lives across the
    // call.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSTAMPNS as _, &mut stamp) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    let seconds = u64::try_from(stamp.tv_sec).map_err(|_| io::ErrorKind::InvalidData)?;
    let nanos = u32::try_from(stamp.tv_nsec).map_err(|_| io::ErrorKind::InvalidData)?;
    Ok(UNIX_EPOCH + Duration::new(seconds, nanos))
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
        let error = ReceiveBatch::<SLOTS>::default()
            .receive(&receiver)
            .unwrap_err();
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
        let mut batch: ReceiveBatch = ReceiveBatch::default();
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
        let mut batch: ReceiveBatch = ReceiveBatch::default();
        assert_eq!(batch.receive(&receiver).unwrap(), SLOTS);
        assert_eq!(batch.datagram(SLOTS - 1).0, [(SLOTS - 1) as u8]);
        assert_eq!(batch.receive(&receiver).unwrap(), 2);
        assert_eq!(batch.datagram(1).0, [(SLOTS + 1) as u8]);
    }

    #[test]
    fn a_larger_batch_takes_a_burst_in_one_call() {
        let (receiver, sender) = pair();
        let to = receiver.local_addr().unwrap();
        for i in 0..40u8 {
            sender.send_to(&[i; 300], to).unwrap();
        }
        let mut batch = ReceiveBatch::<64>::default();
        assert_eq!(batch.receive(&receiver).unwrap(), 40);
        assert_eq!(batch.datagram(39).0, [39u8; 300]);
    }

    #[test]
    fn the_queue_memory_counts_what_waits_and_what_was_dropped() {
        let (receiver, sender) = pair();
        socket2::SockRef::from(&receiver)
            .set_recv_buffer_size(4096)
            .unwrap();
        let empty = queue_memory(&receiver).unwrap();
        assert_eq!((empty.queued, empty.drops), (0, 0));
        assert!(empty.limit >= 4096, "{empty:?}");
        let to = receiver.local_addr().unwrap();
        // Far more than a few kilobytes hold: the queue fills, then drops.
        for _ in 0..200 {
            sender.send_to(&[7; 300], to).unwrap();
        }
        let full = queue_memory(&receiver).unwrap();
        assert!(full.queued > 0 && full.drops > 0, "{full:?}");
        let mut batch = ReceiveBatch::<64>::default();
        while batch.receive(&receiver).is_ok() {}
        assert_eq!(queue_memory(&receiver).unwrap().queued, 0);
    }

    #[test]
    fn the_last_arrival_says_how_long_a_datagram_waited() {
        let (receiver, sender) = pair();
        let to = receiver.local_addr().unwrap();
        // The first call switches time stamps on; the kernel does that from a
        // work queue, so a datagram arriving at once may still come unstamped
        // (it is then stamped when asked, as if it had not waited).
        assert!(last_arrival(&receiver).is_err());
        std::thread::sleep(Duration::from_millis(50));
        sender.send_to(b"waits", to).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut batch = ReceiveBatch::<64>::default();
        assert_eq!(batch.receive(&receiver).unwrap(), 1);
        let arrival = last_arrival(&receiver).unwrap();
        let waited = SystemTime::now().duration_since(arrival).unwrap();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }

    #[test]
    fn the_largest_udp_payload_arrives_whole() {
        let (receiver, sender) = pair();
        let big = vec![0x5a; 65507];
        sender
            .send_to(&big, receiver.local_addr().unwrap())
            .unwrap();
        let mut batch: ReceiveBatch = ReceiveBatch::default();
        assert_eq!(batch.receive(&receiver).unwrap(), 1);
        assert_eq!(batch.datagram(0).0, &big[..]);
    }
}
