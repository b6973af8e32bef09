//! QUIC Initial packets: long header, Initial key derivation, decryption, CRYPTO frames and the
//! ClientHello inside. Datagrams are length-prefixed (2 bytes); the first bit of the length
//! picks the direction.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_common::Direction;
use netmonitor_tls::quic::{looks_like_quic_initial, QuicFlowParser};

fuzz_target!(|data: &[u8]| {
    let mut p = QuicFlowParser::new();
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        let word = u16::from_be_bytes([*a, *b]);
        let n = usize::from(word & 0x7fff).min(tail.len());
        let (dgram, next) = tail.split_at(n);
        let dir = if word & 0x8000 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        std::hint::black_box(looks_like_quic_initial(dgram));
        p.feed_datagram(dir, dgram);
        if let Some(ev) = p.poll_event() {
            std::hint::black_box(ev);
        }
        rest = next;
    }
    std::hint::black_box(p.finish());
});
