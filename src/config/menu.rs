//! The operating systems of the boot menu, completed and checked once every section
//! is read: each `[os NAME]` section's folder, the OSes of a BootTorrent `oss/`
//! folder (its `NAME/config.yaml` files read unchanged, with the YAML crate), and the
//! rules a menu must keep: known methods, the files each method needs present in the
//! OS's folder, names fit for URLs, labels that tell the entries apart, and a default
//! that names one of them.
//!
//! Order is configuration order: the `[os NAME]` sections as written, then the
//! `oss/` folder's OSes by NAME (BootTorrent showed them in random order).

use std::path::{Component, Path, PathBuf};

use yaml_rust2::parser::{Event, EventReceiver, Parser};
use yaml_rust2::{Yaml, YamlLoader};

use super::load::Problem;
use super::options::boot_method;
use super::types::{BootMethod, MenuConfig, OsConfig};

/// A BootTorrent OS's description file, in its folder.
const YAML_FILE: &str = "config.yaml";
/// Larger description files are refused unread: one holds a handful of keys.
const YAML_MAX_BYTES: u64 = 64 * 1024;

/// Fills in each OS's folder, appends the `oss/` folder's OSes and checks them all.
pub(super) fn finish(menu: &mut MenuConfig, file: &str, base: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    for os in &mut menu.oss {
        if os.dir.as_os_str().is_empty() {
            os.dir = base.join(&os.name);
        }
    }
    if let Some(dir) = menu.oss_dir.clone() {
        match read_oss_dir(&dir) {
            Ok(found) => {
                for result in found {
                    match result {
                        Ok(os) if menu.oss.iter().any(|o| o.name == os.name) => {
                            problems.push(Problem::error(
                                None,
                                format!(
                                    "{}: the operating system {} is also an [os {}] section; keep one of them",
                                    os.origin, os.name, os.name
                                ),
                            ));
                        }
                        Ok(os) => menu.oss.push(os),
                        Err(message) => problems.push(Problem::error(None, message)),
                    }
                }
            }
            Err(message) => problems.push(Problem::error(None, message)),
        }
    }
    for (index, os) in menu.oss.iter().enumerate() {
        for message in check_os(os) {
            problems.push(Problem::error(None, message));
        }
        if let Some(twin) = menu
            .oss
            .iter()
            .take(index)
            .find(|o| o.display == os.display)
        {
            problems.push(Problem::error(
                None,
                format!(
                    "{}: the label `{}` is also {}'s ({}); the menu's entries must differ",
                    os.origin, os.display, twin.name, twin.origin
                ),
            ));
        }
    }
    match &menu.default {
        Some(default) if !menu.oss.iter().any(|o| &o.name == default) => {
            let names: Vec<&str> = menu.oss.iter().map(|o| o.name.as_str()).collect();
            problems.push(Problem::error(
                None,
                format!(
                    "{file}: [menu] default = {default}: no operating system has that name (the menu has: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        _ => {}
    }
    problems
}

/// The OSes of a BootTorrent `oss/` folder, by folder name: one result per folder
/// (its error, naming the file and key, if it cannot be used).
fn read_oss_dir(dir: &Path) -> Result<Vec<Result<OsConfig, String>>, String> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: [menu] oss: cannot list the folder: {e}", dir.display()))?;
    let mut folders: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    Ok(folders
        .iter()
        .map(|folder| read_os_folder(folder))
        .collect())
}

/// One `oss/NAME/` folder, described by its `config.yaml`.
pub(super) fn read_os_folder(folder: &Path) -> Result<OsConfig, String> {
    let name = folder
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: the folder's name is not UTF-8", folder.display()))?
        .to_string();
    let path = folder.join(YAML_FILE);
    let shown = path.display().to_string();
    let size = std::fs::metadata(&path)
        .map_err(|e| format!("{shown}: cannot read it: {e}"))?
        .len();
    if size > YAML_MAX_BYTES {
        return Err(format!(
            "{shown}: {size} bytes is too large for an OS description (at most {YAML_MAX_BYTES})"
        ));
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    parse_os_yaml(&name, folder, &shown, &text)
}

/// A BootTorrent `config.yaml`: `dispname`, `method`, `kernel`, `initrd`, `cmdline`,
/// `bin`, `binargs`. `shown` names the file in errors.
pub(super) fn parse_os_yaml(
    name: &str,
    folder: &Path,
    shown: &str,
    text: &str,
) -> Result<OsConfig, String> {
    // The loader copies an alias's node wherever it is used, so a few lines of
    // nested aliases would grow into billions of nodes: an OS description has no
    // use for them, and they are refused before anything is built.
    let mut aliases = AliasCount(0);
    Parser::new_from_str(text)
        .load(&mut aliases, true)
        .map_err(|e| format!("{shown}: not YAML: {e}"))?;
    if aliases.0 > 0 {
        return Err(format!(
            "{shown}: aliases (*name) are not accepted in an OS description"
        ));
    }
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("{shown}: not YAML: {e}"))?;
    let Some(Yaml::Hash(map)) = docs.first() else {
        return Err(format!("{shown}: not a mapping of keys to values"));
    };
    let mut os = OsConfig {
        name: name.to_string(),
        display: String::new(),
        method: BootMethod::Kexec,
        dir: folder.to_path_buf(),
        kernel: None,
        initrd: None,
        cmdline: String::new(),
        bin: None,
        binargs: String::new(),
        image: None,
        origin: shown.to_string(),
    };
    let mut method = None;
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            return Err(format!("{shown}: a key is not text: {key:?}"));
        };
        let text = scalar(value).ok_or_else(|| {
            format!(
                "{shown}: {key}: expected a single value (text or number), not a list or mapping"
            )
        })?;
        match key {
            "dispname" => os.display = text,
            "method" => {
                method = Some(boot_method(&text).map_err(|e| format!("{shown}: method: {e}"))?)
            }
            "kernel" => os.kernel = Some(text).filter(|t| !t.is_empty()),
            "initrd" => os.initrd = Some(text).filter(|t| !t.is_empty()),
            "cmdline" => os.cmdline = text,
            "bin" => os.bin = Some(text).filter(|t| !t.is_empty()),
            "binargs" => os.binargs = text,
            "image" => os.image = Some(text).filter(|t| !t.is_empty()),
            "args" => {
                return Err(format!(
                    "{shown}: args: QEMU's arguments belong to BootTorrent's bin-qemu-x86_64, which bootd replaces with iPXE's sanboot of the ISO over HTTP"
                ));
            }
            other => {
                return Err(format!(
                    "{shown}: {other}: unknown key (an OS takes dispname, method, kernel, initrd, cmdline, bin, binargs, image)"
                ));
            }
        }
    }
    if os.display.is_empty() {
        return Err(format!("{shown}: dispname: required (the menu's label)"));
    }
    os.method = method
        .ok_or_else(|| format!("{shown}: method: required (kexec, direct, bin or sanboot)"))?;
    Ok(os)
}

/// Counts the aliases of a YAML text, building nothing.
struct AliasCount(usize);

impl EventReceiver for AliasCount {
    fn on_event(&mut self, event: Event) {
        if matches!(event, Event::Alias(_)) {
            self.0 += 1;
        }
    }
}

/// A YAML scalar as the text it stands for; `None` for a list or mapping.
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.trim().to_string()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

/// What is wrong with one OS: its name, its method's files, its folder.
pub(super) fn check_os(os: &OsConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let at = &os.origin;
    if !fit_for_urls(&os.name) {
        problems.push(format!(
            "{at}: the name `{}` cannot name a torrent and a URL: use letters, digits, `.`, `_` and `-`, not first `.`",
            os.name
        ));
    }
    let needs: &[(&str, &Option<String>)] = match os.method {
        BootMethod::Kexec => &[("kernel", &os.kernel), ("initrd", &os.initrd)],
        BootMethod::Direct => &[("kernel", &os.kernel)],
        BootMethod::Bin => &[("bin", &os.bin)],
        BootMethod::Sanboot => &[("image", &os.image)],
    };
    for (key, value) in needs {
        if value.is_none() {
            problems.push(format!(
                "{at}: {key}: required by the {} method",
                os.method.as_str()
            ));
        }
    }
    if !os.dir.is_dir() {
        problems.push(format!("{at}: dir: {} is not a folder", os.dir.display()));
        return problems;
    }
    let named = [
        ("kernel", &os.kernel),
        ("initrd", &os.initrd),
        ("bin", &os.bin),
        ("image", &os.image),
    ];
    for (key, value) in named {
        let Some(file) = value else { continue };
        if !inside(file) {
            problems.push(format!(
                "{at}: {key}: {file} must be a file inside the OS's folder {}",
                os.dir.display()
            ));
        } else if !os.dir.join(file).is_file() {
            problems.push(format!(
                "{at}: {key}: {} is not a file",
                os.dir.join(file).display()
            ));
        }
    }
    problems
}

/// Letters, digits, `.`, `_` and `-`, not first `.`: a torrent name and a URL path
/// element as written, with nothing to escape.
pub(crate) fn fit_for_urls(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A relative path that stays inside its folder.
fn inside(file: &str) -> bool {
    let path = Path::new(file);
    !file.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh folder with `files` (path → text) in it.
    fn site(files: &[(&str, &str)]) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bootd-menu-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn load(dir: &Path, ini: &str) -> Result<MenuConfig, String> {
        load_str(&dir.join("bootd.ini"), ini, dir)
            .map(|l| l.config.menu)
            .map_err(|e| e.to_string())
    }

    const ALPINE: &[(&str, &str)] = &[("alpine/vmlinuz", "k"), ("alpine/initrd", "i")];

    #[test]
    fn os_sections_keep_configuration_order_and_their_values() {
        let dir = site(&[
            ("zeta/vmlinuz", "k"),
            ("zeta/initrd", "i"),
            ("srv/alpha/run.sh", "#!/bin/sh"),
        ]);
        let menu = load(
            &dir,
            "[menu]\ndefault = alpha\ntimeout = -1\n\
             [os zeta]\nname = Zeta Linux\nkernel = vmlinuz\ninitrd = initrd\ncmdline = console=ttyS0 \"a b\"\n\
             [os alpha]\nmethod = bin\ndir = srv/alpha\nbin = run.sh\nbinargs = -v -x\n",
        )
        .unwrap();
        assert_eq!(menu.default.as_deref(), Some("alpha"));
        assert_eq!(menu.timeout, -1);
        let names: Vec<&str> = menu.oss.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha"]);
        let zeta = &menu.oss[0];
        assert_eq!(zeta.display, "Zeta Linux");
        assert_eq!(zeta.method, BootMethod::Kexec);
        assert_eq!(zeta.dir, dir.join("zeta"));
        assert_eq!(zeta.cmdline, "console=ttyS0 \"a b\"");
        let alpha = &menu.oss[1];
        assert_eq!(alpha.display, "alpha");
        assert_eq!(alpha.method, BootMethod::Bin);
        assert_eq!(alpha.dir, dir.join("srv/alpha"));
        assert_eq!(alpha.bin.as_deref(), Some("run.sh"));
        assert_eq!(alpha.binargs, "-v -x");
    }

    #[test]
    fn a_boottorrent_oss_folder_loads_unchanged_after_the_sections_by_name() {
        let dir = site(&[
            ("local/vmlinuz", "k"),
            (
                "oss/tinycore/config.yaml",
                "dispname: Tiny Core\nmethod: kexec\nkernel: vmlinuz\ninitrd: core.gz\ncmdline: break\n",
            ),
            ("oss/tinycore/vmlinuz", "k"),
            ("oss/tinycore/core.gz", "i"),
            (
                "oss/hello/config.yaml",
                "dispname: \"Hello\"\nmethod: bin\nbin: hello\nbinargs: 42\n",
            ),
            ("oss/hello/hello", "#!/bin/sh"),
        ]);
        let menu = load(
            &dir,
            "[menu]\noss = oss\n[os local]\nmethod = direct\nkernel = vmlinuz\n",
        )
        .unwrap();
        let names: Vec<&str> = menu.oss.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["local", "hello", "tinycore"]);
        // A section's `dir` defaults to NAME beside the configuration file.
        let local = &menu.oss[0];
        assert_eq!(local.dir, dir.join("local"));
        let hello = &menu.oss[1];
        assert_eq!(hello.display, "Hello");
        assert_eq!(hello.binargs, "42");
        let tiny = &menu.oss[2];
        assert_eq!(tiny.cmdline, "break");
        assert_eq!(tiny.initrd.as_deref(), Some("core.gz"));
        assert!(tiny.origin.ends_with("oss/tinycore/config.yaml"));
    }

    #[test]
    fn yaml_errors_name_the_file_and_the_key() {
        let cases = [
            (
                "method: kexec\nkernel: k\ninitrd: i\n",
                "dispname: required",
            ),
            ("dispname: X\nkernel: k\ninitrd: i\n", "method: required"),
            ("dispname: X\nmethod: boot\n", "method: not a boot method"),
            (
                "dispname: X\nmethod: bin-qemu-x86_64\nargs: -cdrom a.iso\n",
                "method: bin-qemu-x86_64 is not a method of bootd: boot the ISO with method = sanboot",
            ),
            (
                "dispname: X\nargs: -cdrom a.iso\n",
                "args: QEMU's arguments",
            ),
            (
                "dispname: X\nmethod: kexec\ncolour: blue\n",
                "colour: unknown key",
            ),
            (
                "dispname: [a, b]\nmethod: kexec\n",
                "dispname: expected a single value",
            ),
            ("- a\n- b\n", "not a mapping"),
            ("dispname: \"unclosed\n", "not YAML"),
            (
                "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
                "aliases (*name) are not accepted",
            ),
        ];
        let deep = format!("dispname: {}", "[".repeat(60_000));
        let cases = cases.into_iter().chain([(deep.as_str(), "not YAML")]);
        for (text, wanted) in cases {
            let dir = site(&[("oss/x/config.yaml", text)]);
            let error = load(&dir, "[menu]\noss = oss\n").unwrap_err();
            let file = dir.join("oss/x/config.yaml").display().to_string();
            assert!(
                error.contains(&format!("{file}: {wanted}")),
                "{text:?}: {error}"
            );
        }
        let dir = site(&[("oss/x/readme", "")]);
        let error = load(&dir, "[menu]\noss = oss\n").unwrap_err();
        assert!(
            error.contains("oss/x/config.yaml: cannot read it"),
            "{error}"
        );
        let dir = site(&[]);
        let error = load(&dir, "[menu]\noss = nowhere\n").unwrap_err();
        assert!(
            error.contains("[menu] oss: cannot list the folder"),
            "{error}"
        );
    }

    #[test]
    fn each_method_needs_its_files_in_the_folder() {
        let dir = site(&[("a/vmlinuz", "k"), ("b/vmlinuz", "k"), ("outside", "x")]);
        let error = load(&dir, "[os a]\nkernel = vmlinuz\n").unwrap_err();
        assert!(
            error.contains("bootd.ini:1: initrd: required by the kexec method"),
            "{error}"
        );
        // direct needs only the kernel.
        assert!(load(&dir, "[os b]\nmethod = direct\nkernel = vmlinuz\n").is_ok());
        let error = load(&dir, "[os b]\nmethod = bin\n").unwrap_err();
        assert!(error.contains("bin: required by the bin method"), "{error}");
        let error = load(&dir, "[os b]\nmethod = sanboot\n").unwrap_err();
        assert!(
            error.contains("image: required by the sanboot method"),
            "{error}"
        );
        let error = load(&dir, "[os b]\nmethod = sanboot\nimage = live.iso\n").unwrap_err();
        assert!(error.contains("b/live.iso is not a file"), "{error}");
        assert!(load(&dir, "[os b]\nmethod = sanboot\nimage = vmlinuz\n").is_ok());
        let error = load(&dir, "[os b]\nmethod = direct\nkernel = bzImage\n").unwrap_err();
        assert!(
            error.contains("kernel: ") && error.contains("b/bzImage is not a file"),
            "{error}"
        );
        let error = load(&dir, "[os b]\nmethod = direct\nkernel = ../outside\n").unwrap_err();
        assert!(
            error.contains("kernel: ../outside must be a file inside the OS's folder"),
            "{error}"
        );
        let error = load(&dir, "[os c]\nmethod = direct\nkernel = vmlinuz\n").unwrap_err();
        assert!(
            error.contains("dir: ") && error.contains("is not a folder"),
            "{error}"
        );
    }

    #[test]
    fn labels_and_names_must_tell_the_entries_apart() {
        let dir = site(&[
            ("a/vmlinuz", "k"),
            ("b/vmlinuz", "k"),
            ("my os/vmlinuz", "k"),
        ]);
        let error = load(
            &dir,
            "[os a]\nname = Same\nmethod = direct\nkernel = vmlinuz\n\
             [os b]\nname = Same\nmethod = direct\nkernel = vmlinuz\n",
        )
        .unwrap_err();
        assert!(error.contains("the label `Same` is also a's"), "{error}");
        let error = load(&dir, "[os my os]\nmethod = direct\nkernel = vmlinuz\n").unwrap_err();
        assert!(
            error.contains("the name `my os` cannot name a torrent"),
            "{error}"
        );
        let error = load(&dir, "[os]\nmethod = direct\n").unwrap_err();
        assert!(error.contains("[os] needs a name: [os NAME]"), "{error}");
        let dir = site(&[
            (
                "oss/a/config.yaml",
                "dispname: A\nmethod: direct\nkernel: vmlinuz\n",
            ),
            ("oss/a/vmlinuz", "k"),
        ]);
        let error = load(
            &dir,
            "[menu]\noss = oss\n[os a]\nname = Other\nmethod = direct\nkernel = vmlinuz\n",
        )
        .unwrap_err();
        assert!(
            error.contains("the operating system a is also an [os a] section"),
            "{error}"
        );
    }

    #[test]
    fn the_default_must_name_an_operating_system() {
        let dir = site(ALPINE);
        let ini = "[menu]\ndefault = debian\n[os alpine]\nkernel = vmlinuz\ninitrd = initrd\n";
        let error = load(&dir, ini).unwrap_err();
        assert!(
            error.contains(
                "[menu] default = debian: no operating system has that name (the menu has: alpine)"
            ),
            "{error}"
        );
        let error = load(&dir, "[menu]\ndefault = debian\n").unwrap_err();
        assert!(error.contains("(the menu has: none)"), "{error}");
    }

    #[test]
    fn menu_values_are_checked() {
        let dir = site(ALPINE);
        let os = "[os alpine]\nkernel = vmlinuz\ninitrd = initrd\n";
        let cases = [
            (
                "timeout = soon",
                "timeout = soon: not a whole number of seconds",
            ),
            ("tracker = udp://10.0.0.1:6969", "only http:// trackers"),
            ("url = ftp://10.0.0.1", "url = ftp://10.0.0.1"),
            ("seed_time = -5", "seed_time = -5: not a whole number"),
            (
                "phase1_kernel = ../vmlinuz",
                "not a file name under the HTTP root",
            ),
        ];
        for (line, wanted) in cases {
            let error = load(&dir, &format!("[menu]\n{line}\n{os}")).unwrap_err();
            assert!(error.contains(wanted), "{line}: {error}");
        }
        let error = load(&dir, "[os alpine]\nmethod = pxe\n").unwrap_err();
        assert!(
            error.contains("[os alpine] method = pxe: not a boot method"),
            "{error}"
        );
        let menu = load(
            &dir,
            &format!("[menu]\ntimeout = 0\nurl = http://10.0.0.1:8080/\ntracker = http://10.0.0.1:6969/announce\n{os}"),
        )
        .unwrap();
        assert_eq!(menu.timeout, 0);
        assert_eq!(menu.url.as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(
            menu.tracker.as_deref(),
            Some("http://10.0.0.1:6969/announce")
        );
        assert_eq!(menu.seed_time, 30);
        assert_eq!(menu.phase1_kernel, "phase1/vmlinuz");
    }

    #[test]
    fn an_unknown_key_in_an_os_section_is_a_warning() {
        let dir = site(ALPINE);
        let loaded = load_str(
            &dir.join("bootd.ini"),
            "[os alpine]\nkernel = vmlinuz\ninitrd = initrd\ncolour = blue\n",
            &dir,
        )
        .unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("unknown option [os] colour")),
            "{:?}",
            loaded.warnings
        );
    }
}
