//! [`McpServer`]: the shared state behind every transport (registry, token store and cache,
//! rate limiter, audit sink, sessions, modern subscription listeners) and its public API.

use crate::audit::{AuditEntry, AuditSink, AuditStatus};
use crate::auth::{self, AuthFailure, AuthThrottle, Identity, TokenCache, TokenStore};
use crate::config::McpConfig;
use crate::jsonrpc::notification;
use crate::obs;
use crate::ratelimit::{RateDecision, RateLimiter};
use crate::registry::Registry;
use crate::reuse::ResultCache;
use crate::session::{Session, TransportKind};
use netmonitor_common::Timestamp;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A modern (2026-07-28) `subscriptions/listen` stream.
pub(crate) struct Listener {
    /// JSON-RPC id of the listen request (stamped into every notification's `_meta`).
    pub subscription_id: Value,
    /// Resource URIs opted in to.
    pub resources: Vec<String>,
    /// Opted in to list-changed notifications (tools, prompts, resources).
    pub tools_changed: bool,
    /// Prompts list changes.
    pub prompts_changed: bool,
    /// Resource list changes.
    pub resources_changed: bool,
    /// The token that opened it (its stream closes when the token is revoked).
    pub token_id: Option<i64>,
    /// Sends one message; false once the client is gone.
    pub send: Box<dyn Fn(&Value) -> bool + Send + Sync>,
    /// Whether the client is still connected.
    pub alive: Box<dyn Fn() -> bool + Send + Sync>,
}

/// Transport-level facts recorded with every audit row.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientMeta {
    /// The client's address: the peer, or the address a trusted proxy forwarded for.
    pub client_ip: Option<std::net::IpAddr>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

/// The MCP server: build it once, mount it with [`McpServer::configure`], or serve stdio.
pub struct McpServer {
    pub(crate) config: McpConfig,
    registry: RwLock<Arc<Registry>>,
    tokens: Arc<dyn TokenStore>,
    pub(crate) audit: Arc<dyn AuditSink>,
    token_cache: TokenCache,
    auth_throttle: AuthThrottle,
    /// `rate_limit_enabled`, changeable at run time.
    rate_limits_on: std::sync::atomic::AtomicBool,
    limiter: RateLimiter,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub(crate) listeners: Mutex<Vec<Listener>>,
    pub(crate) results: ResultCache,
    meters: obs::RequestMeters,
}

/// How often sessions and streams are checked against revocation and idleness.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Why a session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManySessions;

impl McpServer {
    /// Builds the server. `config` should have passed [`McpConfig::validate`].
    pub fn new(
        config: McpConfig,
        registry: Registry,
        tokens: Arc<dyn TokenStore>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        if let Err(e) = config.validate() {
            tracing::warn!(error = %e, "MCP configuration did not validate; continuing with it");
        }
        if !config.auth_required {
            tracing::warn!(
                "MCP authentication is DISABLED (MCP_AUTH_REQUIRED=false): every client has admin scope; only allowed on a loopback bind"
            );
        }
        let ttl = Duration::from_secs(config.token_cache_secs);
        let auth_throttle = AuthThrottle::new(config.auth_failures_per_minute);
        let rate_limits_on = std::sync::atomic::AtomicBool::new(config.rate_limit_enabled);
        McpServer {
            auth_throttle,
            rate_limits_on,
            config,
            registry: RwLock::new(Arc::new(registry)),
            tokens,
            audit,
            token_cache: TokenCache::new(ttl),
            limiter: RateLimiter::new(),
            sessions: Mutex::new(HashMap::new()),
            results: ResultCache::default(),
            meters: obs::RequestMeters::default(),
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &McpConfig {
        &self.config
    }

    /// A snapshot of the registry.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the registry (tools added as engine capabilities come up) and tells connected
    /// clients that the tool, prompt and resource lists changed.
    pub fn set_registry(&self, registry: Registry) {
        match self.registry.write() {
            Ok(mut g) => *g = Arc::new(registry),
            Err(p) => *p.into_inner() = Arc::new(registry),
        }
        for method in [
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
        ] {
            let msg = notification(method, json!({}));
            for s in self.all_sessions() {
                self.push_to_session(&s, &msg);
            }
            self.push_to_listeners(&msg, |l| match method {
                "notifications/tools/list_changed" => l.tools_changed,
                "notifications/prompts/list_changed" => l.prompts_changed,
                _ => l.resources_changed,
            });
        }
    }

    /// Tells subscribed clients that `uri` changed (they re-read it): pushed on each subscribed
    /// session's stream (GET stream, legacy SSE stream or stdout) and on modern listen streams.
    pub fn notify_resource_updated(&self, uri: &str) {
        let msg = notification("notifications/resources/updated", json!({"uri": uri}));
        for s in self.all_sessions() {
            if s.is_subscribed(uri) {
                self.push_to_session(&s, &msg);
            }
        }
        self.push_to_listeners(&msg, |l| {
            l.resources
                .iter()
                .any(|sub| crate::session::covers(sub, uri))
        });
    }

    /// Whether per-token rate limits are enforced now.
    pub fn rate_limits_enabled(&self) -> bool {
        self.rate_limits_on
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Switches per-token rate limits on or off at run time; answers the previous state.
    pub fn set_rate_limits_enabled(&self, on: bool) -> bool {
        self.rate_limits_on
            .swap(on, std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets reusable tool results and cached token lookups (`flush_memory`); answers how many
    /// results were dropped.
    pub fn flush_caches(&self) -> usize {
        self.token_cache.clear();
        self.results.clear()
    }

    /// Forgets cached token lookups, so a revocation in this process takes effect at once.
    pub fn forget_cached_tokens(&self) {
        self.token_cache.clear();
    }

    /// Number of live sessions (all transports).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub(crate) fn push_to_session(&self, s: &Arc<Session>, msg: &Value) {
        match s.kind {
            TransportKind::Streamable => {
                s.stream_send(crate::session::GET_STREAM, msg);
            }
            TransportKind::LegacySse | TransportKind::Stdio => {
                s.send_outbound(msg);
            }
        }
    }

    fn push_to_listeners(&self, msg: &Value, wants: impl Fn(&Listener) -> bool) {
        if let Ok(mut ls) = self.listeners.lock() {
            ls.retain(|l| {
                if !wants(l) {
                    return true;
                }
                let mut m = msg.clone();
                if let Some(p) = m.get_mut("params").and_then(Value::as_object_mut) {
                    p.insert(
                        "_meta".into(),
                        json!({ crate::protocol::META_SUBSCRIPTION_ID: l.subscription_id }),
                    );
                }
                (l.send)(&m)
            });
        }
    }

    fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Registers a session, evicting idle ones when at capacity; refuses it when the server or
    /// its token already holds as many as allowed.
    pub(crate) fn insert_session(&self, s: Arc<Session>) -> Result<(), TooManySessions> {
        let mut map = self.sessions.lock().map_err(|_| TooManySessions)?;
        // forget idle sessions (their ids then get 404); at most max_sessions entries to scan
        let idle = self.config.session_idle_secs;
        map.retain(|_, s| {
            let keep =
                s.kind == TransportKind::Stdio || s.has_live_stream() || s.idle_secs() < idle;
            if !keep {
                s.close();
            }
            keep
        });
        if map.len() >= self.config.max_sessions {
            obs::SessionRefused("server").emit();
            return Err(TooManySessions);
        }
        if let Some(token) = s.token_id {
            let held = map.values().filter(|o| o.token_id == Some(token)).count();
            if held >= self.config.max_sessions_per_token {
                obs::SessionRefused("per_token").emit();
                return Err(TooManySessions);
            }
        }
        map.insert(s.id.clone(), s);
        obs::SessionsActive(map.len()).emit();
        Ok(())
    }

    /// A live session of the given transport; expired idle sessions are removed.
    pub(crate) fn get_session(&self, id: &str, kind: TransportKind) -> Option<Arc<Session>> {
        let mut map = self.sessions.lock().ok()?;
        let s = map.get(id)?.clone();
        if s.kind != kind {
            return None;
        }
        if s.kind != TransportKind::Stdio
            && !s.has_live_stream()
            && s.idle_secs() >= self.config.session_idle_secs
        {
            map.remove(id);
            s.close();
            obs::SessionsActive(map.len()).emit();
            return None;
        }
        s.touch();
        Some(s)
    }

    /// Ends a session (DELETE, stream closed).
    pub(crate) fn remove_session(&self, id: &str) -> bool {
        let Ok(mut map) = self.sessions.lock() else {
            return false;
        };
        let removed = map.remove(id);
        obs::SessionsActive(map.len()).emit();
        match removed {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }

    /// Seconds a client must wait because it failed authentication too often this minute.
    pub(crate) fn auth_throttled(&self, client: Option<std::net::IpAddr>) -> Option<u64> {
        self.auth_throttle.blocked(client?, Timestamp::now().secs())
    }

    /// Resolves the caller from an `Authorization` header value; a failure counts against the
    /// client's address. Public so that other endpoints of the service (a guarded `/metrics`)
    /// accept the same tokens.
    pub async fn authenticate(
        &self,
        header: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<Identity, AuthFailure> {
        let result = self.authenticate_header(header).await;
        if let (Err(AuthFailure::Malformed | AuthFailure::Unknown), Some(ip)) = (&result, client) {
            self.auth_throttle.failed(ip, Timestamp::now().secs());
        }
        result
    }

    async fn authenticate_header(&self, header: Option<&str>) -> Result<Identity, AuthFailure> {
        if !self.config.auth_required {
            return Ok(Identity::anonymous(crate::auth::Scope::Admin));
        }
        let secret = auth::parse_bearer(header)?;
        let hash = auth::hash_token(secret);
        let info = match self.token_cache.get(&hash) {
            Some(cached) => cached,
            None => {
                let found = self.tokens.lookup(hash.clone()).await;
                self.token_cache.put(hash, found.clone());
                found
            }
        };
        let info = info.ok_or(AuthFailure::Unknown)?;
        info.check(Timestamp::now().secs())?;
        Ok(Identity::from_token(info))
    }

    /// Counts `messages` JSON-RPC messages against the caller's limits (`None`: unlimited or
    /// limits off); the decision says how many of them may proceed.
    pub(crate) fn rate_check(&self, identity: &Identity, messages: u32) -> Option<RateDecision> {
        if !self.rate_limits_enabled() {
            return None;
        }
        let token = identity.token.as_ref()?;
        self.limiter
            .check_n(token, Timestamp::now().secs(), messages)
    }

    /// Closes what must not stay open: sessions and streams of tokens revoked, expired or
    /// deleted since they were opened (in this process or by `tokens revoke` in another), and
    /// legacy SSE sessions idle past `session_idle_secs` (their stream is always open, so only
    /// their messages tell that a client is still there). Run about once a second.
    pub async fn sweep(&self) {
        let idle = self.config.session_idle_secs;
        let mut ids: Vec<i64> = self
            .all_sessions()
            .iter()
            .filter_map(|s| s.token_id)
            .collect();
        if let Ok(ls) = self.listeners.lock() {
            ids.extend(ls.iter().filter_map(|l| l.token_id));
        }
        ids.sort_unstable();
        ids.dedup();
        let gone = if ids.is_empty() {
            Vec::new()
        } else {
            self.tokens.unusable(ids).await
        };
        if !gone.is_empty() {
            // the next request of those tokens must not be answered from the cache either
            self.token_cache.clear();
        }
        let mut closed = 0usize;
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, s| {
                let revoked = s.token_id.is_some_and(|t| gone.contains(&t));
                let idle_legacy = s.kind == TransportKind::LegacySse && s.idle_secs() >= idle;
                if revoked || idle_legacy {
                    s.close();
                    closed += 1;
                }
                !(revoked || idle_legacy)
            });
            obs::SessionsActive(map.len()).emit();
        }
        if let Ok(mut ls) = self.listeners.lock() {
            let before = ls.len();
            ls.retain(|l| (l.alive)() && !l.token_id.is_some_and(|t| gone.contains(&t)));
            closed += before - ls.len();
        }
        if closed > 0 {
            tracing::info!(
                closed,
                revoked_tokens = gone.len(),
                "closed MCP sessions and streams"
            );
        }
    }

    /// Runs [`McpServer::sweep`] every second on the current runtime, for as long as the
    /// server lives.
    pub fn start_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        actix_rt::spawn(async move {
            loop {
                actix_rt::time::sleep(SWEEP_INTERVAL).await;
                let Some(server) = weak.upgrade() else { return };
                server.sweep().await;
            }
        });
    }

    /// Writes one audit row and the request metrics.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn audit_row(
        &self,
        started: (Timestamp, Instant),
        identity: Option<&Identity>,
        method: &str,
        tool: Option<&str>,
        status: AuditStatus,
        http_status: u16,
        meta: &ClientMeta,
        session_id: Option<&str>,
        error: Option<String>,
    ) {
        self.audit_call(
            started,
            identity,
            method,
            (tool, None),
            status,
            http_status,
            meta,
            session_id,
            error,
        );
    }

    /// [`McpServer::audit_row`] with the tool call's recorded arguments.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn audit_call(
        &self,
        started: (Timestamp, Instant),
        identity: Option<&Identity>,
        method: &str,
        (tool, arguments): (Option<&str>, Option<String>),
        status: AuditStatus,
        http_status: u16,
        meta: &ClientMeta,
        session_id: Option<&str>,
        error: Option<String>,
    ) {
        let elapsed = started.1.elapsed();
        self.meters.handled(method, status, elapsed);
        self.audit.record(AuditEntry {
            ts: started.0,
            token_id: identity.and_then(Identity::token_id),
            token_name: identity
                .map(Identity::token_name)
                .unwrap_or_else(|| "-".to_string()),
            method: crate::audit::cut(method, crate::audit::MAX_AUDIT_TOOL_NAME),
            tool: tool.map(|t| crate::audit::cut(t, crate::audit::MAX_AUDIT_TOOL_NAME)),
            arguments,
            status: status.as_str().to_string(),
            http_status,
            duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            client_addr: meta.client_addr.clone(),
            user_agent: meta.user_agent.clone(),
            session_id: session_id.map(str::to_string),
            error,
        });
    }
}
