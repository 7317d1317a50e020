//! The entry points of the coverage-guided fuzzers (`fuzz/`): the parsers that
//! read what a client, a disk or a sysadmin hands bootd, each fed arbitrary bytes.
//!
//! This module is the whole surface the fuzz crate uses, so that the modules behind
//! it can stay private to the crate. Each function returns normally whatever the
//! bytes; it panics (which the fuzzer reports as a crash) only when a parser does,
//! or when what it parsed breaks a promise checked here: what bootd writes, it
//! reads back the same. `fuzz/README.md` says how to run them and add one.

use std::path::Path;

use std::time::{Duration, Instant};

use crate::bootp::leases::{format_binding, parse_lease_file};
use crate::bootp::wire::Message;
use crate::config::TftpRoot;
use crate::filters::Filters;
use crate::http::connection::{Timeouts, Write};
use crate::http::endpoint::{Endpoint, Event, Opened, Settings};
use crate::http::wire::{self, ByteRange, RangeAnswer};
use crate::tftp::wire::Packet;

/// What a fuzz target runs on each input.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the file in `fuzz/fuzz_targets/` and the corpus
/// directory in `fuzz/corpus/`) and its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("dhcp_message", dhcp_message),
    ("tftp_packet", tftp_packet),
    ("lease_file", lease_file),
    ("config_ini", config_ini),
    ("http_request", http_request),
];

/// A datagram on the BOOTP port. A message that parses is emitted (as a reply
/// would be) and must parse back to itself, but for `sname` and `file`, which
/// emitting cuts to leave their NUL.
pub fn dhcp_message(data: &[u8]) {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let emitted = message.emit(usize::from(u16::MAX));
    let again = match Message::parse(&emitted.bytes) {
        Ok(again) => again,
        Err(e) => panic!("an emitted message does not parse: {e}; it came from {message:?}"),
    };
    let mut expected = message;
    expected.sname.truncate(63);
    expected.file.truncate(127);
    if !emitted.omitted.is_empty() {
        // Only options that did not fit were left out; they are not compared.
        for tag in &emitted.omitted {
            expected.options.remove(*tag);
        }
    }
    assert_eq!(again, expected, "emit then parse changed the message");
}

/// A datagram on the TFTP port. A packet that parses is emitted and must parse
/// back to the same packet.
pub fn tftp_packet(data: &[u8]) {
    let Ok(packet) = Packet::parse(data) else {
        return;
    };
    let bytes = packet.to_bytes();
    assert_eq!(
        Packet::parse(&bytes),
        Ok(packet),
        "emit then parse changed the packet"
    );
}

/// The lease file read at start-up. Every record read is written back as bootd
/// would append it, and that line must read back to the same record.
pub fn lease_file(data: &[u8]) {
    let content = parse_lease_file(data);
    let lines = data.split(|b| *b == b'\n').count();
    assert!(content.records.len() + content.rejected.len() <= lines);
    assert!(content.whole_len <= data.len());
    for record in content.records {
        let mut line = format_binding(&record);
        // bootd appends each record with its newline.
        if !line.ends_with('\n') {
            line.push('\n');
        }
        let again = parse_lease_file(line.as_bytes());
        assert!(
            again.rejected.is_empty() && again.torn.is_none(),
            "{line:?} does not read back"
        );
        assert_eq!(
            again.records,
            vec![record],
            "{line:?} reads back differently"
        );
    }
}

/// A configuration file. Nothing is checked but that loading returns: a problem
/// is a report, never a panic. Relative paths are taken from a directory that
/// does not exist, so nothing on this host is read.
///
/// `notify` host names are resolved while loading: run this where name lookups
/// cannot leave the machine (`scripts/fuzz.sh` runs the fuzzers in a network
/// namespace of their own, with no interface up).
pub fn config_ini(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::config::load_str(
        Path::new("fuzz.ini"),
        &text,
        Path::new("/nonexistent/bootd-fuzz"),
    );
}

/// Bytes on a connection to the HTTP service. The head parser must keep its caps and
/// its promises (a complete head within `MAX_HEAD`, a range inside the file); then
/// the same bytes, cut in two where the first byte says, drive the endpoint as a
/// shell would (every file 1000 bytes long, every write taken whole): it must never
/// panic, and never write more than its answers announce.
pub fn http_request(data: &[u8]) {
    match wire::parse_request(data) {
        Ok(Some((request, length))) => {
            assert!(length <= data.len() && length <= wire::MAX_HEAD);
            if let Some(range) = request.range.as_deref().and_then(ByteRange::parse) {
                for size in [0, 1, 1000, u64::MAX] {
                    if let RangeAnswer::Partial { first, last } = range.answer(size) {
                        assert!(first <= last && last < size, "{range:?} of {size}");
                    }
                }
            }
            let _ = wire::target_name(&request.target);
        }
        Ok(None) => assert!(data.len() < wire::MAX_HEAD),
        Err(_) => {}
    }
    let now = Instant::now();
    let mut endpoint: Endpoint<()> = Endpoint::new(Settings {
        root: TftpRoot::Dir("/srv/tftp".into()),
        filters: Filters::default(),
        check_ip: false,
        max_connections: 4,
        timeouts: Timeouts {
            idle: Duration::from_secs(30),
            request: Duration::from_secs(10),
        },
        published: Default::default(),
    });
    let Ok(id) = endpoint.handle_accept(
        now,
        "10.0.0.5:1000".parse().unwrap_or(([0; 4], 0).into()),
        (),
    ) else {
        return;
    };
    let cut = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let mut written = 0u64;
    for (i, piece) in [&data[..cut], &data[cut..]].into_iter().enumerate() {
        let at = now + Duration::from_secs(i as u64);
        endpoint.handle_received(at, id, piece);
        for _ in 0..64 {
            let mut progress = false;
            while let Some(event) = endpoint.poll_event() {
                if let Event::Open { id, .. } = event {
                    endpoint.handle_opened(at, id, Ok(Opened::File { size: 1000 }));
                    progress = true;
                }
            }
            while let Some(ready) = endpoint.next_ready() {
                while let Some((_, write)) = endpoint.poll_write(ready) {
                    let n = match write {
                        Write::Bytes(bytes) => bytes.len() as u64,
                        Write::File { offset, len } => {
                            assert!(offset + len <= 1000, "past the file: {offset}+{len}");
                            len
                        }
                        Write::Shutdown => 0,
                    };
                    written += n;
                    endpoint.handle_written(at, ready, n);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }
    // Every request costs at most a head and the file: the input bounds the output.
    assert!(
        written <= (data.len() as u64 / 16 + 1) * (1000 + 512),
        "{written} bytes written"
    );
    endpoint.handle_timeout(now + Duration::from_secs(3600));
    while endpoint.poll_event().is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input committed to the fuzzers' corpora (the seeds, and whatever once
    /// crashed a parser) still goes through its target: a regression test that
    /// runs with the unit tests, without the fuzzer.
    /// Whether a configuration has a `notify` line (whose host names loading resolves).
    fn sets_notify(data: &[u8]) -> bool {
        String::from_utf8_lossy(data).lines().any(|line| {
            let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            line.get(..6)
                .is_some_and(|key| key.eq_ignore_ascii_case("notify"))
        })
    }

    #[test]
    fn every_target_has_its_fuzz_binary() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        for (name, _) in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "fuzz/Cargo.toml has no [[bin]] {name}"
            );
            let source = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{name}.rs")))
                .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
            assert!(
                source.contains(&format!("bootd::fuzzing::{name}(")),
                "fuzz/fuzz_targets/{name}.rs does not call bootd::fuzzing::{name}"
            );
        }
    }

    #[test]
    fn every_committed_corpus_input_passes_its_target() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let mut inputs = 0;
        for (name, target) in TARGETS {
            let dir = corpus.join(name);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            assert!(!entries.is_empty(), "{} has no seed", dir.display());
            for path in entries {
                let data = std::fs::read(&path).unwrap();
                if name == &"config_ini" && sets_notify(&data) {
                    // Its host names would be looked up: that is for the fuzzer's
                    // network namespace, not for the unit tests.
                    continue;
                }
                target(&data);
                inputs += 1;
            }
        }
        assert!(inputs > 0);
    }
}
