//! The feed actor: keeps each feed's settings and refresh state, refreshes feeds when due and
//! on request, stores what it downloads, builds the feed's matcher on a worker thread and
//! hands the new set to the matching actor. A failed or malformed download keeps the last good
//! copy and records the error with the lines that failed.
//!
//! At start it loads the stored indicators (no download needed after a restart), then fetches
//! feeds it never had; [`WhenReady`] answers once that first round is over, so a replay matches
//! against complete feeds.

use crate::actor::SetMatchers;
use crate::asn::{AsnInfo, AsnTable};
use crate::config::{FeedConfig, IntelConfig};
use crate::fetch::{fetch, Fetched, Validators};
use crate::formats::{self, FeedFormat, LineError, ParseReport};
use crate::indicator::{Indicator, IndicatorKind};
use crate::matcher::{Entry, FeedMatchers, Matcher, MatcherBuilder};
use crate::taxii;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use diesel::Connection;
use netmonitor_runtime::{contained, injected_fault, note_restart, InjectFault, Ping};
use netmonitor_store::intel as store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

const NAME: &str = "feeds";
/// How often due feeds are looked for.
const TICK: Duration = Duration::from_secs(5);

/// Where a feed's settings come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The configuration file (changed there, not over MCP).
    Config,
    /// Added over MCP (kept in the database).
    Mcp,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Mcp => "mcp",
        }
    }
}

#[derive(Debug)]
struct Feed {
    cfg: FeedConfig,
    origin: Origin,
    validators: Validators,
    cursor: Option<String>,
    last_attempt: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    error_lines: Vec<LineError>,
    error_count: usize,
    indicators: usize,
    unsupported: usize,
    unsupported_samples: Vec<String>,
    by_kind: BTreeMap<String, usize>,
    /// Without a database: what an incremental (TAXII) feed holds so far.
    held: Option<Arc<Vec<Indicator>>>,
    refreshing: bool,
}

impl Feed {
    fn new(cfg: FeedConfig, origin: Origin) -> Self {
        Feed {
            cfg,
            origin,
            validators: Validators::default(),
            cursor: None,
            last_attempt: None,
            last_success: None,
            last_error: None,
            error_lines: Vec::new(),
            error_count: 0,
            indicators: 0,
            unsupported: 0,
            unsupported_samples: Vec::new(),
            by_kind: BTreeMap::new(),
            held: None,
            refreshing: false,
        }
    }

    fn due(&self, now: DateTime<Utc>) -> bool {
        self.cfg.enabled
            && !self.refreshing
            && self.last_attempt.is_none_or(|t| {
                (now - t).num_seconds() >= i64::try_from(self.cfg.refresh_secs).unwrap_or(i64::MAX)
            })
    }

    fn status(&self) -> FeedStatus {
        FeedStatus {
            name: self.cfg.name.clone(),
            source: redact(&self.cfg.source),
            format: self.cfg.format.name(),
            refresh_secs: self.cfg.refresh_secs,
            confidence: self.cfg.confidence,
            enabled: self.cfg.enabled,
            origin: self.origin,
            authenticated: self.cfg.username.is_some() || self.cfg.token_env.is_some(),
            last_attempt: self.last_attempt,
            last_success: self.last_success,
            next_refresh: self
                .cfg
                .enabled
                .then(|| {
                    self.last_attempt.map(|t| {
                        t + chrono::Duration::seconds(
                            i64::try_from(self.cfg.refresh_secs).unwrap_or(i64::MAX / 2),
                        )
                    })
                })
                .flatten(),
            last_error: self.last_error.clone(),
            error_lines: self.error_lines.clone(),
            error_count: self.error_count,
            indicators: self.indicators,
            indicators_by_kind: self.by_kind.clone(),
            unsupported: self.unsupported,
            unsupported_samples: self.unsupported_samples.clone(),
            taxii_cursor: self.cursor.clone(),
            refreshing: self.refreshing,
        }
    }
}

/// A URL without its user information (`https://user:pw@host/` → `https://host/`).
fn redact(source: &str) -> String {
    match source.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = auth.rsplit('@').next().unwrap_or(auth);
            format!("{scheme}://{host}{tail}")
        }
        None => source.to_owned(),
    }
}

/// What the tools show of a feed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FeedStatus {
    /// Name.
    pub name: String,
    /// Source without credentials.
    pub source: String,
    /// Format name.
    pub format: &'static str,
    /// Seconds between refreshes.
    pub refresh_secs: u64,
    /// Default confidence.
    pub confidence: u8,
    /// Refreshed and matched.
    pub enabled: bool,
    /// Configuration file or MCP.
    pub origin: Origin,
    /// Credentials are configured.
    pub authenticated: bool,
    /// Last refresh tried.
    pub last_attempt: Option<DateTime<Utc>>,
    /// Last refresh that worked.
    pub last_success: Option<DateTime<Utc>>,
    /// When the next refresh is due.
    pub next_refresh: Option<DateTime<Utc>>,
    /// Why the last refresh failed (the last good copy is kept).
    pub last_error: Option<String>,
    /// Lines of the last download that failed to parse (the first 50).
    pub error_lines: Vec<LineError>,
    /// All failed lines of the last download.
    pub error_count: usize,
    /// Indicators held.
    pub indicators: usize,
    /// Indicators held, per kind.
    pub indicators_by_kind: BTreeMap<String, usize>,
    /// Entries of a kind or pattern the matcher cannot use.
    pub unsupported: usize,
    /// Why, for the first few.
    pub unsupported_samples: Vec<String>,
    /// TAXII `added_after` of the next poll.
    pub taxii_cursor: Option<String>,
    /// A refresh is running.
    pub refreshing: bool,
}

/// Progress of a refresh, for MCP progress notifications.
#[derive(Clone, Debug, Serialize)]
pub struct SyncProgress {
    /// Feed.
    pub feed: String,
    /// `downloading`, `parsing`, `storing`, `building`, `done`.
    pub stage: &'static str,
    /// Records (or TAXII objects) so far.
    pub records: usize,
}

/// How one refresh ended.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SyncOutcome {
    /// Feed.
    pub feed: String,
    /// `updated`, `not_modified`, `failed`, `busy` or `disabled`.
    pub result: &'static str,
    /// Indicators (or ASN ranges) held after it.
    pub indicators: usize,
    /// Added or updated in the store.
    pub stored: usize,
    /// Removed from the store (no longer listed, or revoked).
    pub removed: usize,
    /// Records read.
    pub records: usize,
    /// Lines that failed.
    pub error_lines: usize,
    /// Entries that cannot be matched.
    pub unsupported: usize,
    /// Why it failed.
    pub error: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
}

impl SyncOutcome {
    fn bare(feed: &str, result: &'static str, error: Option<String>) -> Self {
        SyncOutcome {
            feed: feed.to_owned(),
            result,
            indicators: 0,
            stored: 0,
            removed: 0,
            records: 0,
            error_lines: 0,
            unsupported: 0,
            error,
            duration_ms: 0,
        }
    }
}

/// Refreshes feeds now: the named ones (all enabled ones when `None`). `full` ignores ETags and
/// TAXII cursors and replaces what each feed holds.
#[derive(Message)]
#[rtype(result = "Result<Vec<SyncOutcome>, String>")]
pub struct SyncFeeds {
    /// Feeds, or all.
    pub names: Option<Vec<String>>,
    /// Re-download everything.
    pub full: bool,
    /// Where progress goes.
    pub progress: Option<mpsc::UnboundedSender<SyncProgress>>,
}

/// A change to the feeds, over MCP.
#[derive(Debug, Clone)]
pub enum FeedChange {
    /// A new feed (or new settings for an MCP feed).
    Put(FeedConfig),
    /// Removes an MCP feed and its indicators.
    Remove(String),
    /// Turns a feed on or off.
    Enable(String, bool),
}

/// Applies a [`FeedChange`]; answers the feed's status (none after a removal).
#[derive(Message)]
#[rtype(result = "Result<Option<FeedStatus>, String>")]
pub struct ManageFeed {
    /// The change.
    pub change: FeedChange,
    /// Who asks (token name).
    pub by: String,
}

/// Every feed's status.
#[derive(Message)]
#[rtype(result = "Vec<FeedStatus>")]
pub struct ListFeeds;

/// Answers once the stored indicators are loaded and every feed never fetched before was tried.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WhenReady;

/// Who owns an address, from the ip2asn table.
#[derive(Message)]
#[rtype(result = "Option<AsnInfo>")]
pub struct LookupAsn(pub IpAddr);

/// The actor.
pub struct FeedActor {
    cfg: IntelConfig,
    db: Option<String>,
    intel: Recipient<SetMatchers>,
    feeds: BTreeMap<String, Feed>,
    matchers: Arc<FeedMatchers>,
    asn: Arc<AsnTable>,
    loaded: bool,
    /// First fetches still running.
    first_round: usize,
    waiters: Vec<oneshot::Sender<()>>,
}

impl FeedActor {
    /// Feeds from `cfg` (and, with a database at `db`, the stored ones), matchers to `intel`.
    pub fn new(cfg: IntelConfig, db: Option<String>, intel: Recipient<SetMatchers>) -> Self {
        FeedActor {
            cfg,
            db,
            intel,
            feeds: BTreeMap::new(),
            matchers: Arc::new(FeedMatchers::default()),
            asn: Arc::new(AsnTable::default()),
            loaded: false,
            first_round: 0,
            waiters: Vec::new(),
        }
    }

    fn ready(&self) -> bool {
        self.loaded && self.first_round == 0
    }

    fn wake_waiters(&mut self) {
        if self.ready() {
            for w in self.waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn publish(&mut self, matchers: FeedMatchers) {
        self.matchers = Arc::new(matchers);
        self.intel.do_send(SetMatchers(self.matchers.clone()));
    }

    /// Starts refreshing `name` on a worker thread; the outcome is applied to the actor's
    /// state and returned.
    fn refresh(
        &mut self,
        name: &str,
        full: bool,
        progress: Option<mpsc::UnboundedSender<SyncProgress>>,
    ) -> ResponseActFuture<Self, SyncOutcome> {
        let Some(feed) = self.feeds.get_mut(name) else {
            return Box::pin(fut::ready(SyncOutcome::bare(
                name,
                "failed",
                Some("no such feed".into()),
            )));
        };
        if feed.refreshing {
            return Box::pin(fut::ready(SyncOutcome::bare(name, "busy", None)));
        }
        if !feed.cfg.enabled {
            return Box::pin(fut::ready(SyncOutcome::bare(name, "disabled", None)));
        }
        feed.refreshing = true;
        let job = Job {
            cfg: feed.cfg.clone(),
            validators: if full {
                Validators::default()
            } else {
                feed.validators.clone()
            },
            cursor: if full { None } else { feed.cursor.clone() },
            held: if full { None } else { feed.held.clone() },
            limits: self.cfg.limits(),
            db: self.db.clone(),
            progress,
            held_count: feed.indicators,
            unsupported: feed.unsupported,
        };
        let name = name.to_owned();
        let started = Instant::now();
        Box::pin(
            async move { tokio::task::spawn_blocking(move || run_job(job)).await }
                .into_actor(self)
                .map(move |res, act, _ctx| {
                    let res = res.unwrap_or_else(|e| JobResult::Failed {
                        error: format!("refresh worker failed: {e}"),
                        report: None,
                    });
                    let mut out = act.apply(&name, res);
                    out.duration_ms = started.elapsed().as_millis() as u64;
                    metrics::counter!("netmonitor_intel_feed_syncs_total", "result" => out.result)
                        .increment(1);
                    metrics::histogram!("netmonitor_intel_feed_sync_seconds")
                        .record(started.elapsed().as_secs_f64());
                    out
                }),
        )
    }

    /// Folds a finished job into the feed's state.
    fn apply(&mut self, name: &str, res: JobResult) -> SyncOutcome {
        let now = Utc::now();
        let mut out = SyncOutcome::bare(name, "updated", None);
        let Some(feed) = self.feeds.get_mut(name) else {
            // Removed while it ran.
            return SyncOutcome::bare(name, "failed", Some("feed removed".into()));
        };
        feed.refreshing = false;
        feed.last_attempt = Some(now);
        let mut swap: Option<Arc<Matcher>> = None;
        match res {
            JobResult::NotModified => {
                feed.last_success = Some(now);
                feed.last_error = None;
                out.result = "not_modified";
            }
            JobResult::Failed { error, report } => {
                tracing::warn!(feed = name, %error, "feed refresh failed; the last good copy stays");
                if let Some(r) = report {
                    feed.error_lines = r.errors;
                    feed.error_count = r.error_count;
                    out.records = r.records;
                    out.error_lines = r.error_count;
                }
                feed.last_error = Some(error.clone());
                out.result = "failed";
                out.error = Some(error);
            }
            JobResult::Updated(u) => {
                feed.last_success = Some(now);
                feed.last_error = None;
                feed.validators = u.validators;
                feed.cursor = u.cursor;
                feed.error_lines = u.report.errors;
                feed.error_count = u.report.error_count;
                feed.unsupported = u.report.unsupported;
                feed.unsupported_samples = u.report.unsupported_samples;
                feed.indicators = u.held_count;
                feed.by_kind = u.by_kind;
                feed.held = u.held;
                out.records = u.report.records;
                out.error_lines = feed.error_count;
                out.unsupported = feed.unsupported;
                out.stored = u.stored;
                out.removed = u.removed;
                if let Some(t) = u.asn {
                    self.asn = Arc::new(t);
                } else {
                    swap = u.matcher;
                }
                tracing::info!(
                    feed = name,
                    indicators = feed.indicators,
                    stored = out.stored,
                    removed = out.removed,
                    failed_lines = feed.error_count,
                    unsupported = feed.unsupported,
                    "feed refreshed"
                );
            }
        }
        out.indicators = feed.indicators;
        if let Some(m) = swap {
            let next = self.matchers.with(name, m);
            self.publish(next);
        }
        out
    }

    fn refresh_due(&mut self, ctx: &mut Context<Self>) {
        let now = Utc::now();
        let due: Vec<String> = self
            .feeds
            .values()
            .filter(|f| f.due(now))
            .map(|f| f.cfg.name.clone())
            .collect();
        // One at a time: a refresh parses and builds on a worker thread, and the packet path
        // shares the cores.
        if self.feeds.values().any(|f| f.refreshing) {
            return;
        }
        if let Some(name) = due.into_iter().next() {
            ctx.spawn(self.refresh(&name, false, None).map(|_, _, _| ()));
        }
    }

    fn first_fetches(&mut self, ctx: &mut Context<Self>) {
        let fresh: Vec<String> = self
            .feeds
            .values()
            .filter(|f| f.cfg.enabled && f.last_success.is_none() && f.last_attempt.is_none())
            .map(|f| f.cfg.name.clone())
            .collect();
        self.first_round = fresh.len();
        // Sequentially, so that the first round does not compete with itself for the cores.
        let mut chain: ResponseActFuture<Self, ()> = Box::pin(fut::ready(()));
        for n in fresh {
            chain = Box::pin(chain.then(move |_, act: &mut Self, _| {
                act.refresh(&n, false, None).map(|_, act: &mut Self, _| {
                    act.first_round = act.first_round.saturating_sub(1);
                    act.wake_waiters();
                })
            }));
        }
        ctx.spawn(chain);
        self.wake_waiters();
    }

    fn persist_settings(&self, feed: &Feed, by: &str) -> Result<(), String> {
        let Some(db) = &self.db else { return Ok(()) };
        let mut conn = diesel::PgConnection::establish(db).map_err(|e| e.to_string())?;
        store::upsert_feed(&mut conn, &settings(feed, Some(by))).map_err(|e| e.to_string())
    }
}

/// The row of a feed's settings: credentials only as a user and variable names.
fn settings<'a>(f: &'a Feed, by: Option<&'a str>) -> store::FeedSettings<'a> {
    let auth = f.cfg.auth_json();
    store::FeedSettings {
        name: &f.cfg.name,
        source: &f.cfg.source,
        format: f.cfg.format.name(),
        refresh_secs: i32::try_from(f.cfg.refresh_secs).unwrap_or(i32::MAX),
        confidence: i16::from(f.cfg.confidence),
        enabled: f.cfg.enabled,
        origin: f.origin.name(),
        auth,
        updated_by: by,
    }
}

impl Actor for FeedActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (cfg, db) = (self.cfg.clone(), self.db.clone());
        let load = async move {
            tokio::task::spawn_blocking(move || load_stored(&cfg, db.as_deref())).await
        };
        ctx.spawn(load.into_actor(self).map(|res, act, ctx| {
            let loaded = res.unwrap_or_else(|e| {
                tracing::error!(error = %e, "loading stored feeds failed");
                Loaded::default()
            });
            if !loaded.db_ok && act.db.is_some() {
                tracing::warn!("threat feeds: database unreachable at start; feeds are fetched fresh and not stored this run");
                act.db = None;
            }
            act.feeds.clear();
            for (f, origin) in loaded.feeds {
                act.feeds.insert(f.cfg.name.clone(), Feed { origin, ..f });
            }
            let mut set = FeedMatchers::default();
            for (name, m) in loaded.matchers {
                set = set.with(&name, Arc::new(m));
            }
            if let Some(t) = loaded.asn {
                act.asn = Arc::new(t);
            }
            act.publish(set);
            act.loaded = true;
            tracing::info!(feeds = act.feeds.len(), indicators = act.matchers.len(),
                "threat feeds loaded from the store");
            act.first_fetches(ctx);
            ctx.run_interval(TICK, |act, ctx| act.refresh_due(ctx));
        }));
    }
}

impl Supervised for FeedActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        note_restart(NAME);
        for f in self.feeds.values_mut() {
            f.refreshing = false;
        }
    }
}

impl Handler<SyncFeeds> for FeedActor {
    type Result = ResponseActFuture<Self, Result<Vec<SyncOutcome>, String>>;

    fn handle(&mut self, msg: SyncFeeds, _ctx: &mut Context<Self>) -> Self::Result {
        let names: Vec<String> = match msg.names {
            Some(n) => {
                if let Some(bad) = n.iter().find(|n| !self.feeds.contains_key(*n)) {
                    return Box::pin(fut::ready(Err(format!("no feed named {bad:?}"))));
                }
                n
            }
            None => self
                .feeds
                .values()
                .filter(|f| f.cfg.enabled)
                .map(|f| f.cfg.name.clone())
                .collect(),
        };
        let (full, progress) = (msg.full, msg.progress);
        let mut chain: ResponseActFuture<Self, Vec<SyncOutcome>> = Box::pin(fut::ready(Vec::new()));
        for n in names {
            let progress = progress.clone();
            chain = Box::pin(chain.then(move |mut done, act: &mut Self, _| {
                act.refresh(&n, full, progress).map(move |o, _, _| {
                    done.push(o);
                    done
                })
            }));
        }
        Box::pin(chain.map(|v, _, _| Ok(v)))
    }
}

impl Handler<ManageFeed> for FeedActor {
    type Result = ResponseActFuture<Self, Result<Option<FeedStatus>, String>>;

    fn handle(&mut self, msg: ManageFeed, ctx: &mut Context<Self>) -> Self::Result {
        let r = (|| -> Result<Option<String>, String> {
            match msg.change {
                FeedChange::Put(cfg) => {
                    cfg.validate()?;
                    if let Some(f) = self.feeds.get(&cfg.name) {
                        if f.origin == Origin::Config {
                            return Err(format!(
                                "{} is defined in the configuration file: change it there",
                                cfg.name
                            ));
                        }
                    }
                    let name = cfg.name.clone();
                    let mut feed = Feed::new(cfg, Origin::Mcp);
                    if let Some(old) = self.feeds.remove(&name) {
                        // New settings, fresh state: the next refresh downloads everything.
                        feed.indicators = old.indicators;
                        feed.by_kind = old.by_kind;
                    }
                    self.persist_settings(&feed, &msg.by)?;
                    self.feeds.insert(name.clone(), feed);
                    Ok(Some(name))
                }
                FeedChange::Enable(name, on) => {
                    let f = self
                        .feeds
                        .get_mut(&name)
                        .ok_or(format!("no feed named {name:?}"))?;
                    f.cfg.enabled = on;
                    if !on {
                        let next = self.matchers.without(&name);
                        self.publish(next);
                    }
                    let f = &self.feeds[&name];
                    self.persist_settings(f, &msg.by)?;
                    Ok(Some(name))
                }
                FeedChange::Remove(name) => {
                    let f = self
                        .feeds
                        .get(&name)
                        .ok_or(format!("no feed named {name:?}"))?;
                    if f.origin == Origin::Config {
                        return Err(format!(
                            "{name} is defined in the configuration file: remove it there"
                        ));
                    }
                    if let Some(db) = &self.db {
                        let mut conn =
                            diesel::PgConnection::establish(db).map_err(|e| e.to_string())?;
                        store::delete_feed(&mut conn, &name).map_err(|e| e.to_string())?;
                    }
                    self.feeds.remove(&name);
                    let next = self.matchers.without(&name);
                    self.publish(next);
                    Ok(None)
                }
            }
        })();
        match r {
            Err(e) => Box::pin(fut::ready(Err(e))),
            Ok(None) => Box::pin(fut::ready(Ok(None))),
            Ok(Some(name)) => {
                let enabled = self.feeds.get(&name).is_some_and(|f| f.cfg.enabled);
                if enabled {
                    // Fetch it now; the answer carries the outcome.
                    Box::pin(
                        self.refresh(&name, true, None)
                            .map(move |_, act, _| Ok(act.feeds.get(&name).map(Feed::status))),
                    )
                } else {
                    let _ = ctx;
                    Box::pin(fut::ready(Ok(self.feeds.get(&name).map(Feed::status))))
                }
            }
        }
    }
}

impl Handler<ListFeeds> for FeedActor {
    type Result = MessageResult<ListFeeds>;
    fn handle(&mut self, _: ListFeeds, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.feeds.values().map(Feed::status).collect())
    }
}

impl Handler<WhenReady> for FeedActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: WhenReady, _ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.ready() {
            let _ = tx.send(());
        } else {
            self.waiters.push(tx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<LookupAsn> for FeedActor {
    type Result = Option<AsnInfo>;
    fn handle(&mut self, msg: LookupAsn, _ctx: &mut Context<Self>) -> Self::Result {
        self.asn.lookup(msg.0)
    }
}

impl Handler<Ping> for FeedActor {
    type Result = String;
    fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        NAME.to_owned()
    }
}

impl Handler<InjectFault> for FeedActor {
    type Result = ();
    fn handle(&mut self, _: InjectFault, ctx: &mut Context<Self>) {
        contained::<Self, _>(NAME, ctx, || injected_fault(NAME));
    }
}

/// What a refresh needs, moved to the worker thread.
struct Job {
    cfg: FeedConfig,
    validators: Validators,
    cursor: Option<String>,
    held: Option<Arc<Vec<Indicator>>>,
    limits: crate::fetch::Limits,
    db: Option<String>,
    progress: Option<mpsc::UnboundedSender<SyncProgress>>,
    /// What the feed held before (recorded again when nothing changed).
    held_count: usize,
    unsupported: usize,
}

impl Job {
    fn report(&self, stage: &'static str, records: usize) {
        if let Some(p) = &self.progress {
            let _ = p.send(SyncProgress {
                feed: self.cfg.name.clone(),
                stage,
                records,
            });
        }
    }
}

struct Updated {
    report: ParseReport,
    validators: Validators,
    cursor: Option<String>,
    matcher: Option<Arc<Matcher>>,
    asn: Option<AsnTable>,
    held: Option<Arc<Vec<Indicator>>>,
    held_count: usize,
    by_kind: BTreeMap<String, usize>,
    stored: usize,
    removed: usize,
}

enum JobResult {
    NotModified,
    Failed {
        error: String,
        report: Option<ParseReport>,
    },
    Updated(Box<Updated>),
}

fn entry<'a>(i: &'a Indicator, default_confidence: u8) -> Entry<'a> {
    Entry {
        kind: i.kind,
        value: &i.value,
        confidence: i.confidence.unwrap_or(default_confidence),
        valid_until: i.valid_until,
        description: i.description.as_deref(),
    }
}

fn count_kinds<'a>(kinds: impl Iterator<Item = IndicatorKind> + 'a) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for k in kinds {
        *m.entry(k.name().to_owned()).or_default() += 1;
    }
    m
}

/// Downloads, parses, stores and builds one feed, and records the outcome on the feed's row
/// (blocking).
fn run_job(job: Job) -> JobResult {
    let result = fetch_and_build(&job);
    if let Some(db) = &job.db {
        if let Err(e) = record(db, &job, &result) {
            tracing::warn!(feed = %job.cfg.name, error = %e, "could not record the feed refresh");
        }
    }
    result
}

fn record(db: &str, job: &Job, result: &JobResult) -> Result<(), netmonitor_store::StoreError> {
    let mut conn = diesel::PgConnection::establish(db)?;
    let none = serde_json::json!([]);
    let (error, lines, validators, cursor, indicators, unsupported) = match result {
        JobResult::NotModified => (
            None,
            none,
            &job.validators,
            job.cursor.as_deref(),
            job.held_count,
            job.unsupported,
        ),
        JobResult::Failed { error, report } => (
            Some(error.as_str()),
            report.as_ref().map_or(none, |r| {
                serde_json::to_value(&r.errors).unwrap_or_default()
            }),
            &job.validators,
            job.cursor.as_deref(),
            job.held_count,
            job.unsupported,
        ),
        JobResult::Updated(u) => (
            None,
            serde_json::to_value(&u.report.errors).unwrap_or_default(),
            &u.validators,
            u.cursor.as_deref(),
            u.held_count,
            u.report.unsupported,
        ),
    };
    store::record_sync(
        &mut conn,
        &store::SyncRecord {
            name: &job.cfg.name,
            attempt: Utc::now(),
            error,
            error_lines: &lines,
            etag: validators.etag.as_deref(),
            last_modified: validators.last_modified.as_deref(),
            cursor,
            indicators: i32::try_from(indicators).ok(),
            unsupported: i32::try_from(unsupported).ok(),
        },
    )
}

fn fetch_and_build(job: &Job) -> JobResult {
    let fail = |error: String| JobResult::Failed {
        error,
        report: None,
    };
    job.report("downloading", 0);
    let auth = job.cfg.auth();
    let (report, validators, cursor, replace) = if job.cfg.format == FeedFormat::Taxii {
        let poll = match taxii::poll(
            &job.cfg.source,
            &auth,
            job.cursor.as_deref(),
            &job.limits,
            |_, objects| job.report("downloading", objects),
        ) {
            Ok(p) => p,
            Err(e) => return fail(e.to_string()),
        };
        job.report("parsing", poll.objects.len());
        let report = formats::parse_stix_objects(&poll.objects);
        (
            report,
            Validators::default(),
            poll.cursor,
            job.cursor.is_none(),
        )
    } else {
        match fetch(&job.cfg.source, &auth, &job.validators, &job.limits) {
            Ok(Fetched::NotModified) => return JobResult::NotModified,
            Ok(Fetched::Body { text, validators }) => {
                job.report("parsing", 0);
                (
                    formats::parse(job.cfg.format, &text),
                    validators,
                    None,
                    true,
                )
            }
            Err(e) => return fail(e.to_string()),
        }
    };
    if let Some(why) = report.rejected.clone() {
        return JobResult::Failed {
            error: format!("malformed: {why}"),
            report: Some(report),
        };
    }
    job.report("storing", report.records);
    let name = job.cfg.name.as_str();
    let confidence = job.cfg.confidence;
    let now = Utc::now();
    let mut conn = match job.db.as_deref().map(diesel::PgConnection::establish) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return fail(format!("database: {e}")),
        None => None,
    };
    if job.cfg.format == FeedFormat::Ip2asn {
        let table = AsnTable::build(name, report.asn_ranges.iter().cloned());
        let mut stored = 0;
        if let Some(c) = conn.as_mut() {
            let rows = report.asn_ranges.iter().map(|r| store::AsnRow {
                start: r.start,
                end: r.end,
                asn: r.asn,
                country: &r.country,
                description: &r.description,
            });
            match store::save_asn_ranges(c, name, rows) {
                Ok(n) => stored = n,
                Err(e) => return fail(format!("database: {e}")),
            }
        }
        let n = table.len();
        job.report("done", report.records);
        return JobResult::Updated(Box::new(Updated {
            by_kind: BTreeMap::from([("asn_range".to_owned(), n)]),
            report,
            validators,
            cursor,
            matcher: None,
            asn: Some(table),
            held: None,
            held_count: n,
            stored,
            removed: 0,
        }));
    }
    let (mut stored, mut removed) = (0, 0);
    if let Some(c) = conn.as_mut() {
        let rows = report.indicators.iter().map(|i| store::IndicatorRow {
            kind: i.kind.name(),
            value: &i.value,
            confidence: i16::from(i.confidence.unwrap_or(confidence)),
            first_seen_us: i.first_seen,
            valid_until_us: i.valid_until,
            description: i.description.as_deref(),
            tags: &i.tags,
        });
        let revoked: Vec<(&str, &str)> = report
            .revoked
            .iter()
            .map(|i| (i.kind.name(), i.value.as_str()))
            .collect();
        match store::save_indicators(c, name, rows, &revoked, replace, now.timestamp_micros()) {
            Ok(n) => {
                stored = n.upserted;
                removed = n.removed;
            }
            Err(e) => return fail(format!("database: {e}")),
        }
    }
    job.report("building", report.indicators.len());
    let mut b = MatcherBuilder::new();
    let (held, held_count, by_kind) = if replace {
        for i in &report.indicators {
            b.add(name, &entry(i, confidence));
        }
        let by_kind = count_kinds(report.indicators.iter().map(|i| i.kind));
        // Only an incremental feed without a store needs its set again for the next poll.
        let keep = conn.is_none() && job.cfg.format == FeedFormat::Taxii;
        let held = keep.then(|| Arc::new(report.indicators.clone()));
        (held, b.len(), by_kind)
    } else if let Some(c) = conn.as_mut() {
        // Incremental: the feed's whole set comes back from the store.
        let mut kinds = Vec::new();
        let r = store::load_indicators(c, Some(name), |s| {
            if let Some(kind) = IndicatorKind::from_name(&s.kind) {
                kinds.push(kind);
                b.add(
                    name,
                    &Entry {
                        kind,
                        value: &s.value,
                        confidence: u8::try_from(s.confidence).unwrap_or(0),
                        valid_until: s.valid_until.map(|t| t.timestamp_micros()),
                        description: s.description.as_deref(),
                    },
                );
            }
        });
        if let Err(e) = r {
            return fail(format!("database: {e}"));
        }
        let n = kinds.len();
        (None, n, count_kinds(kinds.into_iter()))
    } else {
        // Incremental without a store: merge into what the feed held.
        let mut all: HashMap<(IndicatorKind, String), Indicator> = job
            .held
            .as_deref()
            .map(|h| {
                h.iter()
                    .map(|i| ((i.kind, i.value.clone()), i.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for i in &report.revoked {
            all.remove(&(i.kind, i.value.clone()));
        }
        for i in &report.indicators {
            all.insert((i.kind, i.value.clone()), i.clone());
        }
        let list: Vec<Indicator> = all.into_values().collect();
        for i in &list {
            b.add(name, &entry(i, confidence));
        }
        let by_kind = count_kinds(list.iter().map(|i| i.kind));
        let n = list.len();
        (Some(Arc::new(list)), n, by_kind)
    };
    let matcher = Arc::new(b.build());
    job.report("done", report.records);
    JobResult::Updated(Box::new(Updated {
        report,
        validators,
        cursor,
        matcher: Some(matcher),
        asn: None,
        held,
        held_count,
        by_kind,
        stored,
        removed,
    }))
}

/// What the store held at start.
#[derive(Default)]
struct Loaded {
    db_ok: bool,
    feeds: Vec<(Feed, Origin)>,
    matchers: Vec<(String, Matcher)>,
    asn: Option<AsnTable>,
}

/// Registers the configured feeds in the store and loads every feed with its indicators
/// (blocking). Without a database (or when it cannot be reached) the configured feeds start
/// empty.
fn load_stored(cfg: &IntelConfig, db: Option<&str>) -> Loaded {
    let fresh = |cfg: &IntelConfig| -> Vec<(Feed, Origin)> {
        cfg.feeds
            .iter()
            .map(|f| (Feed::new(f.clone(), Origin::Config), Origin::Config))
            .collect()
    };
    let Some(db) = db else {
        return Loaded {
            db_ok: false,
            feeds: fresh(cfg),
            ..Loaded::default()
        };
    };
    let r = (|| -> Result<Loaded, netmonitor_store::StoreError> {
        let mut conn = diesel::PgConnection::establish(db)?;
        for f in &cfg.feeds {
            let feed = Feed::new(f.clone(), Origin::Config);
            store::upsert_feed(&mut conn, &settings(&feed, None))?;
        }
        let rows = store::load_feeds(&mut conn)?;
        let mut feeds = Vec::new();
        for row in rows {
            let configured = cfg.feeds.iter().find(|f| f.name == row.name);
            let (fc, origin) = match (configured, row.origin.as_str()) {
                (Some(f), _) => (f.clone(), Origin::Config),
                (None, "config") => {
                    // Gone from the configuration file: gone from the store.
                    store::delete_feed(&mut conn, &row.name)?;
                    continue;
                }
                (None, _) => {
                    let Some(format) = FeedFormat::from_name(&row.format) else {
                        continue;
                    };
                    let mut f = FeedConfig::new(&row.name, &row.source, format);
                    f.refresh_secs = u64::try_from(row.refresh_secs).unwrap_or(3600);
                    f.confidence = u8::try_from(row.confidence).unwrap_or(70);
                    f.enabled = row.enabled;
                    f.set_auth_json(&row.auth);
                    (f, Origin::Mcp)
                }
            };
            let mut feed = Feed::new(fc, origin);
            // A source or format changed in the file since: start over.
            let same = row.source == feed.cfg.source && row.format == feed.cfg.format.name();
            if same {
                feed.validators = Validators {
                    etag: row.etag,
                    last_modified: row.last_modified,
                };
                feed.cursor = row.cursor;
                feed.last_attempt = row.last_attempt;
                feed.last_success = row.last_success;
                feed.last_error = row.last_error;
                feed.error_lines = serde_json::from_value(row.error_lines).unwrap_or_default();
                feed.error_count = feed.error_lines.len();
                feed.unsupported = usize::try_from(row.unsupported).unwrap_or(0);
            }
            feeds.push((feed, origin));
        }
        let mut builders: HashMap<String, (MatcherBuilder, Vec<IndicatorKind>)> = HashMap::new();
        store::load_indicators(&mut conn, None, |s| {
            if let Some(kind) = IndicatorKind::from_name(&s.kind) {
                let (b, kinds) = builders.entry(s.feed.clone()).or_default();
                kinds.push(kind);
                b.add(
                    &s.feed,
                    &Entry {
                        kind,
                        value: &s.value,
                        confidence: u8::try_from(s.confidence).unwrap_or(0),
                        valid_until: s.valid_until.map(|t| t.timestamp_micros()),
                        description: s.description.as_deref(),
                    },
                );
            }
        })?;
        let mut ranges: HashMap<String, Vec<formats::AsnRange>> = HashMap::new();
        store::load_asn_ranges(&mut conn, |feed, start, end, asn, country, description| {
            ranges.entry(feed).or_default().push(formats::AsnRange {
                start,
                end,
                asn: u32::try_from(asn).unwrap_or(0),
                country,
                description,
            });
        })?;
        let mut matchers = Vec::new();
        let mut asn = None;
        for (feed, _) in &mut feeds {
            let name = feed.cfg.name.clone();
            let same_source = feed.last_success.is_some();
            if let Some((b, kinds)) = builders.remove(&name) {
                if same_source {
                    feed.indicators = kinds.len();
                    feed.by_kind = count_kinds(kinds.into_iter());
                    if feed.cfg.enabled {
                        matchers.push((name.clone(), b.build()));
                    }
                }
            }
            if let Some(r) = ranges.remove(&name).filter(|_| same_source) {
                feed.indicators = r.len();
                feed.by_kind = BTreeMap::from([("asn_range".to_owned(), r.len())]);
                asn = Some(AsnTable::build(&name, r));
            }
        }
        Ok(Loaded {
            db_ok: true,
            feeds,
            matchers,
            asn,
        })
    })();
    match r {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "threat feeds: cannot read the store");
            Loaded {
                db_ok: false,
                feeds: fresh(cfg),
                ..Loaded::default()
            }
        }
    }
}
