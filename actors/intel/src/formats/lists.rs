//! Line-oriented lists: plain IP/CIDR/domain/URL lists, hosts files, Spamhaus DROP (text and
//! JSON lines) and the ip2asn table.

use super::{content_lines, AsnRange, ParseReport};
use crate::indicator::{classify, normalize, normalize_domain, Indicator, IndicatorKind};
use std::net::IpAddr;

pub(super) fn plain(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    for (n, line) in content_lines(text, true) {
        r.records += 1;
        // The first field is the indicator; whatever follows describes it.
        let mut parts = line.splitn(2, [' ', '\t', ',']);
        let value = parts.next().unwrap_or("");
        match classify(value) {
            Some((kind, v)) => r
                .indicators
                .push(Indicator::new(kind, v).described(parts.next().unwrap_or(""))),
            None => r.error(n, format!("not an IP, CIDR, domain or URL: {value:?}")),
        }
    }
    r
}

/// Addresses hosts files map blocked names to; lines for these names themselves are skipped.
const LOCAL_NAMES: [&str; 6] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
];

pub(super) fn hosts(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    for (n, line) in content_lines(text, false) {
        r.records += 1;
        let mut fields = line.split_whitespace();
        let addr = fields.next().unwrap_or("");
        if addr.parse::<IpAddr>().is_err() {
            r.error(
                n,
                format!("hosts line does not start with an address: {addr:?}"),
            );
            continue;
        }
        for name in fields {
            if LOCAL_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            match normalize_domain(name) {
                Some(d) => r.indicators.push(Indicator::new(IndicatorKind::Domain, d)),
                None => r.error(n, format!("not a domain name: {name:?}")),
            }
        }
    }
    r
}

pub(super) fn spamhaus_drop(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        r.records += 1;
        let (cidr, sbl) = line.split_once(';').unwrap_or((line, ""));
        match normalize(IndicatorKind::Cidr, cidr) {
            Ok(v) => r
                .indicators
                .push(Indicator::new(IndicatorKind::Cidr, v).described(sbl)),
            Err(e) => r.error(n + 1, e.to_string()),
        }
    }
    r
}

/// Spamhaus' JSON lines end with `{"type":"metadata",...,"records":N}`: without it, or with
/// another count, the file is cut short.
pub(super) fn spamhaus_drop_json(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    let mut declared = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                r.records += 1;
                r.error(n + 1, format!("not JSON: {e}"));
                continue;
            }
        };
        if v["type"] == "metadata" {
            declared = v["records"].as_u64();
            continue;
        }
        r.records += 1;
        let Some(cidr) = v["cidr"].as_str() else {
            r.error(n + 1, "no \"cidr\" member");
            continue;
        };
        match normalize(IndicatorKind::Cidr, cidr) {
            Ok(c) => {
                let mut ind = Indicator::new(IndicatorKind::Cidr, c)
                    .described(v["sblid"].as_str().unwrap_or(""));
                if let Some(rir) = v["rir"].as_str() {
                    ind.tags.push(rir.to_owned());
                }
                r.indicators.push(ind);
            }
            Err(e) => r.error(n + 1, e.to_string()),
        }
    }
    match declared {
        None if r.records > 0 => {
            r.rejected = Some("no metadata line: the file is cut short".into());
        }
        Some(d) if d != r.records as u64 => {
            r.rejected = Some(format!(
                "metadata declares {d} records, {} present: the file is cut short",
                r.records
            ));
        }
        _ => {}
    }
    r
}

pub(super) fn ip2asn(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        r.records += 1;
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(s), Some(e), Some(asn)) = (f.first(), f.get(1), f.get(2)) else {
            r.error(n + 1, "fewer than three tab-separated fields");
            continue;
        };
        let (Ok(start), Ok(end), Ok(asn)) = (
            s.trim().parse::<IpAddr>(),
            e.trim().parse::<IpAddr>(),
            asn.trim().parse::<u32>(),
        ) else {
            r.error(n + 1, "range_start, range_end or AS number unreadable");
            continue;
        };
        if start.is_ipv4() != end.is_ipv4() || start > end {
            r.error(n + 1, "range ends before it starts or mixes families");
            continue;
        }
        r.asn_ranges.push(AsnRange {
            start,
            end,
            asn,
            country: f.get(3).map_or("", |c| c.trim()).to_owned(),
            description: f.get(4).map_or("", |c| c.trim()).to_owned(),
        });
    }
    r
}
