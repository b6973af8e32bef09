//! Shared fixtures: in-memory token store and audit sink, a few demo tools/resources/prompts
//! (defined here, never in the crate), a real actix-web server on an ephemeral loopback port,
//! and a raw HTTP/1.1 client with chunked and SSE decoding.

#![allow(dead_code)]

use netmonitor_mcp::{
    hash_token, AuditEntry, AuditSink, McpConfig, McpServer, PromptArgument, PromptDef,
    PromptMessage, Registry, ResourceContents, ResourceDef, ResourceTemplateDef, Scope, TokenInfo,
    TokenStore, ToolAnnotations, ToolDef, ToolError,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const RO: &str = "nmt_readonly_token_for_tests_000000000000000000";
pub const RW: &str = "nmt_readwrite_token_for_tests_00000000000000000";
pub const ADMIN: &str = "nmt_admin_token_for_tests_000000000000000000000";
pub const EXPIRED: &str = "nmt_expired_token_for_tests_0000000000000000000";
pub const REVOKED: &str = "nmt_revoked_token_for_tests_0000000000000000000";
pub const LIMITED: &str = "nmt_limited_token_for_tests_0000000000000000000";

/// Tokens in a map keyed by hash, as the PostgreSQL store keys them.
#[derive(Default)]
pub struct MemTokens {
    pub map: Mutex<HashMap<String, TokenInfo>>,
    pub lookups: Mutex<u64>,
}

impl MemTokens {
    pub fn add(&self, secret: &str, info: TokenInfo) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(hash_token(secret), info);
        }
    }
    pub fn revoke(&self, secret: &str) {
        if let Ok(mut m) = self.map.lock() {
            if let Some(t) = m.get_mut(&hash_token(secret)) {
                t.revoked = true;
            }
        }
    }
    pub fn lookups(&self) -> u64 {
        self.lookups.lock().map(|g| *g).unwrap_or(0)
    }
}

impl TokenStore for MemTokens {
    fn lookup(
        &self,
        token_hash: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<TokenInfo>> + Send>> {
        if let Ok(mut n) = self.lookups.lock() {
            *n += 1;
        }
        let found = self
            .map
            .lock()
            .ok()
            .and_then(|m| m.get(&token_hash).cloned());
        Box::pin(async move { found })
    }

    fn unusable(
        &self,
        ids: Vec<i64>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<i64>> + Send>> {
        let now = netmonitor_common::Timestamp::now().secs();
        let usable: Vec<i64> = self
            .map
            .lock()
            .map(|m| {
                m.values()
                    .filter(|t| t.check(now).is_ok())
                    .map(|t| t.id)
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(async move { ids.into_iter().filter(|i| !usable.contains(i)).collect() })
    }
}

/// Audit rows in memory.
#[derive(Default)]
pub struct MemAudit {
    pub rows: Mutex<Vec<AuditEntry>>,
}

impl MemAudit {
    pub fn rows(&self) -> Vec<AuditEntry> {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemAudit {
    fn record(&self, entry: AuditEntry) {
        if let Ok(mut r) = self.rows.lock() {
            r.push(entry);
        }
    }
}

pub fn token(id: i64, name: &str, scope: Scope) -> TokenInfo {
    TokenInfo {
        id,
        name: name.into(),
        scope,
        rate_per_minute: None,
        rate_per_hour: None,
        rate_per_day: None,
        expires_at: None,
        revoked: false,
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn std_tokens() -> Arc<MemTokens> {
    let t = Arc::new(MemTokens::default());
    t.add(RO, token(1, "ro", Scope::ReadOnly));
    t.add(RW, token(2, "rw", Scope::ReadWrite));
    t.add(ADMIN, token(3, "admin", Scope::Admin));
    let mut e = token(4, "expired", Scope::Admin);
    e.expires_at = Some(now_secs() - 10);
    t.add(EXPIRED, e);
    let mut r = token(5, "revoked", Scope::Admin);
    r.revoked = true;
    t.add(REVOKED, r);
    let mut l = token(6, "limited", Scope::ReadOnly);
    l.rate_per_minute = Some(3);
    l.rate_per_day = Some(1000);
    t.add(LIMITED, l);
    t
}

fn obj(v: Value) -> Value {
    v
}

/// Demo registry: tools at each scope, a slow tool with progress and cancellation, tools that
/// fail or break their output schema, resources, a template, prompts with completions.
pub fn demo_registry() -> Registry {
    let mut r = Registry::new();
    let store: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let ro = |name: &str, title: &str| (name.to_string(), title.to_string());
    let (name, title) = ro("echo", "Echo");
    let _ = r.add_tool(ToolDef {
        name,
        title,
        description: "Echoes text, optionally repeated".into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "maxLength": 100},
                "repeat": {"type": "integer", "minimum": 1, "maximum": 5}
            },
            "required": ["text"],
            "additionalProperties": false
        }),
        output_schema: json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"]
        }),
        annotations: ToolAnnotations::READ_ONLY,
        scope: Scope::ReadOnly,
        handler: Arc::new(|_ctx, args| {
            Box::pin(async move {
                let text = args.get("text").and_then(Value::as_str).unwrap_or("");
                let n = args.get("repeat").and_then(Value::as_u64).unwrap_or(1) as usize;
                Ok(json!({"text": text.repeat(n)}))
            })
        }),
        reuse_for: None,
    });
    let st = store.clone();
    let _ = r.add_tool(ToolDef {
        name: "set_value".into(),
        title: "Set value".into(),
        description: "Stores a key/value pair".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
            "required": ["key", "value"],
            "additionalProperties": false
        }),
        output_schema: json!({"type": "object", "properties": {"stored": {"type": "integer"}}, "required": ["stored"]}),
        annotations: ToolAnnotations {
            read_only: false,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
        scope: Scope::ReadWrite,
        handler: Arc::new(move |_ctx, args| {
            let st = st.clone();
            Box::pin(async move {
                let k = args.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let v = args.get("value").and_then(Value::as_str).unwrap_or("").to_string();
                let n = st
                    .lock()
                    .map(|mut m| {
                        m.insert(k, v);
                        m.len()
                    })
                    .unwrap_or(0);
                Ok(json!({"stored": n}))
            })
        }),
        reuse_for: None,
    });
    let _ = r.add_tool(ToolDef {
        name: "admin_flush".into(),
        title: "Flush".into(),
        description: "Clears the store".into(),
        input_schema: json!({"type": "object", "additionalProperties": false}),
        output_schema: json!({"type": "object", "properties": {"flushed": {"type": "boolean"}}}),
        annotations: ToolAnnotations {
            read_only: false,
            destructive: true,
            idempotent: true,
            open_world: false,
        },
        scope: Scope::Admin,
        handler: Arc::new(move |_ctx, _args| {
            let st = store.clone();
            Box::pin(async move {
                if let Ok(mut m) = st.lock() {
                    m.clear();
                }
                Ok(json!({"flushed": true}))
            })
        }),
        reuse_for: None,
    });
    let _ = r.add_tool(ToolDef {
        name: "slow".into(),
        title: "Slow".into(),
        description: "Counts steps with a delay, reporting progress and logging".into(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
                "delay_ms": {"type": "integer", "minimum": 0, "maximum": 5000}
            },
            "required": ["steps"]
        }),
        output_schema: json!({"type": "object", "properties": {"done": {"type": "integer"}}, "required": ["done"]}),
        annotations: ToolAnnotations::READ_ONLY,
        scope: Scope::ReadOnly,
        handler: Arc::new(|ctx, args| {
            Box::pin(async move {
                let steps = args.get("steps").and_then(Value::as_u64).unwrap_or(1);
                let delay = args.get("delay_ms").and_then(Value::as_u64).unwrap_or(10);
                ctx.log(netmonitor_mcp::LogLevel::Info, json!({"msg": "starting", "steps": steps}));
                ctx.log(netmonitor_mcp::LogLevel::Debug, json!("debug detail"));
                for i in 1..=steps {
                    if ctx.is_cancelled() {
                        return Err(ToolError::Cancelled);
                    }
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    ctx.progress(i as f64, Some(steps as f64), Some("working"));
                }
                Ok(json!({"done": steps}))
            })
        }),
        reuse_for: None,
    });
    let _ = r.add_tool(ToolDef {
        name: "broken_output".into(),
        title: "Broken".into(),
        description: "Returns output that violates its schema".into(),
        input_schema: json!({"type": "object"}),
        output_schema: json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        annotations: ToolAnnotations::READ_ONLY,
        scope: Scope::ReadOnly,
        handler: Arc::new(|_ctx, _args| Box::pin(async { Ok(json!({"n": "not a number"})) })),
        reuse_for: None,
    });
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _ = r.add_tool(ToolDef {
        name: "ticket".into(),
        title: "Ticket".into(),
        description: "Counts its handler runs; results are reused for a minute".into(),
        input_schema: json!({"type": "object", "properties": {"label": {"type": "string"}}}),
        output_schema: json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        annotations: ToolAnnotations::READ_ONLY,
        scope: Scope::ReadOnly,
        handler: Arc::new(move |_ctx, _args| {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Box::pin(async move { Ok(json!({ "n": n })) })
        }),
        reuse_for: Some(Duration::from_secs(60)),
    });
    let _ = r.add_tool(ToolDef {
        name: "fail".into(),
        title: "Fail".into(),
        description: "Always fails".into(),
        input_schema: json!({"type": "object"}),
        output_schema: json!({"type": "object"}),
        annotations: ToolAnnotations::READ_ONLY,
        scope: Scope::ReadOnly,
        handler: Arc::new(|_ctx, _args| {
            Box::pin(async { Err(ToolError::Unavailable("database is down".into())) })
        }),
        reuse_for: None,
    });
    let _ = r.add_resource(ResourceDef {
        uri: "test://status".into(),
        name: "status".into(),
        title: Some("Status".into()),
        description: Some("Test status document".into()),
        mime_type: Some("application/json".into()),
        scope: Scope::ReadOnly,
        handler: Arc::new(|req| {
            Box::pin(async move { Ok(vec![ResourceContents::json(req.uri, &json!({"ok": true}))]) })
        }),
    });
    let _ = r.add_resource(ResourceDef {
        uri: "test://secret".into(),
        name: "secret".into(),
        title: None,
        description: Some("Admin-only document".into()),
        mime_type: Some("text/plain".into()),
        scope: Scope::Admin,
        handler: Arc::new(|req| {
            Box::pin(async move {
                Ok(vec![ResourceContents::Text {
                    uri: req.uri,
                    mime_type: Some("text/plain".into()),
                    text: "s3cr3t".into(),
                }])
            })
        }),
    });
    let mut completions = BTreeMap::new();
    completions.insert(
        "id".to_string(),
        vec![
            "alpha".to_string(),
            "alpine".to_string(),
            "beta".to_string(),
        ],
    );
    let _ = r.add_template(ResourceTemplateDef {
        uri_template: "test://item/{id}{?verbose}".into(),
        name: "item".into(),
        title: Some("Item".into()),
        description: Some("One item".into()),
        mime_type: Some("application/json".into()),
        scope: Scope::ReadOnly,
        completions,
        handler: Arc::new(|req| {
            Box::pin(async move {
                let id = req.vars.get("id").cloned().unwrap_or_default();
                if id == "missing" {
                    return Err(ToolError::NotFound(id));
                }
                let verbose = req.vars.get("verbose").cloned();
                Ok(vec![ResourceContents::json(
                    req.uri,
                    &obj(json!({"id": id, "verbose": verbose})),
                )])
            })
        }),
    });
    let _ = r.add_prompt(PromptDef {
        name: "triage_ip".into(),
        title: Some("Triage an IP".into()),
        description: Some("Investigate an address".into()),
        arguments: vec![
            PromptArgument {
                name: "ip".into(),
                title: None,
                description: Some("Address".into()),
                required: true,
                completions: vec![],
            },
            PromptArgument {
                name: "window".into(),
                title: None,
                description: Some("Time window".into()),
                required: false,
                completions: vec!["1h".into(), "24h".into(), "7d".into()],
            },
        ],
        scope: Scope::ReadOnly,
        handler: Arc::new(|args, _who| {
            Box::pin(async move {
                let ip = args.get("ip").cloned().unwrap_or_default();
                let w = args.get("window").cloned().unwrap_or_else(|| "1h".into());
                Ok(vec![PromptMessage::user_text(format!(
                    "Triage {ip} over the last {w}"
                ))])
            })
        }),
    });
    r
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Arc<McpServer>,
    pub tokens: Arc<MemTokens>,
    pub audit: Arc<MemAudit>,
}

pub fn test_config() -> McpConfig {
    McpConfig {
        sse_keepalive_secs: 1,
        ..McpConfig::default()
    }
}

/// Starts a server on 127.0.0.1 with an ephemeral port in a background actix system.
pub fn start(config: McpConfig) -> TestServer {
    start_with(config, demo_registry(), std_tokens())
}

pub fn start_with(config: McpConfig, registry: Registry, tokens: Arc<MemTokens>) -> TestServer {
    let audit = Arc::new(MemAudit::default());
    let server = Arc::new(McpServer::new(
        config,
        registry,
        tokens.clone(),
        audit.clone(),
    ));
    let srv = server.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sys = actix_rt::System::new();
        sys.block_on(async move {
            srv.start_sweeper();
            let s2 = srv.clone();
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
                let _ = tx.send(a);
            }
            let _ = running.await;
        });
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(a) => a,
        Err(e) => panic!("server did not start: {e}"),
    };
    TestServer {
        addr,
        server,
        tokens,
        audit,
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

fn read_head<R: BufRead>(r: &mut R) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    let _ = r.read_line(&mut status_line);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut r = BufReader::new(raw);
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).unwrap_or(0) == 0 {
            break;
        }
        let n =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let mut buf = vec![0u8; n];
        if r.read_exact(&mut buf).is_err() {
            break;
        }
        out.extend_from_slice(&buf);
        let mut crlf = String::new();
        let _ = r.read_line(&mut crlf);
    }
    out
}

/// Sends raw bytes and reads the whole response (the request should say `Connection: close`).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = s.write_all(request);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(&rest) } else { rest };
    Resp {
        status,
        headers,
        body,
    }
}

pub fn build_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    raw(addr, &build_request(method, path, headers, body))
}

/// One SSE event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// An open streaming response read incrementally.
pub struct Sse {
    r: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    chunked: bool,
    pending: String,
    pub closed: bool,
}

impl Sse {
    pub fn open(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Sse {
        let s = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => panic!("connect: {e}"),
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut w = match s.try_clone() {
            Ok(w) => w,
            Err(e) => panic!("clone: {e}"),
        };
        let _ = w.write_all(&build_request(method, path, headers, body));
        let mut r = BufReader::new(s);
        let deadline = Instant::now() + Duration::from_secs(20);
        let (status, headers) = loop {
            let (st, h) = read_head(&mut r);
            if st != 0 || Instant::now() > deadline {
                break (st, h);
            }
        };
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        Sse {
            r,
            status,
            headers,
            chunked,
            pending: String::new(),
            closed: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn read_more(&mut self) -> bool {
        if self.closed {
            return false;
        }
        if self.chunked {
            let mut size = String::new();
            match self.r.read_line(&mut size) {
                Ok(0) => {
                    self.closed = true;
                    return false;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                self.closed = true;
                return false;
            }
            let mut buf = vec![0u8; n + 2];
            let _ = self
                .r
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(10)));
            let ok = self.r.read_exact(&mut buf).is_ok();
            let _ = self
                .r
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)));
            if !ok {
                self.closed = true;
                return false;
            }
            buf.truncate(n);
            self.pending.push_str(&String::from_utf8_lossy(&buf));
            true
        } else {
            let mut buf = [0u8; 4096];
            match self.r.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    false
                }
                Ok(n) => {
                    self.pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                    true
                }
                Err(_) => false,
            }
        }
    }

    /// Next event (comments skipped), or None after `timeout`/end of stream.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(pos) = self.pending.find("\n\n") {
                let block: String = self.pending[..pos].to_string();
                self.pending.drain(..pos + 2);
                let mut ev = Event::default();
                let mut any = false;
                for line in block.lines() {
                    if line.starts_with(':') {
                        continue;
                    }
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    any = true;
                    match k {
                        "id" => ev.id = Some(v.to_string()),
                        "event" => ev.event = Some(v.to_string()),
                        "data" => {
                            if !ev.data.is_empty() {
                                ev.data.push('\n');
                            }
                            ev.data.push_str(v)
                        }
                        "retry" => ev.retry = v.parse().ok(),
                        _ => {}
                    }
                }
                if any {
                    return Some(ev);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            if !self.read_more() && self.closed {
                return None;
            }
        }
    }

    /// Next event carrying JSON data (skips priming events).
    pub fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self.next_event(left)?;
            if !ev.data.is_empty() {
                return Some(ev.json());
            }
        }
    }
}

/// A minimal Streamable HTTP client over raw HTTP.
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub session: Option<String>,
    pub version: String,
}

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

impl Client {
    pub fn connect(addr: SocketAddr, token: Option<&str>, version: &str) -> Client {
        let mut c = Client {
            addr,
            token: token.map(str::to_string),
            session: None,
            version: version.to_string(),
        };
        let r = c.post_raw(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"}
            }}),
            &[],
        );
        assert_eq!(r.status, 200, "initialize: {}", r.text());
        c.session = r.header("mcp-session-id").map(str::to_string);
        assert!(c.session.is_some());
        let n = c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(n.status, 202);
        c
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Accept".to_string(), ACCEPT_BOTH.to_string()),
        ];
        if let Some(t) = &self.token {
            h.push(("Authorization".into(), format!("Bearer {t}")));
        }
        if let Some(s) = &self.session {
            h.push(("Mcp-Session-Id".into(), s.clone()));
            h.push(("MCP-Protocol-Version".into(), self.version.clone()));
        }
        h
    }

    pub fn post_raw(&self, body: &Value, extra: &[(&str, &str)]) -> Resp {
        let owned = self.headers();
        let mut hs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in extra {
            hs.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            hs.push((k, v));
        }
        http(self.addr, "POST", "/mcp", &hs, body.to_string().as_bytes())
    }

    pub fn post(&self, body: &Value) -> Resp {
        self.post_raw(body, &[])
    }

    pub fn request(&self, id: i64, method: &str, params: Value) -> Value {
        let r = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        r.json()
    }

    pub fn open_sse(&self, method: &str, body: Option<&Value>, extra: &[(&str, &str)]) -> Sse {
        let owned = self.headers();
        let mut hs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in extra {
            hs.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            hs.push((k, v));
        }
        if method == "GET" {
            hs.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        }
        let b = body.map(|b| b.to_string()).unwrap_or_default();
        Sse::open(self.addr, method, "/mcp", &hs, b.as_bytes())
    }
}

/// Waits until `f` holds or the timeout passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
