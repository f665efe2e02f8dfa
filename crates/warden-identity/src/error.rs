use thiserror::Error;

/// Why a bearer token does not establish an identity. Each variant has a
/// stable reason code ([`IdentityError::code`]); messages never echo the
/// token or unbounded claim values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("signing algorithm {0} is not accepted for this key")]
    AlgNotAllowed(String),
    #[error("the token's issuer is not a registered identity provider")]
    IssuerUnknown,
    #[error("the token is signed with a key the provider does not publish")]
    KeyUnknown,
    #[error("the token's signature does not verify")]
    SignatureInvalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued for this resource")]
    AudienceInvalid,
    #[error("the token lacks the {0} claim")]
    ClaimMissing(String),
    #[error("the token lacks a required scope")]
    InsufficientScope { required: Vec<String> },
    #[error("the token does not name an organization this provider speaks for")]
    OrgNotBound,
    #[error("the token's group maps to a team of another organization")]
    TeamOfAnotherOrg,
    #[error("the identity provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("bad identity provider configuration: {0}")]
    Config(String),
}

impl IdentityError {
    /// The stable reason code (logs, metrics, `data.reason`, the
    /// `error_description` of a `WWW-Authenticate` challenge).
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Malformed => "token_malformed",
            IdentityError::TooLarge { .. } => "token_too_large",
            IdentityError::AlgNotAllowed(_) => "token_alg_not_allowed",
            IdentityError::IssuerUnknown => "token_issuer_unknown",
            IdentityError::KeyUnknown => "token_key_unknown",
            IdentityError::SignatureInvalid => "token_signature_invalid",
            IdentityError::Expired => "token_expired",
            IdentityError::NotYetValid => "token_not_yet_valid",
            IdentityError::AudienceInvalid => "token_audience_invalid",
            IdentityError::ClaimMissing(_) => "token_claim_missing",
            IdentityError::InsufficientScope { .. } => "insufficient_scope",
            IdentityError::OrgNotBound => "token_org_not_bound",
            IdentityError::TeamOfAnotherOrg => "token_team_other_org",
            IdentityError::ProviderUnavailable(_) => "idp_unavailable",
            IdentityError::Config(_) => "idp_config_invalid",
        }
    }

    /// The OAuth error of the `WWW-Authenticate` challenge (RFC 6750 §3.1):
    /// `insufficient_scope` (403) for step-up, `invalid_token` (401) for
    /// every other refusal of a token; `None` when the token was not at
    /// fault (the provider is unreachable).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            IdentityError::InsufficientScope { .. } => Some("insufficient_scope"),
            IdentityError::ProviderUnavailable(_) | IdentityError::Config(_) => None,
            _ => Some("invalid_token"),
        }
    }
}
