//! `warden serve --demo`: an embedded demo upstream MCP server on a loopback
//! port, a `demo` org that owns it with every tool granted, and a key
//! printed once, so a new user can connect a real MCP client at once.
//!
//! The seed is created once: a restart only points the demo server at the
//! new upstream port. It never re-enables a server or grant an admin
//! switched off, never widens a narrowed grant, and never mints another key
//! (the key's secret was printed on the start that created it).

use std::net::SocketAddr;

use warden_policy::ToolFilter;
use warden_store::{
    NewKey, NewOrg, NewServer, Org, OrgGrant, Page, Secret, ServerPatch, Store, Transport,
};

use crate::error::WardenError;

const ACTOR: &str = "warden-demo";
const ORG: &str = "demo";
const SERVER: &str = "demo";
/// The demo key's name (earlier versions named theirs `demo-<ms>`).
const KEY: &str = "demo";

pub struct DemoUpstream {
    pub upstream: SocketAddr,
    pub key: DemoKey,
}

pub enum DemoKey {
    /// Created on this start: the secret, shown only now.
    Created(Secret),
    /// Created on an earlier start: its id and prefix (the secret is not
    /// stored).
    Existing { id: i64, prefix: String },
    /// The demo server existed but no demo key does (an admin deleted it).
    None,
}

/// Starts the demo upstream and makes sure the demo policy points at it.
/// The org, server, grant and key are created only when the demo server
/// does not exist yet; afterwards only the server's URL follows the new
/// port (an admin's changes to the demo are left as they are).
pub async fn start(store: &Store) -> Result<DemoUpstream, WardenError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let upstream = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = warden_demo::serve(listener).await {
            tracing::error!(error = %e, "demo upstream stopped");
        }
    });
    let transport = Transport::Http {
        url: format!("http://{upstream}/mcp"),
    };

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
    if let Some(server) = store.find_server_for_org(org.id, SERVER).await? {
        // Only the port moved; enabled, grant and keys stay as admins left them.
        store
            .update_server(
                ACTOR,
                server.id,
                ServerPatch {
                    transport: Some(transport),
                    // Warden's own demo upstream on loopback: the
                    // platform set it, so no egress restriction.
                    egress_restricted: Some(false),
                    ..ServerPatch::default()
                },
            )
            .await?;
        let key = existing_key(store, &org).await?.unwrap_or(DemoKey::None);
        return Ok(DemoUpstream { upstream, key });
    }
    let server = store
        .create_server(
            ACTOR,
            NewServer {
                name: "Warden demo upstream".into(),
                ..NewServer::new(SERVER, Some(org.id), transport)
            },
        )
        .await?
        .value;
    if store.get_org_grant(org.id, server.id).await?.is_none() {
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
    let key = match existing_key(store, &org).await? {
        Some(key) => key,
        None => DemoKey::Created(
            store
                .create_key(ACTOR, NewKey::new(org.id, KEY))
                .await?
                .value
                .token,
        ),
    };
    Ok(DemoUpstream { upstream, key })
}

/// The demo key made on an earlier start, if it is still there.
async fn existing_key(store: &Store, org: &Org) -> Result<Option<DemoKey>, WardenError> {
    let keys = store
        .list_keys(org.id, Page::first(Page::MAX_LIMIT))
        .await?;
    Ok(keys
        .iter()
        .find(|k| k.name == KEY || k.name.starts_with("demo-"))
        .map(|k| DemoKey::Existing {
            id: k.id.0,
            prefix: k.token_prefix.clone(),
        }))
}

impl DemoUpstream {
    pub fn print_instructions(&self, warden: SocketAddr) {
        let (key, key_line) = match &self.key {
            DemoKey::Created(secret) => (
                secret.expose().to_owned(),
                format!("{}   (shown only now)", secret.expose()),
            ),
            DemoKey::Existing { id, prefix } => (
                "<demo key>".to_owned(),
                format!(
                    "created on the first --demo start (key id {id}, {prefix}...); its secret was shown then.\n                 A new one: warden key create demo <name>"
                ),
            ),
            DemoKey::None => (
                "<key>".to_owned(),
                "none (deleted). A new one: warden key create demo <name>".to_owned(),
            ),
        };
        crate::serve::print_out(&format!(
            r#"
Warden demo is running.
  MCP endpoint : http://{warden}/mcp          (demo upstream at http://{upstream}/mcp)
  Demo key     : {key_line}

List the tools with curl:
  curl -s http://{warden}/mcp -H 'Authorization: Bearer {key}' \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/list' -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}'

Or with the Python MCP SDK 2.x (pip install "mcp>=2.3,<3"), as a script:
  import asyncio
  import httpx2
  from mcp import Client
  from mcp.client.streamable_http import streamable_http_client

  async def main():
      async with httpx2.AsyncClient(headers={{"Authorization": "Bearer {key}"}}) as http:
          async with Client(streamable_http_client("http://{warden}/mcp", http_client=http)) as client:
              print((await client.call_tool("demo__echo", {{"text": "hi"}})).content[0].text)

  asyncio.run(main())
"#,
            upstream = self.upstream
        ));
    }
}
