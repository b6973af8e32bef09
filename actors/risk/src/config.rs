//! `[risk]`: how alerts become asset risk, when chains form, and how often history is kept.
//! The formula these settings feed is stated in `docs/risk.md` and in [`crate::score`].

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[risk]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Whether the risk actor runs.
    pub enabled: bool,
    /// An alert's weight halves every this many hours of packet time.
    pub half_life_hours: f64,
    /// Lowest score of each level above `low` (`medium`, `high`, `critical`).
    pub levels: LevelBounds,
    /// Weight of an alert in which the asset is the target rather than the source.
    pub target_weight: f64,
    /// Weight per alert kind, replacing the one derived from its ATT&CK tactics.
    pub kind_weights: BTreeMap<String, f64>,
    /// Odds multiplier for an asset that talks to the internet.
    pub talks_to_internet: f64,
    /// Odds multiplier for an asset the internet reaches (it answered an outside client).
    pub listens_on_internet: f64,
    /// Odds multiplier added per chain stage beyond the first (capped at 2 in all).
    pub chain_stage_weight: f64,
    /// Alerts kept per asset (the strongest, after decay; the rest are only counted).
    pub max_contributions: usize,
    /// Assets tracked at most (the weakest go first).
    pub max_assets: usize,
    /// Packet-time hours a chain stays open after its last alert.
    pub chain_window_hours: f64,
    /// Stages a chain needs before it raises `attack_chain`.
    pub chain_min_stages: usize,
    /// Chains kept at most (closed ones go first).
    pub max_chains: usize,
    /// Kinds that count for risk but never start or extend a chain: findings about how a host
    /// is configured, not steps an attacker takes.
    pub chain_excluded_kinds: Vec<String>,
    /// Seconds of packet time between history snapshots.
    pub history_interval_secs: u64,
    /// Lowest score a snapshot records.
    pub history_min_score: f64,
    /// Most assets a snapshot records (the highest).
    pub history_max_assets: usize,
    /// Hours of ATT&CK counters kept in memory (older windows are read from the database).
    pub mitre_hours: u64,
    /// Seconds between saves of what changed.
    pub save_interval_secs: u64,
    /// Networks that are ours (exposure is judged against them).
    pub local_networks: Vec<IpNet>,
}

/// Lower bounds of the levels above `low`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelBounds {
    /// From this score on: `medium`.
    pub medium: f64,
    /// From this score on: `high`.
    pub high: f64,
    /// From this score on: `critical`.
    pub critical: f64,
}

impl Default for LevelBounds {
    fn default() -> Self {
        LevelBounds {
            medium: 40.0,
            high: 70.0,
            critical: 90.0,
        }
    }
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            enabled: true,
            half_life_hours: 24.0,
            levels: LevelBounds::default(),
            target_weight: 0.5,
            kind_weights: BTreeMap::new(),
            talks_to_internet: 1.1,
            listens_on_internet: 1.25,
            chain_stage_weight: 0.25,
            max_contributions: 64,
            max_assets: 200_000,
            chain_window_hours: 24.0,
            chain_min_stages: 2,
            max_chains: 10_000,
            chain_excluded_kinds: [
                "weak_tls_version",
                "weak_tls_cipher",
                "expired_certificate",
                "certificate_not_yet_valid",
                "self_signed_certificate",
                "sni_certificate_mismatch",
                "tls_missing_sni",
                "kerberos_weak_encryption",
                "new_device",
                "new_service",
                "device_behavior_deviation",
                "long_connection",
            ]
            .map(String::from)
            .to_vec(),
            history_interval_secs: 300,
            history_min_score: 1.0,
            history_max_assets: 1_000,
            mitre_hours: 168,
            save_interval_secs: 10,
            local_networks: netmonitor_devices::config::default_local_networks(),
        }
    }
}

impl RiskConfig {
    /// Checks the settings, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("risk.{name}: must be a positive number"))
            }
        };
        pos("half_life_hours", self.half_life_hours)?;
        pos("chain_window_hours", self.chain_window_hours)?;
        pos("talks_to_internet", self.talks_to_internet)?;
        pos("listens_on_internet", self.listens_on_internet)?;
        if !(0.0..=1.0).contains(&self.target_weight) {
            return Err("risk.target_weight: must be within 0..1".into());
        }
        if !(0.0..=1.0).contains(&self.chain_stage_weight) {
            return Err("risk.chain_stage_weight: must be within 0..1".into());
        }
        for (k, w) in &self.kind_weights {
            if !(0.0..=1.0).contains(w) {
                return Err(format!("risk.kind_weights.{k}: must be within 0..1"));
            }
            if netmonitor_common::mitre::techniques_for(k).is_none() {
                return Err(format!("risk.kind_weights.{k}: not an alert kind"));
            }
        }
        let l = &self.levels;
        if !(0.0 < l.medium && l.medium < l.high && l.high < l.critical && l.critical <= 100.0) {
            return Err("risk.levels: need 0 < medium < high < critical <= 100".into());
        }
        if self.max_contributions == 0 || self.max_contributions > 10_000 {
            return Err("risk.max_contributions: must be 1..10000".into());
        }
        if self.chain_min_stages < 2 {
            return Err("risk.chain_min_stages: at least 2".into());
        }
        if self.history_interval_secs < 10 {
            return Err("risk.history_interval_secs: at least 10".into());
        }
        if self.mitre_hours == 0 || self.mitre_hours > 24 * 90 {
            return Err("risk.mitre_hours: must be 1..2160".into());
        }
        Ok(())
    }

    /// Whether `a` is one of ours.
    pub fn is_local(&self, a: std::net::IpAddr) -> bool {
        self.local_networks.iter().any(|n| n.contains(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        RiskConfig::default().validate().unwrap();
        let c: RiskConfig = toml::from_str("half_life_hours = 0").unwrap();
        assert!(c.validate().unwrap_err().contains("half_life_hours"));
        let c: RiskConfig = toml::from_str("[kind_weights]\nnot_a_kind = 0.5").unwrap();
        assert!(c.validate().unwrap_err().contains("not_a_kind"));
        let c: RiskConfig = toml::from_str("[levels]\nhigh = 30").unwrap();
        assert!(c.validate().unwrap_err().contains("levels"));
        assert!(toml::from_str::<RiskConfig>("typo = 1").is_err());
    }
}
