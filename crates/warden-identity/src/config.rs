//! One trusted identity provider, as configuration. Org, team and agent
//! are named by slug here; the store keeps ids and turns them into slugs
//! when it hands the configuration to the gateway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::IdentityError;

/// Longest claim name, group, client id or slug accepted in configuration.
pub const MAX_CONFIG_STRING: usize = 256;
/// Most mapping entries of one kind per provider.
pub const MAX_MAPPINGS: usize = 1_000;

/// A trusted issuer and how its tokens become Warden identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The provider's name in Warden.
    pub slug: String,
    /// The `iss` its tokens carry, exactly (also the discovery base).
    pub issuer: String,
    /// Where its signing keys are; `None`: found by OpenID Connect
    /// discovery (`{issuer}/.well-known/openid-configuration`).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Audiences accepted besides Warden's own resource URLs (e.g. an
    /// `api://warden` identifier some providers insist on).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The claim naming the end user.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim carrying the user's groups (a list of strings).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Group → team, in order: the first entry whose group the user is in
    /// gives the team. No match: no team level.
    #[serde(default)]
    pub group_teams: Vec<GroupTeam>,
    /// OAuth client id (`azp` / `client_id`) → the agent it acts as.
    #[serde(default)]
    pub client_agents: Vec<ClientAgent>,
    /// Scopes every token must carry (else 403 `insufficient_scope`).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// The org (or orgs) this provider's users belong to.
    pub orgs: OrgBinding,
    /// Groups that make a person an admin of the admin API.
    #[serde(default)]
    pub admin_groups: AdminGroups,
    /// The admin console's OAuth client at this provider: a public client
    /// (authorization code + PKCE, no secret) whose redirect URI is
    /// `{public_url}/console/login/callback`. When set (and the provider is
    /// enabled) the console offers "Sign in with {slug}"; the ID token it
    /// gets must name this client as its audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_client_id: Option<String>,
}

pub fn default_user_claim() -> String {
    "sub".to_owned()
}

/// A group whose members act in `team` of `org`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupTeam {
    pub group: String,
    pub org: String,
    pub team: String,
}

/// An OAuth client registered as its own agent: tokens issued to it act as
/// `agent` (a slug of the token's org).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAgent {
    pub client_id: String,
    pub agent: String,
}

/// Which org a token's user belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrgBinding {
    /// Every user of the provider is in this org.
    Org { org: String },
    /// A provider serving several orgs: the value of `claim` selects the
    /// org through `values` (claim value → org slug). A value not listed
    /// is refused.
    Claim {
        claim: String,
        values: BTreeMap<String, String>,
    },
}

impl OrgBinding {
    /// Every org slug this binding can yield.
    pub fn orgs(&self) -> Vec<&str> {
        match self {
            OrgBinding::Org { org } => vec![org.as_str()],
            OrgBinding::Claim { values, .. } => values.values().map(String::as_str).collect(),
        }
    }
}

/// Group claim values that grant admin API roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminGroups {
    /// Members administer the whole gateway.
    #[serde(default)]
    pub platform_admin: Option<String>,
    /// Members administer their own org.
    #[serde(default)]
    pub org_admin: Option<String>,
}

impl ProviderConfig {
    /// Shape checks that need no other entity (the store checks that the
    /// named orgs, teams and agents exist).
    pub fn validate(&self) -> Result<(), IdentityError> {
        let bad = |why: String| Err(IdentityError::Config(why));
        let url_ok = |u: &str| {
            (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 2048
                && !u.contains(char::is_whitespace)
        };
        if !url_ok(&self.issuer) {
            return bad("issuer must be an http(s) URL".into());
        }
        if let Some(j) = &self.jwks_uri {
            if !url_ok(j) {
                return bad("jwks_uri must be an http(s) URL".into());
            }
        }
        let short = |what: &str, s: &str| {
            if s.is_empty() || s.len() > MAX_CONFIG_STRING {
                Err(IdentityError::Config(format!(
                    "{what} must be 1 to {MAX_CONFIG_STRING} bytes"
                )))
            } else {
                Ok(())
            }
        };
        short("user_claim", &self.user_claim)?;
        if let Some(g) = &self.groups_claim {
            short("groups_claim", g)?;
        }
        if !self.group_teams.is_empty() && self.groups_claim.is_none() {
            return bad("group_teams needs groups_claim".into());
        }
        if (self.admin_groups.platform_admin.is_some() || self.admin_groups.org_admin.is_some())
            && self.groups_claim.is_none()
        {
            return bad("admin_groups needs groups_claim".into());
        }
        if self.group_teams.len() > MAX_MAPPINGS
            || self.client_agents.len() > MAX_MAPPINGS
            || self.audiences.len() > MAX_MAPPINGS
            || self.required_scopes.len() > MAX_MAPPINGS
        {
            return bad(format!("at most {MAX_MAPPINGS} entries per list"));
        }
        for a in &self.audiences {
            short("audience", a)?;
        }
        for s in &self.required_scopes {
            short("scope", s)?;
            if s.contains(' ') {
                return bad("a scope has no spaces".into());
            }
        }
        let orgs = self.orgs.orgs();
        match &self.orgs {
            OrgBinding::Org { org } => short("org", org)?,
            OrgBinding::Claim { claim, values } => {
                short("org claim", claim)?;
                if values.is_empty() || values.len() > MAX_MAPPINGS {
                    return bad("an org claim maps 1 to 1000 values".into());
                }
                for (v, o) in values {
                    short("org claim value", v)?;
                    short("org", o)?;
                }
            }
        }
        for gt in &self.group_teams {
            short("group", &gt.group)?;
            short("team", &gt.team)?;
            if !orgs.contains(&gt.org.as_str()) {
                return bad(format!(
                    "group {:?} maps to a team of an org this provider does not serve",
                    gt.group
                ));
            }
        }
        for ca in &self.client_agents {
            short("client_id", &ca.client_id)?;
            short("agent", &ca.agent)?;
        }
        if let Some(c) = &self.console_client_id {
            short("console_client_id", c)?;
            if c.contains(char::is_whitespace) {
                return bad("console_client_id has no spaces".into());
            }
        }
        Ok(())
    }
}
