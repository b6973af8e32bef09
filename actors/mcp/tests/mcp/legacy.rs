//! The legacy 2024-11-05 HTTP+SSE transport: GET /sse announces the POST endpoint; POSTs to
//! /messages are answered 202 and the replies travel on the stream.

use crate::util::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn legacy_sse_round_trip() {
    let ts = start(test_config());
    let auth = format!("Bearer {RO}");
    let mut s = Sse::open(
        ts.addr,
        "GET",
        "/sse",
        &[("Accept", "text/event-stream"), ("Authorization", &auth)],
        b"",
    );
    assert_eq!(s.status, 200);
    let ep = s.next_event(T).unwrap_or_default();
    assert_eq!(ep.event.as_deref(), Some("endpoint"));
    assert!(ep.data.starts_with("/messages?sessionId="), "{}", ep.data);
    let path = ep.data.clone();
    let post = |body: &Value| {
        http(
            ts.addr,
            "POST",
            &path,
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body.to_string().as_bytes(),
        )
    };
    let r = post(
        &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"legacy","version":"0"}}}),
    );
    assert_eq!(r.status, 202);
    let init = s.next_message(T).unwrap_or(Value::Null);
    assert_eq!(init["id"], json!(1));
    assert_eq!(init["result"]["protocolVersion"], json!("2024-11-05"));
    assert_eq!(
        post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).status,
        202
    );
    assert_eq!(
        post(
            &json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"info"}})
        )
        .status,
        202
    );
    assert_eq!(s.next_message(T).map(|m| m["id"].clone()), Some(json!(2)));
    let r = post(
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2,"delay_ms":1},"_meta":{"progressToken":"lp"}}}),
    );
    assert_eq!(r.status, 202);
    let mut kinds = Vec::new();
    while let Some(m) = s.next_message(T) {
        match m["method"].as_str() {
            Some(x) => kinds.push(x.to_string()),
            None => {
                assert_eq!(m["id"], json!(3));
                assert_eq!(m["result"]["structuredContent"]["done"], json!(2));
                break;
            }
        }
    }
    assert_eq!(
        kinds,
        [
            "notifications/message",
            "notifications/progress",
            "notifications/progress"
        ]
    );
    // subscriptions push on the SSE stream
    assert_eq!(post(&json!({"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{"uri":"test://status"}})).status, 202);
    assert_eq!(s.next_message(T).map(|m| m["id"].clone()), Some(json!(4)));
    ts.server.notify_resource_updated("test://status");
    let upd = s.next_message(T).unwrap_or(Value::Null);
    assert_eq!(upd["method"], json!("notifications/resources/updated"));
    // errors: invalid JSON 400, unknown session 404, missing session 400, wrong content type 415
    let r = http(
        ts.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        b"{oops",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!(-32700));
    let r = http(
        ts.addr,
        "POST",
        "/messages?sessionId=nope",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        b"{}",
    );
    assert_eq!(r.status, 404);
    let r = http(
        ts.addr,
        "POST",
        "/messages",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        b"{}",
    );
    assert_eq!(r.status, 400);
    let r = http(
        ts.addr,
        "POST",
        &path,
        &[("Content-Type", "text/plain"), ("Authorization", &auth)],
        b"{}",
    );
    assert_eq!(r.status, 415);
    // a different token cannot use this session
    let other = format!("Bearer {RW}");
    let r = http(
        ts.addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &other),
        ],
        b"{}",
    );
    assert_eq!(r.status, 404);
    // no token at all: 401
    let r = http(
        ts.addr,
        "GET",
        "/sse",
        &[("Accept", "text/event-stream")],
        b"",
    );
    assert_eq!(r.status, 401);
    // closing the stream ends the session
    let before = ts.server.session_count();
    drop(s);
    assert!(wait_for(Duration::from_secs(5), || ts
        .server
        .session_count()
        < before));
    let r = post(&json!({"jsonrpc":"2.0","id":5,"method":"ping"}));
    assert_eq!(r.status, 404);
}
