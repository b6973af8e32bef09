//! The whitelist and the service providers: what the alert stage loads to suppress alerts at
//! detection time, and what the whitelist and provider tools manage. Values arrive validated
//! and normalised by the tools; caller text is cleaned before it is stored.

use crate::copy::clean_text;
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// A whitelist entry: it covers an alert when every field it sets matches.
#[derive(Queryable, Selectable, QueryableByName, Debug, Clone, Serialize, PartialEq)]
#[diesel(table_name = whitelist)]
#[allow(missing_docs)]
pub struct WhitelistRecord {
    pub id: i64,
    pub ip_cidr: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub domain: Option<String>,
    pub port: Option<i32>,
    /// `any`, `source` (the alert's source is in `ip_cidr`) or `destination`.
    pub direction: String,
    /// Only alerts of this sensor; none = every sensor.
    pub sensor: Option<String>,
}

/// What a new whitelist entry matches.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct NewWhitelist<'a> {
    pub ip_cidr: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub port: Option<i32>,
    pub direction: &'a str,
    pub sensor: Option<&'a str>,
    pub description: Option<&'a str>,
}

/// Adds an entry unless one with the same match exists; returns the entry and whether it was
/// created.
pub async fn add_whitelist(
    conn: &mut AsyncPgConnection,
    new: &NewWhitelist<'_>,
) -> Result<(WhitelistRecord, bool), StoreError> {
    let existing: Option<WhitelistRecord> = diesel::sql_query(
        "SELECT * FROM whitelist WHERE ip_cidr IS NOT DISTINCT FROM $1 \
         AND domain IS NOT DISTINCT FROM $2 AND port IS NOT DISTINCT FROM $3 \
         AND direction = $4 AND sensor IS NOT DISTINCT FROM $5 ORDER BY id LIMIT 1",
    )
    .bind::<diesel::sql_types::Nullable<Text>, _>(new.ip_cidr)
    .bind::<diesel::sql_types::Nullable<Text>, _>(new.domain)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Int4>, _>(new.port)
    .bind::<Text, _>(new.direction)
    .bind::<diesel::sql_types::Nullable<Text>, _>(new.sensor.map(clean_text).as_deref())
    .get_result(conn)
    .await
    .optional()?;
    if let Some(e) = existing {
        return Ok((e, false));
    }
    let description = new.description.map(clean_text);
    let sensor = new.sensor.map(clean_text);
    let row = diesel::insert_into(whitelist::table)
        .values((
            whitelist::ip_cidr.eq(new.ip_cidr),
            whitelist::domain.eq(new.domain),
            whitelist::port.eq(new.port),
            whitelist::direction.eq(new.direction),
            whitelist::sensor.eq(sensor.as_deref()),
            whitelist::description.eq(description.as_deref()),
        ))
        .returning(WhitelistRecord::as_returning())
        .get_result(conn)
        .await?;
    Ok((row, true))
}

/// Whitelist entries, newest first.
pub async fn list_whitelist(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> Result<Vec<WhitelistRecord>, StoreError> {
    Ok(whitelist::table
        .select(WhitelistRecord::as_select())
        .order(whitelist::id.desc())
        .limit(limit)
        .load(conn)
        .await?)
}

/// Removes an entry by id; returns it when it existed.
pub async fn remove_whitelist(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> Result<Option<WhitelistRecord>, StoreError> {
    Ok(
        diesel::delete(whitelist::table.filter(whitelist::id.eq(id)))
            .returning(WhitelistRecord::as_returning())
            .get_result(conn)
            .await
            .optional()?,
    )
}

/// Removes every entry whose address/network or domain is exactly `value`; returns them.
pub async fn remove_whitelist_by_value(
    conn: &mut AsyncPgConnection,
    value: &str,
) -> Result<Vec<WhitelistRecord>, StoreError> {
    Ok(diesel::delete(
        whitelist::table.filter(whitelist::ip_cidr.eq(value).or(whitelist::domain.eq(value))),
    )
    .returning(WhitelistRecord::as_returning())
    .load(conn)
    .await?)
}

/// Address entries covering the address `ip` (which the caller has validated).
pub async fn whitelist_matches(
    conn: &mut AsyncPgConnection,
    ip: &str,
) -> Result<Vec<WhitelistRecord>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT * FROM whitelist WHERE ip_cidr IS NOT NULL AND $1::inet <<= ip_cidr::inet \
         ORDER BY id",
    )
    .bind::<Text, _>(ip)
    .load(conn)
    .await?)
}

/// A named set of address ranges and domains (a CDN, a cloud, a backup or streaming service).
#[derive(Queryable, Selectable, Debug, Clone, Serialize, PartialEq)]
#[diesel(table_name = service_providers)]
#[allow(missing_docs)]
pub struct ProviderRecord {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub ranges: Vec<String>,
    pub domains: Vec<String>,
    /// Alert kinds suppressed when the provider is the other end.
    pub suppress: Vec<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A new provider (ranges and domains normalised by the caller).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct NewProvider<'a> {
    pub name: &'a str,
    pub category: &'a str,
    pub ranges: &'a [String],
    pub domains: &'a [String],
    pub suppress: &'a [String],
    pub description: Option<&'a str>,
}

/// Creates a provider; `None` when the name is taken.
pub async fn create_provider(
    conn: &mut AsyncPgConnection,
    new: &NewProvider<'_>,
) -> Result<Option<ProviderRecord>, StoreError> {
    let name = clean_text(new.name);
    let description = new.description.map(clean_text);
    Ok(diesel::insert_into(service_providers::table)
        .values((
            service_providers::name.eq(name.as_ref()),
            service_providers::category.eq(new.category),
            service_providers::ranges.eq(new.ranges),
            service_providers::domains.eq(new.domains),
            service_providers::suppress.eq(new.suppress),
            service_providers::description.eq(description.as_deref()),
        ))
        .on_conflict(service_providers::name)
        .do_nothing()
        .returning(ProviderRecord::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Every provider, by name.
pub async fn list_providers(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<ProviderRecord>, StoreError> {
    Ok(service_providers::table
        .select(ProviderRecord::as_select())
        .order(service_providers::name.asc())
        .load(conn)
        .await?)
}
