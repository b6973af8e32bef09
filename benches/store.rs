//! Store throughput: flow-sized events per second written by the store writer (batched binary
//! COPY through diesel, daily partitions, and the hourly talker rollup it keeps) into a private
//! PostgreSQL, against `psql \copy ... FROM STDIN` of the same rows as CSV in the same run: into
//! the same partitioned table (which `\copy` fills without any rollup), and into a plain,
//! unpartitioned copy of it with the same indexes. Prints the rates and the ratios.
//!
//! Run: `cargo bench --bench store` (EVENTS=N to change the row count).

use netmonitor_common::{Event, EventHeader, EventKind, FlowKey, FlowRecord, Timestamp};
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

fn flow(i: u64) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp::from_secs_micros(1_700_000_000 + (i / 1000) as i64, (i % 1000) as i64),
            flow_id: i,
            key: FlowKey {
                src_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    0x0a00_0000 | (i as u32 & 0xffff),
                )),
                src_port: (1024 + i % 60000) as u16,
                dst_ip: "192.0.2.10".parse().unwrap(),
                dst_port: 443,
                proto: 6,
            },
        },
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

fn main() {
    let n: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let db = TestDatabase::start().expect("private PostgreSQL for the benchmark");
    let events: Vec<Event> = (0..n).map(flow).collect();

    // Reference: psql COPY of the same rows (CSV) into the same table.
    let mut csv = Vec::with_capacity(n as usize * 160);
    for e in &events {
        let EventKind::Flow(f) = &e.kind else {
            unreachable!()
        };
        let h = &e.header;
        let ts = |t: Timestamp| netmonitor_store::rows::ts(t).to_rfc3339();
        writeln!(
            csv,
            "ref,{},{},{},{},{},{},{},{},6,tls,{},{},{},{},closed,timeout,27,f",
            h.flow_id,
            ts(h.ts),
            ts(f.start),
            ts(f.end),
            h.key.src_ip,
            h.key.src_port,
            h.key.dst_ip,
            h.key.dst_port,
            f.pkts_toserver,
            f.pkts_toclient,
            f.bytes_toserver,
            f.bytes_toclient
        )
        .unwrap();
    }
    // Autovacuum waking up in the middle of one run and not the other would decide the ratio:
    // it is off for both tables.
    psql(
        &db,
        "SELECT netmonitor_ensure_day('2023-11-14'); \
         ALTER TABLE flows_p20231114 SET (autovacuum_enabled = false); \
         CREATE TABLE flows_plain (LIKE flows INCLUDING DEFAULTS INCLUDING INDEXES) \
           WITH (autovacuum_enabled = false)",
        &[],
    );
    let plain_secs = psql(&db, &copy_into("flows_plain"), &csv);
    let copy_secs = psql(&db, &copy_into("flows"), &csv);
    assert_eq!(db.count("flows").unwrap(), n as i64);
    // every run starts from empty indexes
    psql(&db, "TRUNCATE flows", &[]);

    // NetMonitor's store writer, batches as the pipeline sends them.
    let store = StoreHandle::spawn(
        db.conninfo(),
        StoreConfig {
            spool_dir: db.dir().join("spool"),
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    for chunk in events.chunks(1024) {
        store.send_events(chunk.iter().cloned()).unwrap();
    }
    store.flush().unwrap();
    let store_secs = started.elapsed().as_secs_f64();
    assert_eq!(db.count("flows").unwrap(), n as i64);
    assert_eq!(
        store
            .stats()
            .rows_spooled
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    let plain_rate = n as f64 / plain_secs;
    let copy_rate = n as f64 / copy_secs;
    let store_rate = n as f64 / store_secs;
    println!("store bench: {n} flow events");
    println!("  psql \\copy, plain table:  {plain_rate:>12.0} rows/s  ({plain_secs:.3} s)");
    println!("  psql \\copy, real table:   {copy_rate:>12.0} rows/s  ({copy_secs:.3} s)");
    println!("  netmonitor store:          {store_rate:>12.0} events/s ({store_secs:.3} s)");
    println!(
        "  ratio store/COPY (same table):  {:>6.2}",
        store_rate / copy_rate
    );
    println!(
        "  ratio store/COPY (plain table): {:>6.2}",
        store_rate / plain_rate
    );
}

/// The `\\copy` of the flow columns into `table`.
fn copy_into(table: &str) -> String {
    format!(
        "\\copy {table} (sensor, flow_id, ts, start_ts, end_ts, src_ip, src_port, dest_ip, dest_port, proto, app_proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state, reason, tcp_flags, alerted) FROM STDIN WITH (FORMAT csv)"
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
