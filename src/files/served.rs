//! What a file service serves new requests from, made at start and at each reload:
//! the root (canonical when a directory), the directory opened to confine names
//! to it, its text for the log, and the `[filters]` with the local files they name.
//! TFTP and HTTP make it the same way.

use std::path::Path;

use super::root::RootDir;
use crate::config::{FilterRule, TftpRoot};
use crate::filters::Filters;

pub struct Served {
    pub root: TftpRoot,
    /// `None` for an http:// root.
    pub root_dir: Option<RootDir>,
    /// The root, for the log.
    pub served: String,
    pub filters: Filters,
}

/// Opens `root` (an error names it after `option`, e.g. `[tftp] root`) and reads
/// `filter_rules` (a filter's fixed path is taken from `config_dir`), saying which
/// local files the filters serve.
pub fn open_served(
    root: TftpRoot,
    option: &str,
    filter_rules: &[FilterRule],
    config_dir: &Path,
) -> Result<Served, String> {
    let root_dir = match &root {
        TftpRoot::Dir(dir) => {
            Some(RootDir::open(dir).map_err(|e| format!("{option} = {}: {e}", dir.display()))?)
        }
        TftpRoot::Url(_) => None,
    };
    let root = match &root_dir {
        Some(dir) => TftpRoot::Dir(dir.path().to_path_buf()),
        None => root,
    };
    let served = match &root {
        TftpRoot::Dir(dir) => dir.display().to_string(),
        TftpRoot::Url(url) => url.clone(),
    };
    let filters = Filters::with_local_files(filter_rules, config_dir).map_err(|e| e.to_string())?;
    for (line, path) in filters.local_files() {
        log::info!(
            "[filters] line {line} serves the local file {}",
            path.display()
        );
    }
    Ok(Served {
        root,
        root_dir,
        served,
        filters,
    })
}
