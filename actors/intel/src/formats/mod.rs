//! Feed formats as the community publishes them, each parsed into [`Indicator`]s with a report
//! of what failed (line numbers) and what cannot be matched (counted, never silently dropped).

mod abusech;
mod lists;
mod stix;
mod zeek;

pub use stix::{parse_pattern, PatternError};

use crate::indicator::Indicator;
use serde::{Deserialize, Serialize};

/// How a feed's content is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    /// One IP, CIDR, domain or URL per line; `#` and `;` comments.
    Plain,
    /// A hosts file (`0.0.0.0 evil.example`): the names are the indicators.
    Hosts,
    /// Spamhaus DROP/EDROP text (`CIDR ; SBLnnn`).
    SpamhausDrop,
    /// Spamhaus DROP JSON lines (`drop_v4.json`, `drop_v6.json`) with their metadata line.
    SpamhausDropJson,
    /// abuse.ch Feodo Tracker `ipblocklist.csv`.
    FeodoCsv,
    /// abuse.ch URLhaus CSV.
    UrlhausCsv,
    /// abuse.ch SSLBL `sslblacklist.csv` (certificate SHA-1).
    SslblCsv,
    /// abuse.ch SSLBL JA3 fingerprints CSV.
    SslblJa3Csv,
    /// Zeek Intel framework file (`#fields indicator indicator_type meta.source ...`).
    ZeekIntel,
    /// A STIX 2.1 bundle (or array) of objects; `indicator` objects with STIX patterns count.
    Stix,
    /// A TAXII 2.1 collection, polled incrementally; its objects are STIX.
    Taxii,
    /// An ip2asn TSV table (`range_start range_end AS_number country AS_description`) for
    /// `lookup_ip_owner`.
    Ip2asn,
}

impl FeedFormat {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Plain => "plain",
            FeedFormat::Hosts => "hosts",
            FeedFormat::SpamhausDrop => "spamhaus_drop",
            FeedFormat::SpamhausDropJson => "spamhaus_drop_json",
            FeedFormat::FeodoCsv => "feodo_csv",
            FeedFormat::UrlhausCsv => "urlhaus_csv",
            FeedFormat::SslblCsv => "sslbl_csv",
            FeedFormat::SslblJa3Csv => "sslbl_ja3_csv",
            FeedFormat::ZeekIntel => "zeek_intel",
            FeedFormat::Stix => "stix",
            FeedFormat::Taxii => "taxii",
            FeedFormat::Ip2asn => "ip2asn",
        }
    }

    /// Every format.
    pub const ALL: [FeedFormat; 12] = [
        FeedFormat::Plain,
        FeedFormat::Hosts,
        FeedFormat::SpamhausDrop,
        FeedFormat::SpamhausDropJson,
        FeedFormat::FeodoCsv,
        FeedFormat::UrlhausCsv,
        FeedFormat::SslblCsv,
        FeedFormat::SslblJa3Csv,
        FeedFormat::ZeekIntel,
        FeedFormat::Stix,
        FeedFormat::Taxii,
        FeedFormat::Ip2asn,
    ];

    /// The format named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Error lines kept in a report (all are counted).
pub const MAX_ERRORS_KEPT: usize = 50;

/// One line (or object) that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// 1-based line number (0 when the whole document failed, object index for JSON arrays).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// One range of an IP-to-ASN table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnRange {
    /// First address.
    pub start: std::net::IpAddr,
    /// Last address.
    pub end: std::net::IpAddr,
    /// Autonomous system number (0 = not routed).
    pub asn: u32,
    /// Country code.
    pub country: String,
    /// AS name.
    pub description: String,
}

/// What parsing a feed's content gave.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ParseReport {
    /// The indicators.
    pub indicators: Vec<Indicator>,
    /// Indicators the source withdrew (STIX `revoked`): removed from the store.
    pub revoked: Vec<Indicator>,
    /// IP-to-ASN ranges (the `ip2asn` format).
    pub asn_ranges: Vec<AsnRange>,
    /// Lines or objects read.
    pub records: usize,
    /// The first [`MAX_ERRORS_KEPT`] failures.
    pub errors: Vec<LineError>,
    /// All failures.
    pub error_count: usize,
    /// Entries well formed but of a kind or pattern the matcher cannot use.
    pub unsupported: usize,
    /// Why, for the first few of them.
    pub unsupported_samples: Vec<String>,
    /// The document is cut short or not of this format at all: keep the last good copy.
    pub rejected: Option<String>,
}

impl ParseReport {
    pub(crate) fn error(&mut self, line: usize, message: impl Into<String>) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(LineError {
                line,
                message: message.into(),
            });
        }
    }

    pub(crate) fn unsupported(&mut self, why: impl Into<String>) {
        self.unsupported += 1;
        if self.unsupported_samples.len() < 10 {
            self.unsupported_samples.push(why.into());
        }
    }

    /// Rejects content where most records failed (an HTML error page, another format) or a
    /// non-empty document that yielded nothing.
    fn judge(&mut self) {
        if self.rejected.is_some() {
            return;
        }
        let good = self.indicators.len() + self.asn_ranges.len() + self.revoked.len();
        if self.error_count > 0 && good == 0 {
            self.rejected = Some(format!(
                "no usable entry, {} malformed (first at line {})",
                self.error_count,
                self.errors.first().map_or(0, |e| e.line)
            ));
        } else if self.error_count > 10 && self.error_count * 5 > self.records {
            self.rejected = Some(format!(
                "{} of {} records malformed: not this format, or damaged",
                self.error_count, self.records
            ));
        }
    }
}

/// Parses `text` as `format`.
pub fn parse(format: FeedFormat, text: &str) -> ParseReport {
    let mut report = match format {
        FeedFormat::Plain => lists::plain(text),
        FeedFormat::Hosts => lists::hosts(text),
        FeedFormat::SpamhausDrop => lists::spamhaus_drop(text),
        FeedFormat::SpamhausDropJson => lists::spamhaus_drop_json(text),
        FeedFormat::FeodoCsv => abusech::feodo(text),
        FeedFormat::UrlhausCsv => abusech::urlhaus(text),
        FeedFormat::SslblCsv => abusech::sslbl(text),
        FeedFormat::SslblJa3Csv => abusech::sslbl_ja3(text),
        FeedFormat::ZeekIntel => zeek::intel(text),
        FeedFormat::Stix | FeedFormat::Taxii => stix::bundle(text),
        FeedFormat::Ip2asn => lists::ip2asn(text),
    };
    report.judge();
    report
}

/// Reads STIX objects as a TAXII poll returns them.
pub fn parse_stix_objects(objects: &[serde_json::Value]) -> ParseReport {
    let mut report = ParseReport::default();
    stix::add_objects(&mut report, objects);
    report.judge();
    report
}

/// The lines of `text` with their 1-based numbers, without comment-only and blank lines.
/// `#` starts a comment anywhere; `;` too when `semicolon` is set.
pub(crate) fn content_lines(
    text: &str,
    semicolon: bool,
) -> impl Iterator<Item = (usize, &str)> + '_ {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let mut l = line;
        if let Some(p) = l.find('#') {
            l = &l[..p];
        }
        if semicolon {
            if let Some(p) = l.find(';') {
                l = &l[..p];
            }
        }
        let l = l.trim();
        (!l.is_empty()).then_some((i + 1, l))
    })
}

/// Splits one CSV line (RFC 4180 quoting, no embedded newlines).
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_owned()).collect()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339 → microseconds since the epoch.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|t| t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests;
