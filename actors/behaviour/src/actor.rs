//! The behaviour actor: takes events off the bus, runs the behaviour detections and hands
//! alerts to the alert stage. Its settings change at run time by key
//! (`detection.behaviour.<section>.<field>`). Supervised; its tables survive a restart.

use crate::config::BehaviourConfig;
use crate::detect::{BehaviourDetector, BehaviourStats};
use actix::prelude::*;
use netmonitor_common::Event;
use netmonitor_runtime::{
    contained, injected_fault, note_restart, send_blocking, Drain, EventBatch, InjectFault,
    LiveKey, ParamChange, Ping, RaiseAlerts, SetParam, Topic,
};
use serde_json::Value;

const NAME: &str = "behaviour";
/// Event batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;
/// Prefix of the live keys.
pub const PREFIX: &str = "detection.behaviour.";

/// Live counters.
#[derive(Message, Debug)]
#[rtype(result = "BehaviourStats")]
pub struct GetBehaviourStats;

/// The settings in force.
#[derive(Message, Debug)]
#[rtype(result = "BehaviourConfig")]
pub struct GetBehaviourConfig;

/// The actor.
pub struct BehaviourActor {
    detector: BehaviourDetector,
    alerts: Recipient<RaiseAlerts>,
}

impl BehaviourActor {
    /// An actor with these settings handing alerts to `alerts` (the alert stage).
    pub fn new(cfg: BehaviourConfig, alerts: Recipient<RaiseAlerts>) -> Self {
        BehaviourActor {
            detector: BehaviourDetector::new(cfg),
            alerts,
        }
    }

    /// Every setting that changes at run time: each boolean and number of the configuration
    /// (`local_networks` and the service port list need a restart).
    pub fn live_keys() -> Vec<LiveKey> {
        let v = serde_json::to_value(BehaviourConfig::default()).unwrap_or(Value::Null);
        let mut keys = Vec::new();
        leaves(PREFIX.trim_end_matches('.'), &v, &mut keys);
        keys
    }
}

fn leaves(prefix: &str, v: &Value, out: &mut Vec<LiveKey>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "max_tracked" {
                    continue;
                }
                leaves(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Bool(_) => out.push(LiveKey::new(prefix, "bool", "Behaviour detection switch")),
        Value::Number(n) if n.is_f64() => out.push(LiveKey::new(
            prefix,
            "number",
            "Behaviour detection threshold",
        )),
        Value::Number(_) => out.push(LiveKey::new(
            prefix,
            "integer",
            "Behaviour detection threshold",
        )),
        _ => {}
    }
}

impl Actor for BehaviourActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for BehaviourActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<EventBatch> for BehaviourActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        if msg.topic != Topic::Events {
            return;
        }
        let (detector, alerts) = (&mut self.detector, &self.alerts);
        contained::<Self, _>(NAME, ctx, || {
            let mut raised: Vec<Event> = Vec::new();
            for ev in msg.events.iter() {
                detector.inspect(ev, &mut raised);
            }
            if !raised.is_empty() && !send_blocking(alerts, RaiseAlerts(raised)) {
                tracing::error!("alert stage gone: behaviour alerts lost");
            }
            let s = detector.stats();
            metrics::gauge!("netmonitor_behaviour_tracked_entries").set(s.tracked as f64);
            metrics::counter!("netmonitor_behaviour_evictions_total").absolute(s.evicted);
        });
    }
}

impl Handler<SetParam> for BehaviourActor {
    type Result = Result<ParamChange, String>;
    fn handle(&mut self, msg: SetParam, _ctx: &mut Context<Self>) -> Self::Result {
        let path = msg
            .key
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("{}: not a behaviour key", msg.key))?;
        if !Self::live_keys().iter().any(|k| k.key == msg.key) {
            return Err(format!("{}: not a live behaviour key", msg.key));
        }
        let mut v = serde_json::to_value(self.detector.config()).map_err(|e| e.to_string())?;
        let mut slot = &mut v;
        for part in path.split('.') {
            slot = slot
                .get_mut(part)
                .ok_or_else(|| format!("{}: no such setting", msg.key))?;
        }
        let old = slot.clone();
        let same_kind = matches!(
            (&old, &msg.value),
            (Value::Bool(_), Value::Bool(_)) | (Value::Number(_), Value::Number(_))
        );
        if !same_kind {
            return Err(format!("{}: expected a value like {old}", msg.key));
        }
        *slot = msg.value.clone();
        let cfg: BehaviourConfig =
            serde_json::from_value(v).map_err(|e| format!("{}: {e}", msg.key))?;
        cfg.validate()?;
        self.detector.set_config(cfg);
        let mut now = serde_json::to_value(self.detector.config()).map_err(|e| e.to_string())?;
        for part in path.split('.') {
            now = now[part].take();
        }
        Ok(ParamChange { old, new: now })
    }
}

impl Handler<GetBehaviourStats> for BehaviourActor {
    type Result = MessageResult<GetBehaviourStats>;
    fn handle(&mut self, _: GetBehaviourStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.detector.stats())
    }
}

impl Handler<GetBehaviourConfig> for BehaviourActor {
    type Result = MessageResult<GetBehaviourConfig>;
    fn handle(&mut self, _: GetBehaviourConfig, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.detector.config().clone())
    }
}

impl Handler<Drain> for BehaviourActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

impl Handler<Ping> for BehaviourActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for BehaviourActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
