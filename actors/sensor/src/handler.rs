//! The application handler: classifies each flow, feeds its dissector and turns what comes out
//! into events. Detection runs in the actors that take these events off the bus; a flow's
//! record says `alerted` when the alert stage marked it.

use crate::http::{self, HttpFlow};
use crate::{dhcp, dns, nbns, SensorStats};
use netmonitor_capture::{AppHandler, DecodedPacket, FlowInfo};
use netmonitor_common::krb::{KrbMessage, KrbMsgType};
use netmonitor_common::{
    Direction, Event, EventHeader, EventKind, FlowRecord, FlowStart, HttpRecord, Timestamp,
    TlsHandshake,
};
use netmonitor_kerberos::{looks_like_krb_tcp, looks_like_krb_udp, KrbFlow};
use netmonitor_runtime::AlertedFlows;
use netmonitor_tls::{
    looks_like_quic_initial, looks_like_tls, looks_like_tunnel_request, QuicFlowParser,
    TlsFlowParser,
};

/// TCP chunks (or UDP datagrams) looked at before a flow is declared uninteresting.
const MAX_PROBES: u8 = 4;
/// The Kerberos port; content decides elsewhere, but a bare record mark needs the port.
const KERBEROS_PORT: u16 = 88;
const DNS_PORTS: [u16; 3] = [53, 5353, 5355];
const DHCP_PORTS: [u16; 2] = [67, 68];
/// NetBIOS name service.
const NBNS_PORT: u16 = 137;

/// Which dissector owns a flow.
#[derive(Default)]
pub enum FlowApp {
    /// Not classified yet; counts the payloads looked at.
    #[default]
    Unknown,
    /// TLS over TCP.
    Tls(Box<TlsFlowParser>),
    /// QUIC (UDP).
    Quic(Box<QuicFlowParser>),
    /// Kerberos over UDP or TCP.
    Krb(Box<KrbFlow>),
    /// DNS over UDP.
    Dns,
    /// DHCP.
    Dhcp,
    /// NetBIOS name service (names for the inventory only: no app_proto, no EVE).
    Nbns,
    /// HTTP/1.x.
    Http(Box<HttpFlow>),
    /// Nothing we dissect.
    Ignored,
}

/// Per-flow state the pipeline keeps for us.
#[derive(Default)]
pub struct FlowState {
    /// The owning dissector.
    pub app: FlowApp,
    /// Payloads seen while unclassified.
    probes: u8,
    /// The dissector found the capture's client/server guess backwards.
    pub swapped: bool,
}

/// The application layer: dissectors and the events they produced.
pub struct Dissectors {
    /// Events not yet taken by the sensor's consumer.
    pub events: Vec<Event>,
    /// Counters.
    pub stats: SensorStats,
    /// Flows the alert stage raised an alert on.
    alerted: std::sync::Arc<AlertedFlows>,
    krb_scratch: Vec<KrbMessage>,
    http_scratch: Vec<HttpRecord>,
}

impl Dissectors {
    /// An application layer whose flow records consult `alerted`.
    pub fn new(alerted: std::sync::Arc<AlertedFlows>) -> Self {
        Dissectors {
            events: Vec::new(),
            stats: SensorStats::default(),
            alerted,
            krb_scratch: Vec::new(),
            http_scratch: Vec::new(),
        }
    }

    fn push(&mut self, header: EventHeader, kind: EventKind) {
        if kind.is_internal() {
            self.stats.internal_events += 1;
        } else {
            *self.stats.events.entry(kind.event_type()).or_default() += 1;
        }
        self.events.push(Event { header, kind });
    }

    fn emit_tls(
        &mut self,
        flow: &FlowInfo,
        state: &mut FlowState,
        hs: TlsHandshake,
        ts: Timestamp,
    ) {
        let header = header(flow, state.swapped, ts);
        *self
            .stats
            .tls_versions
            .entry(hs.version.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        self.push(header, EventKind::Tls(hs));
    }

    fn emit_krb(
        &mut self,
        flow: &FlowInfo,
        state: &mut FlowState,
        dir: Direction,
        msg: KrbMessage,
        ts: Timestamp,
    ) {
        let is_request = matches!(
            msg.msg_type,
            KrbMsgType::AsReq | KrbMsgType::TgsReq | KrbMsgType::ApReq
        );
        // Requests travel client to server: if one comes the other way, the capture guessed wrong.
        if is_request == (dir == Direction::ToClient) {
            state.swapped = true;
        } else if is_request {
            state.swapped = false;
        }
        *self
            .stats
            .krb_messages
            .entry(msg.msg_type.name())
            .or_default() += 1;
        let header = header(flow, state.swapped, ts);
        self.push(header, EventKind::Krb5(msg));
    }

    fn emit_http(
        &mut self,
        flow: &FlowInfo,
        swapped: bool,
        out: &mut Vec<HttpRecord>,
        ts: Timestamp,
    ) {
        for rec in out.drain(..) {
            self.push(header(flow, swapped, ts), EventKind::Http(rec));
        }
    }

    fn poll_tls(&mut self, flow: &FlowInfo, state: &mut FlowState, ts: Timestamp) {
        loop {
            let (hs, swapped) = match &mut state.app {
                FlowApp::Tls(p) => (p.poll_event(), p.roles_swapped()),
                FlowApp::Quic(p) => (p.poll_event(), p.roles_swapped()),
                _ => return,
            };
            let Some(hs) = hs else { return };
            state.swapped = swapped;
            self.emit_tls(flow, state, hs, ts);
        }
    }

    fn classify_tcp(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut FlowState,
        dir: Direction,
        data: &[u8],
    ) {
        let k = &flow.key;
        let app = if k.dst_port == KERBEROS_PORT
            || k.src_port == KERBEROS_PORT
            || looks_like_krb_tcp(data)
        {
            FlowApp::Krb(Box::default())
        } else if looks_like_tls(data) || looks_like_tunnel_request(data) {
            FlowApp::Tls(Box::default())
        } else if http::looks_like_request(data) {
            // Requests travel client to server: the first one fixes the roles.
            state.swapped = dir == Direction::ToClient;
            FlowApp::Http(Box::default())
        } else {
            state.probes += 1;
            if state.probes >= MAX_PROBES {
                state.app = FlowApp::Ignored;
            }
            return;
        };
        self.set_app(flow, state, app);
    }

    fn classify_udp(&mut self, flow: &mut FlowInfo, state: &mut FlowState, payload: &[u8]) {
        let k = &flow.key;
        let on = |ports: &[u16]| ports.contains(&k.dst_port) || ports.contains(&k.src_port);
        let app = if on(&[KERBEROS_PORT]) && looks_like_krb_udp(payload) {
            FlowApp::Krb(Box::default())
        } else if on(&DNS_PORTS) {
            FlowApp::Dns
        } else if on(&DHCP_PORTS) {
            FlowApp::Dhcp
        } else if on(&[NBNS_PORT]) {
            // Not set_app: the flow keeps no app_proto, as Suricata logs it.
            state.app = FlowApp::Nbns;
            return;
        } else if looks_like_quic_initial(payload) {
            FlowApp::Quic(Box::default())
        } else if looks_like_krb_udp(payload) && netmonitor_kerberos::parse_message(payload).is_ok()
        {
            FlowApp::Krb(Box::default())
        } else {
            state.probes += 1;
            if state.probes >= MAX_PROBES {
                state.app = FlowApp::Ignored;
            }
            return;
        };
        self.set_app(flow, state, app);
    }

    fn set_app(&mut self, flow: &mut FlowInfo, state: &mut FlowState, app: FlowApp) {
        let name = match &app {
            FlowApp::Tls(_) => "tls",
            FlowApp::Quic(_) => "quic",
            FlowApp::Krb(_) => "krb5",
            FlowApp::Dns => "dns",
            FlowApp::Dhcp => "dhcp",
            FlowApp::Http(_) => "http",
            FlowApp::Nbns | FlowApp::Unknown | FlowApp::Ignored => return,
        };
        flow.app_proto = Some(name);
        *self.stats.app_protocols.entry(name).or_default() += 1;
        state.app = app;
    }

    fn malformed(&mut self, what: &'static str) {
        *self.stats.malformed.entry(what).or_default() += 1;
    }
}

fn header(flow: &FlowInfo, swapped: bool, ts: Timestamp) -> EventHeader {
    let mut key = flow.key;
    if swapped {
        std::mem::swap(&mut key.src_ip, &mut key.dst_ip);
        std::mem::swap(&mut key.src_port, &mut key.dst_port);
    }
    EventHeader {
        ts,
        flow_id: flow.flow_id,
        key,
    }
}

impl AppHandler for Dissectors {
    type State = FlowState;

    fn on_non_ip(&mut self, linktype: u32, frame: &[u8], ts: Timestamp) {
        let Some((kind, src_ip, dst_ip)) = crate::link::parse(linktype, frame) else {
            return;
        };
        let header = EventHeader {
            ts,
            flow_id: 0,
            key: netmonitor_common::FlowKey {
                src_ip,
                src_port: 0,
                dst_ip,
                dst_port: 0,
                proto: 0,
            },
        };
        self.push(header, kind);
    }

    fn on_tcp_data(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut FlowState,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
    ) -> bool {
        if matches!(state.app, FlowApp::Unknown) {
            self.classify_tcp(flow, state, dir, data);
        }
        match &mut state.app {
            FlowApp::Tls(p) => {
                p.feed(dir, data);
                let done = p.is_done();
                self.poll_tls(flow, state, ts);
                !done
            }
            FlowApp::Krb(k) => {
                let mut out = std::mem::take(&mut self.krb_scratch);
                k.on_tcp(dir, data, &mut out);
                let gave_up = k.gave_up();
                for msg in out.drain(..) {
                    self.emit_krb(flow, state, dir, msg, ts);
                }
                self.krb_scratch = out;
                if gave_up {
                    // not Kerberos after all (random bytes on port 88): stop looking
                    self.malformed("krb5");
                    state.app = FlowApp::Ignored;
                }
                !gave_up
            }
            FlowApp::Http(h) => {
                let dir = if state.swapped { dir.reverse() } else { dir };
                let mut out = std::mem::take(&mut self.http_scratch);
                h.feed(dir, data, &mut out);
                let done = h.is_done();
                self.emit_http(flow, state.swapped, &mut out, ts);
                self.http_scratch = out;
                !done
            }
            FlowApp::Unknown => true,
            _ => false,
        }
    }

    fn on_packet(
        &mut self,
        flow: &mut FlowInfo,
        _state: &mut FlowState,
        _dir: Direction,
        pkt: &DecodedPacket<'_>,
        ts: Timestamp,
    ) {
        if flow.pkts_toserver + flow.pkts_toclient == 1 {
            let start = FlowStart {
                tcp_flags: pkt.tcp.map_or(0, |t| t.flags),
                iface: flow.iface,
            };
            self.push(header(flow, false, ts), EventKind::FlowStart(start));
        }
    }

    fn on_tcp_gap(
        &mut self,
        _flow: &mut FlowInfo,
        state: &mut FlowState,
        dir: Direction,
        _len: u32,
        _ts: Timestamp,
    ) -> bool {
        match &mut state.app {
            FlowApp::Krb(k) => {
                k.on_tcp_gap(dir);
                true
            }
            // The TLS parser resynchronises on record headers after a hole.
            FlowApp::Tls(_) | FlowApp::Unknown => true,
            _ => false,
        }
    }

    fn on_udp(
        &mut self,
        flow: &mut FlowInfo,
        state: &mut FlowState,
        dir: Direction,
        payload: &[u8],
        ts: Timestamp,
    ) {
        if matches!(state.app, FlowApp::Unknown) {
            self.classify_udp(flow, state, payload);
        }
        match &mut state.app {
            FlowApp::Krb(k) => {
                if let Some(msg) = k.on_udp(dir, payload) {
                    self.emit_krb(flow, state, dir, msg, ts);
                }
            }
            FlowApp::Quic(q) => {
                q.feed_datagram(dir, payload);
                self.poll_tls(flow, state, ts);
            }
            FlowApp::Dns => match dns::parse(payload) {
                Some(records) => {
                    for rec in records {
                        let h = header(flow, false, ts);
                        self.push(h, EventKind::Dns(rec));
                    }
                }
                None => self.malformed("dns"),
            },
            FlowApp::Dhcp => match dhcp::parse(payload) {
                Some(rec) => {
                    let h = header(flow, false, ts);
                    self.push(h, EventKind::Dhcp(rec));
                }
                None => self.malformed("dhcp"),
            },
            FlowApp::Nbns => {
                for (name, ip) in nbns::host_names(payload) {
                    let rec = netmonitor_common::HostName {
                        name,
                        ip: ip.into(),
                        source: "netbios".into(),
                    };
                    self.push(header(flow, false, ts), EventKind::HostName(rec));
                }
            }
            FlowApp::Tls(_) | FlowApp::Http(_) | FlowApp::Unknown | FlowApp::Ignored => {}
        }
    }

    fn on_flow_end(&mut self, flow: &FlowInfo, mut state: FlowState, mut record: FlowRecord) {
        let end = record.end;
        let pending = match &mut state.app {
            FlowApp::Tls(p) => p.finish().map(|hs| (hs, p.roles_swapped())),
            FlowApp::Quic(p) => p.finish().map(|hs| (hs, p.roles_swapped())),
            _ => None,
        };
        if let Some((hs, swapped)) = pending {
            state.swapped = swapped;
            self.emit_tls(flow, &mut state, hs, end);
        }
        if let FlowApp::Http(h) = &mut state.app {
            let mut out = std::mem::take(&mut self.http_scratch);
            h.finish(&mut out);
            self.emit_http(flow, state.swapped, &mut out, end);
            self.http_scratch = out;
        }
        record.alerted |= self.alerted.take(flow.flow_id);
        self.push(header(flow, false, end), EventKind::Flow(record));
    }
}
