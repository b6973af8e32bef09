//! The running sensor: one capture thread per source (live interface or pcap file) feeding, in
//! batches over a bounded channel, one pipeline thread that owns the [`Sensor`]. Events leave
//! through a sink callback; status, PCAP export and blocklist changes arrive as commands on a
//! channel, answered between batches — no lock on the packet path.

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
pub type EventSink = Box<dyn FnMut(Vec<Event>) + Send>;

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
    /// JA3 hashes on the blocklist.
    pub ja3_blocklist_size: usize,
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

enum Command {
    Status(tokio::sync::oneshot::Sender<SensorStatus>),
    Export(
        ExportFilter,
        PathBuf,
        tokio::sync::oneshot::Sender<Result<ExportResult, String>>,
    ),
    AddJa3(
        String,
        String,
        tokio::sync::oneshot::Sender<Result<(), String>>,
    ),
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

    /// Writes the ring buffer's packets matching `filter` to `path` as a pcap.
    pub async fn export_pcap(
        &self,
        filter: ExportFilter,
        path: PathBuf,
    ) -> Result<ExportResult, String> {
        self.ask(|tx| Command::Export(filter, path, tx))
            .await
            .unwrap_or_else(|| Err("sensor is not running".into()))
    }

    /// Adds a JA3 MD5 to the blocklist at run time.
    pub async fn add_ja3(&self, md5: String, reason: String) -> Result<(), String> {
        self.ask(|tx| Command::AddJa3(md5, reason, tx))
            .await
            .unwrap_or_else(|| Err("sensor is not running".into()))
    }
}

/// The running sensor's threads.
pub struct SensorService {
    handle: SensorHandle,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl SensorService {
    /// Opens every source (failing early on a bad interface or file) and starts the threads.
    pub fn start(
        cfg: &SensorConfig,
        sources: Vec<Source>,
        sink: EventSink,
    ) -> Result<Self, String> {
        let mut sensor = Sensor::new(cfg)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (batch_tx, batch_rx) = bounded::<PacketBatch>(QUEUE_BATCHES);
        let (recycle_tx, recycle_rx) = bounded::<PacketBatch>(QUEUE_BATCHES);
        let (cmd_tx, cmd_rx) = bounded::<Command>(64);
        let mut threads = Vec::new();
        let mut statuses = Vec::new();
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
            let (tx, recycle, stop) = (batch_tx.clone(), recycle_rx.clone(), stop.clone());
            let loop_cfg = CaptureLoopConfig {
                lossless,
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
        threads.push(
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || {
                    pipeline_loop(
                        &mut sensor,
                        batch_rx,
                        recycle_tx,
                        cmd_rx,
                        sink,
                        statuses,
                        &stop_p,
                    );
                })
                .map_err(|e| e.to_string())?,
        );
        Ok(SensorService {
            handle: SensorHandle {
                cmds: cmd_tx,
                status_cache: Arc::default(),
            },
            stop,
            threads,
        })
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

fn pipeline_loop(
    sensor: &mut Sensor,
    batches: Receiver<PacketBatch>,
    recycle: Sender<PacketBatch>,
    cmds: Receiver<Command>,
    mut sink: EventSink,
    sources: SourceCounters,
    stop: &AtomicBool,
) {
    let started = Instant::now();
    let mut last_flush = Instant::now();
    let mut finished = false;
    let any_live = sources.iter().any(|s| s.1 == "interface");
    loop {
        select! {
            recv(batches) -> msg => match msg {
                Ok(batch) => {
                    for pkt in batch.iter() {
                        sensor.process(&pkt);
                    }
                    metrics::counter!("netmonitor_packets_total").increment(batch.len() as u64);
                    metrics::counter!("netmonitor_bytes_total").increment(batch.bytes() as u64);
                    let _ = recycle.try_send(batch);
                }
                Err(_) => {
                    // Every capture thread has ended (files done, or stopped).
                    if !finished {
                        sensor.finish();
                        finished = true;
                    }
                    if stop.load(Ordering::Relaxed) {
                        sink(sensor.take_events());
                        return;
                    }
                    // Keep answering commands (status, export) after the files are read.
                    if let Ok(cmd) = cmds.recv_timeout(EVENT_FLUSH) {
                        answer(sensor, cmd, &sources, started);
                    }
                }
            },
            recv(cmds) -> cmd => {
                if let Ok(cmd) = cmd {
                    answer(sensor, cmd, &sources, started);
                }
            },
            default(EVENT_FLUSH) => {
                if any_live && !finished {
                    sensor.advance_time(Timestamp::now());
                }
            }
        }
        if sensor.pending_events() >= EVENT_BATCH || last_flush.elapsed() >= EVENT_FLUSH {
            last_flush = Instant::now();
            let events = sensor.take_events();
            if !events.is_empty() {
                metrics::counter!("netmonitor_events_total").increment(events.len() as u64);
                sink(events);
            }
            let snap = sensor.pipeline().snapshot();
            metrics::gauge!("netmonitor_flows_active").set(snap.flows.active as f64);
        }
    }
}

fn answer(sensor: &mut Sensor, cmd: Command, sources: &SourceCounters, started: Instant) {
    match cmd {
        Command::Status(reply) => {
            let _ = reply.send(SensorStatus {
                uptime_seconds: started.elapsed().as_secs(),
                sources: sources
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
                ja3_blocklist_size: sensor.dissectors().tls.len(),
            });
        }
        Command::Export(filter, path, reply) => {
            let result = (|| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                use std::os::unix::fs::OpenOptionsExt;
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let mut w = std::io::BufWriter::new(file);
                let packets = sensor
                    .pipeline()
                    .ring()
                    .export(&filter, &mut w)
                    .map_err(|e| e.to_string())?;
                std::io::Write::flush(&mut w).map_err(|e| e.to_string())?;
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                Ok(ExportResult {
                    path: path.clone(),
                    packets,
                    bytes,
                })
            })();
            let _ = reply.send(result);
        }
        Command::AddJa3(md5, reason, reply) => {
            let _ = reply.send(
                sensor
                    .dissectors_mut()
                    .tls
                    .add_ja3(&md5, &reason)
                    .map_err(|e| e.to_string()),
            );
        }
    }
}
