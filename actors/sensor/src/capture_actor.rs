//! The capture actor: owns the capture and pipeline threads ([`SensorService`]) and restarts
//! them when the pipeline dies; answers status, PCAP exports, flow flushes, pauses and trims by
//! message; publishes capture drops per interface to `/metrics`. The packet path itself never
//! sends an actor message per packet: its events leave in batches through the sink (the bus).

use crate::service::{
    EventSink, ExportResult, SensorHandle, SensorService, SensorStatus, Source, TrimReport,
};
use crate::SensorConfig;
use actix::prelude::*;
use netmonitor_capture::ExportFilter;
use netmonitor_runtime::{
    contained, injected_fault, note_restart, AlertedFlows, InjectFault, Ping,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "capture";
/// How often thread health and drop counters are checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Builds the event sink for a (re)started pipeline.
pub type SinkFactory = Box<dyn Fn() -> EventSink + Send>;

/// The current status (cached up to 50 ms).
#[derive(Message, Debug)]
#[rtype(result = "Option<SensorHandle>")]
pub struct GetSensorHandle;

/// Stops capture and joins the threads (shutdown); every flow is flushed to the sink first.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StopCapture;

/// The actor.
pub struct CaptureActor {
    cfg: SensorConfig,
    sources: Vec<Source>,
    alerted: Arc<AlertedFlows>,
    make_sink: SinkFactory,
    service: Option<SensorService>,
    stopped: bool,
}

impl CaptureActor {
    /// Starts the threads now (so a bad interface or file fails here, not later).
    pub fn start_service(
        cfg: SensorConfig,
        sources: Vec<Source>,
        alerted: Arc<AlertedFlows>,
        make_sink: SinkFactory,
    ) -> Result<Self, String> {
        let service = SensorService::start(&cfg, sources.clone(), alerted.clone(), make_sink())?;
        Ok(CaptureActor {
            cfg,
            sources,
            alerted,
            make_sink,
            service: Some(service),
            stopped: false,
        })
    }

    /// Replaces a dead pipeline with a new one on the live interfaces (files were read once).
    fn restart_pipeline(&mut self) {
        note_restart(NAME);
        if let Some(old) = self.service.take() {
            old.stop();
        }
        let live: Vec<Source> = self
            .sources
            .iter()
            .filter(|s| matches!(s, Source::Interface(_)))
            .cloned()
            .collect();
        match SensorService::start(&self.cfg, live, self.alerted.clone(), (self.make_sink)()) {
            Ok(s) => {
                tracing::warn!("packet pipeline restarted");
                self.service = Some(s);
            }
            Err(e) => tracing::error!(error = %e, "cannot restart the packet pipeline"),
        }
    }

    fn check(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(s) = &self.service {
            for (name, c) in s.source_counters() {
                let c = c.snapshot();
                let labels = [("interface", name.clone())];
                metrics::counter!("netmonitor_capture_packets_total", &labels).absolute(c.packets);
                metrics::counter!("netmonitor_capture_kernel_drops_total", &labels)
                    .absolute(c.kernel_drops);
                metrics::counter!("netmonitor_capture_queue_drops_total", &labels)
                    .absolute(c.queue_drops);
            }
        }
        if self
            .service
            .as_ref()
            .is_some_and(SensorService::pipeline_ended)
        {
            tracing::error!("the packet pipeline thread ended unexpectedly");
            metrics::counter!("netmonitor_actor_panics_total", "actor" => NAME).increment(1);
            self.restart_pipeline();
        }
    }
}

impl Actor for CaptureActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
        ctx.run_interval(CHECK_INTERVAL, |a, _| a.check());
    }
}

impl Supervised for CaptureActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<GetSensorHandle> for CaptureActor {
    type Result = Option<SensorHandle>;
    fn handle(&mut self, _: GetSensorHandle, _ctx: &mut Context<Self>) -> Self::Result {
        self.service.as_ref().map(SensorService::handle)
    }
}

impl Handler<StopCapture> for CaptureActor {
    type Result = ();
    fn handle(&mut self, _: StopCapture, _ctx: &mut Context<Self>) {
        self.stopped = true;
        if let Some(s) = self.service.take() {
            s.stop();
        }
    }
}

impl Handler<Ping> for CaptureActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for CaptureActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}

/// What the tools and sensor commands call: the capture actor's pipeline handle, asked fresh
/// each time so that a restarted pipeline is reached.
#[derive(Clone)]
pub struct Capture {
    addr: Addr<CaptureActor>,
}

impl Capture {
    /// Wraps the actor's address.
    pub fn new(addr: Addr<CaptureActor>) -> Self {
        Capture { addr }
    }

    /// The actor's address.
    pub fn addr(&self) -> &Addr<CaptureActor> {
        &self.addr
    }

    async fn handle(&self) -> Result<SensorHandle, String> {
        self.addr
            .send(GetSensorHandle)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| "capture is not running".to_string())
    }

    /// The sensor's status.
    pub async fn status(&self) -> Option<Arc<SensorStatus>> {
        self.handle().await.ok()?.status().await
    }

    /// Writes the ring's packets matching `filter` to `path` (copied on the pipeline thread,
    /// written off it).
    pub async fn export_pcap(
        &self,
        filter: ExportFilter,
        path: PathBuf,
    ) -> Result<ExportResult, String> {
        self.handle().await?.export_pcap(filter, path).await
    }

    /// Ends every flow now.
    pub async fn flush_flows(&self) -> Result<u64, String> {
        self.handle()
            .await?
            .flush_flows()
            .await
            .ok_or_else(|| "capture is not running".into())
    }

    /// Ends idle flows now.
    pub async fn trim(&self) -> Result<TrimReport, String> {
        self.handle()
            .await?
            .trim()
            .await
            .ok_or_else(|| "capture is not running".into())
    }

    /// Pauses or resumes every source; answers whether it was paused.
    pub async fn set_paused(&self, paused: bool) -> Result<bool, String> {
        Ok(self.handle().await?.set_paused(paused))
    }
}
