//! Where each message from an upstream goes: a response to its pending
//! request; a notification or a server-to-client request to the client it
//! belongs to. On the shared connection that is the request whose response
//! stream carried it (or the one request in flight, or nobody); on a
//! caller link everything belongs to that link's one caller.

use serde_json::{json, Value};

use super::{lock, ClientSink, Upstream};
use crate::jsonrpc::ValueExt;
use crate::jsonrpc::{self, Kind};

impl Upstream {
    /// Answers a request the upstream sent a client (`warden_id` is the id
    /// the client saw). Returns false if no such request is pending.
    pub fn answer_server_request(&self, warden_id: &str, mut response: Value) -> bool {
        let Some(original) = lock(&self.server_requests).remove(warden_id) else {
            return false;
        };
        response["id"] = original;
        self.send_oneway(response);
        true
    }

    /// Handles one message from the upstream. `via`: the request whose
    /// response stream carried it, if known.
    pub(crate) fn dispatch(&self, msg: Value, via: Option<u64>) {
        match jsonrpc::kind(&msg) {
            Kind::Response => {
                let Some(id) = msg.get("id").and_then(Value::as_u64) else {
                    tracing::debug!(server = %self.config.slug, "response with a foreign id ignored");
                    return;
                };
                self.complete(id, Ok(msg));
            }
            Kind::Notification => self.dispatch_notification(msg, via),
            Kind::Request => self.dispatch_request(msg, via),
            Kind::Invalid => {
                tracing::debug!(server = %self.config.slug, "invalid JSON-RPC message from upstream ignored");
            }
        }
    }

    /// The client stream of the request a message is about: the one whose
    /// response stream carried it; on the shared connection, failing that,
    /// the one request in flight.
    fn target_sink(&self, via: Option<u64>) -> (Option<ClientSink>, Option<Value>) {
        let target = match &self.caller {
            Some(_) => via,
            None => via.or_else(|| self.sole_pending_with_sink()),
        };
        let (sink, declared) = match target {
            None => (None, None),
            Some(id) => match lock(&self.pending).get(&id) {
                None => (None, None),
                Some(p) => (p.sink.clone(), p.declared.clone()),
            },
        };
        match &self.caller {
            // A caller link's caller declared these at its `initialize`.
            Some(c) => (sink, Some(c.capabilities.clone())),
            None => (sink, declared),
        }
    }

    /// Delivers a message to its client: `sink`, else on a caller link the
    /// owner session's stream, else any of the owner's requests in flight
    /// with a stream (all of them are the same caller's). Gives the message
    /// back if nobody could take it.
    fn deliver(&self, msg: Value, sink: Option<ClientSink>) -> Result<(), Value> {
        let msg = match sink {
            Some(sink) => match sink.send(msg) {
                Ok(()) => return Ok(()),
                Err(e) => e.0,
            },
            None => msg,
        };
        let Some(caller) = &self.caller else {
            return Err(msg);
        };
        if (caller.owner)(&msg) {
            return Ok(());
        }
        let any = lock(&self.pending)
            .values()
            .find_map(|p| p.sink.clone().filter(|s| !s.is_closed()));
        match any {
            Some(sink) => sink.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }

    fn dispatch_request(&self, mut msg: Value, via: Option<u64>) {
        let (sink, declared) = self.target_sink(via);
        if let Some(capability) = undeclared_capability(&msg, declared.as_ref()) {
            let id = msg.get("id").cloned().unwrap_or(Value::Null);
            self.send_oneway(jsonrpc::error(
                id,
                jsonrpc::code::METHOD_NOT_FOUND,
                format!("the client did not declare the {capability} capability"),
                None,
            ));
            return;
        }
        if self.caller.is_none() && sink.is_none() {
            return self.answer_locally(msg);
        }
        let n = self.next_request_id();
        // Caller links number apart from the shared connection, so a
        // client's answer finds the one connection that asked.
        let ours = match &self.caller {
            Some(_) => format!("warden:{}:c{n}", self.config.slug),
            None => format!("warden:{}:{n}", self.config.slug),
        };
        let theirs = std::mem::replace(&mut msg["id"], Value::String(ours.clone()));
        lock(&self.server_requests).insert(ours.clone(), theirs);
        if let Err(mut msg) = self.deliver(msg, sink) {
            if let Some(theirs) = lock(&self.server_requests).remove(&ours) {
                msg["id"] = theirs;
            }
            self.answer_locally(msg);
        }
    }

    /// Where a message that arrived on no request's stream (stdio, or the
    /// standalone HTTP stream) may go on the shared connection: the one
    /// request in flight on this upstream, if it has a client stream. With
    /// two or more in flight the message could belong to any of them,
    /// possibly another principal's, so it goes to none.
    fn sole_pending_with_sink(&self) -> Option<u64> {
        let pending = lock(&self.pending);
        if pending.len() != 1 {
            return None;
        }
        pending
            .iter()
            .find(|(_, p)| p.sink.is_some())
            .map(|(id, _)| *id)
    }

    /// Requests from the upstream that no client can answer.
    fn answer_locally(&self, msg: Value) {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let reply = match jsonrpc::method(&msg) {
            "ping" => jsonrpc::result(id, json!({})),
            "roots/list" => jsonrpc::result(id, json!({"roots": []})),
            other => jsonrpc::error(
                id,
                jsonrpc::code::METHOD_NOT_FOUND,
                format!("{other} is not available outside a client request"),
                None,
            ),
        };
        self.send_oneway(reply);
    }

    fn dispatch_notification(&self, mut msg: Value, via: Option<u64>) {
        let method = jsonrpc::method(&msg).to_owned();
        match method.as_str() {
            "notifications/tools/list_changed" => match &self.caller {
                // The catalog lives on the shared connection.
                Some(c) => {
                    if let Some(shared) = c.shared.upgrade() {
                        shared.wake.notify_one();
                    }
                }
                None => self.wake.notify_one(),
            },
            "notifications/progress" => {
                let token = msg
                    .at(&["params", "progressToken"])
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let Some(token) = token else { return };
                let Some(id) = lock(&self.progress_routes).get(&token).copied() else {
                    return;
                };
                let pending = lock(&self.pending);
                if let Some(p) = pending.get(&id) {
                    if let (Some(sink), Some((_, theirs))) = (&p.sink, &p.progress) {
                        msg["params"]["progressToken"] = theirs.clone();
                        let _ = sink.send(msg);
                    }
                }
            }
            "notifications/cancelled" => {}
            // Logging, `resources/updated`, prompt and resource
            // `list_changed`, anything else.
            _ => {
                let (sink, _) = self.target_sink(via);
                let _ = self.deliver(msg, sink);
            }
        }
    }
}

/// The capability a server-to-client request needs that the caller did not
/// declare, if any (`declared: None`: not known, nothing is refused).
fn undeclared_capability(msg: &Value, declared: Option<&Value>) -> Option<&'static str> {
    let needed = match jsonrpc::method(msg) {
        "sampling/createMessage" => "sampling",
        "elicitation/create" => "elicitation",
        "roots/list" => "roots",
        _ => return None,
    };
    let declared = declared?;
    declared.get(needed).is_none().then_some(needed)
}
