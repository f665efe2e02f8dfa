//! The front door as an OAuth resource server: identity-provider tokens
//! against a JWKS served on loopback, protected resource metadata, the
//! challenges, just-in-time people, session end at token expiry, and the
//! token never reaching the upstream.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::fixture::{self, Mode};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use warden_gateway::{BoxFuture, GatewayConfig, GatewayError, IdentitySource, Provision};
use warden_identity::{GroupTeam, OrgBinding, ProviderConfig};
use warden_policy::*;
use warden_store::LivePolicy;

const KEY_PEM: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pem");
const KEY_PUB: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pub.pem");
const OTHER_PEM: &str = include_str!("../../warden-identity/tests/keys/rsa_b.pem");
const JWK: &str = include_str!("../../warden-identity/tests/keys/rsa_a.jwk.json");
const PUBLIC: &str = "https://warden.test";

/// The store's part, played by the test: provisioning appends rows and
/// installs the next revision.
struct TestIdentity {
    provider: ProviderConfig,
    rows: Mutex<PolicyRows>,
    live: Mutex<Option<Arc<LivePolicy>>>,
    provisions: Mutex<Vec<Provision>>,
}

impl IdentitySource for TestIdentity {
    fn load_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderConfig>, GatewayError>> {
        let p = self.provider.clone();
        Box::pin(async move { Ok(vec![p]) })
    }

    fn provision(&self, req: Provision) -> BoxFuture<'_, Result<u64, GatewayError>> {
        Box::pin(async move {
            let mut rows = self.rows.lock().unwrap();
            if !rows.keys.iter().any(|k| k.token_digest == req.key_digest) {
                let id = KeyId(1000 + rows.keys.len() as i64);
                rows.keys.push(KeyRow {
                    id,
                    org: req.org,
                    token_digest: req.key_digest.clone(),
                    team: req.team,
                    agent: None,
                    scope: Scope::Inherit,
                    revoked: false,
                    expires_at_ms: None,
                    may_assert_end_user: true,
                    may_assert_agent: true,
                });
            }
            if !rows
                .end_users
                .iter()
                .any(|u| u.org == req.org && u.external_id == req.end_user)
            {
                let id = EndUserId(2000 + rows.end_users.len() as i64);
                rows.end_users.push(EndUserRow {
                    id,
                    org: req.org,
                    external_id: req.end_user.clone(),
                    scope: Scope::Inherit,
                    disabled: false,
                });
            }
            rows.revision += 1;
            let revision = rows.revision;
            let live = self.live.lock().unwrap().clone().unwrap();
            assert!(live.install(Snapshot::build(rows.clone()).unwrap()));
            self.provisions.lock().unwrap().push(req);
            Ok(revision)
        })
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Setup {
    h: Harness,
    issuer: String,
    source: Arc<TestIdentity>,
    upstream: fixture::Fixture,
}

async fn setup() -> Setup {
    // The identity provider's keys, on loopback.
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

    let upstream = fixture::start(Mode::Normal, &["echo", "add"]).await;
    let mut rows = rows(1, &["alpha"]);
    rows.teams.push(TeamRow {
        id: TeamId(10),
        org: OrgId(1),
        slug: "eng".into(),
        scope: only(1, &["echo"]),
    });
    let source = Arc::new(TestIdentity {
        provider: ProviderConfig {
            slug: "corp".into(),
            issuer: issuer.clone(),
            jwks_uri: None,
            audiences: vec![],
            user_claim: "sub".into(),
            groups_claim: Some("groups".into()),
            group_teams: vec![GroupTeam {
                group: "engineering".into(),
                org: "acme".into(),
                team: "eng".into(),
            }],
            client_agents: vec![],
            required_scopes: vec!["mcp".into()],
            orgs: OrgBinding::Org { org: "acme".into() },
            admin_groups: Default::default(),
            console_client_id: None,
        },
        rows: Mutex::new(rows.clone()),
        live: Mutex::new(None),
        provisions: Mutex::new(vec![]),
    });
    let live = LivePolicy::new(Snapshot::build(rows).unwrap());
    *source.live.lock().unwrap() = Some(live.clone());
    let config = GatewayConfig {
        public_url: PUBLIC.into(),
        ..GatewayConfig::default()
    };
    let h = start_with(
        live,
        vec![http_upstream(1, "alpha", &upstream.url(), 5_000)],
        config,
    )
    .await;
    h.gateway.enable_identity(source.clone()).await;
    Setup {
        h,
        issuer,
        source,
        upstream,
    }
}

fn claims(iss: &str, sub: &str, groups: &[&str]) -> Value {
    json!({
        "iss": iss, "sub": sub, "aud": format!("{PUBLIC}/mcp"),
        "iat": now(), "exp": now() + 600, "scope": "openid mcp",
        "client_id": "ide", "groups": groups,
    })
}

fn sign(pem: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("key-a".into());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn list_tools(h: &Harness, token: &str) -> Vec<String> {
    let sid = h.initialize("/mcp", token).await;
    h.list_tool_names("/mcp", token, &sid).await
}

fn challenge(resp: &reqwest::Response) -> String {
    resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn refusal(h: &Harness, path: &str, token: &str) -> (u16, String, Value) {
    let resp = h
        .post_raw(
            path,
            Some(token),
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    let status = resp.status().as_u16();
    let c = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap();
    (status, c, body)
}

#[tokio::test]
async fn protected_resource_metadata_for_every_endpoint() {
    let s = setup().await;
    for (path, resource) in [
        ("", "/mcp"),
        ("/mcp", "/mcp"),
        ("/mcp/servers/alpha", "/mcp/servers/alpha"),
        ("/mcp/toolsets/kit", "/mcp/toolsets/kit"),
    ] {
        let resp =
            s.h.http
                .get(s.h.url(&format!("/.well-known/oauth-protected-resource{path}")))
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        let m: Value = resp.json().await.unwrap();
        assert_eq!(m["resource"], format!("{PUBLIC}{resource}"));
        assert_eq!(m["authorization_servers"], json!([s.issuer]));
        assert_eq!(m["scopes_supported"], json!(["mcp"]));
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    }
    // No bearer: 401 pointing at this endpoint's metadata, with the scope.
    let resp =
        s.h.post_raw(
            "/mcp/servers/alpha",
            None,
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(resp.status(), 401);
    let c = challenge(&resp);
    assert!(
        c.contains(&format!(
            "resource_metadata=\"{PUBLIC}/.well-known/oauth-protected-resource/mcp/servers/alpha\""
        )),
        "{c}"
    );
    assert!(c.contains("scope=\"mcp\""), "{c}");
}

#[tokio::test]
async fn people_sign_in_jit_with_their_team_and_the_token_never_goes_upstream() {
    let s = setup().await;
    let alice = sign(KEY_PEM, &claims(&s.issuer, "alice", &["engineering"]));
    let bob = sign(KEY_PEM, &claims(&s.issuer, "bob", &["sales"]));
    // Alice's group maps to team eng (echo only); Bob has no team level.
    let mut a = list_tools(&s.h, &alice).await;
    a.sort();
    assert_eq!(a, vec!["alpha__echo"]);
    let mut b = list_tools(&s.h, &bob).await;
    b.sort();
    assert_eq!(b, vec!["alpha__add", "alpha__echo"]);
    // Both were provisioned once each: end users and sign-in keys exist.
    let snap = s.h.live.snapshot();
    let acme = OrgId(1);
    assert!(snap.end_user_by_external_id(acme, "alice").is_some());
    assert!(snap.end_user_by_external_id(acme, "bob").is_some());
    assert_eq!(s.source.provisions.lock().unwrap().len(), 2);
    let again = list_tools(&s.h, &alice).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        s.source.provisions.lock().unwrap().len(),
        2,
        "no second provisioning"
    );

    // A call: the upstream sees Warden's headers, never the token.
    let sid = s.h.initialize("/mcp", &bob).await;
    let r =
        s.h.rpc(
            "/mcp",
            &bob,
            &sid,
            5,
            "tools/call",
            json!({"name": "alpha__echo", "arguments": {"x": 1}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    let seen = s.upstream.state.recorded.lock().unwrap().clone();
    assert!(!seen.is_empty());
    for (headers, _) in &seen {
        assert!(headers.get("authorization").is_none());
        for (_, v) in headers {
            let v = v.to_str().unwrap_or("");
            assert!(!v.contains(&bob) && !v.contains(&alice));
        }
    }
    // Alice is refused what her team does not grant.
    let sid = s.h.initialize("/mcp", &alice).await;
    let r =
        s.h.rpc(
            "/mcp",
            &alice,
            &sid,
            6,
            "tools/call",
            json!({"name": "alpha__add", "arguments": {}}),
        )
        .await;
    assert!(r.get("error").is_some(), "{r}");
}

#[tokio::test]
async fn every_bad_token_is_refused_with_a_challenge() {
    let s = setup().await;
    let iss = s.issuer.clone();
    let good = claims(&iss, "alice", &[]);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let mut tampered: Vec<String> = sign(KEY_PEM, &good).split('.').map(str::to_owned).collect();
    tampered[1] = URL_SAFE_NO_PAD.encode(with("sub", json!("root")).to_string());
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"key-a"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("key-a".into());
    let hs256 =
        jsonwebtoken::encode(&hs, &good, &EncodingKey::from_secret(KEY_PUB.as_bytes())).unwrap();
    let mut unknown_kid = Header::new(Algorithm::RS256);
    unknown_kid.kid = Some("rotated-away".into());
    let unknown_kid = jsonwebtoken::encode(
        &unknown_kid,
        &good,
        &EncodingKey::from_rsa_pem(OTHER_PEM.as_bytes()).unwrap(),
    )
    .unwrap();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "expired",
            sign(KEY_PEM, &with("exp", json!(now() - 300))),
            401,
            "token_expired",
        ),
        (
            "nbf",
            sign(KEY_PEM, &with("nbf", json!(now() + 600))),
            401,
            "token_not_yet_valid",
        ),
        (
            "wrong iss",
            sign(KEY_PEM, &with("iss", json!("https://evil.example"))),
            401,
            "token_issuer_unknown",
        ),
        (
            "wrong aud",
            sign(KEY_PEM, &with("aud", json!("https://other.example/mcp"))),
            401,
            "token_audience_invalid",
        ),
        ("alg none", none, 401, "token_alg_not_allowed"),
        (
            "hs256 with the public key",
            hs256,
            401,
            "token_alg_not_allowed",
        ),
        ("unknown kid", unknown_kid, 401, "token_key_unknown"),
        (
            "tampered",
            tampered.join("."),
            401,
            "token_signature_invalid",
        ),
        (
            "other key, same kid",
            sign(OTHER_PEM, &good),
            401,
            "token_signature_invalid",
        ),
        (
            "no scope",
            sign(KEY_PEM, &with("scope", json!("openid"))),
            403,
            "insufficient_scope",
        ),
    ];
    for (what, token, status, reason) in cases {
        let (got, c, body) = refusal(&s.h, "/mcp", &token).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["data"]["reason"], reason, "{what}");
        let error = if status == 403 {
            "insufficient_scope"
        } else {
            "invalid_token"
        };
        assert!(c.contains(&format!("error=\"{error}\"")), "{what}: {c}");
        assert!(
            c.contains(&format!(
                "resource_metadata=\"{PUBLIC}/.well-known/oauth-protected-resource/mcp\""
            )),
            "{what}: {c}"
        );
    }
    // A token for one server's resource does not open another endpoint.
    let narrow = sign(
        KEY_PEM,
        &with("aud", json!(format!("{PUBLIC}/mcp/servers/alpha"))),
    );
    let (got, _, body) = refusal(&s.h, "/mcp", &narrow).await;
    assert_eq!(
        (got, body["error"]["data"]["reason"].clone()),
        (401, json!("token_audience_invalid"))
    );
    // ... but opens the endpoint it was issued for.
    s.h.initialize("/mcp/servers/alpha", &narrow).await;
    // A person cannot assert another identity with their token.
    let t = sign(KEY_PEM, &good);
    let resp =
        s.h.post_raw(
            "/mcp",
            Some(&t),
            None,
            &[("x-warden-end-user", "bob")],
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert!(s.source.provisions.lock().unwrap().len() <= 1);
}

#[tokio::test]
async fn token_expiry_ends_the_session() {
    let s = setup().await;
    let mut c = claims(&s.issuer, "carol", &[]);
    c["exp"] = json!(now() + 2);
    let t = sign(KEY_PEM, &c);
    let sid = s.h.initialize("/mcp", &t).await;
    assert_eq!(s.h.gateway.live_sessions(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while s.h.gateway.live_sessions() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session outlived its token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A fresh token for the same person: the old session is gone.
    let fresh = sign(KEY_PEM, &claims(&s.issuer, "carol", &[]));
    let resp =
        s.h.post_raw(
            "/mcp",
            Some(&fresh),
            Some(&sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn revoking_the_sign_in_key_cuts_the_person_off_live() {
    let s = setup().await;
    let t = sign(KEY_PEM, &claims(&s.issuer, "dave", &[]));
    let _sid = s.h.initialize("/mcp", &t).await;
    assert_eq!(s.h.gateway.live_sessions(), 1);
    let mut rows = s.source.rows.lock().unwrap().clone();
    let digest = warden_gateway::sign_in_digest("corp", OrgId(1), None);
    rows.keys
        .iter_mut()
        .filter(|k| k.token_digest == digest)
        .for_each(|k| k.revoked = true);
    rows.revision += 1;
    s.h.install(rows);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.h.gateway.live_sessions() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session outlived the revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = s
        .h
        .post_raw("/mcp", Some(&t), None, &[], &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "key_revoked");
}

#[tokio::test]
async fn without_providers_tokens_are_unknown_keys_and_there_is_no_metadata() {
    let upstream = fixture::start(Mode::Normal, &["echo"]).await;
    let h = start(
        rows(1, &["alpha"]),
        vec![http_upstream(1, "alpha", &upstream.url(), 5_000)],
    )
    .await;
    let resp = h
        .http
        .get(h.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (got, c, _) = refusal(&h, "/mcp", "aaa.bbb.ccc").await;
    assert_eq!(got, 401);
    assert!(!c.contains("resource_metadata"), "{c}");
}

#[tokio::test]
async fn disabling_one_person_cuts_only_that_person_live_session_included() {
    let s = setup().await;
    let alice = sign(KEY_PEM, &claims(&s.issuer, "alice", &[]));
    let bob = sign(KEY_PEM, &claims(&s.issuer, "bob", &[]));
    let alice_sid = s.h.initialize("/mcp", &alice).await;
    let bob_sid = s.h.initialize("/mcp", &bob).await;
    assert_eq!(s.h.gateway.live_sessions(), 2);
    // Both share the provider's sign-in key: only the end user differs.
    let mut rows = s.source.rows.lock().unwrap().clone();
    rows.end_users
        .iter_mut()
        .filter(|u| u.external_id == "alice")
        .for_each(|u| u.disabled = true);
    rows.revision += 1;
    s.h.install(rows);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.h.gateway.live_sessions() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's session outlived her"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Bob's session goes on.
    let tools = s.h.list_tool_names("/mcp", &bob, &bob_sid).await;
    assert!(!tools.is_empty());
    // Alice: her session is gone, and a new one is refused with the reason.
    let resp =
        s.h.post_raw(
            "/mcp",
            Some(&alice),
            Some(&alice_sid),
            &[],
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["data"]["reason"], "end_user_disabled");
}
