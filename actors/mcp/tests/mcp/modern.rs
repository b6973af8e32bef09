//! The stateless 2026-07-28 revision: server/discover, the `_meta` envelope, mirrored headers
//! (HeaderMismatch -32020), UnsupportedProtocolVersion -32022, 404 for unknown methods, no
//! sessions, no GET stream, results with `resultType`, and subscriptions/listen.

use crate::util::*;
use serde_json::{json, Value};
use std::time::Duration;

const V: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

fn post(ts: &TestServer, token: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {token}");
    let method = body["method"].as_str().unwrap_or("").to_string();
    let mut hs: Vec<(&str, &str)> = vec![
        ("Content-Type", "application/json"),
        ("Accept", ACCEPT_BOTH),
        ("Authorization", &auth),
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", &method),
    ];
    let name = body["params"]["name"]
        .as_str()
        .or_else(|| body["params"]["uri"].as_str())
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        hs.push(("Mcp-Name", &name));
    }
    for (k, v) in extra {
        hs.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
        if !v.is_empty() {
            hs.push((k, v));
        }
    }
    http(ts.addr, "POST", "/mcp", &hs, body.to_string().as_bytes())
}

#[test]
fn discover_and_stateless_calls() {
    let ts = start(test_config());
    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta": meta()}}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("mcp-session-id").is_none());
    let res = r.json()["result"].clone();
    let versions = res["supportedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(versions.contains(&json!(V)) && versions.contains(&json!("2025-11-25")));
    assert_eq!(res["resultType"], json!("complete"));
    assert_eq!(res["cacheScope"], json!("public"));
    assert!(res["ttlMs"].is_number());
    assert_eq!(
        res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        json!("netmonitor")
    );
    assert!(res["capabilities"]["tools"].is_object());

    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta": meta()}}),
        &[],
    );
    assert_eq!(r.status, 200);
    let res = r.json()["result"].clone();
    assert_eq!(res["resultType"], json!("complete"));
    assert_eq!(res["cacheScope"], json!("private"));
    let names: Vec<String> = res["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(names.contains(&"echo".to_string()) && !names.contains(&"set_value".to_string()));

    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta": meta()}}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let res = r.json()["result"].clone();
    assert_eq!(res["structuredContent"], json!({"text": "hi"}));
    assert_eq!(res["resultType"], json!("complete"));

    // resources: not found is -32602 (400) in this revision
    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"test://nothing","_meta": meta()}}),
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32602));
    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"test://status","_meta": meta()}}),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["result"]["contents"][0]["uri"],
        json!("test://status")
    );

    // unknown (and removed) methods: 404 -32601
    for m in ["no/such", "ping", "logging/setLevel", "resources/subscribe"] {
        let r = post(
            &ts,
            RO,
            &json!({"jsonrpc":"2.0","id":6,"method":m,"params":{"_meta": meta()}}),
            &[],
        );
        assert_eq!(r.status, 404, "{m}");
        assert_eq!(r.json()["error"]["code"], json!(-32601));
    }
    // notifications: 202
    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}),
        &[],
    );
    assert_eq!(r.status, 202);
    // no GET stream
    let auth = format!("Bearer {RO}");
    let r = http(
        ts.addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("Authorization", &auth),
            ("MCP-Protocol-Version", V),
        ],
        b"",
    );
    assert_eq!(r.status, 405);
    // nothing created a session
    assert_eq!(ts.server.session_count(), 0);
}

#[test]
fn envelope_and_header_validation() {
    let ts = start(test_config());
    // missing _meta: -32602
    let r = post(
        &ts,
        RO,
        &json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}),
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32602));
    // Mcp-Method missing or wrong: -32020
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta": meta()}});
    let r = post(&ts, RO, &body, &[("Mcp-Method", "")]);
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32020))
    );
    let r = post(&ts, RO, &body, &[("Mcp-Method", "tools/call")]);
    assert_eq!(r.json()["error"]["code"], json!(-32020));
    // Mcp-Name must match; base64 sentinel decoded
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta": meta()}});
    let r = post(&ts, RO, &call, &[("Mcp-Name", "other")]);
    assert_eq!(r.json()["error"]["code"], json!(-32020));
    let r = post(&ts, RO, &call, &[("Mcp-Name", "=?base64?ZWNobw==?=")]);
    assert_eq!(r.status, 200, "{}", r.text());
    // body version without header: mismatch; header and body disagree: mismatch
    let r = post(&ts, RO, &body, &[("MCP-Protocol-Version", "")]);
    assert_eq!(r.json()["error"]["code"], json!(-32020));
    // unsupported version in header and body: -32022 with data
    let mut m = meta();
    m["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let fut = json!({"jsonrpc":"2.0","id":4,"method":"server/discover","params":{"_meta": m}});
    let r = post(&ts, RO, &fut, &[("MCP-Protocol-Version", "2099-01-01")]);
    assert_eq!(r.status, 400);
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], json!(-32022));
    assert_eq!(e["data"]["requested"], json!("2099-01-01"));
    assert!(e["data"]["supported"]
        .as_array()
        .map(|a| a.contains(&json!(V)))
        .unwrap_or(false));
    // batches are not part of this revision
    let r = post(&ts, RO, &json!([body]), &[("Mcp-Method", "tools/list")]);
    assert_eq!(r.status, 400);
    // auth still applies
    let r = post(&ts, "nmt_bogus", &body, &[]);
    assert_eq!(r.status, 401);
}

#[test]
fn modern_progress_streams_and_listen() {
    let ts = start(test_config());
    let auth = format!("Bearer {RO}");
    let mut m = meta();
    m["progressToken"] = json!("pt");
    m["io.modelcontextprotocol/logLevel"] = json!("info");
    let body = json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2,"delay_ms":5},"_meta": m}});
    let hs = [
        ("Content-Type", "application/json"),
        ("Accept", ACCEPT_BOTH),
        ("Authorization", auth.as_str()),
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "slow"),
    ];
    let mut s = Sse::open(ts.addr, "POST", "/mcp", &hs, body.to_string().as_bytes());
    assert_eq!(s.status, 200);
    let mut methods = Vec::new();
    let mut last = Value::Null;
    while let Some(msg) = s.next_message(Duration::from_secs(10)) {
        if let Some(mm) = msg["method"].as_str() {
            methods.push(mm.to_string());
        } else {
            last = msg;
            break;
        }
    }
    assert_eq!(
        methods,
        [
            "notifications/message",
            "notifications/progress",
            "notifications/progress"
        ]
    );
    assert_eq!(last["result"]["resultType"], json!("complete"));
    assert_eq!(last["result"]["structuredContent"]["done"], json!(2));

    // subscriptions/listen: acknowledged first, then opted-in updates only
    let listen = json!({"jsonrpc":"2.0","id":"L1","method":"subscriptions/listen","params":{
        "_meta": meta(),
        "notifications": {"toolsListChanged": true, "resourceSubscriptions": ["test://status", "test://nothing"]}}});
    let hs = [
        ("Content-Type", "application/json"),
        ("Accept", ACCEPT_BOTH),
        ("Authorization", auth.as_str()),
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "subscriptions/listen"),
    ];
    let mut l = Sse::open(ts.addr, "POST", "/mcp", &hs, listen.to_string().as_bytes());
    assert_eq!(l.status, 200);
    let ack = l
        .next_message(Duration::from_secs(5))
        .unwrap_or(Value::Null);
    assert_eq!(
        ack["method"],
        json!("notifications/subscriptions/acknowledged")
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        json!("L1")
    );
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!(["test://status"])
    );
    assert_eq!(
        ack["params"]["notifications"]["toolsListChanged"],
        json!(true)
    );
    ts.server.notify_resource_updated("test://other");
    ts.server.notify_resource_updated("test://status");
    let upd = l
        .next_message(Duration::from_secs(5))
        .unwrap_or(Value::Null);
    assert_eq!(upd["method"], json!("notifications/resources/updated"));
    assert_eq!(upd["params"]["uri"], json!("test://status"));
    assert_eq!(
        upd["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        json!("L1")
    );
    ts.server.set_registry(demo_registry());
    let changed = l
        .next_message(Duration::from_secs(5))
        .unwrap_or(Value::Null);
    assert_eq!(changed["method"], json!("notifications/tools/list_changed"));
    // prompts/resources list changes were not requested
    assert!(l.next_message(Duration::from_millis(300)).is_none());
}
