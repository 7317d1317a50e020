//! The site's own network for tests of bootd beside it: a bridge that joins
//! namespaces into one segment, and the site's DHCP server on it (dnsmasq with
//! its DNS off, a range of addresses and no PXE option at all) in a namespace of
//! its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Netns, Spawned, TempDir, sh, unique};

/// Joins `ns` to `bridge` (in `bridge_ns`) by a new veth pair, its end in `ns`
/// holding `cidr` if given; returns the name of that end.
pub fn join_bridge(bridge_ns: &Netns, bridge: &str, ns: &Netns, cidr: Option<&str>) -> String {
    let inside = unique("j");
    let port = unique("k");
    sh(&[
        "ip",
        "link",
        "add",
        &inside,
        "netns",
        &ns.name,
        "type",
        "veth",
        "peer",
        "name",
        &port,
        "netns",
        &bridge_ns.name,
    ]);
    sh(&[
        "ip",
        "-n",
        &bridge_ns.name,
        "link",
        "set",
        &port,
        "master",
        bridge,
    ]);
    sh(&["ip", "-n", &bridge_ns.name, "link", "set", &port, "up"]);
    if let Some(cidr) = cidr {
        sh(&[
            "ip", "-n", &ns.name, "addr", "add", cidr, "brd", "+", "dev", &inside,
        ]);
    }
    sh(&["ip", "-n", &ns.name, "link", "set", &inside, "up"]);
    inside
}

/// A bridge in a namespace of its own: a switch other namespaces join.
pub struct Switch {
    pub ns: Netns,
    pub bridge: String,
}

impl Switch {
    pub fn new() -> Switch {
        let ns = Netns::new("x");
        let bridge = unique("b");
        sh(&[
            "ip", "-n", &ns.name, "link", "add", &bridge, "type", "bridge",
        ]);
        sh(&["ip", "-n", &ns.name, "link", "set", &bridge, "up"]);
        Switch { ns, bridge }
    }

    /// Joins `ns`; returns its interface on the segment.
    pub fn join(&self, ns: &Netns, cidr: Option<&str>) -> String {
        join_bridge(&self.ns, &self.bridge, ns, cidr)
    }
}

/// The site's DHCP server: dnsmasq, killed on drop.
pub struct SiteDhcp {
    process: Spawned,
    pub lease_file: PathBuf,
}

impl SiteDhcp {
    /// dnsmasq on `interface` of `ns` handing out `first` to `last` (a /24), its
    /// leases in `dir`. DNS is off (port=0), so it sends no PXE option, no boot
    /// file and serves no file.
    pub fn start(ns: &Netns, interface: &str, first: &str, last: &str, dir: &TempDir) -> SiteDhcp {
        let lease_file = dir.path.join(unique("dnsmasq-leases"));
        let pid_file = dir.path.join(unique("dnsmasq-pid"));
        let mut command = ns.command("dnsmasq");
        command
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--bind-interfaces",
                "--no-ping",
                "--log-dhcp",
                "--log-facility=-",
                "--user=root",
                "--group=root",
                "--dhcp-authoritative",
            ])
            .arg(format!("--interface={interface}"))
            .arg(format!("--dhcp-range={first},{last},255.255.255.0,1h"))
            .arg(format!("--dhcp-leasefile={}", lease_file.display()))
            .arg(format!("--pid-file={}", pid_file.display()));
        let process = Spawned::start(&mut command);
        assert!(
            process.wait_for_stderr("DHCP, IP range", Duration::from_secs(10)),
            "dnsmasq did not start:\n{}",
            process.stderr_so_far()
        );
        SiteDhcp {
            process,
            lease_file,
        }
    }

    /// The lease file's lines (`EXPIRY MAC IP NAME CLIENT-ID`).
    pub fn leases(&self) -> String {
        std::fs::read_to_string(&self.lease_file).unwrap_or_default()
    }

    /// Whether the lease file holds `ip` for `mac` (`aa:bb:…`, lower case).
    pub fn leased(&self, mac: &str, ip: &str) -> bool {
        self.leases().lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.get(1) == Some(&mac) && words.get(2) == Some(&ip)
        })
    }

    /// dnsmasq's log.
    pub fn log(&self) -> String {
        self.process.stderr_so_far()
    }
}

/// Whether dnsmasq is installed (package dnsmasq-base).
pub fn have_dnsmasq() -> bool {
    Command::new("dnsmasq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
