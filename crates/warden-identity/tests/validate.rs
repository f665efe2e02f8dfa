//! Every way a token is refused, against a real JWKS served on loopback.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use warden_identity::{
    AdminGroups, AdminRole, ClientAgent, GroupTeam, Identities, IdentitiesOptions, IdentityError,
    OrgBinding, ProviderConfig,
};

const AUD: &str = "https://warden.example/mcp";

fn provider(issuer: &str, org: &str) -> ProviderConfig {
    ProviderConfig {
        slug: format!("idp-{org}"),
        issuer: issuer.to_owned(),
        jwks_uri: None,
        audiences: vec![],
        user_claim: "sub".into(),
        groups_claim: Some("groups".into()),
        group_teams: vec![
            GroupTeam {
                group: "eng".into(),
                org: org.into(),
                team: "platform".into(),
            },
            GroupTeam {
                group: "staff".into(),
                org: org.into(),
                team: "everyone".into(),
            },
        ],
        client_agents: vec![ClientAgent {
            client_id: "ide".into(),
            agent: "coder".into(),
        }],
        required_scopes: vec!["mcp".into()],
        orgs: OrgBinding::Org { org: org.into() },
        admin_groups: AdminGroups {
            platform_admin: Some("warden-admins".into()),
            org_admin: Some("org-admins".into()),
        },
        console_client_id: None,
    }
}

fn options() -> IdentitiesOptions {
    IdentitiesOptions {
        min_refetch: Duration::from_millis(200),
        ..IdentitiesOptions::default()
    }
}

async fn setup() -> (Idp, Identities) {
    let idp = idp(vec![jwk(JWK_A)]).await;
    let ids = Identities::new(vec![provider(&idp.issuer, "acme")], options()).unwrap();
    (idp, ids)
}

async fn refused(ids: &Identities, token: &str) -> IdentityError {
    ids.validate(token)
        .await
        .expect_err("token must be refused")
}

#[tokio::test]
async fn a_good_token_maps_to_org_user_team_agent_and_is_cached() {
    let (idp, ids) = setup().await;
    let mut c = claims(&idp.issuer, AUD, "alice");
    c["groups"] = json!(["staff", "eng", "org-admins"]);
    let t = sign_rs256(KEY_A, "key-a", &c);
    let id = ids.validate(&t).await.unwrap();
    assert_eq!(id.org, "acme");
    assert_eq!(id.user, "alice");
    // First match in the mapping's order, not the token's.
    assert_eq!(id.team.as_deref(), Some("platform"));
    assert_eq!(id.agent.as_deref(), Some("coder"));
    assert_eq!(id.admin, Some(AdminRole::Org));
    assert!(id.audience_matches(&[AUD]));
    assert!(id.audience_matches(&["https://warden.example/mcp/"]));
    assert!(!id.audience_matches(&["https://other.example/mcp"]));
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    // Cached: the same Arc, no second fetch.
    let again = ids.validate(&t).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&id, &again));
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_group_no_team_and_unknown_client_no_agent() {
    let (idp, ids) = setup().await;
    let mut c = claims(&idp.issuer, AUD, "bob");
    c["client_id"] = json!("other");
    let id = ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    assert_eq!(id.team, None);
    assert_eq!(id.agent, None);
    assert_eq!(id.admin, None);
}

#[tokio::test]
async fn expired_and_not_yet_valid() {
    let (idp, ids) = setup().await;
    let mut c = claims(&idp.issuer, AUD, "alice");
    c["exp"] = json!(now() - 120);
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_expired");
    // Within the leeway still passes.
    c["exp"] = json!(now() - 5);
    ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    let mut c = claims(&idp.issuer, AUD, "alice");
    c["nbf"] = json!(now() + 600);
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_not_yet_valid");
}

#[tokio::test]
async fn wrong_issuer_is_unknown() {
    let (idp, ids) = setup().await;
    let c = claims("https://evil.example", AUD, "alice");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_issuer_unknown");
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        0,
        "no fetch for a stranger"
    );
}

#[tokio::test]
async fn wrong_audience_is_refused_by_the_endpoint_check() {
    let (idp, ids) = setup().await;
    let c = claims(&idp.issuer, "https://other-resource.example/mcp", "alice");
    let id = ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    assert!(!id.audience_matches(&[AUD]));
    // A configured extra audience is accepted anywhere.
    let mut p = provider(&idp.issuer, "acme");
    p.audiences = vec!["api://warden".into()];
    let ids = Identities::new(vec![p], options()).unwrap();
    let c = claims(&idp.issuer, "api://warden", "alice");
    let id = ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    assert!(id.audience_matches(&[AUD]));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (idp, ids) = setup().await;
    let c = claims(&idp.issuer, AUD, "alice");
    let t = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"key-a"}"#),
        URL_SAFE_NO_PAD.encode(c.to_string())
    );
    assert_eq!(refused(&ids, &t).await.code(), "token_alg_not_allowed");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let (idp, ids) = setup().await;
    // Warm the key cache so the refusal is not a missing key.
    ids.validate(&sign_rs256(KEY_A, "key-a", &claims(&idp.issuer, AUD, "x")))
        .await
        .unwrap();
    let c = claims(&idp.issuer, AUD, "mallory");
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("key-a".into());
    let t = jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(KEY_A_PUB.as_bytes())).unwrap();
    assert_eq!(refused(&ids, &t).await.code(), "token_alg_not_allowed");
    // Also with a key type mismatch that is not HMAC: ES256 on an RSA key.
    let forged = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"key-a"}"#),
        URL_SAFE_NO_PAD.encode(c.to_string()),
        URL_SAFE_NO_PAD.encode([0u8; 64])
    );
    assert_eq!(refused(&ids, &forged).await.code(), "token_alg_not_allowed");
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_is_rate_limited() {
    let (idp, ids) = setup().await;
    let c = claims(&idp.issuer, AUD, "alice");
    ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    // B is not published: one refetch, then refused.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let tb = sign_rs256(KEY_B, "key-b", &c);
    assert_eq!(refused(&ids, &tb).await.code(), "token_key_unknown");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    // A burst of made-up kids inside min_refetch fetches nothing more.
    for i in 0..20 {
        let t = sign_rs256(KEY_B, &format!("made-up-{i}"), &c);
        assert_eq!(refused(&ids, &t).await.code(), "token_key_unknown");
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    // Rotation: the provider now publishes B; after min_refetch B works.
    idp.keys.lock().unwrap().push(jwk(JWK_B));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let id = ids.validate(&tb).await.unwrap();
    assert_eq!(id.user, "alice");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_key_of_another_provider_with_a_known_kid_fails_the_signature() {
    let (idp, ids) = setup().await;
    let c = claims(&idp.issuer, AUD, "alice");
    // Signed with B but claiming A's kid.
    let t = sign_rs256(KEY_B, "key-a", &c);
    assert_eq!(refused(&ids, &t).await.code(), "token_signature_invalid");
}

#[tokio::test]
async fn tampered_payload_fails_the_signature() {
    let (idp, ids) = setup().await;
    let t = sign_rs256(KEY_A, "key-a", &claims(&idp.issuer, AUD, "alice"));
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    let mut c = claims(&idp.issuer, AUD, "root");
    c["groups"] = json!(["warden-admins"]);
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    assert_eq!(
        refused(&ids, &parts.join(".")).await.code(),
        "token_signature_invalid"
    );
}

#[tokio::test]
async fn missing_scope_is_insufficient_scope() {
    let (idp, ids) = setup().await;
    let mut c = claims(&idp.issuer, AUD, "alice");
    c["scope"] = json!("openid");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "insufficient_scope");
    assert_eq!(e.oauth_error(), Some("insufficient_scope"));
    // `scp` as an array counts too.
    c["scp"] = json!(["mcp"]);
    ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
}

/// Two providers, each its own org: a token of org A's IdP cannot act in
/// org B, whatever it claims.
#[tokio::test]
async fn org_a_token_is_never_org_b() {
    let idp_a = idp(vec![jwk(JWK_A)]).await;
    let idp_b = idp(vec![jwk(JWK_B)]).await;
    let ids = Identities::new(
        vec![
            provider(&idp_a.issuer, "org-a"),
            provider(&idp_b.issuer, "org-b"),
        ],
        options(),
    )
    .unwrap();
    let mut c = claims(&idp_a.issuer, AUD, "alice");
    c["org"] = json!("org-b");
    let id = ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    assert_eq!(id.org, "org-a", "the binding, not a claim, names the org");
    // Claiming B's issuer with A's key: B's keys do not verify it.
    let c = claims(&idp_b.issuer, AUD, "alice");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-b", &c)).await;
    assert_eq!(e.code(), "token_signature_invalid");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_key_unknown");
}

/// A provider serving two orgs by a claim: an unlisted value is refused,
/// and a group mapped to a team of the other org is refused, not ignored.
#[tokio::test]
async fn multi_org_provider_by_claim() {
    let idp = idp(vec![jwk(JWK_A)]).await;
    let mut p = provider(&idp.issuer, "org-a");
    p.orgs = OrgBinding::Claim {
        claim: "tenant".into(),
        values: BTreeMap::from([
            ("t-a".to_owned(), "org-a".to_owned()),
            ("t-b".to_owned(), "org-b".to_owned()),
        ]),
    };
    p.group_teams = vec![
        GroupTeam {
            group: "b-eng".into(),
            org: "org-b".into(),
            team: "eng".into(),
        },
        GroupTeam {
            group: "a-eng".into(),
            org: "org-a".into(),
            team: "eng".into(),
        },
    ];
    let ids = Identities::new(vec![p], options()).unwrap();
    let mut c = claims(&idp.issuer, AUD, "alice");
    c["tenant"] = json!("t-b");
    c["groups"] = json!(["b-eng"]);
    let id = ids.validate(&sign_rs256(KEY_A, "key-a", &c)).await.unwrap();
    assert_eq!(
        (id.org.as_str(), id.team.as_deref()),
        ("org-b", Some("eng"))
    );
    c["tenant"] = json!("t-a");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_team_other_org");
    c["tenant"] = json!("t-zzz");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_org_not_bound");
    c.as_object_mut().unwrap().remove("tenant");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_org_not_bound");
}

#[tokio::test]
async fn unreachable_provider_is_unavailable_not_invalid() {
    let mut p = provider("http://127.0.0.1:9", "acme");
    p.jwks_uri = Some("http://127.0.0.1:9/jwks".into());
    let ids = Identities::new(vec![p], options()).unwrap();
    let c = claims("http://127.0.0.1:9", AUD, "alice");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "idp_unavailable");
    assert_eq!(e.oauth_error(), None);
}

#[tokio::test]
async fn missing_user_claim_and_garbage() {
    let (idp, ids) = setup().await;
    let mut c = claims(&idp.issuer, AUD, "alice");
    c.as_object_mut().unwrap().remove("sub");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_claim_missing");
    let mut c = claims(&idp.issuer, AUD, "alice");
    c.as_object_mut().unwrap().remove("exp");
    let e = refused(&ids, &sign_rs256(KEY_A, "key-a", &c)).await;
    assert_eq!(e.code(), "token_claim_missing");
    assert_eq!(refused(&ids, "a.b.c").await.code(), "token_malformed");
}

#[test]
fn configuration_is_checked() {
    let mut p = provider("https://idp.example", "acme");
    p.group_teams[0].org = "elsewhere".into();
    assert_eq!(p.validate().unwrap_err().code(), "idp_config_invalid");
    let mut p = provider("ftp://idp.example", "acme");
    assert!(p.validate().is_err());
    p.issuer = "https://idp.example".into();
    p.groups_claim = None;
    assert!(p.validate().is_err(), "group mappings need a groups claim");
    let a = provider("https://idp.example", "a");
    let b = provider("https://idp.example", "b");
    assert!(Identities::new(vec![a, b], IdentitiesOptions::default()).is_err());
}
