//! The bootstrap file's format (see `examples/bootstrap.toml`).

use std::collections::BTreeMap;

use serde::Deserialize;
use warden_policy::ToolFilter;

use crate::dto::{RateSpec, ScopeSpec, TransportSpec};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapFile {
    #[serde(default)]
    pub orgs: Vec<OrgEntry>,
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    #[serde(default)]
    pub grants: Vec<GrantEntry>,
    #[serde(default)]
    pub toolsets: Vec<ToolsetEntry>,
    #[serde(default)]
    pub teams: Vec<TeamEntry>,
    #[serde(default)]
    pub agents: Vec<AgentEntry>,
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    #[serde(default)]
    pub limits: Vec<LimitEntry>,
    /// Identity providers people sign in with (docs/identity.md): the same
    /// fields as `POST /admin/v1/identity-providers`.
    #[serde(default)]
    pub identity_providers: Vec<warden_identity::ProviderConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgEntry {
    pub slug: String,
    pub name: Option<String>,
    /// The scope people created on their first identity-provider sign-in
    /// get (`"inherit"` or grants, like an end user's scope). Applied after
    /// grants and toolsets, which it may name. Absent: left as it is
    /// (*inherit* for a new org).
    pub new_user_scope: Option<ScopeSpec>,
}

/// Where a secret value comes from: never the file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    pub env: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    pub slug: String,
    /// The owning org; absent for a global server.
    pub org: Option<String>,
    pub transport: TransportSpec,
    /// Headers (stdio: environment variables) Warden adds upstream, their
    /// values read from the environment. When given, the server's secret
    /// headers are exactly these: a changed value (a rotated upstream
    /// secret) is written; `secret_headers = {}` removes them all. Absent:
    /// an existing server's are left as they are.
    pub secret_headers: Option<BTreeMap<String, SecretSource>>,
    pub timeout_ms: Option<u64>,
    /// Default on creation: true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    pub org: String,
    pub server: String,
    /// Default on creation: `"*"`.
    pub tools: Option<ToolFilter>,
    /// Default on creation: true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsetEntry {
    pub org: String,
    pub slug: String,
    pub servers: BTreeMap<String, ToolFilter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEntry {
    pub org: String,
    pub slug: String,
    pub scope: Option<ScopeSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    pub org: String,
    pub slug: String,
    pub team: Option<String>,
    /// Absent: an empty scope (the agent reaches nothing).
    pub scope: Option<ScopeSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub org: String,
    pub name: String,
    pub team: Option<String>,
    pub agent: Option<String>,
    /// Take the key's secret from this environment variable.
    pub secret_env: Option<String>,
    pub may_assert_end_user: Option<bool>,
    pub may_assert_agent: Option<bool>,
    pub scope: Option<ScopeSpec>,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

/// A quota or rate limit. Its holder is at most one of `team`, `key` (by
/// name), `end_user` (external id) and `agent`; none: the whole org. A
/// limit is identified by (org, holder, server, tool): one per target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitEntry {
    pub org: String,
    pub team: Option<String>,
    pub key: Option<String>,
    pub end_user: Option<String>,
    pub agent: Option<String>,
    /// Absent: all servers.
    pub server: Option<String>,
    /// Absent: all tools of `server`.
    pub tool: Option<String>,
    pub rate: Option<RateSpec>,
    pub concurrency: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../../examples/bootstrap.toml");
        let file: BootstrapFile = toml::from_str(text).unwrap();
        assert_eq!(file.orgs.len(), 2);
        assert_eq!(file.servers.len(), 2);
        assert_eq!(
            file.grants[0].tools,
            Some(ToolFilter::except(["delete_repository"]))
        );
        assert_eq!(file.teams[0].scope, Some(ScopeSpec::Inherit));
        assert_eq!(file.keys.len(), 3);
        assert_eq!(file.limits.len(), 3);
        assert_eq!(file.limits[1].team.as_deref(), Some("support"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            toml::from_str::<BootstrapFile>("[[orgs]]\nslug = \"a\"\nslugg = \"b\"\n").unwrap_err();
        assert!(err.to_string().contains("slugg"), "{err}");
    }
}
