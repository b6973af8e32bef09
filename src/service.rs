//! `netmonitor run`: the long-running service. Opens the database (starting and keeping alive
//! the private cluster when none is configured), starts the store writer, the engine (bus,
//! detectors, alert stage, sinks, capture) and the HTTP server; on SIGINT/SIGTERM stops capture,
//! drains the engine, flushes the store and stops the cluster. SIGHUP reopens the EVE file.

use crate::cli::RunArgs;
use crate::config::Config;
use crate::http::{self, OpsState};
use actix::prelude::*;
use actix_web::{App, HttpServer};
use anyhow::Context as _;
use diesel_async::RunQueryDsl;
use netmonitor_capture::LiveConfig;
use netmonitor_engine::{Engine, EngineOptions};
use netmonitor_mcp::{Identity, McpServer, Scope, TokenStore};
use netmonitor_runtime::{Drain, EventBatch};
use netmonitor_sensor::service::Source;
use netmonitor_store::{Database, DbPool, StoreHandle};
use netmonitor_tools::backing::{PgTokenStore, StoreAuditSink};
use netmonitor_tools::ToolContext;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Least time between two `notifications/resources/updated` for the inventory resources.
const RESOURCE_NOTICE_INTERVAL: Duration = Duration::from_secs(1);
/// Resources whose content follows the event stream.
const INVENTORY_RESOURCES: [&str; 3] = ["network://hosts", "network://events", "network://map"];

/// How often the database probe behind /health runs.
const DB_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How often the private cluster's postmaster is checked (and restarted when it died).
const CLUSTER_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Runs the service until a termination signal.
pub fn run(mut cfg: Config, args: RunArgs) -> anyhow::Result<()> {
    cfg.capture.interfaces.extend(args.interfaces);
    cfg.capture.pcaps.extend(args.pcaps);
    if let Some(eve) = args.eve {
        cfg.output.eve.path = Some(eve);
    }
    let stdio = args.stdio;
    let started = Instant::now();
    let prometheus = crate::telemetry::prometheus();
    let mut db = Database::open(&cfg.db_target()).context("opening the database")?;
    tracing::info!("database ready");
    let keeper = db.keep_alive(CLUSTER_CHECK_INTERVAL);
    let store = Arc::new(StoreHandle::spawn(
        db.conninfo().to_owned(),
        cfg.store.clone(),
    )?);
    let ops = OpsState {
        started,
        database_up: Arc::new(AtomicBool::new(true)),
        cluster_alive: keeper.as_ref().map(|k| k.alive_flag()),
        tools: Arc::new(AtomicUsize::new(0)),
        store: store.stats(),
        prometheus,
        sensor: cfg.sensor_name.clone(),
        metrics_guard: None,
    };

    let system = actix_rt::System::new();
    let outcome = system.block_on(serve(&cfg, &db, store.clone(), ops, stdio));
    match Arc::try_unwrap(store) {
        Ok(handle) => handle.close(),
        Err(shared) => {
            if let Err(e) = shared.flush() {
                tracing::error!(error = %e, "final store flush failed");
            }
        }
    }
    drop(keeper);
    db.shutdown()?;
    tracing::info!("netmonitor stopped");
    outcome
}

async fn serve(
    cfg: &Config,
    db: &Database,
    store: Arc<StoreHandle>,
    mut ops: OpsState,
    stdio: bool,
) -> anyhow::Result<()> {
    let pool = db.pool(
        cfg.database.pool_size.unwrap_or(8),
        cfg.database.statement_timeout_ms.unwrap_or(15_000),
    )?;
    actix_rt::spawn(probe_database(pool.clone(), ops.database_up.clone()));

    let mut engine = Engine::start(EngineOptions {
        sensor: cfg.sensor_name.clone(),
        detection: cfg.detection.clone(),
        eve: Some(cfg.output.eve.clone()),
        store: Some(store.clone()),
        inventory: true,
        intel: Some(netmonitor_engine::IntelOptions {
            config: cfg.intel.clone(),
            database: Some(db.conninfo().to_owned()),
        }),
        devices: Some(netmonitor_engine::DevicesOptions {
            config: cfg.devices.clone(),
            database: Some(db.conninfo().to_owned()),
        }),
        risk: Some(netmonitor_engine::RiskOptions {
            config: cfg.risk.clone(),
            database: Some(db.conninfo().to_owned()),
        }),
        soar: Some(netmonitor_engine::SoarOptions {
            config: cfg.soar.clone(),
            database: db.conninfo().to_owned(),
        }),
    })
    .map_err(anyhow::Error::msg)?;
    start_capture(cfg, &mut engine)?;

    if !cfg.binds_loopback() {
        tracing::warn!(host = %cfg.http.host, "HTTP server binds a non-loopback address");
    }
    if !cfg.mcp.auth_required {
        tracing::warn!(
            "MCP authentication is disabled (allowed because the server binds loopback only)"
        );
    }
    let settings = Arc::new(ServiceLive::default());
    let ctx = Arc::new(ToolContext {
        pool: pool.clone(),
        engine: engine.handles(),
        captures_dir: cfg.data_dir().join("captures"),
        config: cfg.redacted(),
        started: Instant::now(),
        whitelist: cfg.whitelist.clone(),
        config_sources: cfg.sources(),
        settings: settings.clone(),
        live_values: Default::default(),
    });
    match netmonitor_tools::load_ja3_blocklist(&ctx).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, "JA3 blocklist loaded from the database"),
        Err(e) => tracing::warn!(error = %e, "JA3 blocklist not loaded from the database"),
    }
    match netmonitor_tools::load_whitelist(&ctx).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, "whitelist loaded into the alert stage"),
        Err(e) => tracing::warn!(error = %e, "whitelist not loaded from the database"),
    }
    match netmonitor_tools::load_providers(&ctx).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            providers = n,
            "service providers loaded into the alert stage"
        ),
        Err(e) => tracing::warn!(error = %e, "service providers not loaded from the database"),
    }
    let registry = netmonitor_tools::build_registry(ctx.clone())?;
    ops.tools.store(registry.tools().len(), Ordering::Relaxed);
    let mut mcp_config = cfg.mcp.clone();
    mcp_config.server_version = env!("CARGO_PKG_VERSION").to_owned();
    let store_actor = engine
        .store
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the engine has no store sink"))?;
    let audit = StoreAuditSink::start(store_actor)?;
    let mcp = Arc::new(McpServer::new(
        mcp_config,
        registry,
        Arc::new(PgTokenStore::new(pool.clone())),
        Arc::new(audit),
    ));
    mcp.start_sweeper();
    let _ = settings.mcp.set(mcp.clone());
    if let Some((_, core)) = &engine.soar {
        if let Some(c) = &engine.capture {
            let _ = core
                .capture
                .set((c.clone(), cfg.data_dir().join("captures")));
        }
        let notifier = mcp.clone();
        let _ = core.notify.set(Arc::new(move |uri: &str| {
            notifier.notify_resource_updated(uri)
        }));
    }
    match netmonitor_tools::apply_stored_overrides(&ctx).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "stored configuration overrides applied"),
        Err(e) => tracing::warn!(error = %e, "stored configuration overrides not applied"),
    }
    engine.subscribe_view(
        "mcp_notifications",
        &ResourceNotifier {
            mcp: mcp.clone(),
            last: None,
        }
        .start(),
    );
    if cfg.metrics_need_token() {
        tracing::info!("/metrics requires a bearer token (http.metrics_auth)");
        ops.metrics_guard = Some(mcp.clone());
    }
    let mcp_for_stdio = mcp.clone();
    let ops_for_app = ops.clone();
    let http_meters = Arc::new(http::HttpMeters::default());
    let server = HttpServer::new(move || {
        let ops = ops_for_app.clone();
        let mcp = mcp.clone();
        let meters = http_meters.clone();
        App::new()
            .wrap_fn(move |req, srv| http::record_request(meters.clone(), req, srv))
            .configure(move |c| http::configure(c, ops))
            .configure(move |c| mcp.configure(c))
    })
    .shutdown_timeout(5)
    // Signals are ours: actix-web's own handling would stop the whole System, actors included,
    // before the engine could be drained through them.
    .disable_signals()
    .workers(cfg.http.worker_threads());
    let server = server
        .bind((cfg.http.host.as_str(), cfg.http.port))
        .with_context(|| format!("binding {}:{}", cfg.http.host, cfg.http.port))?
        .run();
    tracing::info!(host = %cfg.http.host, port = cfg.http.port, "HTTP server listening (/mcp, /health, /metrics)");
    if stdio {
        let identity = stdio_identity(&pool).await?;
        let (server, handle) = (mcp_for_stdio, server.handle());
        actix_rt::spawn(async move {
            if let Err(e) = server
                .serve_stdio(tokio::io::stdin(), tokio::io::stdout(), identity)
                .await
            {
                tracing::error!(error = %e, "MCP stdio transport failed");
            }
            tracing::info!("stdin closed: stopping");
            handle.stop(true).await;
        });
    }
    actix_rt::spawn(reopen_on_sighup(engine.eve.clone()));
    actix_rt::spawn(stop_on_signal(server.handle()));
    server.await.context("HTTP server")?;

    tracing::info!("shutting down: stopping capture and draining the engine");
    // Let the last audit batch reach the store actor; the engine drains and flushes behind it.
    actix_rt::time::sleep(netmonitor_tools::backing::AUDIT_FLUSH * 2).await;
    engine.stop().await;
    drop(store);
    Ok(())
}

/// Starts capture on the configured interfaces and files.
fn start_capture(cfg: &Config, engine: &mut Engine) -> anyhow::Result<()> {
    let mut sources: Vec<Source> = cfg
        .capture
        .interfaces
        .iter()
        .map(|i| {
            Source::Interface(LiveConfig {
                interface: i.clone(),
                promiscuous: cfg.capture.promiscuous,
                ..LiveConfig::default()
            })
        })
        .collect();
    sources.extend(cfg.capture.pcaps.iter().cloned().map(Source::File));
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    engine
        .start_capture(&cfg.sensor, sources)
        .map_err(anyhow::Error::msg)?;
    if names.is_empty() {
        tracing::info!("no capture source configured (use --interface IF or --pcap FILE)");
    } else {
        tracing::info!(sources = ?names, "capture started");
    }
    Ok(())
}

/// The live keys the service itself applies: the log filter and MCP rate limiting.
#[derive(Default)]
struct ServiceLive {
    mcp: std::sync::OnceLock<Arc<McpServer>>,
}

impl netmonitor_tools::ServiceSettings for ServiceLive {
    fn keys(&self) -> Vec<netmonitor_runtime::LiveKey> {
        use netmonitor_runtime::LiveKey;
        vec![
            LiveKey::new(
                "log_level",
                "string",
                "Log filter: trace, debug, info, warn, error or a tracing filter",
            ),
            LiveKey::new(
                "mcp.rate_limit_enabled",
                "bool",
                "Whether per-token rate limits are enforced",
            ),
        ]
    }

    fn set(
        &self,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<netmonitor_runtime::ParamChange, String> {
        use serde_json::json;
        match key {
            "log_level" => {
                let level = value
                    .as_str()
                    .ok_or_else(|| format!("{key}: expected a string, got {value}"))?;
                let old = crate::telemetry::set_log_level(level)?;
                Ok(netmonitor_runtime::ParamChange {
                    old: json!(old),
                    new: json!(level),
                })
            }
            "mcp.rate_limit_enabled" => {
                let on = netmonitor_runtime::live::expect_bool(key, value)?;
                let mcp = self
                    .mcp
                    .get()
                    .ok_or_else(|| format!("{key}: the MCP server is not up yet"))?;
                Ok(netmonitor_runtime::ParamChange {
                    old: json!(mcp.set_rate_limits_enabled(on)),
                    new: json!(on),
                })
            }
            other => Err(format!("{other}: not a live key")),
        }
    }

    fn flush_caches(&self) -> serde_json::Value {
        let results = self.mcp.get().map_or(0, |m| m.flush_caches());
        serde_json::json!({"mcp_tool_results": results, "mcp_token_lookups": "cleared"})
    }
}

/// Tells MCP subscribers that the inventory resources changed, at most once a second; a live
/// view on the bus that may skip batches.
struct ResourceNotifier {
    mcp: Arc<McpServer>,
    last: Option<Instant>,
}

impl Actor for ResourceNotifier {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4);
    }
}

impl Handler<EventBatch> for ResourceNotifier {
    type Result = ();
    fn handle(&mut self, _: EventBatch, _ctx: &mut Context<Self>) {
        if self
            .last
            .is_none_or(|t| t.elapsed() >= RESOURCE_NOTICE_INTERVAL)
        {
            self.last = Some(Instant::now());
            for uri in INVENTORY_RESOURCES {
                self.mcp.notify_resource_updated(uri);
            }
        }
    }
}

impl Handler<Drain> for ResourceNotifier {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

/// Reopens the EVE file on SIGHUP (after logrotate moved it away), as Suricata does.
async fn reopen_on_sighup(eve: Option<Addr<netmonitor_eve::EveSink>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Some(eve) = eve else { return };
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    while hup.recv().await.is_some() {
        match eve.send(netmonitor_eve::Reopen).await {
            Ok(Ok(())) => tracing::info!("SIGHUP: EVE file reopened"),
            Ok(Err(e)) => tracing::error!(error = %e, "SIGHUP: cannot reopen the EVE file"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: EVE sink gone"),
        }
    }
}

/// Stops the HTTP server gracefully on SIGINT or SIGTERM; the rest of the shutdown follows it.
async fn stop_on_signal(handle: actix_web::dev::ServerHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the service with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
    }
    handle.stop(true).await;
}

/// Who a stdio client acts as: the token in NETMONITOR_TOKEN (checked like a Bearer token),
/// otherwise an anonymous read_only identity.
async fn stdio_identity(pool: &DbPool) -> anyhow::Result<Identity> {
    let Ok(secret) = std::env::var("NETMONITOR_TOKEN") else {
        tracing::info!("MCP over stdio as read_only (set NETMONITOR_TOKEN to act as a token)");
        return Ok(Identity::anonymous(Scope::ReadOnly));
    };
    let info = PgTokenStore::new(pool.clone())
        .lookup(netmonitor_mcp::auth::hash_token(secret.trim()))
        .await
        .ok_or_else(|| anyhow::anyhow!("NETMONITOR_TOKEN is not a known token"))?;
    info.check(chrono::Utc::now().timestamp())
        .map_err(|e| anyhow::anyhow!("NETMONITOR_TOKEN: {}", e.describe()))?;
    Ok(Identity::from_token(info))
}

/// Keeps the /health database flag current without putting a query on each /health request.
async fn probe_database(pool: DbPool, up: Arc<AtomicBool>) {
    loop {
        let ok = match tokio::time::timeout(Duration::from_secs(3), pool.get()).await {
            Ok(Ok(mut conn)) => diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .await
                .is_ok(),
            _ => false,
        };
        if up.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database unreachable; events are spooled to disk");
            }
        }
        actix_rt::time::sleep(DB_PROBE_INTERVAL).await;
    }
}
