//! The whole packet path with every dissector and detector behind it: the input is a list of
//! Ethernet frames, each prefixed by a 2-byte length, timestamps advancing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_capture::decode::linktype;
use netmonitor_capture::RawPacket;
use netmonitor_common::Timestamp;
use netmonitor_sensor::{Sensor, SensorConfig};

fuzz_target!(|data: &[u8]| {
    let alerted = std::sync::Arc::new(netmonitor_runtime::AlertedFlows::default());
    // Small tables: the defaults size a sensor for a link (a large ring, a million flows),
    // which would cost more to set up than the input costs to process.
    let mut cfg = SensorConfig::default();
    cfg.pipeline.ring.max_bytes = 1 << 20;
    cfg.pipeline.flow.max_flows = 4096;
    let Ok(mut sensor) = Sensor::new(&cfg, alerted) else {
        return;
    };
    let mut rest = data;
    let mut ts = 1_700_000_000_000_000i64;
    while let [a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (frame, next) = tail.split_at(n);
        ts += 1_000;
        sensor.process(&RawPacket {
            ts: Timestamp(ts),
            linktype: linktype::ETHERNET,
            data: frame,
            orig_len: frame.len() as u32,
            iface: 0,
        });
        rest = next;
    }
    sensor.finish();
    std::hint::black_box(sensor.take_events());
});
