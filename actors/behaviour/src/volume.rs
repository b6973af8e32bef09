//! Outbound volume: bytes each local host sends to hosts outside the local networks, summed per
//! period (packet time). A period over the absolute threshold, or over the baseline factor times
//! the host's usual period (once it has a history), raises one alert per host and period.

use crate::config::BehaviourConfig;
use crate::rules::*;
use crate::scan::secs;
use crate::Raised;
use netmonitor_common::window::Bounded;
use netmonitor_common::{EventHeader, FlowRecord};
use serde_json::json;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Past periods remembered per host.
const HISTORY: usize = 24;
/// Past periods needed before the baseline counts.
const MIN_HISTORY: usize = 3;

#[derive(Debug, Default)]
pub(crate) struct Host {
    period: i64,
    bytes: u64,
    history: VecDeque<u64>,
    alerted: bool,
}

pub(crate) struct Volume {
    hosts: Bounded<IpAddr, Host>,
}

impl Volume {
    pub(crate) fn new(cap: usize) -> Self {
        Volume {
            hosts: Bounded::new(cap),
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.hosts.evicted
    }

    pub(crate) fn tracked(&self) -> usize {
        self.hosts.len()
    }

    pub(crate) fn on_flow(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        f: &FlowRecord,
        out: &mut Raised,
    ) {
        let c = &cfg.volume;
        let k = &h.key;
        if !c.enabled || !cfg.is_local(k.src_ip) || cfg.is_local(k.dst_ip) {
            return;
        }
        let len = secs(c.bucket_secs).max(1);
        let now = f.end.0;
        let period = now.div_euclid(len);
        let host = self.hosts.touch(k.src_ip, now, len * HISTORY as i64);
        if host.period != period {
            if host.period != 0 {
                // Periods without traffic count as zero.
                let gap = (period - host.period - 1).clamp(0, HISTORY as i64) as usize;
                host.history.push_back(host.bytes);
                host.history.extend(std::iter::repeat_n(0, gap));
                while host.history.len() > HISTORY {
                    host.history.pop_front();
                }
            }
            host.period = period;
            host.bytes = 0;
            host.alerted = false;
        }
        host.bytes += f.bytes_toserver;
        if host.alerted {
            return;
        }
        let baseline = (host.history.len() >= MIN_HISTORY)
            .then(|| host.history.iter().sum::<u64>() as f64 / host.history.len() as f64);
        let over_absolute = host.bytes >= c.absolute_bytes;
        let over_baseline = baseline.is_some_and(|b| {
            host.bytes >= c.min_bytes && host.bytes as f64 >= c.baseline_factor * b.max(1.0)
        });
        if over_absolute || over_baseline {
            host.alerted = true;
            out.raise(&OUTBOUND_VOLUME, (k.src_ip, period), len, || {
                json!({"host": k.src_ip.to_string(), "bytes_out": host.bytes,
                       "period_secs": c.bucket_secs, "baseline_bytes": baseline.map(|b| b.round()),
                       "baseline_factor": c.baseline_factor, "absolute_bytes": c.absolute_bytes,
                       "reason": if over_absolute { "absolute" } else { "baseline" },
                       "last_destination": k.dst_ip.to_string()})
            });
        }
    }
}
