//! Risk and attack chains from packets: a synthesized capture in which host A scans a server,
//! then Kerberoasts the KDC, then beacons to an outside host, replayed through
//! `netmonitor run --pcap` and asked over MCP: A's risk rises in steps with every alert
//! explained, a three-stage chain appears in kill-chain order, a host marked critical ranks
//! above an equal one, and after a restart fed one packet a half-life later the chain is
//! still there and A's base score has halved.

use crate::util::*;
use netmonitor_capture::synth::build::eth_ipv4_tcp;
use netmonitor_capture::synth::Synth;
use netmonitor_common::Timestamp;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const START_SECS: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const A: [u8; 4] = [10, 1, 0, 9];
const B: [u8; 4] = [10, 1, 0, 31];
const C: [u8; 4] = [10, 1, 0, 32];
const KDC: [u8; 4] = [10, 1, 0, 5];
const C2: [u8; 4] = [203, 0, 113, 10];
const SYN: u8 = 0x02;
const RST_ACK: u8 = 0x14;

type Pcap = Synth<std::fs::File>;

fn pcap(path: &Path, start_us: i64, write: impl FnOnce(&mut Pcap)) {
    let f = std::fs::File::create(path).unwrap();
    let mut s = Synth::new(f, 7, Timestamp(start_us)).unwrap();
    write(&mut s);
    s.finish().unwrap();
}

/// `scanner` probes 300 closed ports of `target` (every SYN answered by a reset).
fn closed_port_scan(s: &mut Pcap, scanner: [u8; 4], target: [u8; 4]) {
    for p in 1..=300u16 {
        s.frame(&eth_ipv4_tcp(
            scanner,
            target,
            45_000,
            p,
            1000 + u32::from(p),
            0,
            SYN,
            b"",
        ))
        .unwrap();
        s.frame(&eth_ipv4_tcp(
            target,
            scanner,
            p,
            45_000,
            0,
            1001 + u32::from(p),
            RST_ACK,
            b"",
        ))
        .unwrap();
        s.advance(2_000);
    }
}

/// One HTTP poll of the C2 on a fresh connection.
fn poll(s: &mut Pcap, cport: u16) {
    let mut c = s.tcp_open(A, C2, cport, 80).unwrap();
    s.tcp_send(
        &mut c,
        true,
        b"GET /tasks HTTP/1.1\r\nHost: c2.example\r\n\r\n",
    )
    .unwrap();
    s.tcp_send(
        &mut c,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnone",
    )
    .unwrap();
    s.tcp_close(&mut c).unwrap();
}

fn attack(path: &Path) {
    pcap(path, START_SECS * 1_000_000, |s| {
        closed_port_scan(s, A, [10, 1, 0, 20]);
        s.advance(1_000_000);
        closed_port_scan(s, B, [10, 1, 0, 21]);
        s.advance(1_000_000);
        closed_port_scan(s, C, [10, 1, 0, 22]);
        s.advance(600_000_000);
        s.kerberos_exchange(
            A,
            KDC,
            "CORP.EXAMPLE",
            "alice",
            &["MSSQLSvc", "db01.corp.example"],
            23,
        )
        .unwrap();
        s.advance(600_000_000);
        let end = s.now().0 + 2 * 3_600_000_000;
        let mut port = 30_000u16;
        while s.now().0 < end {
            port += 1;
            poll(s, port);
            let jitter = s.rng().range(0, 6_000_000) as i64 - 3_000_000;
            s.advance(60_000_000 + jitter);
        }
    });
}

/// Microseconds of an EVE timestamp (`2026-01-01T00:00:00.000000+0000`).
fn micros(eve: &str) -> i64 {
    chrono::DateTime::parse_from_str(eve, "%Y-%m-%dT%H:%M:%S%.f%z")
        .unwrap_or_else(|e| panic!("{eve}: {e}"))
        .timestamp_micros()
}

fn structured(r: Value) -> Value {
    assert!(r["isError"] != json!(true), "{r}");
    r["structuredContent"].clone()
}

#[test]
fn scan_kerberoast_beacon_raise_risk_in_steps_and_form_a_lasting_chain() {
    let dir = data_dir();
    let first = dir.path().join("attack.pcap");
    attack(&first);
    let config = dir.path().join("risk.toml");
    std::fs::write(&config, "[risk]\nsave_interval_secs = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let (child, port) = start_service_with(
        dir.path(),
        &[],
        &["--config", config, "--pcap", first.to_str().unwrap()],
    );
    let token = create_polling_token(dir.path(), "risk", "read_only");
    let writer = create_polling_token(dir.path(), "risk-rw", "read_write");
    let s = McpSession::open(port, &token);
    let w = McpSession::open(port, &writer);
    let a = "10.1.0.9";

    let mut chains = Value::Null;
    wait_for("a three-stage chain", Duration::from_secs(60), || {
        chains = structured(s.call("get_attack_chains", json!({"min_stages": 3, "hours": 48})));
        chains["total"] == 1
    });
    let chain = &chains["chains"][0];
    let stages: Vec<&str> = chain["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["reconnaissance", "credential_access", "command_and_control"],
        "{chain}"
    );
    assert_eq!(chain["sources"], json!([a]));
    assert_eq!(chain["in_kill_chain_order"], true);
    let times: Vec<&str> = chain["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|t| t[0] <= t[1]),
        "evidence in order: {times:?}"
    );
    let chain_id = chain["id"].clone();
    let only_a = structured(s.call(
        "get_attack_chains",
        json!({"source_ip": "10.1.0.31", "min_stages": 1}),
    ));
    assert_eq!(
        only_a["chains"][0]["stage_count"], 1,
        "B only scanned: {only_a}"
    );

    // A's risk, explained: every kind it did contributes, the shares add up, the modifiers show.
    let risk = structured(s.call("get_asset_risk", json!({"ip": a})));
    let kinds = risk["contributions"].to_string();
    for k in ["port_scan", "kerberoasting", "beaconing"] {
        assert!(kinds.contains(k), "{k} in {kinds}");
    }
    let shares: f64 = risk["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 0.01, "shares {shares}");
    assert_eq!(risk["modifiers"]["chain_stages"], 3, "{risk}");
    assert_eq!(risk["modifiers"]["talks_to_internet"], true);
    let level = risk["level"].as_str().unwrap();
    assert!(level == "medium" || level == "high", "{risk}");

    // It rose in steps: the history snapshots show the scan, then Kerberoasting, then the beacon.
    let mut trend = Value::Null;
    wait_for("risk history saved", Duration::from_secs(30), || {
        trend = structured(s.call(
            "get_risk_trends",
            json!({"ip": a, "hours": 4, "bucket_minutes": 5}),
        ));
        trend["buckets"].as_array().is_some_and(|b| b.len() >= 20)
    });
    let scores: Vec<f64> = trend["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["max_score"].as_f64().unwrap())
        .collect();
    let steps = scores.windows(2).filter(|w| w[1] > w[0] + 5.0).count();
    assert!(steps >= 2, "two steps up after the first alert: {scores:?}");
    assert!(
        scores[0] < 20.0 && *scores.last().unwrap() >= 40.0,
        "{scores:?}"
    );

    // A level crossed is an alert of its own, and so is each stage the chain gained.
    let mut events = String::new();
    wait_for(
        "risk and chain alerts stored",
        Duration::from_secs(30),
        || {
            events = s.call("list_events", json!({"type": "alert", "limit": 500}))
                ["structuredContent"]
                .to_string();
            events.contains("risk_threshold") && events.contains("attack_chain")
        },
    );

    // The ATT&CK summary comes from the live counters, by technique and tactic.
    let mitre = structured(s.call("get_mitre_mapping", json!({"since": "2026-01-01"})));
    assert_eq!(mitre["source"], "live_counters");
    let t1046 = mitre["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["technique"] == "T1046")
        .cloned()
        .unwrap_or_else(|| panic!("T1046 in {mitre}"));
    assert_eq!(t1046["name"], "Network Service Discovery");
    assert_eq!(t1046["sources"], 3, "{t1046}");
    assert!(
        mitre["tactics"].to_string().contains("Credential Access"),
        "{mitre}"
    );

    // B and C did the same; C a second later. Marked critical, B ranks above C.
    let top = |s: &McpSession| {
        structured(s.call(
            "get_top_risk_assets",
            json!({"limit": 100, "kind": "internal"}),
        ))
    };
    let rank = |t: &Value, ip: &str| {
        t["assets"]
            .as_array()
            .unwrap()
            .iter()
            .position(|x| x["ip"] == ip)
            .unwrap()
    };
    let before = top(&s);
    assert!(
        rank(&before, "10.1.0.31") > rank(&before, "10.1.0.32"),
        "{before}"
    );
    let refused = s.call(
        "set_asset_criticality",
        json!({"ip": "10.1.0.31", "criticality": "critical"}),
    );
    assert_eq!(refused["isError"], true, "read_only may not: {refused}");
    structured(w.call(
        "set_asset_criticality",
        json!({"ip": "10.1.0.31", "criticality": "critical"}),
    ));
    let after = top(&s);
    assert!(
        rank(&after, "10.1.0.31") < rank(&after, "10.1.0.32"),
        "{after}"
    );
    // The device inventory's criticality flows in too, and a device has the risk of its address.
    structured(w.call(
        "assign_device_template",
        json!({"ip": "10.1.0.32", "criticality": "low"}),
    ));
    wait_for(
        "the device's criticality in the risk",
        Duration::from_secs(30),
        || {
            let c = structured(s.call("get_asset_risk", json!({"ip": "10.1.0.32"})));
            c["modifiers"]["criticality"] == "low"
                && c["modifiers"]["criticality_source"] == "device"
        },
    );
    let by_device = structured(s.call("get_asset_risk", json!({"device_id": "ip:10.1.0.9"})));
    assert_eq!(by_device["ip"], a, "{by_device}");
    assert_eq!(by_device["addresses"].as_array().map(Vec::len), Some(1));
    let crit = structured(s.call("get_top_risk_assets", json!({"level": "medium"})));
    assert!(crit["assets"].to_string().contains(a), "{crit}");

    // Restart on one packet a half-life (24 h) past the newest packet time.
    let as_of = risk["as_of"].as_str().unwrap().to_owned();
    let base = risk["base_score"].as_f64().unwrap();
    let then = micros(&as_of);
    let mut child = child;
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    wait_for("netmonitor to exit", Duration::from_secs(30), || {
        child.0.try_wait().unwrap().is_some()
    });
    drop(child);
    let later = dir.path().join("later.pcap");
    pcap(&later, then + 24 * 3_600_000_000, |s| {
        s.dns_lookup([10, 1, 0, 77], KDC, "intranet.corp.example")
            .unwrap();
    });
    let (_child, port) = start_service_with(
        dir.path(),
        &[],
        &["--config", config, "--pcap", later.to_str().unwrap()],
    );
    let s = McpSession::open(port, &token);
    let mut again = Value::Null;
    wait_for("the clock a half-life on", Duration::from_secs(60), || {
        let r = s.call("get_asset_risk", json!({"ip": a}));
        again = r["structuredContent"].clone();
        again["as_of"]
            .as_str()
            .is_some_and(|t| micros(t) > then + 3_600_000_000)
    });
    let moved = micros(again["as_of"].as_str().unwrap()) - then;
    let want = base * 0.5f64.powf(moved as f64 / (24.0 * 3_600_000_000.0));
    let got = again["base_score"].as_f64().unwrap();
    assert!(
        (got - want).abs() < 0.01,
        "base {base} -> {got}, want {want} after {moved} µs"
    );
    assert!((moved - 24 * 3_600_000_000).abs() < 1_000_000, "{moved}");
    let kept = structured(s.call("get_attack_chains", json!({"min_stages": 3, "hours": 48})));
    assert_eq!(
        kept["chains"][0]["id"], chain_id,
        "the chain survived: {kept}"
    );
    assert_eq!(kept["chains"][0]["open"], false, "a day later it is closed");
    let b = structured(s.call("get_asset_risk", json!({"ip": "10.1.0.31"})));
    assert_eq!(b["modifiers"]["criticality"], "critical", "kept: {b}");
}
