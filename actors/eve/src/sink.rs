//! The EVE sink actor: subscribed to events and alerts on the bus, it writes them, flushes on a
//! timer and when drained, reopens on SIGHUP, rotates by size, and can be switched off live.
//! A write error is logged and counted; the sink tries to reopen the file on the next batch.

use crate::file::EveFile;
use crate::EveConfig;
use actix::prelude::*;
use netmonitor_runtime::live::expect_bool;
use netmonitor_runtime::{
    contained, injected_fault, note_restart, Drain, EventBatch, InjectFault, LiveKey, ParamChange,
    Ping, SetParam,
};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

const NAME: &str = "eve";
/// Batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;

/// Reopen the file (SIGHUP, after logrotate moved it).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct Reopen;

/// The sink's figures.
#[derive(Message, Debug)]
#[rtype(result = "EveStats")]
pub struct GetEveStats;

/// What the sink did.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct EveStats {
    /// Events written.
    pub events_written: u64,
    /// Events not written because writing was off or failed.
    pub events_skipped: u64,
    /// Write errors.
    pub write_errors: u64,
    /// Rotations by size.
    pub rotations: u64,
    /// Reopens (SIGHUP).
    pub reopens: u64,
    /// Whether writing is on.
    pub enabled: bool,
}

/// The sink.
pub struct EveSink {
    cfg: EveConfig,
    file: Option<EveFile>,
    stats: EveStats,
}

impl EveSink {
    /// A sink for `cfg` (opens the file now, so a bad path fails at start).
    pub fn new(cfg: EveConfig) -> Result<Self, String> {
        cfg.validate()?;
        let file = match (&cfg.path, cfg.enabled) {
            (Some(p), true) => {
                if cfg.truncate {
                    std::fs::File::create(p)
                        .map_err(|e| format!("EVE file {}: {e}", p.display()))?;
                }
                Some(EveFile::open(p).map_err(|e| format!("EVE file {}: {e}", p.display()))?)
            }
            _ => None,
        };
        let stats = EveStats {
            enabled: cfg.enabled,
            ..EveStats::default()
        };
        Ok(EveSink { cfg, file, stats })
    }

    /// The keys this sink changes at run time.
    pub fn live_keys() -> Vec<LiveKey> {
        vec![LiveKey::new(
            "output.eve.enabled",
            "bool",
            "Whether EVE JSON is written (the file stays where it is)",
        )]
    }

    fn file(&mut self) -> Option<&mut EveFile> {
        if self.file.is_none() && self.cfg.enabled {
            if let Some(p) = &self.cfg.path {
                match EveFile::open(p) {
                    Ok(f) => self.file = Some(f),
                    Err(e) => {
                        self.stats.write_errors += 1;
                        tracing::error!(file = %p.display(), error = %e, "cannot open the EVE file");
                    }
                }
            }
        }
        self.file.as_mut()
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.flush() {
                self.stats.write_errors += 1;
                metrics::counter!("netmonitor_eve_write_errors_total").increment(1);
                tracing::error!(error = %e, "EVE flush failed");
                self.file = None;
            }
        }
    }
}

impl Actor for EveSink {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(Duration::from_millis(self.cfg.flush_interval_ms), |s, _| {
            s.flush()
        });
    }
}

impl Supervised for EveSink {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<EventBatch> for EveSink {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || {
            let n = msg.events.len() as u64;
            if !self.cfg.enabled {
                self.stats.events_skipped += n;
                return;
            }
            let (rotate, keep) = (self.cfg.rotate_bytes, self.cfg.keep);
            let Some(f) = self.file() else {
                self.stats.events_skipped += n;
                return;
            };
            let mut written = 0u64;
            let mut rotations = 0u64;
            let mut failed = None;
            for e in msg.events.iter() {
                if let Err(err) = f.write(e) {
                    failed = Some(err);
                    break;
                }
                written += 1;
                if rotate > 0 && f.size() >= rotate {
                    match f.rotate(keep) {
                        Ok(()) => rotations += 1,
                        Err(err) => {
                            failed = Some(err);
                            break;
                        }
                    }
                }
            }
            self.stats.events_written += written;
            self.stats.rotations += rotations;
            metrics::counter!("netmonitor_eve_events_written_total").increment(written);
            if let Some(err) = failed {
                self.stats.write_errors += 1;
                self.stats.events_skipped += n - written;
                metrics::counter!("netmonitor_eve_write_errors_total").increment(1);
                tracing::error!(error = %err, "EVE write failed; reopening on the next batch");
                self.file = None;
            }
        });
    }
}

impl Handler<Reopen> for EveSink {
    type Result = Result<(), String>;
    fn handle(&mut self, _: Reopen, _ctx: &mut Context<Self>) -> Self::Result {
        self.stats.reopens += 1;
        match self.file.as_mut() {
            Some(f) => f.reopen().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

impl Handler<GetEveStats> for EveSink {
    type Result = MessageResult<GetEveStats>;
    fn handle(&mut self, _: GetEveStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats.clone())
    }
}

impl Handler<SetParam> for EveSink {
    type Result = Result<ParamChange, String>;
    fn handle(&mut self, msg: SetParam, _ctx: &mut Context<Self>) -> Self::Result {
        if msg.key != "output.eve.enabled" {
            return Err(format!("{}: not a key of the EVE sink", msg.key));
        }
        let on = expect_bool(&msg.key, &msg.value)?;
        let was = std::mem::replace(&mut self.cfg.enabled, on);
        self.stats.enabled = on;
        if !on {
            self.flush();
        }
        Ok(ParamChange {
            old: json!(was),
            new: json!(on),
        })
    }
}

impl Handler<Drain> for EveSink {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {
        self.flush();
    }
}

impl Handler<Ping> for EveSink {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for EveSink {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
