//! MCP audit rows (`api_token_usage`). Every MCP request adds one, tens of thousands a second
//! under load; the writer encodes them like every other row (`rows.rs`), straight into a reused
//! binary `COPY` buffer.

use crate::schema::api_token_usage;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// One audited MCP request or tool call (`api_token_usage`); written by the store writer, read
/// back with `AuditRecord::as_select()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Queryable, Selectable)]
#[diesel(table_name = api_token_usage)]
#[allow(missing_docs)]
pub struct AuditRecord {
    pub ts: DateTime<Utc>,
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub method: String,
    pub tool: Option<String>,
    pub status: String,
    pub http_status: i32,
    pub duration_us: i64,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub session_id: Option<String>,
    pub error: Option<String>,
    /// A tool call's arguments as JSON (redacted and cut by the MCP server).
    #[serde(default)]
    pub arguments: Option<String>,
}
