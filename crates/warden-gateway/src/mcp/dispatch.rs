//! Session dispatch: what each MCP method means at Warden's front door.
//! Local answers (`initialize`, `server/discover`, `tools/list`, list
//! fan-outs, `subscriptions/listen`) are built here; everything that names
//! a tool, prompt or resource goes through [`Ctx::authorize`] and then
//! [`Ctx::forward`].

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use warden_policy::{Access, Principal, Snapshot};

use super::authorize::{Permit, Subject};
use super::forward::{Finish, Forward};
use super::limits::LimitPermit;
use super::message::{bounded, MAX_NAME_BYTES, MAX_URI_BYTES};
use super::refusal::{json_response, Refusal};
use super::stream::{sse_bounded, ListenerGuard};
use super::{SESSION_HEADER, SESSION_VERSIONS};
use crate::gateway::{allowed_upstream, now_ms, Session, Shared};
use crate::jsonrpc;
use crate::jsonrpc::ValueExt;
use crate::upstream::{Upstream, STATELESS_VERSION};
use crate::view::{prefix_name, prefix_uri, split_uri, Mount, View};

const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` keys Warden adds to allowed call results.
pub const META_DECISION_ID: &str = "warden.dev/decision_id";
pub const META_REVISION: &str = "warden.dev/revision";

/// Everything one admitted request needs.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub snapshot: Arc<Snapshot>,
    pub access: Arc<Access>,
    pub principal: Principal,
    /// The person's identity provider and token, if they signed in.
    pub sign_in: Option<Arc<(String, warden_store::Secret)>>,
    pub mount: Mount,
    /// The session id, or `key:{id}` for stateless requests.
    pub owner: String,
    pub stateless: bool,
    pub wants_sse: bool,
    pub started: Instant,
}

type Answer = Result<Response, Refusal>;

impl Ctx {
    pub(crate) fn view(&self) -> View<'_> {
        View {
            snapshot: &self.snapshot,
            access: &self.access,
            mount: &self.mount,
            toolset: self
                .shared
                .toolset(&self.snapshot, &self.access, &self.mount),
            now_ms: now_ms(),
        }
    }

    /// A local result, with `resultType` for stateless clients.
    fn ok(&self, id: Value, mut result: Value) -> Answer {
        if self.stateless {
            if let Some(obj) = result.as_object_mut() {
                obj.entry("resultType").or_insert_with(|| json!("complete"));
            }
        }
        Ok(json_response(
            StatusCode::OK,
            jsonrpc::to_body(&jsonrpc::result(id, result)),
        ))
    }

    pub(crate) fn notification(&self, msg: &Value) {
        if jsonrpc::method(msg) == "notifications/cancelled" {
            if let Some(request_id) = msg.at(&["params", "requestId"]) {
                self.shared
                    .cancel_by_client(&self.owner, &jsonrpc::id_key(request_id));
            }
        }
    }

    /// A client's answer to a request an upstream sent it (sampling,
    /// elicitation, roots): back to that upstream with its original id.
    pub(crate) fn client_response(&self, msg: Value) {
        let Some(id) = msg.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return;
        };
        let Some(slug) = id.strip_prefix("warden:").and_then(|r| r.split(':').next()) else {
            return;
        };
        // The slug names the server of the caller's org (org-owned slugs
        // repeat across orgs): resolved through the decision, never by slug.
        let verdict = self.view().decide_server(slug);
        if let Some(up) = allowed_upstream(&self.shared, &verdict) {
            // Asked on this session's own upstream session, or on the
            // shared connection.
            let link = self
                .shared
                .registry
                .callers
                .get(&self.owner, up.config.server);
            match link {
                Some(link) if id.rsplit(':').next().is_some_and(|n| n.starts_with('c')) => {
                    link.answer_server_request(&id, msg);
                }
                _ => {
                    up.answer_server_request(&id, msg);
                }
            }
        }
    }

    pub(crate) async fn request(self, mut msg: Value) -> Response {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let reply_id = id.clone();
        // Taken, not cloned: the request's params can be large.
        let params = msg.as_object_mut().and_then(|m| m.remove("params"));
        let answer = match jsonrpc::method(&msg) {
            // 2026-07-28 removed these: 404 there, like any unknown method.
            "initialize"
            | "ping"
            | "logging/setLevel"
            | "resources/subscribe"
            | "resources/unsubscribe"
                if self.stateless =>
            {
                Err(Refusal::NoSuchMethod)
            }
            "initialize" => self.initialize(id, params),
            "server/discover" => self.discover(id),
            "ping" => self.ok(id, json!({})),
            "tools/list" => self.tools_list(id),
            "tools/call" => self.tools_call(id, params).await,
            "prompts/list" => self.list_fanout(id, List::Prompts, params).await,
            "resources/list" => self.list_fanout(id, List::Resources, params).await,
            "resources/templates/list" => self.list_fanout(id, List::Templates, params).await,
            "prompts/get" => self.prompts_get(id, params).await,
            "resources/read" => self.forward_uri(id, "resources/read", params).await,
            "resources/subscribe" => self.forward_uri(id, "resources/subscribe", params).await,
            "resources/unsubscribe" => self.forward_uri(id, "resources/unsubscribe", params).await,
            "completion/complete" => self.completion(id, params).await,
            "logging/setLevel" => self.set_level(id, params).await,
            "tasks/get" | "tasks/update" | "tasks/cancel" if self.stateless => {
                self.extension_task(id, jsonrpc::method(&msg), params).await
            }
            "tasks/get" | "tasks/result" | "tasks/cancel" | "tasks/list" if !self.stateless => {
                self.session_task(id, jsonrpc::method(&msg), params).await
            }
            "subscriptions/listen" if self.stateless => self.listen(id, params),
            _ if self.stateless => Err(Refusal::NoSuchMethod),
            _ => Err(Refusal::MethodNotFound),
        };
        answer.unwrap_or_else(|refusal| refusal.into_response(reply_id))
    }

    /// `logging/setLevel` on a one-server endpoint whose upstream gives this
    /// session an upstream session of its own: forwarded there, so it sets
    /// this caller's level only. Elsewhere (several servers, or a shared
    /// connection) one client cannot set the level for others: answered
    /// here, changing nothing upstream.
    async fn set_level(self, id: Value, params: Option<Value>) -> Answer {
        let Mount::Server(slug) = &self.mount else {
            return self.ok(id, json!({}));
        };
        let slug = slug.clone();
        let own_session = allowed_upstream(&self.shared, &self.view().decide_server(&slug))
            .is_some_and(|up| {
                self.shared.registry.callers.enabled()
                    && up.takes_caller_links()
                    && self.shared.session(&self.owner).is_some()
            });
        if !own_session {
            return self.ok(id, json!({}));
        }
        let permit = self.authorize(Subject {
            method: "logging/setLevel",
            what: "server",
            exposed: &slug,
            slug: &slug,
            tool: None,
        })?;
        Ok(self
            .forward(Forward {
                id,
                method: "logging/setLevel",
                params: params.filter(Value::is_object).unwrap_or_else(|| json!({})),
                permit,
                limit: LimitPermit::none(),
                finish: Box::new(|_| {}),
            })
            .await)
    }

    fn server_info() -> Value {
        json!({"name": "warden", "version": env!("CARGO_PKG_VERSION")})
    }

    /// What this endpoint offers: Warden's own capabilities, or on a
    /// one-server endpoint the upstream's (list changes always announced).
    fn capabilities_and_info(&self) -> (Value, Value, Option<Value>) {
        if let Mount::Server(slug) = &self.mount {
            // Only a server the caller may use shows its info: another org's
            // server (or one denied to this caller) reveals nothing.
            let verdict = self.view().decide_server(slug);
            if let Some(info) = allowed_upstream(&self.shared, &verdict).and_then(|u| u.info()) {
                let mut caps = info
                    .get("capabilities")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if let Some(tools) = caps.get_mut("tools").and_then(Value::as_object_mut) {
                    tools.insert("listChanged".into(), json!(true));
                }
                // A 2026-07-28 upstream names itself in `_meta`.
                let server_info = info
                    .get("serverInfo")
                    .or_else(|| info.get("_meta").and_then(|m| m.get(META_SERVER_INFO)))
                    .cloned()
                    .unwrap_or_else(Self::server_info);
                return (caps, server_info, info.get("instructions").cloned());
            }
        }
        let mut capabilities = json!({
            "tools": {"listChanged": true},
            "prompts": {"listChanged": false},
            "resources": {"listChanged": false, "subscribe": false},
            "completions": {},
            "logging": {}
        });
        if self.stateless && self.tasks_offered_here() {
            capabilities["extensions"] = json!({crate::upstream::TASKS_EXTENSION: {}});
        }
        (capabilities, Self::server_info(), None)
    }

    fn initialize(&self, id: Value, params: Option<Value>) -> Answer {
        let requested = params
            .as_ref()
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = SESSION_VERSIONS
            .iter()
            .find(|v| **v == requested)
            .copied()
            .unwrap_or(SESSION_VERSIONS[0]);
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let session = Arc::new(Session::new(
            session_id.clone(),
            self.principal,
            self.mount.clone(),
            None,
        ));
        // What the client declared, for upstreams on the 2026-07-28 wire,
        // which are told each caller's own capabilities per request.
        session.set_client(
            params
                .as_ref()
                .and_then(|p| p.get("capabilities"))
                .filter(|c| c.is_object())
                .cloned()
                .unwrap_or_else(|| json!({})),
            params
                .as_ref()
                .and_then(|p| p.get("clientInfo"))
                .filter(|c| c.is_object())
                .cloned(),
        );
        session.set_protocol(version);
        session.set_fingerprint(self.shared.session_fingerprint(&self.snapshot, &session));
        self.shared.insert_session(session)?;
        let (capabilities, server_info, instructions) = self.capabilities_and_info();
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": server_info,
        });
        if let Some(i) = instructions {
            result["instructions"] = i;
        }
        let mut resp = json_response(
            StatusCode::OK,
            jsonrpc::to_body(&jsonrpc::result(id, result)),
        );
        if let Ok(v) = HeaderValue::from_str(&session_id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        Ok(resp)
    }

    /// `server/discover`: what this endpoint offers this caller. It names
    /// itself in `_meta` (2026-07-28), and the answer depends on who asks
    /// (a server's info only for a caller allowed to use it): no shared
    /// caches.
    fn discover(&self, id: Value) -> Answer {
        let (capabilities, server_info, instructions) = self.capabilities_and_info();
        let mut versions = vec![STATELESS_VERSION];
        versions.extend(SESSION_VERSIONS);
        let mut result = json!({
            "supportedVersions": versions,
            "capabilities": capabilities,
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {META_SERVER_INFO: server_info},
        });
        if let Some(i) = instructions {
            result["instructions"] = i;
        }
        self.ok(id, result)
    }

    /// `tools/list`: the engine's access over the cached catalogs, rendered
    /// from pre-serialized tool objects.
    fn tools_list(&self, id: Value) -> Answer {
        let view = self.view();
        let prefixed = self.mount.prefixed();
        // First decide what is shown (per server: nothing, everything, or
        // some tools), then copy the pre-rendered JSON into a body of the
        // exact size: no re-serializing, no regrowing.
        let mut shown = Vec::new();
        let mut size = 0usize;
        for (sa, filter) in view.servers() {
            let Some(up) = self.shared.registry.get(sa.server) else {
                continue;
            };
            let catalog = up.catalog();
            let rendered = if prefixed {
                &catalog.prefixed_json
            } else {
                &catalog.plain_json
            };
            let listed: Vec<usize> = catalog
                .names_in_order()
                .enumerate()
                .filter(|(_, name)| view.lists(sa, filter, name))
                .map(|(i, _)| i)
                .collect();
            if listed.is_empty() {
                continue;
            }
            let all = listed.len() == rendered.len();
            size += if all {
                catalog
                    .plain_joined
                    .len()
                    .max(catalog.prefixed_joined.len())
            } else {
                listed.iter().map(|&i| rendered[i].len() + 1).sum()
            } + 1;
            shown.push((catalog, if all { None } else { Some(listed) }));
        }
        let id = id.to_string();
        let mut out = String::with_capacity(size + id.len() + 128);
        out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
        out.push_str(&id);
        out.push_str(",\"result\":{\"tools\":[");
        let mut first = true;
        for (catalog, listed) in &shown {
            let (rendered, joined) = if prefixed {
                (&catalog.prefixed_json, &catalog.prefixed_joined)
            } else {
                (&catalog.plain_json, &catalog.plain_joined)
            };
            let parts: Box<dyn Iterator<Item = &String>> = match listed {
                None => Box::new(std::iter::once(joined)),
                Some(listed) => Box::new(listed.iter().map(|&i| &rendered[i])),
            };
            for part in parts {
                if !first {
                    out.push(',');
                }
                out.push_str(part);
                first = false;
            }
        }
        out.push(']');
        if self.stateless {
            // The list depends on who asks: no shared caches.
            out.push_str(",\"ttlMs\":0,\"cacheScope\":\"private\",\"resultType\":\"complete\"");
        }
        out.push_str("}}");
        Ok(json_response(StatusCode::OK, out))
    }

    async fn tools_call(self, id: Value, params: Option<Value>) -> Answer {
        let Some(mut params) = params.filter(Value::is_object) else {
            return Err(Refusal::InvalidParams("tools/call needs params"));
        };
        let Some(exposed) = params.get("name").and_then(Value::as_str) else {
            return Err(Refusal::InvalidParams("tools/call needs a tool name"));
        };
        let exposed = bounded(exposed, "params.name", MAX_NAME_BYTES)?.to_owned();
        let (slug, tool) = {
            let view = self.view();
            let (slug, tool) = view.resolve_name(&exposed);
            (slug.to_owned(), tool.to_owned())
        };
        let permit = self.authorize(Subject {
            method: "tools/call",
            what: "tool",
            exposed: &exposed,
            slug: &slug,
            tool: Some(&tool),
        })?;
        let limit = self.limit(&permit)?;
        params["name"] = Value::String(tool);
        let decision_id = permit.decision_id.clone();
        let revision = permit.verdict.revision;
        let finish: Finish = Box::new(move |result: &mut Value| {
            jsonrpc::merge_meta(
                result,
                [
                    (META_DECISION_ID.to_owned(), json!(decision_id)),
                    (META_REVISION.to_owned(), json!(revision)),
                ],
            );
        });
        Ok(self
            .forward(Forward {
                id,
                method: "tools/call",
                params,
                permit,
                limit,
                finish,
            })
            .await)
    }

    async fn prompts_get(self, id: Value, params: Option<Value>) -> Answer {
        let Some(mut params) = params.filter(Value::is_object) else {
            return Err(Refusal::InvalidParams("prompts/get needs params"));
        };
        let Some(exposed) = params.get("name").and_then(Value::as_str) else {
            return Err(Refusal::InvalidParams("prompts/get needs a prompt name"));
        };
        let exposed = bounded(exposed, "params.name", MAX_NAME_BYTES)?.to_owned();
        let (slug, name) = {
            let view = self.view();
            let (s, n) = view.resolve_name(&exposed);
            (s.to_owned(), n.to_owned())
        };
        let permit = self.authorize(Subject {
            method: "prompts/get",
            what: "prompt",
            exposed: &exposed,
            slug: &slug,
            tool: None,
        })?;
        params["name"] = Value::String(name);
        Ok(self
            .forward(Forward {
                id,
                method: "prompts/get",
                params,
                permit,
                limit: LimitPermit::none(),
                finish: Box::new(|_| {}),
            })
            .await)
    }

    /// (server slug, upstream URI) of a URI as this mount exposes it.
    fn resolve_uri<'u>(&self, uri: &'u str) -> (String, &'u str) {
        match &self.mount {
            Mount::Server(slug) => (slug.clone(), uri),
            _ => match split_uri(uri) {
                Some((slug, rest)) => (slug.to_owned(), rest),
                None => (String::new(), uri),
            },
        }
    }

    async fn forward_uri(self, id: Value, method: &'static str, params: Option<Value>) -> Answer {
        let Some(mut params) = params.filter(Value::is_object) else {
            return Err(Refusal::InvalidParams("this method needs params"));
        };
        let Some(exposed) = params.get("uri").and_then(Value::as_str) else {
            return Err(Refusal::InvalidParams("this method needs a uri"));
        };
        let exposed = bounded(exposed, "params.uri", MAX_URI_BYTES)?.to_owned();
        let (slug, uri) = self.resolve_uri(&exposed);
        let uri = uri.to_owned();
        let permit = self.authorize(Subject {
            method,
            what: "resource",
            exposed: &exposed,
            slug: &slug,
            tool: None,
        })?;
        params["uri"] = Value::String(uri);
        let prefixed = self.mount.prefixed();
        let finish: Finish = Box::new(move |result: &mut Value| {
            if !prefixed {
                return;
            }
            if let Some(contents) = result.get_mut("contents").and_then(Value::as_array_mut) {
                for item in contents {
                    if let Some(u) = item.get("uri").and_then(Value::as_str) {
                        let p = prefix_uri(&slug, u);
                        item["uri"] = Value::String(p);
                    }
                }
            }
        });
        Ok(self
            .forward(Forward {
                id,
                method,
                params,
                permit,
                limit: LimitPermit::none(),
                finish,
            })
            .await)
    }

    async fn completion(self, id: Value, params: Option<Value>) -> Answer {
        let Some(mut params) = params.filter(Value::is_object) else {
            return Err(Refusal::InvalidParams("completion/complete needs params"));
        };
        let kind = params
            .at(&["ref", "type"])
            .and_then(Value::as_str)
            .unwrap_or("");
        let (slug, local, field, what) = match kind {
            "ref/prompt" => {
                let exposed = params
                    .at(&["ref", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let exposed = bounded(exposed, "params.ref.name", MAX_NAME_BYTES)?;
                let view = self.view();
                let (s, n) = view.resolve_name(exposed);
                (s.to_owned(), n.to_owned(), "name", "prompt")
            }
            "ref/resource" => {
                let exposed = params
                    .at(&["ref", "uri"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let exposed = bounded(exposed, "params.ref.uri", MAX_URI_BYTES)?;
                let (s, u) = self.resolve_uri(exposed);
                (s, u.to_owned(), "uri", "resource")
            }
            _ => return Err(Refusal::InvalidParams("completion/complete needs a ref")),
        };
        let permit = self.authorize(Subject {
            method: "completion/complete",
            what,
            exposed: &local,
            slug: &slug,
            tool: None,
        })?;
        params["ref"][field] = Value::String(local);
        Ok(self
            .forward(Forward {
                id,
                method: "completion/complete",
                params,
                permit,
                limit: LimitPermit::none(),
                finish: Box::new(|_| {}),
            })
            .await)
    }

    /// `prompts/list`, `resources/list`, `resources/templates/list`.
    async fn list_fanout(self, id: Value, list: List, params: Option<Value>) -> Answer {
        let (method, field, capability) = list.names();
        if let Mount::Server(slug) = &self.mount {
            let verdict = self.view().decide_server(slug);
            return match allowed_upstream(&self.shared, &verdict) {
                Some(upstream) if upstream.has_capability(capability) => {
                    let permit = Permit::listing(verdict, upstream, slug);
                    // The list depends on who asks, whatever the upstream
                    // says (a 2026-07-28 upstream may call it public):
                    // no shared caches.
                    let stateless = self.stateless;
                    let finish: Finish = Box::new(move |result: &mut Value| {
                        if let Some(obj) = result.as_object_mut() {
                            if stateless
                                || obj.contains_key("cacheScope")
                                || obj.contains_key("ttlMs")
                            {
                                obj.insert("ttlMs".into(), json!(0));
                                obj.insert("cacheScope".into(), json!("private"));
                            }
                        }
                    });
                    Ok(self
                        .forward(Forward {
                            id,
                            method,
                            params: params.unwrap_or_else(|| json!({})),
                            permit,
                            limit: LimitPermit::none(),
                            finish,
                        })
                        .await)
                }
                _ => self.ok(id, json!({ field: [] })),
            };
        }
        let targets: Vec<Arc<Upstream>> = {
            let view = self.view();
            view.servers()
                .into_iter()
                .filter(|(sa, _)| view.decide_server(&sa.slug).allowed)
                .filter_map(|(sa, _)| self.shared.registry.get(sa.server))
                .filter(|up| up.has_capability(capability))
                .collect()
        };
        let pages = futures::future::join_all(targets.into_iter().map(|up| async move {
            let mut items = Vec::new();
            let mut cursor: Option<Value> = None;
            for _ in 0..32 {
                let params = cursor.take().map(|c| json!({"cursor": c}));
                match up.call(method, params, None).await {
                    Ok(resp) => {
                        let Some(result) = resp.get("result") else { break };
                        if let Some(list) = result.get(field).and_then(Value::as_array) {
                            items.extend(list.iter().cloned());
                        }
                        match result.get("nextCursor") {
                            Some(c) if !c.is_null() => cursor = Some(c.clone()),
                            _ => break,
                        }
                    }
                    Err(e) => {
                        metrics::counter!("warden_upstream_errors_total", "server" => up.slug().to_owned(), "kind" => e.kind()).increment(1);
                        tracing::warn!(server = %up.slug(), error = %e, "listing failed; server left out");
                        break;
                    }
                }
            }
            (up.slug().to_owned(), items)
        }))
        .await;
        let mut merged = Vec::new();
        for (slug, items) in pages {
            for mut item in items {
                rewrite_listed(&mut item, field, &slug);
                merged.push(item);
            }
        }
        let mut result = Map::new();
        result.insert(field.into(), Value::Array(merged));
        if self.stateless {
            result.insert("ttlMs".into(), json!(0));
            result.insert("cacheScope".into(), json!("private"));
        }
        self.ok(id, Value::Object(result))
    }

    /// `subscriptions/listen` (2026-07-28): a long-lived SSE response that
    /// carries `notifications/tools/list_changed` for this caller.
    fn listen(&self, id: Value, params: Option<Value>) -> Answer {
        let wants_tools = params
            .as_ref()
            .and_then(|p| p.at(&["notifications", "toolsListChanged"]))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let listener_id = uuid::Uuid::new_v4().simple().to_string();
        let session = Arc::new(Session::new(
            listener_id.clone(),
            self.principal,
            self.mount.clone(),
            Some(id.clone()),
        ));
        let (tx, rx) = mpsc::channel(256);
        let mut agreed = Map::new();
        if wants_tools {
            agreed.insert("toolsListChanged".into(), json!(true));
        }
        let ack = jsonrpc::notification(
            "notifications/subscriptions/acknowledged",
            Some(json!({"notifications": agreed, "_meta": {META_SUBSCRIPTION: id}})),
        );
        let _ = tx.try_send(ack);
        session.attach_stream(tx);
        session.set_fingerprint(self.shared.session_fingerprint(&self.snapshot, &session));
        if !wants_tools {
            // Still registered so that revocation ends it, but it never
            // sees a changed fingerprint worth sending.
            session.mute();
        }
        self.shared.insert_listener(session)?;
        let guard = ListenerGuard::new(&self.shared, listener_id);
        Ok(sse_bounded(rx, Some(guard)))
    }
}

/// The three lists merged across servers.
#[derive(Clone, Copy)]
enum List {
    Prompts,
    Resources,
    Templates,
}

impl List {
    /// (method, result field, capability).
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            List::Prompts => ("prompts/list", "prompts", "prompts"),
            List::Resources => ("resources/list", "resources", "resources"),
            List::Templates => ("resources/templates/list", "resourceTemplates", "resources"),
        }
    }
}

/// Makes one listed prompt/resource/template collision-free on a
/// prefixed endpoint.
fn rewrite_listed(item: &mut Value, field: &str, slug: &str) {
    let key = match field {
        "prompts" => "name",
        "resources" => "uri",
        _ => "uriTemplate",
    };
    let Some(current) = item.get(key).and_then(Value::as_str) else {
        return;
    };
    let rewritten = if key == "name" {
        prefix_name(slug, current)
    } else {
        prefix_uri(slug, current)
    };
    item[key] = Value::String(rewritten);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_listed_items() {
        let mut p = json!({"name": "greet", "x": 1});
        rewrite_listed(&mut p, "prompts", "files");
        assert_eq!(p, json!({"name": "files__greet", "x": 1}));
        let mut r = json!({"uri": "file:///a", "name": "a"});
        rewrite_listed(&mut r, "resources", "files");
        assert_eq!(r["uri"], "warden:files/file:///a");
        assert_eq!(
            split_uri("warden:files/file:///a"),
            Some(("files", "file:///a"))
        );
    }
}
