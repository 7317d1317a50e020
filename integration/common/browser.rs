//! Headless Chromium as an operator opens bootd's pages: the document it built
//! (`--dump-dom`, after its own parsing) and a screenshot kept for people to look
//! at (a CI artefact under the target directory).

use std::path::Path;
use std::time::Duration;

use super::{Finished, Netns, run_bounded};

/// Chromium, headless, run in `ns` with its profile under `profile`, loading
/// `url` with the `extra` switches, within 90 s.
pub fn chromium(ns: &Netns, profile: &Path, url: &str, extra: &[&str]) -> Finished {
    let mut c = ns.command("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1200,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    run_bounded(&mut c, Duration::from_secs(90))
}

/// The page at `url` as Chromium built it; panics when Chromium fails.
pub fn dom(ns: &Netns, profile: &Path, url: &str) -> String {
    let dom = chromium(ns, profile, url, &["--dump-dom"]);
    assert!(dom.success(), "{dom}");
    dom.stdout
}

/// A PNG screenshot of the page at `url`, written to `path` (replacing one left
/// by an earlier run); panics when none is made.
pub fn screenshot(ns: &Netns, profile: &Path, url: &str, path: &Path) {
    let _ = std::fs::remove_file(path);
    let shot = chromium(
        ns,
        profile,
        url,
        &[&format!("--screenshot={}", path.display())],
    );
    assert!(shot.success(), "{shot}");
    let png = std::fs::read(path).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        path.display()
    );
}
