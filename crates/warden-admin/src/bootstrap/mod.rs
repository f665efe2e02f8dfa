//! Declarative bootstrap: orgs, servers, grants, toolsets, teams, agents and
//! keys from a TOML file (format: `examples/bootstrap.toml`), applied
//! idempotently: running it again against the same state writes nothing and
//! bumps no revision.

mod apply;
mod file;

pub use apply::{apply, load, parse, BootstrapReport, GeneratedKey};
pub use file::*;
