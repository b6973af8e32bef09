//! The MCP server inside `netmonitor run`: hashed tokens created with the CLI authenticate,
//! missing or wrong tokens get 401, scopes filter tools/list, and every request is audited in
//! PostgreSQL.

use crate::util::*;
use diesel::prelude::*;
use std::time::Duration;

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn initialize(port: u16, token: &str) -> (u16, String, String) {
    let auth = format!("Bearer {token}");
    http(
        port,
        "POST",
        "/mcp",
        &[ACCEPT, JSON, ("Authorization", &auth)],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}"#,
    )
    .unwrap()
}

fn session_id(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("mcp-session-id:")
                .then(|| l[15..].trim().to_owned())
        })
        .expect("Mcp-Session-Id header")
}

#[test]
fn tokens_authenticate_and_every_request_is_audited() {
    let dir = data_dir();
    let (_child, port) = start_service(dir.path(), &[]);
    let token = create_token(dir.path(), "analyst", "read_only");

    let (status, head, _) = http(
        port,
        "POST",
        "/mcp",
        &[ACCEPT, JSON],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .unwrap();
    assert_eq!(status, 401);
    assert!(head.to_lowercase().contains("www-authenticate: bearer"));
    let (status, _, _) = initialize(port, "nmt_not-a-real-token");
    assert_eq!(status, 401);

    let (status, head, body) = initialize(port, &token);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"protocolVersion\":\"2025-11-25\""),
        "{body}"
    );
    let sid = session_id(&head);
    let auth = format!("Bearer {token}");
    let hdrs = [
        ACCEPT,
        JSON,
        ("Authorization", auth.as_str()),
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (status, _, body) = http(
        port,
        "POST",
        "/mcp",
        &hdrs,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .unwrap();
    assert_eq!((status, body.as_str()), (202, ""));
    let (status, _, body) = http(
        port,
        "POST",
        "/mcp",
        &hdrs,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["result"]["tools"].is_array());

    // The audit rows reach PostgreSQL in batches, off the request path.
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=netmonitor",
        dir.path().join("run").display()
    );
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut rows = 0;
    wait_for(
        "audit rows in api_token_usage",
        Duration::from_secs(10),
        || {
            let mut conn = PgConnection::establish(&conninfo).unwrap();
            rows = diesel::sql_query(
                "SELECT count(*) AS n FROM api_token_usage WHERE token_name = 'analyst'",
            )
            .get_result::<N>(&mut conn)
            .unwrap()
            .n;
            rows >= 3
        },
    );
    let mut conn = PgConnection::establish(&conninfo).unwrap();
    let unauth = diesel::sql_query(
        "SELECT count(*) AS n FROM api_token_usage WHERE status = 'unauthorized'",
    )
    .get_result::<N>(&mut conn)
    .unwrap()
    .n;
    assert!(unauth >= 2, "rejected requests are audited too ({unauth})");
    let stored_plain = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM api_tokens WHERE token_hash = '{token}'"
    ))
    .get_result::<N>(&mut conn)
    .unwrap()
    .n;
    assert_eq!(stored_plain, 0, "only the hash of a token is stored");
}

/// The official MCP Python SDK drives the real service over every HTTP transport.
#[test]
fn official_python_sdk_against_the_service() {
    let importable = std::process::Command::new("python3")
        .args(["-c", "import mcp, httpx2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI installs the mcp Python SDK"
        );
        eprintln!("skipping: python3 cannot import the `mcp` SDK (pip install mcp)");
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let pcap = shared.join("oracles/zeek/testing/btest/Traces/krb/kinit.pcap");
    let dir = data_dir();
    let (_child, port) = start_service_with(dir.path(), &[], &["--pcap", pcap.to_str().unwrap()]);
    let read = create_token(dir.path(), "assistant", "read_only");
    let write = create_token(dir.path(), "analyst", "read_write");
    // Let the pcap's events reach the store and the inventory.
    let probe = McpSession::open(port, &read);
    wait_for(
        "kinit.pcap to be processed",
        Duration::from_secs(30),
        || {
            let s = probe.call("get_sensor_status", serde_json::json!({}));
            s["structuredContent"]["sources"][0]["state"] == "finished"
        },
    );
    std::thread::sleep(Duration::from_millis(700));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/python/soc_client.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("NM_URL", format!("http://127.0.0.1:{port}"))
        .env("NM_READ_TOKEN", &read)
        .env("NM_WRITE_TOKEN", &write)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Seed 000's troubleshooting line, exactly: no Accept, no session, no protocol version.
    let bearer = format!("Bearer {read}");
    let (status, _, body) = http(
        port,
        "POST",
        "/mcp",
        &[("Authorization", bearer.as_str()), JSON],
        r#"{"jsonrpc":"2.0","method":"tools/list","id":1}"#,
    )
    .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "get_sensor_status")),
        "{body}"
    );
    for scenario in [
        "streamable-handshake",
        "streamable-handshake-resources-prompts",
        "streamable-discover",
        "legacy-sse",
        "read-write",
    ] {
        assert!(
            stdout.contains(&format!("OK {scenario}\n")),
            "scenario {scenario} missing:\n{stdout}"
        );
    }
}

/// Clients that launch the binary talk MCP over stdin/stdout; closing stdin stops the service.
#[test]
fn stdio_transport_for_clients_that_launch_the_binary() {
    use std::io::{BufRead, BufReader, Write};
    let dir = data_dir();
    let token = {
        // Migrate and create a token before the service starts.
        let out = netmonitor(dir.path()).arg("migrate").output().unwrap();
        assert!(out.status.success());
        create_token(dir.path(), "desktop", "read_only")
    };
    let mut child = Running(
        netmonitor(dir.path())
            .args(["run", "--stdio"])
            .env("MCP_API_PORT", free_port().to_string())
            .env("NETMONITOR_TOKEN", &token)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut ask = |msg: &str| -> Option<serde_json::Value> {
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
        if !msg.contains("\"id\"") {
            return None;
        }
        let line = lines.next().expect("a reply line").unwrap();
        Some(serde_json::from_str(&line).unwrap())
    };
    let init = ask(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"stdio-test","version":"1"}}}"#).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    ask(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let list = ask(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"get_sensor_status"), "{names:?}");
    assert!(
        !names.contains(&"set_config_parameter"),
        "a read_only token sees no admin tool"
    );
    let status = ask(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_sensor_status","arguments":{}}}"#).unwrap();
    assert_eq!(
        status["result"]["structuredContent"]["running"], true,
        "{status}"
    );
    drop(stdin);
    let mut exited = None;
    wait_for(
        "the service to stop when stdin closes",
        Duration::from_secs(30),
        || {
            exited = child.0.try_wait().unwrap();
            exited.is_some()
        },
    );
    assert!(exited.unwrap().success());
}

/// What a running service enforces against careless or hostile callers: a token revoked by
/// `tokens revoke` in another process stops working within a second or two, its open stream
/// included; `/metrics` can require a token; whitelisting all of IPv4 needs admin; the token's
/// last use is recorded.
#[test]
fn revocation_metrics_auth_and_broad_whitelists() {
    let dir = data_dir();
    let cfg = dir.path().join("netmonitor.toml");
    std::fs::write(&cfg, "[http]\nmetrics_auth = true\n").unwrap();
    let cfg_arg = cfg.to_string_lossy().into_owned();
    let (_child, port) = start_service_with(dir.path(), &[], &["--config", &cfg_arg]);
    let writer = create_token(dir.path(), "writer", "read_write");
    let admin = create_token(dir.path(), "boss", "admin");

    let (status, head, _) = http(port, "GET", "/metrics", &[], "").unwrap();
    assert_eq!(status, 401);
    assert!(head.to_lowercase().contains("www-authenticate: bearer"));
    let auth = format!("Bearer {writer}");
    let (status, _, body) = http(port, "GET", "/metrics", &[("Authorization", &auth)], "").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("netmonitor_http_requests_total"));

    let w = McpSession::open(port, &writer);
    let r = w.call(
        "add_whitelist_entry",
        serde_json::json!({"ip_cidr": "0.0.0.0/0"}),
    );
    assert_eq!(r["isError"], true, "{r}");
    assert!(r["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Permission denied"));
    let r = w.call(
        "add_whitelist_entry",
        serde_json::json!({"ip_cidr": "10.1.0.0/16"}),
    );
    assert_eq!(r["isError"], false, "{r}");
    let a = McpSession::open(port, &admin);
    let r = a.call(
        "add_whitelist_entry",
        serde_json::json!({"ip_cidr": "0.0.0.0/0"}),
    );
    assert_eq!(r["isError"], false, "{r}");

    // the writer's last use reaches api_tokens (batched with the audit rows)
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=netmonitor",
        dir.path().join("run").display()
    );
    wait_for("last_used_at", Duration::from_secs(10), || {
        let mut conn = PgConnection::establish(&conninfo).unwrap();
        use netmonitor_store::schema::api_tokens::dsl::*;
        api_tokens
            .filter(name.eq("writer"))
            .select(last_used_at)
            .first::<Option<chrono::DateTime<chrono::Utc>>>(&mut conn)
            .unwrap()
            .is_some()
    });

    // a GET stream of the writer's session, then `tokens revoke` from another process
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /mcp HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer {writer}\r\nMcp-Session-Id: {}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n",
        w.session
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap_or(0);
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let list = netmonitor(dir.path())
        .args(["tokens", "list"])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&list.stdout)
        .lines()
        .find(|l| l.contains("writer"))
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap();
    let out = netmonitor(dir.path())
        .args(["tokens", "revoke", "--token-id", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let revoked = std::time::Instant::now();
    let mut closed = false;
    while revoked.elapsed() < Duration::from_secs(5) {
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) if String::from_utf8_lossy(&buf[..n]).contains("0\r\n\r\n") => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "the revoked token's stream was closed");
    assert!(
        revoked.elapsed() < Duration::from_secs(3),
        "{:?}",
        revoked.elapsed()
    );
    let (status, _) = w.post(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
    assert_eq!(status, 401);
}
