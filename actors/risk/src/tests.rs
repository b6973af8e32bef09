//! The book as a whole: alerts in, scores, levels, chains and raised alerts out.

use crate::book::{RiskBook, TopFilter};
use crate::config::RiskConfig;
use crate::score::Level;
use netmonitor_common::{Alert, Event, EventHeader, EventKind, FlowKey, Timestamp};
use std::net::IpAddr;

const T0: i64 = 1_767_225_600_000_000;
const HOUR: i64 = 3_600_000_000;

fn alert(ts: i64, kind: &str, sev: u8, src: [u8; 4], dst: [u8; 4], port: u16) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp(ts),
            flow_id: 1,
            key: FlowKey {
                src_ip: src.into(),
                src_port: 40_000,
                dst_ip: dst.into(),
                dst_port: port,
                proto: 6,
            },
        },
        kind: EventKind::Alert(Alert {
            signature_id: 1,
            signature: kind.into(),
            category: "test".into(),
            severity: sev,
            threat_type: kind.into(),
            mitre: netmonitor_common::mitre::techniques_for(kind)
                .unwrap()
                .iter()
                .map(|t| t.to_string())
                .collect(),
            evidence: serde_json::json!({}),
        }),
    }
}

fn kinds(raised: &[Event]) -> Vec<String> {
    raised
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) => Some(a.threat_type.clone()),
            _ => None,
        })
        .collect()
}

const A: [u8; 4] = [10, 1, 0, 9];

#[test]
fn scan_then_kerberoasting_then_beaconing_climbs_in_steps_and_chains_in_order() {
    let mut b = RiskBook::new(RiskConfig::default(), "s1");
    let a: IpAddr = A.into();
    let mut scores = Vec::new();
    b.ingest_alerts(&[alert(T0, "port_scan", 2, A, [10, 1, 0, 20], 0)]);
    scores.push(b.score(&a).unwrap());
    assert!(b.take_alerts().is_empty(), "one stage, low: nothing raised");
    b.ingest_alerts(&[alert(
        T0 + 600_000_000,
        "kerberoasting",
        1,
        A,
        [10, 1, 0, 5],
        88,
    )]);
    scores.push(b.score(&a).unwrap());
    assert_eq!(kinds(&b.take_alerts()), ["attack_chain"]);
    b.ingest_alerts(&[alert(T0 + HOUR, "beaconing", 1, A, [203, 0, 113, 10], 80)]);
    scores.push(b.score(&a).unwrap());
    let raised = b.take_alerts();
    assert_eq!(
        kinds(&raised),
        ["attack_chain", "risk_threshold"],
        "{scores:?}"
    );
    assert!(
        scores.windows(2).all(|w| w[1].score > w[0].score),
        "{scores:?}"
    );
    assert_eq!(scores[2].level, Level::Medium);
    let chain = b.chains.iter().next().unwrap();
    assert_eq!(chain.stages.len(), 3);
    assert!(chain.in_order());
    // Explained: shares add up to one and the strongest comes first.
    let e = b.explain(&a, HOUR).unwrap();
    let shares: f64 = e["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-3, "{shares}");
    assert_eq!(e["modifiers"]["chain_stages"], 3);
    assert_eq!(e["trend"]["direction"], "rising");
}

#[test]
fn a_half_life_later_the_base_halves_and_criticality_ranks_equals() {
    let mut b = RiskBook::new(RiskConfig::default(), "s1");
    let (x, y) = ([10, 1, 0, 30], [10, 1, 0, 31]);
    b.ingest_alerts(&[
        alert(T0, "brute_force", 1, x, [10, 1, 0, 2], 22),
        alert(T0, "brute_force", 1, y, [10, 1, 0, 2], 22),
    ]);
    let before = b.score(&x.into()).unwrap();
    b.set_criticality(y.into(), Some("critical")).unwrap();
    let (top, _) = b.top(2, &TopFilter::default());
    assert_eq!(top[0].0, IpAddr::from(y), "critical ranks first");
    assert!(top[0].1.score > top[1].1.score);
    b.advance(T0 + 24 * HOUR);
    let after = b.score(&x.into()).unwrap();
    assert!(
        (after.base - before.base / 2.0).abs() < 1e-9,
        "{before:?} {after:?}"
    );
    assert!(b.set_criticality(y.into(), Some("extreme")).is_err());
}

#[test]
fn snapshots_follow_packet_time_and_derived_alerts_are_not_scored() {
    let cfg = RiskConfig {
        history_interval_secs: 300,
        ..Default::default()
    };
    let mut b = RiskBook::new(cfg, "s1");
    for i in 0..12 {
        b.ingest_alerts(&[alert(
            T0 + i * 60_000_000,
            "port_scan",
            2,
            A,
            [10, 1, 0, 20],
            0,
        )]);
    }
    let c = b.take_changes();
    let a: IpAddr = A.into();
    let mut rows: Vec<i64> = c
        .history
        .iter()
        .filter(|h| h.asset == a)
        .map(|h| h.ts_us)
        .collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        [T0 + 300_000_000, T0 + 600_000_000],
        "two boundaries passed"
    );
    b.ingest_alerts(&[alert(T0 + HOUR, "risk_threshold", 1, A, A, 0)]);
    assert_eq!(b.asset(&A.into()).unwrap().alerts.total, 12);
}

#[test]
fn flow_records_move_the_clock_and_take_snapshots() {
    let mut b = RiskBook::new(RiskConfig::default(), "s1");
    b.ingest_alerts(&[alert(T0, "port_scan", 2, A, [10, 1, 0, 20], 0)]);
    let mut later = alert(T0 + HOUR, "port_scan", 2, [10, 9, 9, 9], [10, 1, 0, 20], 0);
    later.kind = EventKind::Flow(Default::default());
    b.ingest_events(&[later]);
    let c = b.take_changes();
    assert_eq!(b.now_us(), T0 + HOUR);
    assert!(
        c.history.iter().any(|h| h.asset == IpAddr::from(A)),
        "{:?}",
        c.history
    );
}

#[test]
fn alerts_reported_after_a_long_batch_rewrite_the_history_behind_it() {
    let mut b = RiskBook::new(RiskConfig::default(), "s1");
    let mut flow = alert(
        T0 + 2 * HOUR,
        "port_scan",
        2,
        [10, 9, 9, 9],
        [10, 1, 0, 20],
        0,
    );
    flow.kind = EventKind::Flow(Default::default());
    b.ingest_events(&[flow]);
    b.ingest_alerts(&[
        alert(T0, "port_scan", 2, A, [10, 1, 0, 20], 0),
        alert(T0 + HOUR, "kerberoasting", 1, A, [10, 1, 0, 5], 88),
    ]);
    let a: IpAddr = A.into();
    let mut rows: Vec<(i64, f64)> = b
        .take_changes()
        .history
        .iter()
        .filter(|h| h.asset == a)
        .map(|h| (h.ts_us, h.score))
        .collect();
    rows.sort_by_key(|r| r.0);
    assert_eq!(rows.len(), 24, "every five minutes of the two hours");
    let (early, late) = (rows[0].1, rows[23].1);
    assert!(
        late > early + 10.0,
        "the second alert shows as a step: {rows:?}"
    );
}

#[test]
fn a_batch_spanning_boundaries_snapshots_each_of_them() {
    let mut b = RiskBook::new(RiskConfig::default(), "s1");
    b.ingest_alerts(&[alert(T0, "port_scan", 2, A, [10, 1, 0, 20], 0)]);
    b.take_changes();
    let mut flow = alert(T0 + HOUR, "port_scan", 2, [10, 9, 9, 9], [10, 1, 0, 20], 0);
    flow.kind = EventKind::Flow(Default::default());
    b.ingest_events(&[flow]);
    let a: IpAddr = A.into();
    let n = b
        .take_changes()
        .history
        .iter()
        .filter(|h| h.asset == a)
        .count();
    assert_eq!(n, 12, "one per five minutes of the hour");
}
