//! The vault's one error enum.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
    /// An authorization server or the upstream's metadata could not be
    /// reached or read.
    #[error("authorization server unavailable: {0}")]
    Unavailable(String),
    /// Discovery found nothing usable (no protected resource metadata, no
    /// authorization server, no registration endpoint and no client id).
    #[error("upstream authorization not discoverable: {0}")]
    Discovery(String),
    /// The authorization server refused a grant (`error` is its OAuth
    /// error code; no token value is ever in it).
    #[error("authorization server refused the grant: {error}")]
    Refused { error: String },
    /// The server needs a person's own credentials and the caller is not
    /// a person (a service key without an end user).
    #[error("this server acts on a person's own account: call it as a person")]
    NoPerson,
    /// Token exchange needs the caller to have signed in with the
    /// configured identity provider.
    #[error("this server needs a sign-in with identity provider {0:?}")]
    NeedsSignIn(String),
    /// A consent link or callback that is unknown, used or expired.
    #[error("this consent link is unknown, already used or expired")]
    ConsentUnknown,
    /// The key presented for a key-bound consent link is not the one that
    /// asserted the person (`left` more tries; 0: the link is spent).
    #[error("this is not the key this consent link was issued for ({left} attempts left)")]
    ConsentKeyRefused { left: i64 },
    /// Someone other than the person a consent link was issued for signed
    /// in to open it (`left` more tries; 0: the link is spent).
    #[error("you signed in as someone other than the person this consent link was issued for ({left} attempts left)")]
    ConsentWrongPerson { left: i64 },
    /// The link is bound to a sign-in at this provider, which offers no
    /// browser sign-in (no `console_client_id`): it cannot be proven.
    #[error("this consent link needs a sign-in at identity provider {0:?}, which offers no browser sign-in (its console_client_id is not set)")]
    ConsentSignInUnavailable(String),
    /// The sign-in answer names no flow in progress (unknown, used or
    /// older than ten minutes).
    #[error("this sign-in has expired or was already used: open the consent link again")]
    ConsentSignInExpired,
    /// The sign-in answer came to another browser than the one that
    /// started it (no consent cookie, or another one).
    #[error("this sign-in was started in another browser: open the consent link again")]
    ConsentSignInNotBound,
    /// The identity provider did not sign the person in, or its answer was
    /// refused (the identity crate's reason code).
    #[error("the identity provider's sign-in failed ({0})")]
    ConsentSignInFailed(&'static str),
}

impl VaultError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Store(e) => e.code(),
            VaultError::Unavailable(_) => "upstream_auth_unavailable",
            VaultError::Discovery(_) => "upstream_auth_not_discoverable",
            VaultError::Refused { .. } => "upstream_auth_refused",
            VaultError::NoPerson => "upstream_auth_needs_person",
            VaultError::NeedsSignIn(_) => "upstream_auth_needs_sign_in",
            VaultError::ConsentUnknown => "consent_unknown",
            VaultError::ConsentKeyRefused { .. } => "consent_key_refused",
            VaultError::ConsentWrongPerson { .. } => "consent_wrong_person",
            VaultError::ConsentSignInUnavailable(_) => "consent_sign_in_unavailable",
            VaultError::ConsentSignInExpired => "consent_sign_in_expired",
            VaultError::ConsentSignInNotBound => "consent_sign_in_not_bound",
            VaultError::ConsentSignInFailed(_) => "consent_sign_in_failed",
        }
    }
}
