//! The store writer: one thread that turns batches of events into `COPY` statements, and spools
//! to disk while PostgreSQL is away. It never drops an item: producers block when its bounded
//! queue is full (back-pressure), and an outage moves batches to disk instead of memory.
//!
//! It uses diesel's synchronous `PgConnection` because `COPY ... FROM STDIN` (binary) is the
//! fastest path into PostgreSQL and diesel-async does not offer it; query paths use the async pool.

use crate::audit::{copy_audit, AuditRecord};
use crate::rows::RowBatch;
use crate::schema::*;
use crate::spool::Spool;
use crate::StoreError;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use diesel::prelude::*;
use diesel::upsert::excluded;
use netmonitor_common::Event;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One thing to persist.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum StoreItem {
    /// A sensor event (flow, tls, krb5, alert, …).
    Event(Event),
    /// An MCP audit record.
    Audit(AuditRecord),
}

/// Writer settings (`[store]` in the configuration).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Name of this sensor, stored with every row.
    pub sensor_name: String,
    /// Rows per `COPY` batch.
    pub batch_size: usize,
    /// Longest time an item waits in memory before it is written.
    pub flush_interval_ms: u64,
    /// Batches the queue holds before producers block.
    pub queue_capacity: usize,
    /// Where batches go while the database is down (default: `<data_dir>/spool`).
    pub spool_dir: PathBuf,
    /// How often to retry the database during an outage.
    pub retry_interval_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sensor_name: "netmonitor".into(),
            batch_size: 20000,
            flush_interval_ms: 250,
            queue_capacity: 256,
            spool_dir: PathBuf::new(),
            retry_interval_ms: 1000,
        }
    }
}

impl StoreConfig {
    /// Checks the values, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err("store.batch_size must be between 1 and 100000".into());
        }
        if self.queue_capacity == 0 {
            return Err("store.queue_capacity must be at least 1".into());
        }
        if self.flush_interval_ms == 0 {
            return Err("store.flush_interval_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// Live figures of the writer, for /health, /metrics and tests.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Rows written to PostgreSQL (including replayed ones).
    pub rows_written: AtomicU64,
    /// Rows written to the spool.
    pub rows_spooled: AtomicU64,
    /// Rows replayed from the spool into PostgreSQL.
    pub rows_replayed: AtomicU64,
    /// Batches currently on disk.
    pub spool_batches: AtomicU64,
    /// Whether the last attempt to reach PostgreSQL succeeded.
    pub database_up: AtomicBool,
    /// The last database error, for operators.
    pub last_error: Mutex<Option<String>>,
}

enum Msg {
    Items(Vec<StoreItem>),
    Flush(Sender<()>),
}

/// The producers' side of the writer.
pub struct StoreHandle {
    tx: Option<Sender<Msg>>,
    join: Option<JoinHandle<()>>,
    stats: Arc<StoreStats>,
}

impl StoreHandle {
    /// Starts the writer thread for the database at `conninfo`.
    pub fn spawn(conninfo: String, config: StoreConfig) -> Result<Self, StoreError> {
        config.validate().map_err(StoreError::Invalid)?;
        let spool = Spool::open(&config.spool_dir)?;
        let stats = Arc::new(StoreStats::default());
        stats
            .spool_batches
            .store(spool.pending() as u64, Ordering::Relaxed);
        let (tx, rx) = bounded(config.queue_capacity);
        let mut writer = Writer {
            conninfo,
            config,
            conn: None,
            spool,
            stats: stats.clone(),
            next_attempt: Instant::now(),
            copy_buf: Vec::new(),
        };
        let join = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(StoreHandle {
            tx: Some(tx),
            join: Some(join),
            stats,
        })
    }

    /// Queues items; blocks while the queue is full (back-pressure, never loss).
    pub fn send(&self, items: Vec<StoreItem>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| StoreError::Invalid("store closed".into()))?;
        metrics::gauge!("netmonitor_store_queue_depth").set(tx.len() as f64);
        tx.send(Msg::Items(items))
            .map_err(|_| StoreError::Invalid("store writer stopped".into()))
    }

    /// Queues events.
    pub fn send_events(&self, events: impl IntoIterator<Item = Event>) -> Result<(), StoreError> {
        self.send(events.into_iter().map(StoreItem::Event).collect())
    }

    /// Returns once everything queued before the call is in PostgreSQL or in the spool.
    pub fn flush(&self) -> Result<(), StoreError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| StoreError::Invalid("store closed".into()))?;
        let (ack_tx, ack_rx) = bounded(1);
        tx.send(Msg::Flush(ack_tx))
            .map_err(|_| StoreError::Invalid("store writer stopped".into()))?;
        ack_rx
            .recv()
            .map_err(|_| StoreError::Invalid("store writer stopped".into()))
    }

    /// The writer's live figures.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.stats.clone()
    }

    /// Items waiting in the queue (batches).
    pub fn queue_depth(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.len())
    }

    /// Drains the queue, writes (or spools) the rest and stops the thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Writer {
    conninfo: String,
    config: StoreConfig,
    conn: Option<PgConnection>,
    spool: Spool,
    stats: Arc<StoreStats>,
    next_attempt: Instant,
    /// Encoding buffer for audit `COPY`s, kept between batches.
    copy_buf: Vec<u8>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Msg>) {
        let interval = Duration::from_millis(self.config.flush_interval_ms);
        // one buffer for the writer's life: batches are written from it and it is cleared, so
        // its pages are not faulted in afresh for every batch
        let mut buf: Vec<StoreItem> = Vec::with_capacity(self.config.batch_size);
        let mut oldest: Option<Instant> = None;
        loop {
            let wait = oldest.map_or(interval, |t| interval.saturating_sub(t.elapsed()));
            match rx.recv_timeout(wait) {
                Ok(Msg::Items(items)) => {
                    oldest.get_or_insert_with(Instant::now);
                    buf.extend(items);
                    while buf.len() >= self.config.batch_size {
                        self.persist(&buf[..self.config.batch_size]);
                        buf.drain(..self.config.batch_size);
                    }
                }
                Ok(Msg::Flush(ack)) => {
                    self.persist(&buf);
                    buf.clear();
                    oldest = None;
                    let _ = ack.send(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.persist(&buf);
                    buf.clear();
                    oldest = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.persist(&buf);
                    break;
                }
            }
        }
    }

    /// Writes a batch, draining the spool first so order is kept; spools it when the database
    /// cannot take it.
    fn persist(&mut self, batch: &[StoreItem]) {
        if !self.spool.is_empty() && !self.drain_spool() {
            self.spool_batch(batch);
            return;
        }
        if batch.is_empty() {
            return;
        }
        if Instant::now() < self.next_attempt && self.conn.is_none() {
            self.spool_batch(batch);
            return;
        }
        match self.write(batch) {
            Ok(n) => {
                self.stats
                    .rows_written
                    .fetch_add(n as u64, Ordering::Relaxed);
                metrics::counter!("netmonitor_store_rows_written_total").increment(n as u64);
            }
            Err(e) => {
                self.database_failed(&e);
                self.spool_batch(batch);
            }
        }
    }

    /// Replays spooled batches oldest first; false when the database is still unavailable.
    fn drain_spool(&mut self) -> bool {
        if Instant::now() < self.next_attempt && self.conn.is_none() {
            return false;
        }
        while !self.spool.is_empty() {
            let batch = match self.spool.peek_oldest() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable spool batch; it stays on disk for inspection");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "spool_read").increment(1);
                    return false;
                }
            };
            match self.write(&batch) {
                Ok(n) => {
                    if let Err(e) = self.spool.pop_oldest() {
                        tracing::error!(error = %e, "cannot remove replayed spool batch");
                    }
                    self.stats
                        .rows_written
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.stats
                        .rows_replayed
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.stats
                        .spool_batches
                        .store(self.spool.pending() as u64, Ordering::Relaxed);
                    metrics::counter!("netmonitor_store_rows_written_total").increment(n as u64);
                    metrics::counter!("netmonitor_store_rows_replayed_total").increment(n as u64);
                    metrics::gauge!("netmonitor_store_spool_batches")
                        .set(self.spool.pending() as f64);
                }
                Err(e) => {
                    self.database_failed(&e);
                    return false;
                }
            }
        }
        tracing::info!("store spool drained");
        true
    }

    fn spool_batch(&mut self, batch: &[StoreItem]) {
        if batch.is_empty() {
            return;
        }
        // The spool is the last line of defence: retry until the disk takes it.
        loop {
            match self.spool.append(batch) {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot write spool batch; retrying");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "spool_write").increment(1);
                    std::thread::sleep(Duration::from_millis(self.config.retry_interval_ms));
                }
            }
        }
        let n = batch.len() as u64;
        self.stats.rows_spooled.fetch_add(n, Ordering::Relaxed);
        self.stats
            .spool_batches
            .store(self.spool.pending() as u64, Ordering::Relaxed);
        metrics::counter!("netmonitor_store_rows_spooled_total").increment(n);
        metrics::gauge!("netmonitor_store_spool_batches").set(self.spool.pending() as f64);
    }

    fn database_failed(&mut self, e: &StoreError) {
        if self.stats.database_up.swap(false, Ordering::Relaxed) || self.conn.is_some() {
            tracing::warn!(error = %e, "database unavailable; spooling to disk");
        }
        self.conn = None;
        self.next_attempt = Instant::now() + Duration::from_millis(self.config.retry_interval_ms);
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        metrics::gauge!("netmonitor_store_database_up").set(0.0);
        metrics::counter!("netmonitor_store_errors_total", "error_type" => "database").increment(1);
    }

    /// Connects unless connected.
    fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if self.conn.is_none() {
            let conn = PgConnection::establish(&self.conninfo)?;
            if !self.stats.database_up.swap(true, Ordering::Relaxed) {
                tracing::info!("database connection established");
            }
            metrics::gauge!("netmonitor_store_database_up").set(1.0);
            self.conn = Some(conn);
        }
        Ok(())
    }

    /// Writes one batch in one transaction; returns the number of items.
    fn write(&mut self, batch: &[StoreItem]) -> Result<usize, StoreError> {
        let started = Instant::now();
        let sensor = self.config.sensor_name.clone();
        let mut rows = RowBatch::default();
        let mut audits = Vec::new();
        for item in batch {
            match item {
                StoreItem::Event(e) => rows.push(&sensor, e),
                StoreItem::Audit(a) => audits.push(a),
            }
        }
        // One row per certificate fingerprint per batch: ON CONFLICT cannot touch a row twice.
        rows.certs.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        rows.certs.dedup_by(|a, b| a.fingerprint == b.fingerprint);
        self.ensure_connected()?;
        let copy_buf = &mut self.copy_buf;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Invalid("no connection".into()))?;
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            if !rows.flows.is_empty() {
                diesel::copy_from(flows::table)
                    .from_insertable(&rows.flows)
                    .execute(c)?;
            }
            if !rows.alerts.is_empty() {
                diesel::copy_from(alerts::table)
                    .from_insertable(&rows.alerts)
                    .execute(c)?;
            }
            if !rows.tls.is_empty() {
                diesel::copy_from(tls_sessions::table)
                    .from_insertable(&rows.tls)
                    .execute(c)?;
            }
            for chunk in rows.certs.chunks(1000) {
                diesel::insert_into(certificates::table)
                    .values(chunk)
                    .on_conflict(certificates::fingerprint)
                    .do_update()
                    .set(certificates::last_seen.eq(excluded(certificates::last_seen)))
                    .execute(c)?;
            }
            if !rows.krb.is_empty() {
                diesel::copy_from(kerberos_events::table)
                    .from_insertable(&rows.krb)
                    .execute(c)?;
            }
            if !rows.app.is_empty() {
                diesel::copy_from(app_events::table)
                    .from_insertable(&rows.app)
                    .execute(c)?;
            }
            if !audits.is_empty() {
                copy_audit(c, audits.iter().copied(), copy_buf)?;
            }
            Ok(())
        })?;
        metrics::histogram!("netmonitor_store_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(batch.len())
    }
}
