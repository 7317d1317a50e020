//! The INI file as pybootd's Python `configparser` reads it, with the line of every
//! entry kept so that errors can name `file:line`.
//!
//! `configparser` parses the text (it is set up the way crates.md found necessary:
//! inline comments off so `notify = a:p;b:p` and URLs with `#` survive, `=` as the
//! delimiter so `AA:BB:CC:DD:EE:FF = enable` keeps its key, case kept so filter
//! patterns stay as written). It merges repeated keys and sections silently and keeps
//! no line numbers, so a light line scan beside it records where each entry stands
//! and every repetition, and reads pybootd's other delimiter (`key: value`).

use std::collections::HashMap;

/// One `option = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One section, with the entries of every header of that name merged in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name as first written (`[Bootpd]`).
    pub name: String,
    /// Lines of every header naming this section.
    pub header_lines: Vec<usize>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Default)]
pub struct Document {
    pub sections: Vec<Section>,
}

/// A syntax error: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl Document {
    /// Parses INI text. Section names match case-insensitively (`[BOOTP]` is `[bootp]`).
    pub fn parse(text: &str) -> Result<Document, SyntaxError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let parsed = parse_with_configparser(text)?;
        let mut doc = Document::default();
        let mut current: Option<usize> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let Some(end) = rest.find(']') else {
                    return Err(SyntaxError {
                        line,
                        message: format!("section header `{trimmed}` has no closing `]`"),
                    });
                };
                let name = rest[..end].trim();
                if name.is_empty() {
                    return Err(SyntaxError {
                        line,
                        message: "empty section name `[]`".into(),
                    });
                }
                current = Some(doc.open_section(name, line));
                continue;
            }
            let Some(section_index) = current else {
                return Err(SyntaxError {
                    line,
                    message: format!(
                        "`{trimmed}` stands before any [section] header; every option belongs to a section"
                    ),
                });
            };
            let (key, scanned_value) = split_entry(trimmed).ok_or_else(|| SyntaxError {
                line,
                message: format!("`{trimmed}` is not of the form `option = value`"),
            })?;
            if key.is_empty() {
                return Err(SyntaxError {
                    line,
                    message: "an option name is missing before `=`".into(),
                });
            }
            let section = &mut doc.sections[section_index];
            // configparser's value is authoritative for `key = value` lines; the scan
            // supplies it for `key: value` lines and for repeated keys, which
            // configparser collapses to the last occurrence.
            let value = parsed
                .get(&(section.name.to_ascii_lowercase(), key.to_string()))
                .filter(|v| v.as_str() == scanned_value)
                .cloned()
                .unwrap_or_else(|| scanned_value.to_string());
            section.entries.push(Entry {
                key: key.to_string(),
                value,
                line,
            });
        }
        Ok(doc)
    }

    fn open_section(&mut self, name: &str, line: usize) -> usize {
        if let Some(i) = self
            .sections
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))
        {
            self.sections[i].header_lines.push(line);
            return i;
        }
        self.sections.push(Section {
            name: name.to_string(),
            header_lines: vec![line],
            entries: Vec::new(),
        });
        self.sections.len() - 1
    }
}

/// `key = value` splits at the first `=`; a line without `=` may use pybootd's
/// other delimiter, `key: value`.
fn split_entry(line: &str) -> Option<(&str, &str)> {
    let at = line.find('=').or_else(|| line.find(':'))?;
    Some((line[..at].trim(), line[at + 1..].trim()))
}

/// (lower-cased section, key as written) → value, as configparser reads the text.
fn parse_with_configparser(text: &str) -> Result<HashMap<(String, String), String>, SyntaxError> {
    let mut defaults = configparser::ini::Ini::new().defaults();
    defaults.delimiters = vec!['='];
    defaults.enable_inline_comments = false;
    defaults.case_sensitive = true;
    defaults.multiline = false;
    let mut ini = configparser::ini::Ini::new_from_defaults(defaults);
    let map = ini.read(text.to_string()).map_err(|message| SyntaxError {
        line: leading_line_number(&message).unwrap_or(0),
        message,
    })?;
    let mut values = HashMap::new();
    for (section, entries) in map {
        for (key, value) in entries {
            if let Some(value) = value {
                values.insert((section.to_ascii_lowercase(), key), value);
            }
        }
    }
    Ok(values)
}

/// configparser reports `line 3: …` or `line 3:0: …`.
fn leading_line_number(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(doc: &Document, section: &str) -> Vec<(String, String, usize)> {
        doc.sections
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(section))
            .map(|s| {
                s.entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone(), e.line))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn values_survive_semicolons_hashes_and_colons() {
        let doc = Document::parse(
            "[bootp]\nnotify = 10.0.0.1:1234;10.0.0.2:99\ndns = 8.8.8.8;1.1.1.1\n[tftp]\nroot = http://h/p#frag\n",
        )
        .unwrap();
        assert_eq!(
            entries(&doc, "bootp"),
            vec![
                ("notify".into(), "10.0.0.1:1234;10.0.0.2:99".into(), 2),
                ("dns".into(), "8.8.8.8;1.1.1.1".into(), 3)
            ]
        );
        assert_eq!(
            entries(&doc, "tftp"),
            vec![("root".into(), "http://h/p#frag".into(), 5)]
        );
    }

    #[test]
    fn colon_mac_keys_keep_their_key() {
        let doc = Document::parse("[mac]\nAA:BB:CC:DD:EE:FF = enable\n").unwrap();
        assert_eq!(
            entries(&doc, "mac"),
            vec![("AA:BB:CC:DD:EE:FF".into(), "enable".into(), 2)]
        );
    }

    #[test]
    fn colon_delimiter_is_read_like_python() {
        let doc = Document::parse("[logger]\nlevel: debug\n").unwrap();
        assert_eq!(
            entries(&doc, "logger"),
            vec![("level".into(), "debug".into(), 2)]
        );
    }

    #[test]
    fn comments_blank_lines_bom_and_crlf() {
        let doc = Document::parse(
            "\u{feff}; top\r\n[bootp] ; note\r\n  # indented comment\r\n\r\npool_count = 5\r\n",
        )
        .unwrap();
        assert_eq!(
            entries(&doc, "bootp"),
            vec![("pool_count".into(), "5".into(), 5)]
        );
    }

    #[test]
    fn repeated_sections_merge_with_every_header_line() {
        let doc = Document::parse("[bootp]\na = 1\n[tftp]\n[BOOTP]\nb = 2\n").unwrap();
        let bootp = &doc.sections[0];
        assert_eq!(bootp.header_lines, vec![1, 4]);
        assert_eq!(bootp.entries.len(), 2);
    }

    #[test]
    fn repeated_keys_are_all_kept() {
        let doc = Document::parse("[bootp]\nboot_file = a\nboot_file = b\n").unwrap();
        assert_eq!(
            entries(&doc, "bootp"),
            vec![
                ("boot_file".into(), "a".into(), 2),
                ("boot_file".into(), "b".into(), 3)
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = Document::parse("[bootp]\npool_start\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("option = value"), "{}", e.message);
        let e = Document::parse("a = 1\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("before any [section]"), "{}", e.message);
        let e = Document::parse("[bootp]\n[tftp\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Document::parse("[bootp]\n = x\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn empty_value_is_empty_string() {
        let doc = Document::parse("[bootp]\ndns =\n").unwrap();
        assert_eq!(entries(&doc, "bootp"), vec![("dns".into(), "".into(), 2)]);
    }
}
