//! `get_security_recommendation`: advice from what the sensor saw. Rules map each kind of
//! detection found for the subject (an address, or the whole network) to concrete actions,
//! most urgent first. Where an Ollama endpoint is configured and answers, the configured model
//! writes the advice text from the same findings (the seed system's optional analysis); the
//! rule-based answer is always there and is the fallback.

use crate::args::Args;
use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use serde_json::{json, Value};
use std::time::Duration;

/// Longest wait for the model.
const OLLAMA_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait to connect to it.
const OLLAMA_CONNECT: Duration = Duration::from_secs(2);

/// (threat type, priority 1 = act now, action, reason).
const ADVICE: &[(&str, u8, &str, &str)] = &[
    ("blacklisted_ip", 1, "Block the listed address at the perimeter and review every internal host that exchanged traffic with it (get_threat_context) for signs of compromise.", "A threat feed lists the address as malicious infrastructure."),
    ("malicious_domain", 1, "Sinkhole or block the domain at the resolver, then check the clients that resolved it for malware.", "A threat feed lists the name (or a parent domain) as malicious."),
    ("malicious_url", 1, "Block the URL at the web proxy and check the requesting host for the downloaded payload.", "A threat feed lists the URL (malware distribution)."),
    ("malicious_ja3", 1, "Isolate the clients presenting the fingerprint and inspect the process that opens those connections.", "The TLS fingerprint belongs to a known malware client stack."),
    ("malicious_cert", 1, "Block the server presenting the certificate and look for other hosts contacting it.", "The certificate is listed as command-and-control infrastructure."),
    ("threat_feed_match", 2, "Review the matched indicator's feed entry and the hosts involved.", "A threat feed lists an indicator seen on the network."),
    ("kerberoasting", 1, "Rotate the passwords of the service accounts whose tickets were requested (25+ characters or gMSA), enforce AES on them, and investigate the requesting host.", "Many service tickets from one client is how Kerberoasting harvests crackable hashes."),
    ("asrep_roasting", 1, "Require Kerberos pre-authentication on the affected accounts and rotate their passwords.", "Tickets issued without pre-authentication can be cracked offline."),
    ("kerberos_bruteforce", 1, "Block the source, watch the targeted accounts for lockouts and successful logons, and check the source host.", "Repeated pre-authentication failures from one client."),
    ("password_spraying", 1, "Force password changes on the targeted accounts, enable MFA, and block the source.", "One password tried across many accounts."),
    ("kerberos_user_enumeration", 2, "Block the source and review which account names it probed.", "Many unknown principals requested: account discovery."),
    ("kerberos_weak_encryption", 2, "Disable RC4 and DES on domain controllers and accounts (msDS-SupportedEncryptionTypes) and find the clients still asking for them.", "RC4/DES tickets are fast to crack."),
    ("kerberos_downgrade", 1, "Investigate the client: a reply in weak encryption although AES was offered points at a downgrade attack or a misconfigured account.", "Encryption downgrade."),
    ("kerberos_ticket_abuse", 2, "Review the client's ticket renewals; look for pass-the-ticket activity.", "Unusual ticket renewals."),
    ("weak_tls_version", 3, "Disable TLS versions below 1.2 on the server.", "Old TLS versions have known weaknesses."),
    ("weak_tls_cipher", 3, "Remove export, NULL, RC4 and 3DES suites from the server configuration.", "Weak cipher suites were negotiated."),
    ("expired_certificate", 3, "Renew the server certificate.", "Clients accepting expired certificates can be intercepted."),
    ("certificate_not_yet_valid", 3, "Check the server's clock and certificate.", "A certificate not yet valid was presented."),
    ("self_signed_certificate", 3, "Replace self-signed certificates with ones from a trusted CA, or confirm the service is internal and expected.", "Self-signed certificates are common on attacker infrastructure."),
    ("sni_certificate_mismatch", 3, "Check whether the server is what the client meant to reach.", "The certificate does not name the requested server."),
    ("tls_missing_sni", 4, "Identify the clients opening TLS without a server name.", "TLS without SNI is unusual for browsers and common for malware."),
    ("port_scan", 2, "Block the scanning source and check which of the probed ports answered.", "Reconnaissance of one host's services."),
    ("horizontal_scan", 2, "Block the scanning source; if internal, check the host for a worm or an attacker's tools.", "One port probed across many hosts."),
    ("syn_flood", 2, "Rate-limit or block the source; enable SYN cookies on the target.", "Half-open connections exhausting the target."),
    ("connection_flood", 2, "Rate-limit the source.", "Connection flood."),
    ("brute_force", 1, "Block the source, lock or watch the targeted accounts, and require keys or MFA on the service.", "Repeated logins against a login service."),
    ("dns_tunnel", 1, "Block the domain and inspect the client for tunnelling software.", "DNS used as a data channel."),
    ("dga", 1, "Inspect the client for malware generating domain names.", "Algorithmically generated names: malware looking for its controller."),
    ("beaconing", 1, "Inspect the client's process making the periodic connections and block the destination.", "Regular check-ins: command and control."),
    ("long_connection", 3, "Review the long-lived connection's purpose.", "A connection open unusually long."),
    ("high_outbound_volume", 2, "Check what the host sent; it may be exfiltration.", "Unusual outbound volume."),
    ("new_device", 3, "Confirm the new device is known and authorised.", "A device never seen before."),
    ("new_service", 3, "Confirm the newly offered service is expected.", "A host started offering a new service."),
    ("device_behavior_deviation", 3, "Review what changed in the device's behaviour.", "The device left its learned profile."),
    ("risk_threshold", 2, "Investigate the asset's alerts in order of severity.", "The asset's risk score crossed its threshold."),
    ("attack_chain", 1, "Treat as an incident: contain the host and work the chain's stages in order.", "Several stages of one attack seen from one source."),
];

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![get_security_recommendation(ctx)]
}

fn get_security_recommendation(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        (
            "ip",
            ip("Advice for this address (default: the whole network)"),
        ),
        (
            "use_model",
            boolean(
                "Ask the configured Ollama model to write the advice (falls back to the rules)",
                Some(true),
            ),
        ),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_security_recommendation",
            title: "Security recommendations",
            description: "Advice from what the sensor saw in a window (default 24 h), for one address or the whole network: the detections found (by kind, with counts, severity and ATT&CK techniques), whether a threat feed lists the address, and prioritised actions from rules for each kind of detection. Where an Ollama endpoint is configured (OLLAMA_BASE_URL) and answers within 30 s, the configured model also writes the advice text from the same findings; otherwise the rules alone answer (source says which).",
            input: input(props, &[]),
            output: output(vec![
                ("subject", string("The address, or 'network'")),
                ("window", window_out()),
                ("findings", array("Detections in the window", output(vec![
                    ("threat_type", string("Kind")),
                    ("alerts", count("Alerts")),
                    ("sources", count("Distinct sources")),
                    ("severity", count("Most severe (1 = high)")),
                    ("last_seen", string("Latest (RFC 3339)")),
                ]))),
                ("listed", json!({"type": ["boolean", "null"], "description": "A feed lists the address (null: no address, or matching off)"})),
                ("recommendations", array("Actions, most urgent first", output(vec![
                    ("priority", count("1 = act now ... 4 = review")),
                    ("threat_type", string("The detection it answers")),
                    ("action", string("What to do")),
                    ("reason", string("Why")),
                ]))),
                ("summary", string("One paragraph")),
                ("source", enumeration("Who wrote advice_text", &["rules", "ollama"])),
                ("model", opt_string("Ollama model, when it answered")),
                ("advice_text", string("The advice as prose")),
                ("model_error", opt_string("Why the model was not used, when asked")),
            ]),
            annotations: ToolAnnotations { read_only: true, destructive: false, idempotent: false, open_world: true },
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move { recommend(&ctx, &args).await },
    )
}

async fn recommend(ctx: &Ctx, args: &Args) -> Result<Value, ToolError> {
    let window = args.window(24)?;
    let ip = args.opt_ip("ip")?.map(|i| i.to_string());
    let use_model = args.bool_or("use_model", true)?;
    let mut conn = db(ctx).await?;
    let groups = netmonitor_store::summaries::threat_groups(
        &mut conn,
        window,
        ip.as_deref(),
        None,
        true,
        500,
    )
    .await
    .map_err(db_err)?;
    drop(conn);
    // Fold the per-source groups into one finding per kind.
    let mut findings: Vec<(String, i64, i64, i16, chrono::DateTime<chrono::Utc>)> = Vec::new();
    for g in &groups {
        match findings.iter_mut().find(|f| f.0 == g.threat_type) {
            Some(f) => {
                f.1 += g.alerts;
                f.2 += 1;
                f.3 = f.3.min(g.severity);
                f.4 = f.4.max(g.last_seen);
            }
            None => findings.push((g.threat_type.clone(), g.alerts, 1, g.severity, g.last_seen)),
        }
    }
    let listed = match (&ip, &ctx.engine.intel) {
        (Some(a), Some(intel)) => intel
            .send(netmonitor_intel::actor::CheckValue {
                value: a.clone(),
                kind: Some(netmonitor_intel::IndicatorKind::Ip),
            })
            .await
            .ok()
            .and_then(Result::ok)
            .map(|hits| hits.iter().any(|h| !h.expired)),
        _ => None,
    };
    let mut recs: Vec<(u8, String, &str, &str)> = findings
        .iter()
        .map(|f| match ADVICE.iter().find(|a| a.0 == f.0) {
            Some(a) => (a.1, f.0.clone(), a.2, a.3),
            None => (
                3,
                f.0.clone(),
                "Review the alerts of this kind and the hosts involved.",
                "A detection without specific guidance.",
            ),
        })
        .collect();
    if listed == Some(true) && !findings.iter().any(|f| f.0 == "blacklisted_ip") {
        let a = ADVICE[0];
        recs.push((a.1, a.0.to_owned(), a.2, a.3));
    }
    recs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let subject = ip.clone().unwrap_or_else(|| "network".into());
    let summary = if findings.is_empty() && listed != Some(true) {
        format!("No detections for {subject} in the window; nothing calls for action.")
    } else {
        let total: i64 = findings.iter().map(|f| f.1).sum();
        let urgent = recs.iter().filter(|r| r.0 == 1).count();
        format!(
            "{total} alerts of {} kinds for {subject}{}; {urgent} call for action now.",
            findings.len(),
            if listed == Some(true) {
                ", and a threat feed lists it"
            } else {
                ""
            }
        )
    };
    let rules_text = std::iter::once(summary.clone())
        .chain(recs.iter().map(|r| format!("[P{}] {}: {}", r.0, r.1, r.2)))
        .collect::<Vec<_>>()
        .join("\n");
    let findings_json: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({"threat_type": f.0, "alerts": f.1, "sources": f.2, "severity": f.3,
                   "last_seen": f.4.to_rfc3339()})
        })
        .collect();
    let (mut source, mut model, mut text, mut model_error) =
        ("rules", None::<String>, rules_text.clone(), None::<String>);
    let base = ctx.config["ollama"]["base_url"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let wanted = ctx.config["ollama"]["model"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if use_model && !base.is_empty() && !recs.is_empty() {
        let prompt = format!(
            "You are a SOC analyst. Write short, concrete advice for {subject} from these network sensor findings (JSON) and rule-based recommendations. Do not invent facts.\nFindings: {}\nListed by a threat feed: {}\nRecommendations:\n{rules_text}",
            Value::Array(findings_json.clone()),
            listed.map_or("unknown".into(), |l| l.to_string())
        );
        match ask_ollama(base, wanted.clone(), prompt).await {
            Ok(t) if !t.trim().is_empty() => {
                source = "ollama";
                model = Some(wanted);
                text = t;
            }
            Ok(_) => model_error = Some("the model answered with no text".into()),
            Err(e) => model_error = Some(e),
        }
    }
    Ok(json!({
        "subject": subject,
        "window": window_json(&window),
        "findings": findings_json,
        "listed": listed,
        "recommendations": recs.iter().map(|r| json!({"priority": r.0, "threat_type": r.1, "action": r.2, "reason": r.3})).collect::<Vec<_>>(),
        "summary": summary,
        "source": source,
        "model": model,
        "advice_text": text,
        "model_error": model_error,
    }))
}

/// One non-streaming `/api/chat` exchange with Ollama.
async fn ask_ollama(base: String, model: String, prompt: String) -> Result<String, String> {
    let url = format!("{}/api/chat", base.trim_end_matches('/'));
    let task = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(OLLAMA_CONNECT)
            .timeout(OLLAMA_TIMEOUT)
            .build();
        let resp: Value = agent
            .post(&url)
            .send_json(json!({
                "model": model,
                "stream": false,
                "messages": [{"role": "user", "content": prompt}],
            }))
            .map_err(|e| format!("Ollama at {url}: {e}"))?
            .into_json()
            .map_err(|e| format!("Ollama answer is not JSON: {e}"))?;
        resp["message"]["content"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "Ollama answer has no message.content".to_owned())
    });
    task.await
        .map_err(|e| format!("Ollama request failed: {e}"))?
}
