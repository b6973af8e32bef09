//! The IP-to-ASN table `lookup_ip_owner` answers from: ip2asn ranges sorted by start, looked
//! up by binary search; AS names are shared between the ranges of one AS.

use crate::formats::AsnRange;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Who owns an address.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AsnInfo {
    /// AS number (0: not routed).
    pub asn: u32,
    /// AS name.
    pub as_name: String,
    /// Country code.
    pub country: String,
    /// The range holding the address.
    pub range_start: String,
    /// Its last address.
    pub range_end: String,
    /// The feed the table came from.
    pub source: String,
}

#[derive(Debug, Clone)]
struct Row {
    start: IpAddr,
    end: IpAddr,
    asn: u32,
    country: Arc<str>,
    name: Arc<str>,
}

/// The table.
#[derive(Debug, Default, Clone)]
pub struct AsnTable {
    rows: Vec<Row>,
    source: String,
}

impl AsnTable {
    /// A table from `feed`'s ranges (overlaps resolved in favour of the later start).
    pub fn build(feed: &str, ranges: impl IntoIterator<Item = AsnRange>) -> Self {
        let mut names: std::collections::HashMap<String, Arc<str>> = Default::default();
        let mut intern = |s: String| -> Arc<str> {
            names
                .entry(s)
                .or_insert_with_key(|k| Arc::from(k.as_str()))
                .clone()
        };
        let mut rows: Vec<Row> = ranges
            .into_iter()
            .map(|r| Row {
                start: r.start,
                end: r.end,
                asn: r.asn,
                country: intern(r.country),
                name: intern(r.description),
            })
            .collect();
        rows.sort_by_key(|r| r.start);
        AsnTable {
            rows,
            source: feed.to_owned(),
        }
    }

    /// Ranges held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The range holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<AsnInfo> {
        let i = self
            .rows
            .partition_point(|r| r.start <= ip)
            .checked_sub(1)?;
        let r = &self.rows[i];
        (ip <= r.end && r.start.is_ipv4() == ip.is_ipv4()).then(|| AsnInfo {
            asn: r.asn,
            as_name: r.name.to_string(),
            country: r.country.to_string(),
            range_start: r.start.to_string(),
            range_end: r.end.to_string(),
            source: self.source.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_range_or_nothing() {
        let r = |s: &str, e: &str, asn| AsnRange {
            start: s.parse().unwrap(),
            end: e.parse().unwrap(),
            asn,
            country: "US".into(),
            description: format!("AS{asn}"),
        };
        let t = AsnTable::build(
            "ip2asn",
            vec![
                r("1.0.0.0", "1.0.0.255", 13335),
                r("8.8.8.0", "8.8.8.255", 15169),
                r(
                    "2001:4860::",
                    "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff",
                    15169,
                ),
            ],
        );
        assert_eq!(t.lookup("8.8.8.8".parse().unwrap()).unwrap().asn, 15169);
        assert_eq!(t.lookup("1.0.0.0".parse().unwrap()).unwrap().asn, 13335);
        assert!(t.lookup("1.0.1.0".parse().unwrap()).is_none());
        assert!(t.lookup("0.0.0.1".parse().unwrap()).is_none());
        assert_eq!(
            t.lookup("2001:4860::8888".parse().unwrap())
                .unwrap()
                .as_name,
            "AS15169"
        );
        assert!(t.lookup("9.9.9.9".parse().unwrap()).is_none());
    }
}
