//! What the replay-cost benchmarks share: timing `netmonitor replay` from its own summary line,
//! and the best of alternating runs with a feature off and on.

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
