//! X.509 certificate facts for EVE and the detections, read with the shared DER reader
//! ([`netmonitor_common::der`]).
//!
//! The formats are Suricata's, which prints names through the `x509-parser` crate: RDNs in
//! certificate order, `SN=value` joined by `", "` (several attributes of one RDN joined by
//! `" + "`), short names `C, ST, L, O, OU, CN, DC, Email` and otherwise the `oid-registry` short
//! name (`serialNumber`, `streetAddress`, `postalCode`, `businessCategory`, …), and `OID(1.2.3)`
//! for attribute types it does not know. Values are printed unescaped; a value that is not a
//! string type is printed as uppercase hex. The serial is the DER INTEGER's bytes in uppercase
//! hex joined by `:` (sign byte kept), the fingerprint the SHA-1 of the DER in lowercase hex.

use crate::text::{into_string, push_decimal, push_hex_lower, push_hex_upper};
use netmonitor_common::der::{self, read_tlv, tag, DerError, Tlv};
use netmonitor_common::time::epoch_from_utc;
use netmonitor_common::Certificate;
use sha1::{Digest, Sha1};

/// Deepest OID accepted (sub-identifiers); longer ones are printed as hex.
const MAX_OID_ARCS: usize = 32;
/// Most SAN entries kept per certificate (some CDN certificates carry hundreds).
pub const MAX_SANS: usize = 512;

/// Why a certificate could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X509Error {
    /// The DER structure is broken.
    Der(DerError),
    /// A required field is missing or of the wrong type; the text names it.
    Missing(&'static str),
}

impl std::fmt::Display for X509Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            X509Error::Der(e) => write!(f, "certificate DER: {e}"),
            X509Error::Missing(what) => write!(f, "certificate field missing or invalid: {what}"),
        }
    }
}

impl std::error::Error for X509Error {}

impl From<DerError> for X509Error {
    fn from(e: DerError) -> Self {
        X509Error::Der(e)
    }
}

/// Well-known OIDs, DER-encoded (the bytes of the OBJECT IDENTIFIER value).
mod oid {
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub const ED448: &[u8] = &[0x2b, 0x65, 0x71];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
}

/// Bits of the named curves seen in certificates, by dotted OID.
fn curve_bits(dotted: &str) -> Option<u32> {
    Some(match dotted {
        "1.2.840.10045.3.1.1" => 192,   // prime192v1
        "1.3.132.0.33" => 224,          // secp224r1
        "1.2.840.10045.3.1.7" => 256,   // prime256v1 / P-256
        "1.3.132.0.10" => 256,          // secp256k1
        "1.3.132.0.34" => 384,          // secp384r1
        "1.3.132.0.35" => 521,          // secp521r1
        "1.3.36.3.3.2.8.1.1.7" => 256,  // brainpoolP256r1
        "1.3.36.3.3.2.8.1.1.11" => 384, // brainpoolP384r1
        "1.3.36.3.3.2.8.1.1.13" => 512, // brainpoolP512r1
        _ => return None,
    })
}

/// [`curve_bits`] by the DER bytes of the curve OID (the canonical encodings of its table), so
/// that the usual keys need no dotted text.
fn curve_bits_der(value: &[u8]) -> Option<u32> {
    Some(match value {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01] => 192,
        [0x2b, 0x81, 0x04, 0x00, 0x21] => 224,
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => 256,
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => 256,
        [0x2b, 0x81, 0x04, 0x00, 0x22] => 384,
        [0x2b, 0x81, 0x04, 0x00, 0x23] => 521,
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07] => 256,
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b] => 384,
        [0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d] => 512,
        _ => return None,
    })
}

/// [`attribute_short_name`] by the DER bytes of the attribute type (the canonical encodings of
/// its table): names are formatted without building dotted text for the usual attributes.
fn attribute_short_name_der(value: &[u8]) -> Option<&'static str> {
    Some(match value {
        // id-at (2.5.4.n)
        [0x55, 0x04, n] => match n {
            3 => "CN",
            6 => "C",
            7 => "L",
            8 => "ST",
            10 => "O",
            11 => "OU",
            0 => "objectClass",
            1 => "aliasedEntryName",
            2 => "knowledgeInformation",
            4 => "surname",
            5 => "serialNumber",
            9 => "streetAddress",
            12 => "title",
            13 => "description",
            14 => "searchGuide",
            15 => "businessCategory",
            16 => "postalAddress",
            17 => "postalCode",
            41 => "name",
            42 => "givenName",
            43 => "initials",
            44 => "generationQualifier",
            45 => "uniqueIdentifier",
            46 => "dnQualifier",
            _ => return None,
        },
        // 0.9.2342.19200300.100.1.25
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        // 1.2.840.113549.1.9.{1,2}
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "Email",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02] => "unstructuredName",
        // 1.3.6.1.4.1.311.60.2.1.{1,2,3}
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x01] => {
            "msJurisdictionLocality"
        }
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x02] => {
            "msJurisdictionStateOrProvince"
        }
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x03] => {
            "msJurisdictionCountry"
        }
        _ => return None,
    })
}

/// The name Suricata (x509-parser with oid-registry) prints for an attribute type.
fn attribute_short_name(dotted: &str) -> Option<&'static str> {
    Some(match dotted {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "Email",
        "2.5.4.0" => "objectClass",
        "2.5.4.1" => "aliasedEntryName",
        "2.5.4.2" => "knowledgeInformation",
        "2.5.4.4" => "surname",
        "2.5.4.5" => "serialNumber",
        "2.5.4.9" => "streetAddress",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.14" => "searchGuide",
        "2.5.4.15" => "businessCategory",
        "2.5.4.16" => "postalAddress",
        "2.5.4.17" => "postalCode",
        "2.5.4.41" => "name",
        "2.5.4.42" => "givenName",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.45" => "uniqueIdentifier",
        "2.5.4.46" => "dnQualifier",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "1.3.6.1.4.1.311.60.2.1.1" => "msJurisdictionLocality",
        "1.3.6.1.4.1.311.60.2.1.2" => "msJurisdictionStateOrProvince",
        "1.3.6.1.4.1.311.60.2.1.3" => "msJurisdictionCountry",
        _ => return None,
    })
}

/// Dotted-decimal text of a DER OBJECT IDENTIFIER value (`None` when malformed or too long).
pub fn oid_to_string(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(4 * value.len());
    push_oid(&mut out, value).then(|| into_string(out))
}

/// Appends the dotted-decimal text of a DER OBJECT IDENTIFIER value; false (and `out` left
/// partly written) when it is malformed or too long.
fn push_oid(out: &mut Vec<u8>, value: &[u8]) -> bool {
    let mut acc: u64 = 0;
    let mut arcs = 0usize;
    let mut in_arc = false;
    for &b in value {
        if acc > (u64::MAX >> 7) {
            return false;
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        in_arc = true;
        if b & 0x80 == 0 {
            if arcs == 0 {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                push_decimal(out, first);
                out.push(b'.');
                push_decimal(out, second);
                arcs = 2;
            } else {
                out.push(b'.');
                push_decimal(out, acc);
                arcs += 1;
            }
            if arcs > MAX_OID_ARCS {
                return false;
            }
            acc = 0;
            in_arc = false;
        }
    }
    !(in_arc || arcs == 0)
}

/// Uppercase hex of `bytes` (`sep` between bytes when given), as a `String`.
fn hex_upper(bytes: &[u8], sep: Option<u8>) -> String {
    let mut out = Vec::with_capacity(3 * bytes.len());
    push_hex_upper(&mut out, bytes, sep);
    into_string(out)
}

/// Appends the text of an attribute value the way x509-parser renders it: string types as text
/// (BMP and Universal strings decoded), anything else as uppercase hex of its value bytes.
fn push_attribute_value(out: &mut String, v: &Tlv<'_>) {
    if v.class != der::CLASS_UNIVERSAL {
        out.push_str(&hex_upper(v.value, None));
        return;
    }
    match v.tag {
        // BMP and Universal strings need decoding (rare).
        tag::BMP_STRING | tag::UNIVERSAL_STRING => out.push_str(&v.as_string()),
        // NumericString, PrintableString, T61, Videotex, IA5, Graphic, Visible, General, UTF8,
        // ObjectDescriptor: UTF-8 where valid, else Latin-1 (as `Tlv::as_string`).
        18 | 19 | 20 | 21 | 22 | 25 | 26 | 27 | 12 | 7 => match std::str::from_utf8(v.value) {
            Ok(text) => out.push_str(text),
            Err(_) => out.extend(v.value.iter().map(|&b| char::from(b))),
        },
        _ => out.push_str(&hex_upper(v.value, None)),
    }
}

/// Appends the label of an attribute type: its short name, else `OID(dotted)` (`OID()` when
/// the OID is malformed).
fn push_attribute_label(out: &mut String, oid_value: &[u8]) {
    if let Some(sn) = attribute_short_name_der(oid_value) {
        out.push_str(sn);
        return;
    }
    // Unknown bytes (or a non-canonical encoding of a known OID): go through the dotted text.
    let dotted = oid_to_string(oid_value);
    match dotted.as_deref().and_then(attribute_short_name) {
        Some(sn) => out.push_str(sn),
        None => {
            out.push_str("OID(");
            out.push_str(dotted.as_deref().unwrap_or_default());
            out.push(')');
        }
    }
}

/// Formats a Name (the SEQUENCE OF RelativeDistinguishedName) in Suricata's style.
pub fn format_name(name: &Tlv<'_>) -> String {
    let mut out = String::with_capacity(name.value.len());
    for rdn in name.children() {
        let mut first_in_rdn = true;
        for atv in rdn.children() {
            let mut parts = atv.children();
            let (Some(typ), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            if first_in_rdn {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                first_in_rdn = false;
            } else {
                out.push_str(" + ");
            }
            push_attribute_label(&mut out, typ.value);
            out.push('=');
            push_attribute_value(&mut out, &value);
        }
    }
    out
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// Parses a UTCTime or GeneralizedTime to seconds since the epoch (UTC). UTCTime years 50..99
/// are 19xx (RFC 5280 §4.1.2.5.1); seconds, fractions and a `±hhmm` offset are optional.
pub fn parse_time(t: &Tlv<'_>) -> Option<i64> {
    let s = t.value;
    let (year, rest) = if t.is_universal(tag::UTC_TIME) {
        let yy = i64::from(digits(s.get(0..2)?)?);
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
    } else if t.is_universal(tag::GENERALIZED_TIME) {
        (i64::from(digits(s.get(0..4)?)?), s.get(4..)?)
    } else {
        return None;
    };
    let month = digits(rest.get(0..2)?)?;
    let day = digits(rest.get(2..4)?)?;
    let hour = digits(rest.get(4..6)?)?;
    let mut i = 6;
    let mut minute = 0;
    let mut second = 0;
    if let Some(m) = rest.get(6..8).and_then(digits) {
        minute = m;
        i = 8;
        if let Some(sec) = rest.get(8..10).and_then(digits) {
            second = sec;
            i = 10;
        }
    }
    // Fractional seconds are dropped.
    if rest.get(i) == Some(&b'.') || rest.get(i) == Some(&b',') {
        i += 1;
        while rest.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let mut offset = 0i64;
    match rest.get(i) {
        Some(sign @ (b'+' | b'-')) => {
            let oh = i64::from(digits(rest.get(i + 1..i + 3)?)?);
            let om = i64::from(digits(rest.get(i + 3..i + 5)?)?);
            offset = (oh * 3600 + om * 60) * if *sign == b'+' { 1 } else { -1 };
        }
        Some(b'Z') | None => {}
        Some(_) => return None,
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(epoch_from_utc(year, month, day, hour, minute, second) - offset)
}

/// Expects the next TLV of `it` to be the universal tag `t`.
fn expect<'a>(it: &mut der::DerIter<'a>, t: u32, what: &'static str) -> Result<Tlv<'a>, X509Error> {
    match it.next() {
        Some(tlv) if tlv.is_universal(t) => Ok(tlv),
        _ => Err(X509Error::Missing(what)),
    }
}

/// Bit length of an unsigned big-endian integer (leading zero bytes ignored).
fn int_bits(value: &[u8]) -> Option<u32> {
    let start = value.iter().position(|b| *b != 0)?;
    let first = *value.get(start)?;
    let len = u32::try_from(value.len() - start).ok()?;
    Some((len - 1) * 8 + (8 - first.leading_zeros()))
}

/// Key algorithm name and size from a SubjectPublicKeyInfo.
fn key_info(spki: &Tlv<'_>) -> (Option<String>, Option<u32>) {
    let mut it = spki.children();
    let Some(alg) = it.next() else {
        return (None, None);
    };
    let key = it.next();
    let mut alg_it = alg.children();
    let Some(alg_oid) = alg_it.next() else {
        return (None, None);
    };
    let params = alg_it.next();
    // The BIT STRING value starts with the count of unused bits.
    let key_bytes = key.and_then(|k| k.value.get(1..)).unwrap_or(&[]);
    match alg_oid.value {
        oid::RSA_ENCRYPTION | oid::RSASSA_PSS => {
            let bits = read_tlv(key_bytes)
                .ok()
                .and_then(|(seq, _)| seq.children().next())
                .and_then(|modulus| int_bits(modulus.value));
            (Some("RSA".into()), bits)
        }
        oid::EC_PUBLIC_KEY => {
            let bits = params.filter(|p| p.is_universal(tag::OID)).and_then(|p| {
                curve_bits_der(p.value)
                    .or_else(|| oid_to_string(p.value).and_then(|d| curve_bits(&d)))
            });
            (Some("EC".into()), bits)
        }
        oid::DSA => {
            let bits = params
                .and_then(|p| p.children().next())
                .and_then(|p| int_bits(p.value));
            (Some("DSA".into()), bits)
        }
        oid::ED25519 => (Some("Ed25519".into()), Some(256)),
        oid::ED448 => (Some("Ed448".into()), Some(456)),
        other => (oid_to_string(other), None),
    }
}

/// DNS names of a subjectAltName extension value (GeneralNames).
fn san_dns_names(ext_value: &[u8], out: &mut Vec<String>) {
    let Ok((names, _)) = read_tlv(ext_value) else {
        return;
    };
    for gn in names.children() {
        if out.len() >= MAX_SANS {
            break;
        }
        // dNSName [2] IMPLICIT IA5String
        if gn.is_context(2) && !gn.constructed {
            out.push(String::from_utf8_lossy(gn.value).into_owned());
        }
    }
}

/// The cA flag of a basicConstraints extension value.
fn basic_constraints_ca(ext_value: &[u8]) -> bool {
    let Ok((seq, _)) = read_tlv(ext_value) else {
        return false;
    };
    seq.children()
        .next()
        .is_some_and(|b| b.is_universal(tag::BOOLEAN) && b.value.first().is_some_and(|v| *v != 0))
}

/// SHA-1 of a certificate's DER, lowercase hex joined by `:` (EVE `tls.fingerprint`).
pub fn sha1_fingerprint(der: &[u8]) -> String {
    let digest = Sha1::digest(der);
    let mut out = Vec::with_capacity(3 * digest.len());
    push_hex_lower(&mut out, &digest, Some(b':'));
    into_string(out)
}

/// Reads the facts of one DER certificate. The validity, names and serial are required; the
/// extensions and key are best effort.
pub fn parse_certificate(der_bytes: &[u8]) -> Result<Certificate, X509Error> {
    let (cert, _) = read_tlv(der_bytes)?;
    if !cert.is_universal(tag::SEQUENCE) {
        return Err(X509Error::Missing("Certificate SEQUENCE"));
    }
    let mut top = cert.children();
    let tbs = expect(&mut top, tag::SEQUENCE, "tbsCertificate")?;
    let mut it = tbs.children();
    let mut first = it.next().ok_or(X509Error::Missing("serialNumber"))?;
    if first.is_context(0) {
        // version [0] EXPLICIT
        first = it.next().ok_or(X509Error::Missing("serialNumber"))?;
    }
    if !first.is_universal(tag::INTEGER) {
        return Err(X509Error::Missing("serialNumber"));
    }
    let serial = hex_upper(first.value, Some(b':'));
    expect(&mut it, tag::SEQUENCE, "signature")?;
    let issuer = expect(&mut it, tag::SEQUENCE, "issuer")?;
    let validity = expect(&mut it, tag::SEQUENCE, "validity")?;
    let subject = expect(&mut it, tag::SEQUENCE, "subject")?;
    let mut times = validity.children();
    let not_before = times
        .next()
        .and_then(|t| parse_time(&t))
        .ok_or(X509Error::Missing("notBefore"))?;
    let not_after = times
        .next()
        .and_then(|t| parse_time(&t))
        .ok_or(X509Error::Missing("notAfter"))?;
    let mut out = Certificate {
        subject: format_name(&subject),
        issuer: format_name(&issuer),
        serial,
        fingerprint: sha1_fingerprint(der_bytes),
        not_before,
        not_after,
        self_signed: issuer.value == subject.value,
        ..Certificate::default()
    };
    for field in it {
        if field.is_universal(tag::SEQUENCE) {
            let (kt, kb) = key_info(&field);
            out.key_type = kt;
            out.key_bits = kb;
        } else if field.is_context(3) {
            let Ok(exts) = field.inner() else { continue };
            for ext in exts.children() {
                let mut parts = ext.children();
                let Some(id) = parts.next() else { continue };
                // critical BOOLEAN DEFAULT FALSE, then the OCTET STRING
                let value = parts.find(|p| p.is_universal(tag::OCTET_STRING));
                let Some(value) = value else { continue };
                match id.value {
                    oid::SUBJECT_ALT_NAME => san_dns_names(value.value, &mut out.sans),
                    oid::BASIC_CONSTRAINTS => out.is_ca = basic_constraints_ca(value.value),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(bytes: &[u8]) -> Tlv<'_> {
        read_tlv(bytes).expect("test TLV").0
    }

    #[test]
    fn oids_print_dotted() {
        assert_eq!(
            oid_to_string(&[0x55, 0x04, 0x03]).as_deref(),
            Some("2.5.4.3")
        );
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(oid_to_string(&[0x55, 0x84]), None);
        assert_eq!(oid_to_string(&[]), None);
        assert_eq!(oid_to_string(&[0xff; 20]), None);
    }

    #[test]
    fn times_utc_generalized_and_offsets() {
        let utc = tlv(b"\x17\x0d150212180727Z");
        assert_eq!(parse_time(&utc), Some(1_423_764_447));
        let y1950 = tlv(b"\x17\x0d500101000000Z");
        assert_eq!(parse_time(&y1950), Some(-631_152_000));
        let gen = tlv(b"\x18\x0f20150212180727Z");
        assert_eq!(parse_time(&gen), Some(1_423_764_447));
        let frac = tlv(b"\x18\x1320150212180727.123Z");
        assert_eq!(parse_time(&frac), Some(1_423_764_447));
        let offset = tlv(b"\x17\x11150212190727+0100");
        assert_eq!(parse_time(&offset), Some(1_423_764_447));
        let no_secs = tlv(b"\x17\x0b1502121807Z");
        assert_eq!(parse_time(&no_secs), Some(1_423_764_420));
        assert_eq!(parse_time(&tlv(b"\x17\x0d15021218072XZ")), None);
        assert_eq!(parse_time(&tlv(b"\x17\x0d151312180727Z")), None);
    }

    #[test]
    fn names_use_suricata_labels_and_unknown_oids() {
        // SEQUENCE { SET { SEQ { 2.5.4.6, PrintableString "FR" } },
        //            SET { SEQ { 2.5.4.97, UTF8 "x" } + SEQ { 2.5.4.3, UTF8 "a,b" } } }
        let name = [
            0x30, 0x25, //
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'F', b'R', //
            0x31, 0x16, //
            0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x61, 0x0c, 0x01, b'x', //
            0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'a', b',', b'b',
        ];
        assert_eq!(format_name(&tlv(&name)), "C=FR, OID(2.5.4.97)=x + CN=a,b");
    }

    /// DER value of a dotted OID (test helper; canonical base-128 arcs).
    fn encode_oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
        let mut out = Vec::new();
        let mut push_arc = |mut v: u64| {
            let mut groups = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                groups.push((v & 0x7f) as u8 | 0x80);
                v >>= 7;
            }
            out.extend(groups.iter().rev());
        };
        push_arc(arcs[0] * 40 + arcs[1]);
        for a in &arcs[2..] {
            push_arc(*a);
        }
        out
    }

    #[test]
    fn der_lookups_agree_with_the_dotted_tables() {
        // Every attribute type of the dotted table, plus neighbours that are not in it.
        let attributes = [
            "2.5.4.0",
            "2.5.4.1",
            "2.5.4.2",
            "2.5.4.3",
            "2.5.4.4",
            "2.5.4.5",
            "2.5.4.6",
            "2.5.4.7",
            "2.5.4.8",
            "2.5.4.9",
            "2.5.4.10",
            "2.5.4.11",
            "2.5.4.12",
            "2.5.4.13",
            "2.5.4.14",
            "2.5.4.15",
            "2.5.4.16",
            "2.5.4.17",
            "2.5.4.18",
            "2.5.4.40",
            "2.5.4.41",
            "2.5.4.42",
            "2.5.4.43",
            "2.5.4.44",
            "2.5.4.45",
            "2.5.4.46",
            "2.5.4.47",
            "2.5.4.97",
            "0.9.2342.19200300.100.1.25",
            "0.9.2342.19200300.100.1.1",
            "1.2.840.113549.1.9.1",
            "1.2.840.113549.1.9.2",
            "1.2.840.113549.1.9.3",
            "1.3.6.1.4.1.311.60.2.1.1",
            "1.3.6.1.4.1.311.60.2.1.2",
            "1.3.6.1.4.1.311.60.2.1.3",
            "1.3.6.1.4.1.311.60.2.1.4",
        ];
        let mut known = 0;
        for dotted in attributes {
            let der = encode_oid(dotted);
            assert_eq!(oid_to_string(&der).as_deref(), Some(dotted));
            assert_eq!(
                attribute_short_name_der(&der),
                attribute_short_name(dotted),
                "{dotted}"
            );
            known += usize::from(attribute_short_name(dotted).is_some());
        }
        assert_eq!(known, 30, "the whole dotted table is covered");
        let curves = [
            "1.2.840.10045.3.1.1",
            "1.3.132.0.33",
            "1.2.840.10045.3.1.7",
            "1.3.132.0.10",
            "1.3.132.0.34",
            "1.3.132.0.35",
            "1.3.36.3.3.2.8.1.1.7",
            "1.3.36.3.3.2.8.1.1.11",
            "1.3.36.3.3.2.8.1.1.13",
            "1.3.132.0.36",
            "1.2.840.10045.3.1.2",
        ];
        for dotted in curves {
            assert_eq!(
                curve_bits_der(&encode_oid(dotted)),
                curve_bits(dotted),
                "{dotted}"
            );
        }
    }

    #[test]
    fn non_canonical_oid_bytes_still_get_their_short_name() {
        // 2.5.4.3 with a padded arc (0x80 0x03): not the canonical bytes, same dotted text.
        let name = [
            0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x04, 0x55, 0x04, 0x80, 0x03, 0x0c, 0x02,
            b'h', b'i',
        ];
        assert_eq!(format_name(&tlv(&name)), "CN=hi");
        // A non-string value is uppercase hex; a BMPString is decoded.
        let der = |tag: u8, content: &[u8]| {
            let mut v = vec![tag, content.len() as u8];
            v.extend_from_slice(content);
            v
        };
        let atv =
            |oid: &[u8], value: Vec<u8>| der(0x31, &der(0x30, &[der(0x06, oid), value].concat()));
        let name = der(
            0x30,
            &[
                atv(&[0x55, 0x04, 0x0a], der(0x02, &[0xab])),
                atv(&[0x55, 0x04, 0x03], der(0x1e, &[0x00, 0xe9])),
            ]
            .concat(),
        );
        assert_eq!(format_name(&tlv(&name)), "O=AB, CN=\u{e9}");
    }

    #[test]
    fn broken_certificates_are_errors() {
        assert!(parse_certificate(&[]).is_err());
        assert!(parse_certificate(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(parse_certificate(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn rsa_modulus_bits() {
        assert_eq!(int_bits(&[0x00, 0x80, 0x00]), Some(16));
        assert_eq!(int_bits(&[0x01]), Some(1));
        assert_eq!(int_bits(&[0x00]), None);
    }
}
