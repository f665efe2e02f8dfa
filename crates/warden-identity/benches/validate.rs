//! The per-request cost of a bearer token once validated: the SHA-256
//! digest of the token and one cache lookup.

use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use warden_identity::{Identities, IdentitiesOptions, OrgBinding, ProviderConfig};

const KEY_A: &str = include_str!("../tests/keys/rsa_a.pem");
const JWK_A: &str = include_str!("../tests/keys/rsa_a.jwk.json");

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwk: serde_json::Value = serde_json::from_str(JWK_A).unwrap();
    let (issuer, ids) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwk = jwk.clone();
                async move { axum::Json(json!({ "keys": [jwk] })) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let ids = Identities::new(
            vec![ProviderConfig {
                slug: "idp".into(),
                issuer: issuer.clone(),
                jwks_uri: Some(format!("{issuer}/jwks")),
                audiences: vec![],
                user_claim: "sub".into(),
                groups_claim: Some("groups".into()),
                group_teams: vec![],
                client_agents: vec![],
                required_scopes: vec![],
                orgs: OrgBinding::Org { org: "acme".into() },
                admin_groups: Default::default(),
                console_client_id: None,
            }],
            IdentitiesOptions::default(),
        )
        .unwrap();
        (issuer, ids)
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": issuer, "aud": "https://warden.example/mcp", "sub": "alice@example.com",
        "exp": now + 3600, "iat": now, "scope": "openid mcp", "client_id": "ide",
        "groups": ["staff", "eng", "oncall"], "jti": "0123456789abcdef0123456789abcdef",
    });
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("key-a".into());
    let token = jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(KEY_A.as_bytes()).unwrap(),
    )
    .unwrap();
    rt.block_on(ids.validate(&token)).unwrap();
    c.bench_function("validate_cached_token", |b| {
        b.iter(|| {
            rt.block_on(ids.validate(std::hint::black_box(&token)))
                .unwrap()
        })
    });
    // For comparison: the first validation of a token (RSA signature).
    let mut n = 0u64;
    c.bench_function("validate_uncached_token", |b| {
        b.iter(|| {
            n += 1;
            let mut cl = claims.clone();
            cl["jti"] = json!(n);
            let t = jsonwebtoken::encode(
                &h,
                &cl,
                &EncodingKey::from_rsa_pem(KEY_A.as_bytes()).unwrap(),
            )
            .unwrap();
            rt.block_on(ids.validate(&t)).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
