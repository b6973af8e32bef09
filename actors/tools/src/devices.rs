//! Device tools: the device inventory (local devices keyed by MAC or address, kept across
//! restarts by the device actor), the live inventory of hosts, and per-address traffic history
//! from the `flows` table.

use crate::schema::*;
use crate::support::*;
use crate::threats::ip_scope;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries::{self as q, AlertFilter};
use serde_json::{json, Value};
use std::net::IpAddr;

/// Sources a host record can come from (the inventory's `sources`).
pub(crate) const HOST_SOURCES: [&str; 6] = ["flow", "dhcp", "dns", "tls", "krb5", "alert"];

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_devices(ctx),
        get_device_by_ip(ctx),
        get_top_talkers(ctx),
        get_device_traffic_stats(ctx),
    ]
}

/// Runs an inventory search (`q` over IP, MAC and names, case-insensitive; `source`).
pub(crate) async fn search_hosts(
    ctx: &Ctx,
    query: Option<String>,
    source: Option<String>,
    limit: usize,
) -> Result<Value, ToolError> {
    inventory(ctx, move |inv| {
        let hosts = inv.list(query.as_deref(), source.as_deref(), limit);
        json!({"total_hosts": inv.len(), "hosts": hosts})
    })
    .await
}

/// A device as the tools show it: the record, its newest address as `ip`, that address's
/// scope, and its times in EVE form.
pub(crate) fn device_json(d: &netmonitor_devices::Device) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or_default();
    let ip = d.ips.iter().next().cloned();
    if let Some(m) = v.as_object_mut() {
        let time = |us: i64| netmonitor_common::Timestamp(us).to_eve();
        m.insert("first_seen".into(), json!(time(d.first_seen_us)));
        m.insert("last_seen".into(), json!(time(d.last_seen_us)));
        m.insert(
            "address_scope".into(),
            json!(ip
                .as_deref()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .map(ip_scope)),
        );
        m.insert("ip".into(), json!(ip));
    }
    v
}

fn get_devices(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_devices",
            title: "Network devices",
            description: "Lists devices of the device inventory (local hosts, kept across restarts), most recently seen first: id (MAC where DHCP named one, else address), MAC and its vendor, addresses, host names with where each was learnt (dhcp, dns, mdns, ptr), DHCP fingerprint and vendor class, TLS client fingerprints, services it answers, protocols, traffic, first/last seen, template with confidence and hints, criticality, learning baseline. `q` searches id, MAC, vendor, addresses and names case-insensitively; `vendor`, `template`, `category` and `since` narrow further.",
            input: input(
                vec![
                    ("q", string_len("Case-insensitive substring of id, IP, MAC, vendor or host name", 1, 256)),
                    ("vendor", string_len("Case-insensitive substring of the MAC vendor", 1, 256)),
                    ("template", string_len("Only devices assigned this template id", 1, 64)),
                    ("category", enumeration("Only devices whose template is of this category", &["iot", "server", "endpoint", "network", "other", "unclassified"])),
                    ("since", string("Only devices seen at or after this time (RFC 3339)")),
                    ("limit", limit(1000, 100)),
                ],
                &[],
            ),
            output: output(vec![
                ("total_devices", count("Devices in the inventory")),
                ("returned", count("Devices in this answer")),
                ("devices", array("Devices, most recently seen first", any_object("Device record"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let query = netmonitor_devices::DeviceQuery {
                q: args.opt_str("q")?,
                vendor: args.opt_str("vendor")?,
                since_us: args.opt_time("since")?.map(|t| t.timestamp_micros()),
                template: args.opt_str("template")?,
                category: args.opt_str("category")?,
                limit: usize::try_from(args.i64_or("limit", 100, 1, 1000)?).unwrap_or(100),
            };
            devices(&ctx, move |book| {
                let found: Vec<Value> = book
                    .search(&query)
                    .into_iter()
                    .map(|d| {
                        let mut v = device_json(d);
                        v["criticality_in_force"] = json!(book.criticality(d));
                        v
                    })
                    .collect();
                json!({"total_devices": book.len(), "returned": found.len(), "devices": found})
            })
            .await
        },
    )
}

fn get_device_by_ip(ctx: &Ctx) -> ToolDef {
    let mut props = vec![("ip", ip("Device address"))];
    props.extend(window_props(24));
    tool(
        ctx,
        Spec {
            name: "get_device_by_ip",
            title: "Device by IP",
            description: "Everything known about one device: its live inventory record (names, MAC, ports, protocols), its flow totals and alert counts from the database over the last `hours` (default 24) or a since/until window, its address scope and whitelist status. Not found when neither the inventory nor the database has seen it.",
            input: input(props, &["ip"]),
            output: output(vec![
                ("ip", string("Address")),
                ("address_scope", string("public, private, loopback, …")),
                ("window", window_out()),
                ("inventory", opt_object("Live inventory record (null when not seen since start)")),
                ("device", opt_object("Device inventory record (null when the address is not a local device)")),
                ("traffic", any_object("Flow totals over the window")),
                ("alerts", output(vec![
                    ("total", count("Alerts where it is source or destination")),
                    ("unacknowledged", count("Of which open")),
                ])),
                ("whitelisted", boolean("Whether a whitelist entry covers it", None)),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let addr = args.req_ip("ip")?;
            let ip = addr.to_string();
            let window = args.window(24)?;
            let host = inventory(&ctx, move |inv| json!({"host": inv.get(addr)})).await?;
            let host = host.get("host").cloned().unwrap_or(Value::Null);
            let device = devices(&ctx, move |book| {
                json!({"device": book.by_ip(addr).map(device_json)})
            })
            .await
            .ok()
            .and_then(|v| v.get("device").cloned())
            .unwrap_or(Value::Null);
            let mut conn = db(&ctx).await?;
            let traffic = q::ip_traffic(&mut conn, &ip, window).await.map_err(db_err)?;
            let all = AlertFilter {
                window,
                ip: Some(ip.clone()),
                threat_types: Vec::new(),
                max_severity: None,
                include_acknowledged: true,
                hide_whitelisted: false,
                indicator: None,
            };
            let total = netmonitor_store::summaries::count_alerts(&mut conn, &all).await.map_err(db_err)?;
            let open = netmonitor_store::summaries::count_alerts(
                &mut conn,
                &AlertFilter {
                    include_acknowledged: false,
                    ..all
                },
            )
            .await
            .map_err(db_err)?;
            let wl = netmonitor_store::suppression::whitelist_matches(&mut conn, &ip).await.map_err(db_err)?;
            let flows = traffic.flows_as_client + traffic.flows_as_server;
            if host.is_null() && device.is_null() && flows == 0 && total == 0 {
                return Err(ToolError::NotFound(format!(
                    "{ip} is not in the live inventory and has no flows or alerts in the window (widen it with hours or since)"
                )));
            }
            Ok(json!({
                "ip": ip,
                "address_scope": ip_scope(addr),
                "window": window_json(&window),
                "inventory": host,
                "device": device,
                "traffic": json(&traffic)?,
                "alerts": {"total": total, "unacknowledged": open},
                "whitelisted": !wl.is_empty(),
            }))
        },
    )
}

fn get_top_talkers(ctx: &Ctx) -> ToolDef {
    let mut props = window_props(24);
    props.extend([
        ("limit", limit(100, 10)),
        (
            "source",
            enumeration(
                "database: flow records over the window (default); live: the inventory's totals since the sensor started",
                &["database", "live"],
            ),
        ),
    ]);
    let talker = output(vec![
        ("ip", string("Address")),
        ("bytes_sent", count("Bytes sent")),
        ("bytes_received", count("Bytes received")),
        ("bytes_total", count("Sent plus received")),
        ("flows_as_client", count("Flows it started")),
        ("flows_as_server", count("Flows it answered")),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_top_talkers",
            title: "Top talkers",
            description: "The addresses that moved the most bytes (sent plus received), from finished flow records over the last `hours` (default 24) or a since/until window, or from the live inventory since the sensor started (source=live).",
            input: input(props, &[]),
            output: output(vec![
                ("source", string("database or live")),
                ("window", json!({"type": ["object", "null"], "description": "Window (null for live)"})),
                ("talkers", array("Largest first", talker)),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let limit = args.i64_or("limit", 10, 1, 100)?;
            if args.opt_str("source")?.as_deref() == Some("live") {
                let n = usize::try_from(limit).unwrap_or(10);
                let v = inventory(&ctx, move |inv| {
                    let list: Vec<Value> = inv
                        .top_talkers(n)
                        .into_iter()
                        .map(|h| {
                            json!({
                                "ip": h.ip,
                                "bytes_sent": h.bytes_sent,
                                "bytes_received": h.bytes_received,
                                "bytes_total": h.bytes_sent.saturating_add(h.bytes_received),
                                "flows_as_client": h.flows_as_client,
                                "flows_as_server": h.flows_as_server,
                            })
                        })
                        .collect();
                    json!({"talkers": list})
                })
                .await?;
                return Ok(json!({
                    "source": "live",
                    "window": null,
                    "talkers": v.get("talkers").cloned().unwrap_or(json!([])),
                }));
            }
            let window = args.window(24)?;
            let mut conn = db(&ctx).await?;
            let rows = netmonitor_store::summaries::top_talkers(&mut conn, window, limit)
                .await
                .map_err(db_err)?;
            Ok(json!({"source": "database", "window": window_json(&window), "talkers": json(&rows)?}))
        },
    )
}

fn get_device_traffic_stats(ctx: &Ctx) -> ToolDef {
    let mut props = vec![("ip", ip("Device address"))];
    props.extend(window_props(24));
    props.push(("limit", limit(100, 10)));
    tool(
        ctx,
        Spec {
            name: "get_device_traffic_stats",
            title: "Device traffic statistics",
            description: "Traffic of one address from finished flow records over the last `hours` (default 24) or a since/until window: flows as client and server, bytes and packets each way, distinct peers, first/last activity, top peers by bytes, server ports used or served, and application protocols.",
            input: input(props, &["ip"]),
            output: output(vec![
                ("ip", string("Address")),
                ("window", window_out()),
                ("totals", output(vec![
                    ("flows_as_client", count("Flows it started")),
                    ("flows_as_server", count("Flows it answered")),
                    ("bytes_sent", count("Bytes sent")),
                    ("bytes_received", count("Bytes received")),
                    ("packets_sent", count("Packets sent")),
                    ("packets_received", count("Packets received")),
                    ("peers", count("Distinct peers")),
                    ("first_seen", opt_string("First flow start (RFC 3339)")),
                    ("last_seen", opt_string("Last flow end (RFC 3339)")),
                ])),
                ("peers", array("Top peers by bytes", output(vec![
                    ("peer", string("Peer address")),
                    ("flows", count("Flows")),
                    ("initiated", count("Flows this address started")),
                    ("bytes", count("Bytes both ways")),
                ]))),
                ("ports", array("Server ports by flows", output(vec![
                    ("port", count("Server port")),
                    ("proto", count("IP protocol number")),
                    ("served", boolean("True when this address answered on it", None)),
                    ("flows", count("Flows")),
                    ("bytes", count("Bytes both ways")),
                    ("app_protos", array("Recognised application protocols", string("Protocol"))),
                ]))),
                ("app_protocols", array("Flows by application protocol", name_count())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = args.req_ip("ip")?.to_string();
            let window = args.window(24)?;
            let limit = args.i64_or("limit", 10, 1, 100)?;
            let mut conn = db(&ctx).await?;
            let flows = q::ip_flow_summary(&mut conn, &ip, window, limit)
                .await
                .map_err(db_err)?;
            Ok(json!({
                "ip": ip,
                "window": window_json(&window),
                "totals": json(&flows.traffic)?,
                "peers": json(&flows.peers)?,
                "ports": json(&flows.ports)?,
                "app_protocols": json(&flows.apps)?,
            }))
        },
    )
}
