//! A datagram on the BOOTP/DHCP port: `bootp::wire::Message::parse`, then emit and parse back.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bootd::fuzzing::dhcp_message(data));
