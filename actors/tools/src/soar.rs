//! SOAR tools and the `soar://pending` resource: the playbooks in force (and files that did
//! not load), pending approvals, deciding one (read_write, or admin where the playbook says;
//! every call audited by the server) and the history of actions with their outcomes. (The
//! `reload_playbooks` sensor command rereads the playbook directory.)

use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{ResourceDef, ResourceRequest, Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_soar::{DecideError, SoarCore, PENDING_URI};
use netmonitor_store::soar::{ActionFilter, ActionRow};
use serde_json::{json, Value};
use std::sync::Arc;

const STATES: [&str; 7] = [
    "pending",
    "approved",
    "rejected",
    "expired",
    "executing",
    "executed",
    "failed",
];

/// The tools of this module (none when SOAR is not running).
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    if ctx.engine.soar.is_none() {
        return Vec::new();
    }
    vec![
        get_soar_playbooks(ctx),
        get_pending_approvals(ctx),
        approve_soar_action(ctx),
        get_soar_history(ctx),
    ]
}

fn core(ctx: &Ctx) -> Result<Arc<SoarCore>, ToolError> {
    ctx.engine
        .soar
        .as_ref()
        .map(|s| s.1.clone())
        .ok_or_else(|| ToolError::Unavailable("SOAR is not running in this process".into()))
}

/// An action as the tools show it.
fn action_json(r: &ActionRow) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

async fn list(ctx: &Ctx, f: ActionFilter) -> Result<Vec<Value>, ToolError> {
    let mut conn = db(ctx).await?;
    let rows = netmonitor_store::soar::list(&mut conn, &f)
        .await
        .map_err(db_err)?;
    Ok(rows.iter().map(action_json).collect())
}

fn get_soar_playbooks(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_soar_playbooks",
            title: "SOAR playbooks",
            description: "The playbooks in force (from the configured directory, reloaded when it changes): name, description, whether enabled, the scope an approver needs, the trigger (alert kinds, severity, risk level crossed, chain stages, threat-feed match), the conditions (criticality, device template, hours, whitelist) and the ordered actions with their parameters, cooldown, hourly cap and whether each waits for approval. Also the files that did not load, each with its line, field and reason.",
            input: input(vec![], &[]),
            output: output(vec![
                ("directory", opt_string("The playbook directory")),
                ("playbooks", array("Playbooks in force", any_object("Playbook"))),
                ("errors", array("Files that did not load", any_object("File, line, field, message"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let core = core(&ctx)?;
            let playbooks: Vec<Value> = core
                .playbooks()
                .iter()
                .map(|p| {
                    let actions: Vec<Value> = p
                        .actions
                        .iter()
                        .enumerate()
                        .map(|(i, a)| {
                            let a = a.get_ref();
                            let mut v = serde_json::to_value(a).unwrap_or_default();
                            v["index"] = json!(i);
                            v["needs_approval"] = json!(a.needs_approval());
                            v["destructive"] = json!(a.kind.destructive());
                            v
                        })
                        .collect();
                    json!({
                        "name": p.name, "description": p.description, "enabled": p.enabled,
                        "approver_scope": p.approver_scope, "trigger": p.trigger,
                        "conditions": p.conditions, "actions": actions,
                        "file": p.file.display().to_string(),
                    })
                })
                .collect();
            let errors = core.errors.read().map(|e| e.clone()).unwrap_or_default();
            Ok(json!({
                "directory": core.cfg.playbooks_dir.as_ref().map(|d| d.display().to_string()),
                "playbooks": playbooks,
                "errors": errors,
            }))
        },
    )
}

fn get_pending_approvals(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_pending_approvals",
            title: "Pending SOAR approvals",
            description: "Actions waiting for a person's decision, newest first: id, playbook, action type, target, the exact command or request that would run, the triggering alert, when it expires and the scope an approver needs. Filter by playbook or target; page with `before_id` (the last id of the previous page). Also readable as the resource soar://pending, which notifies subscribers when it changes.",
            input: input(page_props(), &[]),
            output: page_output("Pending actions"),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            core(&ctx)?;
            page(&ctx, &args, vec!["pending".into()]).await
        },
    )
}

/// The arguments both listing tools take, read by [`page`].
fn page_props() -> Vec<(&'static str, Value)> {
    vec![
        ("playbook", string_len("Only this playbook", 1, 128)),
        (
            "target",
            string_len("Only this target (address or domain)", 1, 256),
        ),
        (
            "before_id",
            int("Only actions with a smaller id (cursor)", 1, i64::MAX, None),
        ),
        ("limit", limit(500, 50)),
    ]
}

/// What [`page`] answers, its actions described as `what`.
fn page_output(what: &str) -> Value {
    output(vec![
        ("count", count("Actions in this page")),
        ("next_before_id", opt_int("Cursor for the next page")),
        ("actions", array(what, any_object("Action"))),
    ])
}

/// One page of actions in `states` (all when empty), filtered by [`page_props`], with the
/// cursor of the next page.
async fn page(
    ctx: &Ctx,
    args: &crate::args::Args,
    states: Vec<String>,
) -> Result<Value, ToolError> {
    let f = ActionFilter {
        states,
        playbook: args.opt_str("playbook")?,
        target: args.opt_str("target")?,
        before_id: args.opt_i64("before_id", 1, i64::MAX)?,
        limit: args.i64_or("limit", 50, 1, 500)?,
    };
    let actions = list(ctx, f.clone()).await?;
    let next = (actions.len() as i64 == f.limit)
        .then(|| actions.last().and_then(|a| a["id"].as_i64()))
        .flatten();
    Ok(json!({"count": actions.len(), "next_before_id": next, "actions": actions}))
}

fn approve_soar_action(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "approve_soar_action",
            title: "Approve or reject a SOAR action",
            description: "Records a person's decision on a pending action: `approved` true runs it at once (its outcome is returned: HTTP status, command output, duration), false rejects it; `reason` is kept with the decider's token name and id. Needs read_write, or admin where the playbook says so. An action already decided, expired or run is refused: nothing is decided or run twice. Ask the user before calling this.",
            input: input(
                vec![
                    ("action_id", int("The action's id (get_pending_approvals)", 1, i64::MAX, None)),
                    ("approved", boolean("true to approve and run, false to reject", None)),
                    ("reason", string_len("Why", 1, 2000)),
                ],
                &["action_id", "approved"],
            ),
            output: output(vec![("action", any_object("The action after the decision (and its run)"))]),
            annotations: WRITE_CONTROL,
            scope: Scope::ReadWrite,
        },
        |ctx, tctx, args| async move {
            let core = core(&ctx)?;
            let id = args.opt_i64("action_id", 1, i64::MAX)?.ok_or_else(|| crate::args::invalid("action_id", "is required"))?;
            let approved = args
                .value("approved")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| crate::args::invalid("approved", "true or false is required"))?;
            let reason = args.opt_str("reason")?;
            let who = tctx.identity();
            let admin = who.scope == Scope::Admin;
            match core.decide(id, approved, who.token_name(), who.token_id(), admin, reason).await {
                Ok(row) => Ok(json!({"action": action_json(&row)})),
                Err(DecideError::NotFound) => Err(ToolError::NotFound(format!("no SOAR action {id}"))),
                Err(DecideError::Forbidden(m)) => Err(ToolError::Forbidden(m)),
                Err(DecideError::NotPending(m)) => Err(crate::args::invalid("action_id", m)),
                Err(DecideError::Store(m)) => Err(ToolError::Unavailable(format!("database: {m}"))),
            }
        },
    )
}

fn get_soar_history(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_soar_history",
            title: "SOAR history",
            description: "Every action playbooks proposed, newest first, with its state (pending, approved, rejected, expired, executing, executed, failed), who decided and when (token name and id, reason), when it ran and its outcome. Filter by state, playbook or target; page with `before_id`.",
            input: input(
                [("state", enumeration("Only this state", &STATES))]
                    .into_iter()
                    .chain(page_props())
                    .collect(),
                &[],
            ),
            output: page_output("Actions"),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            core(&ctx)?;
            let states = args.opt_str("state")?.into_iter().collect();
            page(&ctx, &args, states).await
        },
    )
}

/// `soar://pending` (only when SOAR runs).
pub(crate) fn resources(ctx: &Ctx) -> Vec<ResourceDef> {
    if ctx.engine.soar.is_none() {
        return Vec::new();
    }
    let c = ctx.clone();
    vec![ResourceDef {
        uri: PENDING_URI.to_owned(),
        name: "soar_pending".to_owned(),
        title: Some("Pending SOAR approvals".to_owned()),
        description: Some(
            "Actions waiting for approval (100 newest); subscribe to be told when one is added, decided or expires".to_owned(),
        ),
        mime_type: Some("application/json".to_owned()),
        scope: Scope::ReadOnly,
        handler: Arc::new(move |req: ResourceRequest| {
            let ctx = c.clone();
            Box::pin(async move {
                let f = ActionFilter {
                    states: vec!["pending".into()],
                    limit: 100,
                    ..Default::default()
                };
                let actions = list(&ctx, f).await?;
                Ok(crate::inventory::json_contents(req.uri, &json!({"count": actions.len(), "actions": actions})))
            })
        }),
    }]
}
