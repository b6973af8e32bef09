//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, fragments and bytes.
//!
//! Kerberos and DNS over UDP are regularly fragmented (large tickets, DNSSEC answers); without
//! reassembly their messages would be lost. Fragments are keyed by (source, destination,
//! identification, protocol); overlapping fragments keep the bytes that arrived first. A
//! datagram not completed within the timeout (packet time) is dropped, and when too many are
//! pending the oldest is dropped; both are counted.
#![deny(clippy::indexing_slicing)]

use crate::decode::DecodedPacket;
use crate::hash::FxBuildHasher;
use netmonitor_common::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Largest reassembled IP payload accepted (the IPv4/IPv6 non-jumbo maximum).
pub const MAX_DATAGRAM_BYTES: u32 = 65_535;
/// Most fragments accepted for one datagram (evasion tools send thousands of tiny ones).
pub const MAX_FRAGMENTS_PER_DATAGRAM: u16 = 128;

/// Defragmentation bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefragConfig {
    /// Datagrams being reassembled at once; beyond it the oldest is dropped.
    pub max_datagrams: usize,
    /// Seconds (packet time) a datagram may take to complete.
    pub timeout_secs: u32,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 4096,
            timeout_secs: 30,
        }
    }
}

impl DefragConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.max_datagrams == 0 || self.max_datagrams > u32::MAX as usize - 1 {
            return Err(crate::ConfigError::new(
                "defrag.max_datagrams",
                "must be between 1 and 2^32-2",
            ));
        }
        if self.timeout_secs == 0 {
            return Err(crate::ConfigError::new(
                "defrag.timeout_secs",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Defragmentation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DefragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped incomplete at timeout.
    pub timeouts: u64,
    /// Datagrams dropped because too many were pending.
    pub evicted: u64,
    /// Datagrams dropped for exceeding size or fragment-count bounds.
    pub oversize: u64,
    /// Fragments overlapping earlier ones (first bytes kept).
    pub overlaps: u64,
    /// Datagrams currently pending.
    pub pending: u64,
}

/// A completed datagram.
#[derive(Clone, Copy, Debug)]
pub struct Reassembled<'a> {
    /// The reassembled IP payload (transport header onwards).
    pub payload: &'a [u8],
    /// How many fragments made it.
    pub fragments: u16,
    /// Sum of the fragments' wire lengths.
    pub wire_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug)]
struct Datagram {
    key: FragKey,
    buf: Vec<u8>,
    ranges: Vec<(u32, u32)>,
    total: Option<u32>,
    first_ts: Timestamp,
    wire_bytes: u64,
    frags: u16,
    live: bool,
}

/// The fragment reassembler.
#[derive(Debug)]
pub struct Defragmenter {
    cfg: DefragConfig,
    map: HashMap<FragKey, u32, FxBuildHasher>,
    slots: Vec<Datagram>,
    free: Vec<u32>,
    done: Vec<u8>,
    stats: DefragStats,
}

impl Defragmenter {
    /// An empty reassembler.
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            done: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> DefragStats {
        DefragStats {
            pending: self.map.len() as u64,
            ..self.stats
        }
    }

    fn drop_slot(&mut self, i: u32) {
        if let Some(d) = self.slots.get_mut(i as usize) {
            if d.live {
                d.live = false;
                self.map.remove(&d.key);
                self.free.push(i);
            }
        }
    }

    /// Adds one fragment (`p.fragment` must be set). Returns the datagram when it is complete;
    /// the slice stays valid until the next call.
    pub fn push(
        &mut self,
        p: &DecodedPacket<'_>,
        ts: Timestamp,
        wire_len: u32,
    ) -> Option<Reassembled<'_>> {
        let frag = p.fragment?;
        self.stats.fragments += 1;
        let key = FragKey {
            src: p.src_ip,
            dst: p.dst_ip,
            id: frag.id,
            proto: p.proto,
        };
        let start = frag.offset;
        let len = u32::try_from(p.payload.len()).unwrap_or(u32::MAX);
        let end = start.saturating_add(len);
        let i = match self.map.get(&key) {
            Some(&i) => i,
            None => {
                if self.map.len() >= self.cfg.max_datagrams {
                    self.evict_oldest();
                }
                let d = Datagram {
                    key,
                    buf: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                    first_ts: ts,
                    wire_bytes: 0,
                    frags: 0,
                    live: true,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.slots.get_mut(i as usize) {
                            // Reuse the old buffers.
                            let mut buf = std::mem::take(&mut slot.buf);
                            let mut ranges = std::mem::take(&mut slot.ranges);
                            buf.clear();
                            ranges.clear();
                            *slot = Datagram { buf, ranges, ..d };
                        }
                        i
                    }
                    None => {
                        self.slots.push(d);
                        u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.map.insert(key, i);
                i
            }
        };
        if end > MAX_DATAGRAM_BYTES {
            self.stats.oversize += 1;
            self.drop_slot(i);
            return None;
        }
        let d = self.slots.get_mut(i as usize)?;
        d.frags = d.frags.saturating_add(1);
        d.wire_bytes += u64::from(wire_len);
        if d.frags > MAX_FRAGMENTS_PER_DATAGRAM {
            self.stats.oversize += 1;
            self.drop_slot(i);
            return None;
        }
        if !frag.more && d.total.is_none() {
            d.total = Some(end);
        }
        if d.buf.len() < end as usize {
            d.buf.resize(end as usize, 0);
        }
        // Copy only bytes not covered yet (first wins), then merge the range list.
        let mut cur = start;
        let mut overlapped = false;
        let copy = |from: u32, to: u32, buf: &mut Vec<u8>| {
            let src = p
                .payload
                .get((from - start) as usize..(to - start) as usize);
            let dst = buf.get_mut(from as usize..to as usize);
            if let (Some(src), Some(dst)) = (src, dst) {
                dst.copy_from_slice(src);
            }
        };
        for &(rs, re) in &d.ranges {
            if re <= cur {
                continue;
            }
            if rs >= end {
                break;
            }
            overlapped = true;
            if rs > cur {
                copy(cur, rs, &mut d.buf);
            }
            cur = cur.max(re);
        }
        if cur < end {
            copy(cur, end, &mut d.buf);
        }
        if overlapped {
            self.stats.overlaps += 1;
        }
        if start < end {
            d.ranges.push((start, end));
            d.ranges.sort_unstable();
            let mut merged = 0usize;
            for k in 1..d.ranges.len() {
                let (Some(&(ms, me)), Some(&(ks, ke))) = (d.ranges.get(merged), d.ranges.get(k))
                else {
                    break;
                };
                if ks <= me {
                    if let Some(m) = d.ranges.get_mut(merged) {
                        *m = (ms, me.max(ke));
                    }
                } else {
                    merged += 1;
                    if let Some(m) = d.ranges.get_mut(merged) {
                        *m = (ks, ke);
                    }
                }
            }
            d.ranges.truncate(merged + 1);
        }
        let total = d.total?;
        if d.ranges.as_slice() != [(0, total)] {
            return None;
        }
        // Complete.
        std::mem::swap(&mut self.done, &mut d.buf);
        self.done.truncate(total as usize);
        let frags = d.frags;
        let wire_bytes = d.wire_bytes;
        self.drop_slot(i);
        self.stats.reassembled += 1;
        Some(Reassembled {
            payload: &self.done,
            fragments: frags,
            wire_bytes,
        })
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, d)| d.live)
            .min_by_key(|(_, d)| d.first_ts)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            self.stats.evicted += 1;
            self.drop_slot(u32::try_from(i).unwrap_or(u32::MAX));
        }
    }

    /// Drops datagrams older than the timeout at packet time `now` (no allocation).
    pub fn expire(&mut self, now: Timestamp) {
        if self.map.is_empty() {
            return;
        }
        let limit = i64::from(self.cfg.timeout_secs) * 1_000_000;
        for i in 0..self.slots.len() {
            let stale = self
                .slots
                .get(i)
                .is_some_and(|d| d.live && now.0.saturating_sub(d.first_ts.0) >= limit);
            if stale {
                self.stats.timeouts += 1;
                self.drop_slot(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::{decode, decode_transport, linktype};
    use crate::synth::build;

    fn frags_of(udp_payload: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        build::ipv4_fragments(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            0x1234,
            &build::udp_header(50000, 88, udp_payload),
            chunk,
        )
    }

    #[test]
    fn reassembles_out_of_order_fragments() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut frames = frags_of(&payload, 1480);
        assert_eq!(frames.len(), 3);
        frames.swap(0, 2);
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut got = None;
        for f in &frames {
            let p = decode(linktype::RAW, f).unwrap();
            assert!(p.fragment.is_some());
            if let Some(r) = d.push(&p, Timestamp(0), f.len() as u32) {
                assert_eq!(r.fragments, 3);
                let whole = decode_transport(&p, r.payload).unwrap();
                got = Some((whole.dst_port, whole.payload.to_vec()));
            }
        }
        let (port, data) = got.unwrap();
        assert_eq!(port, 88);
        assert_eq!(data, payload);
        assert_eq!(d.stats().reassembled, 1);
        assert_eq!(d.stats().pending, 0);
    }

    #[test]
    fn overlapping_fragment_keeps_first_bytes() {
        let payload = vec![b'A'; 64];
        let frames = frags_of(&payload, 40);
        let mut d = Defragmenter::new(DefragConfig::default());
        let p0 = decode(linktype::RAW, &frames[0]).unwrap();
        assert!(d.push(&p0, Timestamp(0), 0).is_none());
        // A forged fragment re-sending offsets 8..40 with other bytes.
        let mut forged = frames[0][..20 + 32].to_vec();
        for b in &mut forged[20..] {
            *b = b'X';
        }
        forged[2..4].copy_from_slice(&52u16.to_be_bytes());
        forged[6] = 0x20;
        forged[7] = 1; // offset 8, MF
        let pf = decode(linktype::RAW, &forged).unwrap();
        assert!(d.push(&pf, Timestamp(0), 0).is_none());
        let p1 = decode(linktype::RAW, &frames[1]).unwrap();
        let r = d.push(&p1, Timestamp(0), 0).unwrap();
        assert!(r.payload[8..].iter().all(|&b| b == b'A'));
        assert_eq!(d.stats().overlaps, 1);
    }

    #[test]
    fn timeouts_and_bounds() {
        let payload = vec![0u8; 100];
        let frames = frags_of(&payload, 48);
        let mut d = Defragmenter::new(DefragConfig {
            max_datagrams: 1,
            timeout_secs: 30,
        });
        let p = decode(linktype::RAW, &frames[0]).unwrap();
        d.push(&p, Timestamp(0), 0);
        d.expire(Timestamp(29_000_000));
        assert_eq!(d.stats().pending, 1);
        d.expire(Timestamp(30_000_000));
        assert_eq!(d.stats().pending, 0);
        assert_eq!(d.stats().timeouts, 1);
        // Second datagram evicts the first when max is 1.
        d.push(&p, Timestamp(40_000_000), 0);
        let other = build::ipv4_fragments(
            [10, 0, 0, 9],
            [10, 0, 0, 2],
            17,
            7,
            &build::udp_header(1, 53, &payload),
            48,
        );
        let q = decode(linktype::RAW, &other[0]).unwrap();
        d.push(&q, Timestamp(40_000_000), 0);
        assert_eq!(d.stats().evicted, 1);
        assert_eq!(d.stats().pending, 1);
    }
}
