//! Configuration: pybootd's INI file (1.5 and 1.8 dialects) into a typed `Config`.
//!
//! `options` is the one table of options (name, section, default, parser, doc);
//! `ini` reads the text with `configparser` and numbers its lines, `value` parses
//! single values, `load` applies the table to the file and reports every default,
//! repetition, unknown name and error, `hint` suggests the name meant, `report`
//! prints the effective settings for `bootd --check`, `docs` holds the sample
//! file and the README to the table, and `man` the manual pages; `menu` completes
//! and checks the operating systems of the boot menu (with BootTorrent's
//! `oss/NAME/config.yaml` files).

#[cfg(test)]
mod docs;
mod hint;
mod ini;
mod load;
#[cfg(test)]
mod man;
mod menu;
mod options;
mod report;
mod types;
mod value;

#[cfg(test)]
mod tests;

pub use load::{
    ConfigError, Loaded, Origin, Problem, Setting, Severity, is_ipxe_loader, load, load_str,
};
pub use report::effective_settings;
pub use types::*;
