//! Daily partitions, retention by dropping them, and the hourly rollups, against a real
//! PostgreSQL: rows land in their day's partition, retention removes whole days (and their
//! rollup rows), and every rollup-backed summary equals the same summary computed from the rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::AsyncPgConnection;
use netmonitor_common::{Alert, Event, EventHeader, EventKind, FlowKey, FlowRecord, Timestamp};
use netmonitor_store::partitions::{PartitionKeeper, Retention, MAX_NEW_DAYS_PER_BATCH};
use netmonitor_store::queries::{self, acknowledge_alerts_by_ip, AlertFilter, Window};
use netmonitor_store::summaries::{
    count_alerts, count_alerts_and_hidden, mitre_mapping, threat_groups, top_talkers, MitreRow,
};
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};

/// 2026-11-01T00:00:00Z.
const DAY0: i64 = 1_793_491_200;

fn header(at_secs: i64, i: u64, src: &str, dst: &str) -> EventHeader {
    EventHeader {
        ts: Timestamp::from_secs_micros(at_secs, 0),
        flow_id: i,
        key: FlowKey {
            src_ip: src.parse().unwrap(),
            src_port: 40000 + (i % 1000) as u16,
            dst_ip: dst.parse().unwrap(),
            dst_port: 443,
            proto: 6,
        },
    }
}

fn flow(at_secs: i64, i: u64, src: &str, dst: &str, up: u64, down: u64) -> Event {
    Event {
        header: header(at_secs, i, src, dst),
        kind: EventKind::Flow(FlowRecord {
            pkts_toserver: 1,
            pkts_toclient: 1,
            bytes_toserver: up,
            bytes_toclient: down,
            state: "closed".into(),
            reason: "timeout".into(),
            ..FlowRecord::default()
        }),
    }
}

fn alert(at_secs: i64, i: u64, src: &str, dst: &str, kind: &str, severity: u8) -> Event {
    Event {
        header: header(at_secs, i, src, dst),
        kind: EventKind::Alert(Alert {
            signature_id: 9_000_000 + u32::from(severity),
            signature: format!("{kind} signature {severity}"),
            category: "test".into(),
            severity,
            threat_type: kind.into(),
            mitre: vec![format!("T10{}", kind.len())],
            // one in nine kept by the alert stage as suppressed evidence
            evidence: if i.is_multiple_of(9) {
                serde_json::json!({ "suppressed_by": "test rule" })
            } else {
                serde_json::json!({})
            },
        }),
    }
}

fn config(t: &TestDatabase) -> StoreConfig {
    StoreConfig {
        spool_dir: t.dir().join("spool"),
        batch_size: 5000,
        flush_interval_ms: 20,
        retry_interval_ms: 100,
        ..StoreConfig::default()
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn partitions(c: &mut PgConnection, table: &str) -> Vec<String> {
    diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = $1::regclass ORDER BY 1",
    )
    .bind::<Text, _>(table)
    .load::<Name>(c)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

fn count(c: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(c).unwrap().n
}

#[test]
fn rows_land_in_day_partitions_and_retention_drops_whole_days() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    // ten days of flows, 100 a day, and one day of alerts
    let flows = (0..1000u64).map(|i| {
        let day = (i / 100) as i64;
        flow(
            DAY0 + day * 86_400 + (i % 100) as i64,
            i,
            "10.0.0.1",
            "10.0.0.2",
            10,
            20,
        )
    });
    store.send_events(flows).unwrap();
    store
        .send_events([alert(DAY0, 1, "10.0.0.1", "10.0.0.2", "port_scan", 2)])
        .unwrap();
    store.flush().unwrap();

    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    let days: Vec<String> = partitions(&mut c, "flows")
        .into_iter()
        .filter(|p| p.starts_with("flows_p202611"))
        .collect();
    assert_eq!(days.len(), 10, "{days:?}");
    assert_eq!(
        count(&mut c, "SELECT count(*) AS n FROM flows_p20261103"),
        100
    );
    assert_eq!(count(&mut c, "SELECT count(*) AS n FROM flows_default"), 0);
    assert!(partitions(&mut c, "alerts").contains(&"alerts_p20261101".to_string()));

    // keep three days of flows (counted back from the newest row), every alert
    let mut keeper = PartitionKeeper::default();
    let retention = Retention {
        flows_days: 3,
        alerts_days: 0,
        ..Retention::default()
    };
    let dropped = keeper.upkeep(&mut c, &retention).unwrap();
    assert_eq!(dropped, 7);
    assert_eq!(count(&mut c, "SELECT count(*) AS n FROM flows"), 300);
    assert_eq!(
        count(
            &mut c,
            "SELECT min((ts AT TIME ZONE 'UTC')::date - '2026-11-01'::date)::int8 AS n FROM flows"
        ),
        7
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) AS n FROM talker_rollup WHERE bucket < '2026-11-08'"
        ),
        0,
        "the rollup leaves with its days"
    );
    for (sql, what) in [
        (
            "SELECT count(*) AS n FROM talker_rollup_days WHERE bucket < '2026-11-08'",
            "the days leave too",
        ),
        (
            "SELECT count(*) AS n FROM rollup_hours WHERE rollup = 'talker' AND bucket < '2026-11-08'",
            "and the record of which of their hours are folded",
        ),
    ] {
        assert_eq!(count(&mut c, sql), 0, "{what}");
    }
    assert!(
        count(
            &mut c,
            "SELECT count(*) AS n FROM rollup_hours WHERE rollup = 'talker'"
        ) >= 3,
        "the kept days' hours are still recorded"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT sum(flows_as_client)::int8 AS n FROM talker_rollup"
        ),
        300
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT sum(flows_as_client)::int8 AS n FROM talker_rollup_days"
        ),
        300,
        "the kept days read whole, folded or not"
    );
    assert_eq!(count(&mut c, "SELECT count(*) AS n FROM alerts"), 1);
    // today and the days ahead exist before any traffic reaches them
    let today = format!("flows_p{}", Utc::now().format("%Y%m%d"));
    assert!(partitions(&mut c, "flows").contains(&today), "{today}");
    // a row for a dropped day is still kept
    store
        .send_events([flow(DAY0, 5000, "10.0.0.1", "10.0.0.2", 1, 1)])
        .unwrap();
    store.flush().unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) AS n FROM flows WHERE ts < '2026-11-02'"
        ),
        1
    );
    assert_eq!(
        load(&store.stats().rows_rejected),
        0,
        "nothing was refused on the way"
    );
}

fn load(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn a_batch_with_scrambled_dates_opens_a_bounded_number_of_days() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    // forty different years in one batch
    let flows = (0..40u64).map(|i| {
        flow(
            DAY0 - (i as i64) * 366 * 86_400,
            i,
            "10.0.0.1",
            "10.0.0.2",
            1,
            1,
        )
    });
    store.send_events(flows).unwrap();
    store.flush().unwrap();
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) AS n FROM flows"),
        40,
        "no row lost"
    );
    let outside = count(&mut c, "SELECT count(*) AS n FROM flows_default");
    assert_eq!(outside, 40 - MAX_NEW_DAYS_PER_BATCH as i64);
    // days are opened oldest first; a later row for a day the default partition holds stays
    // there with its day
    store
        .send_events([flow(DAY0, 99, "10.0.0.1", "10.0.0.2", 1, 1)])
        .unwrap();
    store.flush().unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) AS n FROM flows_default"),
        outside + 1
    );
    assert_eq!(load(&store.stats().rows_rejected), 0);
}

/// The same summaries straight from the rows.
type Group = (String, String, i64, i64, i64, i16, Vec<String>);

fn raw_groups(c: &mut PgConnection, w: Window) -> Vec<Group> {
    #[derive(QueryableByName)]
    struct G {
        #[diesel(sql_type = Text)]
        threat_type: String,
        #[diesel(sql_type = Text)]
        src: String,
        #[diesel(sql_type = BigInt)]
        alerts: i64,
        #[diesel(sql_type = BigInt)]
        open: i64,
        #[diesel(sql_type = BigInt)]
        targets: i64,
        #[diesel(sql_type = diesel::sql_types::Int2)]
        severity: i16,
        #[diesel(sql_type = diesel::sql_types::Array<Text>)]
        signatures: Vec<String>,
    }
    diesel::sql_query(
        "SELECT threat_type, host(src_ip) AS src, count(*) AS alerts, \
           count(*) FILTER (WHERE NOT acknowledged) AS open, count(DISTINCT dest_ip) AS targets, \
           min(severity) AS severity, array_agg(DISTINCT signature ORDER BY signature) AS signatures \
         FROM alerts WHERE ts >= $1 AND ts <= $2 \
         GROUP BY 1, src_ip ORDER BY 3 DESC, 1, src_ip",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(w.since)
    .bind::<diesel::sql_types::Timestamptz, _>(w.until)
    .load::<G>(c)
    .unwrap()
    .into_iter()
    .map(|g| {
        (
            g.threat_type,
            g.src,
            g.alerts,
            g.open,
            g.targets,
            g.severity,
            g.signatures,
        )
    })
    .collect()
}

type Technique = (
    String,
    i64,
    i64,
    i64,
    Vec<String>,
    i16,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// The techniques as [`raw_mitre`] gives them.
fn as_techniques(rows: Vec<MitreRow>) -> Vec<Technique> {
    rows.into_iter()
        .map(|m| {
            let mut kinds = m.threat_types;
            kinds.sort();
            (
                m.technique,
                m.alerts,
                m.sources,
                m.assets,
                kinds,
                m.severity,
                m.first_seen,
                m.last_seen,
            )
        })
        .collect()
}

fn raw_mitre(c: &mut PgConnection, w: Window) -> Vec<Technique> {
    #[derive(QueryableByName)]
    struct M {
        #[diesel(sql_type = Text)]
        technique: String,
        #[diesel(sql_type = BigInt)]
        alerts: i64,
        #[diesel(sql_type = BigInt)]
        sources: i64,
        #[diesel(sql_type = BigInt)]
        assets: i64,
        #[diesel(sql_type = diesel::sql_types::Array<Text>)]
        kinds: Vec<String>,
        #[diesel(sql_type = diesel::sql_types::Int2)]
        severity: i16,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        first: DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        last: DateTime<Utc>,
    }
    diesel::sql_query(
        "SELECT m AS technique, count(*) AS alerts, count(DISTINCT src_ip) AS sources, \
           (SELECT count(DISTINCT x) FROM unnest(array_agg(src_ip) || array_agg(dest_ip)) x) AS assets, \
           array_agg(DISTINCT threat_type ORDER BY threat_type) AS kinds, min(severity) AS severity, \
           min(ts) AS first, max(ts) AS last \
         FROM alerts, unnest(mitre) m WHERE ts >= $1 AND ts <= $2 GROUP BY m ORDER BY 2 DESC, 1",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(w.since)
    .bind::<diesel::sql_types::Timestamptz, _>(w.until)
    .load::<M>(c)
    .unwrap()
    .into_iter()
    .map(|m| {
        (
            m.technique,
            m.alerts,
            m.sources,
            m.assets,
            m.kinds,
            m.severity,
            m.first,
            m.last,
        )
    })
    .collect()
}

fn raw_talkers(c: &mut PgConnection, w: Window) -> Vec<(String, i64, i64)> {
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Text)]
        ip: String,
        #[diesel(sql_type = BigInt)]
        sent: i64,
        #[diesel(sql_type = BigInt)]
        flows: i64,
    }
    diesel::sql_query(
        "SELECT host(ip) AS ip, sum(sent)::int8 AS sent, count(*) AS flows FROM ( \
           SELECT src_ip AS ip, bytes_toserver AS sent FROM flows WHERE ts >= $1 AND ts <= $2 \
           UNION ALL SELECT dest_ip, bytes_toclient FROM flows WHERE ts >= $1 AND ts <= $2) x \
         GROUP BY x.ip ORDER BY x.ip",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(w.since)
    .bind::<diesel::sql_types::Timestamptz, _>(w.until)
    .load::<T>(c)
    .unwrap()
    .into_iter()
    .map(|t| (t.ip, t.sent, t.flows))
    .collect()
}

#[test]
fn rollup_summaries_equal_the_rows_for_any_window() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let base = DAY0 + 10 * 3600; // 10:00
    let kinds = ["port_scan", "brute_force", "dns_tunneling"];
    let mut events = Vec::new();
    // three days, an alert every 370 s and a flow every 230 s, from a few sources to many targets
    for i in 0..(3 * 86_400 / 370) as u64 {
        let at = base + i as i64 * 370;
        let src = format!("10.0.0.{}", i % 5);
        let dst = format!("192.0.2.{}", i % 23);
        events.push(alert(
            at,
            i,
            &src,
            &dst,
            kinds[(i % 3) as usize],
            1 + (i % 4) as u8,
        ));
    }
    for i in 0..(3 * 86_400 / 230) as u64 {
        let at = base + i as i64 * 230;
        let src = format!("10.0.0.{}", i % 7);
        let dst = format!("2001:db8::{:x}", i % 11);
        events.push(flow(at, i, &src, &dst, 100 + i, 1000 + i));
    }
    store.send_events(events).unwrap();
    store.flush().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 10_000).unwrap();
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    // both tiers hold every alert and flow (the days the hours not folded yet too)
    for (sql, expected) in [
        (
            "SELECT sum(alerts)::int8 AS n FROM alert_rollup_days",
            "SELECT count(*) AS n FROM alerts",
        ),
        (
            "SELECT sum(alerts)::int8 AS n FROM alert_rollup",
            "SELECT count(*) AS n FROM alerts",
        ),
        (
            "SELECT sum(alerts)::int8 AS n FROM alert_counts",
            "SELECT count(*) AS n FROM alerts",
        ),
        (
            "SELECT sum(alerts)::int8 AS n FROM alert_counts_days WHERE suppressed",
            "SELECT count(*) AS n FROM alerts WHERE evidence ? 'suppressed_by'",
        ),
        (
            "SELECT sum(flows_as_client)::int8 AS n FROM talker_rollup_days",
            "SELECT count(*) AS n FROM flows",
        ),
    ] {
        assert_eq!(count(&mut c, sql), count(&mut c, expected), "{sql}");
    }
    assert!(
        count(
            &mut c,
            "SELECT count(DISTINCT date_trunc('day', bucket, 'UTC')) AS n FROM alert_rollup_days"
        ) >= 3
    );
    // The writer has folded some hours into the days, a few at a time; it stops now. The hours
    // before 06:00 of the second day are folded, and alerts are added in hours after all the
    // others, which are not: summaries read days of both kinds and one of each at once, and
    // the acknowledgements below reach hours of both.
    drop(store);
    diesel::sql_query(format!(
        "SELECT netmonitor_fold(r, to_timestamp({})) FROM unnest(ARRAY['alert', 'talker']) r",
        base + 20 * 3600
    ))
    .execute(&mut c)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO alerts (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, proto, \
           signature_id, signature, category, severity, threat_type, mitre, evidence) \
         SELECT (SELECT sensor FROM alerts LIMIT 1), g, to_timestamp({} + g * 900), '10.0.0.3', \
           40000, ('192.0.2.' || g % 23)::inet, 443, 6, 9000002, 'port_scan signature 2', 'test', \
           2, 'port_scan', ARRAY['T109'], '{{}}' FROM generate_series(1, 20) g",
        base + 3 * 86_400 + 3600
    ))
    .execute(&mut c)
    .unwrap();
    // a whitelist entry added after the alerts hides one source's alerts and those to one target
    diesel::sql_query(
        "INSERT INTO whitelist (ip_cidr, direction) VALUES ('10.0.0.4/32', 'source'), \
         ('192.0.2.16/30', 'destination')",
    )
    .execute(&mut c)
    .unwrap();
    let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
    let windows = [
        (base, base + 6 * 3600),                      // aligned, all whole hours
        (base + 1234, base + 5 * 3600 - 77),          // ragged both ends
        (base + 600, base + 1800),                    // inside one hour
        (base - 86_400, base + 4 * 86_400),           // wider than the data: whole days
        (base + 3600, base + 2 * 3600 - 1),           // one hour but its last second
        (base + 1234, base + 2 * 86_400 + 3600 + 99), // ragged hours around two whole days
        (DAY0 + 86_400, DAY0 + 2 * 86_400 - 1),       // one day but its last second
        // days mostly inside: sums read them as the day minus its outside
        (DAY0 + 86_400 + 4800, DAY0 + 3 * 86_400 - 4000),
        (DAY0 + 86_400 + 1800, DAY0 + 2 * 86_400 - 3000),
    ];
    rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        // acknowledging moves counts in the rollup as in the rows
        let acked = acknowledge_alerts_by_ip(
            &mut q,
            "10.0.0.3",
            Window {
                since: at(base),
                until: at(base + 86_400 + 5),
            },
            None,
            "analyst",
        )
        .await
        .unwrap();
        assert!(acked > 20, "{acked}");
        let late = Window {
            since: at(base + 3 * 86_400),
            until: at(base + 4 * 86_400),
        };
        let acked = acknowledge_alerts_by_ip(&mut q, "10.0.0.3", late, None, "analyst")
            .await
            .unwrap();
        assert!(acked >= 20, "{acked}");
        for rollup in ["alert", "talker"] {
            assert_eq!(t.daily_mismatches(rollup).unwrap().0, 0, "{rollup}");
        }
        // the added alerts' five hours at least
        assert!(t.daily_mismatches("alert").unwrap().1 >= 5);
        for (a, b) in windows {
            let w = Window {
                since: at(a),
                until: at(b),
            };
            let got: Vec<_> = threat_groups(&mut q, w, None, None, false, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|g| {
                    (
                        g.threat_type,
                        g.src_ip,
                        g.alerts,
                        g.unacknowledged,
                        g.targets,
                        g.severity,
                        g.signatures,
                    )
                })
                .collect();
            assert_eq!(got, raw_groups(&mut c, w), "threat groups over {w:?}");

            let mut talkers: Vec<_> = top_talkers(&mut q, w, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.ip, r.bytes_sent, r.flows_as_client + r.flows_as_server))
                .collect();
            talkers.sort();
            let mut raw = raw_talkers(&mut c, w);
            raw.sort();
            assert_eq!(talkers, raw, "top talkers over {w:?}");

            // an address's flows summed four ways in one pass agree with each other and with
            // its totals read on their own
            let busiest = &raw.iter().max_by_key(|t| (t.2, t.0.clone())).unwrap().0;
            let flows = queries::ip_flow_summary(&mut q, busiest, w, 1000)
                .await
                .unwrap();
            let traffic = queries::ip_traffic(&mut q, busiest, w).await.unwrap();
            assert_eq!(flows.traffic, traffic, "{busiest} over {w:?}");
            let total = traffic.flows_as_client + traffic.flows_as_server;
            assert!(total > 0);
            assert_eq!(flows.peers.iter().map(|p| p.flows).sum::<i64>(), total);
            assert_eq!(flows.peers.len() as i64, traffic.peers);
            assert!(flows.peers.windows(2).all(|p| p[0].bytes >= p[1].bytes));
            assert_eq!(flows.ports.iter().map(|p| p.flows).sum::<i64>(), total);
            assert_eq!(flows.apps.iter().map(|a| a.count).sum::<i64>(), total);

            for (ip, kinds, sev, acked) in [
                (None, vec![], None, false),
                (None, vec![], None, true),
                (Some("10.0.0.4"), vec![], None, true),
                (Some("10.0.0.3"), vec![], None, false),
                (
                    Some("192.0.2.7"),
                    vec!["port_scan".to_string()],
                    Some(2),
                    true,
                ),
                (
                    None,
                    vec!["brute_force".into(), "dns_tunneling".into()],
                    Some(3),
                    false,
                ),
            ] {
                for hide_whitelisted in [true, false] {
                    let f = AlertFilter {
                        window: w,
                        ip: ip.map(str::to_owned),
                        threat_types: kinds.clone(),
                        max_severity: sev,
                        include_acknowledged: acked,
                        hide_whitelisted,
                        indicator: None,
                    };
                    counts_equal_the_rows(&mut q, &f).await;
                }
            }

            // detections without whitelisted alerts add up to the rows that are not
            let shown: i64 = threat_groups(&mut q, w, None, None, true, 1000)
                .await
                .unwrap()
                .iter()
                .map(|g| g.alerts)
                .sum();
            let visible = AlertFilter {
                window: w,
                ip: None,
                threat_types: vec![],
                max_severity: None,
                include_acknowledged: true,
                hide_whitelisted: true,
                indicator: None,
            };
            assert_eq!(
                shown,
                queries::count_alerts(&mut q, &visible).await.unwrap()
            );

            let techniques = mitre_mapping(&mut q, w, None, 100).await.unwrap();
            let total: i64 = techniques.iter().map(|m| m.alerts).sum();
            let expected = raw_groups(&mut c, w).iter().map(|g| g.2).sum::<i64>();
            assert_eq!(total, expected, "one technique per alert over {w:?}");
            assert_eq!(
                as_techniques(techniques),
                raw_mitre(&mut c, w),
                "techniques over {w:?}"
            );
            let one_ip = mitre_mapping(&mut q, w, Some("192.0.2.4"), 100)
                .await
                .unwrap();
            let n: i64 = one_ip.iter().map(|m| m.alerts).sum();
            let raw_n = count(
                &mut c,
                &format!(
                    "SELECT count(*) AS n FROM alerts WHERE dest_ip = '192.0.2.4' \
                     AND ts >= '{}' AND ts <= '{}'",
                    w.since.to_rfc3339(),
                    w.until.to_rfc3339()
                ),
            );
            assert_eq!(n, raw_n, "one address over {w:?}");
        }

        // With no whitelist entry naming addresses, counts without an address are read from
        // alert_counts (no addresses); the hidden alerts are then the suppressed ones.
        diesel::sql_query("DELETE FROM whitelist")
            .execute(&mut c)
            .unwrap();
        // and every hour folded, after acknowledgements of hours folded or not
        diesel::sql_query(
            "SELECT netmonitor_fold(r, now()) FROM unnest(ARRAY['alert', 'talker']) r",
        )
        .execute(&mut c)
        .unwrap();
        for rollup in ["alert", "talker"] {
            assert_eq!(t.daily_mismatches(rollup).unwrap(), (0, 0), "{rollup}");
        }
        let mut hidden_seen = 0;
        for (a, b) in windows {
            let w = Window {
                since: at(a),
                until: at(b),
            };
            for (kinds, sev, acked) in [
                (vec![], None, false),
                (vec![], None, true),
                (vec!["port_scan".to_string()], Some(2), true),
                (
                    vec!["brute_force".into(), "dns_tunneling".into()],
                    Some(3),
                    false,
                ),
            ] {
                for hide_whitelisted in [true, false] {
                    let f = AlertFilter {
                        window: w,
                        ip: None,
                        threat_types: kinds.clone(),
                        max_severity: sev,
                        include_acknowledged: acked,
                        hide_whitelisted,
                        indicator: None,
                    };
                    hidden_seen += counts_equal_the_rows(&mut q, &f).await;
                }
            }
        }
        assert!(hidden_seen > 0, "suppressed alerts were counted as hidden");
    });
}

/// Checks the alert counts of `f` (matching, and hidden by it) against counts of the rows;
/// returns the hidden ones.
async fn counts_equal_the_rows(q: &mut AsyncPgConnection, f: &AlertFilter) -> i64 {
    let raw = queries::count_alerts(q, f).await.unwrap();
    assert_eq!(count_alerts(q, f).await.unwrap(), raw, "count of {f:?}");
    let everything = AlertFilter {
        hide_whitelisted: false,
        ..f.clone()
    };
    let raw_all = queries::count_alerts(q, &everything).await.unwrap();
    let got = count_alerts_and_hidden(q, f).await.unwrap();
    assert_eq!(got, (raw, raw_all - raw), "count and hidden of {f:?}");
    got.1
}

#[test]
fn talker_sums_survive_a_crash_and_are_never_counted_twice() {
    let t = TestDatabase::start().expect("test database");
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    let flows_in_rollup = |c: &mut PgConnection| {
        count(
            c,
            "SELECT COALESCE(sum(flows_as_client), 0)::int8 AS n FROM talker_rollup",
        )
    };
    {
        let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
        store
            .send_events((0..50).map(|i| flow(DAY0 + i, i as u64, "10.0.0.1", "10.0.0.2", 5, 7)))
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(flows_in_rollup(&mut c), 50);
    // a writer that committed flows and died before adding their sums
    diesel::sql_query(
        "INSERT INTO flows (sensor, flow_id, ts, start_ts, end_ts, src_ip, src_port, dest_ip, \
           dest_port, proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state, \
           reason, tcp_flags, alerted) \
         SELECT 'netmonitor', g, '2026-11-01T05:00:00Z', now(), now(), '10.0.0.9', 1, '10.0.0.2', \
           443, 6, 1, 1, 100, 200, 'closed', 'timeout', 0, false FROM generate_series(1, 30) g",
    )
    .execute(&mut c)
    .unwrap();
    assert_eq!(flows_in_rollup(&mut c), 50, "not yet counted");
    for restart in 0..2 {
        let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
        store
            .send_events([flow(DAY0 + 99, 900 + restart, "10.0.0.1", "10.0.0.2", 5, 7)])
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(
        flows_in_rollup(&mut c),
        82,
        "50 + the 30 recovered + 2, once each"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT bytes_sent AS n FROM talker_rollup WHERE ip = '10.0.0.9'"
        ),
        3000
    );
}

/// The plan of `sql` with sequential scans priced out: what remains a `Seq Scan` has no
/// index that can answer it.
fn plan(c: &mut PgConnection, sql: &str) -> String {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    diesel::sql_query(format!("EXPLAIN {sql}"))
        .load::<Line>(c)
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lookups_use_indexes_and_read_only_their_days() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let mut events = Vec::new();
    for i in 0..3000u64 {
        let at = DAY0 + (i as i64) * 86; // three days
        let src = format!("10.0.{}.{}", i % 7, i % 200);
        events.push(flow(at, i, &src, "198.51.100.1", 10, 10));
        events.push(alert(at, i, &src, "198.51.100.1", "port_scan", 2));
    }
    store.send_events(events).unwrap();
    store.flush().unwrap();
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    diesel::sql_query("ANALYZE").execute(&mut c).unwrap();
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut c)
        .unwrap();
    let day2 = "ts >= '2026-11-02T10:00:00Z' AND ts <= '2026-11-02T12:00:00Z'";
    for (what, sql, partition) in [
        (
            "one address's alerts",
            format!("SELECT * FROM alerts WHERE (src_ip = '10.0.1.1' OR dest_ip = '10.0.1.1') AND {day2}"),
            "alerts_p20261102",
        ),
        (
            "one address's flows",
            format!("SELECT * FROM flows WHERE (src_ip = '10.0.1.1' OR dest_ip = '10.0.1.1') AND {day2}"),
            "flows_p20261102",
        ),
        (
            "newest alerts of a window",
            format!("SELECT * FROM alerts WHERE {day2} ORDER BY ts DESC LIMIT 50"),
            "alerts_p20261102",
        ),
        (
            "one client's Kerberos messages",
            format!("SELECT * FROM kerberos_events WHERE src_ip = '10.0.1.1' AND {day2}"),
            "kerberos_events_p20261102",
        ),
        (
            "one JA3's TLS sessions",
            format!("SELECT * FROM tls_sessions WHERE ja3 = 'x' AND {day2}"),
            "tls_sessions_p20261102",
        ),
        (
            "alerts naming an indicator",
            format!("SELECT * FROM alerts WHERE (evidence->>'indicator' = 'x' OR evidence->>'matched_value' = 'x') AND {day2}"),
            "alerts_p20261102",
        ),
        (
            "threat-feed match alerts",
            format!("SELECT * FROM alerts WHERE signature_id BETWEEN 9400001 AND 9400099 AND {day2}"),
            "alerts_p20261102",
        ),
        (
            "a domain and its subdomains in TLS",
            format!("SELECT * FROM tls_sessions WHERE (reverse(lower(sni)) = 'elpmaxe' OR reverse(lower(sni)) LIKE 'elpmaxe.%') AND {day2}"),
            "tls_sessions_p20261102",
        ),
        (
            "a domain and its subdomains in DNS",
            format!("SELECT * FROM app_events WHERE event_type = 'dns' AND reverse(lower(eve->'dns'->>'rrname')) LIKE 'elpmaxe.%' AND {day2}"),
            "app_events_p20261102",
        ),
        (
            "alert rollup hours",
            "SELECT * FROM alert_rollup WHERE bucket >= '2026-11-02' AND bucket < '2026-11-03'".into(),
            "alert_rollup",
        ),
        (
            "talker rollup hours",
            "SELECT * FROM talker_rollup WHERE bucket >= '2026-11-02' AND bucket < '2026-11-03'".into(),
            "talker_rollup",
        ),
        (
            "TLS rollup days",
            "SELECT * FROM tls_rollup_days WHERE bucket >= '2026-11-02' AND bucket < '2026-11-03'".into(),
            "tls_rollup_daily",
        ),
    ] {
        let p = plan(&mut c, &sql);
        assert!(!p.contains("Seq Scan"), "{what}: no index answers it:\n{p}");
        assert!(p.contains(partition), "{what}: reads {partition}:\n{p}");
        for other in ["_p20261101", "_p20261103", "_default"] {
            assert!(!p.contains(other), "{what}: reads {other} too:\n{p}");
        }
    }
    // the newest alerts naming an indicator (as `list_alerts` orders them) come from the
    // indicator indexes, not from a walk down the time index filtering every alert
    diesel::sql_query("RESET enable_seqscan")
        .execute(&mut c)
        .unwrap();
    let p = plan(
        &mut c,
        &format!(
            "SELECT * FROM alerts WHERE (evidence->>'indicator' = 'x' OR evidence->>'matched_value' = 'x') \
             AND {day2} ORDER BY ts + interval '0' DESC, id DESC LIMIT 10"
        ),
    );
    assert!(p.contains("_expr"), "no indicator index:\n{p}");
    assert!(!p.contains("Backward"), "walks the time index:\n{p}");
}

#[test]
fn domain_sightings_find_the_name_and_its_subdomains_only() {
    use netmonitor_common::{DnsRecord, TlsHandshake};
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let at = DAY0 + 3600;
    let tls = |i: u64, sni: &str| Event {
        header: header(at + i as i64, i, "10.0.0.1", "192.0.2.1"),
        kind: EventKind::Tls(TlsHandshake {
            sni: Some(sni.into()),
            ..TlsHandshake::default()
        }),
    };
    let dns = |i: u64, name: &str| Event {
        header: header(at + i as i64, i, "10.0.0.2", "10.0.0.53"),
        kind: EventKind::Dns(DnsRecord {
            kind: "query".into(),
            rrname: name.into(),
            rrtype: "A".into(),
            ..DnsRecord::default()
        }),
    };
    store
        .send_events([
            tls(1, "evil_1.example"),
            tls(2, "WWW.Evil_1.Example"),
            tls(3, "notevil_1.example"),
            tls(4, "evilx1.example"),
            dns(5, "a.b.evil_1.example"),
            dns(6, "evil_1.example.org"),
        ])
        .unwrap();
    store.flush().unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 10_000).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let since = DateTime::<Utc>::from_timestamp(DAY0, 0).unwrap();
    let until = since + chrono::TimeDelta::days(1);
    rt.block_on(async {
        let mut c = pool.get().await.unwrap();
        let seen = |v: Vec<netmonitor_store::intel::Sighting>| {
            let mut s: Vec<(String, i64)> = v.into_iter().map(|s| (s.source, s.events)).collect();
            s.sort();
            s
        };
        let found =
            netmonitor_store::intel::sightings(&mut c, "domain", "evil_1.example", since, until)
                .await
                .unwrap();
        // `_` is no wildcard, and only whole labels count
        assert_eq!(seen(found), vec![("dns".into(), 1), ("tls".into(), 2)]);
        let none =
            netmonitor_store::intel::sightings(&mut c, "domain", "vil_1.example", since, until)
                .await
                .unwrap();
        assert_eq!(seen(none), vec![]);
    });
}

/// Top talkers, detections and ATT&CK over the last day and week, read from the rolling sums, equal
/// the rows: nine days of flows and alerts through the writer (which rolls the spans), late
/// ones inside the spans, acknowledgements, the spans rolled on and recounted, retention; each
/// time every span equals the hourly rollup over its hours.
#[test]
fn summaries_over_the_last_day_and_week_come_from_the_rolling_sums() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    let agree = |what: &str| {
        for rollup in ["talker", "alert", "alert_pair"] {
            let (mismatches, spans) = t.rolling_mismatches(rollup).unwrap();
            assert_eq!((mismatches, spans), (0, 2), "{rollup}: {what}");
        }
    };
    let now = Utc::now().timestamp();
    // flows every ten minutes and alerts every fifteen, `ago` seconds further back
    let events_back = |from: u64, to: u64, ago: i64| -> Vec<Event> {
        let kinds = ["port_scan", "brute_force", "beaconing"];
        (from..to)
            .flat_map(|i| {
                let flow = flow(
                    now - ago - i as i64 * 600,
                    i,
                    &format!("10.0.{}.{}", i % 3, i % 50),
                    &format!("198.51.100.{}", i % 70),
                    (i * 37) % 5000,
                    (i * 91) % 9000,
                );
                let alert = alert(
                    now - ago - i as i64 * 900,
                    i,
                    &format!("10.0.{}.{}", i % 3, i % 7),
                    &format!("198.51.100.{}", i % 11),
                    kinds[i as usize % 3],
                    1 + (i % 4) as u8,
                );
                [flow, alert]
            })
            .collect()
    };
    store.send_events(events_back(0, 9 * 144, 0)).unwrap();
    store.flush().unwrap();
    agree("rolled by the writer");
    // late flows and alerts, three days back, added to the spans as they are written
    let late = 3 * 86_400 - 9 * 144 * 600;
    store
        .send_events(events_back(9 * 144, 9 * 144 + 60, late))
        .unwrap();
    store.flush().unwrap();
    agree("after late events");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = netmonitor_store::db::query_pool(&t.conninfo(), 1, 10_000).unwrap();
    // acknowledgements inside the spans and before them
    let acked = rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        let since = Utc::now() - chrono::TimeDelta::days(8);
        let w = Window {
            since,
            until: Utc::now(),
        };
        acknowledge_alerts_by_ip(&mut q, "10.0.1.1", w, None, "analyst")
            .await
            .unwrap()
    });
    assert!(acked > 5, "{acked}");
    agree("after acknowledgements");
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    for hours_ahead in [1, 5, -300, 0] {
        diesel::sql_query(format!(
            "SELECT netmonitor_roll_all(date_trunc('hour', now(), 'UTC') + interval '{hours_ahead} hours')"
        ))
        .execute(&mut c)
        .unwrap();
        agree(&format!("rolled to {hours_ahead} hours from now"));
    }
    // retention keeping two days of flows: the week's talker span reached past them and is
    // counted again
    let retention = Retention {
        flows_days: 2,
        ..Retention::default()
    };
    assert!(
        PartitionKeeper::default()
            .upkeep(&mut c, &retention)
            .unwrap()
            > 0
    );
    let (_, spans) = t.rolling_mismatches("talker").unwrap();
    assert_eq!(spans, 1, "the week's span is forgotten, the day's kept");
    diesel::sql_query("SELECT netmonitor_roll_all(date_trunc('hour', now(), 'UTC'))")
        .execute(&mut c)
        .unwrap();
    agree("counted again after retention");

    rt.block_on(async {
        let mut q = pool.get().await.unwrap();
        let now = Utc::now();
        for hours in [24, 168, 30] {
            let w = Window {
                since: now - chrono::TimeDelta::hours(hours),
                until: now,
            };
            let mut talkers: Vec<_> = top_talkers(&mut q, w, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.ip, r.bytes_sent, r.flows_as_client + r.flows_as_server))
                .collect();
            talkers.sort();
            let mut raw = raw_talkers(&mut c, w);
            raw.sort();
            assert!(!raw.is_empty());
            assert_eq!(talkers, raw, "top talkers over the last {hours} hours");
            let groups: Vec<_> = threat_groups(&mut q, w, None, None, false, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|g| {
                    (
                        g.threat_type,
                        g.src_ip,
                        g.alerts,
                        g.unacknowledged,
                        g.targets,
                        g.severity,
                        g.signatures,
                    )
                })
                .collect();
            let raw = raw_groups(&mut c, w);
            assert!(raw.iter().any(|g| g.3 < g.2), "some acknowledged: {raw:?}");
            assert_eq!(groups, raw, "detections over the last {hours} hours");
            let techniques = mitre_mapping(&mut q, w, None, 100).await.unwrap();
            let raw = raw_mitre(&mut c, w);
            assert!(!raw.is_empty());
            assert_eq!(
                as_techniques(techniques),
                raw,
                "ATT&CK over the last {hours} hours"
            );
        }
    });
}

#[test]
fn the_writer_folds_a_backlog_of_hours_into_the_days_a_few_at_a_time() {
    let t = TestDatabase::start().expect("test database");
    let store = StoreHandle::spawn(t.conninfo(), config(&t)).unwrap();
    // two days of alerts and flows, one of each per half hour: 48 hours to fold, more than the
    // writer folds at once
    let mut events = Vec::new();
    for i in 0..96u64 {
        let at = DAY0 + i as i64 * 1800;
        events.push(alert(at, i, "10.0.0.1", "192.0.2.1", "port_scan", 2));
        events.push(flow(at, i, "10.0.0.1", "192.0.2.1", 100, 1000));
    }
    store.send_events(events).unwrap();
    store.flush().unwrap();
    // the writer goes on folding between batches, traffic or not, until no hour is left
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let alert = t.daily_mismatches("alert").unwrap();
        let talker = t.daily_mismatches("talker").unwrap();
        assert_eq!(
            (alert.0, talker.0),
            (0, 0),
            "the days differ from the hours"
        );
        if (alert.1, talker.1) == (0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hours left unfolded: {alert:?} {talker:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT sum(alerts)::int8 AS n FROM alert_rollup_daily"
        ),
        96
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) AS n FROM rollup_hours WHERE rollup = 'alert' AND folded"
        ),
        48
    );
}
