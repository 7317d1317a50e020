//! Which local network bootd serves: the IPv4 interface whose network contains
//! `pool_start` (pybootd's rule), found with if-addrs.

use std::fmt;
use std::net::Ipv4Addr;

use crate::types::Ipv4Network;

/// The network the BOOTP side serves and the address it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Device name for `SO_BINDTODEVICE` (an alias label `eth0:1` cut to `eth0`).
    pub device: String,
    /// The name if-addrs reported (may be an alias label).
    pub label: String,
    pub index: Option<u32>,
    /// The interface's address and prefix. Its broadcast address is computed from
    /// the prefix: the kernel's value is unreliable.
    pub network: Ipv4Network,
    /// From /sys/class/net/<device>/mtu when available.
    pub mtu: Option<u32>,
}

impl NetConfig {
    /// The interface address: siaddr, option 54, TFTP listen address.
    pub fn server(&self) -> Ipv4Addr {
        self.network.address()
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.network.contains(ip)
    }
}

/// One IPv4 address of one interface, as the system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub label: String,
    pub index: Option<u32>,
    pub ip: Ipv4Addr,
    pub netmask: Ipv4Addr,
}

impl InterfaceAddress {
    /// `None` for a netmask that is not a prefix (no interface has one).
    fn network(&self) -> Option<Ipv4Network> {
        Ipv4Network::with_netmask(self.ip, self.netmask)
    }

    fn describe(&self) -> String {
        match self.network() {
            Some(net) => format!(
                "{} {}/{} (network {net})",
                self.label,
                self.ip,
                net.prefix_len()
            ),
            None => format!("{} {} (netmask {})", self.label, self.ip, self.netmask),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectError {
    pub wanted: Vec<Ipv4Addr>,
    pub found: Vec<InterfaceAddress>,
    pub system_error: Option<String>,
}

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unable to detect network configuration: ")?;
        if let Some(e) = &self.system_error {
            return write!(f, "cannot list the network interfaces: {e}");
        }
        let wanted: Vec<String> = self.wanted.iter().map(Ipv4Addr::to_string).collect();
        write!(
            f,
            "no local IPv4 interface has a network containing {}",
            wanted.join(" or ")
        )?;
        if self.found.is_empty() {
            write!(f, "; this host has no IPv4 address at all")?;
        } else {
            let found: Vec<String> = self.found.iter().map(InterfaceAddress::describe).collect();
            write!(f, "; interfaces found: {}", found.join(", "))?;
        }
        write!(
            f,
            ". Set [bootp] pool_start to an address inside the network that boot clients are on, or give that interface an address in the pool's network."
        )
    }
}

impl std::error::Error for DetectError {}

/// The system's IPv4 addresses (loopback included: a test may serve 127.0.0.0/8).
pub fn interface_addresses() -> Result<Vec<InterfaceAddress>, String> {
    let interfaces = if_addrs::get_if_addrs().map_err(|e| e.to_string())?;
    Ok(interfaces
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => Some(InterfaceAddress {
                label: i.name,
                index: i.index,
                ip: v4.ip,
                netmask: v4.netmask,
            }),
            if_addrs::IfAddr::V6(_) => None,
        })
        .collect())
}

/// The interface serving `pool_start`, else the one holding `fallback` (pybootd's
/// `[bootp] address`). The longest prefix wins when networks nest.
pub fn select(
    addresses: &[InterfaceAddress],
    pool_start: Ipv4Addr,
    fallback: Ipv4Addr,
) -> Result<NetConfig, DetectError> {
    let best = |target: Ipv4Addr| {
        addresses
            .iter()
            .filter_map(|a| Some((a, a.network()?)))
            .filter(|(_, net)| net.contains(target) && net.prefix_len() != 0)
            .max_by_key(|(_, net)| net.prefix_len())
    };
    let chosen = best(pool_start).or_else(|| {
        if fallback.is_unspecified() {
            None
        } else {
            best(fallback)
        }
    });
    let Some((a, network)) = chosen else {
        let mut wanted = vec![pool_start];
        if !fallback.is_unspecified() {
            wanted.push(fallback);
        }
        return Err(DetectError {
            wanted,
            found: addresses.to_vec(),
            system_error: None,
        });
    };
    let device = a.label.split(':').next().unwrap_or(&a.label).to_string();
    Ok(NetConfig {
        mtu: read_mtu(&device),
        device,
        label: a.label.clone(),
        index: a.index,
        network,
    })
}

/// Detects the served network on this host.
pub fn detect(pool_start: Ipv4Addr, fallback: Ipv4Addr) -> Result<NetConfig, DetectError> {
    let addresses = interface_addresses().map_err(|e| DetectError {
        wanted: vec![pool_start],
        found: Vec::new(),
        system_error: Some(e),
    })?;
    select(&addresses, pool_start, fallback)
}

/// The MTU of `device`, for TFTP block sizes that avoid IP fragmentation.
pub fn read_mtu(device: &str) -> Option<u32> {
    if device.is_empty() || device.contains('/') || device.starts_with('.') {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{device}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(label: &str, index: u32, ip: [u8; 4], mask: [u8; 4]) -> InterfaceAddress {
        InterfaceAddress {
            label: label.into(),
            index: Some(index),
            ip: Ipv4Addr::from(ip),
            netmask: Ipv4Addr::from(mask),
        }
    }

    fn host() -> Vec<InterfaceAddress> {
        vec![
            addr("lo", 1, [127, 0, 0, 1], [255, 0, 0, 0]),
            addr("eth0", 2, [10, 78, 0, 1], [255, 255, 255, 128]),
            addr("eth1", 3, [10, 78, 0, 129], [255, 255, 255, 192]),
            addr("eth1:al", 3, [10, 78, 0, 193], [255, 255, 255, 192]),
            addr("wide", 4, [10, 0, 0, 1], [255, 0, 0, 0]),
        ]
    }

    #[test]
    fn pool_start_selects_its_interface_and_computes_broadcast() {
        let n = select(
            &host(),
            Ipv4Addr::new(10, 78, 0, 100),
            Ipv4Addr::UNSPECIFIED,
        )
        .unwrap();
        assert_eq!(n.device, "eth0");
        assert_eq!(n.server(), Ipv4Addr::new(10, 78, 0, 1));
        assert_eq!(n.network.netmask(), Ipv4Addr::new(255, 255, 255, 128));
        assert_eq!(n.network.prefix_len(), 25);
        assert_eq!(n.network.broadcast(), Ipv4Addr::new(10, 78, 0, 127));
        assert_eq!(n.network.network(), Ipv4Addr::new(10, 78, 0, 0));
        assert!(n.contains(Ipv4Addr::new(10, 78, 0, 126)));
        assert!(!n.contains(Ipv4Addr::new(10, 78, 0, 128)));
    }

    #[test]
    fn longest_prefix_wins_over_a_wider_network() {
        let n = select(
            &host(),
            Ipv4Addr::new(10, 78, 0, 150),
            Ipv4Addr::UNSPECIFIED,
        )
        .unwrap();
        assert_eq!(n.device, "eth1");
        assert_eq!(n.server(), Ipv4Addr::new(10, 78, 0, 129));
    }

    #[test]
    fn alias_label_is_cut_to_its_device() {
        let only_alias = vec![addr("eth1:al", 3, [10, 78, 0, 193], [255, 255, 255, 192])];
        let n = select(
            &only_alias,
            Ipv4Addr::new(10, 78, 0, 200),
            Ipv4Addr::UNSPECIFIED,
        )
        .unwrap();
        assert_eq!(n.device, "eth1");
        assert_eq!(n.label, "eth1:al");
    }

    #[test]
    fn loopback_pool_selects_loopback() {
        let n = select(
            &host(),
            Ipv4Addr::new(127, 0, 0, 100),
            Ipv4Addr::UNSPECIFIED,
        )
        .unwrap();
        assert_eq!(n.device, "lo");
        assert_eq!(n.server(), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(n.network.netmask(), Ipv4Addr::new(255, 0, 0, 0));
    }

    #[test]
    fn fallback_address_is_tried_second() {
        let n = select(
            &host(),
            Ipv4Addr::new(192, 168, 9, 9),
            Ipv4Addr::new(10, 78, 0, 5),
        )
        .unwrap();
        assert_eq!(n.device, "eth0");
    }

    #[test]
    fn no_match_names_what_was_looked_for_and_what_exists() {
        let e = select(
            &host(),
            Ipv4Addr::new(192, 168, 9, 9),
            Ipv4Addr::UNSPECIFIED,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("Unable to detect network configuration: no local IPv4 interface has a network containing 192.168.9.9; interfaces found: lo 127.0.0.1/8 (network 127.0.0.0/8), eth0 10.78.0.1/25 (network 10.78.0.0/25)"), "{text}");
        assert!(text.contains("[bootp] pool_start"), "{text}");
    }

    #[test]
    fn no_address_at_all() {
        let e = select(&[], Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::UNSPECIFIED).unwrap_err();
        assert!(
            e.to_string()
                .contains("this host has no IPv4 address at all")
        );
    }

    #[test]
    fn mtu_refuses_path_tricks() {
        assert_eq!(read_mtu("../../etc"), None);
        assert_eq!(read_mtu(""), None);
    }
}
