//! Verified claims → the identity Warden acts on: the org, the end user,
//! the team (first matching group), the agent (OAuth client), the scopes
//! and any admin role.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{OrgBinding, ProviderConfig};
use crate::error::IdentityError;

/// Longest user id, group, client id or scope taken from a token.
pub const MAX_CLAIM_BYTES: usize = 256;
/// Most groups or scopes read from a token.
const MAX_CLAIM_ITEMS: usize = 256;

/// An admin API role a token's groups grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    Platform,
    /// Admin of the token's org.
    Org,
}

/// Who a verified token names. Org, team and agent are slugs of the org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub provider: String,
    pub org: String,
    /// The end user's external id (the user claim's value).
    pub user: String,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// The token's audiences (`aud`).
    pub audiences: Vec<String>,
    /// `aud` names one of the provider's configured extra audiences.
    pub configured_audience: bool,
    /// Unix time in seconds.
    pub expires_at: u64,
    pub admin: Option<AdminRole>,
}

impl Identity {
    pub fn expires_at_ms(&self) -> i64 {
        i64::try_from(self.expires_at.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// RFC 8707: was the token issued for one of `resources` (Warden's
    /// resource URLs for the endpoint it is presented to) or for an
    /// audience the provider is configured with? Trailing slashes aside,
    /// the comparison is exact.
    pub fn audience_matches(&self, resources: &[&str]) -> bool {
        self.configured_audience
            || self.audiences.iter().any(|a| {
                let a = a.trim_end_matches('/');
                resources.iter().any(|r| r.trim_end_matches('/') == a)
            })
    }
}

fn bounded(s: &str, claim: &str) -> Result<String, IdentityError> {
    if s.is_empty() || s.len() > MAX_CLAIM_BYTES {
        Err(IdentityError::ClaimMissing(
            claim.chars().take(64).collect(),
        ))
    } else {
        Ok(s.to_owned())
    }
}

/// A claim as text: strings as they are, numbers in decimal.
fn text_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, IdentityError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => bounded(s, name).map(Some),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(IdentityError::ClaimMissing(name.chars().take(64).collect())),
    }
}

/// A claim as a list of strings: an array, or one space-separated string.
fn list_claim(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let items: Vec<String> = match claims.get(name) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter(|s| !s.is_empty() && s.len() <= MAX_CLAIM_BYTES)
        .take(MAX_CLAIM_ITEMS)
        .collect()
}

/// Maps verified claims through `config`. The audience is not checked
/// here (it depends on the endpoint); everything else that can refuse a
/// token is.
pub fn identity(
    config: &ProviderConfig,
    claims: &Map<String, Value>,
) -> Result<Identity, IdentityError> {
    let user = text_claim(claims, &config.user_claim)?
        .ok_or_else(|| IdentityError::ClaimMissing(config.user_claim.clone()))?;
    let org = match &config.orgs {
        OrgBinding::Org { org } => org.clone(),
        OrgBinding::Claim { claim, values } => {
            let value = text_claim(claims, claim)?.ok_or(IdentityError::OrgNotBound)?;
            values
                .get(&value)
                .cloned()
                .ok_or(IdentityError::OrgNotBound)?
        }
    };
    let mut scopes = list_claim(claims, "scope");
    scopes.extend(list_claim(claims, "scp"));
    let missing: Vec<String> = config
        .required_scopes
        .iter()
        .filter(|s| !scopes.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(IdentityError::InsufficientScope {
            required: config.required_scopes.clone(),
        });
    }
    let groups = config
        .groups_claim
        .as_deref()
        .map(|g| list_claim(claims, g))
        .unwrap_or_default();
    let team = match config
        .group_teams
        .iter()
        .find(|gt| groups.contains(&gt.group))
    {
        None => None,
        Some(gt) if gt.org != org => return Err(IdentityError::TeamOfAnotherOrg),
        Some(gt) => Some(gt.team.clone()),
    };
    let client_id = match text_claim(claims, "azp")? {
        Some(c) => Some(c),
        None => text_claim(claims, "client_id")?,
    };
    let agent = client_id.as_ref().and_then(|c| {
        config
            .client_agents
            .iter()
            .find(|ca| &ca.client_id == c)
            .map(|ca| ca.agent.clone())
    });
    let has = |g: &Option<String>| g.as_ref().is_some_and(|g| groups.contains(g));
    let admin = if has(&config.admin_groups.platform_admin) {
        Some(AdminRole::Platform)
    } else if has(&config.admin_groups.org_admin) {
        Some(AdminRole::Org)
    } else {
        None
    };
    let audiences = list_claim(claims, "aud");
    let configured_audience = audiences.iter().any(|a| config.audiences.contains(a));
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| IdentityError::ClaimMissing("exp".into()))?;
    Ok(Identity {
        provider: config.slug.clone(),
        org,
        user,
        team,
        agent,
        client_id,
        scopes,
        audiences,
        configured_audience,
        expires_at,
        admin,
    })
}
