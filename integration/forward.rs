//! scripts/forward.sh inside a network namespace: `on` adds NAT and forwarding,
//! `off` removes exactly that, and it refuses to run without root.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/forward.sh")
}

fn run_in(ns: &Netns, state: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = ns
        .command("bash")
        .arg(script())
        .args(args)
        .env("BOOTD_FORWARD_STATE", state)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn read_in(ns: &Netns, args: &[&str]) -> String {
    let out = ns.command(args[0]).args(&args[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn on_then_off_leaves_the_router_as_it_was() {
    require_root();
    if Command::new("nft").arg("--version").output().is_err() {
        panic!("nft is missing: install nftables (scripts/deps.sh does)");
    }
    // A router namespace with a LAN side and a WAN side.
    let lan = Pair::new("10.92.0.1/24", None);
    let wan_if = unique("x");
    let wan_peer = unique("y");
    sh(&[
        "ip",
        "link",
        "add",
        &wan_if,
        "netns",
        &lan.server.name,
        "type",
        "veth",
        "peer",
        "name",
        &wan_peer,
        "netns",
        &lan.client.name,
    ]);
    sh(&["ip", "-n", &lan.server.name, "link", "set", &wan_if, "up"]);
    let dir = TempDir::new();
    let state = dir.path.join("state");
    let router = &lan.server;
    let before_rules = read_in(router, &["nft", "list", "ruleset"]);
    assert_eq!(
        read_in(router, &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0"
    );

    let (code, out) = run_in(router, &state, &["-i", &wan_if, "-j", &lan.server_if, "on"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        read_in(router, &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    let rules = read_in(router, &["nft", "list", "table", "ip", "bootd_forward"]);
    assert!(
        rules.contains(&format!("oifname \"{wan_if}\" masquerade")),
        "{rules}"
    );
    assert!(
        rules.contains(&format!(
            "iifname \"{}\" oifname \"{wan_if}\" accept",
            lan.server_if
        )),
        "{rules}"
    );

    // A second `on` refuses instead of stacking rules.
    let (code, out) = run_in(router, &state, &["-i", &wan_if, "-j", &lan.server_if, "on"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already on"), "{out}");

    let (code, out) = run_in(router, &state, &["off"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        read_in(router, &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0"
    );
    assert_eq!(read_in(router, &["nft", "list", "ruleset"]), before_rules);
    assert!(!state.exists());

    let (code, out) = run_in(router, &state, &["off"]);
    assert_eq!(code, 1);
    assert!(out.contains("nothing to undo"), "{out}");
}

#[test]
#[ignore = "needs root and network namespaces: run sudo scripts/test.sh"]
fn refuses_bad_arguments() {
    require_root();
    let ns = Netns::new("f");
    let dir = TempDir::new();
    let state = dir.path.join("state");
    let (code, out) = run_in(&ns, &state, &["-j", "nosuchif0", "-i", "lo", "on"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no network interface named 'nosuchif0'"),
        "{out}"
    );
    let (code, out) = run_in(&ns, &state, &["sideways"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run_in(&ns, &state, &["on"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no default route"), "{out}");
}

#[test]
fn refuses_to_run_without_root() {
    // As root, the script runs as nobody; as anyone else, it runs as that user: the
    // refusal is checked either way.
    let mut command = if is_root() {
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"]);
        setpriv
    } else {
        Command::new("bash")
    };
    let out = command
        .arg(script())
        .arg("off")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} (setpriv is in util-linux): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("must run as root"), "{stderr}");
}
