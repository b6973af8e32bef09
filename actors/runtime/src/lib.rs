//! What every NetMonitor actor shares: the event bus that carries batches between them, panic
//! containment that turns a panic in a handler into a logged, counted restart by the actor's
//! `actix::Supervisor`, and the messages every actor answers (health pings, fault injection for
//! tests).
#![deny(missing_docs)]

pub mod bus;
pub mod live;

pub use bus::{Backpressure, Bus, Drain, EventBatch, SubscriberStats, Topic};
pub use live::{LiveKey, ParamChange, SetParam};

use actix::prelude::*;
use netmonitor_common::Event;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

/// Alerts raised by a detector, for the shared alert stage (whitelists, suppression, MITRE ids)
/// which puts those that pass on the bus.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RaiseAlerts(pub Vec<Event>);

/// Sends `msg` to an actor's bounded mailbox, waiting (briefly sleeping) while it is full: for
/// hand-offs that must not lose anything and must not be unbounded (`do_send` would ignore the
/// bound). Never call it for an actor on the caller's own arbiter. False when the actor is gone.
pub fn send_blocking<M>(to: &Recipient<M>, msg: M) -> bool
where
    M: Message + Send,
    M::Result: Send,
{
    let mut msg = msg;
    let mut backoff = Duration::from_micros(20);
    loop {
        match to.try_send(msg) {
            Ok(()) => return true,
            Err(SendError::Full(m)) => {
                msg = m;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(2));
            }
            Err(SendError::Closed(_)) => return false,
        }
    }
}

/// Flows on which an alert was raised, so that the flow's record (written by the packet path
/// when the flow ends, after detection ran in the actors) says `alerted`. Bounded: forgets
/// everything when full (flows alerted that long ago have ended).
#[derive(Default)]
pub struct AlertedFlows {
    ids: Mutex<HashSet<u64>>,
}

/// Flows remembered at most by [`AlertedFlows`].
const MAX_ALERTED_FLOWS: usize = 1 << 20;

impl AlertedFlows {
    /// Marks a flow.
    pub fn mark(&self, flow_id: u64) {
        if let Ok(mut ids) = self.ids.lock() {
            if ids.len() >= MAX_ALERTED_FLOWS {
                ids.clear();
            }
            ids.insert(flow_id);
        }
    }

    /// Whether the flow was marked; forgets it (a flow ends once).
    pub fn take(&self, flow_id: u64) -> bool {
        self.ids
            .lock()
            .map(|mut i| i.remove(&flow_id))
            .unwrap_or(false)
    }
}

/// Liveness probe: an actor answers with its name.
#[derive(Message, Debug)]
#[rtype(result = "String")]
pub struct Ping;

/// Makes the receiving actor panic inside its handler, to prove supervision works.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct InjectFault;

/// Runs a handler body; a panic is logged and counted, and the actor is stopped so that its
/// supervisor restarts it with fresh state. Returns `None` when the body panicked.
pub fn contained<A, R>(
    actor: &'static str,
    ctx: &mut A::Context,
    body: impl FnOnce() -> R,
) -> Option<R>
where
    A: Actor<Context = Context<A>>,
{
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => Some(r),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            tracing::error!(actor, panic = %msg, "actor panicked; restarting it");
            metrics::counter!("netmonitor_actor_panics_total", "actor" => actor).increment(1);
            ctx.stop();
            None
        }
    }
}

/// Call from `Supervised::restarting`: counts and logs the restart.
pub fn note_restart(actor: &'static str) {
    tracing::warn!(actor, "actor restarted by its supervisor");
    metrics::counter!("netmonitor_actor_restarts_total", "actor" => actor).increment(1);
}

/// The panic used by [`InjectFault`] handlers.
pub fn injected_fault(actor: &'static str) -> ! {
    panic!("fault injected into {actor}")
}
