//! Sensor commands (the seed's send_sensor_command / get_sensor_command_history) and
//! flush_memory. Each command goes to the actor that owns what it touches — capture for flows,
//! ring exports and pauses, the service for its log filter — and is recorded in
//! `sensor_commands` with who asked, when, how long it took and what came of it.

use crate::args::invalid;
use crate::procfs;
use crate::schema::*;
use crate::support::*;
use crate::ToolContext;
use netmonitor_capture::ExportFilter;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::commands::{self as cmds, NewCommand};
use serde_json::{json, Value};
use std::time::Instant;

/// The commands a sensor takes.
const COMMANDS: [&str; 7] = [
    "flush_flows",
    "export_ring",
    "set_log_level",
    "pause_capture",
    "resume_capture",
    "reload_ja3_blocklist",
    "reload_playbooks",
];

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        send_sensor_command(ctx),
        get_sensor_command_history(ctx),
        flush_memory(ctx),
    ]
}

/// Runs one command; `Err` carries the message recorded as its result.
async fn run(ctx: &ToolContext, command: &str, args: &Value) -> Result<Value, ToolError> {
    match command {
        "flush_flows" => {
            let n = capture(ctx)?
                .flush_flows()
                .await
                .map_err(ToolError::Unavailable)?;
            Ok(json!({"flows_ended": n}))
        }
        "export_ring" => {
            let max = args
                .get("max_packets")
                .and_then(Value::as_u64)
                .map(|n| n.clamp(1, 1_000_000) as usize);
            let filter = ExportFilter {
                max_packets: max,
                ..ExportFilter::default()
            };
            crate::pcap::export_ring(ctx, filter, None).await
        }
        "set_log_level" => {
            let level = args.get("level").cloned().ok_or_else(|| {
                invalid("args.level", "set_log_level needs args.level (e.g. debug)")
            })?;
            let change = ctx
                .settings
                .set("log_level", &level)
                .map_err(|m| invalid("args.level", m))?;
            Ok(json!({"old": change.old, "new": change.new}))
        }
        "pause_capture" | "resume_capture" => {
            let pause = command == "pause_capture";
            let was = capture(ctx)?
                .set_paused(pause)
                .await
                .map_err(ToolError::Unavailable)?;
            Ok(json!({"paused": pause, "was_paused": was}))
        }
        "reload_ja3_blocklist" => {
            let n = crate::load_ja3_blocklist(ctx)
                .await
                .map_err(ToolError::Unavailable)?;
            Ok(json!({"entries_loaded": n}))
        }
        "reload_playbooks" => {
            let actor = ctx
                .engine
                .soar
                .as_ref()
                .map(|s| s.0.clone())
                .ok_or_else(|| {
                    ToolError::Unavailable("SOAR is not running in this process".into())
                })?;
            let (n, errors) = actor
                .send(netmonitor_soar::ReloadPlaybooks)
                .await
                .map_err(|e| ToolError::Unavailable(format!("soar actor: {e}")))?;
            Ok(json!({"playbooks_loaded": n, "errors": errors}))
        }
        other => Err(invalid(
            "command",
            format!("{other} is not a sensor command ({})", COMMANDS.join(", ")),
        )),
    }
}

fn command_schema() -> Value {
    output(vec![
        ("id", count("Command id")),
        ("ts", string("When it was asked (RFC 3339)")),
        ("sensor", string("Sensor that ran it")),
        ("command", string("Command")),
        ("args", any_object("Its arguments")),
        ("requested_by", string("Token name of the caller")),
        ("token_id", opt_int("Token id of the caller")),
        ("status", enumeration("Outcome", &["ok", "error"])),
        (
            "result",
            json!({"description": "What it did, or the error"}),
        ),
        ("duration_ms", count("How long it ran")),
    ])
}

fn send_sensor_command(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "send_sensor_command",
            title: "Send sensor command",
            description: "Runs a command on the sensor and records it (see get_sensor_command_history): flush_flows ends every tracked flow now (their records are written); export_ring writes the whole packet ring buffer (args.max_packets to cap it) to a pcap in the captures directory; set_log_level changes the log filter (args.level: trace, debug, info, warn, error or a filter); pause_capture / resume_capture stop and restart reading from every source (a paused live interface drops in the kernel, counted); reload_ja3_blocklist reloads the JA3 blocklist from the database into the TLS detector; reload_playbooks rereads the SOAR playbook directory (it is also reread when it changes) and reports the files that did not load.",
            input: input(
                vec![
                    ("command", enumeration("Command", &COMMANDS)),
                    ("args", any_object("Arguments of the command (level for set_log_level, max_packets for export_ring)")),
                ],
                &["command"],
            ),
            output: output(vec![("command", command_schema())]),
            annotations: WRITE_CONTROL,
            scope: Scope::Admin,
        },
        |ctx, tctx, args| async move {
            let command = args.req_str("command")?;
            let cargs = args.value("args").unwrap_or_else(|| json!({}));
            let started = Instant::now();
            let outcome = run(&ctx, &command, &cargs).await;
            let (ok, result) = match &outcome {
                Ok(v) => (true, v.clone()),
                Err(e) => (false, json!({"error": e.to_string()})),
            };
            let who = tctx.identity();
            let mut conn = db(&ctx).await?;
            let sensor = ctx.config["sensor_name"].as_str().unwrap_or("netmonitor").to_owned();
            let row = cmds::record(
                &mut conn,
                &NewCommand {
                    sensor: &sensor,
                    command: &command,
                    args: &cargs,
                    requested_by: &who.token_name(),
                    token_id: who.token_id(),
                    ok,
                    result: &result,
                    duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
                },
            )
            .await
            .map_err(db_err)?;
            tracing::info!(command = %command, ok, by = %who.token_name(), "sensor command");
            outcome?;
            Ok(json!({"command": json(&row)?}))
        },
    )
}

fn get_sensor_command_history(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_sensor_command_history",
            title: "Sensor command history",
            description: "The commands sent to the sensor with send_sensor_command, newest first: who asked, when, the arguments, whether it worked, what it did and how long it took; optionally only one command.",
            input: input(
                vec![
                    ("command", enumeration("Only this command", &COMMANDS)),
                    ("limit", limit(500, 50)),
                ],
                &[],
            ),
            output: output(vec![
                ("returned", count("Commands in this answer")),
                ("commands", array("Commands, newest first", command_schema())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let kind = args.opt_str("command")?;
            let limit = args.i64_or("limit", 50, 1, 500)?;
            let mut conn = db(&ctx).await?;
            let rows = cmds::history(&mut conn, kind.as_deref(), limit)
                .await
                .map_err(db_err)?;
            Ok(json!({"returned": rows.len(), "commands": json(&rows)?}))
        },
    )
}

fn flush_memory(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "flush_memory",
            title: "Flush memory",
            description: "Frees what the service can give back without losing data: ends flows that are already idle (their records are written), drops the TLS actor's live top lists, and the MCP server's reusable tool results and cached token lookups; reports what each freed and the process's resident size before and after.",
            input: input(vec![], &[]),
            output: output(vec![
                ("idle_flows_ended", opt_int("Flows ended (null when capture is not running)")),
                ("flows_active", opt_int("Flows still tracked")),
                ("tls_tracked_values_freed", count("Distinct JA3/JA4/SNI values the TLS actor forgot")),
                ("caches", any_object("What the service's caches dropped")),
                ("rss_bytes_before", opt_int("Resident size before")),
                ("rss_bytes_after", opt_int("Resident size after")),
            ]),
            annotations: WRITE_ADDITIVE,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, _args| async move {
            let before = procfs::read_self().map(|p| p.rss_bytes);
            let trim = match &ctx.engine.capture {
                Some(c) => c.trim().await.ok(),
                None => None,
            };
            let tls = ctx
                .engine
                .tls
                .send(netmonitor_tls::actor::ClearTlsLive)
                .await
                .unwrap_or(0);
            let caches = ctx.settings.flush_caches();
            let after = procfs::read_self().map(|p| p.rss_bytes);
            Ok(json!({
                "idle_flows_ended": trim.as_ref().map(|t| t.idle_flows_ended),
                "flows_active": trim.as_ref().map(|t| t.flows_active),
                "tls_tracked_values_freed": tls,
                "caches": caches,
                "rss_bytes_before": before,
                "rss_bytes_after": after,
            }))
        },
    )
}
