//! A minimal incremental Server-Sent Events parser: enough for MCP, which
//! sends JSON-RPC messages as `data:` lines.

/// Feeds bytes in, takes complete event data out.
#[derive(Debug)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    data: String,
    has_data: bool,
    max_event_bytes: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge;

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: Vec::new(),
            data: String::new(),
            has_data: false,
            max_event_bytes,
        }
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
                if self.has_data {
                    events.push(std::mem::take(&mut self.data));
                    self.has_data = false;
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
            }
            // `event:`, `id:`, `retry:` and comments carry nothing MCP needs.
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
}
