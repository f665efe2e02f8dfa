//! The seams between the data plane and storage: where upstream
//! connection settings come from, where call decisions go, and where
//! identity providers come from (and first-seen people are provisioned).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use warden_identity::ProviderConfig;
use warden_policy::{OrgId, TeamId};
use warden_store::{DecisionOutcome, DecisionRecord, UpstreamConfig};

use crate::error::GatewayError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Loads the connection settings of every upstream server (secrets
/// decrypted). Called at start and whenever the policy revision moves.
pub trait UpstreamSource: Send + Sync + 'static {
    fn load_upstreams(&self) -> BoxFuture<'_, Result<Vec<UpstreamConfig>, GatewayError>>;
}

/// Identity providers and just-in-time provisioning, for bearer tokens
/// issued by an organization's identity provider.
pub trait IdentitySource: Send + Sync + 'static {
    /// Every enabled provider (org, team and agent named by slug). Called
    /// at start and whenever the policy revision moves.
    fn load_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderConfig>, GatewayError>>;

    /// Creates, in one policy write, what a first-seen identity lacks: the
    /// provider's sign-in key for (org, team) and the end user. Existing
    /// rows are left alone. Returns the revision that holds both.
    fn provision(&self, request: Provision) -> BoxFuture<'_, Result<u64, GatewayError>>;
}

/// What [`IdentitySource::provision`] must make exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// The provider's slug.
    pub provider: String,
    pub org: OrgId,
    pub team: Option<TeamId>,
    /// The sign-in key's `token_digest` ([`sign_in_digest`]).
    pub key_digest: String,
    /// The end user's external id.
    pub end_user: String,
}

/// The `token_digest` of the key people of `provider` sign in through, in
/// `org` and `team`. Never a hex SHA-256, so no bearer key can hash to it.
pub fn sign_in_digest(provider: &str, org: OrgId, team: Option<TeamId>) -> String {
    match team {
        Some(t) => format!("idp:{provider}:{org}:{t}"),
        None => format!("idp:{provider}:{org}:-"),
    }
}

/// Receives every call decision for the audit log.
///
/// - `record` is for decisions that forward nothing (denials, lists): called
///   on the request path, it must not block (queue and write in batches); a
///   crash may lose the last few.
/// - `record_durable` is for calls about to be forwarded: the returned
///   future resolves once the record is committed (group commit), and the
///   call is forwarded only after it resolved `Ok`. An error
///   ([`GatewayError::AuditUnavailable`]) means the record is not in the log:
///   refuse the call. The record is queued when this is called.
/// - `record_outcome` applies what is known only when the call ended (its
///   latency) to the row `record_durable` wrote; never blocks; best effort.
///   A decision recorded durably is not `record`ed again when its call
///   ends (that would write a second row): its end goes here.
pub trait DecisionRecorder: Send + Sync + 'static {
    fn record(&self, record: DecisionRecord);
    fn record_durable(
        &self,
        record: DecisionRecord,
    ) -> BoxFuture<'static, Result<(), GatewayError>>;
    fn record_outcome(&self, outcome: DecisionOutcome);
}

/// A fixed, replaceable set of upstream configs: for tests and for a
/// binary that configures upstreams without a store.
#[derive(Debug, Default)]
pub struct StaticUpstreams {
    configs: ArcSwap<Vec<UpstreamConfig>>,
}

impl StaticUpstreams {
    pub fn new(configs: Vec<UpstreamConfig>) -> Arc<Self> {
        Arc::new(StaticUpstreams {
            configs: ArcSwap::from_pointee(configs),
        })
    }

    /// Replaces the configs; the gateway picks them up at the next revision.
    pub fn set(&self, configs: Vec<UpstreamConfig>) {
        self.configs.store(Arc::new(configs));
    }
}

impl UpstreamSource for StaticUpstreams {
    fn load_upstreams(&self) -> BoxFuture<'_, Result<Vec<UpstreamConfig>, GatewayError>> {
        let configs = self.configs.load_full();
        Box::pin(async move { Ok(configs.as_ref().clone()) })
    }
}

/// A recorder that hands decisions to an unbounded channel (tests, or a
/// consumer that batches them itself). Durable records go to the same
/// channel and count as recorded once sent; outcomes go to a second channel
/// if one was asked for ([`ChannelRecorder::with_outcomes`]).
#[derive(Debug, Clone)]
pub struct ChannelRecorder {
    tx: mpsc::UnboundedSender<DecisionRecord>,
    outcomes: Option<mpsc::UnboundedSender<DecisionOutcome>>,
}

impl ChannelRecorder {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<DecisionRecord>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ChannelRecorder { tx, outcomes: None }, rx)
    }

    /// Like [`ChannelRecorder::new`], with outcomes on their own channel.
    pub fn with_outcomes() -> (
        Self,
        mpsc::UnboundedReceiver<DecisionRecord>,
        mpsc::UnboundedReceiver<DecisionOutcome>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (otx, orx) = mpsc::unbounded_channel();
        let recorder = ChannelRecorder {
            tx,
            outcomes: Some(otx),
        };
        (recorder, rx, orx)
    }
}

impl DecisionRecorder for ChannelRecorder {
    fn record(&self, record: DecisionRecord) {
        // A closed receiver means nobody audits: nothing to deliver to.
        let _ = self.tx.send(record);
    }

    /// Resolves as soon as the record is sent (a closed receiver included,
    /// as for `record`).
    fn record_durable(
        &self,
        record: DecisionRecord,
    ) -> BoxFuture<'static, Result<(), GatewayError>> {
        let _ = self.tx.send(record);
        Box::pin(std::future::ready(Ok(())))
    }

    fn record_outcome(&self, outcome: DecisionOutcome) {
        if let Some(outcomes) = &self.outcomes {
            let _ = outcomes.send(outcome);
        }
    }
}

/// A recorder that drops everything (no audit configured): durable records
/// resolve at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecorder;

impl DecisionRecorder for NoRecorder {
    fn record(&self, _record: DecisionRecord) {}

    fn record_durable(
        &self,
        _record: DecisionRecord,
    ) -> BoxFuture<'static, Result<(), GatewayError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn record_outcome(&self, _outcome: DecisionOutcome) {}
}

/// The store is the upstream source in production.
impl UpstreamSource for warden_store::Store {
    fn load_upstreams(&self) -> BoxFuture<'_, Result<Vec<UpstreamConfig>, GatewayError>> {
        Box::pin(async move {
            warden_store::Store::load_upstreams(self)
                .await
                .map_err(|e| GatewayError::Config(e.to_string()))
        })
    }
}

/// The store holds identity providers and provisions people in production.
impl IdentitySource for warden_store::Store {
    fn load_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderConfig>, GatewayError>> {
        Box::pin(async move {
            self.enabled_identity_providers()
                .await
                .map_err(|e| GatewayError::Config(e.to_string()))
        })
    }

    fn provision(&self, r: Provision) -> BoxFuture<'_, Result<u64, GatewayError>> {
        Box::pin(async move {
            self.provision_sign_in(&r.provider, r.org, r.team, &r.key_digest, &r.end_user)
                .await
                .map_err(|e| GatewayError::Config(e.to_string()))
        })
    }
}

/// The store's batching audit writer records call decisions in production.
impl DecisionRecorder for warden_store::AuditWriter {
    fn record(&self, record: DecisionRecord) {
        warden_store::AuditWriter::record(self, record);
    }

    fn record_durable(
        &self,
        record: DecisionRecord,
    ) -> BoxFuture<'static, Result<(), GatewayError>> {
        let committed = warden_store::AuditWriter::record_durable(self, record);
        Box::pin(async move {
            committed.await.map_err(|e| match e {
                warden_store::StoreError::AuditUnavailable(why) => {
                    GatewayError::AuditUnavailable(why)
                }
                other => GatewayError::AuditUnavailable(other.to_string()),
            })
        })
    }

    fn record_outcome(&self, outcome: DecisionOutcome) {
        warden_store::AuditWriter::record_outcome(self, outcome);
    }
}
