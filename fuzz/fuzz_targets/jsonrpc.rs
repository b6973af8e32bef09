//! The MCP JSON-RPC envelope: any bytes a client may POST, parsed and classified (single
//! message or batch) as the HTTP layer does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_mcp::jsonrpc::classify;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match v {
        serde_json::Value::Array(items) => {
            for item in items {
                let _ = classify(item);
            }
        }
        other => {
            let _ = classify(other);
        }
    }
});
