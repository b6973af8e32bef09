//! A throwaway PostgreSQL for tests and benchmarks: a private cluster in a temporary directory
//! (unix socket only, fsync off), removed when dropped. Tests run in parallel without clashing
//! because each has its own directory and socket.

use crate::{Database, DbTarget, StoreError};

/// A private cluster that lives as long as this value.
pub struct TestDatabase {
    /// The opened, migrated database.
    pub db: Database,
    dir: tempfile::TempDir,
}

impl TestDatabase {
    /// Creates, starts and migrates a fresh cluster.
    pub fn start() -> Result<Self, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix("nm-pg-")
            .tempdir()
            .map_err(StoreError::Spool)?;
        let db = Database::open(&DbTarget::Private {
            data_dir: dir.path().to_owned(),
            fsync: false,
        })?;
        Ok(TestDatabase { db, dir })
    }

    /// The temporary directory (spool dirs of tests go below it too).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The connection string.
    pub fn conninfo(&self) -> String {
        self.db.conninfo().to_owned()
    }

    /// Counts rows of a table with plain SQL.
    pub fn count(&self, table: &str) -> Result<i64, StoreError> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(self.db.conninfo())?;
        let n: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result(&mut conn)?;
        Ok(n.n)
    }
}
