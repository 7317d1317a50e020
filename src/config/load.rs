//! From a parsed INI `Document` to a typed `Config`: the table of options applied to
//! the file, the data sections read, the rules across options checked, and every
//! default, repetition and unknown name accounted for.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

// Hashed once per line of the file: foldhash keeps a random per-process seed.
use foldhash::{HashMap, HashMapExt};

use super::hint;
use super::ini::{Document, Entry};
use super::options::{self, Context, Initial, OptionSpec, SECTIONS, SectionKind, SectionSpec};
use super::types::*;
use super::value;
use crate::types::MacAddr;

/// `[bootp]` options about the addresses bootd hands out, which a proxy hands out
/// none of.
const PROXY_UNUSED: &[&str] = &[
    "pool_count",
    "allow_simple_dhcp",
    "dns",
    "gateway",
    "set_gateway",
    "netmask",
    "lease_time",
    "lease_file",
];

/// Whether `file` names an iPXE binary (not a script, whose name ends in
/// `.ipxe`): Debian's `undionly.kpxe`, `ipxe.efi`, `snponly.efi`, and the
/// other targets iPXE builds (`ipxe.pxe`, `undionly.kkpxe`, `ipxe.lkrn`...).
pub fn is_ipxe_loader(file: &str) -> bool {
    let name = file
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let stem_says_ipxe = name.contains("ipxe") || name.starts_with("snp");
    name.ends_with("pxe") && !name.ends_with(".ipxe")
        || stem_says_ipxe && [".efi", ".lkrn", ".usb"].iter().any(|e| name.ends_with(e))
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// bootd does not start.
    Error,
    /// bootd starts, but the sysadmin should hear about it.
    Warning,
}

/// One thing found wrong with the file or the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// The line it is about, for ordering (a message about the whole file has none).
    pub line: Option<usize>,
    /// The whole message, `file:line: …` first.
    pub message: String,
}

impl Problem {
    pub fn error(line: Option<usize>, message: String) -> Problem {
        Problem {
            severity: Severity::Error,
            line,
            message,
        }
    }

    pub fn warning(line: Option<usize>, message: String) -> Problem {
        Problem {
            severity: Severity::Warning,
            line,
            message,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `error: …` or `warning: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.message)
    }
}

/// A loaded configuration and what a sysadmin should hear about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// In line order.
    pub warnings: Vec<String>,
    pub settings: Vec<Setting>,
}

/// A file that cannot be used: every problem found in it, errors and warnings, in
/// line order. Displayed, it is its errors, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_error())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&str> = self.errors().map(|p| p.message.as_str()).collect();
        f.write_str(&errors.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// Reads and checks the configuration file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let unreadable = |message: String| ConfigError {
        problems: vec![Problem::error(None, message)],
    };
    let text = std::fs::read(path).map_err(|e| {
        unreadable(format!(
            "{}: cannot read the configuration file: {e}",
            path.display()
        ))
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        unreadable(format!(
            "{}: the configuration file is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
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
    let parsed = Document::parse(text);
    let mut reader = Reader::new(&file);
    for e in parsed.errors {
        reader.error_at(e.line, format!("{file}:{}: {}", e.line, e.message));
    }
    reader.merge(parsed.document);
    let mut config = reader.build(base);
    config.path = path.to_path_buf();
    config.dir = base.to_path_buf();
    // In line order; a message about the whole file comes first. The sort is stable,
    // so problems of one line keep the order they were found in.
    let mut problems = reader.problems;
    problems.sort_by_key(|p| p.line.unwrap_or(0));
    if problems.iter().any(Problem::is_error) {
        return Err(ConfigError { problems });
    }
    Ok(Loaded {
        config,
        warnings: problems.into_iter().map(|p| p.message).collect(),
        settings: reader.settings,
    })
}

/// The options whose value is a list separated by `;` (each item parsed strictly).
const LISTS_SEPARATED_BY_SEMICOLONS: &[(&str, &str)] = &[
    ("bootp", "pool_start"),
    ("bootp", "dns"),
    ("bootp", "notify"),
    ("nbd", "exports"),
];

/// Where an end-of-line comment would start in `value`: the first `;` or `#` that
/// follows a space or a tab.
fn comment_start(value: &str) -> Option<usize> {
    value
        .as_bytes()
        .windows(2)
        .position(|pair| matches!(pair, [b' ' | b'\t', b';' | b'#']))
        .map(|before| before + 1)
}

/// (section, its item for `[os NAME]`, every header as (name as written, line),
/// entries of all of them).
type SectionGroup = (
    &'static SectionSpec,
    Option<String>,
    Vec<(String, usize)>,
    Vec<Entry>,
);

/// One `[os NAME]` section: (NAME, its header's line, its entries).
pub(super) type Item = (String, usize, Vec<Entry>);

struct Reader<'a> {
    file: &'a str,
    /// Section (table name) → its entries, one per key (repetitions resolved).
    sections: HashMap<&'static str, Vec<Entry>>,
    /// Section (table name) → the line of its first header.
    section_lines: HashMap<&'static str, usize>,
    /// The `[os NAME]` sections, in file order.
    items: Vec<Item>,
    problems: Vec<Problem>,
    settings: Vec<Setting>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a str) -> Reader<'a> {
        Reader {
            file,
            sections: HashMap::new(),
            section_lines: HashMap::new(),
            items: Vec::new(),
            problems: Vec::new(),
            settings: Vec::new(),
        }
    }

    fn error_at(&mut self, line: usize, message: String) {
        self.problems.push(Problem::error(Some(line), message));
    }

    fn warning_at(&mut self, line: usize, message: String) {
        self.problems.push(Problem::warning(Some(line), message));
    }

    /// Groups sections by their table name and resolves repeated keys: the same value
    /// twice is a warning, two different values an error; both name both lines.
    fn merge(&mut self, doc: Document) {
        let mut groups: Vec<SectionGroup> = Vec::new();
        let known = SECTIONS
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join("], [");
        for section in doc.sections {
            let first_line = section.header_lines.first().copied().unwrap_or(0);
            let Some(spec) = options::section(&section.name) else {
                let hint = hint::for_section(&section.name)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                self.warning_at(
                    first_line,
                    format!(
                        "{}:{first_line}: unknown section [{}] is ignored{hint}; bootd knows [{known}]",
                        self.file, section.name,
                    ),
                );
                continue;
            };
            let name = &section.name;
            let item = match (spec.kind, options::split_item(name)) {
                (SectionKind::PerItem, (_, Some(item))) if !item.is_empty() => {
                    Some(item.to_string())
                }
                (SectionKind::PerItem, _) => {
                    self.error_at(
                        first_line,
                        format!(
                            "{}:{first_line}: [{name}] needs a name: [{} NAME]",
                            self.file, spec.name
                        ),
                    );
                    continue;
                }
                _ => None,
            };
            let headers = section.header_lines.iter().map(|l| (name.clone(), *l));
            match groups
                .iter_mut()
                .find(|(s, i, _, _)| s.name == spec.name && *i == item)
            {
                Some((_, _, lines, entries)) => {
                    lines.extend(headers);
                    entries.extend(section.entries);
                }
                None => groups.push((spec, item, headers.collect(), section.entries)),
            }
        }
        for (spec, item, mut headers, mut entries) in groups {
            headers.sort_by_key(|(_, l)| *l);
            entries.sort_by_key(|e| e.line);
            let name = spec.name;
            if headers.len() > 1 {
                let lines: Vec<String> = headers
                    .iter()
                    .map(|(written, l)| format!("[{written}] on line {l}"))
                    .collect();
                let line = headers[1].1;
                self.warning_at(
                    line,
                    format!(
                        "{}:{line}: section [{name}] appears {} times ({}); their options are read as one section",
                        self.file,
                        headers.len(),
                        lines.join(", ")
                    ),
                );
            }
            if let Some((_, line)) = headers.first() {
                self.section_lines.insert(name, *line);
            }
            let case_sensitive = matches!(
                spec.kind,
                SectionKind::Data {
                    case_sensitive: true
                }
            );
            let mut unique: Vec<Entry> = Vec::new();
            // Key as compared → its entry in `unique`: one look-up per line, so a
            // section of 100,000 keys is read in one pass.
            let mut seen: HashMap<String, usize> = HashMap::new();
            for entry in entries {
                let key = if case_sensitive {
                    entry.key.clone()
                } else {
                    entry.key.to_ascii_lowercase()
                };
                match seen.get(&key).and_then(|&i| unique.get(i)) {
                    Some(first) if first.value == entry.value => {
                        let message = format!(
                            "{}:{}: [{name}] {} repeats line {} with the same value; the repetition is harmless but can be removed",
                            self.file, entry.line, entry.key, first.line
                        );
                        self.warning_at(entry.line, message);
                    }
                    Some(first) => {
                        let message = format!(
                            "{}:{}: [{name}] {} = {} conflicts with line {} ({} = {}); keep one of them",
                            self.file,
                            entry.line,
                            entry.key,
                            entry.value,
                            first.line,
                            first.key,
                            first.value
                        );
                        self.error_at(entry.line, message);
                    }
                    None => {
                        seen.insert(key, unique.len());
                        unique.push(entry);
                    }
                }
            }
            if matches!(
                spec.kind,
                SectionKind::Options | SectionKind::OptionsIfPresent | SectionKind::PerItem
            ) {
                self.unknown_options(name, &unique);
            }
            self.end_of_line_comments(name, &unique);
            match item {
                Some(item) => {
                    let line = headers.first().map(|(_, l)| *l).unwrap_or(0);
                    self.items.push((item, line, unique));
                }
                None => {
                    self.sections.insert(name, unique);
                }
            }
        }
        self.items.sort_by_key(|(_, line, _)| *line);
    }

    fn unknown_options(&mut self, section: &'static str, entries: &[Entry]) {
        let takes: Vec<&str> = options::options_of(section).map(|o| o.name).collect();
        let takes_text = takes.join(", ");
        for entry in entries {
            if takes.iter().any(|o| o.eq_ignore_ascii_case(&entry.key)) {
                continue;
            }
            let hint = hint::for_option(section, &entry.key)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            let message = format!(
                "{}:{}: unknown option [{section}] {} is ignored{hint}; [{section}] takes: {takes_text}",
                self.file, entry.line, entry.key,
            );
            self.warning_at(entry.line, message);
        }
    }

    /// INI values have no end-of-line comments: `00007 = syslinux.efi ; x64 UEFI`
    /// names a file called `syslinux.efi ; x64 UEFI`. A value holding ` ;` or ` #`
    /// is most likely such a comment, so it is reported. The lists separated by `;`
    /// are left out: each of their items is parsed strictly, so a comment there is
    /// an error already, and `a ; b` is a fine way to write two items.
    fn end_of_line_comments(&mut self, section: &'static str, entries: &[Entry]) {
        for entry in entries {
            let listed = LISTS_SEPARATED_BY_SEMICOLONS
                .iter()
                .any(|(s, o)| *s == section && o.eq_ignore_ascii_case(&entry.key));
            let Some(at) = comment_start(&entry.value) else {
                continue;
            };
            if listed {
                continue;
            }
            let comment = entry.value.get(at..).unwrap_or_default();
            let message = format!(
                "{}:{}: [{section}] {} = {}: INI values have no end-of-line comments, so `{}` is part of the value; bootd uses `{}` whole: put the comment on a line of its own above",
                self.file,
                entry.line,
                entry.key,
                entry.value,
                comment.trim(),
                entry.value.trim(),
            );
            self.warning_at(entry.line, message);
        }
    }

    fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    fn entry(&self, section: &str, option: &str) -> Option<&Entry> {
        self.sections
            .get(section)?
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(option))
    }

    fn entries(&self, section: &str) -> Vec<Entry> {
        self.sections.get(section).cloned().unwrap_or_default()
    }

    /// `file:line: [section] key = value: message`.
    fn error(&mut self, section: &str, entry: &Entry, message: impl fmt::Display) {
        let text = format!(
            "{}:{}: [{section}] {} = {}: {message}",
            self.file, entry.line, entry.key, entry.value
        );
        self.error_at(entry.line, text);
    }

    fn record(&mut self, section: &'static str, option: &str, value: String, origin: Origin) {
        self.settings.push(Setting {
            section,
            option: option.to_string(),
            value,
            origin,
        });
    }

    /// Every section in the table's order: its options applied, or its data read;
    /// then the rules that span options.
    fn build(&mut self, base: &Path) -> Config {
        let mut config = Config::default();
        let context = Context { base };
        for section in SECTIONS {
            match section.kind {
                SectionKind::Options => self.options(section, &mut config, &context),
                SectionKind::OptionsIfPresent => {
                    if self.has_section(section.name) {
                        self.options(section, &mut config, &context);
                    }
                }
                SectionKind::Data { .. } => self.data(section.name, &mut config),
                SectionKind::PerItem => self.items(section, &mut config, &context),
            }
        }
        for problem in super::menu::finish(&mut config.menu, self.file, base) {
            self.problems.push(problem);
        }
        self.check_logger(&config);
        self.check_pools(&config);
        self.check_access(&config.bootp);
        self.check_proxy(&config);
        config
    }

    /// Applies each option of `section`: the file's value, else its fallback's, else
    /// the default. An empty value counts as absent. A value that does not parse is
    /// an error and leaves the default in place.
    fn options(&mut self, section: &'static SectionSpec, config: &mut Config, context: &Context) {
        if section.kind == SectionKind::OptionsIfPresent {
            config.httpd = Some(HttpdConfig::default());
        }
        for option in options::options_of(section.name) {
            if let Some(entry) = self.value_of(option.section, option.name) {
                match (option.apply)(config, Some(&entry.value), context) {
                    Ok(shown) => self.record_option(option, shown, Origin::Line(entry.line)),
                    Err(message) => {
                        self.error(option.section, &entry, message);
                        let _ = (option.apply)(config, option.default.text(), context);
                    }
                }
                continue;
            }
            // The fallback's own entry reports its errors; here it only gives a value.
            let fallback = option
                .fallback
                .and_then(|(section, name)| self.value_of(section, name));
            if let Some(entry) = fallback
                && let Ok(shown) = (option.apply)(config, Some(&entry.value), context)
            {
                self.record_option(option, shown, Origin::Line(entry.line));
                continue;
            }
            match (option.apply)(config, option.default.text(), context) {
                Ok(shown) => self.record_option(option, shown, Origin::Default),
                Err(message) => self.problems.push(Problem::error(
                    None,
                    format!(
                        "[{}] {}: the built-in default does not parse: {message}",
                        option.section, option.name
                    ),
                )),
            }
        }
    }

    /// Reads each `[os NAME]` section, in file order: an operating system with the
    /// section's options applied (its value, else the default).
    fn items(&mut self, section: &'static SectionSpec, config: &mut Config, context: &Context) {
        for (item, line, entries) in std::mem::take(&mut self.items) {
            config.menu.oss.push(OsConfig {
                name: item.clone(),
                display: item.clone(),
                method: BootMethod::Kexec,
                dir: PathBuf::new(),
                kernel: None,
                initrd: None,
                cmdline: String::new(),
                bin: None,
                binargs: String::new(),
                image: None,
                origin: format!("{}:{line}", self.file),
            });
            for option in options::options_of(section.name) {
                let entry = entries.iter().find(|e| {
                    e.key.eq_ignore_ascii_case(option.name) && !e.value.trim().is_empty()
                });
                let (text, origin) = match entry {
                    Some(e) => (Some(e.value.as_str()), Origin::Line(e.line)),
                    None => (option.default.text(), Origin::Default),
                };
                match (option.apply)(config, text, context) {
                    Ok(shown) => {
                        let value = shown.unwrap_or_else(|| match option.default {
                            Initial::Unset(instead) => format!("(unset: {instead})"),
                            Initial::Required(by) => format!("(unset: required {by})"),
                            Initial::Value(text) => text.to_string(),
                        });
                        self.record(
                            section.name,
                            &format!("{item}.{}", option.name),
                            value,
                            origin,
                        );
                    }
                    Err(message) => {
                        if let Some(e) = entry {
                            let text = format!(
                                "{}:{}: [{} {item}] {} = {}: {message}",
                                self.file, e.line, section.name, e.key, e.value
                            );
                            self.error_at(e.line, text);
                        }
                    }
                }
            }
        }
    }

    /// The entry setting `option`, unless its value is empty.
    fn value_of(&self, section: &str, option: &str) -> Option<Entry> {
        self.entry(section, option)
            .filter(|e| !e.value.trim().is_empty())
            .cloned()
    }

    fn record_option(&mut self, option: &OptionSpec, shown: Option<String>, origin: Origin) {
        let value = match (shown, option.default) {
            (Some(value), _) => value,
            (None, Initial::Unset(instead)) => format!("(unset: {instead})"),
            (None, Initial::Required(by)) => format!("(unset: required {by})"),
            (None, Initial::Value(text)) => text.to_string(),
        };
        self.record(option.section, option.name, value, origin);
    }

    fn data(&mut self, section: &'static str, config: &mut Config) {
        match section {
            "bootfile" => self.boot_files(&mut config.boot_files),
            "static_dhcp" => config.static_dhcp = self.static_dhcp(),
            "buggy_clients" => config.buggy_clients = self.mac_rules("buggy_clients"),
            "mac" => config.mac_acl = self.mac_rules("mac"),
            "uuid" => config.uuid_acl = self.uuid_rules(),
            "filters" => config.filters = self.filters(),
            _ => {}
        }
    }

    /// `[bootfile]` (1.8) over `[bootp] boot_file` (1.5), which is already in
    /// `files.default`: the two must agree.
    fn boot_files(&mut self, files: &mut BootFiles) {
        let legacy = files.default.take();
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
                    let line = self.entry("bootp", "boot_file").map_or(0, |e| e.line);
                    let message = format!(
                        "{}:{line}: [bootp] boot_file = {legacy} conflicts with [bootfile] default = {default}; keep one of them",
                        self.file
                    );
                    self.error_at(line, message);
                }
                Some(_) => {}
                None => files.default = Some(legacy),
            }
        }
        self.check_ipxe_loop(files);
    }

    /// iPXE handed iPXE again loads it again, forever: a loader named in
    /// `[bootfile]` needs `ipxe` naming what iPXE gets instead.
    fn check_ipxe_loop(&mut self, files: &BootFiles) {
        if files.ipxe.is_some() {
            return;
        }
        let Some(entry) = self
            .entries("bootfile")
            .into_iter()
            .find(|e| is_ipxe_loader(&e.value))
        else {
            return;
        };
        let message = format!(
            "{}:{}: [bootfile] {} = {} looks like iPXE, and [bootfile] ipxe is not set: the iPXE it starts asks again as iPXE and is never handed iPXE again, so it gets no boot file; set ipxe = an iPXE script (such as boot.ipxe)",
            self.file,
            entry.line,
            entry.key,
            entry.value.trim()
        );
        self.warning_at(entry.line, message);
    }

    fn static_dhcp(&mut self) -> Vec<StaticLease> {
        let mut leases: Vec<StaticLease> = Vec::new();
        // MAC → its line, and address → (MAC, line), of the reservations kept.
        let mut by_mac: HashMap<MacAddr, usize> = HashMap::new();
        let mut by_ip: HashMap<Ipv4Addr, (MacAddr, usize)> = HashMap::new();
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
            if let Some(&line) = by_mac.get(&mac) {
                self.error(
                    "static_dhcp",
                    &entry,
                    format!("{mac} is already reserved on line {line}"),
                );
                continue;
            }
            if let Some(&(other_mac, line)) = by_ip.get(&ip) {
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
            by_mac.insert(mac, entry.line);
            by_ip.insert(ip, (mac, entry.line));
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
                        options::on_off(allow),
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
                    self.record(
                        "uuid",
                        &entry.key,
                        options::on_off(allow),
                        Origin::Line(entry.line),
                    );
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
        // The rules are compiled where they are used; one that cannot be is a
        // configuration error.
        if let Err(e) = crate::filters::Filters::new(&rules) {
            let message = format!("{}:{}: [filters] {}", self.file, e.line, e.message);
            self.error_at(e.line, message);
        }
        rules
    }

    /// `type = file` needs a file.
    fn check_logger(&mut self, config: &Config) {
        if config.logger.target == LogTarget::File && config.logger.file.is_none() {
            let line = self.entry("logger", "type").map(|e| e.line);
            self.problems.push(Problem::error(
                line,
                format!(
                    "{}: [logger] type = file needs [logger] file = /path/to/bootd.log",
                    self.file
                ),
            ));
        }
    }

    /// A pool must not run past the last IPv4 address.
    fn check_pools(&mut self, config: &Config) {
        let Some(entry) = self.entry("bootp", "pool_count").cloned() else {
            return;
        };
        let bootp = &config.bootp;
        for start in &bootp.pools {
            let last = u64::from(u32::from(*start)) + u64::from(bootp.pool_count);
            if last > u64::from(u32::MAX) {
                self.error(
                    "bootp",
                    &entry,
                    format!("the pool from {start} runs past 255.255.255.255; lower pool_count"),
                );
            }
        }
    }

    /// An access list that lists no machine refuses every one, and one that enables
    /// none refuses every one too (no match is a refusal): the first is an error, as
    /// a missing section is; the second may be a list being built, so a warning.
    fn check_list_lets_someone_boot(&mut self, line: usize, section: &str) {
        let entries = self.entries(section);
        let header = self.section_lines.get(section).copied().unwrap_or(line);
        let example = if section == "mac" {
            "AA-BB-CC-DD-EE-FF = enable"
        } else {
            "12345678-abcd-ef00-1111-abcdefabcdef = enable"
        };
        if entries.is_empty() {
            let message = format!(
                "{}:{header}: [bootp] access = {section} (line {line}), but [{section}] lists no machine: every machine would be refused; list those that may boot ({example})",
                self.file
            );
            self.error_at(header, message);
        } else if !entries
            .iter()
            .any(|e| value::boolean(&e.value).unwrap_or(false))
        {
            let message = format!(
                "{}:{header}: [bootp] access = {section} (line {line}), but [{section}] enables no machine: every machine will be refused; enable those that may boot ({example})",
                self.file
            );
            self.warning_at(header, message);
        }
    }

    /// `access = X` needs its section (and, for http, where to ask).
    fn check_access(&mut self, bootp: &BootpConfig) {
        let Some(access) = bootp.access else { return };
        let line = self.entry("bootp", "access").map_or(0, |e| e.line);
        let needed = match access {
            Access::Mac => "mac",
            Access::Uuid => "uuid",
            Access::Http => "http",
        };
        if !self.has_section(needed) {
            let message = format!(
                "{}:{line}: [bootp] access = {needed} needs a [{needed}] section listing who may boot",
                self.file
            );
            self.error_at(line, message);
            return;
        }
        if access != Access::Http {
            self.check_list_lets_someone_boot(line, needed);
        }
        if access == Access::Http {
            for option in ["location", "pxe", "dhcp"] {
                if self.entry("http", option).is_none() {
                    let message = format!(
                        "{}:{line}: [bootp] access = http needs [http] {option}",
                        self.file
                    );
                    self.error_at(line, message);
                }
            }
        }
    }

    /// With `proxy = on` the site's DHCP server gives the addresses and the
    /// network settings: what bootd would have sent is set for nothing.
    fn check_proxy(&mut self, config: &Config) {
        if !config.bootp.proxy {
            return;
        }
        let Some(line) = self.entry("bootp", "proxy").map(|e| e.line) else {
            return;
        };
        let mut unused: Vec<String> = PROXY_UNUSED
            .iter()
            .filter(|option| self.entry("bootp", option).is_some())
            .map(|option| format!("[bootp] {option}"))
            .collect();
        if !config.static_dhcp.is_empty() {
            unused.push("[static_dhcp]".into());
        }
        if unused.is_empty() {
            return;
        }
        let message = format!(
            "{}:{line}: [bootp] proxy = on: the site's DHCP server gives the addresses and network settings, so {} set nothing",
            self.file,
            unused.join(", ")
        );
        self.warning_at(line, message);
    }
}
