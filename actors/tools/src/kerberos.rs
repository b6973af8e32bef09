//! Kerberos tools over `kerberos_events` and the Kerberos alerts: message statistics (types,
//! error codes, encryption types, clients, principals), attacks (alerts whose threat type is
//! one of the Kerberos detector's), and weak encryption per client. Weakness is decided by
//! the shared rule `netmonitor_common::krb::is_weak_etype`, the one the dissector logs with.

use crate::args::next_cursor;
use crate::schema::*;
use crate::support::*;
use crate::threats::alert_json;
use netmonitor_common::krb::{error_code_name, etype_name, is_weak_etype};
use netmonitor_kerberos::detect::RULES;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries::{self as q, AlertFilter, KrbCode, KrbKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Range of etype numbers scanned to derive the strong set from `is_weak_etype` (RFC 3961
/// assigns small numbers; the negative ones are Microsoft's old RC4 variants).
const ETYPE_SCAN: std::ops::RangeInclusive<i32> = -256..=256;
/// Etype groups fetched at most for `check_weak_encryption`.
const MAX_WEAK_GROUPS: i64 = 10_000;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_kerberos_stats(ctx),
        get_kerberos_attacks(ctx),
        check_weak_encryption(ctx),
    ]
}

/// Threat types the Kerberos detector raises, from its rule table.
pub(crate) fn kerberos_threat_types() -> Vec<String> {
    let mut v: Vec<String> = RULES.iter().map(|r| r.threat_type.to_owned()).collect();
    v.sort();
    v.dedup();
    v
}

/// Encryption types that are not weak, derived from the shared rule.
pub(crate) fn strong_etypes() -> Vec<i32> {
    ETYPE_SCAN.filter(|e| !is_weak_etype(*e)).collect()
}

fn named_codes(rows: &[q::CodeCount], name: fn(i32) -> String) -> Vec<Value> {
    rows.iter()
        .map(|r| json!({"code": r.code, "name": name(r.code), "count": r.count}))
        .collect()
}

fn code_schema() -> Value {
    output(vec![
        ("code", count("Numeric value")),
        ("name", string("Its name")),
        ("count", count("Messages")),
    ])
}

fn get_kerberos_stats(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        ("ip", ip("Only messages from or to this address")),
        ("limit", limit(100, 10)),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_kerberos_stats",
            title: "Kerberos statistics",
            description: "Kerberos activity over the last `hours` (default 24) or a since/until window (from the database), optionally for one address, plus the live counters since the sensor started: messages by type (KRB_AS_REQ, KRB_AS_REP, KRB_TGS_REQ, KRB_TGS_REP, KRB_ERROR), error codes, reply and ticket encryption types, messages with weak encryption, and the most active clients, principals, services and realms.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("totals", output(vec![
                    ("messages", count("Kerberos messages")),
                    ("clients", count("Distinct client addresses")),
                    ("kdcs", count("Distinct KDC addresses")),
                    ("principals", count("Distinct client principals")),
                    ("errors", count("KRB_ERROR messages")),
                    ("weak_encryption", count("Replies with weak encryption")),
                    ("first_seen", opt_string("First message (RFC 3339)")),
                    ("last_seen", opt_string("Last message (RFC 3339)")),
                ])),
                ("by_message_type", array("Messages per type", name_count())),
                ("error_codes", array("KRB_ERROR codes", code_schema())),
                ("reply_encryption", array("Reply enc-part etypes", code_schema())),
                ("ticket_encryption", array("Ticket etypes", code_schema())),
                ("top_clients", array("Client addresses", name_count())),
                ("top_principals", array("Client principals", name_count())),
                ("top_services", array("Service principals", name_count())),
                ("realms", array("Realms", name_count())),
                ("live", opt_object("Since the sensor started, from the Kerberos actor's live state: messages by type, errors by code, weak etypes, alerts by kind, top clients, accounts and services (null when the actor does not answer)")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let live = ctx
                .engine
                .kerberos
                .send(netmonitor_kerberos::actor::GetKrbStats)
                .await
                .ok()
                .map(|s| json(&s))
                .transpose()?;
            let window = args.window(24)?;
            let ip = args.opt_ip("ip")?.map(|i| i.to_string());
            let ip = ip.as_deref();
            let limit = args.i64_or("limit", 10, 1, 100)?;
            let mut conn = db(&ctx).await?;
            let totals = q::krb_totals(&mut conn, window, ip).await.map_err(db_err)?;
            let mut tops = Vec::new();
            for key in [KrbKey::MsgType, KrbKey::Client, KrbKey::Cname, KrbKey::Sname, KrbKey::Realm] {
                tops.push(q::krb_top(&mut conn, key, window, ip, limit).await.map_err(db_err)?);
            }
            let [types, clients, cnames, snames, realms]: [Vec<q::NameCount>; 5] = tops
                .try_into()
                .map_err(|_| ToolError::Failed("internal: statistics incomplete".into()))?;
            let errors = q::krb_codes(&mut conn, KrbCode::ErrorCode, window, ip)
                .await
                .map_err(db_err)?;
            let enc = q::krb_codes(&mut conn, KrbCode::Encryption, window, ip)
                .await
                .map_err(db_err)?;
            let tkt = q::krb_codes(&mut conn, KrbCode::TicketEncryption, window, ip)
                .await
                .map_err(db_err)?;
            Ok(json!({
                "window": window_json(&window),
                "totals": json(&totals)?,
                "by_message_type": json(&types)?,
                "error_codes": named_codes(&errors, error_code_name),
                "reply_encryption": named_codes(&enc, etype_name),
                "ticket_encryption": named_codes(&tkt, etype_name),
                "top_clients": json(&clients)?,
                "top_principals": json(&cnames)?,
                "top_services": json(&snames)?,
                "realms": json(&realms)?,
                "live": live,
            }))
        },
    )
}

fn get_kerberos_attacks(ctx: &Ctx) -> ToolDef {
    let types = kerberos_threat_types();
    let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let mut props = window_props(24);
    props.extend([
        (
            "ip",
            ip("Only attacks where this address is source or destination"),
        ),
        (
            "attack_type",
            enumeration("Only this Kerberos threat type", &type_refs),
        ),
        (
            "include_acknowledged",
            boolean("Also list acknowledged alerts", Some(true)),
        ),
        ("limit", limit(500, 100)),
        ("cursor", cursor()),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_kerberos_attacks",
            title: "Kerberos attacks",
            description: "Kerberos attack alerts (Kerberoasting, AS-REP roasting, brute force, password spraying, user enumeration, weak encryption requests, encryption downgrades, ticket abuse) over the last `hours` (default 24) or a since/until window, selected by the alerts' threat type, newest first, with counts per attack type. Page with `cursor` (the previous answer's next_cursor).",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("attack_types", array("Kerberos threat types searched", string("Threat type"))),
                ("total", count("Matching alerts")),
                ("by_type", array("Alerts per threat type", name_count())),
                ("attacks", array("Alerts, newest first", alert())),
                ("next_cursor", next_cursor_out()),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        move |ctx, _t, args| {
            let all_types = types.clone();
            async move {
                let window = args.window(24)?;
                let wanted = match args.opt_str("attack_type")? {
                    Some(t) if all_types.contains(&t) => vec![t],
                    Some(_) => {
                        return Err(crate::args::invalid(
                            "attack_type",
                            format!("must be one of {}", all_types.join(", ")),
                        ))
                    }
                    None => all_types.clone(),
                };
                let f = AlertFilter {
                    window,
                    ip: args.opt_ip("ip")?.map(|i| i.to_string()),
                    threat_types: wanted.clone(),
                    max_severity: None,
                    include_acknowledged: args.bool_or("include_acknowledged", true)?,
                    hide_whitelisted: false,
                    indicator: None,
                };
                let limit = args.i64_or("limit", 100, 1, 500)?;
                let mut conn = db(&ctx).await?;
                let total = netmonitor_store::summaries::count_alerts(&mut conn, &f).await.map_err(db_err)?;
                let alerts = q::list_alerts_before(&mut conn, &f, args.opt_cursor()?, limit)
                    .await
                    .map_err(db_err)?;
                let next = next_cursor(alerts.len(), limit, alerts.last().map(|a| (a.ts, a.id)));
                let mut by_type = Vec::new();
                for t in &wanted {
                    let n = netmonitor_store::summaries::count_alerts(
                        &mut conn,
                        &AlertFilter {
                            threat_types: vec![t.clone()],
                            ..f.clone()
                        },
                    )
                    .await
                    .map_err(db_err)?;
                    if n > 0 {
                        by_type.push(json!({"name": t, "count": n}));
                    }
                }
                Ok(json!({
                    "window": window_json(&window),
                    "attack_types": wanted,
                    "total": total,
                    "by_type": by_type,
                    "attacks": alerts.iter().map(alert_json).collect::<Result<Vec<_>, _>>()?,
                    "next_cursor": next,
                }))
            }
        },
    )
}

/// Why a group of messages counts as weak.
fn weakness(g: &q::KrbEtypeGroup) -> Vec<&'static str> {
    let mut why = Vec::new();
    if g.encryption.is_some_and(is_weak_etype) {
        why.push("weak_reply_encryption");
    }
    if g.ticket_encryption.is_some_and(is_weak_etype) {
        why.push("weak_ticket_encryption");
    }
    if !g.requested_etypes.is_empty() && g.requested_etypes.iter().all(|e| is_weak_etype(*e)) {
        why.push("only_weak_etypes_requested");
    }
    why
}

fn check_weak_encryption(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        ("ip", ip("Only this client (or KDC) address")),
        ("limit", limit(500, 100)),
    ]);
    let client = output(vec![
        ("client", string("Client address")),
        ("messages", count("Messages with weak encryption")),
        (
            "principals",
            array("Client principals involved", string("Principal")),
        ),
        (
            "reasons",
            array(
                "weak_reply_encryption, weak_ticket_encryption, only_weak_etypes_requested",
                string("Reason"),
            ),
        ),
        (
            "etypes",
            array("Weak encryption types seen", string("Etype name")),
        ),
        ("first_seen", string("First such message (RFC 3339)")),
        ("last_seen", string("Last such message (RFC 3339)")),
    ]);
    tool(
        ctx,
        Spec {
            name: "check_weak_encryption",
            title: "Weak Kerberos encryption",
            description: "Finds Kerberos traffic using weak encryption (anything but AES and Camellia: RC4, DES, 3DES) over the last `hours` (default 24) or a since/until window, per client: replies or tickets encrypted with a weak etype, and requests that offered only weak etypes; with the principals, etypes and first/last time.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("strong_etypes", array("Etypes not considered weak", string("Etype name"))),
                ("messages", count("Weak messages in total")),
                ("clients", array("Clients, most weak messages first", client)),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let window = args.window(24)?;
            let ip = args.opt_ip("ip")?.map(|i| i.to_string());
            let limit = usize::try_from(args.i64_or("limit", 100, 1, 500)?).unwrap_or(100);
            let strong = strong_etypes();
            let mut conn = db(&ctx).await?;
            let groups = q::krb_weak_groups(&mut conn, window, ip.as_deref(), &strong, MAX_WEAK_GROUPS)
                .await
                .map_err(db_err)?;
            #[derive(Default)]
            struct Acc {
                messages: i64,
                principals: Vec<String>,
                reasons: Vec<&'static str>,
                etypes: Vec<String>,
                first: Option<chrono::DateTime<chrono::Utc>>,
                last: Option<chrono::DateTime<chrono::Utc>>,
            }
            let mut by_client: BTreeMap<String, Acc> = BTreeMap::new();
            let mut total = 0i64;
            for g in &groups {
                let why = weakness(g);
                if why.is_empty() {
                    continue;
                }
                total = total.saturating_add(g.messages);
                let a = by_client.entry(g.src_ip.clone()).or_default();
                a.messages = a.messages.saturating_add(g.messages);
                if let Some(p) = &g.cname {
                    let full = match &g.realm {
                        Some(r) => format!("{p}@{r}"),
                        None => p.clone(),
                    };
                    if !a.principals.contains(&full) {
                        a.principals.push(full);
                    }
                }
                for w in why {
                    if !a.reasons.contains(&w) {
                        a.reasons.push(w);
                    }
                }
                let weak_used = g
                    .encryption
                    .into_iter()
                    .chain(g.ticket_encryption)
                    .chain(g.requested_etypes.iter().copied())
                    .filter(|e| is_weak_etype(*e));
                for e in weak_used {
                    let n = etype_name(e);
                    if !a.etypes.contains(&n) {
                        a.etypes.push(n);
                    }
                }
                a.first = Some(a.first.map_or(g.first_seen, |f| f.min(g.first_seen)));
                a.last = Some(a.last.map_or(g.last_seen, |l| l.max(g.last_seen)));
            }
            let mut clients: Vec<(String, Acc)> = by_client.into_iter().collect();
            clients.sort_by(|a, b| b.1.messages.cmp(&a.1.messages).then(a.0.cmp(&b.0)));
            let list: Vec<Value> = clients
                .into_iter()
                .take(limit)
                .map(|(ip, a)| {
                    json!({
                        "client": ip,
                        "messages": a.messages,
                        "principals": a.principals,
                        "reasons": a.reasons,
                        "etypes": a.etypes,
                        "first_seen": a.first.map(|t| t.to_rfc3339()).unwrap_or_default(),
                        "last_seen": a.last.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    })
                })
                .collect();
            Ok(json!({
                "window": window_json(&window),
                "strong_etypes": strong.iter().map(|e| etype_name(*e)).collect::<Vec<_>>(),
                "messages": total,
                "clients": list,
            }))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_set_follows_the_shared_rule() {
        let strong = strong_etypes();
        assert!(!strong.is_empty());
        assert!(strong.iter().all(|e| !is_weak_etype(*e)));
        assert!(!strong.contains(&23), "rc4-hmac is weak");
        assert!(kerberos_threat_types().contains(&"kerberoasting".to_string()));
    }

    #[test]
    fn weakness_reasons() {
        let g = q::KrbEtypeGroup {
            src_ip: "10.0.0.1".into(),
            cname: Some("alice".into()),
            realm: Some("EXAMPLE".into()),
            msg_type: "KRB_TGS_REP".into(),
            encryption: Some(18),
            ticket_encryption: Some(23),
            requested_etypes: vec![23, 3],
            messages: 2,
            first_seen: chrono::Utc::now(),
            last_seen: chrono::Utc::now(),
        };
        assert_eq!(
            weakness(&g),
            vec!["weak_ticket_encryption", "only_weak_etypes_requested"]
        );
        let ok = q::KrbEtypeGroup {
            ticket_encryption: Some(18),
            requested_etypes: vec![18, 23],
            ..g
        };
        assert!(weakness(&ok).is_empty());
    }
}
