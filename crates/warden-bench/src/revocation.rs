//! Benchmark 1: revocation latency across replicas.
//!
//! One PostgreSQL, three `warden serve` replicas (A, B, C) and one demo
//! upstream. Clients call `tools/call` in a closed loop on B and C. Each
//! round disables the org grant through A's admin API and records, per
//! replica, the arrival of the first `server_disabled_by_org` refusal of a
//! call sent after the write was sent; the latency is that arrival minus the
//! arrival of A's response (negative: B refused before A answered). Then it
//! re-enables and waits until B and C serve calls again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use serde_json::json;

use crate::admin::{Admin, WaitFor};
use crate::error::{BenchError, Result};
use crate::mcp::{CallOutcome, McpSession};
use crate::procs::{random_secret, Binaries, Postgres, RunDir, Upstream, Warden, WardenSettings};
use crate::stats::{ms, signed_ms, table, Percentiles};

const ORG: &str = "bench";
const SERVER: &str = "demo";
const TOOL: &str = "demo__echo";
const DISABLED: &str = "server_disabled_by_org";
/// Call latencies kept per replica for the load summary.
const MAX_CALL_SAMPLES: usize = 2_000_000;

#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// Measured disables with the default write (live on A only).
    pub rounds: usize,
    /// Measured disables with `?wait=propagated`.
    pub propagated_rounds: usize,
    /// Closed-loop load clients on each of B and C.
    pub clients_per_replica: usize,
    /// Load before the first measured round.
    pub warmup: Duration,
    /// How long one round may wait for a refusal or recovery.
    pub round_timeout: Duration,
    /// Hard bound on the whole measured part.
    pub max_duration: Duration,
    /// `RUST_LOG` of the replicas.
    pub log_filter: String,
    pub keep_logs: bool,
}

/// What a replica's load clients are waiting to see.
#[derive(Debug, Clone, Copy)]
enum Watch {
    Nothing,
    /// A `server_disabled_by_org` refusal of a call sent at or after this.
    Refusal(Instant),
    /// A success of a call sent at or after this.
    Success(Instant),
}

#[derive(Debug)]
struct ProbeState {
    watch: Watch,
    /// Arrival of the first reply matching `watch`.
    hit: Option<Instant>,
    ok: u64,
    refused: u64,
    failed: u64,
    last_failure: Option<String>,
    ok_latencies_us: Vec<u32>,
}

/// The shared view of one replica's load clients.
struct Probe {
    name: &'static str,
    state: Mutex<ProbeState>,
}

impl Probe {
    fn new(name: &'static str) -> Probe {
        Probe {
            name,
            state: Mutex::new(ProbeState {
                watch: Watch::Nothing,
                hit: None,
                ok: 0,
                refused: 0,
                failed: 0,
                last_failure: None,
                ok_latencies_us: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, sent: Instant, arrived: Instant, outcome: &CallOutcome) {
        let mut s = self.lock();
        let matched = match (&s.watch, outcome) {
            (Watch::Refusal(since), CallOutcome::Refused(reason)) => {
                sent >= *since && reason == DISABLED
            }
            (Watch::Success(since), CallOutcome::Ok) => sent >= *since,
            _ => false,
        };
        if matched && s.hit.is_none() {
            s.hit = Some(arrived);
        }
        match outcome {
            CallOutcome::Ok => {
                s.ok += 1;
                if s.ok_latencies_us.len() < MAX_CALL_SAMPLES {
                    let us = arrived.duration_since(sent).as_micros();
                    s.ok_latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            CallOutcome::Refused(_) => s.refused += 1,
            CallOutcome::Failed(why) => {
                s.failed += 1;
                s.last_failure = Some(why.clone());
            }
        }
    }

    fn arm(&self, watch: Watch) {
        let mut s = self.lock();
        s.watch = watch;
        s.hit = None;
    }

    fn hit(&self) -> Option<Instant> {
        self.lock().hit
    }
}

/// Waits until every probe saw what it watches; the arrival times.
async fn wait_hits(probes: &[Arc<Probe>], within: Duration, what: &str) -> Result<Vec<Instant>> {
    let deadline = Instant::now() + within;
    loop {
        let hits: Vec<Option<Instant>> = probes.iter().map(|p| p.hit()).collect();
        if hits.iter().all(Option::is_some) {
            return Ok(hits.into_iter().flatten().collect());
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = probes
                .iter()
                .zip(&hits)
                .filter(|(_, h)| h.is_none())
                .map(|(p, _)| {
                    let s = p.lock();
                    format!(
                        "{} (ok {}, refused {}, failed {}, last failure {:?})",
                        p.name, s.ok, s.refused, s.failed, s.last_failure
                    )
                })
                .collect();
            return Err(BenchError::Timeout {
                what: format!("{what} on {}", missing.join(", ")),
                after: within,
            });
        }
        // The hit time is stamped by the client that saw it; this poll only
        // decides when to move on, so its granularity does not matter.
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Results of one mode (default write or `?wait=propagated`).
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    pub mode: &'static str,
    pub rounds: usize,
    pub timeouts: usize,
    /// The disabling write on A, from request sent to response arrived.
    pub write: Percentiles,
    /// Per replica: A's response arrival to the first refusal arriving.
    pub replica_b: Percentiles,
    pub replica_c: Percentiles,
    /// B and C samples together.
    pub overall: Percentiles,
    /// Per round, the later of B and C: refused everywhere.
    pub slowest_per_round: Percentiles,
    /// The same, from the write's request being sent.
    pub overall_from_request: Percentiles,
    /// Refusals that arrived before A's response.
    pub refused_before_response: usize,
    /// Per round, in order: the write, B's and C's latency.
    pub samples_write_ms: Vec<f64>,
    pub samples_b_ms: Vec<f64>,
    pub samples_c_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub replica: &'static str,
    pub clients: usize,
    pub calls_ok: u64,
    pub calls_refused: u64,
    pub calls_failed: u64,
    pub last_failure: Option<String>,
    pub calls_per_second: f64,
    pub ok_call_latency: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevocationReport {
    pub postgres: String,
    pub replicas: usize,
    pub cpus: usize,
    pub measured_seconds: f64,
    pub modes: Vec<ModeReport>,
    pub load: Vec<LoadReport>,
    pub replicas_rss_kib: Vec<Option<u64>>,
}

/// Starts everything, measures, stops everything.
pub async fn run(config: &RevocationConfig, bins: &Binaries) -> Result<RevocationReport> {
    let mut dir = RunDir::new("warden-bench-revocation-")?;
    let outcome = run_in(config, bins, &dir).await;
    if outcome.is_err() || config.keep_logs {
        eprintln!("logs kept in {}", dir.keep().display());
    }
    outcome
}

async fn run_in(
    config: &RevocationConfig,
    bins: &Binaries,
    dir: &RunDir,
) -> Result<RevocationReport> {
    let postgres = Postgres::start()?;
    let upstream = Upstream::start(bins, dir.path()).await?;
    let settings = WardenSettings {
        database_url: postgres.url(),
        admin_token: random_secret(),
        secret_key: random_secret(),
        log_filter: config.log_filter.clone(),
        env: Vec::new(),
    };
    // A migrates the empty database first; B and C start on it.
    let a = Warden::start(bins, &settings, "replica-a", dir.path()).await?;
    let b = Warden::start(bins, &settings, "replica-b", dir.path()).await?;
    let c = Warden::start(bins, &settings, "replica-c", dir.path()).await?;
    let admin = Admin::new(&a.base, &settings.admin_token)?;
    admin.create_org(ORG).await?;
    admin.create_http_server(SERVER, &upstream.url).await?;
    admin.grant_all(ORG, SERVER).await?;
    let key = admin.create_key(ORG, "revocation-bench").await?;
    let live = admin.live_replicas().await?;
    if live < 3 {
        return Err(BenchError::Reply {
            what: "GET /admin/v1/replicas".into(),
            detail: format!("{live} live replicas, expected 3"),
        });
    }

    let probes = [Arc::new(Probe::new("B")), Arc::new(Probe::new("C"))];
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (probe, node) in probes.iter().zip([&b, &c]) {
        for _ in 0..config.clients_per_replica.max(1) {
            // Own connection per client, as separate clients would have.
            let http = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(10))
                .build()?;
            let session = open_when_ready(http, &node.mcp_url(), &key).await?;
            clients.push(tokio::spawn(load_loop(
                session,
                Arc::clone(probe),
                Arc::clone(&stop),
                Instant::now() + config.max_duration + config.warmup,
            )));
        }
    }
    tokio::time::sleep(config.warmup).await;
    for probe in &probes {
        let mut s = probe.lock();
        (s.ok, s.refused, s.failed) = (0, 0, 0);
        s.ok_latencies_us.clear();
    }

    let started = Instant::now();
    let deadline = started + config.max_duration;
    let mut modes = Vec::new();
    let mut failure = None;
    for (mode, rounds) in [
        (WaitFor::Local, config.rounds),
        (WaitFor::Propagated, config.propagated_rounds),
    ] {
        if rounds == 0 {
            continue;
        }
        match measure_mode(
            &admin,
            &probes,
            mode,
            rounds,
            config.round_timeout,
            deadline,
        )
        .await
        {
            Ok(report) => modes.push(report),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let measured = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let load = probes
        .iter()
        .map(|probe| {
            let s = probe.lock();
            let latencies: Vec<f64> = s
                .ok_latencies_us
                .iter()
                .map(|us| f64::from(*us) / 1000.0)
                .collect();
            LoadReport {
                replica: probe.name,
                clients: config.clients_per_replica.max(1),
                calls_ok: s.ok,
                calls_refused: s.refused,
                calls_failed: s.failed,
                last_failure: s.last_failure.clone(),
                calls_per_second: (s.ok + s.refused + s.failed) as f64 / measured.as_secs_f64(),
                ok_call_latency: Percentiles::of(&latencies),
            }
        })
        .collect();
    let report = RevocationReport {
        postgres: postgres.version.clone(),
        replicas: 3,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        measured_seconds: measured.as_secs_f64(),
        modes,
        load,
        replicas_rss_kib: [&a, &b, &c].iter().map(|w| w.proc.rss_kib()).collect(),
    };
    drop((a, b, c, upstream, postgres));
    Ok(report)
}

/// Opens a session and waits until a call succeeds (the replica applied the
/// setup and fetched the upstream's catalog).
async fn open_when_ready(http: reqwest::Client, url: &str, key: &str) -> Result<McpSession> {
    let within = Duration::from_secs(30);
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match McpSession::open(http.clone(), url, key).await {
            Ok(mut session) => match session.call_tool(TOOL, json!({ "text": "ready" })).await {
                CallOutcome::Ok => return Ok(session),
                other => last = format!("{other:?}"),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BenchError::Timeout {
        what: format!("a first successful call on {url} (last: {last})"),
        after: within,
    })
}

async fn load_loop(
    mut session: McpSession,
    probe: Arc<Probe>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) {
    let arguments = json!({ "text": "revocation-bench" });
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let sent = Instant::now();
        let outcome = session.call_tool(TOOL, arguments.clone()).await;
        probe.record(sent, Instant::now(), &outcome);
        if matches!(outcome, CallOutcome::Failed(_)) {
            // Do not spin on a broken connection.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    session.close().await;
}

async fn measure_mode(
    admin: &Admin,
    probes: &[Arc<Probe>; 2],
    mode: WaitFor,
    rounds: usize,
    round_timeout: Duration,
    deadline: Instant,
) -> Result<ModeReport> {
    let mut write_ms = Vec::with_capacity(rounds);
    let mut per_replica: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut slowest = Vec::new();
    let mut from_request = Vec::new();
    let mut timeouts = 0usize;
    let mut done = 0usize;
    for _ in 0..rounds {
        if Instant::now() >= deadline {
            break;
        }
        // A random pause so writes land at random points of the call loop.
        let pause = rand::thread_rng().gen_range(5..25);
        tokio::time::sleep(Duration::from_millis(pause)).await;

        let armed = Instant::now();
        for probe in probes {
            probe.arm(Watch::Refusal(armed));
        }
        let written = admin.set_grant_enabled(ORG, SERVER, false, mode).await?;
        match wait_hits(probes, round_timeout, "a refused call").await {
            Ok(hits) => {
                write_ms.push(signed_ms(written.answered, written.sent));
                for (i, hit) in hits.iter().enumerate() {
                    per_replica[i].push(signed_ms(*hit, written.answered));
                    from_request.push(signed_ms(*hit, written.sent));
                }
                let last = hits.iter().max().copied().unwrap_or(written.answered);
                slowest.push(signed_ms(last, written.answered));
                done += 1;
            }
            Err(e) => {
                timeouts += 1;
                eprintln!("round timed out: {e}");
                if timeouts >= 3 {
                    return Err(e);
                }
            }
        }

        let armed = Instant::now();
        for probe in probes {
            probe.arm(Watch::Success(armed));
        }
        admin
            .set_grant_enabled(ORG, SERVER, true, WaitFor::Local)
            .await?;
        wait_hits(probes, round_timeout, "calls to succeed again").await?;
        for probe in probes {
            probe.arm(Watch::Nothing);
        }
    }
    let all: Vec<f64> = per_replica.iter().flatten().copied().collect();
    Ok(ModeReport {
        mode: match mode {
            WaitFor::Local => "default",
            WaitFor::Propagated => "wait=propagated",
        },
        rounds: done,
        timeouts,
        write: Percentiles::of(&write_ms),
        replica_b: Percentiles::of(&per_replica[0]),
        replica_c: Percentiles::of(&per_replica[1]),
        overall: Percentiles::of(&all),
        slowest_per_round: Percentiles::of(&slowest),
        overall_from_request: Percentiles::of(&from_request),
        refused_before_response: all.iter().filter(|v| **v < 0.0).count(),
        samples_write_ms: write_ms.clone(),
        samples_b_ms: per_replica[0].clone(),
        samples_c_ms: per_replica[1].clone(),
    })
}

impl RevocationReport {
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Revocation latency across replicas: {} replicas of `warden serve` on {}, {} CPU(s), {:.1} s measured\n\
             Disable the org grant through A's admin API; latency = first `{DISABLED}` reply on B / C\n\
             minus arrival of A's response (negative: refused before A answered). Milliseconds.\n\n",
            self.replicas, self.postgres, self.cpus, self.measured_seconds
        );
        let header = ["mode", "measure", "n", "p50", "p90", "p99", "max"];
        let mut rows = Vec::new();
        for m in &self.modes {
            let mut row = |what: &str, p: &Percentiles| {
                let mut cells = vec![m.mode.to_owned(), what.to_owned()];
                cells.extend(p.cells());
                rows.push(cells);
            };
            row("write on A (request -> response)", &m.write);
            row("B: response -> first refusal", &m.replica_b);
            row("C: response -> first refusal", &m.replica_c);
            row("B and C together", &m.overall);
            row("slowest of B, C per disable", &m.slowest_per_round);
            row("B and C from request sent", &m.overall_from_request);
        }
        out.push_str(&table(&header, 2, &rows));
        for m in &self.modes {
            out.push_str(&format!(
                "{}: {} rounds, {} timed out, {} of {} refusals arrived before A's response\n",
                m.mode, m.rounds, m.timeouts, m.refused_before_response, m.overall.count
            ));
        }
        out.push('\n');
        let header = [
            "load on", "clients", "calls/s", "ok", "refused", "failed", "call p50", "call p99",
        ];
        let rows: Vec<Vec<String>> = self
            .load
            .iter()
            .map(|l| {
                vec![
                    l.replica.to_owned(),
                    l.clients.to_string(),
                    format!("{:.0}", l.calls_per_second),
                    l.calls_ok.to_string(),
                    l.calls_refused.to_string(),
                    l.calls_failed.to_string(),
                    ms(l.ok_call_latency.p50_ms),
                    ms(l.ok_call_latency.p99_ms),
                ]
            })
            .collect();
        out.push_str(&table(&header, 1, &rows));
        for l in &self.load {
            if let Some(why) = &l.last_failure {
                out.push_str(&format!("last failed call on {}: {why}\n", l.replica));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_match_only_calls_sent_after_arming() {
        let probe = Probe::new("B");
        let before = Instant::now();
        let armed = before + Duration::from_millis(1);
        probe.arm(Watch::Refusal(armed));
        let refused = CallOutcome::Refused(DISABLED.into());
        // Sent before the write: a refusal left over from an earlier round.
        probe.record(before, armed + Duration::from_millis(2), &refused);
        assert!(probe.hit().is_none());
        // Another reason does not count either.
        probe.record(armed, armed, &CallOutcome::Refused("key_revoked".into()));
        assert!(probe.hit().is_none());
        let first = armed + Duration::from_millis(3);
        probe.record(armed, first, &refused);
        probe.record(armed, first + Duration::from_millis(1), &refused);
        assert_eq!(probe.hit(), Some(first));

        probe.arm(Watch::Success(first));
        probe.record(armed, first, &CallOutcome::Ok);
        assert!(probe.hit().is_none());
        probe.record(first, first, &CallOutcome::Ok);
        assert_eq!(probe.hit(), Some(first));
        let s = probe.lock();
        assert_eq!((s.ok, s.refused, s.failed), (2, 4, 0));
    }
}
