//! Secret header values at rest: ChaCha20-Poly1305 with a random nonce per
//! value, stored as base64(nonce || ciphertext). The header name is the
//! associated data, so a value cannot be moved to another header unnoticed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use crate::error::{Result, StoreError};
use crate::types::Secret;

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub(crate) struct SecretCipher {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(<key redacted>)")
    }
}

impl SecretCipher {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        SecretCipher {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    pub(crate) fn encrypt(&self, name: &str, value: &Secret) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(out))
    }

    pub(crate) fn decrypt(&self, name: &str, stored: &str) -> Result<Secret> {
        let bytes = STANDARD
            .decode(stored)
            .map_err(|e| StoreError::Corrupt(format!("secret header {name:?}: {e}")))?;
        if bytes.len() < NONCE_LEN {
            return Err(StoreError::Corrupt(format!(
                "secret header {name:?}: too short"
            )));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Crypto(format!(
                    "secret header {name:?} cannot be decrypted (wrong WARDEN_SECRET_KEY?)"
                ))
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| StoreError::Corrupt(format!("secret header {name:?} is not UTF-8")))
    }
}

/// Parses a base64 secret key (as in `WARDEN_SECRET_KEY`): exactly 32 bytes.
pub fn parse_secret_key(base64_key: &str) -> Result<[u8; 32]> {
    let bytes = STANDARD
        .decode(base64_key.trim())
        .map_err(|e| StoreError::BadInput(format!("secret key is not base64: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        StoreError::BadInput(format!("secret key must be 32 bytes, got {}", bytes.len()))
    })
}

/// A fresh random key, base64-encoded (for a key file created on first start).
pub fn generate_secret_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

/// Reads the base64 key in `path`, or creates the file (mode 0600) with a
/// fresh key if it does not exist (first start of an embedded install).
pub fn load_or_create_key_file(path: &std::path::Path) -> Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    match std::fs::read_to_string(path) {
        Ok(contents) => parse_secret_key(&contents),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_secret_key();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    StoreError::BadInput(format!("cannot create key file {path:?}: {e}"))
                })?;
            file.write_all(key.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    StoreError::BadInput(format!("cannot write key file {path:?}: {e}"))
                })?;
            parse_secret_key(&key)
        }
        Err(e) => Err(StoreError::BadInput(format!(
            "cannot read key file {path:?}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_header_name() {
        let cipher = SecretCipher::new(&[7; 32]);
        let stored = cipher
            .encrypt("Authorization", &Secret::new("Bearer s3cr3t"))
            .unwrap();
        assert!(!stored.contains("s3cr3t"));
        assert_eq!(
            cipher.decrypt("Authorization", &stored).unwrap().expose(),
            "Bearer s3cr3t"
        );
        assert!(cipher.decrypt("X-Other", &stored).is_err());
        assert!(SecretCipher::new(&[8; 32])
            .decrypt("Authorization", &stored)
            .is_err());
    }

    #[test]
    fn key_file_is_created_once_with_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = load_or_create_key_file(&path).unwrap();
        assert_eq!(load_or_create_key_file(&path).unwrap(), first);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn parses_keys() {
        let key = generate_secret_key();
        assert!(parse_secret_key(&key).is_ok());
        assert!(parse_secret_key("c2hvcnQ=").is_err());
        assert!(parse_secret_key("not base64!").is_err());
    }
}
