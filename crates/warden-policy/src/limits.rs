//! Quotas and rate limits as configuration in the snapshot: validation,
//! indexes, cascades, and the effective limits of one call.
//!
//! A limit never allows or denies: allow/deny comes only from
//! [`Snapshot::decide`]. The data plane asks [`Snapshot::limits_for`] which
//! limits count a permitted call and refuses it with its own typed refusal
//! when one of them is exhausted.

use std::cmp::Ordering;
use std::sync::Arc;

use serde::Serialize;

use crate::error::PolicyError;
use crate::model::*;
use crate::snapshot::{check_put, dangling, Principal, Put, Snapshot};

/// One limit that counts a call. Each is its own counter (token bucket and
/// in-flight count), keyed by `id` and shared by every call it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AppliedLimit {
    pub id: LimitId,
    pub level: LimitLevel,
    pub rate: Option<Rate>,
    pub concurrency: Option<u32>,
}

/// The tightest rate among the applicable limits and the limit that set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct RateBound {
    pub limit: LimitId,
    pub level: LimitLevel,
    pub rate: Rate,
}

/// The tightest concurrency among the applicable limits and the limit that
/// set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ConcurrencyBound {
    pub limit: LimitId,
    pub level: LimitLevel,
    pub max_in_flight: u32,
}

/// Every limit that applies to one principal's call of one tool, and the
/// tightest rate and concurrency among them (for explain and refusal data).
/// Enforcement must count the call against every entry of `applicable`:
/// a looser org-wide limit can still be the one that runs out first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectiveLimits {
    /// By level (org, team, key, end user, agent), then id.
    pub applicable: Vec<AppliedLimit>,
    /// Fewest requests per second; ties: smaller burst, then lower id.
    pub rate: Option<RateBound>,
    /// Smallest in-flight cap; ties: lower id.
    pub concurrency: Option<ConcurrencyBound>,
}

/// What is left of one limit on this replica, as the data plane counts it
/// (for explain). Only the data plane holds counters; this crate only says
/// how they are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitUsage {
    pub limit: LimitId,
    /// Whole calls the rate limit's bucket holds now (none without a rate).
    pub tokens_left: Option<u32>,
    /// Calls in flight under its concurrency cap (none without one).
    pub in_flight: Option<u32>,
    /// Live replicas the limit is shared by (each enforces 1/N of it).
    pub replicas: u32,
}

/// The data plane's counters, as explain sees them.
pub trait LimitCounters: Send + Sync {
    fn usage(&self, limit: &AppliedLimit) -> LimitUsage;
}

impl EffectiveLimits {
    pub fn is_empty(&self) -> bool {
        self.applicable.is_empty()
    }

    fn add(&mut self, l: &LimitRow) {
        self.applicable.push(AppliedLimit {
            id: l.id,
            level: l.level,
            rate: l.rate,
            concurrency: l.concurrency,
        });
        if let Some(rate) = l.rate {
            let tighter = match &self.rate {
                None => true,
                Some(b) => rate.tightness_cmp(&b.rate).then(l.id.cmp(&b.limit)) == Ordering::Less,
            };
            if tighter {
                self.rate = Some(RateBound {
                    limit: l.id,
                    level: l.level,
                    rate,
                });
            }
        }
        if let Some(c) = l.concurrency {
            let tighter = match &self.concurrency {
                None => true,
                Some(b) => (c, l.id) < (b.max_in_flight, b.limit),
            };
            if tighter {
                self.concurrency = Some(ConcurrencyBound {
                    limit: l.id,
                    level: l.level,
                    max_in_flight: c,
                });
            }
        }
    }
}

impl Snapshot {
    /// Every limit that counts `principal`'s call of `tool` on `server`:
    /// those of its org, its key's team, its key, its end user and its agent,
    /// each covering all servers or this one, and all tools or this one.
    /// A key missing from this snapshot has none (it is refused anyway).
    /// Costs one lookup per level and no allocation when nothing applies.
    pub fn limits_for(
        &self,
        principal: &Principal,
        server: ServerId,
        tool: &str,
    ) -> EffectiveLimits {
        let mut out = EffectiveLimits::default();
        let Some(key) = self.keys.get(&principal.key) else {
            return out;
        };
        let levels = [
            Some(LimitLevel::Org),
            key.team.map(LimitLevel::Team),
            Some(LimitLevel::Key(key.id)),
            principal.end_user.map(LimitLevel::EndUser),
            principal.agent.map(LimitLevel::Agent),
        ];
        for level in levels.into_iter().flatten() {
            let Some(held) = self.limits_by_holder.get(&(key.org, level)) else {
                continue;
            };
            let start = out.applicable.len();
            for l in held.values().filter(|l| l.covers(server, tool)) {
                out.add(l);
            }
            out.applicable[start..].sort_unstable_by_key(|a| a.id);
        }
        out
    }

    pub fn limit(&self, id: LimitId) -> Option<&LimitRow> {
        self.limits.get(&id).map(|r| &**r)
    }

    /// The org's limits, in no particular order.
    pub fn limits_of(&self, org: OrgId) -> impl Iterator<Item = &LimitRow> {
        self.limits_by_org
            .get(&org)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.limit(*id))
    }

    pub(crate) fn put_limit(&mut self, r: LimitRow, put: Put) -> Result<(), PolicyError> {
        let from = format!("limit {}", r.id);
        r.check_values()?;
        let old = self.limits.get(&r.id).cloned();
        check_put(old.as_ref(), put, "limit", r.id.0, |o| o.org == r.org)?;
        self.require_org(|| from.clone(), r.org)?;
        match r.level {
            LimitLevel::Org => {}
            LimitLevel::Team(team) => self.require_team(&from, r.org, team)?,
            LimitLevel::Key(key) => match self.keys.get(&key) {
                Some(k) if k.org == r.org => {}
                _ => return Err(dangling(from, "key", key.0, r.org)),
            },
            LimitLevel::EndUser(user) => match self.end_users.get(&user) {
                Some(u) if u.org == r.org => {}
                _ => return Err(dangling(from, "end user", user.0, r.org)),
            },
            LimitLevel::Agent(agent) => match self.agents.get(&agent) {
                Some(a) if a.org == r.org => {}
                _ => return Err(dangling(from, "agent", agent.0, r.org)),
            },
        }
        if let Some(server) = r.server {
            self.require_granted(&from, r.org, server)?;
        }
        if let Some(old) = old {
            if let Some(held) = self.limits_by_holder.get_mut(&(old.org, old.level)) {
                held.remove(&old.id);
                if held.is_empty() {
                    self.limits_by_holder.remove(&(old.org, old.level));
                }
            }
        }
        let row = Arc::new(r);
        self.limits_by_holder
            .entry((row.org, row.level))
            .or_default()
            .insert(row.id, Arc::clone(&row));
        self.limits_by_org
            .entry(row.org)
            .or_default()
            .insert(row.id);
        self.limits.insert(row.id, row);
        Ok(())
    }

    /// Removes one limit from every index; the removed row, if it existed.
    pub(crate) fn remove_limit(&mut self, id: LimitId) -> Result<Arc<LimitRow>, PolicyError> {
        let l = self
            .limits
            .remove(&id)
            .ok_or_else(|| Self::not_found("limit", id.0))?;
        if let Some(held) = self.limits_by_holder.get_mut(&(l.org, l.level)) {
            held.remove(&id);
            if held.is_empty() {
                self.limits_by_holder.remove(&(l.org, l.level));
            }
        }
        if let Some(ids) = self.limits_by_org.get_mut(&l.org) {
            ids.remove(&id);
            if ids.is_empty() {
                self.limits_by_org.remove(&l.org);
            }
        }
        Ok(l)
    }

    /// The cascade of deleting a limit's holder.
    pub(crate) fn remove_limits_of(&mut self, holder: (OrgId, LimitLevel)) {
        let ids: Vec<LimitId> = self
            .limits_by_holder
            .get(&holder)
            .map(|held| held.keys().copied().collect())
            .unwrap_or_default();
        for id in ids {
            let _ = self.remove_limit(id);
        }
    }

    /// The cascade of deleting the org's grant of `server` (or the server).
    pub(crate) fn remove_limits_on_server(&mut self, org: OrgId, server: ServerId) {
        let ids: Vec<LimitId> = self
            .limits_of(org)
            .filter(|l| l.server == Some(server))
            .map(|l| l.id)
            .collect();
        for id in ids {
            let _ = self.remove_limit(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(requests: u32, per: Window, burst: u32) -> Rate {
        Rate {
            requests,
            per,
            burst,
        }
    }

    #[test]
    fn tightness_compares_exactly() {
        // 60/min == 3600/h; the burst breaks the tie.
        let a = rate(60, Window::Minute, 10);
        let b = rate(3600, Window::Hour, 5);
        assert_eq!(a.tightness_cmp(&b), Ordering::Greater);
        assert_eq!(
            rate(59, Window::Minute, 100).tightness_cmp(&b),
            Ordering::Less
        );
        assert_eq!(a.tightness_cmp(&a), Ordering::Equal);
    }
}
