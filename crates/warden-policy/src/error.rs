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
}

/// Why a request's principal could not be formed from its key and the
/// identities it asserts. These are refusals (HTTP 401/403), never ignored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrincipalError {
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

impl PrincipalError {
    /// Stable snake_case code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PrincipalError::KeyUnknown => "key_unknown",
            PrincipalError::EndUserAssertionNotAllowed => "end_user_assertion_not_allowed",
            PrincipalError::AgentAssertionNotAllowed => "agent_assertion_not_allowed",
            PrincipalError::EndUserUnknown(_) => "end_user_unknown",
            PrincipalError::AgentUnknown(_) => "agent_unknown",
        }
    }
}
