//! Risk and correlation tools: asset risk with its explanation, the riskiest assets, risk
//! history, attack chains, criticality by hand, and the ATT&CK summary. Live answers come from
//! the risk actor (no alert scans); history from its `risk_history` table. Windows given in
//! `hours` end at the sensor's newest packet time, so replayed captures answer like live ones.

use crate::schema::*;
use crate::support::*;
use netmonitor_common::Timestamp;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_risk::book::{round, TopFilter};
use netmonitor_risk::chain::Chain;
use netmonitor_risk::score::Level;
use netmonitor_risk::{QueryRisk, RiskBook, UpdateRisk};
use serde_json::{json, Value};
use std::net::IpAddr;

const HOUR_US: i64 = 3_600_000_000;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_asset_risk(ctx),
        get_top_risk_assets(ctx),
        get_risk_trends(ctx),
        get_attack_chains(ctx),
        set_asset_criticality(ctx),
    ]
}

/// Runs `f` on the risk book inside the risk actor.
pub(crate) async fn risk(
    ctx: &Ctx,
    f: impl FnOnce(&RiskBook) -> Value + Send + 'static,
) -> Result<Value, ToolError> {
    let actor = ctx
        .engine
        .risk
        .as_ref()
        .ok_or_else(|| ToolError::Unavailable("no risk scoring in this process".into()))?;
    let v = actor
        .send(QueryRisk::new(f))
        .await
        .map_err(|e| ToolError::Unavailable(format!("risk actor: {e}")))?;
    if v.is_null() {
        return Err(ToolError::Unavailable(
            "risk actor failed while answering (it restarts; retry)".into(),
        ));
    }
    Ok(v)
}

fn time(us: i64) -> String {
    Timestamp(us).to_eve()
}

fn get_asset_risk(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_asset_risk",
            title: "Asset risk",
            description: "Risk of one asset, by address or device id: score 0–100, level, trend over the last `trend_hours` of packet time, and every alert that contributes with its score, decay, rank weight (1/i^1.5) and share of the total; the criticality, exposure and attack-chain modifiers applied on the odds. A device's score is that of its riskiest address; each address is explained.",
            input: input(
                vec![
                    ("ip", ip("The asset's address")),
                    ("device_id", string_len("A device id of the device inventory (mac:… or ip:…)", 3, 128)),
                    ("trend_hours", int("Hours the trend looks back", 1, 720, Some(1))),
                ],
                &[],
            ),
            output: output(vec![
                ("ip", opt_string("Address (for a device: its riskiest)")),
                ("device_id", opt_string("Device id, when asked by device")),
                ("score", number("Score 0–100")),
                ("level", string("low, medium, high or critical")),
                ("base_score", number("Normalised alert sum before modifiers")),
                ("trend", any_object("Score then, change, direction")),
                ("modifiers", any_object("Criticality, exposure and chain modifiers")),
                ("contributions", array("Contributing alerts, strongest first", any_object("Alert with score, decay, weight and share"))),
                ("addresses", array("For a device: each address explained", any_object("Explanation"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let trend = args.i64_or("trend_hours", 1, 1, 720)? * HOUR_US;
            let ips: Vec<IpAddr>;
            let device = args.opt_str("device_id")?;
            if let Some(id) = device.clone() {
                let found = devices(&ctx, move |book| {
                    json!(book.get(&id).map(|d| d.ips.iter().cloned().collect::<Vec<_>>()))
                })
                .await?;
                let list: Vec<IpAddr> = found
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
                    .unwrap_or_default();
                if found.is_null() {
                    return Err(ToolError::NotFound(format!("no device {}", device.unwrap_or_default())));
                }
                ips = list;
            } else {
                ips = vec![args
                    .opt_ip("ip")?
                    .ok_or_else(|| crate::args::invalid("ip", "give ip or device_id"))?];
            }
            let asked = ips.clone();
            let v = risk(&ctx, move |book| {
                let mut all: Vec<Value> = asked.iter().filter_map(|ip| book.explain(ip, trend)).collect();
                all.sort_by(|a, b| b["score"].as_f64().unwrap_or(0.0).total_cmp(&a["score"].as_f64().unwrap_or(0.0)));
                json!(all)
            })
            .await?;
            let all = v.as_array().cloned().unwrap_or_default();
            let Some(top) = all.first().cloned() else {
                return Err(ToolError::NotFound(format!(
                    "no alert has involved {} since risk scoring started",
                    ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                )));
            };
            let mut out = top;
            out["device_id"] = json!(device);
            out["addresses"] = if device.is_some() { json!(all) } else { json!([]) };
            Ok(out)
        },
    )
}

fn get_top_risk_assets(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_top_risk_assets",
            title: "Riskiest assets",
            description: "The assets with the highest risk now, scored incrementally as alerts arrive (criticality, exposure, chains and decay applied): address, score, level, base score, modifier, criticality, alerts and the strongest contributing kind. Filters: lowest `level`, `kind` (internal = inside the local networks, external), `sensor` that saw the alerts.",
            input: input(
                vec![
                    ("limit", limit(1000, 10)),
                    ("level", enumeration("Only assets at this level or above", &Level::ALL.map(Level::as_str))),
                    ("kind", enumeration("internal (local networks) or external", &["internal", "external"])),
                    ("sensor", string_len("Only assets whose alerts this sensor saw", 1, 128)),
                ],
                &[],
            ),
            output: output(vec![
                ("as_of", string("The sensor's newest packet time (RFC 3339)")),
                ("total_scored", count("Assets scored")),
                ("matched", count("Assets passing the filters")),
                ("assets", array("Highest score first", any_object("Asset"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let limit = usize::try_from(args.i64_or("limit", 10, 1, 1000)?).unwrap_or(10);
            let filter = TopFilter {
                level: args.opt_str("level")?.as_deref().and_then(Level::parse),
                kind: args.opt_str("kind")?,
                sensor: args.opt_str("sensor")?,
            };
            risk(&ctx, move |book| {
                let (top, matched) = book.top(limit, &filter);
                let assets: Vec<Value> = top
                    .iter()
                    .map(|(ip, s)| {
                        let a = book.asset(ip);
                        json!({
                            "ip": ip,
                            "score": round(s.score),
                            "level": s.level,
                            "base_score": round(s.base),
                            "modifier": round(s.modifier),
                            "criticality": a.map(|a| book.criticality(a)),
                            "alerts": a.map_or(0, |a| a.alerts.total),
                            "top_threat": a.and_then(|a| a.alerts.kept.first()).map(|c| &c.kind),
                            "last_seen": a.map(|a| time(a.last_us)),
                        })
                    })
                    .collect();
                json!({"as_of": time(book.now_us()), "total_scored": book.len(), "matched": matched, "assets": assets})
            })
            .await
        },
    )
}

fn get_risk_trends(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_risk_trends",
            title: "Risk trends",
            description: "Risk over time from the snapshots the risk actor records every few minutes of packet time: per bucket the mean and highest score, the assets recorded and how many were critical, high or medium; for one address (`ip`) or all. The window is the last `hours` before the sensor's newest packet time, or since/until.",
            input: input(
                vec![
                    ("ip", ip("Only this address")),
                    ("hours", int("Hours back from the newest packet time", 1, 8760, Some(24))),
                    ("since", string_len("Start, RFC 3339 (instead of hours)", 10, 40)),
                    ("until", string_len("End, RFC 3339 (default: newest packet time)", 10, 40)),
                    ("bucket_minutes", int("Bucket width in minutes", 5, 10_080, Some(60))),
                ],
                &[],
            ),
            output: output(vec![
                ("ip", opt_string("The address, or null for all")),
                ("since", string("Window start")),
                ("until", string("Window end")),
                ("bucket_minutes", count("Bucket width")),
                ("current", opt_object("The address's score now")),
                ("buckets", array("Oldest first", any_object("Bucket"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = args.opt_ip("ip")?;
            let hours = args.i64_or("hours", 24, 1, 8760)?;
            let bucket = args.i64_or("bucket_minutes", 60, 5, 10_080)?;
            let now = risk(&ctx, move |book| {
                json!({"now": book.now_us(), "current": ip.and_then(|ip| book.score(&ip)).map(|s| json!({"score": round(s.score), "level": s.level}))})
            })
            .await?;
            let clock = now["now"].as_i64().unwrap_or(0);
            let until = match args.opt_time("until")? {
                Some(t) => t,
                None => chrono::DateTime::from_timestamp_micros(clock).unwrap_or_default(),
            };
            let since = args.opt_time("since")?.unwrap_or(until - chrono::Duration::hours(hours));
            if since > until {
                return Err(crate::args::invalid("since", "must not be after 'until'"));
            }
            let ip_s = ip.map(|i| i.to_string());
            let mut conn = db(&ctx).await?;
            let rows = netmonitor_store::risk::risk_trends(&mut conn, ip_s.as_deref(), since, until, bucket * 60)
                .await
                .map_err(db_err)?;
            let buckets: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "bucket": r.bucket.to_rfc3339(),
                        "avg_score": round(r.avg_score),
                        "max_score": round(r.max_score),
                        "assets": r.assets,
                        "critical": r.critical,
                        "high": r.high,
                        "medium": r.medium,
                        "snapshots": r.snapshots,
                    })
                })
                .collect();
            Ok(json!({
                "ip": ip_s,
                "since": since.to_rfc3339(),
                "until": until.to_rfc3339(),
                "bucket_minutes": bucket,
                "current": now["current"],
                "buckets": buckets,
            }))
        },
    )
}

/// A chain as the tools show it.
fn chain_json(c: &Chain, open: bool) -> Value {
    let stage = netmonitor_risk::actor::stage_name;
    json!({
        "id": c.id,
        "sources": c.sources,
        "targets": c.targets,
        "stages": c.stages.iter().map(|s| json!({
            "stage": stage(s.stage),
            "first_seen": time(s.first_us),
            "last_seen": time(s.last_us),
            "alerts": s.alerts,
            "max_alert_score": round(s.max_score),
        })).collect::<Vec<_>>(),
        "stage_count": c.stages.len(),
        "score": round(c.score()),
        "in_kill_chain_order": c.in_order(),
        "open": open,
        "first_seen": time(c.first_us),
        "last_seen": time(c.last_us),
        "techniques": c.techniques(),
        "evidence": c.evidence.iter().map(|e| json!({
            "timestamp": time(e.ts_us),
            "stage": stage(e.stage),
            "threat_type": e.kind,
            "signature": e.signature,
            "src_ip": e.src,
            "dest_ip": e.dst,
            "alert_score": round(e.score),
        })).collect::<Vec<_>>(),
        "evidence_dropped": c.evidence_dropped,
    })
}

fn get_attack_chains(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_attack_chains",
            title: "Attack chains",
            description: "Multi-stage attacks: alerts correlated per source, and across sources through shared targets, into kill-chain stages (reconnaissance → credential access → lateral movement → command and control → exfiltration → impact) by their ATT&CK tactics. Each chain has its stages in the order reached, a score (noisy-OR of each stage's strongest alert), its sources and targets, and its evidence oldest first. Chains active in the last `hours` before the newest packet time; kept across restarts.",
            input: input(
                vec![
                    ("min_stages", int("Only chains with at least this many stages", 1, 6, Some(2))),
                    ("hours", int("Only chains with an alert in the last this many hours of packet time", 1, 8760, Some(24))),
                    ("source_ip", ip("Only chains with this address among their sources")),
                    ("limit", limit(500, 50)),
                ],
                &[],
            ),
            output: output(vec![
                ("as_of", string("The newest packet time")),
                ("total", count("Chains matching")),
                ("chains", array("Highest score first", any_object("Chain"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let min = usize::try_from(args.i64_or("min_stages", 2, 1, 6)?).unwrap_or(2);
            let hours = args.i64_or("hours", 24, 1, 8760)?;
            let source = args.opt_ip("source_ip")?;
            let limit = usize::try_from(args.i64_or("limit", 50, 1, 500)?).unwrap_or(50);
            risk(&ctx, move |book| {
                let now = book.now_us();
                let window = (book.config().chain_window_hours * 3.6e9) as i64;
                let mut found: Vec<&Chain> = book
                    .chains
                    .iter()
                    .filter(|c| c.stages.len() >= min && now - c.last_us <= hours * HOUR_US)
                    .filter(|c| source.is_none_or(|s| c.sources.contains(&s)))
                    .collect();
                found.sort_by(|a, b| b.score().total_cmp(&a.score()).then(b.last_us.cmp(&a.last_us)));
                let total = found.len();
                let chains: Vec<Value> = found
                    .into_iter()
                    .take(limit)
                    .map(|c| chain_json(c, now - c.last_us <= window))
                    .collect();
                json!({"as_of": time(now), "total": total, "chains": chains})
            })
            .await
        },
    )
}

fn set_asset_criticality(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "set_asset_criticality",
            title: "Set asset criticality",
            description: "Sets how much an address matters (low, medium, high, critical), or clears it (`clear`) so that its device template's criticality applies again. Criticality multiplies the risk odds by 0.5, 1, 1.5 or 2; the new score and level are returned, and crossing into a higher level raises a risk_threshold alert. Kept across restarts.",
            input: input(
                vec![
                    ("ip", ip("The asset's address")),
                    ("criticality", enumeration("The criticality, or clear", &["low", "medium", "high", "critical", "clear"])),
                ],
                &["ip", "criticality"],
            ),
            output: output(vec![
                ("ip", string("Address")),
                ("criticality", opt_string("Set by hand, or null when cleared")),
                ("score", number("Score now")),
                ("level", string("Level now")),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let ip = args.req_ip("ip")?;
            let level = args.req_str("criticality")?;
            let level = (level != "clear").then_some(level);
            let actor = ctx
                .engine
                .risk
                .clone()
                .ok_or_else(|| ToolError::Unavailable("no risk scoring in this process".into()))?;
            let set = level.clone();
            actor
                .send(UpdateRisk::new(move |book| {
                    let s = book.set_criticality(ip, set.as_deref())?;
                    Ok(json!({"score": round(s.score), "level": s.level}))
                }))
                .await
                .map_err(|e| ToolError::Unavailable(format!("risk actor: {e}")))?
                .map(|v| json!({"ip": ip, "criticality": level, "score": v["score"], "level": v["level"]}))
                .map_err(|e| crate::args::invalid("criticality", e))
        },
    )
}

/// `get_mitre_mapping` from the risk actor's counters, when it runs and its counters cover the
/// window.
pub(crate) async fn mitre_live(
    ctx: &Ctx,
    window: &netmonitor_store::queries::Window,
    limit: usize,
) -> Option<Value> {
    let (since, until) = (
        window.since.timestamp_micros(),
        window.until.timestamp_micros(),
    );
    let w = window_json(window);
    risk(ctx, move |book| {
        // Counters only cover what this sensor's risk actor saw or read back: with none yet,
        // or for a window before them, the rollup or the alerts table answers.
        let kept_from = book.now_us() - book.config().mitre_hours as i64 * HOUR_US;
        let covered = since >= kept_from || book.mitre.oldest_us().is_some_and(|o| since >= o);
        if book.mitre.is_empty() || !covered {
            return json!(false);
        }
        mitre_json(w, "live_counters", &book.mitre, since, until, limit)
    })
    .await
    .ok()
    .filter(|v| v.is_object())
}

/// `get_mitre_mapping` from the `mitre_rollup` of every sensor sharing the database, when it
/// reaches back to the window's start (else `None`: the alerts table answers).
pub(crate) async fn mitre_rollup(
    conn: &mut diesel_async::AsyncPgConnection,
    window: &netmonitor_store::queries::Window,
    limit: usize,
) -> Result<Option<Value>, ToolError> {
    let (cells, oldest) = netmonitor_store::risk::mitre_cells(conn, window.since, window.until)
        .await
        .map_err(db_err)?;
    if oldest.is_none_or(|o| o > window.since) {
        return Ok(None);
    }
    let mut counts = netmonitor_risk::counts::MitreCounts::default();
    counts.merge(
        cells
            .into_iter()
            .filter_map(|(b, t, doc)| Some((b, t, serde_json::from_value(doc).ok()?)))
            .collect(),
    );
    let (since, until) = (
        window.since.timestamp_micros(),
        window.until.timestamp_micros(),
    );
    Ok(Some(mitre_json(
        window_json(window),
        "rollup",
        &counts,
        since,
        until,
        limit,
    )))
}

/// The answer of `get_mitre_mapping` from counters.
fn mitre_json(
    window: Value,
    source: &str,
    counts: &netmonitor_risk::counts::MitreCounts,
    since: i64,
    until: i64,
    limit: usize,
) -> Value {
    let (techs, tactics) = counts.summary(since, until, limit);
    let techniques: Vec<Value> = techs
        .iter()
        .map(|t| {
            json!({
                "technique": t.technique,
                "name": t.name,
                "tactics": t.tactics,
                "alerts": t.alerts,
                "sources": t.sources,
                "assets": t.assets,
                "sample_assets": t.sample_assets,
                "threat_types": t.threat_types,
                "severity": t.severity,
                "severity_name": severity_name(i16::from(t.severity)),
                "first_seen": time(t.first_us),
                "last_seen": time(t.last_us),
            })
        })
        .collect();
    let tactics: Vec<Value> = tactics
        .iter()
        .map(|t| {
            json!({
                "tactic": t.id,
                "name": t.name,
                "alerts": t.alerts,
                "techniques": t.techniques,
                "assets": t.assets,
                "first_seen": time(t.first_us),
                "last_seen": time(t.last_us),
            })
        })
        .collect();
    json!({"window": window, "source": source, "techniques": techniques, "tactics": tactics})
}
