//! SSE behaviour: progress and log notifications on POST streams, the standalone GET stream
//! (priming event, 409 for a second one, resource-updated notifications, Last-Event-ID
//! resumption), and cancellation.

use crate::util::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn progress_and_logs_stream_on_the_post_response() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-11-25");
    let v = c.request(1, "logging/setLevel", json!({"level": "info"}));
    assert_eq!(v["result"], json!({}));
    let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{
        "name":"slow","arguments":{"steps":3,"delay_ms":5},"_meta":{"progressToken":"tok-1"}}});
    let mut s = c.open_sse("POST", Some(&body), &[]);
    assert_eq!(s.status, 200);
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    // priming event first (2025-11-25): an id and empty data
    let prime = s.next_event(T);
    assert!(
        prime
            .as_ref()
            .map(|e| e.id.is_some() && e.data.is_empty())
            .unwrap_or(false),
        "{prime:?}"
    );
    assert_eq!(prime.and_then(|e| e.retry), Some(3000));
    let mut progress = Vec::new();
    let mut logs = Vec::new();
    let mut final_msg = Value::Null;
    while let Some(m) = s.next_message(T) {
        match m["method"].as_str() {
            Some("notifications/progress") => {
                assert_eq!(m["params"]["progressToken"], json!("tok-1"));
                assert_eq!(m["params"]["total"], json!(3.0));
                progress.push(m["params"]["progress"].as_f64().unwrap_or(0.0));
            }
            Some("notifications/message") => logs.push(m["params"].clone()),
            _ => {
                final_msg = m;
                break;
            }
        }
    }
    assert_eq!(progress, vec![1.0, 2.0, 3.0]);
    // info passes, debug is below the level
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["level"], json!("info"));
    assert_eq!(logs[0]["logger"], json!("slow"));
    assert_eq!(final_msg["id"], json!(7));
    assert_eq!(final_msg["result"]["structuredContent"], json!({"done": 3}));
    // the stream ends after the response
    assert!(s.next_event(Duration::from_secs(3)).is_none());
    assert!(s.closed);
}

#[test]
fn get_stream_priming_conflict_updates_and_resumption() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-11-25");
    let v = c.request(1, "resources/subscribe", json!({"uri": "test://status"}));
    assert_eq!(v["result"], json!({}));
    let v = c.request(2, "resources/subscribe", json!({"uri": "test://nothing"}));
    assert_eq!(v["error"]["code"], json!(-32002));

    // without Accept: text/event-stream -> 406
    let r = {
        let owned = c.headers();
        let hs: Vec<(&str, &str)> = owned
            .iter()
            .filter(|(k, _)| k != "Accept" && k != "Content-Type")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("Accept", "application/json")])
            .collect();
        http(ts.addr, "GET", "/mcp", &hs, b"")
    };
    assert_eq!(r.status, 406);

    let mut g = c.open_sse("GET", None, &[("Accept", "text/event-stream")]);
    assert_eq!(g.status, 200);
    let prime = g.next_event(T);
    let prime_id = prime
        .as_ref()
        .and_then(|e| e.id.clone())
        .unwrap_or_default();
    assert!(prime.map(|e| e.data.is_empty()).unwrap_or(false));
    assert!(!prime_id.is_empty());

    // second GET stream on the same session: 409
    let mut g2 = c.open_sse("GET", None, &[("Accept", "text/event-stream")]);
    assert_eq!(g2.status, 409);
    assert!(g2.next_event(Duration::from_millis(100)).is_none());

    ts.server.notify_resource_updated("test://status");
    ts.server.notify_resource_updated("test://other");
    let ev = g.next_event(T);
    let first_id = ev.as_ref().and_then(|e| e.id.clone()).unwrap_or_default();
    let msg = ev.map(|e| e.json()).unwrap_or(Value::Null);
    assert_eq!(msg["method"], json!("notifications/resources/updated"));
    assert_eq!(msg["params"]["uri"], json!("test://status"));
    assert_ne!(first_id, prime_id);
    // the unsubscribed URI produced nothing
    assert!(g.next_message(Duration::from_millis(300)).is_none());

    // disconnect, miss two updates, resume with Last-Event-ID: both are replayed in order
    drop(g);
    ts.server.notify_resource_updated("test://status");
    ts.server.notify_resource_updated("test://status/sub");
    let mut r = c.open_sse(
        "GET",
        None,
        &[
            ("Accept", "text/event-stream"),
            ("Last-Event-ID", &first_id),
        ],
    );
    assert_eq!(r.status, 200);
    let a = r.next_event(T).unwrap_or_default();
    let b = r.next_event(T).unwrap_or_default();
    assert_eq!(a.json()["params"]["uri"], json!("test://status"));
    assert_eq!(b.json()["params"]["uri"], json!("test://status/sub"));
    assert!(a.id.is_some() && a.id != b.id && a.id.as_deref() != Some(first_id.as_str()));
    // the resumed stream is live again
    ts.server.notify_resource_updated("test://status");
    let live = r.next_message(T);
    assert_eq!(
        live.map(|m| m["method"].clone()),
        Some(json!("notifications/resources/updated"))
    );

    // unsubscribe stops notifications
    let v = c.request(3, "resources/unsubscribe", json!({"uri": "test://status"}));
    assert_eq!(v["result"], json!({}));
}

#[test]
fn post_stream_can_be_resumed_after_disconnect() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-11-25");
    let body = json!({"jsonrpc":"2.0","id":"p","method":"tools/call","params":{
        "name":"slow","arguments":{"steps":4,"delay_ms":150},"_meta":{"progressToken":5}}});
    let mut s = c.open_sse("POST", Some(&body), &[]);
    let prime = s.next_event(T);
    let prime_id = prime.and_then(|e| e.id).unwrap_or_default();
    let first = s.next_event(T);
    let first_id = first
        .as_ref()
        .and_then(|e| e.id.clone())
        .unwrap_or_default();
    assert_eq!(
        first.map(|e| e.json()["params"]["progress"].clone()),
        Some(json!(1.0))
    );
    drop(s);
    assert!(!prime_id.is_empty());
    // resume the POST's stream through GET + Last-Event-ID
    let mut r = c.open_sse(
        "GET",
        None,
        &[
            ("Accept", "text/event-stream"),
            ("Last-Event-ID", &first_id),
        ],
    );
    assert_eq!(r.status, 200);
    let mut progress = Vec::new();
    let mut result = Value::Null;
    while let Some(m) = r.next_message(T) {
        if m["method"] == json!("notifications/progress") {
            progress.push(m["params"]["progress"].as_f64().unwrap_or(0.0));
        } else {
            result = m;
            break;
        }
    }
    assert_eq!(progress, vec![2.0, 3.0, 4.0]);
    assert_eq!(result["id"], json!("p"));
    assert_eq!(result["result"]["structuredContent"]["done"], json!(4));
}

#[test]
fn cancellation_stops_a_running_tool() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-06-18");
    let addr = c.addr;
    let headers = c.headers();
    let worker = std::thread::spawn(move || {
        let hs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = json!({"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"slow","arguments":{"steps":200,"delay_ms":50}}});
        http(addr, "POST", "/mcp", &hs, body.to_string().as_bytes())
    });
    std::thread::sleep(Duration::from_millis(300));
    let r = c.post(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99,"reason":"user"}}));
    assert_eq!(r.status, 202);
    let started = std::time::Instant::now();
    let resp = worker.join().ok();
    // well under the 10 s the tool would take; no JSON-RPC response for a cancelled request
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(resp.map(|r| (r.status, r.body.len())), Some((202, 0)));
    assert!(wait_for(Duration::from_secs(2), || ts
        .audit
        .rows()
        .iter()
        .any(
            |r| r.method == "tools/call" && r.error.as_deref() == Some("cancelled by client")
        )));
    // unknown ids are ignored
    let r = c.post(
        &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12345}}),
    );
    assert_eq!(r.status, 202);
}
