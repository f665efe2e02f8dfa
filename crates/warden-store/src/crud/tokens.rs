//! Bearer tokens of keys and admin tokens: how they are made, found and shown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::types::Secret;

/// Token prefix of gateway keys.
pub const KEY_TOKEN_PREFIX: &str = "wdn_";
/// Token prefix of admin API tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "wdna_";
/// How many leading characters of a token are kept for display.
const SHOWN_PREFIX_LEN: usize = 12;

/// Hex SHA-256 of a bearer token: how keys and admin tokens are found.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(super) fn new_token(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub(crate) fn shown_prefix(token: &str) -> String {
    token.chars().take(SHOWN_PREFIX_LEN).collect()
}
