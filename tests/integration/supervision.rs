//! A panic inside an actor is contained: logged, counted, the actor restarts under its
//! supervisor and keeps its resources, and the rest of the system keeps running.

use actix::prelude::*;
use netmonitor_runtime::{EventBatch, InjectFault, Ping};
use netmonitor_store::actor::{FlushStore, StoreActor};
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};
use std::sync::Arc;

fn alert_batch(n: u64) -> EventBatch {
    use netmonitor_common::*;
    let events = (0..n)
        .map(|i| Event {
            header: EventHeader {
                ts: Timestamp::from_secs_micros(1_700_000_000, i as i64),
                flow_id: i,
                key: FlowKey {
                    src_ip: "192.0.2.1".parse().unwrap(),
                    src_port: 1000,
                    dst_ip: "192.0.2.2".parse().unwrap(),
                    dst_port: 88,
                    proto: 17,
                },
            },
            kind: EventKind::Alert(Alert {
                signature_id: 1,
                signature: "test".into(),
                category: "test".into(),
                severity: 3,
                threat_type: "test".into(),
                mitre: vec!["T1558.003".into()],
                evidence: serde_json::json!({"i": i}),
            }),
        })
        .collect();
    EventBatch::new(netmonitor_runtime::Topic::Events, Arc::new(events))
}

#[test]
fn an_actor_panic_is_survived() {
    let db = TestDatabase::start().expect("test database");
    let handle = Arc::new(
        StoreHandle::spawn(
            db.conninfo(),
            StoreConfig {
                spool_dir: db.dir().join("spool"),
                ..StoreConfig::default()
            },
        )
        .unwrap(),
    );
    let prometheus = netmonitor::telemetry::prometheus();
    let system = actix_rt::System::new();
    system.block_on(async {
        let store = Supervisor::start(move |_| StoreActor::new(handle));
        store.send(alert_batch(10)).await.unwrap();
        // The fault kills the handler; the mailbox sender sees the actor go away...
        let _ = store.send(InjectFault).await;
        // ...and the supervisor brings it back with the same writer.
        assert_eq!(store.send(Ping).await.unwrap(), "store");
        store.send(alert_batch(5)).await.unwrap();
        store.send(FlushStore).await.unwrap().unwrap();
    });
    assert_eq!(db.count("alerts").unwrap(), 15);
    let text = prometheus.render();
    assert!(
        text.contains("netmonitor_actor_panics_total{actor=\"store\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("netmonitor_actor_restarts_total{actor=\"store\"} 1"),
        "{text}"
    );
}
