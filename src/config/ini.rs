//! The INI file as pybootd's Python `configparser` reads it, with the line of every
//! entry kept so that messages can name `file:line`.
//!
//! The `configparser` crate parses the text and supplies every value. It is set up
//! for pybootd's files: no inline comments (so `notify = a:p;b:p` and URLs with `#`
//! keep their text), `=` as its only delimiter (so `AA:BB:CC:DD:EE:FF = enable` keeps
//! its key; a line without `=` comes back as a key with no value, and is split at
//! pybootd's other delimiter, `:`, here), case kept (filter patterns stay as written;
//! the loader compares section and option names without case).
//!
//! `configparser` keeps no line numbers and silently keeps the last of a repeated key
//! or section, so a line scan beside it numbers the section headers and entries, finds
//! every repetition, and reports the lines `configparser` accepts but pybootd's files
//! must not have (an option before any section, a line with no delimiter, `[]`).

use configparser::ini::Ini;
// Hashed once per line of the file: foldhash keeps a random per-process seed.
use foldhash::{HashMap, HashMapExt};

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

/// The file's sections, in the order they first appear.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub sections: Vec<Section>,
    /// Lower-cased name → index in `sections`: a header is found in one look-up,
    /// so a file of 100,000 sections is read in one pass.
    index: HashMap<String, usize>,
}

/// A syntax error: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// What the parse found: the document, and every line it could not read. A line in
/// `errors` is left out of the document; the other lines are still there.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub document: Document,
    pub errors: Vec<SyntaxError>,
}

/// What the scan sees on one significant line.
enum Line<'a> {
    Header(&'a str),
    /// `key` is split as `configparser` splits it: at the first `=`, else the whole line.
    Item {
        key: &'a str,
        /// The text after the `=` (for an entry `configparser` overwrote: see `parse`).
        text: Option<&'a str>,
    },
}

impl Document {
    /// Parses INI text. Section names match case-insensitively (`[BOOTP]` is `[bootp]`).
    pub fn parse(text: &str) -> Parsed {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = scan(text);
        match parse_with_configparser(text) {
            Ok(ini) => read(&lines, Some(&ini)),
            Err(error) => {
                // Without configparser's values there is no document; the scan still
                // reports the other lines it cannot read.
                let mut parsed = read(&lines, None);
                parsed.document = Document::default();
                parsed.errors.retain(|e| e.line != error.line);
                parsed.errors.push(error);
                parsed.errors.sort_by_key(|e| e.line);
                parsed
            }
        }
    }

    fn open_section(&mut self, name: &str, line: usize) -> usize {
        let key = name.to_ascii_lowercase();
        if let Some(&i) = self.index.get(&key)
            && let Some(section) = self.sections.get_mut(i)
        {
            section.header_lines.push(line);
            return i;
        }
        self.sections.push(Section {
            name: name.to_string(),
            header_lines: vec![line],
            entries: Vec::new(),
        });
        let i = self.sections.len() - 1;
        self.index.insert(key, i);
        i
    }
}

/// Where the scan stands: which section the next entry belongs to.
#[derive(Clone, Copy)]
enum Current<'a> {
    /// No header yet.
    Nothing,
    /// After `[]`: its entries are skipped, the header's error covers them.
    Skipped,
    /// (index in the document, name as written).
    Section(usize, &'a str),
}

/// Builds the document from the scanned lines and the values configparser read
/// (`None`: configparser refused the file, so only the lines' own errors are
/// wanted).
fn read(lines: &[(usize, Line<'_>)], values: Option<&Ini>) -> Parsed {
    let last_lines = last_lines(lines);
    let mut parsed = Parsed::default();
    let mut current = Current::Nothing;
    for (number, line) in lines {
        let number = *number;
        let (key, text) = match line {
            Line::Header("") => {
                parsed.errors.push(SyntaxError {
                    line: number,
                    message: "empty section name `[]`".into(),
                });
                current = Current::Skipped;
                continue;
            }
            Line::Header(name) => {
                current = Current::Section(parsed.document.open_section(name, number), name);
                continue;
            }
            Line::Item { key, text } => (*key, *text),
        };
        let (section_index, section_name) = match current {
            Current::Section(index, name) => (index, name),
            Current::Skipped => continue,
            Current::Nothing => {
                parsed.errors.push(SyntaxError {
                    line: number,
                    message: format!(
                        "`{}` stands before any [section] header; every option belongs to a section",
                        item_text(key, text)
                    ),
                });
                continue;
            }
        };
        let value = match (text, values) {
            (None, _) => None,
            // configparser holds one value per (section as written, key): the last
            // line's. An earlier line of a repeated key keeps the text written on it,
            // which the loader needs only to tell a harmless repetition from a conflict.
            (Some(text), _) if last_lines.get(&(section_name, key)) != Some(&number) => {
                Some(text.to_string())
            }
            // configparser's value of the line (`None`: the line has no `=`).
            (Some(_), Some(values)) => values.get(section_name, key),
            (Some(text), None) => Some(text.to_string()),
        };
        let entry = match value {
            Some(value) => Some((key.to_string(), value)),
            // No `=`: pybootd's other delimiter.
            None => key
                .split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty()),
        };
        match entry {
            Some((key, value)) => parsed.document.sections[section_index].entries.push(Entry {
                key,
                value,
                line: number,
            }),
            None => parsed.errors.push(SyntaxError {
                line: number,
                message: format!("`{key}` is not of the form `option = value`"),
            }),
        }
    }
    parsed
}

fn item_text(key: &str, text: Option<&str>) -> String {
    match text {
        Some(text) => format!("{key} = {text}"),
        None => key.to_string(),
    }
}

/// The line of the last item of each (section as written, key): configparser merges
/// the headers of one name and keeps the value of that line.
fn last_lines<'a>(lines: &[(usize, Line<'a>)]) -> HashMap<(&'a str, &'a str), usize> {
    let mut last = HashMap::new();
    let mut section = None;
    for (number, line) in lines {
        match line {
            Line::Header(name) => section = Some(*name),
            Line::Item { key, .. } => {
                if let Some(section) = section {
                    last.insert((section, *key), *number);
                }
            }
        }
    }
    last
}

/// The significant lines, numbered from 1, read by configparser's rules: comments are
/// lines starting with `;` or `#`, a header runs from `[` to the last `]`.
fn scan(text: &str) -> Vec<(usize, Line<'_>)> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with([';', '#']) {
            continue;
        }
        let line = if let Some(rest) = trimmed.strip_prefix('[') {
            match rest.rfind(']') {
                Some(end) => Line::Header(rest[..end].trim()),
                // configparser refuses the file; it reports this line.
                None => continue,
            }
        } else {
            match trimmed.split_once('=') {
                Some((key, text)) => Line::Item {
                    key: key.trim(),
                    text: Some(text.trim()),
                },
                None => Line::Item {
                    key: trimmed,
                    text: None,
                },
            }
        };
        lines.push((index + 1, line));
    }
    lines
}

/// configparser, having read `text`: section as written → key as written → value.
fn parse_with_configparser(text: &str) -> Result<Ini, SyntaxError> {
    let mut defaults = Ini::new().defaults();
    defaults.delimiters = vec!['='];
    defaults.enable_inline_comments = false;
    defaults.case_sensitive = true;
    defaults.multiline = false;
    let mut ini = Ini::new_from_defaults(defaults);
    // The copy of its values `read` returns is not needed: `Ini::get` reads them
    // where they are.
    ini.read(text.to_string())
        .map_err(|message| configparser_error(text, &message))?;
    Ok(ini)
}

/// configparser words its errors `line 3: …` or `line 3:0: …`; the loader puts the
/// file and line in front of every message, so the location is taken out of the text
/// and the offending line quoted instead.
fn configparser_error(text: &str, message: &str) -> SyntaxError {
    let located = message.strip_prefix("line ").and_then(|rest| {
        let (location, what) = rest.split_once(": ")?;
        let line = location.split(':').next()?.parse::<usize>().ok()?;
        Some((line, what))
    });
    match located {
        Some((line, what)) => {
            let quoted = text
                .lines()
                .nth(line.saturating_sub(1))
                .map(str::trim)
                .unwrap_or_default();
            SyntaxError {
                line,
                message: format!("{what}: `{quoted}`"),
            }
        }
        None => SyntaxError {
            line: 0,
            message: message.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, SyntaxError> {
        let parsed = Document::parse(text);
        match parsed.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(parsed.document),
        }
    }

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
        let doc = parse(
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
        let doc = parse("[mac]\nAA:BB:CC:DD:EE:FF = enable\n").unwrap();
        assert_eq!(
            entries(&doc, "mac"),
            vec![("AA:BB:CC:DD:EE:FF".into(), "enable".into(), 2)]
        );
    }

    #[test]
    fn colon_delimiter_is_read_like_python() {
        let doc = parse("[logger]\nlevel: debug\n").unwrap();
        assert_eq!(
            entries(&doc, "logger"),
            vec![("level".into(), "debug".into(), 2)]
        );
    }

    #[test]
    fn comments_blank_lines_bom_and_crlf() {
        let doc = parse(
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
        let doc = parse("[bootp]\na = 1\n[tftp]\n[BOOTP]\nb = 2\n").unwrap();
        let bootp = &doc.sections[0];
        assert_eq!(bootp.header_lines, vec![1, 4]);
        assert_eq!(bootp.entries.len(), 2);
    }

    #[test]
    fn repeated_keys_are_all_kept() {
        let doc = parse("[bootp]\nboot_file = a\nboot_file = b\n").unwrap();
        assert_eq!(
            entries(&doc, "bootp"),
            vec![
                ("boot_file".into(), "a".into(), 2),
                ("boot_file".into(), "b".into(), 3)
            ]
        );
        // Across two headers of the same name, which configparser merges.
        let doc = parse("[bootp]\nport = 1\n[tftp]\nport = 2\n[bootp]\nport = 3\n").unwrap();
        assert_eq!(
            entries(&doc, "bootp"),
            vec![
                ("port".into(), "1".into(), 2),
                ("port".into(), "3".into(), 6)
            ]
        );
        assert_eq!(entries(&doc, "tftp"), vec![("port".into(), "2".into(), 4)]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("[bootp]\npool_start\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("option = value"), "{}", e.message);
        let e = parse("a = 1\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("before any [section]"), "{}", e.message);
        let e = parse("[bootp]\n[tftp\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("[bootp]\n = x\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn configparser_errors_carry_no_location_of_their_own() {
        let e = parse("[bootp]\n[tftp\n").unwrap_err();
        assert_eq!(
            e.message,
            "Found opening bracket for section name but no closing bracket: `[tftp`"
        );
        let e = parse("[bootp]\n = x\n").unwrap_err();
        assert_eq!(e.message, "Key cannot be empty: `= x`");
    }

    #[test]
    fn every_unreadable_line_is_reported() {
        let parsed = Document::parse("a = 1\n[bootp]\npool_start\nport = 67\nretry\n");
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 5]);
        assert_eq!(
            entries(&parsed.document, "bootp"),
            vec![("port".into(), "67".into(), 4)]
        );
        // When configparser refuses the file, the scan's findings come with its error.
        let parsed = Document::parse("a = 1\n[bootp]\n[tftp\n");
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3]);
    }

    #[test]
    fn empty_value_is_empty_string() {
        let doc = parse("[bootp]\ndns =\n").unwrap();
        assert_eq!(entries(&doc, "bootp"), vec![("dns".into(), "".into(), 2)]);
    }
}
