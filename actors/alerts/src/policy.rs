//! What the alert stage decides about one alert: pure logic over a whitelist, a dedup window on
//! packet time, and the kinds switched off. No actix here.

use ipnet::IpNet;
use netmonitor_common::{mitre, Event, EventKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// One whitelist entry (the `whitelist` table): alerts whose source or destination lies in the
/// network are not raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WhitelistEntry {
    /// Its id in the table.
    pub id: i64,
    /// The network (a single address is a /32 or /128).
    pub net: IpNet,
}

impl WhitelistEntry {
    /// Parses the table's `ip_cidr` text.
    pub fn parse(id: i64, ip_cidr: &str) -> Option<Self> {
        let t = ip_cidr.trim();
        let net = t
            .parse::<IpAddr>()
            .map(IpNet::from)
            .ok()
            .or_else(|| t.parse().ok())?;
        Some(WhitelistEntry { id, net })
    }

    fn covers(&self, a: IpAddr, b: IpAddr) -> bool {
        self.net.contains(&a) || self.net.contains(&b)
    }
}

/// What happened to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Raised.
    Pass,
    /// Covered by this whitelist entry.
    Whitelisted(i64),
    /// An identical alert (kind, signature, endpoints) was raised within the dedup window.
    Duplicate,
    /// Its kind is switched off (`detection.<kind>.enabled = false`).
    Disabled,
}

/// Counters of the stage, for `/metrics`, status and the suppression tools.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PolicyCounters {
    /// Alerts raised, by kind.
    pub raised_by_kind: BTreeMap<String, u64>,
    /// Alerts raised, by severity (1 = high).
    pub raised_by_severity: BTreeMap<u8, u64>,
    /// Alerts dropped because a whitelist entry covered them, by entry id.
    pub whitelisted_by_entry: BTreeMap<i64, u64>,
    /// Alerts dropped as duplicates.
    pub duplicates: u64,
    /// Alerts dropped because their kind is off.
    pub disabled: u64,
}

/// Keys of the dedup memory kept at most; the oldest half is forgotten when full.
const MAX_DEDUP_KEYS: usize = 100_000;

type DedupKey = (u32, IpAddr, IpAddr, u16);

/// The stage's policy.
#[derive(Debug, Default)]
pub struct AlertPolicy {
    whitelist: Vec<WhitelistEntry>,
    dedup_window_us: i64,
    recent: HashMap<DedupKey, i64>,
    disabled: HashSet<String>,
    counters: PolicyCounters,
}

impl AlertPolicy {
    /// A policy with a dedup window (0 = no dedup).
    pub fn new(dedup_window_secs: u64) -> Self {
        AlertPolicy {
            dedup_window_us: i64::try_from(dedup_window_secs)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000),
            ..Self::default()
        }
    }

    /// Replaces the whitelist.
    pub fn set_whitelist(&mut self, entries: Vec<WhitelistEntry>) {
        self.whitelist = entries;
    }

    /// The whitelist in force.
    pub fn whitelist(&self) -> &[WhitelistEntry] {
        &self.whitelist
    }

    /// The dedup window in seconds.
    pub fn dedup_window_secs(&self) -> u64 {
        u64::try_from(self.dedup_window_us / 1_000_000).unwrap_or(0)
    }

    /// Changes the dedup window.
    pub fn set_dedup_window_secs(&mut self, secs: u64) {
        self.dedup_window_us = i64::try_from(secs)
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000);
    }

    /// Switches a kind on or off; returns whether it was on.
    pub fn set_enabled(&mut self, kind: &str, on: bool) -> bool {
        let was = !self.disabled.contains(kind);
        if on {
            self.disabled.remove(kind);
        } else {
            self.disabled.insert(kind.to_string());
        }
        was
    }

    /// Whether a kind is on.
    pub fn is_enabled(&self, kind: &str) -> bool {
        !self.disabled.contains(kind)
    }

    /// The counters.
    pub fn counters(&self) -> &PolicyCounters {
        &self.counters
    }

    /// Which whitelist entry would suppress an alert between these endpoints, if any (for
    /// `test_alert_suppression`).
    pub fn whitelisted(&self, a: IpAddr, b: IpAddr) -> Option<&WhitelistEntry> {
        self.whitelist.iter().find(|w| w.covers(a, b))
    }

    /// Decides about one alert event and, when it passes, fills in its MITRE techniques from the
    /// table (keeping what the detector gave for a kind the table does not know). Non-alert
    /// events pass untouched.
    pub fn admit(&mut self, event: &mut Event) -> Verdict {
        let h = &event.header;
        let EventKind::Alert(alert) = &mut event.kind else {
            return Verdict::Pass;
        };
        if self.disabled.contains(&alert.threat_type) {
            self.counters.disabled += 1;
            return Verdict::Disabled;
        }
        if let Some(w) = self.whitelisted(h.key.src_ip, h.key.dst_ip) {
            let id = w.id;
            *self.counters.whitelisted_by_entry.entry(id).or_default() += 1;
            return Verdict::Whitelisted(id);
        }
        if self.dedup_window_us > 0 {
            let key = (
                alert.signature_id,
                h.key.src_ip,
                h.key.dst_ip,
                h.key.dst_port,
            );
            let now = h.ts.0;
            if let Some(last) = self.recent.get(&key) {
                if now >= *last && now - *last < self.dedup_window_us {
                    self.counters.duplicates += 1;
                    return Verdict::Duplicate;
                }
            }
            if self.recent.len() >= MAX_DEDUP_KEYS {
                let cutoff = now - self.dedup_window_us;
                self.recent.retain(|_, t| *t >= cutoff);
                if self.recent.len() >= MAX_DEDUP_KEYS {
                    self.recent.clear();
                }
            }
            self.recent.insert(key, now);
        }
        if let Some(techs) = mitre::techniques_for(&alert.threat_type) {
            if !techs.is_empty() || alert.mitre.is_empty() {
                alert.mitre = techs.iter().map(|t| (*t).to_string()).collect();
            }
        }
        *self
            .counters
            .raised_by_kind
            .entry(alert.threat_type.clone())
            .or_default() += 1;
        *self
            .counters
            .raised_by_severity
            .entry(alert.severity)
            .or_default() += 1;
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmonitor_common::{Alert, EventHeader, FlowKey, Timestamp};

    fn alert(src: &str, dst: &str, ts_s: i64, kind: &str) -> Event {
        Event {
            header: EventHeader {
                ts: Timestamp::from_secs_micros(ts_s, 0),
                flow_id: 1,
                key: FlowKey {
                    src_ip: src.parse().unwrap(),
                    src_port: 40000,
                    dst_ip: dst.parse().unwrap(),
                    dst_port: 88,
                    proto: 6,
                },
            },
            kind: EventKind::Alert(Alert {
                signature_id: 7,
                signature: "s".into(),
                category: "c".into(),
                severity: 1,
                threat_type: kind.into(),
                mitre: vec![],
                evidence: serde_json::json!({}),
            }),
        }
    }

    #[test]
    fn whitelist_dedup_and_switches_decide_and_count() {
        let mut p = AlertPolicy::new(60);
        p.set_whitelist(vec![WhitelistEntry::parse(3, "10.9.0.0/16").unwrap()]);
        assert_eq!(
            p.admit(&mut alert("10.9.1.1", "10.0.0.1", 0, "kerberoasting")),
            Verdict::Whitelisted(3)
        );
        assert_eq!(
            p.admit(&mut alert("10.0.0.5", "10.9.255.1", 0, "kerberoasting")),
            Verdict::Whitelisted(3)
        );
        let mut a = alert("10.1.0.1", "10.0.0.1", 0, "kerberoasting");
        assert_eq!(p.admit(&mut a), Verdict::Pass);
        let EventKind::Alert(al) = &a.kind else {
            unreachable!()
        };
        assert_eq!(al.mitre, ["T1558.003"], "MITRE ids come from the table");
        assert_eq!(
            p.admit(&mut alert("10.1.0.1", "10.0.0.1", 59, "kerberoasting")),
            Verdict::Duplicate
        );
        assert_eq!(
            p.admit(&mut alert("10.1.0.1", "10.0.0.1", 61, "kerberoasting")),
            Verdict::Pass
        );
        p.set_enabled("kerberoasting", false);
        assert_eq!(
            p.admit(&mut alert("10.2.0.1", "10.0.0.1", 0, "kerberoasting")),
            Verdict::Disabled
        );
        let c = p.counters();
        assert_eq!(c.whitelisted_by_entry.get(&3), Some(&2));
        assert_eq!((c.duplicates, c.disabled), (1, 1));
        assert_eq!(c.raised_by_kind.get("kerberoasting"), Some(&2));
        let mut q = AlertPolicy::new(0);
        assert_eq!(
            q.admit(&mut alert("10.1.0.1", "10.0.0.1", 0, "x")),
            Verdict::Pass
        );
        assert_eq!(
            q.admit(&mut alert("10.1.0.1", "10.0.0.1", 0, "x")),
            Verdict::Pass,
            "no dedup when off"
        );
    }
}
