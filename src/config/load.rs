//! From a parsed INI `Document` to a typed `Config`, with every default, every
//! repetition and every unknown name accounted for.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ini::{Document, Entry};
use super::types::*;
use super::value::{self, ValueResult};

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    Line(usize),
}

/// One effective setting, for `bootd --check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub section: &'static str,
    pub option: String,
    pub value: String,
    pub origin: Origin,
}

/// A loaded configuration and what a sysadmin should hear about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    pub settings: Vec<Setting>,
}

/// Every problem found in the file, one message per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub messages: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// Reads and checks the configuration file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read(path).map_err(|e| ConfigError {
        messages: vec![format!(
            "{}: cannot read the configuration file: {e}",
            path.display()
        )],
    })?;
    let text = String::from_utf8(text).map_err(|e| ConfigError {
        messages: vec![format!(
            "{}: the configuration file is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )],
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    load_str(path, &text, &base)
}

/// Checks configuration `text`; `path` names it in messages, `base` anchors relative paths.
pub fn load_str(path: &Path, text: &str, base: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let doc = Document::parse(text).map_err(|e| ConfigError {
        messages: vec![format!("{file}:{}: {}", e.line, e.message)],
    })?;
    let mut reader = Reader::new(&file, &doc);
    let config = reader.build(path, base);
    if reader.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: reader.warnings,
            settings: reader.settings,
        })
    } else {
        Err(ConfigError {
            messages: reader.errors,
        })
    }
}

/// The options each section takes; sections not listed take free-form keys.
pub(crate) const SCHEMA: &[(&str, &[&str])] = &[
    ("logger", &["type", "level", "file"]),
    (
        "bootp",
        &[
            "access",
            "address",
            "port",
            "allow_simple_dhcp",
            "servername",
            "domain",
            "dns",
            "gateway",
            "set_gateway",
            "netmask",
            "lease_time",
            "notify",
            "timeout",
            "boot_file",
            "pool_start",
            "pool_count",
            "lease_file",
        ],
    ),
    (
        "tftp",
        &[
            "address",
            "port",
            "blocksize",
            "windowsize",
            "timeout",
            "retries",
            "max_transfers",
            "root",
            "http_timeout",
            "busy_poll",
        ],
    ),
    (
        "http",
        &["location", "pxe", "dhcp", "timeout", "always_check"],
    ),
    ("httpd", &["address", "port", "root", "check_ip"]),
];

/// Sections whose keys are data (MACs, UUIDs, patterns, architectures).
const DATA_SECTIONS: &[&str] = &[
    "bootfile",
    "static_dhcp",
    "buggy_clients",
    "mac",
    "uuid",
    "filters",
];

/// pybootd 1.8 renamed `[bootp]`/`[tftp]`; both names mean the same section.
fn canonical_section(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "bootpd" => "bootp".into(),
        "tftpd" => "tftp".into(),
        _ => lower,
    }
}

fn static_name(canonical: &str) -> &'static str {
    SCHEMA
        .iter()
        .map(|(s, _)| *s)
        .chain(DATA_SECTIONS.iter().copied())
        .find(|s| *s == canonical)
        .unwrap_or("?")
}

/// Known mistakes and renamed options, with the hint to give.
fn hint_for(section: &str, option: &str) -> Option<&'static str> {
    match (section, option) {
        ("bootp", "server_name") => Some("did you mean `servername`?"),
        ("tftp", "blksize") => Some("did you mean `blocksize`?"),
        ("tftp", "retry") => Some("did you mean `retries`?"),
        ("logger", "path") => Some("did you mean `file`?"),
        _ => None,
    }
}

/// (canonical name, every header as (name as written, line), entries of all of them).
type SectionGroup = (String, Vec<(String, usize)>, Vec<Entry>);

struct Reader<'a> {
    file: &'a str,
    /// canonical section → its entries, one per key (repetitions resolved).
    sections: HashMap<String, Vec<Entry>>,
    /// canonical section → the line of its first header.
    section_lines: HashMap<String, usize>,
    errors: Vec<String>,
    warnings: Vec<String>,
    settings: Vec<Setting>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a str, doc: &Document) -> Reader<'a> {
        let mut reader = Reader {
            file,
            sections: HashMap::new(),
            section_lines: HashMap::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            settings: Vec::new(),
        };
        reader.merge(doc);
        reader
    }

    /// Groups sections by canonical name and resolves repeated keys: the same value
    /// twice is a warning, two different values an error; both name both lines.
    fn merge(&mut self, doc: &Document) {
        let mut groups: Vec<SectionGroup> = Vec::new();
        for section in &doc.sections {
            let canonical = canonical_section(&section.name);
            let headers = section
                .header_lines
                .iter()
                .map(|l| (section.name.clone(), *l));
            match groups.iter_mut().find(|(c, _, _)| *c == canonical) {
                Some((_, lines, entries)) => {
                    lines.extend(headers);
                    entries.extend(section.entries.iter().cloned());
                }
                None => groups.push((canonical, headers.collect(), section.entries.clone())),
            }
        }
        for (canonical, mut headers, mut entries) in groups {
            headers.sort_by_key(|(_, l)| *l);
            entries.sort_by_key(|e| e.line);
            let known_section = SCHEMA.iter().any(|(s, _)| *s == canonical)
                || DATA_SECTIONS.contains(&canonical.as_str());
            if !known_section {
                self.warnings.push(format!(
                    "{}:{}: unknown section [{}] is ignored; bootd knows [{}]",
                    self.file,
                    headers[0].1,
                    headers[0].0,
                    SCHEMA
                        .iter()
                        .map(|(s, _)| *s)
                        .chain(DATA_SECTIONS.iter().copied())
                        .collect::<Vec<_>>()
                        .join("], [")
                ));
                continue;
            }
            if headers.len() > 1 {
                let lines: Vec<String> = headers
                    .iter()
                    .map(|(name, l)| format!("[{name}] on line {l}"))
                    .collect();
                self.warnings.push(format!(
                    "{}:{}: section [{}] appears {} times ({}); their options are read as one section",
                    self.file,
                    headers[1].1,
                    canonical,
                    headers.len(),
                    lines.join(", ")
                ));
            }
            self.section_lines.insert(canonical.clone(), headers[0].1);
            let case_sensitive = canonical == "filters";
            let mut unique: Vec<Entry> = Vec::new();
            for entry in entries {
                let same_key = |e: &Entry| {
                    if case_sensitive {
                        e.key == entry.key
                    } else {
                        e.key.eq_ignore_ascii_case(&entry.key)
                    }
                };
                match unique.iter_mut().find(|e| same_key(e)) {
                    Some(first) if first.value == entry.value => {
                        self.warnings.push(format!(
                            "{}:{}: [{canonical}] {} repeats line {} with the same value; the repetition is harmless but can be removed",
                            self.file, entry.line, entry.key, first.line
                        ));
                    }
                    Some(first) => {
                        self.errors.push(format!(
                            "{}:{}: [{canonical}] {} = {} conflicts with line {} ({} = {}); keep one of them",
                            self.file, entry.line, entry.key, entry.value, first.line, first.key, first.value
                        ));
                    }
                    None => unique.push(entry),
                }
            }
            if let Some((_, options)) = SCHEMA.iter().find(|(s, _)| *s == canonical) {
                for entry in &unique {
                    let key = entry.key.to_ascii_lowercase();
                    if !options.contains(&key.as_str()) {
                        let hint = hint_for(&canonical, &key)
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default();
                        self.warnings.push(format!(
                            "{}:{}: unknown option [{canonical}] {} is ignored{hint}; [{canonical}] takes: {}",
                            self.file,
                            entry.line,
                            entry.key,
                            options.join(", ")
                        ));
                    }
                }
            }
            self.sections.insert(canonical, unique);
        }
    }

    fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    fn entry(&self, section: &str, option: &str) -> Option<Entry> {
        self.sections
            .get(section)?
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(option))
            .cloned()
    }

    fn entries(&self, section: &str) -> Vec<Entry> {
        self.sections.get(section).cloned().unwrap_or_default()
    }

    fn error(&mut self, section: &str, entry: &Entry, message: impl fmt::Display) {
        self.errors.push(format!(
            "{}:{}: [{section}] {} = {}: {message}",
            self.file, entry.line, entry.key, entry.value
        ));
    }

    fn record(&mut self, section: &str, option: &str, value: String, origin: Origin) {
        self.settings.push(Setting {
            section: static_name(section),
            option: option.to_string(),
            value,
            origin,
        });
    }

    /// An optional typed value. An empty value counts as absent.
    fn optional<T>(
        &mut self,
        section: &str,
        option: &str,
        parse: impl Fn(&str) -> ValueResult<T>,
        show: impl Fn(&T) -> String,
        unset: &str,
    ) -> Option<T> {
        let found = self
            .entry(section, option)
            .filter(|e| !e.value.trim().is_empty());
        match found {
            Some(entry) => match parse(&entry.value) {
                Ok(v) => {
                    self.record(section, option, show(&v), Origin::Line(entry.line));
                    Some(v)
                }
                Err(message) => {
                    self.error(section, &entry, message);
                    None
                }
            },
            None => {
                self.record(section, option, unset.to_string(), Origin::Default);
                None
            }
        }
    }

    /// A typed value with a default.
    fn value<T>(
        &mut self,
        section: &str,
        option: &str,
        default: T,
        parse: impl Fn(&str) -> ValueResult<T>,
        show: impl Fn(&T) -> String,
    ) -> T {
        let found = self
            .entry(section, option)
            .filter(|e| !e.value.trim().is_empty());
        match found {
            Some(entry) => match parse(&entry.value) {
                Ok(v) => {
                    self.record(section, option, show(&v), Origin::Line(entry.line));
                    v
                }
                Err(message) => {
                    self.error(section, &entry, message);
                    default
                }
            },
            None => {
                let shown = show(&default);
                self.record(section, option, shown, Origin::Default);
                default
            }
        }
    }

    fn text(&mut self, section: &str, option: &str, default: &str) -> String {
        self.value(
            section,
            option,
            default.to_string(),
            |s| Ok(s.trim().to_string()),
            String::clone,
        )
    }

    fn build(&mut self, path: &Path, base: &Path) -> Config {
        let logger = self.logger(base);
        let bootp = self.bootp(base);
        let boot_files = self.boot_files();
        let static_dhcp = self.static_dhcp();
        let buggy_clients = self.mac_rules("buggy_clients");
        let mac_acl = self.mac_rules("mac");
        let uuid_acl = self.uuid_rules();
        let http = self.http();
        let tftp = self.tftp(base);
        let filters = self.filters();
        let httpd = self.httpd(base);
        self.check_access(&bootp);
        Config {
            path: path.to_path_buf(),
            logger,
            bootp,
            boot_files,
            static_dhcp,
            buggy_clients,
            mac_acl,
            uuid_acl,
            http,
            tftp,
            filters,
            httpd,
        }
    }

    fn logger(&mut self, base: &Path) -> LoggerConfig {
        let target = self.value(
            "logger",
            "type",
            LogTarget::Stderr,
            |s| match s.trim().to_ascii_lowercase().as_str() {
                "stderr" => Ok(LogTarget::Stderr),
                "stdout" => Ok(LogTarget::Stdout),
                "file" => Ok(LogTarget::File),
                "syslog" | "unix" => Ok(LogTarget::Syslog),
                "none" => Ok(LogTarget::None),
                _ => Err("unknown logger type; use stderr, stdout, file, syslog or none".into()),
            },
            |t| format!("{t:?}").to_ascii_lowercase(),
        );
        let level = self.value(
            "logger",
            "level",
            log::LevelFilter::Info,
            |s| match s.trim().to_ascii_lowercase().as_str() {
                // simplelog has no level above error: critical messages are errors.
                "critical" | "error" => Ok(log::LevelFilter::Error),
                "warning" | "warn" => Ok(log::LevelFilter::Warn),
                "info" => Ok(log::LevelFilter::Info),
                "debug" | "all" => Ok(log::LevelFilter::Debug),
                _ => Err("unknown level; use critical, error, warning, info or debug".into()),
            },
            |l| l.as_str().to_ascii_lowercase(),
        );
        let file = self.optional(
            "logger",
            "file",
            |s| Ok(resolve_path(base, s)),
            |p| p.display().to_string(),
            "(none)",
        );
        if target == LogTarget::File && file.is_none() {
            self.errors.push(format!(
                "{}: [logger] type = file needs [logger] file = /path/to/bootd.log",
                self.file
            ));
        }
        LoggerConfig {
            target,
            level,
            file,
        }
    }

    fn bootp(&mut self, base: &Path) -> BootpConfig {
        let s = "bootp";
        let access = self.optional(
            s,
            "access",
            |v| match v.trim().to_ascii_lowercase().as_str() {
                "mac" => Ok(Access::Mac),
                "uuid" => Ok(Access::Uuid),
                "http" => Ok(Access::Http),
                _ => Err("unknown access mode; use mac, uuid or http (or leave it out to serve everyone)".into()),
            },
            |a| format!("{a:?}").to_ascii_lowercase(),
            "(none: every client is served)",
        );
        let address = self.value(s, "address", Ipv4Addr::UNSPECIFIED, value::ipv4, ip_text);
        let port = self.value(s, "port", 67, value::port, u16::to_string);
        let allow_simple_dhcp = self.value(s, "allow_simple_dhcp", false, value::boolean, on_off);
        let servername = self.text(s, "servername", &host_name());
        let domain = self.text(s, "domain", "");
        let dns = self.value(s, "dns", DnsSetting::None, value::dns, |d| match d {
            DnsSetting::None => "(none)".into(),
            DnsSetting::Auto => "auto".into(),
            DnsSetting::List(l) => l.iter().map(ip_text).collect::<Vec<_>>().join(";"),
        });
        let gateway = self.optional(s, "gateway", value::ipv4, ip_text, "(the server address)");
        let send_gateway = self.value(s, "set_gateway", true, value::boolean, on_off);
        let netmask = self.optional(s, "netmask", value::ipv4, ip_text, "(the interface mask)");
        let lease_time = self.value(
            s,
            "lease_time",
            86400,
            |v| value::integer(v, 60, u64::from(u32::MAX)).map(|n| n as u32),
            u32::to_string,
        );
        let notify = self.value(s, "notify", Vec::new(), value::notify_targets, |t| {
            if t.is_empty() {
                "(none)".into()
            } else {
                t.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(";")
            }
        });
        let pools = self.value(s, "pool_start", Vec::new(), value::ipv4_list, |l| {
            if l.is_empty() {
                "(unset)".into()
            } else {
                l.iter().map(ip_text).collect::<Vec<_>>().join(";")
            }
        });
        let pool_count = self.value(
            s,
            "pool_count",
            10,
            |v| value::integer(v, 0, 65536).map(|n| n as u32),
            u32::to_string,
        );
        if let Some(entry) = self.entry(s, "pool_count") {
            for start in &pools {
                let last = u64::from(u32::from(*start)) + u64::from(pool_count);
                if last > u64::from(u32::MAX) {
                    self.error(
                        s,
                        &entry,
                        format!(
                            "the pool from {start} runs past 255.255.255.255; lower pool_count"
                        ),
                    );
                }
            }
        }
        let lease_file = self.value(
            s,
            "lease_file",
            PathBuf::from("/var/lib/bootd/leases"),
            |v| Ok(resolve_path(base, v)),
            |p| p.display().to_string(),
        );
        BootpConfig {
            access,
            address,
            port,
            allow_simple_dhcp,
            servername,
            domain,
            dns,
            gateway,
            send_gateway,
            netmask,
            lease_time,
            notify,
            pools,
            pool_count,
            lease_file,
        }
    }

    /// `[bootfile]` (1.8) and `[bootp] boot_file` (1.5) together.
    fn boot_files(&mut self) -> BootFiles {
        let legacy = self.optional(
            "bootp",
            "boot_file",
            |v| Ok(v.trim().to_string()),
            String::clone,
            "(unset)",
        );
        let mut files = BootFiles::default();
        for entry in self.entries("bootfile") {
            let file = entry.value.trim().to_string();
            if file.is_empty() {
                self.error("bootfile", &entry, "the boot file name is empty");
                continue;
            }
            if entry.key.eq_ignore_ascii_case("default") {
                files.default = Some(file.clone());
            } else if entry.key.eq_ignore_ascii_case("ipxe") {
                files.ipxe = Some(file.clone());
            } else {
                match entry.key.trim().parse::<u16>() {
                    Ok(arch) => files.by_arch.push((arch, file.clone())),
                    Err(_) => {
                        self.error(
                            "bootfile",
                            &entry,
                            "the key must be `default`, `ipxe` or a client architecture number (such as 00000 for BIOS, 00007 for x64 UEFI)",
                        );
                        continue;
                    }
                }
            }
            self.record("bootfile", &entry.key, file, Origin::Line(entry.line));
        }
        if let Some(legacy) = legacy {
            match &files.default {
                Some(default) if *default != legacy => {
                    let line = self
                        .entry("bootp", "boot_file")
                        .map(|e| e.line)
                        .unwrap_or(0);
                    self.errors.push(format!(
                        "{}:{line}: [bootp] boot_file = {legacy} conflicts with [bootfile] default = {default}; keep one of them",
                        self.file
                    ));
                }
                Some(_) => {}
                None => files.default = Some(legacy),
            }
        }
        files
    }

    fn static_dhcp(&mut self) -> Vec<StaticLease> {
        let mut leases: Vec<StaticLease> = Vec::new();
        for entry in self.entries("static_dhcp") {
            let mac = match value::mac(&entry.key) {
                Ok(m) => m,
                Err(e) => {
                    self.error("static_dhcp", &entry, e);
                    continue;
                }
            };
            let ip = match value::ipv4(&entry.value) {
                Ok(ip) => ip,
                Err(e) => {
                    self.error("static_dhcp", &entry, e);
                    continue;
                }
            };
            if let Some(other) = leases.iter().find(|l| l.mac == mac) {
                let line = other.line;
                self.error(
                    "static_dhcp",
                    &entry,
                    format!("{mac} is already reserved on line {line}"),
                );
                continue;
            }
            if let Some(other) = leases.iter().find(|l| l.ip == ip) {
                let (line, other_mac) = (other.line, other.mac);
                self.error(
                    "static_dhcp",
                    &entry,
                    format!("{ip} is already reserved for {other_mac} on line {line}"),
                );
                continue;
            }
            self.record(
                "static_dhcp",
                &mac.to_string(),
                ip.to_string(),
                Origin::Line(entry.line),
            );
            leases.push(StaticLease {
                mac,
                ip,
                line: entry.line,
            });
        }
        leases
    }

    fn mac_rules(&mut self, section: &'static str) -> Vec<MacRule> {
        let mut rules = Vec::new();
        for entry in self.entries(section) {
            let parsed = value::mac_pattern(&entry.key)
                .and_then(|(v, m)| value::boolean(&entry.value).map(|allow| (v, m, allow)));
            match parsed {
                Ok((value, mask, allow)) => {
                    self.record(
                        section,
                        &entry.key,
                        on_off(&allow),
                        Origin::Line(entry.line),
                    );
                    rules.push(MacRule {
                        text: entry.key.clone(),
                        value,
                        mask,
                        allow,
                        line: entry.line,
                    });
                }
                Err(e) => self.error(section, &entry, e),
            }
        }
        rules
    }

    fn uuid_rules(&mut self) -> Vec<UuidRule> {
        let mut rules = Vec::new();
        for entry in self.entries("uuid") {
            let parsed = value::uuid_pattern(&entry.key)
                .and_then(|(v, m)| value::boolean(&entry.value).map(|allow| (v, m, allow)));
            match parsed {
                Ok((value, mask, allow)) => {
                    self.record("uuid", &entry.key, on_off(&allow), Origin::Line(entry.line));
                    rules.push(UuidRule {
                        text: entry.key.clone(),
                        value,
                        mask,
                        allow,
                        line: entry.line,
                    });
                }
                Err(e) => self.error("uuid", &entry, e),
            }
        }
        rules
    }

    fn http(&mut self) -> HttpAuthConfig {
        let s = "http";
        let location = self.optional(
            s,
            "location",
            |v| {
                let v = v.trim().trim_end_matches('/');
                if v.starts_with("https://") || v.starts_with("http://") {
                    Ok(v.to_string())
                } else if v.contains("://") {
                    Err("only http:// (and https:// with the https feature) locations are supported".into())
                } else {
                    // pybootd 1.8 takes `host[:port][/prefix]` without a scheme.
                    Ok(format!("http://{v}"))
                }
            },
            String::clone,
            "(unset)",
        );
        let path = |v: &str| -> ValueResult<String> {
            let v = v.trim();
            Ok(if v.starts_with('/') {
                v.to_string()
            } else {
                format!("/{v}")
            })
        };
        let pxe_path = self.optional(s, "pxe", path, String::clone, "(unset)");
        let dhcp_path = self.optional(s, "dhcp", path, String::clone, "(unset)");
        // The seeds document the timeout in [bootp]; pybootd 1.8 reads it from [http].
        let legacy_timeout = self.optional(
            "bootp",
            "timeout",
            |v| value::seconds(v, 0.1, 300.0),
            seconds_text,
            "(unset: [http] timeout applies)",
        );
        let timeout = self.value(
            s,
            "timeout",
            legacy_timeout.unwrap_or(Duration::from_secs(5)),
            |v| value::seconds(v, 0.1, 300.0),
            seconds_text,
        );
        let always_check = self.value(s, "always_check", false, value::boolean, on_off);
        HttpAuthConfig {
            location,
            pxe_path,
            dhcp_path,
            timeout,
            always_check,
        }
    }

    fn tftp(&mut self, base: &Path) -> TftpConfig {
        let s = "tftp";
        let address = self.optional(
            s,
            "address",
            value::ipv4,
            ip_text,
            "(the BOOTP server address)",
        );
        let port = self.value(s, "port", 69, value::port, u16::to_string);
        let max_blocksize = self.optional(
            s,
            "blocksize",
            |v| value::integer(v, 8, 65464).map(|n| n as u16),
            u16::to_string,
            "(the interface MTU decides)",
        );
        let max_windowsize = self.value(
            s,
            "windowsize",
            64,
            |v| value::integer(v, 1, 64).map(|n| n as u16),
            u16::to_string,
        );
        let timeout = self.value(
            s,
            "timeout",
            Duration::from_secs(1),
            |v| value::seconds(v, 0.1, 255.0),
            seconds_text,
        );
        let retries = self.value(
            s,
            "retries",
            5,
            |v| value::integer(v, 1, 100).map(|n| n as u32),
            u32::to_string,
        );
        let max_transfers = self.value(
            s,
            "max_transfers",
            1000,
            |v| value::integer(v, 1, 100_000).map(|n| n as usize),
            usize::to_string,
        );
        let root = self.value(
            s,
            "root",
            TftpRoot::Dir(PathBuf::from("/srv/tftp")),
            |v| tftp_root(base, v),
            |r| match r {
                TftpRoot::Dir(p) => p.display().to_string(),
                TftpRoot::Url(u) => u.clone(),
            },
        );
        let http_timeout = self.value(
            s,
            "http_timeout",
            Duration::from_secs(10),
            |v| value::seconds(v, 0.1, 300.0),
            seconds_text,
        );
        let busy_poll = self.value(
            s,
            "busy_poll",
            Duration::from_micros(50),
            |v| value::integer(v, 0, 1000).map(Duration::from_micros),
            |d| d.as_micros().to_string(),
        );
        TftpConfig {
            address,
            port,
            max_blocksize,
            max_windowsize,
            timeout,
            retries,
            max_transfers,
            root,
            http_timeout,
            busy_poll,
        }
    }

    fn filters(&mut self) -> Vec<FilterRule> {
        let mut rules = Vec::new();
        for entry in self.entries("filters") {
            let value = entry.value.trim().to_string();
            if value.is_empty() {
                self.error("filters", &entry, "the replacement name is empty");
                continue;
            }
            if value.starts_with('[') != value.ends_with(']') {
                self.error(
                    "filters",
                    &entry,
                    "a `[path]` marker must be the whole value, brackets on both ends",
                );
                continue;
            }
            self.record(
                "filters",
                &entry.key,
                value.clone(),
                Origin::Line(entry.line),
            );
            rules.push(FilterRule {
                pattern: entry.key.trim().to_string(),
                value,
                line: entry.line,
            });
        }
        // The TFTP side compiles the rules; a rule it cannot use is a configuration error.
        if let Err(e) = crate::filters::Filters::new(&rules) {
            self.errors
                .push(format!("{}:{}: [filters] {}", self.file, e.line, e.message));
        }
        rules
    }

    fn httpd(&mut self, base: &Path) -> Option<HttpdConfig> {
        if !self.has_section("httpd") {
            return None;
        }
        let s = "httpd";
        let address = self.optional(
            s,
            "address",
            value::ipv4,
            ip_text,
            "(the BOOTP server address)",
        );
        let port = self.value(s, "port", 80, value::port, u16::to_string);
        let root = self.optional(
            s,
            "root",
            |v| Ok(resolve_path(base, v)),
            |p| p.display().to_string(),
            "(unset)",
        );
        let check_ip = self.value(s, "check_ip", true, value::boolean, on_off);
        let line = self.section_lines.get("httpd").copied().unwrap_or(0);
        self.warnings.push(format!(
            "{}:{line}: [httpd] is read but bootd has no HTTP file server yet; serve those files with a web server",
            self.file
        ));
        Some(HttpdConfig {
            address,
            port,
            root,
            check_ip,
        })
    }

    /// `access = X` needs its section (and, for http, where to ask).
    fn check_access(&mut self, bootp: &BootpConfig) {
        let Some(access) = bootp.access else { return };
        let line = self.entry("bootp", "access").map(|e| e.line).unwrap_or(0);
        let needed = match access {
            Access::Mac => "mac",
            Access::Uuid => "uuid",
            Access::Http => "http",
        };
        if !self.has_section(needed) {
            self.errors.push(format!(
                "{}:{line}: [bootp] access = {needed} needs a [{needed}] section listing who may boot",
                self.file
            ));
            return;
        }
        if access == Access::Http {
            for option in ["location", "pxe", "dhcp"] {
                if self.entry("http", option).is_none() {
                    self.errors.push(format!(
                        "{}:{line}: [bootp] access = http needs [http] {option}",
                        self.file
                    ));
                }
            }
        }
    }
}

fn tftp_root(base: &Path, text: &str) -> ValueResult<TftpRoot> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(TftpRoot::Url(text.trim_end_matches('/').to_string()));
    }
    if text.contains("://") {
        return Err("a URL root must be http:// (or https:// with the https feature)".into());
    }
    Ok(TftpRoot::Dir(resolve_path(base, text)))
}

/// Absolute paths stay; relative ones (`./srv`, `srv`) are taken from the
/// directory holding the configuration file, so a daemon started from `/` by
/// systemd reads the same files as a run from a shell.
fn resolve_path(base: &Path, text: &str) -> PathBuf {
    let path = Path::new(text.trim());
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path.strip_prefix("./").unwrap_or(path))
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bootd".into())
}

fn ip_text(ip: &Ipv4Addr) -> String {
    ip.to_string()
}

fn on_off(b: &bool) -> String {
    if *b { "on".into() } else { "off".into() }
}

fn seconds_text(d: &Duration) -> String {
    format!("{}", d.as_secs_f64())
}
