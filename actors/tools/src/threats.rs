//! Threat analysis tools over the `alerts` table: the per-address investigation
//! (`analyze_ip`), recent alerts, grouped detections, CSV export, acknowledgement and the
//! MITRE ATT&CK view built from the alerts' technique arrays. Alerts of whitelisted addresses
//! are left out by default and counted, so suppression is visible.

use crate::args::{invalid, next_cursor, Args};
use crate::csv;
use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries::{self as q, AlertFilter, AlertRecord, Window};
use serde_json::{json, Value};
use std::net::IpAddr;

/// Rows an alert export returns at most (the CSV travels inside one JSON-RPC response).
pub(crate) const MAX_CSV_ROWS: i64 = 50_000;
/// Rows fetched per database round trip during an export (progress is reported per page).
const CSV_PAGE: i64 = 1_000;
/// Columns of the alert CSV, in order.
const CSV_COLUMNS: [&str; 16] = [
    "id",
    "timestamp",
    "severity",
    "threat_type",
    "signature_id",
    "signature",
    "category",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "proto",
    "flow_id",
    "mitre",
    "acknowledged",
    "acknowledged_by",
];

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        crate::analyze_ip::analyze_ip(ctx),
        get_recent_threats(ctx),
        get_threat_detections(ctx),
        export_alerts_csv(ctx),
        acknowledge_alert(ctx),
        acknowledge_alerts_by_ip(ctx),
        get_mitre_mapping(ctx),
    ]
}

/// An alert with its severity name.
pub(crate) fn alert_json(a: &AlertRecord) -> Result<Value, ToolError> {
    let mut v = json(a)?;
    if let Some(m) = v.as_object_mut() {
        m.insert("severity_name".into(), json!(severity_name(a.severity)));
    }
    Ok(v)
}

/// How an address is routed, from its value alone.
pub(crate) fn ip_scope(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                "loopback"
            } else if v4.is_private() {
                "private"
            } else if v4.is_link_local() {
                "link_local"
            } else if v4.is_multicast() {
                "multicast"
            } else if v4.is_broadcast() {
                "broadcast"
            } else if v4.is_unspecified() {
                "unspecified"
            } else if v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 {
                "shared_cgnat"
            } else {
                "public"
            }
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                "loopback"
            } else if v6.is_unspecified() {
                "unspecified"
            } else if v6.is_multicast() {
                "multicast"
            } else if (seg0 & 0xfe00) == 0xfc00 {
                "private"
            } else if (seg0 & 0xffc0) == 0xfe80 {
                "link_local"
            } else {
                "public"
            }
        }
    }
}

fn filter_from(args: &Args, window: Window, default_ack: bool) -> Result<AlertFilter, ToolError> {
    let max_severity = match args.opt_str("severity")? {
        None => None,
        Some(s) => Some(severity_number(&s).ok_or_else(|| {
            invalid(
                "severity",
                "must be one of high, medium, low, informational",
            )
        })?),
    };
    Ok(AlertFilter {
        window,
        ip: args.opt_ip("ip")?.map(|i| i.to_string()),
        threat_types: args.opt_str("threat_type")?.into_iter().collect(),
        max_severity,
        include_acknowledged: args.bool_or("include_acknowledged", default_ack)?,
        hide_whitelisted: !args.bool_or("include_whitelisted", false)?,
        indicator: None,
    })
}

fn get_recent_threats(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        ("limit", limit(500, 50)),
        ("severity", severity_filter()),
        (
            "threat_type",
            string_len(
                "Only this threat type (e.g. port_scan, kerberoasting, malicious_ja3)",
                1,
                64,
            ),
        ),
        (
            "ip",
            ip("Only alerts where this address is source or destination"),
        ),
        (
            "include_acknowledged",
            boolean("Also list acknowledged alerts", Some(false)),
        ),
        (
            "include_whitelisted",
            boolean("Also list alerts of whitelisted addresses", Some(false)),
        ),
        ("cursor", cursor()),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_recent_threats",
            title: "Recent threats",
            description: "Lists the most recent security alerts (newest first) from the alerts table over the last `hours` (default 24) or a since/until window, optionally only at least a given severity, of one threat type or touching one address. Open alerts only unless include_acknowledged; alerts of whitelisted addresses are counted in suppressed_by_whitelist instead of listed. Page with `cursor` (the previous answer's next_cursor): the pages together list every matching alert once, in order.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("total", count("Alerts matching the filters")),
                ("returned", count("Alerts in this answer")),
                ("suppressed_by_whitelist", count("Matching alerts hidden because an endpoint is whitelisted")),
                ("alerts", array("Alerts, newest first", alert())),
                ("next_cursor", next_cursor_out()),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let window = args.window(24)?;
            let f = filter_from(&args, window, false)?;
            let limit = args.i64_or("limit", 50, 1, 500)?;
            let before = args.opt_cursor()?;
            let mut conn = db(&ctx).await?;
            let alerts = q::list_alerts_before(&mut conn, &f, before, limit)
                .await
                .map_err(db_err)?;
            let next_cursor = next_cursor(alerts.len(), limit, alerts.last().map(|a| (a.ts, a.id)));
            let (total, suppressed) = netmonitor_store::summaries::count_alerts_and_hidden(&mut conn, &f)
                .await
                .map_err(db_err)?;
            let list = alerts.iter().map(alert_json).collect::<Result<Vec<_>, _>>()?;
            Ok(json_object([
                ("window", window_json(&window)),
                ("total", total.into()),
                ("returned", list.len().into()),
                ("suppressed_by_whitelist", suppressed.into()),
                ("alerts", Value::Array(list)),
                ("next_cursor", next_cursor.map_or(Value::Null, Value::from)),
            ]))
        },
    )
}

fn get_threat_detections(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        (
            "ip",
            ip("Only detections where this address is source or destination"),
        ),
        ("threat_type", string_len("Only this threat type", 1, 64)),
        ("limit", limit(500, 100)),
        (
            "include_whitelisted",
            boolean("Also count alerts of whitelisted addresses", Some(false)),
        ),
    ]);
    let group = output(vec![
        ("threat_type", string("Threat type")),
        ("src_ip", string("Source of the alerts")),
        ("alerts", count("Alerts in the group")),
        ("unacknowledged", count("Of which not acknowledged")),
        ("targets", count("Distinct destinations")),
        ("severity", count("Most severe level (1 = high)")),
        ("severity_name", string("Its name")),
        ("first_seen", string("First alert (RFC 3339)")),
        ("last_seen", string("Last alert (RFC 3339)")),
        ("signatures", array("Detection names", string("Signature"))),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_threat_detections",
            title: "Threat detections",
            description: "Summarises detections: alerts grouped by threat type and source address with counts, targets, severity and first/last time, optionally for one address (`ip`, as source or destination) and one threat_type, over the last `hours` or a since/until window. Threat-feed matches are among them (blacklisted_ip, malicious_domain, malicious_url, malicious_ja3, malicious_cert) and are also counted per feed.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("total_alerts", count("Alerts in the listed groups")),
                ("detections", array("Groups, largest first", group)),
                ("feed_matches", array("Threat-feed match alerts per feed since the window's start", output(vec![
                    ("feed", string("Feed")),
                    ("alerts", count("Alerts naming it")),
                    ("last_match", opt_string("Latest (RFC 3339)")),
                ]))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let window = args.window(24)?;
            let ip = args.opt_ip("ip")?.map(|i| i.to_string());
            let threat = args.opt_str("threat_type")?;
            let limit = args.i64_or("limit", 100, 1, 500)?;
            let hide = !args.bool_or("include_whitelisted", false)?;
            let mut conn = db(&ctx).await?;
            let groups = netmonitor_store::summaries::threat_groups(
                &mut conn,
                window,
                ip.as_deref(),
                threat.as_deref(),
                hide,
                limit,
            )
            .await
            .map_err(db_err)?;
            let total: i64 = groups.iter().map(|g| g.alerts).sum();
            let mut list = Vec::with_capacity(groups.len());
            for g in &groups {
                let mut v = json(g)?;
                if let Some(m) = v.as_object_mut() {
                    m.insert("severity_name".into(), json!(severity_name(g.severity)));
                }
                list.push(v);
            }
            let feeds = netmonitor_store::intel::feed_matches(&mut conn, window.since)
                .await
                .map_err(db_err)?;
            Ok(json!({"window": window_json(&window), "total_alerts": total, "detections": list,
                      "feed_matches": json(&feeds)?}))
        },
    )
}

fn export_alerts_csv(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        ("severity", severity_filter()),
        ("threat_type", string_len("Only this threat type", 1, 64)),
        (
            "ip",
            ip("Only alerts where this address is source or destination"),
        ),
        (
            "include_acknowledged",
            boolean("Include acknowledged alerts", Some(true)),
        ),
        (
            "include_whitelisted",
            boolean("Include alerts of whitelisted addresses", Some(true)),
        ),
        (
            "max_rows",
            int("Most rows to export", 1, MAX_CSV_ROWS, Some(10_000)),
        ),
    ]);
    tool(
        ctx,
        Spec {
            name: "export_alerts_csv",
            title: "Export alerts as CSV",
            description: "Exports alerts in id order as RFC 4180 CSV (columns: id, timestamp, severity, threat_type, signature_id, signature, category, src_ip, src_port, dest_ip, dest_port, proto, flow_id, mitre, acknowledged, acknowledged_by), filtered like get_recent_threats. Cells that a spreadsheet would run as formulas are prefixed with a quote. Reports progress per 1000 rows when the client sends a progressToken; honours cancellation.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("columns", array("Column names", string("Column"))),
                ("rows", count("Data rows in the CSV")),
                ("matching", count("Alerts matching the filters")),
                ("truncated", boolean("True when more alerts matched than max_rows", None)),
                ("csv", string("The CSV text, header line first, CRLF line ends")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, tctx, args| async move {
            let window = args.window(24)?;
            let f = filter_from(&args, window, true)?;
            let f = AlertFilter {
                hide_whitelisted: !args.bool_or("include_whitelisted", true)?,
                ..f
            };
            let max_rows = args.i64_or("max_rows", 10_000, 1, MAX_CSV_ROWS)?;
            let mut conn = db(&ctx).await?;
            let matching = netmonitor_store::summaries::count_alerts(&mut conn, &f).await.map_err(db_err)?;
            let total = matching.min(max_rows);
            let mut out = String::new();
            csv::push_record(&mut out, &CSV_COLUMNS);
            let (mut rows, mut after) = (0i64, 0i64);
            tctx.progress(0.0, Some(total as f64), Some("counting done"));
            while rows < total {
                if tctx.is_cancelled() {
                    return Err(ToolError::Cancelled);
                }
                let page = CSV_PAGE.min(total - rows);
                let batch = q::alerts_page(&mut conn, &f, after, page)
                    .await
                    .map_err(db_err)?;
                if batch.is_empty() {
                    break;
                }
                for a in &batch {
                    csv::push_record(&mut out, &csv_fields(a));
                    after = a.id;
                    rows += 1;
                }
                tctx.progress(rows as f64, Some(total as f64), Some("rows exported"));
            }
            Ok(json!({
                "window": window_json(&window),
                "columns": CSV_COLUMNS,
                "rows": rows,
                "matching": matching,
                "truncated": matching > rows,
                "csv": out,
            }))
        },
    )
}

fn csv_fields(a: &AlertRecord) -> [String; 16] {
    [
        a.id.to_string(),
        a.ts.to_rfc3339(),
        severity_name(a.severity).to_owned(),
        a.threat_type.clone(),
        a.signature_id.to_string(),
        a.signature.clone(),
        a.category.clone(),
        a.src_ip.clone(),
        a.src_port.to_string(),
        a.dest_ip.clone(),
        a.dest_port.to_string(),
        netmonitor_common::proto_name(u8::try_from(a.proto).unwrap_or(0)),
        a.flow_id.to_string(),
        a.mitre.join(" "),
        a.acknowledged.to_string(),
        a.acknowledged_by.clone().unwrap_or_default(),
    ]
}

fn acknowledge_alert(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "acknowledge_alert",
            title: "Acknowledge alert",
            description: "Marks one alert (by id, as listed by get_recent_threats) as acknowledged, recording who (the token's name) and when. Acknowledging an already acknowledged alert changes nothing and says so.",
            input: input(
                vec![("alert_id", int("Alert id", 1, i64::MAX, None))],
                &["alert_id"],
            ),
            output: output(vec![
                ("alert_id", count("The alert")),
                ("outcome", enumeration("What happened", &["acknowledged", "already_acknowledged"])),
                ("alert", alert()),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, tctx, args| async move {
            let id = args
                .opt_i64("alert_id", 1, i64::MAX)?
                .ok_or_else(|| invalid("alert_id", "is required"))?;
            let by = tctx.identity().token_name();
            let mut conn = db(&ctx).await?;
            let (outcome, alert) = q::acknowledge_alert(&mut conn, id, &by)
                .await
                .map_err(db_err)?
                .ok_or_else(|| ToolError::NotFound(format!("no alert with id {id}")))?;
            Ok(json!({"alert_id": id, "outcome": outcome, "alert": alert_json(&alert)?}))
        },
    )
}

fn acknowledge_alerts_by_ip(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        (
            "ip",
            ip("Address whose alerts (as source or destination) are acknowledged"),
        ),
        (
            "threat_type",
            string_len("Only alerts of this threat type", 1, 64),
        ),
    ]);
    tool(
        ctx,
        Spec {
            name: "acknowledge_alerts_by_ip",
            title: "Acknowledge alerts of an address",
            description: "Acknowledges every open alert where `ip` is source or destination within the last `hours` (default 24) or a since/until window, optionally only of one threat_type. Returns how many alerts changed; already acknowledged ones are left as they are.",
            input: input(props, &["ip"]),
            output: output(vec![
                ("ip", string("The address")),
                ("window", window_out()),
                ("acknowledged", count("Alerts acknowledged by this call")),
                ("acknowledged_by", string("Recorded acknowledger")),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, tctx, args| async move {
            let ip = args.req_ip("ip")?.to_string();
            let window = args.window(24)?;
            let threat = args.opt_str("threat_type")?;
            let by = tctx.identity().token_name();
            let mut conn = db(&ctx).await?;
            let n = q::acknowledge_alerts_by_ip(&mut conn, &ip, window, threat.as_deref(), &by)
                .await
                .map_err(db_err)?;
            Ok(json!({"ip": ip, "window": window_json(&window), "acknowledged": n, "acknowledged_by": by}))
        },
    )
}

fn get_mitre_mapping(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(168);
    props.extend([
        (
            "ip",
            ip("Only alerts where this address is source or destination"),
        ),
        ("limit", limit(200, 50)),
    ]);
    let technique = output(vec![
        ("technique", string("MITRE ATT&CK technique id (T1558.003)")),
        ("name", string("Technique name")),
        (
            "tactics",
            array("Its tactics", any_object("Tactic id and name")),
        ),
        ("alerts", count("Alerts mapped to it")),
        ("sources", count("Distinct source addresses")),
        (
            "assets",
            count("Distinct addresses involved (sources and targets)"),
        ),
        (
            "threat_types",
            array("Threat types mapped to it", string("Threat type")),
        ),
        ("severity", count("Most severe level (1 = high)")),
        ("severity_name", string("Its name")),
        ("first_seen", string("First alert (RFC 3339)")),
        ("last_seen", string("Last alert (RFC 3339)")),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_mitre_mapping",
            title: "MITRE ATT&CK mapping",
            description: "Maps observed alerts to MITRE ATT&CK techniques and tactics over the last `hours` (default 168) or a since/until window: per technique its name, tactics, alert count, sources, assets, threat types, severity and first/last time; per tactic the alerts, techniques and assets. Only alerts that passed whitelists and suppression count. Answers from the risk actor's live counters (ten-minute buckets; a window's edge buckets count whole); for one address (`ip`) or a window older than the counters keep, from the alerts table.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("source", string("live_counters, rollup (every sensor's, from mitre_rollup) or alerts_table")),
                ("techniques", array("Techniques, most frequent first", technique)),
                ("tactics", array("Tactics in attack-lifecycle order (live counters only)", any_object("Tactic summary"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let window = args.window(168)?;
            let ip = args.opt_ip("ip")?.map(|i| i.to_string());
            let limit = args.i64_or("limit", 50, 1, 200)?;
            if ip.is_none() {
                if let Some(v) = crate::risk::mitre_live(&ctx, &window, limit as usize).await {
                    return Ok(v);
                }
            }
            let mut conn = db(&ctx).await?;
            if ip.is_none() {
                if let Some(v) = crate::risk::mitre_rollup(&mut conn, &window, limit as usize).await? {
                    return Ok(v);
                }
            }
            let rows = netmonitor_store::summaries::mitre_mapping(&mut conn, window, ip.as_deref(), limit)
                .await
                .map_err(db_err)?;
            let mut list = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut v = json(r)?;
                if let Some(m) = v.as_object_mut() {
                    m.insert("severity_name".into(), json!(severity_name(r.severity)));
                    let t = netmonitor_common::mitre::technique(&r.technique);
                    m.insert("name".into(), json!(t.map_or("", |t| t.name)));
                    let tactics: Vec<Value> = t
                        .map(|t| t.tactics.iter().map(|ta| json!({"id": ta.id, "name": ta.name})).collect())
                        .unwrap_or_default();
                    m.insert("tactics".into(), json!(tactics));
                }
                list.push(v);
            }
            Ok(json!({"window": window_json(&window), "source": "alerts_table", "techniques": list, "tactics": []}))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_scopes() {
        let s = |t: &str| ip_scope(t.parse().unwrap());
        assert_eq!(s("10.1.2.3"), "private");
        assert_eq!(s("192.168.1.31"), "private");
        assert_eq!(s("127.0.0.1"), "loopback");
        assert_eq!(s("224.0.0.251"), "multicast");
        assert_eq!(s("100.64.0.1"), "shared_cgnat");
        assert_eq!(s("8.8.8.8"), "public");
        assert_eq!(s("fe80::1"), "link_local");
        assert_eq!(s("fd00::1"), "private");
        assert_eq!(s("ff02::fb"), "multicast");
        assert_eq!(s("2001:db8::1"), "public");
    }

    #[test]
    fn csv_columns_match_fields() {
        let a = AlertRecord {
            id: 7,
            sensor: "s".into(),
            flow_id: 9,
            ts: chrono::DateTime::from_timestamp(1_421_708_046, 0).unwrap_or_default(),
            src_ip: "10.0.0.1".into(),
            src_port: 1234,
            dest_ip: "10.0.0.2".into(),
            dest_port: 88,
            proto: 17,
            signature_id: 2_100_003,
            signature: "=cmd".into(),
            category: "c".into(),
            severity: 2,
            threat_type: "asrep_roasting".into(),
            mitre: vec!["T1558.004".into()],
            evidence: json!({}),
            acknowledged: false,
            acknowledged_by: None,
            acknowledged_at: None,
        };
        let f = csv_fields(&a);
        assert_eq!(f.len(), CSV_COLUMNS.len());
        assert_eq!(f[2], "medium");
        assert_eq!(f[11], "UDP");
        let mut s = String::new();
        csv::push_record(&mut s, &f);
        assert!(s.contains("\"'=cmd\""));
    }
}
