//! The risk actor: takes alerts (after the alert stage) and flow records off the bus, keeps the
//! risk book, hands threshold and chain alerts back to the alert stage, asks the device
//! inventory for criticality, and saves what changed every few seconds (off its thread; a
//! failed save is kept for the next). Supervised: a panic while folding a batch restarts it
//! with the book it had.

use crate::book::{Asset, Changes, RiskBook};
use crate::chain::{Chain, Stage};
use crate::config::RiskConfig;
use actix::prelude::*;
use chrono::{TimeZone, Utc};
use diesel::Connection;
use netmonitor_devices::{DeviceActor, QueryDevices};
use netmonitor_runtime::{
    contained, injected_fault, note_restart, Drain, EventBatch, InjectFault, Ping, RaiseAlerts,
    Topic,
};
use netmonitor_store::risk::{self as db, AssetRow, ChainRow, HistoryPoint, MitreRow};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NAME: &str = "risk";
/// Batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;
/// Seconds between criticality refreshes from the device inventory.
const DEVICE_REFRESH_SECS: u64 = 5;

/// The name of a stage in answers and alerts.
pub fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Reconnaissance => "reconnaissance",
        Stage::CredentialAccess => "credential_access",
        Stage::LateralMovement => "lateral_movement",
        Stage::CommandAndControl => "command_and_control",
        Stage::Exfiltration => "exfiltration",
        Stage::Impact => "impact",
    }
}

/// A read-only question about risk, answered as JSON.
#[derive(Message)]
#[rtype(result = "Value")]
pub struct QueryRisk(pub Box<dyn FnOnce(&RiskBook) -> Value + Send>);

impl QueryRisk {
    /// Wraps a closure.
    pub fn new(f: impl FnOnce(&RiskBook) -> Value + Send + 'static) -> Self {
        QueryRisk(Box::new(f))
    }
}

/// A change to the book (criticality by hand), answered as JSON or refused.
#[derive(Message)]
#[rtype(result = "Result<Value, String>")]
pub struct UpdateRisk(pub Box<RiskChange>);

/// What [`UpdateRisk`] runs.
pub type RiskChange = dyn FnOnce(&mut RiskBook) -> Result<Value, String> + Send;

impl UpdateRisk {
    /// Wraps a closure.
    pub fn new(f: impl FnOnce(&mut RiskBook) -> Result<Value, String> + Send + 'static) -> Self {
        UpdateRisk(Box::new(f))
    }
}

/// Whether the saved state has been read back.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RiskLoaded;

/// The actor.
pub struct RiskActor {
    book: RiskBook,
    alerts: Recipient<RaiseAlerts>,
    devices: Option<Addr<DeviceActor>>,
    db: Option<String>,
    saving: bool,
    loaded: bool,
    /// Changes handed to a save, and those a save could not write; its lock is held while
    /// writing, so that the final save at shutdown comes after any save under way.
    outbox: Arc<Mutex<Outbox>>,
}

/// See [`RiskActor::outbox`].
#[derive(Default)]
struct Outbox {
    queued: Option<Changes>,
    failed: Option<Changes>,
}

impl RiskActor {
    /// An actor for `sensor` saving to `db`, raising alerts to `alerts` and reading
    /// criticality from `devices`.
    pub fn new(
        cfg: RiskConfig,
        sensor: &str,
        db: Option<String>,
        alerts: Recipient<RaiseAlerts>,
        devices: Option<Addr<DeviceActor>>,
    ) -> Self {
        RiskActor {
            book: RiskBook::new(cfg, sensor),
            alerts,
            devices,
            db,
            saving: false,
            loaded: false,
            outbox: Arc::default(),
        }
    }

    /// Hands raised alerts to the alert stage. `do_send`, not a bounded wait: the stage also
    /// feeds this actor, so waiting on it could deadlock the two; these alerts are few (one
    /// per level crossed or stage gained).
    fn flush_alerts(&mut self) {
        let raised = self.book.take_alerts();
        if !raised.is_empty() {
            self.alerts.do_send(RaiseAlerts(raised));
        }
    }

    fn save(&mut self, ctx: &mut Context<Self>) {
        let Some(url) = self.db.clone() else {
            let _ = self.book.take_changes();
            return;
        };
        if self.saving || !self.loaded {
            return;
        }
        let changes = self.book.take_changes();
        if changes.is_empty() {
            return;
        }
        self.saving = true;
        lock(&self.outbox).queued = Some(changes);
        let (sensor, outbox) = (self.book.sensor().to_owned(), self.outbox.clone());
        let job = async move {
            tokio::task::spawn_blocking(move || {
                let mut o = lock(&outbox);
                // Empty when the final save at shutdown took it first.
                let Some(changes) = o.queued.take() else {
                    return Ok(0);
                };
                let r = write(&url, &sensor, &changes);
                if r.is_err() {
                    o.failed = Some(changes);
                }
                r
            })
            .await
        };
        ctx.spawn(job.into_actor(self).map(|res, act, _| {
            act.saving = false;
            match res {
                Ok(Ok(n)) => {
                    metrics::counter!("netmonitor_risk_rows_saved_total").increment(n as u64)
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "risk: save failed; kept for the next try");
                    if let Some(changes) = lock(&act.outbox).failed.take() {
                        act.book.unsaved(changes);
                    }
                }
                Err(e) => tracing::error!(error = %e, "risk: save task failed"),
            }
        }));
    }

    fn refresh_devices(&mut self, ctx: &mut Context<Self>) {
        let Some(devices) = self.devices.clone() else {
            return;
        };
        let ips = self.book.addresses();
        if ips.is_empty() {
            return;
        }
        let ask = devices.send(QueryDevices::new(move |book| {
            let mut m = serde_json::Map::new();
            for ip in ips {
                if let Some(d) = book.by_ip(ip) {
                    m.insert(
                        ip.to_string(),
                        serde_json::json!([d.id, book.criticality(d)]),
                    );
                }
            }
            Value::Object(m)
        }));
        ctx.spawn(ask.into_actor(self).map(|res, act, _| {
            let Ok(Value::Object(m)) = res else { return };
            let map: HashMap<IpAddr, (String, String)> = m
                .into_iter()
                .filter_map(|(k, v)| {
                    let ip = k.parse().ok()?;
                    let id = v.get(0)?.as_str()?.to_owned();
                    let crit = v.get(1)?.as_str()?.to_owned();
                    Some((ip, (id, crit)))
                })
                .collect();
            act.book.set_devices(map);
        }));
    }
}

fn lock(o: &Mutex<Outbox>) -> std::sync::MutexGuard<'_, Outbox> {
    o.lock().unwrap_or_else(|e| e.into_inner())
}

fn time(us: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

fn write(url: &str, sensor: &str, c: &Changes) -> Result<usize, netmonitor_store::StoreError> {
    let mut conn = diesel::PgConnection::establish(url)?;
    let assets: Vec<AssetRow> = c
        .assets
        .iter()
        .map(|(ip, a, s, exposure)| AssetRow {
            ip: ip.to_string(),
            score: s.score as f32,
            level: s.level.as_str().to_owned(),
            exposure: i16::from(*exposure),
            last_seen: time(a.last_us),
            doc: serde_json::to_value(a).unwrap_or_default(),
        })
        .collect();
    let chains: Vec<ChainRow> = c
        .chains
        .iter()
        .map(|ch| ChainRow {
            id: ch.id as i64,
            source_ip: ch.sources[0].to_string(),
            first_seen: time(ch.first_us),
            last_seen: time(ch.last_us),
            stages: ch.stages.len() as i16,
            score: ch.score() as f32,
            doc: serde_json::to_value(ch).unwrap_or_default(),
        })
        .collect();
    let mitre: Vec<MitreRow> = c
        .mitre
        .iter()
        .map(|(b, t, cell)| MitreRow {
            bucket: time(*b),
            technique: t.clone(),
            alerts: cell.alerts as i64,
            doc: serde_json::to_value(cell).unwrap_or_default(),
        })
        .collect();
    let history: Vec<HistoryPoint> = c
        .history
        .iter()
        .map(|h| HistoryPoint {
            ts: time(h.ts_us),
            ip: h.asset.to_string(),
            score: h.score as f32,
            level: h.level.as_str().to_owned(),
        })
        .collect();
    db::save(&mut conn, sensor, &assets, &chains, &mitre, &history)
}

type Saved = (
    Vec<(IpAddr, Asset, u8)>,
    Vec<Chain>,
    Vec<(i64, String, crate::counts::Cell)>,
);

fn read(url: &str, sensor: &str, cfg: &RiskConfig) -> Result<Saved, netmonitor_store::StoreError> {
    let mut conn = diesel::PgConnection::establish(url)?;
    let assets: Vec<(IpAddr, Asset, u8)> = db::load_assets(&mut conn, sensor)?
        .into_iter()
        .filter_map(|(ip, flags, doc)| {
            Some((
                ip.parse().ok()?,
                serde_json::from_value(doc).ok()?,
                flags as u8,
            ))
        })
        .collect();
    let newest = assets.iter().map(|a| a.1.last_us).max().unwrap_or(0);
    let chains_since = newest - (cfg.chain_window_hours * 3.6e9) as i64 * 7;
    let chains = db::load_chains(&mut conn, sensor, time(chains_since))?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let mitre_since = newest - cfg.mitre_hours as i64 * 3_600_000_000;
    let mitre = db::load_mitre(&mut conn, sensor, time(mitre_since))?
        .into_iter()
        .filter_map(|(b, t, v)| Some((b, t, serde_json::from_value(v).ok()?)))
        .collect();
    Ok((assets, chains, mitre))
}

impl Actor for RiskActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        let every = Duration::from_secs(self.book.config().save_interval_secs.max(1));
        ctx.run_interval(every, |act, ctx| act.save(ctx));
        ctx.run_interval(Duration::from_secs(DEVICE_REFRESH_SECS), |act, ctx| {
            act.refresh_devices(ctx)
        });
        if self.loaded {
            return; // restarted by the supervisor: the book is still in memory
        }
        let Some(url) = self.db.clone() else {
            self.loaded = true;
            return;
        };
        let (cfg, sensor) = (self.book.config().clone(), self.book.sensor().to_owned());
        let load =
            async move { tokio::task::spawn_blocking(move || read(&url, &sensor, &cfg)).await };
        ctx.spawn(load.into_actor(self).map(|res, act, _| {
            match res {
                Ok(Ok((assets, chains, mitre))) => {
                    tracing::info!(
                        assets = assets.len(),
                        chains = chains.len(),
                        mitre_cells = mitre.len(),
                        "risk: read back from the store"
                    );
                    act.book.restore(assets, chains, mitre);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "risk: could not read saved state; starting empty")
                }
                Err(e) => tracing::error!(error = %e, "risk: load task failed"),
            }
            act.loaded = true;
        }));
    }
}

impl Supervised for RiskActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
        self.saving = false;
    }
}

impl Handler<EventBatch> for RiskActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        let book = &mut self.book;
        contained::<Self, _>(NAME, ctx, || match msg.topic {
            Topic::Alerts => book.ingest_alerts(&msg.events),
            _ => book.ingest_events(&msg.events),
        });
        metrics::gauge!("netmonitor_risk_assets").set(self.book.len() as f64);
        metrics::gauge!("netmonitor_attack_chains").set(self.book.chains.len() as f64);
        self.flush_alerts();
    }
}

impl Handler<QueryRisk> for RiskActor {
    type Result = MessageResult<QueryRisk>;
    fn handle(&mut self, msg: QueryRisk, ctx: &mut Context<Self>) -> Self::Result {
        let book = &self.book;
        MessageResult(contained::<Self, _>(NAME, ctx, || (msg.0)(book)).unwrap_or(Value::Null))
    }
}

impl Handler<UpdateRisk> for RiskActor {
    type Result = Result<Value, String>;
    fn handle(&mut self, msg: UpdateRisk, ctx: &mut Context<Self>) -> Self::Result {
        let book = &mut self.book;
        let r = contained::<Self, _>(NAME, ctx, || (msg.0)(book))
            .unwrap_or_else(|| Err("risk actor failed while changing (it restarts; retry)".into()));
        self.flush_alerts();
        r
    }
}

impl Handler<RiskLoaded> for RiskActor {
    type Result = bool;
    fn handle(&mut self, _: RiskLoaded, _ctx: &mut Context<Self>) -> bool {
        self.loaded
    }
}

/// At shutdown and at the end of a replay: a last history snapshot at the book's clock, the
/// raised alerts handed on, and everything unsaved written now.
impl Handler<Drain> for RiskActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {
        let now = self.book.now_us();
        if now > 0 {
            self.book.snapshot(now);
        }
        self.flush_alerts();
        let Some(url) = self.db.clone() else { return };
        if !self.loaded {
            return;
        }
        // After any save under way; what it was handed or could not write goes back to the
        // book, which then hands over the newest state of all of it.
        let outbox = self.outbox.clone();
        let mut o = lock(&outbox);
        for c in [o.failed.take(), o.queued.take()].into_iter().flatten() {
            self.book.unsaved(c);
        }
        let changes = self.book.take_changes();
        if changes.is_empty() {
            return;
        }
        if let Err(e) = write(&url, self.book.sensor(), &changes) {
            tracing::warn!(error = %e, "risk: final save failed");
            self.book.unsaved(changes);
        }
    }
}

impl Handler<Ping> for RiskActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for RiskActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
