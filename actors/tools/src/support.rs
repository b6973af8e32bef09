//! Plumbing shared by every tool: turning an async function into a registered [`ToolDef`],
//! borrowing a database connection, asking the inventory actor, the behaviour annotations
//! used across the catalogue, and severity names.

use crate::args::Args;
use crate::ToolContext;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::AsyncPgConnection;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolCtx, ToolDef, ToolError};
use netmonitor_sensor::inventory::Inventory;
use netmonitor_sensor::inventory_actor::QueryInventory;
use netmonitor_store::StoreError;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The shared context as every handler receives it.
pub(crate) type Ctx = Arc<ToolContext>;

/// Longest wait for a pooled database connection before the tool reports the database as
/// unavailable (the tool-call timeout of the server is much longer).
const DB_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Changes data, adding or updating without destroying anything; repeating it changes nothing
/// more.
pub(crate) const WRITE_IDEMPOTENT: ToolAnnotations = ToolAnnotations {
    read_only: false,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// Changes how the sensor runs (ends flows, pauses capture): not repeatable without effect.
pub(crate) const WRITE_CONTROL: ToolAnnotations = ToolAnnotations {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: false,
};

/// Creates something new on every call (a file, a row).
pub(crate) const WRITE_ADDITIVE: ToolAnnotations = ToolAnnotations {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: false,
};

/// Deletes or overwrites data; repeating it has no further effect.
pub(crate) const DESTRUCTIVE: ToolAnnotations = ToolAnnotations {
    read_only: false,
    destructive: true,
    idempotent: true,
    open_world: false,
};

/// Reads from outside the sensor's own data (the system resolver, hence the internet).
pub(crate) const READ_OPEN_WORLD: ToolAnnotations = ToolAnnotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// The declaration of one tool, apart from its handler.
pub(crate) struct Spec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input: Value,
    pub output: Value,
    pub annotations: ToolAnnotations,
    pub scope: Scope,
}

/// Wraps an async handler into a [`ToolDef`].
pub(crate) fn tool<F, Fut>(ctx: &Ctx, spec: Spec, f: F) -> ToolDef
where
    F: Fn(Ctx, ToolCtx, Args) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, ToolError>> + 'static,
{
    let ctx = ctx.clone();
    let f = Arc::new(f);
    ToolDef {
        name: spec.name.to_owned(),
        title: spec.title.to_owned(),
        description: spec.description.to_owned(),
        input_schema: spec.input,
        output_schema: spec.output,
        annotations: spec.annotations,
        scope: spec.scope,
        handler: Arc::new(move |tctx, args| {
            let (ctx, f) = (ctx.clone(), f.clone());
            Box::pin(async move { f(ctx, tctx, Args::new(args)).await })
        }),
        reuse_for: None,
    }
}

/// A pooled connection, or `Unavailable` when the database cannot be reached.
pub(crate) async fn db(ctx: &ToolContext) -> Result<Object<AsyncPgConnection>, ToolError> {
    match tokio::time::timeout(DB_CONNECT_TIMEOUT, ctx.pool.get()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(ToolError::Unavailable(format!("database: {e}"))),
        Err(_) => Err(ToolError::Unavailable(
            "database: no connection within 10 s".into(),
        )),
    }
}

/// A second pooled connection when one is free at once, for reading in parallel; `None`
/// rather than waiting, so that calls holding one connection never wait for each other's.
pub(crate) async fn spare_db(ctx: &ToolContext) -> Option<Object<AsyncPgConnection>> {
    let now = deadpool::managed::Timeouts {
        wait: Some(Duration::ZERO),
        create: None,
        recycle: None,
    };
    tokio::time::timeout(DB_CONNECT_TIMEOUT, ctx.pool.timeout_get(&now))
        .await
        .ok()?
        .ok()
}

/// A storage failure as the model sees it.
pub(crate) fn db_err(e: StoreError) -> ToolError {
    match e {
        StoreError::Invalid(m) => ToolError::Failed(m),
        other => ToolError::Unavailable(other.to_string()),
    }
}

/// Result objects from owned parts (see its docs for why not `json!`).
pub(crate) use netmonitor_mcp::jsonrpc::json_object;

/// A serializable value as JSON, failing the call (not panicking) when it cannot be encoded.
pub(crate) fn json<T: Serialize>(v: &T) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::Failed(format!("cannot encode result: {e}")))
}

/// Runs `f` on the device book inside the device actor.
pub(crate) async fn devices(
    ctx: &ToolContext,
    f: impl FnOnce(&netmonitor_devices::DeviceBook) -> Value + Send + 'static,
) -> Result<Value, ToolError> {
    let actor = ctx
        .engine
        .devices
        .as_ref()
        .ok_or_else(|| ToolError::Unavailable("no device inventory in this process".into()))?;
    let v = actor
        .send(netmonitor_devices::QueryDevices::new(f))
        .await
        .map_err(|e| ToolError::Unavailable(format!("device actor: {e}")))?;
    if v.is_null() {
        return Err(ToolError::Unavailable(
            "device actor failed while answering (it restarts; retry)".into(),
        ));
    }
    Ok(v)
}

/// Runs `f` on the live inventory inside the sensor actor.
pub(crate) async fn inventory(
    ctx: &ToolContext,
    f: impl FnOnce(&Inventory) -> Value + Send + 'static,
) -> Result<Value, ToolError> {
    let inv = ctx
        .engine
        .inventory
        .as_ref()
        .ok_or_else(|| ToolError::Unavailable("no live inventory in this process".into()))?;
    let v = inv
        .send(QueryInventory::new(f))
        .await
        .map_err(|e| ToolError::Unavailable(format!("inventory actor: {e}")))?;
    if v.is_null() {
        return Err(ToolError::Unavailable(
            "inventory actor failed while answering (it restarts; retry)".into(),
        ));
    }
    Ok(v)
}

/// A window as results report it.
pub(crate) fn window_json(w: &netmonitor_store::queries::Window) -> Value {
    serde_json::json!({"since": w.since.to_rfc3339(), "until": w.until.to_rfc3339()})
}

/// Suricata's severity numbers by name: 1 is the most severe.
pub(crate) const SEVERITY_NAMES: [&str; 4] = ["high", "medium", "low", "informational"];

/// The name of a severity number (`unknown` outside 1–4).
pub(crate) fn severity_name(s: i16) -> &'static str {
    usize::try_from(s)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| SEVERITY_NAMES.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// The severity number of a name.
pub(crate) fn severity_number(name: &str) -> Option<i16> {
    SEVERITY_NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| i16::try_from(i + 1).ok())
}

/// The capture actor's current status (`None` when capture is not running).
pub(crate) async fn sensor_status(
    ctx: &ToolContext,
) -> Option<Arc<netmonitor_sensor::service::SensorStatus>> {
    ctx.engine.capture.as_ref()?.status().await
}

/// The capture actor, or a clear error when this process captures nothing.
pub(crate) fn capture(
    ctx: &ToolContext,
) -> Result<&netmonitor_sensor::capture_actor::Capture, ToolError> {
    ctx.engine
        .capture
        .as_ref()
        .ok_or_else(|| ToolError::Unavailable("capture is not running in this process".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_round_trip() {
        for n in 1..=4 {
            assert_eq!(severity_number(severity_name(n)), Some(n));
        }
        assert_eq!(severity_name(0), "unknown");
        assert_eq!(severity_name(9), "unknown");
        assert_eq!(severity_number("critical"), None);
    }
}
