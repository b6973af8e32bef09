//! Detections: alerts grouped by threat type and source (`get_threat_detections`).

use super::pieces::{bind_times, pieces_held, union_of, Source};
use super::{rolled, tiered, tiers, EDGES};
use crate::queries::{self, not_whitelisted, Window};
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int2, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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
/// are left out. Without an address filter or an address-only whitelist entry to apply, the
/// groups are ranked by their counts alone ([`ranked_groups`]); otherwise per address pair.
pub async fn threat_groups(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
    threat_type: Option<&str>,
    hide_whitelisted: bool,
    limit: i64,
) -> Result<Vec<ThreatGroup>, StoreError> {
    if ip.is_none() && !(hide_whitelisted && queries::address_whitelist_exists(conn).await?) {
        return ranked_groups(conn, window, threat_type, hide_whitelisted, limit).await;
    }
    pair_groups(conn, window, ip, threat_type, hide_whitelisted, limit).await
}

/// The groups ranked by counts (sums, read in [`pieces_with`], rolling spans included: the
/// `alert_rolling` migration), then described (targets, severity, first and last time,
/// signatures) from `alert_rollup` and the rows at the window's edges for the groups shown
/// only, through the rollup's index by source.
async fn ranked_groups(
    conn: &mut AsyncPgConnection,
    window: Window,
    threat_type: Option<&str>,
    hide_whitelisted: bool,
    limit: i64,
) -> Result<Vec<ThreatGroup>, StoreError> {
    let pieces = pieces_held(conn, "alert", window).await?;
    let (union, times) = union_of(&pieces, 10, |source, s, from, to| {
        match source {
        Source::Rows => format!(
            "SELECT threat_type, src_ip, {s}::int8 AS n, {s} * (NOT acknowledged)::int::int8 AS open \
             FROM alerts WHERE ts >= {from} AND ts < {to} \
               AND ($7::text IS NULL OR threat_type = $7) AND (NOT $8 OR NOT (evidence ? 'suppressed_by'))"
        ),
        _ => format!(
            "SELECT threat_type, src_ip, {s} * alerts AS n, {s} * open AS open FROM {} WHERE {} \
               AND ($7::text IS NULL OR threat_type = $7) AND (NOT $8 OR NOT suppressed)",
            source.table("alert_rollup"),
            source.range(from, to)
        ),
    }
    });
    // each shown group's rows, looked up through the source indexes group by group (a join of
    // the groups with all the rows of the window would read every group's)
    let of_group = "r.threat_type = t.threat_type AND r.src_ip = t.src_ip";
    let sql = format!(
        "WITH top AS MATERIALIZED ( \
           SELECT threat_type, src_ip, netmonitor_sum(n) AS n, netmonitor_sum(open) AS open \
           FROM ({union}) u \
           GROUP BY 1, 2 HAVING netmonitor_sum(n) > 0 ORDER BY 3 DESC, 1, 2 LIMIT $9 \
         ), described AS ( \
           SELECT x.* FROM top t CROSS JOIN LATERAL ({}) x \
           UNION ALL \
           SELECT x.* FROM top t CROSS JOIN LATERAL ( \
             SELECT threat_type, src_ip, dest_ip, signature, severity, ts AS first_seen, \
               ts AS last_seen FROM alerts r \
             WHERE {EDGES} AND (NOT $8 OR NOT (evidence ? 'suppressed_by')) AND {of_group}) x \
         ), d AS ( \
           SELECT threat_type, src_ip, count(DISTINCT dest_ip) AS targets, min(severity) AS severity, \
             min(first_seen) AS first_seen, max(last_seen) AS last_seen, \
             array_agg(DISTINCT signature ORDER BY signature) AS signatures \
           FROM described GROUP BY 1, 2 \
         ) \
         SELECT top.threat_type, host(top.src_ip) AS src_ip, top.n AS alerts, \
           top.open AS unacknowledged, d.targets, d.severity, d.first_seen, d.last_seen, d.signatures \
         FROM top JOIN d USING (threat_type, src_ip) \
         ORDER BY top.n DESC, top.threat_type, top.src_ip",
        rolled(
            "threat_type, src_ip, dest_ip, signature, severity, first_seen, last_seen",
            "alert_rollup",
            &format!("AND (NOT $8 OR NOT r.suppressed) AND {of_group}")
        ),
    );
    let q = tiered(sql, window, tiers(window))
        .bind::<Nullable<Text>, _>(threat_type.map(str::to_owned))
        .bind::<Bool, _>(hide_whitelisted)
        .bind::<BigInt, _>(limit);
    Ok(bind_times(q, &times).load(conn).await?)
}

/// The groups from the alert rollup per address pair, whitelists applied per pair.
async fn pair_groups(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
    threat_type: Option<&str>,
    hide_whitelisted: bool,
    limit: i64,
) -> Result<Vec<ThreatGroup>, StoreError> {
    let t = tiers(window);
    // Hash aggregation in two steps (per target, then per source) instead of DISTINCT
    // aggregates, which sort; whitelists (which only look at the addresses) are checked once
    // per address pair, and the signatures are collected for the chosen groups only.
    let sql = format!(
        "WITH r AS ( \
           SELECT * FROM ( \
             {} \
             UNION ALL \
             SELECT threat_type, src_ip, dest_ip, signature, 1, (NOT acknowledged)::int::int8, severity, ts, ts \
               FROM alerts WHERE {EDGES} AND (NOT $9 OR NOT (evidence ? 'suppressed_by')) \
           ) r \
           WHERE ($7::text IS NULL OR r.src_ip = $7::inet OR r.dest_ip = $7::inet) \
             AND ($8::text IS NULL OR r.threat_type = $8) \
         ), per_target AS ( \
           SELECT threat_type, src_ip, dest_ip, netmonitor_sum(n) AS n, netmonitor_sum(open) AS open, \
             min(severity) AS severity, min(first_seen) AS first_seen, max(last_seen) AS last_seen \
           FROM r GROUP BY 1, 2, 3 \
         ), top AS MATERIALIZED ( \
           SELECT threat_type, src_ip, netmonitor_sum(n) AS n, netmonitor_sum(open) AS open, \
             count(*) AS targets, \
             min(severity) AS severity, min(first_seen) AS first_seen, max(last_seen) AS last_seen \
           FROM per_target r WHERE NOT $9 OR {wl} \
           GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT $10 \
         ), sigs AS ( \
           SELECT threat_type, src_ip, array_agg(signature ORDER BY signature) AS signatures \
           FROM (SELECT threat_type, src_ip, signature FROM r \
                 WHERE (threat_type, src_ip) IN (SELECT threat_type, src_ip FROM top) \
                   AND (NOT $9 OR {wl}) \
                 GROUP BY 1, 2, 3) s \
           GROUP BY 1, 2 \
         ) \
         SELECT top.threat_type, host(top.src_ip) AS src_ip, top.n::int8 AS alerts, \
           top.open::int8 AS unacknowledged, top.targets, top.severity, top.first_seen, top.last_seen, \
           sigs.signatures \
         FROM top JOIN sigs USING (threat_type, src_ip) \
         ORDER BY top.n DESC, top.threat_type, top.src_ip",
        rolled(
            "threat_type, src_ip, dest_ip, signature, alerts AS n, open, severity, first_seen, last_seen",
            "alert_rollup",
            "AND (NOT $9 OR NOT r.suppressed)"
        ),
        wl = not_whitelisted("r")
    );
    Ok(tiered(sql, window, t)
        .bind::<Nullable<Text>, _>(ip)
        .bind::<Nullable<Text>, _>(threat_type)
        .bind::<Bool, _>(hide_whitelisted)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}
