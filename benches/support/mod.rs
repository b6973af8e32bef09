//! What the benchmarks share: timing `netmonitor replay` from its own summary line, the best of
//! alternating runs with a feature off and on, sizes from the environment, percentiles.
//! (Each bench uses a part of it.)
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// The replay's own time in seconds ("… in 0.328 s (…)" — after feeds and tables were loaded),
/// with `config` when given.
pub fn replay_secs(config: Option<&Path>, pcap: &Path) -> f64 {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netmonitor"));
    cmd.env("LOG_LEVEL", "warn");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd
        .args(["replay", "--no-db", "-q"])
        .arg(pcap)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(" in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("replay summary")
}

/// The best of `runs` replays of `pcap` with the `off` configuration and with the `on` one,
/// alternating so that a noisy machine weighs on both alike: (off, on) seconds.
pub fn best_off_on(runs: usize, off: Option<&Path>, on: Option<&Path>, pcap: &Path) -> (f64, f64) {
    let (mut without, mut with) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        without = without.min(replay_secs(off, pcap));
        with = with.min(replay_secs(on, pcap));
    }
    (without, with)
}

/// A size from the environment (`PACKETS=…`), else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0–1) of `v` (sorted in place).
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
