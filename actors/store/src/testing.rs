//! A throwaway PostgreSQL for tests and benchmarks: a private cluster in a temporary directory
//! (unix socket only, fsync off), removed when dropped. Tests run in parallel without clashing
//! because each has its own directory and socket.

use crate::{Database, DbTarget, StoreError};

/// A private cluster that lives as long as this value.
pub struct TestDatabase {
    /// The opened, migrated database.
    pub db: Database,
    dir: tempfile::TempDir,
}

impl TestDatabase {
    /// Creates, starts and migrates a fresh cluster.
    pub fn start() -> Result<Self, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix("nm-pg-")
            .tempdir()
            .map_err(StoreError::Spool)?;
        let db = Database::open(&DbTarget::Private {
            data_dir: dir.path().to_owned(),
            fsync: false,
        })?;
        Ok(TestDatabase { db, dir })
    }

    /// The temporary directory (spool dirs of tests go below it too).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The connection string.
    pub fn conninfo(&self) -> String {
        self.db.conninfo().to_owned()
    }

    /// Counts rows of a table with plain SQL.
    pub fn count(&self, table: &str) -> Result<i64, StoreError> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(self.db.conninfo())?;
        let n: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result(&mut conn)?;
        Ok(n.n)
    }

    /// Rows of the rolling sums of `rollup` ("talker", "tls", "alert" or "alert_pair") that differ from the hourly
    /// rollup summed over the hours their span holds (0 when they agree), and the spans held.
    pub fn rolling_mismatches(&self, rollup: &str) -> Result<(i64, i64), StoreError> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            spans: i64,
        }
        let (hourly, keys, sums): (&str, &[&str], &[&str]) = match rollup {
            "talker" => (
                "talker_rollup",
                &["sensor", "ip"],
                &[
                    "bytes_sent",
                    "bytes_received",
                    "flows_as_client",
                    "flows_as_server",
                ],
            ),
            "alert" => (
                "alert_rollup",
                &["sensor", "threat_type", "src_ip", "suppressed"],
                &["alerts", "open"],
            ),
            "alert_pair" => (
                "alert_rollup",
                &[
                    "sensor",
                    "mitre",
                    "threat_type",
                    "src_ip",
                    "dest_ip",
                    "severity",
                ],
                &["alerts"],
            ),
            _ => ("tls_rollup", &["sensor", "kind", "value"], &["sessions"]),
        };
        let list = |f: &dyn Fn(&str) -> String, of: &[&str]| {
            of.iter().map(|c| f(c)).collect::<Vec<_>>().join(", ")
        };
        let sql = format!(
            "WITH want AS ( \
               SELECT r.span_hours, {hk}, {hs} FROM {hourly} h JOIN rolling_spans r \
                 ON r.rollup = '{rollup}' AND h.bucket >= r.lo AND h.bucket < r.hi \
               GROUP BY r.span_hours, {hk} \
             ), have AS (SELECT span_hours, {k}, {s} FROM {rollup}_rolling) \
             SELECT {differing} AS n, \
               (SELECT count(*) FROM rolling_spans WHERE rollup = '{rollup}') AS spans",
            differing = differing_rows("SELECT * FROM want", "SELECT * FROM have"),
            hk = list(&|c| format!("h.{c}"), keys),
            hs = list(&|c| format!("sum(h.{c})::int8"), sums),
            k = keys.join(", "),
            s = sums.join(", "),
        );
        let mut conn = PgConnection::establish(self.db.conninfo())?;
        let n: N = diesel::sql_query(sql).get_result(&mut conn)?;
        Ok((n.n, n.spans))
    }

    /// Rows of the daily tables of `rollup` ("talker", "tls" or "alert") that differ from its
    /// hourly tables summed per day over the hours `rollup_hours` marks folded, plus rows of
    /// the `_days` views that differ from the hourly tables summed per day over every hour (0
    /// when both agree); and the hours not folded yet.
    pub fn daily_mismatches(&self, rollup: &str) -> Result<(i64, i64), StoreError> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        type Table = (
            &'static str,
            &'static str,
            &'static [(&'static str, &'static str)],
        );
        let tables: &[Table] = match rollup {
            "talker" => &[(
                "talker_rollup",
                "sensor, ip",
                &[
                    ("bytes_sent", "sum"),
                    ("bytes_received", "sum"),
                    ("flows_as_client", "sum"),
                    ("flows_as_server", "sum"),
                ],
            )],
            "tls" => &[
                ("tls_rollup", "sensor, kind, value", &[("sessions", "sum")]),
                (
                    "tls_distinct",
                    "sensor",
                    &[("clients", "hll"), ("servers", "hll")],
                ),
            ],
            _ => &[
                (
                    "alert_rollup",
                    "sensor, threat_type, signature, src_ip, dest_ip, suppressed, severity",
                    &[
                        ("alerts", "sum"),
                        ("open", "sum"),
                        ("mitre", "max"),
                        ("first_seen", "min"),
                        ("last_seen", "max"),
                    ],
                ),
                (
                    "alert_counts",
                    "sensor, threat_type, severity, suppressed",
                    &[("alerts", "sum"), ("open", "sum")],
                ),
                (
                    "alert_techniques",
                    "sensor, technique",
                    &[("first_seen", "min"), ("last_seen", "max")],
                ),
            ],
        };
        let mut conn = PgConnection::establish(self.db.conninfo())?;
        let mut differing = 0;
        for (hourly, keys, merges) in tables {
            let aggregates = merges
                .iter()
                .map(|(c, how)| match *how {
                    "sum" => format!("sum({c})::int8"),
                    "hll" => format!("hll_cardinality(hll_union_agg({c}))::int8"),
                    how => format!("{how}({c})"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let per_day = |from: &str| {
                format!(
                    "SELECT date_trunc('day', bucket, 'UTC') AS day, {keys}, {aggregates} \
                     FROM {from} GROUP BY 1, {keys}"
                )
            };
            let folded = format!(
                "(SELECT h.* FROM {hourly} h JOIN rollup_hours f \
                   ON f.rollup = '{rollup}' AND f.bucket = h.bucket AND f.folded) x"
            );
            for (want, have) in [
                (per_day(&folded), per_day(&format!("{hourly}_daily"))),
                (per_day(hourly), per_day(&format!("{hourly}_days"))),
            ] {
                let n: N =
                    diesel::sql_query(format!("SELECT {} AS n", differing_rows(&want, &have)))
                        .get_result(&mut conn)?;
                differing += n.n;
            }
        }
        let unfolded: N = diesel::sql_query(
            "SELECT count(*) AS n FROM rollup_hours WHERE rollup = $1 AND NOT folded",
        )
        .bind::<diesel::sql_types::Text, _>(rollup)
        .get_result(&mut conn)?;
        Ok((differing, unfolded.n))
    }
}

/// SQL counting the rows that one of the queries `want` and `have` returns and the other does
/// not, duplicates counted: 0 when they return the same rows.
fn differing_rows(want: &str, have: &str) -> String {
    format!(
        "(SELECT count(*) FROM ((({want}) EXCEPT ALL ({have})) \
           UNION ALL (({have}) EXCEPT ALL ({want}))) d)"
    )
}
