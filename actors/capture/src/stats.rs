//! Counters of the packet path and their serializable snapshot for status queries and metrics.
//!
//! The pipeline keeps plain integers (one thread owns them; no atomics on the hot path);
//! capture threads keep atomics ([`crate::source::CaptureCounters`]). [`StatsSnapshot`] joins
//! both with the flow, reassembly, defragmentation and ring counters, and [`RateMeter`] turns
//! successive snapshots into packets and bits per second.

use crate::decode::DecodeError;
use crate::defrag::DefragStats;
use crate::flow::FlowStats;
use crate::reassembly::ReassemblyStats;
use crate::ring::RingSummary;
use crate::source::CaptureCountersSnapshot;
use netmonitor_common::Timestamp;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::time::Instant;

/// Decode errors by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeErrorCounts(pub [u64; DecodeError::COUNT]);

impl Default for DecodeErrorCounts {
    fn default() -> Self {
        DecodeErrorCounts([0; DecodeError::COUNT])
    }
}

impl DecodeErrorCounts {
    /// Counts one error.
    #[inline]
    pub fn add(&mut self, e: DecodeError) {
        if let Some(c) = self.0.get_mut(e.index()) {
            *c += 1;
        }
    }

    /// Count for one reason.
    pub fn get(&self, e: DecodeError) -> u64 {
        self.0.get(e.index()).copied().unwrap_or(0)
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Errors that mean a malformed packet (not merely non-IP or unsupported).
    pub fn malformed(&self) -> u64 {
        DecodeError::ALL
            .iter()
            .filter(|e| e.is_malformed())
            .map(|&e| self.get(e))
            .sum()
    }

    /// Non-zero counts with their names.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DecodeError::ALL
            .iter()
            .map(|&e| (e.name(), self.get(e)))
            .filter(|&(_, n)| n > 0)
    }
}

impl Serialize for DecodeErrorCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.nonzero() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

/// Packets and bytes seen by the pipeline from one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IfaceCounters {
    /// Packets.
    pub packets: u64,
    /// Wire bytes.
    pub bytes: u64,
}

/// Counters owned by the pipeline thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PipelineStats {
    /// Packets processed.
    pub packets: u64,
    /// Wire bytes processed.
    pub bytes: u64,
    /// Packets decoded down to IP.
    pub decoded: u64,
    /// Packets dropped by the configured packet filter.
    pub filtered: u64,
    /// Packets not decoded, by reason.
    pub decode_errors: DecodeErrorCounts,
    /// TCP packets (after defragmentation).
    pub tcp: u64,
    /// UDP packets.
    pub udp: u64,
    /// Other IP packets.
    pub other_ip: u64,
    /// Packets carried in tunnels.
    pub tunneled: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Panics of the application handler caught on the packet path (each bypassed its flow).
    pub handler_panics: u64,
    /// Per interface (index = `RawPacket::iface`).
    pub ifaces: Vec<IfaceCounters>,
    /// Latest packet time.
    pub last_ts: Timestamp,
}

impl PipelineStats {
    /// Counts one packet on an interface.
    #[inline]
    pub fn count_packet(&mut self, iface: u16, wire: u32) {
        self.packets += 1;
        self.bytes += u64::from(wire);
        let i = usize::from(iface);
        if i >= self.ifaces.len() {
            self.ifaces.resize(i + 1, IfaceCounters::default());
        }
        if let Some(c) = self.ifaces.get_mut(i) {
            c.packets += 1;
            c.bytes += u64::from(wire);
        }
    }
}

/// One interface in a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InterfaceSnapshot {
    /// Index (`RawPacket::iface`).
    pub iface: u16,
    /// Name, when known.
    pub name: Option<String>,
    /// Packets processed by the pipeline.
    pub packets: u64,
    /// Wire bytes processed.
    pub bytes: u64,
    /// Packets the kernel dropped.
    pub kernel_drops: u64,
    /// Packets dropped because the pipeline fell behind.
    pub queue_drops: u64,
    /// Packets captured (before any queue drop).
    pub captured: u64,
    /// Packets per second since the previous snapshot.
    pub pps: f64,
    /// Bits per second since the previous snapshot.
    pub bps: f64,
}

/// Everything the status layer reports about the packet path.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// Latest packet time.
    pub last_packet: Timestamp,
    /// Packets processed.
    pub packets: u64,
    /// Wire bytes processed.
    pub bytes: u64,
    /// Packets decoded to IP.
    pub decoded: u64,
    /// Packets dropped by the configured packet filter.
    pub filtered: u64,
    /// All decode errors.
    pub decode_errors_total: u64,
    /// Malformed-packet errors.
    pub malformed: u64,
    /// Decode errors by reason (non-zero only).
    pub decode_errors: DecodeErrorCounts,
    /// TCP / UDP / other IP packets.
    pub tcp: u64,
    /// UDP packets.
    pub udp: u64,
    /// Other IP packets.
    pub other_ip: u64,
    /// Tunneled packets.
    pub tunneled: u64,
    /// Dissector panics caught (each bypassed one flow).
    pub handler_panics: u64,
    /// Kernel drops, all interfaces.
    pub kernel_drops: u64,
    /// Queue drops, all interfaces.
    pub queue_drops: u64,
    /// Per interface.
    pub interfaces: Vec<InterfaceSnapshot>,
    /// Flow table.
    pub flows: FlowStats,
    /// TCP reassembly.
    pub reassembly: ReassemblyStats,
    /// IP defragmentation.
    pub defrag: DefragStats,
    /// Packet ring.
    pub ring: RingSummary,
    /// Packets per second (all interfaces).
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
}

impl StatsSnapshot {
    /// Builds a snapshot from the pipeline's parts (rates are zero until
    /// [`StatsSnapshot::apply_rates`]).
    pub fn build(
        p: &PipelineStats,
        flows: FlowStats,
        reassembly: ReassemblyStats,
        defrag: DefragStats,
        ring: RingSummary,
    ) -> Self {
        StatsSnapshot {
            last_packet: p.last_ts,
            packets: p.packets,
            bytes: p.bytes,
            decoded: p.decoded,
            filtered: p.filtered,
            decode_errors_total: p.decode_errors.total(),
            malformed: p.decode_errors.malformed(),
            decode_errors: p.decode_errors,
            tcp: p.tcp,
            udp: p.udp,
            other_ip: p.other_ip,
            tunneled: p.tunneled,
            handler_panics: p.handler_panics,
            kernel_drops: 0,
            queue_drops: 0,
            interfaces: p
                .ifaces
                .iter()
                .enumerate()
                .map(|(i, c)| InterfaceSnapshot {
                    iface: u16::try_from(i).unwrap_or(u16::MAX),
                    packets: c.packets,
                    bytes: c.bytes,
                    ..InterfaceSnapshot::default()
                })
                .collect(),
            flows,
            reassembly,
            defrag,
            ring,
            pps: 0.0,
            bps: 0.0,
        }
    }

    /// Adds a capture thread's counters (name, kernel and queue drops) to interface `iface`.
    pub fn merge_capture(&mut self, iface: u16, name: &str, c: &CaptureCountersSnapshot) {
        let pos = match self.interfaces.iter().position(|i| i.iface == iface) {
            Some(p) => p,
            None => {
                self.interfaces.push(InterfaceSnapshot {
                    iface,
                    ..InterfaceSnapshot::default()
                });
                self.interfaces.len() - 1
            }
        };
        if let Some(i) = self.interfaces.get_mut(pos) {
            i.name = Some(name.to_string());
            i.kernel_drops = c.kernel_drops;
            i.queue_drops = c.queue_drops;
            i.captured = c.packets;
        }
        self.kernel_drops = self.interfaces.iter().map(|i| i.kernel_drops).sum();
        self.queue_drops = self.interfaces.iter().map(|i| i.queue_drops).sum();
    }

    /// Fills `pps`/`bps` from the change since the meter's previous reading.
    pub fn apply_rates(&mut self, meter: &mut RateMeter, now: Instant) {
        let (pps, bps) = meter.rate(u32::MAX, now, self.packets, self.bytes);
        self.pps = pps;
        self.bps = bps;
        for i in &mut self.interfaces {
            let (pps, bps) = meter.rate(u32::from(i.iface), now, i.packets, i.bytes);
            i.pps = pps;
            i.bps = bps;
        }
        meter.last = Some(now);
    }
}

/// Remembers previous totals to compute rates from deltas.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    last: Option<Instant>,
    prev: Vec<(u32, u64, u64)>,
}

impl RateMeter {
    /// A meter with no history (first rates are 0).
    pub fn new() -> Self {
        RateMeter::default()
    }

    fn rate(&mut self, key: u32, now: Instant, packets: u64, bytes: u64) -> (f64, f64) {
        let dt = self
            .last
            .map(|l| now.saturating_duration_since(l).as_secs_f64())
            .unwrap_or(0.0);
        let slot = match self.prev.iter().position(|p| p.0 == key) {
            Some(i) => i,
            None => {
                self.prev.push((key, packets, bytes));
                return (0.0, 0.0);
            }
        };
        let Some(entry) = self.prev.get_mut(slot) else {
            return (0.0, 0.0);
        };
        let (_, pp, pb) = *entry;
        *entry = (key, packets, bytes);
        if dt <= 0.0 {
            return (0.0, 0.0);
        }
        (
            packets.saturating_sub(pp) as f64 / dt,
            bytes.saturating_sub(pb) as f64 * 8.0 / dt,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn snapshot_serializes_named_errors_and_rates() {
        let mut p = PipelineStats::default();
        p.count_packet(0, 100);
        p.count_packet(2, 50);
        p.decode_errors.add(DecodeError::TruncatedTcpHeader);
        p.decode_errors.add(DecodeError::NonIp);
        let mut s = StatsSnapshot::build(
            &p,
            FlowStats::default(),
            ReassemblyStats::default(),
            DefragStats::default(),
            RingSummary::default(),
        );
        assert_eq!(s.interfaces.len(), 3);
        assert_eq!((s.decode_errors_total, s.malformed), (2, 1));
        s.merge_capture(
            2,
            "eth1",
            &CaptureCountersSnapshot {
                kernel_drops: 7,
                queue_drops: 3,
                ..Default::default()
            },
        );
        assert_eq!((s.kernel_drops, s.queue_drops), (7, 3));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["decode_errors"]["truncated_tcp_header"], 1);
        assert!(json["decode_errors"].get("truncated_ipv4").is_none());
        assert_eq!(json["interfaces"][2]["name"], "eth1");

        let mut meter = RateMeter::new();
        let t0 = Instant::now();
        s.apply_rates(&mut meter, t0);
        assert_eq!(s.pps, 0.0);
        for _ in 0..10 {
            p.count_packet(0, 1000);
        }
        let mut s2 = StatsSnapshot::build(
            &p,
            FlowStats::default(),
            ReassemblyStats::default(),
            DefragStats::default(),
            RingSummary::default(),
        );
        s2.apply_rates(&mut meter, t0 + Duration::from_secs(2));
        assert_eq!(s2.pps, 5.0);
        assert_eq!(s2.bps, 10_000.0 * 8.0 / 2.0);
        assert_eq!(s2.interfaces[0].pps, 5.0);
    }
}
