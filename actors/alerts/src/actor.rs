//! The alert stage actor: receives every detector's alerts, applies the [`AlertPolicy`], and
//! publishes what passes on the bus. Supervised; its policy (whitelist, switches, window) is
//! kept across a restart because the actor is rebuilt from the same shared settings.

use crate::policy::{AlertPolicy, PolicyCounters, SuppressedAlerts, Verdict};
use crate::suppress::{AlertSubject, ServiceProvider, WhitelistEntry};
use actix::prelude::*;
use netmonitor_common::{Event, EventKind, Timestamp};
use netmonitor_runtime::live::{expect_bool, expect_u64};
use netmonitor_runtime::{
    contained, injected_fault, note_restart, AlertedFlows, Bus, Drain, InjectFault, LiveKey,
    ParamChange, Ping, RaiseAlerts, SetParam, Topic,
};
use serde::Serialize;
use serde_json::json;
use std::sync::{Arc, Mutex};

const NAME: &str = "alert_stage";
/// Alert batches the mailbox holds before detectors wait.
const MAILBOX: usize = 256;
/// An alert whose packet time is within this of the wall clock came from live capture: its
/// packet-to-stage latency is measured.
const LIVE_WINDOW_US: i64 = 60_000_000;

/// Replaces the whitelist (loaded from the database at start and after every change).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetWhitelist(pub Vec<WhitelistEntry>);

/// Replaces the service providers (loaded from the database at start and after every change).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetProviders(pub Vec<ServiceProvider>);

/// Asks what would happen to an alert with this subject (`test_alert_suppression`); counts
/// nothing.
#[derive(Message, Debug)]
#[rtype(result = "SuppressionAnswer")]
pub struct TestSuppression(pub AlertSubject);

/// The answer to [`TestSuppression`].
#[derive(Clone, Debug, Serialize)]
pub struct SuppressionAnswer {
    /// `raised`, `whitelisted`, `provider_suppressed` or `kind_disabled`.
    pub outcome: &'static str,
    /// The whitelist entry that covers it.
    pub whitelist_entry: Option<WhitelistEntry>,
    /// The service provider at its far end (suppressing it, or lowering its severity).
    pub service_provider: Option<ServiceProvider>,
    /// What suppressed alerts become (`drop` or `keep`).
    pub suppressed_alerts: SuppressedAlerts,
}

/// Asks for the stage's figures.
#[derive(Message, Debug)]
#[rtype(result = "AlertStageStats")]
pub struct GetAlertStats;

/// What the stage did so far, and its settings.
#[derive(Clone, Debug, Serialize)]
pub struct AlertStageStats {
    /// Counters by kind, severity, whitelist entry, duplicates and switched-off kinds.
    pub counters: PolicyCounters,
    /// Entries of the whitelist in force.
    pub whitelist_entries: usize,
    /// Service providers in force.
    pub service_providers: usize,
    /// What suppressed alerts become.
    pub suppressed_alerts: SuppressedAlerts,
    /// Dedup window in seconds (0 = off).
    pub dedup_window_secs: u64,
    /// Kinds switched off.
    pub disabled_kinds: Vec<String>,
}

/// The stage. The policy lives in a shared cell so that a restart keeps it.
pub struct AlertStage {
    policy: Arc<Mutex<AlertPolicy>>,
    bus: Arc<Bus>,
    alerted: Arc<AlertedFlows>,
}

impl AlertStage {
    /// A stage publishing on `bus`, marking alerted flows in `alerted`.
    pub fn new(policy: Arc<Mutex<AlertPolicy>>, bus: Arc<Bus>, alerted: Arc<AlertedFlows>) -> Self {
        AlertStage {
            policy,
            bus,
            alerted,
        }
    }

    /// The keys this stage changes at run time.
    pub fn live_keys() -> Vec<LiveKey> {
        let mut keys = vec![LiveKey::new(
            "detection.alerts.dedup_window_secs",
            "integer",
            "An alert identical to one raised less than this many seconds before (same signature, endpoints and port; packet time) is suppressed; 0 = off",
        )];
        keys.extend(netmonitor_common::mitre::ALERT_KINDS.iter().map(|(k, _)| {
            LiveKey::new(
                format!("detection.{k}.enabled"),
                "bool",
                "Whether alerts of this kind are raised",
            )
        }));
        keys
    }

    fn policy(&self) -> std::sync::MutexGuard<'_, AlertPolicy> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Actor for AlertStage {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for AlertStage {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<RaiseAlerts> for AlertStage {
    type Result = ();
    fn handle(&mut self, msg: RaiseAlerts, ctx: &mut Context<Self>) {
        let (policy, bus, alerted) = (self.policy.clone(), self.bus.clone(), self.alerted.clone());
        contained::<Self, _>(NAME, ctx, move || {
            let mut passed: Vec<Event> = Vec::with_capacity(msg.0.len());
            let mut kept: Vec<Event> = Vec::new();
            {
                let mut p = policy.lock().unwrap_or_else(|e| e.into_inner());
                let keep = p.suppressed_alerts() == SuppressedAlerts::Keep;
                for mut ev in msg.0 {
                    match p.admit(&mut ev) {
                        Verdict::Pass => passed.push(ev),
                        Verdict::Whitelisted(_) => {
                            metrics::counter!("netmonitor_alerts_suppressed_total", "reason" => "whitelist").increment(1);
                            if keep {
                                kept.push(ev);
                            }
                        }
                        Verdict::Provider(_) => {
                            metrics::counter!("netmonitor_alerts_suppressed_total", "reason" => "service_provider").increment(1);
                            if keep {
                                kept.push(ev);
                            }
                        }
                        Verdict::Duplicate => {
                            metrics::counter!("netmonitor_alerts_suppressed_total", "reason" => "duplicate").increment(1)
                        }
                        Verdict::Disabled => {
                            metrics::counter!("netmonitor_alerts_suppressed_total", "reason" => "disabled").increment(1)
                        }
                    }
                }
            }
            if !kept.is_empty() {
                bus.publish(Topic::Suppressed, Arc::new(kept));
            }
            if passed.is_empty() {
                return;
            }
            let now = Timestamp::now().0;
            for ev in &passed {
                alerted.mark(ev.header.flow_id);
                if let EventKind::Alert(a) = &ev.kind {
                    metrics::counter!(
                        "netmonitor_alerts_total",
                        "threat_type" => a.threat_type.clone(),
                        "severity" => a.severity.to_string()
                    )
                    .increment(1);
                }
                let lag = now - ev.header.ts.0;
                if (0..LIVE_WINDOW_US).contains(&lag) {
                    metrics::histogram!("netmonitor_alert_latency_seconds")
                        .record(lag as f64 / 1e6);
                }
            }
            bus.publish(Topic::Alerts, Arc::new(passed));
        });
    }
}

impl Handler<SetWhitelist> for AlertStage {
    type Result = ();
    fn handle(&mut self, msg: SetWhitelist, _ctx: &mut Context<Self>) {
        tracing::info!(entries = msg.0.len(), "alert stage whitelist replaced");
        self.policy().set_whitelist(msg.0);
    }
}

impl Handler<SetProviders> for AlertStage {
    type Result = ();
    fn handle(&mut self, msg: SetProviders, _ctx: &mut Context<Self>) {
        tracing::info!(
            providers = msg.0.len(),
            "alert stage service providers replaced"
        );
        self.policy().set_providers(msg.0);
    }
}

impl Handler<TestSuppression> for AlertStage {
    type Result = MessageResult<TestSuppression>;
    fn handle(&mut self, msg: TestSuppression, _ctx: &mut Context<Self>) -> Self::Result {
        let p = self.policy();
        let (verdict, provider) = p.would(&msg.0);
        let whitelist_entry = match verdict {
            Verdict::Whitelisted(_) => p.whitelisted(&msg.0).cloned(),
            _ => None,
        };
        MessageResult(SuppressionAnswer {
            outcome: match verdict {
                Verdict::Whitelisted(_) => "whitelisted",
                Verdict::Provider(_) => "provider_suppressed",
                Verdict::Disabled => "kind_disabled",
                Verdict::Pass | Verdict::Duplicate => "raised",
            },
            whitelist_entry,
            service_provider: provider.cloned(),
            suppressed_alerts: p.suppressed_alerts(),
        })
    }
}

impl Handler<GetAlertStats> for AlertStage {
    type Result = MessageResult<GetAlertStats>;
    fn handle(&mut self, _: GetAlertStats, _ctx: &mut Context<Self>) -> Self::Result {
        let p = self.policy();
        let disabled_kinds = netmonitor_common::mitre::ALERT_KINDS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !p.is_enabled(k))
            .map(str::to_string)
            .collect();
        MessageResult(AlertStageStats {
            counters: p.counters().clone(),
            whitelist_entries: p.whitelist().len(),
            service_providers: p.providers().len(),
            suppressed_alerts: p.suppressed_alerts(),
            dedup_window_secs: p.dedup_window_secs(),
            disabled_kinds,
        })
    }
}

impl Handler<SetParam> for AlertStage {
    type Result = Result<ParamChange, String>;
    fn handle(&mut self, msg: SetParam, _ctx: &mut Context<Self>) -> Self::Result {
        let mut p = self.policy();
        if msg.key == "detection.alerts.dedup_window_secs" {
            let new = expect_u64(&msg.key, &msg.value)?;
            let old = p.dedup_window_secs();
            p.set_dedup_window_secs(new);
            return Ok(ParamChange {
                old: json!(old),
                new: json!(new),
            });
        }
        let kind = msg
            .key
            .strip_prefix("detection.")
            .and_then(|k| k.strip_suffix(".enabled"))
            .filter(|k| netmonitor_common::mitre::techniques_for(k).is_some())
            .ok_or_else(|| format!("{}: not a key of the alert stage", msg.key))?;
        let on = expect_bool(&msg.key, &msg.value)?;
        let was = p.set_enabled(kind, on);
        Ok(ParamChange {
            old: json!(was),
            new: json!(on),
        })
    }
}

impl Handler<Drain> for AlertStage {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

impl Handler<Ping> for AlertStage {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for AlertStage {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
