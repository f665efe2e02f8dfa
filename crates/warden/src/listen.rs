//! The front door's accept loop: hyper's HTTP/1 server over the axum app,
//! with the limits `axum::serve` does not have. A client that has started
//! sending a request head and not finished it within `header_read_timeout`
//! is closed; a connection with no request in flight and no request head
//! started for `idle_timeout` (a keep-alive connection between requests, or
//! one that never sent a byte) is closed; at most `max_connections` are
//! open at once.
//!
//! The header timeout is kept here rather than by hyper's
//! `header_read_timeout`, whose timer also runs while a keep-alive
//! connection waits for its next request: it would close every idle
//! keep-alive connection after the (short) header timeout and leave the
//! idle timeout nothing to do. Here the header clock starts with the first
//! byte of a request head, read through [`Watched`].
//!
//! A connection "with a request in flight" is one whose request is being
//! handled or whose response body (an SSE stream, a long upstream call) is
//! still being sent: those are never cut by a timeout or by the cap. When
//! the cap is reached, a new connection takes the place of the oldest
//! connection that has nothing in flight (idle keep-alive, or headers still
//! arriving); only when every open connection is busy is the new one
//! refused (accepted and closed at once). So a flood of half-open
//! connections cannot lock out `/healthz` or an authenticated client: each
//! new connection evicts the flood's oldest one.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::workers::ConnectionWorkers;

/// Limits of the front door (see `Config`).
#[derive(Debug, Clone, Copy)]
pub struct FrontDoorLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// File descriptors kept for everything that is not a client connection
/// (the database, upstream connections, stdio children, log files).
const RESERVED_FDS: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the number
/// of client connections the process can hold (`None` if unknown).
pub fn raise_fd_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above. Failure (e.g. an infinite hard limit above
            // the kernel's nr_open) keeps the current soft limit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        // rlim_t is u64 on Linux, not on every unix.
        #[allow(clippy::useless_conversion)]
        let soft = u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX);
        Some(usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// What one open connection shares with the registry and its requests.
struct ConnShared {
    /// Requests being handled or whose response body is still open.
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` at which `in_flight` last became 0.
    idle_since_ms: AtomicU64,
    /// Milliseconds since `epoch` at which bytes of a request head were
    /// first read with nothing in flight; `NO_HEAD` when none is arriving.
    head_since_ms: AtomicU64,
    /// Told when a request head starts arriving (its clock starts).
    head_started: Notify,
    /// Told to close at once (evicted to make room).
    evict: Notify,
    epoch: Instant,
}

const NO_HEAD: u64 = u64::MAX;

/// Why a connection's watcher closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    HeaderTimeout,
    IdleTimeout,
}

impl ConnShared {
    fn new(epoch: Instant) -> Self {
        ConnShared {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(ms_since(epoch)),
            head_since_ms: AtomicU64::new(NO_HEAD),
            head_started: Notify::new(),
            evict: Notify::new(),
            epoch,
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        // The head is complete: its clock stops.
        self.head_since_ms.store(NO_HEAD, Ordering::Release);
        InFlight(Arc::clone(self))
    }

    /// Bytes arrived from the client. With nothing in flight they are the
    /// start of a request head (bytes read while a request is in flight are
    /// its body, or a pipelined request that the idle clock bounds).
    fn bytes_read(&self) {
        if self.is_idle() && self.head_since_ms.load(Ordering::Acquire) == NO_HEAD {
            self.head_since_ms
                .store(ms_since(self.epoch), Ordering::Release);
            self.head_started.notify_one();
        }
    }

    /// When this connection expires if nothing changes, and why; `None`
    /// while a request is in flight.
    fn deadline(
        &self,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Option<(Instant, Expiry)> {
        if !self.is_idle() {
            return None;
        }
        let at = |ms: u64| self.epoch + Duration::from_millis(ms);
        match self.head_since_ms.load(Ordering::Acquire) {
            NO_HEAD => Some((
                at(self.idle_since_ms.load(Ordering::Acquire)) + idle_timeout,
                Expiry::IdleTimeout,
            )),
            head => Some((at(head) + header_timeout, Expiry::HeaderTimeout)),
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// The client's socket, telling its connection when bytes arrive.
struct Watched {
    tcp: tokio::net::TcpStream,
    conn: Arc<ConnShared>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.bytes_read();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One request in flight on a connection, until its response body ends or
/// is dropped.
struct InFlight(Arc<ConnShared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let shared = &self.0;
        shared
            .idle_since_ms
            .store(ms_since(shared.epoch), Ordering::Release);
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections, oldest first, and the cap on their number.
struct Registry {
    conns: Mutex<BTreeMap<u64, Arc<ConnShared>>>,
    max: usize,
    next_id: AtomicU64,
    epoch: Instant,
}

enum Admission {
    /// Admitted, possibly after evicting the oldest idle connection.
    Admitted {
        id: u64,
        shared: Arc<ConnShared>,
        evicted: bool,
    },
    /// Full and every connection is busy.
    Refused,
}

impl Registry {
    fn new(max: usize) -> Self {
        Registry {
            conns: Mutex::new(BTreeMap::new()),
            max: max.max(1),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn admit(&self) -> Admission {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = false;
        if conns.len() >= self.max {
            // A request that starts on the evicted connection at this very
            // instant is lost with it, as with any keep-alive close race.
            let victim = conns.iter().find(|(_, c)| c.is_idle()).map(|(id, _)| *id);
            match victim.and_then(|id| conns.remove(&id)) {
                Some(old) => {
                    old.evict.notify_one();
                    evicted = true;
                }
                None => return Admission::Refused,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ConnShared::new(self.epoch));
        conns.insert(id, Arc::clone(&shared));
        Admission::Admitted {
            id,
            shared,
            evicted,
        }
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The axum app as a hyper service that counts requests in flight on its
/// connection (until the response body is finished or dropped).
#[derive(Clone)]
struct Tracked {
    app: Router,
    conn: Arc<ConnShared>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = self.conn.begin();
        let response = tower::ServiceExt::oneshot(self.app.clone(), req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its request counted as in flight.
struct TrackedBody {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets every connection finish its requests (idle ones close
/// at once) and returns when all are closed. Accepts here; each connection
/// runs on one of `workers` (see [`crate::workers`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: FrontDoorLimits,
    workers: &ConnectionWorkers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    // The header timeout is ours (`drive`); hyper's would also cut idle
    // keep-alive connections (see the module doc), so it has no timer.
    builder.header_read_timeout(None).keep_alive(true);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        let (tcp, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE/ENFILE and friends: the error is per attempt;
                    // pause instead of spinning on it.
                    metrics::counter!("warden_http_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let (id, shared) = match registry.admit() {
            Admission::Admitted {
                id,
                shared,
                evicted,
            } => {
                if evicted {
                    metrics::counter!("warden_http_connections_closed_total", "reason" => "evicted")
                        .increment(1);
                }
                (id, shared)
            }
            Admission::Refused => {
                metrics::counter!("warden_http_connections_refused_total").increment(1);
                drop(tcp);
                continue;
            }
        };
        metrics::gauge!("warden_http_connections_open").set(registry.len() as f64);
        // TCP_NODELAY: an SSE reply is several small writes; with Nagle the
        // last one waits for the client's delayed ACK (~40 ms per call).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = Tracked {
            app: app.clone(),
            conn: Arc::clone(&shared),
        };
        let builder = Arc::clone(&builder);
        let registry = Arc::clone(&registry);
        let stop = stop_rx.clone();
        // The socket moves to its worker's reactor: out of this runtime's
        // here, into the worker's on its own thread.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand the connection to a worker");
                registry.remove(id);
                continue;
            }
        };
        workers.spawn_connection(&mut tasks, async move {
            match tokio::net::TcpStream::from_std(tcp) {
                Ok(tcp) => {
                    let io = Watched {
                        tcp,
                        conn: Arc::clone(&shared),
                    };
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    drive(conn, &shared, limits, stop).await;
                }
                Err(e) => tracing::debug!(error = %e, "connection not registered on its worker"),
            }
            registry.remove(id);
            metrics::gauge!("warden_http_connections_open").set(registry.len() as f64);
        });
    }

    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Runs one connection until it ends, is evicted, times out (header or
/// idle), or (after shutdown) finishes its last request.
async fn drive(
    conn: http1::Connection<TokioIo<Watched>, Tracked>,
    shared: &ConnShared,
    limits: FrontDoorLimits,
    mut stop: watch::Receiver<bool>,
) {
    let (header_timeout, idle_timeout) = (limits.header_read_timeout, limits.idle_timeout);
    tokio::pin!(conn);
    let first = shared
        .deadline(header_timeout, idle_timeout)
        .map_or_else(Instant::now, |(at, _)| at);
    let timer = tokio::time::sleep_until(first.into());
    tokio::pin!(timer);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = shared.evict.notified() => return,
            () = shared.head_started.notified() => {
                if let Some((at, _)) = shared.deadline(header_timeout, idle_timeout) {
                    timer.as_mut().reset(at.into());
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                match shared.deadline(header_timeout, idle_timeout) {
                    Some((at, why)) if now >= at => {
                        // Nothing in flight: closing loses no response.
                        let reason = match why {
                            Expiry::HeaderTimeout => "header_timeout",
                            Expiry::IdleTimeout => "idle_timeout",
                        };
                        metrics::counter!("warden_http_connections_closed_total", "reason" => reason)
                            .increment(1);
                        return;
                    }
                    Some((at, _)) => timer.as_mut().reset(at.into()),
                    // Busy: once idle again, neither clock can run out
                    // sooner than the shorter timeout from now.
                    None => timer
                        .as_mut()
                        .reset((now + header_timeout.min(idle_timeout)).into()),
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_err() || *stop.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(a: Admission) -> (u64, Arc<ConnShared>, bool) {
        match a {
            Admission::Admitted {
                id,
                shared,
                evicted,
            } => (id, shared, evicted),
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn a_full_registry_evicts_the_oldest_idle_connection_and_refuses_when_all_are_busy() {
        let reg = Registry::new(3);
        let (a, conn_a, _) = admitted(reg.admit());
        let (_b, conn_b, _) = admitted(reg.admit());
        let (_c, conn_c, _) = admitted(reg.admit());
        // `a` is busy (an SSE stream, say): the oldest idle one, `b`, goes.
        let busy_a = conn_a.begin();
        let (_d, conn_d, evicted) = admitted(reg.admit());
        assert!(evicted);
        assert_eq!(reg.len(), 3);
        assert!(reg.conns.lock().unwrap().contains_key(&a));
        // Everyone busy: refused.
        let busy_c = conn_c.begin();
        let busy_d = conn_d.begin();
        assert!(matches!(reg.admit(), Admission::Refused));
        // A finished response makes its connection evictable again.
        drop(busy_d);
        let (_e, _, evicted) = admitted(reg.admit());
        assert!(evicted);
        assert!(!reg
            .conns
            .lock()
            .unwrap()
            .values()
            .any(|c| Arc::ptr_eq(c, &conn_d)));
        assert!(!reg
            .conns
            .lock()
            .unwrap()
            .values()
            .any(|c| Arc::ptr_eq(c, &conn_b)));
        drop((busy_a, busy_c));
    }

    #[test]
    fn the_header_clock_runs_only_while_a_head_arrives_with_nothing_in_flight() {
        let (h, i) = (Duration::from_secs(10), Duration::from_secs(60));
        let shared = Arc::new(ConnShared::new(Instant::now()));
        assert_eq!(shared.deadline(h, i).unwrap().1, Expiry::IdleTimeout);
        shared.bytes_read();
        let (at, why) = shared.deadline(h, i).unwrap();
        assert_eq!(why, Expiry::HeaderTimeout);
        assert!(at <= Instant::now() + h);
        let guard = shared.begin();
        assert!(shared.deadline(h, i).is_none());
        // Body bytes of the request in flight start no header clock.
        shared.bytes_read();
        drop(guard);
        assert_eq!(shared.deadline(h, i).unwrap().1, Expiry::IdleTimeout);
    }

    #[test]
    fn in_flight_counts_until_the_guard_drops() {
        let shared = Arc::new(ConnShared::new(Instant::now()));
        assert!(shared.is_idle());
        let g1 = shared.begin();
        let g2 = shared.begin();
        drop(g1);
        assert!(!shared.is_idle());
        drop(g2);
        assert!(shared.is_idle());
    }
}
