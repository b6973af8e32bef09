//! Logging (tracing) and the Prometheus recorder, set up once per process.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

type FilterHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The live log filter and its text, for `set_log_level` (the `log_level` live key).
static LOG_FILTER: OnceLock<(FilterHandle, std::sync::Mutex<String>)> = OnceLock::new();

/// Starts logging to stderr with the configured filter (RUST_LOG, when set, wins).
pub fn init_logging(level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_owned());
    let (layer, handle) =
        tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new(&filter));
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .try_init();
    if installed.is_ok() {
        let _ = LOG_FILTER.set((handle, std::sync::Mutex::new(filter)));
    }
}

/// Changes the log filter of the running process; answers the previous one.
pub fn set_log_level(level: &str) -> Result<String, String> {
    let new = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| format!("log_level: expected trace|debug|info|warn|error or a filter: {e}"))?;
    let (handle, text) = LOG_FILTER
        .get()
        .ok_or_else(|| "log_level: logging was set up elsewhere in this process".to_string())?;
    handle.reload(new).map_err(|e| e.to_string())?;
    let mut t = text.lock().unwrap_or_else(|p| p.into_inner());
    Ok(std::mem::replace(&mut *t, level.to_owned()))
}

/// Installs the global metrics recorder (idempotent) and returns the handle that renders it.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let latency = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .map(|b| b.build_recorder());
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    if metrics::set_global_recorder(recorder).is_ok() {
                        describe_metrics();
                    }
                    handle
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics recorder could not be built");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Every metric the service exports, with its type and HELP text (one place, so `/metrics`
/// passes `promtool check metrics`; a test checks that every metric name in the sources is here).
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "netmonitor_intel_matches_total",
        "counter",
        "Feed-match alerts the threat-feed actor handed to the alert stage",
    ),
    (
        "netmonitor_intel_indicators",
        "gauge",
        "Indicators held by the threat-feed matcher over all feeds",
    ),
    (
        "netmonitor_intel_feed_syncs_total",
        "counter",
        "Threat-feed refreshes, by result (updated, not_modified, failed, busy, disabled)",
    ),
    (
        "netmonitor_intel_feed_sync_seconds",
        "histogram",
        "Wall time of one threat-feed refresh: download, parse, store and matcher build",
    ),
    (
        "netmonitor_actor_panics_total",
        "counter",
        "Panics caught in an actor or the packet path, by actor",
    ),
    (
        "netmonitor_actor_restarts_total",
        "counter",
        "Actor restarts by their supervisor, by actor",
    ),
    (
        "netmonitor_alert_latency_seconds",
        "histogram",
        "Packet capture time to the alert leaving the alert stage, live traffic only",
    ),
    (
        "netmonitor_alerts_suppressed_total",
        "counter",
        "Alerts the alert stage did not raise, by reason (whitelist, service_provider, duplicate, disabled)",
    ),
    (
        "netmonitor_behaviour_tracked_entries",
        "gauge",
        "Entries the behaviour detections hold (sources, pairs, hosts), bounded by detection.behaviour.max_tracked per table",
    ),
    (
        "netmonitor_behaviour_evictions_total",
        "counter",
        "Least recently seen entries the behaviour detections evicted to stay within their bound",
    ),
    (
        "netmonitor_devices",
        "gauge",
        "Devices in the device inventory",
    ),
    (
        "netmonitor_devices_saved_total",
        "counter",
        "Device records written to PostgreSQL by the device actor",
    ),
    (
        "netmonitor_risk_assets",
        "gauge",
        "Assets (addresses) the risk actor scores",
    ),
    (
        "netmonitor_attack_chains",
        "gauge",
        "Attack chains the risk actor holds, open and closed",
    ),
    (
        "netmonitor_risk_threshold_crossings_total",
        "counter",
        "Assets whose risk rose into a higher level, by the level reached",
    ),
    (
        "netmonitor_attack_chain_stages_total",
        "counter",
        "Kill-chain stages attack chains gained past their first (each raises attack_chain)",
    ),
    (
        "netmonitor_risk_evictions_total",
        "counter",
        "Lowest-scored assets the risk actor forgot to stay within risk.max_assets",
    ),
    (
        "netmonitor_risk_rows_saved_total",
        "counter",
        "Rows (assets, chains, ATT&CK cells, history) the risk actor wrote to PostgreSQL",
    ),
    (
        "netmonitor_risk_snapshots_total",
        "counter",
        "Risk history snapshots taken at the packet-time cadence",
    ),
    (
        "netmonitor_soar_playbooks",
        "gauge",
        "SOAR playbooks in force",
    ),
    (
        "netmonitor_soar_actions_total",
        "counter",
        "SOAR actions run, by type and outcome (executed or failed)",
    ),
    (
        "netmonitor_soar_suppressed_total",
        "counter",
        "SOAR actions not proposed, by reason (cooldown, hourly_cap, conditions)",
    ),
    (
        "netmonitor_soar_expired_total",
        "counter",
        "Pending SOAR actions that expired without a decision",
    ),
    (
        "netmonitor_soar_trigger_to_pending_seconds",
        "histogram",
        "Time from an alert reaching the SOAR actor to its proposed action being stored",
    ),
    (
        "netmonitor_alerts_total",
        "counter",
        "Alerts raised, by threat type and severity",
    ),
    (
        "netmonitor_audit_dropped_total",
        "counter",
        "MCP audit rows lost because the audit queue was full or the store was gone",
    ),
    (
        "netmonitor_bus_batches_total",
        "counter",
        "Event batches delivered to a bus subscriber",
    ),
    (
        "netmonitor_bus_dropped_batches_total",
        "counter",
        "Event batches a drop-policy bus subscriber lost to a full mailbox",
    ),
    (
        "netmonitor_bus_dropped_events_total",
        "counter",
        "Events in the batches a bus subscriber lost",
    ),
    (
        "netmonitor_bus_queue_depth",
        "gauge",
        "Event batches waiting in a bus subscriber's mailbox",
    ),
    (
        "netmonitor_bytes_total",
        "counter",
        "Wire bytes through the packet path",
    ),
    (
        "netmonitor_capture_kernel_drops_total",
        "counter",
        "Packets the kernel dropped before capture read them, by interface",
    ),
    (
        "netmonitor_capture_packets_total",
        "counter",
        "Packets read from a capture source, by interface",
    ),
    (
        "netmonitor_capture_queue_drops_total",
        "counter",
        "Packets dropped because the pipeline queue was full, by interface",
    ),
    (
        "netmonitor_database_up",
        "gauge",
        "1 when the database answered the last probe and its postmaster runs",
    ),
    (
        "netmonitor_eve_events_written_total",
        "counter",
        "Events written to the EVE file",
    ),
    (
        "netmonitor_eve_write_errors_total",
        "counter",
        "Failed writes to the EVE file",
    ),
    (
        "netmonitor_events_total",
        "counter",
        "Events produced by the packet path",
    ),
    (
        "netmonitor_flows_active",
        "gauge",
        "Flows tracked by the packet path",
    ),
    (
        "netmonitor_http_request_duration_seconds",
        "histogram",
        "HTTP request duration, by route, method and status",
    ),
    (
        "netmonitor_http_requests_total",
        "counter",
        "HTTP requests, by route, method and status",
    ),
    (
        "netmonitor_mcp_request_duration_seconds",
        "histogram",
        "MCP JSON-RPC request duration, by method",
    ),
    (
        "netmonitor_mcp_requests_total",
        "counter",
        "MCP JSON-RPC messages handled, by method and status",
    ),
    (
        "netmonitor_mcp_sessions_active",
        "gauge",
        "Open MCP sessions, all transports",
    ),
    (
        "netmonitor_mcp_sessions_refused_total",
        "counter",
        "MCP sessions refused at a cap, by reason",
    ),
    (
        "netmonitor_mcp_sse_overflow_total",
        "counter",
        "SSE connections closed because the client read too slowly",
    ),
    (
        "netmonitor_mcp_tool_calls_total",
        "counter",
        "MCP tool calls, by tool and status",
    ),
    (
        "netmonitor_packets_total",
        "counter",
        "Packets through the packet path",
    ),
    (
        "netmonitor_store_batch_seconds",
        "histogram",
        "Time to write one batch to PostgreSQL",
    ),
    (
        "netmonitor_store_cluster_restart_failures_total",
        "counter",
        "Failed restarts of the private PostgreSQL cluster",
    ),
    (
        "netmonitor_store_cluster_restarts_total",
        "counter",
        "Restarts of the private PostgreSQL cluster after it died",
    ),
    (
        "netmonitor_store_cluster_up",
        "gauge",
        "1 while the private PostgreSQL cluster's postmaster runs",
    ),
    (
        "netmonitor_store_database_up",
        "gauge",
        "1 while the store writer is connected",
    ),
    (
        "netmonitor_store_errors_total",
        "counter",
        "Store failures, by error type",
    ),
    (
        "netmonitor_store_queue_depth",
        "gauge",
        "Batches waiting in the store writer's queue",
    ),
    (
        "netmonitor_store_rows_rejected_total",
        "counter",
        "Rows PostgreSQL refused for their content, moved to the dead-letter directory",
    ),
    (
        "netmonitor_store_rows_replayed_total",
        "counter",
        "Spooled rows written after an outage",
    ),
    (
        "netmonitor_store_rows_spooled_total",
        "counter",
        "Rows written to the disk spool during an outage",
    ),
    (
        "netmonitor_store_rows_written_total",
        "counter",
        "Rows written to PostgreSQL",
    ),
    (
        "netmonitor_store_spool_batches",
        "gauge",
        "Batches waiting in the disk spool",
    ),
    (
        "netmonitor_store_spool_bytes",
        "gauge",
        "Bytes held by the disk spool",
    ),
    (
        "netmonitor_store_spool_corrupt_files_total",
        "counter",
        "Spool files that could not be read back and were moved aside",
    ),
    (
        "netmonitor_store_spool_dropped_rows_total",
        "counter",
        "Spooled rows dropped to keep the spool within its bound",
    ),
    (
        "netmonitor_store_partition_days_total",
        "counter",
        "Days whose daily partitions the store writer made (ahead of time or for a batch)",
    ),
    (
        "netmonitor_store_partitions_dropped_total",
        "counter",
        "Daily partitions dropped by retention, by table",
    ),
    (
        "netmonitor_uptime_seconds",
        "gauge",
        "Seconds since the service started",
    ),
];

fn describe_metrics() {
    for (name, kind, help) in METRICS {
        match *kind {
            "counter" => metrics::describe_counter!(*name, *help),
            "gauge" => metrics::describe_gauge!(*name, *help),
            _ => metrics::describe_histogram!(*name, *help),
        }
    }
}

/// The process's own metrics in Prometheus text (read from /proc at each scrape, typed as
/// Prometheus expects: `process_cpu_seconds_total` is a counter of seconds).
pub fn process_metrics(started: std::time::Instant) -> String {
    use std::fmt::Write;
    metrics::gauge!("netmonitor_uptime_seconds").set(started.elapsed().as_secs_f64());
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        );
    };
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut it = statm.split_whitespace();
        if let (Some(vsz), Some(rss)) = (it.next(), it.next()) {
            put(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes",
                vsz.parse::<f64>().unwrap_or(0.0) * page,
            );
            put(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes",
                rss.parse::<f64>().unwrap_or(0.0) * page,
            );
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces) start at state (field 3).
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let stime = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let threads = f.get(17).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            if ticks > 0.0 {
                put(
                    "process_cpu_seconds_total",
                    "counter",
                    "Total user and system CPU time spent in seconds",
                    (utime + stime) / ticks,
                );
            }
            put(
                "process_threads",
                "gauge",
                "Number of OS threads in the process",
                threads,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        put(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors",
            fds.count() as f64,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::METRICS;

    /// Every metric name used anywhere in the sources is described (or is a process metric
    /// rendered by `process_metrics`).
    #[test]
    fn every_metric_in_the_sources_has_help_text() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stack = vec![root.join("src"), root.join("actors")];
        let mut missing = Vec::new();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                for (i, _) in text.match_indices("\"netmonitor_") {
                    let name: String = text[i + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    let used_as_metric =
                        text[..i].rsplit_once('!').is_some_and(|(before, between)| {
                            between.len() < 40
                                && ["counter", "gauge", "histogram"]
                                    .iter()
                                    .any(|m| before.ends_with(m))
                        });
                    if used_as_metric && !METRICS.iter().any(|(n, _, _)| *n == name) {
                        missing.push(format!("{name} ({})", p.display()));
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(missing.is_empty(), "metrics without HELP text: {missing:?}");
    }
}
