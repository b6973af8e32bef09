//! TLS sessions with their certificates, and the JA3 blocklist.

use super::{like_contains, Window};
use crate::copy::clean_text;
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int4, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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
