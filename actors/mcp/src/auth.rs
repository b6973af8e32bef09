//! Bearer tokens: generation (shown once), SHA-256 hashing (the only form stored), scopes
//! (read_only < read_write < admin), the pluggable [`TokenStore`] and a short positive cache so
//! the hot path does no database round trip.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Prefix of every generated token, so leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "nmt_";
/// Random characters after the prefix (43 × 6 bits = 258 bits of entropy).
pub const TOKEN_RANDOM_CHARS: usize = 43;
/// Cached lookups kept at most; the cache is emptied when full.
pub const MAX_TOKEN_CACHE_ENTRIES: usize = 10_000;
/// How long a failed lookup is remembered (limits store load from guessing clients).
pub const NEGATIVE_CACHE: Duration = Duration::from_secs(5);

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// What a token may do. Ordered: a tool needing `ReadWrite` is callable by `ReadWrite` and
/// `Admin` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// View data only.
    ReadOnly,
    /// View and modify data.
    ReadWrite,
    /// Everything, including configuration and destructive actions.
    Admin,
}

impl Scope {
    /// The stored/config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadOnly => "read_only",
            Scope::ReadWrite => "read_write",
            Scope::Admin => "admin",
        }
    }

    /// Whether a holder of `self` may use something that needs `required`.
    pub fn allows(self, required: Scope) -> bool {
        self >= required
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope string that is not one of `read_only`, `read_write`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?} (expected read_only, read_write or admin)")]
pub struct ScopeParseError(pub String);

impl FromStr for Scope {
    type Err = ScopeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "read_only" => Ok(Scope::ReadOnly),
            "read_write" => Ok(Scope::ReadWrite),
            "admin" => Ok(Scope::Admin),
            other => Err(ScopeParseError(other.to_string())),
        }
    }
}

/// A token as the store knows it (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Database id (audit rows refer to it).
    pub id: i64,
    /// Human label ("Claude Desktop").
    pub name: String,
    /// What the token may do.
    pub scope: Scope,
    /// Requests allowed per minute (`None` = unlimited).
    pub rate_per_minute: Option<u32>,
    /// Requests allowed per hour.
    pub rate_per_hour: Option<u32>,
    /// Requests allowed per day.
    pub rate_per_day: Option<u32>,
    /// Expiry, Unix seconds.
    pub expires_at: Option<i64>,
    /// Revoked tokens are refused.
    pub revoked: bool,
}

/// Why a request was not authenticated (all answered 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`, or an implausible token.
    Malformed,
    /// No such token.
    Unknown,
    /// Past `expires_at`.
    Expired,
    /// Revoked.
    Revoked,
}

impl AuthFailure {
    /// Short text for the error body and the audit row.
    pub fn describe(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing bearer token",
            AuthFailure::Malformed => "malformed Authorization header",
            AuthFailure::Unknown => "invalid token",
            AuthFailure::Expired => "token expired",
            AuthFailure::Revoked => "token revoked",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3: no error code when no credentials were sent).
    pub fn www_authenticate(self, realm: &str) -> String {
        match self {
            AuthFailure::Missing => format!("Bearer realm=\"{realm}\""),
            other => format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                other.describe()
            ),
        }
    }
}

impl TokenInfo {
    /// Refuses revoked and expired tokens.
    pub fn check(&self, now_unix: i64) -> Result<(), AuthFailure> {
        if self.revoked {
            return Err(AuthFailure::Revoked);
        }
        match self.expires_at {
            Some(exp) if exp <= now_unix => Err(AuthFailure::Expired),
            _ => Ok(()),
        }
    }
}

/// The caller a request runs as: a token, or anonymous when authentication is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token, `None` when `auth_required = false` (or stdio without a token).
    pub token: Option<TokenInfo>,
    /// Effective scope.
    pub scope: Scope,
}

impl Identity {
    /// Full access without a token (auth disabled on loopback, or a trusted stdio parent).
    pub fn anonymous(scope: Scope) -> Self {
        Identity { token: None, scope }
    }

    /// Runs as a token.
    pub fn from_token(token: TokenInfo) -> Self {
        Identity {
            scope: token.scope,
            token: Some(token),
        }
    }

    /// Token id for audit rows.
    pub fn token_id(&self) -> Option<i64> {
        self.token.as_ref().map(|t| t.id)
    }

    /// Token name for audit rows ("anonymous" without one).
    pub fn token_name(&self) -> String {
        self.token
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "anonymous".to_string())
    }
}

/// A boxed `Send` future, so stores can be implemented without async-trait.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where tokens live (PostgreSQL in production, a map in tests). Looked up by SHA-256 hex of the
/// secret; the secret itself is never stored.
pub trait TokenStore: Send + Sync + 'static {
    /// The token with this hash, revoked and expired ones included (the server checks them).
    fn lookup(&self, token_hash: String) -> BoxFuture<Option<TokenInfo>>;

    /// Which of these token ids may no longer be used (revoked, expired or deleted), so the
    /// server can close their open sessions and streams. Asked about once a second.
    fn unusable(&self, ids: Vec<i64>) -> BoxFuture<Vec<i64>>;
}

/// Generates a new token secret: `nmt_` + 43 URL-safe random characters (shown once).
pub fn generate_token() -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS);
    s.push_str(TOKEN_PREFIX);
    for _ in 0..TOKEN_RANDOM_CHARS {
        if let Some(c) = URL_SAFE.choose(&mut rng) {
            s.push(char::from(*c));
        }
    }
    s
}

/// SHA-256 of the secret, lower-case hex: the only form of a token that is stored.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Extracts the bearer secret from an `Authorization` header value. A value that cannot be one
/// of our tokens (wrong prefix, length or alphabet) is refused here, before any hashing or
/// lookup, so guessing costs the store nothing.
pub fn parse_bearer(header: Option<&str>) -> Result<&str, AuthFailure> {
    let h = header.ok_or(AuthFailure::Missing)?;
    let (scheme, rest) = h.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::Malformed);
    }
    let token = rest.trim();
    if !is_token_shaped(token) {
        return Err(AuthFailure::Malformed);
    }
    Ok(token)
}

/// `nmt_` followed by exactly [`TOKEN_RANDOM_CHARS`] URL-safe characters.
pub fn is_token_shaped(token: &str) -> bool {
    token.len() == TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS
        && token.starts_with(TOKEN_PREFIX)
        && token.as_bytes()[TOKEN_PREFIX.len()..]
            .iter()
            .all(|b| URL_SAFE.contains(b))
}

/// Counts failed authentications per client address in one-minute windows, so a client that
/// guesses tokens is answered 429 without reaching the token store.
pub struct AuthThrottle {
    per_minute: u32,
    failures: Mutex<HashMap<std::net::IpAddr, (i64, u32)>>,
}

/// Client addresses remembered at most; the oldest windows are forgotten first when full.
const MAX_THROTTLED_ADDRS: usize = 65_536;

impl AuthThrottle {
    /// A throttle allowing `per_minute` failures per address.
    pub fn new(per_minute: u32) -> Self {
        AuthThrottle {
            per_minute,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `addr` may try again, when it used up its failures this minute.
    pub fn blocked(&self, addr: std::net::IpAddr, now_unix: i64) -> Option<u64> {
        let map = self.failures.lock().ok()?;
        let (start, n) = *map.get(&addr)?;
        let window = now_unix - now_unix.rem_euclid(60);
        (start == window && n >= self.per_minute)
            .then(|| u64::try_from(window + 60 - now_unix).unwrap_or(1).max(1))
    }

    /// Counts one failure of `addr`.
    pub fn failed(&self, addr: std::net::IpAddr, now_unix: i64) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        let window = now_unix - now_unix.rem_euclid(60);
        if map.len() >= MAX_THROTTLED_ADDRS && !map.contains_key(&addr) {
            map.retain(|_, (start, _)| *start == window);
            if map.len() >= MAX_THROTTLED_ADDRS {
                map.clear();
            }
        }
        let e = map.entry(addr).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

/// A small TTL cache in front of the [`TokenStore`].
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Option<TokenInfo>, Instant)>>,
}

impl TokenCache {
    /// A cache keeping positive answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A cached answer still fresh: `Some(Some(info))` known token, `Some(None)` known-bad.
    pub fn get(&self, hash: &str) -> Option<Option<TokenInfo>> {
        let map = self.entries.lock().ok()?;
        let (info, at) = map.get(hash)?;
        let ttl = if info.is_some() {
            self.ttl
        } else {
            NEGATIVE_CACHE.min(self.ttl)
        };
        (at.elapsed() < ttl).then(|| info.clone())
    }

    /// Remembers a lookup result.
    pub fn put(&self, hash: String, info: Option<TokenInfo>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_TOKEN_CACHE_ENTRIES {
                map.clear();
            }
            map.insert(hash, (info, Instant::now()));
        }
    }

    /// Forgets everything (e.g. after a revocation in the same process).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_prefix_length_and_alphabet() {
        let t = generate_token();
        assert!(t.starts_with("nmt_"));
        assert_eq!(t.len(), 4 + 43);
        assert!(t[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(generate_token(), t);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // FIPS 180-2 test vector "abc"
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scopes_are_ordered_and_parse() {
        assert!(Scope::Admin.allows(Scope::ReadWrite));
        assert!(Scope::ReadWrite.allows(Scope::ReadOnly));
        assert!(!Scope::ReadOnly.allows(Scope::ReadWrite));
        assert_eq!("read_write".parse::<Scope>(), Ok(Scope::ReadWrite));
        assert!("root".parse::<Scope>().is_err());
        assert_eq!(Scope::Admin.to_string(), "admin");
    }

    #[test]
    fn bearer_parsing() {
        let t = generate_token();
        assert_eq!(parse_bearer(Some(&format!("Bearer {t}"))), Ok(t.as_str()));
        assert_eq!(
            parse_bearer(Some(&format!("bearer   {t} "))),
            Ok(t.as_str())
        );
        // not one of ours: wrong prefix, length or alphabet
        assert_eq!(
            parse_bearer(Some("Bearer abc")),
            Err(AuthFailure::Malformed)
        );
        let other = format!("Bearer xyz_{}", &t[4..]);
        assert_eq!(parse_bearer(Some(&other)), Err(AuthFailure::Malformed));
        let short = format!("Bearer {}", &t[..t.len() - 1]);
        assert_eq!(parse_bearer(Some(&short)), Err(AuthFailure::Malformed));
        let odd = format!("Bearer {}.", &t[..t.len() - 1]);
        assert_eq!(parse_bearer(Some(&odd)), Err(AuthFailure::Malformed));
        assert_eq!(parse_bearer(None), Err(AuthFailure::Missing));
        assert_eq!(parse_bearer(Some("Basic abc")), Err(AuthFailure::Malformed));
        assert_eq!(parse_bearer(Some("Bearer ")), Err(AuthFailure::Malformed));
        let long = format!("Bearer {t}{}", "a".repeat(600));
        assert_eq!(parse_bearer(Some(&long)), Err(AuthFailure::Malformed));
    }

    #[test]
    fn failures_are_throttled_per_address_and_minute() {
        let th = AuthThrottle::new(3);
        let a: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let b: std::net::IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(th.blocked(a, 120), None);
            th.failed(a, 120);
        }
        assert_eq!(th.blocked(a, 150), Some(30));
        assert_eq!(th.blocked(b, 150), None);
        assert_eq!(th.blocked(a, 180), None, "a new minute");
    }

    #[test]
    fn expiry_and_revocation() {
        let mut t = TokenInfo {
            id: 1,
            name: "t".into(),
            scope: Scope::ReadOnly,
            rate_per_minute: None,
            rate_per_hour: None,
            rate_per_day: None,
            expires_at: Some(100),
            revoked: false,
        };
        assert_eq!(t.check(99), Ok(()));
        assert_eq!(t.check(100), Err(AuthFailure::Expired));
        t.revoked = true;
        assert_eq!(t.check(0), Err(AuthFailure::Revoked));
    }

    #[test]
    fn cache_expires_entries() {
        let c = TokenCache::new(Duration::from_millis(0));
        c.put("h".into(), None);
        assert_eq!(c.get("h"), None);
        let c = TokenCache::new(Duration::from_secs(30));
        c.put("h".into(), None);
        assert_eq!(c.get("h"), Some(None));
        c.clear();
        assert_eq!(c.get("h"), None);
    }
}
