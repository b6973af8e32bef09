//! Link-layer to transport decoding of one captured frame, without allocation or copying.
//!
//! [`decode`] walks a frame from its link type down to the innermost transport header and
//! returns a [`DecodedPacket`] that borrows the frame. Tunnels (GRE incl. ERSPAN II/III, VXLAN,
//! Geneve, IP-in-IP, 6in4/4in6, MPLS, PPPoE) are peeled so the result names the *inner* flow.
//! Checksums are never verified (a sensor must see what the hosts see, and offloaded
//! captures carry garbage checksums). An IPv4 total length of 0 (TCP segmentation offload)
//! means "the captured length". IP fragments are returned as such (see
//! [`DecodedPacket::fragment`]); [`crate::defrag`] reassembles them and
//! [`decode_transport`] decodes the result.
//!
//! Malformed input is reported as a [`DecodeError`] with a stable name for counting; nothing
//! here panics on any input.
#![deny(clippy::indexing_slicing)]

use netmonitor_common::ipproto;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Link types (pcap `LINKTYPE_*` values) the decoder understands.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II / 802.3.
    pub const ETHERNET: u32 = 1;
    /// PPP (RFC 1661), optional HDLC address/control.
    pub const PPP: u32 = 9;
    /// Raw IP as `DLT_RAW` on most BSDs (seen in old files).
    pub const RAW_BSD: u32 = 12;
    /// Raw IP as `DLT_RAW` on OpenBSD (seen in old files).
    pub const RAW_OPENBSD: u32 = 14;
    /// PPP in HDLC-like framing.
    pub const PPP_HDLC: u32 = 50;
    /// Raw IPv4 or IPv6, no link header.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux "cooked" capture v1 (`any` interface).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4 only.
    pub const IPV4: u32 = 228;
    /// Raw IPv6 only.
    pub const IPV6: u32 = 229;
    /// Linux "cooked" capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// Ethertypes the decoder follows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP (not decoded further, counted as non-IP).
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ outer).
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ outer tag.
    pub const QINQ_OLD: u16 = 0x9100;
    /// Pre-standard QinQ outer tag (some Cisco gear).
    pub const QINQ_OLD2: u16 = 0x9200;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
    /// PPPoE session stage.
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Transparent Ethernet Bridging (GRE payload is an Ethernet frame; also Geneve).
    pub const TEB: u16 = 0x6558;
    /// ERSPAN type I/II (GRE protocol).
    pub const ERSPAN_II: u16 = 0x88BE;
    /// ERSPAN type III (GRE protocol).
    pub const ERSPAN_III: u16 = 0x22EB;
    /// PPP (GRE protocol, PPTP).
    pub const PPP: u16 = 0x880B;
}

/// TCP flag bits as they appear in byte 13 of the TCP header.
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// UDP port of VXLAN (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
/// UDP port of VXLAN-GPE.
pub const VXLAN_GPE_PORT: u16 = 4790;
/// UDP port of Geneve (RFC 8926).
pub const GENEVE_PORT: u16 = 6081;
/// Deepest tunnel nesting followed before giving up (bounds work on crafted packets).
pub const MAX_TUNNEL_DEPTH: u8 = 8;
/// Most VLAN tags accepted in one Ethernet header.
pub const MAX_VLAN_TAGS: usize = 4;
/// VLAN ids kept in a [`DecodedPacket`] (outermost first).
pub const VLANS_KEPT: usize = 3;
/// Most IPv6 extension headers followed.
pub const MAX_IPV6_EXT_HEADERS: usize = 16;
/// Most MPLS labels followed.
pub const MAX_MPLS_LABELS: usize = 16;
/// Most GRE source route entries followed (RFC 1701 routing).
pub const MAX_GRE_SRE: usize = 16;

/// Why a frame could not be decoded down to an IP packet. Each has a stable name for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DecodeError {
    /// The capture's link type is not one we decode.
    UnsupportedLinktype,
    /// Frame shorter than an Ethernet header.
    TruncatedEthernet,
    /// VLAN tag cut off.
    TruncatedVlan,
    /// More stacked VLAN tags than [`MAX_VLAN_TAGS`].
    TooManyVlanTags,
    /// Linux cooked header (SLL/SLL2) cut off.
    TruncatedSll,
    /// BSD loopback header cut off.
    TruncatedNull,
    /// BSD loopback address family is neither IPv4 nor IPv6.
    UnknownNullFamily,
    /// PPP header cut off.
    TruncatedPpp,
    /// PPPoE header cut off.
    TruncatedPppoe,
    /// MPLS label stack cut off or too deep.
    TruncatedMpls,
    /// MPLS payload of unknown type.
    UnsupportedMplsPayload,
    /// A well-formed frame that carries no IP (ARP, LLC, LLDP, PPP control, ...).
    NonIp,
    /// IP version nibble is neither 4 nor 6 where IP was expected.
    BadIpVersion,
    /// IPv4 header cut off.
    TruncatedIpv4,
    /// IPv4 IHL below 5.
    BadIpv4HeaderLength,
    /// IPv4 total length shorter than its header.
    BadIpv4TotalLength,
    /// IPv6 fixed header cut off.
    TruncatedIpv6,
    /// IPv6 extension header cut off.
    TruncatedIpv6ExtHeader,
    /// More than [`MAX_IPV6_EXT_HEADERS`] extension headers.
    TooManyIpv6ExtHeaders,
    /// TCP header cut off.
    TruncatedTcpHeader,
    /// TCP data offset below 5.
    BadTcpHeaderLength,
    /// UDP header cut off.
    TruncatedUdpHeader,
    /// ICMP header cut off.
    TruncatedIcmpHeader,
    /// GRE header cut off.
    TruncatedGre,
    /// GRE version other than 0 or 1 (or a malformed PPTP header).
    UnsupportedGreVersion,
    /// GRE carries a protocol we do not follow.
    UnsupportedGreProtocol,
    /// ERSPAN header cut off.
    TruncatedErspan,
    /// ERSPAN version or frame type not understood.
    BadErspan,
    /// More nested tunnels than [`MAX_TUNNEL_DEPTH`].
    TooManyTunnels,
}

impl DecodeError {
    /// Number of variants (size of counter arrays).
    pub const COUNT: usize = 29;

    /// Every variant, in discriminant order.
    pub const ALL: [DecodeError; Self::COUNT] = [
        DecodeError::UnsupportedLinktype,
        DecodeError::TruncatedEthernet,
        DecodeError::TruncatedVlan,
        DecodeError::TooManyVlanTags,
        DecodeError::TruncatedSll,
        DecodeError::TruncatedNull,
        DecodeError::UnknownNullFamily,
        DecodeError::TruncatedPpp,
        DecodeError::TruncatedPppoe,
        DecodeError::TruncatedMpls,
        DecodeError::UnsupportedMplsPayload,
        DecodeError::NonIp,
        DecodeError::BadIpVersion,
        DecodeError::TruncatedIpv4,
        DecodeError::BadIpv4HeaderLength,
        DecodeError::BadIpv4TotalLength,
        DecodeError::TruncatedIpv6,
        DecodeError::TruncatedIpv6ExtHeader,
        DecodeError::TooManyIpv6ExtHeaders,
        DecodeError::TruncatedTcpHeader,
        DecodeError::BadTcpHeaderLength,
        DecodeError::TruncatedUdpHeader,
        DecodeError::TruncatedIcmpHeader,
        DecodeError::TruncatedGre,
        DecodeError::UnsupportedGreVersion,
        DecodeError::UnsupportedGreProtocol,
        DecodeError::TruncatedErspan,
        DecodeError::BadErspan,
        DecodeError::TooManyTunnels,
    ];

    /// Stable snake_case name, used as the metric label.
    pub fn name(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinktype => "unsupported_linktype",
            DecodeError::TruncatedEthernet => "truncated_ethernet",
            DecodeError::TruncatedVlan => "truncated_vlan",
            DecodeError::TooManyVlanTags => "too_many_vlan_tags",
            DecodeError::TruncatedSll => "truncated_sll",
            DecodeError::TruncatedNull => "truncated_null",
            DecodeError::UnknownNullFamily => "unknown_null_family",
            DecodeError::TruncatedPpp => "truncated_ppp",
            DecodeError::TruncatedPppoe => "truncated_pppoe",
            DecodeError::TruncatedMpls => "truncated_mpls",
            DecodeError::UnsupportedMplsPayload => "unsupported_mpls_payload",
            DecodeError::NonIp => "non_ip",
            DecodeError::BadIpVersion => "bad_ip_version",
            DecodeError::TruncatedIpv4 => "truncated_ipv4",
            DecodeError::BadIpv4HeaderLength => "bad_ipv4_header_length",
            DecodeError::BadIpv4TotalLength => "bad_ipv4_total_length",
            DecodeError::TruncatedIpv6 => "truncated_ipv6",
            DecodeError::TruncatedIpv6ExtHeader => "truncated_ipv6_ext_header",
            DecodeError::TooManyIpv6ExtHeaders => "too_many_ipv6_ext_headers",
            DecodeError::TruncatedTcpHeader => "truncated_tcp_header",
            DecodeError::BadTcpHeaderLength => "bad_tcp_header_length",
            DecodeError::TruncatedUdpHeader => "truncated_udp_header",
            DecodeError::TruncatedIcmpHeader => "truncated_icmp_header",
            DecodeError::TruncatedGre => "truncated_gre",
            DecodeError::UnsupportedGreVersion => "unsupported_gre_version",
            DecodeError::UnsupportedGreProtocol => "unsupported_gre_protocol",
            DecodeError::TruncatedErspan => "truncated_erspan",
            DecodeError::BadErspan => "bad_erspan",
            DecodeError::TooManyTunnels => "too_many_tunnels",
        }
    }

    /// False for frames that are well formed but simply not IP or not followed
    /// (unsupported link type, non-IP ethertype, unknown GRE/MPLS payload).
    pub fn is_malformed(self) -> bool {
        !matches!(
            self,
            DecodeError::UnsupportedLinktype
                | DecodeError::NonIp
                | DecodeError::UnsupportedGreProtocol
                | DecodeError::UnsupportedMplsPayload
        )
    }

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DecodeError {}

/// The TCP header fields the flow table and reassembly need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHeader {
    /// Flag byte (see [`tcp_flags`]).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Receive window (unscaled).
    pub window: u16,
}

/// Where an IP fragment sits in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Byte offset of this fragment's data in the datagram payload.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// A decoded frame, borrowing the captured bytes. Addresses, ports and payload are those of
/// the innermost IP packet after tunnels are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedPacket<'a> {
    /// Source address.
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Source port (0 for protocols without ports).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// TCP header, when `proto` is TCP and not a fragment.
    pub tcp: Option<TcpHeader>,
    /// ICMP / ICMPv6 (type, code).
    pub icmp: Option<(u8, u8)>,
    /// Transport payload (TCP/UDP data, ICMP body after the 8-byte header, or the IP payload
    /// for other protocols and for fragments).
    pub payload: &'a [u8],
    /// Payload length the headers claim; larger than `payload.len()` when the capture cut the
    /// packet short (snap length).
    pub wire_payload_len: u32,
    /// VLAN ids of the innermost Ethernet header, outermost first.
    pub vlans: [u16; VLANS_KEPT],
    /// How many entries of `vlans` are valid.
    pub vlan_count: u8,
    /// Number of tunnel layers removed (0 for plain traffic).
    pub tunnel_depth: u8,
    /// Set when this packet is an IP fragment: then `payload` is the fragment data, ports are 0
    /// and `tcp` is `None`; reassemble it with [`crate::defrag::Defragmenter`].
    pub fragment: Option<FragmentInfo>,
    /// Offset of the outermost IP header in the frame (for raw-IP export), if any IP was seen.
    pub l3_offset: Option<u16>,
}

impl<'a> DecodedPacket<'a> {
    fn empty() -> Self {
        DecodedPacket {
            src_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            proto: 0,
            ttl: 0,
            tcp: None,
            icmp: None,
            payload: &[],
            wire_payload_len: 0,
            vlans: [0; VLANS_KEPT],
            vlan_count: 0,
            tunnel_depth: 0,
            fragment: None,
            l3_offset: None,
        }
    }

    /// Outermost VLAN id of the innermost Ethernet header, if tagged.
    pub fn vlan(&self) -> Option<u16> {
        if self.vlan_count > 0 {
            Some(self.vlans[0])
        } else {
            None
        }
    }

    /// TCP flags, 0 when not TCP.
    pub fn tcp_flags(&self) -> u8 {
        self.tcp.map_or(0, |t| t.flags)
    }

    /// A copy with a different payload lifetime and everything above L3 cleared; used to
    /// decode a reassembled datagram with the addresses of its fragments.
    fn rebase<'b>(&self) -> DecodedPacket<'b> {
        DecodedPacket {
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            src_port: 0,
            dst_port: 0,
            proto: self.proto,
            ttl: self.ttl,
            tcp: None,
            icmp: None,
            payload: &[],
            wire_payload_len: 0,
            vlans: self.vlans,
            vlan_count: self.vlan_count,
            tunnel_depth: self.tunnel_depth,
            fragment: None,
            l3_offset: self.l3_offset,
        }
    }
}

type R = Result<(), DecodeError>;

#[inline]
fn be16(d: &[u8], off: usize) -> Option<u16> {
    match d.get(off..off.checked_add(2)?)? {
        &[a, b] => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

#[inline]
fn be32(d: &[u8], off: usize) -> Option<u32> {
    match d.get(off..off.checked_add(4)?)? {
        &[a, b, c, e] => Some(u32::from_be_bytes([a, b, c, e])),
        _ => None,
    }
}

#[inline]
fn byte(d: &[u8], off: usize) -> Option<u8> {
    d.get(off).copied()
}

#[inline]
fn tail(d: &[u8], off: usize) -> &[u8] {
    d.get(off..).unwrap_or(&[])
}

/// Decodes one captured frame of the given pcap link type.
pub fn decode(linktype: u32, frame: &[u8]) -> Result<DecodedPacket<'_>, DecodeError> {
    let mut p = DecodedPacket::empty();
    let mut cx = Cx { frame };
    match linktype {
        linktype::ETHERNET => cx.ethernet(&mut p, frame)?,
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => cx.ip_any(&mut p, frame)?,
        linktype::IPV4 => cx.ipv4(&mut p, frame)?,
        linktype::IPV6 => cx.ipv6(&mut p, frame)?,
        linktype::LINUX_SLL => {
            let proto = be16(frame, 14).ok_or(DecodeError::TruncatedSll)?;
            let hatype = be16(frame, 2).ok_or(DecodeError::TruncatedSll)?;
            cx.sll_payload(&mut p, hatype, proto, tail(frame, 16))?
        }
        linktype::LINUX_SLL2 => {
            if frame.len() < 20 {
                return Err(DecodeError::TruncatedSll);
            }
            let proto = be16(frame, 0).ok_or(DecodeError::TruncatedSll)?;
            let hatype = be16(frame, 8).ok_or(DecodeError::TruncatedSll)?;
            cx.sll_payload(&mut p, hatype, proto, tail(frame, 20))?
        }
        linktype::NULL => {
            let fam = match frame.get(0..4) {
                Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
                _ => return Err(DecodeError::TruncatedNull),
            };
            // Written in the capturing host's byte order: a value with high bits set was
            // written big-endian (families are small numbers).
            let fam = if fam & 0xFFFF_0000 != 0 {
                fam.swap_bytes()
            } else {
                fam
            };
            cx.loopback(&mut p, fam, tail(frame, 4))?
        }
        linktype::LOOP => {
            let fam = be32(frame, 0).ok_or(DecodeError::TruncatedNull)?;
            cx.loopback(&mut p, fam, tail(frame, 4))?
        }
        linktype::PPP | linktype::PPP_HDLC => cx.ppp(&mut p, frame)?,
        _ => return Err(DecodeError::UnsupportedLinktype),
    }
    Ok(p)
}

/// Decodes the transport layer of a reassembled IP datagram: `frag` is the decode result of
/// one of its fragments (for addresses, protocol, VLANs), `payload` the reassembled IP payload.
pub fn decode_transport<'b>(
    frag: &DecodedPacket<'_>,
    payload: &'b [u8],
) -> Result<DecodedPacket<'b>, DecodeError> {
    let mut p = frag.rebase();
    let mut cx = Cx { frame: payload };
    cx.transport(&mut p, frag.proto, payload)?;
    Ok(p)
}

#[derive(Clone, Copy)]
enum UdpTunnel {
    Vxlan,
    VxlanGpe,
    Geneve,
}

/// Decoding context: the whole frame, to compute header offsets.
struct Cx<'a> {
    frame: &'a [u8],
}

impl<'a> Cx<'a> {
    fn offset_of(&self, d: &[u8]) -> Option<u16> {
        let base = self.frame.as_ptr() as usize;
        let here = d.as_ptr() as usize;
        here.checked_sub(base)
            .filter(|&o| o <= self.frame.len())
            .and_then(|o| u16::try_from(o).ok())
    }

    fn ethernet(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let et = be16(d, 12).ok_or(DecodeError::TruncatedEthernet)?;
        p.vlan_count = 0;
        self.ethertype(p, et, tail(d, 14))
    }

    fn ethertype(&mut self, p: &mut DecodedPacket<'a>, mut et: u16, mut d: &'a [u8]) -> R {
        let mut tags = 0usize;
        loop {
            match et {
                ethertype::IPV4 => return self.ipv4(p, d),
                ethertype::IPV6 => return self.ipv6(p, d),
                ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD | ethertype::QINQ_OLD2 => {
                    tags += 1;
                    if tags > MAX_VLAN_TAGS {
                        return Err(DecodeError::TooManyVlanTags);
                    }
                    let tci = be16(d, 0).ok_or(DecodeError::TruncatedVlan)?;
                    et = be16(d, 2).ok_or(DecodeError::TruncatedVlan)?;
                    let n = usize::from(p.vlan_count);
                    if let Some(slot) = p.vlans.get_mut(n) {
                        *slot = tci & 0x0FFF;
                        p.vlan_count += 1;
                    }
                    d = tail(d, 4);
                }
                ethertype::MPLS | ethertype::MPLS_MC => return self.mpls(p, d),
                ethertype::PPPOE_SESSION => {
                    if d.len() < 6 {
                        return Err(DecodeError::TruncatedPppoe);
                    }
                    return self.ppp(p, tail(d, 6));
                }
                _ => return Err(DecodeError::NonIp),
            }
        }
    }

    fn sll_payload(
        &mut self,
        p: &mut DecodedPacket<'a>,
        hatype: u16,
        proto: u16,
        d: &'a [u8],
    ) -> R {
        const ARPHRD_NETLINK: u16 = 824;
        // Netlink monitor frames carry no IP; protocol values below 0x0600 are Linux
        // pseudo-protocols (802.2 LLC, 802.3, CAN...). For GRE devices (ARPHRD_IPGRE) the
        // protocol is the GRE protocol type, which is an ethertype too.
        if hatype == ARPHRD_NETLINK || proto < 0x0600 {
            return Err(DecodeError::NonIp);
        }
        self.ethertype(p, proto, d)
    }

    fn loopback(&mut self, p: &mut DecodedPacket<'a>, family: u32, d: &'a [u8]) -> R {
        match family {
            2 => self.ipv4(p, d),
            // AF_INET6 on Linux (10), NetBSD/OpenBSD (24), FreeBSD/DragonFly (28), Darwin (30),
            // Windows (23).
            10 | 23 | 24 | 28 | 30 => self.ipv6(p, d),
            _ => Err(DecodeError::UnknownNullFamily),
        }
    }

    fn ppp(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        // Optional HDLC address/control bytes.
        let d = if d.get(0..2) == Some(&[0xFF, 0x03]) {
            tail(d, 2)
        } else {
            d
        };
        let first = byte(d, 0).ok_or(DecodeError::TruncatedPpp)?;
        // Protocol field compression: an odd first byte is a one-byte protocol.
        let (proto, rest) = if first & 1 == 1 {
            (u16::from(first), tail(d, 1))
        } else {
            (be16(d, 0).ok_or(DecodeError::TruncatedPpp)?, tail(d, 2))
        };
        match proto {
            0x0021 => self.ipv4(p, rest),
            0x0057 => self.ipv6(p, rest),
            0x0281 | 0x0283 => self.mpls(p, rest),
            _ => Err(DecodeError::NonIp),
        }
    }

    fn mpls(&mut self, p: &mut DecodedPacket<'a>, mut d: &'a [u8]) -> R {
        let mut labels = 0usize;
        loop {
            let entry = be32(d, 0).ok_or(DecodeError::TruncatedMpls)?;
            d = tail(d, 4);
            labels += 1;
            if entry & 0x100 != 0 {
                break;
            }
            if labels >= MAX_MPLS_LABELS {
                return Err(DecodeError::TruncatedMpls);
            }
        }
        match byte(d, 0).map(|b| b >> 4) {
            Some(4) => self.ipv4(p, d),
            Some(6) => self.ipv6(p, d),
            // Pseudowire control word (first nibble 0) followed by an Ethernet frame.
            Some(0) => self
                .enter_tunnel(p)
                .and_then(|_| self.ethernet(p, tail(d, 4))),
            Some(_) => Err(DecodeError::UnsupportedMplsPayload),
            None => Err(DecodeError::TruncatedMpls),
        }
    }

    fn ip_any(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        match byte(d, 0).map(|b| b >> 4) {
            Some(4) => self.ipv4(p, d),
            Some(6) => self.ipv6(p, d),
            Some(_) => Err(DecodeError::BadIpVersion),
            None => Err(DecodeError::TruncatedIpv4),
        }
    }

    fn note_l3(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) {
        if p.l3_offset.is_none() {
            p.l3_offset = self.offset_of(d);
        }
    }

    fn ipv4(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let &[vihl, _tos, tl0, tl1, id0, id1, fo0, fo1, ttl, proto, _c0, _c1, s0, s1, s2, s3, d0, d1, d2, d3] =
            d.get(0..20).ok_or(DecodeError::TruncatedIpv4)?
        else {
            return Err(DecodeError::TruncatedIpv4);
        };
        if vihl >> 4 != 4 {
            return Err(DecodeError::BadIpVersion);
        }
        let ihl = usize::from(vihl & 0x0F) * 4;
        if ihl < 20 {
            return Err(DecodeError::BadIpv4HeaderLength);
        }
        if d.len() < ihl {
            return Err(DecodeError::TruncatedIpv4);
        }
        let total = usize::from(u16::from_be_bytes([tl0, tl1]));
        // Total length 0: segmentation offload on the capturing host; use what was captured.
        let (end, wire_end) = if total == 0 {
            (d.len(), d.len())
        } else if total < ihl {
            return Err(DecodeError::BadIpv4TotalLength);
        } else {
            (total.min(d.len()), total)
        };
        self.note_l3(p, d);
        p.src_ip = IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3));
        p.dst_ip = IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3));
        p.ttl = ttl;
        p.proto = proto;
        let payload = d.get(ihl..end).unwrap_or(&[]);
        let claimed = wire_end.saturating_sub(ihl);
        let fo = u16::from_be_bytes([fo0, fo1]);
        let more = fo & 0x2000 != 0;
        let offset = u32::from(fo & 0x1FFF) * 8;
        if more || offset != 0 {
            p.fragment = Some(FragmentInfo {
                id: u32::from(u16::from_be_bytes([id0, id1])),
                offset,
                more,
            });
            p.src_port = 0;
            p.dst_port = 0;
            p.tcp = None;
            p.icmp = None;
            p.payload = payload;
            p.wire_payload_len = u32::try_from(claimed).unwrap_or(u32::MAX);
            return Ok(());
        }
        self.transport_claimed(p, proto, payload, claimed)
    }

    fn ipv6(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let hdr = d.get(0..40).ok_or(DecodeError::TruncatedIpv6)?;
        let first = byte(hdr, 0).ok_or(DecodeError::TruncatedIpv6)?;
        if first >> 4 != 6 {
            return Err(DecodeError::BadIpVersion);
        }
        let plen = usize::from(be16(hdr, 4).ok_or(DecodeError::TruncatedIpv6)?);
        let mut nh = byte(hdr, 6).ok_or(DecodeError::TruncatedIpv6)?;
        let ttl = byte(hdr, 7).ok_or(DecodeError::TruncatedIpv6)?;
        let src: [u8; 16] = hdr
            .get(8..24)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::TruncatedIpv6)?;
        let dst: [u8; 16] = hdr
            .get(24..40)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::TruncatedIpv6)?;
        // Payload length 0: jumbogram or offload; use what was captured.
        let (end, wire_end) = if plen == 0 {
            (d.len(), d.len())
        } else {
            ((40 + plen).min(d.len()), 40 + plen)
        };
        let body = d.get(..end).unwrap_or(d);
        self.note_l3(p, d);
        p.src_ip = IpAddr::V6(Ipv6Addr::from(src));
        p.dst_ip = IpAddr::V6(Ipv6Addr::from(dst));
        p.ttl = ttl;
        let mut off = 40usize;
        let mut count = 0usize;
        loop {
            match nh {
                // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
                0 | 43 | 60 | 135 | 139 | 140 => {
                    let next = byte(body, off).ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                    let len = (usize::from(
                        byte(body, off + 1).ok_or(DecodeError::TruncatedIpv6ExtHeader)?,
                    ) + 1)
                        * 8;
                    if body.len() < off + len {
                        return Err(DecodeError::TruncatedIpv6ExtHeader);
                    }
                    nh = next;
                    off += len;
                }
                // Authentication header: length in 4-byte units, minus 2.
                51 => {
                    let next = byte(body, off).ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                    let len = (usize::from(
                        byte(body, off + 1).ok_or(DecodeError::TruncatedIpv6ExtHeader)?,
                    ) + 2)
                        * 4;
                    if body.len() < off + len {
                        return Err(DecodeError::TruncatedIpv6ExtHeader);
                    }
                    nh = next;
                    off += len;
                }
                // Fragment header.
                44 => {
                    let next = byte(body, off).ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                    let fo = be16(body, off + 2).ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                    let id = be32(body, off + 4).ok_or(DecodeError::TruncatedIpv6ExtHeader)?;
                    off += 8;
                    nh = next;
                    let offset = u32::from(fo & 0xFFF8);
                    let more = fo & 1 != 0;
                    if offset != 0 || more {
                        p.proto = nh;
                        p.fragment = Some(FragmentInfo { id, offset, more });
                        p.src_port = 0;
                        p.dst_port = 0;
                        p.tcp = None;
                        p.icmp = None;
                        p.payload = tail(body, off);
                        p.wire_payload_len =
                            u32::try_from(wire_end.saturating_sub(off)).unwrap_or(u32::MAX);
                        return Ok(());
                    }
                    // An atomic fragment (offset 0, no more): just continue.
                }
                _ => break,
            }
            count += 1;
            if count > MAX_IPV6_EXT_HEADERS {
                return Err(DecodeError::TooManyIpv6ExtHeaders);
            }
        }
        let claimed = wire_end.saturating_sub(off);
        self.transport_claimed(p, nh, tail(body, off), claimed)
    }

    fn enter_tunnel(&mut self, p: &mut DecodedPacket<'a>) -> R {
        if p.tunnel_depth >= MAX_TUNNEL_DEPTH {
            return Err(DecodeError::TooManyTunnels);
        }
        p.tunnel_depth += 1;
        Ok(())
    }

    fn transport_claimed(
        &mut self,
        p: &mut DecodedPacket<'a>,
        proto: u8,
        d: &'a [u8],
        claimed: usize,
    ) -> R {
        let depth = p.tunnel_depth;
        self.transport(p, proto, d)?;
        // For TCP of this very IP packet (no tunnel replaced it), add what the IP header says
        // the capture cut off, so reassembly sees the true segment length.
        if p.tunnel_depth == depth && p.tcp.is_some() && p.fragment.is_none() {
            let cut = claimed.saturating_sub(d.len());
            p.wire_payload_len = p
                .wire_payload_len
                .saturating_add(u32::try_from(cut).unwrap_or(u32::MAX));
        }
        Ok(())
    }

    fn transport(&mut self, p: &mut DecodedPacket<'a>, proto: u8, d: &'a [u8]) -> R {
        p.proto = proto;
        p.fragment = None;
        p.tcp = None;
        p.icmp = None;
        p.src_port = 0;
        p.dst_port = 0;
        match proto {
            ipproto::TCP => self.tcp(p, d),
            ipproto::UDP => self.udp(p, d),
            ipproto::ICMP | ipproto::ICMPV6 => {
                let ty = byte(d, 0).ok_or(DecodeError::TruncatedIcmpHeader)?;
                let code = byte(d, 1).ok_or(DecodeError::TruncatedIcmpHeader)?;
                if d.len() < 4 {
                    return Err(DecodeError::TruncatedIcmpHeader);
                }
                p.icmp = Some((ty, code));
                p.payload = tail(d, 8);
                p.wire_payload_len = len32(p.payload);
                Ok(())
            }
            ipproto::GRE => self.gre(p, d),
            // IP-in-IP (4) and IPv6-in-IP (41, 6in4/6in6).
            4 => {
                self.enter_tunnel(p)?;
                self.ipv4(p, d)
            }
            41 => {
                self.enter_tunnel(p)?;
                self.ipv6(p, d)
            }
            _ => {
                p.payload = d;
                p.wire_payload_len = len32(d);
                Ok(())
            }
        }
    }

    fn tcp(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let h = d.get(0..20).ok_or(DecodeError::TruncatedTcpHeader)?;
        let sp = be16(h, 0).ok_or(DecodeError::TruncatedTcpHeader)?;
        let dp = be16(h, 2).ok_or(DecodeError::TruncatedTcpHeader)?;
        let seq = be32(h, 4).ok_or(DecodeError::TruncatedTcpHeader)?;
        let ack = be32(h, 8).ok_or(DecodeError::TruncatedTcpHeader)?;
        let doff = usize::from(byte(h, 12).ok_or(DecodeError::TruncatedTcpHeader)? >> 4) * 4;
        let flags = byte(h, 13).ok_or(DecodeError::TruncatedTcpHeader)?;
        let window = be16(h, 14).ok_or(DecodeError::TruncatedTcpHeader)?;
        if doff < 20 {
            return Err(DecodeError::BadTcpHeaderLength);
        }
        if d.len() < doff {
            return Err(DecodeError::TruncatedTcpHeader);
        }
        p.src_port = sp;
        p.dst_port = dp;
        p.tcp = Some(TcpHeader {
            flags,
            seq,
            ack,
            window,
        });
        p.payload = tail(d, doff);
        p.wire_payload_len = len32(p.payload);
        Ok(())
    }

    fn udp(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let sp = be16(d, 0).ok_or(DecodeError::TruncatedUdpHeader)?;
        let dp = be16(d, 2).ok_or(DecodeError::TruncatedUdpHeader)?;
        let ulen = usize::from(be16(d, 4).ok_or(DecodeError::TruncatedUdpHeader)?);
        if d.len() < 8 {
            return Err(DecodeError::TruncatedUdpHeader);
        }
        // Trust the UDP length only when it is consistent; 0 (jumbogram/offload) or larger
        // than captured means "whatever was captured".
        let payload = if ulen >= 8 && ulen <= d.len() {
            d.get(8..ulen).unwrap_or(&[])
        } else {
            tail(d, 8)
        };
        let claimed = if ulen >= 8 { ulen - 8 } else { payload.len() };
        p.src_port = sp;
        p.dst_port = dp;
        p.payload = payload;
        p.wire_payload_len = u32::try_from(claimed.max(payload.len())).unwrap_or(u32::MAX);
        if p.tunnel_depth < MAX_TUNNEL_DEPTH {
            // UDP tunnels are recognised by port, either side (senders pick the source port
            // from a hash, receivers sometimes answer from the well-known one). What fails to
            // decode as a tunnel stays plain UDP.
            let kind = if sp == VXLAN_PORT || dp == VXLAN_PORT {
                Some(UdpTunnel::Vxlan)
            } else if sp == VXLAN_GPE_PORT || dp == VXLAN_GPE_PORT {
                Some(UdpTunnel::VxlanGpe)
            } else if sp == GENEVE_PORT || dp == GENEVE_PORT {
                Some(UdpTunnel::Geneve)
            } else {
                None
            };
            if let Some(kind) = kind {
                let outer = *p;
                let r = match kind {
                    UdpTunnel::Vxlan => self.vxlan(p, payload),
                    UdpTunnel::VxlanGpe => self.vxlan_gpe(p, payload),
                    UdpTunnel::Geneve => self.geneve(p, payload),
                };
                if r.is_err() {
                    *p = outer;
                }
            }
        }
        Ok(())
    }

    /// VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe): flags with the P bit, next protocol in byte 3.
    fn vxlan_gpe(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let (Some(flags), Some(next)) = (byte(d, 0), byte(d, 3)) else {
            return Ok(());
        };
        if flags & 0x04 == 0 || d.len() < 8 + 20 {
            // Without the P bit the payload is Ethernet, as in plain VXLAN.
            return self.vxlan(p, d);
        }
        let inner = tail(d, 8);
        match next {
            1 => {
                self.enter_tunnel(p)?;
                self.ipv4(p, inner)
            }
            2 => {
                self.enter_tunnel(p)?;
                self.ipv6(p, inner)
            }
            3 => {
                self.enter_tunnel(p)?;
                self.ethernet(p, inner)
            }
            5 => {
                self.enter_tunnel(p)?;
                self.mpls(p, inner)
            }
            _ => Ok(()),
        }
    }

    /// VXLAN (RFC 7348): 8-byte header with the I flag, then an Ethernet frame. A header
    /// without the I flag is left as plain UDP.
    fn vxlan(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        match byte(d, 0) {
            Some(flags) if flags & 0x08 != 0 && d.len() >= 8 + 14 => {
                self.enter_tunnel(p)?;
                self.ethernet(p, tail(d, 8))
            }
            _ => Ok(()),
        }
    }

    /// Geneve (RFC 8926): version 0 header with options, then Ethernet or IP.
    fn geneve(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        let (Some(b0), Some(proto)) = (byte(d, 0), be16(d, 2)) else {
            return Ok(());
        };
        if b0 >> 6 != 0 {
            return Ok(());
        }
        let hlen = 8 + usize::from(b0 & 0x3F) * 4;
        if d.len() < hlen {
            return Ok(());
        }
        let inner = tail(d, hlen);
        match proto {
            ethertype::TEB => {
                self.enter_tunnel(p)?;
                self.ethernet(p, inner)
            }
            ethertype::IPV4 | ethertype::IPV6 => {
                self.enter_tunnel(p)?;
                self.ethertype(p, proto, inner)
            }
            _ => Ok(()),
        }
    }

    /// GRE (RFC 2784/2890, RFC 1701 routing, RFC 2637 enhanced GRE for PPTP).
    fn gre(&mut self, p: &mut DecodedPacket<'a>, d: &'a [u8]) -> R {
        const C: u16 = 0x8000;
        const RT: u16 = 0x4000;
        const K: u16 = 0x2000;
        const S: u16 = 0x1000;
        const A: u16 = 0x0080;
        let flags = be16(d, 0).ok_or(DecodeError::TruncatedGre)?;
        let proto = be16(d, 2).ok_or(DecodeError::TruncatedGre)?;
        let mut off = 4usize;
        match flags & 0x0007 {
            0 => {
                if flags & (C | RT) != 0 {
                    off += 4;
                }
                if flags & K != 0 {
                    off += 4;
                }
                if flags & S != 0 {
                    off += 4;
                }
                if flags & RT != 0 {
                    let mut n = 0usize;
                    loop {
                        let af = be16(d, off).ok_or(DecodeError::TruncatedGre)?;
                        let len = usize::from(byte(d, off + 3).ok_or(DecodeError::TruncatedGre)?);
                        off += 4 + len;
                        if af == 0 && len == 0 {
                            break;
                        }
                        n += 1;
                        if n > MAX_GRE_SRE {
                            return Err(DecodeError::TruncatedGre);
                        }
                    }
                }
            }
            1 => {
                // Enhanced GRE: key (payload length + call id) mandatory, no checksum/routing.
                if flags & K == 0 || flags & (C | RT) != 0 {
                    return Err(DecodeError::UnsupportedGreVersion);
                }
                off += 4;
                if flags & S != 0 {
                    off += 4;
                }
                if flags & A != 0 {
                    off += 4;
                }
            }
            _ => return Err(DecodeError::UnsupportedGreVersion),
        }
        if d.len() < off {
            return Err(DecodeError::TruncatedGre);
        }
        let inner = tail(d, off);
        match proto {
            ethertype::IPV4 | ethertype::IPV6 | ethertype::MPLS | ethertype::MPLS_MC => {
                self.enter_tunnel(p)?;
                self.ethertype(p, proto, inner)
            }
            ethertype::TEB => {
                self.enter_tunnel(p)?;
                self.ethernet(p, inner)
            }
            ethertype::PPP => {
                self.enter_tunnel(p)?;
                self.ppp(p, inner)
            }
            ethertype::ERSPAN_II => {
                self.enter_tunnel(p)?;
                // Type I has no sequence number and no ERSPAN header; type II has both.
                if flags & S == 0 {
                    return self.ethernet(p, inner);
                }
                let ver = byte(inner, 0).ok_or(DecodeError::TruncatedErspan)? >> 4;
                if inner.len() < 8 {
                    return Err(DecodeError::TruncatedErspan);
                }
                if ver != 1 {
                    return Err(DecodeError::BadErspan);
                }
                self.ethernet(p, tail(inner, 8))
            }
            ethertype::ERSPAN_III => {
                self.enter_tunnel(p)?;
                let ver = byte(inner, 0).ok_or(DecodeError::TruncatedErspan)? >> 4;
                let b10 = byte(inner, 10).ok_or(DecodeError::TruncatedErspan)?;
                let b11 = byte(inner, 11).ok_or(DecodeError::TruncatedErspan)?;
                if ver != 2 {
                    return Err(DecodeError::BadErspan);
                }
                // P(1) FT(5) HwID(6) D(1) Gra(2) O(1) over bytes 10-11.
                let ft = (b10 >> 2) & 0x1F;
                let optional = b11 & 1 != 0;
                let hlen = if optional { 12 + 8 } else { 12 };
                if inner.len() < hlen {
                    return Err(DecodeError::TruncatedErspan);
                }
                let frame = tail(inner, hlen);
                match ft {
                    0 => self.ethernet(p, frame),
                    2 => self.ip_any(p, frame),
                    _ => Err(DecodeError::BadErspan),
                }
            }
            _ => Err(DecodeError::UnsupportedGreProtocol),
        }
    }
}

#[inline]
fn len32(d: &[u8]) -> u32 {
    u32::try_from(d.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::synth::build;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = build::eth_ipv4_tcp(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            40000,
            443,
            1000,
            0,
            tcp_flags::SYN,
            b"",
        );
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.src_ip, v4("10.0.0.1"));
        assert_eq!(p.dst_ip, v4("10.0.0.2"));
        assert_eq!((p.src_port, p.dst_port, p.proto), (40000, 443, 6));
        assert_eq!(p.tcp.unwrap().flags, tcp_flags::SYN);
        assert_eq!(p.tcp.unwrap().seq, 1000);
        assert_eq!(p.l3_offset, Some(14));
        assert_eq!(p.tunnel_depth, 0);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn ipv4_total_length_zero_uses_captured_length() {
        let mut f = build::eth_ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 5, 6, 0x18, b"hello");
        f[14 + 2] = 0;
        f[14 + 3] = 0;
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.payload, b"hello");
    }

    #[test]
    fn ethernet_padding_is_trimmed_by_ip_length() {
        let mut f = build::eth_ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1000, 53, b"abc");
        f.extend_from_slice(&[0u8; 20]);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.payload, b"abc");
    }

    #[test]
    fn bad_checksums_are_ignored() {
        let mut f = build::eth_ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1000, 53, b"abc");
        f[14 + 10] ^= 0xFF; // IP checksum
        f[14 + 20 + 6] ^= 0xFF; // UDP checksum
        assert!(decode(linktype::ETHERNET, &f).is_ok());
    }

    #[test]
    fn vlan_and_qinq() {
        let inner = build::eth_ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1000, 53, b"q");
        let f = build::add_vlans(&inner, &[(ethertype::QINQ, 100), (ethertype::VLAN, 200)]);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.vlan_count, 2);
        assert_eq!(&p.vlans[..2], &[100, 200]);
        assert_eq!(p.vlan(), Some(100));
        assert_eq!(p.payload, b"q");
        assert_eq!(p.l3_offset, Some(22));
        let f5 = build::add_vlans(&inner, &[(ethertype::VLAN, 1); 5]);
        assert_eq!(
            decode(linktype::ETHERNET, &f5),
            Err(DecodeError::TooManyVlanTags)
        );
    }

    #[test]
    fn raw_null_loop_sll_sll2() {
        let eth = build::eth_ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1000, 53, b"x");
        let ip = &eth[14..];
        for lt in [
            linktype::RAW,
            linktype::RAW_BSD,
            linktype::RAW_OPENBSD,
            linktype::IPV4,
        ] {
            let p = decode(lt, ip).unwrap();
            assert_eq!(p.payload, b"x", "linktype {lt}");
        }
        let mut null_le = vec![2, 0, 0, 0];
        null_le.extend_from_slice(ip);
        assert_eq!(decode(linktype::NULL, &null_le).unwrap().dst_port, 53);
        let mut null_be = vec![0, 0, 0, 2];
        null_be.extend_from_slice(ip);
        assert_eq!(decode(linktype::NULL, &null_be).unwrap().dst_port, 53);
        assert_eq!(decode(linktype::LOOP, &null_be).unwrap().dst_port, 53);
        let mut null_bad = vec![7, 0, 0, 0];
        null_bad.extend_from_slice(ip);
        assert_eq!(
            decode(linktype::NULL, &null_bad),
            Err(DecodeError::UnknownNullFamily)
        );
        // SLL: pkttype, hatype, addrlen, addr[8], protocol.
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        assert_eq!(decode(linktype::LINUX_SLL, &sll).unwrap().dst_port, 53);
        // SLL2: protocol, reserved, ifindex, hatype, pkttype, addrlen, addr[8].
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        assert_eq!(decode(linktype::LINUX_SLL2, &sll2).unwrap().dst_port, 53);
        assert_eq!(
            decode(linktype::LINUX_SLL2, &sll2[..19]),
            Err(DecodeError::TruncatedSll)
        );
        assert_eq!(decode(999, ip), Err(DecodeError::UnsupportedLinktype));
    }

    #[test]
    fn ipv6_extension_headers_and_icmpv6() {
        // Hop-by-hop (8) -> dest opts (8) -> routing (8) -> AH (16) -> UDP.
        let udp = build::udp_header(5353, 53, b"six");
        let mut ext = Vec::new();
        ext.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> DO, PadN
        ext.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // DO -> RH
        ext.extend_from_slice(&[51, 0, 0, 0, 0, 0, 0, 0]); // RH type 0, segs left 0 -> AH
        ext.extend_from_slice(&[17, 2, 0, 0, 1, 2, 3, 4, 0, 0, 0, 1, 0, 0, 0, 0]); // AH -> UDP
        ext.extend_from_slice(&udp);
        let f = build::eth_ipv6(0, &ext);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.proto, 17);
        assert_eq!((p.src_port, p.dst_port), (5353, 53));
        assert_eq!(p.payload, b"six");
        // ICMPv6 echo request.
        let icmp = [128u8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'];
        let f = build::eth_ipv6(58, &icmp);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.icmp, Some((128, 0)));
        assert_eq!(p.payload, b"ping");
        // Truncated extension header.
        let f = build::eth_ipv6(0, &[17, 3, 0, 0]);
        assert_eq!(
            decode(linktype::ETHERNET, &f),
            Err(DecodeError::TruncatedIpv6ExtHeader)
        );
    }

    #[test]
    fn ipv6_fragment_header() {
        let mut ext = vec![17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]; // offset 0, M=1
        ext.extend_from_slice(&build::udp_header(1, 2, b"frag"));
        let f = build::eth_ipv6(44, &ext);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        let fr = p.fragment.unwrap();
        assert_eq!((fr.id, fr.offset, fr.more), (0xdead_beef, 0, true));
        assert_eq!(p.proto, 17);
        assert_eq!(p.src_port, 0);
        assert_eq!(p.payload.len(), 8 + 4);
        // Atomic fragment decodes as a normal packet.
        let mut ext = vec![17, 0, 0, 0, 0, 0, 0, 9];
        ext.extend_from_slice(&build::udp_header(1, 2, b"atom"));
        let f = build::eth_ipv6(44, &ext);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert!(p.fragment.is_none());
        assert_eq!(p.payload, b"atom");
    }

    #[test]
    fn ipv4_fragment_and_transport_of_reassembly() {
        let f = build::eth_ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1000, 88, b"kerberos");
        let mut frag = f.clone();
        frag[14 + 6] = 0x20; // MF
        let p = decode(linktype::ETHERNET, &frag).unwrap();
        assert!(p.fragment.unwrap().more);
        assert_eq!(p.src_port, 0);
        let whole = decode_transport(&p, p.payload).unwrap();
        assert_eq!(whole.dst_port, 88);
        assert_eq!(whole.payload, b"kerberos");
        assert_eq!(whole.src_ip, v4("1.1.1.1"));
    }

    #[test]
    fn errors_are_named() {
        let f = build::eth_ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, 0, 2, b"");
        assert_eq!(
            decode(linktype::ETHERNET, &f[..10]),
            Err(DecodeError::TruncatedEthernet)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &f[..14 + 19]),
            Err(DecodeError::TruncatedIpv4)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &f[..14 + 20 + 10]),
            Err(DecodeError::TruncatedTcpHeader)
        );
        let mut bad = f.clone();
        bad[14] = 0x55;
        assert_eq!(
            decode(linktype::ETHERNET, &bad),
            Err(DecodeError::BadIpVersion)
        );
        let mut bad = f.clone();
        bad[14] = 0x44;
        assert_eq!(
            decode(linktype::ETHERNET, &bad),
            Err(DecodeError::BadIpv4HeaderLength)
        );
        let mut bad = f.clone();
        bad[14 + 20 + 12] = 0x40;
        assert_eq!(
            decode(linktype::ETHERNET, &bad),
            Err(DecodeError::BadTcpHeaderLength)
        );
        let mut arp = f.clone();
        arp[12] = 0x08;
        arp[13] = 0x06;
        let e = decode(linktype::ETHERNET, &arp).unwrap_err();
        assert_eq!(e, DecodeError::NonIp);
        assert!(!e.is_malformed());
        for (i, e) in DecodeError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(!e.name().is_empty());
        }
    }

    #[test]
    fn snaplen_truncated_tcp_reports_wire_length() {
        let f = build::eth_ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, 0, 0x18, &[7u8; 100]);
        let p = decode(linktype::ETHERNET, &f[..14 + 20 + 20 + 30]).unwrap();
        assert_eq!(p.payload.len(), 30);
        assert_eq!(p.wire_payload_len, 100);
    }

    #[test]
    fn gre_ip_and_teb_and_pptp() {
        let inner = build::eth_ipv4_udp([10, 1, 1, 1], [10, 2, 2, 2], 5000, 53, b"in");
        let inner_ip = inner[14..].to_vec();
        // Plain GRE with key and sequence, IPv4 payload.
        let gre = build::gre(
            0x2000 | 0x1000,
            ethertype::IPV4,
            &[0, 0, 0, 7, 0, 0, 0, 1],
            &inner_ip,
        );
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(p.tunnel_depth, 1);
        assert_eq!(p.src_ip, v4("10.1.1.1"));
        assert_eq!(p.payload, b"in");
        assert_eq!(p.l3_offset, Some(14));
        // Transparent Ethernet bridging.
        let gre = build::gre(0, ethertype::TEB, &[], &inner);
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().dst_port, 53);
        // PPTP enhanced GRE carrying PPP(IPv4).
        let mut ppp = vec![0xFF, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(&inner_ip);
        let gre = build::gre(
            0x2000 | 0x1000 | 0x0001,
            ethertype::PPP,
            &[0, 40, 0, 1, 0, 0, 0, 3],
            &ppp,
        );
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!((p.dst_port, p.tunnel_depth), (53, 1));
        // Unknown GRE payload.
        let gre = build::gre(0, 0x1234, &[], &inner_ip);
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        assert_eq!(
            decode(linktype::ETHERNET, &f),
            Err(DecodeError::UnsupportedGreProtocol)
        );
    }

    #[test]
    fn erspan_types_i_ii_iii() {
        let inner = build::eth_ipv4_tcp([10, 1, 1, 1], [10, 2, 2, 2], 1234, 80, 1, 0, 2, b"");
        // Type II: S bit, ERSPAN header version 1.
        let mut hdr = vec![0x10, 0x64, 0x00, 0x01, 0, 0, 0, 0];
        hdr.extend_from_slice(&inner);
        let gre = build::gre(0x1000, ethertype::ERSPAN_II, &[0, 0, 0, 1], &hdr);
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!((p.dst_port, p.tunnel_depth), (80, 1));
        // Type I: no sequence number, frame follows directly.
        let gre = build::gre(0, ethertype::ERSPAN_II, &[], &inner);
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().dst_port, 80);
        // Type III with the optional platform sub-header.
        let mut hdr = vec![0x20, 0x64, 0x00, 0x01, 0, 0, 0, 9, 0, 0, 0x00, 0x01];
        hdr.extend_from_slice(&[0u8; 8]);
        hdr.extend_from_slice(&inner);
        let gre = build::gre(0x1000, ethertype::ERSPAN_III, &[0, 0, 0, 1], &hdr);
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().dst_port, 80);
        // Wrong version.
        let mut hdr = vec![0x30, 0x64, 0x00, 0x01, 0, 0, 0, 0];
        hdr.extend_from_slice(&inner);
        let gre = build::gre(0x1000, ethertype::ERSPAN_II, &[0, 0, 0, 1], &hdr);
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 47, &gre);
        assert_eq!(decode(linktype::ETHERNET, &f), Err(DecodeError::BadErspan));
    }

    #[test]
    fn vxlan_geneve_ipip_6in4() {
        let inner = build::eth_ipv4_tcp([10, 1, 1, 1], [10, 2, 2, 2], 1234, 22, 1, 0, 2, b"");
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        vx.extend_from_slice(&inner);
        let f = build::eth_ipv4_udp([192, 168, 0, 1], [192, 168, 0, 2], 55555, VXLAN_PORT, &vx);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!((p.dst_port, p.tunnel_depth, p.proto), (22, 1, 6));
        // VXLAN without I flag: plain UDP.
        vx[0] = 0;
        let f = build::eth_ipv4_udp([192, 168, 0, 1], [192, 168, 0, 2], 55555, VXLAN_PORT, &vx);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!((p.dst_port, p.tunnel_depth), (VXLAN_PORT, 0));
        // VXLAN answered from the well-known port; a broken inner frame stays plain UDP.
        vx[0] = 0x08;
        let f = build::eth_ipv4_udp([192, 168, 0, 1], [192, 168, 0, 2], VXLAN_PORT, 4790, &vx);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().dst_port, 22);
        let f = build::eth_ipv4_udp(
            [192, 168, 0, 1],
            [192, 168, 0, 2],
            555,
            VXLAN_PORT,
            &vx[..8 + 20],
        );
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!(
            (p.dst_port, p.tunnel_depth, p.payload.len()),
            (VXLAN_PORT, 0, 28)
        );
        // VXLAN-GPE with an IPv4 payload.
        let mut gpe = vec![0x0C, 0, 0, 1, 0, 0, 0x2a, 0];
        gpe.extend_from_slice(&inner[14..]);
        let f = build::eth_ipv4_udp(
            [192, 168, 0, 1],
            [192, 168, 0, 2],
            555,
            VXLAN_GPE_PORT,
            &gpe,
        );
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().dst_port, 22);
        // Geneve with 4 bytes of options, Ethernet payload.
        let mut gn = vec![0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2, 3, 4];
        gn.extend_from_slice(&inner);
        let f = build::eth_ipv4_udp([192, 168, 0, 1], [192, 168, 0, 2], 55555, GENEVE_PORT, &gn);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().dst_port, 22);
        // IP-in-IP and 6in4.
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 4, &inner[14..]);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert_eq!((p.src_ip, p.tunnel_depth), (v4("10.1.1.1"), 1));
        let v6 = build::eth_ipv6(17, &build::udp_header(1, 53, b"z"));
        let f = build::eth_ipv4_proto([192, 168, 0, 1], [192, 168, 0, 2], 41, &v6[14..]);
        let p = decode(linktype::ETHERNET, &f).unwrap();
        assert!(p.src_ip.is_ipv6());
        assert_eq!((p.dst_port, p.payload), (53, &b"z"[..]));
    }

    #[test]
    fn tunnel_nesting_is_bounded() {
        let mut pkt =
            build::eth_ipv4_udp([10, 1, 1, 1], [10, 2, 2, 2], 1, 2, b"deep")[14..].to_vec();
        for _ in 0..(MAX_TUNNEL_DEPTH + 2) {
            pkt = build::ipv4_packet([1, 1, 1, 1], [2, 2, 2, 2], 4, &pkt);
        }
        assert_eq!(
            decode(linktype::RAW, &pkt),
            Err(DecodeError::TooManyTunnels)
        );
    }

    #[test]
    fn mpls_and_pppoe() {
        let inner = build::eth_ipv4_udp([10, 1, 1, 1], [10, 2, 2, 2], 1, 53, b"m");
        let mut f = inner[..12].to_vec();
        f.extend_from_slice(&[0x88, 0x47, 0, 0x10, 0x00, 0x40, 0, 0x20, 0x01, 0x40]);
        f.extend_from_slice(&inner[14..]);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().payload, b"m");
        let mut f = inner[..12].to_vec();
        let plen = (inner.len() - 14 + 2) as u16;
        f.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1]);
        f.extend_from_slice(&plen.to_be_bytes());
        f.extend_from_slice(&[0x00, 0x21]);
        f.extend_from_slice(&inner[14..]);
        assert_eq!(decode(linktype::ETHERNET, &f).unwrap().payload, b"m");
    }

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn fuzz_random_and_mutated_frames_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let seeds: Vec<Vec<u8>> = vec![
            build::eth_ipv4_tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 443, 1, 2, 0x18, b"data"),
            build::eth_ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 1, VXLAN_PORT, &{
                let mut v = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
                v.extend_from_slice(&build::eth_ipv4_udp(
                    [3, 3, 3, 3],
                    [4, 4, 4, 4],
                    9,
                    53,
                    b"x",
                ));
                v
            }),
            build::eth_ipv6(0, &[17, 0, 1, 4, 0, 0, 0, 0, 0, 1, 0, 2, 0, 9, 0, 0, 7]),
            build::eth_ipv4_proto(
                [1, 1, 1, 1],
                [2, 2, 2, 2],
                47,
                &build::gre(0xF000, ethertype::ERSPAN_III, &[0; 12], &[0x20; 40]),
            ),
        ];
        let linktypes = [0u32, 1, 9, 12, 101, 108, 113, 228, 229, 276];
        let mut ok = 0usize;
        for i in 0..200_000u32 {
            let mut buf = if i % 2 == 0 {
                let len = (rng.next() % 128) as usize;
                (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
            } else {
                seeds[(rng.next() % seeds.len() as u64) as usize].clone()
            };
            let flips = 1 + rng.next() % 6;
            for _ in 0..flips {
                if !buf.is_empty() {
                    let at = (rng.next() % buf.len() as u64) as usize;
                    buf[at] = rng.next() as u8;
                }
            }
            if rng.next().is_multiple_of(4) {
                let cut = (rng.next() % (buf.len() as u64 + 1)) as usize;
                buf.truncate(cut);
            }
            let lt = linktypes[(rng.next() % linktypes.len() as u64) as usize];
            if let Ok(p) = decode(lt, &buf) {
                ok += 1;
                assert!(p.payload.len() <= buf.len());
                assert!(p.tunnel_depth <= MAX_TUNNEL_DEPTH);
            }
        }
        assert!(
            ok > 1000,
            "mutated valid frames should often still decode ({ok})"
        );
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tshark_tests {
    use super::*;
    use crate::source::PcapFileSource;

    /// Compares our innermost addresses and ports with tshark's dissection of every shared
    /// capture. Needs tshark; run with `cargo test -- --ignored tshark`.
    #[test]
    #[ignore = "needs tshark and the shared captures"]
    fn innermost_tuples_match_tshark() {
        let files = crate::tests_support::shared_captures();
        let mut compared = 0usize;
        for f in files {
            let out = std::process::Command::new("tshark")
                .arg("-r")
                .arg(&f)
                .args(["-T", "fields", "-E", "occurrence=l", "-E", "separator=|"])
                .args([
                    "-e",
                    "frame.protocols",
                    "-e",
                    "ip.src",
                    "-e",
                    "ip.dst",
                    "-e",
                    "ipv6.src",
                    "-e",
                    "ipv6.dst",
                ])
                .args([
                    "-e",
                    "tcp.srcport",
                    "-e",
                    "tcp.dstport",
                    "-e",
                    "udp.srcport",
                    "-e",
                    "udp.dstport",
                ])
                .env("HOME", std::env::temp_dir())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let mut src = PcapFileSource::open(&f).unwrap();
            for line in text.lines() {
                let p = src.next_packet().unwrap().unwrap();
                let c: Vec<&str> = line.split('|').collect();
                let protos: Vec<&str> = c[0].split(':').collect();
                // ICMP errors quote an inner packet tshark reports as the last occurrence.
                if c[0].contains("icmp:ip") || c[0].contains("icmpv6:ipv6") || !c[0].contains(":ip")
                {
                    continue;
                }
                let Ok(d) = decode(p.linktype, p.data) else {
                    panic!("{}: tshark decodes {line}", f.display());
                };
                let last_ip = protos.iter().rposition(|x| *x == "ip");
                let last_v6 = protos.iter().rposition(|x| *x == "ipv6");
                let (s, t) = if last_v6 > last_ip {
                    (c[3], c[4])
                } else {
                    (c[1], c[2])
                };
                assert_eq!(d.src_ip.to_string(), s, "{} {line}", f.display());
                assert_eq!(d.dst_ip.to_string(), t, "{} {line}", f.display());
                let ports = if !c[5].is_empty() {
                    (c[5], c[6])
                } else {
                    (c[7], c[8])
                };
                let last_l3 = last_ip.max(last_v6);
                let last_l4 = protos.iter().rposition(|x| *x == "tcp" || *x == "udp");
                if !ports.0.is_empty() && d.fragment.is_none() && last_l4 > last_l3 {
                    assert_eq!(d.src_port.to_string(), ports.0, "{} {line}", f.display());
                    assert_eq!(d.dst_port.to_string(), ports.1, "{} {line}", f.display());
                }
                compared += 1;
            }
        }
        assert!(compared > 3000, "{compared}");
    }
}
