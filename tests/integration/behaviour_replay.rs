//! Behaviour detections that need hours of traffic, from synthesized captures whose packet
//! times span those hours (a replay takes seconds): a beacon polling every minute with jitter,
//! malware trying generated domains; and the near misses that must stay quiet next to them:
//! irregular browsing of the same server, a browser's burst of connections to many hosts, a
//! busy resolver's varied lookups (CDN names and typos included).

use crate::util::*;
use netmonitor_capture::synth::{dns_answer, dns_query, Synth};
use netmonitor_common::Timestamp;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::Path;

const START_SECS: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

type Pcap = Synth<std::fs::File>;

fn pcap(path: &Path, seed: u64, write: impl FnOnce(&mut Pcap)) {
    let f = std::fs::File::create(path).unwrap();
    let mut s = Synth::new(f, seed, Timestamp(START_SECS * 1_000_000)).unwrap();
    write(&mut s);
    s.finish().unwrap();
}

/// One HTTP GET and its answer of `body` bytes on a fresh connection.
fn poll(s: &mut Pcap, client: [u8; 4], server: [u8; 4], cport: u16, body: usize) {
    let mut c = s.tcp_open(client, server, cport, 80).unwrap();
    s.tcp_send(
        &mut c,
        true,
        b"GET /api/v1/tasks HTTP/1.1\r\nHost: updates.example-cdn.net\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
    )
    .unwrap();
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n{}",
        "x".repeat(body)
    );
    s.tcp_send(&mut c, false, resp.as_bytes()).unwrap();
    s.tcp_close(&mut c).unwrap();
}

fn lookup(s: &mut Pcap, client: [u8; 4], server: [u8; 4], name: &str, exists: bool) {
    let id = s.rng().next_u64() as u16;
    let q = dns_query(id, name, 1);
    let a = if exists {
        dns_answer(&q, Ipv4Addr::new(192, 0, 2, 10))
    } else {
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x83; // NXDOMAIN
        a
    };
    let cport = s.rng().range(1_024, 65_000) as u16;
    s.udp_exchange(client, server, cport, 53, &q, &a).unwrap();
}

fn alerts(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    alerts(events)
        .iter()
        .map(|a| {
            a["alert"]["metadata"]["threat_type"][0]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn a_jittered_one_minute_beacon_is_beaconing_and_irregular_browsing_is_not() {
    let dir = data_dir();
    let path = dir.path().join("beacon.pcap");
    const BEACON: [u8; 4] = [10, 1, 0, 50];
    const BROWSER: [u8; 4] = [10, 1, 0, 60];
    const C2: [u8; 4] = [203, 0, 113, 10];
    const SITE: [u8; 4] = [203, 0, 113, 20];
    pcap(&path, 11, |s| {
        // Two hours: the implant polls every 60 s ± 3 s with the same small answer; a person
        // visits another server at human, irregular times with pages of varied size.
        let end = START_SECS * 1_000_000 + 2 * 3600 * 1_000_000;
        let mut next_beacon = s.now().0;
        let mut next_visit = s.now().0 + 5_000_000;
        let mut port = 20_000u16;
        while next_beacon < end || next_visit < end {
            port = port.wrapping_add(1).max(20_000);
            if next_beacon <= next_visit {
                s.advance(next_beacon - s.now().0);
                poll(s, BEACON, C2, port, 64);
                let jitter = s.rng().range(0, 6_000_000) as i64 - 3_000_000;
                next_beacon += 60_000_000 + jitter;
            } else {
                s.advance((next_visit - s.now().0).max(0));
                let body = s.rng().range(2_000, 60_000) as usize;
                poll(s, BROWSER, SITE, port, body);
                // Think time: seconds to a quarter of an hour, heavy-tailed.
                let r = s.rng().range(1, 1000) as i64;
                next_visit += (r * r * 900).max(2_000_000);
            }
        }
    });
    let events = replay_eve(dir.path(), None, &path, &dir.path().join("eve.json"));
    let beacons: Vec<&Value> = alerts(&events)
        .into_iter()
        .filter(|a| a["alert"]["metadata"]["threat_type"][0] == "beaconing")
        .collect();
    assert_eq!(
        beacons.len(),
        1,
        "one beaconing alert: {:?}",
        kinds(&events)
    );
    let b = beacons[0];
    assert_eq!(b["src_ip"], "10.1.0.50");
    assert_eq!(b["dest_ip"], "203.0.113.10");
    assert_eq!(b["alert"]["metadata"]["mitre_technique_id"][0], "T1071");
    let score = b["alert"]["context"]["score"].as_f64().unwrap();
    assert!((0.8..=1.0).contains(&score), "RITA-style score {score}");
    let visits = events
        .iter()
        .filter(|e| e["event_type"] == "flow" && e["src_ip"] == "10.1.0.60")
        .count();
    assert!(
        visits >= 20,
        "the browser made {visits} visits: enough to be judged"
    );
    assert!(
        !alerts(&events).iter().any(|a| a["src_ip"] == "10.1.0.60"),
        "irregular browsing is not beaconing: {:?}",
        kinds(&events)
    );
}

#[test]
fn a_browser_burst_and_a_busy_resolver_are_quiet_but_generated_domains_are_not() {
    let dir = data_dir();
    let path = dir.path().join("burst.pcap");
    const BROWSER: [u8; 4] = [10, 2, 0, 10];
    const RESOLVER: [u8; 4] = [10, 2, 0, 53];
    const UPSTREAM: [u8; 4] = [192, 0, 2, 53];
    const INFECTED: [u8; 4] = [10, 2, 0, 66];
    pcap(&path, 12, |s| {
        // A news page: 60 TLS connections to 35 hosts in two seconds.
        for i in 0..60u16 {
            let host = [198, 51, 100, (i % 35) as u8 + 1];
            s.tls_session(
                BROWSER,
                host,
                40_000 + i,
                &format!("static{}.news.example", i % 35),
            )
            .unwrap();
        }
        // A resolver answering for a whole office over five minutes: 300 names in 120 domains,
        // 80 CDN edge names under one domain, a dozen typos that do not exist.
        for i in 0..300u32 {
            let name = format!("www{}.site{}.example", i % 3, i % 120);
            lookup(s, RESOLVER, UPSTREAM, &name, true);
            s.advance(1_000_000);
        }
        for i in 0..80u32 {
            let edge = format!(
                "d{:x}.cloudfront.net",
                0x1a2b3c4d5eu64 + u64::from(i) * 7919
            );
            lookup(s, RESOLVER, UPSTREAM, &edge, true);
        }
        for typo in [
            "gogle.com",
            "faceboook.com",
            "amazn.com",
            "wikipeda.org",
            "yotube.com",
            "linkdin.com",
            "outlok.com",
            "micorsoft.com",
            "githb.com",
            "stackoverflw.com",
            "reddt.com",
            "netflx.com",
        ] {
            lookup(s, RESOLVER, UPSTREAM, typo, false);
        }
        // Malware walking its generated domains: random names that do not exist.
        for _ in 0..40 {
            let label: String = (0..14)
                .map(|_| (b'a' + (s.rng().next_u64() % 26) as u8) as char)
                .collect();
            lookup(s, INFECTED, UPSTREAM, &format!("{label}.com"), false);
            s.advance(500_000);
        }
    });
    let events = replay_eve(dir.path(), None, &path, &dir.path().join("eve.json"));
    let found = kinds(&events);
    assert_eq!(found, ["dga"], "only the generated domains: {found:?}");
    let dga = alerts(&events)[0];
    assert_eq!(dga["src_ip"], "10.2.0.66");
    assert_eq!(
        dga["alert"]["metadata"]["mitre_technique_id"][0],
        "T1568.002"
    );
    let tls = events.iter().filter(|e| e["event_type"] == "tls").count();
    assert_eq!(tls, 60, "every browser connection was seen");
    let resolver_queries = events
        .iter()
        .filter(|e| e["event_type"] == "dns" && e["src_ip"] == "10.2.0.53")
        .count();
    assert!(
        resolver_queries >= 392,
        "{resolver_queries} resolver records"
    );
}
