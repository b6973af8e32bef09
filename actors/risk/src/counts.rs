//! Live ATT&CK counters: per ten minutes of packet time and technique, the alerts that passed
//! the alert stage (so whitelists and suppression are already honoured), their kinds, worst
//! severity, first and last time, and the assets involved. `get_mitre_mapping` sums a few
//! hundred of these cells instead of scanning alerts; they are saved as a rollup and read
//! back at start.

use netmonitor_common::mitre;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

/// Width of a bucket (µs).
pub const BUCKET_US: i64 = 600_000_000;
/// Assets a cell lists (beyond it they are only counted as more).
const MAX_CELL_ASSETS: usize = 512;

/// One bucket × technique.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    /// Alerts.
    pub alerts: u64,
    /// Alert kinds.
    pub kinds: BTreeSet<String>,
    /// Most severe level (1 = high).
    pub severity: u8,
    /// First alert (µs).
    pub first_us: i64,
    /// Last alert (µs).
    pub last_us: i64,
    /// Source addresses.
    pub sources: Vec<IpAddr>,
    /// Target addresses.
    pub targets: Vec<IpAddr>,
}

fn add_capped(list: &mut Vec<IpAddr>, ip: IpAddr) {
    if list.len() < MAX_CELL_ASSETS && !list.contains(&ip) {
        list.push(ip);
    }
}

/// Counters by (bucket start, technique id).
#[derive(Default)]
pub struct MitreCounts {
    cells: BTreeMap<(i64, &'static str), Cell>,
    dirty: HashSet<(i64, &'static str)>,
}

/// One technique over a window.
#[derive(Clone, Debug, Serialize)]
pub struct TechniqueSummary {
    /// `T1558.003`.
    pub technique: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Its tactics.
    pub tactics: Vec<TacticRef>,
    /// Alerts.
    pub alerts: u64,
    /// Distinct sources.
    pub sources: usize,
    /// Distinct assets (sources and targets).
    pub assets: usize,
    /// Up to 20 of them.
    pub sample_assets: Vec<IpAddr>,
    /// Kinds mapped to it.
    pub threat_types: Vec<String>,
    /// Most severe level.
    pub severity: u8,
    /// First alert (µs).
    pub first_us: i64,
    /// Last alert (µs).
    pub last_us: i64,
}

/// A tactic by id and name.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct TacticRef {
    /// `TA0006`.
    pub id: &'static str,
    /// `Credential Access`.
    pub name: &'static str,
}

/// One tactic over a window.
#[derive(Clone, Debug, Serialize)]
pub struct TacticSummary {
    /// `TA0006`.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Alerts with a technique of this tactic.
    pub alerts: u64,
    /// Its techniques seen.
    pub techniques: Vec<&'static str>,
    /// Distinct assets.
    pub assets: usize,
    /// First alert (µs).
    pub first_us: i64,
    /// Last alert (µs).
    pub last_us: i64,
}

impl MitreCounts {
    /// Counts one alert.
    pub fn add(
        &mut self,
        ts_us: i64,
        techniques: &[String],
        kind: &str,
        severity: u8,
        src: IpAddr,
        dst: IpAddr,
    ) {
        let bucket = ts_us.div_euclid(BUCKET_US) * BUCKET_US;
        for t in techniques {
            let Some(tech) = mitre::technique(t) else {
                continue;
            };
            let key = (bucket, tech.id);
            let c = self.cells.entry(key).or_insert_with(|| Cell {
                severity: u8::MAX,
                first_us: ts_us,
                last_us: ts_us,
                ..Cell::default()
            });
            c.alerts += 1;
            if !c.kinds.contains(kind) {
                c.kinds.insert(kind.to_owned());
            }
            c.severity = c.severity.min(severity);
            c.first_us = c.first_us.min(ts_us);
            c.last_us = c.last_us.max(ts_us);
            add_capped(&mut c.sources, src);
            add_capped(&mut c.targets, dst);
            self.dirty.insert(key);
        }
    }

    /// Drops buckets that ended before `before_us`, once saved (an unsaved one waits).
    pub fn prune(&mut self, before_us: i64) {
        let keep = self
            .cells
            .split_off(&(before_us.div_euclid(BUCKET_US) * BUCKET_US, ""));
        let gone = std::mem::replace(&mut self.cells, keep);
        for (k, c) in gone {
            if self.dirty.contains(&k) {
                self.cells.insert(k, c);
            }
        }
    }

    /// The oldest bucket start held.
    pub fn oldest_us(&self) -> Option<i64> {
        self.cells.keys().next().map(|k| k.0)
    }

    /// Techniques and tactics of the alerts between `since_us` and `until_us` (buckets that
    /// overlap the window count whole), most frequent first.
    pub fn summary(
        &self,
        since_us: i64,
        until_us: i64,
        limit: usize,
    ) -> (Vec<TechniqueSummary>, Vec<TacticSummary>) {
        let from = (since_us.div_euclid(BUCKET_US) * BUCKET_US, "");
        let mut by_tech: BTreeMap<&'static str, (Cell, HashSet<IpAddr>, HashSet<IpAddr>)> =
            BTreeMap::new();
        for ((start, tech), c) in self.cells.range(from..) {
            if *start > until_us {
                break;
            }
            let e = by_tech.entry(tech).or_insert_with(|| {
                (
                    Cell {
                        severity: u8::MAX,
                        first_us: i64::MAX,
                        last_us: i64::MIN,
                        ..Cell::default()
                    },
                    HashSet::new(),
                    HashSet::new(),
                )
            });
            e.0.alerts += c.alerts;
            e.0.kinds.extend(c.kinds.iter().cloned());
            e.0.severity = e.0.severity.min(c.severity);
            e.0.first_us = e.0.first_us.min(c.first_us);
            e.0.last_us = e.0.last_us.max(c.last_us);
            e.1.extend(c.sources.iter().copied());
            e.2.extend(c.sources.iter().chain(&c.targets).copied());
        }
        let mut tactics: BTreeMap<&'static str, (TacticSummary, HashSet<IpAddr>)> = BTreeMap::new();
        let mut techs: Vec<TechniqueSummary> = by_tech
            .into_iter()
            .filter_map(|(id, (c, sources, assets))| {
                let t = mitre::technique(id)?;
                for ta in t.tactics {
                    let e = tactics.entry(ta.id).or_insert_with(|| {
                        (
                            TacticSummary {
                                id: ta.id,
                                name: ta.name,
                                alerts: 0,
                                techniques: Vec::new(),
                                assets: 0,
                                first_us: i64::MAX,
                                last_us: i64::MIN,
                            },
                            HashSet::new(),
                        )
                    });
                    e.0.alerts += c.alerts;
                    e.0.techniques.push(t.id);
                    e.0.first_us = e.0.first_us.min(c.first_us);
                    e.0.last_us = e.0.last_us.max(c.last_us);
                    e.1.extend(assets.iter().copied());
                }
                let mut sample: Vec<IpAddr> = assets.iter().copied().collect();
                sample.sort_unstable();
                sample.truncate(20);
                Some(TechniqueSummary {
                    technique: t.id,
                    name: t.name,
                    tactics: t
                        .tactics
                        .iter()
                        .map(|ta| TacticRef {
                            id: ta.id,
                            name: ta.name,
                        })
                        .collect(),
                    alerts: c.alerts,
                    sources: sources.len(),
                    assets: assets.len(),
                    sample_assets: sample,
                    threat_types: c.kinds.into_iter().collect(),
                    severity: c.severity,
                    first_us: c.first_us,
                    last_us: c.last_us,
                })
            })
            .collect();
        techs.sort_by(|a, b| b.alerts.cmp(&a.alerts).then(a.technique.cmp(b.technique)));
        techs.truncate(limit);
        let mut tactics: Vec<TacticSummary> = tactics
            .into_values()
            .map(|(mut t, assets)| {
                t.assets = assets.len();
                t
            })
            .collect();
        tactics.sort_by_key(|t| mitre::kill_chain_rank(t.id));
        (techs, tactics)
    }

    /// Cells changed since the last call, as (bucket start, technique, cell).
    pub fn take_dirty(&mut self) -> Vec<(i64, String, Cell)> {
        let keys: Vec<_> = self.dirty.drain().collect();
        keys.into_iter()
            .filter_map(|k| self.cells.get(&k).map(|c| (k.0, k.1.to_owned(), c.clone())))
            .collect()
    }

    /// Marks cells as still unsaved.
    pub fn unsaved(&mut self, cells: &[(i64, String, Cell)]) {
        for (b, t, _) in cells {
            if let Some(tech) = mitre::technique(t) {
                self.dirty.insert((*b, tech.id));
            }
        }
    }

    /// Adds cells up (the same bucket and technique from several sensors).
    pub fn merge(&mut self, cells: Vec<(i64, String, Cell)>) {
        for (b, t, c) in cells {
            let Some(tech) = mitre::technique(&t) else {
                continue;
            };
            match self.cells.entry((b, tech.id)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(c);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let m = o.get_mut();
                    m.alerts += c.alerts;
                    m.kinds.extend(c.kinds);
                    m.severity = m.severity.min(c.severity);
                    m.first_us = m.first_us.min(c.first_us);
                    m.last_us = m.last_us.max(c.last_us);
                    for ip in c.sources {
                        add_capped(&mut m.sources, ip);
                    }
                    for ip in c.targets {
                        add_capped(&mut m.targets, ip);
                    }
                }
            }
        }
    }

    /// Puts saved cells back (at start); live counts of the same cell win.
    pub fn restore(&mut self, cells: Vec<(i64, String, Cell)>) {
        for (b, t, c) in cells {
            if let Some(tech) = mitre::technique(&t) {
                self.cells.entry((b, tech.id)).or_insert(c);
            }
        }
    }

    /// Cells held.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_summed_by_technique_and_tactic_within_the_window() {
        let mut m = MitreCounts::default();
        let t = |s: &str| vec![s.to_owned()];
        let (a, b, kdc) = (
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            [10, 0, 0, 5].into(),
        );
        m.add(0, &t("T1046"), "port_scan", 2, a, kdc);
        m.add(BUCKET_US + 5, &t("T1046"), "port_scan", 2, b, kdc);
        m.add(BUCKET_US + 9, &t("T1558.003"), "kerberoasting", 1, a, kdc);
        m.add(BUCKET_US, &t("T9999"), "made_up", 1, a, kdc);
        let (techs, tactics) = m.summary(0, 2 * BUCKET_US, 10);
        assert_eq!(techs[0].technique, "T1046");
        assert_eq!(
            (techs[0].alerts, techs[0].sources, techs[0].assets),
            (2, 2, 3)
        );
        assert_eq!((techs[0].first_us, techs[0].last_us), (0, BUCKET_US + 5));
        assert_eq!(techs[1].severity, 1);
        let ids: Vec<&str> = tactics.iter().map(|t| t.id).collect();
        assert_eq!(ids, ["TA0006", "TA0007"]);
        let (later, _) = m.summary(BUCKET_US, 2 * BUCKET_US, 10);
        assert_eq!(
            later[0].alerts + later[1].alerts,
            2,
            "the first bucket is outside"
        );
        m.prune(BUCKET_US);
        assert_eq!(m.oldest_us(), Some(0), "not saved yet: kept");
        let saved = m.take_dirty();
        m.prune(BUCKET_US);
        assert_eq!(m.oldest_us(), Some(BUCKET_US));
        m.unsaved(&saved);
        // Two sensors' rollups of one bucket add up.
        let mut other = MitreCounts::default();
        other.add(
            BUCKET_US + 1,
            &t("T1046"),
            "horizontal_scan",
            1,
            [10, 0, 0, 7].into(),
            kdc,
        );
        let mut sum = MitreCounts::default();
        sum.merge(m.take_dirty());
        sum.merge(other.take_dirty());
        let (techs, _) = sum.summary(BUCKET_US, 2 * BUCKET_US, 10);
        let scan = techs.iter().find(|x| x.technique == "T1046").unwrap();
        assert_eq!((scan.alerts, scan.sources, scan.severity), (2, 2, 1));
        assert_eq!(scan.threat_types, ["horizontal_scan", "port_scan"]);
    }
}
