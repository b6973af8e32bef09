//! Behaviour detections against real attack tools nobody here wrote, on veth pairs into
//! namespaces these tests create (only those addresses are ever targeted), with `netmonitor run
//! --interface` capturing the host end: nmap's SYN and connect scans, hydra against an OpenSSH
//! server, iodine tunnelling through iodined; and chatter that must stay quiet.

use crate::netns::*;
use crate::util::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `tool` runs; in CI it must (deploy/bootstrap.sh installs it).
fn have(tool: &str, arg: &str) -> bool {
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
const FAST_FLOWS: &str = "[sensor.pipeline.flow]\ntcp_new_timeout_secs = 2\ntcp_closed_timeout_secs = 1\n\
    tcp_established_timeout_secs = 5\nudp_timeout_secs = 3\nsweep_interval_ms = 200\n";

/// `netmonitor run` capturing `iface` with `config` appended to the fast-flow settings; EVE
/// goes to `eve.json` in `dir`.
fn start(dir: &Path, iface: &str, config: &str) -> (Running, u16) {
    let cfg = dir.join("netmonitor.toml");
    std::fs::write(&cfg, format!("{FAST_FLOWS}{config}")).unwrap();
    let eve = dir.join("eve.json");
    let (cfg, eve) = (cfg.to_string_lossy().into_owned(), eve.to_string_lossy().into_owned());
    start_service_with(
        dir,
        &[],
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
    a["alert"]["metadata"]["threat_type"][0].as_str().unwrap_or("")
}

fn wait_alert(dir: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    wait_for(what, Duration::from_secs(60), || {
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
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
    let added = mcp.call("add_whitelist_entry", json!({"ip_cidr": host_ip, "description": "vulnerability scanner"}));
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
    wait_for("the whitelisted scan to be counted", Duration::from_secs(60), || {
        suppressed(&mcp) > 0
    });
    assert_eq!(alerts(dir.path()).len(), before, "no alert for a whitelisted scanner");
    drop(net);
}

#[test]
fn hydra_against_openssh_is_brute_force() {
    if !can_capture() || !have("hydra", "-h") || !have("ssh-keygen", "-?") {
        return;
    }
    let sshd = ["/usr/sbin/sshd", "/sbin/sshd"].into_iter().find(|p| Path::new(p).exists());
    let Some(sshd) = sshd else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI installs openssh-server");
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
            .args(["-o", "PasswordAuthentication=yes", "-o", "UsePAM=no", "-o", "MaxStartups=100"])
            .args(["-o", &format!("PidFile={}", dir.path().join("sshd.pid").display())])
            .args(["-o", &format!("ListenAddress={ns_ip}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("sshd.log")).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for("sshd", Duration::from_secs(20), || {
        std::net::TcpStream::connect((ns_ip.as_str(), 22)).is_ok()
    });
    let (_svc, _port) = start(dir.path(), &net.host_if, "");
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
    let a = wait_alert(dir.path(), "the brute-force alert", |a| kind(a) == "brute_force");
    assert_eq!(a["src_ip"], host_ip.as_str());
    assert_eq!(a["alert"]["context"]["service"], "ssh");
    assert_eq!(a["alert"]["metadata"]["mitre_technique_id"][0], "T1110");
}
