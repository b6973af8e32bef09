//! Ground truth: every fact in ../shared/oracles/expected.tsv (Suricata, Zeek and FoxIO values
//! for public pcaps) must hold for our EVE output, and every public capture must replay cleanly.

use crate::util::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn replay_to_eve(pcap: &Path, eve: &Path) {
    std::fs::create_dir_all(eve.parent().unwrap()).unwrap();
    let out = Command::new(bin())
        .args(["replay", "--no-db", "-q", "--eve"])
        .arg(eve)
        .arg(pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay of {} failed: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_oracle_fact_matches() {
    let Some(shared) = shared_dir() else { return };
    let oracles = shared.join("oracles");
    let expected = std::fs::read_to_string(oracles.join("expected.tsv")).unwrap();
    let captures: BTreeSet<&str> = expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next())
        .filter(|c| *c != "capture")
        .collect();
    assert!(
        captures.len() >= 10,
        "expected.tsv lists the oracle captures"
    );
    let eve_dir = tempfile::tempdir().unwrap();
    for c in &captures {
        replay_to_eve(&oracles.join(c), &eve_dir.path().join(format!("{c}.json")));
    }
    let out = Command::new("python3")
        .arg(oracles.join("check_eve.py"))
        .arg(oracles.join("expected.tsv"))
        .arg(&oracles)
        .arg(eve_dir.path())
        .output()
        .expect("python3 runs the oracle checker");
    let report = String::from_utf8_lossy(&out.stdout);
    let last = report.lines().last().unwrap_or_default().to_owned();
    assert!(
        out.status.success() && last.contains(" 0 failed, 0 missing-eve"),
        "oracle facts failed:\n{report}"
    );
}

#[test]
fn every_public_capture_replays_without_error() {
    let Some(shared) = shared_dir() else { return };
    let mut pcaps: Vec<_> = ["captures", "oracles"]
        .iter()
        .flat_map(|d| walk(&shared.join(d)))
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .collect();
    pcaps.sort();
    assert!(pcaps.len() >= 40, "found only {} captures", pcaps.len());
    let eve_dir = tempfile::tempdir().unwrap();
    let mut events = 0usize;
    for (i, p) in pcaps.iter().enumerate() {
        let eve = eve_dir.path().join(format!("{i}.json"));
        replay_to_eve(p, &eve);
        let text = std::fs::read_to_string(&eve).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("each EVE line is JSON");
            assert!(
                v["event_type"].is_string() && v["flow_id"].is_u64() && v["timestamp"].is_string()
            );
            events += 1;
        }
    }
    assert!(
        events > 500,
        "the public captures produce events ({events})"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
