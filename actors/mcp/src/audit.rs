//! The audit trail: one [`AuditEntry`] per HTTP request to the MCP endpoints and per JSON-RPC
//! message (tool calls included), handed to an [`AuditSink`] that must never block; the
//! PostgreSQL sink batches them off the request path.

use netmonitor_common::Timestamp;
use serde::Serialize;

/// Outcome recorded in an audit row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditStatus {
    /// Served.
    Ok,
    /// Protocol error, bad request or a tool failure.
    Error,
    /// Refused: scope too low, or Origin not allowed.
    Denied,
    /// Refused by the token's rate limit.
    RateLimited,
    /// Missing, invalid, expired or revoked token.
    Unauthorized,
}

impl AuditStatus {
    /// Every status, in declaration order (`status as usize` indexes it).
    pub const ALL: [AuditStatus; 5] = [
        AuditStatus::Ok,
        AuditStatus::Error,
        AuditStatus::Denied,
        AuditStatus::RateLimited,
        AuditStatus::Unauthorized,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Ok => "ok",
            AuditStatus::Error => "error",
            AuditStatus::Denied => "denied",
            AuditStatus::RateLimited => "rate_limited",
            AuditStatus::Unauthorized => "unauthorized",
        }
    }
}

/// One audited request or tool call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When the request arrived.
    pub ts: Timestamp,
    /// Token id, when authenticated.
    pub token_id: Option<i64>,
    /// Token name ("anonymous" when auth is off, "-" when unauthenticated).
    pub token_name: String,
    /// JSON-RPC method, or the HTTP method and path for transport-level rows (`GET /mcp`).
    pub method: String,
    /// Tool name for tools/call.
    pub tool: Option<String>,
    /// ok | error | denied | rate_limited | unauthorized.
    pub status: String,
    /// HTTP status answered (200 for messages delivered over SSE/stdio).
    pub http_status: u16,
    /// Time spent, microseconds.
    pub duration_us: u64,
    /// Peer address.
    pub client_addr: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Mcp-Session-Id` or legacy session id.
    pub session_id: Option<String>,
    /// Error text, when not ok.
    pub error: Option<String>,
}

/// Receives audit rows. Implementations must return immediately (queue and batch); they are
/// called on the request path.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one entry without blocking or awaiting.
    fn record(&self, entry: AuditEntry);
}

/// A sink that drops everything (for embedding without a database).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullAuditSink;

impl AuditSink for NullAuditSink {
    fn record(&self, _entry: AuditEntry) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_stored_spellings() {
        let all = [
            AuditStatus::Ok,
            AuditStatus::Error,
            AuditStatus::Denied,
            AuditStatus::RateLimited,
            AuditStatus::Unauthorized,
        ];
        let names: Vec<_> = all.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["ok", "error", "denied", "rate_limited", "unauthorized"]
        );
    }
}
