//! The packet ring buffer: the most recent packets, bounded by bytes, for forensic export.
//!
//! Packet bytes live in one arena allocated once at its full size (the OS hands out zero
//! pages lazily, so untouched capacity costs no memory); metadata (time, link type, lengths,
//! flow id and endpoints) lives in a queue that stops growing once the ring has wrapped. When
//! a new packet needs room, the oldest packets are overwritten and counted. Export writes a
//! classic pcap (microsecond timestamps) that tcpdump, tshark and Wireshark read; packets of
//! mixed link types are exported as raw IP.

use crate::decode::linktype;
use netmonitor_common::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::IpAddr;

/// Default ring size in bytes of packet data.
pub const DEFAULT_RING_BYTES: usize = 256 * 1024 * 1024;
/// Bytes stored per packet at most (longer packets are cut, keeping their original length).
pub const DEFAULT_SNAPLEN: u32 = 65_535;
/// Arena bytes a record occupies at least (bounds the record count for tiny frames).
const RECORD_MIN_SPAN: usize = 64;
/// Snap length written in exported pcap headers.
const EXPORT_SNAPLEN: u32 = 262_144;

/// Ring settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingConfig {
    /// Bytes of packet data kept (0 disables the ring).
    pub max_bytes: usize,
    /// Bytes stored per packet at most.
    pub snaplen: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            max_bytes: DEFAULT_RING_BYTES,
            snaplen: DEFAULT_SNAPLEN,
        }
    }
}

impl RingConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.snaplen == 0 {
            return Err(crate::ConfigError::new(
                "ring.snaplen",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Endpoints of a stored packet (innermost IP, as decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketTuple {
    /// Source address.
    pub src_ip: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol.
    pub proto: u8,
}

/// What the pipeline knows about a packet when it stores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingTag {
    /// Flow id, 0 when the packet belongs to no flow (non-IP, undecodable, fragment).
    pub flow_id: u64,
    /// Endpoints, when decoded.
    pub tuple: Option<PacketTuple>,
    /// Offset of the outermost IP header, for raw-IP export.
    pub l3_offset: Option<u16>,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    offset: usize,
    caplen: u32,
    orig_len: u32,
    ts: Timestamp,
    linktype: u32,
    iface: u16,
    tag: RingTag,
}

/// Which packets to export. Unset fields match everything; endpoint filters match either
/// direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportFilter {
    /// Only this flow.
    pub flow_id: Option<u64>,
    /// One endpoint's address.
    pub ip_a: Option<IpAddr>,
    /// One endpoint's port.
    pub port_a: Option<u16>,
    /// The other endpoint's address.
    pub ip_b: Option<IpAddr>,
    /// The other endpoint's port.
    pub port_b: Option<u16>,
    /// IP protocol.
    pub proto: Option<u8>,
    /// Packets at or after this time.
    pub start: Option<Timestamp>,
    /// Packets at or before this time.
    pub end: Option<Timestamp>,
    /// Stop after this many packets.
    pub max_packets: Option<usize>,
}

impl ExportFilter {
    fn endpoint_matches(ip: Option<IpAddr>, port: Option<u16>, a: IpAddr, p: u16) -> bool {
        ip.is_none_or_eq(a) && port.is_none_or_eq(p)
    }

    fn matches(&self, r: &Record) -> bool {
        if self.flow_id.is_some_and(|f| f != r.tag.flow_id) {
            return false;
        }
        if self.start.is_some_and(|s| r.ts < s) || self.end.is_some_and(|e| r.ts > e) {
            return false;
        }
        let wants_tuple = self.ip_a.is_some()
            || self.port_a.is_some()
            || self.ip_b.is_some()
            || self.port_b.is_some()
            || self.proto.is_some();
        if !wants_tuple {
            return true;
        }
        let Some(t) = r.tag.tuple else {
            return false;
        };
        if self.proto.is_some_and(|p| p != t.proto) {
            return false;
        }
        let fwd = Self::endpoint_matches(self.ip_a, self.port_a, t.src_ip, t.src_port)
            && Self::endpoint_matches(self.ip_b, self.port_b, t.dst_ip, t.dst_port);
        let rev = Self::endpoint_matches(self.ip_a, self.port_a, t.dst_ip, t.dst_port)
            && Self::endpoint_matches(self.ip_b, self.port_b, t.src_ip, t.src_port);
        fwd || rev
    }
}

trait NoneOrEq<T> {
    fn is_none_or_eq(&self, v: T) -> bool;
}

impl<T: PartialEq> NoneOrEq<T> for Option<T> {
    fn is_none_or_eq(&self, v: T) -> bool {
        match self {
            None => true,
            Some(x) => *x == v,
        }
    }
}

/// What the ring holds, for status queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RingSummary {
    /// Packets currently held.
    pub packets: u64,
    /// Packet bytes currently held.
    pub bytes: u64,
    /// Arena size.
    pub capacity_bytes: u64,
    /// Oldest held packet.
    pub oldest: Option<Timestamp>,
    /// Newest held packet.
    pub newest: Option<Timestamp>,
    /// Packets overwritten to make room.
    pub overwritten: u64,
    /// Packets ever stored.
    pub stored: u64,
}

/// Asks the kernel, from a short-lived helper thread, to fault in the arena's pages ahead of
/// the packet path. Otherwise the first pass over a large ring pays for zeroing every page on
/// the pipeline thread (measured: a quarter of the time of a 290 MB TLS replay). The helper only
/// issues `MADV_POPULATE_WRITE`, which never changes the arena's contents; on kernels without
/// it (before 5.14) the call fails and pages fault in lazily as before.
fn prefault_in_background(arena: &[u8]) {
    /// `MADV_POPULATE_WRITE` (Linux 5.14+); not yet exported by every libc crate version.
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    let addr = arena.as_ptr() as usize;
    let len = arena.len();
    let _ = std::thread::Builder::new()
        .name("ring-prefault".into())
        .spawn(move || {
            let page = 4096usize;
            let start = addr & !(page - 1);
            // SAFETY: madvise only reads the address range; if the arena was freed meanwhile
            // the call fails with ENOMEM and nothing happens.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    len + (addr - start),
                    MADV_POPULATE_WRITE,
                );
            }
        });
}

/// The ring (see module docs).
#[derive(Debug)]
pub struct PacketRing {
    cfg: RingConfig,
    arena: Vec<u8>,
    write: usize,
    records: VecDeque<Record>,
    bytes: usize,
    overwritten: u64,
    stored: u64,
}

impl PacketRing {
    /// A ring of `cfg.max_bytes` (the arena is allocated on first use).
    pub fn new(cfg: RingConfig) -> Self {
        PacketRing {
            cfg,
            arena: Vec::new(),
            write: 0,
            records: VecDeque::new(),
            bytes: 0,
            overwritten: 0,
            stored: 0,
        }
    }

    /// Stores a packet, overwriting the oldest ones if needed. Packets larger than the whole
    /// ring are not stored.
    pub fn push(
        &mut self,
        ts: Timestamp,
        linktype: u32,
        data: &[u8],
        orig_len: u32,
        iface: u16,
        tag: RingTag,
    ) {
        let cap = self.cfg.max_bytes;
        let len = data.len().min(self.cfg.snaplen as usize);
        // Every record occupies at least RECORD_MIN_SPAN bytes of the arena, so the number of
        // records (and the metadata queue) stays bounded even for empty frames.
        let span = len.max(RECORD_MIN_SPAN);
        if cap == 0 || span > cap {
            return;
        }
        if self.arena.is_empty() {
            // One allocation for the whole life of the ring; zeroed pages come lazily.
            self.arena = vec![0u8; cap];
            prefault_in_background(&self.arena);
        }
        let mut pos = self.write;
        if pos + span > cap {
            // Wrap: everything stored past the old write position is older than what sits at
            // the start, and the tail space is abandoned.
            while let Some(front) = self.records.front() {
                if front.offset >= pos {
                    self.pop_front();
                } else {
                    break;
                }
            }
            pos = 0;
        }
        // Evict the oldest records occupying [pos, pos + span).
        while let Some(front) = self.records.front() {
            let occupied_ahead = front.offset >= pos && front.offset < pos + span;
            if occupied_ahead {
                self.pop_front();
            } else {
                break;
            }
        }
        if let (Some(dst), Some(src)) = (self.arena.get_mut(pos..pos + len), data.get(..len)) {
            dst.copy_from_slice(src);
        }
        self.records.push_back(Record {
            offset: pos,
            caplen: len as u32,
            orig_len: orig_len.max(len as u32),
            ts,
            linktype,
            iface,
            tag,
        });
        self.write = pos + span;
        self.bytes += len;
        self.stored += 1;
    }

    fn pop_front(&mut self) {
        if let Some(r) = self.records.pop_front() {
            self.bytes = self.bytes.saturating_sub(r.caplen as usize);
            self.overwritten += 1;
        }
    }

    /// Counts and time span of what is held.
    pub fn summary(&self) -> RingSummary {
        RingSummary {
            packets: self.records.len() as u64,
            bytes: self.bytes as u64,
            capacity_bytes: self.cfg.max_bytes as u64,
            oldest: self.records.front().map(|r| r.ts),
            newest: self.records.back().map(|r| r.ts),
            overwritten: self.overwritten,
            stored: self.stored,
        }
    }

    /// Number of held packets matching the filter.
    pub fn count(&self, filter: &ExportFilter) -> usize {
        let n = self.records.iter().filter(|r| filter.matches(r)).count();
        filter.max_packets.map_or(n, |m| n.min(m))
    }

    fn data(&self, r: &Record) -> &[u8] {
        self.arena
            .get(r.offset..r.offset + r.caplen as usize)
            .unwrap_or(&[])
    }

    /// Writes the matching packets as a classic pcap (oldest first); returns how many.
    /// When the matches have different link types, IP packets are written as raw IP.
    pub fn export(&self, filter: &ExportFilter, mut out: impl Write) -> io::Result<usize> {
        let limit = filter.max_packets.unwrap_or(usize::MAX);
        let mut common: Option<u32> = None;
        let mut mixed = false;
        for r in self
            .records
            .iter()
            .filter(|r| filter.matches(r))
            .take(limit)
        {
            match common {
                None => common = Some(r.linktype),
                Some(l) if l != r.linktype => mixed = true,
                _ => {}
            }
        }
        let lt = if mixed {
            linktype::RAW
        } else {
            common.unwrap_or(linktype::ETHERNET)
        };
        write_pcap_header(&mut out, lt, EXPORT_SNAPLEN)?;
        let mut n = 0usize;
        for r in self
            .records
            .iter()
            .filter(|r| filter.matches(r))
            .take(limit)
        {
            let data = self.data(r);
            let (bytes, orig) = if mixed {
                let Some(off) = r.tag.l3_offset else { continue };
                let off = usize::from(off);
                let Some(ip) = data.get(off..) else { continue };
                (ip, r.orig_len.saturating_sub(off as u32))
            } else {
                (data, r.orig_len)
            };
            write_pcap_record(&mut out, r.ts, bytes, orig)?;
            n += 1;
        }
        out.flush()?;
        Ok(n)
    }

    /// Visits held packets (oldest first) with their metadata.
    pub fn for_each(&self, mut f: impl FnMut(Timestamp, u32, &[u8], u32, u16, &RingTag)) {
        for r in &self.records {
            f(r.ts, r.linktype, self.data(r), r.orig_len, r.iface, &r.tag);
        }
    }
}

/// Writes a classic pcap global header (microsecond resolution, native little-endian).
pub fn write_pcap_header(out: &mut impl Write, linktype: u32, snaplen: u32) -> io::Result<()> {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&linktype.to_le_bytes());
    out.write_all(&h)
}

/// Writes one classic pcap record (microsecond timestamp).
pub fn write_pcap_record(
    out: &mut impl Write,
    ts: Timestamp,
    data: &[u8],
    orig_len: u32,
) -> io::Result<()> {
    let secs = u32::try_from(ts.secs().max(0)).unwrap_or(u32::MAX);
    let usec = ts.subsec_micros() as u32;
    let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&usec.to_le_bytes());
    h[8..12].copy_from_slice(&caplen.to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
    out.write_all(&h)?;
    out.write_all(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::source::PcapFileSource;
    use crate::synth::build;

    fn tag(flow: u64, sp: u16) -> RingTag {
        RingTag {
            flow_id: flow,
            tuple: Some(PacketTuple {
                src_ip: "10.0.0.1".parse().unwrap(),
                src_port: sp,
                dst_ip: "10.0.0.2".parse().unwrap(),
                dst_port: 443,
                proto: 6,
            }),
            l3_offset: Some(14),
        }
    }

    #[test]
    fn bounded_by_bytes_with_overwrite_count() {
        let mut r = PacketRing::new(RingConfig {
            max_bytes: 1000,
            snaplen: 65535,
        });
        for i in 0..50u32 {
            r.push(
                Timestamp(i64::from(i)),
                1,
                &[i as u8; 100],
                100,
                0,
                RingTag::default(),
            );
        }
        let s = r.summary();
        assert!(s.bytes <= 1000);
        assert_eq!(s.packets, 10);
        assert_eq!(s.overwritten, 40);
        assert_eq!(s.oldest, Some(Timestamp(40)));
        assert_eq!(s.newest, Some(Timestamp(49)));
        // Uneven sizes force the wrap path; contents stay intact.
        for i in 0..100u32 {
            let len = 37 + (i as usize * 53) % 300;
            r.push(
                Timestamp(1000 + i64::from(i)),
                1,
                &vec![i as u8; len],
                len as u32,
                0,
                RingTag::default(),
            );
        }
        let mut prev = None;
        r.for_each(|ts, _, data, _, _, _| {
            let i = (ts.0 - 1000) as u32;
            assert!(data.iter().all(|&b| b == i as u8), "packet {i} corrupted");
            assert!(prev.is_none_or(|p| p < ts));
            prev = Some(ts);
        });
        assert!(r.summary().bytes <= 1000);
        // Empty frames still take room: the record count stays bounded.
        for i in 0..1000 {
            r.push(Timestamp(2000 + i), 1, &[], 0, 0, RingTag::default());
        }
        assert!(r.summary().packets <= 1000 / RECORD_MIN_SPAN as u64);
        // Larger than the ring: not stored.
        let before = r.summary().stored;
        r.push(
            Timestamp(5000),
            1,
            &[0u8; 2000],
            2000,
            0,
            RingTag::default(),
        );
        assert_eq!(r.summary().stored, before);
    }

    #[test]
    fn export_filters_and_reads_back() {
        let mut r = PacketRing::new(RingConfig::default());
        let a = build::eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 5000, 443, 1, 0, 2, b"");
        let b = build::eth_ipv4_tcp([10, 0, 0, 2], [10, 0, 0, 1], 443, 5000, 1, 2, 0x12, b"");
        let c = build::eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 6000, 443, 1, 0, 2, b"");
        r.push(Timestamp(1_000_000), 1, &a, a.len() as u32, 0, tag(7, 5000));
        let mut tb = tag(7, 5000);
        let t = tb.tuple.as_mut().unwrap();
        std::mem::swap(&mut t.src_ip, &mut t.dst_ip);
        t.src_port = 443;
        t.dst_port = 5000;
        r.push(Timestamp(2_000_000), 1, &b, b.len() as u32, 0, tb);
        r.push(Timestamp(3_000_000), 1, &c, c.len() as u32, 0, tag(8, 6000));
        let by_flow = ExportFilter {
            flow_id: Some(7),
            ..Default::default()
        };
        let mut out = Vec::new();
        assert_eq!(r.export(&by_flow, &mut out).unwrap(), 2);
        let mut src = PcapFileSource::new(io::Cursor::new(out)).unwrap();
        let p = src.next_packet().unwrap().unwrap();
        assert_eq!(
            (p.linktype, p.ts, p.data),
            (1, Timestamp(1_000_000), a.as_slice())
        );
        let p = src.next_packet().unwrap().unwrap();
        assert_eq!(p.data, b.as_slice());
        assert!(src.next_packet().unwrap().is_none());
        // Either direction by address/port pair.
        let pair = ExportFilter {
            ip_a: Some("10.0.0.2".parse().unwrap()),
            port_a: Some(443),
            ip_b: Some("10.0.0.1".parse().unwrap()),
            port_b: Some(5000),
            ..Default::default()
        };
        assert_eq!(r.count(&pair), 2);
        let window = ExportFilter {
            start: Some(Timestamp(2_000_000)),
            end: Some(Timestamp(3_000_000)),
            ..Default::default()
        };
        assert_eq!(r.count(&window), 2);
        let limited = ExportFilter {
            max_packets: Some(1),
            ..Default::default()
        };
        assert_eq!(r.export(&limited, io::sink()).unwrap(), 1);
    }

    #[test]
    fn mixed_linktypes_export_as_raw_ip() {
        let mut r = PacketRing::new(RingConfig::default());
        let eth = build::eth_ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 53, b"e");
        let raw = eth[14..].to_vec();
        r.push(
            Timestamp(1),
            linktype::ETHERNET,
            &eth,
            eth.len() as u32,
            0,
            tag(1, 1),
        );
        let mut t = tag(2, 1);
        t.l3_offset = Some(0);
        r.push(Timestamp(2), linktype::RAW, &raw, raw.len() as u32, 1, t);
        let mut out = Vec::new();
        assert_eq!(r.export(&ExportFilter::default(), &mut out).unwrap(), 2);
        let mut src = PcapFileSource::new(io::Cursor::new(out)).unwrap();
        for _ in 0..2 {
            let p = src.next_packet().unwrap().unwrap();
            assert_eq!(p.linktype, linktype::RAW);
            assert_eq!(p.data, raw.as_slice());
        }
    }

    #[test]
    fn export_is_readable_by_tcpdump_when_installed() {
        let Ok(st) = std::process::Command::new("tcpdump")
            .arg("--version")
            .output()
        else {
            eprintln!("tcpdump not installed; skipping");
            return;
        };
        assert!(st.status.success());
        let mut r = PacketRing::new(RingConfig::default());
        for i in 0..5u16 {
            let f = build::eth_ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i, 53, b"hello");
            r.push(
                Timestamp(i64::from(i) * 1_000_000 + 1_700_000_000_000_000),
                1,
                &f,
                f.len() as u32,
                0,
                RingTag::default(),
            );
        }
        let dir = std::env::temp_dir().join(format!("nm-ring-{}.pcap", std::process::id()));
        let file = std::fs::File::create(&dir).unwrap();
        assert_eq!(
            r.export(&ExportFilter::default(), io::BufWriter::new(file))
                .unwrap(),
            5
        );
        let out = std::process::Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&dir)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("10.0.0.1.1004 > 10.0.0.2.53"), "{text}");
    }
}
