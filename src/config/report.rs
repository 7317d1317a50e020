//! The effective settings as INI text, each line saying where its value came from.

use std::collections::HashMap;

use super::load::{Origin, Setting};

/// The widest `option = value` the `; origin` comments are aligned after. A longer
/// line (a 70,000-character value, a list of 10,000 addresses) takes its comment
/// two spaces after its end, and does not push every other comment that far right.
const ALIGN_COMMENTS_WITHIN: usize = 60;

/// Renders `settings` grouped by section, in the order they were read, in INI form
/// with a trailing comment: `; file:line` or `; default`.
pub fn effective_settings(file: &str, settings: &[Setting]) -> String {
    let mut out = String::new();
    // Section → its settings, sections in the order first met: one pass, whatever
    // the number of settings.
    let mut sections: Vec<(&str, Vec<&Setting>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for s in settings {
        let i = *index.entry(s.section).or_insert_with(|| {
            sections.push((s.section, Vec::new()));
            sections.len() - 1
        });
        if let Some((_, rows)) = sections.get_mut(i) {
            rows.push(s);
        }
    }
    for (section, settings) in sections {
        out.push_str(&format!("[{section}]\n"));
        let rows: Vec<(String, String)> = settings
            .iter()
            .map(|s| {
                let origin = match s.origin {
                    Origin::Default => "default".to_string(),
                    Origin::Line(l) => format!("{file}:{l}"),
                };
                (format!("{} = {}", s.option, s.value), origin)
            })
            .collect();
        let width = rows
            .iter()
            .map(|(l, _)| l.chars().count())
            .filter(|w| *w <= ALIGN_COMMENTS_WITHIN)
            .max()
            .unwrap_or(0);
        for (line, origin) in rows {
            // Padding written out: a format width is limited to 65,535 and would
            // panic on a longer value.
            let pad = width.saturating_sub(line.chars().count());
            out.push_str(&line);
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str("  ; ");
            out.push_str(&origin);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}
