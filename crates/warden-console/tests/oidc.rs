//! Console sign-in at an identity provider, over real HTTP: a real store
//! (SQLite file), the real console router, the real `Identities` registry,
//! and a small OpenID provider on loopback (discovery, JWKS and a token
//! endpoint that answers the ID token the test mints with the fixture RSA
//! keys of `warden-identity`). The browser is played by hand: no redirects
//! followed, cookies carried explicitly. (The whole flow through a real
//! provider's login form runs in `e2e/tests/test_console.py`.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use warden_admin::auth::Admin;
use warden_admin::dto::CreateOrg;
use warden_admin::{ops, AdminState};
use warden_console::{ConsoleConfig, NoGateway};
use warden_identity::{AdminGroups, Identities, IdentitiesOptions, OrgBinding, ProviderConfig};
use warden_store::{Store, StoreOptions};
use warden_testkit::TempSqlite;

const KEY_A: &str = include_str!("../../warden-identity/tests/keys/rsa_a.pem");
const KEY_B: &str = include_str!("../../warden-identity/tests/keys/rsa_b.pem");
const JWK_A: &str = include_str!("../../warden-identity/tests/keys/rsa_a.jwk.json");
const CLIENT: &str = "warden-console";

/// The provider: what the token endpoint will answer, and what it was sent.
#[derive(Default)]
struct Provider {
    discoveries: std::sync::atomic::AtomicUsize,
    next_id_token: Mutex<Option<String>>,
    last_form: Mutex<HashMap<String, String>>,
}

type Registry = Arc<RwLock<Option<Arc<Identities>>>>;

struct H {
    base: String,
    issuer: String,
    http: reqwest::Client,
    provider: Arc<Provider>,
    registry: Registry,
    config: ProviderConfig,
    _db: TempSqlite,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(pem: &str, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn start_provider(provider: Arc<Provider>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let iss = issuer.clone();
    let jwk: Value = serde_json::from_str(JWK_A).unwrap();
    let counter = provider.clone();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss.clone();
                counter
                    .discoveries
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
                let provider = provider.clone();
                async move {
                    *provider.last_form.lock().unwrap() = form;
                    match provider.next_id_token.lock().unwrap().take() {
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
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    issuer
}

async fn start() -> H {
    let provider = Arc::new(Provider::default());
    let issuer = start_provider(provider.clone()).await;
    let db = TempSqlite::new();
    let store = Store::open(db.url(), StoreOptions::new([7u8; 32]))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ProviderConfig {
        slug: "corp".into(),
        issuer: issuer.clone(),
        jwks_uri: None,
        audiences: vec![],
        user_claim: "sub".into(),
        groups_claim: Some("groups".into()),
        group_teams: vec![],
        client_agents: vec![],
        // Asked of access tokens; an ID token carries no scope.
        required_scopes: vec!["mcp".into()],
        orgs: OrgBinding::Org { org: "acme".into() },
        admin_groups: AdminGroups {
            platform_admin: Some("warden-admins".into()),
            org_admin: Some("acme-admins".into()),
        },
        console_client_id: Some(CLIENT.into()),
    };
    let registry: Registry = Arc::new(RwLock::new(Some(Arc::new(
        Identities::new(vec![config.clone()], IdentitiesOptions::default()).unwrap(),
    ))));
    let lookup = registry.clone();
    let state = AdminState::new(store, Arc::new(warden_policy::NoCatalog)).with_identities(
        Arc::new(move || lookup.read().unwrap().clone()),
        base.clone(),
    );
    let sys = Admin::system("test");
    for org in ["acme", "globex"] {
        ops::create_org(
            &state,
            &sys,
            CreateOrg {
                slug: org.into(),
                name: None,
            },
        )
        .await
        .unwrap();
    }
    let app = warden_console::router(state.clone(), Arc::new(NoGateway), ConsoleConfig::default());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    H {
        base,
        issuer,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        provider,
        registry,
        config,
        _db: db,
    }
}

/// A started sign-in: the provider URL's parameters and the flow cookie.
struct Flow {
    params: HashMap<String, String>,
    cookie: String,
}

fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

impl H {
    async fn begin(&self) -> Flow {
        let res = self
            .http
            .get(format!("{}/console/login/idp/corp", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{}/auth?", self.issuer)),
            "{location}"
        );
        let params: HashMap<String, String> = reqwest::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let set = set_cookie(&res, "warden_console_flow").expect("a flow cookie");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_owned();
        Flow { params, cookie }
    }

    fn id_token(&self, flow: &Flow, sub: &str, groups: &[&str]) -> Value {
        json!({
            "iss": self.issuer,
            "aud": CLIENT,
            "sub": sub,
            "groups": groups,
            "nonce": flow.params["nonce"],
            "iat": now(),
            "exp": now() + 300,
        })
    }

    /// The provider's redirect back, with the browser's flow cookie.
    async fn callback(&self, flow: &Flow, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!(
            "{}/console/login/callback?code=the-code&state={}&iss={}",
            self.base,
            flow.params["state"],
            urlencode(&self.issuer)
        ));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    async fn sign_in(&self, claims: impl FnOnce(&Flow) -> Value) -> reqwest::Response {
        let flow = self.begin().await;
        *self.provider.next_id_token.lock().unwrap() = Some(sign(KEY_A, "key-a", &claims(&flow)));
        self.callback(&flow, Some(&flow.cookie)).await
    }

    async fn get(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn refusal(res: reqwest::Response) -> (StatusCode, String, bool) {
    let status = res.status();
    let session = set_cookie(&res, "warden_console").is_some_and(|c| !c.contains("Max-Age=0"));
    let text = res.text().await.unwrap();
    let code = text
        .split("data-code=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("")
        .to_owned();
    (status, code, session)
}

#[tokio::test]
async fn an_org_admin_signs_in_with_pkce_state_and_nonce_and_sees_only_their_org() {
    let h = start().await;
    let (status, login) = h.get("", "/console/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        login.contains("href=\"/console/login/idp/corp\""),
        "{login}"
    );

    let flow = h.begin().await;
    let p = &flow.params;
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], CLIENT);
    assert_eq!(
        p["redirect_uri"],
        format!("{}/console/login/callback", h.base)
    );
    assert_eq!(p["scope"], "openid groups");
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["state"].len(), 64);
    assert_eq!(p["nonce"].len(), 64);
    assert_ne!(p["state"], p["nonce"]);

    *h.provider.next_id_token.lock().unwrap() = Some(sign(
        KEY_A,
        "key-a",
        &h.id_token(&flow, "carol", &["acme-admins"]),
    ));
    let res = h.callback(&flow, Some(&flow.cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let session = set_cookie(&res, "warden_console").expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let cleared = set_cookie(&res, "warden_console_flow").expect("the flow cookie cleared");
    assert!(cleared.contains("Max-Age=0"));
    let page = res.text().await.unwrap();
    assert!(page.contains("url=/console/orgs"), "{page}");
    assert!(!page.contains("the-code"));

    // The code went to the token endpoint with the verifier whose S256 is
    // the challenge sent; no client secret.
    let form = h.provider.last_form.lock().unwrap().clone();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["redirect_uri"], p["redirect_uri"]);
    assert!(!form.contains_key("client_secret"));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
    assert_eq!(challenge, p["code_challenge"]);

    let cookie = session.split(';').next().unwrap().to_owned();
    let (status, orgs) = h.get(&cookie, "/console/orgs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(orgs.contains("corp:carol (org admin)"), "{orgs}");
    assert!(orgs.contains("acme") && !orgs.contains("globex"));
    let (status, _) = h.get(&cookie, "/console/orgs/globex").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A change is made as the person (the audit actor).
    let csrf = orgs
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let res = h
        .http
        .post(format!("{}/console/orgs/acme/teams", h.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("slug", "eng")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, audit) = h
        .get(
            &cookie,
            "/console/audit?org=acme&kind=admin_change&entity=team",
        )
        .await;
    assert!(audit.contains("idp:corp:carol"), "{audit}");

    // The same answer again (a replayed callback): the flow is used up.
    *h.provider.next_id_token.lock().unwrap() = Some(sign(
        KEY_A,
        "key-a",
        &h.id_token(&flow, "carol", &["acme-admins"]),
    ));
    let (status, code, session) = refusal(h.callback(&flow, Some(&flow.cookie)).await).await;
    assert_eq!(
        (status, code.as_str(), session),
        (StatusCode::BAD_REQUEST, "sign_in_expired", false)
    );

    // The provider stops offering console sign-in: the session ends.
    let mut changed = h.config.clone();
    changed.console_client_id = None;
    *h.registry.write().unwrap() = Some(Arc::new(
        Identities::new(vec![changed], IdentitiesOptions::default()).unwrap(),
    ));
    let res = h
        .http
        .get(format!("{}/console/orgs", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/console/login");
    let (_, login) = h.get("", "/console/login").await;
    assert!(!login.contains("Sign in with corp"));
}

#[tokio::test]
async fn a_platform_admin_by_group_sees_every_org() {
    let h = start().await;
    let res = h
        .sign_in(|f| h.id_token(f, "root", &["warden-admins"]))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = set_cookie(&res, "warden_console")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (_, orgs) = h.get(&cookie, "/console/orgs").await;
    assert!(orgs.contains("corp:root (platform admin)"), "{orgs}");
    assert!(orgs.contains("acme") && orgs.contains("globex"));

    // Starting sign-ins (no session needed) reuses the discovered endpoints.
    let before = h
        .provider
        .discoveries
        .load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        h.begin().await;
    }
    assert_eq!(
        h.provider
            .discoveries
            .load(std::sync::atomic::Ordering::SeqCst),
        before
    );
}

#[tokio::test]
async fn every_bad_answer_is_refused_without_a_session() {
    let h = start().await;
    type Claims<'a> = Box<dyn Fn(&Flow) -> Value + 'a>;
    let cases: Vec<(&str, Claims<'_>, StatusCode, &str)> = vec![
        (
            "no admin group",
            Box::new(|f| h.id_token(f, "bob", &["sales"])),
            StatusCode::FORBIDDEN,
            "not_an_admin",
        ),
        (
            "another nonce",
            Box::new(|f| {
                let mut c = h.id_token(f, "carol", &["acme-admins"]);
                c["nonce"] = json!("0".repeat(64));
                c
            }),
            StatusCode::UNAUTHORIZED,
            "token_claim_missing",
        ),
        (
            "no nonce",
            Box::new(|f| {
                let mut c = h.id_token(f, "carol", &["acme-admins"]);
                c.as_object_mut().unwrap().remove("nonce");
                c
            }),
            StatusCode::UNAUTHORIZED,
            "token_claim_missing",
        ),
        (
            "issued to another client",
            Box::new(|f| {
                let mut c = h.id_token(f, "carol", &["acme-admins"]);
                c["aud"] = json!("ide");
                c
            }),
            StatusCode::UNAUTHORIZED,
            "token_audience_invalid",
        ),
        (
            "several audiences, no azp",
            Box::new(|f| {
                let mut c = h.id_token(f, "carol", &["acme-admins"]);
                c["aud"] = json!([CLIENT, "other"]);
                c
            }),
            StatusCode::UNAUTHORIZED,
            "token_audience_invalid",
        ),
        (
            "another issuer",
            Box::new(|f| {
                let mut c = h.id_token(f, "carol", &["acme-admins"]);
                c["iss"] = json!("http://evil.example");
                c
            }),
            StatusCode::UNAUTHORIZED,
            "token_issuer_unknown",
        ),
        (
            "expired",
            Box::new(|f| {
                let mut c = h.id_token(f, "carol", &["acme-admins"]);
                c["exp"] = json!(now() - 3600);
                c
            }),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
    ];
    for (what, claims, want_status, want_code) in cases {
        let (status, code, session) = refusal(h.sign_in(|f| claims(f)).await).await;
        assert_eq!(
            (status, code.as_str(), session),
            (want_status, want_code, false),
            "{what}"
        );
    }

    // Signed with a key the provider does not publish.
    let flow = h.begin().await;
    *h.provider.next_id_token.lock().unwrap() = Some(sign(
        KEY_B,
        "key-a",
        &h.id_token(&flow, "carol", &["acme-admins"]),
    ));
    let (status, code, session) = refusal(h.callback(&flow, Some(&flow.cookie)).await).await;
    assert_eq!(
        (status, code.as_str(), session),
        (StatusCode::UNAUTHORIZED, "token_signature_invalid", false)
    );

    // A callback without this browser's flow cookie (login CSRF), or with
    // another flow's cookie.
    for other_browser in [false, true] {
        let flow = h.begin().await;
        let other = h.begin().await;
        let cookie = other_browser.then_some(other.cookie.as_str());
        *h.provider.next_id_token.lock().unwrap() = Some(sign(
            KEY_A,
            "key-a",
            &h.id_token(&flow, "carol", &["acme-admins"]),
        ));
        let (status, code, session) = refusal(h.callback(&flow, cookie).await).await;
        assert_eq!(
            (status, code.as_str(), session),
            (StatusCode::BAD_REQUEST, "sign_in_not_bound", false),
            "other browser: {other_browser}"
        );
        // Refused before the code was redeemed.
        assert!(h.provider.next_id_token.lock().unwrap().is_some());
    }

    // The provider refused (the person cancelled), and a state never issued.
    let res = h
        .http
        .get(format!(
            "{}/console/login/callback?error=access_denied&state=x",
            h.base
        ))
        .send()
        .await
        .unwrap();
    let (status, code, _) = refusal(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "idp_refused")
    );
    let res = h
        .http
        .get(format!(
            "{}/console/login/callback?code=c&state={}",
            h.base,
            "f".repeat(64)
        ))
        .send()
        .await
        .unwrap();
    let (status, code, _) = refusal(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "sign_in_expired")
    );

    // The token endpoint refuses the code.
    *h.provider.next_id_token.lock().unwrap() = None;
    let flow = h.begin().await;
    let (status, code, session) = refusal(h.callback(&flow, Some(&flow.cookie)).await).await;
    assert_eq!(
        (status, code.as_str(), session),
        (StatusCode::BAD_GATEWAY, "idp_unavailable", false)
    );

    // An unknown provider.
    let res = h
        .http
        .get(format!("{}/console/login/idp/nope", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
