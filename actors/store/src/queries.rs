//! The read and small-write queries behind the MCP tools: alerts (filters, grouping, MITRE,
//! acknowledgement), flows per address, TLS sessions with their certificates, the JA3
//! blocklist, Kerberos statistics, PCAP captures and stored configuration (the whitelist and
//! service providers are in [`crate::suppression`]).
//!
//! Every statement is either built with diesel's query builder or is a fixed SQL text whose
//! inputs are bound parameters; nothing a caller passes is ever spliced into SQL. All
//! functions take the async connection the query paths share (see [`crate::DbPool`]).

use crate::copy::{clean_json, clean_text};
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int2, Int4, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// A time range `[since, until]` over event timestamps (capture time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start, inclusive.
    pub since: DateTime<Utc>,
    /// End, inclusive.
    pub until: DateTime<Utc>,
}

/// Leaves out alerts the alert stage kept as suppressed evidence, and alerts stored before an
/// address-only whitelist entry that covers them (in its direction) was added.
fn alert_not_whitelisted() -> String {
    format!(
        "(NOT (alerts.evidence ? 'suppressed_by') AND {})",
        not_whitelisted("alerts")
    )
}

/// True when no address-only whitelist entry covers the row `rel` (with `src_ip` and
/// `dest_ip` columns) in its direction.
pub(crate) fn not_whitelisted(rel: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM whitelist w WHERE w.ip_cidr IS NOT NULL AND w.domain IS NULL \
         AND w.port IS NULL AND w.sensor IS NULL \
         AND ((w.direction <> 'destination' AND {rel}.src_ip <<= w.ip_cidr::inet) \
           OR (w.direction <> 'source' AND {rel}.dest_ip <<= w.ip_cidr::inet)))"
    )
}

/// Escapes `%`, `_` and `\` and wraps the text in `%…%`, for a bound `ILIKE … ESCAPE '\'`
/// "contains" match.
pub fn like_contains(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

// ---------------------------------------------------------------------------------------------
// Alerts

/// One stored alert.
#[derive(Queryable, Selectable, Debug, Clone, Serialize)]
#[diesel(table_name = alerts)]
#[allow(missing_docs)]
pub struct AlertRecord {
    pub id: i64,
    pub sensor: String,
    pub flow_id: i64,
    pub ts: DateTime<Utc>,
    #[diesel(select_expression = diesel::dsl::sql::<Text>("host(alerts.src_ip)"))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<Text>)]
    pub src_ip: String,
    pub src_port: i32,
    #[diesel(select_expression = diesel::dsl::sql::<Text>("host(alerts.dest_ip)"))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<Text>)]
    pub dest_ip: String,
    pub dest_port: i32,
    pub proto: i16,
    pub signature_id: i64,
    pub signature: String,
    pub category: String,
    pub severity: i16,
    pub threat_type: String,
    pub mitre: Vec<String>,
    pub evidence: serde_json::Value,
    pub acknowledged: bool,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// Which alerts a listing covers.
#[derive(Clone, Debug)]
pub struct AlertFilter {
    /// Capture-time range.
    pub window: Window,
    /// Only alerts where this address is the source or the destination.
    pub ip: Option<String>,
    /// Only these threat types (empty: any).
    pub threat_types: Vec<String>,
    /// Only alerts at least this severe (1 = high … 4 = informational).
    pub max_severity: Option<i16>,
    /// Include acknowledged alerts.
    pub include_acknowledged: bool,
    /// Leave out alerts whose source or destination is on the whitelist.
    pub hide_whitelisted: bool,
    /// Only alerts whose evidence names this indicator (as listed or as seen).
    pub indicator: Option<String>,
}

fn filter_alerts<'a, ST: 'a>(
    mut q: alerts::BoxedQuery<'a, Pg, ST>,
    f: &'a AlertFilter,
) -> alerts::BoxedQuery<'a, Pg, ST> {
    q = q
        .filter(alerts::ts.ge(f.window.since))
        .filter(alerts::ts.le(f.window.until));
    if let Some(ip) = &f.ip {
        q = q.filter(
            diesel::dsl::sql::<Bool>("(alerts.src_ip = ")
                .bind::<Text, _>(ip)
                .sql("::inet OR alerts.dest_ip = ")
                .bind::<Text, _>(ip)
                .sql("::inet)"),
        );
    }
    if !f.threat_types.is_empty() {
        q = q.filter(alerts::threat_type.eq_any(&f.threat_types));
    }
    if let Some(s) = f.max_severity {
        q = q.filter(alerts::severity.le(s));
    }
    if !f.include_acknowledged {
        q = q.filter(alerts::acknowledged.eq(false));
    }
    if f.hide_whitelisted {
        q = q.filter(diesel::dsl::sql::<Bool>(&alert_not_whitelisted()));
    }
    if let Some(v) = &f.indicator {
        q = q.filter(
            diesel::dsl::sql::<Bool>("(evidence->>'indicator' = ")
                .bind::<Text, _>(v)
                .sql(" OR evidence->>'matched_value' = ")
                .bind::<Text, _>(v)
                .sql(")"),
        );
    }
    q
}

/// Alerts matching `f`, newest first, at most `limit`.
pub async fn list_alerts(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
    limit: i64,
) -> Result<Vec<AlertRecord>, StoreError> {
    list_alerts_before(conn, f, None, limit).await
}

/// Alerts matching `f`, newest first, that come after `before` (the time and id of the last
/// alert of the previous page) in that order, at most `limit`.
pub async fn list_alerts_before(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<AlertRecord>, StoreError> {
    let mut q = filter_alerts(
        alerts::table.select(AlertRecord::as_select()).into_boxed(),
        f,
    );
    if let Some((ts, id)) = before {
        q = q.filter(
            alerts::ts
                .lt(ts)
                .or(alerts::ts.eq(ts).and(alerts::id.lt(id))),
        );
    }
    // Few alerts name an indicator, and its indexes find them; ordering by the bare `ts` would
    // let the planner walk the time index backwards instead, filtering every alert of the
    // window when none matches. `ts + 0` sorts the same but matches no index.
    let newest_first = match f.indicator {
        Some(_) => "alerts.ts + interval '0'",
        None => "alerts.ts",
    };
    Ok(q.order((
        diesel::dsl::sql::<Timestamptz>(newest_first).desc(),
        alerts::id.desc(),
    ))
    .limit(limit)
    .load(conn)
    .await?)
}

/// One page of alerts matching `f` in id order, after `after_id` (for exports).
pub async fn alerts_page(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<AlertRecord>, StoreError> {
    let q = filter_alerts(
        alerts::table.select(AlertRecord::as_select()).into_boxed(),
        f,
    );
    Ok(q.filter(alerts::id.gt(after_id))
        .order(alerts::id.asc())
        .limit(limit)
        .load(conn)
        .await?)
}

/// Number of alerts matching `f`.
pub async fn count_alerts(
    conn: &mut AsyncPgConnection,
    f: &AlertFilter,
) -> Result<i64, StoreError> {
    let q = filter_alerts(
        alerts::table.select(diesel::dsl::count_star()).into_boxed(),
        f,
    );
    Ok(q.get_result(conn).await?)
}

/// One alert by id.
pub async fn get_alert(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> Result<Option<AlertRecord>, StoreError> {
    Ok(alerts::table
        .filter(alerts::id.eq(id))
        .select(AlertRecord::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// What acknowledging one alert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    /// It was open and is now acknowledged.
    Acknowledged,
    /// It had been acknowledged before (nothing changed).
    AlreadyAcknowledged,
}

/// Marks one alert acknowledged by `by`; `None` when no such alert exists.
pub async fn acknowledge_alert(
    conn: &mut AsyncPgConnection,
    id: i64,
    by: &str,
) -> Result<Option<(AckOutcome, AlertRecord)>, StoreError> {
    let by = &*clean_text(by);
    let updated = diesel::update(
        alerts::table
            .filter(alerts::id.eq(id))
            .filter(alerts::acknowledged.eq(false)),
    )
    .set((
        alerts::acknowledged.eq(true),
        alerts::acknowledged_by.eq(Some(by)),
        alerts::acknowledged_at.eq(Some(Utc::now())),
    ))
    .returning(AlertRecord::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    if let Some(a) = updated {
        return Ok(Some((AckOutcome::Acknowledged, a)));
    }
    Ok(get_alert(conn, id)
        .await?
        .map(|a| (AckOutcome::AlreadyAcknowledged, a)))
}

/// Acknowledges every open alert in `window` where `ip` is source or destination (optionally
/// only of one threat type); returns how many changed.
pub async fn acknowledge_alerts_by_ip(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
    threat_type: Option<&str>,
    by: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE alerts SET acknowledged = true, acknowledged_by = $1, acknowledged_at = now() \
         WHERE NOT acknowledged AND (src_ip = $2::inet OR dest_ip = $2::inet) \
           AND ts >= $3 AND ts <= $4 AND ($5::text IS NULL OR threat_type = $5)",
    )
    .bind::<Text, _>(by)
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .bind::<Nullable<Text>, _>(threat_type)
    .execute(conn)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Flows

/// Traffic of one address over a window.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct IpTraffic {
    #[diesel(sql_type = BigInt)]
    pub flows_as_client: i64,
    #[diesel(sql_type = BigInt)]
    pub flows_as_server: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes_sent: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes_received: i64,
    #[diesel(sql_type = BigInt)]
    pub packets_sent: i64,
    #[diesel(sql_type = BigInt)]
    pub packets_received: i64,
    #[diesel(sql_type = BigInt)]
    pub peers: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first_seen: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_seen: Option<DateTime<Utc>>,
}

/// Flow totals of `ip` (as client and as server) in `window`.
pub async fn ip_traffic(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
) -> Result<IpTraffic, StoreError> {
    Ok(diesel::sql_query(
        "SELECT count(*) FILTER (WHERE src_ip = $1::inet) AS flows_as_client, \
           count(*) FILTER (WHERE dest_ip = $1::inet) AS flows_as_server, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN bytes_toserver ELSE bytes_toclient END), 0)::int8 AS bytes_sent, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN bytes_toclient ELSE bytes_toserver END), 0)::int8 AS bytes_received, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN pkts_toserver ELSE pkts_toclient END), 0)::int8 AS packets_sent, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN pkts_toclient ELSE pkts_toserver END), 0)::int8 AS packets_received, \
           count(DISTINCT CASE WHEN src_ip = $1::inet THEN dest_ip ELSE src_ip END) AS peers, \
           min(start_ts) AS first_seen, max(end_ts) AS last_seen \
         FROM flows WHERE (src_ip = $1::inet OR dest_ip = $1::inet) AND ts >= $2 AND ts <= $3",
    )
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .get_result(conn)
    .await?)
}

/// One peer of an address.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct PeerRow {
    #[diesel(sql_type = Text)]
    pub peer: String,
    #[diesel(sql_type = BigInt)]
    pub flows: i64,
    /// Flows the address itself started.
    #[diesel(sql_type = BigInt)]
    pub initiated: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
}

/// The peers of `ip` by bytes exchanged.
pub async fn ip_peers(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
    limit: i64,
) -> Result<Vec<PeerRow>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT host(CASE WHEN src_ip = $1::inet THEN dest_ip ELSE src_ip END) AS peer, count(*) AS flows, \
           count(*) FILTER (WHERE src_ip = $1::inet) AS initiated, \
           COALESCE(sum(bytes_toserver + bytes_toclient), 0)::int8 AS bytes \
         FROM flows WHERE (src_ip = $1::inet OR dest_ip = $1::inet) AND ts >= $2 AND ts <= $3 \
         GROUP BY 1 ORDER BY 4 DESC, 1 LIMIT $4",
    )
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// One server port in an address's flows.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct PortRow {
    #[diesel(sql_type = Int4)]
    pub port: i32,
    #[diesel(sql_type = Int2)]
    pub proto: i16,
    /// True when the address answered on this port, false when it connected to it.
    #[diesel(sql_type = Bool)]
    pub served: bool,
    #[diesel(sql_type = BigInt)]
    pub flows: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    #[diesel(sql_type = Array<Text>)]
    pub app_protos: Vec<String>,
}

/// Server ports `ip` used or served, by flow count.
pub async fn ip_ports(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
    limit: i64,
) -> Result<Vec<PortRow>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT dest_port AS port, proto, (dest_ip = $1::inet) AS served, count(*) AS flows, \
           COALESCE(sum(bytes_toserver + bytes_toclient), 0)::int8 AS bytes, \
           array_remove(array_agg(DISTINCT app_proto), NULL) AS app_protos \
         FROM flows WHERE (src_ip = $1::inet OR dest_ip = $1::inet) AND ts >= $2 AND ts <= $3 \
         GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT $4",
    )
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// A name and how often it occurred.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameCount {
    /// The value counted.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Occurrences.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Application protocols of the flows touching `ip` (`unknown` when none was recognised).
pub async fn ip_app_protocols(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
) -> Result<Vec<NameCount>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT COALESCE(app_proto, 'unknown') AS name, count(*) AS count \
         FROM flows WHERE (src_ip = $1::inet OR dest_ip = $1::inet) AND ts >= $2 AND ts <= $3 \
         GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .load(conn)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A TLS session with its leaf certificate (when seen) and JA3 blocklist status.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct TlsSessionRecord {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub ts: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub flow_id: i64,
    #[diesel(sql_type = Text)]
    pub src_ip: String,
    #[diesel(sql_type = Int4)]
    pub src_port: i32,
    #[diesel(sql_type = Text)]
    pub dest_ip: String,
    #[diesel(sql_type = Int4)]
    pub dest_port: i32,
    #[diesel(sql_type = Text)]
    pub transport: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub sni: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub version: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ja3: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ja3s: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ja4: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    pub alpn: Vec<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub cipher_selected: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cert_fingerprint: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cert_subject: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cert_issuer: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub cert_serial: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub cert_not_before: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub cert_not_after: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub cert_sans: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub cert_self_signed: Option<bool>,
    /// Why the client JA3 is blocklisted, when it is.
    #[diesel(sql_type = Nullable<Text>)]
    pub ja3_blocklist_reason: Option<String>,
}

/// Which TLS sessions to list.
#[derive(Clone, Debug)]
pub struct TlsFilter {
    /// Capture-time range.
    pub window: Window,
    /// Client or server address.
    pub ip: Option<String>,
    /// Case-insensitive substring of the SNI.
    pub sni: Option<String>,
    /// Exact client JA3 MD5.
    pub ja3: Option<String>,
    /// Exact client JA4.
    pub ja4: Option<String>,
}

/// TLS sessions matching `f`, newest first, that come after `before` (the time and id of the
/// last session of the previous page) in that order.
pub async fn tls_sessions(
    conn: &mut AsyncPgConnection,
    f: &TlsFilter,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<TlsSessionRecord>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT t.id, t.ts, t.flow_id, host(t.src_ip) AS src_ip, t.src_port, \
           host(t.dest_ip) AS dest_ip, t.dest_port, \
           t.transport, t.sni, t.version, t.ja3, t.ja3s, t.ja4, t.alpn, t.cipher_selected, \
           t.cert_fingerprint, c.subject AS cert_subject, c.issuer AS cert_issuer, \
           c.serial AS cert_serial, c.not_before AS cert_not_before, \
           c.not_after AS cert_not_after, c.sans AS cert_sans, \
           c.self_signed AS cert_self_signed, b.reason AS ja3_blocklist_reason \
         FROM tls_sessions t \
           LEFT JOIN certificates c ON c.fingerprint = t.cert_fingerprint \
           LEFT JOIN ja3_blocklist b ON b.ja3 = t.ja3 \
         WHERE t.ts >= $1 AND t.ts <= $2 \
           AND ($3::text IS NULL OR t.src_ip = $3::inet OR t.dest_ip = $3::inet) \
           AND ($4::text IS NULL OR t.sni ILIKE $4 ESCAPE '\\') \
           AND ($5::text IS NULL OR t.ja3 = $5) \
           AND ($6::text IS NULL OR t.ja4 = $6) \
           AND ($8::timestamptz IS NULL OR (t.ts, t.id) < ($8, $9)) \
         ORDER BY t.ts DESC, t.id DESC LIMIT $7",
    )
    .bind::<Timestamptz, _>(f.window.since)
    .bind::<Timestamptz, _>(f.window.until)
    .bind::<Nullable<Text>, _>(f.ip.as_deref())
    .bind::<Nullable<Text>, _>(f.sni.as_deref().map(like_contains))
    .bind::<Nullable<Text>, _>(f.ja3.as_deref())
    .bind::<Nullable<Text>, _>(f.ja4.as_deref())
    .bind::<BigInt, _>(limit)
    .bind::<Nullable<Timestamptz>, _>(before.map(|b| b.0))
    .bind::<BigInt, _>(before.map_or(0, |b| b.1))
    .load(conn)
    .await?)
}

/// A JA3 blocklist entry.
#[derive(Queryable, Selectable, Debug, Clone, Serialize)]
#[diesel(table_name = ja3_blocklist)]
#[allow(missing_docs)]
pub struct Ja3BlockRecord {
    pub ja3: String,
    pub reason: String,
    pub source: String,
    pub added_at: DateTime<Utc>,
}

/// Where and when one JA3 was seen.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct Ja3Sightings {
    #[diesel(sql_type = BigInt)]
    pub sessions: i64,
    #[diesel(sql_type = BigInt)]
    pub clients: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first_seen: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_seen: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ja3_string: Option<String>,
    /// Up to 20 client addresses.
    #[diesel(sql_type = Array<Text>)]
    pub client_ips: Vec<String>,
    /// Up to 20 server names.
    #[diesel(sql_type = Array<Text>)]
    pub snis: Vec<String>,
    /// Up to 20 JA4 fingerprints of the same sessions.
    #[diesel(sql_type = Array<Text>)]
    pub ja4s: Vec<String>,
}

/// The blocklist entry of `ja3` (lowercase MD5), if any.
pub async fn ja3_block(
    conn: &mut AsyncPgConnection,
    ja3: &str,
) -> Result<Option<Ja3BlockRecord>, StoreError> {
    Ok(ja3_blocklist::table
        .filter(ja3_blocklist::ja3.eq(ja3))
        .select(Ja3BlockRecord::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Sessions that presented `ja3`.
pub async fn ja3_sightings(
    conn: &mut AsyncPgConnection,
    ja3: &str,
) -> Result<Ja3Sightings, StoreError> {
    Ok(diesel::sql_query(
        "SELECT count(*) AS sessions, count(DISTINCT src_ip) AS clients, \
           min(ts) AS first_seen, max(ts) AS last_seen, max(ja3_string) AS ja3_string, \
           COALESCE((array_agg(DISTINCT host(src_ip)))[1:20], '{}') AS client_ips, \
           COALESCE((array_remove(array_agg(DISTINCT sni), NULL))[1:20], '{}') AS snis, \
           COALESCE((array_remove(array_agg(DISTINCT ja4), NULL))[1:20], '{}') AS ja4s \
         FROM tls_sessions WHERE ja3 = $1",
    )
    .bind::<Text, _>(ja3)
    .get_result(conn)
    .await?)
}

/// Adds or updates a blocklist entry; returns the entry and the one it replaced.
pub async fn upsert_ja3_block(
    conn: &mut AsyncPgConnection,
    ja3: &str,
    reason: &str,
    source: &str,
) -> Result<(Ja3BlockRecord, Option<Ja3BlockRecord>), StoreError> {
    let (reason, source) = (&*clean_text(reason), &*clean_text(source));
    let previous = ja3_block(conn, ja3).await?;
    let row = diesel::insert_into(ja3_blocklist::table)
        .values((
            ja3_blocklist::ja3.eq(ja3),
            ja3_blocklist::reason.eq(reason),
            ja3_blocklist::source.eq(source),
        ))
        .on_conflict(ja3_blocklist::ja3)
        .do_update()
        .set((
            ja3_blocklist::reason.eq(reason),
            ja3_blocklist::source.eq(source),
        ))
        .returning(Ja3BlockRecord::as_returning())
        .get_result(conn)
        .await?;
    Ok((row, previous))
}

/// Every blocklisted JA3 (to load into the sensor at start).
pub async fn all_ja3_blocks(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<Ja3BlockRecord>, StoreError> {
    Ok(ja3_blocklist::table
        .select(Ja3BlockRecord::as_select())
        .order(ja3_blocklist::ja3.asc())
        .load(conn)
        .await?)
}

// ---------------------------------------------------------------------------------------------
// Kerberos

/// Totals over Kerberos messages.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct KrbTotals {
    #[diesel(sql_type = BigInt)]
    pub messages: i64,
    #[diesel(sql_type = BigInt)]
    pub clients: i64,
    #[diesel(sql_type = BigInt)]
    pub kdcs: i64,
    #[diesel(sql_type = BigInt)]
    pub principals: i64,
    #[diesel(sql_type = BigInt)]
    pub errors: i64,
    #[diesel(sql_type = BigInt)]
    pub weak_encryption: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first_seen: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_seen: Option<DateTime<Utc>>,
}

/// Message, client, KDC, principal, error and weak-encryption totals.
pub async fn krb_totals(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
) -> Result<KrbTotals, StoreError> {
    Ok(diesel::sql_query(
        "SELECT count(*) AS messages, count(DISTINCT src_ip) AS clients, \
           count(DISTINCT dest_ip) AS kdcs, count(DISTINCT cname) AS principals, \
           count(*) FILTER (WHERE msg_type = 'KRB_ERROR') AS errors, \
           count(*) FILTER (WHERE weak_encryption) AS weak_encryption, \
           min(ts) AS first_seen, max(ts) AS last_seen \
         FROM kerberos_events WHERE ts >= $1 AND ts <= $2 \
           AND ($3::text IS NULL OR src_ip = $3::inet OR dest_ip = $3::inet)",
    )
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .bind::<Nullable<Text>, _>(ip)
    .get_result(conn)
    .await?)
}

/// A Kerberos attribute to count by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KrbKey {
    /// `KRB_AS_REQ`, `KRB_ERROR`, …
    MsgType,
    /// Client address.
    Client,
    /// Client principal name.
    Cname,
    /// Service principal name.
    Sname,
    /// Realm.
    Realm,
}

/// The most frequent values of `key`.
pub async fn krb_top(
    conn: &mut AsyncPgConnection,
    key: KrbKey,
    window: Window,
    ip: Option<&str>,
    limit: i64,
) -> Result<Vec<NameCount>, StoreError> {
    let col = match key {
        KrbKey::MsgType => "msg_type",
        KrbKey::Client => "host(src_ip)",
        KrbKey::Cname => "cname",
        KrbKey::Sname => "sname",
        KrbKey::Realm => "realm",
    };
    // `col` is one of the fixed column names above, never caller input.
    let sql = format!(
        "SELECT {col} AS name, count(*) AS count FROM kerberos_events \
         WHERE {col} IS NOT NULL AND ts >= $1 AND ts <= $2 \
           AND ($3::text IS NULL OR src_ip = $3::inet OR dest_ip = $3::inet) \
         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $4"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Timestamptz, _>(window.since)
        .bind::<Timestamptz, _>(window.until)
        .bind::<Nullable<Text>, _>(ip)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}

/// A numeric code (error code, encryption type) and how often it occurred.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    /// The code.
    #[diesel(sql_type = Int4)]
    pub code: i32,
    /// Occurrences.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// A numeric Kerberos field to count by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KrbCode {
    /// KRB-ERROR code.
    ErrorCode,
    /// Reply enc-part etype.
    Encryption,
    /// Ticket etype.
    TicketEncryption,
}

/// Counts per value of a numeric Kerberos field.
pub async fn krb_codes(
    conn: &mut AsyncPgConnection,
    key: KrbCode,
    window: Window,
    ip: Option<&str>,
) -> Result<Vec<CodeCount>, StoreError> {
    let col = match key {
        KrbCode::ErrorCode => "error_code",
        KrbCode::Encryption => "encryption",
        KrbCode::TicketEncryption => "ticket_encryption",
    };
    // `col` is one of the fixed column names above, never caller input.
    let sql = format!(
        "SELECT {col} AS code, count(*) AS count FROM kerberos_events \
         WHERE {col} IS NOT NULL AND ts >= $1 AND ts <= $2 \
           AND ($3::text IS NULL OR src_ip = $3::inet OR dest_ip = $3::inet) \
         GROUP BY 1 ORDER BY 2 DESC, 1"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Timestamptz, _>(window.since)
        .bind::<Timestamptz, _>(window.until)
        .bind::<Nullable<Text>, _>(ip)
        .load(conn)
        .await?)
}

/// Kerberos messages of one client with one combination of encryption types.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct KrbEtypeGroup {
    #[diesel(sql_type = Text)]
    pub src_ip: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub cname: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub realm: Option<String>,
    #[diesel(sql_type = Text)]
    pub msg_type: String,
    #[diesel(sql_type = Nullable<Int4>)]
    pub encryption: Option<i32>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub ticket_encryption: Option<i32>,
    #[diesel(sql_type = Array<Int4>)]
    pub requested_etypes: Vec<i32>,
    #[diesel(sql_type = BigInt)]
    pub messages: i64,
    #[diesel(sql_type = Timestamptz)]
    pub first_seen: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub last_seen: DateTime<Utc>,
}

/// Messages that used an encryption type outside `strong`: a reply or ticket etype not in it,
/// or a request offering none of it. Grouped per client, principal and etype combination.
pub async fn krb_weak_groups(
    conn: &mut AsyncPgConnection,
    window: Window,
    ip: Option<&str>,
    strong: &[i32],
    limit: i64,
) -> Result<Vec<KrbEtypeGroup>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT host(src_ip) AS src_ip, cname, realm, msg_type, encryption, ticket_encryption, \
           requested_etypes, count(*) AS messages, min(ts) AS first_seen, max(ts) AS last_seen \
         FROM kerberos_events \
         WHERE ts >= $1 AND ts <= $2 \
           AND ($3::text IS NULL OR src_ip = $3::inet OR dest_ip = $3::inet) \
           AND ((encryption IS NOT NULL AND NOT (encryption = ANY($4))) \
             OR (ticket_encryption IS NOT NULL AND NOT (ticket_encryption = ANY($4))) \
             OR (cardinality(requested_etypes) > 0 AND NOT (requested_etypes && $4))) \
         GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 8 DESC, 1 LIMIT $5",
    )
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .bind::<Nullable<Text>, _>(ip)
    .bind::<Array<Int4>, _>(strong)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// PCAP captures

/// A PCAP file written by an export.
#[derive(Queryable, Selectable, Debug, Clone, Serialize)]
#[diesel(table_name = pcap_captures)]
#[allow(missing_docs)]
pub struct PcapCaptureRecord {
    pub id: i64,
    pub path: String,
    pub flow_id: Option<i64>,
    pub alert_id: Option<i64>,
    pub packets: i64,
    pub bytes: i64,
    pub created_at: DateTime<Utc>,
}

/// Records an exported file; returns the row.
pub async fn insert_pcap_capture(
    conn: &mut AsyncPgConnection,
    path: &str,
    flow_id: Option<i64>,
    alert_id: Option<i64>,
    packets: i64,
    bytes: i64,
) -> Result<PcapCaptureRecord, StoreError> {
    Ok(diesel::insert_into(pcap_captures::table)
        .values((
            pcap_captures::path.eq(path),
            pcap_captures::flow_id.eq(flow_id),
            pcap_captures::alert_id.eq(alert_id),
            pcap_captures::packets.eq(packets),
            pcap_captures::bytes.eq(bytes),
        ))
        .returning(PcapCaptureRecord::as_returning())
        .get_result(conn)
        .await?)
}

/// Recorded captures, newest first.
pub async fn list_pcap_captures(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> Result<Vec<PcapCaptureRecord>, StoreError> {
    Ok(pcap_captures::table
        .select(PcapCaptureRecord::as_select())
        .order(pcap_captures::id.desc())
        .limit(limit)
        .load(conn)
        .await?)
}

/// One capture by id.
pub async fn get_pcap_capture(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> Result<Option<PcapCaptureRecord>, StoreError> {
    Ok(pcap_captures::table
        .filter(pcap_captures::id.eq(id))
        .select(PcapCaptureRecord::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One capture by its stored path.
pub async fn find_pcap_capture_by_path(
    conn: &mut AsyncPgConnection,
    path: &str,
) -> Result<Option<PcapCaptureRecord>, StoreError> {
    Ok(pcap_captures::table
        .filter(pcap_captures::path.eq(path))
        .select(PcapCaptureRecord::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Forgets a capture; true when a row was removed.
pub async fn delete_pcap_capture(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> Result<bool, StoreError> {
    let n = diesel::delete(pcap_captures::table.filter(pcap_captures::id.eq(id)))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Totals over recorded captures.
#[derive(QueryableByName, Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct PcapTotals {
    #[diesel(sql_type = BigInt)]
    pub captures: i64,
    #[diesel(sql_type = BigInt)]
    pub packets: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub oldest: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub newest: Option<DateTime<Utc>>,
}

/// Count, packets, bytes and age range of recorded captures.
pub async fn pcap_totals(conn: &mut AsyncPgConnection) -> Result<PcapTotals, StoreError> {
    Ok(diesel::sql_query(
        "SELECT count(*) AS captures, COALESCE(sum(packets), 0)::int8 AS packets, \
           COALESCE(sum(bytes), 0)::int8 AS bytes, min(created_at) AS oldest, \
           max(created_at) AS newest FROM pcap_captures",
    )
    .get_result(conn)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// A stored configuration value.
#[derive(Queryable, Selectable, Debug, Clone, Serialize)]
#[diesel(table_name = config_parameters)]
#[allow(missing_docs)]
pub struct ConfigParamRecord {
    pub key: String,
    pub value: serde_json::Value,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
}

/// Every stored value, by key.
pub async fn list_config_parameters(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<ConfigParamRecord>, StoreError> {
    Ok(config_parameters::table
        .select(ConfigParamRecord::as_select())
        .order(config_parameters::key.asc())
        .load(conn)
        .await?)
}

/// Stores `value` under `key`; returns the new row and the previous one.
pub async fn set_config_parameter(
    conn: &mut AsyncPgConnection,
    key: &str,
    value: &serde_json::Value,
    by: &str,
) -> Result<(ConfigParamRecord, Option<ConfigParamRecord>), StoreError> {
    let previous = config_parameters::table
        .filter(config_parameters::key.eq(key))
        .select(ConfigParamRecord::as_select())
        .first(conn)
        .await
        .optional()?;
    let now = Utc::now();
    let (value, by) = (&*clean_json(value), &*clean_text(by));
    let row = diesel::insert_into(config_parameters::table)
        .values((
            config_parameters::key.eq(key),
            config_parameters::value.eq(value),
            config_parameters::updated_at.eq(now),
            config_parameters::updated_by.eq(Some(by)),
        ))
        .on_conflict(config_parameters::key)
        .do_update()
        .set((
            config_parameters::value.eq(value),
            config_parameters::updated_at.eq(now),
            config_parameters::updated_by.eq(Some(by)),
        ))
        .returning(ConfigParamRecord::as_returning())
        .get_result(conn)
        .await?;
    Ok((row, previous))
}

// ---------------------------------------------------------------------------------------------
// Schema

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    v: serde_json::Value,
}

/// Round-trips a trivial query (a liveness probe that also proves JSON decoding works).
pub async fn ping(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    let r: JsonRow = diesel::sql_query("SELECT '{\"ok\":true}'::jsonb AS v")
        .get_result(conn)
        .await?;
    if r.v.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        Ok(())
    } else {
        Err(StoreError::Invalid("unexpected probe answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("selks"), "%selks%");
        assert_eq!(like_contains("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(like_contains(""), "%%");
    }
}
