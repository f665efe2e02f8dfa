//! A 2025-11-25 session's own `GET` stream, resumable: what the session is
//! sent (`list_changed`, an upstream's messages outside a response) goes
//! into a bounded log (a [`ReplayStream`], the reply streams' bounds), each
//! event with an id `<stream>-<seq>` unique in the session. A client whose
//! `GET` drops reconnects with `Last-Event-ID` and gets what it missed,
//! then the rest. Messages are kept for [`GRACE_MS`] after the stream lost
//! its reader; after that the stream is gone (a sender hears `false`, as
//! when no stream was ever opened) and a `GET` opens a fresh one.

use std::sync::{Arc, Mutex};

use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::Notify;

use super::replay::{self, ReplayStream};
use crate::gateway::{lock, now_ms};

/// How long a stream without a reader keeps what it is sent.
pub(crate) const GRACE_MS: i64 = 30_000;

/// The session's stream, once a `GET` opened one.
#[derive(Default)]
pub(crate) struct SessionStream {
    current: Mutex<Option<Arc<Own>>>,
}

struct Own {
    n: u64,
    log: Arc<ReplayStream>,
    state: Mutex<ReaderState>,
    /// Woken when a newer reader takes the stream over.
    superseded: Notify,
}

#[derive(Default)]
struct ReaderState {
    /// Bumped by every reader; only the latest one reads.
    generation: u64,
    attached: bool,
    /// When the last reader went away (ms since the epoch).
    detached_at_ms: i64,
}

impl Own {
    /// Without a reader for longer than the grace period.
    fn expired(&self, now: i64) -> bool {
        let st = lock(&self.state);
        !st.attached && now - st.detached_at_ms > GRACE_MS
    }
}

/// Marks the stream without a reader when the client's connection goes.
struct ReaderGuard {
    own: Arc<Own>,
    generation: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let mut st = lock(&self.own.state);
        if st.generation == self.generation {
            st.attached = false;
            st.detached_at_ms = now_ms();
        }
    }
}

impl SessionStream {
    /// A fresh stream numbered `n` (the previous one ends: its reader
    /// closes, its events are dropped); `prime`: start with an event id
    /// and no data, for clients of 2025-11-25 and later.
    pub fn open(&self, n: u64, prime: bool) -> Response {
        let own = Arc::new(Own {
            n,
            log: Arc::new(ReplayStream::default()),
            state: Mutex::new(ReaderState::default()),
            superseded: Notify::new(),
        });
        if let Some(old) = lock(&self.current).replace(Arc::clone(&own)) {
            old.log.close();
        }
        reader(own, None, prime)
    }

    /// The stream read on after `last_event_id`, if that names this
    /// session's stream while it is still kept; the reader before, if any,
    /// ends.
    pub fn resume(&self, last_event_id: &str) -> Option<Response> {
        let (n, after) = replay::parse_event_id(last_event_id)?;
        let own = {
            let mut current = lock(&self.current);
            let own = current.as_ref().filter(|o| o.n == n).map(Arc::clone)?;
            if own.expired(now_ms()) {
                own.log.close();
                *current = None;
                return None;
            }
            own
        };
        Some(reader(own, Some(after), false))
    }

    /// Keeps `msg` for the stream's reader, now or on its return; false if
    /// there is no stream (never opened, or gone after the grace period).
    pub fn send(&self, msg: &Value) -> bool {
        let mut current = lock(&self.current);
        let Some(own) = current.as_ref() else {
            return false;
        };
        if own.expired(now_ms()) {
            own.log.close();
            *current = None;
            return false;
        }
        own.log.push(msg);
        true
    }

    /// Whether a client is reading the stream now.
    pub fn has_reader(&self) -> bool {
        lock(&self.current)
            .as_ref()
            .is_some_and(|own| lock(&own.state).attached)
    }

    /// Ends the stream (its reader sees it close) and drops what it kept.
    pub fn close(&self) {
        if let Some(own) = lock(&self.current).take() {
            own.log.close();
        }
    }
}

/// The SSE response of a new reader of `own`, from after `after`.
fn reader(own: Arc<Own>, after: Option<u64>, prime: bool) -> Response {
    let generation = {
        let mut st = lock(&own.state);
        st.generation += 1;
        st.attached = true;
        st.generation
    };
    own.superseded.notify_waiters();
    let until = {
        let own = Arc::clone(&own);
        async move {
            loop {
                let notified = own.superseded.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if lock(&own.state).generation != generation {
                    return;
                }
                notified.await;
            }
        }
    };
    let events = replay::sse_events(own.n, Arc::clone(&own.log), after, prime);
    let guard = ReaderGuard { own, generation };
    let stream = events.take_until(until).map(move |event| {
        let _keep_until_the_stream_drops = &guard;
        event
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_stream_without_a_reader_keeps_messages_for_the_grace_period_only() {
        let s = SessionStream::default();
        assert!(!s.send(&json!(1)), "no stream yet");
        let resp = s.open(1, true);
        assert!(s.has_reader());
        drop(resp);
        assert!(!s.has_reader());
        assert!(s.send(&json!(2)), "kept during the grace period");
        assert!(s.resume("1-0").is_some());
        assert!(s.resume("2-0").is_none(), "another stream's id");
        // Past the grace period without a reader: gone.
        {
            let current = lock(&s.current);
            let own = current.as_ref().unwrap();
            let mut st = lock(&own.state);
            st.attached = false;
            st.detached_at_ms = now_ms() - GRACE_MS - 1;
        }
        assert!(!s.send(&json!(3)));
        assert!(s.resume("1-0").is_none());
    }
}
