//! Request and response bodies of the admin API. Requests deny unknown
//! fields; responses never carry a secret except the one-time key/token
//! secret on creation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use warden_policy::ToolFilter;

/// Every write answers with the revision the change created (or, for a
/// write that changed nothing, the current one) and the object written.
#[derive(Debug, Serialize, ToSchema)]
pub struct Written<T> {
    pub revision: u64,
    pub item: T,
}

/// The answer of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub revision: u64,
}

/// A list, with the revision of the policy it was read at.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing<T> {
    pub revision: u64,
    pub items: Vec<T>,
    /// More items follow: pass this as `after` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

impl<T> Listing<T> {
    /// A complete list (no further pages).
    pub fn all(revision: u64, items: Vec<T>) -> Self {
        Listing {
            revision,
            items,
            next_after: None,
        }
    }
}

/// `?limit=&after=` on long lists (keys, end users, teams, agents, toolsets).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1..=1000 (default 1000).
    pub limit: Option<u32>,
    /// The previous page's `next_after`.
    pub after: Option<i64>,
}

/// A created key or admin token: the secret appears here once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created<T> {
    pub revision: u64,
    pub item: T,
    /// The bearer secret. Store it now: only its digest is kept.
    pub secret: String,
}

/// `?wait=propagated[&timeout_ms=]` on any write.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// `propagated`: answer only once every live replica applied the write.
    #[param(inline)]
    pub wait: Option<WaitFor>,
    /// How long to wait for replicas (default 5000).
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// The default: the write is live on this replica.
    Local,
    Propagated,
}

// ---------------------------------------------------------------- orgs

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub slug: String,
    pub name: String,
    pub suspended: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub slug: String,
    /// A label for people; defaults to the slug.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrg {
    pub name: Option<String>,
    pub suspended: Option<bool>,
}

// ---------------------------------------------------------------- admin tokens

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTokenView {
    pub id: i64,
    pub name: String,
    /// The org an org admin token is confined to; `null` for platform admins.
    pub org: Option<String>,
    /// The first characters of the secret, to recognise it.
    pub token_prefix: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminToken {
    pub name: String,
}

/// Who the calling token is.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    /// `platform` or `org`.
    pub role: String,
    pub org: Option<String>,
}

// ---------------------------------------------------------------- servers

/// How to reach an upstream: `{"type":"http","url":...}` or
/// `{"type":"stdio","command":...,"args":[...],"env":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransportSpec {
    Http {
        url: String,
    },
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerView {
    pub slug: String,
    pub name: String,
    /// The owning org; `null` for a global server.
    pub owner_org: Option<String>,
    pub enabled: bool,
    pub transport: TransportSpec,
    /// Names of the secret headers; their values are write-only.
    pub secret_header_names: Vec<String>,
    pub timeout_ms: u64,
    /// The URL was set by an org admin: the gateway connects only to
    /// addresses the platform's egress policy allows. A platform admin
    /// setting the URL clears it.
    pub egress_restricted: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    pub slug: String,
    /// A label for people; defaults to the slug.
    pub name: Option<String>,
    pub transport: TransportSpec,
    /// Headers (stdio: environment variables) Warden adds upstream.
    #[serde(default)]
    pub secret_headers: BTreeMap<String, String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchServer {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub transport: Option<TransportSpec>,
    /// Replaces every secret header.
    pub secret_headers: Option<BTreeMap<String, String>>,
    pub timeout_ms: Option<u64>,
}

fn default_true() -> bool {
    true
}

// ---------------------------------------------------------------- grants

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub server: String,
    pub enabled: bool,
    /// `"*"`, `["a","b"]` or `{"except":["c"]}`.
    #[schema(value_type = Object)]
    pub filter: ToolFilter,
}

/// Creates or replaces an org grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGrant {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "all_tools")]
    #[schema(value_type = Object)]
    pub filter: ToolFilter,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchGrant {
    pub enabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<ToolFilter>,
}

fn all_tools() -> ToolFilter {
    ToolFilter::All
}

// ---------------------------------------------------------------- scopes

/// A scope as people write it: `"inherit"`, or grants by slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum ScopeSpec {
    Inherit,
    Grants(GrantsSpec),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantsSpec {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub servers: BTreeMap<String, ToolFilter>,
    #[serde(default)]
    pub toolsets: BTreeSet<String>,
}

impl utoipa::PartialSchema for ScopeSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["inherit"])),
            )
            .item(<GrantsSpec as utoipa::PartialSchema>::schema())
            .description(Some(
                "`\"inherit\"` (no restriction from this level) or grants: \
                 `{\"servers\": {slug: filter}, \"toolsets\": [slug]}`; empty grants admit nothing",
            ))
            .into()
    }
}

impl ToSchema for ScopeSpec {}

impl TryFrom<Value> for ScopeSpec {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        match v {
            Value::String(s) if s == "inherit" => Ok(ScopeSpec::Inherit),
            Value::Object(_) => serde_json::from_value(v)
                .map(ScopeSpec::Grants)
                .map_err(|e| format!("scope: {e}")),
            other => Err(format!(
                "scope must be \"inherit\" or {{\"servers\": {{...}}, \"toolsets\": [...]}}, got {other}"
            )),
        }
    }
}

impl From<ScopeSpec> for Value {
    fn from(s: ScopeSpec) -> Value {
        match s {
            ScopeSpec::Inherit => Value::String("inherit".into()),
            ScopeSpec::Grants(g) => serde_json::to_value(g).unwrap_or(Value::Null),
        }
    }
}

/// What a scope owner's parent chain allows: the picker's choices.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeOptions {
    pub revision: u64,
    pub servers: Vec<ServerOption>,
    /// Toolsets of the org that lie entirely within the allowance.
    pub toolsets: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerOption {
    pub server: String,
    /// The widest filter the parent allows.
    #[schema(value_type = Object)]
    pub filter: ToolFilter,
    /// Tools of the server's current catalog the filter admits, when the
    /// catalog is known.
    pub tools: Option<Vec<String>>,
}

// ---------------------------------------------------------------- teams, agents, end users, toolsets

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    pub slug: String,
    pub name: String,
    pub scope: ScopeSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub slug: String,
    /// A label for people; defaults to the slug.
    pub name: Option<String>,
    /// Defaults to `"inherit"`.
    pub scope: Option<ScopeSpec>,
}

/// Changes a team. Its slug is its identity (paths, bootstrap file) and
/// does not change; its scope is set with `PUT .../scope`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTeam {
    /// A label for people: 1 to 256 bytes, not blank.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub slug: String,
    pub name: String,
    pub team: Option<String>,
    pub scope: ScopeSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub slug: String,
    /// A label for people; defaults to the slug.
    pub name: Option<String>,
    pub team: Option<String>,
    /// Defaults to an empty scope: a new agent reaches nothing until
    /// something is attached to it.
    pub scope: Option<ScopeSpec>,
}

/// Changes an agent. Its slug is its identity (keys assert agents by
/// slug) and does not change; its scope is set with `PUT .../scope`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAgent {
    /// A label for people: 1 to 256 bytes, not blank.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndUserView {
    pub external_id: String,
    pub name: String,
    pub scope: ScopeSpec,
    /// A disabled end user is refused (`end_user_disabled`); their live
    /// sessions end.
    pub disabled: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndUser {
    pub external_id: String,
    /// A label for people; defaults to the external id.
    pub name: Option<String>,
    /// Defaults to `"inherit"`.
    pub scope: Option<ScopeSpec>,
}

/// Changes an end user. The external id is the identity service keys
/// assert and does not change; the scope is set with `PUT .../scope`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEndUser {
    /// A label for people: 1 to 256 bytes, not blank.
    pub name: Option<String>,
    /// `true` refuses every request made for this end user (a signed-in
    /// person or one a service key asserts) and ends their live sessions.
    pub disabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ToolsetView {
    pub slug: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub servers: BTreeMap<String, ToolFilter>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToolset {
    pub slug: String,
    /// A label for people; defaults to the slug.
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub servers: BTreeMap<String, ToolFilter>,
}

/// Changes a toolset in one write. Its slug is its identity
/// (`/mcp/toolsets/{slug}`, scopes) and does not change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchToolset {
    /// A label for people: 1 to 256 bytes, not blank.
    pub name: Option<String>,
    /// Replaces every server entry; each must lie within the org's grants
    /// (422 `grants_beyond_parent` lists the offending entries).
    #[schema(value_type = Option<Object>)]
    pub servers: Option<BTreeMap<String, ToolFilter>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutToolsetServers {
    #[schema(value_type = Object)]
    pub servers: BTreeMap<String, ToolFilter>,
}

// ---------------------------------------------------------------- keys

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub token_prefix: String,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub revoked: bool,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub may_assert_end_user: bool,
    pub may_assert_agent: bool,
    pub scope: ScopeSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Unique in the org.
    pub name: String,
    pub team: Option<String>,
    /// Bind the key to this agent: it always acts as it.
    pub agent: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    #[serde(default)]
    pub may_assert_end_user: bool,
    #[serde(default)]
    pub may_assert_agent: bool,
    /// Defaults to `"inherit"`.
    pub scope: Option<ScopeSpec>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchKey {
    /// A new name, unique in the org.
    pub name: Option<String>,
    /// RFC 3339, or `null` to remove the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Option<String>>,
    pub may_assert_end_user: Option<bool>,
    pub may_assert_agent: Option<bool>,
}

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

// ---------------------------------------------------------------- access, explain

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessParams {
    /// External id of an end user the key acts for.
    pub end_user: Option<String>,
    /// Slug of an agent the key acts as.
    pub agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    pub revision: u64,
    pub key: i64,
    pub end_user: Option<String>,
    pub agent: Option<String>,
    /// Why the principal reaches nothing at all (revoked, expired,
    /// suspended), or `null`.
    pub principal_denial: Option<String>,
    pub servers: Vec<ServerAccessView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerAccessView {
    pub server: String,
    #[schema(value_type = Object)]
    pub filter: ToolFilter,
    /// Tools of the current catalog the filter admits, when known.
    pub tools: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainParams {
    /// Key id.
    pub key: i64,
    pub server: String,
    pub tool: String,
    pub end_user: Option<String>,
    pub agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainView {
    pub revision: u64,
    pub allowed: bool,
    /// The first failing check's stable code, or `null` when allowed.
    pub reason: Option<String>,
    /// Every check in order with its outcome.
    #[schema(value_type = Object)]
    pub trace: Value,
    /// The limits that would count this call (empty when none apply).
    pub limits: EffectiveLimitsView,
}

// ---------------------------------------------------------------- replicas, audit

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries about this org (org admins always see only theirs).
    pub org: Option<String>,
    /// Entity kind (`server`, `key`, ...) or `kind:id` (the id as entries show it).
    pub entity: Option<String>,
    /// Who made the change: an admin token's name (`ops`, matching what
    /// that token did), or an actor exactly as entries show it
    /// (`admin:ops`, `admin:ops@org:3`, `system:bootstrap`, `warden-serve`).
    pub actor: Option<String>,
    /// `admin_change` or `decision`.
    pub kind: Option<String>,
    /// Call decisions of this key (its id).
    #[serde(default)]
    pub key: Option<i64>,
    /// Call decisions denied with this reason code (`server_disabled_by_org`, ...).
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaView {
    pub id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub heartbeat_at: String,
    pub applied_revision: u64,
    /// Heartbeat recent enough to count as running.
    pub live: bool,
    /// This process.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `admin_change` or `decision`.
    pub kind: String,
    /// Who made an admin change: `admin:<token name>` (platform token),
    /// `admin:<token name>@org:<org id>` (org token), or a built-in writer
    /// (`system:bootstrap` for the bootstrap file, `warden-serve`,
    /// `warden-demo`).
    pub actor: Option<String>,
    pub action: String,
    pub entity_kind: Option<String>,
    pub entity: Option<String>,
    pub org: Option<String>,
    pub revision: u64,
    /// Admin changes: the entity before and after (secrets never included).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// Decisions: what was decided.
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- limits

/// Whom a limit holds for, by the names the API uses elsewhere: the org as
/// a whole, a team or agent by slug, a key by id, an end user by external id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LimitLevelSpec {
    /// A struct variant, so that unknown fields are refused here too.
    Org {},
    Team {
        slug: String,
    },
    Key {
        id: i64,
    },
    EndUser {
        external_id: String,
    },
    Agent {
        slug: String,
    },
}

/// Period of a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowSpec {
    Minute,
    Hour,
}

/// A token bucket: at most `burst` calls at once, refilled at `requests`
/// per `per`. `burst` defaults to `requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub requests: u32,
    pub per: WindowSpec,
    #[serde(default)]
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitView {
    pub id: i64,
    pub level: LimitLevelSpec,
    /// `null`: every server.
    pub server: Option<String>,
    /// `null`: every tool of `server`.
    pub tool: Option<String>,
    pub rate: Option<RateSpec>,
    /// The most calls in flight at once.
    pub concurrency: Option<u32>,
}

/// A new limit: at least one of `rate` and `concurrency`; `tool` only with
/// `server`, which must be granted to the org.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLimit {
    pub level: LimitLevelSpec,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub rate: Option<RateSpec>,
    pub concurrency: Option<u32>,
}

/// Changes a limit; absent fields stay, `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLimit {
    pub level: Option<LimitLevelSpec>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub server: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub tool: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateSpec>)]
    pub rate: Option<Option<RateSpec>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub concurrency: Option<Option<u32>>,
}

/// The tightest rate or concurrency among the limits that apply, and the
/// limit (id and level) that set it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitBoundView {
    pub limit: i64,
    pub level: LimitLevelSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// The limits that would count the explained call. Limits never allow or
/// deny: the data plane refuses a permitted call once one runs out.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct EffectiveLimitsView {
    pub applicable: Vec<LimitView>,
    pub rate: Option<LimitBoundView>,
    pub concurrency: Option<LimitBoundView>,
    /// What is left of each applicable limit on the replica that answered
    /// (its share of the limit), in the order of `applicable`.
    pub remaining: Vec<LimitRemainingView>,
}

/// What is left of one limit on this replica.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimitRemainingView {
    pub limit: i64,
    /// Calls the rate limit would admit right now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_left: Option<u32>,
    /// Calls in flight under the concurrency cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u32>,
    /// Live replicas sharing the limit (this one enforces 1/N of it).
    pub replicas: u32,
}
