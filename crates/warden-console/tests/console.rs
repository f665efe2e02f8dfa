//! The console over real HTTP: a real store (SQLite file), the real admin
//! and console routers on a loopback listener, a real HTTP client that does
//! not follow redirects and carries the session cookie by hand.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::StatusCode;
use warden_admin::auth::Admin;
use warden_admin::dto::{CreateAdminToken, CreateOrg, CreateServer, PutGrant, TransportSpec};
use warden_admin::{ops, AdminState};
use warden_console::{ConsoleConfig, NoGateway, SESSION_COOKIE};
use warden_policy::{ServerId, ToolFilter};
use warden_store::{Secret, Store, StoreOptions};
use warden_testkit::TempSqlite;

const PLATFORM_TOKEN: &str = "platform-admin-token-for-console-tests";

#[derive(Default)]
struct TestCatalog(RwLock<HashMap<ServerId, HashSet<String>>>);

impl warden_policy::Catalog for TestCatalog {
    fn contains(&self, server: ServerId, tool: &str) -> bool {
        self.0
            .read()
            .unwrap()
            .get(&server)
            .is_some_and(|t| t.contains(tool))
    }
    fn tool_names(&self, server: ServerId) -> Option<Vec<String>> {
        self.0
            .read()
            .unwrap()
            .get(&server)
            .map(|t| t.iter().cloned().collect())
    }
}

struct H {
    base: String,
    http: reqwest::Client,
    state: AdminState,
    /// The org admin tokens of acme and globex.
    acme_token: String,
    globex_token: String,
    _db: TempSqlite,
}

/// Two orgs (acme, globex); a global server `github` (tools a, b, c)
/// granted to acme with only [a, b] and to globex with all tools.
async fn start(config: ConsoleConfig) -> H {
    let db = TempSqlite::new();
    let store = Store::open(db.url(), StoreOptions::new([7u8; 32]))
        .await
        .unwrap();
    store
        .ensure_admin_token("bootstrap", "platform", None, &Secret::new(PLATFORM_TOKEN))
        .await
        .unwrap();
    let catalog = Arc::new(TestCatalog::default());
    let state = AdminState::new(store.clone(), catalog.clone());
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
    ops::create_server(
        &state,
        &sys,
        None,
        CreateServer {
            slug: "github".into(),
            name: None,
            transport: TransportSpec::Http {
                url: "http://127.0.0.1:9/mcp".into(),
            },
            secret_headers: Default::default(),
            enabled: true,
            timeout_ms: None,
        },
    )
    .await
    .unwrap();
    let github = state
        .snapshot()
        .servers()
        .find(|s| s.slug == "github")
        .unwrap()
        .id;
    catalog.0.write().unwrap().insert(
        github,
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect(),
    );
    for (org, filter) in [
        ("acme", ToolFilter::only(["a", "b"])),
        ("globex", ToolFilter::All),
    ] {
        ops::put_grant(
            &state,
            &sys,
            org,
            "github",
            PutGrant {
                enabled: true,
                filter,
            },
        )
        .await
        .unwrap();
    }
    let token = |org: &'static str| {
        let state = state.clone();
        let sys = sys.clone();
        async move {
            ops::create_admin_token(
                &state,
                &sys,
                org,
                CreateAdminToken {
                    name: format!("{org}-admin"),
                },
            )
            .await
            .unwrap()
            .secret
        }
    };
    let acme_token = token("acme").await;
    let globex_token = token("globex").await;
    let app = warden_console::router(state.clone(), Arc::new(NoGateway), config)
        .merge(warden_admin::router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    H {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        acme_token,
        globex_token,
        _db: db,
    }
}

/// A signed-in browser: the session cookie and the CSRF token of its pages.
struct Session {
    cookie: String,
    csrf: String,
}

impl H {
    async fn sign_in(&self, token: &str) -> Session {
        let res = self
            .http
            .post(format!("{}/console/login", self.base))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = set.split(';').next().unwrap().to_owned();
        let page = self.get(&cookie, "/console/orgs").await;
        assert_eq!(page.0, StatusCode::OK);
        let csrf = page
            .1
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a csrf field on the page")
            .to_owned();
        Session { cookie, csrf }
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

    async fn post(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

#[tokio::test]
async fn every_response_carries_a_strict_csp_and_no_inline_script() {
    let h = start(ConsoleConfig::default()).await;
    let s = h.sign_in(PLATFORM_TOKEN).await;
    for path in [
        "/console/login",
        "/console/orgs",
        "/console/orgs/acme",
        "/console/nowhere",
    ] {
        let res = h
            .http
            .get(format!("{}{path}", h.base))
            .header("cookie", &s.cookie)
            .send()
            .await
            .unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["cache-control"], "no-store");
        // Same-origin referrer: browsers then send a real `Origin` on form
        // posts (with `no-referrer` they send `Origin: null`).
        assert_eq!(res.headers()["referrer-policy"], "same-origin");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let body = res.text().await.unwrap();
        // The only script is the embedded file; no inline script or handler.
        assert!(!body.contains("<script>"), "{path}");
        assert!(!body.contains("onclick"), "{path}");
    }
    // The assets are embedded in the binary.
    let js = h
        .http
        .get(format!("{}/console/assets/console.js", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.unwrap().contains("/console/revision"));
}

#[tokio::test]
async fn sign_in_sets_an_httponly_strict_cookie_and_never_echoes_the_token() {
    let h = start(ConsoleConfig::default()).await;
    let res = h
        .http
        .post(format!("{}/console/login", h.base))
        .form(&[("token", PLATFORM_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/console/orgs");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/console"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(!cookie.contains(PLATFORM_TOKEN));
    let s = Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: String::new(),
    };
    let (status, page) = h.get(&s.cookie, "/console/orgs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains(PLATFORM_TOKEN),
        "the token never reaches a page"
    );

    // Behind TLS the cookie is Secure.
    let res = h
        .http
        .post(format!("{}/console/login", h.base))
        .header("x-forwarded-proto", "https")
        .form(&[("token", PLATFORM_TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    // A wrong token: 401, no cookie.
    let res = h
        .http
        .post(format!("{}/console/login", h.base))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("set-cookie").is_none());
    // No session: every page sends the browser to sign in.
    let (status, _) = h.get("", "/console/orgs").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = h
        .get(
            &format!("{SESSION_COOKIE}={}", "0".repeat(64)),
            "/console/orgs",
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_state_change_without_the_sessions_csrf_token_is_refused() {
    let h = start(ConsoleConfig::default()).await;
    let s = h.sign_in(PLATFORM_TOKEN).await;
    let (status, body) = h
        .post(&s.cookie, "/console/orgs", &[("slug", "initech")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("csrf_refused"));
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs",
            &[("slug", "initech"), ("csrf", "0123")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another session's token does not do either.
    let other = h.sign_in(PLATFORM_TOKEN).await;
    assert_ne!(other.csrf, s.csrf);
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs",
            &[("slug", "initech"), ("csrf", &other.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(h.state.snapshot().org_by_slug("initech").is_none());
    // Switching a grant without it: refused, grant untouched.
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs/acme/grants/github/switch",
            &[("enabled", "false")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let acme = h.state.snapshot().org_by_slug("acme").unwrap().id;
    let gh = h
        .state
        .snapshot()
        .servers()
        .find(|s| s.slug == "github")
        .unwrap()
        .id;
    assert!(h.state.snapshot().org_grant(acme, gh).unwrap().enabled);
    // Sign out needs it too.
    let (status, _) = h.post(&s.cookie, "/console/logout", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // With the session's token: done.
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs",
            &[("slug", "initech"), ("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(h.state.snapshot().org_by_slug("initech").is_some());
    // A cross-site sign-in post is refused.
    let res = h
        .http
        .post(format!("{}/console/login", h.base))
        .header("origin", "https://evil.example")
        .form(&[("token", PLATFORM_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_org_admin_never_reaches_another_org_by_url() {
    let h = start(ConsoleConfig::default()).await;
    let s = h.sign_in(&h.acme_token).await;
    let (status, page) = h.get(&s.cookie, "/console/orgs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("acme"));
    assert!(!page.contains("globex"), "another org is not listed");
    for path in [
        "/console/orgs/globex",
        "/console/orgs/globex/teams",
        "/console/orgs/globex/agents",
        "/console/orgs/globex/end-users",
        "/console/orgs/globex/keys",
        "/console/orgs/globex/toolsets",
        "/console/orgs/globex/grants/github",
        "/console/orgs/globex/grants/github/switch?enabled=false",
        "/console/orgs/globex/scope/team/x",
        "/console/orgs/globex/explain?key=1&server=github&tool=a",
        "/console/orgs/globex/access?key=1",
        "/console/orgs/globex/live",
        "/console/orgs/globex/live/panel",
        "/console/audit?org=globex",
    ] {
        let (status, body) = h.get(&s.cookie, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(!body.contains("globex-admin"), "{path}");
    }
    // Writes: not found, and nothing changes.
    for (path, form) in [
        (
            "/console/orgs/globex/grants/github/switch",
            vec![("enabled", "false")],
        ),
        ("/console/orgs/globex/teams", vec![("slug", "intruders")]),
        ("/console/orgs/globex/suspend", vec![("suspended", "true")]),
    ] {
        let mut form = form.clone();
        form.push(("csrf", &s.csrf));
        let (status, _) = h.post(&s.cookie, path, &form).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let snap = h.state.snapshot();
    let globex = snap.org_by_slug("globex").unwrap();
    assert!(!globex.suspended);
    assert!(snap.team_by_slug(globex.id, "intruders").is_none());
    let gh = snap.servers().find(|s| s.slug == "github").unwrap().id;
    assert!(snap.org_grant(globex.id, gh).unwrap().enabled);
    // The other org's admin sees its own org.
    let g = h.sign_in(&h.globex_token).await;
    let (status, _) = h.get(&g.cookie, "/console/orgs/globex").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.get(&g.cookie, "/console/orgs/acme").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_limit() {
    let h = start(ConsoleConfig {
        idle_timeout: Duration::from_millis(600),
        absolute_timeout: Duration::from_secs(60),
        secure_cookie: false,
    })
    .await;
    let s = h.sign_in(PLATFORM_TOKEN).await;
    assert_eq!(h.get(&s.cookie, "/console/orgs").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (status, _) = h.get(&s.cookie, "/console/orgs").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "idle session ended");

    let h = start(ConsoleConfig {
        idle_timeout: Duration::from_secs(60),
        absolute_timeout: Duration::from_millis(1200),
        secure_cookie: false,
    })
    .await;
    let s = h.sign_in(PLATFORM_TOKEN).await;
    // Used all along, it still ends at the absolute limit.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.get(&s.cookie, "/console/orgs").await.0, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        h.get(&s.cookie, "/console/orgs").await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn revoking_the_admin_token_ends_its_console_sessions() {
    let h = start(ConsoleConfig::default()).await;
    let s = h.sign_in(&h.acme_token).await;
    assert_eq!(
        h.get(&s.cookie, "/console/orgs/acme").await.0,
        StatusCode::OK
    );
    let sys = Admin::system("test");
    let tokens = ops::list_admin_tokens(&h.state, &sys, "acme")
        .await
        .unwrap();
    for t in tokens.items {
        ops::delete_admin_token(&h.state, &sys, "acme", t.id)
            .await
            .unwrap();
    }
    assert_eq!(
        h.get(&s.cookie, "/console/orgs/acme").await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_scope_picker_offers_exactly_the_parents_allowance() {
    let h = start(ConsoleConfig::default()).await;
    let s = h.sign_in(&h.acme_token).await;
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs/acme/teams",
            &[("slug", "eng"), ("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = h.get(&s.cookie, "/console/orgs/acme/scope/team/eng").await;
    assert_eq!(status, StatusCode::OK);
    let offered: Vec<&str> = page
        .split("data-tool=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    // acme is granted github with [a, b]; the catalog also has c.
    assert_eq!(offered, ["a", "b"]);
    // Saving [a] goes through the same validated write.
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs/acme/scope/team/eng",
            &[
                ("mode", "grants"),
                ("server", "github"),
                ("mode:github", "only"),
                ("tool:github", "a"),
                ("csrf", &s.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let snap = h.state.snapshot();
    let acme = snap.org_by_slug("acme").unwrap().id;
    let team = snap.team_by_slug(acme, "eng").unwrap();
    assert_eq!(
        format!("{:?}", team.scope),
        format!(
            "{:?}",
            warden_policy::Scope::Grants(warden_policy::ScopeGrants {
                servers: [(
                    snap.servers().find(|s| s.slug == "github").unwrap().id,
                    ToolFilter::only(["a"])
                )]
                .into_iter()
                .collect(),
                toolsets: Default::default(),
            })
        )
    );
    // A hand-made post beyond the allowance is refused by the store.
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs/acme/scope/team/eng",
            &[
                ("mode", "grants"),
                ("server", "github"),
                ("mode:github", "only"),
                ("tool:github", "c"),
                ("csrf", &s.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn switching_a_grant_shows_its_impact_first_and_is_audited_with_the_admin() {
    let h = start(ConsoleConfig::default()).await;
    let s = h.sign_in(&h.acme_token).await;
    // Two keys: one inheriting (sees a, b), one with no servers.
    let (status, page) = h
        .post(
            &s.cookie,
            "/console/orgs/acme/keys",
            &[("name", "ci"), ("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-testid=\"key-secret\""),
        "secret shown once"
    );
    let (_, page) = h
        .get(
            &s.cookie,
            "/console/orgs/acme/grants/github/switch?enabled=false",
        )
        .await;
    assert!(
        page.contains("<strong>1</strong> principal(s) and <strong>0</strong> live session(s)"),
        "{page}"
    );
    assert!(page.contains("github: a, b"), "{page}");
    let (status, _) = h
        .post(
            &s.cookie,
            "/console/orgs/acme/grants/github/switch",
            &[("enabled", "false"), ("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let snap = h.state.snapshot();
    let acme = snap.org_by_slug("acme").unwrap().id;
    let gh = snap.servers().find(|s| s.slug == "github").unwrap().id;
    assert!(!snap.org_grant(acme, gh).unwrap().enabled);
    // The audit log names the org admin who did it.
    let (_, audit) = h
        .get(
            &s.cookie,
            "/console/audit?kind=admin_change&entity=org_grant",
        )
        .await;
    let actor = format!("admin:acme-admin@org:{}", acme.0);
    assert!(audit.contains(&actor), "{audit}");
    let page = ops::list_audit(
        &h.state,
        &Admin::system("test"),
        warden_admin::dto::AuditParams {
            org: Some("acme".into()),
            entity: None,
            actor: Some(actor.clone()),
            kind: Some("admin_change".into()),
            key: None,
            reason: None,
            since: None,
            until: None,
            limit: Some(10),
            cursor: None,
        },
    )
    .await
    .unwrap();
    assert!(page
        .items
        .iter()
        .any(|e| e.action.contains("update") || e.entity_kind.as_deref() == Some("org_grant")));
    // Explain names the org switch, with every check of the trace.
    let key = snap.key_principals(acme)[0].key.0;
    let (status, page) = h
        .get(
            &s.cookie,
            &format!("/console/orgs/acme/explain?key={key}&server=github&tool=a"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-testid=\"reason\">server_disabled_by_org<"),
        "{page}"
    );
    assert!(
        page.contains(">org_grant_enabled<") || page.contains("<tr class=\"fail\">"),
        "{page}"
    );
    // Switching back on restores exactly what was lost.
    let (_, page) = h
        .get(
            &s.cookie,
            "/console/orgs/acme/grants/github/switch?enabled=true",
        )
        .await;
    assert!(page.contains("github: a, b"), "{page}");
}

#[tokio::test]
async fn platform_pages_are_the_platforms_and_secrets_are_write_only() {
    let h = start(ConsoleConfig::default()).await;
    let org = h.sign_in(&h.acme_token).await;
    for path in [
        "/console/servers",
        "/console/replicas",
        "/console/admin-tokens",
    ] {
        let (status, body) = h.get(&org.cookie, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("platform_admin_required"), "{path}");
    }
    let (status, _) = h
        .post(
            &org.cookie,
            "/console/servers/github/switch",
            &[("enabled", "false"), ("csrf", &org.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let p = h.sign_in(PLATFORM_TOKEN).await;
    let (status, _) = h
        .post(
            &p.cookie,
            "/console/servers",
            &[
                ("slug", "jira"),
                ("transport", "http"),
                ("url", "http://127.0.0.1:9/jira"),
                ("secret_name", "X-Api-Key"),
                ("secret_value", "very-secret-value-123"),
                ("csrf", &p.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = h.get(&p.cookie, "/console/servers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("X-Api-Key"));
    assert!(
        !page.contains("very-secret-value-123"),
        "secrets are write-only"
    );
    assert!(page.contains("a, b, c"), "github's live catalog");

    // Both orgs' keys lose github when it is switched off everywhere.
    for org in ["acme", "globex"] {
        let (status, _) = h
            .post(
                &p.cookie,
                &format!("/console/orgs/{org}/keys"),
                &[("name", "k"), ("csrf", &p.csrf)],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, page) = h
        .get(&p.cookie, "/console/servers/github/switch?enabled=false")
        .await;
    assert!(page.contains("<strong>2</strong> principal(s)"), "{page}");
    assert!(
        page.contains("github: a, b, c") && page.contains("github: a, b"),
        "{page}"
    );
    let (status, _) = h
        .post(
            &p.cookie,
            "/console/servers/github/switch",
            &[("enabled", "false"), ("csrf", &p.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        !h.state
            .snapshot()
            .servers()
            .find(|s| s.slug == "github")
            .unwrap()
            .enabled
    );
    let (status, page) = h.get(&p.cookie, "/console/replicas").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("(this one)"), "{page}");
    let (status, page) = h
        .post(
            &p.cookie,
            "/console/admin-tokens",
            &[("name", "second"), ("csrf", &p.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-testid=\"token-secret\""));
}

#[tokio::test]
async fn org_servers_go_through_the_same_egress_rules_and_grants() {
    let h = start(ConsoleConfig::default()).await;
    let org = h.sign_in(&h.acme_token).await;
    // An org admin's URL must pass the platform's egress policy.
    let (status, body) = h
        .post(
            &org.cookie,
            "/console/orgs/acme/servers",
            &[
                ("slug", "internal"),
                ("url", "http://127.0.0.1:9/mcp"),
                ("csrf", &org.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("upstream_url_forbidden"), "{body}");
    // The platform may; the org admin then grants it to the org.
    let p = h.sign_in(PLATFORM_TOKEN).await;
    let (status, _) = h
        .post(
            &p.cookie,
            "/console/orgs/acme/servers",
            &[
                ("slug", "internal"),
                ("url", "http://127.0.0.1:9/mcp"),
                ("secret_name", "X-Key"),
                ("secret_value", "hidden-value-456"),
                ("csrf", &p.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = h.get(&org.cookie, "/console/orgs/acme").await;
    assert!(
        page.contains("aria-label=\"Grant internal to the org\""),
        "{page}"
    );
    assert!(!page.contains("hidden-value-456"));
    let g = h.sign_in(&h.globex_token).await;
    let (status, _) = h
        .post(
            &g.cookie,
            "/console/orgs/acme/servers/internal/grant",
            &[("csrf", &g.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h
        .post(
            &org.cookie,
            "/console/orgs/acme/servers/internal/grant",
            &[("csrf", &org.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let snap = h.state.snapshot();
    let acme = snap.org_by_slug("acme").unwrap().id;
    let internal = snap.server_for_org(acme, "internal").unwrap().id;
    assert!(snap.org_grant(acme, internal).unwrap().enabled);
    let (_, page) = h.get(&org.cookie, "/console/orgs/acme").await;
    assert!(page.contains("<tr data-server=\"internal\">"), "{page}");
}

#[tokio::test]
async fn a_platform_admin_edits_a_server_and_its_secrets_stay_write_only() {
    let h = start(ConsoleConfig::default()).await;
    let org = h.sign_in(&h.acme_token).await;
    let (status, _) = h.get(&org.cookie, "/console/servers/github/edit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .post(
            &org.cookie,
            "/console/servers/github/edit",
            &[("url", "http://127.0.0.1:9/other"), ("csrf", &org.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let p = h.sign_in(PLATFORM_TOKEN).await;
    let (status, page) = h.get(&p.cookie, "/console/servers/github/edit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("value=\"http://127.0.0.1:9/mcp\""), "{page}");
    let (status, _) = h
        .post(
            &p.cookie,
            "/console/servers/github/edit",
            &[
                ("name", "GitHub"),
                ("url", "http://127.0.0.1:9/v2"),
                ("timeout_ms", "4000"),
                ("replace_secrets", "true"),
                ("secret_name", "Authorization"),
                ("secret_value", "Bearer edited-secret-456"),
                ("csrf", &p.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let sys = Admin::system("test");
    let view = ops::get_server(&h.state, &sys, None, "github")
        .await
        .unwrap();
    assert_eq!(view.name, "GitHub");
    assert_eq!(view.timeout_ms, 4000);
    assert!(
        matches!(&view.transport, TransportSpec::Http { url } if url == "http://127.0.0.1:9/v2")
    );
    assert_eq!(view.secret_header_names, vec!["Authorization".to_owned()]);
    for path in ["/console/servers", "/console/servers/github/edit"] {
        let (_, page) = h.get(&p.cookie, path).await;
        assert!(page.contains("Authorization"), "{path}");
        assert!(
            !page.contains("edited-secret-456"),
            "{path}: secrets are write-only"
        );
    }

    // Saving without "replace" keeps the secrets; a bad timeout is refused.
    let (status, _) = h
        .post(
            &p.cookie,
            "/console/servers/github/edit",
            &[("url", "http://127.0.0.1:9/v3"), ("csrf", &p.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let view = ops::get_server(&h.state, &sys, None, "github")
        .await
        .unwrap();
    assert_eq!(view.secret_header_names, vec!["Authorization".to_owned()]);
    let (status, body) = h
        .post(
            &p.cookie,
            "/console/servers/github/edit",
            &[
                ("url", "http://127.0.0.1:9/v3"),
                ("timeout_ms", "soon"),
                ("csrf", &p.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid_input"));
    // A missing CSRF token changes nothing.
    let (status, _) = h
        .post(
            &p.cookie,
            "/console/servers/github/edit",
            &[("url", "http://127.0.0.1:9/evil")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let view = ops::get_server(&h.state, &sys, None, "github")
        .await
        .unwrap();
    assert!(
        matches!(&view.transport, TransportSpec::Http { url } if url == "http://127.0.0.1:9/v3")
    );
}

#[tokio::test]
async fn an_org_admin_disables_and_enables_an_end_user_after_confirming() {
    let h = start(ConsoleConfig::default()).await;
    let acme = h.sign_in(&h.acme_token).await;
    let (status, _) = h
        .post(
            &acme.cookie,
            "/console/orgs/acme/end-users",
            &[("external_id", "dave@acme"), ("csrf", &acme.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = h.get(&acme.cookie, "/console/orgs/acme/end-users").await;
    assert!(
        page.contains("data-confirm=\"Disable end user dave@acme?"),
        "{page}"
    );
    let path = "/console/orgs/acme/end-users/dave%40acme/disabled";

    // Another org's admin, and a post without the CSRF token, change nothing.
    let globex = h.sign_in(&h.globex_token).await;
    let (status, _) = h
        .post(
            &globex.cookie,
            path,
            &[("disabled", "true"), ("csrf", &globex.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = h.post(&acme.cookie, path, &[("disabled", "true")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let sys = Admin::system("test");
    let user = ops::get_end_user(&h.state, &sys, "acme", "dave@acme")
        .await
        .unwrap();
    assert!(!user.disabled);

    let (status, _) = h
        .post(
            &acme.cookie,
            path,
            &[("disabled", "true"), ("csrf", &acme.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let user = ops::get_end_user(&h.state, &sys, "acme", "dave@acme")
        .await
        .unwrap();
    assert!(user.disabled);
    let (_, page) = h.get(&acme.cookie, "/console/orgs/acme/end-users").await;
    assert!(
        page.contains("data-testid=\"end-user-status\">disabled<"),
        "{page}"
    );
    let (status, _) = h
        .post(
            &acme.cookie,
            path,
            &[("disabled", "maybe"), ("csrf", &acme.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = h
        .post(
            &acme.cookie,
            path,
            &[("disabled", "false"), ("csrf", &acme.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let user = ops::get_end_user(&h.state, &sys, "acme", "dave@acme")
        .await
        .unwrap();
    assert!(!user.disabled);
}
