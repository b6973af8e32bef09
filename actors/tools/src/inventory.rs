//! The inventory tools and resources of the network MCP service (seed 002), answered from the
//! live inventory the sensor actor keeps: `list_hosts` (case-insensitive search over host
//! name, IP and MAC), `get_host` (optionally with its events), `list_events`, `host_events`
//! and `network_map`; resources `network://hosts`, `network://map`, `network://events` and
//! seed 002's templates `network://hosts{?q,source,limit}`,
//! `network://host/{host_id}{?include_events,events_limit}` and
//! `network://events{?host_id,type,since,limit}`. A host's id is its address; the tools take
//! it as `host_id` (the seed's name) or `ip`, and the earlier templates `network://hosts/{ip}`
//! and `network://events{?ip,type,limit}` still answer.

use crate::args::{invalid, parse_ip, Args};
use crate::devices::{search_hosts, HOST_SOURCES};
use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{
    ResourceContents, ResourceDef, ResourceRequest, ResourceTemplateDef, Scope, ToolAnnotations,
    ToolDef, ToolError,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Default page of hosts.
const DEFAULT_HOSTS: usize = 100;
/// Most hosts one answer carries.
const MAX_HOSTS_ANSWER: usize = 1000;
/// Default page of events.
const DEFAULT_EVENTS: usize = 50;
/// Most events one answer carries.
const MAX_EVENTS_ANSWER: usize = 1000;
/// Default and largest number of edges in the map.
const DEFAULT_EDGES: usize = 200;
const MAX_EDGES_ANSWER: usize = 5000;
/// EVE event types the inventory keeps.
pub(crate) const EVENT_TYPES: [&str; 6] = ["tls", "quic", "krb5", "dns", "dhcp", "alert"];

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        list_hosts(ctx),
        get_host(ctx),
        list_events(ctx),
        host_events(ctx),
        network_map(ctx),
    ]
}

fn event_type_arg(args: &Args, k: &str) -> Result<Option<String>, ToolError> {
    let t = args.opt_str(k)?;
    if let Some(v) = &t {
        if !EVENT_TYPES.contains(&v.as_str()) {
            return Err(invalid(
                k,
                format!("must be one of {}", EVENT_TYPES.join(", ")),
            ));
        }
    }
    Ok(t)
}

async fn events(
    ctx: &Ctx,
    ip: Option<IpAddr>,
    event_type: Option<String>,
    since_us: Option<i64>,
    limit: usize,
) -> Result<Value, ToolError> {
    inventory(
        ctx,
        move |inv| json!({"events": inv.events(ip, event_type.as_deref(), since_us, limit)}),
    )
    .await
}

/// The host a call names: `host_id` (seed 002's name: the host's address) or `ip`.
fn host_id_arg(args: &Args) -> Result<Option<IpAddr>, ToolError> {
    match args.opt_ip("host_id")? {
        Some(ip) => Ok(Some(ip)),
        None => args.opt_ip("ip"),
    }
}

fn req_host_id(args: &Args) -> Result<IpAddr, ToolError> {
    host_id_arg(args)?.ok_or_else(|| invalid("host_id", "is required (the host's IP address)"))
}

/// `since` as capture-time microseconds.
fn since_arg(args: &Args) -> Result<Option<i64>, ToolError> {
    Ok(args.opt_time("since")?.map(|t| t.timestamp_micros()))
}

fn list_hosts(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "list_hosts",
            title: "List hosts",
            description: "Searches the live host inventory: `q` matches host names, IP addresses and MAC addresses case-insensitively (substring); `source` keeps hosts learnt from one kind of event (flow, dhcp, dns, tls, krb5, alert). Most recently seen first.",
            input: input(
                vec![
                    ("q", string_len("Case-insensitive substring of host name, IP or MAC", 1, 256)),
                    ("source", enumeration("Only hosts learnt from this kind of event", &HOST_SOURCES)),
                    ("limit", limit(MAX_HOSTS_ANSWER as i64, DEFAULT_HOSTS as i64)),
                ],
                &[],
            ),
            output: output(vec![
                ("total_hosts", count("Hosts in the inventory")),
                ("returned", count("Hosts in this answer")),
                ("hosts", array("Matching hosts", host())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let limit = args.i64_or("limit", DEFAULT_HOSTS as i64, 1, MAX_HOSTS_ANSWER as i64)?;
            let source = args.opt_str("source")?;
            if let Some(s) = &source {
                if !HOST_SOURCES.contains(&s.as_str()) {
                    return Err(invalid("source", format!("must be one of {}", HOST_SOURCES.join(", "))));
                }
            }
            let r = search_hosts(
                &ctx,
                args.opt_str("q")?,
                source,
                usize::try_from(limit).unwrap_or(DEFAULT_HOSTS),
            )
            .await?;
            let hosts = r.get("hosts").cloned().unwrap_or(json!([]));
            Ok(json!({
                "total_hosts": r.get("total_hosts").cloned().unwrap_or(json!(0)),
                "returned": hosts.as_array().map_or(0, Vec::len),
                "hosts": hosts,
            }))
        },
    )
}

fn get_host(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_host",
            title: "Get host",
            description: "One host of the live inventory by IP address: names, MAC, sources, first/last seen, traffic, open ports, protocols, alert count; with include_events, its most recent events (EVE form).",
            input: input(
                vec![
                    ("host_id", ip("Host id: its IP address (seed 002's name)")),
                    ("ip", ip("The same, by its earlier name")),
                    ("include_events", boolean("Also return its recent events", Some(false))),
                    ("events_limit", int("Most events to return", 1, MAX_EVENTS_ANSWER as i64, Some(DEFAULT_EVENTS as i64))),
                ],
                &[],
            ),
            output: output(vec![
                ("host", host()),
                ("events", array("Recent events, newest first (empty unless include_events)", any_object("EVE event"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = req_host_id(&args)?;
            let with_events = args.bool_or("include_events", false)?;
            let n = usize::try_from(args.i64_or("events_limit", DEFAULT_EVENTS as i64, 1, MAX_EVENTS_ANSWER as i64)?)
                .unwrap_or(DEFAULT_EVENTS);
            host_json(&ctx, ip, with_events, n).await
        },
    )
}

async fn host_json(ctx: &Ctx, ip: IpAddr, with_events: bool, n: usize) -> Result<Value, ToolError> {
    let v = inventory(ctx, move |inv| {
        let events = if with_events {
            inv.events(Some(ip), None, None, n)
        } else {
            Vec::new()
        };
        json!({"host": inv.get(ip), "events": events})
    })
    .await?;
    if v.get("host").is_none_or(Value::is_null) {
        return Err(ToolError::NotFound(format!(
            "{ip} is not in the live inventory (list_hosts searches it)"
        )));
    }
    Ok(v)
}

fn list_events(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "list_events",
            title: "List events",
            description: "The most recent events the sensor produced (EVE form: tls, quic, krb5, dns, dhcp, alert), newest first, optionally only those touching an address and of one type. Kept in memory since the sensor started (bounded); use the database tools for history.",
            input: input(
                vec![
                    ("host_id", ip("Only events where this host (its address) is source or destination")),
                    ("ip", ip("The same, by its earlier name")),
                    ("type", enumeration("Only this event type", &EVENT_TYPES)),
                    ("since", string("Only events at or after this RFC 3339 time (capture time)")),
                    ("limit", limit(MAX_EVENTS_ANSWER as i64, DEFAULT_EVENTS as i64)),
                ],
                &[],
            ),
            output: output(vec![
                ("returned", count("Events in this answer")),
                ("events", array("Events, newest first", any_object("EVE event"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = host_id_arg(&args)?;
            let t = event_type_arg(&args, "type")?;
            let since = since_arg(&args)?;
            let n = usize::try_from(args.i64_or("limit", DEFAULT_EVENTS as i64, 1, MAX_EVENTS_ANSWER as i64)?)
                .unwrap_or(DEFAULT_EVENTS);
            let v = events(&ctx, ip, t, since, n).await?;
            let list = v.get("events").cloned().unwrap_or(json!([]));
            Ok(json!({"returned": list.as_array().map_or(0, Vec::len), "events": list}))
        },
    )
}

fn host_events(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "host_events",
            title: "Host events",
            description: "The most recent events (EVE form) where one host is source or destination, newest first, optionally of one type.",
            input: input(
                vec![
                    ("host_id", ip("Host id: its IP address (seed 002's name)")),
                    ("ip", ip("The same, by its earlier name")),
                    ("type", enumeration("Only this event type", &EVENT_TYPES)),
                    ("since", string("Only events at or after this RFC 3339 time (capture time)")),
                    ("limit", limit(MAX_EVENTS_ANSWER as i64, DEFAULT_EVENTS as i64)),
                ],
                &[],
            ),
            output: output(vec![
                ("ip", string("Host address")),
                ("returned", count("Events in this answer")),
                ("events", array("Events, newest first", any_object("EVE event"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = req_host_id(&args)?;
            let t = event_type_arg(&args, "type")?;
            let since = since_arg(&args)?;
            let n = usize::try_from(args.i64_or("limit", DEFAULT_EVENTS as i64, 1, MAX_EVENTS_ANSWER as i64)?)
                .unwrap_or(DEFAULT_EVENTS);
            let v = events(&ctx, Some(ip), t, since, n).await?;
            let list = v.get("events").cloned().unwrap_or(json!([]));
            Ok(json!({"ip": ip.to_string(), "returned": list.as_array().map_or(0, Vec::len), "events": list}))
        },
    )
}

fn network_map(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "network_map",
            title: "Network map",
            description: "Who talks to whom: the heaviest client→server edges of the live inventory (flows, bytes, server ports) and the hosts they connect (with names and MAC), plus total host and edge counts.",
            input: input(
                vec![("max_edges", int("Most edges to return, heaviest first", 1, MAX_EDGES_ANSWER as i64, Some(DEFAULT_EDGES as i64)))],
                &[],
            ),
            output: map_schema(),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let n = usize::try_from(args.i64_or("max_edges", DEFAULT_EDGES as i64, 1, MAX_EDGES_ANSWER as i64)?)
                .unwrap_or(DEFAULT_EDGES);
            inventory(&ctx, move |inv| inv.map(n)).await
        },
    )
}

fn map_schema() -> Value {
    output(vec![
        (
            "nodes",
            array(
                "Hosts on the edges",
                output(vec![
                    ("id", string("Address")),
                    ("hostnames", array("Names", string("Name"))),
                    ("mac", opt_string("MAC address")),
                ]),
            ),
        ),
        (
            "edges",
            array(
                "Client → server edges, heaviest first",
                output(vec![
                    ("source", string("Client address")),
                    ("target", string("Server address")),
                    ("flows", count("Flows")),
                    ("bytes", count("Bytes both ways")),
                    ("ports", array("Server ports", count("Port"))),
                ]),
            ),
        ),
        ("hosts_total", count("Hosts in the inventory")),
        ("edges_total", count("Edges in the inventory")),
    ])
}

// ---------------------------------------------------------------------------------------------
// Resources

type Handler = netmonitor_mcp::registry::ResourceHandler;

pub(crate) fn json_contents(uri: String, v: &Value) -> Vec<ResourceContents> {
    vec![ResourceContents::json(uri, v)]
}

fn var_usize(
    req: &ResourceRequest,
    k: &str,
    default: usize,
    max: usize,
) -> Result<usize, ToolError> {
    match req.vars.get(k).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| invalid(k, format!("must be an integer between 1 and {max}"))),
    }
}

fn var_str(req: &ResourceRequest, k: &str) -> Option<String> {
    req.vars
        .get(k)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn hosts_handler(ctx: &Ctx) -> Handler {
    let ctx = ctx.clone();
    Arc::new(move |req: ResourceRequest| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let limit = var_usize(&req, "limit", DEFAULT_HOSTS, MAX_HOSTS_ANSWER)?;
            let source = var_str(&req, "source");
            if let Some(s) = &source {
                if !HOST_SOURCES.contains(&s.as_str()) {
                    return Err(invalid(
                        "source",
                        format!("must be one of {}", HOST_SOURCES.join(", ")),
                    ));
                }
            }
            let v = search_hosts(&ctx, var_str(&req, "q"), source, limit).await?;
            Ok(json_contents(req.uri, &v))
        })
    })
}

fn host_handler(ctx: &Ctx) -> Handler {
    let ctx = ctx.clone();
    Arc::new(move |req: ResourceRequest| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let raw = var_str(&req, "host_id")
                .or_else(|| var_str(&req, "ip"))
                .unwrap_or_default();
            let ip = parse_ip(&raw)
                .ok_or_else(|| ToolError::NotFound(format!("{raw:?} is not an IP address")))?;
            let with_events = match var_str(&req, "include_events").as_deref() {
                None | Some("true" | "1") => true,
                Some("false" | "0") => false,
                Some(_) => return Err(invalid("include_events", "must be true or false")),
            };
            let n = var_usize(&req, "events_limit", DEFAULT_EVENTS, MAX_EVENTS_ANSWER)?;
            let v = host_json(&ctx, ip, with_events, n).await?;
            Ok(json_contents(req.uri, &v))
        })
    })
}

fn events_handler(ctx: &Ctx) -> Handler {
    let ctx = ctx.clone();
    Arc::new(move |req: ResourceRequest| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let limit = var_usize(&req, "limit", DEFAULT_EVENTS, MAX_EVENTS_ANSWER)?;
            let ip = match var_str(&req, "host_id").or_else(|| var_str(&req, "ip")) {
                None => None,
                Some(s) => {
                    Some(parse_ip(&s).ok_or_else(|| invalid("host_id", "is not an IP address"))?)
                }
            };
            let since = match var_str(&req, "since") {
                None => None,
                Some(s) => Some(
                    crate::args::parse_time(&s)
                        .ok_or_else(|| invalid("since", "is not an RFC 3339 time"))?
                        .timestamp_micros(),
                ),
            };
            let t = var_str(&req, "type");
            if let Some(v) = &t {
                if !EVENT_TYPES.contains(&v.as_str()) {
                    return Err(invalid(
                        "type",
                        format!("must be one of {}", EVENT_TYPES.join(", ")),
                    ));
                }
            }
            let v = events(&ctx, ip, t, since, limit).await?;
            Ok(json_contents(req.uri, &v))
        })
    })
}

fn map_handler(ctx: &Ctx) -> Handler {
    let ctx = ctx.clone();
    Arc::new(move |req: ResourceRequest| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let v = inventory(&ctx, |inv| inv.map(DEFAULT_EDGES)).await?;
            Ok(json_contents(req.uri, &v))
        })
    })
}

/// The fixed resources.
pub(crate) fn resources(ctx: &Ctx) -> Vec<ResourceDef> {
    let res = |uri: &str, name: &str, title: &str, desc: &str, handler: Handler| ResourceDef {
        uri: uri.to_owned(),
        name: name.to_owned(),
        title: Some(title.to_owned()),
        description: Some(desc.to_owned()),
        mime_type: Some("application/json".to_owned()),
        scope: Scope::ReadOnly,
        handler,
    };
    vec![
        res(
            "network://hosts",
            "hosts",
            "Hosts",
            "The live host inventory (100 most recently seen hosts)",
            hosts_handler(ctx),
        ),
        res(
            "network://map",
            "map",
            "Network map",
            "Heaviest client→server edges and the hosts they connect",
            map_handler(ctx),
        ),
        res(
            "network://events",
            "events",
            "Recent events",
            "The 50 most recent events (EVE form)",
            events_handler(ctx),
        ),
    ]
}

/// The resource templates.
pub(crate) fn templates(ctx: &Ctx) -> Vec<ResourceTemplateDef> {
    let mut host_completions = BTreeMap::new();
    host_completions.insert(
        "source".to_owned(),
        HOST_SOURCES.iter().map(|s| (*s).to_owned()).collect(),
    );
    let mut event_completions = BTreeMap::new();
    event_completions.insert(
        "type".to_owned(),
        EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect(),
    );
    vec![
        ResourceTemplateDef {
            uri_template: "network://hosts{?q,source,limit}".into(),
            name: "hosts_search".into(),
            title: Some("Host search".into()),
            description: Some(
                "Hosts whose name, IP or MAC contains q (case-insensitive), learnt from source, at most limit".into(),
            ),
            mime_type: Some("application/json".into()),
            scope: Scope::ReadOnly,
            completions: host_completions,
            handler: hosts_handler(ctx),
        },
        ResourceTemplateDef {
            uri_template: "network://host/{host_id}{?include_events,events_limit}".into(),
            name: "host".into(),
            title: Some("Host".into()),
            description: Some(
                "One host by id (its IP address), with its recent events unless include_events=false, at most events_limit".into(),
            ),
            mime_type: Some("application/json".into()),
            scope: Scope::ReadOnly,
            completions: BTreeMap::new(),
            handler: host_handler(ctx),
        },
        ResourceTemplateDef {
            uri_template: "network://events{?host_id,type,since,limit}".into(),
            name: "events_search".into(),
            title: Some("Event search".into()),
            description: Some(
                "Recent events touching host_id (an IP address), of type, at or after since (RFC 3339), at most limit".into(),
            ),
            mime_type: Some("application/json".into()),
            scope: Scope::ReadOnly,
            completions: event_completions.clone(),
            handler: events_handler(ctx),
        },
        ResourceTemplateDef {
            uri_template: "network://hosts/{ip}".into(),
            name: "host_by_ip".into(),
            title: Some("Host (earlier name)".into()),
            description: Some("As network://host/{host_id}".into()),
            mime_type: Some("application/json".into()),
            scope: Scope::ReadOnly,
            completions: BTreeMap::new(),
            handler: host_handler(ctx),
        },
        ResourceTemplateDef {
            uri_template: "network://events{?ip,type,limit}".into(),
            name: "events_by_ip".into(),
            title: Some("Event search (earlier name)".into()),
            description: Some("As network://events{?host_id,type,since,limit}".into()),
            mime_type: Some("application/json".into()),
            scope: Scope::ReadOnly,
            completions: event_completions,
            handler: events_handler(ctx),
        },
    ]
}
