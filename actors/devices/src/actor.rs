//! The device actor: folds event batches into the device book, saves what changed every few
//! seconds in one batch (off the actor's thread; a failed save is kept and tried again), reads
//! the saved devices back at start, and answers questions about them. Supervised: a panic
//! while folding a batch restarts it with the book it had.

use crate::book::{Changes, DeviceBook};
use crate::config::DevicesConfig;
use crate::device::Device;
use crate::oui::OuiTable;
use actix::prelude::*;
use chrono::{TimeZone, Utc};
use diesel::Connection;
use netmonitor_runtime::{
    contained, injected_fault, note_restart, send_blocking, Drain, EventBatch, InjectFault, Ping,
    RaiseAlerts,
};
use netmonitor_store::devices::{
    delete_devices, load_devices, load_templates, save_devices, save_templates, DeviceRow,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NAME: &str = "devices";
/// Batches the mailbox holds; past it the bus drops (and counts) batches for this view.
const MAILBOX: usize = 64;
/// Batches held back while the saved devices are read at start; past it they are folded into
/// the book as it is (a slow database must not hold the capture's memory).
const HELD_WHILE_LOADING: usize = 1024;

/// Owns the device book.
pub struct DeviceActor {
    book: DeviceBook,
    cfg: DevicesConfig,
    /// Where deviation alerts go (the shared alert stage).
    alerts: Option<Recipient<RaiseAlerts>>,
    /// libpq connection string (none: kept in memory only).
    db: Option<String>,
    saving: bool,
    loaded: bool,
    /// Batches that arrived before the saved devices were read back, folded in after them:
    /// folded first, a known device would be learnt again from nothing and its deviations
    /// missed.
    held: Vec<EventBatch>,
    /// Ids saved and deleted by a save still under way.
    in_flight: (Vec<String>, Vec<String>),
    /// Number of the newest save written: an older save that finishes after a newer one
    /// (the final save at shutdown covers the ids of one still under way) is skipped.
    written: Arc<Mutex<u64>>,
    next_save: u64,
}

/// A read-only question about the devices, answered as JSON.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub struct QueryDevices(pub Box<dyn FnOnce(&DeviceBook) -> serde_json::Value + Send>);

impl QueryDevices {
    /// Wraps a closure.
    pub fn new(f: impl FnOnce(&DeviceBook) -> serde_json::Value + Send + 'static) -> Self {
        QueryDevices(Box::new(f))
    }
}

/// A change to the book (assignments, templates, touches), answered as JSON or refused with a
/// message; what it changes is saved with the next batch.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, String>")]
pub struct UpdateDevices(pub Box<BookChange>);

/// What [`UpdateDevices`] runs.
pub type BookChange = dyn FnOnce(&mut DeviceBook) -> Result<serde_json::Value, String> + Send;

impl UpdateDevices {
    /// Wraps a closure.
    pub fn new(
        f: impl FnOnce(&mut DeviceBook) -> Result<serde_json::Value, String> + Send + 'static,
    ) -> Self {
        UpdateDevices(Box::new(f))
    }
}

/// Whether the saved devices have been read back (tests and start-up wait on it).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct DevicesLoaded;

impl DeviceActor {
    /// An actor with these settings saving to `db` (a libpq connection string) and handing
    /// deviation alerts to `alerts`.
    pub fn new(
        cfg: DevicesConfig,
        db: Option<String>,
        alerts: Option<Recipient<RaiseAlerts>>,
    ) -> Self {
        let oui = match &cfg.oui_file {
            Some(path) => match std::fs::read(path).and_then(|b| OuiTable::from_gzip(&b)) {
                Ok(t) if !t.is_empty() => t,
                Ok(_) | Err(_) => {
                    tracing::warn!(path = %path.display(), "devices: MAC vendor file unreadable or empty; using the built-in table");
                    OuiTable::built_in()
                }
            },
            None => OuiTable::built_in(),
        };
        tracing::info!(assignments = oui.len(), source = %oui.source, "devices: MAC vendor table");
        DeviceActor {
            book: DeviceBook::new(cfg.local_networks.clone(), oui)
                .with_learning(cfg.learning(), cfg.deviation_alerts),
            cfg,
            alerts,
            db,
            saving: false,
            loaded: false,
            held: Vec::new(),
            in_flight: (Vec::new(), Vec::new()),
            written: Arc::new(Mutex::new(0)),
            next_save: 0,
        }
    }

    /// Saves what changed, off this thread.
    fn save(&mut self, ctx: &mut Context<Self>) {
        let Some(db) = self.db.clone() else {
            self.book.take_changes();
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
        self.in_flight = (
            changes.upserts.iter().map(|d| d.id.clone()).collect(),
            changes.deletes.clone(),
        );
        self.next_save += 1;
        let (seq, written) = (self.next_save, self.written.clone());
        let job = async move {
            tokio::task::spawn_blocking(move || {
                let r = write(&db, &changes, seq, &written);
                (changes, r)
            })
            .await
        };
        ctx.spawn(job.into_actor(self).map(|res, act, _ctx| {
            act.saving = false;
            act.in_flight = Default::default();
            match res {
                Ok((_, Ok(n))) => {
                    metrics::counter!("netmonitor_devices_saved_total").increment(n as u64);
                }
                Ok((changes, Err(e))) => {
                    tracing::warn!(error = %e, devices = changes.upserts.len(), "devices: save failed; kept for the next try");
                    act.book.unsaved(changes);
                }
                Err(e) => tracing::error!(error = %e, "devices: save task failed"),
            }
        }));
    }
}

/// Writes changes in one connection, as save number `seq` (skipped if a newer one was written).
fn write(
    db: &str,
    c: &Changes,
    seq: u64,
    written: &Mutex<u64>,
) -> Result<usize, netmonitor_store::StoreError> {
    let mut last = written.lock().unwrap_or_else(|e| e.into_inner());
    if *last > seq {
        return Ok(0);
    }
    *last = seq;
    let mut conn = diesel::PgConnection::establish(db)?;
    let rows: Vec<DeviceRow> = c.upserts.iter().map(row).collect();
    let n = save_devices(&mut conn, &rows)?;
    if !c.deletes.is_empty() {
        delete_devices(&mut conn, &c.deletes)?;
    }
    if !c.templates.is_empty() {
        let docs: Vec<(String, serde_json::Value)> = c
            .templates
            .iter()
            .map(|t| (t.id.clone(), serde_json::to_value(t).unwrap_or_default()))
            .collect();
        save_templates(&mut conn, &docs)?;
    }
    Ok(n)
}

fn row(d: &Device) -> DeviceRow {
    let time = |us: i64| Utc.timestamp_micros(us).single().unwrap_or_default();
    DeviceRow {
        id: d.id.clone(),
        mac: d.mac.clone(),
        vendor: d.vendor.clone(),
        ips: d.ips.iter().cloned().collect(),
        hostnames: d.hostnames.keys().cloned().collect(),
        first_seen: time(d.first_seen_us),
        last_seen: time(d.last_seen_us),
        bytes_out: i64::try_from(d.bytes_out).unwrap_or(i64::MAX),
        bytes_in: i64::try_from(d.bytes_in).unwrap_or(i64::MAX),
        doc: serde_json::to_value(d).unwrap_or_default(),
    }
}

/// Saved devices and custom templates.
type Saved = (Vec<Device>, Vec<crate::Template>);

fn read(db: &str) -> Result<Saved, netmonitor_store::StoreError> {
    let mut conn = diesel::PgConnection::establish(db)?;
    let devices = load_devices(&mut conn)?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let templates = load_templates(&mut conn)?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    Ok((devices, templates))
}

impl Actor for DeviceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(
            Duration::from_secs(self.cfg.save_interval_secs.max(1)),
            |act, ctx| act.save(ctx),
        );
        if self.loaded {
            return; // restarted by the supervisor: the book is still in memory
        }
        let Some(db) = self.db.clone() else {
            self.loaded = true;
            return;
        };
        let load = async move { tokio::task::spawn_blocking(move || read(&db)).await };
        ctx.spawn(load.into_actor(self).map(|res, act, ctx| {
            match res {
                Ok(Ok((devices, templates))) => {
                    tracing::info!(devices = devices.len(), templates = templates.len(), "devices: read back from the store");
                    act.book.restore_templates(templates);
                    act.book.restore(devices);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "devices: could not read saved devices; starting empty (new ones are still saved)"),
                Err(e) => tracing::error!(error = %e, "devices: load task failed"),
            }
            act.loaded = true;
            for batch in std::mem::take(&mut act.held) {
                act.ingest(&batch, ctx);
            }
        }));
    }
}

impl Supervised for DeviceActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
        self.saving = false;
    }
}

impl Handler<EventBatch> for DeviceActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        if !self.loaded && self.held.len() < HELD_WHILE_LOADING {
            self.held.push(msg);
            return;
        }
        self.ingest(&msg, ctx);
    }
}

impl DeviceActor {
    /// Folds one batch into the book and raises the deviation alerts it caused.
    fn ingest(&mut self, msg: &EventBatch, ctx: &mut Context<Self>) {
        let book = &mut self.book;
        contained::<Self, _>(NAME, ctx, || book.ingest(&msg.events));
        metrics::gauge!("netmonitor_devices").set(self.book.len() as f64);
        let raised = self.book.take_alerts();
        if let Some(to) = self.alerts.as_ref().filter(|_| !raised.is_empty()) {
            if !send_blocking(to, RaiseAlerts(raised)) {
                tracing::error!("alert stage gone: device deviation alerts lost");
            }
        }
    }
}

impl Handler<QueryDevices> for DeviceActor {
    type Result = MessageResult<QueryDevices>;
    fn handle(&mut self, msg: QueryDevices, ctx: &mut Context<Self>) -> Self::Result {
        let book = &self.book;
        MessageResult(
            contained::<Self, _>(NAME, ctx, || (msg.0)(book)).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Handler<UpdateDevices> for DeviceActor {
    type Result = Result<serde_json::Value, String>;
    fn handle(&mut self, msg: UpdateDevices, ctx: &mut Context<Self>) -> Self::Result {
        let book = &mut self.book;
        contained::<Self, _>(NAME, ctx, || (msg.0)(book)).unwrap_or_else(|| {
            Err("device actor failed while changing (it restarts; retry)".into())
        })
    }
}

impl Handler<DevicesLoaded> for DeviceActor {
    type Result = bool;
    fn handle(&mut self, _: DevicesLoaded, _ctx: &mut Context<Self>) -> bool {
        self.loaded
    }
}

/// At shutdown (and at the end of a replay) everything not yet saved is written now.
impl Handler<Drain> for DeviceActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {
        let Some(db) = self.db.clone() else { return };
        if !self.loaded {
            return;
        }
        let mut changes = self.book.take_changes();
        // A save still under way may finish after this one: write its devices here too (as
        // they are now) and let it be skipped.
        let (ids, deletes) = std::mem::take(&mut self.in_flight);
        for id in ids {
            if let Some(d) = self.book.get(&id) {
                if !changes.upserts.iter().any(|u| u.id == id) {
                    changes.upserts.push(d.clone());
                }
            }
        }
        changes.deletes.extend(deletes);
        if self.saving {
            changes.templates = self
                .book
                .templates()
                .iter()
                .filter(|t| !t.built_in)
                .cloned()
                .collect();
        }
        if changes.is_empty() {
            return;
        }
        self.next_save += 1;
        if let Err(e) = write(&db, &changes, self.next_save, &self.written) {
            tracing::warn!(error = %e, "devices: final save failed");
            self.book.unsaved(changes);
        }
    }
}

impl Handler<Ping> for DeviceActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for DeviceActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
