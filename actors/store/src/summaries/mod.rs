//! Summaries over long windows, read from the rollups kept as batches land (`alert_rollup`,
//! `alert_counts`, `talker_rollup`, `tls_rollup`, `alert_techniques` per hour and their `_daily`
//! twins per day, which the roll fills from the hours once an hour and which are read through
//! the `_days` views, complete at any time), from the rolling sums of the last day and week
//! (`*_rolling`), and from the rows only at a window's edges.
//!
//! Sums (alert counts, top talkers, TLS statistics, detections' ranking, ATT&CK counts) are read
//! in the signed pieces of [`pieces()`], which may subtract; minimums and maximums (first and last
//! times, severities of the pair paths) in the additive tiers of [`tiers`]: whole days from the
//! daily rollup, other whole hours from the hourly one. `detections` and `techniques` hold the
//! alert summaries, `sums` the others.
//!
//! The answers equal those computed from the rows: every rollup column is a sum, a minimum or
//! a maximum, and distinct counts are taken over the rollup keys, which carry the addresses
//! (TLS clients and servers excepted: sketches, exact up to 1,280 of each).

mod detections;
mod pieces;
mod sums;
mod techniques;

pub use detections::{threat_groups, ThreatGroup};
pub use techniques::{mitre_mapping, MitreRow};

pub use pieces::{pieces, pieces_with, spans, Piece, Source, Span};
pub use sums::{tls_stats, top_talkers, TalkerRow, TlsStats, TlsTotals};

use crate::queries::{self, not_whitelisted, AlertFilter, Window};
use crate::StoreError;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bool, Int2, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The whole hours `[lo, hi)` inside `w`, which the rollups answer; `lo == hi == since` when
/// none fits. The rows answer `[since, lo)` and `[hi, until]`.
pub fn whole_hours(w: Window) -> (DateTime<Utc>, DateTime<Utc>) {
    let hour = TimeDelta::hours(1);
    let trunc = |t: DateTime<Utc>| t.duration_trunc(hour).unwrap_or(t);
    let lo = match trunc(w.since) {
        t if t == w.since => t,
        t => t + hour,
    };
    let hi = trunc(w.until + TimeDelta::microseconds(1));
    if hi > lo {
        (lo, hi)
    } else {
        (w.since, w.since)
    }
}

/// How a window is read: the rows for `[since, lo)` and `[hi, until]`, the hourly rollup for
/// `[lo, d1)` and `[d2, hi)`, the daily rollup for `[d1, d2)` (empty when `d1 == d2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiers {
    /// Start of the whole hours.
    pub lo: DateTime<Utc>,
    /// Start of the whole days.
    pub d1: DateTime<Utc>,
    /// End of the whole days.
    pub d2: DateTime<Utc>,
    /// End of the whole hours.
    pub hi: DateTime<Utc>,
}

/// The tiers of `w`.
pub fn tiers(w: Window) -> Tiers {
    let (lo, hi) = whole_hours(w);
    let day = TimeDelta::days(1);
    let trunc = |t: DateTime<Utc>| t.duration_trunc(day).unwrap_or(t);
    let d1 = match trunc(lo) {
        t if t == lo => t,
        t => t + day,
    };
    let d2 = trunc(hi);
    if d2 > d1 {
        Tiers { lo, d1, d2, hi }
    } else {
        Tiers {
            lo,
            d1: hi,
            d2: hi,
            hi,
        }
    }
}

/// `sql` with `$1`–`$6` bound to the window (`since`, `until`) and its tiers (`lo`, `hi`, `d1`,
/// `d2`), as [`EDGES`] and [`rolled`] expect; the caller binds from `$7` on.
fn tiered(sql: String, w: Window, t: Tiers) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<Timestamptz, _>(w.since)
        .bind::<Timestamptz, _>(w.until)
        .bind::<Timestamptz, _>(t.lo)
        .bind::<Timestamptz, _>(t.hi)
        .bind::<Timestamptz, _>(t.d1)
        .bind::<Timestamptz, _>(t.d2)
}

/// The rows outside the whole hours, with `$1`/`$2` the window and `$3`/`$4` its whole hours.
const EDGES: &str = "((ts >= $1 AND ts < $3) OR (ts >= $4 AND ts <= $2))";

/// `columns` of the rollup `table` over the whole hours and days, with `$3`–`$6` the
/// [`Tiers`] (`lo`, `hi`, `d1`, `d2`) and `filter` (starting with AND, over alias `r`) applied to
/// both tiers.
fn rolled(columns: &str, table: &str, filter: &str) -> String {
    format!(
        "SELECT {columns} FROM {table} r \
           WHERE ((r.bucket >= $3 AND r.bucket < $5) OR (r.bucket >= $6 AND r.bucket < $4)) {filter} \
         UNION ALL \
         SELECT {columns} FROM {table}_days r WHERE r.bucket >= $5 AND r.bucket < $6 {filter}"
    )
}

/// One row of an alert count: the alerts a filter shows, and all it matches without hiding.
#[derive(QueryableByName)]
struct ShownAndTotal {
    #[diesel(sql_type = BigInt)]
    shown: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Number of alerts matching `f`. A filter on an indicator (text in the evidence) reads the
/// rows throughout.
pub async fn count_alerts(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
) -> Result<i64, StoreError> {
    Ok(count_alerts_and_hidden(conn, f).await?.0)
}

/// Number of alerts matching `f`, and how many more match it when whitelisted and suppressed
/// alerts are not hidden (0 unless `f.hide_whitelisted`): both in one pass over the rollups,
/// `alert_counts` when no address enters the count, `alert_rollup` otherwise.
pub async fn count_alerts_and_hidden(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
) -> Result<(i64, i64), StoreError> {
    if f.indicator.is_some() {
        let (shown, all) = counts_from_rows(conn, f).await?;
        return Ok((shown, all - shown));
    }
    if f.ip.is_none() && !(f.hide_whitelisted && queries::address_whitelist_exists(conn).await?) {
        let (shown, all) = sums::alert_counts(conn, f).await?;
        return Ok((shown, all - shown));
    }
    let w = f.window;
    let t = tiers(w);
    let (lo, hi) = (t.lo, t.hi);
    let (mut shown, mut all) = (0, 0);
    if hi > lo {
        let filter = "AND ($7::text IS NULL OR r.src_ip = $7::inet OR r.dest_ip = $7::inet) \
             AND (cardinality($8::text[]) = 0 OR r.threat_type = ANY($8)) \
             AND ($10::int2 IS NULL OR r.severity <= $10)";
        let columns = format!(
            "CASE WHEN $9 THEN alerts ELSE open END AS n, \
             NOT $11 OR (NOT r.suppressed AND {}) AS shown",
            not_whitelisted("r")
        );
        let sql = format!(
            "SELECT COALESCE(netmonitor_sum(n) FILTER (WHERE shown), 0)::int8 AS shown, \
               COALESCE(netmonitor_sum(n), 0)::int8 AS total FROM ({}) x",
            rolled(&columns, "alert_rollup", filter)
        );
        let rolled: ShownAndTotal = tiered(sql, w, t)
            .bind::<Nullable<Text>, _>(f.ip.as_deref())
            .bind::<Array<Text>, _>(&f.threat_types)
            .bind::<Bool, _>(f.include_acknowledged)
            .bind::<Nullable<Int2>, _>(f.max_severity)
            .bind::<Bool, _>(f.hide_whitelisted)
            .get_result(conn)
            .await?;
        shown += rolled.shown;
        all += rolled.total;
    }
    let edges = [
        Window {
            since: w.since,
            until: lo - TimeDelta::microseconds(1),
        },
        Window {
            since: hi.max(w.since),
            until: w.until,
        },
    ];
    for edge in edges {
        if edge.until >= edge.since {
            let part = AlertFilter {
                window: edge,
                ..f.clone()
            };
            let (s, a) = counts_from_rows(conn, &part).await?;
            shown += s;
            all += a;
        }
    }
    Ok((shown, all - shown))
}

/// The alerts matching `f` counted from the rows, and those matching it without hiding
/// whitelisted and suppressed ones (the same number unless `f.hide_whitelisted`).
async fn counts_from_rows(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
) -> Result<(i64, i64), StoreError> {
    let shown = queries::count_alerts(conn, f).await?;
    if !f.hide_whitelisted {
        return Ok((shown, shown));
    }
    let everything = AlertFilter {
        hide_whitelisted: false,
        ..f.clone()
    };
    Ok((shown, queries::count_alerts(conn, &everything).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn whole_hours_leave_the_edges_to_the_rows() {
        let w = |a, b| Window {
            since: at(a),
            until: at(b),
        };
        assert_eq!(
            whole_hours(w("2026-12-05T10:20:00Z", "2026-12-05T13:05:00Z")),
            (at("2026-12-05T11:00:00Z"), at("2026-12-05T13:00:00Z"))
        );
        // aligned ends: the last hour is whole only when `until` reaches its final microsecond
        assert_eq!(
            whole_hours(w("2026-12-05T10:00:00Z", "2026-12-05T12:59:59.999999Z")),
            (at("2026-12-05T10:00:00Z"), at("2026-12-05T13:00:00Z"))
        );
        assert_eq!(
            whole_hours(w("2026-12-05T10:00:00Z", "2026-12-05T13:00:00Z")),
            (at("2026-12-05T10:00:00Z"), at("2026-12-05T13:00:00Z"))
        );
        // no whole hour: everything from the rows
        let short = w("2026-12-05T10:20:00Z", "2026-12-05T11:10:00Z");
        assert_eq!(whole_hours(short), (short.since, short.since));
    }

    #[test]
    fn whole_days_come_from_the_daily_rollup() {
        let w = |a, b| Window {
            since: at(a),
            until: at(b),
        };
        let t = tiers(w("2026-12-01T10:20:00Z", "2026-12-05T13:05:00Z"));
        assert_eq!(
            (t.lo, t.d1, t.d2, t.hi),
            (
                at("2026-12-01T11:00:00Z"),
                at("2026-12-02T00:00:00Z"),
                at("2026-12-05T00:00:00Z"),
                at("2026-12-05T13:00:00Z")
            )
        );
        // within one day: the hourly rollup alone ([lo, d1) ∪ [d2, hi) = [lo, hi))
        let t = tiers(w("2026-12-05T10:20:00Z", "2026-12-05T23:05:00Z"));
        assert_eq!((t.d1, t.d2), (t.hi, t.hi));
        assert_eq!(t.lo, at("2026-12-05T11:00:00Z"));
        // exactly one whole day
        let t = tiers(w("2026-12-05T00:00:00Z", "2026-12-05T23:59:59.999999Z"));
        assert_eq!((t.lo, t.d1, t.d2, t.hi), (t.lo, t.lo, t.hi, t.hi));
        assert_eq!(t.hi - t.lo, TimeDelta::days(1));
    }
}
