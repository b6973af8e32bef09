//! What every NetMonitor actor shares: panic containment that turns a panic in a handler into a
//! logged, counted restart by the actor's `actix::Supervisor`, and the messages every actor
//! answers (health pings, fault injection for tests, event batches).
#![deny(missing_docs)]

use actix::prelude::*;
use netmonitor_common::Event;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A batch of events travelling between actors; shared, so fan-out does not copy it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct EventBatch(pub Arc<Vec<Event>>);

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
