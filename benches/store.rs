//! Store throughput: events per second written by the store writer (batched binary COPY
//! through diesel, daily partitions, and the rollups: the sums the writer keeps for flows and
//! TLS sessions, the statement triggers that keep the alert rollups, and the folding of their
//! hours into the daily rollups) into a private PostgreSQL, against
//! `psql \copy ... FROM STDIN` of the same rows as CSV in the same run into the same partitioned
//! table with no rollup (its triggers disabled). Flows are also copied into a plain, unpartitioned
//! copy of their table with the same indexes. Prints the rates and the ratios, per table and round.
//!
//! Run: `cargo bench --bench store` (EVENTS=N to change the flow count, a tenth as many TLS
//! sessions and alerts are written; CLIENTS=N for one number of client addresses, else 2,000
//! and then 65,536; ROUNDS=N for the rounds of each comparison, 3 unless set, whose median
//! ratio is reported).

use netmonitor_common::{
    Alert, Event, EventHeader, EventKind, Fingerprint, FlowKey, FlowRecord, Timestamp, TlsHandshake,
};
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The numbers of client addresses the events come from, one bench each: `CLIENTS`, or 2,000
/// (a network's hosts, whose alerts and sessions repeat their rollup keys) and then 65,536
/// (nearly every TLS session and alert brings a rollup key of its own: the rollups' worst case).
fn client_counts() -> Vec<u64> {
    match std::env::var("CLIENTS").ok().and_then(|v| v.parse().ok()) {
        Some(n) if (1..=1 << 24).contains(&n) => vec![n],
        _ => vec![2_000, 65_536],
    }
}

/// The header of the `i`th event: a thousand a second, from one of `clients` addresses.
fn header(i: u64, clients: u64) -> EventHeader {
    EventHeader {
        ts: Timestamp::from_secs_micros(1_700_000_000 + (i / 1000) as i64, (i % 1000) as i64),
        flow_id: i,
        key: FlowKey {
            src_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                0x0a00_0000 | (i % clients) as u32,
            )),
            src_port: (1024 + i % 60000) as u16,
            dst_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0200 | (i as u32 % 250))),
            dst_port: 443,
            proto: 6,
        },
    }
}

fn flow(i: u64, clients: u64) -> Event {
    Event {
        header: header(i, clients),
        kind: EventKind::Flow(FlowRecord {
            pkts_toserver: 12,
            pkts_toclient: 10,
            bytes_toserver: 1500,
            bytes_toclient: 9000,
            start: Timestamp::from_secs_micros(1_700_000_000, 0),
            end: Timestamp::from_secs_micros(1_700_000_003, 0),
            state: "closed".into(),
            reason: "timeout".into(),
            app_proto: Some("tls".into()),
            tcp_flags: 0x1b,
            alerted: false,
            ..FlowRecord::default()
        }),
    }
}

/// A handshake to one of 2,000 names with one of 200 client fingerprints.
fn tls(i: u64, clients: u64) -> Event {
    Event {
        header: header(i * 10, clients),
        kind: EventKind::Tls(TlsHandshake {
            sni: Some(format!("site{}.example", i % 2000)),
            version: Some("TLS 1.3".into()),
            ja3: Some(Fingerprint {
                hash: format!("{:032x}", i % 200),
                string: format!("771,4865-4866,{}", i % 200),
            }),
            ja3s: Some(Fingerprint {
                hash: format!("{:032x}", 1_000 + i % 20),
                string: format!("771,4865,{}", i % 20),
            }),
            ja4: Some(format!("t13d1516h2_{:012x}_{:012x}", i % 50, i % 200)),
            alpn_offered: vec!["h2".into(), "http/1.1".into()],
            cipher_selected: Some(4865),
            ..TlsHandshake::default()
        }),
    }
}

/// One of 40 recurring detections between the event's endpoints.
fn alert(i: u64, clients: u64) -> Event {
    Event {
        header: header(i * 10, clients),
        kind: EventKind::Alert(Alert {
            signature_id: 9_500_000 + (i % 40) as u32,
            signature: format!("bench signature {}", i % 40),
            category: "Misc activity".into(),
            severity: 1 + (i % 4) as u8,
            threat_type: ["port_scan", "brute_force", "beaconing", "dns_tunnel"][i as usize % 4]
                .into(),
            mitre: vec!["T1046".into()],
            evidence: serde_json::json!({ "count": i % 100 }),
        }),
    }
}

/// The same rows as CSV, in the column order of [`columns`].
fn csv(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * 200);
    let ts = |t: Timestamp| netmonitor_store::rows::ts(t).to_rfc3339();
    for e in events {
        let h = &e.header;
        let (src, sport, dst, dport) = (h.key.src_ip, h.key.src_port, h.key.dst_ip, h.key.dst_port);
        let id = h.flow_id;
        let at = ts(h.ts);
        match &e.kind {
            EventKind::Flow(f) => writeln!(
                out,
                "ref,{id},{at},{},{},{src},{sport},{dst},{dport},6,tls,{},{},{},{},closed,timeout,27,f",
                ts(f.start),
                ts(f.end),
                f.pkts_toserver,
                f.pkts_toclient,
                f.bytes_toserver,
                f.bytes_toclient
            ),
            EventKind::Tls(t) => {
                let (ja3, ja3s) = (t.ja3.as_ref().unwrap(), t.ja3s.as_ref().unwrap());
                writeln!(
                    out,
                    "ref,{id},{at},{src},{sport},{dst},{dport},tcp,{},{},{},\"{}\",{},\"{}\",{},\"{{{}}}\",{},",
                    t.sni.as_deref().unwrap(),
                    t.version.as_deref().unwrap(),
                    ja3.hash,
                    ja3.string,
                    ja3s.hash,
                    ja3s.string,
                    t.ja4.as_deref().unwrap(),
                    t.alpn_offered.join(","),
                    t.cipher_selected.unwrap()
                )
            }
            EventKind::Alert(a) => writeln!(
                out,
                "ref,{id},{at},{src},{sport},{dst},{dport},6,{},{},{},{},{},\"{{{}}}\",\"{}\"",
                a.signature_id,
                a.signature,
                a.category,
                a.severity,
                a.threat_type,
                a.mitre.join(","),
                a.evidence.to_string().replace('"', "\"\"")
            ),
            _ => unreachable!("only flows, TLS sessions and alerts are benchmarked"),
        }
        .unwrap();
    }
    out
}

/// The columns the CSV of [`csv`] fills.
fn columns(table: &str) -> &'static str {
    match table {
        "flows" => "sensor, flow_id, ts, start_ts, end_ts, src_ip, src_port, dest_ip, dest_port, proto, app_proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state, reason, tcp_flags, alerted",
        "tls_sessions" => "sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, transport, sni, version, ja3, ja3_string, ja3s, ja3s_string, ja4, alpn, cipher_selected, cert_fingerprint",
        "alerts" => "sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, proto, signature_id, signature, category, severity, threat_type, mitre, evidence",
        _ => unreachable!(),
    }
}

/// Rows per second through the store writer, batches as the pipeline sends them. The writer is
/// started and connected first: the rate is the sustained one, not the start of a process.
fn through_store(db: &TestDatabase, table: &str, events: &[Event]) -> f64 {
    let store = StoreHandle::spawn(
        db.conninfo(),
        StoreConfig {
            spool_dir: db.dir().join("spool"),
            ..StoreConfig::default()
        },
    )
    .unwrap();
    store.flush().unwrap();
    let started = Instant::now();
    for chunk in events.chunks(1024) {
        store.send_events(chunk.iter().cloned()).unwrap();
    }
    store.flush().unwrap();
    // folding these hours into the daily rollups is part of the cost of writing them: the
    // writer folds them a few hours at a time from its flush on; whatever it has not yet is
    // folded here
    psql(
        db,
        "SELECT netmonitor_fold(r, now()) FROM unnest(ARRAY['alert', 'tls', 'talker']) r",
        &[],
    );
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(db.count(table).unwrap(), events.len() as i64);
    let spooled = store
        .stats()
        .rows_spooled
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(spooled, 0);
    events.len() as f64 / secs
}

/// Empties the benchmarked tables and every rollup, so that each round starts alike.
const RESET: &str = "TRUNCATE flows, tls_sessions, alerts, flows_plain, talker_rollup, \
     talker_rollup_daily, tls_rollup, tls_rollup_daily, tls_distinct, tls_distinct_daily, \
     alert_rollup, alert_rollup_daily, alert_counts, alert_counts_daily, alert_techniques, \
     alert_techniques_daily, rollup_hours, rollup_watermarks";

/// The median of `v`.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes `events` both ways into `table`, `rounds` times in turn from empty tables, and
/// prints the rates and the median of the ratios.
fn compare(db: &TestDatabase, table: &str, events: &[Event], rounds: usize) {
    let n = events.len();
    let rows = csv(events);
    let mut ratios = Vec::with_capacity(rounds);
    println!("  {table}: {n} rows, {rounds} rounds");
    for _ in 0..rounds {
        psql(db, RESET, &[]);
        // the reference keeps no rollup: the table's triggers (the alert rollups) are off
        psql(
            db,
            &format!("ALTER TABLE {table} DISABLE TRIGGER USER"),
            &[],
        );
        let copy_rate = n as f64 / psql(db, &copy_into(table, table), &rows);
        assert_eq!(db.count(table).unwrap(), n as i64);
        psql(db, RESET, &[]);
        psql(db, &format!("ALTER TABLE {table} ENABLE TRIGGER USER"), &[]);
        let store_rate = through_store(db, table, events);
        println!(
            "    psql \\copy, no rollup {copy_rate:>10.0} rows/s; netmonitor store, rollups on \
             {store_rate:>10.0} rows/s; ratio {:.2}",
            store_rate / copy_rate
        );
        ratios.push(store_rate / copy_rate);
    }
    println!("    median ratio store/COPY: {:.2}", median(ratios));
}

fn main() {
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3);
    let db = TestDatabase::start().expect("private PostgreSQL for the benchmark");
    // Autovacuum waking up in the middle of one run and not the other would decide a ratio:
    // it is off for every table written.
    psql(
        &db,
        "SELECT netmonitor_ensure_day('2023-11-14'); \
         ALTER TABLE flows_p20231114 SET (autovacuum_enabled = false); \
         ALTER TABLE tls_sessions_p20231114 SET (autovacuum_enabled = false); \
         ALTER TABLE alerts_p20231114 SET (autovacuum_enabled = false); \
         CREATE TABLE flows_plain (LIKE flows INCLUDING DEFAULTS INCLUDING INDEXES) \
           WITH (autovacuum_enabled = false)",
        &[],
    );
    for clients in client_counts() {
        println!("store bench: {clients} client addresses");
        let flows: Vec<Event> = (0..n).map(|i| flow(i, clients)).collect();
        psql(&db, RESET, &[]);
        let plain_rate = n as f64 / psql(&db, &copy_into("flows_plain", "flows"), &csv(&flows));
        println!("  flows_plain (unpartitioned): psql \\copy {plain_rate:>12.0} rows/s");
        compare(&db, "flows", &flows, rounds);
        let sessions: Vec<Event> = (0..n / 10).map(|i| tls(i, clients)).collect();
        compare(&db, "tls_sessions", &sessions, rounds);
        let alerts: Vec<Event> = (0..n / 10).map(|i| alert(i, clients)).collect();
        compare(&db, "alerts", &alerts, rounds);
    }
}

/// The `\copy` of `like`'s benchmarked columns into `table`.
fn copy_into(table: &str, like: &str) -> String {
    format!(
        "\\copy {table} ({}) FROM STDIN WITH (FORMAT csv)",
        columns(like)
    )
}

/// Runs `command` in psql with `stdin`; returns the seconds it took.
fn psql(db: &TestDatabase, command: &str, stdin: &[u8]) -> f64 {
    let started = Instant::now();
    let mut psql = Command::new("psql")
        .arg(db.conninfo())
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql (PostgreSQL client) on PATH");
    psql.stdin.take().unwrap().write_all(stdin).unwrap();
    assert!(psql.wait().unwrap().success(), "psql failed: {command}");
    started.elapsed().as_secs_f64()
}
