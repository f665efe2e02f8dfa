//! SSE polling (MCP 2025-11-25, "Resumability and Redelivery"): once an
//! upstream has sent an event id on a response stream it may close the
//! stream before its answer; the client reconnects with `GET` and
//! `Last-Event-ID` after the `retry:` delay the upstream asked for, and
//! reads on until the answer. Warden does that as the client.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};

use super::{read_sse, HttpLink, RequestBuilder, SseEnd, SseParser, Upstream};
use crate::error::GatewayError;

/// The reconnection delay when the upstream named none.
pub(super) const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// The longest delay honoured, whatever `retry:` asks for.
pub(super) const MAX_RETRY: Duration = Duration::from_secs(10);
/// Reconnections in a row that bring nothing before Warden gives up.
pub(super) const MAX_FRUITLESS: u32 = 3;

/// How long to wait before reconnecting: the upstream's `retry:`, capped.
pub(super) fn retry_delay(parser: &SseParser) -> Duration {
    parser
        .retry_ms()
        .map_or(DEFAULT_RETRY, Duration::from_millis)
        .min(MAX_RETRY)
}

/// `req` resuming after the parser's last event id, if it has one that
/// fits a header.
pub(super) fn with_last_event_id(req: RequestBuilder, parser: &SseParser) -> RequestBuilder {
    match parser
        .last_event_id()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        Some(id) => req.header("last-event-id", id),
        None => req,
    }
}

impl HttpLink {
    /// Reads on the response to request `via` after its stream closed
    /// early: reconnects with `GET` + `Last-Event-ID` (the `retry:` delay,
    /// capped at [`MAX_RETRY`], before each attempt) until the answer
    /// arrives. Gives up with `resume_failed` on a 405 (the upstream offers
    /// no GET stream) or after [`MAX_FRUITLESS`] reconnections in a row
    /// that brought no event. The call's own timeout bounds the whole.
    pub(super) async fn resume_reply(
        &self,
        up: &Arc<Upstream>,
        via: u64,
        mut parser: SseParser,
    ) -> Result<(), GatewayError> {
        let mut fruitless = 0;
        let mut last_failure = String::new();
        while fruitless < MAX_FRUITLESS {
            tokio::time::sleep(retry_delay(&parser)).await;
            let req = with_last_event_id(self.builder(up, reqwest::Method::GET, None), &parser);
            metrics::counter!("warden_upstream_sse_reconnects_total", "server" => up.slug().to_owned())
                .increment(1);
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    fruitless += 1;
                    last_failure = e.detail;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 405 {
                return Err(resume_failed(
                    up,
                    "the upstream closed its stream before answering and does not allow GET to resume it (HTTP 405)".to_owned(),
                ));
            }
            if status == 404 && self.session.load().is_some() {
                up.mark_failed("the upstream session expired");
                return Err(up.unavailable("the upstream session expired"));
            }
            let is_sse = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
            if !resp.status().is_success() || !is_sse {
                fruitless += 1;
                last_failure = format!("HTTP {status} without an event stream");
                continue;
            }
            parser.reconnected();
            let end = read_sse(up, resp, Some(via), &mut parser).await?;
            match end {
                SseEnd::Answered => return Ok(()),
                _ if parser.events_seen() > 0 => fruitless = 0,
                SseEnd::Dropped(detail) => {
                    fruitless += 1;
                    last_failure = detail;
                }
                SseEnd::Closed => {
                    fruitless += 1;
                    last_failure = "the stream closed without an event".to_owned();
                }
            }
        }
        Err(resume_failed(
            up,
            format!(
                "the upstream closed its stream before answering and {MAX_FRUITLESS} reconnections brought nothing (last: {last_failure})"
            ),
        ))
    }
}

fn resume_failed(up: &Upstream, detail: String) -> GatewayError {
    GatewayError::UpstreamResumeFailed {
        server: up.slug().to_owned(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_is_the_upstreams_capped_at_ten_seconds() {
        let mut p = SseParser::new(1024);
        assert_eq!(retry_delay(&p), DEFAULT_RETRY);
        p.push(b"retry: 250\n\n").unwrap();
        assert_eq!(retry_delay(&p), Duration::from_millis(250));
        p.push(b"retry: 600000\n\n").unwrap();
        assert_eq!(retry_delay(&p), MAX_RETRY);
    }
}
