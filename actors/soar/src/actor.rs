//! The SOAR actor: takes alerts after the alert stage (risk thresholds and chain stages are
//! alerts too), matches them against the playbooks, checks the conditions that need other
//! actors, proposes actions (stored once per idempotency key; those a playbook lets run
//! without approval run at once), expires stale approvals, reloads playbooks when their
//! directory changes, and after a restart runs what was approved but not yet run.

use crate::core::SoarCore;
use crate::plan::{self, Planner, Proposal};
use crate::playbook::{Conditions, Playbook};
use actix::prelude::*;
use diesel::Connection;
use netmonitor_alerts::{AlertStage, AlertSubject, TestSuppression};
use netmonitor_common::{Event, EventKind};
use netmonitor_runtime::{
    contained, injected_fault, note_restart, Drain, EventBatch, InjectFault, Ping,
};
use netmonitor_store::soar::{self as db, NewAction};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAME: &str = "soar";
/// Alert batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;
/// Seconds between expiry sweeps.
const EXPIRY_SECS: u64 = 5;

/// Loads the playbooks again now; answers how many loaded and the errors.
#[derive(Message)]
#[rtype(result = "(usize, Vec<crate::playbook::LoadError>)")]
pub struct ReloadPlaybooks;

/// The actor.
pub struct SoarActor {
    core: Arc<SoarCore>,
    planner: Planner,
    alert_stage: Addr<AlertStage>,
    stamp: Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)>,
    recovered: bool,
}

impl SoarActor {
    /// An actor around `core`, asking `alert_stage` about whitelists.
    pub fn new(core: Arc<SoarCore>, alert_stage: Addr<AlertStage>) -> Self {
        SoarActor {
            core,
            planner: Planner::default(),
            alert_stage,
            stamp: Vec::new(),
            recovered: false,
        }
    }

    fn reload_if_changed(&mut self) {
        let Some(dir) = &self.core.cfg.playbooks_dir else {
            return;
        };
        let stamp = crate::playbook::dir_stamp(dir);
        if stamp != self.stamp {
            self.stamp = stamp;
            self.core.reload();
        }
    }

    /// Stores proposals (off this thread) and runs those that need no approval.
    fn store(&self, proposals: Vec<Proposal>, arrived: Instant) {
        let core = self.core.clone();
        let expiry = chrono::Duration::seconds(core.cfg.approval_expiry_secs as i64);
        actix::spawn(async move {
            let c = core.clone();
            let stored = tokio::task::spawn_blocking(move || {
                let mut conn = diesel::PgConnection::establish(&c.db).map_err(|e| e.to_string())?;
                let mut rows = Vec::new();
                for p in proposals {
                    let needs = p.action.needs_approval();
                    let new = NewAction {
                        key: p.key,
                        playbook: p.playbook,
                        action_index: p.index as i16,
                        action_type: p.action.kind.as_str().to_owned(),
                        target: p.target,
                        needs_approval: needs,
                        approver_scope: p.approver_scope,
                        proposed: p.proposed,
                        evidence: p.evidence,
                        expires_at: needs.then(|| chrono::Utc::now() + expiry),
                    };
                    if let Some(row) = db::propose(&mut conn, &new).map_err(|e| e.to_string())? {
                        rows.push(row);
                    }
                }
                Ok::<_, String>(rows)
            })
            .await;
            let rows = match stored {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "soar: proposals not stored");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "soar: store task failed");
                    return;
                }
            };
            let mut pending = false;
            for row in rows {
                metrics::histogram!("netmonitor_soar_trigger_to_pending_seconds")
                    .record(arrived.elapsed().as_secs_f64());
                if row.state == "pending" {
                    pending = true;
                    tracing::info!(id = row.id, playbook = %row.playbook, action = %row.action_type, target = %row.target, "soar: action waits for approval");
                } else {
                    core.run(row).await;
                }
            }
            if pending {
                core.pending_changed();
            }
        });
    }
}

/// Whether the conditions that need other actors hold for `ip`.
async fn conditions_hold(
    core: Arc<SoarCore>,
    stage: Addr<AlertStage>,
    c: Conditions,
    ip: IpAddr,
    kind: String,
) -> bool {
    if c.unless_whitelisted {
        let subject = AlertSubject {
            src: ip,
            dst: ip,
            port: 0,
            domain: None,
            kind,
        };
        match stage.send(TestSuppression(subject)).await {
            Ok(a) if a.whitelist_entry.is_some() => return false,
            Ok(_) => {}
            Err(_) => return false, // cannot tell: do not act
        }
    }
    if !c.criticality.is_empty() {
        let Some(risk) = &core.risk else { return false };
        let crit = risk
            .send(netmonitor_risk::QueryRisk::new(move |book| {
                serde_json::json!(book.asset(&ip).map_or("medium", |a| book.criticality(a)))
            }))
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "medium".into());
        if !c.criticality.contains(&crit) {
            return false;
        }
    }
    if !c.templates.is_empty() {
        let Some(devices) = &core.devices else {
            return false;
        };
        let template = devices
            .send(netmonitor_devices::QueryDevices::new(move |book| {
                serde_json::json!(book.by_ip(ip).and_then(|d| d.template.clone()))
            }))
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if !template.is_some_and(|t| c.templates.contains(&t)) {
            return false;
        }
    }
    true
}

impl Actor for SoarActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.reload_if_changed();
        ctx.run_interval(
            Duration::from_secs(self.core.cfg.reload_check_secs.max(1)),
            |act, _| act.reload_if_changed(),
        );
        let core = self.core.clone();
        ctx.run_interval(Duration::from_secs(EXPIRY_SECS), move |_, _| {
            let core = core.clone();
            actix::spawn(async move {
                let c = core.clone();
                let n = tokio::task::spawn_blocking(move || {
                    diesel::PgConnection::establish(&c.db)
                        .map_err(|e| e.to_string())
                        .and_then(|mut conn| db::expire(&mut conn).map_err(|e| e.to_string()))
                })
                .await;
                if let Ok(Ok(n)) = n.as_ref().map(|r| r.as_ref().copied()) {
                    if n > 0 {
                        tracing::info!(expired = n, "soar: approvals expired");
                        metrics::counter!("netmonitor_soar_expired_total").increment(n as u64);
                        core.pending_changed();
                    }
                }
            });
        });
        if self.recovered {
            return;
        }
        self.recovered = true;
        let core = self.core.clone();
        actix::spawn(async move {
            let c = core.clone();
            let approved = tokio::task::spawn_blocking(move || {
                diesel::PgConnection::establish(&c.db)
                    .map_err(|e| e.to_string())
                    .and_then(|mut conn| db::recover(&mut conn).map_err(|e| e.to_string()))
            })
            .await;
            match approved {
                Ok(Ok(rows)) => {
                    for row in rows {
                        tracing::info!(
                            id = row.id,
                            "soar: running an action approved before the restart"
                        );
                        core.run(row).await;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "soar: could not look for approved actions")
                }
                Err(e) => tracing::error!(error = %e, "soar: recovery task failed"),
            }
        });
    }
}

impl Supervised for SoarActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<EventBatch> for SoarActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        let arrived = Instant::now();
        let playbooks = self.core.playbooks();
        if playbooks.is_empty() {
            return;
        }
        let mut matched: Vec<(usize, Event)> = Vec::new();
        contained::<Self, _>(NAME, ctx, || {
            for ev in msg.events.iter() {
                let EventKind::Alert(a) = &ev.kind else {
                    continue;
                };
                for (i, pb) in playbooks.iter().enumerate() {
                    if pb.enabled && plan::triggers(pb, a) && plan::in_hours(pb, ev.header.ts) {
                        matched.push((i, ev.clone()));
                    }
                }
            }
        });
        for (i, ev) in matched {
            let pb: Playbook = playbooks[i].clone();
            let EventKind::Alert(a) = &ev.kind else {
                continue;
            };
            let check = conditions_hold(
                self.core.clone(),
                self.alert_stage.clone(),
                pb.conditions.clone(),
                plan::end(&ev, pb.conditions.subject),
                a.threat_type.clone(),
            );
            ctx.spawn(check.into_actor(self).map(move |ok, act, _| {
                if !ok {
                    metrics::counter!("netmonitor_soar_suppressed_total", "reason" => "conditions")
                        .increment(1);
                    return;
                }
                let proposals = act.planner.propose(&act.core.cfg, &pb, &ev);
                if !proposals.is_empty() {
                    act.store(proposals, arrived);
                }
            }));
        }
    }
}

impl Handler<ReloadPlaybooks> for SoarActor {
    type Result = MessageResult<ReloadPlaybooks>;
    fn handle(&mut self, _: ReloadPlaybooks, _ctx: &mut Context<Self>) -> Self::Result {
        if let Some(dir) = &self.core.cfg.playbooks_dir {
            self.stamp = crate::playbook::dir_stamp(dir);
        }
        MessageResult(self.core.reload())
    }
}

impl Handler<Drain> for SoarActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

impl Handler<Ping> for SoarActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for SoarActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
