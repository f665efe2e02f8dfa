//! `warden serve --demo`: an embedded demo upstream MCP server on a loopback
//! port, a `demo` org that owns it with every tool granted, and a fresh key
//! printed once, so a new user can connect a real MCP client at once.

use std::net::SocketAddr;

use warden_policy::ToolFilter;
use warden_store::{
    NewKey, NewOrg, NewServer, OrgGrant, OrgGrantPatch, Secret, ServerPatch, Store, Transport,
};

use crate::error::WardenError;

const ACTOR: &str = "warden-demo";
const ORG: &str = "demo";
const SERVER: &str = "demo";

pub struct DemoUpstream {
    pub upstream: SocketAddr,
    pub key: Secret,
}

/// Starts the demo upstream and makes sure the demo policy points at it.
/// Idempotent across restarts: the org, server and grant are reused (the
/// server's URL follows the new port); each start adds one new key.
pub async fn start(store: &Store) -> Result<DemoUpstream, WardenError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let upstream = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = warden_demo::serve(listener).await {
            tracing::error!(error = %e, "demo upstream stopped");
        }
    });
    let url = format!("http://{upstream}/mcp");

    let org = match store.get_org_by_slug(ORG).await? {
        Some(org) => org,
        None => {
            store
                .create_org(
                    ACTOR,
                    NewOrg {
                        slug: ORG.into(),
                        name: "Demo organization".into(),
                    },
                )
                .await?
                .value
        }
    };
    let transport = Transport::Http { url };
    let server = match store.find_server_for_org(org.id, SERVER).await? {
        Some(server) => {
            store
                .update_server(
                    ACTOR,
                    server.id,
                    ServerPatch {
                        transport: Some(transport),
                        enabled: Some(true),
                        // Warden's own demo upstream on loopback: the
                        // platform set it, so no egress restriction.
                        egress_restricted: Some(false),
                        ..ServerPatch::default()
                    },
                )
                .await?
                .value
        }
        None => {
            store
                .create_server(
                    ACTOR,
                    NewServer {
                        name: "Warden demo upstream".into(),
                        ..NewServer::new(SERVER, Some(org.id), transport)
                    },
                )
                .await?
                .value
        }
    };
    match store.get_org_grant(org.id, server.id).await? {
        Some(_) => {
            store
                .update_org_grant(
                    ACTOR,
                    org.id,
                    server.id,
                    OrgGrantPatch {
                        enabled: Some(true),
                        filter: Some(ToolFilter::All),
                    },
                )
                .await?;
        }
        None => {
            store
                .create_org_grant(
                    ACTOR,
                    OrgGrant {
                        org: org.id,
                        server: server.id,
                        enabled: true,
                        filter: ToolFilter::All,
                    },
                )
                .await?;
        }
    }
    let created = store
        .create_key(ACTOR, NewKey::new(org.id, format!("demo-{}", now_ms())))
        .await?;
    Ok(DemoUpstream {
        upstream,
        key: created.value.token,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl DemoUpstream {
    pub fn print_instructions(&self, warden: SocketAddr) {
        let key = self.key.expose();
        crate::serve::print_out(&format!(
            r#"
Warden demo is running.
  MCP endpoint : http://{warden}/mcp          (demo upstream at http://{upstream}/mcp)
  Demo key     : {key}   (shown only now; a new one is made on each --demo start)

List the tools with curl:
  curl -s http://{warden}/mcp -H 'Authorization: Bearer {key}' \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{}}}}'

Or with the Python MCP SDK (pip install mcp):
  from mcp import ClientSession
  from mcp.client.streamable_http import streamablehttp_client
  async with streamablehttp_client("http://{warden}/mcp", headers={{"Authorization": "Bearer {key}"}}) as (r, w, _):
      async with ClientSession(r, w) as s:
          await s.initialize(); print(await s.call_tool("demo__echo", {{"text": "hi"}}))
"#,
            upstream = self.upstream
        ));
    }
}
