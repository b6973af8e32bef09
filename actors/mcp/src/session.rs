//! MCP sessions: negotiated version, log level, resource subscriptions, in-flight requests
//! (for `notifications/cancelled`), and the SSE streams of a Streamable HTTP session with their
//! replay logs for `Last-Event-ID` resumption. Legacy HTTP+SSE and stdio sessions instead carry
//! one outbound channel.

use crate::jsonrpc::{self, RequestId};
use crate::registry::{CancelToken, LogLevel};
use crate::sse;
use actix_web::web::Bytes;
use rand::RngCore;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

/// Random bytes in a session id (hex-encoded: 64 visible ASCII characters).
pub const SESSION_ID_BYTES: usize = 32;
/// SSE streams remembered per session for resumption (oldest finished ones are forgotten).
pub const MAX_STREAMS_PER_SESSION: usize = 64;
/// Resource subscriptions per session.
pub const MAX_SUBSCRIPTIONS: usize = 1024;
/// The stream id of the standalone GET stream.
pub const GET_STREAM: u64 = 0;

/// A new unguessable session id.
pub fn new_session_id() -> String {
    let mut b = [0u8; SESSION_ID_BYTES];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Which transport a session lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Streamable HTTP (`/mcp`).
    Streamable,
    /// Legacy HTTP+SSE (`/sse` + `/messages`).
    LegacySse,
    /// stdio.
    Stdio,
}

/// Sends one serialized JSON-RPC message to the client of a legacy SSE or stdio session; false
/// when the client is gone.
pub type Outbound = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

struct StreamLog {
    next_seq: u64,
    /// (sequence number in the stream, serial number in the session, frame)
    events: VecDeque<(u64, u64, Bytes)>,
    live: Option<(u64, mpsc::Sender<Bytes>)>,
    done: bool,
}

impl StreamLog {
    fn new() -> Self {
        StreamLog {
            next_seq: 1,
            events: VecDeque::new(),
            live: None,
            done: false,
        }
    }
}

struct State {
    version: String,
    initialized: bool,
    log_level: Option<LogLevel>,
    subscriptions: BTreeSet<String>,
    in_flight: HashMap<String, Arc<CancelToken>>,
    next_stream: u64,
    next_generation: u64,
    streams: HashMap<u64, StreamLog>,
    /// Bytes of frames kept for replay, all streams together.
    replay_bytes: usize,
    /// Serial number of the next logged frame (orders frames across streams).
    next_serial: u64,
    outbound: Option<Outbound>,
    last_active: Instant,
}

impl State {
    /// Drops the session's oldest logged frames until at most `cap` bytes remain, and streams
    /// that are finished and have nothing left to replay.
    fn trim_replay(&mut self, cap: usize) {
        while self.replay_bytes > cap {
            let oldest = self
                .streams
                .iter()
                .filter_map(|(id, l)| l.events.front().map(|(_, serial, _)| (*serial, *id)))
                .min();
            let Some((_, id)) = oldest else { break };
            if let Some(l) = self.streams.get_mut(&id) {
                if let Some((_, _, f)) = l.events.pop_front() {
                    self.replay_bytes = self.replay_bytes.saturating_sub(f.len());
                }
                if l.done && l.events.is_empty() {
                    self.streams.remove(&id);
                }
            }
        }
    }
}

/// Default bound of a session's replay log (see [`Session::with_replay_bytes`]).
pub const DEFAULT_REPLAY_BYTES: usize = 1 << 20;

/// What a resumption request found.
pub enum Resume {
    /// Unknown event id: serve as a fresh stream.
    Unknown,
    /// Frames replayed; the stream stays attached (`Some(generation)`) or ends (`None`).
    Replay(Option<u64>),
}

/// One MCP session.
pub struct Session {
    /// The session id.
    pub id: String,
    /// Transport.
    pub kind: TransportKind,
    /// Token that created it (other tokens cannot use it).
    pub token_id: Option<i64>,
    replay_cap: usize,
    replay_bytes_cap: usize,
    state: Mutex<State>,
}

impl Session {
    /// A new session with a fresh id.
    pub fn new(
        kind: TransportKind,
        version: &str,
        token_id: Option<i64>,
        replay_cap: usize,
    ) -> Self {
        Session {
            id: new_session_id(),
            kind,
            token_id,
            replay_cap: replay_cap.max(1),
            replay_bytes_cap: DEFAULT_REPLAY_BYTES,
            state: Mutex::new(State {
                version: version.to_string(),
                initialized: false,
                log_level: None,
                subscriptions: BTreeSet::new(),
                in_flight: HashMap::new(),
                next_stream: 1,
                next_generation: 1,
                streams: HashMap::new(),
                replay_bytes: 0,
                next_serial: 0,
                outbound: None,
                last_active: Instant::now(),
            }),
        }
    }

    /// Bounds the bytes of frames kept for resumption, all streams of the session together.
    pub fn with_replay_bytes(mut self, bytes: usize) -> Self {
        self.replay_bytes_cap = bytes.max(1);
        self
    }

    /// Bytes of frames kept for resumption.
    #[cfg(test)]
    pub fn replay_bytes(&self) -> usize {
        self.with(|s| s.replay_bytes).unwrap_or(0)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        self.state.lock().ok().map(|mut g| f(&mut g))
    }

    /// Negotiated protocol version.
    pub fn version(&self) -> String {
        self.with(|s| s.version.clone()).unwrap_or_default()
    }

    /// Sets the negotiated version (legacy SSE and stdio negotiate after the session exists).
    pub fn set_version(&self, v: &str) {
        self.with(|s| s.version = v.to_string());
    }

    /// Whether `initialize` has been answered on this session.
    pub fn is_initialized(&self) -> bool {
        self.with(|s| s.initialized).unwrap_or(false)
    }

    /// Marks initialize answered.
    pub fn mark_initialized(&self) {
        self.with(|s| s.initialized = true);
    }

    /// Refreshes the idle timer.
    pub fn touch(&self) {
        self.with(|s| s.last_active = Instant::now());
    }

    /// Seconds since the last request.
    pub fn idle_secs(&self) -> u64 {
        self.with(|s| s.last_active.elapsed().as_secs())
            .unwrap_or(u64::MAX)
    }

    /// Whether a stream is attached (such sessions are not evicted as idle).
    pub fn has_live_stream(&self) -> bool {
        self.with(|s| s.outbound.is_some() || s.streams.values().any(|l| l.live.is_some()))
            .unwrap_or(false)
    }

    /// Log level set by logging/setLevel.
    pub fn log_level(&self) -> Option<LogLevel> {
        self.with(|s| s.log_level).flatten()
    }

    /// logging/setLevel.
    pub fn set_log_level(&self, level: LogLevel) {
        self.with(|s| s.log_level = Some(level));
    }

    /// resources/subscribe; false when the per-session cap is reached.
    pub fn subscribe(&self, uri: &str) -> bool {
        self.with(|s| {
            if s.subscriptions.len() >= MAX_SUBSCRIPTIONS && !s.subscriptions.contains(uri) {
                false
            } else {
                s.subscriptions.insert(uri.to_string());
                true
            }
        })
        .unwrap_or(false)
    }

    /// resources/unsubscribe.
    pub fn unsubscribe(&self, uri: &str) {
        self.with(|s| s.subscriptions.remove(uri));
    }

    /// Whether an update of `uri` concerns this session (exact match, or a sub-resource).
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.with(|s| s.subscriptions.iter().any(|sub| covers(sub, uri)))
            .unwrap_or(false)
    }

    /// Registers an in-flight request so notifications/cancelled can reach it.
    pub fn begin_request(&self, id: &RequestId, tok: Arc<CancelToken>) {
        self.with(move |s| s.in_flight.insert(id.key(), tok));
    }

    /// Forgets a finished request.
    pub fn end_request(&self, id: &RequestId) {
        self.with(|s| s.in_flight.remove(&id.key()));
    }

    /// notifications/cancelled: cancels the request if it is still running (unknown ids are
    /// ignored, as the spec requires).
    pub fn cancel_request(&self, id: &RequestId) -> bool {
        match self.with(|s| s.in_flight.get(&id.key()).cloned()).flatten() {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// Attaches the outbound channel of a legacy SSE or stdio session.
    pub fn set_outbound(&self, out: Outbound) {
        self.with(|s| s.outbound = Some(out));
    }

    /// Sends a message on the outbound channel (legacy SSE, stdio).
    pub fn send_outbound(&self, msg: &Value) -> bool {
        self.send_outbound_json(&jsonrpc::encode(msg))
    }

    /// Sends an already serialized message on the outbound channel.
    pub fn send_outbound_json(&self, json: &[u8]) -> bool {
        match self.with(|s| s.outbound.clone()).flatten() {
            Some(out) => out(json),
            None => false,
        }
    }

    /// Opens a new POST response stream; returns its id.
    pub fn open_stream(&self) -> u64 {
        self.with(|s| {
            let id = s.next_stream;
            s.next_stream = s.next_stream.saturating_add(1);
            if s.streams.len() >= MAX_STREAMS_PER_SESSION {
                // forget the oldest finished stream
                let oldest = s
                    .streams
                    .iter()
                    .filter(|(k, l)| **k != GET_STREAM && l.done)
                    .map(|(k, _)| *k)
                    .min();
                if let Some(k) = oldest {
                    s.streams.remove(&k);
                }
            }
            s.streams.insert(id, StreamLog::new());
            id
        })
        .unwrap_or(u64::MAX)
    }

    /// Whether the standalone GET stream is currently attached.
    #[cfg(test)]
    pub fn get_stream_live(&self) -> bool {
        self.with(|s| {
            s.streams
                .get(&GET_STREAM)
                .map(|l| l.live.is_some())
                .unwrap_or(false)
        })
        .unwrap_or(false)
    }

    /// Attaches `tx` as the live connection of `stream` (creating the GET stream if needed),
    /// replacing any previous connection; returns the attachment generation.
    pub fn attach(&self, stream: u64, tx: mpsc::Sender<Bytes>) -> u64 {
        self.with(|s| {
            let gen = s.next_generation;
            s.next_generation = s.next_generation.saturating_add(1);
            s.streams.entry(stream).or_insert_with(StreamLog::new).live = Some((gen, tx));
            gen
        })
        .unwrap_or(0)
    }

    /// Detaches the live connection of `stream` if it is still generation `gen`.
    pub fn detach(&self, stream: u64, gen: u64) {
        self.with(|s| {
            if let Some(l) = s.streams.get_mut(&stream) {
                if l.live.as_ref().map(|(g, _)| *g == gen).unwrap_or(false) {
                    l.live = None;
                }
            }
        });
    }

    /// The id the next event on `stream` will get (used for the priming event).
    pub fn reserve_event_id(&self, stream: u64) -> String {
        self.with(|s| {
            let l = s.streams.entry(stream).or_insert_with(StreamLog::new);
            let seq = l.next_seq;
            l.next_seq = l.next_seq.saturating_add(1);
            format!("{stream}-{seq}")
        })
        .unwrap_or_else(|| format!("{stream}-0"))
    }

    /// Sends a JSON-RPC message on `stream`: logged for replay, then written to the live
    /// connection if any. A full or closed connection is dropped (the client resumes). Returns
    /// false when the frame could not be delivered live.
    pub fn stream_send(&self, stream: u64, msg: &Value) -> bool {
        self.stream_send_json(stream, &jsonrpc::encode(msg))
    }

    /// [`Session::stream_send`] for an already serialized message.
    pub fn stream_send_json(&self, stream: u64, json: &[u8]) -> bool {
        self.with(|s| {
            let cap = self.replay_cap;
            let serial = s.next_serial;
            s.next_serial += 1;
            let l = s.streams.entry(stream).or_insert_with(StreamLog::new);
            let seq = l.next_seq;
            l.next_seq = l.next_seq.saturating_add(1);
            let frame = sse::message_frame(Some(&format!("{stream}-{seq}")), json);
            let added = frame.len();
            l.events.push_back((seq, serial, frame.clone()));
            let mut dropped = 0;
            while l.events.len() > cap {
                if let Some((_, _, f)) = l.events.pop_front() {
                    dropped += f.len();
                }
            }
            let live = l.live.as_ref().map(|(_, tx)| tx.try_send(frame).is_ok());
            if live == Some(false) {
                l.live = None;
            }
            s.replay_bytes = (s.replay_bytes + added).saturating_sub(dropped);
            s.trim_replay(self.replay_bytes_cap);
            match live {
                Some(true) => true,
                Some(false) => {
                    crate::obs::SseStreamOverflow.emit();
                    false
                }
                None => false,
            }
        })
        .unwrap_or(false)
    }

    /// Marks a POST stream finished and ends its live connection.
    pub fn finish_stream(&self, stream: u64) {
        self.with(|s| {
            if let Some(l) = s.streams.get_mut(&stream) {
                l.done = true;
                l.live = None;
                if l.events.is_empty() {
                    s.streams.remove(&stream);
                }
            }
        });
    }

    /// Resumes after `Last-Event-ID` (`<stream>-<seq>`): the frames logged after it are written
    /// to `tx` (under the session lock, so nothing interleaves), then `tx` stays attached if the
    /// stream is still open.
    pub fn resume(&self, last_event_id: &str, tx: mpsc::Sender<Bytes>) -> Resume {
        let Some((stream, seq)) = parse_event_id(last_event_id) else {
            return Resume::Unknown;
        };
        self.with(|s| {
            let gen = s.next_generation;
            let Some(l) = s.streams.get_mut(&stream) else {
                return Resume::Unknown;
            };
            for (_, _, f) in l.events.iter().filter(|(q, _, _)| *q > seq) {
                if tx.try_send(f.clone()).is_err() {
                    break;
                }
            }
            if l.done {
                Resume::Replay(None)
            } else {
                l.live = Some((gen, tx));
                s.next_generation = s.next_generation.saturating_add(1);
                Resume::Replay(Some(gen))
            }
        })
        .unwrap_or(Resume::Unknown)
    }

    /// Attaches `tx` to `stream` unless a connection is already live there (409 for a second
    /// GET stream).
    pub fn attach_exclusive(&self, stream: u64, tx: mpsc::Sender<Bytes>) -> Option<u64> {
        self.with(|s| {
            let gen = s.next_generation;
            let l = s.streams.entry(stream).or_insert_with(StreamLog::new);
            if l.live
                .as_ref()
                .map(|(_, t)| !t.is_closed())
                .unwrap_or(false)
            {
                return None;
            }
            l.live = Some((gen, tx));
            s.next_generation = s.next_generation.saturating_add(1);
            Some(gen)
        })
        .flatten()
    }

    /// Stream id a `Last-Event-ID` refers to.
    pub fn stream_of(last_event_id: &str) -> Option<u64> {
        parse_event_id(last_event_id).map(|(s, _)| s)
    }

    /// Ends every stream (DELETE, eviction).
    pub fn close(&self) {
        self.with(|s| {
            for l in s.streams.values_mut() {
                l.live = None;
            }
            s.outbound = None;
            for t in s.in_flight.values() {
                t.cancel();
            }
        });
    }
}

fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (a, b) = id.trim().split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Whether a subscription to `sub` covers an update of `uri` (same URI or a sub-resource).
pub fn covers(sub: &str, uri: &str) -> bool {
    if sub == uri {
        return true;
    }
    uri.strip_prefix(sub)
        .map(|rest| rest.starts_with('/') || rest.starts_with('?') || sub.ends_with('/'))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::NumId;
    use serde_json::json;

    #[test]
    fn ids_are_unguessable_visible_ascii() {
        let a = new_session_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_ne!(a, new_session_id());
    }

    #[test]
    fn replay_after_last_event_id() {
        let s = Session::new(TransportKind::Streamable, "2025-11-25", None, 3);
        for i in 0..5 {
            s.stream_send(GET_STREAM, &json!({"n": i}));
        }
        let (tx, mut rx) = mpsc::channel(8);
        // only 3 kept: seq 3, 4, 5
        assert!(matches!(s.resume("0-3", tx), Resume::Replay(Some(_))));
        let first = rx
            .try_recv()
            .map(|f| String::from_utf8_lossy(&f).to_string());
        assert!(first.map(|f| f.starts_with("id: 0-4\n")).unwrap_or(false));
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
        assert!(s.get_stream_live());
        let (tx2, _rx2) = mpsc::channel(8);
        assert!(matches!(s.resume("9-1", tx2), Resume::Unknown));
    }

    #[test]
    fn finished_post_stream_replays_and_ends() {
        let s = Session::new(TransportKind::Streamable, "2025-11-25", None, 16);
        let k = s.open_stream();
        s.stream_send(k, &json!({"progress": 1}));
        s.stream_send(k, &json!({"result": {}}));
        s.finish_stream(k);
        let (tx, mut rx) = mpsc::channel(8);
        assert!(matches!(
            s.resume(&format!("{k}-1"), tx),
            Resume::Replay(None)
        ));
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn the_replay_log_is_bounded_in_bytes_across_streams() {
        let s = Session::new(TransportKind::Streamable, "2025-11-25", None, 1000)
            .with_replay_bytes(8 * 1024);
        let big = json!({"data": "x".repeat(900)});
        for _ in 0..50 {
            let k = s.open_stream();
            s.stream_send(k, &big);
            s.stream_send(k, &big);
            s.finish_stream(k);
        }
        for _ in 0..20 {
            s.stream_send(GET_STREAM, &big);
        }
        assert!(s.replay_bytes() <= 8 * 1024, "{}", s.replay_bytes());
        assert!(s.replay_bytes() > 6 * 1024);
        // the newest frames are the ones kept, and finished streams emptied of frames are gone
        let streams = s.with(|st| st.streams.len()).unwrap();
        assert_eq!(streams, 1, "only the GET stream still holds frames");
        let (tx, mut rx) = mpsc::channel(64);
        assert!(matches!(s.resume("0-18", tx), Resume::Replay(Some(_))));
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok() && rx.try_recv().is_err());
    }

    #[test]
    fn overflow_drops_the_live_connection() {
        let s = Session::new(TransportKind::Streamable, "2025-11-25", None, 16);
        let (tx, _rx) = mpsc::channel(1);
        s.attach(GET_STREAM, tx);
        assert!(s.stream_send(GET_STREAM, &json!(1)));
        assert!(!s.stream_send(GET_STREAM, &json!(2)));
        assert!(!s.get_stream_live());
    }

    #[test]
    fn cancellation_reaches_in_flight_requests() {
        let s = Session::new(TransportKind::Stdio, "2025-06-18", None, 4);
        let id = RequestId::Num(NumId::Signed(4));
        let tok = Arc::new(CancelToken::new());
        s.begin_request(&id, tok.clone());
        assert!(s.cancel_request(&RequestId::Num(NumId::Signed(4))));
        assert!(tok.is_cancelled());
        assert!(!s.cancel_request(&RequestId::Str("4".into())));
        s.end_request(&id);
        assert!(!s.cancel_request(&id));
    }

    #[test]
    fn subscription_coverage() {
        assert!(covers("network://hosts", "network://hosts"));
        assert!(covers("network://host", "network://host/abc"));
        assert!(!covers("network://host", "network://hosts"));
        let s = Session::new(TransportKind::Streamable, "2025-11-25", None, 4);
        assert!(s.subscribe("network://map"));
        assert!(s.is_subscribed("network://map"));
        s.unsubscribe("network://map");
        assert!(!s.is_subscribed("network://map"));
    }
}
