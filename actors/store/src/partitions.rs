//! Daily partitions of the append-only event tables: created for each day a batch touches and a
//! few days ahead, and dropped whole once they fall out of their table's retention (never a
//! row-by-row `DELETE`). Also the storage figures the `get_storage_status` tool reports.
//!
//! Retention counts back from the newest row of each table, in capture time, so a replayed
//! capture from years ago keeps its days, and a live sensor keeps the last N days of traffic.

use crate::StoreError;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Integer, Nullable, Text, Timestamptz};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// New days a single batch may open partitions for; rows of further new days wait in the
/// table's default partition. Bounds what a capture with scrambled timestamps can create.
pub const MAX_NEW_DAYS_PER_BATCH: usize = 31;

/// The partitioned tables, oldest-first retention applies to each.
pub const PARTITIONED: [&str; 6] = [
    "flows",
    "alerts",
    "tls_sessions",
    "kerberos_events",
    "app_events",
    "api_token_usage",
];

/// Days of data kept per table (`[store.retention]`); 0 keeps everything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Flow records.
    pub flows_days: u32,
    /// Alerts (their hourly rollup is kept with them).
    pub alerts_days: u32,
    /// TLS and QUIC sessions.
    pub tls_sessions_days: u32,
    /// Kerberos messages.
    pub kerberos_events_days: u32,
    /// DNS, DHCP and HTTP events.
    pub app_events_days: u32,
    /// The MCP audit trail.
    pub api_token_usage_days: u32,
    /// Days ahead of today whose partitions exist before traffic reaches them.
    pub days_ahead: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            flows_days: 30,
            alerts_days: 365,
            tls_sessions_days: 90,
            kerberos_events_days: 90,
            app_events_days: 30,
            api_token_usage_days: 365,
            days_ahead: 2,
        }
    }
}

impl Retention {
    /// Days kept for `table` (0: all).
    pub fn days(&self, table: &str) -> u32 {
        match table {
            "flows" => self.flows_days,
            "alerts" => self.alerts_days,
            "tls_sessions" => self.tls_sessions_days,
            "kerberos_events" => self.kerberos_events_days,
            "app_events" => self.app_events_days,
            "api_token_usage" => self.api_token_usage_days,
            _ => 0,
        }
    }

    /// Checks the values, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.days_ahead > 31 {
            return Err("store.retention.days_ahead must be at most 31".into());
        }
        Ok(())
    }
}

/// Days since 1970-01-01 (UTC) of a timestamp in microseconds.
pub fn day_of_us(unix_us: i64) -> i32 {
    unix_us.div_euclid(86_400_000_000) as i32
}

fn date_of_day(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + Duration::days(i64::from(day))
}

fn day_of_date(d: NaiveDate) -> i32 {
    (d - date_of_day(0)).num_days() as i32
}

/// The day a partition name (`<table>_pYYYYMMDD`) covers.
fn partition_day(name: &str) -> Option<NaiveDate> {
    let (_, digits) = name.rsplit_once("_p")?;
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

/// The writer's side: which days already have partitions, and the hourly upkeep.
#[derive(Debug, Default)]
pub struct PartitionKeeper {
    known: HashSet<i32>,
}

#[derive(QueryableByName)]
struct Made {
    #[diesel(sql_type = Integer)]
    made: i32,
}

#[derive(QueryableByName)]
struct Newest {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    newest: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct PartName {
    #[diesel(sql_type = Text)]
    name: String,
}

impl PartitionKeeper {
    /// Makes sure the partitions of `days` exist (at most [`MAX_NEW_DAYS_PER_BATCH`] new ones).
    pub fn ensure(&mut self, conn: &mut PgConnection, days: &BTreeSet<i32>) -> QueryResult<()> {
        let new: Vec<i32> = days
            .iter()
            .copied()
            .filter(|d| !self.known.contains(d))
            .take(MAX_NEW_DAYS_PER_BATCH)
            .collect();
        for day in new {
            let made: Made = diesel::sql_query("SELECT netmonitor_ensure_day($1) AS made")
                .bind::<Date, _>(date_of_day(day))
                .get_result(conn)?;
            if made.made > 0 {
                metrics::counter!("netmonitor_store_partition_days_total").increment(1);
            }
            self.known.insert(day);
        }
        Ok(())
    }

    /// Forgets what it knew (after a failed write: a partition may have been dropped).
    pub fn forget(&mut self) {
        self.known.clear();
    }

    /// Creates today's partitions and those `days_ahead` ahead, then drops the days each
    /// table's retention no longer keeps. Returns the partitions dropped.
    pub fn upkeep(&mut self, conn: &mut PgConnection, retention: &Retention) -> QueryResult<usize> {
        // another sensor's writer may have dropped days this one remembers
        self.forget();
        let today = day_of_date(Utc::now().date_naive());
        let ahead: BTreeSet<i32> = (today - 1..=today + retention.days_ahead as i32).collect();
        self.ensure(conn, &ahead)?;
        let mut dropped = 0;
        for table in PARTITIONED {
            dropped += drop_expired(conn, table, retention.days(table))?;
        }
        Ok(dropped)
    }
}

/// What is kept from the rows of a partitioned table, for as long as they are.
struct Kept {
    /// The hourly rollups, each with its `_daily` twin.
    rollups: &'static [&'static str],
    /// Their name in `rollup_hours`, which says what hours are folded into the daily tables.
    hours: &'static str,
    /// The rolling sums (`rolling_spans.rollup`) kept from them.
    spans: &'static [&'static str],
}

/// What is kept from `table`'s rows, if anything.
fn kept_from(table: &str) -> Option<Kept> {
    match table {
        "alerts" => Some(Kept {
            rollups: &["alert_rollup", "alert_counts", "alert_techniques"],
            hours: "alert",
            spans: &["alert", "alert_pair"],
        }),
        "flows" => Some(Kept {
            rollups: &["talker_rollup"],
            hours: "talker",
            spans: &["talker"],
        }),
        "tls_sessions" => Some(Kept {
            rollups: &["tls_rollup", "tls_distinct"],
            hours: "tls",
            spans: &["tls"],
        }),
        _ => None,
    }
}

/// Drops the partitions of `table` older than `keep_days` before its newest row.
fn drop_expired(
    conn: &mut PgConnection,
    table: &'static str,
    keep_days: u32,
) -> QueryResult<usize> {
    if keep_days == 0 {
        return Ok(0);
    }
    let newest: Newest =
        diesel::sql_query(format!("SELECT max(ts) AS newest FROM {table}")).get_result(conn)?;
    let Some(newest) = newest.newest else {
        return Ok(0);
    };
    // a capture stamped in the future must not expire today's traffic
    let newest = newest.min(Utc::now() + Duration::days(1));
    let first_kept = newest.date_naive() - Duration::days(i64::from(keep_days) - 1);
    let cutoff = first_kept
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    if let Some(kept) = kept_from(table) {
        for rollup in kept.rollups {
            for tier in ["", "_daily"] {
                diesel::sql_query(format!("DELETE FROM {rollup}{tier} WHERE bucket < $1"))
                    .bind::<Timestamptz, _>(cutoff)
                    .execute(conn)?;
            }
        }
        diesel::sql_query("DELETE FROM rollup_hours WHERE rollup = $1 AND bucket < $2")
            .bind::<Text, _>(kept.hours)
            .bind::<Timestamptz, _>(cutoff)
            .execute(conn)?;
        // a rolling span reaching back past the cutoff could no longer subtract the hours it
        // holds there: forget it, so that the next roll counts it again from what is kept
        for span in kept.spans {
            diesel::sql_query("DELETE FROM rolling_spans WHERE rollup = $1 AND lo < $2")
                .bind::<Text, _>(*span)
                .bind::<Timestamptz, _>(cutoff)
                .execute(conn)?;
        }
    }
    let parts: Vec<PartName> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass($1) ORDER BY 1",
    )
    .bind::<Text, _>(table)
    .load(conn)?;
    let mut dropped = 0;
    for p in parts {
        let Some(day) = partition_day(&p.name) else {
            continue;
        };
        if day >= first_kept {
            continue;
        }
        // A reader holding the table must not stall the writer: give up and retry next time.
        let sql = format!(
            "BEGIN; SET LOCAL lock_timeout = '2s'; DROP TABLE IF EXISTS \"{}\"; COMMIT;",
            p.name
        );
        match conn.batch_execute(&sql) {
            Ok(()) => {
                tracing::info!(partition = %p.name, %table, keep_days, "retention dropped a day");
                metrics::counter!("netmonitor_store_partitions_dropped_total", "table" => table)
                    .increment(1);
                dropped += 1;
            }
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                tracing::warn!(partition = %p.name, error = %e, "could not drop an expired partition; will retry");
            }
        }
    }
    Ok(dropped)
}

/// Size and reach of one stored table, for operators and MCP clients.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct TableStorage {
    #[diesel(sql_type = Text)]
    pub table: String,
    /// Table, indexes and TOAST of every partition.
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    /// The planner's estimate (exact counts would read the whole table).
    #[diesel(sql_type = BigInt)]
    pub rows_estimate: i64,
    /// Daily partitions (0 for unpartitioned tables).
    #[diesel(sql_type = BigInt)]
    pub partitions: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub oldest_partition: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub newest_partition: Option<String>,
    /// Rows that fell outside every daily partition.
    #[diesel(sql_type = BigInt)]
    pub default_rows_estimate: i64,
}

/// Sizes of the event tables, the rollups and the other large tables.
pub async fn table_storage(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<Vec<TableStorage>, StoreError> {
    Ok(diesel_async::RunQueryDsl::load(diesel::sql_query(
        "SELECT t.name AS table, \
           COALESCE((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(t.name::regclass) p), \
                    pg_total_relation_size(t.name::regclass))::int8 AS bytes, \
           COALESCE((SELECT sum(GREATEST(c.reltuples, 0)) FROM pg_partition_tree(t.name::regclass) p \
                       JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf), \
                    (SELECT GREATEST(c.reltuples, 0) FROM pg_class c WHERE c.oid = t.name::regclass))::int8 AS rows_estimate, \
           (SELECT count(*) FROM pg_partition_tree(t.name::regclass) p \
              WHERE p.isleaf AND p.level > 0 AND p.relid::text ~ '_p[0-9]{8}$') AS partitions, \
           (SELECT min(substring(p.relid::text from '_p([0-9]{8})$')) FROM pg_partition_tree(t.name::regclass) p) AS oldest_partition, \
           (SELECT max(substring(p.relid::text from '_p([0-9]{8})$')) FROM pg_partition_tree(t.name::regclass) p) AS newest_partition, \
           COALESCE((SELECT GREATEST(c.reltuples, 0) FROM pg_class c \
                       WHERE c.oid = to_regclass(t.name || '_default')), 0)::int8 AS default_rows_estimate \
         FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
         WHERE to_regclass(t.name) IS NOT NULL ORDER BY t.n",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(&STORAGE_TABLES[..])
    , conn)
    .await?)
}

/// The whole database's size on disk.
pub async fn database_bytes(conn: &mut diesel_async::AsyncPgConnection) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    let b: Bytes = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT pg_database_size(current_database()) AS bytes"),
        conn,
    )
    .await?;
    Ok(b.bytes)
}

/// The tables [`table_storage`] reports, event tables first.
pub const STORAGE_TABLES: [&str; 29] = [
    "flows",
    "alerts",
    "tls_sessions",
    "kerberos_events",
    "app_events",
    "api_token_usage",
    "alert_rollup",
    "alert_rollup_daily",
    "alert_counts",
    "alert_counts_daily",
    "alert_rolling",
    "alert_pair_rolling",
    "alert_techniques",
    "alert_techniques_daily",
    "talker_rollup",
    "talker_rollup_daily",
    "tls_rollup",
    "tls_rollup_daily",
    "tls_distinct",
    "tls_distinct_daily",
    "talker_rolling",
    "tls_rolling",
    "rollup_hours",
    "mitre_rollup",
    "certificates",
    "indicators",
    "devices",
    "risk_history",
    "soar_actions",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_partition_names_agree() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(date_of_day(day_of_date(d)), d);
        let us = d
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        assert_eq!(day_of_us(us), day_of_date(d));
        assert_eq!(day_of_us(-1), -1, "before 1970 rounds down");
        assert_eq!(partition_day("alerts_p20261205"), Some(d));
        assert_eq!(partition_day("kerberos_events_p20261205"), Some(d));
        assert_eq!(partition_day("alerts_default"), None);
    }
}
