//! The manual pages, held to their sources: `bootd(8)` is made from the command
//! line's help text and `bootd.ini(5)` from the table of sections and options, so
//! neither can drift from what bootd does. A test fails when `conf/man/` differs
//! from what is generated here, and rewrites it with `BOOTD_UPDATE_DOCS=1`.

use std::path::Path;

use super::options::{Initial, OPTIONS, SECTIONS};
use crate::cli::USAGE;

const BOOTD_8: &str = include_str!("../../conf/man/bootd.8");
const BOOTD_INI_5: &str = include_str!("../../conf/man/bootd.ini.5");

/// `text` for roff: backslashes escaped, `-` as a real hyphen-minus (options are
/// typed), `` `code` `` in bold, and no line starting with a control character.
fn roff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut bold = false;
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '`' => {
                out.push_str(if bold { "\\fR" } else { "\\fB" });
                bold = !bold;
            }
            c => out.push(c),
        }
    }
    if bold {
        out.push_str("\\fR");
    }
    out.lines()
        .map(|line| {
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The help text's block under `heading:` (to the next blank line), as (term,
/// description) pairs: a term is what starts in the first columns, its
/// description what follows at the description column, continued below.
fn help_entries(heading: &str) -> Vec<(String, String)> {
    let mut lines = USAGE
        .lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.trim().is_empty());
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in lines.by_ref() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        // A continuation: only description, at the description column.
        if indent > 10
            && let Some((_, description)) = entries.last_mut()
        {
            description.push(' ');
            description.push_str(body);
            continue;
        }
        let (term, description) = match body.split_once("  ") {
            Some((term, rest)) => (term.trim(), rest.trim()),
            None => (body.trim(), ""),
        };
        entries.push((term.to_string(), description.to_string()));
    }
    entries
}

/// The help text's lines after the line starting with `prefix`'s prefix.
fn help_line(prefix: &str) -> &'static str {
    USAGE
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_default()
        .trim()
}

pub fn bootd_8() -> String {
    let mut out = String::from(
        ".\\\" Generated from src/cli.rs by src/config/man.rs; `cargo test` checks it.\n\
         .TH BOOTD 8 \"\" \"bootd\" \"System Administration\"\n\
         .SH NAME\n\
         bootd \\- network\\-boot daemon: BOOTP/DHCP/PXE, TFTP, HTTP and NBD\n\
         .SH SYNOPSIS\n.nf\n",
    );
    for line in USAGE.lines().take_while(|l| !l.trim().is_empty()) {
        let line = line.strip_prefix("Usage: ").unwrap_or(line).trim_start();
        out.push_str(&roff(line));
        out.push('\n');
    }
    out.push_str(".fi\n.SH DESCRIPTION\n");
    let description = USAGE
        .lines()
        .skip_while(|l| !l.trim().is_empty())
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str(&roff(&description));
    out.push_str(
        "\nbootd is the successor of pybootd: a pybootd.ini works unchanged. \
         Its configuration file is described in\n.BR bootd.ini (5).\n\
         Started as root, bootd opens its sockets and files, then runs as an \
         unprivileged user ([bootd] user). Under systemd it reports readiness \
         and status (Type=notify) and logs each line at its journal priority.\n",
    );
    for (heading, title) in [("Options:", "OPTIONS"), ("Commands:", "COMMANDS")] {
        out.push_str(&format!(".SH {title}\n"));
        for (term, description) in help_entries(heading) {
            out.push_str(&format!(
                ".TP\n.B {}\n{}\n",
                roff(&term),
                roff(&description)
            ));
        }
    }
    out.push_str(&format!(
        ".SH EXIT STATUS\n{}\n.SH SIGNALS\n{}\n",
        roff(help_line("Exit status:")),
        roff(help_line("Signals:"))
    ));
    out.push_str(
        ".SH FILES\n.TP\n.I /etc/bootd.ini\nthe configuration file\n\
         .TP\n.I /var/lib/bootd/leases\nthe lease file\n\
         .SH SEE ALSO\n.BR bootd.ini (5),\n.BR systemd.service (5),\n.BR journalctl (1)\n",
    );
    out
}

pub fn bootd_ini_5() -> String {
    let mut out = String::from(
        ".\\\" Generated from src/config/options.rs by src/config/man.rs; `cargo test` checks it.\n\
         .TH BOOTD.INI 5 \"\" \"bootd\" \"File Formats\"\n\
         .SH NAME\n\
         bootd.ini \\- bootd's configuration file\n\
         .SH DESCRIPTION\n\
         An INI file, pybootd's: \\fB[section]\\fR headers, then \\fBname = value\\fR lines. \
         A line starting with \\fB;\\fR or \\fB#\\fR is a comment; a value runs to the end of \
         its line (there are no end\\-of\\-line comments). Section and option names are \
         not case\\-sensitive. Booleans: on true enable enabled yes high ok 1, or off false \
         disable disabled no low ko 0. Relative paths are taken from the directory holding \
         the file. \\fBbootd \\-\\-check\\fR prints every setting with where it came from.\n\
         .SH SECTIONS\n",
    );
    for section in SECTIONS {
        let mut names = format!("[{}]", section.name);
        for alias in section.aliases {
            names.push_str(&format!(" or [{alias}]"));
        }
        out.push_str(&format!(
            ".TP\n.B {}\n{}\n",
            roff(&names),
            roff(section.doc)
        ));
    }
    out.push_str(".SH OPTIONS\n");
    let mut current = "";
    for option in OPTIONS {
        if option.section != current {
            current = option.section;
            out.push_str(&format!(".SS [{}]\n", roff(current)));
        }
        let default = match option.default {
            Initial::Value("") => "default: empty".to_string(),
            Initial::Value(text) => format!("default: `{text}`"),
            Initial::Unset(instead) => format!("default: {instead}"),
            Initial::Required(by) => format!("required {by}"),
        };
        out.push_str(&format!(
            ".TP\n.B {}\n{} ({})\n",
            roff(option.name),
            roff(option.doc),
            roff(&default)
        ));
    }
    out.push_str(
        ".SH FILES\n.TP\n.I /etc/bootd.ini\nthe default configuration file\n\
         .SH SEE ALSO\n.BR bootd (8)\n",
    );
    out
}

#[test]
fn the_manual_pages_are_generated_from_the_help_and_the_option_table() {
    let pages = [
        ("bootd.8", BOOTD_8, bootd_8()),
        ("bootd.ini.5", BOOTD_INI_5, bootd_ini_5()),
    ];
    let stale: Vec<&(&str, &str, String)> = pages
        .iter()
        .filter(|(_, committed, generated)| committed != generated)
        .collect();
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("BOOTD_UPDATE_DOCS").is_some() {
        for (name, _, generated) in &stale {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("conf/man")
                .join(name);
            if let Err(e) = std::fs::write(&path, generated) {
                panic!("cannot rewrite {}: {e}", path.display());
            }
        }
        return;
    }
    let names: Vec<&str> = stale.iter().map(|(name, ..)| *name).collect();
    panic!(
        "conf/man/{names:?} differ from the help text and the option table; \
         run `BOOTD_UPDATE_DOCS=1 cargo test --lib config::man` to regenerate them"
    );
}

#[test]
fn every_option_and_flag_is_in_a_page() {
    let ini = bootd_ini_5();
    for option in OPTIONS {
        assert!(
            ini.contains(&format!(".B {}\n", roff(option.name))),
            "{}",
            option.name
        );
    }
    let page = bootd_8();
    for flag in ["\\-\\-check", "\\-\\-quiet", "\\-\\-user USER", "leases"] {
        assert!(page.contains(flag), "{flag}\n{page}");
    }
    assert_eq!(roff(".x `a-b` \\"), "\\&.x \\fBa\\-b\\fR \\e");
}
