//! Teams, agents and end users of one org.

use super::*;

// ---------------------------------------------------------------- teams

pub async fn list_teams(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<TeamView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let teams = s
        .store()
        .list_teams(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        teams,
        |t| t.id.0,
        |t| team_view(s, t),
    ))
}

pub async fn get_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    team: &str,
) -> Result<TeamView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(team_view(s, &s.team(org.id, team).await?))
}

pub async fn create_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateTeam,
) -> Result<Written<TeamView>, AdminError> {
    let org = s.org(admin, org).await?;
    let new = NewTeam {
        org: org.id,
        slug: body.slug,
        name: body.name.unwrap_or_default(),
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
    };
    let w = s
        .store()
        .create_team(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: team_view(s, &w.value),
    })
}

pub async fn patch_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    team: &str,
    body: PatchTeam,
) -> Result<Written<TeamView>, AdminError> {
    let org = s.org(admin, org).await?;
    let team = s.team(org.id, team).await?;
    let Some(name) = new_name("name", body.name, &team.name)? else {
        return Ok(unchanged(s, team_view(s, &team)));
    };
    let patch = TeamPatch {
        slug: None,
        name: Some(name),
    };
    let w = s
        .store()
        .update_team(&admin.actor, team.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: team_view(s, &w.value),
    })
}

pub async fn delete_team(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    team: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let team = s.team(org.id, team).await?;
    let revision = s
        .store()
        .delete_team(&admin.actor, team.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

// ---------------------------------------------------------------- agents

pub async fn list_agents(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<AgentView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let agents = s
        .store()
        .list_agents(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        agents,
        |a| a.id.0,
        |a| agent_view(s, a),
    ))
}

pub async fn get_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    agent: &str,
) -> Result<AgentView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(agent_view(s, &s.agent(org.id, agent).await?))
}

pub async fn create_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateAgent,
) -> Result<Written<AgentView>, AdminError> {
    let org = s.org(admin, org).await?;
    let new = NewAgent {
        org: org.id,
        team: s.team_ref(org.id, body.team.as_deref()).await?,
        slug: body.slug,
        name: body.name.unwrap_or_default(),
        // `None` is the store's "empty scope" for a new agent.
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
    };
    let w = s
        .store()
        .create_agent(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: agent_view(s, &w.value),
    })
}

pub async fn patch_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    agent: &str,
    body: PatchAgent,
) -> Result<Written<AgentView>, AdminError> {
    let org = s.org(admin, org).await?;
    let agent = s.agent(org.id, agent).await?;
    let Some(name) = new_name("name", body.name, &agent.name)? else {
        return Ok(unchanged(s, agent_view(s, &agent)));
    };
    let patch = AgentPatch {
        slug: None,
        name: Some(name),
    };
    let w = s
        .store()
        .update_agent(&admin.actor, agent.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: agent_view(s, &w.value),
    })
}

pub async fn delete_agent(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    agent: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let agent = s.agent(org.id, agent).await?;
    let revision = s
        .store()
        .delete_agent(&admin.actor, agent.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}

// ---------------------------------------------------------------- end users

pub async fn list_end_users(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<EndUserView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let users = s
        .store()
        .list_end_users(org.id, store_page(&page)?)
        .await
        .map_err(|e| s.error(e))?;
    Ok(paged(
        revision,
        &page,
        users,
        |u| u.id.0,
        |u| end_user_view(s, u),
    ))
}

pub async fn get_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    external_id: &str,
) -> Result<EndUserView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(end_user_view(s, &s.end_user(org.id, external_id).await?))
}

pub async fn create_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateEndUser,
) -> Result<Written<EndUserView>, AdminError> {
    let org = s.org(admin, org).await?;
    crate::validate::name("external_id", &body.external_id)?;
    let new = NewEndUser {
        org: org.id,
        external_id: body.external_id,
        name: body.name.unwrap_or_default(),
        scope: scope_arg(s, &org, body.scope.as_ref()).await?,
    };
    let w = s
        .store()
        .create_end_user(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: end_user_view(s, &w.value),
    })
}

pub async fn patch_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    external_id: &str,
    body: PatchEndUser,
) -> Result<Written<EndUserView>, AdminError> {
    let org = s.org(admin, org).await?;
    let user = s.end_user(org.id, external_id).await?;
    let name = new_name("name", body.name, &user.name)?;
    let disabled = body.disabled.filter(|d| *d != user.disabled);
    if name.is_none() && disabled.is_none() {
        return Ok(unchanged(s, end_user_view(s, &user)));
    }
    let patch = EndUserPatch {
        external_id: None,
        name,
        disabled,
    };
    let w = s
        .store()
        .update_end_user(&admin.actor, user.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: end_user_view(s, &w.value),
    })
}

pub async fn delete_end_user(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    external_id: &str,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let user = s.end_user(org.id, external_id).await?;
    let revision = s
        .store()
        .delete_end_user(&admin.actor, user.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}
