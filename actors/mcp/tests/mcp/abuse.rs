//! Limits that hold against a hostile or careless client: rate limits count JSON-RPC messages
//! (a batch of many calls is many calls), sessions per token are capped, a revoked token loses
//! its open streams within a second, implausible bearers never reach the token store and
//! guessing is throttled per address, and the audit trail records arguments (without secrets)
//! and the real client behind a trusted proxy.

use crate::util::*;
use netmonitor_mcp::McpConfig;
use serde_json::{json, Value};
use std::time::Duration;

const BATCHER: &str = "nmt_batching_token_for_tests_000000000000000000";

#[test]
fn a_batch_counts_every_message_against_the_rate_limit() {
    let tokens = std_tokens();
    let mut t = token(20, "batcher", netmonitor_mcp::Scope::ReadOnly);
    t.rate_per_minute = Some(40);
    tokens.add(BATCHER, t);
    let ts = start_with(test_config(), demo_registry(), tokens);
    let c = Client::connect(ts.addr, Some(BATCHER), "2025-03-26");
    let batch: Vec<Value> = (0..1000)
        .map(|i| json!({"jsonrpc":"2.0","id": i,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}))
        .collect();
    let r = c.post(&Value::Array(batch));
    assert_eq!(r.status, 200, "{}", r.text());
    let replies = r.json();
    let replies = replies.as_array().expect("a batch answer");
    assert_eq!(replies.len(), 1000, "every request gets an answer");
    let answered = replies.iter().filter(|v| v.get("result").is_some()).count();
    let refused = replies
        .iter()
        .filter(|v| {
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Rate limit"))
        })
        .count();
    // initialize and notifications/initialized took 2 of the 40
    assert!((36..=38).contains(&answered), "{answered} answered");
    assert_eq!(answered + refused, 1000);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let limited = ts
        .audit
        .rows()
        .iter()
        .filter(|r| r.status == "rate_limited")
        .count();
    assert_eq!(limited, refused, "each refused message is audited");
    // the window is spent: the next request is refused outright
    assert_eq!(
        c.post(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .status,
        429
    );
}

#[test]
fn sessions_per_token_are_capped() {
    let ts = start(McpConfig {
        max_sessions_per_token: 3,
        ..test_config()
    });
    let _held: Vec<Client> = (0..3)
        .map(|_| Client::connect(ts.addr, Some(RO), "2025-11-25"))
        .collect();
    let r = Client {
        addr: ts.addr,
        token: Some(RO.into()),
        session: None,
        version: "2025-11-25".into(),
    }
    .post(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}));
    assert_eq!(r.status, 503, "{}", r.text());
    // another token is not affected
    Client::connect(ts.addr, Some(RW), "2025-11-25");
}

#[test]
fn a_revoked_token_loses_its_open_streams_within_a_second() {
    let tokens = std_tokens();
    let ts = start_with(test_config(), demo_registry(), tokens.clone());
    let c = Client::connect(ts.addr, Some(RW), "2025-11-25");
    let mut get = c.open_sse("GET", None, &[]);
    assert_eq!(get.status, 200);
    let auth = format!("Bearer {RW}");
    let mut legacy = Sse::open(
        ts.addr,
        "GET",
        "/sse",
        &[("Accept", "text/event-stream"), ("Authorization", &auth)],
        b"",
    );
    assert_eq!(legacy.status, 200);
    assert!(
        legacy.next_event(Duration::from_secs(5)).is_some(),
        "endpoint event"
    );
    let other = Client::connect(ts.addr, Some(RO), "2025-11-25");
    let mut other_get = other.open_sse("GET", None, &[]);

    tokens.revoke(RW);
    let revoked = std::time::Instant::now();
    let ended = |s: &mut Sse| {
        while s.next_event(Duration::from_millis(100)).is_some() {}
        s.closed
    };
    assert!(
        wait_for(Duration::from_secs(3), || ended(&mut get)),
        "GET stream closed"
    );
    assert!(
        wait_for(Duration::from_secs(3), || ended(&mut legacy)),
        "legacy stream closed"
    );
    assert!(
        revoked.elapsed() < Duration::from_millis(2500),
        "{:?}",
        revoked.elapsed()
    );
    assert_eq!(
        c.post(&json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
            .status,
        401
    );
    // the other token's stream stays open
    other_get.next_event(Duration::from_millis(300));
    assert!(!other_get.closed);
}

#[test]
fn implausible_bearers_never_reach_the_store_and_guessing_is_throttled() {
    let tokens = std_tokens();
    let ts = start_with(
        McpConfig {
            auth_failures_per_minute: 5,
            ..test_config()
        },
        demo_registry(),
        tokens.clone(),
    );
    let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let post = |auth: &str| {
        http(
            ts.addr,
            "POST",
            "/mcp",
            &[
                ("Content-Type", "application/json"),
                ("Accept", ACCEPT_BOTH),
                ("Authorization", auth),
            ],
            init,
        )
    };
    for bad in [
        "Bearer abc",
        "Bearer nmt_short",
        "Bearer xyz_readonly_token_for_tests_000000000000000000",
    ] {
        assert_eq!(post(bad).status, 401);
    }
    assert_eq!(tokens.lookups(), 0, "malformed bearers are not looked up");
    // two more failures (now well-formed but unknown) reach the limit of five
    for i in 0..2 {
        let guess = format!("Bearer nmt_guess_{i}_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(guess.len(), "Bearer ".len() + 47);
        assert_eq!(post(&guess).status, 401);
    }
    assert_eq!(tokens.lookups(), 2);
    let r = post("Bearer nmt_guess_9_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&retry));
    assert_eq!(tokens.lookups(), 2, "a throttled client costs no lookup");
}

#[test]
fn audit_records_arguments_without_secrets_and_the_forwarded_client() {
    let ts = start(McpConfig {
        trusted_proxies: vec!["127.0.0.1".into()],
        ..test_config()
    });
    let c = Client::connect(ts.addr, Some(RO), "2025-11-25");
    let r = c.post_raw(
        &json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello","password":"hunter2"}}}),
        &[("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 127.0.0.1")],
    );
    assert_eq!(r.status, 200);
    let rows = ts.audit.rows();
    let row = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("echo"))
        .expect("audited call");
    let args = row.arguments.as_deref().unwrap_or("");
    assert!(
        args.contains("hello") && args.contains("[redacted]"),
        "{args}"
    );
    assert!(!args.contains("hunter2"));
    assert_eq!(row.client_addr.as_deref(), Some("203.0.113.7"));
    // an unknown tool is audited under the name asked for
    c.post(&json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"no_such_tool","arguments":{"a":1}}}));
    assert!(ts
        .audit
        .rows()
        .iter()
        .any(|r| r.tool.as_deref() == Some("no_such_tool")));

    // without a trusted proxy the header is ignored
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RO), "2025-11-25");
    c.post_raw(
        &json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}),
        &[("X-Forwarded-For", "203.0.113.7")],
    );
    let rows = ts.audit.rows();
    let row = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("echo"))
        .unwrap();
    assert_eq!(row.client_addr.as_deref(), Some("127.0.0.1"));
}
