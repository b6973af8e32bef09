//! Small hand-written number-to-text helpers for the hot path (fingerprints, certificate
//! facts): lookup-table hex and division-by-ten decimal appended to a caller's `String`, so that
//! no `core::fmt` machinery or temporary string runs per value.

/// Lowercase hex digits.
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
/// Uppercase hex digits.
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
/// Decimal digits of the largest `u64`.
const MAX_DECIMAL_DIGITS: usize = 20;
/// `"00" ..= "99"`: two decimal digits per lookup.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Hex digit of the low nibble of `n`.
fn digit(table: &[u8; 16], n: u8) -> u8 {
    // The mask keeps the index in range; the fallback is unreachable.
    table.get(usize::from(n & 0x0f)).copied().unwrap_or(b'0')
}

/// The two lowercase hex digits of `b`.
pub fn hex_pair(b: u8) -> [u8; 2] {
    [digit(HEX_LOWER, b >> 4), digit(HEX_LOWER, b)]
}

/// The two decimal digits of `v % 100`.
fn pair(v: u64) -> [u8; 2] {
    // `v % 100 * 2 + 1` is below 200, so both reads are in range; the fallback is unreachable.
    let i = usize::try_from(v % 100).unwrap_or(0) * 2;
    match DIGIT_PAIRS.get(i..i + 2) {
        Some([a, b]) => [*a, *b],
        _ => [b'0', b'0'],
    }
}

/// The text built by these helpers as a `String`: it is ASCII (or, for callers that append
/// `str`s, UTF-8) by construction, so the lossy branch never runs.
pub fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends the four lowercase hex digits of `v` (`{:04x}`).
pub fn push_hex_u16(out: &mut Vec<u8>, v: u16) {
    let [hi, lo] = v.to_be_bytes();
    out.extend_from_slice(&[
        digit(HEX_LOWER, hi >> 4),
        digit(HEX_LOWER, hi),
        digit(HEX_LOWER, lo >> 4),
        digit(HEX_LOWER, lo),
    ]);
}

/// Appends the hex of each byte (upper- or lowercase), `sep` between bytes when given.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8], sep: Option<u8>, table: &[u8; 16]) {
    out.reserve(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            if let Some(c) = sep {
                out.push(c);
            }
        }
        out.extend_from_slice(&[digit(table, b >> 4), digit(table, *b)]);
    }
}

/// Appends the lowercase hex of each byte, `sep` between bytes when given.
pub fn push_hex_lower(out: &mut Vec<u8>, bytes: &[u8], sep: Option<u8>) {
    push_hex(out, bytes, sep, HEX_LOWER);
}

/// Appends the uppercase hex of each byte, `sep` between bytes when given.
pub fn push_hex_upper(out: &mut Vec<u8>, bytes: &[u8], sep: Option<u8>) {
    push_hex(out, bytes, sep, HEX_UPPER);
}

/// Appends `v` in decimal (`{v}`).
pub fn push_decimal(out: &mut Vec<u8>, v: u64) {
    if v < 100 {
        let [a, b] = pair(v);
        if v < 10 {
            out.push(b);
        } else {
            out.extend_from_slice(&[a, b]);
        }
        return;
    }
    // Fill from the end, two digits at a time.
    let mut buf = [b'0'; MAX_DECIMAL_DIGITS];
    let mut rest = v;
    let mut start = MAX_DECIMAL_DIGITS;
    for slot in buf.rchunks_exact_mut(2) {
        let [a, b] = pair(rest);
        slot.copy_from_slice(&[a, b]);
        rest /= 100;
        start -= 2;
        if rest == 0 {
            break;
        }
    }
    // Drop the leading zero of an odd digit count.
    if buf.get(start) == Some(&b'0') {
        start += 1;
    }
    out.extend_from_slice(buf.get(start..).unwrap_or(&[]));
}

/// Appends `v` in decimal (`{v}`); a fixed-size write per digit count, no loop.
pub fn push_u16(out: &mut Vec<u8>, v: u16) {
    let v = u64::from(v);
    // Each leading digit below is `v / 10^k` for the largest k with a non-zero result: 1..=9.
    let lead = |d: u64| b'0' + u8::try_from(d % 10).unwrap_or(0);
    if v < 10 {
        out.push(lead(v));
    } else if v < 100 {
        out.extend_from_slice(&pair(v));
    } else if v < 1_000 {
        let [c, d] = pair(v);
        out.extend_from_slice(&[lead(v / 100), c, d]);
    } else if v < 10_000 {
        let [a, b] = pair(v / 100);
        let [c, d] = pair(v);
        out.extend_from_slice(&[a, b, c, d]);
    } else {
        let [a, b] = pair(v / 100);
        let [c, d] = pair(v);
        out.extend_from_slice(&[lead(v / 10_000), a, b, c, d]);
    }
}

/// Appends `v` (at most 99) as exactly two decimal digits (`{:02}`).
pub fn push_two_digits(out: &mut Vec<u8>, v: u8) {
    out.extend_from_slice(&pair(u64::from(v.min(99))));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        into_string(v)
    }

    #[test]
    fn decimal_matches_display_at_the_edges() {
        for v in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            101,
            771,
            1000,
            4865,
            65_535,
            1 << 32,
            10_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(text(|o| push_decimal(o, v)), v.to_string());
        }
        for v in 0..=u16::MAX {
            assert_eq!(text(|o| push_u16(o, v)), v.to_string());
        }
    }

    #[test]
    fn hex_matches_format_for_every_value() {
        for v in 0..=u16::MAX {
            assert_eq!(text(|o| push_hex_u16(o, v)), format!("{v:04x}"));
        }
        for b in 0..=u8::MAX {
            assert_eq!(text(|o| push_hex_lower(o, &[b], None)), format!("{b:02x}"));
            assert_eq!(into_string(hex_pair(b).to_vec()), format!("{b:02x}"));
            assert_eq!(text(|o| push_hex_upper(o, &[b], None)), format!("{b:02X}"));
        }
    }

    #[test]
    fn separated_hex_and_two_digit_counts() {
        let bytes = [0x00, 0xab, 0x7f];
        assert_eq!(text(|o| push_hex_upper(o, &bytes, Some(b':'))), "00:AB:7F");
        assert_eq!(text(|o| push_hex_lower(o, &bytes, Some(b':'))), "00:ab:7f");
        assert_eq!(text(|o| push_hex_upper(o, &[0xde, 0xad], None)), "DEAD");
        assert_eq!(text(|o| push_hex_lower(o, &[], Some(b':'))), "");
        for v in [0u8, 7, 10, 15, 99, 120] {
            assert_eq!(text(|o| push_two_digits(o, v)), format!("{:02}", v.min(99)));
        }
        assert_eq!(into_string(vec![b'a', 0xff]), "a\u{fffd}");
    }
}
