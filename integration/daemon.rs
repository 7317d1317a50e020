//! The daemon as a whole: start, stop, configuration and network errors, service failure.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn config(dir: &TempDir, pool_start: &str, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.path.join("root")).unwrap();
    dir.write(
        "bootd.ini",
        &format!(
            "[logger]\nlevel = debug\n[bootp]\npool_start = {pool_start}\nport = 6767\nlease_file = leases\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nport = 6969\nroot = root\n{extra}"
        ),
    )
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn starts_and_stops_on_sigterm_within_a_second() {
    require_root();
    let pair = Pair::new("10.91.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "10.91.0.100", "");
    let mut bootd = Bootd::start(&pair.server, &conf, &[]);
    bootd.wait_for_log("serving TFTP on 10.91.0.1:6969", Duration::from_secs(5));
    bootd.wait_for_log(
        &format!(
            "serving BOOTP/DHCP on {} (10.91.0.0/24) as 10.91.0.1",
            pair.server_if
        ),
        Duration::from_secs(5),
    );
    let (status, took) = bootd.stop();
    assert_eq!(status.code(), Some(0), "log:\n{}", bootd.log());
    assert!(took < Duration::from_secs(1), "stopping took {took:?}");
    assert!(bootd.log().contains("SIGTERM received: stopping"));
    assert!(bootd.log().contains("bootd stopped"));
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn sigint_stops_too_and_sighup_reloads_the_configuration() {
    require_root();
    let pair = Pair::new("10.91.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "10.91.0.100", "");
    let mut bootd = Bootd::start(&pair.server, &conf, &["-p"]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    bootd.signal(libc::SIGHUP);
    bootd.wait_for_log("SIGHUP received", Duration::from_secs(2));
    bootd.wait_for_log("is in force for new requests", Duration::from_secs(2));
    bootd.signal(libc::SIGINT);
    let (status, took) = bootd.wait(Duration::from_secs(2)).expect("stops on SIGINT");
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1));
    assert!(!bootd.log().contains("serving TFTP"), "-p runs no TFTP");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn pool_start_on_no_interface_fails_naming_the_interfaces_found() {
    require_root();
    let pair = Pair::new("10.91.0.1/24", None);
    let dir = TempDir::new();
    let conf = config(&dir, "192.168.77.100", "");
    let mut bootd = Bootd::start(&pair.server, &conf, &[]);
    let (status, _) = bootd.wait(Duration::from_secs(5)).expect("exits at once");
    assert_eq!(status.code(), Some(1));
    let log = bootd.log();
    assert!(
        log.contains("Unable to detect network configuration"),
        "{log}"
    );
    assert!(log.contains("192.168.77.100"), "{log}");
    assert!(
        log.contains(&format!(
            "{} 10.91.0.1/24 (network 10.91.0.0/24)",
            pair.server_if
        )),
        "{log}"
    );
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn a_failing_service_thread_stops_the_daemon_with_status_1() {
    require_root();
    let pair = Pair::new("10.91.0.1/24", None);
    // Something else holds the TFTP port on the served address.
    let holder = pair
        .server
        .command("python3")
        .args([
            "-c",
            "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('10.91.0.1',6969)); print('bound',flush=True); time.sleep(30)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = KillOnDrop(holder);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "bound");
    let dir = TempDir::new();
    let conf = config(&dir, "10.91.0.100", "");
    let mut bootd = Bootd::start(&pair.server, &conf, &[]);
    let (status, took) = bootd.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(1), "log:\n{}", bootd.log());
    assert!(took < Duration::from_secs(2));
    let log = bootd.log();
    assert!(log.contains("the tftp service failed: cannot listen for TFTP on 10.91.0.1:6969: the port is already in use"), "{log}");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn check_on_a_broken_config_exits_1_and_names_the_line() {
    let dir = TempDir::new();
    let conf = dir.write(
        "bad.ini",
        "[bootp]\npool_start = 10.0.0.1\n\nport = sixty-seven\n",
    );
    let out = Command::new(bootd_binary())
        .args(["--check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:4: [bootp] port = sixty-seven: not a UDP port",
            conf.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_on_a_good_config_prints_the_effective_settings() {
    let dir = TempDir::new();
    let conf = config(&dir, "127.0.0.100", "");
    let out = Command::new(bootd_binary())
        .args(["--check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("pool_start"))
        .unwrap();
    assert!(line.ends_with(&format!("; {}:4", conf.display())), "{line}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("pool_count"))
        .unwrap();
    assert!(line.ends_with("; default"), "{line}");
    assert!(stdout.contains("; network: lo 127.0.0.1/8"), "{stdout}");
    assert!(stdout.contains("; configuration OK"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["-p", "-t"][..], &["--bogus"], &["-c"]] {
        let out = Command::new(bootd_binary()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: bootd"));
    }
}

#[test]
fn missing_config_file_exits_1() {
    let out = Command::new(bootd_binary())
        .args(["-c", "/nonexistent/bootd.ini"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("/nonexistent/bootd.ini: cannot read the configuration file")
    );
}

#[test]
#[ignore = "needs systemd-analyze (Debian package systemd, installed by scripts/deps.sh): run sudo scripts/test.sh"]
fn the_systemd_unit_verifies() {
    let probe = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .expect("systemd-analyze is not installed: run sudo scripts/deps.sh");
    assert!(probe.status.success());
    let dir = TempDir::new();
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/bootd.service"))
        .unwrap()
        .replace("/usr/sbin/bootd", bootd_binary());
    let path = dir.write("bootd.service", &unit);
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.trim().is_empty(), "{text}");
}

/// `bootd --check -c conf`: (exit status, stdout, stderr).
fn check(conf: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(bootd_binary())
        .args(["--check", "-c"])
        .arg(conf)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_reports_every_problem_of_the_file_in_line_order() {
    let dir = TempDir::new();
    let conf = dir.write(
        "bad.ini",
        "[bootp]\npool_start = 10.0.0.1\nport = sixty-seven\npool_strat = 10.0.0.2\n[tftp]\nwindowsize = 0\n",
    );
    let (status, _, stderr) = check(&conf);
    assert_eq!(status, Some(1), "{stderr}");
    let file = conf.display();
    let expected = [
        format!("error: {file}:3: [bootp] port = sixty-seven: not a UDP port"),
        format!(
            "warning: {file}:4: unknown option [bootp] pool_strat is ignored (did you mean `pool_start`?)"
        ),
        format!("error: {file}:6: [tftp] windowsize = 0: not a whole number from 1 to 64"),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    let positions: Vec<Option<usize>> = expected
        .iter()
        .map(|want| lines.iter().position(|l| l.starts_with(want.as_str())))
        .collect();
    assert!(
        positions.iter().all(Option::is_some),
        "{positions:?}\n{stderr}"
    );
    assert!(positions.is_sorted(), "out of line order:\n{stderr}");
    assert!(stderr.contains("2 errors"), "{stderr}");
}

#[test]
fn check_reports_every_problem_of_the_host() {
    let dir = TempDir::new();
    // 203.0.113.0/24 is reserved for documentation: no interface should hold it.
    let conf = dir.write(
        "host.ini",
        "[bootp]\npool_start = 203.0.113.100\n[bootfile]\ndefault = pxelinux.0\n[tftp]\nroot = missing\n",
    );
    let (status, stdout, stderr) = check(&conf);
    assert_eq!(status, Some(1), "{stdout}\n{stderr}");
    let detect = stderr
        .lines()
        .position(|l| l.starts_with("error: Unable to detect network configuration"));
    let root = stderr.lines().position(|l| {
        l.starts_with(&format!("error: {}: [tftp] root = ", conf.display()))
            && l.contains("no such directory")
    });
    assert!(detect.is_some() && root.is_some(), "{stderr}");
    assert!(stderr.contains("2 errors on this host"), "{stderr}");
    // The settings are still shown, but the configuration is not declared fine.
    assert!(stdout.contains("pool_start = 203.0.113.100"), "{stdout}");
    assert!(!stdout.contains("configuration OK"), "{stdout}");
}
