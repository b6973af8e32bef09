//! ATT&CK mapping: alerts per technique of their `mitre` arrays (`get_mitre_mapping`).

use super::pieces::{bind_times, pieces_held, union_of, Source};
use super::{rolled, tiered, tiers, EDGES};
use crate::queries::Window;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int2, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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

/// Techniques from the alerts' `mitre` arrays, most frequent first: from sums of address pairs
/// ([`summed_techniques`]), or for one address from the alert rollup's pairs in tiers.
pub async fn mitre_mapping(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
    limit: i64,
) -> Result<Vec<MitreRow>, StoreError> {
    match ip {
        None => summed_techniques(conn, window, limit).await,
        Some(ip) => pair_techniques(conn, window, ip, limit).await,
    }
}

/// Distinct sources, assets and kinds per technique of `p` (technique, threat_type, src_ip,
/// dest_ip): CTEs `sources`, `assets` and `kinds`.
const PER_TECHNIQUE: &str = "sources AS ( \
       SELECT technique, count(*) AS sources FROM (SELECT technique, src_ip FROM p GROUP BY 1, 2) x \
       GROUP BY 1 \
     ), assets AS ( \
       SELECT technique, count(*) AS assets \
       FROM (SELECT technique, ip FROM p, LATERAL (VALUES (src_ip), (dest_ip)) v(ip) GROUP BY 1, 2) x \
       GROUP BY 1 \
     ), kinds AS ( \
       SELECT technique, array_agg(threat_type ORDER BY threat_type) AS threat_types \
       FROM (SELECT technique, threat_type FROM p GROUP BY 1, 2) x GROUP BY 1 \
     )";

/// The techniques counted from address pairs that are sums (read in [`pieces_with`], the
/// rolling pairs of the last day and week included), with each technique's first and last time
/// from `alert_techniques` in additive tiers (see the `technique_rollup` migration).
async fn summed_techniques(
    conn: &mut AsyncPgConnection,
    window: Window,
    limit: i64,
) -> Result<Vec<MitreRow>, StoreError> {
    let pieces = pieces_held(conn, "alert_pair", window).await?;
    let columns = "mitre, threat_type, src_ip, dest_ip, severity";
    let (union, times) = union_of(&pieces, 8, |source, s, from, to| match source {
        Source::Rows => {
            format!("SELECT {columns}, {s}::int8 AS n FROM alerts WHERE ts >= {from} AND ts < {to}")
        }
        Source::Span(_) => format!(
            "SELECT {columns}, alerts AS n FROM alert_pair_rolling WHERE {}",
            source.range(from, to)
        ),
        _ => format!(
            "SELECT {columns}, {s} * alerts AS n FROM {} WHERE {}",
            source.table("alert_rollup"),
            source.range(from, to)
        ),
    });
    let sql = format!(
        "WITH pairs AS ( \
           SELECT {columns}, netmonitor_sum(n) AS n FROM ({union}) u \
           GROUP BY 1, 2, 3, 4, 5 HAVING netmonitor_sum(n) > 0 \
         ), p AS MATERIALIZED ( \
           SELECT m.technique, threat_type, src_ip, dest_ip, severity, n \
           FROM pairs CROSS JOIN LATERAL unnest(pairs.mitre) AS m(technique) \
         ), totals AS ( \
           SELECT technique, netmonitor_sum(n) AS alerts, min(severity) AS severity \
           FROM p GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $7 \
         ), seen AS ( \
           SELECT technique, min(first_seen) AS first_seen, max(last_seen) AS last_seen FROM ( \
             {} \
             UNION ALL \
             SELECT m.technique, ts, ts FROM alerts, unnest(mitre) AS m(technique) WHERE {EDGES} \
           ) s WHERE technique IN (SELECT technique FROM totals) GROUP BY 1 \
         ), {PER_TECHNIQUE} \
         SELECT t.technique, t.alerts, s.sources, a.assets, k.threat_types, t.severity, \
           seen.first_seen, seen.last_seen \
         FROM totals t JOIN sources s USING (technique) JOIN assets a USING (technique) \
           JOIN kinds k USING (technique) JOIN seen USING (technique) \
         ORDER BY t.alerts DESC, t.technique",
        rolled("technique, first_seen, last_seen", "alert_techniques", "")
    );
    let q = tiered(sql, window, tiers(window)).bind::<BigInt, _>(limit);
    Ok(bind_times(q, &times).load(conn).await?)
}

/// The techniques of the alerts involving `ip`, from the alert rollup's address pairs in tiers
/// (through its indexes by address). The rows are first summed per address pair, so that the
/// distinct counts are hash aggregates over those sums.
async fn pair_techniques(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: &str,
    limit: i64,
) -> Result<Vec<MitreRow>, StoreError> {
    let t = tiers(window);
    let sql = format!(
        "WITH r AS ( \
           {} \
           UNION ALL \
           SELECT mitre, threat_type, src_ip, dest_ip, 1, severity, ts, ts \
             FROM alerts WHERE {EDGES} \
         ), pairs AS ( \
           SELECT mitre, threat_type, src_ip, dest_ip, netmonitor_sum(n) AS n, min(severity) AS severity, \
             min(first_seen) AS first_seen, max(last_seen) AS last_seen \
           FROM r WHERE r.src_ip = $7::inet OR r.dest_ip = $7::inet \
           GROUP BY 1, 2, 3, 4 \
         ), p AS MATERIALIZED ( \
           SELECT m.technique, threat_type, src_ip, dest_ip, n, severity, first_seen, last_seen \
           FROM pairs CROSS JOIN LATERAL unnest(pairs.mitre) AS m(technique) \
         ), totals AS ( \
           SELECT technique, netmonitor_sum(n) AS alerts, min(severity) AS severity, \
             min(first_seen) AS first_seen, max(last_seen) AS last_seen \
           FROM p GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $8 \
         ), {PER_TECHNIQUE} \
         SELECT t.technique, t.alerts, s.sources, a.assets, k.threat_types, t.severity, \
           t.first_seen, t.last_seen \
         FROM totals t JOIN sources s USING (technique) JOIN assets a USING (technique) \
           JOIN kinds k USING (technique) \
         ORDER BY t.alerts DESC, t.technique",
        rolled(
            "mitre, threat_type, src_ip, dest_ip, alerts AS n, severity, first_seen, last_seen",
            "alert_rollup",
            ""
        )
    );
    Ok(tiered(sql, window, t)
        .bind::<Text, _>(ip)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}
