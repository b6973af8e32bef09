//! Live capture for real: a veth pair into a network namespace this test creates, `netmonitor
//! run --interface` on the host end, UDP sent into the namespace; the packets are counted in the
//! sensor status, held in the ring buffer, and exported to a pcap that tcpdump reads.

use crate::netns::*;
use crate::util::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn live_capture_on_a_veth_pair_counts_rings_and_exports() {
    if !can_capture() {
        return;
    }
    let (net, host_ip, ns_ip) = veth(0);
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

fn source_counters(mcp: &McpSession) -> serde_json::Value {
    let status = mcp.call("get_sensor_status", serde_json::json!({}));
    status["structuredContent"]["sources"][0]["counters"].clone()
}

/// Sensor commands on live capture: a pause stops reading (nothing counted while paused, the
/// backlog read after resume); an export of a full ring (tens of megabytes) is copied between
/// packet batches and written off the packet path, so capture drops nothing while it runs;
/// every command is in the history with who sent it.
#[test]
fn pause_resume_and_a_large_export_keep_capture_whole() {
    if !can_capture() {
        return;
    }
    let (net, host_ip, ns_ip) = veth(1);
    let dir = data_dir();
    let cfg = dir.path().join("nm.toml");
    std::fs::write(&cfg, "[sensor.pipeline.ring]\nmax_bytes = 67108864\n").unwrap();
    let cfg_arg = cfg.to_string_lossy().into_owned();
    let (_child, port) = start_service_with(
        dir.path(),
        &[],
        &["--config", &cfg_arg, "--interface", &net.host_if],
    );
    let token = create_polling_token(dir.path(), "operator", "admin");
    let mcp = McpSession::open(port, &token);
    let sock = std::net::UdpSocket::bind(format!("{host_ip}:0")).unwrap();
    let payload = vec![0x5au8; 1200];
    let send = |n: usize| {
        for _ in 0..n {
            let _ = sock.send_to(&payload, format!("{ns_ip}:9999"));
        }
    };
    // fill the ring: up to 60,000 packets, 70 MB
    for _ in 0..60 {
        send(1000);
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut last = 0;
    wait_for("capture to settle", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(300));
        let now = source_counters(&mcp)["packets"].as_u64().unwrap_or(0);
        std::mem::replace(&mut last, now) == now
    });
    assert!(
        last >= 20_000,
        "only {last} packets captured to fill the ring"
    );

    let paused = mcp.call(
        "send_sensor_command",
        serde_json::json!({"command": "pause_capture"}),
    );
    assert_eq!(paused["isError"], false, "{paused}");
    std::thread::sleep(Duration::from_millis(200));
    let at_pause = source_counters(&mcp)["packets"].as_u64().unwrap();
    send(200);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        source_counters(&mcp)["packets"].as_u64().unwrap(),
        at_pause,
        "nothing is read while paused"
    );
    mcp.call(
        "send_sensor_command",
        serde_json::json!({"command": "resume_capture"}),
    );
    wait_for(
        "the backlog read after resume",
        Duration::from_secs(10),
        || source_counters(&mcp)["packets"].as_u64().unwrap_or(0) >= at_pause + 200,
    );

    let before = source_counters(&mcp);
    // keep traffic flowing during the export
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (stop, target) = (stop.clone(), format!("{ns_ip}:9998"));
        let s = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = s.send_to(b"during export", &target);
                n += 1;
                if n.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            n
        })
    };
    let export = mcp.call(
        "send_sensor_command",
        serde_json::json!({"command": "export_ring"}),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = sender.join().unwrap();
    assert_eq!(export["isError"], false, "{export}");
    let exported = export["structuredContent"]["command"]["result"]["packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(exported >= 20_000, "a large export: {exported} packets");
    wait_for(
        "the traffic sent during the export counted",
        Duration::from_secs(10),
        || {
            source_counters(&mcp)["packets"].as_u64().unwrap_or(0)
                >= before["packets"].as_u64().unwrap() + during
        },
    );
    let after = source_counters(&mcp);
    for c in ["queue_drops", "kernel_drops"] {
        assert_eq!(
            after[c], before[c],
            "{c} during the export: {before} -> {after}"
        );
    }
    let history = mcp.call("get_sensor_command_history", serde_json::json!({}));
    let names: Vec<String> = history["structuredContent"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}/{}",
                c["command"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["requested_by"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "export_ring/ok/operator",
            "resume_capture/ok/operator",
            "pause_capture/ok/operator"
        ]
    );
}

/// The actor plane end to end on real traffic: an `openssl s_server` in a namespace and an
/// `openssl s_client` on the host; while the TLS connection is still open, its handshake is in
/// the EVE file `run` writes and in PostgreSQL within two seconds, and get_tls_stats counts it
/// from the TLS actor's live state.
#[test]
fn a_live_tls_handshake_reaches_eve_postgres_and_the_tls_actor_while_open() {
    if !can_capture() {
        return;
    }
    let (net, host_ip, ns_ip) = veth(2);
    let dir = data_dir();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=live.example",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (the bootstrap script installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = Running(
        Command::new("ip")
            .args([
                "netns", "exec", &net.ns, "openssl", "s_server", "-quiet", "-accept", "4433",
            ])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let eve = dir.path().join("eve.json");
    let eve_arg = eve.to_string_lossy().into_owned();
    let (_svc, port) = start_service_with(
        dir.path(),
        &[],
        &["--interface", &net.host_if, "--eve", &eve_arg],
    );
    let token = create_token(dir.path(), "analyst", "read_only");
    let mcp = McpSession::open(port, &token);
    // the server needs a moment to listen inside its namespace
    let mut client = None;
    wait_for(
        "a TLS connection to s_server",
        Duration::from_secs(10),
        || {
            let mut c = Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("{ns_ip}:4433"),
                    "-servername",
                    "live.example",
                ])
                .arg("-bind")
                .arg(format!("{host_ip}:0"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(500));
            let alive = c.try_wait().unwrap().is_none();
            if alive {
                client = Some(Running(c));
            } else {
                let _ = c.wait();
            }
            alive
        },
    );
    let connected = std::time::Instant::now();
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=netmonitor",
        dir.path().join("run").display()
    );
    let in_db = || {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        PgConnection::establish(&conninfo)
            .ok()
            .and_then(|mut c| {
                diesel::sql_query(
                    "SELECT count(*) AS n FROM tls_sessions WHERE sni = 'live.example'",
                )
                .get_result::<N>(&mut c)
                .ok()
            })
            .is_some_and(|n| n.n >= 1)
    };
    let in_eve = || {
        std::fs::read_to_string(&eve).is_ok_and(|t| {
            t.lines()
                .any(|l| l.contains("\"event_type\":\"tls\"") && l.contains("live.example"))
        })
    };
    wait_for(
        "the handshake in EVE and PostgreSQL",
        Duration::from_secs(2),
        || in_eve() && in_db(),
    );
    let within = connected.elapsed();
    let client = client.expect("a connected client");
    assert!(client.0.id() > 0);
    let live =
        mcp.call("get_tls_stats", serde_json::json!({}))["structuredContent"]["live"].clone();
    assert!(live["handshakes"].as_u64().unwrap_or(0) >= 1, "{live}");
    assert!(
        live["top_sni"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "live.example"),
        "{live}"
    );
    eprintln!(
        "TLS handshake in EVE and PostgreSQL {:.0} ms after connecting",
        within.as_secs_f64() * 1000.0
    );
    drop(client);
    drop(server);
}
