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
