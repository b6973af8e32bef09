use crate::*;
use crate::{learn, templates};
use netmonitor_common::event::ipproto;
use netmonitor_common::{
    DhcpRecord, DnsRecord, Event, EventHeader, EventKind, FlowKey, FlowRecord, Timestamp,
    TlsHandshake,
};

const T0: i64 = 1_767_225_600_000_000;
/// One second.
const S: i64 = 1_000_000;

fn ev(src: &str, sport: u16, dst: &str, dport: u16, ts: i64, kind: EventKind) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp(ts),
            flow_id: 1,
            key: FlowKey {
                src_ip: src.parse().unwrap(),
                src_port: sport,
                dst_ip: dst.parse().unwrap(),
                dst_port: dport,
                proto: ipproto::UDP,
            },
        },
        kind,
    }
}

fn book() -> DeviceBook {
    DeviceBook::new(
        vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ],
        OuiTable::built_in(),
    )
}

/// A TCP flow the far end answered (with data when `answered`).
fn flow(src: &str, dst: &str, dport: u16, ts: i64, answered: bool) -> Event {
    let mut e = ev(
        src,
        40000,
        dst,
        dport,
        ts,
        EventKind::Flow(FlowRecord {
            pkts_toserver: 3,
            bytes_toserver: 300,
            // The far end always said something (a refusal at least); it served when answered.
            pkts_toclient: 3,
            bytes_toclient: if answered { 900 } else { 120 },
            payload_toclient: u64::from(answered) * 700,
            app_proto: Some("ssh".into()),
            ..FlowRecord::default()
        }),
    );
    e.header.key.proto = ipproto::TCP;
    e
}

#[test]
fn an_address_first_seen_in_flows_joins_its_mac_when_a_lease_names_it() {
    let mut b = book();
    b.ingest(&[
        flow("10.0.0.5", "10.0.0.9", 22, T0, true),
        flow("10.0.0.5", "8.8.8.8", 443, T0 + 1, false),
    ]);
    assert_eq!(
        b.len(),
        2,
        "10.0.0.5 and the SSH server; 8.8.8.8 is not ours"
    );
    // A probe nobody answered (a spoofed SYN) makes no device.
    let mut probe = flow("10.0.0.66", "10.0.0.9", 80, T0, false);
    if let EventKind::Flow(f) = &mut probe.kind {
        f.pkts_toclient = 0;
    }
    b.ingest(&[probe]);
    assert_eq!(b.len(), 2);
    assert_eq!(
        b.by_ip("10.0.0.9".parse().unwrap())
            .unwrap()
            .services
            .iter()
            .next()
            .unwrap(),
        "tcp/22"
    );
    let first = b.take_changes();
    assert_eq!(first.upserts.len(), 2);
    // A DHCP request then the server's ACK tie 10.0.0.5 to a Xerox MAC.
    b.ingest(&[
        ev(
            "0.0.0.0",
            68,
            "255.255.255.255",
            67,
            T0 + 2,
            EventKind::Dhcp(DhcpRecord {
                kind: "request".into(),
                dhcp_type: "request".into(),
                client_mac: "00:00:00:aa:bb:cc".into(),
                requested_ip: Some("10.0.0.5".into()),
                hostname: Some("Printer-3F".into()),
                params: vec![1, 3, 6, 15, 44, 46, 47],
                vendor_class: Some("XEROX".into()),
                ..DhcpRecord::default()
            }),
        ),
        ev(
            "10.0.0.1",
            67,
            "10.0.0.5",
            68,
            T0 + 3,
            EventKind::Dhcp(DhcpRecord {
                kind: "reply".into(),
                dhcp_type: "ack".into(),
                client_mac: "00:00:00:AA:BB:CC".into(),
                assigned_ip: Some("10.0.0.5".into()),
                ..DhcpRecord::default()
            }),
        ),
    ]);
    assert_eq!(b.len(), 2, "folded, not duplicated");
    let d = b.by_ip("10.0.0.5".parse().unwrap()).unwrap();
    assert_eq!(d.id, "mac:00:00:00:aa:bb:cc");
    assert_eq!(d.vendor.as_deref(), Some("XEROX CORPORATION"));
    assert_eq!(
        d.hostnames.get("printer-3f").map(String::as_str),
        Some("dhcp")
    );
    assert_eq!(d.dhcp_fingerprint.as_deref(), Some("1,3,6,15,44,46,47"));
    assert_eq!(d.dhcp_vendor_class.as_deref(), Some("XEROX"));
    assert_eq!(
        (d.flows, d.bytes_out),
        (2, 600),
        "the address's history came along"
    );
    assert_eq!(d.first_seen_us, T0);
    let c = b.take_changes();
    assert_eq!(c.deletes, ["ip:10.0.0.5"]);
    assert_eq!(c.upserts.len(), 1);
    assert!(b.take_changes().upserts.is_empty(), "nothing new");
}

#[test]
fn names_from_dns_mdns_and_reverse_lookups_and_tls_clients() {
    let mut b = book();
    let answer = |rrname: &str, rrtype: &str, answer: &str, port: u16| {
        ev(
            "10.0.0.53",
            port,
            "10.0.0.7",
            port,
            T0,
            EventKind::Dns(DnsRecord {
                kind: "answer".into(),
                rrname: rrname.into(),
                rrtype: rrtype.into(),
                rcode: Some("NOERROR".into()),
                answers: vec![answer.into()],
                ..DnsRecord::default()
            }),
        )
    };
    b.ingest(&[
        answer("nas.corp.example.", "A", "10.0.0.20", 53),
        answer("NAS.local", "A", "10.0.0.20", 5353),
        answer("20.0.0.10.in-addr.arpa", "PTR", "nas-01.corp.example", 53),
        answer("www.example.com", "A", "93.184.216.34", 53),
        ev(
            "10.0.0.7",
            50000,
            "93.184.216.34",
            443,
            T0,
            EventKind::Tls(TlsHandshake {
                ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".into()),
                ..TlsHandshake::default()
            }),
        ),
    ]);
    let nas = b.by_ip("10.0.0.20".parse().unwrap()).unwrap();
    let names: Vec<(&str, &str)> = nas
        .hostnames
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("nas-01.corp.example", "ptr"),
            ("nas.corp.example", "dns"),
            ("nas.local", "mdns")
        ]
    );
    assert!(b.by_ip("93.184.216.34".parse().unwrap()).is_none());
    assert!(b
        .by_ip("10.0.0.7".parse().unwrap())
        .unwrap()
        .tls_fingerprints
        .contains("t13d1516h2_8daaf6152771_02713d6af862"));
    // Search: case-insensitive over names, addresses, vendor.
    let found = b.search(&DeviceQuery {
        q: Some("NAS-01".into()),
        limit: 10,
        ..DeviceQuery::default()
    });
    assert_eq!(found.len(), 1);
    b.take_changes();
    let saved = b.search(&DeviceQuery {
        q: Some("NAS-01".into()),
        limit: 10,
        ..DeviceQuery::default()
    });
    assert_eq!(
        saved.len(),
        1,
        "the same from the kept search text once saved"
    );
    assert!(b
        .search(&DeviceQuery {
            q: Some("nothing".into()),
            limit: 10,
            ..DeviceQuery::default()
        })
        .is_empty());
}

#[test]
fn saved_devices_come_back_whole() {
    let mut b = book();
    b.ingest(&[flow("192.168.1.4", "192.168.1.1", 53, T0, true)]);
    let saved: Vec<Device> = b.take_changes().upserts;
    let json = serde_json::to_string(&saved).unwrap();
    let mut again = book();
    again.restore(serde_json::from_str(&json).unwrap());
    assert_eq!(again.len(), 2);
    assert_eq!(
        again.by_ip("192.168.1.1".parse().unwrap()),
        b.by_ip("192.168.1.1".parse().unwrap())
    );
    assert!(
        again.take_changes().upserts.is_empty(),
        "restored, not changed"
    );
}

#[test]
fn classification_with_hints_and_hand_assignments_win() {
    let mut b = book();
    b.ingest(&[
        ev(
            "10.0.0.1",
            67,
            "10.0.0.5",
            68,
            T0,
            EventKind::Dhcp(DhcpRecord {
                kind: "reply".into(),
                dhcp_type: "ack".into(),
                client_mac: "00:00:00:aa:bb:cc".into(),
                assigned_ip: Some("10.0.0.5".into()),
                hostname: Some("prn-floor3".into()),
                ..DhcpRecord::default()
            }),
        ),
        flow("10.0.0.7", "10.0.0.5", 631, T0 + 1, true),
        flow("10.0.0.8", "10.0.0.9", 40000, T0 + 2, false),
    ]);
    b.take_changes();
    let p = b.by_ip("10.0.0.5".parse().unwrap()).unwrap();
    assert_eq!(p.template.as_deref(), Some("printer"));
    assert!(p.template_confidence >= 0.8, "{}", p.template_confidence);
    assert_eq!(
        p.template_hints.len(),
        3,
        "vendor, name, service: {:?}",
        p.template_hints
    );
    assert_eq!(b.criticality(p), "medium");
    let quiet = b.by_ip("10.0.0.9".parse().unwrap()).unwrap();
    assert_eq!(quiet.template, None, "nothing to go on: unclassified");

    // By hand: it stays, whatever the classifier thinks, until released.
    let id = b.resolve("10.0.0.5").unwrap().to_owned();
    assert_eq!(b.resolve("00-00-00-AA-BB-CC"), Some(id.as_str()));
    b.assign(&id, Some("nas")).unwrap();
    b.ingest(&[flow("10.0.0.7", "10.0.0.5", 9100, T0 + 3, true)]);
    b.take_changes();
    assert_eq!(b.get(&id).unwrap().template.as_deref(), Some("nas"));
    assert_eq!(b.criticality(b.get(&id).unwrap()), "high");
    assert!(b.assign(&id, Some("toaster")).is_err());
    b.assign(&id, None).unwrap();
    assert_eq!(b.get(&id).unwrap().template.as_deref(), Some("printer"));

    // A template made from the device fits it well (vendor and both services); built-in ones
    // stay as shipped.
    let mine = Template::from_device("floor-printer", "Floor printer", "iot", b.get(&id).unwrap());
    assert_eq!(mine.services, ["tcp/631", "tcp/9100"]);
    b.put_template(mine.clone()).unwrap();
    let fits = b.fits(&id).unwrap();
    let own = fits.iter().find(|f| f.template == "floor-printer").unwrap();
    assert!(own.confidence >= 0.7, "{own:?}");
    assert!(
        fits.iter()
            .find(|f| f.template == "voip_phone")
            .unwrap()
            .confidence
            < 0.4
    );
    let mut fake = mine;
    fake.id = "printer".into();
    assert!(b.put_template(fake).is_err());
    assert_eq!(templates::slug("  My Printer #2 "), "my-printer-2");
}

#[test]
fn a_learnt_device_that_steps_outside_its_baseline_is_reported_once() {
    let s = learn::LearnSettings {
        learning_us: 3_600 * 1_000_000,
        volume_factor: 10.0,
        volume_min_bytes: 1_000_000,
    };
    let mut b = book().with_learning(s, true);
    let hour = 3_600 * S;
    // Two hours of a camera streaming to its recorder and asking the resolver.
    for m in 0..120 {
        let t = T0 + m * 60 * S;
        b.ingest(&[
            flow("10.0.0.30", "10.0.0.40", 554, t, false),
            flow("10.0.0.30", "10.0.0.53", 53, t + S, false),
        ]);
    }
    assert!(
        b.take_alerts().is_empty(),
        "learning, then what it always does"
    );
    let cam = b.by_ip("10.0.0.30".parse().unwrap()).unwrap().clone();
    assert!(cam.baseline.learned_us.is_some());
    assert_eq!(
        cam.baseline.status(cam.last_seen_us, b.now_us(), &s),
        "learned"
    );
    assert_eq!(
        cam.baseline.client_ports.iter().collect::<Vec<_>>(),
        ["tcp/53", "tcp/554"]
    );
    // Now it opens SSH to an address it never talked to: two deviations, reported once.
    let t = T0 + 2 * hour + 10 * S;
    b.ingest(&[flow("10.0.0.30", "10.0.0.99", 22, t, false)]);
    b.ingest(&[flow("10.0.0.30", "10.0.0.99", 22, t + S, false)]);
    let alerts = b.take_alerts();
    let found: Vec<String> = alerts
        .iter()
        .map(|e| match &e.kind {
            EventKind::Alert(a) => {
                assert_eq!(a.threat_type, "device_behavior_deviation");
                format!("{} {}", a.evidence["deviation"], a.evidence["value"])
            }
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        found,
        [
            "\"new_client_port\" \"tcp/22\"",
            "\"new_peer\" \"10.0.0.99\""
        ]
    );
    // Ten times its hourly volume and more: one volume deviation.
    let mut big = flow("10.0.0.30", "10.0.0.40", 554, t + 2 * S, false);
    if let EventKind::Flow(f) = &mut big.kind {
        f.bytes_toserver = 5_000_000;
    }
    b.ingest(&[big.clone()]);
    b.ingest(&[big]);
    let alerts = b.take_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    // Not seen for a learning window: stale.
    assert_eq!(
        cam.baseline
            .status(cam.last_seen_us, cam.last_seen_us + 2 * hour, &s),
        "stale"
    );
}

#[test]
fn arp_ties_addresses_to_macs() {
    let mut b = book();
    b.ingest(&[flow("192.168.1.20", "192.168.1.1", 80, T0, true)]);
    // A request (the asker only), then the reply (both ends), then a probe from 0.0.0.0.
    let arp = |op, smac: &str, sip: &str, tmac: &str, tip: &str, ts| {
        ev(
            sip,
            0,
            tip,
            0,
            ts,
            EventKind::Arp(netmonitor_common::ArpRecord {
                op,
                sender_mac: smac.into(),
                target_mac: tmac.into(),
            }),
        )
    };
    b.ingest(&[
        arp(
            1,
            "00:00:00:00:00:20",
            "192.168.1.20",
            "00:00:00:00:00:00",
            "192.168.1.1",
            T0 + 1,
        ),
        arp(
            2,
            "00:00:00:00:00:01",
            "192.168.1.1",
            "00:00:00:00:00:20",
            "192.168.1.20",
            T0 + 2,
        ),
        arp(
            1,
            "00:00:00:00:00:99",
            "0.0.0.0",
            "00:00:00:00:00:00",
            "192.168.1.50",
            T0 + 3,
        ),
    ]);
    assert_eq!(
        b.len(),
        2,
        "two MAC-keyed devices, the address records folded in"
    );
    let host = b.by_ip("192.168.1.20".parse().unwrap()).unwrap();
    assert_eq!(host.id, "mac:00:00:00:00:00:20");
    assert_eq!(host.flows, 1, "its flow came along");
    assert_eq!(host.vendor.as_deref(), Some("XEROX CORPORATION"));
    assert!(
        b.by_ip("192.168.1.50".parse().unwrap()).is_none(),
        "a probe names nobody"
    );
}

#[test]
fn netbios_and_llmnr_names() {
    let mut b = book();
    b.ingest(&[
        ev(
            "192.168.1.23",
            137,
            "192.168.1.255",
            137,
            T0,
            EventKind::HostName(netmonitor_common::HostName {
                name: "desktop-7q2".into(),
                ip: "192.168.1.23".parse().unwrap(),
                source: "netbios".into(),
            }),
        ),
        ev(
            "192.168.1.30",
            5355,
            "192.168.1.23",
            50000,
            T0,
            EventKind::Dns(DnsRecord {
                kind: "answer".into(),
                rrname: "fileserver".into(),
                rrtype: "A".into(),
                rcode: Some("NOERROR".into()),
                answers: vec!["192.168.1.30".into()],
                ..DnsRecord::default()
            }),
        ),
    ]);
    let pc = b.by_ip("192.168.1.23".parse().unwrap()).unwrap();
    assert_eq!(
        pc.hostnames.get("desktop-7q2").map(String::as_str),
        Some("netbios")
    );
    let fs = b.by_ip("192.168.1.30".parse().unwrap()).unwrap();
    assert_eq!(
        fs.hostnames.get("fileserver").map(String::as_str),
        Some("llmnr")
    );
}

#[test]
fn lldp_and_cdp_neighbours_are_named_and_classified() {
    let mut b = book();
    let n = |proto: &str, mac: &str, name: &str, ip: &str, caps: &[&str]| {
        ev(
            ip,
            0,
            "0.0.0.0",
            0,
            T0,
            EventKind::Neighbor(netmonitor_common::Neighbor {
                protocol: proto.into(),
                mac: mac.into(),
                name: Some(name.into()),
                management_ip: Some(ip.parse().unwrap()),
                capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
                description: Some("switch firmware 9.1".into()),
                platform: None,
            }),
        )
    };
    b.ingest(&[
        n(
            "lldp",
            "00:1b:21:01:02:03",
            "core-sw1",
            "10.0.0.2",
            &["bridge", "router"],
        ),
        n(
            "cdp",
            "00:11:22:33:44:55",
            "SEP001122334455",
            "10.0.0.50",
            &["station", "telephone"],
        ),
    ]);
    b.take_changes();
    let sw = b.by_ip("10.0.0.2".parse().unwrap()).unwrap();
    assert_eq!(sw.id, "mac:00:1b:21:01:02:03");
    assert_eq!(
        sw.hostnames.get("core-sw1").map(String::as_str),
        Some("lldp")
    );
    assert_eq!(
        sw.template.as_deref(),
        Some("router_ap"),
        "{:?}",
        sw.template_hints
    );
    let phone = b.by_ip("10.0.0.50".parse().unwrap()).unwrap();
    assert_eq!(
        phone.template.as_deref(),
        Some("voip_phone"),
        "{:?}",
        phone.template_hints
    );
    assert_eq!(phone.platform.as_deref(), Some("switch firmware 9.1"));
}
