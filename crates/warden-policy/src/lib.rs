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
//!
//! Quotas and rate limits ([`LimitRow`]) are configuration in the same
//! snapshot: [`Snapshot::limits_for`] says which limits count a call and
//! which is tightest. They never allow or deny; the data plane enforces them
//! after [`Snapshot::decide`] allowed the call.

mod change;
mod decision;
mod error;
mod filter;
mod impact;
mod limits;
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
pub use impact::{Impact, PrincipalImpact};
pub use limits::{
    AppliedLimit, ConcurrencyBound, EffectiveLimits, LimitCounters, LimitUsage, RateBound,
};
pub use model::{
    AgentId, AgentRow, EndUserId, EndUserRow, KeyId, KeyRow, LimitId, LimitLevel, LimitRow,
    OrgGrantRow, OrgId, OrgRow, PolicyRows, Rate, Scope, ScopeGrants, ServerId, ServerRow, TeamId,
    TeamRow, ToolsetId, ToolsetRow, Window, LIMIT_MAX_BURST, LIMIT_MAX_CONCURRENCY,
    LIMIT_MAX_REQUESTS, LIMIT_TOOL_MAX_LEN,
};
pub use picker::{Allowance, ScopeOffense, ScopeOwner};
pub use slug::{validate_slug, SLUG_MAX_LEN};
pub use snapshot::{Principal, Snapshot};
