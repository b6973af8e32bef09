//! From an alert to proposed actions: does a playbook's trigger match, do its time-of-day
//! condition hold, what would each action run, and are its cooldown and hourly cap free.
//! Conditions that need other actors (criticality, template, whitelist) are checked by the
//! actor before [`Planner::propose`].

use crate::config::SoarConfig;
use crate::playbook::{hours, Action, ActionKind, End, Playbook};
use netmonitor_common::{Alert, Event, EventKind, Timestamp};
use netmonitor_risk::score::Level;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Kinds a threat-feed match raises.
const INDICATOR_KINDS: [&str; 6] = [
    "threat_feed_match",
    "blacklisted_ip",
    "malicious_domain",
    "malicious_url",
    "malicious_ja3",
    "malicious_cert",
];

/// Whether `pb`'s trigger matches `a` (every given field).
pub fn triggers(pb: &Playbook, a: &Alert) -> bool {
    let t = &pb.trigger;
    if !t.kinds.is_empty() && !t.kinds.contains(&a.threat_type) {
        return false;
    }
    if t.max_severity.is_some_and(|m| a.severity > m) {
        return false;
    }
    if let Some(level) = &t.risk_level {
        let reached = a
            .evidence
            .get("level")
            .and_then(Value::as_str)
            .and_then(Level::parse);
        if a.threat_type != "risk_threshold" || reached < Level::parse(level) {
            return false;
        }
    }
    if let Some(n) = t.chain_stages {
        let stages = a
            .evidence
            .get("stages")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if a.threat_type != "attack_chain" || stages < n {
            return false;
        }
    }
    if t.indicator && !INDICATOR_KINDS.contains(&a.threat_type.as_str()) {
        return false;
    }
    true
}

/// Whether the alert's packet hour (UTC) is inside the playbook's hours.
pub fn in_hours(pb: &Playbook, ts: Timestamp) -> bool {
    let Some((from, to)) = pb.conditions.hours_utc.as_deref().and_then(hours) else {
        return true;
    };
    let h = (ts.0.div_euclid(3_600_000_000)).rem_euclid(24) as u32;
    if from < to {
        (from..to).contains(&h)
    } else {
        h >= from || h < to
    }
}

/// The address at one end of the alert.
pub fn end(ev: &Event, e: End) -> IpAddr {
    match e {
        End::Src => ev.header.key.src_ip,
        End::Dst => ev.header.key.dst_ip,
    }
}

/// The domain an alert is about, if any.
fn domain_of(a: &Alert) -> Option<String> {
    ["domain", "rrname", "query", "sni", "hostname"]
        .iter()
        .find_map(|k| a.evidence.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

/// The alert as an action's evidence.
pub fn evidence(ev: &Event) -> Value {
    let EventKind::Alert(a) = &ev.kind else {
        return Value::Null;
    };
    let k = &ev.header.key;
    json!({
        "timestamp": ev.header.ts.to_eve(),
        "flow_id": ev.header.flow_id,
        "src_ip": k.src_ip, "src_port": k.src_port, "dest_ip": k.dst_ip, "dest_port": k.dst_port,
        "signature_id": a.signature_id, "signature": a.signature, "severity": a.severity,
        "threat_type": a.threat_type, "mitre": a.mitre, "evidence": a.evidence,
    })
}

/// A proposed action, ready to be stored.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// Playbook.
    pub playbook: String,
    /// Position of the action.
    pub index: usize,
    /// The action.
    pub action: Action,
    /// What it acts on.
    pub target: String,
    /// Idempotency key.
    pub key: String,
    /// Approver scope.
    pub approver_scope: String,
    /// What would run.
    pub proposed: Value,
    /// The alert.
    pub evidence: Value,
}

/// What an action would run on `target`: the exact command or request.
pub fn proposed(cfg: &SoarConfig, a: &Action, target: &str, alert: &Alert) -> Value {
    let nft = &cfg.nft;
    let nft_add = |v4: &str, v6: &str| {
        let set = if target.contains(':') { v6 } else { v4 };
        let argv = vec![
            nft.binary.display().to_string(),
            "add".into(),
            "element".into(),
            nft.family.clone(),
            nft.table.clone(),
            set.to_owned(),
            format!("{{ {target} }}"),
        ];
        json!({"command": argv, "dry_run": nft.dry_run})
    };
    let command = |name: &str| {
        let argv: Vec<String> = cfg
            .commands
            .get(name)
            .map(|v| v.iter().map(|s| s.replace("{target}", target)).collect())
            .unwrap_or_default();
        json!({"command": argv, "dry_run": false})
    };
    match a.kind {
        ActionKind::BlockIp => nft_add(&nft.block_set_v4, &nft.block_set_v6),
        ActionKind::RateLimit => nft_add(&nft.rate_limit_set_v4, &nft.rate_limit_set_v6),
        ActionKind::BlockDomain => command("block_domain"),
        ActionKind::Command => command(a.command.as_deref().unwrap_or("")),
        ActionKind::Notify => json!({
            "url": a.url, "method": "POST",
            "signature_header": crate::act::SIGNATURE_HEADER, "secret_env": a.secret_env,
            "to": a.to, "smtp": cfg.smtp.as_ref().map(|m| &m.server),
        }),
        ActionKind::Acknowledge => {
            json!({"ip": target, "threat_type": alert.threat_type, "hours_around_alert": 1})
        }
        ActionKind::Enrich => json!({"ip": target, "gathers": ["device", "risk", "chains"]}),
        ActionKind::TagDevice => json!({"ip": target, "tag": a.tag}),
        ActionKind::Capture => {
            json!({"ip": target, "max_packets": a.max_packets.unwrap_or(10_000)})
        }
    }
}

/// Cooldowns and hourly caps, in packet time.
#[derive(Default)]
pub struct Planner {
    last: HashMap<(String, usize, String), i64>,
    hour: HashMap<(String, usize), VecDeque<i64>>,
}

const HOUR_US: i64 = 3_600_000_000;

impl Planner {
    /// The actions of `pb` for the alert `ev`, past their cooldowns and caps (which they then
    /// take).
    pub fn propose(&mut self, cfg: &SoarConfig, pb: &Playbook, ev: &Event) -> Vec<Proposal> {
        let EventKind::Alert(alert) = &ev.kind else {
            return Vec::new();
        };
        let ts = ev.header.ts.0;
        let mut out = Vec::new();
        for (index, spanned) in pb.actions.iter().enumerate() {
            let a = spanned.get_ref();
            let target = if a.kind == ActionKind::BlockDomain {
                match domain_of(alert) {
                    Some(d) => d,
                    None => continue,
                }
            } else {
                end(ev, a.target).to_string()
            };
            let k = (pb.name.clone(), index, target.clone());
            if self
                .last
                .get(&k)
                .is_some_and(|t| ts - t < a.cooldown_secs as i64 * 1_000_000)
            {
                metrics::counter!("netmonitor_soar_suppressed_total", "reason" => "cooldown")
                    .increment(1);
                continue;
            }
            let q = self.hour.entry((pb.name.clone(), index)).or_default();
            while q.front().is_some_and(|t| ts - t >= HOUR_US) {
                q.pop_front();
            }
            if q.len() >= a.max_per_hour as usize {
                metrics::counter!("netmonitor_soar_suppressed_total", "reason" => "hourly_cap")
                    .increment(1);
                continue;
            }
            q.push_back(ts);
            self.last.insert(k, ts);
            let key = hex::encode(Sha256::digest(format!(
                "{}|{index}|{target}|{}|{}|{ts}",
                pb.name, alert.signature_id, ev.header.flow_id
            )));
            out.push(Proposal {
                playbook: pb.name.clone(),
                index,
                action: a.clone(),
                target: target.clone(),
                key,
                approver_scope: pb.approver_scope.clone(),
                proposed: proposed(cfg, a, &target, alert),
                evidence: evidence(ev),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::parse;
    use netmonitor_common::{EventHeader, FlowKey};
    use std::path::Path;

    fn alert(kind: &str, sev: u8, ts: i64, evidence: Value) -> Event {
        Event {
            header: EventHeader {
                ts: Timestamp(ts),
                flow_id: 7,
                key: FlowKey {
                    src_ip: [10, 0, 0, 9].into(),
                    src_port: 4000,
                    dst_ip: [10, 0, 0, 20].into(),
                    dst_port: 22,
                    proto: 6,
                },
            },
            kind: EventKind::Alert(Alert {
                signature_id: 1,
                signature: kind.into(),
                category: "c".into(),
                severity: sev,
                threat_type: kind.into(),
                mitre: vec![],
                evidence,
            }),
        }
    }

    fn pb(trigger: &str) -> Playbook {
        let text = format!("name = \"p\"\n[trigger]\n{trigger}\n[[actions]]\ntype = \"block_ip\"\ncooldown_secs = 60\nmax_per_hour = 2\n");
        parse(Path::new("p.toml"), &text, &SoarConfig::default()).unwrap()
    }

    fn kind_of(ev: &Event) -> &Alert {
        match &ev.kind {
            EventKind::Alert(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn triggers_match_kinds_severity_levels_stages_and_indicators() {
        let scan = alert("port_scan", 2, 0, json!({}));
        assert!(triggers(&pb("kinds = [\"port_scan\"]"), kind_of(&scan)));
        assert!(!triggers(
            &pb("kinds = [\"port_scan\"]\nmax_severity = 1"),
            kind_of(&scan)
        ));
        let risk = alert("risk_threshold", 1, 0, json!({"level": "high"}));
        assert!(triggers(&pb("risk_level = \"high\""), kind_of(&risk)));
        assert!(!triggers(&pb("risk_level = \"critical\""), kind_of(&risk)));
        let chain = alert("attack_chain", 1, 0, json!({"stages": ["a", "b", "c"]}));
        assert!(triggers(&pb("chain_stages = 3"), kind_of(&chain)));
        assert!(!triggers(&pb("chain_stages = 4"), kind_of(&chain)));
        assert!(triggers(
            &pb("indicator = true"),
            kind_of(&alert("malicious_domain", 1, 0, json!({})))
        ));
        assert!(!triggers(&pb("indicator = true"), kind_of(&scan)));
    }

    #[test]
    fn cooldowns_caps_and_the_nft_command() {
        let p = pb("kinds = [\"port_scan\"]");
        let cfg = SoarConfig::default();
        let mut planner = Planner::default();
        let first = planner.propose(&cfg, &p, &alert("port_scan", 2, 0, json!({})));
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].proposed["command"],
            json!([
                "nft",
                "add",
                "element",
                "inet",
                "netmonitor",
                "blocklist_v4",
                "{ 10.0.0.9 }"
            ])
        );
        assert_eq!(first[0].proposed["dry_run"], true);
        assert!(
            planner
                .propose(&cfg, &p, &alert("port_scan", 2, 30_000_000, json!({})))
                .is_empty(),
            "cooldown"
        );
        assert_eq!(
            planner
                .propose(&cfg, &p, &alert("port_scan", 2, 61_000_000, json!({})))
                .len(),
            1
        );
        assert!(
            planner
                .propose(&cfg, &p, &alert("port_scan", 2, 122_000_000, json!({})))
                .is_empty(),
            "two an hour"
        );
        let again = Planner::default().propose(&cfg, &p, &alert("port_scan", 2, 0, json!({})));
        assert_eq!(
            again[0].key, first[0].key,
            "the same alert gives the same key"
        );
        let mut hours = p.clone();
        hours.conditions.hours_utc = Some("22-6".into());
        assert!(in_hours(&hours, Timestamp(23 * HOUR_US)));
        assert!(!in_hours(&hours, Timestamp(12 * HOUR_US)));
    }
}
