//! TCP reassembly: the input is a list of segments, each `dir flags seq_delta(2) len(1)` followed
//! by `len` payload bytes, applied to one flow (overlaps, holes, retransmissions, both ways).
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_capture::reassembly::{Chunk, Reassembler, ReassemblyConfig, Segment, TcpStreams};
use netmonitor_common::Direction;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut s = TcpStreams::default();
    let mut seq = [1000u32, 5000u32];
    let mut delivered = 0usize;
    let mut sink = |_d: Direction, c: Chunk<'_>| {
        if let Chunk::Data(b) = c {
            delivered += b.len();
        }
        true
    };
    let mut rest = data;
    while let [dir, flags, d0, d1, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        let i = usize::from(dir & 1);
        let dir = if i == 0 { Direction::ToServer } else { Direction::ToClient };
        let delta = i16::from_be_bytes([*d0, *d1]);
        seq[i] = seq[i].wrapping_add(delta as u32);
        let seg = Segment {
            seq: seq[i],
            ack: seq[1 - i],
            flags: *flags,
            data: payload,
        };
        r.segment(&mut s, dir, &seg, &mut sink);
        rest = next;
    }
    r.finish(&mut s, &mut sink);
    std::hint::black_box(delivered);
});
