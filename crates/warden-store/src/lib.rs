//! Warden's storage: policy rows in SQLite or PostgreSQL, the global
//! revision, the live snapshot and the audit log.
//!
//! Every policy write is one transaction: bump the revision, apply the
//! change, append the audit record, validate the resulting policy with the
//! engine, record it in the change feed, `NOTIFY` replicas (PostgreSQL),
//! commit, and install the new snapshot in [`Store::live`] before returning
//! the new revision.

mod admin_extra;
mod audit;
mod consents;
mod credentials;
mod crud;
mod crypto;
mod db;
mod egress;
mod entities;
mod error;
mod identity;
mod limits;
mod live;
mod migrate;
mod new_user_scope;
mod spool;
mod store;
mod stored;
mod sync;
mod types;

pub use audit::{
    AuditEntry, AuditKind, AuditPage, AuditQuery, AuditWriter, AuditWriterOptions, DecisionFields,
    AUDIT_DROPPED_METRIC, BATCH_LINGER, OUTCOME_WAIT, SPOOLED_LINGER,
};
pub use consents::{ConsentBinding, ConsentTarget, KeyCheck, PendingConsent, MAX_CONSENT_ATTEMPTS};
pub use credentials::{
    CredentialInfo, NewUserCredential, PendingRevocation, RegisteredClient, ServerUpstreamAuth,
    TokenSet, UpstreamAuthConfig, UpstreamAuthInput, UpstreamAuthView, UserCredential,
};
pub use crud::{token_digest, ADMIN_TOKEN_PREFIX, KEY_TOKEN_PREFIX};
pub use crypto::{generate_secret_key, load_or_create_key_file, parse_secret_key};
pub use db::{redact_url, Backend};
pub use egress::{forbidden_range, EgressDenied, EgressPolicy, UpstreamPolicy, UrlTarget};
pub use entities::*;
pub use error::{Result, StoreError};
pub use identity::{IdentityProvider, IdentityProviderPatch, SIGN_IN_KEY_PREFIX};
pub use limits::{Limit, LimitPatch, NewLimit};
pub use live::LivePolicy;
pub use spool::{AuditSpool, SpoolReplay};
pub use store::{Store, StoreOptions, POLICY_CHANNEL};
pub use sync::ReplicaInfo;
pub use types::{DecisionOutcome, DecisionRecord, Secret, Transport, UpstreamConfig};
