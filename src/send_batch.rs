//! Sending many datagrams from one socket in one system call (sendmmsg(2)).
//!
//! The DHCP service answers a storm's requests from one socket per network, and in
//! TFTP's single-port mode every transfer talks from the TFTP port: what one turn
//! of a loop has to send from a socket is gathered here and goes out with one
//! sendmmsg per batch instead of one sendto each, so the system call's own cost
//! (entry, descriptor lookup, socket checks) is paid once per batch. Each datagram
//! is copied in, since its owner lends it only until the next call into it; a copy
//! costs far less than a system call. Neither mio nor socket2 wraps sendmmsg, so
//! this calls it through libc.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// Datagrams per system call, and per batch: a batch this full is sent at once.
pub const MAX_DATAGRAMS: usize = 64;
/// Bytes a batch holds before it is sent at once, whatever the count (windows of
/// large blocks would otherwise gather megabytes).
const MAX_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, Copy)]
struct Queued {
    start: usize,
    len: usize,
    to: SocketAddrV4,
}

/// Datagrams waiting to leave from one socket, in order.
#[derive(Debug, Default)]
pub struct SendBatch {
    /// The datagrams' bytes, back to back.
    bytes: Vec<u8>,
    queued: Vec<Queued>,
}

impl SendBatch {
    /// Appends one datagram made of `parts` for `to`. IPv4 only: another address
    /// is refused with `false` (TFTP is served on IPv4 addresses alone).
    pub fn push(&mut self, parts: &[&[u8]], to: SocketAddr) -> bool {
        let SocketAddr::V4(to) = to else {
            return false;
        };
        let start = self.bytes.len();
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.queued.push(Queued {
            start,
            len: self.bytes.len() - start,
            to,
        });
        true
    }

    /// Whether the batch should be sent before another datagram joins it.
    pub fn is_full(&self) -> bool {
        self.queued.len() >= MAX_DATAGRAMS || self.bytes.len() >= MAX_BYTES
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Where datagram `index` goes and its length, for log lines.
    pub fn describe(&self, index: usize) -> Option<(SocketAddrV4, usize)> {
        self.queued.get(index).map(|q| (q.to, q.len))
    }

    /// Forgets every datagram (after they were sent).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.queued.clear();
    }

    /// Sends datagrams `first..` (at most `MAX_DATAGRAMS` of them) from `socket` in
    /// one call. `Ok(n)`: the first `n` left (at least one, unless there were none);
    /// an error is datagram `first`'s, and none of them left.
    pub fn send_from(&self, socket: &impl AsRawFd, first: usize) -> io::Result<usize> {
        let queued = self.queued.get(first..).unwrap_or_default();
        let count = queued.len().min(MAX_DATAGRAMS);
        if count == 0 {
            return Ok(0);
        }
        let mut addresses = [libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr { s_addr: 0 },
            sin_zero: [0; 8],
        }; MAX_DATAGRAMS];
        let mut vectors = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_DATAGRAMS];
        // SAFETY: mmsghdr is plain data; all-zero is a valid value for each field.
        let mut headers: [libc::mmsghdr; MAX_DATAGRAMS] = unsafe { std::mem::zeroed() };
        for (((q, address), vector), header) in queued
            .iter()
            .zip(addresses.iter_mut())
            .zip(vectors.iter_mut())
            .zip(headers.iter_mut())
        {
            address.sin_port = q.to.port().to_be();
            address.sin_addr.s_addr = u32::from(*q.to.ip()).to_be();
            let bytes = self.bytes.get(q.start..q.start + q.len).unwrap_or_default();
            // The kernel only reads through this pointer (sendmmsg).
            vector.iov_base = bytes.as_ptr().cast_mut().cast();
            vector.iov_len = bytes.len();
            header.msg_hdr.msg_name = (address as *mut libc::sockaddr_in).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            header.msg_hdr.msg_iov = vector;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `count` headers point at their own iovec over bytes of
        // `self.bytes` and at their own sockaddr_in, all outliving the call; the
        // kernel reads them and writes only each header's msg_len.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    #[test]
    fn datagrams_to_several_clients_leave_in_one_call_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let clients = [receiver(), receiver(), receiver()];
        let mut batch = SendBatch::default();
        for (i, client) in clients.iter().enumerate() {
            let to = client.local_addr().unwrap();
            assert!(batch.push(&[&[0, 3, 0, i as u8], b"block"], to));
            assert!(batch.push(&[&[0, 3, 0, 10 + i as u8]], to));
        }
        assert_eq!(batch.len(), 6);
        assert_eq!(batch.send_from(&sender, 0).unwrap(), 6);
        let mut buf = [0u8; 64];
        for (i, client) in clients.iter().enumerate() {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], [&[0, 3, 0, i as u8][..], b"block"].concat());
            assert_eq!(from, sender.local_addr().unwrap());
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], [0, 3, 0, 10 + i as u8]);
        }
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.send_from(&sender, 0).unwrap(), 0);
    }

    #[test]
    fn one_call_sends_at_most_a_full_batch_and_the_rest_follows() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = receiver();
        let to = client.local_addr().unwrap();
        let mut batch = SendBatch::default();
        for i in 0..MAX_DATAGRAMS + 3 {
            assert_eq!(batch.is_full(), i >= MAX_DATAGRAMS, "{i}");
            batch.push(&[&(i as u16).to_be_bytes()], to);
        }
        assert_eq!(batch.send_from(&sender, 0).unwrap(), MAX_DATAGRAMS);
        assert_eq!(batch.send_from(&sender, MAX_DATAGRAMS).unwrap(), 3);
        let mut buf = [0u8; 8];
        for i in 0..MAX_DATAGRAMS + 3 {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], (i as u16).to_be_bytes());
        }
    }

    #[test]
    fn a_large_batch_is_full_before_its_count() {
        let mut batch = SendBatch::default();
        let block = vec![0u8; 65464];
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut pushed = 0;
        while !batch.is_full() {
            batch.push(&[&block], to);
            pushed += 1;
        }
        assert!(pushed < MAX_DATAGRAMS, "{pushed}");
        assert_eq!(
            batch.describe(0),
            Some(("127.0.0.1:9".parse().unwrap(), 65464))
        );
    }

    #[test]
    fn an_error_is_the_first_datagrams_and_ipv6_is_refused() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::default();
        assert!(!batch.push(&[b"x"], "[::1]:69".parse().unwrap()));
        // Larger than any UDP datagram: EMSGSIZE, and nothing sent.
        batch.push(&[&vec![0u8; 70_000]], "127.0.0.1:9".parse().unwrap());
        let error = batch.send_from(&sender, 0).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EMSGSIZE));
    }
}
