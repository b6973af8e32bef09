//! Threat-intelligence tools: what the feeds say of an indicator (live matcher and stored
//! details), what the sensor saw of it, feed refreshes with progress, feed statistics and
//! management, the intel configuration and which feed-match alerts are on.

use crate::args::{invalid, Args};
use crate::schema::*;
use crate::support::*;
use crate::ToolContext;
use chrono::{Duration, Utc};
use netmonitor_intel::actor::{guess_kind, CheckValue, GetIntelLive, LiveHit};
use netmonitor_intel::config::FeedConfig;
use netmonitor_intel::detect::ALERT_KINDS;
use netmonitor_intel::feeds::{FeedChange, ListFeeds, ManageFeed, SyncFeeds, SyncOutcome};
use netmonitor_intel::{normalize, FeedFormat, IndicatorKind};
use netmonitor_mcp::{Scope, ToolAnnotations, ToolCtx, ToolDef, ToolError};
use netmonitor_store::intel as store;
use serde_json::{json, Value};

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        check_indicator(ctx),
        lookup_threat_intel(ctx),
        get_threat_context(ctx),
        update_threat_feeds(ctx),
        sync_threat_feeds(ctx),
        get_threat_feed_stats(ctx),
        get_threat_config(ctx),
        enable_threat_detection(ctx),
        manage_threat_feed(ctx),
    ]
}

fn off() -> ToolError {
    ToolError::Unavailable("threat-feed matching is off (intel.enabled = false)".into())
}

fn kind_names() -> Vec<&'static str> {
    IndicatorKind::ALL.iter().map(|k| k.name()).collect()
}

/// The indicator and its kind from `indicator` and the optional `type`.
fn indicator_args(args: &Args) -> Result<(IndicatorKind, String), ToolError> {
    let raw = args.req_str("indicator")?;
    let kind = match args.opt_str("type")? {
        Some(t) => IndicatorKind::from_name(&t).ok_or_else(|| {
            invalid(
                "type",
                format!("must be one of {}", kind_names().join(", ")),
            )
        })?,
        None => guess_kind(&raw).ok_or_else(|| {
            invalid(
                "indicator",
                "is not an address, block, domain, URL, fingerprint or hash; give its type",
            )
        })?,
    };
    let value = normalize(kind, &raw).map_err(|e| invalid("indicator", e.to_string()))?;
    Ok((kind, value))
}

fn indicator_input() -> Value {
    input(
        vec![
            (
                "indicator",
                string_len(
                    "IP, CIDR, domain, URL, JA3/JA3S (MD5), JA4, certificate SHA-1/SHA-256 or file hash",
                    1,
                    2048,
                ),
            ),
            (
                "type",
                enumeration(
                    "Its kind, when the shape is ambiguous (a 32-hex MD5 is taken as JA3)",
                    &kind_names(),
                ),
            ),
        ],
        &["indicator"],
    )
}

fn match_schema() -> Value {
    output(vec![
        ("feed", string("Feed")),
        (
            "indicator",
            string("The listed entry that covers it (a block, a parent domain)"),
        ),
        ("kind", string("Kind of the listed entry")),
        ("confidence", count("0-100")),
        ("description", opt_string("Why it is listed")),
        ("valid_until", opt_string("Expiry")),
        (
            "expired",
            boolean("Expired: kept but no longer matched", None),
        ),
        (
            "first_seen",
            opt_string("First listed by the feed (stored copy)"),
        ),
        ("last_seen", opt_string("Last listed by the feed")),
        ("tags", array("Labels from the feed", string("Tag"))),
    ])
}

/// The live matcher's hits, each with what the store keeps of it (first/last seen, tags).
async fn matches_for(
    ctx: &ToolContext,
    kind: IndicatorKind,
    value: &str,
) -> Result<Vec<Value>, ToolError> {
    let intel = ctx.engine.intel.as_ref().ok_or_else(off)?;
    let hits: Vec<LiveHit> = intel
        .send(CheckValue {
            value: value.to_owned(),
            kind: Some(kind),
        })
        .await
        .map_err(|e| ToolError::Unavailable(format!("intel actor: {e}")))?
        .map_err(|e| invalid("indicator", e))?;
    let wanted: Vec<String> = hits.iter().map(|h| h.indicator.clone()).collect();
    let stored = if wanted.is_empty() {
        Vec::new()
    } else {
        match db(ctx).await {
            Ok(mut conn) => store::indicators_with_values(&mut conn, &wanted)
                .await
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    };
    Ok(hits
        .into_iter()
        .map(|h| {
            let row = stored
                .iter()
                .find(|s| s.feed == h.feed && s.value == h.indicator && s.kind == h.kind);
            json!({
                "feed": h.feed,
                "indicator": h.indicator,
                "kind": h.kind,
                "confidence": h.confidence,
                "description": h.description,
                "valid_until": h.valid_until,
                "expired": h.expired,
                "first_seen": row.map(|r| r.first_seen.to_rfc3339()),
                "last_seen": row.map(|r| r.last_seen.to_rfc3339()),
                "tags": row.map(|r| r.tags.clone()).unwrap_or_default(),
            })
        })
        .collect())
}

fn check_indicator(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "check_indicator",
            title: "Check an indicator",
            description: "Says whether the threat feeds list an indicator and how: every feed entry covering it (an address by itself or by its most specific listed block, a name by itself or a parent domain, a URL, fingerprint or hash exactly), with confidence, description, expiry and when the feed first and last listed it. Expired entries are shown, marked, and no longer raise alerts.",
            input: indicator_input(),
            output: output(vec![
                ("indicator", string("The value, normalised")),
                ("type", string("Its kind")),
                ("listed", boolean("A feed lists it (an unexpired entry)", None)),
                ("max_confidence", opt_int("Highest confidence of the unexpired entries")),
                ("matches", array("Feed entries covering it", match_schema())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let (kind, value) = indicator_args(&args)?;
            let matches = matches_for(&ctx, kind, &value).await?;
            let live: Vec<&Value> = matches.iter().filter(|m| m["expired"] == false).collect();
            Ok(json!({
                "indicator": value,
                "type": kind.name(),
                "listed": !live.is_empty(),
                "max_confidence": live.iter().filter_map(|m| m["confidence"].as_u64()).max(),
                "matches": matches,
            }))
        },
    )
}

fn lookup_threat_intel(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "lookup_threat_intel",
            title: "Threat intelligence on an indicator",
            description: "Everything the intelligence sources say of an indicator: the feed entries covering it (as check_indicator), the feeds themselves (format, source, last refresh), for an address its routing scope and owner from the IP-to-ASN table, and a verdict (malicious when an unexpired entry of confidence 80+ lists it, suspicious below, unknown when none).",
            input: indicator_input(),
            output: output(vec![
                ("indicator", string("The value, normalised")),
                ("type", string("Its kind")),
                ("verdict", enumeration("What the feeds amount to", &["malicious", "suspicious", "unknown"])),
                ("matches", array("Feed entries covering it", match_schema())),
                ("feeds", array("The feeds that list it", any_object("Feed: name, format, source, last_success, indicators"))),
                ("scope", opt_string("Routing scope of an address (public, private, ...)")),
                ("owner", opt_object("Owner of an address from the IP-to-ASN table: asn, as_name, country, range")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let (kind, value) = indicator_args(&args)?;
            let matches = matches_for(&ctx, kind, &value).await?;
            let best = matches
                .iter()
                .filter(|m| m["expired"] == false)
                .filter_map(|m| m["confidence"].as_u64())
                .max();
            let verdict = match best {
                Some(c) if c >= 80 => "malicious",
                Some(_) => "suspicious",
                None => "unknown",
            };
            let mut feeds = Vec::new();
            if let Some(f) = &ctx.engine.feeds {
                let all = f.send(ListFeeds).await.unwrap_or_default();
                for s in all {
                    if matches.iter().any(|m| m["feed"] == s.name.as_str()) {
                        feeds.push(json!({
                            "name": s.name, "format": s.format, "source": s.source,
                            "last_success": s.last_success, "indicators": s.indicators,
                        }));
                    }
                }
            }
            let (scope, owner) = match value.parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    let owner = match &ctx.engine.feeds {
                        Some(f) => f
                            .send(netmonitor_intel::feeds::LookupAsn(ip))
                            .await
                            .ok()
                            .flatten(),
                        None => None,
                    };
                    (Some(crate::threats::ip_scope(ip)), owner.map(|o| json(&o)).transpose()?)
                }
                Err(_) => (None, None),
            };
            Ok(json!({
                "indicator": value, "type": kind.name(), "verdict": verdict,
                "matches": matches, "feeds": feeds, "scope": scope, "owner": owner,
            }))
        },
    )
}

fn get_threat_context(ctx: &Ctx) -> ToolDef {
    let mut props = vec![
        (
            "indicator",
            string_len(
                "IP, domain, URL, JA3/JA3S, JA4 or certificate SHA-1",
                1,
                2048,
            ),
        ),
        (
            "type",
            enumeration("Its kind, when the shape is ambiguous", &kind_names()),
        ),
    ];
    props.extend(window_props(24 * 7));
    tool(
        ctx,
        Spec {
            name: "get_threat_context",
            title: "What the sensor saw of an indicator",
            description: "The sensor's own view of an indicator over a window (default 7 days): for an address its flows (bytes, peers, first/last seen); for a name the DNS queries, TLS server names and HTTP hosts at or below it; for a URL the HTTP requests; for a fingerprint or certificate the TLS sessions; for all, the alerts that name it (with the latest ones), plus whether a feed lists it.",
            input: input(props, &["indicator"]),
            output: output(vec![
                ("indicator", string("The value, normalised")),
                ("type", string("Its kind")),
                ("window", window_out()),
                ("listed", boolean("A feed lists it", None)),
                ("matches", array("Feed entries covering it", match_schema())),
                ("traffic", opt_object("Flows of an address: as client and server, bytes, peers, first/last seen")),
                ("sightings", array("Records that mention it, by source", any_object("source (dns, tls, http, alerts), events, clients, first_seen, last_seen, sample_clients"))),
                ("first_seen", opt_string("First time the sensor saw it in the window")),
                ("last_seen", opt_string("Last time")),
                ("recent_alerts", array("Up to 10 latest alerts naming it", alert())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let (kind, value) = indicator_args(&args)?;
            let window = args.window(24 * 7)?;
            let matches = match ctx.engine.intel {
                Some(_) => matches_for(&ctx, kind, &value).await?,
                None => Vec::new(),
            };
            let mut conn = db(&ctx).await?;
            let traffic = match value.parse::<std::net::IpAddr>() {
                Ok(_) => Some(json(
                    &netmonitor_store::queries::ip_traffic(&mut conn, &value, window)
                        .await
                        .map_err(db_err)?,
                )?),
                Err(_) => None,
            };
            let sightings =
                store::sightings(&mut conn, kind.name(), &value, window.since, window.until)
                    .await
                    .map_err(db_err)?;
            let mut firsts: Vec<_> = sightings.iter().filter_map(|s| s.first_seen).collect();
            let mut lasts: Vec<_> = sightings.iter().filter_map(|s| s.last_seen).collect();
            if let Some(t) = &traffic {
                firsts.extend(t["first_seen"].as_str().and_then(crate::args::parse_time));
                lasts.extend(t["last_seen"].as_str().and_then(crate::args::parse_time));
            }
            let is_ip = value.parse::<std::net::IpAddr>().is_ok();
            let filter = netmonitor_store::queries::AlertFilter {
                window,
                ip: is_ip.then(|| value.clone()),
                threat_types: Vec::new(),
                max_severity: None,
                include_acknowledged: true,
                hide_whitelisted: false,
                indicator: (!is_ip).then(|| value.clone()),
            };
            let recent = netmonitor_store::queries::list_alerts(&mut conn, &filter, 10)
                .await
                .map_err(db_err)?;
            let recent: Vec<Value> = recent
                .iter()
                .map(crate::threats::alert_json)
                .collect::<Result<_, _>>()?;
            Ok(json!({
                "indicator": value,
                "type": kind.name(),
                "window": window_json(&window),
                "listed": matches.iter().any(|m| m["expired"] == false),
                "matches": matches,
                "traffic": traffic,
                "sightings": json(&sightings)?,
                "first_seen": firsts.iter().min().map(|t| t.to_rfc3339()),
                "last_seen": lasts.iter().max().map(|t| t.to_rfc3339()),
                "recent_alerts": recent,
            }))
        },
    )
}

fn outcome_schema() -> Value {
    output(vec![
        ("feed", string("Feed")),
        (
            "result",
            enumeration(
                "How it went",
                &["updated", "not_modified", "failed", "busy", "disabled"],
            ),
        ),
        (
            "indicators",
            count("Indicators (or ASN ranges) held after it"),
        ),
        ("stored", count("Added or updated in the database")),
        ("removed", count("Removed (no longer listed, or revoked)")),
        ("records", count("Records read")),
        ("error_lines", count("Lines that failed to parse")),
        ("unsupported", count("Entries the matcher cannot use")),
        (
            "error",
            opt_string("Why it failed (the last good copy stays)"),
        ),
        ("duration_ms", count("Wall time")),
    ])
}

/// Runs a refresh with progress notifications (one per stage reached by any feed).
async fn refresh(
    ctx: &ToolContext,
    tctx: &ToolCtx,
    names: Option<Vec<String>>,
    full: bool,
) -> Result<Vec<SyncOutcome>, ToolError> {
    let feeds = ctx.engine.feeds.as_ref().ok_or_else(off)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let total = match &names {
        Some(n) => n.len(),
        None => feeds.send(ListFeeds).await.map(|l| l.len()).unwrap_or(0),
    };
    let call = feeds.send(SyncFeeds {
        names,
        full,
        progress: Some(tx),
    });
    tokio::pin!(call);
    let mut steps = 0.0;
    let mut done_feeds = 0usize;
    loop {
        tokio::select! {
            r = &mut call => {
                return r
                    .map_err(|e| ToolError::Unavailable(format!("feed actor: {e}")))?
                    .map_err(|e| invalid("feeds", e));
            }
            Some(p) = rx.recv() => {
                steps += 1.0;
                if p.stage == "done" {
                    done_feeds += 1;
                }
                let msg = format!("{}: {} ({} records); {done_feeds}/{total} feeds done", p.feed, p.stage, p.records);
                tctx.progress(steps, None, Some(&msg));
            }
        }
    }
}

fn feed_names(args: &Args) -> Result<Option<Vec<String>>, ToolError> {
    match args.value("feeds") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("feeds", "must be an array of feed names"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid("feeds", "must be an array of feed names")),
    }
}

fn refresh_output() -> Value {
    output(vec![
        ("feeds", array("One result per feed", outcome_schema())),
        ("updated", count("Feeds with new content")),
        (
            "failed",
            count("Feeds that failed (their last good copy stays)"),
        ),
        (
            "indicators",
            count("Indicators held over all feeds after the refresh"),
        ),
    ])
}

fn refresh_result(out: &[SyncOutcome], held: usize) -> Result<Value, ToolError> {
    Ok(json!({
        "feeds": json(&out)?,
        "updated": out.iter().filter(|o| o.result == "updated").count(),
        "failed": out.iter().filter(|o| o.result == "failed").count(),
        "indicators": held,
    }))
}

async fn held(ctx: &ToolContext) -> usize {
    match &ctx.engine.feeds {
        Some(f) => f
            .send(ListFeeds)
            .await
            .map(|l| l.iter().filter(|s| s.enabled).map(|s| s.indicators).sum())
            .unwrap_or(0),
        None => 0,
    }
}

fn feeds_input(full_flag: bool) -> Value {
    let mut props = vec![(
        "feeds",
        array(
            "Feed names (default: every enabled feed)",
            string("Feed name"),
        ),
    )];
    if full_flag {
        props.push((
            "full",
            boolean(
                "Ignore ETags and TAXII cursors and replace each feed's whole set",
                Some(true),
            ),
        ));
    }
    input(props, &[])
}

fn update_threat_feeds(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "update_threat_feeds",
            title: "Refresh threat feeds",
            description: "Refreshes the threat feeds now (all enabled ones, or those named): a conditional download (ETag, If-Modified-Since; a TAXII collection from its last cursor), parsed, stored and swapped into the live matcher without pausing capture. A failed or malformed download keeps the last good copy. Reports progress per stage when the client sends a progressToken; answers one result per feed.",
            input: feeds_input(false),
            output: refresh_output(),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, tctx, args| async move {
            let out = refresh(&ctx, &tctx, feed_names(&args)?, false).await?;
            refresh_result(&out, held(&ctx).await)
        },
    )
}

fn sync_threat_feeds(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "sync_threat_feeds",
            title: "Resynchronise threat feeds",
            description: "Downloads the threat feeds again in full (all enabled ones, or those named), ignoring ETags and TAXII cursors, and replaces what each holds: entries the source no longer lists are removed. Use after a feed's content was reset, or to pick up withdrawals a conditional refresh cannot see. Progress per stage; one result per feed.",
            input: feeds_input(true),
            output: refresh_output(),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, tctx, args| async move {
            let full = args.bool_or("full", true)?;
            let out = refresh(&ctx, &tctx, feed_names(&args)?, full).await?;
            refresh_result(&out, held(&ctx).await)
        },
    )
}

fn get_threat_feed_stats(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_threat_feed_stats",
            title: "Threat feed statistics",
            description: "Per feed: indicators held by kind (and how many have expired), the last refresh tried and the last that worked, the last error with the lines that failed to parse, entries the matcher cannot use, and matches (live since start, and alerts raised in the last `hours`, default 24). Also the matcher's totals.",
            input: input(vec![("hours", int("Window for the alert counts", 1, 24 * 365, Some(24)))], &[]),
            output: output(vec![
                ("feeds", array("One entry per feed", any_object("Feed status with indicators_by_kind, expired, matches_live, alerts, last_match"))),
                ("indicators", count("Indicators held in memory over all feeds")),
                ("matching", any_object("Live counters: events, lookups, matches by feed and kind, alerts, suppressed, below_confidence")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let hours = args.i64_or("hours", 24, 1, 24 * 365)?;
            let feeds = ctx.engine.feeds.as_ref().ok_or_else(off)?;
            let intel = ctx.engine.intel.as_ref().ok_or_else(off)?;
            let list = feeds
                .send(ListFeeds)
                .await
                .map_err(|e| ToolError::Unavailable(format!("feed actor: {e}")))?;
            let live = intel
                .send(GetIntelLive)
                .await
                .map_err(|e| ToolError::Unavailable(format!("intel actor: {e}")))?;
            let (kinds, matches) = match db(&ctx).await {
                Ok(mut conn) => (
                    store::kind_counts(&mut conn).await.unwrap_or_default(),
                    store::feed_matches(&mut conn, Utc::now() - Duration::hours(hours))
                        .await
                        .unwrap_or_default(),
                ),
                Err(_) => (Vec::new(), Vec::new()),
            };
            let mut out = Vec::new();
            for s in &list {
                let mut v = json(s)?;
                let expired: i64 = kinds
                    .iter()
                    .filter(|k| k.feed == s.name)
                    .map(|k| k.expired)
                    .sum();
                let m = matches.iter().find(|m| m.feed == s.name);
                v["expired"] = json!(expired);
                v["matches_live"] = json!(live.stats.matches_by_feed.get(&s.name).copied().unwrap_or(0));
                v["alerts"] = json!(m.map_or(0, |m| m.alerts));
                v["last_match"] = json!(m.and_then(|m| m.last_match).map(|t| t.to_rfc3339()));
                out.push(v);
            }
            Ok(json!({
                "feeds": out,
                "indicators": live.indicators_by_feed.iter().map(|(_, n)| n).sum::<usize>(),
                "matching": json(&live.stats)?,
            }))
        },
    )
}

fn get_threat_config(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_threat_config",
            title: "Threat intelligence configuration",
            description: "How threat intelligence is set up: whether matching is on, download limits, the alert window and minimum confidence in force, every feed's settings (credentials shown only as a user and variable names), which feed-match alert kinds are on, the fields traffic is matched on, and the feed formats understood.",
            input: input(vec![], &[]),
            output: output(vec![
                ("enabled", boolean("Matching is on", None)),
                ("settings", any_object("[intel] settings in force")),
                ("feeds", array("Feeds", any_object("name, source, format, refresh_secs, confidence, enabled, origin, authenticated"))),
                ("detections", array("Feed-match alert kinds", output(vec![
                    ("kind", string("threat_type")),
                    ("enabled", boolean("Raised", None)),
                ]))),
                ("matched_fields", array("Where traffic is matched", string("Field"))),
                ("formats", array("Feed formats understood", string("Format"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let mut settings = ctx.config["intel"].clone();
            let mut feeds = Vec::new();
            if let Some(intel) = &ctx.engine.intel {
                if let Ok(live) = intel.send(GetIntelLive).await {
                    settings["alert_window_secs"] = json!(live.alert_window_secs);
                    settings["min_confidence"] = json!(live.min_confidence);
                }
            }
            if let Some(f) = &ctx.engine.feeds {
                for s in f.send(ListFeeds).await.unwrap_or_default() {
                    feeds.push(json!({
                        "name": s.name, "source": s.source, "format": s.format,
                        "refresh_secs": s.refresh_secs, "confidence": s.confidence,
                        "enabled": s.enabled, "origin": s.origin, "authenticated": s.authenticated,
                    }));
                }
            }
            let disabled = ctx
                .engine
                .alert_stage
                .send(netmonitor_alerts::GetAlertStats)
                .await
                .map(|s| s.disabled_kinds)
                .unwrap_or_default();
            Ok(json!({
                "enabled": ctx.engine.intel.is_some(),
                "settings": settings,
                "feeds": feeds,
                "detections": ALERT_KINDS.iter().map(|k| json!({"kind": k, "enabled": !disabled.iter().any(|d| d == k)})).collect::<Vec<_>>(),
                "matched_fields": ["src_ip", "dest_ip", "dns.rrname", "dns.answers", "tls.sni", "quic.sni",
                    "tls.ja3.hash", "tls.ja3s.hash", "tls.ja4", "tls.fingerprint", "tls.subjectaltname",
                    "http.hostname", "http.url"],
                "formats": FeedFormat::ALL.iter().map(|f| f.name()).collect::<Vec<_>>(),
            }))
        },
    )
}

fn enable_threat_detection(ctx: &Ctx) -> ToolDef {
    let mut kinds: Vec<&str> = ALERT_KINDS.to_vec();
    kinds.push("all");
    tool(
        ctx,
        Spec {
            name: "enable_threat_detection",
            title: "Turn feed-match alerts on or off",
            description: "Turns one kind of feed-match alert (or all of them) on or off in the running sensor, at once and without a restart; the change is stored and applied again at every start (it is the live key detection.<kind>.enabled). Matching and its counters go on while a kind is off; only the alerts stop.",
            input: input(
                vec![
                    ("kind", enumeration("Alert kind, or all", &kinds)),
                    ("enabled", boolean("On or off", None)),
                ],
                &["kind", "enabled"],
            ),
            output: output(vec![
                ("changes", array("One per kind", output(vec![
                    ("kind", string("threat_type")),
                    ("old_value", boolean("Before", None)),
                    ("new_value", boolean("Now", None)),
                ]))),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::Admin,
        },
        |ctx, tctx, args| async move {
            let kind = args.req_str("kind")?;
            let on = args
                .value("enabled")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| invalid("enabled", "must be true or false"))?;
            let kinds: Vec<&str> = if kind == "all" {
                ALERT_KINDS.to_vec()
            } else if let Some(k) = ALERT_KINDS.iter().find(|k| **k == kind) {
                vec![*k]
            } else {
                return Err(invalid("kind", format!("must be one of {} or all", ALERT_KINDS.join(", "))));
            };
            let by = tctx.identity().token_name();
            let mut changes = Vec::new();
            for k in kinds {
                let key = format!("detection.{k}.enabled");
                let c = crate::config::apply_and_record(&ctx, &key, json!(on), &by).await?;
                changes.push(json!({"kind": k, "old_value": c.old, "new_value": c.new}));
            }
            Ok(json!({ "changes": changes }))
        },
    )
}

fn manage_threat_feed(ctx: &Ctx) -> ToolDef {
    let formats: Vec<&str> = FeedFormat::ALL.iter().map(|f| f.name()).collect();
    tool(
        ctx,
        Spec {
            name: "manage_threat_feed",
            title: "Add, change or remove a threat feed",
            description: "Manages the feeds kept in the database (feeds of the configuration file are changed there): `add` or `update` a feed (name, source URL or path, format, refresh interval, confidence, optional basic-auth user and the names of environment variables holding a password or token; secrets are never stored) and fetch it at once; `enable`/`disable` any feed (a disabled feed stops matching at once); `remove` a feed with its indicators. Answers the feed's status.",
            input: input(
                vec![
                    ("action", enumeration("What to do", &["add", "update", "enable", "disable", "remove"])),
                    ("name", string_len("Feed name (letters, digits, '-', '_', '.')", 1, 64)),
                    ("source", string_len("http(s) URL, file:// URL or path; for TAXII the collection URL", 1, 2048)),
                    ("format", enumeration("Content layout", &formats)),
                    ("refresh_secs", int("Seconds between refreshes", 1, 7 * 86_400, Some(3600))),
                    ("confidence", int("Confidence of entries that state none", 0, 100, Some(70))),
                    ("username", string_len("HTTP basic user", 1, 256)),
                    ("password_env", string_len("Environment variable holding the password", 1, 128)),
                    ("token_env", string_len("Environment variable holding a bearer token", 1, 128)),
                ],
                &["action", "name"],
            ),
            output: output(vec![
                ("action", string("What was done")),
                ("name", string("Feed")),
                ("feed", opt_object("Its status after the change (null after remove)")),
            ]),
            annotations: ToolAnnotations { read_only: false, destructive: true, idempotent: true, open_world: true },
            scope: Scope::Admin,
        },
        |ctx, tctx, args| async move {
            let feeds = ctx.engine.feeds.as_ref().ok_or_else(off)?;
            let action = args.req_str("action")?;
            let name = args.req_str("name")?;
            let change = match action.as_str() {
                "add" | "update" => {
                    let source = args.req_str("source")?;
                    let format = args.req_str("format")?;
                    let format = FeedFormat::from_name(&format)
                        .ok_or_else(|| invalid("format", "is not a known format"))?;
                    let mut f = FeedConfig::new(&name, &source, format);
                    f.refresh_secs = args.i64_or("refresh_secs", 3600, 1, 7 * 86_400)? as u64;
                    f.confidence = args.i64_or("confidence", 70, 0, 100)? as u8;
                    f.username = args.opt_str("username")?;
                    f.password_env = args.opt_str("password_env")?;
                    f.token_env = args.opt_str("token_env")?;
                    f.validate().map_err(|e| invalid("name", e))?;
                    FeedChange::Put(f)
                }
                "enable" => FeedChange::Enable(name.clone(), true),
                "disable" => FeedChange::Enable(name.clone(), false),
                "remove" => FeedChange::Remove(name.clone()),
                _ => return Err(invalid("action", "must be add, update, enable, disable or remove")),
            };
            let status = feeds
                .send(ManageFeed {
                    change,
                    by: tctx.identity().token_name(),
                })
                .await
                .map_err(|e| ToolError::Unavailable(format!("feed actor: {e}")))?
                .map_err(|e| invalid("name", e))?;
            Ok(json!({
                "action": action,
                "name": name,
                "feed": status.map(|s| json(&s)).transpose()?,
            }))
        },
    )
}
