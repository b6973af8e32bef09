//! The HTTP transports on actix-web: Streamable HTTP at `/mcp` (POST/GET/DELETE/OPTIONS,
//! sessions, batches for 2025-03-26, resumable SSE, the stateless 2026-07-28 mode), the legacy
//! 2024-11-05 HTTP+SSE transport at `/sse` + `/messages`, and `/.well-known/oauth-*` answered
//! 404. Every request passes the same gate: Origin (403), bearer token (401), rate limit (429);
//! then Accept (406), Content-Type (415), size (413), JSON (400) and session (400/404) checks.
//! CORS headers are added to every response, errors included.

// Early-return `Result<_, HttpResponse>` keeps each check next to its status code; the error is
// the response itself and is built at most once per request, so boxing it would gain nothing.
#![allow(clippy::result_large_err)]

use crate::audit::AuditStatus;
use crate::auth::Identity;
use crate::jsonrpc::{self, Message, Reply, RequestId, RpcError};
use crate::protocol::{self, CallCtx, BATCH_VERSION, HANDSHAKE_VERSIONS, MODERN_VERSIONS};
use crate::ratelimit::RateDecision;
use crate::registry::{CancelToken, NotifySink};
use crate::server::{ClientMeta, Listener, McpServer};
use crate::session::{Outbound, Resume, Session, TransportKind, GET_STREAM};
use crate::sse::{self, SseBody, STREAM_CHANNEL_CAPACITY};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use netmonitor_common::Timestamp;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Session header.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Protocol version header.
pub const VERSION_HEADER: &str = "mcp-protocol-version";
/// 2026-07-28 method header.
pub const METHOD_HEADER: &str = "mcp-method";
/// 2026-07-28 name header.
pub const NAME_HEADER: &str = "mcp-name";
/// Realm in `WWW-Authenticate`.
pub const REALM: &str = "netmonitor-mcp";
/// Headers a browser client may read.
const EXPOSE_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset";
/// Headers a browser client may send.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
/// Methods allowed on `/mcp`.
const MCP_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// Preflight cache lifetime (seconds).
const CORS_MAX_AGE: &str = "86400";

/// Per-HTTP-request facts gathered by the gate.
struct HttpCtx {
    started: (Timestamp, Instant),
    label: &'static str,
    meta: ClientMeta,
    allow_origin: Option<String>,
    rate: Option<RateDecision>,
    identity: Option<Identity>,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The media types listed in header `name` (parameters dropped, compared case-insensitively by
/// the callers); `None` when the header is absent. Checked on every request, so nothing is
/// allocated.
fn media_types<'a>(req: &'a HttpRequest, name: &str) -> Option<impl Iterator<Item = &'a str> + 'a> {
    let headers = req.headers();
    headers.get(name)?;
    Some(
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|m| m.split(';').next().unwrap_or("").trim()),
    )
}

/// (accepts JSON, accepts SSE); a missing Accept header accepts both.
fn accepts(req: &HttpRequest) -> (bool, bool) {
    let Some(types) = media_types(req, "accept") else {
        return (true, true);
    };
    let (mut json, mut sse) = (false, false);
    for t in types {
        let is = |name: &str| t.eq_ignore_ascii_case(name);
        let any = is("*/*");
        json |= any || is("application/json") || is("application/*");
        sse |= any || is("text/event-stream") || is("text/*");
    }
    (json, sse)
}

fn content_type_json(req: &HttpRequest) -> bool {
    media_types(req, "content-type")
        .and_then(|mut t| t.next())
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
}

/// Decodes the `=?base64?...?=` sentinel of 2026-07-28 header values.
fn decode_header_value(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        None => Some(v.to_string()),
        Some(b64) => base64_decode(b64).and_then(|b| String::from_utf8(b).ok()),
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    if s.len() & 3 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc: u32 = 0;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let n = chunk.len();
        let b = acc.to_be_bytes();
        if n >= 2 {
            out.push(*b.get(1)?);
        }
        if n >= 3 {
            out.push(*b.get(2)?);
        }
        if n == 4 {
            out.push(*b.get(3)?);
        }
        if n == 1 {
            return None;
        }
    }
    Some(out)
}

/// Serialized JSON as an HTTP response.
fn json_response(status: StatusCode, json: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json)
}

fn sse_response(body: SseBody) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache, no-transform"))
        .insert_header(("x-accel-buffering", "no"))
        .body(body)
}

fn set_header(resp: &mut HttpResponse, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// A sender of serialized messages as stream frames that drops the connection when the client
/// is too slow.
fn frame_sender(tx: mpsc::Sender<Bytes>) -> Outbound {
    let slot = Mutex::new(Some(tx));
    Arc::new(move |msg: &[u8]| {
        let Ok(mut g) = slot.lock() else { return false };
        let ok = g
            .as_ref()
            .map(|tx| tx.try_send(sse::message_frame(None, msg)).is_ok())
            .unwrap_or(false);
        if !ok && g.is_some() {
            crate::obs::SseStreamOverflow.emit();
            *g = None;
        }
        ok
    })
}

impl McpServer {
    /// Mounts `/mcp`, `/sse`, `/messages` and `/.well-known/oauth-*` on an actix-web app.
    pub fn configure(self: &Arc<Self>, cfg: &mut web::ServiceConfig) {
        let post = self.clone();
        let get = self.clone();
        let delete = self.clone();
        let other = self.clone();
        let sse_get = self.clone();
        let msg_post = self.clone();
        let opt1 = self.clone();
        let opt2 = self.clone();
        let opt3 = self.clone();
        let wk = self.clone();
        cfg.service(
            web::resource("/mcp")
                .route(web::post().to(move |req: HttpRequest, body: web::Payload| {
                    let s = post.clone();
                    async move { s.post_mcp(req, body).await }
                }))
                .route(web::get().to(move |req: HttpRequest| {
                    let s = get.clone();
                    async move { s.get_mcp(req).await }
                }))
                .route(web::delete().to(move |req: HttpRequest| {
                    let s = delete.clone();
                    async move { s.delete_mcp(req).await }
                }))
                .route(
                    web::method(actix_web::http::Method::OPTIONS).to(move |req: HttpRequest| {
                        let s = opt1.clone();
                        async move { s.preflight(req, MCP_METHODS) }
                    }),
                )
                .default_service(web::to(move |req: HttpRequest| {
                    let s = other.clone();
                    async move { s.not_allowed(req, MCP_METHODS) }
                })),
        );
        cfg.service(
            web::resource("/sse")
                .route(web::get().to(move |req: HttpRequest| {
                    let s = sse_get.clone();
                    async move { s.get_sse(req).await }
                }))
                .route(web::method(actix_web::http::Method::OPTIONS).to(
                    move |req: HttpRequest| {
                        let s = opt2.clone();
                        async move { s.preflight(req, "GET, OPTIONS") }
                    },
                )),
        );
        cfg.service(
            web::resource("/messages")
                .route(web::post().to(move |req: HttpRequest, body: web::Payload| {
                    let s = msg_post.clone();
                    async move { s.post_messages(req, body).await }
                }))
                .route(web::method(actix_web::http::Method::OPTIONS).to(
                    move |req: HttpRequest| {
                        let s = opt3.clone();
                        async move { s.preflight(req, "POST, OPTIONS") }
                    },
                )),
        );
        cfg.service(
            web::resource("/.well-known/{tail:oauth-.*}").to(move |req: HttpRequest| {
                let s = wk.clone();
                async move { s.well_known(req) }
            }),
        );
    }

    /// The client's address and user agent for audit rows and per-address limits. Behind a
    /// configured proxy, the client is the last `X-Forwarded-For` address that is not itself a
    /// trusted proxy; from any other peer the header is ignored (anyone can send it).
    fn client_meta(&self, req: &HttpRequest) -> ClientMeta {
        let peer = req.peer_addr().map(|a| a.ip());
        let client = match peer {
            Some(p) if self.config.is_trusted_proxy(p) => req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .find(|a| !self.config.is_trusted_proxy(*a))
                .or(peer),
            other => other,
        };
        ClientMeta {
            client_ip: client,
            client_addr: client.map(|a| a.to_string()),
            user_agent: header(req, "user-agent").map(|s| s.chars().take(512).collect()),
        }
    }

    /// Adds CORS and rate-limit headers to any response.
    fn finish(&self, hc: &HttpCtx, mut resp: HttpResponse) -> HttpResponse {
        if let Some(o) = &hc.allow_origin {
            set_header(&mut resp, "access-control-allow-origin", o);
            set_header(&mut resp, "access-control-expose-headers", EXPOSE_HEADERS);
            if o != "*" {
                set_header(&mut resp, "vary", "Origin");
            }
        }
        if let Some(r) = hc.rate {
            let h = resp.headers_mut();
            h.insert(
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from(r.limit),
            );
            h.insert(
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(r.remaining),
            );
            h.insert(
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderValue::from(r.reset_unix),
            );
        }
        resp
    }

    /// A transport-level error: JSON-RPC error body (id null unless known), audited.
    #[allow(clippy::too_many_arguments)]
    fn reject(
        &self,
        hc: &HttpCtx,
        status: StatusCode,
        id: Option<&RequestId>,
        err: RpcError,
        audit: AuditStatus,
        session_id: Option<&str>,
        method: Option<&str>,
    ) -> HttpResponse {
        self.audit_row(
            hc.started,
            hc.identity.as_ref(),
            method.unwrap_or(hc.label),
            None,
            audit,
            status.as_u16(),
            &hc.meta,
            session_id,
            Some(err.message.clone()),
        );
        self.finish(hc, json_response(status, Reply::error(id, &err).json))
    }

    fn bad(msg: &str) -> RpcError {
        RpcError::new(jsonrpc::SERVER_ERROR, msg)
    }

    /// Origin (403), token (401) and rate limit (429).
    async fn gate(&self, req: &HttpRequest, label: &'static str) -> Result<HttpCtx, HttpResponse> {
        let origin = header(req, "origin");
        let mut hc = HttpCtx {
            started: (Timestamp::now(), Instant::now()),
            label,
            meta: self.client_meta(req),
            allow_origin: self.config.cors_allow_origin(origin),
            rate: None,
            identity: None,
        };
        if let Some(o) = origin {
            if !self.config.origin_allowed(o) {
                hc.allow_origin = None;
                return Err(self.reject(
                    &hc,
                    StatusCode::FORBIDDEN,
                    None,
                    Self::bad("Forbidden: Origin not allowed"),
                    AuditStatus::Denied,
                    None,
                    None,
                ));
            }
        }
        // Authentication may be off only on a loopback bind; a request that came through a
        // proxy would make that endpoint reachable from the network, so it is refused.
        if !self.config.auth_required
            && ["x-forwarded-for", "forwarded", "x-real-ip"]
                .iter()
                .any(|h| req.headers().contains_key(*h))
        {
            return Err(self.reject(
                &hc,
                StatusCode::FORBIDDEN,
                None,
                Self::bad("Forbidden: authentication is off, so proxied requests are refused"),
                AuditStatus::Denied,
                None,
                None,
            ));
        }
        if let Some(wait) = self.auth_throttled(hc.meta.client_ip) {
            let mut resp = self.reject(
                &hc,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                Self::bad(&format!(
                    "Too many failed authentications from this address; retry in {wait} s"
                )),
                AuditStatus::RateLimited,
                None,
                None,
            );
            set_header(&mut resp, "retry-after", &wait.to_string());
            return Err(resp);
        }
        match self
            .authenticate(header(req, "authorization"), hc.meta.client_ip)
            .await
        {
            Ok(id) => hc.identity = Some(id),
            Err(f) => {
                let mut resp = self.reject(
                    &hc,
                    StatusCode::UNAUTHORIZED,
                    None,
                    Self::bad(&format!("Unauthorized: {}", f.describe())),
                    AuditStatus::Unauthorized,
                    None,
                    None,
                );
                set_header(&mut resp, "www-authenticate", &f.www_authenticate(REALM));
                return Err(resp);
            }
        }
        if let Some(identity) = &hc.identity {
            if let Some(decision) = self.rate_check(identity, 1) {
                hc.rate = Some(decision);
                if !decision.allowed {
                    let mut resp = self.reject(
                        &hc,
                        StatusCode::TOO_MANY_REQUESTS,
                        None,
                        Self::bad(&format!(
                            "Rate limit exceeded: {} requests per window; retry in {} s",
                            decision.limit, decision.retry_after_secs
                        )),
                        AuditStatus::RateLimited,
                        None,
                        None,
                    );
                    set_header(
                        &mut resp,
                        "retry-after",
                        &decision.retry_after_secs.to_string(),
                    );
                    return Err(resp);
                }
            }
        }
        Ok(hc)
    }

    fn preflight(&self, req: HttpRequest, methods: &str) -> HttpResponse {
        let origin = header(&req, "origin");
        if let Some(o) = origin {
            if !self.config.origin_allowed(o) {
                return HttpResponse::Forbidden().finish();
            }
        }
        let mut resp = HttpResponse::NoContent().finish();
        if let Some(o) = self.config.cors_allow_origin(origin) {
            set_header(&mut resp, "access-control-allow-origin", &o);
            set_header(&mut resp, "access-control-allow-methods", methods);
            set_header(&mut resp, "access-control-allow-headers", ALLOW_HEADERS);
            set_header(&mut resp, "access-control-expose-headers", EXPOSE_HEADERS);
            set_header(&mut resp, "access-control-max-age", CORS_MAX_AGE);
            if o != "*" {
                set_header(&mut resp, "vary", "Origin");
            }
        }
        resp
    }

    fn not_allowed(&self, req: HttpRequest, methods: &str) -> HttpResponse {
        let hc = HttpCtx {
            started: (Timestamp::now(), Instant::now()),
            label: "other",
            meta: self.client_meta(&req),
            allow_origin: self.config.cors_allow_origin(header(&req, "origin")),
            rate: None,
            identity: None,
        };
        let mut resp = self.finish(
            &hc,
            json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                Reply::error(None, &Self::bad("Method Not Allowed")).json,
            ),
        );
        set_header(&mut resp, "allow", methods);
        resp
    }

    fn well_known(&self, req: HttpRequest) -> HttpResponse {
        let hc = HttpCtx {
            started: (Timestamp::now(), Instant::now()),
            label: "other",
            meta: self.client_meta(&req),
            allow_origin: self.config.cors_allow_origin(header(&req, "origin")),
            rate: None,
            identity: None,
        };
        self.finish(
            &hc,
            json_response(
                StatusCode::NOT_FOUND,
                jsonrpc::encode(&json!({"error": "not_found", "error_description": "this server does not use OAuth; send a bearer token created with `netmonitor tokens create`"})),
            ),
        )
    }

    /// The request's JSON body: 415 unless it is declared JSON, then the size limit (413) and
    /// the parse (-32700), each as a ready, audited response on failure.
    async fn json_body(
        &self,
        hc: &HttpCtx,
        req: &HttpRequest,
        payload: web::Payload,
        session_id: Option<&str>,
    ) -> Result<Value, HttpResponse> {
        if !content_type_json(req) {
            return Err(self.reject(
                hc,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                Self::bad("Unsupported Media Type: Content-Type must be application/json"),
                AuditStatus::Error,
                session_id,
                None,
            ));
        }
        let body = self.read_body(hc, req, payload).await?;
        self.parse_json(hc, &body)
    }

    /// Reads the body within the size limit; 413/400 as a ready response on failure.
    async fn read_body(
        &self,
        hc: &HttpCtx,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> Result<Bytes, HttpResponse> {
        let limit = self.config.max_body_bytes;
        let declared = header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let too_big = || {
            self.reject(
                hc,
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                Self::bad(&format!("Payload Too Large: limit is {limit} bytes")),
                AuditStatus::Error,
                None,
                None,
            )
        };
        if declared.map(|n| n > limit as u64).unwrap_or(false) {
            return Err(too_big());
        }
        match payload.to_bytes_limited(limit).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(_)) => Err(too_big()),
            Err(_) => Err(self.reject(
                hc,
                StatusCode::BAD_REQUEST,
                None,
                Self::bad("Bad Request: could not read the request body"),
                AuditStatus::Error,
                None,
                None,
            )),
        }
    }

    fn parse_json(&self, hc: &HttpCtx, body: &[u8]) -> Result<Value, HttpResponse> {
        serde_json::from_slice::<Value>(body).map_err(|e| {
            self.reject(
                hc,
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(jsonrpc::PARSE_ERROR, format!("Parse error: {e}")),
                AuditStatus::Error,
                None,
                None,
            )
        })
    }

    /// Finds the session named by the request (400 missing, 404 unknown or another token's).
    fn session_for(
        &self,
        hc: &HttpCtx,
        id: Option<&str>,
        kind: TransportKind,
        method: Option<&str>,
    ) -> Result<Arc<Session>, HttpResponse> {
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return Err(self.reject(
                hc,
                StatusCode::BAD_REQUEST,
                None,
                Self::bad("Bad Request: Mcp-Session-Id header is required"),
                AuditStatus::Error,
                None,
                method,
            ));
        };
        let token_id = hc.identity.as_ref().and_then(Identity::token_id);
        match self.get_session(id, kind) {
            Some(s) if s.token_id == token_id => Ok(s),
            _ => Err(self.reject(
                hc,
                StatusCode::NOT_FOUND,
                None,
                RpcError::new(jsonrpc::SESSION_NOT_FOUND, "Session not found"),
                AuditStatus::Error,
                Some(id),
                method,
            )),
        }
    }

    async fn post_mcp(self: Arc<Self>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
        let hc = match self.gate(&req, "POST /mcp").await {
            Ok(hc) => hc,
            Err(r) => return r,
        };
        let (acc_json, acc_sse) = accepts(&req);
        if !acc_json && !acc_sse {
            return self.reject(
                &hc,
                StatusCode::NOT_ACCEPTABLE,
                None,
                Self::bad(
                    "Not Acceptable: Client must accept application/json and text/event-stream",
                ),
                AuditStatus::Error,
                None,
                None,
            );
        }
        let value = match self.json_body(&hc, &req, payload, None).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let version_hdr = header(&req, VERSION_HEADER).map(str::trim);
        let session_hdr = header(&req, SESSION_HEADER).map(str::trim);
        if let Some(v) = version_hdr {
            if MODERN_VERSIONS.contains(&v) {
                return self.post_modern(hc, &req, value, (acc_json, acc_sse)).await;
            }
            if !HANDSHAKE_VERSIONS.contains(&v) {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    None,
                    protocol::unsupported_version_error(v),
                    AuditStatus::Error,
                    session_hdr,
                    None,
                );
            }
        } else if session_hdr.is_none() {
            let modern_body = value
                .as_object()
                .filter(|o| o.get("method").and_then(Value::as_str) != Some("initialize"))
                .map(|o| protocol::has_modern_meta(o.get("params").and_then(Value::as_object)))
                .unwrap_or(false);
            if modern_body {
                return self.post_modern(hc, &req, value, (acc_json, acc_sse)).await;
            }
            let initialize = value.get("method").and_then(Value::as_str) == Some("initialize");
            if value.is_object() && !initialize {
                return self.post_sessionless(hc, value).await;
            }
        }
        match value {
            Value::Array(items) => self.post_batch(hc, session_hdr, items).await,
            single => {
                self.post_single(hc, session_hdr, single, (acc_json, acc_sse))
                    .await
            }
        }
    }

    /// A request with neither a session nor a protocol-version header (the seed's documented
    /// `curl ... tools/list` line, and any stateless client) is served statelessly, as the
    /// specification allows: no session is created and the answer is JSON. Sessions keep
    /// working for clients that initialize.
    async fn post_sessionless(self: Arc<Self>, hc: HttpCtx, value: Value) -> HttpResponse {
        let (id, method, params) = match jsonrpc::classify(value) {
            Err(inv) => {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    inv.id.as_ref(),
                    inv.error,
                    AuditStatus::Error,
                    None,
                    None,
                )
            }
            Ok(Message::Request { id, method, params }) => (id, method, params),
            Ok(Message::Notification { method, .. }) => {
                self.audit_row(
                    hc.started,
                    hc.identity.as_ref(),
                    &method,
                    None,
                    AuditStatus::Ok,
                    202,
                    &hc.meta,
                    None,
                    None,
                );
                return self.finish(&hc, HttpResponse::Accepted().finish());
            }
            Ok(Message::Response) => return self.finish(&hc, HttpResponse::Accepted().finish()),
        };
        let ctx = CallCtx {
            identity: hc
                .identity
                .clone()
                .unwrap_or_else(|| Identity::anonymous(crate::auth::Scope::ReadOnly)),
            session: None,
            modern: false,
            sink: None,
            log_level: None,
            cancel: Arc::new(CancelToken::new()),
            meta: hc.meta.clone(),
        };
        match self.run_request(&ctx, &id, &method, params).await {
            Some(resp) => self.finish(&hc, json_response(StatusCode::OK, resp.json)),
            None => self.finish(&hc, HttpResponse::Accepted().finish()),
        }
    }

    async fn post_batch(
        self: Arc<Self>,
        hc: HttpCtx,
        session_hdr: Option<&str>,
        items: Vec<Value>,
    ) -> HttpResponse {
        if items.is_empty() {
            return self.reject(
                &hc,
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(jsonrpc::INVALID_REQUEST, "Invalid Request: empty batch"),
                AuditStatus::Error,
                None,
                Some("batch"),
            );
        }
        let session =
            match self.session_for(&hc, session_hdr, TransportKind::Streamable, Some("batch")) {
                Ok(s) => s,
                Err(r) => return r,
            };
        if session.version() != BATCH_VERSION {
            return self.reject(
                &hc,
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(
                    jsonrpc::INVALID_REQUEST,
                    format!("Invalid Request: JSON-RPC batches are only supported in protocol version {BATCH_VERSION}"),
                ),
                AuditStatus::Error,
                Some(&session.id),
                Some("batch"),
            );
        }
        let identity = hc
            .identity
            .clone()
            .unwrap_or_else(|| Identity::anonymous(crate::auth::Scope::ReadOnly));
        // Limits count messages: the request itself was counted as one by the gate.
        let extra = u32::try_from(items.len() - 1).unwrap_or(u32::MAX);
        let mut allowed = items.len();
        let mut hc = hc;
        if extra > 0 {
            if let Some(d) = self.rate_check(&identity, extra) {
                allowed = 1 + d.granted as usize;
                hc.rate = Some(d);
            }
        }
        let mut responses = Vec::new();
        for (n, item) in items.into_iter().enumerate() {
            let started = (Timestamp::now(), Instant::now());
            if n >= allowed {
                let d = hc.rate.unwrap_or(crate::ratelimit::RateDecision {
                    allowed: false,
                    granted: 0,
                    limit: 0,
                    remaining: 0,
                    reset_unix: 0,
                    retry_after_secs: 1,
                });
                let err = Self::bad(&format!(
                    "Rate limit exceeded: {} messages per window; retry in {} s",
                    d.limit, d.retry_after_secs
                ));
                let (id, method) = match jsonrpc::classify(item) {
                    Ok(Message::Request { id, method, .. }) => (Some(id), method),
                    Ok(Message::Notification { method, .. }) => (None, method),
                    _ => (None, "batch".to_string()),
                };
                self.audit_row(
                    started,
                    Some(&identity),
                    &method,
                    None,
                    AuditStatus::RateLimited,
                    200,
                    &hc.meta,
                    Some(&session.id),
                    Some(err.message.clone()),
                );
                if let Some(id) = id {
                    responses.push(Reply::error(Some(&id), &err));
                }
                continue;
            }
            match jsonrpc::classify(item) {
                Err(inv) => {
                    self.audit_row(
                        started,
                        Some(&identity),
                        "batch",
                        None,
                        AuditStatus::Error,
                        200,
                        &hc.meta,
                        Some(&session.id),
                        Some(inv.error.message.clone()),
                    );
                    responses.push(Reply::error(inv.id.as_ref(), &inv.error))
                }
                Ok(Message::Response) => {}
                Ok(Message::Notification { method, params }) => {
                    self.handle_notification(Some(&session), &method, params.as_ref());
                    self.audit_row(
                        started,
                        Some(&identity),
                        &method,
                        None,
                        AuditStatus::Ok,
                        200,
                        &hc.meta,
                        Some(&session.id),
                        None,
                    );
                }
                Ok(Message::Request { id, method, params }) => {
                    if method == "initialize" {
                        responses.push(Reply::error(
                            Some(&id),
                            &RpcError::new(
                                jsonrpc::INVALID_REQUEST,
                                "Invalid Request: initialize must not be part of a batch",
                            ),
                        ));
                        continue;
                    }
                    let ctx = CallCtx {
                        identity: identity.clone(),
                        session: Some(session.clone()),
                        modern: false,
                        sink: None,
                        log_level: session.log_level(),
                        cancel: Arc::new(CancelToken::new()),
                        meta: hc.meta.clone(),
                    };
                    if let Some(r) = self.run_request(&ctx, &id, &method, params).await {
                        responses.push(r);
                    }
                }
            }
        }
        if responses.is_empty() {
            self.finish(&hc, HttpResponse::Accepted().finish())
        } else {
            let batch = jsonrpc::encode_batch(&responses);
            self.finish(&hc, json_response(StatusCode::OK, batch))
        }
    }

    async fn post_single(
        self: Arc<Self>,
        hc: HttpCtx,
        session_hdr: Option<&str>,
        value: Value,
        (acc_json, acc_sse): (bool, bool),
    ) -> HttpResponse {
        let msg = match jsonrpc::classify(value) {
            Ok(m) => m,
            Err(inv) => {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    inv.id.as_ref(),
                    inv.error,
                    AuditStatus::Error,
                    session_hdr,
                    None,
                )
            }
        };
        let (id, method, params) = match msg {
            Message::Response => {
                if session_hdr.is_some() {
                    if let Err(r) = self.session_for(
                        &hc,
                        session_hdr,
                        TransportKind::Streamable,
                        Some("response"),
                    ) {
                        return r;
                    }
                }
                return self.finish(&hc, HttpResponse::Accepted().finish());
            }
            Message::Notification { method, params } => {
                let session = match self.session_for(
                    &hc,
                    session_hdr,
                    TransportKind::Streamable,
                    Some(&method),
                ) {
                    Ok(s) => s,
                    Err(r) => return r,
                };
                self.handle_notification(Some(&session), &method, params.as_ref());
                self.audit_row(
                    hc.started,
                    hc.identity.as_ref(),
                    &method,
                    None,
                    AuditStatus::Ok,
                    202,
                    &hc.meta,
                    Some(&session.id),
                    None,
                );
                return self.finish(&hc, HttpResponse::Accepted().finish());
            }
            Message::Request { id, method, params } => (id, method, params),
        };
        if method == "initialize" {
            return self.initialize_http(hc, session_hdr, id, params, (acc_json, acc_sse));
        }
        let session =
            match self.session_for(&hc, session_hdr, TransportKind::Streamable, Some(&method)) {
                Ok(s) => s,
                Err(r) => return r,
            };
        let identity = hc
            .identity
            .clone()
            .unwrap_or_else(|| Identity::anonymous(crate::auth::Scope::ReadOnly));
        let log_level = session.log_level();
        let wants_progress = params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .map(|m| m.get("progressToken").is_some())
            .unwrap_or(false);
        let needs_stream = method == "tools/call" && (wants_progress || log_level.is_some());
        let use_sse = acc_sse && (needs_stream || !acc_json);
        if !use_sse {
            let ctx = CallCtx {
                identity,
                session: Some(session.clone()),
                modern: false,
                sink: None,
                log_level,
                cancel: Arc::new(CancelToken::new()),
                meta: hc.meta.clone(),
            };
            return match self.run_request(&ctx, &id, &method, params).await {
                Some(resp) => self.finish(&hc, json_response(StatusCode::OK, resp.json)),
                None => self.finish(&hc, HttpResponse::Accepted().finish()),
            };
        }
        // SSE response on a resumable POST stream of this session
        let stream = session.open_stream();
        let cap = STREAM_CHANNEL_CAPACITY.max(self.config.replay_events_per_stream + 16);
        let (tx, rx) = mpsc::channel(cap);
        if session.version().as_str() >= "2025-11-25" {
            let pid = session.reserve_event_id(stream);
            let _ = tx.try_send(sse::priming_frame(&pid, self.config.sse_retry_ms));
        }
        let gen = session.attach(stream, tx);
        let s_drop = session.clone();
        let body = SseBody::new(
            rx,
            Duration::from_secs(self.config.sse_keepalive_secs),
            Some(Box::new(move || s_drop.detach(stream, gen))),
        );
        let s_sink = session.clone();
        let sink: NotifySink = Arc::new(move |m: Value| {
            s_sink.stream_send(stream, &m);
        });
        let ctx = CallCtx {
            identity,
            session: Some(session.clone()),
            modern: false,
            sink: Some(sink),
            log_level,
            cancel: Arc::new(CancelToken::new()),
            meta: hc.meta.clone(),
        };
        let server = self.clone();
        actix_rt::spawn(async move {
            if let Some(resp) = server.run_request(&ctx, &id, &method, params).await {
                session.stream_send_json(stream, &resp.json);
            }
            session.finish_stream(stream);
        });
        self.finish(&hc, sse_response(body))
    }

    fn initialize_http(
        &self,
        hc: HttpCtx,
        session_hdr: Option<&str>,
        id: RequestId,
        params: Option<Map<String, Value>>,
        (acc_json, acc_sse): (bool, bool),
    ) -> HttpResponse {
        if session_hdr.is_some() {
            return self.reject(
                &hc,
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(jsonrpc::INVALID_REQUEST, "Invalid Request: session already initialized; initialize without Mcp-Session-Id"),
                AuditStatus::Error,
                session_hdr,
                Some("initialize"),
            );
        }
        let (version, result) = match self.initialize_result(params.as_ref()) {
            Ok(x) => x,
            Err(e) => {
                self.audit_row(
                    hc.started,
                    hc.identity.as_ref(),
                    "initialize",
                    None,
                    AuditStatus::Error,
                    200,
                    &hc.meta,
                    None,
                    Some(e.message.clone()),
                );
                return self.finish(
                    &hc,
                    json_response(StatusCode::OK, Reply::error(Some(&id), &e).json),
                );
            }
        };
        let token_id = hc.identity.as_ref().and_then(Identity::token_id);
        let session = Arc::new(
            Session::new(
                TransportKind::Streamable,
                version,
                token_id,
                self.config.replay_events_per_stream,
            )
            .with_replay_bytes(self.config.replay_bytes_per_session),
        );
        session.mark_initialized();
        let sid = session.id.clone();
        if self.insert_session(session).is_err() {
            return self.reject(
                &hc,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Self::bad("Service Unavailable: too many sessions"),
                AuditStatus::Error,
                None,
                Some("initialize"),
            );
        }
        self.audit_row(
            hc.started,
            hc.identity.as_ref(),
            "initialize",
            None,
            AuditStatus::Ok,
            200,
            &hc.meta,
            Some(&sid),
            None,
        );
        let reply = Reply::result(&id, &jsonrpc::ResultBody::Value(result));
        let mut resp = if acc_json || !acc_sse {
            json_response(StatusCode::OK, reply.json)
        } else {
            let (tx, rx) = mpsc::channel(4);
            let _ = tx.try_send(sse::message_frame(None, &reply.json));
            drop(tx);
            sse_response(SseBody::new(
                rx,
                Duration::from_secs(self.config.sse_keepalive_secs),
                None,
            ))
        };
        set_header(&mut resp, SESSION_HEADER, &sid);
        self.finish(&hc, resp)
    }

    /// 2026-07-28: one stateless request per POST, envelope in `_meta`, headers mirrored.
    async fn post_modern(
        self: Arc<Self>,
        hc: HttpCtx,
        req: &HttpRequest,
        value: Value,
        (acc_json, acc_sse): (bool, bool),
    ) -> HttpResponse {
        if value.is_array() {
            return self.reject(
                &hc,
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(
                    jsonrpc::INVALID_REQUEST,
                    "Invalid Request: batches are not supported in this protocol version",
                ),
                AuditStatus::Error,
                None,
                None,
            );
        }
        let (id, method, params) = match jsonrpc::classify(value) {
            Err(inv) => {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    inv.id.as_ref(),
                    inv.error,
                    AuditStatus::Error,
                    None,
                    None,
                )
            }
            Ok(Message::Request { id, method, params }) => (id, method, params),
            Ok(_) => return self.finish(&hc, HttpResponse::Accepted().finish()),
        };
        let env = protocol::modern_envelope(params.as_ref());
        if let Err(e) = &env {
            if e.code == jsonrpc::INVALID_PARAMS {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    Some(&id),
                    e.clone(),
                    AuditStatus::Error,
                    None,
                    Some(&method),
                );
            }
        }
        // header rungs
        let body_version = params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get(protocol::META_PROTOCOL_VERSION))
            .and_then(Value::as_str);
        let mismatch = |what: String| {
            self.reject(
                &hc,
                StatusCode::BAD_REQUEST,
                Some(&id),
                RpcError::new(jsonrpc::HEADER_MISMATCH, format!("Header mismatch: {what}")),
                AuditStatus::Error,
                None,
                Some(&method),
            )
        };
        if header(req, VERSION_HEADER).map(str::trim) != body_version {
            return mismatch("MCP-Protocol-Version header does not match params._meta".into());
        }
        if header(req, METHOD_HEADER).map(str::trim) != Some(method.as_str()) {
            return mismatch("Mcp-Method header does not match the request method".into());
        }
        let name_key = match method.as_str() {
            "tools/call" | "prompts/get" => Some("name"),
            "resources/read" => Some("uri"),
            _ => None,
        };
        if let Some(k) = name_key {
            let body_name = params
                .as_ref()
                .and_then(|p| p.get(k))
                .and_then(Value::as_str);
            if let Some(bn) = body_name {
                let hdr = header(req, NAME_HEADER).and_then(decode_header_value);
                if hdr.as_deref() != Some(bn) {
                    return mismatch(format!("Mcp-Name header does not match params.{k}"));
                }
            }
        }
        let env = match env {
            Ok(e) => e,
            Err(e) => {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    Some(&id),
                    e,
                    AuditStatus::Error,
                    None,
                    Some(&method),
                )
            }
        };
        let identity = hc
            .identity
            .clone()
            .unwrap_or_else(|| Identity::anonymous(crate::auth::Scope::ReadOnly));
        if method == "subscriptions/listen" {
            return self.listen(hc, id, params, identity);
        }
        let wants_progress = params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .map(|m| m.get("progressToken").is_some())
            .unwrap_or(false);
        let needs_stream = method == "tools/call" && (wants_progress || env.log_level.is_some());
        let use_sse = acc_sse && (needs_stream || !acc_json);
        let cancel = Arc::new(CancelToken::new());
        if !use_sse {
            let ctx = CallCtx {
                identity,
                session: None,
                modern: true,
                sink: None,
                log_level: env.log_level,
                cancel,
                meta: hc.meta.clone(),
            };
            return match self.run_request(&ctx, &id, &method, params).await {
                Some(resp) => {
                    let status = resp
                        .error_code
                        .map(protocol::modern_http_status)
                        .unwrap_or(200);
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    self.finish(&hc, json_response(status, resp.json))
                }
                None => self.finish(&hc, HttpResponse::Accepted().finish()),
            };
        }
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
        let send = frame_sender(tx);
        let c_drop = cancel.clone();
        let body = SseBody::new(
            rx,
            Duration::from_secs(self.config.sse_keepalive_secs),
            Some(Box::new(move || c_drop.cancel())),
        );
        let s2 = send.clone();
        let sink: NotifySink = Arc::new(move |m: Value| {
            s2(&jsonrpc::encode(&m));
        });
        let ctx = CallCtx {
            identity,
            session: None,
            modern: true,
            sink: Some(sink),
            log_level: env.log_level,
            cancel,
            meta: hc.meta.clone(),
        };
        let server = self.clone();
        actix_rt::spawn(async move {
            if let Some(resp) = server.run_request(&ctx, &id, &method, params).await {
                send(&resp.json);
            }
        });
        self.finish(&hc, sse_response(body))
    }

    /// 2026-07-28 `subscriptions/listen`: a long-lived SSE response carrying the opted-in
    /// change notifications.
    fn listen(
        &self,
        hc: HttpCtx,
        id: RequestId,
        params: Option<Map<String, Value>>,
        identity: Identity,
    ) -> HttpResponse {
        let filter = params
            .as_ref()
            .and_then(|p| p.get("notifications"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let flag = |k: &str| filter.get(k).and_then(Value::as_bool).unwrap_or(false);
        let reg = self.registry();
        let resources: Vec<String> = filter
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|u| {
                        reg.resolve(u)
                            .map(|r| identity.scope.allows(r.scope))
                            .unwrap_or(false)
                    })
                    .take(crate::session::MAX_SUBSCRIPTIONS)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut accepted = Map::new();
        for k in [
            "toolsListChanged",
            "promptsListChanged",
            "resourcesListChanged",
        ] {
            if flag(k) {
                accepted.insert(k.into(), json!(true));
            }
        }
        if !resources.is_empty() {
            accepted.insert("resourceSubscriptions".into(), json!(resources));
        }
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
        let alive_tx = tx.clone();
        let send = frame_sender(tx);
        let ack = json!({
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": {
                "notifications": Value::Object(accepted),
                "_meta": {protocol::META_SUBSCRIPTION_ID: id.to_value()},
            }
        });
        send(&jsonrpc::encode(&ack));
        let listener = Listener {
            token_id: identity.token_id(),
            subscription_id: id.to_value(),
            resources,
            tools_changed: flag("toolsListChanged"),
            prompts_changed: flag("promptsListChanged"),
            resources_changed: flag("resourcesListChanged"),
            send: Box::new(move |m: &Value| send(&jsonrpc::encode(m))),
            alive: Box::new(move || !alive_tx.is_closed()),
        };
        if let Ok(mut ls) = self.listeners.lock() {
            ls.retain(|l| (l.alive)());
            ls.push(listener);
        }
        self.audit_row(
            hc.started,
            Some(&identity),
            "subscriptions/listen",
            None,
            AuditStatus::Ok,
            200,
            &hc.meta,
            None,
            None,
        );
        let body = SseBody::new(
            rx,
            Duration::from_secs(self.config.sse_keepalive_secs),
            None,
        );
        self.finish(&hc, sse_response(body))
    }

    async fn get_mcp(self: Arc<Self>, req: HttpRequest) -> HttpResponse {
        let hc = match self.gate(&req, "GET /mcp").await {
            Ok(hc) => hc,
            Err(r) => return r,
        };
        let version_hdr = header(&req, VERSION_HEADER).map(str::trim);
        if let Some(v) = version_hdr {
            if MODERN_VERSIONS.contains(&v) {
                let mut resp = self.reject(
                    &hc,
                    StatusCode::METHOD_NOT_ALLOWED,
                    None,
                    Self::bad("Method Not Allowed: protocol version 2026-07-28 has no GET stream; use subscriptions/listen"),
                    AuditStatus::Error,
                    None,
                    None,
                );
                set_header(&mut resp, "allow", "POST");
                return resp;
            }
            if !HANDSHAKE_VERSIONS.contains(&v) {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    None,
                    protocol::unsupported_version_error(v),
                    AuditStatus::Error,
                    None,
                    None,
                );
            }
        }
        let (_, acc_sse) = accepts(&req);
        if !acc_sse || media_types(&req, "accept").is_none() {
            return self.reject(
                &hc,
                StatusCode::NOT_ACCEPTABLE,
                None,
                Self::bad("Not Acceptable: Client must accept text/event-stream"),
                AuditStatus::Error,
                None,
                None,
            );
        }
        let session = match self.session_for(
            &hc,
            header(&req, SESSION_HEADER).map(str::trim),
            TransportKind::Streamable,
            None,
        ) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let cap = STREAM_CHANNEL_CAPACITY.max(self.config.replay_events_per_stream + 16);
        let (tx, rx) = mpsc::channel(cap);
        let keepalive = Duration::from_secs(self.config.sse_keepalive_secs);
        if let Some(last) = header(&req, "last-event-id")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if let Resume::Replay(live) = session.resume(last, tx.clone()) {
                let stream = Session::stream_of(last).unwrap_or(GET_STREAM);
                drop(tx);
                let on_drop: Option<sse::OnDrop> = live.map(|gen| {
                    let s = session.clone();
                    Box::new(move || s.detach(stream, gen)) as sse::OnDrop
                });
                self.audit_row(
                    hc.started,
                    hc.identity.as_ref(),
                    "GET /mcp",
                    None,
                    AuditStatus::Ok,
                    200,
                    &hc.meta,
                    Some(&session.id),
                    None,
                );
                return self.finish(&hc, sse_response(SseBody::new(rx, keepalive, on_drop)));
            }
        }
        if session.version().as_str() >= "2025-11-25" {
            let pid = session.reserve_event_id(GET_STREAM);
            let _ = tx.try_send(sse::priming_frame(&pid, self.config.sse_retry_ms));
        }
        let Some(gen) = session.attach_exclusive(GET_STREAM, tx) else {
            return self.reject(
                &hc,
                StatusCode::CONFLICT,
                None,
                Self::bad("Conflict: Only one SSE stream is allowed per session"),
                AuditStatus::Error,
                Some(&session.id),
                None,
            );
        };
        self.audit_row(
            hc.started,
            hc.identity.as_ref(),
            "GET /mcp",
            None,
            AuditStatus::Ok,
            200,
            &hc.meta,
            Some(&session.id),
            None,
        );
        let s = session.clone();
        let body = SseBody::new(
            rx,
            keepalive,
            Some(Box::new(move || s.detach(GET_STREAM, gen))),
        );
        self.finish(&hc, sse_response(body))
    }

    async fn delete_mcp(self: Arc<Self>, req: HttpRequest) -> HttpResponse {
        let hc = match self.gate(&req, "DELETE /mcp").await {
            Ok(hc) => hc,
            Err(r) => return r,
        };
        let session = match self.session_for(
            &hc,
            header(&req, SESSION_HEADER).map(str::trim),
            TransportKind::Streamable,
            None,
        ) {
            Ok(s) => s,
            Err(r) => return r,
        };
        self.remove_session(&session.id);
        self.audit_row(
            hc.started,
            hc.identity.as_ref(),
            "DELETE /mcp",
            None,
            AuditStatus::Ok,
            200,
            &hc.meta,
            Some(&session.id),
            None,
        );
        self.finish(&hc, HttpResponse::Ok().finish())
    }

    /// Legacy 2024-11-05 transport: the SSE stream announcing the POST endpoint.
    async fn get_sse(self: Arc<Self>, req: HttpRequest) -> HttpResponse {
        let hc = match self.gate(&req, "GET /sse").await {
            Ok(hc) => hc,
            Err(r) => return r,
        };
        let (_, acc_sse) = accepts(&req);
        if !acc_sse {
            return self.reject(
                &hc,
                StatusCode::NOT_ACCEPTABLE,
                None,
                Self::bad("Not Acceptable: Client must accept text/event-stream"),
                AuditStatus::Error,
                None,
                None,
            );
        }
        let token_id = hc.identity.as_ref().and_then(Identity::token_id);
        let session = Arc::new(
            Session::new(
                TransportKind::LegacySse,
                "2024-11-05",
                token_id,
                self.config.replay_events_per_stream,
            )
            .with_replay_bytes(self.config.replay_bytes_per_session),
        );
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
        let _ = tx.try_send(sse::endpoint_frame(&format!(
            "/messages?sessionId={}",
            session.id
        )));
        let send = frame_sender(tx);
        session.set_outbound(Arc::new(move |m: &[u8]| send(m)));
        let sid = session.id.clone();
        if self.insert_session(session).is_err() {
            return self.reject(
                &hc,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Self::bad("Service Unavailable: too many sessions"),
                AuditStatus::Error,
                None,
                None,
            );
        }
        self.audit_row(
            hc.started,
            hc.identity.as_ref(),
            "GET /sse",
            None,
            AuditStatus::Ok,
            200,
            &hc.meta,
            Some(&sid),
            None,
        );
        let server = self.clone();
        let sid2 = sid.clone();
        let body = SseBody::new(
            rx,
            Duration::from_secs(self.config.sse_keepalive_secs),
            Some(Box::new(move || {
                server.remove_session(&sid2);
            })),
        );
        self.finish(&hc, sse_response(body))
    }

    /// Legacy 2024-11-05 transport: a client message; answered 202, replies go on the stream.
    async fn post_messages(
        self: Arc<Self>,
        req: HttpRequest,
        payload: web::Payload,
    ) -> HttpResponse {
        let hc = match self.gate(&req, "POST /messages").await {
            Ok(hc) => hc,
            Err(r) => return r,
        };
        let sid = req
            .query_string()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "sessionId" || *k == "session_id")
            .and_then(|(_, v)| crate::uritemplate::pct_decode(v, true));
        let session = match sid.as_deref() {
            None => {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    None,
                    Self::bad("Bad Request: sessionId query parameter is required"),
                    AuditStatus::Error,
                    None,
                    None,
                )
            }
            Some(id) => match self.session_for(&hc, Some(id), TransportKind::LegacySse, None) {
                Ok(s) => s,
                Err(r) => return r,
            },
        };
        let value = match self.json_body(&hc, &req, payload, Some(&session.id)).await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let msg = match jsonrpc::classify(value) {
            Ok(m) => m,
            Err(inv) => {
                return self.reject(
                    &hc,
                    StatusCode::BAD_REQUEST,
                    inv.id.as_ref(),
                    inv.error,
                    AuditStatus::Error,
                    Some(&session.id),
                    None,
                )
            }
        };
        let identity = hc
            .identity
            .clone()
            .unwrap_or_else(|| Identity::anonymous(crate::auth::Scope::ReadOnly));
        match msg {
            Message::Response => {}
            Message::Notification { method, params } => {
                self.handle_notification(Some(&session), &method, params.as_ref());
                self.audit_row(
                    hc.started,
                    Some(&identity),
                    &method,
                    None,
                    AuditStatus::Ok,
                    202,
                    &hc.meta,
                    Some(&session.id),
                    None,
                );
            }
            Message::Request { id, method, params } => {
                let server = self.clone();
                let meta = hc.meta.clone();
                actix_rt::spawn(async move {
                    let resp = server
                        .session_request(&session, identity, meta, &id, &method, params)
                        .await;
                    if let Some(r) = resp {
                        session.send_outbound_json(&r.json);
                    }
                });
            }
        }
        self.finish(&hc, HttpResponse::Accepted().body("Accepted"))
    }

    /// A request on a legacy SSE or stdio session (they negotiate after the session exists);
    /// notifications and the reply go on the session's outbound channel.
    pub(crate) async fn session_request(
        &self,
        session: &Arc<Session>,
        identity: Identity,
        meta: ClientMeta,
        id: &RequestId,
        method: &str,
        params: Option<Map<String, Value>>,
    ) -> Option<Reply> {
        let started = (Timestamp::now(), Instant::now());
        if method == "initialize" && !session.is_initialized() {
            let r = self.initialize_result(params.as_ref());
            let (status, err) = match &r {
                Ok(_) => (AuditStatus::Ok, None),
                Err(e) => (AuditStatus::Error, Some(e.message.clone())),
            };
            self.audit_row(
                started,
                Some(&identity),
                "initialize",
                None,
                status,
                200,
                &meta,
                Some(&session.id),
                err,
            );
            return Some(match r {
                Ok((version, result)) => {
                    session.set_version(version);
                    session.mark_initialized();
                    Reply::result(id, &jsonrpc::ResultBody::Value(result))
                }
                Err(e) => Reply::error(Some(id), &e),
            });
        }
        let modern =
            session.kind == TransportKind::Stdio && protocol::has_modern_meta(params.as_ref());
        let mut log_level = session.log_level();
        if modern {
            match protocol::modern_envelope(params.as_ref()) {
                Ok(env) => log_level = env.log_level,
                Err(e) => return Some(Reply::error(Some(id), &e)),
            }
        }
        let s2 = session.clone();
        let sink: NotifySink = Arc::new(move |m: Value| {
            s2.send_outbound(&m);
        });
        let ctx = CallCtx {
            identity,
            session: Some(session.clone()),
            modern,
            sink: Some(sink),
            log_level,
            cancel: Arc::new(CancelToken::new()),
            meta,
        };
        self.run_request(&ctx, id, method, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_sentinel_decoding() {
        assert_eq!(
            decode_header_value("get_weather").as_deref(),
            Some("get_weather")
        );
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Some("Hello, 世界")
        );
        assert_eq!(
            decode_header_value("=?base64?IHBhZGRlZCA=?=").as_deref(),
            Some(" padded ")
        );
        assert_eq!(decode_header_value("=?base64?!!!?="), None);
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64_decode("YWJ"), None);
    }
}
