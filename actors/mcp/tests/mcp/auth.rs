//! The authorization matrix: scopes × read/write/admin tools, missing/invalid/expired/revoked
//! tokens (401 + WWW-Authenticate), rate limits (429 + Retry-After + X-RateLimit-*), session
//! binding to its token, the positive token cache, and auth switched off.

use crate::util::*;
use netmonitor_mcp::McpConfig;
use serde_json::{json, Value};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn init_with(ts: &TestServer, auth: Option<&str>) -> Resp {
    let mut hs = vec![
        ("Content-Type", "application/json"),
        ("Accept", ACCEPT_BOTH),
    ];
    if let Some(a) = auth {
        hs.push(("Authorization", a));
    }
    http(ts.addr, "POST", "/mcp", &hs, INIT.as_bytes())
}

#[test]
fn unauthenticated_requests_get_401_with_www_authenticate() {
    let ts = start(test_config());
    let cases = [
        (None, false),
        (Some("Bearer nmt_not_a_real_token".to_string()), true),
        (Some(format!("Bearer {EXPIRED}")), true),
        (Some(format!("Bearer {REVOKED}")), true),
        (Some(format!("Basic {ADMIN}")), true),
        (Some("Bearer".to_string()), true),
    ];
    for (auth, has_error) in cases {
        let r = init_with(&ts, auth.as_deref());
        assert_eq!(r.status, 401, "{auth:?}");
        let www = r.header("www-authenticate").unwrap_or("");
        assert!(www.starts_with("Bearer"), "{www}");
        assert_eq!(www.contains("error=\"invalid_token\""), has_error, "{www}");
        assert_eq!(r.json()["id"], Value::Null);
    }
    // the token is never accepted from the query string
    let r = http(
        ts.addr,
        "POST",
        &format!("/mcp?access_token={ADMIN}"),
        &[("Content-Type", "application/json")],
        INIT.as_bytes(),
    );
    assert_eq!(r.status, 401);
    // GET/DELETE and the legacy endpoints are guarded too
    assert_eq!(
        http(
            ts.addr,
            "GET",
            "/mcp",
            &[("Accept", "text/event-stream")],
            b""
        )
        .status,
        401
    );
    assert_eq!(http(ts.addr, "DELETE", "/mcp", &[], b"").status, 401);
    assert_eq!(
        http(
            ts.addr,
            "POST",
            "/messages?sessionId=x",
            &[("Content-Type", "application/json")],
            b"{}"
        )
        .status,
        401
    );
    let rows = ts.audit.rows();
    assert!(rows.iter().filter(|r| r.status == "unauthorized").count() >= 9);
}

#[test]
fn scope_matrix() {
    let ts = start(test_config());
    let calls = [
        ("echo", json!({"text": "x"})),
        ("set_value", json!({"key": "k", "value": "v"})),
        ("admin_flush", json!({})),
    ];
    // (token, expected visible tools among the three, expected allowed calls)
    let matrix = [
        (RO, [true, false, false]),
        (RW, [true, true, false]),
        (ADMIN, [true, true, true]),
    ];
    for (tok, allowed) in matrix {
        let c = Client::connect(ts.addr, Some(tok), "2025-11-25");
        let v = c.request(1, "tools/list", json!({}));
        let names: Vec<String> = v["result"]["tools"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for ((tool, args), ok) in calls.iter().zip(allowed) {
            assert_eq!(
                names.contains(&tool.to_string()),
                ok,
                "{tool} listed for {tok}"
            );
            let v = c.request(2, "tools/call", json!({"name": tool, "arguments": args}));
            let res = &v["result"];
            assert_eq!(res["isError"], json!(!ok), "{tool} with {tok}: {v}");
            if !ok {
                let text = res["content"][0]["text"].as_str().unwrap_or("");
                assert!(
                    text.contains("Permission denied") && text.contains(tool),
                    "{text}"
                );
            }
        }
    }
    let rows = ts.audit.rows();
    let denied: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.status == "denied")
        .map(|r| (r.token_name.clone(), r.tool.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        denied,
        [
            ("ro".to_string(), "set_value".to_string()),
            ("ro".to_string(), "admin_flush".to_string()),
            ("rw".to_string(), "admin_flush".to_string())
        ]
    );
}

#[test]
fn rate_limit_429() {
    let ts = start(test_config());
    let auth = format!("Bearer {LIMITED}");
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let r = init_with(&ts, Some(&auth));
        statuses.push(r.status);
        last = Some(r);
    }
    // the minute window may roll over during the loop; at least one 429 must appear
    assert!(statuses.iter().filter(|s| **s == 200).count() >= 3);
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = last.unwrap_or_else(|| Resp {
        status: 0,
        headers: vec![],
        body: vec![],
    });
    if r.status == 429 {
        let retry: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        let reset: i64 = r
            .header("x-ratelimit-reset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(reset > now_secs() - 1 && reset <= now_secs() + 61);
        assert_eq!(r.json()["error"]["code"], json!(-32000));
    }
    assert!(ts
        .audit
        .rows()
        .iter()
        .any(|r| r.status == "rate_limited" && r.http_status == 429));
    // other tokens are unaffected; successful responses carry the headers of limited tokens
    assert_eq!(init_with(&ts, Some(&format!("Bearer {RO}"))).status, 200);
    // rate limiting can be switched off
    let ts2 = start(McpConfig {
        rate_limit_enabled: false,
        ..test_config()
    });
    for _ in 0..6 {
        assert_eq!(init_with(&ts2, Some(&auth)).status, 200);
    }
}

#[test]
fn sessions_are_bound_to_their_token() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-06-18");
    let mut other = Client::connect(ts.addr, Some(ADMIN), "2025-06-18");
    other.session = c.session.clone();
    let r = other.post(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
    assert_eq!(r.status, 404);
}

#[test]
fn token_cache_and_revocation() {
    // cached: revocation becomes visible after the TTL (here: 0 s, immediately)
    let tokens = std_tokens();
    let ts = start_with(
        McpConfig {
            token_cache_secs: 0,
            ..test_config()
        },
        demo_registry(),
        tokens.clone(),
    );
    let c = Client::connect(ts.addr, Some(RW), "2025-06-18");
    assert_eq!(
        c.post(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .status,
        200
    );
    tokens.revoke(RW);
    assert_eq!(
        c.post(&json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
            .status,
        401
    );

    // default TTL: one store lookup serves many requests
    let tokens = std_tokens();
    let ts = start_with(test_config(), demo_registry(), tokens.clone());
    let c = Client::connect(ts.addr, Some(RO), "2025-06-18");
    for i in 0..20 {
        assert_eq!(
            c.post(&json!({"jsonrpc":"2.0","id":i,"method":"ping"}))
                .status,
            200
        );
    }
    assert_eq!(tokens.lookups(), 1);
    tokens.revoke(RO);
    ts.server.forget_cached_tokens();
    assert_eq!(
        c.post(&json!({"jsonrpc":"2.0","id":99,"method":"ping"}))
            .status,
        401
    );
}

#[test]
fn auth_disabled_runs_as_admin() {
    let ts = start(McpConfig {
        auth_required: false,
        ..test_config()
    });
    assert!(McpConfig {
        auth_required: false,
        ..McpConfig::default()
    }
    .validate_bind("0.0.0.0")
    .is_err());
    let c = Client::connect(ts.addr, None, "2025-06-18");
    // ...but never through a proxy, which would expose the open endpoint
    let proxied = c.post_raw(
        &json!({"jsonrpc":"2.0","id":2,"method":"ping"}),
        &[("X-Forwarded-For", "198.51.100.4")],
    );
    assert_eq!(proxied.status, 403);
    let v = c.request(1, "tools/call", json!({"name": "admin_flush"}));
    assert_eq!(v["result"]["isError"], json!(false));
    let rows = ts.audit.rows();
    assert!(rows
        .iter()
        .any(|r| r.token_name == "anonymous" && r.tool.as_deref() == Some("admin_flush")));
}
