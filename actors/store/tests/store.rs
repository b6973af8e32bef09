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
            ..FlowRecord::default()
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
            arguments: (i % 3 == 0).then(|| format!("{{\"n\": {i}}}")),
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

fn count_where(t: &TestDatabase, sql: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(&t.conninfo()).unwrap();
    let n: N = diesel::sql_query(sql).get_result(&mut conn).unwrap();
    n.n
}

fn load(stat: &std::sync::atomic::AtomicU64) -> u64 {
    stat.load(std::sync::atomic::Ordering::Relaxed)
}

/// Every text a packet or a caller can put in a row, with a NUL byte and with the U+FFFD that
/// lossy decoding leaves for invalid UTF-8: PostgreSQL refuses NUL in text and `\u0000` in
/// jsonb, and before the store cleaned text one such row stopped every write for good.
#[test]
fn nul_bytes_in_every_text_column_are_written_not_spooled() {
    use netmonitor_common::krb::{KrbMessage, KrbMsgType};
    use netmonitor_common::{Alert, Certificate, DhcpRecord, DnsRecord, Fingerprint, TlsHandshake};
    use netmonitor_store::{AuditRecord, StoreItem};
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let bad = |s: &str| format!("{s}\0x\u{FFFD}{}", String::from_utf8_lossy(b"\xff\xfe"));
    let header = flow_event(1).header;
    let ev = |kind| {
        StoreItem::Event(Event {
            header: header.clone(),
            kind,
        })
    };
    let mut flow = match flow_event(1).kind {
        EventKind::Flow(f) => f,
        _ => unreachable!(),
    };
    flow.state = bad("closed");
    flow.reason = bad("timeout");
    flow.app_proto = Some(bad("tls"));
    let mut krb = KrbMessage::new(KrbMsgType::AsReq);
    krb.cname = Some(bad("alice"));
    krb.realm = Some(bad("EXAMPLE.COM"));
    krb.sname = Some(bad("krbtgt"));
    krb.e_text = Some(bad("e-text"));
    let items = vec![
        ev(EventKind::Flow(flow)),
        ev(EventKind::Tls(TlsHandshake {
            sni: Some(bad("evil.example")),
            version: Some(bad("TLS 1.2")),
            ja3: Some(Fingerprint {
                hash: bad("h"),
                string: bad("s"),
            }),
            ja4: Some(bad("t13d")),
            alpn_offered: vec![bad("h2")],
            certificates: vec![Certificate {
                subject: bad("CN=a"),
                issuer: bad("CN=b"),
                serial: bad("01"),
                fingerprint: bad("aa:bb"),
                sans: vec![bad("a.example")],
                key_type: Some(bad("RSA")),
                ..Certificate::default()
            }],
            ..TlsHandshake::default()
        })),
        ev(EventKind::Krb5(krb)),
        ev(EventKind::Dhcp(DhcpRecord {
            kind: "request".into(),
            dhcp_type: bad("request"),
            client_mac: bad("00:11"),
            hostname: Some(bad("printer")),
            vendor_class: Some(bad("MSFT 5.0")),
            ..DhcpRecord::default()
        })),
        ev(EventKind::Dns(DnsRecord {
            kind: "query".into(),
            rrname: bad("a.example"),
            rrtype: "A".into(),
            answers: vec![bad("1.2.3.4")],
            ..DnsRecord::default()
        })),
        ev(EventKind::Alert(Alert {
            signature_id: 1,
            signature: bad("sig"),
            category: bad("cat"),
            severity: 2,
            threat_type: bad("tt"),
            mitre: vec![bad("T1")],
            evidence: serde_json::json!({ bad("key"): bad("value"), "list": [bad("x")] }),
        })),
        StoreItem::Audit(AuditRecord {
            ts: chrono::Utc::now(),
            token_id: None,
            token_name: Some(bad("name")),
            method: "\0".into(),
            tool: Some(bad("tool")),
            status: bad("error"),
            http_status: 400,
            duration_us: 1,
            client_addr: Some(bad("addr")),
            user_agent: Some(bad("ua")),
            session_id: Some(bad("sid")),
            error: Some(bad("err")),
            arguments: Some(bad("{\"q\": 1}")),
        }),
    ];
    store.send(items).unwrap();
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(load(&stats.rows_spooled), 0);
    assert_eq!(load(&stats.rows_rejected), 0);
    assert_eq!(load(&stats.rows_written), 7);
    for (table, column) in [
        ("flows", "app_proto"),
        ("tls_sessions", "sni"),
        ("certificates", "subject"),
        ("kerberos_events", "cname"),
        ("alerts", "evidence::text"),
        ("app_events", "eve->>'dhcp'"),
        ("app_events", "eve->'dns'->>'rrname'"),
        ("api_token_usage", "error"),
    ] {
        let sql = format!(
            "SELECT count(*) AS n FROM {table} WHERE {column} LIKE '%' || U&'\\FFFD' || 'x%'"
        );
        assert!(count_where(&t, &sql) >= 1, "{table}.{column} lost its text");
    }
    assert_eq!(
        count_where(
            &t,
            "SELECT count(*) AS n FROM api_token_usage WHERE method = U&'\\FFFD'"
        ),
        1
    );
}

/// The closed-set columns are enums whose labels are exactly what the writer sends: every
/// Kerberos message type, every application event type, both transports, the flow states and end
/// reasons; a flow state outside the set is stored as `unknown` instead of refusing the row.
#[test]
fn closed_sets_are_enums_holding_every_label_the_writer_sends() {
    use diesel::prelude::*;
    use netmonitor_common::krb::{KrbMessage, KrbMsgType};
    use netmonitor_common::{DhcpRecord, DnsRecord, HttpRecord, TlsHandshake};
    use netmonitor_store::rows::{FLOW_END_REASONS, FLOW_STATES};
    #[derive(QueryableByName)]
    struct Label {
        #[diesel(sql_type = diesel::sql_types::Text)]
        label: String,
    }
    let t = TestDatabase::start().expect("test database");
    let mut conn = PgConnection::establish(&t.conninfo()).unwrap();
    let labels = |conn: &mut PgConnection, ty: &str| -> Vec<String> {
        diesel::sql_query(
            "SELECT enumlabel AS label FROM pg_enum WHERE enumtypid = $1::regtype ORDER BY enumsortorder",
        )
        .bind::<diesel::sql_types::Text, _>(ty)
        .load::<Label>(conn)
        .unwrap()
        .into_iter()
        .map(|l| l.label)
        .collect()
    };
    let with_unknown = |set: &[&str]| {
        let mut v: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        v.push("unknown".into());
        v
    };
    assert_eq!(labels(&mut conn, "flow_state"), with_unknown(&FLOW_STATES));
    assert_eq!(
        labels(&mut conn, "flow_end_reason"),
        with_unknown(&FLOW_END_REASONS)
    );
    let krb_types: Vec<KrbMsgType> = (0..64).filter_map(KrbMsgType::from_app_tag).collect();
    let krb_names: Vec<String> = krb_types.iter().map(|m| m.name().to_owned()).collect();
    assert_eq!(labels(&mut conn, "krb_msg_type"), krb_names);
    let app_kinds = [
        EventKind::Dns(DnsRecord::default()),
        EventKind::Dhcp(DhcpRecord::default()),
        EventKind::Http(HttpRecord::default()),
    ];
    let app_names: Vec<String> = app_kinds
        .iter()
        .map(|k| k.event_type().to_owned())
        .collect();
    assert_eq!(labels(&mut conn, "app_event_type"), app_names);
    assert_eq!(labels(&mut conn, "tls_transport"), ["tcp", "quic"]);

    // one row of every label through the writer, and flows whose state and reason are not labels
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let header = flow_event(1).header;
    let ev = |kind| Event {
        header: header.clone(),
        kind,
    };
    let mut events: Vec<Event> = Vec::new();
    for (state, reason) in [("established", "forced"), ("half-open", "evicted")] {
        let mut flow = match flow_event(1).kind {
            EventKind::Flow(f) => f,
            _ => unreachable!(),
        };
        flow.state = state.into();
        flow.reason = reason.into();
        events.push(ev(EventKind::Flow(flow)));
    }
    for m in &krb_types {
        let mut krb = KrbMessage::new(*m);
        krb.failed_request = Some(*m);
        events.push(ev(EventKind::Krb5(krb)));
    }
    events.extend(app_kinds.into_iter().map(ev));
    for quic in [None, Some(1)] {
        events.push(ev(EventKind::Tls(TlsHandshake {
            quic_version: quic,
            ..TlsHandshake::default()
        })));
    }
    let sent = events.len() as u64;
    store.send_events(events).unwrap();
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(load(&stats.rows_rejected), 0);
    assert_eq!(load(&stats.rows_spooled), 0);
    assert_eq!(load(&stats.rows_written), sent);
    let n = |sql: &str| count_where(&t, sql);
    assert_eq!(
        n("SELECT count(*) AS n FROM flows WHERE state = 'established' AND reason = 'forced'"),
        1
    );
    assert_eq!(
        n("SELECT count(*) AS n FROM flows WHERE state = 'unknown' AND reason = 'unknown'"),
        1
    );
    assert_eq!(
        n("SELECT count(DISTINCT msg_type) AS n FROM kerberos_events WHERE msg_type = failed_request"),
        krb_names.len() as i64
    );
    assert_eq!(
        n("SELECT count(DISTINCT event_type) AS n FROM app_events"),
        3
    );
    assert_eq!(
        n("SELECT count(DISTINCT transport) AS n FROM tls_sessions"),
        2
    );
    // the TLS rollup counts the transport as text, as it did before it was an enum
    assert_eq!(
        n("SELECT sum(sessions)::int8 AS n FROM tls_rollup WHERE kind = 'transport' AND value IN ('tcp', 'quic')"),
        2
    );
}

/// A row the database refuses for its content (here a CHECK constraint the test adds) sits in
/// the middle of a 20,000-row batch: the other 19,999 are written, the one is dead-lettered with
/// the error, and the rows behind it keep flowing.
#[test]
fn a_refused_row_is_dead_lettered_and_its_batch_written() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let t = TestDatabase::start().expect("test database");
    let mut conn = PgConnection::establish(&t.conninfo()).unwrap();
    conn.batch_execute("ALTER TABLE flows ADD CONSTRAINT no_flow_12345 CHECK (flow_id <> 12345)")
        .unwrap();
    let cfg = StoreConfig {
        batch_size: 20_000,
        flush_interval_ms: 60_000,
        ..config(&t)
    };
    let store = StoreHandle::spawn(t.conninfo(), cfg.clone()).unwrap();
    store.send_events((0..20_000).map(flow_event)).unwrap();
    store.flush().unwrap();
    store.send_events((20_000..20_010).map(flow_event)).unwrap();
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(t.count("flows").unwrap(), 20_009);
    assert_eq!(load(&stats.rows_rejected), 1);
    assert_eq!(load(&stats.rows_written), 20_009);
    assert_eq!(load(&stats.rows_spooled), 0);
    let dir = cfg.dead_letter_dir();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["error"]
        .as_str()
        .unwrap()
        .contains("no_flow_12345"));
    assert_eq!(lines[0]["item"]["Event"]["header"]["flow_id"], 12345);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(files[0].metadata().unwrap().mode() & 0o777, 0o600);
}

/// Spool files left by an earlier run are replayed at start; one that was truncated (a crash,
/// a full disk) is moved aside and counted instead of blocking the others.
#[test]
fn a_corrupt_spool_file_is_moved_aside_and_the_rest_replayed() {
    let mut t = TestDatabase::start().expect("test database");
    let cfg = config(&t);
    {
        t.db.cluster_mut().unwrap().force_stop().unwrap();
        let store = StoreHandle::spawn(t.conninfo(), cfg.clone()).unwrap();
        for i in 0..3u64 {
            store
                .send_events((i * 100..i * 100 + 100).map(flow_event))
                .unwrap();
            store.flush().unwrap();
        }
        assert_eq!(load(&store.stats().spool_batches), 3);
        store.close();
    }
    let mut files: Vec<_> = std::fs::read_dir(&cfg.spool_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let text = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &text[..text.len() / 2]).unwrap();
    t.db.cluster_mut().unwrap().restart().unwrap();
    let store = StoreHandle::spawn(t.conninfo(), cfg.clone()).unwrap();
    store.send_events((1000..1001).map(flow_event)).unwrap();
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(t.count("flows").unwrap(), 201);
    assert_eq!(load(&stats.spool_corrupt_files), 1);
    assert_eq!(load(&stats.spool_batches), 0);
    let aside: Vec<_> = std::fs::read_dir(cfg.spool_dir.join("corrupt"))
        .unwrap()
        .collect();
    assert_eq!(aside.len(), 1);
}

/// During a long outage the spool stays within its byte bound by dropping its oldest batches,
/// and says how many rows that cost.
#[test]
fn the_spool_is_bounded_and_drops_its_oldest_batches() {
    let mut t = TestDatabase::start().expect("test database");
    let cfg = StoreConfig {
        spool_max_bytes: 1 << 20,
        ..config(&t)
    };
    t.db.cluster_mut().unwrap().force_stop().unwrap();
    let store = StoreHandle::spawn(t.conninfo(), cfg.clone()).unwrap();
    // about 500 bytes a spooled flow: 3 MiB of events against a 1 MiB bound
    for i in 0..12u64 {
        store
            .send_events((i * 500..i * 500 + 500).map(flow_event))
            .unwrap();
        store.flush().unwrap();
    }
    let stats = store.stats();
    assert_eq!(load(&stats.rows_spooled), 6000);
    let dropped = load(&stats.rows_dropped);
    assert!(dropped >= 3000, "dropped {dropped}");
    let on_disk: u64 = std::fs::read_dir(&cfg.spool_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 1 << 20, "{on_disk} bytes on disk");
    t.db.cluster_mut().unwrap().restart().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    store.send_events((10_000..10_001).map(flow_event)).unwrap();
    store.flush().unwrap();
    // what was kept arrives, newest included; nothing twice
    assert_eq!(t.count("flows").unwrap() as u64, 6001 - dropped);
    assert_eq!(
        count_where(&t, "SELECT count(DISTINCT flow_id) AS n FROM flows"),
        t.count("flows").unwrap()
    );
}

#[test]
fn the_query_pool_cuts_off_long_statements() {
    use diesel_async::RunQueryDsl;
    let t = TestDatabase::start().unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 200).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = pool.get().await.unwrap();
        let quick = diesel::sql_query("SELECT pg_sleep(0.01)")
            .execute(&mut c)
            .await;
        assert!(quick.is_ok(), "{quick:?}");
        let slow = diesel::sql_query("SELECT pg_sleep(2)")
            .execute(&mut c)
            .await;
        let e = slow.expect_err("cut off after 200 ms").to_string();
        assert!(e.contains("statement timeout"), "{e}");
    });
}
