//! Instrumentation as named events: each struct's `emit` updates the metric (and logs where a
//! human should know). Metric names follow `netmonitor_mcp_<thing>_<unit>`; labels are kept
//! low-cardinality (unknown methods and tools are folded into "other").

use std::time::Duration;

/// JSON-RPC methods used as metric labels; anything else is "other".
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "logging/setLevel",
    "completion/complete",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
    "GET /mcp",
    "POST /mcp",
    "DELETE /mcp",
    "GET /sse",
    "POST /messages",
    "response",
    "batch",
];

/// The metric label for a method name.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or(if method.starts_with("notifications/") {
            "notifications/other"
        } else {
            "other"
        })
}

/// One request or message handled.
pub struct RequestHandled<'a> {
    /// Method (folded to a known label).
    pub method: &'a str,
    /// Audit status.
    pub status: &'static str,
    /// Time taken.
    pub duration: Duration,
}

impl RequestHandled<'_> {
    /// Updates `netmonitor_mcp_requests_total` and `netmonitor_mcp_request_duration_seconds`.
    pub fn emit(&self) {
        let method = method_label(self.method);
        metrics::counter!("netmonitor_mcp_requests_total", "method" => method, "status" => self.status)
            .increment(1);
        metrics::histogram!("netmonitor_mcp_request_duration_seconds", "method" => method)
            .record(self.duration.as_secs_f64());
    }
}

/// One tool call finished.
pub struct ToolCalled<'a> {
    /// A registered tool name (unknown names are never reported).
    pub tool: &'a str,
    /// ok, error or denied.
    pub status: &'static str,
}

impl ToolCalled<'_> {
    /// Updates `netmonitor_mcp_tool_calls_total`.
    pub fn emit(&self) {
        metrics::counter!(
            "netmonitor_mcp_tool_calls_total",
            "tool" => self.tool.to_string(),
            "status" => self.status
        )
        .increment(1);
    }
}

/// The number of live sessions changed.
pub struct SessionsActive(pub usize);

impl SessionsActive {
    /// Sets `netmonitor_mcp_sessions_active`.
    pub fn emit(&self) {
        metrics::gauge!("netmonitor_mcp_sessions_active").set(self.0 as f64);
    }
}

/// A client read an SSE stream too slowly; its connection was closed (it may resume).
pub struct SseStreamOverflow;

impl SseStreamOverflow {
    /// Counts `netmonitor_mcp_sse_overflow_total` and logs.
    pub fn emit(&self) {
        metrics::counter!("netmonitor_mcp_sse_overflow_total").increment(1);
        tracing::warn!("MCP SSE client too slow: stream closed, client may resume");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_update_the_named_metrics() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            RequestHandled {
                method: "tools/call",
                status: "ok",
                duration: Duration::from_millis(3),
            }
            .emit();
            RequestHandled {
                method: "evil/method",
                status: "error",
                duration: Duration::from_millis(1),
            }
            .emit();
            ToolCalled {
                tool: "echo",
                status: "denied",
            }
            .emit();
            SessionsActive(3).emit();
        });
        let snap = snapshotter.snapshot().into_vec();
        let find = |name: &str, labels: &[(&str, &str)]| {
            snap.iter().any(|(k, _, _, _)| {
                let key = k.key();
                key.name() == name
                    && labels
                        .iter()
                        .all(|(l, v)| key.labels().any(|x| x.key() == *l && x.value() == *v))
            })
        };
        assert!(find(
            "netmonitor_mcp_requests_total",
            &[("method", "tools/call"), ("status", "ok")]
        ));
        assert!(find(
            "netmonitor_mcp_requests_total",
            &[("method", "other"), ("status", "error")]
        ));
        assert!(find(
            "netmonitor_mcp_request_duration_seconds",
            &[("method", "tools/call")]
        ));
        assert!(find(
            "netmonitor_mcp_tool_calls_total",
            &[("tool", "echo"), ("status", "denied")]
        ));
        assert!(find("netmonitor_mcp_sessions_active", &[]));
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("x/evil-12345"), "other");
        assert_eq!(method_label("notifications/foo"), "notifications/other");
    }
}
