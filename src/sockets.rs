//! UDP sockets as the services need them, made with socket2 and handed to mio.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

/// The BOOTP socket for one interface: `0.0.0.0:port` (a unicast-bound socket never
/// sees broadcasts), restricted to `device` so replies to 255.255.255.255 leave
/// through the interface the request came in on. No SO_REUSEADDR: a second DHCP
/// server on this host must show up as "address in use", not share the port.
pub fn bootp_socket(device: &str, port: u16) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_broadcast(true)?;
    socket.bind_device(Some(device.as_bytes()))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// A plain non-blocking UDP socket bound to `addr` (TFTP listener, transfer TIDs, notifier).
pub fn udp_socket(addr: SocketAddrV4) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// Words a sysadmin can act on for a failed bind.
pub fn explain_bind_error(what: &str, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => format!(
            "cannot listen for {what}: the port is already in use ({error}); another server (or another bootd) holds it: stop it, or use -p/-t to run only the other service"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot listen for {what}: permission denied ({error}); ports below 1024 need root or CAP_NET_BIND_SERVICE, and binding to a device may need CAP_NET_RAW"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen for {what}: no local interface has that address ({error}); check the address option"
        ),
        _ => format!("cannot listen for {what}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_bind_is_reported_as_in_use() {
        let first = udp_socket(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let SocketAddr::V4(taken) = first.local_addr().unwrap() else {
            panic!("IPv4 expected")
        };
        let error = udp_socket(taken).unwrap_err();
        let text = explain_bind_error("TFTP on 127.0.0.1", &error);
        assert!(text.contains("already in use"), "{text}");
    }
}
