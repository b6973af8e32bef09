//! Live alert latency: packet timestamp → alert leaving the shared alert stage, on the real
//! `netmonitor run --interface` capturing a veth pair this benchmark creates.
//!
//! Kerberos AS-REQs that offer only RC4 (one weak-encryption alert each, every one from its own
//! client address so no detector window or dedup swallows it) are sent as raw frames on the
//! host end of the pair at a steady RATE per second for SECONDS, then the service's
//! `netmonitor_alert_latency_seconds` histogram is read from `/metrics` and p50/p99 are
//! interpolated within its buckets (as Prometheus' `histogram_quantile` does). The kernel
//! timestamps each frame as it passes the capture tap, so the figure covers the capture ring's
//! block hand-over (`block_timeout_ms`), decoding, the Kerberos actor and the alert stage.
//!
//! With SCENARIO=dns_tunnel each alert is instead a behaviour detection: fifty queries with long
//! encoded labels from one client under its own domain, decided by the fiftieth.
//!
//! Run as root: `cargo bench --bench alert_latency` (RATE=N alerts/s, SECONDS=N,
//! SCENARIO=kerberos|dns_tunnel).

use netmonitor_capture::synth::{build, dns_query, krb_request, KrbSpec, XorShift};
use netmonitor_common::Timestamp;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Service(Child);
impl Drop for Service {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// The veth pair, removed on drop.
struct Veth(String);
impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip");
    assert!(st.success(), "ip {args:?}");
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200")
        .then(|| out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()))
        .flatten()
}

/// A raw AF_PACKET socket bound to `ifname`, for sending whole Ethernet frames.
fn raw_socket(ifname: &str) -> i32 {
    let name = std::ffi::CString::new(ifname).unwrap();
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(fd >= 0, "AF_PACKET socket (run as root)");
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        assert!(addr.sll_ifindex > 0, "no interface {ifname}");
        let rc = libc::bind(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind AF_PACKET to {ifname}");
        fd
    }
}

/// (upper bound, cumulative count) of every bucket of `name`, and its total count.
fn histogram(metrics: &str, name: &str) -> (Vec<(f64, f64)>, f64) {
    let mut buckets = Vec::new();
    let mut count = 0.0;
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix(&format!("{name}_bucket{{le=\"")) {
            let (le, value) = rest.split_once("\"} ").unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets.push((le, value.trim().parse().unwrap()));
        } else if let Some(v) = line.strip_prefix(&format!("{name}_count ")) {
            count = v.trim().parse().unwrap();
        }
    }
    (buckets, count)
}

/// The q-quantile by linear interpolation inside the bucket holding it.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, cum) in buckets {
        if cum >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let within = if cum > prev.1 {
                (rank - prev.1) / (cum - prev.1)
            } else {
                1.0
            };
            return prev.0 + (le - prev.0) * within;
        }
        prev = (le, cum);
    }
    prev.0
}

/// What raises each alert.
#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// One AS-REQ offering only RC4: the Kerberos actor decides on that packet.
    Kerberos,
    /// Fifty DNS queries with long encoded labels under one domain: the behaviour actor
    /// decides on the fiftieth (the "exploded subdomains" threshold).
    DnsTunnel,
}

/// The frames that raise alert number `i`, each from its own client address.
fn frames_for(scenario: Scenario, rng: &mut XorShift, i: u64) -> Vec<Vec<u8>> {
    let client = [10, 251 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
    let cport = 40_000 + (i % 20_000) as u16;
    match scenario {
        Scenario::Kerberos => {
            let spec = KrbSpec {
                realm: "BENCH.TEST",
                cname: "user",
                sname: &["krbtgt", "BENCH.TEST"],
                etypes: &[23],
                ticket_etype: 23,
                reply_etype: 23,
                now: Timestamp::now(),
            };
            let payload = krb_request(rng, &spec, false);
            vec![build::eth_ipv4_udp(
                client,
                [10, 250, 0, 1],
                cport,
                88,
                &payload,
            )]
        }
        Scenario::DnsTunnel => (0..50u16)
            .map(|q| {
                let label: String = (0..45)
                    .map(|_| {
                        b"abcdefghijklmnopqrstuvwxyz234567"[(rng.next_u64() % 32) as usize] as char
                    })
                    .collect();
                let name = format!("{label}.t{i}.tunnel-bench.example");
                let payload = dns_query(q, &name, 16);
                build::eth_ipv4_udp(client, [10, 250, 0, 53], cport, 53, &payload)
            })
            .collect(),
    }
}

/// Sends the frames of `count` alerts (numbered from `first`), paced at `rate` alerts per
/// second.
fn send_alerts(fd: i32, rng: &mut XorShift, scenario: Scenario, first: u64, count: u64, rate: u64) {
    let started = Instant::now();
    for n in 0..count {
        let frames = frames_for(scenario, rng, first + n);
        let due = started + Duration::from_micros(n * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for frame in frames {
            let sent = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) };
            assert_eq!(sent, frame.len() as isize, "send frame");
        }
    }
}

/// Reads the histogram until it holds `expected` observations (or 30 s pass).
fn settle(port: u16, name: &str, expected: f64) -> (Vec<(f64, f64)>, f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = histogram(&get(port, "/metrics").unwrap_or_default(), name);
        if h.1 >= expected || Instant::now() >= deadline {
            return h;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("alert_latency: needs root (a veth pair and raw frames); skipped");
        return;
    }
    let scenario = match std::env::var("SCENARIO").as_deref() {
        Ok("dns_tunnel") => Scenario::DnsTunnel,
        _ => Scenario::Kerberos,
    };
    let rate = env_or(
        "RATE",
        if scenario == Scenario::DnsTunnel {
            100
        } else {
            500
        },
    )
    .max(1);
    let secs = env_or("SECONDS", 6).max(1);
    let total = rate * secs;

    let id = std::process::id() % 10_000;
    let (host_if, peer) = (format!("nmbh{id}"), format!("nmbp{id}"));
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &peer,
    ]);
    let _veth = Veth(host_if.clone());
    ip(&["link", "set", &host_if, "up"]);
    ip(&["link", "set", &peer, "up"]);

    let dir = tempfile::Builder::new()
        .prefix("nm-bench-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _svc = Service(
        Command::new(env!("CARGO_BIN_EXE_netmonitor"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["run", "--interface", &host_if])
            .env("MCP_API_PORT", port.to_string())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while get(port, "/health").is_none() {
        assert!(Instant::now() < deadline, "service did not start");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A warm-up phase first (the service's first second pays for connections, caches and
    // page faults); the figure is the histogram's growth over the measured phase.
    let fd = raw_socket(&host_if);
    let mut rng = XorShift::new(7);
    let name = "netmonitor_alert_latency_seconds";
    let warmup = rate * env_or("WARMUP", 2);
    send_alerts(fd, &mut rng, scenario, 0, warmup, rate);
    let before = settle(port, name, warmup as f64);
    if std::env::var_os("BUCKETS").is_some() {
        println!("warm-up: {:?}", before.0);
    }
    send_alerts(fd, &mut rng, scenario, warmup, total, rate);
    unsafe { libc::close(fd) };
    let after = settle(port, name, (warmup + total) as f64);
    let buckets: Vec<(f64, f64)> = after
        .0
        .iter()
        .zip(&before.0)
        .map(|(a, b)| (a.0, a.1 - b.1))
        .collect();
    let measured = (buckets, after.1 - before.1);
    let (buckets, count) = measured;
    if std::env::var_os("BUCKETS").is_some() {
        println!("{buckets:?}");
    }
    assert!(count > 0.0, "no alert latency recorded");
    println!(
        "alert latency ({}), {count} of {total} alerts at {rate}/s: p50 {:.2} ms, p99 {:.2} ms",
        if scenario == Scenario::DnsTunnel {
            "behaviour: DNS tunnel, decided by the 50th query"
        } else {
            "Kerberos: RC4-only AS-REQ"
        },
        quantile(&buckets, 0.50) * 1e3,
        quantile(&buckets, 0.99) * 1e3
    );
}
