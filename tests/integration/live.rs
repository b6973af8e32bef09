//! Live capture for real: a veth pair into a network namespace this test creates, `netmonitor
//! run --interface` on the host end, UDP sent into the namespace; the packets are counted in the
//! sensor status, held in the ring buffer, and exported to a pcap that tcpdump reads.

use crate::util::*;
use std::process::Command;
use std::time::Duration;

struct Netns {
    ns: String,
    host_if: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)");
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn live_capture_on_a_veth_pair_counts_rings_and_exports() {
    if unsafe { libc::geteuid() } != 0 {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must run this test"
        );
        eprintln!("skipping: live capture needs root (CAP_NET_RAW, CAP_NET_ADMIN)");
        return;
    }
    let id = std::process::id() % 10_000;
    let net = Netns {
        ns: format!("nmt{id}"),
        host_if: format!("nmh{id}"),
    };
    let peer = format!("nmp{id}");
    let (host_ip, ns_ip) = (
        format!("10.213.{}.1", id % 250),
        format!("10.213.{}.2", id % 250),
    );
    ip(&["netns", "add", &net.ns]);
    ip(&[
        "link",
        "add",
        &net.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
    ]);
    ip(&["link", "set", &peer, "netns", &net.ns]);
    ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &net.host_if]);
    ip(&["link", "set", &net.host_if, "up"]);
    ip(&[
        "netns",
        "exec",
        &net.ns,
        "ip",
        "addr",
        "add",
        &format!("{ns_ip}/24"),
        "dev",
        &peer,
    ]);
    ip(&["netns", "exec", &net.ns, "ip", "link", "set", &peer, "up"]);

    let dir = data_dir();
    let (_child, port) = start_service_with(dir.path(), &[], &["--interface", &net.host_if]);
    let token = create_token(dir.path(), "forensics", "read_write");
    let mcp = McpSession::open(port, &token);

    let sock = std::net::UdpSocket::bind(format!("{host_ip}:0")).unwrap();
    let sent = 60;
    for i in 0..sent {
        sock.send_to(
            format!("netmonitor live test {i}").as_bytes(),
            format!("{ns_ip}:9999"),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }

    let mut captured = 0;
    wait_for(
        "the sensor to count the packets",
        Duration::from_secs(20),
        || {
            let status = mcp.call("get_sensor_status", serde_json::json!({}));
            captured = status["structuredContent"]["sources"][0]["counters"]["packets"]
                .as_u64()
                .unwrap_or(0);
            captured >= sent
        },
    );
    // Capture hands packets over in blocks and batches: poll until the last datagram is in.
    let mut export = serde_json::Value::Null;
    let mut packets = 0;
    wait_for(
        "every datagram in the ring buffer",
        Duration::from_secs(20),
        || {
            export = mcp.call(
            "export_flow_pcap",
            serde_json::json!({"src_ip": host_ip, "dst_ip": ns_ip, "dst_port": 9999, "proto": "udp"}),
        );
            packets = export["structuredContent"]["packets"].as_u64().unwrap_or(0);
            export["isError"] != true && packets >= sent
        },
    );
    assert_eq!(packets, sent, "exactly the datagrams sent are exported");
    let path = export["structuredContent"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    if Command::new("tcpdump").arg("--version").output().is_ok() {
        let out = Command::new("tcpdump")
            .args(["-n", "-r", &path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tcpdump reads the export: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = String::from_utf8_lossy(&out.stdout);
        let matching = lines
            .lines()
            .filter(|l| l.contains(&format!("{ns_ip}.9999")))
            .count() as u64;
        assert!(
            matching >= sent,
            "tcpdump sees {matching} packets to {ns_ip}.9999"
        );
    } else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "tcpdump is installed in CI"
        );
    }
}
