//! The sensor: the packet path of `netmonitor-capture` with NetMonitor's application layer
//! plugged in. Flows are classified by content (and well-known ports where content is
//! ambiguous) and handed to the TLS, QUIC, Kerberos, DNS and DHCP dissectors. Out come typed
//! [`Event`]s, in capture order, in batches for the bus (detection runs in the actors there).
//! The packet path itself is synchronous code on its own threads, owned by the supervised
//! [`capture_actor::CaptureActor`]; `replay` drives the same path over files.
#![deny(missing_docs)]

pub mod capture_actor;
pub mod dhcp;
pub mod dns;
mod handler;
pub mod http;
pub mod inventory;
pub mod inventory_actor;
pub mod link;
pub mod nbns;
pub mod replay;
pub mod service;
pub mod shard;
pub mod stats;

pub use handler::{Dissectors, FlowApp, FlowState};
pub use stats::SensorStats;

use netmonitor_capture::{Pipeline, PipelineConfig, RawPacket};
use netmonitor_common::Event;
use netmonitor_runtime::AlertedFlows;
use serde::Deserialize;
use std::sync::Arc;

/// Sensor settings (`[sensor]` in the configuration).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// The packet path (flows, reassembly, defragmentation, ring buffer).
    pub pipeline: PipelineConfig,
    /// Pipeline workers for `replay` (0 = one per core). Packets are spread by host pair.
    pub workers: usize,
}

impl SensorConfig {
    /// Checks every section, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.pipeline
            .validate()
            .map_err(|e| format!("sensor.pipeline: {e}"))?;
        Ok(())
    }
}

/// Events handed on at once at most (EVE writer, store, actors): large enough to amortise the
/// hand-off, small enough to keep memory and latency bounded.
pub const EVENT_BATCH: usize = 4096;

/// Packets in, events out.
pub struct Sensor {
    pipeline: Pipeline<Dissectors>,
    /// Batches handed on recently: once every consumer has dropped one, its allocation takes
    /// the next batch (a fresh multi-megabyte vector per batch would be zeroed page by page).
    shared: std::collections::VecDeque<Arc<Vec<Event>>>,
}

/// Batches remembered for reuse by [`Sensor::take_shared`].
const REUSE_BATCHES: usize = 8;

impl Sensor {
    /// Builds the sensor; its flow records consult `alerted` (shared with the alert stage).
    pub fn new(cfg: &SensorConfig, alerted: Arc<AlertedFlows>) -> Result<Self, String> {
        cfg.validate()?;
        let handler = Dissectors::new(alerted);
        let pipeline = Pipeline::new(cfg.pipeline.clone(), handler)
            .map_err(|e| format!("sensor.pipeline: {e}"))?;
        Ok(Sensor {
            pipeline,
            shared: std::collections::VecDeque::new(),
        })
    }

    /// Processes one captured packet.
    pub fn process(&mut self, pkt: &RawPacket<'_>) {
        self.pipeline.process(pkt);
    }

    /// End of input: flushes every flow (pending handshakes are logged, flow records emitted).
    pub fn finish(&mut self) {
        self.pipeline.finish();
    }

    /// [`Sensor::finish`], handing events on in batches of about [`EVENT_BATCH`] as flows end
    /// (a capture that ends with many live flows does not pile up all their records at once).
    pub fn finish_with(&mut self, mut out: impl FnMut(Arc<Vec<Event>>)) {
        let mut ready = Vec::new();
        self.pipeline.finish_with(|h| {
            if h.events.len() >= EVENT_BATCH {
                ready.push(std::mem::take(&mut h.events));
            }
        });
        for batch in ready {
            out(Arc::new(batch));
        }
        out(self.take_shared());
    }

    /// The events produced since the last call, shared (for the bus); the vector of an earlier
    /// batch that every consumer has dropped is reused for the next one.
    pub fn take_shared(&mut self) -> Arc<Vec<Event>> {
        let spare = self.reusable();
        let batch = Arc::new(self.take_events_into(spare));
        if self.shared.len() >= REUSE_BATCHES {
            self.shared.pop_front();
        }
        self.shared.push_back(batch.clone());
        batch
    }

    fn reusable(&mut self) -> Vec<Event> {
        let free = self.shared.iter().position(|b| Arc::strong_count(b) == 1);
        free.and_then(|i| self.shared.remove(i))
            .and_then(|b| Arc::try_unwrap(b).ok())
            .unwrap_or_default()
    }

    /// Events produced since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.take_events_into(Vec::new())
    }

    /// [`Sensor::take_events`], leaving `spare` (an emptied vector handed back by the consumer)
    /// in their place, so a busy sensor reuses its capacity instead of growing a fresh vector,
    /// page by page, for every batch.
    pub fn take_events_into(&mut self, mut spare: Vec<Event>) -> Vec<Event> {
        spare.clear();
        std::mem::replace(&mut self.pipeline.handler_mut().events, spare)
    }

    /// Number of events waiting to be taken.
    pub fn pending_events(&self) -> usize {
        self.pipeline.handler().events.len()
    }

    /// The packet path (statistics, ring buffer, flow table).
    pub fn pipeline(&self) -> &Pipeline<Dissectors> {
        &self.pipeline
    }

    /// The application layer (detectors, statistics).
    pub fn dissectors(&self) -> &Dissectors {
        self.pipeline.handler()
    }

    /// The packet path, mutably (flushing flows on command).
    pub fn pipeline_mut(&mut self) -> &mut Pipeline<Dissectors> {
        &mut self.pipeline
    }
}

impl Sensor {
    /// Expires idle flows as of `now` on a quiet live link.
    pub fn advance_time(&mut self, now: netmonitor_common::Timestamp) {
        self.pipeline.advance_time(now);
    }
}
