//! Raw-HTTP tests of the Streamable HTTP transport: every status code, sessions, versions,
//! batches, CORS, and the JSON-RPC error codes.

use crate::util::*;
use netmonitor_mcp::McpConfig;
use serde_json::{json, Value};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn base_headers<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("Content-Type", "application/json"),
        ("Accept", ACCEPT_BOTH),
        (
            "Authorization",
            "Bearer nmt_admin_token_for_tests_000000000000000000000",
        ),
    ]
}

#[test]
fn initialize_negotiates_versions_and_issues_sessions() {
    let ts = start(test_config());
    for (asked, got) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":asked,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
        let r = http(
            ts.addr,
            "POST",
            "/mcp",
            &base_headers(),
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["result"]["protocolVersion"], json!(got));
        let caps = &v["result"]["capabilities"];
        assert_eq!(caps["tools"]["listChanged"], json!(true));
        assert_eq!(caps["resources"]["subscribe"], json!(true));
        assert!(caps["logging"].is_object() && caps["completions"].is_object());
        assert_eq!(v["result"]["serverInfo"]["name"], json!("netmonitor"));
        let sid = r.header("mcp-session-id").unwrap_or_default();
        assert_eq!(sid.len(), 64);
        assert!(sid.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
    assert!(ts.server.session_count() >= 5);
}

/// The seed's troubleshooting line: `curl -X POST -H "Authorization: Bearer $T" -H
/// "Content-Type: application/json" -d '{"jsonrpc":"2.0","method":"tools/list","id":1}'` —
/// no Accept, no session, no version: served statelessly as JSON, and no session is made.
#[test]
fn requests_without_session_or_version_are_served_statelessly() {
    let ts = start(test_config());
    let seed_headers = [
        (
            "Authorization",
            "Bearer nmt_admin_token_for_tests_000000000000000000000",
        ),
        ("Content-Type", "application/json"),
    ];
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &seed_headers,
        br#"{"jsonrpc":"2.0","method":"tools/list","id":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("mcp-session-id"), None);
    let v = r.json();
    assert_eq!(v["id"], json!(1));
    assert!(!v["result"]["tools"].as_array().unwrap().is_empty(), "{v}");
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &seed_headers,
        br#"{"jsonrpc":"2.0","method":"tools/call","id":2,"params":{"name":"nope","arguments":{}}}"#,
    );
    assert_eq!(r.json()["error"]["code"], json!(-32602));
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &seed_headers,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(r.status, 202);
    assert_eq!(ts.server.session_count(), 0, "nothing was initialized");
    // Without a token it is still refused.
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        br#"{"jsonrpc":"2.0","method":"tools/list","id":3}"#,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn status_codes() {
    let mut cfg = test_config();
    cfg.max_body_bytes = 4096;
    let ts = start(cfg);
    let c = Client::connect(ts.addr, Some(ADMIN), "2025-06-18");
    let sid = c.session.clone().unwrap_or_default();

    // notification and response: 202, empty body
    let r = c.post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    assert_eq!((r.status, r.body.len()), (202, 0));
    let r = c.post(&json!({"jsonrpc":"2.0","id":"srv-1","result":{}}));
    assert_eq!((r.status, r.body.len()), (202, 0));

    // unknown session: 404 -32001
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":2,"method":"ping"}),
        &[("Mcp-Session-Id", "deadbeef")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], json!(-32001));
    assert_eq!(r.json()["id"], Value::Null);

    // missing session: 400
    let mut h = base_headers();
    h.push(("MCP-Protocol-Version", "2025-06-18"));
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &h,
        br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32000));

    // unsupported protocol version header: 400
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":4,"method":"ping"}),
        &[("MCP-Protocol-Version", "2030-01-01")],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["data"]["requested"], json!("2030-01-01"));
    // absent header: assumed 2025-03-26, accepted
    let owned = c.headers();
    let hs: Vec<(&str, &str)> = owned
        .iter()
        .filter(|(k, _)| k != "MCP-Protocol-Version")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &hs,
        br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#,
    );
    assert_eq!(r.status, 200);

    // bad Origin 403, localhost origins fine
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":6,"method":"ping"}),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["id"], Value::Null);
    for ok in [
        "http://localhost:6274",
        "http://127.0.0.1:3000",
        "http://[::1]",
    ] {
        let r = c.post_raw(
            &json!({"jsonrpc":"2.0","id":7,"method":"ping"}),
            &[("Origin", ok)],
        );
        assert_eq!(r.status, 200, "{ok}");
    }

    // Accept: wrong 406; lenient forms OK
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":8,"method":"ping"}),
        &[("Accept", "text/html")],
    );
    assert_eq!(r.status, 406);
    for acc in ["*/*", "application/json"] {
        let r = c.post_raw(
            &json!({"jsonrpc":"2.0","id":9,"method":"ping"}),
            &[("Accept", acc)],
        );
        assert_eq!(r.status, 200, "{acc}");
        assert_eq!(r.json()["result"], json!({}));
    }
    // Accept only SSE: answered as an event stream
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":10,"method":"ping"}),
        &[("Accept", "text/event-stream")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.text().contains(r#""id":10"#), "{}", r.text());

    // Content-Type wrong 415
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":11,"method":"ping"}),
        &[("Content-Type", "text/plain")],
    );
    assert_eq!(r.status, 415);
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":11,"method":"ping"}),
        &[("Content-Type", "application/json; charset=utf-8")],
    );
    assert_eq!(r.status, 200);

    // too large 413
    let big = json!({"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x".repeat(5000)}}});
    let r = c.post(&big);
    assert_eq!(r.status, 413);

    // parse error 400 -32700 with id null
    let owned = c.headers();
    let hs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = http(ts.addr, "POST", "/mcp", &hs, b"{\"jsonrpc\":\"2.0\",");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32700));
    assert_eq!(r.json()["id"], Value::Null);

    // invalid request 400 -32600
    let r = c.post(&json!({"jsonrpc":"2.0","id":13}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32600));
    assert_eq!(r.json()["id"], json!(13));
    let r = c.post(&json!({"jsonrpc":"2.0","id":null,"method":"ping"}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32600));

    // method not found -32601; invalid params -32602
    let v = c.request(14, "no/such/method", json!({}));
    assert_eq!(v["error"]["code"], json!(-32601));
    let v = c.request(15, "tools/call", json!({"name": "nope"}));
    assert_eq!(v["error"]["code"], json!(-32602));
    let v = c.request(16, "tools/call", json!({}));
    assert_eq!(v["error"]["code"], json!(-32602));
    let v = c.request(17, "tools/list", json!({"cursor": "garbage"}));
    assert_eq!(v["error"]["code"], json!(-32602));
    let v = c.request(18, "resources/read", json!({"uri": "test://nothing"}));
    assert_eq!(v["error"]["code"], json!(-32002));
    let v = c.request(19, "resources/read", json!({"uri": "test://item/missing"}));
    assert_eq!(v["error"]["code"], json!(-32002));
    let v = c.request(20, "logging/setLevel", json!({"level": "loud"}));
    assert_eq!(v["error"]["code"], json!(-32602));

    // second initialize on a session: 400
    let r = c.post_raw(&serde_json::from_str(INIT).unwrap_or(Value::Null), &[]);
    assert_eq!(r.status, 400);

    // other HTTP methods 405; oauth discovery 404 JSON
    let r = http(ts.addr, "PUT", "/mcp", &[("Mcp-Session-Id", &sid)], b"");
    assert_eq!(r.status, 405);
    for p in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = http(ts.addr, "GET", p, &[], b"");
        assert_eq!(r.status, 404, "{p}");
        assert_eq!(r.json()["error"], json!("not_found"));
    }

    // DELETE ends the session; then 404
    let owned = c.headers();
    let hs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = http(ts.addr, "DELETE", "/mcp", &hs, b"");
    assert_eq!(r.status, 200);
    let r = c.post(&json!({"jsonrpc":"2.0","id":21,"method":"ping"}));
    assert_eq!(r.status, 404);
    let r = http(ts.addr, "DELETE", "/mcp", &hs, b"");
    assert_eq!(r.status, 404);
}

#[test]
fn cors_preflight_and_error_headers() {
    let cfg = McpConfig {
        cors_origins: vec!["https://app.example".into()],
        ..test_config()
    };
    let ts = start(cfg);
    let r = http(
        ts.addr,
        "OPTIONS",
        "/mcp",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap_or("")
        .contains("Mcp-Session-Id"));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap_or("")
        .contains("DELETE"));
    assert!(r
        .header("access-control-expose-headers")
        .unwrap_or("")
        .contains("Mcp-Session-Id"));
    // error responses carry CORS headers too (401 without a token)
    let r = http(
        ts.addr,
        "POST",
        "/mcp",
        &[
            ("Origin", "https://app.example"),
            ("Content-Type", "application/json"),
        ],
        INIT.as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(r
        .header("access-control-expose-headers")
        .unwrap_or("")
        .contains("Mcp-Session-Id"));
    // a successful initialize exposes the session header
    let mut h = base_headers();
    h.push(("Origin", "https://app.example"));
    let r = http(ts.addr, "POST", "/mcp", &h, INIT.as_bytes());
    assert_eq!(r.status, 200);
    assert!(r.header("mcp-session-id").is_some());
    assert!(r
        .header("access-control-expose-headers")
        .unwrap_or("")
        .contains("Mcp-Session-Id"));
    // an origin outside both lists is refused, preflight included
    let r = http(
        ts.addr,
        "OPTIONS",
        "/mcp",
        &[("Origin", "https://other.example")],
        b"",
    );
    assert_eq!(r.status, 403);
}

#[test]
fn batches_only_for_2025_03_26() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(ADMIN), "2025-03-26");
    let r = c.post(&json!([
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}},
        {"jsonrpc":"2.0","id":3},
        {"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}
    ]));
    assert_eq!(r.status, 200, "{}", r.text());
    let arr = r.json();
    let arr = arr.as_array().cloned().unwrap_or_default();
    assert_eq!(arr.len(), 4);
    assert_eq!(arr[0]["id"], json!(1));
    assert_eq!(arr[1]["result"]["structuredContent"]["text"], json!("b"));
    assert_eq!(arr[2]["error"]["code"], json!(-32600));
    assert_eq!(arr[3]["error"]["code"], json!(-32600));
    // only notifications: 202
    let r = c.post(&json!([{"jsonrpc":"2.0","method":"notifications/initialized"}]));
    assert_eq!(r.status, 202);
    // empty batch: 400
    let r = c.post(&json!([]));
    assert_eq!(r.status, 400);
    // later versions reject batches
    let c2 = Client::connect(ts.addr, Some(ADMIN), "2025-06-18");
    let r = c2.post(&json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32600));
}

#[test]
fn tools_pagination_and_results() {
    let cfg = McpConfig {
        page_size: 2,
        ..test_config()
    };
    let ts = start(cfg);
    let c = Client::connect(ts.addr, Some(ADMIN), "2025-11-25");
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for i in 0..10 {
        let params = match &cursor {
            Some(cur) => json!({"cursor": cur}),
            None => json!({}),
        };
        let v = c.request(100 + i, "tools/list", params);
        let tools = v["result"]["tools"].as_array().cloned().unwrap_or_default();
        assert!(tools.len() <= 2);
        for t in &tools {
            names.push(t["name"].as_str().unwrap_or("").to_string());
            // annotations always explicit
            for k in [
                "readOnlyHint",
                "destructiveHint",
                "idempotentHint",
                "openWorldHint",
            ] {
                assert!(t["annotations"][k].is_boolean(), "{k} on {t}");
            }
            assert!(t["outputSchema"].is_object());
        }
        cursor = v["result"]["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        names,
        [
            "echo",
            "set_value",
            "admin_flush",
            "slow",
            "broken_output",
            "ticket",
            "fail"
        ]
    );

    let v = c.request(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "ab", "repeat": 2}}),
    );
    let res = &v["result"];
    assert_eq!(res["isError"], json!(false));
    assert_eq!(res["structuredContent"], json!({"text": "abab"}));
    let text = res["content"][0]["text"].as_str().unwrap_or("");
    assert_eq!(
        serde_json::from_str::<Value>(text).ok(),
        Some(json!({"text": "abab"}))
    );

    // invalid arguments: isError naming the field
    for (args, field) in [
        (json!({"text": "a", "repeat": 9}), "repeat"),
        (json!({"repeat": 1}), "text"),
        (json!({"text": 5}), "text"),
        (json!({"text": "a", "extra": true}), "extra"),
    ] {
        let v = c.request(2, "tools/call", json!({"name": "echo", "arguments": args}));
        assert_eq!(v["result"]["isError"], json!(true));
        let msg = v["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert!(msg.contains(&format!("'{field}'")), "{msg}");
    }
    let v = c.request(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": "text"}),
    );
    assert_eq!(v["result"]["isError"], json!(true));
    // tool failure and schema-violating output are isError results
    let v = c.request(4, "tools/call", json!({"name": "fail"}));
    assert_eq!(v["result"]["isError"], json!(true));
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("database is down"));
    let v = c.request(5, "tools/call", json!({"name": "broken_output"}));
    assert_eq!(v["result"]["isError"], json!(true));
    assert!(v["result"].get("structuredContent").is_none());
}

#[test]
fn reusable_results_are_shared_within_their_period_per_arguments() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-06-18");
    let call = |id: i64, args: Value| {
        c.request(
            id,
            "tools/call",
            json!({"name": "ticket", "arguments": args}),
        )
    };
    let first = call(1, json!({}));
    let again = call(2, json!({}));
    let other = call(3, json!({"label": "x"}));
    assert_eq!(first["result"]["structuredContent"]["n"], json!(1));
    // same arguments within the period: the encoded result is served again, under the new id
    assert_eq!(again["id"], json!(2));
    assert_eq!(again["result"], first["result"]);
    // other arguments run the handler
    assert_eq!(other["result"]["structuredContent"]["n"], json!(2));
    // the text copy is the structured content as JSON
    let text = other["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert_eq!(
        serde_json::from_str::<Value>(text).ok(),
        Some(json!({"n": 2}))
    );
    // every call is still audited
    let calls = ts
        .audit
        .rows()
        .iter()
        .filter(|r| r.tool.as_deref() == Some("ticket"))
        .count();
    assert_eq!(calls, 3);
}

#[test]
fn resources_prompts_completion() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-06-18");
    let v = c.request(1, "resources/list", json!({}));
    let uris: Vec<&str> = v["result"]["resources"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["uri"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(uris, ["test://status"]); // the admin-only one is hidden
    let v = c.request(2, "resources/templates/list", json!({}));
    assert_eq!(
        v["result"]["resourceTemplates"][0]["uriTemplate"],
        json!("test://item/{id}{?verbose}")
    );
    let v = c.request(
        3,
        "resources/read",
        json!({"uri": "test://item/abc?verbose=yes"}),
    );
    let text = v["result"]["contents"][0]["text"].as_str().unwrap_or("");
    assert_eq!(
        serde_json::from_str::<Value>(text).ok(),
        Some(json!({"id": "abc", "verbose": "yes"}))
    );
    assert_eq!(
        v["result"]["contents"][0]["mimeType"],
        json!("application/json")
    );
    let v = c.request(4, "resources/read", json!({"uri": "test://secret"}));
    assert_eq!(v["error"]["code"], json!(-32602));

    let v = c.request(5, "prompts/list", json!({}));
    assert_eq!(v["result"]["prompts"][0]["name"], json!("triage_ip"));
    assert_eq!(
        v["result"]["prompts"][0]["arguments"][0]["required"],
        json!(true)
    );
    let v = c.request(
        6,
        "prompts/get",
        json!({"name": "triage_ip", "arguments": {"ip": "10.0.0.5", "window": "24h"}}),
    );
    assert_eq!(v["result"]["messages"][0]["role"], json!("user"));
    assert_eq!(
        v["result"]["messages"][0]["content"]["text"],
        json!("Triage 10.0.0.5 over the last 24h")
    );
    let v = c.request(
        7,
        "prompts/get",
        json!({"name": "triage_ip", "arguments": {}}),
    );
    assert_eq!(v["error"]["code"], json!(-32602));
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("'ip'"));
    let v = c.request(8, "prompts/get", json!({"name": "nope"}));
    assert_eq!(v["error"]["code"], json!(-32602));

    let v = c.request(9, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "triage_ip"}, "argument": {"name": "window", "value": "2"}}));
    assert_eq!(v["result"]["completion"]["values"], json!(["24h"]));
    let v = c.request(10, "completion/complete", json!({"ref": {"type": "ref/resource", "uri": "test://item/{id}{?verbose}"}, "argument": {"name": "id", "value": "AL"}}));
    assert_eq!(
        v["result"]["completion"]["values"],
        json!(["alpha", "alpine"])
    );
    assert_eq!(v["result"]["completion"]["total"], json!(2));
    assert_eq!(v["result"]["completion"]["hasMore"], json!(false));
}

#[test]
fn every_request_is_audited() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RW), "2025-06-18");
    c.request(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "a"}}),
    );
    c.request(2, "tools/call", json!({"name": "admin_flush"}));
    let _ = http(
        ts.addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        INIT.as_bytes(),
    );
    let rows = ts.audit.rows();
    assert!(rows
        .iter()
        .any(|r| r.method == "initialize" && r.status == "ok" && r.token_id == Some(2)));
    assert!(rows
        .iter()
        .any(|r| r.method == "notifications/initialized" && r.http_status == 202));
    let echo = rows.iter().find(|r| r.tool.as_deref() == Some("echo"));
    assert_eq!(
        echo.map(|r| (r.status.as_str(), r.token_name.as_str())),
        Some(("ok", "rw"))
    );
    assert!(echo
        .map(|r| r.client_addr.as_deref() == Some("127.0.0.1"))
        .unwrap_or(false));
    assert!(echo.map(|r| r.session_id == c.session).unwrap_or(false));
    let flush = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("admin_flush"));
    assert_eq!(flush.map(|r| r.status.as_str()), Some("denied"));
    assert!(rows
        .iter()
        .any(|r| r.status == "unauthorized" && r.http_status == 401 && r.token_id.is_none()));
}
