//! Replaying capture files through the packet path as fast as it goes: one sensor on the
//! reading thread, or several workers fed by it (packets spread by host pair), each publishing
//! its event batches (the bus in `netmonitor replay`). Progress on a terminal; a file that
//! cannot be read is reported and skipped, a truncated tail keeps what was read.
//!
//! The packet ring buffer is left out: it serves exports to MCP clients of a running service,
//! and nothing can ask a replay for them once it exits (`run --pcap` keeps it).

use crate::shard::{Publish, ShardedSensor};
use crate::{Sensor, SensorConfig, EVENT_BATCH};
use netmonitor_capture::PcapFileSource;
use netmonitor_runtime::AlertedFlows;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Progress line period.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How to replay.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Pipeline workers (0 = one per core, 1 = on the reading thread).
    pub workers: usize,
    /// Print progress on stderr when it is a terminal.
    pub progress: bool,
}

/// What the packet path did with the files.
#[derive(Debug, Default, Clone)]
pub struct ReplayCounts {
    /// Files read completely.
    pub files: usize,
    /// Files that could not be read (reported, skipped).
    pub failed_files: usize,
    /// Packets processed.
    pub packets: u64,
    /// Wire bytes processed.
    pub bytes: u64,
    /// Flows created.
    pub flows: u64,
    /// Events published.
    pub events: u64,
    /// Wall time.
    pub elapsed: Duration,
}

enum Path {
    Single(Box<Sensor>),
    Sharded(ShardedSensor),
}

/// Reads every file through the packet path, publishing event batches with `publish`.
pub fn replay_files(
    cfg: &SensorConfig,
    files: &[PathBuf],
    alerted: Arc<AlertedFlows>,
    publish: Publish,
    opts: &ReplayOptions,
) -> Result<ReplayCounts, String> {
    let mut sensor_cfg = cfg.clone();
    sensor_cfg.pipeline.ring.max_bytes = 0;
    let events = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted: Publish = {
        let (events, publish) = (events.clone(), publish.clone());
        Arc::new(move |batch| {
            if !batch.is_empty() {
                let records = batch.iter().filter(|e| !e.kind.is_internal()).count();
                events.fetch_add(records as u64, std::sync::atomic::Ordering::Relaxed);
                publish(batch);
            }
        })
    };
    let workers = match opts.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut path = match workers {
        1 => Path::Single(Box::new(Sensor::new(&sensor_cfg, alerted)?)),
        n => Path::Sharded(ShardedSensor::start(
            &sensor_cfg,
            n,
            alerted,
            counted.clone(),
        )?),
    };
    let started = Instant::now();
    let show_progress = opts.progress && std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut counts = ReplayCounts::default();
    for file in files {
        let mut src = match PcapFileSource::open(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("netmonitor: {}: {e}", file.display());
                counts.failed_files += 1;
                continue;
            }
        };
        loop {
            match src.next_packet() {
                Ok(Some(pkt)) => {
                    counts.packets += 1;
                    counts.bytes += u64::from(pkt.orig_len);
                    match &mut path {
                        Path::Single(sensor) => {
                            sensor.process(&pkt);
                            if sensor.pending_events() >= EVENT_BATCH {
                                counted(sensor.take_shared());
                            }
                        }
                        Path::Sharded(shards) => shards.process(&pkt),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A truncated or corrupt tail: keep what was read, report the rest.
                    eprintln!(
                        "netmonitor: {}: {e} (after {} packets)",
                        file.display(),
                        src.packets_read()
                    );
                    counts.failed_files += 1;
                    break;
                }
            }
            if show_progress
                && counts.packets.is_multiple_of(65_536)
                && last_progress.elapsed() >= PROGRESS_EVERY
            {
                last_progress = Instant::now();
                eprint!(
                    "\r{}: {} packets, {:.0} packets/s   ",
                    file.display(),
                    counts.packets,
                    counts.packets as f64 / started.elapsed().as_secs_f64().max(1e-9)
                );
            }
        }
        counts.files += 1;
    }
    let snapshots = match path {
        Path::Single(mut sensor) => {
            sensor.finish_with(|events| counted(events));
            vec![sensor.pipeline().snapshot()]
        }
        Path::Sharded(shards) => shards.finish().into_iter().map(|r| r.snapshot).collect(),
    };
    if show_progress {
        eprintln!();
    }
    counts.flows = snapshots.iter().map(|s| s.flows.created).sum();
    counts.events = events.load(std::sync::atomic::Ordering::Relaxed);
    counts.elapsed = started.elapsed();
    Ok(counts)
}
