//! The two wires at the front door: which protocol era a POST speaks, and
//! the per-request rules of the stateless revision (2026-07-28): every
//! request carries its protocol version and the client's capabilities in
//! `_meta`, and the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
//! headers, when sent, say what the body says.

use axum::http::HeaderMap;
use base64::Engine;
use serde_json::Value;

use super::admission::header_str;
use super::refusal::{Refusal, MAX_ECHOED_VERSION};
use super::{SESSION_HEADER, SESSION_VERSIONS};
use crate::jsonrpc;
use crate::jsonrpc::ValueExt;
use crate::upstream::{META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, STATELESS_VERSION};

pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";
pub(crate) const METHOD_HEADER: &str = "mcp-method";
pub(crate) const NAME_HEADER: &str = "mcp-name";
/// Longest `Mcp-Name` read (a URI can be long; see `MAX_URI_BYTES`).
const MAX_NAME_HEADER_BYTES: usize = 12 * 1024;

/// Is this POST on the stateless wire? A session-era version header or a
/// session id means the session era; any other version header (2026-07-28
/// or one Warden does not serve), a protocol version in `_meta`, or a
/// method only the stateless revision has means the stateless wire.
pub(crate) fn is_stateless(headers: &HeaderMap, msg: &Value) -> bool {
    let header = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    if header.is_some_and(|v| SESSION_VERSIONS.contains(&v)) || headers.contains_key(SESSION_HEADER)
    {
        return false;
    }
    header.is_some()
        || msg
            .at(&["params", "_meta"])
            .and_then(|m| m.get(META_PROTOCOL_VERSION))
            .is_some()
        || matches!(
            jsonrpc::method(msg),
            "server/discover" | "subscriptions/listen"
        )
}

/// The rules every stateless request must meet, in the order the
/// revision's errors are told apart: missing `_meta` fields (-32602), a
/// version header that disagrees with `_meta` (-32020), a version not
/// served (-32022), then the method and name headers (-32020).
pub(crate) fn check_request(headers: &HeaderMap, msg: &Value) -> Result<(), Refusal> {
    let Some(meta) = msg.at(&["params", "_meta"]).and_then(Value::as_object) else {
        return Err(Refusal::MetaInvalid("params._meta is required"));
    };
    let Some(version) = meta.get(META_PROTOCOL_VERSION).and_then(Value::as_str) else {
        return Err(Refusal::MetaInvalid(
            "params._meta.io.modelcontextprotocol/protocolVersion is required",
        ));
    };
    if !meta
        .get(META_CLIENT_CAPABILITIES)
        .is_some_and(Value::is_object)
    {
        return Err(Refusal::MetaInvalid(
            "params._meta.io.modelcontextprotocol/clientCapabilities is required",
        ));
    }
    if let Some(header) = header_str(headers, VERSION_HEADER, MAX_ECHOED_VERSION)? {
        if header != version {
            return Err(Refusal::HeaderMismatch("MCP-Protocol-Version"));
        }
    } else if headers.contains_key(VERSION_HEADER) {
        return Err(Refusal::HeaderMismatch("MCP-Protocol-Version"));
    }
    if version != STATELESS_VERSION {
        let mut requested = version.to_owned();
        if requested.len() > MAX_ECHOED_VERSION {
            let mut end = MAX_ECHOED_VERSION;
            while !requested.is_char_boundary(end) {
                end -= 1;
            }
            requested.truncate(end);
        }
        return Err(Refusal::UnsupportedVersion { requested });
    }
    check_headers(headers, msg)
}

/// `Mcp-Method` must be sent with every request and notification and name
/// its method; `Mcp-Name` must be sent when the body names a tool, prompt,
/// resource or task, and name it (case-sensitive; the `=?base64?…?=` form
/// decoded). A client's response to a request carries neither.
pub(crate) fn check_headers(headers: &HeaderMap, msg: &Value) -> Result<(), Refusal> {
    let method = jsonrpc::method(msg);
    if method.is_empty() {
        return Ok(());
    }
    if header_str(headers, METHOD_HEADER, 256)? != Some(method) {
        return Err(Refusal::HeaderMismatch("Mcp-Method"));
    }
    let field = match method {
        "tools/call" | "prompts/get" => ["params", "name"],
        "resources/read" => ["params", "uri"],
        // `tasks/result` is not a method of this wire (the tasks extension
        // removed it): answered -32601 like any unknown method, whatever
        // its headers say.
        "tasks/get" | "tasks/update" | "tasks/cancel" => ["params", "taskId"],
        _ => return Ok(()),
    };
    let named = msg.at(&field).and_then(Value::as_str);
    let sent = header_str(headers, NAME_HEADER, MAX_NAME_HEADER_BYTES)?;
    match (named, sent) {
        (None, _) => Ok(()),
        (Some(name), Some(raw)) if decode_header_value(raw).as_deref() == Some(name) => Ok(()),
        _ => Err(Refusal::HeaderMismatch("Mcp-Name")),
    }
}

/// A value as an MCP header carries it: as it is when it is printable ASCII
/// without surrounding spaces (and does not look encoded), else
/// `=?base64?…?=` over its UTF-8 bytes.
pub(crate) fn encode_header_value(value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        value.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// A header value as sent: plain, or `=?base64?…?=` over its UTF-8 bytes
/// (values that cannot ride in a header as they are). `None` when the
/// encoded form does not decode.
fn decode_header_value(raw: &str) -> Option<String> {
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        None => Some(raw.to_owned()),
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn meta() -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        })
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn reason(h: &HeaderMap, msg: &Value) -> String {
        match check_request(h, msg) {
            Ok(()) => "ok".into(),
            Err(r) => r.reason().to_owned(),
        }
    }

    #[test]
    fn the_era_follows_the_version_header_the_session_and_the_meta() {
        let plain = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert!(!is_stateless(&HeaderMap::new(), &plain));
        let v = |v: &str| headers(&[("mcp-protocol-version", v)]);
        assert!(!is_stateless(&v("2025-11-25"), &plain));
        assert!(is_stateless(&v("2026-07-28"), &plain));
        assert!(is_stateless(&v("v999.0.0"), &plain));
        let with_session = headers(&[
            ("mcp-protocol-version", "v999.0.0"),
            ("mcp-session-id", "s"),
        ]);
        assert!(!is_stateless(&with_session, &plain));
        let with_meta =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta()}});
        assert!(is_stateless(&HeaderMap::new(), &with_meta));
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25"}});
        assert!(!is_stateless(&HeaderMap::new(), &init));
    }

    #[test]
    fn meta_must_carry_the_version_and_the_capabilities() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "server/discover"),
        ]);
        let m = |params: Value| json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": params});
        assert_eq!(reason(&h, &m(json!({}))), "meta_invalid");
        let no_version = json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}});
        assert_eq!(reason(&h, &m(no_version)), "meta_invalid");
        let no_caps = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        assert_eq!(reason(&h, &m(no_caps)), "meta_invalid");
        assert_eq!(reason(&h, &m(json!({"_meta": meta()}))), "ok");
        let method_only = headers(&[("mcp-method", "server/discover")]);
        assert_eq!(reason(&method_only, &m(json!({"_meta": meta()}))), "ok");
    }

    #[test]
    fn a_disagreeing_header_is_a_mismatch_before_the_version_is_judged() {
        let body = |v: &str| {
            json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": v,
                                 "io.modelcontextprotocol/clientCapabilities": {}}}})
        };
        let h = headers(&[("mcp-protocol-version", "2026-07-28")]);
        assert_eq!(reason(&h, &body("v999.0.0")), "header_mismatch");
        let h = headers(&[("mcp-protocol-version", "v999.0.0")]);
        match check_request(&h, &body("v999.0.0")) {
            Err(Refusal::UnsupportedVersion { requested }) => assert_eq!(requested, "v999.0.0"),
            other => panic!("{other:?}"),
        }
        let long = "9".repeat(500);
        match check_request(&HeaderMap::new(), &body(&long)) {
            Err(Refusal::UnsupportedVersion { requested }) => {
                assert_eq!(requested.len(), MAX_ECHOED_VERSION)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn method_and_name_headers_must_be_sent_and_match_the_body() {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "_meta": meta()}});
        let sent = |method: &str, name: Option<&str>| {
            let mut h = headers(&[("mcp-method", method)]);
            if let Some(n) = name {
                h.insert("mcp-name", HeaderValue::from_str(n).unwrap());
            }
            h
        };
        assert_eq!(reason(&sent("tools/call", Some("echo")), &call), "ok");
        assert_eq!(
            reason(&sent("tools/list", Some("echo")), &call),
            "header_mismatch"
        );
        assert_eq!(
            reason(&sent("TOOLS/CALL", Some("echo")), &call),
            "header_mismatch"
        );
        assert_eq!(reason(&sent("tools/call", None), &call), "header_mismatch");
        assert_eq!(
            reason(&sent("tools/call", Some("other")), &call),
            "header_mismatch"
        );
        assert_eq!(
            reason(&headers(&[("mcp-name", "echo")]), &call),
            "header_mismatch"
        );
        // "echo" in the base64 sentinel form.
        assert_eq!(
            reason(&sent("tools/call", Some("=?base64?ZWNobw==?=")), &call),
            "ok"
        );
        assert_eq!(
            reason(&sent("tools/call", Some("=?base64?***?=")), &call),
            "header_mismatch"
        );
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read",
            "params": {"uri": "file:///a", "_meta": meta()}});
        assert_eq!(
            reason(&sent("resources/read", Some("file:///a")), &read),
            "ok"
        );
        assert_eq!(
            reason(&sent("resources/read", Some("file:///b")), &read),
            "header_mismatch"
        );
        // A method this wire does not have names nothing.
        let removed = json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/result",
            "params": {"taskId": "t", "_meta": meta()}});
        assert_eq!(reason(&sent("tasks/result", None), &removed), "ok");
        let get = json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/get",
            "params": {"taskId": "t", "_meta": meta()}});
        assert_eq!(reason(&sent("tasks/get", None), &get), "header_mismatch");
        // A response carries neither header.
        let answer = json!({"jsonrpc": "2.0", "id": "warden:x:1", "result": {}});
        assert!(check_headers(&HeaderMap::new(), &answer).is_ok());
    }

    #[test]
    fn names_that_cannot_ride_in_a_header_are_base64_encoded() {
        assert_eq!(encode_header_value("echo"), "echo");
        let odd = "grüß ";
        let encoded = encode_header_value(odd);
        assert!(encoded.starts_with("=?base64?"), "{encoded}");
        assert_eq!(decode_header_value(&encoded).as_deref(), Some(odd));
        let lookalike = "=?base64?x?=";
        assert_eq!(
            decode_header_value(&encode_header_value(lookalike)).as_deref(),
            Some(lookalike)
        );
    }
}
