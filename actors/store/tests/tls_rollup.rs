//! The TLS rollup against a real PostgreSQL: TLS sessions written by the store writer over three
//! days, and `tls_stats` over many windows (ragged, aligned, under an hour, several days, wider
//! than the data) equal to the same statistics computed from the rows.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use netmonitor_common::{
    Certificate, Event, EventHeader, EventKind, Fingerprint, FlowKey, Timestamp, TlsHandshake,
};
use netmonitor_store::queries::{NameCount, Window};
use netmonitor_store::summaries::{tls_stats, TlsTotals};
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};

/// 2026-11-01T00:00:00Z.
const DAY0: i64 = 1_793_491_200;

fn fingerprint(n: u64) -> Fingerprint {
    Fingerprint {
        hash: format!("{n:032x}"),
        string: format!("771,{n},0-1,29,0"),
    }
}

/// Session `i`: eight clients, thirteen servers, five JA3, three JA4, a name on most, a QUIC
/// one in seven and a certificate (self-signed or expired for some) on every fourth.
fn session(at_secs: i64, i: u64) -> Event {
    let certificates = if i.is_multiple_of(4) {
        vec![Certificate {
            subject: format!("CN=server{}", i % 6),
            issuer: if i.is_multiple_of(3) {
                format!("CN=server{}", i % 6)
            } else {
                "CN=Test CA".into()
            },
            fingerprint: format!("aa:{:02x}", i % 6),
            not_before: DAY0 - 86_400 * 400,
            not_after: if i % 6 == 2 {
                DAY0 - 86_400
            } else {
                i64::MAX / 4
            },
            self_signed: i.is_multiple_of(3),
            ..Certificate::default()
        }]
    } else {
        Vec::new()
    };
    Event {
        header: EventHeader {
            ts: Timestamp::from_secs_micros(at_secs, 0),
            flow_id: i,
            key: FlowKey {
                src_ip: format!("10.0.0.{}", i % 8).parse().unwrap(),
                src_port: 40000 + (i % 1000) as u16,
                dst_ip: format!("2001:db8::{:x}", i % 13).parse().unwrap(),
                dst_port: 443,
                proto: if i.is_multiple_of(7) { 17 } else { 6 },
            },
        },
        kind: EventKind::Tls(TlsHandshake {
            sni: (!i.is_multiple_of(9)).then(|| format!("site{}.example", i % 11)),
            version: Some(
                if i.is_multiple_of(5) {
                    "TLS 1.2"
                } else {
                    "TLS 1.3"
                }
                .into(),
            ),
            ja3: Some(fingerprint(i % 5)),
            ja3s: i.is_multiple_of(2).then(|| fingerprint(100 + i % 3)),
            ja4: Some(format!("t13d1516h2_{:012x}", i % 3)),
            certificates,
            quic_version: i.is_multiple_of(7).then_some(1),
            ..TlsHandshake::default()
        }),
    }
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    sessions: i64,
    #[diesel(sql_type = BigInt)]
    clients: i64,
    #[diesel(sql_type = BigInt)]
    servers: i64,
    #[diesel(sql_type = BigInt)]
    without_sni: i64,
    #[diesel(sql_type = BigInt)]
    quic: i64,
    #[diesel(sql_type = BigInt)]
    distinct_ja3: i64,
    #[diesel(sql_type = BigInt)]
    distinct_ja4: i64,
    #[diesel(sql_type = BigInt)]
    blocklisted: i64,
    #[diesel(sql_type = BigInt)]
    certificates: i64,
    #[diesel(sql_type = BigInt)]
    self_signed: i64,
    #[diesel(sql_type = BigInt)]
    expired: i64,
}

/// The totals straight from the rows.
fn raw_totals(c: &mut PgConnection, w: Window) -> TlsTotals {
    let t: Totals = diesel::sql_query(
        "SELECT count(*) AS sessions, count(DISTINCT t.src_ip) AS clients, \
           count(DISTINCT t.dest_ip) AS servers, count(*) FILTER (WHERE t.sni IS NULL) AS without_sni, \
           count(*) FILTER (WHERE t.transport = 'quic') AS quic, \
           count(DISTINCT t.ja3) AS distinct_ja3, count(DISTINCT t.ja4) AS distinct_ja4, \
           count(*) FILTER (WHERE b.ja3 IS NOT NULL) AS blocklisted, \
           count(DISTINCT c.fingerprint) AS certificates, \
           count(DISTINCT c.fingerprint) FILTER (WHERE c.self_signed) AS self_signed, \
           count(DISTINCT c.fingerprint) FILTER (WHERE c.not_after < now()) AS expired \
         FROM tls_sessions t LEFT JOIN certificates c ON c.fingerprint = t.cert_fingerprint \
           LEFT JOIN ja3_blocklist b ON b.ja3 = t.ja3 \
         WHERE t.ts >= $1 AND t.ts <= $2",
    )
    .bind::<Timestamptz, _>(w.since)
    .bind::<Timestamptz, _>(w.until)
    .get_result(c)
    .unwrap();
    TlsTotals {
        sessions: t.sessions,
        clients: t.clients,
        servers: t.servers,
        without_sni: t.without_sni,
        quic: t.quic,
        distinct_ja3: t.distinct_ja3,
        distinct_ja4: t.distinct_ja4,
        blocklisted_ja3_sessions: t.blocklisted,
        certificates: t.certificates,
        self_signed_certificates: t.self_signed,
        expired_certificates: t.expired,
        addresses_estimated: false,
    }
}

/// The `limit` most frequent values of `column` straight from the rows.
fn raw_top(c: &mut PgConnection, column: &str, w: Window, limit: i64) -> Vec<NameCount> {
    diesel::sql_query(format!(
        "SELECT {column} AS name, count(*) AS count FROM tls_sessions \
         WHERE {column} IS NOT NULL AND ts >= $1 AND ts <= $2 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $3"
    ))
    .bind::<Timestamptz, _>(w.since)
    .bind::<Timestamptz, _>(w.until)
    .bind::<BigInt, _>(limit)
    .load(c)
    .unwrap()
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[test]
fn tls_statistics_from_the_rollup_equal_the_rows_for_any_window() {
    let t = TestDatabase::start().expect("test database");
    let config = StoreConfig {
        spool_dir: t.dir().join("spool"),
        batch_size: 700,
        flush_interval_ms: 20,
        retry_interval_ms: 100,
        ..StoreConfig::default()
    };
    let store = StoreHandle::spawn(t.conninfo(), config).unwrap();
    // three days from 10:00, a session every 290 s, in several batches
    let base = DAY0 + 10 * 3600;
    let sessions: Vec<Event> = (0..(3 * 86_400 / 290) as u64)
        .map(|i| session(base + i as i64 * 290, i))
        .collect();
    let total = sessions.len() as i64;
    store.send_events(sessions).unwrap();
    store.flush().unwrap();
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    diesel::sql_query(
        "INSERT INTO ja3_blocklist (ja3, reason, source) VALUES ($1, 'test', 'test')",
    )
    .bind::<Text, _>(fingerprint(3).hash)
    .execute(&mut c)
    .unwrap();
    // both tiers count every session once per transport (the days of hours not folded yet from
    // the hours)
    for tier in ["tls_rollup", "tls_rollup_days"] {
        let n: N = diesel::sql_query(format!(
            "SELECT sum(sessions)::int8 AS n FROM {tier} WHERE kind = 'transport'"
        ))
        .get_result(&mut c)
        .unwrap();
        assert_eq!(n.n, total, "{tier}");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 10_000).unwrap();
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let windows = [
        ("2026-11-01T10:20:00Z", "2026-11-01T13:05:00Z"),
        ("2026-11-01T00:00:00Z", "2026-11-03T23:59:59.999999Z"),
        ("2026-11-01T11:00:00Z", "2026-11-02T11:00:00Z"),
        ("2026-11-02T10:20:00Z", "2026-11-02T10:40:00Z"),
        ("2026-11-01T10:07:00Z", "2026-11-04T09:53:00Z"),
        ("2026-10-20T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-11-02T00:00:00Z", "2026-11-02T23:59:59.999999Z"),
        // days mostly inside: read as the day minus its outside
        ("2026-11-02T01:20:00Z", "2026-11-03T22:40:00Z"),
        ("2026-11-02T00:30:00Z", "2026-11-02T23:10:00Z"),
    ];
    // The writer has folded some of the hours into the days, a few at a time; it stops now, and
    // the test folds the hours up to the second afternoon; adds late sessions, some in hours
    // folded (which go to both tiers) and some in hours with no session yet (not folded); then
    // folds every hour. Each time, the days equal the hours and every window equals the rows.
    drop(store);
    let folds = [
        "SELECT netmonitor_fold('tls', '2026-11-02T15:00:00Z')",
        "INSERT INTO tls_sessions (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, \
           transport, sni, version, alpn) \
         SELECT 'late', g, '2026-11-01T23:00:00Z'::timestamptz + g * interval '61 minutes', \
           ('10.0.0.' || g % 3)::inet, 40000, '2001:db8::1', 443, 'tcp', 'late.example', \
           'TLS 1.2', ARRAY[]::text[] FROM generate_series(1, 60) g; \
         SELECT netmonitor_rollup_tls('late')",
        "SELECT netmonitor_fold('tls', 'infinity')",
    ];
    let mut unfolded_hours = Vec::new();
    for fold in folds {
        c.batch_execute(fold).unwrap();
        let (differing, unfolded) = t.daily_mismatches("tls").unwrap();
        assert_eq!(differing, 0, "after {fold}");
        unfolded_hours.push(unfolded);
        check_windows(&rt, &pool, &mut c, &windows, fold);
    }
    // the last sessions came after every stored one, in hours of their own
    assert!(unfolded_hours[1] >= 2, "{unfolded_hours:?}");
    assert_eq!(unfolded_hours[2], 0);
    let total = total + 60;
    rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        // the whole data: every kind of total is exercised
        let all = Window {
            since: at("2026-10-01T00:00:00Z"),
            until: at("2026-12-01T00:00:00Z"),
        };
        let totals = tls_stats(&mut q, all, 10).await.unwrap().totals;
        assert_eq!(totals.sessions, total);
        for (what, n) in [
            ("quic", totals.quic),
            ("without SNI", totals.without_sni),
            ("blocklisted", totals.blocklisted_ja3_sessions),
            ("self-signed", totals.self_signed_certificates),
            ("expired", totals.expired_certificates),
        ] {
            assert!(n > 0 && n < totals.sessions, "{what}: {n} of {totals:?}");
        }
        assert_eq!((totals.clients, totals.servers), (8, 13));
        assert!(!totals.addresses_estimated);
    });

    // Many clients: 20,000 sessions over two days from as many addresses, to 500 servers, in
    // four parts counted one by one (each adds to the sketches of the hours and days before
    // it). Past 1,280 addresses the sketch estimates; below it still counts exactly.
    for part in 0..4 {
        c.batch_execute(&format!(
            "INSERT INTO tls_sessions (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, transport, alpn) \
             SELECT 'many', g, '2026-11-05T08:00:00Z'::timestamptz + g * interval '7 seconds', \
               ('10.2.' || g / 250 || '.' || g % 250)::inet, 40000, \
               ('198.18.' || g % 500 / 250 || '.' || g % 250)::inet, 443, 'tcp', ARRAY[]::text[] \
             FROM generate_series({}, {}) g; \
             SELECT netmonitor_rollup_tls('many')",
            part * 5000 + 1,
            part * 5000 + 5000
        ))
        .unwrap();
    }
    let many = Window {
        since: at("2026-11-05T10:20:00Z"),
        until: at("2026-11-06T13:05:00Z"),
    };
    let raw = raw_totals(&mut c, many);
    let got = rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        tls_stats(&mut q, many, 10).await.unwrap().totals
    });
    assert!(raw.clients > 10_000, "{raw:?}");
    assert!(got.addresses_estimated, "{got:?}");
    let error = (got.clients - raw.clients).abs() as f64 / raw.clients as f64;
    // four standard errors of the sketch's precision
    assert!(
        error < 0.033,
        "{} clients estimated as {}",
        raw.clients,
        got.clients
    );
    assert_eq!(got.servers, raw.servers);
    assert_eq!(got.sessions, raw.sessions);
}

/// Checks the statistics of every window in `windows` against the rows.
fn check_windows(
    rt: &tokio::runtime::Runtime,
    pool: &netmonitor_store::db::DbPool,
    c: &mut PgConnection,
    windows: &[(&str, &str)],
    after: &str,
) {
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        for (a, b) in windows {
            let w = Window {
                since: at(a),
                until: at(b),
            };
            for limit in [3, 50] {
                let got = tls_stats(&mut q, w, limit).await.unwrap();
                assert_eq!(
                    got.totals,
                    raw_totals(c, w),
                    "totals over {w:?} after {after}"
                );
                assert_eq!(got.versions, raw_top(c, "version", w, limit), "{w:?}");
                assert_eq!(got.ja3, raw_top(c, "ja3", w, limit), "{w:?}");
                assert_eq!(got.ja3s, raw_top(c, "ja3s", w, limit), "{w:?}");
                assert_eq!(got.ja4, raw_top(c, "ja4", w, limit), "{w:?}");
                assert_eq!(got.sni, raw_top(c, "sni", w, limit), "{w:?}");
            }
        }
    });
}

/// Inserts TLS sessions `from..=to` (one every seven minutes back from now, so up to nine
/// days), whose names, fingerprints and addresses repeat, and counts them in the rollup.
fn sessions_back_from_now(c: &mut PgConnection, from: i64, to: i64, ago: &str) {
    c.batch_execute(&format!(
        "INSERT INTO tls_sessions (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, \
           transport, sni, version, ja3, ja4, alpn) \
         SELECT 'rolling', g, now() - {ago} - g * interval '7 minutes', ('10.3.0.' || g % 40)::inet, \
           40000, ('198.51.100.' || g % 90)::inet, 443, 'tcp', \
           CASE WHEN g % 5 > 0 THEN 'site' || g % 23 || '.example' END, \
           (ARRAY['TLS 1.2', 'TLS 1.3'])[g % 2 + 1], md5((g % 17)::text), 't13d_' || g % 7, \
           ARRAY[]::text[] \
         FROM generate_series({from}, {to}) g; \
         SELECT netmonitor_rollup_tls('rolling')"
    ))
    .unwrap();
}

#[test]
fn tls_statistics_over_the_last_day_and_week_come_from_the_rolling_sums() {
    let t = TestDatabase::start().expect("test database");
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    let roll = |c: &mut PgConnection, hours_ahead: i64| {
        diesel::sql_query(format!(
            "SELECT netmonitor_roll_all(date_trunc('hour', now(), 'UTC') + interval '{hours_ahead} hours')"
        ))
        .execute(c)
        .unwrap();
    };
    let agree = |what: &str| {
        let (mismatches, spans) = t.rolling_mismatches("tls").unwrap();
        assert_eq!((mismatches, spans), (0, 2), "{what}");
    };
    // nine days of sessions, then the spans counted from them
    sessions_back_from_now(&mut c, 0, 9 * 24 * 60 / 7, "interval '0 s'");
    roll(&mut c, 0);
    agree("counted at the first roll");
    // late sessions, inside both spans (and the current hour), added as they are written
    sessions_back_from_now(&mut c, 0, 700, "interval '3 minutes'");
    agree("after late sessions");
    // the hours turn: the new ones added, the old ones taken away
    roll(&mut c, 2);
    agree("rolled two hours on");
    roll(&mut c, 3);
    agree("rolled one more hour");
    // back to now: nothing in common with what is held, so counted again
    roll(&mut c, -200);
    agree("recounted");
    roll(&mut c, 0);
    agree("recounted at the current hour");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 10_000).unwrap();
    rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        let held = netmonitor_store::summaries::spans(&mut q, "tls")
            .await
            .unwrap();
        let now = chrono::Utc::now();
        for hours in [24, 168, 100] {
            let w = Window {
                since: now - chrono::TimeDelta::hours(hours),
                until: now,
            };
            // the last day and week are read from their spans (unless the hour turned just now)
            let pieces = netmonitor_store::summaries::pieces_with(w, now, &held);
            let from_span = pieces
                .iter()
                .any(|p| matches!(p.source, netmonitor_store::summaries::Source::Span(_)));
            assert!(
                from_span || hours == 100 || held.iter().any(|s| s.hi > now),
                "{pieces:?}"
            );
            let got = tls_stats(&mut q, w, 50).await.unwrap();
            assert_eq!(
                got.totals,
                raw_totals(&mut c, w),
                "totals over {hours} hours"
            );
            assert!(got.totals.sessions > 0);
            assert_eq!(got.sni, raw_top(&mut c, "sni", w, 50), "{hours} hours");
            assert_eq!(got.ja3, raw_top(&mut c, "ja3", w, 50), "{hours} hours");
            assert_eq!(got.ja4, raw_top(&mut c, "ja4", w, 50), "{hours} hours");
            assert_eq!(
                got.versions,
                raw_top(&mut c, "version", w, 50),
                "{hours} hours"
            );
        }
    });
}

/// A roll and a writer of another process never deadlock: a transaction holding the alerts'
/// rolling lock (its alerts written) then counting TLS sessions (taking the TLS lock, as a
/// recount does), while the roll waits, goes through.
#[test]
fn a_roll_waits_for_a_batch_without_deadlock() {
    let t = TestDatabase::start().expect("test database");
    let mut batch = PgConnection::establish(&t.conninfo()).unwrap();
    batch
        .batch_execute(
            "BEGIN; \
             INSERT INTO alerts (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, proto, \
               signature_id, signature, category, severity, threat_type, mitre, evidence) \
             VALUES ('other', 1, now(), '10.4.0.1', 40000, '10.4.0.2', 22, 6, 1, 'test', 'test', 2, \
               'brute_force', ARRAY['T1110'], '{}')",
        )
        .unwrap();
    let conninfo = t.conninfo();
    let roll = std::thread::spawn(move || {
        let mut c = PgConnection::establish(&conninfo).unwrap();
        diesel::sql_query("SELECT netmonitor_roll_all(date_trunc('hour', now(), 'UTC'))")
            .execute(&mut c)
            .map(|_| ())
    });
    // the roll is now waiting for the batch
    std::thread::sleep(std::time::Duration::from_millis(500));
    sessions_back_from_now(&mut batch, 0, 10, "interval '0 s'");
    batch.batch_execute("COMMIT").unwrap();
    roll.join()
        .unwrap()
        .expect("the roll went through after the batch");
    let (mismatches, spans) = t.rolling_mismatches("tls").unwrap();
    assert_eq!((mismatches, spans), (0, 2));
}

/// The writer's TLS counts are added once each: sessions committed by a writer that died
/// before adding its counts are counted by the next one, and never again by the one after;
/// a recount that fails holds up neither the rows nor later counts; names that differ only in
/// a NUL byte are one value, and times past what PostgreSQL takes one hour, as their rows
/// store them.
#[test]
fn tls_counts_survive_a_crash_and_are_never_counted_twice() {
    let t = TestDatabase::start().expect("test database");
    let config = || StoreConfig {
        spool_dir: t.dir().join("spool"),
        flush_interval_ms: 20,
        retry_interval_ms: 100,
        ..StoreConfig::default()
    };
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    {
        let store = StoreHandle::spawn(t.conninfo(), config()).unwrap();
        let mut sessions: Vec<Event> = (0..40).map(|i| session(DAY0 + 60 * i, i as u64)).collect();
        for (i, name) in ["odd\0name.example", "odd\u{FFFD}name.example"]
            .into_iter()
            .enumerate()
        {
            let mut s = session(DAY0 + 7200, 1 + i as u64);
            if let EventKind::Tls(tls) = &mut s.kind {
                tls.sni = Some(name.into());
            }
            sessions.push(s);
        }
        // stored as 9999-12-31 23:59:59.999999, two hours apart before that
        for (i, years) in [20_000i64, 30_000].into_iter().enumerate() {
            sessions.push(session(years * 31_556_952 + 7_200 * i as i64, 3 + i as u64));
        }
        store.send_events(sessions).unwrap();
        store.flush().unwrap();
    }
    let sessions_counted = |c: &mut PgConnection| {
        diesel::sql_query(
            "SELECT COALESCE(sum(sessions), 0)::int8 AS n FROM tls_rollup WHERE kind = 'transport'",
        )
        .get_result::<N>(c)
        .unwrap()
        .n
    };
    assert_eq!(sessions_counted(&mut c), 44);
    let last_hour: N = diesel::sql_query(
        "SELECT sessions AS n FROM tls_rollup \
         WHERE kind = 'transport' AND bucket = '9999-12-31T23:00:00Z'",
    )
    .get_result(&mut c)
    .unwrap();
    assert_eq!(last_hour.n, 2, "the times past 9999 in the last hour");
    // a writer that committed sessions from a new client and died before counting them
    c.batch_execute(
        "INSERT INTO tls_sessions (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, \
           transport, sni, version, alpn) \
         SELECT 'netmonitor', g, '2026-11-01T05:00:00Z', '10.9.9.9', 40000, '2001:db8::1', 443, \
           'tcp', 'crash.example', 'TLS 1.3', ARRAY[]::text[] FROM generate_series(1, 25) g",
    )
    .unwrap();
    assert_eq!(sessions_counted(&mut c), 44, "not counted yet");
    for restart in 0..2 {
        let store = StoreHandle::spawn(t.conninfo(), config()).unwrap();
        store
            .send_events([session(DAY0 + 9000, 500 + restart)])
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(
        sessions_counted(&mut c),
        71,
        "44 + the 25 recovered + 2, once each"
    );
    // a recount that fails holds up neither the rows nor the counts after it
    c.batch_execute(
        "ALTER FUNCTION netmonitor_rollup_tls(text) RENAME TO rollup_tls_kept; \
         CREATE FUNCTION netmonitor_rollup_tls(s text) RETURNS bigint LANGUAGE plpgsql \
           AS $$ BEGIN RAISE EXCEPTION 'recount broken'; END $$",
    )
    .unwrap();
    let store = StoreHandle::spawn(t.conninfo(), config()).unwrap();
    store.send_events([session(DAY0 + 9100, 600)]).unwrap();
    store.flush().unwrap();
    assert_eq!(t.count("tls_sessions").unwrap(), 72, "stored");
    assert_eq!(
        sessions_counted(&mut c),
        71,
        "not counted while the recount fails"
    );
    c.batch_execute(
        "DROP FUNCTION netmonitor_rollup_tls(text); \
         ALTER FUNCTION rollup_tls_kept(text) RENAME TO netmonitor_rollup_tls",
    )
    .unwrap();
    store.send_events([session(DAY0 + 9200, 601)]).unwrap();
    store.flush().unwrap();
    drop(store);
    assert_eq!(sessions_counted(&mut c), 73, "both, once each");
    let (differing, _) = t.daily_mismatches("tls").unwrap();
    assert_eq!(differing, 0);
    let day = Window {
        since: "2026-11-01T00:00:00Z".parse().unwrap(),
        until: "2026-11-01T23:59:59.999999Z".parse().unwrap(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 10_000).unwrap();
    let got = rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        tls_stats(&mut q, day, 50).await.unwrap()
    });
    assert_eq!(got.totals, raw_totals(&mut c, day));
    assert_eq!(got.sni, raw_top(&mut c, "sni", day, 50));
    let odd = got
        .sni
        .iter()
        .find(|n| n.name.starts_with("odd"))
        .expect("the odd name");
    assert_eq!(odd.count, 2, "{:?}", got.sni);
}
