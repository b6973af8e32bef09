//! `netmonitor replay`: reads capture files through exactly the pipeline `run` uses (decode,
//! flows, dissectors, then the engine's detectors and alert stage) as fast as possible; writes
//! EVE and, unless `--no-db`, the database; prints progress on long files and a summary.

use crate::cli::ReplayArgs;
use crate::config::Config;
use anyhow::Context;
use netmonitor_engine::{Engine, EngineOptions, IntelOptions};
use netmonitor_sensor::replay::{replay_files, ReplayOptions};
use netmonitor_store::{Database, StoreHandle};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Events produced by the packet path.
    pub events: u64,
    /// Alerts raised (after the alert stage).
    pub alerts: u64,
    /// Wall time, until every event reached the sinks.
    pub elapsed: Duration,
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
        Some(d) => Some(Arc::new(StoreHandle::spawn(
            d.conninfo().to_owned(),
            cfg.store.clone(),
        )?)),
        None => None,
    };
    let mut eve = cfg.output.eve.clone();
    if let Some(p) = &args.eve {
        eve.path = Some(p.clone());
        eve.truncate = true;
    }
    let intel = IntelOptions {
        config: cfg.intel.clone(),
        database: db.as_ref().map(|d| d.conninfo().to_owned()),
    };
    let system = actix_rt::System::new();
    let summary = system.block_on(async {
        let engine = Engine::start(EngineOptions {
            sensor: cfg.sensor_name.clone(),
            detection: cfg.detection.clone(),
            eve: Some(eve),
            store: store.clone(),
            inventory: false,
            intel: Some(intel),
            devices: Some(netmonitor_engine::DevicesOptions {
                config: cfg.devices.clone(),
                database: db.as_ref().map(|d| d.conninfo().to_owned()),
            }),
            soar: None,
            risk: Some(netmonitor_engine::RiskOptions {
                config: cfg.risk.clone(),
                database: db.as_ref().map(|d| d.conninfo().to_owned()),
            }),
        })
        .map_err(anyhow::Error::msg)?;
        // Feeds first: the packets are matched against complete feeds.
        engine.intel_ready().await;
        let started = Instant::now();
        let (sensor_cfg, files, alerted, publish) = (
            cfg.sensor.clone(),
            args.files.clone(),
            engine.alerted.clone(),
            engine.publisher(),
        );
        let opts = ReplayOptions {
            workers: cfg.sensor.workers,
            progress: !args.quiet,
        };
        // the packet path runs on its own threads; this thread keeps the actors' system going
        let reading = std::thread::Builder::new()
            .name("replay-read".into())
            .spawn(move || replay_files(&sensor_cfg, &files, alerted, publish, &opts))?;
        while !reading.is_finished() {
            actix_rt::time::sleep(Duration::from_millis(2)).await;
        }
        let counts = reading
            .join()
            .map_err(|_| anyhow::anyhow!("the replay thread panicked"))?
            .map_err(anyhow::Error::msg)?;
        engine.drain().await;
        let stats = engine
            .alert_stats()
            .await
            .ok_or_else(|| anyhow::anyhow!("the alert stage did not answer"))?;
        let elapsed = started.elapsed();
        engine.stop().await;
        Ok::<_, anyhow::Error>(ReplaySummary {
            files: counts.files,
            failed_files: counts.failed_files,
            packets: counts.packets,
            bytes: counts.bytes,
            flows: counts.flows,
            events: counts.events,
            alerts: stats.counters.raised_by_kind.values().sum(),
            elapsed,
        })
    })?;
    if let Some(s) = store {
        let stats = s.stats();
        match Arc::try_unwrap(s) {
            Ok(handle) => handle.close(),
            Err(shared) => {
                let _ = shared.flush();
            }
        }
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
    let _ = std::io::stdout().flush();
    if summary.failed_files > 0 {
        anyhow::bail!("{} file(s) could not be read", summary.failed_files);
    }
    Ok(())
}
