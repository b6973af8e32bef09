//! Per-flow TLS state: buffers each direction's reassembled bytes, splits them into records and
//! handshake messages (which may span records, or share one), and builds the flow's
//! [`TlsHandshake`] event.
//!
//! Byte caps are explicit constants; going over one counts an anomaly and drops data rather
//! than growing memory. Streams that do not start with a TLS record (a SOCKS or HTTP CONNECT
//! preamble, a capture that starts mid-stream) are scanned, within [`RESYNC_SCAN_LIMIT`], for a
//! plausible handshake record. Only the first ClientHello of a flow is fingerprinted.

use crate::ja4::Transport;
use crate::parser::{
    self, content_type, handshake_type, sslv2_type, version, ParseError, Scan,
    HANDSHAKE_HEADER_LEN, RECORD_HEADER_LEN,
};
use crate::{apply_client_hello, client_offered_version, ja3, x509};
use netmonitor_common::{Direction, TlsHandshake};

/// Largest handshake message reassembled (certificate chains are the big ones); a longer
/// message is skipped and counted as oversized.
pub const MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;
/// Most bytes buffered per direction (partial record plus partial handshake message).
pub const MAX_BUFFERED_PER_DIRECTION: usize = 256 * 1024;
/// Most non-TLS bytes skipped per direction while looking for a record start.
pub const RESYNC_SCAN_LIMIT: usize = 8 * 1024;
/// Most certificates of a chain decoded (the leaf is the one EVE logs).
pub const MAX_CERTIFICATES: usize = 16;

/// Counters of malformed or unusual input seen in one flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsAnomalies {
    /// Record headers that were not TLS (bad content type or version) after the stream had
    /// started as TLS.
    pub malformed_records: u32,
    /// Hello or Certificate messages that did not parse.
    pub malformed_handshakes: u32,
    /// Records, handshake messages or buffers over their caps.
    pub oversized: u32,
    /// SSLv2-format hellos.
    pub sslv2: u32,
    /// Bytes skipped before a record start (proxy preambles, mid-stream starts).
    pub skipped_bytes: u64,
    /// Directions abandoned because no TLS record was found within the scan limit.
    pub not_tls: u32,
    /// Certificates that failed to decode.
    pub certificate_errors: u32,
    /// ClientHellos after the first (HelloRetryRequest retries, duplicates); not fingerprinted.
    pub extra_client_hellos: u32,
}

impl TlsAnomalies {
    /// True when anything malformed, oversized or legacy (SSLv2) was seen.
    pub fn any(&self) -> bool {
        self.malformed_records > 0
            || self.malformed_handshakes > 0
            || self.oversized > 0
            || self.sslv2 > 0
            || self.certificate_errors > 0
    }
}

/// Where a direction's parser stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// Nothing seen yet: decide between TLS, SSLv2 and scanning.
    #[default]
    Start,
    /// Looking for a plausible record start.
    Scan,
    /// In step with the record layer.
    Records,
    /// Given up (not TLS, or over a cap).
    Dead,
}

/// Parser state of one direction of the stream.
#[derive(Debug, Default)]
struct Side {
    mode: Mode,
    /// Bytes not yet consumed (a partial record, or scan data).
    buf: Vec<u8>,
    /// A partial handshake message.
    hs: Vec<u8>,
    /// Bytes of an oversized handshake message still to drop.
    hs_skip: usize,
    /// Records after ChangeCipherSpec are ciphertext.
    encrypted: bool,
    /// Bytes skipped while scanning.
    scanned: usize,
}

fn other(dir: Direction) -> Direction {
    match dir {
        Direction::ToServer => Direction::ToClient,
        Direction::ToClient => Direction::ToServer,
    }
}

/// Per-flow TLS state; the pipeline creates one per TCP flow it suspects is TLS and feeds it
/// both directions' reassembled bytes.
#[derive(Debug, Default)]
pub struct TlsFlowParser {
    to_server: Side,
    to_client: Side,
    hs: TlsHandshake,
    /// Which direction carried the ClientHello (or is opposite the ServerHello).
    client_dir: Option<Direction>,
    /// Which direction carried the ServerHello (or is opposite the ClientHello).
    server_dir: Option<Direction>,
    client_hello_seen: bool,
    server_hello_seen: bool,
    cert_seen: bool,
    /// Version Suricata attributes to the client (offered).
    offered_version: Option<u16>,
    /// Negotiated version as Suricata names it (legacy field folded for early drafts).
    negotiated_version: Option<u16>,
    /// The handshake is complete enough to log.
    complete: bool,
    /// The event was handed out.
    returned: bool,
    anomalies: TlsAnomalies,
}

impl TlsFlowParser {
    /// A parser for a new flow.
    pub fn new() -> Self {
        Self::default()
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        }
    }

    fn side_ref(&self, dir: Direction) -> &Side {
        match dir {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    /// In-order reassembled stream bytes of one direction (any chunking, even one byte at a
    /// time).
    pub fn feed(&mut self, dir: Direction, data: &[u8]) {
        if self.complete || data.is_empty() || self.side_ref(dir).mode == Mode::Dead {
            return;
        }
        let mut buf = std::mem::take(&mut self.side(dir).buf);
        if buf.is_empty() {
            let consumed = self.process(dir, data);
            if !self.complete && self.side_ref(dir).mode != Mode::Dead {
                buf.extend_from_slice(data.get(consumed..).unwrap_or(&[]));
            }
        } else {
            buf.extend_from_slice(data);
            let consumed = self.process(dir, &buf);
            if self.complete || self.side_ref(dir).mode == Mode::Dead {
                buf.clear();
            } else {
                buf.drain(..consumed.min(buf.len()));
            }
        }
        let hs_len = self.side_ref(dir).hs.len();
        if buf.len().saturating_add(hs_len) > MAX_BUFFERED_PER_DIRECTION {
            self.anomalies.oversized += 1;
            buf = Vec::new();
            let side = self.side(dir);
            side.hs = Vec::new();
            side.mode = Mode::Dead;
        }
        self.side(dir).buf = buf;
    }

    /// The handshake once it is complete enough to log (returned at most once per flow).
    pub fn poll_event(&mut self) -> Option<TlsHandshake> {
        if self.complete && !self.returned {
            self.returned = true;
            return Some(self.build_event());
        }
        None
    }

    /// At flow end: the handshake if a ClientHello or ServerHello was seen and not yet returned.
    pub fn finish(&mut self) -> Option<TlsHandshake> {
        if self.returned || !(self.client_hello_seen || self.server_hello_seen) {
            return None;
        }
        self.returned = true;
        self.complete = true;
        Some(self.build_event())
    }

    /// True when no more bytes are needed (lets the pipeline stop reassembling this flow).
    pub fn is_done(&self) -> bool {
        self.complete
            || self.returned
            || (self.to_server.mode == Mode::Dead && self.to_client.mode == Mode::Dead)
    }

    /// True when the ClientHello came in the `Direction::ToClient` stream (the capture's idea
    /// of who is the client was wrong).
    pub fn roles_swapped(&self) -> bool {
        self.client_dir == Some(Direction::ToClient)
    }

    /// Counters of malformed/oversized/SSLv2 anomalies seen in this flow.
    pub fn anomalies(&self) -> &TlsAnomalies {
        &self.anomalies
    }

    /// Moves the handshake out (called once: `returned` is set and no more bytes are
    /// processed after it).
    fn build_event(&mut self) -> TlsHandshake {
        let mut hs = std::mem::take(&mut self.hs);
        hs.version = self
            .negotiated_version
            .or(self.offered_version)
            .map(version::name);
        hs
    }

    /// Whether bytes from `dir` come from the server.
    fn is_server(&self, dir: Direction) -> bool {
        match (self.server_dir, self.client_dir) {
            (Some(s), _) => s == dir,
            (None, Some(c)) => c != dir,
            (None, None) => dir == Direction::ToClient,
        }
    }

    /// Marks the handshake loggable once a hello was seen.
    fn mark_complete(&mut self) {
        if self.client_hello_seen || self.server_hello_seen {
            self.complete = true;
        }
    }

    /// Consumes as much of `input` as possible; returns how many bytes were used.
    fn process(&mut self, dir: Direction, input: &[u8]) -> usize {
        let mut pos = 0usize;
        loop {
            if self.complete {
                return input.len();
            }
            let rest = input.get(pos..).unwrap_or(&[]);
            match self.side_ref(dir).mode {
                Mode::Dead => return input.len(),
                Mode::Start => {
                    let Some(first) = rest.first() else {
                        return pos;
                    };
                    if first & 0x80 != 0 {
                        if rest.len() < 7 {
                            return pos;
                        }
                        if parser::looks_like_sslv2(rest, sslv2_type::CLIENT_HELLO)
                            || parser::looks_like_sslv2(rest, sslv2_type::SERVER_HELLO)
                        {
                            let Some(total) = parser::sslv2_record_len(rest) else {
                                return pos;
                            };
                            let Some(record) = rest.get(2..total) else {
                                return pos;
                            };
                            self.on_sslv2(dir, record);
                            pos += total;
                            self.side(dir).mode = Mode::Records;
                            continue;
                        }
                        self.side(dir).mode = Mode::Scan;
                        continue;
                    }
                    match parser::parse_record_header(rest) {
                        Err(ParseError::Incomplete) => return pos,
                        Ok(_) => self.side(dir).mode = Mode::Records,
                        Err(ParseError::Oversized) => {
                            self.anomalies.oversized += 1;
                            self.side(dir).mode = Mode::Scan;
                        }
                        Err(ParseError::Malformed(_)) => self.side(dir).mode = Mode::Scan,
                    }
                }
                Mode::Scan => {
                    let (skip, found) = match parser::find_record_start(rest) {
                        Scan::Found(off) => (off, true),
                        Scan::NotYet(off) => (off, false),
                    };
                    pos += skip;
                    self.anomalies.skipped_bytes += skip as u64;
                    let side = self.side(dir);
                    side.scanned = side.scanned.saturating_add(skip);
                    if side.scanned > RESYNC_SCAN_LIMIT {
                        side.mode = Mode::Dead;
                        self.anomalies.not_tls += 1;
                        return input.len();
                    }
                    if !found {
                        return pos;
                    }
                    side.mode = Mode::Records;
                }
                Mode::Records => match parser::parse_record_header(rest) {
                    Err(ParseError::Incomplete) => return pos,
                    Err(ParseError::Oversized) => {
                        self.anomalies.oversized += 1;
                        self.side(dir).mode = Mode::Scan;
                    }
                    Err(ParseError::Malformed(_)) => {
                        self.anomalies.malformed_records += 1;
                        self.side(dir).mode = Mode::Scan;
                    }
                    Ok(h) => {
                        let total = RECORD_HEADER_LEN + h.length;
                        let Some(body) = rest.get(RECORD_HEADER_LEN..total) else {
                            return pos;
                        };
                        self.on_record(dir, h.content_type, body);
                        pos += total;
                    }
                },
            }
        }
    }

    fn on_sslv2(&mut self, dir: Direction, msg: &[u8]) {
        self.anomalies.sslv2 += 1;
        match msg.first().copied() {
            Some(sslv2_type::CLIENT_HELLO) if !self.client_hello_seen => {
                self.client_hello_seen = true;
                self.set_client_dir(dir);
                match parser::parse_sslv2_client_hello(msg) {
                    Ok(ch) => {
                        self.hs.client_version = Some(ch.version);
                        self.hs.cipher_suites = ch
                            .tls_cipher_suites()
                            .into_iter()
                            .filter(|c| !parser::is_grease(*c))
                            .collect();
                        self.offered_version = Some(ch.version);
                    }
                    Err(_) => self.anomalies.malformed_handshakes += 1,
                }
            }
            Some(sslv2_type::SERVER_HELLO) if !self.server_hello_seen => {
                self.server_hello_seen = true;
                self.set_server_dir(dir);
                self.hs.server_version = Some(version::SSL_2);
                self.negotiated_version = Some(version::SSL_2);
                if let Ok(der) = parser::sslv2_server_hello_certificate(msg) {
                    self.add_certificates(&[der]);
                }
                self.mark_complete();
            }
            _ => {}
        }
    }

    fn set_client_dir(&mut self, dir: Direction) {
        self.client_dir = Some(dir);
        if self.server_dir.is_none() {
            self.server_dir = Some(other(dir));
        }
    }

    fn set_server_dir(&mut self, dir: Direction) {
        self.server_dir = Some(dir);
        if self.client_dir.is_none() {
            self.client_dir = Some(other(dir));
        }
    }

    fn on_record(&mut self, dir: Direction, ct: u8, body: &[u8]) {
        let from_server = self.is_server(dir);
        let encrypted = self.side_ref(dir).encrypted;
        match ct {
            content_type::CHANGE_CIPHER_SPEC => {
                self.side(dir).encrypted = true;
                if from_server {
                    // A resumed TLS 1.2 session: no certificate will follow.
                    self.mark_complete();
                }
            }
            content_type::ALERT if from_server && !encrypted => self.mark_complete(),
            content_type::HANDSHAKE if !encrypted => self.on_handshake_bytes(dir, body),
            content_type::APPLICATION_DATA => {
                self.side(dir).encrypted = true;
                if from_server {
                    self.mark_complete();
                }
            }
            _ => {}
        }
    }

    fn on_handshake_bytes(&mut self, dir: Direction, body: &[u8]) {
        let side = self.side(dir);
        let skip = side.hs_skip.min(body.len());
        side.hs_skip -= skip;
        let data = body.get(skip..).unwrap_or(&[]);
        if data.is_empty() {
            return;
        }
        let mut hs = std::mem::take(&mut side.hs);
        if hs.is_empty() {
            let used = self.parse_messages(dir, data);
            hs.extend_from_slice(data.get(used..).unwrap_or(&[]));
        } else {
            hs.extend_from_slice(data);
            let used = self.parse_messages(dir, &hs);
            hs.drain(..used.min(hs.len()));
        }
        if self.complete {
            hs.clear();
        }
        self.side(dir).hs = hs;
    }

    /// Handles every complete handshake message at the front of `buf`; returns bytes used.
    fn parse_messages(&mut self, dir: Direction, buf: &[u8]) -> usize {
        let mut pos = 0usize;
        while !self.complete {
            let rest = buf.get(pos..).unwrap_or(&[]);
            let mut r = parser::Reader::new(rest);
            let (Ok(typ), Ok(len)) = (r.u8("type"), r.u24("length")) else {
                break;
            };
            if len > MAX_HANDSHAKE_MESSAGE {
                self.anomalies.oversized += 1;
                let avail = rest.len() - HANDSHAKE_HEADER_LEN;
                if avail >= len {
                    pos += HANDSHAKE_HEADER_LEN + len;
                    continue;
                }
                self.side(dir).hs_skip = len - avail;
                return buf.len();
            }
            let Ok(body) = r.bytes(len, "body") else {
                break;
            };
            self.on_message(dir, typ, body);
            pos += HANDSHAKE_HEADER_LEN + len;
        }
        pos
    }

    fn on_message(&mut self, dir: Direction, typ: u8, body: &[u8]) {
        let from_server = self.is_server(dir);
        match typ {
            handshake_type::CLIENT_HELLO => self.on_client_hello(dir, body),
            handshake_type::SERVER_HELLO => self.on_server_hello(dir, body),
            handshake_type::CERTIFICATE if from_server && !self.cert_seen => {
                self.cert_seen = true;
                match parser::parse_certificate_list(body, MAX_CERTIFICATES) {
                    Ok(list) => self.add_certificates(&list),
                    Err(_) => self.anomalies.malformed_handshakes += 1,
                }
                self.mark_complete();
            }
            handshake_type::SERVER_HELLO_DONE if from_server => self.mark_complete(),
            _ => {}
        }
    }

    fn on_client_hello(&mut self, dir: Direction, body: &[u8]) {
        if self.client_hello_seen {
            self.anomalies.extra_client_hellos += 1;
            return;
        }
        self.client_hello_seen = true;
        self.set_client_dir(dir);
        match parser::parse_client_hello(body) {
            Ok(ch) => {
                if ch.truncated {
                    self.anomalies.malformed_handshakes += 1;
                }
                apply_client_hello(&mut self.hs, &ch, Transport::Tcp);
                self.offered_version = Some(client_offered_version(&ch));
            }
            Err(_) => self.anomalies.malformed_handshakes += 1,
        }
    }

    fn on_server_hello(&mut self, dir: Direction, body: &[u8]) {
        if self.server_hello_seen {
            return;
        }
        self.server_hello_seen = true;
        self.set_server_dir(dir);
        match parser::parse_server_hello(body) {
            Ok(sh) => {
                let negotiated = sh.negotiated_version();
                self.hs.server_version = Some(negotiated);
                self.hs.cipher_selected = Some(sh.cipher);
                self.hs.alpn_selected = sh.alpn();
                self.hs.ja3s = Some(ja3::ja3s(&sh));
                let named = sh
                    .selected_version()
                    .unwrap_or_else(|| version::from_legacy_field(sh.legacy_version));
                self.negotiated_version = Some(named);
                if version::is_tls13(negotiated) {
                    // Everything after a TLS 1.3 ServerHello is encrypted.
                    self.mark_complete();
                }
            }
            Err(_) => self.anomalies.malformed_handshakes += 1,
        }
    }

    /// Decodes a chain, leaf first. A leaf that fails to decode leaves the chain empty (its
    /// facts would otherwise be mistaken for the intermediate's); a failing intermediate is
    /// skipped.
    fn add_certificates(&mut self, ders: &[&[u8]]) {
        for (n, der) in ders.iter().enumerate() {
            match x509::parse_certificate(der) {
                Ok(cert) => self.hs.certificates.push(cert),
                Err(_) => {
                    self.anomalies.certificate_errors += 1;
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
