//! The entities the admin API reads and writes. Views never contain secret
//! values: servers list only the *names* of their secret headers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warden_policy::{
    AgentId, EndUserId, KeyId, OrgId, Scope, ServerId, TeamId, ToolFilter, ToolsetId,
};

use crate::types::{Secret, Transport};

/// The result of a write: the value written and the policy revision it
/// produced (the local live snapshot is at that revision or later).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Written<T> {
    pub revision: u64,
    pub value: T,
}

/// Keyset pagination for long lists: rows with `id > after`, ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub after: Option<i64>,
    pub limit: u32,
}

impl Page {
    pub const MAX_LIMIT: u32 = 1000;

    pub fn first(limit: u32) -> Self {
        Page { after: None, limit }
    }

    /// The largest first page ([`Page::MAX_LIMIT`] rows); continue with
    /// `after` = the last id for more.
    pub fn all() -> Self {
        Page {
            after: None,
            limit: Page::MAX_LIMIT,
        }
    }

    /// `after` and the limit as bound in SQL (at most [`Page::MAX_LIMIT`]).
    pub(crate) fn bounds(&self) -> (i64, i64) {
        (
            self.after.unwrap_or(i64::MIN),
            i64::from(self.limit.min(Page::MAX_LIMIT)),
        )
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::first(100)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub suspended: bool,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct NewOrg {
    pub slug: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct OrgPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub suspended: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub id: ServerId,
    pub slug: String,
    /// `None`: global.
    pub owner_org: Option<OrgId>,
    pub name: String,
    pub transport: Transport,
    /// Names only: values are write-only.
    pub secret_header_names: Vec<String>,
    pub enabled: bool,
    pub timeout_ms: u64,
    pub config_revision: u64,
    pub created_at_ms: i64,
    /// The URL was set by an org admin: the gateway reaches it only within
    /// the platform's egress policy.
    pub egress_restricted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewServer {
    pub slug: String,
    #[serde(default)]
    pub owner_org: Option<OrgId>,
    #[serde(default)]
    pub name: String,
    pub transport: Transport,
    #[serde(default)]
    pub secret_headers: BTreeMap<String, Secret>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Set when an org admin sets the URL (see [`Server::egress_restricted`]).
    #[serde(default)]
    pub egress_restricted: bool,
}

fn default_true() -> bool {
    true
}

pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl NewServer {
    /// An enabled server with no secrets and the default timeout.
    pub fn new(slug: impl Into<String>, owner_org: Option<OrgId>, transport: Transport) -> Self {
        NewServer {
            slug: slug.into(),
            owner_org,
            name: String::new(),
            transport,
            secret_headers: BTreeMap::new(),
            enabled: true,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            egress_restricted: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ServerPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub transport: Option<Transport>,
    /// Replaces all secret headers.
    pub secret_headers: Option<BTreeMap<String, Secret>>,
    pub enabled: Option<bool>,
    pub timeout_ms: Option<u64>,
    /// Who set the URL: an org admin (`true`) or the platform (`false`).
    pub egress_restricted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgGrant {
    pub org: OrgId,
    pub server: ServerId,
    pub enabled: bool,
    pub filter: ToolFilter,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct OrgGrantPatch {
    pub enabled: Option<bool>,
    pub filter: Option<ToolFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub org: OrgId,
    pub slug: String,
    pub name: String,
    pub scope: Scope,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewTeam {
    pub org: OrgId,
    pub slug: String,
    #[serde(default)]
    pub name: String,
    /// `None`: *inherit*.
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct TeamPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub id: KeyId,
    pub org: OrgId,
    pub name: String,
    /// The token's first characters, for recognition; not a secret.
    pub token_prefix: String,
    pub team: Option<TeamId>,
    pub agent: Option<AgentId>,
    pub scope: Scope,
    pub revoked: bool,
    pub expires_at_ms: Option<i64>,
    pub may_assert_end_user: bool,
    pub may_assert_agent: bool,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewKey {
    pub org: OrgId,
    pub name: String,
    #[serde(default)]
    pub team: Option<TeamId>,
    #[serde(default)]
    pub agent: Option<AgentId>,
    /// `None`: *inherit*.
    #[serde(default)]
    pub scope: Option<Scope>,
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub may_assert_end_user: bool,
    #[serde(default)]
    pub may_assert_agent: bool,
}

impl NewKey {
    pub fn new(org: OrgId, name: impl Into<String>) -> Self {
        NewKey {
            org,
            name: name.into(),
            team: None,
            agent: None,
            scope: None,
            expires_at_ms: None,
            may_assert_end_user: false,
            may_assert_agent: false,
        }
    }
}

/// A key just created: the token is shown this once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    pub key: Key,
    pub token: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub revoked: Option<bool>,
    /// `Some(None)` removes the expiry.
    #[serde(default, with = "double_option")]
    pub expires_at_ms: Option<Option<i64>>,
    pub may_assert_end_user: Option<bool>,
    pub may_assert_agent: Option<bool>,
}

/// `absent` -> None, `null` -> Some(None), value -> Some(Some(v)).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndUser {
    pub id: EndUserId,
    pub org: OrgId,
    pub external_id: String,
    pub name: String,
    pub scope: Scope,
    /// Refused as a whole; live sessions end.
    #[serde(default)]
    pub disabled: bool,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewEndUser {
    pub org: OrgId,
    pub external_id: String,
    #[serde(default)]
    pub name: String,
    /// `None`: *inherit*.
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct EndUserPatch {
    pub external_id: Option<String>,
    pub name: Option<String>,
    /// Disable (refuse every request for them, end their sessions) or
    /// enable again.
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub org: OrgId,
    pub team: Option<TeamId>,
    pub slug: String,
    pub name: String,
    pub scope: Scope,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewAgent {
    pub org: OrgId,
    #[serde(default)]
    pub team: Option<TeamId>,
    pub slug: String,
    #[serde(default)]
    pub name: String,
    /// `None`: empty (a new agent uses only what is attached to it).
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct AgentPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolset {
    pub id: ToolsetId,
    pub org: OrgId,
    pub slug: String,
    pub name: String,
    pub servers: BTreeMap<ServerId, ToolFilter>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewToolset {
    pub org: OrgId,
    pub slug: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub servers: BTreeMap<ServerId, ToolFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ToolsetPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    /// Replaces all entries.
    pub servers: Option<BTreeMap<ServerId, ToolFilter>>,
}

/// An admin API credential. Platform tokens (`org: None`) manage everything;
/// org tokens only their org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    pub id: i64,
    pub name: String,
    pub org: Option<OrgId>,
    pub token_prefix: String,
    pub created_at_ms: i64,
}

/// Who an admin token authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminIdentity {
    pub token_id: i64,
    pub name: String,
    /// `None`: platform admin.
    pub org: Option<OrgId>,
}

impl AdminIdentity {
    /// The actor string recorded in the audit log.
    pub fn actor(&self) -> String {
        match self.org {
            None => format!("admin:{}", self.name),
            Some(org) => format!("admin:{}@org:{org}", self.name),
        }
    }
}
