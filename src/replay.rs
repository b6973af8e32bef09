//! `netmonitor replay`: reads capture files through exactly the pipeline `run` uses (decode,
//! flows, ring buffer, dissectors, detectors) as fast as possible; writes EVE and, unless
//! `--no-db`, the database; prints progress on long files and a summary at the end.

use crate::cli::ReplayArgs;
use crate::config::Config;
use anyhow::Context;
use netmonitor_capture::PcapFileSource;
use netmonitor_common::eve::EveWriter;
use netmonitor_common::{Event, EventKind};
use netmonitor_sensor::Sensor;
use netmonitor_store::{Database, StoreHandle};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};

/// Events handed on in groups of this size (EVE and store batching).
const EVENT_BATCH: usize = 4096;
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
    fn take(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
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
        }
        Ok(())
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
    let mut out = Outputs {
        eve,
        store,
        events: 0,
        alerts: 0,
    };
    let summary = run_files(cfg, args, &mut out)?;
    if let Some(w) = out.eve.as_mut() {
        w.flush().context("writing EVE")?;
    }
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

fn run_files(cfg: &Config, args: &ReplayArgs, out: &mut Outputs) -> anyhow::Result<ReplaySummary> {
    let mut sensor = Sensor::new(&cfg.sensor).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut last_progress = Instant::now();
    let mut summary = ReplaySummary::default();
    for path in &args.files {
        let mut src = match PcapFileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("netmonitor: {}: {e}", path.display());
                summary.failed_files += 1;
                continue;
            }
        };
        let mut n = 0u32;
        loop {
            match src.next_packet() {
                Ok(Some(pkt)) => sensor.process(&pkt),
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
            if sensor.pending_events() >= EVENT_BATCH {
                out.take(sensor.take_events())?;
            }
            n = n.wrapping_add(1);
            if show_progress && n % 65_536 == 0 && last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let s = sensor.pipeline().snapshot();
                eprint!(
                    "\r{}: {} packets, {} flows, {} events, {:.0} packets/s   ",
                    path.display(),
                    s.packets,
                    s.flows.created,
                    out.events,
                    s.packets as f64 / started.elapsed().as_secs_f64().max(1e-9)
                );
            }
        }
        summary.files += 1;
    }
    sensor.finish();
    out.take(sensor.take_events())?;
    if show_progress {
        eprintln!();
    }
    let snap = sensor.pipeline().snapshot();
    summary.packets = snap.packets;
    summary.bytes = snap.bytes;
    summary.flows = snap.flows.created;
    summary.events = out.events;
    summary.alerts = out.alerts;
    summary.elapsed = started.elapsed();
    let _ = std::io::stdout().flush();
    Ok(summary)
}
