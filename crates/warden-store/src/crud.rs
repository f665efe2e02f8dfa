//! Typed create/read/update/delete for every policy entity. Each write is
//! one [`WriteTx`](crate::store::WriteTx): revision bump, change, audit
//! record, engine validation, commit, live snapshot installed.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use warden_policy::{
    validate_slug, AgentId, EndUserId, KeyId, OrgId, PolicyChange, Scope, ScopeGrants, ScopeOwner,
    ServerId, TeamId, ToolFilter, ToolsetId,
};

use crate::db::{self, to_json, RowExt};
use crate::entities::*;
use crate::error::{constraint, Result, StoreError};
use crate::store::{insert_admin_audit, owner_id, owner_kind, view, AuditChange, OwnerCol, Store};
use crate::stored::{fetch_optional, load_scope, Decoded, Labelled, RawId, Scoped, Stored};
use crate::types::{Secret, Transport, UpstreamConfig};

/// The upsert of a scope owner as it now is.
async fn owner_change(conn: &mut AnyConnection, owner: ScopeOwner) -> Result<PolicyChange> {
    match owner {
        ScopeOwner::Team(id) => upsert_of::<Team>(conn, id).await,
        ScopeOwner::Key(id) => upsert_of::<Key>(conn, id).await,
        ScopeOwner::EndUser(id) => upsert_of::<EndUser>(conn, id).await,
        ScopeOwner::Agent(id) => upsert_of::<Agent>(conn, id).await,
        ScopeOwner::Toolset(id) => upsert_of::<Toolset>(conn, id).await,
    }
}

async fn upsert_of<T: Stored>(conn: &mut AnyConnection, id: T::Id) -> Result<PolicyChange> {
    T::fetch_existing(conn, id).await?.upsert_change(conn).await
}

/// Token prefix of gateway keys.
pub const KEY_TOKEN_PREFIX: &str = "wdn_";
/// Token prefix of admin API tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "wdna_";
/// How many leading characters of a token are kept for display.
const SHOWN_PREFIX_LEN: usize = 12;

/// Hex SHA-256 of a bearer token: how keys and admin tokens are found.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub(crate) fn shown_prefix(token: &str) -> String {
    token.chars().take(SHOWN_PREFIX_LEN).collect()
}

/// Inserts an unrevoked key with an *inherit* scope, for `token`.
pub(crate) async fn insert_key(
    conn: &mut AnyConnection,
    new: &NewKey,
    token: &Secret,
    created_at_ms: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO keys (org_id, name, token_digest, token_prefix, team_id, agent_id, scope_inherit, \
         revoked, expires_at_ms, may_assert_end_user, may_assert_agent, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, 0, $7, $8, $9, $10) RETURNING id",
    )
    .bind(new.org.0)
    .bind(new.name.clone())
    .bind(token_digest(token.expose()))
    .bind(shown_prefix(token.expose()))
    .bind(new.team.map(|t| t.0))
    .bind(new.agent.map(|a| a.0))
    .bind(new.expires_at_ms)
    .bind(i64::from(new.may_assert_end_user))
    .bind(i64::from(new.may_assert_agent))
    .bind(created_at_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(constraint("key", &new.name))
}

fn name_or(name: String, fallback: &str) -> String {
    if name.trim().is_empty() {
        fallback.to_owned()
    } else {
        name
    }
}

fn opt_id(v: Option<impl Into<i64>>) -> Option<i64> {
    v.map(Into::into)
}

async fn exists(conn: &mut AnyConnection, sql: &str, a: i64, b: Option<i64>) -> Result<bool> {
    let mut q = sqlx::query(sql).bind(a);
    if let Some(b) = b {
        q = q.bind(b);
    }
    Ok(q.fetch_optional(&mut *conn).await?.is_some())
}

async fn require_org(conn: &mut AnyConnection, org: OrgId) -> Result<()> {
    if exists(conn, "SELECT 1 FROM orgs WHERE id = $1", org.0, None).await? {
        Ok(())
    } else {
        Err(StoreError::not_found("org", org))
    }
}

/// `id` must be an entity of `org`: another org's is dangling, like a missing one.
async fn require_in_org<T: Stored>(conn: &mut AnyConnection, id: T::Id, org: OrgId) -> Result<()> {
    let sql = format!("SELECT 1 FROM {} WHERE id = $1 AND org_id = $2", T::TABLE);
    if exists(conn, &sql, id.raw(), Some(org.0)).await? {
        Ok(())
    } else {
        Err(StoreError::Dangling {
            kind: T::KIND,
            id: id.to_string(),
        })
    }
}

pub(crate) fn check_name(kind: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StoreError::BadInput(format!("{kind} must not be empty")));
    }
    if value.len() > 256 {
        return Err(StoreError::BadInput(format!(
            "{kind} must be at most 256 bytes"
        )));
    }
    Ok(())
}

fn check_header_name(name: &str) -> Result<()> {
    // An HTTP token (RFC 9110) so it can be sent as a header as is.
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadInput(format!(
            "secret header name {name:?} is not a valid HTTP header name"
        )))
    }
}

fn check_timeout(timeout_ms: u64) -> Result<i64> {
    match i64::try_from(timeout_ms) {
        Ok(t) if t > 0 && t <= 24 * 3600 * 1000 => Ok(t),
        _ => Err(StoreError::BadInput(
            "timeout_ms must be between 1 and 86400000".into(),
        )),
    }
}

fn check_transport(transport: &Transport) -> Result<()> {
    match transport {
        Transport::Http { url } => {
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(())
            } else {
                Err(StoreError::BadInput(format!(
                    "server URL {url:?} must be http:// or https://"
                )))
            }
        }
        Transport::Stdio { command, .. } => check_name("stdio command", command),
    }
}

/// Replaces the scope of one owner (row flag and entries).
pub(crate) async fn write_scope(
    conn: &mut AnyConnection,
    col: OwnerCol,
    id: i64,
    org: OrgId,
    scope: &Scope,
) -> Result<()> {
    let c = col.column();
    sqlx::query(&format!("DELETE FROM scope_servers WHERE {c} = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("DELETE FROM scope_toolsets WHERE {c} = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "UPDATE {} SET scope_inherit = $1 WHERE id = $2",
        col.table()
    ))
    .bind(i64::from(matches!(scope, Scope::Inherit)))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let Some(grants) = scope.grants() else {
        return Ok(());
    };
    let insert_server = format!(
        "INSERT INTO scope_servers ({c}, org_id, server_id, filter) VALUES ($1, $2, $3, $4)"
    );
    for (server, filter) in &grants.servers {
        sqlx::query(&insert_server)
            .bind(id)
            .bind(org.0)
            .bind(server.0)
            .bind(to_json(filter)?)
            .execute(&mut *conn)
            .await
            .map_err(|e| reference_error(e, "org grant for server", server.0))?;
    }
    let insert_toolset =
        format!("INSERT INTO scope_toolsets ({c}, org_id, toolset_id) VALUES ($1, $2, $3)");
    for toolset in &grants.toolsets {
        sqlx::query(&insert_toolset)
            .bind(id)
            .bind(org.0)
            .bind(toolset.0)
            .execute(&mut *conn)
            .await
            .map_err(|e| reference_error(e, "toolset", toolset.0))?;
    }
    Ok(())
}

/// A foreign key violation on inserting a reference to `kind id`.
pub(crate) fn reference_error(e: sqlx::Error, kind: &'static str, id: i64) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if matches!(db.kind(), sqlx::error::ErrorKind::ForeignKeyViolation) {
            return StoreError::Dangling {
                kind,
                id: id.to_string(),
            };
        }
    }
    StoreError::Database(e)
}

async fn write_toolset_servers(
    conn: &mut AnyConnection,
    toolset: ToolsetId,
    org: OrgId,
    servers: &BTreeMap<ServerId, ToolFilter>,
) -> Result<()> {
    sqlx::query("DELETE FROM toolset_servers WHERE toolset_id = $1")
        .bind(toolset.0)
        .execute(&mut *conn)
        .await?;
    for (server, filter) in servers {
        sqlx::query(
            "INSERT INTO toolset_servers (toolset_id, org_id, server_id, filter) VALUES ($1, $2, $3, $4)",
        )
        .bind(toolset.0)
        .bind(org.0)
        .bind(server.0)
        .bind(to_json(filter)?)
        .execute(&mut *conn)
        .await
        .map_err(|e| reference_error(e, "org grant for server", server.0))?;
    }
    Ok(())
}

async fn fetch_grant(
    conn: &mut AnyConnection,
    org: OrgId,
    server: ServerId,
) -> Result<Option<OrgGrant>> {
    let sql = OrgGrant::select("WHERE org_id = $1 AND server_id = $2");
    fetch_optional(conn, sqlx::query(&sql).bind(org.0).bind(server.0)).await
}

impl Store {
    /// Creates a labelled entity of `org` with `scope` (`None`: *inherit*);
    /// an empty `name` becomes the label.
    async fn create_labelled<T: Labelled + Scoped>(
        &self,
        actor: &str,
        org: OrgId,
        label: String,
        name: String,
        scope: Option<Scope>,
    ) -> Result<Written<T>> {
        T::check_label(&label)?;
        let name = name_or(name, &label);
        let scope = scope.unwrap_or(Scope::Inherit);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), org).await?;
        let sql = format!(
            "INSERT INTO {} (org_id, {}, name, scope_inherit, created_at_ms) \
             VALUES ($1, $2, $3, 1, $4) RETURNING id",
            T::TABLE,
            T::LABEL
        );
        let id: i64 = sqlx::query_scalar(&sql)
            .bind(org.0)
            .bind(label.clone())
            .bind(name)
            .bind(db::now_ms())
            .fetch_one(w.conn())
            .await
            .map_err(constraint(T::KIND, &label))?;
        w.commit_created_scoped(id, org, scope).await
    }

    // ---------------------------------------------------------------- orgs

    pub async fn create_org(&self, actor: &str, new: NewOrg) -> Result<Written<Org>> {
        validate_slug("org", &new.slug)?;
        let name = name_or(new.name, &new.slug);
        let mut w = self.begin_write(actor).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orgs (slug, name, suspended, created_at_ms) VALUES ($1, $2, 0, $3) RETURNING id",
        )
        .bind(new.slug.clone())
        .bind(name)
        .bind(db::now_ms())
        .fetch_one(w.conn())
        .await
        .map_err(constraint("org", &new.slug))?;
        w.commit_written("create", OrgId(id), None).await
    }

    pub async fn update_org(
        &self,
        actor: &str,
        id: OrgId,
        patch: OrgPatch,
    ) -> Result<Written<Org>> {
        if let Some(slug) = &patch.slug {
            validate_slug("org", slug)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = Org::fetch_existing(w.conn(), id).await?;
        let slug = patch.slug.unwrap_or_else(|| before.slug.clone());
        sqlx::query("UPDATE orgs SET slug = $1, name = $2, suspended = $3 WHERE id = $4")
            .bind(slug.clone())
            .bind(patch.name.unwrap_or_else(|| before.name.clone()))
            .bind(i64::from(patch.suspended.unwrap_or(before.suspended)))
            .bind(id.0)
            .execute(w.conn())
            .await
            .map_err(constraint("org", &slug))?;
        w.commit_written("update", id, Some(&before)).await
    }

    /// Deletes an org and everything in it (servers it owns, grants, teams,
    /// keys, end users, agents, toolsets, org admin tokens).
    pub async fn delete_org(&self, actor: &str, id: OrgId) -> Result<u64> {
        self.delete_stored::<Org>(actor, id).await
    }

    pub async fn get_org(&self, id: OrgId) -> Result<Option<Org>> {
        self.get_stored(id).await
    }

    pub async fn get_org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
        let sql = Org::select("WHERE slug = $1");
        self.find(sqlx::query(&sql).bind(slug.to_owned())).await
    }

    pub async fn list_orgs(&self, page: Page) -> Result<Vec<Org>> {
        let (after, limit) = page.bounds();
        let sql = Org::select("WHERE id > $1 ORDER BY id LIMIT $2");
        self.find_all(sqlx::query(&sql).bind(after).bind(limit))
            .await
    }

    // ------------------------------------------------------------- servers

    /// Another server that `slug` would clash with for `owner` (a global
    /// slug must be unique among all servers; an org server's among global
    /// servers and that org's), ignoring `except`.
    async fn server_slug_taken(
        conn: &mut AnyConnection,
        slug: &str,
        owner: Option<OrgId>,
        except: Option<ServerId>,
    ) -> Result<bool> {
        let rows = sqlx::query("SELECT id, owner_org FROM servers WHERE slug = $1")
            .bind(slug.to_owned())
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            if Some(ServerId(r.int("id")?)) == except {
                continue;
            }
            let other_owner = r.opt_int("owner_org")?.map(OrgId);
            if owner.is_none() || other_owner.is_none() || other_owner == owner {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn encrypt_headers(&self, headers: &BTreeMap<String, Secret>) -> Result<String> {
        let mut out = BTreeMap::new();
        for (name, value) in headers {
            check_header_name(name)?;
            out.insert(name.clone(), self.inner.cipher.encrypt(name, value)?);
        }
        to_json(&out)
    }

    pub async fn create_server(&self, actor: &str, new: NewServer) -> Result<Written<Server>> {
        validate_slug("server", &new.slug)?;
        check_transport(&new.transport)?;
        let timeout = check_timeout(new.timeout_ms)?;
        let secrets = self.encrypt_headers(&new.secret_headers)?;
        let name = name_or(new.name, &new.slug);
        let mut w = self.begin_write(actor).await?;
        if let Some(org) = new.owner_org {
            require_org(w.conn(), org).await?;
        }
        if Self::server_slug_taken(w.conn(), &new.slug, new.owner_org, None).await? {
            return Err(StoreError::Duplicate {
                kind: "server",
                name: new.slug,
            });
        }
        let revision = w.revision as i64;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO servers (slug, owner_org, name, transport, secret_headers, enabled, \
             timeout_ms, config_revision, created_at_ms, egress_restricted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(new.slug.clone())
        .bind(opt_id(new.owner_org.map(|o| o.0)))
        .bind(name)
        .bind(to_json(&new.transport)?)
        .bind(secrets)
        .bind(i64::from(new.enabled))
        .bind(timeout)
        .bind(revision)
        .bind(db::now_ms())
        .bind(i64::from(new.egress_restricted))
        .fetch_one(w.conn())
        .await
        .map_err(constraint("server", &new.slug))?;
        w.commit_written("create", ServerId(id), None).await
    }

    /// Updates a server. `secret_headers`, when given, replaces all of them.
    /// Changing how to reach it moves `config_revision` (the gateway reconnects).
    pub async fn update_server(
        &self,
        actor: &str,
        id: ServerId,
        patch: ServerPatch,
    ) -> Result<Written<Server>> {
        if let Some(slug) = &patch.slug {
            validate_slug("server", slug)?;
        }
        if let Some(t) = &patch.transport {
            check_transport(t)?;
        }
        let timeout = patch.timeout_ms.map(check_timeout).transpose()?;
        let secrets = patch
            .secret_headers
            .as_ref()
            .map(|h| self.encrypt_headers(h))
            .transpose()?;
        let mut w = self.begin_write(actor).await?;
        let before = Server::fetch_existing(w.conn(), id).await?;
        let slug = patch.slug.clone().unwrap_or_else(|| before.slug.clone());
        if slug != before.slug
            && Self::server_slug_taken(w.conn(), &slug, before.owner_org, Some(id)).await?
        {
            return Err(StoreError::Duplicate {
                kind: "server",
                name: slug,
            });
        }
        let egress_restricted = patch.egress_restricted.unwrap_or(before.egress_restricted);
        let reconnect = patch.slug.as_ref().is_some_and(|s| *s != before.slug)
            || patch
                .transport
                .as_ref()
                .is_some_and(|t| *t != before.transport)
            || secrets.is_some()
            || patch.timeout_ms.is_some_and(|t| t != before.timeout_ms)
            || egress_restricted != before.egress_restricted;
        let config_revision = if reconnect {
            w.revision
        } else {
            before.config_revision
        };
        let mut q = sqlx::query(
            "UPDATE servers SET slug = $1, name = $2, transport = $3, enabled = $4, timeout_ms = $5, \
             config_revision = $6, egress_restricted = $7 WHERE id = $8",
        )
        .bind(slug.clone())
        .bind(patch.name.unwrap_or_else(|| before.name.clone()))
        .bind(to_json(patch.transport.as_ref().unwrap_or(&before.transport))?)
        .bind(i64::from(patch.enabled.unwrap_or(before.enabled)))
        .bind(timeout.unwrap_or(before.timeout_ms as i64))
        .bind(config_revision as i64)
        .bind(i64::from(egress_restricted))
        .bind(id.0);
        q.execute(w.conn())
            .await
            .map_err(constraint("server", &slug))?;
        if let Some(secrets) = secrets {
            q = sqlx::query("UPDATE servers SET secret_headers = $1 WHERE id = $2")
                .bind(secrets)
                .bind(id.0);
            q.execute(w.conn()).await?;
        }
        w.commit_written("update", id, Some(&before)).await
    }

    /// Deletes a server with every grant, scope entry and toolset entry for it.
    pub async fn delete_server(&self, actor: &str, id: ServerId) -> Result<u64> {
        self.delete_stored::<Server>(actor, id).await
    }

    pub async fn get_server(&self, id: ServerId) -> Result<Option<Server>> {
        self.get_stored(id).await
    }

    /// The server with exactly this owner (`None`: global) and slug.
    pub async fn get_server_by_slug(
        &self,
        owner: Option<OrgId>,
        slug: &str,
    ) -> Result<Option<Server>> {
        let sql = match owner {
            None => Server::select("WHERE owner_org IS NULL AND slug = $1"),
            Some(_) => Server::select("WHERE owner_org = $2 AND slug = $1"),
        };
        let mut q = sqlx::query(&sql).bind(slug.to_owned());
        if let Some(org) = owner {
            q = q.bind(org.0);
        }
        self.find(q).await
    }

    /// The server `slug` names for `org`: global, or owned by `org`.
    /// Another org's server is `None`, like a missing one.
    pub async fn find_server_for_org(&self, org: OrgId, slug: &str) -> Result<Option<Server>> {
        let sql = Server::select("WHERE slug = $1 AND (owner_org IS NULL OR owner_org = $2)");
        self.find(sqlx::query(&sql).bind(slug.to_owned()).bind(org.0))
            .await
    }

    /// All servers (`visible_to: None`), or those an org can see: global
    /// ones and its own.
    pub async fn list_servers(&self, visible_to: Option<OrgId>) -> Result<Vec<Server>> {
        match visible_to {
            None => {
                let sql = Server::select("ORDER BY id");
                self.find_all(sqlx::query(&sql)).await
            }
            Some(org) => {
                let sql = Server::select("WHERE owner_org IS NULL OR owner_org = $1 ORDER BY id");
                self.find_all(sqlx::query(&sql).bind(org.0)).await
            }
        }
    }

    fn upstream_from(&self, r: &AnyRow) -> Result<UpstreamConfig> {
        let stored: BTreeMap<String, String> = r.json("secret_headers")?;
        let mut secret_headers = BTreeMap::new();
        for (name, value) in stored {
            let secret = self.inner.cipher.decrypt(&name, &value)?;
            secret_headers.insert(name, secret);
        }
        Ok(UpstreamConfig {
            server: ServerId(r.int("id")?),
            slug: r.text("slug")?,
            owner_org: r.opt_int("owner_org")?.map(OrgId),
            transport: r.json("transport")?,
            secret_headers,
            timeout_ms: r.int("timeout_ms")? as u64,
            egress_restricted: r.flag("egress_restricted")?,
            config_revision: r.int("config_revision")? as u64,
        })
    }

    /// How to reach every server, secrets decrypted (for the gateway only).
    pub async fn load_upstreams(&self) -> Result<Vec<UpstreamConfig>> {
        let sql = Server::select("ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(|r| self.upstream_from(r)).collect()
    }

    pub async fn load_upstream(&self, id: ServerId) -> Result<Option<UpstreamConfig>> {
        let sql = Server::select("WHERE id = $1");
        match sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
        {
            Some(r) => Ok(Some(self.upstream_from(&r)?)),
            None => Ok(None),
        }
    }

    // ---------------------------------------------------------- org grants

    /// Makes `grant.server` (global, or owned by the org) available to `grant.org`.
    pub async fn create_org_grant(
        &self,
        actor: &str,
        grant: OrgGrant,
    ) -> Result<Written<OrgGrant>> {
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), grant.org).await?;
        match Server::fetch(w.conn(), grant.server).await? {
            Some(s) if s.owner_org.is_none() || s.owner_org == Some(grant.org) => {}
            // Another org's server does not exist for this org.
            _ => return Err(StoreError::not_found("server", grant.server)),
        }
        let name = grant.server.to_string();
        sqlx::query(
            "INSERT INTO org_grants (org_id, server_id, enabled, filter) VALUES ($1, $2, $3, $4)",
        )
        .bind(grant.org.0)
        .bind(grant.server.0)
        .bind(i64::from(grant.enabled))
        .bind(to_json(&grant.filter)?)
        .execute(w.conn())
        .await
        .map_err(constraint("org grant for server", &name))?;
        w.commit_upsert("create", None, grant).await
    }

    pub async fn update_org_grant(
        &self,
        actor: &str,
        org: OrgId,
        server: ServerId,
        patch: OrgGrantPatch,
    ) -> Result<Written<OrgGrant>> {
        let mut w = self.begin_write(actor).await?;
        let before = fetch_grant(w.conn(), org, server)
            .await?
            .ok_or_else(|| StoreError::not_found("org grant for server", server))?;
        let after = OrgGrant {
            org,
            server,
            enabled: patch.enabled.unwrap_or(before.enabled),
            filter: patch.filter.unwrap_or_else(|| before.filter.clone()),
        };
        sqlx::query(
            "UPDATE org_grants SET enabled = $1, filter = $2 WHERE org_id = $3 AND server_id = $4",
        )
        .bind(i64::from(after.enabled))
        .bind(to_json(&after.filter)?)
        .bind(org.0)
        .bind(server.0)
        .execute(w.conn())
        .await?;
        w.commit_upsert("update", Some(&before), after).await
    }

    /// Deletes a grant and every scope and toolset entry of the org for
    /// that server (a later grant starts from nothing).
    pub async fn delete_org_grant(&self, actor: &str, org: OrgId, server: ServerId) -> Result<u64> {
        let mut w = self.begin_write(actor).await?;
        let before = fetch_grant(w.conn(), org, server)
            .await?
            .ok_or_else(|| StoreError::not_found("org grant for server", server))?;
        sqlx::query("DELETE FROM org_grants WHERE org_id = $1 AND server_id = $2")
            .bind(org.0)
            .bind(server.0)
            .execute(w.conn())
            .await?;
        w.commit_delete(&before, PolicyChange::DeleteOrgGrant { org, server })
            .await
    }

    pub async fn get_org_grant(&self, org: OrgId, server: ServerId) -> Result<Option<OrgGrant>> {
        let mut conn = self.pool().acquire().await?;
        fetch_grant(&mut conn, org, server).await
    }

    pub async fn list_org_grants(&self, org: OrgId) -> Result<Vec<OrgGrant>> {
        let sql = OrgGrant::select("WHERE org_id = $1 ORDER BY server_id");
        self.find_all(sqlx::query(&sql).bind(org.0)).await
    }

    // --------------------------------------------------------------- teams

    pub async fn create_team(&self, actor: &str, new: NewTeam) -> Result<Written<Team>> {
        self.create_labelled(actor, new.org, new.slug, new.name, new.scope)
            .await
    }

    pub async fn update_team(
        &self,
        actor: &str,
        id: TeamId,
        patch: TeamPatch,
    ) -> Result<Written<Team>> {
        self.update_labelled(actor, id, patch.slug, patch.name)
            .await
    }

    /// Deletes a team with its keys and agents (and keys bound to those agents).
    pub async fn delete_team(&self, actor: &str, id: TeamId) -> Result<u64> {
        self.delete_stored::<Team>(actor, id).await
    }

    pub async fn get_team(&self, id: TeamId) -> Result<Option<Team>> {
        self.get_stored(id).await
    }

    pub async fn get_team_by_slug(&self, org: OrgId, slug: &str) -> Result<Option<Team>> {
        self.find_in_org(org, "slug", slug).await
    }

    pub async fn list_teams(&self, org: OrgId, page: Page) -> Result<Vec<Team>> {
        self.list_in_org(org, page).await
    }

    // ---------------------------------------------------------------- keys

    /// Creates a key. The token (`wdn_…`, 32 random bytes) is returned this
    /// once; only its SHA-256 digest is stored.
    pub async fn create_key(&self, actor: &str, mut new: NewKey) -> Result<Written<CreatedKey>> {
        check_name("key name", &new.name)?;
        let scope = new.scope.take().unwrap_or(Scope::Inherit);
        let token = new_token(KEY_TOKEN_PREFIX);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), new.org).await?;
        if let Some(team) = new.team {
            require_in_org::<Team>(w.conn(), team, new.org).await?;
        }
        if let Some(agent) = new.agent {
            require_in_org::<Agent>(w.conn(), agent, new.org).await?;
        }
        let id = insert_key(w.conn(), &new, &token, db::now_ms()).await?;
        let written: Written<Key> = w.commit_created_scoped(id, new.org, scope).await?;
        Ok(Written {
            revision: written.revision,
            value: CreatedKey {
                key: written.value,
                token,
            },
        })
    }

    pub async fn update_key(
        &self,
        actor: &str,
        id: KeyId,
        patch: KeyPatch,
    ) -> Result<Written<Key>> {
        if let Some(name) = &patch.name {
            check_name("key name", name)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = Key::fetch_existing(w.conn(), id).await?;
        let name = patch.name.unwrap_or_else(|| before.name.clone());
        sqlx::query(
            "UPDATE keys SET name = $1, revoked = $2, expires_at_ms = $3, may_assert_end_user = $4, \
             may_assert_agent = $5 WHERE id = $6",
        )
        .bind(name.clone())
        .bind(i64::from(patch.revoked.unwrap_or(before.revoked)))
        .bind(patch.expires_at_ms.unwrap_or(before.expires_at_ms))
        .bind(i64::from(patch.may_assert_end_user.unwrap_or(before.may_assert_end_user)))
        .bind(i64::from(patch.may_assert_agent.unwrap_or(before.may_assert_agent)))
        .bind(id.0)
        .execute(w.conn())
        .await
        .map_err(constraint("key", &name))?;
        let after = Key::fetch_existing(w.conn(), id).await?;
        let action = if after.revoked && !before.revoked {
            "revoke"
        } else {
            "update"
        };
        w.commit_upsert(action, Some(&before), after).await
    }

    pub async fn revoke_key(&self, actor: &str, id: KeyId) -> Result<Written<Key>> {
        self.update_key(
            actor,
            id,
            KeyPatch {
                revoked: Some(true),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn delete_key(&self, actor: &str, id: KeyId) -> Result<u64> {
        self.delete_stored::<Key>(actor, id).await
    }

    pub async fn get_key(&self, id: KeyId) -> Result<Option<Key>> {
        self.get_stored(id).await
    }

    pub async fn get_key_by_name(&self, org: OrgId, name: &str) -> Result<Option<Key>> {
        self.find_in_org(org, "name", name).await
    }

    pub async fn list_keys(&self, org: OrgId, page: Page) -> Result<Vec<Key>> {
        self.list_in_org(org, page).await
    }

    // ----------------------------------------------------------- end users

    pub async fn create_end_user(&self, actor: &str, new: NewEndUser) -> Result<Written<EndUser>> {
        self.create_labelled(actor, new.org, new.external_id, new.name, new.scope)
            .await
    }

    pub async fn update_end_user(
        &self,
        actor: &str,
        id: EndUserId,
        patch: EndUserPatch,
    ) -> Result<Written<EndUser>> {
        if let Some(label) = &patch.external_id {
            EndUser::check_label(label)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = EndUser::fetch_existing(w.conn(), id).await?;
        w.rename(id, &before, patch.external_id, patch.name).await?;
        if let Some(disabled) = patch.disabled {
            sqlx::query("UPDATE end_users SET disabled = $1 WHERE id = $2")
                .bind(i64::from(disabled))
                .bind(id.0)
                .execute(w.conn())
                .await?;
        }
        w.commit_written("update", id, Some(&before)).await
    }

    pub async fn delete_end_user(&self, actor: &str, id: EndUserId) -> Result<u64> {
        self.delete_stored::<EndUser>(actor, id).await
    }

    pub async fn get_end_user(&self, id: EndUserId) -> Result<Option<EndUser>> {
        self.get_stored(id).await
    }

    pub async fn get_end_user_by_external_id(
        &self,
        org: OrgId,
        external_id: &str,
    ) -> Result<Option<EndUser>> {
        self.find_in_org(org, "external_id", external_id).await
    }

    pub async fn list_end_users(&self, org: OrgId, page: Page) -> Result<Vec<EndUser>> {
        self.list_in_org(org, page).await
    }

    // -------------------------------------------------------------- agents

    /// Creates an agent; without a scope it starts empty (it uses only what
    /// is attached to it).
    pub async fn create_agent(&self, actor: &str, new: NewAgent) -> Result<Written<Agent>> {
        validate_slug("agent", &new.slug)?;
        let name = name_or(new.name, &new.slug);
        let scope = new.scope.unwrap_or_else(Scope::empty);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), new.org).await?;
        if let Some(team) = new.team {
            require_in_org::<Team>(w.conn(), team, new.org).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO agents (org_id, team_id, slug, name, scope_inherit, created_at_ms) \
             VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
        )
        .bind(new.org.0)
        .bind(new.team.map(|t| t.0))
        .bind(new.slug.clone())
        .bind(name)
        .bind(db::now_ms())
        .fetch_one(w.conn())
        .await
        .map_err(constraint("agent", &new.slug))?;
        w.commit_created_scoped(id, new.org, scope).await
    }

    pub async fn update_agent(
        &self,
        actor: &str,
        id: AgentId,
        patch: AgentPatch,
    ) -> Result<Written<Agent>> {
        self.update_labelled(actor, id, patch.slug, patch.name)
            .await
    }

    /// Deletes an agent and the keys bound to it.
    pub async fn delete_agent(&self, actor: &str, id: AgentId) -> Result<u64> {
        self.delete_stored::<Agent>(actor, id).await
    }

    pub async fn get_agent(&self, id: AgentId) -> Result<Option<Agent>> {
        self.get_stored(id).await
    }

    pub async fn get_agent_by_slug(&self, org: OrgId, slug: &str) -> Result<Option<Agent>> {
        self.find_in_org(org, "slug", slug).await
    }

    pub async fn list_agents(&self, org: OrgId, page: Page) -> Result<Vec<Agent>> {
        self.list_in_org(org, page).await
    }

    // ------------------------------------------------------------ toolsets

    /// Creates a toolset. Its entries must lie within the org's grants
    /// (checked like a scope: [`StoreError::ScopeNotAllowed`]).
    pub async fn create_toolset(&self, actor: &str, new: NewToolset) -> Result<Written<Toolset>> {
        validate_slug("toolset", &new.slug)?;
        let name = name_or(new.name, &new.slug);
        let mut w = self.begin_write(actor).await?;
        require_org(w.conn(), new.org).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO toolsets (org_id, slug, name, created_at_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.org.0)
        .bind(new.slug.clone())
        .bind(name)
        .bind(db::now_ms())
        .fetch_one(w.conn())
        .await
        .map_err(constraint("toolset", &new.slug))?;
        let toolset_id = ToolsetId(id);
        write_toolset_servers(w.conn(), toolset_id, new.org, &new.servers).await?;
        w.check_scope(
            ScopeOwner::Toolset(toolset_id),
            Scope::Grants(ScopeGrants {
                servers: new.servers,
                toolsets: Default::default(),
            }),
        );
        w.commit_written("create", toolset_id, None).await
    }

    pub async fn update_toolset(
        &self,
        actor: &str,
        id: ToolsetId,
        patch: ToolsetPatch,
    ) -> Result<Written<Toolset>> {
        if let Some(slug) = &patch.slug {
            Toolset::check_label(slug)?;
        }
        let mut w = self.begin_write(actor).await?;
        let before = Toolset::fetch_existing(w.conn(), id).await?;
        w.rename(id, &before, patch.slug, patch.name).await?;
        if let Some(servers) = patch.servers {
            write_toolset_servers(w.conn(), id, before.org, &servers).await?;
            w.check_scope(
                ScopeOwner::Toolset(id),
                Scope::Grants(ScopeGrants {
                    servers,
                    toolsets: Default::default(),
                }),
            );
        }
        w.commit_written("update", id, Some(&before)).await
    }

    /// Deletes a toolset and every scope's reference to it.
    pub async fn delete_toolset(&self, actor: &str, id: ToolsetId) -> Result<u64> {
        self.delete_stored::<Toolset>(actor, id).await
    }

    pub async fn get_toolset(&self, id: ToolsetId) -> Result<Option<Toolset>> {
        self.get_stored(id).await
    }

    pub async fn get_toolset_by_slug(&self, org: OrgId, slug: &str) -> Result<Option<Toolset>> {
        self.find_in_org(org, "slug", slug).await
    }

    pub async fn list_toolsets(&self, org: OrgId, page: Page) -> Result<Vec<Toolset>> {
        self.list_in_org(org, page).await
    }

    // -------------------------------------------------------------- scopes

    /// The scope of a team, key, end user or agent (`None` if it does not exist).
    pub async fn get_scope(&self, owner: ScopeOwner) -> Result<Option<Scope>> {
        let Some((col, id)) = OwnerCol::of(owner) else {
            return Err(StoreError::BadInput(
                "toolsets have entries, not a scope".into(),
            ));
        };
        let mut conn = self.pool().acquire().await?;
        let sql = format!("SELECT scope_inherit FROM {} WHERE id = $1", col.table());
        let inherit: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        match inherit {
            Some(inherit) => Ok(Some(load_scope(&mut conn, col, id, inherit != 0).await?)),
            None => Ok(None),
        }
    }

    /// Sets the scope of a team, key, end user or agent: *inherit*, or
    /// grants that must lie within the parent chain's allowance (else
    /// [`StoreError::ScopeNotAllowed`] listing every offending entry, and
    /// nothing is written).
    pub async fn set_scope(
        &self,
        actor: &str,
        owner: ScopeOwner,
        scope: Scope,
    ) -> Result<Written<Scope>> {
        let Some((col, id)) = OwnerCol::of(owner) else {
            return Err(StoreError::BadInput(
                "toolsets have entries, not a scope: use update_toolset".into(),
            ));
        };
        let mut w = self.begin_write(actor).await?;
        let sql = format!(
            "SELECT org_id, scope_inherit FROM {} WHERE id = $1",
            col.table()
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(w.conn())
            .await?
            .ok_or_else(|| StoreError::not_found(owner_kind(owner), owner_id(owner)))?;
        let org = OrgId(row.int("org_id")?);
        let before = load_scope(w.conn(), col, id, row.flag("scope_inherit")?).await?;
        write_scope(w.conn(), col, id, org, &scope).await?;
        w.check_scope(owner, scope.clone());
        let change = owner_change(w.conn(), owner).await?;
        w.change(change);
        w.audit(AuditChange {
            action: "set_scope",
            entity_kind: owner_entity_kind(owner),
            entity_id: id.to_string(),
            org: Some(org),
            before: view(&before),
            after: view(&scope),
        })
        .await?;
        let revision = w.commit().await?;
        Ok(Written {
            revision,
            value: scope,
        })
    }

    // -------------------------------------------------------- admin tokens

    /// Creates an admin token (platform when `org` is `None`). Not a policy
    /// change: the revision does not move, but the audit log records it.
    /// The token (`wdna_…`) is returned this once.
    pub async fn create_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
    ) -> Result<(AdminToken, Secret)> {
        let token = new_token(ADMIN_TOKEN_PREFIX);
        let created = self.insert_admin_token(actor, name, org, &token).await?;
        Ok((created, token))
    }

    /// Makes `token` *the* admin token called `name` (platform when `org`
    /// is `None`): how a configured bootstrap token is installed, and
    /// rotated. Idempotent: when that secret already is the token `name`,
    /// nothing is written. Otherwise, in one transaction, a different token
    /// holding `name` is deleted (the previous secret stops working at
    /// once) and the secret becomes the token `name`: created, or, when it
    /// already is a token of the same scope (say the printed first-start
    /// token), renamed. Every change is audited. A secret or a name that
    /// belongs to a token of another scope is refused.
    pub async fn ensure_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
        token: &Secret,
    ) -> Result<AdminToken> {
        if token.expose().len() < 16 {
            return Err(StoreError::BadInput(
                "admin tokens must be at least 16 characters".into(),
            ));
        }
        check_name("admin token name", name)?;
        // Replicas starting at once with a new secret race on the name and
        // digest; the loser finds the winner's token on a second pass.
        match self.try_ensure_admin_token(actor, name, org, token).await {
            Err(StoreError::Duplicate { .. }) => {
                self.try_ensure_admin_token(actor, name, org, token).await
            }
            other => other,
        }
    }

    async fn try_ensure_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
        token: &Secret,
    ) -> Result<AdminToken> {
        let mut tx = crate::db::begin_read_write(self.pool(), self.backend()).await?;
        let sql = AdminToken::select("WHERE token_digest = $1");
        let by_digest: Option<AdminToken> = fetch_optional(
            &mut tx,
            sqlx::query(&sql).bind(token_digest(token.expose())),
        )
        .await?;
        let sql = AdminToken::select("WHERE name = $1");
        let by_name: Option<AdminToken> =
            fetch_optional(&mut tx, sqlx::query(&sql).bind(name.to_owned())).await?;
        if let Some(same) = &by_digest {
            if same.org != org {
                return Err(StoreError::BadInput(format!(
                    "the configured admin token is already admin token {:?} of another scope",
                    same.name
                )));
            }
            if same.name == name {
                return Ok(same.clone());
            }
        }
        if let Some(previous) = by_name {
            if previous.org != org {
                return Err(StoreError::BadInput(format!(
                    "admin token name {name:?} is taken by a token of another scope; delete it first"
                )));
            }
            sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
                .bind(previous.id)
                .execute(&mut *tx)
                .await?;
            audit_unversioned(
                &mut tx,
                actor,
                AuditChange {
                    action: "delete",
                    entity_kind: "admin_token",
                    entity_id: previous.id.to_string(),
                    org: previous.org,
                    before: view(&previous),
                    after: None,
                },
            )
            .await?;
        }
        let installed = match by_digest {
            Some(existing) => {
                sqlx::query("UPDATE admin_tokens SET name = $1 WHERE id = $2")
                    .bind(name.to_owned())
                    .bind(existing.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(constraint("admin token", name))?;
                let renamed = admin_token(&mut tx, existing.id).await?;
                audit_unversioned(
                    &mut tx,
                    actor,
                    AuditChange {
                        action: "update",
                        entity_kind: "admin_token",
                        entity_id: existing.id.to_string(),
                        org,
                        before: view(&existing),
                        after: view(&renamed),
                    },
                )
                .await?;
                renamed
            }
            None => insert_admin_token_in(&mut tx, actor, name, org, token).await?,
        };
        tx.commit().await?;
        Ok(installed)
    }

    async fn admin_token_by_digest(&self, digest: &str) -> Result<Option<AdminToken>> {
        let sql = AdminToken::select("WHERE token_digest = $1");
        self.find(sqlx::query(&sql).bind(digest.to_owned())).await
    }

    async fn insert_admin_token(
        &self,
        actor: &str,
        name: &str,
        org: Option<OrgId>,
        token: &Secret,
    ) -> Result<AdminToken> {
        check_name("admin token name", name)?;
        let mut tx = crate::db::begin_read_write(self.pool(), self.backend()).await?;
        let created = insert_admin_token_in(&mut tx, actor, name, org, token).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn delete_admin_token(&self, actor: &str, id: i64) -> Result<()> {
        let mut tx = crate::db::begin_read_write(self.pool(), self.backend()).await?;
        let before = admin_token(&mut tx, id).await?;
        sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit_unversioned(
            &mut tx,
            actor,
            AuditChange {
                action: "delete",
                entity_kind: "admin_token",
                entity_id: id.to_string(),
                org: before.org,
                before: view(&before),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Admin tokens, all (`org: None`) or of one org.
    pub async fn list_admin_tokens(&self, org: Option<OrgId>) -> Result<Vec<AdminToken>> {
        match org {
            None => {
                let sql = AdminToken::select("ORDER BY id");
                self.find_all(sqlx::query(&sql)).await
            }
            Some(org) => {
                let sql = AdminToken::select("WHERE org_id = $1 ORDER BY id");
                self.find_all(sqlx::query(&sql).bind(org.0)).await
            }
        }
    }

    /// Who `token` authenticates, if anyone.
    pub async fn authenticate_admin(&self, token: &str) -> Result<Option<AdminIdentity>> {
        Ok(self
            .admin_token_by_digest(&token_digest(token))
            .await?
            .map(|t| AdminIdentity {
                token_id: t.id,
                name: t.name,
                org: t.org,
            }))
    }
}

/// Inserts an admin token for `token` and audits its creation, through
/// `conn` (inside the caller's transaction).
async fn insert_admin_token_in(
    conn: &mut AnyConnection,
    actor: &str,
    name: &str,
    org: Option<OrgId>,
    token: &Secret,
) -> Result<AdminToken> {
    if let Some(org) = org {
        require_org(conn, org).await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO admin_tokens (name, org_id, token_digest, token_prefix, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name.to_owned())
    .bind(org.map(|o| o.0))
    .bind(token_digest(token.expose()))
    .bind(shown_prefix(token.expose()))
    .bind(db::now_ms())
    .fetch_one(&mut *conn)
    .await
    .map_err(constraint("admin token", name))?;
    let created = admin_token(conn, id).await?;
    audit_unversioned(
        conn,
        actor,
        AuditChange {
            action: "create",
            entity_kind: "admin_token",
            entity_id: id.to_string(),
            org,
            before: None,
            after: view(&created),
        },
    )
    .await?;
    Ok(created)
}

async fn admin_token(conn: &mut AnyConnection, id: i64) -> Result<AdminToken> {
    let sql = AdminToken::select("WHERE id = $1");
    fetch_optional(conn, sqlx::query(&sql).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("admin token", id))
}

/// Audits a change that is not policy (admin tokens) at the current
/// revision, which it does not move.
async fn audit_unversioned(
    conn: &mut AnyConnection,
    actor: &str,
    change: AuditChange,
) -> Result<()> {
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM policy_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    insert_admin_audit(conn, actor, revision as u64, change).await
}

fn owner_entity_kind(owner: ScopeOwner) -> &'static str {
    match owner {
        ScopeOwner::Team(_) => "team",
        ScopeOwner::Key(_) => "key",
        ScopeOwner::EndUser(_) => "end_user",
        ScopeOwner::Agent(_) => "agent",
        ScopeOwner::Toolset(_) => "toolset",
    }
}
