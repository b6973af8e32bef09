//! Small builders for the JSON Schemas tools declare: input objects that refuse unknown
//! fields, output objects, and the fragments many tools share (time windows, alerts, hosts).

use crate::args::MAX_HOURS;
use crate::support::SEVERITY_NAMES;
use serde_json::{json, Map, Value};

/// An input object: the given properties, `required`, and no other field.
pub(crate) fn input(props: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let mut o = object(props, required);
    if let Some(m) = o.as_object_mut() {
        m.insert("additionalProperties".into(), json!(false));
    }
    o
}

/// An object with the given properties (all present unless nullable) — for outputs.
pub(crate) fn object(props: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert(k.to_owned(), v);
    }
    json!({"type": "object", "properties": p, "required": required})
}

/// An output object whose every listed property is required.
pub(crate) fn output(props: Vec<(&str, Value)>) -> Value {
    let names: Vec<String> = props.iter().map(|(k, _)| (*k).to_owned()).collect();
    let mut o = object(props, &[]);
    if let Some(m) = o.as_object_mut() {
        m.insert("required".into(), json!(names));
    }
    o
}

/// A string.
pub(crate) fn string(desc: &str) -> Value {
    json!({"type": "string", "description": desc})
}

/// A string of bounded length.
pub(crate) fn string_len(desc: &str, min: u64, max: u64) -> Value {
    json!({"type": "string", "description": desc, "minLength": min, "maxLength": max})
}

/// A string or null.
pub(crate) fn opt_string(desc: &str) -> Value {
    json!({"type": ["string", "null"], "description": desc})
}

/// One of the given strings.
pub(crate) fn enumeration(desc: &str, values: &[&str]) -> Value {
    json!({"type": "string", "description": desc, "enum": values})
}

/// An integer within bounds.
pub(crate) fn int(desc: &str, min: i64, max: i64, default: Option<i64>) -> Value {
    let mut v = json!({"type": "integer", "description": desc, "minimum": min, "maximum": max});
    if let (Some(d), Some(m)) = (default, v.as_object_mut()) {
        m.insert("default".into(), json!(d));
    }
    v
}

/// An integer (output).
pub(crate) fn count(desc: &str) -> Value {
    json!({"type": "integer", "description": desc})
}

/// An integer or null (output).
pub(crate) fn opt_int(desc: &str) -> Value {
    json!({"type": ["integer", "null"], "description": desc})
}

/// A number (output).
pub(crate) fn number(desc: &str) -> Value {
    json!({"type": "number", "description": desc})
}

/// A boolean.
pub(crate) fn boolean(desc: &str, default: Option<bool>) -> Value {
    let mut v = json!({"type": "boolean", "description": desc});
    if let (Some(d), Some(m)) = (default, v.as_object_mut()) {
        m.insert("default".into(), json!(d));
    }
    v
}

/// An array of `items`.
pub(crate) fn array(desc: &str, items: Value) -> Value {
    json!({"type": "array", "description": desc, "items": items})
}

/// Any JSON object (output parts whose shape is documented elsewhere).
pub(crate) fn any_object(desc: &str) -> Value {
    json!({"type": "object", "description": desc})
}

/// An object or null.
pub(crate) fn opt_object(desc: &str) -> Value {
    json!({"type": ["object", "null"], "description": desc})
}

/// An IP address argument.
pub(crate) fn ip(desc: &str) -> Value {
    string_len(desc, 2, 64)
}

/// `limit` with bounds and default.
pub(crate) fn limit(max: i64, default: i64) -> Value {
    int("Most items to return", 1, max, Some(default))
}

/// The window arguments: `hours` back from now (or from `until`), or `since`/`until`.
pub(crate) fn window_props(default_hours: i64) -> Vec<(&'static str, Value)> {
    vec![
        (
            "hours",
            int(
                "Look back this many hours from now (or from 'until'); ignored when 'since' is given",
                1,
                MAX_HOURS,
                Some(default_hours),
            ),
        ),
        (
            "since",
            string_len(
                "Start of the window, RFC 3339 (2024-05-01T12:00:00Z) or YYYY-MM-DD; event times are capture times, so replayed captures need this",
                10,
                40,
            ),
        ),
        (
            "until",
            string_len("End of the window, RFC 3339 or YYYY-MM-DD (default: now)", 10, 40),
        ),
    ]
}

/// The `cursor` argument of a newest-first listing.
pub(crate) fn cursor() -> Value {
    string_len(
        "next_cursor of the previous page, for the items after it",
        3,
        64,
    )
}

/// The `next_cursor` of a newest-first listing.
pub(crate) fn next_cursor_out() -> Value {
    opt_string("Pass as `cursor` for the next page; null on the last page")
}

/// The window a result covers.
pub(crate) fn window_out() -> Value {
    output(vec![
        ("since", string("Start (RFC 3339)")),
        ("until", string("End (RFC 3339)")),
    ])
}

/// The `severity` filter argument.
pub(crate) fn severity_filter() -> Value {
    enumeration(
        "Only alerts at least this severe (high > medium > low > informational)",
        &SEVERITY_NAMES,
    )
}

/// One alert as tools return it.
pub(crate) fn alert() -> Value {
    output(vec![
        ("id", count("Alert id (for acknowledge_alert)")),
        ("ts", string("Capture time (RFC 3339)")),
        ("sensor", string("Sensor that raised it")),
        ("flow_id", count("Flow id (for export_flow_pcap)")),
        ("src_ip", string("Source address")),
        ("src_port", count("Source port")),
        ("dest_ip", string("Destination address")),
        ("dest_port", count("Destination port")),
        ("proto", count("IP protocol number")),
        ("signature_id", count("Detection id")),
        ("signature", string("Detection name")),
        ("category", string("Suricata-style category")),
        ("severity", count("1 (high) to 4 (informational)")),
        (
            "severity_name",
            string("high, medium, low or informational"),
        ),
        ("threat_type", string("Machine-readable threat type")),
        (
            "mitre",
            array("MITRE ATT&CK technique ids", string("Technique id")),
        ),
        ("evidence", any_object("What triggered the detection")),
        (
            "acknowledged",
            boolean("Whether an analyst acknowledged it", None),
        ),
        ("acknowledged_by", opt_string("Who acknowledged it")),
        ("acknowledged_at", opt_string("When (RFC 3339)")),
    ])
}

/// A live inventory host.
pub(crate) fn host() -> Value {
    output(vec![
        ("ip", string("Address (the host id)")),
        ("mac", opt_string("MAC address learnt from DHCP")),
        (
            "hostnames",
            array("Names from DHCP, DNS answers and TLS SNI", string("Name")),
        ),
        (
            "sources",
            array(
                "Where facts came from (flow, dhcp, dns, tls, krb5, alert)",
                string("Source"),
            ),
        ),
        ("first_seen", string("First time seen (EVE timestamp)")),
        ("last_seen", string("Last time seen (EVE timestamp)")),
        ("bytes_sent", count("Bytes sent")),
        ("bytes_received", count("Bytes received")),
        ("flows_as_client", count("Flows it started")),
        ("flows_as_server", count("Flows it answered")),
        (
            "open_ports",
            array("Server ports seen answering", count("Port")),
        ),
        (
            "protocols",
            any_object("Application protocols served, by flow count"),
        ),
        ("alerts", count("Alerts where it was source or destination")),
    ])
}

/// A name and its count.
pub(crate) fn name_count() -> Value {
    output(vec![
        ("name", string("Value")),
        ("count", count("Occurrences")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_refuse_extra_fields_and_outputs_require_their_fields() {
        let i = input(vec![("ip", ip("Address"))], &["ip"]);
        assert_eq!(i["additionalProperties"], json!(false));
        assert_eq!(i["required"], json!(["ip"]));
        let o = output(vec![("a", count("A")), ("b", string("B"))]);
        assert_eq!(o["required"], json!(["a", "b"]));
        assert!(netmonitor_mcp::schema::unsupported_keywords(&alert()).is_empty());
        assert!(netmonitor_mcp::schema::unsupported_keywords(&host()).is_empty());
        let w = input(window_props(24), &[]);
        assert!(netmonitor_mcp::schema::validate(&w, &json!({"hours": 3})).is_ok());
        assert!(netmonitor_mcp::schema::validate(&w, &json!({"hours": 0})).is_err());
        assert!(netmonitor_mcp::schema::validate(&w, &json!({"days": 1})).is_err());
    }
}
