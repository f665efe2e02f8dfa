//! The impact of a change before it is made: `Snapshot::impact` over the
//! principals it may touch (every key of the orgs concerned, each on its
//! own, and every live session's principal), rendered as a summary and a
//! table. Shared by the grant switch and the gateway-wide server switch.

use std::collections::{BTreeMap, HashSet};

use warden_policy::{PolicyChange, Principal, ServerId, Snapshot};

use crate::error::ConsoleError;
use crate::html::{self, esc};
use crate::live::LiveSession;
use crate::ConsoleState;

/// Keys' own principals plus the live sessions' (each once).
pub fn principals(keys: Vec<Principal>, sessions: &[LiveSession]) -> Vec<Principal> {
    let mut out = keys;
    let mut seen: HashSet<Principal> = out.iter().copied().collect();
    for s in sessions {
        if seen.insert(s.principal) {
            out.push(s.principal);
        }
    }
    out
}

/// The summary paragraph and the per-principal table.
pub fn render(
    state: &ConsoleState,
    snapshot: &Snapshot,
    change: &PolicyChange,
    principals: &[Principal],
    sessions: &[LiveSession],
) -> Result<String, ConsoleError> {
    let impact = snapshot
        .impact(change, principals, state.admin.catalog(), html::now_ms())
        .map_err(|e| ConsoleError::BadInput(e.to_string()))?;
    let affected: HashSet<Principal> = impact.affected.iter().map(|a| a.principal).collect();
    let live = sessions
        .iter()
        .filter(|s| affected.contains(&s.principal))
        .count();
    let list = |pairs: &[(ServerId, String)]| {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (sid, tool) in pairs {
            let slug = snapshot
                .server(*sid)
                .map(|s| s.slug.clone())
                .unwrap_or_default();
            by.entry(slug).or_default().push(tool.clone());
        }
        by.iter()
            .map(|(s, t)| format!("{s}: {}", t.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut rows = String::new();
    for a in &impact.affected {
        let org = snapshot
            .key(a.principal.key)
            .and_then(|k| snapshot.org(k.org))
            .map(|o| o.slug.clone())
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&org),
            esc(&html::principal_label(snapshot, &a.principal)),
            esc(&list(&a.lost)),
            esc(&list(&a.gained)),
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">Nobody's tools change.</td></tr>");
    }
    Ok(format!(
        "<p class=\"impact\" data-testid=\"impact-summary\"><strong>{n}</strong> principal(s) and \
         <strong>{live}</strong> live session(s) are affected; {lost} tool(s) would be lost.</p>\
         <table><caption>Computed by the policy engine on revision {rev}, with and without the change</caption>\
         <thead><tr><th scope=\"col\">org</th><th scope=\"col\">principal</th><th scope=\"col\">loses</th>\
         <th scope=\"col\">gains</th></tr></thead><tbody>{rows}</tbody></table>",
        n = impact.affected.len(),
        lost = impact.tools_lost().len(),
        rev = snapshot.revision(),
    ))
}
