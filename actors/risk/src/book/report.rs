//! What the risk book says about itself: an asset's score explained, and the alerts it raises
//! when an asset crosses into a higher level or a chain gains a stage.

use super::{round, sids, RiskBook, Scored, LISTENS_OUT, TALKS_OUT};
use crate::score::{self, Level};
use netmonitor_common::{Alert, Event, EventHeader, EventKind, FlowKey, Timestamp};
use serde_json::{json, Value};
use std::net::IpAddr;

impl RiskBook {
    /// Why an asset scores what it does: each kept alert with its decayed score, weight and
    /// share of the sum; the modifiers; and the trend over `trend_us`.
    pub fn explain(&self, ip: &IpAddr, trend_us: i64) -> Option<Value> {
        let a = self.assets.get(ip)?;
        let now = self.now_us;
        let s = self.score_at(a, now);
        let terms = a.alerts.terms(now, self.half_life_us);
        let total: f64 = terms.iter().sum();
        let contributions: Vec<Value> = a
            .alerts
            .kept
            .iter()
            .zip(&terms)
            .enumerate()
            .map(|(i, (c, t))| {
                json!({
                    "rank": i + 1,
                    "timestamp": Timestamp(c.ts_us).to_eve(),
                    "threat_type": c.kind,
                    "signature_id": c.signature_id,
                    "severity": c.severity,
                    "role": c.role,
                    "peer": c.peer,
                    "alert_score": round(c.score),
                    "decayed_score": round(c.decayed(now, self.half_life_us)),
                    "weight": round(score::rank_weight(i + 1)),
                    "share": if total > 0.0 { round(t / total) } else { 0.0 },
                })
            })
            .collect();
        let then = now - trend_us;
        let before = score::apply_modifier(
            a.alerts.base_as_of(then, self.half_life_us),
            self.modifier(a, then),
        );
        let delta = s.score - before;
        let exp = a.exposure;
        let stages = self.chain_stages(a, now);
        Some(json!({
            "ip": ip,
            "kind": if self.cfg.is_local(*ip) { "internal" } else { "external" },
            "score": round(s.score),
            "level": s.level,
            "base_score": round(s.base),
            "as_of": Timestamp(now).to_eve(),
            "trend": {
                "since": Timestamp(then).to_eve(),
                "score_then": round(before),
                "delta": round(delta),
                "direction": if delta > 0.5 { "rising" } else if delta < -0.5 { "falling" } else { "steady" },
            },
            "modifiers": {
                "total": round(s.modifier),
                "criticality": self.criticality(a),
                "criticality_source": if a.criticality.is_some() { "manual" } else if a.device.is_some() { "device" } else { "default" },
                "device_id": a.device.as_ref().map(|d| &d.0),
                "talks_to_internet": exp & TALKS_OUT != 0,
                "listens_on_internet": exp & LISTENS_OUT != 0,
                "chain_stages": stages,
            },
            "alerts_total": a.alerts.total,
            "alerts_kept": a.alerts.kept.len(),
            "first_seen": Timestamp(a.first_us).to_eve(),
            "last_seen": Timestamp(a.last_us).to_eve(),
            "sensors": a.sensors,
            "formula": "score = 100·o·m/(1+o·m), o = b/(100-b), b = 100·Σ r_i·2^(-age/h)/i^1.5 / 261.2 (alerts strongest first), m = criticality × exposure × chain",
            "contributions": contributions,
        }))
    }

    pub(super) fn raise_threshold(
        &mut self,
        ip: IpAddr,
        from: Level,
        now: Scored,
        trigger: &EventHeader,
        cause: &str,
    ) {
        let k = &trigger.key;
        let (peer, port) = if k.src_ip == ip {
            (k.dst_ip, k.dst_port)
        } else {
            (k.src_ip, k.src_port)
        };
        let (sev, sid) = match now.level {
            Level::Critical => (1, sids::RISK_MEDIUM + 2),
            Level::High => (1, sids::RISK_MEDIUM + 1),
            _ => (2, sids::RISK_MEDIUM),
        };
        let top: Vec<Value> = self
            .assets
            .get(&ip)
            .map(|a| {
                a.alerts
                    .kept
                    .iter()
                    .take(5)
                    .map(|c| {
                        json!({
                            "timestamp": Timestamp(c.ts_us).to_eve(),
                            "threat_type": c.kind,
                            "role": c.role,
                            "peer": c.peer,
                            "decayed_score": round(c.decayed(self.now_us, self.half_life_us)),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.raised.push(Event {
            header: EventHeader {
                ts: Timestamp(self.now_us.max(trigger.ts.0)),
                flow_id: trigger.flow_id,
                key: FlowKey {
                    src_ip: ip,
                    src_port: 0,
                    dst_ip: peer,
                    dst_port: port,
                    proto: k.proto,
                },
            },
            kind: EventKind::Alert(Alert {
                signature_id: sid,
                signature: format!("NetMonitor RISK asset risk rose to {}", now.level.as_str()),
                category: "Misc Attack".into(),
                severity: sev,
                threat_type: "risk_threshold".into(),
                mitre: Vec::new(),
                evidence: json!({
                    "asset": ip,
                    "previous_level": from,
                    "level": now.level,
                    "score": round(now.score),
                    "base_score": round(now.base),
                    "modifier": round(now.modifier),
                    "cause": cause,
                    "top_contributions": top,
                }),
            }),
        });
        metrics::counter!("netmonitor_risk_threshold_crossings_total", "level" => now.level.as_str())
            .increment(1);
    }

    pub(super) fn raise_chain(&mut self, id: u64, trigger: &EventHeader) {
        let Some(c) = self.chains.get(id) else {
            return;
        };
        let stages: Vec<&str> = c
            .stages
            .iter()
            .map(|s| crate::actor::stage_name(s.stage))
            .collect();
        let ordered: Vec<Value> = c
            .evidence
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|e| {
                json!({"timestamp": Timestamp(e.ts_us).to_eve(), "stage": e.stage, "threat_type": e.kind, "src_ip": e.src, "dest_ip": e.dst})
            })
            .collect();
        let event = Event {
            header: EventHeader {
                ts: trigger.ts,
                flow_id: trigger.flow_id,
                key: FlowKey {
                    src_ip: c.sources[0],
                    ..trigger.key
                },
            },
            kind: EventKind::Alert(Alert {
                signature_id: sids::ATTACK_CHAIN,
                signature: format!(
                    "NetMonitor CHAIN attack chain reached {} stages: {}",
                    c.stages.len(),
                    stages.join(" -> ")
                ),
                category: "Misc Attack".into(),
                severity: if c.stages.len() >= 3 { 1 } else { 2 },
                threat_type: "attack_chain".into(),
                mitre: c.techniques(),
                evidence: json!({
                    "chain_id": c.id,
                    "stages": stages,
                    "score": round(c.score()),
                    "sources": c.sources,
                    "in_kill_chain_order": c.in_order(),
                    "evidence": ordered,
                }),
            }),
        };
        self.raised.push(event);
        metrics::counter!("netmonitor_attack_chain_stages_total").increment(1);
    }
}
