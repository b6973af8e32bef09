//! Running an approved action from what was proposed (the record, not the playbook, which may
//! have changed since): a signed webhook, a command without a shell, an nftables element, an
//! acknowledgement or an enrichment. Every outcome says how long it took and what came back.

use crate::core::SoarCore;
use hmac::{Hmac, Mac};
use netmonitor_store::soar::ActionRow;
use serde_json::{json, Value};
use sha2::Sha256;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-NetMonitor-Signature";
/// Bytes of stdout/stderr kept in an outcome.
const EXCERPT: usize = 2048;

/// The HMAC-SHA256 signature header value of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(EXCERPT).collect()
}

/// Runs the action; answers whether it worked and what happened.
pub async fn execute(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    let started = Instant::now();
    let (ok, mut outcome) = match row.action_type.as_str() {
        "notify" => notify(core, row).await,
        "block_ip" | "rate_limit" | "block_domain" | "command" => command(core, row).await,
        "acknowledge" => acknowledge(core, row).await,
        "enrich" => enrich(core, row).await,
        "tag_device" => tag_device(core, row).await,
        "capture" => capture(core, row).await,
        other => (
            false,
            json!({"error": format!("unknown action type {other}")}),
        ),
    };
    outcome["duration_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    metrics::counter!("netmonitor_soar_actions_total", "type" => row.action_type.clone(), "outcome" => if ok { "executed" } else { "failed" }).increment(1);
    (ok, outcome)
}

/// The webhook and the mail a `notify` action sends (either or both).
async fn notify(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    let mut ok = true;
    let mut out = json!({});
    if row.proposed.get("url").is_some_and(|u| u.is_string()) {
        let (w, v) = webhook(core, row).await;
        ok &= w;
        // The webhook's figures at the top (http_status, response_excerpt, signed).
        if let Value::Object(m) = v {
            for (k, v) in m {
                out[k] = v;
            }
        }
    }
    if let Some(to) = row.proposed.get("to").and_then(Value::as_array) {
        let to: Vec<String> = to
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let (m, v) = mail(core, row, to).await;
        ok &= m;
        out["mail"] = v;
    }
    (ok, out)
}

async fn mail(core: &SoarCore, row: &ActionRow, to: Vec<String>) -> (bool, Value) {
    let Some(smtp) = core.cfg.smtp.clone() else {
        return (false, json!({"error": "no [soar.smtp] relay configured"}));
    };
    let subject = format!(
        "[NetMonitor] {}: {} on {}",
        row.playbook,
        row.evidence
            .get("signature")
            .and_then(Value::as_str)
            .unwrap_or("alert"),
        row.target
    );
    let body = serde_json::to_string_pretty(&json!({
        "action_id": row.id, "playbook": row.playbook, "target": row.target,
        "approved_by": row.decided_by, "alert": row.evidence,
    }))
    .unwrap_or_default();
    let timeout = Duration::from_secs(core.cfg.action_timeout_secs);
    let recipients = to.clone();
    let r = tokio::task::spawn_blocking(move || {
        crate::smtp::send(
            &smtp.server,
            &smtp.helo,
            &smtp.from,
            &recipients,
            &subject,
            &body,
            timeout,
        )
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match r {
        Ok(reply) => (true, json!({"to": to, "relay_reply": reply})),
        Err(e) => (false, json!({"to": to, "error": e})),
    }
}

async fn webhook(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    let Some(url) = row
        .proposed
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return (false, json!({"error": "no url"}));
    };
    let secret = match row.proposed.get("secret_env").and_then(Value::as_str) {
        Some(var) => match std::env::var(var) {
            Ok(v) => Some(v),
            Err(_) => {
                return (
                    false,
                    json!({"error": format!("the environment variable {var} holding the signing key is not set")}),
                )
            }
        },
        None => None,
    };
    let body = json!({
        "action_id": row.id,
        "playbook": row.playbook,
        "target": row.target,
        "approved_by": row.decided_by,
        "alert": row.evidence,
        "sent_at": chrono::Utc::now().to_rfc3339(),
    })
    .to_string();
    let timeout = Duration::from_secs(core.cfg.action_timeout_secs);
    let id = row.id;
    let res = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .build();
        let mut req = agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set("X-NetMonitor-Action-Id", &id.to_string());
        if let Some(key) = &secret {
            req = req.set(
                SIGNATURE_HEADER,
                &signature(key.as_bytes(), body.as_bytes()),
            );
        }
        match req.send_string(&body) {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default(), None),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default(), None),
            Err(e) => (0, String::new(), Some(e.to_string())),
        }
    })
    .await;
    match res {
        Ok((status, text, None)) => (
            (200..300).contains(&status),
            json!({"http_status": status, "response_excerpt": excerpt(text.as_bytes()), "signed": row.proposed.get("secret_env").is_some_and(|v| !v.is_null())}),
        ),
        Ok((_, _, Some(e))) => (false, json!({"error": e})),
        Err(e) => (false, json!({"error": e.to_string()})),
    }
}

async fn command(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    let argv: Vec<String> = row
        .proposed
        .get("command")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if argv.is_empty() {
        return (false, json!({"error": "no command"}));
    }
    if row.proposed.get("dry_run").and_then(Value::as_bool) == Some(true) {
        return (
            true,
            json!({"dry_run": true, "command": argv, "note": "dry run: recorded, not run"}),
        );
    }
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let timeout = Duration::from_secs(core.cfg.action_timeout_secs);
    match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => (
            out.status.success(),
            json!({
                "command": argv,
                "exit_code": out.status.code(),
                "stdout": excerpt(&out.stdout),
                "stderr": excerpt(&out.stderr),
            }),
        ),
        Ok(Err(e)) => (
            false,
            json!({"command": argv, "error": format!("cannot run: {e}")}),
        ),
        Err(_) => (
            false,
            json!({"command": argv, "error": format!("timed out after {} s", timeout.as_secs())}),
        ),
    }
}

async fn acknowledge(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    use diesel_async::AsyncConnection;
    let Ok(ip) = row.target.parse::<IpAddr>() else {
        return (false, json!({"error": "target is not an address"}));
    };
    let threat = row
        .evidence
        .get("threat_type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let at = row
        .evidence
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc));
    let window = netmonitor_store::queries::Window {
        since: at - chrono::Duration::hours(1),
        until: at + chrono::Duration::hours(1),
    };
    let by = format!("soar:{}", row.playbook);
    let r: Result<_, String> = async {
        let mut conn = diesel_async::AsyncPgConnection::establish(&core.db)
            .await
            .map_err(|e| e.to_string())?;
        netmonitor_store::queries::acknowledge_alerts_by_ip(
            &mut conn,
            &ip.to_string(),
            window,
            threat.as_deref(),
            &by,
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match r {
        Ok(n) => (true, json!({"acknowledged": n, "acknowledged_by": by})),
        Err(e) => (false, json!({"error": e})),
    }
}

async fn enrich(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    let Ok(ip) = row.target.parse::<IpAddr>() else {
        return (false, json!({"error": "target is not an address"}));
    };
    let risk = match &core.risk {
        Some(r) => r
            .send(netmonitor_risk::QueryRisk::new(move |book| {
                let chains: Vec<Value> = book
                    .chains
                    .iter()
                    .filter(|c| c.sources.contains(&ip) || c.targets.contains(&ip))
                    .map(|c| json!({"id": c.id, "stages": c.stages.len(), "score": c.score()}))
                    .collect();
                json!({"risk": book.explain(&ip, 3_600_000_000), "chains": chains})
            }))
            .await
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let device = match &core.devices {
        Some(d) => d
            .send(netmonitor_devices::QueryDevices::new(move |book| {
                json!(book.by_ip(ip).map(|d| json!({"id": d.id, "vendor": d.vendor, "hostnames": d.hostnames, "template": d.template, "criticality": book.criticality(d)})))
            }))
            .await
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    (
        true,
        json!({"device": device, "risk": risk["risk"], "chains": risk["chains"]}),
    )
}

async fn tag_device(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    let (Ok(ip), Some(tag)) = (
        row.target.parse::<IpAddr>(),
        row.proposed
            .get("tag")
            .and_then(Value::as_str)
            .map(str::to_owned),
    ) else {
        return (false, json!({"error": "needs an address and a tag"}));
    };
    let Some(devices) = &core.devices else {
        return (
            false,
            json!({"error": "no device inventory in this process"}),
        );
    };
    let t = tag.clone();
    match devices
        .send(netmonitor_devices::UpdateDevices::new(move |book| {
            book.tag(ip, &t).map(|id| json!({"device_id": id}))
        }))
        .await
    {
        Ok(Ok(v)) => (true, json!({"device_id": v["device_id"], "tag": tag})),
        Ok(Err(e)) => (false, json!({"error": e})),
        Err(e) => (false, json!({"error": e.to_string()})),
    }
}

async fn capture(core: &SoarCore, row: &ActionRow) -> (bool, Value) {
    use diesel_async::AsyncConnection;
    let Ok(ip) = row.target.parse::<IpAddr>() else {
        return (false, json!({"error": "target is not an address"}));
    };
    let Some((capture, dir)) = core.capture.get() else {
        return (false, json!({"error": "no capture in this process"}));
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return (
            false,
            json!({"error": format!("captures directory {}: {e}", dir.display())}),
        );
    }
    let max = row
        .proposed
        .get("max_packets")
        .and_then(Value::as_u64)
        .unwrap_or(10_000);
    let filter = netmonitor_capture::ring::ExportFilter {
        ip_a: Some(ip),
        max_packets: Some(max.clamp(1, 1_000_000) as usize),
        ..Default::default()
    };
    let path = dir.join(format!(
        "soar-{}-{}.pcap",
        row.id,
        row.target.replace(':', "_")
    ));
    let res = match capture.export_pcap(filter, path.clone()).await {
        Ok(r) => r,
        Err(e) => return (false, json!({"error": format!("export failed: {e}")})),
    };
    let path_s = path.display().to_string();
    let flow_id = row.evidence.get("flow_id").and_then(Value::as_i64);
    let recorded: Result<_, String> = async {
        let mut conn = diesel_async::AsyncPgConnection::establish(&core.db)
            .await
            .map_err(|e| e.to_string())?;
        netmonitor_store::queries::insert_pcap_capture(
            &mut conn,
            &path_s,
            flow_id,
            None,
            i64::try_from(res.packets).unwrap_or(i64::MAX),
            i64::try_from(res.bytes).unwrap_or(i64::MAX),
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match recorded {
        Ok(r) => (
            true,
            json!({"capture_id": r.id, "path": path_s, "packets": res.packets, "bytes": res.bytes}),
        ),
        Err(e) => (
            false,
            json!({"path": path_s, "packets": res.packets, "error": format!("not recorded: {e}")}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
