//! What the consent tests share: a real store (SQLite) with an org `acme`,
//! its person `alice`, and a server `notes` granted to it whose upstream
//! auth is `oauth_per_user` at a loopback stand-in authorization server
//! that serves only its RFC 8414 metadata (the tests stop at the redirect
//! to its authorization endpoint).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use warden_policy::{EndUserId, OrgId, ServerId, ToolFilter};
use warden_store::{
    NewEndUser, NewKey, NewOrg, NewServer, OrgGrant, Store, StoreOptions, Transport,
    UpstreamAuthConfig, UpstreamAuthInput,
};
use warden_testkit::TempSqlite;

pub struct Base {
    pub db: TempSqlite,
    pub store: Store,
    pub org: OrgId,
    pub alice: EndUserId,
    pub server: ServerId,
    pub upstream_url: String,
    /// The authorization server stand-in.
    pub issuer: String,
}

pub async fn base() -> Base {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let meta = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "code_challenge_methods_supported": ["S256"],
    });
    let as_router = Router::new().route(
        "/.well-known/oauth-authorization-server",
        get(move || {
            let meta = meta.clone();
            async move { Json(meta) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, as_router).await });

    let db = TempSqlite::new();
    let store = Store::open(db.url(), StoreOptions::new([7u8; 32]))
        .await
        .unwrap();
    let org = store
        .create_org(
            "root",
            NewOrg {
                slug: "acme".into(),
                name: String::new(),
            },
        )
        .await
        .unwrap()
        .value
        .id;
    let upstream_url = format!("{issuer}/mcp");
    let server = store
        .create_server(
            "root",
            NewServer {
                slug: "notes".into(),
                owner_org: None,
                name: String::new(),
                transport: Transport::Http {
                    url: upstream_url.clone(),
                },
                secret_headers: Default::default(),
                enabled: true,
                timeout_ms: 5_000,
                egress_restricted: false,
            },
        )
        .await
        .unwrap()
        .value
        .id;
    store
        .create_org_grant(
            "root",
            OrgGrant {
                org,
                server,
                enabled: true,
                filter: ToolFilter::All,
            },
        )
        .await
        .unwrap();
    let alice = person(&store, org, "alice").await;
    store
        .set_upstream_auth(
            "root",
            server,
            Some(UpstreamAuthInput {
                config: UpstreamAuthConfig::OauthPerUser {
                    authorization_server: Some(issuer.clone()),
                    scopes: vec!["notes".into()],
                    client_id: Some("warden".into()),
                },
                client_secret: None,
            }),
        )
        .await
        .unwrap();
    Base {
        db,
        store,
        org,
        alice,
        server,
        upstream_url,
        issuer,
    }
}

/// A person of `org` (end user `external_id`).
pub async fn person(store: &Store, org: OrgId, external_id: &str) -> EndUserId {
    store
        .create_end_user(
            "root",
            NewEndUser {
                org,
                external_id: external_id.into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value
        .id
}

/// A key of `org` that may assert end users.
pub fn key(org: OrgId, name: &str) -> NewKey {
    NewKey {
        org,
        name: name.into(),
        team: None,
        agent: None,
        scope: None,
        expires_at_ms: None,
        may_assert_end_user: true,
        may_assert_agent: false,
    }
}
