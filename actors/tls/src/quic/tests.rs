//! QUIC tests: the RFC 9001 / RFC 9369 Appendix A client Initial packets, real Chrome
//! Initials from the shared captures, a ClientHello spread over several Initial packets out of
//! order, and a no-panic loop over random and mutated datagrams.

use super::*;
use aes_gcm::aead::AeadInPlace;

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

const RFC9001_A2: &str = include_str!("../../testdata/rfc9001_a2_client_initial.hex");
const RFC9369_A2: &str = include_str!("../../testdata/rfc9369_a2_client_initial.hex");
const BLOGGER: &[u8] = include_bytes!("../../testdata/quic_v1_blogger.udp");
const GOOGLE: &[u8] = include_bytes!("../../testdata/quic_v1_google.udp");
const RFC_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

/// Datagrams of a `.udp` fixture: `C`/`S`, u32 big-endian length, payload.
fn datagrams(data: &[u8]) -> Vec<(Direction, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 5 {
        let dir = if rest[0] == b'C' {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let n = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        out.push((dir, rest[5..5 + n].to_vec()));
        rest = &rest[5 + n..];
    }
    out
}

#[test]
fn rfc9001_and_rfc9369_initial_keys() {
    let k = client_initial_keys(VERSION_1, &RFC_DCID).unwrap();
    assert_eq!(k.key.to_vec(), unhex("1f369613dd76d5467730efcbe3b1a22d"));
    assert_eq!(k.iv.to_vec(), unhex("fa044b2f42a3fd3b46fb255c"));
    assert_eq!(k.hp.to_vec(), unhex("9f50449e04a0e810283a1e9933adedd2"));
    let k = client_initial_keys(VERSION_2, &RFC_DCID).unwrap();
    assert_eq!(k.key.to_vec(), unhex("8b1a0bc121284290a29e0971b5cd045d"));
    assert_eq!(k.iv.to_vec(), unhex("91f73e2351d8fa91660e909f"));
    assert_eq!(k.hp.to_vec(), unhex("45b95e15235d6f45a6b19cbcb0294ba9"));
    assert!(
        client_initial_keys(0x5130_3433, &RFC_DCID).is_none(),
        "gQUIC Q043 is not TLS"
    );
}

#[test]
fn rfc9001_appendix_a2_client_initial() {
    let packet = unhex(RFC9001_A2);
    assert_eq!(packet.len(), 1200);
    assert!(looks_like_quic_initial(&packet));
    let header = parse_long_header(&packet).unwrap();
    assert_eq!(header.dcid, RFC_DCID);
    assert_eq!(header.len, 1200);
    let keys = client_initial_keys(VERSION_1, header.dcid).unwrap();
    let frames = open_initial(&packet, &header, &keys).expect("the RFC packet decrypts");
    assert!(frames.starts_with(&unhex("060040f1010000ed0303ebf8fa56f129")));

    let mut p = QuicFlowParser::new();
    p.feed_datagram(Direction::ToServer, &packet);
    let hs = p.poll_event().expect("ClientHello event");
    assert_eq!(hs.quic_version, Some(VERSION_1));
    assert_eq!(hs.sni.as_deref(), Some("example.com"));
    assert_eq!(hs.alpn_offered, vec!["alpn".to_owned()]);
    // Computed by hand from the RFC's ClientHello, following the JA4 spec.
    assert_eq!(
        hs.ja4.as_deref(),
        Some("q13d0211an_62ed6f6ca7ad_4d634acda6c0")
    );
    assert!(p.is_done());
    assert!(!p.roles_swapped());
    assert!(p.poll_event().is_none() && p.finish().is_none());

    let mut p = QuicFlowParser::new();
    p.feed_datagram(Direction::ToClient, &packet);
    assert!(p.poll_event().is_some() && p.roles_swapped());
}

#[test]
fn rfc9369_appendix_a2_client_initial_v2() {
    let packet = unhex(RFC9369_A2);
    let mut p = QuicFlowParser::new();
    p.feed_datagram(Direction::ToServer, &packet);
    let hs = p.poll_event().expect("v2 ClientHello event");
    assert_eq!(hs.quic_version, Some(VERSION_2));
    assert_eq!(hs.sni.as_deref(), Some("example.com"));
    assert_eq!(
        hs.ja4.as_deref(),
        Some("q13d0211an_62ed6f6ca7ad_4d634acda6c0")
    );
}

#[test]
fn chrome_initials_from_the_captures() {
    for (fixture, sni, ja3) in [
        (
            BLOGGER,
            "www.blogger.com",
            "771,4865-4866-4867,17513-27-0-10-51-57-13-16-43-45,29-23-24,",
        ),
        (
            GOOGLE,
            "www.google.com",
            "771,4865-4866-4867,45-27-17513-13-43-0-10-57-16-51,29-23-24,",
        ),
    ] {
        let mut p = QuicFlowParser::new();
        let mut events = Vec::new();
        for (dir, d) in datagrams(fixture) {
            p.feed_datagram(dir, &d);
            events.extend(p.poll_event());
        }
        events.extend(p.finish());
        assert_eq!(events.len(), 1);
        let hs = &events[0];
        assert_eq!(hs.sni.as_deref(), Some(sni));
        assert_eq!(
            hs.ja4.as_deref(),
            Some("q13d0310h3_55b375c5d22e_cd85d2d88918")
        );
        assert_eq!(hs.ja3.as_ref().map(|f| f.string.as_str()), Some(ja3));
        assert_eq!(hs.alpn_offered, vec!["h3".to_owned()]);
    }
}

/// Builds a protected client Initial packet (the inverse of [`open_initial`]) for tests.
fn seal_initial(version: u32, dcid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
    let keys = client_initial_keys(version, dcid).unwrap();
    let type_bits = if version == VERSION_2 { 0x10 } else { 0x00 };
    let mut pkt = vec![0xc3 | type_bits];
    pkt.extend(version.to_be_bytes());
    pkt.push(dcid.len() as u8);
    pkt.extend(dcid);
    pkt.push(0); // empty SCID
    pkt.push(0); // no token
    let len = 4 + frames.len() + 16;
    pkt.extend((0x4000u16 | len as u16).to_be_bytes());
    let pn_offset = pkt.len();
    pkt.extend(pn.to_be_bytes());
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().skip(4).zip(u64::from(pn).to_be_bytes()) {
        *n ^= p;
    }
    let mut body = frames.to_vec();
    let aead = Aes128Gcm::new(GenericArray::from_slice(&keys.key));
    aead.encrypt_in_place(GenericArray::from_slice(&nonce), &pkt, &mut body)
        .unwrap();
    pkt.extend(body);
    let hp = Aes128::new(GenericArray::from_slice(&keys.hp));
    let mut mask = GenericArray::clone_from_slice(&pkt[pn_offset + 4..pn_offset + 20]);
    hp.encrypt_block(&mut mask);
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        pkt[pn_offset + i] ^= mask[1 + i];
    }
    pkt
}

fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06, 0x80];
    f.extend((offset as u32 & 0x3fff_ffff).to_be_bytes()[1..].iter());
    f.extend((0x4000u16 | data.len() as u16).to_be_bytes());
    f.extend(data);
    f
}

#[test]
fn client_hello_over_two_initials_out_of_order() {
    // The RFC's ClientHello, cut in three, spread over two packets in reverse order.
    let packet = unhex(RFC9001_A2);
    let header = parse_long_header(&packet).unwrap();
    let frames = open_initial(
        &packet,
        &header,
        &client_initial_keys(1, &RFC_DCID).unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    assert!(crypto_frames(&frames, |_, d| hello.extend_from_slice(d)));
    let (a, rest) = hello.split_at(100);
    let (b, c) = rest.split_at(60);
    let mut second = crypto_frame(160, c);
    second.extend([0u8; 40]); // PADDING
    let mut first = crypto_frame(100, b);
    first.extend(crypto_frame(0, a));
    first.push(0x01); // PING

    for version in [VERSION_1, VERSION_2, DRAFT_29] {
        let mut p = QuicFlowParser::new();
        p.feed_datagram(
            Direction::ToServer,
            &seal_initial(version, &RFC_DCID, 1, &second),
        );
        assert!(p.poll_event().is_none(), "incomplete ClientHello");
        assert!(!p.is_done());
        // A server datagram in between does not decrypt with the client keys.
        let mut server = seal_initial(version, &RFC_DCID, 0, &second);
        let last = server.len() - 1;
        server[last] ^= 1; // as if sealed with the server's keys
        p.feed_datagram(Direction::ToClient, &server);
        let mut coalesced = seal_initial(version, &RFC_DCID, 0, &first);
        coalesced.extend([0u8; 30]); // trailing padding after the packet
        p.feed_datagram(Direction::ToServer, &coalesced);
        let hs = p.poll_event().expect("reassembled ClientHello");
        assert_eq!(hs.sni.as_deref(), Some("example.com"));
        assert_eq!(hs.quic_version, Some(version));
        assert_eq!(p.anomalies().undecryptable, 1);
    }
}

#[test]
fn varints() {
    for (bytes, v) in [
        (&[0x25][..], 37u64),
        (&[0x7b, 0xbd], 15_293),
        (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
        (
            &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
            151_288_809_941_952_652,
        ),
    ] {
        assert_eq!(read_varint(&mut Reader::new(bytes)), Some(v));
    }
    assert_eq!(read_varint(&mut Reader::new(&[0x40])), None);
}

#[test]
fn fuzz_datagrams_never_panic() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let real = unhex(RFC9001_A2);
    for round in 0..2000 {
        let mut d = if round % 2 == 0 {
            real.clone()
        } else {
            (0..(next() % 1500) as usize)
                .map(|_| next() as u8)
                .collect()
        };
        if round % 4 == 1 && !d.is_empty() {
            d[0] = 0xc0 | (d[0] & 0x3f); // make it a long header
        }
        for _ in 0..(next() % 6) {
            if !d.is_empty() {
                let i = (next() as usize) % d.len();
                d[i] = next() as u8;
            }
        }
        if next() % 3 == 0 {
            let cut = (next() as usize) % (d.len() + 1);
            d.truncate(cut);
        }
        let mut p = QuicFlowParser::new();
        p.feed_datagram(Direction::ToServer, &d);
        p.feed_datagram(Direction::ToClient, &d);
        let _ = p.poll_event();
        let _ = looks_like_quic_initial(&d);
    }
    // Past the datagram cap the parser stops trying.
    let mut p = QuicFlowParser::new();
    for _ in 0..=MAX_DATAGRAMS {
        p.feed_datagram(
            Direction::ToServer,
            b"\xc0\x00\x00\x00\x01\x08AAAAAAAA\x00\x00\x01\x00",
        );
    }
    assert!(p.is_done());
    assert!(p.finish().is_none());
}
