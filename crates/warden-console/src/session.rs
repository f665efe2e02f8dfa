//! Console sessions: an admin signs in once, with an admin token or at the
//! organization's identity provider (see `pages::oidc`); the server
//! keeps the session in memory (per process: a restart signs everyone out,
//! and each replica has its own sessions) under a random id that only the
//! `HttpOnly`, `SameSite=Strict` cookie carries. The token never goes back
//! to the browser, into a URL or into local storage.
//!
//! Every request re-resolves the session's identity with the same
//! `AdminState::authenticate` the REST API uses, so a revoked token ends its
//! console sessions at once (an identity-provider session is mapped again
//! with `warden_admin::idp_auth::admin_from_identity`, the admin API's rule). Sessions end after [`ConsoleConfig::idle_timeout`]
//! without a request and [`ConsoleConfig::absolute_timeout`] after sign-in.
//!
//! Each session has its own CSRF token, required (as the form field `csrf`
//! or the `X-CSRF-Token` header) by every state-changing request.
//!
//! [`ConsoleConfig::idle_timeout`]: crate::ConsoleConfig::idle_timeout
//! [`ConsoleConfig::absolute_timeout`]: crate::ConsoleConfig::absolute_timeout

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use rand::RngCore;
use warden_admin::auth::Admin;
use warden_identity::Identity;
use warden_store::Secret;

use crate::error::ConsoleError;
use crate::ConsoleState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "warden_console";
/// Most sessions held at once; signing in past it ends the oldest.
pub const SESSION_CAP: usize = 10_000;

/// How a session proves who it is on each request.
enum Credential {
    /// Signed in with an admin token: re-authenticated on every request.
    AdminToken(Secret),
    /// Signed in at an identity provider (`pages::oidc`): the verified ID
    /// token's identity. On every request the provider must still be
    /// registered, enabled and offering console sign-in at the same
    /// issuer, and the identity is mapped to an admin again.
    Idp {
        issuer: String,
        identity: Box<Identity>,
    },
}

/// A live session's credential, handed to the extractor.
enum Resumed {
    Token(String),
    Idp {
        issuer: String,
        identity: Box<Identity>,
    },
}

struct Entry {
    credential: Credential,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Compares without stopping at the first difference.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for an admin token already authenticated; returns its id.
    pub fn create(&self, token: &str) -> String {
        self.insert(Credential::AdminToken(Secret::new(token)))
    }

    /// A new session for a person whose ID token from `issuer` verified
    /// and who maps to an admin; returns its id.
    pub fn create_idp(&self, issuer: &str, identity: Identity) -> String {
        self.insert(Credential::Idp {
            issuer: issuer.to_owned(),
            identity: Box::new(identity),
        })
    }

    fn insert(&self, credential: Credential) -> String {
        let id = random_hex(32);
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= SESSION_CAP {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Entry {
                credential,
                csrf: random_hex(32),
                created: now,
                last_seen: now,
            },
        );
        id
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The session's credential and CSRF token, if it is live (touching it).
    fn resume(&self, id: &str, state: &ConsoleState) -> Option<(Resumed, String)> {
        let mut map = self.lock();
        let now = Instant::now();
        let expired = {
            let e = map.get(id)?;
            now.duration_since(e.last_seen) > state.config.idle_timeout
                || now.duration_since(e.created) > state.config.absolute_timeout
        };
        if expired {
            map.remove(id);
            return None;
        }
        let e = map.get_mut(id)?;
        e.last_seen = now;
        let resumed = match &e.credential {
            Credential::AdminToken(token) => Resumed::Token(token.expose().to_owned()),
            Credential::Idp { issuer, identity } => Resumed::Idp {
                issuer: issuer.clone(),
                identity: identity.clone(),
            },
        };
        Some((resumed, e.csrf.clone()))
    }
}

/// The session id from the request's cookies.
pub fn session_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A signed-in console user: the same [`Admin`] the REST API would see for
/// the session's token, and the session's CSRF token.
pub struct Console {
    pub admin: Admin,
    pub csrf: String,
}

impl Console {
    /// Refuses a state-changing request whose CSRF token is not the
    /// session's.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ConsoleError> {
        match presented {
            Some(t) if same(t, &self.csrf) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }
}

impl FromRequestParts<ConsoleState> for Console {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let id = session_id(parts).ok_or(ConsoleError::SignInRequired)?;
        let (resumed, csrf) = state
            .sessions
            .resume(&id, state)
            .ok_or(ConsoleError::SignInRequired)?;
        let admin = match resumed {
            Resumed::Token(token) => state.admin.authenticate(&token).await,
            Resumed::Idp { issuer, identity } => {
                let offered =
                    warden_admin::idp_auth::identities(&state.admin).is_some_and(|(ids, _)| {
                        ids.console_provider(&identity.provider)
                            .is_some_and(|p| p.issuer == issuer)
                    });
                if offered {
                    warden_admin::idp_auth::admin_from_identity(&state.admin, &identity)
                } else {
                    Err(warden_admin::AdminError::Unauthorized)
                }
            }
        };
        match admin {
            Ok(admin) => Ok(Console { admin, csrf }),
            Err(warden_admin::AdminError::Unauthorized) => {
                // The token was revoked or replaced, or the provider no
                // longer offers sign-in (or the org is gone): the session ends.
                state.sessions.remove(&id);
                Err(ConsoleError::SignInRequired)
            }
            Err(e) => Err(e.into()),
        }
    }
}
