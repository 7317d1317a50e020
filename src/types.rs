//! The nouns every layer shares: a MAC address, a machine UUID and an IPv4 network.
//! Each has one parser (`FromStr`) and one text form (`Display`); configuration,
//! wire code, leases, access lists and notifications all use these, so a MAC or a
//! UUID is read and written the same way everywhere.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The address as the low 48 bits of a number (for masked comparisons).
    pub fn as_u64(self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }
}

impl fmt::Display for MacAddr {
    /// `AA-BB-CC-DD-EE-FF`: the form of pybootd's HTTP queries and notifications.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a text is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacParseError;

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address (expected six hex pairs such as AA-BB-CC-DD-EE-FF)")
    }
}

impl std::error::Error for MacParseError {}

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// `AA-BB-CC-DD-EE-FF`, `aa:bb:cc:dd:ee:ff` or `AABBCCDDEEFF`, any case,
    /// surrounding spaces ignored.
    fn from_str(text: &str) -> Result<MacAddr, MacParseError> {
        let text = text.trim();
        let pairs: Vec<&str> = if text.contains(['-', ':']) {
            text.split(['-', ':']).collect()
        } else if text.len() == 12 && text.is_ascii() {
            (0..6).map(|i| &text[2 * i..2 * i + 2]).collect()
        } else {
            return Err(MacParseError);
        };
        if pairs.len() != 6 {
            return Err(MacParseError);
        }
        let mut bytes = [0u8; 6];
        for (byte, pair) in bytes.iter_mut().zip(pairs) {
            if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MacParseError);
            }
            *byte = u8::from_str_radix(pair, 16).map_err(|_| MacParseError)?;
        }
        Ok(MacAddr(bytes))
    }
}

/// A machine's UUID (option 97), its 16 bytes in the order they came on the wire.
///
/// Firmware sends option 97 in SMBIOS byte order, so the machine `dmidecode` shows
/// as `12345678-abcd-ef00-…` arrives as `78563412-cdab-00ef-…`; bootd reports the
/// bytes in wire order, as pybootd did, and matches access lists either way
/// ([`Uuid::smbios_swapped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub u128);

impl Uuid {
    pub fn from_bytes(bytes: [u8; 16]) -> Uuid {
        Uuid(u128::from_be_bytes(bytes))
    }

    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The same UUID with its first three fields byte-swapped (RFC 4122 text order
    /// ↔ SMBIOS storage order); applying it twice gives the UUID back.
    pub fn smbios_swapped(self) -> Uuid {
        let mut b = self.0.to_be_bytes();
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Uuid(u128::from_be_bytes(b))
    }
}

impl fmt::Display for Uuid {
    /// Lower case, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            v >> 96,
            (v >> 80) & 0xffff,
            (v >> 64) & 0xffff,
            (v >> 48) & 0xffff,
            v & 0xffff_ffff_ffff
        )
    }
}

/// Why a text is not a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UuidParseError;

impl fmt::Display for UuidParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "not a UUID (expected 32 hex digits such as 12345678-abcd-ef00-1111-abcdefabcdef)",
        )
    }
}

impl std::error::Error for UuidParseError {}

impl FromStr for Uuid {
    type Err = UuidParseError;

    /// 32 hex digits, dashes anywhere ignored, any case, surrounding spaces ignored.
    fn from_str(text: &str) -> Result<Uuid, UuidParseError> {
        let digits: String = text.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(UuidParseError);
        }
        u128::from_str_radix(&digits, 16)
            .map(Uuid)
            .map_err(|_| UuidParseError)
    }
}

/// An IPv4 network as an interface holds it: the interface's own address and its
/// prefix. The arithmetic (containment, broadcast, host range) lives here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Network {
    net: ipnet::Ipv4Net,
}

impl Ipv4Network {
    /// `address` with a prefix length of 0 to 32.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Network> {
        ipnet::Ipv4Net::new(address, prefix_len)
            .ok()
            .map(|net| Ipv4Network { net })
    }

    /// `address` with a contiguous netmask (`255.255.255.0`); `None` otherwise.
    pub fn with_netmask(address: Ipv4Addr, netmask: Ipv4Addr) -> Option<Ipv4Network> {
        ipnet::Ipv4Net::with_netmask(address, netmask)
            .ok()
            .map(|net| Ipv4Network { net })
    }

    /// The address this network was made from (an interface's own address).
    pub fn address(&self) -> Ipv4Addr {
        self.net.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.net.prefix_len()
    }

    pub fn netmask(&self) -> Ipv4Addr {
        self.net.netmask()
    }

    /// The network address (all host bits clear).
    pub fn network(&self) -> Ipv4Addr {
        self.net.network()
    }

    /// The directed broadcast address (all host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        self.net.broadcast()
    }

    /// True when `ip` lies in this network, its network and broadcast addresses
    /// included.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.net.contains(&ip)
    }

    /// The first and last address a host may hold: the network and broadcast
    /// addresses are left out, except on /31 (two hosts, RFC 3021) and /32.
    pub fn host_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        let (network, broadcast) = (u32::from(self.network()), u32::from(self.broadcast()));
        if self.prefix_len() >= 31 {
            (Ipv4Addr::from(network), Ipv4Addr::from(broadcast))
        } else {
            (Ipv4Addr::from(network + 1), Ipv4Addr::from(broadcast - 1))
        }
    }

    /// True when a host on this network may hold `ip`.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        let (first, last) = self.host_range();
        (first..=last).contains(&ip)
    }
}

impl fmt::Display for Ipv4Network {
    /// `10.0.0.0/24`: the network, not the interface address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        let want = MacAddr([0xaa, 0xbb, 0xcc, 0x01, 0x02, 0x03]);
        for text in [
            "AA-BB-CC-01-02-03",
            "aa:bb:cc:01:02:03",
            "aabbcc010203",
            " AA-bb-CC-01-02-03 ",
        ] {
            assert_eq!(text.parse(), Ok(want), "{text}");
        }
        for bad in [
            "AA-BB-CC-01-02",
            "GG-BB-CC-01-02-03",
            "AA-BB-CC-01-02-03-04",
            "A-BB-CC-01-02-033",
            "aabbcc01020",
            "",
            "aabbcc01020é",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(MacParseError), "{bad}");
        }
        assert_eq!(want.to_string(), "AA-BB-CC-01-02-03");
        assert_eq!(want.as_u64(), 0xaabbcc010203);
    }

    #[test]
    fn uuid_text_round_trips() {
        let uuid: Uuid = "12345678-ABCD-ef00-1111-abcdefabcdef".parse().unwrap();
        assert_eq!(uuid, Uuid(0x12345678abcdef001111abcdefabcdef));
        assert_eq!(uuid.to_string(), "12345678-abcd-ef00-1111-abcdefabcdef");
        assert_eq!("12345678abcdef001111abcdefabcdef".parse(), Ok(uuid));
        assert_eq!(Uuid(1).to_string(), "00000000-0000-0000-0000-000000000001");
        assert_eq!("1234".parse::<Uuid>(), Err(UuidParseError));
        assert_eq!(
            "x2345678-abcd-ef00-1111-abcdefabcdef".parse::<Uuid>(),
            Err(UuidParseError)
        );
    }

    #[test]
    fn smbios_swap_exchanges_the_first_three_fields() {
        let on_the_wire: Uuid = "78563412-cdab-00ef-1111-abcdefabcdef".parse().unwrap();
        assert_eq!(
            on_the_wire.smbios_swapped().to_string(),
            "12345678-abcd-ef00-1111-abcdefabcdef"
        );
        assert_eq!(on_the_wire.smbios_swapped().smbios_swapped(), on_the_wire);
    }

    #[test]
    fn network_arithmetic() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let net = Ipv4Network::with_netmask(ip("10.78.0.1"), ip("255.255.255.128")).unwrap();
        assert_eq!(net.prefix_len(), 25);
        assert_eq!(net.address(), ip("10.78.0.1"));
        assert_eq!(net.network(), ip("10.78.0.0"));
        assert_eq!(net.broadcast(), ip("10.78.0.127"));
        assert!(net.contains(ip("10.78.0.0")) && net.contains(ip("10.78.0.127")));
        assert!(!net.contains(ip("10.78.0.128")));
        assert_eq!(net.host_range(), (ip("10.78.0.1"), ip("10.78.0.126")));
        assert!(!net.is_host(ip("10.78.0.0")) && !net.is_host(ip("10.78.0.127")));
        assert!(net.is_host(ip("10.78.0.126")));
        assert_eq!(net.to_string(), "10.78.0.0/25");
        assert!(Ipv4Network::with_netmask(ip("10.0.0.1"), ip("255.0.255.0")).is_none());
        assert!(Ipv4Network::new(ip("10.0.0.1"), 33).is_none());
        let point_to_point = Ipv4Network::new(ip("10.0.0.0"), 31).unwrap();
        assert_eq!(
            point_to_point.host_range(),
            (ip("10.0.0.0"), ip("10.0.0.1"))
        );
        let single = Ipv4Network::new(ip("10.0.0.7"), 32).unwrap();
        assert_eq!(single.host_range(), (ip("10.0.0.7"), ip("10.0.0.7")));
        let everything = Ipv4Network::new(ip("1.2.3.4"), 0).unwrap();
        assert!(everything.contains(ip("255.255.255.255")));
    }
}
