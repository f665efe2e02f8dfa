//! What the shared CRUD paths need to know about each policy entity (its
//! table and columns, how a row decodes, its engine row, its audit names)
//! and those paths: read, record a change and commit, delete, look up, list.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};
use warden_policy::{
    validate_slug, AgentId, AgentRow, EndUserId, EndUserRow, KeyId, KeyRow, OrgGrantRow, OrgId,
    OrgRow, PolicyChange, Scope, ScopeGrants, ScopeOwner, ServerId, ServerRow, TeamId, TeamRow,
    ToolsetId, ToolsetRow,
};

use crate::crud::{check_name, write_scope};
use crate::db::RowExt;
use crate::entities::*;
use crate::error::{constraint, Result, StoreError};
use crate::store::{view, AuditChange, OwnerCol, Store, WriteTx};

/// The integer id behind an entity's typed id.
pub(crate) trait RawId: Copy + Display + Send + Sync {
    fn raw(self) -> i64;
    fn from_raw(id: i64) -> Self;
}

macro_rules! raw_ids {
    ($($id:ty),*) => {$(
        impl RawId for $id {
            fn raw(self) -> i64 {
                self.0
            }

            fn from_raw(id: i64) -> Self {
                Self(id)
            }
        }
    )*};
}

raw_ids!(OrgId, ServerId, TeamId, KeyId, EndUserId, AgentId, ToolsetId);

/// An entity read from one table, possibly with rows hanging off it
/// (scope entries, toolset entries) read through the same connection.
pub(crate) trait Decoded: Sized + Send {
    const TABLE: &'static str;
    /// The columns [`Decoded::from_row`] reads.
    const COLUMNS: &'static str;

    async fn from_row(conn: &mut AnyConnection, row: &AnyRow) -> Result<Self>;

    /// `SELECT` of this entity's columns; `rest` filters and orders.
    fn select(rest: &str) -> String {
        format!("SELECT {} FROM {} {rest}", Self::COLUMNS, Self::TABLE)
    }
}

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

/// An entity with its own integer id.
pub(crate) trait Stored: Decoded + Recorded {
    type Id: RawId;

    /// The kind named in errors ("end user").
    const KIND: &'static str;

    /// The engine's delete of `id`.
    fn delete_change(id: Self::Id) -> PolicyChange;

    async fn fetch(conn: &mut AnyConnection, id: Self::Id) -> Result<Option<Self>> {
        let sql = Self::select("WHERE id = $1");
        fetch_optional(conn, sqlx::query(&sql).bind(id.raw())).await
    }

    /// Reads `id`, which must exist.
    async fn fetch_existing(conn: &mut AnyConnection, id: Self::Id) -> Result<Self> {
        Self::fetch(conn, id)
            .await?
            .ok_or_else(|| StoreError::not_found(Self::KIND, id))
    }
}

/// An entity of an org named by a label unique in the org (a slug, an
/// external id) and a display name.
pub(crate) trait Labelled: Stored {
    /// The label's column.
    const LABEL: &'static str;

    fn label(&self) -> &str;
    fn name(&self) -> &str;

    /// Refuses a label that cannot be stored.
    fn check_label(label: &str) -> Result<()>;
}

/// An entity with a scope of its own.
pub(crate) trait Scoped: Stored {
    const OWNER_COL: OwnerCol;

    fn owner(id: Self::Id) -> ScopeOwner;
}

pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// The first row `query` finds, decoded.
pub(crate) async fn fetch_optional<T: Decoded>(
    conn: &mut AnyConnection,
    query: AnyQuery<'_>,
) -> Result<Option<T>> {
    match query.fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(T::from_row(conn, &row).await?)),
        None => Ok(None),
    }
}

/// Every row `query` finds, decoded.
pub(crate) async fn fetch_all<T: Decoded>(
    conn: &mut AnyConnection,
    query: AnyQuery<'_>,
) -> Result<Vec<T>> {
    let rows = query.fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(T::from_row(conn, row).await?);
    }
    Ok(out)
}

/// The scope stored for one owner (`inherit` is its row's flag).
pub(crate) async fn load_scope(
    conn: &mut AnyConnection,
    col: OwnerCol,
    id: i64,
    inherit: bool,
) -> Result<Scope> {
    if inherit {
        return Ok(Scope::Inherit);
    }
    let mut grants = ScopeGrants::default();
    let sql = format!(
        "SELECT server_id, filter FROM scope_servers WHERE {} = $1",
        col.column()
    );
    for r in sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await? {
        grants
            .servers
            .insert(ServerId(r.int("server_id")?), r.json("filter")?);
    }
    let sql = format!(
        "SELECT toolset_id FROM scope_toolsets WHERE {} = $1",
        col.column()
    );
    for r in sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await? {
        grants.toolsets.insert(ToolsetId(r.int("toolset_id")?));
    }
    Ok(Scope::Grants(grants))
}

/// The scope of the owner whose row is `row`.
async fn scope_of(conn: &mut AnyConnection, col: OwnerCol, row: &AnyRow) -> Result<Scope> {
    load_scope(conn, col, row.int("id")?, row.flag("scope_inherit")?).await
}

macro_rules! labelled {
    ($ty:ty, $label:ident, |$arg:ident| $check:expr) => {
        impl Labelled for $ty {
            const LABEL: &'static str = stringify!($label);

            fn label(&self) -> &str {
                &self.$label
            }

            fn name(&self) -> &str {
                &self.name
            }

            fn check_label($arg: &str) -> Result<()> {
                $check
            }
        }
    };
}

labelled!(Team, slug, |s| Ok(validate_slug("team", s)?));
labelled!(EndUser, external_id, |s| check_name(
    "end user external id",
    s
));
labelled!(Agent, slug, |s| Ok(validate_slug("agent", s)?));
labelled!(Toolset, slug, |s| Ok(validate_slug("toolset", s)?));

macro_rules! scoped {
    ($ty:ty, $col:ident) => {
        impl Scoped for $ty {
            const OWNER_COL: OwnerCol = OwnerCol::$col;

            fn owner(id: Self::Id) -> ScopeOwner {
                ScopeOwner::$col(id)
            }
        }
    };
}

scoped!(Team, Team);
scoped!(Key, Key);
scoped!(EndUser, EndUser);
scoped!(Agent, Agent);

/// The `Recorded` parts every entity with an id and an org shares.
macro_rules! recorded_by_id {
    ($audit_kind:literal, |$v:ident| $org:expr) => {
        const AUDIT_KIND: &'static str = $audit_kind;

        fn audit_id(&self) -> String {
            self.id.to_string()
        }

        fn audit_org(&self) -> Option<OrgId> {
            let $v = self;
            $org
        }
    };
}

// ---------------------------------------------------------------- orgs

impl Decoded for Org {
    const TABLE: &'static str = "orgs";
    const COLUMNS: &'static str = "id, slug, name, suspended, created_at_ms";

    async fn from_row(_: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(Org {
            id: OrgId(r.int("id")?),
            slug: r.text("slug")?,
            name: r.text("name")?,
            suspended: r.flag("suspended")?,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for Org {
    recorded_by_id!("org", |o| Some(o.id));

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertOrg(OrgRow {
            id: self.id,
            slug: self.slug.clone(),
            suspended: self.suspended,
        }))
    }
}

impl Stored for Org {
    type Id = OrgId;
    const KIND: &'static str = "org";

    fn delete_change(id: OrgId) -> PolicyChange {
        PolicyChange::DeleteOrg(id)
    }
}

// ------------------------------------------------------------- servers

impl Decoded for Server {
    const TABLE: &'static str = "servers";
    const COLUMNS: &'static str = "id, slug, owner_org, name, transport, secret_headers, \
                                   enabled, timeout_ms, config_revision, created_at_ms, \
                                   egress_restricted";

    async fn from_row(_: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        let secrets: BTreeMap<String, String> = r.json("secret_headers")?;
        Ok(Server {
            id: ServerId(r.int("id")?),
            slug: r.text("slug")?,
            owner_org: r.opt_int("owner_org")?.map(OrgId),
            name: r.text("name")?,
            transport: r.json("transport")?,
            secret_header_names: secrets.into_keys().collect(),
            enabled: r.flag("enabled")?,
            timeout_ms: r.int("timeout_ms")? as u64,
            config_revision: r.int("config_revision")? as u64,
            created_at_ms: r.int("created_at_ms")?,
            egress_restricted: r.flag("egress_restricted")?,
        })
    }
}

impl Recorded for Server {
    recorded_by_id!("server", |s| s.owner_org);

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertServer(ServerRow {
            id: self.id,
            slug: self.slug.clone(),
            owner_org: self.owner_org,
            enabled: self.enabled,
        }))
    }
}

impl Stored for Server {
    type Id = ServerId;
    const KIND: &'static str = "server";

    fn delete_change(id: ServerId) -> PolicyChange {
        PolicyChange::DeleteServer(id)
    }
}

// ---------------------------------------------------------- org grants

impl Decoded for OrgGrant {
    const TABLE: &'static str = "org_grants";
    const COLUMNS: &'static str = "org_id, server_id, enabled, filter";

    async fn from_row(_: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(OrgGrant {
            org: OrgId(r.int("org_id")?),
            server: ServerId(r.int("server_id")?),
            enabled: r.flag("enabled")?,
            filter: r.json("filter")?,
        })
    }
}

impl Recorded for OrgGrant {
    const AUDIT_KIND: &'static str = "org_grant";

    fn audit_id(&self) -> String {
        format!("{}/{}", self.org, self.server)
    }

    fn audit_org(&self) -> Option<OrgId> {
        Some(self.org)
    }

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertOrgGrant(OrgGrantRow {
            org: self.org,
            server: self.server,
            enabled: self.enabled,
            filter: self.filter.clone(),
        }))
    }
}

// --------------------------------------------------------------- teams

impl Decoded for Team {
    const TABLE: &'static str = "teams";
    const COLUMNS: &'static str = "id, org_id, slug, name, scope_inherit, created_at_ms";

    async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(Team {
            id: TeamId(r.int("id")?),
            org: OrgId(r.int("org_id")?),
            slug: r.text("slug")?,
            name: r.text("name")?,
            scope: scope_of(conn, OwnerCol::Team, r).await?,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for Team {
    recorded_by_id!("team", |t| Some(t.org));

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertTeam(TeamRow {
            id: self.id,
            org: self.org,
            slug: self.slug.clone(),
            scope: self.scope.clone(),
        }))
    }
}

impl Stored for Team {
    type Id = TeamId;
    const KIND: &'static str = "team";

    fn delete_change(id: TeamId) -> PolicyChange {
        PolicyChange::DeleteTeam(id)
    }
}

// ---------------------------------------------------------------- keys

impl Decoded for Key {
    const TABLE: &'static str = "keys";
    const COLUMNS: &'static str = "id, org_id, name, token_prefix, team_id, agent_id, \
                                   scope_inherit, revoked, expires_at_ms, may_assert_end_user, \
                                   may_assert_agent, created_at_ms";

    async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(Key {
            id: KeyId(r.int("id")?),
            org: OrgId(r.int("org_id")?),
            name: r.text("name")?,
            token_prefix: r.text("token_prefix")?,
            team: r.opt_int("team_id")?.map(TeamId),
            agent: r.opt_int("agent_id")?.map(AgentId),
            scope: scope_of(conn, OwnerCol::Key, r).await?,
            revoked: r.flag("revoked")?,
            expires_at_ms: r.opt_int("expires_at_ms")?,
            may_assert_end_user: r.flag("may_assert_end_user")?,
            may_assert_agent: r.flag("may_assert_agent")?,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for Key {
    recorded_by_id!("key", |k| Some(k.org));

    /// The engine finds keys by token digest, which the entity never shows.
    async fn upsert_change(&self, conn: &mut AnyConnection) -> Result<PolicyChange> {
        let token_digest: String =
            sqlx::query_scalar("SELECT token_digest FROM keys WHERE id = $1")
                .bind(self.id.0)
                .fetch_one(&mut *conn)
                .await?;
        Ok(PolicyChange::UpsertKey(KeyRow {
            id: self.id,
            org: self.org,
            token_digest,
            team: self.team,
            agent: self.agent,
            scope: self.scope.clone(),
            revoked: self.revoked,
            expires_at_ms: self.expires_at_ms,
            may_assert_end_user: self.may_assert_end_user,
            may_assert_agent: self.may_assert_agent,
        }))
    }
}

impl Stored for Key {
    type Id = KeyId;
    const KIND: &'static str = "key";

    fn delete_change(id: KeyId) -> PolicyChange {
        PolicyChange::DeleteKey(id)
    }
}

// ----------------------------------------------------------- end users

impl Decoded for EndUser {
    const TABLE: &'static str = "end_users";
    const COLUMNS: &'static str =
        "id, org_id, external_id, name, scope_inherit, disabled, created_at_ms";

    async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(EndUser {
            id: EndUserId(r.int("id")?),
            org: OrgId(r.int("org_id")?),
            external_id: r.text("external_id")?,
            name: r.text("name")?,
            scope: scope_of(conn, OwnerCol::EndUser, r).await?,
            disabled: r.flag("disabled")?,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for EndUser {
    recorded_by_id!("end_user", |u| Some(u.org));

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertEndUser(EndUserRow {
            id: self.id,
            org: self.org,
            external_id: self.external_id.clone(),
            scope: self.scope.clone(),
            disabled: self.disabled,
        }))
    }
}

impl Stored for EndUser {
    type Id = EndUserId;
    const KIND: &'static str = "end user";

    fn delete_change(id: EndUserId) -> PolicyChange {
        PolicyChange::DeleteEndUser(id)
    }
}

// -------------------------------------------------------------- agents

impl Decoded for Agent {
    const TABLE: &'static str = "agents";
    const COLUMNS: &'static str = "id, org_id, team_id, slug, name, scope_inherit, created_at_ms";

    async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(Agent {
            id: AgentId(r.int("id")?),
            org: OrgId(r.int("org_id")?),
            team: r.opt_int("team_id")?.map(TeamId),
            slug: r.text("slug")?,
            name: r.text("name")?,
            scope: scope_of(conn, OwnerCol::Agent, r).await?,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for Agent {
    recorded_by_id!("agent", |a| Some(a.org));

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertAgent(AgentRow {
            id: self.id,
            org: self.org,
            team: self.team,
            slug: self.slug.clone(),
            scope: self.scope.clone(),
        }))
    }
}

impl Stored for Agent {
    type Id = AgentId;
    const KIND: &'static str = "agent";

    fn delete_change(id: AgentId) -> PolicyChange {
        PolicyChange::DeleteAgent(id)
    }
}

// ------------------------------------------------------------ toolsets

impl Decoded for Toolset {
    const TABLE: &'static str = "toolsets";
    const COLUMNS: &'static str = "id, org_id, slug, name, created_at_ms";

    async fn from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        let id = ToolsetId(r.int("id")?);
        let mut servers = BTreeMap::new();
        for e in sqlx::query("SELECT server_id, filter FROM toolset_servers WHERE toolset_id = $1")
            .bind(id.0)
            .fetch_all(&mut *conn)
            .await?
        {
            servers.insert(ServerId(e.int("server_id")?), e.json("filter")?);
        }
        Ok(Toolset {
            id,
            org: OrgId(r.int("org_id")?),
            slug: r.text("slug")?,
            name: r.text("name")?,
            servers,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for Toolset {
    recorded_by_id!("toolset", |t| Some(t.org));

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertToolset(ToolsetRow {
            id: self.id,
            org: self.org,
            slug: self.slug.clone(),
            servers: self.servers.clone(),
        }))
    }
}

impl Stored for Toolset {
    type Id = ToolsetId;
    const KIND: &'static str = "toolset";

    fn delete_change(id: ToolsetId) -> PolicyChange {
        PolicyChange::DeleteToolset(id)
    }
}

// -------------------------------------------------------- admin tokens

impl Decoded for AdminToken {
    const TABLE: &'static str = "admin_tokens";
    const COLUMNS: &'static str = "id, name, org_id, token_prefix, created_at_ms";

    async fn from_row(_: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        Ok(AdminToken {
            id: r.int("id")?,
            name: r.text("name")?,
            org: r.opt_int("org_id")?.map(OrgId),
            token_prefix: r.text("token_prefix")?,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

// -------------------------------------------------------- shared paths

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

    /// Sets the label and name of `id`, keeping what is `None` as in `before`.
    pub(crate) async fn rename<T: Labelled>(
        &mut self,
        id: T::Id,
        before: &T,
        label: Option<String>,
        name: Option<String>,
    ) -> Result<()> {
        let label = label.unwrap_or_else(|| before.label().to_owned());
        let sql = format!(
            "UPDATE {} SET {} = $1, name = $2 WHERE id = $3",
            T::TABLE,
            T::LABEL
        );
        sqlx::query(&sql)
            .bind(label.clone())
            .bind(name.unwrap_or_else(|| before.name().to_owned()))
            .bind(id.raw())
            .execute(self.conn())
            .await
            .map_err(constraint(T::KIND, &label))?;
        Ok(())
    }

    /// Gives the just inserted `id` its scope (checked against its parent
    /// chain before commit), records its creation and commits.
    pub(crate) async fn commit_created_scoped<T: Scoped>(
        mut self,
        id: i64,
        org: OrgId,
        scope: Scope,
    ) -> Result<Written<T>> {
        write_scope(self.conn(), T::OWNER_COL, id, org, &scope).await?;
        let id = T::Id::from_raw(id);
        self.check_scope(T::owner(id), scope);
        self.commit_written("create", id, None).await
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

    /// The first entity `query` finds.
    pub(crate) async fn find<T: Decoded>(&self, query: AnyQuery<'_>) -> Result<Option<T>> {
        let mut conn = self.pool().acquire().await?;
        fetch_optional(&mut conn, query).await
    }

    /// Every entity `query` finds.
    pub(crate) async fn find_all<T: Decoded>(&self, query: AnyQuery<'_>) -> Result<Vec<T>> {
        let mut conn = self.pool().acquire().await?;
        fetch_all(&mut conn, query).await
    }

    /// The entity of `org` whose `column` (unique in the org) is `value`.
    pub(crate) async fn find_in_org<T: Stored>(
        &self,
        org: OrgId,
        column: &str,
        value: &str,
    ) -> Result<Option<T>> {
        let sql = T::select(&format!("WHERE org_id = $1 AND {column} = $2"));
        self.find(sqlx::query(&sql).bind(org.0).bind(value.to_owned()))
            .await
    }

    /// Changes the label and name of `id`, keeping what is `None`.
    pub(crate) async fn update_labelled<T: Labelled>(
        &self,
        actor: &str,
        id: T::Id,
        label: Option<String>,
        name: Option<String>,
    ) -> Result<Written<T>> {
        if let Some(label) = &label {
            T::check_label(label)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = T::fetch_existing(w.conn(), id).await?;
        w.rename(id, &before, label, name).await?;
        w.commit_written("update", id, Some(&before)).await
    }

    /// One page of `org`'s entities, by id.
    pub(crate) async fn list_in_org<T: Stored>(&self, org: OrgId, page: Page) -> Result<Vec<T>> {
        let (after, limit) = page.bounds();
        let sql = T::select("WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3");
        self.find_all(sqlx::query(&sql).bind(org.0).bind(after).bind(limit))
            .await
    }
}
