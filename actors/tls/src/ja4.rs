//! JA4, FoxIO's TLS client fingerprint (BSD-3-Clause part of JA4+ only; JA4S/JA4X are out of
//! scope), following the JA4 technical details:
//!
//! `{t|q}{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{sha256_12(sorted ciphers)}_{sha256_12(sorted extensions without SNI/ALPN "_" signature algorithms)}`
//!
//! GREASE is ignored everywhere; counts stop at 99; an empty list hashes to `000000000000`.

use crate::parser::{ext, is_grease, version, ClientHello};
use crate::text::{hex_pair, into_string, push_hex_u16, push_two_digits};
use sha2::{Digest, Sha256};

/// The part b / part c value when there is nothing to hash.
pub const EMPTY_HASH: &str = "000000000000";
/// Counts are two decimal digits.
const MAX_COUNT: usize = 99;
/// Hex characters of a hashed part.
const HASH_CHARS: usize = 12;
/// Characters of part a (`t13d1516h2`).
const PART_A_CHARS: usize = 10;
/// Characters of a whole fingerprint: part a and two hashed parts with their separators.
const JA4_CHARS: usize = PART_A_CHARS + 2 * (1 + HASH_CHARS);

/// Transport the ClientHello was carried over: the first character of JA4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TLS over TCP (`t`).
    Tcp,
    /// QUIC (`q`).
    Quic,
}

/// The two-character version code of JA4.
pub fn version_code(v: u16) -> &'static str {
    match v {
        version::TLS_1_3 => "13",
        version::TLS_1_2 => "12",
        version::TLS_1_1 => "11",
        version::TLS_1_0 => "10",
        version::SSL_3 => "s3",
        version::SSL_2 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The version JA4 uses: the highest non-GREASE value of supported_versions when the extension
/// is present, else the hello's version field.
pub fn ja4_version(ch: &ClientHello<'_>) -> u16 {
    if ch.has_extension(ext::SUPPORTED_VERSIONS) {
        ch.supported_versions_iter()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(0)
    } else {
        ch.legacy_version
    }
}

fn hex_nibble(n: u8) -> char {
    char::from(
        b"0123456789abcdef"
            .get(usize::from(n & 0x0f))
            .copied()
            .unwrap_or(b'0'),
    )
}

/// The two ALPN characters: first and last character of the first ALPN value; when either is
/// not ASCII alphanumeric, the first nibble of the first byte and the last nibble of the last
/// byte in hex; `00` when there is no value.
pub fn alpn_chars(first_value: Option<&[u8]>) -> [char; 2] {
    let Some(v) = first_value else {
        return ['0', '0'];
    };
    let (Some(&first), Some(&last)) = (v.first(), v.last()) else {
        return ['0', '0'];
    };
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [char::from(first), char::from(last)]
    } else {
        [hex_nibble(first >> 4), hex_nibble(last)]
    }
}

/// First 12 hex characters of SHA-256 of `s`, or [`EMPTY_HASH`] for an empty string.
pub fn hash12(s: &str) -> String {
    into_string(hash12_chars(s.as_bytes()).to_vec())
}

/// The [`hash12`] characters of `raw`.
fn hash12_chars(raw: &[u8]) -> [u8; HASH_CHARS] {
    let mut out = [b'0'; HASH_CHARS];
    if raw.is_empty() {
        for (o, e) in out.iter_mut().zip(EMPTY_HASH.bytes()) {
            *o = e;
        }
        return out;
    }
    let digest = Sha256::digest(raw);
    for (slot, b) in out.chunks_exact_mut(2).zip(digest.iter()) {
        slot.copy_from_slice(&hex_pair(*b));
    }
    out
}

/// Appends `values` as `{:04x}` joined by `,`.
fn push_join_hex(out: &mut Vec<u8>, values: impl IntoIterator<Item = u16>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_hex_u16(out, v);
    }
}

/// Appends part a: transport, version, SNI flag, cipher and extension counts, ALPN characters.
fn push_part_a(out: &mut Vec<u8>, ch: &ClientHello<'_>, transport: Transport) {
    let ciphers = ch.cipher_suites.iter().filter(|c| !is_grease(**c)).count();
    let exts = ch.extensions.iter().filter(|e| !is_grease(e.typ)).count();
    let first_alpn = ch.alpn_names().find(|p| match p {
        [a, b] => !is_grease(u16::from_be_bytes([*a, *b])),
        _ => true,
    });
    let alpn = alpn_chars(first_alpn);
    out.push(match transport {
        Transport::Tcp => b't',
        Transport::Quic => b'q',
    });
    out.extend_from_slice(version_code(ja4_version(ch)).as_bytes());
    out.push(if ch.has_extension(ext::SERVER_NAME) {
        b'd'
    } else {
        b'i'
    });
    push_two_digits(out, u8::try_from(ciphers.min(MAX_COUNT)).unwrap_or(99));
    push_two_digits(out, u8::try_from(exts.min(MAX_COUNT)).unwrap_or(99));
    for c in alpn {
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
}

/// Values sorted on the stack up to this count (hellos list 10 to 50 ciphers or extensions);
/// longer lists go to the heap.
const STACK_VALUES: usize = 64;

/// Collects `values` into `stack` (or `heap` when they do not fit) and sorts them.
fn sorted<'b>(
    values: impl Iterator<Item = u16> + Clone,
    stack: &'b mut [u16; STACK_VALUES],
    heap: &'b mut Vec<u16>,
) -> &'b [u16] {
    let n = values.clone().count();
    let list: &'b mut [u16] = if n <= STACK_VALUES {
        for (slot, v) in stack.iter_mut().zip(values) {
            *slot = v;
        }
        stack.get_mut(..n).unwrap_or_default()
    } else {
        heap.clear();
        heap.extend(values);
        heap.as_mut_slice()
    };
    list.sort_unstable();
    list
}

/// Appends raw part b: the non-GREASE cipher suites sorted, in hex.
fn push_part_b(out: &mut Vec<u8>, ch: &ClientHello<'_>) {
    let mut stack = [0u16; STACK_VALUES];
    let mut heap = Vec::new();
    let ciphers = ch.cipher_suites.iter().copied().filter(|c| !is_grease(*c));
    push_join_hex(out, sorted(ciphers, &mut stack, &mut heap).iter().copied());
}

/// Appends raw part c: the non-GREASE extension types without SNI and ALPN sorted, then `_` and
/// the signature algorithms in wire order (only when both lists are non-empty).
fn push_part_c(out: &mut Vec<u8>, ch: &ClientHello<'_>) {
    let mut stack = [0u16; STACK_VALUES];
    let mut heap = Vec::new();
    let types = ch
        .extensions
        .iter()
        .map(|e| e.typ)
        .filter(|t| !is_grease(*t) && *t != ext::SERVER_NAME && *t != ext::ALPN);
    let exts = sorted(types, &mut stack, &mut heap);
    push_join_hex(out, exts.iter().copied());
    let mut sigs = ch.signature_algorithms_iter().filter(|s| !is_grease(*s));
    if let (false, Some(first)) = (exts.is_empty(), sigs.next()) {
        out.push(b'_');
        push_join_hex(out, std::iter::once(first).chain(sigs));
    }
}

/// Bytes of raw parts b and c for a hello: 5 per value.
fn raw_capacity(ch: &ClientHello<'_>) -> usize {
    let sigs = ch.signature_algorithms_iter().count();
    5 * ch.cipher_suites.len().max(ch.extensions.len() + sigs) + 1
}

/// The raw (unhashed, sorted) JA4 parts: `(a, b_raw, c_raw)`; useful to find which part of a
/// fingerprint differs from a reference (FoxIO's `JA4_r`).
pub fn ja4_parts(ch: &ClientHello<'_>, transport: Transport) -> (String, String, String) {
    let mut a = Vec::with_capacity(PART_A_CHARS);
    push_part_a(&mut a, ch, transport);
    let mut b = Vec::with_capacity(5 * ch.cipher_suites.len());
    push_part_b(&mut b, ch);
    let mut c = Vec::with_capacity(raw_capacity(ch));
    push_part_c(&mut c, ch);
    (into_string(a), into_string(b), into_string(c))
}

/// Appends `_` and the [`hash12`] of `raw`.
fn push_hashed(out: &mut Vec<u8>, raw: &[u8]) {
    out.push(b'_');
    out.extend_from_slice(&hash12_chars(raw));
}

/// The JA4 fingerprint of a ClientHello.
pub fn ja4(ch: &ClientHello<'_>, transport: Transport) -> String {
    let mut out = Vec::with_capacity(JA4_CHARS);
    push_part_a(&mut out, ch, transport);
    // Raw parts b and c go through one scratch buffer in turn, each hashed once.
    let mut raw = Vec::with_capacity(raw_capacity(ch));
    push_part_b(&mut raw, ch);
    push_hashed(&mut out, &raw);
    raw.clear();
    push_part_c(&mut raw, ch);
    push_hashed(&mut out, &raw);
    into_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Extension;

    #[test]
    fn alpn_characters_follow_the_spec_examples() {
        assert_eq!(alpn_chars(Some(b"h2")), ['h', '2']);
        assert_eq!(alpn_chars(Some(b"http/1.1")), ['h', '1']);
        assert_eq!(alpn_chars(Some(b"h")), ['h', 'h']);
        assert_eq!(alpn_chars(None), ['0', '0']);
        assert_eq!(alpn_chars(Some(b"")), ['0', '0']);
        // The spec's hex examples.
        assert_eq!(alpn_chars(Some(&[0xab])), ['a', 'b']);
        assert_eq!(alpn_chars(Some(&[0xab, 0xcd])), ['a', 'd']);
        assert_eq!(alpn_chars(Some(&[0x30, 0xab])), ['3', 'b']);
        assert_eq!(alpn_chars(Some(&[0x30, 0x31, 0xab, 0xcd])), ['3', 'd']);
        assert_eq!(alpn_chars(Some(&[0x30, 0xab, 0xcd, 0x31])), ['0', '1']);
    }

    #[test]
    fn hashes_of_the_spec_example() {
        assert_eq!(
            hash12("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"),
            "8daaf6152771"
        );
        assert_eq!(
            hash12("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601"),
            "e5627efa2ab1"
        );
        assert_eq!(
            hash12("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"),
            "6d807ffa2a79"
        );
        assert_eq!(hash12(""), EMPTY_HASH);
    }

    /// JA4 assembled from the raw parts the slow way, as the spec describes it.
    fn ja4_from_parts(ch: &ClientHello<'_>) -> String {
        let (a, b, c) = ja4_parts(ch, Transport::Tcp);
        format!("{a}_{}_{}", hash12(&b), hash12(&c))
    }

    fn hello(ciphers: Vec<u16>, exts: Vec<Extension<'static>>) -> ClientHello<'static> {
        ClientHello {
            legacy_version: 0x0303,
            session_id: &[],
            cipher_suites: ciphers,
            compression_methods: &[0],
            extensions: exts,
            truncated: false,
        }
    }

    #[test]
    fn one_buffer_fingerprint_matches_the_parts() {
        // The spec example's lists, GREASE mixed in, SNI and ALPN present.
        const SIGS: &[u8] = &[
            0x00, 0x10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01,
            0x08, 0x06, 0x06, 0x01,
        ];
        let mut exts: Vec<Extension<'static>> = [
            0x1a1a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0005, 0x0012, 0x0033, 0x002d,
            0x001b, 0x0015, 0x4469,
        ]
        .iter()
        .map(|t| Extension { typ: *t, data: &[] })
        .collect();
        exts.push(Extension {
            typ: ext::SUPPORTED_VERSIONS,
            data: &[0x04, 0x03, 0x04, 0x03, 0x03],
        });
        exts.push(Extension {
            typ: ext::SIGNATURE_ALGORITHMS,
            data: SIGS,
        });
        exts.push(Extension {
            typ: ext::ALPN,
            data: &[0x00, 0x03, 0x02, b'h', b'2'],
        });
        let ciphers = vec![
            0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let ch = hello(ciphers, exts);
        let fp = ja4(&ch, Transport::Tcp);
        assert_eq!(fp, ja4_from_parts(&ch));
        assert_eq!(fp, "t13d1516h2_8daaf6152771_e5627efa2ab1");

        // Over the stack sorting buffer (70 ciphers), and no extensions at all.
        let many: Vec<u16> = (0..70u16).rev().map(|i| 0x0100 + i).collect();
        let ch = hello(many.clone(), vec![]);
        let fp = ja4(&ch, Transport::Quic);
        let mut sorted = many;
        sorted.sort_unstable();
        let raw_b: Vec<String> = sorted.iter().map(|c| format!("{c:04x}")).collect();
        assert_eq!(
            fp,
            format!("q12i700000_{}_{EMPTY_HASH}", hash12(&raw_b.join(",")))
        );
        assert_eq!(ja4_parts(&ch, Transport::Tcp).1, raw_b.join(","));
    }

    #[test]
    fn version_codes() {
        assert_eq!(version_code(0x0304), "13");
        assert_eq!(version_code(0x0300), "s3");
        assert_eq!(version_code(0x7f16), "00");
    }
}
