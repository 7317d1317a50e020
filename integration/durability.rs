//! Durability under load: bootd killed with SIGKILL in the middle of a storm of
//! new clients keeps, after a restart, every binding it ACKed, and gives each of
//! those clients the same address again; a torn last line is skipped with a log
//! line. A disk that fills up in the middle of a storm cuts the group write back
//! to its last whole line and answers none of that group.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::lease_site::{
    numbered_mac as mac, pool_config as config, read_lease_file, start_dhcp_only as start,
};
use common::*;

/// The storm client, started in the client namespace: one exchange per MAC of
/// `macs`, `rate` new ones a second.
fn storm(pair: &Pair, dir: &TempDir, name: &str, macs: &[String], rate: u32) -> Spawned {
    let list = dir.write(name, &(macs.join("\n") + "\n"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/storm_client.py");
    let mut command = pair.client.command("python3");
    command
        .arg(script)
        .arg(&pair.client_if)
        .arg(rate.to_string())
        .arg(list);
    Spawned::start(&mut command)
}

/// The ACKs in the storm client's output: MAC → address.
fn acks(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some("ACK"))
                .then(|| Some((fields.next()?.to_string(), fields.next()?.to_string())))
                .flatten()
        })
        .collect()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn every_client_acked_before_a_sigkill_in_a_storm_keeps_its_address() {
    require_root();
    let pair = Pair::new("10.93.0.1/16", None);
    let dir = TempDir::new();
    // On the disk the tests run from, not a tmpfs: writes and flushes cost what
    // they cost in use.
    let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("storm"));
    std::fs::create_dir_all(&state).unwrap();
    let _cleanup = Cleanup(state.clone());
    let leases = state.join("leases");
    let conf = config(&dir, "10.93.1.0", 20_000, &leases);
    let mut bootd = start(&pair, &conf);

    // A storm of new clients, far more than can be done before the kill.
    let macs: Vec<String> = (1..=20_000).map(mac).collect();
    let client = storm(&pair, &dir, "storm.macs", &macs, 3_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks(&client.stdout_so_far()).len() < 1_500 {
        assert!(
            Instant::now() < deadline,
            "too few ACKs before the kill: {}; log:\n{}",
            client.stdout_so_far().lines().count(),
            bootd.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    bootd.signal(libc::SIGKILL);
    let (status, _) = bootd.wait(Duration::from_secs(5)).expect("bootd ends");
    assert_eq!(status.code(), None, "killed by a signal: {status}");
    // ACKs already on their way arrive; none comes after.
    std::thread::sleep(Duration::from_millis(500));
    let told = acks(&client.stdout_so_far());
    drop(client);
    let on_disk = read_lease_file(&leases).bound;
    eprintln!(
        "{} clients ACKed before the kill, {} bindings on disk",
        told.len(),
        on_disk.len()
    );
    for (mac, ip) in &told {
        assert_eq!(on_disk.get(mac), Some(ip), "{mac} was ACKed {ip}");
    }

    // A crash in the middle of a write leaves part of a line: it is skipped.
    let mut torn = std::fs::read(&leases).unwrap();
    if torn.last() == Some(&b'\n') {
        torn.extend_from_slice(format!("{} 10.93.200.1 17180", mac(30_000)).as_bytes());
        std::fs::write(&leases, &torn).unwrap();
    }
    let last_line = read_lease_file(&leases).lines;
    let mut bootd = start(&pair, &conf);
    let log = bootd.log();
    let skipped = format!(
        "{}:{last_line}: the last line has no newline: a write cut short",
        leases.display(),
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&skipped) && l.contains("line skipped")),
        "no `{skipped}`; log:\n{log}"
    );
    assert!(
        log.contains(&format!("{} bindings in", on_disk.len())),
        "{log}"
    );

    // Every client told of an address gets that address again.
    let returning: Vec<String> = told.keys().cloned().collect();
    let client = storm(&pair, &dir, "returning.macs", &returning, 1_000);
    let done = client.finish(Duration::from_secs(120));
    done.assert_success();
    let again = acks(&done.stdout);
    for (mac, ip) in &told {
        assert_eq!(
            again.get(mac),
            Some(ip),
            "{mac} was ACKed {ip} before the kill; the storm client says:\n{}",
            done.stdout
                .lines()
                .find(|l| l.contains(mac.as_str()))
                .unwrap_or("nothing")
        );
    }
    let (status, _) = bootd.stop();
    assert_eq!(status.code(), Some(0), "{}", bootd.log());
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_disk_filling_up_in_a_storm_answers_only_the_bindings_whole_on_disk() {
    require_root();
    let pair = Pair::new("10.94.0.1/16", None);
    let dir = TempDir::new();
    let disk = SmallDisk::new(dir.path.join("state"), "256k");
    let leases = disk.path.join("leases");
    let conf = config(&dir, "10.94.1.0", 5_000, &leases);
    let mut bootd = start(&pair, &conf);
    // The file's only page holds its header and about 85 bindings: the group
    // write that crosses its end finds the disk full with part of it written.
    let _filler = disk.fill();
    let macs: Vec<String> = (1..=600).map(mac).collect();
    let done = storm(&pair, &dir, "full.macs", &macs, 3_000).finish(Duration::from_secs(120));
    done.assert_success();
    let told = acks(&done.stdout);
    let lost = done
        .stdout
        .lines()
        .filter(|l| l.starts_with("LOST"))
        .count();
    assert!(
        told.len() >= 50 && lost > 0,
        "{} ACKs, {lost} lost: the disk never filled up; log:\n{}",
        told.len(),
        bootd.log()
    );
    let log = bootd.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot write the lease file"))
        .collect();
    eprintln!(
        "{} clients ACKed, {lost} lost; the first refused write: {}",
        told.len(),
        refused.first().unwrap_or(&"none")
    );
    assert!(
        refused.iter().any(|l| l.contains("No space left on device")
            && (l.contains("the partial line was cut off")
                || l.contains("the partial lines were cut off"))),
        "{log}"
    );
    let (status, _) = bootd.stop();
    assert_eq!(status.code(), Some(0), "{}", bootd.log());
    // Whole lines only, and every binding a client was told of among them.
    let text = std::fs::read_to_string(&leases).unwrap();
    assert!(text.ends_with('\n'), "a partial line was left: {text:?}");
    let on_disk = read_lease_file(&leases).bound;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert_eq!(line.split_whitespace().count(), 4, "{line:?}");
    }
    for (mac, ip) in &told {
        assert_eq!(on_disk.get(mac), Some(ip), "{mac} was ACKed {ip}");
    }
    // And no binding on disk that its client was not told of, but for ACKs the
    // network lost: the group that failed left nothing behind.
    assert!(on_disk.len() <= told.len() + 5, "{} on disk", on_disk.len());
}

/// A tmpfs of `size` mounted on `path` (created for it), unmounted on drop: a
/// disk the test can fill.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn new(path: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let options = format!("size={size},mode=0755");
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

/// Removes a directory on drop.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
