//! The service configuration: a TOML file, then the environment variables the seed system
//! documents (environment wins). Every value is validated, and a bad one is reported by name
//! with what was expected.

use netmonitor_store::{DbTarget, StoreConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Everything `netmonitor` can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the private database cluster, spool and captures live.
    pub data_dir: Option<PathBuf>,
    /// tracing filter (`info`, `debug`, `netmonitor=debug,warn`, …).
    pub log_level: String,
    /// Name of this sensor in stored rows and status.
    pub sensor_name: String,
    /// The HTTP listener serving /mcp, /health and /metrics.
    pub http: HttpConfig,
    /// MCP server policy (auth, rate limits, CORS, sessions; see the netmonitor-mcp crate).
    pub mcp: netmonitor_mcp::McpConfig,
    /// Which PostgreSQL to use; empty means the private cluster.
    pub database: DatabaseConfig,
    /// Live interfaces and pcap files `run` reads.
    pub capture: CaptureConfig,
    /// The store writer.
    pub store: StoreConfig,
    /// The packet path and dissectors.
    pub sensor: netmonitor_sensor::SensorConfig,
    /// Detector thresholds and the alert stage.
    pub detection: netmonitor_engine::DetectionConfig,
    /// Threat feeds and matching.
    pub intel: netmonitor_intel::config::IntelConfig,
    /// The device inventory.
    pub devices: netmonitor_devices::DevicesConfig,
    /// Risk scoring, attack chains and the ATT&CK counters.
    pub risk: netmonitor_risk::RiskConfig,
    /// SOAR playbooks, approvals and actions.
    pub soar: netmonitor_soar::SoarConfig,
    /// Outputs besides PostgreSQL.
    pub output: OutputConfig,
    /// Optional local LLM endpoint (the seed's OLLAMA_* settings), used by assistant tools.
    pub ollama: OllamaConfig,
    /// Whitelist policy.
    pub whitelist: netmonitor_tools::WhitelistPolicy,
    /// Which keys the file and the environment set (for `get_config_parameters`).
    #[serde(skip)]
    origins: Origins,
}

/// Keys set by the file and by environment variables.
#[derive(Clone, Debug, Default)]
struct Origins {
    file: std::collections::BTreeSet<String>,
    env: std::collections::BTreeSet<String>,
}

/// The environment variables the seed documents, and the keys they set.
const ENV_KEYS: [(&str, &str); 17] = [
    ("MCP_API_HOST", "http.host"),
    ("MCP_API_PORT", "http.port"),
    ("LOG_LEVEL", "log_level"),
    ("DATABASE_URL", "database.url"),
    ("DB_HOST", "database.host"),
    ("DB_PORT", "database.port"),
    ("DB_NAME", "database.name"),
    ("DB_USER", "database.user"),
    ("DB_PASSWORD", "database.password"),
    ("MCP_AUTH_REQUIRED", "mcp.auth_required"),
    ("MCP_RATE_LIMIT_ENABLED", "mcp.rate_limit_enabled"),
    ("MCP_CORS_ENABLED", "mcp.cors_enabled"),
    ("MCP_CORS_ORIGINS", "mcp.cors_origins"),
    ("OLLAMA_BASE_URL", "ollama.base_url"),
    ("OLLAMA_MODEL", "ollama.model"),
    ("NETMONITOR_DATA_DIR", "data_dir"),
    ("RUST_LOG", "log_level"),
];

/// The HTTP listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Bind address (MCP_API_HOST); loopback unless you mean it.
    pub host: String,
    /// Port (MCP_API_PORT).
    pub port: u16,
    /// actix-web worker threads (0 = half the cores, at least one; see [`HttpConfig::worker_threads`]).
    pub workers: usize,
    /// Whether `/metrics` needs a bearer token (any scope), as the seed documents it. Unset: on
    /// when the server binds a non-loopback address, off on loopback.
    pub metrics_auth: Option<bool>,
}

impl HttpConfig {
    /// The HTTP worker threads to start. By default half the cores, at least one: the packet
    /// pipeline, the store writer and PostgreSQL run on the same machine; on the 2-core
    /// development VM one worker gave a lower MCP p99 under 64 clients than two (2.9–5.1 ms
    /// against 5.2–5.9 ms) at about the same request rate. This relies on handlers never
    /// blocking their thread: slow work (database, pcap export, DNS) is awaited or runs elsewhere.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }
}

/// Database selection.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A libpq URL or key/value string (DATABASE_URL).
    pub url: Option<String>,
    /// DB_HOST
    pub host: Option<String>,
    /// DB_PORT
    pub port: Option<u16>,
    /// DB_NAME
    pub name: Option<String>,
    /// DB_USER
    pub user: Option<String>,
    /// DB_PASSWORD
    pub password: Option<String>,
    /// Connections in the async query pool.
    pub pool_size: Option<usize>,
    /// Longest a tool's query may run, in milliseconds (0 = no limit; default 15,000).
    pub statement_timeout_ms: Option<u64>,
}

/// Capture sources for `run`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture on.
    pub interfaces: Vec<String>,
    /// Pcap/pcapng files to read once.
    pub pcaps: Vec<PathBuf>,
    /// Put interfaces in promiscuous mode.
    pub promiscuous: bool,
}

/// `[output]`: sinks besides PostgreSQL.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// EVE JSON (`[output.eve]`; `--eve FILE` sets the path).
    pub eve: netmonitor_eve::EveConfig,
}

/// Local LLM settings carried over from the seed system.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OllamaConfig {
    /// OLLAMA_BASE_URL
    pub base_url: String,
    /// OLLAMA_MODEL
    pub model: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            log_level: "info".into(),
            sensor_name: hostname().unwrap_or_else(|| "netmonitor".into()),
            http: HttpConfig::default(),
            mcp: netmonitor_mcp::McpConfig::default(),
            database: DatabaseConfig::default(),
            capture: CaptureConfig::default(),
            store: StoreConfig::default(),
            sensor: netmonitor_sensor::SensorConfig::default(),
            detection: netmonitor_engine::DetectionConfig::default(),
            intel: Default::default(),
            devices: Default::default(),
            risk: Default::default(),
            soar: Default::default(),
            output: OutputConfig::default(),
            ollama: OllamaConfig::default(),
            whitelist: netmonitor_tools::WhitelistPolicy::default(),
            origins: Origins::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: "127.0.0.1".into(),
            port: 8000,
            workers: 0,
            metrics_auth: None,
        }
    }
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interfaces: Vec::new(),
            pcaps: Vec::new(),
            promiscuous: true,
        }
    }
}

impl Default for OllamaConfig {
    fn default() -> Self {
        OllamaConfig {
            base_url: "http://localhost:11434".into(),
            model: "llama3.2".into(),
        }
    }
}

/// A configuration problem, naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    /// The file key or environment variable at fault.
    pub setting: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Dotted keys of every leaf of a TOML table.
fn toml_keys(t: &toml::Table) -> std::collections::BTreeSet<String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, child) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk("", &toml::Value::Table(t.clone()), &mut out);
    out
}

/// Dotted keys of every leaf of a JSON object.
fn flatten_keys(v: &serde_json::Value) -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

fn bad(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        message: message.into(),
    }
}

impl Config {
    /// Loads the file (if any), applies the environment, fills defaults and validates.
    pub fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, data_dir, |k| std::env::var(k).ok())
    }

    /// As [`load`](Self::load) with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        data_dir: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    bad(
                        &path.display().to_string(),
                        format!("cannot read config file: {e}"),
                    )
                })?;
                let mut cfg = toml::from_str::<Config>(&text).map_err(|e| {
                    bad(&path.display().to_string(), e.to_string().trim().to_owned())
                })?;
                if let Ok(table) = text.parse::<toml::Table>() {
                    cfg.origins.file = toml_keys(&table);
                }
                cfg
            }
            None => Config::default(),
        };
        cfg.apply_env(&env)?;
        cfg.origins.env = ENV_KEYS
            .iter()
            .filter(|(var, _)| env(var).is_some())
            .map(|(_, key)| (*key).to_owned())
            .collect();
        if let Some(d) = data_dir {
            cfg.data_dir = Some(d.to_owned());
        }
        if cfg.data_dir.is_none() {
            cfg.data_dir = Some(default_data_dir());
        }
        let data = cfg.data_dir().to_owned();
        if cfg.store.spool_dir.as_os_str().is_empty() {
            cfg.store.spool_dir = data.join("spool");
        }
        if cfg.store.dead_letter_dir.as_os_str().is_empty() {
            cfg.store.dead_letter_dir = data.join("deadletter");
        }
        cfg.store.sensor_name = cfg.sensor_name.clone();
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("MCP_API_HOST") {
            self.http.host = v;
        }
        if let Some(v) = env("MCP_API_PORT") {
            self.http.port = parse_port("MCP_API_PORT", &v)?;
        }
        if let Some(v) = env("LOG_LEVEL") {
            self.log_level = v.to_lowercase();
        }
        if let Some(v) = env("DATABASE_URL") {
            self.database.url = Some(v);
        }
        if let Some(v) = env("DB_HOST") {
            self.database.host = Some(v);
        }
        if let Some(v) = env("DB_PORT") {
            self.database.port = Some(parse_port("DB_PORT", &v)?);
        }
        if let Some(v) = env("DB_NAME") {
            self.database.name = Some(v);
        }
        if let Some(v) = env("DB_USER") {
            self.database.user = Some(v);
        }
        if let Some(v) = env("DB_PASSWORD") {
            self.database.password = Some(v);
        }
        self.mcp
            .apply_env(env)
            .map_err(|e| bad(env_name(e.field), e.message))?;
        if let Some(v) = env("OLLAMA_BASE_URL") {
            self.ollama.base_url = v;
        }
        if let Some(v) = env("OLLAMA_MODEL") {
            self.ollama.model = v;
        }
        if let Some(v) = env("NETMONITOR_DATA_DIR") {
            self.data_dir = Some(PathBuf::from(v));
        }
        Ok(())
    }

    /// Checks cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.http.host.parse::<std::net::IpAddr>().is_err() && self.http.host != "localhost" {
            return Err(bad(
                "http.host / MCP_API_HOST",
                format!("expected an IP address, got {:?}", self.http.host),
            ));
        }
        self.mcp
            .validate()
            .map_err(|e| bad(&format!("mcp.{}", e.field), e.message))?;
        self.mcp
            .validate_bind(&self.http.host)
            .map_err(|e| bad("mcp.auth_required / MCP_AUTH_REQUIRED", e.message))?;
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| {
            bad(
                "log_level / LOG_LEVEL",
                format!("expected trace|debug|info|warn|error or a filter: {e}"),
            )
        })?;
        self.store.validate().map_err(|m| bad("store", m))?;
        self.sensor.validate().map_err(|m| bad("sensor", m))?;
        self.detection.validate().map_err(|m| bad("detection", m))?;
        self.intel.validate().map_err(|m| bad("intel", m))?;
        self.devices.validate().map_err(|m| bad("devices", m))?;
        self.risk.validate().map_err(|m| bad("risk", m))?;
        self.soar.validate().map_err(|m| bad("soar", m))?;
        self.output
            .eve
            .validate()
            .map_err(|m| bad("output.eve", m))?;
        self.whitelist.validate().map_err(|m| bad("whitelist", m))?;
        if self.database.pool_size == Some(0) {
            return Err(bad("database.pool_size", "expected at least 1"));
        }
        Ok(())
    }

    /// The effective configuration as JSON with secrets (database password and URL) removed,
    /// for `get_config_parameters`.
    pub fn redacted(&self) -> serde_json::Value {
        let db = &self.database;
        serde_json::json!({
            "data_dir": self.data_dir(),
            "log_level": self.log_level,
            "sensor_name": self.sensor_name,
            "http": {"host": self.http.host, "port": self.http.port, "workers": self.http.workers},
            "mcp": {
                "auth_required": self.mcp.auth_required,
                "rate_limit_enabled": self.mcp.rate_limit_enabled,
                "cors_enabled": self.mcp.cors_enabled,
                "cors_origins": self.mcp.cors_origins,
                "max_body_bytes": self.mcp.max_body_bytes,
                "session_idle_secs": self.mcp.session_idle_secs,
                "tool_timeout_secs": self.mcp.tool_timeout_secs,
            },
            "database": {
                "embedded": matches!(self.db_target(), DbTarget::Private { .. }),
                "url": db.url.as_ref().map(|_| "<redacted>"),
                "host": db.host, "port": db.port, "name": db.name, "user": db.user,
                "password": db.password.as_ref().map(|_| "<redacted>"),
                "pool_size": db.pool_size,
            },
            "capture": {"interfaces": self.capture.interfaces, "pcaps": self.capture.pcaps, "promiscuous": self.capture.promiscuous},
            "sensor": {
                "ring_buffer_bytes": self.sensor.pipeline.ring.max_bytes,
                "workers": self.sensor.workers,
            },
            "detection": {
                "kerberos": self.detection.kerberos,
                "tls": {"ja3_blocklist": self.detection.tls.ja3_blocklist},
                "alerts": {"dedup_window_secs": self.detection.alerts.dedup_window_secs},
                "behaviour": self.detection.behaviour,
            },
            "intel": {
                "enabled": self.intel.enabled,
                "download_timeout_secs": self.intel.download_timeout_secs,
                "max_download_bytes": self.intel.max_download_bytes,
                "alert_window_secs": self.intel.alert_window_secs,
                "min_confidence": self.intel.min_confidence,
                "feeds": self.intel.feeds.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            },
            "output": {"eve": {
                "path": self.output.eve.path, "enabled": self.output.eve.enabled,
                "rotate_bytes": self.output.eve.rotate_bytes, "keep": self.output.eve.keep,
            }},
            "store": {
                "batch_size": self.store.batch_size,
                "flush_interval_ms": self.store.flush_interval_ms,
                "queue_capacity": self.store.queue_capacity,
                "spool_dir": self.store.spool_dir,
                "spool_max_bytes": self.store.spool_max_bytes,
                "dead_letter_dir": self.store.dead_letter_dir,
                "retention": self.store.retention,
            },
            "ollama": {"base_url": self.ollama.base_url, "model": self.ollama.model},
        })
    }

    /// Where each key's value comes from: `env`, `file` or `default` (a key under a set section
    /// counts as set by it).
    pub fn sources(&self) -> std::collections::BTreeMap<String, String> {
        let set_by = |keys: &std::collections::BTreeSet<String>, k: &str| {
            keys.iter()
                .any(|s| k == s || k.starts_with(&format!("{s}.")))
        };
        flatten_keys(&self.redacted())
            .into_iter()
            .map(|k| {
                let src = if set_by(&self.origins.env, &k) {
                    "env"
                } else if set_by(&self.origins.file, &k) {
                    "file"
                } else {
                    "default"
                };
                (k, src.to_owned())
            })
            .collect()
    }

    /// Whether `/metrics` asks for a token (`http.metrics_auth`, by default only off loopback).
    pub fn metrics_need_token(&self) -> bool {
        self.http.metrics_auth.unwrap_or(!self.binds_loopback())
    }

    /// True when the listener only accepts local connections.
    pub fn binds_loopback(&self) -> bool {
        self.http.host == "localhost"
            || self
                .http
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The data directory (always set after `load`).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().unwrap_or(Path::new("."))
    }

    /// External database when DATABASE_URL or any DB_* is set, else the private cluster.
    pub fn db_target(&self) -> DbTarget {
        let d = &self.database;
        if let Some(url) = &d.url {
            return DbTarget::External(url.clone());
        }
        if d.host.is_some()
            || d.port.is_some()
            || d.name.is_some()
            || d.user.is_some()
            || d.password.is_some()
        {
            return DbTarget::External(netmonitor_store::db::conninfo_from_parts(
                d.host.as_deref().unwrap_or("localhost"),
                d.port.unwrap_or(5432),
                d.name.as_deref().unwrap_or("netmonitor"),
                d.user.as_deref().unwrap_or("netmonitor"),
                d.password.as_deref(),
            ));
        }
        DbTarget::Private {
            data_dir: self.data_dir().to_owned(),
            fsync: true,
        }
    }
}

fn parse_port(name: &str, v: &str) -> Result<u16, ConfigError> {
    v.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(name, format!("expected a port number 1-65535, got {v:?}")))
}

/// The environment variable behind an MCP setting, for error messages.
fn env_name(field: &str) -> &str {
    match field {
        "auth_required" => "MCP_AUTH_REQUIRED",
        "rate_limit_enabled" => "MCP_RATE_LIMIT_ENABLED",
        "cors_enabled" => "MCP_CORS_ENABLED",
        "cors_origins" => "MCP_CORS_ORIGINS",
        other => other,
    }
}

/// `/var/lib/netmonitor` for root (reachable by the cluster's system user), else the XDG data home.
pub fn default_data_dir() -> PathBuf {
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/netmonitor");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("netmonitor");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/netmonitor"),
        None => PathBuf::from("./netmonitor-data"),
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], toml: Option<&str>) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = toml.map(|t| {
            let p = dir.path().join("c.toml");
            std::fs::write(&p, t).unwrap();
            p
        });
        Config::load_with_env(file.as_deref(), Some(dir.path()), |k| map.get(k).cloned())
    }

    #[test]
    fn environment_wins_over_file() {
        let c = load(&[("MCP_API_PORT", "9001")], Some("[http]\nport = 8100\n")).unwrap();
        assert_eq!(c.http.port, 9001);
        let c = load(&[], Some("[http]\nport = 8100\n")).unwrap();
        assert_eq!(c.http.port, 8100);
        assert_eq!(c.http.host, "127.0.0.1");
    }

    #[test]
    fn http_workers_default_to_half_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let c = load(&[], None).unwrap();
        assert_eq!(c.http.workers, 0);
        assert_eq!(c.http.worker_threads(), (cores / 2).max(1));
        let c = load(&[], Some("[http]\nworkers = 3\n")).unwrap();
        assert_eq!(c.http.worker_threads(), 3);
    }

    #[test]
    fn bad_values_are_named() {
        let e = load(&[("MCP_API_PORT", "eighty")], None).unwrap_err();
        assert_eq!(e.setting, "MCP_API_PORT");
        assert!(e.message.contains("port number"));
        let e = load(&[("MCP_AUTH_REQUIRED", "maybe")], None).unwrap_err();
        assert_eq!(e.setting, "MCP_AUTH_REQUIRED");
        let e = load(&[], Some("[http]\nprot = 1\n")).unwrap_err();
        assert!(e.message.contains("prot"), "{e}");
    }

    #[test]
    fn auth_may_be_off_only_on_loopback() {
        assert!(load(&[("MCP_AUTH_REQUIRED", "false")], None).is_ok());
        let e = load(
            &[("MCP_AUTH_REQUIRED", "false"), ("MCP_API_HOST", "0.0.0.0")],
            None,
        )
        .unwrap_err();
        assert!(e.setting.contains("MCP_AUTH_REQUIRED"));
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/netmonitor.example.toml"
        ))
        .unwrap();
        let c = load(&[], Some(&text)).unwrap();
        assert_eq!(c.sensor_name, "sensor-1");
        assert_eq!(c.store.batch_size, 20000);
    }

    #[test]
    fn redacted_config_hides_secrets() {
        let c = load(
            &[
                ("DB_PASSWORD", "hunter2"),
                ("DATABASE_URL", "postgres://u:hunter2@h/db"),
            ],
            None,
        )
        .unwrap();
        let text = c.redacted().to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn database_selection() {
        let c = load(&[], None).unwrap();
        assert!(matches!(c.db_target(), DbTarget::Private { .. }));
        let c = load(&[("DB_HOST", "db.example"), ("DB_PASSWORD", "p'w")], None).unwrap();
        match c.db_target() {
            DbTarget::External(s) => {
                assert!(s.contains("host='db.example'"));
                assert!(s.contains("password='p\\'w'"));
            }
            other => panic!("{other:?}"),
        }
        let c = load(&[("DATABASE_URL", "postgres://u@h/db")], None).unwrap();
        assert_eq!(
            c.db_target(),
            DbTarget::External("postgres://u@h/db".into())
        );
    }
}
