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
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When the request arrived.
    pub ts: Timestamp,
    /// Token id, when authenticated.
    pub token_id: Option<i64>,
    /// Token name ("anonymous" when auth is off, "-" when unauthenticated).
    pub token_name: String,
    /// JSON-RPC method, or the HTTP method and path for transport-level rows (`GET /mcp`).
    pub method: String,
    /// Tool name for tools/call (as requested, also when no such tool exists).
    pub tool: Option<String>,
    /// The tool's arguments as JSON, secrets redacted and cut at the configured size.
    pub arguments: Option<String>,
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

/// Argument names whose values never reach the audit trail.
const SECRET_KEYS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "credential",
    "private_key",
];

/// Longest tool name recorded (a caller chooses it).
pub const MAX_AUDIT_TOOL_NAME: usize = 128;

/// Tool arguments as recorded: values of secret-looking keys (`password`, `token`, ...) replaced
/// by `"[redacted]"` at any depth, then cut to at most `max_bytes` (on a character boundary,
/// marked with `…`).
pub fn audit_arguments(args: &serde_json::Value, max_bytes: usize) -> String {
    fn redact(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, v)| {
                    let key = k.to_ascii_lowercase();
                    if SECRET_KEYS.iter().any(|s| key.contains(s)) {
                        (k.clone(), serde_json::Value::String("[redacted]".into()))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
            serde_json::Value::Array(a) => a.iter().map(redact).collect(),
            other => other.clone(),
        }
    }
    let text = redact(args).to_string();
    cut(&text, max_bytes)
}

/// `s` cut to at most `max` bytes on a character boundary, `…` marking the cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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

    #[test]
    fn secrets_are_redacted_at_any_depth_and_long_arguments_cut() {
        use serde_json::json;
        let args = json!({"ip": "10.0.0.1", "Password": "hunter2",
            "nested": {"api_token": "nmt_x", "list": [{"client_secret": 1}]}});
        let text = audit_arguments(&args, 4096);
        assert!(
            !text.contains("hunter2") && !text.contains("nmt_x"),
            "{text}"
        );
        assert!(text.contains("10.0.0.1"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["nested"]["list"][0]["client_secret"], "[redacted]");
        let long = audit_arguments(&json!({"q": "é".repeat(100)}), 50);
        assert!(long.len() <= 50 && long.ends_with('…'), "{long}");
    }
}
