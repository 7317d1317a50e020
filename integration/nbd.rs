//! The NBD service against real clients (libnbd's nbdinfo and nbdcopy, QEMU's
//! qemu-img and qemu-io) and a hand-made client sending what real clients never
//! send, in network namespaces. Each machine is an address of the client
//! namespace: with NBD running alone, bootd knows machines by their address.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const SERVER: &str = "10.97.0.1";
const MACHINE_A: &str = "10.97.0.2";
const MACHINE_B: &str = "10.97.0.3";
const IMAGE_SIZE: usize = 16 << 20;

struct Setup {
    pair: Pair,
    dir: TempDir,
    image: PathBuf,
    bootd: Bootd,
}

/// bootd -n serving `cow` and `ro` exports of one 16 MiB image, with `extra`
/// [nbd] options.
fn setup(extra: &str) -> Setup {
    let pair = Pair::new(&format!("{SERVER}/24"), Some(&format!("{MACHINE_A}/24")));
    pair.client.run(&[
        "ip",
        "addr",
        "add",
        &format!("{MACHINE_B}/24"),
        "dev",
        &pair.client_if,
    ]);
    let dir = TempDir::new();
    let image = dir.path.join("disk.img");
    std::fs::write(&image, pattern(IMAGE_SIZE, 17)).unwrap();
    let conf = dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[nbd]\naddress = {SERVER}\nexports = cow disk.img cow; ro disk.img\n{extra}"
        ),
    );
    let bootd = Bootd::start(&pair.server, &conf, &["-n"]);
    bootd.wait_for_log(
        &format!("serving NBD on {SERVER}:10809"),
        Duration::from_secs(5),
    );
    Setup {
        pair,
        dir,
        image,
        bootd,
    }
}

fn uri(export: &str) -> String {
    format!("nbd://{SERVER}/{export}")
}

fn in_client(setup: &Setup, program: &str, args: &[&str]) -> Finished {
    let mut command = setup.pair.client.command(program);
    command.args(args);
    run_bounded(&mut command, Duration::from_secs(60))
}

/// The hand-made client, as machine `source`.
fn client(setup: &Setup, source: &str, args: &[&str]) -> Finished {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/nbd_client.py");
    let mut command = setup.pair.client.command("python3");
    command
        .arg(script)
        .args([SERVER, "10809", "--source", source])
        .args(args);
    run_bounded(&mut command, Duration::from_secs(120))
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn real_clients_read_the_image_and_each_machine_writes_only_its_own_overlay() {
    require_root();
    let s = setup("");
    let before = sha256_file(&s.image);

    let info = in_client(&s, "nbdinfo", &[&uri("ro")]);
    info.assert_success();
    assert!(info.stdout.contains("export-size: 16777216"), "{info}");
    assert!(info.stdout.contains("is_read_only: true"), "{info}");
    let info = in_client(&s, "nbdinfo", &[&uri("cow")]);
    assert!(info.stdout.contains("is_read_only: false"), "{info}");
    assert!(info.stdout.contains("can_flush: true"), "{info}");
    assert!(info.stdout.contains("can_trim: true"), "{info}");
    let list = in_client(&s, "nbdinfo", &["--list", &format!("nbd://{SERVER}")]);
    list.assert_success();
    assert!(
        list.stdout.contains("export=\"cow\"") && list.stdout.contains("export=\"ro\""),
        "{list}"
    );

    // nbdcopy reads the whole image (several connections: CAN_MULTI_CONN).
    let copy = s.dir.path.join("copy.img");
    in_client(&s, "nbdcopy", &[&uri("ro"), copy.to_str().unwrap()]).assert_success();
    assert_eq!(sha256_file(&copy), before);
    let qemu_info = in_client(&s, "qemu-img", &["info", &uri("ro")]);
    assert!(qemu_info.stdout.contains("16 MiB"), "{qemu_info}");

    // Machine A writes through qemu-io and reads its bytes back, also over a new
    // connection; machine B, and the read-only export, see the image.
    let write = in_client(
        &s,
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0xab 1000 70000",
            "-c",
            "flush",
            &uri("cow"),
        ],
    );
    write.assert_success();
    assert!(write.stdout.contains("wrote 70000/70000"), "{write}");
    client(&s, MACHINE_A, &["expect", "cow", "1000", "ab", "70000"]).assert_success();
    client(&s, MACHINE_B, &["expect-not", "cow", "1000", "ab", "70000"]).assert_success();
    client(&s, MACHINE_A, &["expect-not", "ro", "1000", "ab", "4096"]).assert_success();
    // A rewrite of pages already in the overlay lands where it belongs.
    client(&s, MACHINE_A, &["write", "cow", "5000", "cd", "512"]).assert_success();
    client(&s, MACHINE_A, &["expect", "cow", "5000", "cd", "512"]).assert_success();
    client(&s, MACHINE_A, &["expect", "cow", "5512", "ab", "4096"]).assert_success();
    // nbdcopy of machine A's view: the image with A's bytes in it.
    let mine = s.dir.path.join("mine.img");
    in_client(&s, "nbdcopy", &[&uri("cow"), mine.to_str().unwrap()]).assert_success();
    let mine = std::fs::read(&mine).unwrap();
    assert!(mine[1000..5000].iter().all(|b| *b == 0xab));
    assert!(mine[5000..5512].iter().all(|b| *b == 0xcd));
    assert_eq!(mine[..1000], pattern(IMAGE_SIZE, 17)[..1000]);

    assert_eq!(
        sha256_file(&s.image),
        before,
        "the image itself is never written"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn bad_input_is_refused_and_500_connections_are_served_in_bounded_memory() {
    require_root();
    let mut s = setup("");
    let abuse = client(
        &s,
        MACHINE_A,
        &["abuse", "cow", "ro", &IMAGE_SIZE.to_string()],
    );
    abuse.assert_success();
    assert!(abuse.stdout.contains("ok: abuse survived"), "{abuse}");
    // One log line per refused connection.
    let log = s.bootd.log();
    for refusal in [
        "refused: bad client flags",
        "refused: bad option request",
        "refused: bad request: magic",
        "closing: the data of an oversized write cannot be skipped",
    ] {
        assert_eq!(log.matches(refusal).count(), 1, "{refusal}:\n{log}");
    }

    // 500 connections at once, each served a block, all held open.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/nbd_client.py");
    let mut command = s.pair.client.command("python3");
    command
        .arg(script)
        .args([SERVER, "10809", "--source", MACHINE_B, "storm", "ro", "500"])
        .stdin(std::process::Stdio::piped());
    let mut storm = command.spawn().unwrap();
    let mut stdin = storm.stdin.take().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.bootd.log().matches("export ro (readonly)").count() < 500 {
        assert!(std::time::Instant::now() < deadline, "{}", s.bootd.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(s.bootd.pid());
    use std::io::Write;
    let _ = stdin.write_all(b"\n");
    drop(stdin);
    let status = storm.wait().unwrap();
    assert!(status.success(), "the storm client failed");
    assert!(
        rss > 0 && rss < 64 * 1024,
        "bootd's RSS with 500 connections: {rss} KiB"
    );

    // Still serving, and no overlay leaked from machine A's abuse to B.
    client(&s, MACHINE_B, &["expect-not", "cow", "0", "02", "4096"]).assert_success();
    in_client(&s, "nbdinfo", &[&uri("ro")]).assert_success();
    assert!(
        s.bootd.wait(Duration::from_millis(10)).is_none(),
        "bootd died"
    );
    let (status, _) = s.bootd.stop();
    assert!(status.success(), "{}", s.bootd.log());
    assert!(!s.bootd.log().contains("panicked"));
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn an_overlay_survives_reconnection_for_cow_keep_then_is_deleted() {
    require_root();
    let overlays = TempDir::new();
    let mut s = setup(&format!(
        "cow_keep = 3\ncow_dir = {}\ncow_max_size = 64K\n",
        overlays.path.display()
    ));
    client(&s, MACHINE_A, &["write", "cow", "8192", "5a", "8192"]).assert_success();
    // A new connection of the same machine finds its writes.
    client(&s, MACHINE_A, &["expect", "cow", "8192", "5a", "8192"]).assert_success();
    s.bootd.wait_for_log(
        "its overlay from an earlier connection kept",
        Duration::from_secs(5),
    );
    // Past cow_max_size (64 KiB): ENOSPC, and a log line.
    let full = client(&s, MACHINE_A, &["write", "cow", "0", "11", "131072"]);
    assert!(
        !full.success() && full.stdout.contains("error 28"),
        "{full}"
    );
    s.bootd.wait_for_log("is full", Duration::from_secs(5));
    // Unused for cow_keep: deleted.
    s.bootd.wait_for_log(
        "deleted the overlay of 10.97.0.2 on export cow",
        Duration::from_secs(10),
    );
    client(&s, MACHINE_A, &["expect-not", "cow", "8192", "5a", "8192"]).assert_success();
    // The overlay files were never visible, and nothing is left.
    assert_eq!(std::fs::read_dir(&overlays.path).unwrap().count(), 0);
    client(&s, MACHINE_A, &["write", "cow", "0", "22", "4096"]).assert_success();
    let (status, _) = s.bootd.stop();
    assert!(status.success());
    assert!(
        s.bootd.log().contains("NBD: stopping; 1 overlays deleted"),
        "{}",
        s.bootd.log()
    );
}

/// `bootd --check` as a normal user: no socket is opened.
fn check(dir: &TempDir, text: &str, args: &[&str]) -> (Option<i32>, String) {
    let conf = dir.write("check.ini", text);
    let out = Command::new(bootd_binary())
        .arg("--check")
        .arg("-c")
        .arg(&conf)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

#[test]
fn check_reports_a_missing_image_a_missing_cow_dir_and_nbd_alone_without_exports() {
    let dir = TempDir::new();
    let (code, stderr) = check(&dir, "[nbd]\naddress = 127.0.0.1\n", &["-n"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("[nbd] exports names no disk image"),
        "{stderr}"
    );
    let (code, stderr) = check(
        &dir,
        "[nbd]\naddress = 127.0.0.1\nexports = a missing.img cow\ncow_dir = nowhere\n",
        &["-n"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("missing.img: No such file"), "{stderr}");
    assert!(stderr.contains("[nbd] cow_dir"), "{stderr}");
    std::fs::write(dir.path.join("disk.img"), [0u8; 4096]).unwrap();
    let (code, stderr) = check(
        &dir,
        "[nbd]\naddress = 127.0.0.1\nexports = a disk.img write\n",
        &["-n"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("is written in place (mode write)"),
        "{stderr}"
    );
}
