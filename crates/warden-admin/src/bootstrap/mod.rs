//! Declarative bootstrap: see `examples/bootstrap.toml`.

mod file;

pub use file::*;
