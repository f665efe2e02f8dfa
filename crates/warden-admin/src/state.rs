//! What every admin request shares: the store (with its live snapshot) and
//! the gateway's tool catalogs.

use std::sync::Arc;

use warden_policy::{Catalog, LimitCounters, Snapshot};
use warden_store::{LivePolicy, Store, StoreError, UpstreamPolicy};

use crate::auth::{Admin, Role};
use crate::dto::{WaitFor, WriteParams};
use crate::error::AdminError;

/// Shared state of the admin router. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    catalog: Arc<dyn Catalog + Send + Sync>,
    upstream_policy: UpstreamPolicy,
    /// The data plane's limit counters (explain says what is left).
    limit_counters: Option<Arc<dyn LimitCounters>>,
    /// Identity providers whose tokens sign admins in, and the public URL
    /// the admin API's resource identifier is built from.
    identity: Option<(Arc<dyn crate::idp_auth::IdentityLookup>, String)>,
}

/// Default wait for `?wait=propagated` without `timeout_ms`.
pub const DEFAULT_PROPAGATION_TIMEOUT_MS: u64 = 5_000;
/// Longest `timeout_ms` accepted.
pub const MAX_PROPAGATION_TIMEOUT_MS: u64 = 60_000;

impl AdminState {
    /// `catalog` is the gateway's view of each server's current tools, used
    /// by explain (the `tool_unknown` check) and to list tools in pickers.
    pub fn new(store: Store, catalog: Arc<dyn Catalog + Send + Sync>) -> Self {
        Self::with_upstream_policy(store, catalog, UpstreamPolicy::default())
    }

    /// As [`new`](Self::new), with the platform's rules for upstreams: the
    /// egress policy org admins' URLs must keep to, and the stdio command
    /// allow-list (the default: strictest egress, any stdio command for
    /// platform admins).
    pub fn with_upstream_policy(
        store: Store,
        catalog: Arc<dyn Catalog + Send + Sync>,
        upstream_policy: UpstreamPolicy,
    ) -> Self {
        AdminState {
            inner: Arc::new(Inner {
                store,
                catalog,
                upstream_policy,
                limit_counters: None,
                identity: None,
            }),
        }
    }

    /// Lets explain say how much of each limit is left on this replica.
    /// Call before the state is cloned (it is set once, at start).
    pub fn with_limit_counters(mut self, counters: Arc<dyn LimitCounters>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.limit_counters = Some(counters);
        }
        self
    }

    /// Accepts identity-provider tokens for admins (see `idp_auth`); the
    /// admin API's resource is `{public_url}/admin/v1`. Call before the
    /// state is cloned (it is set once, at start).
    pub fn with_identities(
        mut self,
        lookup: Arc<dyn crate::idp_auth::IdentityLookup>,
        public_url: String,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.identity = Some((lookup, public_url));
        }
        self
    }

    pub(crate) fn identity_lookup(&self) -> Option<(&dyn crate::idp_auth::IdentityLookup, &str)> {
        self.inner
            .identity
            .as_ref()
            .map(|(l, u)| (l.as_ref(), u.as_str()))
    }

    pub fn limit_counters(&self) -> Option<&dyn LimitCounters> {
        self.inner.limit_counters.as_deref()
    }

    pub fn upstream_policy(&self) -> &UpstreamPolicy {
        &self.inner.upstream_policy
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn live(&self) -> &Arc<LivePolicy> {
        self.inner.store.live()
    }

    /// The live snapshot (what every decision of this process uses now).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.live().snapshot()
    }

    pub fn catalog(&self) -> &(dyn Catalog + Send + Sync) {
        self.inner.catalog.as_ref()
    }

    /// Maps a store error, naming ids by their slugs.
    pub(crate) fn error(&self, e: StoreError) -> AdminError {
        crate::ops::store_error(&self.snapshot(), e)
    }

    /// Who `token` is, or 401 (the REST API's bearer extractor and the
    /// console's sign-in both ask this).
    pub async fn authenticate(&self, token: &str) -> Result<Admin, AdminError> {
        let identity = self
            .store()
            .authenticate_admin(token)
            .await
            .map_err(|e| self.error(e))?
            .ok_or(AdminError::Unauthorized)?;
        Ok(Admin {
            actor: identity.actor(),
            name: identity.name,
            role: match identity.org {
                None => Role::Platform,
                Some(org) => Role::Org(org),
            },
        })
    }

    /// After a write at `revision` (already live here): waits for every
    /// live replica too when the caller asked for `?wait=propagated`.
    pub(crate) async fn settle(
        &self,
        revision: u64,
        params: &WriteParams,
    ) -> Result<(), AdminError> {
        if params.wait != Some(WaitFor::Propagated) {
            return Ok(());
        }
        let timeout_ms = params
            .timeout_ms
            .unwrap_or(DEFAULT_PROPAGATION_TIMEOUT_MS)
            .min(MAX_PROPAGATION_TIMEOUT_MS);
        crate::ops::wait_propagated(self, revision, timeout_ms).await
    }
}
