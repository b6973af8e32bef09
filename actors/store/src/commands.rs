//! The record of sensor commands (`sensor_commands`): every `send_sensor_command` with who
//! asked, when, how long it took and what came of it.

use crate::copy::{clean_json, clean_text};
use crate::schema::sensor_commands;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// One recorded command.
#[derive(Queryable, Selectable, Debug, Clone, Serialize)]
#[diesel(table_name = sensor_commands)]
#[allow(missing_docs)]
pub struct CommandRecord {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub sensor: String,
    pub command: String,
    pub args: serde_json::Value,
    pub requested_by: String,
    pub token_id: Option<i64>,
    pub status: String,
    pub result: serde_json::Value,
    pub duration_ms: i32,
}

/// What a command did, to be recorded.
#[derive(Debug, Clone)]
pub struct NewCommand<'a> {
    /// Sensor name.
    pub sensor: &'a str,
    /// Command name.
    pub command: &'a str,
    /// Its arguments.
    pub args: &'a serde_json::Value,
    /// Token name of the caller.
    pub requested_by: &'a str,
    /// Token id of the caller.
    pub token_id: Option<i64>,
    /// Whether it worked.
    pub ok: bool,
    /// Its result or error.
    pub result: &'a serde_json::Value,
    /// How long it ran.
    pub duration_ms: i32,
}

/// Records a command; returns the stored row.
pub async fn record(
    conn: &mut AsyncPgConnection,
    c: &NewCommand<'_>,
) -> Result<CommandRecord, StoreError> {
    use sensor_commands::*;
    Ok(diesel::insert_into(table)
        .values((
            sensor.eq(&*clean_text(c.sensor)),
            command.eq(&*clean_text(c.command)),
            args.eq(&*clean_json(c.args)),
            requested_by.eq(&*clean_text(c.requested_by)),
            token_id.eq(c.token_id),
            status.eq(if c.ok { "ok" } else { "error" }),
            result.eq(&*clean_json(c.result)),
            duration_ms.eq(c.duration_ms),
        ))
        .returning(CommandRecord::as_returning())
        .get_result(conn)
        .await?)
}

/// The newest commands first, optionally of one kind.
pub async fn history(
    conn: &mut AsyncPgConnection,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<CommandRecord>, StoreError> {
    let mut q = sensor_commands::table
        .select(CommandRecord::as_select())
        .order(sensor_commands::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(k) = kind {
        q = q.filter(sensor_commands::command.eq(k.to_owned()));
    }
    Ok(q.load(conn).await?)
}
