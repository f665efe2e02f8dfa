//! Resumable reply streams (MCP 2025-11-25, "Resumability and
//! Redelivery"): a session-era request whose answer became an SSE stream
//! keeps its events in a bounded log, each with an id unique in its
//! session (`<stream>-<seq>`). A client whose connection drops reconnects
//! with `GET` and `Last-Event-ID` and gets what it missed on *that* stream,
//! then the rest as it comes. The call itself goes on while the session
//! lives (a disconnection is not a cancellation); it ends with the session,
//! its own timeout, the client's `notifications/cancelled` or a policy
//! change, as any call does.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::Notify;

use crate::gateway::lock;

/// Streams a session keeps for resumption; the oldest is forgotten first.
const MAX_STREAMS_PER_SESSION: usize = 32;
/// Events a stream keeps; older ones are dropped (a client resuming
/// from before them gets what is left).
const MAX_EVENTS_PER_STREAM: usize = 1_024;
/// Bytes of event data a stream keeps, at most.
const MAX_BYTES_PER_STREAM: usize = 4 << 20;
/// Longest `Last-Event-ID` looked at.
pub(crate) const MAX_EVENT_ID_BYTES: usize = 64;
/// Milliseconds a client should wait before reconnecting (SSE `retry`).
const RETRY_MS: u64 = 1_000;

/// A session's resumable streams.
#[derive(Default)]
pub(crate) struct ReplayLog {
    inner: Mutex<LogInner>,
}

#[derive(Default)]
struct LogInner {
    next: u64,
    streams: VecDeque<(u64, Arc<ReplayStream>)>,
}

impl ReplayLog {
    /// A new stream of this session, with its number.
    pub fn open(&self) -> (u64, Arc<ReplayStream>) {
        let mut inner = lock(&self.inner);
        inner.next += 1;
        let n = inner.next;
        let stream = Arc::new(ReplayStream::default());
        inner.streams.push_back((n, Arc::clone(&stream)));
        while inner.streams.len() > MAX_STREAMS_PER_SESSION {
            // Forgetting a stream ends its resumption, not its call.
            inner.streams.pop_front();
        }
        (n, stream)
    }

    /// The stream and the position a `Last-Event-ID` of this session names.
    pub fn find(&self, last_event_id: &str) -> Option<(u64, Arc<ReplayStream>, u64)> {
        let (n, seq) = parse_event_id(last_event_id)?;
        let inner = lock(&self.inner);
        let stream = inner.streams.iter().find(|(m, _)| *m == n)?;
        Some((n, Arc::clone(&stream.1), seq))
    }

    /// A fresh stream number of this session, for a stream kept elsewhere
    /// (the session's own GET stream), so event ids stay unique.
    pub fn next_number(&self) -> u64 {
        let mut inner = lock(&self.inner);
        inner.next += 1;
        inner.next
    }

    /// The session ended: every stream's call ends and its readers stop.
    pub fn close(&self) {
        let streams = std::mem::take(&mut lock(&self.inner).streams);
        for (_, s) in streams {
            s.close();
        }
    }
}

impl Drop for ReplayLog {
    fn drop(&mut self) {
        self.close();
    }
}

pub(crate) fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    if id.len() > MAX_EVENT_ID_BYTES {
        return None;
    }
    let (n, seq) = id.split_once('-')?;
    Some((n.parse().ok()?, seq.parse().ok()?))
}

/// One reply stream's events, in order. Event 0 is the priming event (an
/// id and no data); messages are numbered from 1.
#[derive(Default)]
pub(crate) struct ReplayStream {
    state: Mutex<StreamState>,
    changed: Notify,
}

#[derive(Default)]
struct StreamState {
    /// (seq, JSON text), oldest first.
    events: VecDeque<(u64, Arc<str>)>,
    last_seq: u64,
    bytes: usize,
    /// The final reply is in: readers end after it.
    finished: bool,
    /// The session ended: readers end now, the call is dropped.
    closed: bool,
}

impl ReplayStream {
    /// Appends a message (bounded: the oldest events go first).
    pub fn push(&self, msg: &Value) {
        let text: Arc<str> = Arc::from(msg.to_string());
        let mut st = lock(&self.state);
        if st.finished || st.closed {
            return;
        }
        st.last_seq += 1;
        let seq = st.last_seq;
        st.bytes += text.len();
        st.events.push_back((seq, text));
        while st.events.len() > MAX_EVENTS_PER_STREAM
            || (st.bytes > MAX_BYTES_PER_STREAM && st.events.len() > 1)
        {
            if let Some((_, old)) = st.events.pop_front() {
                st.bytes -= old.len();
            }
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// The last message is in.
    pub fn finish(&self) {
        lock(&self.state).finished = true;
        self.changed.notify_waiters();
    }

    /// Ends the stream: its readers stop, nothing more is kept.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_waiters();
    }

    /// Resolves when the session this stream belongs to has ended.
    pub async fn closed(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.state).closed {
                return;
            }
            notified.await;
        }
    }

    /// Events after `after`, and whether nothing more will come.
    fn after(&self, after: u64) -> (Vec<(u64, Arc<str>)>, bool) {
        let st = lock(&self.state);
        // Sequence numbers are consecutive: skip to the first one after
        // `after` instead of scanning the whole log.
        let first = st.events.front().map_or(0, |(seq, _)| *seq);
        let skip = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        let events = st.events.iter().skip(skip).cloned().collect();
        (events, st.finished || st.closed)
    }

    /// Waits for events after `after`; none and `true`: the stream is over.
    async fn next_after(&self, after: u64) -> (Vec<(u64, Arc<str>)>, bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (events, over) = self.after(after);
            if !events.is_empty() || over {
                return (events, over);
            }
            notified.await;
        }
    }
}

/// The SSE response reading stream `n` from after `after` (None: a new
/// stream, which starts with its priming event when `prime` is set).
pub(crate) fn sse_response(
    n: u64,
    stream: Arc<ReplayStream>,
    after: Option<u64>,
    prime: bool,
) -> Response {
    Sse::new(sse_events(n, stream, after, prime))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The events of stream `n` from after `after`, as [`sse_response`] sends
/// them: each with its id `<n>-<seq>`.
pub(crate) fn sse_events(
    n: u64,
    stream: Arc<ReplayStream>,
    after: Option<u64>,
    prime: bool,
) -> impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let priming = match (after, prime) {
        (None, true) => Some(
            Event::default()
                .id(format!("{n}-0"))
                .retry(std::time::Duration::from_millis(RETRY_MS))
                .data(""),
        ),
        _ => None,
    };
    let start = after.unwrap_or(0);
    let events = futures::stream::unfold(
        (stream, start, false),
        move |(stream, cursor, over)| async move {
            if over {
                return None;
            }
            let (batch, ended) = stream.next_after(cursor).await;
            if batch.is_empty() && ended {
                return None;
            }
            let next = batch.last().map_or(cursor, |(seq, _)| *seq);
            let items: Vec<Result<Event, Infallible>> = batch
                .into_iter()
                .map(|(seq, text)| {
                    Ok(Event::default()
                        .event("message")
                        .id(format!("{n}-{seq}"))
                        .data(&*text))
                })
                .collect();
            // After a finished stream's last batch, end.
            let over_after = ended && stream.after(next).0.is_empty();
            Some((futures::stream::iter(items), (stream, next, over_after)))
        },
    );
    use futures::StreamExt;
    futures::stream::iter(priming.map(Ok)).chain(events.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_ids_name_a_stream_of_this_session_and_a_position() {
        let log = ReplayLog::default();
        let (a, _) = log.open();
        let (b, _) = log.open();
        assert_ne!(a, b);
        assert_eq!(
            log.find(&format!("{b}-3")).map(|f| (f.0, f.2)),
            Some((b, 3))
        );
        assert!(log.find("99-1").is_none());
        assert!(log.find("x-1").is_none());
        assert!(log.find(&"9".repeat(200)).is_none());
    }

    #[test]
    fn a_session_keeps_a_bounded_number_of_streams() {
        let log = ReplayLog::default();
        let (first, _) = log.open();
        for _ in 0..MAX_STREAMS_PER_SESSION {
            log.open();
        }
        assert!(log.find(&format!("{first}-0")).is_none());
    }

    #[test]
    fn a_stream_keeps_a_bounded_number_of_events() {
        let s = ReplayStream::default();
        for i in 0..(MAX_EVENTS_PER_STREAM + 10) {
            s.push(&json!({"i": i}));
        }
        let (events, over) = s.after(0);
        assert_eq!(events.len(), MAX_EVENTS_PER_STREAM);
        assert_eq!(events[0].0, 11);
        assert!(!over);
        s.finish();
        s.push(&json!("after the end"));
        assert_eq!(s.after(0).0.len(), MAX_EVENTS_PER_STREAM);
        assert!(s.after(0).1);
    }

    #[tokio::test]
    async fn closing_the_log_wakes_what_waits_on_its_streams() {
        let log = ReplayLog::default();
        let (_, s) = log.open();
        let waiter = tokio::spawn({
            let s = Arc::clone(&s);
            async move { s.closed().await }
        });
        tokio::task::yield_now().await;
        drop(log);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
