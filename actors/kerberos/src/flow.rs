//! Per-flow Kerberos state: TCP record-mark framing (RFC 4120 7.2.2) for each direction, and the
//! request/response pairing that tells which request a KRB-ERROR answered.
//!
//! Framing copes with any chunking of the in-order stream (records split across segments,
//! several records per segment, byte-by-byte delivery). Each record is capped at
//! [`MAX_RECORD_LEN`]; a longer one is skipped and counted. When the stream stops making sense
//! (reserved bit set, a record that does not start with a Kerberos tag, a gap reported by the
//! caller) the direction is resynchronised by scanning for a record mark whose length matches
//! the DER length of the Kerberos message behind it.

use crate::parser::{is_krb_app_tag, parse_message, read_header};
use netmonitor_common::krb::{KrbMessage, KrbMsgType};
use netmonitor_common::Direction;
use serde::Serialize;

/// Largest Kerberos record accepted over TCP. Windows caps a Kerberos token at 65535 bytes
/// (MaxTokenSize) and a TGS-REQ can carry two PAC-bearing tickets (S4U2Proxy), so twice that
/// leaves room for real traffic while bounding what one flow direction may buffer.
pub const MAX_RECORD_LEN: usize = 128 * 1024;
/// Length of the TCP record mark.
pub const RECORD_MARK_LEN: usize = 4;
/// The reserved high bit of the record mark (RFC 4120 7.2.2: MUST be zero).
const RECORD_MARK_RESERVED: u32 = 0x8000_0000;
/// Smallest plausible Kerberos message (KRB-ERROR with an error code alone is about 20 bytes).
const MIN_RECORD_LEN: usize = 4;
/// Input is taken in slices of at most this size so the buffer stays bounded by one record
/// plus one slice, whatever size of chunk the caller passes.
const FEED_SLICE: usize = 16 * 1024;
/// Bytes a resynchronisation probe needs: record mark, identifier, long-form length.
const PROBE_LEN: usize = RECORD_MARK_LEN + 1 + 5;
/// Bytes a direction may scan for a record start before the flow is judged not to be Kerberos
/// at all (random data on port 88 would otherwise be probed byte by byte for its whole life).
pub const MAX_LOST_BYTES: usize = 64 * 1024;

/// Things that went wrong on a flow; counters, so that a hostile flow costs a few integers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KrbAnomalies {
    /// Records or datagrams that could not be decoded as Kerberos.
    pub malformed: u64,
    /// TCP records longer than [`MAX_RECORD_LEN`] (skipped).
    pub oversized_records: u64,
    /// TCP record marks that made no sense (reserved bit, zero length, no Kerberos tag behind).
    pub bad_record_marks: u64,
    /// Times a TCP direction lost framing and started looking for the next record.
    pub resyncs: u64,
    /// Bytes discarded while resynchronising or skipping oversized records.
    pub bytes_discarded: u64,
    /// KRB-ERRORs for which no request had been seen on the flow.
    pub unpaired_errors: u64,
}

/// Where a TCP direction stands in its byte stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// At a record boundary (or inside a record being buffered).
    #[default]
    Framed,
    /// Skipping the rest of an oversized record.
    Skip(usize),
    /// Framing lost: scanning for a plausible record start.
    Lost,
    /// Scanned [`MAX_LOST_BYTES`] without finding one: this is not Kerberos; ignore the rest.
    Dead,
}

/// Framing state of one direction.
#[derive(Debug, Default)]
struct Framing {
    mode: Mode,
    /// Bytes scanned since framing was lost.
    lost_bytes: usize,
}

/// One direction of a TCP flow: its framing, and the bytes of a record not yet complete (only
/// those: input is parsed in place whenever nothing is pending).
#[derive(Debug, Default)]
struct TcpDir {
    framing: Framing,
    buf: Vec<u8>,
}

/// A pending buffer larger than this is released once emptied (one large record must not pin
/// its memory for the flow's life).
const KEEP_BUFFER: usize = 4096;

/// What a record start at some offset looks like.
enum Probe {
    /// A record starts here.
    Record,
    /// Not a record start.
    No,
    /// More bytes are needed to decide.
    NeedMore,
}

/// Checks for a record start: mark without reserved bit, a length within bounds, a Kerberos
/// APPLICATION tag, and a DER length that fills the record exactly.
fn probe(buf: &[u8]) -> Probe {
    let Some(len) = record_mark(buf) else {
        return Probe::NeedMore;
    };
    if len & RECORD_MARK_RESERVED != 0 {
        return Probe::No;
    }
    let Ok(len) = usize::try_from(len) else {
        return Probe::No;
    };
    if !(MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Probe::No;
    }
    let Some(msg) = buf.get(RECORD_MARK_LEN..) else {
        return Probe::NeedMore;
    };
    match msg.first() {
        None => return Probe::NeedMore,
        Some(b) if !is_krb_app_tag(*b) => return Probe::No,
        Some(_) => {}
    }
    match read_header(msg) {
        Ok(h) if h.total_len() == Some(len) => Probe::Record,
        Ok(_) => Probe::No,
        Err(netmonitor_common::der::DerError::Incomplete) => Probe::NeedMore,
        Err(_) => Probe::No,
    }
}

/// Whether two bytes can open a record mark of at most [`MAX_RECORD_LEN`].
fn plausible_mark_start(two: &[u8]) -> bool {
    const MAX_SECOND: u8 = (MAX_RECORD_LEN >> 16) as u8;
    matches!(two, [0, b] if *b <= MAX_SECOND)
}

/// Reads the big-endian record mark at the front of `buf`.
fn record_mark(buf: &[u8]) -> Option<u32> {
    let b: [u8; RECORD_MARK_LEN] = buf.get(..RECORD_MARK_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Kerberos state of one flow (UDP or TCP).
#[derive(Debug, Default)]
pub struct KrbFlow {
    to_server: TcpDir,
    to_client: TcpDir,
    /// The last request seen and not yet answered, for `failed_request`.
    pending_request: Option<KrbMsgType>,
    anomalies: KrbAnomalies,
}

impl KrbFlow {
    /// A flow with nothing seen yet.
    pub fn new() -> Self {
        KrbFlow::default()
    }

    /// Decodes one UDP datagram; `None` (and a `malformed` count) when it is not Kerberos.
    pub fn on_udp(&mut self, dir: Direction, payload: &[u8]) -> Option<KrbMessage> {
        // The message type says which way it goes; the direction adds nothing for UDP.
        let _ = dir;
        match parse_message(payload) {
            Ok(msg) => Some(self.pair(msg)),
            Err(_) => {
                self.anomalies.malformed += 1;
                None
            }
        }
    }

    /// Takes in-order TCP stream bytes of one direction (any chunking); every complete
    /// Kerberos record decoded is pushed to `out`.
    pub fn on_tcp(&mut self, dir: Direction, data: &[u8], out: &mut Vec<KrbMessage>) {
        for slice in data.chunks(FEED_SLICE) {
            let side = match dir {
                Direction::ToServer => &mut self.to_server,
                Direction::ToClient => &mut self.to_client,
            };
            if side.framing.mode == Mode::Dead {
                self.anomalies.bytes_discarded += data.len() as u64;
                return;
            }
            let mut decoded = Vec::new();
            if side.buf.is_empty() {
                let used = process(&mut side.framing, slice, &mut self.anomalies, &mut decoded);
                side.buf
                    .extend_from_slice(slice.get(used..).unwrap_or_default());
            } else {
                side.buf.extend_from_slice(slice);
                let used = process(
                    &mut side.framing,
                    &side.buf,
                    &mut self.anomalies,
                    &mut decoded,
                );
                side.buf.drain(..used.min(side.buf.len()));
            }
            if side.framing.mode == Mode::Dead
                || (side.buf.is_empty() && side.buf.capacity() > KEEP_BUFFER)
            {
                side.buf = Vec::new();
            }
            for record in decoded {
                match record {
                    Ok(msg) => {
                        let msg = self.pair(msg);
                        out.push(msg);
                    }
                    Err(()) => self.anomalies.malformed += 1,
                }
            }
        }
    }

    /// Tells the flow that bytes of one direction were lost (a capture gap): what is buffered
    /// is dropped and framing is looked for again.
    pub fn on_tcp_gap(&mut self, dir: Direction) {
        let side = match dir {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        };
        self.anomalies.bytes_discarded += side.buf.len() as u64;
        side.buf = Vec::new();
        if !matches!(side.framing.mode, Mode::Lost | Mode::Dead) {
            side.framing.mode = Mode::Lost;
            self.anomalies.resyncs += 1;
        }
    }

    /// True when a direction scanned [`MAX_LOST_BYTES`] without finding a Kerberos record:
    /// the flow is not Kerberos (the caller may stop feeding it).
    pub fn gave_up(&self) -> bool {
        self.to_server.framing.mode == Mode::Dead || self.to_client.framing.mode == Mode::Dead
    }

    /// What went wrong on this flow so far.
    pub fn anomalies(&self) -> &KrbAnomalies {
        &self.anomalies
    }

    /// The request type awaiting an answer on this flow, if any.
    pub fn pending_request(&self) -> Option<KrbMsgType> {
        self.pending_request
    }

    /// Bytes currently buffered for both directions (for memory accounting).
    pub fn buffered_bytes(&self) -> usize {
        self.to_server.buf.len() + self.to_client.buf.len()
    }

    /// Request/response pairing: a request becomes pending, a reply settles it, an error
    /// names it in `failed_request` and settles it.
    fn pair(&mut self, mut msg: KrbMessage) -> KrbMessage {
        match msg.msg_type {
            KrbMsgType::AsReq | KrbMsgType::TgsReq | KrbMsgType::ApReq => {
                self.pending_request = Some(msg.msg_type);
            }
            KrbMsgType::AsRep | KrbMsgType::TgsRep | KrbMsgType::ApRep => {
                self.pending_request = None;
            }
            KrbMsgType::Error => {
                msg.failed_request = self.pending_request.take();
                if msg.failed_request.is_none() {
                    self.anomalies.unpaired_errors += 1;
                }
            }
        }
        msg
    }
}

/// Consumes what it can of `buf`: whole records are decoded into `out` (`Err(())` for a record
/// that is not a decodable message); returns how many bytes were consumed (the rest must be
/// kept for the next call).
fn process(
    side: &mut Framing,
    buf: &[u8],
    anomalies: &mut KrbAnomalies,
    out: &mut Vec<Result<KrbMessage, ()>>,
) -> usize {
    let mut pos = 0usize;
    loop {
        let avail = buf.get(pos..).unwrap_or_default();
        match side.mode {
            Mode::Skip(left) => {
                let n = left.min(avail.len());
                pos += n;
                anomalies.bytes_discarded += n as u64;
                if n < left {
                    side.mode = Mode::Skip(left - n);
                    break;
                }
                side.mode = Mode::Framed;
            }
            Mode::Framed => {
                // Decide on the record once its mark and first message byte are here.
                let (Some(mark), Some(first)) = (record_mark(avail), avail.get(RECORD_MARK_LEN))
                else {
                    if record_mark(avail).is_some_and(|m| m == 0 || m & RECORD_MARK_RESERVED != 0) {
                        anomalies.bad_record_marks += 1;
                        anomalies.resyncs += 1;
                        side.mode = Mode::Lost;
                        continue;
                    }
                    break;
                };
                let len = usize::try_from(mark).unwrap_or(usize::MAX);
                if mark & RECORD_MARK_RESERVED != 0
                    || len < MIN_RECORD_LEN
                    || !is_krb_app_tag(*first)
                {
                    anomalies.bad_record_marks += 1;
                    anomalies.resyncs += 1;
                    side.mode = Mode::Lost;
                    continue;
                }
                if len > MAX_RECORD_LEN {
                    anomalies.oversized_records += 1;
                    pos += RECORD_MARK_LEN;
                    anomalies.bytes_discarded += RECORD_MARK_LEN as u64;
                    side.mode = Mode::Skip(len);
                    continue;
                }
                let Some(end) = RECORD_MARK_LEN.checked_add(len) else {
                    break;
                };
                let Some(record) = avail.get(RECORD_MARK_LEN..end) else {
                    break;
                };
                out.push(parse_message(record).map_err(|_| ()));
                pos += end;
            }
            Mode::Dead => {
                anomalies.bytes_discarded += avail.len() as u64;
                pos += avail.len();
                break;
            }
            Mode::Lost => {
                let mut found = None;
                let mut keep_from = avail.len().saturating_sub(PROBE_LEN - 1);
                for i in 0..avail.len() {
                    // A record mark of at most MAX_RECORD_LEN starts with 0x00, 0x00..=0x02:
                    // random data passes this one time in tens of thousands, so the full probe
                    // runs rarely.
                    if avail
                        .get(i..i + 2)
                        .is_some_and(|two| !plausible_mark_start(two))
                    {
                        continue;
                    }
                    match probe(avail.get(i..).unwrap_or_default()) {
                        Probe::Record => {
                            found = Some(i);
                            break;
                        }
                        Probe::NeedMore => {
                            keep_from = i;
                            break;
                        }
                        Probe::No => {}
                    }
                }
                let skip = found.unwrap_or(keep_from);
                pos += skip;
                anomalies.bytes_discarded += skip as u64;
                side.lost_bytes = side.lost_bytes.saturating_add(skip);
                if found.is_none() {
                    if side.lost_bytes >= MAX_LOST_BYTES {
                        side.mode = Mode::Dead;
                        pos = buf.len();
                    }
                    break;
                }
                side.lost_bytes = 0;
                side.mode = Mode::Framed;
            }
        }
    }
    pos.min(buf.len())
}

/// Cheap check on the start of a TCP stream: a record mark whose length is plausible, followed
/// by a Kerberos APPLICATION tag whose DER length fills that record. Needs the mark and the
/// message's tag and length octets (up to 10 bytes); fewer bytes give `false`.
pub fn looks_like_krb_tcp(data: &[u8]) -> bool {
    matches!(probe(data), Probe::Record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{load, replay, Seg};
    use netmonitor_common::krb::{error_code_name, etype_name};

    fn types(msgs: &[KrbMessage]) -> Vec<&'static str> {
        msgs.iter().map(|m| m.msg_type.name()).collect()
    }

    #[test]
    fn a_stream_of_random_bytes_is_given_up_after_a_bounded_scan() {
        let mut f = KrbFlow::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut junk = vec![0u8; 4096];
        let mut out = Vec::new();
        let mut fed = 0;
        while !f.gave_up() && fed < 4 * MAX_LOST_BYTES {
            for b in junk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            f.on_tcp(Direction::ToServer, &junk, &mut out);
            fed += junk.len();
        }
        assert!(f.gave_up(), "still scanning after {fed} bytes");
        assert!(fed <= MAX_LOST_BYTES + 2 * FEED_SLICE, "{fed}");
        assert!(out.is_empty());
        assert_eq!(
            f.buffered_bytes(),
            0,
            "nothing stays buffered once given up"
        );
    }

    #[test]
    fn bug_8278_tcp_exchange_with_pairing() {
        let msgs = replay(&load("bug-8278.txt"));
        assert_eq!(
            types(&msgs),
            [
                "KRB_AS_REQ",
                "KRB_ERROR",
                "KRB_AS_REQ",
                "KRB_AS_REP",
                "KRB_TGS_REQ",
                "KRB_ERROR"
            ]
        );
        let req = &msgs[0];
        assert_eq!(req.cname.as_deref(), Some("test"));
        assert_eq!(req.realm.as_deref(), Some("DOM189.LOCAL"));
        assert_eq!(req.sname.as_deref(), Some("krbtgt/DOM189.LOCAL"));
        assert_eq!(msgs[1].failed_request, Some(KrbMsgType::AsReq));
        assert_eq!(
            msgs[1].error_code.map(error_code_name).as_deref(),
            Some("KDC_ERR_PREAUTH_REQUIRED")
        );
        let rep = &msgs[3];
        assert_eq!(rep.encryption.map(etype_name).as_deref(), Some("rc4-hmac"));
        assert!(rep.uses_weak_encryption());
        assert_eq!(
            rep.ticket_encryption.map(etype_name).as_deref(),
            Some("aes256-cts-hmac-sha1-96")
        );
        assert_eq!(msgs[4].sname.as_deref(), Some("host/anything"));
        assert_eq!(msgs[5].failed_request, Some(KrbMsgType::TgsReq));
        assert_eq!(
            msgs[5].error_code.map(error_code_name).as_deref(),
            Some("KDC_ERR_S_PRINCIPAL_UNKNOWN")
        );
        assert_eq!(msgs.iter().filter(|m| m.error_code.is_some()).count(), 2);
        // The second AS-REQ carries PA-ENC-TIMESTAMP, the first does not.
        assert!(!msgs[0].padata_types.contains(&2));
        assert!(msgs[2].padata_types.contains(&2));
    }

    #[test]
    fn kerberoast_tgs_rep_has_rc4_ticket() {
        let msgs = replay(&load("kerberoast.txt"));
        assert_eq!(types(&msgs), ["KRB_TGS_REQ", "KRB_TGS_REP"]);
        assert_eq!(
            msgs.iter()
                .filter(|m| m.ticket_encryption.is_some())
                .count(),
            1
        );
        assert_eq!(
            msgs[1].ticket_encryption.map(etype_name).as_deref(),
            Some("rc4-hmac")
        );
        assert!(msgs[1]
            .sname
            .as_deref()
            .is_some_and(|s| !s.starts_with("krbtgt")));
    }

    #[test]
    fn probing_error_answers_as_req() {
        let msgs = replay(&load("probing.txt"));
        assert_eq!(types(&msgs), ["KRB_AS_REQ", "KRB_ERROR"]);
        assert_eq!(
            msgs.iter().filter(|m| m.failed_request.is_some()).count(),
            1
        );
        assert_eq!(msgs[1].failed_request, Some(KrbMsgType::AsReq));
    }

    #[test]
    fn kinit_over_udp_and_tcp_pairs_errors() {
        let msgs = replay(&load("kinit.txt"));
        assert_eq!(msgs.len(), 188, "every Kerberos PDU tshark sees");
        let failed: Vec<_> = msgs.iter().filter_map(|m| m.failed_request).collect();
        assert!(failed.contains(&KrbMsgType::AsReq));
        assert!(failed.contains(&KrbMsgType::TgsReq));
        assert!(msgs.iter().any(|m| m.msg_type == KrbMsgType::TgsReq));
        assert!(msgs.iter().any(|m| m.msg_type == KrbMsgType::AsRep
            && m.ticket_encryption.map(etype_name).as_deref() == Some("aes256-cts-hmac-sha1-96")));
        assert!(msgs
            .iter()
            .filter(|m| m.msg_type == KrbMsgType::Error)
            .all(|m| m.failed_request.is_some()));
    }

    /// The TCP segments of one direction of one stream, concatenated.
    fn stream_bytes(segs: &[Seg], stream: u32, to_server: bool) -> Vec<u8> {
        segs.iter()
            .filter(|s| !s.udp && s.stream == stream && s.to_server == to_server)
            .flat_map(|s| s.bytes.iter().copied())
            .collect()
    }

    #[test]
    fn reply_split_across_segments_is_reassembled() {
        // capture-14: the AS-REP arrives as 1248 + 1048 bytes.
        let segs = load("capture-14.txt");
        let server_segs: Vec<&Seg> = segs
            .iter()
            .filter(|s| !s.to_server && s.bytes.len() == 1248)
            .collect();
        assert!(!server_segs.is_empty(), "fixture has a split reply");
        let msgs = replay(&segs);
        assert_eq!(
            types(&msgs),
            [
                "KRB_AS_REQ",
                "KRB_ERROR",
                "KRB_AS_REQ",
                "KRB_AS_REP",
                "KRB_TGS_REQ",
                "KRB_TGS_REP"
            ]
        );
        let mut flow = KrbFlow::new();
        let mut out = Vec::new();
        flow.on_tcp(Direction::ToClient, &server_segs[0].bytes, &mut out);
        assert!(out.is_empty(), "half a record decodes nothing");
        assert_eq!(flow.buffered_bytes(), 1248);
    }

    #[test]
    fn two_records_in_one_segment() {
        // capture-16: an AS-REQ and a TGS-REQ in a single 322-byte segment.
        let segs = load("capture-16.txt");
        assert_eq!(segs.len(), 1);
        let mut flow = KrbFlow::new();
        let mut out = Vec::new();
        flow.on_tcp(Direction::ToServer, &segs[0].bytes, &mut out);
        assert_eq!(types(&out), ["KRB_AS_REQ", "KRB_TGS_REQ"]);
        assert_eq!(flow.buffered_bytes(), 0);
        assert_eq!(flow.anomalies(), &KrbAnomalies::default());
        assert_eq!(flow.pending_request(), Some(KrbMsgType::TgsReq));
    }

    #[test]
    fn byte_by_byte_equals_whole_stream() {
        for name in [
            "bug-8278.txt",
            "capture-14.txt",
            "capture-15.txt",
            "capture-35.txt",
        ] {
            let segs = load(name);
            let whole = replay(&segs);
            let streams: std::collections::BTreeSet<u32> = segs.iter().map(|s| s.stream).collect();
            let mut dribbled = Vec::new();
            for stream in streams {
                // One exchange per connection in these captures, so feeding the whole client
                // side (byte by byte) before the server side (7-byte chunks) keeps the pairing.
                let c = stream_bytes(&segs, stream, true);
                let s = stream_bytes(&segs, stream, false);
                let mut flow = KrbFlow::new();
                let (mut oc, mut os) = (Vec::new(), Vec::new());
                for b in &c {
                    flow.on_tcp(Direction::ToServer, std::slice::from_ref(b), &mut oc);
                }
                for chunk in s.chunks(7) {
                    flow.on_tcp(Direction::ToClient, chunk, &mut os);
                }
                assert_eq!(flow.anomalies().malformed, 0, "{name}");
                assert_eq!(flow.buffered_bytes(), 0, "{name}");
                dribbled.extend(oc.into_iter().chain(os));
            }
            assert_eq!(dribbled.len(), whole.len(), "{name}");
            for m in &whole {
                assert!(
                    dribbled.iter().any(|d| d.msg_type == m.msg_type
                        && d.cname == m.cname
                        && d.sname == m.sname),
                    "{name}: {m:?}"
                );
            }
        }
    }

    #[test]
    fn every_capture_decodes_sensibly() {
        for (name, want) in [
            ("capture-14.txt", 6),
            ("capture-15.txt", 10),
            ("capture-16.txt", 2),
            ("capture-17.txt", 2),
            ("capture-35.txt", 14),
            ("capture-36.txt", 2),
            ("capture-38.txt", 2),
        ] {
            let msgs = replay(&load(name));
            assert_eq!(msgs.len(), want, "{name}");
            assert!(
                msgs.iter()
                    .all(|m| m.realm.is_some() || m.msg_type == KrbMsgType::Error),
                "{name}"
            );
        }
        let c38 = replay(&load("capture-38.txt"));
        assert_eq!(
            c38[1].error_code.map(error_code_name).as_deref(),
            Some("KRB_ERR_GENERIC")
        );
        assert_eq!(c38[1].failed_request, Some(KrbMsgType::AsReq));
    }

    #[test]
    fn oversized_record_is_skipped_and_counted() {
        let segs = load("probing.txt");
        let good = &segs[0].bytes;
        let mut stream = Vec::new();
        let huge = MAX_RECORD_LEN + 10;
        stream.extend_from_slice(&(huge as u32).to_be_bytes());
        stream.push(0x6a);
        stream.resize(RECORD_MARK_LEN + huge, 0x41);
        stream.extend_from_slice(good);
        let mut flow = KrbFlow::new();
        let mut out = Vec::new();
        flow.on_tcp(Direction::ToServer, &stream, &mut out);
        assert_eq!(types(&out), ["KRB_AS_REQ"]);
        assert_eq!(flow.anomalies().oversized_records, 1);
        assert!(flow.buffered_bytes() < FEED_SLICE);
    }

    #[test]
    fn garbage_then_record_resynchronises() {
        let segs = load("probing.txt");
        let mut stream = vec![0x80, 0, 0, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        stream.extend_from_slice(&segs[0].bytes);
        let mut flow = KrbFlow::new();
        let mut out = Vec::new();
        for chunk in stream.chunks(3) {
            flow.on_tcp(Direction::ToServer, chunk, &mut out);
        }
        assert_eq!(types(&out), ["KRB_AS_REQ"]);
        assert_eq!(flow.anomalies().bad_record_marks, 1);
        assert_eq!(flow.anomalies().bytes_discarded, 13);
        // A gap mid-record: the rest of that record is dropped, the next one decodes.
        let reply = &segs[1].bytes;
        flow.on_tcp(Direction::ToClient, &reply[..50], &mut out);
        flow.on_tcp_gap(Direction::ToClient);
        flow.on_tcp(Direction::ToClient, &reply[60..], &mut out);
        flow.on_tcp(Direction::ToClient, reply, &mut out);
        assert_eq!(types(&out), ["KRB_AS_REQ", "KRB_ERROR"]);
        assert_eq!(out[1].failed_request, Some(KrbMsgType::AsReq));
    }

    #[test]
    fn error_without_request_is_unpaired() {
        let segs = load("error-preauth-padata.txt");
        let mut flow = KrbFlow::new();
        let msg = flow.on_udp(Direction::ToServer, &segs[0].bytes).unwrap();
        assert_eq!(msg.failed_request, None);
        assert_eq!(flow.anomalies().unpaired_errors, 1);
        assert!(flow
            .on_udp(Direction::ToServer, b"\x00\x01garbage")
            .is_none());
        assert_eq!(flow.anomalies().malformed, 1);
    }

    #[test]
    fn tcp_probe_accepts_real_streams_only() {
        for name in [
            "bug-8278.txt",
            "capture-14.txt",
            "capture-15.txt",
            "kinit.txt",
            "probing.txt",
        ] {
            let segs = load(name);
            let mut seen = std::collections::HashSet::new();
            // The first segment of each direction of each stream starts a record.
            for s in segs.iter().filter(|s| !s.udp) {
                if seen.insert((s.stream, s.to_server)) {
                    assert!(looks_like_krb_tcp(&s.bytes), "{name} frame {}", s.frame);
                }
            }
            assert!(!seen.is_empty(), "{name} has TCP streams");
        }
        let smb = load("smb.txt");
        assert!(smb.iter().all(|s| !looks_like_krb_tcp(&s.bytes)));
        assert!(!looks_like_krb_tcp(&[0, 0, 0]));
        assert!(!looks_like_krb_tcp(b"GET / HTTP/1.1\r\n"));
        assert!(
            !looks_like_krb_tcp(&[0, 0, 0, 5, 0x6a, 0x10, 0, 0, 0, 0]),
            "DER length disagrees"
        );
        assert!(
            !looks_like_krb_tcp(&[0x80, 0, 0, 5, 0x6a, 0x03, 0x30, 0x01, 0]),
            "reserved bit"
        );
    }
}
