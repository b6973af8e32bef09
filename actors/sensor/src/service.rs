//! The running sensor: one capture thread per source (live interface or pcap file) feeding, in
//! batches over a bounded channel, one pipeline thread that owns the [`Sensor`]. Events leave
//! through a sink callback (the bus); status, ring copies for PCAP export, flow flushes and
//! pauses arrive as commands on a channel, answered between batches — no lock on the packet
//! path, and nothing slow on it (an export copies packets out of the ring here and is written
//! to disk elsewhere). A panic that escapes the per-packet containment costs one batch.

use crate::{Sensor, SensorConfig, SensorStats, EVENT_BATCH};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use netmonitor_capture::source::{
    run_capture, CaptureCounters, CaptureCountersSnapshot, CaptureLoopConfig, PacketBatch,
};
use netmonitor_capture::stats::StatsSnapshot;
use netmonitor_capture::{ExportFilter, LiveConfig, LiveSource, PacketSource, PcapFileSource};
use netmonitor_common::{Event, Timestamp};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Batches buffered between capture threads and the pipeline thread.
const QUEUE_BATCHES: usize = 256;
/// Longest time events wait in the pipeline thread before going to the sink.
const EVENT_FLUSH: Duration = Duration::from_millis(100);

/// Where packets come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A live interface.
    Interface(LiveConfig),
    /// A capture file read once, losslessly.
    File(PathBuf),
}

impl Source {
    /// Interface name or file path, as shown in status and logs.
    pub fn name(&self) -> String {
        match self {
            Source::Interface(c) => c.interface.clone(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// Receives the events the pipeline produces, in order.
pub type EventSink = Box<dyn FnMut(Arc<Vec<Event>>) + Send>;

/// One source's figures.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    /// Interface name or file path.
    pub name: String,
    /// `interface` or `file`.
    pub kind: &'static str,
    /// `running`, `finished` or `failed: …`.
    pub state: String,
    /// Counters.
    pub counters: CaptureCountersSnapshot,
}

/// Everything `get_sensor_status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct SensorStatus {
    /// Seconds since the sensor started.
    pub uptime_seconds: u64,
    /// Per source.
    pub sources: Vec<SourceStatus>,
    /// Packet path: decode errors by reason, flows, reassembly, ring buffer, pps/bps.
    pub pipeline: StatsSnapshot,
    /// Application layer counters.
    pub application: SensorStats,
    /// Whether capture is paused (`pause_capture`).
    pub paused: bool,
    /// Batches lost to a panic that escaped the per-packet containment.
    pub batches_lost_to_panics: u64,
}

/// Result of a PCAP export.
#[derive(Clone, Debug, Serialize)]
pub struct ExportResult {
    /// File written.
    pub path: PathBuf,
    /// Packets in it.
    pub packets: usize,
    /// File size in bytes.
    pub bytes: u64,
}

/// Packets copied out of the ring, as a complete pcap file in memory.
#[derive(Clone, Debug)]
pub struct RingCopy {
    /// The pcap bytes.
    pub pcap: Vec<u8>,
    /// Packets in it.
    pub packets: usize,
}

/// What trimming the sensor's idle state freed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrimReport {
    /// Flows ended because they were idle (their records were emitted).
    pub idle_flows_ended: u64,
    /// Flows still active.
    pub flows_active: u64,
}

enum Command {
    Status(tokio::sync::oneshot::Sender<SensorStatus>),
    CopyRing(
        ExportFilter,
        tokio::sync::oneshot::Sender<Result<RingCopy, String>>,
    ),
    FlushFlows(tokio::sync::oneshot::Sender<u64>),
    Trim(tokio::sync::oneshot::Sender<TrimReport>),
}

/// How old a status snapshot may be before the pipeline thread is asked again. Concurrent
/// status readers (dashboards, many MCP clients) then share one snapshot instead of waking the
/// packet path for each request.
pub const STATUS_MAX_AGE: Duration = Duration::from_millis(50);

/// A status snapshot and when it was taken.
type TimedStatus = (Instant, Arc<SensorStatus>);

/// A cloneable way to ask the pipeline thread things.
#[derive(Clone)]
pub struct SensorHandle {
    cmds: Sender<Command>,
    status_cache: Arc<std::sync::Mutex<Option<TimedStatus>>>,
    paused: Arc<AtomicBool>,
}

impl SensorHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.cmds.try_send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// Current status (at most [`STATUS_MAX_AGE`] old); `None` when the sensor has stopped.
    pub async fn status(&self) -> Option<Arc<SensorStatus>> {
        if let Ok(cache) = self.status_cache.lock() {
            if let Some((at, status)) = cache.as_ref() {
                if at.elapsed() < STATUS_MAX_AGE {
                    return Some(status.clone());
                }
            }
        }
        let fresh = Arc::new(self.ask(Command::Status).await?);
        if let Ok(mut cache) = self.status_cache.lock() {
            *cache = Some((Instant::now(), fresh.clone()));
        }
        Some(fresh)
    }

    /// Copies the ring buffer's packets matching `filter` into a pcap in memory (on the pipeline
    /// thread: a memory copy between batches; the caller writes it to disk elsewhere).
    pub async fn copy_ring(&self, filter: ExportFilter) -> Result<RingCopy, String> {
        self.ask(|tx| Command::CopyRing(filter, tx))
            .await
            .unwrap_or_else(|| Err("sensor is not running".into()))
    }

    /// Writes the ring buffer's packets matching `filter` to `path` (0600) as a pcap; the file
    /// is written on a blocking thread, not on the packet path.
    pub async fn export_pcap(
        &self,
        filter: ExportFilter,
        path: PathBuf,
    ) -> Result<ExportResult, String> {
        let copy = self.copy_ring(filter).await?;
        tokio::task::spawn_blocking(move || {
            write_private(&path, &copy.pcap).map(|bytes| ExportResult {
                path,
                packets: copy.packets,
                bytes,
            })
        })
        .await
        .map_err(|e| format!("export task failed: {e}"))?
    }

    /// Ends every flow now (their records are emitted); answers how many.
    pub async fn flush_flows(&self) -> Option<u64> {
        self.ask(Command::FlushFlows).await
    }

    /// Ends idle flows now and reports what is left.
    pub async fn trim(&self) -> Option<TrimReport> {
        self.ask(Command::Trim).await
    }

    /// Pauses or resumes reading from every source; answers the previous state.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused.swap(paused, Ordering::Relaxed)
    }

    /// Whether capture is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

/// Writes `data` to a new private file (0600), creating the directory; returns the size.
pub fn write_private(path: &std::path::Path, data: &[u8]) -> Result<u64, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(data.len() as u64)
}

/// The running sensor's threads.
pub struct SensorService {
    handle: SensorHandle,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pipeline_done: Arc<AtomicBool>,
    counters: Vec<(String, Arc<CaptureCounters>)>,
}

impl SensorService {
    /// Opens every source (failing early on a bad interface or file) and starts the threads.
    pub fn start(
        cfg: &SensorConfig,
        sources: Vec<Source>,
        alerted: Arc<netmonitor_runtime::AlertedFlows>,
        sink: EventSink,
    ) -> Result<Self, String> {
        let mut sensor = Sensor::new(cfg, alerted)?;
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let pipeline_done = Arc::new(AtomicBool::new(false));
        let (batch_tx, batch_rx) = bounded::<PacketBatch>(QUEUE_BATCHES);
        let (recycle_tx, recycle_rx) = bounded::<PacketBatch>(QUEUE_BATCHES);
        let (cmd_tx, cmd_rx) = bounded::<Command>(64);
        let mut threads = Vec::new();
        let mut statuses = Vec::new();
        let mut source_counters = Vec::new();
        for (i, src) in sources.into_iter().enumerate() {
            let iface = u16::try_from(i).map_err(|_| "too many capture sources".to_string())?;
            let (mut boxed, kind, lossless): (Box<dyn PacketSource + Send>, _, _) = match &src {
                Source::Interface(c) => (
                    Box::new(
                        LiveSource::open(c, iface)
                            .map_err(|e| format!("interface {}: {e}", c.interface))?,
                    ),
                    "interface",
                    false,
                ),
                Source::File(p) => (
                    Box::new(PcapFileSource::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
                    "file",
                    true,
                ),
            };
            let counters = Arc::new(CaptureCounters::default());
            let state = Arc::new(std::sync::Mutex::new("running".to_string()));
            statuses.push((src.name(), kind, counters.clone(), state.clone()));
            source_counters.push((src.name(), counters.clone()));
            let (tx, recycle, stop) = (batch_tx.clone(), recycle_rx.clone(), stop.clone());
            let loop_cfg = CaptureLoopConfig {
                lossless,
                pause: Some(paused.clone()),
                ..CaptureLoopConfig::default()
            };
            let name = src.name();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("capture-{i}"))
                    .spawn(move || {
                        let end = run_capture(
                            boxed.as_mut(),
                            &tx,
                            Some(&recycle),
                            &stop,
                            &counters,
                            &loop_cfg,
                        );
                        let text = match end {
                            Ok(_) => "finished".to_string(),
                            Err(e) => {
                                tracing::error!(source = %name, error = %e, "capture stopped");
                                format!("failed: {e}")
                            }
                        };
                        *state.lock().unwrap_or_else(|p| p.into_inner()) = text;
                    })
                    .map_err(|e| e.to_string())?,
            );
        }
        drop(batch_tx);
        let stop_p = stop.clone();
        let (paused_p, done) = (paused.clone(), pipeline_done.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || {
                    pipeline_loop(
                        &mut sensor,
                        Channels {
                            batches: batch_rx,
                            recycle: recycle_tx,
                            cmds: cmd_rx,
                        },
                        sink,
                        statuses,
                        (&stop_p, &paused_p),
                    );
                    done.store(true, Ordering::Relaxed);
                })
                .map_err(|e| e.to_string())?,
        );
        Ok(SensorService {
            handle: SensorHandle {
                cmds: cmd_tx,
                status_cache: Arc::default(),
                paused,
            },
            stop,
            threads,
            pipeline_done,
            counters: source_counters,
        })
    }

    /// Each source's name and live counters (packets, kernel and queue drops).
    pub fn source_counters(&self) -> &[(String, Arc<CaptureCounters>)] {
        &self.counters
    }

    /// True once the pipeline thread has ended (after [`SensorService::stop`], or because it
    /// died: the capture actor then starts a new one).
    pub fn pipeline_ended(&self) -> bool {
        self.pipeline_done.load(Ordering::Relaxed)
    }

    /// A handle for status queries and commands.
    pub fn handle(&self) -> SensorHandle {
        self.handle.clone()
    }

    /// Stops capture, flushes every flow to the sink and joins the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for SensorService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

type SourceCounters = Vec<(
    String,
    &'static str,
    Arc<CaptureCounters>,
    Arc<std::sync::Mutex<String>>,
)>;

struct Channels {
    batches: Receiver<PacketBatch>,
    recycle: Sender<PacketBatch>,
    cmds: Receiver<Command>,
}

fn pipeline_loop(
    sensor: &mut Sensor,
    ch: Channels,
    mut sink: EventSink,
    sources: SourceCounters,
    (stop, paused): (&AtomicBool, &AtomicBool),
) {
    let started = Instant::now();
    let mut last_flush = Instant::now();
    let mut finished = false;
    let mut lost_batches = 0u64;
    let any_live = sources.iter().any(|s| s.1 == "interface");
    let ctx = StatusCtx {
        sources: &sources,
        started,
        paused,
    };
    loop {
        select! {
            recv(ch.batches) -> msg => match msg {
                Ok(batch) => {
                    // Per-packet containment covers the dissectors; this catches the rest.
                    let processed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        for pkt in batch.iter() {
                            sensor.process(&pkt);
                        }
                    }));
                    if processed.is_err() {
                        lost_batches += 1;
                        tracing::error!(packets = batch.len(), "packet path panicked; the rest of the batch is lost");
                        metrics::counter!("netmonitor_actor_panics_total", "actor" => "capture").increment(1);
                    }
                    metrics::counter!("netmonitor_packets_total").increment(batch.len() as u64);
                    metrics::counter!("netmonitor_bytes_total").increment(batch.bytes() as u64);
                    let _ = ch.recycle.try_send(batch);
                }
                Err(_) => {
                    // Every capture thread has ended (files done, or stopped).
                    if !finished {
                        sensor.finish();
                        finished = true;
                    }
                    if stop.load(Ordering::Relaxed) {
                        sink(sensor.take_shared());
                        return;
                    }
                    // Keep answering commands (status, export) after the files are read.
                    if let Ok(cmd) = ch.cmds.recv_timeout(EVENT_FLUSH) {
                        answer(sensor, cmd, &ctx, lost_batches);
                    }
                }
            },
            recv(ch.cmds) -> cmd => {
                if let Ok(cmd) = cmd {
                    answer(sensor, cmd, &ctx, lost_batches);
                }
            },
            default(EVENT_FLUSH) => {
                if any_live && !finished {
                    sensor.advance_time(Timestamp::now());
                }
            }
        }
        // Live traffic: publish as soon as the queue is empty, so an alert waits for no timer;
        // under load batches queue up and events go out in large batches.
        let caught_up = any_live && ch.batches.is_empty();
        let timer = last_flush.elapsed() >= EVENT_FLUSH;
        let pending = sensor.pending_events();
        if pending > 0 && (pending >= EVENT_BATCH || timer || caught_up) {
            let events = sensor.take_shared();
            let records = events.iter().filter(|e| !e.kind.is_internal()).count();
            metrics::counter!("netmonitor_events_total").increment(records as u64);
            sink(events);
        }
        if timer {
            last_flush = Instant::now();
            let snap = sensor.pipeline().snapshot();
            metrics::gauge!("netmonitor_flows_active").set(snap.flows.active as f64);
        }
    }
}

struct StatusCtx<'a> {
    sources: &'a SourceCounters,
    started: Instant,
    paused: &'a AtomicBool,
}

fn answer(sensor: &mut Sensor, cmd: Command, ctx: &StatusCtx<'_>, lost_batches: u64) {
    match cmd {
        Command::Status(reply) => {
            let _ = reply.send(SensorStatus {
                uptime_seconds: ctx.started.elapsed().as_secs(),
                sources: ctx
                    .sources
                    .iter()
                    .map(|(name, kind, c, state)| SourceStatus {
                        name: name.clone(),
                        kind,
                        state: state.lock().map(|s| s.clone()).unwrap_or_default(),
                        counters: c.snapshot(),
                    })
                    .collect(),
                pipeline: sensor.pipeline().snapshot(),
                application: sensor.dissectors().stats.clone(),
                paused: ctx.paused.load(Ordering::Relaxed),
                batches_lost_to_panics: lost_batches,
            });
        }
        Command::CopyRing(filter, reply) => {
            let mut pcap = Vec::new();
            let result = sensor
                .pipeline()
                .ring()
                .export(&filter, &mut pcap)
                .map(|packets| RingCopy { pcap, packets })
                .map_err(|e| e.to_string());
            let _ = reply.send(result);
        }
        Command::FlushFlows(reply) => {
            let before = sensor.pipeline().snapshot().flows.active;
            sensor.pipeline_mut().flush_all();
            let _ = reply.send(before);
        }
        Command::Trim(reply) => {
            let before = sensor.pipeline().snapshot().flows.active;
            sensor.pipeline_mut().expire_idle_now();
            let after = sensor.pipeline().snapshot().flows.active;
            let _ = reply.send(TrimReport {
                idle_flows_ended: before.saturating_sub(after),
                flows_active: after,
            });
        }
    }
}
