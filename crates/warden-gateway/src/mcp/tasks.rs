//! Task methods at the front door, in both eras.
//!
//! **2026-07-28, the `io.modelcontextprotocol/tasks` extension**
//! (`tasks/get`, `tasks/update`, `tasks/cancel`; `tasks/result` and
//! `tasks/list` were removed and answer `-32601`): a request whose client
//! capabilities do not declare the extension is refused `-32021`
//! ([`Refusal::TasksNotDeclared`]). Otherwise the task's server is decided
//! like any request to it (`decide_server`, so every task method is still
//! an allow/deny of `warden-policy`), then the task must be one this
//! principal's call created ([`TaskOwners`](crate::upstream::TaskOwners),
//! filled in by [`Ctx::keep_task`] when a call's result is a
//! `CreateTaskResult`): any other id is `-32602` `task_unknown` and never
//! asked upstream. On `/mcp` and toolsets a task id is exposed as
//! `{server_slug}__{taskId}`, as tool names are. A principal whose decision
//! for the server now denies has its tasks cancelled upstream
//! ([`cancel_denied_tasks`], on every reconcile).
//!
//! **2025-11-25 tasks** (`tasks/get|result|cancel|list`, one-server
//! endpoint): sent on the caller's own upstream session, for the tasks that
//! session created ([`Ctx::session_task`]).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use warden_policy::{Access, Principal, Snapshot};

use super::authorize::{Permit, Subject};
use super::dispatch::Ctx;
use super::forward::{Finish, Forward};
use super::limits::LimitPermit;
use super::message::bounded;
use super::refusal::Refusal;
use crate::gateway::{now_ms, server_denied, Shared};
use crate::jsonrpc::ValueExt;
use crate::upstream::{
    TaskOwner, TasksFull, Upstream, MAX_TASK_ID_BYTES, META_CLIENT_CAPABILITIES, TASKS_EXTENSION,
};
use crate::view::{prefix_name, Mount};

type Answer = Result<axum::response::Response, Refusal>;

/// Does this request's `_meta` declare the tasks extension?
fn declares_tasks(params: Option<&Value>) -> bool {
    params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
        .and_then(|c| c.get("extensions"))
        .and_then(|e| e.get(TASKS_EXTENSION))
        .is_some()
}

/// Does the upstream advertise the tasks extension?
fn offers_tasks(upstream: &Upstream) -> bool {
    upstream.info().is_some_and(|info| {
        info.at(&["capabilities", "extensions"])
            .and_then(|e| e.get(TASKS_EXTENSION))
            .is_some()
    })
}

impl Ctx {
    /// On `/mcp` and toolsets: does a server this caller may use here offer
    /// the tasks extension (so this endpoint offers it too)?
    pub(crate) fn tasks_offered_here(&self) -> bool {
        let view = self.view();
        view.servers()
            .into_iter()
            .filter(|(sa, _)| view.decide_server(&sa.slug).allowed)
            .filter_map(|(sa, _)| self.shared.registry.get(sa.server))
            .any(|up| offers_tasks(&up))
    }

    /// `tasks/get`, `tasks/update`, `tasks/cancel` of the 2026-07-28 tasks
    /// extension.
    pub(crate) async fn extension_task(
        self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Answer {
        let method = task_method(method);
        if !declares_tasks(params.as_ref()) {
            return Err(Refusal::TasksNotDeclared);
        }
        let Some(mut params) = params.filter(Value::is_object) else {
            return Err(Refusal::InvalidParams("this method needs params"));
        };
        let Some(exposed) = params.get("taskId").and_then(Value::as_str) else {
            return Err(Refusal::InvalidParams("this method needs a taskId"));
        };
        // A slug, the separator and an upstream id at most.
        let exposed = bounded(exposed, "params.taskId", 2 * MAX_TASK_ID_BYTES)?.to_owned();
        let (slug, task) = {
            let view = self.view();
            let (s, t) = view.resolve_name(&exposed);
            (s.to_owned(), t.to_owned())
        };
        if slug.is_empty() {
            // `/mcp` or a toolset: an id that names no server.
            return Err(Refusal::TaskUnknown);
        }
        let permit = self.authorize_server(method, &slug)?;
        let server = permit.upstream.config.server;
        if !offers_tasks(&permit.upstream)
            || !self
                .shared
                .tasks
                .owns(server, &task, self.principal, now_ms())
        {
            return Err(Refusal::TaskUnknown);
        }
        params["taskId"] = Value::String(task);
        let prefixed = self.mount.prefixed();
        let finish: Finish = Box::new(move |result: &mut Value| {
            if prefixed {
                expose_task_id(result, &slug);
            }
        });
        Ok(self.forward_task(id, method, params, permit, finish).await)
    }

    /// A task method names no tool: decided like any request to its server.
    fn authorize_server(&self, method: &'static str, slug: &str) -> Result<Permit, Refusal> {
        self.authorize(Subject {
            method,
            what: "server",
            exposed: slug,
            slug,
            tool: None,
        })
    }

    async fn forward_task(
        self,
        id: Value,
        method: &'static str,
        params: Value,
        permit: Permit,
        finish: Finish,
    ) -> axum::response::Response {
        self.forward(Forward {
            id,
            method,
            params,
            permit,
            limit: LimitPermit::none(),
            finish,
        })
        .await
    }

    /// A forwarded call's result: a `CreateTaskResult` of the tasks
    /// extension (`resultType: "task"`, top-level `taskId`) is remembered
    /// as this principal's, and its id exposed as this mount names it. A
    /// task that cannot be kept (a bound reached) is cancelled upstream and
    /// the caller told why.
    pub(crate) fn keep_task(
        &self,
        upstream: &Arc<Upstream>,
        permit: &Permit,
        result: &mut Value,
    ) -> Result<(), Refusal> {
        if !upstream.is_stateless() || result.get("resultType") != Some(&json!("task")) {
            return Ok(());
        }
        let Some(task) = result.get("taskId").and_then(Value::as_str) else {
            return Ok(());
        };
        let ttl = result.get("ttlMs").and_then(Value::as_i64);
        let kept = self.shared.tasks.record(
            upstream.config.server,
            task,
            self.principal,
            &permit.slug,
            ttl,
            now_ms(),
        );
        if let Err(why) = kept {
            tracing::warn!(server = %permit.slug, ?why, "task not kept; cancelled upstream");
            if why != TasksFull::Conflict {
                cancel_upstream(Arc::clone(upstream), task.to_owned());
            }
            return Err(Refusal::TaskNotKept {
                server: permit.slug.clone(),
                why,
            });
        }
        if self.mount.prefixed() {
            expose_task_id(result, &permit.slug);
        }
        Ok(())
    }

    /// `tasks/get`, `tasks/result`, `tasks/cancel`, `tasks/list` (2025-11-25
    /// tasks) on a one-server endpoint: decided like any request to the
    /// server, then sent on this session's own upstream session, and only
    /// for a task that session's upstream created (anything else: not found,
    /// whether or not the id exists for another caller). Elsewhere, or
    /// without an upstream session of its own, there is no task to see.
    pub(crate) async fn session_task(
        self,
        id: Value,
        method: &str,
        params: Option<Value>,
    ) -> Answer {
        let method = task_method(method);
        let Mount::Server(slug) = &self.mount else {
            return Err(Refusal::MethodNotFound);
        };
        let permit = self.authorize_server(method, &slug.clone())?;
        let params = params.filter(Value::is_object).unwrap_or_else(|| json!({}));
        let link = self
            .shared
            .registry
            .callers
            .get(&self.owner, permit.upstream.config.server);
        let Some(link) = link else {
            return Err(Refusal::TaskUnknown);
        };
        if method != "tasks/list" {
            let task = params.get("taskId").and_then(Value::as_str).unwrap_or("");
            if !link.owns_task(task) {
                return Err(Refusal::TaskUnknown);
            }
        }
        Ok(self
            .forward_task(id, method, params, permit, Box::new(|_| {}))
            .await)
    }
}

/// A task method's name as the `&'static str` the pipeline carries (the
/// dispatcher sends only these five here).
fn task_method(method: &str) -> &'static str {
    match method {
        "tasks/get" => "tasks/get",
        "tasks/update" => "tasks/update",
        "tasks/result" => "tasks/result",
        "tasks/list" => "tasks/list",
        _ => "tasks/cancel",
    }
}

/// A result's `taskId` as a prefixed mount names it: `{slug}__{taskId}`.
fn expose_task_id(result: &mut Value, slug: &str) {
    if let Some(task) = result.get("taskId").and_then(Value::as_str) {
        let exposed = prefix_name(slug, task);
        result["taskId"] = Value::String(exposed);
    }
}

/// `tasks/cancel` for `task` on the server's shared connection, in the
/// background, declaring the extension (a server gates its task methods on
/// it). Best effort: a failure is logged.
fn cancel_upstream(upstream: Arc<Upstream>, task: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let params = json!({
            "taskId": task,
            "_meta": {META_CLIENT_CAPABILITIES: {"extensions": {TASKS_EXTENSION: {}}}},
        });
        match upstream.call("tasks/cancel", Some(params), None).await {
            Ok(resp) if resp.get("error").is_none() => {
                metrics::counter!("warden_gateway_tasks_cancelled_total",
                    "server" => upstream.slug().to_owned())
                .increment(1);
            }
            Ok(resp) => {
                tracing::warn!(server = %upstream.slug(), error = %resp["error"], "tasks/cancel refused upstream")
            }
            Err(e) => {
                tracing::warn!(server = %upstream.slug(), error = %e, "tasks/cancel failed")
            }
        }
    });
}

/// After a policy change (or a key's expiry): every task whose owner may no
/// longer use its server (key revoked or expired, org suspended, grant
/// removed, person disabled: `decide_server` now denies) is forgotten and
/// cancelled upstream.
pub(crate) fn cancel_denied_tasks(shared: &Shared, snapshot: &Snapshot, now: i64) {
    let mut accesses: HashMap<Principal, Access> = HashMap::new();
    let denied = shared.tasks.take_denied(now, |owner: &TaskOwner| {
        let access = accesses
            .entry(owner.principal)
            .or_insert_with(|| snapshot.access(&owner.principal));
        server_denied(snapshot, access, &owner.slug, now)
    });
    for (server, task, owner) in denied {
        tracing::info!(server = %owner.slug, key = owner.principal.key.0, "access ended: task cancelled upstream");
        if let Some(upstream) = shared.registry.get(server) {
            cancel_upstream(upstream, task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_is_declared_in_the_requests_client_capabilities() {
        let with = |caps: Value| json!({"_meta": {META_CLIENT_CAPABILITIES: caps}});
        assert!(declares_tasks(Some(&with(
            json!({"extensions": {TASKS_EXTENSION: {}}})
        ))));
        assert!(!declares_tasks(Some(&with(json!({"extensions": {}})))));
        assert!(!declares_tasks(Some(&with(json!({"tasks": {}})))));
        assert!(!declares_tasks(Some(&json!({}))));
        assert!(!declares_tasks(None));
    }

    #[test]
    fn a_prefixed_mount_exposes_the_slug_and_the_task_id() {
        let mut r = json!({"taskId": "t-1", "status": "working"});
        expose_task_id(&mut r, "files");
        assert_eq!(r["taskId"], "files__t-1");
        let mut none = json!({"content": []});
        expose_task_id(&mut none, "files");
        assert_eq!(none, json!({"content": []}));
    }
}
