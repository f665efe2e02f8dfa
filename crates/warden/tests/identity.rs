//! The real binary as an OAuth resource server: a platform admin registers
//! an identity provider (a JWKS served by the test on loopback) through the
//! admin API; a person's token then lists and calls tools, the challenge
//! and the protected resource metadata point clients at the provider, and
//! deleting the provider refuses its tokens.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{echo_until_ready, mcp, start_demo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const KEY_PEM: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pem");
const JWK: &str = include_str!("../../warden-identity/tests/keys/rsa_a.jwk.json");

async fn jwks_server() -> String {
    let jwk: Value = serde_json::from_str(JWK).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let iss = issuer.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let iss = iss.clone();
                async move { axum::Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let jwk = jwk.clone();
                async move { axum::Json(json!({ "keys": [jwk] })) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn token(issuer: &str, aud: &str, sub: &str) -> String {
    token_with_groups(issuer, aud, sub, &[])
}

fn token_with_groups(issuer: &str, aud: &str, sub: &str, groups: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("key-a".into());
    let claims = json!({"iss": issuer, "aud": aud, "sub": sub, "exp": now + 600,
                        "iat": now, "scope": "openid mcp", "client_id": "ide",
                        "groups": groups});
    jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The gateway's metadata for `/mcp`, once it serves it (at most 5 s).
async fn provider_metadata(http: &reqwest::Client, base: &str) -> Value {
    for _ in 0..100 {
        let resp = http
            .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            return resp.json().await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no protected resource metadata after the provider was registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_provider_signs_people_in() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(&dir, &[]);
    let admin = w.admin_token.clone().unwrap();
    let http = reqwest::Client::new();
    echo_until_ready(&http, &w.base, w.demo_key.as_deref().unwrap()).await;
    let issuer = jwks_server().await;

    // Before any provider: no metadata, and a JWT is just an unknown key.
    let resp = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            w.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // A platform admin registers a provider; bad configuration is refused.
    let body = json!({
        "slug": "corp", "issuer": issuer, "orgs": {"kind": "org", "org": "demo"},
        "required_scopes": ["mcp"],
    });
    let resp = http
        .post(format!("{}/admin/v1/identity-providers", w.base))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let resp = http
        .post(format!("{}/admin/v1/identity-providers", w.base))
        .bearer_auth(&admin)
        .json(&json!({"slug": "x", "issuer": "ftp://nope", "orgs": {"kind": "org", "org": "demo"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    // The metadata names the provider (the gateway reloads providers at
    // the new revision, right after the write); the challenge names it.
    let prm = provider_metadata(&http, &w.base).await;
    assert_eq!(prm["resource"], format!("{}/mcp", w.base));
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    let resp = http
        .post(format!("{}/mcp", w.base))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let c = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        c.contains(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            w.base
        )),
        "{c}"
    );

    // A person's token lists and calls, as a just-in-time end user.
    let t = token(&issuer, &format!("{}/mcp", w.base), "alice@demo.example");
    let call = mcp(
        &http,
        &w.base,
        &t,
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
               "params":{"name":"demo__echo","arguments":{"text":"hi from alice"}}}),
    )
    .await;
    assert!(
        call["result"].to_string().contains("hi from alice"),
        "{call}"
    );
    let users: Value = http
        .get(format!("{}/admin/v1/orgs/demo/end-users", w.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(users.to_string().contains("alice@demo.example"), "{users}");

    // A token for another resource is refused.
    let other = token(
        &issuer,
        "https://elsewhere.example/mcp",
        "alice@demo.example",
    );
    let refused = mcp(
        &http,
        &w.base,
        &other,
        json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
    )
    .await;
    assert_eq!(
        refused["error"]["data"]["reason"], "token_audience_invalid",
        "{refused}"
    );

    // Deleting the provider refuses its tokens.
    let resp = http
        .delete(format!("{}/admin/v1/identity-providers/corp", w.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut last = Value::Null;
    for _ in 0..50 {
        last = mcp(
            &http,
            &w.base,
            &t,
            json!({"jsonrpc":"2.0","id":4,"method":"tools/list"}),
        )
        .await;
        if last["error"]["data"]["reason"] == "key_unknown" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("token still accepted after the provider was deleted: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_sign_in_with_the_provider_too() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_demo(&dir, &[]);
    let admin = w.admin_token.clone().unwrap();
    let http = reqwest::Client::new();
    let issuer = jwks_server().await;
    let resp = http
        .post(format!("{}/admin/v1/identity-providers", w.base))
        .bearer_auth(&admin)
        .json(&json!({
            "slug": "corp", "issuer": issuer, "orgs": {"kind": "org", "org": "demo"},
            "groups_claim": "groups",
            "admin_groups": {"platform_admin": "warden-admins", "org_admin": "demo-admins"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    provider_metadata(&http, &w.base).await;
    let aud = format!("{}/admin/v1", w.base);
    let get = |path: &str, bearer: &str| {
        http.get(format!("{}{path}", w.base))
            .bearer_auth(bearer.to_owned())
            .send()
    };

    // A platform admin by group.
    let root = token_with_groups(&issuer, &aud, "root@demo.example", &["warden-admins"]);
    assert_eq!(
        get("/admin/v1/identity-providers", &root)
            .await
            .unwrap()
            .status(),
        200
    );
    let who: Value = get("/admin/v1/whoami", &root)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(who.to_string().contains("root@demo.example"), "{who}");

    // An org admin by group: their org, not the platform's pages.
    let ops = token_with_groups(&issuer, &aud, "ops@demo.example", &["demo-admins"]);
    assert_eq!(
        get("/admin/v1/orgs/demo/end-users", &ops)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get("/admin/v1/identity-providers", &ops)
            .await
            .unwrap()
            .status(),
        403
    );
    let resp = http
        .post(format!("{}/admin/v1/orgs/demo/teams", w.base))
        .bearer_auth(&ops)
        .json(&json!({"slug": "support"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let audit: Value = get("/admin/v1/audit?kind=admin_change", &admin)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("idp:corp:ops@demo.example"),
        "{audit}"
    );

    // Nobody else: no admin group, a token for the MCP resource, garbage.
    let person = token_with_groups(&issuer, &aud, "pat@demo.example", &["staff"]);
    assert_eq!(
        get("/admin/v1/orgs/demo/end-users", &person)
            .await
            .unwrap()
            .status(),
        401
    );
    let mcp_token = token_with_groups(
        &issuer,
        &format!("{}/mcp", w.base),
        "root@demo.example",
        &["warden-admins"],
    );
    assert_eq!(
        get("/admin/v1/identity-providers", &mcp_token)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        get("/admin/v1/identity-providers", "a.b.c")
            .await
            .unwrap()
            .status(),
        401
    );
    // The admin token still works.
    assert_eq!(
        get("/admin/v1/identity-providers", &admin)
            .await
            .unwrap()
            .status(),
        200
    );
}
