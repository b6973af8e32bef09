//! The risk formula, after Elastic's entity risk scoring, and one asset's alerts.
//!
//! 1. Each alert on the asset scores `r = severity score × kind weight × confidence × role`,
//!    where the severity score is 73/47/21/5 for severities 1–4 (Elastic's high/medium/low rule
//!    scores), the kind weight comes from its ATT&CK tactics (or `[risk.kind_weights]`), and the
//!    role is 1 for the source and `target_weight` for the target.
//! 2. At time `T` it weighs `r × 2^-(T - t)/h` (packet time `t`, half-life `h`).
//! 3. The weighed alerts are sorted, strongest first, and the i-th is divided by `i^1.5`; the
//!    sum is normalised by 261.2 (100 × ζ(1.5), the sum for endless alerts of score 100):
//!    `base = 100 × Σ r_i / i^1.5 / 261.2`.
//! 4. Criticality, exposure and chain membership multiply the odds:
//!    `odds = base / (100 - base)`, `score = 100 × odds·m / (1 + odds·m)`, with `m` the
//!    product of the criticality modifier (0.5 low, 1 medium, 1.5 high, 2 critical), the
//!    exposure modifiers and `1 + chain_stage_weight × (stages - 1)` (at most 2).
//!
//! Decay multiplies every alert by the same factor, so the order of an asset's alerts never
//! changes with time: each is kept under a time-free key `ln r + t·ln2/h`, the asset keeps
//! `ln Σ e^key_i / i^1.5`, and its base score at any `T` is one exponential away.

use netmonitor_common::mitre;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Elastic's normaliser: `100 × ζ(1.5)`.
pub const RISK_CAP: f64 = 261.2;
/// Keys are measured from 2020-01-01 so that they stay small.
const EPOCH_US: i64 = 1_577_836_800_000_000;

/// A risk level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below `medium`.
    Low,
    /// From `levels.medium`.
    Medium,
    /// From `levels.high`.
    High,
    /// From `levels.critical`.
    Critical,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 4] = [Level::Low, Level::Medium, Level::High, Level::Critical];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The level of this name.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Severity 1–4 as an alert score 0–100.
pub fn severity_score(severity: u8) -> f64 {
    match severity {
        0 | 1 => 73.0,
        2 => 47.0,
        3 => 21.0,
        _ => 5.0,
    }
}

/// The weight of an alert kind from its tactics: discovery and reconnaissance 0.7, resource
/// development 0.5, defence evasion 0.8, steps of an intrusion 1, no tactic 0.5.
pub fn tactic_weight(kind: &str) -> f64 {
    let tactics = mitre::tactics_of(mitre::techniques_for(kind).unwrap_or(&[]).iter().copied());
    tactics
        .iter()
        .map(|t| match t.id {
            "TA0043" | "TA0007" => 0.7,
            "TA0042" => 0.5,
            "TA0005" => 0.8,
            _ => 1.0,
        })
        .fold(None, |m: Option<f64>, w| Some(m.map_or(w, |m| m.max(w))))
        .unwrap_or(0.5)
}

/// The modifier of a criticality (Elastic's asset criticality levels).
pub fn criticality_modifier(criticality: &str) -> f64 {
    match criticality {
        "low" => 0.5,
        "high" => 1.5,
        "critical" => 2.0,
        _ => 1.0,
    }
}

/// Applies a modifier to a base score on the odds scale.
pub fn apply_modifier(base: f64, m: f64) -> f64 {
    if base >= 100.0 {
        return 100.0;
    }
    let odds = base / (100.0 - base) * m;
    100.0 * odds / (1.0 + odds)
}

/// `1 / i^1.5` for the i-th strongest alert (i from 1), from a table.
pub fn rank_weight(i: usize) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| (1..=10_000).map(|i| 1.0 / (i as f64).powf(1.5)).collect());
    t.get(i - 1)
        .copied()
        .unwrap_or_else(|| 1.0 / (i as f64).powf(1.5))
}

/// Packet time as a decay-free exponent: `t·ln2/h`.
fn time_exponent(ts_us: i64, half_life_us: f64) -> f64 {
    (ts_us - EPOCH_US) as f64 / half_life_us * std::f64::consts::LN_2
}

/// The asset's role in an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It sent the traffic.
    Source,
    /// It received it.
    Target,
}

/// One alert as it counts for an asset.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contribution {
    /// Packet time of the alert (µs).
    pub ts_us: i64,
    /// Alert kind.
    pub kind: String,
    /// Signature id.
    pub signature_id: u32,
    /// Severity 1–4.
    pub severity: u8,
    /// The other end.
    pub peer: IpAddr,
    /// Source or target.
    pub role: Role,
    /// Its score at alert time, `r`.
    pub score: f64,
    /// Decay-free sort key `ln r + t·ln2/h`.
    #[serde(skip)]
    key: f64,
    /// `e^(key - reference)`, the reference being its asset's (so a sum needs no exponential).
    #[serde(skip)]
    weight: f64,
}

impl Contribution {
    /// An alert scored `score` at `ts_us`.
    pub fn new(
        ts_us: i64,
        kind: &str,
        signature_id: u32,
        severity: u8,
        peer: IpAddr,
        role: Role,
        score: f64,
    ) -> Self {
        Contribution {
            ts_us,
            kind: kind.to_owned(),
            signature_id,
            severity,
            peer,
            role,
            score,
            key: f64::NEG_INFINITY,
            weight: 0.0,
        }
    }

    /// Its weight at `now_us`.
    pub fn decayed(&self, now_us: i64, half_life_us: f64) -> f64 {
        let age = (now_us - self.ts_us).max(0) as f64;
        self.score * (-age / half_life_us * std::f64::consts::LN_2).exp()
    }
}

/// One asset's alerts, strongest first (after decay; the order never changes with time).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Alerts {
    /// The strongest alerts.
    pub kept: Vec<Contribution>,
    /// Alerts counted in all.
    pub total: u64,
    /// `ln Σ e^key_i / i^1.5` over `kept`.
    #[serde(skip)]
    log_sum: f64,
    /// The key the cached weights are measured from.
    #[serde(skip)]
    reference: f64,
}

/// How far above the reference a key may go before the weights are measured afresh (e^600
/// is far inside f64).
const REBASE_ABOVE: f64 = 600.0;

impl Alerts {
    /// Adds an alert, keeping at most `max`; answers whether it was kept.
    pub fn add(&mut self, mut c: Contribution, max: usize, half_life_us: f64) -> bool {
        self.total += 1;
        if c.score <= 0.0 {
            return false;
        }
        c.key = c.score.ln() + time_exponent(c.ts_us, half_life_us);
        let at = self.kept.partition_point(|k| k.key >= c.key);
        if at >= max {
            return false;
        }
        if self.kept.is_empty() || c.key - self.reference > REBASE_ABOVE {
            self.reference = c.key;
            for k in &mut self.kept {
                k.weight = (k.key - self.reference).exp();
            }
        }
        c.weight = (c.key - self.reference).exp();
        self.kept.insert(at, c);
        self.kept.truncate(max);
        self.resum();
        true
    }

    /// Recomputes keys and the sum (after loading, or with another half-life).
    pub fn rekey(&mut self, half_life_us: f64) {
        for c in &mut self.kept {
            c.key = c.score.max(f64::MIN_POSITIVE).ln() + time_exponent(c.ts_us, half_life_us);
        }
        self.kept.sort_by(|a, b| b.key.total_cmp(&a.key));
        self.reference = self.kept.first().map_or(0.0, |c| c.key);
        for k in &mut self.kept {
            k.weight = (k.key - self.reference).exp();
        }
        self.resum();
    }

    /// The sum from the cached weights: one logarithm, no exponential.
    fn resum(&mut self) {
        if self.kept.is_empty() {
            self.log_sum = f64::NEG_INFINITY;
            return;
        }
        let s: f64 = self
            .kept
            .iter()
            .enumerate()
            .map(|(i, c)| c.weight * rank_weight(i + 1))
            .sum();
        self.log_sum = self.reference + s.ln();
    }

    /// The base score (before modifiers) at `now_us`, in O(1).
    pub fn base(&self, now_us: i64, half_life_us: f64) -> f64 {
        if self.kept.is_empty() {
            return 0.0;
        }
        let sum = (self.log_sum - time_exponent(now_us, half_life_us)).exp();
        (100.0 * sum / RISK_CAP).min(100.0)
    }

    /// The base score at `at_us` from the alerts seen by then (for trends), in O(kept).
    pub fn base_as_of(&self, at_us: i64, half_life_us: f64) -> f64 {
        let sum: f64 = self
            .kept
            .iter()
            .filter(|c| c.ts_us <= at_us)
            .enumerate()
            .map(|(i, c)| c.decayed(at_us, half_life_us) * rank_weight(i + 1))
            .sum();
        (100.0 * sum / RISK_CAP).min(100.0)
    }

    /// Each kept alert's weighed term at `now_us` (`r_i·decay / i^1.5`), in order.
    pub fn terms(&self, now_us: i64, half_life_us: f64) -> Vec<f64> {
        self.kept
            .iter()
            .enumerate()
            .map(|(i, c)| c.decayed(now_us, half_life_us) * rank_weight(i + 1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: f64 = 3_600_000_000.0; // one hour
    const T0: i64 = 1_767_225_600_000_000;

    fn c(ts: i64, score: f64) -> Contribution {
        Contribution::new(
            ts,
            "port_scan",
            1,
            2,
            [10, 0, 0, 1].into(),
            Role::Source,
            score,
        )
    }

    #[test]
    fn one_alert_of_100_scores_100_over_the_cap_and_halves_each_half_life() {
        let mut a = Alerts::default();
        a.add(c(T0, 100.0), 64, H);
        let b = a.base(T0, H);
        assert!((b - 100.0 * 100.0 / RISK_CAP).abs() < 1e-9, "{b}");
        let later = a.base(T0 + H as i64, H);
        assert!((later - b / 2.0).abs() < 1e-9, "{later}");
        assert!((a.base(T0 + 3 * H as i64, H) - b / 8.0).abs() < 1e-9);
    }

    #[test]
    fn alerts_are_weighed_strongest_first_by_one_over_i_to_the_1_5() {
        let mut a = Alerts::default();
        for s in [10.0, 50.0, 30.0] {
            a.add(c(T0, s), 64, H);
        }
        let want = (50.0 + 30.0 / 2f64.powf(1.5) + 10.0 / 3f64.powf(1.5)) * 100.0 / RISK_CAP;
        assert!((a.base(T0, H) - want).abs() < 1e-9);
        assert!((a.base_as_of(T0, H) - want).abs() < 1e-9);
        // An old strong alert can rank below a fresh weaker one: order follows decayed weight.
        let mut b = Alerts::default();
        b.add(c(T0, 80.0), 64, H);
        b.add(c(T0 + 2 * H as i64, 30.0), 64, H);
        assert_eq!(b.kept[0].score, 30.0, "80 two half-lives old weighs 20");
        let want = (30.0 + 20.0 / 2f64.powf(1.5)) * 100.0 / RISK_CAP;
        assert!((b.base(T0 + 2 * H as i64, H) - want).abs() < 1e-9);
    }

    #[test]
    fn only_the_strongest_are_kept_and_all_are_counted() {
        let mut a = Alerts::default();
        for s in 1..=10 {
            a.add(c(T0, s as f64), 3, H);
        }
        assert_eq!(a.total, 10);
        let kept: Vec<f64> = a.kept.iter().map(|c| c.score).collect();
        assert_eq!(kept, [10.0, 9.0, 8.0]);
    }

    #[test]
    fn modifiers_work_on_the_odds_and_keep_scores_below_100() {
        assert!((apply_modifier(50.0, 1.0) - 50.0).abs() < 1e-12);
        assert!((apply_modifier(50.0, 2.0) - 200.0 / 3.0).abs() < 1e-9);
        assert!(apply_modifier(99.0, 2.0) < 100.0);
        assert!(apply_modifier(20.0, 0.5) < 20.0);
        assert_eq!(criticality_modifier("critical"), 2.0);
        assert_eq!(tactic_weight("port_scan"), 0.7);
        assert_eq!(tactic_weight("kerberoasting"), 1.0);
        assert_eq!(tactic_weight("device_behavior_deviation"), 0.5);
    }
}
