//! NetMonitor's MCP catalogue: the tools, resources and prompts an assistant uses to question
//! the sensor. Every tool answers from PostgreSQL (through `netmonitor_store::queries`) for
//! history or from the live engine's actors (by message, through
//! [`netmonitor_engine::Handles`]) for real-time state; a capability the engine cannot back yet
//! is simply not registered, so nothing here returns fixed or invented data.
//!
//! Each tool declares its input schema (field descriptions, bounds, enums, no extra fields),
//! its output schema, explicit behaviour annotations and the scope it needs: reads are
//! `read_only`, analyst changes (acknowledging alerts, whitelisting, blocklisting) are
//! `read_write`, and configuration and deletions are `admin`.
//!
//! The composition root builds a [`ToolContext`] once and hands [`build_registry`]'s result
//! to `netmonitor_mcp::McpServer`.
#![deny(missing_docs)]

mod advice;
mod analyze_ip;
mod args;
pub mod backing;
mod commands;
mod config;
mod csv;
mod device_learning;
mod device_templates;
mod devices;
mod intel;
mod inventory;
mod kerberos;
mod network;
mod pcap;
mod procfs;
mod prompts;
mod risk;
mod schema;
mod sensor;
mod soar;
mod storage;
mod support;
mod suppression;
mod threats;
mod tls;
mod whitelist;

pub use config::apply_stored_overrides;

use netmonitor_mcp::{Registry, RegistryError};
use netmonitor_store::DbPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What the tools need from the running service: the query pool, the engine's actors, where
/// exported captures go, the effective configuration (secrets already redacted) and the
/// service start time.
pub struct ToolContext {
    /// Async PostgreSQL pool for every database-backed tool.
    pub pool: DbPool,
    /// The engine's actors (capture, TLS, Kerberos, alert stage, inventory, EVE, bus).
    pub engine: netmonitor_engine::Handles,
    /// Directory `export_flow_pcap` writes to; `delete_pcap_capture` deletes only inside it.
    pub captures_dir: PathBuf,
    /// The effective configuration, secrets redacted; shown by `get_config_parameters`.
    pub config: serde_json::Value,
    /// When the service started (uptime in status tools).
    pub started: Instant,
    /// Which whitelist entries need more than read_write.
    pub whitelist: WhitelistPolicy,
    /// Where each effective key's value comes from (`default`, `file`, `env`).
    pub config_sources: std::collections::BTreeMap<String, String>,
    /// Live keys the composition root applies itself (log level, MCP limits).
    pub settings: Arc<dyn ServiceSettings>,
    /// Values changed at run time (since start), by key: they override `config` in answers.
    pub live_values: std::sync::Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// Live settings owned by the composition root rather than an engine actor.
pub trait ServiceSettings: Send + Sync {
    /// The keys it changes at run time.
    fn keys(&self) -> Vec<netmonitor_runtime::LiveKey>;
    /// Applies one; answers the old and new value.
    fn set(
        &self,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<netmonitor_runtime::ParamChange, String>;
    /// Drops the service's own caches (MCP tool results, token lookups); says what was freed.
    fn flush_caches(&self) -> serde_json::Value;
}

/// No service-level live settings (tests that run only the engine).
pub struct NoSettings;

impl ServiceSettings for NoSettings {
    fn keys(&self) -> Vec<netmonitor_runtime::LiveKey> {
        Vec::new()
    }
    fn set(
        &self,
        key: &str,
        _value: &serde_json::Value,
    ) -> Result<netmonitor_runtime::ParamChange, String> {
        Err(format!("{key}: not a live key"))
    }
    fn flush_caches(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

/// Whitelist settings (`[whitelist]` in the configuration).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WhitelistPolicy {
    /// IPv4 networks broader than this prefix (e.g. `0.0.0.0/0`) can only be whitelisted by an
    /// admin token: they would hide a large part of the address space.
    pub min_prefix_v4: u8,
    /// The same for IPv6 (`::/0`).
    pub min_prefix_v6: u8,
}

impl Default for WhitelistPolicy {
    fn default() -> Self {
        WhitelistPolicy {
            min_prefix_v4: 8,
            min_prefix_v6: 32,
        }
    }
}

impl WhitelistPolicy {
    /// Checks the values, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_prefix_v4 > 32 {
            return Err("whitelist.min_prefix_v4 must be at most 32".into());
        }
        if self.min_prefix_v6 > 128 {
            return Err("whitelist.min_prefix_v6 must be at most 128".into());
        }
        Ok(())
    }

    /// True when `prefix_len` of a network of this family is broader than allowed without admin.
    pub fn needs_admin(&self, v4: bool, prefix_len: u8) -> bool {
        prefix_len
            < if v4 {
                self.min_prefix_v4
            } else {
                self.min_prefix_v6
            }
    }
}

/// Registers every tool, resource, template and prompt backed by `ctx`.
pub fn build_registry(ctx: Arc<ToolContext>) -> Result<Registry, RegistryError> {
    let mut r = Registry::new();
    for tool in threats::tools(&ctx)
        .into_iter()
        .chain(sensor::tools(&ctx))
        .chain(storage::tools(&ctx))
        .chain(config::tools(&ctx))
        .chain(commands::tools(&ctx))
        .chain(devices::tools(&ctx))
        .chain(risk::tools(&ctx))
        .chain(device_templates::tools(&ctx))
        .chain(device_learning::tools(&ctx))
        .chain(tls::tools(&ctx))
        .chain(kerberos::tools(&ctx))
        .chain(pcap::tools(&ctx))
        .chain(whitelist::tools(&ctx))
        .chain(suppression::tools(&ctx))
        .chain(network::tools(&ctx))
        .chain(inventory::tools(&ctx))
        .chain(intel::tools(&ctx))
        .chain(advice::tools(&ctx))
        .chain(soar::tools(&ctx))
    {
        r.add_tool(tool)?;
    }
    for res in inventory::resources(&ctx)
        .into_iter()
        .chain(soar::resources(&ctx))
    {
        r.add_resource(res)?;
    }
    for tpl in inventory::templates(&ctx) {
        r.add_template(tpl)?;
    }
    for p in prompts::prompts(&ctx) {
        r.add_prompt(p)?;
    }
    Ok(r)
}

/// Loads the database's JA3 blocklist into the TLS actor, so entries added with
/// `add_ja3_blacklist` survive a restart. Returns how many entries were loaded.
pub async fn load_ja3_blocklist(ctx: &ToolContext) -> Result<usize, String> {
    let mut conn = ctx.pool.get().await.map_err(|e| e.to_string())?;
    let rows = netmonitor_store::queries::all_ja3_blocks(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for row in rows {
        let added = ctx
            .engine
            .tls
            .send(netmonitor_tls::actor::AddJa3 {
                md5: row.ja3.clone(),
                reason: row.reason.clone(),
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match added {
            Ok(()) => n += 1,
            Err(e) => tracing::warn!(ja3 = %row.ja3, error = %e, "blocklist entry not loaded"),
        }
    }
    Ok(n)
}

/// Loads the `whitelist` table into the alert stage (at start and after every change).
pub async fn load_whitelist(ctx: &ToolContext) -> Result<usize, String> {
    let mut conn = ctx.pool.get().await.map_err(|e| e.to_string())?;
    let rows = netmonitor_store::suppression::list_whitelist(&mut conn, i64::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let entries: Vec<_> = rows
        .iter()
        .filter_map(suppression::whitelist_entry)
        .collect();
    let n = entries.len();
    ctx.engine
        .alert_stage
        .send(netmonitor_alerts::SetWhitelist(entries))
        .await
        .map_err(|e| e.to_string())?;
    Ok(n)
}

pub use suppression::load_providers;
