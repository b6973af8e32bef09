//! The engine: the event bus and the supervised actors around it — the alert stage, the TLS and
//! Kerberos detectors, the EVE and store sinks, the live inventory and the capture actor — each
//! on its own arbiter, subscribed with a declared back-pressure policy. `run` and `replay` (and
//! the end-to-end tests) build the same topology here; the composition root only chooses what to
//! plug in. Shutdown drains in dependency order: detectors, then the alert stage, then sinks.
#![deny(missing_docs)]

mod live;

pub use live::LiveRouter;

use actix::prelude::*;
use netmonitor_alerts::{
    AlertPolicy, AlertStage, AlertSubject, ServiceProvider, SetProviders, SetWhitelist,
    SuppressedAlerts, SuppressionAnswer, TestSuppression, WhitelistEntry,
};
use netmonitor_behaviour::actor::BehaviourActor;
use netmonitor_behaviour::BehaviourConfig;
use netmonitor_devices::{DeviceActor, DevicesConfig};
use netmonitor_eve::{EveConfig, EveSink};
use netmonitor_intel::actor::IntelActor;
use netmonitor_intel::config::IntelConfig;
use netmonitor_intel::feeds::{FeedActor, WhenReady};
use netmonitor_kerberos::actor::KerberosActor;
use netmonitor_kerberos::detect::KrbDetectConfig;
use netmonitor_risk::{RiskActor, RiskConfig};
use netmonitor_runtime::{AlertedFlows, Backpressure, Bus, Drain, EventBatch, Topic};
use netmonitor_sensor::capture_actor::{Capture, CaptureActor};
use netmonitor_sensor::inventory_actor::InventoryActor;
use netmonitor_sensor::service::Source;
use netmonitor_sensor::shard::Publish;
use netmonitor_sensor::SensorConfig;
use netmonitor_soar::{SoarActor, SoarConfig, SoarCore};
use netmonitor_store::actor::{FlushStore, StoreActor};
use netmonitor_store::StoreHandle;
use netmonitor_tls::actor::TlsActor;
use netmonitor_tls::detect::TlsDetector;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `[detection]`: settings of the detectors and the alert stage.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Kerberos thresholds (`[detection.kerberos]`).
    pub kerberos: KrbDetectConfig,
    /// TLS detections (`[detection.tls]`).
    pub tls: TlsDetectConfig,
    /// The alert stage (`[detection.alerts]`).
    pub alerts: AlertsConfig,
    /// Behaviour detections (`[detection.behaviour]`).
    pub behaviour: BehaviourConfig,
}

/// `[detection.tls]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsDetectConfig {
    /// abuse.ch SSLBL JA3 CSV loaded at start.
    pub ja3_blocklist: Option<PathBuf>,
}

/// `[detection.alerts]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Identical alerts within this many seconds (packet time) are suppressed; 0 = off.
    pub dedup_window_secs: u64,
    /// Alerts a whitelist entry or service provider suppresses: `drop` (counted only) or
    /// `keep` (counted and stored with `evidence.suppressed_by`, never raised).
    pub whitelisted: SuppressedAlerts,
}

impl DetectionConfig {
    /// Checks every part, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.kerberos
            .validate()
            .map_err(|e| format!("detection.{e}"))?;
        self.behaviour
            .validate()
            .map_err(|e| format!("detection.{e}"))?;
        Ok(())
    }
}

/// What to plug into the engine.
pub struct EngineOptions {
    /// This sensor's name (whitelist entries may be scoped to one sensor).
    pub sensor: String,
    /// Detector and alert stage settings.
    pub detection: DetectionConfig,
    /// Where EVE goes (`None`, or no path: no EVE sink).
    pub eve: Option<EveConfig>,
    /// The store writer, when events go to PostgreSQL.
    pub store: Option<Arc<StoreHandle>>,
    /// Keep the live inventory (the service does; a replay does not).
    pub inventory: bool,
    /// Threat feeds, when matching is wanted.
    pub intel: Option<IntelOptions>,
    /// The device inventory, when kept.
    pub devices: Option<DevicesOptions>,
    /// Risk scoring and correlation, when kept.
    pub risk: Option<RiskOptions>,
    /// SOAR playbooks and approvals, when run.
    pub soar: Option<SoarOptions>,
}

/// SOAR settings for the engine.
pub struct SoarOptions {
    /// `[soar]`.
    pub config: SoarConfig,
    /// libpq connection string of the database actions are kept in (SOAR needs one).
    pub database: String,
}

/// Risk settings for the engine.
pub struct RiskOptions {
    /// `[risk]`.
    pub config: RiskConfig,
    /// libpq connection string of the database risk is saved in (none: memory only).
    pub database: Option<String>,
}

/// Device inventory settings for the engine.
pub struct DevicesOptions {
    /// `[devices]`.
    pub config: DevicesConfig,
    /// libpq connection string of the database devices are saved in (none: memory only).
    pub database: Option<String>,
}

/// Threat-feed settings for the engine.
pub struct IntelOptions {
    /// `[intel]`.
    pub config: IntelConfig,
    /// libpq connection string of the database feeds are stored in (none: fetched every start).
    pub database: Option<String>,
}

/// The running engine.
pub struct Engine {
    /// The bus every batch travels on.
    pub bus: Arc<Bus>,
    /// Flows the alert stage marked (the packet path reads it at flow end).
    pub alerted: Arc<AlertedFlows>,
    /// The shared alert stage.
    pub alert_stage: Addr<AlertStage>,
    /// TLS detections and live statistics.
    pub tls: Addr<TlsActor>,
    /// Kerberos detections and live statistics.
    pub kerberos: Addr<KerberosActor>,
    /// Behaviour detections.
    pub behaviour: Addr<BehaviourActor>,
    /// The live inventory.
    pub inventory: Option<Addr<InventoryActor>>,
    /// The device inventory.
    pub devices: Option<Addr<DeviceActor>>,
    /// Risk scoring and attack chains.
    pub risk: Option<Addr<RiskActor>>,
    /// SOAR: the actor and what the approval tools share with it.
    pub soar: Option<(Addr<SoarActor>, Arc<SoarCore>)>,
    /// The EVE sink.
    pub eve: Option<Addr<EveSink>>,
    /// The store sink.
    pub store: Option<Addr<StoreActor>>,
    /// Threat-feed matching.
    pub intel: Option<Addr<IntelActor>>,
    /// Threat-feed refreshes.
    pub feeds: Option<Addr<FeedActor>>,
    /// Capture, once started.
    pub capture: Option<Capture>,
    arbiters: Vec<Arbiter>,
}

/// What the MCP tools reach the engine through: every actor by message, never its internals.
#[derive(Clone)]
pub struct Handles {
    /// The bus (for its per-subscriber figures).
    pub bus: Arc<Bus>,
    /// The alert stage (suppression figures, whitelist updates).
    pub alert_stage: Addr<AlertStage>,
    /// TLS live statistics and blocklist.
    pub tls: Addr<TlsActor>,
    /// Kerberos live statistics.
    pub kerberos: Addr<KerberosActor>,
    /// Behaviour detections and their counters.
    pub behaviour: Addr<BehaviourActor>,
    /// The live inventory, when kept.
    pub inventory: Option<Addr<InventoryActor>>,
    /// The device inventory, when kept.
    pub devices: Option<Addr<DeviceActor>>,
    /// Risk scoring and attack chains, when kept.
    pub risk: Option<Addr<RiskActor>>,
    /// SOAR playbooks and approvals, when run.
    pub soar: Option<(Addr<SoarActor>, Arc<SoarCore>)>,
    /// The EVE sink, when configured.
    pub eve: Option<Addr<EveSink>>,
    /// Threat-feed matching, when configured.
    pub intel: Option<Addr<IntelActor>>,
    /// Threat-feed refreshes, when configured.
    pub feeds: Option<Addr<FeedActor>>,
    /// Capture, when running.
    pub capture: Option<Capture>,
    /// Live configuration.
    pub live: LiveRouter,
}

/// Starts `A` under a supervisor on a fresh arbiter (its own thread).
fn on_own_arbiter<A>(arbiters: &mut Vec<Arbiter>, actor: A) -> Addr<A>
where
    A: Actor<Context = Context<A>> + Supervised + Send,
{
    let arb = Arbiter::new();
    let addr = Supervisor::start_in_arbiter(&arb.handle(), move |_| actor);
    arbiters.push(arb);
    addr
}

impl Engine {
    /// Builds and starts the topology. Call it inside a running actix `System`.
    pub fn start(opts: EngineOptions) -> Result<Engine, String> {
        opts.detection.validate()?;
        let bus = Bus::new();
        let alerted = Arc::new(AlertedFlows::default());
        let mut arbiters = Vec::new();
        let policy = Arc::new(Mutex::new(
            AlertPolicy::new(opts.detection.alerts.dedup_window_secs)
                .with_scope(&opts.sensor, opts.detection.alerts.whitelisted),
        ));
        let alert_stage = on_own_arbiter(
            &mut arbiters,
            AlertStage::new(policy, bus.clone(), alerted.clone()),
        );
        let mut detector = TlsDetector::new();
        if let Some(path) = &opts.detection.tls.ja3_blocklist {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "detection.tls.ja3_blocklist: cannot read {}: {e}",
                    path.display()
                )
            })?;
            let r = detector.load_sslbl_csv(&text);
            tracing::info!(added = r.added, skipped = r.skipped, file = %path.display(), "JA3 blocklist loaded");
        }
        let tls = on_own_arbiter(
            &mut arbiters,
            TlsActor::new(detector, alert_stage.clone().recipient()),
        );
        let kerberos = on_own_arbiter(
            &mut arbiters,
            KerberosActor::new(
                opts.detection.kerberos.clone(),
                alert_stage.clone().recipient(),
            ),
        );
        bus.subscribe(
            "tls",
            &[Topic::Events],
            Backpressure::Block,
            tls.clone().recipient(),
            Some(tls.clone().recipient()),
        );
        bus.subscribe(
            "kerberos",
            &[Topic::Events],
            Backpressure::Block,
            kerberos.clone().recipient(),
            Some(kerberos.clone().recipient()),
        );
        let behaviour = on_own_arbiter(
            &mut arbiters,
            BehaviourActor::new(
                opts.detection.behaviour.clone(),
                alert_stage.clone().recipient(),
            ),
        );
        bus.subscribe(
            "behaviour",
            &[Topic::Events],
            Backpressure::Block,
            behaviour.clone().recipient(),
            Some(behaviour.clone().recipient()),
        );
        let (intel, feeds) = match opts.intel.filter(|i| i.config.enabled) {
            Some(i) => {
                i.config.validate()?;
                let intel = on_own_arbiter(
                    &mut arbiters,
                    IntelActor::new(
                        alert_stage.clone().recipient(),
                        i.config.alert_window_secs,
                        i.config.min_confidence,
                    ),
                );
                bus.subscribe(
                    "intel",
                    &[Topic::Events],
                    Backpressure::Block,
                    intel.clone().recipient(),
                    Some(intel.clone().recipient()),
                );
                let feeds = on_own_arbiter(
                    &mut arbiters,
                    FeedActor::new(i.config, i.database, intel.clone().recipient()),
                );
                (Some(intel), Some(feeds))
            }
            None => (None, None),
        };
        let eve = match opts.eve.filter(|e| e.path.is_some()) {
            Some(cfg) => {
                let sink = EveSink::new(cfg)?;
                let addr = on_own_arbiter(&mut arbiters, sink);
                bus.subscribe(
                    "eve",
                    &[Topic::Events, Topic::Alerts],
                    Backpressure::Block,
                    addr.clone().recipient(),
                    Some(addr.clone().recipient()),
                );
                Some(addr)
            }
            None => None,
        };
        let store = opts.store.map(|handle| {
            let addr = on_own_arbiter(&mut arbiters, StoreActor::new(handle));
            bus.subscribe(
                "store",
                &[Topic::Events, Topic::Alerts, Topic::Suppressed],
                Backpressure::Block,
                addr.clone().recipient(),
                Some(addr.clone().recipient()),
            );
            addr
        });
        let inventory = opts.inventory.then(|| {
            let addr = on_own_arbiter(&mut arbiters, InventoryActor::default());
            bus.subscribe(
                "inventory",
                &[Topic::Events, Topic::Alerts],
                Backpressure::Drop,
                addr.clone().recipient(),
                Some(addr.clone().recipient()),
            );
            addr
        });
        let devices = opts.devices.filter(|d| d.config.enabled).map(|d| {
            let (cfg, db) = (d.config, d.database);
            let to_alerts = alert_stage.clone().recipient();
            let addr = on_own_arbiter(&mut arbiters, DeviceActor::new(cfg, db, Some(to_alerts)));
            bus.subscribe(
                "devices",
                &[Topic::Events],
                Backpressure::Block,
                addr.clone().recipient(),
                Some(addr.clone().recipient()),
            );
            addr
        });
        let risk = match opts.risk.filter(|r| r.config.enabled) {
            Some(r) => {
                r.config.validate()?;
                let addr = on_own_arbiter(
                    &mut arbiters,
                    RiskActor::new(
                        r.config,
                        &opts.sensor,
                        r.database,
                        alert_stage.clone().recipient(),
                        devices.clone(),
                    ),
                );
                // Alerts after the stage; flow records for exposure and the clock.
                bus.subscribe(
                    "risk",
                    &[Topic::Events, Topic::Alerts],
                    Backpressure::Block,
                    addr.clone().recipient(),
                    Some(addr.clone().recipient()),
                );
                Some(addr)
            }
            None => None,
        };
        let soar = match opts.soar.filter(|s| s.config.enabled) {
            Some(s) => {
                s.config.validate().map_err(|e| format!("soar.{e}"))?;
                let core = Arc::new(SoarCore::new(
                    s.config,
                    s.database,
                    risk.clone(),
                    devices.clone(),
                ));
                let addr = on_own_arbiter(
                    &mut arbiters,
                    SoarActor::new(core.clone(), alert_stage.clone()),
                );
                bus.subscribe(
                    "soar",
                    &[Topic::Alerts],
                    Backpressure::Block,
                    addr.clone().recipient(),
                    Some(addr.clone().recipient()),
                );
                Some((addr, core))
            }
            None => None,
        };
        Ok(Engine {
            bus,
            alerted,
            alert_stage,
            tls,
            kerberos,
            behaviour,
            inventory,
            devices,
            risk,
            soar,
            eve,
            store,
            intel,
            feeds,
            capture: None,
            arbiters,
        })
    }

    /// Publishes event batches on the bus (for the packet path and replay workers).
    pub fn publisher(&self) -> Publish {
        let bus = self.bus.clone();
        Arc::new(move |events| bus.publish(Topic::Events, events))
    }

    /// Starts capture on `sources` under the supervised capture actor.
    pub fn start_capture(
        &mut self,
        cfg: &SensorConfig,
        sources: Vec<Source>,
    ) -> Result<(), String> {
        let bus = self.bus.clone();
        let make_sink = Box::new(move || -> netmonitor_sensor::service::EventSink {
            let bus = bus.clone();
            Box::new(move |events| bus.publish(Topic::Events, events))
        });
        let actor =
            CaptureActor::start_service(cfg.clone(), sources, self.alerted.clone(), make_sink)?;
        let addr = on_own_arbiter(&mut self.arbiters, actor);
        self.capture = Some(Capture::new(addr));
        Ok(())
    }

    /// Subscribes a live view that may skip batches (MCP resource notifications).
    pub fn subscribe_view<A>(&self, name: &'static str, addr: &Addr<A>)
    where
        A: Actor<Context = Context<A>> + Handler<EventBatch> + Handler<Drain>,
    {
        self.bus.subscribe(
            name,
            &[Topic::Events, Topic::Alerts],
            Backpressure::Drop,
            addr.clone().recipient(),
            None,
        );
    }

    /// The alert stage's figures.
    pub async fn alert_stats(&self) -> Option<netmonitor_alerts::AlertStageStats> {
        self.alert_stage
            .send(netmonitor_alerts::GetAlertStats)
            .await
            .ok()
    }

    /// Replaces the alert stage's whitelist.
    pub async fn set_whitelist(&self, entries: Vec<WhitelistEntry>) -> Result<(), String> {
        self.alert_stage
            .send(SetWhitelist(entries))
            .await
            .map_err(|e| e.to_string())
    }

    /// Replaces the alert stage's service providers.
    pub async fn set_providers(&self, providers: Vec<ServiceProvider>) -> Result<(), String> {
        self.alert_stage
            .send(SetProviders(providers))
            .await
            .map_err(|e| e.to_string())
    }

    /// What the alert stage would do with an alert of this subject.
    pub async fn test_suppression(&self, subject: AlertSubject) -> Option<SuppressionAnswer> {
        self.alert_stage.send(TestSuppression(subject)).await.ok()
    }

    /// Waits until the threat feeds are loaded and every feed never fetched before was tried
    /// (a replay matches against complete feeds).
    pub async fn intel_ready(&self) {
        if let Some(f) = &self.feeds {
            let _ = f.send(WhenReady).await;
        }
    }

    /// Routes live configuration changes to the actors that own the keys.
    pub fn live(&self) -> LiveRouter {
        LiveRouter::new(self)
    }

    /// Cloneable addresses of the running actors, for the MCP tools.
    pub fn handles(&self) -> Handles {
        Handles {
            bus: self.bus.clone(),
            alert_stage: self.alert_stage.clone(),
            tls: self.tls.clone(),
            kerberos: self.kerberos.clone(),
            behaviour: self.behaviour.clone(),
            inventory: self.inventory.clone(),
            devices: self.devices.clone(),
            risk: self.risk.clone(),
            soar: self.soar.clone(),
            eve: self.eve.clone(),
            intel: self.intel.clone(),
            feeds: self.feeds.clone(),
            capture: self.capture.clone(),
            live: self.live(),
        }
    }

    /// Waits until everything published so far went through the detectors, the alert stage and
    /// the sinks (the store included: durable in PostgreSQL or the spool).
    pub async fn drain(&self) {
        let _ = self.tls.send(Drain).await;
        let _ = self.kerberos.send(Drain).await;
        let _ = self.behaviour.send(Drain).await;
        if let Some(i) = &self.intel {
            let _ = i.send(Drain).await;
        }
        let _ = self.alert_stage.send(Drain).await;
        if let Some(d) = &self.devices {
            let _ = d.send(Drain).await;
        }
        if let Some(r) = &self.risk {
            // Risk raises alerts from what the stage passed: they go through the stage again.
            let _ = r.send(Drain).await;
            let _ = self.alert_stage.send(Drain).await;
        }
        if let Some(e) = &self.eve {
            let _ = e.send(Drain).await;
        }
        if let Some(i) = &self.inventory {
            let _ = i.send(Drain).await;
        }
        if let Some(s) = &self.store {
            match s.send(FlushStore).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "store flush failed"),
                Err(e) => tracing::error!(error = %e, "store actor gone while draining"),
            }
        }
    }

    /// Stops capture (flushing every flow onto the bus), drains, and stops the arbiters.
    pub async fn stop(mut self) {
        if let Some(c) = self.capture.take() {
            let _ = c
                .addr()
                .send(netmonitor_sensor::capture_actor::StopCapture)
                .await;
        }
        self.drain().await;
        for a in self.arbiters.drain(..) {
            a.stop();
        }
    }
}
