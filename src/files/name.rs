//! Requested names checked and made relative to the root of the boot files (pure,
//! lexical), for every service that serves them.
//!
//! A requested name is checked and normalised by [`normalise`]: it must be a path of
//! plain segments. A leading `/` means the root, as for tftpd-hpa `-s` and
//! dnsmasq: GRUB's network images ask for `/grub/grub.cfg` (their prefix is an absolute
//! path on the `(tftp)` device), Debian's netboot GRUB for
//! `/debian-installer/amd64/grub/grub.cfg`, and pxelinux configurations may name
//! `/vmlinuz`. Anything that could climb out of the root, or mean something
//! different to another layer (a web server decoding `%2e`, Windows reading `\`, C code
//! stopping at NUL), is refused outright rather than cleaned up: a client that asks for
//! such a name is either broken or hostile, and it is refused (TFTP ERROR 2).
//!
//! Symlinks are [`super::root`]'s part: it opens the name from a descriptor of the
//! root, so that no symlink, even one swapped in while the name is being opened,
//! leads out of it.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Longest requested name accepted, in bytes (a PXE name is rarely over 100).
pub const MAX_NAME_LEN: usize = 1024;
/// Longest single segment (Linux NAME_MAX).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Why a requested name was refused. All map to TFTP ERROR 2 (access violation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Empty,
    TooLong,
    /// `..` or any other segment made only of dots (`...`, `....`).
    DotSegment,
    Backslash,
    Nul,
    ControlCharacter,
    PercentEscape,
    /// A Windows drive prefix such as `C:`.
    DrivePrefix,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Refusal::Empty => "empty file name",
            Refusal::TooLong => "file name too long",
            Refusal::DotSegment => "'..' (or dots-only) path segment",
            Refusal::Backslash => "backslash in file name",
            Refusal::Nul => "NUL byte in file name",
            Refusal::ControlCharacter => "control character in file name",
            Refusal::PercentEscape => "percent-escape in file name",
            Refusal::DrivePrefix => "drive prefix in file name",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Refusal {}

/// Checks `requested` and returns it normalised: relative to the root, `/`-separated,
/// without empty or `.` segments (a leading `/` or `./` and `//` runs disappear).
pub fn normalise(requested: &str) -> Result<String, Refusal> {
    if requested.is_empty() {
        return Err(Refusal::Empty);
    }
    if requested.len() > MAX_NAME_LEN {
        return Err(Refusal::TooLong);
    }
    let bytes = requested.as_bytes();
    if bytes.contains(&0) {
        return Err(Refusal::Nul);
    }
    if bytes.iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err(Refusal::ControlCharacter);
    }
    if bytes.contains(&b'\\') {
        return Err(Refusal::Backslash);
    }
    if has_percent_escape(bytes) {
        return Err(Refusal::PercentEscape);
    }
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(Refusal::DrivePrefix);
    }
    let mut segments = Vec::new();
    for segment in requested.split('/') {
        if segment.is_empty() || segment == "." {
            continue;
        }
        if segment.bytes().all(|b| b == b'.') {
            return Err(Refusal::DotSegment);
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(Refusal::TooLong);
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        return Err(Refusal::Empty);
    }
    Ok(segments.join("/"))
}

/// `%` followed by two hex digits anywhere: `%2e%2e`, `%2f`, `%00`, double-encoded
/// `%252e` (its `%25`) and so on. Refused, never decoded.
fn has_percent_escape(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| {
        w.first() == Some(&b'%')
            && w.get(1).is_some_and(u8::is_ascii_hexdigit)
            && w.get(2).is_some_and(u8::is_ascii_hexdigit)
    })
}

/// The path of `requested` under `root`, never outside it lexically.
pub fn resolve(root: &Path, requested: &str) -> Result<PathBuf, Refusal> {
    let relative = normalise(requested)?;
    let path = root.join(&relative);
    // Belt and braces: `normalise` leaves only normal segments.
    if Path::new(&relative)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(Refusal::DotSegment);
    }
    Ok(path)
}

/// Whether `candidate` (an absolute symlink target) is `root` (canonical) or below
/// it. Compared by path components, not string prefixes, so `/srv/tftp-other` is not
/// inside `/srv/tftp`.
pub fn is_within(root_canonical: &Path, candidate: &Path) -> bool {
    candidate.starts_with(root_canonical)
}

/// The URL of `requested` under an `http://` root `prefix`: the same refusals as for
/// a directory, joined with exactly one `/`, and every byte outside the unreserved set
/// (RFC 3986) percent-encoded so that `?`, `#`, spaces and the like stay in the path.
pub fn url_for(prefix: &str, requested: &str) -> Result<String, Refusal> {
    let relative = normalise(requested)?;
    let mut url = prefix.trim_end_matches('/').to_owned();
    url.push('/');
    for byte in relative.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(url)
}

/// Names a hostile or broken client asks for, each of which must be refused: every
/// service that serves the boot files is tested with this list.
#[cfg(test)]
pub(crate) const HOSTILE: &[&str] = &[
    "../etc/passwd",
    "..",
    "../",
    "a/../../etc/shadow",
    "pxelinux.cfg/../../x",
    "a/b/../../../c",
    "..\\..\\windows\\win.ini",
    "..\\",
    "a\\b",
    "/",
    "/../etc/passwd",
    "//..//etc/passwd",
    "%2e%2e/etc/passwd",
    "%2E%2E%2Fetc%2Fpasswd",
    "..%2fetc%2fpasswd",
    "%252e%252e/etc/passwd",
    "a%00.txt",
    "%2fetc/passwd",
    "....//....//etc/passwd",
    "...",
    "a/.../b",
    ".../",
    "a\0b",
    "pxelinux.0\0../../etc/passwd",
    "\0",
    "a\nb",
    "a\rb",
    "\x1b[31m",
    "a\x7fb",
    "\t",
    "C:\\Windows\\system32",
    "c:/boot.ini",
    "./../etc/passwd",
    "././../x",
    "a/./../..",
    "",
    ".",
    "./",
    "//",
    "./././",
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_names_are_refused() {
        let root = Path::new("/srv/tftp");
        let mut refused = 0;
        for name in HOSTILE {
            assert!(resolve(root, name).is_err(), "{name:?} was accepted");
            assert!(
                url_for("http://mirror/d-i", name).is_err(),
                "{name:?} (url)"
            );
            refused += 1;
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(resolve(root, &long), Err(Refusal::TooLong));
        let long_segment = format!("d/{}", "b".repeat(300));
        assert_eq!(resolve(root, &long_segment), Err(Refusal::TooLong));
        let deep = "../".repeat(300);
        assert!(resolve(root, &deep).is_err());
        refused += 3;
        assert!(refused >= 30);
    }

    #[test]
    fn refusal_kinds() {
        assert_eq!(normalise("../x"), Err(Refusal::DotSegment));
        assert_eq!(normalise("/"), Err(Refusal::Empty));
        assert_eq!(normalise("/../x"), Err(Refusal::DotSegment));
        assert_eq!(normalise("a\\x"), Err(Refusal::Backslash));
        assert_eq!(normalise("a\0x"), Err(Refusal::Nul));
        assert_eq!(normalise("a\x01x"), Err(Refusal::ControlCharacter));
        assert_eq!(normalise("%2e%2e"), Err(Refusal::PercentEscape));
        assert_eq!(normalise("C:x"), Err(Refusal::DrivePrefix));
        assert_eq!(normalise(""), Err(Refusal::Empty));
        assert_eq!(normalise("./"), Err(Refusal::Empty));
    }

    #[test]
    fn ordinary_names_are_normalised() {
        let root = Path::new("/srv/tftp");
        for (name, expected) in [
            ("pxelinux.0", "/srv/tftp/pxelinux.0"),
            ("./pxelinux.0", "/srv/tftp/pxelinux.0"),
            ("pxelinux.cfg//default", "/srv/tftp/pxelinux.cfg/default"),
            (
                "./debian-installer/amd64/linux",
                "/srv/tftp/debian-installer/amd64/linux",
            ),
            ("a/./b", "/srv/tftp/a/b"),
            ("dir/", "/srv/tftp/dir"),
            (".hidden", "/srv/tftp/.hidden"),
            ("a..b", "/srv/tftp/a..b"),
            ("..a", "/srv/tftp/..a"),
            ("100%", "/srv/tftp/100%"),
            ("50%off", "/srv/tftp/50%off"),
            (
                "grub/x86_64-efi/normal.mod",
                "/srv/tftp/grub/x86_64-efi/normal.mod",
            ),
            ("ünïcode", "/srv/tftp/ünïcode"),
        ] {
            assert_eq!(resolve(root, name), Ok(PathBuf::from(expected)), "{name}");
        }
    }

    /// GRUB asks for `/grub/grub.cfg`: a leading `/` is the TFTP root, never the
    /// host's root.
    #[test]
    fn rooted_names_are_taken_from_the_tftp_root() {
        let root = Path::new("/srv/tftp");
        for (name, expected) in [
            ("/grub/grub.cfg", "/srv/tftp/grub/grub.cfg"),
            (
                "/debian-installer/amd64/grub/grub.cfg",
                "/srv/tftp/debian-installer/amd64/grub/grub.cfg",
            ),
            ("//vmlinuz", "/srv/tftp/vmlinuz"),
            ("/etc/passwd", "/srv/tftp/etc/passwd"),
            ("/srv/tftp/pxelinux.0", "/srv/tftp/srv/tftp/pxelinux.0"),
        ] {
            assert_eq!(resolve(root, name), Ok(PathBuf::from(expected)), "{name}");
        }
        assert_eq!(
            url_for("http://h/netboot", "/grub/grub.cfg"),
            Ok("http://h/netboot/grub/grub.cfg".into())
        );
    }

    #[test]
    fn within_compares_components() {
        let root = Path::new("/srv/tftp");
        assert!(is_within(root, Path::new("/srv/tftp/pxelinux.0")));
        assert!(is_within(root, Path::new("/srv/tftp")));
        assert!(!is_within(root, Path::new("/srv/tftp-other/x")));
        assert!(!is_within(root, Path::new("/etc/passwd")));
        assert!(!is_within(root, Path::new("/srv")));
        assert!(!is_within(root, Path::new("/etc/shadow")));
    }

    #[test]
    fn urls_join_with_one_slash_and_encode() {
        assert_eq!(
            url_for("http://deb.debian.org/debian/dists/stable/main/installer-amd64/current/images/netboot", "./pxelinux.0"),
            Ok("http://deb.debian.org/debian/dists/stable/main/installer-amd64/current/images/netboot/pxelinux.0".into())
        );
        assert_eq!(url_for("http://h/p/", "a//b"), Ok("http://h/p/a/b".into()));
        assert_eq!(
            url_for("http://h", "x y?z#w"),
            Ok("http://h/x%20y%3Fz%23w".into())
        );
        assert_eq!(
            url_for("http://h/p", "100%"),
            Ok("http://h/p/100%25".into())
        );
    }

    proptest! {
        #[test]
        fn accepted_names_stay_inside_the_root(name in "[a-z./\\\\%0-9\\x00-\\x1f]{0,40}") {
            let root = Path::new("/srv/tftp");
            if let Ok(path) = resolve(root, &name) {
                prop_assert!(path.starts_with(root));
                prop_assert!(path.components().skip(3).all(|c| matches!(c, Component::Normal(_))));
                let text = path.to_string_lossy();
                prop_assert!(!text.contains("/../") && !text.ends_with("/.."));
            }
        }

        #[test]
        fn normalise_never_panics(name in any::<String>()) {
            let _ = normalise(&name);
            let _ = url_for("http://h/", &name);
        }
    }
}
