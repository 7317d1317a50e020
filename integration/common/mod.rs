//! Test harness: network namespaces joined by veth pairs (10.x addresses inside
//! them only), and the real `bootd` binary running in one of them.
//!
//! Everything created here is removed on drop, also when a test fails.

#![allow(dead_code)]

pub mod browser;
pub mod clients;
pub mod lease_site;
pub mod site;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The first line of every test that needs root (network namespaces, veth pairs,
/// ports below 1024, taps for QEMU). Such a test is also marked `#[ignore]` with
/// that reason, so that a plain `cargo test` as a normal user lists it as ignored;
/// run anyway without root (`--include-ignored`), it fails here saying how to run
/// it, rather than passing having tested nothing.
pub fn require_root() {
    assert!(
        is_root(),
        "needs root and network namespaces: run sudo scripts/test.sh"
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A short name unique to this process and call, fit for an interface (≤ 15 chars).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("bd{}{}{}", std::process::id() % 100_000, tag, n)
}

pub fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(status.success(), "{args:?} failed: {status}");
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// A command that runs inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    pub fn run(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A server namespace and a client namespace joined by one veth pair.
pub struct Pair {
    pub server: Netns,
    pub client: Netns,
    pub server_if: String,
    pub client_if: String,
}

impl Pair {
    /// `server_cidr` such as "10.91.0.1/24" goes on the server end; the client end
    /// has no address (like a PXE ROM) unless `client_cidr` is given.
    pub fn new(server_cidr: &str, client_cidr: Option<&str>) -> Pair {
        let server = Netns::new("s");
        let leg = Leg::new(&server, server_cidr);
        if let Some(cidr) = client_cidr {
            sh(&[
                "ip",
                "-n",
                &leg.client.name,
                "addr",
                "add",
                cidr,
                "brd",
                "+",
                "dev",
                &leg.client_if,
            ]);
        }
        Pair {
            server,
            client: leg.client,
            server_if: leg.server_if,
            client_if: leg.client_if,
        }
    }
}

/// Another client namespace joined to an existing server namespace by its own veth
/// pair (a second served interface).
pub struct Leg {
    pub client: Netns,
    pub server_if: String,
    pub client_if: String,
}

impl Leg {
    pub fn new(server: &Netns, server_cidr: &str) -> Leg {
        let client = Netns::new("c");
        let server_if = unique("v");
        let client_if = unique("w");
        sh(&[
            "ip",
            "link",
            "add",
            &server_if,
            "netns",
            &server.name,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
            "netns",
            &client.name,
        ]);
        sh(&[
            "ip",
            "-n",
            &server.name,
            "addr",
            "add",
            server_cidr,
            "brd",
            "+",
            "dev",
            &server_if,
        ]);
        sh(&["ip", "-n", &server.name, "link", "set", &server_if, "up"]);
        sh(&["ip", "-n", &client.name, "link", "set", &client_if, "up"]);
        Leg {
            client,
            server_if,
            client_if,
        }
    }
}

/// A scratch directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    /// Writable by every user (without the sticky bit): bootd, started as root by a
    /// test, runs as an unprivileged user once its sockets are open, and must still
    /// write its lease file there (a compaction renames a new file over the old).
    pub fn new() -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(unique("t"));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        TempDir { path }
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn bootd_binary() -> &'static str {
    env!("CARGO_BIN_EXE_bootd")
}

/// The real daemon, its stderr collected line by line.
pub struct Bootd {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Bootd {
    /// Starts `bootd -c config args…` inside `ns`.
    pub fn start(ns: &Netns, config: &Path, args: &[&str]) -> Bootd {
        let mut command = ns.command(bootd_binary());
        command.arg("-c").arg(config).args(args);
        Bootd::spawn(command)
    }

    /// Starts `command`, which must end by exec'ing bootd (as `ip netns exec`
    /// does), so that its PID is bootd's.
    pub fn spawn(mut command: Command) -> Bootd {
        // bootd fetches http:// roots through the proxy the environment names: the
        // test servers in the namespaces are reached directly.
        for variable in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"] {
            command.env_remove(variable);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("cannot start bootd");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Bootd {
            child: Some(child),
            lines,
        }
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle`; panics with the log after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "bootd never logged `{needle}` within {timeout:?}; log:\n{}",
            self.log()
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Sends `signal` to the daemon (the `ip netns exec` wrapper execs it, so the
    /// child's PID is bootd's).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for exit up to `timeout`; returns the status and how long it took.
    pub fn wait(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        let child = self.child.as_mut()?;
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// SIGTERM, then the exit status and the time it took to stop.
    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        self.signal(libc::SIGTERM);
        match self.wait(Duration::from_secs(5)) {
            Some(result) => result,
            None => panic!(
                "bootd did not stop within 5 s of SIGTERM; log:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Bootd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed (and reaped) on drop, its stdout and stderr collected by
/// reader threads so that waiting on it can be bounded in time.
pub struct Spawned {
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    pub what: String,
}

/// How a [`Spawned`] process ended: `status` is `None` when it was killed for
/// running past its time limit.
#[derive(Debug)]
pub struct Finished {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    pub what: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Panics with everything known unless the process exited 0 in time.
    pub fn assert_success(&self) {
        assert!(self.success(), "{self}");
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` {} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what,
            match self.status {
                Some(s) => format!("exited with {s}"),
                None => "was killed: it ran past its time limit".to_string(),
            },
            self.took,
            self.stdout,
            self.stderr
        )
    }
}

fn collect_into(
    source: Option<impl std::io::Read + Send + 'static>,
    sink: &Arc<Mutex<Vec<u8>>>,
) -> Option<std::thread::JoinHandle<()>> {
    let mut source = source?;
    let sink = Arc::clone(sink);
    Some(std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = source.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    }))
}

impl Spawned {
    /// Starts `command` with stdin closed and stdout/stderr collected.
    pub fn start(command: &mut Command) -> Spawned {
        let what = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            collect_into(child.stdout.take(), &stdout),
            collect_into(child.stderr.take(), &stderr),
        ]
        .into_iter()
        .flatten()
        .collect();
        Spawned {
            child: Some(child),
            stdout,
            stderr,
            readers,
            what,
        }
    }

    /// What the process printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// What the process printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stdout holds a line containing `needle`; false after `timeout`.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for(needle, timeout, Spawned::stdout_so_far)
    }

    /// Waits until stderr holds a line containing `needle`; false after `timeout`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for(needle, timeout, Spawned::stderr_so_far)
    }

    fn wait_for(&self, needle: &str, timeout: Duration, output: fn(&Spawned) -> String) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if output(self).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the exit up to `timeout`, killing the process past it.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let started = Instant::now();
        let mut child = self.child.take().expect("not yet waited for");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned(),
            took: started.elapsed(),
            what: self.what.clone(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` to completion, killed after `timeout`.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Finished {
    Spawned::start(command).finish(timeout)
}

/// `len` bytes of a fixed-seed pseudo-random pattern (a 64-bit LCG): reproducible,
/// incompressible enough, and cheap to make even in a debug build.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.extend_from_slice(&(state >> 11).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The sha256 of a file, by `sha256sum` (no hashing crate in the dev-dependencies).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sha256sum: {e}"));
    assert!(out.status.success(), "sha256sum {} failed", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Body bytes bootd's HTTP service sent of the files of the OS `os` (as the web
/// seed of its torrent), summed from its log lines (`… 206 …, N bytes in …`).
pub fn web_seed_bytes(log: &str, os: &str) -> u64 {
    let path = format!(" /oss/{os}/");
    log.lines()
        .filter(|l| l.contains(&path))
        .filter_map(|l| {
            let before = l.rsplit_once(" bytes in ")?.0;
            before.rsplit(", ").next()?.trim().parse::<u64>().ok()
        })
        .sum()
}
