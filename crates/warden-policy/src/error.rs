use thiserror::Error;

/// Why a set of policy rows cannot become a [`crate::Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("bad {kind} slug {slug:?}: {why}")]
    BadSlug {
        kind: &'static str,
        slug: String,
        why: String,
    },
    #[error("duplicate {kind} id {id}")]
    DuplicateId { kind: &'static str, id: i64 },
    #[error("duplicate {kind} {name:?} {scope}")]
    DuplicateName {
        kind: &'static str,
        name: String,
        scope: String,
    },
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: i64 },
    #[error("the {field} of {kind} {id} cannot change")]
    Immutable {
        kind: &'static str,
        id: i64,
        field: &'static str,
    },
    #[error("change for revision {got} cannot follow revision {current}")]
    RevisionOrder { current: u64, got: u64 },
    #[error("{from} refers to {kind} {id}, which does not exist{context}")]
    Dangling {
        from: String,
        kind: &'static str,
        id: i64,
        context: String,
    },
    #[error("limit {id}: {why}")]
    BadLimit { id: i64, why: String },
    // Refusals of a request's principal formed from its key and the
    // identities it asserts (HTTP 401/403), never ignored:
    #[error("unknown key")]
    KeyUnknown,
    #[error("this key may not assert an end user")]
    EndUserAssertionNotAllowed,
    #[error("this key may not assert an agent")]
    AgentAssertionNotAllowed,
    #[error("end user {0:?} is not known in this organization")]
    EndUserUnknown(String),
    #[error("agent {0:?} is not known in this organization")]
    AgentUnknown(String),
}

impl PolicyError {
    /// Stable snake_case code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::KeyUnknown => "key_unknown",
            PolicyError::EndUserAssertionNotAllowed => "end_user_assertion_not_allowed",
            PolicyError::AgentAssertionNotAllowed => "agent_assertion_not_allowed",
            PolicyError::EndUserUnknown(_) => "end_user_unknown",
            PolicyError::AgentUnknown(_) => "agent_unknown",
            PolicyError::BadSlug { .. } => "bad_slug",
            PolicyError::DuplicateId { .. } => "duplicate_id",
            PolicyError::DuplicateName { .. } => "duplicate_name",
            PolicyError::NotFound { .. } => "not_found",
            PolicyError::Immutable { .. } => "immutable",
            PolicyError::RevisionOrder { .. } => "revision_order",
            PolicyError::Dangling { .. } => "dangling_reference",
            PolicyError::BadLimit { .. } => "bad_limit",
        }
    }
}
