//! The lease file read at start-up: `bootp::leases::parse_lease_file`, each record written and read back.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bootd::fuzzing::lease_file(data));
