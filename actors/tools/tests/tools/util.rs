//! Shared fixtures: the real stack (private PostgreSQL, store writer, the engine with capture
//! on real pcaps, MCP server on 127.0.0.1) and a small JSON-RPC client over real HTTP.

#![allow(dead_code)]

use netmonitor_engine::{Engine, EngineOptions};
use netmonitor_mcp::{McpConfig, McpServer, NullAuditSink, Registry, TokenInfo, TokenStore};
use netmonitor_runtime::Topic;
use netmonitor_sensor::service::Source;
use netmonitor_sensor::SensorConfig;
use netmonitor_store::testing::TestDatabase;
use netmonitor_store::{StoreConfig, StoreHandle};
use netmonitor_tools::{build_registry, ToolContext};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the shared oracles live (`shared/` beside the repository).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A pcap from the oracles, or `None` (skip) when `shared/` is absent — a failure under CI.
pub fn oracle(rel: &str) -> Option<PathBuf> {
    let p = shared_dir().join("oracles").join(rel);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{} is missing (CI=true)", p.display());
    }
    eprintln!("skipping: {} not found", p.display());
    None
}

/// Whether a command is installed; a failure under CI when it is not.
pub fn have_tool(name: &str, args: &[&str]) -> bool {
    let ok = std::process::Command::new(name)
        .args(args)
        .output()
        .map(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
        .unwrap_or(false);
    if !ok && std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{name} is required under CI");
    }
    ok
}

/// No tokens: the server runs with auth off on loopback.
pub struct NoTokens;

impl TokenStore for NoTokens {
    fn lookup(
        &self,
        _token_hash: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<TokenInfo>> + Send>> {
        Box::pin(async { None })
    }

    fn unusable(
        &self,
        _ids: Vec<i64>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<i64>> + Send>> {
        Box::pin(async { Vec::new() })
    }
}

/// The running stack.
pub struct Stack {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub captures_dir: PathBuf,
    pub events_delivered: u64,
    pub db: TestDatabase,
}

/// An async pool on `conninfo` (connections open lazily on the runtime that first uses them).
pub fn pool(conninfo: &str, size: usize) -> netmonitor_store::DbPool {
    netmonitor_store::db::query_pool(conninfo, size, 15_000).unwrap_or_else(|e| panic!("pool: {e}"))
}

/// The effective configuration the tools show (as the composition root would pass it).
pub fn test_config() -> Value {
    json!({
        "sensor_name": "tools-test",
        "log_level": "info",
        "store": serde_json::to_value(StoreConfig::default()).unwrap_or(Value::Null),
        "database": {"url": "[redacted]", "pool_size": 4},
        "http": {"host": "127.0.0.1", "port": 0, "workers": 2},
    })
}

/// Waits until the sensor has read every file, flushed every flow and published every event,
/// then drains the engine (detectors, alert stage, store).
async fn wait_sensor_done(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let capture = engine.capture.as_ref().expect("capture started");
    loop {
        if let Some(s) = capture.status().await {
            let finished = s.sources.iter().all(|src| src.state == "finished");
            let produced: u64 =
                s.application.events.values().sum::<u64>() + s.application.internal_events;
            if finished
                && s.pipeline.flows.active == 0
                && produced > 0
                && engine.bus.published(Topic::Events) == produced
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "sensor did not finish the pcaps in time"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    engine.drain().await;
}

/// Starts PostgreSQL, the store writer, the engine with capture on `pcaps` and the MCP server;
/// returns once every event is in the database and the server listens.
pub fn start(pcaps: Vec<PathBuf>) -> Stack {
    let db = match TestDatabase::start() {
        Ok(d) => d,
        Err(e) => panic!("test database: {e}"),
    };
    let conninfo = db.conninfo();
    let captures_dir = db.dir().join("captures");
    let spool_dir = db.dir().join("spool");
    let cap = captures_dir.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sys = actix_rt::System::new();
        sys.block_on(async move {
            let store = match StoreHandle::spawn(
                conninfo.clone(),
                StoreConfig {
                    spool_dir,
                    flush_interval_ms: 50,
                    ..StoreConfig::default()
                },
            ) {
                Ok(s) => Arc::new(s),
                Err(e) => panic!("store: {e}"),
            };
            let mut engine = Engine::start(EngineOptions {
                sensor: "test-sensor".into(),
                detection: Default::default(),
                eve: None,
                store: Some(store.clone()),
                inventory: true,
                intel: None,
                devices: Some(netmonitor_engine::DevicesOptions {
                    config: Default::default(),
                    database: Some(conninfo.clone()),
                }),
                risk: Some(netmonitor_engine::RiskOptions {
                    config: Default::default(),
                    database: Some(conninfo.clone()),
                }),
                soar: Some(netmonitor_engine::SoarOptions {
                    config: Default::default(),
                    database: conninfo.clone(),
                }),
            })
            .unwrap_or_else(|e| panic!("engine: {e}"));
            let sources = pcaps.into_iter().map(Source::File).collect();
            if let Err(e) = engine.start_capture(&SensorConfig::default(), sources) {
                panic!("sensor: {e}");
            }
            wait_sensor_done(&engine).await;
            let delivered = engine.bus.published(Topic::Events);
            let ctx = Arc::new(ToolContext {
                pool: pool(&conninfo, 4),
                engine: engine.handles(),
                captures_dir: cap,
                config: test_config(),
                started: Instant::now(),
                whitelist: Default::default(),
                config_sources: Default::default(),
                settings: std::sync::Arc::new(netmonitor_tools::NoSettings),
                live_values: Default::default(),
            });
            let registry = match build_registry(ctx) {
                Ok(r) => r,
                Err(e) => panic!("registry: {e}"),
            };
            let config = McpConfig {
                auth_required: false,
                ..McpConfig::default()
            };
            let server = Arc::new(McpServer::new(
                config,
                registry.clone(),
                Arc::new(NoTokens),
                Arc::new(NullAuditSink),
            ));
            let s2 = server.clone();
            let http = actix_web::HttpServer::new(move || {
                let s3 = s2.clone();
                actix_web::App::new().configure(move |c| s3.configure(c))
            })
            .workers(2)
            .bind(("127.0.0.1", 0));
            let http = match http {
                Ok(h) => h,
                Err(e) => panic!("bind: {e}"),
            };
            let addr = http.addrs().first().copied();
            let running = http.run();
            if let Some(a) = addr {
                let _ = tx.send((a, registry, delivered));
            }
            let _ = running.await;
            engine.stop().await;
            drop(store);
        });
    });
    let (addr, registry, events_delivered) = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(e) => panic!("stack did not start: {e}"),
    };
    Stack {
        addr,
        registry,
        captures_dir,
        events_delivered,
        db,
    }
}

/// A JSON-RPC client over HTTP with one MCP session.
pub struct Client {
    base: String,
    session: String,
    next_id: AtomicU64,
    agent: ureq::Agent,
    registry: Registry,
}

pub const VERSION: &str = "2025-06-18";

impl Client {
    /// Initializes a session.
    pub fn connect(stack: &Stack) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let base = format!("http://{}/mcp", stack.addr);
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "tools-test", "version": "1"}}});
        let resp = match agent
            .post(&base)
            .set("Content-Type", "application/json")
            .set("Accept", "application/json, text/event-stream")
            .send_string(&body.to_string())
        {
            Ok(r) => r,
            Err(e) => panic!("initialize: {e}"),
        };
        let session = resp.header("mcp-session-id").unwrap_or_default().to_owned();
        assert!(!session.is_empty(), "no session id");
        let c = Client {
            base,
            session,
            next_id: AtomicU64::new(1),
            agent,
            registry: stack.registry.clone(),
        };
        let (status, _) = c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(status, 202);
        c
    }

    /// Posts one message; returns the status and the body text.
    pub fn post(&self, body: &Value) -> (u16, String) {
        let r = self
            .agent
            .post(&self.base)
            .set("Content-Type", "application/json")
            .set("Accept", "application/json, text/event-stream")
            .set("Mcp-Session-Id", &self.session)
            .set("MCP-Protocol-Version", VERSION)
            .send_string(&body.to_string());
        match r {
            Ok(resp) => {
                let status = resp.status();
                (status, resp.into_string().unwrap_or_default())
            }
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
            Err(e) => panic!("HTTP: {e}"),
        }
    }

    /// A request's `result` (panics on a JSON-RPC error).
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (status, text) =
            self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        assert_eq!(status, 200, "{method}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(v.get("error").is_none(), "{method}: {v}");
        v.get("result").cloned().unwrap_or(Value::Null)
    }

    /// Calls a tool that must succeed; checks its result against the declared output schema
    /// and returns `structuredContent`.
    pub fn call(&self, name: &str, args: Value) -> Value {
        let r = self.rpc("tools/call", json!({"name": name, "arguments": args}));
        assert_eq!(r["isError"], json!(false), "{name}: {}", r["content"]);
        let sc = r["structuredContent"].clone();
        let Some(def) = self.registry.tool(name) else {
            panic!("{name} is not registered")
        };
        if let Err(e) = netmonitor_mcp::schema::validate(&def.output_schema, &sc) {
            panic!("{name}: result does not match its output schema: {e}");
        }
        let text = r["content"][0]["text"].as_str().unwrap_or("");
        assert_eq!(serde_json::from_str::<Value>(text).ok(), Some(sc.clone()));
        sc
    }

    /// Calls a tool that must fail; returns the error text.
    pub fn call_err(&self, name: &str, args: Value) -> String {
        let r = self.rpc("tools/call", json!({"name": name, "arguments": args}));
        assert_eq!(r["isError"], json!(true), "{name} should fail: {r}");
        r["content"][0]["text"].as_str().unwrap_or("").to_owned()
    }

    /// Calls a tool with a progress token; returns the SSE messages (notifications, then the
    /// response).
    pub fn call_with_progress(&self, name: &str, args: Value) -> Vec<Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (status, text) = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": args, "_meta": {"progressToken": format!("p{id}")}}}));
        assert_eq!(status, 200, "{text}");
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .collect()
    }
}

/// Counts packets in a capture file with `tcpdump -r` (None when it cannot read it).
pub fn tcpdump_count(path: &std::path::Path) -> Option<usize> {
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).lines().count())
}
