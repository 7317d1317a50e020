//! What bootd sends besides its replies, under pressure: a log reader that stops
//! reading must not stop the services or the shutdown, and a notification target
//! that never answers must not cost the others their notifications.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("integration")
        .join(name)
}

/// A process killed (and reaped) on drop, resumed first if it was stopped.
struct Process(Child);

impl Process {
    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        unsafe {
            libc::kill(self.0.id() as i32, signal);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `file` until it contains `needle`; panics with its content after `timeout`.
fn wait_for_text(file: &Path, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{needle}` never appeared in {} within {timeout:?}; it holds:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many bytes wait unread in the pipe that is `pid`'s standard input.
fn unread_in_stdin_pipe(pid: u32) -> usize {
    // Opening the pipe through /proc makes this process one more reader; it reads
    // nothing, it only asks how much is there.
    let pipe = File::open(format!("/proc/{pid}/fd/0")).unwrap();
    let mut unread: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which outlives the call.
    let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut unread) };
    assert_eq!(rc, 0, "FIONREAD failed");
    usize::try_from(unread).unwrap_or(0)
}

/// Sends `count` hostile datagrams to `port` from the client namespace.
fn flood(pair: &Pair, server: &str, port: &str, count: &str, seed: &str) {
    let out = pair
        .client
        .command("python3")
        .arg(script("flood.py"))
        .args([server, port, count, "20", seed])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("sent "),
        "flood failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fills the log pipe and the queue behind it: floods with more than 2 MiB of
/// debug lines, then checks that at least 60 KiB wait unread in the pipe (which
/// holds 64 KiB), so that the next log line bootd writes would block.
fn fill_log_pipe(pair: &Pair, server: &str, reader: &Process) {
    for seed in ["1", "2"] {
        flood(pair, server, "69", "15000", seed);
    }
    let unread = unread_in_stdin_pipe(reader.0.id());
    assert!(
        unread >= 60 * 1024,
        "the flood did not fill the log pipe: {unread} bytes unread"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_stalled_log_reader_stops_neither_the_services_nor_the_shutdown() {
    require_root();
    const SERVER: &str = "10.97.0.1";
    let pair = Pair::new("10.97.0.1/24", Some("10.97.0.2/24"));
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    std::fs::write(dir.path.join("root/pxelinux.0"), vec![0x5a; 50_000]).unwrap();
    let conf = dir.write(
        "bootd.ini",
        "[logger]\nlevel = debug\n[bootp]\npool_start = 10.97.0.100\npool_count = 50\nallow_simple_dhcp = on\nlease_file = leases\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n",
    );
    // bootd's stderr is a pipe into `cat`, which the test stops and resumes.
    let log_file = dir.path.join("stderr.log");
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(File::create(&log_file).unwrap())
        .spawn()
        .unwrap();
    let pipe = cat.stdin.take().unwrap();
    let reader = Process(cat);
    let bootd = pair
        .server
        .command(bootd_binary())
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(pipe)
        .spawn()
        .unwrap();
    let mut bootd = Process(bootd);
    wait_for_text(&log_file, "serving TFTP on", Duration::from_secs(5));
    wait_for_text(&log_file, "serving BOOTP/DHCP", Duration::from_secs(5));

    reader.signal(libc::SIGSTOP);
    fill_log_pipe(&pair, SERVER, &reader);
    // Both services still answer (each answer is logged, so the second one would
    // wait behind the first line that could not be written).
    for mac in ["02:00:00:00:01:01", "02:00:00:00:01:02"] {
        let probe = pair
            .client
            .command("python3")
            .arg(script("dhcp_probe.py"))
            .args([&pair.client_if, mac, "-", "3"])
            .output()
            .unwrap();
        let probe = String::from_utf8_lossy(&probe.stdout);
        assert!(
            probe.starts_with("OFFER 10.97.0."),
            "no DHCP answer to {mac} with the log reader stopped: {probe}"
        );
    }
    let got = dir.path.join("got");
    let curl = run_bounded(
        pair.client
            .command("curl")
            .args(["-s", "--max-time", "10", "-o"])
            .arg(&got)
            .arg(format!("tftp://{SERVER}/pxelinux.0")),
        Duration::from_secs(15),
    );
    assert!(
        curl.success(),
        "no TFTP answer with the log reader stopped: {curl}"
    );
    assert_eq!(std::fs::read(&got).unwrap(), vec![0x5a; 50_000]);

    // The reader catches up, and is told how much it missed.
    reader.signal(libc::SIGCONT);
    wait_for_text(
        &log_file,
        "log lines dropped: the log reader was too slow",
        Duration::from_secs(10),
    );

    // Stalled again, bootd still stops at once on SIGTERM.
    reader.signal(libc::SIGSTOP);
    fill_log_pipe(&pair, SERVER, &reader);
    bootd.signal(libc::SIGTERM);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = bootd.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bootd did not stop within 2 s of SIGTERM with its log reader stopped"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_dead_notify_target_costs_the_others_no_notification() {
    require_root();
    let pair = Pair::new("10.98.0.1/24", Some("10.98.0.2/24"));
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    // 10.98.0.77 is on the served network, but no one answers ARP for it: what is
    // sent there waits in the kernel until the neighbour is given up.
    let conf = dir.write(
        "bootd.ini",
        "[logger]\nlevel = info\n[bootp]\npool_start = 10.98.0.100\npool_count = 60\nallow_simple_dhcp = on\nlease_file = leases\nnotify = 10.98.0.77:7000;10.98.0.2:7000\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n",
    );
    let listener = Spawned::start(
        pair.client
            .command("python3")
            .arg(script("notify_storm.py"))
            .args(["listen", "10.98.0.2", "7000", "4"]),
    );
    assert!(
        listener.wait_for_stdout("READY", Duration::from_secs(5)),
        "the listener did not start"
    );
    let bootd = Bootd::start(&pair.server, &conf, &["-p"]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    let storm = run_bounded(
        pair.client
            .command("python3")
            .arg(script("notify_storm.py"))
            .args(["leases", &pair.client_if, "48", "30"]),
        Duration::from_secs(300),
    );
    storm.assert_success();
    let acks: usize = storm
        .stdout
        .trim()
        .strip_prefix("ACKS ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{storm}"));
    assert!(
        acks >= 1400,
        "only {acks} of 1440 leases were ACKed: {storm}"
    );
    let heard = listener.finish(Duration::from_secs(30));
    let notifications = heard
        .stdout
        .lines()
        .filter(|l| l.starts_with("LEASE,"))
        .count();
    assert_eq!(
        notifications,
        acks,
        "{acks} leases ACKed, {notifications} notified to the healthy target; bootd's log:\n{}",
        bootd
            .log()
            .lines()
            .filter(|l| l.contains("notif"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The dead target is reported, but not once per notification.
    let log = bootd.log();
    let reports = log
        .lines()
        .filter(|l| l.contains("10.98.0.77:7000"))
        .count();
    assert!(
        reports <= 5,
        "{reports} lines about the dead target:\n{log}"
    );
}
