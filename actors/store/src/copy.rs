//! PostgreSQL's binary `COPY` format, encoded by hand for every table the writer fills.
//!
//! It is also where text is made acceptable to PostgreSQL, which refuses a
//! NUL byte in `text` and the escape `\u0000` in `jsonb`, and such bytes arrive from the wire (SNI,
//! certificate names, Kerberos names, DHCP host names) and from MCP callers. Every text value is
//! written through [`CopyBuf::text`] and every JSON value through [`CopyBuf::jsonb`], which replace
//! NUL with U+FFFD, the character that lossy UTF-8 decoding already uses for bytes that are not
//! text. Rust strings are valid UTF-8 by construction, so nothing else can be refused. The few
//! query paths that store caller text (`queries/`, `tokens.rs`) use the same [`clean_text`].

use std::borrow::Cow;
use std::net::IpAddr;

/// Signature, flags word and header-extension length of a binary `COPY` stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Field count that ends a binary `COPY` stream.
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// PostgreSQL counts timestamps in microseconds from 2000-01-01, the Unix epoch plus this.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds since the Unix epoch.
const MIN_UNIX_US: i64 = -62_135_596_800_000_000;
const MAX_UNIX_US: i64 = 253_402_300_799_999_999;
/// Type OIDs that array headers name.
const TEXT_OID: i32 = 25;
const INT4_OID: i32 = 23;
/// What a NUL becomes.
const REPLACEMENT: char = '\u{FFFD}';

/// Microseconds since the Unix epoch clamped to the years 1 to 9999, as they are stored (a
/// certificate or a packet may claim any time; PostgreSQL refuses some).
pub fn storable_us(unix_us: i64) -> i64 {
    unix_us.clamp(MIN_UNIX_US, MAX_UNIX_US)
}

/// Text as PostgreSQL will take it: NUL replaced by U+FFFD (borrowed when there is none).
pub fn clean_text(s: &str) -> Cow<'_, str> {
    if s.as_bytes().contains(&0) {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A JSON value as `jsonb` will take it: every NUL in its strings and keys replaced.
pub fn clean_json(v: &serde_json::Value) -> Cow<'_, serde_json::Value> {
    fn dirty(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(dirty),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || dirty(v)),
            _ => false,
        }
    }
    fn clean(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => serde_json::Value::String(clean_text(s).into_owned()),
            serde_json::Value::Array(a) => a.iter().map(clean).collect(),
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, v)| (clean_text(k).into_owned(), clean(v)))
                .collect(),
            other => other.clone(),
        }
    }
    if dirty(v) {
        Cow::Owned(clean(v))
    } else {
        Cow::Borrowed(v)
    }
}

/// One binary `COPY` stream under construction; the buffer is kept between batches.
#[derive(Default, Debug)]
pub struct CopyBuf {
    buf: Vec<u8>,
    rows: usize,
}

impl CopyBuf {
    /// Rows encoded since the last [`CopyBuf::clear`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// True when no row is encoded.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Forgets the rows, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.rows = 0;
    }

    /// Starts a row of `columns` fields.
    pub fn row(&mut self, columns: i16) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(HEADER);
        }
        self.rows += 1;
        self.buf.extend_from_slice(&columns.to_be_bytes());
    }

    /// The finished stream (header, rows, trailer); the trailer is removed again by the next row.
    pub fn finish(&mut self) -> &[u8] {
        self.buf.extend_from_slice(&TRAILER);
        &self.buf
    }

    /// Undoes [`CopyBuf::finish`] so that more rows can follow.
    pub fn unfinish(&mut self) {
        if self.buf.ends_with(&TRAILER) && self.rows > 0 {
            self.buf.truncate(self.buf.len() - TRAILER.len());
        }
    }

    fn len_prefix(&mut self, len: usize) {
        // Fields are far below 2 GiB (record and batch caps); saturate rather than wrap.
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
    }

    /// SQL NULL.
    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// `smallint`.
    pub fn int2(&mut self, v: i16) {
        self.len_prefix(2);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `integer`.
    pub fn int4(&mut self, v: i32) {
        self.len_prefix(4);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Nullable `integer`.
    pub fn opt_int4(&mut self, v: Option<i32>) {
        match v {
            Some(v) => self.int4(v),
            None => self.null(),
        }
    }

    /// `bigint`.
    pub fn int8(&mut self, v: i64) {
        self.len_prefix(8);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Nullable `bigint`.
    pub fn opt_int8(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int8(v),
            None => self.null(),
        }
    }

    /// `boolean`.
    pub fn bool(&mut self, v: bool) {
        self.len_prefix(1);
        self.buf.push(u8::from(v));
    }

    /// `timestamptz` from microseconds since the Unix epoch, as [`storable_us`] clamps them.
    pub fn timestamptz_us(&mut self, unix_us: i64) {
        self.int8(storable_us(unix_us) - PG_EPOCH_US);
    }

    /// `text`, cleaned.
    pub fn text(&mut self, s: &str) {
        let nuls = s.bytes().filter(|b| *b == 0).count();
        // U+FFFD takes three bytes where NUL took one.
        self.len_prefix(s.len() + 2 * nuls);
        self.push_clean(s, nuls);
    }

    /// Nullable `text`, cleaned.
    pub fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn push_clean(&mut self, s: &str, nuls: usize) {
        if nuls == 0 {
            self.buf.extend_from_slice(s.as_bytes());
            return;
        }
        let mut tmp = [0u8; 4];
        let rep = REPLACEMENT.encode_utf8(&mut tmp).as_bytes();
        for (i, part) in s.split('\0').enumerate() {
            if i > 0 {
                self.buf.extend_from_slice(rep);
            }
            self.buf.extend_from_slice(part.as_bytes());
        }
    }

    /// `text[]` (one dimension), each element cleaned.
    pub fn text_array<S: AsRef<str>>(&mut self, items: &[S]) {
        let at = self.open_field();
        self.array_header(TEXT_OID, items.len());
        for s in items {
            self.text(s.as_ref());
        }
        self.close_field(at);
    }

    /// `integer[]` (one dimension).
    pub fn int4_array(&mut self, items: &[i32]) {
        let at = self.open_field();
        self.array_header(INT4_OID, items.len());
        for v in items {
            self.int4(*v);
        }
        self.close_field(at);
    }

    fn array_header(&mut self, oid: i32, n: usize) {
        let dims: i32 = if n == 0 { 0 } else { 1 };
        self.buf.extend_from_slice(&dims.to_be_bytes());
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // no NULL elements
        self.buf.extend_from_slice(&oid.to_be_bytes());
        if n > 0 {
            self.len_prefix(n);
            self.buf.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        }
    }

    /// `jsonb`: version 1 followed by the JSON text, with every `\u0000` escape turned into
    /// `\ufffd` (the same length, so it is done in place).
    pub fn jsonb(&mut self, v: &serde_json::Value) {
        let at = self.open_field();
        self.buf.push(1);
        let start = self.buf.len();
        if serde_json::to_writer(&mut self.buf, v).is_err() {
            // A Value always serializes; keep the row valid if that ever changes.
            self.buf.truncate(start);
            self.buf.extend_from_slice(b"null");
        }
        replace_nul_escapes(&mut self.buf[start..]);
        self.close_field(at);
    }

    /// `inet` (a host address).
    pub fn inet(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.len_prefix(8);
                self.buf.extend_from_slice(&[2, 32, 0, 4]);
                self.buf.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                self.len_prefix(20);
                self.buf.extend_from_slice(&[3, 128, 0, 16]);
                self.buf.extend_from_slice(&a.octets());
            }
        }
    }

    fn open_field(&mut self) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        at
    }

    fn close_field(&mut self, at: usize) {
        let len = self.buf.len() - at - 4;
        let len = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&len);
        }
    }
}

/// Rewrites `\u0000` escapes of serialized JSON to `\ufffd`; escaped backslashes are skipped, so
/// the text `\\u0000` (a backslash, then "u0000") is left alone.
fn replace_nul_escapes(json: &mut [u8]) {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000") {
                json[i + 2..i + 6].copy_from_slice(b"fffd");
                i += 6;
            } else {
                i += 2;
            }
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_nul_is_borrowed_and_nul_becomes_replacement() {
        assert!(matches!(clean_text("abc"), Cow::Borrowed(_)));
        assert_eq!(clean_text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        let mut c = CopyBuf::default();
        c.row(1);
        c.text("x\0y");
        let body = &c.buf[HEADER.len() + 2..];
        assert_eq!(&body[..4], &5i32.to_be_bytes());
        assert_eq!(&body[4..], "x\u{FFFD}y".as_bytes());
    }

    #[test]
    fn json_nul_escapes_are_replaced_but_escaped_backslashes_kept() {
        let v = serde_json::json!({"a\u{0}": "x\u{0}", "b": "\\u0000", "c": ["\u{0}"]});
        let mut c = CopyBuf::default();
        c.row(1);
        c.jsonb(&v);
        let text = std::str::from_utf8(&c.buf[HEADER.len() + 2 + 4 + 1..]).unwrap();
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, *clean_json(&v));
        assert_eq!(back["b"], "\\u0000");
        assert_eq!(back["c"][0], "\u{FFFD}");
    }

    #[test]
    fn arrays_carry_their_length_and_empty_arrays_have_no_dimension() {
        let mut c = CopyBuf::default();
        c.row(2);
        c.int4_array(&[]);
        c.text_array(&["ab"]);
        let b = &c.buf[HEADER.len() + 2..];
        assert_eq!(&b[..4], &12i32.to_be_bytes());
        assert_eq!(&b[4..8], &0i32.to_be_bytes());
        let b = &b[16..];
        // 12 header + 8 dimension + 4 length + 2 bytes
        assert_eq!(&b[..4], &26i32.to_be_bytes());
    }
}
