//! Flows of one address: traffic totals, peers, ports and application protocols.

use super::Window;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int2, Int4, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

/// Traffic of one address over a window.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The flows of the address `$1` in `[$2, $3]`, as the CTE `f`: every summary of an address
/// below reads them from it, so that one statement can read them once for all (PostgreSQL keeps
/// a CTE read more than once, and folds one read once into its query).
const FLOWS_OF_IP: &str = "f AS (SELECT * FROM flows \
     WHERE (src_ip = $1::inet OR dest_ip = $1::inet) AND ts >= $2 AND ts <= $3)";

/// The totals of `f`.
const TRAFFIC: &str = "SELECT count(*) FILTER (WHERE src_ip = $1::inet) AS flows_as_client, \
           count(*) FILTER (WHERE dest_ip = $1::inet) AS flows_as_server, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN bytes_toserver ELSE bytes_toclient END), 0)::int8 AS bytes_sent, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN bytes_toclient ELSE bytes_toserver END), 0)::int8 AS bytes_received, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN pkts_toserver ELSE pkts_toclient END), 0)::int8 AS packets_sent, \
           COALESCE(sum(CASE WHEN src_ip = $1::inet THEN pkts_toclient ELSE pkts_toserver END), 0)::int8 AS packets_received, \
           count(DISTINCT CASE WHEN src_ip = $1::inet THEN dest_ip ELSE src_ip END) AS peers, \
           min(start_ts) AS first_seen, max(end_ts) AS last_seen FROM f";

/// Flow totals of `ip` (as client and as server) in `window`.
pub async fn ip_traffic(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
) -> Result<IpTraffic, StoreError> {
    Ok(diesel::sql_query(format!("WITH {FLOWS_OF_IP} {TRAFFIC}"))
        .bind::<Text, _>(ip)
        .bind::<Timestamptz, _>(window.since)
        .bind::<Timestamptz, _>(window.until)
        .get_result(conn)
        .await?)
}

/// One peer of an address.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The peers in `f` by bytes exchanged, at most `$4`.
const PEERS: &str =
    "SELECT host(CASE WHEN src_ip = $1::inet THEN dest_ip ELSE src_ip END) AS peer, \
       count(*) AS flows, count(*) FILTER (WHERE src_ip = $1::inet) AS initiated, \
       COALESCE(sum(bytes_toserver + bytes_toclient), 0)::int8 AS bytes \
     FROM f GROUP BY 1 ORDER BY 4 DESC, 1 LIMIT $4";

/// One server port in an address's flows.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The server ports in `f` by flow count, at most `$4`.
const PORTS: &str = "SELECT dest_port AS port, proto, (dest_ip = $1::inet) AS served, \
       count(*) AS flows, COALESCE(sum(bytes_toserver + bytes_toclient), 0)::int8 AS bytes, \
       array_remove(array_agg(DISTINCT app_proto), NULL) AS app_protos \
     FROM f GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT $4";

/// A name and how often it occurred.
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameCount {
    /// The value counted.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Occurrences.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The application protocols in `f` (`unknown` when none was recognised), most flows first.
const APPS: &str = "SELECT COALESCE(app_proto, 'unknown') AS name, count(*) AS count \
     FROM f GROUP BY 1 ORDER BY 2 DESC, 1";

/// An address's flows summed four ways: totals (as [`ip_traffic`]), the top peers by bytes,
/// the top server ports by flows, and the application protocols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct IpFlowSummary {
    pub traffic: IpTraffic,
    pub peers: Vec<PeerRow>,
    pub ports: Vec<PortRow>,
    pub apps: Vec<NameCount>,
}

/// The four summaries of `ip`'s flows in `window` (`limit` peers and ports) in one statement
/// that reads the flows once.
pub async fn ip_flow_summary(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
    limit: i64,
) -> Result<IpFlowSummary, StoreError> {
    #[derive(QueryableByName)]
    struct Docs {
        #[diesel(sql_type = Text)]
        traffic: String,
        #[diesel(sql_type = Text)]
        peers: String,
        #[diesel(sql_type = Text)]
        ports: String,
        #[diesel(sql_type = Text)]
        apps: String,
    }
    let docs: Docs = diesel::sql_query(format!(
        "WITH {FLOWS_OF_IP} SELECT \
           (SELECT row_to_json(x) FROM ({TRAFFIC}) x)::text AS traffic, \
           (SELECT COALESCE(json_agg(x ORDER BY x.bytes DESC, x.peer), '[]') FROM ({PEERS}) x)::text AS peers, \
           (SELECT COALESCE(json_agg(x ORDER BY x.flows DESC, x.port), '[]') FROM ({PORTS}) x)::text AS ports, \
           (SELECT COALESCE(json_agg(x ORDER BY x.count DESC, x.name), '[]') FROM ({APPS}) x)::text AS apps"
    ))
    .bind::<Text, _>(ip)
    .bind::<Timestamptz, _>(window.since)
    .bind::<Timestamptz, _>(window.until)
    .bind::<BigInt, _>(limit)
    .get_result(conn)
    .await?;
    let parse = |what: &str, doc: &str| StoreError::Invalid(format!("flow summary {what} {doc}"));
    Ok(IpFlowSummary {
        traffic: serde_json::from_str(&docs.traffic).map_err(|_| parse("totals", &docs.traffic))?,
        peers: serde_json::from_str(&docs.peers).map_err(|_| parse("peers", &docs.peers))?,
        ports: serde_json::from_str(&docs.ports).map_err(|_| parse("ports", &docs.ports))?,
        apps: serde_json::from_str(&docs.apps).map_err(|_| parse("protocols", &docs.apps))?,
    })
}
