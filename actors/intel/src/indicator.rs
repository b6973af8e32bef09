//! Indicators of compromise: their kinds, and the one normalisation every feed format, the
//! matcher and `check_indicator` share (so `EVIL.example.` in a feed matches `evil.example` on
//! the wire, and `10.1.2.3/8` is stored as `10.0.0.0/8`).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What an indicator names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    /// One IPv4 or IPv6 address.
    Ip,
    /// An address block (longest prefix wins).
    Cidr,
    /// A domain and every name below it.
    Domain,
    /// A URL (scheme and host lower-cased).
    Url,
    /// JA3 client fingerprint (MD5, hex).
    Ja3,
    /// JA3S server fingerprint (MD5, hex).
    Ja3s,
    /// JA4 client fingerprint.
    Ja4,
    /// SHA-1 of a certificate (DER), hex.
    CertSha1,
    /// SHA-256 of a certificate (DER), hex.
    CertSha256,
    /// MD5 of a file.
    Md5,
    /// SHA-1 of a file.
    Sha1,
    /// SHA-256 of a file.
    Sha256,
}

impl IndicatorKind {
    /// Every kind, in a stable order.
    pub const ALL: [IndicatorKind; 12] = [
        IndicatorKind::Ip,
        IndicatorKind::Cidr,
        IndicatorKind::Domain,
        IndicatorKind::Url,
        IndicatorKind::Ja3,
        IndicatorKind::Ja3s,
        IndicatorKind::Ja4,
        IndicatorKind::CertSha1,
        IndicatorKind::CertSha256,
        IndicatorKind::Md5,
        IndicatorKind::Sha1,
        IndicatorKind::Sha256,
    ];

    /// Position in [`IndicatorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name stored in the database and shown by the tools.
    pub fn name(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Ja3 => "ja3",
            IndicatorKind::Ja3s => "ja3s",
            IndicatorKind::Ja4 => "ja4",
            IndicatorKind::CertSha1 => "cert_sha1",
            IndicatorKind::CertSha256 => "cert_sha256",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Sha256 => "sha256",
        }
    }

    /// The kind named `name` (as [`IndicatorKind::name`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Hex digest length of hash kinds.
    fn hex_len(self) -> Option<usize> {
        match self {
            IndicatorKind::Ja3 | IndicatorKind::Ja3s | IndicatorKind::Md5 => Some(32),
            IndicatorKind::CertSha1 | IndicatorKind::Sha1 => Some(40),
            IndicatorKind::CertSha256 | IndicatorKind::Sha256 => Some(64),
            _ => None,
        }
    }
}

/// One indicator as a feed states it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// What it names.
    pub kind: IndicatorKind,
    /// Normalised value ([`normalize`]).
    pub value: String,
    /// 0–100; the feed's confidence when the entry states none.
    pub confidence: Option<u8>,
    /// Not to be matched after this time (microseconds since the epoch).
    pub valid_until: Option<i64>,
    /// When the source says it first saw it (microseconds since the epoch).
    pub first_seen: Option<i64>,
    /// Why it is listed (malware family, SBL id, STIX name).
    pub description: Option<String>,
    /// Labels (STIX labels, URLhaus tags, Zeek meta.source).
    pub tags: Vec<String>,
}

impl Indicator {
    /// An indicator with only its kind and normalised value.
    pub fn new(kind: IndicatorKind, value: String) -> Self {
        Indicator {
            kind,
            value,
            confidence: None,
            valid_until: None,
            first_seen: None,
            description: None,
            tags: Vec::new(),
        }
    }

    /// Sets the description (empty text means none).
    pub fn described(mut self, text: &str) -> Self {
        let t = text.trim();
        if !t.is_empty() {
            self.description = Some(t.to_owned());
        }
        self
    }
}

/// Why a value is not a valid indicator of its kind.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadIndicator {
    /// Not an address.
    #[error("not an IP address: {0:?}")]
    Ip(String),
    /// Not a prefix.
    #[error("not a CIDR block: {0:?}")]
    Cidr(String),
    /// Not a domain name.
    #[error("not a domain name: {0:?}")]
    Domain(String),
    /// Not an absolute URL.
    #[error("not a URL: {0:?}")]
    Url(String),
    /// Not a digest of the expected length.
    #[error("not a {kind} digest: {value:?}")]
    Hash {
        /// The kind.
        kind: &'static str,
        /// The value.
        value: String,
    },
    /// Not a JA4 fingerprint.
    #[error("not a JA4 fingerprint: {0:?}")]
    Ja4(String),
}

/// The normalised form of `raw` as an indicator of `kind`: addresses canonical, CIDRs reduced to
/// their network address (a /32 or /128 becomes an `Ip`-shaped block and stays a CIDR), domains
/// lower-cased without a trailing dot, URL scheme and host lower-cased, digests lower-case hex
/// without separators.
pub fn normalize(kind: IndicatorKind, raw: &str) -> Result<String, BadIndicator> {
    let raw = raw.trim();
    match kind {
        IndicatorKind::Ip => raw
            .parse::<IpAddr>()
            .map(|a| a.to_string())
            .map_err(|_| BadIndicator::Ip(raw.to_owned())),
        IndicatorKind::Cidr => parse_cidr(raw)
            .map(|(a, len)| format!("{a}/{len}"))
            .ok_or_else(|| BadIndicator::Cidr(raw.to_owned())),
        IndicatorKind::Domain => {
            normalize_domain(raw).ok_or_else(|| BadIndicator::Domain(raw.to_owned()))
        }
        IndicatorKind::Url => normalize_url(raw).ok_or_else(|| BadIndicator::Url(raw.to_owned())),
        IndicatorKind::Ja4 => {
            let v = raw.to_ascii_lowercase();
            let ok = v.len() == 36
                && v.as_bytes().get(10) == Some(&b'_')
                && v.as_bytes().get(23) == Some(&b'_')
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ok {
                Ok(v)
            } else {
                Err(BadIndicator::Ja4(raw.to_owned()))
            }
        }
        _ => {
            let want = kind.hex_len().unwrap_or(0);
            let hex: String = raw
                .chars()
                .filter(|c| *c != ':' && *c != ' ')
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if hex.len() == want && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(hex)
            } else {
                Err(BadIndicator::Hash {
                    kind: kind.name(),
                    value: raw.to_owned(),
                })
            }
        }
    }
}

/// `a.b/len` → (network address, len); host bits are cleared. A bare address is not a CIDR.
pub fn parse_cidr(raw: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = raw.trim().split_once('/')?;
    let addr: IpAddr = addr.trim().parse().ok()?;
    let len: u8 = len.trim().parse().ok()?;
    match addr {
        IpAddr::V4(a) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some((IpAddr::V4((u32::from(a) & mask).into()), len))
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some((IpAddr::V6((u128::from(a) & mask).into()), len))
        }
        _ => None,
    }
}

/// A domain name lower-cased, without a trailing dot or a leading `*.`; `None` unless it has
/// at least two labels of letters, digits, `-` and `_`, each 1–63 bytes, 253 in all.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let d = raw.trim().trim_end_matches('.');
    let d = d.strip_prefix("*.").unwrap_or(d).to_ascii_lowercase();
    if d.is_empty() || d.len() > 253 || d.parse::<IpAddr>().is_ok() {
        return None;
    }
    let mut labels = 0;
    for l in d.split('.') {
        let ok = !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
        labels += 1;
    }
    (labels >= 2).then_some(d)
}

/// `scheme://host[:port]/path?query`: scheme and host lower-cased, a default port dropped, an
/// empty path made `/`, the fragment dropped. `None` unless the scheme is http, https or ftp.
pub fn normalize_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        "ftp" => "21",
        _ => return None,
    };
    let rest = rest.split('#').next().unwrap_or("");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    // Drop userinfo.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return None;
    }
    let mut host = authority.to_ascii_lowercase();
    if let Some(h) = host.strip_suffix(&format!(":{default_port}")) {
        host = h.to_owned();
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Some(format!("{scheme}://{host}{path}"))
}

/// The kind of a bare entry of a plain list: an address, a block, a URL or a domain.
pub fn classify(raw: &str) -> Option<(IndicatorKind, String)> {
    let raw = raw.trim();
    if raw.parse::<IpAddr>().is_ok() {
        return normalize(IndicatorKind::Ip, raw)
            .ok()
            .map(|v| (IndicatorKind::Ip, v));
    }
    if raw.contains('/') && !raw.contains("://") {
        return normalize(IndicatorKind::Cidr, raw)
            .ok()
            .map(|v| (IndicatorKind::Cidr, v));
    }
    if raw.contains("://") {
        return normalize_url(raw).map(|v| (IndicatorKind::Url, v));
    }
    normalize_domain(raw).map(|v| (IndicatorKind::Domain, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_every_kind() {
        assert_eq!(
            normalize(IndicatorKind::Ip, " 10.0.0.1 ").unwrap(),
            "10.0.0.1"
        );
        assert_eq!(
            normalize(IndicatorKind::Ip, "2001:DB8::1").unwrap(),
            "2001:db8::1"
        );
        assert_eq!(
            normalize(IndicatorKind::Cidr, "10.1.2.3/8").unwrap(),
            "10.0.0.0/8"
        );
        assert_eq!(
            normalize(IndicatorKind::Cidr, "2001:db8::1/32").unwrap(),
            "2001:db8::/32"
        );
        assert!(normalize(IndicatorKind::Cidr, "10.0.0.0/33").is_err());
        assert!(normalize(IndicatorKind::Cidr, "10.0.0.0").is_err());
        assert_eq!(
            normalize(IndicatorKind::Domain, "*.EVIL.example.").unwrap(),
            "evil.example"
        );
        assert!(normalize(IndicatorKind::Domain, "localhost").is_err());
        assert!(normalize(IndicatorKind::Domain, "a..b").is_err());
        assert!(normalize(IndicatorKind::Domain, "1.2.3.4").is_err());
        assert_eq!(
            normalize(IndicatorKind::Url, "HTTP://Evil.Example:80").unwrap(),
            "http://evil.example/"
        );
        assert_eq!(
            normalize(IndicatorKind::Url, "https://u:p@A.b:8443/x?y=1#frag").unwrap(),
            "https://a.b:8443/x?y=1"
        );
        assert!(normalize(IndicatorKind::Url, "javascript:alert(1)").is_err());
        assert_eq!(
            normalize(
                IndicatorKind::CertSha1,
                "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
            )
            .unwrap(),
            "abcdef0123456789abcdef0123456789abcdef01"
        );
        assert!(normalize(IndicatorKind::Ja3, "abc").is_err());
        assert_eq!(
            normalize(IndicatorKind::Ja4, "T13D1516H2_8daaf6152771_e5627efa2ab1").unwrap(),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
    }

    #[test]
    fn classifies_plain_entries() {
        assert_eq!(classify("1.2.3.4").unwrap().0, IndicatorKind::Ip);
        assert_eq!(classify("1.2.3.0/24").unwrap().0, IndicatorKind::Cidr);
        assert_eq!(classify("evil.example").unwrap().0, IndicatorKind::Domain);
        assert_eq!(
            classify("http://evil.example/x").unwrap().0,
            IndicatorKind::Url
        );
        assert!(classify("not a thing").is_none());
        for k in IndicatorKind::ALL {
            assert_eq!(IndicatorKind::from_name(k.name()), Some(k));
        }
    }
}
