use thiserror::Error;
use warden_policy::{PolicyError, ScopeOffense};

/// Everything that can go wrong in the store. Input errors (`NotFound`,
/// `Duplicate`, `Dangling`, `Invalid`, `ScopeNotAllowed`, `BadInput`) are
/// detected before commit: nothing is half-written.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {name:?} already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("{kind} {id} does not exist (or is not in this org)")]
    Dangling { kind: &'static str, id: String },
    /// The policy engine refused the resulting rows.
    #[error("invalid policy: {0}")]
    Invalid(#[from] PolicyError),
    /// A scope asks for more than its parent chain allows.
    #[error("scope grants more than the parent allows: {}", offenses_summary(.0))]
    ScopeNotAllowed(Vec<ScopeOffense>),
    /// Some live replicas had not applied the revision in time.
    #[error("revision {revision} not applied by {} replica(s) in time", .laggards.len())]
    NotPropagated {
        revision: u64,
        laggards: Vec<crate::sync::ReplicaInfo>,
    },
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("secret encryption failed: {0}")]
    Crypto(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A durable decision record was not committed (queue full, database
    /// refusing after retries, writer stopped): the call must not proceed
    /// as if it were audited.
    #[error("the audit log is unavailable: {0}")]
    AuditUnavailable(String),
}

fn offenses_summary(offenses: &[ScopeOffense]) -> String {
    offenses
        .iter()
        .map(|o| o.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl StoreError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Database(_) | StoreError::Migrate(_) => "database_error",
            StoreError::UnsupportedUrl(_) => "unsupported_database_url",
            StoreError::NotFound { .. } => "not_found",
            StoreError::Duplicate { .. } => "duplicate",
            StoreError::Dangling { .. } => "dangling_reference",
            StoreError::Invalid(PolicyError::BadSlug { .. }) => "bad_slug",
            StoreError::Invalid(PolicyError::DuplicateName { .. }) => "duplicate",
            StoreError::Invalid(PolicyError::DuplicateId { .. }) => "duplicate",
            StoreError::Invalid(PolicyError::Dangling { .. }) => "dangling_reference",
            StoreError::Invalid(PolicyError::NotFound { .. }) => "not_found",
            StoreError::Invalid(_) => "invalid_policy",
            StoreError::ScopeNotAllowed(_) => "scope_not_allowed",
            StoreError::NotPropagated { .. } => "not_propagated",
            StoreError::BadInput(_) => "bad_input",
            StoreError::Crypto(_) => "crypto_error",
            StoreError::Corrupt(_) => "corrupt_data",
            StoreError::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// True for errors caused by the request (4xx), false for the server's (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            StoreError::Database(_)
                | StoreError::Migrate(_)
                | StoreError::UnsupportedUrl(_)
                | StoreError::Crypto(_)
                | StoreError::Corrupt(_)
                | StoreError::AuditUnavailable(_)
                | StoreError::NotPropagated { .. }
        )
    }

    pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Maps constraint violations of one statement to input errors: a unique
/// violation means `kind name` exists; a foreign key violation means a
/// reference does not resolve.
pub(crate) fn constraint<'a>(
    kind: &'static str,
    name: &'a str,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |e| {
        if let sqlx::Error::Database(db) = &e {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return StoreError::Duplicate {
                        kind,
                        name: name.to_owned(),
                    }
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::Dangling {
                        kind: "reference",
                        id: format!("from {kind} {name:?}"),
                    }
                }
                _ => {}
            }
        }
        StoreError::Database(e)
    }
}
