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

    // The identity provider is registered with its mapping.
    let providers = h.store.list_identity_providers().await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].config.slug, "corp");
    assert_eq!(providers[0].config.group_teams[0].team, "support");
    // So is acme's default scope for new users (it names a toolset, so it
    // is applied after toolsets).
    assert_eq!(
        h.get("/admin/v1/orgs/acme/new-user-scope").await.body,
        serde_json::json!({"servers": {}, "toolsets": ["read-only"]})
    );
    assert_eq!(
        h.get("/admin/v1/orgs/globex/new-user-scope").await.body,
        serde_json::json!("inherit")
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

    // Limits: created once, then brought in line by (holder, server, tool).
    let limits = h.get("/admin/v1/orgs/acme/limits").await.body;
    let items = limits["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{limits}");
    assert_eq!(items[0]["level"], serde_json::json!({ "kind": "org" }));
    assert_eq!(
        items[0]["rate"],
        serde_json::json!({ "requests": 6000, "per": "hour", "burst": 6000 })
    );
    assert_eq!(
        items[1]["level"],
        serde_json::json!({ "kind": "team", "slug": "support" })
    );
    assert_eq!(items[1]["tool"], "create_issue");
    assert_eq!(items[2]["level"]["kind"], "key");
    let tighter = EXAMPLE.replace("concurrency = 4", "concurrency = 3");
    assert_ne!(tighter, EXAMPLE);
    let tighter = bootstrap::parse(&tighter).unwrap();
    let fourth = bootstrap::apply(&h.state, &tighter, &env).await.unwrap();
    assert_eq!(
        fourth.changes, 2,
        "the grant edit is undone, the limit changes: {fourth:?}"
    );
    let limits = h.get("/admin/v1/orgs/acme/limits").await.body;
    assert_eq!(limits["items"].as_array().unwrap().len(), 3, "{limits}");
    assert_eq!(limits["items"][1]["concurrency"], 3);

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

const GITHUB_SECRET_LINE: &str =
    "secret_headers = { Authorization = { env = \"GITHUB_MCP_AUTH\" } }\n";

/// The example's environment, with this value for the GitHub upstream secret.
fn env_with(auth: &'static str) -> impl Fn(&str) -> Option<String> {
    move |name: &str| match name {
        "GITHUB_MCP_AUTH" => Some(auth.to_owned()),
        other => env(other),
    }
}

async fn rotated_upstream_secrets_are_brought_in_line(backend: Backend) {
    let h = Harness::start(backend).await;
    let file = bootstrap::parse(EXAMPLE).unwrap();
    bootstrap::apply(&h.state, &file, &env_with("Bearer one"))
        .await
        .unwrap();
    let github = h.server_id(None, "github");
    let upstream = || async { h.store.load_upstream(github).await.unwrap().unwrap() };
    let auth = |u: &warden_store::UpstreamConfig| {
        u.secret_headers
            .get("Authorization")
            .map(|s| s.expose().to_owned())
    };
    let first = upstream().await;
    assert_eq!(auth(&first).as_deref(), Some("Bearer one"));

    // The same secret again: nothing written (compared decrypted).
    let before = h.store.live().revision();
    let same = bootstrap::apply(&h.state, &file, &env_with("Bearer one"))
        .await
        .unwrap();
    assert_eq!(same.changes, 0, "{same:?}");
    assert_eq!(h.store.live().revision(), before);

    // A rotated secret: one write, the gateway reconnects with it.
    let rotated = bootstrap::apply(&h.state, &file, &env_with("Bearer two"))
        .await
        .unwrap();
    assert_eq!(rotated.changes, 1, "{rotated:?}");
    assert_eq!(rotated.revision, before + 1);
    let second = upstream().await;
    assert_eq!(auth(&second).as_deref(), Some("Bearer two"));
    assert!(second.config_revision > first.config_revision);
    let audit = h
        .get("/admin/v1/audit?actor=system:bootstrap&entity=server&limit=1")
        .await
        .body;
    assert_eq!(audit["items"][0]["revision"], before + 1, "{audit}");
    assert_eq!(audit["items"][0]["action"], "update", "{audit}");
    assert!(
        !audit.to_string().contains("Bearer two") && !audit.to_string().contains("Bearer one"),
        "secret in audit: {audit}"
    );
    let again = bootstrap::apply(&h.state, &file, &env_with("Bearer two"))
        .await
        .unwrap();
    assert_eq!(again.changes, 0, "{again:?}");

    // No secret_headers in the file: the server's are left alone.
    let without = EXAMPLE.replace(GITHUB_SECRET_LINE, "");
    assert_ne!(without, EXAMPLE);
    let without = bootstrap::parse(&without).unwrap();
    let report = bootstrap::apply(&h.state, &without, &env_with("Bearer three"))
        .await
        .unwrap();
    assert_eq!(report.changes, 0, "{report:?}");
    assert_eq!(auth(&upstream().await).as_deref(), Some("Bearer two"));

    // An explicitly empty table removes them.
    let cleared =
        bootstrap::parse(&EXAMPLE.replace(GITHUB_SECRET_LINE, "secret_headers = {}\n")).unwrap();
    let report = bootstrap::apply(&h.state, &cleared, &env_with("Bearer two"))
        .await
        .unwrap();
    assert_eq!(report.changes, 1, "{report:?}");
    assert!(upstream().await.secret_headers.is_empty());
    assert_eq!(
        h.get("/admin/v1/servers/github").await.body["secret_header_names"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn rotated_upstream_secrets_are_brought_in_line_sqlite() {
    rotated_upstream_secrets_are_brought_in_line(Backend::Sqlite).await;
}

#[tokio::test]
async fn rotated_upstream_secrets_are_brought_in_line_postgres() {
    rotated_upstream_secrets_are_brought_in_line(Backend::Postgres).await;
}
