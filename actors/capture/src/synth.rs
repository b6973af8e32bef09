//! A traffic synthesizer that writes classic pcap (Ethernet) files for tests and benchmarks.
//!
//! Everything is built from the specifications, not copied from captures: TLS 1.2/1.3
//! ClientHello, ServerHello, Certificate (an X.509 v3 certificate encoded here in DER, with
//! subject, issuer, validity and subjectAltName; its signature bytes are random), Kerberos
//! AS-REQ/AS-REP/TGS-REQ/TGS-REP/KRB-ERROR per RFC 4120 (DER, application tags 10-13 and 30),
//! DNS queries and answers per RFC 1035, port scans, SYN floods and bulk transfers with
//! realistic packet sizes. A seeded xorshift generator makes every file reproducible.
//!
//! [`build`] holds the low-level frame builders the unit tests of the other modules use;
//! [`Synth`] composes conversations; [`write_mix`] writes a whole mix in one call.

use crate::decode::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::ring::{write_pcap_header, write_pcap_record};
use netmonitor_common::{time::format_utc, Timestamp};
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Low-level frame builders (IPv4/IPv6, TCP, UDP, VLAN, GRE, fragments), with valid IPv4,
/// TCP and UDP checksums.
pub mod build {
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
}

/// Minimal DER encoding helpers for certificates and Kerberos messages.
mod der {
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let n = content.len();
        if n < 0x80 {
            v.push(n as u8);
        } else if n < 0x100 {
            v.extend_from_slice(&[0x81, n as u8]);
        } else if n < 0x10000 {
            v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
        } else {
            v.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        }
        v.extend_from_slice(content);
        v
    }

    pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &parts.concat())
    }

    /// Context tag `[n]`, constructed.
    pub fn ctx(n: u8, inner: Vec<u8>) -> Vec<u8> {
        tlv(0xA0 | n, &inner)
    }

    /// Application tag `[APPLICATION n]`, constructed.
    pub fn app(n: u8, inner: Vec<u8>) -> Vec<u8> {
        tlv(0x60 | n, &inner)
    }

    pub fn int(v: i64) -> Vec<u8> {
        let bytes = v.to_be_bytes();
        let mut start = 0;
        while start < 7 {
            let b = bytes[start];
            let next = bytes[start + 1];
            if (b == 0 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        tlv(0x02, &bytes[start..])
    }

    pub fn octets(v: &[u8]) -> Vec<u8> {
        tlv(0x04, v)
    }

    pub fn general_string(s: &str) -> Vec<u8> {
        tlv(0x1B, s.as_bytes())
    }

    pub fn oid(encoded: &[u8]) -> Vec<u8> {
        tlv(0x06, encoded)
    }
}

/// xorshift64*: a tiny deterministic generator (no dependency).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Fills a buffer.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

/// TLS cipher suites offered by synthetic clients (a modern browser-like list).
const CLIENT_SUITES: [u16; 15] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
    0x009d, 0x002f, 0x0035,
];

fn tls_ext(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut e = ty.to_be_bytes().to_vec();
    e.extend_from_slice(&(body.len() as u16).to_be_bytes());
    e.extend_from_slice(body);
    e
}

fn u16_list(vals: &[u16]) -> Vec<u8> {
    let mut v = ((vals.len() * 2) as u16).to_be_bytes().to_vec();
    for x in vals {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    let mut h = vec![ty, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    h.extend_from_slice(body);
    h
}

/// TLS records of content type `ct` carrying `data` (split at 16 KiB).
fn tls_records(ct: u8, version: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    for chunk in data.chunks(16_384) {
        out.push(ct);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A TLS ClientHello record (RFC 8446 §4.1.2) offering TLS 1.3 and 1.2, with SNI `sni`
/// (omitted when empty), ALPN h2/http1.1, X25519 key share and random values from `rng`.
pub fn tls_client_hello(rng: &mut XorShift, sni: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x0303u16.to_be_bytes());
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    body.extend_from_slice(&u16_list(&CLIENT_SUITES));
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    if !sni.is_empty() {
        let mut list = vec![0u8];
        list.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        list.extend_from_slice(sni.as_bytes());
        let mut sn = (list.len() as u16).to_be_bytes().to_vec();
        sn.extend_from_slice(&list);
        exts.extend(tls_ext(0, &sn));
    }
    exts.extend(tls_ext(23, &[]));
    exts.extend(tls_ext(0xff01, &[0]));
    exts.extend(tls_ext(10, &u16_list(&[0x001d, 0x0017, 0x0018])));
    exts.extend(tls_ext(11, &[1, 0]));
    exts.extend(tls_ext(35, &[]));
    let alpn = [&[2u8][..], b"h2", &[8], b"http/1.1"].concat();
    let mut alpn_ext = (alpn.len() as u16).to_be_bytes().to_vec();
    alpn_ext.extend_from_slice(&alpn);
    exts.extend(tls_ext(16, &alpn_ext));
    exts.extend(tls_ext(5, &[1, 0, 0, 0, 0]));
    exts.extend(tls_ext(
        13,
        &u16_list(&[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ]),
    ));
    exts.extend(tls_ext(18, &[]));
    let mut ks = vec![0x00, 0x1d, 0x00, 0x20];
    ks.extend_from_slice(&rng.bytes(32));
    let mut ks_ext = (ks.len() as u16).to_be_bytes().to_vec();
    ks_ext.extend_from_slice(&ks);
    exts.extend(tls_ext(51, &ks_ext));
    exts.extend(tls_ext(45, &[1, 1]));
    exts.extend(tls_ext(43, &[4, 0x03, 0x04, 0x03, 0x03]));
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    tls_records(22, 0x0301, &handshake(1, &body))
}

/// A TLS 1.2 ServerHello + Certificate + ServerHelloDone flight (one record) with a leaf
/// certificate for `sni` issued by a synthetic CA.
pub fn tls_server_flight(rng: &mut XorShift, sni: &str, now: Timestamp) -> Vec<u8> {
    let mut sh = Vec::new();
    sh.extend_from_slice(&0x0303u16.to_be_bytes());
    sh.extend_from_slice(&rng.bytes(32));
    sh.push(32);
    sh.extend_from_slice(&rng.bytes(32));
    sh.extend_from_slice(&0xc02fu16.to_be_bytes());
    sh.push(0);
    let mut exts = Vec::new();
    exts.extend(tls_ext(0xff01, &[0]));
    exts.extend(tls_ext(23, &[]));
    exts.extend(tls_ext(11, &[1, 0]));
    let alpn = [&[2u8][..], b"h2"].concat();
    let mut alpn_ext = (alpn.len() as u16).to_be_bytes().to_vec();
    alpn_ext.extend_from_slice(&alpn);
    exts.extend(tls_ext(16, &alpn_ext));
    sh.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    sh.extend_from_slice(&exts);
    let cert = x509_certificate(
        rng,
        if sni.is_empty() {
            "server.invalid"
        } else {
            sni
        },
        now,
    );
    let mut chain = Vec::new();
    let n = cert.len();
    chain.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    chain.extend_from_slice(&cert);
    let n = chain.len();
    let mut cm = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8];
    cm.extend_from_slice(&chain);
    let mut msgs = handshake(2, &sh);
    msgs.extend(handshake(11, &cm));
    msgs.extend(handshake(14, &[]));
    tls_records(22, 0x0303, &msgs)
}

fn utc_time(secs: i64) -> Vec<u8> {
    // format_utc gives YYYY-MM-DDTHH:MM:SS; UTCTime is YYMMDDHHMMSSZ.
    let s = format_utc(secs);
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let short = format!("{}Z", digits.get(2..).unwrap_or("700101000000"));
    der::tlv(0x17, short.as_bytes())
}

fn generalized_time(secs: i64) -> Vec<u8> {
    let s = format_utc(secs);
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    der::tlv(0x18, format!("{digits}Z").as_bytes())
}

/// An X.509 v3 certificate (DER) for `cn`, valid from 30 days before `now` to a year after,
/// with a DNS subjectAltName; signed by "NetMonitor Synthetic CA" (random signature bytes).
pub fn x509_certificate(rng: &mut XorShift, cn: &str, now: Timestamp) -> Vec<u8> {
    const SHA256_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let name = |org: &str, cn: &str| {
        der::seq(&[
            der::set(&[der::seq(&[
                der::oid(&[0x55, 0x04, 0x06]),
                der::tlv(0x13, b"US"),
            ])]),
            der::set(&[der::seq(&[
                der::oid(&[0x55, 0x04, 0x0a]),
                der::tlv(0x0c, org.as_bytes()),
            ])]),
            der::set(&[der::seq(&[
                der::oid(&[0x55, 0x04, 0x03]),
                der::tlv(0x0c, cn.as_bytes()),
            ])]),
        ])
    };
    let alg = der::seq(&[der::oid(&SHA256_RSA), der::tlv(0x05, &[])]);
    let mut serial = rng.bytes(16);
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    let mut modulus = vec![0u8];
    modulus.extend(rng.bytes(256));
    modulus[1] |= 0x80;
    let rsa_key = der::seq(&[der::tlv(0x02, &modulus), der::int(65_537)]);
    let mut bits = vec![0u8];
    bits.extend(rsa_key);
    let spki = der::seq(&[
        der::seq(&[der::oid(&RSA), der::tlv(0x05, &[])]),
        der::tlv(0x03, &bits),
    ]);
    let san = der::seq(&[der::tlv(0x82, cn.as_bytes())]);
    let exts = der::ctx(
        3,
        der::seq(&[
            der::seq(&[der::oid(&[0x55, 0x1d, 0x11]), der::octets(&san)]),
            der::seq(&[der::oid(&[0x55, 0x1d, 0x13]), der::octets(&der::seq(&[]))]),
        ]),
    );
    let secs = now.secs();
    let tbs = der::seq(&[
        der::ctx(0, der::int(2)),
        der::tlv(0x02, &serial),
        alg.clone(),
        name("NetMonitor Test", "NetMonitor Synthetic CA"),
        der::seq(&[utc_time(secs - 30 * 86_400), utc_time(secs + 365 * 86_400)]),
        name("NetMonitor Test", cn),
        spki,
        exts,
    ]);
    let mut sig = vec![0u8];
    sig.extend(rng.bytes(256));
    der::seq(&[tbs, alg, der::tlv(0x03, &sig)])
}

fn principal(name_type: i64, parts: &[&str]) -> Vec<u8> {
    der::seq(&[
        der::ctx(0, der::int(name_type)),
        der::ctx(
            1,
            der::seq(
                &parts
                    .iter()
                    .map(|p| der::general_string(p))
                    .collect::<Vec<_>>(),
            ),
        ),
    ])
}

fn encrypted_data(rng: &mut XorShift, etype: i64, kvno: Option<i64>, len: usize) -> Vec<u8> {
    let mut f = vec![der::ctx(0, der::int(etype))];
    if let Some(k) = kvno {
        f.push(der::ctx(1, der::int(k)));
    }
    f.push(der::ctx(2, der::octets(&rng.bytes(len))));
    der::seq(&f)
}

fn ticket(rng: &mut XorShift, realm: &str, sname: &[&str], etype: i64) -> Vec<u8> {
    der::app(
        1,
        der::seq(&[
            der::ctx(0, der::int(5)),
            der::ctx(1, der::general_string(realm)),
            der::ctx(2, principal(2, sname)),
            der::ctx(3, encrypted_data(rng, etype, Some(2), 900)),
        ]),
    )
}

/// What a synthetic Kerberos message says.
#[derive(Clone, Debug)]
pub struct KrbSpec<'a> {
    /// Realm (`EXAMPLE.TEST`).
    pub realm: &'a str,
    /// Client principal name.
    pub cname: &'a str,
    /// Service principal components (`["krbtgt", "EXAMPLE.TEST"]`).
    pub sname: &'a [&'a str],
    /// Encryption types the client offers (requests).
    pub etypes: &'a [i64],
    /// Ticket encryption type (replies).
    pub ticket_etype: i64,
    /// Reply enc-part encryption type.
    pub reply_etype: i64,
    /// Capture time, for the `till` field.
    pub now: Timestamp,
}

/// An AS-REQ (`tgs == false`) or TGS-REQ (RFC 4120 §5.4.1), DER.
pub fn krb_request(rng: &mut XorShift, k: &KrbSpec<'_>, tgs: bool) -> Vec<u8> {
    let mut body = vec![der::ctx(0, der::tlv(0x03, &[0x00, 0x40, 0x81, 0x00, 0x10]))];
    if !tgs {
        body.push(der::ctx(1, principal(1, &[k.cname])));
    }
    body.push(der::ctx(2, der::general_string(k.realm)));
    body.push(der::ctx(3, principal(2, k.sname)));
    body.push(der::ctx(5, generalized_time(k.now.secs() + 10 * 3600)));
    body.push(der::ctx(7, der::int((rng.next_u64() & 0x7FFF_FFFF) as i64)));
    body.push(der::ctx(
        8,
        der::seq(&k.etypes.iter().map(|&e| der::int(e)).collect::<Vec<_>>()),
    ));
    let padata = if tgs {
        // PA-TGS-REQ carrying an AP-REQ with the TGT.
        let ap_req = der::app(
            14,
            der::seq(&[
                der::ctx(0, der::int(5)),
                der::ctx(1, der::int(14)),
                der::ctx(2, der::tlv(0x03, &[0, 0, 0, 0, 0])),
                der::ctx(3, ticket(rng, k.realm, &["krbtgt", k.realm], 18)),
                der::ctx(4, encrypted_data(rng, 18, None, 120)),
            ]),
        );
        der::seq(&[der::seq(&[
            der::ctx(1, der::int(1)),
            der::ctx(2, der::octets(&ap_req)),
        ])])
    } else {
        // PA-PAC-REQUEST { include-pac TRUE }.
        let pac = der::seq(&[der::ctx(0, der::tlv(0x01, &[0xFF]))]);
        der::seq(&[der::seq(&[
            der::ctx(1, der::int(128)),
            der::ctx(2, der::octets(&pac)),
        ])])
    };
    let (app, msg_type) = if tgs { (12, 12) } else { (10, 10) };
    der::app(
        app,
        der::seq(&[
            der::ctx(1, der::int(5)),
            der::ctx(2, der::int(msg_type)),
            der::ctx(3, padata),
            der::ctx(4, der::seq(&body)),
        ]),
    )
}

/// An AS-REP (`tgs == false`) or TGS-REP (RFC 4120 §5.4.2), DER.
pub fn krb_reply(rng: &mut XorShift, k: &KrbSpec<'_>, tgs: bool) -> Vec<u8> {
    let (app, msg_type) = if tgs { (13, 13) } else { (11, 11) };
    der::app(
        app,
        der::seq(&[
            der::ctx(0, der::int(5)),
            der::ctx(1, der::int(msg_type)),
            der::ctx(3, der::general_string(k.realm)),
            der::ctx(4, principal(1, &[k.cname])),
            der::ctx(5, ticket(rng, k.realm, k.sname, k.ticket_etype)),
            der::ctx(6, encrypted_data(rng, k.reply_etype, Some(1), 200)),
        ]),
    )
}

/// A KRB-ERROR (RFC 4120 §5.9.1) with `error_code`, DER.
pub fn krb_error(k: &KrbSpec<'_>, error_code: i64) -> Vec<u8> {
    der::app(
        30,
        der::seq(&[
            der::ctx(0, der::int(5)),
            der::ctx(1, der::int(30)),
            der::ctx(4, generalized_time(k.now.secs())),
            der::ctx(5, der::int(0)),
            der::ctx(6, der::int(error_code)),
            der::ctx(9, der::general_string(k.realm)),
            der::ctx(10, principal(2, k.sname)),
        ]),
    )
}

/// A DNS query (RFC 1035) for `name` of type `qtype`.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len().min(63) as u8);
        m.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// The answer to [`dns_query`] with one A record (compressed name pointer).
pub fn dns_answer(query: &[u8], addr: Ipv4Addr) -> Vec<u8> {
    let mut m = query.to_vec();
    if m.len() >= 12 {
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 1;
    }
    m.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4]);
    m.extend_from_slice(&addr.octets());
    m
}

/// Kinds and amounts of synthetic traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficMix {
    /// Generator seed.
    pub seed: u64,
    /// First packet time.
    pub start: Timestamp,
    /// Complete TLS sessions (handshake, certificate, some application data, close).
    pub tls_sessions: usize,
    /// Kerberos AS + TGS exchanges over UDP.
    pub kerberos_exchanges: usize,
    /// DNS query/answer pairs.
    pub dns_queries: usize,
    /// Ports probed by one SYN scan (closed ports answer RST).
    pub port_scan_ports: usize,
    /// Spoofed SYNs of a SYN flood.
    pub syn_flood_packets: usize,
    /// Concurrent bulk TCP flows.
    pub bulk_flows: usize,
    /// Data packets per bulk flow (64–1500 bytes on the wire).
    pub bulk_packets_per_flow: usize,
}

impl Default for TrafficMix {
    fn default() -> Self {
        TrafficMix {
            seed: 1,
            start: Timestamp(1_700_000_000_000_000),
            tls_sessions: 20,
            kerberos_exchanges: 10,
            dns_queries: 50,
            port_scan_ports: 200,
            syn_flood_packets: 200,
            bulk_flows: 10,
            bulk_packets_per_flow: 100,
        }
    }
}

impl TrafficMix {
    /// A mix of roughly `packets` packets dominated by bulk data, with every kind present;
    /// used for throughput measurements.
    pub fn benchmark(packets: usize) -> Self {
        let bulk = packets * 7 / 10;
        TrafficMix {
            seed: 42,
            tls_sessions: (packets / 200).max(1),
            kerberos_exchanges: (packets / 400).max(1),
            dns_queries: (packets / 100).max(1),
            port_scan_ports: (packets / 40).max(1),
            syn_flood_packets: (packets / 20).max(1),
            bulk_flows: (bulk / 500).max(1),
            bulk_packets_per_flow: 500,
            ..TrafficMix::default()
        }
    }
}

/// What a synthesizer wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Frames written.
    pub packets: u64,
    /// Frame bytes written.
    pub bytes: u64,
    /// TCP connections opened with a handshake.
    pub tcp_connections: u64,
    /// UDP request/response pairs.
    pub udp_exchanges: u64,
}

/// A TCP connection in progress.
#[derive(Clone, Copy, Debug)]
pub struct TcpConn {
    /// Client address.
    pub client: [u8; 4],
    /// Server address.
    pub server: [u8; 4],
    /// Client port.
    pub cport: u16,
    /// Server port.
    pub sport: u16,
    /// Next client sequence number.
    pub cseq: u32,
    /// Next server sequence number.
    pub sseq: u32,
}

/// Writes synthetic conversations into a pcap.
pub struct Synth<W: Write> {
    out: W,
    rng: XorShift,
    ts: Timestamp,
    summary: SynthSummary,
}

/// Maximum TCP payload per synthetic segment.
const MSS: usize = 1446;

impl<W: Write> Synth<W> {
    /// Starts a pcap (Ethernet, microseconds) on `out`.
    pub fn new(mut out: W, seed: u64, start: Timestamp) -> io::Result<Self> {
        write_pcap_header(&mut out, crate::decode::linktype::ETHERNET, 65_535)?;
        Ok(Synth {
            out,
            rng: XorShift::new(seed),
            ts: start,
            summary: SynthSummary::default(),
        })
    }

    /// The generator, for callers building their own payloads.
    pub fn rng(&mut self) -> &mut XorShift {
        &mut self.rng
    }

    /// Current packet time.
    pub fn now(&self) -> Timestamp {
        self.ts
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, micros: i64) {
        self.ts = Timestamp(self.ts.0 + micros);
    }

    /// Writes one frame at the current time and advances the clock a little.
    pub fn frame(&mut self, data: &[u8]) -> io::Result<()> {
        write_pcap_record(&mut self.out, self.ts, data, data.len() as u32)?;
        self.summary.packets += 1;
        self.summary.bytes += data.len() as u64;
        let step = self.rng.range(5, 200) as i64;
        self.advance(step);
        Ok(())
    }

    /// SYN, SYN-ACK, ACK.
    pub fn tcp_open(
        &mut self,
        client: [u8; 4],
        server: [u8; 4],
        cport: u16,
        sport: u16,
    ) -> io::Result<TcpConn> {
        let cisn = self.rng.next_u64() as u32;
        let sisn = self.rng.next_u64() as u32;
        self.frame(&build::eth_ipv4_tcp(
            client, server, cport, sport, cisn, 0, SYN, b"",
        ))?;
        self.frame(&build::eth_ipv4_tcp(
            server,
            client,
            sport,
            cport,
            sisn,
            cisn.wrapping_add(1),
            SYN | ACK,
            b"",
        ))?;
        self.frame(&build::eth_ipv4_tcp(
            client,
            server,
            cport,
            sport,
            cisn.wrapping_add(1),
            sisn.wrapping_add(1),
            ACK,
            b"",
        ))?;
        self.summary.tcp_connections += 1;
        Ok(TcpConn {
            client,
            server,
            cport,
            sport,
            cseq: cisn.wrapping_add(1),
            sseq: sisn.wrapping_add(1),
        })
    }

    /// Sends `data` in MSS-sized segments, from the client when `to_server`.
    pub fn tcp_send(&mut self, c: &mut TcpConn, to_server: bool, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MSS) {
            let f = if to_server {
                build::eth_ipv4_tcp(
                    c.client,
                    c.server,
                    c.cport,
                    c.sport,
                    c.cseq,
                    c.sseq,
                    ACK | PSH,
                    chunk,
                )
            } else {
                build::eth_ipv4_tcp(
                    c.server,
                    c.client,
                    c.sport,
                    c.cport,
                    c.sseq,
                    c.cseq,
                    ACK | PSH,
                    chunk,
                )
            };
            self.frame(&f)?;
            if to_server {
                c.cseq = c.cseq.wrapping_add(chunk.len() as u32);
            } else {
                c.sseq = c.sseq.wrapping_add(chunk.len() as u32);
            }
        }
        Ok(())
    }

    /// FIN from both sides and the final ACK.
    pub fn tcp_close(&mut self, c: &mut TcpConn) -> io::Result<()> {
        self.frame(&build::eth_ipv4_tcp(
            c.client,
            c.server,
            c.cport,
            c.sport,
            c.cseq,
            c.sseq,
            FIN | ACK,
            b"",
        ))?;
        c.cseq = c.cseq.wrapping_add(1);
        self.frame(&build::eth_ipv4_tcp(
            c.server,
            c.client,
            c.sport,
            c.cport,
            c.sseq,
            c.cseq,
            FIN | ACK,
            b"",
        ))?;
        c.sseq = c.sseq.wrapping_add(1);
        self.frame(&build::eth_ipv4_tcp(
            c.client, c.server, c.cport, c.sport, c.cseq, c.sseq, ACK, b"",
        ))
    }

    /// A TLS 1.2 session: handshake with SNI and certificate, a little application data.
    pub fn tls_session(
        &mut self,
        client: [u8; 4],
        server: [u8; 4],
        cport: u16,
        sni: &str,
    ) -> io::Result<()> {
        let mut c = self.tcp_open(client, server, cport, 443)?;
        let hello = tls_client_hello(&mut self.rng, sni);
        self.tcp_send(&mut c, true, &hello)?;
        let now = self.ts;
        let flight = tls_server_flight(&mut self.rng, sni, now);
        self.tcp_send(&mut c, false, &flight)?;
        let mut cke = handshake(16, &{
            let mut k = vec![32u8];
            k.extend(self.rng.bytes(32));
            k
        });
        cke = tls_records(22, 0x0303, &cke);
        cke.extend(tls_records(20, 0x0303, &[1]));
        cke.extend(tls_records(22, 0x0303, &self.rng.bytes(40)));
        self.tcp_send(&mut c, true, &cke)?;
        let mut fin = tls_records(20, 0x0303, &[1]);
        fin.extend(tls_records(22, 0x0303, &self.rng.bytes(40)));
        self.tcp_send(&mut c, false, &fin)?;
        let req = tls_records(23, 0x0303, &self.rng.bytes(400));
        self.tcp_send(&mut c, true, &req)?;
        let n = self.rng.range(500, 6000) as usize;
        let resp = tls_records(23, 0x0303, &self.rng.bytes(n));
        self.tcp_send(&mut c, false, &resp)?;
        self.tcp_close(&mut c)
    }

    /// A UDP request and its response.
    pub fn udp_exchange(
        &mut self,
        client: [u8; 4],
        server: [u8; 4],
        cport: u16,
        sport: u16,
        req: &[u8],
        resp: &[u8],
    ) -> io::Result<()> {
        self.frame(&build::eth_ipv4_udp(client, server, cport, sport, req))?;
        self.frame(&build::eth_ipv4_udp(server, client, sport, cport, resp))?;
        self.summary.udp_exchanges += 1;
        Ok(())
    }

    /// Kerberos over UDP/88: AS-REQ/AS-REP for `user`, then TGS-REQ/TGS-REP for `service`
    /// (whose ticket uses `ticket_etype`, e.g. 23 = rc4-hmac as in Kerberoasting).
    pub fn kerberos_exchange(
        &mut self,
        client: [u8; 4],
        kdc: [u8; 4],
        realm: &str,
        user: &str,
        service: &[&str],
        ticket_etype: i64,
    ) -> io::Result<()> {
        let krbtgt = ["krbtgt", realm];
        let mut k = KrbSpec {
            realm,
            cname: user,
            sname: &krbtgt,
            etypes: &[18, 17, 23],
            ticket_etype: 18,
            reply_etype: 18,
            now: self.ts,
        };
        let cport = self.rng.range(49_152, 65_000) as u16;
        let req = krb_request(&mut self.rng, &k, false);
        let rep = krb_reply(&mut self.rng, &k, false);
        self.udp_exchange(client, kdc, cport, 88, &req, &rep)?;
        k.sname = service;
        k.ticket_etype = ticket_etype;
        let req = krb_request(&mut self.rng, &k, true);
        let rep = krb_reply(&mut self.rng, &k, true);
        let cport = self.rng.range(49_152, 65_000) as u16;
        self.udp_exchange(client, kdc, cport, 88, &req, &rep)
    }

    /// A DNS lookup of `name` over UDP/53 with one A answer.
    pub fn dns_lookup(&mut self, client: [u8; 4], server: [u8; 4], name: &str) -> io::Result<()> {
        let id = self.rng.next_u64() as u16;
        let q = dns_query(id, name, 1);
        let a = dns_answer(&q, Ipv4Addr::new(192, 0, 2, (id % 250) as u8 + 1));
        let cport = self.rng.range(49_152, 65_000) as u16;
        self.udp_exchange(client, server, cport, 53, &q, &a)
    }

    /// A SYN scan of `ports` ports starting at 1: closed ports answer RST-ACK, every tenth
    /// is open and answers SYN-ACK (then the scanner resets).
    pub fn port_scan(&mut self, scanner: [u8; 4], target: [u8; 4], ports: usize) -> io::Result<()> {
        let sport = self.rng.range(40_000, 60_000) as u16;
        for p in 1..=ports.min(65_535) as u16 {
            let seq = self.rng.next_u64() as u32;
            self.frame(&build::eth_ipv4_tcp(
                scanner, target, sport, p, seq, 0, SYN, b"",
            ))?;
            if p % 10 == 0 {
                let sseq = self.rng.next_u64() as u32;
                self.frame(&build::eth_ipv4_tcp(
                    target,
                    scanner,
                    p,
                    sport,
                    sseq,
                    seq.wrapping_add(1),
                    SYN | ACK,
                    b"",
                ))?;
                self.frame(&build::eth_ipv4_tcp(
                    scanner,
                    target,
                    sport,
                    p,
                    seq.wrapping_add(1),
                    0,
                    RST,
                    b"",
                ))?;
            } else {
                self.frame(&build::eth_ipv4_tcp(
                    target,
                    scanner,
                    p,
                    sport,
                    0,
                    seq.wrapping_add(1),
                    RST | ACK,
                    b"",
                ))?;
            }
        }
        Ok(())
    }

    /// `count` SYNs from random spoofed sources to `target:port`.
    pub fn syn_flood(&mut self, target: [u8; 4], port: u16, count: usize) -> io::Result<()> {
        for _ in 0..count {
            let r = self.rng.next_u64();
            let src = [
                (r >> 24) as u8 | 1,
                (r >> 32) as u8,
                (r >> 40) as u8,
                (r >> 48) as u8,
            ];
            self.frame(&build::eth_ipv4_tcp(
                src,
                target,
                (r & 0xFFFF) as u16 | 1024,
                port,
                (r >> 16) as u32,
                0,
                SYN,
                b"",
            ))?;
            self.ts = Timestamp(self.ts.0 - self.rng.range(0, 150) as i64);
        }
        Ok(())
    }

    /// `flows` concurrent TCP transfers, interleaved, each with `packets` server-to-client data
    /// segments of 64–1500 bytes on the wire plus client ACKs every other segment.
    pub fn bulk(
        &mut self,
        client_base: [u8; 4],
        server: [u8; 4],
        flows: usize,
        packets: usize,
    ) -> io::Result<()> {
        let mut conns = Vec::with_capacity(flows);
        for i in 0..flows {
            let client = [
                client_base[0],
                client_base[1],
                (i >> 8) as u8,
                (i & 0xFF) as u8 | 1,
            ];
            conns.push(self.tcp_open(client, server, 30_000 + (i % 30_000) as u16, 8080)?);
        }
        let mut payload = vec![0u8; 1500];
        for n in 0..packets {
            for c in conns.iter_mut() {
                // Wire size 64..=1500 → TCP payload 10..=1446 (54 bytes of headers).
                let wire = self.rng.range(64, 1500) as usize;
                let len = wire - 54;
                let fill = (self.rng.next_u64() & 0xFF) as u8;
                payload[..len].fill(fill);
                let f = build::eth_ipv4_tcp(
                    c.server,
                    c.client,
                    c.sport,
                    c.cport,
                    c.sseq,
                    c.cseq,
                    ACK,
                    &payload[..len],
                );
                self.frame(&f)?;
                c.sseq = c.sseq.wrapping_add(len as u32);
                if n % 2 == 1 {
                    let a = build::eth_ipv4_tcp(
                        c.client, c.server, c.cport, c.sport, c.cseq, c.sseq, ACK, b"",
                    );
                    self.frame(&a)?;
                }
            }
        }
        for c in conns.iter_mut() {
            self.tcp_close(c)?;
        }
        Ok(())
    }

    /// Flushes and returns the counts.
    pub fn finish(mut self) -> io::Result<SynthSummary> {
        self.out.flush()?;
        Ok(self.summary)
    }
}

/// Writes a whole traffic mix as one pcap.
pub fn write_mix<W: Write>(out: W, mix: &TrafficMix) -> io::Result<SynthSummary> {
    let mut s = Synth::new(out, mix.seed, mix.start)?;
    let client = [10, 1, 0, 10];
    for i in 0..mix.tls_sessions {
        let sni = format!("www{}.example.test", i % 97);
        let c = [10, 1, (i >> 8) as u8, (i & 0xFF) as u8 | 2];
        let port = 40_000 + (i % 20_000) as u16;
        s.tls_session(c, [198, 51, 100, 10], port, &sni)?;
    }
    for i in 0..mix.kerberos_exchanges {
        let user = format!("user{i}");
        let etype = if i % 5 == 0 { 23 } else { 18 };
        s.kerberos_exchange(
            client,
            [10, 1, 0, 2],
            "EXAMPLE.TEST",
            &user,
            &["cifs", "fs1.example.test"],
            etype,
        )?;
    }
    for i in 0..mix.dns_queries {
        s.dns_lookup(client, [10, 1, 0, 3], &format!("host{i}.example.test"))?;
    }
    if mix.port_scan_ports > 0 {
        s.port_scan([10, 9, 9, 9], [10, 1, 0, 20], mix.port_scan_ports)?;
    }
    if mix.syn_flood_packets > 0 {
        s.syn_flood([10, 1, 0, 30], 80, mix.syn_flood_packets)?;
    }
    if mix.bulk_flows > 0 {
        s.bulk(
            [10, 2, 0, 0],
            [10, 1, 0, 40],
            mix.bulk_flows,
            mix.bulk_packets_per_flow,
        )?;
    }
    s.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::decode::{decode, linktype};
    use crate::source::PcapFileSource;
    use netmonitor_common::der::read_tlv;

    #[test]
    fn checksums_verify() {
        let f = build::eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 3, 4, ACK, b"odd");
        assert_eq!(build::checksum(&[&f[14..34]]), 0);
        let tcp = &f[34..];
        let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6];
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        assert_eq!(build::checksum(&[&pseudo, tcp]), 0);
    }

    #[test]
    fn der_structures_parse() {
        let mut rng = XorShift::new(7);
        let cert = x509_certificate(&mut rng, "a.example.test", Timestamp(1_700_000_000_000_000));
        let (tlv, rest) = read_tlv(&cert).unwrap();
        assert!(rest.is_empty());
        assert_eq!(tlv.children().count(), 3);
        let spec = KrbSpec {
            realm: "EXAMPLE.TEST",
            cname: "alice",
            sname: &["krbtgt", "EXAMPLE.TEST"],
            etypes: &[18, 23],
            ticket_etype: 23,
            reply_etype: 18,
            now: Timestamp(1_700_000_000_000_000),
        };
        for (msg, app) in [
            (krb_request(&mut rng, &spec, false), 10),
            (krb_request(&mut rng, &spec, true), 12),
            (krb_reply(&mut rng, &spec, false), 11),
            (krb_reply(&mut rng, &spec, true), 13),
            (krb_error(&spec, 25), 30),
        ] {
            let (tlv, rest) = read_tlv(&msg).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.class, netmonitor_common::der::CLASS_APPLICATION);
            assert_eq!(tlv.tag, app);
        }
        assert_eq!(der::int(128), vec![2, 2, 0, 128]);
        assert_eq!(der::int(-1), vec![2, 1, 0xFF]);
        assert_eq!(der::int(5), vec![2, 1, 5]);
    }

    #[test]
    fn mix_is_reproducible_and_decodes() {
        let mix = TrafficMix::default();
        let mut a = Vec::new();
        let sa = write_mix(&mut a, &mix).unwrap();
        let mut b = Vec::new();
        write_mix(&mut b, &mix).unwrap();
        assert_eq!(a, b);
        let mut src = PcapFileSource::new(io::Cursor::new(a)).unwrap();
        let mut n = 0;
        while let Some(p) = src.next_packet().unwrap() {
            let d = decode(linktype::ETHERNET, p.data).unwrap();
            assert!(d.proto == 6 || d.proto == 17);
            assert!(
                (60..=1500).contains(&p.data.len()) || p.data.len() < 60,
                "{}",
                p.data.len()
            );
            n += 1;
        }
        assert_eq!(n, sa.packets);
        assert!(sa.tcp_connections >= 30);
    }

    /// tshark, when installed, must see our TLS SNI and Kerberos names.
    #[test]
    fn tshark_understands_synthetic_protocols() {
        if std::process::Command::new("tshark")
            .arg("-v")
            .output()
            .is_err()
        {
            eprintln!("tshark not installed; skipping");
            return;
        }
        let mix = TrafficMix {
            tls_sessions: 2,
            kerberos_exchanges: 1,
            dns_queries: 1,
            port_scan_ports: 0,
            syn_flood_packets: 0,
            bulk_flows: 0,
            ..TrafficMix::default()
        };
        let path = std::env::temp_dir().join(format!("nm-synth-{}.pcap", std::process::id()));
        write_mix(std::fs::File::create(&path).unwrap(), &mix).unwrap();
        let out = std::process::Command::new("tshark")
            .args(["-r"])
            .arg(&path)
            .args([
                "-T",
                "fields",
                "-e",
                "tls.handshake.extensions_server_name",
                "-e",
                "x509sat.uTF8String",
                "-e",
                "kerberos.CNameString",
                "-e",
                "kerberos.msg_type",
                "-e",
                "dns.qry.name",
                "-e",
                "_ws.expert",
            ])
            .env("HOME", std::env::temp_dir())
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("www0.example.test"), "{text}");
        assert!(text.contains("www1.example.test"), "{text}");
        assert!(text.contains("NetMonitor Synthetic CA"), "{text}");
        assert!(text.contains("user0"), "{text}");
        for t in ["10", "11", "12", "13"] {
            assert!(
                text.lines().any(|l| l
                    .split('\t')
                    .nth(3)
                    .is_some_and(|f| f.split(',').any(|x| x == t))),
                "krb msg {t} missing: {text}"
            );
        }
        assert!(text.contains("host0.example.test"), "{text}");
        assert!(!text.to_lowercase().contains("malformed"), "{text}");
    }
}

/// Random traffic on well-known ports: `packets` packets over `flows` flows between random
/// hosts of 10/8 and 192.168/16, to ports 443, 80, 53, 88, 22, 8443 and 3389; three quarters
/// TCP (PSH/ACK segments without a handshake, sequence numbers advancing per packet), one
/// quarter UDP; frame sizes 60/128/576/1514 in the ratio 4:1:1:4; random payloads. The payloads
/// look like nothing the dissectors know, on the ports where they look hardest.
pub fn write_random_mix<W: Write>(
    out: W,
    packets: usize,
    flows: usize,
    seed: u64,
) -> io::Result<SynthSummary> {
    const PORTS: [u16; 7] = [443, 80, 53, 88, 22, 8443, 3389];
    const SIZES: [usize; 10] = [60, 60, 60, 60, 128, 576, 1514, 1514, 1514, 1514];
    let mut s = Synth::new(out, seed, Timestamp::from_secs_micros(1_700_000_000, 0))?;
    let mut rng = XorShift::new(seed ^ 0x9e37_79b9);
    struct F {
        a: [u8; 4],
        b: [u8; 4],
        sport: u16,
        dport: u16,
        tcp: bool,
        /// Next sequence number per direction (client, server).
        seq: [u32; 2],
    }
    let flows = flows.max(1);
    let mut table: Vec<F> = (0..flows)
        .map(|i| {
            let host = |r: &mut XorShift| {
                let v = r.next_u64();
                if v & 1 == 0 {
                    [10, (v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8 | 1]
                } else {
                    [192, 168, (v >> 8) as u8, (v >> 16) as u8 | 1]
                }
            };
            F {
                a: host(&mut rng),
                b: host(&mut rng),
                sport: 1024 + (rng.next_u64() % 60_000) as u16,
                dport: PORTS[i % PORTS.len()],
                tcp: i % 4 != 0,
                seq: [rng.next_u64() as u32, rng.next_u64() as u32],
            }
        })
        .collect();
    let mut payload = vec![0u8; 1514];
    for i in 0..packets {
        let f = &mut table[(rng.next_u64() as usize) % flows];
        let frame_len = SIZES[i % SIZES.len()];
        let headers = if f.tcp { 14 + 20 + 20 } else { 14 + 20 + 8 };
        let n = frame_len.saturating_sub(headers);
        rng.fill(&mut payload[..n]);
        let frame = if f.tcp {
            let to_server = rng.next_u64() & 3 != 0;
            let (src, dst, sp, dp) = if to_server {
                (f.a, f.b, f.sport, f.dport)
            } else {
                (f.b, f.a, f.dport, f.sport)
            };
            let d = usize::from(!to_server);
            let (seq, ack) = (f.seq[d], f.seq[1 - d]);
            f.seq[d] = seq.wrapping_add(n as u32);
            build::eth_ipv4_tcp(src, dst, sp, dp, seq, ack, ACK | PSH, &payload[..n])
        } else {
            build::eth_ipv4_udp(f.a, f.b, f.sport, f.dport, &payload[..n])
        };
        s.frame(&frame)?;
    }
    s.finish()
}
