//! Reads for the MCP tools on the async connection.

use super::FeedRecord;
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// Every feed (async, for the tools).
pub async fn feeds(conn: &mut AsyncPgConnection) -> Result<Vec<FeedRecord>, StoreError> {
    Ok(threat_feeds::table
        .select(FeedRecord::as_select())
        .order(threat_feeds::name)
        .load(conn)
        .await?)
}

/// Indicators held per feed and kind.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct KindCount {
    #[diesel(sql_type = Text)]
    pub feed: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt)]
    pub indicators: i64,
    #[diesel(sql_type = BigInt)]
    pub expired: i64,
}

/// Indicators per feed and kind (and how many have expired).
pub async fn kind_counts(conn: &mut AsyncPgConnection) -> Result<Vec<KindCount>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT feed, kind, count(*) AS indicators, \
           count(*) FILTER (WHERE valid_until IS NOT NULL AND valid_until <= now()) AS expired \
         FROM indicators GROUP BY feed, kind ORDER BY feed, kind",
    )
    .load(conn)
    .await?)
}

/// One stored indicator with everything the tools show.
#[derive(Queryable, Selectable, Debug, Clone, Serialize, PartialEq)]
#[diesel(table_name = indicators)]
#[allow(missing_docs)]
pub struct IndicatorRecord {
    pub feed: String,
    pub kind: String,
    pub value: String,
    pub confidence: i16,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub tags: Vec<String>,
}

/// Stored indicators with one of `values` (any kind, any feed).
pub async fn indicators_with_values(
    conn: &mut AsyncPgConnection,
    values: &[String],
) -> Result<Vec<IndicatorRecord>, StoreError> {
    Ok(indicators::table
        .filter(indicators::value.eq_any(values))
        .select(IndicatorRecord::as_select())
        .order((indicators::value, indicators::feed))
        .load(conn)
        .await?)
}

/// Alerts raised on each feed's indicators.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct FeedMatches {
    #[diesel(sql_type = Text)]
    pub feed: String,
    #[diesel(sql_type = BigInt)]
    pub alerts: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_match: Option<DateTime<Utc>>,
}

/// Feed-match alerts per feed since `since` (the evidence names the feeds).
pub async fn feed_matches(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<FeedMatches>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT f AS feed, count(*) AS alerts, max(ts) AS last_match \
         FROM alerts, jsonb_array_elements_text(COALESCE(evidence->'feeds', '[]'::jsonb)) AS f \
         WHERE ts >= $1 AND signature_id BETWEEN 9400001 AND 9400099 \
         GROUP BY f ORDER BY f",
    )
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?)
}

/// Ranges stored, per feed.
pub async fn asn_range_counts(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(asn_ranges::table
        .group_by(asn_ranges::feed)
        .select((asn_ranges::feed, diesel::dsl::count_star()))
        .load(conn)
        .await?)
}

/// Where and how often the sensor saw a value, from one kind of record.
#[derive(QueryableByName, Debug, Clone, Serialize, PartialEq)]
#[allow(missing_docs)]
pub struct Sighting {
    /// `dns`, `tls`, `http` or `alerts`.
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = BigInt)]
    pub events: i64,
    /// Distinct clients (source addresses).
    #[diesel(sql_type = BigInt)]
    pub clients: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first_seen: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_seen: Option<DateTime<Utc>>,
    /// Up to 10 clients.
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    pub sample_clients: Vec<String>,
}

/// `name` or a name below it, in SQL over the lower-cased text expression `col` ($1 = name).
fn under(col: &str) -> String {
    // the reversed-name indexes answer both: `$4` is the name reversed, `$5` the reversed
    // `.name` as a LIKE prefix
    format!("(reverse(lower({col})) = $4 OR reverse(lower({col})) LIKE $5)")
}

/// `value` reversed, and reversed with a leading dot as an escaped LIKE prefix: the binds of
/// [`under`].
fn reversed_name(value: &str) -> (String, String) {
    let reversed: String = value.chars().rev().collect();
    let mut prefix = String::with_capacity(reversed.len() + 3);
    for c in reversed.chars() {
        if matches!(c, '%' | '_' | '\\') {
            prefix.push('\\');
        }
        prefix.push(c);
    }
    prefix.push_str(".%");
    (reversed, prefix)
}

/// What the records in the window say about an indicator of `kind` (`domain`, `url`, `ja3`,
/// `ja3s`, `ja4`, `cert_sha1`; addresses are answered by the flow queries), plus the alerts
/// that name it. Only sources with a sighting are returned.
pub async fn sightings(
    conn: &mut AsyncPgConnection,
    kind: &str,
    value: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Sighting>, StoreError> {
    const AGG: &str =
        "count(*) AS events, count(DISTINCT src_ip) AS clients, min(ts) AS first_seen, \
        max(ts) AS last_seen, (array_agg(DISTINCT host(src_ip)))[1:10] AS sample_clients";
    let mut queries: Vec<String> = Vec::new();
    match kind {
        "domain" => {
            queries.push(format!(
                "SELECT 'dns' AS source, {AGG} FROM app_events WHERE event_type = 'dns' \
                 AND ts BETWEEN $2 AND $3 AND {}",
                under("eve->'dns'->>'rrname'")
            ));
            queries.push(format!(
                "SELECT 'tls' AS source, {AGG} FROM tls_sessions WHERE ts BETWEEN $2 AND $3 AND {}",
                under("sni")
            ));
            queries.push(format!(
                "SELECT 'http' AS source, {AGG} FROM app_events WHERE event_type = 'http' \
                 AND ts BETWEEN $2 AND $3 AND {}",
                under("eve->'http'->>'hostname'")
            ));
        }
        "url" => queries.push(format!(
            "SELECT 'http' AS source, {AGG} FROM app_events WHERE event_type = 'http' \
             AND ts BETWEEN $2 AND $3 AND position(lower(eve->'http'->>'hostname') IN $1) > 0 \
             AND right($1, length(eve->'http'->>'url')) = eve->'http'->>'url'"
        )),
        "ja3" | "ja3s" | "ja4" => queries.push(format!(
            "SELECT 'tls' AS source, {AGG} FROM tls_sessions WHERE ts BETWEEN $2 AND $3 AND {kind} = $1"
        )),
        "cert_sha1" => queries.push(format!(
            "SELECT 'tls' AS source, {AGG} FROM tls_sessions WHERE ts BETWEEN $2 AND $3 \
             AND replace(cert_fingerprint, ':', '') = $1"
        )),
        _ => {}
    }
    // addresses are `inet`: only an address can be compared with them
    let as_address = if value.parse::<std::net::IpAddr>().is_ok() {
        " OR src_ip = $1::inet OR dest_ip = $1::inet"
    } else {
        ""
    };
    queries.push(format!(
        "SELECT 'alerts' AS source, {AGG} FROM alerts WHERE ts BETWEEN $2 AND $3 \
         AND (evidence->>'indicator' = $1 OR evidence->>'matched_value' = $1{as_address})"
    ));
    let (reversed, reversed_prefix) = reversed_name(value);
    let mut out = Vec::new();
    for q in queries {
        // No matching row must be no sighting, not one row of NULL aggregates.
        let rows: Vec<Sighting> = diesel::sql_query(format!("{q} HAVING count(*) > 0"))
            .bind::<Text, _>(value)
            .bind::<Timestamptz, _>(since)
            .bind::<Timestamptz, _>(until)
            .bind::<Text, _>(&reversed)
            .bind::<Text, _>(&reversed_prefix)
            .load(conn)
            .await?;
        out.extend(rows.into_iter().filter(|s| s.events > 0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reversed_names_match_the_name_and_its_subdomains_only() {
        let (exact, prefix) = super::reversed_name("evil_x.example");
        assert_eq!(exact, "elpmaxe.x_live");
        // `_` is literal, and the dot keeps "notevil_x.example"-style names out
        assert_eq!(prefix, "elpmaxe.x\\_live.%");
    }
}
