//! The talker rollup (bytes and flows per hour or day, sensor and address), summed in memory by
//! the store writer and added to `talker_rollup` every few seconds, not per batch: a per-batch
//! upsert of every address a batch touches costs about as much as the batch itself. The daily
//! tables of every rollup are filled from the hourly ones by the writer, a few hours at a time
//! ([`SpanRoller`]).
//!
//! Nothing is counted twice or lost across a crash: sums are added, in one transaction with
//! the sensor's watermark (the highest flow id they cover), only after their flows committed;
//! at start the writer adds whatever flows lie above the watermark (`netmonitor_rollup_flows`).
//! The TLS counts ([`crate::tls_sums`]) share this bookkeeping ([`Pending`]).

use crate::copy::{storable_us, CopyBuf};
use crate::rows::{clamp_u64, copy_into};
use crate::writer::StoreItem;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use netmonitor_common::EventKind;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long sums wait in memory: summaries read whole hours, the current one too, from the
/// rollups, which lag the rows by this much while the database takes the sums (a failed write
/// is retried). Sums are also written as soon as the clock passes an hour boundary.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Sums (addresses or values × hours) held before a flush is forced.
const MAX_CELLS: usize = 200_000;
const HOUR_US: i64 = 3_600_000_000;

/// The hour (microseconds since the Unix epoch) a row stamped `unix_us` is counted in, as the
/// row stores its time: two times past what PostgreSQL takes fall in the same hour.
pub(crate) fn hour_of(unix_us: i64) -> i64 {
    storable_us(unix_us).div_euclid(HOUR_US) * HOUR_US
}

#[derive(Default, Clone, Copy, Debug)]
struct Cell {
    sent: i64,
    received: i64,
    as_client: i64,
    as_server: i64,
}

/// When sums held in memory are written, and whether the rows above the watermark must be
/// counted first: the bookkeeping the talker and TLS sums share.
#[derive(Debug)]
pub(crate) struct Pending {
    since: Instant,
    /// The wall-clock hour of the last write.
    hour: i64,
    /// True until the rows above the watermark have been counted (at start, or after sums
    /// had to be dropped).
    recover: bool,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            since: Instant::now(),
            hour: wall_hour(),
            recover: true,
        }
    }
}

#[derive(QueryableByName)]
struct Added {
    #[diesel(sql_type = BigInt)]
    added: i64,
}

impl Pending {
    /// True when `cells` sums should be written now.
    pub(crate) fn due(&self, cells: usize) -> bool {
        cells > 0
            && (self.since.elapsed() >= FLUSH_EVERY
                || cells >= MAX_CELLS
                || wall_hour() != self.hour)
    }

    /// False while the rows above the watermark wait to be counted: the batches committed
    /// meanwhile lie above it too, and are counted with them, not in memory.
    pub(crate) fn counting(&self) -> bool {
        !self.recover
    }

    /// Counts the rows above the sensor's watermark with `function` (`netmonitor_rollup_flows`,
    /// `netmonitor_rollup_tls`), once after start: before the first batch is counted in memory.
    pub(crate) fn recover(
        &mut self,
        conn: &mut PgConnection,
        sensor: &str,
        function: &str,
    ) -> QueryResult<()> {
        if !self.recover {
            return Ok(());
        }
        let a: Added = diesel::sql_query(format!("SELECT {function}($1) AS added"))
            .bind::<Text, _>(sensor)
            .get_result(conn)?;
        if a.added > 0 {
            tracing::info!(
                rows = a.added,
                function,
                "rollup caught up with rows written before a restart"
            );
        }
        self.recover = false;
        Ok(())
    }

    /// Notes the outcome of writing `cells` sums; true when they must be forgotten: written,
    /// or, past the cap, dropped after a failure (to be recounted from the rows at the next
    /// recovery); otherwise they stay for the next attempt.
    pub(crate) fn settle(&mut self, result: &QueryResult<()>, cells: usize, rollup: &str) -> bool {
        match result {
            Ok(()) => {
                self.since = Instant::now();
                self.hour = wall_hour();
                true
            }
            Err(e) if cells >= MAX_CELLS => {
                tracing::warn!(error = %e, rollup, "rollup sums dropped; they are recounted from the rows");
                self.recover = true;
                true
            }
            Err(_) => false,
        }
    }
}

/// Moves the sensor's watermark of `rollup` to its newest row in `table`, in the transaction
/// that adds the sums.
pub(crate) fn advance_watermark(
    conn: &mut PgConnection,
    sensor: &str,
    rollup: &str,
    table: &str,
) -> QueryResult<()> {
    diesel::sql_query(format!(
        "INSERT INTO rollup_watermarks (sensor, rollup, last_id) \
         SELECT $1, $2, max(id) FROM {table} WHERE sensor = $1 HAVING max(id) IS NOT NULL \
         ON CONFLICT (sensor, rollup) DO UPDATE SET last_id = EXCLUDED.last_id"
    ))
    .bind::<Text, _>(sensor)
    .bind::<Text, _>(rollup)
    .execute(conn)
    .map(|_| ())
}

/// Sums of committed flows not yet in `talker_rollup`.
#[derive(Debug, Default)]
pub struct TalkerSums {
    cells: HashMap<(i64, IpAddr), Cell>,
    pending: Pending,
    stage: CopyBuf,
}

pub(crate) fn wall_hour() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(3600)
}

impl TalkerSums {
    /// Counts the flows of a batch that has just committed.
    pub fn add(&mut self, items: &[StoreItem]) {
        if !self.pending.counting() {
            return;
        }
        for item in items {
            let StoreItem::Event(e) = item else { continue };
            let EventKind::Flow(f) = &e.kind else {
                continue;
            };
            let bucket = hour_of(e.header.ts.0);
            let (up, down) = (clamp_u64(f.bytes_toserver), clamp_u64(f.bytes_toclient));
            let c = self.cells.entry((bucket, e.header.key.src_ip)).or_default();
            c.sent = c.sent.saturating_add(up);
            c.received = c.received.saturating_add(down);
            c.as_client += 1;
            let c = self.cells.entry((bucket, e.header.key.dst_ip)).or_default();
            c.sent = c.sent.saturating_add(down);
            c.received = c.received.saturating_add(up);
            c.as_server += 1;
        }
    }

    /// True when the sums should be written now.
    pub fn due(&self) -> bool {
        self.pending.due(self.cells.len())
    }

    /// Adds the flows above the sensor's watermark, once after start (and after sums were
    /// dropped); until it succeeds, batches are not counted in memory.
    pub fn recover(&mut self, conn: &mut PgConnection, sensor: &str) -> QueryResult<()> {
        self.pending
            .recover(conn, sensor, "netmonitor_rollup_flows")
    }

    /// Writes the sums and the watermark in one transaction; on failure they stay in memory
    /// (or, past the cap, are dropped and recounted from the rows at the next recovery).
    pub fn flush(&mut self, conn: &mut PgConnection, sensor: &str) -> QueryResult<()> {
        if self.cells.is_empty() {
            return Ok(());
        }
        self.stage.clear();
        for (&(bucket, ip), c) in &self.cells {
            let b = &mut self.stage;
            b.row(7);
            b.timestamptz_us(bucket);
            b.text(sensor);
            b.inet(ip);
            b.int8(c.sent);
            b.int8(c.received);
            b.int8(c.as_client);
            b.int8(c.as_server);
        }
        let stage = &mut self.stage;
        let result = conn.transaction::<_, diesel::result::Error, _>(|c| {
            {
                use crate::schema::talker_stage::dsl::*;
                let columns = (
                    bucket,
                    sensor,
                    ip,
                    bytes_sent,
                    bytes_received,
                    flows_as_client,
                    flows_as_server,
                );
                copy_into(c, talker_stage, columns, stage)?;
            }
            diesel::sql_query("SELECT netmonitor_add_talkers('talker_stage')").execute(c)?;
            advance_watermark(c, sensor, "talker", "flows")
        });
        if self.pending.settle(&result, self.cells.len(), "talker") {
            self.cells.clear();
        }
        result
    }
}

/// Rolls the talker, TLS and alert sums over the last day and week (`rolling_sums`,
/// `alert_rolling` and `technique_rollup` migrations) to the current hour once an hour, and
/// folds the hours before it into the daily rollups (`daily_fold` migration) then and at every
/// flush, a few at a time: a backlog (after a replay of days of traffic) is folded between
/// batches, never in one long stall of the writer. A failure is retried a minute later; until
/// then summaries read the unfolded hours and the spans as they were, which stays exact, only
/// longer to read.
#[derive(Debug, Default)]
pub struct SpanRoller {
    rolled: Option<i64>,
    retry_at: Option<Instant>,
    /// Hours were left to fold at the last attempt.
    backlog: bool,
}

/// Hours of each rollup folded into the daily ones at a time.
const FOLD_HOURS: i32 = 6;

#[derive(QueryableByName)]
struct Folded {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    hours: i32,
}

impl SpanRoller {
    /// True when the hour has turned since the last roll or hours are left to fold (and no
    /// failure is being waited out).
    pub fn due(&self) -> bool {
        (self.rolled != Some(wall_hour()) || self.backlog)
            && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// Folds the past hours at the next chance, without waiting for the hour to turn (a flush:
    /// a replay that ends, a shutdown).
    pub fn fold_soon(&mut self) {
        self.backlog = true;
    }

    /// Waits a minute before the next attempt (the database could not be reached).
    pub fn postpone(&mut self) {
        self.retry_at = Some(Instant::now() + RETRY_ROLL);
    }

    /// Rolls the spans to the current hour if not done yet, then folds a few hours.
    pub fn roll(&mut self, conn: &mut PgConnection) -> QueryResult<()> {
        let hour = wall_hour();
        let started = Instant::now();
        let result = self.roll_and_fold(conn, hour);
        match &result {
            Ok(hours) => {
                self.retry_at = None;
                tracing::debug!(
                    seconds = started.elapsed().as_secs_f64(),
                    hours,
                    backlog = self.backlog,
                    "rolling sums at the current hour; hours folded into the daily rollups"
                );
            }
            Err(_) => self.postpone(),
        }
        result.map(|_| ())
    }

    /// The roll when due, then one fold; returns the most hours folded of one rollup.
    fn roll_and_fold(&mut self, conn: &mut PgConnection, hour: i64) -> QueryResult<i32> {
        if self.rolled != Some(hour) {
            diesel::sql_query("SELECT netmonitor_roll_all(to_timestamp($1 * 3600))")
                .bind::<BigInt, _>(hour)
                .execute(conn)?;
            self.rolled = Some(hour);
        }
        // in the order the rollups' locks are taken: alerts by a batch's triggers, then TLS
        // sessions and talkers by the writer's flushes, each in a transaction of its own
        let folded: Folded = diesel::sql_query(
            "SELECT COALESCE(max(netmonitor_fold(r, to_timestamp($1 * 3600), $2)), 0) AS hours \
             FROM unnest(ARRAY['alert', 'tls', 'talker']) r",
        )
        .bind::<BigInt, _>(hour)
        .bind::<diesel::sql_types::Integer, _>(FOLD_HOURS)
        .get_result(conn)?;
        self.backlog = folded.hours >= FOLD_HOURS;
        Ok(folded.hours)
    }
}

/// How long a failed roll waits before the next attempt.
const RETRY_ROLL: Duration = Duration::from_secs(60);
