//! The store: connection, migrations, the write transaction every policy
//! change goes through, and loading the whole policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use warden_policy::{
    AgentRow, EndUserRow, KeyRow, OrgGrantRow, OrgId, OrgRow, PolicyChange, PolicyRows, Scope,
    ScopeGrants, ScopeOwner, ServerId, ServerRow, Snapshot, TeamRow, ToolFilter, ToolsetId,
    ToolsetRow,
};

use crate::crypto::SecretCipher;
use crate::db::{self, Backend, RowExt};
use crate::error::{Result, StoreError};
use crate::live::LivePolicy;

/// The PostgreSQL notification channel carrying new revisions.
pub const POLICY_CHANNEL: &str = "warden_policy";

/// How the store runs. Build with [`StoreOptions::new`] and adjust fields.
#[derive(Clone)]
pub struct StoreOptions {
    /// Key for secret header values at rest (the binary reads it from
    /// `WARDEN_SECRET_KEY` or a key file).
    pub secret_key: [u8; 32],
    /// PostgreSQL only: a replica that cannot confirm it is current within
    /// this long fails closed. SQLite is a single process: never stale.
    pub max_staleness: Duration,
    pub max_connections: u32,
    /// PostgreSQL: how often the revision is polled as a backstop to LISTEN.
    pub poll_interval: Duration,
    /// How often this replica reports its applied revision.
    pub heartbeat_interval: Duration,
    /// A replica whose last heartbeat is older than this is not live.
    pub replica_live_within: Duration,
}

impl StoreOptions {
    pub fn new(secret_key: [u8; 32]) -> Self {
        StoreOptions {
            secret_key,
            max_staleness: Duration::from_secs(5),
            max_connections: 10,
            poll_interval: Duration::from_millis(500),
            heartbeat_interval: Duration::from_secs(1),
            replica_live_within: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("secret_key", &"<redacted>")
            .field("max_staleness", &self.max_staleness)
            .field("max_connections", &self.max_connections)
            .field("poll_interval", &self.poll_interval)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("replica_live_within", &self.replica_live_within)
            .finish()
    }
}

/// Warden's storage. Cheap to clone; background tasks (change feed,
/// heartbeat) stop when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) url: String,
    pub(crate) live: Arc<LivePolicy>,
    pub(crate) cipher: SecretCipher,
    /// Serializes this process's writers so snapshots are installed in order
    /// and SQLite writers do not contend for the file lock.
    pub(crate) write_lock: tokio::sync::Mutex<()>,
    pub(crate) options: StoreOptions,
    pub(crate) replica_id: String,
    pub(crate) started_at_ms: i64,
    /// Replicas with a recent heartbeat, this one included (at least 1):
    /// how many share each rate and concurrency limit.
    pub(crate) live_replicas: Arc<std::sync::atomic::AtomicUsize>,
    /// Wakes the sync task (a notification arrived or a reconnect happened).
    pub(crate) sync_wake: Arc<Notify>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("url", &db::redact_url(&self.inner.url))
            .field("replica_id", &self.inner.replica_id)
            .field("revision", &self.inner.live.revision())
            .finish()
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed), runs migrations, loads
    /// the policy into a fresh [`LivePolicy`] and starts the background
    /// tasks: heartbeat always, change feed on PostgreSQL.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Store> {
        let (pool, backend) = db::connect(url, options.max_connections).await?;
        crate::migrate::migrator(backend).await?.run(&pool).await?;
        let rows = load_rows_from_pool(&pool, backend).await?;
        let snapshot = Snapshot::build(rows)?;
        let max_staleness = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(options.max_staleness),
        };
        let live = LivePolicy::with_max_staleness(snapshot, max_staleness);
        live.confirm_current();
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                url: url.to_owned(),
                live,
                cipher: SecretCipher::new(&options.secret_key),
                write_lock: tokio::sync::Mutex::new(()),
                options,
                replica_id: uuid_like(),
                started_at_ms: db::now_ms(),
                live_replicas: Arc::new(std::sync::atomic::AtomicUsize::new(1)),
                sync_wake: Arc::new(Notify::new()),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        crate::sync::start(&store).await?;
        Ok(store)
    }

    /// Runs the migrations only (for `warden migrate`).
    pub async fn migrate(url: &str) -> Result<()> {
        let (pool, backend) = db::connect(url, 1).await?;
        crate::migrate::migrator(backend).await?.run(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// The snapshot every decision of this process uses.
    pub fn live(&self) -> &Arc<LivePolicy> {
        &self.inner.live
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// This process's id in the replica registry.
    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    /// The store's current revision (read from the database).
    pub async fn revision(&self) -> Result<u64> {
        let rev: i64 = sqlx::query_scalar("SELECT revision FROM policy_meta WHERE id = 1")
            .fetch_one(&self.inner.pool)
            .await?;
        Ok(rev as u64)
    }

    /// Every policy row at the current revision, read in one transaction.
    pub async fn load_rows(&self) -> Result<PolicyRows> {
        load_rows_from_pool(&self.inner.pool, self.inner.backend).await
    }

    /// Rebuilds the live snapshot from the database if it is behind.
    pub async fn reload(&self) -> Result<u64> {
        let rows = self.load_rows().await?;
        let revision = rows.revision;
        self.inner.live.install(Snapshot::build(rows)?);
        Ok(revision)
    }

    /// Checks a requested scope for `owner` against its parent chain in the
    /// live snapshot (what the admin API offers: the picker function).
    /// `Err` lists every offending entry; the write functions run the same
    /// check inside their transaction and fail with
    /// [`StoreError::ScopeNotAllowed`].
    pub fn validate_scope(&self, owner: ScopeOwner, scope: &Scope) -> Result<()> {
        validate_scope_in(&self.inner.live.snapshot(), owner, scope)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Starts a policy write: takes the writer lock, begins a transaction
    /// and bumps the revision first (which also takes the database's write
    /// lock, so concurrent writers on other replicas queue behind us).
    pub(crate) async fn begin_write(&self, actor: &str) -> Result<WriteTx<'_>> {
        let guard = self.inner.write_lock.lock().await;
        let mut tx = self.inner.pool.begin().await?;
        let revision: i64 = sqlx::query_scalar(
            "UPDATE policy_meta SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(WriteTx {
            store: self,
            _guard: guard,
            tx,
            revision: revision as u64,
            actor: actor.to_owned(),
            changes: Vec::new(),
            scope_checks: Vec::new(),
            org_scope_checks: Vec::new(),
        })
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:032x}", rand::thread_rng().gen::<u128>())
}

/// Validates `scope` for `owner` against its parent chain in `snapshot`.
pub(crate) fn validate_scope_in(
    snapshot: &Snapshot,
    owner: ScopeOwner,
    scope: &Scope,
) -> Result<()> {
    let Some(grants) = scope.grants() else {
        return Ok(());
    };
    let (org, team) = snapshot
        .parent_chain(owner)
        .ok_or_else(|| StoreError::not_found(owner_kind(owner), owner_id(owner)))?;
    // A team's own scope is bounded by the org; a toolset likewise.
    let team = match owner {
        ScopeOwner::Team(_) | ScopeOwner::Toolset(_) => None,
        _ => team,
    };
    snapshot
        .validate_grants(org, team, grants)
        .map_err(StoreError::ScopeNotAllowed)
}

pub(crate) fn owner_kind(owner: ScopeOwner) -> &'static str {
    match owner {
        ScopeOwner::Team(_) => "team",
        ScopeOwner::Key(_) => "key",
        ScopeOwner::EndUser(_) => "end user",
        ScopeOwner::Agent(_) => "agent",
        ScopeOwner::Toolset(_) => "toolset",
    }
}

pub(crate) fn owner_id(owner: ScopeOwner) -> i64 {
    match owner {
        ScopeOwner::Team(id) => id.0,
        ScopeOwner::Key(id) => id.0,
        ScopeOwner::EndUser(id) => id.0,
        ScopeOwner::Agent(id) => id.0,
        ScopeOwner::Toolset(id) => id.0,
    }
}

/// An open policy write. Dropping it without [`WriteTx::commit`] rolls
/// everything back, including the revision bump.
pub(crate) struct WriteTx<'s> {
    store: &'s Store,
    _guard: tokio::sync::MutexGuard<'s, ()>,
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) revision: u64,
    actor: String,
    changes: Vec<PolicyChange>,
    scope_checks: Vec<(ScopeOwner, Scope)>,
    /// Scopes bounded by their org alone (an org's default scope for new
    /// users: checked exactly like an end user's).
    org_scope_checks: Vec<(OrgId, Scope)>,
}

/// One admin change for the audit log. `before`/`after` are entity views,
/// which never contain secret values.
pub(crate) struct AuditChange {
    pub action: &'static str,
    pub entity_kind: &'static str,
    pub entity_id: String,
    pub org: Option<OrgId>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub(crate) fn view<T: Serialize>(value: &T) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

impl WriteTx<'_> {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Checks, before commit, that `scope` of `owner` stays within its
    /// parent chain in the resulting policy.
    pub(crate) fn check_scope(&mut self, owner: ScopeOwner, scope: Scope) {
        self.scope_checks.push((owner, scope));
    }

    /// Checks, before commit, that `scope` stays within what `org` allows
    /// in the resulting policy (the parent chain of an end user of `org`).
    pub(crate) fn check_org_scope(&mut self, org: OrgId, scope: Scope) {
        self.org_scope_checks.push((org, scope));
    }

    /// Appends the admin audit record in this transaction.
    pub(crate) async fn audit(&mut self, change: AuditChange) -> Result<()> {
        insert_admin_audit(&mut self.tx, &self.actor, self.revision, change).await
    }

    /// Records what this write changed, in the engine's terms: applied to
    /// the live snapshot here and on every replica.
    pub(crate) fn change(&mut self, change: PolicyChange) {
        self.changes.push(change);
    }

    /// Validates the resulting policy with the engine, records the change,
    /// notifies replicas, commits, and installs the new snapshot locally
    /// before returning the new revision.
    ///
    /// The new snapshot is the live one with the change applied
    /// (incremental) when the live one is at the previous revision;
    /// otherwise, or if applying fails, it is built from all rows read in
    /// this transaction, which is authoritative.
    pub(crate) async fn commit(mut self) -> Result<u64> {
        let change = match self.changes.len() {
            1 => self.changes.swap_remove(0),
            _ => PolicyChange::Batch(std::mem::take(&mut self.changes)),
        };
        let live = Arc::clone(&self.store.inner.live);
        let base = live.snapshot();
        // Behind (another replica wrote since this one last applied): catch
        // up from the change feed inside this transaction, which holds the
        // revision lock, so the feed is complete up to our revision.
        let caught_up = if base.revision() + 1 < self.revision {
            crate::sync::replay_feed(&mut *self.tx, &base, Some(self.revision - 1)).await?
        } else {
            None
        };
        let base = caught_up.map(Arc::new).unwrap_or(base);
        let incremental = if base.revision() + 1 == self.revision {
            match base.apply(self.revision, &change) {
                Ok(next) => Some(next),
                Err(e) => {
                    tracing::debug!(error = %e, "incremental apply refused; checking with a full build");
                    None
                }
            }
        } else {
            None
        };
        let snapshot = match incremental {
            Some(next) => next,
            None => {
                let rows = load_rows_in(&mut self.tx).await?;
                Snapshot::build(rows)?
            }
        };
        for (owner, scope) in &self.scope_checks {
            validate_scope_in(&snapshot, *owner, scope)?;
        }
        for (org, scope) in &self.org_scope_checks {
            if let Some(grants) = scope.grants() {
                snapshot
                    .validate_grants(*org, None, grants)
                    .map_err(StoreError::ScopeNotAllowed)?;
            }
        }
        sqlx::query("INSERT INTO policy_changes (revision, at_ms, change) VALUES ($1, $2, $3)")
            .bind(self.revision as i64)
            .bind(db::now_ms())
            .bind(db::to_json(&change)?)
            .execute(&mut *self.tx)
            .await?;
        if self.store.inner.backend == Backend::Postgres {
            // NOTIFY takes no bind parameters; the payload is an integer.
            let notify = format!("NOTIFY {POLICY_CHANNEL}, '{}'", self.revision);
            sqlx::query(&notify).execute(&mut *self.tx).await?;
        }
        self.tx.commit().await?;
        live.install(snapshot);
        live.confirm_current();
        Ok(self.revision)
    }
}

/// Appends one admin change to the audit log through `conn`.
pub(crate) async fn insert_admin_audit(
    conn: &mut AnyConnection,
    actor: &str,
    revision: u64,
    change: AuditChange,
) -> Result<()> {
    let before = change.before.map(|v| v.to_string());
    let after = change.after.map(|v| v.to_string());
    sqlx::query(
        "INSERT INTO audit_log (at_ms, kind, actor, action, entity_kind, entity_id, org_id, \
         before_json, after_json, revision) \
         VALUES ($1, 'admin_change', $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(db::now_ms())
    .bind(actor.to_owned())
    .bind(change.action)
    .bind(change.entity_kind)
    .bind(change.entity_id)
    .bind(change.org.map(|o| o.0))
    .bind(before)
    .bind(after)
    .bind(revision as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn load_rows_from_pool(pool: &AnyPool, backend: Backend) -> Result<PolicyRows> {
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        // One consistent view across all the SELECTs below.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let rows = load_rows_in(&mut tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The owner columns of `scope_servers` / `scope_toolsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OwnerCol {
    Team,
    Key,
    EndUser,
    Agent,
}

impl OwnerCol {
    /// The owner of a scope; toolsets are not scope owners (`None`).
    pub(crate) fn of(owner: ScopeOwner) -> Option<(OwnerCol, i64)> {
        match owner {
            ScopeOwner::Team(id) => Some((OwnerCol::Team, id.0)),
            ScopeOwner::Key(id) => Some((OwnerCol::Key, id.0)),
            ScopeOwner::EndUser(id) => Some((OwnerCol::EndUser, id.0)),
            ScopeOwner::Agent(id) => Some((OwnerCol::Agent, id.0)),
            ScopeOwner::Toolset(_) => None,
        }
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            OwnerCol::Team => "team_id",
            OwnerCol::Key => "key_id",
            OwnerCol::EndUser => "end_user_id",
            OwnerCol::Agent => "agent_id",
        }
    }

    pub(crate) fn table(self) -> &'static str {
        match self {
            OwnerCol::Team => "teams",
            OwnerCol::Key => "keys",
            OwnerCol::EndUser => "end_users",
            OwnerCol::Agent => "agents",
        }
    }
}

/// Scope entries of every owner, keyed by (owner kind, owner id).
type ScopeEntries = HashMap<(OwnerCol, i64), ScopeGrants>;

fn owner_of(row: &sqlx::any::AnyRow) -> Result<(OwnerCol, i64)> {
    for (col, kind) in [
        ("team_id", OwnerCol::Team),
        ("key_id", OwnerCol::Key),
        ("end_user_id", OwnerCol::EndUser),
        ("agent_id", OwnerCol::Agent),
    ] {
        if let Some(id) = row.opt_int(col)? {
            return Ok((kind, id));
        }
    }
    Err(StoreError::Corrupt("scope entry without an owner".into()))
}

fn scope_of(inherit: bool, entries: &mut ScopeEntries, owner: (OwnerCol, i64)) -> Scope {
    let grants = entries.remove(&owner).unwrap_or_default();
    if inherit {
        Scope::Inherit
    } else {
        Scope::Grants(grants)
    }
}

/// Reads every policy row through `conn` (inside a transaction, so the
/// rows are one consistent revision).
pub(crate) async fn load_rows_in(conn: &mut AnyConnection) -> Result<PolicyRows> {
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM policy_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;

    let mut orgs = Vec::new();
    for r in sqlx::query("SELECT id, slug, suspended FROM orgs")
        .fetch_all(&mut *conn)
        .await?
    {
        orgs.push(OrgRow {
            id: OrgId(r.int("id")?),
            slug: r.text("slug")?,
            suspended: r.flag("suspended")?,
        });
    }

    let mut servers = Vec::new();
    for r in sqlx::query("SELECT id, slug, owner_org, enabled FROM servers")
        .fetch_all(&mut *conn)
        .await?
    {
        servers.push(ServerRow {
            id: ServerId(r.int("id")?),
            slug: r.text("slug")?,
            owner_org: r.opt_int("owner_org")?.map(OrgId),
            enabled: r.flag("enabled")?,
        });
    }

    let mut org_grants = Vec::new();
    for r in sqlx::query("SELECT org_id, server_id, enabled, filter FROM org_grants")
        .fetch_all(&mut *conn)
        .await?
    {
        org_grants.push(OrgGrantRow {
            org: OrgId(r.int("org_id")?),
            server: ServerId(r.int("server_id")?),
            enabled: r.flag("enabled")?,
            filter: r.json("filter")?,
        });
    }

    let mut entries: ScopeEntries = HashMap::new();
    for r in sqlx::query(
        "SELECT team_id, key_id, end_user_id, agent_id, server_id, filter FROM scope_servers",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        let filter: ToolFilter = r.json("filter")?;
        entries
            .entry(owner_of(&r)?)
            .or_default()
            .servers
            .insert(ServerId(r.int("server_id")?), filter);
    }
    for r in
        sqlx::query("SELECT team_id, key_id, end_user_id, agent_id, toolset_id FROM scope_toolsets")
            .fetch_all(&mut *conn)
            .await?
    {
        entries
            .entry(owner_of(&r)?)
            .or_default()
            .toolsets
            .insert(ToolsetId(r.int("toolset_id")?));
    }

    let mut teams = Vec::new();
    for r in sqlx::query("SELECT id, org_id, slug, scope_inherit FROM teams")
        .fetch_all(&mut *conn)
        .await?
    {
        let id = r.int("id")?;
        teams.push(TeamRow {
            id: warden_policy::TeamId(id),
            org: OrgId(r.int("org_id")?),
            slug: r.text("slug")?,
            scope: scope_of(r.flag("scope_inherit")?, &mut entries, (OwnerCol::Team, id)),
        });
    }

    let mut keys = Vec::new();
    for r in sqlx::query(
        "SELECT id, org_id, token_digest, team_id, agent_id, scope_inherit, revoked, \
         expires_at_ms, may_assert_end_user, may_assert_agent FROM keys",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        let id = r.int("id")?;
        keys.push(KeyRow {
            id: warden_policy::KeyId(id),
            org: OrgId(r.int("org_id")?),
            token_digest: r.text("token_digest")?,
            team: r.opt_int("team_id")?.map(warden_policy::TeamId),
            agent: r.opt_int("agent_id")?.map(warden_policy::AgentId),
            scope: scope_of(r.flag("scope_inherit")?, &mut entries, (OwnerCol::Key, id)),
            revoked: r.flag("revoked")?,
            expires_at_ms: r.opt_int("expires_at_ms")?,
            may_assert_end_user: r.flag("may_assert_end_user")?,
            may_assert_agent: r.flag("may_assert_agent")?,
        });
    }

    let mut end_users = Vec::new();
    for r in sqlx::query("SELECT id, org_id, external_id, scope_inherit, disabled FROM end_users")
        .fetch_all(&mut *conn)
        .await?
    {
        let id = r.int("id")?;
        end_users.push(EndUserRow {
            id: warden_policy::EndUserId(id),
            org: OrgId(r.int("org_id")?),
            external_id: r.text("external_id")?,
            scope: scope_of(
                r.flag("scope_inherit")?,
                &mut entries,
                (OwnerCol::EndUser, id),
            ),
            disabled: r.flag("disabled")?,
        });
    }

    let mut agents = Vec::new();
    for r in sqlx::query("SELECT id, org_id, team_id, slug, scope_inherit FROM agents")
        .fetch_all(&mut *conn)
        .await?
    {
        let id = r.int("id")?;
        agents.push(AgentRow {
            id: warden_policy::AgentId(id),
            org: OrgId(r.int("org_id")?),
            team: r.opt_int("team_id")?.map(warden_policy::TeamId),
            slug: r.text("slug")?,
            scope: scope_of(
                r.flag("scope_inherit")?,
                &mut entries,
                (OwnerCol::Agent, id),
            ),
        });
    }

    let mut toolsets: Vec<ToolsetRow> = Vec::new();
    let mut toolset_index = HashMap::new();
    for r in sqlx::query("SELECT id, org_id, slug FROM toolsets")
        .fetch_all(&mut *conn)
        .await?
    {
        let id = ToolsetId(r.int("id")?);
        toolset_index.insert(id, toolsets.len());
        toolsets.push(ToolsetRow {
            id,
            org: OrgId(r.int("org_id")?),
            slug: r.text("slug")?,
            servers: Default::default(),
        });
    }
    for r in sqlx::query("SELECT toolset_id, server_id, filter FROM toolset_servers")
        .fetch_all(&mut *conn)
        .await?
    {
        let toolset = ToolsetId(r.int("toolset_id")?);
        let Some(&i) = toolset_index.get(&toolset) else {
            return Err(StoreError::Corrupt(format!(
                "entry of missing toolset {toolset}"
            )));
        };
        toolsets[i]
            .servers
            .insert(ServerId(r.int("server_id")?), r.json("filter")?);
    }

    Ok(PolicyRows {
        revision: revision as u64,
        orgs,
        servers,
        org_grants,
        teams,
        keys,
        end_users,
        agents,
        toolsets,
        limits: crate::limits::load_limits(conn).await?,
    })
}
