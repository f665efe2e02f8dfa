//! Shapes the store hands to the gateway and takes back from it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use warden_policy::{AgentId, EndUserId, KeyId, OrgId, ServerId};

/// A secret value (an upstream header). Its `Debug` and `Display` never
/// show the value, so it cannot leak through logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (the upstream request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Secrets can be read from input (admin API bodies, config files) but have
/// no `Serialize`: they cannot be written back out by accident.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach an upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transport {
    /// MCP Streamable HTTP at this URL.
    Http { url: String },
    /// A child process speaking MCP over stdio.
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
}

/// Everything the gateway needs to connect to one upstream, secrets
/// decrypted. Only the gateway's upstream client should hold these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub server: ServerId,
    pub slug: String,
    pub owner_org: Option<OrgId>,
    pub transport: Transport,
    /// Headers Warden adds to every upstream HTTP request (or, for stdio,
    /// environment variables). Decrypted.
    pub secret_headers: BTreeMap<String, Secret>,
    pub timeout_ms: u64,
    /// The URL was set by an org admin: connect only within the platform's
    /// egress policy ([`crate::EgressPolicy`]).
    pub egress_restricted: bool,
    /// The revision at which this server's connection settings last changed:
    /// the gateway reconnects when it moves.
    pub config_revision: u64,
}

/// One call (or list) decision, as the data plane reports it to the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Unique id, also returned to the client in error data and `_meta`.
    pub decision_id: String,
    pub at_ms: i64,
    pub org: Option<OrgId>,
    pub key: Option<KeyId>,
    pub end_user: Option<EndUserId>,
    pub agent: Option<AgentId>,
    /// The JSON-RPC method (`tools/call`, `resources/read`, ...).
    pub method: String,
    pub server_slug: String,
    pub tool: Option<String>,
    pub allowed: bool,
    /// Stable reason code when denied.
    pub reason: Option<String>,
    pub revision: u64,
    /// Time from request to response, microseconds (0 if unknown, e.g. a
    /// record written durably before its call was forwarded, until its
    /// [`DecisionOutcome`] is applied).
    pub latency_us: u64,
}

/// What is known about an allowed call only once it has ended, applied to
/// the decision row its [`DecisionRecord`] was written as before the call
/// was forwarded (`AuditWriter::record_outcome`, best effort).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionOutcome {
    /// The record's `decision_id`.
    pub decision_id: String,
    /// The record's `at_ms`: with `decision_id`, it finds the row.
    pub at_ms: i64,
    /// Time from request to response, microseconds.
    pub latency_us: u64,
}

impl DecisionOutcome {
    /// The outcome of the call `record` was written for.
    pub fn of(record: &DecisionRecord, latency_us: u64) -> Self {
        DecisionOutcome {
            decision_id: record.decision_id.clone(),
            at_ms: record.at_ms,
            latency_us,
        }
    }
}
