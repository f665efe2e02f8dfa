//! Each person's own upstream credentials (migration 0007), on SQLite and
//! PostgreSQL: encrypted at rest, cascades that delete them and queue their
//! upstream revocation, single-use consents.

mod common;

use common::{create_org, http, open, Backend};
use warden_policy::{EndUserId, OrgId, ServerId, ToolFilter};
use warden_store::*;

const ACCESS: &str = "at-VERY-SECRET-access-alice";
const REFRESH: &str = "rt-VERY-SECRET-refresh-alice";

async fn server(store: &Store, slug: &str) -> ServerId {
    store
        .create_server(
            "root",
            NewServer {
                slug: slug.into(),
                owner_org: None,
                name: String::new(),
                transport: http("http://127.0.0.1:9/mcp"),
                secret_headers: Default::default(),
                enabled: true,
                timeout_ms: 5_000,
                egress_restricted: false,
            },
        )
        .await
        .unwrap()
        .value
        .id
}

async fn grant(store: &Store, org: OrgId, server: ServerId) {
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
}

async fn person(store: &Store, org: OrgId, id: &str) -> EndUserId {
    store
        .create_end_user(
            "root",
            NewEndUser {
                org,
                external_id: id.into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value
        .id
}

fn oauth() -> UpstreamAuthInput {
    UpstreamAuthInput {
        config: UpstreamAuthConfig::OauthPerUser {
            authorization_server: Some("https://as.example".into()),
            scopes: vec!["read".into()],
            client_id: Some("warden".into()),
        },
        client_secret: Some(Secret::new("client-SECRET-value")),
    }
}

fn new_cred(org: OrgId, end_user: EndUserId, server: ServerId, tag: &str) -> NewUserCredential {
    NewUserCredential {
        org,
        end_user,
        server,
        tokens: TokenSet {
            access_token: Secret::new(format!("{ACCESS}-{tag}")),
            refresh_token: Some(Secret::new(format!("{REFRESH}-{tag}"))),
            expires_at_ms: Some(4_000_000_000_000),
            scopes: "read".into(),
        },
        token_endpoint: "https://as.example/token".into(),
        revocation_endpoint: Some("https://as.example/revoke".into()),
        client_id: "warden".into(),
    }
}

/// Every text column of the tables that hold secrets, concatenated.
async fn raw_dump(url: &str) -> String {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut out = String::new();
    for (table, cols) in [
        ("user_credentials", "access_token, refresh_token"),
        ("credential_revocations", "access_token, refresh_token"),
        ("server_upstream_auth", "config, client_secret"),
        ("audit_log", "before_json, after_json"),
    ] {
        let sql = format!("SELECT {cols} FROM {table}");
        for row in sqlx::query(&sql).fetch_all(&pool).await.unwrap() {
            use sqlx::Row;
            for i in 0..2 {
                if let Ok(Some(v)) = row.try_get::<Option<String>, _>(i) {
                    out.push_str(&v);
                    out.push('\n');
                }
            }
        }
    }
    out
}

async fn count(url: &str, table: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .unwrap()
}

async fn credentials_lifecycle(backend: Backend) {
    let (db, store) = open(backend).await;
    let acme = create_org(&store, "root", "acme").await.value.id;
    let github = server(&store, "github").await;
    let mail = server(&store, "mail").await;
    grant(&store, acme, github).await;
    grant(&store, acme, mail).await;
    let alice = person(&store, acme, "alice").await;
    let bob = person(&store, acme, "bob").await;

    // Upstream auth: validated, a policy write, secret write-only.
    let bad = UpstreamAuthInput {
        config: UpstreamAuthConfig::OauthPerUser {
            authorization_server: Some("ftp://x".into()),
            scopes: vec![],
            client_id: None,
        },
        client_secret: None,
    };
    assert!(matches!(
        store.set_upstream_auth("root", github, Some(bad)).await,
        Err(StoreError::BadInput(_))
    ));
    let before = store.revision().await.unwrap();
    let rev = store
        .set_upstream_auth("root", github, Some(oauth()))
        .await
        .unwrap();
    assert_eq!(rev, before + 1);
    let auth = store.upstream_auth(github).await.unwrap().unwrap();
    assert_eq!(
        auth.client_secret.as_ref().unwrap().expose(),
        "client-SECRET-value"
    );
    assert_eq!(auth.config.mode(), "oauth_per_user");
    let view = serde_json::to_string(&UpstreamAuthView::from(&auth)).unwrap();
    assert!(!view.contains("client-SECRET"), "{view}");
    assert!(store.upstream_auth(mail).await.unwrap().is_none());
    store
        .set_upstream_auth("root", mail, Some(oauth()))
        .await
        .unwrap();

    // Dynamic registration is kept, encrypted.
    store
        .save_registered_client(
            github,
            &RegisteredClient {
                issuer: "https://as.example".into(),
                client_id: "dyn-1".into(),
                client_secret: Some(Secret::new("dyn-SECRET")),
            },
        )
        .await
        .unwrap();
    let auth = store.upstream_auth(github).await.unwrap().unwrap();
    assert_eq!(auth.registered.as_ref().unwrap().client_id, "dyn-1");
    assert_eq!(
        auth.registered.unwrap().client_secret.unwrap().expose(),
        "dyn-SECRET"
    );

    // Tokens per (end user, server).
    let a = store
        .put_user_credential("end-user:alice", new_cred(acme, alice, github, "gh"))
        .await
        .unwrap();
    store
        .put_user_credential("end-user:alice", new_cred(acme, alice, mail, "mail"))
        .await
        .unwrap();
    store
        .put_user_credential("end-user:bob", new_cred(acme, bob, github, "bob"))
        .await
        .unwrap();
    let got = store.user_credential(alice, github).await.unwrap().unwrap();
    assert_eq!(got.tokens.access_token.expose(), format!("{ACCESS}-gh"));
    assert_eq!(
        got.tokens.refresh_token.as_ref().unwrap().expose(),
        format!("{REFRESH}-gh")
    );
    assert_eq!(
        store
            .user_credential(bob, github)
            .await
            .unwrap()
            .unwrap()
            .tokens
            .access_token
            .expose(),
        format!("{ACCESS}-bob")
    );

    // Nothing in clear in the database, the audit log included.
    let dump = raw_dump(db.url()).await;
    assert!(!dump.contains("VERY-SECRET"), "token in clear: {dump}");
    assert!(!dump.contains("client-SECRET"), "client secret in clear");
    assert!(!dump.contains("dyn-SECRET"), "client secret in clear");
    assert!(
        dump.contains("\"end_user_external_id\":\"alice\""),
        "connect audited"
    );

    // A ciphertext moved to another person's row does not decrypt.
    {
        let pool = sqlx::AnyPool::connect(db.url()).await.unwrap();
        sqlx::query(
            "UPDATE user_credentials SET access_token = \
             (SELECT access_token FROM user_credentials WHERE end_user_id = $1 AND server_id = $2) \
             WHERE end_user_id = $3 AND server_id = $2",
        )
        .bind(alice.0)
        .bind(github.0)
        .bind(bob.0)
        .execute(&pool)
        .await
        .unwrap();
        assert!(store.user_credential(bob, github).await.is_err());
        store
            .put_user_credential("end-user:bob", new_cred(acme, bob, github, "bob2"))
            .await
            .unwrap();
    }

    // Refresh replaces the tokens; a non-rotating AS keeps the old refresh token.
    let fresh = TokenSet {
        access_token: Secret::new("at-new"),
        refresh_token: None,
        expires_at_ms: Some(4_100_000_000_000),
        scopes: "read".into(),
    };
    assert!(store.refresh_user_credential(&got, &fresh).await.unwrap());
    let now = store.user_credential(alice, github).await.unwrap().unwrap();
    assert_eq!(now.tokens.access_token.expose(), "at-new");
    assert_eq!(
        now.tokens.refresh_token.unwrap().expose(),
        format!("{REFRESH}-gh")
    );

    // Lists: metadata only.
    let all = store.list_user_credentials(acme, None).await.unwrap();
    assert_eq!(all.len(), 3);
    let mine = store
        .list_user_credentials(acme, Some(alice))
        .await
        .unwrap();
    assert_eq!(
        mine.iter()
            .map(|c| c.server_slug.as_str())
            .collect::<Vec<_>>(),
        ["github", "mail"]
    );
    assert!(!serde_json::to_string(&all).unwrap().contains("SECRET"));

    // Only one's own: bob cannot disconnect alice's; another org cannot either.
    let other = create_org(&store, "root", "globex").await.value.id;
    assert!(store
        .delete_user_credential("end-user:bob", acme, Some(bob), a.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .delete_user_credential("admin", other, None, a.id)
        .await
        .unwrap()
        .is_none());
    let queued = count(db.url(), "credential_revocations").await;
    // The replaced bob credentials were queued for revocation.
    assert_eq!(queued, 1);
    // Alice disconnects: row gone, revocation queued with her tokens.
    let gone = store
        .delete_user_credential("end-user:alice", acme, Some(alice), a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.server_slug, "github");
    assert!(store
        .user_credential(alice, github)
        .await
        .unwrap()
        .is_none());
    // Bob's replaced row held a ciphertext that is not his (tampered
    // above): it cannot be decrypted, so it is dropped, not sent.
    let pending = store.pending_revocations(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].access_token.expose(), "at-new");
    assert_eq!(
        pending[0].refresh_token.as_ref().unwrap().expose(),
        format!("{REFRESH}-gh")
    );
    assert_eq!(pending[0].revocation_endpoint, "https://as.example/revoke");
    assert_eq!(count(db.url(), "credential_revocations").await, 1);
    // A failed attempt is retried until the last one, then dropped.
    store
        .finish_revocation(pending[0].id, false, 2)
        .await
        .unwrap();
    assert_eq!(count(db.url(), "credential_revocations").await, 1);
    store
        .finish_revocation(pending[0].id, false, 2)
        .await
        .unwrap();
    assert_eq!(count(db.url(), "credential_revocations").await, 0);

    // Cascades: deleting the grant, the end user, the server.
    store
        .put_user_credential("end-user:alice", new_cred(acme, alice, github, "again"))
        .await
        .unwrap();
    store.delete_org_grant("root", acme, mail).await.unwrap();
    assert!(store.user_credential(alice, mail).await.unwrap().is_none());
    assert_eq!(count(db.url(), "credential_revocations").await, 1);
    store.delete_end_user("root", bob).await.unwrap();
    assert!(store.user_credential(bob, github).await.unwrap().is_none());
    assert_eq!(count(db.url(), "credential_revocations").await, 2);
    store.delete_server("root", github).await.unwrap();
    assert_eq!(count(db.url(), "user_credentials").await, 0);
    assert_eq!(count(db.url(), "server_upstream_auth").await, 1);
    assert_eq!(count(db.url(), "credential_revocations").await, 3);
    let tokens: Vec<String> = store
        .pending_revocations(10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.access_token.expose().to_owned())
        .collect();
    assert_eq!(
        tokens,
        [
            format!("{ACCESS}-mail"),
            format!("{ACCESS}-bob2"),
            format!("{ACCESS}-again")
        ]
    );

    // Tokens for a server the org is not granted are refused.
    let ungranted = server(&store, "ungranted").await;
    assert!(matches!(
        store
            .put_user_credential("x", new_cred(acme, alice, ungranted, "x"))
            .await,
        Err(StoreError::Dangling { .. })
    ));

    // Switching a server back to static deletes its tokens.
    grant(&store, acme, ungranted).await;
    store
        .set_upstream_auth("root", ungranted, Some(oauth()))
        .await
        .unwrap();
    store
        .put_user_credential("x", new_cred(acme, alice, ungranted, "y"))
        .await
        .unwrap();
    store
        .set_upstream_auth("root", ungranted, None)
        .await
        .unwrap();
    assert!(store
        .user_credential(alice, ungranted)
        .await
        .unwrap()
        .is_none());
    assert!(store.upstream_auth(ungranted).await.unwrap().is_none());
}

async fn consents_are_single_use(backend: Backend) {
    let (_db, store) = open(backend).await;
    let acme = create_org(&store, "root", "acme").await.value.id;
    let github = server(&store, "github").await;
    grant(&store, acme, github).await;
    let alice = person(&store, acme, "alice").await;
    let target = ConsentTarget {
        org: acme,
        end_user: alice,
        server: github,
    };
    let far = 4_000_000_000_000;
    // Signed in through an identity provider: opened once the browser
    // signed in there as the same person.
    let sign_in = ConsentBinding::SignIn("corp".into());
    store
        .create_consent(target, &sign_in, "link-1", far)
        .await
        .unwrap();
    store
        .create_consent(target, &sign_in, "link-old", 1)
        .await
        .unwrap();
    let verifier = Secret::new("verifier-abc");
    assert!(store
        .open_consent("link-1", "state-0", &verifier)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.prove_consent_sign_in("link-1", false).await.unwrap(),
        KeyCheck::Refused {
            left: MAX_CONSENT_ATTEMPTS - 1
        }
    );
    assert_eq!(
        store.prove_consent_sign_in("link-1", true).await.unwrap(),
        KeyCheck::Proven
    );
    assert_eq!(
        store.prove_consent_sign_in("link-old", true).await.unwrap(),
        KeyCheck::Unknown
    );
    assert_eq!(
        store
            .open_consent("link-1", "state-1", &verifier)
            .await
            .unwrap(),
        Some(target)
    );
    // Opened once only; an expired or unknown link is nothing.
    assert!(store
        .open_consent("link-1", "state-2", &verifier)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .open_consent("link-old", "state-3", &verifier)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .open_consent("nope", "state-4", &verifier)
        .await
        .unwrap()
        .is_none());
    let (t, v) = store.take_consent("state-1").await.unwrap().unwrap();
    assert_eq!(t, target);
    assert_eq!(v.expose(), "verifier-abc");
    // The callback is single-use too.
    assert!(store.take_consent("state-1").await.unwrap().is_none());
    // Deleting the person deletes their consents in progress.
    store
        .create_consent(target, &sign_in, "link-2", far)
        .await
        .unwrap();
    store.delete_end_user("root", alice).await.unwrap();
    assert!(store
        .open_consent("link-2", "s", &verifier)
        .await
        .unwrap()
        .is_none());
}

/// Migration 0008: a consent link issued through a service key opens only
/// once that key was presented; wrong keys are counted and the fifth spends
/// the link; a revoked key proves nothing.
async fn consents_are_bound_to_the_asserting_key(backend: Backend) {
    let (_db, store) = open(backend).await;
    let acme = create_org(&store, "root", "acme").await.value.id;
    let github = server(&store, "github").await;
    grant(&store, acme, github).await;
    let alice = person(&store, acme, "alice").await;
    let target = ConsentTarget {
        org: acme,
        end_user: alice,
        server: github,
    };
    let key = |name: &'static str| NewKey {
        org: acme,
        name: name.into(),
        team: None,
        agent: None,
        scope: None,
        expires_at_ms: None,
        may_assert_end_user: true,
        may_assert_agent: false,
    };
    let assistant = store
        .create_key("root", key("assistant"))
        .await
        .unwrap()
        .value;
    let other = store.create_key("root", key("other")).await.unwrap().value;
    let bound = ConsentBinding::Key(assistant.key.id);
    let far = 4_000_000_000_000;
    let verifier = Secret::new("v");
    let right = token_digest(assistant.token.expose());
    let wrong = token_digest(other.token.expose());

    store
        .create_consent(target, &bound, "link-k", far)
        .await
        .unwrap();
    let pending = store.pending_consent("link-k").await.unwrap().unwrap();
    assert_eq!(
        (pending.binding.clone(), pending.proven, pending.attempts),
        (bound.clone(), false, 0)
    );
    // Not opened before the key is presented.
    assert!(store
        .open_consent("link-k", "s-k", &verifier)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.prove_consent_key("link-k", &wrong).await.unwrap(),
        KeyCheck::Refused {
            left: MAX_CONSENT_ATTEMPTS - 1
        }
    );
    assert_eq!(
        store.prove_consent_key("link-k", &right).await.unwrap(),
        KeyCheck::Proven
    );
    assert!(
        store
            .pending_consent("link-k")
            .await
            .unwrap()
            .unwrap()
            .proven
    );
    assert_eq!(
        store
            .open_consent("link-k", "s-k", &verifier)
            .await
            .unwrap(),
        Some(target)
    );
    // Opened: no more proving.
    assert_eq!(
        store.prove_consent_key("link-k", &right).await.unwrap(),
        KeyCheck::Unknown
    );

    // Five wrong keys spend a link; the right one afterwards proves nothing.
    store
        .create_consent(target, &bound, "link-spent", far)
        .await
        .unwrap();
    for left in (0..MAX_CONSENT_ATTEMPTS).rev() {
        assert_eq!(
            store.prove_consent_key("link-spent", &wrong).await.unwrap(),
            KeyCheck::Refused { left }
        );
    }
    assert_eq!(
        store.prove_consent_key("link-spent", &right).await.unwrap(),
        KeyCheck::Unknown
    );
    assert!(store.pending_consent("link-spent").await.unwrap().is_none());

    // A revoked key proves nothing (counted as a wrong one).
    store
        .create_consent(target, &bound, "link-r", far)
        .await
        .unwrap();
    store.revoke_key("root", assistant.key.id).await.unwrap();
    assert_eq!(
        store.prove_consent_key("link-r", &right).await.unwrap(),
        KeyCheck::Refused {
            left: MAX_CONSENT_ATTEMPTS - 1
        }
    );
    // A link bound to a sign-in cannot be proven with a key.
    store
        .create_consent(
            target,
            &ConsentBinding::SignIn("corp".into()),
            "link-s",
            far,
        )
        .await
        .unwrap();
    assert_eq!(
        store.prove_consent_key("link-s", &wrong).await.unwrap(),
        KeyCheck::Unknown
    );
    // Nor a key-bound link with a sign-in; someone else signing in five
    // times spends a sign-in-bound link.
    assert_eq!(
        store.prove_consent_sign_in("link-r", true).await.unwrap(),
        KeyCheck::Unknown
    );
    for left in (0..MAX_CONSENT_ATTEMPTS).rev() {
        assert_eq!(
            store.prove_consent_sign_in("link-s", false).await.unwrap(),
            KeyCheck::Refused { left }
        );
    }
    assert!(store.pending_consent("link-s").await.unwrap().is_none());
    // Deleting the key deletes the consents it bound.
    store.delete_key("root", assistant.key.id).await.unwrap();
    assert!(store.pending_consent("link-r").await.unwrap().is_none());
}

on_both_backends!(
    credentials_lifecycle,
    consents_are_single_use,
    consents_are_bound_to_the_asserting_key
);
