//! A consent link issued to a person signed in through an identity
//! provider opens only once the browser signed in there as that person
//! (docs/credentials.md, "Who may open a consent link").
//!
//! Real store (SQLite), the vault's real consent routes on a loopback
//! listener, the real `Identities` registry, a real HTTP client playing the
//! browser by hand (no redirects followed, cookies carried explicitly). The
//! identity provider is a loopback stand-in: discovery, JWKS and a token
//! endpoint answering the ID token the test mints with `warden-identity`'s
//! fixture RSA keys (the e2e test `e2e/tests/test_credentials.py` signs in
//! at the real oidc-provider). The upstream's authorization server serves
//! only its RFC 8414 metadata (`common`): the test stops at the redirect to
//! it.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use warden_identity::{AdminGroups, Identities, IdentitiesOptions, OrgBinding, ProviderConfig};
use warden_store::Secret;
use warden_testkit::TempSqlite;
use warden_vault::{Caller, Credentials, UpstreamRef, Vault};

const KEY_A: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pem");
const KEY_B: &str = include_str!("../../warden-identity/tests/keys/rsa_b.pem");
const JWK_A: &str = include_str!("../../warden-identity/tests/keys/rsa_a.jwk.json");
const CLIENT: &str = "warden-console";

/// The identity provider stand-in: the ID token its token endpoint answers
/// next, and the form it was last sent.
#[derive(Default)]
struct Idp {
    next_id_token: Mutex<Option<String>>,
    last_form: Mutex<HashMap<String, String>>,
}

type Registry = Arc<RwLock<Option<Arc<Identities>>>>;

struct World {
    _db: TempSqlite,
    vault: Vault,
    warden: String,
    as_issuer: String,
    idp_issuer: String,
    idp: Arc<Idp>,
    registry: Registry,
    alice: Caller,
    server: UpstreamRef,
    http: reqwest::Client,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(pem: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("a".to_owned());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn start_idp(idp: Arc<Idp>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let iss = issuer.clone();
    let mut jwk: Value = serde_json::from_str(JWK_A).unwrap();
    jwk["kid"] = json!("a");
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss.clone();
                async move {
                    Json(json!({
                        "issuer": iss,
                        "jwks_uri": format!("{iss}/jwks"),
                        "authorization_endpoint": format!("{iss}/auth"),
                        "token_endpoint": format!("{iss}/token"),
                    }))
                }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let jwk = jwk.clone();
                async move { Json(json!({ "keys": [jwk] })) }
            }),
        )
        .route(
            "/token",
            post(move |Form(form): Form<HashMap<String, String>>| {
                let idp = idp.clone();
                async move {
                    *idp.last_form.lock().unwrap() = form;
                    match idp.next_id_token.lock().unwrap().take() {
                        Some(t) => (
                            axum::http::StatusCode::OK,
                            Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": t})),
                        ),
                        None => (
                            axum::http::StatusCode::BAD_REQUEST,
                            Json(json!({"error": "invalid_grant"})),
                        ),
                    }
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    issuer
}

fn provider(issuer: &str, console_client_id: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        slug: "corp".into(),
        issuer: issuer.to_owned(),
        jwks_uri: None,
        audiences: vec![],
        user_claim: "sub".into(),
        groups_claim: None,
        group_teams: vec![],
        client_agents: vec![],
        required_scopes: vec![],
        orgs: OrgBinding::Org { org: "acme".into() },
        admin_groups: AdminGroups::default(),
        console_client_id: console_client_id.map(str::to_owned),
    }
}

async fn world(console_client_id: Option<&str>) -> World {
    let b = common::base().await;
    let idp = Arc::new(Idp::default());
    let idp_issuer = start_idp(idp.clone()).await;
    common::person(&b.store, b.org, "bob").await;
    // The person's sign-in key (any key of the org stands for it here).
    let key = b
        .store
        .create_key("root", common::key(b.org, "sign-in"))
        .await
        .unwrap()
        .value;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let warden = format!("http://{}", listener.local_addr().unwrap());
    let vault = Vault::new(b.store, &warden).unwrap();
    let registry: Registry = Arc::new(RwLock::new(Some(Arc::new(
        Identities::new(
            vec![provider(&idp_issuer, console_client_id)],
            IdentitiesOptions::default(),
        )
        .unwrap(),
    ))));
    let lookup = registry.clone();
    vault.set_identities(Arc::new(move || lookup.read().unwrap().clone()));
    let routes = warden_vault::routes(vault.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    World {
        _db: b.db,
        vault,
        warden,
        as_issuer: b.issuer,
        idp_issuer,
        idp,
        registry,
        alice: Caller {
            org: b.org,
            key: key.key.id,
            end_user: Some(b.alice),
            sign_in: Some(("corp".into(), Secret::new("idp-access-token"))),
        },
        server: UpstreamRef {
            id: b.server,
            slug: "notes".into(),
            url: Some(b.upstream_url),
        },
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    }
}

/// A consent sign-in started by opening the link: the provider URL's
/// parameters and the cookie (`name=value`).
struct Started {
    params: HashMap<String, String>,
    cookie: String,
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl World {
    async fn link(&self) -> String {
        match self
            .vault
            .credentials_for(&self.alice, &self.server)
            .await
            .unwrap()
        {
            Credentials::NeedsConsent { url } => url,
            other => panic!("expected a consent link, got {other:?}"),
        }
    }

    async fn open(&self, link: &str) -> Started {
        let res = self.http.get(link).send().await.unwrap();
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{}/auth?", self.idp_issuer)),
            "{location}"
        );
        let set = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("warden_connect="))
            .expect("a consent cookie")
            .to_owned();
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Lax")
                && set.contains("Path=/connect"),
            "{set}"
        );
        Started {
            params: query(&location),
            cookie: set.split(';').next().unwrap().to_owned(),
        }
    }

    /// The provider will answer an ID token for `sub`, signed with `pem`.
    fn id_token_for(&self, started: &Started, sub: &str, pem: &str) {
        let token = sign(
            pem,
            &json!({
                "iss": self.idp_issuer,
                "aud": CLIENT,
                "sub": sub,
                "nonce": started.params["nonce"],
                "iat": now(),
                "exp": now() + 300,
            }),
        );
        *self.idp.next_id_token.lock().unwrap() = Some(token);
    }

    /// Opens `link` and signs in as `sub` (ID token signed with `pem`) in
    /// the same browser: Warden's answer.
    async fn sign_in(&self, link: &str, sub: &str, pem: &str) -> reqwest::Response {
        let started = self.open(link).await;
        self.id_token_for(&started, sub, pem);
        self.back(&started.params["state"], Some(&started.cookie))
            .await
    }

    async fn back(&self, state: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!(
            "{}/connect/signed-in?code=the-code&state={state}",
            self.warden
        ));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn the_same_person_signed_in_goes_on_to_the_authorization_server() {
    let w = world(Some(CLIENT)).await;
    let link = w.link().await;
    let started = w.open(&link).await;
    let p = &started.params;
    assert_eq!(p["client_id"], CLIENT);
    assert_eq!(p["redirect_uri"], format!("{}/connect/signed-in", w.warden));
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["code_challenge_method"], "S256");
    assert!(p["scope"].split(' ').any(|s| s == "openid"));
    assert!(!p["nonce"].is_empty() && !p["state"].is_empty());

    w.id_token_for(&started, "alice", KEY_A);
    let res = w.back(&p["state"], Some(&started.cookie)).await;
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("{}/authorize?", w.as_issuer)),
        "{to}"
    );
    assert_eq!(query(&to)["client_id"], "warden");
    // The cookie is cleared; the code was redeemed with the PKCE verifier.
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("warden_connect=;") && v.contains("Max-Age=0"));
    assert!(cleared);
    let form = w.idp.last_form.lock().unwrap().clone();
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["redirect_uri"], p["redirect_uri"]);
    assert!(!form["code_verifier"].is_empty());

    // Single use: the link is opened, the state spent.
    assert_eq!(w.http.get(&link).send().await.unwrap().status(), 404);
    let again = w.back(&p["state"], Some(&started.cookie)).await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn another_person_signed_in_is_refused_and_counted() {
    let w = world(Some(CLIENT)).await;
    let link = w.link().await;
    for left in (1..5).rev() {
        let res = w.sign_in(&link, "bob", KEY_A).await;
        assert_eq!(res.status(), 403);
        let body = res.text().await.unwrap();
        assert!(body.contains("consent_wrong_person"), "{body}");
        assert!(body.contains(&format!("{left} attempts left")), "{body}");
    }
    // The person it was issued for still opens it.
    let res = w.sign_in(&link, "alice", KEY_A).await;
    assert_eq!(res.status(), 302);

    // A fifth other person spends a link.
    let link = w.link().await;
    for left in (0..5).rev() {
        let res = w.sign_in(&link, "mallory", KEY_A).await;
        assert_eq!(res.status(), 403);
        let body = res.text().await.unwrap();
        assert!(body.contains(&format!("{left} attempts left")), "{body}");
    }
    assert_eq!(w.http.get(&link).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn tampered_state_cookie_or_token_is_refused() {
    let w = world(Some(CLIENT)).await;
    let link = w.link().await;
    let started = w.open(&link).await;
    w.id_token_for(&started, "alice", KEY_A);
    let state = &started.params["state"];

    // Another state: no such sign-in.
    let res = w.back("not-the-state", Some(&started.cookie)).await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("consent_sign_in_expired"));
    // The right state in a browser without the cookie, or with another
    // one: refused, and the state is spent.
    let res = w.back(state, None).await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("consent_sign_in_not_bound"));
    let res = w.back(state, Some(&started.cookie)).await;
    assert_eq!(res.status(), 400);
    let started = w.open(&link).await;
    let res = w
        .back(&started.params["state"], Some("warden_connect=forged"))
        .await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("consent_sign_in_not_bound"));

    // An ID token not signed by the provider's key.
    let res = w.sign_in(&link, "alice", KEY_B).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("consent_sign_in_failed"));

    // None of that counted: the person still opens the link.
    let res = w.sign_in(&link, "alice", KEY_A).await;
    assert_eq!(res.status(), 302);
}

#[tokio::test]
async fn a_provider_without_browser_sign_in_cannot_prove_a_link() {
    let w = world(None).await;
    let link = w.link().await;
    let res = w.http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    let body = res.text().await.unwrap();
    assert!(body.contains("consent_sign_in_unavailable"), "{body}");
    assert!(body.contains("console_client_id"), "{body}");
    // No provider registered at all: the same.
    *w.registry.write().unwrap() = None;
    let res = w.http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 403);
}
