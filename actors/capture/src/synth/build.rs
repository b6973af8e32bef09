//! Low-level frame builders (IPv4/IPv6, TCP, UDP, VLAN, GRE, fragments), with valid IPv4,
//! TCP and UDP checksums.

/// Source MAC used in built frames.
pub const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// Destination MAC used in built frames.
pub const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
/// IPv6 source used by [`eth_ipv6`] (documentation prefix).
pub const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// IPv6 destination used by [`eth_ipv6`].
pub const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// Internet checksum (RFC 1071) of the concatenated parts.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet header + payload.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4_header(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag: u16,
    payload_len: usize,
) -> [u8; 20] {
    let total = (20 + payload_len).min(0xFFFF) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let c = checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// An IPv4 packet (no options, DF clear, TTL 64).
pub fn ipv4_packet(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = ipv4_header(src, dst, proto, 0x1000, 0, payload.len()).to_vec();
    p.extend_from_slice(payload);
    p
}

/// An IPv4 datagram split into raw-IP fragments of `chunk` payload bytes (multiple of 8).
pub fn ipv4_fragments(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    payload: &[u8],
    chunk: usize,
) -> Vec<Vec<u8>> {
    let chunk = (chunk / 8).max(1) * 8;
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let more = end < payload.len();
        let frag = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        let mut p = ipv4_header(src, dst, proto, id, frag, end - off).to_vec();
        p.extend_from_slice(&payload[off..end]);
        out.push(p);
        off = end;
    }
    out
}

fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&src);
    p[4..8].copy_from_slice(&dst);
    p[9] = proto;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    p
}

/// A TCP segment (20-byte header) with a valid checksum for the given IPv4 endpoints.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    src: [u8; 4],
    dst: [u8; 4],
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&sp.to_be_bytes());
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(0x50);
    t.push(flags);
    t.extend_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(payload);
    let c = checksum(&[&pseudo_v4(src, dst, 6, t.len()), &t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// UDP header + payload with checksum 0 ("none", allowed for IPv4).
pub fn udp_header(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sp.to_be_bytes());
    u.extend_from_slice(&dp.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()).min(0xFFFF) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Ethernet/IPv4/TCP frame.
#[allow(clippy::too_many_arguments)]
pub fn eth_ipv4_tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let tcp = tcp_segment(src, dst, sp, dp, seq, ack, flags, payload);
    ethernet(0x0800, &ipv4_packet(src, dst, 6, &tcp))
}

/// Ethernet/IPv4/UDP frame with a valid UDP checksum.
pub fn eth_ipv4_udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = udp_header(sp, dp, payload);
    let c = checksum(&[&pseudo_v4(src, dst, 17, u.len()), &u]);
    let c = if c == 0 { 0xFFFF } else { c };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ethernet(0x0800, &ipv4_packet(src, dst, 17, &u))
}

/// Ethernet/IPv4 frame carrying any protocol.
pub fn eth_ipv4_proto(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ethernet(0x0800, &ipv4_packet(src, dst, proto, payload))
}

/// Ethernet/IPv6 frame from [`V6_SRC`] to [`V6_DST`] with next header `nh`.
pub fn eth_ipv6(nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(nh);
    p.push(64);
    p.extend_from_slice(&V6_SRC);
    p.extend_from_slice(&V6_DST);
    p.extend_from_slice(payload);
    ethernet(0x86DD, &p)
}

/// Inserts VLAN tags `(tpid, vid)` after the MAC addresses, outermost first.
pub fn add_vlans(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(vid & 0x0FFF).to_be_bytes());
    }
    f.extend_from_slice(&frame[12..]);
    f
}

/// A GRE header (`flags` as the first 16 bits, version included) with its optional fields
/// already encoded in `optional`, then `payload`.
pub fn gre(flags: u16, proto: u16, optional: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut g = flags.to_be_bytes().to_vec();
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(optional);
    g.extend_from_slice(payload);
    g
}
