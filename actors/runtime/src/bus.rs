//! The event bus: batches of events, shared (one `Arc`, never copied per subscriber), delivered to
//! every actor subscribed to their topic. Each subscriber declares how it takes pressure: `Block`
//! (the publisher waits until the subscriber's bounded mailbox has room; nothing is lost) or
//! `Drop` (a full mailbox loses the batch, counted). Mailboxes are bounded by the subscribing
//! actor (`Context::set_mailbox_capacity`), and delivery uses `try_send`, which honours the bound
//! (`do_send` would not).
//!
//! Per subscriber, `/metrics` shows `netmonitor_bus_queue_depth` (batches waiting),
//! `netmonitor_bus_batches_total` (delivered) and `netmonitor_bus_dropped_batches_total` /
//! `netmonitor_bus_dropped_events_total`.

use actix::prelude::*;
use netmonitor_common::Event;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What a batch is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Events from the packet path (flows, TLS, Kerberos, DNS, DHCP, HTTP).
    Events,
    /// Alerts that passed the shared alert stage (whitelists, suppression, MITRE ids).
    Alerts,
    /// Alerts a whitelist entry or service provider suppressed, kept as evidence (the store
    /// only; `detection.alerts.whitelisted = "keep"`).
    Suppressed,
}

/// How a subscriber takes a publisher that is faster than it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// The publisher waits for room: nothing is lost (sinks, detectors).
    Block,
    /// A full mailbox loses the batch, counted (live views that may skip).
    Drop,
}

impl Backpressure {
    fn as_str(self) -> &'static str {
        match self {
            Backpressure::Block => "block",
            Backpressure::Drop => "drop",
        }
    }
}

/// One delivered batch. Holding it keeps the subscriber's queue depth counted; dropping it
/// (when the handler is done) releases it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct EventBatch {
    /// Which topic it was published on.
    pub topic: Topic,
    /// The events, shared with every other subscriber.
    pub events: Arc<Vec<Event>>,
    _ticket: Option<Arc<Ticket>>,
}

impl EventBatch {
    /// A batch outside the bus (tests, direct calls).
    pub fn new(topic: Topic, events: Arc<Vec<Event>>) -> Self {
        EventBatch {
            topic,
            events,
            _ticket: None,
        }
    }
}

/// Counts a batch as queued at one subscriber until every copy of it is dropped.
#[derive(Debug)]
struct Ticket(Arc<Counters>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.depth.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until the receiving actor has handled everything sent before (mailboxes are FIFO);
/// actors that pass work on (detectors to the alert stage) reply once that work is handed on.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Drain;

#[derive(Debug, Default)]
struct Counters {
    depth: AtomicI64,
    batches: AtomicU64,
    dropped_batches: AtomicU64,
    dropped_events: AtomicU64,
}

struct Subscriber {
    name: &'static str,
    topics: Vec<Topic>,
    policy: Backpressure,
    batches: Recipient<EventBatch>,
    drain: Option<Recipient<Drain>>,
    counters: Arc<Counters>,
    depth_gauge: metrics::Gauge,
    delivered: metrics::Counter,
    dropped_batches: metrics::Counter,
    dropped_events: metrics::Counter,
}

/// One subscriber's figures, for status tools and tests.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Its name.
    pub name: &'static str,
    /// `block` or `drop`.
    pub policy: &'static str,
    /// Batches delivered and not yet handled.
    pub queue_depth: i64,
    /// Batches delivered.
    pub batches: u64,
    /// Batches lost to a full mailbox (`drop` policy only).
    pub dropped_batches: u64,
    /// Events in them.
    pub dropped_events: u64,
}

/// Longest pause between two delivery attempts to a full `Block` subscriber.
const MAX_BACKOFF: Duration = Duration::from_millis(2);

/// The bus. Subscribe everything at wiring time, then publish from any thread.
#[derive(Default)]
pub struct Bus {
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    /// Events published, per topic (`Topic as usize`).
    published: [AtomicU64; 3],
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Arc<Self> {
        Arc::new(Bus::default())
    }

    /// Subscribes an actor to `topics` with a declared policy; `drain` lets shutdown wait for it.
    pub fn subscribe(
        &self,
        name: &'static str,
        topics: &[Topic],
        policy: Backpressure,
        batches: Recipient<EventBatch>,
        drain: Option<Recipient<Drain>>,
    ) {
        let labels = [("subscriber", name)];
        let sub = Subscriber {
            name,
            topics: topics.to_vec(),
            policy,
            batches,
            drain,
            counters: Arc::default(),
            depth_gauge: metrics::gauge!("netmonitor_bus_queue_depth", &labels),
            delivered: metrics::counter!("netmonitor_bus_batches_total", &labels),
            dropped_batches: metrics::counter!("netmonitor_bus_dropped_batches_total", &labels),
            dropped_events: metrics::counter!("netmonitor_bus_dropped_events_total", &labels),
        };
        if let Ok(mut subs) = self.subscribers.write() {
            subs.push(Arc::new(sub));
        }
    }

    fn snapshot(&self) -> Vec<Arc<Subscriber>> {
        self.subscribers
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Delivers `events` to every subscriber of `topic`, honouring each one's policy. Blocks
    /// (briefly sleeping) while a `Block` subscriber's mailbox is full.
    pub fn publish(&self, topic: Topic, events: Arc<Vec<Event>>) {
        if events.is_empty() {
            return;
        }
        self.published[topic as usize].fetch_add(events.len() as u64, Ordering::Relaxed);
        for sub in self.snapshot() {
            if sub.topics.contains(&topic) {
                deliver(&sub, topic, &events);
            }
        }
    }

    /// Waits until every subscriber with a drain hook, in subscription order, has handled what
    /// was published before the call.
    pub async fn drain(&self) {
        for sub in self.snapshot() {
            if let Some(d) = &sub.drain {
                if d.send(Drain).await.is_err() {
                    tracing::warn!(subscriber = sub.name, "subscriber gone while draining");
                }
            }
        }
    }

    /// Waits for the named subscribers only, in the order given.
    pub async fn drain_only(&self, names: &[&str]) {
        let subs = self.snapshot();
        for name in names {
            for sub in subs.iter().filter(|s| s.name == *name) {
                if let Some(d) = &sub.drain {
                    let _ = d.send(Drain).await;
                }
            }
        }
    }

    /// Events published on `topic` so far.
    pub fn published(&self, topic: Topic) -> u64 {
        self.published[topic as usize].load(Ordering::Relaxed)
    }

    /// Figures per subscriber.
    pub fn stats(&self) -> Vec<SubscriberStats> {
        self.snapshot()
            .iter()
            .map(|s| SubscriberStats {
                name: s.name,
                policy: s.policy.as_str(),
                queue_depth: s.counters.depth.load(Ordering::Relaxed),
                batches: s.counters.batches.load(Ordering::Relaxed),
                dropped_batches: s.counters.dropped_batches.load(Ordering::Relaxed),
                dropped_events: s.counters.dropped_events.load(Ordering::Relaxed),
            })
            .collect()
    }
}

fn deliver(sub: &Subscriber, topic: Topic, events: &Arc<Vec<Event>>) {
    sub.counters.depth.fetch_add(1, Ordering::Relaxed);
    let mut msg = EventBatch {
        topic,
        events: events.clone(),
        _ticket: Some(Arc::new(Ticket(sub.counters.clone()))),
    };
    let mut backoff = Duration::from_micros(20);
    loop {
        match sub.batches.try_send(msg) {
            Ok(()) => {
                sub.counters.batches.fetch_add(1, Ordering::Relaxed);
                sub.delivered.increment(1);
                break;
            }
            Err(SendError::Full(m)) if sub.policy == Backpressure::Block => {
                msg = m;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(SendError::Full(_)) | Err(SendError::Closed(_)) => {
                // the ticket of the lost batch was dropped with it
                sub.counters.dropped_batches.fetch_add(1, Ordering::Relaxed);
                sub.counters
                    .dropped_events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                sub.dropped_batches.increment(1);
                sub.dropped_events.increment(events.len() as u64);
                break;
            }
        }
    }
    sub.depth_gauge
        .set(sub.counters.depth.load(Ordering::Relaxed) as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmonitor_common::{EventHeader, EventKind, FlowKey, FlowRecord, Timestamp};

    /// Counts what it gets; handles each batch slowly when asked to.
    struct Counter {
        got: Arc<AtomicU64>,
        delay: Duration,
    }

    impl Actor for Counter {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.set_mailbox_capacity(2);
        }
    }

    impl Handler<EventBatch> for Counter {
        type Result = ();
        fn handle(&mut self, msg: EventBatch, _ctx: &mut Context<Self>) {
            std::thread::sleep(self.delay);
            self.got
                .fetch_add(msg.events.len() as u64, Ordering::Relaxed);
        }
    }

    impl Handler<Drain> for Counter {
        type Result = ();
        fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
    }

    fn events(n: usize) -> Arc<Vec<Event>> {
        let e = Event {
            header: EventHeader {
                ts: Timestamp(0),
                flow_id: 1,
                key: FlowKey {
                    src_ip: "10.0.0.1".parse().unwrap(),
                    src_port: 1,
                    dst_ip: "10.0.0.2".parse().unwrap(),
                    dst_port: 2,
                    proto: 6,
                },
            },
            kind: EventKind::Flow(FlowRecord::default()),
        };
        Arc::new(vec![e; n])
    }

    #[test]
    fn block_loses_nothing_and_drop_counts_what_it_lost() {
        let sys = actix::System::new();
        let (blocked, dropped, stats) = sys.block_on(async {
            let slow_got = Arc::new(AtomicU64::new(0));
            let lossy_got = Arc::new(AtomicU64::new(0));
            let arb1 = Arbiter::new();
            let arb2 = Arbiter::new();
            let (g1, g2) = (slow_got.clone(), lossy_got.clone());
            let slow = Counter::start_in_arbiter(&arb1.handle(), move |_| Counter {
                got: g1,
                delay: Duration::from_millis(2),
            });
            let lossy = Counter::start_in_arbiter(&arb2.handle(), move |_| Counter {
                got: g2,
                delay: Duration::from_millis(5),
            });
            let bus = Bus::new();
            bus.subscribe(
                "slow",
                &[Topic::Events],
                Backpressure::Block,
                slow.clone().recipient(),
                Some(slow.clone().recipient()),
            );
            bus.subscribe(
                "lossy",
                &[Topic::Events, Topic::Alerts],
                Backpressure::Drop,
                lossy.clone().recipient(),
                Some(lossy.clone().recipient()),
            );
            let publisher = {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        bus.publish(Topic::Events, events(10));
                    }
                    bus.publish(Topic::Alerts, events(1));
                })
            };
            while !publisher.is_finished() {
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            bus.drain().await;
            (
                slow_got.load(Ordering::Relaxed),
                lossy_got.load(Ordering::Relaxed),
                bus.stats(),
            )
        });
        assert_eq!(
            blocked, 500,
            "a blocking subscriber gets every event of its topic"
        );
        let lossy = stats.iter().find(|s| s.name == "lossy").unwrap();
        assert!(lossy.dropped_batches > 0, "{stats:?}");
        assert_eq!(
            dropped + lossy.dropped_events,
            501,
            "what the lossy subscriber did not get is counted"
        );
        assert!(stats.iter().all(|s| s.queue_depth == 0), "{stats:?}");
    }
}
