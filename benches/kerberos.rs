//! Kerberos: decode cost per message (vs one MD5 over the same bytes, measured in the same run),
//! and detection latency on replay: the wall time from handing the pipeline a TGS-REP packet
//! whose ticket is RC4 (Kerberoasting) to having the alert in hand, against the time for the
//! same exchange with an AES ticket (no alert).
//!
//! Run: `cargo bench --bench kerberos`.

use md5::{Digest, Md5};
use netmonitor_capture::synth::{krb_reply, krb_request, KrbSpec, Synth, XorShift};
use netmonitor_capture::PcapFileSource;
use netmonitor_common::{EventKind, Timestamp};
use netmonitor_sensor::{Sensor, SensorConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn per_iter(iters: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(iters)
}

/// Median and 99th percentile of per-packet processing times for the TGS-REP packets.
fn replay_latency(ticket_etype: i64, exchanges: usize) -> (Duration, Duration, usize) {
    let mut pcap = Vec::new();
    let mut s = Synth::new(&mut pcap, 9, Timestamp(1_700_000_000_000_000)).unwrap();
    for i in 0..exchanges {
        let user = format!("user{i}");
        let svc = format!("MSSQLSvc/db{i}.corp.example");
        let (a, b) = svc.split_once('/').unwrap();
        s.kerberos_exchange(
            [10, 1, (i >> 8) as u8, i as u8],
            [10, 0, 0, 1],
            "CORP.EXAMPLE",
            &user,
            &[a, b],
            ticket_etype,
        )
        .unwrap();
        s.advance(1_000_000);
    }
    s.finish().unwrap();
    let mut src = PcapFileSource::new(std::io::Cursor::new(pcap)).unwrap();
    let mut sensor = Sensor::new(&SensorConfig::default(), Default::default()).unwrap();
    let mut times = Vec::new();
    let mut alerts = 0;
    let mut n = 0usize;
    while let Some(pkt) = src.next_packet().unwrap() {
        n += 1;
        let t = Instant::now();
        sensor.process(&pkt);
        let events = sensor.take_events();
        let dt = t.elapsed();
        // Each exchange is AS-REQ, AS-REP, TGS-REQ, TGS-REP: the 4th packet carries the ticket.
        if n.is_multiple_of(4) {
            times.push(dt);
        }
        alerts += events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Alert(a) if a.threat_type == "kerberoasting"))
            .count();
    }
    times.sort();
    (
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        alerts,
    )
}

fn main() {
    let mut rng = XorShift::new(5);
    let krbtgt = ["krbtgt", "CORP.EXAMPLE"];
    let svc = ["MSSQLSvc", "db1.corp.example"];
    let spec = |sname: &'static [&'static str]| KrbSpec {
        realm: "CORP.EXAMPLE",
        cname: "alice",
        sname,
        etypes: &[18, 17, 23],
        ticket_etype: 23,
        reply_etype: 18,
        now: Timestamp(1_700_000_000_000_000),
    };
    let krbtgt: &'static [&'static str] = Box::leak(Box::new(krbtgt));
    let svc: &'static [&'static str] = Box::leak(Box::new(svc));
    let messages = [
        ("AS-REQ", krb_request(&mut rng, &spec(krbtgt), false)),
        ("AS-REP", krb_reply(&mut rng, &spec(krbtgt), false)),
        ("TGS-REQ", krb_request(&mut rng, &spec(svc), true)),
        ("TGS-REP", krb_reply(&mut rng, &spec(svc), true)),
    ];
    println!("kerberos bench: decode cost per message");
    for (name, bytes) in &messages {
        assert!(netmonitor_kerberos::parse_message(bytes).is_ok());
        let iters = 200_000;
        let decode = per_iter(iters, || {
            black_box(netmonitor_kerberos::parse_message(black_box(bytes)).ok());
        });
        let md5 = per_iter(iters, || {
            black_box(Md5::digest(black_box(bytes)));
        });
        println!(
            "  {name:<8} {:>5} bytes  decode {decode:>7.0} ns  md5 of same bytes {md5:>6.0} ns  ratio {:>5.2}",
            bytes.len(),
            decode / md5
        );
    }
    let exchanges = 5_000;
    let (rc4_p50, rc4_p99, alerts) = replay_latency(23, exchanges);
    let (aes_p50, aes_p99, quiet) = replay_latency(18, exchanges);
    println!("kerberos bench: packet-to-alert latency on replay ({exchanges} exchanges)");
    println!("  RC4 ticket (alerts: {alerts}):   p50 {rc4_p50:?}  p99 {rc4_p99:?}");
    println!("  AES ticket (alerts: {quiet}):    p50 {aes_p50:?}  p99 {aes_p99:?}  (reference)");
    println!(
        "  ratio p50 alerting/benign packet: {:.2}",
        rc4_p50.as_secs_f64() / aes_p50.as_secs_f64()
    );
    assert_eq!(quiet, 0, "AES tickets raise no Kerberoasting alert");
    assert!(alerts >= exchanges, "every RC4 service ticket is flagged");
}
