//! X.509 certificates (DER).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = netmonitor_tls::x509::parse_certificate(data);
});
