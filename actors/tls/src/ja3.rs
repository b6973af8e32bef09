//! JA3 (client) and JA3S (server) fingerprints, computed the way Suricata does: decimal values
//! joined by `-` inside a field and fields joined by `,`, GREASE values removed everywhere, empty
//! fields left empty, and the lowercase hex MD5 of that string.

use crate::parser::{is_grease, ClientHello, ServerHello};
use md5::{Digest, Md5};
use netmonitor_common::Fingerprint;
use std::fmt::Write as _;

/// Appends `values` joined by `-`, skipping GREASE.
fn push_list(out: &mut String, values: impl IntoIterator<Item = u16>) {
    let mut first = true;
    for v in values.into_iter().filter(|v| !is_grease(*v)) {
        if !first {
            out.push('-');
        }
        first = false;
        let _ = write!(out, "{v}");
    }
}

/// The JA3 string of a ClientHello: `version,ciphers,extensions,curves,point_formats`.
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    let mut s = String::with_capacity(256);
    let _ = write!(s, "{},", ch.legacy_version);
    push_list(&mut s, ch.cipher_suites.iter().copied());
    s.push(',');
    push_list(&mut s, ch.extensions.iter().map(|e| e.typ));
    s.push(',');
    push_list(&mut s, ch.supported_groups());
    s.push(',');
    push_list(&mut s, ch.ec_point_formats().into_iter().map(u16::from));
    s
}

/// The JA3S string of a ServerHello: `version,cipher,extensions`.
pub fn ja3s_string(sh: &ServerHello<'_>) -> String {
    let mut s = String::with_capacity(64);
    let _ = write!(s, "{},{},", sh.legacy_version, sh.cipher);
    push_list(&mut s, sh.extensions.iter().map(|e| e.typ));
    s
}

/// Lowercase hex MD5 of `s`.
pub fn md5_hex(s: &str) -> String {
    let digest = Md5::digest(s.as_bytes());
    let mut out = String::with_capacity(32);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
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
        let mut s = String::new();
        push_list(&mut s, [0x0a0a, 4865, 0xfafa, 4866]);
        assert_eq!(s, "4865-4866");
        let mut e = String::new();
        push_list(&mut e, [0x2a2a]);
        assert_eq!(e, "");
    }
}
