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
    cluster: Option<PrivateCluster>,
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
        let db = Database { conninfo, cluster };
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
    pub fn cluster_mut(&mut self) -> Option<&mut PrivateCluster> {
        self.cluster.as_mut()
    }

    /// Builds the async pool. Call it on the runtime that lives as long as the pool's users:
    /// a diesel-async connection dies with the runtime that opened it.
    pub fn pool(&self, max_size: usize) -> Result<DbPool, StoreError> {
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(self.conninfo.clone());
        Pool::builder(manager)
            .max_size(max_size)
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Stops the private cluster if this process started it.
    pub fn shutdown(&mut self) -> Result<(), StoreError> {
        match self.cluster.as_mut() {
            Some(c) => c.stop(),
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
