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
use std::hash::{BuildHasher, Hash};

/// What a detection raised, before the once-per-window check.
#[derive(Debug)]
pub(crate) struct Raise {
    rule: &'static rules::Rule,
    key: u64,
    window: i64,
    evidence: serde_json::Value,
}

/// The once-per-window table: (rule sid, hashed key) → when it was last raised. Keys are what a
/// detection is about (source, target, port...), hashed rather than formatted so that a source
/// far past a threshold costs no string per event; the seed is random per process.
pub(crate) type Alerted = netmonitor_common::window::Bounded<(u32, u64), ()>;

/// Where detectors put what they raise. An alert whose rule and key were raised within its
/// window is only counted as a repeat: its evidence (samples, scores) is never built, so a
/// source far past a threshold costs what a quiet one does.
pub(crate) struct Raised<'a> {
    list: &'a mut Vec<Raise>,
    alerted: &'a Alerted,
    seed: &'a foldhash::fast::RandomState,
    now: i64,
    repeats: &'a mut u64,
}

impl Raised<'_> {
    /// Whether `rule` was raised for `key` within `window` (counted as a repeat): a detector
    /// asks before an expensive judgement.
    pub(crate) fn is_repeat(
        &mut self,
        rule: &'static rules::Rule,
        key: impl Hash,
        window: i64,
    ) -> bool {
        let key = self.seed.hash_one(key);
        let repeat = self
            .alerted
            .last_touched(&(rule.sid, key))
            .is_some_and(|last| self.now.saturating_sub(last) < window && last <= self.now);
        if repeat {
            *self.repeats += 1;
        }
        repeat
    }

    /// Raises `rule` for `key` unless it is a repeat; `evidence` is called only if not.
    pub(crate) fn raise(
        &mut self,
        rule: &'static rules::Rule,
        key: impl Hash,
        window: i64,
        evidence: impl FnOnce() -> serde_json::Value,
    ) {
        let key = self.seed.hash_one(key);
        if let Some(last) = self.alerted.last_touched(&(rule.sid, key)) {
            if self.now.saturating_sub(last) < window && last <= self.now {
                *self.repeats += 1;
                return;
            }
        }
        self.list.push(Raise {
            rule,
            key,
            window,
            evidence: evidence(),
        });
    }
}

#[cfg(test)]
mod tests;
