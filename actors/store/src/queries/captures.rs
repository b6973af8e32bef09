//! The PCAP captures saved from the packet ring.

use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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
