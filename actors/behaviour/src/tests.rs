//! Each detection on the events it reads, with a near miss that must stay silent.

use crate::config::BehaviourConfig;
use crate::detect::BehaviourDetector;
use netmonitor_common::{
    DnsRecord, Event, EventHeader, EventKind, FlowKey, FlowRecord, FlowStart, HttpRecord, Timestamp,
};

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const S: i64 = 1_000_000;
const T0: i64 = 1_767_225_600 * S;

fn key(src: &str, sport: u16, dst: &str, dport: u16, proto: u8) -> FlowKey {
    FlowKey {
        src_ip: src.parse().unwrap(),
        src_port: sport,
        dst_ip: dst.parse().unwrap(),
        dst_port: dport,
        proto,
    }
}

fn ev(k: FlowKey, ts: i64, kind: EventKind) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp(ts),
            flow_id: ts as u64,
            key: k,
        },
        kind,
    }
}

/// A TCP flow record: `answered` (SYN-ACK), payload each way, start and length.
fn tcp(k: FlowKey, start: i64, secs: i64, answered: bool, up: u64, down: u64) -> Event {
    let f = FlowRecord {
        pkts_toserver: 3,
        pkts_toclient: 2,
        bytes_toserver: up + 200,
        bytes_toclient: down + 120,
        start: Timestamp(start),
        end: Timestamp(start + secs * S),
        state: "closed".into(),
        reason: "timeout".into(),
        tcp_flags_toserver: SYN | ACK | PSH | FIN,
        tcp_flags_toclient: if answered {
            SYN | ACK | PSH | FIN
        } else {
            RST | ACK
        },
        payload_toserver: up,
        payload_toclient: down,
        ..FlowRecord::default()
    };
    ev(k, start + secs * S, EventKind::Flow(f))
}

fn run(d: &mut BehaviourDetector, events: &[Event]) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for e in events {
        d.inspect(e, &mut out);
    }
    out.into_iter()
        .map(|e| match e.kind {
            EventKind::Alert(a) => (a.threat_type, a.evidence),
            _ => unreachable!(),
        })
        .collect()
}

fn kinds(alerts: &[(String, serde_json::Value)]) -> Vec<&str> {
    alerts.iter().map(|a| a.0.as_str()).collect()
}

fn detector() -> BehaviourDetector {
    let mut c = BehaviourConfig::default();
    c.novelty.enabled = false;
    BehaviourDetector::new(c)
}

#[test]
fn vertical_and_horizontal_scans_once_each() {
    let mut d = detector();
    let v: Vec<Event> = (1..=20)
        .map(|p| {
            tcp(
                key("10.0.0.9", 40000 + p, "10.0.0.5", p, 6),
                T0 + i64::from(p) * S,
                0,
                false,
                0,
                0,
            )
        })
        .collect();
    let a = run(&mut d, &v);
    assert!(kinds(&a).contains(&"port_scan"), "{a:?}");
    assert_eq!(kinds(&a).iter().filter(|k| **k == "port_scan").count(), 1);
    let scan = a.iter().find(|x| x.0 == "port_scan").unwrap();
    assert_eq!(scan.1["ports"], 15);
    let h: Vec<Event> = (1..=30)
        .map(|i| {
            tcp(
                key("10.0.0.8", 40000 + i, &format!("10.0.1.{i}"), 22, 6),
                T0 + i64::from(i) * S,
                0,
                false,
                0,
                0,
            )
        })
        .collect();
    let a = run(&mut d, &h);
    assert_eq!(
        kinds(&a)
            .iter()
            .filter(|k| **k == "horizontal_scan")
            .count(),
        2,
        "threshold and random walk: {a:?}"
    );
}

#[test]
fn a_browser_burst_is_not_a_scan() {
    let mut d = detector();
    let burst: Vec<Event> = (0..60)
        .map(|i| {
            let server = format!("203.0.113.{}", i % 12 + 1);
            tcp(
                key("10.0.0.7", 50000 + i, &server, 443, 6),
                T0 + i64::from(i) * 50_000,
                2,
                true,
                800,
                30_000,
            )
        })
        .collect();
    assert!(run(&mut d, &burst).is_empty());
}

#[test]
fn slow_scans_fall_to_the_random_walk() {
    let mut d = detector();
    // One failed first contact every ten minutes: no window sees more than one.
    let slow: Vec<Event> = (0..12)
        .map(|i| {
            tcp(
                key("10.0.0.66", 41000 + i, &format!("10.0.2.{i}"), 445, 6),
                T0 + i64::from(i) * 600 * S,
                0,
                false,
                0,
                0,
            )
        })
        .collect();
    let a = run(&mut d, &slow);
    assert_eq!(kinds(&a), ["horizontal_scan"]);
    assert_eq!(a[0].1["method"], "threshold random walk");
}

#[test]
fn syn_floods_and_connection_floods() {
    let mut d = detector();
    let flood: Vec<Event> = (0..1200u32)
        .map(|i| {
            let src = format!(
                "{}.{}.{}.{}",
                1 + i % 200,
                (i >> 3) % 250,
                i % 7,
                i % 250 + 1
            );
            ev(
                key(&src, 1024 + (i % 60000) as u16, "10.0.0.80", 80, 6),
                T0 + i64::from(i) * 5_000,
                EventKind::FlowStart(FlowStart {
                    tcp_flags: SYN,
                    iface: 0,
                }),
            )
        })
        .collect();
    let a = run(&mut d, &flood);
    assert_eq!(kinds(&a), ["syn_flood"]);
    let conns: Vec<Event> = (0..600u16)
        .map(|i| {
            ev(
                key("10.0.0.3", 1024 + i, "10.0.0.81", 8080, 6),
                T0 + i64::from(i) * 10_000,
                EventKind::FlowStart(FlowStart {
                    tcp_flags: SYN,
                    iface: 0,
                }),
            )
        })
        .collect();
    assert!(kinds(&run(&mut d, &conns)).contains(&"connection_flood"));
}

#[test]
fn brute_force_spraying_and_http_auth() {
    let mut d = detector();
    let ssh = |n: u16, dst: &str, t0: i64| -> Vec<Event> {
        (0..n)
            .map(|i| {
                tcp(
                    key("10.0.0.44", 42000 + i, dst, 22, 6),
                    t0 + i64::from(i) * 3 * S,
                    4,
                    true,
                    1500,
                    2000,
                )
            })
            .collect()
    };
    assert!(
        run(&mut d, &ssh(5, "10.0.0.22", T0)).is_empty(),
        "five logins are not brute force"
    );
    let a = run(&mut d, &ssh(12, "10.0.0.23", T0 + 100 * S));
    assert_eq!(kinds(&a), ["brute_force"]);
    assert_eq!(a[0].1["service"], "ssh");
    let mut d = detector();
    let spray: Vec<Event> = (0..18u16)
        .map(|i| {
            tcp(
                key(
                    "10.0.0.45",
                    43000 + i,
                    &format!("10.0.3.{}", i % 6 + 1),
                    3389,
                    6,
                ),
                T0 + i64::from(i) * S,
                3,
                true,
                900,
                900,
            )
        })
        .collect();
    assert!(kinds(&run(&mut d, &spray)).contains(&"password_spraying"));
    let mut d = detector();
    let http: Vec<Event> = (0..10)
        .map(|i| {
            ev(
                key("10.0.0.46", 44000 + i, "10.0.0.90", 80, 6),
                T0 + i64::from(i) * S,
                EventKind::Http(HttpRecord {
                    status: Some(401),
                    url: "/login".into(),
                    ..HttpRecord::default()
                }),
            )
        })
        .collect();
    assert_eq!(kinds(&run(&mut d, &http)), ["brute_force"]);
}

fn dns(
    client: &str,
    server: &str,
    port: u16,
    ts: i64,
    name: &str,
    rrtype: &str,
    answer: Option<&str>,
) -> Event {
    ev(
        key(client, 53000, server, port, 17),
        ts,
        EventKind::Dns(DnsRecord {
            kind: if answer.is_some() { "answer" } else { "query" }.into(),
            rrname: name.into(),
            rrtype: rrtype.into(),
            rcode: answer.map(str::to_owned),
            ..DnsRecord::default()
        }),
    )
}

fn random_label(seed: &mut u64, len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            alphabet[(*seed % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

#[test]
fn dns_tunnels_and_generated_domains_but_not_chatter() {
    let mut d = detector();
    let mut seed = 42;
    let b32 = b"abcdefghijklmnopqrstuvwxyz234567";
    let tunnel: Vec<Event> = (0..60)
        .map(|i| {
            let name = format!(
                "{}.{}.t.tunnel.example",
                random_label(&mut seed, 50, b32),
                random_label(&mut seed, 12, b32)
            );
            dns(
                "10.0.0.30",
                "10.0.0.53",
                53,
                T0 + i * S,
                &name,
                "NULL",
                None,
            )
        })
        .collect();
    let a = run(&mut d, &tunnel);
    assert_eq!(kinds(&a), ["dns_tunnel"]);
    assert_eq!(a[0].1["domain"], "tunnel.example");

    // A busy resolver asking for many ordinary names of many domains.
    let words = [
        "www", "mail", "api", "cdn", "static", "images", "login", "news",
    ];
    let busy: Vec<Event> = (0..400)
        .map(|i| {
            let name = format!("{}.site{}.example", words[i % words.len()], i / 8);
            dns(
                "10.0.0.53",
                "192.0.2.1",
                53,
                T0 + i as i64 * 100_000,
                &name,
                "A",
                None,
            )
        })
        .collect();
    assert!(
        run(&mut d, &busy).is_empty(),
        "a busy resolver is not a tunnel"
    );

    // mDNS and .local chatter with random names never counts.
    let chatter: Vec<Event> = (0..200)
        .map(|i| {
            let name = format!(
                "{}.{}.local",
                random_label(&mut seed, 50, b32),
                random_label(&mut seed, 10, b32)
            );
            dns(
                "10.0.0.31",
                "224.0.0.251",
                5353,
                T0 + i * S,
                &name,
                "TXT",
                None,
            )
        })
        .collect();
    assert!(run(&mut d, &chatter).is_empty(), "mDNS raises nothing");

    let letters = b"bcdfghjklmnpqrstvwxz";
    let dga: Vec<Event> = (0..25)
        .map(|i| {
            let name = format!("{}.com", random_label(&mut seed, 12, letters));
            dns(
                "10.0.0.32",
                "10.0.0.53",
                53,
                T0 + i * S,
                &name,
                "A",
                Some("NXDOMAIN"),
            )
        })
        .collect();
    let a = run(&mut d, &dga);
    assert_eq!(kinds(&a), ["dga"]);
    assert_eq!(a[0].1["nxdomain_share"], 1.0);

    // The same generated names from a busy client whose other 200 answers resolved: under a
    // fifth of its answers are NXDOMAIN, so no DGA.
    let mut busy_client: Vec<Event> = (0..200)
        .map(|i| {
            let name = format!("www.site{i}.example");
            dns(
                "10.0.0.34",
                "10.0.0.53",
                53,
                T0 + i * S / 10,
                &name,
                "A",
                Some("NOERROR"),
            )
        })
        .collect();
    busy_client.extend(dga.iter().map(|e| {
        let mut e = e.clone();
        e.header.key.src_ip = "10.0.0.34".parse().unwrap();
        e.header.ts.0 += 20 * S;
        e
    }));
    assert!(
        run(&mut d, &busy_client).is_empty(),
        "11% NXDOMAIN is under the ratio"
    );
    let typos = [
        "marketingteam",
        "wikipedia",
        "documentation",
        "engineering",
        "onboarding",
    ];
    let miss: Vec<Event> = (0..25)
        .map(|i| {
            let name = format!("{}{}.org", typos[i % typos.len()], i);
            dns(
                "10.0.0.33",
                "10.0.0.53",
                53,
                T0 + i as i64 * S,
                &name,
                "A",
                Some("NXDOMAIN"),
            )
        })
        .collect();
    assert!(
        run(&mut d, &miss).is_empty(),
        "mistyped words are not generated names"
    );
}

#[test]
fn beacons_score_high_and_random_traffic_low() {
    let mut d = detector();
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let beacon: Vec<Event> = (0..40)
        .map(|i| {
            let jitter = (next() % 4_000_000) as i64 - 2_000_000;
            tcp(
                key("10.0.0.50", 45000 + i, "198.51.100.20", 443, 6),
                T0 + i64::from(i) * 60 * S + jitter,
                1,
                true,
                220 + next() % 8,
                400,
            )
        })
        .collect();
    let a = run(&mut d, &beacon);
    assert_eq!(kinds(&a), ["beaconing"], "{a:?}");
    assert!(a[0].1["score"].as_f64().unwrap() >= 0.8);
    assert!((a[0].1["median_interval_secs"].as_f64().unwrap() - 60.0).abs() < 3.0);
    let mut t = T0;
    let random: Vec<Event> = (0..40)
        .map(|i| {
            t += (next() % 3600) as i64 * S;
            tcp(
                key("10.0.0.51", 46000 + i, "198.51.100.21", 443, 6),
                t,
                2,
                true,
                next() % 100_000,
                5000,
            )
        })
        .collect();
    assert!(run(&mut d, &random).is_empty());
    let long = tcp(
        key("10.0.0.52", 47000, "198.51.100.22", 22, 6),
        T0,
        7200,
        true,
        5000,
        5000,
    );
    assert_eq!(kinds(&run(&mut d, &[long])), ["long_connection"]);
}

#[test]
fn outbound_volume_against_baseline_and_absolute() {
    let mut d = detector();
    let hour = 3600 * S;
    let mut events = Vec::new();
    for h in 0..4 {
        events.push(tcp(
            key("10.0.0.60", 48000 + h, "203.0.113.50", 443, 6),
            T0 + i64::from(h) * hour,
            10,
            true,
            50_000_000,
            1000,
        ));
    }
    assert!(run(&mut d, &events).is_empty(), "a steady 50 MB an hour");
    let spike = tcp(
        key("10.0.0.60", 48100, "203.0.113.51", 443, 6),
        T0 + 4 * hour,
        10,
        true,
        700_000_000,
        1000,
    );
    let a = run(&mut d, &[spike]);
    assert_eq!(kinds(&a), ["high_outbound_volume"]);
    assert_eq!(a[0].1["reason"], "baseline");
    let big = tcp(
        key("10.0.0.61", 48200, "203.0.113.52", 443, 6),
        T0,
        10,
        true,
        6_000_000_000,
        0,
    );
    assert_eq!(kinds(&run(&mut d, &[big])), ["high_outbound_volume"]);
    let internal = tcp(
        key("10.0.0.62", 48300, "10.0.0.200", 445, 6),
        T0,
        10,
        true,
        9_000_000_000,
        0,
    );
    assert!(
        run(&mut d, &[internal]).is_empty(),
        "backups inside the network"
    );
}

#[test]
fn new_devices_and_services_after_learning() {
    let mut c = BehaviourConfig::default();
    c.novelty.learning_secs = 3600;
    c.beacon.enabled = false; // a flow a minute is a perfect beacon
    let mut d = BehaviourDetector::new(c);
    let learned = tcp(
        key("10.0.0.70", 49000, "10.0.0.71", 80, 6),
        T0,
        1,
        true,
        100,
        100,
    );
    assert!(run(&mut d, &[learned]).is_empty());
    // Two hours of traffic, a flow every minute: the first hour is learning.
    let quiet: Vec<Event> = (1..120)
        .map(|m| {
            tcp(
                key("10.0.0.70", 50000 + m, "10.0.0.71", 80, 6),
                T0 + i64::from(m) * 60 * S,
                1,
                true,
                100,
                100,
            )
        })
        .collect();
    let q = run(&mut d, &quiet);
    assert!(q.is_empty(), "{q:?}");
    let later = T0 + 2 * 3600 * S;
    let old = tcp(
        key("10.0.0.70", 49001, "10.0.0.71", 80, 6),
        later,
        1,
        true,
        100,
        100,
    );
    assert!(run(&mut d, &[old]).is_empty());
    let a = run(
        &mut d,
        &[tcp(
            key("10.0.0.72", 49002, "10.0.0.71", 8443, 6),
            later,
            1,
            true,
            100,
            100,
        )],
    );
    let mut k = kinds(&a);
    k.sort();
    assert_eq!(k, ["new_device", "new_service"]);
    // A jump in packet time (the next capture file, years later) is not observed time.
    let mut d = BehaviourDetector::new(BehaviourConfig::default());
    let first = tcp(
        key("10.0.0.80", 1000, "10.0.0.81", 80, 6),
        T0,
        1,
        true,
        100,
        100,
    );
    let years = tcp(
        key("10.0.0.82", 1001, "10.0.0.83", 80, 6),
        T0 + 3 * 365 * 86_400 * S,
        1,
        true,
        100,
        100,
    );
    assert!(run(&mut d, &[first, years]).is_empty());
}

#[test]
fn a_spoofed_flood_costs_bounded_memory() {
    let mut d = BehaviourDetector::new(BehaviourConfig {
        max_tracked: 1000,
        ..BehaviourConfig::default()
    });
    let mut out = Vec::new();
    for i in 0..50_000u32 {
        let src = std::net::Ipv4Addr::from(0x0B00_0000 + i * 7919).to_string();
        let e = tcp(
            key(&src, 1024, "10.0.0.80", 80, 6),
            T0 + i64::from(i) * 1000,
            0,
            false,
            0,
            0,
        );
        d.inspect(&e, &mut out);
    }
    let s = d.stats();
    assert!(s.tracked <= 7 * 1000 + 1000, "tracked {}", s.tracked);
    assert!(s.evicted > 0);

    // A source that fails once is held in its random walk alone, not in the scan tables.
    let mut d = detector();
    for i in 0..1000u32 {
        let src = std::net::Ipv4Addr::from(0x0B00_0000 + i * 7919).to_string();
        let e = tcp(key(&src, 1024, "10.0.0.80", 80, 6), T0, 0, false, 0, 0);
        d.inspect(&e, &mut out);
    }
    assert_eq!(d.stats().tracked, 1000, "one walk per source");
}

#[test]
fn a_burst_of_regular_connections_is_not_a_beacon() {
    let mut d = detector();
    // A Kerberos client's exchanges with its KDC: regular, small, but all within a minute.
    let burst: Vec<Event> = (0..40)
        .map(|i| {
            tcp(
                key("10.0.0.53", 45000 + i, "10.0.0.2", 88, 6),
                T0 + i64::from(i) * 1_500_000,
                0,
                true,
                300,
                1200,
            )
        })
        .collect();
    assert!(run(&mut d, &burst).is_empty());
}
