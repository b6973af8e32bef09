//! The sensor: the packet path of `netmonitor-capture` with NetMonitor's application layer
//! plugged in. Flows are classified by content (and well-known ports where content is
//! ambiguous), handed to the TLS, QUIC, Kerberos, DNS and DHCP dissectors, and their results
//! run through the detectors. Out come typed [`Event`]s, in capture order, for EVE, the store
//! and the actors. Pure synchronous code: the pipeline thread owns it.
#![deny(missing_docs)]

pub mod actor;
pub mod dhcp;
pub mod dns;
mod handler;
pub mod inventory;
pub mod service;
pub mod shard;
pub mod stats;

pub use handler::{Dissectors, FlowApp, FlowState};
pub use stats::SensorStats;

use netmonitor_capture::{Pipeline, PipelineConfig, RawPacket};
use netmonitor_common::Event;
use netmonitor_kerberos::detect::{KerberosDetector, KrbDetectConfig};
use netmonitor_tls::detect::TlsDetector;
use serde::Deserialize;
use std::path::PathBuf;

/// Sensor settings (`[sensor]` in the configuration).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// The packet path (flows, reassembly, defragmentation, ring buffer).
    pub pipeline: PipelineConfig,
    /// Kerberos detection thresholds.
    pub kerberos: KrbDetectConfig,
    /// abuse.ch SSLBL JA3 CSV to load at start.
    pub ja3_blocklist: Option<PathBuf>,
    /// Pipeline workers for `replay` (0 = one per core). Packets are spread by host pair.
    pub workers: usize,
}

impl SensorConfig {
    /// Checks every section, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.pipeline
            .validate()
            .map_err(|e| format!("sensor.pipeline: {e}"))?;
        self.kerberos.validate().map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Events handed on at once at most (EVE writer, store, actors): large enough to amortise the
/// hand-off, small enough to keep memory and latency bounded.
pub const EVENT_BATCH: usize = 4096;

/// Packets in, events out.
pub struct Sensor {
    pipeline: Pipeline<Dissectors>,
}

impl Sensor {
    /// Builds the sensor; loads the JA3 blocklist file when one is configured.
    pub fn new(cfg: &SensorConfig) -> Result<Self, String> {
        cfg.validate()?;
        let mut tls = TlsDetector::new();
        if let Some(path) = &cfg.ja3_blocklist {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!("sensor.ja3_blocklist: cannot read {}: {e}", path.display())
            })?;
            tls.load_sslbl_csv(&text);
        }
        let handler = Dissectors::new(tls, KerberosDetector::new(cfg.kerberos.clone()));
        let pipeline = Pipeline::new(cfg.pipeline.clone(), handler)
            .map_err(|e| format!("sensor.pipeline: {e}"))?;
        Ok(Sensor { pipeline })
    }

    /// Processes one captured packet.
    pub fn process(&mut self, pkt: &RawPacket<'_>) {
        self.pipeline.process(pkt);
    }

    /// End of input: flushes every flow (pending handshakes are logged, flow records emitted).
    pub fn finish(&mut self) {
        self.pipeline.finish();
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

    /// The application layer, mutably (e.g. to add a JA3 to the blocklist at run time).
    pub fn dissectors_mut(&mut self) -> &mut Dissectors {
        self.pipeline.handler_mut()
    }
}

impl Sensor {
    /// Expires idle flows as of `now` on a quiet live link.
    pub fn advance_time(&mut self, now: netmonitor_common::Timestamp) {
        self.pipeline.advance_time(now);
    }
}
