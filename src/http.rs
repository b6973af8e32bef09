//! The unauthenticated operational endpoints: `/health` (JSON, 503 when degraded) and
//! `/metrics` (Prometheus text), plus the request metrics middleware for every route.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpResponse};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use netmonitor_store::StoreStats;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What the operational endpoints read.
#[derive(Clone)]
pub struct OpsState {
    /// Process start.
    pub started: Instant,
    /// Result of the last database probe.
    pub database_up: Arc<AtomicBool>,
    /// Whether the private cluster's postmaster runs (embedded default only).
    pub cluster_alive: Option<Arc<AtomicBool>>,
    /// Tools the MCP server offers.
    pub tools: Arc<AtomicUsize>,
    /// The store writer's figures.
    pub store: Arc<StoreStats>,
    /// Renders /metrics.
    pub prometheus: PrometheusHandle,
    /// Sensor name.
    pub sensor: String,
    /// When set, `/metrics` needs a bearer token this server accepts.
    pub metrics_guard: Option<Arc<netmonitor_mcp::McpServer>>,
}

/// Registers /health and /metrics.
pub fn configure(cfg: &mut web::ServiceConfig, state: OpsState) {
    cfg.app_data(web::Data::new(state))
        .route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics_text));
}

impl OpsState {
    /// The database answered the last probe and, for the embedded default, its postmaster
    /// still runs (checked twice a second, so a crash shows at once rather than at the next probe).
    fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Relaxed)
            && self
                .cluster_alive
                .as_ref()
                .is_none_or(|a| a.load(Ordering::Relaxed))
    }
}

async fn health(state: web::Data<OpsState>) -> HttpResponse {
    let db_up = state.database_up();
    let spooled = state.store.spool_batches.load(Ordering::Relaxed);
    let body = json!({
        "status": if db_up { "healthy" } else { "degraded" },
        "server": "NetMonitor MCP Streamable HTTP",
        "version": env!("CARGO_PKG_VERSION"),
        "database": if db_up { "connected" } else { "disconnected" },
        "tools": state.tools.load(Ordering::Relaxed),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "sensor": state.sensor,
        "store": {
            "rows_written": state.store.rows_written.load(Ordering::Relaxed),
            "rows_spooled": state.store.rows_spooled.load(Ordering::Relaxed),
            "spool_batches": spooled,
            "rows_rejected": state.store.rows_rejected.load(Ordering::Relaxed),
            "rows_dropped": state.store.rows_dropped.load(Ordering::Relaxed),
        },
    });
    if db_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics_text(req: actix_web::HttpRequest, state: web::Data<OpsState>) -> HttpResponse {
    if let Some(server) = &state.metrics_guard {
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let client = req.peer_addr().map(|a| a.ip());
        if let Err(f) = server.authenticate(header, client).await {
            return HttpResponse::Unauthorized()
                .insert_header(("www-authenticate", f.www_authenticate("netmonitor")))
                .content_type("text/plain; charset=utf-8")
                .body(format!("{}\n", f.describe()));
        }
    }
    let process = crate::telemetry::process_metrics(state.started);
    metrics::gauge!("netmonitor_database_up").set(if state.database_up() { 1.0 } else { 0.0 });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.prometheus.render() + &process)
}

/// Method labels for metrics; unusual methods count as the last, `other`.
const METHODS: [&str; 8] = [
    "GET", "POST", "DELETE", "OPTIONS", "HEAD", "PUT", "PATCH", "other",
];

/// Index of a request method among [`METHODS`].
fn method_index(m: &actix_web::http::Method) -> usize {
    use actix_web::http::Method;
    match *m {
        Method::GET => 0,
        Method::POST => 1,
        Method::DELETE => 2,
        Method::OPTIONS => 3,
        Method::HEAD => 4,
        Method::PUT => 5,
        Method::PATCH => 6,
        _ => METHODS.len() - 1,
    }
}

/// Status labels for metrics: the codes this server answers by name, then one per class
/// (`1xx` … `5xx`) for any other.
const STATUSES: [&str; 19] = [
    "200", "202", "204", "400", "401", "403", "404", "405", "406", "413", "415", "429", "500",
    "503", "1xx", "2xx", "3xx", "4xx", "5xx",
];

/// Where the class labels start in [`STATUSES`].
const STATUS_CLASSES: usize = STATUSES.len() - 5;

/// Index of a status among [`STATUSES`].
fn status_index(s: actix_web::http::StatusCode) -> usize {
    let code = s.as_str();
    STATUSES[..STATUS_CLASSES]
        .iter()
        .position(|c| *c == code)
        .unwrap_or_else(|| STATUS_CLASSES + usize::from(s.as_u16() / 100).clamp(1, 5) - 1)
}

/// Route labels for metrics: known paths by name, everything else as `other` (bounded cardinality).
const ROUTES: [&str; 6] = ["/mcp", "/sse", "/messages", "/health", "/metrics", "other"];

/// Index of a request path among [`ROUTES`] (the last, `other`, for any unknown path).
fn route_index(path: &str) -> usize {
    let other = ROUTES.len() - 1;
    ROUTES[..other]
        .iter()
        .position(|r| *r == path)
        .unwrap_or(other)
}

/// The HTTP request metrics, each handle registered with the recorder on first use of its
/// labels: the recorder hashes name and labels on every `counter!`, a visible share of a
/// request as cheap as /health.
pub struct HttpMeters {
    /// `netmonitor_http_requests_total` by route, method and status.
    requests: Vec<OnceLock<Counter>>,
    /// `netmonitor_http_request_duration_seconds` by route and method.
    durations: Vec<OnceLock<Histogram>>,
}

impl Default for HttpMeters {
    fn default() -> Self {
        let slots = ROUTES.len() * METHODS.len();
        HttpMeters {
            requests: (0..slots * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
            durations: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl HttpMeters {
    fn record(&self, route: usize, method: usize, status: usize, elapsed: Duration) {
        let slot = route * METHODS.len() + method;
        let (route, method) = (ROUTES[route], METHODS[method]);
        self.requests[slot * STATUSES.len() + status]
            .get_or_init(|| {
                metrics::counter!("netmonitor_http_requests_total", "route" => route, "method" => method, "status" => STATUSES[status])
            })
            .increment(1);
        self.durations[slot]
            .get_or_init(|| {
                metrics::histogram!("netmonitor_http_request_duration_seconds", "route" => route, "method" => method)
            })
            .record(elapsed.as_secs_f64());
    }
}

/// Middleware body: counts requests and records latency per route and status.
pub fn record_request<S, B>(
    meters: Arc<HttpMeters>,
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = Instant::now();
    let route = route_index(req.path());
    let method = method_index(req.method());
    let fut = srv.call(req);
    async move {
        let res = fut.await;
        let status = status_index(match &res {
            Ok(r) => r.status(),
            Err(e) => e.as_response_error().status_code(),
        });
        meters.record(route, method, status, started.elapsed());
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::{Method, StatusCode};

    #[test]
    fn metric_labels_are_bounded() {
        assert_eq!(ROUTES[route_index("/mcp")], "/mcp");
        assert_eq!(ROUTES[route_index("/etc/passwd")], "other");
        assert_eq!(METHODS[method_index(&Method::POST)], "POST");
        assert_eq!(METHODS[method_index(&Method::TRACE)], "other");
        assert_eq!(STATUSES[status_index(StatusCode::TOO_MANY_REQUESTS)], "429");
        assert_eq!(STATUSES[status_index(StatusCode::IM_A_TEAPOT)], "4xx");
        assert_eq!(
            STATUSES[status_index(StatusCode::SWITCHING_PROTOCOLS)],
            "1xx"
        );
        assert_eq!(STATUSES[status_index(StatusCode::BAD_GATEWAY)], "5xx");
    }
}
