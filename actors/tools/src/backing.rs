//! What the MCP server stands on: the PostgreSQL-backed token store and the audit sink that
//! batches audit rows into the store actor without touching the request path.

use actix::Addr;
use chrono::{DateTime, Utc};
use netmonitor_mcp::auth::BoxFuture;
use netmonitor_mcp::{AuditEntry, AuditSink, Scope, TokenInfo, TokenStore};
use netmonitor_store::actor::{PersistAudit, StoreActor};
use netmonitor_store::AuditRecord;
use netmonitor_store::DbPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Audit records buffered between the HTTP workers and the audit thread.
const AUDIT_QUEUE: usize = 65_536;
/// Audit rows handed to the store at once at most.
const AUDIT_BATCH: usize = 1024;
/// Longest time an audit row waits before it is handed to the store.
pub const AUDIT_FLUSH: Duration = Duration::from_millis(100);

/// Looks tokens up by hash in `api_tokens` (the MCP server caches the answers).
pub struct PgTokenStore {
    pool: DbPool,
}

impl PgTokenStore {
    /// A token store over the shared pool.
    pub fn new(pool: DbPool) -> Self {
        PgTokenStore { pool }
    }
}

impl TokenStore for PgTokenStore {
    fn lookup(&self, token_hash: String) -> BoxFuture<Option<TokenInfo>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut conn = match pool.get().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "token lookup: database unavailable");
                    return None;
                }
            };
            let row = match netmonitor_store::tokens::find_by_hash(&mut conn, &token_hash).await {
                Ok(r) => r?,
                Err(e) => {
                    tracing::warn!(error = %e, "token lookup failed");
                    return None;
                }
            };
            let scope: Scope = row.scope.parse().ok()?;
            let rate = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
            Some(TokenInfo {
                id: row.id,
                name: row.name,
                scope,
                rate_per_minute: rate(row.rate_per_minute),
                rate_per_hour: rate(row.rate_per_hour),
                rate_per_day: rate(row.rate_per_day),
                expires_at: row.expires_at.map(|t| t.timestamp()),
                revoked: row.revoked_at.is_some(),
            })
        })
    }

    fn unusable(&self, ids: Vec<i64>) -> BoxFuture<Vec<i64>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut conn = match pool.get().await {
                Ok(c) => c,
                // unreachable database: keep sessions; requests re-check within a second
                Err(_) => return Vec::new(),
            };
            netmonitor_store::tokens::unusable(&mut conn, &ids)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "token re-check failed");
                    Vec::new()
                })
        })
    }
}

/// Collects audit entries in a shared buffer that a background thread hands, in batches, to the
/// supervised store actor. `record` never blocks or wakes anyone on the common path (a push
/// under a short lock; the thread polls every [`AUDIT_FLUSH`] and is woken early only when a
/// full batch is waiting). If the buffer ever reaches [`AUDIT_QUEUE`] the entry is counted as
/// dropped.
pub struct StoreAuditSink {
    shared: Arc<AuditBuffer>,
}

struct AuditBuffer {
    rows: Mutex<Vec<AuditRecord>>,
    batch_ready: Condvar,
    closed: AtomicBool,
}

impl StoreAuditSink {
    /// Starts the batching thread.
    pub fn start(store: Addr<StoreActor>) -> std::io::Result<Self> {
        let shared = Arc::new(AuditBuffer {
            rows: Mutex::new(Vec::with_capacity(AUDIT_BATCH)),
            batch_ready: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || batch_audit(&worker, &store))?;
        Ok(StoreAuditSink { shared })
    }
}

impl Drop for StoreAuditSink {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.batch_ready.notify_one();
    }
}

impl AuditSink for StoreAuditSink {
    fn record(&self, e: AuditEntry) {
        let row = AuditRecord {
            ts: DateTime::<Utc>::from_timestamp_micros(e.ts.0).unwrap_or_default(),
            token_id: e.token_id,
            token_name: Some(e.token_name),
            method: e.method,
            tool: e.tool,
            status: e.status,
            http_status: i32::from(e.http_status),
            duration_us: i64::try_from(e.duration_us).unwrap_or(i64::MAX),
            client_addr: e.client_addr,
            user_agent: e.user_agent,
            session_id: e.session_id,
            error: e.error,
            arguments: e.arguments,
        };
        let mut rows = self.shared.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.len() >= AUDIT_QUEUE {
            drop(rows);
            metrics::counter!("netmonitor_audit_dropped_total").increment(1);
            tracing::error!("audit queue full; an audit record was dropped");
            return;
        }
        rows.push(row);
        if rows.len() == AUDIT_BATCH {
            self.shared.batch_ready.notify_one();
        }
    }
}

fn batch_audit(shared: &AuditBuffer, store: &Addr<StoreActor>) {
    loop {
        let closed = shared.closed.load(Ordering::Acquire);
        let batch = {
            let mut rows = shared.rows.lock().unwrap_or_else(|p| p.into_inner());
            if rows.len() < AUDIT_BATCH && !closed {
                rows = shared
                    .batch_ready
                    .wait_timeout(rows, AUDIT_FLUSH)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            std::mem::replace(&mut *rows, Vec::with_capacity(AUDIT_BATCH))
        };
        // bounded hand-off: the store actor's mailbox has a capacity, do_send would ignore it
        if !batch.is_empty()
            && !netmonitor_runtime::send_blocking(&store.clone().recipient(), PersistAudit(batch))
        {
            metrics::counter!("netmonitor_audit_dropped_total").increment(1);
            tracing::error!("store actor gone: an audit batch was dropped");
        }
        if closed {
            return;
        }
    }
}
