//! The invariants of DESIGN.md, property-tested over random policies.
//!
//! Each generated policy is small, so every principal, every slug (including
//! other orgs' servers and an unknown one) and every tool (including names
//! that differ only in case, and one no filter names) is checked per case.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use common::*;
use proptest::prelude::*;
use warden_policy::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 384,
        // Shrinking is cheap here and makes failures readable.
        max_shrink_iters: 4096,
        // Failures print their minimal input; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A filter admits a tool: exact string equality, written out here so the
/// oracle below shares no code with the engine.
fn spec_admits(filter: &ToolFilter, tool: &str) -> bool {
    match filter {
        ToolFilter::All => true,
        ToolFilter::Only(names) => names.iter().any(|n| n.as_str() == tool),
        ToolFilter::Except(names) => !names.iter().any(|n| n.as_str() == tool),
    }
}

/// DESIGN.md "The decision", written out directly over the rows: an oracle
/// that shares no code with the engine.
fn spec_reason(
    rows: &PolicyRows,
    catalog: &common::Catalog,
    p: &Principal,
    slug: &str,
    tool: &str,
) -> Option<Reason> {
    let key = rows.keys.iter().find(|k| k.id == p.key)?;
    if key.revoked {
        return Some(Reason::KeyRevoked);
    }
    if key.expires_at_ms.is_some_and(|t| NOW >= t) {
        return Some(Reason::KeyExpired);
    }
    if p.end_user
        .and_then(|u| rows.end_users.iter().find(|r| r.id == u))
        .is_some_and(|u| u.disabled)
    {
        return Some(Reason::EndUserDisabled);
    }
    let org = rows.orgs.iter().find(|o| o.id == key.org)?;
    if org.suspended {
        return Some(Reason::OrgSuspended);
    }
    let Some(server) = rows
        .servers
        .iter()
        .find(|s| s.slug == slug && s.owner_org.is_none_or(|o| o == org.id))
    else {
        return Some(Reason::ServerUnknown);
    };
    if !server.enabled {
        return Some(Reason::ServerDisabled);
    }
    let Some(grant) = rows
        .org_grants
        .iter()
        .find(|g| g.org == org.id && g.server == server.id)
    else {
        return Some(Reason::ServerNotGrantedToOrg);
    };
    if !grant.enabled {
        return Some(Reason::ServerDisabledByOrg);
    }
    if !spec_admits(&grant.filter, tool) {
        return Some(Reason::ToolBlockedByOrg);
    }
    let admits = |scope: &Scope| match scope {
        Scope::Inherit => true,
        Scope::Grants(g) => {
            g.servers
                .get(&server.id)
                .is_some_and(|f| spec_admits(f, tool))
                || g.toolsets.iter().any(|ts| {
                    rows.toolsets
                        .iter()
                        .find(|t| t.id == *ts)
                        .and_then(|t| t.servers.get(&server.id))
                        .is_some_and(|f| spec_admits(f, tool))
                })
        }
    };
    let team = key.team.and_then(|t| rows.teams.iter().find(|r| r.id == t));
    if team.is_some_and(|t| !admits(&t.scope)) {
        return Some(Reason::NotGrantedByTeam);
    }
    if !admits(&key.scope) {
        return Some(Reason::NotGrantedByKey);
    }
    let user = p
        .end_user
        .and_then(|u| rows.end_users.iter().find(|r| r.id == u));
    if user.is_some_and(|u| !admits(&u.scope)) {
        return Some(Reason::NotGrantedByEndUser);
    }
    let agent = p.agent.and_then(|a| rows.agents.iter().find(|r| r.id == a));
    if agent.is_some_and(|a| !admits(&a.scope)) {
        return Some(Reason::NotGrantedByAgent);
    }
    if !catalog
        .get(&server.id)
        .is_some_and(|t| t.iter().any(|n| n.as_str() == tool))
    {
        return Some(Reason::ToolUnknown);
    }
    None
}

proptest! {
    #![proptest_config(config())]

    /// Not one of DESIGN.md's five, but what they all rest on: the engine
    /// gives the reason the spec's check order gives, for every question.
    #[test]
    fn decision_follows_the_design(w in world()) {
        let snapshot = build(&w.rows);
        for p in principals(&w.rows) {
            let access = snapshot.access(&p);
            for slug in slugs(&w.rows) {
                for tool in tool_names() {
                    let d = snapshot.decide(&access, &slug, tool, &w.catalog, NOW);
                    let expected = spec_reason(&w.rows, &w.catalog, &p, &slug, tool);
                    prop_assert_eq!(d.reason, expected, "{:?} {} {}", p, slug, tool);
                    prop_assert_eq!(d.allowed, expected.is_none());
                    prop_assert_eq!(d.trace.first_failure(), d.reason);
                }
            }
        }
    }

    /// list = call: a tool appears in what `usable_servers` + catalog list iff
    /// `decide` allows calling it.
    #[test]
    fn list_equals_call(w in world()) {
        let snapshot = build(&w.rows);
        for p in principals(&w.rows) {
            let access = snapshot.access(&p);
            let listed = listing(&access, &w.catalog);
            for slug in slugs(&w.rows) {
                let usable = access.usable_server(&slug, NOW).is_some();
                let mut any_tool_allowed = false;
                for tool in tool_names() {
                    let d = snapshot.decide(&access, &slug, tool, &w.catalog, NOW);
                    let in_list = listed.contains(&(slug.clone(), tool.to_owned()));
                    prop_assert_eq!(d.allowed, in_list, "{:?} {} {} {:?}", p, slug, tool, d.reason);
                    prop_assert_eq!(d.allowed, d.reason.is_none());
                    // A cold decision is the same decision.
                    prop_assert_eq!(d, snapshot.decide_for(&p, &slug, tool, &w.catalog, NOW));
                    // Access::admits is checks 1-4: the call minus the catalog.
                    let in_catalog = d.server.is_some_and(|s| w.catalog.get(&s).is_some_and(|t| t.contains(tool)));
                    prop_assert_eq!(d.allowed, access.admits(&slug, tool, NOW) && in_catalog);
                    any_tool_allowed |= d.allowed;
                }
                // A server with a callable tool is reachable at server level
                // (resources, prompts) too.
                if any_tool_allowed || usable {
                    prop_assert!(snapshot.decide_server(&access, &slug, NOW).allowed, "{:?} {}", p, slug);
                }
            }
        }
    }
}

/// Where to flip a switch off.
#[derive(Debug, Clone)]
enum Switch {
    /// A server's gateway-wide `enabled`.
    Gateway(u8),
    /// An org grant's `enabled`.
    OrgGrant(u8),
}

fn switch() -> impl Strategy<Value = Switch> {
    prop_oneof![
        any::<u8>().prop_map(Switch::Gateway),
        any::<u8>().prop_map(Switch::OrgGrant),
    ]
}

fn set_switch(
    rows: &mut PolicyRows,
    switch: &Switch,
    on: bool,
) -> Option<(ServerId, Option<OrgId>)> {
    match switch {
        Switch::Gateway(i) => {
            let n = rows.servers.len();
            let s = &mut rows.servers[*i as usize % n];
            s.enabled = on;
            Some((s.id, None))
        }
        Switch::OrgGrant(i) => {
            let n = rows.org_grants.len();
            if n == 0 {
                return None;
            }
            let g = &mut rows.org_grants[*i as usize % n];
            g.enabled = on;
            Some((g.server, Some(g.org)))
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// org disable revokes: with the switch off, no principal in its scope can
    /// list or call any tool of the server (or reach it at server level),
    /// whatever its attachments; nothing else changes; switching it back on
    /// restores exactly the previous decisions.
    #[test]
    fn disable_revokes_and_reenable_restores(w in world(), which in switch()) {
        let mut enabled = w.rows.clone();
        let Some((server, org_scope)) = set_switch(&mut enabled, &which, true) else {
            return Ok(());
        };
        let mut disabled = enabled.clone();
        set_switch(&mut disabled, &which, false);
        disabled.revision += 1;
        let mut reenabled = enabled.clone();
        reenabled.revision += 2;

        let slugs = slugs(&w.rows);
        let principals = principals(&w.rows);
        let before = build(&enabled);
        let off = build(&disabled);
        let after = build(&reenabled);
        let d_before = decisions(&before, &principals, &slugs, &w.catalog);
        let d_off = decisions(&off, &principals, &slugs, &w.catalog);
        let d_after = decisions(&after, &principals, &slugs, &w.catalog);

        let row = enabled.servers.iter().find(|s| s.id == server).unwrap();
        let in_scope = |p: &Principal| {
            let org = enabled.keys.iter().find(|k| k.id == p.key).unwrap().org;
            org_scope.is_none_or(|o| o == org) && row.owner_org.is_none_or(|o| o == org)
        };
        for p in &principals {
            let access = off.access(p);
            let affected = in_scope(p);
            if affected {
                prop_assert!(access.usable_server(&row.slug, NOW).is_none());
                prop_assert!(!listing(&access, &w.catalog).iter().any(|(s, _)| *s == row.slug));
                prop_assert!(!off.decide_server(&access, &row.slug, NOW).allowed);
            }
            for slug in &slugs {
                for tool in tool_names() {
                    let k = (*p, slug.clone(), tool.to_owned());
                    if affected && *slug == row.slug {
                        let o = &d_off[&k];
                        prop_assert!(!o.allowed, "{:?} {} {} still allowed", p, slug, tool);
                        let why = o.reason.unwrap();
                        let expected = if org_scope.is_some() { Reason::ServerDisabledByOrg } else { Reason::ServerDisabled };
                        // An earlier check (dead key, or the gateway switch
                        // that was already off) may fail first.
                        prop_assert!(why == expected || why.is_principal_wide() || why == Reason::ServerDisabled, "{:?}", why);
                    } else {
                        prop_assert_eq!(&d_off[&k], &d_before[&k], "{:?} {} {} changed", p, slug, tool);
                    }
                }
            }
        }
        prop_assert_eq!(&d_after, &d_before);

        // The same flip applied incrementally, as replicas do, decides the same.
        let flip = |rows: &PolicyRows| match which {
            Switch::Gateway(_) => PolicyChange::UpsertServer(rows.servers.iter().find(|s| s.id == server).unwrap().clone()),
            Switch::OrgGrant(_) => PolicyChange::UpsertOrgGrant(rows.org_grants.iter().find(|g| g.server == server && Some(g.org) == org_scope).unwrap().clone()),
        };
        let off_applied = before.apply(disabled.revision, &flip(&disabled)).unwrap();
        prop_assert_eq!(&decisions(&off_applied, &principals, &slugs, &w.catalog), &d_off);
        let on_applied = off_applied.apply(reenabled.revision, &flip(&enabled)).unwrap();
        prop_assert_eq!(&decisions(&on_applied, &principals, &slugs, &w.catalog), &d_before);
    }
}

/// One narrowing edit: a scope goes from *inherit* to grants, or a filter,
/// entry or toolset reference at some level shrinks or goes away.
#[derive(Debug, Clone)]
struct Narrowing {
    /// 0 org grant, 1 team, 2 key, 3 end user, 4 agent, 5 toolset,
    /// 6 server switch, 7 org grant switch.
    target: u8,
    index: u8,
    entry: u8,
    op: u8,
    mask: u8,
}

fn narrowing() -> impl Strategy<Value = Narrowing> {
    (0u8..8, any::<u8>(), any::<u8>(), any::<u8>(), 0u8..64).prop_map(
        |(target, index, entry, op, mask)| Narrowing {
            target,
            index,
            entry,
            op,
            mask,
        },
    )
}

/// A filter admitting a subset of what `f` admits.
fn shrink(f: &ToolFilter, op: u8, mask: u8) -> ToolFilter {
    let m = tools_of(mask);
    match (f, op % 3) {
        (_, 0) => ToolFilter::none(),
        (ToolFilter::All, 1) => ToolFilter::Only(m),
        (ToolFilter::All, _) => ToolFilter::except(m),
        (ToolFilter::Only(s), _) => ToolFilter::Only(s.intersection(&m).cloned().collect()),
        (ToolFilter::Except(s), 1) => ToolFilter::except(s.union(&m).cloned()),
        (ToolFilter::Except(s), _) => ToolFilter::Only(m.difference(s).cloned().collect()),
    }
}

fn narrow_scope(
    scope: &mut Scope,
    org: OrgId,
    granted: &[ServerId],
    toolsets: &[ToolsetId],
    n: &Narrowing,
) {
    match scope {
        Scope::Inherit => {
            let mut g = ScopeGrants::default();
            for (i, server) in granted.iter().enumerate() {
                if n.mask & (1 << (i % 6)) != 0 {
                    g.servers
                        .insert(*server, shrink(&ToolFilter::All, n.op, n.entry % 64));
                }
            }
            if n.op & 0x80 != 0 {
                g.toolsets.extend(toolsets.first());
            }
            let _ = org;
            *scope = Scope::Grants(g);
        }
        Scope::Grants(g) => {
            let servers: Vec<ServerId> = g.servers.keys().copied().collect();
            let refs: Vec<ToolsetId> = g.toolsets.iter().copied().collect();
            match n.op % 3 {
                0 if !servers.is_empty() => {
                    g.servers.remove(&servers[n.entry as usize % servers.len()]);
                }
                1 if !refs.is_empty() => {
                    g.toolsets.remove(&refs[n.entry as usize % refs.len()]);
                }
                _ if !servers.is_empty() => {
                    let s = servers[n.entry as usize % servers.len()];
                    let f = shrink(&g.servers[&s], n.op / 3, n.mask);
                    g.servers.insert(s, f);
                }
                _ => {}
            }
        }
    }
}

fn apply_narrowing(rows: &mut PolicyRows, n: &Narrowing) {
    let i = n.index as usize;
    let granted = |rows: &PolicyRows, org: OrgId| -> Vec<ServerId> {
        rows.org_grants
            .iter()
            .filter(|g| g.org == org)
            .map(|g| g.server)
            .collect()
    };
    let toolsets = |rows: &PolicyRows, org: OrgId| -> Vec<ToolsetId> {
        rows.toolsets
            .iter()
            .filter(|t| t.org == org)
            .map(|t| t.id)
            .collect()
    };
    macro_rules! level {
        ($list:ident) => {{
            if rows.$list.is_empty() {
                return;
            }
            let at = i % rows.$list.len();
            let org = rows.$list[at].org;
            let (g, t) = (granted(rows, org), toolsets(rows, org));
            narrow_scope(&mut rows.$list[at].scope, org, &g, &t, n);
        }};
    }
    match n.target {
        0 => {
            let len = rows.org_grants.len().max(1);
            if let Some(g) = rows.org_grants.get_mut(i % len) {
                g.filter = shrink(&g.filter, n.op, n.mask);
            }
        }
        1 => level!(teams),
        2 => level!(keys),
        3 => level!(end_users),
        4 => level!(agents),
        5 => {
            if rows.toolsets.is_empty() {
                return;
            }
            let len = rows.toolsets.len();
            let t = &mut rows.toolsets[i % len];
            let servers: Vec<ServerId> = t.servers.keys().copied().collect();
            if servers.is_empty() {
                return;
            }
            let s = servers[n.entry as usize % servers.len()];
            if n.op % 4 == 3 {
                t.servers.remove(&s);
            } else {
                let f = shrink(&t.servers[&s], n.op, n.mask);
                t.servers.insert(s, f);
            }
        }
        6 => {
            let len = rows.servers.len();
            rows.servers[i % len].enabled = false;
        }
        _ => {
            let len = rows.org_grants.len().max(1);
            if let Some(g) = rows.org_grants.get_mut(i % len) {
                g.enabled = false;
            }
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// narrowing never widens: after any narrowing edit (or several), every
    /// allowed decision was allowed before and every listed tool was listed
    /// before.
    #[test]
    fn narrowing_never_widens(w in world(), edits in prop::collection::vec(narrowing(), 1..4)) {
        let mut narrowed = w.rows.clone();
        for n in &edits {
            apply_narrowing(&mut narrowed, n);
        }
        narrowed.revision += 1;
        let slugs = slugs(&w.rows);
        let principals = principals(&w.rows);
        let before = build(&w.rows);
        let after = build(&narrowed);
        let allowed_before = allowed_set(&decisions(&before, &principals, &slugs, &w.catalog));
        let allowed_after = allowed_set(&decisions(&after, &principals, &slugs, &w.catalog));
        let widened: Vec<_> = allowed_after.difference(&allowed_before).collect();
        prop_assert!(widened.is_empty(), "narrowing allowed {:?}", widened);
        for p in &principals {
            let listed_before = listing(&before.access(p), &w.catalog);
            let listed_after = listing(&after.access(p), &w.catalog);
            prop_assert!(listed_after.is_subset(&listed_before), "{:?}", p);
        }
    }
}

/// What to delete.
#[derive(Debug, Clone)]
enum Deletion {
    Server(u8),
    OrgGrant(u8),
    Toolset(u8),
    Team(u8),
    Agent(u8),
}

fn deletion() -> impl Strategy<Value = Deletion> {
    prop_oneof![
        any::<u8>().prop_map(Deletion::Server),
        any::<u8>().prop_map(Deletion::OrgGrant),
        any::<u8>().prop_map(Deletion::Toolset),
        any::<u8>().prop_map(Deletion::Team),
        any::<u8>().prop_map(Deletion::Agent),
    ]
}

/// The change feed's form of a deletion (same selection as the test).
fn deletion_change(rows: &PolicyRows, what: &Deletion) -> PolicyChange {
    match *what {
        Deletion::Server(i) => PolicyChange::DeleteServer(nth(&rows.servers, i).unwrap().id),
        Deletion::OrgGrant(i) => {
            let g = nth(&rows.org_grants, i).unwrap();
            PolicyChange::DeleteOrgGrant {
                org: g.org,
                server: g.server,
            }
        }
        Deletion::Toolset(i) => PolicyChange::DeleteToolset(nth(&rows.toolsets, i).unwrap().id),
        Deletion::Team(i) => PolicyChange::DeleteTeam(nth(&rows.teams, i).unwrap().id),
        Deletion::Agent(i) => PolicyChange::DeleteAgent(nth(&rows.agents, i).unwrap().id),
    }
}

fn nth<T: Clone>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[i as usize % items.len()].clone())
}

/// Every server id any row mentions.
fn referenced_servers(rows: &PolicyRows) -> BTreeSet<ServerId> {
    let mut out: BTreeSet<ServerId> = rows.org_grants.iter().map(|g| g.server).collect();
    let scopes = rows
        .teams
        .iter()
        .map(|r| &r.scope)
        .chain(rows.keys.iter().map(|r| &r.scope))
        .chain(rows.end_users.iter().map(|r| &r.scope))
        .chain(rows.agents.iter().map(|r| &r.scope));
    for s in scopes {
        if let Scope::Grants(g) = s {
            out.extend(g.servers.keys());
        }
    }
    for t in &rows.toolsets {
        out.extend(t.servers.keys());
    }
    out
}

fn referenced_toolsets(rows: &PolicyRows) -> BTreeSet<ToolsetId> {
    rows.teams
        .iter()
        .map(|r| &r.scope)
        .chain(rows.keys.iter().map(|r| &r.scope))
        .chain(rows.end_users.iter().map(|r| &r.scope))
        .chain(rows.agents.iter().map(|r| &r.scope))
        .filter_map(Scope::grants)
        .flat_map(|g| g.toolsets.iter().copied())
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// delete cascades: after a delete the rows still build (nothing
    /// dangles), no surviving principal gains access, and re-creating what
    /// was deleted re-grants nothing the deleted attachments had.
    #[test]
    fn delete_cascades(w in world(), what in deletion()) {
        let slugs = slugs(&w.rows);
        let before = build(&w.rows);
        let d_before = decisions(&before, &principals(&w.rows), &slugs, &w.catalog);

        let mut deleted = w.rows.clone();
        deleted.revision += 1;
        // The rows to rebuild afterwards, and which (org, server) pairs were
        // re-granted from nothing (if any).
        let mut recreated;
        let mut regranted: Vec<(OrgId, ServerId)> = Vec::new();
        match what {
            Deletion::Server(i) => {
                let server = nth(&w.rows.servers, i).unwrap();
                deleted.delete_server(server.id);
                prop_assert!(!referenced_servers(&deleted).contains(&server.id));
                recreated = deleted.clone();
                recreated.servers.push(ServerRow { enabled: true, ..server.clone() });
                for org in &w.rows.orgs {
                    if server.owner_org.is_none_or(|o| o == org.id) {
                        recreated.org_grants.push(OrgGrantRow { org: org.id, server: server.id, enabled: true, filter: ToolFilter::All });
                        regranted.push((org.id, server.id));
                    }
                }
            }
            Deletion::OrgGrant(i) => {
                let Some(grant) = nth(&w.rows.org_grants, i) else { return Ok(()) };
                deleted.delete_org_grant(grant.org, grant.server);
                recreated = deleted.clone();
                recreated.org_grants.push(OrgGrantRow { enabled: true, filter: ToolFilter::All, ..grant.clone() });
                regranted.push((grant.org, grant.server));
            }
            Deletion::Toolset(i) => {
                let Some(toolset) = nth(&w.rows.toolsets, i) else { return Ok(()) };
                deleted.delete_toolset(toolset.id);
                prop_assert!(!referenced_toolsets(&deleted).contains(&toolset.id));
                recreated = deleted.clone();
                // Re-created as wide as the org allows: still nobody refers to it.
                let servers = w.rows.org_grants.iter().filter(|g| g.org == toolset.org).map(|g| (g.server, ToolFilter::All)).collect::<BTreeMap<_, _>>();
                recreated.toolsets.push(ToolsetRow { servers, ..toolset.clone() });
            }
            Deletion::Team(i) => {
                let Some(team) = nth(&w.rows.teams, i) else { return Ok(()) };
                deleted.delete_team(team.id);
                prop_assert!(!deleted.keys.iter().any(|k| k.team == Some(team.id)));
                prop_assert!(!deleted.agents.iter().any(|a| a.team == Some(team.id)));
                recreated = deleted.clone();
                recreated.teams.push(TeamRow { scope: Scope::Inherit, ..team.clone() });
            }
            Deletion::Agent(i) => {
                let Some(agent) = nth(&w.rows.agents, i) else { return Ok(()) };
                deleted.delete_agent(agent.id);
                prop_assert!(!deleted.keys.iter().any(|k| k.agent == Some(agent.id)));
                recreated = deleted.clone();
                recreated.agents.push(AgentRow { scope: Scope::Inherit, ..agent.clone() });
            }
        }
        recreated.revision += 2;

        // Nothing dangles.
        let after = match Snapshot::build(deleted.clone()) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("{what:?} left a dangling row: {e}"))),
        };
        let again = match Snapshot::build(recreated.clone()) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("re-creating after {what:?}: {e}"))),
        };

        // Survivors never gain access by a delete.
        let survivors = principals(&deleted);
        let d_after = decisions(&after, &survivors, &slugs, &w.catalog);

        // The delete applied incrementally cascades the same way.
        let applied = match before.apply(deleted.revision, &deletion_change(&w.rows, &what)) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("applying {what:?}: {e}"))),
        };
        prop_assert_eq!(&decisions(&applied, &survivors, &slugs, &w.catalog), &d_after);
        prop_assert!(Snapshot::build(applied.to_rows()).is_ok());
        for (k, o) in &d_after {
            if o.allowed {
                prop_assert!(d_before.get(k).is_some_and(|b| b.allowed), "{:?} gained by deleting", k);
            }
        }

        // Re-creating grants nothing through the old attachments: any
        // survivor with a scoped level reaches nothing on a re-granted
        // server, and re-created toolsets/teams/agents change nobody.
        let d_again = decisions(&again, &survivors, &slugs, &w.catalog);
        if regranted.is_empty() {
            prop_assert_eq!(&d_again, &d_after);
        }
        for p in &survivors {
            let org = deleted.keys.iter().find(|k| k.id == p.key).unwrap().org;
            if !has_scoped_level(&deleted, p) {
                continue;
            }
            let access = again.access(p);
            for (g_org, server) in &regranted {
                if *g_org != org {
                    continue;
                }
                let slug = &recreated.servers.iter().find(|s| s.id == *server).unwrap().slug;
                prop_assert!(access.usable_server(slug, NOW).is_none(), "{:?} re-granted {} after {:?}", p, slug, what);
            }
        }
    }
}

/// A requested scope, over every server and toolset id in the rows plus
/// ids that exist nowhere.
fn requested_grants(rows: &PolicyRows, spec: &(Vec<(u8, FilterSpec)>, Vec<u8>)) -> ScopeGrants {
    let mut servers: Vec<ServerId> = rows.servers.iter().map(|s| s.id).collect();
    servers.push(ServerId(999));
    let mut toolsets: Vec<ToolsetId> = rows.toolsets.iter().map(|t| t.id).collect();
    toolsets.push(ToolsetId(999));
    ScopeGrants {
        servers: spec
            .0
            .iter()
            .map(|(i, f)| (nth(&servers, *i).unwrap(), f.filter()))
            .collect(),
        toolsets: spec.1.iter().map(|i| nth(&toolsets, *i).unwrap()).collect(),
    }
}

fn probe_key(org: OrgId, team: Option<TeamId>, scope: Scope) -> KeyRow {
    KeyRow {
        id: KeyId(9_999),
        org,
        token_digest: "probe".into(),
        team,
        agent: None,
        scope,
        revoked: false,
        expires_at_ms: None,
        may_assert_end_user: false,
        may_assert_agent: false,
    }
}

/// Does `filter` on `server` stay within the allowance, judged by what they
/// admit (the fresh tool standing for every name not yet seen)?
fn within(allowance: &Allowance, server: ServerId, filter: &ToolFilter) -> bool {
    allowance.servers.contains_key(&server)
        && tool_names().all(|t| !filter.admits(t) || allowance.admits(server, t))
}

proptest! {
    #![proptest_config(config())]

    /// pickers = runtime: the allowance of every parent chain is exactly what
    /// a key with *inherit* scope in that chain may call; grants that
    /// validation accepts never reach beyond it; rejected grants name every
    /// offending entry and nothing else.
    #[test]
    fn pickers_equal_runtime(
        w in world(),
        chain in (any::<u8>(), prop::option::of(any::<u8>())),
        request in (prop::collection::vec((any::<u8>(), filter_spec()), 0..4), prop::collection::vec(any::<u8>(), 0..3)),
    ) {
        let snapshot = build(&w.rows);

        // Every owner's allowance is its parent chain's.
        let owners = w.rows.teams.iter().map(|t| (ScopeOwner::Team(t.id), t.org, None))
            .chain(w.rows.keys.iter().map(|k| (ScopeOwner::Key(k.id), k.org, k.team)))
            .chain(w.rows.end_users.iter().map(|u| (ScopeOwner::EndUser(u.id), u.org, None)))
            .chain(w.rows.agents.iter().map(|a| (ScopeOwner::Agent(a.id), a.org, a.team)))
            .chain(w.rows.toolsets.iter().map(|t| (ScopeOwner::Toolset(t.id), t.org, None)));
        for (owner, org, team) in owners {
            prop_assert_eq!(snapshot.allowance_for(owner), Some(snapshot.allowance(org, team)), "{:?}", owner);
        }

        // One parent chain: an org, optionally one of its teams.
        let org = nth(&w.rows.orgs, chain.0).unwrap().id;
        let teams: Vec<TeamId> = w.rows.teams.iter().filter(|t| t.org == org).map(|t| t.id).collect();
        let team = chain.1.and_then(|i| nth(&teams, i));
        let allowance = snapshot.allowance(org, team);

        // A key with inherit scope in that chain may call exactly the allowance.
        let mut rows = w.rows.clone();
        rows.keys.push(probe_key(org, team, Scope::Inherit));
        let probed = build(&rows);
        let probe = Principal { key: KeyId(9_999), end_user: None, agent: None };
        let access = probed.access(&probe);
        let usable: BTreeSet<ServerId> = access.usable_servers(NOW).map(|(s, _)| s.server).collect();
        prop_assert_eq!(&usable, &allowance.servers.keys().copied().collect::<BTreeSet<_>>());
        for server in rows.servers.iter().filter(|s| s.owner_org.is_none_or(|o| o == org)) {
            for tool in tool_names() {
                let d = probed.decide(&access, &server.slug, tool, &w.catalog, NOW);
                let in_catalog = w.catalog.get(&server.id).is_some_and(|t| t.contains(tool));
                prop_assert_eq!(d.allowed, allowance.admits(server.id, tool) && in_catalog, "{} {} {:?}", server.slug, tool, d.reason);
            }
        }

        // A requested scope: accepted iff within the allowance, entry by entry.
        let grants = requested_grants(&w.rows, &request);
        let mut expected: BTreeSet<(Option<ServerId>, Option<ToolsetId>)> = BTreeSet::new();
        for (server, filter) in &grants.servers {
            if !within(&allowance, *server, filter) {
                expected.insert((Some(*server), None));
            }
        }
        for ts in &grants.toolsets {
            match w.rows.toolsets.iter().find(|t| t.id == *ts && t.org == org) {
                None => {
                    expected.insert((None, Some(*ts)));
                }
                Some(t) => {
                    for (server, filter) in &t.servers {
                        if !within(&allowance, *server, filter) {
                            expected.insert((Some(*server), Some(*ts)));
                        }
                    }
                }
            }
        }
        match snapshot.validate_grants(org, team, &grants) {
            Ok(()) => {
                prop_assert!(expected.is_empty(), "accepted {:?} beyond {:?}", grants, allowance);
                // Accepted grants build and never reach beyond the parent.
                let mut rows = w.rows.clone();
                rows.keys.push(probe_key(org, team, Scope::Grants(grants.clone())));
                let granted = build(&rows);
                let access = granted.access(&probe);
                for server in rows.servers.iter() {
                    for tool in tool_names() {
                        // The slug resolves per org: judge the server it named.
                        let d = granted.decide(&access, &server.slug, tool, &w.catalog, NOW);
                        if let (true, Some(id)) = (d.allowed, d.server) {
                            prop_assert!(allowance.admits(id, tool), "{} {}", server.slug, tool);
                        }
                    }
                }
            }
            Err(offenses) => {
                let reported: BTreeSet<_> = offenses.iter().map(|o| (o.server, o.toolset)).collect();
                prop_assert_eq!(&reported, &expected);
                prop_assert_eq!(reported.len(), offenses.len(), "an entry reported twice: {:?}", offenses);
                for o in &offenses {
                    prop_assert!(!o.message.is_empty());
                    let Some(server) = o.server else {
                        prop_assert_eq!(o.code, "toolset_unknown");
                        continue;
                    };
                    if !allowance.servers.contains_key(&server) {
                        prop_assert_eq!(o.code, "server_not_allowed");
                        continue;
                    }
                    prop_assert_eq!(o.code, "tools_not_allowed");
                    let filter = match o.toolset {
                        None => &grants.servers[&server],
                        Some(ts) => &w.rows.toolsets.iter().find(|t| t.id == ts).unwrap().servers[&server],
                    };
                    // Named tools are exactly the named ones beyond the allowance.
                    if let ToolFilter::Only(named) = filter {
                        let beyond: Vec<String> = named.iter().filter(|t| !allowance.admits(server, t)).cloned().collect();
                        prop_assert_eq!(&o.tools, &beyond);
                    }
                }
            }
        }
    }
}

#[test]
fn generated_policies_are_not_trivial() {
    // Guard against a generator that silently stops exercising the engine:
    // across a fixed run, decisions must be both allowed and denied for many
    // different reasons.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut reasons = HashSet::new();
    let mut allowed = 0usize;
    let mut cases_with_allowed = 0;
    for _ in 0..200 {
        let w = world().new_tree(&mut runner).unwrap().current();
        let snapshot = build(&w.rows);
        let d = decisions(&snapshot, &principals(&w.rows), &slugs(&w.rows), &w.catalog);
        if d.values().any(|o| o.allowed) {
            cases_with_allowed += 1;
        }
        for o in d.values() {
            match o.reason {
                None => allowed += 1,
                Some(r) => {
                    reasons.insert(r);
                }
            }
        }
    }
    assert!(
        cases_with_allowed > 80,
        "only {cases_with_allowed} of 200 policies allow anything"
    );
    assert!(allowed > 1_000, "only {allowed} allowed decisions");
    let missing: Vec<_> = Reason::ALL
        .iter()
        .filter(|r| !reasons.contains(r))
        .collect();
    assert!(missing.is_empty(), "never produced: {missing:?}");
}
