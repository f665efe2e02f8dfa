//! The HTTP client under an upstream link. A plain-`http` upstream (the
//! usual sidecar or in-cluster server) is spoken to over hyper's bare
//! HTTP/1.1 connections kept in a small pool of its own: no redirect
//! machinery, no `Url` round trips, no retry layer and no channel hop to a
//! pool task per request. `https` upstreams, and plain ones that an
//! operator's proxy environment variables route through a proxy, go
//! through reqwest (rustls, proxies).
//!
//! Both keep the same rules: redirects are never followed (a 3xx is an
//! upstream error), connecting is bounded by the connect timeout, and for
//! an upstream whose URL an org admin set, every connection goes only to
//! addresses the egress policy allows, checked on the resolved address
//! (so a name rebound to an internal address is refused) and never via a
//! proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use reqwest::{Method, StatusCode};
use warden_store::UpstreamPolicy;

/// Idle connections kept per upstream; more are opened under load and
/// closed when they come back to a full pool.
const MAX_IDLE: usize = 64;

/// Why a request got no response.
#[derive(Debug)]
pub(crate) struct SendError {
    /// No connection could be made (the upstream is down, or the egress
    /// policy refused every address).
    pub connect: bool,
    pub detail: String,
}

/// One client per upstream, shared by its caller links.
#[derive(Clone)]
pub(crate) enum HttpClient {
    Plain(Arc<Http1Pool>),
    Reqwest(reqwest::Client),
}

/// The settings a client is built from.
pub(crate) struct ClientConfig {
    pub connect_timeout: Duration,
    /// The egress policy every connection is checked against (an upstream
    /// whose URL an org admin set), or none (a platform admin's).
    pub egress: Option<Arc<UpstreamPolicy>>,
}

impl HttpClient {
    /// The client for `url`: hyper's own for plain `http` (unless a proxy
    /// is configured for it and the upstream is not egress-restricted),
    /// reqwest otherwise.
    pub fn new(url: Option<&reqwest::Url>, config: ClientConfig) -> Result<Self, String> {
        if let Some(target) = url.and_then(PlainTarget::of) {
            if config.egress.is_some() || !proxy_configured() {
                return Ok(HttpClient::Plain(Arc::new(Http1Pool {
                    target,
                    connect_timeout: config.connect_timeout,
                    egress: config.egress,
                    idle: Mutex::new(Vec::new()),
                })));
            }
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(MAX_IDLE)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(policy) = config.egress {
            builder = builder
                .no_proxy()
                .dns_resolver(Arc::new(EgressResolver { policy }));
        }
        builder
            .build()
            .map(HttpClient::Reqwest)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }

    /// A request to `url` (`None`: the upstream's URL is invalid, and
    /// sending says so).
    pub fn request(&self, method: Method, url: Option<&reqwest::Url>) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            url: url.cloned(),
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
        }
    }
}

/// Whether the environment names a proxy for plain HTTP (reqwest's rules).
fn proxy_configured() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// A request being put together, as with reqwest's builder.
pub(crate) struct RequestBuilder {
    client: HttpClient,
    method: Method,
    url: Option<reqwest::Url>,
    headers: HeaderMap,
    body: Option<Bytes>,
    timeout: Option<Duration>,
}

impl RequestBuilder {
    /// Adds a header; a name or value that is not valid HTTP is left out
    /// (Warden's own names and values always are; callers' values are
    /// checked where they come in).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(name, value);
        }
        self
    }

    /// Sets `headers` over those already there (same names replaced).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        let mut last = None;
        for (name, value) in headers {
            match name {
                Some(name) => {
                    self.headers.insert(name.clone(), value);
                    last = Some(name);
                }
                None => {
                    if let Some(name) = &last {
                        self.headers.append(name.clone(), value);
                    }
                }
            }
        }
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(Bytes::from(body));
        self
    }

    /// Bounds the whole request (until the response's head).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub async fn send(self) -> Result<Response, SendError> {
        match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, self.send_now()).await {
                Ok(result) => result,
                Err(_) => Err(SendError {
                    connect: false,
                    detail: "the request timed out".to_owned(),
                }),
            },
            None => self.send_now().await,
        }
    }

    async fn send_now(self) -> Result<Response, SendError> {
        let Some(url) = self.url else {
            return Err(SendError {
                connect: true,
                detail: "the upstream URL is invalid".to_owned(),
            });
        };
        match &self.client {
            HttpClient::Reqwest(client) => {
                let mut request = client.request(self.method, url).headers(self.headers);
                if let Some(body) = self.body {
                    request = request.body(body);
                }
                match request.send().await {
                    Ok(resp) => Ok(Response {
                        status: resp.status(),
                        headers: resp.headers().clone(),
                        body: ResponseBody::Reqwest(resp),
                    }),
                    Err(e) => Err(SendError {
                        connect: e.is_connect(),
                        detail: e.without_url().to_string(),
                    }),
                }
            }
            HttpClient::Plain(pool) => {
                let pool = Arc::clone(pool);
                pool.send(self.method, &url, self.headers, self.body).await
            }
        }
    }
}

/// An upstream's answer: status and headers, the body read by `chunk`.
pub(crate) struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
}

enum ResponseBody {
    Reqwest(reqwest::Response),
    Plain(PooledBody),
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body's length, when the upstream declared it.
    pub fn content_length(&self) -> Option<u64> {
        match &self.body {
            ResponseBody::Reqwest(r) => r.content_length(),
            ResponseBody::Plain(b) => b.inner.as_ref()?.size_hint().exact(),
        }
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match &mut self.body {
            ResponseBody::Reqwest(r) => r.chunk().await.map_err(|e| e.without_url().to_string()),
            ResponseBody::Plain(body) => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                return Ok(Some(data));
                            }
                        }
                    }
                }
            },
        }
    }
}

/// Where a plain-`http` upstream lives.
struct PlainTarget {
    host: String,
    port: u16,
    /// The `Host` header.
    authority: HeaderValue,
}

impl PlainTarget {
    fn of(url: &reqwest::Url) -> Option<Self> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => HeaderValue::from_str(&format!("{host}:{port}")).ok()?,
            None => HeaderValue::from_str(host).ok()?,
        };
        // `Url` keeps IPv6 literals bracketed; the resolver wants them bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some(PlainTarget {
            host,
            port,
            authority,
        })
    }
}

/// Keep-alive HTTP/1.1 connections to one plain-`http` upstream.
pub(crate) struct Http1Pool {
    target: PlainTarget,
    connect_timeout: Duration,
    egress: Option<Arc<UpstreamPolicy>>,
    idle: Mutex<Vec<Pooled>>,
}

/// A connection's request handle and the thread its connection task runs
/// on.
struct Pooled {
    sender: SendRequest<Full<Bytes>>,
    task_thread: ThreadId,
}

impl Http1Pool {
    async fn send(
        self: Arc<Self>,
        method: Method,
        url: &reqwest::Url,
        mut headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, SendError> {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        headers.insert(HOST, self.target.authority.clone());
        let Pooled {
            mut sender,
            task_thread,
        } = self.checkout().await?;
        let mut request = hyper::Request::new(Full::new(body.unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().map_err(|e| SendError {
            connect: false,
            detail: format!("invalid request path: {e}"),
        })?;
        *request.headers_mut() = headers;
        let resp = sender.send_request(request).await.map_err(|e| SendError {
            connect: false,
            detail: format!("error sending request: {e}"),
        })?;
        let (head, inner) = resp.into_parts();
        Ok(Response {
            status: head.status,
            headers: head.headers,
            body: ResponseBody::Plain(PooledBody {
                inner: Some(inner),
                sender: Some(Pooled {
                    sender,
                    task_thread,
                }),
                pool: Arc::downgrade(&self),
            }),
        })
    }

    /// An idle connection that is still open, or a new one. On a
    /// single-threaded runtime (a connection worker, one per core) only a
    /// connection whose task runs on this thread is taken, so that a call
    /// and its connection wake each other without waking another thread;
    /// elsewhere one from this thread comes first, then any.
    async fn checkout(&self) -> Result<Pooled, SendError> {
        let here = std::thread::current().id();
        let this_thread_only = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        loop {
            let idle = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                match idle.iter().rposition(|p| p.task_thread == here) {
                    Some(i) => Some(idle.swap_remove(i)),
                    None if this_thread_only => None,
                    None => idle.pop(),
                }
            };
            let Some(mut pooled) = idle else { break };
            // A connection the upstream closed while idle fails here at
            // once; one handed back at the end of its last body is ready
            // as soon as its task has seen that.
            if pooled.sender.ready().await.is_ok() {
                return Ok(pooled);
            }
        }
        match tokio::time::timeout(self.connect_timeout, self.connect()).await {
            Ok(result) => result,
            Err(_) => Err(SendError {
                connect: true,
                detail: "connecting timed out".to_owned(),
            }),
        }
    }

    async fn connect(&self) -> Result<Pooled, SendError> {
        let connect_error = |detail: String| SendError {
            connect: true,
            detail,
        };
        let host = self.target.host.as_str();
        let addrs = tokio::net::lookup_host((host, self.target.port))
            .await
            .map_err(|e| connect_error(format!("cannot resolve {host:?}: {e}")))?;
        let addrs = match &self.egress {
            Some(policy) => allowed_addrs(policy, host, addrs.collect())
                .map_err(|e| connect_error(e.to_string()))?,
            None => addrs.collect(),
        };
        let mut last = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let (sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .map_err(|e| connect_error(format!("HTTP handshake failed: {e}")))?;
                    // On this thread's runtime (a connection worker's).
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "upstream connection ended");
                        }
                    });
                    return Ok(Pooled {
                        sender,
                        task_thread: std::thread::current().id(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(connect_error(match last {
            Some(e) => format!("error trying to connect: {e}"),
            None => format!("no address for {host:?}"),
        }))
    }

    fn check_in(&self, pooled: Pooled) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(pooled);
        }
    }
}

/// The addresses of `host` the egress policy allows: all of them for a
/// host the platform allowed by name, otherwise those outside the
/// forbidden ranges; an error naming why when none is left.
fn allowed_addrs(
    policy: &UpstreamPolicy,
    host: &str,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, std::io::Error> {
    if policy.egress.host_allowed(host) {
        return Ok(addrs);
    }
    let mut refusal = None;
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match policy.egress.check_ip(a.ip()) {
            Ok(()) => true,
            Err(why) => {
                refusal.get_or_insert(why);
                false
            }
        })
        .collect();
    if allowed.is_empty() {
        let why = refusal.map_or_else(|| "no addresses".to_owned(), |r| r.to_string());
        return Err(std::io::Error::other(format!(
            "egress refused for {host:?}: {why}"
        )));
    }
    Ok(allowed)
}

/// A response body that hands its connection back to the pool once read to
/// the end; dropped before that, the connection is closed with it.
struct PooledBody {
    inner: Option<Incoming>,
    sender: Option<Pooled>,
    pool: Weak<Http1Pool>,
}

impl PooledBody {
    async fn frame(&mut self) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        let inner = self.inner.as_mut()?;
        let next = inner.frame().await;
        if next.is_none() {
            self.release();
        }
        next
    }

    fn release(&mut self) {
        self.inner = None;
        if let (Some(sender), Some(pool)) = (self.sender.take(), self.pool.upgrade()) {
            pool.check_in(sender);
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left (a 202, or one read to its last byte)
        // leaves its connection reusable.
        if self.inner.as_ref().is_some_and(Body::is_end_stream) {
            self.release();
        }
    }
}

/// DNS for reqwest, for an egress-restricted upstream reached over TLS:
/// only the addresses the policy allows, on every connection.
struct EgressResolver {
    policy: Arc<UpstreamPolicy>,
}

impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allowed_addrs(&policy, &host, addrs)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback HTTP/1.1 server answering `ok` to every request on a
    /// connection, counting the connections it accepted.
    async fn counting_server() -> (reqwest::Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        let Ok(n) = conn.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if conn.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let url = reqwest::Url::parse(&format!("http://{addr}/mcp")).unwrap();
        (url, accepted)
    }

    fn plain_client(url: &reqwest::Url, egress: Option<Arc<UpstreamPolicy>>) -> HttpClient {
        let config = ClientConfig {
            connect_timeout: Duration::from_secs(2),
            egress,
        };
        let client = HttpClient::new(Some(url), config).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(client, HttpClient::Plain(_)));
        client
    }

    async fn get(client: &HttpClient, url: &reqwest::Url) -> Response {
        client.request(Method::GET, Some(url)).send().await.unwrap()
    }

    async fn read_all(mut resp: Response) -> Vec<u8> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
        }
        body
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_reused() {
        let (url, accepted) = counting_server().await;
        let client = plain_client(&url, None);
        for _ in 0..3 {
            let resp = get(&client, &url).await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.content_length(), Some(2));
            assert_eq!(read_all(resp).await, b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn on_single_threaded_runtimes_each_thread_keeps_its_own_connections() {
        let (url, accepted) = counting_server().await;
        let client = Arc::new(plain_client(&url, None));
        assert_eq!(read_all(get(&client, &url).await).await, b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Another thread with a runtime of its own (as a connection worker
        // has) does not take this thread's idle connection: it opens one,
        // then reuses it.
        let (done, finished) = tokio::sync::oneshot::channel();
        let (other_client, other_url) = (Arc::clone(&client), url.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                for _ in 0..2 {
                    let body = read_all(get(&other_client, &other_url).await).await;
                    assert_eq!(body, b"ok");
                }
            });
            let _ = done.send(());
        });
        finished.await.expect("the other thread's calls failed");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // And this thread still uses its own.
        assert_eq!(read_all(get(&client, &url).await).await, b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (url, accepted) = counting_server().await;
        let client = plain_client(&url, None);
        let resp = get(&client, &url).await;
        drop(resp);
        let resp = get(&client, &url).await;
        assert_eq!(read_all(resp).await, b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_restricted_upstream_never_connects_to_a_forbidden_address() {
        let (url, accepted) = counting_server().await;
        // `localhost` resolves to loopback, which the default policy forbids.
        let url = reqwest::Url::parse(&format!(
            "http://localhost:{}/mcp",
            url.port().unwrap_or_default()
        ))
        .unwrap();
        let client = plain_client(&url, Some(Arc::new(UpstreamPolicy::default())));
        let Err(e) = client.request(Method::GET, Some(&url)).send().await else {
            panic!("a forbidden address was reached");
        };
        assert!(e.connect);
        assert!(e.detail.contains("egress refused"), "{}", e.detail);
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn https_and_userinfo_urls_go_through_reqwest() {
        for url in ["https://example.com/mcp", "http://u:p@example.com/mcp"] {
            let url = reqwest::Url::parse(url).unwrap();
            let config = ClientConfig {
                connect_timeout: Duration::from_secs(1),
                egress: None,
            };
            let client = HttpClient::new(Some(&url), config).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(client, HttpClient::Reqwest(_)), "{url}");
        }
    }
}
