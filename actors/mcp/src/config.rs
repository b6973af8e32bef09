//! The MCP server's configuration: a documented serde struct with defaults, unknown fields
//! rejected, a `validate()` step naming the bad field, the seed's environment variables, and the
//! rule that authentication may only be switched off on a loopback bind.

use serde::Deserialize;
use std::net::IpAddr;

/// Largest request body accepted by default (JSON-RPC messages are small; tool arguments too).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Upper bound for `max_body_bytes`, so a typo cannot turn the limit off.
pub const MAX_BODY_BYTES_CEILING: usize = 64 * 1024 * 1024;
/// Smallest allowed `max_body_bytes` (an `initialize` request must fit).
pub const MAX_BODY_BYTES_FLOOR: usize = 1024;
/// Largest page size for list methods.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A configuration value that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MCP configuration: {field}: {message}")]
pub struct ConfigError {
    /// The offending field (as named in the TOML file or environment).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn cfg_err(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        message: message.into(),
    }
}

/// Settings of the MCP endpoint (`[mcp]` in the TOML file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Require `Authorization: Bearer` tokens (MCP_AUTH_REQUIRED). Turning this off is only
    /// accepted on a loopback bind, see [`McpConfig::validate_bind`].
    pub auth_required: bool,
    /// Enforce each token's per-minute/hour/day limits (MCP_RATE_LIMIT_ENABLED).
    pub rate_limit_enabled: bool,
    /// Emit CORS headers for browser clients (MCP_CORS_ENABLED).
    pub cors_enabled: bool,
    /// Origins that get CORS headers; `*` means any (MCP_CORS_ORIGINS, comma separated).
    /// Explicit origins here are also accepted by the DNS-rebinding Origin check; `*` is not.
    pub cors_origins: Vec<String>,
    /// Extra origins accepted by the DNS-rebinding check besides localhost, 127.0.0.1 and [::1]
    /// (e.g. `https://soc.example.com`). `*` disables the check.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// `serverInfo.name`.
    pub server_name: String,
    /// `serverInfo.title`, a display name.
    pub server_title: Option<String>,
    /// `serverInfo.version`.
    pub server_version: String,
    /// `instructions` returned by initialize and server/discover.
    pub instructions: Option<String>,
    /// Items per page for tools/list, resources/list, resources/templates/list, prompts/list.
    pub page_size: usize,
    /// Sessions idle longer than this are forgotten (their id then gets 404).
    pub session_idle_secs: u64,
    /// Most sessions kept at once; beyond it, idle ones are evicted, else 503.
    pub max_sessions: usize,
    /// Most sessions one token may hold at once (all transports); beyond it, 503.
    pub max_sessions_per_token: usize,
    /// Interval of SSE keep-alive comments on long-lived streams.
    pub sse_keepalive_secs: u64,
    /// `retry:` hint (milliseconds) sent with the priming event of a resumable stream.
    pub sse_retry_ms: u64,
    /// Events kept per SSE stream for `Last-Event-ID` resumption.
    pub replay_events_per_stream: usize,
    /// Bytes of SSE frames kept per session for resumption, all its streams together; the
    /// oldest go first.
    pub replay_bytes_per_session: usize,
    /// How long a token lookup is cached, 0 or 1 s: a revocation by `tokens revoke` in another
    /// process takes effect within it, and open streams of the token are closed.
    pub token_cache_secs: u64,
    /// Failed token lookups (unknown or malformed tokens) one client address may cause per
    /// minute; beyond it, 429 without a database lookup.
    pub auth_failures_per_minute: u32,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` is believed: the audit records the
    /// client address they forwarded for. From any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Longest serialized tool arguments recorded in the audit row (longer ones are cut).
    pub audit_arguments_max_bytes: usize,
    /// A tool call running longer than this is abandoned with an `isError` result.
    pub tool_timeout_secs: u64,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            auth_required: true,
            rate_limit_enabled: true,
            cors_enabled: true,
            cors_origins: vec!["*".to_string()],
            allowed_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            server_name: "netmonitor".to_string(),
            server_title: Some("NetMonitor SOC".to_string()),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            instructions: None,
            page_size: 50,
            session_idle_secs: 3600,
            max_sessions: 1000,
            max_sessions_per_token: 32,
            sse_keepalive_secs: 15,
            sse_retry_ms: 3000,
            replay_events_per_stream: 256,
            replay_bytes_per_session: 1 << 20,
            token_cache_secs: 1,
            auth_failures_per_minute: 30,
            trusted_proxies: Vec::new(),
            audit_arguments_max_bytes: 2048,
            tool_timeout_secs: 120,
        }
    }
}

fn parse_bool(field: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(cfg_err(
            field,
            format!("expected true/false, got {other:?}"),
        )),
    }
}

impl McpConfig {
    /// Applies the seed's environment variables (MCP_AUTH_REQUIRED, MCP_RATE_LIMIT_ENABLED,
    /// MCP_CORS_ENABLED, MCP_CORS_ORIGINS); `lookup` is `std::env::var(..).ok()` in production.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = lookup("MCP_AUTH_REQUIRED") {
            self.auth_required = parse_bool("MCP_AUTH_REQUIRED", &v)?;
        }
        if let Some(v) = lookup("MCP_RATE_LIMIT_ENABLED") {
            self.rate_limit_enabled = parse_bool("MCP_RATE_LIMIT_ENABLED", &v)?;
        }
        if let Some(v) = lookup("MCP_CORS_ENABLED") {
            self.cors_enabled = parse_bool("MCP_CORS_ENABLED", &v)?;
        }
        if let Some(v) = lookup("MCP_CORS_ORIGINS") {
            self.cors_origins = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        Ok(())
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MAX_BODY_BYTES_FLOOR..=MAX_BODY_BYTES_CEILING).contains(&self.max_body_bytes) {
            return Err(cfg_err(
                "max_body_bytes",
                format!("must be between {MAX_BODY_BYTES_FLOOR} and {MAX_BODY_BYTES_CEILING}"),
            ));
        }
        if self.server_name.trim().is_empty() {
            return Err(cfg_err("server_name", "must not be empty"));
        }
        if self.server_version.trim().is_empty() {
            return Err(cfg_err("server_version", "must not be empty"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(cfg_err(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if self.session_idle_secs == 0 {
            return Err(cfg_err("session_idle_secs", "must be at least 1"));
        }
        if self.max_sessions == 0 {
            return Err(cfg_err("max_sessions", "must be at least 1"));
        }
        if self.max_sessions_per_token == 0 {
            return Err(cfg_err("max_sessions_per_token", "must be at least 1"));
        }
        if self.token_cache_secs > 1 {
            return Err(cfg_err(
                "token_cache_secs",
                "must be 0 or 1 (a revocation must take effect within a second)",
            ));
        }
        if self.replay_bytes_per_session < 4096 {
            return Err(cfg_err("replay_bytes_per_session", "must be at least 4096"));
        }
        if self.auth_failures_per_minute == 0 {
            return Err(cfg_err("auth_failures_per_minute", "must be at least 1"));
        }
        for p in &self.trusted_proxies {
            if parse_net(p).is_none() {
                return Err(cfg_err(
                    "trusted_proxies",
                    format!("{p:?} is not an address or CIDR"),
                ));
            }
        }
        if self.sse_keepalive_secs == 0 {
            return Err(cfg_err("sse_keepalive_secs", "must be at least 1"));
        }
        if self.tool_timeout_secs == 0 {
            return Err(cfg_err("tool_timeout_secs", "must be at least 1"));
        }
        if self.replay_events_per_stream == 0 {
            return Err(cfg_err("replay_events_per_stream", "must be at least 1"));
        }
        for o in &self.cors_origins {
            if o != "*" && parse_origin(o).is_none() {
                return Err(cfg_err(
                    "cors_origins",
                    format!("{o:?} is not `*` or scheme://host[:port]"),
                ));
            }
        }
        for o in &self.allowed_origins {
            if o != "*" && parse_origin(o).is_none() {
                return Err(cfg_err(
                    "allowed_origins",
                    format!("{o:?} is not `*` or scheme://host[:port]"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses `auth_required = false` unless the server binds a loopback address, so an
    /// unauthenticated MCP endpoint can never be reachable from the network.
    pub fn validate_bind(&self, host: &str) -> Result<(), ConfigError> {
        if self.auth_required || is_loopback_host(host) {
            Ok(())
        } else {
            Err(cfg_err(
                "auth_required",
                format!(
                    "MCP_AUTH_REQUIRED=false is only allowed when bound to loopback, not {host:?}"
                ),
            ))
        }
    }

    /// Whether `peer` is a configured proxy whose `X-Forwarded-For` is believed.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p))
            .any(|n| n.contains(&peer))
    }

    /// Whether an `Origin` header value passes the DNS-rebinding check.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.allowed_origins.iter().any(|o| o == "*") {
            return true;
        }
        let Some((scheme, host, port)) = parse_origin(origin) else {
            return false;
        };
        if (scheme == "http" || scheme == "https") && is_loopback_host(&host) {
            return true;
        }
        let canon = canonical_origin(&scheme, &host, port);
        self.allowed_origins
            .iter()
            .chain(self.cors_origins.iter())
            .filter(|o| o.as_str() != "*")
            .filter_map(|o| parse_origin(o))
            .any(|(s, h, p)| canonical_origin(&s, &h, p) == canon)
    }

    /// The `Access-Control-Allow-Origin` value for a request Origin, if CORS applies.
    pub fn cors_allow_origin(&self, origin: Option<&str>) -> Option<String> {
        if !self.cors_enabled {
            return None;
        }
        let any = self.cors_origins.iter().any(|o| o == "*");
        match origin {
            // CORS headers are read by browsers only, and a browser sends Origin on every
            // cross-origin request: without one there is nobody to tell
            None => None,
            Some(o) => {
                if any {
                    return Some(o.to_string());
                }
                let parsed = parse_origin(o)?;
                let canon = canonical_origin(&parsed.0, &parsed.1, parsed.2);
                self.cors_origins
                    .iter()
                    .filter_map(|c| parse_origin(c))
                    .any(|(s, h, p)| canonical_origin(&s, &h, p) == canon)
                    .then(|| o.to_string())
            }
        }
    }
}

/// An address (as a one-host network) or a CIDR network.
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .map(ipnet::IpNet::from)
        .ok()
        .or_else(|| s.parse().ok())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn canonical_origin(scheme: &str, host: &str, port: Option<u16>) -> String {
    let port = port.or_else(|| default_port(scheme));
    match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Splits `scheme://host[:port]` (no path) into lower-cased parts; IPv6 hosts keep brackets.
pub fn parse_origin(origin: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (inner, tail) = after.split_once(']')?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p.parse::<u16>().ok()?)),
            None => (rest.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host, port))
}

/// Whether a bind host or Origin host is loopback: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    if h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    h.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_fields_are_rejected() {
        assert_eq!(McpConfig::default().validate(), Ok(()));
        let bad: Result<McpConfig, _> = serde_json::from_str(r#"{"auth_requird": false}"#);
        assert!(bad.is_err());
        let ok: Result<McpConfig, _> = serde_json::from_str(r#"{"page_size": 10}"#);
        assert_eq!(ok.map(|c| c.page_size).ok(), Some(10));
    }

    #[test]
    fn validate_names_the_field() {
        let cfg = McpConfig {
            page_size: 0,
            ..McpConfig::default()
        };
        assert_eq!(cfg.validate().map_err(|e| e.field), Err("page_size"));
        let cfg = McpConfig {
            cors_origins: vec!["not an origin".into()],
            ..McpConfig::default()
        };
        assert_eq!(cfg.validate().map_err(|e| e.field), Err("cors_origins"));
    }

    #[test]
    fn auth_off_only_on_loopback() {
        let cfg = McpConfig {
            auth_required: false,
            ..McpConfig::default()
        };
        assert!(cfg.validate_bind("127.0.0.1").is_ok());
        assert!(cfg.validate_bind("127.9.9.9").is_ok());
        assert!(cfg.validate_bind("::1").is_ok());
        assert!(cfg.validate_bind("[::1]").is_ok());
        assert!(cfg.validate_bind("localhost").is_ok());
        assert!(cfg.validate_bind("0.0.0.0").is_err());
        assert!(cfg.validate_bind("192.168.1.10").is_err());
        assert!(McpConfig::default().validate_bind("0.0.0.0").is_ok());
    }

    #[test]
    fn origin_check() {
        let cfg = McpConfig {
            cors_origins: vec!["https://soc.example.com".into()],
            allowed_origins: vec!["http://tools.example.org:8080".into()],
            ..McpConfig::default()
        };
        assert!(cfg.origin_allowed("http://localhost:6274"));
        assert!(cfg.origin_allowed("http://127.0.0.1"));
        assert!(cfg.origin_allowed("http://[::1]:3000"));
        assert!(cfg.origin_allowed("https://soc.example.com:443"));
        assert!(cfg.origin_allowed("http://tools.example.org:8080"));
        assert!(!cfg.origin_allowed("http://tools.example.org"));
        assert!(!cfg.origin_allowed("https://evil.example"));
        assert!(!cfg.origin_allowed("null"));
        assert!(!cfg.origin_allowed("http://localhost.evil.com"));
        // `*` in cors_origins does not disable the DNS-rebinding check
        assert!(!McpConfig::default().origin_allowed("https://evil.example"));
    }

    #[test]
    fn env_overrides() {
        let mut cfg = McpConfig::default();
        let env = |k: &str| match k {
            "MCP_AUTH_REQUIRED" => Some("false".to_string()),
            "MCP_CORS_ORIGINS" => Some("https://a.example, https://b.example".to_string()),
            _ => None,
        };
        assert!(cfg.apply_env(env).is_ok());
        assert!(!cfg.auth_required);
        assert_eq!(cfg.cors_origins.len(), 2);
        let bad = |k: &str| (k == "MCP_CORS_ENABLED").then(|| "maybe".to_string());
        assert_eq!(
            cfg.apply_env(bad).map_err(|e| e.field),
            Err("MCP_CORS_ENABLED")
        );
    }
}
