//! A small DNS message reader (RFC 1035): the first question and the answers' data, enough for
//! EVE `dns` events and the DNS detectors. Compression pointers are followed with a hop cap.

use netmonitor_common::DnsRecord;

/// Most compression pointers followed while reading one name.
const MAX_POINTER_HOPS: usize = 16;
/// Longest name we assemble (RFC 1035 caps names at 255 bytes).
const MAX_NAME_LEN: usize = 255;
/// Answers rendered per message.
const MAX_ANSWERS: usize = 32;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a (possibly compressed) name starting at `at`; returns it and the offset after it.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..=MAX_POINTER_HOPS {
        loop {
            let len = *msg.get(at)? as usize;
            if len & 0xc0 == 0xc0 {
                let ptr = (u16_at(msg, at)? & 0x3fff) as usize;
                end.get_or_insert(at + 2);
                at = ptr;
                break;
            }
            if len == 0 {
                return Some((
                    if name.is_empty() { ".".into() } else { name },
                    end.unwrap_or(at + 1),
                ));
            }
            let label = msg.get(at + 1..at + 1 + len)?;
            if !name.is_empty() {
                name.push('.');
            }
            name.extend(
                label
                    .iter()
                    .map(|&c| if c.is_ascii_graphic() { c as char } else { '?' }),
            );
            if name.len() > MAX_NAME_LEN {
                return None;
            }
            at += 1 + len;
        }
    }
    None
}

/// The name of a query type.
pub fn rrtype_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        other => other.to_string(),
    }
}

fn rcode_name(r: u16) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => other.to_string(),
    }
}

/// Parses one DNS message (UDP payload, or a TCP message without its length prefix) into its
/// events, as Suricata logs them: one query event per question, one answer event per response
/// (named by its first question). A response without questions (an mDNS announcement) is
/// valid and yields nothing.
pub fn parse(msg: &[u8]) -> Option<Vec<DnsRecord>> {
    let id = u16_at(msg, 0)?;
    let flags = u16_at(msg, 2)?;
    let qdcount = u16_at(msg, 4)?;
    let ancount = u16_at(msg, 6)?;
    let is_response = flags & 0x8000 != 0;
    if qdcount == 0 && is_response && flags & 0x7800 == 0 {
        return Some(Vec::new());
    }
    if qdcount == 0 || qdcount > 16 || flags & 0x7800 > 0x2800 {
        return None;
    }
    let mut questions = Vec::with_capacity(1);
    let mut at = 12;
    for _ in 0..qdcount {
        let (name, after) = read_name(msg, at)?;
        questions.push((name, u16_at(msg, after)?));
        at = after + 4;
        if is_response {
            // The answer is named by its first question; the others are only skipped.
            for _ in 1..qdcount {
                let (_, after) = read_name(msg, at)?;
                at = after + 4;
            }
            break;
        }
    }
    if !is_response {
        return Some(
            questions
                .into_iter()
                .map(|(rrname, qtype)| DnsRecord {
                    kind: "query".into(),
                    id,
                    rrname,
                    rrtype: rrtype_name(qtype),
                    rcode: None,
                    answers: Vec::new(),
                })
                .collect(),
        );
    }
    let (rrname, qtype) = questions.pop()?;
    let mut answers = Vec::new();
    for _ in 0..ancount.min(MAX_ANSWERS as u16) {
        let Some((_, after)) = read_name(msg, at) else {
            break;
        };
        let (Some(t), Some(rdlen)) = (u16_at(msg, after), u16_at(msg, after + 8)) else {
            break;
        };
        let rd_start = after + 10;
        let Some(rdata) = msg.get(rd_start..rd_start + rdlen as usize) else {
            break;
        };
        match (t, rdata.len()) {
            (1, 4) => answers
                .push(std::net::Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string()),
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                answers.push(std::net::Ipv6Addr::from(a).to_string());
            }
            (5 | 12 | 2, _) => {
                if let Some((n, _)) = read_name(msg, rd_start) {
                    answers.push(n);
                }
            }
            _ => {}
        }
        at = rd_start + rdlen as usize;
    }
    Some(vec![DnsRecord {
        kind: "answer".into(),
        id,
        rrname,
        rrtype: rrtype_name(qtype),
        rcode: Some(rcode_name(flags & 0x000f)),
        answers,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn reads_a_query_and_a_compressed_answer() {
        let q = query("www.example.com");
        let r = &parse(&q).unwrap()[0];
        assert_eq!(
            (r.kind.as_str(), r.id, r.rrname.as_str(), r.rrtype.as_str()),
            ("query", 0x1234, "www.example.com", "A")
        );
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
        let r = &parse(&a).unwrap()[0];
        assert_eq!(r.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(r.answers, vec!["192.0.2.7"]);
    }

    #[test]
    fn every_question_is_a_query_and_announcements_are_not_malformed() {
        let mut q = query("printer.local");
        q[5] = 2;
        q.extend_from_slice(&[4, b's', b'c', b'a', b'n', 0xc0, 12 + 8, 0, 12, 0, 1]);
        let names: Vec<String> = parse(&q).unwrap().into_iter().map(|r| r.rrname).collect();
        assert_eq!(names, ["printer.local", "scan.local"]);
        let announcement = [0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse(&announcement).map(|v| v.len()), Some(0));
    }

    #[test]
    fn pointer_loops_and_truncation_are_rejected() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12];
        assert!(parse(&m).is_none());
        m.truncate(5);
        assert!(parse(&m).is_none());
        for n in 0..64 {
            let q = query("a.b.c");
            let _ = parse(&q[..n.min(q.len())]);
        }
    }
}
