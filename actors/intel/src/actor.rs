//! The threat-feed matching actor: takes events off the bus, looks up their addresses, names,
//! URLs, fingerprints and certificates in the feeds' matchers, and hands alerts to the alert
//! stage. The feed actor swaps in new matchers after each refresh; a swap is one `Arc`, so a
//! reload never pauses anything. Supervised; matchers and counters survive a restart.

use crate::detect::{IntelDetector, MatchStats};
use crate::indicator::{normalize, normalize_url, IndicatorKind};
use crate::matcher::{lower_name, FeedMatchers, Match};
use actix::prelude::*;
use netmonitor_common::{Event, Timestamp};
use netmonitor_runtime::{
    contained, injected_fault, live::expect_u64, note_restart, send_blocking, Drain, EventBatch,
    InjectFault, LiveKey, ParamChange, Ping, RaiseAlerts, SetParam, Topic,
};
use serde::Serialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

const NAME: &str = "intel";
/// Event batches the mailbox holds before the bus waits.
const MAILBOX: usize = 64;

/// Replaces the matchers (sent by the feed actor after a refresh).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetMatchers(pub Arc<FeedMatchers>);

/// What the matchers say of one value: `check_indicator`.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<LiveHit>, String>")]
pub struct CheckValue {
    /// The value (address, block, name, URL, fingerprint or hash).
    pub value: String,
    /// Its kind, when the caller knows it; otherwise guessed from its shape.
    pub kind: Option<IndicatorKind>,
}

/// One feed's entry that covers a value.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LiveHit {
    /// Feed.
    pub feed: String,
    /// The listed indicator (the block for an address, the parent for a name).
    pub indicator: String,
    /// Its kind.
    pub kind: &'static str,
    /// 0–100.
    pub confidence: u8,
    /// Why it is listed.
    pub description: Option<String>,
    /// Expiry (EVE time), if any.
    pub valid_until: Option<String>,
    /// Expired already (kept, but no longer matched).
    pub expired: bool,
}

/// The live state: indicators held per feed and the matching counters.
#[derive(Message, Debug)]
#[rtype(result = "IntelLive")]
pub struct GetIntelLive;

/// Answer to [`GetIntelLive`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct IntelLive {
    /// Indicators held in memory per feed.
    pub indicators_by_feed: Vec<(String, usize)>,
    /// Counters since start.
    pub stats: MatchStats,
    /// `intel.alert_window_secs` in force.
    pub alert_window_secs: u64,
    /// `intel.min_confidence` in force.
    pub min_confidence: u8,
}

/// The actor.
pub struct IntelActor {
    feeds: Arc<FeedMatchers>,
    detector: IntelDetector,
    alerts: Recipient<RaiseAlerts>,
}

impl IntelActor {
    /// An actor raising alerts through `alerts`, once per indicator and client per
    /// `window_secs`, for indicators of at least `min_confidence`.
    pub fn new(alerts: Recipient<RaiseAlerts>, window_secs: u64, min_confidence: u8) -> Self {
        IntelActor {
            feeds: Arc::new(FeedMatchers::default()),
            detector: IntelDetector::new(window_secs, min_confidence),
            alerts,
        }
    }

    /// The keys that may change at run time.
    pub fn live_keys() -> Vec<LiveKey> {
        vec![
            LiveKey::new(
                "intel.alert_window_secs",
                "integer",
                "One feed-match alert per indicator and client within this many seconds",
            ),
            LiveKey::new(
                "intel.min_confidence",
                "integer",
                "Feed matches below this confidence (0-100) raise no alert",
            ),
        ]
    }
}

impl Actor for IntelActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Supervised for IntelActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
    }
}

impl Handler<EventBatch> for IntelActor {
    type Result = ();
    fn handle(&mut self, msg: EventBatch, ctx: &mut Context<Self>) {
        if msg.topic != Topic::Events || self.feeds.is_empty() {
            return;
        }
        let (feeds, detector, alerts) = (&self.feeds, &mut self.detector, &self.alerts);
        contained::<Self, _>(NAME, ctx, || {
            let mut raised: Vec<Event> = Vec::new();
            for ev in msg.events.iter() {
                detector.inspect(feeds, ev, &mut raised);
            }
            if !raised.is_empty() {
                metrics::counter!("netmonitor_intel_matches_total").increment(raised.len() as u64);
                if !send_blocking(alerts, RaiseAlerts(raised)) {
                    tracing::error!("alert stage gone: feed-match alerts lost");
                }
            }
        });
    }
}

impl Handler<SetMatchers> for IntelActor {
    type Result = ();
    fn handle(&mut self, msg: SetMatchers, _ctx: &mut Context<Self>) {
        metrics::gauge!("netmonitor_intel_indicators").set(msg.0.len() as f64);
        self.feeds = msg.0;
    }
}

/// The kind a bare value most likely is.
pub fn guess_kind(v: &str) -> Option<IndicatorKind> {
    let v = v.trim();
    if v.parse::<IpAddr>().is_ok() {
        return Some(IndicatorKind::Ip);
    }
    if v.contains("://") {
        return Some(IndicatorKind::Url);
    }
    if v.contains('/') {
        return Some(IndicatorKind::Cidr);
    }
    let hex = v.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    let digits = v.bytes().filter(u8::is_ascii_hexdigit).count();
    match (hex, digits) {
        (true, 32) => Some(IndicatorKind::Ja3),
        (true, 40) => Some(IndicatorKind::CertSha1),
        (true, 64) => Some(IndicatorKind::Sha256),
        _ if normalize(IndicatorKind::Ja4, v).is_ok() => Some(IndicatorKind::Ja4),
        _ => crate::indicator::normalize_domain(v).map(|_| IndicatorKind::Domain),
    }
}

impl Handler<CheckValue> for IntelActor {
    type Result = Result<Vec<LiveHit>, String>;
    fn handle(&mut self, msg: CheckValue, _ctx: &mut Context<Self>) -> Self::Result {
        let kind = msg
            .kind
            .or_else(|| guess_kind(&msg.value))
            .ok_or_else(|| format!("cannot tell what kind of indicator {:?} is", msg.value))?;
        let value = normalize(kind, &msg.value).map_err(|e| e.to_string())?;
        // Every hit, expired ones included (marked): a caller asks what the feeds say.
        let mut found: Vec<Match<'_>> = Vec::new();
        let f = &self.feeds;
        let mut buf = String::new();
        match kind {
            IndicatorKind::Ip => f.ip(
                value.parse().map_err(|_| "bad address")?,
                i64::MIN,
                &mut found,
            ),
            IndicatorKind::Cidr => {
                // A block is listed if a feed lists it or a block holding it.
                let (net, _) = crate::indicator::parse_cidr(&value).ok_or("bad block")?;
                f.ip(net, i64::MIN, &mut found);
                found.retain(|m| {
                    m.hit.kind == IndicatorKind::Cidr && covers(&m.indicator.to_string(), &value)
                });
            }
            IndicatorKind::Domain => f.domain(lower_name(&value, &mut buf), i64::MIN, &mut found),
            IndicatorKind::Url => {
                let u = normalize_url(&value).ok_or("bad URL")?;
                f.url(&u, i64::MIN, &mut found);
            }
            k => {
                f.digest(k, &value, i64::MIN, &mut found);
                // A hash may be listed as a file or certificate hash of the same length.
                let twins: &[IndicatorKind] = match k {
                    IndicatorKind::Ja3 => &[IndicatorKind::Ja3s, IndicatorKind::Md5],
                    IndicatorKind::CertSha1 => &[IndicatorKind::Sha1],
                    IndicatorKind::Sha256 => &[IndicatorKind::CertSha256],
                    _ => &[],
                };
                for t in twins {
                    f.digest(*t, &value, i64::MIN, &mut found);
                }
            }
        }
        let now = Timestamp::now().0;
        Ok(found
            .into_iter()
            .map(|m| LiveHit {
                feed: m.feed.to_owned(),
                indicator: m.indicator.to_string(),
                kind: m.hit.kind.name(),
                confidence: m.hit.confidence,
                description: m.description.map(str::to_owned),
                valid_until: (m.hit.valid_until != i64::MAX)
                    .then(|| Timestamp(m.hit.valid_until).to_eve()),
                expired: m.hit.valid_until <= now,
            })
            .collect())
    }
}

/// Whether block `outer` (a listed CIDR) holds block `inner`.
fn covers(outer: &str, inner: &str) -> bool {
    let (Some((o, ol)), Some((_, il))) = (
        crate::indicator::parse_cidr(outer),
        crate::indicator::parse_cidr(inner),
    ) else {
        return false;
    };
    let _ = o;
    ol <= il
}

impl Handler<GetIntelLive> for IntelActor {
    type Result = MessageResult<GetIntelLive>;
    fn handle(&mut self, _: GetIntelLive, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(IntelLive {
            indicators_by_feed: self
                .feeds
                .feeds()
                .map(|(n, m)| (n.to_owned(), m.len()))
                .collect(),
            stats: self.detector.stats().clone(),
            alert_window_secs: self.detector.window_secs(),
            min_confidence: self.detector.min_confidence(),
        })
    }
}

impl Handler<SetParam> for IntelActor {
    type Result = Result<ParamChange, String>;
    fn handle(&mut self, msg: SetParam, _ctx: &mut Context<Self>) -> Self::Result {
        let n = expect_u64(&msg.key, &msg.value)?;
        match msg.key.as_str() {
            "intel.alert_window_secs" => {
                let old = self.detector.window_secs();
                self.detector.set_window_secs(n);
                Ok(ParamChange {
                    old: json!(old),
                    new: json!(self.detector.window_secs()),
                })
            }
            "intel.min_confidence" if n <= 100 => {
                let old = self.detector.min_confidence();
                self.detector.set_min_confidence(n as u8);
                Ok(ParamChange {
                    old: json!(old),
                    new: json!(self.detector.min_confidence()),
                })
            }
            "intel.min_confidence" => Err("intel.min_confidence: 0-100".into()),
            k => Err(format!("{k}: not an intel key")),
        }
    }
}

impl Handler<Drain> for IntelActor {
    type Result = ();
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {}
}

impl Handler<Ping> for IntelActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for IntelActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}
