//! Wiring of the MCP server to the rest of the engine: the PostgreSQL-backed token store and the
//! audit sink that batches audit rows into the store writer without touching the request path.

use actix::Addr;
use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use netmonitor_mcp::auth::BoxFuture;
use netmonitor_mcp::{AuditEntry, AuditSink, Scope, TokenInfo, TokenStore};
use netmonitor_store::actor::{PersistAudit, StoreActor};
use netmonitor_store::writer::AuditRecord;
use netmonitor_store::DbPool;
use std::time::{Duration, Instant};

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
}

/// Queues audit entries for a background thread that batches them and hands each batch to the
/// supervised store actor. `record` never blocks: if the queue is ever full the entry is
/// counted as dropped.
pub struct StoreAuditSink {
    tx: Sender<AuditRecord>,
}

impl StoreAuditSink {
    /// Starts the batching thread.
    pub fn start(store: Addr<StoreActor>) -> std::io::Result<Self> {
        let (tx, rx) = bounded(AUDIT_QUEUE);
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || batch_audit(rx, store))?;
        Ok(StoreAuditSink { tx })
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
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(row) {
            metrics::counter!("netmonitor_audit_dropped_total").increment(1);
            tracing::error!("audit queue full; an audit record was dropped");
        }
    }
}

fn batch_audit(rx: Receiver<AuditRecord>, store: Addr<StoreActor>) {
    let mut buf = Vec::with_capacity(AUDIT_BATCH);
    let mut oldest: Option<Instant> = None;
    loop {
        let wait = oldest.map_or(Duration::from_secs(3600), |t| {
            AUDIT_FLUSH.saturating_sub(t.elapsed())
        });
        let done = match rx.recv_timeout(wait) {
            Ok(r) => {
                oldest.get_or_insert_with(Instant::now);
                buf.push(r);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !buf.is_empty()
            && (done
                || buf.len() >= AUDIT_BATCH
                || oldest.is_some_and(|t| t.elapsed() >= AUDIT_FLUSH))
        {
            store.do_send(PersistAudit(std::mem::replace(
                &mut buf,
                Vec::with_capacity(AUDIT_BATCH),
            )));
            oldest = None;
        }
        if done {
            return;
        }
    }
}
