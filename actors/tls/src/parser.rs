//! TLS record-layer and handshake-message parsing: pure functions from bytes to borrowed
//! structs, no state and no I/O.
//!
//! "Incomplete" input is not an error here: [`parse_record_header`] says so with
//! [`ParseError::Incomplete`] and the caller ([`crate::flow`]) buffers. Inside a complete
//! handshake message, running out of bytes is malformed input. Nothing in this module panics on
//! any input: every read goes through [`Reader`], which checks lengths.

/// Length of a TLS record header: content type, version, length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record body accepted: 2^14 plaintext plus the 2048 bytes of expansion RFC 5246 §6.2.3
/// allows for ciphertext. Anything longer is an oversized-record anomaly.
pub const MAX_RECORD_LEN: usize = 16_384 + 2_048;
/// Length of a handshake message header: type and 24-bit length.
pub const HANDSHAKE_HEADER_LEN: usize = 4;
/// Smallest body a ClientHello can have (version, random, three empty vectors).
const MIN_CLIENT_HELLO_LEN: usize = 2 + 32 + 1 + 2 + 1;
/// Smallest body a ServerHello can have (version, random, cipher: the TLS 1.3 draft layout).
const MIN_SERVER_HELLO_LEN: usize = 2 + 32 + 2;
/// Extensions of a hello room is reserved for before parsing them (browsers send about 16-20).
const EXTENSIONS_PRESIZE: usize = 24;
/// Bytes needed after a candidate record start before [`find_record_start`] can judge it.
const SCAN_WINDOW: usize = RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + 2;

/// TLS record content types (RFC 8446 §5.1).
pub mod content_type {
    /// change_cipher_spec
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    /// alert
    pub const ALERT: u8 = 21;
    /// handshake
    pub const HANDSHAKE: u8 = 22;
    /// application_data
    pub const APPLICATION_DATA: u8 = 23;
    /// heartbeat (RFC 6520)
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types the dissector acts on (RFC 8446 §4, RFC 5246 §7.4).
pub mod handshake_type {
    /// client_hello
    pub const CLIENT_HELLO: u8 = 1;
    /// server_hello (also HelloRetryRequest in TLS 1.3)
    pub const SERVER_HELLO: u8 = 2;
    /// certificate
    pub const CERTIFICATE: u8 = 11;
    /// server_key_exchange
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    /// certificate_request
    pub const CERTIFICATE_REQUEST: u8 = 13;
    /// server_hello_done
    pub const SERVER_HELLO_DONE: u8 = 14;
}

/// Extension types used by the fingerprints and the event (IANA TLS ExtensionType registry).
pub mod ext {
    /// server_name (SNI)
    pub const SERVER_NAME: u16 = 0;
    /// supported_groups (elliptic_curves)
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// ec_point_formats
    pub const EC_POINT_FORMATS: u16 = 11;
    /// signature_algorithms
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    /// application_layer_protocol_negotiation
    pub const ALPN: u16 = 16;
    /// supported_versions
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// quic_transport_parameters
    pub const QUIC_TRANSPORT_PARAMETERS: u16 = 57;
}

/// Protocol version numbers as they appear on the wire.
pub mod version {
    /// SSL 2.0
    pub const SSL_2: u16 = 0x0002;
    /// SSL 3.0
    pub const SSL_3: u16 = 0x0300;
    /// TLS 1.0
    pub const TLS_1_0: u16 = 0x0301;
    /// TLS 1.1
    pub const TLS_1_1: u16 = 0x0302;
    /// TLS 1.2
    pub const TLS_1_2: u16 = 0x0303;
    /// TLS 1.3
    pub const TLS_1_3: u16 = 0x0304;
    /// What Suricata calls TLS 1.3 drafts before 16, which used 0x7f01..0x7f0f or 0x0304 in the
    /// hello's version field.
    pub const TLS_1_3_PRE_DRAFT16: u16 = 0x7f01;

    /// True for TLS 1.3 and its drafts (0x7fNN, and the 0xfbNN "fb" experiment).
    pub fn is_tls13(v: u16) -> bool {
        v == TLS_1_3 || (v >> 8) == 0x7f || (v >> 8) == 0xfb
    }

    /// The versions Suricata accepts from a supported_versions extension.
    pub fn is_known(v: u16) -> bool {
        matches!(
            v,
            TLS_1_3 | TLS_1_2 | TLS_1_1 | TLS_1_0 | SSL_3 | TLS_1_3_PRE_DRAFT16 | 0xfb14
                ..=0xfb17 | 0xfb1a
        ) || (0x7f10..=0x7f1c).contains(&v)
    }

    /// Suricata's reading of a hello's legacy version field: TLS 1.3 drafts before 16 (which put
    /// 0x7f01..0x7f0f or 0x0304 there) all become [`TLS_1_3_PRE_DRAFT16`].
    pub fn from_legacy_field(v: u16) -> u16 {
        if (0x7f01..0x7f10).contains(&v) || v == TLS_1_3 {
            TLS_1_3_PRE_DRAFT16
        } else {
            v
        }
    }

    /// The name Suricata prints in EVE `tls.version`.
    pub fn name(v: u16) -> String {
        match v {
            0 => "UNDETERMINED".into(),
            SSL_2 => "SSLv2".into(),
            SSL_3 => "SSLv3".into(),
            TLS_1_0 => "TLSv1".into(),
            TLS_1_1 => "TLS 1.1".into(),
            TLS_1_2 => "TLS 1.2".into(),
            TLS_1_3 => "TLS 1.3".into(),
            TLS_1_3_PRE_DRAFT16 => "TLS 1.3 draft-<16".into(),
            0x7f10..=0x7f1c => format!("TLS 1.3 draft-{}", v & 0xff),
            0xfb14..=0xfb17 | 0xfb1a => format!("TLS 1.3 draft-{}-fb", v & 0xff),
            other => format!("{other:#06x}"),
        }
    }
}

/// Why bytes could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes are needed (only for record headers; the caller buffers).
    Incomplete,
    /// A length above the caps of this module.
    Oversized,
    /// The bytes are not what the protocol allows; the text names the field.
    Malformed(&'static str),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Incomplete => f.write_str("incomplete TLS data"),
            ParseError::Oversized => f.write_str("oversized TLS record or message"),
            ParseError::Malformed(what) => write!(f, "malformed TLS data: {what}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A bounds-checked cursor over a byte slice; every read returns `Malformed` when the slice
/// ends early, so parsers never index out of range.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Malformed(what))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(ParseError::Malformed(what))?;
        self.pos = end;
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        let b = self.bytes(1, what)?;
        b.first().copied().ok_or(ParseError::Malformed(what))
    }

    /// A big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        let b = self.bytes(2, what)?;
        match b {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(ParseError::Malformed(what)),
        }
    }

    /// A big-endian 24-bit length.
    pub fn u24(&mut self, what: &'static str) -> Result<usize, ParseError> {
        let b = self.bytes(3, what)?;
        match b {
            [a, b, c] => Ok(be24(*a, *b, *c)),
            _ => Err(ParseError::Malformed(what)),
        }
    }

    /// A vector with a one-byte length prefix.
    pub fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], ParseError> {
        let n = usize::from(self.u8(what)?);
        self.bytes(n, what)
    }

    /// A vector with a two-byte length prefix.
    pub fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], ParseError> {
        let n = usize::from(self.u16(what)?);
        self.bytes(n, what)
    }

    /// A vector with a three-byte length prefix.
    pub fn vec24(&mut self, what: &'static str) -> Result<&'a [u8], ParseError> {
        let n = self.u24(what)?;
        self.bytes(n, what)
    }
}

fn be24(a: u8, b: u8, c: u8) -> usize {
    (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c)
}

/// Reads consecutive big-endian u16 values; an odd trailing byte is ignored.
pub fn u16_list(data: &[u8]) -> Vec<u16> {
    u16_values(data).collect()
}

/// The big-endian u16 values of `data` without collecting them (an odd trailing byte is
/// ignored), for the fingerprints that only walk a list once.
pub fn u16_values(data: &[u8]) -> impl Iterator<Item = u16> + Clone + '_ {
    data.chunks_exact(2).map(|c| match c {
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    })
}

/// True for the GREASE values of RFC 8701 (0x0a0a, 0x1a1a, … 0xfafa), which every fingerprint
/// ignores.
pub fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0x00ff)
}

/// The five-byte header of a TLS record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type (`content_type::*`).
    pub content_type: u8,
    /// Record-layer version.
    pub version: u16,
    /// Body length.
    pub length: usize,
}

/// Parses a record header: known content type, major version 3, minor 0..=4, body length within
/// [`MAX_RECORD_LEN`].
pub fn parse_record_header(input: &[u8]) -> Result<RecordHeader, ParseError> {
    let header = match input.get(..RECORD_HEADER_LEN) {
        Some([ct, major, minor, hi, lo]) => (*ct, *major, *minor, *hi, *lo),
        _ => {
            // Judge what we have so far, so that junk is rejected without waiting.
            if let Some(ct) = input.first() {
                if !(content_type::CHANGE_CIPHER_SPEC..=content_type::HEARTBEAT).contains(ct) {
                    return Err(ParseError::Malformed("record content type"));
                }
            }
            if let Some(major) = input.get(1) {
                if *major != 3 {
                    return Err(ParseError::Malformed("record version"));
                }
            }
            if let Some(minor) = input.get(2) {
                if *minor > 4 {
                    return Err(ParseError::Malformed("record version"));
                }
            }
            return Err(ParseError::Incomplete);
        }
    };
    let (ct, major, minor, hi, lo) = header;
    if !(content_type::CHANGE_CIPHER_SPEC..=content_type::HEARTBEAT).contains(&ct) {
        return Err(ParseError::Malformed("record content type"));
    }
    if major != 3 || minor > 4 {
        return Err(ParseError::Malformed("record version"));
    }
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    if length > MAX_RECORD_LEN {
        return Err(ParseError::Oversized);
    }
    Ok(RecordHeader {
        content_type: ct,
        version: u16::from_be_bytes([major, minor]),
        length,
    })
}

/// One extension of a hello: its type and undecoded body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Extension type.
    pub typ: u16,
    /// Extension body.
    pub data: &'a [u8],
}

/// Parses an extensions block; a truncated trailing extension ends the list and is reported
/// through the second value so the hello is still usable.
fn parse_extensions(block: &[u8]) -> (Vec<Extension<'_>>, bool) {
    let mut r = Reader::new(block);
    // Every extension takes at least four bytes; sized for the usual hello up front.
    let mut out = Vec::with_capacity((block.len() / 4).min(EXTENSIONS_PRESIZE));
    while r.remaining() > 0 {
        let Ok(typ) = r.u16("extension type") else {
            return (out, true);
        };
        let Ok(data) = r.vec16("extension body") else {
            return (out, true);
        };
        out.push(Extension { typ, data });
    }
    (out, false)
}

/// A parsed ClientHello, borrowing from the handshake message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// legacy_version (the handshake version field).
    pub legacy_version: u16,
    /// legacy_session_id.
    pub session_id: &'a [u8],
    /// Cipher suites as sent (GREASE included).
    pub cipher_suites: Vec<u16>,
    /// Compression methods.
    pub compression_methods: &'a [u8],
    /// Extensions in wire order (GREASE included).
    pub extensions: Vec<Extension<'a>>,
    /// The extensions block ended inside an extension.
    pub truncated: bool,
}

/// Parses the body of a ClientHello handshake message (without its four-byte header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello<'_>, ParseError> {
    if body.len() < MIN_CLIENT_HELLO_LEN {
        return Err(ParseError::Malformed("ClientHello too short"));
    }
    let mut r = Reader::new(body);
    let legacy_version = r.u16("ClientHello version")?;
    r.bytes(32, "ClientHello random")?;
    let session_id = r.vec8("ClientHello session id")?;
    let suites = r.vec16("ClientHello cipher suites")?;
    if suites.len() % 2 != 0 {
        return Err(ParseError::Malformed("ClientHello cipher suites length"));
    }
    let compression_methods = r.vec8("ClientHello compression methods")?;
    let (extensions, truncated) = if r.remaining() == 0 {
        (Vec::new(), false)
    } else {
        match r.vec16("ClientHello extensions") {
            Ok(block) => parse_extensions(block),
            // The declared block is longer than the message: keep what is there.
            Err(_) => {
                let rest = r.rest();
                let (exts, _) = parse_extensions(rest.get(2..).unwrap_or(&[]));
                (exts, true)
            }
        }
    };
    Ok(ClientHello {
        legacy_version,
        session_id,
        cipher_suites: u16_list(suites),
        compression_methods,
        extensions,
        truncated,
    })
}

/// Finds the body of the first extension of type `typ`.
fn find_extension<'a>(exts: &[Extension<'a>], typ: u16) -> Option<&'a [u8]> {
    exts.iter().find(|e| e.typ == typ).map(|e| e.data)
}

/// The protocol names of an ALPN extension body, in order; a malformed entry ends the list.
#[derive(Clone, Debug)]
pub struct AlpnNames<'a> {
    r: Reader<'a>,
}

impl<'a> AlpnNames<'a> {
    /// The names of an ALPN extension body (none when the list length is malformed).
    pub fn new(data: &'a [u8]) -> Self {
        let list = Reader::new(data).vec16("ALPN list").unwrap_or(&[]);
        AlpnNames {
            r: Reader::new(list),
        }
    }
}

impl<'a> Iterator for AlpnNames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.r.remaining() == 0 {
            return None;
        }
        match self.r.vec8("ALPN protocol") {
            Ok(p) => Some(p),
            Err(_) => {
                // Stop for good.
                self.r = Reader::new(&[]);
                None
            }
        }
    }
}

impl<'a> ClientHello<'a> {
    /// The body of the first extension of type `typ`.
    pub fn extension(&self, typ: u16) -> Option<&'a [u8]> {
        find_extension(&self.extensions, typ)
    }

    /// Whether an extension of type `typ` is present.
    pub fn has_extension(&self, typ: u16) -> bool {
        self.extensions.iter().any(|e| e.typ == typ)
    }

    /// The first host_name of the server_name extension, as text (invalid UTF-8 replaced).
    pub fn sni(&self) -> Option<String> {
        let data = self.extension(ext::SERVER_NAME)?;
        let mut r = Reader::new(data);
        let list = r.vec16("server name list").ok()?;
        let mut r = Reader::new(list);
        while r.remaining() > 0 {
            let name_type = r.u8("server name type").ok()?;
            let name = r.vec16("server name").ok()?;
            if name_type == 0 && !name.is_empty() {
                return Some(String::from_utf8_lossy(name).into_owned());
            }
        }
        None
    }

    /// ALPN protocol names offered, in order.
    pub fn alpn(&self) -> Vec<&'a [u8]> {
        self.alpn_names().collect()
    }

    /// ALPN protocol names offered, in order, without collecting them.
    pub fn alpn_names(&self) -> AlpnNames<'a> {
        AlpnNames::new(self.extension(ext::ALPN).unwrap_or(&[]))
    }

    /// The body of a list extension whose vector has a `prefix`-byte length (1 or 2); empty
    /// when absent or malformed.
    fn list_body(&self, typ: u16, prefix: usize, what: &'static str) -> &'a [u8] {
        self.extension(typ)
            .and_then(|d| {
                let mut r = Reader::new(d);
                if prefix == 1 {
                    r.vec8(what).ok()
                } else {
                    r.vec16(what).ok()
                }
            })
            .unwrap_or(&[])
    }

    /// supported_groups (named curves), in order, GREASE included.
    pub fn supported_groups(&self) -> Vec<u16> {
        self.supported_groups_iter().collect()
    }

    /// [`Self::supported_groups`] without collecting.
    pub fn supported_groups_iter(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        u16_values(self.list_body(ext::SUPPORTED_GROUPS, 2, "supported groups"))
    }

    /// ec_point_formats, in order.
    pub fn ec_point_formats(&self) -> Vec<u8> {
        self.ec_point_formats_bytes().to_vec()
    }

    /// [`Self::ec_point_formats`] borrowed from the message.
    pub fn ec_point_formats_bytes(&self) -> &'a [u8] {
        self.list_body(ext::EC_POINT_FORMATS, 1, "ec point formats")
    }

    /// signature_algorithms, in order, GREASE included.
    pub fn signature_algorithms(&self) -> Vec<u16> {
        self.signature_algorithms_iter().collect()
    }

    /// [`Self::signature_algorithms`] without collecting.
    pub fn signature_algorithms_iter(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        u16_values(self.list_body(ext::SIGNATURE_ALGORITHMS, 2, "signature algorithms"))
    }

    /// supported_versions offered, in order, GREASE included.
    pub fn supported_versions(&self) -> Vec<u16> {
        self.supported_versions_iter().collect()
    }

    /// [`Self::supported_versions`] without collecting.
    pub fn supported_versions_iter(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        u16_values(self.list_body(ext::SUPPORTED_VERSIONS, 1, "supported versions"))
    }
}

/// A parsed ServerHello (or TLS 1.3 HelloRetryRequest), borrowing from the message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// legacy_version (the handshake version field).
    pub legacy_version: u16,
    /// The selected cipher suite.
    pub cipher: u16,
    /// The selected compression method.
    pub compression: u8,
    /// Extensions in wire order.
    pub extensions: Vec<Extension<'a>>,
}

/// Parses the body of a ServerHello handshake message (without its four-byte header).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello<'_>, ParseError> {
    if body.len() < MIN_SERVER_HELLO_LEN {
        return Err(ParseError::Malformed("ServerHello too short"));
    }
    let mut r = Reader::new(body);
    let legacy_version = r.u16("ServerHello version")?;
    r.bytes(32, "ServerHello random")?;
    // TLS 1.3 drafts up to 21 dropped the session id and compression fields (draft 22 brought
    // them back for middlebox compatibility); those drafts put their version here.
    let draft_layout =
        legacy_version == version::TLS_1_3 || (0x7f00..0x7f16).contains(&legacy_version);
    if !draft_layout {
        r.vec8("ServerHello session id")?;
    }
    let cipher = r.u16("ServerHello cipher suite")?;
    let compression = if draft_layout {
        0
    } else {
        r.u8("ServerHello compression")?
    };
    let extensions = if r.remaining() >= 2 {
        match r.vec16("ServerHello extensions") {
            Ok(block) => parse_extensions(block).0,
            Err(_) => parse_extensions(r.rest().get(2..).unwrap_or(&[])).0,
        }
    } else {
        Vec::new()
    };
    Ok(ServerHello {
        legacy_version,
        cipher,
        compression,
        extensions,
    })
}

impl<'a> ServerHello<'a> {
    /// The body of the first extension of type `typ`.
    pub fn extension(&self, typ: u16) -> Option<&'a [u8]> {
        find_extension(&self.extensions, typ)
    }

    /// The version selected through supported_versions, when the extension is present.
    pub fn selected_version(&self) -> Option<u16> {
        let data = self.extension(ext::SUPPORTED_VERSIONS)?;
        Reader::new(data).u16("selected version").ok()
    }

    /// The negotiated version: supported_versions when present, else the legacy field.
    pub fn negotiated_version(&self) -> u16 {
        self.selected_version().unwrap_or(self.legacy_version)
    }

    /// The ALPN protocol the server selected.
    pub fn alpn(&self) -> Option<String> {
        let data = self.extension(ext::ALPN)?;
        AlpnNames::new(data)
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }
}

/// Splits a TLS ≤ 1.2 Certificate message body into the DER of each certificate, leaf first.
/// At most `max` certificates are returned.
pub fn parse_certificate_list(body: &[u8], max: usize) -> Result<Vec<&[u8]>, ParseError> {
    let mut r = Reader::new(body);
    let list = r.vec24("certificate list")?;
    let mut r = Reader::new(list);
    let mut out = Vec::new();
    while r.remaining() > 0 && out.len() < max {
        out.push(r.vec24("certificate")?);
    }
    Ok(out)
}

/// An SSL 2.0-format ClientHello (sent by old clients, sometimes offering TLS versions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslV2ClientHello {
    /// The version the client asks for (0x0002 for SSLv2, 0x0301 for TLS 1.0, …).
    pub version: u16,
    /// Three-byte cipher specs; those with a zero first byte are TLS cipher suites.
    pub cipher_specs: Vec<u32>,
}

impl SslV2ClientHello {
    /// The cipher specs that name TLS cipher suites (first byte zero).
    pub fn tls_cipher_suites(&self) -> Vec<u16> {
        self.cipher_specs
            .iter()
            .filter(|s| **s >> 16 == 0)
            .filter_map(|s| u16::try_from(*s).ok())
            .collect()
    }
}

/// Length of an SSLv2 record with a two-byte header (high bit set), header included.
pub fn sslv2_record_len(input: &[u8]) -> Option<usize> {
    match input {
        [b0, b1, ..] if b0 & 0x80 != 0 => {
            Some((usize::from(b0 & 0x7f) << 8 | usize::from(*b1)) + 2)
        }
        _ => None,
    }
}

/// SSLv2 message types seen at the start of a stream.
pub mod sslv2_type {
    /// CLIENT-HELLO
    pub const CLIENT_HELLO: u8 = 1;
    /// SERVER-HELLO
    pub const SERVER_HELLO: u8 = 4;
}

/// True when `input` starts like an SSLv2 record carrying `msg_type` with a version this module
/// understands (SSL 2.0 or SSL 3.0 .. TLS 1.3 offered in SSLv2 format).
pub fn looks_like_sslv2(input: &[u8], msg_type: u8) -> bool {
    match input {
        [b0, _, t, major, minor, ..] if b0 & 0x80 != 0 && *t == msg_type => {
            if msg_type == sslv2_type::SERVER_HELLO {
                // SERVER-HELLO: session-id-hit, certificate type, then the version.
                matches!(input.get(5..7), Some([0, 2]))
            } else {
                (*major == 0 && *minor == 2) || (*major == 3 && *minor <= 4)
            }
        }
        _ => false,
    }
}

/// Parses an SSLv2 CLIENT-HELLO message (the record body, starting at the message type byte).
pub fn parse_sslv2_client_hello(msg: &[u8]) -> Result<SslV2ClientHello, ParseError> {
    let mut r = Reader::new(msg);
    if r.u8("SSLv2 message type")? != sslv2_type::CLIENT_HELLO {
        return Err(ParseError::Malformed("SSLv2 message type"));
    }
    let version = r.u16("SSLv2 version")?;
    let spec_len = usize::from(r.u16("SSLv2 cipher spec length")?);
    let session_len = usize::from(r.u16("SSLv2 session id length")?);
    let challenge_len = usize::from(r.u16("SSLv2 challenge length")?);
    if spec_len % 3 != 0 {
        return Err(ParseError::Malformed("SSLv2 cipher spec length"));
    }
    let specs = r.bytes(spec_len, "SSLv2 cipher specs")?;
    r.bytes(session_len, "SSLv2 session id")?;
    r.bytes(challenge_len, "SSLv2 challenge")?;
    let cipher_specs = specs
        .chunks_exact(3)
        .map(|c| match c {
            [a, b, d] => (u32::from(*a) << 16) | (u32::from(*b) << 8) | u32::from(*d),
            _ => 0,
        })
        .collect();
    Ok(SslV2ClientHello {
        version,
        cipher_specs,
    })
}

/// The certificate carried by an SSLv2 SERVER-HELLO (record body from the message type byte),
/// when its type is X.509.
pub fn sslv2_server_hello_certificate(msg: &[u8]) -> Result<&[u8], ParseError> {
    let mut r = Reader::new(msg);
    if r.u8("SSLv2 message type")? != sslv2_type::SERVER_HELLO {
        return Err(ParseError::Malformed("SSLv2 message type"));
    }
    r.u8("SSLv2 session id hit")?;
    let cert_type = r.u8("SSLv2 certificate type")?;
    r.u16("SSLv2 version")?;
    let cert_len = usize::from(r.u16("SSLv2 certificate length")?);
    r.u16("SSLv2 cipher specs length")?;
    r.u16("SSLv2 connection id length")?;
    if cert_type != 1 {
        return Err(ParseError::Malformed("SSLv2 certificate type"));
    }
    r.bytes(cert_len, "SSLv2 certificate")
}

/// Cheap content check on the first bytes of a TCP stream direction: a TLS handshake record
/// header whose first message is a ClientHello or ServerHello, or an SSLv2-format ClientHello.
/// Used to classify flows on any port; needs at least six bytes.
pub fn looks_like_tls(data: &[u8]) -> bool {
    if looks_like_sslv2(data, sslv2_type::CLIENT_HELLO) {
        return true;
    }
    match data {
        [content_type::HANDSHAKE, 3, minor, hi, lo, hs_type, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            let hello = *hs_type == handshake_type::CLIENT_HELLO
                || *hs_type == handshake_type::SERVER_HELLO;
            // When the hello's own version is there, it must be 3.x too.
            let version_ok = match rest {
                [_, _, _, major, ..] => *major == 3 || *major == 0x7f,
                _ => true,
            };
            *minor <= 4
                && (HANDSHAKE_HEADER_LEN..=MAX_RECORD_LEN).contains(&len)
                && hello
                && version_ok
        }
        _ => false,
    }
}

/// Cheap check for a proxy request that TLS commonly follows on the same connection: an HTTP
/// `CONNECT host:port HTTP/1.x` line, a SOCKS4/4a CONNECT or BIND request, or a SOCKS5
/// greeting. A flow starting this way is worth handing to [`crate::TlsFlowParser`], which skips
/// the preamble and finds the hello.
pub fn looks_like_tunnel_request(data: &[u8]) -> bool {
    if let Some(line) = data.strip_prefix(b"CONNECT ") {
        let line = line.split(|b| *b == b'\n').next().unwrap_or(&[]);
        return line.windows(7).any(|w| w == b"HTTP/1.");
    }
    match data {
        // SOCKS4: version, command, port, IPv4, user id, NUL.
        [4, 1 | 2, _, _, _, _, _, _, rest @ ..] => rest.contains(&0),
        // SOCKS5 greeting: version, method count, methods.
        [5, n, methods @ ..] => *n > 0 && methods.len() == usize::from(*n),
        _ => false,
    }
}

/// The outcome of scanning for a record start in bytes that did not begin with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A plausible handshake record starts at this offset.
    Found(usize),
    /// Nothing found; the bytes before this offset can be dropped (the rest may hold the
    /// beginning of a record header and needs more data).
    NotYet(usize),
}

/// Judges whether a handshake record starting at the front of `c` is plausible: a hello with a
/// 3.x version, a Certificate whose list length matches, or a ServerHelloDone. Returns `None`
/// when more bytes are needed to decide.
fn plausible_handshake_record(c: &[u8]) -> Option<bool> {
    let window = c.get(..SCAN_WINDOW)?;
    let [ct, major, minor, rl_hi, rl_lo, hs_type, l0, l1, l2, v0, v1] = window else {
        return Some(false);
    };
    if *ct != content_type::HANDSHAKE || *major != 3 || *minor > 4 {
        return Some(false);
    }
    let rec_len = usize::from(u16::from_be_bytes([*rl_hi, *rl_lo]));
    if !(HANDSHAKE_HEADER_LEN..=MAX_RECORD_LEN).contains(&rec_len) {
        return Some(false);
    }
    let hs_len = be24(*l0, *l1, *l2);
    let ok = match *hs_type {
        handshake_type::CLIENT_HELLO | handshake_type::SERVER_HELLO => {
            hs_len >= MIN_SERVER_HELLO_LEN && ((*v0 == 3 && *v1 <= 4) || *v0 == 0x7f)
        }
        handshake_type::CERTIFICATE => {
            let list_len = be24(*v0, *v1, *c.get(SCAN_WINDOW)?);
            hs_len >= 3 && list_len + 3 == hs_len
        }
        handshake_type::SERVER_HELLO_DONE => hs_len == 0,
        _ => false,
    };
    Some(ok)
}

/// Scans `data` for the start of a plausible TLS handshake record (used when a stream does not
/// begin with one: a SOCKS or HTTP CONNECT preamble, or a capture that starts mid-stream).
pub fn find_record_start(data: &[u8]) -> Scan {
    let mut i = 0;
    while i < data.len() {
        let Some(candidate) = data.get(i..) else {
            break;
        };
        // (An SSLv2-format hello is only expected at the very start of a stream.)
        if candidate.first() == Some(&content_type::HANDSHAKE) {
            match plausible_handshake_record(candidate) {
                Some(true) => return Scan::Found(i),
                Some(false) => {}
                None => return Scan::NotYet(i),
            }
        }
        i += 1;
    }
    Scan::NotYet(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ClientHello body: TLS 1.2, two suites (one GREASE), SNI and ALPN.
    fn hello_body() -> Vec<u8> {
        let mut b = vec![0x03, 0x03];
        b.extend([0u8; 32]);
        b.push(0); // session id
        b.extend([0x00, 0x04, 0x1a, 0x1a, 0xc0, 0x2f]);
        b.extend([0x01, 0x00]);
        let sni = b"example.com";
        let mut exts = Vec::new();
        exts.extend([0x00, 0x00]);
        let sni_len = (sni.len() + 5) as u16;
        exts.extend(sni_len.to_be_bytes());
        exts.extend(((sni.len() + 3) as u16).to_be_bytes());
        exts.push(0);
        exts.extend((sni.len() as u16).to_be_bytes());
        exts.extend(sni);
        exts.extend([0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2']);
        b.extend((exts.len() as u16).to_be_bytes());
        b.extend(exts);
        b
    }

    #[test]
    fn record_header_checks_type_version_and_length() {
        assert_eq!(
            parse_record_header(&[0x16, 0x03, 0x01, 0x00, 0x10]),
            Ok(RecordHeader {
                content_type: 22,
                version: 0x0301,
                length: 16
            })
        );
        assert_eq!(
            parse_record_header(&[0x16, 0x03]),
            Err(ParseError::Incomplete)
        );
        assert!(matches!(
            parse_record_header(&[0x47, 0x45, 0x54]),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_record_header(&[0x16, 0x02, 0x00, 0, 1]),
            Err(ParseError::Malformed(_))
        ));
        assert_eq!(
            parse_record_header(&[0x17, 0x03, 0x03, 0xff, 0xff]),
            Err(ParseError::Oversized)
        );
    }

    #[test]
    fn client_hello_fields() {
        let body = hello_body();
        let ch = parse_client_hello(&body).expect("valid hello");
        assert_eq!(ch.legacy_version, 0x0303);
        assert_eq!(ch.cipher_suites, vec![0x1a1a, 0xc02f]);
        assert_eq!(ch.sni().as_deref(), Some("example.com"));
        assert_eq!(ch.alpn(), vec![b"h2".as_slice()]);
        assert!(!ch.truncated);
    }

    #[test]
    fn list_extensions_read_in_place_and_stop_at_malformed_entries() {
        let exts = [
            // ALPN: "h2", then an entry claiming 9 bytes with 2 present.
            Extension {
                typ: ext::ALPN,
                data: &[0x00, 0x06, 0x02, b'h', b'2', 0x09, b'x', b'y'],
            },
            // supported_versions: GREASE, 1.3, 1.2.
            Extension {
                typ: ext::SUPPORTED_VERSIONS,
                data: &[0x06, 0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03],
            },
            // supported_groups whose length overruns the body: treated as absent.
            Extension {
                typ: ext::SUPPORTED_GROUPS,
                data: &[0x00, 0x08, 0x00, 0x1d],
            },
            Extension {
                typ: ext::EC_POINT_FORMATS,
                data: &[0x02, 0x00, 0x01],
            },
        ];
        let ch = ClientHello {
            legacy_version: 0x0303,
            session_id: &[],
            cipher_suites: vec![],
            compression_methods: &[0],
            extensions: exts.to_vec(),
            truncated: false,
        };
        assert_eq!(ch.alpn_names().collect::<Vec<_>>(), vec![b"h2".as_slice()]);
        assert_eq!(ch.alpn(), vec![b"h2".as_slice()]);
        assert_eq!(
            ch.supported_versions_iter().collect::<Vec<_>>(),
            vec![0x7a7a, 0x0304, 0x0303]
        );
        assert_eq!(ch.supported_versions(), vec![0x7a7a, 0x0304, 0x0303]);
        assert_eq!(ch.supported_groups_iter().count(), 0);
        assert_eq!(ch.ec_point_formats_bytes(), &[0x00, 0x01]);
        assert_eq!(ch.signature_algorithms(), Vec::<u16>::new());
        assert_eq!(AlpnNames::new(&[0xff]).count(), 0);
    }

    #[test]
    fn truncated_hello_is_malformed_or_flagged_never_a_panic() {
        let body = hello_body();
        for cut in 0..body.len() {
            match parse_client_hello(&body[..cut]) {
                Ok(ch) => assert!(ch.truncated || ch.extensions.len() < 2),
                Err(e) => assert!(matches!(e, ParseError::Malformed(_))),
            }
        }
    }

    #[test]
    fn tls13_draft_server_hello_has_no_session_id() {
        // capture-01: a TLS 1.3 pre-draft-16 ServerHello (version field 0x0304).
        let hex =
            "03042393b6518b8dd3d7ae957155977935932a6f5e600e5b7d9774daa7bc2f2cbcc3c02b00490028\
                   004500170041042dd0952da464b93202b067c846029914097c1887d6d068d353f8bea9198805\
                   1990f726f1f2739d87d6f7e63b2bd045d19d6940e75fe8ae06fd04b350c5bf1565";
        let body: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let sh = parse_server_hello(&body).expect("draft layout");
        assert_eq!(sh.cipher, 0xc02b);
        assert_eq!(sh.extensions.len(), 1);
        assert_eq!(sh.extensions[0].typ, 40);
        assert_eq!(
            version::name(version::from_legacy_field(sh.legacy_version)),
            "TLS 1.3 draft-<16"
        );
    }

    #[test]
    fn suricata_version_names() {
        assert_eq!(version::name(0x0301), "TLSv1");
        assert_eq!(version::name(0x0302), "TLS 1.1");
        assert_eq!(version::name(0x0300), "SSLv3");
        assert_eq!(version::name(0x0002), "SSLv2");
        assert_eq!(version::name(0x7f16), "TLS 1.3 draft-22");
        assert_eq!(version::name(0x7f1c), "TLS 1.3 draft-28");
        assert_eq!(version::name(0xfb17), "TLS 1.3 draft-23-fb");
        assert_eq!(version::name(0x1234), "0x1234");
        assert_eq!(
            version::from_legacy_field(0x7f05),
            version::TLS_1_3_PRE_DRAFT16
        );
        assert_eq!(version::from_legacy_field(0x0303), 0x0303);
        assert!(
            version::is_known(0x7f12) && !version::is_known(0x7f0f) && !version::is_known(0x0a0a)
        );
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }

    #[test]
    fn scan_finds_a_hello_after_a_socks4_request() {
        let mut data = vec![0x04, 0x01, 0x01, 0xbb, 0x5d, 0xb8, 0xd8, 0x77, 0x00];
        data.extend([
            0x16, 0x03, 0x01, 0x00, 0x73, 0x01, 0x00, 0x00, 0x6f, 0x03, 0x01,
        ]);
        assert_eq!(find_record_start(&data), Scan::Found(9));
        // The header cut short: keep it for later.
        assert_eq!(find_record_start(&data[..14]), Scan::NotYet(9));
        assert_eq!(find_record_start(b"GET / HTTP/1.1\r\n"), Scan::NotYet(16));
    }

    #[test]
    fn looks_like_tls_accepts_hellos_only() {
        assert!(looks_like_tls(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03
        ]));
        assert!(!looks_like_tls(&[0x17, 0x03, 0x03, 0x00, 0x20, 0x01]));
        assert!(!looks_like_tls(b"GET / HTTP/1.1"));
        assert!(!looks_like_tls(&[0x16, 0x03]));
        // SSLv2-format ClientHello offering TLS 1.0.
        assert!(looks_like_tls(&[0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]));
    }

    #[test]
    fn tunnel_requests() {
        assert!(looks_like_tunnel_request(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"
        ));
        assert!(!looks_like_tunnel_request(b"CONNECT example.com:443\r\n"));
        assert!(looks_like_tunnel_request(&[
            0x04, 0x01, 0x01, 0xbb, 0x5d, 0xb8, 0xd8, 0x77, 0x00
        ]));
        assert!(looks_like_tunnel_request(&[0x05, 0x01, 0x00]));
        assert!(!looks_like_tunnel_request(&[0x05, 0x02, 0x00]));
        assert!(!looks_like_tunnel_request(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_tunnel_request(&[]));
    }

    #[test]
    fn certificate_list_hostile_lengths() {
        assert!(parse_certificate_list(&[0xff, 0xff, 0xff], 10).is_err());
        assert!(parse_certificate_list(&[0, 0, 5, 0, 0, 9, 1], 10).is_err());
        let ok = parse_certificate_list(&[0, 0, 5, 0, 0, 2, 0xaa, 0xbb], 10).expect("one cert");
        assert_eq!(ok, vec![&[0xaa, 0xbb][..]]);
    }
}
