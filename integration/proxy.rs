//! proxyDHCP (`[bootp] proxy = on`) against crafted PXE clients and beside a real
//! DHCP server (dnsmasq), in network namespaces: the exact proxy offer on port
//! 67, the boot server's ACK on port 4011, silence on port-67 requests, access
//! control and notifications, and an operating system served by the site's
//! server alone. The machines that boot through the proxy are in `vm.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::clients::*;
use common::site::{SiteDhcp, Switch, have_dnsmasq};
use common::*;

const SERVER: &str = "10.97.0.1";
/// A client's address, given by the site's server.
const CLIENT: &str = "10.97.0.50";

fn config(dir: &TempDir, bootp_extra: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n\
             [bootp]\nproxy = on\naddress = {SERVER}\nservername = bootd\ndomain = lab\n{bootp_extra}\n\
             [bootfile]\ndefault = pxelinux.0\n00000 = pxelinux.0\n00007 = grubx64.efi\n\
             00016 = bootx64.efi\nipxe = boot.ipxe\n\
             [tftp]\nroot = root\n{extra}"
        ),
    )
}

fn start(ns: &Netns, conf: &Path) -> Bootd {
    let bootd = Bootd::start(ns, conf, &[]);
    bootd.wait_for_log("serving proxyDHCP", Duration::from_secs(5));
    bootd
}

/// Hex with whitespace and `#` comments into bytes.
fn hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.chars())
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// A request: op..chaddr (44 bytes), zero sname and file, cookie, options;
/// padded to BOOTP's 300 bytes.
fn packet(fixed: &str, options: &str) -> Vec<u8> {
    let mut b = hex(fixed);
    assert_eq!(b.len(), 44, "op..chaddr is 44 bytes");
    b.resize(236, 0);
    b.extend_from_slice(&COOKIE);
    b.extend_from_slice(&hex(options));
    b.resize(b.len().max(300), 0);
    b
}

/// An answer: op..chaddr, sname and file NUL-padded, cookie, options, pads to 300.
fn expected(fixed: &str, sname: &str, file: &str, options: &str) -> Vec<u8> {
    let mut b = hex(fixed);
    assert_eq!(b.len(), 44, "op..chaddr is 44 bytes");
    let mut field = sname.as_bytes().to_vec();
    field.resize(64, 0);
    b.extend_from_slice(&field);
    let mut field = file.as_bytes().to_vec();
    field.resize(128, 0);
    b.extend_from_slice(&field);
    b.extend_from_slice(&COOKIE);
    b.extend_from_slice(&hex(options));
    b.resize(b.len().max(300), 0);
    b
}

/// One answer the probe saw: who sent it, and its bytes.
#[derive(Debug)]
struct Seen {
    from: String,
    bytes: Vec<u8>,
}

impl Seen {
    fn yiaddr(&self) -> [u8; 4] {
        self.bytes[16..20].try_into().unwrap()
    }
}

/// Sends `packet` from `local_port` of `interface` in `ns` to `dest`, and
/// returns every answer with its xid within `seconds`.
fn probe(
    ns: &Netns,
    interface: &str,
    local_port: u16,
    dest: &str,
    packet: &[u8],
    seconds: f64,
) -> Vec<Seen> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/proxy_probe.py");
    let (ip, port) = dest.split_once(':').unwrap();
    let packet_hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
    let mut command = ns.command("python3");
    command.arg(script).args([
        interface,
        &local_port.to_string(),
        ip,
        port,
        &packet_hex,
        &seconds.to_string(),
    ]);
    let done = run_bounded(&mut command, Duration::from_secs_f64(seconds + 10.0));
    done.assert_success();
    assert!(done.stdout.contains("DONE"), "{done}");
    done.stdout
        .lines()
        .filter_map(|line| line.strip_prefix("REPLY "))
        .map(|rest| {
            let (from, bytes) = rest.split_once(' ').unwrap();
            Seen {
                from: from.to_string(),
                bytes: hex(bytes),
            }
        })
        .collect()
}

fn assert_bytes(actual: &[u8], expected: &[u8], log: &str) {
    if actual != expected {
        let at = actual
            .iter()
            .zip(expected)
            .position(|(a, e)| a != e)
            .unwrap_or(actual.len().min(expected.len()));
        panic!(
            "bytes differ at offset {at} (lengths {} vs {}):\n actual   {:02x?}\n expected {:02x?}\nbootd's log:\n{log}",
            actual.len(),
            expected.len(),
            &actual[at..actual.len().min(at + 24)],
            &expected[at..expected.len().min(at + 24)]
        );
    }
}

/// A BIOS PXE ROM's DHCPDISCOVER.
fn bios_discover() -> Vec<u8> {
    packet(
        "01 01 06 00 a1b2c3d4 0004 8000
         00000000 00000000 00000000 00000000
         525400aabbcc 00000000000000000000",
        "35 01 01               # DHCPDISCOVER
         39 02 05c0             # 57 max message size 1472
         5d 02 0000             # 93 arch 0, x86 BIOS
         5e 03 010201           # 94 UNDI 2.1
         61 11 00 00112233445566778899aabbccddeeff  # 97
         37 04 01 03 2b 43      # 55
         3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031
                                # 60 PXEClient:Arch:00000:UNDI:002001
         ff",
    )
}

/// EDK2's DHCPDISCOVER on x64.
fn uefi_discover() -> Vec<u8> {
    packet(
        "01 01 06 00 00c0ffee 0000 0000
         00000000 00000000 00000000 00000000
         525400111111 00000000000000000000",
        "35 01 01  39 02 05c0
         37 0b 01 03 06 0c 0f 1c 2b 3c 42 43 61
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         5e 03 010300
         5d 02 0007             # 93 arch 7, x64 UEFI
         3c 20 505845436c69656e743a417263683a30303030373a554e44493a303033303030
         ff",
    )
}

/// EDK2's DHCPREQUEST to the boot server, from 10.97.0.50.
fn uefi_boot_server_request(xid: &str) -> Vec<u8> {
    packet(
        &format!(
            "01 01 06 00 {xid} 0000 0000
             0a610032 00000000 00000000 00000000   # ciaddr 10.97.0.50
             525400111111 00000000000000000000"
        ),
        "35 01 03  39 02 05c0
         37 0b 01 03 06 0c 0f 1c 2b 3c 42 43 61
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         5e 03 010300  5d 02 0007
         3c 20 505845436c69656e743a417263683a30303030373a554e44493a303033303030
         ff",
    )
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_pxe_discover_on_67_gets_the_exact_proxy_offer_and_no_lease_file_is_opened() {
    require_root();
    let pair = Pair::new(&format!("{SERVER}/24"), None);
    let dir = TempDir::new();
    let bootd = start(&pair.server, &config(&dir, "lease_file = leases", ""));
    let seen = probe(
        &pair.client,
        &pair.client_if,
        68,
        "255.255.255.255:67",
        &bios_discover(),
        2.0,
    );
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", bootd.log());
    assert_eq!(seen[0].from, format!("{SERVER}:67"));
    let want = expected(
        "02 01 06 00 a1b2c3d4 0000 8000
         00000000 00000000     # ciaddr, yiaddr: no address
         0a610001 00000000     # siaddr: bootd
         525400aabbcc 00000000000000000000",
        "bootd.lab",
        "pxelinux.0",
        "35 01 02  36 04 0a610001
         3c 09 505845436c69656e74
         61 11 00 00112233445566778899aabbccddeeff
         2b 04 06 01 08 ff     # 43: discovery control 8, BIOS boots the offered file
         43 0b 7078656c696e75782e30 00
         ff",
    );
    assert_bytes(&seen[0].bytes, &want, &bootd.log());
    // UEFI firmware: no option 43, so that it asks port 4011 next.
    let seen = probe(
        &pair.client,
        &pair.client_if,
        68,
        "255.255.255.255:67",
        &uefi_discover(),
        2.0,
    );
    assert_eq!(seen.len(), 1, "{seen:?}");
    let want = expected(
        "02 01 06 00 00c0ffee 0000 8000
         00000000 00000000 0a610001 00000000
         525400111111 00000000000000000000",
        "bootd.lab",
        "grubx64.efi",
        "35 01 02  36 04 0a610001
         3c 09 505845436c69656e74
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         43 0c 677275627836342e656669 00
         ff",
    );
    assert_bytes(&seen[0].bytes, &want, &bootd.log());
    let log = bootd.log();
    assert!(
        log.contains("52-54-00-AA-BB-CC: proxy DHCPOFFER via 255.255.255.255:68, boot file pxelinux.0 (PXE, boot the offered file)"),
        "{log}"
    );
    assert!(
        log.contains("[bootp] proxy = on: the site's DHCP server gives the addresses and network settings, so [bootp] lease_file set nothing"),
        "{log}"
    );
    for name in ["leases", "leases.lock"] {
        assert!(!dir.path.join(name).exists(), "{name} was created");
    }
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn the_boot_server_acks_from_4011_to_the_source_of_each_request() {
    require_root();
    let pair = Pair::new(&format!("{SERVER}/24"), Some(&format!("{CLIENT}/24")));
    let dir = TempDir::new();
    let bootd = start(&pair.server, &config(&dir, "", ""));
    // EDK2: from its port 4011.
    let request = uefi_boot_server_request("5eed1234");
    let seen = probe(
        &pair.client,
        &pair.client_if,
        4011,
        &format!("{SERVER}:4011"),
        &request,
        2.0,
    );
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", bootd.log());
    assert_eq!(seen[0].from, format!("{SERVER}:4011"));
    let want = expected(
        "02 01 06 00 5eed1234 0000 0000
         0a610032 00000000     # ciaddr copied, yiaddr none
         0a610001 00000000
         525400111111 00000000000000000000",
        "bootd.lab",
        "grubx64.efi",
        "35 01 05  36 04 0a610001     # DHCPACK, server identifier
         3c 09 505845436c69656e74
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         43 0c 677275627836342e656669 00
         ff",
    );
    assert_bytes(&seen[0].bytes, &want, &bootd.log());
    // iPXE: from port 68, asking for boot item 0x8000: its item comes back.
    let request = packet(
        "01 01 06 00 0badcafe 0000 0000
         0a610032 00000000 00000000 00000000
         525400222222 00000000000000000000",
        "35 01 03  5d 02 0000
         3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031
         2b 07 47 04 8000 0000 ff
         ff",
    );
    let seen = probe(
        &pair.client,
        &pair.client_if,
        68,
        &format!("{SERVER}:4011"),
        &request,
        2.0,
    );
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", bootd.log());
    assert_eq!(seen[0].from, format!("{SERVER}:4011"));
    let want = expected(
        "02 01 06 00 0badcafe 0000 0000
         0a610032 00000000 0a610001 00000000
         525400222222 00000000000000000000",
        "bootd.lab",
        "pxelinux.0",
        "35 01 05  36 04 0a610001  3c 09 505845436c69656e74
         2b 07 47 04 8000 0000 ff
         43 0b 7078656c696e75782e30 00
         ff",
    );
    assert_bytes(&seen[0].bytes, &want, &bootd.log());
    assert!(
        bootd.log().contains(
            "52-54-00-11-11-11: boot server DHCPACK to 10.97.0.50:4011, boot file grubx64.efi (PXE)"
        ),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_request_on_port_67_gets_no_answer_whoever_it_names() {
    require_root();
    let pair = Pair::new(&format!("{SERVER}/24"), None);
    let dir = TempDir::new();
    let bootd = start(&pair.server, &config(&dir, "", ""));
    assert_eq!(
        probe(
            &pair.client,
            &pair.client_if,
            68,
            "255.255.255.255:67",
            &bios_discover(),
            1.0
        )
        .len(),
        1
    );
    // The ROM takes the site's offer (server 10.97.0.2), or (a confused client)
    // names bootd: neither request is answered.
    for server_id in ["0a610002", "0a610001"] {
        let request = packet(
            "01 01 06 00 a1b2c3d5 0000 8000
             00000000 00000000 00000000 00000000
             525400aabbcc 00000000000000000000",
            &format!(
                "35 01 03
                 36 04 {server_id}         # 54
                 32 04 0a610032            # 50 10.97.0.50
                 5d 02 0000
                 61 11 00 00112233445566778899aabbccddeeff
                 3c 20 505845436c69656e743a417263683a30303030303a554e44493a303032303031
                 ff"
            ),
        );
        let seen = probe(
            &pair.client,
            &pair.client_if,
            68,
            "255.255.255.255:67",
            &request,
            2.0,
        );
        assert!(
            seen.is_empty(),
            "a proxy answered a port-67 request: {seen:?}"
        );
    }
    let log = bootd.log();
    assert!(
        log.contains("52-54-00-AA-BB-CC: DHCPREQUEST not answered: bootd is a proxy, the site's DHCP server answers it"),
        "{log}"
    );
    assert!(!log.contains("DHCPACK"), "{log}");
}

/// A UDP listener for bootd's notifications, in `ns`.
struct Listener {
    process: Spawned,
}

impl Listener {
    fn start(ns: &Netns, port: u16) -> Listener {
        let process = Spawned::start(ns.command("python3").args([
            "-u",
            "-c",
            &format!(
                "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('127.0.0.1', {port}))\nprint('listening')\nwhile True:\n    data, _ = s.recvfrom(1024)\n    print(data.decode())\n"
            ),
        ]));
        assert!(process.wait_for_stdout("listening", Duration::from_secs(10)));
        Listener { process }
    }

    /// The notifications, waiting up to `bound` for `count` of them.
    fn lines(&self, count: usize, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        loop {
            let lines: Vec<String> = self
                .process
                .stdout_so_far()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_boot_server_request_from_a_client_never_offered_anything_is_answered_and_notified() {
    require_root();
    let pair = Pair::new(&format!("{SERVER}/24"), Some(&format!("{CLIENT}/24")));
    let dir = TempDir::new();
    let listener = Listener::start(&pair.server, 12346);
    let bootd = start(&pair.server, &config(&dir, "notify = 127.0.0.1:12346", ""));
    // No DISCOVER first: bootd may have restarted since its offer, or the site's
    // server may name it as boot server.
    let request = uefi_boot_server_request("00000abc");
    let seen = probe(
        &pair.client,
        &pair.client_if,
        4011,
        &format!("{SERVER}:4011"),
        &request,
        2.0,
    );
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", bootd.log());
    assert_eq!(seen[0].yiaddr(), [0; 4]);
    // The notification carries the address the client holds (its ciaddr).
    assert_eq!(
        listener.lines(1, Duration::from_secs(5)),
        vec!["BOOT,8c41ee7d-6e2a-4e1f-b1c0-a0b0c0d0e0f0,52-54-00-11-11-11,10.97.0.50"]
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn access_mac_refuses_an_unlisted_machine_on_both_ports() {
    require_root();
    let pair = Pair::new(&format!("{SERVER}/24"), Some(&format!("{CLIENT}/24")));
    let dir = TempDir::new();
    let conf = config(&dir, "access = mac", "[mac]\n52-54-00-AA-BB-CC = enable\n");
    let bootd = start(&pair.server, &conf);
    let at_67 = probe(
        &pair.client,
        &pair.client_if,
        68,
        "255.255.255.255:67",
        &uefi_discover(),
        1.5,
    );
    let request = uefi_boot_server_request("00000abd");
    let at_4011 = probe(
        &pair.client,
        &pair.client_if,
        4011,
        &format!("{SERVER}:4011"),
        &request,
        1.5,
    );
    assert!(
        at_67.is_empty() && at_4011.is_empty(),
        "{at_67:?} {at_4011:?}"
    );
    let log = bootd.log();
    assert!(
        log.contains("52-54-00-11-11-11: refused: no [mac] entry matches it"),
        "{log}"
    );
    // The listed machine is answered.
    let seen = probe(
        &pair.client,
        &pair.client_if,
        68,
        "255.255.255.255:67",
        &bios_discover(),
        1.5,
    );
    assert_eq!(seen.len(), 1, "{log}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn an_http_boot_client_is_offered_the_url_on_the_httpd_port_and_metrics_count_it_by_port() {
    require_root();
    let pair = Pair::new(&format!("{SERVER}/24"), None);
    let dir = TempDir::new();
    // With -H: the URL names a file on bootd's own HTTP service.
    let bootd = Bootd::start(
        &pair.server,
        &config(&dir, "", "[httpd]\nport = 8080\n"),
        &["-H"],
    );
    bootd.wait_for_log("serving proxyDHCP", Duration::from_secs(5));
    let discover = packet(
        "01 01 06 00 00d00d00 0000 0000
         00000000 00000000 00000000 00000000
         525400333333 00000000000000000000",
        "35 01 01  39 02 05c0
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         5e 03 010300  5d 02 0010   # 93 arch 16: x64 UEFI HTTP
         3c 21 48545450436c69656e743a417263683a30303031363a554e44493a303033303030
         ff",
    );
    let seen = probe(
        &pair.client,
        &pair.client_if,
        68,
        "255.255.255.255:67",
        &discover,
        2.0,
    );
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", bootd.log());
    let url = "http://10.97.0.1:8080/bootx64.efi";
    let want = expected(
        "02 01 06 00 00d00d00 0000 8000
         00000000 00000000 0a610001 00000000
         525400333333 00000000000000000000",
        "bootd.lab",
        url,
        "35 01 02  36 04 0a610001
         3c 0a 48545450436c69656e74     # 60 HTTPClient
         61 11 00 8c41ee7d6e2a4e1fb1c0a0b0c0d0e0f0
         43 22 687474703a2f2f31302e39372e302e313a383038302f626f6f747836342e656669 00
         ff",
    );
    assert_bytes(&seen[0].bytes, &want, &bootd.log());

    // A DHCPREQUEST on port 67 is the site's server's: left unanswered.
    let request = packet(
        "01 01 06 00 00d00d01 0000 0000
         00000000 00000000 00000000 00000000
         525400333333 00000000000000000000",
        "35 01 03  32 04 0a610032  36 04 0a610002
         3c 21 48545450436c69656e743a417263683a30303031363a554e44493a303033303030
         ff",
    );
    let seen = probe(
        &pair.client,
        &pair.client_if,
        68,
        "255.255.255.255:67",
        &request,
        1.0,
    );
    assert_eq!(seen.len(), 0, "{seen:?}\n{}", bootd.log());

    // /metrics counts what the proxy was asked and answered, by port, and
    // passes promtool.
    let scrape = dir.path.join("metrics.txt");
    let deadline = Instant::now() + Duration::from_secs(5);
    let wanted = [
        "bootd_dhcp_requests_total{port=\"67\",type=\"discover\"} 1\n",
        "bootd_dhcp_requests_total{port=\"67\",type=\"request\"} 1\n",
        "bootd_dhcp_replies_total{port=\"67\",type=\"offer\"} 1\n",
        "bootd_dhcp_refusals_total{port=\"67\",reason=\"for_the_site_server\"} 1\n",
        "bootd_dhcp_requests_total{port=\"4011\",type=\"request\"} 0\n",
        "bootd_dhcp_replies_total{port=\"4011\",type=\"ack\"} 0\n",
    ];
    let text = loop {
        run_bounded(
            pair.server
                .command("curl")
                .args(["-sS", "-o"])
                .arg(&scrape)
                .arg("http://10.97.0.1:8080/metrics"),
            Duration::from_secs(10),
        )
        .assert_success();
        let text = std::fs::read_to_string(&scrape).unwrap_or_default();
        if wanted.iter().all(|w| text.contains(w)) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for line in wanted {
        assert!(text.contains(line), "{line}in:\n{text}");
    }
    let check = run_bounded(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("promtool check metrics < \"$1\"")
            .arg("sh")
            .arg(&scrape),
        Duration::from_secs(30),
    );
    assert!(check.success(), "promtool: {check}\n{text}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn beside_a_real_dhcp_server_the_os_gets_its_address_from_it_and_firmware_gets_both_offers() {
    require_root();
    assert!(have_dnsmasq(), "dnsmasq is missing: run scripts/deps.sh");
    let switch = Switch::new();
    let bootd_ns = Netns::new("s");
    switch.join(&bootd_ns, Some(&format!("{SERVER}/24")));
    let site_ns = Netns::new("d");
    let site_if = switch.join(&site_ns, Some("10.97.0.2/24"));
    let client = Netns::new("c");
    let client_if = switch.join(&client, None);
    let dir = TempDir::new();
    let site = SiteDhcp::start(&site_ns, &site_if, "10.97.0.50", "10.97.0.99", &dir);
    let bootd = start(&bootd_ns, &config(&dir, "", ""));
    // An operating system: the site's server answers it, bootd leaves it alone.
    let env = udhcpc_on(&client, &client_if, &dir, "os", &[]).unwrap_or_else(|| {
        panic!(
            "no lease; dnsmasq:\n{}\nbootd:\n{}",
            site.log(),
            bootd.log()
        )
    });
    assert_eq!(env["serverid"], "10.97.0.2");
    let ip = env["ip"].clone();
    assert!(site.leases().contains(&ip), "{}", site.leases());
    let log = bootd.log();
    assert!(
        log.contains("DHCPDISCOVER from a client that is no PXE or HTTP boot firmware"),
        "{log}"
    );
    assert!(!log.contains("proxy DHCPOFFER"), "{log}");
    // PXE firmware hears both: the site's address offer and bootd's boot offer,
    // which gives no address.
    let seen = probe(
        &client,
        &client_if,
        68,
        "255.255.255.255:67",
        &bios_discover(),
        4.0,
    );
    let from_site: Vec<&Seen> = seen.iter().filter(|s| s.from == "10.97.0.2:67").collect();
    let from_bootd: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.from == format!("{SERVER}:67"))
        .collect();
    assert_eq!((from_site.len(), from_bootd.len()), (1, 1), "{seen:?}");
    assert_ne!(from_site[0].yiaddr(), [0; 4]);
    assert_eq!(from_bootd[0].yiaddr(), [0; 4]);
}
