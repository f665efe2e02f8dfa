//! Identity providers and just-in-time sign-in provisioning, on SQLite and
//! PostgreSQL.

mod common;

use common::{create_org, open, Backend};
use warden_identity::{GroupTeam, OrgBinding, ProviderConfig};
use warden_policy::{OrgId, PolicyError, Scope};
use warden_store::*;

fn provider(slug: &str, issuer: &str, org: &str) -> ProviderConfig {
    ProviderConfig {
        slug: slug.into(),
        issuer: issuer.into(),
        jwks_uri: None,
        audiences: vec![],
        user_claim: "sub".into(),
        groups_claim: Some("groups".into()),
        group_teams: vec![GroupTeam {
            group: "eng".into(),
            org: org.into(),
            team: "eng".into(),
        }],
        client_agents: vec![],
        required_scopes: vec![],
        orgs: OrgBinding::Org { org: org.into() },
        admin_groups: Default::default(),
        console_client_id: None,
    }
}

async fn providers_and_provisioning(backend: Backend) {
    let (_db, store) = open(backend).await;
    let acme = create_org(&store, "root", "acme").await.value;
    let team = store
        .create_team(
            "root",
            NewTeam {
                org: acme.id,
                slug: "eng".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap()
        .value;

    // References are checked: a team that does not exist is refused.
    let mut bad = provider("corp", "https://idp.example", "acme");
    bad.group_teams[0].team = "nope".into();
    assert!(matches!(
        store.create_identity_provider("root", bad).await,
        Err(StoreError::Dangling { .. })
    ));
    let bad = provider("Bad Slug", "https://idp.example", "acme");
    assert!(store.create_identity_provider("root", bad).await.is_err());

    let before = store.revision().await.unwrap();
    let p = store
        .create_identity_provider("root", provider("corp", "https://idp.example", "acme"))
        .await
        .unwrap();
    assert_eq!(
        p.revision,
        before + 1,
        "a provider write bumps the revision"
    );
    assert_eq!(store.enabled_identity_providers().await.unwrap().len(), 1);
    // Issuers are unique.
    assert!(matches!(
        store
            .create_identity_provider("root", provider("corp2", "https://idp.example", "acme"))
            .await,
        Err(StoreError::Duplicate { .. })
    ));

    // First sign-in: one write creates the sign-in key and the end user.
    let digest = format!("idp:corp:{}:{}", acme.id, team.id);
    let r1 = store
        .provision_sign_in(
            "corp",
            acme.id,
            Some(team.id),
            &digest,
            "alice@acme.example",
        )
        .await
        .unwrap();
    assert_eq!(r1, p.revision + 1);
    let snap = store.live().snapshot();
    let principal = snap
        .principal(&digest, Some("alice@acme.example"), None)
        .unwrap();
    let key = snap.key(principal.key).unwrap();
    assert_eq!(key.team, Some(team.id));
    assert_eq!(key.scope, Scope::Inherit);
    let user = snap.end_user(principal.end_user.unwrap()).unwrap();
    assert_eq!(user.scope, Scope::Inherit);
    // A second person reuses the key: one more row, one more revision.
    let r2 = store
        .provision_sign_in("corp", acme.id, Some(team.id), &digest, "bob@acme.example")
        .await
        .unwrap();
    assert_eq!(r2, r1 + 1);
    let keys = store.list_keys(acme.id, Page::all()).await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.token_prefix == "idp").count(), 1);
    // Both writes are in the admin audit log.
    let audit = store
        .query_audit(&AuditQuery {
            kind: Some(AuditKind::AdminChange),
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<String> = audit
        .entries
        .iter()
        .filter_map(|e| e.entity_kind.clone())
        .collect();
    assert!(kinds.iter().any(|k| k == "identity_provider"), "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| *k == "end_user").count() >= 2,
        "{kinds:?}"
    );

    // Disabling one person: the engine refuses them whole, not the others.
    let bob = store
        .get_end_user_by_external_id(acme.id, "bob@acme.example")
        .await
        .unwrap()
        .unwrap();
    let w = store
        .update_end_user(
            "root",
            bob.id,
            EndUserPatch {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(w.value.disabled);
    let snap = store.live().snapshot();
    let pb = snap
        .principal(&digest, Some("bob@acme.example"), None)
        .unwrap();
    let pa = snap
        .principal(&digest, Some("alice@acme.example"), None)
        .unwrap();
    assert_eq!(
        snap.principal_denial(&pb, 0),
        Some(warden_policy::Reason::EndUserDisabled)
    );
    assert_eq!(snap.principal_denial(&pa, 0), None);
    assert_eq!(
        store
            .load_rows()
            .await
            .unwrap()
            .end_users
            .iter()
            .filter(|u| u.disabled)
            .count(),
        1,
        "the flag is stored, not only live"
    );

    // A digest that is not this provider's sign-in key is refused.
    assert!(store
        .provision_sign_in("corp", acme.id, None, "idp:other:1:-", "eve")
        .await
        .is_err());
    assert!(store
        .provision_sign_in("corp", OrgId(acme.id.0), None, &"ab".repeat(32), "eve")
        .await
        .is_err());

    // Disabling the provider revokes its sign-in keys (sessions end).
    store
        .update_identity_provider(
            "root",
            p.value.id,
            IdentityProviderPatch {
                enabled: Some(false),
                config: None,
            },
        )
        .await
        .unwrap();
    assert!(store.enabled_identity_providers().await.unwrap().is_empty());
    let snap = store.live().snapshot();
    let principal = snap
        .principal(&digest, Some("alice@acme.example"), None)
        .unwrap();
    assert!(snap.key(principal.key).unwrap().revoked);
    assert!(store
        .provision_sign_in(
            "corp",
            acme.id,
            None,
            &format!("idp:corp:{}:-", acme.id),
            "eve"
        )
        .await
        .is_err());

    // Deleting it deletes its sign-in keys.
    store
        .delete_identity_provider("root", p.value.id)
        .await
        .unwrap();
    let snap = store.live().snapshot();
    assert_eq!(
        snap.principal(&digest, Some("alice@acme.example"), None),
        Err(PolicyError::KeyUnknown)
    );
    assert!(store.list_identity_providers().await.unwrap().is_empty());
}

on_both_backends!(providers_and_provisioning);
