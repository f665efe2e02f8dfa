//! Who created each task of the `io.modelcontextprotocol/tasks` extension
//! (2026-07-28 wire).
//!
//! On that wire there is no upstream session to hold a task: every caller's
//! requests reach a server over its one shared connection, and a task id is
//! all a `tasks/get|update|cancel` names. So Warden remembers, for every task
//! a call created, the principal whose call it was (and the server slug it
//! was decided on); a task method for any other principal is answered as an
//! unknown task and never sent upstream. The table is bounded per server and
//! per principal, and an entry lives as long as the task's `ttlMs` (plus a
//! grace period, so Warden never forgets a task before the server does).

use std::collections::HashMap;
use std::sync::Mutex;

use warden_policy::{Principal, ServerId};

use super::lock;

/// An entry with no `ttlMs` (or `null`) is kept this long.
const DEFAULT_TTL_MS: i64 = 24 * 3600 * 1000;
/// Kept this much past the task's ttl: the server counts its ttl from its
/// own `createdAt`, a little before Warden saw the result.
const GRACE_MS: i64 = 60 * 1000;
/// Longest task id remembered; a server minting longer ones gets the task
/// cancelled and the caller an error (see `TasksFull`).
pub(crate) const MAX_TASK_ID_BYTES: usize = 256;

/// Who owns one task.
#[derive(Debug, Clone)]
pub(crate) struct TaskOwner {
    pub principal: Principal,
    /// The server's slug as the creating call named it, for re-deciding.
    pub slug: String,
    pub expires_ms: i64,
}

/// Which bound a new task would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TasksFull {
    Server(usize),
    Principal(usize),
    /// The server's task id is longer than [`MAX_TASK_ID_BYTES`].
    IdTooLong,
    /// The server handed out an id another principal's task already has.
    Conflict,
}

#[derive(Default)]
struct Table {
    by_server: HashMap<ServerId, HashMap<String, TaskOwner>>,
    per_principal: HashMap<Principal, usize>,
}

impl Table {
    fn remove(&mut self, server: ServerId, task: &str) -> Option<TaskOwner> {
        let tasks = self.by_server.get_mut(&server)?;
        let owner = tasks.remove(task)?;
        if tasks.is_empty() {
            self.by_server.remove(&server);
        }
        if let Some(n) = self.per_principal.get_mut(&owner.principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_principal.remove(&owner.principal);
            }
        }
        Some(owner)
    }

    /// Forgets every expired task (of one server, or all).
    fn purge(&mut self, server: Option<ServerId>, now: i64) {
        let expired: Vec<(ServerId, String)> = self
            .by_server
            .iter()
            .filter(|(s, _)| server.is_none_or(|only| only == **s))
            .flat_map(|(s, tasks)| {
                tasks
                    .iter()
                    .filter(|(_, o)| o.expires_ms <= now)
                    .map(move |(t, _)| (*s, t.clone()))
            })
            .collect();
        for (s, t) in expired {
            self.remove(s, &t);
        }
    }
}

/// Every live task's owner, bounded per server and per principal.
pub(crate) struct TaskOwners {
    max_per_server: usize,
    max_per_principal: usize,
    table: Mutex<Table>,
}

impl TaskOwners {
    pub fn new(max_per_server: usize, max_per_principal: usize) -> Self {
        TaskOwners {
            max_per_server,
            max_per_principal,
            table: Mutex::new(Table::default()),
        }
    }

    /// Remembers that `principal`'s call created `task` on `server`, for
    /// `ttl_ms` (the task's own; `None`: a day). Refused when a bound is
    /// reached (after forgetting expired tasks).
    pub fn record(
        &self,
        server: ServerId,
        task: &str,
        principal: Principal,
        slug: &str,
        ttl_ms: Option<i64>,
        now: i64,
    ) -> Result<(), TasksFull> {
        if task.len() > MAX_TASK_ID_BYTES {
            return Err(TasksFull::IdTooLong);
        }
        let ttl = ttl_ms.filter(|t| *t >= 0).unwrap_or(DEFAULT_TTL_MS);
        let owner = TaskOwner {
            principal,
            slug: slug.to_owned(),
            expires_ms: now.saturating_add(ttl).saturating_add(GRACE_MS),
        };
        let mut table = lock(&self.table);
        if let Some(existing) = table
            .by_server
            .get_mut(&server)
            .and_then(|t| t.get_mut(task))
        {
            // The same id again: only its creator may renew it.
            if existing.principal == principal {
                *existing = owner;
                return Ok(());
            }
            return Err(TasksFull::Conflict);
        }
        let full = |t: &Table| {
            if t.by_server.get(&server).map_or(0, HashMap::len) >= self.max_per_server {
                Some(TasksFull::Server(self.max_per_server))
            } else if t.per_principal.get(&principal).copied().unwrap_or(0)
                >= self.max_per_principal
            {
                Some(TasksFull::Principal(self.max_per_principal))
            } else {
                None
            }
        };
        if full(&table).is_some() {
            table.purge(None, now);
            if let Some(bound) = full(&table) {
                return Err(bound);
            }
        }
        table
            .by_server
            .entry(server)
            .or_default()
            .insert(task.to_owned(), owner);
        *table.per_principal.entry(principal).or_default() += 1;
        Ok(())
    }

    /// Did `principal`'s call create `task` on `server` (and is it live)?
    pub fn owns(&self, server: ServerId, task: &str, principal: Principal, now: i64) -> bool {
        let mut table = lock(&self.table);
        let live = match table.by_server.get(&server).and_then(|t| t.get(task)) {
            None => return false,
            Some(owner) if owner.expires_ms <= now => false,
            Some(owner) => return owner.principal == principal,
        };
        if !live {
            table.remove(server, task);
        }
        false
    }

    /// Forgets and returns every task whose owner `denied` says may no
    /// longer use its server (expired ones are just forgotten).
    pub fn take_denied(
        &self,
        now: i64,
        mut denied: impl FnMut(&TaskOwner) -> bool,
    ) -> Vec<(ServerId, String, TaskOwner)> {
        let mut table = lock(&self.table);
        table.purge(None, now);
        let gone: Vec<(ServerId, String)> = table
            .by_server
            .iter()
            .flat_map(|(s, tasks)| {
                tasks
                    .iter()
                    .filter(|(_, o)| denied(o))
                    .map(move |(t, _)| (*s, t.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        gone.into_iter()
            .filter_map(|(s, t)| table.remove(s, &t).map(|o| (s, t, o)))
            .collect()
    }

    /// The principals that own at least one remembered task.
    pub fn owners(&self) -> Vec<Principal> {
        lock(&self.table).per_principal.keys().copied().collect()
    }

    /// Tasks remembered for `server` (all principals).
    #[cfg(test)]
    pub fn count(&self, server: ServerId) -> usize {
        lock(&self.table)
            .by_server
            .get(&server)
            .map_or(0, HashMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::KeyId;

    fn p(key: i64) -> Principal {
        Principal {
            key: KeyId(key),
            end_user: None,
            agent: None,
        }
    }

    #[test]
    fn a_task_is_its_creators_only_until_it_expires() {
        let t = TaskOwners::new(10, 10);
        let s = ServerId(1);
        t.record(s, "t1", p(1), "files", Some(1_000), 0).unwrap();
        assert!(t.owns(s, "t1", p(1), 500));
        assert!(!t.owns(s, "t1", p(2), 500));
        assert!(!t.owns(ServerId(2), "t1", p(1), 500));
        assert!(!t.owns(s, "t2", p(1), 500));
        // Kept through the grace period, then forgotten.
        assert!(t.owns(s, "t1", p(1), 1_000 + GRACE_MS - 1));
        assert!(!t.owns(s, "t1", p(1), 1_000 + GRACE_MS));
        assert_eq!(t.count(s), 0);
    }

    #[test]
    fn bounds_per_principal_and_per_server_free_up_as_tasks_expire() {
        let t = TaskOwners::new(3, 2);
        let s = ServerId(1);
        t.record(s, "a", p(1), "f", Some(10), 0).unwrap();
        t.record(s, "b", p(1), "f", None, 0).unwrap();
        assert_eq!(
            t.record(s, "c", p(1), "f", None, 0),
            Err(TasksFull::Principal(2))
        );
        t.record(s, "c", p(2), "f", None, 0).unwrap();
        assert_eq!(
            t.record(s, "d", p(3), "f", None, 0),
            Err(TasksFull::Server(3))
        );
        // "a" expired: room again.
        t.record(s, "d", p(1), "f", None, 10 + GRACE_MS).unwrap();
        assert_eq!(
            t.record(s, &"x".repeat(MAX_TASK_ID_BYTES + 1), p(1), "f", None, 0),
            Err(TasksFull::IdTooLong)
        );
        // Another principal cannot take over an id.
        assert_eq!(
            t.record(s, "c", p(1), "f", None, 0),
            Err(TasksFull::Conflict)
        );
        assert!(t.owns(s, "c", p(2), 0));
    }

    #[test]
    fn denied_owners_tasks_are_taken_out() {
        let t = TaskOwners::new(10, 10);
        t.record(ServerId(1), "a", p(1), "f", None, 0).unwrap();
        t.record(ServerId(1), "b", p(2), "f", None, 0).unwrap();
        t.record(ServerId(2), "c", p(1), "g", None, 0).unwrap();
        let mut gone = t.take_denied(0, |o| o.principal == p(1) && o.slug == "f");
        gone.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].0, gone[0].1.as_str()), (ServerId(1), "a"));
        assert!(!t.owns(ServerId(1), "a", p(1), 0));
        assert!(t.owns(ServerId(1), "b", p(2), 0));
        assert!(t.owns(ServerId(2), "c", p(1), 0));
    }
}
