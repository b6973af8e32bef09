//! TLS tools over `tls_sessions`, `certificates` and `ja3_blocklist`: session metadata with
//! the server certificate, fingerprint and version statistics, JA3 look-ups, and adding a JA3
//! to the blocklist (stored, and pushed to the running sensor so it alerts at once).

use crate::args::{invalid, next_cursor, Args};
use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries::{self as q, TlsFilter};
use serde_json::{json, Value};

/// Length of a JA3 MD5 in hex.
const JA3_HEX_LEN: usize = 32;
/// Longest JA4 accepted (`t13d1516h2_8daaf6152771_02713d6af862` is 36).
const MAX_JA4_LEN: u64 = 64;
/// Longest blocklist reason stored.
const MAX_REASON_LEN: u64 = 500;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_tls_metadata(ctx),
        get_tls_stats(ctx),
        check_ja3_fingerprint(ctx),
        add_ja3_blacklist(ctx),
    ]
}

/// A JA3 MD5 argument, lowercased; errors name the field.
pub(crate) fn ja3_arg(args: &Args, field: &str) -> Result<Option<String>, ToolError> {
    match args.opt_str(field)? {
        None => Ok(None),
        Some(s) => {
            let h = s.to_ascii_lowercase();
            if h.len() == JA3_HEX_LEN && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Some(h))
            } else {
                Err(invalid(field, "must be a JA3 MD5: 32 hexadecimal digits"))
            }
        }
    }
}

fn session_schema() -> Value {
    output(vec![
        ("id", count("Session row id")),
        ("ts", string("Capture time (RFC 3339)")),
        ("flow_id", count("Flow id (for export_flow_pcap)")),
        ("src_ip", string("Client address")),
        ("src_port", count("Client port")),
        ("dest_ip", string("Server address")),
        ("dest_port", count("Server port")),
        ("transport", string("tcp or quic")),
        ("sni", opt_string("Server name the client asked for")),
        (
            "version",
            opt_string("Negotiated (or offered) version, Suricata's names"),
        ),
        ("ja3", opt_string("Client JA3 MD5")),
        ("ja3s", opt_string("Server JA3S MD5")),
        ("ja4", opt_string("Client JA4")),
        ("alpn", array("ALPN protocols offered", string("Protocol"))),
        (
            "cipher_selected",
            opt_int("Cipher suite chosen by the server"),
        ),
        (
            "cert_fingerprint",
            opt_string("SHA-1 of the leaf certificate"),
        ),
        ("cert_subject", opt_string("Leaf certificate subject")),
        ("cert_issuer", opt_string("Leaf certificate issuer")),
        (
            "cert_serial",
            opt_string("Serial, uppercase hex joined by ':'"),
        ),
        ("cert_not_before", opt_string("Validity start (RFC 3339)")),
        ("cert_not_after", opt_string("Validity end (RFC 3339)")),
        (
            "cert_sans",
            json!({"type": ["array", "null"], "items": {"type": "string"}, "description": "Subject alternative names"}),
        ),
        (
            "cert_self_signed",
            json!({"type": ["boolean", "null"], "description": "Self-signed leaf"}),
        ),
        (
            "ja3_blocklist_reason",
            opt_string("Why the JA3 is blocklisted (null: not listed)"),
        ),
    ])
}

fn get_tls_metadata(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        ("ip", ip("Client or server address")),
        (
            "sni",
            string_len("Case-insensitive substring of the server name", 1, 253),
        ),
        ("ja3", string_len("Exact client JA3 MD5", 32, 32)),
        ("ja4", string_len("Exact client JA4", 10, MAX_JA4_LEN)),
        ("limit", limit(500, 50)),
        ("cursor", cursor()),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_tls_metadata",
            title: "TLS metadata",
            description: "TLS and QUIC handshakes seen, newest first, over the last `hours` (default 24) or a since/until window: client/server, SNI, version, JA3/JA3S/JA4, ALPN, chosen cipher, and the server's leaf certificate (subject, issuer, serial, validity, SANs, self-signed), with the JA3 blocklist reason when listed. Filters: ip, sni substring, ja3, ja4. Page with `cursor` (the previous answer's next_cursor).",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("returned", count("Sessions in this answer")),
                ("sessions", array("Sessions, newest first", session_schema())),
                ("next_cursor", next_cursor_out()),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let window = args.window(24)?;
            let f = TlsFilter {
                window,
                ip: args.opt_ip("ip")?.map(|i| i.to_string()),
                sni: args.opt_str("sni")?,
                ja3: ja3_arg(&args, "ja3")?,
                ja4: args.opt_str("ja4")?,
            };
            let limit = args.i64_or("limit", 50, 1, 500)?;
            let mut conn = db(&ctx).await?;
            let rows = q::tls_sessions(&mut conn, &f, args.opt_cursor()?, limit)
                .await
                .map_err(db_err)?;
            let next = next_cursor(rows.len(), limit, rows.last().map(|r| (r.ts, r.id)));
            Ok(json!({"window": window_json(&window), "returned": rows.len(), "sessions": json(&rows)?,
                      "next_cursor": next}))
        },
    )
}

fn get_tls_stats(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.push(("limit", limit(50, 10)));
    tool(
        ctx,
        Spec {
            name: "get_tls_stats",
            title: "TLS statistics",
            description: "TLS overview over the last `hours` (default 24) or a since/until window (from the database), plus the live counters since the sensor started (from the TLS actor): sessions, clients, servers, sessions without SNI, QUIC share, distinct JA3/JA4, sessions with a blocklisted JA3, certificates seen (self-signed, expired now), and the most frequent versions, JA3, JA3S, JA4 and server names.",
            input: input(props, &[]),
            output: output(vec![
                ("window", window_out()),
                ("totals", output(vec![
                    ("sessions", count("Handshakes")),
                    ("clients", count("Distinct clients")),
                    ("servers", count("Distinct servers")),
                    ("addresses_estimated", boolean("Whether clients and servers are HyperLogLog estimates (standard error 0.8%), as they are past 1,280 distinct addresses; exact otherwise", None)),
                    ("without_sni", count("Handshakes without SNI")),
                    ("quic", count("QUIC handshakes")),
                    ("distinct_ja3", count("Distinct JA3")),
                    ("distinct_ja4", count("Distinct JA4")),
                    ("blocklisted_ja3_sessions", count("Handshakes whose JA3 is blocklisted")),
                    ("certificates", count("Distinct leaf certificates")),
                    ("self_signed_certificates", count("Of which self-signed")),
                    ("expired_certificates", count("Of which expired now")),
                ])),
                ("versions", array("By version", name_count())),
                ("top_ja3", array("Most frequent JA3", name_count())),
                ("top_ja3s", array("Most frequent JA3S", name_count())),
                ("top_ja4", array("Most frequent JA4", name_count())),
                ("top_sni", array("Most frequent server names", name_count())),
                ("live", opt_object("Since the sensor started, from the TLS actor's live state: handshakes, QUIC, without SNI, self-signed, by version, top JA3/JA4/SNI, alerts by kind, blocklist size (null when the actor does not answer)")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let window = args.window(24)?;
            let limit = args.i64_or("limit", 10, 1, 50)?;
            let live = match ctx
                .engine
                .tls
                .send(netmonitor_tls::actor::GetTlsLive(limit as usize))
                .await
            {
                Ok((stats, blocklist)) => {
                    let mut v = json(&stats)?;
                    v["ja3_blocklist_size"] = json!(blocklist);
                    v
                }
                Err(_) => Value::Null,
            };
            let mut conn = db(&ctx).await?;
            let stats = netmonitor_store::summaries::tls_stats(&mut conn, window, limit)
                .await
                .map_err(db_err)?;
            Ok(json!({
                "window": window_json(&window),
                "totals": json(&stats.totals)?,
                "versions": json(&stats.versions)?,
                "top_ja3": json(&stats.ja3)?,
                "top_ja3s": json(&stats.ja3s)?,
                "top_ja4": json(&stats.ja4)?,
                "top_sni": json(&stats.sni)?,
                "live": live,
            }))
        },
    )
}

fn check_ja3_fingerprint(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "check_ja3_fingerprint",
            title: "Check JA3 fingerprint",
            description: "Looks up a client JA3 MD5: whether it is on the blocklist (reason, source, when added) and where it was seen in stored TLS sessions (count, clients, first/last time, the JA3 string, server names and JA4s of those sessions).",
            input: input(vec![("ja3", string_len("JA3 MD5, 32 hexadecimal digits", 32, 32))], &["ja3"]),
            output: output(vec![
                ("ja3", string("The hash, lowercase")),
                ("blocklisted", boolean("On the blocklist", None)),
                ("blocklist_entry", opt_object("The entry: reason, source, added_at")),
                ("sightings", output(vec![
                    ("sessions", count("Sessions that presented it")),
                    ("clients", count("Distinct clients")),
                    ("first_seen", opt_string("First session (RFC 3339)")),
                    ("last_seen", opt_string("Last session (RFC 3339)")),
                    ("ja3_string", opt_string("The JA3 string behind the hash")),
                    ("client_ips", array("Up to 20 clients", string("Address"))),
                    ("snis", array("Up to 20 server names", string("Name"))),
                    ("ja4s", array("Up to 20 JA4 of the same sessions", string("JA4"))),
                ])),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ja3 = ja3_arg(&args, "ja3")?.ok_or_else(|| invalid("ja3", "is required"))?;
            let mut conn = db(&ctx).await?;
            let entry = q::ja3_block(&mut conn, &ja3).await.map_err(db_err)?;
            let seen = q::ja3_sightings(&mut conn, &ja3).await.map_err(db_err)?;
            Ok(json!({
                "ja3": ja3,
                "blocklisted": entry.is_some(),
                "blocklist_entry": entry.as_ref().map(json).transpose()?,
                "sightings": json(&seen)?,
            }))
        },
    )
}

fn add_ja3_blacklist(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "add_ja3_blacklist",
            title: "Blocklist a JA3",
            description: "Adds a client JA3 MD5 to the blocklist with a reason: stored in ja3_blocklist (updating the reason if already listed) and pushed to the TLS actor, which then raises a malicious_ja3 alert for every new handshake with it. Says whether the live sensor took it.",
            input: input(
                vec![
                    ("ja3", string_len("JA3 MD5, 32 hexadecimal digits", 32, 32)),
                    ("reason", string_len("Why it is malicious (malware family, report)", 1, MAX_REASON_LEN)),
                    ("source", string_len("Where the indicator comes from (default: mcp)", 1, 100)),
                ],
                &["ja3", "reason"],
            ),
            output: output(vec![
                ("ja3", string("The hash, lowercase")),
                ("reason", string("Stored reason")),
                ("source", string("Stored source")),
                ("created", boolean("False when it was listed already (reason updated)", None)),
                ("previous_reason", opt_string("Reason before this call")),
                ("live_sensor", output(vec![
                    ("applied", boolean("The running sensor now blocklists it", None)),
                    ("error", opt_string("Why not, when not")),
                ])),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, tctx, args| async move {
            let ja3 = ja3_arg(&args, "ja3")?.ok_or_else(|| invalid("ja3", "is required"))?;
            let reason = args.req_str("reason")?;
            let source = args
                .opt_str("source")?
                .unwrap_or_else(|| format!("mcp:{}", tctx.identity().token_name()));
            let mut conn = db(&ctx).await?;
            let (row, previous) = q::upsert_ja3_block(&mut conn, &ja3, &reason, &source)
                .await
                .map_err(db_err)?;
            let live = ctx
                .engine
                .tls
                .send(netmonitor_tls::actor::AddJa3 {
                    md5: ja3.clone(),
                    reason: reason.clone(),
                })
                .await
                .map_err(|e| format!("TLS actor: {e}"))
                .and_then(|r| r);
            Ok(json!({
                "ja3": row.ja3,
                "reason": row.reason,
                "source": row.source,
                "created": previous.is_none(),
                "previous_reason": previous.map(|p| p.reason),
                "live_sensor": {"applied": live.is_ok(), "error": live.err()},
            }))
        },
    )
}
