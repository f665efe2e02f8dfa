//! Consents in progress (migrations 0007 and 0008, docs/credentials.md):
//! the single-use link Warden hands a person when a call needs their
//! consent upstream, whom it is bound to, and — once the browser proved it
//! is that person and opened it — the OAuth `state` and PKCE verifier
//! until the authorization server calls back.
//!
//! Only digests of the link, the `state` and presented keys are stored;
//! the verifier is encrypted (associated data `consent:<id>`).

use warden_policy::{EndUserId, KeyId, OrgId, ServerId};

use crate::db::{self, RowExt};
use crate::error::Result;
use crate::store::Store;
use crate::types::Secret;

/// Wrong keys presented before a consent link is spent.
pub const MAX_CONSENT_ATTEMPTS: i64 = 5;

/// Whom and what a consent in progress is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentTarget {
    pub org: OrgId,
    pub end_user: EndUserId,
    pub server: ServerId,
}

/// How the person a consent is for was authenticated when the link was
/// issued, so the browser that opens it can be asked to prove the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentBinding {
    /// A service key asserted the end user: the browser must present that
    /// key.
    Key(KeyId),
    /// The person signed in through this identity provider (slug).
    SignIn(String),
}

/// A consent link as its page needs it (not yet opened, not expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConsent {
    pub target: ConsentTarget,
    pub binding: ConsentBinding,
    /// The right key was presented already.
    pub proven: bool,
    /// Wrong keys presented so far.
    pub attempts: i64,
}

/// The outcome of presenting a key for a consent link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The key is the one that asserted the person: the link may be opened.
    Proven,
    /// Another key (or a revoked or expired one); `left` more tries (0:
    /// this attempt spent the link).
    Refused { left: i64 },
    /// Unknown, expired, already opened, spent, or not key-bound.
    Unknown,
}

/// Constant-time equality of two digests.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Store {
    /// Starts a consent: remembers whom the single-use link (given by the
    /// SHA-256 digest of its token) is for and how that person is proven,
    /// until `expires_at_ms`.
    pub async fn create_consent(
        &self,
        target: ConsentTarget,
        binding: &ConsentBinding,
        link_digest: &str,
        expires_at_ms: i64,
    ) -> Result<()> {
        let now = db::now_ms();
        sqlx::query("DELETE FROM credential_consents WHERE expires_at_ms < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        let (key, provider) = match binding {
            ConsentBinding::Key(k) => (Some(k.0), None),
            ConsentBinding::SignIn(p) => (None, Some(p.clone())),
        };
        sqlx::query(
            "INSERT INTO credential_consents (link_digest, org_id, end_user_id, server_id, \
             expires_at_ms, bound_key_id, bound_provider) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(link_digest.to_owned())
        .bind(target.org.0)
        .bind(target.end_user.0)
        .bind(target.server.0)
        .bind(expires_at_ms)
        .bind(key)
        .bind(provider)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A consent link not yet opened nor expired, for its page.
    pub async fn pending_consent(&self, link_digest: &str) -> Result<Option<PendingConsent>> {
        let row = sqlx::query(
            "SELECT org_id, end_user_id, server_id, bound_key_id, bound_provider, attempts, \
             proven FROM credential_consents \
             WHERE link_digest = $1 AND state_digest IS NULL AND expires_at_ms >= $2",
        )
        .bind(link_digest.to_owned())
        .bind(db::now_ms())
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let binding = match (r.opt_int("bound_key_id")?, r.opt_text("bound_provider")?) {
            (Some(k), _) => ConsentBinding::Key(KeyId(k)),
            (None, Some(p)) => ConsentBinding::SignIn(p),
            // A consent from before migration 0008: nobody can prove it.
            (None, None) => return Ok(None),
        };
        Ok(Some(PendingConsent {
            target: ConsentTarget {
                org: OrgId(r.int("org_id")?),
                end_user: EndUserId(r.int("end_user_id")?),
                server: ServerId(r.int("server_id")?),
            },
            binding,
            proven: r.int("proven")? == 1,
            attempts: r.int("attempts")?,
        }))
    }

    /// The browser presented a key (its SHA-256 `key_digest`) for a
    /// key-bound consent link. It must be the key that asserted the person,
    /// still valid; compared in constant time. A wrong key counts an
    /// attempt; the [`MAX_CONSENT_ATTEMPTS`]th spends (deletes) the link.
    pub async fn prove_consent_key(&self, link_digest: &str, key_digest: &str) -> Result<KeyCheck> {
        let now = db::now_ms();
        let mut tx = db::begin_read_write(self.pool(), self.backend()).await?;
        let row = sqlx::query(
            "SELECT c.id, c.attempts, k.token_digest, k.revoked, k.expires_at_ms \
             FROM credential_consents c JOIN keys k ON k.id = c.bound_key_id \
             WHERE c.link_digest = $1 AND c.state_digest IS NULL AND c.expires_at_ms >= $2",
        )
        .bind(link_digest.to_owned())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(KeyCheck::Unknown);
        };
        let id = r.int("id")?;
        let valid = r.int("revoked")? == 0 && r.opt_int("expires_at_ms")?.is_none_or(|at| at > now);
        if valid && same_digest(&r.text("token_digest")?, key_digest) {
            sqlx::query("UPDATE credential_consents SET proven = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(KeyCheck::Proven);
        }
        let out = refuse_attempt(&mut tx, id, r.int("attempts")?).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The browser signed in at the identity provider a consent link is
    /// bound to, as `same_person` says (the one the link was issued for, or
    /// someone else). The same person proves the link; anyone else counts
    /// an attempt, the [`MAX_CONSENT_ATTEMPTS`]th spending the link (the
    /// attempts a key-bound link counts, for the same reason).
    pub async fn prove_consent_sign_in(
        &self,
        link_digest: &str,
        same_person: bool,
    ) -> Result<KeyCheck> {
        let mut tx = db::begin_read_write(self.pool(), self.backend()).await?;
        let row = sqlx::query(
            "SELECT id, attempts FROM credential_consents \
             WHERE link_digest = $1 AND state_digest IS NULL AND expires_at_ms >= $2 \
             AND bound_provider IS NOT NULL",
        )
        .bind(link_digest.to_owned())
        .bind(db::now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(KeyCheck::Unknown);
        };
        let id = r.int("id")?;
        let out = if same_person {
            sqlx::query("UPDATE credential_consents SET proven = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            KeyCheck::Proven
        } else {
            refuse_attempt(&mut tx, id, r.int("attempts")?).await?
        };
        tx.commit().await?;
        Ok(out)
    }

    /// The person opened the link: binds the OAuth `state` (digest) and
    /// PKCE verifier to it. Single use: a link already opened, expired,
    /// unknown, or not yet proven (right key, or sign-in as the person)
    /// gives `None`.
    pub async fn open_consent(
        &self,
        link_digest: &str,
        state_digest: &str,
        code_verifier: &Secret,
    ) -> Result<Option<ConsentTarget>> {
        let mut tx = db::begin_read_write(self.pool(), self.backend()).await?;
        let row = sqlx::query(
            "SELECT id, org_id, end_user_id, server_id FROM credential_consents \
             WHERE link_digest = $1 AND state_digest IS NULL AND expires_at_ms >= $2 \
             AND proven = 1",
        )
        .bind(link_digest.to_owned())
        .bind(db::now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id = r.int("id")?;
        let verifier = self
            .inner
            .cipher
            .encrypt(&format!("consent:{id}"), code_verifier)?;
        let done = sqlx::query(
            "UPDATE credential_consents SET state_digest = $1, code_verifier = $2 \
             WHERE id = $3 AND state_digest IS NULL",
        )
        .bind(state_digest.to_owned())
        .bind(verifier)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(ConsentTarget {
            org: OrgId(r.int("org_id")?),
            end_user: EndUserId(r.int("end_user_id")?),
            server: ServerId(r.int("server_id")?),
        }))
    }

    /// The authorization server called back with `state`: takes (deletes)
    /// the consent and returns whom it is for and the PKCE verifier.
    pub async fn take_consent(
        &self,
        state_digest: &str,
    ) -> Result<Option<(ConsentTarget, Secret)>> {
        // One statement: of two callbacks with the same state, one wins.
        let row = sqlx::query(
            "DELETE FROM credential_consents WHERE state_digest = $1 \
             RETURNING id, org_id, end_user_id, server_id, code_verifier, expires_at_ms",
        )
        .bind(state_digest.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id = r.int("id")?;
        if r.int("expires_at_ms")? < db::now_ms() {
            return Ok(None);
        }
        let Some(stored) = r.opt_text("code_verifier")? else {
            return Ok(None);
        };
        let verifier = self
            .inner
            .cipher
            .decrypt(&format!("consent:{id}"), &stored)?;
        Ok(Some((
            ConsentTarget {
                org: OrgId(r.int("org_id")?),
                end_user: EndUserId(r.int("end_user_id")?),
                server: ServerId(r.int("server_id")?),
            },
            verifier,
        )))
    }
}

/// One more failed proof of consent `id` (which had `attempts`): counted,
/// or the link spent (deleted) at the [`MAX_CONSENT_ATTEMPTS`]th.
async fn refuse_attempt(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    attempts: i64,
) -> Result<KeyCheck> {
    let attempts = attempts + 1;
    if attempts >= MAX_CONSENT_ATTEMPTS {
        sqlx::query("DELETE FROM credential_consents WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        return Ok(KeyCheck::Refused { left: 0 });
    }
    sqlx::query("UPDATE credential_consents SET attempts = $1 WHERE id = $2")
        .bind(attempts)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(KeyCheck::Refused {
        left: MAX_CONSENT_ATTEMPTS - attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::same_digest;

    #[test]
    fn digests_compare_whole() {
        assert!(same_digest("ab12", "ab12"));
        assert!(!same_digest("ab12", "ab13"));
        assert!(!same_digest("ab12", "ab1"));
        assert!(!same_digest("", "a"));
    }
}
