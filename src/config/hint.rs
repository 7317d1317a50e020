//! "Did you mean …?" for unknown option and section names, from the table of options:
//! a name some program or habit uses for an option (`server_name`, `blksize`), a
//! near miss by a typo or two, or an option of another section.

use super::options::{OPTIONS, SECTIONS, SectionKind, options_of};

/// The hint for an unknown option `name` of `section` (the section's table name).
pub(crate) fn for_option(section: &str, name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    if let Some(option) = options_of(section).find(|o| o.mistaken_for.contains(&name.as_str())) {
        return Some(format!("did you mean `{}`?", option.name));
    }
    if let Some(closest) = closest(&name, options_of(section).map(|o| o.name)) {
        return Some(format!("did you mean `{closest}`?"));
    }
    OPTIONS
        .iter()
        .find(|o| o.section != section && o.name == name)
        .map(|o| format!("`{}` is an option of [{}]", o.name, o.section))
}

/// The hint for an unknown section `name`.
pub(crate) fn for_section(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let names = SECTIONS
        .iter()
        .flat_map(|s| std::iter::once(&s.name).chain(s.aliases))
        .copied();
    if let Some(closest) = closest(&name, names) {
        return Some(format!("did you mean [{closest}]?"));
    }
    // An option name used as a section header.
    OPTIONS
        .iter()
        .find(|o| o.name == name)
        .filter(|o| {
            SECTIONS
                .iter()
                .any(|s| s.name == o.section && s.kind == SectionKind::Options)
        })
        .map(|o| format!("`{}` is an option of [{}]", o.name, o.section))
}

/// The candidate nearest to `name`, if it is near enough to be a typo: at most one
/// edit per three characters (a swap of neighbours counts as one).
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (name.chars().count() / 3).max(1);
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edits (insert, delete, replace, swap two neighbours) turning `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rows are enough.
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (previous[j] + 1)
                .min(row[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut previous, row);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("pool_strat", "pool_start"), 1);
        assert_eq!(edit_distance("blksize", "blocksize"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("port", "port"), 0);
    }

    #[test]
    fn the_names_other_programs_use() {
        assert_eq!(
            for_option("bootp", "server_name").as_deref(),
            Some("did you mean `servername`?")
        );
        assert_eq!(
            for_option("tftp", "blksize").as_deref(),
            Some("did you mean `blocksize`?")
        );
        assert_eq!(
            for_option("tftp", "retry").as_deref(),
            Some("did you mean `retries`?")
        );
        assert_eq!(
            for_option("logger", "path").as_deref(),
            Some("did you mean `file`?")
        );
    }

    #[test]
    fn typos_and_options_of_other_sections() {
        assert_eq!(
            for_option("bootp", "pool_strat").as_deref(),
            Some("did you mean `pool_start`?")
        );
        assert_eq!(
            for_option("bootp", "Lease_Tim").as_deref(),
            Some("did you mean `lease_time`?")
        );
        assert_eq!(
            for_option("bootp", "root").as_deref(),
            Some("`root` is an option of [tftp]")
        );
        assert_eq!(for_option("bootp", "frobnicate"), None);
        assert_eq!(
            for_section("tftpx").as_deref(),
            Some("did you mean [tftp]?")
        );
        assert_eq!(
            for_section("pool_start").as_deref(),
            Some("`pool_start` is an option of [bootp]")
        );
        assert_eq!(for_section("frobnicate"), None);
    }
}
