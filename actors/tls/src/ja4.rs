//! JA4, FoxIO's TLS client fingerprint (BSD-3-Clause part of JA4+ only; JA4S/JA4X are out of
//! scope), following the JA4 technical details:
//!
//! `{t|q}{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{sha256_12(sorted ciphers)}_{sha256_12(sorted extensions without SNI/ALPN "_" signature algorithms)}`
//!
//! GREASE is ignored everywhere; counts stop at 99; an empty list hashes to `000000000000`.

use crate::parser::{ext, is_grease, version, ClientHello};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The part b / part c value when there is nothing to hash.
pub const EMPTY_HASH: &str = "000000000000";
/// Counts are two decimal digits.
const MAX_COUNT: usize = 99;

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
        ch.supported_versions()
            .into_iter()
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
    if s.is_empty() {
        return EMPTY_HASH.to_owned();
    }
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(12);
    for b in digest.iter().take(6) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn join_hex(values: &[u16]) -> String {
    let mut s = String::with_capacity(values.len() * 5);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{v:04x}");
    }
    s
}

/// The raw (unhashed, sorted) JA4 parts: `(a, b_raw, c_raw)`; useful to find which part of a
/// fingerprint differs from a reference (FoxIO's `JA4_r`).
pub fn ja4_parts(ch: &ClientHello<'_>, transport: Transport) -> (String, String, String) {
    let mut ciphers: Vec<u16> = ch
        .cipher_suites
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let ext_types: Vec<u16> = ch
        .extensions
        .iter()
        .map(|e| e.typ)
        .filter(|t| !is_grease(*t))
        .collect();
    let alpn = ch.alpn();
    let first_alpn = alpn.iter().copied().find(|p| match p {
        [a, b] => !is_grease(u16::from_be_bytes([*a, *b])),
        _ => true,
    });
    let [a1, a2] = alpn_chars(first_alpn);
    let a = format!(
        "{}{}{}{:02}{:02}{}{}",
        match transport {
            Transport::Tcp => 't',
            Transport::Quic => 'q',
        },
        version_code(ja4_version(ch)),
        if ch.has_extension(ext::SERVER_NAME) {
            'd'
        } else {
            'i'
        },
        ciphers.len().min(MAX_COUNT),
        ext_types.len().min(MAX_COUNT),
        a1,
        a2
    );
    ciphers.sort_unstable();
    let mut exts: Vec<u16> = ext_types
        .into_iter()
        .filter(|t| *t != ext::SERVER_NAME && *t != ext::ALPN)
        .collect();
    exts.sort_unstable();
    let sigs: Vec<u16> = ch
        .signature_algorithms()
        .into_iter()
        .filter(|s| !is_grease(*s))
        .collect();
    let b = join_hex(&ciphers);
    let mut c = join_hex(&exts);
    if !exts.is_empty() && !sigs.is_empty() {
        c.push('_');
        c.push_str(&join_hex(&sigs));
    }
    (a, b, c)
}

/// The JA4 fingerprint of a ClientHello.
pub fn ja4(ch: &ClientHello<'_>, transport: Transport) -> String {
    let (a, b, c) = ja4_parts(ch, transport);
    format!("{a}_{}_{}", hash12(&b), hash12(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn version_codes() {
        assert_eq!(version_code(0x0304), "13");
        assert_eq!(version_code(0x0300), "s3");
        assert_eq!(version_code(0x7f16), "00");
    }
}
