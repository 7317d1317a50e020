//! The lease file on a real (temporary) directory: what it may name, the lock,
//! the copy of unreadable lines, appends and rewrites.

use std::net::Ipv4Addr;
use std::os::unix::fs::{FileTypeExt, symlink};

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
fn dev_null_keeps_nothing_and_stays_a_device() {
    let dev_null = Path::new("/dev/null");
    assert_eq!(resolve(dev_null).unwrap(), Target::Discard);
    let warning = check(dev_null).unwrap().unwrap();
    assert!(
        warning.starts_with("[bootp] lease_file = /dev/null: bindings are not kept"),
        "{warning}"
    );
    let mut opened = open(dev_null);
    assert!(opened.records.is_empty());
    opened.journal.append(&record(1)).unwrap();
    opened.journal.compact(&[record(1)]).unwrap();
    assert!(
        fs::symlink_metadata(dev_null)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(!Path::new("/dev/null.tmp").exists());
    // Through a link, the same.
    let dir = Scratch::new("null-link");
    let link = dir.join("leases");
    symlink(dev_null, &link).unwrap();
    assert_eq!(resolve(&link).unwrap(), Target::Discard);
    let mut opened = open(&link);
    opened.journal.compact(&[record(1)]).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_symbolic_link_is_written_through_and_survives_a_rewrite() {
    let dir = Scratch::new("link");
    fs::create_dir(dir.join("real")).unwrap();
    fs::create_dir(dir.join("etc")).unwrap();
    let target = dir.join("real/leases");
    fs::write(&target, "52-54-00-00-00-01 192.168.25.101 1 bound\n").unwrap();
    let link = dir.join("etc/leases");
    symlink("../real/leases", &link).unwrap();
    assert_eq!(
        resolve(&link).unwrap(),
        Target::File(dir.join("etc/../real/leases"))
    );
    assert_eq!(check(&link).unwrap(), None);
    let mut opened = open(&link);
    assert_eq!(opened.records, vec![record(1)]);
    let notes = notes_text(&opened);
    assert!(
        notes.contains("is a symbolic link: bindings are kept in"),
        "{notes}"
    );
    opened.journal.compact(&opened.records).unwrap();
    opened.journal.append(&record(2)).unwrap();
    // The link is still the link, and its target holds every record.
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("../real/leases"));
    assert_eq!(read(&link), (vec![record(1), record(2)], 0));
    assert!(dir.join("real/leases.lock").exists());
    assert!(!dir.join("etc/leases.lock").exists());
    // A dangling link: its target is created.
    let dangling = dir.join("etc/new");
    symlink("../real/new", &dangling).unwrap();
    let mut opened = open(&dangling);
    opened.journal.append(&record(3)).unwrap();
    assert_eq!(read(&dir.join("real/new")), (vec![record(3)], 0));
    assert!(
        fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_directory_a_fifo_or_a_loop_of_links_is_refused() {
    let dir = Scratch::new("refused");
    let directory = dir.join("state");
    fs::create_dir(&directory).unwrap();
    for result in [
        check(&directory).map(|_| ()),
        LeaseJournal::open(&directory, EPOCH).map(|_| ()),
    ] {
        let e = result.unwrap_err();
        assert!(matches!(e.trouble, Trouble::Directory), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "[bootp] lease_file = {}: is a directory; name a file, such as {}/leases",
                directory.display(),
                directory.display()
            )
        );
    }
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let e = LeaseJournal::open(&fifo, EPOCH).unwrap_err();
    assert!(
        e.to_string()
            .contains("is a named pipe (FIFO), not a regular file"),
        "{e}"
    );
    assert!(check(&fifo).is_err());
    let (a, b) = (dir.join("a"), dir.join("b"));
    symlink(&b, &a).unwrap();
    symlink(&a, &b).unwrap();
    let e = check(&a).unwrap_err();
    assert!(matches!(e.trouble, Trouble::LinkLoop), "{e}");
    // Under a file, no directory can be made.
    fs::write(dir.join("file"), "").unwrap();
    for path in [dir.join("file/leases"), dir.join("file/state/leases")] {
        let e = check(&path).unwrap_err();
        assert!(e.to_string().contains("Not a directory"), "{e}");
    }
}

#[test]
fn a_second_user_of_the_file_is_refused_with_the_pid_of_the_first() {
    let dir = Scratch::new("lock");
    let path = dir.join("leases");
    assert_eq!(check(&path).unwrap(), None);
    let first = open(&path);
    assert_eq!(
        fs::read_to_string(dir.join("leases.lock")).unwrap(),
        format!("{}\n", std::process::id())
    );
    let message = format!(
        "[bootp] lease_file = {}: in use by another bootd (PID {}, which holds {}.lock); two daemons writing one lease file lose each other's bindings",
        path.display(),
        std::process::id(),
        path.display()
    );
    let e = check(&path).unwrap_err();
    assert!(e.to_string().starts_with(&message), "{e}");
    let e = LeaseJournal::open(&path, EPOCH).unwrap_err();
    assert!(e.to_string().starts_with(&message), "{e}");
    // Through a link to it, the same file: the same lock.
    let link = dir.join("link");
    symlink(&path, &link).unwrap();
    assert!(matches!(
        LeaseJournal::open(&link, EPOCH).unwrap_err().trouble,
        Trouble::Locked { .. }
    ));
    drop(first);
    assert_eq!(check(&path).unwrap(), None);
    let _second = open(&link);
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

#[test]
fn many_unreadable_lines_are_counted_in_one_log_line_and_all_kept() {
    let dir = Scratch::new("many");
    let path = dir.join("leases");
    let text: String = (1..=25).map(|i| format!("bad line {i}\n")).collect();
    fs::write(&path, &text).unwrap();
    let opened = open(&path);
    assert_eq!(opened.notes.len(), 21, "{}", notes_text(&opened));
    let last = &opened.notes[20].1;
    assert!(
        last.ends_with(&format!(
            "5 more unreadable lines skipped, kept in {}.rejected",
            path.display()
        )),
        "{last}"
    );
    let kept = fs::read_to_string(dir.join("leases.rejected")).unwrap();
    assert!(kept.contains("# line 25: ") && kept.ends_with("bad line 25\n"));
}

#[test]
fn a_group_of_records_is_appended_whole_and_read_back_in_order() {
    let dir = Scratch::new("group");
    let path = dir.join("leases");
    let mut opened = open(&path);
    opened.journal.append_all(&[]).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        b"",
        "nothing to write, nothing written"
    );
    let group: Vec<LeaseRecord> = (1..=50).map(record).collect();
    opened.journal.append_all(&group).unwrap();
    opened.journal.append(&record(51)).unwrap();
    let mut all = group;
    all.push(record(51));
    assert_eq!(read(&path), (all, 0));
}

/// Waits for the background rewrite's copy and puts it in place.
fn finish(journal: &mut LeaseJournal, written: &std::sync::mpsc::Receiver<()>) -> Rewritten {
    written
        .recv_timeout(Duration::from_secs(10))
        .expect("the copy is written");
    // `done` runs just before the thread ends: wait for that too.
    loop {
        if let Some(result) = journal.finish_rewrite() {
            return result.unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_background_rewrite_keeps_the_lines_appended_while_it_ran() {
    let dir = Scratch::new("background");
    let path = dir.join("leases");
    let mut opened = open(&path);
    let journal = &mut opened.journal;
    assert!(journal.finish_rewrite().is_none(), "no rewrite under way");
    // Renewals of record 1: a rewrite keeps one line of it.
    for _ in 0..3 {
        journal.append(&record(1)).unwrap();
    }
    let (tell, written) = std::sync::mpsc::channel();
    let started = journal.start_rewrite(vec![record(1)], move || {
        let _ = tell.send(());
    });
    assert!(started.unwrap());
    let again = journal.start_rewrite(vec![record(1)], || {});
    assert!(!again.unwrap(), "one rewrite at a time");
    // Bindings go on meanwhile, to the old file.
    journal.append_all(&[record(2), record(3)]).unwrap();
    let done = finish(journal, &written);
    assert_eq!(
        done,
        Rewritten {
            records: 1,
            appended_meanwhile: 2
        }
    );
    journal.append(&record(4)).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(HEADER), "{text}");
    assert_eq!(
        read(&path),
        (vec![record(1), record(2), record(3), record(4)], 0)
    );
    assert!(!dir.join("leases.tmp").exists());
    // The new file is read too when the next rewrite adds what came meanwhile.
    let (tell, written) = std::sync::mpsc::channel();
    let records = vec![record(1), record(2), record(3), record(4)];
    journal
        .start_rewrite(records, move || {
            let _ = tell.send(());
        })
        .unwrap();
    journal.append(&record(5)).unwrap();
    assert_eq!(finish(journal, &written).appended_meanwhile, 1);
    assert_eq!(read(&path).0.len(), 5);
}

#[test]
fn a_background_rewrite_that_fails_leaves_the_file_in_use() {
    let dir = Scratch::new("background-fails");
    let path = dir.join("leases");
    let mut opened = open(&path);
    opened.journal.append(&record(1)).unwrap();
    fs::create_dir(dir.join("leases.tmp")).unwrap();
    fs::write(dir.join("leases.tmp/x"), "").unwrap();
    let (tell, written) = std::sync::mpsc::channel();
    opened
        .journal
        .start_rewrite(vec![record(1)], move || {
            let _ = tell.send(());
        })
        .unwrap();
    written.recv_timeout(Duration::from_secs(10)).unwrap();
    let e = loop {
        if let Some(result) = opened.journal.finish_rewrite() {
            break result.unwrap_err();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        e.to_string()
            .contains("leases.tmp is left behind (cannot remove it"),
        "{e}"
    );
    opened.journal.append(&record(2)).unwrap();
    assert_eq!(read(&path), (vec![record(1), record(2)], 0));
}
