//! Risk scoring and correlation on the actor plane: every alert that passes the alert stage
//! raises the risk of the assets it involves (Elastic-style aggregation with criticality,
//! exposure, chain membership and a packet-time half-life), joins an attack chain by its
//! kill-chain stage, and is counted per ATT&CK technique for `get_mitre_mapping`.
#![deny(missing_docs)]

pub mod actor;
pub mod book;
pub mod chain;
pub mod config;
pub mod counts;
pub mod score;
#[cfg(test)]
mod tests;

pub use actor::{QueryRisk, RiskActor, RiskLoaded, UpdateRisk};
pub use book::RiskBook;
pub use config::RiskConfig;

/// A hash map with a fast hasher (addresses and numbers are not attacker-chosen keys here
/// that could collide on purpose: foldhash is seeded per process).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
