//! Who may boot: `access = mac`, `uuid` and `http`, and UDP notifications, against
//! the real daemon in network namespaces.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::clients::*;
use common::*;

const UUID_A: &str = "12345678abcdef001111abcdefabcdef";
const UUID_B: &str = "99999999abcdef001111abcdef000bad";

fn config(dir: &TempDir, bootp_extra: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = 10.97.0.100\npool_count = 20\nlease_file = leases\n{bootp_extra}\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n{extra}"
        ),
    )
}

fn start(pair: &Pair, conf: &Path) -> Bootd {
    let bootd = Bootd::start(&pair.server, conf, &[]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    bootd
}

fn pxe_args(uuid: &str) -> Vec<String> {
    vec![
        "-V".into(),
        "PXEClient:Arch:00000:UNDI:002001".into(),
        "-x".into(),
        "0x5d:0000".into(),
        "-x".into(),
        format!("0x61:00{uuid}"),
        "-O".into(),
        "12".into(),
    ]
}

fn pxe(
    pair: &Pair,
    dir: &TempDir,
    name: &str,
    uuid: &str,
) -> Option<std::collections::HashMap<String, String>> {
    let args = pxe_args(uuid);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    udhcpc(pair, dir, name, &args)
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("integration")
        .join(name)
}

/// Starts a Python helper in `ns` and waits for its first line.
fn python(ns: &Netns, name: &str, args: &[&str]) -> Guard {
    let mut child = ns
        .command("python3")
        .arg(script(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "listening", "{name} did not start");
    Guard(child)
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn mac_list_serves_listed_machines_only_and_says_why() {
    require_root();
    let pair = Pair::new("10.97.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(
        &dir,
        "access = mac\nallow_simple_dhcp = on",
        "[mac]\n02-00-00/24 = enable\n02-00-00-00-00-66 = disable\n[static_dhcp]\n02-00-00-00-00-66 = 10.97.0.50\n",
    );
    let bootd = start(&pair, &conf);
    set_mac(&pair, "02:00:00:00:00:01");
    assert_eq!(
        udhcpc(&pair, &dir, "listed", &[]).unwrap()["ip"],
        "10.97.0.100"
    );
    set_mac(&pair, "06:00:00:00:00:01");
    assert!(udhcpc(&pair, &dir, "unlisted", &[]).is_none());
    assert!(
        bootd
            .log()
            .contains("06-00-00-00-00-01: refused: no [mac] entry matches it"),
        "{}",
        bootd.log()
    );
    // An explicit disable wins over a [static_dhcp] reservation.
    set_mac(&pair, "02:00:00:00:00:66");
    assert!(udhcpc(&pair, &dir, "disabled", &[]).is_none());
    assert!(
        bootd
            .log()
            .contains("02-00-00-00-00-66: refused: [mac] 02-00-00-00-00-66 (line 15) disables it"),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn uuid_list_serves_listed_machines_and_their_os() {
    require_root();
    let pair = Pair::new("10.97.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(
        &dir,
        "access = uuid\nallow_simple_dhcp = on",
        &format!("[uuid]\n{UUID_A} = enable\n"),
    );
    let bootd = start(&pair, &conf);
    set_mac(&pair, "02:00:00:00:00:0b");
    assert!(
        pxe(&pair, &dir, "b", UUID_B).is_none(),
        "an unlisted UUID must be ignored"
    );
    assert!(
        bootd
            .log()
            .contains("no [uuid] entry matches UUID 99999999-abcd-ef00-1111-abcdef000bad"),
        "{}",
        bootd.log()
    );
    set_mac(&pair, "02:00:00:00:00:0a");
    let firmware = pxe(&pair, &dir, "a", UUID_A)
        .unwrap_or_else(|| panic!("listed UUID refused:\n{}", bootd.log()));
    // Its OS sends no UUID: it inherits the PXE phase's.
    let os =
        udhcpc(&pair, &dir, "a-os", &[]).unwrap_or_else(|| panic!("OS refused:\n{}", bootd.log()));
    assert_eq!(os["ip"], firmware["ip"]);
    // A plain client never seen in PXE has no UUID: refused, with the reason.
    set_mac(&pair, "02:00:00:00:00:0c");
    assert!(udhcpc(&pair, &dir, "c", &[]).is_none());
    assert!(
        bootd
            .log()
            .contains("02-00-00-00-00-0C: refused: no UUID known"),
        "{}",
        bootd.log()
    );
}

/// bootd with `access = http`, asking the test's authorisation server, which
/// allows UUID_A and never answers a request about the MACs of `never_answer`
/// (comma-separated; a trailing `*` makes a prefix).
struct HttpSetup {
    // Field order is drop order: bootd and the server end before their namespace.
    bootd: Bootd,
    _server: Guard,
    requests: PathBuf,
    dir: TempDir,
    pair: Pair,
}

impl HttpSetup {
    fn new(never_answer: Option<&str>, timeout: &str) -> HttpSetup {
        HttpSetup::with(never_answer, timeout, "")
    }

    /// `http_extra`: more lines for `[http]`.
    fn with(never_answer: Option<&str>, timeout: &str, http_extra: &str) -> HttpSetup {
        let pair = Pair::new("10.97.0.1/24", None);
        let dir = TempDir::new();
        let requests = dir.path.join("requests.log");
        let mut args = vec![
            "127.0.0.1",
            "18080",
            requests.to_str().unwrap(),
            "12345678-abcd-ef00-1111-abcdefabcdef",
        ];
        args.extend(never_answer);
        let server = python(&pair.server, "auth_server.py", &args);
        let conf = config(
            &dir,
            "access = http",
            &format!(
                "[http]\nlocation = 127.0.0.1:18080\npxe = boot\ndhcp = linux\ntimeout = {timeout}\n{http_extra}"
            ),
        );
        let bootd = start(&pair, &conf);
        HttpSetup {
            bootd,
            _server: server,
            requests,
            dir,
            pair,
        }
    }
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn http_server_decides_names_the_machine_and_picks_its_boot_file() {
    require_root();
    let http = HttpSetup::new(None, "2");
    let (pair, dir, requests, bootd) = (&http.pair, &http.dir, &http.requests, &http.bootd);
    set_mac(pair, "02:00:00:00:00:0a");
    let env = pxe(pair, dir, "a", UUID_A)
        .unwrap_or_else(|| panic!("allowed machine refused:\n{}", bootd.log()));
    assert_eq!(env["hostname"], "host-cdef");
    assert_eq!(env["boot_file"], "custom-cdef.0");
    // Its OS asks on the dhcp path, with its inherited UUID and its address.
    let os = udhcpc(pair, dir, "a-os", &["-O", "12"])
        .unwrap_or_else(|| panic!("OS refused:\n{}", bootd.log()));
    assert_eq!(os["ip"], env["ip"]);
    let log = std::fs::read_to_string(requests).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        vec![
            "/boot?mac=02-00-00-00-00-0A&uuid=12345678-abcd-ef00-1111-abcdefabcdef",
            &format!(
                "/linux?mac=02-00-00-00-00-0A&uuid=12345678-abcd-ef00-1111-abcdefabcdef&ip={}",
                env["ip"]
            ),
        ],
        "one query per phase, DISCOVER and REQUEST included"
    );
    set_mac(pair, "02:00:00:00:00:0b");
    assert!(pxe(pair, dir, "b", UUID_B).is_none());
    assert!(
        bootd
            .log()
            .contains("02-00-00-00-00-0B: refused: the HTTP authorisation server answered 401"),
        "{}",
        bootd.log()
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_silent_http_server_does_not_delay_other_machines() {
    require_root();
    let http = HttpSetup::new(Some("02-00-00-00-00-99"), "1.5");
    let (pair, bootd) = (&http.pair, &http.bootd);
    // The first machine's query is never answered...
    let stuck = pair
        .client
        .command("python3")
        .arg(script("dhcp_probe.py"))
        .args([&pair.client_if, "02:00:00:00:00:99", UUID_B, "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stuck = Guard(stuck);
    std::thread::sleep(Duration::from_millis(200));
    // ...while a second, allowed machine gets its OFFER at once.
    let out = pair
        .client
        .command("python3")
        .arg(script("dhcp_probe.py"))
        .args([&pair.client_if, "02:00:00:00:00:0a", UUID_A, "2"])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words[0], "OFFER", "{line}\n{}", bootd.log());
    let ms: f64 = words[2].parse().unwrap();
    eprintln!("the allowed machine's OFFER came {ms} ms after its DISCOVER");
    assert!(ms < 100.0, "the OFFER took {ms} ms");
    let mut stuck = stuck;
    let mut verdict = String::new();
    BufReader::new(stuck.0.stdout.as_mut().unwrap())
        .read_line(&mut verdict)
        .unwrap();
    assert_eq!(verdict.trim(), "TIMEOUT");
    bootd.wait_for_log(
        "02-00-00-00-00-99: refused: the HTTP authorisation server did not answer within 1.5 s",
        Duration::from_secs(3),
    );
}

/// One DISCOVER from `mac` with `uuid`: the OFFER's delay in milliseconds, or
/// `None` when none came within `seconds`.
fn offer_delay(pair: &Pair, mac: &str, uuid: &str, seconds: &str) -> Option<f64> {
    let out = pair
        .client
        .command("python3")
        .arg(script("dhcp_probe.py"))
        .args([&pair.client_if, mac, uuid, seconds])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let words: Vec<&str> = line.split(' ').collect();
    (words[0] == "OFFER").then(|| words[2].parse().unwrap())
}

/// `count` PXE machines `prefix:00`, `prefix:01`, … asking every second for
/// `seconds`, in the background.
fn machines(pair: &Pair, prefix: &str, count: &str, seconds: &str) -> Guard {
    let child = pair
        .client
        .command("python3")
        .arg(script("dhcp_probe.py"))
        .args(["machines", &pair.client_if, prefix, count, UUID_B, seconds])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Guard(child)
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn machines_the_server_never_answers_do_not_starve_an_allowed_one() {
    require_root();
    let http = HttpSetup::new(Some("02-00-00-00-01-*"), "3");
    let (pair, bootd) = (&http.pair, &http.bootd);
    // 40 machines whose queries the server holds without a word, asking again
    // and again as ROMs do...
    let _stuck = machines(pair, "02:00:00:00:01", "40", "15");
    std::thread::sleep(Duration::from_secs(5));
    // ...and a machine the server allows at once gets its OFFER at once.
    let ms = offer_delay(pair, "02:00:00:00:00:0a", UUID_A, "4")
        .unwrap_or_else(|| panic!("no OFFER for the allowed machine:\n{}", bootd.log()));
    eprintln!("the allowed machine's OFFER came {ms} ms after its DISCOVER");
    assert!(ms < 1000.0, "the OFFER took {ms} ms");
    // Each silent query ended at its timeout.
    bootd.wait_for_log(
        "02-00-00-00-01-00: refused: the HTTP authorisation server did not answer within 3 s",
        Duration::from_secs(1),
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_full_query_table_refuses_at_once_and_known_answers_never_wait() {
    require_root();
    let http = HttpSetup::with(Some("02-00-00-00-01-*"), "3", "max_queries = 8\n");
    let (pair, bootd) = (&http.pair, &http.bootd);
    // The allowed machine is known: its answer is remembered.
    assert!(offer_delay(pair, "02:00:00:00:00:0a", UUID_A, "2").is_some());
    let _stuck = machines(pair, "02:00:00:00:01", "20", "10");
    bootd.wait_for_log(
        "queries to the HTTP authorisation server are already waiting ([http] max_queries): not asked",
        Duration::from_secs(5),
    );
    // Its next DISCOVER does not wait behind the queries out.
    let ms = offer_delay(pair, "02:00:00:00:00:0a", UUID_A, "2")
        .unwrap_or_else(|| panic!("no OFFER for the known machine:\n{}", bootd.log()));
    assert!(ms < 100.0, "the OFFER took {ms} ms");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn notifications_follow_a_pxe_boot_then_an_os_boot_then_a_release() {
    require_root();
    let pair = Pair::new("10.97.0.1/24", None);
    let dir = TempDir::new();
    let received = dir.path.join("notes.log");
    let listener = pair
        .server
        .command("python3")
        .args([
            "-u",
            "-c",
            &format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',12345))\nprint('listening',flush=True)\nwhile True:\n  d,_=s.recvfrom(512)\n  open('{}','a').write(d.decode()+'\\n')\n",
                received.display()
            ),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut listener = Guard(listener);
    let mut line = String::new();
    BufReader::new(listener.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let conf = config(&dir, "notify = 127.0.0.1:12345", "");
    let bootd = start(&pair, &conf);
    set_mac(&pair, "02:00:00:00:00:0a");
    let firmware = pxe(&pair, &dir, "a", UUID_A).unwrap();
    // The OS boots, then releases its address on the way down: a RELEASE is
    // unicast from the client's address (udhcpc -q never sends one).
    let os = udhcpc(&pair, &dir, "a-os", &[]).unwrap();
    assert_eq!(os["ip"], firmware["ip"]);
    sh(&[
        "ip",
        "-n",
        &pair.client.name,
        "addr",
        "add",
        &format!("{}/24", os["ip"]),
        "dev",
        &pair.client_if,
    ]);
    pair.client.run(&[
        "python3",
        script("dhcp_probe.py").to_str().unwrap(),
        "release",
        &pair.client_if,
        "02:00:00:00:00:0a",
        &os["ip"],
        "10.97.0.1",
    ]);
    bootd.wait_for_log(
        &format!("02-00-00-00-00-0A: released {}", os["ip"]),
        Duration::from_secs(3),
    );
    let want = [
        format!(
            "BOOT,12345678-abcd-ef00-1111-abcdefabcdef,02-00-00-00-00-0A,{}",
            os["ip"]
        ),
        format!(
            "LEASE,12345678-abcd-ef00-1111-abcdefabcdef,02-00-00-00-00-0A,{}",
            os["ip"]
        ),
        format!(
            "RELEASE,12345678-abcd-ef00-1111-abcdefabcdef,02-00-00-00-00-0A,{}",
            os["ip"]
        ),
    ];
    let mut got = String::new();
    for _ in 0..50 {
        got = std::fs::read_to_string(&received).unwrap_or_default();
        if got.lines().count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        want,
        "log:\n{}",
        bootd.log()
    );
}
