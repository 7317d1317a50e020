//! A configuration file: `config::load_str` (run in a network namespace: `notify` host names are resolved).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bootd::fuzzing::config_ini(data));
