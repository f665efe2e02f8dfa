//! Small helpers over JSON-RPC 2.0 messages kept as `serde_json::Value`, so
//! fields Warden does not interpret pass through untouched.

use serde_json::{json, Map, Value};

/// JSON-RPC error codes used by the gateway.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Also "Unknown tool": MCP uses invalid params for denied/unknown tools.
    pub const INVALID_PARAMS: i64 = -32602;
    /// An upstream server failed (down, slow, garbage, too large).
    pub const UPSTREAM_ERROR: i64 = -32001;
    /// The policy snapshot of this replica cannot be vouched for.
    pub const POLICY_STALE: i64 = -32002;
    /// A listen stream ended because the caller's access ended.
    pub const ACCESS_ENDED: i64 = -32003;
    /// A call was not forwarded because its decision could not be recorded.
    pub const AUDIT_UNAVAILABLE: i64 = -32004;
    /// A rate or concurrency limit refused a permitted call.
    pub const LIMITED: i64 = -32005;
    /// 2025-11-25 `URLElicitationRequiredError`: the person must open a
    /// URL (Warden's consent page) before the call can succeed.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// Warden's own: the caller's upstream credentials are not usable
    /// (2026-07-28 clients that cannot take an elicitation; a server that
    /// needs a person; an unreachable authorization server).
    pub const CREDENTIALS_REQUIRED: i64 = -32006;
    /// The client cancelled the request.
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// 2026-07-28: an HTTP header disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability it did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the requested protocol version is not served.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A message as a response body: written straight into bytes (`Value`'s
/// `Display`, which `to_string` uses, goes through `fmt` one piece at a
/// time).
pub fn to_body(msg: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail (its keys are strings).
    serde_json::to_vec(msg).unwrap_or_default()
}

/// A nested member by its keys: `Value::pointer` without its allocations
/// (`pointer` copies each segment into a `String` to unescape it, which
/// shows in the request path's profile). Objects only: no array indexes.
pub trait ValueExt {
    fn at(&self, keys: &[&str]) -> Option<&Value>;
}

impl ValueExt for Value {
    fn at(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().try_fold(self, |v, k| v.get(*k))
    }
}

/// What kind of JSON-RPC message a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid,
}

pub fn kind(msg: &Value) -> Kind {
    let Some(obj) = msg.as_object() else {
        return Kind::Invalid;
    };
    match (
        obj.get("method").and_then(Value::as_str),
        obj.contains_key("id"),
    ) {
        (Some(_), true) => Kind::Request,
        (Some(_), false) => Kind::Notification,
        (None, true) if obj.contains_key("result") || obj.contains_key("error") => Kind::Response,
        _ => Kind::Invalid,
    }
}

pub fn method(msg: &Value) -> &str {
    msg.get("method").and_then(Value::as_str).unwrap_or("")
}

pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error(id: Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    let mut err = Map::new();
    err.insert("code".into(), code.into());
    err.insert("message".into(), Value::String(message.into()));
    if let Some(data) = data {
        err.insert("data".into(), data);
    }
    json!({"jsonrpc": "2.0", "id": id, "error": Value::Object(err)})
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut obj = Map::new();
    obj.insert("jsonrpc".into(), "2.0".into());
    obj.insert("method".into(), method.into());
    if let Some(p) = params {
        obj.insert("params".into(), p);
    }
    Value::Object(obj)
}

/// A JSON-RPC id as a map key (ids are strings or numbers).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// Merges `entries` into `obj["_meta"]`, creating it if needed, leaving other
/// `_meta` entries as they were.
pub fn merge_meta(obj: &mut Value, entries: impl IntoIterator<Item = (String, Value)>) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let meta = map
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        for (k, v) in entries {
            meta.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_finds_nested_members_like_pointer() {
        let v = json!({"error": {"code": -32021, "data": {"a/b": 1}}, "list": [1]});
        for (keys, pointer) in [
            (&["error", "code"][..], "/error/code"),
            (&["error", "missing"][..], "/error/missing"),
            (&["error", "code", "deeper"][..], "/error/code/deeper"),
        ] {
            assert_eq!(v.at(keys), v.pointer(pointer), "{pointer}");
        }
        assert_eq!(v.at(&["error", "code"]), Some(&json!(-32021)));
        // Keys are taken as they are: no JSON pointer escapes.
        assert_eq!(v.at(&["error", "data", "a/b"]), Some(&json!(1)));
        assert_eq!(v.at(&[]), Some(&v));
    }

    #[test]
    fn classifies_messages() {
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","id":1,"method":"x"})),
            Kind::Request
        );
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","method":"x"})),
            Kind::Notification
        );
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","id":1,"result":{}})),
            Kind::Response
        );
        assert_eq!(kind(&json!({"jsonrpc":"2.0","id":1})), Kind::Invalid);
        assert_eq!(kind(&json!([1])), Kind::Invalid);
    }

    #[test]
    fn merge_meta_keeps_other_fields_and_order() {
        let mut v = json!({"content": [], "_meta": {"a": 1}, "z": true});
        merge_meta(&mut v, [("b".to_string(), json!(2))]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"content":[],"_meta":{"a":1,"b":2},"z":true}"#
        );
    }
}
