//! Warden's storage: policy rows in SQLite or PostgreSQL, the global
//! revision, the live snapshot and the audit log.

mod live;

pub use live::LivePolicy;
