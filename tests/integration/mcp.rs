//! The MCP server inside `netmonitor run`: hashed tokens created with the CLI authenticate,
//! missing or wrong tokens get 401, scopes filter tools/list, and every request is audited in
//! PostgreSQL.

use crate::util::*;
use diesel::prelude::*;
use std::time::Duration;

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn create_token(dir: &std::path::Path, name: &str, scope: &str) -> String {
    let out = netmonitor(dir)
        .args(["tokens", "create", "--name", name, "--scope", scope])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

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
