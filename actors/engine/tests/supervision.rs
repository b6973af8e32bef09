//! Kill tests of the actor plane: a panic injected into each actor in turn while events flow.
//! Each actor is restarted by its supervisor and counted; nothing published on the bus is lost
//! (every subscriber here blocks rather than drops), so the EVE file ends with every event and
//! every alert, as if nothing had happened.

use actix::prelude::*;
use netmonitor_common::{
    Certificate, Event, EventHeader, EventKind, FlowKey, Timestamp, TlsHandshake,
};
use netmonitor_engine::{Engine, EngineOptions};
use netmonitor_eve::EveConfig;
use netmonitor_runtime::{InjectFault, Ping};

/// `n` TLS handshakes, each with a self-signed leaf certificate (one alert each).
fn handshakes(from: u64, n: u64) -> Vec<Event> {
    (from..from + n)
        .map(|i| Event {
            header: EventHeader {
                ts: Timestamp::from_secs_micros(1_750_000_000 + i as i64, 0),
                flow_id: i,
                key: FlowKey {
                    src_ip: "10.0.0.2".parse().unwrap(),
                    src_port: (10_000 + i % 50_000) as u16,
                    dst_ip: "10.0.0.9".parse().unwrap(),
                    dst_port: 443,
                    proto: 6,
                },
            },
            kind: EventKind::Tls(TlsHandshake {
                sni: Some("self".into()),
                version: Some("TLS 1.2".into()),
                certificates: vec![Certificate {
                    subject: "CN=self".into(),
                    issuer: "CN=self".into(),
                    self_signed: true,
                    not_before: 1_700_000_000,
                    not_after: 1_900_000_000,
                    fingerprint: format!("{i:040x}"),
                    ..Certificate::default()
                }],
                ..TlsHandshake::default()
            }),
        })
        .collect()
}

#[test]
fn every_actor_survives_an_injected_panic_and_nothing_is_lost() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let system = actix::System::new();
    system.block_on(async {
        let engine = Engine::start(EngineOptions {
            sensor: "test-sensor".into(),
            detection: Default::default(),
            eve: Some(EveConfig {
                path: Some(eve.clone()),
                ..EveConfig::default()
            }),
            store: None,
            inventory: true,
            intel: None,
            devices: None,
            risk: None,
            soar: None,
        })
        .unwrap();
        let publish = engine.publisher();
        let publish_in_thread = |events: Vec<Event>| {
            let p = publish.clone();
            std::thread::spawn(move || p(std::sync::Arc::new(events)))
                .join()
                .unwrap();
        };
        let faults: Vec<(&str, Recipient<InjectFault>, Recipient<Ping>)> = vec![
            (
                "tls",
                engine.tls.clone().recipient(),
                engine.tls.clone().recipient(),
            ),
            (
                "kerberos",
                engine.kerberos.clone().recipient(),
                engine.kerberos.clone().recipient(),
            ),
            (
                "alert_stage",
                engine.alert_stage.clone().recipient(),
                engine.alert_stage.clone().recipient(),
            ),
            (
                "eve",
                engine.eve.clone().unwrap().recipient(),
                engine.eve.clone().unwrap().recipient(),
            ),
            (
                "inventory",
                engine.inventory.clone().unwrap().recipient(),
                engine.inventory.clone().unwrap().recipient(),
            ),
        ];
        let mut next = 0;
        for (name, fault, ping) in &faults {
            publish_in_thread(handshakes(next, 100));
            next += 100;
            // the fault kills the handler; the supervisor brings the actor back
            let _ = fault.send(InjectFault).await;
            assert_eq!(ping.send(Ping).await.unwrap(), *name);
            publish_in_thread(handshakes(next, 100));
            next += 100;
        }
        engine.drain().await;
        let stats = engine.alert_stats().await.unwrap();
        assert_eq!(
            stats.counters.raised_by_kind.get("self_signed_certificate"),
            Some(&next),
            "every handshake's alert went through the stage"
        );
        engine.stop().await;
    });
    let text = std::fs::read_to_string(&eve).unwrap();
    let count = |t: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("\"event_type\":\"{t}\"")))
            .count()
    };
    assert_eq!(count("tls"), 1000, "every event reached the EVE file");
    assert_eq!(count("alert"), 1000, "every alert reached the EVE file");
    let snap = snapshotter.snapshot().into_vec();
    for name in ["tls", "kerberos", "alert_stage", "eve", "inventory"] {
        for metric in [
            "netmonitor_actor_panics_total",
            "netmonitor_actor_restarts_total",
        ] {
            let counted = snap.iter().any(|(k, _, _, v)| {
                k.key().name() == metric
                    && k.key()
                        .labels()
                        .any(|l| l.key() == "actor" && l.value() == name)
                    && *v == metrics_util::debugging::DebugValue::Counter(1)
            });
            assert!(counted, "{metric} for {name}");
        }
    }
}
