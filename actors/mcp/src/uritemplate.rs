//! Matching URIs against RFC 6570 templates of the forms resources use: simple `{var}`
//! expressions (level 1) and a trailing form-style query `{?a,b,c}` (level 3), e.g.
//! `network://host/{host_id}{?include_events,events_limit}`.

use std::collections::BTreeMap;

/// Longest URI matched (bounds work on hostile input).
pub const MAX_URI_LEN: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
    Query(Vec<String>),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

fn valid_var(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

impl UriTemplate {
    /// Parses a template; errors name the problem.
    pub fn parse(tpl: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = tpl;
        while !rest.is_empty() {
            match rest.find('{') {
                None => {
                    if rest.contains('}') {
                        return Err("unbalanced '}'".into());
                    }
                    parts.push(Part::Lit(rest.to_string()));
                    rest = "";
                }
                Some(open) => {
                    let (lit, after) = rest.split_at(open);
                    if lit.contains('}') {
                        return Err("unbalanced '}'".into());
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(lit.to_string()));
                    }
                    let after = after.get(1..).unwrap_or("");
                    let close = after.find('}').ok_or("unclosed '{'")?;
                    let expr = after.get(..close).unwrap_or("");
                    rest = after.get(close + 1..).unwrap_or("");
                    if let Some(q) = expr.strip_prefix('?') {
                        let names: Vec<String> = q.split(',').map(str::to_string).collect();
                        if names.iter().any(|n| !valid_var(n)) {
                            return Err(format!("bad variable list {q:?}"));
                        }
                        if !rest.is_empty() {
                            return Err("a {?query} expression must come last".into());
                        }
                        parts.push(Part::Query(names));
                    } else {
                        if !valid_var(expr) {
                            return Err(format!(
                                "unsupported expression {{{expr}}} (only {{var}} and {{?a,b}})"
                            ));
                        }
                        if matches!(parts.last(), Some(Part::Var(_))) {
                            return Err("two variables must be separated by a literal".into());
                        }
                        parts.push(Part::Var(expr.to_string()));
                    }
                }
            }
        }
        Ok(UriTemplate { parts })
    }

    /// Variable names in order (query ones included).
    pub fn variables(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Var(v) => out.push(v.as_str()),
                Part::Query(vs) => out.extend(vs.iter().map(String::as_str)),
                Part::Lit(_) => {}
            }
        }
        out
    }

    /// Matches a URI, returning the percent-decoded variables; query variables are optional,
    /// unknown query keys make the URI not match.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        if uri.len() > MAX_URI_LEN {
            return None;
        }
        let mut vars = BTreeMap::new();
        let mut rest = uri;
        let mut iter = self.parts.iter().peekable();
        while let Some(part) = iter.next() {
            match part {
                Part::Lit(l) => rest = rest.strip_prefix(l.as_str())?,
                Part::Var(name) => {
                    let end = match iter.peek() {
                        Some(Part::Lit(next)) => rest.find(next.as_str())?,
                        _ => rest.find('?').unwrap_or(rest.len()),
                    };
                    let raw = rest.get(..end)?;
                    if raw.is_empty() || raw.contains(['/', '?', '#']) {
                        return None;
                    }
                    vars.insert(name.clone(), pct_decode(raw, false)?);
                    rest = rest.get(end..)?;
                }
                Part::Query(names) => {
                    if rest.is_empty() {
                        return Some(vars);
                    }
                    let q = rest.strip_prefix('?')?;
                    for pair in q.split('&').filter(|p| !p.is_empty()) {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let k = pct_decode(k, true)?;
                        if !names.contains(&k) {
                            return None;
                        }
                        vars.insert(k, pct_decode(v, true)?);
                    }
                    rest = "";
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as space in query components); `None` on bad escapes or
/// invalid UTF-8.
pub fn pct_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = hex_val(*bytes.get(i + 1)?)?;
                let lo = hex_val(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_template() {
        let t = UriTemplate::parse("network://hosts{?q,source,limit}");
        let Ok(t) = t else { panic!("parse") };
        assert_eq!(t.matches("network://hosts"), Some(vars(&[])));
        assert_eq!(
            t.matches("network://hosts?q=SEELE&limit=5"),
            Some(vars(&[("q", "SEELE"), ("limit", "5")]))
        );
        assert_eq!(
            t.matches("network://hosts?q=a%20b+c"),
            Some(vars(&[("q", "a b c")]))
        );
        assert_eq!(t.matches("network://hosts?bogus=1"), None);
        assert_eq!(t.matches("network://hostsx"), None);
        assert_eq!(t.matches("network://hosts?q=%zz"), None);
        assert_eq!(t.variables(), vec!["q", "source", "limit"]);
    }

    #[test]
    fn path_and_query_template() {
        let t = UriTemplate::parse("network://host/{host_id}{?include_events,events_limit}");
        let Ok(t) = t else { panic!("parse") };
        assert_eq!(
            t.matches("network://host/mac%3Aaa%3Abb?include_events=true"),
            Some(vars(&[
                ("host_id", "mac:aa:bb"),
                ("include_events", "true")
            ]))
        );
        assert_eq!(t.matches("network://host/"), None);
        assert_eq!(t.matches("network://host/a/b"), None);
    }

    #[test]
    fn literal_after_variable() {
        let t = UriTemplate::parse("sensor://{id}/status");
        let Ok(t) = t else { panic!("parse") };
        assert_eq!(t.matches("sensor://s1/status"), Some(vars(&[("id", "s1")])));
        assert_eq!(t.matches("sensor://s1/other"), None);
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in ["a{b", "a}b", "x{+y}", "{?a}{b}", "{a}{b}", "{?a,,b}"] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
