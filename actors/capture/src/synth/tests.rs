//! Tests of the synthesizer: checksums, decodability, reproducibility.

use super::*;
use crate::decode::tcp_flags::ACK;
use crate::decode::{decode, linktype};
use crate::source::PcapFileSource;
use netmonitor_common::der::read_tlv;
use netmonitor_common::Timestamp;
use std::io;

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
