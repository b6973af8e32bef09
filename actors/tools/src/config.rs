//! Configuration tools. `get_config_parameters` shows the effective configuration as dotted
//! keys (secrets redacted by the composition root), where each value comes from (`default`,
//! `file`, `env`, or `override` when changed at run time) and which keys are live.
//! `set_config_parameter` changes a live key through the actor that owns it (detection
//! thresholds, detections on/off, EVE on/off) or the service (log level, MCP rate limits),
//! answers with the old and new value, and stores the override in `config_parameters`, from
//! where it is applied again at the next start. Keys that need a restart are refused.

use crate::args::invalid;
use crate::schema::*;
use crate::support::*;
use crate::ToolContext;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_runtime::LiveKey;
use netmonitor_store::queries as q;
use serde_json::{json, Value};

/// Longest dotted key accepted.
const MAX_KEY_LEN: u64 = 128;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![get_config_parameters(ctx), set_config_parameter(ctx)]
}

/// Leaves of a JSON object as `(dotted key, value)`; arrays are leaves.
pub(crate) fn flatten(v: &Value) -> Vec<(String, Value)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() || prefix.is_empty() => {
                for (k, child) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            other => out.push((prefix.to_owned(), other.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// The value at a dotted key.
pub(crate) fn lookup<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(v, |cur, part| cur.get(part))
}

/// Every key changeable at run time: the engine's actors' and the service's.
fn live_keys(ctx: &ToolContext) -> Vec<LiveKey> {
    let mut keys = ctx.engine.live.keys();
    keys.extend(ctx.settings.keys());
    keys
}

/// Applies a live change where it belongs; answers the old and new value.
async fn apply(
    ctx: &ToolContext,
    key: &str,
    value: Value,
) -> Result<netmonitor_runtime::ParamChange, String> {
    let change = if ctx.settings.keys().iter().any(|k| k.key == key) {
        ctx.settings.set(key, &value)?
    } else {
        ctx.engine.live.set(key, value).await?
    };
    ctx.live_values
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.to_owned(), change.new.clone());
    Ok(change)
}

/// Applies a live change and stores it as an override (applied again at every start).
pub(crate) async fn apply_and_record(
    ctx: &ToolContext,
    key: &str,
    value: Value,
    by: &str,
) -> Result<netmonitor_runtime::ParamChange, ToolError> {
    let change = apply(ctx, key, value)
        .await
        .map_err(|m| invalid("value", m))?;
    let mut conn = db(ctx).await?;
    q::set_config_parameter(&mut conn, key, &change.new, by)
        .await
        .map_err(db_err)?;
    tracing::info!(%key, old = %change.old, new = %change.new, %by, "configuration changed at run time");
    Ok(change)
}

/// At start: applies every stored override of a live key again; returns how many took. A
/// stored value the owner now refuses is logged and skipped.
pub async fn apply_stored_overrides(ctx: &ToolContext) -> Result<usize, String> {
    let mut conn = ctx.pool.get().await.map_err(|e| e.to_string())?;
    let stored = q::list_config_parameters(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    drop(conn);
    let keys = live_keys(ctx);
    let mut applied = 0;
    for row in stored {
        if !keys.iter().any(|k| k.key == row.key) {
            continue;
        }
        match apply(ctx, &row.key, row.value.clone()).await {
            Ok(_) => applied += 1,
            Err(e) => tracing::warn!(key = %row.key, error = %e, "stored override not applied"),
        }
    }
    Ok(applied)
}

fn get_config_parameters(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_config_parameters",
            title: "Configuration parameters",
            description: "Shows the configuration of the running service as dotted keys (secrets redacted), optionally only keys starting with `prefix`: each key's value in force, where it comes from (default, file, env, or override when set at run time with set_config_parameter) and whether it can be changed live; plus the overrides stored in the database (applied again at every start) and the list of live keys with what they do.",
            input: input(
                vec![("prefix", string_len("Only keys starting with this (e.g. detection.kerberos)", 1, MAX_KEY_LEN))],
                &[],
            ),
            output: output(vec![
                ("parameters", array("Values in force", output(vec![
                    ("key", string("Dotted key")),
                    ("value", json!({"description": "Value in force"})),
                    ("source", string("default, file, env or override")),
                    ("live", boolean("Changeable without a restart", None)),
                ]))),
                ("overrides", array("Stored overrides", output(vec![
                    ("key", string("Dotted key")),
                    ("value", json!({"description": "Stored value"})),
                    ("updated_at", string("When it was stored (RFC 3339)")),
                    ("updated_by", opt_string("Who stored it")),
                ]))),
                ("live_keys", array("Keys changeable at run time", output(vec![
                    ("key", string("Dotted key")),
                    ("kind", string("bool, integer, number or string")),
                    ("description", string("What it does")),
                ]))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let prefix = args.opt_str("prefix")?.unwrap_or_default();
            let keys = live_keys(&ctx);
            let changed = ctx
                .live_values
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let mut params: Vec<Value> = flatten(&ctx.config)
                .into_iter()
                .map(|(k, v)| {
                    let live = keys.iter().any(|l| l.key == k);
                    match changed.get(&k) {
                        Some(new) => json!({"key": k, "value": new, "source": "override", "live": live}),
                        None => {
                            let source = ctx.config_sources.get(&k).cloned().unwrap_or_else(|| "default".into());
                            json!({"key": k, "value": v, "source": source, "live": live})
                        }
                    }
                })
                .collect();
            // live keys with no place in the file (detection.<kind>.enabled)
            for l in &keys {
                if lookup(&ctx.config, &l.key).is_none() {
                    let (value, source) = match changed.get(&l.key) {
                        Some(v) => (v.clone(), "override"),
                        None => (json!(true), "default"),
                    };
                    params.push(json!({"key": l.key, "value": value, "source": source, "live": true}));
                }
            }
            params.retain(|p| p["key"].as_str().is_some_and(|k| k.starts_with(&prefix)));
            let mut conn = db(&ctx).await?;
            let stored = q::list_config_parameters(&mut conn).await.map_err(db_err)?;
            let overrides: Vec<Value> = stored
                .into_iter()
                .filter(|r| r.key.starts_with(&prefix))
                .map(|r| json!({
                    "key": r.key,
                    "value": r.value,
                    "updated_at": r.updated_at.to_rfc3339(),
                    "updated_by": r.updated_by,
                }))
                .collect();
            let live: Vec<Value> = keys
                .iter()
                .filter(|k| k.key.starts_with(&prefix))
                .map(|k| json!({"key": k.key, "kind": k.kind, "description": k.description}))
                .collect();
            Ok(json!({"parameters": params, "overrides": overrides, "live_keys": live}))
        },
    )
}

fn set_config_parameter(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "set_config_parameter",
            title: "Set configuration parameter",
            description: "Changes one live configuration key of the running service (see live_keys of get_config_parameters: detection thresholds such as detection.kerberos.spray_distinct_users, detection.<kind>.enabled, detection.alerts.dedup_window_secs, output.eve.enabled, log_level, mcp.rate_limit_enabled). The owning component validates and applies it at once; the answer gives the old and new value. The override is stored in config_parameters with who set it and applied again at every start. Keys that need a restart (ports, paths, the database) are refused.",
            input: input(
                vec![
                    ("key", string_len("Dotted live key", 1, MAX_KEY_LEN)),
                    ("value", json!({"description": "New value, of the key's kind (boolean, integer, number or string)"})),
                ],
                &["key", "value"],
            ),
            output: output(vec![
                ("applied", boolean("Applied to the running service", None)),
                ("recorded", boolean("Stored in config_parameters (applied again at start)", None)),
                ("key", string("The key")),
                ("old_value", json!({"description": "Value before"})),
                ("new_value", json!({"description": "Value now in force"})),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::Admin,
        },
        |ctx, tctx, args| async move {
            let key = args.req_str("key")?;
            let value = args
                .value("value")
                .ok_or_else(|| invalid("value", "is required"))?;
            if !live_keys(&ctx).iter().any(|k| k.key == key) {
                let why = if lookup(&ctx.config, &key).is_some() {
                    format!("{key} takes effect only at a restart: change it in the configuration file or environment")
                } else {
                    format!("{key} is not a configuration key (see get_config_parameters)")
                };
                return Err(invalid("key", why));
            }
            let by = tctx.identity().token_name();
            let change = apply_and_record(&ctx, &key, value, &by).await?;
            Ok(json!({
                "applied": true,
                "recorded": true,
                "key": key,
                "old_value": change.old,
                "new_value": change.new,
            }))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_to_dotted_keys() {
        let c = json!({
            "log_level": "info",
            "detection": {"kerberos": {"window_secs": 300}},
            "mcp": {"cors_origins": ["*"]},
        });
        let f = flatten(&c);
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"detection.kerberos.window_secs"));
        assert!(keys.contains(&"mcp.cors_origins"));
        assert_eq!(
            lookup(&c, "detection.kerberos.window_secs"),
            Some(&json!(300))
        );
        assert_eq!(lookup(&c, "detection.nope"), None);
    }
}
