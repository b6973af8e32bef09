//! What risk scoring and correlation cost.
//!
//! - Absorption: 1,000,000 alerts (a mix of kinds over 100,000 sources and 1,000 targets, in ten
//!   minutes of packet time) folded into the risk book in batches of 1,000 on one core:
//!   scores, levels, chains, ATT&CK counters and history. The reference folds the same alerts
//!   into a bare `HashMap` of per-address count and score sum in the same run (goal: at least
//!   100,000 alerts a second). Then one history snapshot of every asset, timed alone (it runs
//!   once per `history_interval_secs` of packet time).
//! - `get_top_risk_assets` with 100,000 scored assets: the book ranked and the page encoded as
//!   the tool does, p50/p99 over 300 calls, against one pass reading every asset's score
//!   (goal p50 < 10 ms).
//! - Replay cost: the mixed benchmark capture with the risk actor on and off, best of 7
//!   alternating runs.
//!
//! Run: `cargo bench --bench risk` (ALERTS=N, ASSETS=N, PACKETS=N resize it).

use netmonitor_capture::synth::{write_mix, TrafficMix};
use netmonitor_common::{mitre, Alert, Event, EventHeader, EventKind, FlowKey, Timestamp};
use netmonitor_risk::book::{round, TopFilter};
use netmonitor_risk::{RiskBook, RiskConfig};
use serde_json::json;
use std::collections::HashMap;
use std::hint::black_box;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;

use support::{env_or, percentile};

const T0: i64 = 1_767_225_600_000_000;
const KINDS: [(&str, u8); 8] = [
    ("port_scan", 2),
    ("horizontal_scan", 2),
    ("brute_force", 1),
    ("kerberoasting", 1),
    ("beaconing", 1),
    ("dns_tunnel", 1),
    ("malicious_domain", 1),
    ("weak_tls_version", 3),
];

/// A small PRNG (xorshift64*), so that runs are alike.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn alerts(n: usize, assets: u32, span_us: i64) -> Vec<Event> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let src = Ipv4Addr::from(0x0a00_0000 + (rng.next() % u64::from(assets)) as u32);
            let dst = Ipv4Addr::from(0xcb00_7100 + (rng.next() % 1000) as u32);
            let (kind, severity) = KINDS[(rng.next() % KINDS.len() as u64) as usize];
            Event {
                header: EventHeader {
                    ts: Timestamp(T0 + (i as i64) * span_us / n as i64),
                    flow_id: i as u64,
                    key: FlowKey {
                        src_ip: IpAddr::V4(src),
                        src_port: 40_000,
                        dst_ip: IpAddr::V4(dst),
                        dst_port: 443,
                        proto: 6,
                    },
                },
                kind: EventKind::Alert(Alert {
                    signature_id: 1,
                    signature: kind.into(),
                    category: "bench".into(),
                    severity,
                    threat_type: kind.into(),
                    mitre: mitre::techniques_for(kind)
                        .unwrap_or(&[])
                        .iter()
                        .map(|t| t.to_string())
                        .collect(),
                    evidence: json!({}),
                }),
            }
        })
        .collect()
}

fn absorption() -> RiskBook {
    let n = env_or("ALERTS", 1_000_000) as usize;
    let assets = env_or("ASSETS", 100_000) as u32;
    // A ten-minute burst of packet time: two history snapshots fall in it.
    let span_us = env_or("SPAN_SECS", 600) as i64 * 1_000_000;
    let all = alerts(n, assets, span_us);
    let batches: Vec<&[Event]> = all.chunks(1000).collect();

    let t = Instant::now();
    let mut reference: HashMap<IpAddr, (u64, f64)> = HashMap::new();
    for b in &batches {
        for ev in b.iter() {
            if let EventKind::Alert(a) = &ev.kind {
                for ip in [ev.header.key.src_ip, ev.header.key.dst_ip] {
                    let e = reference.entry(ip).or_default();
                    e.0 += 1;
                    e.1 += f64::from(a.severity);
                }
            }
        }
    }
    black_box(&reference);
    let ref_rate = n as f64 / t.elapsed().as_secs_f64();

    let mut book = RiskBook::new(RiskConfig::default(), "bench");
    let t = Instant::now();
    let mut raised = 0;
    for b in &batches {
        book.ingest_alerts(b);
        raised += book.take_alerts().len();
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    let t = Instant::now();
    book.snapshot(book.now_us());
    let snap_ms = t.elapsed().as_secs_f64() * 1e3;
    let changes = book.take_changes();
    println!(
        "  absorption: {n} alerts over {} assets in {secs:.2} s: {:.0} alerts/s on one core \
         ({:.2}x a bare HashMap fold at {:.0}/s; goal >= 100,000/s); {raised} alerts raised, \
         {} chains, {} history rows; one snapshot of every asset {snap_ms:.1} ms",
        book.len(),
        rate,
        rate / ref_rate,
        ref_rate,
        book.chains.len(),
        changes.history.len()
    );
    book
}

fn top_latency(book: &RiskBook) {
    let mut reference = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let mut best = 0.0f64;
        let now = book.now_us();
        for (_, a) in book.assets() {
            best = best.max(book.score_at(a, now).score);
        }
        black_box(best);
        reference.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ref_p50 = percentile(&mut reference, 0.5);
    for (name, limit, filter) in [
        ("limit 10", 10, TopFilter::default()),
        (
            "limit 100, kind internal",
            100,
            TopFilter {
                kind: Some("internal".into()),
                ..Default::default()
            },
        ),
    ] {
        let mut ms = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            let (top, matched) = book.top(limit, &filter);
            let page: Vec<serde_json::Value> = top
                .iter()
                .map(|(ip, s)| {
                    let a = book.asset(ip);
                    json!({"ip": ip, "score": round(s.score), "level": s.level, "base_score": round(s.base),
                           "criticality": a.map(|a| book.criticality(a)), "alerts": a.map_or(0, |a| a.alerts.total)})
                })
                .collect();
            black_box((page, matched));
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let p50 = percentile(&mut ms, 0.5);
        println!(
            "  get_top_risk_assets {name} over {} assets: p50 {p50:.2} ms, p99 {:.2} ms \
             ({:.2}x one scoring pass at {ref_p50:.2} ms; goal p50 < 10 ms)",
            book.len(),
            percentile(&mut ms, 0.99),
            p50 / ref_p50
        );
    }
}

fn replay_cost() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("mixed.pcap");
    let mix = TrafficMix::benchmark(env_or("PACKETS", 500_000) as usize);
    let summary = write_mix(BufWriter::new(std::fs::File::create(&pcap).unwrap()), &mix).unwrap();
    let (on, off) = (dir.path().join("on.toml"), dir.path().join("off.toml"));
    std::fs::write(&on, "").unwrap();
    std::fs::write(&off, "[risk]\nenabled = false\n").unwrap();
    let (without, with) = support::best_off_on(7, Some(&off), Some(&on), &pcap);
    println!(
        "  replay, mixed capture ({} packets): risk off {without:.3} s, on {with:.3} s: \
         ratio {:.3} ({:+.1}%, best of 7, alternating)",
        summary.packets,
        with / without,
        (with / without - 1.0) * 100.0
    );
}

fn main() {
    println!("risk bench");
    let book = absorption();
    top_latency(&book);
    replay_cost();
}
