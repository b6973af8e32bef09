//! Suppression and service-provider tools: what the alert stage suppressed and why
//! (get_alert_suppression_stats), what it would do with a given alert (test_alert_suppression),
//! and the named provider ranges whose traffic is scored lower and, for the kinds they list,
//! suppressed (get_service_providers, check_ip_service_provider, create_service_provider). The
//! alert stage holds the whitelist and providers in force; the database keeps them.

use crate::args::invalid;
use crate::schema::*;
use crate::support::*;
use crate::whitelist::{entry_schema, normalize_domain, normalize_entry};
use netmonitor_alerts::{AlertSubject, Direction, ServiceProvider, WhitelistEntry};
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::suppression::{self as q, ProviderRecord, WhitelistRecord};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Provider categories.
const CATEGORIES: [&str; 6] = ["cdn", "cloud", "backup", "streaming", "saas", "other"];
/// Ranges and domains one provider may hold.
const MAX_PROVIDER_ITEMS: usize = 10_000;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_alert_suppression_stats(ctx),
        test_alert_suppression(ctx),
        get_service_providers(ctx),
        check_ip_service_provider(ctx),
        create_service_provider(ctx),
    ]
}

/// The alert stage's form of a stored entry; `None` for a row it cannot use.
pub(crate) fn whitelist_entry(r: &WhitelistRecord) -> Option<WhitelistEntry> {
    let net = match &r.ip_cidr {
        Some(v) => Some(netmonitor_alerts::suppress::parse_net(v)?),
        None => None,
    };
    Some(WhitelistEntry {
        id: r.id,
        net,
        domain: r.domain.clone(),
        port: r.port.and_then(|p| u16::try_from(p).ok()),
        direction: Direction::parse(&r.direction)?,
        sensor: r.sensor.clone(),
    })
}

/// The alert stage's form of a stored provider (ranges it cannot parse are left out).
pub(crate) fn provider(r: &ProviderRecord) -> ServiceProvider {
    ServiceProvider {
        id: r.id,
        name: r.name.clone(),
        category: r.category.clone(),
        ranges: r
            .ranges
            .iter()
            .filter_map(|n| netmonitor_alerts::suppress::parse_net(n))
            .collect(),
        domains: r.domains.clone(),
        suppress: r.suppress.iter().cloned().collect(),
    }
}

/// Loads the `service_providers` table into the alert stage (at start and after a change).
pub async fn load_providers(ctx: &crate::ToolContext) -> Result<usize, String> {
    let mut conn = ctx.pool.get().await.map_err(|e| e.to_string())?;
    let rows = q::list_providers(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let n = rows.len();
    ctx.engine
        .alert_stage
        .send(netmonitor_alerts::SetProviders(
            rows.iter().map(provider).collect(),
        ))
        .await
        .map_err(|e| e.to_string())?;
    Ok(n)
}

fn provider_schema() -> Value {
    output(vec![
        ("id", count("Provider id")),
        ("name", string("Name")),
        (
            "category",
            string("cdn, cloud, backup, streaming, saas, other"),
        ),
        ("ranges", array("Address ranges", string("CIDR network"))),
        (
            "domains",
            array("Domains (names below them count)", string("Domain")),
        ),
        (
            "suppress",
            array(
                "Alert kinds suppressed when it is the far end",
                string("Kind"),
            ),
        ),
        ("description", opt_string("What it is")),
        ("created_at", string("When it was created (RFC 3339)")),
    ])
}

fn get_alert_suppression_stats(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_alert_suppression_stats",
            title: "Alert suppression statistics",
            description: "What the shared alert stage suppressed since the service started, and why: per whitelist entry (with the entry), per service provider (suppressed, and raised one severity lower), duplicates within the dedup window, kinds switched off, and whether suppressed alerts are dropped or kept as hidden evidence (detection.alerts.whitelisted). Alerts are judged once, at detection time, before they are stored.",
            input: input(vec![], &[]),
            output: output(vec![
                ("raised", count("Alerts raised")),
                ("suppressed", count("Alerts suppressed by whitelist entries and providers")),
                ("suppressed_alerts", string("drop or keep")),
                ("kept_as_evidence", count("Suppressed alerts stored as hidden evidence")),
                ("duplicates", count("Alerts dropped as repeats within the dedup window")),
                ("disabled", count("Alerts of kinds switched off")),
                ("dedup_window_secs", count("Dedup window (packet time)")),
                ("disabled_kinds", array("Kinds switched off", string("Kind"))),
                ("by_whitelist_entry", array("Per entry, most suppressing first", output(vec![
                    ("suppressed", count("Alerts it suppressed")),
                    ("entry", entry_schema()),
                ]))),
                ("by_service_provider", array("Per provider", output(vec![
                    ("id", count("Provider id")),
                    ("name", string("Name")),
                    ("suppressed", count("Alerts suppressed")),
                    ("lowered", count("Alerts raised one severity lower")),
                ]))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let stats = ctx
                .engine
                .alert_stage
                .send(netmonitor_alerts::GetAlertStats)
                .await
                .map_err(|e| ToolError::Unavailable(format!("alert stage unavailable: {e}")))?;
            let c = &stats.counters;
            let mut conn = db(&ctx).await?;
            let entries: BTreeMap<i64, WhitelistRecord> = q::list_whitelist(&mut conn, i64::MAX)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|e| (e.id, e))
                .collect();
            let providers: BTreeMap<i64, ProviderRecord> = q::list_providers(&mut conn)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
            let mut by_entry: Vec<(i64, u64)> =
                c.whitelisted_by_entry.iter().map(|(k, v)| (*k, *v)).collect();
            by_entry.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let by_entry: Vec<Value> = by_entry
                .into_iter()
                .map(|(id, n)| {
                    let entry = entries.get(&id).map_or_else(
                        || json!({"id": id, "removed": true}),
                        |e| serde_json::to_value(e).unwrap_or(Value::Null),
                    );
                    json!({"suppressed": n, "entry": entry})
                })
                .collect();
            let ids: std::collections::BTreeSet<i64> = c
                .suppressed_by_provider
                .keys()
                .chain(c.lowered_by_provider.keys())
                .copied()
                .collect();
            let by_provider: Vec<Value> = ids
                .into_iter()
                .map(|id| {
                    json!({
                        "id": id,
                        "name": providers.get(&id).map_or("(removed)", |p| p.name.as_str()),
                        "suppressed": c.suppressed_by_provider.get(&id).copied().unwrap_or(0),
                        "lowered": c.lowered_by_provider.get(&id).copied().unwrap_or(0),
                    })
                })
                .collect();
            let suppressed: u64 = c.whitelisted_by_entry.values().sum::<u64>()
                + c.suppressed_by_provider.values().sum::<u64>();
            Ok(json!({
                "raised": c.raised_by_kind.values().sum::<u64>(),
                "suppressed": suppressed,
                "suppressed_alerts": stats.suppressed_alerts,
                "kept_as_evidence": c.kept_as_evidence,
                "duplicates": c.duplicates,
                "disabled": c.disabled,
                "dedup_window_secs": stats.dedup_window_secs,
                "disabled_kinds": stats.disabled_kinds,
                "by_whitelist_entry": by_entry,
                "by_service_provider": by_provider,
            }))
        },
    )
}

fn test_alert_suppression(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "test_alert_suppression",
            title: "Test alert suppression",
            description: "Would this alert be suppressed, and by which entry? Asks the running alert stage about an alert of `threat_type` from `src_ip` to `dest_ip` (optionally `dest_port` and the `domain` it concerns) without raising or counting anything: the outcome (raised, whitelisted, provider_suppressed, kind_disabled), the whitelist entry that covers it, and the service provider at its far end (which suppresses it or lowers its severity).",
            input: input(
                vec![
                    ("src_ip", ip("The alert's source")),
                    ("dest_ip", ip("The alert's destination")),
                    ("dest_port", int("Destination port", 0, 65_535, Some(0))),
                    ("domain", string_len("The domain it concerns (SNI, DNS name, HTTP host)", 3, 253)),
                    ("threat_type", string_len("Alert kind (port_scan, beaconing, …)", 1, 64)),
                ],
                &["src_ip", "dest_ip"],
            ),
            output: output(vec![
                ("outcome", enumeration("What the stage would do", &["raised", "whitelisted", "provider_suppressed", "kind_disabled"])),
                ("suppressed", boolean("Whether it would be suppressed", None)),
                ("whitelist_entry", opt_object("The entry that covers it")),
                ("service_provider", opt_object("The provider at its far end")),
                ("suppressed_alerts", string("What suppressed alerts become: drop or keep")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let domain = match args.opt_str("domain")? {
                Some(d) => Some(normalize_domain(&d).map_err(|m| invalid("domain", m))?),
                None => None,
            };
            let subject = AlertSubject {
                src: args.req_ip("src_ip")?,
                dst: args.req_ip("dest_ip")?,
                port: args.i64_or("dest_port", 0, 0, 65_535)? as u16,
                domain,
                kind: args.opt_str("threat_type")?.unwrap_or_default(),
            };
            let a = ctx
                .engine
                .alert_stage
                .send(netmonitor_alerts::TestSuppression(subject))
                .await
                .map_err(|e| ToolError::Unavailable(format!("alert stage unavailable: {e}")))?;
            let suppressed = matches!(a.outcome, "whitelisted" | "provider_suppressed");
            let mut out = json!(a);
            out["suppressed"] = json!(suppressed);
            Ok(out)
        },
    )
}

fn get_service_providers(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_service_providers",
            title: "Service providers",
            description: "Lists the named service providers (CDNs, clouds, backup, streaming, SaaS): their address ranges and domains, the alert kinds suppressed when one is the far end, and how many alerts each suppressed or lowered since start. Alerts toward a provider that do not name their kind are raised one severity lower with the provider in their evidence.",
            input: input(vec![("category", enumeration("Only this category", &CATEGORIES))], &[]),
            output: output(vec![
                ("returned", count("Providers in this answer")),
                ("providers", array("Providers", provider_schema())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let category = args.opt_str("category")?;
            let mut conn = db(&ctx).await?;
            let rows = q::list_providers(&mut conn).await.map_err(db_err)?;
            drop(conn);
            let counters = ctx
                .engine
                .alert_stage
                .send(netmonitor_alerts::GetAlertStats)
                .await
                .ok()
                .map(|s| s.counters);
            let list: Vec<Value> = rows
                .iter()
                .filter(|p| category.as_deref().is_none_or(|c| c == p.category))
                .map(|p| {
                    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                    if let Some(c) = &counters {
                        v["suppressed"] = json!(c.suppressed_by_provider.get(&p.id).copied().unwrap_or(0));
                        v["lowered"] = json!(c.lowered_by_provider.get(&p.id).copied().unwrap_or(0));
                    }
                    v
                })
                .collect();
            Ok(json!({"returned": list.len(), "providers": list}))
        },
    )
}

fn check_ip_service_provider(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "check_ip_service_provider",
            title: "Check IP against service providers",
            description: "Which service provider, if any, owns an address (longest matching range wins), with the range that matched; answers from the provider ranges the alert stage holds.",
            input: input(vec![("ip", ip("Address to check"))], &["ip"]),
            output: output(vec![
                ("ip", string("The address")),
                ("is_service_provider", boolean("Whether a provider owns it", None)),
                ("provider", opt_object("The provider")),
                ("matched_range", opt_string("The range that matched")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = args.req_ip("ip")?;
            let mut conn = db(&ctx).await?;
            let rows = q::list_providers(&mut conn).await.map_err(db_err)?;
            let best = rows
                .iter()
                .flat_map(|p| {
                    p.ranges.iter().filter_map(move |r| {
                        let net = netmonitor_alerts::suppress::parse_net(r)?;
                        net.contains(&ip).then_some((net.prefix_len(), p, r))
                    })
                })
                .max_by_key(|(len, _, _)| *len);
            Ok(match best {
                Some((_, p, r)) => json!({
                    "ip": ip.to_string(), "is_service_provider": true,
                    "provider": serde_json::to_value(p).unwrap_or(Value::Null), "matched_range": r,
                }),
                None => json!({"ip": ip.to_string(), "is_service_provider": false,
                               "provider": null, "matched_range": null}),
            })
        },
    )
}

/// A JSON array of strings from `args[k]`, or empty.
fn string_list(v: Option<Value>, field: &str) -> Result<Vec<String>, ToolError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) if a.len() <= MAX_PROVIDER_ITEMS => a
            .into_iter()
            .map(|x| match x {
                Value::String(s) => Ok(s),
                _ => Err(invalid(field, "a list of strings")),
            })
            .collect(),
        Some(Value::Array(_)) => Err(invalid(
            field,
            format!("at most {MAX_PROVIDER_ITEMS} items"),
        )),
        Some(_) => Err(invalid(field, "a list of strings")),
    }
}

fn create_service_provider(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "create_service_provider",
            title: "Create service provider",
            description: "Names a set of address ranges and domains as one service provider (a CDN, cloud, offsite backup, streaming or SaaS service). From then on the alert stage suppresses alerts of the kinds in `suppress` whose far end is the provider (counted per provider; e.g. high_outbound_volume for a backup service) and raises every other alert toward it one severity lower, naming the provider in its evidence. Ranges are validated and normalised.",
            input: input(
                vec![
                    ("name", string_len("Unique name (offsite-backup)", 1, 128)),
                    ("category", enumeration("Category", &CATEGORIES)),
                    ("ranges", array("CIDR networks or addresses", string("192.0.2.0/24"))),
                    ("domains", array("Domains (names below them count)", string("backup.example.com"))),
                    ("suppress", array("Alert kinds suppressed when it is the far end (high_outbound_volume, beaconing, long_connection, …)", string("Kind"))),
                    ("description", string_len("What it is", 1, 500)),
                ],
                &["name", "category"],
            ),
            output: output(vec![("provider", provider_schema())]),
            annotations: WRITE_ADDITIVE,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let name = args.req_str("name")?;
            let category = args.req_str("category")?;
            if !CATEGORIES.contains(&category.as_str()) {
                return Err(invalid("category", format!("one of {}", CATEGORIES.join(", "))));
            }
            let ranges = string_list(args.value("ranges"), "ranges")?
                .iter()
                .map(|r| normalize_entry(r).map(|(v, _)| v).map_err(|m| invalid("ranges", m)))
                .collect::<Result<Vec<_>, _>>()?;
            let domains = string_list(args.value("domains"), "domains")?
                .iter()
                .map(|d| normalize_domain(d).map_err(|m| invalid("domains", m)))
                .collect::<Result<Vec<_>, _>>()?;
            if ranges.is_empty() && domains.is_empty() {
                return Err(invalid("ranges", "give ranges, domains or both"));
            }
            let known: Vec<&str> = netmonitor_common::mitre::ALERT_KINDS.iter().map(|(k, _)| *k).collect();
            let suppress = string_list(args.value("suppress"), "suppress")?;
            if let Some(bad) = suppress.iter().find(|k| !known.contains(&k.as_str())) {
                return Err(invalid("suppress", format!("{bad:?} is not an alert kind (known: {})", known.join(", "))));
            }
            let description = args.opt_str("description")?;
            let new = q::NewProvider {
                name: &name,
                category: &category,
                ranges: &ranges,
                domains: &domains,
                suppress: &suppress,
                description: description.as_deref(),
            };
            let mut conn = db(&ctx).await?;
            let created = q::create_provider(&mut conn, &new).await.map_err(db_err)?;
            drop(conn);
            let Some(p) = created else {
                return Err(invalid("name", format!("a provider named {name:?} exists")));
            };
            if let Err(e) = load_providers(&ctx).await {
                tracing::warn!(error = %e, "the alert stage did not get the new provider");
            }
            Ok(json!({"provider": json(&p)?}))
        },
    )
}
