//! NetBIOS name service (RFC 1002, UDP 137): the names hosts register, refresh and are
//! answered for, for the device inventory. Only unique workstation and server names (suffixes
//! 0x00 and 0x20) name a host; group names and domain roles (`<1b>`, `<1c>`, `<1e>`) do not.
//! Nothing here reaches EVE (Suricata logs no NBNS).

use std::net::Ipv4Addr;

/// NB resource record type.
const NB: u16 = 0x0020;
/// Group-name bit of the NB flags.
const GROUP: u16 = 0x8000;

/// A first-level encoded name (32 letters `A`–`P`) as its 15 characters and suffix.
fn decode_name(enc: &[u8]) -> Option<(String, u8)> {
    if enc.len() != 32 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, pair) in enc.chunks_exact(2).enumerate() {
        let (hi, lo) = (pair[0].wrapping_sub(b'A'), pair[1].wrapping_sub(b'A'));
        if hi > 15 || lo > 15 {
            return None;
        }
        raw[i] = hi << 4 | lo;
    }
    let name: String = raw[..15]
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .trim_end()
        .to_owned();
    let printable = !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic());
    printable.then_some((name, raw[15]))
}

/// The encoded name at `at` (or where a pointer sends it), and the offset after it.
fn read_name(msg: &[u8], at: usize) -> Option<(Option<(String, u8)>, usize)> {
    let len = *msg.get(at)?;
    if len & 0xC0 == 0xC0 {
        let target = usize::from(u16::from_be_bytes([len & 0x3F, *msg.get(at + 1)?]));
        let name = if target < at {
            read_name(msg, target)?.0
        } else {
            None
        };
        return Some((name, at + 2));
    }
    let first = decode_name(msg.get(at + 1..at + 1 + usize::from(len))?);
    // skip the scope labels
    let mut pos = at + 1 + usize::from(len);
    loop {
        let l = usize::from(*msg.get(pos)?);
        if l == 0 {
            return Some((first, pos + 1));
        }
        if l & 0xC0 == 0xC0 {
            return Some((first, pos + 2));
        }
        pos += 1 + l;
    }
}

/// Host names and the addresses they name, from one message (registrations, refreshes and
/// positive answers carry an NB record with the address).
pub fn host_names(msg: &[u8]) -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    let Some(h) = msg.get(..12) else {
        return out;
    };
    let count = |i: usize| usize::from(u16::from_be_bytes([h[i], h[i + 1]]));
    let (qd, rr) = (count(4), count(6) + count(8) + count(10));
    let mut at = 12;
    for _ in 0..qd.min(4) {
        let Some((_, next)) = read_name(msg, at) else {
            return out;
        };
        at = next + 4;
    }
    for _ in 0..rr.min(16) {
        let Some((name, next)) = read_name(msg, at) else {
            return out;
        };
        let Some(fixed) = msg.get(next..next + 10) else {
            return out;
        };
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let Some(rdata) = msg.get(next + 10..next + 10 + rdlen) else {
            return out;
        };
        at = next + 10 + rdlen;
        if rtype != NB || rdata.len() < 6 {
            continue;
        }
        let flags = u16::from_be_bytes([rdata[0], rdata[1]]);
        let ip = Ipv4Addr::new(rdata[2], rdata[3], rdata[4], rdata[5]);
        if let Some((n, suffix)) = name {
            if flags & GROUP == 0 && (suffix == 0x00 || suffix == 0x20) && !ip.is_unspecified() {
                out.push((n.to_ascii_lowercase(), ip));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(name: &str, suffix: u8) -> Vec<u8> {
        let mut raw = [b' '; 16];
        raw[..name.len()].copy_from_slice(name.as_bytes());
        raw[15] = suffix;
        let mut v = vec![32u8];
        for b in raw {
            v.push(b'A' + (b >> 4));
            v.push(b'A' + (b & 0xF));
        }
        v.push(0);
        v
    }

    /// A registration: the name asked, and an additional NB record (pointing back to it)
    /// holding the flags and the address.
    fn registration(name: &str, suffix: u8, flags: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend(encode(name, suffix));
        m.extend([0, 0x20, 0, 1]);
        m.extend([0xC0, 0x0C, 0, 0x20, 0, 1, 0, 0, 0x0e, 0x10, 0, 6]);
        m.extend(flags.to_be_bytes());
        m.extend([192, 168, 1, 23]);
        m
    }

    #[test]
    fn workstation_names_count_and_groups_and_domains_do_not() {
        let m = registration("DESKTOP-7Q2", 0x00, 0x0000);
        assert_eq!(
            host_names(&m),
            [("desktop-7q2".to_owned(), Ipv4Addr::new(192, 168, 1, 23))]
        );
        assert!(
            host_names(&registration("WORKGROUP", 0x00, GROUP)).is_empty(),
            "a group"
        );
        assert!(
            host_names(&registration("CORP", 0x1b, 0)).is_empty(),
            "a domain role"
        );
        for n in 0..m.len() {
            let _ = host_names(&m[..n]);
        }
        let mut bad = m.clone();
        bad[13] = b'Z';
        assert!(host_names(&bad).is_empty(), "not first-level encoding");
    }
}
