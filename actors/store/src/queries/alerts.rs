//! Alerts: listing with filters and cursors, one alert, acknowledgement.

use super::Window;
use crate::copy::clean_text;
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// Leaves out alerts the alert stage kept as suppressed evidence, and alerts stored before an
/// address-only whitelist entry that covers them (in its direction) was added.
fn alert_not_whitelisted() -> String {
    format!(
        "(NOT (alerts.evidence ? 'suppressed_by') AND {})",
        super::not_whitelisted("alerts")
    )
}

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
