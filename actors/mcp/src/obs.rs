//! Instrumentation as named events: each struct's `emit` updates the metric (and logs where a
//! human should know). Metric names follow `netmonitor_mcp_<thing>_<unit>`; labels are kept
//! low-cardinality (unknown methods and tools are folded into "other").

use crate::audit::AuditStatus;
use metrics::{Counter, Histogram};
use std::sync::OnceLock;
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

/// Method labels: the known methods, then the two folds.
const METHOD_LABELS: usize = KNOWN_METHODS.len() + 2;

/// The metric label for a method name, with its index among the labels.
fn method_label_at(method: &str) -> (usize, &'static str) {
    match KNOWN_METHODS.iter().position(|m| *m == method) {
        Some(i) => (i, KNOWN_METHODS[i]),
        None if method.starts_with("notifications/") => {
            (KNOWN_METHODS.len(), "notifications/other")
        }
        None => (KNOWN_METHODS.len() + 1, "other"),
    }
}

/// The request metrics of one server, each handle registered with the recorder on first use:
/// the recorder hashes a metric's name and labels on every `counter!`, which was a measurable
/// share of a cheap tool call.
pub struct RequestMeters {
    /// `netmonitor_mcp_requests_total` by method label and audit status.
    counts: [[OnceLock<Counter>; AuditStatus::ALL.len()]; METHOD_LABELS],
    /// `netmonitor_mcp_request_duration_seconds` by method label.
    durations: [OnceLock<Histogram>; METHOD_LABELS],
}

impl Default for RequestMeters {
    fn default() -> Self {
        RequestMeters {
            counts: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            durations: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl RequestMeters {
    /// One request or message handled: updates `netmonitor_mcp_requests_total` and
    /// `netmonitor_mcp_request_duration_seconds`.
    pub fn handled(&self, method: &str, status: AuditStatus, duration: Duration) {
        let (i, label) = method_label_at(method);
        self.counts[i][status as usize]
            .get_or_init(|| {
                metrics::counter!("netmonitor_mcp_requests_total", "method" => label, "status" => status.as_str())
            })
            .increment(1);
        self.durations[i]
            .get_or_init(|| {
                metrics::histogram!("netmonitor_mcp_request_duration_seconds", "method" => label)
            })
            .record(duration.as_secs_f64());
    }
}

/// `netmonitor_mcp_tool_calls_total` handles of one registered tool, by audit status,
/// registered on first use (see [`RequestMeters`]).
#[derive(Clone, Default)]
pub struct ToolMeters([OnceLock<Counter>; AuditStatus::ALL.len()]);

impl ToolMeters {
    /// One call of the tool `tool` finished.
    pub fn called(&self, tool: &str, status: AuditStatus) {
        self.0[status as usize]
            .get_or_init(|| {
                metrics::counter!(
                    "netmonitor_mcp_tool_calls_total",
                    "tool" => tool.to_string(),
                    "status" => status.as_str()
                )
            })
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

/// A session was refused: the server's or the token's cap was reached.
pub struct SessionRefused(pub &'static str);

impl SessionRefused {
    /// Counts `netmonitor_mcp_sessions_refused_total{reason}` and logs it.
    pub fn emit(&self) {
        metrics::counter!("netmonitor_mcp_sessions_refused_total", "reason" => self.0).increment(1);
        tracing::warn!(reason = self.0, "MCP session refused: too many sessions");
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
            let requests = RequestMeters::default();
            requests.handled("tools/call", AuditStatus::Ok, Duration::from_millis(3));
            requests.handled("tools/call", AuditStatus::Ok, Duration::from_millis(3));
            requests.handled("evil/method", AuditStatus::Error, Duration::from_millis(1));
            ToolMeters::default().called("echo", AuditStatus::Denied);
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
        // the cached handle counts every call
        assert!(snap.iter().any(|(k, _, _, v)| {
            k.key().name() == "netmonitor_mcp_requests_total"
                && k.key().labels().any(|l| l.value() == "tools/call")
                && *v == metrics_util::debugging::DebugValue::Counter(2)
        }));
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
        assert_eq!(method_label_at("tools/call").1, "tools/call");
        assert_eq!(
            method_label_at("x/evil-12345"),
            (METHOD_LABELS - 1, "other")
        );
        assert_eq!(
            method_label_at("notifications/foo"),
            (METHOD_LABELS - 2, "notifications/other")
        );
    }
}
