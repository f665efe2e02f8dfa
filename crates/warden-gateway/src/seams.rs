//! The two seams between the data plane and storage: where upstream
//! connection settings come from, and where call decisions go.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use warden_store::{DecisionRecord, UpstreamConfig};

use crate::error::GatewayError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Loads the connection settings of every upstream server (secrets
/// decrypted). Called at start and whenever the policy revision moves.
pub trait UpstreamSource: Send + Sync + 'static {
    fn load_upstreams(&self) -> BoxFuture<'_, Result<Vec<UpstreamConfig>, GatewayError>>;
}

/// Receives every call decision for the audit log. `record` is called on
/// the request path and must not block (queue and write in batches).
pub trait DecisionRecorder: Send + Sync + 'static {
    fn record(&self, record: DecisionRecord);
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
/// consumer that batches them itself).
#[derive(Debug, Clone)]
pub struct ChannelRecorder {
    tx: mpsc::UnboundedSender<DecisionRecord>,
}

impl ChannelRecorder {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<DecisionRecord>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ChannelRecorder { tx }, rx)
    }
}

impl DecisionRecorder for ChannelRecorder {
    fn record(&self, record: DecisionRecord) {
        // A closed receiver means nobody audits: nothing to deliver to.
        let _ = self.tx.send(record);
    }
}

/// A recorder that drops everything (no audit configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecorder;

impl DecisionRecorder for NoRecorder {
    fn record(&self, _record: DecisionRecord) {}
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

/// The store's batching audit writer records call decisions in production.
impl DecisionRecorder for warden_store::AuditWriter {
    fn record(&self, record: DecisionRecord) {
        warden_store::AuditWriter::record(self, record);
    }
}
