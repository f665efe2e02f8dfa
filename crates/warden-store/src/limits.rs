//! Quotas and rate limits: the `limits` table (migration 0003), its CRUD
//! and its part of the policy rows. Each write is one
//! [`WriteTx`](crate::store::WriteTx) like every other policy entity; the
//! schema's foreign keys cascade exactly like `PolicyRows::delete_*`.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use warden_policy::{
    AgentId, EndUserId, KeyId, LimitId, LimitLevel, LimitRow, OrgId, PolicyChange, Rate, ServerId,
    TeamId, Window,
};

use crate::db::{self, RowExt};
use crate::entities::{Page, Written};
use crate::error::{constraint, Result, StoreError};
use crate::store::Store;
use crate::stored::{Decoded, RawId, Recorded, Stored};

impl RawId for LimitId {
    fn raw(self) -> i64 {
        self.0
    }

    fn from_raw(id: i64) -> Self {
        LimitId(id)
    }
}

/// A limit as the admin API reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub id: LimitId,
    pub org: OrgId,
    pub level: LimitLevel,
    pub server: Option<ServerId>,
    pub tool: Option<String>,
    pub rate: Option<Rate>,
    pub concurrency: Option<u32>,
    pub created_at_ms: i64,
}

impl Limit {
    /// The engine's row.
    pub fn row(&self) -> LimitRow {
        LimitRow {
            id: self.id,
            org: self.org,
            level: self.level,
            server: self.server,
            tool: self.tool.clone(),
            rate: self.rate,
            concurrency: self.concurrency,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLimit {
    pub org: OrgId,
    pub level: LimitLevel,
    pub server: Option<ServerId>,
    pub tool: Option<String>,
    pub rate: Option<Rate>,
    pub concurrency: Option<u32>,
}

/// `None` keeps a field; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitPatch {
    pub level: Option<LimitLevel>,
    pub server: Option<Option<ServerId>>,
    pub tool: Option<Option<String>>,
    pub rate: Option<Option<Rate>>,
    pub concurrency: Option<Option<u32>>,
}

const COLUMNS: &str = "id, org_id, team_id, key_id, end_user_id, agent_id, server_id, tool, \
                       rate_requests, rate_per, rate_burst, concurrency";

fn small(col: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("limits.{col} = {v}")))
}

/// The engine's row of one `limits` row.
fn decode_row(r: &AnyRow) -> Result<LimitRow> {
    let level = match (
        r.opt_int("team_id")?,
        r.opt_int("key_id")?,
        r.opt_int("end_user_id")?,
        r.opt_int("agent_id")?,
    ) {
        (None, None, None, None) => LimitLevel::Org,
        (Some(id), None, None, None) => LimitLevel::Team(TeamId(id)),
        (None, Some(id), None, None) => LimitLevel::Key(KeyId(id)),
        (None, None, Some(id), None) => LimitLevel::EndUser(EndUserId(id)),
        (None, None, None, Some(id)) => LimitLevel::Agent(AgentId(id)),
        _ => return Err(StoreError::Corrupt("limit with two holders".into())),
    };
    let rate = match (
        r.opt_int("rate_requests")?,
        r.opt_text("rate_per")?,
        r.opt_int("rate_burst")?,
    ) {
        (None, None, None) => None,
        (Some(requests), Some(per), Some(burst)) => Some(Rate {
            requests: small("rate_requests", requests)?,
            per: match per.as_str() {
                "minute" => Window::Minute,
                "hour" => Window::Hour,
                other => return Err(StoreError::Corrupt(format!("limits.rate_per = {other:?}"))),
            },
            burst: small("rate_burst", burst)?,
        }),
        _ => return Err(StoreError::Corrupt("limit with a partial rate".into())),
    };
    Ok(LimitRow {
        id: LimitId(r.int("id")?),
        org: OrgId(r.int("org_id")?),
        level,
        server: r.opt_int("server_id")?.map(ServerId),
        tool: r.opt_text("tool")?,
        rate,
        concurrency: r
            .opt_int("concurrency")?
            .map(|c| small("concurrency", c))
            .transpose()?,
    })
}

/// Every limit, for the policy rows (inside the loading transaction).
pub(crate) async fn load_limits(conn: &mut AnyConnection) -> Result<Vec<LimitRow>> {
    let sql = format!("SELECT {COLUMNS} FROM limits");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    rows.iter().map(decode_row).collect()
}

impl Decoded for Limit {
    const TABLE: &'static str = "limits";
    const COLUMNS: &'static str =
        "id, org_id, team_id, key_id, end_user_id, agent_id, server_id, tool, \
         rate_requests, rate_per, rate_burst, concurrency, created_at_ms";

    async fn from_row(_: &mut AnyConnection, r: &AnyRow) -> Result<Self> {
        let row = decode_row(r)?;
        Ok(Limit {
            id: row.id,
            org: row.org,
            level: row.level,
            server: row.server,
            tool: row.tool,
            rate: row.rate,
            concurrency: row.concurrency,
            created_at_ms: r.int("created_at_ms")?,
        })
    }
}

impl Recorded for Limit {
    const AUDIT_KIND: &'static str = "limit";

    fn audit_id(&self) -> String {
        self.id.to_string()
    }

    fn audit_org(&self) -> Option<OrgId> {
        Some(self.org)
    }

    async fn upsert_change(&self, _: &mut AnyConnection) -> Result<PolicyChange> {
        Ok(PolicyChange::UpsertLimit(self.row()))
    }
}

impl Stored for Limit {
    type Id = LimitId;
    const KIND: &'static str = "limit";

    fn delete_change(id: LimitId) -> PolicyChange {
        PolicyChange::DeleteLimit(id)
    }
}

/// The holder columns (team, key, end user, agent) of a level.
fn holder_columns(level: LimitLevel) -> [Option<i64>; 4] {
    match level {
        LimitLevel::Org => [None; 4],
        LimitLevel::Team(id) => [Some(id.0), None, None, None],
        LimitLevel::Key(id) => [None, Some(id.0), None, None],
        LimitLevel::EndUser(id) => [None, None, Some(id.0), None],
        LimitLevel::Agent(id) => [None, None, None, Some(id.0)],
    }
}

/// Writes `row` (inserting when `insert`), mapping constraint violations to
/// input errors. The row's values are checked first, like the engine does.
async fn write_row(conn: &mut AnyConnection, row: &LimitRow, insert: bool) -> Result<i64> {
    row.check_values()?;
    let [team, key, end_user, agent] = holder_columns(row.level);
    let name = format!("{} in org {}", row.id, row.org);
    let sql = if insert {
        "INSERT INTO limits (org_id, team_id, key_id, end_user_id, agent_id, server_id, tool, \
         rate_requests, rate_per, rate_burst, concurrency, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id"
    } else {
        "UPDATE limits SET org_id = $1, team_id = $2, key_id = $3, end_user_id = $4, \
         agent_id = $5, server_id = $6, tool = $7, rate_requests = $8, rate_per = $9, \
         rate_burst = $10, concurrency = $11 WHERE id = $12 RETURNING id"
    };
    let last = if insert { db::now_ms() } else { row.id.0 };
    sqlx::query_scalar(sql)
        .bind(row.org.0)
        .bind(team)
        .bind(key)
        .bind(end_user)
        .bind(agent)
        .bind(row.server.map(|s| s.0))
        .bind(row.tool.clone())
        .bind(row.rate.map(|r| i64::from(r.requests)))
        .bind(row.rate.map(|r| r.per.as_str()))
        .bind(row.rate.map(|r| i64::from(r.burst)))
        .bind(row.concurrency.map(i64::from))
        .bind(last)
        .fetch_one(&mut *conn)
        .await
        .map_err(constraint("limit", &name))
}

impl Store {
    /// Creates a limit. Its holder must be the org or one of its teams,
    /// keys, end users or agents; a server must be granted to the org.
    pub async fn create_limit(&self, actor: &str, new: NewLimit) -> Result<Written<Limit>> {
        let mut row = LimitRow {
            id: LimitId(0),
            org: new.org,
            level: new.level,
            server: new.server,
            tool: new.tool,
            rate: new.rate,
            concurrency: new.concurrency,
        };
        row.check_values()?;
        let mut w = self.begin_write(actor).await?;
        if sqlx::query("SELECT 1 FROM orgs WHERE id = $1")
            .bind(new.org.0)
            .fetch_optional(w.conn())
            .await?
            .is_none()
        {
            return Err(StoreError::not_found("org", new.org));
        }
        row.id = LimitId(write_row(w.conn(), &row, true).await?);
        w.commit_written("create", row.id, None).await
    }

    /// Changes a limit; what the patch leaves out stays.
    pub async fn update_limit(
        &self,
        actor: &str,
        id: LimitId,
        patch: LimitPatch,
    ) -> Result<Written<Limit>> {
        let mut w = self.begin_write(actor).await?;
        let before = Limit::fetch_existing(w.conn(), id).await?;
        let mut row = before.row();
        if let Some(level) = patch.level {
            row.level = level;
        }
        if let Some(server) = patch.server {
            row.server = server;
        }
        if let Some(tool) = patch.tool {
            row.tool = tool;
        }
        if let Some(rate) = patch.rate {
            row.rate = rate;
        }
        if let Some(concurrency) = patch.concurrency {
            row.concurrency = concurrency;
        }
        write_row(w.conn(), &row, false).await?;
        w.commit_written("update", id, Some(&before)).await
    }

    pub async fn delete_limit(&self, actor: &str, id: LimitId) -> Result<u64> {
        self.delete_stored::<Limit>(actor, id).await
    }

    pub async fn get_limit(&self, id: LimitId) -> Result<Option<Limit>> {
        self.get_stored(id).await
    }

    /// One page of the org's limits, by id.
    pub async fn list_limits(&self, org: OrgId, page: Page) -> Result<Vec<Limit>> {
        self.list_in_org(org, page).await
    }
}
