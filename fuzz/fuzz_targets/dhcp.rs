//! DHCPv4 messages (BOOTP header and options).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = netmonitor_sensor::dhcp::parse(data);
});
