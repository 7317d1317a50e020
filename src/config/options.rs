//! The one table of configuration options and sections.
//!
//! Every option is written here once: its section, name, default, parser and one line
//! of documentation. The loader applies the table to a file, the typed structs'
//! `Default` is the table applied to no file, `bootd --check` lists the settings in
//! the table's order, unknown names are matched against it for hints, and tests hold
//! the sample `conf/bootd.ini` and the README's option table to it.
//!
//! Data sections (`[bootfile]`, `[static_dhcp]`, `[mac]`, …), whose keys are MACs,
//! UUIDs, patterns or architectures rather than option names, are listed in
//! [`SECTIONS`] and read by the loader.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::types::*;
use super::value::{self, ValueResult};

/// What an option is when the file does not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Initial {
    /// This value, written as in the file (the parser reads it like a file's value).
    Value(&'static str),
    /// Not set; the text says what applies instead.
    Unset(&'static str),
    /// Not set, and needed: the text says by whom (`by the BOOTP service`).
    Required(&'static str),
}

impl Initial {
    /// The text handed to the parser for a default: `None` when unset.
    pub fn text(self) -> Option<&'static str> {
        match self {
            Initial::Value(text) => Some(text),
            Initial::Unset(_) | Initial::Required(_) => None,
        }
    }
}

/// What a parser needs beside the value.
pub(crate) struct Context<'a> {
    /// The directory relative paths are taken from (the configuration file's).
    pub base: &'a Path,
}

/// Stores a value into the configuration: `Some(text)` from the file (or the
/// default's text), `None` to apply the unset state. Returns the value as `bootd
/// --check` shows it; `Ok(None)` shows what the [`Initial`] says applies instead.
pub(crate) type Apply = fn(&mut Config, Option<&str>, &Context<'_>) -> ValueResult<Option<String>>;

/// One option of one section.
pub(crate) struct OptionSpec {
    /// The section's name (the pybootd 1.5 spelling; [`SECTIONS`] lists the others).
    pub section: &'static str,
    pub name: &'static str,
    pub default: Initial,
    /// One sentence, for the sample file and the README.
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "read by the tests that hold README.md and conf/bootd.ini to the table"
        )
    )]
    pub doc: &'static str,
    /// Names written for this option by mistake or by another program, for hints.
    pub mistaken_for: &'static [&'static str],
    /// When the file does not set this option, this other option's value is taken
    /// before the default: the same setting under an older name.
    pub fallback: Option<(&'static str, &'static str)>,
    pub apply: Apply,
}

/// How a section's keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionKind {
    /// Option names from [`OPTIONS`].
    Options,
    /// Like `Options`, but read only when the file has the section.
    OptionsIfPresent,
    /// Free-form keys read by the loader. `case_sensitive`: `Key` and `key` differ.
    Data { case_sensitive: bool },
    /// One section per item, `[os NAME]`: each takes the options of [`OPTIONS`]
    /// listed under the section's name.
    PerItem,
}

pub(crate) struct SectionSpec {
    pub name: &'static str,
    /// pybootd 1.8's names for the same section.
    pub aliases: &'static [&'static str],
    pub kind: SectionKind,
    /// One line, for the README.
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "read by the test that holds README.md to the table"
        )
    )]
    pub doc: &'static str,
}

/// Every section bootd knows, in the order the loader reads them and `--check`
/// reports them.
pub(crate) const SECTIONS: &[SectionSpec] = &[
    // The process as a whole rather than one service: bootd.ini is bootd's own
    // file, and pybootd skips sections it does not know.
    SectionSpec {
        name: "bootd",
        aliases: &[],
        kind: SectionKind::Options,
        doc: "the daemon itself: the user it runs as once its sockets are open",
    },
    SectionSpec {
        name: "logger",
        aliases: &[],
        kind: SectionKind::Options,
        doc: "where log lines go and how many",
    },
    SectionSpec {
        name: "bootp",
        aliases: &["bootpd"],
        kind: SectionKind::Options,
        doc: "the pool, who is served, and the DHCP options sent",
    },
    SectionSpec {
        name: "bootfile",
        aliases: &[],
        kind: SectionKind::Data {
            case_sensitive: false,
        },
        doc: "boot file per client architecture: `default`, `00000` (BIOS), `00007` (x64 UEFI), …, and `ipxe`",
    },
    SectionSpec {
        name: "static_dhcp",
        aliases: &[],
        kind: SectionKind::Data {
            case_sensitive: false,
        },
        doc: "fixed addresses: `AA-BB-CC-DD-EE-FF = 192.0.2.50`",
    },
    SectionSpec {
        name: "buggy_clients",
        aliases: &[],
        kind: SectionKind::Data {
            case_sensitive: false,
        },
        doc: "MAC patterns always answered at 255.255.255.255",
    },
    SectionSpec {
        name: "mac",
        aliases: &[],
        kind: SectionKind::Data {
            case_sensitive: false,
        },
        doc: "`access = mac`: `MAC = enable|disable`, patterns such as `AA-BB-CC/24`",
    },
    SectionSpec {
        name: "uuid",
        aliases: &[],
        kind: SectionKind::Data {
            case_sensitive: false,
        },
        doc: "`access = uuid`: `UUID = enable|disable`",
    },
    SectionSpec {
        name: "http",
        aliases: &[],
        kind: SectionKind::Options,
        doc: "`access = http`: the authorisation server",
    },
    SectionSpec {
        name: "tftp",
        aliases: &["tftpd"],
        kind: SectionKind::Options,
        doc: "where the boot files are and how they are sent",
    },
    SectionSpec {
        name: "filters",
        aliases: &[],
        kind: SectionKind::Data {
            case_sensitive: true,
        },
        doc: "file-name rewriting for TFTP and HTTP: `pxelinux.cfg/* = pxelinux.cfg/default`",
    },
    SectionSpec {
        name: "httpd",
        aliases: &[],
        kind: SectionKind::OptionsIfPresent,
        doc: "the HTTP file service, run with `-H` (pybootd 1.8's section)",
    },
    SectionSpec {
        name: "nbd",
        aliases: &[],
        kind: SectionKind::Options,
        doc: "disk images served to diskless machines over NBD, each machine's writes kept apart",
    },
    SectionSpec {
        name: "menu",
        aliases: &[],
        kind: SectionKind::Options,
        doc: "the iPXE boot menu of a room of machines, and how phase 1 shares files by BitTorrent",
    },
    SectionSpec {
        name: "os",
        aliases: &[],
        kind: SectionKind::PerItem,
        doc: "`[os NAME]`, one per operating system of the menu, in menu order",
    },
];

/// The section `name` (as written, any case, either dialect) stands for; `[os NAME]`
/// stands for the `os` section.
pub(crate) fn section(name: &str) -> Option<&'static SectionSpec> {
    let (name, _) = split_item(name);
    SECTIONS.iter().find(|s| {
        s.name.eq_ignore_ascii_case(name) || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// `os debian` → (`os`, `Some("debian")`); `bootp` → (`bootp`, `None`).
pub(crate) fn split_item(name: &str) -> (&str, Option<&str>) {
    match name.trim().split_once(char::is_whitespace) {
        Some((kind, item)) => (kind, Some(item.trim())),
        None => (name.trim(), None),
    }
}

/// The options of `section`, in table order.
pub(crate) fn options_of(section: &str) -> impl Iterator<Item = &'static OptionSpec> + '_ {
    OPTIONS.iter().filter(move |o| o.section == section)
}

/// Every option, grouped by section in [`SECTIONS`] order.
pub(crate) const OPTIONS: &[OptionSpec] = &[
    // [bootd]
    OptionSpec {
        section: "bootd",
        name: "user",
        default: Initial::Unset("bootd if that user exists, else nobody"),
        doc: "The user bootd runs as once its sockets and files are open, when started as root (root: stay root; under systemd's own user nothing changes).",
        mistaken_for: &["runas", "run_as", "uid", "username"],
        fallback: None,
        apply: |c, v, _| {
            c.daemon.user = v.map(value::user_name).transpose()?;
            Ok(c.daemon.user.clone())
        },
    },
    // [logger]
    OptionSpec {
        section: "logger",
        name: "type",
        default: Initial::Value("stderr"),
        doc: "Where log lines go: stderr (under systemd each line gets its journal priority), journal (stderr with priorities, always), stdout, file, syslog (/dev/log) or none.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.logger.target = match v.unwrap_or_default().trim().to_ascii_lowercase().as_str() {
                "stderr" => LogTarget::Stderr,
                "journal" => LogTarget::Journal,
                "stdout" => LogTarget::Stdout,
                "file" => LogTarget::File,
                "syslog" | "unix" => LogTarget::Syslog,
                "none" => LogTarget::None,
                _ => {
                    return Err(
                        "unknown logger type; use stderr, journal, stdout, file, syslog or none"
                            .into(),
                    );
                }
            };
            Ok(Some(format!("{:?}", c.logger.target).to_ascii_lowercase()))
        },
    },
    OptionSpec {
        section: "logger",
        name: "level",
        default: Initial::Value("info"),
        doc: "The least severe messages logged: critical, error, warning, info or debug.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.logger.level = match v.unwrap_or_default().trim().to_ascii_lowercase().as_str() {
                // simplelog has no level above error: critical messages are errors.
                "critical" | "error" => log::LevelFilter::Error,
                "warning" | "warn" => log::LevelFilter::Warn,
                "info" => log::LevelFilter::Info,
                "debug" | "all" => log::LevelFilter::Debug,
                _ => {
                    return Err("unknown level; use critical, error, warning, info or debug".into());
                }
            };
            Ok(Some(c.logger.level.as_str().to_ascii_lowercase()))
        },
    },
    OptionSpec {
        section: "logger",
        name: "file",
        default: Initial::Unset("none"),
        doc: "The log file; type = file needs it.",
        mistaken_for: &["path"],
        fallback: None,
        apply: |c, v, cx| {
            c.logger.file = v.map(|v| resolve_path(cx.base, v));
            Ok(c.logger.file.as_deref().map(path_text))
        },
    },
    // [bootp]
    OptionSpec {
        section: "bootp",
        name: "proxy",
        default: Initial::Value("off"),
        doc: "Boot machines beside the site's DHCP server (proxyDHCP): hand out no address, keep no lease, and tell PXE firmware only what to boot, on port 67 and on the PXE boot server port 4011.",
        mistaken_for: &["dhcp_proxy", "proxy_dhcp", "proxydhcp"],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.proxy = value::boolean(v.unwrap_or_default())?;
            Ok(Some(on_off(c.bootp.proxy)))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "pool_start",
        default: Initial::Required(
            "by the BOOTP service (with proxy = on, address may name the network instead)",
        ),
        doc: "First address handed out: bootd serves the network that contains it (several pools, one per interface, are separated by `;`).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.pools = v.map(value::ipv4_list).transpose()?.unwrap_or_default();
            Ok(ip_list_text(&c.bootp.pools))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "pool_count",
        default: Initial::Value("10"),
        doc: "How many consecutive addresses from each pool_start may be handed out (0: only [static_dhcp]).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.pool_count = value::integer(v.unwrap_or_default(), 0, 65536)? as u32;
            Ok(Some(c.bootp.pool_count.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "allow_simple_dhcp",
        default: Initial::Value("off"),
        doc: "Serve machines that did not PXE-boot through bootd first (off: only machines seen in their PXE phase, and later their OS).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.allow_simple_dhcp = value::boolean(v.unwrap_or_default())?;
            Ok(Some(on_off(c.bootp.allow_simple_dhcp)))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "access",
        default: Initial::Unset("every machine is served"),
        doc: "Who may boot: mac (the [mac] list), uuid (the [uuid] list) or http (ask the [http] server).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.access = v
                .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                    "mac" => Ok(Access::Mac),
                    "uuid" => Ok(Access::Uuid),
                    "http" => Ok(Access::Http),
                    _ => Err("unknown access mode; use mac, uuid or http (or leave it out to serve everyone)".to_string()),
                })
                .transpose()?;
            Ok(c.bootp
                .access
                .map(|a| format!("{a:?}").to_ascii_lowercase()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "dns",
        default: Initial::Unset("no DNS servers are sent"),
        doc: "DNS servers (option 6): addresses separated by `;`, or auto (those of this host's /etc/resolv.conf).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.dns = v.map(value::dns).transpose()?.unwrap_or(DnsSetting::None);
            Ok(match &c.bootp.dns {
                DnsSetting::None => None,
                DnsSetting::Auto => Some("auto".into()),
                DnsSetting::List(list) => ip_list_text(list),
            })
        },
    },
    OptionSpec {
        section: "bootp",
        name: "gateway",
        default: Initial::Unset("this server's address"),
        doc: "Router (option 3).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.gateway = v.map(value::ipv4).transpose()?;
            Ok(c.bootp.gateway.map(|ip| ip.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "set_gateway",
        default: Initial::Value("on"),
        doc: "Send a router option at all (off: machines get none).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.send_gateway = value::boolean(v.unwrap_or_default())?;
            Ok(Some(on_off(c.bootp.send_gateway)))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "netmask",
        default: Initial::Unset("the interface's mask"),
        doc: "Subnet mask (option 1).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.netmask = v.map(value::ipv4).transpose()?;
            Ok(c.bootp.netmask.map(|ip| ip.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "domain",
        default: Initial::Unset("none"),
        doc: "Domain name (option 15).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.domain = v.map(|v| v.trim().to_string()).unwrap_or_default();
            Ok(v.map(|_| c.bootp.domain.clone()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "servername",
        default: Initial::Unset("this host's name"),
        doc: "Server name (the sname field).",
        mistaken_for: &["server_name"],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.servername = match v {
                Some(v) => v.trim().to_string(),
                None => host_name(),
            };
            Ok(Some(c.bootp.servername.clone()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "lease_time",
        default: Initial::Value("86400"),
        doc: "Lease time in seconds (option 51); a machine keeps its address past it while the pool has room (sticky bindings).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.lease_time =
                value::integer(v.unwrap_or_default(), 60, u64::from(u32::MAX))? as u32;
            Ok(Some(c.bootp.lease_time.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "lease_file",
        default: Initial::Value("/var/lib/bootd/leases"),
        doc: "Where the bindings of MAC to address are kept across restarts.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, cx| {
            c.bootp.lease_file = resolve_path(cx.base, v.unwrap_or_default());
            Ok(Some(path_text(&c.bootp.lease_file)))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "notify",
        default: Initial::Unset("none"),
        doc: "UDP notifications (BOOT, LEASE and RELEASE datagrams) to host:port, several separated by `;`.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.notify = v
                .map(value::notify_targets)
                .transpose()?
                .unwrap_or_default();
            Ok((!c.bootp.notify.is_empty()).then(|| {
                let targets: Vec<String> = c.bootp.notify.iter().map(|a| a.to_string()).collect();
                targets.join(";")
            }))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "port",
        default: Initial::Value("67"),
        doc: "UDP port to listen on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.port = value::port(v.unwrap_or_default())?;
            Ok(Some(c.bootp.port.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "address",
        default: Initial::Value("0.0.0.0"),
        doc: "Only used to find the served network when pool_start matches no interface, or (with proxy = on) is not set: then bootd serves the network holding this address.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.address = value::ipv4(v.unwrap_or_default())?;
            Ok(Some(c.bootp.address.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "timeout",
        default: Initial::Unset("[http] timeout"),
        doc: "Seconds to wait for the HTTP authorisation server, where pybootd documents it; [http] timeout wins.",
        mistaken_for: &[],
        fallback: None,
        // Checked here; `[http] timeout` takes it as its fallback.
        apply: |_, v, _| {
            v.map(|v| value::seconds(v, 0.1, 300.0).map(|d| seconds_text(&d)))
                .transpose()
        },
    },
    OptionSpec {
        section: "bootp",
        name: "remembered_clients",
        default: Initial::Value("10000"),
        doc: "Machines without a binding whose boot phase, UUID, offer, authorisation answer and released address are remembered; beyond it the least recently seen are forgotten (bindings never are).",
        mistaken_for: &["max_clients"],
        fallback: None,
        apply: |c, v, _| {
            c.bootp.remembered_clients =
                value::integer(v.unwrap_or_default(), 100, 10_000_000)? as usize;
            Ok(Some(c.bootp.remembered_clients.to_string()))
        },
    },
    OptionSpec {
        section: "bootp",
        name: "boot_file",
        default: Initial::Unset("[bootfile] default"),
        doc: "The single boot file of pybootd 1.5: the same as [bootfile] default.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.boot_files.default = v.map(|v| v.trim().to_string());
            Ok(c.boot_files.default.clone())
        },
    },
    // [http]
    OptionSpec {
        section: "http",
        name: "location",
        default: Initial::Unset("none; access = http needs it"),
        doc: "Where the authorisation server is: http://host[:port][/prefix] or https://… (the scheme may be left out: http://).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.http.location = v.map(http_location).transpose()?;
            Ok(c.http.location.clone())
        },
    },
    OptionSpec {
        section: "http",
        name: "pxe",
        default: Initial::Unset("none; access = http needs it"),
        doc: "Path asked about machines in their PXE phase.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.http.pxe_path = v.map(http_path);
            Ok(c.http.pxe_path.clone())
        },
    },
    OptionSpec {
        section: "http",
        name: "dhcp",
        default: Initial::Unset("none; access = http needs it"),
        doc: "Path asked about machines running their OS.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.http.dhcp_path = v.map(http_path);
            Ok(c.http.dhcp_path.clone())
        },
    },
    OptionSpec {
        section: "http",
        name: "timeout",
        default: Initial::Value("5"),
        doc: "Seconds to wait for the authorisation server's answer; a request left unanswered is ignored.",
        mistaken_for: &[],
        fallback: Some(("bootp", "timeout")),
        apply: |c, v, _| {
            c.http.timeout = value::seconds(v.unwrap_or_default(), 0.1, 300.0)?;
            Ok(Some(seconds_text(&c.http.timeout)))
        },
    },
    OptionSpec {
        section: "http",
        name: "always_check",
        default: Initial::Value("off"),
        doc: "Ask on every request, not once per machine and phase.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.http.always_check = value::boolean(v.unwrap_or_default())?;
            Ok(Some(on_off(c.http.always_check)))
        },
    },
    OptionSpec {
        section: "http",
        name: "max_queries",
        default: Initial::Value("64"),
        doc: "Queries to the authorisation server out at once; a machine that would need one more is refused at once, with a log line, and asks again later.",
        mistaken_for: &["workers"],
        fallback: None,
        apply: |c, v, _| {
            c.http.max_queries = value::integer(v.unwrap_or_default(), 1, 1024)? as usize;
            Ok(Some(c.http.max_queries.to_string()))
        },
    },
    // [tftp]
    OptionSpec {
        section: "tftp",
        name: "root",
        default: Initial::Value("/srv/tftp"),
        doc: "Where the boot files are: a directory, or an http:// or https:// URL prefix whose files are streamed to clients as they ask (https:// trusts the host's CA store, or SSL_CERT_FILE).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, cx| {
            c.tftp.root = tftp_root(cx.base, v.unwrap_or_default())?;
            Ok(Some(match &c.tftp.root {
                TftpRoot::Dir(path) => path_text(path),
                TftpRoot::Url(url) => url.clone(),
            }))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "address",
        default: Initial::Unset("the address the BOOTP side serves from"),
        doc: "Address to listen on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.address = v.map(value::ipv4).transpose()?;
            Ok(c.tftp.address.map(|ip| ip.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "port",
        default: Initial::Value("69"),
        doc: "UDP port to listen on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.port = value::port(v.unwrap_or_default())?;
            Ok(Some(c.tftp.port.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "blocksize",
        default: Initial::Unset("the largest that fits the interface MTU"),
        doc: "Largest block size granted to a client that asks for one (8-65464); clients that do not ask get 512 bytes.",
        mistaken_for: &["blksize"],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.max_blocksize = v
                .map(|v| value::integer(v, 8, 65464).map(|n| n as u16))
                .transpose()?;
            Ok(c.tftp.max_blocksize.map(|n| n.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "windowsize",
        default: Initial::Value("64"),
        doc: "Largest window granted to a client that asks for one (RFC 7440), 1-64.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.max_windowsize = value::integer(v.unwrap_or_default(), 1, 64)? as u16;
            Ok(Some(c.tftp.max_windowsize.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "timeout",
        default: Initial::Value("1"),
        doc: "Seconds before a packet is sent again, unless the client asks for another timeout.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.timeout = value::seconds(v.unwrap_or_default(), 0.1, 255.0)?;
            Ok(Some(seconds_text(&c.tftp.timeout)))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "retries",
        default: Initial::Value("5"),
        doc: "How many times a packet is sent again before the transfer is given up.",
        mistaken_for: &["retry"],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.retries = value::integer(v.unwrap_or_default(), 1, 100)? as u32;
            Ok(Some(c.tftp.retries.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "max_transfers",
        default: Initial::Value("1000"),
        doc: "Transfers served at once; more are refused with an error the client shows.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.max_transfers = value::integer(v.unwrap_or_default(), 1, 100_000)? as usize;
            Ok(Some(c.tftp.max_transfers.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "max_transfers_per_client",
        default: Initial::Value("32"),
        doc: "Transfers one client address may hold at once; more are refused, so one machine cannot take every slot.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.max_transfers_per_client =
                value::integer(v.unwrap_or_default(), 1, 100_000)? as usize;
            Ok(Some(c.tftp.max_transfers_per_client.to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "max_timeout",
        default: Initial::Value("10"),
        doc: "Longest retransmission timeout granted to a client that asks for one (1-255 s); a silent client holds its slot for retries + 1 timeouts.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.max_timeout =
                Duration::from_secs(value::integer(v.unwrap_or_default(), 1, 255)?);
            Ok(Some(c.tftp.max_timeout.as_secs().to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "http_timeout",
        default: Initial::Value("10"),
        doc: "Seconds an http:// root may keep a transfer waiting: to connect, to answer, or between two reads of its body.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.http_timeout = value::seconds(v.unwrap_or_default(), 0.1, 300.0)?;
            Ok(Some(seconds_text(&c.tftp.http_timeout)))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "busy_poll",
        default: Initial::Value("50"),
        doc: "Microseconds to keep polling for a client's ACK before the TFTP thread sleeps (0-1000, 0: off).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.busy_poll =
                Duration::from_micros(value::integer(v.unwrap_or_default(), 0, 1000)?);
            Ok(Some(c.tftp.busy_poll.as_micros().to_string()))
        },
    },
    OptionSpec {
        section: "tftp",
        name: "single_port",
        default: Initial::Value("off"),
        doc: "Serve every transfer from the TFTP port itself instead of a port of its own (RFC 1350), as dnsmasq's --tftp-single-port: fewer system calls per block, and clients behind NAT or a firewall get their blocks from the port they asked.",
        mistaken_for: &["tftp_single_port", "single-port"],
        fallback: None,
        apply: |c, v, _| {
            c.tftp.single_port = value::boolean(v.unwrap_or_default())?;
            Ok(Some(on_off(c.tftp.single_port)))
        },
    },
    // [httpd]
    OptionSpec {
        section: "httpd",
        name: "address",
        default: Initial::Unset("the address the BOOTP side serves from"),
        doc: "Address the HTTP file service (-H) listens on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let address = v.map(value::ipv4).transpose()?;
            httpd(c).address = address;
            Ok(address.map(|ip| ip.to_string()))
        },
    },
    OptionSpec {
        section: "httpd",
        name: "port",
        default: Initial::Value("80"),
        doc: "TCP port the HTTP file service listens on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let port = value::port(v.unwrap_or_default())?;
            httpd(c).port = port;
            Ok(Some(port.to_string()))
        },
    },
    OptionSpec {
        section: "httpd",
        name: "root",
        default: Initial::Unset("the [tftp] root"),
        doc: "What the HTTP service serves: a directory, or an http:// or https:// URL prefix streamed through; [filters] apply as for TFTP.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, cx| {
            let root = v.map(|v| tftp_root(cx.base, v)).transpose()?;
            let shown = root.as_ref().map(|root| match root {
                TftpRoot::Dir(path) => path_text(path),
                TftpRoot::Url(url) => url.clone(),
            });
            httpd(c).root = root;
            Ok(shown)
        },
    },
    OptionSpec {
        section: "httpd",
        name: "check_ip",
        default: Initial::Value("on"),
        doc: "Serve only addresses bootd leased (others get 401); not enforced when the DHCP service does not run.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let check_ip = value::boolean(v.unwrap_or_default())?;
            httpd(c).check_ip = check_ip;
            Ok(Some(on_off(check_ip)))
        },
    },
    OptionSpec {
        section: "httpd",
        name: "max_connections",
        default: Initial::Value("1000"),
        doc: "Connections held at once; when all are held a new client takes the longest-idle one's place, or gets 503 if none is idle.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let most = value::integer(v.unwrap_or_default(), 1, 100_000)? as usize;
            httpd(c).max_connections = most;
            Ok(Some(most.to_string()))
        },
    },
    OptionSpec {
        section: "httpd",
        name: "timeout",
        default: Initial::Value("30"),
        doc: "Seconds a connection may stay silent between requests, or a client may stop reading its response, before it is closed.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let timeout = value::seconds(v.unwrap_or_default(), 0.1, 3600.0)?;
            httpd(c).timeout = timeout;
            Ok(Some(seconds_text(&timeout)))
        },
    },
    OptionSpec {
        section: "httpd",
        name: "request_timeout",
        default: Initial::Value("10"),
        doc: "Seconds a client has to send a whole request head (from its first byte); a slower one gets 408.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let timeout = value::seconds(v.unwrap_or_default(), 0.1, 3600.0)?;
            httpd(c).request_timeout = timeout;
            Ok(Some(seconds_text(&timeout)))
        },
    },
    // [nbd]
    OptionSpec {
        section: "nbd",
        name: "exports",
        default: Initial::Unset("none; the NBD service runs only with exports"),
        doc: "Disk images served over NBD: `NAME PATH [readonly|cow|write] [copy_to_ram]`, several separated by `;` (readonly unless told; cow: each machine's writes go to its own overlay; write: to the image itself).",
        mistaken_for: &["export", "image", "nbd"],
        fallback: None,
        apply: |c, v, cx| {
            c.nbd.exports = v
                .map(|v| nbd_exports(cx.base, v))
                .transpose()?
                .unwrap_or_default();
            Ok((!c.nbd.exports.is_empty()).then(|| nbd_exports_text(&c.nbd.exports)))
        },
    },
    OptionSpec {
        section: "nbd",
        name: "address",
        default: Initial::Unset("the addresses the BOOTP side serves from"),
        doc: "Address to listen on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.nbd.address = v.map(value::ipv4).transpose()?;
            Ok(c.nbd.address.map(|ip| ip.to_string()))
        },
    },
    OptionSpec {
        section: "nbd",
        name: "port",
        default: Initial::Value("10809"),
        doc: "TCP port to listen on.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.nbd.port = value::port(v.unwrap_or_default())?;
            Ok(Some(c.nbd.port.to_string()))
        },
    },
    OptionSpec {
        section: "nbd",
        name: "cow_dir",
        default: Initial::Unset("overlays are kept in memory"),
        doc: "Directory for the overlays of cow exports (their files are unlinked at once, so none outlives bootd).",
        mistaken_for: &["cowdir"],
        fallback: None,
        apply: |c, v, cx| {
            c.nbd.cow_dir = v.map(|v| resolve_path(cx.base, v));
            Ok(c.nbd.cow_dir.as_deref().map(path_text))
        },
    },
    OptionSpec {
        section: "nbd",
        name: "cow_keep",
        default: Initial::Value("600"),
        doc: "Seconds a machine's overlay is kept after its last connection closes, so that a reboot finds its writes (0: deleted at once).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.nbd.cow_keep = value::seconds(v.unwrap_or_default(), 0.0, 30.0 * 86400.0)?;
            Ok(Some(seconds_text(&c.nbd.cow_keep)))
        },
    },
    OptionSpec {
        section: "nbd",
        name: "cow_max_size",
        default: Initial::Value("1G"),
        doc: "Largest overlay of one machine on one export, in bytes or with K, M or G; writes past it get ENOSPC.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.nbd.cow_max_size = byte_size(v.unwrap_or_default())?;
            Ok(Some(c.nbd.cow_max_size.to_string()))
        },
    },
    OptionSpec {
        section: "nbd",
        name: "max_connections",
        default: Initial::Value("1000"),
        doc: "NBD connections served at once; more are refused with a log line.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.nbd.max_connections = value::integer(v.unwrap_or_default(), 1, 100_000)? as usize;
            Ok(Some(c.nbd.max_connections.to_string()))
        },
    },
    // [menu]
    OptionSpec {
        section: "menu",
        name: "default",
        default: Initial::Unset("the first operating system"),
        doc: "The NAME of the `[os NAME]` (or `oss/NAME`) the menu boots when its countdown ends.",
        mistaken_for: &["default_os"],
        fallback: None,
        apply: |c, v, _| {
            c.menu.default = v.map(|v| v.trim().to_string());
            Ok(c.menu.default.clone())
        },
    },
    OptionSpec {
        section: "menu",
        name: "timeout",
        default: Initial::Value("10"),
        doc: "Seconds the menu counts down before it boots the default: 0 boots it at once, a negative number waits for a choice.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.menu.timeout = menu_timeout(v.unwrap_or_default())?;
            Ok(Some(c.menu.timeout.to_string()))
        },
    },
    OptionSpec {
        section: "menu",
        name: "oss",
        default: Initial::Unset("only the [os NAME] sections"),
        doc: "A BootTorrent `oss/` folder: each `NAME/config.yaml` in it is an operating system, after the `[os NAME]` sections, by NAME.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, cx| {
            c.menu.oss_dir = v.map(|v| resolve_path(cx.base, v));
            Ok(c.menu.oss_dir.as_deref().map(path_text))
        },
    },
    OptionSpec {
        section: "menu",
        name: "url",
        default: Initial::Unset("http://ADDRESS[:PORT] of the HTTP service (-H)"),
        doc: "The base URL machines reach bootd's HTTP service at, written in the menu, the torrents (web seed) and phase 1's command line.",
        mistaken_for: &["host_ip"],
        fallback: None,
        apply: |c, v, _| {
            c.menu.url = v.map(menu_url).transpose()?;
            Ok(c.menu.url.clone())
        },
    },
    OptionSpec {
        section: "menu",
        name: "phase1_kernel",
        default: Initial::Value("phase1/vmlinuz"),
        doc: "Phase 1's kernel (scripts/build-phase1.sh), a name under the HTTP root, booted for `kexec` and `bin` entries.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.menu.phase1_kernel = served_name(v.unwrap_or_default())?;
            Ok(Some(c.menu.phase1_kernel.clone()))
        },
    },
    OptionSpec {
        section: "menu",
        name: "phase1_initrd",
        default: Initial::Value("phase1/initrd.img"),
        doc: "Phase 1's initramfs, a name under the HTTP root.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.menu.phase1_initrd = served_name(v.unwrap_or_default())?;
            Ok(Some(c.menu.phase1_initrd.clone()))
        },
    },
    OptionSpec {
        section: "menu",
        name: "phase1_cmdline",
        default: Initial::Unset("none: phase 1 shows on the screen"),
        doc: "Words added to phase 1's kernel command line, verbatim: `console=ttyS0,115200` shows phase 1 on a serial console.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.menu.phase1_cmdline = v.unwrap_or_default().trim().to_string();
            Ok((!c.menu.phase1_cmdline.is_empty()).then(|| c.menu.phase1_cmdline.clone()))
        },
    },
    OptionSpec {
        section: "menu",
        name: "seed_time",
        default: Initial::Value("30"),
        doc: "Seconds phase 1 keeps sharing an operating system's pieces after its own download completes, before it starts it.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            c.menu.seed_time = value::integer(v.unwrap_or_default(), 0, 86_400)?;
            Ok(Some(c.menu.seed_time.to_string()))
        },
    },
    OptionSpec {
        section: "menu",
        name: "tracker",
        default: Initial::Unset("none: peers find each other by local peer discovery"),
        doc: "A BitTorrent tracker's http:// announce URL written in every torrent (e.g. opentracker's http://ADDRESS:6969/announce).",
        mistaken_for: &["announce", "opentracker"],
        fallback: None,
        apply: |c, v, _| {
            c.menu.tracker = v.map(tracker_url).transpose()?;
            Ok(c.menu.tracker.clone())
        },
    },
    // [os NAME]: applied to the operating system the loader is reading.
    OptionSpec {
        section: "os",
        name: "name",
        default: Initial::Unset("the section's NAME"),
        doc: "The label shown in the menu.",
        mistaken_for: &["dispname", "label"],
        fallback: None,
        apply: |c, v, _| {
            let Some(os) = c.menu.oss.last_mut() else {
                return Ok(None);
            };
            if let Some(v) = v {
                os.display = v.trim().to_string();
            }
            Ok(v.map(|_| os.display.clone()))
        },
    },
    OptionSpec {
        section: "os",
        name: "method",
        default: Initial::Value("kexec"),
        doc: "`kexec` (phase 1 fetches kernel and initrd by BitTorrent and starts them with kexec), `direct` (iPXE loads them over HTTP), `bin` (phase 1 fetches a program by BitTorrent and runs it) or `sanboot` (iPXE boots a disk image, an ISO, over HTTP).",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let method = boot_method(v.unwrap_or_default())?;
            if let Some(os) = c.menu.oss.last_mut() {
                os.method = method;
            }
            Ok(Some(method.as_str().to_string()))
        },
    },
    OptionSpec {
        section: "os",
        name: "dir",
        default: Initial::Unset("the folder NAME beside the configuration file"),
        doc: "The folder holding the operating system's files; all of them go into its torrent.",
        mistaken_for: &["path", "folder"],
        fallback: None,
        apply: |c, v, cx| {
            let Some(os) = c.menu.oss.last_mut() else {
                return Ok(None);
            };
            os.dir = v.map(|v| resolve_path(cx.base, v)).unwrap_or_default();
            Ok(v.map(|_| path_text(&os.dir)))
        },
    },
    OptionSpec {
        section: "os",
        name: "kernel",
        default: Initial::Unset("none; required by kexec and direct"),
        doc: "The kernel, a file in `dir`.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| os_file(c, v, |os| &mut os.kernel),
    },
    OptionSpec {
        section: "os",
        name: "initrd",
        default: Initial::Unset("none; required by kexec"),
        doc: "The initrd, a file in `dir`.",
        mistaken_for: &["initramfs"],
        fallback: None,
        apply: |c, v, _| os_file(c, v, |os| &mut os.initrd),
    },
    OptionSpec {
        section: "os",
        name: "cmdline",
        default: Initial::Value(""),
        doc: "The kernel command line, passed on verbatim (no quotes are added).",
        mistaken_for: &["append", "args"],
        fallback: None,
        apply: |c, v, _| {
            let text = v.unwrap_or_default().trim().to_string();
            if let Some(os) = c.menu.oss.last_mut() {
                os.cmdline = text.clone();
            }
            Ok(Some(text))
        },
    },
    OptionSpec {
        section: "os",
        name: "bin",
        default: Initial::Unset("none; required by bin"),
        doc: "The program phase 1 runs, a file in `dir`.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| os_file(c, v, |os| &mut os.bin),
    },
    OptionSpec {
        section: "os",
        name: "binargs",
        default: Initial::Value(""),
        doc: "The program's arguments, split at spaces.",
        mistaken_for: &[],
        fallback: None,
        apply: |c, v, _| {
            let text = v.unwrap_or_default().trim().to_string();
            if let Some(os) = c.menu.oss.last_mut() {
                os.binargs = text.clone();
            }
            Ok(Some(text))
        },
    },
    OptionSpec {
        section: "os",
        name: "image",
        default: Initial::Unset("none; required by sanboot"),
        doc: "The disk image (an ISO) iPXE boots with sanboot, a file in `dir`.",
        mistaken_for: &["iso"],
        fallback: None,
        apply: |c, v, _| os_file(c, v, |os| &mut os.image),
    },
];

/// `[menu] timeout`: whole seconds, negative for "wait for a choice".
fn menu_timeout(text: &str) -> ValueResult<i64> {
    match text.trim().parse::<i64>() {
        Ok(n) if (-1_000_000..=86_400).contains(&n) => Ok(n),
        _ => Err(
            "not a whole number of seconds up to 86400 (0: at once; negative: wait for a choice)"
                .into(),
        ),
    }
}

/// An `http://` base URL, without its trailing `/`.
fn menu_url(text: &str) -> ValueResult<String> {
    let url = text.trim().trim_end_matches('/');
    crate::http_client::Url::parse(url).map_err(|e| e.to_string())?;
    if !url.to_ascii_lowercase().starts_with("http://") {
        return Err(
            "the menu's URL must be http:// (iPXE and phase 1 fetch over plain HTTP)".into(),
        );
    }
    Ok(url.to_string())
}

/// A tracker URL: aria2 reaches `udp://` trackers only with DHT on, which phase 1
/// keeps off (no machine of the room should talk to the Internet's DHT).
fn tracker_url(text: &str) -> ValueResult<String> {
    let url = text.trim();
    if !url.to_ascii_lowercase().starts_with("http://") {
        return Err("only http:// trackers are reachable from phase 1 (aria2 runs with DHT off, which disables udp:// trackers)".into());
    }
    crate::http_client::Url::parse(url).map_err(|e| e.to_string())?;
    Ok(url.to_string())
}

/// A name under the HTTP root, as a URL path (no leading `/`).
fn served_name(text: &str) -> ValueResult<String> {
    let name = text.trim().trim_start_matches('/');
    if name.is_empty() || name.split('/').any(|part| part == ".." || part.is_empty()) {
        return Err("not a file name under the HTTP root".into());
    }
    Ok(name.to_string())
}

pub(crate) fn boot_method(text: &str) -> ValueResult<BootMethod> {
    match text.trim().to_ascii_lowercase().as_str() {
        "kexec" => Ok(BootMethod::Kexec),
        "direct" => Ok(BootMethod::Direct),
        "bin" => Ok(BootMethod::Bin),
        "sanboot" => Ok(BootMethod::Sanboot),
        "bin-qemu-x86_64" => Err("bin-qemu-x86_64 is not a method of bootd: boot the ISO with method = sanboot (iPXE reads it over HTTP) instead".into()),
        _ => Err("not a boot method (kexec, direct, bin or sanboot)".into()),
    }
}

/// Sets a file name of the operating system being read.
fn os_file(
    c: &mut Config,
    v: Option<&str>,
    field: fn(&mut OsConfig) -> &mut Option<String>,
) -> ValueResult<Option<String>> {
    let Some(os) = c.menu.oss.last_mut() else {
        return Ok(None);
    };
    let name = v.map(|v| v.trim().to_string());
    *field(os) = name.clone();
    Ok(name)
}

/// The `[httpd]` settings, made (with placeholders, as in `defaults`) when its first
/// option is applied.
fn httpd(config: &mut Config) -> &mut HttpdConfig {
    config.httpd.get_or_insert(HttpdConfig {
        address: None,
        port: 0,
        root: None,
        check_ip: false,
        max_connections: 0,
        timeout: Duration::ZERO,
        request_timeout: Duration::ZERO,
    })
}

/// Applies every option's default: `with_optional_sections` also makes the sections
/// read only when present (`[httpd]`).
fn defaults(with_optional_sections: bool) -> Config {
    // Placeholders only: every field of a section of options is then set by the
    // default of its option, and the data sections start empty.
    let mut config = Config {
        path: PathBuf::new(),
        dir: PathBuf::from("."),
        daemon: DaemonConfig { user: None },
        logger: LoggerConfig {
            target: LogTarget::None,
            level: log::LevelFilter::Off,
            file: None,
        },
        bootp: BootpConfig {
            proxy: false,
            access: None,
            address: Ipv4Addr::UNSPECIFIED,
            port: 0,
            allow_simple_dhcp: false,
            servername: String::new(),
            domain: String::new(),
            dns: DnsSetting::None,
            gateway: None,
            send_gateway: false,
            netmask: None,
            lease_time: 0,
            notify: Vec::new(),
            pools: Vec::new(),
            pool_count: 0,
            lease_file: PathBuf::new(),
            remembered_clients: 0,
        },
        boot_files: BootFiles::default(),
        static_dhcp: Vec::new(),
        buggy_clients: Vec::new(),
        mac_acl: Vec::new(),
        uuid_acl: Vec::new(),
        http: HttpAuthConfig {
            location: None,
            pxe_path: None,
            dhcp_path: None,
            timeout: Duration::ZERO,
            always_check: false,
            max_queries: 0,
        },
        tftp: TftpConfig {
            address: None,
            port: 0,
            max_blocksize: None,
            max_windowsize: 0,
            timeout: Duration::ZERO,
            retries: 0,
            max_transfers: 0,
            max_transfers_per_client: 0,
            max_timeout: Duration::ZERO,
            root: TftpRoot::Dir(PathBuf::new()),
            http_timeout: Duration::ZERO,
            busy_poll: Duration::ZERO,
            single_port: false,
        },
        filters: Vec::new(),
        httpd: None,
        nbd: NbdConfig {
            address: None,
            port: 0,
            exports: Vec::new(),
            cow_dir: None,
            cow_keep: Duration::ZERO,
            cow_max_size: 0,
            max_connections: 0,
        },
        menu: MenuConfig {
            default: None,
            timeout: 0,
            oss_dir: None,
            url: None,
            phase1_kernel: String::new(),
            phase1_initrd: String::new(),
            phase1_cmdline: String::new(),
            seed_time: 0,
            tracker: None,
            oss: Vec::new(),
        },
    };
    let context = Context {
        base: Path::new("/"),
    };
    for option in OPTIONS {
        let read = section(option.section)
            .is_some_and(|s| with_optional_sections || s.kind != SectionKind::OptionsIfPresent);
        if read {
            // A default that does not parse is caught by the table's tests.
            let _ = (option.apply)(&mut config, option.default.text(), &context);
        }
    }
    config
}

impl Default for Config {
    /// The table's defaults: what an empty file gives.
    fn default() -> Config {
        defaults(false)
    }
}

impl Default for LoggerConfig {
    fn default() -> LoggerConfig {
        defaults(false).logger
    }
}

impl Default for BootpConfig {
    fn default() -> BootpConfig {
        defaults(false).bootp
    }
}

impl Default for HttpAuthConfig {
    fn default() -> HttpAuthConfig {
        defaults(false).http
    }
}

impl Default for TftpConfig {
    fn default() -> TftpConfig {
        defaults(false).tftp
    }
}

impl Default for NbdConfig {
    fn default() -> NbdConfig {
        defaults(false).nbd
    }
}

impl Default for HttpdConfig {
    fn default() -> HttpdConfig {
        let mut config = defaults(true);
        httpd(&mut config).clone()
    }
}

fn http_location(text: &str) -> ValueResult<String> {
    let text = text.trim().trim_end_matches('/');
    let lower = text.to_ascii_lowercase();
    let url = if lower.starts_with("https://") || lower.starts_with("http://") {
        text.to_string()
    } else if text.contains("://") {
        return Err(
            "only http:// (and https:// with the https feature) locations are supported".into(),
        );
    } else {
        // pybootd 1.8 takes `host[:port][/prefix]` without a scheme.
        format!("http://{text}")
    };
    // What the client would refuse at the first query (an https:// location in a
    // build without TLS, a bad port) is refused now, at `--check`.
    crate::http_client::Url::parse(&url).map_err(|e| e.to_string())?;
    Ok(url)
}

fn http_path(text: &str) -> String {
    let text = text.trim();
    if text.starts_with('/') {
        text.to_string()
    } else {
        format!("/{text}")
    }
}

fn tftp_root(base: &Path, text: &str) -> ValueResult<TftpRoot> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let url = text.trim_end_matches('/');
        // What the client would refuse at the first request is refused now.
        crate::http_client::Url::parse(url).map_err(|e| e.to_string())?;
        return Ok(TftpRoot::Url(url.to_string()));
    }
    if text.contains("://") {
        return Err("a URL root must be http:// (or https:// with the https feature)".into());
    }
    Ok(TftpRoot::Dir(resolve_path(base, text)))
}

/// Absolute paths stay; relative ones (`./srv`, `srv`) are taken from the
/// directory holding the configuration file, so a daemon started from `/` by
/// systemd reads the same files as a run from a shell.
pub(crate) fn resolve_path(base: &Path, text: &str) -> PathBuf {
    let path = Path::new(text.trim());
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path.strip_prefix("./").unwrap_or(path))
    }
}

/// `NAME PATH [readonly|cow|write] [copy_to_ram]; …`: the path is what lies
/// between the name and the trailing keywords, so it may hold spaces.
fn nbd_exports(base: &Path, text: &str) -> ValueResult<Vec<NbdExport>> {
    let mut exports: Vec<NbdExport> = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let mut words: Vec<&str> = entry.split_whitespace().collect();
        let mut mode = None;
        let mut copy_to_ram = false;
        while words.len() > 2 {
            let Some(last) = words.last() else { break };
            match last.to_ascii_lowercase().as_str() {
                "copy_to_ram" if !copy_to_ram => copy_to_ram = true,
                "readonly" | "ro" if mode.is_none() => mode = Some(NbdMode::ReadOnly),
                "cow" if mode.is_none() => mode = Some(NbdMode::Cow),
                "write" | "rw" if mode.is_none() => mode = Some(NbdMode::Write),
                _ => break,
            }
            words.pop();
        }
        let [name, path @ ..] = words.as_slice() else {
            continue;
        };
        if path.is_empty() {
            return Err(format!(
                "export `{entry}` has no image: write NAME PATH [readonly|cow|write] [copy_to_ram]"
            ));
        }
        if name.len() > 4096 {
            return Err("an export name is longer than the 4096 bytes NBD allows".into());
        }
        if exports.iter().any(|e| e.name == *name) {
            return Err(format!("export {name} is named twice"));
        }
        let mode = mode.unwrap_or(NbdMode::ReadOnly);
        if copy_to_ram && mode == NbdMode::Write {
            return Err(format!(
                "export {name}: copy_to_ram cannot go with write (the writes would reach only the copy in memory); use cow"
            ));
        }
        exports.push(NbdExport {
            name: name.to_string(),
            path: resolve_path(base, &path.join(" ")),
            mode,
            copy_to_ram,
        });
    }
    Ok(exports)
}

fn nbd_exports_text(exports: &[NbdExport]) -> String {
    let entries: Vec<String> = exports
        .iter()
        .map(|e| {
            let ram = if e.copy_to_ram { " copy_to_ram" } else { "" };
            format!("{} {} {}{ram}", e.name, e.path.display(), e.mode.as_str())
        })
        .collect();
    entries.join("; ")
}

/// A size in bytes: a number, optionally followed by K, M or G (powers of 1024).
fn byte_size(text: &str) -> ValueResult<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err("not a size; write bytes, or a number with K, M or G".into()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| "not a size; write bytes, or a number with K, M or G".into())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bootd".into())
}

fn ip_list_text(list: &[Ipv4Addr]) -> Option<String> {
    (!list.is_empty()).then(|| {
        let items: Vec<String> = list.iter().map(Ipv4Addr::to_string).collect();
        items.join(";")
    })
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

pub(crate) fn on_off(b: bool) -> String {
    if b { "on".into() } else { "off".into() }
}

fn seconds_text(d: &Duration) -> String {
    format!("{}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        let context = Context {
            base: Path::new("/"),
        };
        let mut config = defaults(true);
        for option in OPTIONS {
            let shown = (option.apply)(&mut config, option.default.text(), &context);
            assert!(
                shown.is_ok(),
                "[{}] {}: the default does not parse: {shown:?}",
                option.section,
                option.name
            );
        }
    }

    #[test]
    fn every_option_belongs_to_an_options_section_and_appears_once() {
        for (i, option) in OPTIONS.iter().enumerate() {
            let spec = section(option.section).map(|s| (s.name, s.kind));
            assert!(
                matches!(
                    spec,
                    Some((name, SectionKind::Options | SectionKind::OptionsIfPresent | SectionKind::PerItem)) if name == option.section
                ),
                "[{}] {}",
                option.section,
                option.name
            );
            assert!(
                !OPTIONS[..i]
                    .iter()
                    .any(|o| o.section == option.section && o.name == option.name),
                "[{}] {} is listed twice",
                option.section,
                option.name
            );
            if let Some((section, name)) = option.fallback {
                assert!(
                    OPTIONS
                        .iter()
                        .any(|o| o.section == section && o.name == name),
                    "fallback of [{}] {}",
                    option.section,
                    option.name
                );
            }
        }
    }

    #[test]
    fn options_are_grouped_in_section_order() {
        let order: Vec<usize> = OPTIONS
            .iter()
            .map(|o| {
                SECTIONS
                    .iter()
                    .position(|s| s.name == o.section)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        assert!(order.is_sorted(), "{order:?}");
    }

    #[test]
    fn the_typed_defaults_are_the_tables() {
        let b = BootpConfig::default();
        assert_eq!(b.port, 67);
        assert_eq!(b.pool_count, 10);
        assert!(b.send_gateway && !b.allow_simple_dhcp);
        assert_eq!(b.lease_file, PathBuf::from("/var/lib/bootd/leases"));
        assert!(!b.servername.is_empty());
        let t = TftpConfig::default();
        assert_eq!(t.port, 69);
        assert_eq!(t.root, TftpRoot::Dir(PathBuf::from("/srv/tftp")));
        assert_eq!(t.busy_poll, Duration::from_micros(50));
        assert_eq!(HttpAuthConfig::default().timeout, Duration::from_secs(5));
        assert_eq!(LoggerConfig::default().level, log::LevelFilter::Info);
        let h = HttpdConfig::default();
        assert_eq!(h.port, 80);
        assert!(h.check_ip);
        assert!(Config::default().httpd.is_none());
        let n = NbdConfig::default();
        assert_eq!(n.port, 10809);
        assert!(n.exports.is_empty() && n.cow_dir.is_none());
        assert_eq!(n.cow_keep, Duration::from_secs(600));
        assert_eq!(n.cow_max_size, 1 << 30);
    }

    #[test]
    fn nbd_exports_are_name_path_and_keywords() {
        let base = Path::new("/etc/bootd");
        let exports = nbd_exports(
            base,
            "debian images/debian 12.img cow copy_to_ram; tools /srv/tools.img; rw /dev/sdb write;",
        )
        .unwrap();
        assert_eq!(
            exports,
            vec![
                NbdExport {
                    name: "debian".into(),
                    path: PathBuf::from("/etc/bootd/images/debian 12.img"),
                    mode: NbdMode::Cow,
                    copy_to_ram: true
                },
                NbdExport {
                    name: "tools".into(),
                    path: PathBuf::from("/srv/tools.img"),
                    mode: NbdMode::ReadOnly,
                    copy_to_ram: false
                },
                NbdExport {
                    name: "rw".into(),
                    path: PathBuf::from("/dev/sdb"),
                    mode: NbdMode::Write,
                    copy_to_ram: false
                },
            ]
        );
        assert_eq!(
            nbd_exports_text(&exports[1..]),
            "tools /srv/tools.img readonly; rw /dev/sdb write"
        );
        assert!(nbd_exports(base, "lonely").is_err());
        assert!(nbd_exports(base, "a x.img; a y.img").is_err());
        assert!(nbd_exports(base, "a x.img write copy_to_ram").is_err());
    }

    #[test]
    fn sizes_take_k_m_g() {
        assert_eq!(byte_size("4096"), Ok(4096));
        assert_eq!(byte_size("64K"), Ok(64 << 10));
        assert_eq!(byte_size("512 MiB"), Ok(512 << 20));
        assert_eq!(byte_size("2g"), Ok(2 << 30));
        assert!(byte_size("lots").is_err());
        assert!(byte_size("99999999999T").is_err());
    }

    #[test]
    fn sections_resolve_by_either_name_in_any_case() {
        assert_eq!(section("BOOTPD").map(|s| s.name), Some("bootp"));
        assert_eq!(section("tftpd").map(|s| s.name), Some("tftp"));
        assert_eq!(section("Filters").map(|s| s.name), Some("filters"));
        assert!(section("tftpx").is_none());
    }
}
