//! JA3 (client) and JA3S (server) fingerprints, computed the way Suricata does: decimal values
//! joined by `-` inside a field and fields joined by `,`, GREASE values removed everywhere, empty
//! fields left empty, and the lowercase hex MD5 of that string.

use crate::parser::{is_grease, ClientHello, ServerHello};
use crate::text::{into_string, push_hex_lower, push_u16};
use md5::{Digest, Md5};
use netmonitor_common::Fingerprint;

/// Longest decimal u16 plus its separator: the per-value size estimate of a JA3 string.
const CHARS_PER_VALUE: usize = 6;

/// Appends `values` joined by `-`, skipping GREASE.
fn push_list(out: &mut Vec<u8>, values: impl IntoIterator<Item = u16>) {
    let mut first = true;
    for v in values.into_iter().filter(|v| !is_grease(*v)) {
        if !first {
            out.push(b'-');
        }
        first = false;
        push_u16(out, v);
    }
}

/// The JA3 string of a ClientHello: `version,ciphers,extensions,curves,point_formats`.
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    let groups = ch.supported_groups_iter();
    let formats = ch.ec_point_formats_bytes();
    let values =
        1 + ch.cipher_suites.len() + ch.extensions.len() + groups.clone().count() + formats.len();
    let mut s = Vec::with_capacity(values * CHARS_PER_VALUE + 4);
    push_u16(&mut s, ch.legacy_version);
    s.push(b',');
    push_list(&mut s, ch.cipher_suites.iter().copied());
    s.push(b',');
    push_list(&mut s, ch.extensions.iter().map(|e| e.typ));
    s.push(b',');
    push_list(&mut s, groups);
    s.push(b',');
    push_list(&mut s, formats.iter().copied().map(u16::from));
    into_string(s)
}

/// The JA3S string of a ServerHello: `version,cipher,extensions`.
pub fn ja3s_string(sh: &ServerHello<'_>) -> String {
    let mut s = Vec::with_capacity((2 + sh.extensions.len()) * CHARS_PER_VALUE);
    push_u16(&mut s, sh.legacy_version);
    s.push(b',');
    push_u16(&mut s, sh.cipher);
    s.push(b',');
    push_list(&mut s, sh.extensions.iter().map(|e| e.typ));
    into_string(s)
}

/// Lowercase hex MD5 of `s`.
pub fn md5_hex(s: &str) -> String {
    let digest = Md5::digest(s.as_bytes());
    let mut out = Vec::with_capacity(2 * digest.len());
    push_hex_lower(&mut out, &digest, None);
    into_string(out)
}

/// The fingerprint record (string and hash) of a JA3 or JA3S string.
pub fn fingerprint(string: String) -> Fingerprint {
    Fingerprint {
        hash: md5_hex(&string),
        string,
    }
}

/// JA3 of a ClientHello as Suricata logs it.
pub fn ja3(ch: &ClientHello<'_>) -> Fingerprint {
    fingerprint(ja3_string(ch))
}

/// JA3S of a ServerHello as Suricata logs it.
pub fn ja3s(sh: &ServerHello<'_>) -> Fingerprint {
    fingerprint(ja3s_string(sh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_a_known_ja3_string() {
        // The TLS 1.3 draft-22 ClientHello of suricata-verify's tls13-draft22 test.
        assert_eq!(
            md5_hex("771,4865-4867,0-43-13-10-40,23,"),
            "786468211b4d23f9b725987b0de9d090"
        );
    }

    #[test]
    fn grease_is_dropped_and_empty_fields_stay_empty() {
        let mut s = Vec::new();
        push_list(&mut s, [0x0a0a, 4865, 0xfafa, 4866]);
        assert_eq!(s, b"4865-4866");
        let mut e = Vec::new();
        push_list(&mut e, [0x2a2a]);
        assert_eq!(e, b"");
    }
}
