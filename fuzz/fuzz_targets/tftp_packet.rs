//! A datagram on the TFTP port: `tftp::wire::Packet::parse`, then emit and parse back.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bootd::fuzzing::tftp_packet(data));
