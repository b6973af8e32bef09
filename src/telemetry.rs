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
                    let _ = metrics::set_global_recorder(recorder);
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

/// Refreshes process gauges (`process_resident_memory_bytes`, `process_cpu_seconds_total`, …)
/// from /proc right before a scrape.
pub fn update_process_metrics(started: std::time::Instant) {
    metrics::gauge!("netmonitor_uptime_seconds").set(started.elapsed().as_secs_f64());
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut it = statm.split_whitespace();
        if let (Some(vsz), Some(rss)) = (it.next(), it.next()) {
            metrics::gauge!("process_virtual_memory_bytes")
                .set(vsz.parse::<f64>().unwrap_or(0.0) * page);
            metrics::gauge!("process_resident_memory_bytes")
                .set(rss.parse::<f64>().unwrap_or(0.0) * page);
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
                metrics::gauge!("process_cpu_seconds_total").set((utime + stime) / ticks);
            }
            metrics::gauge!("process_threads").set(threads);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
}
