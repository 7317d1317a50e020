//! The effective settings as INI text, each line saying where its value came from.

use super::load::{Origin, Setting};

/// Renders `settings` grouped by section, in the order they were read, in INI form
/// with a trailing comment: `; file:line` or `; default`.
pub fn effective_settings(file: &str, settings: &[Setting]) -> String {
    let mut out = String::new();
    let mut sections: Vec<&str> = Vec::new();
    for s in settings {
        if !sections.contains(&s.section) {
            sections.push(s.section);
        }
    }
    for section in sections {
        out.push_str(&format!("[{section}]\n"));
        let rows: Vec<(String, String)> = settings
            .iter()
            .filter(|s| s.section == section)
            .map(|s| {
                let origin = match s.origin {
                    Origin::Default => "default".to_string(),
                    Origin::Line(l) => format!("{file}:{l}"),
                };
                (format!("{} = {}", s.option, s.value), origin)
            })
            .collect();
        let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (line, origin) in rows {
            out.push_str(&format!("{line:<width$}  ; {origin}\n"));
        }
        out.push('\n');
    }
    out
}
