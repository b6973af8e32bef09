//! The unauthenticated operational endpoints: `/health` (JSON, 503 when degraded) and
//! `/metrics` (Prometheus text), plus the request metrics middleware for every route.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::PrometheusHandle;
use netmonitor_store::StoreStats;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What the operational endpoints read.
#[derive(Clone)]
pub struct OpsState {
    /// Process start.
    pub started: Instant,
    /// Result of the last database probe.
    pub database_up: Arc<AtomicBool>,
    /// Tools the MCP server offers.
    pub tools: Arc<AtomicUsize>,
    /// The store writer's figures.
    pub store: Arc<StoreStats>,
    /// Renders /metrics.
    pub prometheus: PrometheusHandle,
    /// Sensor name.
    pub sensor: String,
}

/// Registers /health and /metrics.
pub fn configure(cfg: &mut web::ServiceConfig, state: OpsState) {
    cfg.app_data(web::Data::new(state))
        .route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics_text));
}

async fn health(state: web::Data<OpsState>) -> HttpResponse {
    let db_up = state.database_up.load(Ordering::Relaxed);
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
        },
    });
    if db_up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics_text(state: web::Data<OpsState>) -> HttpResponse {
    crate::telemetry::update_process_metrics(state.started);
    metrics::gauge!("netmonitor_database_up").set(if state.database_up.load(Ordering::Relaxed) {
        1.0
    } else {
        0.0
    });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.prometheus.render())
}

/// Method label for metrics (static, so recording allocates nothing); unusual ones as `other`.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Status label for metrics, without formatting a string per request.
fn status_label(s: actix_web::http::StatusCode) -> &'static str {
    const CODES: &[&str] = &[
        "200", "202", "204", "400", "401", "403", "404", "405", "406", "413", "415", "429", "500",
        "503",
    ];
    let code = s.as_str();
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or(match s.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        })
}

/// Route label for metrics: known paths by name, everything else as `other` (bounded cardinality).
fn route_label(path: &str) -> &'static str {
    match path {
        "/mcp" => "/mcp",
        "/sse" => "/sse",
        "/messages" => "/messages",
        "/health" => "/health",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// Middleware body: counts requests and records latency per route and status.
pub fn record_request<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = Instant::now();
    let route = route_label(req.path());
    let method = method_label(req.method());
    let fut = srv.call(req);
    async move {
        let res = fut.await;
        let status = status_label(match &res {
            Ok(r) => r.status(),
            Err(e) => e.as_response_error().status_code(),
        });
        metrics::counter!("netmonitor_http_requests_total", "route" => route, "method" => method, "status" => status)
            .increment(1);
        metrics::histogram!("netmonitor_http_request_duration_seconds", "route" => route, "method" => method)
            .record(started.elapsed().as_secs_f64());
        res
    }
}
