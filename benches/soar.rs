//! What SOAR costs, against a private PostgreSQL started here.
//!
//! - Trigger to pending: an alert published on the engine's bus until its action is stored
//!   as pending and `soar://pending` subscribers are told, one alert at a time, p50/p99 over
//!   300 alerts. The reference, in the same run, is what any write of one row costs: a new
//!   connection and one INSERT.
//! - Approval listing with 10,000 historical actions: `get_pending_approvals` and
//!   `get_soar_history` pages (their queries), p50/p99 over 300 calls, against `SELECT 1`.
//!
//! Run: `cargo bench --bench soar`.

use diesel::{Connection, PgConnection, RunQueryDsl};
use netmonitor_common::{Alert, Event, EventHeader, EventKind, FlowKey, Timestamp};
use netmonitor_engine::{Engine, EngineOptions, SoarOptions};
use netmonitor_runtime::Topic;
use netmonitor_soar::SoarConfig;
use netmonitor_store::soar::ActionFilter;
use netmonitor_store::testing::TestDatabase;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::percentile;

const PLAYBOOK: &str = r#"name = "contain"
[trigger]
kinds = ["port_scan"]
[conditions]
unless_whitelisted = false
[[actions]]
type = "block_ip"
max_per_hour = 1000000
"#;

fn scan_alert(i: u32) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp(1_767_225_600_000_000 + i64::from(i)),
            flow_id: u64::from(i),
            key: FlowKey {
                src_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                src_port: 40_000,
                dst_ip: "10.9.9.9".parse().unwrap(),
                dst_port: 0,
                proto: 6,
            },
        },
        kind: EventKind::Alert(Alert {
            signature_id: 9_500_001,
            signature: "scan".into(),
            category: "bench".into(),
            severity: 2,
            threat_type: "port_scan".into(),
            mitre: vec!["T1046".into()],
            evidence: serde_json::json!({"ports": 100}),
        }),
    }
}

fn trigger_to_pending(db: &TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("contain.toml"), PLAYBOOK).unwrap();
    let conninfo = db.conninfo();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let system = actix_rt::System::new();
    let (ours, reference) = system.block_on(async move {
        let engine = Engine::start(EngineOptions {
            sensor: "bench".into(),
            detection: Default::default(),
            eve: None,
            store: None,
            inventory: false,
            intel: None,
            devices: None,
            risk: None,
            soar: Some(SoarOptions {
                config: SoarConfig {
                    playbooks_dir: Some(dir.path().to_owned()),
                    ..Default::default()
                },
                database: conninfo.clone(),
            }),
        })
        .unwrap();
        let core = engine.soar.as_ref().unwrap().1.clone();
        let _ = core.notify.set(Arc::new(move |_: &str| {
            let _ = tx.send(Instant::now());
        }));
        tokio::time::sleep(Duration::from_millis(500)).await; // playbooks loaded
        let mut ms = Vec::new();
        for i in 0..300 {
            let t = Instant::now();
            engine.bus.publish(Topic::Alerts, Arc::new(vec![scan_alert(i)]));
            let done = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .ok()
                .flatten()
                .expect("the action stored as pending");
            ms.push((done - t).as_secs_f64() * 1e3);
        }
        let mut reference = Vec::new();
        for i in 0..300 {
            let t = Instant::now();
            let mut c = PgConnection::establish(&conninfo).unwrap();
            diesel::sql_query(format!(
                "INSERT INTO soar_actions (idempotency_key, playbook, action_index, action_type, target, state, \
                 needs_approval, approver_scope, proposed, evidence) VALUES ('ref-{i}', 'r', 0, 'block_ip', 't', 'rejected', \
                 true, 'read_write', '{{}}', '{{}}')"
            ))
            .execute(&mut c)
            .unwrap();
            reference.push(t.elapsed().as_secs_f64() * 1e3);
        }
        engine.stop().await;
        (ms, reference)
    });
    let (mut ours, mut reference) = (ours, reference);
    let (p50, p99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
    let r50 = percentile(&mut reference, 0.5);
    println!(
        "  trigger to pending (alert on the bus -> row stored -> subscribers told), 300 alerts: \
         p50 {p50:.2} ms, p99 {p99:.2} ms ({:.2}x a connect + INSERT at p50 {r50:.2} ms)",
        p50 / r50
    );
}

fn listing(db: &TestDatabase) {
    let mut c = PgConnection::establish(&db.conninfo()).unwrap();
    diesel::sql_query(
        "INSERT INTO soar_actions (idempotency_key, playbook, action_index, action_type, target, state, \
           needs_approval, approver_scope, proposed, evidence, created_at, decided_at, decided_by, executed_at, outcome) \
         SELECT 'hist-' || g, 'playbook-' || (g % 7), 0, 'block_ip', '10.0.' || (g % 250) || '.' || (g % 200), \
           CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 3 = 0 THEN 'rejected' ELSE 'executed' END, true, 'read_write', \
           jsonb_build_object('command', jsonb_build_array('nft', 'add', 'element', 'inet', 'netmonitor', 'blocklist_v4', '{ 10.0.0.1 }')), \
           jsonb_build_object('threat_type', 'port_scan', 'src_ip', '10.0.0.1', 'signature', 'scan'), \
           now() - (g || ' minutes')::interval, now(), 'analyst', now(), '{\"exit_code\": 0}' \
         FROM generate_series(1, 10000) AS g",
    )
    .execute(&mut c)
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use diesel_async::AsyncConnection;
        let mut conn = diesel_async::AsyncPgConnection::establish(&db.conninfo()).await.unwrap();
        let mut reference = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), &mut conn)
                .await
                .unwrap();
            reference.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let r50 = percentile(&mut reference, 0.5);
        let cases = [
            ("get_pending_approvals (page of 50)", ActionFilter { states: vec!["pending".into()], limit: 50, ..Default::default() }),
            ("get_soar_history (page of 50)", ActionFilter { limit: 50, ..Default::default() }),
            ("get_soar_history state=executed, playbook", ActionFilter { states: vec!["executed".into()], playbook: Some("playbook-3".into()), limit: 50, ..Default::default() }),
            ("get_soar_history page 50 deep (cursor)", ActionFilter { limit: 50, before_id: Some(7_500), ..Default::default() }),
        ];
        for (name, f) in cases {
            let mut ms = Vec::new();
            let mut n = 0;
            for _ in 0..300 {
                let t = Instant::now();
                n = netmonitor_store::soar::list(&mut conn, &f).await.unwrap().len();
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let p50 = percentile(&mut ms, 0.5);
            println!(
                "  {name} over 10,000 actions: {n} rows, p50 {p50:.2} ms, p99 {:.2} ms ({:.1}x SELECT 1 at {r50:.3} ms)",
                percentile(&mut ms, 0.99),
                p50 / r50
            );
        }
    });
}

fn main() {
    println!("soar bench");
    let db = TestDatabase::start().expect("private PostgreSQL for the benchmark");
    trigger_to_pending(&db);
    listing(&db);
}
