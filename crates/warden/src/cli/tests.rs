//! The CLI against a real admin API (real router, real SQLite store).

use std::sync::Arc;

use clap::Parser;
use serde_json::Value;
use warden_admin::AdminState;
use warden_store::{Secret, Store, StoreOptions};

use super::*;

const TOKEN: &str = "cli-test-platform-token";

#[derive(Parser)]
struct TestCli {
    #[command(subcommand)]
    cmd: AdminCommand,
}

struct Api {
    url: String,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn start() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let store = Store::open(&db, StoreOptions::new([3u8; 32]))
        .await
        .unwrap();
    store
        .ensure_admin_token("test", "platform", None, &Secret::new(TOKEN))
        .await
        .unwrap();
    let catalog: Arc<dyn warden_policy::Catalog + Send + Sync> = Arc::new(warden_policy::NoCatalog);
    let app = warden_admin::router(AdminState::new(store.clone(), catalog));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api {
        url,
        store,
        _dir: dir,
    }
}

impl Api {
    /// What `warden <argv>` prints, or its error.
    async fn run_as(&self, token: &str, argv: &str, json: bool) -> Result<String, WardenError> {
        let args = std::iter::once("warden").chain(argv.split_whitespace());
        let cli = TestCli::try_parse_from(args).unwrap_or_else(|e| panic!("{argv}: {e}"));
        render(cli.cmd, &self.url, token, json).await
    }

    async fn run(&self, argv: &str, json: bool) -> Result<String, WardenError> {
        self.run_as(TOKEN, argv, json).await
    }

    /// The table output of a command that must succeed.
    async fn ok(&self, argv: &str) -> String {
        self.run(argv, false)
            .await
            .unwrap_or_else(|e| panic!("warden {argv}: {e}"))
    }

    /// The `--json` output of a command that must succeed, parsed.
    async fn json(&self, argv: &str) -> Value {
        let text = self
            .run(argv, true)
            .await
            .unwrap_or_else(|e| panic!("warden {argv} --json: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{argv}: not JSON ({e}): {text}"))
    }
}

/// The lines of a table, each split into its cells (cells hold no spaces
/// in these tests).
fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn has_row(table: &str, row: &[&str]) -> bool {
    rows(table).iter().any(|r| r == row)
}

fn org_id(api: &Api, slug: &str) -> warden_policy::OrgId {
    api.store.live().snapshot().org_by_slug(slug).unwrap().id
}

#[tokio::test]
async fn admin_commands_drive_the_api() {
    let api = start().await;
    api.ok("org create acme").await;
    api.ok("server add github --upstream-url http://127.0.0.1:9/mcp --secret-header Authorization=Bearer-x")
        .await;
    api.ok("server add files --org acme --command mcp-files --arg /srv")
        .await;
    api.ok("grant set acme github --tools search,read").await;
    api.ok("grant set acme files").await;
    api.ok("team create acme ops").await;
    api.ok("agent create acme bot --team ops").await;
    api.ok("key create acme ci --team ops --may-assert-agent")
        .await;
    api.ok("scope set acme team ops --server github=search --server files")
        .await;
    api.ok("scope set acme agent bot --server github=search")
        .await;
    api.ok("grant disable acme github").await;
    api.ok("grant enable acme github").await;
    for (list, header) in [
        ("org list", vec!["slug", "name", "suspended"]),
        (
            "server list",
            vec![
                "slug",
                "owner_org",
                "enabled",
                "transport",
                "secret_header_names",
            ],
        ),
        (
            "server list --org acme",
            vec![
                "slug",
                "owner_org",
                "enabled",
                "transport",
                "secret_header_names",
            ],
        ),
        ("grant list acme", vec!["server", "enabled", "filter"]),
        ("team list acme", vec!["slug", "name", "scope"]),
        ("agent list acme", vec!["slug", "name", "team", "scope"]),
        (
            "key list acme",
            vec![
                "id",
                "name",
                "token_prefix",
                "team",
                "agent",
                "revoked",
                "expires_at",
            ],
        ),
        (
            "audit --org acme --limit 5",
            vec![
                "id",
                "at",
                "kind",
                "actor",
                "action",
                "entity_kind",
                "entity",
                "revision",
            ],
        ),
    ] {
        let table = api.ok(list).await;
        assert_eq!(rows(&table)[0], header, "{list}:\n{table}");
        assert!(rows(&table).len() > 1, "{list} lists nothing:\n{table}");
        let json = api.json(list).await;
        assert!(
            json["items"].as_array().is_some_and(|i| !i.is_empty()),
            "{list}: {json}"
        );
    }
    // The table shows what the API holds.
    let grants = api.ok("grant list acme").await;
    assert!(
        has_row(&grants, &["github", "true", "read,search"]),
        "{grants}"
    );
    assert!(has_row(&grants, &["files", "true", "*"]), "{grants}");
    let agents = api.json("agent list acme").await;
    assert_eq!(agents["items"][0]["slug"], "bot");
    assert_eq!(agents["items"][0]["team"], "ops");
    assert_eq!(
        agents["items"][0]["scope"],
        json!({ "servers": { "github": ["search"] }, "toolsets": [] })
    );

    let snapshot = api.store.live().snapshot();
    let org = snapshot.org_by_slug("acme").unwrap().id;
    let github = snapshot.server_for_org(org, "github").unwrap().id;
    let grant = snapshot.org_grant(org, github).unwrap();
    assert!(grant.enabled);
    assert_eq!(
        grant.filter,
        warden_policy::ToolFilter::only(["read", "search"])
    );
    let key = api.store.get_key_by_name(org, "ci").await.unwrap().unwrap();
    let id = key.id.0;

    api.ok(&format!(
        "explain acme --key {id} --server github --tool search --agent bot"
    ))
    .await;
    api.ok(&format!("access acme {id} --agent bot")).await;
    api.ok("server disable github").await;
    assert!(!api.store.live().snapshot().server(github).unwrap().enabled);
    api.ok("server enable github").await;
    api.ok(&format!("key revoke acme {id}")).await;
    assert!(api.store.live().snapshot().key(key.id).unwrap().revoked);
    api.ok("grant remove acme files").await;
    api.ok("server delete files --org acme").await;

    // Refusals carry the API's status and stable code.
    match api.run("org create acme", false).await {
        Err(WardenError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (409, "duplicate"))
        }
        other => panic!("expected a 409: {other:?}"),
    }
    match api
        .run("scope set acme team ops --server github=delete", false)
        .await
    {
        Err(WardenError::Api {
            status,
            code,
            details,
            ..
        }) => {
            assert_eq!((status, code.as_str()), (422, "grants_beyond_parent"));
            assert!(details.contains("delete"), "{details}");
        }
        other => panic!("expected a 422: {other:?}"),
    }
    let bad_token = run(
        AdminCommand::Org(OrgCommand::List),
        &api.url,
        "wrong",
        false,
    )
    .await;
    assert!(
        matches!(bad_token, Err(WardenError::Api { status: 401, .. })),
        "{bad_token:?}"
    );
    let unreachable = run(
        AdminCommand::Org(OrgCommand::List),
        "http://127.0.0.1:9",
        TOKEN,
        false,
    )
    .await;
    assert!(
        matches!(unreachable, Err(WardenError::Connect { .. })),
        "{unreachable:?}"
    );

    api.ok("org delete acme").await;
    assert!(api.store.live().snapshot().org_by_slug("acme").is_none());
}

#[tokio::test]
async fn end_users_toolsets_admin_tokens_and_deletes() {
    let api = start().await;
    api.ok("org create acme").await;
    api.ok("server add github --upstream-url http://127.0.0.1:9/mcp")
        .await;
    api.ok("grant set acme github --tools search,read").await;
    let acme = org_id(&api, "acme");

    // End users: create, rename, scope, show, list, delete.
    let created = api
        .ok("end-user create acme ann@example.com --name Ann")
        .await;
    assert!(
        has_row(&created, &["external_id", "ann@example.com"]),
        "{created}"
    );
    assert!(has_row(&created, &["name", "Ann"]), "{created}");
    let renamed = api.json("end-user rename acme ann@example.com Annie").await;
    assert_eq!(renamed["item"]["name"], "Annie", "{renamed}");
    api.ok("scope set acme end-user ann@example.com --server github=search")
        .await;
    let scope = api.ok("scope get acme end-user ann@example.com").await;
    assert!(has_row(&scope, &["server", "github", "search"]), "{scope}");
    let users = api.ok("end-user list acme").await;
    assert_eq!(
        rows(&users)[0],
        ["external_id", "name", "scope", "disabled"]
    );
    assert!(
        has_row(
            &users,
            &[
                "ann@example.com",
                "Annie",
                r#"{"servers":{"github":["search"]},"toolsets":[]}"#,
                "false"
            ]
        ),
        "{users}"
    );
    let users = api.json("end-user list acme").await;
    assert_eq!(users["items"][0]["external_id"], "ann@example.com");
    assert_eq!(users["items"][0]["name"], "Annie");

    // Toolsets: within the org's grants, checked by the API.
    api.ok("toolset create acme readers --server github=read")
        .await;
    let toolsets = api.ok("toolset list acme").await;
    assert!(
        has_row(&toolsets, &["readers", "readers", r#"{"github":["read"]}"#]),
        "{toolsets}"
    );
    match api
        .run("toolset update acme readers --server github=delete", false)
        .await
    {
        Err(WardenError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (422, "grants_beyond_parent"))
        }
        other => panic!("expected a 422: {other:?}"),
    }
    api.ok("toolset update acme readers --name Readers --server github=search,read")
        .await;
    let toolsets = api.json("toolset list acme").await;
    assert_eq!(
        toolsets["items"],
        json!([{ "slug": "readers", "name": "Readers", "servers": { "github": ["read", "search"] } }])
    );
    api.ok("scope set acme end-user ann@example.com --toolset readers")
        .await;
    assert_eq!(
        api.json("scope get acme end-user ann@example.com").await,
        json!({ "servers": {}, "toolsets": ["readers"] })
    );
    api.ok("toolset update acme readers --no-servers").await;
    assert_eq!(
        api.json("toolset list acme").await["items"][0]["servers"],
        json!({})
    );
    assert!(matches!(
        api.run("toolset update acme readers", false).await,
        Err(WardenError::BadArgument(_))
    ));

    // Teams, agents, keys: rename and delete.
    api.ok("team create acme ops --name Operations").await;
    api.ok("agent create acme bot --team ops").await;
    api.ok("team rename acme ops Ops").await;
    api.ok("agent rename acme bot Robot").await;
    let team = api
        .store
        .get_team_by_slug(acme, "ops")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team.name, "Ops");
    let agent = api
        .store
        .get_agent_by_slug(acme, "bot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent.name, "Robot");
    let key = api.ok("key create acme ci --team ops").await;
    assert!(
        key.contains("secret (shown once, store it now): wdn_"),
        "{key}"
    );
    let key = api
        .store
        .get_key_by_name(acme, "ci")
        .await
        .unwrap()
        .unwrap();
    let deleted = api.json(&format!("key delete acme {}", key.id.0)).await;
    assert!(deleted["revision"].as_u64().is_some(), "{deleted}");
    assert!(api.store.get_key(key.id).await.unwrap().is_none());
    api.ok("agent delete acme bot").await;
    api.ok("team delete acme ops").await;
    api.ok("end-user delete acme ann@example.com").await;
    api.ok("toolset delete acme readers").await;
    let snapshot = api.store.live().snapshot();
    assert!(snapshot.agent(agent.id).is_none());
    assert!(snapshot.team(team.id).is_none());
    assert!(snapshot.toolset_by_slug(acme, "readers").is_none());
    assert!(api
        .store
        .get_end_user_by_external_id(acme, "ann@example.com")
        .await
        .unwrap()
        .is_none());
    match api.run("team delete acme ops", false).await {
        Err(WardenError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (404, "not_found"))
        }
        other => panic!("expected a 404: {other:?}"),
    }

    // Admin tokens: a platform one works at once, shows in the list, its
    // writes are found by its name in the audit log, and revoking ends it.
    let created = api.ok("admin-token create ops").await;
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown once, store it now): "))
        .unwrap_or_else(|| panic!("no secret in {created}"))
        .to_owned();
    assert!(secret.starts_with("wdna_"), "{secret}");
    api.run_as(&secret, "org create globex", false)
        .await
        .unwrap();
    let audit = api.json("audit --actor ops").await;
    assert_eq!(audit["items"][0]["actor"], "admin:ops", "{audit}");
    assert_eq!(audit["items"][0]["after"]["slug"], "globex", "{audit}");
    api.ok("admin-token create acme-admin --org acme").await;
    let tokens = api.ok("admin-token list").await;
    assert_eq!(rows(&tokens)[0], ["id", "name", "org", "token_prefix"]);
    assert!(
        rows(&tokens).iter().any(|r| r[1] == "ops" && r[2] == "-"),
        "{tokens}"
    );
    assert!(!tokens.contains("acme-admin"), "{tokens}");
    let org_tokens = api.json("admin-token list --org acme").await;
    assert_eq!(org_tokens["items"][0]["name"], "acme-admin");
    assert_eq!(org_tokens["items"][0]["org"], "acme");
    let ops_id = api.json("admin-token list").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ops")
        .unwrap()["id"]
        .clone();
    api.ok(&format!("admin-token delete {ops_id}")).await;
    assert!(matches!(
        api.run_as(&secret, "org list", false).await,
        Err(WardenError::Api { status: 401, .. })
    ));
}

#[tokio::test]
async fn limit_commands_set_list_and_delete() {
    let api = start().await;
    api.ok("org create acme").await;
    api.ok("server add github --upstream-url http://127.0.0.1:9/mcp")
        .await;
    api.ok("grant set acme github").await;
    api.ok("team create acme ops").await;

    let created = api
        .json("limit set acme --team ops --server github --tool create_issue --rate 60/minute --burst 10 --concurrency 4")
        .await;
    let id = created["item"]["id"].as_i64().unwrap();
    assert_eq!(
        created["item"]["rate"],
        serde_json::json!({ "requests": 60, "per": "minute", "burst": 10 })
    );
    // The same holder and target: changed in place, not a second limit.
    let changed = api
        .json("limit set acme --team ops --server github --tool create_issue --concurrency 2")
        .await;
    assert_eq!(changed["item"]["id"], id);
    assert_eq!(changed["item"]["concurrency"], 2);
    assert_eq!(changed["item"]["rate"]["requests"], 60);
    api.ok("limit set acme --rate 1000/hour").await;

    let listed = api.json("limit list acme").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let table = api.ok("limit list acme").await;
    assert!(table.starts_with("id"), "{table}");
    assert!(table.contains("create_issue"), "{table}");

    let err = api
        .run("limit set acme --team ops", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--rate"), "{err}");
    let err = api
        .run("limit set acme --team nope --concurrency 1", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    api.ok(&format!("limit delete acme {id}")).await;
    assert_eq!(
        api.json("limit list acme").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn identity_provider_and_end_user_disable_commands() {
    let api = start().await;
    api.ok("org create acme").await;
    api.ok("team create acme eng").await;
    api.ok("idp add corp --issuer https://login.corp.example --org acme --groups-claim groups --group-team engineering=eng --scope mcp")
        .await;
    let listed = api.ok("idp list").await;
    assert!(
        listed.contains("corp") && listed.contains("https://login.corp.example"),
        "{listed}"
    );
    let providers = api.store.list_identity_providers().await.unwrap();
    assert_eq!(providers.len(), 1);
    let p = &providers[0];
    assert_eq!(p.config.group_teams[0].team, "eng");
    assert_eq!(p.config.required_scopes, vec!["mcp".to_owned()]);
    // A mapping to a team that does not exist is refused by the API.
    let err = api
        .run("idp add other --issuer https://other.example --org acme --groups-claim g --group-team x=nope", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    api.ok("idp disable corp").await;
    assert!(!api.store.list_identity_providers().await.unwrap()[0].enabled);
    api.ok("idp enable corp").await;
    api.ok("idp delete corp").await;
    assert!(api
        .store
        .list_identity_providers()
        .await
        .unwrap()
        .is_empty());

    // End users: disable and enable.
    api.ok("end-user create acme ann@example.com").await;
    api.ok("end-user disable acme ann@example.com").await;
    let org = api.store.get_org_by_slug("acme").await.unwrap().unwrap().id;
    let ann = api
        .store
        .get_end_user_by_external_id(org, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(ann.disabled);
    assert!(api.ok("end-user list acme").await.contains("true"));
    api.ok("end-user enable acme ann@example.com").await;
    let ann = api
        .store
        .get_end_user_by_external_id(org, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!ann.disabled);
}

#[tokio::test]
async fn new_user_scope_commands() {
    let api = start().await;
    api.ok("org create acme").await;
    api.ok("server add github --upstream-url http://127.0.0.1:9/mcp")
        .await;
    api.ok("grant set acme github --tools read,search").await;
    let shown = api.ok("idp new-user-scope get acme").await;
    assert!(shown.contains("inherit"), "{shown}");
    // Beyond the org's grant: refused, naming the tool.
    let err = api
        .run(
            "idp new-user-scope set acme --server github=read,delete",
            false,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("delete"), "{err}");
    api.ok("idp new-user-scope set acme --server github=read")
        .await;
    let org = api.store.get_org_by_slug("acme").await.unwrap().unwrap();
    let scope = api.store.get_new_user_scope(org.id).await.unwrap().unwrap();
    let grants = scope.grants().expect("grants, not inherit").clone();
    assert_eq!(grants.servers.len(), 1);
    assert!(grants
        .servers
        .values()
        .all(|f| f.admits("read") && !f.admits("search")));
    let shown = api.ok("idp new-user-scope get acme").await;
    assert!(shown.contains("github"), "{shown}");
    api.ok("idp new-user-scope set acme --inherit").await;
    assert_eq!(
        api.store.get_new_user_scope(org.id).await.unwrap(),
        Some(warden_policy::Scope::Inherit)
    );
}
