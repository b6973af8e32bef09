//! PostgreSQL storage for NetMonitor: the embedded private cluster, migrations, the async query
//! pool, and the event writer (batched `COPY`, with a disk spool that rides out database outages
//! so that no event is lost).
#![deny(missing_docs)]

pub mod actor;
pub mod audit;
pub mod cluster;
pub mod commands;
pub mod copy;
pub mod db;
pub mod deadletter;
pub mod devices;
pub mod intel;
pub mod partitions;
pub mod queries;
pub mod risk;
pub mod rollup;
pub mod rows;
pub mod schema;
pub mod soar;
pub mod spool;
pub mod summaries;
pub mod suppression;
pub mod testing;
pub mod tls_sums;
pub mod tokens;
pub mod writer;

pub use audit::AuditRecord;
pub use db::{Database, DbPool, DbTarget};
pub use writer::{StoreConfig, StoreHandle, StoreItem, StoreStats};

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Managing the private cluster failed.
    #[error("private PostgreSQL cluster: {0}")]
    Cluster(String),
    /// Connecting failed.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The pool could not be built or lend a connection.
    #[error("database pool: {0}")]
    Pool(String),
    /// Spool I/O failed.
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    /// A caller passed something unusable.
    #[error("{0}")]
    Invalid(String),
}
