//! The consent link is bound to the person it was issued for
//! (docs/credentials.md, "Who may open a consent link"): a link issued to a
//! person asserted by a service key sends the browser to the authorization
//! server only after that key was presented on Warden's consent page.
//!
//! Real store (SQLite), the vault's real consent routes on a loopback
//! listener, a real HTTP client. The upstream's authorization server is a
//! loopback stand-in that serves only its RFC 8414 metadata (the test
//! stops at the redirect to its authorization endpoint; the e2e test
//! `e2e/tests/test_credentials.py` goes through a real one).

mod common;

use std::time::Duration;

use warden_store::Secret;
use warden_testkit::TempSqlite;
use warden_vault::{Caller, Credentials, UpstreamRef, Vault};

struct World {
    _db: TempSqlite,
    vault: Vault,
    warden: String,
    issuer: String,
    caller: Caller,
    server: UpstreamRef,
    key: String,
    other_key: String,
}

async fn world() -> World {
    let b = common::base().await;
    let assistant = b
        .store
        .create_key("root", common::key(b.org, "assistant"))
        .await
        .unwrap()
        .value;
    let other = b
        .store
        .create_key("root", common::key(b.org, "other"))
        .await
        .unwrap()
        .value;

    // Warden's consent routes on their own listener: the vault's public
    // URL is where they are.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let warden = format!("http://{}", listener.local_addr().unwrap());
    let vault = Vault::new(b.store, &warden).unwrap();
    let routes = warden_vault::routes(vault.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    World {
        _db: b.db,
        vault,
        warden,
        issuer: b.issuer,
        caller: Caller {
            org: b.org,
            key: assistant.key.id,
            end_user: Some(b.alice),
            sign_in: None,
        },
        server: UpstreamRef {
            id: b.server,
            slug: "notes".into(),
            url: Some(b.upstream_url),
        },
        key: assistant.token.expose().to_owned(),
        other_key: other.token.expose().to_owned(),
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn consent_url(w: &World, caller: &Caller) -> String {
    match w.vault.credentials_for(caller, &w.server).await.unwrap() {
        Credentials::NeedsConsent { url } => url,
        other => panic!("expected a consent link, got {other:?}"),
    }
}

async fn present(web: &reqwest::Client, url: &str, key: &str) -> reqwest::Response {
    web.post(url).form(&[("key", key)]).send().await.unwrap()
}

#[tokio::test]
async fn a_key_bound_link_opens_only_with_the_asserting_key() {
    let w = world().await;
    let web = browser();
    let url = consent_url(&w, &w.caller).await;
    assert!(url.starts_with(&format!("{}/connect/", w.warden)), "{url}");

    // Opening the link asks for the key; it does not leave Warden.
    let page = web.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("location").is_none());
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"name="key""#) && html.contains(r#"method="post""#),
        "{html}"
    );
    // It posts back to the link under Warden's public URL.
    assert!(html.contains(&format!(r#"action="{url}""#)), "{html}");

    // Another key of the same org (it may assert end users too) is refused.
    let wrong = present(&web, &url, &w.other_key).await;
    assert_eq!(wrong.status(), 403);
    let body = wrong.text().await.unwrap();
    assert!(body.contains("consent_key_refused"), "{body}");
    assert!(!body.contains(&w.other_key));

    // The key that asserted the person: on to the authorization server.
    let right = present(&web, &url, &w.key).await;
    assert_eq!(right.status(), 302);
    let to = right.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("{}/authorize?", w.issuer)), "{to}");
    let to = url::Url::parse(&to).unwrap();
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "warden");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q["state"].is_empty());

    // Single use: opened once.
    assert_eq!(web.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(present(&web, &url, &w.key).await.status(), 404);
}

#[tokio::test]
async fn five_wrong_keys_spend_the_link() {
    let w = world().await;
    let web = browser();
    let url = consent_url(&w, &w.caller).await;
    for left in (0..5).rev() {
        let resp = present(&web, &url, &format!("wk_guess-{left}")).await;
        assert_eq!(resp.status(), 403);
        let body = resp.text().await.unwrap();
        assert!(body.contains(&format!("{left} attempts left")), "{body}");
    }
    // Spent: the right key no longer opens it.
    assert_eq!(present(&web, &url, &w.key).await.status(), 404);
    assert_eq!(web.get(&url).send().await.unwrap().status(), 404);
    // A fresh link for the same person works with the right key.
    let again = consent_url(&w, &w.caller).await;
    assert_eq!(present(&web, &again, &w.key).await.status(), 302);
}

#[tokio::test]
async fn bad_input_on_the_consent_form_is_refused_plainly() {
    let w = world().await;
    let web = browser();
    let url = consent_url(&w, &w.caller).await;
    // Oversized key: refused without counting an attempt.
    let huge = "k".repeat(10_000);
    assert_eq!(present(&web, &url, &huge).await.status(), 403);
    // A malformed link is unknown.
    let resp = web
        .post(format!("{}/connect/not%20a%20link", w.warden))
        .form(&[("key", w.key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Still usable: the oversized key did not count.
    assert_eq!(present(&web, &url, &w.key).await.status(), 302);
}

#[tokio::test]
async fn a_signed_in_persons_link_is_not_key_bound() {
    let w = world().await;
    let web = browser();
    let signed_in = Caller {
        sign_in: Some(("corp".into(), Secret::new("idp-token"))),
        ..w.caller.clone()
    };
    let url = consent_url(&w, &signed_in).await;
    // No key form and no key opens it: it needs a sign-in at the provider
    // (tests/consent_sign_in.rs), which this vault has none of.
    let resp = web.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("consent_sign_in_unavailable"));
    let other = consent_url(&w, &signed_in).await;
    assert_eq!(present(&web, &other, &w.key).await.status(), 404);
}
