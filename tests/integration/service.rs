//! `netmonitor run` as a user runs it: private cluster created on first start, /health and
//! /metrics answer, `tokens` reaches the running cluster, SIGTERM shuts everything down, and a
//! second start reuses the cluster.

use crate::util::*;
use std::time::Duration;

#[test]
fn run_serves_health_and_metrics_and_shuts_down_cleanly() {
    let dir = data_dir();
    let (mut child, port) = start_service(dir.path(), &[]);

    let (status, head, body) = http(port, "GET", "/health", &[], "").unwrap();
    assert_eq!(status, 200);
    assert!(head
        .to_lowercase()
        .contains("content-type: application/json"));
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["database"], "connected");
    assert!(health["uptime_seconds"].is_u64());

    let (status, _, metrics) = http(port, "GET", "/metrics", &[], "").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "netmonitor_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("process_resident_memory_bytes"));
    assert!(metrics.contains("# TYPE process_cpu_seconds_total counter"));
    promtool_accepts(&metrics);
    // the middleware keeps its metric handles: each further request still counts
    let health_count = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "netmonitor_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} ",
                )
            })
            .and_then(|v| v.trim().parse().ok())
            .expect("a /health request count")
    };
    let before = health_count(&metrics);
    for _ in 0..3 {
        assert_eq!(http(port, "GET", "/health", &[], "").unwrap().0, 200);
    }
    let (_, _, metrics) = http(port, "GET", "/metrics", &[], "").unwrap();
    assert_eq!(health_count(&metrics), before + 3);

    // A second command talks to the running cluster instead of starting another.
    let out = netmonitor(dir.path())
        .args([
            "tokens",
            "create",
            "--name",
            "analyst",
            "--scope",
            "read_only",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        secret.len() >= 32,
        "secret printed on its own line: {secret:?}"
    );
    let list = netmonitor(dir.path())
        .args(["tokens", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("analyst") && listed.contains("active"));
    assert!(!listed.contains(&secret), "the secret must never be listed");
    assert!(
        dir.path().join("pg/postmaster.pid").exists(),
        "cluster still up: started by `run`"
    );

    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let mut exited = None;
    wait_for("netmonitor to exit", Duration::from_secs(30), || {
        exited = child.0.try_wait().unwrap();
        exited.is_some()
    });
    assert!(exited.unwrap().success());
    assert!(
        !dir.path().join("pg/postmaster.pid").exists(),
        "run stops the cluster it started"
    );

    // The next start reuses the same cluster: the token is still there.
    let list = netmonitor(dir.path())
        .args(["tokens", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("analyst"));
}

#[test]
fn bad_configuration_is_reported_by_name() {
    let dir = data_dir();
    let out = netmonitor(dir.path())
        .arg("migrate")
        .env("MCP_API_PORT", "not-a-port")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MCP_API_PORT") && err.contains("port number"),
        "{err}"
    );

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[store]\nbatch_size = 0\n").unwrap();
    let out = netmonitor(dir.path())
        .arg("--config")
        .arg(&cfg)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.batch_size"));
}

/// `promtool check metrics` finds nothing wrong (HELP text, types, names); promtool comes with
/// Debian's prometheus package, which the bootstrap script installs for the tests.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "promtool is installed in CI"
        );
        eprintln!("skipping the promtool check: promtool not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool check metrics: {findings}"
    );
}
