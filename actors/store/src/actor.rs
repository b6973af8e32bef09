//! The store actor: the supervised face of the writer thread. Other actors send it event batches
//! and audit records; it hands them to the writer, which batches, copies and spools.

use crate::audit::AuditRecord;
use crate::writer::{StoreHandle, StoreItem, StoreStats};
use actix::prelude::*;
use netmonitor_runtime::{
    contained, injected_fault, note_restart, Drain, EventBatch, InjectFault, Ping,
};
use std::sync::Arc;

const NAME: &str = "store";

/// Owns the writer handle; lives on its own arbiter because a full queue blocks it (back-pressure).
pub struct StoreActor {
    handle: Arc<StoreHandle>,
}

impl StoreActor {
    /// Wraps a running writer.
    pub fn new(handle: Arc<StoreHandle>) -> Self {
        StoreActor { handle }
    }
}

impl Actor for StoreActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        // bounded: the bus waits on a full mailbox, the writer's queue waits behind it
        ctx.set_mailbox_capacity(64);
    }
}

impl Supervised for StoreActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

/// Audit records to persist.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PersistAudit(pub Vec<AuditRecord>);

/// Waits until everything sent before is durable (database or spool).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct FlushStore;

/// The writer's figures.
#[derive(Message, Debug)]
#[rtype(result = "Arc<StoreStats>")]
pub struct GetStoreStats;

impl Handler<EventBatch> for StoreActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        let handle = self.handle.clone();
        contained::<Self, _>(NAME, ctx, move || {
            let items: Vec<StoreItem> = msg
                .events
                .iter()
                .filter(|e| !e.kind.is_internal())
                .cloned()
                .map(StoreItem::Event)
                .collect();
            if items.is_empty() {
                return;
            }
            if let Err(e) = handle.send(items) {
                tracing::error!(error = %e, "store writer refused a batch");
            }
        });
    }
}

impl Handler<PersistAudit> for StoreActor {
    type Result = ();
    fn handle(&mut self, msg: PersistAudit, ctx: &mut Context<Self>) {
        let handle = self.handle.clone();
        contained::<Self, _>(NAME, ctx, move || {
            if let Err(e) = handle.send(msg.0.into_iter().map(StoreItem::Audit).collect()) {
                tracing::error!(error = %e, "store writer refused audit records");
            }
        });
    }
}

impl Handler<FlushStore> for StoreActor {
    type Result = Result<(), String>;
    fn handle(&mut self, _: FlushStore, _ctx: &mut Context<Self>) -> Self::Result {
        self.handle.flush().map_err(|e| e.to_string())
    }
}

impl Handler<GetStoreStats> for StoreActor {
    type Result = Arc<StoreStats>;
    fn handle(&mut self, _: GetStoreStats, _ctx: &mut Context<Self>) -> Self::Result {
        self.handle.stats()
    }
}

impl Handler<Ping> for StoreActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for StoreActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}

impl Handler<Drain> for StoreActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {
        if let Err(e) = self.handle.flush() {
            tracing::error!(error = %e, "store flush failed");
        }
    }
}
