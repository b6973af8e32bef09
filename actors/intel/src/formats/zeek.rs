//! Zeek Intel framework files: tab-separated, columns named by a `#fields` line, `-` for
//! empty. Types Zeek defines that name nothing the sensor sees (e-mail addresses, user names,
//! software, file names, public-key hashes) are counted as unsupported.

use super::ParseReport;
use crate::indicator::{normalize, Indicator, IndicatorKind};

pub(super) fn intel(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    let mut fields: Vec<String> = Vec::new();
    let mut sep = '\t';
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(s) = line.strip_prefix("#separator ") {
            sep = parse_separator(s.trim()).unwrap_or('\t');
            continue;
        }
        if let Some(f) = line.strip_prefix("#fields") {
            fields = f
                .trim_start_matches([sep, ' '])
                .split(sep)
                .map(|s| s.trim().to_owned())
                .collect();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        r.records += 1;
        if fields.is_empty() {
            r.error(n, "data before the #fields header");
            continue;
        }
        let cols: Vec<&str> = line.split(sep).collect();
        let get = |name: &str| {
            fields
                .iter()
                .position(|f| f == name)
                .and_then(|p| cols.get(p))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty() && *v != "-")
        };
        let (Some(value), Some(ty)) = (get("indicator"), get("indicator_type")) else {
            r.error(n, "indicator or indicator_type missing");
            continue;
        };
        let kind = match ty.trim_start_matches("Intel::") {
            "ADDR" if value.contains('/') => Some(IndicatorKind::Cidr),
            "ADDR" => Some(IndicatorKind::Ip),
            "SUBNET" => Some(IndicatorKind::Cidr),
            "DOMAIN" => Some(IndicatorKind::Domain),
            "URL" => Some(IndicatorKind::Url),
            "CERT_HASH" => Some(IndicatorKind::CertSha1),
            "JA3" => Some(IndicatorKind::Ja3),
            "FILE_HASH" => match value.len() {
                32 => Some(IndicatorKind::Md5),
                40 => Some(IndicatorKind::Sha1),
                64 => Some(IndicatorKind::Sha256),
                _ => {
                    r.error(n, format!("file hash of unknown length: {value:?}"));
                    continue;
                }
            },
            _ => None,
        };
        let Some(kind) = kind else {
            r.unsupported(format!("line {n}: Zeek indicator type {ty} is not matched"));
            continue;
        };
        // Zeek writes URLs without their scheme.
        let raw = if kind == IndicatorKind::Url && !value.contains("://") {
            format!("http://{value}")
        } else {
            value.to_owned()
        };
        match normalize(kind, &raw) {
            Ok(v) => {
                let mut ind = Indicator::new(kind, v).described(get("meta.desc").unwrap_or(""));
                if let Some(src) = get("meta.source") {
                    ind.tags.push(src.to_owned());
                }
                ind.confidence = get("meta.confidence")
                    .and_then(|c| c.parse::<u8>().ok())
                    .map(|c| c.min(100));
                r.indicators.push(ind);
            }
            Err(e) => r.error(n, e.to_string()),
        }
    }
    r
}

/// `\x09` → tab.
fn parse_separator(s: &str) -> Option<char> {
    let hex = s.strip_prefix("\\x")?;
    u8::from_str_radix(hex, 16).ok().map(char::from)
}
