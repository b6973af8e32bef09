//! TLS and QUIC dissection for NetMonitor: reassembled TCP stream bytes (or QUIC datagrams) in,
//! [`netmonitor_common::TlsHandshake`] events and detections out.
//!
//! Everything here is pure code (no actix, no I/O), so that it can be fuzzed and tested alone:
//! - [`parser`]: TLS records and handshake messages (ClientHello, ServerHello, Certificate);
//! - [`ja3`], [`ja4`]: the client/server fingerprints as Suricata and FoxIO compute them;
//! - [`x509`]: the certificate facts EVE logs (subject, issuer, serial, SHA-1, validity, SANs);
//! - [`flow`]: per-TCP-flow state ([`TlsFlowParser`]) with bounded buffering and anomaly counts;
//! - [`quic`]: QUIC Initial decryption (v1, v2, draft-29) and CRYPTO reassembly;
//! - [`detect`]: weak TLS, certificate problems and JA3 blocklist matches as alerts.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod actor;
pub mod detect;
pub mod flow;
pub mod ja3;
pub mod ja4;
pub mod live;
pub mod parser;
pub mod quic;
mod text;
pub mod x509;

pub use flow::{TlsAnomalies, TlsFlowParser};
pub use parser::{looks_like_tls, looks_like_tunnel_request};
pub use quic::{looks_like_quic_initial, QuicFlowParser};

use netmonitor_common::{Fingerprint, TlsHandshake};
use parser::{is_grease, version, ClientHello};

/// The version Suricata attributes to a client from its ClientHello: the first version it knows
/// in supported_versions, else the hello's version field (TLS 1.3 pre-draft-16 values folded).
pub fn client_offered_version(ch: &ClientHello<'_>) -> u16 {
    ch.supported_versions_iter()
        .find(|v| version::is_known(*v))
        .unwrap_or_else(|| version::from_legacy_field(ch.legacy_version))
}

/// Fills the client-side fields of `hs` from a parsed ClientHello (shared by TCP and QUIC).
pub fn apply_client_hello(hs: &mut TlsHandshake, ch: &ClientHello<'_>, transport: ja4::Transport) {
    hs.sni = ch.sni();
    hs.client_version = Some(ch.legacy_version);
    hs.supported_versions = ch
        .supported_versions_iter()
        .filter(|v| !is_grease(*v))
        .collect();
    hs.cipher_suites = ch
        .cipher_suites
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    hs.alpn_offered = ch
        .alpn_names()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    hs.ja3 = Some(ja3::ja3(ch));
    hs.ja4 = Some(ja4::ja4(ch, transport));
}

/// What the front of a handshake stream holds, for [`fingerprint_client_hello`].
enum HelloStart<'a> {
    /// A complete ClientHello message: its body.
    Complete(&'a [u8]),
    /// A ClientHello whose body has not all arrived.
    Partial,
    /// Not a ClientHello, or too short to tell.
    Other,
}

fn hello_start(msg: &[u8]) -> HelloStart<'_> {
    let mut r = parser::Reader::new(msg);
    let (Ok(typ), Ok(len)) = (r.u8("type"), r.u24("length")) else {
        return HelloStart::Other;
    };
    if typ != parser::handshake_type::CLIENT_HELLO {
        return HelloStart::Other;
    }
    match r.bytes(len, "body") {
        Ok(body) => HelloStart::Complete(body),
        Err(_) => HelloStart::Partial,
    }
}

/// Fingerprints the ClientHello carried by `record_bytes` (one or more TLS records starting
/// with a handshake record, as on the wire): its JA3 and JA4. Meant for benchmarks and tools
/// that measure the per-handshake cost without the flow machinery.
pub fn fingerprint_client_hello(record_bytes: &[u8]) -> Option<(Fingerprint, String)> {
    let fingerprints = |body: &[u8]| {
        let ch = parser::parse_client_hello(body).ok()?;
        Some((ja3::ja3(&ch), ja4::ja4(&ch, ja4::Transport::Tcp)))
    };
    // The bodies of the leading handshake records, concatenated only when the message spans
    // records (the common single-record hello is read in place).
    let mut msg: Vec<u8> = Vec::new();
    let mut rest = record_bytes;
    loop {
        let header = parser::parse_record_header(rest).ok()?;
        if header.content_type != parser::content_type::HANDSHAKE {
            return None;
        }
        let end = parser::RECORD_HEADER_LEN.checked_add(header.length)?;
        let fragment = rest.get(parser::RECORD_HEADER_LEN..end)?;
        rest = rest.get(end..)?;
        let in_place = msg.is_empty();
        if !in_place {
            msg.extend_from_slice(fragment);
        }
        match hello_start(if in_place { fragment } else { &msg }) {
            HelloStart::Complete(body) => return fingerprints(body),
            HelloStart::Other => return None,
            HelloStart::Partial => {}
        }
        if in_place {
            msg.extend_from_slice(fragment);
        }
        if rest.is_empty() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_segment(seg: &[u8]) -> &[u8] {
        let n = u32::from_be_bytes([seg[0], seg[1], seg[2], seg[3]]) as usize;
        &seg[4..4 + n]
    }

    #[test]
    fn fingerprint_of_a_client_hello_record_even_when_split() {
        // FoxIO's tls12.pcap: one Firefox ClientHello in one record.
        let record = first_segment(include_bytes!("../testdata/ja4_tls12_single.c2s.seg"));
        let (ja3, ja4) = fingerprint_client_hello(record).expect("a ClientHello");
        assert_eq!(ja4, "t13d1715h2_5b57614c22b0_3d5424432f57");
        assert_eq!(ja3.hash.len(), 32);
        assert!(
            ja3.string.starts_with("771,4865-4867-4866-"),
            "{}",
            ja3.string
        );

        // The same message split over two records.
        let body = &record[5..];
        let (a, b) = body.split_at(100);
        let mut split = vec![0x16, 0x03, 0x01, 0x00, a.len() as u8];
        split.extend_from_slice(a);
        split.extend_from_slice(&[0x16, 0x03, 0x01]);
        split.extend_from_slice(&(b.len() as u16).to_be_bytes());
        split.extend_from_slice(b);
        assert_eq!(fingerprint_client_hello(&split), Some((ja3, ja4)));

        assert_eq!(fingerprint_client_hello(&record[..200]), None);
        assert_eq!(fingerprint_client_hello(b"GET / HTTP/1.1\r\n"), None);
    }
}
