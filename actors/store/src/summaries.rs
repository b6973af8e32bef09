//! Summaries over long windows, read from the hourly rollups the database keeps as batches land
//! (`alert_rollup`, `talker_rollup`; see the `partitions` migration) for the whole hours of a
//! window, and from the rows themselves only for its ragged edges. A week of alerts is then a
//! few thousand rollup rows plus at most two partial hours of alerts, whatever the table holds.
//!
//! The answers equal those computed from the rows: every rollup column is a sum, a minimum or
//! a maximum, and distinct counts are taken over the rollup keys, which carry the addresses.

use crate::queries::{self, not_whitelisted, AlertFilter, Window};
use crate::StoreError;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int2, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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

/// The rows outside the whole hours, with `$1`/`$2` the window and `$3`/`$4` its whole hours.
const EDGES: &str = "((ts >= $1 AND ts < $3) OR (ts >= $4 AND ts <= $2))";

/// Number of alerts matching `f`. A filter on an indicator (text in the evidence) reads the
/// rows throughout.
pub async fn count_alerts(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
) -> Result<i64, StoreError> {
    if f.indicator.is_some() {
        return queries::count_alerts(conn, f).await;
    }
    let w = f.window;
    let (lo, hi) = whole_hours(w);
    let mut n = 0;
    if hi > lo {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let sql = format!(
            "SELECT COALESCE(sum(CASE WHEN $5 THEN alerts ELSE open END), 0)::int8 AS n \
             FROM alert_rollup r WHERE bucket >= $1 AND bucket < $2 \
               AND ($3::text IS NULL OR r.src_ip = $3::inet OR r.dest_ip = $3::inet) \
               AND (cardinality($4::text[]) = 0 OR r.threat_type = ANY($4)) \
               AND ($6::int2 IS NULL OR r.severity <= $6) \
               AND (NOT $7 OR (NOT r.suppressed AND {}))",
            not_whitelisted("r")
        );
        let rolled: N = diesel::sql_query(sql)
            .bind::<Timestamptz, _>(lo)
            .bind::<Timestamptz, _>(hi)
            .bind::<Nullable<Text>, _>(f.ip.as_deref())
            .bind::<Array<Text>, _>(&f.threat_types)
            .bind::<Bool, _>(f.include_acknowledged)
            .bind::<Nullable<Int2>, _>(f.max_severity)
            .bind::<Bool, _>(f.hide_whitelisted)
            .get_result(conn)
            .await?;
        n += rolled.n;
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
            n += queries::count_alerts(conn, &part).await?;
        }
    }
    Ok(n)
}

/// Alerts of one threat type from one source, summarised.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct ThreatGroup {
    #[diesel(sql_type = Text)]
    pub threat_type: String,
    #[diesel(sql_type = Text)]
    pub src_ip: String,
    #[diesel(sql_type = BigInt)]
    pub alerts: i64,
    #[diesel(sql_type = BigInt)]
    pub unacknowledged: i64,
    #[diesel(sql_type = BigInt)]
    pub targets: i64,
    /// Most severe level among them (1 = high).
    #[diesel(sql_type = Int2)]
    pub severity: i16,
    #[diesel(sql_type = Timestamptz)]
    pub first_seen: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub last_seen: DateTime<Utc>,
    #[diesel(sql_type = Array<Text>)]
    pub signatures: Vec<String>,
}

/// Alerts grouped by threat type and source, largest groups first. With `hide_whitelisted`,
/// alerts kept as suppressed evidence and those whose addresses a whitelist entry now covers
/// are left out.
pub async fn threat_groups(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
    threat_type: Option<&str>,
    hide_whitelisted: bool,
    limit: i64,
) -> Result<Vec<ThreatGroup>, StoreError> {
    let (lo, hi) = whole_hours(window);
    let sql = format!(
        "WITH r AS ( \
           SELECT threat_type, src_ip, dest_ip, signature, alerts AS n, open, severity, \
                  first_seen, last_seen \
             FROM alert_rollup WHERE bucket >= $3 AND bucket < $4 AND (NOT $7 OR NOT suppressed) \
           UNION ALL \
           SELECT threat_type, src_ip, dest_ip, signature, 1, (NOT acknowledged)::int::int8, severity, ts, ts \
             FROM alerts WHERE {EDGES} AND (NOT $7 OR NOT (evidence ? 'suppressed_by')) \
         ) \
         SELECT threat_type, host(src_ip) AS src_ip, sum(n)::int8 AS alerts, \
           sum(open)::int8 AS unacknowledged, count(DISTINCT dest_ip) AS targets, \
           min(severity) AS severity, min(first_seen) AS first_seen, max(last_seen) AS last_seen, \
           array_agg(DISTINCT signature) AS signatures \
         FROM r \
         WHERE ($5::text IS NULL OR r.src_ip = $5::inet OR r.dest_ip = $5::inet) \
           AND ($6::text IS NULL OR r.threat_type = $6) \
           AND (NOT $7 OR {}) \
         GROUP BY threat_type, r.src_ip \
         ORDER BY sum(n) DESC, threat_type, r.src_ip \
         LIMIT $8",
        not_whitelisted("r")
    );
    Ok(diesel::sql_query(sql)
        .bind::<Timestamptz, _>(window.since)
        .bind::<Timestamptz, _>(window.until)
        .bind::<Timestamptz, _>(lo)
        .bind::<Timestamptz, _>(hi)
        .bind::<Nullable<Text>, _>(ip)
        .bind::<Nullable<Text>, _>(threat_type)
        .bind::<Bool, _>(hide_whitelisted)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}

/// One ATT&CK technique as seen in the alerts.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct MitreRow {
    #[diesel(sql_type = Text)]
    pub technique: String,
    #[diesel(sql_type = BigInt)]
    pub alerts: i64,
    #[diesel(sql_type = BigInt)]
    pub sources: i64,
    #[diesel(sql_type = BigInt)]
    pub assets: i64,
    #[diesel(sql_type = Array<Text>)]
    pub threat_types: Vec<String>,
    #[diesel(sql_type = Int2)]
    pub severity: i16,
    #[diesel(sql_type = Timestamptz)]
    pub first_seen: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub last_seen: DateTime<Utc>,
}

/// Techniques from the alerts' `mitre` arrays, most frequent first.
pub async fn mitre_mapping(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
    limit: i64,
) -> Result<Vec<MitreRow>, StoreError> {
    let (lo, hi) = whole_hours(window);
    let sql = format!(
        "WITH r AS ( \
           SELECT mitre, threat_type, src_ip, dest_ip, alerts AS n, severity, first_seen, last_seen \
             FROM alert_rollup WHERE bucket >= $3 AND bucket < $4 \
           UNION ALL \
           SELECT mitre, threat_type, src_ip, dest_ip, 1, severity, ts, ts \
             FROM alerts WHERE {EDGES} \
         ) \
         SELECT m.technique, sum(r.n)::int8 AS alerts, count(DISTINCT r.src_ip) AS sources, \
           (SELECT count(DISTINCT x) FROM unnest(array_agg(r.src_ip) || array_agg(r.dest_ip)) AS x) AS assets, \
           array_agg(DISTINCT r.threat_type) AS threat_types, min(r.severity) AS severity, \
           min(r.first_seen) AS first_seen, max(r.last_seen) AS last_seen \
         FROM r CROSS JOIN LATERAL unnest(r.mitre) AS m(technique) \
         WHERE ($5::text IS NULL OR r.src_ip = $5::inet OR r.dest_ip = $5::inet) \
         GROUP BY m.technique ORDER BY sum(r.n) DESC, m.technique LIMIT $6"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Timestamptz, _>(window.since)
        .bind::<Timestamptz, _>(window.until)
        .bind::<Timestamptz, _>(lo)
        .bind::<Timestamptz, _>(hi)
        .bind::<Nullable<Text>, _>(ip)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}

/// One address among the top talkers.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct TalkerRow {
    #[diesel(sql_type = Text)]
    pub ip: String,
    #[diesel(sql_type = BigInt)]
    pub bytes_sent: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes_received: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes_total: i64,
    #[diesel(sql_type = BigInt)]
    pub flows_as_client: i64,
    #[diesel(sql_type = BigInt)]
    pub flows_as_server: i64,
}

/// Addresses by bytes sent plus received over `window`.
pub async fn top_talkers(
    conn: &mut AsyncPgConnection,
    window: Window,
    limit: i64,
) -> Result<Vec<TalkerRow>, StoreError> {
    let (lo, hi) = whole_hours(window);
    let sql = format!(
        "SELECT host(ip) AS ip, sum(sent)::int8 AS bytes_sent, sum(recv)::int8 AS bytes_received, \
           (sum(sent) + sum(recv))::int8 AS bytes_total, \
           sum(fc)::int8 AS flows_as_client, sum(fs)::int8 AS flows_as_server \
         FROM ( \
           SELECT ip, bytes_sent AS sent, bytes_received AS recv, flows_as_client AS fc, \
                  flows_as_server AS fs \
             FROM talker_rollup WHERE bucket >= $3 AND bucket < $4 \
           UNION ALL \
           SELECT src_ip, bytes_toserver, bytes_toclient, 1, 0 FROM flows WHERE {EDGES} \
           UNION ALL \
           SELECT dest_ip, bytes_toclient, bytes_toserver, 0, 1 FROM flows WHERE {EDGES} \
         ) t GROUP BY t.ip ORDER BY 4 DESC, t.ip LIMIT $5"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Timestamptz, _>(window.since)
        .bind::<Timestamptz, _>(window.until)
        .bind::<Timestamptz, _>(lo)
        .bind::<Timestamptz, _>(hi)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
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
}
