//! What each device normally does, learnt over a window of capture time: the services it
//! answers, the ports and protocols it uses as a client, its peers, and how many bytes it
//! sends per hour. Once learnt, a device that steps outside it — a printer opening SSH to the
//! internet, a camera talking to a new peer, a host sending ten times its usual volume — is
//! reported as a deviation (once per thing), for the alert stage.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// Peers remembered per device; a device with more than [`STABLE_PEERS`] peers (a browsing
/// workstation) is not judged on new peers at all.
pub const MAX_PEERS: usize = 64;
/// Most peers a baseline may hold for new peers to count as deviations.
pub const STABLE_PEERS: usize = 16;
/// Ports, protocols and services kept per baseline.
const MAX_ITEMS: usize = 64;
/// Hours of volume history kept.
const HOURS: usize = 168;
/// Deviations remembered (each reported once).
const MAX_DEVIATIONS: usize = 64;
const HOUR_US: i64 = 3_600_000_000;

/// Learning state.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Baseline {
    /// `learning`, `learned` or `stale` (see [`Baseline::status`]).
    pub state: String,
    /// Earliest capture time learnt from (microseconds).
    pub started_us: i64,
    /// Latest capture time learnt from: learning ends when the two are a window apart, in
    /// whatever order the flows arrive.
    pub latest_us: i64,
    /// When it was learnt.
    pub learned_us: Option<i64>,
    /// Services answered (`tcp/631`).
    pub services: BTreeSet<String>,
    /// Ports used as a client (`tcp/443`).
    pub client_ports: BTreeSet<String>,
    /// Application protocols.
    pub protocols: BTreeSet<String>,
    /// Addresses talked to (bounded).
    pub peers: BTreeSet<String>,
    /// Peers overflowed [`MAX_PEERS`]: new peers are not judged.
    pub many_peers: bool,
    /// Bytes sent in each closed hour, oldest first.
    pub hourly_bytes_out: VecDeque<u64>,
    /// The hour being counted and its bytes so far.
    pub hour: i64,
    /// Bytes sent in the current hour.
    pub hour_bytes_out: u64,
    /// Deviations reported (`kind:value`).
    pub deviations: Vec<String>,
}

/// Learning settings.
#[derive(Clone, Copy, Debug)]
pub struct LearnSettings {
    /// Capture time a device is watched before its baseline counts.
    pub learning_us: i64,
    /// A learnt device sending more than this many times its mean hourly volume deviates.
    pub volume_factor: f64,
    /// ... and at least this many bytes in the hour.
    pub volume_min_bytes: u64,
}

/// One thing a device did that its baseline does not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Deviation {
    /// `new_service`, `new_client_port`, `new_protocol`, `new_peer` or `volume`.
    pub kind: &'static str,
    /// What was new (`tcp/22`, an address, bytes).
    pub value: String,
    /// Evidence for the alert.
    pub evidence: serde_json::Value,
}

/// One flow of a device, as learning sees it.
pub struct Observed<'a> {
    /// Capture time.
    pub ts: i64,
    /// The device answered this service (server side).
    pub service: Option<&'a str>,
    /// The device used this port as a client.
    pub client_port: Option<&'a str>,
    /// Application protocol.
    pub protocol: Option<&'a str>,
    /// The other end.
    pub peer: Option<&'a str>,
    /// Bytes the device sent.
    pub bytes_out: u64,
}

fn add(set: &mut BTreeSet<String>, v: &str) -> bool {
    if set.contains(v) || set.len() >= MAX_ITEMS {
        return false;
    }
    set.insert(v.to_owned());
    true
}

impl Baseline {
    /// State at capture time `now`: `learning` until the window has passed since learning
    /// began, then `learned`; `stale` when not seen for a learning window since.
    pub fn status(&self, last_seen_us: i64, now: i64, s: &LearnSettings) -> &'static str {
        if self.learned_us.is_none() {
            "learning"
        } else if now.saturating_sub(last_seen_us) > s.learning_us {
            "stale"
        } else {
            "learned"
        }
    }

    /// How far learning is, 0–1.
    pub fn progress(&self, now: i64, s: &LearnSettings) -> f64 {
        if self.learned_us.is_some() {
            return 1.0;
        }
        let done = now.saturating_sub(self.started_us) as f64 / s.learning_us.max(1) as f64;
        (done.clamp(0.0, 1.0) * 100.0).round() / 100.0
    }

    /// Mean bytes sent per closed hour (none before one hour closed).
    pub fn mean_hourly_bytes_out(&self) -> Option<f64> {
        (!self.hourly_bytes_out.is_empty()).then(|| {
            self.hourly_bytes_out.iter().sum::<u64>() as f64 / self.hourly_bytes_out.len() as f64
        })
    }

    /// Folds one flow in: while learning it grows the baseline; once learnt it returns what
    /// deviates (each thing once).
    pub fn observe(&mut self, o: &Observed, s: &LearnSettings) -> Vec<Deviation> {
        if self.started_us == 0 {
            self.started_us = o.ts;
            self.state = "learning".into();
        }
        if self.learned_us.is_none() {
            self.started_us = self.started_us.min(o.ts);
            self.latest_us = self.latest_us.max(o.ts);
        }
        let mut out = Vec::new();
        let hour = o.ts.div_euclid(HOUR_US);
        if self.hour == 0 {
            self.hour = hour;
        }
        if hour > self.hour {
            if self.learned_us.is_none() {
                self.hourly_bytes_out.push_back(self.hour_bytes_out);
                if self.hourly_bytes_out.len() > HOURS {
                    self.hourly_bytes_out.pop_front();
                }
            }
            self.hour = hour;
            self.hour_bytes_out = 0;
        }
        self.hour_bytes_out += o.bytes_out;
        let learning = self.learned_us.is_none();
        if learning {
            for (set, v) in [
                (&mut self.services, o.service),
                (&mut self.client_ports, o.client_port),
                (&mut self.protocols, o.protocol),
            ] {
                if let Some(v) = v {
                    add(set, v);
                }
            }
            if let Some(p) = o.peer {
                if !self.peers.contains(p) {
                    if self.peers.len() >= MAX_PEERS {
                        self.many_peers = true;
                    } else {
                        self.peers.insert(p.to_owned());
                    }
                }
            }
            if self.latest_us.saturating_sub(self.started_us) >= s.learning_us {
                self.learned_us = Some(o.ts);
                self.state = "learned".into();
            }
            return out;
        }
        let stable_peers = !self.many_peers && self.peers.len() <= STABLE_PEERS;
        let checks: [(&'static str, Option<&str>, bool); 4] = [
            (
                "new_service",
                o.service,
                o.service.is_some_and(|v| !self.services.contains(v)),
            ),
            (
                "new_client_port",
                o.client_port,
                o.client_port
                    .is_some_and(|v| !self.client_ports.contains(v)),
            ),
            (
                "new_protocol",
                o.protocol,
                o.protocol.is_some_and(|v| !self.protocols.contains(v)),
            ),
            (
                "new_peer",
                o.peer,
                stable_peers && o.peer.is_some_and(|v| !self.peers.contains(v)),
            ),
        ];
        for (kind, value, new) in checks {
            let (true, Some(v)) = (new, value) else {
                continue;
            };
            let key = format!("{kind}:{v}");
            if self.deviations.contains(&key) || self.deviations.len() >= MAX_DEVIATIONS {
                continue;
            }
            self.deviations.push(key);
            let known: Vec<&String> = match kind {
                "new_service" => self.services.iter().collect(),
                "new_client_port" => self.client_ports.iter().collect(),
                "new_protocol" => self.protocols.iter().collect(),
                _ => self.peers.iter().collect(),
            };
            out.push(Deviation {
                kind,
                value: v.to_owned(),
                evidence: serde_json::json!({"deviation": kind, "value": v, "baseline": known}),
            });
        }
        if let Some(mean) = self.mean_hourly_bytes_out() {
            let over = self.hour_bytes_out >= s.volume_min_bytes
                && self.hour_bytes_out as f64 >= s.volume_factor * mean.max(1.0);
            let key = format!("volume:{}", self.hour);
            if over && !self.deviations.contains(&key) && self.deviations.len() < MAX_DEVIATIONS {
                self.deviations.push(key);
                out.push(Deviation {
                    kind: "volume",
                    value: self.hour_bytes_out.to_string(),
                    evidence: serde_json::json!({"deviation": "volume",
                        "bytes_out_this_hour": self.hour_bytes_out,
                        "baseline_mean_hourly_bytes_out": mean.round(),
                        "factor": s.volume_factor}),
                });
            }
        }
        out
    }
}
