//! JSON-RPC 2.0 framing: message classification, request ids, and the one table of error codes
//! (JSON-RPC's own plus the MCP and implementation-defined ones) used by every transport.

use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available in this protocol revision.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (also: unknown tool, bad cursor, unknown prompt).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error on the server.
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined transport error (bad headers, missing session, rate limit), as the
/// TypeScript SDK uses it.
pub const SERVER_ERROR: i64 = -32000;
/// Implementation-defined: the session id is unknown or terminated (HTTP 404).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// Resource not found (protocol revisions up to 2025-11-25; 2026-07-28 uses -32602).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// 2026-07-28: HTTP headers do not match the body, or a required header is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not supported (`data.supported`, `data.requested`).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// Implementation-defined: the request was cancelled before it finished.
pub const REQUEST_CANCELLED: i64 = -32800;

/// A JSON-RPC request id: a string or an integer (MCP forbids null).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestId {
    /// A numeric id, kept as the signed or unsigned integer the client sent.
    Num(NumId),
    /// A string id.
    Str(String),
}

/// An integer id in the full range JSON clients use (u64 ids above i64::MAX exist in the wild).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumId {
    /// Negative or small ids.
    Signed(i64),
    /// Ids above i64::MAX.
    Unsigned(u64),
}

impl RequestId {
    /// Parses an id from JSON; `None` for null, floats, booleans, objects or arrays.
    pub fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(RequestId::Str(s.clone())),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(RequestId::Num(NumId::Signed(i)))
                } else {
                    n.as_u64().map(|u| RequestId::Num(NumId::Unsigned(u)))
                }
            }
            _ => None,
        }
    }

    /// The id as JSON, exactly as the client sent it.
    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Str(s) => Value::String(s.clone()),
            RequestId::Num(NumId::Signed(i)) => json!(i),
            RequestId::Num(NumId::Unsigned(u)) => json!(u),
        }
    }

    /// A map key that keeps `1` and `"1"` apart (used to find in-flight requests to cancel).
    pub fn key(&self) -> String {
        match self {
            RequestId::Str(s) => format!("s:{s}"),
            RequestId::Num(NumId::Signed(i)) => format!("n:{i}"),
            RequestId::Num(NumId::Unsigned(u)) => format!("n:{u}"),
        }
    }
}

/// A protocol-level error answered as a JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// One short sentence for humans.
    pub message: String,
    /// Optional structured detail.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Shorthand for -32602.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// The JSON `error` member.
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), json!(self.code));
        obj.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            obj.insert("data".into(), d.clone());
        }
        Value::Object(obj)
    }
}

/// A method's result as it leaves dispatch: a JSON value, or an object already encoded as JSON
/// text. Tool results take the second form so their structured content is encoded once (and a
/// reusable result is shared by reference), instead of being copied into a response tree and
/// serialized twice.
#[derive(Clone, Debug)]
pub enum ResultBody {
    /// Any result built as a value.
    Value(Value),
    /// A complete JSON object, produced by this crate's own serializer.
    Encoded(Arc<[u8]>),
}

impl ResultBody {
    /// The result as a value (decodes an encoded one; used where a result must be amended).
    pub fn into_value(self) -> Value {
        match self {
            ResultBody::Value(v) => v,
            ResultBody::Encoded(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        }
    }
}

/// A response or notification serialized for the wire, as every transport sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The JSON text.
    pub json: Vec<u8>,
    /// The JSON-RPC error code when this is an error response (the 2026-07-28 HTTP transport
    /// maps it to a status).
    pub error_code: Option<i64>,
}

impl Reply {
    /// A success response.
    pub fn result(id: &RequestId, result: &ResultBody) -> Reply {
        let mut json = Vec::with_capacity(match result {
            ResultBody::Encoded(b) => b.len() + 64,
            ResultBody::Value(_) => 256,
        });
        json.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        write_json(&mut json, &id.to_value());
        json.extend_from_slice(br#","result":"#);
        match result {
            ResultBody::Value(v) => write_json(&mut json, v),
            ResultBody::Encoded(b) => json.extend_from_slice(b),
        }
        json.push(b'}');
        Reply {
            json,
            error_code: None,
        }
    }

    /// An error response (`id` `None`: serialized as null).
    pub fn error(id: Option<&RequestId>, err: &RpcError) -> Reply {
        Reply {
            json: encode(&error_response(id, err)),
            error_code: Some(err.code),
        }
    }
}

/// A JSON-RPC batch answer: the replies as one array.
pub fn encode_batch(replies: &[Reply]) -> Vec<u8> {
    let mut out = Vec::with_capacity(replies.iter().map(|r| r.json.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, r) in replies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&r.json);
    }
    out.push(b']');
    out
}

/// A value as JSON text (serde's writer path: several times faster than `Display`).
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut Vec<u8>, v: &Value) {
    // writing a Value into a Vec cannot fail: its map keys are strings
    let _ = serde_json::to_writer(out, v);
}

/// A `tools/call` result encoded once: the structured content and its text copy (the same JSON,
/// escaped as a string) around a single serialization of `structured`.
pub fn encode_tool_result(structured: &Value) -> Arc<[u8]> {
    let text = encode(structured);
    let mut out = Vec::with_capacity(text.len() * 2 + 96);
    out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
    // the text is our own serializer's output, hence valid UTF-8
    let _ = serde_json::to_writer(&mut out, std::str::from_utf8(&text).unwrap_or_default());
    out.extend_from_slice(br#"}],"structuredContent":"#);
    out.extend_from_slice(&text);
    out.extend_from_slice(br#","isError":false}"#);
    out.into()
}

/// A JSON object from owned values. Use it instead of `json!` when a field is already a
/// [`Value`]: `json!` copies every interpolated expression through the serializer, which for a
/// large tool result costs more than building it did.
pub fn json_object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (k, v) in fields {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

/// A full error response; `id` is `None` when the request id could not be read (serialized as
/// `"id": null`, as JSON-RPC requires).
pub fn error_response(id: Option<&RequestId>, err: &RpcError) -> Value {
    json_object([
        ("jsonrpc", Value::from("2.0")),
        ("id", id.map(RequestId::to_value).unwrap_or(Value::Null)),
        ("error", err.to_value()),
    ])
}

/// A notification from server to client.
pub fn notification(method: &str, params: Value) -> Value {
    json_object([
        ("jsonrpc", Value::from("2.0")),
        ("method", Value::from(method)),
        ("params", params),
    ])
}

/// One classified JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A request expecting a response.
    Request {
        /// The client's id.
        id: RequestId,
        /// Method name.
        method: String,
        /// `params` (an object, or absent).
        params: Option<Map<String, Value>>,
    },
    /// A notification (no id, no response).
    Notification {
        /// Method name.
        method: String,
        /// `params` (an object, or absent).
        params: Option<Map<String, Value>>,
    },
    /// A response to a server-initiated request; this server sends none, so these are accepted
    /// and dropped.
    Response,
}

/// Why a JSON value is not a usable JSON-RPC message, with the id when one could be read.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidMessage {
    /// The request id, if it was readable.
    pub id: Option<RequestId>,
    /// The error to answer.
    pub error: RpcError,
}

fn invalid(id: Option<RequestId>, code: i64, msg: &str) -> InvalidMessage {
    InvalidMessage {
        id,
        error: RpcError::new(code, msg),
    }
}

/// Classifies one JSON value as a request, notification or response (JSON-RPC 2.0 §4–5 with
/// MCP's rule that ids are strings or integers, never null). Takes the value by value so the
/// params move out without a copy.
pub fn classify(v: Value) -> Result<Message, InvalidMessage> {
    let Value::Object(mut obj) = v else {
        return Err(invalid(
            None,
            INVALID_REQUEST,
            "Invalid Request: expected a JSON-RPC object",
        ));
    };
    let id = match obj.get("id") {
        None => None,
        Some(raw) => match RequestId::from_value(raw) {
            Some(id) => Some(id),
            None => {
                return Err(invalid(
                    None,
                    INVALID_REQUEST,
                    "Invalid Request: id must be a string or an integer",
                ))
            }
        },
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(
            id,
            INVALID_REQUEST,
            "Invalid Request: jsonrpc must be \"2.0\"",
        ));
    }
    match obj.remove("method") {
        Some(Value::String(method)) => {
            let params = match obj.remove("params") {
                // absent, or null as some clients send it
                None | Some(Value::Null) => None,
                Some(Value::Object(p)) => Some(p),
                Some(Value::Array(_)) => {
                    return Err(invalid(
                        id,
                        INVALID_PARAMS,
                        "Invalid params: MCP methods take named parameters (an object)",
                    ))
                }
                Some(_) => {
                    return Err(invalid(
                        id,
                        INVALID_REQUEST,
                        "Invalid Request: params must be an object",
                    ))
                }
            };
            Ok(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            })
        }
        Some(_) => Err(invalid(
            id,
            INVALID_REQUEST,
            "Invalid Request: method must be a string",
        )),
        None => {
            let is_response =
                id.is_some() && (obj.contains_key("result") ^ obj.contains_key("error"));
            if is_response {
                Ok(Message::Response)
            } else {
                Err(invalid(
                    id,
                    INVALID_REQUEST,
                    "Invalid Request: missing method",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or(Value::Null)
    }

    #[test]
    fn classifies_request_notification_response() {
        let m = classify(parse(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#));
        assert_eq!(
            m,
            Ok(Message::Request {
                id: RequestId::Num(NumId::Signed(7)),
                method: "ping".into(),
                params: None
            })
        );
        let n = classify(parse(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ));
        assert!(matches!(n, Ok(Message::Notification { .. })));
        let r = classify(parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#));
        assert_eq!(r, Ok(Message::Response));
    }

    #[test]
    fn rejects_null_and_float_ids_and_bad_versions() {
        let e = classify(parse(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#));
        assert_eq!(e.map_err(|e| e.error.code), Err(INVALID_REQUEST));
        let e = classify(parse(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#));
        assert_eq!(e.map_err(|e| e.error.code), Err(INVALID_REQUEST));
        let e = classify(parse(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#));
        let err = e.err();
        assert_eq!(err.as_ref().map(|e| e.error.code), Some(INVALID_REQUEST));
        assert_eq!(
            err.and_then(|e| e.id),
            Some(RequestId::Num(NumId::Signed(3)))
        );
        let e = classify(parse(
            r#"{"jsonrpc":"2.0","id":3,"method":"x","params":[1]}"#,
        ));
        assert_eq!(e.map_err(|e| e.error.code), Err(INVALID_PARAMS));
        let e = classify(parse(r#"[1,2]"#));
        assert_eq!(e.map_err(|e| e.error.code), Err(INVALID_REQUEST));
    }

    #[test]
    fn huge_unsigned_ids_round_trip() {
        let v = parse(r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#);
        match classify(v) {
            Ok(Message::Request { id, .. }) => {
                assert_eq!(id.to_value(), json!(18446744073709551615u64));
                assert_eq!(id.key(), "n:18446744073709551615");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn error_response_has_null_id_when_unknown() {
        let v = error_response(None, &RpcError::new(PARSE_ERROR, "Parse error"));
        assert_eq!(v["id"], Value::Null);
        assert!(v.as_object().map(|o| o.contains_key("id")).unwrap_or(false));
        assert_eq!(v["error"]["code"], json!(PARSE_ERROR));
    }
}
