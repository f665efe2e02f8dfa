//! The CLI against a real admin API (real router, real SQLite store).

use std::sync::Arc;

use clap::Parser;
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
    async fn run(&self, argv: &str, json: bool) -> Result<(), CliError> {
        let args = std::iter::once("warden").chain(argv.split_whitespace());
        let cli = TestCli::try_parse_from(args).unwrap_or_else(|e| panic!("{argv}: {e}"));
        run(cli.cmd, &self.url, TOKEN, json).await
    }

    async fn ok(&self, argv: &str) {
        if let Err(e) = self.run(argv, false).await {
            panic!("warden {argv}: {e}");
        }
    }
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
    for list in [
        "org list",
        "server list",
        "server list --org acme",
        "grant list acme",
        "team list acme",
        "agent list acme",
        "key list acme",
        "audit --org acme --limit 5",
    ] {
        api.ok(list).await;
        api.run(list, true).await.unwrap();
    }

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
        Err(CliError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (409, "duplicate"))
        }
        other => panic!("expected a 409: {other:?}"),
    }
    match api
        .run("scope set acme team ops --server github=delete", false)
        .await
    {
        Err(CliError::Api {
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
        matches!(bad_token, Err(CliError::Api { status: 401, .. })),
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
        matches!(unreachable, Err(CliError::Connect { .. })),
        "{unreachable:?}"
    );

    api.ok("org delete acme").await;
    assert!(api.store.live().snapshot().org_by_slug("acme").is_none());
}
