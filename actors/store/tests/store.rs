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
