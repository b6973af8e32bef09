//! The behaviour detector: hands each event to the detections that read it and turns what they
//! raise into alerts, once per detection and key within the detection's window.

use crate::beacon::Beacons;
use crate::brute::Brute;
use crate::config::BehaviourConfig;
use crate::dns::Dns;
use crate::novelty::Novelty;
use crate::scan::Scans;
use crate::volume::Volume;
use crate::{Alerted, Raise, Raised};
use netmonitor_common::window::Bounded;
use netmonitor_common::{Event, EventKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// Live counters, for status and benchmarks.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BehaviourStats {
    /// Events looked at.
    pub events: u64,
    /// Alerts raised, by kind.
    pub alerts: BTreeMap<String, u64>,
    /// Raised again within the window and dropped here.
    pub repeats: u64,
    /// Keys held over every tracking table.
    pub tracked: usize,
    /// Keys evicted because a table was full.
    pub evicted: u64,
}

/// The detector.
pub struct BehaviourDetector {
    cfg: BehaviourConfig,
    scans: Scans,
    brute: Brute,
    dns: Dns,
    beacons: Beacons,
    volume: Volume,
    novelty: Novelty,
    alerted: Alerted,
    seed: foldhash::fast::RandomState,
    stats: BehaviourStats,
    raised: Vec<Raise>,
}

impl BehaviourDetector {
    /// A detector with these settings (validated by the caller).
    pub fn new(cfg: BehaviourConfig) -> Self {
        let cap = cfg.max_tracked;
        BehaviourDetector {
            scans: Scans::new(cap),
            brute: Brute::new(cap),
            dns: Dns::new(cap),
            beacons: Beacons::new(cap),
            volume: Volume::new(cap),
            novelty: Novelty::new(cap),
            alerted: Bounded::new(cap),
            seed: foldhash::fast::RandomState::default(),
            stats: BehaviourStats::default(),
            raised: Vec::new(),
            cfg,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &BehaviourConfig {
        &self.cfg
    }

    /// Replaces the settings (the tables are kept; a smaller `max_tracked` applies as they
    /// are rebuilt at the next start).
    pub fn set_config(&mut self, cfg: BehaviourConfig) {
        self.cfg = cfg;
    }

    /// Counters.
    pub fn stats(&self) -> BehaviourStats {
        let mut s = self.stats.clone();
        s.tracked = self.scans.tracked()
            + self.brute.tracked()
            + self.dns.tracked()
            + self.beacons.tracked()
            + self.volume.tracked()
            + self.novelty.tracked()
            + self.alerted.len();
        s.evicted = self.scans.evicted()
            + self.brute.evicted()
            + self.dns.evicted()
            + self.beacons.evicted()
            + self.volume.evicted()
            + self.novelty.evicted()
            + self.alerted.evicted;
        s
    }

    /// Looks at one event; alerts go to `out`.
    pub fn inspect(&mut self, ev: &Event, out: &mut Vec<Event>) {
        if !self.cfg.enabled {
            return;
        }
        let cfg = &self.cfg;
        let h = &ev.header;
        let raised = &mut Raised {
            list: &mut self.raised,
            alerted: &self.alerted,
            seed: &self.seed,
            now: h.ts.0,
            repeats: &mut self.stats.repeats,
        };
        match &ev.kind {
            EventKind::FlowStart(s) => self.scans.on_start(cfg, h, s, raised),
            EventKind::Flow(f) => {
                self.scans.on_flow(cfg, h, f, raised);
                self.brute.on_flow(cfg, h, f, raised);
                self.beacons.on_flow(cfg, h, f, raised);
                self.volume.on_flow(cfg, h, f, raised);
                self.novelty.on_flow(cfg, h, f, raised);
            }
            EventKind::Dns(d) => self.dns.on_dns(cfg, h, d, raised),
            EventKind::Http(r) => self.brute.on_http(cfg, h, r, raised),
            _ => return,
        }
        self.stats.events += 1;
        let now = h.ts.0;
        for r in self.raised.drain(..) {
            let key = (r.rule.sid, r.key);
            let fresh = match self.alerted.last_touched(&key) {
                Some(last) => now.saturating_sub(last) >= r.window || last > now,
                None => true,
            };
            if !fresh {
                self.stats.repeats += 1;
                continue;
            }
            self.alerted.remove(&key);
            self.alerted.touch(key, now, r.window);
            *self
                .stats
                .alerts
                .entry(r.rule.threat_type.to_owned())
                .or_default() += 1;
            out.push(Event {
                header: h.clone(),
                kind: EventKind::Alert(r.rule.alert(r.evidence)),
            });
        }
    }
}
