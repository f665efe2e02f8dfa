//! What one caller sees through one endpoint: the engine's access for the
//! caller, narrowed by the mount (`/mcp`, one server, one toolset). Every
//! yes/no comes from `warden_policy`; a toolset mount only ever removes.

use std::hash::{Hash, Hasher};

use warden_policy::{Access, Catalog, ServerAccess, ServerId, Snapshot, ToolFilter, ToolsetRow};

/// The endpoint a request came in on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mount {
    /// `/mcp`: every usable server, names prefixed `{slug}__`.
    All,
    /// `/mcp/servers/{slug}`: one server, names unchanged.
    Server(String),
    /// `/mcp/toolsets/{slug}`: narrowed to a toolset, names prefixed.
    Toolset(String),
}

impl Mount {
    /// Whether names are prefixed with the server slug on this mount.
    pub fn prefixed(&self) -> bool {
        !matches!(self, Mount::Server(_))
    }

    pub fn label(&self) -> &'static str {
        match self {
            Mount::All => "all",
            Mount::Server(_) => "server",
            Mount::Toolset(_) => "toolset",
        }
    }
}

/// Separator between server slug and name. Slugs never contain `_`, so
/// the split at the first `__` is unambiguous.
pub const SEP: &str = "__";
/// Prefix of resource URIs on prefixed mounts: `warden:{slug}/{upstream uri}`.
pub const RESOURCE_SCHEME: &str = "warden:";

pub fn prefix_name(slug: &str, name: &str) -> String {
    format!("{slug}{SEP}{name}")
}

pub fn prefix_uri(slug: &str, uri: &str) -> String {
    format!("{RESOURCE_SCHEME}{slug}/{uri}")
}

/// `warden:{slug}/{uri}` back into (slug, uri).
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix(RESOURCE_SCHEME)?.split_once('/')
}

/// The outcome of one gateway decision.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    pub allowed: bool,
    /// Stable reason code when denied: the engine's, or `not_in_toolset`
    /// when a toolset mount narrowed an allowed call away.
    pub reason: Option<&'static str>,
    pub revision: u64,
    pub server: Option<ServerId>,
}

pub const NOT_IN_TOOLSET: &str = "not_in_toolset";

pub struct View<'a> {
    pub snapshot: &'a Snapshot,
    pub access: &'a Access,
    pub mount: &'a Mount,
    /// The toolset of a toolset mount (resolved in the caller's org).
    pub toolset: Option<&'a ToolsetRow>,
    pub now_ms: i64,
}

impl<'a> View<'a> {
    fn toolset_admits(&self, server: ServerId, tool: Option<&str>) -> bool {
        match self.toolset {
            None => true,
            Some(ts) => ts.servers.get(&server).is_some_and(|f| match tool {
                Some(t) => f.admits(t),
                None => !f.is_empty(),
            }),
        }
    }

    /// The usable servers visible on this mount, sorted by slug, each with
    /// the engine's effective filter.
    pub fn servers(&self) -> Vec<(&'a ServerAccess, &'a ToolFilter)> {
        let mut servers: Vec<_> = self
            .access
            .usable_servers(self.now_ms)
            .filter(|(sa, _)| match self.mount {
                Mount::All => true,
                Mount::Server(slug) => sa.slug == *slug,
                Mount::Toolset(_) => self.toolset_admits(sa.server, None),
            })
            .collect();
        servers.sort_by(|a, b| a.0.slug.cmp(&b.0.slug));
        servers
    }

    /// Is `tool` of `server` listed on this mount? Same answer as
    /// [`View::decide_tool`] for a tool in the catalog.
    pub fn lists(&self, server: &ServerAccess, filter: &ToolFilter, tool: &str) -> bool {
        filter.admits(tool) && self.toolset_admits(server.server, Some(tool))
    }

    /// Splits an exposed name into (server slug, upstream name).
    pub fn resolve_name<'n>(&self, exposed: &'n str) -> (&'n str, &'n str)
    where
        'a: 'n,
    {
        match self.mount {
            Mount::Server(slug) => (slug.as_str(), exposed),
            _ => exposed.split_once(SEP).unwrap_or(("", exposed)),
        }
    }

    /// The call-time decision for a tool on `slug`.
    pub fn decide_tool(
        &self,
        slug: &str,
        tool: &str,
        catalog: &(impl Catalog + ?Sized),
    ) -> Verdict {
        let d = self
            .snapshot
            .decide(self.access, slug, tool, catalog, self.now_ms);
        let narrowed = d.allowed && !d.server.is_some_and(|s| self.toolset_admits(s, Some(tool)));
        Verdict {
            allowed: d.allowed && !narrowed,
            reason: if narrowed {
                Some(NOT_IN_TOOLSET)
            } else {
                d.reason.map(|r| r.code())
            },
            revision: d.revision,
            server: d.server,
        }
    }

    /// The server-level decision (resources, prompts, completions).
    pub fn decide_server(&self, slug: &str) -> Verdict {
        let d = self.snapshot.decide_server(self.access, slug, self.now_ms);
        let narrowed = d.allowed && !d.server.is_some_and(|s| self.toolset_admits(s, None));
        let off_mount = matches!(self.mount, Mount::Server(m) if m != slug);
        Verdict {
            allowed: d.allowed && !narrowed && !off_mount,
            reason: if off_mount {
                Some("server_unknown")
            } else if narrowed {
                Some(NOT_IN_TOOLSET)
            } else {
                d.reason.map(|r| r.code())
            },
            revision: d.revision,
            server: d.server,
        }
    }
}

/// A fingerprint of a visible tool list: changes iff the set of visible
/// (server, tool) pairs or the definition of a visible tool changed. A
/// catalog change confined to tools the caller cannot see leaves it alone.
pub fn fingerprint(
    view: &View<'_>,
    catalog_of: impl Fn(ServerId) -> Option<std::sync::Arc<crate::upstream::ToolCatalog>>,
) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (sa, filter) in view.servers() {
        let Some(catalog) = catalog_of(sa.server) else {
            continue;
        };
        // The slug counts only with a tool it shows: a server entering or
        // leaving access with none of its tools visible changes no list.
        for (name, digest) in catalog.names_with_digests() {
            if view.lists(sa, filter, name) {
                sa.slug.hash(&mut h);
                name.hash(&mut h);
                digest.hash(&mut h);
            }
        }
    }
    h.finish()
}
