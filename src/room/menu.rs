//! The iPXE boot menu, made from the configuration: entries in configuration order,
//! the default highlighted, a countdown, and a key for the iPXE shell. Served at
//! [`MENU_PATH`]; point iPXE clients' boot file at `http://…/menu.ipxe`.
//!
//! A `direct` entry has iPXE load the OS's kernel and initrd over HTTP, a `sanboot`
//! entry has it boot the OS's disk image (an ISO) over HTTP; a `kexec` or
//! `bin` entry boots phase 1 with the OS's name, bootd's URL and the torrent's URL on
//! its command line (`bootd.os=`, `bootd.url=`, `bootd.torrent=`, `bootd.seed_time=`).
//! Phase 1 then reads [`description`] (`torrents/NAME.boot`) for what to start.
//!
//! The text is a pure function of the configuration: a reload makes a new one.

use std::fmt::Write as _;

use crate::config::{BootMethod, MenuConfig, OsConfig};

/// Where the HTTP service serves the menu.
pub const MENU_PATH: &str = "menu.ipxe";

/// The published name of an OS's torrent.
pub fn torrent_path(os: &str) -> String {
    format!("torrents/{os}.torrent")
}

/// The published name of an OS's description for phase 1.
pub fn description_path(os: &str) -> String {
    format!("torrents/{os}.boot")
}

/// The published folder of an OS's files (also the web seed's root: a client adds
/// `NAME/FILE`).
pub const OSS_PREFIX: &str = "oss/";

/// The iPXE script of the menu; `url` is bootd's HTTP base URL (no trailing `/`).
pub fn render(menu: &MenuConfig, url: &str) -> String {
    let mut out = String::from("#!ipxe\n");
    out.push_str("# The boot menu bootd makes from its configuration.\n");
    let default = menu
        .default
        .as_deref()
        .and_then(|d| menu.oss.iter().find(|os| os.name == d))
        .or_else(|| menu.oss.first());
    if let Some(default) = default
        && menu.timeout == 0
    {
        // Boots at once; the menu stays for when that boot fails.
        let _ = writeln!(out, "goto os-{}", default.name);
    }
    out.push_str(":menu\n");
    let title = match default {
        Some(os) if menu.timeout > 0 => format!(
            "Choose an operating system ({} boots in {} s)",
            one_line(&os.display),
            menu.timeout
        ),
        _ => "Choose an operating system".to_string(),
    };
    let _ = writeln!(out, "menu {title}");
    for os in &menu.oss {
        let _ = writeln!(out, "item os-{} {}", os.name, one_line(&os.display));
    }
    out.push_str("item --gap\n");
    out.push_str("item --key s shell iPXE shell (s)\n");
    let mut choose = String::from("choose");
    if let Some(default) = default {
        let _ = write!(choose, " --default os-{}", default.name);
        if menu.timeout > 0 {
            let _ = write!(choose, " --timeout {}", menu.timeout.saturating_mul(1000));
        }
    }
    let _ = writeln!(out, "{choose} choice || goto shell");
    out.push_str("goto ${choice}\n");
    for os in &menu.oss {
        entry(&mut out, menu, os, url);
    }
    out.push_str(":failed\n");
    out.push_str("echo The boot failed; back to the menu in 5 seconds.\n");
    out.push_str("sleep 5\n");
    out.push_str("goto menu\n");
    out.push_str(":shell\n");
    out.push_str("echo Type exit to come back to the menu.\n");
    out.push_str("shell\n");
    out.push_str("goto menu\n");
    out
}

/// One entry's label and commands.
fn entry(out: &mut String, menu: &MenuConfig, os: &OsConfig, url: &str) {
    let name = &os.name;
    let _ = writeln!(out, ":os-{name}");
    let _ = writeln!(out, "echo Booting {}", one_line(&os.display));
    out.push_str("imgfree\n");
    match os.method {
        BootMethod::Direct => {
            let kernel = os.kernel.as_deref().unwrap_or_default();
            let base = format!("{url}/{OSS_PREFIX}{name}");
            let mut args = String::new();
            if let Some(initrd) = &os.initrd {
                let _ = write!(args, " initrd={}", file_name(initrd));
            }
            if !os.cmdline.is_empty() {
                let _ = write!(args, " {}", one_line(&os.cmdline));
            }
            let _ = writeln!(out, "kernel {base}/{kernel}{args} || goto failed");
            if let Some(initrd) = &os.initrd {
                let _ = writeln!(
                    out,
                    "initrd --name {} {base}/{initrd} || goto failed",
                    file_name(initrd)
                );
            }
        }
        BootMethod::Sanboot => {
            let image = os.image.as_deref().unwrap_or_default();
            // sanboot boots the image itself; it returns only when that fails.
            let _ = writeln!(
                out,
                "sanboot {url}/{OSS_PREFIX}{name}/{image} || goto failed"
            );
            return;
        }
        BootMethod::Kexec | BootMethod::Bin => {
            let initrd = file_name(&menu.phase1_initrd);
            let mut extra = String::new();
            if !menu.phase1_cmdline.is_empty() {
                let _ = write!(extra, " {}", one_line(&menu.phase1_cmdline));
            }
            let _ = writeln!(
                out,
                "kernel {url}/{} initrd={initrd}{extra} bootd.os={name} bootd.url={url} bootd.torrent={url}/{} bootd.seed_time={} || goto failed",
                menu.phase1_kernel,
                torrent_path(name),
                menu.seed_time
            );
            let _ = writeln!(
                out,
                "initrd --name {initrd} {url}/{} || goto failed",
                menu.phase1_initrd
            );
        }
    }
    out.push_str("boot || goto failed\n");
}

/// What phase 1 needs to start an OS once its torrent is complete: one `key=value`
/// per line, values verbatim to the end of the line (no quoting to undo), read with
/// `sed -n 's/^cmdline=//p'`.
pub fn description(os: &OsConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name={}", os.name);
    let _ = writeln!(out, "method={}", os.method.as_str());
    for (key, value) in [
        ("kernel", &os.kernel),
        ("initrd", &os.initrd),
        ("bin", &os.bin),
    ] {
        if let Some(value) = value {
            let _ = writeln!(out, "{key}={}", one_line(value));
        }
    }
    let _ = writeln!(out, "cmdline={}", one_line(&os.cmdline));
    let _ = writeln!(out, "binargs={}", one_line(&os.binargs));
    out
}

/// The last element of a path (`boot/initrd.img` → `initrd.img`): the name iPXE
/// gives an image, which the kernel's `initrd=` then names.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Text on one script line: a line break (possible in YAML) would start a new iPXE
/// command, so every control character becomes a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn os(name: &str, display: &str, method: BootMethod) -> OsConfig {
        OsConfig {
            name: name.into(),
            display: display.into(),
            method,
            dir: PathBuf::from("/srv").join(name),
            kernel: Some("vmlinuz".into()),
            initrd: Some("boot/initrd.img".into()),
            cmdline: "root=/dev/ram0 quiet".into(),
            bin: None,
            binargs: String::new(),
            image: None,
            origin: "bootd.ini:1".into(),
        }
    }

    fn menu(timeout: i64, default: Option<&str>) -> MenuConfig {
        MenuConfig {
            default: default.map(str::to_string),
            timeout,
            oss_dir: None,
            url: None,
            phase1_kernel: "phase1/vmlinuz".into(),
            phase1_initrd: "phase1/initrd.img".into(),
            phase1_cmdline: String::new(),
            seed_time: 30,
            tracker: None,
            oss: vec![
                os("debian", "Debian 12", BootMethod::Direct),
                os("alpine", "Alpine (BitTorrent)", BootMethod::Kexec),
            ],
        }
    }

    const TAIL: &str = ":failed
echo The boot failed; back to the menu in 5 seconds.
sleep 5
goto menu
:shell
echo Type exit to come back to the menu.
shell
goto menu
";

    const ENTRIES: &str = ":os-debian
echo Booting Debian 12
imgfree
kernel http://10.0.0.1/oss/debian/vmlinuz initrd=initrd.img root=/dev/ram0 quiet || goto failed
initrd --name initrd.img http://10.0.0.1/oss/debian/boot/initrd.img || goto failed
boot || goto failed
:os-alpine
echo Booting Alpine (BitTorrent)
imgfree
kernel http://10.0.0.1/phase1/vmlinuz initrd=initrd.img bootd.os=alpine bootd.url=http://10.0.0.1 bootd.torrent=http://10.0.0.1/torrents/alpine.torrent bootd.seed_time=30 || goto failed
initrd --name initrd.img http://10.0.0.1/phase1/initrd.img || goto failed
boot || goto failed
";

    #[test]
    fn the_menu_lists_entries_in_order_with_the_default_and_a_countdown() {
        let text = render(&menu(10, Some("alpine")), "http://10.0.0.1");
        let head = "#!ipxe
# The boot menu bootd makes from its configuration.
:menu
menu Choose an operating system (Alpine (BitTorrent) boots in 10 s)
item os-debian Debian 12
item os-alpine Alpine (BitTorrent)
item --gap
item --key s shell iPXE shell (s)
choose --default os-alpine --timeout 10000 choice || goto shell
goto ${choice}
";
        assert_eq!(text, format!("{head}{ENTRIES}{TAIL}"));
    }

    #[test]
    fn a_zero_timeout_boots_the_default_at_once() {
        let text = render(&menu(0, None), "http://10.0.0.1");
        let head = "#!ipxe
# The boot menu bootd makes from its configuration.
goto os-debian
:menu
menu Choose an operating system
item os-debian Debian 12
item os-alpine Alpine (BitTorrent)
item --gap
item --key s shell iPXE shell (s)
choose --default os-debian choice || goto shell
goto ${choice}
";
        assert_eq!(text, format!("{head}{ENTRIES}{TAIL}"));
    }

    #[test]
    fn a_negative_timeout_waits_for_a_choice() {
        let text = render(&menu(-1, Some("debian")), "http://10.0.0.1");
        assert!(text.contains("\nchoose --default os-debian choice || goto shell\n"));
        assert!(!text.contains("--timeout"));
        assert!(!text.contains("\ngoto os-"));
    }

    #[test]
    fn an_empty_menu_offers_the_shell() {
        let mut empty = menu(10, None);
        empty.oss.clear();
        let text = render(&empty, "http://10.0.0.1");
        let want = "#!ipxe
# The boot menu bootd makes from its configuration.
:menu
menu Choose an operating system
item --gap
item --key s shell iPXE shell (s)
choose choice || goto shell
goto ${choice}
";
        assert_eq!(text, format!("{want}{TAIL}"));
    }

    #[test]
    fn a_line_break_in_a_label_cannot_add_a_command() {
        let mut m = menu(10, None);
        m.oss[0].display = "Debian\nshell".into();
        let text = render(&m, "http://10.0.0.1");
        assert!(text.contains("\nitem os-debian Debian shell\n"));
        assert!(!text.contains("\nshell\ngoto menu\n:os") && !text.contains("Debian\n"));
    }

    #[test]
    fn a_direct_entry_without_initrd_or_cmdline_loads_only_the_kernel() {
        let mut m = menu(10, None);
        m.oss[0].initrd = None;
        m.oss[0].cmdline.clear();
        let text = render(&m, "http://h:8080");
        assert!(text.contains(
            "\nkernel http://h:8080/oss/debian/vmlinuz || goto failed\nboot || goto failed\n"
        ));
    }

    #[test]
    fn a_sanboot_entry_boots_the_image_over_http() {
        let mut m = menu(10, None);
        m.oss[1].method = BootMethod::Sanboot;
        m.oss[1].image = Some("alpine.iso".into());
        let text = render(&m, "http://10.0.0.1");
        assert!(
            text.contains(
                ":os-alpine\necho Booting Alpine (BitTorrent)\nimgfree\nsanboot http://10.0.0.1/oss/alpine/alpine.iso || goto failed\n:failed\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn phase_1_gets_the_configured_words_on_its_command_line() {
        let mut m = menu(10, None);
        m.phase1_cmdline = "console=ttyS0,115200 quiet".into();
        let text = render(&m, "http://10.0.0.1");
        assert!(
            text.contains(
                "kernel http://10.0.0.1/phase1/vmlinuz initrd=initrd.img console=ttyS0,115200 quiet bootd.os=alpine "
            ),
            "{text}"
        );
    }

    #[test]
    fn the_description_gives_phase_1_the_command_line_verbatim() {
        let mut alpine = os("alpine", "Alpine", BootMethod::Kexec);
        alpine.cmdline = r#"console=ttyS0 "quoted words" x='y'"#.into();
        assert_eq!(
            description(&alpine),
            "name=alpine\nmethod=kexec\nkernel=vmlinuz\ninitrd=boot/initrd.img\ncmdline=console=ttyS0 \"quoted words\" x='y'\nbinargs=\n"
        );
        let mut tool = os("tool", "Tool", BootMethod::Bin);
        tool.kernel = None;
        tool.initrd = None;
        tool.bin = Some("run.sh".into());
        tool.cmdline.clear();
        tool.binargs = "-v --fast".into();
        assert_eq!(
            description(&tool),
            "name=tool\nmethod=bin\nbin=run.sh\ncmdline=\nbinargs=-v --fast\n"
        );
    }
}
