//! Behaviour detections, from flow records and DNS/HTTP events rather than packets: port scans
//! (vertical, horizontal, threshold random walk), SYN and connection floods, brute force and
//! password spraying on login services, DNS tunnelling and generated domains, beaconing scored
//! as RITA does, long connections, outbound volume against a learned baseline, new devices and
//! services. Local chatter (multicast, link-local, mDNS, LLMNR, SSDP, NetBIOS, `.local`) is
//! never judged. Every table is bounded and counts its evictions.

pub mod actor;
mod beacon;
mod brute;
pub mod config;
pub mod detect;
mod dns;
pub mod names;
mod novelty;
pub mod rules;
mod scan;
mod volume;

pub use beacon::{score as beacon_score, BeaconScore};
pub use config::BehaviourConfig;
pub use detect::{BehaviourDetector, BehaviourStats};

/// What a detection raised, before the once-per-window check.
#[derive(Debug)]
pub(crate) struct Raise {
    rule: &'static rules::Rule,
    key: String,
    window: i64,
    evidence: serde_json::Value,
}

impl Raise {
    fn new(
        rule: &'static rules::Rule,
        key: String,
        window: i64,
        evidence: serde_json::Value,
    ) -> Self {
        Raise {
            rule,
            key,
            window,
            evidence,
        }
    }
}

#[cfg(test)]
mod tests;
