//! Reproducible end-to-end benchmarks of Warden's revocation promise
//! (issue 5), run against real processes on loopback:
//!
//! * [`revocation`]: one PostgreSQL, three `warden serve` replicas, a demo
//!   upstream; how long after an org disable through replica A answers do
//!   calls on B and C get refused, under a steady call load.
//! * [`fanout`]: one `warden serve`, 1,000 live MCP sessions with GET
//!   streams; how long until each receives `notifications/tools/list_changed`
//!   after one org grant changes, and that unaffected sessions get nothing.
//!
//! * [`callers`]: one `warden serve`, 1,000 live sessions each calling a
//!   session-era upstream once; Warden's memory and upstream connections
//!   with per-caller upstream sessions (issue 9), and after they end.
//!
//! Each benchmark starts and stops every process it needs itself and
//! reports a table or JSON.

pub mod admin;
pub mod callers;
pub mod error;
pub mod fanout;
pub mod mcp;
pub mod procs;
pub mod revocation;
pub mod stats;

pub use error::{BenchError, Result};
