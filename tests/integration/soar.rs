//! SOAR end to end, with real tools: nmap scans a namespace this test creates, the port-scan
//! alert triggers a playbook, its two actions wait for approval, the official MCP Python SDK
//! (subscribed to soar://pending) is told without polling and is refused when its read_only
//! token tries to approve; the service restarts with the actions still pending; a read_write
//! token approves the webhook, which reaches a local HTTP receiver with a valid HMAC-SHA256
//! signature (checked with openssl), and the block, whose dry-run nft command is then run for
//! real inside the namespace and the address is listed in the set. A second approval is
//! refused; the history shows who decided and when.

use crate::behaviour::{have, start_with_env};
use crate::netns::*;
use crate::util::*;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "correct horse battery staple";

/// A webhook receiver on loopback: every request's headers (lower-cased) and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

fn receiver() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Received = Arc::default();
    let out = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream);
            let mut headers = Vec::new();
            let mut line = String::new();
            let _ = r.read_line(&mut line); // request line
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            out.lock().unwrap().push((headers, body));
        }
    });
    (port, got)
}

/// A mail relay on loopback: every message's envelope recipients and data.
type Mail = Arc<Mutex<Vec<(Vec<String>, String)>>>;

fn mail_relay() -> (u16, Mail) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Mail = Arc::default();
    let out = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let _ = w.write_all(b"220 relay.test ESMTP\r\n");
            let (mut rcpt, mut data, mut in_data) = (Vec::new(), String::new(), false);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let l = line.trim_end().to_owned();
                line.clear();
                if in_data {
                    if l == "." {
                        in_data = false;
                        out.lock().unwrap().push((rcpt.clone(), data.clone()));
                        let _ = w.write_all(b"250 2.0.0 queued\r\n");
                    } else {
                        data.push_str(&l);
                        data.push('\n');
                    }
                    continue;
                }
                let reply: &[u8] = match l.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "EHLO" => b"250-relay.test\r\n250 8BITMIME\r\n",
                    "RCPT" => {
                        rcpt.push(
                            l["RCPT TO:".len()..]
                                .trim_matches(|c| c == '<' || c == '>')
                                .to_owned(),
                        );
                        b"250 ok\r\n"
                    }
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = w.write_all(reply);
            }
        }
    });
    (port, got)
}

/// `openssl dgst -sha256 -hmac KEY` of `body`, as the header spells it.
fn openssl_hmac(body: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256={}", text.split_whitespace().last().unwrap_or(""))
}

fn structured(r: Value) -> Value {
    assert!(r["isError"] != json!(true), "{r}");
    r["structuredContent"].clone()
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
fn a_scan_waits_for_approval_over_mcp_and_runs_once_approved() {
    if !can_capture() || !have("nmap", "--version") || !have("nft", "--version") {
        return;
    }
    let (net, host_ip, ns_ip) = veth(10);
    let dir = data_dir();
    let (hook_port, received) = receiver();
    let (smtp_port, mailed) = mail_relay();
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(
        playbooks.join("contain.toml"),
        format!(
            r#"name = "contain-scanners"
description = "Tell the SOC and block a host that scans"
[trigger]
kinds = ["port_scan"]

[[actions]]
type = "notify"
url = "http://127.0.0.1:{hook_port}/soc"
secret_env = "NM_SOAR_SECRET"
to = ["soc@example.test"]
approval = true

[[actions]]
type = "block_ip"
target = "src"

[[actions]]
type = "capture"

[[actions]]
type = "tag_device"
tag = "scanner"
"#
        ),
    )
    .unwrap();
    // A broken playbook beside it is reported, and does not stop the good one.
    std::fs::write(playbooks.join("broken.toml"), "name = \"x\"\n[trigger]\nkinds = [\"no_such_kind\"]\n[[actions]]\ntype = \"notify\"\nurl = \"http://x\"\n").unwrap();
    let config = format!(
        "[soar]\nplaybooks_dir = \"{}\"\napproval_expiry_secs = 900\n\
         [soar.smtp]\nserver = \"127.0.0.1:{smtp_port}\"\nfrom = \"netmonitor@sensor.test\"\n",
        playbooks.display()
    );
    let env = [("NM_SOAR_SECRET", SECRET)];
    let (svc, port) = start_with_env(dir.path(), &net.host_if, &config, &env);
    let reader = create_polling_token(dir.path(), "soar-ro", "read_only");
    let writer = create_polling_token(dir.path(), "soar-rw", "read_write");
    let s = McpSession::open(port, &reader);

    let books = structured(s.call("get_soar_playbooks", json!({})));
    assert_eq!(books["playbooks"][0]["name"], "contain-scanners", "{books}");
    assert_eq!(books["playbooks"][0]["actions"][1]["needs_approval"], true);
    let err = &books["errors"][0];
    assert!(
        err["file"].as_str().unwrap().ends_with("broken.toml")
            && err["line"] == 3
            && err["field"] == "trigger.kinds",
        "{books}"
    );

    // The approver's assistant subscribes first; the scan comes after.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/python/soar_client.py"
    );
    let mut client = Command::new("python3")
        .arg(script)
        .env("NM_URL", format!("http://127.0.0.1:{port}"))
        .env("NM_READ_TOKEN", &reader)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert_eq!(first, "SUBSCRIBED", "the SDK client did not subscribe");
    let out = Command::new("nmap")
        .args([
            "-n",
            "-Pn",
            "--max-retries",
            "0",
            "-T4",
            "-sS",
            "-p",
            "1-200",
        ])
        .arg(&ns_ip)
        .output()
        .expect("nmap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let told = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let status = client.wait().unwrap();
    let mut stderr = String::new();
    let _ = client.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        status.success() && told.starts_with("PENDING "),
        "SDK client: {told}\n{stderr}"
    );
    let pushed: Value = serde_json::from_str(&told["PENDING ".len()..]).unwrap();
    assert!(pushed.to_string().contains(&host_ip), "{pushed}");

    let pending = structured(s.call("get_pending_approvals", json!({})));
    assert_eq!(pending["count"], 2, "{pending}");
    let find = |kind: &str| {
        pending["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action_type"] == kind)
            .cloned()
            .unwrap()
    };
    let (notify, block) = (find("notify"), find("block_ip"));
    assert_eq!(block["target"], host_ip.as_str());
    let command: Vec<String> =
        serde_json::from_value(block["proposed"]["command"].clone()).unwrap();
    assert_eq!(
        command[..6],
        [
            "nft",
            "add",
            "element",
            "inet",
            "netmonitor",
            "blocklist_v4"
        ]
    );
    assert_eq!(command[6], format!("{{ {host_ip} }}"));
    assert_eq!(block["evidence"]["threat_type"], "port_scan");
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing runs before approval"
    );

    // The read_only refusal was audited.
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=netmonitor",
        dir.path().join("run").display()
    );
    wait_for("the refusal audited", Duration::from_secs(15), || {
        let mut conn = PgConnection::establish(&conninfo).unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM api_token_usage WHERE token_name = 'soar-ro' AND tool = 'approve_soar_action' AND status <> 'ok'")
            .get_result::<N>(&mut conn)
            .unwrap()
            .n
            >= 1
    });

    // A restart between pending and approved loses nothing.
    let mut svc = svc;
    unsafe { libc::kill(svc.0.id() as i32, libc::SIGTERM) };
    wait_for("netmonitor to exit", Duration::from_secs(30), || {
        svc.0.try_wait().unwrap().is_some()
    });
    drop(svc);
    let (_svc, port) = start_with_env(dir.path(), &net.host_if, &config, &env);
    let s = McpSession::open(port, &reader);
    let w = McpSession::open(port, &writer);
    let again = structured(s.call("get_pending_approvals", json!({})));
    assert_eq!(again["count"], 2, "{again}");

    // Approved: the webhook arrives signed; a second approval is refused.
    let done = structured(w.call(
        "approve_soar_action",
        json!({"action_id": notify["id"], "approved": true, "reason": "SOC on call agreed"}),
    ));
    let action = &done["action"];
    assert_eq!(action["state"], "executed", "{done}");
    assert_eq!(action["outcome"]["http_status"], 200);
    assert_eq!(action["decided_by"], "soar-rw");
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one POST");
    let (headers, body) = &got[0];
    let sig = headers
        .iter()
        .find(|(k, _)| k == "x-netmonitor-signature")
        .map(|(_, v)| v.clone());
    assert_eq!(sig, Some(openssl_hmac(body)), "valid HMAC-SHA256 signature");
    let posted: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(posted["alert"]["threat_type"], "port_scan");
    assert_eq!(posted["target"], host_ip.as_str());
    let mail = mailed.lock().unwrap().clone();
    assert_eq!(mail.len(), 1, "one mail through the relay");
    assert_eq!(mail[0].0, ["soc@example.test"]);
    assert!(
        mail[0]
            .1
            .contains("Subject: [NetMonitor] contain-scanners:")
            && mail[0].1.contains("port_scan"),
        "{}",
        mail[0].1
    );
    assert!(
        action["outcome"]["mail"]["relay_reply"]
            .as_str()
            .unwrap()
            .contains("queued"),
        "{action}"
    );
    let twice = w.call(
        "approve_soar_action",
        json!({"action_id": notify["id"], "approved": true}),
    );
    assert_eq!(twice["isError"], true, "{twice}");
    assert_eq!(received.lock().unwrap().len(), 1, "never run twice");

    let blocked = structured(w.call(
        "approve_soar_action",
        json!({"action_id": block["id"], "approved": true}),
    ));
    assert_eq!(blocked["action"]["state"], "executed", "{blocked}");
    assert_eq!(blocked["action"]["outcome"]["dry_run"], true);

    // The command we proposed is one nftables accepts: run it in the namespace, list the set.
    let nft = |args: &[&str]| {
        let out = net.exec("nft").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    nft(&["add", "table", "inet", "netmonitor"]);
    nft(&[
        "add",
        "set",
        "inet",
        "netmonitor",
        "blocklist_v4",
        "{ type ipv4_addr; }",
    ]);
    let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
    nft(&args);
    let listed = nft(&["list", "set", "inet", "netmonitor", "blocklist_v4"]);
    assert!(listed.contains(&host_ip), "{listed}");

    let history = structured(s.call("get_soar_history", json!({"state": "executed"})));
    assert_eq!(history["count"], 4, "{history}");
    for a in history["actions"].as_array().unwrap() {
        assert!(a["decided_at"].is_string() && a["executed_at"].is_string());
        match a["action_type"].as_str().unwrap() {
            "notify" | "block_ip" => {
                assert_eq!(a["decided_by"], "soar-rw");
                assert!(a["decided_by_token"].is_i64());
            }
            // Not destructive: the playbook lets them run at once.
            "capture" => {
                assert_eq!(a["decided_by"], "playbook");
                assert!(a["outcome"]["packets"].as_u64().unwrap() > 0, "{a}");
                assert!(std::path::Path::new(a["outcome"]["path"].as_str().unwrap()).exists());
            }
            "tag_device" => assert_eq!(a["outcome"]["tag"], "scanner", "{a}"),
            other => panic!("unexpected {other}"),
        }
    }
    let captures = structured(s.call("get_pcap_captures", json!({})));
    assert!(
        captures.to_string().contains("soar-"),
        "recorded in pcap_captures: {captures}"
    );
    drop(net);
}
