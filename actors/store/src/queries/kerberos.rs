//! Kerberos statistics: totals, most frequent values, error codes, weak encryption.

use super::{NameCount, Window};
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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
