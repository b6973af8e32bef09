//! The TLS actor: takes the TLS/QUIC handshake events off the bus, runs the TLS detections
//! (JA3 blocklist, weak versions and ciphers, certificate policy), hands alerts to the alert
//! stage and keeps live statistics. Supervised; its blocklist and counters survive a restart
//! (actix keeps the actor value across restarts).

use crate::detect::{LoadReport, TlsDetector};
use crate::live::{TlsLive, TlsLiveStats};
use actix::prelude::*;
use netmonitor_common::{Event, EventKind};
use netmonitor_runtime::{
    contained, injected_fault, note_restart, send_blocking, Drain, EventBatch, InjectFault, Ping,
    RaiseAlerts, Topic,
};

const NAME: &str = "tls";
/// Event batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;

/// Adds (or updates) a blocklisted JA3/JA3S hash.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct AddJa3 {
    /// MD5, hex.
    pub md5: String,
    /// Why it is listed.
    pub reason: String,
}

/// Loads abuse.ch SSLBL JA3 CSV text into the blocklist.
#[derive(Message, Debug)]
#[rtype(result = "LoadReport")]
pub struct LoadJa3Csv(pub String);

/// The listing reason of a hash, if blocklisted.
#[derive(Message, Debug)]
#[rtype(result = "Option<String>")]
pub struct Ja3Listed(pub String);

/// Live statistics with the `n` most frequent values per list, and the blocklist size.
#[derive(Message, Debug)]
#[rtype(result = "(TlsLiveStats, usize)")]
pub struct GetTlsLive(pub usize);

/// Forgets the live counters; answers how many tracked values were freed.
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct ClearTlsLive;

/// The actor.
pub struct TlsActor {
    detector: TlsDetector,
    live: TlsLive,
    alerts: Recipient<RaiseAlerts>,
}

impl TlsActor {
    /// An actor handing its alerts to `alerts` (the alert stage).
    pub fn new(detector: TlsDetector, alerts: Recipient<RaiseAlerts>) -> Self {
        TlsActor {
            detector,
            live: TlsLive::default(),
            alerts,
        }
    }
}

impl Actor for TlsActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for TlsActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<EventBatch> for TlsActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        if msg.topic != Topic::Events {
            return;
        }
        let (detector, live, alerts) = (&self.detector, &mut self.live, &self.alerts);
        contained::<Self, _>(NAME, ctx, || {
            let mut raised = Vec::new();
            for ev in msg.events.iter() {
                let EventKind::Tls(hs) = &ev.kind else {
                    continue;
                };
                live.record(hs);
                for a in detector.inspect(ev.header.ts, hs) {
                    live.alert(&a.threat_type);
                    raised.push(Event {
                        header: ev.header.clone(),
                        kind: EventKind::Alert(a),
                    });
                }
            }
            if !raised.is_empty() && !send_blocking(alerts, RaiseAlerts(raised)) {
                tracing::error!("alert stage gone: TLS alerts lost");
            }
        });
    }
}

impl Handler<AddJa3> for TlsActor {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: AddJa3, _ctx: &mut Context<Self>) -> Self::Result {
        self.detector
            .add_ja3(&msg.md5, &msg.reason)
            .map_err(|e| e.to_string())
    }
}

impl Handler<LoadJa3Csv> for TlsActor {
    type Result = MessageResult<LoadJa3Csv>;
    fn handle(&mut self, msg: LoadJa3Csv, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.detector.load_sslbl_csv(&msg.0))
    }
}

impl Handler<Ja3Listed> for TlsActor {
    type Result = Option<String>;
    fn handle(&mut self, msg: Ja3Listed, _ctx: &mut Context<Self>) -> Self::Result {
        self.detector.blocklisted(&msg.0).map(str::to_owned)
    }
}

impl Handler<GetTlsLive> for TlsActor {
    type Result = MessageResult<GetTlsLive>;
    fn handle(&mut self, msg: GetTlsLive, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult((self.live.snapshot(msg.0), self.detector.len()))
    }
}

impl Handler<ClearTlsLive> for TlsActor {
    type Result = usize;
    fn handle(&mut self, _: ClearTlsLive, _ctx: &mut Context<Self>) -> usize {
        self.live.clear()
    }
}

impl Handler<Drain> for TlsActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

impl Handler<Ping> for TlsActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for TlsActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
