//! Flow-parser tests on real stream bytes extracted from the oracle pcaps
//! (`tshark -z follow,tcp,raw`, kept segment by segment in `testdata/*.seg`), asserting the
//! values the upstream suites expect.

use super::*;
use netmonitor_common::time::format_utc;

/// Splits a `.seg` fixture (u32 big-endian length + bytes, per TCP segment) into segments.
fn segments(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        out.push(rest[4..4 + n].to_vec());
        rest = &rest[4 + n..];
    }
    out
}

fn concat(segs: &[Vec<u8>]) -> Vec<u8> {
    segs.concat()
}

/// Feeds the client's first segment, then the whole server side, then the client's rest —
/// the order the bytes travel in a full handshake — collecting every event.
fn run(c2s: &[u8], s2c: &[u8]) -> (TlsFlowParser, Vec<TlsHandshake>) {
    let c = segments(c2s);
    let s = segments(s2c);
    let mut p = TlsFlowParser::new();
    let mut events = Vec::new();
    let feed = |p: &mut TlsFlowParser, dir, seg: &[u8], events: &mut Vec<TlsHandshake>| {
        p.feed(dir, seg);
        events.extend(p.poll_event());
    };
    // The client's segments up to its hello (a proxy preamble may come first).
    let mut next = 0;
    while next < c.len() && !(p.client_hello_seen || p.anomalies.sslv2 > 0) {
        feed(&mut p, Direction::ToServer, &c[next], &mut events);
        next += 1;
    }
    for seg in &s {
        feed(&mut p, Direction::ToClient, seg, &mut events);
    }
    for seg in &c[next..] {
        feed(&mut p, Direction::ToServer, seg, &mut events);
    }
    events.extend(p.finish());
    (p, events)
}

fn only_event(c2s: &[u8], s2c: &[u8]) -> (TlsFlowParser, TlsHandshake) {
    let (p, mut events) = run(c2s, s2c);
    assert_eq!(events.len(), 1, "exactly one event per flow");
    (p, events.remove(0))
}

const SELKS_C2S: &[u8] = include_bytes!("../../testdata/ja4_tls_selks.c2s.seg");
const SELKS_S2C: &[u8] = include_bytes!("../../testdata/ja4_tls_selks.s2c.seg");
const DRAFT22_C2S: &[u8] = include_bytes!("../../testdata/tls13_draft22.c2s.seg");
const DRAFT22_S2C: &[u8] = include_bytes!("../../testdata/tls13_draft22.s2c.seg");
const CERTS_C2S: &[u8] = include_bytes!("../../testdata/tls_certs_alert.c2s.seg");
const CERTS_S2C: &[u8] = include_bytes!("../../testdata/tls_certs_alert.s2c.seg");
const GLUPTEBA_C2S: &[u8] = include_bytes!("../../testdata/glupteba.c2s.seg");
const GLUPTEBA_S2C: &[u8] = include_bytes!("../../testdata/glupteba.s2c.seg");
const SOCKS_C2S: &[u8] = include_bytes!("../../testdata/socks_https.c2s.seg");
const SOCKS_S2C: &[u8] = include_bytes!("../../testdata/socks_https.s2c.seg");
const ALPN_H2_C2S: &[u8] = include_bytes!("../../testdata/tls_alpn_h2.c2s.seg");
const ALPN_H2_S2C: &[u8] = include_bytes!("../../testdata/tls_alpn_h2.s2c.seg");
const SINGLE_C2S: &[u8] = include_bytes!("../../testdata/ja4_tls12_single.c2s.seg");
const ZEEK_C2S: &[u8] = include_bytes!("../../testdata/zeek_tls12.c2s.seg");
const ZEEK_S2C: &[u8] = include_bytes!("../../testdata/zeek_tls12.s2c.seg");
const RESUMED_C2S: &[u8] = include_bytes!("../../testdata/selks_resumed.c2s.seg");
const RESUMED_S2C: &[u8] = include_bytes!("../../testdata/selks_resumed.s2c.seg");

#[test]
fn selks_tls12_without_sni() {
    // suricata-verify ja4-tls and bug-7286-tls-metadata-01.
    let (p, hs) = only_event(SELKS_C2S, SELKS_S2C);
    assert_eq!(
        hs.ja4.as_deref(),
        Some("t12i1810s1_27d4652c4487_06a4338d0495")
    );
    assert_eq!(hs.sni, None);
    assert_eq!(hs.version.as_deref(), Some("TLS 1.2"));
    assert_eq!(
        hs.alpn_offered,
        vec!["spdy/3.1".to_owned(), "http/1.1".to_owned()]
    );
    let leaf = hs.certificates.first().expect("leaf certificate");
    assert_eq!(leaf.subject, "C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS");
    assert_eq!(leaf.issuer, "C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS");
    assert_eq!(leaf.serial, "00:97:E6:47:09:8E:EA:C9:B4");
    assert_eq!(
        leaf.fingerprint,
        "3a:0b:3b:23:15:2c:44:5c:27:ac:6a:0c:41:d6:fa:74:af:b4:09:5b"
    );
    assert_eq!(format_utc(leaf.not_before), "2015-02-12T18:07:27");
    assert_eq!(format_utc(leaf.not_after), "2025-02-09T18:07:27");
    assert!(leaf.self_signed);
    assert_eq!(leaf.key_type.as_deref(), Some("RSA"));
    assert!(!p.roles_swapped());
    assert!(p.is_done());
    assert!(!p.anomalies().any());
}

#[test]
fn tls13_draft22_with_two_client_hellos_gives_one_event() {
    let (p, hs) = only_event(DRAFT22_C2S, DRAFT22_S2C);
    assert_eq!(hs.sni.as_deref(), Some("localhost"));
    assert_eq!(hs.version.as_deref(), Some("TLS 1.3 draft-22"));
    let ja3 = hs.ja3.expect("ja3");
    assert_eq!(ja3.string, "771,4865-4867,0-43-13-10-40,23,");
    assert_eq!(ja3.hash, "786468211b4d23f9b725987b0de9d090");
    assert!(p.is_done());

    // Both ClientHellos before any server byte: the second is counted, not fingerprinted.
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &concat(&segments(DRAFT22_C2S)));
    assert_eq!(p.anomalies().extra_client_hellos, 1);
    p.feed(Direction::ToClient, &concat(&segments(DRAFT22_S2C)));
    let hs = p.poll_event().expect("event at the TLS 1.3 ServerHello");
    assert_eq!(
        hs.ja3.map(|f| f.hash).as_deref(),
        Some("786468211b4d23f9b725987b0de9d090")
    );
    assert!(p.poll_event().is_none());
    assert!(p.finish().is_none());
}

#[test]
fn ja3s_and_a_three_certificate_chain() {
    let (_, hs) = only_event(CERTS_C2S, CERTS_S2C);
    let ja3s = hs.ja3s.expect("ja3s");
    assert_eq!(ja3s.string, "771,49199,65281-0-11-16-23");
    assert_eq!(ja3s.hash, "5d79edf64e03689ff559a54e9d9487bc");
    assert_eq!(hs.cipher_selected, Some(49199));
    assert_eq!(hs.certificates.len(), 3);
    assert!(!hs.certificates[0].is_ca);
    assert!(hs.certificates[1].is_ca);
}

#[test]
fn sslv2_client_hello_then_tls1_server() {
    // suricata-verify tls-glupteba.
    let (p, hs) = only_event(GLUPTEBA_C2S, GLUPTEBA_S2C);
    assert_eq!(p.anomalies().sslv2, 1);
    assert_eq!(hs.version.as_deref(), Some("TLSv1"));
    assert_eq!(hs.client_version, Some(0x0301));
    assert!(
        hs.ja3.is_none(),
        "Suricata does not fingerprint SSLv2 hellos"
    );
    let leaf = hs.certificates.first().expect("leaf");
    assert_eq!(leaf.subject, "CN=xn--j1ahhq.xn--p1ai");
    assert_eq!(leaf.issuer, "C=US, O=Let's Encrypt, CN=R3");
    assert_eq!(
        leaf.serial,
        "03:DE:23:89:7E:97:FB:86:8E:7C:C5:53:09:FE:AE:D0:AE:20"
    );
    assert_eq!(
        leaf.fingerprint,
        "e9:a0:69:50:ba:18:dc:ac:d3:a7:fe:58:22:4a:1f:42:5b:bc:96:b0"
    );
    assert_eq!(format_utc(leaf.not_before), "2022-12-01T06:47:31");
    assert_eq!(format_utc(leaf.not_after), "2023-03-01T06:47:30");
    assert_eq!(leaf.sans.len(), 17);
    for n in 1..=16 {
        let want = format!("server{n}.xn--j1ahhq.xn--p1ai");
        assert!(leaf.sans.contains(&want), "{want}");
    }
    assert!(leaf.sans.contains(&"xn--j1ahhq.xn--p1ai".to_owned()));
}

#[test]
fn tls_after_a_socks4_preamble() {
    let (p, hs) = only_event(SOCKS_C2S, SOCKS_S2C);
    assert_eq!(
        hs.ja4.as_deref(),
        Some("t10d230100_6a57a6f57151_000000000000")
    );
    assert_eq!(hs.sni.as_deref(), Some("www.example.com"));
    let leaf = hs.certificates.first().expect("leaf");
    assert_eq!(
        leaf.subject,
        "C=US, ST=California, L=Santa Monica, O=EdgeCast Networks, Inc., CN=gp1.wac.edgecastcdn.net"
    );
    assert_eq!(
        leaf.issuer,
        "C=US, O=DigiCert Inc, OU=www.digicert.com, CN=DigiCert High Assurance CA-3"
    );
    // The 9-byte SOCKS4 request and the 8-byte reply were skipped.
    assert_eq!(p.anomalies().skipped_bytes, 17);
}

#[test]
fn alpn_h2_over_ipv6_with_ev_certificate() {
    let (_, hs) = only_event(ALPN_H2_C2S, ALPN_H2_S2C);
    assert_eq!(
        hs.ja4.as_deref(),
        Some("t12d4605h2_85626a9a5f7f_aaf95bb78ec9")
    );
    assert_eq!(hs.sni.as_deref(), Some("www.cloudflare.com"));
    assert_eq!(hs.alpn_selected.as_deref(), Some("h2"));
    let leaf = hs.certificates.first().expect("leaf");
    assert_eq!(
        leaf.issuer,
        "C=US, O=DigiCert Inc, OU=www.digicert.com, CN=DigiCert ECC Extended Validation Server CA"
    );
    // EV subject attributes print with x509-parser's names, in certificate order.
    assert!(
        leaf.subject
            .contains("businessCategory=Private Organization"),
        "{}",
        leaf.subject
    );
    assert!(
        leaf.subject.contains("msJurisdictionCountry=US"),
        "{}",
        leaf.subject
    );
    assert!(
        leaf.subject.contains("serialNumber=4710875"),
        "{}",
        leaf.subject
    );
    assert!(
        leaf.subject.ends_with("CN=cloudflare.com"),
        "{}",
        leaf.subject
    );
    assert_eq!(leaf.key_type.as_deref(), Some("EC"));
    assert_eq!(leaf.key_bits, Some(256));
}

#[test]
fn single_client_hello_comes_out_at_finish() {
    let mut p = TlsFlowParser::new();
    for seg in segments(SINGLE_C2S) {
        p.feed(Direction::ToServer, &seg);
    }
    assert!(p.poll_event().is_none());
    assert!(!p.is_done());
    let hs = p.finish().expect("event at flow end");
    assert_eq!(
        hs.ja4.as_deref(),
        Some("t13d1715h2_5b57614c22b0_3d5424432f57")
    );
    assert_eq!(hs.sni.as_deref(), Some("contile.services.mozilla.com"));
    // Only the ClientHello: the version is the one offered.
    assert_eq!(hs.version.as_deref(), Some("TLS 1.3"));
    assert!(p.finish().is_none());
}

#[test]
fn zeek_tls12_certificate_facts() {
    let (_, hs) = only_event(ZEEK_C2S, ZEEK_S2C);
    assert_eq!(hs.version.as_deref(), Some("TLS 1.2"));
    assert_eq!(hs.sni, None);
    let leaf = hs.certificates.first().expect("leaf");
    assert_eq!(format_utc(leaf.not_before), "2011-05-04T00:00:00");
    assert_eq!(format_utc(leaf.not_after), "2016-07-04T23:59:59");
    assert_eq!(
        leaf.serial,
        "00:99:FA:A8:03:7A:4E:B2:FA:EF:84:EB:5E:55:D5:B8:C8"
    );
    assert_eq!(
        leaf.fingerprint,
        "33:67:a1:82:4a:60:13:c0:2a:3e:25:bb:e4:da:86:33:87:fa:f1:34"
    );
    assert_eq!(
        leaf.issuer,
        "C=GB, ST=Greater Manchester, L=Salford, O=COMODO CA Limited, CN=COMODO High-Assurance Secure Server CA"
    );
    assert!(leaf.sans.contains(&"*.taleo.net".to_owned()));
    assert!(leaf.sans.contains(&"taleo.net".to_owned()));
    assert!(leaf.subject.contains("streetAddress="), "{}", leaf.subject);
    assert!(leaf.subject.contains("postalCode="), "{}", leaf.subject);
}

#[test]
fn resumed_session_logs_at_the_server_change_cipher_spec() {
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &concat(&segments(RESUMED_C2S))[..517]);
    let s2c = concat(&segments(RESUMED_S2C));
    // ServerHello alone: a TLS 1.2 server may still send its certificate.
    p.feed(Direction::ToClient, &s2c[..86]);
    assert!(p.poll_event().is_none());
    p.feed(Direction::ToClient, &s2c[86..]);
    let hs = p.poll_event().expect("event after ChangeCipherSpec");
    assert!(hs.certificates.is_empty());
    assert_eq!(hs.version.as_deref(), Some("TLS 1.2"));
}

#[test]
fn byte_at_a_time_gives_the_same_event() {
    for (c2s, s2c) in [
        (SELKS_C2S, SELKS_S2C),
        (SOCKS_C2S, SOCKS_S2C),
        (GLUPTEBA_C2S, GLUPTEBA_S2C),
        (ALPN_H2_C2S, ALPN_H2_S2C),
    ] {
        let (_, whole) = only_event(c2s, s2c);
        let mut p = TlsFlowParser::new();
        let c = concat(&segments(c2s));
        let s = concat(&segments(s2c));
        // The client's first flight (up to the first record end) byte by byte, then the server.
        for b in &c {
            p.feed(Direction::ToServer, std::slice::from_ref(b));
            if p.client_hello_seen {
                break;
            }
        }
        let mut events = Vec::new();
        for b in &s {
            p.feed(Direction::ToClient, std::slice::from_ref(b));
            events.extend(p.poll_event());
        }
        events.extend(p.finish());
        assert_eq!(events, vec![whole]);
    }
}

#[test]
fn roles_swapped_when_the_client_hello_travels_to_client() {
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToClient, &concat(&segments(SELKS_C2S)));
    p.feed(Direction::ToServer, &concat(&segments(SELKS_S2C)));
    let hs = p.poll_event().expect("event");
    assert!(p.roles_swapped());
    assert_eq!(
        hs.ja4.as_deref(),
        Some("t12i1810s1_27d4652c4487_06a4338d0495")
    );
    assert_eq!(hs.certificates.len(), 1);
}

/// Splits a stream of records into its handshake messages (type and full encoding).
fn handshake_messages(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut payload = Vec::new();
    let mut rest = stream;
    while rest.len() >= 5 && rest[0] == content_type::HANDSHAKE {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        payload.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    let mut out = Vec::new();
    let mut p = payload.as_slice();
    while p.len() >= 4 {
        let len = (usize::from(p[1]) << 16) | (usize::from(p[2]) << 8) | usize::from(p[3]);
        out.push(p[..4 + len].to_vec());
        p = &p[4 + len..];
    }
    out
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ct, 0x03, 0x03];
    r.extend((body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

#[test]
fn several_messages_in_one_record_and_one_message_over_several_records() {
    let s2c = concat(&segments(CERTS_S2C));
    let msgs = handshake_messages(&s2c);
    assert_eq!(
        msgs.iter().map(|m| m[0]).collect::<Vec<_>>(),
        vec![2, 11, 12, 14]
    );
    let client = concat(&segments(CERTS_C2S));

    // ServerHello and the first half of the Certificate in one record, the rest in two more.
    let cert = &msgs[1];
    let (a, b) = cert.split_at(cert.len() / 2);
    let (b1, b2) = b.split_at(b.len() / 3);
    let mut first = msgs[0].clone();
    first.extend_from_slice(a);
    let mut stream = record(content_type::HANDSHAKE, &first);
    stream.extend(record(content_type::HANDSHAKE, b1));
    stream.extend(record(content_type::HANDSHAKE, b2));

    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &client[..214]);
    p.feed(Direction::ToClient, &stream);
    let hs = p.poll_event().expect("event at the Certificate");
    assert_eq!(hs.certificates.len(), 3);
    assert_eq!(hs.cipher_selected, Some(49199));

    // All four server messages in a single record.
    let all: Vec<u8> = msgs.concat();
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &client[..214]);
    p.feed(Direction::ToClient, &record(content_type::HANDSHAKE, &all));
    let hs = p.poll_event().expect("event");
    assert_eq!(hs.certificates.len(), 3);
}

#[test]
fn http_connect_preamble_is_skipped_on_both_sides() {
    let c = concat(&segments(SELKS_C2S));
    let s = concat(&segments(SELKS_S2C));
    let mut client =
        b"CONNECT 192.168.56.101:443 HTTP/1.1\r\nHost: 192.168.56.101:443\r\n\r\n".to_vec();
    client.extend_from_slice(&c);
    let mut server = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    server.extend_from_slice(&s);
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &client);
    p.feed(Direction::ToClient, &server);
    let hs = p.poll_event().expect("event");
    assert_eq!(
        hs.ja4.as_deref(),
        Some("t12i1810s1_27d4652c4487_06a4338d0495")
    );
    assert_eq!(hs.certificates.len(), 1);
}

#[test]
fn capture_starting_mid_record_resyncs_on_the_next_handshake_record() {
    let c = concat(&segments(ZEEK_C2S));
    let s = concat(&segments(ZEEK_S2C));
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &c);
    // Start 40 bytes into the ServerHello record: the Certificate record is found by scanning.
    p.feed(Direction::ToClient, &s[40..]);
    let hs = p.poll_event().expect("event");
    assert_eq!(p.anomalies().skipped_bytes, 86 - 40);
    assert!(!hs.certificates.is_empty());
    assert_eq!(
        hs.certificates[0].fingerprint,
        "33:67:a1:82:4a:60:13:c0:2a:3e:25:bb:e4:da:86:33:87:fa:f1:34"
    );
}

#[test]
fn plain_text_is_given_up_after_the_scan_limit() {
    let mut p = TlsFlowParser::new();
    let line = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n";
    for _ in 0..(RESYNC_SCAN_LIMIT / line.len() + 2) {
        p.feed(Direction::ToServer, line);
        p.feed(Direction::ToClient, line);
    }
    assert_eq!(p.anomalies().not_tls, 2);
    assert!(p.is_done());
    assert!(p.finish().is_none());
    assert!(p.to_server.buf.is_empty());
}

#[test]
fn hostile_lengths_are_counted_not_trusted() {
    let c = concat(&segments(SELKS_C2S));
    // A handshake message claiming 16 MiB: skipped, counted, and the parser keeps going.
    let mut p = TlsFlowParser::new();
    let mut huge = vec![handshake_type::CERTIFICATE, 0xff, 0xff, 0xff];
    huge.extend([0u8; 100]);
    p.feed(Direction::ToServer, &c[..180]);
    p.feed(Direction::ToClient, &record(content_type::HANDSHAKE, &huge));
    assert_eq!(p.anomalies().oversized, 1);
    assert_eq!(p.to_client.hs_skip, 0xff_ffff - 100);
    assert!(p.to_client.hs.is_empty());

    // A record header announcing more than 2^14 + 2048 bytes.
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &c[..180]);
    p.feed(
        Direction::ToClient,
        &[0x16, 0x03, 0x03, 0xff, 0xff, 0x02, 0x00],
    );
    assert_eq!(p.anomalies().oversized, 1);

    // A ServerHello whose extension block overruns the message.
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &c[..180]);
    let mut sh = vec![handshake_type::SERVER_HELLO, 0, 0, 40, 0x03, 0x03];
    sh.extend([0u8; 32]);
    sh.extend([0x00, 0xc0, 0x2f, 0x00, 0x10, 0x00]);
    p.feed(Direction::ToClient, &record(content_type::HANDSHAKE, &sh));
    assert_eq!(
        p.anomalies().malformed_handshakes,
        0,
        "short ServerHello still parses"
    );
    let hs = p.finish().expect("event");
    assert_eq!(hs.cipher_selected, Some(0xc02f));

    // A Certificate whose inner lengths lie: the handshake survives without certificates.
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &c[..180]);
    let cert = [handshake_type::CERTIFICATE, 0, 0, 7, 0, 0, 4, 0, 0, 9, 0x30];
    p.feed(Direction::ToClient, &record(content_type::HANDSHAKE, &cert));
    let hs = p.poll_event().expect("event at the (broken) Certificate");
    assert!(hs.certificates.is_empty());
    assert_eq!(p.anomalies().malformed_handshakes, 1);
    assert!(hs.ja4.is_some());
}

#[test]
fn broken_leaf_certificate_keeps_the_rest_of_the_handshake() {
    let s2c = concat(&segments(CERTS_S2C));
    let msgs = handshake_messages(&s2c);
    let mut cert = msgs[1].clone();
    // Corrupt the leaf's tbsCertificate tag (leaf DER starts after 4 + 3 + 3 bytes).
    cert[10 + 4] = 0x04;
    let mut p = TlsFlowParser::new();
    p.feed(Direction::ToServer, &concat(&segments(CERTS_C2S))[..214]);
    let mut flight = msgs[0].clone();
    flight.extend_from_slice(&cert);
    p.feed(
        Direction::ToClient,
        &record(content_type::HANDSHAKE, &flight),
    );
    let hs = p.poll_event().expect("event");
    assert!(
        hs.certificates.is_empty(),
        "no intermediate passed off as the leaf"
    );
    assert_eq!(p.anomalies().certificate_errors, 1);
    assert!(hs.ja3s.is_some() && hs.ja3.is_some());
}

/// xorshift64*: a tiny deterministic PRNG so the fuzz loop needs no extra dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn assert_bounded(p: &TlsFlowParser) {
    for side in [&p.to_server, &p.to_client] {
        assert!(side.buf.len() + side.hs.len() <= MAX_BUFFERED_PER_DIRECTION);
        assert!(side.hs.len() <= HANDSHAKE_HEADER_LEN + MAX_HANDSHAKE_MESSAGE);
    }
}

#[test]
fn fuzz_random_and_mutated_streams_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let corpora: Vec<(Vec<u8>, Vec<u8>)> = [
        (SELKS_C2S, SELKS_S2C),
        (CERTS_C2S, CERTS_S2C),
        (GLUPTEBA_C2S, GLUPTEBA_S2C),
        (SOCKS_C2S, SOCKS_S2C),
        (DRAFT22_C2S, DRAFT22_S2C),
    ]
    .iter()
    .map(|(c, s)| (concat(&segments(c)), concat(&segments(s))))
    .collect();
    let mut events = 0usize;
    for round in 0..3000 {
        let (mut c, mut s) = if round % 3 == 0 {
            let n = rng.below(3000);
            let m = rng.below(3000);
            (
                (0..n).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
                (0..m).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
            )
        } else {
            corpora[rng.below(corpora.len())].clone()
        };
        // Flip bytes, including in record and handshake lengths.
        for buf in [&mut c, &mut s] {
            for _ in 0..rng.below(8) {
                if !buf.is_empty() {
                    let i = rng.below(buf.len());
                    buf[i] = rng.next() as u8;
                }
            }
            if rng.below(4) == 0 {
                let cut = rng.below(buf.len() + 1);
                buf.truncate(cut);
            }
        }
        let mut p = TlsFlowParser::new();
        let (mut ci, mut si) = (0usize, 0usize);
        while ci < c.len() || si < s.len() {
            let n = 1 + rng.below(700);
            if rng.below(2) == 0 && ci < c.len() {
                let end = (ci + n).min(c.len());
                p.feed(Direction::ToServer, &c[ci..end]);
                ci = end;
            } else if si < s.len() {
                let end = (si + n).min(s.len());
                p.feed(Direction::ToClient, &s[si..end]);
                si = end;
            } else {
                let end = (ci + n).min(c.len());
                p.feed(Direction::ToServer, &c[ci..end]);
                ci = end;
            }
            assert_bounded(&p);
            events += usize::from(p.poll_event().is_some());
        }
        events += usize::from(p.finish().is_some());
        assert!(p.finish().is_none() && p.poll_event().is_none());
    }
    // Most mutated real streams still carry a hello somewhere.
    assert!(events > 1000, "{events}");
}
