//! Deterministic fuzzing (xorshift PRNG, fixed seeds) of the decoder, the TCP framing and the
//! detectors: random bytes and mutations of real messages (truncation, byte flips, inflated
//! lengths, splices) must never panic, and framing memory must stay bounded.

use crate::detect::{KerberosDetector, KrbDetectConfig};
use crate::flow::{KrbFlow, MAX_RECORD_LEN, RECORD_MARK_LEN};
use crate::looks_like_krb_tcp;
use crate::parser::{find_krb_in_gss, looks_like_krb_udp, parse_message, read_header, KrbError};
use crate::testutil::load;
use netmonitor_common::{Direction, EventHeader, FlowKey, Timestamp};
use std::net::{IpAddr, Ipv4Addr};

/// Marsaglia's xorshift64: reproducible, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Every real Kerberos message in the fixtures (UDP payloads and TCP records without mark).
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for name in [
        "bug-8278.txt",
        "kerberoast.txt",
        "probing.txt",
        "error-preauth-padata.txt",
        "kinit.txt",
        "capture-14.txt",
        "capture-15.txt",
        "capture-16.txt",
        "capture-35.txt",
        "capture-36.txt",
        "capture-38.txt",
    ] {
        let segs = load(name);
        for s in segs.iter().filter(|s| s.udp) {
            out.push(s.bytes.clone());
        }
        // TCP: concatenate each direction and cut records by their marks.
        let mut streams: std::collections::BTreeMap<(u32, bool), Vec<u8>> = Default::default();
        for s in segs.iter().filter(|s| !s.udp) {
            streams
                .entry((s.stream, s.to_server))
                .or_default()
                .extend(&s.bytes);
        }
        for bytes in streams.values() {
            let mut rest = &bytes[..];
            while rest.len() >= RECORD_MARK_LEN {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let Some(rec) = rest.get(RECORD_MARK_LEN..RECORD_MARK_LEN + len) else {
                    break;
                };
                out.push(rec.to_vec());
                rest = &rest[RECORD_MARK_LEN + len..];
            }
        }
    }
    out
}

fn header(ts: i64, flow_id: u64, src: u8) -> EventHeader {
    EventHeader {
        ts: Timestamp(ts),
        flow_id,
        key: FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
            src_port: 50_000,
            dst_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_port: 88,
            proto: 6,
        },
    }
}

/// Mutates `msg` in one of several ways.
fn mutate(rng: &mut XorShift, msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    if m.is_empty() {
        return m;
    }
    match rng.below(6) {
        0 => m.truncate(rng.below(m.len())),
        1 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            // Inflate a length: a long-form length byte gets huge, or a short one maximal.
            let i = rng.below(m.len());
            let choice = [0x7f, 0x84, 0x83, 0xff, 0x80, 0x85][rng.below(6)];
            m[i] = choice;
            if i + 1 < m.len() {
                m[i + 1] = 0xff;
            }
        }
        3 => {
            let i = rng.below(m.len());
            let n = rng.below(64);
            let junk: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            m.splice(i..i, junk);
        }
        4 => {
            let i = rng.below(m.len());
            let j = (i + rng.below(32)).min(m.len());
            m.drain(i..j);
        }
        _ => {
            let i = rng.below(m.len());
            m[i] = rng.byte();
        }
    }
    m
}

/// Exercises every entry point on one input.
fn exercise(input: &[u8], detector: &mut KerberosDetector, rng: &mut XorShift, n: u64) {
    let parsed = parse_message(input);
    let _ = looks_like_krb_udp(input);
    let _ = looks_like_krb_tcp(input);
    let _ = find_krb_in_gss(input);
    let mut flow = KrbFlow::new();
    if let Some(m) = flow.on_udp(Direction::ToClient, input) {
        let _ = detector.inspect(&header(n as i64 * 1000, n % 7, (n % 5) as u8), &m);
    }
    if let Ok(m) = parsed {
        let _ = detector.inspect(&header(n as i64 * 1000, n % 7, (n % 5) as u8), &m);
    }
    // Framed, then fed in random chunks.
    let mut stream = (input.len() as u32).to_be_bytes().to_vec();
    stream.extend_from_slice(input);
    let mut out = Vec::new();
    let mut rest = &stream[..];
    while !rest.is_empty() {
        let k = 1 + rng.below(rest.len());
        flow.on_tcp(Direction::ToServer, &rest[..k], &mut out);
        rest = &rest[k..];
    }
    flow.on_tcp(Direction::ToClient, input, &mut out);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut detector = KerberosDetector::new(KrbDetectConfig::default());
    let tags = [0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x7e];
    for n in 0..20_000u64 {
        let len = rng.below(400);
        let mut input: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        // Most inputs get a Kerberos-looking start so the decoder gets past the first byte.
        if len >= 4 && rng.below(4) != 0 {
            input[0] = tags[rng.below(tags.len())];
            input[1] = if rng.below(2) == 0 {
                (len - 2).min(0x7f) as u8
            } else {
                0x82
            };
            input[2] = 0x30;
        }
        exercise(&input, &mut detector, &mut rng, n);
    }
    assert!(detector.stats().messages > 0, "some random inputs decode");
}

#[test]
fn mutated_real_messages_never_panic() {
    let corpus = corpus();
    assert!(corpus.len() > 200, "corpus has {} messages", corpus.len());
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut detector = KerberosDetector::new(KrbDetectConfig::default());
    let mut n = 0u64;
    for msg in &corpus {
        assert!(parse_message(msg).is_ok(), "unmutated corpus decodes");
        for _ in 0..40 {
            let m = mutate(&mut rng, msg);
            exercise(&m, &mut detector, &mut rng, n);
            n += 1;
        }
    }
}

#[test]
fn truncation_keeps_the_message_type() {
    let corpus = corpus();
    let mut rng = XorShift(7);
    for msg in &corpus {
        let full = parse_message(msg).expect("corpus decodes");
        let outer = read_header(msg).expect("outer header");
        let inner = read_header(&msg[outer.header_len..]).expect("inner header");
        let min = outer.header_len + inner.header_len;
        for _ in 0..20 {
            let cut = min + rng.below(msg.len() - min + 1);
            let got = parse_message(&msg[..cut]).expect("a cut after the headers still decodes");
            assert_eq!(got.msg_type, full.msg_type);
        }
        assert_eq!(parse_message(&msg[..1]), Err(KrbError::Truncated));
    }
}

#[test]
fn mutated_tcp_streams_stay_bounded() {
    let corpus = corpus();
    let mut rng = XorShift(0xdead_beef_cafe_f00d);
    for round in 0..200 {
        let mut stream = Vec::new();
        let mut clean = Vec::new();
        for _ in 0..8 {
            let msg = &corpus[rng.below(corpus.len())];
            let mut rec = (msg.len() as u32).to_be_bytes().to_vec();
            rec.extend_from_slice(msg);
            clean.extend_from_slice(&rec);
            stream.extend(if rng.below(3) == 0 {
                mutate(&mut rng, &rec)
            } else {
                rec
            });
        }
        if round % 10 == 0 {
            // A hostile record mark claiming just under the cap, never completed.
            stream.extend_from_slice(&(MAX_RECORD_LEN as u32).to_be_bytes());
            stream.push(0x6c);
        }
        let mut flow = KrbFlow::new();
        let mut out = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let k = 1 + rng.below(rest.len().min(3000));
            flow.on_tcp(Direction::ToServer, &rest[..k], &mut out);
            assert!(flow.buffered_bytes() <= RECORD_MARK_LEN + MAX_RECORD_LEN + 16 * 1024);
            rest = &rest[k..];
        }
        // The same records unmutated, in random chunks, all decode.
        let mut flow = KrbFlow::new();
        let mut out = Vec::new();
        let mut rest = &clean[..];
        while !rest.is_empty() {
            let k = 1 + rng.below(rest.len().min(700));
            flow.on_tcp(Direction::ToClient, &rest[..k], &mut out);
            rest = &rest[k..];
        }
        assert_eq!(out.len(), 8);
        assert_eq!(flow.anomalies().malformed, 0);
    }
}
