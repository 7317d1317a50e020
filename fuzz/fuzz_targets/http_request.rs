//! Bytes on a connection to the HTTP service: `http::wire::parse_request`, the range
//! and target decoding, then the endpoint driven with the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bootd::fuzzing::http_request(data));
