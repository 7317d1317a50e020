//! Configuration: pybootd's INI file (1.5 and 1.8 dialects) into a typed `Config`.
//!
//! `ini` reads the text and keeps lines, `value` parses single values, `load` builds
//! the `Config` and reports defaults, repetitions and unknown names, `report`
//! prints the effective settings for `bootd --check`.

mod ini;
mod load;
mod report;
mod types;
mod value;

#[cfg(test)]
mod tests;

pub use load::{ConfigError, Loaded, Origin, Setting, load, load_str};
pub use report::effective_settings;
pub use types::*;
