//! The declarative bootstrap: the example file applies, re-applying changes
//! nothing, changes in the file are brought in line, secrets come from the
//! environment.

mod common;

use common::{Backend, Harness};
use warden_admin::bootstrap;
use warden_policy::{Scope, Snapshot};
use warden_store::token_digest;

const EXAMPLE: &str = include_str!("../../../examples/bootstrap.toml");
const CI_KEY: &str = "wdn_ci-key-from-the-environment-0123456789";

fn env(name: &str) -> Option<String> {
    match name {
        "GITHUB_MCP_AUTH" => Some("Bearer gh-upstream-secret".into()),
        "ACME_CI_KEY" => Some(CI_KEY.into()),
        _ => None,
    }
}

async fn example_applies_idempotently(backend: Backend) {
    let h = Harness::start(backend).await;
    let file = bootstrap::parse(EXAMPLE).unwrap();

    let first = bootstrap::apply(&h.state, &file, &env).await.unwrap();
    assert!(first.changes > 10, "{first:?}");
    assert_eq!(first.revision, h.store.live().revision());
    let generated: Vec<_> = first
        .generated_keys
        .iter()
        .map(|k| (k.org.as_str(), k.name.as_str()))
        .collect();
    assert_eq!(
        generated,
        [("acme", "triage-bot"), ("acme", "helpdesk-service")]
    );
    assert!(
        !format!("{first:?}").contains("wdn_"),
        "secrets are redacted in Debug"
    );

    let snapshot: std::sync::Arc<Snapshot> = h.store.live().snapshot();
    // The key from the environment authenticates with exactly that secret.
    let ci = snapshot
        .principal(&token_digest(CI_KEY), None, None)
        .unwrap();
    assert_eq!(snapshot.key(ci.key).unwrap().scope, Scope::Inherit);
    // So does the generated one, bound to its agent.
    let bot_secret = first.generated_keys[0].secret.expose();
    let bot = snapshot
        .principal(&token_digest(bot_secret), None, None)
        .unwrap();
    assert!(bot.agent.is_some());
    let access = snapshot.access(&bot);
    let usable: Vec<_> = access
        .usable_servers(0)
        .map(|(s, f)| (s.slug.clone(), f.clone()))
        .collect();
    assert_eq!(usable.len(), 1, "{usable:?}");
    assert_eq!(usable[0].0, "github");
    assert!(usable[0].1.admits("search_repositories") && !usable[0].1.admits("get_file_contents"));
    // Secret headers came from the environment and are stored.
    let github = h.get("/admin/v1/servers/github").await.body;
    assert_eq!(
        github["secret_header_names"],
        serde_json::json!(["Authorization"])
    );

    // Again: nothing changes, no revision is bumped, no key is generated.
    let again = bootstrap::apply(&h.state, &file, &env).await.unwrap();
    assert_eq!(again.changes, 0, "{again:?}");
    assert_eq!(again.revision, first.revision);
    assert!(again.generated_keys.is_empty());

    // A change in the file is brought in line, and only that.
    let edited = EXAMPLE.replace(
        "tools = [\"search_repositories\", \"get_file_contents\"]\nenabled = true",
        "tools = [\"search_repositories\"]\nenabled = false",
    );
    assert_ne!(edited, EXAMPLE);
    let edited = bootstrap::parse(&edited).unwrap();
    let third = bootstrap::apply(&h.state, &edited, &env).await.unwrap();
    assert_eq!(third.changes, 1, "{third:?}");
    let grant = h.get("/admin/v1/orgs/globex/grants/github").await.body;
    assert_eq!(grant["enabled"], false);
    assert_eq!(grant["filter"], serde_json::json!(["search_repositories"]));

    // The bootstrap's writes are in the audit log under its own actor.
    let audit = h
        .get("/admin/v1/audit?actor=system:bootstrap&limit=500")
        .await
        .body;
    assert!(audit["items"].as_array().unwrap().len() > 10, "{audit}");
    assert!(
        !audit.to_string().contains("gh-upstream-secret"),
        "secret in audit"
    );
    assert!(!audit.to_string().contains(CI_KEY), "key secret in audit");
}

#[tokio::test]
async fn example_applies_idempotently_sqlite() {
    example_applies_idempotently(Backend::Sqlite).await;
}

#[tokio::test]
async fn example_applies_idempotently_postgres() {
    example_applies_idempotently(Backend::Postgres).await;
}

#[tokio::test]
async fn missing_secrets_and_bad_references_name_the_entry() {
    let h = Harness::start(Backend::Sqlite).await;
    let file = bootstrap::parse(EXAMPLE).unwrap();
    let err = bootstrap::apply(&h.state, &file, &|_| None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("server \"github\"") && text.contains("GITHUB_MCP_AUTH"),
        "{text}"
    );

    let file =
        bootstrap::parse("[[orgs]]\nslug = \"a\"\n[[grants]]\norg = \"a\"\nserver = \"nope\"\n")
            .unwrap();
    let err = bootstrap::apply(&h.state, &file, &env).await.unwrap_err();
    assert!(err.to_string().contains("grant a/nope"), "{err}");

    let err = bootstrap::parse("[[orgs]]\nslug = \"a\"\nsulg = 1\n").unwrap_err();
    assert!(err.to_string().contains("sulg"), "{err}");
}
