//! Caller links: one upstream session per (downstream session, server).
//!
//! On a session-era HTTP upstream (2025-11-25) everything an upstream
//! sends outside a response (requests to the client, log messages,
//! `resources/updated`, prompt/resource `list_changed`) and everything a
//! client sets (log level, subscriptions) belongs to an upstream session.
//! Sharing one among all callers mixed tenants; so each downstream session
//! that uses such a server gets a link of its own: an [`Upstream`] opened
//! lazily on its first forwarded request, with its caller's own
//! `clientCapabilities`/`clientInfo`, whose every unattributed message goes
//! to that caller only ([`CallerInit::owner`]). It is closed (HTTP
//! `DELETE`) when the downstream session ends, when the server is removed
//! or reconfigured, and at shutdown. The shared connection keeps what is
//! caller-independent: the tool catalog and its refresh.
//!
//! A 2026-07-28 caller has no downstream session: its link is keyed by its
//! principal and a digest of the capabilities and client info its request
//! declares ([`stateless_key`]), opened the same way, closed after
//! `session_idle_timeout` without use ([`CallerLinks::close_idle_stateless`])
//! and when the principal's decision for the server denies
//! ([`CallerLinks::close_stateless_where`], on every reconcile).
//!
//! Which decision allows a request does not change: `decide` runs first,
//! the link only chooses the wire (`mcp/forward.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use warden_policy::{Principal, ServerId};

use super::{lock, Upstream};
use crate::jsonrpc::ValueExt;

/// Delivers a message from a caller link to the downstream session that
/// owns the link. True when it was handled (sent, or dropped because the
/// session may no longer see that server); false when the session has no
/// stream to take it (the link then tries the caller's requests in flight,
/// and a request nobody can answer is answered locally).
pub type OwnerSink = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// What a caller link is opened with.
///
/// `extra_headers` are sent with every request on the link (POST, the GET
/// stream, the closing `DELETE`), e.g. the caller's own
/// `Authorization: Bearer` for this upstream; they replace Warden's secret
/// headers of the same name and are marked sensitive (never logged). Empty
/// when the upstream is reached with Warden's own credentials. On the
/// 2026-07-28 wire, which has no session, per-request headers go through
/// [`Upstream::start_request_with`] instead.
pub struct CallerInit {
    /// The `capabilities` of the client's own `initialize`.
    pub capabilities: Value,
    /// The `clientInfo` of the client's own `initialize` (Warden's if none).
    pub client_info: Option<Value>,
    pub extra_headers: HeaderMap,
    pub owner: OwnerSink,
}

/// The caller side of an [`Upstream`] that is a caller link.
pub(crate) struct CallerSide {
    pub capabilities: Value,
    pub client_info: Option<Value>,
    pub owner: OwnerSink,
    /// The server's shared connection (its catalog is refreshed when this
    /// link hears `tools/list_changed`).
    pub shared: Weak<Upstream>,
    /// Ids of the tasks the upstream created for this caller (bounded).
    pub tasks: Mutex<HashSet<String>>,
}

/// Most task ids one caller link remembers.
const MAX_TASKS: usize = 1_000;

impl CallerSide {
    pub fn take_tasks(&self) -> Vec<String> {
        lock(&self.tasks).drain().collect()
    }
}

/// A caller link was refused: the server already has `limit` of them.
#[derive(Debug, Clone)]
pub(crate) struct CallerLinksFull {
    pub server: String,
    pub limit: usize,
}

#[derive(Default)]
struct Links {
    /// downstream session id → server → link
    by_session: HashMap<String, HashMap<ServerId, Arc<Upstream>>>,
    per_server: HashMap<ServerId, usize>,
    /// Keys of 2026-07-28 callers' links: their principal and last use (ms).
    stateless: HashMap<String, (Principal, i64)>,
}

/// The link key of a 2026-07-28 caller: its principal and a digest of the
/// capabilities and client info its request declares (the same caller with
/// other capabilities gets another link: an upstream session is initialized
/// once, with one set).
pub(crate) fn stateless_key(
    principal: &Principal,
    capabilities: &Value,
    info: Option<&Value>,
) -> String {
    let mut digest = Sha256::new();
    digest.update(capabilities.to_string());
    digest.update([0]);
    digest.update(info.map(Value::to_string).unwrap_or_default());
    let digest = digest.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "stateless:{}:{}:{}:{hex}",
        principal.key.0,
        principal.end_user.map_or(0, |u| u.0),
        principal.agent.map_or(0, |a| a.0)
    )
}

/// Every live caller link, bounded per server.
pub(crate) struct CallerLinks {
    max_per_server: usize,
    links: Mutex<Links>,
}

impl Upstream {
    /// Opens a caller link to `shared`'s server: same configuration and
    /// HTTP client (connection pool), a session of its own; `None` for a
    /// server that is not reached over HTTP. Returns at once; the `initialize` runs in the
    /// link's task and the first request waits for it.
    pub(crate) fn start_caller(shared: &Arc<Upstream>, init: CallerInit) -> Option<Arc<Upstream>> {
        let link = super::http::HttpLink::for_caller(shared.http_link()?, init.extra_headers);
        let side = CallerSide {
            capabilities: init.capabilities,
            client_info: init.client_info,
            owner: init.owner,
            shared: Arc::downgrade(shared),
            tasks: Mutex::new(HashSet::new()),
        };
        Some(Upstream::start_link(
            shared.config.clone(),
            shared.limits.clone(),
            shared.events.clone(),
            None,
            Some((side, link)),
        ))
    }

    /// Can callers get links of their own to this server: an HTTP
    /// upstream connected on the session era.
    pub(crate) fn takes_caller_links(&self) -> bool {
        self.caller.is_none()
            && self.http_link().is_some()
            && self.is_ready()
            && !self.is_stateless()
    }

    /// Notes the task a result created (`result.task.taskId`, a 2025-11-25
    /// `CreateTaskResult`) as this caller link's caller's.
    pub(crate) fn note_task(&self, result: &Value) {
        let (Some(caller), Some(task)) = (
            &self.caller,
            result.at(&["task", "taskId"]).and_then(Value::as_str),
        ) else {
            return;
        };
        let mut tasks = lock(&caller.tasks);
        if tasks.len() < MAX_TASKS && task.len() <= 256 {
            tasks.insert(task.to_owned());
        }
    }

    /// Did the upstream create task `task` for this caller link's caller?
    pub(crate) fn owns_task(&self, task: &str) -> bool {
        self.caller
            .as_ref()
            .is_some_and(|c| lock(&c.tasks).contains(task))
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl CallerLinks {
    /// `max_per_server` 0: per-caller sessions are off.
    pub fn new(max_per_server: usize) -> Self {
        CallerLinks {
            max_per_server,
            links: Mutex::new(Links::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_per_server > 0
    }

    /// The link of `session` to `server`, if one is open.
    pub fn get(&self, session: &str, server: ServerId) -> Option<Arc<Upstream>> {
        lock(&self.links)
            .by_session
            .get(session)
            .and_then(|m| m.get(&server))
            .cloned()
    }

    /// The link of `session` to `shared`'s server, opened now (with
    /// `init()`) if there is none, or if the one there belongs to an older
    /// configuration of the server or was closed.
    pub fn get_or_open(
        &self,
        session: &str,
        shared: &Arc<Upstream>,
        init: impl FnOnce() -> CallerInit,
    ) -> Result<Arc<Upstream>, CallerLinksFull> {
        let server = shared.config.server;
        let mut links = lock(&self.links);
        let existing = links
            .by_session
            .get(session)
            .and_then(|m| m.get(&server))
            .cloned();
        if let Some(link) = existing {
            if link.config.config_revision == shared.config.config_revision
                && link.config.slug == shared.config.slug
                && !link.is_closed()
            {
                return Ok(link);
            }
            remove(&mut links, session, server);
            link.close();
        }
        let held = links.per_server.get(&server).copied().unwrap_or(0);
        if held >= self.max_per_server {
            return Err(CallerLinksFull {
                server: shared.config.slug.clone(),
                limit: self.max_per_server,
            });
        }
        let Some(link) = Upstream::start_caller(shared, init()) else {
            // Not an HTTP upstream: callers share its one connection.
            return Ok(Arc::clone(shared));
        };
        links
            .by_session
            .entry(session.to_owned())
            .or_default()
            .insert(server, Arc::clone(&link));
        *links.per_server.entry(server).or_default() += 1;
        metrics::counter!("warden_upstream_caller_sessions_opened_total",
            "server" => shared.config.slug.clone())
        .increment(1);
        gauge(shared.slug(), held + 1);
        Ok(link)
    }

    /// Notes a use of the link `key` of a 2026-07-28 caller (opened with
    /// [`Self::get_or_open`] under that key).
    pub fn touch_stateless(&self, key: &str, principal: Principal, now_ms: i64) {
        let mut links = lock(&self.links);
        if links.by_session.contains_key(key) {
            links.stateless.insert(key.to_owned(), (principal, now_ms));
        }
    }

    /// The principals of 2026-07-28 callers' links.
    pub fn stateless_principals(&self) -> Vec<Principal> {
        lock(&self.links)
            .stateless
            .values()
            .map(|(p, _)| *p)
            .collect()
    }

    /// Closes the 2026-07-28 callers' links unused for `timeout_ms`.
    pub fn close_idle_stateless(&self, now_ms: i64, timeout_ms: i64) {
        let idle: Vec<String> = lock(&self.links)
            .stateless
            .iter()
            .filter(|(_, (_, used))| now_ms - *used > timeout_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            self.close_session(&key);
        }
    }

    /// Closes each 2026-07-28 caller's link for which `denied(principal,
    /// server slug)` holds (its access to that server ended).
    pub fn close_stateless_where(&self, mut denied: impl FnMut(&Principal, &str) -> bool) {
        let closed: Vec<Arc<Upstream>> = {
            let mut links = lock(&self.links);
            let gone: Vec<(String, ServerId)> = links
                .stateless
                .iter()
                .flat_map(|(key, (principal, _))| {
                    links
                        .by_session
                        .get(key)
                        .into_iter()
                        .flatten()
                        .filter(|(_, link)| denied(principal, link.slug()))
                        .map(|(server, _)| (key.clone(), *server))
                        .collect::<Vec<_>>()
                })
                .collect();
            gone.iter()
                .filter_map(|(key, server)| remove(&mut links, key, *server))
                .collect()
        };
        for link in closed {
            gauge(link.slug(), self.count(link.config.server));
            link.close();
        }
    }

    /// Closes every link of a downstream session (it ended).
    pub fn close_session(&self, session: &str) {
        let closed = {
            let mut links = lock(&self.links);
            links.stateless.remove(session);
            let Some(mine) = links.by_session.remove(session) else {
                return;
            };
            let mut closed = Vec::with_capacity(mine.len());
            for (server, link) in mine {
                let left = decrement(&mut links, server);
                closed.push((link, left));
            }
            closed
        };
        for (link, left) in closed {
            gauge(link.slug(), left);
            link.close();
        }
    }

    /// Closes every link to `server` (removed or reconfigured).
    pub fn close_server(&self, server: ServerId) {
        let closed: Vec<Arc<Upstream>> = {
            let mut links = lock(&self.links);
            let sessions: Vec<String> = links
                .by_session
                .iter()
                .filter(|(_, m)| m.contains_key(&server))
                .map(|(s, _)| s.clone())
                .collect();
            sessions
                .iter()
                .filter_map(|s| remove(&mut links, s, server))
                .collect()
        };
        if let Some(first) = closed.first() {
            gauge(first.slug(), self.count(server));
        }
        for link in closed {
            link.close();
        }
    }

    /// Closes every link (shutdown).
    pub fn close_all(&self) {
        let all: Vec<Arc<Upstream>> = {
            let mut links = lock(&self.links);
            links.per_server.clear();
            links.stateless.clear();
            links
                .by_session
                .drain()
                .flat_map(|(_, m)| m.into_values())
                .collect()
        };
        for link in all {
            gauge(link.slug(), 0);
            link.close();
        }
    }

    /// Open links to `server`.
    pub fn count(&self, server: ServerId) -> usize {
        lock(&self.links)
            .per_server
            .get(&server)
            .copied()
            .unwrap_or(0)
    }

    /// Open links to all servers.
    pub fn total(&self) -> usize {
        lock(&self.links).per_server.values().sum()
    }
}

fn remove(links: &mut Links, session: &str, server: ServerId) -> Option<Arc<Upstream>> {
    let mine = links.by_session.get_mut(session)?;
    let link = mine.remove(&server)?;
    if mine.is_empty() {
        links.by_session.remove(session);
        links.stateless.remove(session);
    }
    decrement(links, server);
    Some(link)
}

fn decrement(links: &mut Links, server: ServerId) -> usize {
    let left = match links.per_server.get_mut(&server) {
        Some(n) => {
            *n = n.saturating_sub(1);
            *n
        }
        None => 0,
    };
    if left == 0 {
        links.per_server.remove(&server);
    }
    left
}

fn gauge(slug: &str, n: usize) {
    metrics::gauge!("warden_upstream_caller_sessions", "server" => slug.to_owned()).set(n as f64);
}
