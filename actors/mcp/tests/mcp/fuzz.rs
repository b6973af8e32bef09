//! 1,000 malformed bodies (random JSON, wrong types, huge ids, deep nesting, garbage bytes,
//! truncations, random tool arguments) against a live session; every answer must be a sane
//! status with a JSON-RPC body, and the server must still answer afterwards.

use crate::util::*;
use serde_json::{json, Value};

/// xorshift64*: deterministic, no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let k = if depth > 3 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match k {
        0 => Value::Null,
        1 => json!(rng.below(2) == 1),
        2 => json!(rng.next() as i64),
        3 => json!((rng.next() as f64) / 7.0),
        4 => {
            let len = rng.below(12) as usize;
            let s: String = (0..len)
                .map(|_| char::from(32 + rng.below(95) as u8))
                .collect();
            json!(s)
        }
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "jsonrpc",
                "id",
                "method",
                "params",
                "result",
                "error",
                "name",
                "arguments",
                "cursor",
                "uri",
                "_meta",
            ];
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                m.insert(rng.pick(&keys).to_string(), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn malformed(rng: &mut Rng, i: usize) -> Vec<u8> {
    let methods = [
        "ping",
        "tools/list",
        "tools/call",
        "resources/read",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "resources/subscribe",
        "initialize",
        "x/y",
        "",
    ];
    match i % 10 {
        0 => random_value(rng, 0).to_string().into_bytes(),
        1 => {
            // wrong types for envelope fields
            let mut m = serde_json::Map::new();
            m.insert("jsonrpc".into(), rng.pick(&[json!("2.0"), json!(2), json!(null), json!("1.0")]).clone());
            m.insert("id".into(), random_value(rng, 2));
            m.insert("method".into(), rng.pick(&[json!(5), json!(null), json!({}), json!("tools/call")]).clone());
            m.insert("params".into(), random_value(rng, 2));
            Value::Object(m).to_string().into_bytes()
        }
        2 => {
            // huge and odd ids
            let ids = ["1e400", "-1e400", "99999999999999999999999999999", "18446744073709551616", "-9223372036854775809", "1.5", "\"\"", "[1]", "{}", "true"];
            format!(r#"{{"jsonrpc":"2.0","id":{},"method":"ping"}}"#, rng.pick(&ids)).into_bytes()
        }
        3 => {
            // deep nesting (beyond the parser's recursion limit for some)
            let depth = 50 + rng.below(400) as usize;
            let open = if rng.below(2) == 0 { "[" } else { "{\"a\":" };
            let close = if open == "[" { "]" } else { "}" };
            let mut s = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"#);
            s.push_str(&open.repeat(depth));
            s.push('1');
            s.push_str(&close.repeat(depth));
            s.push_str("}}}");
            s.into_bytes()
        }
        4 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        5 => {
            let valid = json!({"jsonrpc":"2.0","id":rng.below(1000),"method":"tools/call","params":{"name":"echo","arguments":{"text":"abc"}}}).to_string();
            let cut = rng.below(valid.len() as u64) as usize;
            valid.as_bytes()[..cut].to_vec()
        }
        6 => json!({"jsonrpc":"2.0","id":rng.below(1_000_000),"method":rng.pick(&methods),"params":random_value(rng, 1)}).to_string().into_bytes(),
        7 => {
            let tools = ["echo", "set_value", "admin_flush", "fail", "broken_output", "nope"];
            let mut args = random_value(rng, 1);
            if rng.below(3) == 0 {
                args = json!({"text": random_value(rng, 2), "repeat": random_value(rng, 2)});
            }
            json!({"jsonrpc":"2.0","id":"f","method":"tools/call","params":{"name":rng.pick(&tools),"arguments":args}}).to_string().into_bytes()
        }
        8 => {
            // batches of junk (this session negotiated 2025-06-18: refused)
            Value::Array((0..rng.below(5)).map(|_| random_value(rng, 1)).collect()).to_string().into_bytes()
        }
        _ => {
            let junk = ["", " ", "null", "[]", "{}", "\"str\"", "{\"jsonrpc\":\"2.0\"}", "\u{feff}{}", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}garbage"];
            rng.pick(&junk).as_bytes().to_vec()
        }
    }
}

#[test]
fn thousand_malformed_bodies_then_still_answers() {
    let ts = start(test_config());
    let c = Client::connect(ts.addr, Some(RW), "2025-06-18");
    let owned = c.headers();
    let hs: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut by_status = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let body = malformed(&mut rng, i);
        let r = http(ts.addr, "POST", "/mcp", &hs, &body);
        *by_status.entry(r.status).or_insert(0) += 1;
        assert!(
            matches!(r.status, 200 | 202 | 400),
            "case {i}: status {} for {}",
            r.status,
            String::from_utf8_lossy(&body)
        );
        if r.status == 202 {
            assert!(r.body.is_empty());
        } else {
            let v = r.json();
            assert!(v.is_object() || v.is_array(), "case {i}: body {}", r.text());
            if r.status == 400 {
                assert!(v["error"]["code"].is_i64(), "case {i}: {v}");
            }
        }
    }
    // all kinds of outcomes were exercised
    assert!(
        by_status.get(&400).copied().unwrap_or(0) > 100,
        "{by_status:?}"
    );
    assert!(
        by_status.get(&200).copied().unwrap_or(0) > 50,
        "{by_status:?}"
    );
    let v = c.request(5000, "ping", json!({}));
    assert_eq!(v["result"], json!({}));
    let v = c.request(
        5001,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "alive"}}),
    );
    assert_eq!(v["result"]["structuredContent"]["text"], json!("alive"));
}
