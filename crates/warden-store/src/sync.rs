//! Background tasks: replica heartbeat (always) and, on PostgreSQL, the
//! change feed that keeps this replica's snapshot current.

use crate::error::Result;
use crate::store::Store;

pub(crate) async fn start(_store: &Store) -> Result<()> {
    Ok(())
}
