//! Port scans and floods. A probe is a TCP flow that carried no data either way (refused, left
//! unanswered, or opened and dropped at once, as SYN and connect scans do) or a UDP flow left
//! unanswered. Vertical scans count distinct ports per target, horizontal scans distinct targets
//! per port, as Zeek's scan policy does; the threshold random walk (Jung et al., 2004) judges a
//! source by the outcomes of its first contacts with each host, which catches scans too slow
//! for any window. Floods count flow openings per service.

use crate::config::BehaviourConfig;
use crate::names::is_chatter;
use crate::rules::*;
use crate::Raised;
use netmonitor_common::event::ipproto;
use netmonitor_common::window::{Bounded, Distinct, Times};
use netmonitor_common::{EventHeader, FlowRecord, FlowStart};
use serde_json::json;
use std::net::IpAddr;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

/// Most first contacts remembered per source for the random walk.
const TRW_CONTACTS_WINDOW_US: i64 = 86_400 * 1_000_000;

/// A source's random walk.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// log of the likelihood ratio scanner : benign.
    llr: f64,
    contacted: Distinct<IpAddr>,
    failures: u32,
    successes: u32,
    /// The source's first failed probe (target, port, time), not yet in the scan tables: most
    /// sources that fail once (a spoofed flood's) never fail again, and so cost this one entry
    /// rather than one in each table. Counted when the source's second failure comes (lost
    /// only if the walk itself is evicted in between).
    pending: Option<(IpAddr, u16, i64)>,
}

/// The scan and flood state.
pub(crate) struct Scans {
    ports: Bounded<(IpAddr, IpAddr), Distinct<u16>>,
    hosts: Bounded<(IpAddr, u16), Distinct<IpAddr>>,
    walks: Bounded<IpAddr, Walk>,
    syn: Bounded<(IpAddr, u16), Times>,
    conns: Bounded<(IpAddr, IpAddr, u16), Times>,
}

/// How a flow ended, for a scan detector.
fn probe_outcome(h: &EventHeader, f: &FlowRecord) -> Option<bool> {
    match h.key.proto {
        ipproto::TCP => {
            if f.tcp_flags_toserver & SYN == 0 {
                return None; // picked up mid-connection: no first contact seen
            }
            let answered = f.tcp_flags_toclient & (SYN | ACK) == (SYN | ACK);
            let data = f.payload_toserver > 0 || f.payload_toclient > 0;
            Some(answered && data)
        }
        ipproto::UDP => Some(f.pkts_toclient > 0),
        _ => None,
    }
}

impl Scans {
    pub(crate) fn new(cap: usize) -> Self {
        Scans {
            ports: Bounded::new(cap),
            hosts: Bounded::new(cap),
            walks: Bounded::new(cap),
            syn: Bounded::new(cap),
            conns: Bounded::new(cap),
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.ports.evicted
            + self.hosts.evicted
            + self.walks.evicted
            + self.syn.evicted
            + self.conns.evicted
    }

    pub(crate) fn tracked(&self) -> usize {
        self.ports.len() + self.hosts.len() + self.walks.len() + self.syn.len() + self.conns.len()
    }

    /// A flow's first packet: flood counting.
    pub(crate) fn on_start(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        s: &FlowStart,
        out: &mut Raised,
    ) {
        let c = &cfg.flood;
        if !c.enabled || is_chatter(h.key.dst_ip, h.key.src_port, h.key.dst_port) {
            return;
        }
        let now = h.ts.0;
        let window = secs(c.window_secs);
        let k = &h.key;
        if k.proto == ipproto::TCP && s.tcp_flags & (SYN | ACK | RST) == SYN && c.syn_per_target > 0
        {
            let n = self
                .syn
                .touch((k.dst_ip, k.dst_port), now, window)
                .push(now, window);
            if n >= c.syn_per_target {
                out.raise(&SYN_FLOOD, (k.dst_ip, k.dst_port), window, || {
                    json!({"target": k.dst_ip.to_string(), "port": k.dst_port, "half_open": n,
                           "threshold": c.syn_per_target, "window_secs": c.window_secs})
                });
            }
        }
        if c.connections_per_source > 0 {
            let n = self
                .conns
                .touch((k.src_ip, k.dst_ip, k.dst_port), now, window)
                .push(now, window);
            if n >= c.connections_per_source {
                out.raise(
                    &CONNECTION_FLOOD,
                    (k.src_ip, k.dst_ip, k.dst_port),
                    window,
                    || {
                        json!({"source": k.src_ip.to_string(), "target": k.dst_ip.to_string(),
                           "port": k.dst_port, "connections": n,
                           "threshold": c.connections_per_source, "window_secs": c.window_secs})
                    },
                );
            }
        }
    }

    /// A flow's record: scan counting.
    pub(crate) fn on_flow(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        f: &FlowRecord,
        out: &mut Raised,
    ) {
        let c = &cfg.scan;
        let k = &h.key;
        if !c.enabled || is_chatter(k.dst_ip, k.src_port, k.dst_port) {
            return;
        }
        let Some(success) = probe_outcome(h, f) else {
            return;
        };
        let now = f.start.0;
        if !success {
            let probe = (k.dst_ip, k.dst_port, now);
            let mut probes = [probe; 2];
            let mut n = 1;
            if c.trw && c.ports_per_host != 1 && c.hosts_per_port != 1 {
                let w = self.walks.touch(k.src_ip, now, TRW_CONTACTS_WINDOW_US);
                if let Some(first) = w.pending.take() {
                    probes = [first, probe];
                    n = 2;
                } else if w.contacted.is_empty() {
                    w.pending = Some(probe);
                    n = 0;
                }
            }
            for &(dst, port, at) in &probes[..n] {
                self.count_failure(cfg, k.src_ip, dst, port, at, out);
            }
        }
        if c.trw {
            self.walk(cfg, h, success, now, out);
        }
    }

    /// A failed probe counts toward a vertical and a horizontal scan.
    fn count_failure(
        &mut self,
        cfg: &BehaviourConfig,
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        now: i64,
        out: &mut Raised,
    ) {
        let c = &cfg.scan;
        let window = secs(c.window_secs);
        if c.ports_per_host > 0 {
            let set = self.ports.touch((src, dst), now, window);
            let n = set.insert(port, now, window);
            if n >= c.ports_per_host {
                out.raise(&VERTICAL_SCAN, (src, dst), window, || {
                    json!({"scanner": src.to_string(), "target": dst.to_string(),
                           "ports": n, "threshold": c.ports_per_host,
                           "window_secs": c.window_secs, "sample_ports": set.sample(20)})
                });
            }
        }
        if c.hosts_per_port > 0 {
            let set = self.hosts.touch((src, port), now, window);
            let n = set.insert(dst, now, window);
            if n >= c.hosts_per_port {
                out.raise(&HORIZONTAL_SCAN, (src, port), window, || {
                    json!({"scanner": src.to_string(), "port": port,
                           "hosts": n, "threshold": c.hosts_per_port,
                           "window_secs": c.window_secs,
                           "sample_hosts": set.sample(20).iter().map(ToString::to_string)
                               .collect::<Vec<_>>()})
                });
            }
        }
    }

    /// One first contact of a source with a host moves its random walk.
    fn walk(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        success: bool,
        now: i64,
        out: &mut Raised,
    ) {
        let c = &cfg.scan;
        let w = self.walks.touch(h.key.src_ip, now, TRW_CONTACTS_WINDOW_US);
        let before = w.contacted.len();
        if w.contacted
            .insert(h.key.dst_ip, now, TRW_CONTACTS_WINDOW_US)
            == before
        {
            return; // not a first contact
        }
        // Benign hosts connect with probability theta0, scanners with theta1 (Jung et al.).
        let (theta0, theta1) = (0.8f64, 0.2f64);
        let upper = (c.trw_detection / c.trw_false_positive).ln();
        let lower = ((1.0 - c.trw_detection) / (1.0 - c.trw_false_positive)).ln();
        if success {
            w.successes += 1;
            w.llr += (theta1 / theta0).ln();
        } else {
            w.failures += 1;
            w.llr += ((1.0 - theta1) / (1.0 - theta0)).ln();
        }
        if w.llr >= upper && w.failures >= c.trw_min_failures {
            out.raise(
                &TRW_SCAN,
                h.key.src_ip,
                TRW_CONTACTS_WINDOW_US,
                || json!({"scanner": h.key.src_ip.to_string(), "method": "threshold random walk",
                       "failed_first_contacts": w.failures, "successful_first_contacts": w.successes,
                       "hosts_contacted": w.contacted.len(),
                       "false_positive_rate": c.trw_false_positive, "detection_rate": c.trw_detection}),
            );
            w.llr = 0.0;
        } else if w.llr >= upper {
            w.llr = upper; // decided, waiting for enough failures
        } else if w.llr <= lower {
            w.llr = 0.0; // judged benign: start over
        }
    }
}

/// Seconds → microseconds.
pub(crate) fn secs(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}
