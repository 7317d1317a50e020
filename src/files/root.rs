//! Files opened under the root of the boot files, with no gap between the check and
//! the open.
//!
//! Checking a resolved path and then opening it again by name lets a client that can
//! write in the root (a swapped directory, a symlink put in place between the two
//! steps) be served a file from outside it. So the name is never opened from the
//! host's root: [`RootDir`] holds a descriptor of the root directory and every lookup
//! starts from it.
//!
//! - Where the kernel has `openat2` (Linux 5.6 and later), one call with
//!   `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` resolves the name, symlinks included,
//!   and fails if any step would leave the root: the kernel does the check on the
//!   very path it opens.
//! - Where it has not (`ENOSYS`), and for the one case `RESOLVE_BENEATH` refuses that
//!   stays inside the root (an absolute symlink naming a place under the root), the
//!   name is walked one component at a time with `openat(O_NOFOLLOW)` from the
//!   descriptor of the directory reached so far. Symlinks are read with `readlinkat`
//!   and expanded by the walk itself, `..` goes back to the directory it came from,
//!   and a walk that would climb above the root, or a symlink to an absolute path
//!   outside it, is refused. The kernel never follows a link on the walk's behalf,
//!   so a link swapped in meanwhile is seen and judged like any other.
//!
//! The file is opened non-blocking (a FIFO or a device in the root would otherwise
//! hold the service thread in `open`), and what was opened is checked, not the name:
//! only a regular file is served.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::name::{self, Refusal};

/// Symlinks expanded in one lookup before it is refused (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// Why a name cannot be served from the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenErrorKind {
    /// Nothing by that name (TFTP ERROR 1, HTTP 404).
    NotFound,
    /// Something by that name, but not a regular file: a directory, a FIFO, a device.
    NotAFile,
    /// The name may not be served: refused as written, leading out of the root, or
    /// not readable by bootd (TFTP ERROR 2, HTTP 403).
    Refused,
}

/// Why a name cannot be served, with the reason for the log (server paths included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub kind: OpenErrorKind,
    pub reason: String,
}

impl OpenError {
    fn new(kind: OpenErrorKind, reason: String) -> OpenError {
        OpenError { kind, reason }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for OpenError {}

impl From<Refusal> for OpenError {
    fn from(refusal: Refusal) -> OpenError {
        OpenError::new(OpenErrorKind::Refused, format!("refused name: {refusal}"))
    }
}

/// A regular file opened under the root.
#[derive(Debug)]
pub struct OpenedFile {
    pub file: File,
    /// The root joined with the name as asked (for log lines).
    pub path: PathBuf,
}

/// The root directory, held open: every name is looked up from it.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    /// Canonical: absolute symlinks are judged against it.
    path: PathBuf,
}

/// Set once `openat2` answered `ENOSYS`: the walk is used from then on.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// How a lookup is made; tests drive both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// `openat2`, falling back to the walk where needed.
    Kernel,
    /// The component-by-component walk only.
    #[cfg(test)]
    Walk,
}

impl RootDir {
    /// Opens the directory `path` (made canonical) as the root.
    pub fn open(path: &Path) -> io::Result<RootDir> {
        let path = path.canonicalize()?;
        let c_path = c_string(path.as_os_str())?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: a valid NUL-terminated path; the result is checked before use.
        let fd = unsafe { libc::open(c_path.as_ptr(), flags) };
        Ok(RootDir {
            fd: owned(fd)?,
            path,
        })
    }

    /// The root's canonical path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the regular file `requested` names under the root: the name is checked
    /// ([`name::normalise`]), then looked up from the root's descriptor; every symlink
    /// on the way must stay under the root.
    pub fn open_file(&self, requested: &str) -> Result<OpenedFile, OpenError> {
        self.open_with(requested, Lookup::Kernel)
    }

    fn open_with(&self, requested: &str, lookup: Lookup) -> Result<OpenedFile, OpenError> {
        let path = name::resolve(&self.path, requested)?;
        let relative = path
            .strip_prefix(&self.path)
            .map_err(|_| Refusal::DotSegment)?
            .as_os_str();
        let shown = path.display();
        let opened = match lookup {
            Lookup::Kernel if !NO_OPENAT2.load(Ordering::Relaxed) => {
                match self.open_beneath(relative) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        self.walk(relative)
                    }
                    // EXDEV: a step leaves the root, or is an absolute symlink, which
                    // the walk accepts when it names a place under the root. EAGAIN:
                    // a rename raced the lookup of `..`.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EAGAIN)) => {
                        self.walk(relative)
                    }
                    other => other.map_err(Walk::Io),
                }
            }
            _ => self.walk(relative),
        };
        let fd = opened.map_err(|e| match e {
            Walk::Outside => OpenError::new(
                OpenErrorKind::Refused,
                format!("{shown} leads outside the root"),
            ),
            Walk::Io(e) => io_error(&shown, &e),
        })?;
        let file = File::from(fd);
        let metadata = file.metadata().map_err(|e| io_error(&shown, &e))?;
        if !metadata.is_file() {
            return Err(OpenError::new(
                OpenErrorKind::NotAFile,
                format!("{shown}: not a regular file"),
            ));
        }
        Ok(OpenedFile { file, path })
    }

    /// One `openat2` call: the kernel resolves `relative` and refuses any step out.
    fn open_beneath(&self, relative: &OsStr) -> io::Result<OwnedFd> {
        let c_relative = c_string(relative)?;
        // SAFETY: open_how is plain data; all-zero is its documented empty value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = FILE_FLAGS as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: a valid directory descriptor, a NUL-terminated path and an open_how
        // of the size passed; the result is checked before use.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                c_relative.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        owned(i32::try_from(fd).unwrap_or(-1))
    }

    /// Walks `relative` one component at a time from the root's descriptor (see the
    /// module documentation).
    fn walk(&self, relative: &OsStr) -> Result<OwnedFd, Walk> {
        // The directories entered below the root, innermost last; `..` leaves one.
        let mut entered: Vec<OwnedFd> = Vec::new();
        let mut pending: Vec<OsString> = components(relative);
        pending.reverse();
        let mut symlinks = 0;
        while let Some(component) = pending.pop() {
            match component.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    entered.pop().ok_or(Walk::Outside)?;
                    continue;
                }
                _ => {}
            }
            let here = entered.last().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let c_component = c_string(&component).map_err(Walk::Io)?;
            // A symlink is expanded here, never followed by the kernel.
            if let Some(target) = read_link(here, &c_component).map_err(Walk::Io)? {
                symlinks += 1;
                if symlinks > MAX_SYMLINKS {
                    return Err(Walk::Io(io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = PathBuf::from(target);
                let rest = if target.is_absolute() {
                    if !name::is_within(&self.path, &target) {
                        return Err(Walk::Outside);
                    }
                    entered.clear();
                    target
                        .strip_prefix(&self.path)
                        .map_err(|_| Walk::Outside)?
                        .as_os_str()
                        .to_owned()
                } else {
                    target.into_os_string()
                };
                pending.extend(components(&rest).into_iter().rev());
                continue;
            }
            let last = pending.is_empty();
            let flags = if last {
                FILE_FLAGS | libc::O_NOFOLLOW
            } else {
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
            };
            // SAFETY: a valid directory descriptor and a NUL-terminated name; the
            // result is checked before use.
            let fd = unsafe { libc::openat(here.as_raw_fd(), c_component.as_ptr(), flags) };
            match owned(fd) {
                Ok(fd) if last => return Ok(fd),
                Ok(fd) => entered.push(fd),
                // Turned into a symlink since `readlinkat` looked: look again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    symlinks += 1;
                    if symlinks > MAX_SYMLINKS {
                        return Err(Walk::Io(e));
                    }
                    pending.push(component);
                }
                Err(e) => return Err(Walk::Io(e)),
            }
        }
        // Only `.` and `..` segments: the name named a directory.
        Err(Walk::Io(io::Error::from_raw_os_error(libc::EISDIR)))
    }
}

/// How the file itself is opened: read-only, never blocking (a FIFO would block in
/// `open` until a writer came), never becoming the controlling terminal. The walk
/// adds `O_NOFOLLOW`: it expands symlinks itself.
const FILE_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

enum Walk {
    Outside,
    Io(io::Error),
}

fn components(path: &OsStr) -> Vec<OsString> {
    path.as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

/// The target of `name` in `dir` when it is a symlink, `None` when it is something
/// else or nothing (the open that follows says which).
fn read_link(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<OsString>> {
    let mut buffer = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid directory descriptor, a NUL-terminated name, and a buffer of
    // the length passed.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    let n = usize::try_from(n).unwrap_or(0);
    if n >= buffer.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buffer.truncate(n);
    Ok(Some(OsString::from_vec(buffer)))
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A descriptor returned by a system call, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn io_error(shown: &impl fmt::Display, e: &io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => {
            OpenError::new(OpenErrorKind::NotFound, format!("{shown}: no such file"))
        }
        Some(libc::EISDIR) => OpenError::new(
            OpenErrorKind::NotAFile,
            format!("{shown}: not a regular file"),
        ),
        Some(libc::ELOOP) => OpenError::new(
            OpenErrorKind::Refused,
            format!("{shown}: too many symlinks"),
        ),
        _ => OpenError::new(OpenErrorKind::Refused, format!("{shown}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `root/` with files, directories and symlinks in and out, and `secret` beside it.
    fn scratch(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bootd-root-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub/deeper")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(dir.join("root/sub/file.bin"), b"payload").unwrap();
        std::fs::write(dir.join("secret"), b"secret").unwrap();
        std::fs::write(dir.join("outside/f"), b"SECRET").unwrap();
        let root = dir.join("root");
        symlink(dir.join("secret"), root.join("escape")).unwrap();
        symlink("../secret", root.join("escape-rel")).unwrap();
        symlink(dir.join("outside"), root.join("outdir")).unwrap();
        symlink("../../../secret", root.join("sub/deeper/climb")).unwrap();
        symlink("/etc/passwd", root.join("passwd")).unwrap();
        symlink("sub/file.bin", root.join("inside")).unwrap();
        symlink("../file.bin", root.join("sub/deeper/up")).unwrap();
        symlink("deeper/../file.bin", root.join("sub/round")).unwrap();
        symlink("sub", root.join("subdir")).unwrap();
        let absolute = root.canonicalize().unwrap().join("sub/file.bin");
        symlink(absolute, root.join("absolute-inside")).unwrap();
        symlink("loop-b", root.join("loop-a")).unwrap();
        symlink("loop-a", root.join("loop-b")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        Scratch(dir)
    }

    fn content(opened: OpenedFile) -> Vec<u8> {
        let mut file = opened.file;
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn names_inside_the_root_open_and_every_way_out_is_refused() {
        let dir = scratch("cases");
        let root = RootDir::open(&dir.0.join("root")).unwrap();
        for lookup in [Lookup::Kernel, Lookup::Walk] {
            for name in [
                "sub/file.bin",
                "/sub/file.bin",
                "./inside",
                "sub/deeper/up",
                "sub/round",
                "subdir/file.bin",
                "absolute-inside",
            ] {
                let opened = root.open_with(name, lookup).unwrap();
                assert_eq!(content(opened), b"payload", "{name} ({lookup:?})");
            }
            for name in [
                "escape",
                "escape-rel",
                "outdir/f",
                "sub/deeper/climb",
                "passwd",
            ] {
                let e = root.open_with(name, lookup).unwrap_err();
                assert_eq!(e.kind, OpenErrorKind::Refused, "{name} ({lookup:?})");
                assert!(e.reason.contains("outside the root"), "{}", e.reason);
            }
            let e = root.open_with("../secret", lookup).unwrap_err();
            assert_eq!(e.kind, OpenErrorKind::Refused);
            assert!(e.reason.contains("refused name"), "{}", e.reason);
            for name in ["missing", "dangling", "sub/file.bin/x", "sub/missing/x"] {
                let e = root.open_with(name, lookup).unwrap_err();
                assert_eq!(e.kind, OpenErrorKind::NotFound, "{name} ({lookup:?})");
                assert!(e.reason.ends_with(": no such file"), "{}", e.reason);
            }
            for name in ["sub", "subdir", "sub/deeper"] {
                let e = root.open_with(name, lookup).unwrap_err();
                assert_eq!(e.kind, OpenErrorKind::NotAFile, "{name} ({lookup:?})");
                assert!(e.reason.ends_with("not a regular file"), "{}", e.reason);
            }
            let e = root.open_with("loop-a", lookup).unwrap_err();
            assert_eq!(e.kind, OpenErrorKind::Refused, "{lookup:?}");
        }
    }

    /// A FIFO would hold `open` until a writer came: it is opened without blocking
    /// and refused, as is any file that is not a regular one.
    #[test]
    fn a_fifo_in_the_root_is_refused_at_once() {
        let dir = scratch("fifo");
        let fifo = dir.0.join("root/fifo");
        let c_fifo = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        let root = Arc::new(RootDir::open(&dir.0.join("root")).unwrap());
        for lookup in [Lookup::Kernel, Lookup::Walk] {
            let (done, finished) = crossbeam_channel::bounded(1);
            let opener = Arc::clone(&root);
            std::thread::spawn(move || {
                let _ = done.send(opener.open_with("fifo", lookup).map(|_| ()));
            });
            let result = finished
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("opening a FIFO blocked ({lookup:?})"));
            let e = result.unwrap_err();
            assert_eq!(e.kind, OpenErrorKind::NotAFile);
            assert!(
                e.reason.ends_with("fifo: not a regular file"),
                "{}",
                e.reason
            );
        }
    }

    /// Swaps two names atomically.
    fn exchange(a: &Path, b: &Path) -> bool {
        let a = CString::new(a.as_os_str().as_bytes()).unwrap();
        let b = CString::new(b.as_os_str().as_bytes()).unwrap();
        // SAFETY: two valid NUL-terminated paths.
        unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            ) == 0
        }
    }

    /// A client that can write in the root swaps a directory for a symlink to a
    /// directory outside it, over and over, while the file under it is asked for:
    /// the outside file is never opened, whichever lookup is used.
    #[test]
    fn a_directory_swapped_for_a_symlink_out_never_serves_the_outside_file() {
        let dir = scratch("race");
        std::fs::create_dir_all(dir.0.join("root/d")).unwrap();
        std::fs::write(dir.0.join("root/d/f"), b"inside").unwrap();
        symlink(dir.0.join("outside"), dir.0.join("root/swap")).unwrap();
        let root = RootDir::open(&dir.0.join("root")).unwrap();
        for lookup in [Lookup::Kernel, Lookup::Walk] {
            let stop = Arc::new(AtomicBool::new(false));
            let swapper = {
                let (stop, d, swap) = (
                    Arc::clone(&stop),
                    root.path.join("d"),
                    root.path.join("swap"),
                );
                std::thread::spawn(move || {
                    let mut swaps = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        assert!(exchange(&d, &swap));
                        swaps += 1;
                    }
                    // Leave `d` a directory for the next round.
                    if swaps % 2 == 1 {
                        exchange(&d, &swap);
                    }
                })
            };
            let (mut inside, mut outside, mut refused) = (0, 0, 0);
            let started = Instant::now();
            for _ in 0..2000 {
                if started.elapsed() > Duration::from_secs(20) {
                    break;
                }
                match root.open_with("d/f", lookup) {
                    Ok(opened) => match content(opened).as_slice() {
                        b"inside" => inside += 1,
                        _ => outside += 1,
                    },
                    Err(_) => refused += 1,
                }
            }
            stop.store(true, Ordering::Relaxed);
            swapper.join().unwrap();
            assert_eq!(
                outside, 0,
                "{lookup:?}: the outside file was served {outside} times ({inside} inside, {refused} refused)"
            );
            assert!(
                inside > 0 && refused > 0,
                "{lookup:?}: {inside} inside, {refused} refused: no race"
            );
        }
    }
}
