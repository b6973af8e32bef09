//! Interop with a client we did not write: the official Python SDK (`pip install mcp`) runs
//! tests/python/interop.py against this server over Streamable HTTP (handshake and
//! server/discover) and the legacy HTTP+SSE transport. Skipped with a message when the `mcp`
//! package is not importable, unless CI=true (then it must run).

use crate::util::*;
use std::process::Command;
use std::time::Duration;

fn python_has_mcp() -> bool {
    Command::new("python3")
        .args(["-c", "import mcp, httpx2"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn official_python_sdk() {
    if !python_has_mcp() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the Python `mcp` package is required in CI (pip install mcp)");
        }
        eprintln!("SKIPPED official_python_sdk: python3 cannot import `mcp` (pip install mcp)");
        return;
    }
    let ts = start(test_config());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");
    let mut child = match Command::new("python3")
        .arg(script)
        .env("MCP_TEST_URL", format!("http://{}", ts.addr))
        .env("MCP_TEST_TOKEN", ADMIN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("spawn python3: {e}"),
    };
    // bounded: kill the client if it hangs
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break,
        }
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => panic!("python3: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "python interop failed:\n{stdout}\n{stderr}"
    );
    for scenario in [
        "OK streamable-handshake",
        "OK streamable-discover",
        "OK legacy-sse",
        "OK bad-token",
    ] {
        assert!(stdout.contains(scenario), "missing {scenario}:\n{stdout}");
    }
    // the SDK's calls were audited with the tool names
    let rows = ts.audit.rows();
    assert!(
        rows.iter()
            .filter(|r| r.tool.as_deref() == Some("echo"))
            .count()
            >= 6
    );
    assert!(rows
        .iter()
        .any(|r| r.method == "server/discover" && r.status == "ok"));
    assert!(rows.iter().any(|r| r.method == "GET /sse"));
}
