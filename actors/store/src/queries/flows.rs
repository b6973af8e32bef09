//! Flows of one address: traffic totals, peers, ports and application protocols.

use super::Window;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int2, Int4, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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
