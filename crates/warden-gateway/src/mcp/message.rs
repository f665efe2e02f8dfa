//! Reading one JSON-RPC 2.0 message from a request body, strictly, and the
//! bounds on every caller-supplied string that can reach logs, metrics or
//! the audit log.

use serde_json::Value;

use super::refusal::Refusal;
use crate::jsonrpc::{self, Kind};

/// Longest JSON-RPC method name.
const MAX_METHOD_BYTES: usize = 128;
/// Longest string id (ids are echoed back and kept while a call runs).
const MAX_ID_BYTES: usize = 256;
/// Longest tool or prompt name (exposed names included).
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Longest resource URI.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Longest path slug (`/mcp/servers/{slug}`, `/mcp/toolsets/{slug}`).
pub(crate) const MAX_SLUG_BYTES: usize = 256;

/// A validated message: its kind and the value itself.
pub(crate) struct Message {
    pub kind: Kind,
    pub value: Value,
}

impl Message {
    pub fn method(&self) -> &str {
        jsonrpc::method(&self.value)
    }
}

/// Parses and checks one JSON-RPC 2.0 message (no batches).
pub(crate) fn parse(body: &[u8]) -> Result<Message, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Refusal::Parse)?;
    check(value)
}

fn check(value: Value) -> Result<Message, Refusal> {
    let obj = match &value {
        Value::Array(_) => return Err(Refusal::Batch),
        Value::Object(obj) => obj,
        _ => return Err(Refusal::InvalidRequest("not a JSON-RPC object")),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Refusal::InvalidRequest("jsonrpc must be \"2.0\""));
    }
    if let Some(id) = obj.get("id") {
        match id {
            Value::String(s) if s.len() > MAX_ID_BYTES => {
                return Err(Refusal::InvalidRequest("id is too long"))
            }
            Value::String(_) => {}
            Value::Number(n) if n.is_i64() || n.is_u64() => {}
            _ => return Err(Refusal::InvalidRequest("id must be a string or an integer")),
        }
    }
    match obj.get("method") {
        None => {}
        Some(Value::String(m)) if m.len() > MAX_METHOD_BYTES => {
            return Err(Refusal::InvalidRequest("method is too long"))
        }
        Some(Value::String(m)) if m.is_empty() => {
            return Err(Refusal::InvalidRequest("method is empty"))
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(Refusal::InvalidRequest("method must be a string")),
    }
    if let Some(params) = obj.get("params") {
        if obj.contains_key("method") && !params.is_object() {
            return Err(Refusal::InvalidRequest("params must be an object"));
        }
    }
    let kind = jsonrpc::kind(&value);
    if kind == Kind::Invalid {
        return Err(Refusal::InvalidRequest(
            "not a request, notification or response",
        ));
    }
    Ok(Message { kind, value })
}

/// A caller-supplied string field, refused when over `max` bytes.
pub(crate) fn bounded<'v>(
    value: &'v str,
    field: &'static str,
    max: usize,
) -> Result<&'v str, Refusal> {
    if value.len() > max {
        Err(Refusal::FieldTooLong {
            field,
            max_bytes: max,
        })
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(body: &str) -> String {
        match parse(body.as_bytes()) {
            Ok(_) => "ok".into(),
            Err(r) => r.reason().to_owned(),
        }
    }

    #[test]
    fn only_json_rpc_2_0() {
        assert_eq!(reason(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), "ok");
        assert_eq!(
            reason(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            "invalid_request"
        );
        assert_eq!(reason(r#"{"id":1,"method":"ping"}"#), "invalid_request");
        assert_eq!(
            reason(r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#),
            "invalid_request"
        );
    }

    #[test]
    fn ids_are_strings_or_integers() {
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#),
            "ok"
        );
        for id in ["null", "{}", "[1]", "true", "1.5"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert_eq!(reason(&body), "invalid_request", "id {id}");
        }
        let long = json!({"jsonrpc":"2.0","id":"x".repeat(MAX_ID_BYTES + 1),"method":"ping"});
        assert_eq!(reason(&long.to_string()), "invalid_request");
    }

    #[test]
    fn methods_and_params_have_shapes() {
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            "invalid_request"
        );
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","id":1,"method":""}"#),
            "invalid_request"
        );
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            "invalid_request"
        );
        let long = json!({"jsonrpc":"2.0","id":1,"method":"m".repeat(MAX_METHOD_BYTES + 1)});
        assert_eq!(reason(&long.to_string()), "invalid_request");
        assert_eq!(reason("[]"), "batch_not_supported");
        assert_eq!(reason("{"), "parse_error");
        assert_eq!(reason(r#"{"jsonrpc":"2.0","id":1}"#), "invalid_request");
    }

    #[test]
    fn notifications_and_responses_pass() {
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            "ok"
        );
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","id":"warden:a:1","result":{}}"#),
            "ok"
        );
    }

    #[test]
    fn bounded_names_the_field() {
        assert!(bounded("abc", "params.name", 3).is_ok());
        let err = bounded("abcd", "params.name", 3)
            .err()
            .map(|r| r.reason().to_owned());
        assert_eq!(err.as_deref(), Some("field_too_long"));
    }
}
