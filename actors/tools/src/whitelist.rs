//! Whitelist tools over the `whitelist` table. Entries are IP addresses or CIDR networks,
//! validated and normalised here (host bits cleared, a full-length prefix stored as the bare
//! address). Every change is handed to the alert stage, which stops raising alerts whose source
//! or destination falls inside an entry; alert listings (get_recent_threats,
//! get_threat_detections) also hide and count stored alerts an entry covers.

use crate::args::invalid;
use crate::schema::*;
use crate::support::*;
use ipnet::IpNet;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries as q;
use serde_json::{json, Value};
use std::net::IpAddr;

/// Longest description stored.
const MAX_DESCRIPTION_LEN: u64 = 500;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        add_whitelist_entry(ctx),
        get_whitelist_entries(ctx),
        remove_whitelist_entry(ctx),
    ]
}

/// Parses an address or CIDR network into its canonical text; also says whether host bits
/// had to be cleared.
pub(crate) fn normalize_entry(s: &str) -> Result<(String, bool), String> {
    let t = s.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok((ip.to_string(), false));
    }
    let net: IpNet = t.parse().map_err(|_| {
        format!("{t:?} is neither an IP address nor a CIDR network (10.0.0.0/8, 2001:db8::/32)")
    })?;
    let trunc = net.trunc();
    let changed = trunc != net;
    if trunc.prefix_len() == trunc.max_prefix_len() {
        return Ok((trunc.addr().to_string(), changed));
    }
    Ok((trunc.to_string(), changed))
}

/// Hands the changed whitelist to the alert stage, which applies it to every alert from now on.
async fn refresh_alert_stage(ctx: &Ctx) {
    if let Err(e) = crate::load_whitelist(ctx).await {
        tracing::warn!(error = %e, "the alert stage did not get the changed whitelist");
    }
}

fn entry_schema() -> Value {
    output(vec![
        ("id", count("Entry id (for remove_whitelist_entry)")),
        ("ip_cidr", string("Address or CIDR network")),
        ("description", opt_string("Why it is trusted")),
        ("created_at", string("When it was added (RFC 3339)")),
    ])
}

fn add_whitelist_entry(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "add_whitelist_entry",
            title: "Add whitelist entry",
            description: "Marks an IP address or CIDR network as trusted: alerts whose source or destination lies inside it are hidden (and counted as suppressed) in get_recent_threats and get_threat_detections. The value is validated and normalised (host bits cleared); adding an existing entry returns it unchanged.",
            input: input(
                vec![
                    ("ip_cidr", string_len("IP address or CIDR network (192.168.1.10, 10.0.0.0/8, 2001:db8::/32)", 2, 64)),
                    ("description", string_len("Why it is trusted", 1, MAX_DESCRIPTION_LEN)),
                ],
                &["ip_cidr"],
            ),
            output: output(vec![
                ("created", boolean("False when the entry existed already", None)),
                ("normalized", boolean("True when host bits were cleared from the input", None)),
                ("entry", entry_schema()),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, t, args| async move {
            let raw = args.req_str("ip_cidr")?;
            let (value, normalized) = normalize_entry(&raw).map_err(|m| invalid("ip_cidr", m))?;
            if let Ok(net) = value.parse::<IpNet>() {
                let v4 = matches!(net, IpNet::V4(_));
                if ctx.whitelist.needs_admin(v4, net.prefix_len()) && t.identity().scope < Scope::Admin {
                    return Err(ToolError::Forbidden(format!(
                        "whitelisting {value} hides /{} of the address space; only an admin token may add networks broader than /{}",
                        net.prefix_len(),
                        if v4 { ctx.whitelist.min_prefix_v4 } else { ctx.whitelist.min_prefix_v6 }
                    )));
                }
            }
            let description = args.opt_str("description")?;
            let mut conn = db(&ctx).await?;
            let (entry, created) = q::add_whitelist(&mut conn, &value, description.as_deref())
                .await
                .map_err(db_err)?;
            drop(conn);
            refresh_alert_stage(&ctx).await;
            Ok(json!({"created": created, "normalized": normalized, "entry": json(&entry)?}))
        },
    )
}

fn get_whitelist_entries(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_whitelist_entries",
            title: "Whitelist entries",
            description: "Lists whitelist entries, newest first; with `ip`, only the entries covering that address (to check whether it is whitelisted).",
            input: input(
                vec![
                    ("ip", ip("Only entries covering this address")),
                    ("limit", limit(1000, 200)),
                ],
                &[],
            ),
            output: output(vec![
                ("returned", count("Entries in this answer")),
                ("entries", array("Entries", entry_schema())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let limit = args.i64_or("limit", 200, 1, 1000)?;
            let ip = args.opt_ip("ip")?;
            let mut conn = db(&ctx).await?;
            let rows = match ip {
                Some(ip) => q::whitelist_matches(&mut conn, &ip.to_string())
                    .await
                    .map_err(db_err)?,
                None => q::list_whitelist(&mut conn, limit).await.map_err(db_err)?,
            };
            Ok(json!({"returned": rows.len(), "entries": json(&rows)?}))
        },
    )
}

fn remove_whitelist_entry(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "remove_whitelist_entry",
            title: "Remove whitelist entry",
            description: "Deletes a whitelist entry by id (from get_whitelist_entries) or by its exact address/network; alerts of that range are listed again.",
            input: input(
                vec![
                    ("id", int("Entry id", 1, i64::MAX, None)),
                    ("ip_cidr", string_len("The entry's address or CIDR network", 2, 64)),
                ],
                &[],
            ),
            output: output(vec![
                ("removed", count("Entries deleted")),
                ("entries", array("What was deleted", entry_schema())),
            ]),
            annotations: DESTRUCTIVE,
            scope: Scope::Admin,
        },
        |ctx, _t, args| async move {
            let mut conn = db(&ctx).await?;
            let removed = match (args.opt_i64("id", 1, i64::MAX)?, args.opt_str("ip_cidr")?) {
                (Some(id), _) => q::remove_whitelist(&mut conn, id)
                    .await
                    .map_err(db_err)?
                    .into_iter()
                    .collect::<Vec<_>>(),
                (None, Some(v)) => {
                    let (value, _) = normalize_entry(&v).map_err(|m| invalid("ip_cidr", m))?;
                    q::remove_whitelist_by_value(&mut conn, &value)
                        .await
                        .map_err(db_err)?
                }
                (None, None) => return Err(invalid("id", "give an id or an ip_cidr")),
            };
            if removed.is_empty() {
                return Err(ToolError::NotFound("no such whitelist entry".into()));
            }
            drop(conn);
            refresh_alert_stage(&ctx).await;
            Ok(json!({"removed": removed.len(), "entries": json(&removed)?}))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_validated_and_normalised() {
        assert_eq!(
            normalize_entry("10.0.0.0/8"),
            Ok(("10.0.0.0/8".into(), false))
        );
        assert_eq!(
            normalize_entry(" 10.1.2.3/8 "),
            Ok(("10.0.0.0/8".into(), true))
        );
        assert_eq!(
            normalize_entry("192.168.1.10"),
            Ok(("192.168.1.10".into(), false))
        );
        assert_eq!(
            normalize_entry("192.168.1.10/32"),
            Ok(("192.168.1.10".into(), false))
        );
        assert_eq!(
            normalize_entry("2001:db8::1/32"),
            Ok(("2001:db8::/32".into(), true))
        );
        assert_eq!(normalize_entry("::1"), Ok(("::1".into(), false)));
        assert!(normalize_entry("10.0.0.0/33").is_err());
        assert!(normalize_entry("example.com").is_err());
        assert!(normalize_entry("10.0.0.1; DROP TABLE whitelist").is_err());
    }
}
