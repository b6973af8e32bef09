//! The risk actor's tables: scored assets, attack chains and the ATT&CK rollup, upserted in one
//! statement per batch and read back at start; score history appended at a fixed cadence and
//! read, bucketed, by `get_risk_trends`.

use crate::copy::clean_json;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Double, Float4, Int2, Jsonb, Nullable, Text, Timestamptz};
use diesel::PgConnection;
use diesel::{Connection, QueryableByName};
use diesel_async::AsyncPgConnection;

/// One scored asset.
#[derive(Debug, Clone)]
pub struct AssetRow {
    /// Address.
    pub ip: String,
    /// Score now.
    pub score: f32,
    /// Level now.
    pub level: String,
    /// Exposure flags.
    pub exposure: i16,
    /// Last alert.
    pub last_seen: DateTime<Utc>,
    /// The whole record.
    pub doc: serde_json::Value,
}

/// One chain.
#[derive(Debug, Clone)]
pub struct ChainRow {
    /// Number.
    pub id: i64,
    /// First source.
    pub source_ip: String,
    /// First alert.
    pub first_seen: DateTime<Utc>,
    /// Last alert.
    pub last_seen: DateTime<Utc>,
    /// Stages reached.
    pub stages: i16,
    /// Chain score.
    pub score: f32,
    /// The whole record.
    pub doc: serde_json::Value,
}

/// One ATT&CK rollup cell.
#[derive(Debug, Clone)]
pub struct MitreRow {
    /// Bucket start.
    pub bucket: DateTime<Utc>,
    /// Technique id.
    pub technique: String,
    /// Alerts.
    pub alerts: i64,
    /// The whole cell.
    pub doc: serde_json::Value,
}

/// One history point.
#[derive(Debug, Clone)]
pub struct HistoryPoint {
    /// Snapshot time.
    pub ts: DateTime<Utc>,
    /// Address.
    pub ip: String,
    /// Score.
    pub score: f32,
    /// Level.
    pub level: String,
}

/// Rows per statement.
const CHUNK: usize = 5000;

/// Writes what changed in one transaction, as `sensor`'s.
pub fn save(
    conn: &mut PgConnection,
    sensor: &str,
    assets: &[AssetRow],
    chains: &[ChainRow],
    mitre: &[MitreRow],
    history: &[HistoryPoint],
) -> Result<usize, StoreError> {
    use diesel::RunQueryDsl;
    conn.transaction(|conn| {
        let mut n = 0;
        for c in assets.chunks(CHUNK) {
            n += diesel::sql_query(
                "INSERT INTO risk_assets (ip, sensor, score, level, exposure, last_seen, doc) \
                 SELECT ip::inet, $7, s, l, e, t, d FROM unnest($1::text[], $2::real[], $3::text[], $4::int2[], $5::timestamptz[], $6::jsonb[]) AS u(ip, s, l, e, t, d) \
                 ON CONFLICT (ip, sensor) DO UPDATE SET score = excluded.score, level = excluded.level, \
                   exposure = excluded.exposure, last_seen = excluded.last_seen, doc = excluded.doc, updated_at = now()",
            )
            .bind::<Array<Text>, _>(c.iter().map(|r| r.ip.clone()).collect::<Vec<_>>())
            .bind::<Array<Float4>, _>(c.iter().map(|r| r.score).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(c.iter().map(|r| r.level.clone()).collect::<Vec<_>>())
            .bind::<Array<Int2>, _>(c.iter().map(|r| r.exposure).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(c.iter().map(|r| r.last_seen).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(
                c.iter()
                    .map(|r| clean_json(&r.doc).into_owned())
                    .collect::<Vec<_>>(),
            )
            .bind::<Text, _>(sensor)
            .execute(conn)?;
        }
        for c in chains.chunks(CHUNK) {
            n += diesel::sql_query(
                "INSERT INTO attack_chains (id, sensor, source_ip, first_seen, last_seen, stages, score, doc) \
                 SELECT i, $8, s::inet, f, l, n, sc, d FROM unnest($1::int8[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int2[], $6::real[], $7::jsonb[]) AS u(i, s, f, l, n, sc, d) \
                 ON CONFLICT (id, sensor) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
                   stages = excluded.stages, score = excluded.score, doc = excluded.doc, updated_at = now()",
            )
            .bind::<Array<BigInt>, _>(c.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(c.iter().map(|r| r.source_ip.clone()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(c.iter().map(|r| r.first_seen).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(c.iter().map(|r| r.last_seen).collect::<Vec<_>>())
            .bind::<Array<Int2>, _>(c.iter().map(|r| r.stages).collect::<Vec<_>>())
            .bind::<Array<Float4>, _>(c.iter().map(|r| r.score).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(
                c.iter()
                    .map(|r| clean_json(&r.doc).into_owned())
                    .collect::<Vec<_>>(),
            )
            .bind::<Text, _>(sensor)
            .execute(conn)?;
        }
        for c in mitre.chunks(CHUNK) {
            n += diesel::sql_query(
                "INSERT INTO mitre_rollup (bucket, technique, sensor, alerts, doc) \
                 SELECT b, t, $5, a, d FROM unnest($1::timestamptz[], $2::text[], $3::int8[], $4::jsonb[]) AS u(b, t, a, d) \
                 ON CONFLICT (bucket, technique, sensor) DO UPDATE SET alerts = excluded.alerts, doc = excluded.doc",
            )
            .bind::<Array<Timestamptz>, _>(c.iter().map(|r| r.bucket).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(c.iter().map(|r| r.technique.clone()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(c.iter().map(|r| r.alerts).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(
                c.iter()
                    .map(|r| clean_json(&r.doc).into_owned())
                    .collect::<Vec<_>>(),
            )
            .bind::<Text, _>(sensor)
            .execute(conn)?;
        }
        for c in history.chunks(CHUNK) {
            n += diesel::sql_query(
                "INSERT INTO risk_history (ts, ip, sensor, score, level) \
                 SELECT t, ip::inet, $5, s, l FROM unnest($1::timestamptz[], $2::text[], $3::real[], $4::text[]) AS u(t, ip, s, l) \
                 ON CONFLICT (ip, ts, sensor) DO UPDATE SET score = excluded.score, level = excluded.level",
            )
            .bind::<Array<Timestamptz>, _>(c.iter().map(|r| r.ts).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(c.iter().map(|r| r.ip.clone()).collect::<Vec<_>>())
            .bind::<Array<Float4>, _>(c.iter().map(|r| r.score).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(c.iter().map(|r| r.level.clone()).collect::<Vec<_>>())
            .bind::<Text, _>(sensor)
            .execute(conn)?;
        }
        Ok(n)
    })
}

#[derive(QueryableByName)]
struct DocRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Int2)]
    flags: i16,
    #[diesel(sql_type = Jsonb)]
    doc: serde_json::Value,
}

/// Saved assets as (address, exposure flags, record).
pub fn load_assets(
    conn: &mut PgConnection,
    sensor: &str,
) -> Result<Vec<(String, i16, serde_json::Value)>, StoreError> {
    use diesel::RunQueryDsl;
    let rows: Vec<DocRow> = diesel::sql_query(
        "SELECT host(ip) AS key, exposure AS flags, doc FROM risk_assets WHERE sensor = $1",
    )
    .bind::<Text, _>(sensor)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.key, r.flags, r.doc)).collect())
}

/// Saved chains whose last alert is after `since`.
pub fn load_chains(
    conn: &mut PgConnection,
    sensor: &str,
    since: DateTime<Utc>,
) -> Result<Vec<serde_json::Value>, StoreError> {
    use diesel::RunQueryDsl;
    let rows: Vec<DocRow> = diesel::sql_query(
        "SELECT id::text AS key, stages AS flags, doc FROM attack_chains WHERE last_seen >= $1 AND sensor = $2",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Text, _>(sensor)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.doc).collect())
}

/// Saved ATT&CK cells from `since` on, as (bucket start µs, technique, cell).
pub fn load_mitre(
    conn: &mut PgConnection,
    sensor: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(i64, String, serde_json::Value)>, StoreError> {
    use diesel::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Timestamptz)]
        bucket: DateTime<Utc>,
        #[diesel(sql_type = Text)]
        technique: String,
        #[diesel(sql_type = Jsonb)]
        doc: serde_json::Value,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT bucket, technique, doc FROM mitre_rollup WHERE bucket >= $1 AND sensor = $2",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Text, _>(sensor)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.bucket.timestamp_micros(), r.technique, r.doc))
        .collect())
}

/// The ATT&CK rollup cells of every sensor between `since` and `until`, as (bucket start µs,
/// technique, cell), and the oldest bucket held (to tell whether the rollup covers `since`).
pub async fn mitre_cells(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Vec<(i64, String, serde_json::Value)>, Option<DateTime<Utc>>), StoreError> {
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Timestamptz)]
        bucket: DateTime<Utc>,
        #[diesel(sql_type = Text)]
        technique: String,
        #[diesel(sql_type = Jsonb)]
        doc: serde_json::Value,
    }
    #[derive(QueryableByName)]
    struct Oldest {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        oldest: Option<DateTime<Utc>>,
    }
    let oldest: Oldest = diesel::sql_query("SELECT min(bucket) AS oldest FROM mitre_rollup")
        .get_result(conn)
        .await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT bucket, technique, doc FROM mitre_rollup \
         WHERE bucket >= $1 - interval '10 minutes' AND bucket <= $2",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Timestamptz, _>(until)
    .load(conn)
    .await?;
    Ok((
        rows.into_iter()
            .map(|r| (r.bucket.timestamp_micros(), r.technique, r.doc))
            .collect(),
        oldest.oldest,
    ))
}

/// One bucket of a risk trend.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct TrendBucket {
    /// Bucket start.
    #[diesel(sql_type = Timestamptz)]
    pub bucket: DateTime<Utc>,
    /// Mean score over the snapshots in it.
    #[diesel(sql_type = Double)]
    pub avg_score: f64,
    /// Highest score.
    #[diesel(sql_type = Double)]
    pub max_score: f64,
    /// Distinct assets recorded.
    #[diesel(sql_type = BigInt)]
    pub assets: i64,
    /// Of which ever critical in it.
    #[diesel(sql_type = BigInt)]
    pub critical: i64,
    /// Ever high.
    #[diesel(sql_type = BigInt)]
    pub high: i64,
    /// Ever medium.
    #[diesel(sql_type = BigInt)]
    pub medium: i64,
    /// Snapshots in it.
    #[diesel(sql_type = BigInt)]
    pub snapshots: i64,
}

/// Score history between `since` and `until`, for one address or all, in buckets of
/// `bucket_secs`.
pub async fn risk_trends(
    conn: &mut AsyncPgConnection,
    ip: Option<&str>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    bucket_secs: i64,
) -> Result<Vec<TrendBucket>, StoreError> {
    use diesel_async::RunQueryDsl;
    Ok(diesel::sql_query(
        "SELECT date_bin(make_interval(secs => $4), ts, '2000-01-01'::timestamptz) AS bucket, \
           avg(score)::float8 AS avg_score, max(score)::float8 AS max_score, \
           count(DISTINCT ip) AS assets, \
           count(DISTINCT ip) FILTER (WHERE level = 'critical') AS critical, \
           count(DISTINCT ip) FILTER (WHERE level = 'high') AS high, \
           count(DISTINCT ip) FILTER (WHERE level = 'medium') AS medium, \
           count(DISTINCT ts) AS snapshots \
         FROM risk_history WHERE ts >= $1 AND ts <= $2 AND ($3::inet IS NULL OR ip = $3::inet) \
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Timestamptz, _>(until)
    .bind::<Nullable<Text>, _>(ip)
    .bind::<Double, _>(bucket_secs as f64)
    .load(conn)
    .await?)
}
