//! Configuration: pybootd's INI file (1.5 and 1.8 dialects) into a typed `Config`.

mod types;
pub use types::*;
