//! TCP stream reassembly: turns segments into the in-order byte stream of each direction, for
//! the first [`ReassemblyConfig::max_bytes_per_direction`] bytes (the part dissectors need:
//! handshakes, Kerberos messages).
//!
//! - In-order data is handed to the consumer straight from the packet (no copy).
//! - Retransmissions are dropped; overlaps keep the bytes that arrived first ("first wins",
//!   also among buffered out-of-order segments).
//! - Out-of-order segments wait in a bounded per-direction buffer (count, bytes, and a global
//!   memory cap). When it overflows, or when the peer acknowledges the buffered bytes after a
//!   hole the capture never showed, the hole is declared a gap ([`Chunk::Gap`]) and delivery
//!   continues after it.
//! - A capture that starts mid-connection starts each direction at its first data byte; a SYN
//!   consumes one sequence number; all comparisons are modulo 2^32 (wraparound).
//! - The consumer can stop a flow at any time (stop buffering, free its memory).
#![deny(clippy::indexing_slicing)]

use netmonitor_common::Direction;
use serde::{Deserialize, Serialize};

use crate::decode::tcp_flags;

/// Default bytes delivered per direction before reassembly stops for that direction.
pub const DEFAULT_MAX_BYTES_PER_DIRECTION: u32 = 256 * 1024;
/// Default number of out-of-order segments buffered per direction.
pub const DEFAULT_MAX_PENDING_SEGMENTS: u32 = 64;
/// Default out-of-order bytes buffered per direction.
pub const DEFAULT_MAX_PENDING_BYTES: u32 = 256 * 1024;
/// Default cap on out-of-order bytes buffered across all flows.
pub const DEFAULT_MEMCAP_BYTES: usize = 64 * 1024 * 1024;
/// Spare segment buffers kept for reuse.
const MAX_POOLED_BUFFERS: usize = 4096;
/// Initial capacity of a segment buffer: one full-size Ethernet segment fits without growing.
const POOLED_BUFFER_BYTES: usize = 2048;
/// Buffers larger than this are freed instead of pooled.
const MAX_POOLED_CAPACITY: usize = 64 * 1024;

/// Reassembly bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReassemblyConfig {
    /// Stream bytes (data and gaps) delivered per direction before it stops.
    pub max_bytes_per_direction: u32,
    /// Out-of-order segments buffered per direction.
    pub max_pending_segments: u32,
    /// Out-of-order bytes buffered per direction.
    pub max_pending_bytes: u32,
    /// Out-of-order bytes buffered across all flows.
    pub memcap_bytes: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_bytes_per_direction: DEFAULT_MAX_BYTES_PER_DIRECTION,
            max_pending_segments: DEFAULT_MAX_PENDING_SEGMENTS,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            memcap_bytes: DEFAULT_MEMCAP_BYTES,
        }
    }
}

impl ReassemblyConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.max_bytes_per_direction > i32::MAX as u32 {
            return Err(crate::ConfigError::new(
                "reassembly.max_bytes_per_direction",
                "must be below 2^31",
            ));
        }
        if self.max_pending_bytes > i32::MAX as u32 / 2 {
            return Err(crate::ConfigError::new(
                "reassembly.max_pending_bytes",
                "must be below 2^30",
            ));
        }
        Ok(())
    }
}

/// What the consumer receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next in-order bytes.
    Data(&'a [u8]),
    /// This many bytes were never seen (capture loss); the stream continues after them.
    Gap(u32),
}

/// Counters of the reassembler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReassemblyStats {
    /// Segments with payload processed.
    pub segments: u64,
    /// Bytes handed to consumers.
    pub bytes_delivered: u64,
    /// Segments entirely made of already-delivered bytes.
    pub retransmissions: u64,
    /// Segments partly overlapping delivered or buffered bytes.
    pub overlaps: u64,
    /// Segments buffered because they arrived early.
    pub out_of_order: u64,
    /// Holes declared (never-seen bytes).
    pub gaps: u64,
    /// Times the buffer of early segments was full.
    pub pending_overflows: u64,
    /// Directions that reached the byte cap.
    pub cap_reached: u64,
    /// Flows the consumer stopped.
    pub stopped_by_consumer: u64,
    /// Out-of-order bytes currently buffered (all flows).
    pub pending_bytes: u64,
}

#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum HalfState {
    #[default]
    Uninit,
    Active,
    Done,
}

#[derive(Debug)]
struct Pending {
    seq: u32,
    data: Vec<u8>,
}

impl Pending {
    fn end(&self) -> u32 {
        self.seq.wrapping_add(len32(&self.data))
    }
}

#[derive(Debug, Default)]
struct HalfStream {
    state: HalfState,
    next: u32,
    consumed: u32,
    pending: Vec<Pending>,
    pending_bytes: u32,
}

/// Per-flow reassembly state of both directions; lives in the flow's state slot.
#[derive(Debug, Default)]
pub struct TcpStreams {
    half: [HalfStream; 2],
    stopped: bool,
}

impl TcpStreams {
    /// The consumer (or the caps) ended reassembly for both directions.
    pub fn is_stopped(&self) -> bool {
        self.stopped || self.half.iter().all(|h| h.state == HalfState::Done)
    }

    /// Stream bytes (data and gaps) consumed so far in one direction.
    pub fn consumed(&self, dir: Direction) -> u32 {
        self.half.get(idx(dir)).map_or(0, |h| h.consumed)
    }
}

/// One TCP segment as reassembly needs it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with the ACK flag).
    pub ack: u32,
    /// TCP flags.
    pub flags: u8,
    /// Payload.
    pub data: &'a [u8],
}

#[inline]
fn idx(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

#[inline]
fn other(d: Direction) -> Direction {
    match d {
        Direction::ToServer => Direction::ToClient,
        Direction::ToClient => Direction::ToServer,
    }
}

#[inline]
fn len32(d: &[u8]) -> u32 {
    u32::try_from(d.len()).unwrap_or(u32::MAX)
}

/// Outcome of a delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    /// This direction is done (cap reached or consumer refused a gap).
    DirDone,
    /// The consumer stopped the whole flow.
    Stop,
}

/// The reassembly engine: settings, spare buffers and counters, shared by all flows.
#[derive(Debug)]
pub struct Reassembler {
    cfg: ReassemblyConfig,
    pool: Vec<Vec<u8>>,
    pending_total: usize,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler with these bounds.
    pub fn new(cfg: ReassemblyConfig) -> Self {
        Reassembler {
            cfg,
            pool: Vec::new(),
            pending_total: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ReassemblyStats {
        ReassemblyStats {
            pending_bytes: self.pending_total as u64,
            ..self.stats
        }
    }

    /// Processes one segment travelling in `dir`. `sink(dir, chunk)` receives in-order data
    /// (return false to stop the whole flow) and gaps (return false to stop that direction).
    pub fn segment<F>(
        &mut self,
        s: &mut TcpStreams,
        dir: Direction,
        seg: &Segment<'_>,
        sink: &mut F,
    ) where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        if s.stopped {
            return;
        }
        // The peer acknowledging bytes we hold a hole before: the capture missed them.
        if seg.flags & tcp_flags::ACK != 0 {
            let od = other(dir);
            if self.ack_gap(s, od, seg.ack, sink) == Flow::Stop {
                self.stop(s);
                return;
            }
        }
        let Some(h) = s.half.get_mut(idx(dir)) else {
            return;
        };
        if h.state == HalfState::Done {
            return;
        }
        let mut seq = seg.seq;
        if seg.flags & tcp_flags::SYN != 0 {
            if h.state == HalfState::Uninit {
                h.state = HalfState::Active;
                h.next = seq.wrapping_add(1);
            }
            seq = seq.wrapping_add(1);
        }
        if seg.data.is_empty() {
            return;
        }
        if h.state == HalfState::Uninit {
            // Picked up mid-stream: start at the first data byte seen.
            h.state = HalfState::Active;
            h.next = seq;
        }
        self.stats.segments += 1;
        if self.data(s, dir, seq, seg.data, sink) == Flow::Stop {
            self.stop(s);
        }
    }

    /// Flushes buffered segments at the end of a flow (holes become gaps) and frees buffers.
    pub fn finish<F>(&mut self, s: &mut TcpStreams, sink: &mut F)
    where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        if !s.stopped {
            for dir in [Direction::ToServer, Direction::ToClient] {
                while let Some(h) = s.half.get_mut(idx(dir)) {
                    if h.state != HalfState::Active {
                        break;
                    }
                    let Some(first) = h.pending.first().map(|p| p.seq) else {
                        break;
                    };
                    let hole = first.wrapping_sub(h.next);
                    let r = self.gap(s, dir, hole, sink);
                    let r = if r == Flow::Go {
                        self.drain(s, dir, sink)
                    } else {
                        r
                    };
                    match r {
                        Flow::Go => {}
                        Flow::DirDone => break,
                        Flow::Stop => {
                            self.stop(s);
                            return;
                        }
                    }
                }
            }
        }
        self.release(s);
    }

    /// Stops reassembly of a flow (both directions) and frees its buffers.
    pub fn stop(&mut self, s: &mut TcpStreams) {
        if !s.stopped {
            self.stats.stopped_by_consumer += 1;
        }
        s.stopped = true;
        self.release(s);
    }

    /// Returns a flow's buffers to the pool (its state stays).
    pub fn release(&mut self, s: &mut TcpStreams) {
        for h in &mut s.half {
            self.release_half(h);
        }
    }

    fn release_half(&mut self, h: &mut HalfStream) {
        for p in h.pending.drain(..) {
            self.pending_total = self.pending_total.saturating_sub(p.data.len());
            recycle(&mut self.pool, p.data);
        }
        h.pending_bytes = 0;
    }

    fn done_half(&mut self, s: &mut TcpStreams, dir: Direction) {
        if let Some(h) = s.half.get_mut(idx(dir)) {
            h.state = HalfState::Done;
            let mut taken = std::mem::take(&mut h.pending);
            for p in taken.drain(..) {
                self.pending_total = self.pending_total.saturating_sub(p.data.len());
                recycle(&mut self.pool, p.data);
            }
            h.pending = taken;
            h.pending_bytes = 0;
        }
    }

    fn ack_gap<F>(&mut self, s: &mut TcpStreams, dir: Direction, ack: u32, sink: &mut F) -> Flow
    where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        let Some(h) = s.half.get(idx(dir)) else {
            return Flow::Go;
        };
        if h.state != HalfState::Active || !seq_lt(h.next, ack) {
            return Flow::Go;
        }
        let Some((first, first_end)) = h.pending.first().map(|p| (p.seq, p.end())) else {
            return Flow::Go;
        };
        // Only when the receiver acknowledged the whole first buffered segment: an ACK merely
        // reaching into the hole is more often a capture reordering (the data follows) than a
        // loss.
        if !seq_le(first_end, ack) {
            return Flow::Go;
        }
        let hole = first.wrapping_sub(h.next);
        match self.gap(s, dir, hole, sink) {
            Flow::Go => match self.drain(s, dir, sink) {
                Flow::Stop => Flow::Stop,
                _ => Flow::Go,
            },
            Flow::DirDone => Flow::Go,
            Flow::Stop => Flow::Stop,
        }
    }

    /// Data starting at `seq` in an active direction.
    fn data<F>(
        &mut self,
        s: &mut TcpStreams,
        dir: Direction,
        mut seq: u32,
        mut data: &[u8],
        sink: &mut F,
    ) -> Flow
    where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        // Bounded: each turn either finishes or removes buffered segments via a gap.
        for _ in 0..=self.cfg.max_pending_segments.saturating_add(2) {
            let Some(h) = s.half.get(idx(dir)) else {
                return Flow::Go;
            };
            if h.state != HalfState::Active {
                return Flow::Go;
            }
            let next = h.next;
            let end = seq.wrapping_add(len32(data));
            if seq_le(end, next) {
                self.stats.retransmissions += 1;
                return Flow::Go;
            }
            if seq_lt(seq, next) {
                let skip = next.wrapping_sub(seq) as usize;
                data = data.get(skip..).unwrap_or(&[]);
                seq = next;
                self.stats.overlaps += 1;
            }
            if seq == next {
                let first = h.pending.first().map(|p| p.seq);
                match first {
                    None => return self.deliver(s, dir, data, sink),
                    Some(first) => {
                        // Bytes before the first buffered segment go straight out; then the
                        // buffered bytes (they arrived first, so they win), then whatever of
                        // this segment lies beyond them, on the next turn.
                        let n = (first.wrapping_sub(seq) as usize).min(data.len());
                        let (now, later) = data.split_at(n);
                        let r = self.deliver(s, dir, now, sink);
                        if r != Flow::Go {
                            return r;
                        }
                        let r = self.drain(s, dir, sink);
                        if r != Flow::Go || later.is_empty() {
                            return r;
                        }
                        seq = seq.wrapping_add(len32(now));
                        data = later;
                        continue;
                    }
                }
            }
            // Early segment: buffer it.
            if self.insert(s, dir, seq, data) {
                self.stats.out_of_order += 1;
                return Flow::Go;
            }
            // No room: give up on the oldest hole and retry.
            self.stats.pending_overflows += 1;
            let Some(h) = s.half.get(idx(dir)) else {
                return Flow::Go;
            };
            let target = h.pending.first().map_or(seq, |p| p.seq);
            let hole = target.wrapping_sub(h.next);
            let r = self.gap(s, dir, hole, sink);
            if r != Flow::Go {
                return r;
            }
            let r = self.drain(s, dir, sink);
            if r != Flow::Go {
                return r;
            }
        }
        Flow::Go
    }

    /// Buffers the parts of `[seq, seq+len)` not already buffered. False if over a cap.
    fn insert(&mut self, s: &mut TcpStreams, dir: Direction, seq: u32, data: &[u8]) -> bool {
        let Some(h) = s.half.get_mut(idx(dir)) else {
            return false;
        };
        let end = seq.wrapping_add(len32(data));
        // Dry run: how many new pieces and bytes.
        let (pieces, bytes) = {
            let mut cur = seq;
            let mut i = h.pending.partition_point(|p| seq_le(p.end(), cur));
            let mut pieces = 0u32;
            let mut bytes = 0u32;
            while seq_lt(cur, end) {
                match h.pending.get(i) {
                    Some(p) if seq_le(p.seq, cur) => {
                        cur = p.end();
                        i += 1;
                    }
                    Some(p) => {
                        let pe = if seq_lt(p.seq, end) { p.seq } else { end };
                        pieces += 1;
                        bytes = bytes.saturating_add(pe.wrapping_sub(cur));
                        cur = pe;
                    }
                    None => {
                        pieces += 1;
                        bytes = bytes.saturating_add(end.wrapping_sub(cur));
                        cur = end;
                    }
                }
            }
            (pieces, bytes)
        };
        if bytes < len32(data) {
            self.stats.overlaps += 1;
        }
        if pieces == 0 {
            return true;
        }
        if (h.pending.len() as u64 + u64::from(pieces)) > u64::from(self.cfg.max_pending_segments)
            || h.pending_bytes.saturating_add(bytes) > self.cfg.max_pending_bytes
            || self.pending_total.saturating_add(bytes as usize) > self.cfg.memcap_bytes
        {
            return false;
        }
        let mut cur = seq;
        let mut i = h.pending.partition_point(|p| seq_le(p.end(), cur));
        while seq_lt(cur, end) {
            let piece_end = match h.pending.get(i) {
                Some(p) if seq_le(p.seq, cur) => {
                    cur = p.end();
                    i += 1;
                    continue;
                }
                Some(p) => {
                    if seq_lt(p.seq, end) {
                        p.seq
                    } else {
                        end
                    }
                }
                None => end,
            };
            let from = cur.wrapping_sub(seq) as usize;
            let to = piece_end.wrapping_sub(seq) as usize;
            let mut buf = self
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(POOLED_BUFFER_BYTES));
            buf.clear();
            buf.extend_from_slice(data.get(from..to).unwrap_or(&[]));
            let n = len32(&buf);
            h.pending.insert(
                i.min(h.pending.len()),
                Pending {
                    seq: cur,
                    data: buf,
                },
            );
            h.pending_bytes = h.pending_bytes.saturating_add(n);
            self.pending_total = self.pending_total.saturating_add(n as usize);
            i += 1;
            cur = piece_end;
        }
        true
    }

    /// Delivers buffered segments that are now in order.
    fn drain<F>(&mut self, s: &mut TcpStreams, dir: Direction, sink: &mut F) -> Flow
    where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        loop {
            let Some(h) = s.half.get_mut(idx(dir)) else {
                return Flow::Go;
            };
            if h.state != HalfState::Active {
                return Flow::Go;
            }
            let next = h.next;
            match h.pending.first() {
                Some(p) if seq_le(p.seq, next) => {}
                _ => return Flow::Go,
            }
            let p = h.pending.remove(0);
            let n = len32(&p.data);
            h.pending_bytes = h.pending_bytes.saturating_sub(n);
            self.pending_total = self.pending_total.saturating_sub(p.data.len());
            let r = if seq_lt(next, p.end()) {
                let skip = next.wrapping_sub(p.seq) as usize;
                self.deliver(s, dir, p.data.get(skip..).unwrap_or(&[]), sink)
            } else {
                Flow::Go
            };
            recycle(&mut self.pool, p.data);
            if r != Flow::Go {
                return r;
            }
        }
    }

    fn deliver<F>(&mut self, s: &mut TcpStreams, dir: Direction, data: &[u8], sink: &mut F) -> Flow
    where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        let cap = self.cfg.max_bytes_per_direction;
        let Some(h) = s.half.get_mut(idx(dir)) else {
            return Flow::Go;
        };
        let room = cap.saturating_sub(h.consumed) as usize;
        let take = room.min(data.len());
        h.next = h.next.wrapping_add(len32(data));
        h.consumed = h.consumed.saturating_add(take as u32);
        let reached = h.consumed >= cap;
        if take > 0 {
            self.stats.bytes_delivered += take as u64;
            if !sink(dir, Chunk::Data(data.get(..take).unwrap_or(&[]))) {
                return Flow::Stop;
            }
        }
        if reached {
            self.stats.cap_reached += 1;
            self.done_half(s, dir);
            return Flow::DirDone;
        }
        Flow::Go
    }

    fn gap<F>(&mut self, s: &mut TcpStreams, dir: Direction, len: u32, sink: &mut F) -> Flow
    where
        F: FnMut(Direction, Chunk<'_>) -> bool,
    {
        if len == 0 {
            return Flow::Go;
        }
        let cap = self.cfg.max_bytes_per_direction;
        let Some(h) = s.half.get_mut(idx(dir)) else {
            return Flow::Go;
        };
        h.next = h.next.wrapping_add(len);
        h.consumed = h.consumed.saturating_add(len);
        let reached = h.consumed >= cap;
        self.stats.gaps += 1;
        if !sink(dir, Chunk::Gap(len)) {
            self.done_half(s, dir);
            return Flow::DirDone;
        }
        if reached {
            self.stats.cap_reached += 1;
            self.done_half(s, dir);
            return Flow::DirDone;
        }
        Flow::Go
    }
}

fn recycle(pool: &mut Vec<Vec<u8>>, mut buf: Vec<u8>) {
    if pool.len() < MAX_POOLED_BUFFERS && buf.capacity() <= MAX_POOLED_CAPACITY {
        buf.clear();
        pool.push(buf);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use tcp_flags::{ACK, PSH, SYN};

    /// Collects what the consumer sees.
    #[derive(Default)]
    struct Out {
        ts: Vec<u8>,
        tc: Vec<u8>,
        gaps: Vec<(Direction, u32)>,
        stop_after: Option<usize>,
    }

    impl Out {
        fn sink(&mut self) -> impl FnMut(Direction, Chunk<'_>) -> bool + '_ {
            move |d, c| match c {
                Chunk::Data(b) => {
                    let v = if d == Direction::ToServer {
                        &mut self.ts
                    } else {
                        &mut self.tc
                    };
                    v.extend_from_slice(b);
                    match self.stop_after {
                        Some(n) => v.len() < n,
                        None => true,
                    }
                }
                Chunk::Gap(n) => {
                    self.gaps.push((d, n));
                    true
                }
            }
        }
    }

    fn seg(seq: u32, flags: u8, data: &[u8]) -> Segment<'_> {
        Segment {
            seq,
            ack: 0,
            flags,
            data,
        }
    }

    fn run(
        r: &mut Reassembler,
        s: &mut TcpStreams,
        out: &mut Out,
        dir: Direction,
        sg: Segment<'_>,
    ) {
        let mut sink = out.sink();
        r.segment(s, dir, &sg, &mut sink);
    }

    const TS: Direction = Direction::ToServer;
    const TC: Direction = Direction::ToClient;

    #[test]
    fn in_order_after_syn_and_retransmission() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(100, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(101, ACK | PSH, b"hello "));
        run(&mut r, &mut s, &mut o, TS, seg(101, ACK | PSH, b"hello ")); // retransmit
        run(&mut r, &mut s, &mut o, TS, seg(107, ACK | PSH, b"world"));
        assert_eq!(o.ts, b"hello world");
        assert_eq!(r.stats().retransmissions, 1);
        assert!(o.gaps.is_empty());
    }

    #[test]
    fn out_of_order_segments_are_buffered_and_drained() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(0, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(7, ACK, b"ccc"));
        run(&mut r, &mut s, &mut o, TS, seg(4, ACK, b"bbb"));
        assert!(o.ts.is_empty());
        assert_eq!(r.stats().pending_bytes, 6);
        run(&mut r, &mut s, &mut o, TS, seg(1, ACK, b"aaa"));
        assert_eq!(o.ts, b"aaabbbccc");
        assert_eq!(r.stats().out_of_order, 2);
        assert_eq!(r.stats().pending_bytes, 0);
    }

    #[test]
    fn overlaps_keep_first_arrived_bytes() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(0, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(1, ACK, b"AAAA"));
        // Overlaps delivered bytes: only the new tail counts.
        run(&mut r, &mut s, &mut o, TS, seg(3, ACK, b"xxBB"));
        assert_eq!(o.ts, b"AAAABB");
        // Two early segments overlapping each other: the first buffered wins.
        run(&mut r, &mut s, &mut o, TS, seg(9, ACK, b"DDDD"));
        run(&mut r, &mut s, &mut o, TS, seg(8, ACK, b"yyyyyyE"));
        run(&mut r, &mut s, &mut o, TS, seg(7, ACK, b"C"));
        assert_eq!(o.ts, b"AAAABBCyDDDDyE");
        // In-order data overlapping a buffered segment: buffered bytes win.
        run(&mut r, &mut s, &mut o, TS, seg(16, ACK, b"GG"));
        run(&mut r, &mut s, &mut o, TS, seg(15, ACK, b"FzzH"));
        assert_eq!(o.ts, b"AAAABBCyDDDDyEFGGH");
        assert!(r.stats().overlaps >= 3);
    }

    #[test]
    fn midstream_start_and_server_direction() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TC, seg(5000, ACK, b"late"));
        run(&mut r, &mut s, &mut o, TC, seg(5004, ACK, b"r"));
        run(&mut r, &mut s, &mut o, TS, seg(9000, ACK, b"q"));
        assert_eq!(
            (o.ts.as_slice(), o.tc.as_slice()),
            (&b"q"[..], &b"later"[..])
        );
    }

    #[test]
    fn sequence_wraparound() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        let isn = u32::MAX - 3;
        run(&mut r, &mut s, &mut o, TS, seg(isn, SYN, b""));
        // Second segment arrives first and sits across the wrap.
        run(
            &mut r,
            &mut s,
            &mut o,
            TS,
            seg(isn.wrapping_add(4), ACK, b"45678"),
        );
        run(
            &mut r,
            &mut s,
            &mut o,
            TS,
            seg(isn.wrapping_add(1), ACK, b"123"),
        );
        run(
            &mut r,
            &mut s,
            &mut o,
            TS,
            seg(isn.wrapping_add(1), ACK, b"12"),
        ); // old
        run(&mut r, &mut s, &mut o, TS, seg(5, ACK, b"9"));
        assert_eq!(o.ts, b"123456789");
    }

    #[test]
    fn split_client_hello_is_joined() {
        // A TLS record header + ClientHello split over three segments, delivered out of order.
        let hello: Vec<u8> = [
            0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0x03, 0x03, 0xAA, 0xBB,
        ]
        .to_vec();
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(41, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(42, ACK, &hello[..3]));
        run(&mut r, &mut s, &mut o, TS, seg(42 + 9, ACK, &hello[9..]));
        run(&mut r, &mut s, &mut o, TS, seg(42 + 3, ACK, &hello[3..9]));
        assert_eq!(o.ts, hello);
    }

    #[test]
    fn acked_hole_becomes_a_gap() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(0, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(1, ACK, b"aa"));
        run(&mut r, &mut s, &mut o, TS, seg(6, ACK, b"cc")); // bytes 3..6 never captured
        assert_eq!(o.ts, b"aa");
        // The server acknowledges up to 8: the hole was received by the host.
        {
            let mut sink = o.sink();
            r.segment(
                &mut s,
                TC,
                &Segment {
                    seq: 500,
                    ack: 8,
                    flags: ACK,
                    data: b"",
                },
                &mut sink,
            );
        }
        assert_eq!(o.ts, b"aacc");
        assert_eq!(o.gaps, vec![(TS, 3)]);
        assert_eq!(r.stats().gaps, 1);
    }

    #[test]
    fn pending_overflow_skips_the_hole() {
        let cfg = ReassemblyConfig {
            max_pending_segments: 2,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(cfg);
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(0, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(11, ACK, b"b"));
        run(&mut r, &mut s, &mut o, TS, seg(12, ACK, b"c"));
        run(&mut r, &mut s, &mut o, TS, seg(14, ACK, b"e"));
        // First hole [1, 11) given up; b c delivered; e buffered.
        assert_eq!(o.ts, b"bc");
        assert_eq!(o.gaps, vec![(TS, 10)]);
        run(&mut r, &mut s, &mut o, TS, seg(13, ACK, b"d"));
        assert_eq!(o.ts, b"bcde");
        assert_eq!(r.stats().pending_overflows, 1);
    }

    #[test]
    fn cap_stops_a_direction_and_consumer_stops_the_flow() {
        let cfg = ReassemblyConfig {
            max_bytes_per_direction: 5,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(cfg);
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(1, ACK, b"abc"));
        run(&mut r, &mut s, &mut o, TS, seg(4, ACK, b"defg"));
        run(&mut r, &mut s, &mut o, TS, seg(8, ACK, b"hij"));
        assert_eq!(o.ts, b"abcde");
        assert_eq!(r.stats().cap_reached, 1);
        assert!(!s.is_stopped(), "other direction still active");
        // Consumer says stop after 2 bytes in the other direction.
        o.stop_after = Some(2);
        run(&mut r, &mut s, &mut o, TC, seg(1, ACK, b"xy"));
        assert!(s.is_stopped());
        run(&mut r, &mut s, &mut o, TC, seg(3, ACK, b"zz"));
        assert_eq!(o.tc, b"xy");
        assert_eq!(r.stats().stopped_by_consumer, 1);
    }

    #[test]
    fn finish_flushes_buffered_data_after_gaps() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut s = TcpStreams::default();
        let mut o = Out::default();
        run(&mut r, &mut s, &mut o, TS, seg(0, SYN, b""));
        run(&mut r, &mut s, &mut o, TS, seg(5, ACK, b"tail"));
        {
            let mut sink = o.sink();
            r.finish(&mut s, &mut sink);
        }
        assert_eq!(o.ts, b"tail");
        assert_eq!(o.gaps, vec![(TS, 4)]);
        assert_eq!(r.stats().pending_bytes, 0);
    }

    #[test]
    fn memcap_bounds_all_flows() {
        let cfg = ReassemblyConfig {
            memcap_bytes: 10,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(cfg);
        let mut flows: Vec<TcpStreams> = (0..5).map(|_| TcpStreams::default()).collect();
        let mut o = Out::default();
        for s in flows.iter_mut() {
            run(&mut r, s, &mut o, TS, seg(0, SYN, b""));
            run(&mut r, s, &mut o, TS, seg(10, ACK, b"xxxx"));
        }
        assert!(r.stats().pending_bytes <= 10);
        assert!(r.stats().pending_overflows >= 2);
    }
}
