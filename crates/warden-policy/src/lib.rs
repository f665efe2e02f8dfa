//! Warden's policy model and its one decision.
//!
//! Everything that asks "may this caller see or use this server or tool?" asks
//! this crate: the admin pickers, grant validation, `tools/list` and
//! `tools/call`. The crate is pure: no I/O, no async, no clock (callers pass
//! `now`), so the same inputs always give the same answer.
//!
//! The flow: the store loads [`PolicyRows`] at a revision, [`Snapshot::build`]
//! validates and indexes them, [`Snapshot::access`] compiles what one
//! [`Principal`] may reach, and [`Snapshot::decide`] answers one
//! (server, tool) question with a stable [`Reason`] and a [`Trace`].

mod change;
mod decision;
mod error;
mod filter;
mod model;
mod picker;
mod slug;
mod snapshot;

pub use change::PolicyChange;
pub use decision::{
    Access, Catalog, Check, CheckOutcome, Decision, Level, NoCatalog, Reason, ServerAccess, Trace,
    TraceEntry,
};
pub use error::PolicyError;
pub use filter::ToolFilter;
pub use model::{
    AgentId, AgentRow, EndUserId, EndUserRow, KeyId, KeyRow, OrgGrantRow, OrgId, OrgRow,
    PolicyRows, Scope, ScopeGrants, ServerId, ServerRow, TeamId, TeamRow, ToolsetId, ToolsetRow,
};
pub use picker::{Allowance, ScopeOffense, ScopeOwner};
pub use slug::{validate_slug, SLUG_MAX_LEN};
pub use snapshot::{Principal, Snapshot};
