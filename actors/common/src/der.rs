//! A small, lenient, zero-copy DER/BER TLV reader shared by the X.509 and Kerberos decoders.
//!
//! It never panics on hostile input: every length is checked against the bytes present, and
//! nesting is bounded by the caller walking explicitly. Indefinite lengths are rejected.

/// Why a TLV could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerError {
    /// The input ended before the TLV did (more bytes may complete it).
    Incomplete,
    /// A length or tag encoding we do not accept (indefinite length, over 4 length bytes).
    Malformed,
    /// A TLV was present but not the one the caller expected.
    Unexpected,
}

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DerError::Incomplete => "truncated DER value",
            DerError::Malformed => "malformed DER encoding",
            DerError::Unexpected => "unexpected DER tag",
        })
    }
}

impl std::error::Error for DerError {}

/// Tag classes as they appear in the two top bits of the identifier octet.
pub const CLASS_UNIVERSAL: u8 = 0;
/// Application class (Kerberos message types use it).
pub const CLASS_APPLICATION: u8 = 1;
/// Context-specific class (`[n]` fields).
pub const CLASS_CONTEXT: u8 = 2;

/// Universal tag numbers used by the decoders.
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u32 = 1;
    /// INTEGER
    pub const INTEGER: u32 = 2;
    /// BIT STRING
    pub const BIT_STRING: u32 = 3;
    /// OCTET STRING
    pub const OCTET_STRING: u32 = 4;
    /// NULL
    pub const NULL: u32 = 5;
    /// OBJECT IDENTIFIER
    pub const OID: u32 = 6;
    /// UTF8String
    pub const UTF8_STRING: u32 = 12;
    /// SEQUENCE / SEQUENCE OF
    pub const SEQUENCE: u32 = 16;
    /// SET / SET OF
    pub const SET: u32 = 17;
    /// PrintableString
    pub const PRINTABLE_STRING: u32 = 19;
    /// T61String / TeletexString
    pub const T61_STRING: u32 = 20;
    /// IA5String
    pub const IA5_STRING: u32 = 22;
    /// UTCTime
    pub const UTC_TIME: u32 = 23;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u32 = 24;
    /// GeneralString (Kerberos strings)
    pub const GENERAL_STRING: u32 = 27;
    /// UniversalString (UCS-4)
    pub const UNIVERSAL_STRING: u32 = 28;
    /// BMPString (UCS-2)
    pub const BMP_STRING: u32 = 30;
}

/// One decoded tag-length-value, borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag class (`CLASS_*`).
    pub class: u8,
    /// Whether the value holds nested TLVs.
    pub constructed: bool,
    /// Tag number.
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
    /// The whole encoding, identifier and length included (e.g. for certificate hashes).
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// True when this is the universal tag `t`.
    pub fn is_universal(&self, t: u32) -> bool {
        self.class == CLASS_UNIVERSAL && self.tag == t
    }

    /// True when this is the context-specific tag `[n]`.
    pub fn is_context(&self, n: u32) -> bool {
        self.class == CLASS_CONTEXT && self.tag == n
    }

    /// Iterates the TLVs nested in this value.
    pub fn children(&self) -> DerIter<'a> {
        DerIter { rest: self.value }
    }

    /// For an explicit `[n]` wrapper, the single TLV inside it.
    pub fn inner(&self) -> Result<Tlv<'a>, DerError> {
        read_tlv(self.value).map(|(t, _)| t)
    }

    /// The value as a signed integer, if it fits in an i64.
    pub fn as_i64(&self) -> Option<i64> {
        if self.value.is_empty() || self.value.len() > 8 {
            return None;
        }
        let first = *self.value.first()?;
        let mut v: i64 = if first & 0x80 != 0 { -1 } else { 0 };
        for b in self.value {
            v = (v << 8) | i64::from(*b);
        }
        Some(v)
    }

    /// The value as text: UTF-8 where valid, UCS-2/UCS-4 for BMP/Universal strings,
    /// Latin-1 otherwise, so that no name is ever dropped for its encoding.
    pub fn as_string(&self) -> String {
        decode_string(self.tag, self.value)
    }
}

/// Decodes an ASN.1 string value by its universal tag.
pub fn decode_string(tag: u32, value: &[u8]) -> String {
    match tag {
        tag::BMP_STRING => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        tag::UNIVERSAL_STRING => value
            .chunks_exact(4)
            .filter_map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => match std::str::from_utf8(value) {
            Ok(s) => s.to_owned(),
            Err(_) => value.iter().map(|&b| char::from(b)).collect(),
        },
    }
}

/// A TLV's identifier and length, read without requiring the value to be present: lets a
/// stream framer know how many bytes a message needs before it has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvHeader {
    /// Tag class (`CLASS_*`).
    pub class: u8,
    /// Constructed bit.
    pub constructed: bool,
    /// Tag number.
    pub tag: u32,
    /// Bytes taken by the identifier and length octets.
    pub header_len: usize,
    /// The declared value length.
    pub value_len: usize,
}

impl TlvHeader {
    /// Header plus declared value, or `None` when that overflows.
    pub fn total_len(&self) -> Option<usize> {
        self.header_len.checked_add(self.value_len)
    }
}

/// Reads a TLV's identifier and length octets.
pub fn read_header(input: &[u8]) -> Result<TlvHeader, DerError> {
    let first = *input.first().ok_or(DerError::Incomplete)?;
    let mut pos = 1usize;
    let mut tag = u32::from(first & 0x1f);
    if tag == 0x1f {
        tag = 0;
        loop {
            let b = *input.get(pos).ok_or(DerError::Incomplete)?;
            pos += 1;
            if tag > (u32::MAX >> 7) {
                return Err(DerError::Malformed);
            }
            tag = (tag << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let len_byte = *input.get(pos).ok_or(DerError::Incomplete)?;
    pos += 1;
    let value_len = if len_byte & 0x80 == 0 {
        usize::from(len_byte)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 4 {
            return Err(DerError::Malformed);
        }
        let end = pos.checked_add(n).ok_or(DerError::Malformed)?;
        let bytes = input.get(pos..end).ok_or(DerError::Incomplete)?;
        pos = end;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    Ok(TlvHeader {
        class: first >> 6,
        constructed: first & 0x20 != 0,
        tag,
        header_len: pos,
        value_len,
    })
}

/// Reads one TLV from the front of `input`, returning it and the bytes after it.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let h = read_header(input)?;
    let end = h.total_len().ok_or(DerError::Malformed)?;
    let value = input.get(h.header_len..end).ok_or(DerError::Incomplete)?;
    let raw = input.get(..end).ok_or(DerError::Incomplete)?;
    let rest = input.get(end..).ok_or(DerError::Incomplete)?;
    Ok((
        Tlv {
            class: h.class,
            constructed: h.constructed,
            tag: h.tag,
            value,
            raw,
        },
        rest,
    ))
}

/// Iterates consecutive TLVs; stops at the end of input or at the first malformed one.
#[derive(Clone, Debug)]
pub struct DerIter<'a> {
    rest: &'a [u8],
}

impl<'a> DerIter<'a> {
    /// Iterates the TLVs in `input`.
    pub fn new(input: &'a [u8]) -> Self {
        DerIter { rest: input }
    }
}

impl<'a> Iterator for DerIter<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        match read_tlv(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(tlv)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_forms() {
        let (t, rest) = read_tlv(&[0x02, 0x01, 0x05, 0xff]).unwrap();
        assert!(t.is_universal(tag::INTEGER));
        assert_eq!(t.as_i64(), Some(5));
        assert_eq!(rest, &[0xff]);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 128));
        let (t, rest) = read_tlv(&long).unwrap();
        assert_eq!(t.value.len(), 128);
        assert!(rest.is_empty());
    }

    #[test]
    fn hostile_lengths_are_errors_not_panics() {
        assert_eq!(read_tlv(&[]), Err(DerError::Incomplete));
        assert_eq!(
            read_tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(DerError::Incomplete)
        );
        assert_eq!(read_tlv(&[0x30, 0x80]), Err(DerError::Malformed));
        assert_eq!(read_tlv(&[0x30, 0x89, 1, 2, 3]), Err(DerError::Malformed));
        assert_eq!(read_tlv(&[0x1f, 0xff, 0xff]), Err(DerError::Incomplete));
    }

    #[test]
    fn negative_integers_and_context_tags() {
        let (t, _) = read_tlv(&[0xa1, 0x03, 0x02, 0x01, 0xe9]).unwrap();
        assert!(t.is_context(1));
        assert_eq!(t.inner().unwrap().as_i64(), Some(-23));
    }
}
