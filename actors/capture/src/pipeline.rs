//! The packet path in one place: decode → defragment → flow lookup → ring buffer → TCP
//! reassembly → application handler.
//!
//! [`Pipeline::process`] takes one packet and does no allocation once warmed up (flow slots,
//! hash table, ring arena and reassembly buffers are reused). The application layer plugs in
//! through [`AppHandler`]: it receives reassembled TCP bytes per direction, UDP datagrams and
//! the end of each flow with its state and record; it names the flow's application protocol
//! by setting [`FlowInfo::app_proto`] and can stop payload delivery for a flow at any time.
//! Flow expiry runs in batches driven by packet time, so a replay behaves like live capture.

use crate::decode::{decode, decode_transport, DecodedPacket};
use crate::defrag::{DefragConfig, Defragmenter};
use crate::flow::{EndedFlow, FlowConfig, FlowLookup, FlowTable};
use crate::reassembly::{Chunk, Reassembler, ReassemblyConfig, Segment, TcpStreams};
use crate::ring::{PacketRing, PacketTuple, RingConfig, RingTag};
use crate::stats::{PipelineStats, StatsSnapshot};
use netmonitor_common::{ipproto, Direction, FlowKey, FlowRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use crate::flow::FlowInfo;
pub use crate::source::RawPacket;

/// Settings of the whole packet path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Flow table.
    pub flow: FlowConfig,
    /// TCP reassembly.
    pub reassembly: ReassemblyConfig,
    /// IP defragmentation.
    pub defrag: DefragConfig,
    /// Packet ring buffer.
    pub ring: RingConfig,
    /// Which packets to look at (ports, hosts); everything by default.
    pub filter: PacketFilter,
}

/// A port/host filter applied right after decoding, for sensors that must ignore part of the
/// link (their own management traffic, a noisy backup port) or watch only some services.
/// Filtered packets are counted and go nowhere, not even into the ring buffer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PacketFilter {
    /// Keep only packets with one of these ports on either side (empty: all ports).
    pub ports: Vec<u16>,
    /// Drop packets with one of these ports on either side.
    pub exclude_ports: Vec<u16>,
    /// Keep only packets to or from one of these addresses (empty: all hosts).
    pub hosts: Vec<std::net::IpAddr>,
}

impl PacketFilter {
    /// Whether a decoded packet passes. Fragments after the first carry no ports; they pass
    /// the port tests so that defragmentation still sees every piece.
    pub fn allows(&self, p: &DecodedPacket<'_>) -> bool {
        let has_ports = !(p.src_port == 0 && p.dst_port == 0 && p.fragment.is_some());
        let port_in = |list: &[u16]| list.contains(&p.src_port) || list.contains(&p.dst_port);
        if has_ports && !self.ports.is_empty() && !port_in(&self.ports) {
            return false;
        }
        if has_ports && port_in(&self.exclude_ports) {
            return false;
        }
        self.hosts.is_empty() || self.hosts.contains(&p.src_ip) || self.hosts.contains(&p.dst_ip)
    }

    fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.exclude_ports.is_empty() && self.hosts.is_empty()
    }
}

impl PipelineConfig {
    /// Checks every section, naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        self.flow.validate()?;
        self.reassembly.validate()?;
        self.defrag.validate()?;
        self.ring.validate()
    }
}

/// The application layer's hooks (dissectors, detectors). All calls happen on the pipeline's
/// thread, in packet order.
pub trait AppHandler {
    /// Per-flow state, created with the flow.
    type State: Default;

    /// Reassembled, in-order TCP bytes of one direction. Return false to stop reassembly for
    /// this flow (both directions).
    fn on_tcp_data(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut Self::State,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
    ) -> bool;

    /// `len` bytes of one direction were never captured. Return true to keep receiving data
    /// after the hole, false (the default) to stop that direction.
    fn on_tcp_gap(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut Self::State,
        dir: Direction,
        len: u32,
        ts: Timestamp,
    ) -> bool {
        let _ = (flow, state, dir, len, ts);
        false
    }

    /// One UDP datagram payload.
    fn on_udp(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut Self::State,
        dir: Direction,
        payload: &[u8],
        ts: Timestamp,
    );

    /// Every decoded packet, before its payload is delivered (for packet-level detectors such
    /// as scan and flood counters). Default: nothing.
    fn on_packet(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut Self::State,
        dir: Direction,
        pkt: &DecodedPacket<'_>,
        ts: Timestamp,
    ) {
        let _ = (flow, state, dir, pkt, ts);
    }

    /// A flow ended (timeout, eviction, or end of capture via [`Pipeline::finish`]): its
    /// record and its state.
    fn on_flow_end(&mut self, flow: &FlowInfo, state: Self::State, record: FlowRecord);

    /// A well-formed frame that carries no IP (ARP, LLDP, ...), as captured. Default: nothing.
    fn on_non_ip(&mut self, linktype: u32, frame: &[u8], ts: Timestamp) {
        let _ = (linktype, frame, ts);
    }
}

/// What the pipeline keeps per flow: the handler's state and the TCP streams.
#[derive(Debug, Default)]
pub struct FlowSlot<S> {
    /// The handler's state.
    pub app: S,
    /// Reassembly state.
    pub tcp: TcpStreams,
}

/// Flows ended at once at the end of a capture before their records are handed on.
pub const FINISH_CHUNK: usize = 512;

/// The packet path (see module docs).
pub struct Pipeline<H: AppHandler> {
    cfg: PipelineConfig,
    handler: H,
    flows: FlowTable<FlowSlot<H::State>>,
    reasm: Reassembler,
    defrag: Defragmenter,
    ring: PacketRing,
    stats: PipelineStats,
    ended: Vec<EndedFlow<FlowSlot<H::State>>>,
    next_sweep: Option<Timestamp>,
    sweep_micros: i64,
}

impl<H: AppHandler> Pipeline<H> {
    /// Builds the pipeline; the configuration must be valid ([`PipelineConfig::validate`]).
    pub fn new(cfg: PipelineConfig, handler: H) -> Result<Self, crate::ConfigError> {
        cfg.validate()?;
        Ok(Pipeline {
            flows: FlowTable::new(cfg.flow.clone()),
            reasm: Reassembler::new(cfg.reassembly.clone()),
            defrag: Defragmenter::new(cfg.defrag.clone()),
            ring: PacketRing::new(cfg.ring.clone()),
            sweep_micros: i64::from(cfg.flow.sweep_interval_ms) * 1000,
            cfg,
            handler,
            stats: PipelineStats::default(),
            ended: Vec::with_capacity(256),
            next_sweep: None,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// The application handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application handler, mutably (e.g. to drain its events).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Consumes the pipeline, returning the handler (call [`Pipeline::finish`] first).
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// Pipeline-level counters (packets, bytes, decode errors, per interface).
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// All counters of the packet path, serializable.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot::build(
            &self.stats,
            self.flows.stats(),
            self.reasm.stats(),
            self.defrag.stats(),
            self.ring.summary(),
        )
    }

    /// The packet ring buffer.
    pub fn ring(&self) -> &PacketRing {
        &self.ring
    }

    /// The flow table (read-only, for status queries).
    pub fn flows(&self) -> &FlowTable<FlowSlot<H::State>> {
        &self.flows
    }

    /// Processes one packet.
    pub fn process(&mut self, pkt: &RawPacket<'_>) {
        let ts = pkt.ts;
        let wire = pkt
            .orig_len
            .max(u32::try_from(pkt.data.len()).unwrap_or(u32::MAX));
        self.stats.count_packet(pkt.iface, wire);
        if ts > self.stats.last_ts {
            self.stats.last_ts = ts;
        }
        self.maybe_sweep(ts);
        let p = match decode(pkt.linktype, pkt.data) {
            Ok(p) => p,
            Err(e) => {
                self.stats.decode_errors.add(e);
                if e == crate::decode::DecodeError::NonIp {
                    self.handler.on_non_ip(pkt.linktype, pkt.data, ts);
                }
                self.ring.push(
                    ts,
                    pkt.linktype,
                    pkt.data,
                    pkt.orig_len,
                    pkt.iface,
                    RingTag::default(),
                );
                return;
            }
        };
        self.stats.decoded += 1;
        if !self.cfg.filter.is_empty() && !self.cfg.filter.allows(&p) {
            self.stats.filtered += 1;
            return;
        }
        if p.tunnel_depth > 0 {
            self.stats.tunneled += 1;
        }
        let tuple = Some(PacketTuple {
            src_ip: p.src_ip,
            src_port: p.src_port,
            dst_ip: p.dst_ip,
            dst_port: p.dst_port,
            proto: p.proto,
        });
        if p.fragment.is_some() {
            self.stats.fragments += 1;
            self.ring.push(
                ts,
                pkt.linktype,
                pkt.data,
                pkt.orig_len,
                pkt.iface,
                RingTag {
                    flow_id: 0,
                    tuple,
                    l3_offset: p.l3_offset,
                },
            );
            let Pipeline {
                defrag,
                flows,
                reasm,
                handler,
                ended,
                stats,
                ..
            } = self;
            if let Some(r) = defrag.push(&p, ts, wire) {
                let wire_total = u32::try_from(r.wire_bytes).unwrap_or(u32::MAX);
                match decode_transport(&p, r.payload) {
                    Ok(whole) => {
                        handle(
                            flows, reasm, handler, ended, stats, &whole, ts, wire_total, pkt.iface,
                        );
                    }
                    Err(e) => stats.decode_errors.add(e),
                }
            }
            return;
        }
        let flow_id = {
            let Pipeline {
                flows,
                reasm,
                handler,
                ended,
                stats,
                ..
            } = self;
            handle(flows, reasm, handler, ended, stats, &p, ts, wire, pkt.iface)
        };
        self.ring.push(
            ts,
            pkt.linktype,
            pkt.data,
            pkt.orig_len,
            pkt.iface,
            RingTag {
                flow_id,
                tuple,
                l3_offset: p.l3_offset,
            },
        );
    }

    #[inline]
    fn maybe_sweep(&mut self, ts: Timestamp) {
        match self.next_sweep {
            None => self.next_sweep = Some(Timestamp(ts.0.saturating_add(self.sweep_micros))),
            Some(t) if ts >= t => {
                self.sweep(ts);
                self.next_sweep = Some(Timestamp(ts.0.saturating_add(self.sweep_micros)));
            }
            Some(_) => {}
        }
    }

    fn sweep(&mut self, now: Timestamp) {
        self.flows.expire(now, &mut self.ended);
        self.defrag.expire(now);
        finish_ended(
            &mut self.reasm,
            &mut self.handler,
            &mut self.stats,
            &mut self.ended,
        );
    }

    /// Lets time pass without packets (live capture on a quiet link): expires idle flows as
    /// of `now` when a sweep is due. Use capture-clock time (e.g. `Timestamp::now()` live).
    pub fn advance_time(&mut self, now: Timestamp) {
        if now > self.stats.last_ts {
            self.maybe_sweep(now);
        }
    }

    /// Ends every flow now (a `flush_flows` command): like [`Pipeline::finish`], but capture goes
    /// on and new packets start new flows.
    pub fn flush_all(&mut self) {
        self.finish();
    }

    /// Ends the flows that are idle past their timeout as of the latest packet (or wall clock on
    /// a live link), without waiting for the next periodic sweep.
    pub fn expire_idle_now(&mut self) {
        let now = self.stats.last_ts.max(self.flows.now());
        self.sweep(now);
    }

    /// Ends every flow (reason `shutdown`), flushing reassembly; call at end of capture.
    pub fn finish(&mut self) {
        self.finish_with(|_| {});
    }

    /// [`Pipeline::finish`], calling `after` with the handler every [`FINISH_CHUNK`] flows so
    /// that it can hand on what those flows produced before the next ones end.
    pub fn finish_with(&mut self, mut after: impl FnMut(&mut H)) {
        let now = self.flows.now();
        self.flows.expire(now, &mut self.ended);
        let Pipeline {
            flows,
            reasm,
            handler,
            stats,
            ended,
            ..
        } = self;
        flows.drain_all_with(ended, FINISH_CHUNK, |chunk| {
            finish_ended(reasm, handler, stats, chunk);
            after(handler);
        });
    }
}

/// Flow lookup, handler callbacks and reassembly for one decoded (non-fragment) packet.
/// Returns the flow id.
#[allow(clippy::too_many_arguments)]
#[inline]
fn handle<H: AppHandler>(
    flows: &mut FlowTable<FlowSlot<H::State>>,
    reasm: &mut Reassembler,
    handler: &mut H,
    ended: &mut Vec<EndedFlow<FlowSlot<H::State>>>,
    stats: &mut PipelineStats,
    p: &DecodedPacket<'_>,
    ts: Timestamp,
    wire: u32,
    iface: u16,
) -> u64 {
    match p.proto {
        ipproto::TCP => stats.tcp += 1,
        ipproto::UDP => stats.udp += 1,
        _ => stats.other_ip += 1,
    }
    let FlowLookup { idx, dir, .. } = flows.update(p, ts, wire, iface, ended);
    if !ended.is_empty() {
        finish_ended(reasm, handler, stats, ended);
    }
    let Some((info, slot)) = flows.get_mut(idx) else {
        return 0;
    };
    // The handler parses hostile bytes: a panic in it costs this flow's dissection, never the
    // packet path. The flow is bypassed (its packets are still counted and kept in the ring).
    let dissected = catch_unwind(AssertUnwindSafe(|| {
        dissect(reasm, handler, info, slot, dir, p, ts)
    }));
    if let Err(panic) = dissected {
        contain_panic(stats, reasm, info, slot, &*panic);
    }
    info.flow_id
}

/// The handler's share of one packet: packet hook, then reassembled TCP data or the UDP payload.
#[inline]
fn dissect<H: AppHandler>(
    reasm: &mut Reassembler,
    handler: &mut H,
    info: &mut FlowInfo,
    slot: &mut FlowSlot<H::State>,
    dir: Direction,
    p: &DecodedPacket<'_>,
    ts: Timestamp,
) {
    handler.on_packet(info, &mut slot.app, dir, p, ts);
    let FlowSlot { app, tcp } = slot;
    if info.app_done {
        if !tcp.is_stopped() {
            reasm.stop(tcp);
        }
        return;
    }
    match (p.proto, p.tcp) {
        (ipproto::TCP, Some(h)) if !tcp.is_stopped() => {
            let seg = Segment {
                seq: h.seq,
                ack: h.ack,
                flags: h.flags,
                data: p.payload,
            };
            reasm.segment(tcp, dir, &seg, &mut |d, c| match c {
                Chunk::Data(b) => handler.on_tcp_data(info, app, d, b, ts),
                Chunk::Gap(n) => handler.on_tcp_gap(info, app, d, n, ts),
            });
            if info.app_done {
                reasm.stop(tcp);
            }
        }
        (ipproto::UDP, _) => handler.on_udp(info, app, dir, p.payload, ts),
        _ => {}
    }
}

/// After a handler panic: count and log it with the flow, bypass the flow (no more payload to
/// the handler, reassembly stopped and its buffers freed) and start its state afresh so that the
/// flow's end does not meet half-updated state.
fn contain_panic<S: Default>(
    stats: &mut PipelineStats,
    reasm: &mut Reassembler,
    info: &mut FlowInfo,
    slot: &mut FlowSlot<S>,
    panic: &(dyn std::any::Any + Send),
) {
    stats.handler_panics += 1;
    info.app_done = true;
    slot.app = S::default();
    reasm.stop(&mut slot.tcp);
    HandlerPanic {
        key: &info.key,
        flow_id: info.flow_id,
        panic,
    }
    .emit();
}

/// A dissector panicked on a flow's bytes (named event: one log line and one count).
struct HandlerPanic<'a> {
    key: &'a FlowKey,
    flow_id: u64,
    panic: &'a (dyn std::any::Any + Send),
}

impl HandlerPanic<'_> {
    fn emit(&self) {
        let msg = self
            .panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| self.panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        tracing::error!(
            flow_id = self.flow_id,
            src = %self.key.src_ip,
            src_port = self.key.src_port,
            dest = %self.key.dst_ip,
            dest_port = self.key.dst_port,
            proto = self.key.proto,
            panic = %msg,
            "dissector panicked; the flow is bypassed and the packet path goes on"
        );
        metrics::counter!("netmonitor_actor_panics_total", "actor" => "capture").increment(1);
    }
}

/// Flushes reassembly of ended flows and hands them to the handler.
fn finish_ended<H: AppHandler>(
    reasm: &mut Reassembler,
    handler: &mut H,
    stats: &mut PipelineStats,
    ended: &mut Vec<EndedFlow<FlowSlot<H::State>>>,
) {
    for e in ended.drain(..) {
        let EndedFlow {
            mut info,
            state: FlowSlot { mut app, mut tcp },
            reason,
        } = e;
        if tcp.is_stopped() || info.app_done {
            reasm.release(&mut tcp);
        } else {
            let ts = info.last_ts;
            let flushed = catch_unwind(AssertUnwindSafe(|| {
                reasm.finish(&mut tcp, &mut |d, c| match c {
                    Chunk::Data(b) => handler.on_tcp_data(&mut info, &mut app, d, b, ts),
                    Chunk::Gap(n) => handler.on_tcp_gap(&mut info, &mut app, d, n, ts),
                });
            }));
            if let Err(panic) = flushed {
                let mut slot = FlowSlot { app, tcp };
                contain_panic(stats, reasm, &mut info, &mut slot, &*panic);
                app = slot.app;
            }
        }
        let record = info.to_record(reason);
        let key = info.key;
        if let Err(panic) =
            catch_unwind(AssertUnwindSafe(|| handler.on_flow_end(&info, app, record)))
        {
            stats.handler_panics += 1;
            HandlerPanic {
                key: &key,
                flow_id: info.flow_id,
                panic: &*panic,
            }
            .emit();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::decode::tcp_flags::{ACK, PSH, SYN};
    use crate::source::PcapFileSource;
    use crate::synth::{self, build};
    use std::io;

    /// Records everything it is told.
    #[derive(Default)]
    struct Recorder {
        tcp: Vec<(u64, Direction, Vec<u8>)>,
        udp: Vec<(u64, Direction, Vec<u8>)>,
        ended: Vec<(FlowInfo, FlowRecord, usize)>,
        gaps: u64,
        stop_tcp_after: Option<usize>,
    }

    /// Bytes that make [`Recorder`] panic, as a dissector with a bug would on hostile input.
    const PANIC_MAGIC: &[u8] = b"\xde\xadPANIC";

    impl AppHandler for Recorder {
        type State = usize;

        fn on_tcp_data(
            &mut self,
            flow: &mut FlowInfo,
            state: &mut usize,
            dir: Direction,
            data: &[u8],
            _ts: Timestamp,
        ) -> bool {
            assert!(
                !data.starts_with(PANIC_MAGIC),
                "dissector bug on magic bytes"
            );
            *state += data.len();
            if data.first() == Some(&0x16) && flow.key.dst_port == 443 {
                flow.app_proto = Some("tls");
            }
            self.tcp.push((flow.flow_id, dir, data.to_vec()));
            self.stop_tcp_after.is_none_or(|n| *state < n)
        }

        fn on_tcp_gap(
            &mut self,
            _f: &mut FlowInfo,
            _s: &mut usize,
            _d: Direction,
            _len: u32,
            _ts: Timestamp,
        ) -> bool {
            self.gaps += 1;
            true
        }

        fn on_udp(
            &mut self,
            flow: &mut FlowInfo,
            state: &mut usize,
            dir: Direction,
            payload: &[u8],
            _ts: Timestamp,
        ) {
            assert!(
                !payload.starts_with(PANIC_MAGIC),
                "dissector bug on magic bytes"
            );
            *state += payload.len();
            if flow.key.dst_port == 88 {
                flow.app_proto = Some("krb5");
            }
            self.udp.push((flow.flow_id, dir, payload.to_vec()));
        }

        fn on_flow_end(&mut self, flow: &FlowInfo, state: usize, record: FlowRecord) {
            self.ended.push((*flow, record, state));
        }
    }

    fn raw(ts: i64, data: &[u8]) -> RawPacket<'_> {
        RawPacket {
            ts: Timestamp(ts),
            linktype: 1,
            data,
            orig_len: data.len() as u32,
            iface: 0,
        }
    }

    #[test]
    fn the_packet_filter_keeps_only_what_it_names() {
        let cfg = PipelineConfig {
            filter: PacketFilter {
                ports: vec![88, 443],
                exclude_ports: vec![22],
                hosts: vec!["10.0.0.2".parse().unwrap()],
            },
            ..PipelineConfig::default()
        };
        let mut pl = Pipeline::new(cfg, Recorder::default()).unwrap();
        let (c, s, other) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 9]);
        let frames = [
            build::eth_ipv4_udp(c, s, 5000, 88, b"kept: port 88 to the host"),
            build::eth_ipv4_udp(c, s, 5000, 53, b"dropped: port"),
            build::eth_ipv4_udp(c, other, 5000, 88, b"dropped: host"),
            build::eth_ipv4_tcp(c, s, 22, 443, 1, 0, SYN, b""),
        ];
        for (i, f) in frames.iter().enumerate() {
            pl.process(&raw(i as i64, f));
        }
        pl.finish();
        assert_eq!(pl.handler().udp.len(), 1);
        assert_eq!(pl.handler().udp[0].2, b"kept: port 88 to the host");
        assert_eq!(pl.snapshot().filtered, 3);
        assert_eq!(
            pl.ring().summary().packets,
            1,
            "filtered packets stay out of the ring"
        );
    }

    #[test]
    fn tcp_data_flows_to_handler_and_records_on_finish() {
        let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let frames = [
            build::eth_ipv4_tcp(c, s, 40000, 443, 100, 0, SYN, b""),
            build::eth_ipv4_tcp(s, c, 443, 40000, 900, 101, SYN | ACK, b""),
            build::eth_ipv4_tcp(c, s, 40000, 443, 101, 901, ACK, b""),
            build::eth_ipv4_tcp(c, s, 40000, 443, 104, 901, ACK | PSH, b"\x00\x2c\x00"), // early
            build::eth_ipv4_tcp(c, s, 40000, 443, 101, 901, ACK | PSH, b"\x16\x03\x01"),
            build::eth_ipv4_tcp(s, c, 443, 40000, 901, 107, ACK | PSH, b"\x16\x03\x03"),
        ];
        for (i, f) in frames.iter().enumerate() {
            pl.process(&raw(i as i64, f));
        }
        pl.finish();
        let h = pl.handler();
        let ts: Vec<u8> = h
            .tcp
            .iter()
            .filter(|t| t.1 == Direction::ToServer)
            .flat_map(|t| t.2.clone())
            .collect();
        assert_eq!(ts, b"\x16\x03\x01\x00\x2c\x00");
        assert_eq!(h.ended.len(), 1);
        let (info, rec, state) = &h.ended[0];
        assert_eq!(*state, 9);
        assert_eq!(rec.app_proto.as_deref(), Some("tls"));
        assert_eq!(rec.reason, "shutdown");
        assert_eq!(rec.state, "established");
        assert_eq!((rec.pkts_toserver, rec.pkts_toclient), (4, 2));
        assert_eq!(info.key.dst_port, 443);
        assert_eq!(pl.snapshot().flows.created, 1);
        assert_eq!(pl.ring().summary().packets, 6);
    }

    #[test]
    fn a_handler_panic_bypasses_its_flow_and_the_packet_path_goes_on() {
        let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut bad_udp = PANIC_MAGIC.to_vec();
        bad_udp.extend_from_slice(b" udp");
        let mut bad_tcp = PANIC_MAGIC.to_vec();
        bad_tcp.extend_from_slice(b" tcp");
        let frames = [
            build::eth_ipv4_udp(c, s, 5000, 53, b"before"),
            build::eth_ipv4_udp(c, s, 5001, 53, &bad_udp),
            build::eth_ipv4_udp(c, s, 5001, 53, b"same flow, after: bypassed"),
            build::eth_ipv4_udp(c, s, 5002, 53, b"another flow"),
            build::eth_ipv4_tcp(c, s, 40000, 80, 100, 0, SYN, b""),
            build::eth_ipv4_tcp(s, c, 80, 40000, 900, 101, SYN | ACK, b""),
            build::eth_ipv4_tcp(c, s, 40000, 80, 101, 901, ACK | PSH, &bad_tcp),
            build::eth_ipv4_tcp(c, s, 40000, 80, 111, 901, ACK | PSH, b"more, bypassed"),
            build::eth_ipv4_udp(c, s, 5003, 53, b"the path still runs"),
        ];
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            for (i, f) in frames.iter().enumerate() {
                pl.process(&raw(i as i64, f));
            }
            pl.finish();
        });
        let counted = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .any(|(k, _, _, v)| {
                k.key().name() == "netmonitor_actor_panics_total"
                    && k.key()
                        .labels()
                        .any(|l| l.key() == "actor" && l.value() == "capture")
                    && v == metrics_util::debugging::DebugValue::Counter(2)
            });
        assert!(counted, "each panic is counted for the capture actor");
        let h = pl.handler();
        let udp: Vec<&[u8]> = h.udp.iter().map(|u| u.2.as_slice()).collect();
        assert_eq!(
            udp,
            [&b"before"[..], b"another flow", b"the path still runs"]
        );
        assert!(
            h.tcp.is_empty(),
            "the TCP flow's data after the panic is bypassed"
        );
        assert_eq!(pl.stats().handler_panics, 2);
        // every flow still ends with a record, the bypassed ones with fresh state
        assert_eq!(h.ended.len(), 5);
        assert_eq!(pl.ring().summary().packets, frames.len() as u64);
    }

    #[test]
    fn handler_can_stop_a_flow() {
        let mut pl = Pipeline::new(
            PipelineConfig::default(),
            Recorder {
                stop_tcp_after: Some(3),
                ..Recorder::default()
            },
        )
        .unwrap();
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        pl.process(&raw(
            0,
            &build::eth_ipv4_tcp(c, s, 40000, 80, 1, 0, ACK, b"GET"),
        ));
        pl.process(&raw(
            1,
            &build::eth_ipv4_tcp(c, s, 40000, 80, 4, 0, ACK, b" /"),
        ));
        pl.process(&raw(
            2,
            &build::eth_ipv4_tcp(s, c, 80, 40000, 1, 6, ACK, b"HTTP"),
        ));
        assert_eq!(pl.handler().tcp.len(), 1);
        assert_eq!(pl.snapshot().reassembly.stopped_by_consumer, 1);
    }

    #[test]
    fn fragmented_udp_kerberos_is_reassembled() {
        let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
        let msg: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
        let udp = build::udp_header(50000, 88, &msg);
        let mut frags = build::ipv4_fragments([10, 0, 0, 1], [10, 0, 0, 2], 17, 77, &udp, 1480);
        frags.reverse();
        for (i, f) in frags.iter().enumerate() {
            let eth = build::ethernet(0x0800, f);
            pl.process(&raw(i as i64, &eth));
        }
        let h = pl.handler();
        assert_eq!(h.udp.len(), 1);
        assert_eq!(h.udp[0].2, msg);
        assert_eq!(pl.snapshot().defrag.reassembled, 1);
        assert_eq!(pl.stats().fragments, 3);
        pl.finish();
        assert_eq!(pl.handler().ended[0].1.app_proto.as_deref(), Some("krb5"));
    }

    #[test]
    fn idle_flows_expire_by_packet_time_in_batches() {
        let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
        let q = build::eth_ipv4_udp([10, 0, 0, 1], [10, 0, 0, 3], 5000, 53, b"q");
        pl.process(&raw(0, &q));
        // 29 s later: nothing expires; 31 s later: the DNS flow ends with reason timeout.
        let other = build::eth_ipv4_udp([10, 0, 0, 9], [10, 0, 0, 3], 5001, 53, b"x");
        pl.process(&raw(29_000_000, &other));
        assert!(pl.handler().ended.is_empty());
        pl.process(&raw(31_000_000, &other));
        assert_eq!(pl.handler().ended.len(), 1);
        assert_eq!(pl.handler().ended[0].1.reason, "timeout");
        // Quiet link: time passes without packets.
        pl.advance_time(Timestamp(70_000_000));
        assert_eq!(pl.handler().ended.len(), 2);
    }

    #[test]
    fn decode_errors_are_counted_and_packets_kept_in_ring() {
        let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
        let f = build::eth_ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, 0, 2, b"");
        pl.process(&raw(0, &f[..30]));
        pl.process(&raw(1, &[0u8; 3]));
        let s = pl.snapshot();
        assert_eq!(
            s.decode_errors
                .get(crate::decode::DecodeError::TruncatedIpv4),
            1
        );
        assert_eq!(
            s.decode_errors
                .get(crate::decode::DecodeError::TruncatedEthernet),
            1
        );
        assert_eq!(s.ring.packets, 2);
    }

    #[test]
    fn replay_is_deterministic() {
        let mut pcap = Vec::new();
        synth::write_mix(&mut pcap, &synth::TrafficMix::default()).unwrap();
        let run = || {
            let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
            let mut src = PcapFileSource::new(io::Cursor::new(&pcap)).unwrap();
            while let Some(p) = src.next_packet().unwrap() {
                pl.process(&p);
            }
            pl.finish();
            let h = pl.into_handler();
            (
                h.ended
                    .iter()
                    .map(|e| (e.0.flow_id, e.1.clone()))
                    .collect::<Vec<_>>(),
                h.tcp.len(),
                h.udp.len(),
            )
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.0.len() > 100);
        // Every TLS session named by the handler; every Kerberos exchange too.
        assert_eq!(
            a.0.iter()
                .filter(|e| e.1.app_proto.as_deref() == Some("tls"))
                .count(),
            20
        );
        assert_eq!(
            a.0.iter()
                .filter(|e| e.1.app_proto.as_deref() == Some("krb5"))
                .count(),
            20
        );
    }

    /// Every public capture goes through the pipeline without a panic. With `CI=true` the
    /// folders must exist.
    #[test]
    fn shared_captures_go_through_without_panic() {
        let files = crate::tests_support::shared_captures();
        if files.is_empty() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no captures found"
            );
            eprintln!("no shared captures; skipping");
            return;
        }
        let mut total_errors = 0u64;
        let mut total_packets = 0u64;
        for f in &files {
            let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
            let mut src = PcapFileSource::open(f).unwrap();
            while let Some(p) = src.next_packet().unwrap() {
                pl.process(&p);
            }
            pl.finish();
            let s = pl.snapshot();
            total_packets += s.packets;
            total_errors += s.malformed;
            assert_eq!(s.flows.active, 0);
            assert!(
                s.decoded + s.decode_errors_total == s.packets,
                "{}",
                f.display()
            );
            eprintln!(
                "{}: {} packets, {} flows, errors {:?}",
                f.display(),
                s.packets,
                s.flows.created,
                s.decode_errors
            );
        }
        assert!(total_packets > 1000);
        // The public captures are real traffic: malformed frames must be the exception.
        assert!(
            total_errors * 100 < total_packets,
            "{total_errors} malformed of {total_packets}"
        );
    }

    /// Once flows exist and the ring has wrapped, processing packets allocates nothing:
    /// TCP data (in and out of order), pure ACKs, UDP datagrams, decode errors and expiry
    /// sweeps included.
    #[test]
    fn steady_state_packet_path_does_not_allocate() {
        #[derive(Default)]
        struct Quiet(u64);
        impl AppHandler for Quiet {
            type State = u32;
            fn on_tcp_data(
                &mut self,
                _f: &mut FlowInfo,
                s: &mut u32,
                _d: Direction,
                data: &[u8],
                _t: Timestamp,
            ) -> bool {
                *s += data.len() as u32;
                self.0 += 1;
                *s < 100_000
            }
            fn on_udp(
                &mut self,
                _f: &mut FlowInfo,
                _s: &mut u32,
                _d: Direction,
                p: &[u8],
                _t: Timestamp,
            ) {
                self.0 += p.len() as u64;
            }
            fn on_flow_end(&mut self, _f: &FlowInfo, _s: u32, _r: FlowRecord) {}
        }
        let cfg = PipelineConfig {
            ring: RingConfig {
                max_bytes: 1 << 20,
                ..RingConfig::default()
            },
            ..PipelineConfig::default()
        };
        let mut pl = Pipeline::new(cfg, Quiet::default()).unwrap();
        let server = [10, 0, 0, 1];
        let clients: Vec<[u8; 4]> = (0..50u8).map(|i| [10, 1, 0, i + 1]).collect();
        let mut seqs = vec![1000u32; clients.len()];
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let port = 40_000 + i as u16;
            frames.push(build::eth_ipv4_tcp(*c, server, port, 443, 999, 0, SYN, b""));
            frames.push(build::eth_ipv4_tcp(
                server,
                *c,
                443,
                port,
                5000,
                1000,
                SYN | ACK,
                b"",
            ));
        }
        let warm = frames.len();
        let payload = vec![0xABu8; 1400];
        for n in 0..400usize {
            for (i, c) in clients.iter().enumerate() {
                let port = 40_000 + i as u16;
                let len = 100 + (n * 37 + i * 11) % 1300;
                let seq = seqs[i];
                // Every 7th segment arrives after its successor (reordered by one).
                frames.push(build::eth_ipv4_tcp(
                    *c,
                    server,
                    port,
                    443,
                    seq,
                    5001,
                    ACK | PSH,
                    &payload[..len],
                ));
                frames.push(build::eth_ipv4_tcp(
                    server,
                    *c,
                    443,
                    port,
                    5001,
                    seq + len as u32,
                    ACK,
                    b"",
                ));
                seqs[i] = seq.wrapping_add(len as u32);
                // Every 7th segment of a flow arrives before its predecessor.
                if n > 0 && (n + i) % 7 == 0 {
                    let k = frames.len();
                    frames.swap(k - 2, k - 2 - (2 * clients.len() + 2));
                }
            }
            frames.push(build::eth_ipv4_udp(
                [10, 2, 0, 1],
                [10, 0, 0, 53],
                5353,
                53,
                &payload[..60],
            ));
            frames.push(vec![0u8; 20]); // undecodable
        }
        let mut ts = 0i64;
        let mut feed = |pl: &mut Pipeline<Quiet>, f: &[u8]| {
            ts += 500; // 0.5 ms apart: the measured part spans several sweep intervals
            pl.process(&RawPacket {
                ts: Timestamp(ts),
                linktype: 1,
                data: f,
                orig_len: f.len() as u32,
                iface: 0,
            });
        };
        // Warm-up: handshakes and the first half of the data (tables, pools, ring wrap).
        let half = warm + (frames.len() - warm) / 2;
        for f in &frames[..half] {
            feed(&mut pl, f);
        }
        assert!(
            pl.ring().summary().overwritten > 0,
            "ring must have wrapped"
        );
        let before = crate::tests_support::allocations();
        for f in &frames[half..] {
            feed(&mut pl, f);
        }
        let allocs = crate::tests_support::allocations() - before;
        assert_eq!(
            allocs,
            0,
            "{allocs} allocations in {} packets",
            frames.len() - half
        );
        assert!(pl.handler().0 > 10_000);
        assert!(pl.snapshot().reassembly.out_of_order > 100);
    }

    /// Random corruption of real-looking traffic through the whole pipeline: no panic, counts
    /// stay consistent.
    #[test]
    fn fuzzed_frames_through_the_pipeline() {
        let mut pcap = Vec::new();
        synth::write_mix(
            &mut pcap,
            &synth::TrafficMix {
                bulk_packets_per_flow: 20,
                ..synth::TrafficMix::default()
            },
        )
        .unwrap();
        let mut frames = Vec::new();
        let mut src = PcapFileSource::new(io::Cursor::new(&pcap)).unwrap();
        while let Some(p) = src.next_packet().unwrap() {
            frames.push((p.ts, p.data.to_vec()));
        }
        let mut rng = synth::XorShift::new(99);
        let mut pl = Pipeline::new(PipelineConfig::default(), Recorder::default()).unwrap();
        let mut n = 0u64;
        for round in 0..6 {
            for (ts, f) in &frames {
                let mut f = f.clone();
                let flips = rng.range(0, 3 + round);
                for _ in 0..flips {
                    let at = rng.range(0, f.len() as u64 - 1) as usize;
                    f[at] = rng.next_u64() as u8;
                }
                if rng.range(0, 9) == 0 {
                    f.truncate(rng.range(0, f.len() as u64) as usize);
                }
                pl.process(&RawPacket {
                    ts: Timestamp(ts.0 + round as i64 * 1_000_000_000),
                    linktype: 1,
                    data: &f,
                    orig_len: f.len() as u32,
                    iface: 0,
                });
                n += 1;
            }
        }
        pl.finish();
        let s = pl.snapshot();
        assert_eq!(s.packets, n);
        assert_eq!(s.decoded + s.decode_errors_total, n);
        assert_eq!(s.flows.active, 0);
        assert!(s.decode_errors_total > 0);
    }

    /// CPU time of the calling thread (timings on a shared machine are meaningless in wall time).
    fn thread_cpu_secs() -> f64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid pointer to a timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    }

    #[test]
    #[ignore = "timing; run with cargo test --release -- --ignored --nocapture"]
    fn pipeline_throughput() {
        let mut pcap = Vec::new();
        let summary =
            synth::write_mix(&mut pcap, &synth::TrafficMix::benchmark(1_000_000)).unwrap();
        let mut frames: Vec<(Timestamp, Vec<u8>)> = Vec::new();
        let mut src = PcapFileSource::new(io::Cursor::new(&pcap)).unwrap();
        while let Some(p) = src.next_packet().unwrap() {
            frames.push((p.ts, p.data.to_vec()));
        }
        /// Looks at the first bytes of every stream like a dissector would, then stops.
        #[derive(Default)]
        struct Light(u64);
        impl AppHandler for Light {
            type State = u32;
            fn on_tcp_data(
                &mut self,
                f: &mut FlowInfo,
                s: &mut u32,
                _d: Direction,
                data: &[u8],
                _t: Timestamp,
            ) -> bool {
                *s += data.len() as u32;
                self.0 += u64::from(data.first().copied().unwrap_or(0));
                if data.first() == Some(&0x16) {
                    f.app_proto = Some("tls");
                    return *s < 16_384;
                }
                *s < 64
            }
            fn on_udp(
                &mut self,
                _f: &mut FlowInfo,
                _s: &mut u32,
                _d: Direction,
                p: &[u8],
                _t: Timestamp,
            ) {
                self.0 += p.len() as u64;
            }
            fn on_flow_end(&mut self, _f: &FlowInfo, _s: u32, r: FlowRecord) {
                self.0 += r.pkts_toserver;
            }
        }
        let run = |cfg: PipelineConfig, label: &str| {
            // Round 0 warms up (first touch of the ring arena, table growth); rounds 1-3 are
            // the steady state of a long-running sensor.
            let mut pl = Pipeline::new(cfg, Light::default()).unwrap();
            for round in 0..4 {
                let before = pl.stats().packets;
                let cpu0 = thread_cpu_secs();
                let t = std::time::Instant::now();
                for (ts, data) in &frames {
                    pl.process(&RawPacket {
                        ts: *ts,
                        linktype: 1,
                        data,
                        orig_len: data.len() as u32,
                        iface: 0,
                    });
                }
                pl.finish();
                let dt = t.elapsed().as_secs_f64();
                let cpu = thread_cpu_secs() - cpu0;
                let n = pl.stats().packets - before;
                assert_eq!(n, summary.packets);
                eprintln!(
                    "{label} round {round}: {n} packets ({} MB) in {dt:.3} s wall = {:.2} Mpps, {:.2} Gbit/s; \
                     {cpu:.3} s cpu = {:.2} Mpps per core, {:.0} ns/packet; flows {}",
                    summary.bytes / 1_000_000,
                    n as f64 / dt / 1e6,
                    summary.bytes as f64 * 8.0 / dt / 1e9,
                    n as f64 / cpu / 1e6,
                    cpu * 1e9 / n as f64,
                    pl.snapshot().flows.created
                );
            }
        };
        run(PipelineConfig::default(), "full");
        // Without the ring copy, to see its share.
        run(
            PipelineConfig {
                ring: RingConfig {
                    max_bytes: 0,
                    ..RingConfig::default()
                },
                ..PipelineConfig::default()
            },
            "no ring",
        );
    }
}
