//! Teams.

use warden_policy::{OrgId, TeamId};

use crate::entities::*;
use crate::error::Result;
use crate::store::Store;

impl Store {
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
}
