//! HTTP/1.x: requests and responses on a reassembled TCP flow, paired in order (pipelining
//! included), bodies skipped by `Content-Length` or chunked framing. One [`HttpRecord`] per
//! transaction, as Suricata logs it; a request the flow ends before answering is logged
//! without a status. Header blocks are bounded; anything that does not frame as HTTP stops
//! the parser for that flow.

use netmonitor_common::{Direction, HttpRecord};
use std::collections::VecDeque;

/// Largest header block kept while waiting for its end.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Transactions parsed per flow at most.
const MAX_TRANSACTIONS: u32 = 512;
/// Requests waiting for a response at most (pipelining).
const MAX_PENDING: usize = 32;

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

/// Whether the first bytes a client sent look like an HTTP/1.x request line.
pub fn looks_like_request(data: &[u8]) -> bool {
    METHODS.iter().any(|m| data.starts_with(m))
}

/// How the rest of a message's body is delimited.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// None: the next bytes start a header block.
    #[default]
    None,
    /// This many bytes remain.
    Length(u64),
    /// Chunked: reading a chunk-size line.
    ChunkSize,
    /// Chunked: this many data bytes (plus CRLF) remain of the current chunk.
    ChunkData(u64),
    /// Chunked: reading trailer lines until an empty one.
    Trailer,
    /// To the end of the connection: nothing more to parse in this direction.
    UntilClose,
}

#[derive(Debug, Default)]
struct Side {
    buf: Vec<u8>,
    body: Body,
}

/// The HTTP state of one flow.
#[derive(Debug, Default)]
pub struct HttpFlow {
    requests: Side,
    responses: Side,
    pending: VecDeque<(HttpRecord, bool)>,
    transactions: u32,
    failed: bool,
}

impl HttpFlow {
    /// Whether parsing stopped for good (not HTTP, or limits reached).
    pub fn is_done(&self) -> bool {
        self.failed || self.transactions >= MAX_TRANSACTIONS
    }

    /// Feeds in-order bytes of one direction; completed transactions are pushed to `out`.
    pub fn feed(&mut self, dir: Direction, mut data: &[u8], out: &mut Vec<HttpRecord>) {
        while !data.is_empty() && !self.is_done() {
            let side = match dir {
                Direction::ToServer => &mut self.requests,
                Direction::ToClient => &mut self.responses,
            };
            match skip_body(side, data) {
                Some(rest) => data = rest,
                None => return,
            }
            if data.is_empty() {
                return;
            }
            // Header block: buffer until CRLF CRLF.
            let side = match dir {
                Direction::ToServer => &mut self.requests,
                Direction::ToClient => &mut self.responses,
            };
            let before = side.buf.len();
            let take = data
                .len()
                .min(MAX_HEADER_BYTES + 4 - before.min(MAX_HEADER_BYTES));
            side.buf.extend_from_slice(&data[..take]);
            // Only the new bytes (and the three before them) can complete the terminator.
            let from = before.saturating_sub(3);
            let Some(end) = find_header_end(&side.buf[from..]).map(|e| e + from) else {
                if side.buf.len() >= MAX_HEADER_BYTES {
                    self.failed = true;
                }
                return;
            };
            let consumed = end - before;
            data = &data[consumed.min(data.len())..];
            let head = std::mem::take(&mut side.buf);
            let head = &head[..end];
            match dir {
                Direction::ToServer => self.on_request(head, out),
                Direction::ToClient => self.on_response(head, out),
            }
        }
    }

    fn on_request(&mut self, head: &[u8], out: &mut Vec<HttpRecord>) {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or("");
        let mut parts = first.splitn(3, ' ');
        let (Some(method), Some(target), Some(proto)) = (parts.next(), parts.next(), parts.next())
        else {
            self.failed = true;
            return;
        };
        if !proto.starts_with("HTTP/1.") || !looks_like_request(format!("{method} ").as_bytes()) {
            self.failed = true;
            return;
        }
        let headers = Headers::parse(lines);
        let mut rec = HttpRecord {
            url: target.to_owned(),
            http_method: method.to_owned(),
            protocol: proto.to_owned(),
            http_user_agent: headers.get("user-agent").map(str::to_owned),
            http_refer: headers.get("referer").map(str::to_owned),
            ..HttpRecord::default()
        };
        let host = headers.get("host").map(str::to_owned).or_else(|| {
            target
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or("").to_owned())
        });
        if let Some(h) = host.filter(|h| !h.is_empty()) {
            let (name, port) = split_host_port(&h);
            rec.hostname = Some(name.to_ascii_lowercase());
            rec.http_port = port;
        }
        self.requests.body = headers.body(false);
        let head_request = method == "HEAD";
        if self.pending.len() >= MAX_PENDING {
            if let Some((old, _)) = self.pending.pop_front() {
                out.push(old);
            }
        }
        self.pending.push_back((rec, head_request));
        self.transactions += 1;
    }

    fn on_response(&mut self, head: &[u8], out: &mut Vec<HttpRecord>) {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or("");
        let mut parts = first.splitn(3, ' ');
        let (Some(proto), Some(code)) = (parts.next(), parts.next()) else {
            self.failed = true;
            return;
        };
        let Ok(status) = code.parse::<u16>() else {
            self.failed = true;
            return;
        };
        if !proto.starts_with("HTTP/1.") {
            self.failed = true;
            return;
        }
        let headers = Headers::parse(lines);
        if (100..200).contains(&status) {
            // Interim response: the final one follows.
            self.responses.body = Body::None;
            return;
        }
        let Some((mut rec, head_request)) = self.pending.pop_front() else {
            // A response nobody asked for (capture started mid-connection): skip its body.
            self.responses.body = headers.body(true);
            return;
        };
        rec.status = Some(status);
        rec.http_content_type = headers.get("content-type").map(str::to_owned);
        rec.length = headers.get("content-length").and_then(|v| v.parse().ok());
        let no_body = head_request || status == 204 || status == 304;
        self.responses.body = if no_body {
            Body::None
        } else {
            headers.body(true)
        };
        out.push(rec);
    }

    /// Requests still waiting for a response when the flow ends.
    pub fn finish(&mut self, out: &mut Vec<HttpRecord>) {
        out.extend(self.pending.drain(..).map(|(r, _)| r));
    }
}

/// Consumes body bytes of `side` from `data`; returns the rest (header bytes), or `None` when
/// everything was body (or the body runs to the end of the connection).
fn skip_body<'d>(side: &mut Side, mut data: &'d [u8]) -> Option<&'d [u8]> {
    loop {
        match side.body {
            Body::None => return Some(data),
            Body::UntilClose => return None,
            Body::Length(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                side.body = match n - take as u64 {
                    0 => Body::None,
                    left => Body::Length(left),
                };
                data = &data[take..];
                if data.is_empty() {
                    return if side.body == Body::None {
                        Some(data)
                    } else {
                        None
                    };
                }
            }
            Body::ChunkData(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                data = &data[take..];
                side.body = match n - take as u64 {
                    0 => Body::ChunkSize,
                    left => Body::ChunkData(left),
                };
                if data.is_empty() {
                    return None;
                }
            }
            Body::ChunkSize | Body::Trailer => {
                // Line-based: buffer until CRLF.
                let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                    if side.buf.len() + data.len() > 1024 {
                        side.body = Body::UntilClose;
                        return None;
                    }
                    side.buf.extend_from_slice(data);
                    return None;
                };
                side.buf.extend_from_slice(&data[..nl]);
                data = &data[nl + 1..];
                let line = std::mem::take(&mut side.buf);
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                if side.body == Body::Trailer {
                    if line.is_empty() {
                        side.body = Body::None;
                    }
                    continue;
                }
                if line.is_empty() {
                    // The CRLF that ends a chunk's data.
                    continue;
                }
                let size = line.split(';').next().unwrap_or("").trim();
                match u64::from_str_radix(size, 16) {
                    Ok(0) => side.body = Body::Trailer,
                    Ok(n) => side.body = Body::ChunkData(n),
                    Err(_) => {
                        side.body = Body::UntilClose;
                        return None;
                    }
                }
            }
        }
    }
}

fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// `host[:port]` (IPv6 in brackets) → (host, port).
fn split_host_port(h: &str) -> (&str, Option<u16>) {
    if let Some(rest) = h.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (h, None),
        },
        _ => (h, None),
    }
}

struct Headers<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Headers<'a> {
    fn parse(lines: impl Iterator<Item = &'a str>) -> Self {
        Headers(
            lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// How the body after these headers is framed. A request without framing has no body; a
    /// response without framing runs to the end of the connection.
    fn body(&self, response: bool) -> Body {
        if self
            .get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Body::ChunkSize;
        }
        match self.get("content-length").map(|v| v.parse::<u64>()) {
            Some(Ok(0)) => Body::None,
            Some(Ok(n)) => Body::Length(n),
            Some(Err(_)) => Body::UntilClose,
            None if response => Body::UntilClose,
            None => Body::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{ToClient, ToServer};

    fn run(chunks: &[(Direction, &[u8])]) -> Vec<HttpRecord> {
        let mut f = HttpFlow::default();
        let mut out = Vec::new();
        for (d, c) in chunks {
            f.feed(*d, c, &mut out);
        }
        f.finish(&mut out);
        out
    }

    #[test]
    fn request_and_response_pair_up() {
        let out = run(&[
            (
                ToServer,
                b"GET /dl/payload.exe?x=1 HTTP/1.1\r\nHost: Evil.Example:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
            ),
            (
                ToClient,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello",
            ),
        ]);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r.hostname.as_deref(), Some("evil.example"));
        assert_eq!(r.http_port, Some(8080));
        assert_eq!(r.url, "/dl/payload.exe?x=1");
        assert_eq!(r.http_method, "GET");
        assert_eq!(r.protocol, "HTTP/1.1");
        assert_eq!(r.http_user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(r.status, Some(200));
        assert_eq!(r.length, Some(5));
        assert_eq!(
            r.http_content_type.as_deref(),
            Some("application/octet-stream")
        );
    }

    #[test]
    fn pipelined_chunked_and_byte_by_byte() {
        let req = b"POST /a HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: a.example\r\n\r\n";
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let whole = run(&[(ToServer, req), (ToClient, resp)]);
        let mut chunks: Vec<(Direction, &[u8])> = req.chunks(1).map(|c| (ToServer, c)).collect();
        chunks.extend(resp.chunks(1).map(|c| (ToClient, c)));
        let bytewise = run(&chunks);
        assert_eq!(whole, bytewise);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].url, "/a");
        assert_eq!(whole[0].status, Some(201));
        assert_eq!(whole[1].url, "/b");
        assert_eq!(whole[1].status, Some(404));
    }

    #[test]
    fn unanswered_requests_and_junk() {
        let out = run(&[(ToServer, b"GET http://proxy.example/x HTTP/1.0\r\n\r\n")]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].hostname.as_deref(), Some("proxy.example"));
        assert_eq!(out[0].status, None);
        let mut f = HttpFlow::default();
        let mut out = Vec::new();
        f.feed(ToServer, b"GET / SMTP/9\r\n\r\n", &mut out);
        assert!(f.is_done());
        let mut f = HttpFlow::default();
        f.feed(ToServer, &vec![b'A'; MAX_HEADER_BYTES + 10], &mut out);
        assert!(f.is_done(), "an endless header block stops the parser");
        assert!(looks_like_request(b"GET / HTTP/1.1"));
        assert!(!looks_like_request(b"\x16\x03\x01"));
    }
}
