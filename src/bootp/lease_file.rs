//! The lease file on disk, the one file the BOOTP service writes: what
//! `lease_file` really names, the lock that keeps a second bootd away from it,
//! the journal records are appended to and that is rewritten, and the copy of the
//! lines that could not be read. The format of a line is [`super::leases`]'s;
//! this module is its I/O.
//!
//! What `lease_file` may name, and what bootd makes of it:
//! - a regular file, created with its directory when missing: the journal;
//! - a symbolic link: followed; bindings are written to its target, and a rewrite
//!   replaces the target's directory entry, never the link;
//! - `/dev/null`: nothing is kept across restarts ([`check`] says so, so both
//!   `bootd --check` and the start-up log do);
//! - a directory, or any other kind of file: an error, at `--check` and at start.
//!
//! Beside the file (the link's target) live `NAME.lock`, locked by the bootd using
//! the file and holding its PID; `NAME.tmp`, only while the file is rewritten; and
//! `NAME.rejected`, to which the lines found unreadable at start-up are added,
//! dated, and which is never overwritten.
//!
//! Every append is all or nothing: the records of one group commit go in one
//! write made durable by one fdatasync, and a write or fsync that fails is taken
//! back by cutting the file to its last good length, so no reply depends on a line
//! that is not on disk whole, and no later line is glued to a partial one.
//!
//! A rewrite is a new file written and fsynced beside the old one, renamed over
//! it, and its directory fsynced; when any step fails the new file is removed and
//! the old one stays in use. The service rewrites in the background
//! ([`LeaseJournal::start_rewrite`]): a helper thread writes and fsyncs the copy
//! while bindings go on being appended to the old file; then
//! [`LeaseJournal::finish_rewrite`] adds the lines appended meanwhile to the copy
//! (one write, one fdatasync), renames it and fsyncs the directory. Only that last
//! step holds the service up, however many bindings the file holds.

use std::ffi::CString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::Level;

use super::leases::{self, LeaseFileContent, LeaseRecord, RejectedLine, format_binding};

/// Symbolic links followed before giving up (the kernel's own limit).
const MAX_LINKS: usize = 40;
/// How long start-up waits for the lock before saying who holds it: a `bootd
/// --check` run at the same moment holds it for an instant only.
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// Unreadable lines logged one by one at start-up; one more line counts the rest
/// (all of them are kept in `.rejected`).
const REJECTED_LINES_LOGGED: usize = 20;
/// The first line of a rewritten file.
const HEADER: &str = "# bootd leases: MAC ADDRESS UNIX-TIME STATE [pxe] [uuid=UUID]\n";

/// Why `lease_file` cannot be used.
#[derive(Debug)]
pub struct LeaseFileError {
    /// `[bootp] lease_file` as configured.
    pub lease_file: PathBuf,
    pub trouble: Trouble,
}

#[derive(Debug)]
pub enum Trouble {
    /// It names a directory.
    Directory,
    /// A FIFO, a socket, or a device other than /dev/null.
    NotRegular { path: PathBuf, kind: &'static str },
    /// Symbolic links that lead to no file.
    LinkLoop,
    /// This process may not write there.
    NotWritable { path: PathBuf, error: io::Error },
    /// Another process holds the lock (`holder`: the PID it wrote in it).
    Locked { lock: PathBuf, holder: Option<u32> },
    /// The system refused something else.
    Io {
        doing: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl fmt::Display for LeaseFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lease_file = self.lease_file.display();
        write!(f, "[bootp] lease_file = {lease_file}: ")?;
        match &self.trouble {
            Trouble::Directory => write!(
                f,
                "is a directory; name a file, such as {}",
                self.lease_file.join("leases").display()
            ),
            Trouble::NotRegular { path, kind } => write!(
                f,
                "{} is a {kind}, not a regular file; bootd keeps bindings in a regular file (or nowhere: /dev/null)",
                path.display()
            ),
            Trouble::LinkLoop => write!(
                f,
                "its symbolic links lead to no file after {MAX_LINKS} steps (a loop?)"
            ),
            Trouble::NotWritable { path, error } => write!(
                f,
                "bootd cannot write in {} as this user ({error}); it keeps the lease file there, with its .lock, .tmp and .rejected files",
                path.display()
            ),
            Trouble::Locked { lock, holder } => {
                match holder {
                    Some(pid) => write!(f, "in use by another bootd (PID {pid}")?,
                    None => write!(f, "in use by another process (its PID is not recorded")?,
                }
                write!(
                    f,
                    ", which holds {}); two daemons writing one lease file lose each other's bindings: stop that one, or give each daemon its own lease_file",
                    lock.display()
                )
            }
            Trouble::Io { doing, path, error } => {
                write!(f, "cannot {doing} {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for LeaseFileError {}

/// What `lease_file` names once symbolic links are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file, or the name one is to be created under.
    File(PathBuf),
    /// /dev/null: bindings are not kept.
    Discard,
}

/// Follows `lease_file`'s symbolic links and says what they end in.
pub fn resolve(lease_file: &Path) -> Result<Target, LeaseFileError> {
    let fail = |trouble| LeaseFileError {
        lease_file: lease_file.to_path_buf(),
        trouble,
    };
    let mut path = lease_file.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::File(path)),
            Err(error) => {
                return Err(fail(Trouble::Io {
                    doing: "examine",
                    path,
                    error,
                }));
            }
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let to = fs::read_link(&path).map_err(|error| {
                fail(Trouble::Io {
                    doing: "read the symbolic link",
                    path: path.clone(),
                    error,
                })
            })?;
            // A relative target is taken from the link's directory; `join` keeps
            // an absolute one as it is.
            path = directory_of(&path).join(to);
            continue;
        }
        if kind.is_file() {
            return Ok(Target::File(path));
        }
        if kind.is_dir() {
            return Err(fail(Trouble::Directory));
        }
        if kind.is_char_device() && libc::major(meta.rdev()) == 1 && libc::minor(meta.rdev()) == 3 {
            return Ok(Target::Discard);
        }
        return Err(fail(Trouble::NotRegular {
            path,
            kind: kind_name(&kind),
        }));
    }
    Err(fail(Trouble::LinkLoop))
}

/// What `bootd --check` and start-up say of `lease_file` before anything is
/// written: a warning when nothing will be kept; an error when bootd could not
/// use it, or when another bootd holds it.
pub fn check(lease_file: &Path) -> Result<Option<String>, LeaseFileError> {
    let fail = |trouble| LeaseFileError {
        lease_file: lease_file.to_path_buf(),
        trouble,
    };
    let path = match resolve(lease_file)? {
        Target::Discard => {
            return Ok(Some(format!(
                "[bootp] lease_file = {}: bindings are not kept: after a restart machines may be given other addresses, and those that PXE-booted here are forgotten; name a file to keep them",
                lease_file.display()
            )));
        }
        Target::File(path) => path,
    };
    // bootd creates the missing directories: the nearest one that exists must
    // let it.
    let directory = directory_of(&path);
    let existing = directory
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(fail(Trouble::Io {
            doing: "create the lease file's directory under",
            path: existing.to_path_buf(),
            error: io::Error::from(io::ErrorKind::NotADirectory),
        }));
    }
    accessible(existing, libc::W_OK).map_err(|error| {
        fail(Trouble::NotWritable {
            path: existing.to_path_buf(),
            error,
        })
    })?;
    if path.exists() {
        accessible(&path, libc::R_OK | libc::W_OK).map_err(|error| {
            fail(Trouble::NotWritable {
                path: path.clone(),
                error,
            })
        })?;
    }
    let lock = sibling(&path, ".lock");
    if let Some(holder) = holder(&lock) {
        return Err(fail(Trouble::Locked { lock, holder }));
    }
    Ok(None)
}

/// The lease file, open for appending (see the module's documentation); for
/// /dev/null, nothing.
#[derive(Debug)]
pub struct LeaseJournal {
    store: Option<Store>,
}

/// A lease file read at start-up.
#[derive(Debug)]
pub struct Opened {
    pub journal: LeaseJournal,
    /// The records of its good lines, in order.
    pub records: Vec<LeaseRecord>,
    /// What the sysadmin should read about it, in order.
    pub notes: Vec<(Level, String)>,
}

#[derive(Debug)]
struct Store {
    /// The file itself (a symbolic link's target).
    path: PathBuf,
    file: File,
    /// The length of the file's whole lines: where a failed append is cut back to.
    good_len: u64,
    /// A failed append is still to be cut off: nothing is written before it is.
    uncut: bool,
    /// The file ends in a line cut short that could not be set aside: the next
    /// record starts with a newline, on a line of its own.
    newline_first: bool,
    /// The rename of the last rewrite may not be on disk yet: the next append
    /// first makes it so.
    directory_unsynced: bool,
    /// Why the file must not be rewritten: lines of it that exist nowhere else.
    keep_whole: Option<String>,
    /// A rewrite whose copy a helper thread is writing.
    rewrite: Option<Rewrite>,
    /// Held for as long as the file is in use.
    _lock: Lock,
}

/// A rewrite under way: the copy is written off the service's loop.
#[derive(Debug)]
struct Rewrite {
    /// The file's length of whole lines when its records were taken: the lines
    /// appended after it go to the copy before it replaces the file.
    from: u64,
    records: usize,
    /// Writes the copy and fsyncs it; gives it back open, with its length.
    copy: JoinHandle<io::Result<(File, u64)>>,
}

/// A rewrite that took the place of the old file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// The records the copy was written with.
    pub records: usize,
    /// Lines appended to the old file while the copy was written, added to it.
    pub appended_meanwhile: usize,
}

impl LeaseJournal {
    /// Opens `lease_file` (creating it and its directory when missing), takes its
    /// lock, and reads it. The lines that give no record are added to
    /// `NAME.rejected`, dated by `epoch` (Unix seconds), and a last line cut short
    /// is then cut off the file; when they cannot be kept there they stay in the
    /// file, which is then not rewritten.
    pub fn open(lease_file: &Path, epoch: u64) -> Result<Opened, LeaseFileError> {
        let fail = |trouble| LeaseFileError {
            lease_file: lease_file.to_path_buf(),
            trouble,
        };
        let io_fail = |doing, path: &Path, error| {
            fail(Trouble::Io {
                doing,
                path: path.to_path_buf(),
                error,
            })
        };
        let path = match resolve(lease_file)? {
            Target::Discard => {
                return Ok(Opened {
                    journal: LeaseJournal { store: None },
                    records: Vec::new(),
                    notes: Vec::new(),
                });
            }
            Target::File(path) => path,
        };
        let mut notes = Vec::new();
        if path != lease_file {
            notes.push((
                Level::Info,
                format!(
                    "[bootp] lease_file = {} is a symbolic link: bindings are kept in {}, which rewrites replace (the link stays as it is)",
                    lease_file.display(),
                    path.display()
                ),
            ));
        }
        let directory = directory_of(&path);
        fs::create_dir_all(directory).map_err(|e| io_fail("create the directory", directory, e))?;
        let lock = Lock::acquire(&sibling(&path, ".lock")).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            // Never through a link put there since it was resolved, and never
            // blocked opening a FIFO.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| io_fail("open", &path, e))?;
        let kind = file
            .metadata()
            .map_err(|e| io_fail("examine", &path, e))?
            .file_type();
        if !kind.is_file() {
            return Err(fail(Trouble::NotRegular {
                path,
                kind: kind_name(&kind),
            }));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io_fail("read", &path, e))?;
        let content = leases::parse_lease_file(&bytes);
        let mut store = Store {
            path,
            file,
            good_len: bytes.len() as u64,
            uncut: false,
            newline_first: false,
            directory_unsynced: false,
            keep_whole: None,
            rewrite: None,
            _lock: lock,
        };
        store.set_aside(&content, epoch, &mut notes);
        Ok(Opened {
            journal: LeaseJournal { store: Some(store) },
            records: content.records,
            notes,
        })
    }

    /// Appends one record and waits until it is on disk; see
    /// [`LeaseJournal::append_all`].
    #[cfg(test)]
    pub fn append(&mut self, record: &LeaseRecord) -> io::Result<()> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends `records` with one write and waits, with one fdatasync, until they
    /// are on disk: all of them, or none. On failure the file is as it was before
    /// (or, when even that fails, nothing more is written until it is), and the
    /// error says which.
    pub fn append_all(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        match &mut self.store {
            Some(store) if !records.is_empty() => store.append_all(records),
            _ => Ok(()),
        }
    }

    /// Rewrites the file with exactly `records`, waiting for it, and goes on
    /// appending to the new file; on failure, goes on with the old one, and the
    /// error says so.
    pub fn compact(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        match &mut self.store {
            Some(store) => store.compact(records),
            None => Ok(()),
        }
    }

    /// Starts rewriting the file with exactly `records` in the background: a
    /// helper thread writes and fsyncs the copy, then calls `done`, after which
    /// [`LeaseJournal::finish_rewrite`] puts it in place. Appends go on meanwhile.
    /// `Ok(false)` when a rewrite is under way already (this one is not needed:
    /// the next is asked for soon enough); an error when the file must not be
    /// rewritten or no thread could be started.
    pub fn start_rewrite(
        &mut self,
        records: Vec<LeaseRecord>,
        done: impl FnOnce() + Send + 'static,
    ) -> io::Result<bool> {
        match &mut self.store {
            Some(store) => store.start_rewrite(records, done),
            None => Ok(false),
        }
    }

    /// When the background rewrite's copy is written: adds the lines appended
    /// since its records were taken, renames it over the file and fsyncs the
    /// directory; on failure the old file stays in use, and the error says so.
    /// `None` while no copy is ready.
    pub fn finish_rewrite(&mut self) -> Option<io::Result<Rewritten>> {
        self.store.as_mut()?.finish_rewrite()
    }
}

impl Store {
    /// Adds the lines that give no record to `.rejected` and says so; cuts a torn
    /// last line off once it is kept there. Lines that cannot be kept stay where
    /// they are, and the file is not rewritten.
    fn set_aside(
        &mut self,
        content: &LeaseFileContent<'_>,
        epoch: u64,
        notes: &mut Vec<(Level, String)>,
    ) {
        let lines: Vec<&RejectedLine<'_>> = content.rejected.iter().chain(&content.torn).collect();
        if lines.is_empty() {
            return;
        }
        let rejected = sibling(&self.path, ".rejected");
        let kept = keep_rejected(&rejected, &self.path, &lines, epoch);
        let file = self.path.display();
        let whereabouts = match &kept {
            Ok(()) => format!("kept in {}", rejected.display()),
            Err(_) => "left in the file".to_string(),
        };
        for line in lines.iter().take(REJECTED_LINES_LOGGED) {
            notes.push((
                Level::Warn,
                format!(
                    "{file}:{}: {}; line skipped, {whereabouts}",
                    line.number, line.error
                ),
            ));
        }
        if lines.len() > REJECTED_LINES_LOGGED {
            notes.push((
                Level::Warn,
                format!(
                    "{file}: {} more unreadable lines skipped, {whereabouts}",
                    lines.len() - REJECTED_LINES_LOGGED
                ),
            ));
        }
        match kept {
            Ok(()) if content.torn.is_some() => {
                // Kept elsewhere: cut off (which needs no room on the disk), so the
                // next record starts its own line.
                let whole = content.whole_len as u64;
                match self
                    .file
                    .set_len(whole)
                    .and_then(|()| self.file.sync_data())
                {
                    Ok(()) => self.good_len = whole,
                    Err(e) => {
                        self.newline_first = true;
                        notes.push((
                            Level::Warn,
                            format!("{file}: cannot cut the torn last line off ({e}); the next record starts on a line of its own"),
                        ));
                    }
                }
            }
            Ok(()) => {}
            Err(e) => {
                self.newline_first = content.torn.is_some();
                let why = format!(
                    "{} unreadable lines of it are kept nowhere else ({} cannot be written: {e})",
                    lines.len(),
                    rejected.display()
                );
                notes.push((
                    Level::Error,
                    format!("{file}: {why}; they stay in the file, which is not rewritten until they can be kept"),
                ));
                self.keep_whole = Some(why);
            }
        }
    }

    fn append_all(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        self.cut_back().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("a failed write is still to be cut off the file ({e}), so nothing is written after it"),
            )
        })?;
        if self.directory_unsynced {
            sync_directory(&self.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("the file's last rewrite is not on disk yet: cannot sync its directory ({e})"),
                )
            })?;
            self.directory_unsynced = false;
        }
        let mut lines = Vec::new();
        if self.newline_first {
            lines.push(b'\n');
        }
        for record in records {
            lines.extend_from_slice(format_binding(record).as_bytes());
        }
        match self
            .file
            .write_all(&lines)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.good_len += lines.len() as u64;
                self.newline_first = false;
                Ok(())
            }
            Err(e) => {
                // Part of the lines may be in the file (a disk that filled up in the
                // middle of them): take it back, so that the file holds whole lines
                // only, none of a commit that failed, and the next record does not
                // continue a partial one.
                self.uncut = true;
                let what = if records.len() == 1 {
                    "the partial line was"
                } else {
                    "the partial lines were"
                };
                let outcome = match self.cut_back() {
                    Ok(()) => format!("{what} cut off"),
                    Err(cut) => format!(
                        "cutting the partial line off failed too ({cut}): nothing more is written until it succeeds"
                    ),
                };
                Err(io::Error::new(e.kind(), format!("{e}; {outcome}")))
            }
        }
    }

    /// Cuts a failed append off, if one is left.
    fn cut_back(&mut self) -> io::Result<()> {
        if self.uncut {
            self.file.set_len(self.good_len)?;
            self.file.sync_data()?;
            self.uncut = false;
        }
        Ok(())
    }

    fn compact(&mut self, records: &[LeaseRecord]) -> io::Result<()> {
        self.may_rewrite()?;
        let from = self.good_len;
        let copy = write_copy(
            &sibling(&self.path, ".tmp"),
            records,
            self.file.metadata()?.permissions(),
        );
        self.install(copy, from).map(|_| ())
    }

    /// An error when the file must not be rewritten.
    fn may_rewrite(&self) -> io::Result<()> {
        match &self.keep_whole {
            Some(why) => Err(io::Error::other(format!(
                "not rewritten: {why}; bindings are still appended to it"
            ))),
            None => Ok(()),
        }
    }

    fn start_rewrite(
        &mut self,
        records: Vec<LeaseRecord>,
        done: impl FnOnce() + Send + 'static,
    ) -> io::Result<bool> {
        self.may_rewrite()?;
        if self.rewrite.is_some() {
            return Ok(false);
        }
        let temporary = sibling(&self.path, ".tmp");
        let permissions = self.file.metadata()?.permissions();
        let count = records.len();
        let copy = std::thread::Builder::new()
            .name("bootp-rewrite".into())
            .spawn(move || {
                let copy = write_copy(&temporary, &records, permissions);
                done();
                copy
            })?;
        self.rewrite = Some(Rewrite {
            from: self.good_len,
            records: count,
            copy,
        });
        Ok(true)
    }

    fn finish_rewrite(&mut self) -> Option<io::Result<Rewritten>> {
        if !self.rewrite.as_ref()?.copy.is_finished() {
            return None;
        }
        let rewrite = self.rewrite.take()?;
        let copy = rewrite.copy.join().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the thread writing the new copy stopped before it was done",
            ))
        });
        let installed = self.install(copy, rewrite.from);
        Some(installed.map(|appended_meanwhile| Rewritten {
            records: rewrite.records,
            appended_meanwhile,
        }))
    }

    /// Puts the `copy` written with the records of the file's first `from` bytes
    /// in its place: the lines appended since are added to it, it is renamed over
    /// the file, and appends go to it from now on. Returns how many lines were
    /// added. On failure the copy is removed and the file stays in use.
    fn install(&mut self, copy: io::Result<(File, u64)>, from: u64) -> io::Result<usize> {
        let temporary = sibling(&self.path, ".tmp");
        let renamed = copy.and_then(|(mut file, len)| {
            let since = self.lines_since(from)?;
            if !since.is_empty() {
                file.write_all(&since)?;
                file.sync_data()?;
            }
            fs::rename(&temporary, &self.path)?;
            let lines = since.iter().filter(|b| **b == b'\n').count();
            Ok((file, len + since.len() as u64, lines))
        });
        let (file, len, lines) = match renamed {
            Ok(installed) => installed,
            Err(e) => {
                let copy = match fs::remove_file(&temporary) {
                    Ok(()) => "removed".to_string(),
                    Err(r) if r.kind() == io::ErrorKind::NotFound => "removed".to_string(),
                    Err(r) => format!("left behind (cannot remove it: {r})"),
                };
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{e}; the new copy {} is {copy}, and bindings are still appended to {}",
                        temporary.display(),
                        self.path.display()
                    ),
                ));
            }
        };
        self.file = file;
        self.good_len = len;
        self.uncut = false;
        self.newline_first = false;
        // The rename is durable once the directory is; until then the next append
        // tries again, and fails rather than answer for a record that a crash
        // could take back with the rename.
        self.directory_unsynced = sync_directory(&self.path).is_err();
        Ok(lines)
    }

    /// The whole lines of the file after its first `from` bytes.
    fn lines_since(&self, from: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.good_len.saturating_sub(from))
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut bytes = vec![0; len];
        self.file.read_exact_at(&mut bytes, from)?;
        Ok(bytes)
    }
}

/// Writes `records` to `temporary` with `permissions` and fsyncs it; returns it
/// open for appending, with its length.
fn write_copy(
    temporary: &Path,
    records: &[LeaseRecord],
    permissions: fs::Permissions,
) -> io::Result<(File, u64)> {
    // Left by a rewrite a crash interrupted.
    match fs::remove_file(temporary) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut text = String::from(HEADER);
    for record in records {
        text.push_str(&format_binding(record));
    }
    // Readable too: the next rewrite reads the lines appended to it meanwhile.
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(temporary)?;
    // The new file keeps the old one's permissions (the umask may have narrowed
    // those it was created with).
    file.set_permissions(permissions)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok((file, text.len() as u64))
}

/// Appends `lines` of `source` to the file `rejected`, under a dated comment, and
/// fsyncs it; on failure it is cut back to what it held.
fn keep_rejected(
    rejected: &Path,
    source: &Path,
    lines: &[&RejectedLine<'_>],
    epoch: u64,
) -> io::Result<()> {
    let mut text = format!(
        "# {}: lines of {} that bootd could not read at start-up, and left out of it\n",
        utc(epoch),
        source.display()
    )
    .into_bytes();
    for line in lines {
        text.extend_from_slice(format!("# line {}: {}\n", line.number, line.error).as_bytes());
        text.extend_from_slice(line.bytes);
        text.push(b'\n');
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(rejected)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "it is a {}",
            kind_name(&meta.file_type())
        )));
    }
    let before = meta.len();
    file.write_all(&text)
        .and_then(|()| file.sync_data())
        .inspect_err(|_| {
            let _ = file.set_len(before);
        })
}

/// `2024-06-10 12:00:00 UTC`.
fn utc(epoch: u64) -> String {
    let time = i64::try_from(epoch)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok());
    match time {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => format!("Unix time {epoch}"),
    }
}

/// The lock beside the lease file, held (with this process's PID written in it)
/// while the file is in use. `flock` locks belong to the open file, so the lock
/// goes when the daemon does, however it ends; the file stays, and the next bootd
/// writes its own PID in it.
#[derive(Debug)]
struct Lock {
    _file: File,
}

impl Lock {
    fn acquire(path: &Path) -> Result<Lock, Trouble> {
        let io_trouble = |doing, error| Trouble::Io {
            doing,
            path: path.to_path_buf(),
            error,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io_trouble("open the lock file", e))?;
        let deadline = Instant::now() + LOCK_WAIT;
        while !try_flock(&file, libc::LOCK_EX).map_err(|e| io_trouble("lock", e))? {
            if Instant::now() >= deadline {
                return Err(Trouble::Locked {
                    lock: path.to_path_buf(),
                    holder: recorded_pid(path),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
            .map_err(|e| io_trouble("write this process's PID in", e))?;
        Ok(Lock { _file: file })
    }
}

/// Who holds the lock at `path`, without taking it: `None` when no one does (or
/// the lock file cannot be read); `Some(None)` when its holder wrote no PID.
fn holder(path: &Path) -> Option<Option<u32>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    match try_flock(&file, libc::LOCK_SH) {
        Ok(false) => Some(recorded_pid(path)),
        // Taken, and released as `file` closes.
        Ok(true) | Err(_) => None,
    }
}

/// The PID the holder of the lock at `path` wrote in it.
fn recorded_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Takes the `flock` `operation` (LOCK_EX or LOCK_SH) on `file` without waiting:
/// false when another open file holds a lock in the way.
fn try_flock(file: &File, operation: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock reads no memory; the descriptor stays open for the call, as
    // `file` is borrowed.
    if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// Whether this process may `mode` (`W_OK`, `R_OK | W_OK`) `path`: as its
/// effective user, and on a mount that may be read-only.
fn accessible(path: &Path, mode: libc::c_int) -> io::Result<()> {
    let name = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: faccessat reads the NUL-terminated name, which `name` keeps alive
    // across the call.
    let result = unsafe { libc::faccessat(libc::AT_FDCWD, name.as_ptr(), mode, libc::AT_EACCESS) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the last rename in `path`'s directory durable.
fn sync_directory(path: &Path) -> io::Result<()> {
    File::open(directory_of(path))?.sync_all()
}

/// The directory `path` is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `path` with `suffix` added to its name: `leases.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn kind_name(kind: &fs::FileType) -> &'static str {
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "named pipe (FIFO)"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(test)]
#[path = "lease_file_tests.rs"]
mod tests;
