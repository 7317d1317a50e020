//! The documentation of the options, held to the table: the README's tables of
//! sections and options are generated from it (a test fails when they differ, and
//! rewrites them with `BOOTD_UPDATE_DOCS=1`), and the sample `conf/bootd.ini` must
//! document every option, each with the table's default and doc line, and nothing else.
//!
//! The sample's conventions, which the test reads: `[name]` or `;[name]` opens a
//! section (commented out when bootd needs no such section by default); `name = value`
//! sets an option and `;name = value` (no space after `;`) shows one left unset; a
//! comment block (`; …` lines) right above an option starts with the table's doc line.

use std::path::Path;

use super::options::{Context, Initial, OPTIONS, OptionSpec, SECTIONS, SectionKind, section};
use super::types::Config;

const README: &str = include_str!("../../README.md");
const SAMPLE: &str = include_str!("../../conf/bootd.ini");

const SECTIONS_BEGIN: &str =
    "<!-- sections: generated from src/config/options.rs; `cargo test` checks it -->";
const SECTIONS_END: &str = "<!-- end of sections -->";
const OPTIONS_BEGIN: &str =
    "<!-- options: generated from src/config/options.rs; `cargo test` checks it -->";
const OPTIONS_END: &str = "<!-- end of options -->";

/// Markdown table cells: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn sections_table() -> String {
    let mut out = String::from("| section | what it sets |\n| --- | --- |\n");
    for s in SECTIONS {
        let mut names = format!("`[{}]`", s.name);
        for alias in s.aliases {
            names.push_str(&format!(" or `[{alias}]`"));
        }
        out.push_str(&format!("| {names} | {} |\n", cell(s.doc)));
    }
    out
}

fn options_table() -> String {
    let mut out = String::from("| option | default | what it sets |\n| --- | --- | --- |\n");
    for o in OPTIONS {
        let default = match o.default {
            Initial::Value("") => "*empty*".to_string(),
            Initial::Value(text) => format!("`{text}`"),
            Initial::Unset(instead) => format!("*{instead}*"),
            Initial::Required(by) => format!("*required {by}*"),
        };
        out.push_str(&format!(
            "| `[{}] {}` | {} | {} |\n",
            o.section,
            o.name,
            cell(&default),
            cell(o.doc)
        ));
    }
    out
}

/// Where the text between the line holding `begin` and `end` lies in `text`.
fn between(text: &str, begin: &str, end: &str) -> Option<std::ops::Range<usize>> {
    let start = text.find(begin)? + begin.len();
    let start = start + text[start..].find('\n')? + 1;
    let stop = start + text[start..].find(end)?;
    Some(start..stop)
}

#[test]
fn the_readme_tables_are_the_option_tables() {
    let wanted = [
        (SECTIONS_BEGIN, SECTIONS_END, sections_table()),
        (OPTIONS_BEGIN, OPTIONS_END, options_table()),
    ];
    let mut readme = README.to_string();
    let mut stale = Vec::new();
    for (begin, end, table) in &wanted {
        let Some(range) = between(&readme, begin, end) else {
            panic!("README.md has no `{begin}` … `{end}` block");
        };
        if readme[range.clone()] != *table {
            stale.push(*begin);
            readme.replace_range(range, table);
        }
    }
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("BOOTD_UPDATE_DOCS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        if let Err(e) = std::fs::write(&path, &readme) {
            panic!("cannot rewrite {}: {e}", path.display());
        }
        return;
    }
    panic!(
        "README.md's tables differ from src/config/options.rs ({stale:?}); \
         run `BOOTD_UPDATE_DOCS=1 cargo test --lib config::docs` to regenerate them"
    );
}

/// One `name = value` line of the sample, set or shown unset.
#[derive(Debug)]
struct SampleOption<'a> {
    line: usize,
    section: &'static str,
    name: &'a str,
    value: &'a str,
    commented: bool,
    /// The comment block right above, `; ` removed.
    comments: Vec<&'a str>,
}

/// The option lines of the sample's option sections (data sections hold examples).
fn sample_options() -> Vec<SampleOption<'static>> {
    let mut found = Vec::new();
    let mut current: Option<&'static str> = None;
    let mut comments: Vec<&str> = Vec::new();
    for (index, raw) in SAMPLE.lines().enumerate() {
        let line = raw.trim();
        let header = line.strip_prefix(';').unwrap_or(line);
        if let Some(name) = header.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let spec = section(name);
            assert!(
                spec.is_some(),
                "conf/bootd.ini:{}: unknown section [{name}]",
                index + 1
            );
            current = spec
                .filter(|s| !matches!(s.kind, SectionKind::Data { .. }))
                .map(|s| s.name);
            comments.clear();
            continue;
        }
        if line.is_empty() {
            comments.clear();
            continue;
        }
        let (commented, body) = match line.strip_prefix(';') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
                comments.push(rest.trim());
                continue;
            }
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some(section) = current else {
            comments.clear();
            continue;
        };
        let Some((name, value)) = body.split_once('=') else {
            panic!(
                "conf/bootd.ini:{}: `{line}` is neither a comment nor an option",
                index + 1
            );
        };
        found.push(SampleOption {
            line: index + 1,
            section,
            name: name.trim(),
            value: value.trim(),
            commented,
            comments: std::mem::take(&mut comments),
        });
    }
    found
}

/// The doc line the sample shows above `option`: the table's, and what applies
/// when the option is left out.
fn sample_doc_line(option: &OptionSpec) -> String {
    match option.default {
        Initial::Value(_) => option.doc.to_string(),
        Initial::Unset(instead) => format!("{} Default: {instead}.", option.doc),
        Initial::Required(by) => format!("{} Required {by}.", option.doc),
    }
}

#[test]
fn the_sample_documents_every_option_with_the_tables_default_and_nothing_else() {
    let found = sample_options();
    for o in &found {
        assert!(
            OPTIONS
                .iter()
                .any(|spec| spec.section == o.section && spec.name == o.name),
            "conf/bootd.ini:{}: [{}] {} is not an option of the table",
            o.line,
            o.section,
            o.name
        );
    }
    let context = Context {
        base: Path::new("/etc"),
    };
    for option in OPTIONS {
        let lines: Vec<&SampleOption> = found
            .iter()
            .filter(|o| o.section == option.section && o.name == option.name)
            .collect();
        let [sample] = lines[..] else {
            panic!(
                "conf/bootd.ini documents [{}] {} {} times, not once",
                option.section,
                option.name,
                lines.len()
            );
        };
        let at = format!(
            "conf/bootd.ini:{}: [{}] {}",
            sample.line, option.section, option.name
        );
        match option.default {
            Initial::Value(default) => assert_eq!(
                sample.value, default,
                "{at}: the table's default is `{default}`"
            ),
            Initial::Unset(_) | Initial::Required(_) => {
                // An option left unset is shown commented out, with an example; one
                // that is required is set to an example.
                let required = matches!(option.default, Initial::Required(_));
                assert_eq!(
                    sample.commented, !required,
                    "{at}: commented out exactly when not required"
                );
                let parsed = (option.apply)(&mut Config::default(), Some(sample.value), &context);
                assert!(
                    parsed.is_ok(),
                    "{at}: the example does not parse: {parsed:?}"
                );
            }
        }
        let doc = sample_doc_line(option);
        assert_eq!(
            sample.comments.first().copied(),
            Some(doc.as_str()),
            "{at}: the comment above starts with the table's doc line"
        );
    }
}

#[test]
fn the_sample_loads_without_a_warning() {
    let loaded = super::load_str(Path::new("bootd.ini"), SAMPLE, Path::new("/etc"));
    match loaded {
        Ok(l) => assert!(l.warnings.is_empty(), "{:?}", l.warnings),
        Err(e) => panic!("{e}"),
    }
}

/// Every dotted quad of `text` that parses as an IPv4 address.
fn addresses_in(text: &str) -> Vec<std::net::Ipv4Addr> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|word| word.matches('.').count() == 3)
        .filter_map(|word| word.trim_matches('.').parse().ok())
        .collect()
}

#[test]
fn the_sample_uses_documentation_addresses_only() {
    use std::net::Ipv4Addr;
    // RFC 5737's three networks, where no real boot network lives.
    let documentation = [
        Ipv4Addr::new(192, 0, 2, 0),
        Ipv4Addr::new(198, 51, 100, 0),
        Ipv4Addr::new(203, 0, 113, 0),
    ];
    let found = addresses_in(SAMPLE);
    assert!(found.len() > 5, "{found:?}");
    for address in found {
        let network = Ipv4Addr::from(u32::from(address) & 0xFFFF_FF00);
        let fine = documentation.contains(&network)
            || address.is_unspecified()
            || address.is_loopback()
            // Netmasks.
            || address.octets()[0] == 255;
        assert!(
            fine,
            "conf/bootd.ini: {address} is no documentation address (RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)"
        );
    }
}

/// The sample with every example uncommented: `;[section]` headers and `;name =
/// value` lines (no space after the `;`) become live.
fn sample_uncommented() -> String {
    SAMPLE
        .lines()
        .map(|line| match line.strip_prefix(';') {
            Some(rest)
                if rest.starts_with('[') || (!rest.starts_with(' ') && rest.contains('=')) =>
            {
                rest
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A sysadmin uncomments the examples they need: none may teach a value that
/// carries a comment, or anything else bootd would warn about.
#[test]
fn the_samples_examples_load_without_a_warning_when_uncommented() {
    let text = sample_uncommented();
    assert!(text.contains("\n00007 = syslinux.efi\n"), "{text}");
    // The operating systems' folders the examples name, made under a scratch
    // directory: whether they exist is the host's business, not the example's.
    let scratch = std::env::temp_dir().join(format!("bootd-sample-{}", std::process::id()));
    let debian = scratch.join("srv/oss/debian");
    std::fs::create_dir_all(scratch.join("srv/boottorrent/oss")).unwrap();
    std::fs::create_dir_all(&debian).unwrap();
    for file in ["vmlinuz", "initrd.img", "run.sh", "live.iso"] {
        std::fs::write(debian.join(file), b"").unwrap();
    }
    let text = text.replace(" /srv/", &format!(" {}/srv/", scratch.display()));
    let loaded = super::load_str(Path::new("bootd.ini"), &text, Path::new("/etc"));
    let _ = std::fs::remove_dir_all(&scratch);
    match loaded {
        Ok(l) => assert!(l.warnings.is_empty(), "{:?}", l.warnings),
        Err(e) => panic!("{e}"),
    }
}
