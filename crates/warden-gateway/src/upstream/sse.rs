//! A minimal incremental Server-Sent Events parser: enough for MCP, which
//! sends JSON-RPC messages as `data:` lines, and for resuming a stream
//! (the last event `id:` and the server's `retry:` delay).

/// Feeds bytes in, takes complete event data out.
#[derive(Debug)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    data: String,
    has_data: bool,
    max_event_bytes: usize,
    /// The `id:` of the event being read, until it completes.
    pending_id: Option<String>,
    /// The id of the last completed event that had one (the stream's
    /// resume point, sent back as `Last-Event-ID`).
    last_event_id: Option<String>,
    /// The server's last `retry:` (milliseconds).
    retry_ms: Option<u64>,
    /// Events completed since the last [`SseParser::reconnected`], with or
    /// without data.
    events_seen: u64,
}

/// Bound on an event id kept to send back (a header value).
const MAX_EVENT_ID_BYTES: usize = 1024;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge;

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: Vec::new(),
            data: String::new(),
            has_data: false,
            max_event_bytes,
            pending_id: None,
            last_event_id: None,
            retry_ms: None,
            events_seen: 0,
        }
    }

    /// The id of the last event that carried one, to resume after.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref().filter(|id| !id.is_empty())
    }

    /// The reconnection delay the server asked for, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Events completed on the current connection (priming events with an
    /// id and no data included).
    pub fn events_seen(&self) -> u64 {
        self.events_seen
    }

    /// A new connection resumes the stream: a half-read event of the old
    /// one is dropped; the resume point and delay are kept.
    pub fn reconnected(&mut self) {
        self.buf.clear();
        self.data.clear();
        self.has_data = false;
        self.pending_id = None;
        self.events_seen = 0;
    }

    /// Adds a chunk; returns the data of every event it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, TooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            if line.is_empty() {
                let completed = self.has_data || self.pending_id.is_some();
                if let Some(id) = self.pending_id.take() {
                    self.last_event_id = Some(id);
                }
                if self.has_data {
                    events.push(std::mem::take(&mut self.data));
                    self.has_data = false;
                }
                if completed {
                    self.events_seen += 1;
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("data") {
                let value = rest
                    .strip_prefix(':')
                    .map(|v| v.strip_prefix(' ').unwrap_or(v));
                let Some(value) = value else { continue };
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_event_bytes {
                    return Err(TooLarge);
                }
            } else if let Some(rest) = line.strip_prefix("id") {
                let value = rest
                    .strip_prefix(':')
                    .map(|v| v.strip_prefix(' ').unwrap_or(v));
                // An id with NUL is ignored (as EventSource does); so is one
                // too long to send back.
                if let Some(value) = value {
                    if !value.contains('\0') && value.len() <= MAX_EVENT_ID_BYTES {
                        self.pending_id = Some(value.to_owned());
                    }
                }
            } else if let Some(rest) = line.strip_prefix("retry:") {
                let rest = rest.strip_prefix(' ').unwrap_or(rest);
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                    self.retry_ms = rest.parse().ok();
                }
            }
            // `event:` and comments carry nothing MCP needs.
        }
        self.buf.drain(..start);
        if self.buf.len() + self.data.len() > self.max_event_bytes {
            return Err(TooLarge);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = SseParser::new(1024);
        assert!(p
            .push(b"event: message\r\ndata: {\"a\"")
            .unwrap()
            .is_empty());
        let ev = p
            .push(b":1}\r\n\r\n: comment\n\ndata:x\ndata: y\n\n")
            .unwrap();
        assert_eq!(ev, vec!["{\"a\":1}".to_string(), "x\ny".to_string()]);
    }

    #[test]
    fn rejects_oversized_events() {
        let mut p = SseParser::new(8);
        assert_eq!(p.push(b"data: 0123456789\n"), Err(TooLarge));
    }

    #[test]
    fn keeps_the_last_event_id_and_retry_across_a_reconnection() {
        let mut p = SseParser::new(1024);
        // A priming event: an id and empty data, no message.
        assert_eq!(
            p.push(b"id: s1-0\nretry: 250\ndata:\n\n").unwrap(),
            vec![""]
        );
        assert_eq!(p.last_event_id(), Some("s1-0"));
        assert_eq!(p.retry_ms(), Some(250));
        assert_eq!(p.events_seen(), 1);
        // An id only applies once its event completes.
        assert!(p.push(b"id: s1-1\ndata: {}").unwrap().is_empty());
        assert_eq!(p.last_event_id(), Some("s1-0"));
        p.reconnected();
        assert_eq!(p.events_seen(), 0);
        assert_eq!(p.last_event_id(), Some("s1-0"));
        assert_eq!(p.retry_ms(), Some(250));
        // The half-read event of the old connection is gone.
        assert_eq!(p.push(b"\nid: s1-2\ndata: x\n\n").unwrap(), vec!["x"]);
        assert_eq!(p.last_event_id(), Some("s1-2"));
        // A bad retry is ignored; an empty id resets the resume point.
        p.push(b"retry: soon\nid:\n\n").unwrap();
        assert_eq!(p.retry_ms(), Some(250));
        assert_eq!(p.last_event_id(), None);
    }
}
