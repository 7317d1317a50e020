//! SIGHUP against the real daemon: a changed configuration reaches new requests
//! while a slow TFTP transfer and a slow HTTP download run to their end (the HTTP
//! service takes a new root and filters too), a broken file keeps the old one in
//! force, a changed port is named as needing a restart, and a log file renamed
//! by logrotate is reopened.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::clients::*;
use common::*;

const SERVER: &str = "10.127.0.1";

fn raw_client() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/integration/tftp_client.py")
}

/// A PXE ROM's DISCOVER as udhcpc sends it (BIOS, architecture 0).
const PXE_BIOS: [&str; 4] = ["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"];

/// The INI: a pool, a lease file, the log in `bootd.log` beside it, `[mac]`
/// access and the boot file as given, and `extra` at the end.
fn ini(dir: &TempDir, macs: &str, boot_file: &str, extra: &str) -> PathBuf {
    dir.write(
        "bootd.ini",
        &format!(
            "[bootd]\nuser = root\n[logger]\ntype = file\nfile = {}\nlevel = debug\n[bootp]\npool_start = 10.127.0.100\npool_count = 20\nlease_file = leases\naccess = mac\n[mac]\n{macs}\n[bootfile]\ndefault = {boot_file}\n[tftp]\nroot = root\n{extra}",
            dir.path.join("bootd.log").display()
        ),
    )
}

/// Waits until the file at `path` holds `needle`; panics with its text after `timeout`.
fn wait_in_file(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        if Instant::now() > deadline {
            panic!(
                "{} never held `{needle}` within {timeout:?}:\n{text}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many times `needle` occurs in the file at `path`.
fn count_in_file(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Sends SIGHUP and waits for the `count`-th reload's last line, `needle`.
fn reload(bootd: &Bootd, log: &Path, needle: &str, count: usize) -> String {
    bootd.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while count_in_file(log, needle) < count {
        if Instant::now() > deadline {
            panic!(
                "reload {count} never said `{needle}`:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn sighup_applies_a_new_configuration_to_new_requests_and_keeps_a_transfer_in_flight() {
    require_root();
    let pair = Pair::new("10.127.0.1/24", Some("10.127.0.250/24"));
    set_mac(&pair, "02:00:00:00:00:0a");
    let dir = TempDir::new();
    let root = dir.path.join("root");
    std::fs::create_dir_all(&root).unwrap();
    // 600 full blocks and an empty one: acknowledged after 5 ms each, 3 s or more.
    let content = pattern(600 * 512, 19);
    std::fs::write(root.join("slow.bin"), &content).unwrap();
    // The HTTP service serves www1, then www2: a file of the same name and size
    // in each, with other bytes.
    let big = 8 << 20;
    let (before, after) = (pattern(big, 1), pattern(big, 2));
    for (www, content) in [("www1", &before), ("www2", &after)] {
        std::fs::create_dir_all(dir.path.join(www)).unwrap();
        std::fs::write(dir.path.join(www).join("big.bin"), content).unwrap();
    }
    std::fs::write(dir.path.join("www2/slow.bin"), b"www2's slow.bin\n").unwrap();
    let httpd = |www: &str| format!("[httpd]\nport = 8080\nroot = {www}\ncheck_ip = off\n");
    let log = dir.path.join("bootd.log");
    let conf = ini(
        &dir,
        "02-00-00-00-00-0a = enable",
        "pxelinux.0",
        &httpd("www1"),
    );
    let bootd = Bootd::start(&pair.server, &conf, &["-H"]);
    wait_in_file(&log, "serving TFTP on", Duration::from_secs(5));
    wait_in_file(&log, "serving HTTP on", Duration::from_secs(5));
    let env = udhcpc(&pair, &dir, "before", &PXE_BIOS)
        .unwrap_or_else(|| panic!("no lease; log:\n{}", std::fs::read_to_string(&log).unwrap()));
    assert_eq!(env["boot_file"], "pxelinux.0");

    // A slow client holds a transfer open across the reload.
    let out = dir.path.join("slow.out");
    let transfer = Spawned::start(
        pair.client
            .command("python3")
            .arg(raw_client())
            .args(["slow", SERVER, "69", &hex(b"slow.bin")])
            .arg(&out)
            .arg("5"),
    );
    wait_in_file(&log, "slow.bin", Duration::from_secs(5));
    // And a slow HTTP download (2 MB/s: 4 s), under way before the reload.
    let url = |name: &str| format!("http://{SERVER}:8080/{name}");
    let download = dir.path.join("big.before");
    let slow_download = Spawned::start(
        pair.client
            .command("curl")
            .args(["-sS", "--limit-rate", "2M", "-o"])
            .arg(&download)
            .arg(url("big.bin")),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&download).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "the HTTP download never began");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A new boot file, a second machine allowed, a filter and a new HTTP root.
    ini(
        &dir,
        "02-00-00-00-00-0a = enable\n02-00-00-00-00-0b = enable",
        "lpxelinux.0",
        &format!("{}[filters]\nrenamed.bin = slow.bin\n", httpd("www2")),
    );
    reload(&bootd, &log, "is in force for new requests", 1);
    // Each service says so from its own thread, once it has taken the new
    // configuration: after the main thread's line, not necessarily before it.
    let in_time = Duration::from_secs(5);
    let tftp_line = "reload: new requests are served with the new root, filters and limits; 1 transfers in flight go on";
    wait_in_file(&log, tftp_line, in_time);
    let http_line = format!(
        "reload: HTTP serves new requests from {}",
        dir.path.join("www2").display()
    );
    let said = wait_in_file(&log, &http_line, in_time);
    assert!(!said.contains("[httpd]"), "no restart needed: {said}");
    // New HTTP requests: the new root, through the new filter.
    let fetch = |name: &str, out: &str| {
        let path = dir.path.join(out);
        let got = run_bounded(
            pair.client
                .command("curl")
                .args(["-sS", "-f", "-o"])
                .arg(&path)
                .arg(url(name)),
            Duration::from_secs(60),
        );
        assert!(got.success(), "{name}: {got}");
        std::fs::read(&path).unwrap()
    };
    assert!(fetch("big.bin", "big.after") == after, "big.bin from www2");
    assert_eq!(fetch("renamed.bin", "renamed.http"), b"www2's slow.bin\n");
    // The download begun before the reload ends whole, from the file it opened.
    let finished = slow_download.finish(Duration::from_secs(60));
    assert!(finished.success(), "{finished}");
    assert!(
        std::fs::read(&download).unwrap() == before,
        "big.bin from www1"
    );
    set_mac(&pair, "02:00:00:00:00:0b");
    let env = udhcpc(&pair, &dir, "after", &PXE_BIOS).unwrap_or_else(|| {
        panic!(
            "no lease after the reload; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        )
    });
    assert_eq!(env["boot_file"], "lpxelinux.0");
    // The filter serves a name that did not exist before.
    let renamed = dir.path.join("renamed.out");
    let got = run_bounded(
        pair.client
            .command("python3")
            .arg(raw_client())
            .args(["get", SERVER, "69", &hex(b"renamed.bin"), "octet"])
            .arg(&renamed),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("OK 307200 "), "{got}");

    // The transfer begun before the reload ends whole.
    let finished = transfer.finish(Duration::from_secs(60));
    assert!(finished.stdout.starts_with("OK 307200 601 "), "{finished}");
    assert_eq!(std::fs::read(&out).unwrap(), content);

    // A broken file: every problem is said, and the old configuration stays.
    dir.write(
        "bootd.ini",
        "[bootp]\npool_count = many\nlease_time = soon\n",
    );
    let said = reload(&bootd, &log, "the configuration in force stays", 1);
    assert!(said.contains("pool_count"), "{said}");
    assert!(said.contains("lease_time"), "{said}");
    let env = udhcpc(&pair, &dir, "broken", &PXE_BIOS).expect("still served");
    assert_eq!(env["boot_file"], "lpxelinux.0");

    // A changed port needs a restart: said, and TFTP stays where it was.
    ini(
        &dir,
        "02-00-00-00-00-0b = enable",
        "lpxelinux.0",
        &format!("port = 6969\n{}", httpd("www2")),
    );
    let said = reload(&bootd, &log, "is in force for new requests", 2);
    assert!(
        said.contains("reload: [tftp] port changed from 69 to 6969; it needs a restart, the old value stays in force"),
        "{said}"
    );
    let again = dir.path.join("again.out");
    let got = run_bounded(
        pair.client
            .command("python3")
            .arg(raw_client())
            .args(["get", SERVER, "69", &hex(b"slow.bin"), "octet"])
            .arg(&again),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("OK 307200 "), "{got}");

    // logrotate renames the file, then sends SIGHUP: bootd writes to a new one.
    std::fs::rename(&log, dir.path.join("bootd.log.1")).unwrap();
    bootd.signal(libc::SIGHUP);
    wait_in_file(&log, "is in force for new requests", Duration::from_secs(5));
    let rotated = std::fs::read_to_string(dir.path.join("bootd.log.1")).unwrap();
    assert!(rotated.contains("serving TFTP on"), "{rotated}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn after_dropping_root_a_reload_still_passes_its_checks() {
    require_root();
    let pair = Pair::new("10.127.0.1/24", None);
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    let text = |boot_file: &str| {
        format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = 10.127.0.100\npool_count = 20\nlease_file = leases\n[bootfile]\ndefault = {boot_file}\n[tftp]\nroot = root\n"
        )
    };
    let conf = dir.write("bootd.ini", &text("pxelinux.0"));
    // Started as root with no [bootd] user: it runs as bootd or nobody.
    let bootd = Bootd::start(&pair.server, &conf, &[]);
    bootd.wait_for_log("running as the user ", Duration::from_secs(10));
    dir.write("bootd.ini", &text("lpxelinux.0"));
    bootd.signal(libc::SIGHUP);
    bootd.wait_for_log("is in force for new requests", Duration::from_secs(5));
    assert!(
        !bootd.log().contains("configuration in force stays"),
        "{}",
        bootd.log()
    );
    let env = udhcpc(&pair, &dir, "after", &PXE_BIOS)
        .unwrap_or_else(|| panic!("no lease; log:\n{}", bootd.log()));
    assert_eq!(env["boot_file"], "lpxelinux.0");
}
