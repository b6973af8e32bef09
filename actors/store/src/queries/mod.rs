//! The read and small-write queries behind the MCP tools: alerts (filters, grouping, MITRE,
//! acknowledgement), flows per address, TLS sessions with their certificates, the JA3
//! blocklist, Kerberos statistics, PCAP captures and stored configuration (the whitelist and
//! service providers are in [`crate::suppression`]).
//!
//! Every statement is either built with diesel's query builder or is a fixed SQL text whose
//! inputs are bound parameters; nothing a caller passes is ever spliced into SQL. All
//! functions take the async connection the query paths share (see [`crate::DbPool`]).

use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Jsonb;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// A time range `[since, until]` over event timestamps (capture time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start, inclusive.
    pub since: DateTime<Utc>,
    /// End, inclusive.
    pub until: DateTime<Utc>,
}

/// The whitelist entries (alias `w`) that hide stored alerts: those naming addresses only.
const ADDRESS_ONLY_ENTRY: &str = "w.ip_cidr IS NOT NULL AND w.domain IS NULL \
     AND w.port IS NULL AND w.sensor IS NULL";

/// True when no address-only whitelist entry covers the row `rel` (with `src_ip` and
/// `dest_ip` columns) in its direction.
pub(crate) fn not_whitelisted(rel: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM whitelist w WHERE {ADDRESS_ONLY_ENTRY} \
         AND ((w.direction <> 'destination' AND {rel}.src_ip <<= w.ip_cidr::inet) \
           OR (w.direction <> 'source' AND {rel}.dest_ip <<= w.ip_cidr::inet)))"
    )
}

/// Whether any whitelist entry hides stored alerts by their addresses (when none does, alert
/// counts need no addresses).
pub(crate) async fn address_whitelist_exists(
    conn: &mut AsyncPgConnection,
) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let e: Exists = diesel::sql_query(format!(
        "SELECT EXISTS (SELECT 1 FROM whitelist w WHERE {ADDRESS_ONLY_ENTRY}) AS exists"
    ))
    .get_result(conn)
    .await?;
    Ok(e.exists)
}

/// Escapes `%`, `_` and `\` and wraps the text in `%…%`, for a bound `ILIKE … ESCAPE '\'`
/// "contains" match.
pub fn like_contains(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

mod alerts;
mod captures;
mod config;
mod flows;
mod kerberos;
mod tls;

pub use alerts::*;
pub use captures::*;
pub use config::*;
pub use flows::*;
pub use kerberos::*;
pub use tls::*;

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    v: serde_json::Value,
}

/// Round-trips a trivial query (a liveness probe that also proves JSON decoding works).
pub async fn ping(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    let r: JsonRow = diesel::sql_query("SELECT '{\"ok\":true}'::jsonb AS v")
        .get_result(conn)
        .await?;
    if r.v.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
        Ok(())
    } else {
        Err(StoreError::Invalid("unexpected probe answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("selks"), "%selks%");
        assert_eq!(like_contains("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(like_contains(""), "%%");
    }
}
