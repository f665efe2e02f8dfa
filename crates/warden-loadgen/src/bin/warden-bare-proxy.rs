//! `warden-bare-proxy`: the floor of Warden's own stack, for the data-plane
//! benchmark only. It forwards every POST body to one upstream and its
//! answer back, on the same pieces Warden's data plane runs on (hyper's
//! HTTP/1.1 server and client connections, one single-threaded tokio
//! runtime per core, the accept loop handing each connection to the least
//! loaded worker, a per-worker pool of idle upstream connections) and
//! nothing else: no admission, no decision, no audit, no JSON unless
//! `--json` asks for one parse and one re-serialization of each body.
//!
//! `scripts/bench-gateway.sh` (`REFERENCE=bare`) runs it next to Warden
//! and the direct calls: what Warden costs above it is Warden's own work
//! per call; what it costs above the direct call is the stack's.
//!
//! ```text
//! warden-bare-proxy --listen 127.0.0.1:0 --upstream 127.0.0.1:8080 [--json]
//! ```
//! Prints `LISTENING <port>` once it accepts.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(
    name = "warden-bare-proxy",
    about = "A bare hyper proxy: the floor of Warden's stack (benchmarks only)"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The upstream's address (host:port); every request goes to its `/mcp`.
    #[arg(long)]
    upstream: SocketAddr,
    /// Parse each request and response body as JSON and serialize it again.
    #[arg(long)]
    json: bool,
    /// Worker threads; 0: one per CPU.
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

#[derive(Clone, Copy)]
struct Target {
    upstream: SocketAddr,
    json: bool,
}

thread_local! {
    /// This worker's idle upstream connections.
    static IDLE: RefCell<Vec<SendRequest<Full<Bytes>>>> = const { RefCell::new(Vec::new()) };
}

fn main() -> ExitCode {
    let args = Args::parse();
    let count = match args.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let target = Target {
        upstream: args.upstream,
        json: args.json,
    };
    let mut workers = Vec::with_capacity(count);
    for i in 0..count {
        let Some(runtime) = single_threaded_runtime() else {
            return ExitCode::FAILURE;
        };
        let handle = runtime.handle().clone();
        let spawned = std::thread::Builder::new()
            .name(format!("bare-conn-{i}"))
            .spawn(move || runtime.block_on(std::future::pending::<()>()));
        if let Err(e) = spawned {
            eprintln!("warden-bare-proxy: {e}");
            return ExitCode::FAILURE;
        }
        workers.push((handle, Arc::new(AtomicUsize::new(0))));
    }
    let Some(main) = single_threaded_runtime() else {
        return ExitCode::FAILURE;
    };
    main.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("warden-bare-proxy: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("LISTENING {}", addr.port()),
            Err(e) => {
                eprintln!("warden-bare-proxy: {e}");
                return ExitCode::FAILURE;
            }
        }
        loop {
            let tcp = tokio::select! {
                _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => continue,
                },
            };
            let _ = tcp.set_nodelay(true);
            let Ok(tcp) = tcp.into_std() else { continue };
            let Some((handle, open)) = workers
                .iter()
                .min_by_key(|(_, open)| open.load(Ordering::Acquire))
            else {
                return ExitCode::FAILURE;
            };
            let open = Arc::clone(open);
            open.fetch_add(1, Ordering::AcqRel);
            handle.spawn(async move {
                if let Ok(tcp) = TcpStream::from_std(tcp) {
                    let service = hyper::service::service_fn(move |req| forward(target, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                }
                open.fetch_sub(1, Ordering::AcqRel);
            });
        }
    })
}

/// A single-threaded runtime (each worker's, and the accept loop's), or
/// why not on stderr.
fn single_threaded_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("warden-bare-proxy: {e}");
            None
        }
    }
}

async fn forward(
    target: Target,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match exchange(target, req).await {
        Ok(resp) => resp,
        Err(why) => {
            let mut resp = Response::new(Full::new(Bytes::from(why)));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp
        }
    })
}

async fn exchange(target: Target, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    let (parts, body) = req.into_parts();
    let mut body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    if target.json {
        body = reserialize(&body)?;
    }
    let mut upstream_req = Request::builder()
        .method(parts.method)
        .uri("/mcp")
        .header(HOST, target.upstream.to_string());
    for name in [
        "accept",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
    ] {
        if let Some(v) = parts.headers.get(name) {
            upstream_req = upstream_req.header(name, v);
        }
    }
    let upstream_req = upstream_req
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let mut sender = match IDLE.with(|idle| idle.borrow_mut().pop()) {
        Some(sender) => sender,
        None => connect(target.upstream).await?,
    };
    let resp = sender
        .send_request(upstream_req)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let mut body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !sender.is_closed() {
        IDLE.with(|idle| idle.borrow_mut().push(sender));
    }
    let is_json = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if target.json && is_json {
        body = reserialize(&body)?;
    }
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = parts.status;
    for name in ["content-type", "mcp-session-id"] {
        if let Some(v) = parts.headers.get(name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    Ok(resp)
}

fn reserialize(body: &[u8]) -> Result<Bytes, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

async fn connect(upstream: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    // The connection's own task on this worker: reads and writes happen
    // there, as with Warden's pool.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
