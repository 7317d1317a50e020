//! A DHCP-only site for the lease-file tests: a configuration with a pool and a
//! lease file, the daemon started on it, numbered client MACs, and the lease file
//! read back as bootd's own loader would see it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Bootd, Pair, TempDir};

/// A BOOTP-only configuration serving `pool_count` addresses from `pool_start`,
/// keeping its bindings in `lease_file`.
pub fn pool_config(dir: &TempDir, pool_start: &str, pool_count: u32, lease_file: &Path) -> PathBuf {
    dir.write(
        "bootd.ini",
        &format!(
            "[bootp]\npool_start = {pool_start}\npool_count = {pool_count}\nallow_simple_dhcp = on\nlease_file = {}\n[bootfile]\ndefault = pxelinux.0\n",
            lease_file.display()
        ),
    )
}

/// bootd with only its DHCP service, on the server side of `pair`, once it serves.
pub fn start_dhcp_only(pair: &Pair, conf: &Path) -> Bootd {
    let bootd = Bootd::start(&pair.server, conf, &["-p"]);
    bootd.wait_for_log("serving BOOTP/DHCP", Duration::from_secs(5));
    bootd
}

/// Client number `i` (below 2^24) as a MAC `02-00-00-HH-MM-LL`, written as bootd
/// writes MACs.
pub fn numbered_mac(i: u32) -> String {
    format!(
        "02-00-00-{:02X}-{:02X}-{:02X}",
        (i >> 16) & 0xFF,
        (i >> 8) & 0xFF,
        i & 0xFF
    )
}

/// What a lease file holds.
pub struct LeaseFileContents {
    /// MAC → address of every binding in force (later lines winning).
    pub bound: BTreeMap<String, String>,
    /// Every line that is no record, and a note when the last line lacks its newline.
    pub unreadable: Vec<String>,
    /// How many lines the file has.
    pub lines: usize,
}

/// Reads the lease file at `path`.
pub fn read_lease_file(path: &Path) -> LeaseFileContents {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let mut bound = BTreeMap::new();
    let mut unreadable = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_record = fields.len() >= 4
            && fields[0].len() == 17
            && fields[1].parse::<Ipv4Addr>().is_ok()
            && fields[2].parse::<u64>().is_ok()
            && ["bound", "released", "declined"].contains(&fields[3]);
        if !is_record {
            unreadable.push(line.to_string());
        } else if fields[3] == "bound" {
            bound.insert(fields[0].to_string(), fields[1].to_string());
        } else {
            bound.remove(fields[0]);
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        unreadable.push("(the last line has no newline)".into());
    }
    LeaseFileContents {
        bound,
        unreadable,
        lines: text.lines().count(),
    }
}
