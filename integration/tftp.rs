//! The TFTP service end to end: the real `bootd -t` in a server namespace, real
//! clients (tftp-hpa, curl, atftp, busybox) and a raw Python client
//! (`integration/tftp_client.py`, for what no real client sends) in a client
//! namespace, joined by a veth pair. Every download is compared byte for byte.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const SERVER: &str = "10.92.0.1";
const SERVER_CIDR: &str = "10.92.0.1/24";
const CLIENT_CIDR: &str = "10.92.0.2/24";
/// What the secret file outside the root holds: it must never reach a client.
const SECRET: &[u8] = b"TOP-SECRET-outside-the-tftp-root-4f1c\n";

fn raw_client() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/integration/tftp_client.py")
}

/// A server and a client namespace, a scratch directory holding `bootd.ini`,
/// `root/` (the TFTP root), `secret.txt` beside it (outside the root) and `out/`
/// (where clients write).
struct Env {
    // Dropped in declaration order: the namespaces go before the directory.
    pair: Pair,
    dir: TempDir,
    root: PathBuf,
    out: PathBuf,
}

impl Env {
    fn new() -> Env {
        let pair = Pair::new(SERVER_CIDR, Some(CLIENT_CIDR));
        let dir = TempDir::new();
        let root = dir.path.join("root");
        let out = dir.path.join("out");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(dir.path.join("secret.txt"), SECRET).unwrap();
        Env {
            pair,
            dir,
            root,
            out,
        }
    }

    /// Writes `name` under the root.
    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A fresh path under `out/`.
    fn out(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// Starts `bootd -t` with `[tftp]` lines `tftp` added and `sections` appended;
    /// waits for its "serving TFTP" line.
    fn start(&self, tftp: &str, sections: &str) -> Bootd {
        let conf = self.dir.write(
            "bootd.ini",
            &format!(
                "[logger]\nlevel = debug\n[tftp]\naddress = {SERVER}\nport = 69\nroot = root\n{tftp}\n{sections}"
            ),
        );
        let bootd = Bootd::start(&self.pair.server, &conf, &["-t"]);
        bootd.wait_for_log(
            &format!("serving TFTP on {SERVER}:69 from "),
            Duration::from_secs(5),
        );
        bootd
    }

    /// A command run in the client namespace.
    fn client(&self, program: &str) -> Command {
        self.pair.client.command(program)
    }

    /// The raw Python client: `command` with the server, port 69 and `name` (any bytes).
    fn raw(&self, command: &str, name: &[u8], rest: &[&str]) -> Command {
        let mut c = self.client("python3");
        c.arg(raw_client())
            .args([command, SERVER, "69", &hex(name)])
            .args(rest);
        c
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that `got` is exactly `want`, showing where they differ (not the bytes).
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes received, {} expected; first difference at {:?}",
            got.len(),
            want.len(),
            first
        );
    }
}

/// tftp-hpa: `get remote local` in `mode` ("binary" or "ascii").
fn tftp_hpa_get(env: &Env, mode: &str, remote: &str, local: &Path) -> Finished {
    run_bounded(
        env.client("tftp")
            .args(["-m", mode, SERVER, "-c", "get", remote])
            .arg(local),
        Duration::from_secs(180),
    )
}

fn curl_get(env: &Env, remote: &str, local: &Path, blksize: Option<u16>) -> Command {
    let mut c = env.client("curl");
    c.args(["-sS", "--max-time", "120", "-o"]).arg(local);
    if let Some(b) = blksize {
        c.args(["--tftp-blksize", &b.to_string()]);
    }
    c.arg(format!("tftp://{SERVER}/{remote}"));
    c
}

fn atftp_get(env: &Env, remote: &str, local: &Path, options: &[&str]) -> Command {
    let mut c = env.client("atftp");
    for o in options {
        c.args(["--option", o]);
    }
    c.args(["-g", "-r", remote, "-l"])
        .arg(local)
        .args([SERVER, "69"]);
    c
}

/// The log line ending the transfer of `name` (the first one, if several), waiting
/// up to 5 s for it; `name` as requested (a filter's target follows in "(as …)").
fn sent_line(bootd: &Bootd, name: &str) -> String {
    let plain = format!(": sent {name}: ");
    let rewritten = format!(": sent {name} (as ");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(line) = bootd
            .log()
            .lines()
            .find(|l| l.contains(&plain) || l.contains(&rewritten))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `sent {name}` line; log:\n{}",
            bootd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to 5 s for `count` log lines containing `needle` (a client may exit
/// before the server has read its last ACK).
fn wait_for_count(bootd: &Bootd, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while bootd.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "fewer than {count} `{needle}` lines; log:\n{}",
            bootd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        bootd.log().matches(needle).count(),
        count,
        "{}",
        bootd.log()
    );
}

// -------------------------------------------------------------------- tftp-hpa

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn tftp_hpa_gets_binary_files_and_netascii_text() {
    require_root();
    let env = Env::new();
    let kernel = pattern(300_000, 1);
    env.file("boot/kernel.bin", &kernel);
    // A multiple of 512: the transfer ends with an empty block.
    let exact = pattern(1024, 2);
    env.file("exact.bin", &exact);
    env.file("empty.bin", b"");
    let text = b"DEFAULT linux\nLABEL linux\r\n  KERNEL vmlinuz\n bare\rCR and a tab\t\nlast line without newline";
    env.file("pxelinux.cfg/default", text);
    let bootd = env.start("", "");

    let out = env.out("kernel.bin");
    tftp_hpa_get(&env, "binary", "boot/kernel.bin", &out).assert_success();
    assert_same(&read(&out), &kernel, "boot/kernel.bin");
    assert_eq!(
        sha256_file(&out),
        sha256_file(&env.root.join("boot/kernel.bin"))
    );
    let line = sent_line(&bootd, "boot/kernel.bin");
    assert!(
        line.contains("300000 bytes in 586 blocks of 512, window 1, "),
        "{line}"
    );

    let out = env.out("exact.bin");
    tftp_hpa_get(&env, "binary", "exact.bin", &out).assert_success();
    assert_same(&read(&out), &exact, "exact.bin");
    let line = sent_line(&bootd, "exact.bin");
    assert!(line.contains("1024 bytes in 3 blocks of 512"), "{line}");

    let out = env.out("empty.bin");
    tftp_hpa_get(&env, "binary", "empty.bin", &out).assert_success();
    assert_same(&read(&out), b"", "empty.bin");
    let line = sent_line(&bootd, "empty.bin");
    assert!(line.contains("0 bytes in 1 blocks of 512"), "{line}");

    // netascii: the server converts (LF → CR LF, CR → CR NUL), tftp-hpa converts
    // back, so the text arrives as it is on the server.
    let out = env.out("default.txt");
    tftp_hpa_get(&env, "ascii", "pxelinux.cfg/default", &out).assert_success();
    assert_same(&read(&out), text, "pxelinux.cfg/default in netascii");

    // The wire form itself, seen by the raw client.
    let out = env.out("default.wire");
    let got = run_bounded(
        &mut env.raw(
            "get",
            b"pxelinux.cfg/default",
            &["netascii", out.to_str().unwrap()],
        ),
        Duration::from_secs(20),
    );
    got.assert_success();
    assert!(got.stdout.starts_with("OK "), "{got}");
    let mut wire = Vec::new();
    for &b in text.iter() {
        match b {
            b'\n' => wire.extend_from_slice(b"\r\n"),
            b'\r' => wire.extend_from_slice(b"\r\0"),
            b => wire.push(b),
        }
    }
    assert_same(&read(&out), &wire, "netascii on the wire");
}

// ------------------------------------------------ curl, atftp, busybox options

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn curl_atftp_and_busybox_negotiate_blksize_windowsize_and_tsize() {
    require_root();
    let env = Env::new();
    let content = pattern(1_000_000, 3);
    for name in [
        "curl-default.bin",
        "curl-1468.bin",
        "atftp.bin",
        "busybox.bin",
        "busybox-default.bin",
    ] {
        env.file(name, &content);
    }
    let bootd = env.start("", "");

    let out = env.out("curl-default.bin");
    run_bounded(
        &mut curl_get(&env, "curl-default.bin", &out, None),
        Duration::from_secs(120),
    )
    .assert_success();
    assert_same(&read(&out), &content, "curl default");
    let line = sent_line(&bootd, "curl-default.bin");
    assert!(
        line.contains("1000000 bytes in 1954 blocks of 512, window 1"),
        "{line}"
    );

    let out = env.out("curl-1468.bin");
    run_bounded(
        &mut curl_get(&env, "curl-1468.bin", &out, Some(1468)),
        Duration::from_secs(120),
    )
    .assert_success();
    assert_same(&read(&out), &content, "curl blksize 1468");
    let line = sent_line(&bootd, "curl-1468.bin");
    // 1000000 / 1468 = 681.2 → 682 blocks.
    assert!(
        line.contains("1000000 bytes in 682 blocks of 1468, window 1"),
        "{line}"
    );

    let out = env.out("atftp.bin");
    run_bounded(
        &mut atftp_get(
            &env,
            "atftp.bin",
            &out,
            &["blksize 1468", "windowsize 16", "tsize 0"],
        ),
        Duration::from_secs(120),
    )
    .assert_success();
    assert_same(&read(&out), &content, "atftp windowsize 16");
    let line = sent_line(&bootd, "atftp.bin");
    assert!(
        line.contains("1000000 bytes in 682 blocks of 1468, window 16"),
        "{line}"
    );
    let log = bootd.log();
    let read_line = log
        .lines()
        .find(|l| l.contains(": read atftp.bin ("))
        .unwrap_or_else(|| panic!("no read line for atftp.bin:\n{log}"));
    assert!(read_line.contains("(1000000 bytes, asks "), "{read_line}");
    for asked in ["blksize=1468", "windowsize=16", "tsize=0"] {
        assert!(read_line.contains(asked), "{read_line}");
    }

    let out = env.out("busybox.bin");
    run_bounded(
        env.client("busybox")
            .args(["tftp", "-g", "-r", "busybox.bin", "-l"])
            .arg(&out)
            .args(["-b", "1468", SERVER]),
        Duration::from_secs(120),
    )
    .assert_success();
    assert_same(&read(&out), &content, "busybox -b 1468");
    let line = sent_line(&bootd, "busybox.bin");
    assert!(line.contains("blocks of 1468, window 1"), "{line}");

    let out = env.out("busybox-default.bin");
    run_bounded(
        env.client("busybox")
            .args(["tftp", "-g", "-r", "busybox-default.bin", "-l"])
            .arg(&out)
            .arg(SERVER),
        Duration::from_secs(120),
    )
    .assert_success();
    assert_same(&read(&out), &content, "busybox default");
    let line = sent_line(&bootd, "busybox-default.bin");
    assert!(line.contains("blocks of 512, window 1"), "{line}");
}

/// A blksize beyond the interface MTU is clamped: the veth's MTU is 1500, so
/// 1468 is the most that fits without IP fragmentation.
#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn blksize_beyond_the_mtu_is_clamped() {
    require_root();
    let env = Env::new();
    let content = pattern(100_000, 4);
    env.file("big-block.bin", &content);
    let bootd = env.start("", "");
    bootd.wait_for_log("(block size up to 1468, ", Duration::from_secs(1));
    let out = env.out("big-block.bin");
    let got = run_bounded(
        &mut env.raw(
            "get",
            b"big-block.bin",
            &["octet", out.to_str().unwrap(), "blksize=8192", "tsize=0"],
        ),
        Duration::from_secs(30),
    );
    got.assert_success();
    assert!(got.stdout.starts_with("OK 100000 69 1"), "{got}");
    assert_same(&read(&out), &content, "blksize 8192 asked");
    let line = sent_line(&bootd, "big-block.bin");
    assert!(line.contains("100000 bytes in 69 blocks of 1468"), "{line}");
}

/// Blocks are sent with DF set and never fragmented by the kernel, until one does
/// not fit: a route narrower than the interface (a tunnel, a learned path MTU) gets
/// the rest of the transfer in fragments instead of a dead transfer.
#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_route_narrower_than_a_block_gets_the_blocks_in_fragments() {
    require_root();
    let env = Env::new();
    env.pair.server.run(&[
        "ip",
        "route",
        "add",
        "10.92.0.2/32",
        "dev",
        &env.pair.server_if,
        "mtu",
        "1000",
    ]);
    let content = pattern(300_000, 11);
    env.file("narrow.bin", &content);
    let bootd = env.start("", "");
    let out = env.out("narrow.bin");
    let got = run_bounded(
        &mut env.raw(
            "get",
            b"narrow.bin",
            &["octet", out.to_str().unwrap(), "blksize=1468"],
        ),
        Duration::from_secs(60),
    );
    got.assert_success();
    assert!(got.stdout.starts_with("OK 300000 205 1"), "{got}");
    assert_same(
        &read(&out),
        &content,
        "blocks of 1468 over a 1000-byte route",
    );
    bootd.wait_for_log(
        "a 1472-byte datagram does not fit the path MTU",
        Duration::from_secs(2),
    );
    let line = sent_line(&bootd, "narrow.bin");
    assert!(
        line.contains("300000 bytes in 205 blocks of 1468"),
        "{line}"
    );
}

// ----------------------------------------------------------- 100 MiB, rollover

const HUNDRED_MIB: usize = 100 * 1024 * 1024;

fn hundred_mib(env: &Env, name: &str) -> String {
    let path = env.file(name, &pattern(HUNDRED_MIB, 5));
    sha256_file(&path)
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn hundred_mib_at_blksize_512_rolls_over_block_numbers() {
    require_root();
    let env = Env::new();
    let want = hundred_mib(&env, "big512.img");
    let bootd = env.start("", "");
    let out = env.out("big512.img");
    let started = Instant::now();
    let got = run_bounded(
        &mut atftp_get(
            &env,
            "big512.img",
            &out,
            &["blksize 512", "windowsize 16", "tsize 0"],
        ),
        Duration::from_secs(300),
    );
    got.assert_success();
    let took = started.elapsed();
    assert_eq!(sha256_file(&out), want, "100 MiB at blksize 512");
    let line = sent_line(&bootd, "big512.img");
    // 204800 full blocks past block 65535 three times, then the empty final block.
    assert!(
        line.contains("104857600 bytes in 204801 blocks of 512, window 16"),
        "{line}"
    );
    eprintln!("100 MiB at blksize 512, window 16: {took:?}; {line}");

    // And lockstep with tftp-hpa, which sends no options: block 65535 is followed by 0.
    let out = env.out("big512-hpa.img");
    let started = Instant::now();
    tftp_hpa_get(&env, "binary", "./big512.img", &out).assert_success();
    let took = started.elapsed();
    assert_eq!(sha256_file(&out), want, "100 MiB at blksize 512 (tftp-hpa)");
    let line = sent_line(&bootd, "./big512.img");
    assert!(
        line.contains("104857600 bytes in 204801 blocks of 512, window 1"),
        "{line}"
    );
    eprintln!("100 MiB at blksize 512, window 1 (tftp-hpa): {took:?}; {line}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn hundred_mib_at_blksize_1468() {
    require_root();
    let env = Env::new();
    let want = hundred_mib(&env, "big1468.img");
    let bootd = env.start("", "");
    let out = env.out("big1468.img");
    let started = Instant::now();
    // Lockstep (window 1) with curl: 71429 round trips.
    run_bounded(
        &mut curl_get(&env, "big1468.img", &out, Some(1468)),
        Duration::from_secs(300),
    )
    .assert_success();
    let took = started.elapsed();
    assert_eq!(sha256_file(&out), want, "100 MiB at blksize 1468");
    let line = sent_line(&bootd, "big1468.img");
    // 104857600 = 71428 × 1468 + 1296: 71429 blocks, past 65535 too.
    assert!(
        line.contains("104857600 bytes in 71429 blocks of 1468, window 1"),
        "{line}"
    );
    eprintln!("100 MiB at blksize 1468, window 1 (curl): {took:?}; {line}");
}

// ---------------------------------------------------------- 50 clients at once

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn fifty_clients_in_parallel_all_get_their_files() {
    require_root();
    let env = Env::new();
    let files: Vec<Vec<u8>> = (0..10)
        .map(|i| pattern(150_000 + 7_777 * i, 100 + i as u64))
        .collect();
    for (i, content) in files.iter().enumerate() {
        env.file(&format!("par/f{i}.bin"), content);
    }
    // Fifty machines, played from one client address.
    let bootd = env.start("max_transfers_per_client = 50\n", "");
    let started = Instant::now();
    let clients: Vec<(usize, PathBuf, Spawned)> = (0..50)
        .map(|n| {
            let file = n % files.len();
            let out = env.out(&format!("par-{n}.bin"));
            let blksize = if n % 2 == 0 { Some(1468) } else { None };
            let spawned = Spawned::start(&mut curl_get(
                &env,
                &format!("par/f{file}.bin"),
                &out,
                blksize,
            ));
            (file, out, spawned)
        })
        .collect();
    for (file, out, spawned) in clients {
        let what = format!("client for par/f{file}.bin into {}", out.display());
        let finished = spawned.finish(Duration::from_secs(120));
        assert!(finished.success(), "{what}: {finished}");
        assert_same(&read(&out), &files[file], &what);
    }
    let took = started.elapsed();
    wait_for_count(&bootd, ": sent par/f", 50);
    eprintln!("50 parallel curl downloads: {took:?}");
}

// ------------------------------------------------------------------ lossy link

/// Drops `percent`% of the UDP datagrams arriving in `ns` (nftables input hook:
/// this kernel has no netem).
fn add_loss(ns: &Netns, percent: u32) {
    ns.run(&["nft", "add", "table", "inet", "loss"]);
    ns.run(&[
        "nft",
        "add",
        "chain",
        "inet",
        "loss",
        "in",
        "{ type filter hook input priority 0; }",
    ]);
    ns.run(&[
        "nft",
        "add",
        "rule",
        "inet",
        "loss",
        "in",
        "meta",
        "l4proto",
        "udp",
        "numgen",
        "random",
        "mod",
        "100",
        "<",
        &percent.to_string(),
        "counter",
        "drop",
    ]);
}

fn dropped(ns: &Netns) -> u64 {
    let out = ns
        .command("nft")
        .args(["list", "chain", "inet", "loss", "in"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn twenty_transfers_over_a_lossy_link_all_complete_intact() {
    require_root();
    let env = Env::new();
    add_loss(&env.pair.server, 5);
    add_loss(&env.pair.client, 5);
    let files: Vec<Vec<u8>> = (0..20)
        .map(|i| pattern(60_000 + 3_001 * i, 200 + i as u64))
        .collect();
    for (i, content) in files.iter().enumerate() {
        env.file(&format!("lossy/f{i}.bin"), content);
    }
    let bootd = env.start("", "");
    let started = Instant::now();
    // tftp-hpa (lockstep, 512) for most; the raw client with a window of 8 for a
    // few, so the window's go-back-N under loss is exercised too.
    let clients: Vec<(usize, PathBuf, Spawned)> = (0..20)
        .map(|i| {
            let out = env.out(&format!("lossy-{i}.bin"));
            let remote = format!("lossy/f{i}.bin");
            let spawned = if i % 4 == 3 {
                Spawned::start(&mut env.raw(
                    "get",
                    remote.as_bytes(),
                    &[
                        "octet",
                        out.to_str().unwrap(),
                        "blksize=1024",
                        "windowsize=8",
                    ],
                ))
            } else {
                Spawned::start(
                    env.client("tftp")
                        .args(["-m", "binary", SERVER, "-c", "get", &remote])
                        .arg(&out),
                )
            };
            (i, out, spawned)
        })
        .collect();
    for (i, out, spawned) in clients {
        let finished = spawned.finish(Duration::from_secs(150));
        assert!(
            finished.success() && !finished.stdout.contains("ERROR"),
            "transfer {i}: {finished}\nlog:\n{}",
            bootd.log()
        );
        assert_same(&read(&out), &files[i], &format!("lossy/f{i}.bin"));
    }
    let took = started.elapsed();
    // The server may still be resending a last block whose ACK was lost to a
    // client that has gone: the client side is the proof, the log the statistics.
    let log = bootd.log();
    let (to_server, to_client) = (dropped(&env.pair.server), dropped(&env.pair.client));
    assert!(
        to_server > 0 && to_client > 0,
        "the link lost nothing ({to_server}, {to_client}): the test did not test loss"
    );
    let retransmits: u64 = log
        .lines()
        .filter(|l| l.contains(": sent lossy/f"))
        .filter_map(|l| {
            l.split(" retransmits")
                .next()?
                .rsplit(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(retransmits > 0, "no retransmits logged:\n{log}");
    eprintln!(
        "20 lossy transfers: {took:?}; dropped {to_server} datagrams to the server, {to_client} to the client; {retransmits} retransmits"
    );
}

// --------------------------------------------------------------- hostile names

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn hostile_names_are_refused_and_outside_files_never_leak() {
    require_root();
    let env = Env::new();
    env.file("ok.bin", b"inside the root");
    env.file("pxelinux.cfg/default", b"DEFAULT linux\n");
    let secret = env.dir.path.join("secret.txt");
    // Symlinks out of the root: to a file, to a directory, relative and absolute.
    std::os::unix::fs::symlink(&secret, env.root.join("escape")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", env.root.join("escape-rel")).unwrap();
    std::os::unix::fs::symlink(&env.dir.path, env.root.join("outdir")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", env.root.join("passwd")).unwrap();
    std::fs::create_dir_all(env.root.join("deep/er")).unwrap();
    std::os::unix::fs::symlink("../../../secret.txt", env.root.join("deep/er/link")).unwrap();
    // A symlink inside the root stays servable.
    std::os::unix::fs::symlink("ok.bin", env.root.join("inside-link")).unwrap();
    let bootd = env.start("", "");

    let access = "ERROR 2 access violation";
    let missing = "ERROR 1 file not found";
    let long = "a".repeat(1025);
    let long_segment = format!("dir/{}", "b".repeat(300));
    let deep_climb = "../".repeat(100) + "etc/passwd";
    let hostile: Vec<(Vec<u8>, &str)> = vec![
        (b"../secret.txt".to_vec(), access),
        (b"..".to_vec(), access),
        (b"../".to_vec(), access),
        (b"./../secret.txt".to_vec(), access),
        (b"pxelinux.cfg/../../secret.txt".to_vec(), access),
        (b"a/b/../../../secret.txt".to_vec(), access),
        (b"../../../../../../etc/passwd".to_vec(), access),
        (deep_climb.into_bytes(), access),
        (b"..\\secret.txt".to_vec(), access),
        (b"..\\..\\..\\etc\\passwd".to_vec(), access),
        (b"pxelinux.cfg\\default".to_vec(), access),
        // A leading `/` is the TFTP root (GRUB asks for `/grub/grub.cfg`): these
        // names are looked up inside the root, where they do not exist.
        (b"/etc/passwd".to_vec(), missing),
        (b"//etc/passwd".to_vec(), missing),
        (secret.to_str().unwrap().as_bytes().to_vec(), missing),
        (b"/../secret.txt".to_vec(), access),
        (b"/".to_vec(), access),
        (b"%2e%2e/secret.txt".to_vec(), access),
        (b"%2E%2E%2Fsecret.txt".to_vec(), access),
        (b"..%2fsecret.txt".to_vec(), access),
        (b"%252e%252e/secret.txt".to_vec(), access),
        (b"ok.bin%00.txt".to_vec(), access),
        (b"%2fetc/passwd".to_vec(), access),
        (b"....//....//etc/passwd".to_vec(), access),
        (b"...".to_vec(), access),
        (b".../secret.txt".to_vec(), access),
        (b"a/.../b".to_vec(), access),
        (b"C:\\Windows\\win.ini".to_vec(), access),
        (b"c:/boot.ini".to_vec(), access),
        (b"ok.bin\nx".to_vec(), access),
        (b"ok\rbin".to_vec(), access),
        (b"\x1b[31mred".to_vec(), access),
        (b"ok\x7fbin".to_vec(), access),
        (long.into_bytes(), access),
        (long_segment.into_bytes(), access),
        (b".".to_vec(), access),
        (b"./".to_vec(), access),
        // Symlinks pointing out of the root: found after resolution.
        (b"escape".to_vec(), access),
        (b"escape-rel".to_vec(), access),
        (b"outdir/secret.txt".to_vec(), access),
        (b"passwd".to_vec(), access),
        (b"deep/er/link".to_vec(), access),
        // A directory inside the root is not a file.
        (b"pxelinux.cfg".to_vec(), missing),
    ];
    assert!(hostile.len() >= 30);
    for (i, (name, want)) in hostile.iter().enumerate() {
        let out = env.out(&format!("hostile-{i}"));
        let got = run_bounded(
            &mut env.raw("get", name, &["octet", out.to_str().unwrap()]),
            Duration::from_secs(20),
        );
        let shown = String::from_utf8_lossy(name);
        assert_eq!(
            got.stdout.trim(),
            *want,
            "{shown:?}: {got}\nlog:\n{}",
            bootd.log()
        );
        assert!(!out.exists(), "{shown:?}: something was written");
    }
    // Each refusal got its own log line.
    let log = bootd.log();
    let refused = log.lines().filter(|l| l.contains(": refused ")).count();
    assert_eq!(refused, hostile.len(), "{log}");
    // Control characters in a name are logged escaped: no forged or split lines.
    assert!(log.contains(": refused ok.bin\\nx: "), "{log}");
    assert!(log.contains(": refused \\u{1b}[31mred: "), "{log}");
    assert!(!log.contains('\x1b') && !log.contains('\r'), "{log}");
    assert!(log.contains("outside the root"), "{log}");

    // A NUL byte ends the name on the wire, so a NUL "inside" a name makes the rest
    // the mode: such a request is malformed and refused with ERROR 4; the shorter
    // name before a NUL with a valid mode after it is looked up inside the root like
    // any name.
    let got = run_bounded(
        &mut env.raw("rrq", b"ok.bin\0../../secret.txt", &[]),
        Duration::from_secs(10),
    );
    assert_eq!(
        got.stdout.trim(),
        "ERROR 4 unknown transfer mode: use octet or netascii",
        "{got}"
    );
    bootd.wait_for_log("refused a malformed request", Duration::from_secs(2));
    let out = env.out("nul-inside");
    let got = run_bounded(
        &mut env.raw(
            "get",
            b"missing\0octet\0../secret.txt",
            &["octet", out.to_str().unwrap()],
        ),
        Duration::from_secs(20),
    );
    assert_eq!(got.stdout.trim(), "ERROR 1 file not found", "{got}");
    let got = run_bounded(
        &mut env.raw("rrq", b"\0../secret.txt", &[]),
        Duration::from_secs(10),
    );
    assert_eq!(got.stdout.trim(), "ERROR 4 empty file name", "{got}");

    // A real client asking for a climbing name gets the same refusal.
    let out = env.out("hpa-climb");
    let got = tftp_hpa_get(&env, "binary", "../secret.txt", &out);
    assert!(
        got.stderr.contains("Error code 2: access violation")
            || got.stdout.contains("Error code 2: access violation"),
        "{got}"
    );

    // And the symlink inside the root works: refusals are not blanket.
    let out = env.out("inside-link");
    let got = run_bounded(
        &mut env.raw("get", b"inside-link", &["octet", out.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert!(got.stdout.starts_with("OK 15 "), "{got}");
    assert_same(&read(&out), b"inside the root", "inside-link");
    // A name from the root, as GRUB asks (`/grub/grub.cfg`), is served.
    let out = env.out("rooted");
    let got = run_bounded(
        &mut env.raw("get", b"//ok.bin", &["octet", out.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert!(got.stdout.starts_with("OK 15 "), "{got}");
    assert_same(&read(&out), b"inside the root", "//ok.bin");

    // Nothing from outside the root reached any client.
    for entry in std::fs::read_dir(&env.out).unwrap() {
        let path = entry.unwrap().path();
        let content = read(&path);
        assert!(
            !content.windows(10).any(|w| w == &SECRET[..10]) && !content.starts_with(b"root:"),
            "{} holds outside content",
            path.display()
        );
    }
}

// -------------------------------------------------------------------- URL root

/// `python3 -m http.server` in the server namespace on port 8080, serving `dir`.
fn http_server(env: &Env, dir: &Path) -> Spawned {
    let server = Spawned::start(
        env.pair
            .server
            .command("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                SERVER,
                "8080",
                "--directory",
            ])
            .arg(dir),
    );
    assert!(
        server.wait_for_stdout("Serving HTTP", Duration::from_secs(10)),
        "the HTTP server did not start: {}",
        server.stdout_so_far()
    );
    server
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn url_root_streams_identical_bytes_and_404_is_file_not_found() {
    require_root();
    let env = Env::new();
    let web = env.dir.path.join("web");
    let content = pattern(2_000_000, 6);
    std::fs::create_dir_all(web.join("sub/images")).unwrap();
    std::fs::write(web.join("sub/images/linux"), &content).unwrap();
    std::fs::write(web.join("outside.txt"), SECRET).unwrap();
    let _http = http_server(&env, &web);
    let conf = env.dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[tftp]\naddress = {SERVER}\nport = 69\nroot = http://{SERVER}:8080/sub\n"
        ),
    );
    let bootd = Bootd::start(&env.pair.server, &conf, &["-t"]);
    bootd.wait_for_log(
        &format!("serving TFTP on {SERVER}:69 from http://{SERVER}:8080/sub"),
        Duration::from_secs(5),
    );

    // tsize comes from Content-Length; windowed and lockstep transfers both stream.
    let out = env.out("linux-atftp");
    let got = run_bounded(
        &mut atftp_get(
            &env,
            "images/linux",
            &out,
            &["blksize 1468", "windowsize 8", "tsize 0"],
        ),
        Duration::from_secs(120),
    );
    got.assert_success();
    assert_same(
        &read(&out),
        &content,
        "images/linux over an http root (atftp)",
    );
    let line = sent_line(&bootd, "images/linux");
    assert!(
        line.contains("2000000 bytes in 1363 blocks of 1468, window 8"),
        "{line}"
    );
    assert!(
        bootd
            .log()
            .contains("images/linux answered (2000000 bytes)"),
        "{}",
        bootd.log()
    );
    let out = env.out("linux-hpa");
    tftp_hpa_get(&env, "binary", "./images/linux", &out).assert_success();
    assert_same(
        &read(&out),
        &content,
        "images/linux over an http root (tftp-hpa)",
    );

    // The tsize answered is the Content-Length.
    let out = env.out("linux-raw");
    let got = run_bounded(
        &mut env.raw(
            "get",
            b"images/linux",
            &["octet", out.to_str().unwrap(), "tsize=0", "blksize=1024"],
        ),
        Duration::from_secs(60),
    );
    assert!(got.stdout.starts_with("OK 2000000 "), "{got}");
    bootd.wait_for_log("asks tsize=0 blksize=1024", Duration::from_secs(1));

    // 404 → ERROR 1, for the raw client and tftp-hpa alike.
    let out = env.out("missing");
    let got = run_bounded(
        &mut env.raw("get", b"images/missing", &["octet", out.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    assert_eq!(got.stdout.trim(), "ERROR 1 file not found", "{got}");
    assert!(!out.exists());
    bootd.wait_for_log("HTTP 404", Duration::from_secs(2));
    let got = tftp_hpa_get(&env, "binary", "images/missing", &env.out("missing-hpa"));
    assert!(
        format!("{}{}", got.stdout, got.stderr).contains("Error code 1: file not found"),
        "{got}"
    );

    // Confinement holds for URL roots: nothing above /sub is reachable, and a
    // leading `/` is /sub itself.
    let got = run_bounded(
        &mut env.raw("get", b"/outside.txt", &["octet", out.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    assert_eq!(got.stdout.trim(), "ERROR 1 file not found", "{got}");
    for name in [
        &b"../outside.txt"[..],
        b"%2e%2e/outside.txt",
        b"/../outside.txt",
    ] {
        let got = run_bounded(
            &mut env.raw("get", name, &["octet", out.to_str().unwrap()]),
            Duration::from_secs(30),
        );
        assert_eq!(got.stdout.trim(), "ERROR 2 access violation", "{got}");
    }
    assert!(!out.exists());
}

/// Runs `openssl ARGS…` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let done = run_bounded(
        Command::new("openssl").current_dir(dir).args(args),
        Duration::from_secs(30),
    );
    assert!(done.success(), "openssl {args:?}: {done}");
}

/// A throw-away CA `NAME-ca.pem` in `dir`, and `NAME.pem` / `NAME.key`: a
/// certificate it signs for the address `ip` (P-256 keys: quick to make).
fn tls_certificate(dir: &Path, name: &str, ip: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca = format!("{name}-ca");
    let mut args = vec!["req", "-x509", "-days", "2", "-subj"];
    let subject = format!("/CN=bootd test CA {name}");
    args.push(&subject);
    args.extend(ec);
    let (ca_key, ca_pem) = (format!("{ca}.key"), format!("{ca}.pem"));
    args.extend(["-keyout", &ca_key, "-out", &ca_pem]);
    args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &args);
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN={ip}");
    let mut args = vec!["req", "-subj", &subject];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr]);
    openssl(dir, &args);
    let extensions = format!("{name}.ext");
    std::fs::write(
        dir.join(&extensions),
        format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-extfile",
            &extensions,
        ],
    );
}

/// An HTTPS server on `SERVER:port` in the server's namespace, serving `dir`
/// with the certificate `NAME.pem` made by [`tls_certificate`] in `tls`.
fn https_server(env: &Env, dir: &Path, tls: &Path, name: &str, port: u16) -> Spawned {
    let script = "import functools, http.server, ssl, sys\n\
        ip, port, root, cert, key = sys.argv[1:6]\n\
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)\n\
        server = http.server.ThreadingHTTPServer((ip, int(port)), handler)\n\
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
        context.load_cert_chain(cert, key)\n\
        server.socket = context.wrap_socket(server.socket, server_side=True)\n\
        print('Serving HTTPS', flush=True)\n\
        server.serve_forever()\n";
    let server = Spawned::start(
        env.pair
            .server
            .command("python3")
            .args(["-u", "-c", script, SERVER, &port.to_string()])
            .arg(dir)
            .arg(tls.join(format!("{name}.pem")))
            .arg(tls.join(format!("{name}.key"))),
    );
    assert!(
        server.wait_for_stdout("Serving HTTPS", Duration::from_secs(10)),
        "the HTTPS server did not start: {}{}",
        server.stdout_so_far(),
        server.stderr_so_far()
    );
    server
}

/// Starts `bootd -t` with the TFTP root `root`, trusting only the CA file
/// `ca` (through `SSL_CERT_FILE`, for bootd alone).
fn bootd_trusting(env: &Env, root: &str, ca: &Path) -> Bootd {
    let conf = env.dir.write(
        "bootd.ini",
        &format!("[logger]\nlevel = debug\n[tftp]\naddress = {SERVER}\nport = 69\nroot = {root}\n"),
    );
    let mut command = env.pair.server.command(bootd_binary());
    command
        .arg("-c")
        .arg(&conf)
        .arg("-t")
        .env("SSL_CERT_FILE", ca)
        .env_remove("SSL_CERT_DIR");
    let bootd = Bootd::spawn(command);
    bootd.wait_for_log(
        &format!("serving TFTP on {SERVER}:69 from {root}"),
        Duration::from_secs(5),
    );
    bootd
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn an_https_root_is_fetched_with_the_ca_bootd_trusts_and_an_untrusted_one_is_refused() {
    require_root();
    if !cfg!(feature = "https") {
        eprintln!("built without the https feature: https:// roots are refused at --check");
        return;
    }
    let env = Env::new();
    let tls = env.dir.path.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    // The mirror's certificate, from a CA bootd is told to trust; and another
    // server's, from a CA it does not know.
    tls_certificate(&tls, "mirror", SERVER);
    tls_certificate(&tls, "stranger", SERVER);
    let web = env.dir.path.join("web");
    let content = pattern(300_000, 8);
    std::fs::create_dir_all(web.join("d-i")).unwrap();
    std::fs::write(web.join("d-i/linux"), &content).unwrap();
    let _mirror = https_server(&env, &web, &tls, "mirror", 8443);
    let _stranger = https_server(&env, &web, &tls, "stranger", 8444);
    let trusted = tls.join("mirror-ca.pem");

    let root = format!("https://{SERVER}:8443/d-i");
    let mut bootd = bootd_trusting(&env, &root, &trusted);
    let out = env.out("linux");
    tftp_hpa_get(&env, "binary", "linux", &out).assert_success();
    assert_same(&read(&out), &content, "linux over an https root");
    assert!(
        sent_line(&bootd, "linux").contains("300000 bytes"),
        "{}",
        bootd.log()
    );
    bootd.stop();

    // A certificate no trusted CA signed: a clear line, an error to the client,
    // not a byte sent.
    let root = format!("https://{SERVER}:8444/d-i");
    let bootd = bootd_trusting(&env, &root, &trusted);
    let out = env.out("linux-untrusted");
    let got = run_bounded(
        &mut env.raw("get", b"linux", &["octet", out.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("ERROR "), "{got}\n{}", bootd.log());
    assert!(!out.exists() || read(&out).is_empty());
    bootd.wait_for_log(
        &format!(
            "TLS handshake with {SERVER}:8444: its certificate is not trusted (UnknownIssuer)"
        ),
        Duration::from_secs(5),
    );
    assert!(!bootd.log().contains(": sent linux"), "{}", bootd.log());
}

// -------------------------------------- WRQ, foreign TID, repeats, busy server

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn uploads_are_refused_and_nothing_is_written() {
    require_root();
    let env = Env::new();
    env.file("existing.bin", b"keep me");
    let bootd = env.start("", "");
    let local = env.out("upload.bin");
    std::fs::write(&local, pattern(5000, 7)).unwrap();
    for remote in ["new.bin", "existing.bin", "../escaped.bin"] {
        let got = run_bounded(
            env.client("tftp")
                .args(["-m", "binary", SERVER, "-c", "put"])
                .arg(&local)
                .arg(remote),
            Duration::from_secs(30),
        );
        assert!(
            format!("{}{}", got.stdout, got.stderr)
                .contains("Error code 2: read-only server: uploads are refused"),
            "{remote}: {got}"
        );
        bootd.wait_for_log(
            &format!("refused upload of {remote}: bootd is a read-only server"),
            Duration::from_secs(2),
        );
    }
    assert_eq!(read(&env.root.join("existing.bin")), b"keep me");
    let mut names: Vec<String> = std::fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["existing.bin"]);
    assert!(!env.dir.path.join("escaped.bin").exists());
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_foreign_endpoint_gets_error_5_and_the_transfer_completes() {
    require_root();
    let env = Env::new();
    let content = pattern(200_000, 8);
    env.file("target.bin", &content);
    let bootd = env.start("", "");
    let out = env.out("target.bin");
    let got = run_bounded(
        &mut env.raw("foreign", b"target.bin", &[out.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    got.assert_success();
    let mut lines = got.stdout.lines();
    let foreign = lines.next().unwrap_or_default();
    assert!(
        foreign.starts_with("FOREIGN ERROR 5 unknown transfer ID from "),
        "{got}"
    );
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("OK 200000 391 1"),
        "{got}"
    );
    assert_same(&read(&out), &content, "target.bin with an intruder");
    bootd.wait_for_log("answered with ERROR 5", Duration::from_secs(2));
    let line = sent_line(&bootd, "target.bin");
    assert!(line.contains("200000 bytes in 391 blocks of 512"), "{line}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_repeated_request_does_not_start_a_second_transfer() {
    require_root();
    let env = Env::new();
    let content = pattern(100_000, 9);
    env.file("twice.bin", &content);
    let bootd = env.start("", "");
    let out = env.out("twice.bin");
    let got = run_bounded(
        &mut env.raw("repeat", b"twice.bin", &[out.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    got.assert_success();
    // One server port sent DATA: one transfer.
    assert!(got.stdout.starts_with("OK 100000 196 1"), "{got}");
    assert_same(&read(&out), &content, "twice.bin");
    bootd.wait_for_log(
        "repeated request for twice.bin ignored",
        Duration::from_secs(2),
    );
    let line = sent_line(&bootd, "twice.bin");
    assert!(line.contains("0 retransmits"), "{line}");
    let log = bootd.log();
    assert_eq!(log.matches(": read twice.bin (").count(), 1, "{log}");
    assert_eq!(log.matches(": sent twice.bin: ").count(), 1, "{log}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn max_transfers_refuses_the_third_with_server_busy() {
    require_root();
    let env = Env::new();
    let content = pattern(50_000, 10);
    env.file("held.bin", &content);
    let bootd = env.start("max_transfers = 2\nretries = 3\n", "");
    // Two clients that take DATA 1 and never acknowledge it.
    let _holders = holding(&env, &[b"held.bin", b"held.bin"], 20);
    let got = run_bounded(
        &mut env.raw("rrq", b"held.bin", &[]),
        Duration::from_secs(10),
    );
    assert_eq!(
        got.stdout.trim(),
        "ERROR 0 server busy, try again later",
        "{got}"
    );
    bootd.wait_for_log(
        "2 transfers already running ([tftp] max_transfers)",
        Duration::from_secs(2),
    );
    // The dead transfers are abandoned after their retries, and free their slots.
    wait_until_abandoned(&bootd, 2);
    let out = env.out("held.bin");
    let got = run_bounded(
        &mut env.raw("get", b"held.bin", &["octet", out.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    assert!(got.stdout.starts_with("OK 50000 "), "{got}");
    assert_same(&read(&out), &content, "held.bin after the slots freed");
}

/// One client per name that takes DATA 1 and then stays silent for `seconds`;
/// returns once every one of them holds its DATA 1.
fn holding(env: &Env, names: &[&[u8]], seconds: u32) -> Vec<Spawned> {
    let holders: Vec<Spawned> = names
        .iter()
        .map(|name| Spawned::start(&mut env.raw("hold", name, &[&seconds.to_string()])))
        .collect();
    for holder in &holders {
        assert!(
            holder.wait_for_stdout("HELD DATA 1 512 ", Duration::from_secs(5)),
            "{}",
            holder.stdout_so_far()
        );
    }
    holders
}

/// Waits until `count` transfers have been given up for clients that stopped answering.
fn wait_until_abandoned(bootd: &Bootd, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while bootd.log().matches("the client stopped answering").count() < count {
        assert!(
            Instant::now() < deadline,
            "the held transfers were never abandoned:\n{}",
            bootd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Descriptors of process `pid` open on `path`.
fn descriptors_on(pid: i32, path: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn transfers_of_one_file_share_one_descriptor_and_the_last_closes_it() {
    require_root();
    let env = Env::new();
    let storm = env.file("storm.bin", &pattern(300_000, 11));
    let other = env.file("other.bin", &pattern(70_000, 12));
    let bootd = env.start("retries = 2\n", "");
    // Six clients take DATA 1 of storm.bin and one of other.bin, then stop answering.
    let mut names = vec![b"storm.bin".as_slice(); 6];
    names.push(b"other.bin");
    let _holders = holding(&env, &names, 10);
    let (storm, other) = (storm.canonicalize().unwrap(), other.canonicalize().unwrap());
    assert_eq!(
        descriptors_on(bootd.pid(), &storm),
        1,
        "six transfers, one descriptor"
    );
    assert_eq!(descriptors_on(bootd.pid(), &other), 1);
    wait_until_abandoned(&bootd, 7);
    assert_eq!(
        descriptors_on(bootd.pid(), &storm),
        0,
        "closed with its last transfer"
    );
    assert_eq!(descriptors_on(bootd.pid(), &other), 0);
}

/// User + system CPU time of a process so far (/proc/PID/stat, in clock ticks).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: fields are counted after its ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> u64 {
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as u64
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn busy_polling_stops_when_it_does_not_pay_and_an_idle_server_sleeps() {
    require_root();
    let env = Env::new();
    // 600 full blocks and an empty one: a client answering after 3 ms takes 2-4 s.
    let content = pattern(600 * 512, 11);
    env.file("slow.bin", &content);
    // The largest budget: a spin that never stopped would keep a core a third busy.
    let bootd = env.start(
        "busy_poll = 1000
",
        "",
    );
    let hz = ticks_per_second();

    let before = cpu_ticks(bootd.pid());
    let started = Instant::now();
    let out = env.out("slow.bin");
    let got = run_bounded(
        &mut env.raw("slow", b"slow.bin", &[out.to_str().unwrap(), "3"]),
        Duration::from_secs(60),
    );
    assert!(got.stdout.starts_with("OK 307200 601 "), "{got}");
    assert_same(&read(&out), &content, "slow.bin");
    let spent = (cpu_ticks(bootd.pid()) - before) as f64 / hz as f64;
    let elapsed = started.elapsed().as_secs_f64();
    // Spinning 1 ms before each 3 ms answer would be 25% of a core; the policy
    // pauses after 64 misses for a second, so it costs a few percent (measured:
    // 4% with the pause, 17% without).
    assert!(
        spent < elapsed * 0.10,
        "bootd used {spent:.2} s of CPU during a {elapsed:.2} s transfer to a slow client"
    );

    // No transfer in flight: the thread sleeps.
    let before = cpu_ticks(bootd.pid());
    std::thread::sleep(Duration::from_secs(2));
    let idle = (cpu_ticks(bootd.pid()) - before) as f64 / hz as f64;
    assert!(idle < 0.1, "an idle bootd used {idle:.2} s of CPU in 2 s");
}

// --------------------------------------------------------------------- filters

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn filters_rewrite_pxelinux_lookups_and_follow_path_indirection() {
    require_root();
    let env = Env::new();
    let default = b"DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.gz\n";
    env.file("pxelinux.cfg/default", default);
    env.file(
        "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff",
        b"never served: the filter wins",
    );
    let kernel = pattern(70_000, 11);
    env.file("images/vmlinuz-6.1", &kernel);
    env.file(
        "indirect/startup.txt",
        b"\n  images/vmlinuz-6.1  \nignored\n",
    );
    env.file("indirect/escape.txt", b"../secret.txt\n");
    let bootd = env.start(
        "",
        "[filters]\npxelinux.cfg/* = pxelinux.cfg/default\nstartup = [indirect/{filename}.txt]\nescape = [indirect/escape.txt]\nclimb* = ../{filename}\n",
    );
    for name in [
        "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff",
        "pxelinux.cfg/C0A80001",
        "pxelinux.cfg/default",
        "./pxelinux.cfg/44454c4c-3800-1058-8042-b4c04f565731",
    ] {
        let out = env.out(&name.replace('/', "_"));
        tftp_hpa_get(&env, "binary", name, &out).assert_success();
        assert_same(&read(&out), default, name);
    }
    let log = bootd.log();
    assert!(
        log.contains(": read pxelinux.cfg/C0A80001 (as pxelinux.cfg/default) ("),
        "{log}"
    );

    let out = env.out("startup");
    tftp_hpa_get(&env, "binary", "startup", &out).assert_success();
    assert_same(&read(&out), &kernel, "startup via [indirect/startup.txt]");
    let line = sent_line(&bootd, "startup");
    assert!(line.contains("(as images/vmlinuz-6.1)"), "{line}");

    // Names produced by filters are confined like requested ones.
    for name in [&b"escape"[..], b"climb-out"] {
        let got = run_bounded(
            &mut env.raw("get", name, &["octet", out.to_str().unwrap()]),
            Duration::from_secs(20),
        );
        assert_eq!(got.stdout.trim(), "ERROR 2 access violation", "{got}");
    }
}

// ----------------------------------------------------------------- single port

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn single_port_mode_serves_every_client_from_port_69() {
    require_root();
    let env = Env::new();
    let files: Vec<Vec<u8>> = (0..6)
        .map(|i| pattern(300_000 + 9_999 * i, 200 + i as u64))
        .collect();
    for (i, content) in files.iter().enumerate() {
        env.file(&format!("one/f{i}.bin"), content);
    }
    let bootd = env.start("single_port = on\nmax_transfers_per_client = 50\n", "");
    bootd.wait_for_log("every transfer from this port", Duration::from_secs(2));

    // DATA 1 comes from port 69 itself.
    let held = Spawned::start(&mut env.raw("hold", b"one/f0.bin", &["1"]));
    assert!(
        held.wait_for_stdout("HELD DATA 1 512 69\n", Duration::from_secs(5)),
        "{}",
        held.stdout_so_far()
    );
    drop(held.finish(Duration::from_secs(5)));

    // Real clients side by side, lock-step and windowed, every block size: all of
    // them served from the one port, and every byte right.
    let started = Instant::now();
    let mut clients: Vec<(usize, PathBuf, Spawned)> = (0..30)
        .map(|n| {
            let file = n % files.len();
            let out = env.out(&format!("one-curl-{n}.bin"));
            let blksize = [None, Some(1468), Some(512)][n % 3];
            let spawned = Spawned::start(&mut curl_get(
                &env,
                &format!("one/f{file}.bin"),
                &out,
                blksize,
            ));
            (file, out, spawned)
        })
        .collect();
    for n in 0..4 {
        let file = n % files.len();
        let out = env.out(&format!("one-atftp-{n}.bin"));
        let spawned = Spawned::start(&mut atftp_get(
            &env,
            &format!("one/f{file}.bin"),
            &out,
            &["blksize 1024", "windowsize 8"],
        ));
        clients.push((file, out, spawned));
    }
    for (file, out, spawned) in clients {
        let what = format!("client for one/f{file}.bin into {}", out.display());
        let finished = spawned.finish(Duration::from_secs(120));
        assert!(finished.success(), "{what}: {finished}");
        assert_same(&read(&out), &files[file], &what);
    }
    eprintln!(
        "34 parallel downloads from one port: {:?}",
        started.elapsed()
    );
    let hpa_out = env.out("one-hpa.bin");
    tftp_hpa_get(&env, "binary", "one/f5.bin", &hpa_out).assert_success();
    assert_same(&read(&hpa_out), &files[5], "tftp-hpa from one port");

    // A stranger's ACK to port 69 reaches no transfer: no ERROR 5 (nothing at all
    // answers it), and the transfer completes.
    let out = env.out("one-foreign.bin");
    let got = run_bounded(
        &mut env.raw("foreign", b"one/f1.bin", &[out.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    got.assert_success();
    let mut lines = got.stdout.lines();
    assert_eq!(lines.next(), Some("FOREIGN TIMEOUT"), "{got}");
    let blocks = files[1].len() / 512 + 1;
    let ok = format!("OK {} {blocks} 1", files[1].len());
    assert_eq!(lines.next(), Some(ok.as_str()), "{got}");
    assert_same(&read(&out), &files[1], "one/f1.bin with a stranger");

    // A refusal still reaches the client (from port 69: see the endpoint's tests).
    let got = run_bounded(
        &mut env.raw("rrq", b"one/missing.bin", &[]),
        Duration::from_secs(10),
    );
    assert!(got.stdout.starts_with("ERROR 1 "), "{got}");
    assert!(!bootd.log().contains("answered with ERROR 5"));
}
