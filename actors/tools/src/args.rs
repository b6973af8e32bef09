//! Typed access to a tool call's arguments. The server validates arguments against the input
//! schema before a handler runs; these accessors check again (handlers can be called
//! directly) and name the field in every error.

use chrono::{DateTime, Duration, Utc};
use netmonitor_mcp::ToolError;
use netmonitor_store::queries::Window;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Longest look-back accepted through `hours` (one year); `since` reaches further.
pub(crate) const MAX_HOURS: i64 = 24 * 366;

/// A tool call's arguments.
pub(crate) struct Args(Map<String, Value>);

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ToolError {
    ToolError::InvalidArgument {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl Args {
    /// Wraps the argument object.
    pub(crate) fn new(m: Map<String, Value>) -> Self {
        Args(m)
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    /// The raw value.
    pub(crate) fn value(&self, k: &str) -> Option<Value> {
        self.get(k).cloned()
    }

    /// An optional string, trimmed; empty counts as absent.
    pub(crate) fn opt_str(&self, k: &str) -> Result<Option<String>, ToolError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let t = s.trim();
                Ok((!t.is_empty()).then(|| t.to_owned()))
            }
            Some(_) => Err(invalid(k, "expected a string")),
        }
    }

    /// A required, non-empty string.
    pub(crate) fn req_str(&self, k: &str) -> Result<String, ToolError> {
        self.opt_str(k)?.ok_or_else(|| invalid(k, "is required"))
    }

    /// An optional integer within `[min, max]`.
    pub(crate) fn opt_i64(&self, k: &str, min: i64, max: i64) -> Result<Option<i64>, ToolError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        let n = v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| invalid(k, "expected an integer"))?;
        if n < min || n > max {
            return Err(invalid(k, format!("must be between {min} and {max}")));
        }
        Ok(Some(n))
    }

    /// An integer within `[min, max]`, `default` when absent.
    pub(crate) fn i64_or(
        &self,
        k: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ToolError> {
        Ok(self.opt_i64(k, min, max)?.unwrap_or(default))
    }

    /// An optional unsigned 64-bit integer (flow ids use the whole range).
    pub(crate) fn opt_u64(&self, k: &str) -> Result<Option<u64>, ToolError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| invalid(k, "expected a non-negative integer")),
        }
    }

    /// A boolean, `default` when absent.
    pub(crate) fn bool_or(&self, k: &str, default: bool) -> Result<bool, ToolError> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(k, "expected true or false")),
        }
    }

    /// An optional IP address.
    pub(crate) fn opt_ip(&self, k: &str) -> Result<Option<IpAddr>, ToolError> {
        match self.opt_str(k)? {
            None => Ok(None),
            Some(s) => parse_ip(&s)
                .map(Some)
                .ok_or_else(|| invalid(k, format!("{s:?} is not an IPv4 or IPv6 address"))),
        }
    }

    /// A required IP address.
    pub(crate) fn req_ip(&self, k: &str) -> Result<IpAddr, ToolError> {
        self.opt_ip(k)?.ok_or_else(|| invalid(k, "is required"))
    }

    /// An optional RFC 3339 time.
    pub(crate) fn opt_time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ToolError> {
        match self.opt_str(k)? {
            None => Ok(None),
            Some(s) => parse_time(&s).map(Some).ok_or_else(|| {
                invalid(
                    k,
                    format!("{s:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z"),
                )
            }),
        }
    }

    /// The (time, id) after which a newest-first page continues, from `cursor` (the previous
    /// answer's `next_cursor`, see [`next_cursor`]).
    pub(crate) fn opt_cursor(&self) -> Result<Option<(DateTime<Utc>, i64)>, ToolError> {
        let Some(c) = self.opt_str("cursor")? else {
            return Ok(None);
        };
        let parsed = c.split_once(':').and_then(|(us, id)| {
            let ts = DateTime::from_timestamp_micros(us.parse().ok()?)?;
            Some((ts, id.parse().ok()?))
        });
        parsed
            .map(Some)
            .ok_or_else(|| invalid("cursor", "is not a next_cursor this tool returned"))
    }

    /// The time window of `hours` (back from now, `default_hours` when absent), or of
    /// `since`/`until` when given (`since` wins over `hours`).
    pub(crate) fn window(&self, default_hours: i64) -> Result<Window, ToolError> {
        let now = Utc::now();
        let until = self.opt_time("until")?.unwrap_or(now);
        let since = match self.opt_time("since")? {
            Some(s) => s,
            None => {
                let hours = self.i64_or("hours", default_hours, 1, MAX_HOURS)?;
                until - Duration::hours(hours)
            }
        };
        if since > until {
            return Err(invalid("since", "must not be after 'until'"));
        }
        Ok(Window { since, until })
    }
}

/// The `next_cursor` of a newest-first page of `limit` items whose last one has `last` (time and
/// id): `<microseconds>:<id>`, or `None` when the page is not full (the last page).
pub(crate) fn next_cursor(
    returned: usize,
    limit: i64,
    last: Option<(DateTime<Utc>, i64)>,
) -> Option<String> {
    if returned as i64 != limit {
        return None;
    }
    last.map(|(ts, id)| format!("{}:{id}", ts.timestamp_micros()))
}

/// Parses an IP address, accepting IPv6 in brackets.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    t.parse().ok()
}

/// Parses RFC 3339, an EVE timestamp (`2015-01-19T22:00:00.123456+0000`, as events carry
/// them), or a bare `YYYY-MM-DD` (midnight UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => Args::new(m),
            _ => Args::new(Map::new()),
        }
    }

    #[test]
    fn times_in_rfc3339_eve_and_date_forms() {
        let eve = parse_time("2015-01-19T22:00:00.250000+0000").unwrap();
        assert_eq!(eve.to_rfc3339(), "2015-01-19T22:00:00.250+00:00");
        assert_eq!(
            parse_time("2015-01-19T23:00:00+01:00").unwrap().timestamp(),
            eve.timestamp()
        );
        assert_eq!(
            parse_time("2015-01-19").unwrap().to_rfc3339(),
            "2015-01-19T00:00:00+00:00"
        );
        assert!(parse_time("19/01/2015").is_none());
    }

    #[test]
    fn window_from_hours_since_and_until() {
        let w = args(json!({"hours": 2})).window(24).unwrap();
        assert_eq!((w.until - w.since).num_hours(), 2);
        let w = args(json!({})).window(24).unwrap();
        assert_eq!((w.until - w.since).num_hours(), 24);
        let w = args(json!({"since": "2015-01-19T22:00:00Z", "until": "2015-01-20"}))
            .window(24)
            .unwrap();
        assert_eq!(w.since.to_rfc3339(), "2015-01-19T22:00:00+00:00");
        assert_eq!(w.until.to_rfc3339(), "2015-01-20T00:00:00+00:00");
        let e = args(json!({"since": "2016-01-01", "until": "2015-01-01"})).window(1);
        assert!(matches!(e, Err(ToolError::InvalidArgument { field, .. }) if field == "since"));
        let e = args(json!({"hours": 0})).window(1);
        assert!(matches!(e, Err(ToolError::InvalidArgument { field, .. }) if field == "hours"));
        assert!(args(json!({"since": "yesterday"})).window(1).is_err());
    }

    #[test]
    fn ips_and_types_are_checked() {
        let a = args(json!({"ip": " 10.0.0.1 ", "v6": "[::1]", "bad": "10.0.0.256", "n": "x"}));
        assert_eq!(a.req_ip("ip").unwrap().to_string(), "10.0.0.1");
        assert_eq!(a.req_ip("v6").unwrap().to_string(), "::1");
        assert!(a.req_ip("bad").is_err());
        assert!(a.req_ip("missing").is_err());
        assert!(a.opt_i64("n", 0, 10).is_err());
        assert!(a.bool_or("ip", false).is_err());
        let b = args(json!({"limit": 5.0, "big": 18446744073709551615u64, "s": "  "}));
        assert_eq!(b.opt_i64("limit", 1, 10).unwrap(), Some(5));
        assert_eq!(b.opt_u64("big").unwrap(), Some(u64::MAX));
        assert_eq!(b.opt_str("s").unwrap(), None);
        assert!(b.opt_i64("limit", 6, 10).is_err());
    }
}
