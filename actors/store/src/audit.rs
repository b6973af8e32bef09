//! MCP audit rows (`api_token_usage`) and their own binary `COPY` encoding.
//!
//! Every MCP request adds a row, tens of thousands a second under load, on the same cores that
//! answer the requests. diesel's generic `COPY` path costs about a microsecond per row here (a
//! bind and a libpq call per row), so the rows are encoded straight into one reused buffer in
//! PostgreSQL's binary `COPY` format and handed over in large chunks.

use crate::schema::api_token_usage;
use chrono::{DateTime, Utc};
use diesel::pg::CopyFormat;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// One audited MCP request or tool call (`api_token_usage`); written by [`copy_audit`], read
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
}

/// Signature, flags word and header-extension length of a binary `COPY` stream.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Field count that ends a binary `COPY` stream.
const COPY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// Columns written per row, in [`AuditRecord`] order.
const COLUMNS: i16 = 12;
/// PostgreSQL counts timestamps in microseconds from 2000-01-01, the Unix epoch plus this.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Bytes handed to libpq per call.
const COPY_CHUNK: usize = 64 * 1024;

impl AuditRecord {
    /// Appends this row as one binary `COPY` tuple.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), diesel::result::Error> {
        out.extend_from_slice(&COLUMNS.to_be_bytes());
        int8(out, Some(self.ts.timestamp_micros() - PG_EPOCH_US));
        int8(out, self.token_id);
        text(out, self.token_name.as_deref())?;
        text(out, Some(&self.method))?;
        text(out, self.tool.as_deref())?;
        text(out, Some(&self.status))?;
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&self.http_status.to_be_bytes());
        int8(out, Some(self.duration_us));
        text(out, self.client_addr.as_deref())?;
        text(out, self.user_agent.as_deref())?;
        text(out, self.session_id.as_deref())?;
        text(out, self.error.as_deref())
    }
}

fn int8(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => {
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

fn text(out: &mut Vec<u8>, v: Option<&str>) -> Result<(), diesel::result::Error> {
    match v {
        Some(s) => {
            let len = i32::try_from(s.len())
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    Ok(())
}

/// Writes `rows` with one binary `COPY`, encoding into `buf` (cleared first, kept for reuse).
pub(crate) fn copy_audit<'a>(
    conn: &mut PgConnection,
    rows: impl IntoIterator<Item = &'a AuditRecord>,
    buf: &mut Vec<u8>,
) -> QueryResult<usize> {
    buf.clear();
    buf.extend_from_slice(COPY_HEADER);
    for row in rows {
        row.encode(buf)?;
    }
    buf.extend_from_slice(&COPY_TRAILER);
    let data: &[u8] = buf;
    use api_token_usage::*;
    diesel::copy_from(api_token_usage::table)
        .from_raw_data(
            (
                ts,
                token_id,
                token_name,
                method,
                tool,
                status,
                http_status,
                duration_us,
                client_addr,
                user_agent,
                session_id,
                error,
            ),
            |w| {
                for chunk in data.chunks(COPY_CHUNK) {
                    w.write_all(chunk)
                        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
                }
                Ok::<_, diesel::result::Error>(())
            },
        )
        .with_format(CopyFormat::Binary)
        .execute(conn)
}
