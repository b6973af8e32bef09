//! Configuration parameters stored by `set_config_parameter`.

use crate::copy::{clean_json, clean_text};
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

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
