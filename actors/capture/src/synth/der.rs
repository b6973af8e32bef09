//! Minimal DER encoding helpers for certificates and Kerberos messages.

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else if n < 0x10000 {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        v.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}

/// Context tag `[n]`, constructed.
pub fn ctx(n: u8, inner: Vec<u8>) -> Vec<u8> {
    tlv(0xA0 | n, &inner)
}

/// Application tag `[APPLICATION n]`, constructed.
pub fn app(n: u8, inner: Vec<u8>) -> Vec<u8> {
    tlv(0x60 | n, &inner)
}

pub fn int(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let b = bytes[start];
        let next = bytes[start + 1];
        if (b == 0 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(0x02, &bytes[start..])
}

pub fn octets(v: &[u8]) -> Vec<u8> {
    tlv(0x04, v)
}

pub fn general_string(s: &str) -> Vec<u8> {
    tlv(0x1B, s.as_bytes())
}

pub fn oid(encoded: &[u8]) -> Vec<u8> {
    tlv(0x06, encoded)
}
