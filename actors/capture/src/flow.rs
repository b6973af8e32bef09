//! The bidirectional flow table: which conversation a packet belongs to, who is the client,
//! per-direction counters, TCP state, timeouts and eviction.
//!
//! Both directions of a 5-tuple (plus VLAN, when configured) map to one entry. The client is
//! the sender of the SYN (or the receiver of a SYN-ACK); without a handshake it is the first
//! packet's sender, unless that packet goes from a well-known port (< 1024) to an ephemeral
//! one (>= 1024), which looks like a reply.
//!
//! Time is the packets' capture time, never the wall clock, so a replay gives the same flows
//! as live capture. Idle flows expire in batches ([`FlowTable::expire`], called by the pipeline
//! once per sweep interval of packet time), using one LRU list per timeout class so a sweep
//! costs only the flows it removes. When the table is full the least recently seen flow is
//! evicted (reason `forced`). Each entry carries a generic state slot `S` for the layers above.

use crate::decode::{tcp_flags, DecodedPacket};
use crate::hash::{FxBuildHasher, FxHasher};
use netmonitor_common::{ipproto, Direction, FlowKey, FlowRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

/// Microseconds per second (timestamps are microseconds).
const MICROS: i64 = 1_000_000;
/// Slots pre-reserved in the hash map, so a typical sensor does not rehash while warming up.
const INITIAL_CAPACITY: usize = 16_384;
const NIL: u32 = u32::MAX;

/// Flow-table settings: bounds and timeouts (seconds of packet time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Most flows tracked at once; beyond it the least recently seen flow is evicted.
    pub max_flows: usize,
    /// Idle timeout of a TCP flow whose handshake has not completed.
    pub tcp_new_timeout_secs: u32,
    /// Idle timeout of an established TCP flow.
    pub tcp_established_timeout_secs: u32,
    /// How long a closed (FIN both ways / RST) TCP flow lingers for stray packets.
    pub tcp_closed_timeout_secs: u32,
    /// Idle timeout of UDP flows.
    pub udp_timeout_secs: u32,
    /// Idle timeout of other protocols (ICMP, GRE, ESP...).
    pub other_timeout_secs: u32,
    /// A flow older than this is ended and a new one started (0 disables).
    pub active_timeout_secs: u32,
    /// Packet-time interval between expiry sweeps, in milliseconds.
    pub sweep_interval_ms: u32,
    /// Keep flows on different VLANs apart (as Suricata does by default).
    pub vlan_in_key: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 20,
            tcp_new_timeout_secs: 30,
            tcp_established_timeout_secs: 120,
            tcp_closed_timeout_secs: 5,
            udp_timeout_secs: 30,
            other_timeout_secs: 30,
            active_timeout_secs: 3600,
            sweep_interval_ms: 1000,
            vlan_in_key: true,
        }
    }
}

impl FlowConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.max_flows == 0 || self.max_flows > u32::MAX as usize - 1 {
            return Err(crate::ConfigError::new(
                "flow.max_flows",
                "must be between 1 and 2^32-2",
            ));
        }
        for (name, v) in [
            ("flow.tcp_new_timeout_secs", self.tcp_new_timeout_secs),
            (
                "flow.tcp_established_timeout_secs",
                self.tcp_established_timeout_secs,
            ),
            ("flow.udp_timeout_secs", self.udp_timeout_secs),
            ("flow.other_timeout_secs", self.other_timeout_secs),
        ] {
            if v == 0 {
                return Err(crate::ConfigError::new(name, "must be at least 1 second"));
            }
        }
        if self.sweep_interval_ms == 0 {
            return Err(crate::ConfigError::new(
                "flow.sweep_interval_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A flow's state, in Suricata's vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowState {
    /// Handshake not complete / only one direction seen.
    #[default]
    New,
    /// Handshake complete, or traffic seen both ways.
    Established,
    /// TCP FIN in both directions, or RST.
    Closed,
}

impl FlowState {
    /// `new`, `established` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// No packet for the class's idle timeout.
    IdleTimeout,
    /// Older than the active timeout.
    ActiveTimeout,
    /// A new TCP SYN arrived on a closed flow (port reuse).
    Reused,
    /// Evicted because the table was full.
    Evicted,
    /// End of capture / shutdown flush.
    Shutdown,
}

impl EndReason {
    /// The EVE `flow.reason` value (`timeout`, `forced`, `shutdown`).
    pub fn record_reason(self) -> &'static str {
        match self {
            EndReason::IdleTimeout | EndReason::ActiveTimeout | EndReason::Reused => "timeout",
            EndReason::Evicted => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// Detailed name for metrics.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::Reused => "reused",
            EndReason::Evicted => "evicted",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// What the layers above see of a flow; the handler may set `app_proto`, `app_done` and
/// `alerted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    /// Unique within this run; EVE `flow_id`.
    pub flow_id: u64,
    /// Endpoints, client to server.
    pub key: FlowKey,
    /// VLAN id used in the flow key (0 when untagged or VLANs are not part of the key).
    pub vlan: u16,
    /// Interface (capture source) of the first packet.
    pub iface: u16,
    /// Time of the first packet.
    pub first_ts: Timestamp,
    /// Time of the latest packet.
    pub last_ts: Timestamp,
    /// Packets client to server.
    pub pkts_toserver: u64,
    /// Packets server to client.
    pub pkts_toclient: u64,
    /// Wire bytes client to server.
    pub bytes_toserver: u64,
    /// Wire bytes server to client.
    pub bytes_toclient: u64,
    /// Union of TCP flags sent by the client.
    pub tcp_flags_toserver: u8,
    /// Union of TCP flags sent by the server.
    pub tcp_flags_toclient: u8,
    /// Transport payload bytes client to server (no headers, no retransmission check).
    pub payload_toserver: u64,
    /// Transport payload bytes server to client.
    pub payload_toclient: u64,
    /// Flow state.
    pub state: FlowState,
    /// Application protocol recognised by the handler (`tls`, `krb5`, `dns`, ...).
    pub app_proto: Option<&'static str>,
    /// Set by the handler when it wants no more payload callbacks for this flow.
    pub app_done: bool,
    /// Set by the handler when it raised an alert on this flow.
    pub alerted: bool,
}

impl FlowInfo {
    fn blank() -> Self {
        FlowInfo {
            flow_id: 0,
            key: FlowKey {
                src_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                src_port: 0,
                dst_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dst_port: 0,
                proto: 0,
            },
            vlan: 0,
            iface: 0,
            first_ts: Timestamp(0),
            last_ts: Timestamp(0),
            pkts_toserver: 0,
            pkts_toclient: 0,
            bytes_toserver: 0,
            bytes_toclient: 0,
            tcp_flags_toserver: 0,
            tcp_flags_toclient: 0,
            payload_toserver: 0,
            payload_toclient: 0,
            state: FlowState::New,
            app_proto: None,
            app_done: false,
            alerted: false,
        }
    }

    /// Union of TCP flags of both directions.
    pub fn tcp_flags(&self) -> u8 {
        self.tcp_flags_toserver | self.tcp_flags_toclient
    }

    /// The flow summary for EVE and the store.
    pub fn to_record(&self, reason: EndReason) -> FlowRecord {
        FlowRecord {
            pkts_toserver: self.pkts_toserver,
            pkts_toclient: self.pkts_toclient,
            bytes_toserver: self.bytes_toserver,
            bytes_toclient: self.bytes_toclient,
            start: self.first_ts,
            end: self.last_ts,
            state: self.state.as_str().to_string(),
            reason: reason.record_reason().to_string(),
            app_proto: self.app_proto.map(str::to_string),
            tcp_flags: self.tcp_flags(),
            tcp_flags_toserver: self.tcp_flags_toserver,
            tcp_flags_toclient: self.tcp_flags_toclient,
            payload_toserver: self.payload_toserver,
            payload_toclient: self.payload_toclient,
            alerted: self.alerted,
        }
    }
}

/// A flow removed from the table, with its state slot.
#[derive(Debug)]
pub struct EndedFlow<S> {
    /// Its final counters.
    pub info: FlowInfo,
    /// The layers' state.
    pub state: S,
    /// Why it ended.
    pub reason: EndReason,
}

/// Index of a live flow in the table; valid until the flow ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowIdx(u32);

/// Result of [`FlowTable::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowLookup {
    /// The flow the packet belongs to.
    pub idx: FlowIdx,
    /// Which way the packet travels.
    pub dir: Direction,
    /// The packet created the flow.
    pub created: bool,
}

/// Counters of the flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    /// Flows currently tracked.
    pub active: u64,
    /// Flows created since start.
    pub created: u64,
    /// Flows ended by idle timeout.
    pub idle_timeouts: u64,
    /// Flows ended by active timeout.
    pub active_timeouts: u64,
    /// Flows ended by TCP port reuse.
    pub reused: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Flows flushed at shutdown.
    pub shutdown: u64,
}

/// Hash key: the 5-tuple in a canonical order so both directions meet. Addresses are kept
/// as IPv6 (IPv4-mapped for IPv4) split in 64-bit words; ports, protocol, family and VLAN are
/// packed in one word, so hashing is five multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TableKey {
    lo_hi: u64,
    lo_lo: u64,
    hi_hi: u64,
    hi_lo: u64,
    /// lo_port | hi_port << 16 | proto << 32 | v6 << 40 | vlan << 48
    meta: u64,
}

impl Hash for TableKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.lo_hi);
        h.write_u64(self.lo_lo);
        h.write_u64(self.hi_hi);
        h.write_u64(self.hi_lo);
        h.write_u64(self.meta);
    }
}

#[inline]
fn ip_u128(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)) | 0xFFFF_u128 << 32, false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

#[cfg(test)]
fn u128_ip(v: u128, v6: bool) -> IpAddr {
    let a = std::net::Ipv6Addr::from(v);
    if v6 {
        IpAddr::V6(a)
    } else {
        a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)
    }
}

impl TableKey {
    /// Canonical key and whether the packet's source is the `lo` endpoint.
    #[inline]
    fn of(p: &DecodedPacket<'_>, vlan: u16) -> (TableKey, bool) {
        let (s, v6) = ip_u128(p.src_ip);
        let (d, _) = ip_u128(p.dst_ip);
        let src_lo = (s, p.src_port) <= (d, p.dst_port);
        let (lo, lo_port, hi, hi_port) = if src_lo {
            (s, p.src_port, d, p.dst_port)
        } else {
            (d, p.dst_port, s, p.src_port)
        };
        (
            TableKey {
                lo_hi: (lo >> 64) as u64,
                lo_lo: lo as u64,
                hi_hi: (hi >> 64) as u64,
                hi_lo: hi as u64,
                meta: u64::from(lo_port)
                    | u64::from(hi_port) << 16
                    | u64::from(p.proto) << 32
                    | u64::from(v6) << 40
                    | u64::from(vlan) << 48,
            },
            src_lo,
        )
    }

    #[inline]
    fn vlan(&self) -> u16 {
        (self.meta >> 48) as u16
    }
}

// Timeout classes, each with its own LRU list.
const CLASS_TCP_NEW: u8 = 0;
const CLASS_TCP_EST: u8 = 1;
const CLASS_TCP_CLOSED: u8 = 2;
const CLASS_UDP: u8 = 3;
const CLASS_OTHER: u8 = 4;
const CLASSES: usize = 5;

// TCP handshake bits kept per flow.
const SEEN_SYN: u8 = 1;
const SEEN_SYNACK: u8 = 2;
const FIN_TS: u8 = 4;
const FIN_TC: u8 = 8;
const SEEN_TS: u8 = 16;
const SEEN_TC: u8 = 32;

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

struct Slot<S> {
    key: TableKey,
    info: FlowInfo,
    state: S,
    client_is_lo: bool,
    seen: u8,
    live: bool,
    order: u64,
}

/// LRU links, kept apart from the (large) slots so that moving a flow to the back of its
/// list touches a small, cache-friendly array instead of three slots.
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    class: u8,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    class: CLASS_OTHER,
};

/// The flow table; `S` is the per-flow state of the layers above (see module docs).
pub struct FlowTable<S> {
    cfg: FlowConfig,
    map: HashMap<TableKey, u32, FxBuildHasher>,
    slots: Vec<Slot<S>>,
    links: Vec<Link>,
    free: Vec<u32>,
    lists: [List; CLASSES],
    counter: u64,
    now: Timestamp,
    stats: FlowStats,
}

/// Whether the packet's sender is the client, for a packet that creates a flow.
fn sender_is_client(p: &DecodedPacket<'_>) -> bool {
    if let Some(t) = p.tcp {
        if t.flags & tcp_flags::SYN != 0 {
            return t.flags & tcp_flags::ACK == 0;
        }
    }
    if let Some((ty, _)) = p.icmp {
        match (p.proto, ty) {
            // Echo reply / timestamp reply / ICMPv6 echo reply come from the server.
            (ipproto::ICMP, 0 | 14) | (ipproto::ICMPV6, 129) => return false,
            _ => {}
        }
    }
    !(p.src_port < 1024 && p.dst_port >= 1024)
}

fn class_of(proto: u8, state: FlowState) -> u8 {
    match (proto, state) {
        (ipproto::TCP, FlowState::New) => CLASS_TCP_NEW,
        (ipproto::TCP, FlowState::Established) => CLASS_TCP_EST,
        (ipproto::TCP, FlowState::Closed) => CLASS_TCP_CLOSED,
        (ipproto::UDP, _) => CLASS_UDP,
        _ => CLASS_OTHER,
    }
}

impl<S: Default> FlowTable<S> {
    /// An empty table (call [`FlowConfig::validate`] first).
    pub fn new(cfg: FlowConfig) -> Self {
        let cap = cfg.max_flows.min(INITIAL_CAPACITY);
        FlowTable {
            map: HashMap::with_capacity_and_hasher(cap, FxBuildHasher::default()),
            slots: Vec::with_capacity(cap),
            links: Vec::with_capacity(cap),
            free: Vec::new(),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; CLASSES],
            counter: 0,
            now: Timestamp(0),
            stats: FlowStats::default(),
            cfg,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            active: self.map.len() as u64,
            ..self.stats
        }
    }

    /// Number of live flows.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Latest packet time seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    fn timeout_micros(&self, class: u8) -> i64 {
        let secs = match class {
            CLASS_TCP_NEW => self.cfg.tcp_new_timeout_secs,
            CLASS_TCP_EST => self.cfg.tcp_established_timeout_secs,
            CLASS_TCP_CLOSED => self.cfg.tcp_closed_timeout_secs,
            CLASS_UDP => self.cfg.udp_timeout_secs,
            _ => self.cfg.other_timeout_secs,
        };
        i64::from(secs) * MICROS
    }

    fn unlink(&mut self, i: u32) {
        let Link { prev, next, class } = self.links[i as usize];
        let class = usize::from(class);
        if prev == NIL {
            self.lists[class].head = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[class].tail = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        self.links[i as usize] = UNLINKED;
    }

    fn push_back(&mut self, i: u32, class: u8) {
        let c = usize::from(class);
        let tail = self.lists[c].tail;
        self.links[i as usize] = Link {
            prev: tail,
            next: NIL,
            class,
        };
        if tail == NIL {
            self.lists[c].head = i;
        } else {
            self.links[tail as usize].next = i;
        }
        self.lists[c].tail = i;
    }

    fn remove(&mut self, i: u32, reason: EndReason, out: &mut Vec<EndedFlow<S>>) {
        self.unlink(i);
        let s = &mut self.slots[i as usize];
        s.live = false;
        self.map.remove(&s.key);
        out.push(EndedFlow {
            info: s.info,
            state: std::mem::take(&mut s.state),
            reason,
        });
        self.free.push(i);
        match reason {
            EndReason::IdleTimeout => self.stats.idle_timeouts += 1,
            EndReason::ActiveTimeout => self.stats.active_timeouts += 1,
            EndReason::Reused => self.stats.reused += 1,
            EndReason::Evicted => self.stats.evicted += 1,
            EndReason::Shutdown => self.stats.shutdown += 1,
        }
    }

    fn evict_oldest(&mut self, out: &mut Vec<EndedFlow<S>>) {
        let mut best: Option<(Timestamp, u32)> = None;
        for l in &self.lists {
            if l.head != NIL {
                let ts = self.slots[l.head as usize].info.last_ts;
                match best {
                    Some((b, _)) if b <= ts => {}
                    _ => best = Some((ts, l.head)),
                }
            }
        }
        if let Some((_, i)) = best {
            self.remove(i, EndReason::Evicted, out);
        }
    }

    fn create(
        &mut self,
        key: TableKey,
        src_is_lo: bool,
        p: &DecodedPacket<'_>,
        ts: Timestamp,
        iface: u16,
        out: &mut Vec<EndedFlow<S>>,
    ) -> u32 {
        if self.map.len() >= self.cfg.max_flows {
            self.evict_oldest(out);
        }
        let client_is_src = sender_is_client(p);
        let client_is_lo = client_is_src == src_is_lo;
        let (cip, cport, sip, sport) = if client_is_src {
            (p.src_ip, p.src_port, p.dst_ip, p.dst_port)
        } else {
            (p.dst_ip, p.dst_port, p.src_ip, p.src_port)
        };
        self.counter += 1;
        let key_hash = {
            let mut h = FxHasher::default();
            key.hash(&mut h);
            h.finish()
        };
        // Unique per run: the counter in the low 32 bits, hash bits above; stays below 2^52
        // so JSON consumers using doubles keep it exact.
        let flow_id = ((key_hash & 0xF_FFFF) << 32) | (self.counter & 0xFFFF_FFFF);
        let mut info = FlowInfo::blank();
        info.flow_id = flow_id;
        info.key = FlowKey {
            src_ip: cip,
            src_port: cport,
            dst_ip: sip,
            dst_port: sport,
            proto: p.proto,
        };
        info.vlan = key.vlan();
        info.iface = iface;
        info.first_ts = ts;
        info.last_ts = ts;
        let slot = Slot {
            key,
            info,
            state: S::default(),
            client_is_lo,
            seen: 0,
            live: true,
            order: self.counter,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.links.push(UNLINKED);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        self.push_back(i, class_of(p.proto, FlowState::New));
        self.stats.created += 1;
        i
    }

    /// Finds or creates the packet's flow, updates counters and TCP state, and moves it to the
    /// back of its LRU list. Flows ended as a side effect (eviction, port reuse, active
    /// timeout) are appended to `ended`.
    pub fn update(
        &mut self,
        p: &DecodedPacket<'_>,
        ts: Timestamp,
        wire_len: u32,
        iface: u16,
        ended: &mut Vec<EndedFlow<S>>,
    ) -> FlowLookup {
        if ts > self.now {
            self.now = ts;
        }
        let vlan = if self.cfg.vlan_in_key {
            p.vlan().unwrap_or(0)
        } else {
            0
        };
        let (key, src_is_lo) = TableKey::of(p, vlan);
        let flags = p.tcp_flags();
        let (i, created) = match self.map.get(&key) {
            Some(&i) => {
                let s = &self.slots[i as usize];
                let reuse = p.proto == ipproto::TCP
                    && flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
                    && s.info.state == FlowState::Closed;
                let too_old = self.cfg.active_timeout_secs > 0
                    && ts.0.saturating_sub(s.info.first_ts.0)
                        >= i64::from(self.cfg.active_timeout_secs) * MICROS;
                if reuse || too_old {
                    let why = if reuse {
                        EndReason::Reused
                    } else {
                        EndReason::ActiveTimeout
                    };
                    self.remove(i, why, ended);
                    (self.create(key, src_is_lo, p, ts, iface, ended), true)
                } else {
                    (i, false)
                }
            }
            None => (self.create(key, src_is_lo, p, ts, iface, ended), true),
        };
        let s = &mut self.slots[i as usize];
        let to_server = src_is_lo == s.client_is_lo;
        let info = &mut s.info;
        if ts > info.last_ts {
            info.last_ts = ts;
        }
        let wire = u64::from(wire_len);
        let payload = p.payload.len() as u64;
        if to_server {
            info.pkts_toserver += 1;
            info.bytes_toserver += wire;
            info.payload_toserver += payload;
            info.tcp_flags_toserver |= flags;
            s.seen |= SEEN_TS;
        } else {
            info.pkts_toclient += 1;
            info.bytes_toclient += wire;
            info.payload_toclient += payload;
            info.tcp_flags_toclient |= flags;
            s.seen |= SEEN_TC;
        }
        let old_state = info.state;
        if p.proto == ipproto::TCP {
            if flags & tcp_flags::SYN != 0 {
                if flags & tcp_flags::ACK == 0 {
                    s.seen |= SEEN_SYN;
                } else if !to_server {
                    s.seen |= SEEN_SYNACK;
                }
            }
            if flags & tcp_flags::FIN != 0 {
                s.seen |= if to_server { FIN_TS } else { FIN_TC };
            }
            if flags & tcp_flags::RST != 0 || s.seen & (FIN_TS | FIN_TC) == FIN_TS | FIN_TC {
                info.state = FlowState::Closed;
            } else if info.state == FlowState::New {
                let handshake_done = s.seen & SEEN_SYNACK != 0
                    && to_server
                    && flags & tcp_flags::ACK != 0
                    && flags & tcp_flags::SYN == 0;
                // Picked up mid-stream: no SYN seen at all, but both sides talk.
                let midstream = s.seen & (SEEN_SYN | SEEN_SYNACK) == 0
                    && s.seen & (SEEN_TS | SEEN_TC) == SEEN_TS | SEEN_TC;
                // Missed the SYN-ACK but the client ACKs and the server answers.
                let both_after_syn = s.seen & (SEEN_TS | SEEN_TC) == SEEN_TS | SEEN_TC
                    && flags & tcp_flags::ACK != 0
                    && flags & tcp_flags::SYN == 0;
                if handshake_done || midstream || both_after_syn {
                    info.state = FlowState::Established;
                }
            }
        } else if info.state == FlowState::New && s.seen & (SEEN_TS | SEEN_TC) == SEEN_TS | SEEN_TC
        {
            info.state = FlowState::Established;
        }
        let new_class = if info.state == old_state {
            self.links[i as usize].class
        } else {
            class_of(p.proto, info.state)
        };
        let dir = if to_server {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        // LRU touch.
        let is_tail = self.lists[usize::from(new_class)].tail == i;
        if !is_tail {
            self.unlink(i);
            self.push_back(i, new_class);
        }
        FlowLookup {
            idx: FlowIdx(i),
            dir,
            created,
        }
    }

    /// The info and state of a live flow.
    pub fn get_mut(&mut self, idx: FlowIdx) -> Option<(&mut FlowInfo, &mut S)> {
        match self.slots.get_mut(idx.0 as usize) {
            Some(s) if s.live => Some((&mut s.info, &mut s.state)),
            _ => None,
        }
    }

    /// The info of a live flow.
    pub fn info(&self, idx: FlowIdx) -> Option<&FlowInfo> {
        match self.slots.get(idx.0 as usize) {
            Some(s) if s.live => Some(&s.info),
            _ => None,
        }
    }

    /// Ends every flow idle past its class timeout at packet time `now`; returns how many.
    pub fn expire(&mut self, now: Timestamp, ended: &mut Vec<EndedFlow<S>>) -> usize {
        if now > self.now {
            self.now = now;
        }
        let mut n = 0;
        for class in 0..CLASSES as u8 {
            let timeout = self.timeout_micros(class);
            loop {
                let h = self.lists[usize::from(class)].head;
                if h == NIL {
                    break;
                }
                let last = self.slots[h as usize].info.last_ts;
                if now.0.saturating_sub(last.0) >= timeout {
                    self.remove(h, EndReason::IdleTimeout, ended);
                    n += 1;
                } else {
                    break;
                }
            }
        }
        n
    }

    /// Ends every flow (end of capture), in creation order.
    pub fn drain_all(&mut self, ended: &mut Vec<EndedFlow<S>>) {
        self.drain_all_with(ended, usize::MAX, |_| {});
    }

    /// Ends every flow in creation order, handing them to `flush` every `chunk` flows, so that
    /// ending a large table never holds every ended flow (and its state) in memory at once.
    pub fn drain_all_with(
        &mut self,
        ended: &mut Vec<EndedFlow<S>>,
        chunk: usize,
        mut flush: impl FnMut(&mut Vec<EndedFlow<S>>),
    ) {
        let mut live: Vec<(u64, u32)> = self
            .map
            .values()
            .map(|&i| (self.slots[i as usize].order, i))
            .collect();
        live.sort_unstable();
        for (_, i) in live {
            self.remove(i, EndReason::Shutdown, ended);
            if ended.len() >= chunk {
                flush(ended);
            }
        }
        flush(ended);
    }

    /// Visits every live flow (for status queries).
    pub fn for_each(&self, mut f: impl FnMut(&FlowInfo, &S)) {
        for s in &self.slots {
            if s.live {
                f(&s.info, &s.state);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::decode::{decode, linktype};
    use crate::synth::build;

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    fn tcp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, flags: u8) -> Vec<u8> {
        build::eth_ipv4_tcp(src, dst, sp, dp, 1, 1, flags, b"")
    }

    fn feed<S: Default>(
        t: &mut FlowTable<S>,
        f: &[u8],
        secs: i64,
        ended: &mut Vec<EndedFlow<S>>,
    ) -> FlowLookup {
        let p = decode(linktype::ETHERNET, f).unwrap();
        t.update(&p, Timestamp(secs * MICROS), f.len() as u32, 0, ended)
    }

    #[test]
    fn syn_sender_is_client_and_directions_are_counted() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        // Server answers first in capture order? No: SYN first.
        let l1 = feed(
            &mut t,
            &tcp(A, B, 50000, 443, tcp_flags::SYN),
            1,
            &mut ended,
        );
        let l2 = feed(
            &mut t,
            &tcp(B, A, 443, 50000, tcp_flags::SYN | tcp_flags::ACK),
            1,
            &mut ended,
        );
        let l3 = feed(
            &mut t,
            &tcp(A, B, 50000, 443, tcp_flags::ACK),
            1,
            &mut ended,
        );
        assert!(l1.created && !l2.created && !l3.created);
        assert_eq!(l1.idx, l2.idx);
        assert_eq!(
            (l1.dir, l2.dir, l3.dir),
            (
                Direction::ToServer,
                Direction::ToClient,
                Direction::ToServer
            )
        );
        let info = *t.info(l1.idx).unwrap();
        assert_eq!(info.key.dst_port, 443);
        assert_eq!(info.key.src_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((info.pkts_toserver, info.pkts_toclient), (2, 1));
        assert_eq!(info.state, FlowState::Established);
        assert_eq!(info.tcp_flags(), tcp_flags::SYN | tcp_flags::ACK);
    }

    #[test]
    fn syn_ack_first_makes_its_sender_the_server() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let l = feed(
            &mut t,
            &tcp(B, A, 8443, 50000, tcp_flags::SYN | tcp_flags::ACK),
            1,
            &mut ended,
        );
        assert_eq!(l.dir, Direction::ToClient);
        assert_eq!(t.info(l.idx).unwrap().key.dst_port, 8443);
    }

    #[test]
    fn without_syn_port_heuristic_orients() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        // First packet from a well-known port to an ephemeral one: a reply, so swapped.
        let l = feed(
            &mut t,
            &tcp(B, A, 443, 50000, tcp_flags::ACK),
            1,
            &mut ended,
        );
        assert_eq!(l.dir, Direction::ToClient);
        assert_eq!(t.info(l.idx).unwrap().key.src_port, 50000);
        // Both ephemeral: first sender is the client.
        let l = feed(
            &mut t,
            &tcp(B, A, 8443, 50001, tcp_flags::ACK),
            1,
            &mut ended,
        );
        assert_eq!(l.dir, Direction::ToServer);
        assert_eq!(t.info(l.idx).unwrap().key.src_port, 8443);
        // UDP DNS reply first.
        let f = build::eth_ipv4_udp(B, A, 53, 40000, b"r");
        let l = feed(&mut t, &f, 1, &mut ended);
        assert_eq!(l.dir, Direction::ToClient);
        assert_eq!(t.info(l.idx).unwrap().key.dst_port, 53);
        // Both well-known (Kerberos 88 -> 88... or NTP 123 -> 123): first sender is the client.
        let f = build::eth_ipv4_udp(B, A, 123, 123, b"n");
        assert_eq!(feed(&mut t, &f, 1, &mut ended).dir, Direction::ToServer);
        // Mid-stream both ways makes it established.
        let l = feed(
            &mut t,
            &tcp(A, B, 50000, 443, tcp_flags::ACK),
            1,
            &mut ended,
        );
        assert_eq!(t.info(l.idx).unwrap().state, FlowState::Established);
    }

    #[test]
    fn idle_timeouts_per_class_and_batches() {
        let cfg = FlowConfig::default();
        let mut t: FlowTable<u32> = FlowTable::new(cfg.clone());
        let mut ended = Vec::new();
        // Established TCP at t=0.
        for f in [
            tcp(A, B, 50000, 443, tcp_flags::SYN),
            tcp(B, A, 443, 50000, tcp_flags::SYN | tcp_flags::ACK),
            tcp(A, B, 50000, 443, tcp_flags::ACK),
        ] {
            feed(&mut t, &f, 0, &mut ended);
        }
        // New TCP (SYN only) and UDP at t=0.
        feed(&mut t, &tcp(A, B, 50001, 22, tcp_flags::SYN), 0, &mut ended);
        let u = feed(
            &mut t,
            &build::eth_ipv4_udp(A, B, 40000, 53, b"q"),
            0,
            &mut ended,
        );
        *t.get_mut(u.idx).unwrap().1 = 7;
        assert_eq!(t.len(), 3);
        assert_eq!(t.expire(Timestamp(29 * MICROS), &mut ended), 0);
        assert_eq!(t.expire(Timestamp(30 * MICROS), &mut ended), 2);
        assert_eq!(t.len(), 1);
        let udp = ended.iter().find(|e| e.info.key.proto == 17).unwrap();
        assert_eq!(udp.state, 7, "state slot travels with the ended flow");
        assert_eq!(udp.reason, EndReason::IdleTimeout);
        assert_eq!(udp.info.to_record(udp.reason).reason, "timeout");
        ended.clear();
        assert_eq!(t.expire(Timestamp(119 * MICROS), &mut ended), 0);
        assert_eq!(t.expire(Timestamp(120 * MICROS), &mut ended), 1);
        assert_eq!(ended[0].info.state, FlowState::Established);
        assert!(t.is_empty());
        assert_eq!(t.stats().idle_timeouts, 3);
    }

    #[test]
    fn closed_flows_time_out_fast_and_syn_reuses() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let l = feed(&mut t, &tcp(A, B, 50000, 80, tcp_flags::SYN), 0, &mut ended);
        feed(
            &mut t,
            &tcp(B, A, 80, 50000, tcp_flags::RST | tcp_flags::ACK),
            0,
            &mut ended,
        );
        assert_eq!(t.info(l.idx).unwrap().state, FlowState::Closed);
        let first_id = t.info(l.idx).unwrap().flow_id;
        // Port reuse: a new SYN starts a new flow.
        let l2 = feed(&mut t, &tcp(A, B, 50000, 80, tcp_flags::SYN), 1, &mut ended);
        assert!(l2.created);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, EndReason::Reused);
        assert_ne!(t.info(l2.idx).unwrap().flow_id, first_id);
        // FIN both ways closes; closed timeout 5 s.
        feed(
            &mut t,
            &tcp(B, A, 80, 50000, tcp_flags::SYN | tcp_flags::ACK),
            1,
            &mut ended,
        );
        feed(
            &mut t,
            &tcp(A, B, 50000, 80, tcp_flags::FIN | tcp_flags::ACK),
            2,
            &mut ended,
        );
        feed(
            &mut t,
            &tcp(B, A, 80, 50000, tcp_flags::FIN | tcp_flags::ACK),
            2,
            &mut ended,
        );
        assert_eq!(t.info(l2.idx).unwrap().state, FlowState::Closed);
        ended.clear();
        assert_eq!(t.expire(Timestamp(7 * MICROS), &mut ended), 1);
        assert_eq!(ended[0].info.state.as_str(), "closed");
    }

    #[test]
    fn full_table_evicts_least_recent_and_counts() {
        let cfg = FlowConfig {
            max_flows: 2,
            ..FlowConfig::default()
        };
        let mut t: FlowTable<()> = FlowTable::new(cfg);
        let mut ended = Vec::new();
        feed(
            &mut t,
            &build::eth_ipv4_udp(A, B, 1001, 53, b""),
            1,
            &mut ended,
        );
        feed(
            &mut t,
            &build::eth_ipv4_udp(A, B, 1002, 53, b""),
            2,
            &mut ended,
        );
        feed(
            &mut t,
            &build::eth_ipv4_udp(A, B, 1001, 53, b""),
            3,
            &mut ended,
        ); // touch 1001
        feed(
            &mut t,
            &build::eth_ipv4_udp(A, B, 1003, 53, b""),
            4,
            &mut ended,
        );
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, EndReason::Evicted);
        assert_eq!(ended[0].info.key.src_port, 1002);
        assert_eq!(ended[0].info.to_record(EndReason::Evicted).reason, "forced");
        assert_eq!(t.stats().evicted, 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn active_timeout_restarts_long_flows() {
        let cfg = FlowConfig {
            active_timeout_secs: 60,
            ..FlowConfig::default()
        };
        let mut t: FlowTable<()> = FlowTable::new(cfg);
        let mut ended = Vec::new();
        for s in (0..=60).step_by(10) {
            feed(
                &mut t,
                &build::eth_ipv4_udp(A, B, 1001, 53, b""),
                s,
                &mut ended,
            );
        }
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].reason, EndReason::ActiveTimeout);
        assert_eq!(ended[0].info.pkts_toserver, 6);
    }

    #[test]
    fn vlans_separate_flows_when_configured() {
        let f = build::eth_ipv4_udp(A, B, 1001, 53, b"");
        let f10 = build::add_vlans(&f, &[(0x8100, 10)]);
        let f20 = build::add_vlans(&f, &[(0x8100, 20)]);
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        feed(&mut t, &f10, 0, &mut ended);
        feed(&mut t, &f20, 0, &mut ended);
        assert_eq!(t.len(), 2);
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig {
            vlan_in_key: false,
            ..FlowConfig::default()
        });
        feed(&mut t, &f10, 0, &mut ended);
        feed(&mut t, &f20, 0, &mut ended);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn drain_all_is_in_creation_order_and_ids_unique() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        for port in [5000u16, 4000, 6000, 1000] {
            feed(
                &mut t,
                &build::eth_ipv4_udp(A, B, port, 53, b""),
                0,
                &mut ended,
            );
        }
        t.drain_all(&mut ended);
        let ports: Vec<u16> = ended.iter().map(|e| e.info.key.src_port).collect();
        assert_eq!(ports, vec![5000, 4000, 6000, 1000]);
        let mut ids: Vec<u64> = ended.iter().map(|e| e.info.flow_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        assert!(ids.iter().all(|&i| i < (1u64 << 52) && i > 0));
        assert!(ended.iter().all(|e| e.reason == EndReason::Shutdown));
    }

    #[test]
    fn ipv6_keys_round_trip() {
        let (b, v6) = ip_u128("2001:db8::1".parse().unwrap());
        assert_eq!(u128_ip(b, v6), "2001:db8::1".parse::<IpAddr>().unwrap());
        let (b, v6) = ip_u128("192.0.2.1".parse().unwrap());
        assert!(!v6);
        assert_eq!(u128_ip(b, v6), "192.0.2.1".parse::<IpAddr>().unwrap());
        // ::ffff:192.0.2.1 as a real IPv6 address stays distinct from IPv4 192.0.2.1 in keys.
        let (c, v6c) = ip_u128("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(c, b);
        assert!(v6c);
    }
}
