//! bootd under hostile input: thousands of malformed BOOTP and TFTP datagrams,
//! then real clients, which must still be served by the same process.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::clients::*;
use common::*;

fn flood(pair: &Pair, port: &str, seed: &str) -> usize {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/flood.py");
    let out = pair
        .client
        .command("python3")
        .arg(script)
        .args(["10.99.0.1", port, "20000", "20", seed])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix("sent ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "flood failed: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn hostile_datagrams_do_not_knock_bootd_over() {
    require_root();
    let pair = Pair::new("10.99.0.1/24", Some("10.99.0.2/24"));
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    std::fs::write(dir.path.join("root/pxelinux.0"), vec![0x5a; 100_000]).unwrap();
    let conf = dir.write(
        "bootd.ini",
        "[logger]\nlevel = info\n[bootp]\npool_start = 10.99.0.100\npool_count = 50\nallow_simple_dhcp = on\nlease_file = leases\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n[static_dhcp]\n02-00-00-00-00-01 = 10.99.0.10\n",
    );
    let mut bootd = Bootd::start(&pair.server, &conf, &[]);
    bootd.wait_for_log("serving TFTP on 10.99.0.1:69", Duration::from_secs(5));
    for seed in ["1", "3", "5"] {
        let sent = flood(&pair, "67", seed);
        assert!(sent > 1000, "only {sent} BOOTP datagrams sent");
    }
    for seed in ["2", "4", "6"] {
        let sent = flood(&pair, "69", seed);
        assert!(sent > 1000, "only {sent} TFTP datagrams sent");
    }
    // Still alive, still serving both protocols.
    assert!(
        bootd.wait(Duration::from_millis(100)).is_none(),
        "bootd died:\n{}",
        bootd.log()
    );
    // Random MACs may have taken the whole pool (any DHCP server lets a machine on
    // its segment do that); a reserved machine is still served.
    sh(&[
        "ip",
        "-n",
        &pair.client.name,
        "addr",
        "flush",
        "dev",
        &pair.client_if,
    ]);
    set_mac(&pair, "02:00:00:00:00:01");
    let env = udhcpc(&pair, &dir, "after", &[])
        .unwrap_or_else(|| panic!("DHCP dead after the flood:\n{}", bootd.log()));
    assert_eq!(env["ip"], "10.99.0.10");
    // Every address handed out during the flood lies in the pool or is the reservation.
    let leases = std::fs::read_to_string(dir.path.join("leases")).unwrap();
    for line in leases.lines().filter(|l| !l.starts_with('#')) {
        let ip: std::net::Ipv4Addr = line.split(' ').nth(1).unwrap().parse().unwrap();
        let last = ip.octets()[3];
        assert!(
            ip.octets()[..3] == [10, 99, 0] && ((100..150).contains(&last) || last == 10),
            "{line}"
        );
    }
    // No reply went anywhere but this network or its broadcast.
    for line in bootd.log().lines().filter(|l| l.contains(" via ")) {
        let destination = line
            .split(" via ")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        assert!(
            destination == "255.255.255.255" || destination.starts_with("10.99.0."),
            "{line}"
        );
    }
    sh(&[
        "ip",
        "-n",
        &pair.client.name,
        "addr",
        "add",
        "10.99.0.2/24",
        "dev",
        &pair.client_if,
    ]);
    let out = dir.path.join("got");
    let status = pair
        .client
        .command("curl")
        .args(["-s", "--max-time", "10", "-o"])
        .arg(&out)
        .arg("tftp://10.99.0.1/pxelinux.0")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "TFTP dead after the flood:\n{}",
        bootd.log()
    );
    assert_eq!(std::fs::read(&out).unwrap(), vec![0x5a; 100_000]);
    assert!(!bootd.log().contains("panicked"), "{}", bootd.log());
    let (status, _) = bootd.stop();
    assert_eq!(status.code(), Some(0));
}

/// bootd's resident memory, in kB.
fn rss_kb(bootd: &Bootd) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", bootd.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs `flood.py KIND` from the client namespace: (sent, answered) per second.
fn new_macs(pair: &Pair, kind: &str, rate: &str, seconds: &str) -> Vec<(u64, u64)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/flood.py");
    let out = pair
        .client
        .command("python3")
        .arg(script)
        .args([kind, &pair.client_if, "1000000", rate, seconds, "7"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let (_, counts) = l.strip_prefix("second ")?.split_once(": sent ")?;
            let (sent, answered) = counts.split_once(", answered ")?;
            Some((sent.parse().ok()?, answered.parse().ok()?))
        })
        .collect()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_flood_of_new_macs_is_answered_at_an_even_rate_in_bounded_memory() {
    require_root();
    let pair = Pair::new("10.99.0.1/16", None);
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    let conf = dir.write(
        "bootd.ini",
        "[logger]\nlevel = warning\n[bootp]\npool_start = 10.99.0.2\npool_count = 65536\nallow_simple_dhcp = on\nlease_file = leases\nremembered_clients = 2000\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n",
    );
    let mut bootd = Bootd::start(&pair.server, &conf, &["-p"]);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kb(&bootd);
    // 1,500 DISCOVERs a second, each from a new MAC, for 10 s: the cost of a
    // DISCOVER must not grow with the offers already made.
    let seconds = new_macs(&pair, "discover", "1500", "10");
    assert!(seconds.len() >= 9, "{seconds:?}");
    // A collapse shows as every later second answering less. One second may
    // dip (a stall of the host sheds new clients, who ask again and are
    // answered the second after); the rest must keep up, and the whole flood
    // must be answered.
    let short: Vec<usize> = (1..seconds.len())
        .filter(|&second| {
            let (sent, answered) = seconds[second];
            answered * 10 < sent * 8
        })
        .collect();
    assert!(
        short.len() <= 1,
        "seconds {short:?} answered fewer than 80% of their DISCOVERs: {seconds:?}"
    );
    let (sent, answered) = seconds[1..]
        .iter()
        .fold((0, 0), |(s, a), (sent, answered)| (s + sent, a + answered));
    assert!(
        answered * 10 >= sent * 9,
        "{answered} OFFERs for {sent} DISCOVERs over the flood: {seconds:?}"
    );
    new_macs(&pair, "inform", "1500", "5");
    let grown = rss_kb(&bootd).saturating_sub(before);
    eprintln!("RSS grew by {grown} kB; per second (sent, answered): {seconds:?}");
    assert!(grown < 6_000, "RSS grew by {grown} kB");
    let (status, _) = bootd.stop();
    assert_eq!(status.code(), Some(0));
}
