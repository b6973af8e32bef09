//! Live engine tools: sensor status (sources, packet path, application counters, actors and
//! the bus), memory (process RSS, ring buffer, flow table, inventory) and the packet ring
//! buffer summary. They ask the capture actor, the TLS actor, the inventory actor and the bus;
//! nothing is read from the database.

use crate::procfs;
use crate::schema::*;
use crate::support::*;
use netmonitor_common::Timestamp;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_sensor::inventory::{MAX_EDGES, MAX_HOSTS, MAX_RECENT_EVENTS};
use netmonitor_sensor::service::STATUS_MAX_AGE;
use serde_json::{json, Value};

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_sensor_status(ctx),
        get_memory_status(ctx),
        get_packet_buffer_summary(ctx),
    ]
}

/// A capture timestamp as RFC 3339 (null when absent or zero).
pub(crate) fn ts_json(t: Option<Timestamp>) -> Value {
    match t {
        Some(t) if t.0 != 0 => chrono::DateTime::from_timestamp_micros(t.0)
            .map(|d| json!(d.to_rfc3339()))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn get_sensor_status(ctx: &Ctx) -> ToolDef {
    let mut def = tool(
        ctx,
        Spec {
            name: "get_sensor_status",
            title: "Sensor status",
            description: "Live health of the sensor: whether the pipeline is running (and whether capture is paused), uptime, per capture source (interface or file) its state and packet/byte/drop counters, the packet path (decoded packets, decode errors, TCP/UDP counts, flows, reassembly, defragmentation, ring buffer, packets and bits per second, dissector panics contained), application-layer counters (events by type, TLS versions, Kerberos messages, malformed payloads), the JA3 blocklist size, the alert stage's counts (raised by kind and severity, suppressed), and per subscriber of the event bus its policy, queue depth, batches and drops.",
            input: input(vec![], &[]),
            output: output(vec![
                ("running", boolean("Whether the pipeline thread answered", None)),
                ("service_uptime_seconds", count("Seconds since the service started")),
                ("sensor_uptime_seconds", opt_int("Seconds since capture started")),
                ("sources", array("Capture sources", any_object("Source: name, kind, state, counters"))),
                ("pipeline", opt_object("Packet path statistics")),
                ("application", opt_object("Application-layer counters")),
                ("paused", boolean("Capture paused by pause_capture", None)),
                ("ja3_blocklist_size", opt_int("JA3 hashes on the live blocklist")),
                ("bus", array("Event bus subscribers", any_object("name, policy, queue_depth, batches, dropped_batches, dropped_events"))),
                ("alerts", opt_object("The alert stage: alerts raised by kind and severity, suppressed by whitelist entry or service provider, as duplicates or because their kind is off")),
                ("behaviour", opt_object("The behaviour detections: events judged, alerts by kind, repeats held back, entries tracked and evicted")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let uptime = ctx.started.elapsed().as_secs();
            let ja3 = ctx
                .engine
                .tls
                .send(netmonitor_tls::actor::GetTlsLive(0))
                .await
                .ok()
                .map(|(_, n)| n);
            let bus = json(&ctx.engine.bus.stats())?;
            let alerts = match ctx.engine.alert_stage.send(netmonitor_alerts::GetAlertStats).await {
                Ok(a) => json(&a)?,
                Err(_) => Value::Null,
            };
            let behaviour = match ctx
                .engine
                .behaviour
                .send(netmonitor_behaviour::actor::GetBehaviourStats)
                .await
            {
                Ok(b) => json(&b)?,
                Err(_) => Value::Null,
            };
            match sensor_status(&ctx).await {
                Some(s) => Ok(json_object([
                    ("running", Value::Bool(true)),
                    ("service_uptime_seconds", uptime.into()),
                    ("sensor_uptime_seconds", s.uptime_seconds.into()),
                    ("sources", json(&s.sources)?),
                    ("pipeline", json(&s.pipeline)?),
                    ("application", json(&s.application)?),
                    ("paused", s.paused.into()),
                    ("ja3_blocklist_size", json(&ja3)?),
                    ("bus", bus),
                    ("alerts", alerts),
                    ("behaviour", behaviour),
                ])),
                None => Ok(json!({
                    "running": false,
                    "service_uptime_seconds": uptime,
                    "sensor_uptime_seconds": null,
                    "sources": [],
                    "pipeline": null,
                    "application": null,
                    "paused": false,
                    "ja3_blocklist_size": ja3,
                    "bus": bus,
                    "alerts": alerts,
                    "behaviour": behaviour,
                })),
            }
        },
    );
    // the status snapshot itself is refreshed at this period, so polling clients share it
    def.reuse_for = Some(STATUS_MAX_AGE);
    def
}

fn get_memory_status(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_memory_status",
            title: "Memory status",
            description: "Memory use of the running service: process resident size, peak and virtual size and thread count (from /proc), the packet ring buffer (bytes held, capacity, packets, overwritten), the flow table (active, created, evicted) and the live inventory (hosts and edges held, with their caps).",
            input: input(vec![], &[]),
            output: output(vec![
                ("process", opt_object("rss_bytes, peak_rss_bytes, virtual_bytes, threads; null where /proc is unavailable")),
                ("ring_buffer", opt_object("Packet ring buffer; null when the sensor is stopped")),
                ("flows", opt_object("Flow table; null when the sensor is stopped")),
                ("inventory", output(vec![
                    ("hosts", count("Hosts held")),
                    ("edges", count("Host-to-host edges held")),
                    ("max_hosts", count("Cap on hosts")),
                    ("max_edges", count("Cap on edges")),
                    ("max_recent_events", count("Cap on recent events kept")),
                ])),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let process = procfs::read_self();
            let status = sensor_status(&ctx).await;
            let inv = inventory(&ctx, |inv| {
                let map = inv.map(0);
                json!({
                    "hosts": inv.len(),
                    "edges": map.get("edges_total").cloned().unwrap_or(json!(0)),
                })
            })
            .await?;
            let (ring, flows) = match &status {
                Some(s) => (
                    json!({
                        "packets": s.pipeline.ring.packets,
                        "bytes": s.pipeline.ring.bytes,
                        "capacity_bytes": s.pipeline.ring.capacity_bytes,
                        "overwritten": s.pipeline.ring.overwritten,
                        "stored": s.pipeline.ring.stored,
                    }),
                    json(&s.pipeline.flows)?,
                ),
                None => (Value::Null, Value::Null),
            };
            Ok(json!({
                "process": process.as_ref().map(json).transpose()?,
                "ring_buffer": ring,
                "flows": flows,
                "inventory": {
                    "hosts": inv.get("hosts").cloned().unwrap_or(json!(0)),
                    "edges": inv.get("edges").cloned().unwrap_or(json!(0)),
                    "max_hosts": MAX_HOSTS,
                    "max_edges": MAX_EDGES,
                    "max_recent_events": MAX_RECENT_EVENTS,
                },
            }))
        },
    )
}

fn get_packet_buffer_summary(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_packet_buffer_summary",
            title: "Packet buffer summary",
            description: "What the packet ring buffer holds for forensic export: packets and bytes held, capacity and fill ratio, the capture-time range of the oldest and newest packet (use it as the since/until of export_flow_pcap), packets stored since start and overwritten to make room, and the active flows.",
            input: input(vec![], &[]),
            output: output(vec![
                ("packets", count("Packets held")),
                ("bytes", count("Packet bytes held")),
                ("capacity_bytes", count("Ring size (0: ring disabled)")),
                ("fill_ratio", number("bytes / capacity_bytes (0 when disabled)")),
                ("oldest", opt_string("Capture time of the oldest packet held (RFC 3339)")),
                ("newest", opt_string("Capture time of the newest packet held (RFC 3339)")),
                ("stored", count("Packets stored since start")),
                ("overwritten", count("Packets overwritten to make room")),
                ("active_flows", count("Flows currently tracked")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let s = sensor_status(&ctx)
                .await
                .ok_or_else(|| ToolError::Unavailable("the sensor pipeline is not running".into()))?;
            let r = s.pipeline.ring;
            let fill = if r.capacity_bytes == 0 {
                0.0
            } else {
                r.bytes as f64 / r.capacity_bytes as f64
            };
            Ok(json!({
                "packets": r.packets,
                "bytes": r.bytes,
                "capacity_bytes": r.capacity_bytes,
                "fill_ratio": fill,
                "oldest": ts_json(r.oldest),
                "newest": ts_json(r.newest),
                "stored": r.stored,
                "overwritten": r.overwritten,
                "active_flows": s.pipeline.flows.active,
            }))
        },
    )
}
