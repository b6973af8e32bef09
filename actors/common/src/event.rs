//! Typed events produced by the dissectors and detectors and consumed by the actors,
//! the store and the EVE writer.

use crate::krb::KrbMessage;
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// IANA protocol numbers the sensor names in its output.
pub mod ipproto {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// UDP
    pub const UDP: u8 = 17;
    /// GRE
    pub const GRE: u8 = 47;
    /// ICMPv6
    pub const ICMPV6: u8 = 58;
    /// SCTP
    pub const SCTP: u8 = 132;
}

/// The protocol name Suricata prints in `proto`.
pub fn proto_name(proto: u8) -> String {
    match proto {
        ipproto::TCP => "TCP".into(),
        ipproto::UDP => "UDP".into(),
        ipproto::ICMP => "ICMP".into(),
        ipproto::ICMPV6 => "IPv6-ICMP".into(),
        ipproto::GRE => "GRE".into(),
        ipproto::SCTP => "SCTP".into(),
        other => other.to_string(),
    }
}

/// A flow's 5-tuple, oriented from the initiator (client) to the responder (server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    /// Client address.
    pub src_ip: IpAddr,
    /// Client port (0 for protocols without ports).
    pub src_port: u16,
    /// Server address.
    pub dst_ip: IpAddr,
    /// Server port.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// Which way a packet or a byte stream travels within a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Direction {
    /// The other way.
    pub fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// What every event carries: when, which flow, and the flow's endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventHeader {
    /// Capture time of the packet that completed the event.
    pub ts: Timestamp,
    /// Stable identifier of the flow within this sensor run (EVE `flow_id`).
    pub flow_id: u64,
    /// The flow's endpoints.
    pub key: FlowKey,
}

/// One event, as the EVE writer, the store and the actors see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When and where.
    pub header: EventHeader,
    /// What.
    pub kind: EventKind,
}

/// The kinds of event the sensor produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A flow's first packet: for the actors that judge endpoints as soon as they talk (threat
    /// feeds, scans). Internal: never written to EVE or the database.
    FlowStart(FlowStart),
    /// An ARP message on the capture segment: which MAC holds which address, for the device
    /// inventory. Internal, like `FlowStart`. The header's addresses are the sender's and the
    /// target's protocol addresses.
    Arp(ArpRecord),
    /// A host name learnt outside DNS (NetBIOS name service), for the device inventory.
    /// Internal, like `FlowStart`.
    HostName(HostName),
    /// A neighbour announcing itself on the link (LLDP, CDP), for the device inventory.
    /// Internal, like `FlowStart`.
    Neighbor(Neighbor),
    /// A flow ended (or was flushed).
    Flow(FlowRecord),
    /// A TLS handshake (over TCP, or a QUIC Initial when `quic_version` is set).
    Tls(TlsHandshake),
    /// One Kerberos message.
    Krb5(KrbMessage),
    /// One DNS query or response.
    Dns(DnsRecord),
    /// One DHCP message.
    Dhcp(DhcpRecord),
    /// One HTTP/1.x request and its response.
    Http(HttpRecord),
    /// A detection.
    Alert(Alert),
}

impl EventKind {
    /// Suricata's `event_type` for this kind (`quic` for TLS seen inside QUIC).
    pub fn event_type(&self) -> &'static str {
        match self {
            EventKind::FlowStart(_) => "flow_start",
            EventKind::Arp(_) => "arp",
            EventKind::HostName(_) => "host_name",
            EventKind::Neighbor(_) => "neighbor",
            EventKind::Flow(_) => "flow",
            EventKind::Tls(t) if t.quic_version.is_some() => "quic",
            EventKind::Tls(_) => "tls",
            EventKind::Krb5(_) => "krb5",
            EventKind::Dns(_) => "dns",
            EventKind::Dhcp(_) => "dhcp",
            EventKind::Http(_) => "http",
            EventKind::Alert(_) => "alert",
        }
    }

    /// Whether the event is for the actors only (not a record for EVE or the database).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            EventKind::FlowStart(_)
                | EventKind::Arp(_)
                | EventKind::HostName(_)
                | EventKind::Neighbor(_)
        )
    }
}

/// What an LLDP or CDP announcement says about its sender.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    /// `lldp` or `cdp`.
    pub protocol: String,
    /// The sender's MAC (the frame's source).
    pub mac: String,
    /// System name (LLDP) or device id (CDP).
    pub name: Option<String>,
    /// Management address.
    pub management_ip: Option<std::net::IpAddr>,
    /// Enabled capabilities (`router`, `bridge`, `wlan-ap`, `telephone`, `station`, ...).
    pub capabilities: Vec<String>,
    /// System description (LLDP) or software version (CDP).
    pub description: Option<String>,
    /// Hardware platform (CDP).
    pub platform: Option<String>,
}

/// A name a host goes by, and where it was learnt (`netbios`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostName {
    /// The name, lowercase.
    pub name: String,
    /// The address it names.
    pub ip: std::net::IpAddr,
    /// Where it was learnt.
    pub source: String,
}

/// One ARP request or reply (IPv4 over Ethernet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpRecord {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address, `aa:bb:…`.
    pub sender_mac: String,
    /// Target hardware address (zeros in a request).
    pub target_mac: String,
}

impl ArpRecord {
    /// Parses an ARP body (after the Ethernet type): the record and the sender's and target's
    /// IPv4 addresses. Only Ethernet/IPv4 ARP.
    pub fn parse(b: &[u8]) -> Option<(ArpRecord, std::net::Ipv4Addr, std::net::Ipv4Addr)> {
        let b = b.get(..28)?;
        if b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let mac = |m: &[u8]| {
            m.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let ip = |a: &[u8]| std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]);
        Some((
            ArpRecord {
                op: u16::from_be_bytes([b[6], b[7]]),
                sender_mac: mac(&b[8..14]),
                target_mac: mac(&b[18..24]),
            },
            ip(&b[14..18]),
            ip(&b[24..28]),
        ))
    }
}

/// A flow's first packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStart {
    /// TCP flags of the first packet (0 for other protocols).
    pub tcp_flags: u8,
    /// Interface the flow was seen on.
    pub iface: u16,
}

/// One HTTP/1.x transaction, with Suricata's field meanings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRecord {
    /// `Host` header (port removed), else the host of an absolute request URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port of the `Host` header when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    /// Request target as sent (`/path?q`, or an absolute URI through a proxy).
    pub url: String,
    /// Method.
    pub http_method: String,
    /// `HTTP/1.1`, `HTTP/1.0`.
    pub protocol: String,
    /// `User-Agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    /// `Referer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_refer: Option<String>,
    /// Response `Content-Type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
    /// Response status code (none when the flow ended before the response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response body length (`Content-Length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// The summary of one flow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Packets client to server.
    pub pkts_toserver: u64,
    /// Packets server to client.
    pub pkts_toclient: u64,
    /// Bytes (whole packets) client to server.
    pub bytes_toserver: u64,
    /// Bytes server to client.
    pub bytes_toclient: u64,
    /// First packet.
    pub start: Timestamp,
    /// Last packet.
    pub end: Timestamp,
    /// `new`, `established` or `closed` (Suricata's names).
    pub state: String,
    /// Why it was emitted: `timeout`, `forced` (evicted) or `shutdown` (end of capture).
    pub reason: String,
    /// Application protocol, when one was recognised (`tls`, `krb5`, `dns`, …).
    pub app_proto: Option<String>,
    /// Union of TCP flags seen (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP flags the client sent (the behaviour detectors tell a refused attempt from a
    /// session by them).
    #[serde(default)]
    pub tcp_flags_toserver: u8,
    /// TCP flags the server sent.
    #[serde(default)]
    pub tcp_flags_toclient: u8,
    /// Transport payload bytes client to server.
    #[serde(default)]
    pub payload_toserver: u64,
    /// Transport payload bytes server to client.
    #[serde(default)]
    pub payload_toclient: u64,
    /// Whether an alert was raised on this flow.
    pub alerted: bool,
}

/// A fingerprint as Suricata logs it: the canonical string and its MD5.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Lowercase hex MD5 of `string`.
    pub hash: String,
    /// The fingerprint string.
    pub string: String,
}

/// What the sensor learned from one TLS (or QUIC) handshake.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsHandshake {
    /// Server name from the ClientHello's SNI extension.
    pub sni: Option<String>,
    /// Suricata's version name (`TLS 1.2`, `TLS 1.3 draft-22`, `SSLv3`, …): negotiated, else offered.
    pub version: Option<String>,
    /// Legacy version field of the ClientHello.
    pub client_version: Option<u16>,
    /// Negotiated version (supported_versions of the ServerHello, else its legacy version).
    pub server_version: Option<u16>,
    /// JA3 of the first ClientHello.
    pub ja3: Option<Fingerprint>,
    /// JA3S of the ServerHello.
    pub ja3s: Option<Fingerprint>,
    /// JA4 (client) of the first ClientHello.
    pub ja4: Option<String>,
    /// ALPN values offered by the client.
    pub alpn_offered: Vec<String>,
    /// ALPN value chosen by the server.
    pub alpn_selected: Option<String>,
    /// Versions listed in the client's supported_versions extension (GREASE removed).
    pub supported_versions: Vec<u16>,
    /// Cipher suites offered (GREASE removed).
    pub cipher_suites: Vec<u16>,
    /// Cipher suite chosen by the server.
    pub cipher_selected: Option<u16>,
    /// Server certificate chain in clear (TLS ≤ 1.2), leaf first.
    pub certificates: Vec<Certificate>,
    /// QUIC version when the handshake came in a QUIC Initial.
    pub quic_version: Option<u32>,
}

/// The facts of one X.509 certificate that detections and EVE use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Subject DN, RDNs in certificate order, `SN=value` joined by `", "`.
    pub subject: String,
    /// Issuer DN, same format.
    pub issuer: String,
    /// DER INTEGER bytes of the serial, uppercase hex joined by `:`.
    pub serial: String,
    /// SHA-1 of the DER, lowercase hex joined by `:`.
    pub fingerprint: String,
    /// notBefore, seconds since the epoch (may be negative).
    pub not_before: i64,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// DNS names of the subjectAltName extension.
    pub sans: Vec<String>,
    /// Issuer equals subject.
    pub self_signed: bool,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// Public key algorithm (`RSA`, `EC`, `Ed25519`, `DSA`, …).
    pub key_type: Option<String>,
    /// Public key size in bits where known.
    pub key_bits: Option<u32>,
}

/// One DNS message (query or response).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// `query` or `answer`.
    pub kind: String,
    /// DNS transaction id.
    pub id: u16,
    /// First question name.
    pub rrname: String,
    /// First question type as a name (`A`, `AAAA`, `TXT`, …).
    pub rrtype: String,
    /// Response code name for answers (`NOERROR`, `NXDOMAIN`, …).
    pub rcode: Option<String>,
    /// Answer data rendered as text (addresses, names).
    pub answers: Vec<String>,
}

/// One DHCP message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DhcpRecord {
    /// `request` or `reply`.
    pub kind: String,
    /// Message type name (`discover`, `offer`, `request`, `ack`, …).
    pub dhcp_type: String,
    /// Transaction id.
    pub id: u32,
    /// Client hardware address, `aa:bb:…`.
    pub client_mac: String,
    /// Address assigned (yiaddr) when non-zero.
    pub assigned_ip: Option<String>,
    /// Host name option.
    pub hostname: Option<String>,
    /// Parameter request list (option 55) in the client's order: its DHCP fingerprint.
    #[serde(default)]
    pub params: Vec<u8>,
    /// Vendor class identifier (option 60), e.g. `MSFT 5.0`, `android-dhcp-13`.
    #[serde(default)]
    pub vendor_class: Option<String>,
    /// Address the client asks for (option 50).
    #[serde(default)]
    pub requested_ip: Option<String>,
    /// Client identifier (option 61), hex.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client FQDN (option 81), for the inventory (Suricata's DHCP log has no field for it).
    #[serde(default)]
    pub fqdn: Option<String>,
}

impl DhcpRecord {
    /// The fingerprint as Fingerbank and most inventories write it: option 55 codes joined by
    /// commas (`1,3,6,15,31,33,43,44,46,47,119,121,249,252`).
    pub fn fingerprint(&self) -> Option<String> {
        (!self.params.is_empty()).then(|| {
            self.params
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// Severity as Suricata numbers it: 1 is the most severe.
pub type Severity = u8;

/// A detection raised by a detector, with the evidence that triggered it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable numeric id of the detection.
    pub signature_id: u32,
    /// Human-readable name.
    pub signature: String,
    /// Suricata-style category (`Attempted Information Leak`, …).
    pub category: String,
    /// 1 (high) to 4 (informational).
    pub severity: Severity,
    /// Our machine-readable threat type (`kerberoasting`, `port_scan`, `malicious_ja3`, …).
    pub threat_type: String,
    /// MITRE ATT&CK technique ids (`T1558.003`).
    pub mitre: Vec<String>,
    /// Free-form evidence for analysts (counts, names, fingerprints).
    pub evidence: serde_json::Value,
}

#[cfg(test)]
mod arp_tests {
    use super::ArpRecord;

    #[test]
    fn parses_ethernet_ipv4_arp_and_refuses_the_rest() {
        let mut b = vec![0, 1, 8, 0, 6, 4, 0, 2];
        b.extend_from_slice(&[0x68, 0xec, 0xc5, 0xb4, 0x5a, 0x9b, 172, 16, 225, 48]);
        b.extend_from_slice(&[0x68, 0x3a, 0x1e, 0x20, 0x05, 0xcc, 172, 16, 224, 1]);
        let (r, s, t) = ArpRecord::parse(&b).unwrap();
        assert_eq!((r.op, r.sender_mac.as_str()), (2, "68:ec:c5:b4:5a:9b"));
        assert_eq!(r.target_mac, "68:3a:1e:20:05:cc");
        assert_eq!(
            (s.to_string(), t.to_string()),
            ("172.16.225.48".into(), "172.16.224.1".into())
        );
        for n in 0..b.len() {
            assert!(ArpRecord::parse(&b[..n]).is_none());
        }
        b[3] = 0x86; // not IPv4
        assert!(ArpRecord::parse(&b).is_none());
    }
}
