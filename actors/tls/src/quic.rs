//! QUIC client Initial dissection: removes the Initial packet protection (RFC 9001 §5, with
//! the QUIC v2 salt and labels of RFC 9369 and the draft-23..32 salts), reassembles the CRYPTO
//! frames (a ClientHello may span several Initial packets and arrive out of order) and
//! fingerprints the ClientHello: the event is a [`TlsHandshake`] with `quic_version` set and a
//! JA4 starting with `q`.
//!
//! Initial keys derive only from the client's first Destination Connection ID, which is on the
//! wire, so this needs no secrets. Everything is bounded: datagrams tried per flow, CRYPTO bytes
//! kept, out-of-order chunks held.

use crate::ja4::Transport;
use crate::parser::{self, handshake_type, Reader, HANDSHAKE_HEADER_LEN};
use crate::{apply_client_hello, client_offered_version, parser::version};
use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use netmonitor_common::{Direction, TlsHandshake};
use sha2::Sha256;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// IETF draft 29, the last draft widely deployed.
pub const DRAFT_29: u32 = 0xff00_001d;

/// Most datagrams examined per flow before giving up on finding a ClientHello.
pub const MAX_DATAGRAMS: usize = 32;
/// Most CRYPTO stream bytes kept per flow (a ClientHello is a few KiB at most).
pub const MAX_CRYPTO_BYTES: usize = 64 * 1024;
/// Most out-of-order CRYPTO chunks held while waiting for the gap to fill.
pub const MAX_PENDING_CHUNKS: usize = 256;
/// Longest connection ID QUIC v1 allows.
const MAX_CID_LEN: usize = 20;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Header protection sample length.
const SAMPLE_LEN: usize = 16;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];

/// Per-version constants of Initial protection.
struct VersionParams {
    salt: &'static [u8; 20],
    key_label: &'static [u8],
    iv_label: &'static [u8],
    hp_label: &'static [u8],
    /// The long-header packet type value of Initial packets.
    initial_type: u8,
}

fn version_params(v: u32) -> Option<VersionParams> {
    let v1_labels = |salt| VersionParams {
        salt,
        key_label: b"quic key",
        iv_label: b"quic iv",
        hp_label: b"quic hp",
        initial_type: 0,
    };
    match v {
        VERSION_1 => Some(v1_labels(&SALT_V1)),
        VERSION_2 => Some(VersionParams {
            salt: &SALT_V2,
            key_label: b"quicv2 key",
            iv_label: b"quicv2 iv",
            hp_label: b"quicv2 hp",
            initial_type: 1,
        }),
        0xff00_001d..=0xff00_0020 => Some(v1_labels(&SALT_DRAFT_29)),
        0xff00_0017..=0xff00_001c => Some(v1_labels(&SALT_DRAFT_23)),
        _ => None,
    }
}

/// The client's Initial packet protection keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialKeys {
    /// AEAD key (AES-128-GCM).
    pub key: [u8; 16],
    /// AEAD IV.
    pub iv: [u8; 12],
    /// Header protection key (AES-128).
    pub hp: [u8; 16],
}

/// HKDF-Expand-Label of TLS 1.3 (RFC 8446 §7.1) with an empty context.
fn expand_label<const N: usize>(prk: &Hkdf<Sha256>, label: &[u8]) -> Option<[u8; N]> {
    let mut info = Vec::with_capacity(4 + 6 + label.len());
    info.extend_from_slice(&u16::try_from(N).ok()?.to_be_bytes());
    info.push(u8::try_from(6 + label.len()).ok()?);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    let mut out = [0u8; N];
    prk.expand(&info, &mut out).ok()?;
    Some(out)
}

/// Derives the client Initial keys of `version` from the client's Destination Connection ID
/// (RFC 9001 §5.2; RFC 9369 §3.3.1 for v2).
pub fn client_initial_keys(quic_version: u32, dcid: &[u8]) -> Option<InitialKeys> {
    let params = version_params(quic_version)?;
    let (_, initial) = Hkdf::<Sha256>::extract(Some(params.salt), dcid);
    let client_secret: [u8; 32] = expand_label(&initial, b"client in")?;
    let client = Hkdf::<Sha256>::from_prk(&client_secret).ok()?;
    Some(InitialKeys {
        key: expand_label(&client, params.key_label)?,
        iv: expand_label(&client, params.iv_label)?,
        hp: expand_label(&client, params.hp_label)?,
    })
}

/// Reads a QUIC variable-length integer (RFC 9000 §16).
pub fn read_varint(r: &mut Reader<'_>) -> Option<u64> {
    let first = r.u8("varint").ok()?;
    let extra = (1usize << (first >> 6)) - 1;
    let mut v = u64::from(first & 0x3f);
    for b in r.bytes(extra, "varint").ok()? {
        v = (v << 8) | u64::from(*b);
    }
    Some(v)
}

/// The fields of a long-header packet needed to find and open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongHeader<'a> {
    /// First byte (still protected).
    pub first: u8,
    /// Version.
    pub version: u32,
    /// Destination Connection ID.
    pub dcid: &'a [u8],
    /// Source Connection ID.
    pub scid: &'a [u8],
    /// Long packet type bits (version-specific meaning).
    pub packet_type: u8,
    /// Offset of the packet number, when the packet has one (Initial, 0-RTT, Handshake).
    pub pn_offset: Option<usize>,
    /// Total length of this packet within the datagram.
    pub len: usize,
}

/// Parses a long header at the front of `data` (the rest of the datagram).
pub fn parse_long_header(data: &[u8]) -> Option<LongHeader<'_>> {
    let mut r = Reader::new(data);
    let first = r.u8("first byte").ok()?;
    if first & 0x80 == 0 {
        return None;
    }
    let v = r.bytes(4, "version").ok()?;
    let version = u32::from_be_bytes(v.try_into().ok()?);
    if version == 0 {
        return None; // Version Negotiation
    }
    let dcid = r.vec8("dcid").ok()?;
    let scid = r.vec8("scid").ok()?;
    if dcid.len() > MAX_CID_LEN || scid.len() > MAX_CID_LEN {
        return None;
    }
    let packet_type = (first >> 4) & 0x03;
    let is_v2 = version == VERSION_2;
    let (initial, retry) = if is_v2 { (1, 0) } else { (0, 3) };
    if packet_type == retry {
        return Some(LongHeader {
            first,
            version,
            dcid,
            scid,
            packet_type,
            pn_offset: None,
            len: data.len(),
        });
    }
    if packet_type == initial {
        let token_len = usize::try_from(read_varint(&mut r)?).ok()?;
        r.bytes(token_len, "token").ok()?;
    }
    let length = usize::try_from(read_varint(&mut r)?).ok()?;
    let pn_offset = data.len() - r.remaining();
    let len = pn_offset.checked_add(length)?;
    if len > data.len() {
        return None;
    }
    Some(LongHeader {
        first,
        version,
        dcid,
        scid,
        packet_type,
        pn_offset: Some(pn_offset),
        len,
    })
}

/// Removes header and packet protection from one Initial packet (`packet` is exactly the
/// packet, as delimited by [`LongHeader::len`]) and returns its frames.
pub fn open_initial(packet: &[u8], header: &LongHeader<'_>, keys: &InitialKeys) -> Option<Vec<u8>> {
    let pn_offset = header.pn_offset?;
    let sample = packet.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?;
    let hp = Aes128::new(GenericArray::from_slice(&keys.hp));
    let mut mask = GenericArray::clone_from_slice(sample);
    hp.encrypt_block(&mut mask);
    let first = header.first ^ (mask.first()? & 0x0f);
    let pn_len = usize::from(first & 0x03) + 1;
    let mut aad = packet.get(..pn_offset + pn_len)?.to_vec();
    *aad.first_mut()? = first;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        let b = aad.get_mut(pn_offset + i)?;
        *b ^= mask.get(1 + i)?;
        pn = (pn << 8) | u64::from(*b);
    }
    let ciphertext = packet.get(pn_offset + pn_len..)?;
    if ciphertext.len() < TAG_LEN {
        return None;
    }
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().skip(4).zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let aead = Aes128Gcm::new(GenericArray::from_slice(&keys.key));
    aead.decrypt(
        GenericArray::from_slice(&nonce),
        Payload {
            msg: ciphertext,
            aad: &aad,
        },
    )
    .ok()
}

/// Calls `on_crypto(offset, data)` for each CRYPTO frame of a decrypted Initial payload; stops
/// at the first frame type an Initial packet may not carry. Returns false when the frames were
/// malformed.
pub fn crypto_frames(payload: &[u8], mut on_crypto: impl FnMut(u64, &[u8])) -> bool {
    let mut r = Reader::new(payload);
    while r.remaining() > 0 {
        let Some(frame_type) = read_varint(&mut r) else {
            return false;
        };
        match frame_type {
            0x00 | 0x01 => {} // PADDING, PING
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges, [ECN counts]
                let (Some(_), Some(_), Some(count), Some(_)) = (
                    read_varint(&mut r),
                    read_varint(&mut r),
                    read_varint(&mut r),
                    read_varint(&mut r),
                ) else {
                    return false;
                };
                for _ in 0..count {
                    if read_varint(&mut r).is_none() || read_varint(&mut r).is_none() {
                        return false;
                    }
                }
                if frame_type == 0x03 {
                    for _ in 0..3 {
                        if read_varint(&mut r).is_none() {
                            return false;
                        }
                    }
                }
            }
            0x06 => {
                let (Some(offset), Some(len)) = (read_varint(&mut r), read_varint(&mut r)) else {
                    return false;
                };
                let Ok(len) = usize::try_from(len) else {
                    return false;
                };
                let Ok(data) = r.bytes(len, "CRYPTO data") else {
                    return false;
                };
                on_crypto(offset, data);
            }
            0x1c | 0x1d => {
                // CONNECTION_CLOSE: the handshake is over.
                return true;
            }
            _ => return false,
        }
    }
    true
}

/// The CRYPTO stream of the Initial packet number space, reassembled from offset 0.
#[derive(Debug, Default)]
struct CryptoStream {
    data: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
    overflow: bool,
}

impl CryptoStream {
    fn insert(&mut self, offset: u64, chunk: &[u8]) {
        let Ok(offset) = usize::try_from(offset) else {
            self.overflow = true;
            return;
        };
        let Some(end) = offset.checked_add(chunk.len()) else {
            self.overflow = true;
            return;
        };
        if end > MAX_CRYPTO_BYTES {
            self.overflow = true;
            return;
        }
        if offset > self.data.len() {
            if self.pending.len() < MAX_PENDING_CHUNKS {
                self.pending.push((offset as u64, chunk.to_vec()));
            } else {
                self.overflow = true;
            }
            return;
        }
        self.append(offset, chunk);
        // Chunks that the new data made contiguous.
        loop {
            let len = self.data.len() as u64;
            let Some(i) = self.pending.iter().position(|(o, _)| *o <= len) else {
                break;
            };
            let (o, c) = self.pending.swap_remove(i);
            self.append(o as usize, &c);
        }
    }

    fn append(&mut self, offset: usize, chunk: &[u8]) {
        let have = self.data.len();
        let end = offset + chunk.len();
        if end > have {
            if let Some(tail) = chunk.get(have - offset..) {
                self.data.extend_from_slice(tail);
            }
        }
    }
}

/// Anomalies seen in one QUIC flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuicAnomalies {
    /// Initial packets that did not decrypt with the client keys (server packets count too).
    pub undecryptable: u32,
    /// Decrypted payloads with malformed frames, or a CRYPTO stream not starting with a
    /// ClientHello / holding a malformed one.
    pub malformed: u32,
    /// CRYPTO data beyond [`MAX_CRYPTO_BYTES`] or too many out-of-order chunks.
    pub oversized: u32,
}

/// Per-flow QUIC state: feed it the UDP payloads of one flow, get the ClientHello's event.
#[derive(Debug, Default)]
pub struct QuicFlowParser {
    client_dcid: Option<Vec<u8>>,
    keys: Option<(u32, Vec<u8>, InitialKeys)>,
    crypto: CryptoStream,
    datagrams: usize,
    event: Option<TlsHandshake>,
    returned: bool,
    gave_up: bool,
    /// Direction that carried the decrypted client Initial.
    client_dir: Option<Direction>,
    anomalies: QuicAnomalies,
}

impl QuicFlowParser {
    /// A parser for a new flow.
    pub fn new() -> Self {
        Self::default()
    }

    /// One UDP payload of the flow (either direction: the client's Initial packets are found by
    /// decrypting them, and [`Self::roles_swapped`] tells when they came `ToClient`).
    pub fn feed_datagram(&mut self, dir: Direction, payload: &[u8]) {
        if self.is_done() {
            return;
        }
        self.datagrams += 1;
        if self.datagrams > MAX_DATAGRAMS {
            self.gave_up = true;
            return;
        }
        let mut rest = payload;
        while let Some(header) = parse_long_header(rest) {
            let Some(packet) = rest.get(..header.len) else {
                break;
            };
            if let Some(params) = version_params(header.version) {
                if header.packet_type == params.initial_type && header.pn_offset.is_some() {
                    self.on_initial(dir, packet, &header);
                    if self.is_done() {
                        return;
                    }
                }
            }
            rest = rest.get(header.len..).unwrap_or(&[]);
        }
    }

    fn keys_for(&mut self, quic_version: u32, dcid: &[u8]) -> Option<InitialKeys> {
        if let Some((v, d, k)) = &self.keys {
            if *v == quic_version && d.as_slice() == dcid {
                return Some(k.clone());
            }
        }
        let k = client_initial_keys(quic_version, dcid)?;
        self.keys = Some((quic_version, dcid.to_vec(), k.clone()));
        Some(k)
    }

    fn on_initial(&mut self, dir: Direction, packet: &[u8], header: &LongHeader<'_>) {
        // After a Retry or once the server picked its ID, the client's DCID changes but the
        // Initial keys still come from the first one.
        let mut candidates: Vec<Vec<u8>> = Vec::with_capacity(2);
        if let Some(d) = &self.client_dcid {
            candidates.push(d.clone());
        }
        if candidates.first().map(Vec::as_slice) != Some(header.dcid) {
            candidates.push(header.dcid.to_vec());
        }
        let mut plaintext = None;
        for dcid in candidates {
            let Some(keys) = self.keys_for(header.version, &dcid) else {
                continue;
            };
            if let Some(p) = open_initial(packet, header, &keys) {
                if self.client_dcid.is_none() {
                    self.client_dcid = Some(dcid);
                }
                plaintext = Some(p);
                break;
            }
        }
        let Some(plaintext) = plaintext else {
            self.anomalies.undecryptable += 1;
            return;
        };
        self.client_dir.get_or_insert(dir);
        let crypto = &mut self.crypto;
        if !crypto_frames(&plaintext, |offset, data| crypto.insert(offset, data)) {
            self.anomalies.malformed += 1;
        }
        if self.crypto.overflow {
            self.anomalies.oversized += 1;
            self.crypto.overflow = false;
        }
        self.try_client_hello(header.version);
    }

    fn try_client_hello(&mut self, quic_version: u32) {
        let mut r = Reader::new(&self.crypto.data);
        let (Ok(typ), Ok(len)) = (r.u8("type"), r.u24("length")) else {
            return;
        };
        if typ != handshake_type::CLIENT_HELLO || len > MAX_CRYPTO_BYTES - HANDSHAKE_HEADER_LEN {
            self.anomalies.malformed += 1;
            self.gave_up = true;
            return;
        }
        let Ok(body) = r.bytes(len, "ClientHello") else {
            return; // more CRYPTO data to come
        };
        match parser::parse_client_hello(body) {
            Ok(ch) => {
                let mut hs = TlsHandshake {
                    quic_version: Some(quic_version),
                    ..TlsHandshake::default()
                };
                apply_client_hello(&mut hs, &ch, Transport::Quic);
                let offered = client_offered_version(&ch);
                hs.version = Some(version::name(offered));
                self.event = Some(hs);
            }
            Err(_) => {
                self.anomalies.malformed += 1;
                self.gave_up = true;
            }
        }
        self.crypto = CryptoStream::default();
    }

    /// The ClientHello's event once it is complete (returned at most once per flow).
    pub fn poll_event(&mut self) -> Option<TlsHandshake> {
        if self.returned {
            return None;
        }
        let ev = self.event.clone()?;
        self.returned = true;
        Some(ev)
    }

    /// At flow end: the event if it was complete and not yet returned.
    pub fn finish(&mut self) -> Option<TlsHandshake> {
        self.poll_event()
    }

    /// True when no more datagrams are needed.
    pub fn is_done(&self) -> bool {
        self.event.is_some() || self.returned || self.gave_up
    }

    /// True when the client's Initial packets travelled `Direction::ToClient` (the capture's
    /// idea of who is the client was wrong).
    pub fn roles_swapped(&self) -> bool {
        self.client_dir == Some(Direction::ToClient)
    }

    /// Anomalies seen in this flow.
    pub fn anomalies(&self) -> &QuicAnomalies {
        &self.anomalies
    }
}

/// Cheap check that a UDP payload starts with a QUIC long-header Initial packet of a version
/// this module can open (used to classify UDP flows on any port).
pub fn looks_like_quic_initial(payload: &[u8]) -> bool {
    parse_long_header(payload).is_some_and(|h| {
        version_params(h.version)
            .is_some_and(|p| p.initial_type == h.packet_type && h.pn_offset.is_some())
            && h.dcid.len() >= 8
    })
}

#[cfg(test)]
mod tests;
