//! SOC prompts: each renders a user message telling the assistant which tools to call, in
//! which order and with which arguments, and what to report. `review_pending_approvals`
//! checks the database for the SOAR approvals table first and says plainly when SOAR is not
//! available yet.

use crate::args::parse_ip;
use crate::support::*;
use netmonitor_mcp::{Identity, PromptArgument, PromptDef, PromptMessage, Scope, ToolError};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Default look-back of `triage_ip`.
const TRIAGE_DEFAULT_HOURS: i64 = 24;

/// The prompts.
pub(crate) fn prompts(ctx: &Ctx) -> Vec<PromptDef> {
    vec![
        triage_ip(),
        summarize_last_hour(),
        review_pending_approvals(ctx),
    ]
}

fn call(tool: &str, args: serde_json::Value) -> String {
    format!("`{tool}` with {args}")
}

/// The triage instructions for one address.
pub(crate) fn triage_text(ip: &str, hours: i64) -> String {
    let steps = [
        call("analyze_ip", json!({"ip": ip, "hours": hours})),
        call("get_threat_detections", json!({"ip": ip, "hours": hours})),
        call("get_asset_risk", json!({"ip": ip})),
        call(
            "get_attack_chains",
            json!({"source_ip": ip, "min_stages": 1, "hours": hours}),
        ),
        call("get_device_by_ip", json!({"ip": ip, "hours": hours})),
        call(
            "get_tls_metadata",
            json!({"ip": ip, "hours": hours, "limit": 20}),
        ),
        call("get_kerberos_stats", json!({"ip": ip, "hours": hours})),
        call("host_events", json!({"ip": ip, "limit": 50})),
        call("get_whitelist_entries", json!({"ip": ip})),
    ];
    let mut s = format!(
        "Triage the address {ip} as a SOC analyst, using the NetMonitor tools over the last {hours} hour(s). Call, in this order:\n"
    );
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!("{}. {step}\n", i + 1));
    }
    s.push_str(&format!(
        "Optionally {} to learn its name (this query leaves the sensor).\n\
         If the alerts show an attack worth keeping evidence of, export its packets with `export_flow_pcap` and the alert's `alert_id` while the ring buffer still holds them.\n\
         Events carry capture time: if everything is empty but the sensor replays older captures, repeat with `since` (RFC 3339) instead of `hours`.\n\
         Report: what {ip} is (role, names, address scope), what it did, its risk and why (the contributions), any attack chain it is part of, which alerts and MITRE techniques apply, whether they look like true positives, and recommended next steps. \
         Do not acknowledge alerts (`acknowledge_alerts_by_ip`) or whitelist the address unless the user asks.",
        call("dns_lookup", json!({"query": ip}))
    ));
    s
}

fn triage_ip() -> PromptDef {
    PromptDef {
        name: "triage_ip".into(),
        title: Some("Triage an IP address".into()),
        description: Some(
            "Investigate one address with analyze_ip, detections, device, TLS, Kerberos and event tools, then give a verdict".into(),
        ),
        arguments: vec![
            PromptArgument {
                name: "ip".into(),
                title: Some("IP address".into()),
                description: Some("The IPv4 or IPv6 address to triage".into()),
                required: true,
                completions: Vec::new(),
            },
            PromptArgument {
                name: "hours".into(),
                title: Some("Hours".into()),
                description: Some("Look-back in hours (default 24)".into()),
                required: false,
                completions: vec!["1".into(), "24".into(), "168".into()],
            },
        ],
        scope: Scope::ReadOnly,
        handler: Arc::new(|args: BTreeMap<String, String>, _id: Identity| {
            Box::pin(async move {
                let raw = args.get("ip").map(String::as_str).unwrap_or("");
                let ip = parse_ip(raw).ok_or_else(|| ToolError::InvalidArgument {
                    field: "ip".into(),
                    message: format!("{raw:?} is not an IPv4 or IPv6 address"),
                })?;
                let hours = match args.get("hours").map(|h| h.trim()).filter(|h| !h.is_empty()) {
                    None => TRIAGE_DEFAULT_HOURS,
                    Some(h) => h
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=crate::args::MAX_HOURS).contains(n))
                        .ok_or_else(|| ToolError::InvalidArgument {
                            field: "hours".into(),
                            message: format!("must be an integer between 1 and {}", crate::args::MAX_HOURS),
                        })?,
                };
                Ok(vec![PromptMessage::user_text(triage_text(&ip.to_string(), hours))])
            })
        }),
    }
}

/// The last-hour summary instructions.
pub(crate) fn summary_text() -> String {
    let steps = [
        call("get_sensor_status", json!({})),
        call("get_recent_threats", json!({"hours": 1, "limit": 100})),
        call("get_threat_detections", json!({"hours": 1})),
        call("get_mitre_mapping", json!({"hours": 1})),
        call("get_top_risk_assets", json!({"limit": 10})),
        call("get_attack_chains", json!({"hours": 1})),
        call("get_kerberos_attacks", json!({"hours": 1})),
        call("get_top_talkers", json!({"hours": 1, "limit": 10})),
        call("get_tls_stats", json!({"hours": 1})),
        call("get_kerberos_stats", json!({"hours": 1})),
    ];
    let mut s = String::from(
        "Summarize the last hour of network security activity seen by NetMonitor. Call, in this order:\n",
    );
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!("{}. {step}\n", i + 1));
    }
    s.push_str(
        "Then write a short shift report: sensor health (sources, drops, decode errors), the alerts by severity and threat type with the sources involved, \
         the ATT&CK techniques observed, unusual traffic volumes, and TLS/Kerberos observations (blocklisted JA3, self-signed or expired certificates, weak Kerberos encryption). \
         Name the riskiest assets and any multi-stage attack chains. End with the three addresses most worth triaging (suggest the `triage_ip` prompt for each). \
         If everything is empty although the sensor is running, say so: events carry capture time, so replayed older captures fall outside the last hour.",
    );
    s
}

fn summarize_last_hour() -> PromptDef {
    PromptDef {
        name: "summarize_last_hour".into(),
        title: Some("Summarize the last hour".into()),
        description: Some("A shift report of the last hour: sensor health, alerts, techniques, traffic, TLS and Kerberos".into()),
        arguments: Vec::new(),
        scope: Scope::ReadOnly,
        handler: Arc::new(|_args, _id| {
            Box::pin(async move { Ok(vec![PromptMessage::user_text(summary_text())]) })
        }),
    }
}

/// The approvals review instructions, given whether SOAR runs in this process.
pub(crate) fn approvals_text(soar_running: bool) -> String {
    if !soar_running {
        return format!(
            "The user wants to review pending SOAR approvals, but SOAR is not available in this NetMonitor process \
             (`[soar] enabled = false`, or no database), so there are no playbooks, pending actions or approvals to review, \
             and no approval tool is offered. Tell the user this plainly; do not invent pending actions. \
             Offer instead a manual review of what would have triggered automated responses: {} and {}, \
             then the `triage_ip` prompt for the sources involved.",
            call("get_recent_threats", json!({"hours": 24, "severity": "high", "limit": 50})),
            call("get_threat_detections", json!({"hours": 24})),
        );
    }
    format!(
        "Review the pending SOAR approvals. Call {} to list them (or read the resource `soar://pending`); {} shows which playbook proposed each and why. \
         For each pending action gather context with {} and {} on its target, and with {} on the alerts that triggered it. \
         Present each action with its target, the exact command or request it would run, the evidence, the risk of approving and of rejecting, and your recommendation. \
         Never approve or reject an action yourself: ask the user for an explicit decision on each one first, then record it with `approve_soar_action` (with the user's reason).",
        call("get_pending_approvals", json!({})),
        call("get_soar_playbooks", json!({})),
        call("get_asset_risk", json!({"ip": "<target>"})),
        call("analyze_ip", json!({"ip": "<target>", "hours": 24})),
        call("get_recent_threats", json!({"ip": "<target>", "hours": 24})),
    )
}

fn review_pending_approvals(ctx: &Ctx) -> PromptDef {
    let ctx = ctx.clone();
    PromptDef {
        name: "review_pending_approvals".into(),
        title: Some("Review pending SOAR approvals".into()),
        description: Some(
            "Walk through SOAR actions awaiting human approval (explains when SOAR is not running)"
                .into(),
        ),
        arguments: Vec::new(),
        scope: Scope::ReadOnly,
        handler: Arc::new(move |_args, _id| {
            let ctx = ctx.clone();
            Box::pin(async move {
                Ok(vec![PromptMessage::user_text(approvals_text(
                    ctx.engine.soar.is_some(),
                ))])
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_texts_name_tools_and_arguments() {
        let t = triage_text("10.0.0.5", 24);
        assert!(t.contains("`analyze_ip` with {\"hours\":24,\"ip\":\"10.0.0.5\"}"));
        assert!(t.contains("`host_events`"));
        let s = summary_text();
        assert!(s.contains("`get_recent_threats` with {\"hours\":1,\"limit\":100}"));
        let none = approvals_text(false);
        assert!(none.contains("not available"));
        assert!(!none.contains("get_pending_approvals"));
        let some = approvals_text(true);
        assert!(some.contains("get_pending_approvals") && some.contains("soar://pending"));
    }
}
