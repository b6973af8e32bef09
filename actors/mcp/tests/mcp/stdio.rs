//! The stdio transport: newline-delimited JSON-RPC over an in-process pipe.

use crate::util::*;
use netmonitor_mcp::{Identity, McpServer, Scope};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[test]
fn stdio_session() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    rt.block_on(async {
        let audit = Arc::new(MemAudit::default());
        let server = Arc::new(McpServer::new(test_config(), demo_registry(), std_tokens(), audit.clone()));
        let (client_in, server_in) = tokio::io::duplex(64 * 1024);
        let (server_out, client_out) = tokio::io::duplex(64 * 1024);
        let srv = server.clone();
        let local = tokio::task::LocalSet::new();
        let serve = local.spawn_local(async move {
            srv.serve_stdio(server_in, server_out, Identity::anonymous(Scope::ReadOnly)).await
        });
        local
            .run_until(async move {
                let mut w = client_in;
                let mut lines = BufReader::new(client_out).lines();
                let send = |v: String| {
                    let mut s = v;
                    s.push('\n');
                    s
                };
                let script = [
                    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"s","version":"1"}}}).to_string(),
                    json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
                    "this is not json".to_string(),
                    json!([{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"s"}}}]).to_string(),
                    json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"set_value","arguments":{"key":"a","value":"b"}}}).to_string(),
                    json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2,"delay_ms":1},"_meta":{"progressToken":1}}}).to_string(),
                    json!({"jsonrpc":"2.0","id":6,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}).to_string(),
                ];
                for line in script {
                    let l = send(line);
                    let _ = w.write_all(l.as_bytes()).await;
                }
                let _ = w.flush().await;
                let mut got: Vec<Value> = Vec::new();
                while got.iter().filter(|m| m.get("id").is_some() || m.is_array()).count() < 6 {
                    let next = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line()).await;
                    match next {
                        Ok(Ok(Some(l))) => got.push(serde_json::from_str(&l).unwrap_or(Value::Null)),
                        _ => break,
                    }
                }
                drop(w);
                eprintln!("stdio replies: {got:?}");
                let by_id = |id: i64| got.iter().find(|m| m["id"] == json!(id)).cloned().unwrap_or(Value::Null);
                assert_eq!(by_id(1)["result"]["protocolVersion"], json!("2025-03-26"));
                assert!(got.iter().any(|m| m["error"]["code"] == json!(-32700) && m["id"].is_null()));
                let batch = got.iter().find(|m| m.is_array()).cloned().unwrap_or(Value::Null);
                assert_eq!(batch.as_array().map(|a| a.len()), Some(2));
                assert_eq!(batch[1]["result"]["structuredContent"]["text"], json!("s"));
                // stdio identity is read_only here
                assert_eq!(by_id(4)["result"]["isError"], json!(true));
                assert!(got.iter().any(|m| m["method"] == json!("notifications/progress")));
                assert_eq!(by_id(5)["result"]["structuredContent"]["done"], json!(2));
                assert_eq!(by_id(6)["result"]["resultType"], json!("complete"));
            })
            .await;
        let res = local.run_until(serve).await;
        assert!(matches!(res, Ok(Ok(()))));
        assert!(audit.rows().iter().any(|r| r.client_addr.as_deref() == Some("stdio")));
    });
}
