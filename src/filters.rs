//! `[filters]`: rewriting requested names before they are resolved, for every
//! service that serves the boot files.
//!
//! Each rule is `pattern = value`, kept in file order; the first pattern that matches
//! the whole requested name wins. Patterns are wildcards (`*` any run of characters,
//! `/` included; `?` one character) matched case-insensitively: the INI loader lower-
//! cases keys, so a case-sensitive match could never hit an upper-case request (pxelinux
//! asks for `pxelinux.cfg/C0A8…`). A leading `./` or `/` on the request is ignored
//! (both mean the root: GRUB asks for `/grub/grub.cfg`).
//!
//! In a value, `{filename}` is the requested name (as pybootd documents it; its
//! code substituted something else). A value in brackets, `[dir/{filename}.cfg]`,
//! names a file whose content (first line, trimmed) is the name to serve; reading it is
//! I/O, so [`Filters::apply`] returns [`Rewrite::Indirect`] and the caller reads it
//! (confined like any request) and passes the text to [`indirect_target`].
//! Every resulting name still goes through `files::name::normalise`.
//!
//! A value is written by the operator, so it may also name the operator's own file,
//! outside the root: a value without `{filename}` and without brackets that names an
//! existing regular file when bootd starts (relative to the configuration file's
//! directory, or absolute) is that file ([`Rewrite::Local`]), served by TFTP and HTTP
//! alike whatever the root is, a directory or an `http://` mirror. This is how
//! `pxelinux.cfg/* = pybootd/etc/pxe.cfg` gives every machine a local pxelinux
//! configuration while the rest comes from a mirror. Any other value is a name under
//! the root, as before; what a client controls (`{filename}`) never leaves the root.

use std::fmt;
use std::path::{Path, PathBuf};

use wildmatch::WildMatch;

/// One `[filters]` entry, kept in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    pub pattern: String,
    pub value: String,
    pub line: usize,
}

/// The one variable a value may use.
const FILENAME_VARIABLE: &str = "{filename}";

/// The outcome of the filters for one requested name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// No rule matched: serve the requested name.
    Unchanged,
    /// Serve `name` instead (rule at config line `line`).
    Name { name: String, line: usize },
    /// Read the file `path` (relative to the root); its first line is the name to serve.
    Indirect { path: String, line: usize },
    /// Serve the operator's file `path`, outside the root.
    Local { path: PathBuf, line: usize },
}

/// A rule the loader should reject, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[filters] line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for FilterError {}

#[derive(Debug)]
struct CompiledRule {
    pattern: WildMatch,
    value: String,
    indirect: bool,
    /// The operator's file the value names.
    local: Option<PathBuf>,
    line: usize,
}

/// The `[filters]` section, compiled once.
#[derive(Debug, Default)]
pub struct Filters {
    rules: Vec<CompiledRule>,
}

/// Checks a value: only `{filename}` may appear in braces, and brackets must wrap the
/// whole value. Returns (inner value, indirect).
fn check_value(rule: &FilterRule) -> Result<(String, bool), FilterError> {
    let fail = |message: String| FilterError {
        line: rule.line,
        message,
    };
    let value = rule.value.trim();
    if value.is_empty() {
        return Err(fail(format!("empty value for pattern {:?}", rule.pattern)));
    }
    let (inner, indirect) = match value.strip_prefix('[') {
        Some(rest) => match rest.strip_suffix(']') {
            Some(inner) if !inner.trim().is_empty() => (inner.trim(), true),
            _ => {
                return Err(fail(format!(
                    "{value:?}: a [file] value must be a non-empty name in brackets"
                )));
            }
        },
        None => (value, false),
    };
    let mut rest = inner;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open..).unwrap_or_default();
        if !after.starts_with(FILENAME_VARIABLE) {
            return Err(fail(format!(
                "{value:?}: unknown variable (only {FILENAME_VARIABLE} is defined)"
            )));
        }
        rest = after.get(FILENAME_VARIABLE.len()..).unwrap_or_default();
    }
    Ok((inner.to_owned(), indirect))
}

impl Filters {
    /// Compiles the rules, rejecting values with unknown variables or broken brackets.
    /// Every value is a name under the root.
    pub fn new(rules: &[FilterRule]) -> Result<Filters, FilterError> {
        Filters::compile(rules, None)
    }

    /// Compiles the rules as [`Filters::new`] does, and makes each value without
    /// `{filename}` or brackets that names an existing regular file under `base` (the
    /// configuration file's directory), or an absolute one, serve that file.
    pub fn with_local_files(rules: &[FilterRule], base: &Path) -> Result<Filters, FilterError> {
        Filters::compile(rules, Some(base))
    }

    fn compile(rules: &[FilterRule], base: Option<&Path>) -> Result<Filters, FilterError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let (value, indirect) = check_value(rule)?;
            let local = match base {
                Some(base) if !indirect && !value.contains(FILENAME_VARIABLE) => {
                    Some(base.join(&value)).filter(|path| path.is_file())
                }
                _ => None,
            };
            compiled.push(CompiledRule {
                pattern: WildMatch::new_case_insensitive(rule.pattern.trim()),
                value,
                indirect,
                local,
                line: rule.line,
            });
        }
        Ok(Filters { rules: compiled })
    }

    /// Makes the rule of config line `line` serve `path`, as `with_local_files` does
    /// for a file that exists (tests of the services use paths that do not).
    #[cfg(test)]
    pub fn set_local_for_tests(&mut self, line: usize, path: PathBuf) {
        for rule in self.rules.iter_mut().filter(|r| r.line == line) {
            rule.local = Some(path.clone());
        }
    }

    /// The rules that serve an operator's file: (config line, path), for the log.
    pub fn local_files(&self) -> impl Iterator<Item = (usize, &Path)> {
        self.rules
            .iter()
            .filter_map(|r| r.local.as_deref().map(|path| (r.line, path)))
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies the first matching rule to `requested`.
    pub fn apply(&self, requested: &str) -> Rewrite {
        let name = strip_dot_slash(requested);
        let Some(rule) = self.rules.iter().find(|r| r.pattern.matches(name)) else {
            return Rewrite::Unchanged;
        };
        if let Some(path) = &rule.local {
            return Rewrite::Local {
                path: path.clone(),
                line: rule.line,
            };
        }
        let value = rule.value.replace(FILENAME_VARIABLE, name);
        if rule.indirect {
            Rewrite::Indirect {
                path: value,
                line: rule.line,
            }
        } else {
            Rewrite::Name {
                name: value,
                line: rule.line,
            }
        }
    }
}

/// `./a/b` and `/a/b` → `a/b` (repeated: `././a` and `//a` → `a`).
fn strip_dot_slash(name: &str) -> &str {
    let mut name = name;
    while let Some(rest) = name.strip_prefix("./").or_else(|| name.strip_prefix('/')) {
        name = rest;
    }
    name
}

/// The name an indirection file designates: its first non-empty line, trimmed; `None`
/// when the file holds no name.
pub fn indirect_target(content: &str) -> Option<String> {
    content
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(&str, &str)]) -> Vec<FilterRule> {
        list.iter()
            .enumerate()
            .map(|(i, (p, v))| FilterRule {
                pattern: (*p).into(),
                value: (*v).into(),
                line: 10 + i,
            })
            .collect()
    }

    fn filters(list: &[(&str, &str)]) -> Filters {
        match Filters::new(&rules(list)) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn pxelinux_example_resolves_every_lookup_at_once() {
        let f = filters(&[("pxelinux.cfg/*", "pybootd/etc/pxe.cfg")]);
        for request in [
            "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff",
            "pxelinux.cfg/C0A8",
            "pxelinux.cfg/C0A80A05",
            "pxelinux.cfg/default",
            "./pxelinux.cfg/default",
            "/pxelinux.cfg/default",
            "//pxelinux.cfg/01-aa-bb-cc-dd-ee-ff",
            "pxelinux.cfg/44454c4c-3800-1058-8042-b4c04f565731",
        ] {
            assert_eq!(
                f.apply(request),
                Rewrite::Name {
                    name: "pybootd/etc/pxe.cfg".into(),
                    line: 10
                },
                "{request}"
            );
        }
        assert_eq!(f.apply("pxelinux.0"), Rewrite::Unchanged);
    }

    #[test]
    fn first_match_in_file_order_wins() {
        let f = filters(&[
            ("boot/special.img", "a"),
            ("boot/*", "b"),
            ("boot/special.img", "never"),
        ]);
        assert!(
            matches!(f.apply("boot/special.img"), Rewrite::Name { name, line: 10 } if name == "a")
        );
        assert!(matches!(f.apply("boot/other"), Rewrite::Name { name, line: 11 } if name == "b"));
    }

    #[test]
    fn star_crosses_slashes_and_question_mark_is_one_character() {
        let f = filters(&[("a*z", "star"), ("file?.bin", "q")]);
        assert!(matches!(f.apply("a/b/c/z"), Rewrite::Name { name, .. } if name == "star"));
        assert!(matches!(f.apply("file1.bin"), Rewrite::Name { name, .. } if name == "q"));
        assert_eq!(f.apply("file12.bin"), Rewrite::Unchanged);
        assert_eq!(f.apply("file.bin"), Rewrite::Unchanged);
    }

    #[test]
    fn whole_name_must_match_and_case_is_ignored() {
        let f = filters(&[("startup", "x")]);
        assert_eq!(f.apply("startup.cfg"), Rewrite::Unchanged);
        assert_eq!(f.apply("my/startup"), Rewrite::Unchanged);
        assert!(matches!(f.apply("STARTUP"), Rewrite::Name { .. }));
    }

    #[test]
    fn filename_variable_is_the_requested_name() {
        let f = filters(&[
            ("*.efi", "efi/{filename}"),
            ("twice", "{filename}-{filename}"),
        ]);
        assert!(
            matches!(f.apply("./grubx64.efi"), Rewrite::Name { name, .. } if name == "efi/grubx64.efi")
        );
        assert!(matches!(f.apply("twice"), Rewrite::Name { name, .. } if name == "twice-twice"));
    }

    #[test]
    fn bracketed_value_is_an_indirection() {
        let f = filters(&[("startup", "[dir/{filename}.cfg]")]);
        assert_eq!(
            f.apply("startup"),
            Rewrite::Indirect {
                path: "dir/startup.cfg".into(),
                line: 10
            }
        );
        assert_eq!(
            indirect_target("\n  images/vmlinuz-6.1  \nignored\n"),
            Some("images/vmlinuz-6.1".into())
        );
        assert_eq!(indirect_target(" \n\t\n"), None);
        assert_eq!(indirect_target(""), None);
    }

    #[test]
    fn bad_values_are_rejected_with_their_line() {
        for (value, expect) in [
            ("other/{mac}", "unknown variable"),
            ("{filename", "unknown variable"),
            ("[dir/x", "brackets"),
            ("[]", "brackets"),
            ("", "empty value"),
        ] {
            match Filters::new(&rules(&[("ok", "fine"), ("p", value)])) {
                Err(e) => {
                    assert_eq!(e.line, 11);
                    assert!(e.message.contains(expect), "{value}: {e}");
                }
                Ok(_) => panic!("{value:?} accepted"),
            }
        }
    }

    #[test]
    fn rewritten_names_are_still_confined() {
        let f = filters(&[("*", "../{filename}")]);
        let Rewrite::Name { name, .. } = f.apply("x") else {
            panic!("rule should match");
        };
        assert!(crate::files::name::normalise(&name).is_err());
    }

    #[test]
    fn a_fixed_value_naming_an_operator_file_serves_it_and_filename_stays_in_the_root() {
        let base = std::env::temp_dir().join(format!("bootd-filters-{}", std::process::id()));
        std::fs::create_dir_all(base.join("pybootd/etc")).unwrap();
        std::fs::write(base.join("pybootd/etc/pxe.cfg"), b"DEFAULT linux\n").unwrap();
        std::fs::write(base.join("other.cfg"), b"x").unwrap();
        let absolute = base.join("other.cfg");
        let absolute = absolute.to_str().unwrap();
        let rules = rules(&[
            ("pxelinux.cfg/*", "pybootd/etc/pxe.cfg"),
            ("abs", absolute),
            ("missing", "pybootd/etc/none.cfg"),
            ("templated", "pybootd/etc/{filename}"),
            ("indirect", "[pybootd/etc/pxe.cfg]"),
        ]);
        let f = Filters::with_local_files(&rules, &base).unwrap();
        assert_eq!(
            f.apply("pxelinux.cfg/01-aa-bb-cc-dd-ee-ff"),
            Rewrite::Local {
                path: base.join("pybootd/etc/pxe.cfg"),
                line: 10
            }
        );
        assert_eq!(
            f.apply("abs"),
            Rewrite::Local {
                path: base.join("other.cfg"),
                line: 11
            }
        );
        // No such local file: a name under the root, as before.
        assert!(
            matches!(f.apply("missing"), Rewrite::Name { name, .. } if name == "pybootd/etc/none.cfg")
        );
        // What the client controls never names a local file.
        assert!(
            matches!(f.apply("templated"), Rewrite::Name { name, .. } if name == "pybootd/etc/templated")
        );
        assert!(matches!(f.apply("indirect"), Rewrite::Indirect { .. }));
        assert_eq!(f.local_files().count(), 2);
        // Without a base (as the tests of names under the root build them), no local files.
        let plain = Filters::new(&rules).unwrap();
        assert!(matches!(
            plain.apply("pxelinux.cfg/default"),
            Rewrite::Name { .. }
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn no_rules_no_change() {
        let f = filters(&[]);
        assert!(f.is_empty());
        assert_eq!(f.apply("anything"), Rewrite::Unchanged);
    }
}
