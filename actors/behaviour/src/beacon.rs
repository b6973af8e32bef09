//! Beaconing and long connections. Per client, server and port, the start times of its
//! connections and the bytes each sent are kept for the window; once a pair has enough, it is
//! scored as RITA scores beacons: for the intervals, Bowley skewness (symmetry), median absolute
//! deviation against a jitter tolerance (regularity) and the connection count; for the sizes,
//! skewness, deviation and how small the usual size is. The score, 0 to 1, is the mean of the
//! two halves; its parts go in the evidence. Bursts (connections spanning less than
//! `min_span_secs`, or a median interval under `min_interval_secs`) are not scored as beacons.

use crate::config::BehaviourConfig;
use crate::names::is_chatter;
use crate::rules::*;
use crate::scan::secs;
use crate::Raised;
use netmonitor_common::window::Bounded;
use netmonitor_common::{EventHeader, FlowRecord};
use serde_json::json;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Connections remembered per pair at most.
const MAX_CONNECTIONS: usize = 512;
/// A pair is scored again after this many new connections.
const RESCORE_EVERY: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct Pair {
    /// (start time µs, bytes sent by the client).
    conns: VecDeque<(i64, u64)>,
    since_score: usize,
}

pub(crate) struct Beacons {
    pairs: Bounded<(IpAddr, IpAddr, u16), Pair>,
    long: Bounded<(IpAddr, IpAddr, u16), ()>,
}

/// The parts of a beacon score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeaconScore {
    /// Mean of the interval and size halves.
    pub score: f64,
    /// 1 − |Bowley skewness| of the intervals.
    pub interval_skew: f64,
    /// 1 − MAD/jitter tolerance of the intervals.
    pub interval_dispersion: f64,
    /// Connections / connections for a full score.
    pub count: f64,
    /// 1 − |Bowley skewness| of the sizes.
    pub size_skew: f64,
    /// 1 − MAD/size tolerance of the sizes.
    pub size_dispersion: f64,
    /// 1 − mode size / 65,535 (beacons are small).
    pub size_smallness: f64,
    /// Median interval, seconds.
    pub median_interval_secs: f64,
    /// Median size, bytes.
    pub median_size: f64,
}

fn quartiles(sorted: &[f64]) -> (f64, f64, f64) {
    let q = |p: f64| {
        let i = p * (sorted.len() - 1) as f64;
        let (lo, hi) = (i.floor() as usize, i.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo as f64)
    };
    (q(0.25), q(0.5), q(0.75))
}

fn bowley(sorted: &[f64]) -> f64 {
    let (q1, q2, q3) = quartiles(sorted);
    if q3 - q1 <= f64::EPSILON || q2 == q1 || q2 == q3 {
        0.0
    } else {
        (q3 + q1 - 2.0 * q2) / (q3 - q1)
    }
}

fn mad(sorted: &[f64]) -> f64 {
    let (_, med, _) = quartiles(sorted);
    let mut dev: Vec<f64> = sorted.iter().map(|v| (v - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    quartiles(&dev).1
}

fn mode(values: &[f64]) -> f64 {
    let mut counts: std::collections::HashMap<u64, usize> = Default::default();
    for v in values {
        *counts.entry(*v as u64).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(v, n)| (*n, std::cmp::Reverse(*v)))
        .map_or(0.0, |(v, _)| v as f64)
}

/// Scores connections (start µs, bytes) sorted by start; `None` with fewer than four.
pub fn score(conns: &[(i64, u64)], cfg: &crate::config::BeaconConfig) -> Option<BeaconScore> {
    if conns.len() < 4 {
        return None;
    }
    let mut deltas: Vec<f64> = conns
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) as f64 / 1e6)
        .collect();
    deltas.sort_by(f64::total_cmp);
    let mut sizes: Vec<f64> = conns.iter().map(|c| c.1 as f64).collect();
    sizes.sort_by(f64::total_cmp);
    let clamp = |v: f64| v.clamp(0.0, 1.0);
    let interval_skew = clamp(1.0 - bowley(&deltas).abs());
    let interval_dispersion = clamp(1.0 - mad(&deltas) / cfg.jitter_secs);
    let count = clamp(conns.len() as f64 / cfg.full_count.max(1) as f64);
    let size_skew = clamp(1.0 - bowley(&sizes).abs());
    let size_dispersion = clamp(1.0 - mad(&sizes) / cfg.size_jitter_bytes);
    let size_smallness = clamp(1.0 - mode(&sizes) / 65_535.0);
    let ts = (interval_skew + interval_dispersion + count) / 3.0;
    let ds = (size_skew + size_dispersion + size_smallness) / 3.0;
    Some(BeaconScore {
        score: (ts + ds) / 2.0,
        interval_skew,
        interval_dispersion,
        count,
        size_skew,
        size_dispersion,
        size_smallness,
        median_interval_secs: quartiles(&deltas).1,
        median_size: quartiles(&sizes).1,
    })
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl Beacons {
    pub(crate) fn new(cap: usize) -> Self {
        Beacons {
            pairs: Bounded::new(cap),
            long: Bounded::new(cap),
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.pairs.evicted + self.long.evicted
    }

    pub(crate) fn tracked(&self) -> usize {
        self.pairs.len() + self.long.len()
    }

    pub(crate) fn on_flow(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        f: &FlowRecord,
        out: &mut Raised,
    ) {
        let c = &cfg.beacon;
        let k = &h.key;
        if !c.enabled || is_chatter(k.dst_ip, k.src_port, k.dst_port) || k.dst_port == 53 {
            return;
        }
        let window = secs(c.window_secs);
        let key = (k.src_ip, k.dst_ip, k.dst_port);
        let duration = f.end.0.saturating_sub(f.start.0);
        if c.long_connection_secs > 0 && duration >= secs(c.long_connection_secs) {
            out.raise(&LONG_CONNECTION, key, window, || {
                json!({"client": k.src_ip.to_string(), "server": k.dst_ip.to_string(),
                       "port": k.dst_port, "duration_secs": duration / 1_000_000,
                       "threshold_secs": c.long_connection_secs,
                       "bytes": f.bytes_toserver + f.bytes_toclient})
            });
            self.long.touch(key, f.end.0, window);
        }
        // As RITA does, beacons are looked for from our hosts to the outside unless asked.
        let outbound = cfg.is_local(k.src_ip) && !cfg.is_local(k.dst_ip);
        if !c.internal_pairs && !outbound {
            return;
        }
        let start = f.start.0;
        let p = self.pairs.touch(key, start, window);
        let horizon = start.saturating_sub(window);
        while p.conns.front().is_some_and(|c| c.0 < horizon) {
            p.conns.pop_front();
        }
        if p.conns.len() >= MAX_CONNECTIONS {
            p.conns.pop_front();
        }
        // Records arrive in end order; keep the starts sorted.
        let at = p.conns.partition_point(|c| c.0 <= start);
        p.conns.insert(at, (start, f.payload_toserver));
        p.since_score += 1;
        if p.conns.len() < c.min_connections || p.since_score < RESCORE_EVERY {
            return;
        }
        p.since_score = 0;
        let span = p.conns.back().map_or(0, |l| l.0) - p.conns.front().map_or(0, |f| f.0);
        if span < secs(c.min_span_secs) {
            return;
        }
        let conns: Vec<(i64, u64)> = p.conns.iter().copied().collect();
        let Some(s) = score(&conns, c) else { return };
        if s.score >= c.score && s.median_interval_secs >= c.min_interval_secs {
            out.raise(&BEACONING, key, window, || {
                json!({"client": k.src_ip.to_string(), "server": k.dst_ip.to_string(),
                       "port": k.dst_port, "connections": conns.len(),
                       "score": round(s.score), "threshold": c.score,
                       "interval_skew_score": round(s.interval_skew),
                       "interval_dispersion_score": round(s.interval_dispersion),
                       "count_score": round(s.count),
                       "size_skew_score": round(s.size_skew),
                       "size_dispersion_score": round(s.size_dispersion),
                       "size_smallness_score": round(s.size_smallness),
                       "median_interval_secs": round(s.median_interval_secs),
                       "median_size_bytes": s.median_size,
                       "window_secs": c.window_secs})
            });
        }
    }
}
