//! The MCP methods, independent of transport: version negotiation, initialize and
//! server/discover, tools (scope check, argument validation, structured results, progress,
//! cancellation), resources, prompts, logging and completion; plus the per-message wrapper that
//! audits, meters and honours cancellation.

use crate::audit::AuditStatus;
use crate::auth::Identity;
use crate::jsonrpc::{self, Reply, RequestId, ResultBody, RpcError};
use crate::registry::{
    CancelToken, LogLevel, NotifySink, Registry, ResourceRequest, ToolCtx, ToolCtxParts, ToolError,
};
use crate::reuse::ResultCache;
use crate::schema;
use crate::server::{ClientMeta, McpServer};
use crate::session::Session;
use netmonitor_common::Timestamp;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Versions reachable with the `initialize` handshake, oldest first.
pub const HANDSHAKE_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Stateless per-request-envelope versions.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// Answer to an initialize asking for a version we do not know.
pub const LATEST_HANDSHAKE: &str = "2025-11-25";
/// Version assumed when the `MCP-Protocol-Version` header is absent (spec, 2025-06-18).
pub const HEADERLESS_VERSION: &str = "2025-03-26";
/// The only version with JSON-RPC batches.
pub const BATCH_VERSION: &str = "2025-03-26";

/// `_meta` key: protocol version of a modern request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: client capabilities of a modern request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: client identity of a modern request.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key: log level opt-in of a modern request.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key: server identity stamped on modern results.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key: subscription id on listen-stream notifications.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Completion values returned at most (spec limit).
pub const MAX_COMPLETIONS: usize = 100;

/// Whether `v` is any version this server speaks.
pub fn is_supported_version(v: &str) -> bool {
    HANDSHAKE_VERSIONS.contains(&v) || MODERN_VERSIONS.contains(&v)
}

/// All supported versions, for error data and discovery.
pub fn all_versions() -> Vec<&'static str> {
    HANDSHAKE_VERSIONS
        .iter()
        .chain(MODERN_VERSIONS.iter())
        .copied()
        .collect()
}

/// The -32022 error naming supported versions.
pub fn unsupported_version_error(requested: &str) -> RpcError {
    RpcError::new(
        jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
        format!(
            "Unsupported protocol version {requested:?} (supported: {})",
            all_versions().join(", ")
        ),
    )
    .with_data(json!({"supported": all_versions(), "requested": requested}))
}

/// Negotiates: the client's version if we speak it, else our latest handshake version.
pub fn negotiate(requested: &str) -> &'static str {
    HANDSHAKE_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LATEST_HANDSHAKE)
}

/// The per-request envelope of a modern request.
#[derive(Clone, Debug, PartialEq)]
pub struct ModernEnvelope {
    /// `_meta` protocol version.
    pub version: String,
    /// `_meta` log level opt-in.
    pub log_level: Option<LogLevel>,
}

/// Whether a message carries a modern `_meta` envelope (its version key).
pub fn has_modern_meta(params: Option<&Map<String, Value>>) -> bool {
    params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .map(|m| m.contains_key(META_PROTOCOL_VERSION))
        .unwrap_or(false)
}

/// Validates the modern envelope (spec ladder minus the HTTP header rungs): `_meta` with
/// version and client capabilities, version a supported modern one.
pub fn modern_envelope(params: Option<&Map<String, Value>>) -> Result<ModernEnvelope, RpcError> {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "params._meta must be an object carrying {META_PROTOCOL_VERSION:?} and {META_CLIENT_CAPABILITIES:?}"
            ))
        })?;
    let missing: Vec<&str> = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::invalid_params(format!(
            "params._meta is missing {}",
            missing.join(", ")
        )));
    }
    let version = meta
        .get(META_PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("the protocol version must be a string"))?;
    if !MODERN_VERSIONS.contains(&version) {
        return Err(unsupported_version_error(version));
    }
    let log_level = match meta.get(META_LOG_LEVEL) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            LogLevel::parse(s)
                .ok_or_else(|| RpcError::invalid_params(format!("unknown log level {s:?}")))?,
        ),
        Some(_) => return Err(RpcError::invalid_params("the log level must be a string")),
    };
    Ok(ModernEnvelope {
        version: version.to_string(),
        log_level,
    })
}

/// Everything a method needs to know about its caller and transport.
pub(crate) struct CallCtx {
    /// The caller.
    pub identity: Identity,
    /// The session (none for modern requests).
    pub session: Option<Arc<Session>>,
    /// Served under 2026-07-28 rules.
    pub modern: bool,
    /// Where request-related notifications go.
    pub sink: Option<NotifySink>,
    /// Effective log level for this request.
    pub log_level: Option<LogLevel>,
    /// The request's cancellation flag.
    pub cancel: Arc<CancelToken>,
    /// Audit facts.
    pub meta: ClientMeta,
}

/// Result of one method plus what the audit row needs.
pub(crate) struct Outcome {
    pub result: Result<ResultBody, RpcError>,
    pub tool: Option<String>,
    /// A tool call's arguments as the audit row records them.
    pub arguments: Option<String>,
    pub status: AuditStatus,
    pub error: Option<String>,
}

impl Outcome {
    fn ok(v: Value) -> Self {
        Outcome {
            result: Ok(ResultBody::Value(v)),
            tool: None,
            arguments: None,
            status: AuditStatus::Ok,
            error: None,
        }
    }

    fn err(e: RpcError) -> Self {
        let msg = e.message.clone();
        Outcome {
            result: Err(e),
            tool: None,
            arguments: None,
            status: AuditStatus::Error,
            error: Some(msg),
        }
    }
}

impl From<Result<Value, RpcError>> for Outcome {
    fn from(r: Result<Value, RpcError>) -> Self {
        match r {
            Ok(v) => Outcome::ok(v),
            Err(e) => Outcome::err(e),
        }
    }
}

fn str_param<'a>(params: &'a Map<String, Value>, key: &str) -> Result<&'a str, RpcError> {
    match params.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::invalid_params(format!(
            "'{key}' must be a string"
        ))),
        None => Err(RpcError::invalid_params(format!("missing '{key}'"))),
    }
}

/// Opaque pagination cursor: hex of `<list>:<offset>`.
fn encode_cursor(list: &str, offset: usize) -> String {
    hex::encode(format!("{list}:{offset}"))
}

fn decode_cursor(list: &str, params: &Map<String, Value>) -> Result<usize, RpcError> {
    let Some(c) = params.get("cursor") else {
        return Ok(0);
    };
    let bad = || RpcError::invalid_params("Invalid cursor");
    let c = c.as_str().ok_or_else(bad)?;
    let raw = hex::decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (l, off) = text.split_once(':').ok_or_else(bad)?;
    if l != list {
        return Err(bad());
    }
    off.parse::<usize>().map_err(|_| bad())
}

/// A tool failure the model can read (`isError: true`).
fn tool_error_result(text: &str) -> ResultBody {
    ResultBody::Value(json!({"content": [{"type": "text", "text": text}], "isError": true}))
}

impl McpServer {
    /// `serverInfo`.
    pub(crate) fn server_info(&self) -> Value {
        let mut info = Map::new();
        info.insert("name".into(), json!(self.config.server_name));
        if let Some(t) = &self.config.server_title {
            info.insert("title".into(), json!(t));
        }
        info.insert("version".into(), json!(self.config.server_version));
        Value::Object(info)
    }

    /// Server capabilities (the registry can be replaced, so list changes are announced).
    pub(crate) fn capabilities(&self) -> Value {
        json!({
            "tools": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "prompts": {"listChanged": true},
            "logging": {},
            "completions": {},
        })
    }

    /// The `initialize` result and the negotiated version.
    pub(crate) fn initialize_result(
        &self,
        params: Option<&Map<String, Value>>,
    ) -> Result<(&'static str, Value), RpcError> {
        let empty = Map::new();
        let params = params.unwrap_or(&empty);
        let requested = str_param(params, "protocolVersion")?;
        let version = negotiate(requested);
        let mut r = Map::new();
        r.insert("protocolVersion".into(), json!(version));
        r.insert("capabilities".into(), self.capabilities());
        r.insert("serverInfo".into(), self.server_info());
        if let Some(i) = &self.config.instructions {
            r.insert("instructions".into(), json!(i));
        }
        Ok((version, Value::Object(r)))
    }

    /// Adds the fields every 2026-07-28 result carries.
    fn modernize(&self, mut v: Value, cacheable: Option<&'static str>) -> Value {
        if let Some(o) = v.as_object_mut() {
            o.insert("resultType".into(), json!("complete"));
            if let Some(scope) = cacheable {
                o.entry("ttlMs").or_insert(json!(0));
                o.entry("cacheScope").or_insert(json!(scope));
            }
            let meta = o.entry("_meta").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.insert(META_SERVER_INFO.into(), self.server_info());
            }
        }
        v
    }

    /// Runs one method.
    pub(crate) async fn dispatch(
        &self,
        ctx: &CallCtx,
        method: &str,
        params: Option<Map<String, Value>>,
    ) -> Outcome {
        let params = params.unwrap_or_default();
        let reg = self.registry();
        let modern = ctx.modern;
        let outcome: Outcome = match (method, modern) {
            ("server/discover", true) => {
                let mut r = Map::new();
                r.insert("supportedVersions".into(), json!(all_versions()));
                r.insert("capabilities".into(), self.capabilities());
                r.insert("serverInfo".into(), self.server_info());
                if let Some(i) = &self.config.instructions {
                    r.insert("instructions".into(), json!(i));
                }
                Outcome::ok(Value::Object(r))
            }
            ("ping", false) => Outcome::ok(json!({})),
            ("initialize", false) => Outcome::err(RpcError::new(
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: session already initialized",
            )),
            ("tools/list", _) => self.tools_list(&reg, &ctx.identity, &params).into(),
            ("tools/call", _) => self.tools_call(&reg, ctx, params).await,
            ("resources/list", _) => self.resources_list(&reg, &ctx.identity, &params).into(),
            ("resources/templates/list", _) => {
                self.templates_list(&reg, &ctx.identity, &params).into()
            }
            ("resources/read", _) => self.resources_read(&reg, ctx, &params).await,
            ("resources/subscribe", false) | ("resources/unsubscribe", false) => {
                self.subscribe(&reg, ctx, method, &params).into()
            }
            ("prompts/list", _) => self.prompts_list(&reg, &ctx.identity, &params).into(),
            ("prompts/get", _) => self.prompts_get(&reg, &ctx.identity, &params).await,
            ("logging/setLevel", false) => self.set_level(ctx, &params).into(),
            ("completion/complete", _) => self.complete(&reg, &ctx.identity, &params).into(),
            _ => Outcome::err(RpcError::new(
                jsonrpc::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            )),
        };
        if modern {
            let cacheable = match method {
                "server/discover" => Some("public"),
                "tools/list"
                | "resources/list"
                | "resources/templates/list"
                | "prompts/list"
                | "resources/read" => Some("private"),
                _ => None,
            };
            Outcome {
                result: outcome
                    .result
                    .map(|r| ResultBody::Value(self.modernize(r.into_value(), cacheable))),
                ..outcome
            }
        } else {
            outcome
        }
    }

    /// Runs a request with cancellation, auditing and metrics; `None` when it was cancelled
    /// (no response is sent for cancelled requests).
    pub(crate) async fn run_request(
        &self,
        ctx: &CallCtx,
        id: &RequestId,
        method: &str,
        params: Option<Map<String, Value>>,
    ) -> Option<Reply> {
        let started = (Timestamp::now(), Instant::now());
        if let Some(s) = &ctx.session {
            s.begin_request(id, ctx.cancel.clone());
        }
        let outcome = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => None,
            o = self.dispatch(ctx, method, params) => Some(o),
        };
        if let Some(s) = &ctx.session {
            s.end_request(id);
        }
        let session_id = ctx.session.as_ref().map(|s| s.id.as_str());
        match outcome {
            None => {
                self.audit_row(
                    started,
                    Some(&ctx.identity),
                    method,
                    None,
                    AuditStatus::Error,
                    200,
                    &ctx.meta,
                    session_id,
                    Some("cancelled by client".into()),
                );
                None
            }
            Some(o) => {
                let http = match &o.result {
                    Ok(_) => 200,
                    Err(e) if ctx.modern => modern_http_status(e.code),
                    Err(_) => 200,
                };
                self.audit_call(
                    started,
                    Some(&ctx.identity),
                    method,
                    (o.tool.as_deref(), o.arguments.clone()),
                    o.status,
                    http,
                    &ctx.meta,
                    session_id,
                    o.error.clone(),
                );
                Some(match &o.result {
                    Ok(body) => Reply::result(id, body),
                    Err(e) => Reply::error(Some(id), e),
                })
            }
        }
    }

    /// Handles a client notification (no response).
    pub(crate) fn handle_notification(
        &self,
        session: Option<&Arc<Session>>,
        method: &str,
        params: Option<&Map<String, Value>>,
    ) {
        match method {
            "notifications/initialized" => {
                if let Some(s) = session {
                    s.mark_initialized();
                }
            }
            "notifications/cancelled" => {
                let id = params
                    .and_then(|p| p.get("requestId"))
                    .and_then(RequestId::from_value);
                if let (Some(s), Some(id)) = (session, id) {
                    s.cancel_request(&id);
                }
            }
            _ => {}
        }
    }

    fn paginate(
        &self,
        list: &str,
        items: Vec<Value>,
        params: &Map<String, Value>,
        key: &str,
    ) -> Result<Value, RpcError> {
        let offset = decode_cursor(list, params)?;
        if offset > items.len() {
            return Err(RpcError::invalid_params("Invalid cursor"));
        }
        let page = self.config.page_size.max(1);
        let end = offset.saturating_add(page).min(items.len());
        let slice: Vec<Value> = items
            .get(offset..end)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        let mut r = Map::new();
        r.insert(key.into(), Value::Array(slice));
        if end < items.len() {
            r.insert("nextCursor".into(), json!(encode_cursor(list, end)));
        }
        Ok(Value::Object(r))
    }

    fn tools_list(
        &self,
        reg: &Registry,
        who: &Identity,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let items = reg
            .tools()
            .iter()
            .filter(|t| who.scope.allows(t.scope))
            .map(|t| t.to_json())
            .collect();
        self.paginate("tools", items, params, "tools")
    }

    async fn tools_call(
        &self,
        reg: &Registry,
        ctx: &CallCtx,
        mut params: Map<String, Value>,
    ) -> Outcome {
        let name = match str_param(&params, "name") {
            Ok(n) => n,
            Err(e) => return Outcome::err(e),
        };
        let arguments = params
            .get("arguments")
            .map(|a| crate::audit::audit_arguments(a, self.config.audit_arguments_max_bytes));
        let Some((tool, meters)) = reg.tool_with_meters(name) else {
            let mut o = Outcome::err(RpcError::invalid_params(format!("Unknown tool: {name}")));
            o.tool = Some(name.to_string());
            o.arguments = arguments;
            return o;
        };
        let finish = |result: ResultBody, status: AuditStatus, error: Option<String>| {
            meters.called(&tool.name, status);
            Outcome {
                result: Ok(result),
                tool: Some(tool.name.clone()),
                arguments: arguments.clone(),
                status,
                error,
            }
        };
        if !ctx.identity.scope.allows(tool.scope) {
            let msg = format!(
                "Permission denied: tool '{}' requires scope {}, this token has {}",
                tool.name, tool.scope, ctx.identity.scope
            );
            return finish(tool_error_result(&msg), AuditStatus::Denied, Some(msg));
        }
        let args = match params.remove("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                let msg = "Invalid arguments: 'arguments' must be an object".to_string();
                return finish(tool_error_result(&msg), AuditStatus::Error, Some(msg));
            }
        };
        let args = Value::Object(args);
        if let Err(e) = schema::validate(&tool.input_schema, &args) {
            let msg = format!("Invalid arguments for tool '{}': {e}", tool.name);
            return finish(tool_error_result(&msg), AuditStatus::Error, Some(msg));
        }
        let reuse = tool
            .reuse_for
            .map(|period| (period, ResultCache::key(&tool.name, &args)));
        if let Some((period, key)) = &reuse {
            if let Some(body) = self.results.get(key, *period) {
                return finish(ResultBody::Encoded(body), AuditStatus::Ok, None);
            }
        }
        let Value::Object(args) = args else {
            return Outcome::err(RpcError::new(jsonrpc::INTERNAL_ERROR, "arguments lost"));
        };
        let progress_token = params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
            .cloned();
        let tctx = ToolCtx::new(ToolCtxParts {
            identity: ctx.identity.clone(),
            session_id: ctx.session.as_ref().map(|s| s.id.clone()),
            progress_token,
            cancel: ctx.cancel.clone(),
            log_level: ctx.log_level,
            sink: ctx.sink.clone(),
            logger: tool.name.clone(),
        });
        let limit = std::time::Duration::from_secs(self.config.tool_timeout_secs);
        let outcome = match tokio::time::timeout(limit, (tool.handler)(tctx, args)).await {
            Ok(r) => r,
            Err(_) => Err(ToolError::Unavailable(format!(
                "'{}' did not finish within {} s",
                tool.name, self.config.tool_timeout_secs
            ))),
        };
        match outcome {
            Ok(v) => {
                if let Err(e) = schema::validate(&tool.output_schema, &v) {
                    tracing::error!(tool = %tool.name, error = %e, "tool output does not match its outputSchema");
                    let msg = format!(
                        "Internal error: the result of '{}' did not match its output schema ({e})",
                        tool.name
                    );
                    return finish(tool_error_result(&msg), AuditStatus::Error, Some(msg));
                }
                let body = jsonrpc::encode_tool_result(&v);
                if let Some((period, key)) = reuse {
                    self.results.put(key, body.clone(), period);
                }
                finish(ResultBody::Encoded(body), AuditStatus::Ok, None)
            }
            Err(e) => {
                let msg = e.to_string();
                let status = match e {
                    ToolError::Forbidden(_) => AuditStatus::Denied,
                    _ => AuditStatus::Error,
                };
                finish(tool_error_result(&msg), status, Some(msg))
            }
        }
    }

    fn resources_list(
        &self,
        reg: &Registry,
        who: &Identity,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let items = reg
            .resources()
            .iter()
            .filter(|r| who.scope.allows(r.scope))
            .map(|r| {
                listing(
                    ("uri", &r.uri),
                    &r.name,
                    r.title.as_deref(),
                    r.description.as_deref(),
                    r.mime_type.as_deref(),
                )
            })
            .collect();
        self.paginate("resources", items, params, "resources")
    }

    fn templates_list(
        &self,
        reg: &Registry,
        who: &Identity,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let items = reg
            .templates()
            .filter(|t| who.scope.allows(t.scope))
            .map(|t| {
                listing(
                    ("uriTemplate", &t.uri_template),
                    &t.name,
                    t.title.as_deref(),
                    t.description.as_deref(),
                    t.mime_type.as_deref(),
                )
            })
            .collect();
        self.paginate("templates", items, params, "resourceTemplates")
    }

    fn not_found(&self, modern: bool, uri: &str) -> RpcError {
        let code = if modern {
            jsonrpc::INVALID_PARAMS
        } else {
            jsonrpc::RESOURCE_NOT_FOUND
        };
        RpcError::new(code, "Resource not found").with_data(json!({"uri": uri}))
    }

    async fn resources_read(
        &self,
        reg: &Registry,
        ctx: &CallCtx,
        params: &Map<String, Value>,
    ) -> Outcome {
        let uri = match str_param(params, "uri") {
            Ok(u) => u,
            Err(e) => return Outcome::err(e),
        };
        let Some(res) = reg.resolve(uri) else {
            return Outcome::err(self.not_found(ctx.modern, uri));
        };
        if !ctx.identity.scope.allows(res.scope) {
            let e = RpcError::invalid_params(format!(
                "Permission denied: reading {uri} requires scope {}",
                res.scope
            ));
            return Outcome {
                status: AuditStatus::Denied,
                ..Outcome::err(e)
            };
        }
        let req = ResourceRequest {
            uri: uri.to_string(),
            vars: res.vars,
            identity: ctx.identity.clone(),
        };
        match (res.handler)(req).await {
            Ok(contents) => Outcome::ok(jsonrpc::json_object([(
                "contents",
                Value::Array(contents.iter().map(|c| c.to_json()).collect()),
            )])),
            Err(ToolError::NotFound(_)) => Outcome::err(self.not_found(ctx.modern, uri)),
            Err(e @ ToolError::InvalidArgument { .. }) => {
                Outcome::err(RpcError::invalid_params(e.to_string()))
            }
            Err(e) => Outcome::err(RpcError::new(jsonrpc::INTERNAL_ERROR, e.to_string())),
        }
    }

    fn subscribe(
        &self,
        reg: &Registry,
        ctx: &CallCtx,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let uri = str_param(params, "uri")?;
        let session = ctx.session.as_ref().ok_or_else(|| {
            RpcError::new(jsonrpc::INVALID_REQUEST, "subscriptions need a session")
        })?;
        if method == "resources/unsubscribe" {
            session.unsubscribe(uri);
            return Ok(json!({}));
        }
        let res = reg.resolve(uri).ok_or_else(|| self.not_found(false, uri))?;
        if !ctx.identity.scope.allows(res.scope) {
            return Err(RpcError::invalid_params(format!(
                "Permission denied: {uri} requires scope {}",
                res.scope
            )));
        }
        if !session.subscribe(uri) {
            return Err(RpcError::invalid_params("too many subscriptions"));
        }
        Ok(json!({}))
    }

    fn prompts_list(
        &self,
        reg: &Registry,
        who: &Identity,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let items = reg
            .prompts()
            .iter()
            .filter(|p| who.scope.allows(p.scope))
            .map(|p| {
                let mut o = Map::new();
                o.insert("name".into(), json!(p.name));
                if let Some(t) = &p.title {
                    o.insert("title".into(), json!(t));
                }
                if let Some(d) = &p.description {
                    o.insert("description".into(), json!(d));
                }
                let args: Vec<Value> = p
                    .arguments
                    .iter()
                    .map(|a| {
                        let mut ao = Map::new();
                        ao.insert("name".into(), json!(a.name));
                        if let Some(t) = &a.title {
                            ao.insert("title".into(), json!(t));
                        }
                        if let Some(d) = &a.description {
                            ao.insert("description".into(), json!(d));
                        }
                        ao.insert("required".into(), json!(a.required));
                        Value::Object(ao)
                    })
                    .collect();
                o.insert("arguments".into(), Value::Array(args));
                Value::Object(o)
            })
            .collect();
        self.paginate("prompts", items, params, "prompts")
    }

    async fn prompts_get(
        &self,
        reg: &Registry,
        who: &Identity,
        params: &Map<String, Value>,
    ) -> Outcome {
        let name = match str_param(params, "name") {
            Ok(n) => n,
            Err(e) => return Outcome::err(e),
        };
        let Some(prompt) = reg.prompt(name).filter(|p| who.scope.allows(p.scope)) else {
            return Outcome::err(RpcError::invalid_params(format!("Unknown prompt: {name}")));
        };
        let mut args = BTreeMap::new();
        match params.get("arguments") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Some(s) = v.as_str() else {
                        return Outcome::err(RpcError::invalid_params(format!(
                            "prompt argument '{k}' must be a string"
                        )));
                    };
                    if !prompt.arguments.iter().any(|a| &a.name == k) {
                        return Outcome::err(RpcError::invalid_params(format!(
                            "unknown prompt argument '{k}'"
                        )));
                    }
                    args.insert(k.clone(), s.to_string());
                }
            }
            Some(_) => {
                return Outcome::err(RpcError::invalid_params("'arguments' must be an object"))
            }
        }
        if let Some(missing) = prompt
            .arguments
            .iter()
            .find(|a| a.required && !args.contains_key(&a.name))
        {
            return Outcome::err(RpcError::invalid_params(format!(
                "missing required argument '{}'",
                missing.name
            )));
        }
        match (prompt.handler)(args, who.clone()).await {
            Ok(messages) => {
                let mut r = Map::new();
                if let Some(d) = &prompt.description {
                    r.insert("description".into(), json!(d));
                }
                r.insert(
                    "messages".into(),
                    Value::Array(messages.iter().map(|m| m.to_json()).collect()),
                );
                Outcome::ok(Value::Object(r))
            }
            Err(e @ ToolError::InvalidArgument { .. }) => {
                Outcome::err(RpcError::invalid_params(e.to_string()))
            }
            Err(e) => Outcome::err(RpcError::new(jsonrpc::INTERNAL_ERROR, e.to_string())),
        }
    }

    fn set_level(&self, ctx: &CallCtx, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let level = str_param(params, "level")?;
        let level = LogLevel::parse(level)
            .ok_or_else(|| RpcError::invalid_params(format!("unknown log level {level:?}")))?;
        if let Some(s) = &ctx.session {
            s.set_log_level(level);
        }
        Ok(json!({}))
    }

    fn complete(
        &self,
        reg: &Registry,
        who: &Identity,
        params: &Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let r = params
            .get("ref")
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::invalid_params("missing 'ref'"))?;
        let arg = params
            .get("argument")
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::invalid_params("missing 'argument'"))?;
        let arg_name = str_param(arg, "name")?;
        let prefix = str_param(arg, "value")?.to_lowercase();
        let candidates: Vec<String> = match r.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = str_param(r, "name")?;
                let p = reg
                    .prompt(name)
                    .filter(|p| who.scope.allows(p.scope))
                    .ok_or_else(|| RpcError::invalid_params(format!("Unknown prompt: {name}")))?;
                p.arguments
                    .iter()
                    .find(|a| a.name == arg_name)
                    .map(|a| a.completions.clone())
                    .unwrap_or_default()
            }
            Some("ref/resource") => {
                let uri = str_param(r, "uri")?;
                let t = reg
                    .template(uri)
                    .filter(|t| who.scope.allows(t.scope))
                    .ok_or_else(|| {
                        RpcError::invalid_params(format!("Unknown resource template: {uri}"))
                    })?;
                t.completions.get(arg_name).cloned().unwrap_or_default()
            }
            _ => {
                return Err(RpcError::invalid_params(
                    "'ref.type' must be ref/prompt or ref/resource",
                ))
            }
        };
        let matching: Vec<String> = candidates
            .into_iter()
            .filter(|c| c.to_lowercase().starts_with(&prefix))
            .collect();
        let total = matching.len();
        let values: Vec<String> = matching.into_iter().take(MAX_COMPLETIONS).collect();
        Ok(json!({"completion": {
            "values": values,
            "total": total,
            "hasMore": total > MAX_COMPLETIONS,
        }}))
    }
}

/// HTTP status of a JSON-RPC error under 2026-07-28 (unknown method 404; client errors 400).
pub fn modern_http_status(code: i64) -> u16 {
    match code {
        jsonrpc::METHOD_NOT_FOUND => 404,
        jsonrpc::PARSE_ERROR
        | jsonrpc::INVALID_REQUEST
        | jsonrpc::INVALID_PARAMS
        | jsonrpc::HEADER_MISMATCH
        | jsonrpc::UNSUPPORTED_PROTOCOL_VERSION
        | -32021 => 400,
        _ => 200,
    }
}

/// One entry of resources/list or resources/templates/list: the address (`uri` or
/// `uriTemplate`), the name, and the optional title, description and MIME type.
fn listing(
    address: (&str, &str),
    name: &str,
    title: Option<&str>,
    description: Option<&str>,
    mime_type: Option<&str>,
) -> Value {
    let mut o = Map::new();
    o.insert(address.0.into(), json!(address.1));
    o.insert("name".into(), json!(name));
    for (key, value) in [
        ("title", title),
        ("description", description),
        ("mimeType", mime_type),
    ] {
        if let Some(v) = value {
            o.insert(key.into(), json!(v));
        }
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_client_version() {
        assert_eq!(negotiate("2025-03-26"), "2025-03-26");
        assert_eq!(negotiate("2024-11-05"), "2024-11-05");
        assert_eq!(negotiate("1999-01-01"), LATEST_HANDSHAKE);
        assert_eq!(negotiate("2026-07-28"), LATEST_HANDSHAKE);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let mut p = Map::new();
        assert_eq!(decode_cursor("tools", &p), Ok(0));
        p.insert("cursor".into(), json!(encode_cursor("tools", 50)));
        assert_eq!(decode_cursor("tools", &p), Ok(50));
        assert!(decode_cursor("prompts", &p).is_err());
        p.insert("cursor".into(), json!("zz"));
        assert_eq!(
            decode_cursor("tools", &p).map_err(|e| e.code),
            Err(jsonrpc::INVALID_PARAMS)
        );
        p.insert("cursor".into(), json!(5));
        assert!(decode_cursor("tools", &p).is_err());
    }

    #[test]
    fn modern_envelope_ladder() {
        let ok: Map<String, Value> = serde_json::from_value(json!({"_meta": {
            META_PROTOCOL_VERSION: "2026-07-28",
            META_CLIENT_CAPABILITIES: {},
            META_LOG_LEVEL: "warning"
        }}))
        .unwrap_or_default();
        assert_eq!(
            modern_envelope(Some(&ok)),
            Ok(ModernEnvelope {
                version: "2026-07-28".into(),
                log_level: Some(LogLevel::Warning)
            })
        );
        let missing: Map<String, Value> =
            serde_json::from_value(json!({"_meta": {META_PROTOCOL_VERSION: "2026-07-28"}}))
                .unwrap_or_default();
        assert_eq!(
            modern_envelope(Some(&missing)).map_err(|e| e.code),
            Err(jsonrpc::INVALID_PARAMS)
        );
        let future: Map<String, Value> = serde_json::from_value(json!({"_meta": {
            META_PROTOCOL_VERSION: "2099-01-01", META_CLIENT_CAPABILITIES: {}
        }}))
        .unwrap_or_default();
        let e = modern_envelope(Some(&future)).err();
        assert_eq!(
            e.as_ref().map(|e| e.code),
            Some(jsonrpc::UNSUPPORTED_PROTOCOL_VERSION)
        );
        assert_eq!(
            e.and_then(|e| e.data).map(|d| d["requested"].clone()),
            Some(json!("2099-01-01"))
        );
        assert!(has_modern_meta(Some(&ok)));
        assert!(!has_modern_meta(None));
    }

    #[test]
    fn modern_status_table() {
        assert_eq!(modern_http_status(jsonrpc::METHOD_NOT_FOUND), 404);
        assert_eq!(modern_http_status(jsonrpc::INVALID_PARAMS), 400);
        assert_eq!(modern_http_status(jsonrpc::INTERNAL_ERROR), 200);
    }
}
