//! What the shared CRUD paths need to know about each policy entity, and
//! those paths: read one inside a write, record a change (engine row and
//! audit record) and commit, delete, get.

use std::fmt::Display;

use serde::Serialize;
use sqlx::AnyConnection;
use warden_policy::{AgentId, EndUserId, KeyId, OrgId, PolicyChange, ServerId, TeamId, ToolsetId};

use crate::crud;
use crate::entities::*;
use crate::error::{Result, StoreError};
use crate::store::{view, AuditChange, Store, WriteTx};

/// The integer id behind an entity's typed id.
pub(crate) trait RawId: Copy + Display + Send + Sync {
    fn raw(self) -> i64;
}

macro_rules! raw_ids {
    ($($id:ty),*) => {$(
        impl RawId for $id {
            fn raw(self) -> i64 {
                self.0
            }
        }
    )*};
}

raw_ids!(OrgId, ServerId, TeamId, KeyId, EndUserId, AgentId, ToolsetId);

/// An entity as a write records it: its row in the engine's change feed
/// and its audit record.
pub(crate) trait Recorded: Serialize + Send + Sync {
    /// The audit log's `entity_kind` ("end_user").
    const AUDIT_KIND: &'static str;

    /// The audit log's `entity_id`.
    fn audit_id(&self) -> String;

    /// The org the audit record belongs to.
    fn audit_org(&self) -> Option<OrgId>;

    /// The engine's upsert of this entity as it now is.
    async fn upsert_change(&self, conn: &mut AnyConnection) -> Result<PolicyChange>;
}

/// An entity with its own table and integer id.
pub(crate) trait Stored: Recorded + Sized {
    type Id: RawId;

    /// The kind named in errors ("end user").
    const KIND: &'static str;
    const TABLE: &'static str;

    async fn fetch(conn: &mut AnyConnection, id: Self::Id) -> Result<Option<Self>>;

    /// The engine's delete of `id`.
    fn delete_change(id: Self::Id) -> PolicyChange;

    /// Reads `id`, which must exist.
    async fn fetch_existing(conn: &mut AnyConnection, id: Self::Id) -> Result<Self> {
        Self::fetch(conn, id)
            .await?
            .ok_or_else(|| StoreError::not_found(Self::KIND, id))
    }
}

macro_rules! stored {
    ($ty:ty, $id:ty, $kind:literal, $audit_kind:literal, $table:literal, $fetch:path, $upsert:path, $delete:path, |$v:ident| $org:expr) => {
        impl Recorded for $ty {
            const AUDIT_KIND: &'static str = $audit_kind;

            fn audit_id(&self) -> String {
                self.id.to_string()
            }

            fn audit_org(&self) -> Option<OrgId> {
                let $v = self;
                $org
            }

            async fn upsert_change(&self, conn: &mut AnyConnection) -> Result<PolicyChange> {
                $upsert(conn, self).await
            }
        }

        impl Stored for $ty {
            type Id = $id;
            const KIND: &'static str = $kind;
            const TABLE: &'static str = $table;

            async fn fetch(conn: &mut AnyConnection, id: $id) -> Result<Option<Self>> {
                $fetch(conn, id).await
            }

            fn delete_change(id: $id) -> PolicyChange {
                $delete(id)
            }
        }
    };
}

stored!(
    Org,
    OrgId,
    "org",
    "org",
    "orgs",
    crud::fetch_org,
    crud::upsert_org,
    PolicyChange::DeleteOrg,
    |o| Some(o.id)
);
stored!(
    Server,
    ServerId,
    "server",
    "server",
    "servers",
    crud::fetch_server,
    crud::upsert_server,
    PolicyChange::DeleteServer,
    |s| s.owner_org
);
stored!(
    Team,
    TeamId,
    "team",
    "team",
    "teams",
    crud::fetch_team,
    crud::upsert_team,
    PolicyChange::DeleteTeam,
    |t| Some(t.org)
);
stored!(
    Key,
    KeyId,
    "key",
    "key",
    "keys",
    crud::fetch_key,
    crud::upsert_key,
    PolicyChange::DeleteKey,
    |k| Some(k.org)
);
stored!(
    EndUser,
    EndUserId,
    "end user",
    "end_user",
    "end_users",
    crud::fetch_end_user,
    crud::upsert_end_user,
    PolicyChange::DeleteEndUser,
    |u| Some(u.org)
);
stored!(
    Agent,
    AgentId,
    "agent",
    "agent",
    "agents",
    crud::fetch_agent,
    crud::upsert_agent,
    PolicyChange::DeleteAgent,
    |a| Some(a.org)
);
stored!(
    Toolset,
    ToolsetId,
    "toolset",
    "toolset",
    "toolsets",
    crud::fetch_toolset,
    crud::upsert_toolset,
    PolicyChange::DeleteToolset,
    |t| Some(t.org)
);

impl Recorded for OrgGrant {
    const AUDIT_KIND: &'static str = "org_grant";

    fn audit_id(&self) -> String {
        format!("{}/{}", self.org, self.server)
    }

    fn audit_org(&self) -> Option<OrgId> {
        Some(self.org)
    }

    async fn upsert_change(&self, conn: &mut AnyConnection) -> Result<PolicyChange> {
        crud::upsert_org_grant(conn, self).await
    }
}

impl WriteTx<'_> {
    /// Records `after` (`action` on `before`, or created when `before` is
    /// `None`) in the change feed and the audit log, and commits.
    pub(crate) async fn commit_upsert<T: Recorded>(
        mut self,
        action: &'static str,
        before: Option<&T>,
        after: T,
    ) -> Result<Written<T>> {
        let change = after.upsert_change(self.conn()).await?;
        self.change(change);
        self.audit(AuditChange {
            action,
            entity_kind: T::AUDIT_KIND,
            entity_id: after.audit_id(),
            org: after.audit_org(),
            before: before.and_then(view),
            after: view(&after),
        })
        .await?;
        let revision = self.commit().await?;
        Ok(Written {
            revision,
            value: after,
        })
    }

    /// Reads `id` as this write left it, then [`Self::commit_upsert`].
    pub(crate) async fn commit_written<T: Stored>(
        mut self,
        action: &'static str,
        id: T::Id,
        before: Option<&T>,
    ) -> Result<Written<T>> {
        let after = T::fetch_existing(self.conn(), id).await?;
        self.commit_upsert(action, before, after).await
    }

    /// Records the deletion of `before` and commits.
    pub(crate) async fn commit_delete<T: Recorded>(
        mut self,
        before: &T,
        change: PolicyChange,
    ) -> Result<u64> {
        self.change(change);
        self.audit(AuditChange {
            action: "delete",
            entity_kind: T::AUDIT_KIND,
            entity_id: before.audit_id(),
            org: before.audit_org(),
            before: view(before),
            after: None,
        })
        .await?;
        self.commit().await
    }
}

impl Store {
    /// Deletes `id` (the schema cascades to what hangs off it).
    pub(crate) async fn delete_stored<T: Stored>(&self, actor: &str, id: T::Id) -> Result<u64> {
        let mut w = self.begin_write(actor).await?;
        let before = T::fetch_existing(w.conn(), id).await?;
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", T::TABLE))
            .bind(id.raw())
            .execute(w.conn())
            .await?;
        w.commit_delete(&before, T::delete_change(id)).await
    }

    pub(crate) async fn get_stored<T: Stored>(&self, id: T::Id) -> Result<Option<T>> {
        let mut conn = self.pool().acquire().await?;
        T::fetch(&mut conn, id).await
    }
}
