//! What a change would do before it is made: run the decision on the
//! snapshot as it is and on the snapshot with the change applied, and
//! compare, principal by principal, the tools each may call.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::change::PolicyChange;
use crate::decision::Catalog;
use crate::error::PolicyError;
use crate::model::*;
use crate::snapshot::{Principal, Snapshot};

/// What one principal would lose and gain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalImpact {
    pub principal: Principal,
    /// (server, tool) pairs allowed now and denied after the change.
    pub lost: Vec<(ServerId, String)>,
    /// (server, tool) pairs denied now and allowed after the change.
    pub gained: Vec<(ServerId, String)>,
}

/// The effect of one change on a set of principals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Impact {
    /// Only the principals whose reachable tools change, in input order.
    pub affected: Vec<PrincipalImpact>,
}

impl Impact {
    /// Every distinct (server, tool) some principal loses.
    pub fn tools_lost(&self) -> BTreeSet<(ServerId, String)> {
        self.affected
            .iter()
            .flat_map(|p| p.lost.iter().cloned())
            .collect()
    }
}

impl Snapshot {
    /// The (server, tool) pairs `principal` may call now: every tool the
    /// catalog knows on a server the principal may use, kept only when
    /// [`Snapshot::decide`] allows it. Servers whose catalog is unknown
    /// contribute nothing (there is nothing to name).
    pub fn reachable_tools(
        &self,
        principal: &Principal,
        catalog: &(impl Catalog + ?Sized),
        now_ms: i64,
    ) -> BTreeSet<(ServerId, String)> {
        let access = self.access(principal);
        let mut out = BTreeSet::new();
        for (server, _) in access.usable_servers(now_ms) {
            for tool in catalog.tool_names(server.server).unwrap_or_default() {
                if self
                    .decide(&access, &server.slug, &tool, catalog, now_ms)
                    .allowed
                {
                    out.insert((server.server, tool));
                }
            }
        }
        out
    }

    /// What `change` would do to `principals`: the decision run on this
    /// snapshot and on this snapshot with `change` applied (validated like a
    /// real write; an invalid change is an error, as the write would be).
    pub fn impact(
        &self,
        change: &PolicyChange,
        principals: &[Principal],
        catalog: &(impl Catalog + ?Sized),
        now_ms: i64,
    ) -> Result<Impact, PolicyError> {
        let after = self.apply(self.revision() + 1, change)?;
        let mut affected = Vec::new();
        for p in principals {
            let before = self.reachable_tools(p, catalog, now_ms);
            let next = after.reachable_tools(p, catalog, now_ms);
            let lost: Vec<_> = before.difference(&next).cloned().collect();
            let gained: Vec<_> = next.difference(&before).cloned().collect();
            if !lost.is_empty() || !gained.is_empty() {
                affected.push(PrincipalImpact {
                    principal: *p,
                    lost,
                    gained,
                });
            }
        }
        Ok(Impact { affected })
    }

    /// The principal each key of `org` forms on its own (with the agent it
    /// is bound to, if any): the principals an impact report counts besides
    /// live sessions. In key id order.
    pub fn key_principals(&self, org: OrgId) -> Vec<Principal> {
        let mut out: Vec<Principal> = self
            .keys
            .values()
            .filter(|k| k.org == org)
            .map(|k| Principal {
                key: k.id,
                end_user: None,
                agent: k.agent,
            })
            .collect();
        out.sort_by_key(|p| p.key.0);
        out
    }
}
