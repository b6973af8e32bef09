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

/// A child process killed when dropped (so a failing test leaves nothing running).
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `netmonitor run` on a free port and waits for /health.
pub fn start_service(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Running, u16) {
    let port = free_port();
    let mut cmd = netmonitor(data_dir);
    cmd.arg("run")
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
