//! Per-handshake cost of the TLS dissector, reported as ratios against a reference measured in
//! the same run: one MD5 of the same ClientHello record bytes (`md-5` crate). "JA3+JA4 = K×"
//! reads "fingerprinting a hello costs K times hashing it once".
//!
//! Inputs:
//! - `synthetic`: the handshakes of the `tls` replay benchmark
//!   (`netmonitor_capture::synth::{tls_client_hello, tls_server_flight}`), a pool of distinct
//!   flows (random values, SNI and certificate per flow) cycled through;
//! - `firefox`: a real Firefox ClientHello (FoxIO `tls12.pcap`) and a real server flight with a
//!   three-certificate chain (suricata-verify `tls-certs-alert`).
//!
//! Timed per handshake: `fingerprint_client_hello` (JA3 + JA4), `x509::parse_certificate` of
//! the leaf, a whole `TlsFlowParser` run (hello in, server flight in, event out) and
//! `TlsDetector::inspect` of the event (no alert fires).
//!
//! Run: `cargo bench --bench tls` (ITERS=N iterations per round, ROUNDS=N rounds; best round
//! kept).

use md5::{Digest, Md5};
use netmonitor_capture::synth::{tls_client_hello, tls_server_flight, XorShift};
use netmonitor_common::{Direction, Timestamp};
use netmonitor_tls::detect::TlsDetector;
use netmonitor_tls::parser::{self, handshake_type, Reader, HANDSHAKE_HEADER_LEN};
use netmonitor_tls::{fingerprint_client_hello, x509, TlsFlowParser};
use std::hint::black_box;
use std::time::Instant;

/// Distinct synthetic flows cycled through (keeps caches from seeing one input only).
const POOL: usize = 256;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best (smallest) nanoseconds per call of `f` over `rounds` rounds of `iters` calls each;
/// `f` gets the call number so it can cycle through a pool.
fn ns_per_call(rounds: usize, iters: usize, mut f: impl FnMut(usize)) -> f64 {
    // Warm-up.
    for i in 0..iters.min(1_000) {
        f(i);
    }
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for i in 0..iters {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Splits a `.seg` fixture (u32 big-endian length + TCP payload, per segment) into segments.
fn segments(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let (Some(len), Some(tail)) = (rest.get(..4), rest.get(4..)) {
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(seg) = tail.get(..n) else { break };
        out.push(seg);
        rest = &tail[n..];
    }
    out
}

/// The DER of the leaf certificate in a server flight (TLS records, Certificate message in
/// the handshake stream).
fn leaf_certificate(flight: &[u8]) -> Vec<u8> {
    // Reassemble the handshake stream from the leading handshake records.
    let mut hs = Vec::new();
    let mut rest = flight;
    while let Ok(h) = parser::parse_record_header(rest) {
        let end = parser::RECORD_HEADER_LEN + h.length;
        if h.content_type == parser::content_type::HANDSHAKE {
            hs.extend_from_slice(&rest[parser::RECORD_HEADER_LEN..end]);
        }
        rest = &rest[end..];
    }
    let mut pos = 0;
    while pos + HANDSHAKE_HEADER_LEN <= hs.len() {
        let mut r = Reader::new(&hs[pos..]);
        let typ = r.u8("type").expect("type");
        let len = r.u24("length").expect("length");
        let body = r.bytes(len, "body").expect("whole message");
        if typ == handshake_type::CERTIFICATE {
            let list = parser::parse_certificate_list(body, 1).expect("certificate list");
            return list.first().expect("a leaf").to_vec();
        }
        pos += HANDSHAKE_HEADER_LEN + len;
    }
    panic!("no Certificate message in the server flight");
}

/// One client→server and one server→client chunk list making up a handshake.
struct Flow {
    hello: Vec<u8>,
    c2s: Vec<Vec<u8>>,
    s2c: Vec<Vec<u8>>,
    leaf: Vec<u8>,
}

/// Runs the flow parser over a whole handshake; returns the event.
fn run_flow(f: &Flow) -> Option<netmonitor_common::TlsHandshake> {
    let mut p = TlsFlowParser::new();
    for seg in &f.c2s {
        p.feed(Direction::ToServer, seg);
    }
    for seg in &f.s2c {
        p.feed(Direction::ToClient, seg);
        if p.is_done() {
            break;
        }
    }
    p.poll_event().or_else(|| p.finish())
}

fn synthetic_pool(now: Timestamp) -> Vec<Flow> {
    let mut rng = XorShift::new(0x7115_be9c);
    (0..POOL)
        .map(|i| {
            let sni = format!("host{i}.bench{}.example.com", i % 17);
            let hello = tls_client_hello(&mut rng, &sni);
            let flight = tls_server_flight(&mut rng, &sni, now);
            let leaf = leaf_certificate(&flight);
            Flow {
                c2s: vec![hello.clone()],
                hello,
                s2c: vec![flight],
                leaf,
            }
        })
        .collect()
}

fn firefox() -> Flow {
    let hello_segs = segments(include_bytes!(
        "../actors/tls/testdata/ja4_tls12_single.c2s.seg"
    ));
    let c2s = segments(include_bytes!(
        "../actors/tls/testdata/tls_certs_alert.c2s.seg"
    ));
    let s2c = segments(include_bytes!(
        "../actors/tls/testdata/tls_certs_alert.s2c.seg"
    ));
    let server: Vec<u8> = s2c.concat();
    Flow {
        hello: hello_segs[0].to_vec(),
        // The full flow is the tls-certs-alert one (its own hello, then the chain).
        c2s: c2s.iter().take(1).map(|s| s.to_vec()).collect(),
        s2c: s2c.iter().map(|s| s.to_vec()).collect(),
        leaf: leaf_certificate(&server),
    }
}

struct Row {
    name: String,
    ns: f64,
}

fn bench_set(label: &str, flows: &[Flow], rounds: usize, iters: usize, now: Timestamp) -> Vec<Row> {
    let n = flows.len();
    for f in flows {
        assert!(
            fingerprint_client_hello(&f.hello).is_some(),
            "{label}: hello fingerprints"
        );
        assert!(
            x509::parse_certificate(&f.leaf).is_ok(),
            "{label}: leaf parses"
        );
        let ev = run_flow(f).expect("an event per flow");
        assert!(ev.ja3.is_some() && ev.ja4.is_some() && !ev.certificates.is_empty());
    }
    let hello_len = flows[0].hello.len();
    let md5 = ns_per_call(rounds, iters, |i| {
        black_box(Md5::digest(black_box(&flows[i % n].hello)));
    });
    let fp = ns_per_call(rounds, iters, |i| {
        black_box(fingerprint_client_hello(black_box(&flows[i % n].hello)));
    });
    let cert = ns_per_call(rounds, iters, |i| {
        black_box(x509::parse_certificate(black_box(&flows[i % n].leaf)).ok());
    });
    let flow = ns_per_call(rounds, iters / 2, |i| {
        black_box(run_flow(black_box(&flows[i % n])));
    });
    let detector = TlsDetector::new();
    let events: Vec<_> = flows.iter().filter_map(run_flow).collect();
    let alerts = detector.inspect(now, &events[0]).len();
    let inspect = ns_per_call(rounds, iters, |i| {
        black_box(detector.inspect(now, black_box(&events[i % n])));
    });
    vec![
        Row {
            name: format!("{label}: md5 of the ClientHello record ({hello_len} B), reference"),
            ns: md5,
        },
        Row {
            name: format!("{label}: JA3+JA4 (fingerprint_client_hello)"),
            ns: fp,
        },
        Row {
            name: format!(
                "{label}: leaf certificate facts (x509::parse_certificate, {} B)",
                flows[0].leaf.len()
            ),
            ns: cert,
        },
        Row {
            name: format!("{label}: whole handshake through TlsFlowParser (feed + event)"),
            ns: flow,
        },
        Row {
            name: format!("{label}: TlsDetector::inspect ({alerts} alerts)"),
            ns: inspect,
        },
    ]
}

fn main() {
    let rounds = env_or("ROUNDS", 7);
    let iters = env_or("ITERS", 20_000);
    // Certificates of the synthetic pool are valid around this instant (no expiry alert).
    let now = Timestamp::from_secs_micros(1_700_000_000, 0);
    println!("TLS dissector cost per handshake (best of {rounds} rounds x {iters} calls)");
    let mut rows = bench_set("synthetic", &synthetic_pool(now), rounds, iters, now);
    rows.extend(bench_set("firefox", &[firefox()], rounds, iters, now));
    // Ratios are against the reference of the same input set.
    let mut reference = f64::NAN;
    for r in &rows {
        if r.name.ends_with("reference") {
            reference = r.ns;
            println!("{:<78} {:>9.0} ns", r.name, r.ns);
        } else {
            println!(
                "{:<78} {:>9.0} ns  = {:>6.1}x md5(hello)",
                r.name,
                r.ns,
                r.ns / reference
            );
        }
    }
}
