//! The inventory actor: keeps the live inventory (hosts, edges, recent events) that MCP tools
//! read, fed with event and alert batches from the bus (a live view: it may drop batches under
//! load, counted by the bus). Supervised: a panic while folding a batch restarts it with the
//! inventory it had.

use crate::inventory::Inventory;
use actix::prelude::*;
use netmonitor_runtime::{
    contained, injected_fault, note_restart, Drain, EventBatch, InjectFault, Ping,
};

const NAME: &str = "inventory";
/// Batches the mailbox holds; past it the bus drops (and counts) batches for this view.
const MAILBOX: usize = 64;

/// Owns the inventory.
#[derive(Default)]
pub struct InventoryActor {
    inventory: Inventory,
}

impl Actor for InventoryActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for InventoryActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

/// A read-only question about the inventory, answered as JSON.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub struct QueryInventory(pub Box<dyn FnOnce(&Inventory) -> serde_json::Value + Send>);

impl QueryInventory {
    /// Wraps a closure.
    pub fn new(f: impl FnOnce(&Inventory) -> serde_json::Value + Send + 'static) -> Self {
        QueryInventory(Box::new(f))
    }
}

impl Handler<EventBatch> for InventoryActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        let inv = &mut self.inventory;
        contained::<Self, _>(NAME, ctx, || inv.ingest(&msg.events));
    }
}

impl Handler<QueryInventory> for InventoryActor {
    type Result = MessageResult<QueryInventory>;
    fn handle(&mut self, msg: QueryInventory, ctx: &mut Context<Self>) -> Self::Result {
        let inv = &self.inventory;
        MessageResult(
            contained::<Self, _>(NAME, ctx, || (msg.0)(inv)).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Handler<Ping> for InventoryActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for InventoryActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}

impl Handler<Drain> for InventoryActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}
