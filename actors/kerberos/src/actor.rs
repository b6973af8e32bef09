//! The Kerberos actor: takes the krb5 events off the bus, runs the Kerberos detections
//! (Kerberoasting, AS-REP roasting, brute force, spraying, enumeration, weak encryption and
//! downgrades) over their sliding windows, hands alerts to the alert stage and answers live
//! statistics. Supervised; windows and counters survive a restart (actix keeps the actor value).

use crate::detect::{KerberosDetector, KrbDetectConfig, KrbStats};
use actix::prelude::*;
use netmonitor_common::{Event, EventKind};
use netmonitor_runtime::live::{expect_bool, expect_u64};
use netmonitor_runtime::{
    contained, injected_fault, note_restart, send_blocking, Drain, EventBatch, InjectFault,
    LiveKey, ParamChange, Ping, RaiseAlerts, SetParam, Topic,
};
use serde_json::{json, Value};

const NAME: &str = "kerberos";
/// Event batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;
/// Prefix of this actor's live keys.
const PREFIX: &str = "detection.kerberos.";

/// Live statistics.
#[derive(Message, Debug)]
#[rtype(result = "KrbStats")]
pub struct GetKrbStats;

/// The actor.
pub struct KerberosActor {
    detector: KerberosDetector,
    alerts: Recipient<RaiseAlerts>,
}

impl KerberosActor {
    /// An actor with these thresholds, handing its alerts to `alerts` (the alert stage).
    pub fn new(cfg: KrbDetectConfig, alerts: Recipient<RaiseAlerts>) -> Self {
        KerberosActor {
            detector: KerberosDetector::new(cfg),
            alerts,
        }
    }

    /// The thresholds that may change at run time (`detection.kerberos.<field>`).
    pub fn live_keys() -> Vec<LiveKey> {
        vec![
            LiveKey::new(
                "detection.kerberos.enabled",
                "bool",
                "All Kerberos detections on or off (statistics are always kept)",
            ),
            LiveKey::new(
                "detection.kerberos.window_secs",
                "integer",
                "Sliding window of the count detections, seconds (1..604800)",
            ),
            LiveKey::new(
                "detection.kerberos.kerberoast_weak_ticket",
                "bool",
                "Alert on an RC4/DES service ticket for a service other than krbtgt",
            ),
            LiveKey::new(
                "detection.kerberos.kerberoast_distinct_spns",
                "integer",
                "Distinct SPNs one client may request per window (0 = off)",
            ),
            LiveKey::new(
                "detection.kerberos.asrep_roasting",
                "bool",
                "Alert on an AS-REP to a request without pre-authentication",
            ),
            LiveKey::new(
                "detection.kerberos.bruteforce_failures",
                "integer",
                "Pre-authentication failures for one account from one client per window (0 = off)",
            ),
            LiveKey::new(
                "detection.kerberos.spray_distinct_users",
                "integer",
                "Distinct accounts failing pre-authentication from one client per window (0 = off)",
            ),
            LiveKey::new(
                "detection.kerberos.enum_distinct_users",
                "integer",
                "Distinct unknown principals one client may ask for per window (0 = off)",
            ),
            LiveKey::new(
                "detection.kerberos.weak_encryption",
                "bool",
                "Alert on RC4/DES-only requests and weak replies to AES requests",
            ),
            LiveKey::new(
                "detection.kerberos.renewal_requests",
                "integer",
                "Ticket renewals from one client per window (0 = off)",
            ),
        ]
    }
}

impl Actor for KerberosActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for KerberosActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<EventBatch> for KerberosActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        if msg.topic != Topic::Events {
            return;
        }
        let (detector, alerts) = (&mut self.detector, &self.alerts);
        contained::<Self, _>(NAME, ctx, || {
            let mut raised = Vec::new();
            for ev in msg.events.iter() {
                let EventKind::Krb5(m) = &ev.kind else {
                    continue;
                };
                for a in detector.inspect(&ev.header, m) {
                    raised.push(Event {
                        header: ev.header.clone(),
                        kind: EventKind::Alert(a),
                    });
                }
            }
            if !raised.is_empty() && !send_blocking(alerts, RaiseAlerts(raised)) {
                tracing::error!("alert stage gone: Kerberos alerts lost");
            }
        });
    }
}

impl Handler<GetKrbStats> for KerberosActor {
    type Result = MessageResult<GetKrbStats>;
    fn handle(&mut self, _: GetKrbStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.detector.stats())
    }
}

impl Handler<SetParam> for KerberosActor {
    type Result = Result<ParamChange, String>;
    fn handle(&mut self, msg: SetParam, _ctx: &mut Context<Self>) -> Self::Result {
        let field = msg
            .key
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("{}: not a Kerberos key", msg.key))?;
        let mut cfg = self.detector.config().clone();
        let as_usize = |v: &Value| {
            expect_u64(&msg.key, v)
                .and_then(|n| usize::try_from(n).map_err(|_| format!("{}: too large", msg.key)))
        };
        let old = match field {
            "enabled" => json!(std::mem::replace(
                &mut cfg.enabled,
                expect_bool(&msg.key, &msg.value)?
            )),
            "window_secs" => json!(std::mem::replace(
                &mut cfg.window_secs,
                expect_u64(&msg.key, &msg.value)?
            )),
            "kerberoast_weak_ticket" => json!(std::mem::replace(
                &mut cfg.kerberoast_weak_ticket,
                expect_bool(&msg.key, &msg.value)?
            )),
            "kerberoast_distinct_spns" => json!(std::mem::replace(
                &mut cfg.kerberoast_distinct_spns,
                as_usize(&msg.value)?
            )),
            "asrep_roasting" => json!(std::mem::replace(
                &mut cfg.asrep_roasting,
                expect_bool(&msg.key, &msg.value)?
            )),
            "bruteforce_failures" => json!(std::mem::replace(
                &mut cfg.bruteforce_failures,
                as_usize(&msg.value)?
            )),
            "spray_distinct_users" => json!(std::mem::replace(
                &mut cfg.spray_distinct_users,
                as_usize(&msg.value)?
            )),
            "enum_distinct_users" => json!(std::mem::replace(
                &mut cfg.enum_distinct_users,
                as_usize(&msg.value)?
            )),
            "weak_encryption" => json!(std::mem::replace(
                &mut cfg.weak_encryption,
                expect_bool(&msg.key, &msg.value)?
            )),
            "renewal_requests" => json!(std::mem::replace(
                &mut cfg.renewal_requests,
                as_usize(&msg.value)?
            )),
            other => return Err(format!("{PREFIX}{other}: not a live Kerberos key")),
        };
        self.detector.set_config(cfg).map_err(|e| e.to_string())?;
        Ok(ParamChange {
            old,
            new: msg.value,
        })
    }
}

impl Handler<Drain> for KerberosActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

impl Handler<Ping> for KerberosActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for KerberosActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
