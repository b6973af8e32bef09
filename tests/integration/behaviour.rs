//! Behaviour detections against real attack tools nobody here wrote, on veth pairs into
//! namespaces these tests create (only those addresses are ever targeted), with `netmonitor run
//! --interface` capturing the host end: nmap's SYN and connect scans, hydra against an OpenSSH
//! server, iodine tunnelling through iodined; and chatter that must stay quiet.

use crate::netns::*;
use crate::util::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether `tool` runs; in CI it must (deploy/bootstrap.sh installs it).
pub(crate) fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI installs {tool} (deploy/bootstrap.sh)"
        );
        eprintln!("skipping: {tool} is not installed");
    }
    ok
}

/// Flows end quickly so that scans and sessions are judged within the test's patience.
pub(crate) const FAST_FLOWS: &str =
    "[sensor.pipeline.flow]\ntcp_new_timeout_secs = 2\ntcp_closed_timeout_secs = 1\n\
    tcp_established_timeout_secs = 5\nudp_timeout_secs = 3\nsweep_interval_ms = 200\n";

/// `netmonitor run` capturing `iface` with `config` appended to the fast-flow settings; EVE
/// goes to `eve.json` in `dir`.
pub(crate) fn start(dir: &Path, iface: &str, config: &str) -> (Running, u16) {
    start_with_env(dir, iface, config, &[])
}

/// As [`start`], with extra environment variables.
pub(crate) fn start_with_env(
    dir: &Path,
    iface: &str,
    config: &str,
    env: &[(&str, &str)],
) -> (Running, u16) {
    let cfg = dir.join("netmonitor.toml");
    std::fs::write(&cfg, format!("{FAST_FLOWS}{config}")).unwrap();
    let eve = dir.join("eve.json");
    let (cfg, eve) = (
        cfg.to_string_lossy().into_owned(),
        eve.to_string_lossy().into_owned(),
    );
    start_service_with(
        dir,
        env,
        &["--config", &cfg, "--interface", iface, "--eve", &eve],
    )
}

/// The alerts written so far.
fn alerts(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("eve.json"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "alert")
        .collect()
}

fn kind(a: &Value) -> &str {
    a["alert"]["metadata"]["threat_type"][0]
        .as_str()
        .unwrap_or("")
}

/// Waits for an alert (generously: flows end on their timeouts, and a loaded CI machine runs
/// the other live tests beside this one).
fn wait_alert(dir: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    wait_for(what, Duration::from_secs(150), || {
        found = alerts(dir).into_iter().find(|a| pred(a));
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn nmap_syn_and_connect_scans_are_port_scans_and_whitelisting_silences_them() {
    if !can_capture() || !have("nmap", "--version") {
        return;
    }
    let (net, host_ip, ns_ip) = veth(5);
    let second = net.add_address(&ns_ip, 3);
    let third = net.add_address(&ns_ip, 4);
    let dir = data_dir();
    let (_svc, port) = start(dir.path(), &net.host_if, "");
    let nmap = |args: &[&str], target: &str| {
        let out = Command::new("nmap")
            .args(["-n", "-Pn", "--max-retries", "0", "-T4"])
            .args(args)
            .arg(target)
            .output()
            .expect("nmap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nmap(&["-sS", "-p", "1-200"], &ns_ip);
    let syn = wait_alert(dir.path(), "the SYN scan", |a| {
        kind(a) == "port_scan" && a["dest_ip"] == ns_ip.as_str()
    });
    assert_eq!(syn["src_ip"], host_ip.as_str());
    assert!(syn["alert"]["context"]["ports"].as_u64().unwrap() >= 15);
    assert_eq!(syn["alert"]["metadata"]["mitre_technique_id"][0], "T1046");
    nmap(&["-sT", "-p", "1-200"], &second);
    wait_alert(dir.path(), "the connect scan", |a| {
        kind(a) == "port_scan" && a["dest_ip"] == second.as_str()
    });

    // The scanner whitelisted: the next scan raises nothing, and the stage counts it.
    let token = create_token(dir.path(), "soc", "admin");
    let mcp = McpSession::open(port, &token);
    let added = mcp.call(
        "add_whitelist_entry",
        json!({"ip_cidr": host_ip, "description": "vulnerability scanner"}),
    );
    assert_eq!(added["isError"], false, "{added}");
    let id = added["structuredContent"]["entry"]["id"].as_i64().unwrap();
    let before = alerts(dir.path()).len();
    nmap(&["-sS", "-p", "1-200"], &third);
    let suppressed = |mcp: &McpSession| {
        let s = mcp.call("get_sensor_status", json!({}));
        s["structuredContent"]["alerts"]["counters"]["whitelisted_by_entry"][id.to_string()]
            .as_u64()
            .unwrap_or(0)
    };
    wait_for(
        "the whitelisted scan to be counted",
        Duration::from_secs(60),
        || suppressed(&mcp) > 0,
    );
    assert_eq!(
        alerts(dir.path()).len(),
        before,
        "no alert for a whitelisted scanner"
    );
    drop(net);
}

#[test]
fn hydra_against_openssh_is_brute_force() {
    if !can_capture() || !have("hydra", "-h") || !have("ssh-keygen", "-?") {
        return;
    }
    let sshd = ["/usr/sbin/sshd", "/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(sshd) = sshd else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI installs openssh-server"
        );
        return;
    };
    let (net, host_ip, ns_ip) = veth(6);
    let dir = data_dir();
    let key = dir.path().join("host_key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all("/run/sshd").unwrap();
    let _server = Proc(
        net.exec(sshd)
            .args(["-D", "-e", "-p", "22", "-h"])
            .arg(&key)
            .args([
                "-o",
                "PasswordAuthentication=yes",
                "-o",
                "UsePAM=no",
                "-o",
                "MaxStartups=100",
            ])
            .args([
                "-o",
                &format!("PidFile={}", dir.path().join("sshd.pid").display()),
            ])
            .args(["-o", &format!("ListenAddress={ns_ip}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("sshd.log")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    wait_for("sshd", Duration::from_secs(20), || {
        std::net::TcpStream::connect((ns_ip.as_str(), 22)).is_ok()
    });
    // OpenSSH allows several passwords per connection and delays each failure, and a loaded
    // machine stretches both: count from five sessions of up to two minutes, so that the
    // forty guesses always make an attack however hydra spreads them.
    let (_svc, _port) = start(
        dir.path(),
        &net.host_if,
        "[detection.behaviour.brute_force]\nsessions = 5\nshort_session_secs = 120\n",
    );
    let words = dir.path().join("words.txt");
    let list: Vec<String> = (0..40).map(|i| format!("wrong-password-{i}")).collect();
    std::fs::write(&words, list.join("\n")).unwrap();
    let out = Command::new("hydra")
        .args(["-l", "nobody", "-P"])
        .arg(&words)
        .args(["-t", "4", "-w", "3", "-I", "-q"])
        .arg(format!("ssh://{ns_ip}"))
        .output()
        .expect("hydra");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 valid password"),
        "hydra ran: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let a = wait_alert(dir.path(), "the brute-force alert", |a| {
        kind(a) == "brute_force"
    });
    assert_eq!(a["src_ip"], host_ip.as_str());
    assert_eq!(a["alert"]["context"]["service"], "ssh");
    assert_eq!(a["alert"]["metadata"]["mitre_technique_id"][0], "T1110");
}

#[test]
fn iodine_carrying_data_through_dns_is_a_dns_tunnel() {
    if !can_capture() || !have("iodined", "-v") || !have("iodine", "-v") {
        return;
    }
    let net = bridged(7);
    let dir = data_dir();
    let domain = "t1.tunnel-test";
    let _server = Proc(
        net.server
            .exec("iodined")
            .args(["-f", "-c", "-P", "not-a-secret", "10.53.0.1/27", domain])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (_svc, _port) = start(dir.path(), &net.client.host_if, "");
    // -r: stay in DNS mode (no raw UDP shortcut to the server).
    let _client = Proc(
        net.client
            .exec("iodine")
            .args(["-f", "-r", "-P", "not-a-secret", &net.server_ip, domain])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Data through the tunnel: a TCP stream from the client namespace to the tunnel's far end.
    let _sink = Proc(
        net.server
            .exec("python3")
            .args(["-c", "import socket\ns=socket.create_server(('10.53.0.1',9))\nwhile True:\n c,_=s.accept()\n while c.recv(65536): pass\n"])
            .spawn()
            .unwrap(),
    );
    wait_for("the tunnel to come up", Duration::from_secs(60), || {
        net.client
            .exec("python3")
            .args(["-c", "import socket\nc=socket.create_connection(('10.53.0.1',9),timeout=5)\nc.sendall(b'x'*20000)\nc.close()\n"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let a = wait_alert(dir.path(), "the DNS tunnel alert", |a| {
        a["alert"]["signature_id"] == 9_500_008
    });
    assert_eq!(kind(&a), "dns_tunnel");
    assert_eq!(a["src_ip"], net.client_ip.as_str());
    assert_eq!(a["alert"]["context"]["domain"], domain);
    assert!(a["alert"]["context"]["unique_subdomains"].as_u64().unwrap() >= 50);
    assert_eq!(a["alert"]["metadata"]["mitre_technique_id"][0], "T1071.004");
}

/// Thresholds low enough that the chatter below would trip the DNS and beacon detections in
/// seconds if it were judged at all.
const TWITCHY: &str = "[detection.behaviour.dns]\nunique_subdomains = 5\nlong_label_queries = 1\n\
    long_label = 10\nentropy = 1.0\ntxt_null_queries = 5\n\
    [detection.behaviour.beacon]\nmin_connections = 4\nmin_span_secs = 1\nmin_interval_secs = 0.5\n\
    full_count = 4\nscore = 0.5\n";

/// A UPnP device's SSDP NOTIFY and M-SEARCH every second, each from a fresh socket, out of
/// the address given.
const SSDP: &str = r#"
import socket, sys, time
msgs = (b'NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n',
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n')
while True:
    for m in msgs:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[1]))
        s.sendto(m, ('239.255.255.250', 1900))
        s.close()
    time.sleep(1)
"#;

#[test]
fn avahi_mdns_and_ssdp_chatter_raise_nothing() {
    if !can_capture() || !have("avahi-daemon", "--version") {
        return;
    }
    let (net, _host_ip, ns_ip) = veth(8);
    let dir = data_dir();
    let services = dir.path().join("services");
    std::fs::create_dir_all(&services).unwrap();
    for i in 0..40 {
        std::fs::write(
            services.join(format!("q{i}.service")),
            format!(
                "<?xml version=\"1.0\" standalone='no'?>\n<!DOCTYPE service-group SYSTEM \
                \"avahi-service.dtd\">\n<service-group><name>Printer queue {i}</name><service>\
                <type>_ipp._tcp</type><port>631</port></service></service-group>\n"
            ),
        )
        .unwrap();
    }
    let conf = dir.path().join("avahi.conf");
    std::fs::write(
        &conf,
        format!(
            "[server]\nhost-name=nm-test-printer\nenable-dbus=no\nallow-interfaces={}\n\
            [publish]\npublish-workstation=yes\n",
            net.peer
        ),
    )
    .unwrap();
    let (_svc, port) = start(dir.path(), &net.host_if, TWITCHY);
    // avahi's runtime directory and services directory are private to this namespace's mounts.
    let _avahi = Proc(
        net.exec("sh")
            .arg("-c")
            .arg(format!(
                "mount -t tmpfs tmpfs /run && mkdir -p /run/avahi-daemon && \
                 mount --bind {} /etc/avahi/services && \
                 exec avahi-daemon -f {} --no-drop-root --no-chroot --no-rlimits",
                services.display(),
                conf.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("avahi.log")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    let _ssdp = Proc(
        net.exec("python3")
            .args(["-c", SSDP, &ns_ip])
            .spawn()
            .unwrap(),
    );
    // Wait until the sensor has seen the chatter: many distinct mDNS names and SSDP flows.
    let events = |t: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.path().join("eve.json"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event_type"] == t)
            .collect()
    };
    wait_for("mDNS names and SSDP flows", Duration::from_secs(60), || {
        let names: std::collections::HashSet<String> = events("dns")
            .iter()
            .filter_map(|d| d["dns"]["rrname"].as_str().map(str::to_owned))
            .filter(|n| n.ends_with(".local"))
            .collect();
        let ssdp = events("flow")
            .iter()
            .filter(|f| f["dest_port"] == 1900)
            .count();
        names.len() >= 20 && ssdp >= 10
    });
    // One more sweep for anything in flight, then nothing may have been raised.
    std::thread::sleep(Duration::from_secs(4));
    let raised: Vec<String> = alerts(dir.path())
        .iter()
        .map(|a| kind(a).to_owned())
        .collect();
    assert!(raised.is_empty(), "chatter raised {raised:?}");
    let token = create_token(dir.path(), "soc", "read_only");
    let mcp = McpSession::open(port, &token);
    let s = mcp.call("get_sensor_status", json!({}));
    assert_eq!(s["isError"], false, "{s}");
}

/// Accepts TCP connections on the given addresses (port 9000) and reads them to the end.
const SINK: &str = r#"
import socket, sys, threading
def serve(addr):
    s = socket.create_server((addr, 9000))
    while True:
        c, _ = s.accept()
        while c.recv(1 << 16):
            pass
        c.close()
for a in sys.argv[1:]:
    threading.Thread(target=serve, args=(a,), daemon=True).start()
threading.Event().wait()
"#;

/// Sends `n` bytes to `addr:9000` over one connection.
fn upload(addr: &str, n: usize) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect((addr, 9000)).expect("the sink");
    let chunk = vec![0x5au8; 1 << 16];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        s.write_all(&chunk[..k]).unwrap();
        left -= k;
    }
}

#[test]
fn a_backup_to_a_service_provider_is_not_exfiltration_but_the_same_volume_elsewhere_is() {
    if !can_capture() {
        return;
    }
    let (net, host_ip, ns_ip) = veth(9);
    let elsewhere = net.add_address(&ns_ip, 3);
    let dir = data_dir();
    let config = format!(
        "[detection.alerts]\nwhitelisted = \"keep\"\n[detection.behaviour]\nlocal_networks = [\"{host_ip}/32\"]\n\
         [detection.behaviour.volume]\nbucket_secs = 5\nabsolute_bytes = 4000000\n"
    );
    let (_svc, port) = start(dir.path(), &net.host_if, &config);
    let _sink = Proc(
        net.exec("python3")
            .args(["-c", SINK, &ns_ip, &elsewhere])
            .spawn()
            .unwrap(),
    );
    wait_for("the sink", Duration::from_secs(20), || {
        std::net::TcpStream::connect((ns_ip.as_str(), 9000)).is_ok()
            && std::net::TcpStream::connect((elsewhere.as_str(), 9000)).is_ok()
    });
    let token = create_token(dir.path(), "soc", "read_write");
    let mcp = McpSession::open(port, &token);
    let p = mcp.call(
        "create_service_provider",
        json!({"name": "offsite-backup", "category": "backup", "ranges": [format!("{ns_ip}/32")],
               "suppress": ["high_outbound_volume"]}),
    );
    assert_eq!(p["isError"], false, "{p}");
    let provider = p["structuredContent"]["provider"]["id"].as_i64().unwrap();
    let by_provider = |mcp: &McpSession| {
        let s = mcp.call("get_alert_suppression_stats", json!({}));
        s["structuredContent"]["by_service_provider"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == provider).cloned())
            .map_or(0, |x| x["suppressed"].as_u64().unwrap_or(0))
    };

    // The nightly backup: 6 MB to the provider.
    upload(&ns_ip, 6_000_000);
    wait_for(
        "the backup's volume to be judged and suppressed",
        Duration::from_secs(60),
        || by_provider(&mcp) > 0,
    );
    assert!(alerts(dir.path()).is_empty(), "no alert for the backup");
    let stats = mcp.call("get_alert_suppression_stats", json!({}));
    assert_eq!(stats["structuredContent"]["suppressed_alerts"], "keep");
    assert!(
        stats["structuredContent"]["kept_as_evidence"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // The same volume to an address nobody vouched for, in a later period: exfiltration.
    std::thread::sleep(Duration::from_secs(6));
    upload(&elsewhere, 6_000_000);
    let a = wait_alert(dir.path(), "the outbound volume alert", |a| {
        kind(a) == "high_outbound_volume"
    });
    assert_eq!(a["src_ip"], host_ip.as_str());
    assert_eq!(a["dest_ip"], elsewhere.as_str());
    assert!(a["alert"]["context"]["bytes_out"].as_u64().unwrap() >= 4_000_000);
    drop(net);
}
