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
/// edit per three characters (a swap of neighbours counts as one). The first of
/// equally near candidates wins.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name: Vec<char> = name.chars().collect();
    let allowed = (name.len() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        // An edit changes the length by one at most: a candidate whose length is
        // further off is no typo, and is not measured (so a file of 100,000 unknown
        // names, or one name of 70,000 characters, costs a glance per candidate).
        if name.len().abs_diff(candidate.chars().count()) > allowed {
            continue;
        }
        let candidate_chars: Vec<char> = candidate.chars().collect();
        if letters_differ_by_more_than(&name, &candidate_chars, allowed) {
            continue;
        }
        let Some(distance) = distance_within(&name, &candidate_chars, allowed) else {
            continue;
        };
        if best.is_none_or(|(nearest, _)| distance < nearest) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// True when `a` and `b`, both ASCII, differ by more than `limit` letters counted
/// without their order: each edit adds or takes at most one letter each way (a
/// swap none), so they are then more than `limit` edits apart. A cheap first look
/// that spares most candidates the measure; false when it cannot tell.
fn letters_differ_by_more_than(a: &[char], b: &[char], limit: usize) -> bool {
    let mut counts = [0i32; 128];
    for (text, step) in [(a, 1), (b, -1)] {
        for &c in text {
            let Some(count) = counts.get_mut(c as usize) else {
                return false;
            };
            *count += step;
        }
    }
    let only_in_a: i32 = counts.iter().filter(|n| **n > 0).sum();
    let only_in_b: i32 = -counts.iter().filter(|n| **n < 0).sum::<i32>();
    usize::try_from(only_in_a.max(only_in_b)).unwrap_or(0) > limit
}

/// Edits (insert, delete, replace, swap two neighbours) turning `a` into `b`.
#[cfg(test)]
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance_within(&a, &b, usize::MAX).unwrap_or(usize::MAX)
}

/// Edits (insert, delete, replace, swap two neighbours) turning `a` into `b`,
/// both already split into characters, when they are `limit` or fewer.
fn distance_within(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    // Rows i-2, i-1 and i of the table whose cell (i, j) is the distance between
    // a[..i] and b[..j]; three rows are enough, and are reused.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    let mut previous_min = 0;
    for (i, &ai) in a.iter().enumerate() {
        row[0] = i + 1;
        let mut row_min = row[0];
        for (j, &bj) in b.iter().enumerate() {
            let cost = usize::from(ai != bj);
            let mut cell = (previous[j + 1] + 1)
                .min(row[j] + 1)
                .min(previous[j] + cost);
            if i > 0 && j > 0 && ai == b[j - 1] && a[i - 1] == bj {
                cell = cell.min(before[j - 1] + 1);
            }
            row[j + 1] = cell;
            row_min = row_min.min(cell);
        }
        // A cell comes from the row above, or from two rows above plus a swap: once
        // two rows in a row are past the limit, every later one is too.
        if row_min > limit && previous_min > limit {
            return None;
        }
        previous_min = row_min;
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut row);
    }
    previous.get(b.len()).copied().filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_counted_without_order_never_exceed_the_distance() {
        for (a, b) in [
            ("pool_strat", "pool_start"),
            ("blksize", "blocksize"),
            ("option12345", "pool_start"),
            ("", "abc"),
            ("lease_tim", "lease_time"),
            ("ab", "ba"),
        ] {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let distance = distance_within(&a, &b, usize::MAX).unwrap();
            for limit in 0..12 {
                if letters_differ_by_more_than(&a, &b, limit) {
                    assert!(distance > limit, "{a:?} {b:?} {limit}");
                }
            }
        }
        let (a, b): (Vec<char>, Vec<char>) = (
            "option12345".chars().collect(),
            "pool_start".chars().collect(),
        );
        assert!(letters_differ_by_more_than(&a, &b, 3));
        // Beyond ASCII it cannot tell.
        let (a, b): (Vec<char>, Vec<char>) = ("é".chars().collect(), "abcdef".chars().collect());
        assert!(!letters_differ_by_more_than(&a, &b, 0));
    }

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
