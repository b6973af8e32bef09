//! NetMonitor's MCP server layer, independent of the engine: the composition root registers the
//! real tools, resources and prompts in a [`Registry`], plugs in a [`TokenStore`] and an
//! [`AuditSink`] (PostgreSQL-backed in production), and mounts [`McpServer::configure`] on its
//! actix-web app next to `/health` and `/metrics`, or calls [`McpServer::serve_stdio`].
//!
//! Transports: Streamable HTTP at `/mcp` for protocol versions 2025-03-26 (with JSON-RPC
//! batches), 2025-06-18, 2025-11-25 and the stateless 2026-07-28 revision (`server/discover`,
//! per-request `_meta`); the legacy 2024-11-05 HTTP+SSE transport at `/sse` + `/messages`; and
//! stdio.
//!
//! Security: bearer tokens (stored as SHA-256 only) with scopes `read_only < read_write <
//! admin` enforced per tool, resource and prompt; per-token limits per minute/hour/day (429);
//! Origin validation (403); an audit row for every request and tool call.
//!
//! Design choice: calling a tool above the token's scope yields an `isError: true` tool result
//! ("Permission denied: ...", audited as `denied`) rather than HTTP 403, so the refusal reads the
//! same on every transport (stdio and legacy SSE have no HTTP status for replies) and the model
//! can explain it; such tools are also absent from that token's tools/list.
#![deny(missing_docs)]

pub mod audit;
pub mod auth;
pub mod config;
mod http;
pub mod jsonrpc;
mod obs;
pub mod protocol;
pub mod ratelimit;
pub mod registry;
mod reuse;
pub mod schema;
mod server;
mod session;
pub mod sse;
mod stdio;
pub mod uritemplate;

pub use audit::{AuditEntry, AuditSink, AuditStatus, NullAuditSink};
pub use auth::{generate_token, hash_token, Identity, Scope, TokenInfo, TokenStore};
pub use config::{ConfigError, McpConfig};
pub use registry::{
    LocalBoxFuture, LogLevel, PromptArgument, PromptDef, PromptMessage, Registry, RegistryError,
    ResourceContents, ResourceDef, ResourceRequest, ResourceTemplateDef, Role, ToolAnnotations,
    ToolCtx, ToolDef, ToolError,
};
pub use server::McpServer;

/// Checks that the bind address allows the configured auth mode (`MCP_AUTH_REQUIRED=false`
/// only on loopback); see [`McpConfig::validate_bind`].
pub fn validate_bind(config: &McpConfig, host: &str) -> Result<(), ConfigError> {
    config.validate_bind(host)
}
