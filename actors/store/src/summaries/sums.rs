//! Summaries that are sums (alert counts, top talkers, TLS statistics), read from their rollups
//! in the signed pieces of [`super::pieces`]: rolling spans, whole days (or a day minus its
//! outside), whole hours and the rows at the edges.

use super::pieces::{bind_times, pieces, pieces_held, union_of, Source};
use super::EDGES;
use crate::queries::{AlertFilter, NameCount, Window};
use crate::StoreError;
use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int2, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

/// `hll_type` of a sketch that holds its values' hashes (an exact count); larger types estimate.
const EXPLICIT: i32 = 2;

/// Alerts matching `f`, and also those it would hide, from `alert_counts`, which has no
/// addresses: for filters without one, when no whitelist entry hides alerts by address (the
/// caller checks), so that the hidden alerts are the suppressed ones.
pub(super) async fn alert_counts(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
) -> Result<(i64, i64), StoreError> {
    let filter = "(cardinality($1::text[]) = 0 OR threat_type = ANY($1)) \
         AND ($2::int2 IS NULL OR severity <= $2)";
    let select = |source: Source, s: i64, from: &str, to: &str| match source {
        Source::Rows => format!(
            "SELECT {s} * (CASE WHEN $3 OR NOT acknowledged THEN 1 ELSE 0 END)::int8 AS n, \
               evidence ? 'suppressed_by' AS suppressed \
             FROM alerts WHERE ts >= {from} AND ts < {to} AND {filter}"
        ),
        _ => format!(
            "SELECT {s} * (CASE WHEN $3 THEN alerts ELSE open END) AS n, suppressed \
             FROM {} WHERE {} AND {filter}",
            source.table("alert_counts"),
            source.range(from, to)
        ),
    };
    let (union, times) = union_of(&pieces(f.window, Utc::now()), 5, select);
    let sql = format!(
        "SELECT COALESCE(netmonitor_sum(n) FILTER (WHERE NOT ($4::bool AND suppressed)), 0) \
             AS shown, \
           COALESCE(netmonitor_sum(n), 0)::int8 AS total FROM ({union}) x"
    );
    let q = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Array<Text>, _>(f.threat_types.clone())
        .bind::<Nullable<Int2>, _>(f.max_severity)
        .bind::<Bool, _>(f.include_acknowledged)
        .bind::<Bool, _>(f.hide_whitelisted);
    let n: super::ShownAndTotal = bind_times(q, &times).get_result(conn).await?;
    Ok((n.shown, n.total))
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
    let pieces = pieces_held(conn, "talker", window).await?;
    let (union, times) = union_of(&pieces, 2, |source, s, from, to| {
        let range = format!("ts >= {from} AND ts < {to}");
        match source {
            Source::Rows => format!(
                "SELECT src_ip AS ip, {s} * bytes_toserver AS sent, {s} * bytes_toclient AS recv, \
                   {s}::int8 AS fc, 0::int8 AS fs FROM flows WHERE {range} \
                 UNION ALL \
                 SELECT dest_ip, {s} * bytes_toclient, {s} * bytes_toserver, 0, {s} FROM flows WHERE {range}"
            ),
            _ => format!(
                "SELECT ip, {s} * bytes_sent AS sent, {s} * bytes_received AS recv, \
                   {s} * flows_as_client AS fc, {s} * flows_as_server AS fs \
                 FROM {} WHERE {}",
                source.table("talker_rollup"),
                source.range(from, to)
            ),
        }
    });
    let sql = format!(
        "SELECT host(ip) AS ip, netmonitor_sum(sent) AS bytes_sent, \
           netmonitor_sum(recv) AS bytes_received, \
           (netmonitor_sum(sent) + netmonitor_sum(recv))::int8 AS bytes_total, \
           netmonitor_sum(fc) AS flows_as_client, netmonitor_sum(fs) AS flows_as_server \
         FROM ({union}) t GROUP BY t.ip HAVING netmonitor_sum(fc) + netmonitor_sum(fs) > 0 \
         ORDER BY 4 DESC, t.ip LIMIT $1"
    );
    Ok(bind_times(
        diesel::sql_query(sql).into_boxed().bind::<BigInt, _>(limit),
        &times,
    )
    .load(conn)
    .await?)
}

/// Totals over TLS sessions in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TlsTotals {
    pub sessions: i64,
    pub clients: i64,
    pub servers: i64,
    pub without_sni: i64,
    pub quic: i64,
    /// Whether `clients` and `servers` are HyperLogLog estimates (standard error 0.8%): false
    /// while the window holds at most 1,280 of each, which the sketches count exactly.
    pub addresses_estimated: bool,
    pub distinct_ja3: i64,
    pub distinct_ja4: i64,
    pub blocklisted_ja3_sessions: i64,
    pub certificates: i64,
    pub self_signed_certificates: i64,
    pub expired_certificates: i64,
}

/// TLS totals and the most frequent versions, fingerprints and server names over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct TlsStats {
    pub totals: TlsTotals,
    pub versions: Vec<NameCount>,
    pub ja3: Vec<NameCount>,
    pub ja3s: Vec<NameCount>,
    pub ja4: Vec<NameCount>,
    pub sni: Vec<NameCount>,
}

/// One line of [`tls_stats`]' answer: a top value of `kind`, or (`kind` = "totals") the
/// totals as a JSON object in `value`.
#[derive(QueryableByName)]
struct TlsLine {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// TLS statistics over `window` from `tls_rollup` (counts per attribute value, see the
/// `tls_rollup` migration) read in [`pieces`], and distinct clients and servers from the sketches
/// in `tls_distinct` (see its migration) read in additive [`tiers`](super::tiers), in one
/// statement: the `limit` most frequent values of each attribute, and totals, with blocklisted
/// JA3 and certificate flags judged now.
pub async fn tls_stats(
    conn: &mut AsyncPgConnection,
    window: Window,
    limit: i64,
) -> Result<TlsStats, StoreError> {
    let pieces = pieces_held(conn, "tls", window).await?;
    let (union, times) = union_of(&pieces, 8, |source, s, from, to| {
        match source {
            Source::Rows => format!(
                "SELECT v.kind, v.value, {s}::int8 AS n FROM tls_sessions t, netmonitor_tls_values(t) v \
                 WHERE t.ts >= {from} AND t.ts < {to}"
            ),
            _ => format!(
                "SELECT kind, value, {s} * sessions AS n FROM {} WHERE {}",
                source.table("tls_rollup"),
                source.range(from, to)
            ),
        }
    });
    // the precision of the sketches, as the migration writes them
    let sketch = |ip: &str| format!("hll_add_agg(netmonitor_address_hash({ip}), 14, 5, -1, 1)");
    let sql = format!(
        "WITH r AS ({union}), g AS MATERIALIZED ( \
           SELECT kind, value, netmonitor_sum(n) AS n FROM r GROUP BY 1, 2 HAVING netmonitor_sum(n) > 0 \
         ), sketches AS ( \
           SELECT hll_union_agg(clients) AS clients, hll_union_agg(servers) AS servers FROM ( \
             {} \
             UNION ALL \
             SELECT {}, {} FROM tls_sessions WHERE {EDGES} \
           ) s \
         ), addresses AS ( \
           SELECT COALESCE(round(hll_cardinality(clients)), 0)::int8 AS clients, \
             COALESCE(round(hll_cardinality(servers)), 0)::int8 AS servers, \
             COALESCE(hll_type(clients) > {EXPLICIT} OR hll_type(servers) > {EXPLICIT}, false) \
               AS addresses_estimated \
           FROM sketches \
         ), certs AS ( \
           SELECT count(*) AS certificates, \
             count(*) FILTER (WHERE c.self_signed) AS self_signed_certificates, \
             count(*) FILTER (WHERE c.not_after < now()) AS expired_certificates \
           FROM g LEFT JOIN certificates c ON c.fingerprint = g.value WHERE g.kind = 'certificate' \
         ), totals AS ( \
           SELECT COALESCE(netmonitor_sum(n) FILTER (WHERE kind = 'transport'), 0)::int8 AS sessions, \
             (COALESCE(netmonitor_sum(n) FILTER (WHERE kind = 'transport'), 0) \
               - COALESCE(netmonitor_sum(n) FILTER (WHERE kind = 'sni'), 0))::int8 AS without_sni, \
             COALESCE(netmonitor_sum(n) FILTER (WHERE kind = 'transport' AND value = 'quic'), 0) \
               AS quic, \
             count(*) FILTER (WHERE kind = 'ja3') AS distinct_ja3, \
             count(*) FILTER (WHERE kind = 'ja4') AS distinct_ja4, \
             COALESCE(netmonitor_sum(n) FILTER (WHERE kind = 'ja3' \
               AND value IN (SELECT ja3 FROM ja3_blocklist)), 0)::int8 AS blocklisted_ja3_sessions \
           FROM g \
         ) \
         SELECT kind, value, n FROM ( \
           SELECT kind, value, n, row_number() OVER (PARTITION BY kind ORDER BY n DESC, value) AS rank \
           FROM g WHERE kind IN ('version', 'ja3', 'ja3s', 'ja4', 'sni') \
         ) top WHERE rank <= $7 \
         UNION ALL \
         SELECT 'totals', row_to_json(x)::text, 0 FROM (SELECT * FROM totals, addresses, certs) x",
        super::rolled("clients, servers", "tls_distinct", ""),
        sketch("src_ip"),
        sketch("dest_ip"),
    );
    let q = super::tiered(sql, window, super::tiers(window)).bind::<BigInt, _>(limit);
    let lines: Vec<TlsLine> = bind_times(q, &times).load(conn).await?;
    let mut stats = TlsStats::default();
    for line in lines {
        let list = match line.kind.as_str() {
            "version" => &mut stats.versions,
            "ja3" => &mut stats.ja3,
            "ja3s" => &mut stats.ja3s,
            "ja4" => &mut stats.ja4,
            "sni" => &mut stats.sni,
            _ => {
                stats.totals = serde_json::from_str(&line.value)
                    .map_err(|e| StoreError::Invalid(format!("TLS totals {}: {e}", line.value)))?;
                continue;
            }
        };
        list.push(NameCount {
            name: line.value,
            count: line.n,
        });
    }
    // the window function ranks within a kind; the lines of a kind arrive in any order
    for list in [
        &mut stats.versions,
        &mut stats.ja3,
        &mut stats.ja3s,
        &mut stats.ja4,
        &mut stats.sni,
    ] {
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    }
    Ok(stats)
}
