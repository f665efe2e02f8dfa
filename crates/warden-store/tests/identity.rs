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

/// The org's default scope for new users: validated like an end user's
/// scope, audited, copied into people created just in time, and narrowed
/// (never broken) when the org loses a grant or toolset.
async fn default_scope_for_new_users(backend: Backend) {
    use warden_policy::{ScopeGrants, ToolFilter};

    let (_db, store) = open(backend).await;
    let acme = create_org(&store, "root", "acme").await.value;
    let other = create_org(&store, "root", "other").await.value;
    let mut servers = Vec::new();
    for slug in ["github", "wiki", "secret"] {
        let s = store
            .create_server(
                "root",
                NewServer::new(slug, None, common::http("https://example.com/mcp")),
            )
            .await
            .unwrap()
            .value;
        servers.push(s.id);
    }
    let (github, wiki, secret) = (servers[0], servers[1], servers[2]);
    for (org, server, filter) in [
        (acme.id, github, ToolFilter::only(["read", "search"])),
        (acme.id, wiki, ToolFilter::All),
        (other.id, secret, ToolFilter::All),
    ] {
        store
            .create_org_grant(
                "root",
                OrgGrant {
                    org,
                    server,
                    enabled: true,
                    filter,
                },
            )
            .await
            .unwrap();
    }
    let docs = store
        .create_toolset(
            "root",
            NewToolset {
                org: acme.id,
                slug: "docs".into(),
                name: String::new(),
                servers: [(wiki, ToolFilter::only(["page"]))].into(),
            },
        )
        .await
        .unwrap()
        .value;
    store
        .create_identity_provider("root", {
            let mut p = provider("corp", "https://idp.example", "acme");
            p.group_teams.clear();
            p
        })
        .await
        .unwrap();

    // Inherit unless set.
    assert_eq!(
        store.get_new_user_scope(acme.id).await.unwrap(),
        Some(Scope::Inherit)
    );
    assert_eq!(store.get_new_user_scope(OrgId(9999)).await.unwrap(), None);

    // Beyond the org's allowance: refused with every offending entry,
    // nothing written, the revision unmoved.
    let rev = store.revision().await.unwrap();
    let too_wide = Scope::Grants(ScopeGrants {
        servers: [(github, ToolFilter::All)].into(),
        toolsets: Default::default(),
    });
    match store.set_new_user_scope("root", acme.id, too_wide).await {
        Err(StoreError::ScopeNotAllowed(offenses)) => assert!(!offenses.is_empty()),
        other => panic!("expected scope_not_allowed, got {other:?}"),
    }
    // Another org's server is not the org's to give.
    let foreign = Scope::Grants(ScopeGrants {
        servers: [(secret, ToolFilter::All)].into(),
        toolsets: Default::default(),
    });
    assert!(store
        .set_new_user_scope("root", acme.id, foreign)
        .await
        .is_err());
    assert_eq!(store.revision().await.unwrap(), rev);
    assert_eq!(
        store.get_new_user_scope(acme.id).await.unwrap(),
        Some(Scope::Inherit)
    );

    // Within it: written, audited, bumps the revision.
    let wanted = Scope::Grants(ScopeGrants {
        servers: [
            (github, ToolFilter::only(["read"])),
            (wiki, ToolFilter::All),
        ]
        .into(),
        toolsets: [docs.id].into(),
    });
    let w = store
        .set_new_user_scope("admin:alice", acme.id, wanted.clone())
        .await
        .unwrap();
    assert_eq!(w.revision, rev + 1);
    assert_eq!(
        store.get_new_user_scope(acme.id).await.unwrap(),
        Some(wanted.clone())
    );
    let audit = store
        .query_audit(&AuditQuery {
            kind: Some(AuditKind::AdminChange),
            ..Default::default()
        })
        .await
        .unwrap();
    let entry = audit
        .entries
        .iter()
        .find(|e| e.action == "set_new_user_scope")
        .expect("audited");
    assert_eq!(entry.actor.as_deref(), Some("admin:alice"));
    assert_eq!(entry.org, Some(acme.id));

    // A first-time person gets it, in the provisioning write; people who
    // already exist keep theirs; another org's default is untouched.
    store
        .create_end_user(
            "root",
            NewEndUser {
                org: acme.id,
                external_id: "old@acme.example".into(),
                name: String::new(),
                scope: None,
            },
        )
        .await
        .unwrap();
    let digest = format!("idp:corp:{}:-", acme.id);
    store
        .provision_sign_in("corp", acme.id, None, &digest, "new@acme.example")
        .await
        .unwrap();
    let snap = store.live().snapshot();
    let p = snap
        .principal(&digest, Some("new@acme.example"), None)
        .unwrap();
    assert_eq!(snap.end_user(p.end_user.unwrap()).unwrap().scope, wanted);
    let key = snap.key(p.key).unwrap();
    assert_eq!(key.scope, Scope::Inherit, "the sign-in key stays inherit");
    let old = store
        .get_end_user_by_external_id(acme.id, "old@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.scope, Scope::Inherit);
    assert_eq!(
        store.get_new_user_scope(other.id).await.unwrap(),
        Some(Scope::Inherit)
    );
    // Stored, not only live: a full rebuild agrees.
    store.reload().await.unwrap();
    let snap = store.live().snapshot();
    let p = snap
        .principal(&digest, Some("new@acme.example"), None)
        .unwrap();
    assert_eq!(snap.end_user(p.end_user.unwrap()).unwrap().scope, wanted);

    // The org loses the github grant and the toolset: the default narrows
    // (cascade), the snapshot still builds, the next person gets the rest.
    store
        .delete_org_grant("root", acme.id, github)
        .await
        .unwrap();
    store.delete_toolset("root", docs.id).await.unwrap();
    let narrowed = Scope::Grants(ScopeGrants {
        servers: [(wiki, ToolFilter::All)].into(),
        toolsets: Default::default(),
    });
    assert_eq!(
        store.get_new_user_scope(acme.id).await.unwrap(),
        Some(narrowed.clone())
    );
    store.reload().await.unwrap();
    store
        .provision_sign_in("corp", acme.id, None, &digest, "later@acme.example")
        .await
        .unwrap();
    let later = store
        .get_end_user_by_external_id(acme.id, "later@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.scope, narrowed);

    // Back to inherit.
    store
        .set_new_user_scope("root", acme.id, Scope::Inherit)
        .await
        .unwrap();
    store
        .provision_sign_in("corp", acme.id, None, &digest, "last@acme.example")
        .await
        .unwrap();
    let last = store
        .get_end_user_by_external_id(acme.id, "last@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.scope, Scope::Inherit);
    // Deleting the org takes its default with it.
    store.delete_org("root", acme.id).await.unwrap();
    assert_eq!(store.get_new_user_scope(acme.id).await.unwrap(), None);
}

on_both_backends!(default_scope_for_new_users);
