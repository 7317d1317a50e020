//! The lease file on a real (temporary) directory: what it may name, the lock,
//! the copy of unreadable lines, appends and rewrites.

use std::net::Ipv4Addr;

use super::*;
use crate::bootp::leases::RecordState;
use crate::types::MacAddr;

/// 2024-06-10 06:13:20 UTC.
const EPOCH: u64 = 1_718_000_000;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("bootd-lease-file-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn record(last: u8) -> LeaseRecord {
    LeaseRecord {
        mac: MacAddr([0x52, 0x54, 0, 0, 0, last]),
        ip: Ipv4Addr::new(192, 168, 25, 100 + last),
        epoch: u64::from(last),
        state: RecordState::Bound,
        pxe: false,
        uuid: None,
    }
}

/// The records and unreadable lines in the file at `path` now.
fn read(path: &Path) -> (Vec<LeaseRecord>, usize) {
    let bytes = fs::read(path).unwrap();
    let content = leases::parse_lease_file(&bytes);
    let bad = content.rejected.len() + usize::from(content.torn.is_some());
    (content.records, bad)
}

fn open(path: &Path) -> Opened {
    match LeaseJournal::open(path, EPOCH) {
        Ok(opened) => opened,
        Err(e) => panic!("{e}"),
    }
}

fn notes_text(opened: &Opened) -> String {
    let lines: Vec<String> = opened
        .notes
        .iter()
        .map(|(level, line)| format!("{level}: {line}"))
        .collect();
    lines.join("\n")
}

#[test]
fn appends_survive_reopen_and_a_rewrite() {
    let dir = Scratch::new("reopen");
    let path = dir.join("state/leases");
    // The directory is created, and the file.
    let mut opened = open(&path);
    assert!(opened.records.is_empty() && opened.notes.is_empty());
    opened.journal.append(&record(1)).unwrap();
    drop(opened);
    // A crash left a half-written line after it.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"52-54-00");
    fs::write(&path, &bytes).unwrap();
    let mut opened = open(&path);
    assert_eq!(opened.records, vec![record(1)]);
    opened.journal.append(&record(2)).unwrap();
    drop(opened);
    let mut opened = open(&path);
    assert_eq!(
        opened.records,
        vec![record(1), record(2)],
        "the new record is on its own line"
    );
    assert!(opened.notes.is_empty(), "{}", notes_text(&opened));
    opened.journal.compact(&opened.records).unwrap();
    opened.journal.append(&record(3)).unwrap();
    assert_eq!(read(&path), (vec![record(1), record(2), record(3)], 0));
    assert!(!dir.join("state/leases.tmp").exists());
}

#[test]
fn unreadable_lines_are_kept_beside_the_file_and_never_overwritten() {
    let dir = Scratch::new("rejected");
    let path = dir.join("leases");
    fs::write(
        &path,
        "52-54-00-00-00-01 192.168.25.101 1 bound\n\
         52-54-00-00-00-02 192.168.25.999 2 bound\n\
         52-54-00-00-00-03 192.168.25.103 3 lost\n",
    )
    .unwrap();
    let mut opened = open(&path);
    assert_eq!(opened.records, vec![record(1)]);
    let rejected = dir.join("leases.rejected");
    let notes = notes_text(&opened);
    assert!(
        notes.contains(&format!(
            "WARN: {}:2: `192.168.25.999` is not an IPv4 address; line skipped, kept in {}",
            path.display(),
            rejected.display()
        )),
        "{notes}"
    );
    assert!(notes.contains(":3: `lost` is not bound"), "{notes}");
    let kept = fs::read_to_string(&rejected).unwrap();
    assert_eq!(
        kept,
        format!(
            "# 2024-06-10 06:13:20 UTC: lines of {} that bootd could not read at start-up, and left out of it\n\
             # line 2: `192.168.25.999` is not an IPv4 address\n\
             52-54-00-00-00-02 192.168.25.999 2 bound\n\
             # line 3: `lost` is not bound, released or declined\n\
             52-54-00-00-00-03 192.168.25.103 3 lost\n",
            path.display()
        )
    );
    // The start-up rewrite leaves them out of the file: they are kept elsewhere.
    opened.journal.compact(&opened.records).unwrap();
    assert_eq!(read(&path), (vec![record(1)], 0));
    drop(opened);
    // Another bad line, another start: added to the copy, which keeps the first.
    fs::write(&path, "junk\n").unwrap();
    let opened = open(&path);
    assert!(opened.records.is_empty());
    let again = fs::read_to_string(&rejected).unwrap();
    assert!(again.starts_with(&kept), "{again}");
    assert!(again.ends_with("# line 1: expected `MAC ADDRESS TIME STATE`, found 1 field(s) (truncated line?)\njunk\n"), "{again}");
}

#[test]
fn a_torn_last_line_is_skipped_kept_and_cut_off_even_when_it_reads_as_a_record() {
    let dir = Scratch::new("torn");
    let path = dir.join("leases");
    // `…101 1 bound` cut to `…10`: a record of the wrong address, were it read.
    fs::write(
        &path,
        "52-54-00-00-00-02 192.168.25.102 2 bound\n52-54-00-00-00-01 192.168.25.10",
    )
    .unwrap();
    let mut opened = open(&path);
    assert_eq!(opened.records, vec![record(2)]);
    let notes = notes_text(&opened);
    assert!(
        notes.contains(&format!(
            "{}:2: the last line has no newline: a write cut short",
            path.display()
        )),
        "{notes}"
    );
    assert!(notes.contains("line skipped, kept in"), "{notes}");
    assert!(
        fs::read_to_string(dir.join("leases.rejected"))
            .unwrap()
            .ends_with("\n52-54-00-00-00-01 192.168.25.10\n")
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "52-54-00-00-00-02 192.168.25.102 2 bound\n"
    );
    opened.journal.append(&record(3)).unwrap();
    assert_eq!(read(&path), (vec![record(2), record(3)], 0));
}

#[test]
fn lines_that_cannot_be_kept_elsewhere_stay_and_the_file_is_not_rewritten() {
    let dir = Scratch::new("unkept");
    let path = dir.join("leases");
    let text = "52-54-00-00-00-01 192.168.25.101 1 bound\nbad line\n52-54-00";
    fs::write(&path, text).unwrap();
    // Something that is no file stands where the copy would go.
    fs::create_dir(dir.join("leases.rejected")).unwrap();
    let mut opened = open(&path);
    let notes = notes_text(&opened);
    assert!(notes.contains("line skipped, left in the file"), "{notes}");
    assert!(
        notes.contains("ERROR: ") && notes.contains("which is not rewritten"),
        "{notes}"
    );
    let e = opened.journal.compact(&opened.records).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("not rewritten: 2 unreadable lines"),
        "{e}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // Appending goes on, on a line of its own after the torn one.
    opened.journal.append(&record(2)).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{text}\n52-54-00-00-00-02 192.168.25.102 2 bound\n")
    );
    assert_eq!(read(&path), (vec![record(1), record(2)], 2));
}

#[test]
fn a_rewrite_that_fails_leaves_the_file_in_use() {
    let dir = Scratch::new("rewrite");
    let path = dir.join("leases");
    let mut opened = open(&path);
    opened.journal.append(&record(1)).unwrap();
    // A copy left by a rewrite that a crash interrupted is replaced.
    fs::write(dir.join("leases.tmp"), "stale").unwrap();
    opened.journal.compact(&[record(1)]).unwrap();
    assert!(!dir.join("leases.tmp").exists());
    // Something that cannot be removed stands where the copy goes.
    fs::create_dir(dir.join("leases.tmp")).unwrap();
    fs::write(dir.join("leases.tmp/x"), "").unwrap();
    let e = opened.journal.compact(&[record(1)]).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("leases.tmp is left behind (cannot remove it")
            && text.contains(&format!(
                "bindings are still appended to {}",
                path.display()
            )),
        "{text}"
    );
    opened.journal.append(&record(2)).unwrap();
    assert_eq!(read(&path), (vec![record(1), record(2)], 0));
}

#[test]
fn a_rewrite_keeps_the_files_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("mode");
    let path = dir.join("leases");
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let mut opened = open(&path);
    opened.journal.compact(&[record(1)]).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}
