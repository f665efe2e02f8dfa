//! Benchmark 2: `notifications/tools/list_changed` fan-out to live sessions.
//!
//! One `warden serve` and one demo upstream. `sessions` MCP sessions
//! (2025-11-25: `initialize` + GET stream) of org `fan` and `bystanders`
//! sessions of org `bystander` see the same server through their own org
//! grants. Each toggle flips org `fan`'s grant (disable, enable, ...): every
//! `fan` session's visible tools change, no `bystander` session's do. For
//! each `fan` stream the arrival of `list_changed` is measured from the
//! write's response and from its request; bystanders must receive nothing.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::admin::{Admin, WaitFor};
use crate::error::{BenchError, Result};
use crate::mcp::{is_list_changed, CallOutcome, McpSession, SseParser};
use crate::procs::{random_secret, Binaries, Postgres, RunDir, Upstream, Warden, WardenSettings};
use crate::stats::{ms, signed_ms, table, Percentiles};

const ORG: &str = "fan";
const BYSTANDER_ORG: &str = "bystander";
const SERVER: &str = "demo";
const TOOL: &str = "demo__echo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub sessions: usize,
    pub bystanders: usize,
    pub toggles: usize,
    pub database: Database,
    /// Sessions opened at the same time during setup.
    pub open_concurrency: usize,
    /// How long a toggle may wait for every notification.
    pub toggle_timeout: Duration,
    /// After the last expected notification: how long to keep listening
    /// for unexpected ones (bystanders, duplicates).
    pub quiet: Duration,
    pub log_filter: String,
    pub keep_logs: bool,
}

/// What a stream reader reports.
#[derive(Debug)]
enum StreamEvent {
    ListChanged { session: usize, at: Instant },
    Closed { session: usize, why: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct ToggleReport {
    pub enabled_after: bool,
    pub write_ms: f64,
    pub notified: usize,
    /// From the write's response to the first and the last `fan` notification.
    pub first_ms: f64,
    pub last_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    pub database: Database,
    pub cpus: usize,
    pub sessions: usize,
    pub bystanders: usize,
    pub toggles: usize,
    /// Every `fan` notification, from the write's response (negative: it
    /// arrived before the response).
    pub from_response: Percentiles,
    pub from_request: Percentiles,
    /// Per toggle, the last of the `fan` notifications, from the response.
    pub all_notified: Percentiles,
    /// Per toggle, last minus first notification: the fan-out itself.
    pub spread: Percentiles,
    pub write: Percentiles,
    /// `fan` sessions that got no notification within the timeout (summed over toggles).
    pub missed: usize,
    /// Notifications beyond one per `fan` session and toggle.
    pub duplicates: usize,
    /// Notifications any `bystander` session received (must be 0).
    pub bystander_notifications: usize,
    /// Streams that ended during the run (must be 0).
    pub streams_closed: usize,
    pub setup_seconds: f64,
    pub warden_rss_kib: Option<u64>,
    pub per_toggle: Vec<ToggleReport>,
}

pub async fn run(config: &FanoutConfig, bins: &Binaries) -> Result<FanoutReport> {
    let mut dir = RunDir::new("warden-bench-fanout-")?;
    let outcome = run_in(config, bins, &dir).await;
    if outcome.is_err() || config.keep_logs {
        eprintln!("logs kept in {}", dir.keep().display());
    }
    outcome
}

async fn run_in(config: &FanoutConfig, bins: &Binaries, dir: &RunDir) -> Result<FanoutReport> {
    let postgres = match config.database {
        Database::Postgres => Some(Postgres::start()?),
        Database::Sqlite => None,
    };
    let database_url = match &postgres {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.path().join("warden.db").display()),
    };
    let upstream = Upstream::start(bins, dir.path()).await?;
    let settings = WardenSettings {
        database_url,
        admin_token: random_secret(),
        secret_key: random_secret(),
        log_filter: config.log_filter.clone(),
        env: Vec::new(),
    };
    let warden = Warden::start(bins, &settings, "warden", dir.path()).await?;
    let admin = Admin::new(&warden.base, &settings.admin_token)?;
    admin.create_http_server(SERVER, &upstream.url).await?;
    let mut keys = Vec::new();
    for org in [ORG, BYSTANDER_ORG] {
        admin.create_org(org).await?;
        admin.grant_all(org, SERVER).await?;
        keys.push(admin.create_key(org, "fanout-bench").await?);
    }
    let (fan_key, bystander_key) = (keys[0].clone(), keys[1].clone());
    let url = warden.mcp_url();
    wait_until_callable(&url, &fan_key).await?;

    let setup_started = Instant::now();
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(config.open_concurrency.max(1))
        .build()?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let total = config.sessions + config.bystanders;
    let mut sessions = Vec::with_capacity(total);
    let mut index = 0;
    while index < total {
        let batch_end = (index + config.open_concurrency.max(1)).min(total);
        let mut opening = Vec::new();
        for i in index..batch_end {
            let key = if i < config.sessions {
                fan_key.clone()
            } else {
                bystander_key.clone()
            };
            let (http, url) = (http.clone(), url.clone());
            opening.push(tokio::spawn(async move {
                let session = McpSession::open(http, &url, &key).await?;
                let stream = session.open_stream().await?;
                Ok::<_, BenchError>((session, stream))
            }));
        }
        for (offset, task) in opening.into_iter().enumerate() {
            let (session, stream) = task.await.map_err(|e| BenchError::Reply {
                what: "opening a session".into(),
                detail: e.to_string(),
            })??;
            tokio::spawn(read_stream(index + offset, stream, events_tx.clone()));
            sessions.push(session);
        }
        index = batch_end;
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    // Let every stream settle, then make sure nothing arrived yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut streams_closed = 0usize;
    let mut bystander_notifications = 0usize;
    let mut duplicates = 0usize;
    while let Ok(event) = events.try_recv() {
        match event {
            StreamEvent::ListChanged { .. } => duplicates += 1,
            StreamEvent::Closed { .. } => streams_closed += 1,
        }
    }

    let mut from_response = Vec::with_capacity(config.sessions * config.toggles);
    let mut from_request = Vec::with_capacity(config.sessions * config.toggles);
    let mut all_notified = Vec::new();
    let mut spreads = Vec::new();
    let mut writes = Vec::new();
    let mut missed = 0usize;
    let mut per_toggle = Vec::new();
    let mut last_close: Option<String> = None;
    for toggle in 0..config.toggles {
        let enabled_after = toggle % 2 == 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let written = admin
            .set_grant_enabled(ORG, SERVER, enabled_after, WaitFor::Local)
            .await?;
        writes.push(signed_ms(written.answered, written.sent));
        let mut seen = vec![false; config.sessions];
        let mut notified = 0usize;
        let mut arrivals = Vec::with_capacity(config.sessions);
        let mut listen_until = written.answered + config.toggle_timeout;
        let mut quiet_started = false;
        loop {
            let now = Instant::now();
            if now >= listen_until {
                break;
            }
            let event = match tokio::time::timeout(listen_until - now, events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => break,
            };
            match event {
                StreamEvent::ListChanged { session, at } if session < config.sessions => {
                    // Sent before this write: a late one of an earlier toggle.
                    if seen[session] || at < written.sent {
                        duplicates += 1;
                        continue;
                    }
                    seen[session] = true;
                    notified += 1;
                    let after_response = signed_ms(at, written.answered);
                    arrivals.push(after_response);
                    from_response.push(after_response);
                    from_request.push(signed_ms(at, written.sent));
                    if notified == config.sessions && !quiet_started {
                        quiet_started = true;
                        listen_until = Instant::now() + config.quiet;
                    }
                }
                StreamEvent::ListChanged { .. } => bystander_notifications += 1,
                StreamEvent::Closed { session, why } => {
                    streams_closed += 1;
                    last_close = Some(format!("session {session}: {why}"));
                }
            }
        }
        missed += config.sessions - notified;
        let spread = Percentiles::of(&arrivals);
        if notified == config.sessions {
            all_notified.push(spread.max_ms);
            spreads.push(spread.max_ms - spread.min_ms);
        }
        per_toggle.push(ToggleReport {
            enabled_after,
            write_ms: signed_ms(written.answered, written.sent),
            notified,
            first_ms: spread.min_ms,
            last_ms: spread.max_ms,
            p50_ms: spread.p50_ms,
            p99_ms: spread.p99_ms,
        });
    }
    if let Some(why) = last_close {
        eprintln!("a stream ended during the run: {why}");
    }
    let report = FanoutReport {
        database: config.database,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        sessions: config.sessions,
        bystanders: config.bystanders,
        toggles: config.toggles,
        from_response: Percentiles::of(&from_response),
        from_request: Percentiles::of(&from_request),
        all_notified: Percentiles::of(&all_notified),
        spread: Percentiles::of(&spreads),
        write: Percentiles::of(&writes),
        missed,
        duplicates,
        bystander_notifications,
        streams_closed,
        setup_seconds,
        warden_rss_kib: warden.proc.rss_kib(),
        per_toggle,
    };
    for session in sessions {
        session.close().await;
    }
    drop((warden, upstream, postgres));
    Ok(report)
}

async fn wait_until_callable(url: &str, key: &str) -> Result<()> {
    let within = Duration::from_secs(30);
    let deadline = Instant::now() + within;
    let http = reqwest::Client::new();
    let mut last = String::new();
    while Instant::now() < deadline {
        match McpSession::open(http.clone(), url, key).await {
            Ok(mut session) => {
                let outcome = session.call_tool(TOOL, json!({ "text": "ready" })).await;
                session.close().await;
                if outcome == CallOutcome::Ok {
                    return Ok(());
                }
                last = format!("{outcome:?}");
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Timeout {
        what: format!("a first successful call (last: {last})"),
        after: within,
    })
}

/// Reads one GET stream until it ends, reporting each `list_changed`.
async fn read_stream(
    session: usize,
    mut stream: reqwest::Response,
    events: mpsc::UnboundedSender<StreamEvent>,
) {
    let mut parser = SseParser::default();
    let why = loop {
        match stream.chunk().await {
            Ok(Some(chunk)) => {
                let at = Instant::now();
                for data in parser.push(&chunk) {
                    if is_list_changed(&data)
                        && events
                            .send(StreamEvent::ListChanged { session, at })
                            .is_err()
                    {
                        return;
                    }
                }
            }
            Ok(None) => break "end of stream".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = events.send(StreamEvent::Closed { session, why });
}

impl FanoutReport {
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "tools/list_changed fan-out: one `warden serve` ({:?}), {} CPU(s), {} live sessions \
             (2025-11-25, GET stream each) + {} bystander sessions, {} toggles of one org grant\n\
             Latency = arrival of the notification on each stream. Milliseconds.\n\n",
            self.database, self.cpus, self.sessions, self.bystanders, self.toggles
        );
        let header = ["measure", "n", "p50", "p90", "p99", "max"];
        let mut rows = Vec::new();
        let mut row = |what: &str, p: &Percentiles| {
            let mut cells = vec![what.to_owned()];
            cells.extend(p.cells());
            rows.push(cells);
        };
        row("write (request -> response)", &self.write);
        row("notification, from write response", &self.from_response);
        row("notification, from write request", &self.from_request);
        row("last of all sessions per toggle", &self.all_notified);
        row("last minus first per toggle", &self.spread);
        out.push_str(&table(&header, 1, &rows));
        out.push_str(&format!(
            "missed: {}, duplicates: {}, bystander notifications: {}, streams closed: {}\n\
             setup (open {} sessions + streams): {:.1} s, warden RSS: {}\n",
            self.missed,
            self.duplicates,
            self.bystander_notifications,
            self.streams_closed,
            self.sessions + self.bystanders,
            self.setup_seconds,
            self.warden_rss_kib.map_or("n/a".to_owned(), |k| format!(
                "{:.0} MiB",
                k as f64 / 1024.0
            )),
        ));
        out.push('\n');
        let header = [
            "toggle", "grant", "write", "notified", "first", "p50", "p99", "last",
        ];
        let rows: Vec<Vec<String>> = self
            .per_toggle
            .iter()
            .enumerate()
            .map(|(i, t)| {
                vec![
                    (i + 1).to_string(),
                    if t.enabled_after { "enable" } else { "disable" }.to_owned(),
                    ms(t.write_ms),
                    t.notified.to_string(),
                    ms(t.first_ms),
                    ms(t.p50_ms),
                    ms(t.p99_ms),
                    ms(t.last_ms),
                ]
            })
            .collect();
        out.push_str(&table(&header, 2, &rows));
        out
    }

    /// Whether the run kept the promise: everyone told, nobody else.
    pub fn correct(&self) -> bool {
        self.missed == 0 && self.bystander_notifications == 0 && self.streams_closed == 0
    }
}
