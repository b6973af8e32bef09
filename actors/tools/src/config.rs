//! Configuration tools: the effective configuration (secrets redacted by the composition
//! root) flattened to dotted keys, and stored overrides in `config_parameters`. Setting a
//! value records it; the running engine does not re-read configuration, so the answer says
//! plainly which keys (if any) take effect live.

use crate::args::invalid;
use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries as q;
use serde_json::{json, Map, Value};

/// Keys whose stored value the running service applies without a restart. None yet: the
/// engine reads its configuration once at start.
pub const LIVE_CONFIG_KEYS: &[&str] = &[];

/// Sections that can never be set through MCP (credentials, database selection).
const PROTECTED_SECTIONS: [&str; 1] = ["database"];
/// Key fragments that mark secrets.
const SECRET_MARKERS: [&str; 3] = ["password", "secret", "token"];
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

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks that `key` names a settable leaf of `effective` and that `value` fits it.
pub(crate) fn check_setting(effective: &Value, key: &str, value: &Value) -> Result<(), ToolError> {
    let lower = key.to_ascii_lowercase();
    let first = lower.split('.').next().unwrap_or("");
    if PROTECTED_SECTIONS.contains(&first) || SECRET_MARKERS.iter().any(|m| lower.contains(m)) {
        return Err(invalid(
            "key",
            format!("{key} holds credentials or database selection and cannot be set through MCP"),
        ));
    }
    let current = lookup(effective, key).ok_or_else(|| {
        invalid(
            "key",
            format!("{key} is not a configuration key (see get_config_parameters)"),
        )
    })?;
    if current
        .as_str()
        .is_some_and(|s| s.to_ascii_lowercase().contains("redacted"))
    {
        return Err(invalid(
            "key",
            format!("{key} is a redacted secret and cannot be set through MCP"),
        ));
    }
    if current.is_object() {
        return Err(invalid(
            "key",
            format!("{key} is a section; set one of its keys instead"),
        ));
    }
    if value.is_object() {
        return Err(invalid("value", "must be a single value, not an object"));
    }
    let (want, got) = (json_type(current), json_type(value));
    let compatible = want == got
        || current.is_null()
        || (want == "number" && got == "integer")
        || (want == "integer"
            && got == "number"
            && value.as_f64().is_some_and(|f| f.fract() == 0.0));
    if !compatible {
        return Err(invalid(
            "value",
            format!("{key} takes a {want}, got a {got}"),
        ));
    }
    Ok(())
}

fn get_config_parameters(ctx: &Ctx) -> ToolDef {
    let override_schema = output(vec![
        ("key", string("Dotted key")),
        ("value", json!({"description": "Stored value"})),
        (
            "effective_value",
            json!({"description": "Value the running service uses (null if unknown)"}),
        ),
        (
            "pending",
            boolean(
                "True when the stored value differs from the running one",
                None,
            ),
        ),
        ("updated_at", string("When it was stored (RFC 3339)")),
        ("updated_by", opt_string("Who stored it")),
    ]);
    tool(
        ctx,
        Spec {
            name: "get_config_parameters",
            title: "Configuration parameters",
            description: "Shows the effective configuration of the running service as dotted keys (secrets redacted), optionally only keys starting with `prefix`, plus values stored with set_config_parameter and whether each differs from what is running.",
            input: input(
                vec![("prefix", string_len("Only keys starting with this (e.g. sensor.kerberos)", 1, MAX_KEY_LEN))],
                &[],
            ),
            output: output(vec![
                ("parameters", array("Effective values", output(vec![
                    ("key", string("Dotted key")),
                    ("value", json!({"description": "Value in use"})),
                ]))),
                ("overrides", array("Stored values", override_schema)),
                ("live_keys", array("Keys applied without a restart", string("Key"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let prefix = args.opt_str("prefix")?.unwrap_or_default();
            let params: Vec<Value> = flatten(&ctx.config)
                .into_iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            let mut conn = db(&ctx).await?;
            let stored = q::list_config_parameters(&mut conn).await.map_err(db_err)?;
            let overrides: Vec<Value> = stored
                .into_iter()
                .filter(|r| r.key.starts_with(&prefix))
                .map(|r| {
                    let eff = lookup(&ctx.config, &r.key).cloned().unwrap_or(Value::Null);
                    json!({
                        "key": r.key,
                        "pending": eff != r.value,
                        "value": r.value,
                        "effective_value": eff,
                        "updated_at": r.updated_at.to_rfc3339(),
                        "updated_by": r.updated_by,
                    })
                })
                .collect();
            Ok(json!({"parameters": params, "overrides": overrides, "live_keys": LIVE_CONFIG_KEYS}))
        },
    )
}

fn set_config_parameter(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "set_config_parameter",
            title: "Set configuration parameter",
            description: "Records a new value for one configuration key (a dotted key from get_config_parameters, e.g. sensor.kerberos.bruteforce_threshold) in the config_parameters table, with who set it. The value must have the key's type; credentials and the database section cannot be set. The running engine reads its configuration at start, so the answer states whether the key takes effect live (see live_keys) — otherwise the value is recorded only.",
            input: input(
                vec![
                    ("key", string_len("Dotted configuration key", 1, MAX_KEY_LEN)),
                    ("value", json!({"description": "New value, of the key's type (string, number, boolean or array)"})),
                ],
                &["key", "value"],
            ),
            output: output(vec![
                ("recorded", boolean("Stored in config_parameters", None)),
                ("key", string("The key")),
                ("value", json!({"description": "Stored value"})),
                ("previous_stored_value", json!({"description": "Value stored before (null if none)"})),
                ("effective_value", json!({"description": "Value the running service uses"})),
                ("live", boolean("Whether the running service applies it now", None)),
                ("live_keys", array("Keys applied without a restart", string("Key"))),
                ("note", string("What happens next")),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::Admin,
        },
        |ctx, tctx, args| async move {
            let key = args.req_str("key")?;
            let value = args
                .value("value")
                .ok_or_else(|| invalid("value", "is required"))?;
            check_setting(&ctx.config, &key, &value)?;
            let by = tctx.identity().token_name();
            let mut conn = db(&ctx).await?;
            let (row, previous) = q::set_config_parameter(&mut conn, &key, &value, &by)
                .await
                .map_err(db_err)?;
            let live = LIVE_CONFIG_KEYS.contains(&key.as_str());
            let effective = lookup(&ctx.config, &key).cloned().unwrap_or(Value::Null);
            let note = if live {
                format!("{key} is recorded and applied to the running service.")
            } else {
                format!(
                    "{key} is recorded in config_parameters only: the running service keeps using {effective} (it reads configuration at start; no key is applied live in this version)."
                )
            };
            let mut out = Map::new();
            out.insert("recorded".into(), json!(true));
            out.insert("key".into(), json!(row.key));
            out.insert("value".into(), row.value);
            out.insert(
                "previous_stored_value".into(),
                previous.map(|p| p.value).unwrap_or(Value::Null),
            );
            out.insert("effective_value".into(), effective);
            out.insert("live".into(), json!(live));
            out.insert("live_keys".into(), json!(LIVE_CONFIG_KEYS));
            out.insert("note".into(), json!(note));
            Ok(Value::Object(out))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Value {
        json!({
            "log_level": "info",
            "store": {"batch_size": 5000, "spool_dir": ""},
            "sensor": {"kerberos": {"bruteforce_threshold": 10}, "ja3_blocklist": null},
            "database": {"url": "[redacted]"},
            "ollama": {"api_key": "<redacted>"},
            "mcp": {"cors_origins": ["*"], "ratio": 0.5},
        })
    }

    #[test]
    fn flattens_to_dotted_keys() {
        let f = flatten(&cfg());
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"sensor.kerberos.bruteforce_threshold"));
        assert!(keys.contains(&"mcp.cors_origins"));
        assert_eq!(lookup(&cfg(), "store.batch_size"), Some(&json!(5000)));
        assert_eq!(lookup(&cfg(), "store.nope"), None);
    }

    #[test]
    fn settings_are_checked_by_key_and_type() {
        let c = cfg();
        assert!(check_setting(&c, "store.batch_size", &json!(100)).is_ok());
        assert!(check_setting(&c, "store.batch_size", &json!("100")).is_err());
        assert!(check_setting(&c, "mcp.ratio", &json!(1)).is_ok());
        assert!(check_setting(&c, "sensor.ja3_blocklist", &json!("/x.csv")).is_ok());
        assert!(check_setting(&c, "sensor.kerberos", &json!(1)).is_err());
        assert!(check_setting(&c, "database.url", &json!("x")).is_err());
        assert!(check_setting(&c, "mcp.token_secret", &json!("x")).is_err());
        assert!(check_setting(&c, "ollama.api_key", &json!("x")).is_err());
        assert!(check_setting(&c, "no.such.key", &json!(1)).is_err());
        assert!(check_setting(&c, "log_level", &json!({"a": 1})).is_err());
    }
}
