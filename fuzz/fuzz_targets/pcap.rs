//! The pcap/pcapng reader over a whole file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_capture::source::PcapFileSource;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = PcapFileSource::new(data) else {
        return;
    };
    // every packet, until the end or the first error
    while let Ok(Some(p)) = src.next_packet() {
        std::hint::black_box(p.data.len());
    }
});
