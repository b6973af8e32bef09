//! What the alert stage decides about one alert: pure logic over a whitelist, service
//! providers, a dedup window on packet time, and the kinds switched off. No actix here.

use crate::suppress::{AlertSubject, ServiceProvider, WhitelistEntry};
use netmonitor_common::{mitre, Event, EventKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// What happened to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Raised.
    Pass,
    /// Covered by this whitelist entry.
    Whitelisted(i64),
    /// Its far end is this service provider, which suppresses its kind.
    Provider(i64),
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
    /// Alerts suppressed because a whitelist entry covered them, by entry id.
    pub whitelisted_by_entry: BTreeMap<i64, u64>,
    /// Alerts suppressed because their far end was a service provider listing their kind, by
    /// provider id.
    pub suppressed_by_provider: BTreeMap<i64, u64>,
    /// Alerts raised one severity step lower because their far end was a service provider, by
    /// provider id.
    pub lowered_by_provider: BTreeMap<i64, u64>,
    /// Suppressed alerts kept as evidence (stored, not raised).
    pub kept_as_evidence: u64,
    /// Alerts dropped as duplicates.
    pub duplicates: u64,
    /// Alerts dropped because their kind is off.
    pub disabled: u64,
}

/// Keys of the dedup memory kept at most; the oldest half is forgotten when full.
const MAX_DEDUP_KEYS: usize = 100_000;

type DedupKey = (u32, IpAddr, IpAddr, u16);

/// What happens to an alert a whitelist entry or provider suppresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuppressedAlerts {
    /// Counted and dropped.
    #[default]
    Drop,
    /// Counted and stored with `evidence.suppressed_by`, hidden from listings, never raised.
    Keep,
}

/// The stage's policy.
#[derive(Debug, Default)]
pub struct AlertPolicy {
    whitelist: Vec<WhitelistEntry>,
    providers: Vec<ServiceProvider>,
    sensor: String,
    suppressed: SuppressedAlerts,
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

    /// The sensor this stage serves (entries scoped to another sensor do not apply) and what
    /// happens to suppressed alerts.
    pub fn with_scope(mut self, sensor: &str, suppressed: SuppressedAlerts) -> Self {
        self.sensor = sensor.to_string();
        self.suppressed = suppressed;
        self
    }

    /// What happens to suppressed alerts.
    pub fn suppressed_alerts(&self) -> SuppressedAlerts {
        self.suppressed
    }

    /// Replaces the whitelist.
    pub fn set_whitelist(&mut self, entries: Vec<WhitelistEntry>) {
        self.whitelist = entries;
    }

    /// Replaces the service providers.
    pub fn set_providers(&mut self, providers: Vec<ServiceProvider>) {
        self.providers = providers;
    }

    /// The service providers in force.
    pub fn providers(&self) -> &[ServiceProvider] {
        &self.providers
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

    /// Which whitelist entry covers an alert with this subject, if any.
    pub fn whitelisted(&self, s: &AlertSubject) -> Option<&WhitelistEntry> {
        self.whitelist.iter().find(|w| w.covers(s, &self.sensor))
    }

    /// The service provider at the far end of an alert with this subject, if any.
    pub fn provider_of(&self, s: &AlertSubject) -> Option<&ServiceProvider> {
        self.providers.iter().find(|p| p.serves(s))
    }

    /// The provider owning `ip`, if any.
    pub fn provider_owning(&self, ip: IpAddr) -> Option<&ServiceProvider> {
        self.providers.iter().find(|p| p.owns(ip))
    }

    /// What would happen to an alert with this subject, without counting anything (for
    /// `test_alert_suppression`): the verdict (`Pass`, `Whitelisted`, `Provider`, `Disabled`)
    /// and the provider that would lower its severity.
    pub fn would(&self, s: &AlertSubject) -> (Verdict, Option<&ServiceProvider>) {
        if self.disabled.contains(&s.kind) {
            return (Verdict::Disabled, None);
        }
        if let Some(w) = self.whitelisted(s) {
            return (Verdict::Whitelisted(w.id), None);
        }
        match self.provider_of(s) {
            Some(p) if p.suppress.contains(&s.kind) => (Verdict::Provider(p.id), Some(p)),
            p => (Verdict::Pass, p),
        }
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
        if let Some(techs) = mitre::techniques_for(&alert.threat_type) {
            if !techs.is_empty() || alert.mitre.is_empty() {
                alert.mitre = techs.iter().map(|t| (*t).to_string()).collect();
            }
        }
        let subject = AlertSubject::of(h, alert);
        let (verdict, provider) = self.would(&subject);
        let provider = provider.map(|p| (p.id, p.name.clone(), p.category.clone()));
        let by = match verdict {
            Verdict::Whitelisted(id) => {
                *self.counters.whitelisted_by_entry.entry(id).or_default() += 1;
                Some(json!({"whitelist_entry": id}))
            }
            Verdict::Provider(id) => {
                *self.counters.suppressed_by_provider.entry(id).or_default() += 1;
                provider
                    .as_ref()
                    .map(|(_, name, _)| json!({"service_provider": id, "name": name}))
            }
            _ => None,
        };
        if let Some(by) = by {
            if self.suppressed == SuppressedAlerts::Keep {
                self.counters.kept_as_evidence += 1;
                if let Some(m) = alert.evidence.as_object_mut() {
                    m.insert("suppressed_by".into(), by);
                } else {
                    alert.evidence = json!({"detail": alert.evidence.take(), "suppressed_by": by});
                }
            }
            return verdict;
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
        if let Some((id, name, category)) = provider {
            // Traffic to a known provider is scored one step lower and says why.
            *self.counters.lowered_by_provider.entry(id).or_default() += 1;
            alert.severity = alert.severity.saturating_add(1).min(4);
            if let Some(m) = alert.evidence.as_object_mut() {
                m.insert(
                    "service_provider".into(),
                    json!({"id": id, "name": name, "category": category}),
                );
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
    use crate::suppress::{Direction, ServiceProvider};
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

    #[test]
    fn scoped_entries_and_providers_suppress_lower_and_keep_evidence() {
        let mut p = AlertPolicy::new(0).with_scope("edge-1", SuppressedAlerts::Keep);
        let mut port_only = WhitelistEntry::parse(5, "10.0.0.0/8").unwrap();
        port_only.direction = Direction::Destination;
        port_only.port = Some(88);
        port_only.sensor = Some("edge-2".into());
        p.set_whitelist(vec![port_only]);
        assert_eq!(
            p.admit(&mut alert("192.0.2.1", "10.0.0.1", 0, "kerberoasting")),
            Verdict::Pass,
            "an entry of another sensor does not apply"
        );
        let mut mine = WhitelistEntry::parse(6, "10.0.0.0/8").unwrap();
        mine.direction = Direction::Destination;
        mine.port = Some(88);
        p.set_whitelist(vec![mine]);
        let mut kept = alert("192.0.2.1", "10.0.0.1", 0, "kerberoasting");
        assert_eq!(p.admit(&mut kept), Verdict::Whitelisted(6));
        let EventKind::Alert(a) = &kept.kind else {
            unreachable!()
        };
        assert_eq!(a.evidence["suppressed_by"]["whitelist_entry"], 6);
        assert_eq!(
            a.mitre,
            ["T1558.003"],
            "kept evidence carries its techniques"
        );
        assert_eq!(
            p.admit(&mut alert("10.0.0.1", "192.0.2.1", 0, "kerberoasting")),
            Verdict::Pass,
            "the entry looks at the destination only"
        );
        p.set_providers(vec![ServiceProvider {
            id: 9,
            name: "offsite-backup".into(),
            category: "backup".into(),
            ranges: vec!["198.51.100.0/24".parse().unwrap()],
            domains: vec![],
            suppress: ["high_outbound_volume".to_string()].into_iter().collect(),
        }]);
        assert_eq!(
            p.admit(&mut alert(
                "10.1.0.1",
                "198.51.100.7",
                0,
                "high_outbound_volume"
            )),
            Verdict::Provider(9)
        );
        let mut lowered = alert("10.1.0.1", "198.51.100.7", 0, "beaconing");
        assert_eq!(p.admit(&mut lowered), Verdict::Pass);
        let EventKind::Alert(a) = &lowered.kind else {
            unreachable!()
        };
        assert_eq!(a.severity, 2, "one step lower");
        assert_eq!(a.evidence["service_provider"]["name"], "offsite-backup");
        let c = p.counters();
        assert_eq!(c.suppressed_by_provider.get(&9), Some(&1));
        assert_eq!(c.lowered_by_provider.get(&9), Some(&1));
        assert_eq!(c.kept_as_evidence, 2);
    }
}
