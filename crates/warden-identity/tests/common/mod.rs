//! A local identity provider for tests: a JWKS served by a tiny axum
//! server on loopback (with a counter of fetches and a switchable key
//! set for rotation), and token minting with the fixture RSA keys.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const KEY_A: &str = include_str!("../keys/rsa_a.pem");
pub const KEY_A_PUB: &str = include_str!("../keys/rsa_a.pub.pem");
pub const KEY_B: &str = include_str!("../keys/rsa_b.pem");
pub const JWK_A: &str = include_str!("../keys/rsa_a.jwk.json");
pub const JWK_B: &str = include_str!("../keys/rsa_b.jwk.json");

pub struct Idp {
    pub issuer: String,
    pub fetches: Arc<AtomicUsize>,
    /// The JWKS served right now.
    pub keys: Arc<Mutex<Vec<Value>>>,
}

pub fn jwk(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// Starts an IdP on loopback serving discovery and `keys`.
pub async fn idp(keys: Vec<Value>) -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    let fetches = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(Mutex::new(keys));
    let (f, k, iss) = (fetches.clone(), keys.clone(), issuer.clone());
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss.clone();
                async move { Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let (f, k) = (f.clone(), k.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let keys = k.lock().unwrap().clone();
                    Json(json!({ "keys": keys }))
                }
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Idp {
        issuer,
        fetches,
        keys,
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims valid for an hour for `aud`, user `sub`.
pub fn claims(iss: &str, aud: &str, sub: &str) -> Value {
    json!({
        "iss": iss,
        "aud": aud,
        "sub": sub,
        "iat": now(),
        "exp": now() + 3600,
        "scope": "openid mcp",
        "client_id": "ide",
    })
}

pub fn sign_rs256(pem: &str, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}
