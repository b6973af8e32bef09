//! Shared fixtures: running the built binary, free ports, tiny HTTP client, shared-folder lookup.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `netmonitor` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netmonitor"))
}

/// A `netmonitor` command with a clean environment apart from what the test sets.
pub fn netmonitor(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(bin());
    for var in [
        "DATABASE_URL",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "MCP_API_PORT",
        "MCP_API_HOST",
    ] {
        c.env_remove(var);
    }
    c.arg("--data-dir").arg(data_dir).env("LOG_LEVEL", "info");
    c
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A data directory the private cluster's system user can reach.
pub fn data_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("nm-it-")
        .tempdir()
        .expect("tempdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// A minimal HTTP/1.1 exchange; returns (status, headers, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_owned(), body.to_owned()))
}

/// Polls until `f` is true or the deadline passes.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A child process stopped when dropped (so a failing test leaves nothing running): asked to
/// stop first, so that a service stops the private PostgreSQL cluster it started, which a
/// SIGKILL would leave running after its data directory is gone; killed if it will not.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end && matches!(self.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `netmonitor run` on a free port and waits for /health.
pub fn start_service(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Running, u16) {
    start_service_with(data_dir, extra_env, &[])
}

/// As [`start_service`], with extra `run` arguments (`--pcap F`, `--interface IF`).
pub fn start_service_with(
    data_dir: &std::path::Path,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> (Running, u16) {
    let port = free_port();
    let mut cmd = netmonitor(data_dir);
    cmd.arg("run")
        .args(args)
        .env("MCP_API_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(data_dir.join("service.log")).expect("log file"),
        ));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = Running(cmd.spawn().expect("spawn netmonitor run"));
    wait_for("the service's /health", Duration::from_secs(60), || {
        http(port, "GET", "/health", &[], "").is_ok_and(|(s, _, _)| s == 200)
    });
    (child, port)
}

/// `../shared` beside the repository, when present; under CI it must be.
pub fn shared_dir() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if p.is_dir() {
        Some(p)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("../shared is missing but CI=true: the oracle and capture tests must run in CI");
    } else {
        eprintln!("skipping: ../shared not found");
        None
    }
}

/// A Streamable HTTP MCP session over raw HTTP (the protocol itself is tested with real SDK
/// clients elsewhere; this is for driving tools from tests).
pub struct McpSession {
    pub port: u16,
    pub token: String,
    pub session: String,
}

impl McpSession {
    /// Initializes a 2025-11-25 session with `token`.
    pub fn open(port: u16, token: &str) -> Self {
        let auth = format!("Bearer {token}");
        let (status, head, body) = http(
            port,
            "POST",
            "/mcp",
            &[("Accept", "application/json, text/event-stream"), ("Content-Type", "application/json"), ("Authorization", &auth)],
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}"#,
        )
        .expect("initialize");
        assert_eq!(status, 200, "{body}");
        let session = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("mcp-session-id:")
                    .then(|| l[15..].trim().to_owned())
            })
            .expect("Mcp-Session-Id");
        let s = McpSession {
            port,
            token: token.to_owned(),
            session,
        };
        s.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    /// Posts one JSON-RPC message; returns (status, parsed body or Null).
    pub fn post(&self, body: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token);
        let (status, _, text) = http(
            self.port,
            "POST",
            "/mcp",
            &[
                ("Accept", "application/json, text/event-stream"),
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
                ("Mcp-Session-Id", &self.session),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
            body,
        )
        .expect("MCP request");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Calls a tool; returns its `result` object.
    pub fn call(&self, tool: &str, args: serde_json::Value) -> serde_json::Value {
        let req = serde_json::json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":tool,"arguments":args}});
        let (status, v) = self.post(&req.to_string());
        assert_eq!(status, 200, "{v}");
        v["result"].clone()
    }
}

/// Creates a token with the CLI and returns its secret.
pub fn create_token(dir: &std::path::Path, name: &str, scope: &str) -> String {
    create_token_with(dir, name, scope, &[])
}

/// Creates a token for a test that polls tools in a loop: rate limits far above what a
/// loaded machine's polling can reach in a minute, an hour or a day.
pub fn create_polling_token(dir: &std::path::Path, name: &str, scope: &str) -> String {
    create_token_with(
        dir,
        name,
        scope,
        &[
            "--rate-limit",
            "100000",
            "--rate-limit-hour",
            "1000000",
            "--rate-limit-day",
            "10000000",
        ],
    )
}

fn create_token_with(dir: &std::path::Path, name: &str, scope: &str, extra: &[&str]) -> String {
    let out = netmonitor(dir)
        .args(["tokens", "create", "--name", name, "--scope", scope])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A child process killed on drop.
pub struct Proc(pub std::process::Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `netmonitor replay --no-db` of `pcap` (with `config`, if any) writing EVE to `eve`; the EVE
/// records.
pub fn replay_eve(
    dir: &std::path::Path,
    config: Option<&std::path::Path>,
    pcap: &std::path::Path,
    eve: &std::path::Path,
) -> Vec<serde_json::Value> {
    let mut cmd = netmonitor(dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd
        .args(["replay", "--no-db", "-q", "--eve"])
        .arg(eve)
        .arg(pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
