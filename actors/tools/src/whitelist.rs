//! Whitelist tools over the `whitelist` table. An entry matches on an IP address or CIDR
//! network (in a direction), a domain (and the names below it), a destination port, or any of
//! them together, on every sensor or one; values are validated and normalised here (host bits
//! cleared, a full-length prefix stored as the bare address, domains lower-cased). Every change
//! is handed to the alert stage, which suppresses covered alerts before they are stored;
//! alert listings (get_recent_threats, get_threat_detections) also hide stored alerts an
//! address entry covers.

use crate::args::invalid;
use crate::schema::*;
use crate::support::*;
use ipnet::IpNet;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::suppression as q;
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

/// A domain lower-cased without trailing dot or leading `*.`, of at least two labels.
/// A numeric last label (`300.1.1.1`) is a mistyped address, not a domain.
pub(crate) fn normalize_domain(s: &str) -> Result<String, String> {
    netmonitor_intel::indicator::normalize_domain(s)
        .filter(|d| {
            !d.rsplit('.')
                .next()
                .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        })
        .ok_or_else(|| format!("{:?} is not a domain name (example.com)", s.trim()))
}

/// Hands the changed whitelist to the alert stage, which applies it to every alert from now on.
async fn refresh_alert_stage(ctx: &Ctx) {
    if let Err(e) = crate::load_whitelist(ctx).await {
        tracing::warn!(error = %e, "the alert stage did not get the changed whitelist");
    }
}

pub(crate) fn entry_schema() -> Value {
    output(vec![
        ("id", count("Entry id (for remove_whitelist_entry)")),
        ("ip_cidr", opt_string("Address or CIDR network")),
        ("domain", opt_string("Domain (names below it match too)")),
        ("port", opt_int("Destination port")),
        (
            "direction",
            string("Which end the address applies to: any, source, destination"),
        ),
        (
            "sensor",
            opt_string("Only this sensor's alerts (null: every sensor)"),
        ),
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
            description: "Marks something as trusted so that its alerts are suppressed at detection time (counted per entry; dropped or kept as hidden evidence by configuration, see get_alert_suppression_stats): an IP address or CIDR network (in `ip_cidr`, matching the alert's source or destination, or only one of them with `direction`), a domain (in `domain`, or a domain given in `ip_cidr` as the seed system accepted; the domain and names below it match the alert's SNI, DNS name or HTTP host), a destination `port`, or several of these together (all must match), on every sensor or one `sensor`. Values are validated and normalised (host bits cleared, domains lower-cased); adding an existing entry returns it unchanged. Check the effect with test_alert_suppression.",
            input: input(
                vec![
                    ("ip_cidr", string_len("IP address or CIDR network (192.168.1.10, 10.0.0.0/8, 2001:db8::/32); a domain here is taken as `domain`", 2, 253)),
                    ("domain", string_len("Domain (backup.example.com): it and the names below it", 3, 253)),
                    ("port", int("Destination port", 0, 65_535, None)),
                    ("direction", enumeration("Which end of the alert the address must be (default any)", &["any", "source", "destination"])),
                    ("sensor", string_len("Only alerts of this sensor (default: every sensor)", 1, 128)),
                    ("description", string_len("Why it is trusted", 1, MAX_DESCRIPTION_LEN)),
                ],
                &[],
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
            let mut domain = match args.opt_str("domain")? {
                Some(d) => Some(normalize_domain(&d).map_err(|m| invalid("domain", m))?),
                None => None,
            };
            let (mut ip_cidr, mut normalized) = (None, false);
            if let Some(raw) = args.opt_str("ip_cidr")? {
                match normalize_entry(&raw) {
                    Ok((v, n)) => (ip_cidr, normalized) = (Some(v), n),
                    Err(m) if domain.is_none() => {
                        domain = Some(normalize_domain(&raw).map_err(|_| invalid("ip_cidr", m))?)
                    }
                    Err(m) => return Err(invalid("ip_cidr", m)),
                }
            }
            let port = args.opt_i64("port", 0, 65_535)?.map(|p| p as i32);
            if ip_cidr.is_none() && domain.is_none() && port.is_none() {
                return Err(invalid("ip_cidr", "give ip_cidr, domain or port"));
            }
            let direction = args.opt_str("direction")?.unwrap_or_else(|| "any".into());
            if netmonitor_alerts::Direction::parse(&direction).is_none() {
                return Err(invalid("direction", "one of any, source, destination"));
            }
            if let Some(net) = ip_cidr.as_deref().and_then(|v| v.parse::<IpNet>().ok()) {
                let v4 = matches!(net, IpNet::V4(_));
                if ctx.whitelist.needs_admin(v4, net.prefix_len()) && t.identity().scope < Scope::Admin {
                    return Err(ToolError::Forbidden(format!(
                        "whitelisting {net} hides /{} of the address space; only an admin token may add networks broader than /{}",
                        net.prefix_len(),
                        if v4 { ctx.whitelist.min_prefix_v4 } else { ctx.whitelist.min_prefix_v6 }
                    )));
                }
            }
            if ip_cidr.is_none() && domain.is_none() && t.identity().scope < Scope::Admin {
                return Err(ToolError::Forbidden(
                    "a port-only entry hides that port's alerts from every host; only an admin token may add one".into(),
                ));
            }
            let description = args.opt_str("description")?;
            let sensor = args.opt_str("sensor")?;
            let new = q::NewWhitelist {
                ip_cidr: ip_cidr.as_deref(),
                domain: domain.as_deref(),
                port,
                direction: &direction,
                sensor: sensor.as_deref(),
                description: description.as_deref(),
            };
            let mut conn = db(&ctx).await?;
            let (entry, created) = q::add_whitelist(&mut conn, &new).await.map_err(db_err)?;
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
            description: "Lists whitelist entries, newest first; with `ip`, only the address entries covering that address (test_alert_suppression answers for a whole alert).",
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
            description: "Deletes a whitelist entry by id (from get_whitelist_entries) or every entry whose address/network or domain is exactly the value given; its alerts are raised again from now on and stored ones listed again.",
            input: input(
                vec![
                    ("id", int("Entry id", 1, i64::MAX, None)),
                    ("ip_cidr", string_len("The entry's address, CIDR network or domain", 2, 253)),
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
                    let value = match normalize_entry(&v) {
                        Ok((value, _)) => value,
                        Err(m) => normalize_domain(&v).map_err(|_| invalid("ip_cidr", m))?,
                    };
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
        assert_eq!(
            normalize_domain("Backup.Example.COM."),
            Ok("backup.example.com".into())
        );
        assert!(normalize_domain("300.1.1.1").is_err());
        assert!(normalize_domain("localhost").is_err());
        assert!(normalize_entry("10.0.0.1; DROP TABLE whitelist").is_err());
    }
}
