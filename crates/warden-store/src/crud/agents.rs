//! Agents.

use warden_policy::{validate_slug, AgentId, OrgId, Scope};

use super::{name_or, require_in_org, require_org};
use crate::db;
use crate::entities::*;
use crate::error::{constraint, Result};
use crate::store::Store;

impl Store {
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
}
