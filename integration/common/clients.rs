//! DHCP clients as the tests drive them: busybox udhcpc with a hook script that
//! records what the client was told.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{Netns, Pair, TempDir, sh};

/// A hook script that dumps the client's environment when it is bound.
pub fn hook(dir: &TempDir, name: &str, bound_when: &str) -> (PathBuf, PathBuf) {
    let out = dir.path.join(format!("{name}.env"));
    let script = dir.write(
        &format!("{name}.sh"),
        &format!(
            "#!/bin/sh\ncase \"{bound_when}\" in *\"$1$reason\"*) env | sort > '{}' ;; esac\nexit 0\n",
            out.display()
        ),
    );
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    (script, out)
}

pub fn read_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// busybox udhcpc: DISCOVER/REQUEST once (3 tries, 1 s apart), hook on `bound`.
pub fn udhcpc(
    pair: &Pair,
    dir: &TempDir,
    name: &str,
    extra: &[&str],
) -> Option<HashMap<String, String>> {
    udhcpc_on(&pair.client, &pair.client_if, dir, name, extra)
}

pub fn udhcpc_on(
    ns: &Netns,
    interface: &str,
    dir: &TempDir,
    name: &str,
    extra: &[&str],
) -> Option<HashMap<String, String>> {
    let (script, out) = hook(dir, name, "bound");
    let status = ns
        .command("busybox")
        .args([
            "udhcpc", "-i", interface, "-n", "-q", "-f", "-t", "3", "-T", "1", "-s",
        ])
        .arg(&script)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    status.success().then(|| read_env(&out))
}

pub fn set_mac(pair: &Pair, mac: &str) {
    sh(&[
        "ip",
        "-n",
        &pair.client.name,
        "link",
        "set",
        "dev",
        &pair.client_if,
        "address",
        mac,
    ]);
}
