//! STIX 2.1: bundles (or TAXII envelopes, or bare arrays) of objects, of which `indicator`
//! objects with `pattern_type: stix` count. A pattern becomes indicators when it is one or more
//! comparisons joined by `OR` that each name a single observable value the matcher knows
//! (`=` on addresses, domains, URLs and hashes; `ISSUBSET` on address blocks). Anything needing
//! correlation (`AND`, `FOLLOWEDBY`, qualifiers) or another operator is reported unsupported.

use super::{parse_time, ParseReport};
use crate::indicator::{normalize, Indicator, IndicatorKind};
use serde_json::Value;

pub(super) fn bundle(text: &str) -> ParseReport {
    let mut r = ParseReport::default();
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            r.records = 1;
            r.error(e.line(), format!("not a JSON document: {e}"));
            r.rejected = Some(format!("not a JSON document (cut short?): {e}"));
            return r;
        }
    };
    let objects = match &doc {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => o
            .get("objects")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        _ => &[][..],
    };
    add_objects(&mut r, objects);
    r
}

/// Reads the `indicator` objects among `objects` into `r`.
pub(super) fn add_objects(r: &mut ParseReport, objects: &[Value]) {
    for (i, obj) in objects.iter().enumerate() {
        if obj["type"] != "indicator" {
            continue;
        }
        r.records += 1;
        indicator_object(r, i + 1, obj);
    }
}

fn indicator_object(r: &mut ParseReport, index: usize, obj: &Value) {
    let id = obj["id"].as_str().unwrap_or("indicator");
    let Some(pattern) = obj["pattern"].as_str() else {
        r.error(index, format!("{id}: no pattern"));
        return;
    };
    let pattern_type = obj["pattern_type"].as_str().unwrap_or("stix");
    if pattern_type != "stix" {
        r.unsupported(format!("{id}: pattern_type {pattern_type}"));
        return;
    }
    let values = match parse_pattern(pattern) {
        Ok(v) => v,
        Err(PatternError::Unsupported(why)) => {
            r.unsupported(format!("{id}: {why}"));
            return;
        }
        Err(PatternError::Syntax(why)) => {
            r.error(index, format!("{id}: pattern: {why}"));
            return;
        }
    };
    let description = obj["name"]
        .as_str()
        .or_else(|| obj["description"].as_str())
        .unwrap_or("");
    let mut tags: Vec<String> = ["labels", "indicator_types"]
        .iter()
        .filter_map(|k| obj[*k].as_array())
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    tags.dedup();
    for (kind, value) in values {
        let mut ind = Indicator::new(kind, value).described(description);
        ind.confidence = obj["confidence"]
            .as_u64()
            .map(|c| u8::try_from(c.min(100)).unwrap_or(100));
        ind.valid_until = obj["valid_until"].as_str().and_then(parse_time);
        ind.first_seen = obj["valid_from"]
            .as_str()
            .or_else(|| obj["created"].as_str())
            .and_then(parse_time);
        ind.tags.clone_from(&tags);
        if obj["revoked"] == true {
            r.revoked.push(ind);
        } else {
            r.indicators.push(ind);
        }
    }
}

/// Why a pattern gave no indicators.
#[derive(Debug, PartialEq, Eq)]
pub enum PatternError {
    /// Well formed, but not something one observed value can match.
    Unsupported(String),
    /// Not a STIX pattern.
    Syntax(String),
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    LParen,
    RParen,
    Word(String),
    Str(String),
    Op(String),
}

fn tokens(p: &str) -> Result<Vec<Tok>, PatternError> {
    let mut out = Vec::new();
    let mut it = p.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '[' => {
                it.next();
                out.push(Tok::Open);
            }
            ']' => {
                it.next();
                out.push(Tok::Close);
            }
            '(' => {
                it.next();
                out.push(Tok::LParen);
            }
            ')' => {
                it.next();
                out.push(Tok::RParen);
            }
            '\'' => {
                it.next();
                let mut s = String::new();
                loop {
                    match it.next() {
                        Some('\\') => match it.next() {
                            Some(e) => s.push(e),
                            None => return Err(PatternError::Syntax("unterminated string".into())),
                        },
                        Some('\'') => break,
                        Some(ch) => s.push(ch),
                        None => return Err(PatternError::Syntax("unterminated string".into())),
                    }
                }
                out.push(Tok::Str(s));
            }
            '=' | '!' | '<' | '>' => {
                let mut op = String::new();
                while let Some(&ch) = it.peek() {
                    if matches!(ch, '=' | '!' | '<' | '>') {
                        op.push(ch);
                        it.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Op(op));
            }
            _ => {
                // An object path (with quoted segments such as hashes.'SHA-256'), a keyword or a number.
                let mut w = String::new();
                while let Some(&ch) = it.peek() {
                    if ch.is_whitespace()
                        || matches!(ch, '[' | ']' | '(' | ')' | '=' | '!' | '<' | '>')
                    {
                        break;
                    }
                    if ch == '\'' {
                        if w.is_empty() || !w.ends_with('.') {
                            break;
                        }
                        it.next();
                        for q in it.by_ref() {
                            if q == '\'' {
                                break;
                            }
                            w.push(q);
                        }
                        continue;
                    }
                    w.push(ch);
                    it.next();
                }
                if w.is_empty() {
                    return Err(PatternError::Syntax(format!("unexpected {c:?}")));
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// The (kind, normalised value) pairs a pattern names, when it is a disjunction of simple
/// comparisons.
pub fn parse_pattern(p: &str) -> Result<Vec<(IndicatorKind, String)>, PatternError> {
    let toks = tokens(p)?;
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth_obs = 0i32;
    let mut in_obs = false;
    let mut expect_term = true;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open if expect_term && !in_obs => {
                in_obs = true;
                i += 1;
            }
            Tok::Close if in_obs && !expect_term => {
                in_obs = false;
                i += 1;
            }
            Tok::LParen if expect_term => {
                depth_obs += 1;
                i += 1;
            }
            Tok::RParen if !expect_term && depth_obs > 0 => {
                depth_obs -= 1;
                i += 1;
            }
            Tok::Word(w) if !expect_term => {
                match w.to_ascii_uppercase().as_str() {
                    "OR" => expect_term = true,
                    "AND" | "FOLLOWEDBY" => {
                        return Err(PatternError::Unsupported(format!(
                            "{w}: needs several observations together"
                        )))
                    }
                    "WITHIN" | "REPEATS" | "START" | "STOP" => {
                        return Err(PatternError::Unsupported(format!("qualifier {w}")))
                    }
                    _ => return Err(PatternError::Syntax(format!("unexpected {w:?}"))),
                }
                i += 1;
            }
            Tok::Word(path) if expect_term && in_obs => {
                let (op, value) = match (toks.get(i + 1), toks.get(i + 2)) {
                    (Some(Tok::Op(op)), Some(Tok::Str(v))) => (op.clone(), v.clone()),
                    (Some(Tok::Word(op)), Some(Tok::Str(v))) => {
                        (op.to_ascii_uppercase(), v.clone())
                    }
                    (Some(Tok::Word(not)), Some(_)) if not.eq_ignore_ascii_case("NOT") => {
                        return Err(PatternError::Unsupported("NOT".into()))
                    }
                    _ => {
                        return Err(PatternError::Syntax(format!(
                            "comparison on {path} without an operator and a string"
                        )))
                    }
                };
                out.push(comparison(path, &op, &value)?);
                expect_term = false;
                i += 3;
            }
            t => return Err(PatternError::Syntax(format!("unexpected {t:?}"))),
        }
    }
    if in_obs || depth_obs != 0 || expect_term {
        return Err(PatternError::Syntax("unbalanced or empty pattern".into()));
    }
    Ok(out)
}

fn comparison(path: &str, op: &str, value: &str) -> Result<(IndicatorKind, String), PatternError> {
    let (object, prop) = path
        .split_once(':')
        .ok_or_else(|| PatternError::Syntax(format!("object path without a type: {path}")))?;
    let prop_norm = prop.to_ascii_uppercase().replace(['-', '\''], "");
    let kind = match (object, prop_norm.as_str()) {
        ("ipv4-addr" | "ipv6-addr", "VALUE")
        | ("network-traffic", "DST_REF.VALUE" | "SRC_REF.VALUE") => match op {
            "=" if value.contains('/') => IndicatorKind::Cidr,
            "=" => IndicatorKind::Ip,
            "ISSUBSET" => IndicatorKind::Cidr,
            _ => return Err(PatternError::Unsupported(format!("{path} {op}"))),
        },
        ("domain-name", "VALUE") => IndicatorKind::Domain,
        ("url", "VALUE") => IndicatorKind::Url,
        ("x509-certificate", "HASHES.SHA1") => IndicatorKind::CertSha1,
        ("x509-certificate", "HASHES.SHA256") => IndicatorKind::CertSha256,
        ("file" | "artifact", "HASHES.MD5") => IndicatorKind::Md5,
        ("file" | "artifact", "HASHES.SHA1") => IndicatorKind::Sha1,
        ("file" | "artifact", "HASHES.SHA256") => IndicatorKind::Sha256,
        _ => return Err(PatternError::Unsupported(format!("object path {path}"))),
    };
    if op != "=" && !(op == "ISSUBSET" && kind == IndicatorKind::Cidr) {
        return Err(PatternError::Unsupported(format!("{path} {op}")));
    }
    // A /32 or /128 block is one address.
    let (kind, value) = match (kind, crate::indicator::parse_cidr(value)) {
        (IndicatorKind::Cidr, Some((a, 32))) if a.is_ipv4() => (IndicatorKind::Ip, a.to_string()),
        (IndicatorKind::Cidr, Some((a, 128))) => (IndicatorKind::Ip, a.to_string()),
        _ => (kind, value.to_owned()),
    };
    normalize(kind, &value)
        .map(|v| (kind, v))
        .map_err(|e| PatternError::Syntax(e.to_string()))
}
