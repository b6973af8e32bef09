//! From matches to alerts: which fields of which events are looked up, which alert kind a
//! match raises, and the two memories that keep one indicator from flooding the alert stream
//! (once per flow, and once per client within a window of packet time).

use crate::indicator::{normalize_url, IndicatorKind};
use crate::matcher::{lower_name, FeedMatchers, Match};
use netmonitor_common::{Alert, Event, EventKind};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Keys each dedup memory holds at most; it is cleared when full (old entries matter little).
const MAX_KEYS: usize = 200_000;

/// An alert kind raised by the feeds.
struct Rule {
    sid: u32,
    threat_type: &'static str,
    signature: &'static str,
}

const RULE_IP: Rule = Rule {
    sid: 9_400_001,
    threat_type: "blacklisted_ip",
    signature: "NetMonitor INTEL traffic with an address listed by a threat feed",
};
const RULE_DOMAIN: Rule = Rule {
    sid: 9_400_002,
    threat_type: "malicious_domain",
    signature: "NetMonitor INTEL name listed by a threat feed",
};
const RULE_URL: Rule = Rule {
    sid: 9_400_003,
    threat_type: "malicious_url",
    signature: "NetMonitor INTEL HTTP request to a URL listed by a threat feed",
};
const RULE_JA3: Rule = Rule {
    sid: 9_400_004,
    threat_type: "malicious_ja3",
    signature: "NetMonitor INTEL TLS fingerprint listed by a threat feed",
};
const RULE_CERT: Rule = Rule {
    sid: 9_400_005,
    threat_type: "malicious_cert",
    signature: "NetMonitor INTEL certificate listed by a threat feed",
};
const RULE_OTHER: Rule = Rule {
    sid: 9_400_006,
    threat_type: "threat_feed_match",
    signature: "NetMonitor INTEL indicator listed by a threat feed",
};

fn rule(kind: IndicatorKind) -> &'static Rule {
    match kind {
        IndicatorKind::Ip | IndicatorKind::Cidr => &RULE_IP,
        IndicatorKind::Domain => &RULE_DOMAIN,
        IndicatorKind::Url => &RULE_URL,
        IndicatorKind::Ja3 | IndicatorKind::Ja3s | IndicatorKind::Ja4 => &RULE_JA3,
        IndicatorKind::CertSha1 | IndicatorKind::CertSha256 => &RULE_CERT,
        _ => &RULE_OTHER,
    }
}

/// The alert kinds the feeds raise (for `enable_threat_detection` and the MITRE table test).
pub const ALERT_KINDS: [&str; 6] = [
    "blacklisted_ip",
    "malicious_domain",
    "malicious_url",
    "malicious_ja3",
    "malicious_cert",
    "threat_feed_match",
];

/// Suricata's severity from a confidence: 1 high, 2 medium, 3 low.
pub fn severity(confidence: u8) -> u8 {
    match confidence {
        80.. => 1,
        50..=79 => 2,
        _ => 3,
    }
}

/// Live counters of the matching, for `get_threat_feed_stats` and status.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MatchStats {
    /// Events looked at.
    pub events: u64,
    /// Lookups made.
    pub lookups: u64,
    /// Matches, per feed.
    pub matches_by_feed: BTreeMap<String, u64>,
    /// Matches, per indicator kind.
    pub matches_by_kind: BTreeMap<String, u64>,
    /// Alerts raised.
    pub alerts: u64,
    /// Matches that raised nothing: already alerted for the flow or within the window.
    pub suppressed: u64,
    /// Matches below the minimum confidence.
    pub below_confidence: u64,
}

/// The detector's state.
#[derive(Debug)]
pub struct IntelDetector {
    window_us: i64,
    min_confidence: u8,
    per_flow: FxHashSet<(u64, u64)>,
    recent: FxHashMap<(u64, IpAddr), i64>,
    stats: MatchStats,
    name_buf: String,
}

impl IntelDetector {
    /// A detector alerting once per indicator and client per `window_secs`.
    pub fn new(window_secs: u64, min_confidence: u8) -> Self {
        IntelDetector {
            window_us: i64::try_from(window_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            min_confidence,
            per_flow: FxHashSet::default(),
            recent: FxHashMap::default(),
            stats: MatchStats::default(),
            name_buf: String::new(),
        }
    }

    /// Changes the window.
    pub fn set_window_secs(&mut self, secs: u64) {
        self.window_us = i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    }

    /// The window.
    pub fn window_secs(&self) -> u64 {
        u64::try_from(self.window_us / 1_000_000).unwrap_or(0)
    }

    /// Changes the minimum confidence.
    pub fn set_min_confidence(&mut self, c: u8) {
        self.min_confidence = c.min(100);
    }

    /// The minimum confidence.
    pub fn min_confidence(&self) -> u8 {
        self.min_confidence
    }

    /// Counters.
    pub fn stats(&self) -> &MatchStats {
        &self.stats
    }

    /// Looks up every matchable field of `ev`; alerts go to `out`.
    pub fn inspect(&mut self, feeds: &FeedMatchers, ev: &Event, out: &mut Vec<Event>) {
        if feeds.is_empty() {
            return;
        }
        let now = ev.header.ts.0;
        let mut hits: Vec<Match<'_>> = Vec::new();
        let mut checks: Vec<(&'static str, String, Vec<Match<'_>>)> = Vec::new();
        let mut lookups = 0u64;
        self.stats.events += 1;
        let h = &ev.header;
        let mut name_buf = std::mem::take(&mut self.name_buf);
        match &ev.kind {
            EventKind::FlowStart(_) => {
                for (field, ip) in [("src_ip", h.key.src_ip), ("dest_ip", h.key.dst_ip)] {
                    feeds.ip(ip, now, &mut hits);
                    push(
                        &mut checks,
                        &mut lookups,
                        field,
                        || ip.to_string(),
                        &mut hits,
                    );
                }
            }
            EventKind::Dns(d) => {
                let name = lower_name(&d.rrname, &mut name_buf);
                feeds.domain(name, now, &mut hits);
                push(
                    &mut checks,
                    &mut lookups,
                    "dns.rrname",
                    || name.to_owned(),
                    &mut hits,
                );
                for a in &d.answers {
                    match a.parse::<IpAddr>() {
                        Ok(ip) => feeds.ip(ip, now, &mut hits),
                        Err(_) => feeds.domain(lower_name(a, &mut name_buf), now, &mut hits),
                    }
                    push(
                        &mut checks,
                        &mut lookups,
                        "dns.answers",
                        || a.to_owned(),
                        &mut hits,
                    );
                }
            }
            EventKind::Tls(t) => {
                let sni_field = if t.quic_version.is_some() {
                    "quic.sni"
                } else {
                    "tls.sni"
                };
                if let Some(sni) = &t.sni {
                    let name = lower_name(sni, &mut name_buf);
                    feeds.domain(name, now, &mut hits);
                    push(
                        &mut checks,
                        &mut lookups,
                        sni_field,
                        || name.to_owned(),
                        &mut hits,
                    );
                }
                if let Some(j) = &t.ja3 {
                    feeds.digest(IndicatorKind::Ja3, &j.hash, now, &mut hits);
                    push(
                        &mut checks,
                        &mut lookups,
                        "tls.ja3.hash",
                        || j.hash.clone(),
                        &mut hits,
                    );
                }
                if let Some(j) = &t.ja3s {
                    feeds.digest(IndicatorKind::Ja3s, &j.hash, now, &mut hits);
                    push(
                        &mut checks,
                        &mut lookups,
                        "tls.ja3s.hash",
                        || j.hash.clone(),
                        &mut hits,
                    );
                }
                if let Some(j) = &t.ja4 {
                    feeds.digest(IndicatorKind::Ja4, j, now, &mut hits);
                    push(
                        &mut checks,
                        &mut lookups,
                        "tls.ja4",
                        || j.clone(),
                        &mut hits,
                    );
                }
                for c in &t.certificates {
                    let mut hex = [0u8; 40];
                    let sha1 = strip_colons(&c.fingerprint, &mut hex);
                    feeds.digest(IndicatorKind::CertSha1, sha1, now, &mut hits);
                    push(
                        &mut checks,
                        &mut lookups,
                        "tls.fingerprint",
                        || sha1.to_owned(),
                        &mut hits,
                    );
                    for n in cn(&c.subject)
                        .into_iter()
                        .chain(c.sans.iter().map(String::as_str))
                    {
                        let name = lower_name(n, &mut name_buf);
                        feeds.domain(name, now, &mut hits);
                        push(
                            &mut checks,
                            &mut lookups,
                            "tls.subjectaltname",
                            || name.to_owned(),
                            &mut hits,
                        );
                    }
                }
            }
            EventKind::Http(r) => {
                if let Some(host) = &r.hostname {
                    match host.parse::<IpAddr>() {
                        Ok(ip) => feeds.ip(ip, now, &mut hits),
                        Err(_) => feeds.domain(lower_name(host, &mut name_buf), now, &mut hits),
                    }
                    push(
                        &mut checks,
                        &mut lookups,
                        "http.hostname",
                        || host.clone(),
                        &mut hits,
                    );
                    let url = if r.url.contains("://") {
                        normalize_url(&r.url)
                    } else {
                        let port = r.http_port.map(|p| format!(":{p}")).unwrap_or_default();
                        normalize_url(&format!("http://{host}{port}{}", r.url))
                    };
                    if let Some(url) = url {
                        feeds.url(&url, now, &mut hits);
                        push(&mut checks, &mut lookups, "http.url", || url, &mut hits);
                    }
                }
            }
            _ => {}
        }
        self.name_buf = name_buf;
        self.stats.lookups += lookups;
        for (field, value, found) in checks {
            self.raise(ev, field, &value, found, out);
        }
    }

    fn raise(
        &mut self,
        ev: &Event,
        field: &str,
        value: &str,
        found: Vec<Match<'_>>,
        out: &mut Vec<Event>,
    ) {
        for m in &found {
            *self
                .stats
                .matches_by_feed
                .entry(m.feed.to_owned())
                .or_default() += 1;
            *self
                .stats
                .matches_by_kind
                .entry(m.hit.kind.name().to_owned())
                .or_default() += 1;
        }
        let Some(best) = found.iter().max_by_key(|m| m.hit.confidence) else {
            return;
        };
        if best.hit.confidence < self.min_confidence {
            self.stats.below_confidence += 1;
            return;
        }
        let key = {
            let mut h = FxHasher::default();
            best.hit.kind.hash(&mut h);
            best.indicator.hash(&mut h);
            h.finish()
        };
        let now = ev.header.ts.0;
        if self.per_flow.len() >= MAX_KEYS {
            self.per_flow.clear();
        }
        if !self.per_flow.insert((ev.header.flow_id, key)) {
            self.stats.suppressed += 1;
            return;
        }
        if self.recent.len() >= MAX_KEYS {
            self.recent.clear();
        }
        let client = ev.header.key.src_ip;
        match self.recent.get(&(key, client)) {
            Some(&last) if now.saturating_sub(last) < self.window_us && now >= last => {
                self.stats.suppressed += 1;
                return;
            }
            _ => {
                self.recent.insert((key, client), now);
            }
        }
        let mut feeds: Vec<&str> = found.iter().map(|m| m.feed).collect();
        feeds.sort_unstable();
        feeds.dedup();
        let r = rule(best.hit.kind);
        let mut evidence = json!({
            "feed": best.feed,
            "feeds": feeds,
            "indicator": best.indicator.to_string(),
            "indicator_type": best.hit.kind.name(),
            "matched_field": field,
            "matched_value": value,
            "confidence": best.hit.confidence,
        });
        if let Some(d) = best.description {
            evidence["description"] = json!(d);
        }
        if best.hit.valid_until != i64::MAX {
            evidence["valid_until"] =
                json!(netmonitor_common::Timestamp(best.hit.valid_until).to_eve());
        }
        self.stats.alerts += 1;
        out.push(Event {
            header: ev.header.clone(),
            kind: EventKind::Alert(Alert {
                signature_id: r.sid,
                signature: r.signature.to_owned(),
                category: "Potentially Bad Traffic".to_owned(),
                severity: severity(best.hit.confidence),
                threat_type: r.threat_type.to_owned(),
                mitre: Vec::new(),
                evidence,
            }),
        });
    }
}

/// Counts one lookup and, when it hit, moves its hits into `checks` with the value looked up
/// (rendered only then: a lookup that finds nothing allocates nothing).
fn push<'m>(
    checks: &mut Vec<(&'static str, String, Vec<Match<'m>>)>,
    lookups: &mut u64,
    field: &'static str,
    value: impl FnOnce() -> String,
    hits: &mut Vec<Match<'m>>,
) {
    *lookups += 1;
    if !hits.is_empty() {
        checks.push((field, value(), std::mem::take(hits)));
    }
}

/// `aa:bb:…` → `aabb…` in `buf` (a SHA-1 fingerprint; longer input is cut).
fn strip_colons<'b>(fp: &str, buf: &'b mut [u8; 40]) -> &'b str {
    let mut n = 0;
    for b in fp.bytes().filter(|b| *b != b':') {
        if n == buf.len() {
            break;
        }
        buf[n] = b.to_ascii_lowercase();
        n += 1;
    }
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// The CN of a subject DN (`CN=evil.example, O=…`).
fn cn(subject: &str) -> Option<&str> {
    subject
        .split(", ")
        .find_map(|rdn| rdn.strip_prefix("CN="))
        .filter(|n| n.contains('.'))
}

#[cfg(test)]
mod tests;
