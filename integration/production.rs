//! bootd as a sysadmin runs it: `bootd leases` beside a running daemon, its lines
//! in the journal and its talk with the service manager (READY, STATUS,
//! STOPPING), the drop from root to an unprivileged user once its sockets are
//! open, `--check --quiet` for `ExecStartPre`, and what `--check` reports about a
//! host the configuration would fail on.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SERVER: &str = "10.97.0.1";
const SERVER_CIDR: &str = "10.97.0.1/24";
const CLIENT_CIDR: &str = "10.97.0.2/24";

/// The boot file the TFTP service serves.
const BOOT_FILE: &[u8] = b"a boot file, served after the drop from root\n";

/// A configuration serving 10.97.0.0/24 (BOOTP and TFTP on their own ports) with a
/// lease file and a TFTP root beside it, and `extra` appended.
fn config(dir: &TempDir, extra: &str) -> PathBuf {
    dir.write("root/pxelinux.0", std::str::from_utf8(BOOT_FILE).unwrap());
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = 10.97.0.100\npool_count = 10\nallow_simple_dhcp = on\nlease_file = leases\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n{extra}"
        ),
    )
}

/// One DHCP exchange per MAC from the client namespace: (ACK|NAK|…, MAC, address).
fn clients(pair: &Pair, macs: &[&str]) -> Vec<(String, String, String)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("integration/lease_client.py");
    let mut command = pair.client.command("python3");
    command.arg(&script).arg(&pair.client_if).args(macs);
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

/// Bytes as the raw TFTP client takes names: in hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bootd ARGS…` outside any namespace, within 10 s.
fn run_bootd(args: &[&str], conf: &Path) -> Finished {
    run_bounded(
        Command::new(bootd_binary()).args(args).arg("-c").arg(conf),
        Duration::from_secs(10),
    )
}

/// A `/proc/PID/status` field's words: `Uid` gives real, effective, saved, fs.
fn status_field(pid: i32, name: &str) -> Vec<String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{path} has no {name}:\n{status}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn leases_lists_the_bindings_of_a_running_daemon_as_a_table_and_as_json() {
    require_root();
    let pair = Pair::new(SERVER_CIDR, Some(CLIENT_CIDR));
    let dir = TempDir::new();
    let conf = config(&dir, "");
    let bootd = Bootd::start(&pair.server, &conf, &["-p"]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    let macs = ["02-00-00-00-97-01", "02-00-00-00-97-02"];
    let acked = clients(&pair, &macs);
    assert!(acked.iter().all(|(what, ..)| what == "ACK"), "{acked:?}");

    // The table: a header, then a line per machine with its address and state.
    let table = run_bootd(&["leases"], &conf);
    table.assert_success();
    let mut lines = table.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("MAC") && header.contains("ADDRESS") && header.contains("STATE"),
        "{table}"
    );
    for (_, mac, address) in &acked {
        let line = table
            .stdout
            .lines()
            .find(|l| l.starts_with(mac.as_str()))
            .unwrap_or_else(|| panic!("{mac} is not listed:\n{table}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], address, "{table}");
        assert_eq!(fields[2], "bound", "{table}");
    }

    // JSON, as a script reads it: Python's json module.
    let json = run_bootd(&["leases", "--json"], &conf);
    json.assert_success();
    let reader = "import json, sys\n\
        d = json.load(sys.stdin)\n\
        for b in d['bindings']:\n    print(b['mac'], b['address'], b['state'], b['last_change'] > 0)\n";
    let mut python = Command::new("python3")
        .args(["-c", reader])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    python
        .stdin
        .take()
        .unwrap()
        .write_all(json.stdout.as_bytes())
        .unwrap();
    let parsed = python.wait_with_output().unwrap();
    assert!(parsed.status.success(), "{json}");
    let parsed = String::from_utf8_lossy(&parsed.stdout).into_owned();
    let expected: String = acked
        .iter()
        .map(|(_, mac, address)| format!("{mac} {address} bound True\n"))
        .collect();
    assert_eq!(parsed, expected, "{json}");

    // Reading took nothing from the daemon: it goes on binding.
    let again = clients(&pair, &["02-00-00-00-97-03"]);
    assert_eq!(again[0].0, "ACK", "{again:?}\n{}", bootd.log());
    let table = run_bootd(&["leases"], &conf);
    assert!(table.stdout.contains("02-00-00-00-97-03"), "{table}");
}

/// Whether `line` holds a date written `YYYY-MM-DD`.
fn has_a_date(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(10).any(|w| {
        w.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
    })
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn under_a_service_manager_bootd_says_ready_status_and_stopping_and_logs_priorities() {
    require_root();
    let pair = Pair::new(SERVER_CIDR, Some(CLIENT_CIDR));
    let dir = TempDir::new();
    // `pool_strat`: a warning, to see its priority.
    // A silent TFTP client is given up after 1 + 2 timeouts of 4 s: long enough
    // for a count of transfers (every 5 s) to see it.
    let conf = config(&dir, "timeout = 4\nretries = 2\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    let conf = dir.write(
        "bootd.ini",
        &text.replace("pool_count = 10\n", "pool_count = 10\npool_strat = 1\n"),
    );
    // The service manager's end: a datagram socket bootd may write to once it no
    // longer runs as root.
    let socket_path = dir.path.join("notify.sock");
    let manager = UnixDatagram::bind(&socket_path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // The journal's end: a file, named by $JOURNAL_STREAM as systemd names its stream.
    let journal_path = dir.path.join("journal");
    let journal = std::fs::File::create(&journal_path).unwrap();
    let meta = journal.metadata().unwrap();
    let mut command = pair.server.command(bootd_binary());
    command
        .arg("-c")
        .arg(&conf)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(journal);
    let mut child = EndedOnDrop(command.spawn().unwrap());

    // Everything the manager is told, until `until` appears in one message.
    let mut told: Vec<String> = Vec::new();
    let mut read_until = |until: &str, timeout: Duration| -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut buffer = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = manager.recv(&mut buffer) {
                let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let done = message.contains(until);
                told.push(message);
                if done {
                    break;
                }
            }
        }
        told.clone()
    };
    let ready = read_until("READY=1", Duration::from_secs(10));
    let journal_text = || std::fs::read_to_string(&journal_path).unwrap_or_default();
    assert!(
        ready
            .last()
            .is_some_and(|m| m.contains("READY=1") && m.contains("STATUS=1 network, 0 bindings")),
        "{ready:?}\n{}",
        journal_text()
    );
    // Ready means listening: TFTP answers at once.
    assert!(
        journal_text().contains("serving TFTP"),
        "{}",
        journal_text()
    );

    let acked = clients(&pair, &["02-00-00-00-97-11"]);
    assert_eq!(acked[0].0, "ACK", "{acked:?}");
    let status = read_until("STATUS=1 network, 1 binding", Duration::from_secs(5));
    assert!(
        status
            .last()
            .is_some_and(|m| m.contains("STATUS=1 network, 1 binding, 0 transfers")),
        "{status:?}"
    );

    // A transfer in flight (a client that never acknowledges) is counted within
    // the next count of transfers, and no longer once it is given up.
    let mut holder = pair.client.command("python3");
    holder
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/integration/tftp_client.py"
        ))
        .args(["hold", SERVER, "69", &hex(b"pxelinux.0"), "20"]);
    let held = Spawned::start(&mut holder);
    assert!(
        held.wait_for_stdout("HELD DATA 1 ", Duration::from_secs(5)),
        "{}",
        held.stdout_so_far()
    );
    let status = read_until("1 binding, 1 transfer", Duration::from_secs(8));
    assert!(
        status
            .last()
            .is_some_and(|m| m.contains("STATUS=1 network, 1 binding, 1 transfer")
                && !m.contains("transfers")),
        "{status:?}\n{}",
        journal_text()
    );
    let status = read_until("1 binding, 0 transfers", Duration::from_secs(20));
    assert!(
        status
            .last()
            .is_some_and(|m| m.contains("STATUS=1 network, 1 binding, 0 transfers")),
        "{status:?}\n{}",
        journal_text()
    );
    drop(held.finish(Duration::from_secs(25)));

    // SAFETY: kill on a child PID we own.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let stopping = read_until("STOPPING=1", Duration::from_secs(5));
    assert!(
        stopping.last().is_some_and(|m| m.contains("STOPPING=1")),
        "{stopping:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "bootd does not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0), "{}", journal_text());

    // Every line carries its priority, and no time: the journal has its own.
    let lines = journal_text();
    assert!(lines.lines().count() > 3, "{lines}");
    for line in lines.lines() {
        let priority = line.get(..3).unwrap_or_default();
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&priority),
            "no priority: {line}\n{lines}"
        );
        assert!(!line.contains(" [INFO] ") && !has_a_date(line), "{line}");
    }
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("<4>") && l.contains("pool_strat")),
        "{lines}"
    );
    assert!(
        lines.lines().any(|l| l.starts_with("<6>(bootp) ")),
        "{lines}"
    );
    assert!(lines.lines().any(|l| l.starts_with("<7>")), "{lines}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn started_as_root_bootd_runs_as_nobody_with_no_capability_and_still_serves() {
    require_root();
    let pair = Pair::new(SERVER_CIDR, Some(CLIENT_CIDR));
    let dir = TempDir::new();
    let conf = config(&dir, "");
    let bootd = Bootd::start(&pair.server, &conf, &[]);
    // The default user: `bootd` where it exists, else `nobody`.
    let (user, account) = match Command::new("id").args(["-u", "bootd"]).output() {
        Ok(out) if out.status.success() => ("bootd", "bootd"),
        _ => ("nobody", "nobody"),
    };
    bootd.wait_for_log(
        &format!("running as the user {account} "),
        Duration::from_secs(10),
    );
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, user]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let pid = bootd.pid();
    // Every thread, not only the main one.
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid: i32 = task.unwrap().file_name().to_str().unwrap().parse().unwrap();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
        if status.is_empty() {
            continue;
        }
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(field("Uid"), vec![uid.clone(); 4], "{status}");
        assert_eq!(field("Gid"), vec![gid.clone(); 4], "{status}");
        assert_eq!(field("Groups"), vec![gid.clone()], "{status}");
        for set in ["CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(field(set), vec!["0000000000000000"], "{set}: {status}");
        }
    }
    assert_eq!(status_field(pid, "Uid"), vec![uid.clone(); 4]);

    // DHCP still answers, and the binding still reaches the lease file.
    let acked = clients(&pair, &["02-00-00-00-97-21"]);
    assert_eq!(acked[0].0, "ACK", "{acked:?}\n{}", bootd.log());
    let leases = std::fs::read_to_string(dir.path.join("leases")).unwrap();
    assert!(
        leases.contains(&format!("02-00-00-00-97-21 {} ", acked[0].2)),
        "{leases}"
    );
    // TFTP still answers, from a transfer socket bound after the drop.
    let out = dir.path.join("fetched");
    let fetched = run_bounded(
        pair.client
            .command("tftp")
            .args([SERVER, "-c", "get", "pxelinux.0"])
            .arg(&out),
        Duration::from_secs(10),
    );
    fetched.assert_success();
    assert_eq!(std::fs::read(&out).unwrap(), BOOT_FILE, "{}", bootd.log());
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn bootd_stays_root_only_when_told_and_refuses_a_user_this_host_lacks() {
    require_root();
    let pair = Pair::new(SERVER_CIDR, None);
    let dir = TempDir::new();
    let conf = config(&dir, "");
    let mut bootd = Bootd::start(&pair.server, &conf, &["-p", "--user", "no-such-user-97"]);
    let (status, _) = bootd
        .wait(Duration::from_secs(5))
        .expect("refuses to start");
    assert_eq!(status.code(), Some(1), "{}", bootd.log());
    assert!(
        bootd
            .log()
            .contains("[bootd] user = no-such-user-97: no such user on this host"),
        "{}",
        bootd.log()
    );

    let conf = config(&dir, "[bootd]\nuser = root\n");
    let bootd = Bootd::start(&pair.server, &conf, &["-p"]);
    bootd.wait_for_log("running as root for the whole run", Duration::from_secs(10));
    assert_eq!(status_field(bootd.pid(), "Uid"), vec!["0"; 4]);
}

/// `--check` as a person runs it before a start: what the file and the host would
/// fail on, each named.
#[test]
fn check_reports_a_missing_boot_file_and_places_bootd_could_not_write() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    let conf = dir.write(
        "check.ini",
        "[logger]\ntype = file\nfile = no-such-dir/bootd.log\n[bootp]\npool_start = 127.0.0.100\nlease_file = leases\n[bootfile]\ndefault = missing.0\n[tftp]\nroot = root\n",
    );
    let done = run_bootd(&["--check"], &conf);
    assert_eq!(done.status.and_then(|s| s.code()), Some(1), "{done}");
    assert!(
        done.stderr.contains(&format!(
            "[bootfile] default = missing.0: {}/root/missing.0 is no file",
            dir.path.display()
        )),
        "{done}"
    );
    assert!(
        done.stderr.contains("[logger] file = ")
            && done.stderr.contains("bootd cannot open it for appending"),
        "{done}"
    );
}

#[test]
fn check_quiet_prints_the_problems_only() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    dir.write("root/pxelinux.0", "x");
    let text = "[bootp]\npool_start = 127.0.0.100\nlease_file = leases\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = root\n";
    let conf = dir.write("quiet.ini", text);
    let loud = run_bootd(&["--check"], &conf);
    loud.assert_success();
    assert!(!loud.stdout.is_empty(), "{loud}");
    let quiet = run_bootd(&["--check", "--quiet"], &conf);
    quiet.assert_success();
    assert_eq!(quiet.stdout, "", "{quiet}");
    assert_eq!(quiet.stderr, "", "{quiet}");
    // A warning still shows.
    let conf = dir.write(
        "quiet.ini",
        &text.replace("lease_file", "pool_strat = 1\nlease_file"),
    );
    let quiet = run_bootd(&["--check", "-q"], &conf);
    quiet.assert_success();
    assert_eq!(quiet.stdout, "", "{quiet}");
    assert!(quiet.stderr.contains("pool_strat"), "{quiet}");
}

#[test]
fn version_lists_the_compiled_features() {
    let out = Command::new(bootd_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let features = text
        .lines()
        .find_map(|l| l.strip_prefix("features: "))
        .unwrap_or_else(|| panic!("{text}"));
    for feature in ["https", "systemd"] {
        assert!(
            features.contains(&format!("+{feature}")) || features.contains(&format!("-{feature}")),
            "{text}"
        );
    }
    // The systemd unit is Type=notify: the default build speaks to it; and it
    // fetches https:// roots and authorisation locations.
    assert!(features.contains("+systemd"), "{text}");
    assert!(features.contains("+https"), "{text}");
}

/// A daemon the test started itself: killed and reaped however the test ends,
/// so a failed assertion leaves no bootd behind.
struct EndedOnDrop(std::process::Child);

impl Drop for EndedOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
