//! A server's tool catalog as the gateway caches it.

use std::collections::HashMap;

use serde_json::Value;

/// The raw tool objects of one server, as the upstream sent them, with
/// their JSON pre-rendered for fast listings.
#[derive(Debug, Default)]
pub struct ToolCatalog {
    pub tools: Vec<Value>,
    pub by_name: HashMap<String, usize>,
    /// Bumped whenever the tool objects change.
    pub generation: u64,
    names: Vec<String>,
    /// A digest of each tool's definition: a session's fingerprint moves
    /// when a tool it sees changes, not when one it cannot see does.
    digests: Vec<u64>,
    /// Each tool serialized unchanged (`/mcp/servers/{slug}`).
    pub plain_json: Vec<String>,
    /// Each tool with its name prefixed `{slug}__` (`/mcp`, toolsets).
    pub prefixed_json: Vec<String>,
    /// All of `plain_json` / `prefixed_json` joined with commas: the usual
    /// listing shows a server's whole catalog, copied in one piece.
    pub plain_joined: String,
    pub prefixed_joined: String,
}

impl ToolCatalog {
    pub fn build(slug: &str, tools: Vec<Value>, generation: u64) -> ToolCatalog {
        let mut by_name = HashMap::with_capacity(tools.len());
        let mut names = Vec::with_capacity(tools.len());
        let mut plain_json = Vec::with_capacity(tools.len());
        let mut prefixed_json = Vec::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            by_name.insert(name.clone(), i);
            plain_json.push(tool.to_string());
            let mut prefixed = tool.clone();
            if let Some(obj) = prefixed.as_object_mut() {
                obj.insert(
                    "name".into(),
                    Value::String(crate::view::prefix_name(slug, &name)),
                );
            }
            prefixed_json.push(prefixed.to_string());
            names.push(name);
        }
        let digests = plain_json
            .iter()
            .map(|json| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(json, &mut h);
                std::hash::Hasher::finish(&h)
            })
            .collect();
        ToolCatalog {
            digests,
            plain_joined: plain_json.join(","),
            prefixed_joined: prefixed_json.join(","),
            tools,
            by_name,
            generation,
            names,
            plain_json,
            prefixed_json,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn names_in_order(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Each tool's name with the digest of its definition, in order.
    pub fn names_with_digests(&self) -> impl Iterator<Item = (&str, u64)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.digests.iter().copied())
    }
}
