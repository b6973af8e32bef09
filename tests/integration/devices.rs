//! The device inventory end to end: a synthesized segment — a printer taking a DHCP lease,
//! named by a resolver and by its own mDNS answer, serving IPP to a laptop — read by
//! `netmonitor run --pcap`, asked over MCP; then SIGTERM and a start on the same data
//! directory with no traffic at all: every device is still there, whole.

use crate::util::*;
use netmonitor_capture::synth::{build, dns_answer, dns_query, Synth};
use netmonitor_common::Timestamp;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;

const PRINTER: [u8; 4] = [10, 0, 0, 5];
const LAPTOP: [u8; 4] = [10, 0, 0, 7];
const ROUTER: [u8; 4] = [10, 0, 0, 1];
/// Under 00:00:00, assigned to Xerox in the IEEE registry.
const PRINTER_MAC: [u8; 6] = [0x00, 0x00, 0x00, 0x0a, 0x0b, 0x0c];

/// A BOOTP message with DHCP options (RFC 2131/2132).
fn dhcp(op: u8, xid: u32, yiaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = op;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[16..20].copy_from_slice(&yiaddr);
    m[28..34].copy_from_slice(&PRINTER_MAC);
    m.extend_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(options);
    m.push(255);
    m
}

fn segment(path: &std::path::Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut s = Synth::new(f, 5, Timestamp(1_767_225_600_000_000)).unwrap();
    let mut req = vec![53, 1, 3, 50, 4, 10, 0, 0, 5, 12, 10];
    req.extend_from_slice(b"Printer-3F");
    req.extend_from_slice(&[55, 7, 1, 3, 6, 15, 44, 46, 47]);
    let ack = [53, 1, 5, 1, 4, 255, 255, 255, 0];
    s.frame(&build::eth_ipv4_udp(
        [0; 4],
        [255; 4],
        68,
        67,
        &dhcp(1, 7, [0; 4], &req),
    ))
    .unwrap();
    s.frame(&build::eth_ipv4_udp(
        ROUTER,
        PRINTER,
        67,
        68,
        &dhcp(2, 7, PRINTER, &ack),
    ))
    .unwrap();
    let q = dns_query(9, "printer-3f.corp.example", 1);
    let a = dns_answer(&q, Ipv4Addr::from(PRINTER));
    s.udp_exchange(LAPTOP, ROUTER, 40_000, 53, &q, &a).unwrap();
    let q = dns_query(0, "Printer-3F.local", 1);
    s.frame(&build::eth_ipv4_udp(
        PRINTER,
        [224, 0, 0, 251],
        5353,
        5353,
        &dns_answer(&q, Ipv4Addr::from(PRINTER)),
    ))
    .unwrap();
    let mut c = s.tcp_open(LAPTOP, PRINTER, 40_001, 631).unwrap();
    s.tcp_send(
        &mut c,
        true,
        b"POST /ipp/print HTTP/1.1\r\nHost: printer\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    s.tcp_send(
        &mut c,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    s.tcp_close(&mut c).unwrap();
    s.finish().unwrap();
}

fn printer(s: &McpSession) -> Option<Value> {
    let r = s.call("get_devices", json!({"q": "printer-3f"}));
    r["structuredContent"]["devices"].get(0).cloned()
}

#[test]
fn devices_are_identified_and_survive_a_restart() {
    let dir = data_dir();
    let pcap = dir.path().join("segment.pcap");
    segment(&pcap);
    let (mut child, port) =
        start_service_with(dir.path(), &[], &["--pcap", pcap.to_str().unwrap()]);
    let token = create_token(dir.path(), "devices", "read_only");
    let s = McpSession::open(port, &token);
    let mut seen = None;
    wait_for(
        "the printer in get_devices",
        Duration::from_secs(30),
        || {
            seen = printer(&s).filter(|d| d["services"].as_array().is_some_and(|v| !v.is_empty()));
            seen.is_some()
        },
    );
    let d = seen.unwrap();
    assert_eq!(d["id"], "mac:00:00:00:0a:0b:0c", "{d}");
    assert_eq!(d["vendor"], "XEROX CORPORATION");
    assert_eq!(d["ip"], "10.0.0.5");
    assert_eq!(d["address_scope"], "private");
    assert_eq!(d["hostnames"]["printer-3f"], "dhcp");
    assert_eq!(d["hostnames"]["printer-3f.local"], "mdns");
    assert_eq!(d["hostnames"]["printer-3f.corp.example"], "dns");
    assert_eq!(d["dhcp_fingerprint"], "1,3,6,15,44,46,47");
    assert_eq!(d["services"], json!(["tcp/631"]));
    let by_vendor = s.call("get_devices", json!({"vendor": "xerox"}));
    assert_eq!(by_vendor["structuredContent"]["returned"], 1);
    let laptop = s.call("get_device_by_ip", json!({"ip": "10.0.0.7"}));
    assert_eq!(laptop["structuredContent"]["device"]["id"], "ip:10.0.0.7");
    let total = s.call("get_devices", json!({}))["structuredContent"]["total_devices"].clone();

    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    wait_for("netmonitor to exit", Duration::from_secs(30), || {
        child.0.try_wait().unwrap().is_some()
    });
    drop(child);

    // No traffic this time: what get_devices answers was read back from PostgreSQL.
    let (_child, port) = start_service(dir.path(), &[]);
    let s = McpSession::open(port, &token);
    let mut again = None;
    wait_for("the printer read back", Duration::from_secs(30), || {
        again = printer(&s);
        again.is_some()
    });
    assert_eq!(again.unwrap(), d, "the same record, whole");
    assert_eq!(
        s.call("get_devices", json!({}))["structuredContent"]["total_devices"],
        total
    );
}
