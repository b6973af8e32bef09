//! abuse.ch CSV feeds: Feodo Tracker, URLhaus, SSLBL certificates and SSLBL JA3. Their header
//! lines start with `#` like their comments; the column names there locate the fields.

use super::{csv_fields, parse_time, ParseReport};
use crate::indicator::{normalize, Indicator, IndicatorKind};

/// Column positions from a `# col,col,...` header, by name, else the given defaults.
struct Columns(Vec<String>);

impl Columns {
    fn find(text: &str, must_have: &str) -> Columns {
        for line in text.lines().take(64) {
            if let Some(h) = line.strip_prefix('#') {
                let names = csv_fields(h.trim());
                if names.iter().any(|n| n.eq_ignore_ascii_case(must_have)) {
                    return Columns(names.into_iter().map(|n| n.to_ascii_lowercase()).collect());
                }
            }
        }
        Columns(Vec::new())
    }

    fn at(&self, name: &str, default: usize) -> usize {
        self.0.iter().position(|n| n == name).unwrap_or(default)
    }
}

/// Rows (1-based line number, fields) of a `#`-commented CSV.
fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.trim();
        (!l.is_empty() && !l.starts_with('#')).then(|| (i + 1, csv_fields(l)))
    })
}

fn field(row: &[String], i: usize) -> &str {
    row.get(i).map_or("", String::as_str)
}

pub(super) fn feodo(text: &str) -> ParseReport {
    let cols = Columns::find(text, "dst_ip");
    let (ip, first, port, status, malware) = (
        cols.at("dst_ip", 1),
        cols.at("first_seen_utc", 0),
        cols.at("dst_port", 2),
        cols.at("c2_status", 3),
        cols.at("malware", 5),
    );
    let mut r = ParseReport::default();
    for (n, row) in rows(text) {
        r.records += 1;
        match normalize(IndicatorKind::Ip, field(&row, ip)) {
            Ok(v) => {
                let mut ind = Indicator::new(IndicatorKind::Ip, v).described(&format!(
                    "{} C2 (port {})",
                    field(&row, malware),
                    field(&row, port)
                ));
                ind.first_seen = parse_time(field(&row, first));
                if !field(&row, status).is_empty() {
                    ind.tags.push(field(&row, status).to_owned());
                }
                r.indicators.push(ind);
            }
            Err(e) => r.error(n, e.to_string()),
        }
    }
    r
}

pub(super) fn urlhaus(text: &str) -> ParseReport {
    let cols = Columns::find(text, "url");
    let (url, added, threat, tags) = (
        cols.at("url", 2),
        cols.at("dateadded", 1),
        cols.at("threat", 5),
        cols.at("tags", 6),
    );
    let mut r = ParseReport::default();
    for (n, row) in rows(text) {
        r.records += 1;
        match normalize(IndicatorKind::Url, field(&row, url)) {
            Ok(v) => {
                let mut ind = Indicator::new(IndicatorKind::Url, v).described(field(&row, threat));
                ind.first_seen = parse_time(field(&row, added));
                ind.tags = field(&row, tags)
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && *t != "None")
                    .map(str::to_owned)
                    .collect();
                r.indicators.push(ind);
            }
            Err(e) => r.error(n, e.to_string()),
        }
    }
    r
}

pub(super) fn sslbl(text: &str) -> ParseReport {
    let cols = Columns::find(text, "sha1");
    let (sha1, date, reason) = (
        cols.at("sha1", 1),
        cols.at("listingdate", 0),
        cols.at("listingreason", 2),
    );
    let mut r = ParseReport::default();
    for (n, row) in rows(text) {
        r.records += 1;
        match normalize(IndicatorKind::CertSha1, field(&row, sha1)) {
            Ok(v) => {
                let mut ind =
                    Indicator::new(IndicatorKind::CertSha1, v).described(field(&row, reason));
                ind.first_seen = parse_time(field(&row, date));
                r.indicators.push(ind);
            }
            Err(e) => r.error(n, e.to_string()),
        }
    }
    r
}

pub(super) fn sslbl_ja3(text: &str) -> ParseReport {
    let cols = Columns::find(text, "ja3_md5");
    let (md5, first, reason) = (
        cols.at("ja3_md5", 0),
        cols.at("firstseen", 1),
        cols.at("listingreason", 3),
    );
    let mut r = ParseReport::default();
    for (n, row) in rows(text) {
        r.records += 1;
        match normalize(IndicatorKind::Ja3, field(&row, md5)) {
            Ok(v) => {
                let mut ind = Indicator::new(IndicatorKind::Ja3, v).described(field(&row, reason));
                ind.first_seen = parse_time(field(&row, first));
                r.indicators.push(ind);
            }
            Err(e) => r.error(n, e.to_string()),
        }
    }
    r
}
