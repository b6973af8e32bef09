//! The risk book: every asset's alerts and modifiers, the attack chains and the ATT&CK
//! counters, folded in as alert batches arrive. Free of actix and the database: the actor
//! feeds it and saves what it hands out.

mod report;

use crate::chain::{ChainAlert, Chains};
use crate::config::RiskConfig;
use crate::counts::MitreCounts;
use crate::score::{self, Alerts, Contribution, Level, Role};
use crate::FastMap;
use netmonitor_common::{Alert, Event, EventHeader, EventKind, FlowKey, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Exposure flag: the asset talked to an outside address.
pub const TALKS_OUT: u8 = 1;
/// Exposure flag: an outside address reached a service of the asset.
pub const LISTENS_OUT: u8 = 2;

/// Signature ids of the alerts this book raises.
pub mod sids {
    /// `risk_threshold` into medium (high and critical follow).
    pub const RISK_MEDIUM: u32 = 9_700_001;
    /// `attack_chain`.
    pub const ATTACK_CHAIN: u32 = 9_700_010;
}

/// One scored asset.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Asset {
    /// Its alerts.
    pub alerts: Alerts,
    /// First alert (µs).
    pub first_us: i64,
    /// Last alert (µs).
    pub last_us: i64,
    /// Level at the last evaluation.
    pub level: Option<Level>,
    /// Criticality set by hand.
    pub criticality: Option<String>,
    /// Its device and that device's criticality, from the device inventory.
    pub device: Option<(String, String)>,
    /// Sensors that saw its alerts.
    pub sensors: Vec<String>,
    /// Exposure flags ([`TALKS_OUT`], [`LISTENS_OUT`]).
    #[serde(default)]
    pub exposure: u8,
    /// The chain it is a source of.
    #[serde(default)]
    pub chain: Option<u64>,
}

/// An asset's score at one time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// 0–100, modifiers applied.
    pub score: f64,
    /// The normalised alert sum before modifiers.
    pub base: f64,
    /// Product of the modifiers.
    pub modifier: f64,
    /// Its level.
    pub level: Level,
}

/// One history row.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// Snapshot time (µs, packet time).
    pub ts_us: i64,
    /// The asset.
    pub asset: IpAddr,
    /// Its score.
    pub score: f64,
    /// Its level.
    pub level: Level,
}

/// Filters of [`RiskBook::top`].
#[derive(Clone, Debug, Default)]
pub struct TopFilter {
    /// Lowest level.
    pub level: Option<Level>,
    /// `internal` or `external`.
    pub kind: Option<String>,
    /// Seen by this sensor.
    pub sensor: Option<String>,
}

/// What changed since the last save.
#[derive(Default)]
pub struct Changes {
    /// Assets to upsert, with their score and exposure flags.
    pub assets: Vec<(IpAddr, Asset, Scored, u8)>,
    /// Chains to upsert.
    pub chains: Vec<crate::chain::Chain>,
    /// ATT&CK cells to upsert.
    pub mitre: Vec<(i64, String, crate::counts::Cell)>,
    /// History rows to append.
    pub history: Vec<HistoryRow>,
}

impl Changes {
    /// Whether there is nothing to save.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
            && self.chains.is_empty()
            && self.mitre.is_empty()
            && self.history.is_empty()
    }
}

/// The book.
pub struct RiskBook {
    cfg: RiskConfig,
    sensor: String,
    half_life_us: f64,
    window_us: i64,
    assets: FastMap<IpAddr, Asset>,
    /// Exposure of addresses not (yet) scored; moved into the asset when it is.
    exposure: FastMap<IpAddr, u8>,
    /// Chains.
    pub chains: Chains,
    /// ATT&CK counters.
    pub mitre: MitreCounts,
    now_us: i64,
    next_snapshot_us: i64,
    /// The newest snapshot boundary taken (0: none yet).
    last_snapshot_us: i64,
    /// Rows not yet saved, one per (time, asset): a late alert rewrites the ones it changes.
    history: HashMap<(i64, IpAddr), HistoryRow>,
    raised: Vec<Event>,
    dirty: HashSet<IpAddr>,
    evicted: u64,
}

impl RiskBook {
    /// An empty book for this sensor.
    pub fn new(cfg: RiskConfig, sensor: &str) -> Self {
        RiskBook {
            half_life_us: cfg.half_life_hours * 3.6e9,
            window_us: (cfg.chain_window_hours * 3.6e9) as i64,
            cfg,
            sensor: sensor.to_owned(),
            assets: FastMap::default(),
            exposure: FastMap::default(),
            chains: Chains::default(),
            mitre: MitreCounts::default(),
            now_us: 0,
            next_snapshot_us: 0,
            last_snapshot_us: 0,
            history: HashMap::new(),
            raised: Vec::new(),
            dirty: HashSet::new(),
            evicted: 0,
        }
    }

    /// The sensor whose alerts it scores.
    pub fn sensor(&self) -> &str {
        &self.sensor
    }

    /// The settings.
    pub fn config(&self) -> &RiskConfig {
        &self.cfg
    }

    /// The book's clock: the newest packet time seen (µs).
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    /// Assets scored.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// Assets forgotten to stay within `max_assets`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// One asset.
    pub fn asset(&self, ip: &IpAddr) -> Option<&Asset> {
        self.assets.get(ip)
    }

    /// Every asset.
    pub fn assets(&self) -> impl Iterator<Item = (&IpAddr, &Asset)> {
        self.assets.iter()
    }

    /// Exposure flags of an address.
    pub fn exposure(&self, ip: &IpAddr) -> u8 {
        match self.assets.get(ip) {
            Some(a) => a.exposure,
            None => self.exposure.get(ip).copied().unwrap_or(0),
        }
    }

    /// Alert kinds this book raises itself (never scored again).
    fn is_derived(kind: &str) -> bool {
        kind == "risk_threshold" || kind == "attack_chain"
    }

    /// Moves the clock to `ts_us`, taking the history snapshots it passes.
    pub fn advance(&mut self, ts_us: i64) {
        if ts_us <= self.now_us {
            return;
        }
        let interval = self.cfg.history_interval_secs as i64 * 1_000_000;
        if self.next_snapshot_us == 0 {
            // The first time: a snapshot at the boundary just passed, so that alerts reported
            // after a first batch spanning hours rewrite the history behind it.
            self.next_snapshot_us = ts_us.div_euclid(interval) * interval;
        }
        // Every boundary passed gets its snapshot (a batch may span several), up to a day of
        // them; past that, a long quiet gap has nothing to add but its last boundary.
        let last = ts_us.div_euclid(interval) * interval;
        if ts_us >= self.next_snapshot_us {
            self.next_snapshot_us = self.next_snapshot_us.max(last - 287 * interval);
        }
        while ts_us >= self.next_snapshot_us {
            let at = self.next_snapshot_us;
            self.now_us = self.now_us.max(at);
            self.snapshot(at);
            self.next_snapshot_us = at + interval;
        }
        self.now_us = ts_us;
    }

    /// An asset's score at `at_us` from the alerts seen by then.
    fn score_as_of(&self, a: &Asset, at_us: i64) -> f64 {
        if a.last_us <= at_us {
            return self.score_at(a, at_us).score;
        }
        let base = a.alerts.base_as_of(at_us, self.half_life_us);
        score::apply_modifier(base, self.modifier(a, at_us))
    }

    /// Records every asset's score at `at_us` (the highest, down to `history_min_score`).
    pub fn snapshot(&mut self, at_us: i64) {
        self.last_snapshot_us = self.last_snapshot_us.max(at_us);
        let mut rows: Vec<HistoryRow> = self
            .assets
            .iter()
            .filter_map(|(ip, a)| {
                let score = self.score_as_of(a, at_us);
                (score >= self.cfg.history_min_score).then_some(HistoryRow {
                    ts_us: at_us,
                    asset: *ip,
                    score,
                    level: self.level_of(score),
                })
            })
            .collect();
        if rows.len() > self.cfg.history_max_assets {
            rows.select_nth_unstable_by(self.cfg.history_max_assets, |a, b| {
                b.score.total_cmp(&a.score)
            });
            rows.truncate(self.cfg.history_max_assets);
        }
        tracing::debug!(at_us, assets = rows.len(), "risk: history snapshot");
        metrics::counter!("netmonitor_risk_snapshots_total").increment(1);
        for r in rows {
            self.history.insert((r.ts_us, r.asset), r);
        }
    }

    /// Rewrites an asset's snapshots from `from_us` on, after an alert reported later than
    /// snapshots already taken (detectors decide at different delays; a replay hands over
    /// hours at once). At most a day of snapshots is rewritten.
    fn rewrite_history(&mut self, ip: IpAddr, from_us: i64) {
        let Some(a) = self.assets.get(&ip) else {
            return;
        };
        let interval = self.cfg.history_interval_secs as i64 * 1_000_000;
        let oldest = self.last_snapshot_us - 288 * interval;
        let mut at = (from_us.div_euclid(interval) + 1) * interval;
        at = at.max(oldest);
        let mut rows = Vec::new();
        while at <= self.last_snapshot_us {
            let score = self.score_as_of(a, at);
            if score >= self.cfg.history_min_score {
                rows.push(HistoryRow {
                    ts_us: at,
                    asset: ip,
                    score,
                    level: self.level_of(score),
                });
            }
            at += interval;
        }
        for r in rows {
            self.history.insert((r.ts_us, r.asset), r);
        }
    }

    /// Folds flow records in: the clock, and who talks to or is reached from outside.
    pub fn ingest_events(&mut self, events: &[Event]) {
        let Some(last) = events.iter().map(|e| e.header.ts.0).max() else {
            return;
        };
        for ev in events {
            let EventKind::Flow(f) = &ev.kind else {
                continue;
            };
            if f.pkts_toclient == 0 {
                continue; // nobody answered: no exposure
            }
            let k = &ev.header.key;
            let (src_local, dst_local) = (self.cfg.is_local(k.src_ip), self.cfg.is_local(k.dst_ip));
            let flag = match (src_local, dst_local) {
                (true, false) => Some((k.src_ip, TALKS_OUT)),
                (false, true) => Some((k.dst_ip, LISTENS_OUT)),
                _ => None,
            };
            if let Some((ip, bit)) = flag {
                if let Some(a) = self.assets.get_mut(&ip) {
                    if a.exposure & bit == 0 {
                        a.exposure |= bit;
                        self.dirty.insert(ip);
                    }
                } else if self.exposure.len() < self.cfg.max_assets
                    || self.exposure.contains_key(&ip)
                {
                    let e = self.exposure.entry(ip).or_default();
                    if *e & bit == 0 {
                        *e |= bit;
                        self.dirty.insert(ip);
                    }
                }
            }
        }
        self.advance(last);
    }

    /// Folds alerts in: scores, chains, counters; raises threshold and chain alerts.
    pub fn ingest_alerts(&mut self, alerts: &[Event]) {
        let mut late: HashMap<IpAddr, i64> = HashMap::new();
        for ev in alerts {
            let EventKind::Alert(a) = &ev.kind else {
                continue;
            };
            if Self::is_derived(&a.threat_type) {
                continue;
            }
            let ts = ev.header.ts.0;
            self.advance(ts);
            let k = &ev.header.key;
            if self.last_snapshot_us > 0 && ts < self.last_snapshot_us {
                for ip in [k.src_ip, k.dst_ip] {
                    let e = late.entry(ip).or_insert(ts);
                    *e = (*e).min(ts);
                }
            }
            self.mitre
                .add(ts, &a.mitre, &a.threat_type, a.severity, k.src_ip, k.dst_ip);
            let r = self.alert_score(a);
            // Levels before this alert, chain included, to see what it crosses.
            let level_now = |ip: &IpAddr| self.score(ip).map(|s| s.level);
            let (src_before, dst_before) = (level_now(&k.src_ip), level_now(&k.dst_ip));
            let progress = (!self.cfg.chain_excluded_kinds.contains(&a.threat_type))
                .then(|| {
                    self.chains.observe(
                        &ChainAlert {
                            ts_us: ts,
                            kind: &a.threat_type,
                            signature: &a.signature,
                            src: k.src_ip,
                            dst: k.dst_ip,
                            dst_port: k.dst_port,
                            score: r,
                            mitre: &a.mitre,
                        },
                        self.window_us,
                    )
                })
                .flatten();
            if let Some(p) =
                progress.filter(|p| p.new_stage && p.stages >= self.cfg.chain_min_stages)
            {
                self.raise_chain(p.chain, &ev.header);
            }
            let chain = progress.map(|p| p.chain);
            self.add(
                k.src_ip,
                k.dst_ip,
                ev,
                a,
                r,
                Role::Source,
                src_before,
                chain,
            );
            if k.dst_ip != k.src_ip {
                let rt = r * self.cfg.target_weight;
                self.add(
                    k.dst_ip,
                    k.src_ip,
                    ev,
                    a,
                    rt,
                    Role::Target,
                    dst_before,
                    None,
                );
            }
            // A chain's new stage raises the modifier of its other sources too.
            if let Some(p) = progress.filter(|p| p.new_stage) {
                let sources: Vec<IpAddr> = self
                    .chains
                    .get(p.chain)
                    .map(|c| {
                        c.sources
                            .iter()
                            .copied()
                            .filter(|s| *s != k.src_ip)
                            .collect()
                    })
                    .unwrap_or_default();
                for s in sources {
                    self.reevaluate(s, &ev.header, &a.signature);
                }
            }
        }
        for (ip, from) in late {
            self.rewrite_history(ip, from);
        }
        let pruned_before = self.now_us - self.cfg.mitre_hours as i64 * 3_600_000_000;
        if self.mitre.oldest_us().is_some_and(|o| o < pruned_before) {
            self.mitre.prune(pruned_before);
        }
        self.chains.evict(self.cfg.max_chains);
        self.evict();
    }

    /// The alert's score: severity × kind weight × confidence.
    pub fn alert_score(&self, a: &Alert) -> f64 {
        let weight = self
            .cfg
            .kind_weights
            .get(&a.threat_type)
            .copied()
            .unwrap_or_else(|| score::tactic_weight(&a.threat_type));
        let confidence = a
            .evidence
            .get("confidence")
            .and_then(Value::as_f64)
            .map(|c| if c > 1.0 { c / 100.0 } else { c })
            .filter(|c| c.is_finite())
            .map_or(1.0, |c| c.clamp(0.0, 1.0));
        score::severity_score(a.severity) * weight * confidence
    }

    /// Adds an alert to an asset whose level was `before` it.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        ip: IpAddr,
        peer: IpAddr,
        ev: &Event,
        a: &Alert,
        r: f64,
        role: Role,
        before: Option<Level>,
        chain: Option<u64>,
    ) {
        let ts = ev.header.ts.0;
        let (max, hl) = (self.cfg.max_contributions, self.half_life_us);
        let exposure = &mut self.exposure;
        let asset = self.assets.entry(ip).or_insert_with(|| Asset {
            first_us: ts,
            last_us: ts,
            exposure: exposure.remove(&ip).unwrap_or(0),
            ..Asset::default()
        });
        if role == Role::Source {
            if let Some(p) = chain {
                asset.chain = Some(p);
            }
        }
        asset.alerts.add(
            Contribution::new(
                ts,
                &a.threat_type,
                a.signature_id,
                a.severity,
                peer,
                role,
                r,
            ),
            max,
            hl,
        );
        asset.first_us = asset.first_us.min(ts);
        asset.last_us = asset.last_us.max(ts);
        if !asset.sensors.contains(&self.sensor) {
            asset.sensors.push(self.sensor.clone());
        }
        self.dirty.insert(ip);
        self.settle(ip, before, &ev.header, &a.signature);
    }

    /// Re-evaluates an asset after its modifiers changed.
    fn reevaluate(&mut self, ip: IpAddr, header: &EventHeader, cause: &str) {
        let Some(a) = self.assets.get(&ip) else {
            return;
        };
        let before = a.level;
        self.settle(ip, before, header, cause);
    }

    /// Stores the level now and raises `risk_threshold` when it rose above `before`.
    fn settle(&mut self, ip: IpAddr, before: Option<Level>, header: &EventHeader, cause: &str) {
        let Some(a) = self.assets.get(&ip) else {
            return;
        };
        let now = self.score_at(a, self.now_us);
        let previous = before.unwrap_or(Level::Low);
        if let Some(a) = self.assets.get_mut(&ip) {
            a.level = Some(now.level);
        }
        if now.level > previous {
            self.raise_threshold(ip, previous, now, header, cause);
        }
    }

    /// The modifier product of an asset: criticality × exposure × chain.
    pub fn modifier(&self, a: &Asset, at_us: i64) -> f64 {
        let crit = score::criticality_modifier(self.criticality(a));
        let exp = a.exposure;
        let mut m = crit;
        if exp & TALKS_OUT != 0 {
            m *= self.cfg.talks_to_internet;
        }
        if exp & LISTENS_OUT != 0 {
            m *= self.cfg.listens_on_internet;
        }
        let stages = self.chain_stages(a, at_us);
        if stages > 1 {
            m *= (1.0 + self.cfg.chain_stage_weight * (stages - 1) as f64).min(2.0);
        }
        m
    }

    /// Stages of the open chain the asset is a source of.
    pub fn chain_stages(&self, a: &Asset, at_us: i64) -> usize {
        a.chain
            .and_then(|id| self.chains.get(id))
            .filter(|c| at_us - c.last_us <= self.window_us)
            .map_or(0, |c| c.stages.len())
    }

    /// The criticality in force: by hand, else the device's, else medium.
    pub fn criticality<'a>(&self, a: &'a Asset) -> &'a str {
        a.criticality
            .as_deref()
            .or(a.device.as_ref().map(|d| d.1.as_str()))
            .unwrap_or("medium")
    }

    /// An asset's score at `at_us`.
    pub fn score_at(&self, a: &Asset, at_us: i64) -> Scored {
        let base = a.alerts.base(at_us, self.half_life_us);
        let modifier = self.modifier(a, at_us);
        let score = score::apply_modifier(base, modifier);
        Scored {
            score,
            base,
            modifier,
            level: self.level_of(score),
        }
    }

    /// An asset's score now.
    pub fn score(&self, ip: &IpAddr) -> Option<Scored> {
        self.assets.get(ip).map(|a| self.score_at(a, self.now_us))
    }

    /// The level of a score.
    pub fn level_of(&self, score: f64) -> Level {
        let l = &self.cfg.levels;
        if score >= l.critical {
            Level::Critical
        } else if score >= l.high {
            Level::High
        } else if score >= l.medium {
            Level::Medium
        } else {
            Level::Low
        }
    }

    /// The highest-scored assets now, filtered; and how many passed the filter.
    pub fn top(&self, limit: usize, f: &TopFilter) -> (Vec<(IpAddr, Scored)>, usize) {
        let mut all: Vec<(IpAddr, Scored)> = self
            .assets
            .iter()
            .filter(|(ip, a)| {
                f.kind
                    .as_deref()
                    .is_none_or(|k| (k == "internal") == self.cfg.is_local(**ip))
                    && f.sensor
                        .as_deref()
                        .is_none_or(|s| a.sensors.iter().any(|x| x == s))
            })
            .map(|(ip, a)| (*ip, self.score_at(a, self.now_us)))
            .filter(|(_, s)| f.level.is_none_or(|l| s.level >= l))
            .collect();
        let matched = all.len();
        let by_score = |a: &(IpAddr, Scored), b: &(IpAddr, Scored)| {
            b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0))
        };
        if all.len() > limit && limit > 0 {
            all.select_nth_unstable_by(limit - 1, by_score);
            all.truncate(limit);
        }
        all.sort_unstable_by(by_score);
        all.truncate(limit);
        (all, matched)
    }

    /// Sets or clears an asset's criticality by hand; answers its score after.
    pub fn set_criticality(&mut self, ip: IpAddr, level: Option<&str>) -> Result<Scored, String> {
        use netmonitor_devices::templates::CRITICALITIES;
        if let Some(l) = level {
            if !CRITICALITIES.contains(&l) {
                return Err(format!("criticality: one of {}", CRITICALITIES.join(", ")));
            }
        }
        let a = self.assets.entry(ip).or_default();
        a.criticality = level.map(str::to_owned);
        self.dirty.insert(ip);
        let header = EventHeader {
            ts: Timestamp(self.now_us),
            flow_id: 0,
            key: FlowKey {
                src_ip: ip,
                src_port: 0,
                dst_ip: ip,
                dst_port: 0,
                proto: 0,
            },
        };
        self.reevaluate(ip, &header, "criticality set by hand");
        self.score(&ip).ok_or_else(|| "no such asset".into())
    }

    /// Device criticalities by address, from the device inventory.
    pub fn set_devices(&mut self, devices: HashMap<IpAddr, (String, String)>) {
        for (ip, a) in self.assets.iter_mut() {
            let d = devices.get(ip).cloned();
            if a.device != d {
                a.device = d;
                self.dirty.insert(*ip);
            }
        }
    }

    /// Scored addresses (to ask the device inventory about).
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.assets.keys().copied().collect()
    }

    /// Alerts raised since the last call.
    pub fn take_alerts(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.raised)
    }

    /// What changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        let now = self.now_us;
        let assets = self
            .dirty
            .drain()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|ip| {
                let a = self.assets.get(&ip)?;
                Some((ip, a.clone(), self.score_at(a, now), a.exposure))
            })
            .collect();
        Changes {
            assets,
            chains: self.chains.take_dirty(),
            mitre: self.mitre.take_dirty(),
            history: std::mem::take(&mut self.history).into_values().collect(),
        }
    }

    /// Puts back what a failed save did not write.
    pub fn unsaved(&mut self, c: Changes) {
        self.dirty.extend(c.assets.iter().map(|a| a.0));
        self.chains.unsaved(c.chains.iter().map(|c| c.id));
        self.mitre.unsaved(&c.mitre);
        for r in c.history {
            self.history.entry((r.ts_us, r.asset)).or_insert(r);
        }
    }

    /// Puts saved state back (at start).
    pub fn restore(
        &mut self,
        assets: Vec<(IpAddr, Asset, u8)>,
        chains: Vec<crate::chain::Chain>,
        mitre: Vec<(i64, String, crate::counts::Cell)>,
    ) {
        for (ip, mut a, exposure) in assets {
            a.alerts.rekey(self.half_life_us);
            self.now_us = self.now_us.max(a.last_us);
            a.exposure |= exposure;
            self.assets.entry(ip).or_insert(a);
        }
        for c in &chains {
            self.now_us = self.now_us.max(c.last_us);
        }
        self.chains.restore(chains);
        self.mitre.restore(mitre);
    }

    /// Forgets the weakest assets while more than `max_assets` are kept.
    fn evict(&mut self) {
        let max = self.cfg.max_assets;
        if self.assets.len() <= max {
            return;
        }
        let n = self.assets.len() - max + max / 10;
        let mut by_score: Vec<(f64, IpAddr)> = self
            .assets
            .iter()
            .filter(|(_, a)| a.criticality.is_none())
            .map(|(ip, a)| (a.alerts.base(self.now_us, self.half_life_us), *ip))
            .collect();
        by_score.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for (_, ip) in by_score.into_iter().take(n) {
            self.assets.remove(&ip);
            self.dirty.remove(&ip);
            self.evicted += 1;
        }
        metrics::counter!("netmonitor_risk_evictions_total").increment(n as u64);
    }
}

/// Rounds to four decimals for answers.
pub fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}
