//! The limit step: between authorize and forward, a permitted call is
//! counted against every limit that applies to it (rates as token buckets,
//! calls in flight as counters). Limits are configuration in the snapshot
//! (`Snapshot::limits_for`); the counters live here, per process. A limit
//! never allows anything: it can only refuse a call the decision permitted,
//! with its own typed refusal (`rate_limited`, `concurrency_limited`).
//!
//! With N live replicas, each enforces its share of every limit (rate,
//! burst and concurrency divided by N, at least one), so the fleet stays
//! within the limit up to the rounding and the time a replica takes to see
//! that N changed (ARCHITECTURE.md states the bound).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use warden_policy::{
    AppliedLimit, EffectiveLimits, LimitCounters, LimitId, LimitLevel, LimitUsage,
};

use super::authorize::Permit;
use super::dispatch::Ctx;
use super::refusal::Refusal;
use crate::gateway::lock;

/// A limit that refused a call, as the caller and the audit log see it.
#[derive(Debug, Clone)]
pub(crate) struct LimitHit {
    pub limit: LimitId,
    pub level: LimitLevel,
    /// For a rate: the limit's requests per window; for concurrency: the cap.
    pub max: u32,
    /// `minute`/`hour` for a rate, none for concurrency.
    pub per: Option<&'static str>,
    /// This replica's share of `max` (`max` / live replicas, at least 1).
    pub share: u32,
    pub retry_after_ms: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Every counter of this process.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    state: Mutex<Counters>,
    /// Live replicas sharing each limit (1 without replicas).
    replicas: Option<Arc<AtomicUsize>>,
}

#[derive(Debug, Default)]
struct Counters {
    buckets: HashMap<LimitId, Bucket>,
    in_flight: HashMap<LimitId, u32>,
}

/// Holds a call's places in its concurrency limits until dropped.
#[derive(Debug)]
pub(crate) struct LimitPermit {
    limiter: Option<Arc<Limiter>>,
    held: Vec<LimitId>,
}

impl LimitPermit {
    /// For calls no limit counts.
    pub fn none() -> LimitPermit {
        LimitPermit {
            limiter: None,
            held: Vec::new(),
        }
    }
}

impl Drop for LimitPermit {
    fn drop(&mut self) {
        let Some(limiter) = &self.limiter else {
            return;
        };
        if self.held.is_empty() {
            return;
        }
        let mut state = lock(&limiter.state);
        for id in &self.held {
            if let Some(n) = state.in_flight.get_mut(id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.in_flight.remove(id);
                }
            }
            metrics::gauge!("warden_limit_inflight", "limit" => id.0.to_string()).decrement(1.0);
        }
    }
}

/// How long a caller refused for concurrency is told to wait.
const CONCURRENCY_RETRY_MS: u64 = 100;

impl Limiter {
    pub fn new(replicas: Option<Arc<AtomicUsize>>) -> Limiter {
        Limiter {
            state: Mutex::default(),
            replicas,
        }
    }

    fn replicas(&self) -> u32 {
        self.replicas
            .as_ref()
            .map_or(1, |n| n.load(Ordering::Relaxed).max(1))
            .min(u32::MAX as usize) as u32
    }

    /// Counts a call against every applicable limit, or says which one
    /// refuses it (and then counts nothing).
    pub fn admit(
        self: &Arc<Self>,
        limits: &EffectiveLimits,
        now: Instant,
    ) -> Result<LimitPermit, LimitHit> {
        if limits.is_empty() {
            return Ok(LimitPermit::none());
        }
        let replicas = self.replicas();
        let share = |n: u32| (n / replicas).max(1);
        let mut state = lock(&self.state);
        // Check every limit first, then take: a refused call costs nothing.
        for l in &limits.applicable {
            if let Some(rate) = l.rate {
                let capacity = f64::from(share(rate.burst));
                let refill = rate.per_second() / f64::from(replicas);
                let bucket = state.buckets.entry(l.id).or_insert(Bucket {
                    tokens: capacity,
                    last: now,
                });
                let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * refill).min(capacity);
                bucket.last = now;
                if bucket.tokens < 1.0 {
                    let wait_s = (1.0 - bucket.tokens) / refill;
                    return Err(hit(
                        l,
                        rate.requests,
                        Some(rate.per.as_str()),
                        share(rate.burst),
                        (wait_s * 1000.0).ceil() as u64,
                    ));
                }
            }
            if let Some(max) = l.concurrency {
                let held = state.in_flight.get(&l.id).copied().unwrap_or(0);
                if held >= share(max) {
                    return Err(hit(l, max, None, share(max), CONCURRENCY_RETRY_MS));
                }
            }
        }
        let mut held = Vec::new();
        for l in &limits.applicable {
            if l.rate.is_some() {
                if let Some(bucket) = state.buckets.get_mut(&l.id) {
                    bucket.tokens -= 1.0;
                }
            }
            if l.concurrency.is_some() {
                *state.in_flight.entry(l.id).or_insert(0) += 1;
                metrics::gauge!("warden_limit_inflight", "limit" => l.id.0.to_string())
                    .increment(1.0);
                held.push(l.id);
            }
        }
        Ok(LimitPermit {
            limiter: Some(Arc::clone(self)),
            held,
        })
    }
}

impl LimitCounters for Limiter {
    /// What is left now, refilled to this instant but without taking.
    fn usage(&self, l: &AppliedLimit) -> LimitUsage {
        let replicas = self.replicas();
        let state = lock(&self.state);
        let tokens_left = l.rate.map(|rate| {
            let capacity = f64::from((rate.burst / replicas).max(1));
            let tokens = match state.buckets.get(&l.id) {
                None => capacity,
                Some(b) => {
                    let refill = rate.per_second() / f64::from(replicas);
                    (b.tokens + b.last.elapsed().as_secs_f64() * refill).min(capacity)
                }
            };
            tokens.max(0.0).floor() as u32
        });
        let in_flight = l
            .concurrency
            .map(|_| state.in_flight.get(&l.id).copied().unwrap_or(0));
        LimitUsage {
            limit: l.id,
            tokens_left,
            in_flight,
            replicas,
        }
    }
}

fn hit(
    l: &AppliedLimit,
    max: u32,
    per: Option<&'static str>,
    share: u32,
    retry_after_ms: u64,
) -> LimitHit {
    LimitHit {
        limit: l.id,
        level: l.level,
        max,
        per,
        share,
        retry_after_ms: retry_after_ms.max(1),
    }
}

impl LimitHit {
    pub fn into_refusal(self, decision_id: String) -> Refusal {
        metrics::counter!(
            "warden_limit_refusals_total",
            "level" => self.level.kind(),
            "reason" => if self.per.is_some() { "rate_limited" } else { "concurrency_limited" }
        )
        .increment(1);
        Refusal::Limited(Box::new((self, decision_id)))
    }
}

impl Ctx {
    /// The limit step for a permitted `tools/call`: counted, or refused
    /// (audited as not made, with the limit's reason).
    pub(crate) fn limit(&self, permit: &Permit) -> Result<LimitPermit, Refusal> {
        let (Some(server), Some(tool)) = (permit.verdict.server, permit.tool.as_deref()) else {
            return Ok(LimitPermit::none());
        };
        let limits = self.snapshot.limits_for(&self.principal, server, tool);
        match self.shared.limiter.admit(&limits, Instant::now()) {
            Ok(held) => Ok(held),
            Err(hit) => {
                let refusal = hit.into_refusal(permit.decision_id.clone());
                if let Some(record) = &permit.record {
                    let mut record = record.clone();
                    record.allowed = false;
                    record.reason = Some(refusal.reason().to_owned());
                    self.shared.record(record);
                }
                tracing::info!(decision_id = %permit.decision_id, server = %permit.slug, tool, reason = refusal.reason(), "call refused by a limit");
                Err(refusal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use warden_policy::{Rate, Window};

    fn limits(rate: Option<Rate>, concurrency: Option<u32>) -> EffectiveLimits {
        EffectiveLimits {
            applicable: vec![AppliedLimit {
                id: LimitId(7),
                level: LimitLevel::Org,
                rate,
                concurrency,
            }],
            rate: None,
            concurrency: None,
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills() {
        let limiter = Arc::new(Limiter::new(None));
        let l = limits(
            Some(Rate {
                requests: 60,
                per: Window::Minute,
                burst: 3,
            }),
            None,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit(&l, t0).is_ok());
        }
        let hit = limiter.admit(&l, t0).unwrap_err();
        assert_eq!(hit.limit, LimitId(7));
        assert!(
            (900..=1000).contains(&hit.retry_after_ms),
            "{}",
            hit.retry_after_ms
        );
        // One token a second.
        assert!(limiter.admit(&l, t0 + Duration::from_millis(1001)).is_ok());
        assert!(limiter.admit(&l, t0 + Duration::from_millis(1002)).is_err());
    }

    #[test]
    fn concurrency_is_released_when_the_call_ends() {
        let limiter = Arc::new(Limiter::new(None));
        let l = limits(None, Some(2));
        let now = Instant::now();
        let a = limiter.admit(&l, now).unwrap();
        let _b = limiter.admit(&l, now).unwrap();
        assert!(limiter.admit(&l, now).is_err());
        drop(a);
        assert!(limiter.admit(&l, now).is_ok());
    }

    #[test]
    fn usage_says_what_is_left() {
        let limiter = Arc::new(Limiter::new(None));
        let l = limits(
            Some(Rate {
                requests: 60,
                per: Window::Hour,
                burst: 5,
            }),
            Some(3),
        );
        let now = Instant::now();
        let _held = limiter.admit(&l, now).unwrap();
        let usage = limiter.usage(&l.applicable[0]);
        assert_eq!(usage.tokens_left, Some(4));
        assert_eq!(usage.in_flight, Some(1));
        assert_eq!(usage.replicas, 1);
    }

    #[test]
    fn replicas_share_a_limit() {
        let n = Arc::new(AtomicUsize::new(3));
        let limiter = Arc::new(Limiter::new(Some(Arc::clone(&n))));
        let l = limits(
            Some(Rate {
                requests: 600,
                per: Window::Minute,
                burst: 30,
            }),
            None,
        );
        let now = Instant::now();
        let allowed = (0..30).filter(|_| limiter.admit(&l, now).is_ok()).count();
        assert_eq!(allowed, 10, "a third of the burst on each of 3 replicas");
    }

    #[test]
    fn a_refused_call_takes_nothing_from_other_limits() {
        let limiter = Arc::new(Limiter::new(None));
        let loose = AppliedLimit {
            id: LimitId(1),
            level: LimitLevel::Org,
            rate: Some(Rate {
                requests: 100,
                per: Window::Minute,
                burst: 100,
            }),
            concurrency: None,
        };
        let tight = AppliedLimit {
            id: LimitId(2),
            level: LimitLevel::Key(warden_policy::KeyId(1)),
            rate: Some(Rate {
                requests: 1,
                per: Window::Hour,
                burst: 1,
            }),
            concurrency: None,
        };
        let both = EffectiveLimits {
            applicable: vec![loose, tight],
            rate: None,
            concurrency: None,
        };
        let only_loose = EffectiveLimits {
            applicable: vec![loose],
            rate: None,
            concurrency: None,
        };
        let now = Instant::now();
        assert!(limiter.admit(&both, now).is_ok());
        for _ in 0..10 {
            assert_eq!(limiter.admit(&both, now).unwrap_err().limit, LimitId(2));
        }
        // The org bucket paid for one call only: 99 left.
        let left = (0..200)
            .filter(|_| limiter.admit(&only_loose, now).is_ok())
            .count();
        assert_eq!(left, 99);
    }
}
