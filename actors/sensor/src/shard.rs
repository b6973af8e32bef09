//! Spreading the packet path over cores: packets are routed by a symmetric hash of their
//! innermost IP addresses to one of several workers, each owning a complete [`Sensor`] (flow
//! table, reassembly, ring buffer share, dissectors). Both directions of a flow, every
//! fragment of a datagram and every flow between the same two hosts meet in the same worker, so
//! per-flow and per-host-pair state (handshakes, Kerberos pairing, scans of one target) stays
//! whole. Each worker keeps `1/N` of the configured ring buffer, so memory is as configured.

use crate::{Sensor, SensorConfig, EVENT_BATCH};
use crossbeam_channel::{bounded, Receiver, Sender};
use netmonitor_capture::source::PacketBatch;
use netmonitor_capture::stats::StatsSnapshot;
use netmonitor_capture::{decode, RawPacket};
use netmonitor_common::Event;
use netmonitor_runtime::AlertedFlows;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Where a worker's event batches go (the bus), called from the worker's thread.
pub type Publish = Arc<dyn Fn(Arc<Vec<Event>>) + Send + Sync>;

/// Packets a worker receives at once.
const BATCH_PACKETS: usize = 512;
/// Batches queued per worker (4,096 packets: enough to ride out scheduling jitter; each batch
/// buffer is memory the kernel must zero on first touch, so no more).
const QUEUE_BATCHES: usize = 8;

/// The worker for a packet: the same for both directions of a flow. Packets that do not decode
/// to IP all go to worker 0.
pub fn shard_of(linktype: u32, data: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let Ok(p) = decode(linktype, data) else {
        return 0;
    };
    let (a, b) = if p.src_ip <= p.dst_ip {
        (p.src_ip, p.dst_ip)
    } else {
        (p.dst_ip, p.src_ip)
    };
    let mut h = netmonitor_capture::hash::FxHasher::default();
    a.hash(&mut h);
    b.hash(&mut h);
    // Use the high bits: the low bits of an Fx hash of small integers are weak.
    ((h.finish() >> 32) as usize) % shards
}

/// What a worker reports when it ends.
pub struct WorkerReport {
    /// Its packet path figures.
    pub snapshot: StatsSnapshot,
}

/// N sensors on N threads behind one `process` call.
pub struct ShardedSensor {
    txs: Vec<Sender<PacketBatch>>,
    pending: Vec<PacketBatch>,
    workers: Vec<JoinHandle<WorkerReport>>,
    /// Emptied batches coming back from the workers, so the reader reuses their buffers
    /// instead of faulting in fresh memory for every batch.
    recycled: Receiver<PacketBatch>,
}

fn new_batch() -> PacketBatch {
    PacketBatch::with_capacity(BATCH_PACKETS, BATCH_PACKETS * 1600)
}

impl ShardedSensor {
    /// Starts `shards` workers; each publishes its events (in order) with `publish`.
    pub fn start(
        cfg: &SensorConfig,
        shards: usize,
        alerted: Arc<AlertedFlows>,
        publish: Publish,
    ) -> Result<Self, String> {
        let shards = shards.max(1);
        let mut per_worker = cfg.clone();
        per_worker.pipeline.ring.max_bytes = cfg.pipeline.ring.max_bytes / shards;
        let mut txs = Vec::with_capacity(shards);
        let mut workers = Vec::with_capacity(shards);
        let (recycle_tx, recycled) = bounded(QUEUE_BATCHES * shards + shards);
        for i in 0..shards {
            let sensor = Sensor::new(&per_worker, alerted.clone())?;
            let (tx, rx) = bounded(QUEUE_BATCHES);
            let (out, recycle) = (publish.clone(), recycle_tx.clone());
            txs.push(tx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("pipeline-{i}"))
                    .spawn(move || work(sensor, rx, &*out, recycle))
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(ShardedSensor {
            pending: (0..shards).map(|_| new_batch()).collect(),
            txs,
            workers,
            recycled,
        })
    }

    /// Routes one packet to its worker.
    pub fn process(&mut self, pkt: &RawPacket<'_>) {
        let i = shard_of(pkt.linktype, pkt.data, self.txs.len());
        let Some(batch) = self.pending.get_mut(i) else {
            return;
        };
        batch.push(pkt);
        if batch.len() >= BATCH_PACKETS {
            let fresh = self.recycled.try_recv().unwrap_or_else(|_| new_batch());
            let full = std::mem::replace(batch, fresh);
            if let Some(tx) = self.txs.get(i) {
                let _ = tx.send(full);
            }
        }
    }

    /// End of input: every worker finishes its flows; returns their reports.
    pub fn finish(mut self) -> Vec<WorkerReport> {
        for (batch, tx) in self.pending.drain(..).zip(&self.txs) {
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        }
        self.txs.clear();
        self.workers
            .drain(..)
            .filter_map(|w| w.join().ok())
            .collect()
    }
}

fn work(
    mut sensor: Sensor,
    rx: Receiver<PacketBatch>,
    out: &(dyn Fn(Arc<Vec<Event>>) + Send + Sync),
    recycle: Sender<PacketBatch>,
) -> WorkerReport {
    for mut batch in rx {
        for pkt in batch.iter() {
            sensor.process(&pkt);
        }
        batch.clear();
        let _ = recycle.try_send(batch);
        if sensor.pending_events() >= EVENT_BATCH {
            out(sensor.take_shared());
        }
    }
    sensor.finish_with(out);
    WorkerReport {
        snapshot: sensor.pipeline().snapshot(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_worker() {
        use netmonitor_capture::synth::build;
        let a = build::eth_ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 443, 1, 0, 0x02, b"");
        let b = build::eth_ipv4_tcp([10, 0, 0, 2], [10, 0, 0, 1], 443, 1234, 1, 2, 0x12, b"");
        for n in 2..8 {
            assert_eq!(shard_of(1, &a, n), shard_of(1, &b, n));
        }
        let spread: std::collections::BTreeSet<usize> = (0..64u8)
            .map(|i| {
                shard_of(
                    1,
                    &build::eth_ipv4_tcp([10, 1, 0, i], [10, 0, 0, 2], 1234, 443, 1, 0, 0x02, b""),
                    4,
                )
            })
            .collect();
        assert_eq!(
            spread.len(),
            4,
            "different host pairs spread over the workers"
        );
    }
}
