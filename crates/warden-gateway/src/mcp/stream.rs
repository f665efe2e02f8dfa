//! Server-sent event replies: the session GET stream, listen streams and
//! forwarded requests whose answer became a stream.

use std::convert::Infallible;
use std::sync::{Arc, Weak};

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};

use crate::gateway::Shared;

/// Removes a listen stream's registration when the client goes away.
pub(crate) struct ListenerGuard {
    shared: Weak<Shared>,
    id: String,
}

impl ListenerGuard {
    pub fn new(shared: &Arc<Shared>, id: String) -> ListenerGuard {
        ListenerGuard {
            shared: Arc::downgrade(shared),
            id,
        }
    }
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.remove_listener(&self.id);
        }
    }
}

fn sse_event(msg: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().event("message").data(msg.to_string()))
}

/// A long-lived stream (GET or listen), with keep-alives.
pub(crate) fn sse_bounded(rx: mpsc::Receiver<Value>, guard: Option<ListenerGuard>) -> Response {
    let stream = ReceiverStream::new(rx).map(move |msg| {
        let _keep_until_stream_drops = &guard;
        sse_event(&msg)
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The reply of one forwarded request, as a stream.
pub(crate) fn sse_unbounded(rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = UnboundedReceiverStream::new(rx).map(|msg| sse_event(&msg));
    Sse::new(stream).into_response()
}

/// An SSE reply whose first message was already taken off `rx`.
pub(crate) fn sse_unbounded_after(first: Value, rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = futures::stream::once(async move { first })
        .chain(UnboundedReceiverStream::new(rx))
        .map(|msg| sse_event(&msg));
    Sse::new(stream).into_response()
}
