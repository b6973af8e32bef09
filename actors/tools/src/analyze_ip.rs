//! `analyze_ip`: everything stored and live about one address over a window. Its alerts and
//! the rest (flows, TLS, Kerberos, whitelist) are read on two pooled connections at once when a
//! second one is free, one after the other otherwise.

use crate::schema::*;
use crate::support::*;
use crate::threats::{alert_json, ip_scope};
use diesel_async::AsyncPgConnection;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolCtx, ToolDef, ToolError};
use netmonitor_store::queries::{self as q, AlertFilter, AlertRecord, Window};
use netmonitor_store::summaries::{count_alerts, threat_groups, ThreatGroup};
use netmonitor_store::suppression::{whitelist_matches, WhitelistRecord};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

/// Steps of `analyze_ip`, for progress reports.
const ANALYZE_STEPS: f64 = 5.0;

pub(crate) fn analyze_ip(ctx: &Ctx) -> ToolDef {
    let mut props = vec![("ip", ip("The address to investigate"))];
    props.extend(window_props(24));
    tool(
        ctx,
        Spec {
            name: "analyze_ip",
            title: "Analyze IP",
            description: "Investigates one address over the last `hours` (default 24) or a since/until window: its alerts (totals, groups by threat type, most recent), traffic from flow records (bytes, peers, ports, application protocols), TLS sessions, Kerberos activity, what the live inventory knows (names, MAC) and whether it is whitelisted. Reports progress per step when the client sends a progressToken.",
            input: input(props, &["ip"]),
            output: output(vec![
                ("ip", string("The address")),
                ("address_scope", string("public, private, loopback, link_local, multicast, …")),
                ("window", window_out()),
                ("whitelisted", boolean("Whether a whitelist entry covers it", None)),
                ("whitelist_entries", array("Covering entries", any_object("Entry"))),
                ("host", opt_object("Live inventory record, null when not seen since start")),
                ("alerts", output(vec![
                    ("total", count("Alerts where it is source or destination")),
                    ("unacknowledged", count("Of which open")),
                    ("highest_severity", opt_string("Most severe level among them")),
                    ("by_threat", array("Grouped by threat type and source", any_object("Group"))),
                    ("recent", array("Most recent alerts", alert())),
                ])),
                ("traffic", any_object("Flow totals, top peers, ports and application protocols")),
                ("tls", output(vec![
                    ("sessions", array("Most recent TLS sessions as client or server", any_object("Session"))),
                ])),
                ("kerberos", any_object("Kerberos totals and principals")),
                ("summary", string("One-paragraph digest of the figures above")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, tctx, args| async move {
            let addr = args.req_ip("ip")?;
            let ip = addr.to_string();
            let window = args.window(24)?;
            let mut conn = db(&ctx).await?;
            let spare = spare_db(&ctx).await;

            tctx.progress(0.0, Some(ANALYZE_STEPS), Some("alerts, traffic, TLS and Kerberos"));
            let progress = Progress { tctx: &tctx, done: AtomicU32::new(0) };
            let (alerts, rest) = match spare {
                Some(mut other) => tokio::try_join!(
                    alerts_of(&mut conn, &ip, window, &progress),
                    rest_of(&mut other, &ip, window, &progress)
                )?,
                None => (
                    alerts_of(&mut conn, &ip, window, &progress).await?,
                    rest_of(&mut conn, &ip, window, &progress).await?,
                ),
            };
            if tctx.is_cancelled() {
                return Err(ToolError::Cancelled);
            }
            let Alerts { total, unack, recent, groups } = alerts;
            let Rest { flows, tls, krb, principals, wl } = rest;
            let q::IpFlowSummary { traffic, peers, ports, apps } = flows;
            let highest = groups.iter().map(|g| g.severity).min();
            let host = inventory(&ctx, move |inv| json!({"host": inv.get(addr)})).await?;
            let host = host.get("host").cloned().unwrap_or(Value::Null);
            tctx.progress(ANALYZE_STEPS, Some(ANALYZE_STEPS), Some("done"));

            let threat_names: Vec<&str> = groups.iter().map(|g| g.threat_type.as_str()).collect();
            let summary = format!(
                "{ip} ({scope}): {total} alert(s), {unack} open{sev}{types}; {fc} flow(s) as client and {fs} as server with {peers} peer(s), {sent} bytes sent and {recv} received; {tls} TLS session(s); {krb} Kerberos message(s); {wl}.",
                scope = ip_scope(addr),
                sev = highest
                    .map(|s| format!(", highest severity {}", severity_name(s)))
                    .unwrap_or_default(),
                types = if threat_names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", dedup(&threat_names).join(", "))
                },
                fc = traffic.flows_as_client,
                fs = traffic.flows_as_server,
                peers = traffic.peers,
                sent = traffic.bytes_sent,
                recv = traffic.bytes_received,
                tls = tls.len(),
                krb = krb.messages,
                wl = if wl.is_empty() { "not whitelisted" } else { "whitelisted" },
            );
            let by_threat = groups
                .iter()
                .map(|g| {
                    let mut v = json(g)?;
                    if let Some(m) = v.as_object_mut() {
                        m.insert("severity_name".into(), json!(severity_name(g.severity)));
                    }
                    Ok(v)
                })
                .collect::<Result<Vec<_>, ToolError>>()?;
            Ok(json!({
                "ip": ip,
                "address_scope": ip_scope(addr),
                "window": window_json(&window),
                "whitelisted": !wl.is_empty(),
                "whitelist_entries": wl,
                "host": host,
                "alerts": {
                    "total": total,
                    "unacknowledged": unack,
                    "highest_severity": highest.map(severity_name),
                    "by_threat": by_threat,
                    "recent": recent.iter().map(alert_json).collect::<Result<Vec<_>, _>>()?,
                },
                "traffic": {
                    "totals": traffic,
                    "peers": peers,
                    "ports": ports,
                    "app_protocols": apps,
                },
                "tls": {"sessions": tls},
                "kerberos": {"totals": krb, "principals": principals},
                "summary": summary,
            }))
        },
    )
}

/// Counts the steps done, whichever of the two readers finishes one.
struct Progress<'a> {
    tctx: &'a ToolCtx,
    done: AtomicU32,
}

impl Progress<'_> {
    fn step(&self, what: &str) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.tctx
            .progress(f64::from(n), Some(ANALYZE_STEPS), Some(what));
    }
}

/// The alerts of an address.
struct Alerts {
    total: i64,
    unack: i64,
    recent: Vec<AlertRecord>,
    groups: Vec<ThreatGroup>,
}

async fn alerts_of(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
    progress: &Progress<'_>,
) -> Result<Alerts, ToolError> {
    let all = AlertFilter {
        window,
        ip: Some(ip.to_owned()),
        threat_types: Vec::new(),
        max_severity: None,
        include_acknowledged: true,
        hide_whitelisted: false,
        indicator: None,
    };
    let open = AlertFilter {
        include_acknowledged: false,
        ..all.clone()
    };
    let total = count_alerts(conn, &all).await.map_err(db_err)?;
    let unack = count_alerts(conn, &open).await.map_err(db_err)?;
    let recent = q::list_alerts(conn, &all, 10).await.map_err(db_err)?;
    let groups = threat_groups(conn, window, Some(ip), None, false, 20)
        .await
        .map_err(db_err)?;
    progress.step("alerts");
    Ok(Alerts {
        total,
        unack,
        recent,
        groups,
    })
}

/// The traffic, TLS sessions, Kerberos activity and whitelist entries of an address.
struct Rest {
    flows: q::IpFlowSummary,
    tls: Vec<q::TlsSessionRecord>,
    krb: q::KrbTotals,
    principals: Vec<q::NameCount>,
    wl: Vec<WhitelistRecord>,
}

async fn rest_of(
    conn: &mut AsyncPgConnection,
    ip: &str,
    window: Window,
    progress: &Progress<'_>,
) -> Result<Rest, ToolError> {
    let flows = q::ip_flow_summary(conn, ip, window, 10)
        .await
        .map_err(db_err)?;
    progress.step("traffic");
    let tls = q::tls_sessions(
        conn,
        &q::TlsFilter {
            window,
            ip: Some(ip.to_owned()),
            sni: None,
            ja3: None,
            ja4: None,
        },
        None,
        10,
    )
    .await
    .map_err(db_err)?;
    progress.step("tls");
    let krb = q::krb_totals(conn, window, Some(ip))
        .await
        .map_err(db_err)?;
    let principals = q::krb_top(conn, q::KrbKey::Cname, window, Some(ip), 10)
        .await
        .map_err(db_err)?;
    progress.step("kerberos");
    let wl = whitelist_matches(conn, ip).await.map_err(db_err)?;
    Ok(Rest {
        flows,
        tls,
        krb,
        principals,
        wl,
    })
}

fn dedup<'a>(v: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in v {
        if !out.contains(s) {
            out.push(s);
        }
    }
    out
}
