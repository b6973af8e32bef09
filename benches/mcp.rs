//! MCP throughput and latency: 64 concurrent keep-alive clients calling `tools/call` on the real
//! `netmonitor run` (auth, rate limiting and auditing all on), for in-memory tools
//! (`get_sensor_status`, whose result is reused for its 50 ms snapshot period, and
//! `get_packet_buffer_summary`, whose handler runs on every call) and a
//! database-backed one (`get_recent_threats`), against plain
//! `GET /health` with the same clients in the same run as the reference.
//!
//! Run: `cargo bench --bench mcp` (CLIENTS=N, SECONDS=N, CONFIG=file for the service,
//! TOOLS=a,b to pick the tools).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Service(Child);
impl Drop for Service {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One client's keep-alive connection, reading responses into one reused buffer: the client
/// shares the two cores with the server, so it must cost as little as possible and the same for
/// every endpoint (no per-request zeroing, allocation or scan of the body).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Reads more bytes after the first `filled`; fails on end of stream or a full buffer.
    fn fill(&mut self, filled: usize) -> std::io::Result<usize> {
        let n = self.stream.read(&mut self.buf[filled..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(filled + n)
    }

    /// Sends `req` and reads one response; returns (status, body).
    fn exchange(&mut self, req: &[u8]) -> std::io::Result<(u16, &[u8])> {
        self.stream.write_all(req)?;
        let mut filled = self.fill(0)?;
        let head_end = loop {
            if let Some(i) = find(&self.buf[..filled], b"\r\n\r\n") {
                break i + 4;
            }
            filled = self.fill(filled)?;
        };
        let head = &self.buf[..head_end];
        let status = head
            .get(9..12)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let len = head
            .split(|b| *b == b'\n')
            .find_map(|line| {
                let (name, value) = line.split_at(line.iter().position(|b| *b == b':')?);
                name.eq_ignore_ascii_case(b"content-length").then(|| {
                    std::str::from_utf8(&value[1..])
                        .ok()
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })?
            })
            .unwrap_or(0);
        if head_end + len > self.buf.len() {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        while filled < head_end + len {
            filled = self.fill(filled)?;
        }
        Ok((status, &self.buf[head_end..head_end + len]))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Vec<u8> {
    let mut s = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    s.into_bytes()
}

struct Outcome {
    requests: u64,
    errors: u64,
    p50: Duration,
    p99: Duration,
    elapsed: Duration,
}

fn load(port: u16, clients: u64, secs: u64, req: Vec<u8>, ok: fn(u16, &[u8]) -> bool) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let req = Arc::new(req);
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, req) = (stop.clone(), req.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(100_000);
                let mut errors = 0u64;
                let mut conn = Conn::open(port).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match conn.exchange(&req) {
                        Ok((status, body)) if ok(status, body) => lat.push(t.elapsed()),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            conn = Conn::open(port).unwrap();
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: usize| {
        all.get(all.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or_default()
    };
    Outcome {
        requests: all.len() as u64,
        errors,
        p50: pct(50),
        p99: pct(99),
        elapsed,
    }
}

fn main() {
    let clients = env_or("CLIENTS", 64);
    let secs = env_or("SECONDS", 5);
    let dir = tempfile::Builder::new()
        .prefix("nm-bench-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = env!("CARGO_BIN_EXE_netmonitor");
    let mut service = Command::new(bin);
    if let Some(config) = std::env::var_os("CONFIG").filter(|c| !c.is_empty()) {
        service.arg("--config").arg(config);
    }
    let _svc = Service(
        service
            .arg("--data-dir")
            .arg(dir.path())
            .arg("run")
            .env("MCP_API_PORT", port.to_string())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let health = request(port, "GET", "/health", &[], "");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Conn::open(port)
        .and_then(|mut c| c.exchange(&health).map(|r| r.0))
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "service did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "tokens",
            "create",
            "--name",
            "bench",
            "--scope",
            "admin",
            "--rate-limit",
            "1000000000",
            "--rate-limit-hour",
            "1000000000",
            "--rate-limit-day",
            "1000000000",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut base = vec![
        ("Authorization".to_owned(), format!("Bearer {token}")),
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (
            "Accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ),
    ];
    let init = request(
        port,
        "POST",
        "/mcp",
        &base,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&init).unwrap();
    let mut head = vec![0u8; 4096];
    let n = s.read(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head[..n]).to_string();
    let sid = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("mcp-session-id:")
                .then(|| l[15..].trim().to_owned())
        })
        .expect("session id");
    base.push(("Mcp-Session-Id".to_owned(), sid));
    base.push(("MCP-Protocol-Version".to_owned(), "2025-11-25".to_owned()));

    let ok_health: fn(u16, &[u8]) -> bool = |s, _| s == 200;
    // a successful tool result for this request: the server writes `jsonrpc`, `id` and `result`
    // first and ends a tool result with `isError`, so a prefix and a suffix test tell success
    // from a JSON-RPC error or an isError result without scanning the body (the client shares
    // the two cores with the server and must cost the same for every endpoint)
    let ok_tool: fn(u16, &[u8]) -> bool = |s, b| {
        s == 200
            && b.starts_with(br#"{"jsonrpc":"2.0","id":7,"result":{"#)
            && b.ends_with(br#""isError":false}}"#)
    };
    println!(
        "mcp bench: {clients} keep-alive clients, {secs} s each, auth + rate limiting + audit on"
    );
    let reference = load(port, clients, secs, health, ok_health);
    let ref_rps = reference.requests as f64 / reference.elapsed.as_secs_f64();
    println!(
        "  GET /health (reference)          {:>8.0} req/s  p50 {:>8.2?}  p99 {:>8.2?}  errors {}",
        ref_rps, reference.p50, reference.p99, reference.errors
    );
    let tools = std::env::var("TOOLS").unwrap_or_else(|_| {
        "get_sensor_status,get_packet_buffer_summary,get_recent_threats".into()
    });
    for tool in tools.split(',') {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
        );
        let o = load(
            port,
            clients,
            secs,
            request(port, "POST", "/mcp", &base, &body),
            ok_tool,
        );
        let rps = o.requests as f64 / o.elapsed.as_secs_f64();
        println!(
            "  tools/call {tool:<22} {:>8.0} req/s  p50 {:>8.2?}  p99 {:>8.2?}  errors {}  ratio vs /health {:.2}",
            rps, o.p50, o.p99, o.errors, rps / ref_rps
        );
    }
}
