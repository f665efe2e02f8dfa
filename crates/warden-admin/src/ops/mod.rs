//! The admin operations, independent of HTTP: the handlers and the
//! bootstrap file both call these. Each resolves slugs within what the
//! calling admin may see (another org's objects are "not found"), checks
//! input, and makes one store write.

pub(crate) mod convert;
mod inspect;
mod limits;
mod orgs;
mod policy;
mod servers;

pub use inspect::*;
pub use limits::*;
pub use orgs::*;
pub use policy::*;
pub use servers::*;

/// The owner of a scope, as addressed in a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    Team(String),
    Key(i64),
    /// By external id.
    EndUser(String),
    Agent(String),
    Toolset(String),
}

pub(crate) use convert::store_error;
