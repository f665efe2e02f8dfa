//! A real admin API over HTTP: a real store (SQLite file or PostgreSQL
//! server), the real router on a loopback listener, a real HTTP client.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use warden_admin::AdminState;
use warden_policy::ServerId;
use warden_store::{Secret, Store, StoreOptions, UpstreamPolicy};
use warden_testkit::{TempPostgres, TempSqlite};

pub const PLATFORM_TOKEN: &str = "platform-admin-token-for-tests";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps the database alive as long as the harness.
pub enum Db {
    Sqlite(TempSqlite),
    Postgres(TempPostgres),
}

/// Tool catalogs the tests fill in once servers exist.
#[derive(Default)]
pub struct TestCatalog(RwLock<HashMap<ServerId, HashSet<String>>>);

impl TestCatalog {
    pub fn set(&self, server: ServerId, tools: &[&str]) {
        let tools = tools.iter().map(|t| t.to_string()).collect();
        self.0.write().unwrap().insert(server, tools);
    }
}

impl warden_policy::Catalog for TestCatalog {
    fn contains(&self, server: ServerId, tool: &str) -> bool {
        self.0
            .read()
            .unwrap()
            .get(&server)
            .is_some_and(|t| t.contains(tool))
    }

    fn tool_names(&self, server: ServerId) -> Option<Vec<String>> {
        self.0
            .read()
            .unwrap()
            .get(&server)
            .map(|t| t.iter().cloned().collect())
    }
}

pub struct Harness {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub state: AdminState,
    pub catalog: Arc<TestCatalog>,
    _db: Db,
    _server: tokio::task::JoinHandle<()>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    pub fn revision(&self) -> u64 {
        self.body["revision"]
            .as_u64()
            .unwrap_or_else(|| panic!("no revision in {}", self.body))
    }
}

impl Harness {
    pub async fn start(backend: Backend) -> Harness {
        Self::start_with_policy(backend, UpstreamPolicy::default()).await
    }

    /// A harness whose admin API keeps to `policy` (egress, stdio commands).
    pub async fn start_with_policy(backend: Backend, policy: UpstreamPolicy) -> Harness {
        let db = match backend {
            Backend::Sqlite => Db::Sqlite(TempSqlite::new()),
            Backend::Postgres => Db::Postgres(TempPostgres::start().await),
        };
        let url = match &db {
            Db::Sqlite(d) => d.url().to_owned(),
            Db::Postgres(d) => d.url().to_owned(),
        };
        let store = Store::open(&url, StoreOptions::new([7u8; 32]))
            .await
            .unwrap();
        store
            .ensure_admin_token("bootstrap", "platform", None, &Secret::new(PLATFORM_TOKEN))
            .await
            .unwrap();
        let catalog = Arc::new(TestCatalog::default());
        let state = AdminState::with_upstream_policy(store.clone(), catalog.clone(), policy);
        let app = warden_admin::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Harness {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            store,
            state,
            catalog,
            _db: db,
            _server: server,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends raw bytes with a content type (for malformed-input tests).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(PLATFORM_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The database URL of this harness's store.
    pub fn store_url(&self) -> String {
        match &self._db {
            Db::Sqlite(d) => d.url().to_owned(),
            Db::Postgres(d) => d.url().to_owned(),
        }
    }

    /// The id of a server, from the live snapshot.
    pub fn server_id(&self, org: Option<&str>, slug: &str) -> ServerId {
        let snapshot = self.store.live().snapshot();
        match org {
            None => {
                snapshot
                    .servers()
                    .find(|s| s.owner_org.is_none() && s.slug == slug)
                    .unwrap()
                    .id
            }
            Some(org) => {
                let org = snapshot.org_by_slug(org).unwrap().id;
                snapshot.server_for_org(org, slug).unwrap().id
            }
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(PLATFORM_TOKEN), None)
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(PLATFORM_TOKEN), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(PLATFORM_TOKEN), Some(body))
            .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(PLATFORM_TOKEN), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(PLATFORM_TOKEN), None)
            .await
    }

    /// Asserts success and returns the body.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let reply = self
            .send(method.clone(), path, Some(PLATFORM_TOKEN), body)
            .await;
        assert!(
            reply.status.is_success(),
            "{method} {path} -> {}: {}",
            reply.status,
            reply.body
        );
        reply.body
    }
}

/// Asserts an error reply: status, stable code and the JSON error shape.
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.body);
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "body: {}", reply.body);
    assert!(error["message"].is_string(), "body: {}", reply.body);
    assert!(error.get("details").is_some(), "body: {}", reply.body);
}
