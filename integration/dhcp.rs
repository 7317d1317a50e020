//! The BOOTP/DHCP/PXE service against real DHCP clients (busybox udhcpc, ISC
//! dhclient, dhcpcd) in network namespaces.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::clients::*;
use common::*;

const SERVER: &str = "10.94.0.1";

fn config(dir: &TempDir, bootp_extra: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = 10.94.0.100\npool_count = 20\ndns = 10.94.0.53;9.9.9.9\ndomain = boot.test\nlease_time = 7200\nlease_file = leases\n{bootp_extra}\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n{extra}"
        ),
    )
}

fn start(pair: &Pair, conf: &Path) -> Bootd {
    let bootd = Bootd::start(&pair.server, conf, &[]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    bootd
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn udhcpc_gets_address_router_dns_domain_and_lease_time() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "allow_simple_dhcp = on", ""));
    let env = udhcpc(&pair, &dir, "os", &["-O", "15"])
        .unwrap_or_else(|| panic!("no lease; log:\n{}", bootd.log()));
    assert_eq!(env["ip"], "10.94.0.100");
    assert_eq!(env["subnet"], "255.255.255.0");
    assert_eq!(env["router"], SERVER);
    assert_eq!(env["dns"], "10.94.0.53 9.9.9.9");
    assert_eq!(env["domain"], "boot.test");
    assert_eq!(env["lease"], "7200");
    assert_eq!(env["serverid"], SERVER);
    assert!(
        bootd.log().contains("DHCPACK 10.94.0.100"),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn dhclient_gets_address_router_dns_domain_and_lease_time() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "allow_simple_dhcp = on", ""));
    let (script, out) = hook(&dir, "dhclient", "BOUND");
    let pid_file = dir.path.join("dhclient.pid");
    let lease_file = dir.path.join("dhclient.leases");
    let status = pair
        .client
        .command("timeout")
        .args(["20", "dhclient", "-1", "-sf"])
        .arg(&script)
        .arg("-lf")
        .arg(&lease_file)
        .arg("-pf")
        .arg(&pid_file)
        .arg(&pair.client_if)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // dhclient stays in the background after binding: end it by its PID file.
    if let Ok(pid) = std::fs::read_to_string(&pid_file)
        && let Ok(pid) = pid.trim().parse::<i32>()
    {
        // SAFETY: kill(2) on the dhclient this test started.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    assert!(status.success(), "dhclient failed; log:\n{}", bootd.log());
    let env = read_env(&out);
    assert_eq!(env["new_ip_address"], "10.94.0.100");
    assert_eq!(env["new_subnet_mask"], "255.255.255.0");
    assert_eq!(env["new_routers"], SERVER);
    assert_eq!(env["new_domain_name_servers"], "10.94.0.53 9.9.9.9");
    assert_eq!(env["new_domain_name"], "boot.test");
    assert_eq!(env["new_dhcp_lease_time"], "7200");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn dhcpcd_gets_address_router_dns_domain_and_lease_time() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "allow_simple_dhcp = on", ""));
    let (script, out) = hook(&dir, "dhcpcd", "BOUND");
    let status = pair
        .client
        .command("timeout")
        .args(["30", "dhcpcd", "-B", "-1", "-4", "-f", "/dev/null", "-c"])
        .arg(&script)
        .args([
            "-o",
            "domain_name_servers",
            "-o",
            "domain_name",
            &pair.client_if,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // dhcpcd keeps its lease under /var/lib/dhcpcd, outside the namespace.
    let _ = std::fs::remove_file(format!("/var/lib/dhcpcd/{}.lease", pair.client_if));
    assert!(status.success(), "dhcpcd failed; log:\n{}", bootd.log());
    let env = read_env(&out);
    assert_eq!(env["new_ip_address"], "10.94.0.100");
    assert_eq!(env["new_subnet_cidr"], "24");
    assert_eq!(env["new_routers"], SERVER);
    assert_eq!(env["new_domain_name_servers"], "10.94.0.53 9.9.9.9");
    assert_eq!(env["new_domain_name"], "boot.test");
    assert_eq!(env["new_dhcp_lease_time"], "7200");
    // T1 = 50%, T2 = 87.5% of the lease (RFC 2131 §4.4.5).
    assert_eq!(env["new_dhcp_renewal_time"], "3600");
    assert_eq!(env["new_dhcp_rebinding_time"], "6300");
}

const PXE_BIOS: [&str; 6] = [
    "-V",
    "PXEClient:Arch:00000:UNDI:002001",
    "-x",
    "0x5d:0000",
    "-x",
    "0x61:00000102030405060708090a0b0c0d0e0f",
];

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_pxe_request_gets_boot_file_siaddr_and_option_43() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "", ""));
    let env = udhcpc(&pair, &dir, "pxe", &PXE_BIOS)
        .unwrap_or_else(|| panic!("no lease; log:\n{}", bootd.log()));
    assert_eq!(env["ip"], "10.94.0.100");
    assert_eq!(env["boot_file"], "pxelinux.0");
    assert_eq!(env["siaddr"], SERVER);
    // Discovery control 8: boot the file named in the reply, no boot-server discovery.
    assert_eq!(env["opt43"], "060108ff");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn the_boot_file_follows_the_client_architecture() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "", "");
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "default = pxelinux.0",
        "default = pxelinux.0\n00007 = bootx64.efi",
    );
    std::fs::write(&conf, text).unwrap();
    let bootd = start(&pair, &conf);
    let env = udhcpc(
        &pair,
        &dir,
        "uefi",
        &["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"],
    )
    .unwrap_or_else(|| panic!("no lease; log:\n{}", bootd.log()));
    assert_eq!(env["boot_file"], "bootx64.efi");
    // An architecture with no entry gets `default`, with a warning.
    set_mac(&pair, "02:00:00:00:00:0b");
    let env = udhcpc(
        &pair,
        &dir,
        "arm",
        &["-V", "PXEClient:Arch:00011:UNDI:003016", "-x", "0x5d:000b"],
    )
    .unwrap();
    assert_eq!(env["boot_file"], "pxelinux.0");
    assert!(
        bootd
            .log()
            .contains("no [bootfile] entry for architecture 11"),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn without_simple_dhcp_only_machines_that_pxe_booted_are_served() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "allow_simple_dhcp = off", ""));
    assert!(
        udhcpc(&pair, &dir, "os-first", &[]).is_none(),
        "an unknown OS client must be ignored"
    );
    assert!(
        bootd.log().contains("allow_simple_dhcp is off"),
        "{}",
        bootd.log()
    );
    let pxe = udhcpc(&pair, &dir, "pxe", &PXE_BIOS).unwrap();
    // The same machine's OS now asks: it is served, with the same address.
    let os = udhcpc(&pair, &dir, "os-after", &[])
        .unwrap_or_else(|| panic!("OS phase not served; log:\n{}", bootd.log()));
    assert_eq!(os["ip"], pxe["ip"]);
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn bindings_survive_sigkill() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "allow_simple_dhcp = on", "");
    let mut bootd = start(&pair, &conf);
    set_mac(&pair, "02:00:00:00:00:01");
    assert_eq!(udhcpc(&pair, &dir, "a", &[]).unwrap()["ip"], "10.94.0.100");
    set_mac(&pair, "02:00:00:00:00:02");
    assert_eq!(udhcpc(&pair, &dir, "b", &[]).unwrap()["ip"], "10.94.0.101");
    bootd.signal(libc::SIGKILL);
    bootd.wait(Duration::from_secs(5)).expect("killed");
    let bootd = start(&pair, &conf);
    assert!(bootd.log().contains("2 bindings"), "{}", bootd.log());
    // The second machine asks first after the restart: it must not get .100.
    let again = udhcpc(&pair, &dir, "b2", &[]).unwrap();
    assert_eq!(again["ip"], "10.94.0.101", "log:\n{}", bootd.log());
    set_mac(&pair, "02:00:00:00:00:01");
    assert_eq!(udhcpc(&pair, &dir, "a2", &[]).unwrap()["ip"], "10.94.0.100");
    set_mac(&pair, "02:00:00:00:00:03");
    assert_eq!(udhcpc(&pair, &dir, "c", &[]).unwrap()["ip"], "10.94.0.102");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn static_reservations_are_kept_for_their_machine() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(
        &dir,
        "allow_simple_dhcp = on",
        "[static_dhcp]\n02-00-00-00-00-05 = 10.94.0.100\n",
    );
    let _bootd = start(&pair, &conf);
    set_mac(&pair, "02:00:00:00:00:09");
    // .100 is reserved: another machine gets the next address.
    assert_eq!(
        udhcpc(&pair, &dir, "other", &[]).unwrap()["ip"],
        "10.94.0.101"
    );
    set_mac(&pair, "02:00:00:00:00:05");
    assert_eq!(
        udhcpc(&pair, &dir, "owner", &[]).unwrap()["ip"],
        "10.94.0.100"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_second_dhcp_server_on_the_host_is_reported() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "", "");
    let _first = start(&pair, &conf);
    // Its own lease file: a shared one would be refused first, for its lock.
    let second_conf = dir.write(
        "second.ini",
        &std::fs::read_to_string(&conf)
            .unwrap()
            .replace("lease_file = leases", "lease_file = second-leases"),
    );
    let mut second = Bootd::start(&pair.server, &second_conf, &["-p"]);
    let (status, _) = second
        .wait(Duration::from_secs(5))
        .expect("the second exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        second.log().contains("the port is already in use"),
        "{}",
        second.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn two_served_interfaces_answer_each_client_from_its_own() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let second = Leg::new(&pair.server, "10.95.0.1/24");
    let dir = TempDir::new();
    let conf = config(&dir, "allow_simple_dhcp = on", "");
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace(
            "pool_start = 10.94.0.100",
            "pool_start = 10.94.0.100; 10.95.0.100",
        )
        .replace("dns = 10.94.0.53;9.9.9.9", "dns = auto");
    std::fs::write(&conf, text).unwrap();
    let bootd = start(&pair, &conf);
    bootd.wait_for_log(
        &format!(
            "serving BOOTP/DHCP on {} (10.95.0.0/24) as 10.95.0.1",
            second.server_if
        ),
        Duration::from_secs(5),
    );
    bootd.wait_for_log("serving TFTP on 10.95.0.1:69", Duration::from_secs(5));
    let first = udhcpc(&pair, &dir, "first", &[])
        .unwrap_or_else(|| panic!("first network not served; log:\n{}", bootd.log()));
    assert_eq!(first["ip"], "10.94.0.100");
    assert_eq!(first["serverid"], "10.94.0.1");
    assert_eq!(first["router"], "10.94.0.1");
    assert_eq!(first["siaddr"], "10.94.0.1");
    let other = udhcpc_on(&second.client, &second.client_if, &dir, "second", &[])
        .unwrap_or_else(|| panic!("second network not served; log:\n{}", bootd.log()));
    assert_eq!(other["ip"], "10.95.0.100");
    assert_eq!(other["serverid"], "10.95.0.1");
    assert_eq!(other["router"], "10.95.0.1");
    assert_eq!(other["siaddr"], "10.95.0.1");
    // Bindings of both networks share the lease file.
    let leases = std::fs::read_to_string(dir.path.join("leases")).unwrap();
    assert!(
        leases.contains(" 10.94.0.100 ") && leases.contains(" 10.95.0.100 "),
        "{leases}"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn two_pools_on_one_interface_are_refused_at_start() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    sh(&[
        "ip",
        "-n",
        &pair.server.name,
        "addr",
        "add",
        "10.96.0.1/24",
        "dev",
        &pair.server_if,
    ]);
    let dir = TempDir::new();
    let conf = config(&dir, "", "");
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "pool_start = 10.94.0.100",
        "pool_start = 10.94.0.100;10.96.0.100",
    );
    std::fs::write(&conf, text).unwrap();
    let mut bootd = Bootd::start(&pair.server, &conf, &[]);
    let (status, _) = bootd.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(
        bootd
            .log()
            .contains("bootd serves one network per interface"),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_pool_running_past_the_network_hands_out_only_its_host_addresses() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    // 20 addresses from .253 would run over the broadcast address into 10.94.1.0.
    let conf = dir.write(
        "bootd.ini",
        "[logger]\nlevel = debug\n[bootp]\npool_start = 10.94.0.253\npool_count = 20\nallow_simple_dhcp = on\nlease_file = leases\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n",
    );
    let bootd = start(&pair, &conf);
    assert!(
        bootd
            .log()
            .contains("pool 10.94.0.253 + 20 (2 addresses, 10.94.0.253 to 10.94.0.254)"),
        "{}",
        bootd.log()
    );
    set_mac(&pair, "02:00:00:00:00:01");
    assert_eq!(udhcpc(&pair, &dir, "a", &[]).unwrap()["ip"], "10.94.0.253");
    set_mac(&pair, "02:00:00:00:00:02");
    assert_eq!(udhcpc(&pair, &dir, "b", &[]).unwrap()["ip"], "10.94.0.254");
    set_mac(&pair, "02:00:00:00:00:03");
    assert!(udhcpc(&pair, &dir, "c", &[]).is_none(), "{}", bootd.log());
    assert!(
        bootd.log().contains(
            "02-00-00-00-00-03: no address left: all 2 pool addresses are bound or offered"
        ),
        "{}",
        bootd.log()
    );
}

/// integration/dhcp_probe.py run in the client namespace; its output.
fn probe(pair: &Pair, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/dhcp_probe.py");
    let out = pair
        .client
        .command("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const SOME_UUID: &str = "99999999abcdef001111abcdef000bad";

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn offers_hoarded_by_forged_macs_yield_to_a_real_machine() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "allow_simple_dhcp = on", "");
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("pool_count = 20", "pool_count = 50");
    std::fs::write(&conf, text).unwrap();
    let bootd = start(&pair, &conf);
    // 50 made-up PXE ROMs, one DISCOVER each: every address is offered.
    let interface = pair.client_if.as_str();
    probe(
        &pair,
        &[
            "machines",
            interface,
            "02:00:00:00:01",
            "50",
            SOME_UUID,
            "0.5",
        ],
    );
    bootd.wait_for_log("02-00-00-00-01-31: DHCPOFFER", Duration::from_secs(5));
    // A real machine still gets an address: the oldest offer yields.
    set_mac(&pair, "02:00:00:00:00:0a");
    let env = udhcpc(&pair, &dir, "real", &[])
        .unwrap_or_else(|| panic!("no address for the real machine; log:\n{}", bootd.log()));
    assert_eq!(env["ip"], "10.94.0.100");
    assert!(
        bootd.log().contains(
            "02-00-00-00-00-0A: the pool is exhausted by offers: offering 10.94.0.100, offered to 02-00-00-00-01-00"
        ),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn requests_naming_no_address_bind_nothing() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "allow_simple_dhcp = on", ""));
    // 60 REQUESTs with neither option 50 nor ciaddr, from MACs that never sent
    // a DISCOVER: RFC 2131 gives them no meaning, and the pool has 20 addresses.
    let interface = pair.client_if.as_str();
    let answered = probe(&pair, &["nameless", interface, "02:00:00:00:02", "60"]);
    assert_eq!(answered, "ANSWERED 0", "{}", bootd.log());
    assert!(
        bootd.log().contains(
            "02-00-00-00-02-3B: DHCPREQUEST names no address (neither option 50 nor ciaddr) and this MAC holds none: not answered"
        ),
        "{}",
        bootd.log()
    );
    let leases = std::fs::read_to_string(dir.path.join("leases")).unwrap_or_default();
    assert!(!leases.contains("02-00-00-00-02-"), "{leases}");
    // The pool is whole for a real machine.
    let env = udhcpc(&pair, &dir, "real", &[])
        .unwrap_or_else(|| panic!("no address; log:\n{}", bootd.log()));
    assert_eq!(env["ip"], "10.94.0.100");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_bootp_request_claiming_another_machines_address_is_not_answered() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let bootd = start(&pair, &config(&dir, "allow_simple_dhcp = on", ""));
    set_mac(&pair, "02:00:00:00:00:0a");
    let owner = udhcpc(&pair, &dir, "owner", &[]).unwrap();
    assert_eq!(owner["ip"], "10.94.0.100");
    // The address is up on the client side, so a unicast answer would arrive.
    sh(&[
        "ip",
        "-n",
        &pair.client.name,
        "addr",
        "add",
        "10.94.0.100/24",
        "dev",
        &pair.client_if,
    ]);
    let interface = pair.client_if.as_str();
    let stranger = probe(
        &pair,
        &["claim", interface, "02:00:00:00:00:0b", "10.94.0.100"],
    );
    assert_eq!(stranger, "TIMEOUT", "{}", bootd.log());
    assert!(
        bootd.log().contains(
            "02-00-00-00-00-0B: claims 10.94.0.100 (ciaddr), which is 02-00-00-00-00-0A's: not answered (a spoofed address?)"
        ),
        "{}",
        bootd.log()
    );
    assert!(!bootd.log().contains("02-00-00-00-00-0B: BOOTREPLY"));
    // The owner asking with its own address is answered.
    let own = probe(
        &pair,
        &["claim", interface, "02:00:00:00:00:0a", "10.94.0.100"],
    );
    assert_eq!(own, "ANSWERED", "{}", bootd.log());
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_pool_start_no_host_may_have_is_reported_by_check_and_at_start() {
    require_root();
    let pair = Pair::new("10.94.0.1/24", None);
    let dir = TempDir::new();
    let conf = |pool_start: &str| {
        let conf = config(&dir, "allow_simple_dhcp = on", "");
        let text = std::fs::read_to_string(&conf).unwrap().replace(
            "pool_start = 10.94.0.100",
            &format!("pool_start = {pool_start}"),
        );
        std::fs::write(&conf, text).unwrap();
        conf
    };
    let check = |conf: &Path| {
        pair.server
            .command(bootd_binary())
            .arg("--check")
            .arg("-c")
            .arg(conf)
            .output()
            .unwrap()
    };
    let broadcast = conf("10.94.0.255");
    let out = check(&broadcast);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("pool_start = 10.94.0.255 is the broadcast address of 10.94.0.0/24"),
        "{said}"
    );
    let mut refused = Bootd::start(&pair.server, &broadcast, &[]);
    let (status, _) = refused.wait(Duration::from_secs(5)).expect("it exits");
    assert_eq!(status.code(), Some(1), "{}", refused.log());
    // The server's own address: a warning, and the pool leaves it out.
    let own = conf("10.94.0.1");
    let out = check(&own);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("pool_start = 10.94.0.1 is this server's own address on"),
        "{said}"
    );
    let bootd = start(&pair, &own);
    assert!(
        bootd.log().contains("is this server's own address on"),
        "{}",
        bootd.log()
    );
    set_mac(&pair, "02:00:00:00:00:01");
    let env = udhcpc(&pair, &dir, "a", &[]).unwrap();
    assert_eq!(env["ip"], "10.94.0.2");
}
