//! Attack chains: alerts grouped into kill-chain stages by their ATT&CK tactics, per source and
//! across sources, within a window of packet time.
//!
//! An alert joins an open chain (last alert within the window) when its source is the chain's
//! source, when its source was the target of one of the chain's credential-access-or-later
//! alerts (the attacker moved there), or when its target is such a target of the chain (a
//! second source works on the same victim or talks to the same C2). Targets reached on DNS
//! ports are resolvers, not victims, and link nothing.

use crate::FastMap;
use netmonitor_common::mitre;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;

/// Kill-chain stages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reconnaissance and discovery (TA0043, TA0007).
    Reconnaissance,
    /// Credential access (TA0006).
    CredentialAccess,
    /// Lateral movement (TA0008).
    LateralMovement,
    /// Command and control (TA0011).
    CommandAndControl,
    /// Exfiltration (TA0010).
    Exfiltration,
    /// Impact (TA0040).
    Impact,
}

impl Stage {
    /// The stage of an alert kind: the furthest its tactics reach (none for kinds whose
    /// tactics are not steps of the chain).
    pub fn of_kind(kind: &str) -> Option<Stage> {
        let techs = mitre::techniques_for(kind)?;
        mitre::tactics_of(techs.iter().copied())
            .iter()
            .filter_map(|t| match t.id {
                "TA0043" | "TA0007" => Some(Stage::Reconnaissance),
                "TA0006" => Some(Stage::CredentialAccess),
                "TA0008" => Some(Stage::LateralMovement),
                "TA0011" => Some(Stage::CommandAndControl),
                "TA0010" => Some(Stage::Exfiltration),
                "TA0040" => Some(Stage::Impact),
                _ => None,
            })
            .max()
    }
}

/// Evidence items a chain keeps (the first of each stage always stays).
const MAX_EVIDENCE: usize = 200;
/// Targets a chain remembers.
const MAX_TARGETS: usize = 256;
/// Sources a chain lists (more still join it; their alerts count as its evidence).
const MAX_SOURCES: usize = 256;

/// One alert in a chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evidence {
    /// Packet time (µs).
    pub ts_us: i64,
    /// Stage it counts for.
    pub stage: Stage,
    /// Alert kind.
    pub kind: String,
    /// Signature.
    pub signature: String,
    /// Source address.
    pub src: IpAddr,
    /// Target address.
    pub dst: IpAddr,
    /// The alert's risk score.
    pub score: f64,
    /// Its techniques.
    pub mitre: Vec<String>,
}

/// One stage reached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageSeen {
    /// The stage.
    pub stage: Stage,
    /// First alert in it (µs).
    pub first_us: i64,
    /// Last alert in it (µs).
    pub last_us: i64,
    /// Alerts in it.
    pub alerts: u64,
    /// Strongest alert score in it.
    pub max_score: f64,
}

/// A chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chain {
    /// Its number.
    pub id: u64,
    /// The source that started it, then sources that joined.
    pub sources: Vec<IpAddr>,
    /// Targets of its credential-access-or-later alerts.
    pub targets: Vec<IpAddr>,
    /// Stages in the order they were reached (by packet time).
    pub stages: Vec<StageSeen>,
    /// Alerts, oldest first (by packet time).
    pub evidence: Vec<Evidence>,
    /// Alerts not kept as evidence.
    pub evidence_dropped: u64,
    /// First alert (µs).
    pub first_us: i64,
    /// Last alert (µs).
    pub last_us: i64,
}

impl Chain {
    /// Noisy-OR of each stage's strongest alert: `100 × (1 - Π (1 - s/100))`.
    pub fn score(&self) -> f64 {
        100.0
            * (1.0
                - self
                    .stages
                    .iter()
                    .map(|s| 1.0 - (s.max_score / 100.0).clamp(0.0, 1.0))
                    .product::<f64>())
    }

    /// Whether its stages came in kill-chain order.
    pub fn in_order(&self) -> bool {
        self.stages.windows(2).all(|w| w[0].stage < w[1].stage)
    }

    /// The techniques of its evidence, deduplicated.
    pub fn techniques(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .evidence
            .iter()
            .flat_map(|e| e.mitre.iter().cloned())
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }
}

/// What an alert did to the chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The chain it joined.
    pub chain: u64,
    /// Whether it reached a stage new to the chain.
    pub new_stage: bool,
    /// Stages of the chain now.
    pub stages: usize,
}

/// The alert as the chain book reads it.
pub struct ChainAlert<'a> {
    /// Packet time.
    pub ts_us: i64,
    /// Kind.
    pub kind: &'a str,
    /// Signature.
    pub signature: &'a str,
    /// Source.
    pub src: IpAddr,
    /// Target.
    pub dst: IpAddr,
    /// Target port.
    pub dst_port: u16,
    /// Its risk score.
    pub score: f64,
    /// Its techniques.
    pub mitre: &'a [String],
}

/// All chains, open and closed.
#[derive(Default)]
pub struct Chains {
    chains: FastMap<u64, Chain>,
    by_source: FastMap<IpAddr, u64>,
    by_target: FastMap<IpAddr, u64>,
    next_id: u64,
    dirty: HashSet<u64>,
}

impl Chains {
    /// Folds one alert in; `None` when its kind is no step of a chain.
    pub fn observe(&mut self, a: &ChainAlert<'_>, window_us: i64) -> Option<Progress> {
        let stage = Stage::of_kind(a.kind)?;
        let open = |id: &u64, chains: &FastMap<u64, Chain>| {
            chains
                .get(id)
                .is_some_and(|c| a.ts_us - c.last_us <= window_us)
        };
        let links_target = stage >= Stage::CredentialAccess && !is_dns_port(a.dst_port);
        let found = self
            .by_source
            .get(&a.src)
            .filter(|id| open(id, &self.chains))
            .or_else(|| {
                self.by_target
                    .get(&a.src)
                    .filter(|id| open(id, &self.chains))
            })
            .or_else(|| {
                self.by_target
                    .get(&a.dst)
                    .filter(|id| links_target && open(id, &self.chains))
            })
            .copied();
        let id = match found {
            Some(id) => id,
            None => {
                self.next_id += 1;
                let id = self.next_id;
                self.chains.insert(
                    id,
                    Chain {
                        id,
                        sources: vec![a.src],
                        targets: Vec::new(),
                        stages: Vec::new(),
                        evidence: Vec::new(),
                        evidence_dropped: 0,
                        first_us: a.ts_us,
                        last_us: a.ts_us,
                    },
                );
                id
            }
        };
        self.by_source.insert(a.src, id);
        if links_target && a.dst != a.src {
            self.by_target.insert(a.dst, id);
        }
        self.dirty.insert(id);
        let chain = self.chains.get_mut(&id)?;
        if chain.sources.len() < MAX_SOURCES && !chain.sources.contains(&a.src) {
            chain.sources.push(a.src);
        }
        if links_target && chain.targets.len() < MAX_TARGETS && !chain.targets.contains(&a.dst) {
            chain.targets.push(a.dst);
        }
        chain.first_us = chain.first_us.min(a.ts_us);
        chain.last_us = chain.last_us.max(a.ts_us);
        let new_stage = match chain.stages.iter_mut().find(|s| s.stage == stage) {
            Some(s) => {
                s.alerts += 1;
                s.first_us = s.first_us.min(a.ts_us);
                s.last_us = s.last_us.max(a.ts_us);
                s.max_score = s.max_score.max(a.score);
                false
            }
            None => {
                // Detectors report at different delays: stages and evidence follow packet time.
                let at = chain.stages.partition_point(|s| s.first_us <= a.ts_us);
                chain.stages.insert(
                    at,
                    StageSeen {
                        stage,
                        first_us: a.ts_us,
                        last_us: a.ts_us,
                        alerts: 1,
                        max_score: a.score,
                    },
                );
                true
            }
        };
        if new_stage || chain.evidence.len() < MAX_EVIDENCE {
            let at = chain.evidence.partition_point(|e| e.ts_us <= a.ts_us);
            chain.evidence.insert(
                at,
                Evidence {
                    ts_us: a.ts_us,
                    stage,
                    kind: a.kind.to_owned(),
                    signature: a.signature.to_owned(),
                    src: a.src,
                    dst: a.dst,
                    score: a.score,
                    mitre: a.mitre.to_vec(),
                },
            );
        } else {
            chain.evidence_dropped += 1;
        }
        Some(Progress {
            chain: id,
            new_stage,
            stages: chain.stages.len(),
        })
    }

    /// A chain by number.
    pub fn get(&self, id: u64) -> Option<&Chain> {
        self.chains.get(&id)
    }

    /// Every chain.
    pub fn iter(&self) -> impl Iterator<Item = &Chain> {
        self.chains.values()
    }

    /// Number of chains.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// Chains changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<Chain> {
        let ids: Vec<u64> = self.dirty.drain().collect();
        ids.iter()
            .filter_map(|id| self.chains.get(id).cloned())
            .collect()
    }

    /// Marks chains as still unsaved.
    pub fn unsaved(&mut self, ids: impl IntoIterator<Item = u64>) {
        self.dirty.extend(ids);
    }

    /// Puts saved chains back (at start).
    pub fn restore(&mut self, chains: Vec<Chain>) {
        let mut sorted = chains;
        sorted.sort_by_key(|c| c.last_us);
        for c in sorted {
            self.next_id = self.next_id.max(c.id);
            for s in &c.sources {
                self.by_source.insert(*s, c.id);
            }
            for t in &c.targets {
                self.by_target.insert(*t, c.id);
            }
            self.chains.insert(c.id, c);
        }
    }

    /// Forgets the chains that closed longest ago while more than `max` are kept.
    pub fn evict(&mut self, max: usize) -> usize {
        if self.chains.len() <= max {
            return 0;
        }
        let mut by_age: Vec<(i64, u64)> = self.chains.values().map(|c| (c.last_us, c.id)).collect();
        by_age.sort_unstable();
        let n = self.chains.len() - max + max / 10;
        for (_, id) in by_age.into_iter().take(n) {
            self.chains.remove(&id);
            self.dirty.remove(&id);
        }
        self.by_source.retain(|_, id| self.chains.contains_key(id));
        self.by_target.retain(|_, id| self.chains.contains_key(id));
        n
    }
}

fn is_dns_port(p: u16) -> bool {
    matches!(p, 53 | 853 | 5353 | 5355)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn alert<'a>(ts: i64, kind: &'a str, src: [u8; 4], dst: [u8; 4], port: u16) -> ChainAlert<'a> {
        ChainAlert {
            ts_us: ts,
            kind,
            signature: kind,
            src: src.into(),
            dst: dst.into(),
            dst_port: port,
            score: 50.0,
            mitre: &[],
        }
    }

    #[test]
    fn a_source_climbs_the_stages_in_order_within_the_window() {
        let mut c = Chains::default();
        let (a, srv, kdc, c2) = (
            [10, 0, 0, 9],
            [10, 0, 0, 20],
            [10, 0, 0, 5],
            [203, 0, 113, 10],
        );
        let p = c
            .observe(&alert(0, "port_scan", a, srv, 0), 24 * H)
            .unwrap();
        assert_eq!((p.new_stage, p.stages), (true, 1));
        let p2 = c
            .observe(&alert(H, "port_scan", a, srv, 0), 24 * H)
            .unwrap();
        assert_eq!((p2.chain, p2.new_stage), (p.chain, false));
        let p3 = c
            .observe(&alert(2 * H, "kerberoasting", a, kdc, 88), 24 * H)
            .unwrap();
        let p4 = c
            .observe(&alert(3 * H, "beaconing", a, c2, 80), 24 * H)
            .unwrap();
        assert_eq!((p3.stages, p4.stages, p4.chain), (2, 3, p.chain));
        let ch = c.get(p.chain).unwrap();
        let order: Vec<Stage> = ch.stages.iter().map(|s| s.stage).collect();
        assert_eq!(
            order,
            [
                Stage::Reconnaissance,
                Stage::CredentialAccess,
                Stage::CommandAndControl
            ]
        );
        assert!(ch.in_order());
        assert!((ch.score() - 100.0 * (1.0 - 0.5f64.powi(3))).abs() < 1e-9);
        // Past the window the source starts a new chain.
        let p5 = c
            .observe(&alert(28 * H, "port_scan", a, srv, 0), 24 * H)
            .unwrap();
        assert_ne!(p5.chain, p.chain);
        assert_eq!(c.get(p5.chain).unwrap().stages.len(), 1);
    }

    #[test]
    fn a_late_report_takes_its_place_in_packet_time() {
        let mut c = Chains::default();
        let a = [10, 0, 0, 9];
        c.observe(&alert(2 * H, "kerberoasting", a, [10, 0, 0, 5], 88), 24 * H);
        let p = c
            .observe(&alert(H, "port_scan", a, [10, 0, 0, 20], 0), 24 * H)
            .unwrap();
        let ch = c.get(p.chain).unwrap();
        assert_eq!(ch.stages[0].stage, Stage::Reconnaissance);
        assert!(ch.in_order());
        assert_eq!(ch.evidence[0].kind, "port_scan");
    }

    #[test]
    fn a_victim_that_acts_next_and_a_shared_c2_join_the_chain_but_resolvers_do_not() {
        let mut c = Chains::default();
        let (a, victim, b, c2, dns) = (
            [10, 0, 0, 9],
            [10, 0, 0, 20],
            [10, 0, 0, 30],
            [203, 0, 113, 10],
            [10, 0, 0, 53],
        );
        let p = c
            .observe(&alert(0, "brute_force", a, victim, 22), 24 * H)
            .unwrap();
        let q = c
            .observe(&alert(H, "beaconing", victim, c2, 443), 24 * H)
            .unwrap();
        assert_eq!(q.chain, p.chain, "the victim pivoted");
        let r = c
            .observe(&alert(2 * H, "beaconing", b, c2, 443), 24 * H)
            .unwrap();
        assert_eq!(r.chain, p.chain, "same C2");
        let s = c
            .observe(&alert(2 * H, "dns_tunnel", [10, 0, 0, 40], dns, 53), 24 * H)
            .unwrap();
        let t = c
            .observe(&alert(2 * H, "dga", [10, 0, 0, 41], dns, 53), 24 * H)
            .unwrap();
        assert_ne!(s.chain, t.chain, "one resolver links nothing");
        assert!(Stage::of_kind("weak_tls_version").is_some());
        assert!(Stage::of_kind("device_behavior_deviation").is_none());
        assert_eq!(c.get(p.chain).unwrap().sources.len(), 3);
    }
}
