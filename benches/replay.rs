//! Replay throughput of the full pipeline (decode, flows, ring buffer, reassembly, dissectors,
//! detections, EVE) against `tcpdump -r FILE -w /dev/null` on the same file in the same run.
//!
//! Two synthesized captures:
//! - `mixed`: realistic sizes, mostly bulk TCP plus TLS, Kerberos, DNS, a scan and a flood;
//! - `tls`: 50,000 TLS flows (handshake with a real-format ClientHello, certificate, a few data
//!   packets each); every flow must yield its JA3 and JA4;
//! - `random`: 1,000,000 packets over 20,000 flows between random hosts, on the well-known ports
//!   of the dissectors (443, 80, 53, 88, 22, 8443, 3389), three quarters TCP without handshakes,
//!   random payloads: what dissectors and reassembly cost on traffic they cannot parse.
//!
//! Run: `cargo bench --bench replay` (PACKETS=N sizes the mixed capture, TLS_FLOWS=N the TLS one,
//! RANDOM_PACKETS=N the random one; ONLY=mixed|tls|random runs one).

use netmonitor_capture::synth::{write_mix, write_random_mix, TrafficMix};
use std::io::{BufRead, BufReader, BufWriter};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best of `runs` wall times.
fn time_best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn tcpdump(file: &Path) -> Duration {
    time_best(3, || {
        let st = Command::new("tcpdump")
            .args(["-q", "-n", "-r"])
            .arg(file)
            .args(["-w", "/dev/null"])
            .stderr(Stdio::null())
            .status()
            .expect("tcpdump installed (apt-get install tcpdump)");
        assert!(st.success());
    })
}

fn replay(file: &Path, eve: Option<&Path>) -> Duration {
    time_best(3, || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmonitor"));
        cmd.args(["replay", "--no-db", "-q"]).stdout(Stdio::null());
        if let Some(e) = eve {
            cmd.arg("--eve").arg(e);
        }
        let st = cmd.arg(file).status().unwrap();
        assert!(st.success());
    })
}

fn report(name: &str, packets: u64, bytes: u64, reference: Duration, ours: Duration, label: &str) {
    let pps = packets as f64 / ours.as_secs_f64();
    println!(
        "  {name:<28} {:>8.3} s  {:>11.0} packets/s  {:>6.2} Gbit/s  time ratio vs tcpdump {:>5.2}x  ({label})",
        ours.as_secs_f64(),
        pps,
        bytes as f64 * 8.0 / ours.as_secs_f64() / 1e9,
        ours.as_secs_f64() / reference.as_secs_f64()
    );
}

fn main() {
    // BENCH_DIR keeps the synthesized captures for profiling; otherwise a temporary directory.
    let tmp = tempfile::tempdir().unwrap();
    let dir_path = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir_path).unwrap();
    let only = std::env::var("ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("mixed") {
        mixed(&dir_path);
    }
    if wanted("tls") {
        tls(&dir_path);
    }
    if wanted("random") {
        random(&dir_path);
    }
}

fn random(dir: &Path) {
    let file = dir.join("random.pcap");
    let summary = write_random_mix(
        BufWriter::new(std::fs::File::create(&file).unwrap()),
        env_or("RANDOM_PACKETS", 1_000_000),
        20_000,
        11,
    )
    .unwrap();
    let reference = tcpdump(&file);
    println!(
        "replay bench, random payloads on well-known ports: {} packets over 20,000 flows, {} bytes",
        summary.packets, summary.bytes
    );
    report(
        "tcpdump -r -w /dev/null",
        summary.packets,
        summary.bytes,
        reference,
        reference,
        "reference",
    );
    report(
        "netmonitor replay --no-db",
        summary.packets,
        summary.bytes,
        reference,
        replay(&file, None),
        "full pipeline",
    );
}

fn mixed(dir: &Path) {
    let mixed = dir.join("mixed.pcap");
    let summary = write_mix(
        BufWriter::new(std::fs::File::create(&mixed).unwrap()),
        &TrafficMix::benchmark(env_or("PACKETS", 1_000_000)),
    )
    .unwrap();
    let reference = tcpdump(&mixed);
    println!(
        "replay bench, mixed capture: {} packets, {} bytes",
        summary.packets, summary.bytes
    );
    report(
        "tcpdump -r -w /dev/null",
        summary.packets,
        summary.bytes,
        reference,
        reference,
        "reference",
    );
    report(
        "netmonitor replay --no-db",
        summary.packets,
        summary.bytes,
        reference,
        replay(&mixed, None),
        "full pipeline",
    );
    let eve = dir.join("mixed.json");
    report(
        "  ... with --eve",
        summary.packets,
        summary.bytes,
        reference,
        replay(&mixed, Some(&eve)),
        "full pipeline + EVE",
    );
}

fn tls(dir: &Path) {
    let flows = env_or("TLS_FLOWS", 50_000);
    let tls = dir.join("tls.pcap");
    let mix = TrafficMix {
        seed: 7,
        tls_sessions: flows,
        kerberos_exchanges: 0,
        dns_queries: 0,
        port_scan_ports: 0,
        syn_flood_packets: 0,
        bulk_flows: 0,
        bulk_packets_per_flow: 0,
        ..TrafficMix::default()
    };
    let summary = write_mix(BufWriter::new(std::fs::File::create(&tls).unwrap()), &mix).unwrap();
    let reference = tcpdump(&tls);
    println!(
        "replay bench, TLS capture: {flows} TLS flows, {} packets, {} bytes",
        summary.packets, summary.bytes
    );
    report(
        "tcpdump -r -w /dev/null",
        summary.packets,
        summary.bytes,
        reference,
        reference,
        "reference",
    );
    let eve = dir.join("tls.json");
    let ours = replay(&tls, Some(&eve));
    report(
        "netmonitor replay --eve",
        summary.packets,
        summary.bytes,
        reference,
        ours,
        "full pipeline + EVE",
    );
    let (mut ja3, mut ja4) = (0usize, 0usize);
    for line in BufReader::new(std::fs::File::open(&eve).unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["event_type"] == "tls" {
            ja3 += v["tls"]["ja3"]["hash"].is_string() as usize;
            ja4 += v["tls"]["ja4"].is_string() as usize;
        }
    }
    println!("  TLS flows with JA3: {ja3}/{flows}, with JA4: {ja4}/{flows}");
    assert_eq!(
        (ja3, ja4),
        (flows, flows),
        "every TLS flow must yield JA3 and JA4"
    );
}
