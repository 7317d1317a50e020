//! Loader tests: both dialects, pybootd's documented samples, every default, error shapes.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn load_text(text: &str) -> Result<Loaded, ConfigError> {
    load_str(Path::new("bootd.ini"), text, Path::new("/etc/bootd"))
}

fn ok(text: &str) -> Loaded {
    match load_text(text) {
        Ok(l) => l,
        Err(e) => panic!("config should load:\n{e}"),
    }
}

fn err(text: &str) -> String {
    match load_text(text) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The Debian netinstall sample of pybootd 1.5.0's documentation.
const PYBOOTD_PYPI_SAMPLE: &str = "[logger]
; show requests on the standard error output of the daemon
type = stderr
; show informative and error messages only (disable verbose mode)
level = info

[bootp]
; do not force a full PXE boot-up cycle to accept the client
allow_simple_dhcp = enable
; First BOOTP/DHCP address to generate
pool_start = 192.168.1.100
; Google DNS
dns = 8.8.8.8
; boot-up executable the client should request through TFTP
boot_file = pxelinux.0

[tftp]
; URL to install a Debian 6.0 Intel/AMD 64-bit network installation
root = http://http.us.debian.org/debian/dists/squeeze/main/installer-amd64/current/images/netboot

[filters]
; serve a simple configuration file to the linux PXE helper
pxelinux.cfg/* = pybootd/etc/pxe.cfg
";

/// The GitHub README's sample, which repeats `boot_file`.
const PYBOOTD_README_SAMPLE: &str = "  [logger]
  type = stderr
  level = info
  
  [bootp]
  allow_simple_dhcp = enable
  pool_start = 192.168.10.100
  dns = 8.8.8.8
  boot_file = pxelinux.0
  lease_time = 86400
  boot_file = pxelinux.0
  
  [tftp]
  root = http://http.us.debian.org/debian/dists/squeeze/main/installer-amd64/current/images/netboot
";

/// A pybootd 1.8-dialect file in the shape of its shipped sample.
const PYBOOTD_18: &str = "[logger]
type = stderr
level = debug

[bootpd]
address = 0.0.0.0
pool_start = 192.168.25.100
pool_count = 5
domain = localdomain
server_name = debug
dns = 8.8.8.8;1.1.1.1
lease_time = 86400
access = mac
allow_simple_dhcp = enable
set_gateway = true
notify = 127.0.0.1:12345;127.0.0.1:12346

[bootfile]
default = pxelinux.0
00000 = pxelinux.0
00002 = shim.efi
00006 = shim.efi
00007 = shimx64.efi
00008 = shimx64.efi
00009 = shimx64.efi

[buggy_clients]
1C-69-7A/24 = yes

[static_dhcp]
00-0A-86-A2-2F-3E = 192.168.25.10

[mac]
AA-BB-CC-DD-EE-FF = enable
00-1E-4F/24 = enable
00-1E-4F-C4-95-EE = disable

[uuid]
12345678-abcd-ef00-1111-abcdefabcdef = enable

[http]
location = 127.0.0.1:13400
pxe = boot
dhcp = linux
timeout = 2
always_check = yes

[tftpd]
address = 0.0.0.0
port = 69
blocksize = 512
timeout = 2.0
root = ./images

[filters]
egg.info = [{filename}]
pxelinux.cfg/* = pybootd/etc/pxe.cfg
";

#[test]
fn pybootd_pypi_sample_loads() {
    let l = ok(PYBOOTD_PYPI_SAMPLE);
    let c = &l.config;
    assert!(c.bootp.allow_simple_dhcp);
    assert_eq!(c.bootp.pools, vec![Ipv4Addr::new(192, 168, 1, 100)]);
    assert_eq!(
        c.bootp.dns,
        DnsSetting::List(vec![Ipv4Addr::new(8, 8, 8, 8)])
    );
    assert_eq!(c.boot_files.default.as_deref(), Some("pxelinux.0"));
    assert_eq!(
        c.tftp.root,
        TftpRoot::Url(
            "http://http.us.debian.org/debian/dists/squeeze/main/installer-amd64/current/images/netboot"
                .into()
        )
    );
    assert_eq!(
        c.filters,
        vec![FilterRule {
            pattern: "pxelinux.cfg/*".into(),
            value: "pybootd/etc/pxe.cfg".into(),
            line: 23
        }]
    );
    assert_eq!(c.logger.target, LogTarget::Stderr);
    assert_eq!(c.logger.level, log::LevelFilter::Info);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn pybootd_readme_sample_loads_and_warns_about_the_repeated_boot_file() {
    let l = ok(PYBOOTD_README_SAMPLE);
    assert_eq!(l.config.boot_files.default.as_deref(), Some("pxelinux.0"));
    assert_eq!(l.config.bootp.lease_time, 86400);
    assert_eq!(
        l.warnings,
        vec![
            "bootd.ini:11: [bootp] boot_file repeats line 9 with the same value; the repetition is harmless but can be removed"
        ]
    );
}

#[test]
fn pybootd_18_dialect_loads() {
    let l = ok(PYBOOTD_18);
    let c = &l.config;
    assert_eq!(c.bootp.access, Some(Access::Mac));
    assert_eq!(c.bootp.pool_count, 5);
    assert_eq!(c.bootp.domain, "localdomain");
    assert_eq!(c.bootp.notify.len(), 2);
    assert_eq!(c.boot_files.default.as_deref(), Some("pxelinux.0"));
    assert_eq!(c.boot_files.for_arch(7), Some("shimx64.efi"));
    assert_eq!(c.boot_files.for_arch(0), Some("pxelinux.0"));
    assert_eq!(c.boot_files.for_arch(11), None);
    assert_eq!(c.buggy_clients.len(), 1);
    assert!(c.buggy_clients[0].matches(crate::types::MacAddr([0x1c, 0x69, 0x7a, 1, 2, 3])));
    assert_eq!(c.static_dhcp[0].ip, Ipv4Addr::new(192, 168, 25, 10));
    assert_eq!(c.mac_acl.len(), 3);
    assert!(c.mac_acl[2].is_exact() && !c.mac_acl[2].allow);
    assert_eq!(c.uuid_acl.len(), 1);
    assert_eq!(c.http.location.as_deref(), Some("http://127.0.0.1:13400"));
    assert_eq!(c.http.pxe_path.as_deref(), Some("/boot"));
    assert_eq!(c.http.dhcp_path.as_deref(), Some("/linux"));
    assert_eq!(c.http.timeout, Duration::from_secs(2));
    assert!(c.http.always_check);
    assert_eq!(c.tftp.address, Some(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.tftp.max_blocksize, Some(512));
    assert_eq!(c.tftp.timeout, Duration::from_secs(2));
    assert_eq!(
        c.tftp.root,
        TftpRoot::Dir(PathBuf::from("/etc/bootd/images"))
    );
    assert_eq!(c.filters[0].pattern, "egg.info");
    assert_eq!(c.filters[1].pattern, "pxelinux.cfg/*");
    // The shipped sample's misspelt `server_name` must not vanish silently.
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings[0].starts_with("bootd.ini:10: unknown option [bootp] server_name is ignored (did you mean `servername`?)"),
        "{}",
        l.warnings[0]
    );
}

#[test]
fn every_default() {
    let l = ok("[bootp]\npool_start = 10.0.0.100\n");
    let c = &l.config;
    assert_eq!(c.logger.target, LogTarget::Stderr);
    assert_eq!(c.logger.level, log::LevelFilter::Info);
    assert_eq!(c.logger.file, None);
    let b = &c.bootp;
    assert_eq!(b.access, None);
    assert_eq!(b.address, Ipv4Addr::UNSPECIFIED);
    assert_eq!(b.port, 67);
    assert!(!b.allow_simple_dhcp);
    assert!(!b.servername.is_empty());
    assert_eq!(b.domain, "");
    assert_eq!(b.dns, DnsSetting::None);
    assert_eq!(b.gateway, None);
    assert!(b.send_gateway);
    assert_eq!(b.netmask, None);
    assert_eq!(b.lease_time, 86400);
    assert!(b.notify.is_empty());
    assert_eq!(b.pool_count, 10);
    assert_eq!(b.lease_file, PathBuf::from("/var/lib/bootd/leases"));
    assert_eq!(c.boot_files.default, None);
    assert!(c.static_dhcp.is_empty() && c.mac_acl.is_empty() && c.uuid_acl.is_empty());
    assert!(c.buggy_clients.is_empty() && c.filters.is_empty());
    assert_eq!(c.http.location, None);
    assert_eq!(c.http.timeout, Duration::from_secs(5));
    assert!(!c.http.always_check);
    assert_eq!(c.http.max_queries, 64);
    assert_eq!(c.bootp.remembered_clients, 10_000);
    let t = &c.tftp;
    assert_eq!(t.address, None);
    assert_eq!(t.port, 69);
    assert_eq!(t.max_blocksize, None);
    assert_eq!(t.max_windowsize, 64);
    assert_eq!(t.timeout, Duration::from_secs(1));
    assert_eq!(t.retries, 5);
    assert_eq!(t.max_transfers, 1000);
    assert_eq!(t.root, TftpRoot::Dir(PathBuf::from("/srv/tftp")));
    assert_eq!(t.http_timeout, Duration::from_secs(10));
    assert_eq!(t.busy_poll, Duration::from_micros(50));
    assert!(!t.single_port);
    assert!(c.httpd.is_none());
    // Every option of the known sections is listed once, defaulted or not.
    let listed = |section: &str| l.settings.iter().filter(|s| s.section == section).count();
    assert_eq!(listed("logger"), 3);
    assert_eq!(listed("bootp"), 19);
    assert!(!b.proxy);
    assert_eq!(t.max_transfers_per_client, 32);
    assert_eq!(t.max_timeout, Duration::from_secs(10));
    assert_eq!(listed("tftp"), 13);
    assert_eq!(listed("http"), 6);
    let pool_start = l
        .settings
        .iter()
        .find(|s| s.option == "pool_start")
        .unwrap();
    assert_eq!(pool_start.origin, Origin::Line(2));
    let port = l.settings.iter().find(|s| s.option == "port").unwrap();
    assert_eq!(port.origin, Origin::Default);
}

#[test]
fn every_option_parses() {
    let l = ok("[logger]
type = file
level = warning
file = log/bootd.log
[bootp]
access = uuid
address = 10.0.0.1
port = 6767
allow_simple_dhcp = yes
servername = boot1
domain = example.org
dns = auto
gateway = 10.0.0.254
set_gateway = off
netmask = 255.255.0.0
lease_time = 3600
notify = 127.0.0.1:9
timeout = 3
pool_start = 10.0.0.100
pool_count = 50
lease_file = /tmp/leases
[uuid]
12345678-abcd-ef00-1111-abcdefabcdef = enable
[tftp]
address = 10.0.0.1
port = 6969
blocksize = 1468
windowsize = 16
timeout = 0.5
retries = 8
max_transfers = 200
root = /srv/boot
http_timeout = 4
busy_poll = 0
single_port = yes
[httpd]
port = 8080
root = /srv/www
check_ip = no
");
    let c = &l.config;
    assert_eq!(c.logger.target, LogTarget::File);
    assert_eq!(c.logger.level, log::LevelFilter::Warn);
    assert_eq!(
        c.logger.file,
        Some(PathBuf::from("/etc/bootd/log/bootd.log"))
    );
    let b = &c.bootp;
    assert_eq!(b.access, Some(Access::Uuid));
    assert_eq!(b.address, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(b.port, 6767);
    assert!(b.allow_simple_dhcp);
    assert_eq!(b.servername, "boot1");
    assert_eq!(b.domain, "example.org");
    assert_eq!(b.dns, DnsSetting::Auto);
    assert_eq!(b.gateway, Some(Ipv4Addr::new(10, 0, 0, 254)));
    assert!(!b.send_gateway);
    assert_eq!(b.netmask, Some(Ipv4Addr::new(255, 255, 0, 0)));
    assert_eq!(b.lease_time, 3600);
    assert_eq!(b.notify, vec!["127.0.0.1:9".parse().unwrap()]);
    assert_eq!(
        c.http.timeout,
        Duration::from_secs(3),
        "[bootp] timeout, where pybootd documents it"
    );
    assert_eq!(b.pool_count, 50);
    assert_eq!(b.lease_file, PathBuf::from("/tmp/leases"));
    let t = &c.tftp;
    assert_eq!(t.address, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(t.port, 6969);
    assert_eq!(t.max_blocksize, Some(1468));
    assert_eq!(t.max_windowsize, 16);
    assert_eq!(t.timeout, Duration::from_millis(500));
    assert_eq!(t.retries, 8);
    assert_eq!(t.max_transfers, 200);
    assert_eq!(t.root, TftpRoot::Dir(PathBuf::from("/srv/boot")));
    assert_eq!(t.http_timeout, Duration::from_secs(4));
    assert_eq!(t.busy_poll, Duration::ZERO);
    assert!(t.single_port);
    let h = c.httpd.as_ref().unwrap();
    assert_eq!(h.port, 8080);
    assert!(!h.check_ip);
    assert_eq!(h.root, Some(TftpRoot::Dir(PathBuf::from("/srv/www"))));
    assert_eq!(h.max_connections, 1000);
    // The section is served now (with -H): no warning that it is only read.
    assert!(!l.warnings.iter().any(|w| w.contains("[httpd]")));
}

#[test]
fn http_timeout_in_http_section_wins() {
    let l = ok("[bootp]\ntimeout = 3\n[http]\ntimeout = 1.5\n");
    assert_eq!(l.config.http.timeout, Duration::from_millis(1500));
}

#[test]
fn error_names_file_line_section_option_value_and_what_is_accepted() {
    assert_eq!(
        err("[bootp]\n\npool_start = 10.0.0.300\n"),
        "bootd.ini:3: [bootp] pool_start = 10.0.0.300: `10.0.0.300` is not an IPv4 address (expected addresses such as 192.168.1.100, separated by `;`)"
    );
    let e = err("[bootpd]\nallow_simple_dhcp = maybe\n");
    assert!(
        e.starts_with("bootd.ini:2: [bootp] allow_simple_dhcp = maybe: not a boolean; use one of on true enable"),
        "{e}"
    );
    assert_eq!(
        err("[tftp]\nport = 70000\n"),
        "bootd.ini:2: [tftp] port = 70000: not a UDP port (expected a number from 1 to 65535)"
    );
    assert_eq!(
        err("[tftp]\nwindowsize = 65\n"),
        "bootd.ini:2: [tftp] windowsize = 65: not a whole number from 1 to 64"
    );
    assert_eq!(
        err("[tftp]\nbusy_poll = 5000\n"),
        "bootd.ini:2: [tftp] busy_poll = 5000: not a whole number from 0 to 1000"
    );
    assert_eq!(
        err("[logger]\nlevel = loud\n"),
        "bootd.ini:2: [logger] level = loud: unknown level; use critical, error, warning, info or debug"
    );
    assert!(
        err("[mac]\nzz-11/4 = enable\n")
            .starts_with("bootd.ini:2: [mac] zz-11/4 = enable: not a MAC pattern")
    );
    assert!(err("[bootfile]\nuefi = x.efi\n").contains("architecture number"));
    assert!(err("[bootp]\nnotify = 127.0.0.1\n").contains("no port"));
    assert!(err("[tftp]\nroot = ftp://x/y\n").contains("http://"));
}

#[test]
fn several_errors_are_all_reported() {
    let e = err("[bootp]\nport = x\npool_start = y\n");
    assert_eq!(e.lines().count(), 2, "{e}");
    assert!(e.lines().next().unwrap().starts_with("bootd.ini:2:"));
    assert!(e.lines().nth(1).unwrap().starts_with("bootd.ini:3:"));
}

#[test]
fn conflicting_repetition_is_an_error_naming_both_lines() {
    assert_eq!(
        err("[bootp]\npool_start = 10.0.0.1\npool_start = 10.0.0.2\n"),
        "bootd.ini:3: [bootp] pool_start = 10.0.0.2 conflicts with line 2 (pool_start = 10.0.0.1); keep one of them"
    );
    // Across the 1.5 and 1.8 names of one section, and across case.
    let e = err("[bootp]\nPort = 67\n[bootpd]\nport = 68\n");
    assert!(
        e.starts_with("bootd.ini:4: [bootp] port = 68 conflicts with line 2"),
        "{e}"
    );
}

#[test]
fn repeated_sections_are_merged_with_a_warning() {
    let l = ok("[bootp]\npool_start = 10.0.0.1\n[tftp]\nport = 69\n[bootp]\npool_count = 3\n");
    assert_eq!(l.config.bootp.pool_count, 3);
    assert_eq!(
        l.warnings,
        vec![
            "bootd.ini:5: section [bootp] appears 2 times ([bootp] on line 1, [bootp] on line 5); their options are read as one section"
        ]
    );
}

#[test]
fn legacy_and_new_boot_file_must_agree() {
    let l = ok("[bootp]\nboot_file = pxelinux.0\n[bootfile]\ndefault = pxelinux.0\n");
    assert_eq!(l.config.boot_files.default.as_deref(), Some("pxelinux.0"));
    let e = err("[bootp]\nboot_file = a.0\n[bootfile]\ndefault = b.0\n");
    assert!(
        e.starts_with(
            "bootd.ini:2: [bootp] boot_file = a.0 conflicts with [bootfile] default = b.0"
        ),
        "{e}"
    );
}

#[test]
fn unknown_sections_and_options_warn() {
    let l = ok("[bootp]\npool_strat = 10.0.0.1\n[tftpx]\na = b\n");
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(l.warnings[0].starts_with("bootd.ini:2: unknown option [bootp] pool_strat is ignored"));
    assert!(l.warnings[1].starts_with("bootd.ini:3: unknown section [tftpx] is ignored"));
}

#[test]
fn access_needs_its_section() {
    assert_eq!(
        err("[bootp]\naccess = mac\n"),
        "bootd.ini:2: [bootp] access = mac needs a [mac] section listing who may boot"
    );
    let e = err("[bootp]\naccess = http\n[http]\nlocation = h:1\n");
    assert!(
        e.contains("needs [http] pxe") && e.contains("needs [http] dhcp"),
        "{e}"
    );
    assert!(err("[bootp]\naccess = foo\n").contains("unknown access mode"));
}

/// An empty list refuses every machine: an error, like a missing one. A list that
/// enables no one refuses every machine too, which a warning says.
#[test]
fn an_access_list_that_lets_no_machine_boot_is_reported() {
    let e = err("[bootp]\naccess = mac\n[mac]\n");
    assert_eq!(
        e,
        "bootd.ini:3: [bootp] access = mac (line 2), but [mac] lists no machine: every machine would be refused; list those that may boot (AA-BB-CC-DD-EE-FF = enable)"
    );
    let e = err("[bootp]\naccess = uuid\n[uuid]\n; nobody yet\n");
    assert!(e.contains("but [uuid] lists no machine"), "{e}");
    let l = ok("[bootp]\naccess = mac\n[mac]\n02-00-00-00-00-01 = disable\n");
    assert_eq!(
        l.warnings,
        vec![
            "bootd.ini:3: [bootp] access = mac (line 2), but [mac] enables no machine: every machine will be refused; enable those that may boot (AA-BB-CC-DD-EE-FF = enable)"
        ]
    );
    assert!(
        ok("[bootp]\naccess = mac\n[mac]\n02-00-00-00-00-01 = enable\n")
            .warnings
            .is_empty()
    );
}

/// INI values have no end-of-line comments: what looks like one is part of the
/// value, and a warning says so, wherever it is (an option, a boot file, a filter).
#[test]
fn a_value_that_holds_what_looks_like_a_comment_is_reported() {
    let l = ok(
        "[bootfile]\ndefault = pxelinux.0\n00007 = syslinux.efi    ; x64 UEFI\n[tftp]\nroot = /srv/tftp # the boot files\n",
    );
    assert_eq!(
        l.warnings,
        vec![
            "bootd.ini:3: [bootfile] 00007 = syslinux.efi    ; x64 UEFI: INI values have no end-of-line comments, so `; x64 UEFI` is part of the value; bootd uses `syslinux.efi    ; x64 UEFI` whole: put the comment on a line of its own above",
            "bootd.ini:5: [tftp] root = /srv/tftp # the boot files: INI values have no end-of-line comments, so `# the boot files` is part of the value; bootd uses `/srv/tftp # the boot files` whole: put the comment on a line of its own above",
        ]
    );
    assert_eq!(
        l.config.boot_files.for_arch(7),
        Some("syslinux.efi    ; x64 UEFI")
    );
    // `;` inside a value, and lists separated by `;`, are fine.
    let l = ok(
        "[bootp]\ndns = 192.0.2.1 ; 192.0.2.2\nnotify = 127.0.0.1:1;127.0.0.1:2\n[bootfile]\ndefault = a;b#c\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

/// A location the client would refuse at the first query is refused at load time,
/// as an `https://` one is by a build without TLS.
#[test]
fn authorisation_locations_the_client_cannot_ask_are_refused() {
    let e = err("[http]\nlocation = http://h:0\n");
    assert!(e.contains("bad port"), "{e}");
    if cfg!(feature = "https") {
        let l = ok("[http]\nlocation = https://inventory.example/boot\n");
        assert_eq!(
            l.config.http.location.as_deref(),
            Some("https://inventory.example/boot")
        );
    } else {
        let e = err("[http]\nlocation = https://inventory.example\n");
        assert!(
            e.contains("https:// needs bootd built with the `https` feature"),
            "{e}"
        );
    }
}

#[test]
fn the_user_bootd_runs_as_is_a_user_name() {
    assert_eq!(Config::default().daemon.user, None);
    let l = ok("[bootd]\nuser = svc-boot\n");
    assert_eq!(l.config.daemon.user.as_deref(), Some("svc-boot"));
    assert!(err("[bootd]\nuser = a b\n").contains("not a user name"));
}

#[test]
fn logger_file_needs_a_path() {
    assert_eq!(
        err("[logger]\ntype = file\n"),
        "bootd.ini: [logger] type = file needs [logger] file = /path/to/bootd.log"
    );
}

#[test]
fn static_dhcp_duplicates_are_refused() {
    let e = err("[static_dhcp]\nAA-BB-CC-DD-EE-FF = 10.0.0.5\naa:bb:cc:dd:ee:ff = 10.0.0.6\n");
    assert!(
        e.contains("AA-BB-CC-DD-EE-FF is already reserved on line 2"),
        "{e}"
    );
    let e = err("[static_dhcp]\nAA-BB-CC-DD-EE-FF = 10.0.0.5\n00-11-22-33-44-55 = 10.0.0.5\n");
    assert!(
        e.contains("10.0.0.5 is already reserved for AA-BB-CC-DD-EE-FF on line 2"),
        "{e}"
    );
}

#[test]
fn syntax_errors_carry_the_line() {
    assert_eq!(
        err("[bootp]\npool_start 10.0.0.1\n"),
        "bootd.ini:2: `pool_start 10.0.0.1` is not of the form `option = value`"
    );
}

#[test]
fn pool_must_not_wrap() {
    assert!(err("[bootp]\npool_start = 255.255.255.250\npool_count = 10\n").contains("runs past"));
}

#[test]
fn effective_settings_say_where_each_value_came_from() {
    let l = ok("[bootp]\npool_start = 10.0.0.100\n");
    let text = effective_settings("bootd.ini", &l.settings);
    assert!(text.contains("pool_start = 10.0.0.100"), "{text}");
    let line = text.lines().find(|l| l.starts_with("pool_start")).unwrap();
    assert!(line.ends_with("; bootd.ini:2"), "{line}");
    let line = text.lines().find(|l| l.starts_with("pool_count")).unwrap();
    assert!(line.ends_with("; default"), "{line}");
    assert!(text.contains("[tftp]\n"));
}

#[test]
fn missing_file_is_reported() {
    let e = load(Path::new("/nonexistent/bootd.ini"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/bootd.ini: cannot read the configuration file"),
        "{e}"
    );
}

#[test]
fn the_bundled_sample_loads_cleanly_and_documents_every_option() {
    let text = include_str!("../../conf/bootd.ini");
    let l = ok(text);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    for option in super::options::OPTIONS {
        let (section, option) = (option.section, option.name);
        let documented = text.lines().any(|line| {
            let line = line.trim_start_matches([';', ' ']);
            line.starts_with(&format!("{option} ="))
        });
        assert!(
            documented,
            "conf/bootd.ini does not document [{section}] {option}"
        );
    }
}

#[test]
fn unusable_filter_rules_are_configuration_errors() {
    let e = err("[filters]\npxelinux.cfg/* = {mac}.cfg\n");
    assert!(e.starts_with("bootd.ini:2: [filters]"), "{e}");
    assert!(e.contains("{mac}"), "{e}");
}

#[test]
fn bootfile_ipxe_entry() {
    let l = ok("[bootfile]\ndefault = undionly.kpxe\nipxe = boot.ipxe\n");
    assert_eq!(l.config.boot_files.ipxe.as_deref(), Some("boot.ipxe"));
    assert_eq!(
        l.config.boot_files.default.as_deref(),
        Some("undionly.kpxe")
    );
}

#[test]
fn every_problem_is_reported_in_line_order_warnings_beside_errors() {
    let e = load_text(
        "[bootp]\npool_strat = 10.0.0.1\nport = x\n[tftpx]\n[tftp]\nport = 69\nport = 69\nwindowsize = 0\n",
    )
    .unwrap_err();
    let found: Vec<(Severity, Option<usize>)> =
        e.problems.iter().map(|p| (p.severity, p.line)).collect();
    assert_eq!(
        found,
        vec![
            (Severity::Warning, Some(2)),
            (Severity::Error, Some(3)),
            (Severity::Warning, Some(4)),
            (Severity::Warning, Some(7)),
            (Severity::Error, Some(8)),
        ]
    );
    assert!(
        e.problems[0]
            .message
            .starts_with("bootd.ini:2: unknown option [bootp] pool_strat")
    );
    assert!(
        e.problems[3]
            .message
            .starts_with("bootd.ini:7: [tftp] port repeats line 6")
    );
    // Displayed, the error is its errors.
    let text = e.to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with("bootd.ini:3: [bootp] port = x"), "{text}");
}

#[test]
fn unreadable_lines_do_not_hide_the_other_problems() {
    let e = load_text("[bootp]\npool_start\nport = x\nsevrername = a\n").unwrap_err();
    let found: Vec<(Severity, Option<usize>)> =
        e.problems.iter().map(|p| (p.severity, p.line)).collect();
    assert_eq!(
        found,
        vec![
            (Severity::Error, Some(2)),
            (Severity::Error, Some(3)),
            (Severity::Warning, Some(4)),
        ]
    );
    assert!(
        e.problems[2]
            .message
            .contains("(did you mean `servername`?)"),
        "{}",
        e.problems[2].message
    );
}

#[test]
fn configparser_errors_name_the_location_once() {
    assert_eq!(
        err("[bootp]\n[tftp\n"),
        "bootd.ini:2: Found opening bracket for section name but no closing bracket: `[tftp`"
    );
}

#[test]
fn the_bootp_timeout_stands_in_for_the_http_timeout_in_the_report() {
    let l = ok("[bootp]\ntimeout = 3\n");
    let http_timeout = l
        .settings
        .iter()
        .find(|s| s.section == "http" && s.option == "timeout")
        .unwrap();
    assert_eq!(http_timeout.value, "3");
    assert_eq!(http_timeout.origin, Origin::Line(2));
}

/// A URL root the HTTP client would refuse at the first request is refused by the
/// loader (and so by `--check`).
#[test]
fn url_roots_the_client_cannot_fetch_are_refused() {
    let e = err("[tftp]\nroot = http://user:secret@mirror/d-i\n");
    assert!(e.contains("user names in URLs are not supported"), "{e}");
    let e = err("[tftp]\nroot = http://mirror:0/d-i\n");
    assert!(e.contains("bad port"), "{e}");
    if cfg!(feature = "https") {
        assert!(load_text("[tftp]\nroot = https://mirror/d-i\n").is_ok());
    } else {
        let e = err("[tftp]\nroot = https://mirror/d-i\n");
        assert!(
            e.contains("https:// needs bootd built with the `https` feature"),
            "{e}"
        );
    }
}

// Configurations of any size are reported, quickly and without a panic: a file
// written by a script gone wrong, or by an attacker who can feed `--check`, must
// cost no more than a look at each line.

/// How long a large file may take to load and report. Release builds take a small
/// fraction of it; debug builds, on a loaded machine, need the margin.
const LARGE_FILE_BOUND: Duration = Duration::from_secs(if cfg!(debug_assertions) { 30 } else { 5 });

/// Loads `text` and renders the `--check` report of what loaded; prints the time.
fn load_and_report(what: &str, text: &str) -> Result<Loaded, ConfigError> {
    let started = std::time::Instant::now();
    let loaded = load_text(text);
    if let Ok(l) = &loaded {
        let report = effective_settings("bootd.ini", &l.settings);
        assert!(!report.is_empty());
    }
    let took = started.elapsed();
    eprintln!("{what}: loaded and reported in {took:?}");
    assert!(took < LARGE_FILE_BOUND, "{what} took {took:?}");
    loaded
}

#[test]
fn a_value_of_70000_characters_is_reported() {
    let long = "a".repeat(70_000);
    let l = load_and_report(
        "a 70,000-character domain",
        &format!("[bootp]\ndomain = {long}\n"),
    )
    .unwrap();
    let report = effective_settings("bootd.ini", &l.settings);
    let line = report.lines().find(|l| l.starts_with("domain = ")).unwrap();
    assert!(line.contains(&long) && line.ends_with("; bootd.ini:2"));
    // The other lines stay aligned among themselves, not pushed 70,000 columns right.
    let line = report.lines().find(|l| l.starts_with("port = ")).unwrap();
    assert!(line.len() < 100, "{line}");
}

#[test]
fn ten_thousand_dns_servers_or_notify_targets_are_reported() {
    let addresses: Vec<String> = (0..10_000u32)
        .map(|i| Ipv4Addr::from(0x0A00_0000 + i).to_string())
        .collect();
    let l = load_and_report(
        "10,000 DNS servers",
        &format!("[bootp]\ndns = {}\n", addresses.join(";")),
    )
    .unwrap();
    assert!(matches!(&l.config.bootp.dns, DnsSetting::List(list) if list.len() == 10_000));
    let targets: Vec<String> = addresses.iter().map(|a| format!("{a}:9")).collect();
    let l = load_and_report(
        "10,000 notify targets",
        &format!("[bootp]\nnotify = {}\n", targets.join(";")),
    )
    .unwrap();
    assert_eq!(l.config.bootp.notify.len(), 10_000);
}

#[test]
fn a_hundred_thousand_sections_are_reported_quickly() {
    let mut text = String::from("[bootp]\npool_start = 10.0.0.100\n");
    for i in 0..100_000 {
        text.push_str(&format!("[unknown{i}]\n"));
    }
    // One known section, repeated after all of them.
    text.push_str("[bootp]\nport = 67\n");
    let l = load_and_report("100,000 sections", &text).unwrap();
    assert_eq!(l.warnings.len(), 100_001);
    assert!(l.warnings[0].starts_with("bootd.ini:3: unknown section [unknown0] is ignored"));
    assert!(
        l.warnings[100_000].starts_with("bootd.ini:100003: section [bootp] appears 2 times"),
        "{}",
        l.warnings[100_000]
    );
}

#[test]
fn a_hundred_thousand_filters_are_read_quickly() {
    let mut text = String::from("[filters]\n");
    for i in 0..100_000 {
        text.push_str(&format!("dir{i}/* = file{i}\n"));
    }
    text.push_str("dir7/* = elsewhere\n");
    let e = load_and_report("100,000 filters", &text).unwrap_err();
    let errors: Vec<&Problem> = e.errors().collect();
    assert_eq!(errors.len(), 1, "{e}");
    assert!(
        errors[0]
            .message
            .starts_with("bootd.ini:100002: [filters] dir7/* = elsewhere conflicts with line 9"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_hundred_thousand_reservations_are_read_quickly() {
    let mut text = String::from("[static_dhcp]\n");
    for i in 0..100_000u32 {
        let [_, a, b, c] = i.to_be_bytes();
        text.push_str(&format!(
            "02-00-00-{a:02x}-{b:02x}-{c:02x} = 10.{a}.{b}.{c}\n"
        ));
    }
    // The same MAC again (written another way), and the same address again.
    text.push_str("02:00:00:00:00:05 = 10.200.0.1\n02-00-00-ff-00-00 = 10.0.0.9\n");
    let e = load_and_report("100,000 reservations", &text).unwrap_err();
    let errors: Vec<&str> = e.errors().map(|p| p.message.as_str()).collect();
    assert_eq!(errors.len(), 2, "{e}");
    assert!(
        errors[0].contains("02-00-00-00-00-05 is already reserved on line 7"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("10.0.0.9 is already reserved for 02-00-00-00-00-09 on line 11"),
        "{}",
        errors[1]
    );
}

#[test]
fn a_hundred_thousand_unknown_options_are_reported_quickly() {
    let mut text = String::from("[bootp]\n");
    for i in 0..100_000 {
        text.push_str(&format!("option{i} = {i}\n"));
    }
    let l = load_and_report("100,000 unknown options", &text).unwrap();
    assert_eq!(l.warnings.len(), 100_000);
    assert!(
        l.warnings[99_999].starts_with("bootd.ini:100001: unknown option [bootp] option99999"),
        "{}",
        l.warnings[99_999]
    );
}

#[test]
fn proxy_mode_is_a_pybootd_style_boolean() {
    let l = ok("[bootp]\nproxy = enable\naddress = 10.0.0.1\n");
    assert!(l.config.bootp.proxy);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert!(!ok("[bootpd]\nproxy = no\n").config.bootp.proxy);
    let e = err("[bootp]\nproxy = maybe\n");
    assert!(
        e.starts_with("bootd.ini:2: [bootp] proxy = maybe: not a boolean"),
        "{e}"
    );
    // PyPXE's name for it.
    let l = ok("[bootp]\ndhcp_proxy = on\n");
    assert!(
        l.warnings[0].contains("(did you mean `proxy`?)"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn options_about_addresses_set_in_proxy_mode_are_a_warning() {
    let l = ok(
        "[bootp]\nproxy = on\naddress = 10.0.0.1\npool_count = 50\nlease_time = 600\ndomain = lab\n\
         [static_dhcp]\n02-00-00-00-00-01 = 10.0.0.50\n",
    );
    assert_eq!(
        l.warnings,
        vec![
            "bootd.ini:2: [bootp] proxy = on: the site's DHCP server gives the addresses and network settings, so [bootp] pool_count, [bootp] lease_time, [static_dhcp] set nothing"
        ]
    );
    // Without proxy mode they are the pool's.
    assert!(ok("[bootp]\npool_count = 50\n").warnings.is_empty());
}

#[test]
fn an_ipxe_loader_without_an_ipxe_entry_is_a_warning() {
    for loader in [
        "undionly.kpxe",
        "ipxe/ipxe.efi",
        "snponly.efi",
        "ipxe.pxe",
        "undionly.kkpxe",
    ] {
        let l = ok(&format!(
            "[bootfile]\ndefault = pxelinux.0\n00007 = {loader}\n"
        ));
        assert_eq!(l.warnings.len(), 1, "{loader}: {:?}", l.warnings);
        assert!(
            l.warnings[0].starts_with(&format!(
                "bootd.ini:3: [bootfile] 00007 = {loader} looks like iPXE, and [bootfile] ipxe is not set"
            )),
            "{:?}",
            l.warnings
        );
        let with_script = format!("[bootfile]\n00007 = {loader}\nipxe = boot.ipxe\n");
        assert!(ok(&with_script).warnings.is_empty());
    }
    for other in [
        "pxelinux.0",
        "grubx64.efi",
        "boot.ipxe",
        "shimx64.efi",
        "lpxelinux.0",
    ] {
        let l = ok(&format!("[bootfile]\ndefault = {other}\n"));
        assert!(l.warnings.is_empty(), "{other}: {:?}", l.warnings);
    }
}
