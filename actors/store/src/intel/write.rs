//! Writes and loads on the blocking connection (the feed actor's worker thread).

use crate::copy::{clean_json, clean_text, CopyBuf};
use crate::rows::copy_into;
use crate::schema::*;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz};
use diesel::PgConnection;
use serde::Serialize;
use std::net::IpAddr;

/// Rows per `COPY` statement (bounds the buffer while a large feed streams in).
const COPY_ROWS: usize = 100_000;

/// Moves the staged rows into `indicators`: first seen kept, everything else from the feed.
const UPSERT: &str = "INSERT INTO indicators \
     SELECT DISTINCT ON (kind, value) * FROM indicators_stage ORDER BY kind, value, confidence DESC \
     ON CONFLICT (feed, kind, value) DO UPDATE SET confidence = EXCLUDED.confidence, \
       last_seen = EXCLUDED.last_seen, valid_until = EXCLUDED.valid_until, \
       description = EXCLUDED.description, tags = EXCLUDED.tags";

/// One indicator to store.
#[derive(Debug, Clone)]
pub struct IndicatorRow<'a> {
    /// Kind name (`ip`, `cidr`, `domain`, …).
    pub kind: &'a str,
    /// Normalised value.
    pub value: &'a str,
    /// 0–100.
    pub confidence: i16,
    /// When the source first saw it (µs), else now.
    pub first_seen_us: Option<i64>,
    /// Expiry (µs).
    pub valid_until_us: Option<i64>,
    /// Description.
    pub description: Option<&'a str>,
    /// Tags.
    pub tags: &'a [String],
}

/// What saving a feed changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SaveCounts {
    /// Rows inserted or updated.
    pub upserted: usize,
    /// Rows removed (no longer listed, or revoked).
    pub removed: usize,
}

/// Stores a feed's indicators at `now_us`. With `replace`, whatever the feed no longer lists is
/// removed (a full download); without, they are added to (an incremental TAXII poll).
/// `revoked` (kind, value) pairs are removed either way. One transaction.
pub fn save_indicators<'a>(
    conn: &mut PgConnection,
    feed: &str,
    rows: impl IntoIterator<Item = IndicatorRow<'a>>,
    revoked: &[(&str, &str)],
    replace: bool,
    now_us: i64,
) -> Result<SaveCounts, StoreError> {
    let feed = clean_text(feed);
    conn.transaction(|c| {
        diesel::sql_query(
            "CREATE TEMP TABLE indicators_stage (LIKE indicators INCLUDING DEFAULTS) ON COMMIT DROP",
        )
        .execute(c)?;
        let mut buf = CopyBuf::default();
        let cols = (
            indicators_stage::feed,
            indicators_stage::kind,
            indicators_stage::value,
            indicators_stage::confidence,
            indicators_stage::first_seen,
            indicators_stage::last_seen,
            indicators_stage::valid_until,
            indicators_stage::description,
            indicators_stage::tags,
        );
        for r in rows {
            buf.row(9);
            buf.text(&feed);
            buf.text(r.kind);
            buf.text(r.value);
            buf.int2(r.confidence.clamp(0, 100));
            buf.timestamptz_us(r.first_seen_us.unwrap_or(now_us).min(now_us));
            buf.timestamptz_us(now_us);
            match r.valid_until_us {
                Some(v) => buf.timestamptz_us(v),
                None => buf.null(),
            }
            buf.opt_text(r.description);
            buf.text_array(r.tags);
            if buf.rows() >= COPY_ROWS {
                copy_into(c, indicators_stage::table, cols, &mut buf)?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy_into(c, indicators_stage::table, cols, &mut buf)?;
        }
        let upserted = diesel::sql_query(UPSERT).execute(c)?;
        let mut removed = 0;
        if replace {
            removed += diesel::sql_query(
                "DELETE FROM indicators WHERE feed = $1 AND last_seen < $2",
            )
            .bind::<Text, _>(&*feed)
            .bind::<Timestamptz, _>(crate::rows::ts(netmonitor_common::Timestamp(now_us)))
            .execute(c)?;
        }
        for (kind, value) in revoked {
            removed += diesel::delete(
                indicators::table
                    .filter(indicators::feed.eq(&*feed))
                    .filter(indicators::kind.eq(kind))
                    .filter(indicators::value.eq(value)),
            )
            .execute(c)?;
        }
        Ok(SaveCounts { upserted, removed })
    })
}

/// A stored indicator as the matcher needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIndicator {
    /// Feed name.
    pub feed: String,
    /// Kind name.
    pub kind: String,
    /// Value.
    pub value: String,
    /// 0–100.
    pub confidence: i16,
    /// Expiry.
    pub valid_until: Option<DateTime<Utc>>,
    /// Description.
    pub description: Option<String>,
}

/// Streams every stored indicator (of one feed, or all) to `f`, row by row (a million rows
/// never sit in memory at once); returns how many.
pub fn load_indicators(
    conn: &mut PgConnection,
    feed: Option<&str>,
    mut f: impl FnMut(StoredIndicator),
) -> Result<usize, StoreError> {
    use indicators::dsl as i;
    let mut q = i::indicators
        .select((
            i::feed,
            i::kind,
            i::value,
            i::confidence,
            i::valid_until,
            i::description,
        ))
        .into_boxed();
    if let Some(name) = feed {
        q = q.filter(i::feed.eq(name.to_owned()));
    }
    let mut n = 0;
    let rows = diesel::RunQueryDsl::load_iter::<
        (
            String,
            String,
            String,
            i16,
            Option<DateTime<Utc>>,
            Option<String>,
        ),
        PgRowByRowLoadingMode,
    >(q, conn)?;
    for row in rows {
        let (feed, kind, value, confidence, valid_until, description) = row?;
        f(StoredIndicator {
            feed,
            kind,
            value,
            confidence,
            valid_until,
            description,
        });
        n += 1;
    }
    Ok(n)
}

/// One IP-to-ASN range to store.
#[derive(Debug, Clone)]
pub struct AsnRow<'a> {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
    /// AS number.
    pub asn: u32,
    /// Country code.
    pub country: &'a str,
    /// AS name.
    pub description: &'a str,
}

/// Replaces the ranges of `feed`; returns how many were stored.
pub fn save_asn_ranges<'a>(
    conn: &mut PgConnection,
    feed: &str,
    rows: impl IntoIterator<Item = AsnRow<'a>>,
) -> Result<usize, StoreError> {
    let feed = clean_text(feed);
    conn.transaction(|c| {
        diesel::delete(asn_ranges::table.filter(asn_ranges::feed.eq(&*feed))).execute(c)?;
        let cols = (
            asn_ranges::feed,
            asn_ranges::range_start,
            asn_ranges::range_end,
            asn_ranges::asn,
            asn_ranges::country,
            asn_ranges::description,
        );
        let mut buf = CopyBuf::default();
        let mut n = 0;
        for r in rows {
            buf.row(6);
            buf.text(&feed);
            buf.inet(r.start);
            buf.inet(r.end);
            buf.int8(i64::from(r.asn));
            buf.text(r.country);
            buf.text(r.description);
            n += 1;
            if buf.rows() >= COPY_ROWS {
                copy_into(c, asn_ranges::table, cols, &mut buf)?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy_into(c, asn_ranges::table, cols, &mut buf)?;
        }
        Ok(n)
    })
}

/// A feed's row.
#[derive(Queryable, Selectable, Debug, Clone, Serialize, PartialEq)]
#[diesel(table_name = threat_feeds)]
#[allow(missing_docs)]
pub struct FeedRecord {
    pub name: String,
    pub source: String,
    pub format: String,
    pub refresh_secs: i32,
    pub confidence: i16,
    pub enabled: bool,
    pub origin: String,
    pub auth: serde_json::Value,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub cursor: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub error_lines: serde_json::Value,
    pub indicators: i32,
    pub unsupported: i32,
    pub updated_by: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A feed's settings, as configured or managed over MCP.
#[derive(Debug, Clone)]
pub struct FeedSettings<'a> {
    /// Unique name.
    pub name: &'a str,
    /// URL or path.
    pub source: &'a str,
    /// Format name.
    pub format: &'a str,
    /// Seconds between refreshes.
    pub refresh_secs: i32,
    /// Default confidence.
    pub confidence: i16,
    /// Refreshed and matched.
    pub enabled: bool,
    /// `config` or `mcp`.
    pub origin: &'a str,
    /// User name and environment-variable names of secrets.
    pub auth: serde_json::Value,
    /// Who changed it.
    pub updated_by: Option<&'a str>,
}

/// Inserts or updates a feed's settings (its refresh state is kept).
pub fn upsert_feed(conn: &mut PgConnection, s: &FeedSettings<'_>) -> Result<(), StoreError> {
    use threat_feeds::dsl as t;
    let (name, source, auth) = (
        clean_text(s.name),
        clean_text(s.source),
        clean_json(&s.auth),
    );
    let updated_by = s.updated_by.map(clean_text);
    let values = (
        t::name.eq(&*name),
        t::source.eq(&*source),
        t::format.eq(s.format),
        t::refresh_secs.eq(s.refresh_secs.max(1)),
        t::confidence.eq(s.confidence.clamp(0, 100)),
        t::enabled.eq(s.enabled),
        t::origin.eq(s.origin),
        t::auth.eq(&*auth),
        t::updated_by.eq(updated_by.as_deref()),
        t::updated_at.eq(Utc::now()),
    );
    diesel::insert_into(t::threat_feeds)
        .values(values)
        .on_conflict(t::name)
        .do_update()
        .set(values)
        .execute(conn)?;
    Ok(())
}

/// The outcome of one refresh, recorded on the feed's row.
#[derive(Debug, Clone)]
pub struct SyncRecord<'a> {
    /// Feed.
    pub name: &'a str,
    /// When it was tried.
    pub attempt: DateTime<Utc>,
    /// Error, if it failed (the last good copy stays).
    pub error: Option<&'a str>,
    /// Lines that failed to parse (JSON array).
    pub error_lines: &'a serde_json::Value,
    /// Validators of the content now held (unchanged on failure).
    pub etag: Option<&'a str>,
    /// `Last-Modified`.
    pub last_modified: Option<&'a str>,
    /// TAXII `added_after` cursor.
    pub cursor: Option<&'a str>,
    /// Indicators now held (on success).
    pub indicators: Option<i32>,
    /// Entries that could not be matched (on success).
    pub unsupported: Option<i32>,
}

/// Records a refresh.
pub fn record_sync(conn: &mut PgConnection, r: &SyncRecord<'_>) -> Result<(), StoreError> {
    use threat_feeds::dsl as t;
    let target = t::threat_feeds.filter(t::name.eq(r.name));
    let lines = clean_json(r.error_lines);
    match r.error {
        Some(e) => diesel::RunQueryDsl::execute(
            diesel::update(target).set((
                t::last_attempt.eq(r.attempt),
                t::last_error.eq(&*clean_text(e)),
                t::error_lines.eq(&*lines),
            )),
            conn,
        )?,
        None => diesel::RunQueryDsl::execute(
            diesel::update(target).set((
                t::last_attempt.eq(r.attempt),
                t::last_success.eq(r.attempt),
                t::last_error.eq(None::<String>),
                t::error_lines.eq(&*lines),
                t::etag.eq(r.etag.map(clean_text).as_deref()),
                t::last_modified.eq(r.last_modified.map(clean_text).as_deref()),
                t::cursor.eq(r.cursor.map(clean_text).as_deref()),
                t::indicators.eq(r.indicators.unwrap_or(0)),
                t::unsupported.eq(r.unsupported.unwrap_or(0)),
            )),
            conn,
        )?,
    };
    Ok(())
}

/// Every feed, by name.
pub fn load_feeds(conn: &mut PgConnection) -> Result<Vec<FeedRecord>, StoreError> {
    Ok(diesel::RunQueryDsl::load(
        threat_feeds::table
            .select(FeedRecord::as_select())
            .order(threat_feeds::name),
        conn,
    )?)
}

/// Removes a feed and everything it listed; false when there was none.
pub fn delete_feed(conn: &mut PgConnection, name: &str) -> Result<bool, StoreError> {
    let n = diesel::RunQueryDsl::execute(
        diesel::delete(threat_feeds::table.filter(threat_feeds::name.eq(name))),
        conn,
    )?;
    Ok(n > 0)
}

/// Streams every stored IP-to-ASN range (with its feed) to `f`; returns how many.
pub fn load_asn_ranges(
    conn: &mut PgConnection,
    mut f: impl FnMut(String, IpAddr, IpAddr, i64, String, String),
) -> Result<usize, StoreError> {
    #[derive(QueryableByName)]
    struct R {
        #[diesel(sql_type = Text)]
        feed: String,
        #[diesel(sql_type = Text)]
        s: String,
        #[diesel(sql_type = Text)]
        e: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        asn: i64,
        #[diesel(sql_type = Text)]
        country: String,
        #[diesel(sql_type = Text)]
        description: String,
    }
    let rows: Vec<R> = diesel::sql_query(
        "SELECT feed, host(range_start) AS s, host(range_end) AS e, asn, country, description \
         FROM asn_ranges",
    )
    .load(conn)?;
    let mut n = 0;
    for r in rows {
        if let (Ok(s), Ok(e)) = (r.s.parse(), r.e.parse()) {
            f(r.feed, s, e, r.asn, r.country, r.description);
            n += 1;
        }
    }
    Ok(n)
}
