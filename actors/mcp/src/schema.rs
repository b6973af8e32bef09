//! A small JSON Schema validator for the subset tool schemas use: `type` (object, string,
//! integer, number, boolean, array, null; or a list of them), `properties`, `required`,
//! `additionalProperties` (false or a schema), `enum`, `const`, `minimum`/`maximum` (and the
//! exclusive forms), `minLength`/`maxLength`, `items`, `minItems`/`maxItems`. Annotation keywords
//! are ignored; any other validation keyword is refused when a tool is registered, so nothing is
//! silently left unchecked.

use serde_json::{Map, Value};
use std::fmt;

/// Keywords understood (validated or pure annotations).
const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    // annotations
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Deepest schema nesting followed (tool schemas are shallow; this bounds recursion).
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// An instance that does not match its schema, naming where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON path of the offending value (`limit`, `hosts[2].ip`; empty for the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "'{}': {}", self.path, self.message)
        }
    }
}

/// Where a value sits in the instance; rendered to text only when there is an error, so valid
/// instances (every tool call's arguments and result) cost no string building.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => match parent.render() {
                p if p.is_empty() => (*key).to_string(),
                p => format!("{p}.{key}"),
            },
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn err(path: &Path<'_>, message: impl Into<String>) -> ValidationError {
    ValidationError {
        path: path.render(),
        message: message.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if is_integer(n) {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().map(|f| f.fract() == 0.0).unwrap_or(false)
}

fn matches_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => matches!(v, Value::Number(n) if is_integer(n)),
        _ => false,
    }
}

/// Validates `instance` against `schema`.
pub fn validate(schema: &Value, instance: &Value) -> Result<(), ValidationError> {
    validate_at(schema, instance, &Path::Root, 0)
}

fn validate_at(
    schema: &Value,
    v: &Value,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), ValidationError> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(err(path, "value nested too deeply"));
    }
    let s = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(err(path, "no value is allowed here")),
        Value::Object(s) => s,
        _ => return Ok(()),
    };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => matches_type(v, t),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| matches_type(v, t)),
            _ => true,
        };
        if !ok {
            let expected = match t {
                Value::String(t) => t.clone(),
                Value::Array(ts) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => String::new(),
            };
            return Err(err(
                path,
                format!("expected {expected}, got {}", type_name(v)),
            ));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.iter().any(|o| json_eq(o, v)) {
            let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
            return Err(err(path, format!("must be one of {}", list.join(", "))));
        }
    }
    if let Some(c) = s.get("const") {
        if !json_eq(c, v) {
            return Err(err(path, format!("must be {c}")));
        }
    }
    match v {
        Value::Number(n) => check_number(s, n, path)?,
        Value::String(st) => check_string(s, st, path)?,
        Value::Array(items) => check_array(s, items, path, depth)?,
        Value::Object(obj) => check_object(s, obj, path, depth)?,
        _ => {}
    }
    Ok(())
}

/// Numeric equality that treats 1 and 1.0 alike, structural otherwise.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) if !(x.is_f64() || y.is_f64()) => x == y || p == q,
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn check_number(
    s: &Map<String, Value>,
    n: &serde_json::Number,
    path: &Path<'_>,
) -> Result<(), ValidationError> {
    let Some(x) = n.as_f64() else { return Ok(()) };
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        if x < min {
            return Err(err(path, format!("must be >= {}", fmt_num(min))));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        if x > max {
            return Err(err(path, format!("must be <= {}", fmt_num(max))));
        }
    }
    if let Some(min) = s.get("exclusiveMinimum").and_then(Value::as_f64) {
        if x <= min {
            return Err(err(path, format!("must be > {}", fmt_num(min))));
        }
    }
    if let Some(max) = s.get("exclusiveMaximum").and_then(Value::as_f64) {
        if x >= max {
            return Err(err(path, format!("must be < {}", fmt_num(max))));
        }
    }
    Ok(())
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn check_string(s: &Map<String, Value>, st: &str, path: &Path<'_>) -> Result<(), ValidationError> {
    let len = || st.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
        if len() < min {
            return Err(err(path, format!("must be at least {min} characters")));
        }
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
        if len() > max {
            return Err(err(path, format!("must be at most {max} characters")));
        }
    }
    Ok(())
}

fn check_array(
    s: &Map<String, Value>,
    items: &[Value],
    path: &Path<'_>,
    depth: usize,
) -> Result<(), ValidationError> {
    let len = items.len() as u64;
    if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
        if len < min {
            return Err(err(path, format!("must have at least {min} items")));
        }
    }
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
        if len > max {
            return Err(err(path, format!("must have at most {max} items")));
        }
    }
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate_at(item_schema, item, &Path::Index(path, i), depth + 1)?;
        }
    }
    Ok(())
}

fn check_object(
    s: &Map<String, Value>,
    obj: &Map<String, Value>,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), ValidationError> {
    if let Some(Value::Array(req)) = s.get("required") {
        for name in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                return Err(err(&Path::Key(path, name), "is required"));
            }
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, val) in obj {
        let sub_path = Path::Key(path, k);
        match props.and_then(|p| p.get(k)) {
            Some(prop_schema) => validate_at(prop_schema, val, &sub_path, depth + 1)?,
            None => match s.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let hint = if known.is_empty() {
                        "no arguments are accepted".to_string()
                    } else {
                        format!("accepted: {}", known.join(", "))
                    };
                    return Err(err(&sub_path, format!("unknown argument ({hint})")));
                }
                Some(extra @ Value::Object(_)) => validate_at(extra, val, &sub_path, depth + 1)?,
                _ => {}
            },
        }
    }
    Ok(())
}

/// Lists keywords in `schema` that this validator does not implement (with their paths), so a
/// tool cannot be registered with constraints that would go unchecked.
pub fn unsupported_keywords(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_keywords(schema, "#", 0, &mut out);
    out
}

fn walk_keywords(schema: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    let Value::Object(s) = schema else { return };
    if depth > MAX_SCHEMA_DEPTH {
        out.push(format!("{path} (too deep)"));
        return;
    }
    for (k, v) in s {
        if k.starts_with("x-") {
            continue;
        }
        if !KNOWN_KEYWORDS.contains(&k.as_str()) {
            out.push(format!("{path}/{k}"));
            continue;
        }
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = v {
                    for (name, sub) in props {
                        walk_keywords(sub, &format!("{path}/properties/{name}"), depth + 1, out);
                    }
                }
            }
            "items" | "additionalProperties" => {
                walk_keywords(v, &format!("{path}/{k}"), depth + 1, out)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "ip": {"type": "string", "minLength": 2, "maxLength": 45},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                "level": {"type": "string", "enum": ["low", "high"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "ratio": {"type": ["number", "null"], "exclusiveMaximum": 1},
                "flag": {"type": "boolean"}
            },
            "required": ["ip"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_valid_instances() {
        let ok = json!({"ip": "10.0.0.1", "limit": 5.0, "level": "low", "tags": ["a"], "ratio": null, "flag": true});
        assert_eq!(validate(&schema(), &ok), Ok(()));
    }

    #[test]
    fn names_the_offending_field() {
        let cases = [
            (json!({}), "ip", "is required"),
            (json!({"ip": 5}), "ip", "expected string, got integer"),
            (
                json!({"ip": "1.1.1.1", "limit": 0}),
                "limit",
                "must be >= 1",
            ),
            (
                json!({"ip": "1.1.1.1", "limit": 2.5}),
                "limit",
                "expected integer, got number",
            ),
            (
                json!({"ip": "1.1.1.1", "level": "mid"}),
                "level",
                "must be one of \"low\", \"high\"",
            ),
            (
                json!({"ip": "1.1.1.1", "tags": ["a", 1]}),
                "tags[1]",
                "expected string, got integer",
            ),
            (
                json!({"ip": "1.1.1.1", "tags": ["a", "b", "c"]}),
                "tags",
                "must have at most 2 items",
            ),
            (json!({"ip": "1.1.1.1", "ratio": 1}), "ratio", "must be < 1"),
            (json!({"ip": "1"}), "ip", "must be at least 2 characters"),
        ];
        for (instance, path, msg) in cases {
            let e = validate(&schema(), &instance).err();
            assert_eq!(
                e.as_ref().map(|e| (e.path.as_str(), e.message.as_str())),
                Some((path, msg)),
                "{instance}"
            );
        }
        let e = validate(&schema(), &json!({"ip": "1.1.1.1", "bogus": 1})).err();
        assert_eq!(e.as_ref().map(|e| e.path.as_str()), Some("bogus"));
        assert!(e.map(|e| e.message.contains("accepted: ")).unwrap_or(false));
    }

    #[test]
    fn reports_unsupported_keywords() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}, "oneOf": []});
        let mut bad = unsupported_keywords(&s);
        bad.sort();
        assert_eq!(bad, vec!["#/oneOf", "#/properties/a/pattern"]);
        assert!(unsupported_keywords(&schema()).is_empty());
    }
}
