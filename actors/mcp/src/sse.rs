//! Server-Sent Events: frame encoding and the streaming response body that carries SSE frames
//! from a channel to the client, with keep-alive comments and a hook that runs when the client
//! goes away.

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames buffered between a producer and a slow client before the stream is closed (the client
/// can resume with `Last-Event-ID`).
pub const STREAM_CHANNEL_CAPACITY: usize = 256;

/// One `event: message` frame carrying a serialized JSON-RPC message, with an optional event id.
pub fn message_frame(id: Option<&str>, json: &[u8]) -> Bytes {
    let mut s = Vec::with_capacity(256);
    if let Some(id) = id {
        s.extend_from_slice(b"id: ");
        s.extend_from_slice(id.as_bytes());
        s.push(b'\n');
    }
    s.extend_from_slice(b"event: message\ndata: ");
    // serde_json never emits raw newlines, so one data line suffices
    s.extend_from_slice(json);
    s.extend_from_slice(b"\n\n");
    Bytes::from(s)
}

/// The priming event of a resumable stream: an id, a retry hint and empty data (2025-11-25).
pub fn priming_frame(id: &str, retry_ms: u64) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {retry_ms}\ndata: \n\n"))
}

/// The legacy (2024-11-05) `endpoint` event telling the client where to POST.
pub fn endpoint_frame(url: &str) -> Bytes {
    Bytes::from(format!("event: endpoint\ndata: {url}\n\n"))
}

/// Runs when an SSE body is dropped (client disconnected or stream finished).
pub type OnDrop = Box<dyn FnOnce() + Send>;

/// A streaming response body fed by a channel of ready-made SSE frames.
pub struct SseBody {
    rx: mpsc::Receiver<Bytes>,
    keepalive: tokio::time::Interval,
    on_drop: Option<OnDrop>,
}

impl SseBody {
    /// A body reading from `rx`, sending a comment every `keepalive`.
    pub fn new(rx: mpsc::Receiver<Bytes>, keepalive: Duration, on_drop: Option<OnDrop>) -> Self {
        let period = keepalive.max(Duration::from_millis(10));
        SseBody {
            rx,
            keepalive: tokio::time::interval_at(tokio::time::Instant::now() + period, period),
            on_drop,
        }
    }
}

impl MessageBody for SseBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(b)) => return Poll::Ready(Some(Ok(b))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if this.keepalive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keepalive\n\n"))));
        }
        Poll::Pending
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_are_well_formed() {
        let f = message_frame(Some("3-7"), &crate::jsonrpc::encode(&json!({"a": "x\ny"})));
        assert_eq!(
            &f[..],
            b"id: 3-7\nevent: message\ndata: {\"a\":\"x\\ny\"}\n\n"
        );
        assert_eq!(
            &priming_frame("0-0", 3000)[..],
            b"id: 0-0\nretry: 3000\ndata: \n\n"
        );
        assert_eq!(
            &endpoint_frame("/messages?sessionId=ab")[..],
            b"event: endpoint\ndata: /messages?sessionId=ab\n\n"
        );
    }
}
