//! Which database to use, bringing it up (private cluster or external server), migrations, and
//! the async connection pool that query paths (MCP tools, CLI) share.

use crate::cluster::PrivateCluster;
use crate::StoreError;
use diesel::Connection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The schema, compiled into the binary and applied at start and by `netmonitor migrate`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The pool type every async query path uses.
pub type DbPool = Pool<AsyncPgConnection>;

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbTarget {
    /// An external server (DATABASE_URL or DB_* variables), as a libpq connection string or URL.
    External(String),
    /// The private cluster under this data directory.
    Private {
        /// The data directory (`<data_dir>/pg` holds the cluster).
        data_dir: PathBuf,
        /// Whether the cluster syncs to disk (off only for tests and benchmarks).
        fsync: bool,
    },
}

/// An opened database: its connection string and, for the embedded default, the cluster.
#[derive(Debug)]
pub struct Database {
    conninfo: String,
    cluster: Option<Arc<Mutex<PrivateCluster>>>,
}

impl Database {
    /// Brings the target up (starting the private cluster when needed) and applies migrations.
    pub fn open(target: &DbTarget) -> Result<Self, StoreError> {
        let (conninfo, cluster) = match target {
            DbTarget::External(url) => (url.clone(), None),
            DbTarget::Private { data_dir, fsync } => {
                let mut cluster = PrivateCluster::new(data_dir, *fsync)?;
                let conninfo = cluster.ensure_running()?;
                (conninfo, Some(cluster))
            }
        };
        let db = Database {
            conninfo,
            cluster: cluster.map(|c| Arc::new(Mutex::new(c))),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = diesel::PgConnection::establish(&self.conninfo)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), "database migrations applied");
        }
        Ok(applied.len())
    }

    /// The libpq connection string.
    pub fn conninfo(&self) -> &str {
        &self.conninfo
    }

    /// The private cluster, when this is the embedded default.
    pub fn cluster_mut(&mut self) -> Option<MutexGuard<'_, PrivateCluster>> {
        self.cluster
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// For the embedded default, starts a thread that checks every `interval` that the private
    /// cluster still runs and starts it again when it does not (with backoff, counted, logged):
    /// the service owns that cluster, so nobody else would. `None` for an external database,
    /// which is only ever reconnected.
    pub fn keep_alive(&self, interval: Duration) -> Option<ClusterKeeper> {
        let cluster = self.cluster.clone()?;
        let shared = Arc::new(KeeperShared {
            stop: Mutex::new(false),
            wake: std::sync::Condvar::new(),
            alive: Arc::new(AtomicBool::new(true)),
        });
        let state = shared.clone();
        let join = std::thread::Builder::new()
            .name("pg-keeper".into())
            .spawn(move || keep(&cluster, &state, interval))
            .ok()?;
        Some(ClusterKeeper {
            shared,
            join: Some(join),
        })
    }

    /// Builds the async pool. Call it on the runtime that lives as long as the pool's users:
    /// a diesel-async connection dies with the runtime that opened it.
    pub fn pool(&self, max_size: usize, statement_timeout_ms: u64) -> Result<DbPool, StoreError> {
        query_pool(&self.conninfo, max_size, statement_timeout_ms)
    }

    /// Stops the private cluster if this process started it.
    pub fn shutdown(&mut self) -> Result<(), StoreError> {
        match self.cluster_mut() {
            Some(mut c) => c.stop(),
            None => Ok(()),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "stopping the private PostgreSQL cluster failed");
        }
    }
}

/// Settings of every tool connection, for short analytic reads: no JIT (compiling a plan costs
/// more than these queries run), room for their hash aggregates in memory, and index scans
/// priced for SSDs (the rollups' day ranges are then read through their indexes).
const QUERY_SESSION: &str = "SET jit = off; SET work_mem = '64MB'; SET random_page_cost = 1.1";

/// The async pool the tools query through: every connection gets `statement_timeout` (0 = none),
/// so that no tool call can hold a connection or the database for long, and `QUERY_SESSION`.
pub fn query_pool(
    conninfo: &str,
    max_size: usize,
    statement_timeout_ms: u64,
) -> Result<DbPool, StoreError> {
    use diesel_async::pooled_connection::ManagerConfig;
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut c = AsyncPgConnection::establish(&url).await?;
            c.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; {QUERY_SESSION}"
            ))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(c)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(conninfo, config);
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// Longest wait between two restart attempts of a cluster that will not start.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

struct KeeperShared {
    stop: Mutex<bool>,
    wake: std::sync::Condvar,
    alive: Arc<AtomicBool>,
}

/// The thread that keeps the private cluster running; stopped when dropped (before the
/// cluster itself is stopped).
pub struct ClusterKeeper {
    shared: Arc<KeeperShared>,
    join: Option<JoinHandle<()>>,
}

impl ClusterKeeper {
    /// Whether the postmaster was alive at the last check.
    pub fn alive(&self) -> bool {
        self.shared.alive.load(Ordering::Relaxed)
    }

    /// The flag behind [`ClusterKeeper::alive`], for /health.
    pub fn alive_flag(&self) -> Arc<AtomicBool> {
        self.shared.alive.clone()
    }
}

impl Drop for ClusterKeeper {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn keep(cluster: &Mutex<PrivateCluster>, state: &KeeperShared, interval: Duration) {
    let mut wait = interval;
    loop {
        {
            let stop = state.stop.lock().unwrap_or_else(|p| p.into_inner());
            let (stop, _) = state
                .wake
                .wait_timeout_while(stop, wait, |s| !*s)
                .unwrap_or_else(|p| p.into_inner());
            if *stop {
                return;
            }
        }
        let mut c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        if c.is_running() {
            state.alive.store(true, Ordering::Relaxed);
            wait = interval;
            continue;
        }
        if state.alive.swap(false, Ordering::Relaxed) {
            tracing::error!("the private PostgreSQL cluster stopped; starting it again");
            metrics::gauge!("netmonitor_store_cluster_up").set(0.0);
        }
        let started = std::time::Instant::now();
        match c.restart() {
            Ok(()) => {
                state.alive.store(true, Ordering::Relaxed);
                wait = interval;
                metrics::counter!("netmonitor_store_cluster_restarts_total").increment(1);
                metrics::gauge!("netmonitor_store_cluster_up").set(1.0);
                tracing::warn!(
                    seconds = started.elapsed().as_secs_f64(),
                    "private PostgreSQL cluster restarted"
                );
            }
            Err(e) => {
                wait = (wait * 2).min(MAX_RESTART_BACKOFF);
                metrics::counter!("netmonitor_store_cluster_restart_failures_total").increment(1);
                tracing::error!(error = %e, retry_in_s = wait.as_secs_f64(), "cannot restart the private PostgreSQL cluster");
            }
        }
    }
}

/// Builds a libpq connection string from the seed's DB_* variables' values.
pub fn conninfo_from_parts(
    host: &str,
    port: u16,
    name: &str,
    user: &str,
    password: Option<&str>,
) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut s = format!(
        "host={} port={} dbname={} user={}",
        quote(host),
        port,
        quote(name),
        quote(user)
    );
    if let Some(p) = password {
        s.push_str(&format!(" password={}", quote(p)));
    }
    s
}
