//! The store against a real PostgreSQL: COPY batches land, and an outage in the middle of a
//! run loses nothing.

use netmonitor_common::{Event, EventHeader, EventKind, FlowKey, FlowRecord, Timestamp};
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};

fn flow_event(i: u64) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp::from_secs_micros(1_700_000_000 + i as i64, 0),
            flow_id: i,
            key: FlowKey {
                src_ip: "10.1.2.3".parse().unwrap(),
                src_port: (i % 60000) as u16,
                dst_ip: "10.9.9.9".parse().unwrap(),
                dst_port: 443,
                proto: 6,
            },
        },
        kind: EventKind::Flow(FlowRecord {
            pkts_toserver: 3,
            pkts_toclient: 2,
            bytes_toserver: 300,
            bytes_toclient: 2000,
            start: Timestamp(0),
            end: Timestamp(1),
            state: "closed".into(),
            reason: "timeout".into(),
            app_proto: Some("tls".into()),
            tcp_flags: 0x1b,
            alerted: false,
        }),
    }
}

fn config(t: &TestDatabase) -> StoreConfig {
    StoreConfig {
        spool_dir: t.dir().join("spool"),
        batch_size: 500,
        flush_interval_ms: 20,
        retry_interval_ms: 100,
        ..StoreConfig::default()
    }
}

#[test]
fn batches_are_written_with_copy() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    store.send_events((0..2345).map(flow_event)).unwrap();
    store.flush().unwrap();
    assert_eq!(t.count("flows").unwrap(), 2345);
    assert_eq!(
        store
            .stats()
            .rows_spooled
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn database_outage_loses_nothing() {
    let mut t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let stats = store.stats();
    store.send_events((0..1000).map(flow_event)).unwrap();
    store.flush().unwrap();

    t.db.cluster_mut().unwrap().force_stop().unwrap();
    store.send_events((1000..3000).map(flow_event)).unwrap();
    store.flush().unwrap();
    assert!(
        stats
            .rows_spooled
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2000
    );
    assert!(
        stats
            .spool_batches
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    t.db.cluster_mut().unwrap().restart().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    store.send_events((3000..3500).map(flow_event)).unwrap();
    store.flush().unwrap();
    assert_eq!(
        stats
            .spool_batches
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(t.count("flows").unwrap(), 3500);
    // Every flow id exactly once, in spite of the outage.
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(&t.conninfo()).unwrap();
    let n: N = diesel::sql_query("SELECT count(DISTINCT flow_id) AS n FROM flows")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(n.n, 3500);
}

/// Audit rows are encoded by hand in the binary COPY format: every column must read back as
/// written, NULLs, non-ASCII text and timestamps on both sides of PostgreSQL's 2000 epoch
/// included.
#[test]
fn audit_rows_read_back_exactly_as_written() {
    use chrono::{DateTime, Utc};
    use diesel::prelude::*;
    use netmonitor_store::{AuditRecord, StoreItem};

    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let ts = |us: i64| DateTime::<Utc>::from_timestamp_micros(us).unwrap();
    let rows: Vec<AuditRecord> = (0..1200)
        .map(|i: i64| AuditRecord {
            ts: ts(if i % 2 == 0 {
                1_795_000_000_123_456 + i
            } else {
                631_152_000_000_001 - i
            }),
            token_id: (i % 3 != 0).then_some(i * 1_000_000_007),
            token_name: (i % 5 != 0).then(|| format!("analyst-é-{i}")),
            method: if i % 2 == 0 {
                "tools/call".into()
            } else {
                "GET /mcp".into()
            },
            tool: (i % 2 == 0).then(|| "get_sensor_status".into()),
            status: ["ok", "error", "denied", "rate_limited", "unauthorized"][i as usize % 5]
                .into(),
            http_status: [200, 400, 403, 429, 401][i as usize % 5],
            duration_us: i64::MAX - i,
            client_addr: (i % 7 != 0).then(|| format!("[::1]:{}", 40000 + i)),
            user_agent: (i % 4 != 0).then(|| "python-httpx/0.27 ✓".into()),
            session_id: (i % 6 != 0).then(|| format!("{i:032x}")),
            error: (i % 5 != 0).then(|| format!("bad \"field\"\n\t{i}")),
        })
        .collect();
    store
        .send(rows.iter().cloned().map(StoreItem::Audit).collect())
        .unwrap();
    store.flush().unwrap();

    use netmonitor_store::schema::api_token_usage;
    let mut conn = PgConnection::establish(&t.conninfo()).unwrap();
    let back: Vec<AuditRecord> = api_token_usage::table
        .select(AuditRecord::as_select())
        .order(api_token_usage::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(back, rows);
}
