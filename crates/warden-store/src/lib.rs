//! Warden's storage: policy rows in SQLite or PostgreSQL, the global
//! revision, the live snapshot and the audit log.

mod live;
mod types;

pub use live::LivePolicy;
pub use types::{DecisionRecord, Secret, Transport, UpstreamConfig};
