//! The device inventory end to end: a synthesized segment — a printer taking a DHCP lease,
//! named by a resolver and by its own mDNS answer, serving IPP to a laptop — read by
//! `netmonitor run --pcap`, asked over MCP: identified, classified (with the hints), then
//! classified by hand, made into a template and touched; then SIGTERM and a start on the same
//! data directory with no traffic at all: every device, assignment and template is still
//! there, whole.

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

/// A NetBIOS name registration of `name` (a workstation name, suffix 0x00) for `ip`.
fn nbns_registration(name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut raw = [b' '; 16];
    raw[..name.len()].copy_from_slice(name.as_bytes());
    raw[15] = 0;
    let mut m = vec![0x12, 0x34, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1, 32];
    for b in raw {
        m.extend([b'A' + (b >> 4), b'A' + (b & 0xF)]);
    }
    m.extend([0, 0, 0x20, 0, 1]);
    m.extend([0xC0, 0x0C, 0, 0x20, 0, 1, 0, 0, 0x0e, 0x10, 0, 6, 0, 0]);
    m.extend(ip);
    m
}

/// The router announcing itself over LLDP: system name, router capability, management address.
fn lldp_frame() -> Vec<u8> {
    let tlv = |t: u16, v: &[u8]| {
        let mut out = ((t << 9) | v.len() as u16).to_be_bytes().to_vec();
        out.extend(v);
        out
    };
    let mut f = vec![
        0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x00, 0x1b, 0x21, 0xaa, 0xbb, 0x01, 0x88, 0xcc,
    ];
    f.extend(tlv(1, &[4, 0x00, 0x1b, 0x21, 0xaa, 0xbb, 0x01]));
    f.extend(tlv(2, b"\x05eth0"));
    f.extend(tlv(3, &[0, 120]));
    f.extend(tlv(5, b"gw-1"));
    f.extend(tlv(7, &[0, 0x10, 0, 0x10]));
    f.extend(tlv(8, &[5, 1, 10, 0, 0, 1, 2, 0, 0, 0, 1, 0]));
    f.extend(tlv(0, &[]));
    f
}

fn segment(path: &std::path::Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut s = Synth::new(f, 5, Timestamp(1_767_225_600_000_000)).unwrap();
    let mut req = vec![53, 1, 3, 50, 4, 10, 0, 0, 5, 12, 10];
    req.extend_from_slice(b"Printer-3F");
    req.extend_from_slice(&[55, 7, 1, 3, 6, 15, 44, 46, 47]);
    // Client FQDN (option 81), ASCII form.
    req.extend_from_slice(&[81, 28, 0, 0, 0]);
    req.extend_from_slice(b"printer-3f.floor3.example");
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
    s.frame(&lldp_frame()).unwrap();
    let reg = nbns_registration("LAPTOP-ANN", LAPTOP);
    s.frame(&build::eth_ipv4_udp(
        LAPTOP,
        [10, 0, 0, 255],
        137,
        137,
        &reg,
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
    // Two minutes later (past the test's one-minute learning window) it prints again.
    s.advance(120_000_000);
    let mut c = s.tcp_open(LAPTOP, PRINTER, 40_002, 631).unwrap();
    s.tcp_send(
        &mut c,
        true,
        b"POST /ipp/print HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
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

/// Ten minutes later the learnt printer opens SSH to a host it never talked to.
fn deviation(path: &std::path::Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut s = Synth::new(f, 6, Timestamp(1_767_225_600_000_000 + 600_000_000)).unwrap();
    let mut c = s.tcp_open(PRINTER, [10, 0, 0, 99], 50_000, 22).unwrap();
    s.tcp_send(&mut c, true, b"SSH-2.0-OpenSSH_9.2\r\n")
        .unwrap();
    s.tcp_send(&mut c, false, b"SSH-2.0-OpenSSH_9.6\r\n")
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
    let config = dir.path().join("devices.toml");
    std::fs::write(
        &config,
        "[devices]\nsave_interval_secs = 1\nlearning_secs = 60\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (mut child, port) = start_service_with(
        dir.path(),
        &[],
        &["--config", config, "--pcap", pcap.to_str().unwrap()],
    );
    let token = create_polling_token(dir.path(), "devices", "read_only");
    let writer = create_polling_token(dir.path(), "devices-rw", "read_write");
    let s = McpSession::open(port, &token);
    let w = McpSession::open(port, &writer);
    let mut seen = None;
    // Classified when its changes are saved (every second here).
    wait_for("the printer classified", Duration::from_secs(30), || {
        seen = printer(&s).filter(|d| d["template"] == "printer");
        seen.is_some()
    });
    let d = seen.unwrap();
    assert_eq!(d["id"], "mac:00:00:00:0a:0b:0c", "{d}");
    assert_eq!(d["vendor"], "XEROX CORPORATION");
    assert_eq!(d["ip"], "10.0.0.5");
    assert_eq!(d["address_scope"], "private");
    assert_eq!(d["hostnames"]["printer-3f"], "dhcp");
    assert_eq!(d["hostnames"]["printer-3f.local"], "mdns");
    assert_eq!(d["hostnames"]["printer-3f.corp.example"], "dns");
    assert_eq!(d["hostnames"]["printer-3f.floor3.example"], "dhcp");
    assert_eq!(d["dhcp_fingerprint"], "1,3,6,15,44,46,47");
    assert_eq!(d["services"], json!(["tcp/631"]));
    assert!(d["template_confidence"].as_f64().unwrap() >= 0.8, "{d}");
    let by_vendor = s.call("get_devices", json!({"vendor": "xerox"}));
    assert_eq!(by_vendor["structuredContent"]["returned"], 1);
    let laptop = s.call("get_device_by_ip", json!({"ip": "10.0.0.7"}));
    assert_eq!(laptop["structuredContent"]["device"]["id"], "ip:10.0.0.7");
    assert_eq!(
        laptop["structuredContent"]["device"]["hostnames"]["laptop-ann"], "netbios",
        "{laptop}"
    );
    let total = s.call("get_devices", json!({}))["structuredContent"]["total_devices"].clone();
    let gw = s.call("get_devices", json!({"q": "gw-1"}));
    let gw = &gw["structuredContent"]["devices"][0];
    assert_eq!(gw["id"], "mac:00:1b:21:aa:bb:01", "{gw}");
    assert_eq!(
        gw["ip"], "10.0.0.1",
        "folded into the MAC the LLDP frame came from"
    );
    assert_eq!(gw["hostnames"]["gw-1"], "lldp");
    assert_eq!(gw["template"], "router_ap", "{gw}");

    // Why it is a printer, and the templates there are.
    let hints = s.call("get_device_classification_hints", json!({"ip": "10.0.0.5"}));
    let hints = &hints["structuredContent"];
    assert_eq!(hints["assigned"]["template"], "printer", "{hints}");
    assert_eq!(hints["fits"][0]["template"], "printer");
    let said = hints["fits"][0]["hints"].to_string();
    assert!(
        said.contains("XEROX") && said.contains("tcp/631") && said.contains("printer-3f"),
        "{said}"
    );
    let templates = s.call("get_device_templates", json!({}));
    assert_eq!(
        templates["structuredContent"]["returned"], 9,
        "the built-in ones"
    );

    // By hand: the laptop is a workstation of high criticality; a template is learnt from the
    // printer (and assigned to it), another cloned from a built-in one; devices are touched.
    // A read_only token may do none of it.
    let r = w.call(
        "assign_device_template",
        json!({"ip": "10.0.0.7", "template_id": "workstation", "criticality": "high"}),
    );
    let dev = &r["structuredContent"]["device"];
    assert_eq!(dev["template_manual"], true, "{r}");
    assert_eq!(dev["criticality_in_force"], "high");
    let denied = s.call(
        "assign_device_template",
        json!({"ip": "10.0.0.7", "template_id": "nas"}),
    );
    assert_eq!(denied["isError"], true, "{denied}");
    let r = w.call(
        "create_template_from_device",
        json!({"device": "00:00:00:0a:0b:0c", "name": "Floor printer", "category": "iot"}),
    );
    let made = &r["structuredContent"];
    assert_eq!(made["template"]["id"], "floor-printer", "{r}");
    assert_eq!(made["template"]["services"], json!(["tcp/631"]));
    assert_eq!(made["device"]["template"], "floor-printer");
    let r = w.call(
        "clone_device_template",
        json!({"template_id": "printer", "name": "Label printer", "services": ["tcp/9100"]}),
    );
    assert_eq!(
        r["structuredContent"]["template"]["services"],
        json!(["tcp/9100"]),
        "{r}"
    );
    let r = w.call(
        "clone_device_template",
        json!({"template_id": "printer", "name": "printer"}),
    );
    assert_eq!(
        r["isError"], true,
        "built-in templates stay as shipped: {r}"
    );
    let r = w.call(
        "touch_devices_bulk",
        json!({"devices": ["10.0.0.5", "ip:10.0.0.7", "10.9.9.9"]}),
    );
    assert_eq!(r["structuredContent"]["touched"], 2, "{r}");
    assert_eq!(r["structuredContent"]["not_found"], json!(["10.9.9.9"]));
    let stats = s.call("get_device_classification_stats", json!({}));
    assert_eq!(stats["structuredContent"]["manual"], 2, "{stats}");
    let details = s.call(
        "get_device_template_details",
        json!({"template_id": "floor-printer"}),
    );
    assert_eq!(details["structuredContent"]["device_count"], 1, "{details}");
    // What it learnt in its two minutes, frozen into a template.
    let st = s.call("get_device_learning_status", json!({"ip": "10.0.0.5"}));
    assert_eq!(
        st["structuredContent"]["devices"][0]["status"], "learned",
        "{st}"
    );
    let learnt = s.call(
        "get_device_learned_behavior",
        json!({"device": "mac:00:00:00:0a:0b:0c"}),
    );
    let base = &learnt["structuredContent"]["baseline"];
    assert_eq!(base["services"], json!(["tcp/631"]), "{learnt}");
    assert!(base["peers"].to_string().contains("10.0.0.7"), "{learnt}");
    let r = w.call(
        "save_device_learned_behavior",
        json!({"ip": "10.0.0.5", "name": "Printer as learnt", "assign": false}),
    );
    let t = &r["structuredContent"]["template"];
    assert_eq!(t["id"], "printer-as-learnt", "{r}");
    assert_eq!(t["services"], json!(["tcp/631"]));
    // All of it is saved within a second or two.
    std::thread::sleep(Duration::from_millis(2500));
    let d = printer(&s).unwrap();
    assert!(d["touched_us"].is_i64(), "{d}");

    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    wait_for("netmonitor to exit", Duration::from_secs(30), || {
        child.0.try_wait().unwrap().is_some()
    });
    drop(child);

    // No traffic this time: what the tools answer was read back from PostgreSQL.
    let (_child, port) = start_service_with(dir.path(), &[], &["--config", config]);
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
    let laptop = s.call("get_device_by_ip", json!({"ip": "10.0.0.7"}));
    let laptop = &laptop["structuredContent"]["device"];
    assert_eq!(laptop["template"], "workstation", "{laptop}");
    assert_eq!(laptop["criticality"], "high");
    let ws = s.call("get_devices", json!({"template": "workstation"}));
    assert_eq!(
        ws["structuredContent"]["devices"][0]["ip"], "10.0.0.7",
        "{ws}"
    );
    assert_eq!(
        ws["structuredContent"]["devices"][0]["criticality_in_force"],
        "high"
    );
    let iot_devices = s.call("get_devices", json!({"category": "iot"}));
    assert_eq!(
        iot_devices["structuredContent"]["devices"][0]["template"],
        "floor-printer"
    );
    let iot = s.call("get_device_templates", json!({"category": "iot"}));
    let ids = iot["structuredContent"]["templates"].to_string();
    assert!(
        ids.contains("\"floor-printer\"") && ids.contains("\"label-printer\""),
        "{ids}"
    );

    // The learnt baseline came back too: stepping outside it now is a deviation alert.
    let mut child = _child;
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    wait_for("netmonitor to exit", Duration::from_secs(30), || {
        child.0.try_wait().unwrap().is_some()
    });
    drop(child);
    let later = dir.path().join("deviation.pcap");
    deviation(&later);
    let (_child, port) = start_service_with(
        dir.path(),
        &[],
        &["--config", config, "--pcap", later.to_str().unwrap()],
    );
    let s = McpSession::open(port, &token);
    let mut alerts = Value::Null;
    wait_for("the deviation alert", Duration::from_secs(30), || {
        let r = s.call("list_events", json!({"type": "alert"}));
        alerts = r["structuredContent"]["events"].clone();
        alerts.to_string().contains("device_behavior_deviation")
    });
    let text = alerts.to_string();
    assert!(
        text.contains("new client port tcp/22") && text.contains("new peer 10.0.0.99"),
        "{text}"
    );
    let learnt = s.call("get_device_learned_behavior", json!({"ip": "10.0.0.5"}));
    let devs = learnt["structuredContent"]["deviations"].to_string();
    assert!(devs.contains("new_client_port:tcp/22"), "{devs}");
}

/// The public captures with ARP on the wire: every ARP sender with a local address is a
/// MAC-keyed device holding that address, its vendor from the shipped IEEE table.
#[test]
fn public_captures_with_arp_name_their_macs() {
    let Some(shared) = shared_dir() else { return };
    let oui = netmonitor_devices::OuiTable::built_in();
    for (file, mac, ip) in [
        ("capture-26.pcapng", "68:ec:c5:b4:5a:9b", "172.16.225.48"),
        ("capture-26.pcapng", "68:3a:1e:20:05:cc", "172.16.224.1"),
        ("capture-02.pcap", "32:08:c3:51:ce:fe", "10.9.0.2"),
    ] {
        let dir = data_dir();
        let pcap = shared.join("captures").join(file);
        let (_child, port) =
            start_service_with(dir.path(), &[], &["--pcap", pcap.to_str().unwrap()]);
        let token = create_polling_token(dir.path(), "arp", "read_only");
        let s = McpSession::open(port, &token);
        let mut found = Value::Null;
        wait_for(
            "the ARP sender as a device",
            Duration::from_secs(30),
            || {
                let r = s.call("get_devices", json!({"q": mac}));
                found = r["structuredContent"]["devices"][0].clone();
                !found.is_null()
            },
        );
        assert_eq!(found["id"], format!("mac:{mac}"), "{file}: {found}");
        assert!(
            found["ips"].as_array().unwrap().contains(&json!(ip)),
            "{file}: {found}"
        );
        assert_eq!(found["vendor"].as_str(), oui.vendor(mac), "{file}: {found}");
        // Capture 26's NetBIOS traffic registers a domain role (<1b>), not a host name.
        assert!(
            !found["hostnames"].to_string().contains("bluecat"),
            "{file}: {found}"
        );
    }
}
