//! `netmonitor replay`: reads capture files through exactly the pipeline `run` uses (decode,
//! flows, dissectors, detectors) as fast as possible; writes EVE and, unless `--no-db`, the
//! database; prints progress on long files and a summary at the end.
//!
//! The packet ring buffer is left out: it exists so MCP clients can export packets from a
//! running service, and nothing can ask a replay for them once it exits (`run --pcap` keeps
//! it). Filling it would only make the kernel zero hundreds of megabytes to be thrown away.

use crate::cli::ReplayArgs;
use crate::config::Config;
use anyhow::Context;
use netmonitor_capture::PcapFileSource;
use netmonitor_common::eve::EveWriter;
use netmonitor_common::{Event, EventKind};
use netmonitor_sensor::shard::ShardedSensor;
use netmonitor_sensor::{Sensor, EVENT_BATCH};
use netmonitor_store::{Database, StoreHandle};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};

/// Event batches queued for the output thread (a few suffice to keep it busy; each one is
/// megabytes of events in flight).
const OUTPUT_QUEUE: usize = 8;
/// Progress line period.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What a replay did, for the summary line and for callers (benchmarks, tests).
#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
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
    /// Events produced.
    pub events: u64,
    /// Alerts among them.
    pub alerts: u64,
    /// Wall time.
    pub elapsed: Duration,
}

struct Outputs {
    eve: Option<EveWriter<BufWriter<File>>>,
    store: Option<StoreHandle>,
    events: u64,
    alerts: u64,
}

impl Outputs {
    /// Writes a batch; hands the vector back emptied unless the store took it.
    fn take(&mut self, mut events: Vec<Event>) -> anyhow::Result<Option<Vec<Event>>> {
        if events.is_empty() {
            return Ok(Some(events));
        }
        self.events += events.len() as u64;
        self.alerts += events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Alert(_)))
            .count() as u64;
        if let Some(w) = self.eve.as_mut() {
            for e in &events {
                w.write(e).context("writing EVE")?;
            }
        }
        if let Some(s) = &self.store {
            s.send_events(events)?;
            return Ok(None);
        }
        events.clear();
        Ok(Some(events))
    }
}

/// Replays the files and prints a summary; fails if any file could not be read.
pub fn replay(cfg: &Config, args: &ReplayArgs) -> anyhow::Result<()> {
    let mut db = if args.no_db {
        None
    } else {
        Some(
            Database::open(&cfg.db_target())
                .context("opening the database (use --no-db to skip it)")?,
        )
    };
    let store = match &db {
        Some(d) => Some(StoreHandle::spawn(
            d.conninfo().to_owned(),
            cfg.store.clone(),
        )?),
        None => None,
    };
    let eve = match &args.eve {
        Some(p) => Some(EveWriter::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        None => None,
    };
    // EVE serialization and the store hand-off run on their own thread, off the packet path;
    // vectors it empties go back to the sensors for their next batch.
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Event>>(OUTPUT_QUEUE);
    let (spare_tx, spares) = crossbeam_channel::bounded::<Vec<Event>>(OUTPUT_QUEUE);
    let writer = std::thread::Builder::new()
        .name("replay-output".into())
        .spawn(move || {
            let mut out = Outputs {
                eve,
                store,
                events: 0,
                alerts: 0,
            };
            for events in rx {
                if let Some(emptied) = out.take(events)? {
                    let _ = spare_tx.try_send(emptied);
                }
            }
            if let Some(w) = out.eve.as_mut() {
                w.flush().context("writing EVE")?;
            }
            Ok::<_, anyhow::Error>(out)
        })?;
    let started = Instant::now();
    let summary = run_files(cfg, args, &tx, &spares);
    drop(tx);
    let mut out = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the output thread panicked"))??;
    let mut summary = summary?;
    summary.elapsed = started.elapsed();
    summary.events = out.events;
    summary.alerts = out.alerts;
    if let Some(s) = out.store.take() {
        let stats = s.stats();
        s.close();
        let spooled = stats
            .rows_spooled
            .load(std::sync::atomic::Ordering::Relaxed);
        if spooled > 0 {
            eprintln!(
                "note: {spooled} rows were spooled to disk while the database was unavailable"
            );
        }
    }
    if let Some(d) = db.as_mut() {
        d.shutdown()?;
    }
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    println!(
        "replay: {} file(s), {} packets, {} bytes, {} flows, {} events, {} alerts in {:.3} s ({:.0} packets/s, {:.3} Gbit/s)",
        summary.files,
        summary.packets,
        summary.bytes,
        summary.flows,
        summary.events,
        summary.alerts,
        secs,
        summary.packets as f64 / secs,
        summary.bytes as f64 * 8.0 / secs / 1e9
    );
    if summary.failed_files > 0 {
        anyhow::bail!("{} file(s) could not be read", summary.failed_files);
    }
    Ok(())
}

/// One sensor on this thread, or several workers fed by it (`sensor.workers`).
enum Engine {
    Single(Box<Sensor>),
    Sharded(ShardedSensor),
}

fn worker_count(cfg: &Config) -> usize {
    match cfg.sensor.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

fn run_files(
    cfg: &Config,
    args: &ReplayArgs,
    out: &crossbeam_channel::Sender<Vec<Event>>,
    spares: &crossbeam_channel::Receiver<Vec<Event>>,
) -> anyhow::Result<ReplaySummary> {
    let spare = || spares.try_recv().unwrap_or_default();
    let mut sensor_cfg = cfg.sensor.clone();
    sensor_cfg.pipeline.ring.max_bytes = 0;
    let send = |events: Vec<Event>| -> anyhow::Result<()> {
        if !events.is_empty() {
            out.send(events)
                .map_err(|_| anyhow::anyhow!("the output thread stopped"))?;
        }
        Ok(())
    };
    let mut engine = match worker_count(cfg) {
        1 => Engine::Single(Box::new(
            Sensor::new(&sensor_cfg).map_err(anyhow::Error::msg)?,
        )),
        n => Engine::Sharded(
            ShardedSensor::start(&sensor_cfg, n, out.clone(), spares.clone())
                .map_err(anyhow::Error::msg)?,
        ),
    };
    let started = Instant::now();
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut summary = ReplaySummary::default();
    let (mut packets, mut bytes) = (0u64, 0u64);
    for path in &args.files {
        let mut src = match PcapFileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("netmonitor: {}: {e}", path.display());
                summary.failed_files += 1;
                continue;
            }
        };
        loop {
            match src.next_packet() {
                Ok(Some(pkt)) => {
                    packets += 1;
                    bytes += u64::from(pkt.orig_len);
                    match &mut engine {
                        Engine::Single(sensor) => {
                            sensor.process(&pkt);
                            if sensor.pending_events() >= EVENT_BATCH {
                                send(sensor.take_events_into(spare()))?;
                            }
                        }
                        Engine::Sharded(shards) => shards.process(&pkt),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A truncated or corrupt tail: keep what was read, report the rest.
                    eprintln!(
                        "netmonitor: {}: {e} (after {} packets)",
                        path.display(),
                        src.packets_read()
                    );
                    summary.failed_files += 1;
                    break;
                }
            }
            if show_progress
                && packets.is_multiple_of(65_536)
                && last_progress.elapsed() >= PROGRESS_EVERY
            {
                last_progress = Instant::now();
                eprint!(
                    "\r{}: {} packets, {:.0} packets/s   ",
                    path.display(),
                    packets,
                    packets as f64 / started.elapsed().as_secs_f64().max(1e-9)
                );
            }
        }
        summary.files += 1;
    }
    let snapshots = match engine {
        Engine::Single(mut sensor) => {
            sensor.finish();
            send(sensor.take_events())?;
            vec![sensor.pipeline().snapshot()]
        }
        Engine::Sharded(shards) => shards.finish().into_iter().map(|r| r.snapshot).collect(),
    };
    if show_progress {
        eprintln!();
    }
    summary.packets = packets;
    summary.bytes = bytes;
    summary.flows = snapshots.iter().map(|s| s.flows.created).sum();
    summary.elapsed = started.elapsed();
    let _ = std::io::stdout().flush();
    Ok(summary)
}
