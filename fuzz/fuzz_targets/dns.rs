//! DNS messages (names with compression pointers, answers).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = netmonitor_sensor::dns::parse(data);
});
