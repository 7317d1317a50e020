//! The lease file under a real daemon: a disk that fills up while machines are
//! served, a start-up rewrite that finds no room, lines bootd cannot read, what
//! `lease_file` may name (/dev/null, a symbolic link, a directory, a place bootd
//! cannot write), and two daemons given the same file.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::lease_site::{
    LeaseFileContents, numbered_mac as mac, pool_config as config, read_lease_file,
    start_dhcp_only as start,
};
use common::*;

/// A tmpfs of `size` mounted on `path` (created for it), unmounted on drop: a
/// disk the test can fill.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn new(path: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        // Writable by every user, as the scratch directories are: bootd started as
        // root runs unprivileged once its sockets are open.
        let options = format!("size={size},mode=0777");
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &options,
            "bootd-test-disk",
            path.to_str().unwrap(),
        ]);
        SmallDisk { path }
    }

    /// Fills the disk with a file grown until the disk refuses more; returns it.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0xA5u8; 4096];
        while let Ok(n) = file.write(&block) {
            if n == 0 {
                break;
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// One DHCP exchange per MAC, one after the other (stopping at the first MAC
/// not ACKed with `until_failure`): (ACK|NAK|NOOFFER|NOACK, MAC, address).
fn clients(pair: &Pair, macs: &[String], until_failure: bool) -> Vec<(String, String, String)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/lease_client.py");
    let mut command = pair.client.command("python3");
    command.arg(&script).arg(&pair.client_if).args(macs);
    if until_failure {
        command.arg("--until-failure");
    }
    let done = run_bounded(
        &mut command,
        Duration::from_secs(10 + 3 * macs.len() as u64),
    );
    done.assert_success();
    done.stdout
        .lines()
        .map(|line| {
            let mut fields = line.split_whitespace().map(str::to_string);
            (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn an_ack_is_sent_only_for_a_binding_whole_on_disk_when_the_disk_fills_up() {
    require_root();
    let pair = Pair::new("10.97.0.1/24", None);
    let dir = TempDir::new();
    let disk = SmallDisk::new(dir.path.join("state"), "256k");
    let leases = disk.path.join("leases");
    let conf = config(&dir, "10.97.0.100", 150, &leases);
    let mut bootd = start(&pair, &conf);
    // The file holds its 62-byte header and each binding adds 47 bytes: once the
    // disk is full, the 86th binding crosses the end of the file's only page, and
    // only its first bytes fit.
    let filler = disk.fill();
    let macs: Vec<String> = (1..=120).map(mac).collect();
    let first = clients(&pair, &macs, true);
    let (kind, refused, _) = first.last().unwrap().clone();
    assert_ne!(kind, "ACK", "the disk never filled up: {first:?}");
    let mut acked: BTreeMap<String, String> = first
        .iter()
        .filter(|(kind, _, _)| kind == "ACK")
        .map(|(_, mac, ip)| (mac.clone(), ip.clone()))
        .collect();
    assert!(acked.len() >= 50, "{first:?}");
    bootd.wait_for_log("cannot write the lease file", Duration::from_secs(5));
    let log = bootd.log();
    assert!(
        log.contains(&format!("{refused}: cannot write the lease file"))
            && log.contains("No space left on device")
            && log.contains("the partial line was cut off"),
        "{log}"
    );
    // Room again: the refused machine asks again, and others come.
    std::fs::remove_file(&filler).unwrap();
    let mut again = vec![refused.clone()];
    again.extend((121..=124).map(mac));
    for (kind, mac, ip) in clients(&pair, &again, false) {
        assert_eq!(kind, "ACK", "{mac}; log:\n{}", bootd.log());
        acked.insert(mac, ip);
    }
    let (status, _) = bootd.stop();
    assert_eq!(status.code(), Some(0), "{}", bootd.log());
    // Every binding a machine was told of is on disk, on a line of its own.
    let LeaseFileContents {
        bound: on_disk,
        unreadable,
        ..
    } = read_lease_file(&leases);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    for (mac, ip) in &acked {
        assert_eq!(on_disk.get(mac), Some(ip), "{mac} was ACKed {ip}");
    }
    // And bootd, started again, knows every one of them.
    let bootd = start(&pair, &conf);
    let log = bootd.log();
    assert!(
        log.contains(&format!("{} bindings", acked.len())),
        "{} ACKed; log:\n{log}",
        acked.len()
    );
    assert!(!log.contains("line skipped"), "{log}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_start_up_rewrite_that_finds_the_disk_full_leaves_no_copy_and_bindings_go_on() {
    require_root();
    let pair = Pair::new("10.98.0.1/16", None);
    let dir = TempDir::new();
    let disk = SmallDisk::new(dir.path.join("state"), "128k");
    let leases = disk.path.join("leases");
    // 300 bindings, and a comment that ends the file on a page boundary: a
    // binding appended needs a page of its own.
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&format!(
            "{} 10.98.{}.{} 1718000000 bound\n",
            mac(1000 + i),
            3 + i / 200,
            1 + i % 200
        ));
    }
    let mut pad = (4096 - text.len() % 4096) % 4096;
    if pad < 2 {
        pad += 4096;
    }
    text.push_str(&format!("#{}\n", "-".repeat(pad - 2)));
    assert_eq!(text.len() % 4096, 0);
    std::fs::write(&leases, &text).unwrap();
    // The lock file has its page already.
    std::fs::write(disk.path.join("leases.lock"), "0\n").unwrap();
    // One page left: the rewrite needs four, a binding one.
    let filler = disk.fill();
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .and_then(|file| file.set_len(len - 4096))
        .unwrap();
    let conf = config(&dir, "10.98.1.100", 50, &leases);
    let mut bootd = start(&pair, &conf);
    let log = bootd.log();
    assert!(
        log.contains("cannot rewrite the lease file")
            && log.contains("is removed, and bindings are still appended to"),
        "{log}"
    );
    assert!(!disk.path.join("leases.tmp").exists(), "{log}");
    let served = clients(&pair, &[mac(1)], false);
    assert_eq!(served[0].0, "ACK", "{served:?}; log:\n{}", bootd.log());
    let LeaseFileContents {
        bound: on_disk,
        unreadable,
        ..
    } = read_lease_file(&leases);
    assert_eq!(
        (on_disk.len(), unreadable.len()),
        (301, 0),
        "{unreadable:?}"
    );
    assert_eq!(on_disk.get(&mac(1)), Some(&served[0].2));
    // With room again, the next start rewrites the file.
    std::fs::remove_file(&filler).unwrap();
    bootd.stop();
    let bootd = start(&pair, &conf);
    let log = bootd.log();
    assert!(
        log.contains("301 bindings") && !log.contains("cannot rewrite"),
        "{log}"
    );
    assert_eq!(read_lease_file(&leases).unreadable, Vec::<String>::new());
    assert!(!disk.path.join("leases.tmp").exists());
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn lines_bootd_cannot_read_are_kept_beside_the_lease_file() {
    require_root();
    let pair = Pair::new("10.96.0.1/24", None);
    let dir = TempDir::new();
    let leases = dir.path.join("leases");
    std::fs::write(
        &leases,
        format!(
            "{} 10.96.0.100 1718000000 bound\nthis is not a binding\n{} 10.96.0.999 1718000000 bound\n",
            mac(1),
            mac(2)
        ),
    )
    .unwrap();
    let conf = config(&dir, "10.96.0.100", 10, &leases);
    let mut bootd = start(&pair, &conf);
    let rejected = dir.path.join("leases.rejected");
    let log = bootd.log();
    for line in [2, 3] {
        let said = format!("{}:{line}: ", leases.display());
        let kept = format!("line skipped, kept in {}", rejected.display());
        assert!(
            log.lines().any(|l| l.contains(&said) && l.contains(&kept)),
            "line {line}: {log}"
        );
    }
    bootd.stop();
    let kept = std::fs::read_to_string(&rejected).unwrap();
    assert!(
        kept.contains("\nthis is not a binding\n")
            && kept.contains(&format!("\n{} 10.96.0.999 1718000000 bound\n", mac(2))),
        "{kept}"
    );
    // The lease file is rewritten without them, with the good line.
    let LeaseFileContents {
        bound: on_disk,
        unreadable,
        ..
    } = read_lease_file(&leases);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    assert_eq!(
        on_disk.get(&mac(1)).map(String::as_str),
        Some("10.96.0.100")
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn lease_file_dev_null_keeps_nothing_and_stays_a_device() {
    require_root();
    let pair = Pair::new("10.93.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "10.93.0.100", 10, Path::new("/dev/null"));
    // --check says that nothing is kept, and touches nothing.
    let check = run_bounded(
        pair.server
            .command(bootd_binary())
            .args(["--check", "-p", "-c"])
            .arg(&conf),
        Duration::from_secs(10),
    );
    assert_eq!(check.status.and_then(|s| s.code()), Some(0), "{check}");
    assert!(
        check
            .stderr
            .contains("warning: [bootp] lease_file = /dev/null: bindings are not kept"),
        "{check}"
    );
    // The daemon gets a /dev of its own, holding a null device, so that whatever
    // it does to /dev/null stays in there.
    let script = format!(
        "mount -t tmpfs -o size=64k,mode=0755 bootd-test-dev /dev && mknod -m 666 /dev/null c 1 3 && exec ip netns exec {} {} -c {} -p",
        pair.server.name,
        bootd_binary(),
        conf.display()
    );
    let mut command = Command::new("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let mut bootd = Bootd::spawn(command);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    assert!(
        bootd
            .log()
            .contains("lease_file = /dev/null: bindings are not kept"),
        "{}",
        bootd.log()
    );
    let served = clients(&pair, &[mac(1), mac(2)], false);
    assert!(
        served.iter().all(|(kind, _, _)| kind == "ACK"),
        "{served:?}"
    );
    let dev = PathBuf::from(format!("/proc/{}/root/dev", bootd.pid()));
    let null = std::fs::symlink_metadata(dev.join("null")).unwrap();
    assert!(null.file_type().is_char_device(), "{null:?}");
    assert!(!dev.join("null.tmp").exists());
    let (status, _) = bootd.stop();
    assert_eq!(status.code(), Some(0), "{}", bootd.log());
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_lease_file_that_is_a_symbolic_link_is_written_through() {
    require_root();
    let pair = Pair::new("10.92.0.1/24", None);
    let dir = TempDir::new();
    let real = dir.write(
        "data/leases",
        &format!("{} 10.92.0.109 1718000000 bound\n", mac(9)),
    );
    let link = dir.path.join("leases");
    symlink("data/leases", &link).unwrap();
    let conf = config(&dir, "10.92.0.100", 20, &link);
    let mut bootd = start(&pair, &conf);
    assert!(
        bootd
            .log()
            .contains("is a symbolic link: bindings are kept in"),
        "{}",
        bootd.log()
    );
    let served = clients(&pair, &[mac(1)], false);
    assert_eq!(served[0].0, "ACK", "{served:?}");
    bootd.stop();
    // The link is still the link; its target holds both bindings.
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("data/leases"));
    let on_disk = read_lease_file(&real).bound;
    assert_eq!(
        on_disk.get(&mac(9)).map(String::as_str),
        Some("10.92.0.109")
    );
    assert_eq!(on_disk.get(&mac(1)), Some(&served[0].2));
    let bootd = start(&pair, &conf);
    assert!(bootd.log().contains("2 bindings"), "{}", bootd.log());
}

/// `bootd --check -p -c conf` in this namespace, within 10 s.
fn check(conf: &Path) -> Finished {
    run_bounded(
        Command::new(bootd_binary())
            .args(["--check", "-p", "-c"])
            .arg(conf),
        Duration::from_secs(10),
    )
}

#[test]
fn check_refuses_a_lease_file_that_is_a_directory() {
    let dir = TempDir::new();
    let leases = dir.path.join("leases");
    std::fs::create_dir(&leases).unwrap();
    let conf = config(&dir, "127.0.0.100", 10, &leases);
    let done = check(&conf);
    assert_eq!(done.status.and_then(|s| s.code()), Some(1), "{done}");
    assert!(
        done.stderr.contains(&format!(
            "error: [bootp] lease_file = {}: is a directory; name a file, such as {}/leases",
            leases.display(),
            leases.display()
        )),
        "{done}"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn check_refuses_a_lease_file_where_bootd_cannot_write() {
    require_root();
    let dir = TempDir::new();
    let state = dir.path.join("state");
    std::fs::create_dir(&state).unwrap();
    let conf = config(&dir, "127.0.0.100", 10, &state.join("leases"));
    // A read-only mount, in a mount namespace of its own: even root cannot
    // write there.
    let script = format!(
        "mount -t tmpfs -o ro,size=64k bootd-test-ro {} && exec {} --check -p -c {}",
        state.display(),
        bootd_binary(),
        conf.display()
    );
    let done = run_bounded(
        Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]),
        Duration::from_secs(10),
    );
    assert_eq!(done.status.and_then(|s| s.code()), Some(1), "{done}");
    assert!(
        done.stderr.contains(&format!(
            "error: [bootp] lease_file = {}: bootd cannot write in {} as this user (Read-only file system",
            state.join("leases").display(),
            state.display()
        )),
        "{done}"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_second_daemon_on_the_same_lease_file_refuses_to_start_naming_the_first() {
    require_root();
    let (a, b) = (
        Pair::new("10.95.0.1/24", None),
        Pair::new("10.95.1.1/24", None),
    );
    let dir = TempDir::new();
    let leases = dir.path.join("leases");
    let conf_a = config(&dir, "10.95.0.100", 10, &leases);
    let conf_b = dir.write(
        "b.ini",
        &std::fs::read_to_string(&conf_a)
            .unwrap()
            .replace("10.95.0.100", "10.95.1.100"),
    );
    let mut first = start(&a, &conf_a);
    let holder = format!(
        "[bootp] lease_file = {}: in use by another bootd (PID {}, which holds {}.lock)",
        leases.display(),
        first.pid(),
        leases.display()
    );
    // --check says so.
    let done = run_bounded(
        b.server
            .command(bootd_binary())
            .args(["--check", "-p", "-c"])
            .arg(&conf_b),
        Duration::from_secs(10),
    );
    assert_eq!(done.status.and_then(|s| s.code()), Some(1), "{done}");
    assert!(done.stderr.contains(&holder), "{done}");
    // The second daemon does not start.
    let mut second = Bootd::start(&b.server, &conf_b, &["-p"]);
    let (status, _) = second
        .wait(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the second bootd runs; log:\n{}", second.log()));
    assert_eq!(status.code(), Some(1), "{}", second.log());
    assert!(second.log().contains(&holder), "{}", second.log());
    assert!(!second.log().contains("serving BOOTP/DHCP"));
    // The first goes on serving, and its bindings are kept.
    let served = clients(&a, &[mac(1)], false);
    assert_eq!(served[0].0, "ACK", "{served:?}");
    first.stop();
    // Once it is gone, the second starts, and keeps the first one's binding.
    let mut second = start(&b, &conf_b);
    second.stop();
    assert_eq!(
        read_lease_file(&leases).bound.get(&mac(1)),
        Some(&served[0].2)
    );
}
