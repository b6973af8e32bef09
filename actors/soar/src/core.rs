//! What the SOAR actor and the approval tools share: the playbooks in force, the database, the
//! actors enrichment and conditions ask, and the callback that tells MCP subscribers that
//! `soar://pending` changed. Deciding and running an action lives here, not in the actor, so
//! an approval never waits behind a batch of alerts.

use crate::act;
use crate::config::SoarConfig;
use crate::playbook::{LoadError, Playbook};
use actix::Addr;
use diesel::Connection;
use netmonitor_devices::DeviceActor;
use netmonitor_risk::RiskActor;
use netmonitor_sensor::capture_actor::Capture;
use netmonitor_store::soar::{self as db, ActionRow};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

/// The resource listing pending approvals.
pub const PENDING_URI: &str = "soar://pending";

/// Something that tells subscribers a resource changed.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// Shared SOAR state.
pub struct SoarCore {
    /// Settings.
    pub cfg: SoarConfig,
    /// libpq connection string.
    pub db: String,
    /// Risk scoring (criticality conditions, enrichment).
    pub risk: Option<Addr<RiskActor>>,
    /// The device inventory (template conditions, enrichment).
    pub devices: Option<Addr<DeviceActor>>,
    /// The playbooks in force.
    pub playbooks: RwLock<Arc<Vec<Playbook>>>,
    /// Files that did not load, with why.
    pub errors: RwLock<Vec<LoadError>>,
    /// Set once the MCP server is up.
    pub notify: OnceLock<Notify>,
    /// Capture and the directory exports go to, set once capture runs.
    pub capture: OnceLock<(Capture, PathBuf)>,
}

/// Why a decision was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum DecideError {
    /// No such action.
    NotFound,
    /// It needs an admin.
    Forbidden(String),
    /// It is no longer pending (decided, expired, or run).
    NotPending(String),
    /// The database failed.
    Store(String),
}

impl std::fmt::Display for DecideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecideError::NotFound => write!(f, "no such action"),
            DecideError::Forbidden(m) | DecideError::NotPending(m) | DecideError::Store(m) => {
                write!(f, "{m}")
            }
        }
    }
}

impl SoarCore {
    /// A core with these settings and neighbours.
    pub fn new(
        cfg: SoarConfig,
        db: String,
        risk: Option<Addr<RiskActor>>,
        devices: Option<Addr<DeviceActor>>,
    ) -> Self {
        SoarCore {
            cfg,
            db,
            risk,
            devices,
            playbooks: RwLock::new(Arc::new(Vec::new())),
            errors: RwLock::new(Vec::new()),
            notify: OnceLock::new(),
            capture: OnceLock::new(),
        }
    }

    /// Tells subscribers that the pending list changed.
    pub fn pending_changed(&self) {
        if let Some(n) = self.notify.get() {
            n(PENDING_URI);
        }
    }

    /// The playbooks in force.
    pub fn playbooks(&self) -> Arc<Vec<Playbook>> {
        self.playbooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the playbook directory again; answers how many loaded and the errors.
    pub fn reload(&self) -> (usize, Vec<LoadError>) {
        let Some(dir) = &self.cfg.playbooks_dir else {
            return (0, Vec::new());
        };
        let (ok, bad) = crate::playbook::load_dir(dir, &self.cfg);
        for e in &bad {
            tracing::error!(error = %e, "soar: playbook not loaded");
        }
        tracing::info!(playbooks = ok.len(), errors = bad.len(), dir = %dir.display(), "soar: playbooks loaded");
        metrics::gauge!("netmonitor_soar_playbooks").set(ok.len() as f64);
        let n = ok.len();
        *self.playbooks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ok);
        *self.errors.write().unwrap_or_else(|e| e.into_inner()) = bad.clone();
        (n, bad)
    }

    /// Blocking: one connection to the database.
    fn conn(&self) -> Result<diesel::PgConnection, String> {
        diesel::PgConnection::establish(&self.db).map_err(|e| e.to_string())
    }

    /// Approves or rejects action `id` as `by` (token name and id, and whether they are an
    /// admin), then runs it if approved. Nothing is decided or run twice.
    pub async fn decide(
        self: &Arc<Self>,
        id: i64,
        approve: bool,
        by: String,
        by_token: Option<i64>,
        admin: bool,
        reason: Option<String>,
    ) -> Result<ActionRow, DecideError> {
        let me = self.clone();
        let decided = tokio::task::spawn_blocking(move || -> Result<ActionRow, DecideError> {
            let mut conn = me.conn().map_err(DecideError::Store)?;
            let row = db::get(&mut conn, id)
                .map_err(|e| DecideError::Store(e.to_string()))?
                .ok_or(DecideError::NotFound)?;
            if row.approver_scope == "admin" && !admin {
                return Err(DecideError::Forbidden(format!(
                    "action {id} of playbook {:?} needs an admin token to decide",
                    row.playbook
                )));
            }
            db::decide(&mut conn, id, approve, &by, by_token, reason.as_deref())
                .map_err(|e| DecideError::Store(e.to_string()))?
                .ok_or_else(|| {
                    DecideError::NotPending(format!(
                        "action {id} is {} (decided {} by {}), not pending: nothing changed",
                        row.state,
                        row.decided_at.map_or("-".into(), |t| t.to_rfc3339()),
                        row.decided_by.as_deref().unwrap_or("-")
                    ))
                })
        })
        .await
        .map_err(|e| DecideError::Store(e.to_string()))??;
        self.pending_changed();
        if !approve {
            return Ok(decided);
        }
        Ok(self.run(decided).await)
    }

    /// Runs an approved action once: `approved` → `executing` → `executed`/`failed`.
    pub async fn run(self: &Arc<Self>, row: ActionRow) -> ActionRow {
        let me = self.clone();
        let id = row.id;
        // A conditional update: of two runs of the same action, one starts it.
        let started = tokio::task::spawn_blocking(move || {
            me.conn()
                .and_then(|mut c| db::start(&mut c, id).map_err(|e| e.to_string()))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if started != Ok(true) {
            tracing::warn!(id, result = ?started, "soar: action not started (already taken, or the store failed)");
            return self.reread(row).await;
        }
        let (ok, outcome) = act::execute(self, &row).await;
        tracing::info!(id, action = %row.action_type, target = %row.target, ok, "soar: action run");
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            me.conn()
                .and_then(|mut c| db::finish(&mut c, id, ok, &outcome).map_err(|e| e.to_string()))
        })
        .await;
        self.reread(row).await
    }

    async fn reread(self: &Arc<Self>, row: ActionRow) -> ActionRow {
        let me = self.clone();
        let id = row.id;
        tokio::task::spawn_blocking(move || {
            me.conn()
                .ok()
                .and_then(|mut c| db::get(&mut c, id).ok().flatten())
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(row)
    }
}
