//! Quotas and rate limits of one org. Slugs in, slugs out: a limit's level
//! names a team or agent by slug, a key by id, an end user by external id,
//! and its server by slug. The values and references are checked by the
//! store and the engine (422); another org's limit is "not found".

use warden_policy::{
    EffectiveLimits, LimitCounters, LimitId, LimitLevel, LimitRow, OrgId, Principal, Rate,
    ServerId, Snapshot, Window,
};
use warden_store::{Limit, LimitPatch, NewLimit, Page};

use super::convert::Names;
use crate::auth::Admin;
use crate::dto::*;
use crate::error::AdminError;
use crate::state::AdminState;

fn rate_spec(r: Rate) -> RateSpec {
    RateSpec {
        requests: r.requests,
        per: match r.per {
            Window::Minute => WindowSpec::Minute,
            Window::Hour => WindowSpec::Hour,
        },
        burst: Some(r.burst),
    }
}

fn rate_of(spec: RateSpec) -> Rate {
    Rate {
        requests: spec.requests,
        per: match spec.per {
            WindowSpec::Minute => Window::Minute,
            WindowSpec::Hour => Window::Hour,
        },
        burst: spec.burst.unwrap_or(spec.requests),
    }
}

fn level_spec(names: &Names<'_>, level: LimitLevel) -> LimitLevelSpec {
    match level {
        LimitLevel::Org => LimitLevelSpec::Org {},
        LimitLevel::Team(id) => LimitLevelSpec::Team {
            slug: names.team(id),
        },
        LimitLevel::Key(id) => LimitLevelSpec::Key { id: id.0 },
        LimitLevel::EndUser(id) => LimitLevelSpec::EndUser {
            external_id: names
                .0
                .end_user(id)
                .map_or_else(|| format!("#{id}"), |u| u.external_id.clone()),
        },
        LimitLevel::Agent(id) => LimitLevelSpec::Agent {
            slug: names.agent(id),
        },
    }
}

fn row_view(names: &Names<'_>, l: &LimitRow) -> LimitView {
    LimitView {
        id: l.id.0,
        level: level_spec(names, l.level),
        server: l.server.map(|s| names.server(s)),
        tool: l.tool.clone(),
        rate: l.rate.map(rate_spec),
        concurrency: l.concurrency,
    }
}

pub(crate) fn limit_view(s: &AdminState, l: &Limit) -> LimitView {
    row_view(&Names(&s.snapshot()), &l.row())
}

/// The effective limits of a call, with names, for explain.
pub(crate) fn effective_limits_view(
    snapshot: &Snapshot,
    principal: &Principal,
    server: Option<ServerId>,
    tool: &str,
    counters: Option<&dyn LimitCounters>,
) -> EffectiveLimitsView {
    let Some(server) = server else {
        return EffectiveLimitsView::default();
    };
    let names = Names(snapshot);
    let e: EffectiveLimits = snapshot.limits_for(principal, server, tool);
    let remaining = counters
        .map(|c| {
            e.applicable
                .iter()
                .map(|a| {
                    let u = c.usage(a);
                    LimitRemainingView {
                        limit: u.limit.0,
                        tokens_left: u.tokens_left,
                        in_flight: u.in_flight,
                        replicas: u.replicas,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    EffectiveLimitsView {
        remaining,
        applicable: e
            .applicable
            .iter()
            .filter_map(|a| snapshot.limit(a.id))
            .map(|l| row_view(&names, l))
            .collect(),
        rate: e.rate.map(|b| LimitBoundView {
            limit: b.limit.0,
            level: level_spec(&names, b.level),
            rate: Some(rate_spec(b.rate)),
            concurrency: None,
        }),
        concurrency: e.concurrency.map(|b| LimitBoundView {
            limit: b.limit.0,
            level: level_spec(&names, b.level),
            rate: None,
            concurrency: Some(b.max_in_flight),
        }),
    }
}

/// A holder a body names must exist in the org: 422 otherwise.
fn found<T>(r: Result<T, AdminError>, what: String) -> Result<T, AdminError> {
    match r {
        Err(AdminError::NotFound { .. }) => Err(AdminError::invalid(
            "level",
            format!("{what} does not exist in this org"),
        )),
        other => other,
    }
}

impl AdminState {
    /// A limit of `org` by id; another org's limit is "not found".
    pub(crate) async fn limit(&self, org: OrgId, id: i64) -> Result<Limit, AdminError> {
        match self
            .store()
            .get_limit(LimitId(id))
            .await
            .map_err(|e| self.error(e))?
        {
            Some(l) if l.org == org => Ok(l),
            _ => Err(AdminError::not_found("limit", id.to_string())),
        }
    }

    /// The level a body names, within `org` (422 when it is not there).
    async fn limit_level(
        &self,
        org: OrgId,
        spec: &LimitLevelSpec,
    ) -> Result<LimitLevel, AdminError> {
        Ok(match spec {
            LimitLevelSpec::Org {} => LimitLevel::Org,
            LimitLevelSpec::Team { slug } => {
                LimitLevel::Team(found(self.team(org, slug).await, format!("team {slug:?}"))?.id)
            }
            LimitLevelSpec::Key { id } => {
                LimitLevel::Key(found(self.key(org, *id).await, format!("key {id}"))?.id)
            }
            LimitLevelSpec::EndUser { external_id } => LimitLevel::EndUser(
                found(
                    self.end_user(org, external_id).await,
                    format!("end user {external_id:?}"),
                )?
                .id,
            ),
            LimitLevelSpec::Agent { slug } => {
                LimitLevel::Agent(found(self.agent(org, slug).await, format!("agent {slug:?}"))?.id)
            }
        })
    }

    /// The server a body names for `org` (422 when the org has no such server).
    async fn limit_server(
        &self,
        org: OrgId,
        slug: Option<&str>,
    ) -> Result<Option<ServerId>, AdminError> {
        match slug {
            None => Ok(None),
            Some(slug) => match self.server_id_for_org(org, slug).await? {
                Some(id) => Ok(Some(id)),
                None => Err(AdminError::invalid(
                    "server",
                    format!("no such server in this org: {slug}"),
                )),
            },
        }
    }
}

pub async fn list_limits(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    page: ListParams,
) -> Result<Listing<LimitView>, AdminError> {
    let org = s.org(admin, org).await?;
    let revision = s.live().revision();
    let limit = page.limit.unwrap_or(Page::MAX_LIMIT);
    if limit == 0 || limit > Page::MAX_LIMIT {
        return Err(AdminError::BadQuery(format!(
            "limit must be 1..={}",
            Page::MAX_LIMIT
        )));
    }
    let limits = s
        .store()
        .list_limits(
            org.id,
            Page {
                after: page.after,
                limit,
            },
        )
        .await
        .map_err(|e| s.error(e))?;
    let next_after = (limits.len() >= limit as usize)
        .then(|| limits.last().map(|l| l.id.0))
        .flatten();
    let snapshot = s.snapshot();
    let names = Names(&snapshot);
    Ok(Listing {
        revision,
        items: limits.iter().map(|l| row_view(&names, &l.row())).collect(),
        next_after,
    })
}

pub async fn get_limit(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
) -> Result<LimitView, AdminError> {
    let org = s.org(admin, org).await?;
    Ok(limit_view(s, &s.limit(org.id, id).await?))
}

pub async fn create_limit(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    body: CreateLimit,
) -> Result<Written<LimitView>, AdminError> {
    let org = s.org(admin, org).await?;
    let new = NewLimit {
        org: org.id,
        level: s.limit_level(org.id, &body.level).await?,
        server: s.limit_server(org.id, body.server.as_deref()).await?,
        tool: body.tool,
        rate: body.rate.map(rate_of),
        concurrency: body.concurrency,
    };
    let w = s
        .store()
        .create_limit(&admin.actor, new)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: limit_view(s, &w.value),
    })
}

pub async fn patch_limit(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
    body: PatchLimit,
) -> Result<Written<LimitView>, AdminError> {
    let org = s.org(admin, org).await?;
    let before = s.limit(org.id, id).await?;
    let level = match &body.level {
        None => None,
        Some(spec) => Some(s.limit_level(org.id, spec).await?),
    };
    let server = match &body.server {
        None => None,
        Some(slug) => Some(s.limit_server(org.id, slug.as_deref()).await?),
    };
    let patch = LimitPatch {
        level,
        server,
        tool: body.tool,
        rate: body.rate.map(|r| r.map(rate_of)),
        concurrency: body.concurrency,
    };
    let mut after = before.row();
    if let Some(v) = patch.level {
        after.level = v;
    }
    if let Some(v) = patch.server {
        after.server = v;
    }
    if let Some(v) = &patch.tool {
        after.tool = v.clone();
    }
    if let Some(v) = patch.rate {
        after.rate = v;
    }
    if let Some(v) = patch.concurrency {
        after.concurrency = v;
    }
    if after == before.row() {
        return Ok(Written {
            revision: s.live().revision(),
            item: limit_view(s, &before),
        });
    }
    let w = s
        .store()
        .update_limit(&admin.actor, before.id, patch)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Written {
        revision: w.revision,
        item: limit_view(s, &w.value),
    })
}

pub async fn delete_limit(
    s: &AdminState,
    admin: &Admin,
    org: &str,
    id: i64,
) -> Result<Deleted, AdminError> {
    let org = s.org(admin, org).await?;
    let limit = s.limit(org.id, id).await?;
    let revision = s
        .store()
        .delete_limit(&admin.actor, limit.id)
        .await
        .map_err(|e| s.error(e))?;
    Ok(Deleted { revision })
}
