//! Between the API's slugs and the store's ids, and from store errors to
//! API errors.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use warden_policy::{
    AgentId, OrgId, PolicyError, Scope, ScopeGrants, ScopeOffense, ServerId, Snapshot, TeamId,
    ToolFilter, ToolsetId,
};
use warden_store::StoreError;

use crate::dto::{GrantsSpec, ScopeSpec};
use crate::error::AdminError;
use crate::state::AdminState;

/// Maps a store error to the API's. Scope offenses get slugs instead of ids,
/// read from `snapshot`.
pub fn store_error(snapshot: &Snapshot, e: StoreError) -> AdminError {
    match e {
        StoreError::NotFound { kind, id } => AdminError::not_found(kind, id),
        StoreError::Duplicate { kind, name } => AdminError::Duplicate { kind, name },
        StoreError::Dangling { kind, id } => AdminError::invalid(
            "reference",
            format!("{kind} {id} does not exist in this org"),
        ),
        StoreError::Invalid(p @ PolicyError::BadSlug { .. }) => AdminError::BadSlug(p.to_string()),
        StoreError::Invalid(p @ PolicyError::DuplicateName { .. }) => AdminError::Conflict {
            message: p.to_string(),
        },
        StoreError::Invalid(p) => AdminError::invalid("body", p.to_string()),
        StoreError::ScopeNotAllowed(offenses) => AdminError::BeyondParent {
            offenses: offenses_json(snapshot, &offenses),
        },
        StoreError::BadInput(message) => AdminError::invalid("body", message),
        StoreError::Database(sqlx::Error::PoolTimedOut)
        | StoreError::Database(sqlx::Error::Io(_))
        | StoreError::Database(sqlx::Error::PoolClosed) => {
            AdminError::Unavailable("the policy database is unreachable".into())
        }
        other => AdminError::Internal(other.to_string()),
    }
}

/// Offending scope entries with server and toolset slugs.
pub fn offenses_json(snapshot: &Snapshot, offenses: &[ScopeOffense]) -> Value {
    let names = Names(snapshot);
    Value::Array(
        offenses
            .iter()
            .map(|o| {
                let server = o.server.map(|s| names.server(s));
                let toolset = o.toolset.map(|t| names.toolset(t));
                let mut message = o.message.clone();
                if let (Some(id), Some(slug)) = (o.server, &server) {
                    message = message.replace(&format!("server {id}"), &format!("server {slug:?}"));
                }
                if let (Some(id), Some(slug)) = (o.toolset, &toolset) {
                    message =
                        message.replace(&format!("toolset {id}"), &format!("toolset {slug:?}"));
                }
                json!({
                    "code": o.code,
                    "server": server,
                    "toolset": toolset,
                    "tools": o.tools,
                    "message": message,
                })
            })
            .collect(),
    )
}

/// Slugs of ids, from a snapshot. An id the snapshot does not know (a
/// replica a moment behind) shows as `#id`.
pub struct Names<'a>(pub &'a Snapshot);

impl Names<'_> {
    pub fn org(&self, id: OrgId) -> String {
        self.0
            .org(id)
            .map_or_else(|| format!("#{id}"), |o| o.slug.clone())
    }
    pub fn server(&self, id: ServerId) -> String {
        self.0
            .server(id)
            .map_or_else(|| format!("#{id}"), |s| s.slug.clone())
    }
    pub fn team(&self, id: TeamId) -> String {
        self.0
            .team(id)
            .map_or_else(|| format!("#{id}"), |t| t.slug.clone())
    }
    pub fn agent(&self, id: AgentId) -> String {
        self.0
            .agent(id)
            .map_or_else(|| format!("#{id}"), |a| a.slug.clone())
    }
    pub fn toolset(&self, id: ToolsetId) -> String {
        self.0
            .toolset(id)
            .map_or_else(|| format!("#{id}"), |t| t.slug.clone())
    }

    pub fn servers(
        &self,
        servers: &BTreeMap<ServerId, ToolFilter>,
    ) -> BTreeMap<String, ToolFilter> {
        servers
            .iter()
            .map(|(id, f)| (self.server(*id), f.clone()))
            .collect()
    }

    pub fn scope(&self, scope: &Scope) -> ScopeSpec {
        match scope {
            Scope::Inherit => ScopeSpec::Inherit,
            Scope::Grants(g) => ScopeSpec::Grants(GrantsSpec {
                servers: self.servers(&g.servers),
                toolsets: g.toolsets.iter().map(|t| self.toolset(*t)).collect(),
            }),
        }
    }
}

impl AdminState {
    /// The server `slug` names for `org` (global or the org's own), as the
    /// store has it now. Another org's server is "unknown", like a missing one.
    pub(crate) async fn server_id_for_org(
        &self,
        org: OrgId,
        slug: &str,
    ) -> Result<Option<ServerId>, AdminError> {
        let server = self
            .store()
            .find_server_for_org(org, slug)
            .await
            .map_err(|e| self.error(e))?;
        Ok(server.map(|s| s.id))
    }

    /// Server entries by slug to entries by id; unknown slugs are a 422
    /// naming every one of them.
    pub(crate) async fn server_entries(
        &self,
        org: OrgId,
        entries: &BTreeMap<String, ToolFilter>,
    ) -> Result<BTreeMap<ServerId, ToolFilter>, AdminError> {
        let mut out = BTreeMap::new();
        let mut unknown = Vec::new();
        for (slug, filter) in entries {
            match self.server_id_for_org(org, slug).await? {
                Some(id) => {
                    out.insert(id, filter.clone());
                }
                None => unknown.push(slug.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(out)
        } else {
            Err(AdminError::invalid(
                "servers",
                format!("no such server in this org: {}", unknown.join(", ")),
            ))
        }
    }

    /// A scope as written in the API to the store's form.
    pub(crate) async fn scope_from_spec(
        &self,
        org: OrgId,
        spec: &ScopeSpec,
    ) -> Result<Scope, AdminError> {
        let GrantsSpec { servers, toolsets } = match spec {
            ScopeSpec::Inherit => return Ok(Scope::Inherit),
            ScopeSpec::Grants(g) => g,
        };
        let servers = self.server_entries(org, servers).await?;
        let mut toolset_ids = std::collections::BTreeSet::new();
        let mut unknown = Vec::new();
        for slug in toolsets {
            match self
                .store()
                .get_toolset_by_slug(org, slug)
                .await
                .map_err(|e| self.error(e))?
            {
                Some(t) => {
                    toolset_ids.insert(t.id);
                }
                None => unknown.push(slug.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(AdminError::invalid(
                "toolsets",
                format!("no such toolset in this org: {}", unknown.join(", ")),
            ));
        }
        Ok(Scope::Grants(ScopeGrants {
            servers,
            toolsets: toolset_ids,
        }))
    }
}

/// RFC 3339 text to Unix milliseconds.
pub fn parse_time(field: &'static str, text: &str) -> Result<i64, AdminError> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        AdminError::invalid(
            field,
            format!("{field}: {text:?} is not an RFC 3339 time: {e}"),
        )
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| AdminError::invalid(field, format!("{field}: {text:?} is out of range")))
}

/// Unix milliseconds to RFC 3339 text.
pub fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_time("expires_at", "2027-01-01T00:00:00Z").unwrap();
        assert_eq!(ms, 1_798_761_600_000);
        assert_eq!(format_time(ms), "2027-01-01T00:00:00Z");
        assert!(parse_time("expires_at", "tomorrow").is_err());
    }
}
