//! The set of live upstream connections, keyed by server id, the callers'
//! own links to them, and the tool catalog view of them the policy engine
//! decides with.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use warden_policy::{Catalog, ServerId};
use warden_store::UpstreamConfig;

use crate::upstream::{CallerLinks, Upstream, UpstreamEvent, UpstreamLimits};

pub(crate) struct Registry {
    by_id: ArcSwap<HashMap<ServerId, Arc<Upstream>>>,
    limits: UpstreamLimits,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    apply_lock: std::sync::Mutex<()>,
    /// One upstream session per (downstream session, server) on
    /// session-era HTTP upstreams.
    pub callers: CallerLinks,
}

impl Registry {
    pub fn new(limits: UpstreamLimits, events: mpsc::UnboundedSender<UpstreamEvent>) -> Self {
        Registry {
            callers: CallerLinks::new(limits.max_caller_sessions),
            by_id: ArcSwap::from_pointee(HashMap::new()),
            limits,
            events,
            apply_lock: std::sync::Mutex::new(()),
        }
    }

    pub fn get(&self, server: ServerId) -> Option<Arc<Upstream>> {
        self.by_id.load().get(&server).cloned()
    }

    pub fn all(&self) -> Arc<HashMap<ServerId, Arc<Upstream>>> {
        self.by_id.load_full()
    }

    /// Makes the live set match `configs`: new servers connect, servers
    /// whose `config_revision` (or slug) moved reconnect, removed ones close.
    pub fn apply(&self, configs: Vec<UpstreamConfig>) {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.by_id.load_full();
        let mut next = HashMap::with_capacity(configs.len());
        let mut retired = Vec::new();
        for config in configs {
            match current.get(&config.server) {
                Some(up)
                    if up.config.config_revision == config.config_revision
                        && up.config.slug == config.slug =>
                {
                    next.insert(config.server, Arc::clone(up));
                }
                existing => {
                    let seed = existing.map(|old| old.catalog());
                    if let Some(old) = existing {
                        retired.push(Arc::clone(old));
                    }
                    let server = config.server;
                    let up =
                        Upstream::start(config, self.limits.clone(), self.events.clone(), seed);
                    next.insert(server, up);
                }
            }
        }
        for (id, up) in current.iter() {
            if !next.contains_key(id) {
                retired.push(Arc::clone(up));
            }
        }
        self.by_id.store(Arc::new(next));
        for up in retired {
            tracing::info!(server = %up.slug(), "upstream connection retired");
            // Callers' sessions with the old configuration end with it.
            self.callers.close_server(up.config.server);
            up.close();
        }
    }

    pub fn close_all(&self) {
        let _guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.by_id.swap(Arc::new(HashMap::new()));
        self.callers.close_all();
        for up in current.values() {
            up.close();
        }
    }
}

/// The gateway's cached tool catalogs, as the policy engine's [`Catalog`]:
/// the admin API uses it for explain and pickers, the gateway for decisions.
#[derive(Clone)]
pub struct GatewayCatalog {
    pub(crate) registry: Arc<Registry>,
}

impl std::fmt::Debug for GatewayCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayCatalog").finish_non_exhaustive()
    }
}

impl Catalog for GatewayCatalog {
    fn contains(&self, server: ServerId, tool: &str) -> bool {
        self.registry
            .get(server)
            .is_some_and(|up| up.catalog().contains(tool))
    }

    fn tool_names(&self, server: ServerId) -> Option<Vec<String>> {
        let up = self.registry.get(server)?;
        let catalog = up.catalog();
        Some(catalog.by_name.keys().cloned().collect())
    }
}
