//! An upstream's connection task: connect (retrying with backoff),
//! initialize or discover, then keep the tool catalog fresh.

use super::*;
use crate::jsonrpc::ValueExt;

impl Upstream {
    /// The connection task: connect (retrying with backoff), then refresh
    /// the catalog on `list_changed` and on the interval.
    pub(super) async fn run(self: Arc<Self>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            if !self.is_ready() {
                self.connect_attempts.fetch_add(1, Ordering::Relaxed);
                match self.connect().await {
                    Ok(()) => {
                        backoff = FIRST_BACKOFF;
                        tracing::info!(server = %self.config.slug, "upstream connected");
                    }
                    Err(e) => {
                        metrics::counter!("warden_upstream_errors_total",
                            "server" => self.config.slug.clone(), "kind" => e.kind())
                        .increment(1);
                        tracing::warn!(server = %self.config.slug, error = %e,
                            retry_in_ms = backoff.as_millis() as u64, "upstream connection failed");
                        self.state_tx.send_replace(LinkState::Failed(e.to_string()));
                        if !self.back_off(backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(self.limits.max_backoff.max(FIRST_BACKOFF));
                        continue;
                    }
                }
            }
            // The catalog is caller-independent: only the shared connection
            // keeps it.
            if self.caller.is_none() {
                if let Err(e) = self.refresh_catalog().await {
                    tracing::warn!(server = %self.config.slug, error = %e, "tool catalog refresh failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.limits.catalog_refresh) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Waits `delay` before the next connection attempt; false if the
    /// upstream was closed meanwhile. Only `close` cuts the wait short: the
    /// failed attempt itself wakes this task (`mark_failed`), and honouring
    /// that wake-up retried at once, dozens of times in a few milliseconds.
    async fn back_off(&self, delay: Duration) -> bool {
        let until = tokio::time::Instant::now() + delay;
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return !self.closed.load(Ordering::SeqCst),
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Connection attempts so far (start-up and reconnections).
    #[cfg(test)]
    pub(super) fn connect_attempts(&self) -> u64 {
        self.connect_attempts.load(Ordering::Relaxed)
    }

    async fn connect(self: &Arc<Self>) -> Result<(), GatewayError> {
        self.state_tx.send_replace(LinkState::Connecting);
        self.protocol.store(None);
        match &self.link {
            Link::Http(link) => link.reset(),
            Link::Stdio(link) => link
                .spawn(self)
                .map_err(|e| self.unavailable(format!("cannot start process: {e}")))?,
        }
        // The newest revision first: `server/discover` (2026-07-28). An
        // upstream that refuses it, answers it with an error, or answers
        // without listing 2026-07-28 is opened on the session era
        // (`initialize`, 2025-11-25) instead. A caller link exists only for
        // a session-era upstream: it goes straight to `initialize`.
        match self.discover_unless_caller().await {
            Ok(true) => {}
            Ok(false) => self.initialize().await?,
            Err(e) if e.kind() == "unavailable" => return Err(e),
            Err(e) => {
                tracing::debug!(server = %self.config.slug, error = %e, "server/discover refused; opening the session era");
                self.initialize().await?
            }
        }
        self.state_tx.send_replace(LinkState::Ready);
        if let Link::Http(link) = &self.link {
            link.start_listener(self);
        } else if self.is_stateless() {
            self.listen_stdio();
        }
        Ok(())
    }

    async fn discover_unless_caller(self: &Arc<Self>) -> Result<bool, GatewayError> {
        if self.caller.is_some() {
            return Ok(false);
        }
        self.discover().await
    }

    /// The stateless revision: no handshake, `server/discover` instead.
    /// True when the upstream speaks 2026-07-28 (its discover result lists
    /// it); false, with nothing kept, when it does not.
    async fn discover(self: &Arc<Self>) -> Result<bool, GatewayError> {
        self.protocol
            .store(Some(Arc::new(STATELESS_VERSION.to_owned())));
        let id = self.next_request_id();
        let rx = self.send_request(id, "server/discover", None, None, None, None);
        // A session-era server may not answer a request before `initialize`
        // at all (stdio): it is not given the whole timeout to do so.
        let probe = self.timeout.min(DISCOVER_PROBE);
        let outcome = match tokio::time::timeout(probe, self.await_response(id, rx)).await {
            Ok(r) => r,
            Err(_) => {
                self.forget(id);
                Ok(Value::Null)
            }
        };
        self.protocol.store(None);
        let resp = outcome?;
        let speaks_stateless = resp
            .at(&["result", "supportedVersions"])
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|v| v == STATELESS_VERSION));
        if !speaks_stateless {
            return Ok(false);
        }
        self.protocol
            .store(Some(Arc::new(STATELESS_VERSION.to_owned())));
        self.info.store(Some(Arc::new(resp["result"].clone())));
        Ok(true)
    }

    /// The session era: `initialize` and `notifications/initialized`.
    async fn initialize(self: &Arc<Self>) -> Result<(), GatewayError> {
        if let Link::Http(link) = &self.link {
            link.reset();
        }
        // A caller link declares its caller's own capabilities and info, so
        // the upstream asks that client only for what it declared.
        let init = match &self.caller {
            Some(c) => json!({
                "protocolVersion": SESSION_VERSION,
                "capabilities": c.capabilities,
                "clientInfo": c.client_info.clone().unwrap_or_else(client_info),
            }),
            None => json!({
                "protocolVersion": SESSION_VERSION,
                "capabilities": client_capabilities(),
                "clientInfo": client_info(),
            }),
        };
        let id = self.next_request_id();
        let rx = self.send_request(id, "initialize", Some(init), None, None, None);
        let resp = self.await_response(id, rx).await?;
        let Some(result) = resp.get("result") else {
            return Err(self.err_protocol("neither server/discover nor initialize succeeded"));
        };
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(SESSION_VERSION)
            .to_owned();
        self.protocol.store(Some(Arc::new(version)));
        self.info.store(Some(Arc::new(result.clone())));
        self.send_oneway(jsonrpc::notification("notifications/initialized", None));
        Ok(())
    }

    /// On stdio a `subscriptions/listen` is just a request that stays open;
    /// its notifications arrive on the shared channel.
    fn listen_stdio(self: &Arc<Self>) {
        let id = self.next_request_id();
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
            "params": self.stateless_meta(Some(json!({"notifications": {"toolsListChanged": true}})))});
        if let Link::Stdio(link) = &self.link {
            let _ = link.send(&msg);
        }
    }

    /// Reloads the tool catalog (all pages); tells the gateway if it changed.
    pub async fn refresh_catalog(self: &Arc<Self>) -> Result<(), GatewayError> {
        if !self.has_capability("tools") {
            return Ok(());
        }
        let started = Instant::now();
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        loop {
            let params = cursor.take().map(|c| json!({"cursor": c}));
            let resp = self.call("tools/list", params, None).await?;
            let Some(result) = resp.get("result") else {
                return Err(self.err_protocol("tools/list answered with an error"));
            };
            let Some(page) = result.get("tools").and_then(Value::as_array) else {
                return Err(self.err_protocol("tools/list result has no tools array"));
            };
            tools.extend(page.iter().cloned());
            match result.get("nextCursor") {
                Some(c) if !c.is_null() && tools.len() < 100_000 => cursor = Some(c.clone()),
                _ => break,
            }
        }
        let previous = self.catalog.load();
        if previous.tools == tools && previous.generation > 0 {
            return Ok(());
        }
        self.catalog.store(Arc::new(ToolCatalog::build(
            &self.config.slug,
            tools,
            previous.generation + 1,
        )));
        tracing::debug!(server = %self.config.slug, elapsed_ms = started.elapsed().as_millis() as u64, "tool catalog updated");
        let _ = self
            .events
            .send(UpstreamEvent::CatalogChanged(self.config.server));
        Ok(())
    }
}

/// What Warden tells a session-era upstream it can do on the one
/// connection callers without a link of their own share: it relays sampling and elicitation
/// requests to the client that caused them (the 2026-07-28 wire carries
/// each caller's own capabilities instead, per request).
fn client_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {}})
}

pub(super) fn client_info() -> Value {
    json!({"name": "warden", "version": env!("CARGO_PKG_VERSION")})
}
