//! Interop with the official Rust SDK (`rmcp`) client over Streamable HTTP: the legacy
//! initialize handshake and the 2026-07-28 `server/discover` lifecycle.

use crate::util::*;
use rmcp::model::{CallToolRequestParams, ProtocolVersion, ReadResourceRequestParams};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::json;

macro_rules! transport {
    ($ts:expr) => {
        StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", $ts.addr))
                .auth_header(ADMIN),
        )
    };
}

fn args(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn official_rust_sdk_client() {
    let ts = start(test_config());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    rt.block_on(async {
        // legacy handshake
        let client = match ().serve(transport!(ts)).await {
            Ok(c) => c,
            Err(e) => panic!("rmcp initialize: {e:?}"),
        };
        let info = client.peer_info();
        let name = info
            .as_ref()
            .and_then(|i| i.server_info.as_ref())
            .map(|s| s.name.clone());
        assert_eq!(name.as_deref(), Some("netmonitor"));
        let version = info.map(|i| i.protocol_version.to_string());
        assert_eq!(version.as_deref(), Some("2025-11-25"));
        let tools = client.list_all_tools().await.map(|t| {
            t.into_iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>()
        });
        assert!(
            tools
                .as_ref()
                .map(|t| t.contains(&"echo".to_string()))
                .unwrap_or(false),
            "{tools:?}"
        );
        let r = client
            .call_tool(
                CallToolRequestParams::new("echo").with_arguments(args(json!({"text": "rs"}))),
            )
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("call_tool: {e:?}"),
        };
        assert_eq!(r.structured_content, Some(json!({"text": "rs"})));
        assert_ne!(r.is_error, Some(true));
        let res = client
            .read_resource(ReadResourceRequestParams::new("test://status"))
            .await;
        assert!(res.is_ok(), "{res:?}");
        let prompts = client.list_all_prompts().await;
        assert_eq!(prompts.map(|p| p.len()).ok(), Some(1));
        let _ = client.cancel().await;

        // 2026-07-28: server/discover, no session
        let mode = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        let modern = match ().serve_with_lifecycle(transport!(ts), mode).await {
            Ok(c) => c,
            Err(e) => panic!("rmcp discover: {e:?}"),
        };
        let r = modern
            .call_tool(
                CallToolRequestParams::new("echo")
                    .with_arguments(args(json!({"text": "modern", "repeat": 2}))),
            )
            .await;
        assert_eq!(
            r.ok().and_then(|r| r.structured_content),
            Some(json!({"text": "modernmodern"}))
        );
        let tools = modern.list_all_tools().await;
        assert!(tools.map(|t| t.len() >= 3).unwrap_or(false));
        let _ = modern.cancel().await;
    });
    let rows = ts.audit.rows();
    assert!(rows
        .iter()
        .any(|r| r.method == "server/discover" && r.status == "ok"));
    assert!(
        rows.iter()
            .filter(|r| r.tool.as_deref() == Some("echo") && r.status == "ok")
            .count()
            >= 2
    );
}
