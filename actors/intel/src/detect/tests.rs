use super::*;
use crate::matcher::{Entry, MatcherBuilder};
use netmonitor_common::{
    Certificate, DnsRecord, EventHeader, FlowKey, FlowStart, HttpRecord, Timestamp, TlsHandshake,
};
use std::sync::Arc;

fn feeds() -> FeedMatchers {
    let mut b = MatcherBuilder::new();
    let add = |b: &mut MatcherBuilder, kind, value: &str, confidence, valid_until| {
        b.add(
            "test-feed",
            &Entry {
                kind,
                value,
                confidence,
                valid_until,
                description: Some("listed"),
            },
        )
    };
    add(&mut b, IndicatorKind::Ip, "198.51.100.7", 90, None);
    add(&mut b, IndicatorKind::Cidr, "203.0.113.0/24", 60, None);
    add(&mut b, IndicatorKind::Domain, "evil.example", 85, None);
    add(
        &mut b,
        IndicatorKind::Url,
        "http://bad.example/dl/x.exe",
        75,
        None,
    );
    add(
        &mut b,
        IndicatorKind::Ja3,
        "e7d705a3286e19ea42f587b344ee6865",
        95,
        None,
    );
    add(
        &mut b,
        IndicatorKind::CertSha1,
        "be4d4d1b6fa3d5b2e6e4d0ab1b9b0a7f6c2e9d01",
        90,
        None,
    );
    add(&mut b, IndicatorKind::Ip, "192.0.2.99", 90, Some(1_000));
    let mut b2 = MatcherBuilder::new();
    b2.add(
        "second",
        &Entry {
            kind: IndicatorKind::Ip,
            value: "198.51.100.7",
            confidence: 40,
            valid_until: None,
            description: None,
        },
    );
    FeedMatchers::default()
        .with("test-feed", Arc::new(b.build()))
        .with("second", Arc::new(b2.build()))
}

fn ev(flow: u64, src: &str, dst: &str, ts: i64, kind: EventKind) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp(ts),
            flow_id: flow,
            key: FlowKey {
                src_ip: src.parse().unwrap(),
                src_port: 40000,
                dst_ip: dst.parse().unwrap(),
                dst_port: 443,
                proto: 6,
            },
        },
        kind,
    }
}

fn alerts(d: &mut IntelDetector, f: &FeedMatchers, e: Event) -> Vec<Alert> {
    let mut out = Vec::new();
    d.inspect(f, &e, &mut out);
    out.into_iter()
        .map(|e| match e.kind {
            EventKind::Alert(a) => a,
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn every_field_kind_raises_its_alert() {
    let f = feeds();
    let mut d = IntelDetector::new(3600, 0);
    let start = EventKind::FlowStart(FlowStart::default());
    let a = alerts(
        &mut d,
        &f,
        ev(1, "10.0.0.5", "198.51.100.7", 2_000, start.clone()),
    );
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].threat_type, "blacklisted_ip");
    assert_eq!(a[0].severity, 1);
    assert_eq!(a[0].evidence["matched_field"], "dest_ip");
    assert_eq!(a[0].evidence["feeds"], json!(["second", "test-feed"]));
    assert_eq!(a[0].evidence["confidence"], 90);

    let a = alerts(
        &mut d,
        &f,
        ev(2, "203.0.113.9", "10.0.0.5", 2_000, start.clone()),
    );
    assert_eq!(a[0].evidence["indicator"], "203.0.113.0/24");
    assert_eq!(a[0].evidence["matched_field"], "src_ip");
    assert_eq!(a[0].severity, 2);

    let dns = EventKind::Dns(DnsRecord {
        kind: "answer".into(),
        rrname: "WWW.Evil.Example.".into(),
        rrtype: "A".into(),
        answers: vec!["198.51.100.7".into()],
        ..DnsRecord::default()
    });
    // Another client: 10.0.0.5 was alerted on for this address within the window already.
    let a = alerts(&mut d, &f, ev(3, "10.0.0.50", "10.0.0.53", 2_000, dns));
    let kinds: Vec<_> = a.iter().map(|a| a.threat_type.as_str()).collect();
    assert_eq!(kinds, ["malicious_domain", "blacklisted_ip"]);
    assert_eq!(a[0].evidence["indicator"], "evil.example");
    assert_eq!(a[0].evidence["matched_value"], "www.evil.example");

    let tls = EventKind::Tls(TlsHandshake {
        sni: Some("cdn.evil.example".into()),
        ja3: Some(netmonitor_common::Fingerprint {
            hash: "e7d705a3286e19ea42f587b344ee6865".into(),
            string: String::new(),
        }),
        certificates: vec![Certificate {
            subject: "CN=other.example".into(),
            fingerprint: "be:4d:4d:1b:6f:a3:d5:b2:e6:e4:d0:ab:1b:9b:0a:7f:6c:2e:9d:01".into(),
            ..Certificate::default()
        }],
        ..TlsHandshake::default()
    });
    let a = alerts(&mut d, &f, ev(4, "10.0.0.6", "10.9.9.9", 2_000, tls));
    let kinds: Vec<_> = a.iter().map(|a| a.threat_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["malicious_domain", "malicious_ja3", "malicious_cert"]
    );

    let http = EventKind::Http(HttpRecord {
        hostname: Some("bad.example".into()),
        url: "/dl/x.exe".into(),
        http_method: "GET".into(),
        protocol: "HTTP/1.1".into(),
        ..HttpRecord::default()
    });
    let a = alerts(&mut d, &f, ev(5, "10.0.0.7", "10.9.9.8", 2_000, http));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].threat_type, "malicious_url");
    assert_eq!(
        a[0].evidence["matched_value"],
        "http://bad.example/dl/x.exe"
    );
}

#[test]
fn near_misses_raise_nothing() {
    let f = feeds();
    let mut d = IntelDetector::new(3600, 0);
    let start = EventKind::FlowStart(FlowStart::default());
    for (src, dst) in [
        ("10.0.0.5", "198.51.100.8"), // next address
        ("203.0.114.1", "10.0.0.5"),  // adjacent block
        ("10.0.0.5", "192.0.2.99"),   // expired at 1 ms
    ] {
        assert!(alerts(&mut d, &f, ev(9, src, dst, 2_000, start.clone())).is_empty());
    }
    let dns = EventKind::Dns(DnsRecord {
        kind: "query".into(),
        rrname: "notevil.example".into(),
        ..DnsRecord::default()
    });
    assert!(alerts(&mut d, &f, ev(10, "10.0.0.5", "10.0.0.53", 2_000, dns)).is_empty());
    let http = EventKind::Http(HttpRecord {
        hostname: Some("bad.example".into()),
        url: "/dl/x.exe?other".into(),
        ..HttpRecord::default()
    });
    assert!(alerts(&mut d, &f, ev(11, "10.0.0.5", "10.0.0.9", 2_000, http)).is_empty());
    assert!(d.stats().lookups >= 6);
}

#[test]
fn once_per_flow_and_per_window_and_confidence_floor() {
    let f = feeds();
    let mut d = IntelDetector::new(60, 0);
    let start = EventKind::FlowStart(FlowStart::default());
    let hit = |d: &mut IntelDetector, flow, ts| {
        alerts(
            d,
            &f,
            ev(flow, "10.0.0.5", "198.51.100.7", ts, start.clone()),
        )
        .len()
    };
    assert_eq!(hit(&mut d, 1, 0), 1);
    assert_eq!(hit(&mut d, 1, 1), 0, "same flow");
    assert_eq!(
        hit(&mut d, 2, 30_000_000),
        0,
        "same client within the window"
    );
    assert_eq!(hit(&mut d, 3, 61_000_000), 1, "after the window");
    assert_eq!(d.stats().suppressed, 2);
    let mut strict = IntelDetector::new(60, 95);
    assert_eq!(hit(&mut strict, 1, 0), 0);
    assert_eq!(strict.stats().below_confidence, 1);
    assert_eq!(strict.stats().matches_by_feed["test-feed"], 1);
}
