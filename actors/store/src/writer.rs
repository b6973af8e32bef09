//! The store writer: one thread that turns batches of events into `COPY` statements, and spools
//! to disk while PostgreSQL is away. Producers block when its bounded queue is full
//! (back-pressure), and an outage moves batches to disk instead of memory.
//!
//! Failures are told apart by what the database does next. When the connection is gone (or
//! does not answer a ping), it is an outage: the batch is spooled and retried later, in order.
//! When the database still answers, it refused the data: the batch is tried once more (a
//! transient conflict passes), then split in halves until the refused rows are isolated; the
//! others are written and the refused ones go to the dead-letter directory with the error. A
//! row can therefore never stop the rows behind it.
//!
//! It uses diesel's synchronous `PgConnection` because `COPY ... FROM STDIN` (binary) is the
//! fastest path into PostgreSQL and diesel-async does not offer it; query paths use the async pool.

use crate::audit::AuditRecord;
use crate::deadletter::DeadLetters;
use crate::partitions::{PartitionKeeper, Retention};
use crate::rollup::{SpanRoller, TalkerSums};
use crate::rows::{TableCopies, SESSION_SETUP};
use crate::spool::{Oldest, Spool};
use crate::tls_sums::TlsSums;
use crate::StoreError;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
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
    /// Most bytes the spool may hold; past it the oldest batches are dropped (counted).
    pub spool_max_bytes: u64,
    /// Where rows PostgreSQL refused for their content go (default: `deadletter` beside the
    /// spool directory).
    pub dead_letter_dir: PathBuf,
    /// How often to retry the database during an outage.
    pub retry_interval_ms: u64,
    /// Days kept per event table, and partitions made ahead.
    pub retention: Retention,
}

/// The spool's default bound: a day of a busy sensor (about 500 events a second at the ~390
/// bytes a spooled event takes) fits.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 16 << 30;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sensor_name: "netmonitor".into(),
            batch_size: 20000,
            flush_interval_ms: 250,
            queue_capacity: 256,
            spool_dir: PathBuf::new(),
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            dead_letter_dir: PathBuf::new(),
            retry_interval_ms: 1000,
            retention: Retention::default(),
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
        if self.spool_max_bytes < 1 << 20 {
            return Err("store.spool_max_bytes must be at least 1048576 (1 MiB)".into());
        }
        self.retention.validate()
    }

    /// The dead-letter directory, defaulting to `deadletter` beside the spool.
    pub fn dead_letter_dir(&self) -> PathBuf {
        if self.dead_letter_dir.as_os_str().is_empty() {
            self.spool_dir.with_file_name("deadletter")
        } else {
            self.dead_letter_dir.clone()
        }
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
    /// Rows PostgreSQL refused for their content (now in the dead-letter directory).
    pub rows_rejected: AtomicU64,
    /// Spooled rows dropped to keep the spool within its bound.
    pub rows_dropped: AtomicU64,
    /// Spool files that could not be read back and were moved aside.
    pub spool_corrupt_files: AtomicU64,
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
        let spool = Spool::open(&config.spool_dir, config.spool_max_bytes)?;
        let dead_letters = DeadLetters::open(&config.dead_letter_dir())?;
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
            dead_letters,
            stats: stats.clone(),
            next_attempt: Instant::now(),
            copies: TableCopies::default(),
            partitions: PartitionKeeper::default(),
            next_upkeep: Instant::now(),
            talkers: TalkerSums::default(),
            tls: TlsSums::default(),
            spans: SpanRoller::default(),
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
    dead_letters: DeadLetters,
    stats: Arc<StoreStats>,
    next_attempt: Instant,
    /// Encoding buffers, kept between batches.
    copies: TableCopies,
    /// Which days have partitions; creates them ahead and applies retention.
    partitions: PartitionKeeper,
    /// When partitions are next made ahead and expired ones dropped.
    next_upkeep: Instant,
    /// Committed flows summed for `talker_rollup`, written every few seconds.
    talkers: TalkerSums,
    /// Committed TLS sessions counted for `tls_rollup` and `tls_distinct`, written every few
    /// seconds.
    tls: TlsSums,
    /// Moves the last-day and last-week sums along as the hours turn.
    spans: SpanRoller,
}

/// How often partitions are made ahead and retention applied.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// How a write ended when it did not end well.
enum Failure {
    /// The database is unreachable: nothing from `from` on (index into the items) was written.
    Outage { from: usize },
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
                    self.write_rollups(true);
                    let _ = ack.send(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.persist(&buf);
                    buf.clear();
                    oldest = None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.persist(&buf);
                    self.write_rollups(true);
                    break;
                }
            }
            self.write_rollups(false);
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
        match self.write_all(batch) {
            Ok(n) => self.count_written(n, false),
            Err(Failure::Outage { from }) => self.spool_batch(&batch[from..]),
        }
    }

    /// Replays spooled batches oldest first; false when the database is still unavailable.
    fn drain_spool(&mut self) -> bool {
        if Instant::now() < self.next_attempt && self.conn.is_none() {
            return false;
        }
        while !self.spool.is_empty() {
            let batch = match self.spool.peek_oldest() {
                Ok(Oldest::Batch(b)) => b,
                Ok(Oldest::Empty) => break,
                Ok(Oldest::Corrupt { path, error }) => {
                    tracing::error!(file = %path.display(), %error, "unreadable spool file moved aside; replaying the rest");
                    self.stats
                        .spool_corrupt_files
                        .fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("netmonitor_store_spool_corrupt_files_total").increment(1);
                    self.publish_spool_size();
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool; it stays on disk");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "spool_read").increment(1);
                    return false;
                }
            };
            let result = self.write_all(&batch);
            let done = match result {
                Ok(n) => {
                    self.count_written(n, true);
                    self.spool.pop_oldest()
                }
                Err(Failure::Outage { from }) => {
                    let kept = if from > 0 {
                        self.count_written(from, true);
                        self.spool.replace_oldest(&batch[from..])
                    } else {
                        Ok(())
                    };
                    if let Err(e) = kept {
                        tracing::error!(error = %e, "cannot rewrite a partly replayed spool batch");
                    }
                    self.publish_spool_size();
                    return false;
                }
            };
            if let Err(e) = done {
                tracing::error!(error = %e, "cannot remove a replayed spool batch");
            }
            self.publish_spool_size();
        }
        tracing::info!("store spool drained");
        true
    }

    fn count_written(&self, n: usize, replayed: bool) {
        let n = n as u64;
        self.stats.rows_written.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("netmonitor_store_rows_written_total").increment(n);
        if replayed {
            self.stats.rows_replayed.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("netmonitor_store_rows_replayed_total").increment(n);
        }
    }

    fn publish_spool_size(&self) {
        let pending = self.spool.pending() as u64;
        self.stats.spool_batches.store(pending, Ordering::Relaxed);
        metrics::gauge!("netmonitor_store_spool_batches").set(pending as f64);
        metrics::gauge!("netmonitor_store_spool_bytes").set(self.spool.bytes() as f64);
    }

    fn spool_batch(&mut self, batch: &[StoreItem]) {
        if batch.is_empty() {
            return;
        }
        // The spool is the last line of defence: retry until the disk takes it.
        let dropped = loop {
            match self.spool.append(batch) {
                Ok(d) => break d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot write spool batch; retrying");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "spool_write").increment(1);
                    std::thread::sleep(Duration::from_millis(self.config.retry_interval_ms));
                }
            }
        };
        let n = batch.len() as u64;
        self.stats.rows_spooled.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("netmonitor_store_rows_spooled_total").increment(n);
        if dropped.rows > 0 {
            tracing::error!(
                batches = dropped.batches,
                rows = dropped.rows,
                max_bytes = self.config.spool_max_bytes,
                "spool full: dropped its oldest batches"
            );
            self.stats
                .rows_dropped
                .fetch_add(dropped.rows, Ordering::Relaxed);
            metrics::counter!("netmonitor_store_spool_dropped_rows_total").increment(dropped.rows);
        }
        self.publish_spool_size();
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

    /// Connects unless connected, and prepares the session.
    fn ensure_connected(&mut self) -> Result<&mut PgConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let mut conn = PgConnection::establish(&self.conninfo)?;
                conn.batch_execute(SESSION_SETUP)?;
                if !self.stats.database_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("database connection established");
                }
                metrics::gauge!("netmonitor_store_database_up").set(1.0);
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// True when `e` means the database is out of reach rather than that it refused the data:
    /// a failed connect, a connection diesel saw close, or one that no longer answers a ping.
    fn is_outage(&mut self, e: &StoreError) -> bool {
        let closed = match e {
            StoreError::Connect(_) => true,
            StoreError::Query(DieselError::DatabaseError(kind, _)) => matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            ),
            StoreError::Query(DieselError::BrokenTransactionManager) => true,
            _ => false,
        };
        closed
            || self
                .conn
                .as_mut()
                .is_none_or(|c| c.batch_execute("SELECT 1").is_err())
    }

    /// Writes `items`; rows the database refuses are isolated and dead-lettered. Returns the
    /// rows written, or where an outage stopped the work.
    fn write_all(&mut self, items: &[StoreItem]) -> Result<usize, Failure> {
        let err = match self.write(items) {
            Ok(n) => return Ok(n),
            Err(e) => e,
        };
        if self.is_outage(&err) {
            self.database_failed(&err);
            return Err(Failure::Outage { from: 0 });
        }
        // Refused while the database answers: once more in case it was transient, then isolate.
        let err = match self.write(items) {
            Ok(n) => return Ok(n),
            Err(e) if self.is_outage(&e) => {
                self.database_failed(&e);
                return Err(Failure::Outage { from: 0 });
            }
            Err(e) => e,
        };
        tracing::warn!(error = %err, rows = items.len(), "database refused a batch; isolating the refused rows");
        let mut written = 0;
        let mut rejected = Vec::new();
        let outcome = self.isolate(items, 0, err, &mut written, &mut rejected);
        self.dead_letter(rejected, written);
        outcome.map(|()| written).map_err(|from| {
            // the rows before `from` are settled: written or dead-lettered
            Failure::Outage { from }
        })
    }

    /// Splits `items` (which failed with `err`) until the refused rows stand alone; `offset` is
    /// their index in the batch. On an outage, returns the index from which nothing is settled.
    fn isolate(
        &mut self,
        items: &[StoreItem],
        offset: usize,
        err: StoreError,
        written: &mut usize,
        rejected: &mut Vec<(StoreItem, String)>,
    ) -> Result<(), usize> {
        if let [one] = items {
            rejected.push((one.clone(), err.to_string()));
            return Ok(());
        }
        let mid = items.len() / 2;
        for (part, at) in [(&items[..mid], offset), (&items[mid..], offset + mid)] {
            match self.write(part) {
                Ok(n) => *written += n,
                Err(e) if self.is_outage(&e) => {
                    self.database_failed(&e);
                    return Err(at);
                }
                Err(e) => self.isolate(part, at, e, written, rejected)?,
            }
        }
        Ok(())
    }

    fn dead_letter(&mut self, rejected: Vec<(StoreItem, String)>, written: usize) {
        if rejected.is_empty() {
            return;
        }
        let n = rejected.len() as u64;
        if written == 0 {
            tracing::error!(rows = n, error = %rejected[0].1, "the database refused every row of a batch; this looks like a database fault, not bad data");
        }
        self.stats.rows_rejected.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("netmonitor_store_rows_rejected_total").increment(n);
        // Like the spool, the dead-letter file is the last line of defence: retry until written.
        loop {
            match self.dead_letters.write(&rejected) {
                Ok(path) => {
                    tracing::error!(rows = n, file = %path.display(), error = %rejected[0].1, "rows refused by the database were moved to the dead-letter file");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, dir = %self.dead_letters.dir().display(), "cannot write the dead-letter file; retrying");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "dead_letter_write").increment(1);
                    std::thread::sleep(Duration::from_millis(self.config.retry_interval_ms));
                }
            }
        }
    }

    /// Hourly: partitions for today and the days ahead, and retention. A failure is logged and
    /// retried at the next batch; it never holds up the rows.
    fn upkeep(&mut self) {
        if Instant::now() < self.next_upkeep {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match self.partitions.upkeep(conn, &self.config.retention) {
            Ok(_) => self.next_upkeep = Instant::now() + UPKEEP_INTERVAL,
            Err(e) => {
                tracing::warn!(error = %e, "partition upkeep failed; retrying with the next batch");
                metrics::counter!("netmonitor_store_errors_total", "error_type" => "partition_upkeep").increment(1);
            }
        }
    }

    /// Writes the in-memory rollup sums when due (or now, with `force`), rolls the spans when
    /// the hour has turned, and folds past hours into the daily rollups then, after `force`
    /// and while a backlog is left. A failure keeps the sums for the next attempt; an outage is
    /// noticed by the next batch.
    fn write_rollups(&mut self, force: bool) {
        if let Some(conn) = self.conn.as_mut() {
            let sensor = &self.config.sensor_name;
            // each in a transaction of its own, the talkers first
            for (rollup, flushed) in [
                (
                    "talker",
                    (self.talkers.due() || force).then(|| self.talkers.flush(conn, sensor)),
                ),
                (
                    "TLS",
                    (self.tls.due() || force).then(|| self.tls.flush(conn, sensor)),
                ),
            ] {
                if let Some(Err(e)) = flushed {
                    tracing::warn!(error = %e, rollup, "rollup sums not written; retrying");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "rollup")
                        .increment(1);
                }
            }
        }
        if force {
            self.spans.fold_soon();
        }
        // the spans move with the clock, traffic or not
        if !self.spans.due() {
            return;
        }
        if self.conn.is_none() && self.ensure_connected().is_err() {
            self.spans.postpone();
            return;
        }
        if let Some(conn) = self.conn.as_mut() {
            if let Err(e) = self.spans.roll(conn) {
                tracing::warn!(error = %e, "rolling sums not moved on; retrying in a minute");
                metrics::counter!("netmonitor_store_errors_total", "error_type" => "rollup")
                    .increment(1);
            }
        }
    }

    /// Writes one batch in one transaction; returns the number of items.
    fn write(&mut self, batch: &[StoreItem]) -> Result<usize, StoreError> {
        let started = Instant::now();
        let mut copies = std::mem::take(&mut self.copies);
        copies.clear();
        for item in batch {
            copies.push(&self.config.sensor_name, item);
        }
        let result = self.ensure_connected().map(|_| ()).and_then(|()| {
            self.upkeep();
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| StoreError::Invalid("not connected".into()))?;
            // a recount that fails never holds up the rows: it is tried again with the next
            // batch, whose rows it will count too
            let sensor = &self.config.sensor_name;
            for (rollup, recovered) in [
                ("talker", self.talkers.recover(conn, sensor)),
                ("TLS", self.tls.recover(conn, sensor)),
            ] {
                if let Err(e) = recovered {
                    tracing::warn!(error = %e, rollup, "rows above the rollup's watermark not counted yet; retrying with the next batch");
                    metrics::counter!("netmonitor_store_errors_total", "error_type" => "rollup")
                        .increment(1);
                }
            }
            self.partitions.ensure(conn, copies.days())?;
            Ok(conn.transaction::<_, DieselError, _>(|c| copies.write(c))?)
        });
        self.copies = copies;
        if result.is_err() {
            self.partitions.forget();
        }
        result?;
        self.talkers.add(batch);
        self.tls.add(batch);
        metrics::histogram!("netmonitor_store_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(batch.len())
    }
}
