//! The device inventory's table: devices saved in batches (one statement per batch, not one
//! per device) and read back whole at start. Host names and vendor strings come off the wire:
//! they are cleaned like every other text at this boundary.

use crate::copy::{clean_json, clean_text};
use crate::schema::{device_templates, devices};
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::PgConnection;

/// One device as saved: the columns tools filter on, and the whole record.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// `mac:...` or `ip:...`.
    pub id: String,
    /// Hardware address.
    pub mac: Option<String>,
    /// MAC vendor.
    pub vendor: Option<String>,
    /// Addresses.
    pub ips: Vec<String>,
    /// Host names.
    pub hostnames: Vec<String>,
    /// First seen.
    pub first_seen: DateTime<Utc>,
    /// Last seen.
    pub last_seen: DateTime<Utc>,
    /// Bytes sent.
    pub bytes_out: i64,
    /// Bytes received.
    pub bytes_in: i64,
    /// The whole record.
    pub doc: serde_json::Value,
}

/// Rows per statement (PostgreSQL takes at most 65,535 parameters; a row binds 10).
const CHUNK: usize = 1000;

/// Inserts or replaces devices, in one transaction.
pub fn save_devices(conn: &mut PgConnection, rows: &[DeviceRow]) -> Result<usize, StoreError> {
    use devices::dsl as d;
    use diesel::upsert::excluded;
    conn.transaction(|conn| {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let cleaned: Vec<_> = chunk
                .iter()
                .map(|r| {
                    (
                        d::id.eq(clean_text(&r.id).into_owned()),
                        d::mac.eq(r.mac.as_deref().map(|s| clean_text(s).into_owned())),
                        d::vendor.eq(r.vendor.as_deref().map(|s| clean_text(s).into_owned())),
                        d::ips.eq(r
                            .ips
                            .iter()
                            .map(|s| clean_text(s).into_owned())
                            .collect::<Vec<_>>()),
                        d::hostnames.eq(r
                            .hostnames
                            .iter()
                            .map(|s| clean_text(s).into_owned())
                            .collect::<Vec<_>>()),
                        d::first_seen.eq(r.first_seen),
                        d::last_seen.eq(r.last_seen),
                        d::bytes_out.eq(r.bytes_out),
                        d::bytes_in.eq(r.bytes_in),
                        d::doc.eq(clean_json(&r.doc).into_owned()),
                    )
                })
                .collect();
            n += diesel::insert_into(d::devices)
                .values(&cleaned)
                .on_conflict(d::id)
                .do_update()
                .set((
                    d::mac.eq(excluded(d::mac)),
                    d::vendor.eq(excluded(d::vendor)),
                    d::ips.eq(excluded(d::ips)),
                    d::hostnames.eq(excluded(d::hostnames)),
                    d::first_seen.eq(excluded(d::first_seen)),
                    d::last_seen.eq(excluded(d::last_seen)),
                    d::bytes_out.eq(excluded(d::bytes_out)),
                    d::bytes_in.eq(excluded(d::bytes_in)),
                    d::doc.eq(excluded(d::doc)),
                    d::updated_at.eq(Utc::now()),
                ))
                .execute(conn)?;
        }
        Ok(n)
    })
}

/// Removes devices (folded into another record).
pub fn delete_devices(conn: &mut PgConnection, ids: &[String]) -> Result<usize, StoreError> {
    use devices::dsl as d;
    Ok(diesel::delete(d::devices.filter(d::id.eq_any(ids))).execute(conn)?)
}

/// Every saved record, most recently seen first.
pub fn load_devices(conn: &mut PgConnection) -> Result<Vec<serde_json::Value>, StoreError> {
    use devices::dsl as d;
    Ok(d::devices
        .select(d::doc)
        .order(d::last_seen.desc())
        .load::<serde_json::Value>(conn)?)
}

/// Inserts or replaces custom device templates.
pub fn save_templates(
    conn: &mut PgConnection,
    templates: &[(String, serde_json::Value)],
) -> Result<usize, StoreError> {
    use device_templates::dsl as t;
    use diesel::upsert::excluded;
    let rows: Vec<_> = templates
        .iter()
        .map(|(id, doc)| {
            (
                t::id.eq(clean_text(id).into_owned()),
                t::doc.eq(clean_json(doc).into_owned()),
            )
        })
        .collect();
    Ok(diesel::insert_into(t::device_templates)
        .values(&rows)
        .on_conflict(t::id)
        .do_update()
        .set((t::doc.eq(excluded(t::doc)), t::updated_at.eq(Utc::now())))
        .execute(conn)?)
}

/// Every custom template.
pub fn load_templates(conn: &mut PgConnection) -> Result<Vec<serde_json::Value>, StoreError> {
    use device_templates::dsl as t;
    Ok(t::device_templates
        .select(t::doc)
        .order(t::id)
        .load::<serde_json::Value>(conn)?)
}
