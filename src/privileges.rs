//! Who bootd runs as. Started as root outside systemd, bootd opens what needs root
//! (the BOOTP sockets bound to their interfaces, the ports below 1024, the lease
//! file, the log file, the NBD images) and then becomes an unprivileged user for the
//! rest of its life, with no capability left. Under systemd the unit already runs
//! it as a user of its own, with only the capabilities it grants: bootd is not root
//! there, and nothing changes.
//!
//! What bootd writes after the drop must stay writable: the lease file's directory
//! (a compaction writes a new file there and renames it over the old one) and the
//! NBD overlay directory. bootd gives such a directory to the user when it holds
//! nothing but bootd's own files (it created it, or it was made for bootd, such as
//! an empty `/var/lib/bootd`); any other directory the user cannot write is an
//! error at start and at `--check`, which names the fix, rather than a daemon that
//! fails at its first compaction.

use std::ffi::{CStr, CString, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The user bootd runs as when `[bootd] user` does not say, if it exists.
pub const DEFAULT_USER: &str = "bootd";
/// The user taken when there is no `bootd` user.
pub const FALLBACK_USER: &str = "nobody";

/// A user of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// Its primary group: the only group bootd keeps.
    pub gid: u32,
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {}, gid {})", self.name, self.uid, self.gid)
    }
}

/// Who bootd runs as once start-up is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// Not started as root (a systemd unit's user, or a user trying bootd on high
    /// ports): it stays who it is.
    AsStarted,
    /// Started as root and told to stay root (`[bootd] user = root`).
    Root,
    /// Started as root: becomes this user once its sockets are open.
    User(Account),
}

/// Decides who bootd runs as: `euid` is who it was started as, `configured` the
/// `[bootd] user` (or `--user`), `lookup` finds a user by name.
pub fn choose(
    euid: u32,
    configured: Option<&str>,
    lookup: impl Fn(&str) -> io::Result<Option<Account>>,
) -> Result<RunAs, String> {
    if euid != 0 {
        return Ok(RunAs::AsStarted);
    }
    let found =
        |name: &str| lookup(name).map_err(|e| format!("cannot look up the user {name}: {e}"));
    match configured {
        Some(name) => match found(name)? {
            Some(account) if account.uid == 0 => Ok(RunAs::Root),
            Some(account) => Ok(RunAs::User(account)),
            None => Err(format!(
                "[bootd] user = {name}: no such user on this host; create it (useradd --system --no-create-home --shell /usr/sbin/nologin {name}), name another, or write user = root to keep root"
            )),
        },
        None => {
            for name in [DEFAULT_USER, FALLBACK_USER] {
                if let Some(account) = found(name)? {
                    if account.uid == 0 {
                        break;
                    }
                    return Ok(RunAs::User(account));
                }
            }
            Err(format!(
                "bootd, started as root, would run as the user {DEFAULT_USER} or {FALLBACK_USER} once its sockets are open, and this host has neither: set [bootd] user (or --user) to a user of this host, or to root to keep root"
            ))
        }
    }
}

/// [`choose`] for this process and this host's users.
pub fn decide(configured: Option<&str>) -> Result<RunAs, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    choose(euid, configured, lookup)
}

/// The user `name` from the host's user database (NSS: /etc/passwd, LDAP, …).
pub fn lookup(name: &str) -> io::Result<Option<Account>> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value of this plain C struct;
        // getpwnam_r fills it.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is to memory we own for the whole call; the name is
        // NUL-terminated, the buffer's length is passed, and the strings getpwnam_r
        // leaves in `entry` point into `buffer`, read below while it lives.
        let status = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut result,
            )
        };
        if status == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: pw_name points into `buffer`, NUL-terminated by getpwnam_r.
        let found = unsafe { CStr::from_ptr(entry.pw_name) };
        return Ok(Some(Account {
            name: found.to_string_lossy().into_owned(),
            uid: entry.pw_uid,
            gid: entry.pw_gid,
        }));
    }
}

/// Becomes `account` for good, in every thread: its primary group alone, then its
/// group and user IDs, real, effective and saved. Leaving root clears every
/// capability (bootd never sets the keep-capabilities flag), which is checked,
/// with the IDs, in every thread.
pub fn become_user(account: &Account) -> Result<(), String> {
    let fail = |what: &str| {
        format!(
            "cannot become the user {account}: {what} failed: {}",
            io::Error::last_os_error()
        )
    };
    let groups = [account.gid as libc::gid_t];
    // glibc applies each of these calls to every thread of the process, as POSIX
    // asks of a process's credentials.
    // SAFETY: setgroups reads one gid from the array, which lives across the call.
    if unsafe { libc::setgroups(1, groups.as_ptr()) } != 0 {
        return Err(fail("setgroups"));
    }
    // SAFETY: plain system calls on integers.
    if unsafe { libc::setresgid(account.gid, account.gid, account.gid) } != 0 {
        return Err(fail("setresgid"));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(account.uid, account.uid, account.uid) } != 0 {
        return Err(fail("setresuid"));
    }
    // SAFETY: as above; this must fail now that no ID is root's.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(format!(
            "became the user {account}, yet could become root again: stopping"
        ));
    }
    let left = threads_still_privileged(account)
        .map_err(|e| format!("cannot check the threads' credentials in /proc: {e}"))?;
    if !left.is_empty() {
        return Err(format!(
            "became the user {account}, but these threads kept root's IDs or capabilities: {}",
            left.join(", ")
        ));
    }
    Ok(())
}

/// The threads of this process whose user IDs are not all `account`'s, or that
/// hold a capability, from /proc/self/task/*/status.
fn threads_still_privileged(account: &Account) -> io::Result<Vec<String>> {
    let mut left = Vec::new();
    for task in fs::read_dir("/proc/self/task")? {
        let task = task?;
        // A thread that ended meanwhile has nothing left to check.
        let Ok(status) = fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        if !credentials_dropped(&status, account) {
            left.push(task.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(left)
}

/// Whether a /proc status text shows every user and group ID as `account`'s and
/// no capability in the permitted, effective or ambient set.
fn credentials_dropped(status: &str, account: &Account) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::split_whitespace)
    };
    let ids_are = |name: &str, id: u32| {
        field(name).is_some_and(|mut ids| ids.all(|v| v.parse::<u32>().ok() == Some(id)))
    };
    let no_capability = |name: &str| {
        field(name).is_some_and(|mut value| {
            value
                .next()
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                == Some(0)
        })
    };
    ids_are("Uid", account.uid)
        && ids_are("Gid", account.gid)
        && no_capability("CapPrm")
        && no_capability("CapEff")
        // Kernels before 4.3 have no ambient set, so none to keep.
        && (field("CapAmb").is_none() || no_capability("CapAmb"))
}

/// A directory bootd writes in after start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// What it is, for messages: `the lease file's directory`.
    pub what: String,
    /// The option that names it, for messages: `[bootp] lease_file`.
    pub option: &'static str,
    pub dir: PathBuf,
    /// The names bootd itself keeps there: the directory may be given to the user
    /// when it holds nothing else.
    pub own_files: Vec<OsString>,
}

/// What to do about a [`Place`] for the user bootd will run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The user can write there already.
    Writable,
    /// The directory is bootd's own (missing, to be created by bootd, or holding
    /// only bootd's files): give it to the user at start.
    Give,
    /// The user could not write there, and bootd will not give it away: the text
    /// says why and what to do.
    NotWritable(String),
}

/// Judges `place` for `run_as`, looking at the file system.
pub fn judge(place: &Place, run_as: &RunAs) -> Verdict {
    let dir = &place.dir;
    let shown = dir.display();
    let account = match run_as {
        RunAs::Root => return Verdict::Writable,
        RunAs::AsStarted => {
            // Who runs is who writes: the kernel can say (modes, ACLs, read-only
            // mounts). A missing directory is created by the code that needs it,
            // which reports its own failures.
            if !dir.exists() {
                return Verdict::Writable;
            }
            return match accessible(dir, libc::W_OK | libc::X_OK) {
                Ok(()) => Verdict::Writable,
                Err(e) => Verdict::NotWritable(format!(
                    "{}: bootd cannot write in {shown}, {} ({e}); make it writable by this user",
                    place.option, place.what
                )),
            };
        }
        RunAs::User(account) => account,
    };
    if let Some(ancestor) = unreachable_ancestor(dir, account) {
        return Verdict::NotWritable(format!(
            "{}: {shown}, {}, is out of reach of the user {}: {} does not let it through; move it, or run as root with [bootd] user = root",
            place.option,
            place.what,
            account.name,
            ancestor.display()
        ));
    }
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        // bootd creates it at start, as root, and gives it to the user then.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Verdict::Give,
        Err(e) => {
            return Verdict::NotWritable(format!(
                "{}: cannot examine {shown}, {}: {e}",
                place.option, place.what
            ));
        }
    };
    if read_only(dir) {
        return Verdict::NotWritable(format!(
            "{}: {shown}, {}, is on a read-only file system",
            place.option, place.what
        ));
    }
    if meta.is_dir() && permits(&meta, account, 0o3) {
        return Verdict::Writable;
    }
    match foreign_entry(dir, &place.own_files) {
        Ok(None) if meta.is_dir() => Verdict::Give,
        Ok(found) => Verdict::NotWritable(format!(
            "{}: the user {} could not write in {shown}, {}, and bootd gives away only a directory of its own ({} is not bootd's); give it to that user (chown {} {shown}), or point the option at a directory of bootd's own",
            place.option,
            account.name,
            place.what,
            found.map_or_else(|| shown.to_string(), |f| f.display().to_string()),
            account.name,
        )),
        Err(e) => Verdict::NotWritable(format!(
            "{}: cannot list {shown}, {}: {e}",
            place.option, place.what
        )),
    }
}

/// Gives `place`'s directory, and bootd's own files in it, to `account`.
pub fn give(place: &Place, account: &Account) -> io::Result<()> {
    std::os::unix::fs::lchown(&place.dir, Some(account.uid), Some(account.gid))?;
    for name in &place.own_files {
        let path = place.dir.join(name);
        match std::os::unix::fs::lchown(&path, Some(account.uid), Some(account.gid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Gives a file bootd created (its log file) to `account`.
pub fn give_file(path: &Path, account: &Account) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(account.uid), Some(account.gid))
}

/// Whether `meta`'s mode lets `account` do `bits` (`0o4` read, `0o2` write, `0o1`
/// search; combined), as owner, through its primary group, or as anyone else.
fn permits(meta: &fs::Metadata, account: &Account, bits: u32) -> bool {
    let mode = meta.mode();
    let granted = if meta.uid() == account.uid {
        mode >> 6
    } else if meta.gid() == account.gid {
        mode >> 3
    } else {
        mode
    };
    granted & bits == bits
}

/// How bootd reaches a directory it serves files from after the drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Opened before the drop and held open (the TFTP and HTTP roots): files are
    /// opened relative to it, so only the directory itself must let the user in.
    HeldOpen,
    /// Opened by its path each time (an operating system's folder): every
    /// directory above it must let the user through too.
    ByPath,
}

/// Why the user bootd becomes could not open the files under `dir`, which `option`
/// names as `what`. `None` when it can (or bootd stays root, or `dir` is missing:
/// the option's own check says so). Files are opened after the drop, so a folder
/// only root can enter would fail every request instead of the start.
pub fn unreadable(
    dir: &Path,
    reach: Reach,
    option: &str,
    what: &str,
    run_as: &RunAs,
) -> Option<String> {
    let RunAs::User(account) = run_as else {
        return None;
    };
    let meta = fs::metadata(dir).ok()?;
    let shown = dir.display();
    let blocking = match reach {
        Reach::ByPath => unreachable_ancestor(dir, account),
        Reach::HeldOpen => None,
    };
    if let Some(ancestor) = blocking {
        return Some(format!(
            "{option}: {shown}, {what}, is out of reach of the user {}: {} does not let it through; let it (chmod o+x {}), move the files, or run as root with [bootd] user = root",
            account.name,
            ancestor.display(),
            ancestor.display()
        ));
    }
    (meta.is_dir() && !permits(&meta, account, 0o5)).then(|| {
        format!(
            "{option}: {shown}, {what}, cannot be read by the user {} (mode {:04o}, owner uid {}); make it readable (chmod o+rx {shown}), or run as root with [bootd] user = root",
            account.name,
            meta.mode() & 0o7777,
            meta.uid()
        )
    })
}

/// The first directory above `dir` that `account` may not pass through.
fn unreachable_ancestor(dir: &Path, account: &Account) -> Option<PathBuf> {
    dir.ancestors().skip(1).find_map(|ancestor| {
        let meta = fs::metadata(ancestor).ok()?;
        (!permits(&meta, account, 0o1)).then(|| ancestor.to_path_buf())
    })
}

/// Whether `path` lies on a read-only mount (even root cannot write there).
fn read_only(path: &Path) -> bool {
    matches!(
        accessible(path, libc::W_OK),
        Err(e) if e.raw_os_error() == Some(libc::EROFS)
    )
}

/// The first entry of `dir` that is not one of `own`.
fn foreign_entry(dir: &Path, own: &[OsString]) -> io::Result<Option<PathBuf>> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if !own.contains(&name) {
            return Ok(Some(dir.join(name)));
        }
    }
    Ok(None)
}

/// Whether this process may `mode` `path`, as its effective user.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.into(),
            uid,
            gid: uid,
        }
    }

    /// A user database of `root`, `nobody` and whatever `extra` adds.
    fn users(
        extra: &'static [(&'static str, u32)],
    ) -> impl Fn(&str) -> io::Result<Option<Account>> {
        move |name| {
            let known = [("root", 0), ("nobody", 65534)];
            Ok(known
                .iter()
                .chain(extra)
                .find(|(n, _)| *n == name)
                .map(|(n, uid)| account(n, *uid)))
        }
    }

    #[test]
    fn a_process_not_started_as_root_stays_who_it_is() {
        assert_eq!(choose(1000, None, users(&[])), Ok(RunAs::AsStarted));
        assert_eq!(
            choose(1000, Some("bootd"), users(&[])),
            Ok(RunAs::AsStarted)
        );
    }

    #[test]
    fn root_becomes_bootd_else_nobody_else_refuses() {
        assert_eq!(
            choose(0, None, users(&[("bootd", 120)])),
            Ok(RunAs::User(account("bootd", 120)))
        );
        assert_eq!(
            choose(0, None, users(&[])),
            Ok(RunAs::User(account("nobody", 65534)))
        );
        let none = |_: &str| Ok(None);
        let e = choose(0, None, none).unwrap_err();
        assert!(e.contains("this host has neither"), "{e}");
    }

    #[test]
    fn the_configured_user_wins_and_root_keeps_root() {
        assert_eq!(
            choose(0, Some("svc"), users(&[("svc", 999), ("bootd", 120)])),
            Ok(RunAs::User(account("svc", 999)))
        );
        assert_eq!(choose(0, Some("root"), users(&[])), Ok(RunAs::Root));
        // Another name for uid 0 is root all the same.
        assert_eq!(
            choose(0, Some("toor"), users(&[("toor", 0)])),
            Ok(RunAs::Root)
        );
        let e = choose(0, Some("ghost"), users(&[])).unwrap_err();
        assert!(
            e.starts_with("[bootd] user = ghost: no such user on this host"),
            "{e}"
        );
    }

    #[test]
    fn this_hosts_root_is_found() {
        let root = lookup("root").unwrap().expect("every host has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup("no-such-user-of-bootd").unwrap(), None);
    }

    #[test]
    fn credentials_are_dropped_when_every_id_is_the_users_and_no_capability_is_left() {
        let status = |uid: &str, cap_eff: &str| {
            format!(
                "Name:\tbootp\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t{cap_eff}\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n"
            )
        };
        let nobody = account("nobody", 65534);
        assert!(credentials_dropped(
            &status("65534", "0000000000000000"),
            &nobody
        ));
        assert!(!credentials_dropped(
            &status("65534", "0000000000000400"),
            &nobody
        ));
        assert!(!credentials_dropped(
            &status("0", "0000000000000000"),
            &nobody
        ));
        assert!(!credentials_dropped("Name:\tx\n", &nobody));
    }

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let path =
                std::env::temp_dir().join(format!("bootd-privileges-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn place(dir: &Path) -> Place {
        Place {
            what: "the lease file's directory".into(),
            option: "[bootp] lease_file",
            dir: dir.to_path_buf(),
            own_files: vec!["leases".into(), "leases.lock".into()],
        }
    }

    /// What a user who owns nothing, in no group, may do: the "other" bits decide.
    #[test]
    fn a_directory_is_given_only_when_it_holds_nothing_but_bootds_files() {
        let scratch = Scratch::new("give");
        let stranger = RunAs::User(account("stranger", 4_000_000));
        let dir = scratch.0.join("lib");
        // Missing: bootd creates it, then gives it.
        assert_eq!(judge(&place(&dir), &stranger), Verdict::Give);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(judge(&place(&dir), &stranger), Verdict::Give);
        fs::write(dir.join("leases"), "").unwrap();
        fs::write(dir.join("leases.lock"), "").unwrap();
        assert_eq!(judge(&place(&dir), &stranger), Verdict::Give);
        fs::write(dir.join("notes.txt"), "").unwrap();
        match judge(&place(&dir), &stranger) {
            Verdict::NotWritable(why) => {
                assert!(why.contains("notes.txt is not bootd's"), "{why}");
                assert!(why.contains("chown stranger"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // Writable by anyone: nothing to give.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(judge(&place(&dir), &stranger), Verdict::Writable);
        // Root stays root, and may write anywhere it could before.
        assert_eq!(judge(&place(&dir), &RunAs::Root), Verdict::Writable);
    }

    #[test]
    fn a_served_directory_the_user_cannot_reach_or_read_is_named_with_the_fix() {
        let scratch = Scratch::new("readable");
        let outer = scratch.0.join("outer");
        let served = outer.join("root");
        fs::create_dir_all(&served).unwrap();
        fs::set_permissions(&scratch.0, fs::Permissions::from_mode(0o755)).unwrap();
        let user = RunAs::User(account("nobody", 65534));
        let check = || unreadable(&served, Reach::ByPath, "[os x] dir", "the files", &user);
        fs::set_permissions(&outer, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&served, fs::Permissions::from_mode(0o755)).unwrap();
        let said = check().expect("out of reach");
        assert!(said.starts_with("[os x] dir: "), "{said}");
        // Held open since before the drop, it is reached whatever lies above it.
        let held = unreadable(&served, Reach::HeldOpen, "[tftp] root", "x", &user);
        assert_eq!(held, None);
        assert!(said.contains("out of reach of the user nobody"), "{said}");
        assert!(
            said.contains(&format!("chmod o+x {}", outer.display())),
            "{said}"
        );
        fs::set_permissions(&outer, fs::Permissions::from_mode(0o711)).unwrap();
        fs::set_permissions(&served, fs::Permissions::from_mode(0o700)).unwrap();
        let said = check().expect("unreadable");
        assert!(
            said.contains("cannot be read by the user nobody (mode 0700"),
            "{said}"
        );
        fs::set_permissions(&served, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check(), None);
        assert_eq!(
            unreadable(&served, Reach::ByPath, "o", "x", &RunAs::Root),
            None
        );
        let missing = outer.join("missing");
        assert_eq!(unreadable(&missing, Reach::ByPath, "o", "x", &user), None);
    }

    #[test]
    fn a_directory_behind_one_the_user_cannot_pass_is_out_of_reach() {
        let scratch = Scratch::new("reach");
        let closed = scratch.0.join("closed");
        let dir = closed.join("lib");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        let stranger = RunAs::User(account("stranger", 4_000_000));
        match judge(&place(&dir), &stranger) {
            Verdict::NotWritable(why) => assert!(why.contains("out of reach"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
