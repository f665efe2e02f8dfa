//! A small client of Warden's admin REST API (`/admin/v1`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::error::{BenchError, Result};

#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// How long a write waits before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The default: live on the replica that took the write.
    Local,
    /// `?wait=propagated`: applied by every live replica.
    Propagated,
}

/// A timed write: when it was sent and when its whole response had arrived.
#[derive(Debug, Clone)]
pub struct Timed {
    pub sent: Instant,
    pub answered: Instant,
    pub body: Value,
}

impl Admin {
    pub fn new(warden_base: &str, token: &str) -> Result<Admin> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Admin {
            http,
            base: format!("{warden_base}/admin/v1"),
            token: token.to_owned(),
        })
    }

    /// One request; any status but 200/201 is an error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Timed> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let sent = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let answered = Instant::now();
        if !(status == reqwest::StatusCode::OK || status == reqwest::StatusCode::CREATED) {
            return Err(BenchError::Admin {
                method: method.to_string(),
                path: path.to_owned(),
                status: status.as_u16(),
                body: text,
            });
        }
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        };
        Ok(Timed {
            sent,
            answered,
            body,
        })
    }

    pub async fn create_org(&self, slug: &str) -> Result<()> {
        self.send(Method::POST, "/orgs", &[], Some(json!({ "slug": slug })))
            .await?;
        Ok(())
    }

    /// A global server over Streamable HTTP.
    pub async fn create_http_server(&self, slug: &str, url: &str) -> Result<()> {
        let body = json!({ "slug": slug, "transport": { "type": "http", "url": url } });
        self.send(Method::POST, "/servers", &[], Some(body)).await?;
        Ok(())
    }

    /// Grants every tool of `server` to `org`.
    pub async fn grant_all(&self, org: &str, server: &str) -> Result<()> {
        let path = format!("/orgs/{org}/grants/{server}");
        let body = json!({ "enabled": true, "filter": "*" });
        self.send(Method::PUT, &path, &[], Some(body)).await?;
        Ok(())
    }

    /// A new key of `org`; returns its bearer secret.
    pub async fn create_key(&self, org: &str, name: &str) -> Result<String> {
        let path = format!("/orgs/{org}/keys");
        let created = self
            .send(Method::POST, &path, &[], Some(json!({ "name": name })))
            .await?;
        created
            .body
            .get("secret")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| BenchError::Reply {
                what: format!("POST {path}"),
                detail: "no secret in the answer".into(),
            })
    }

    /// Switches the org grant on or off (the org's own switch for a server).
    pub async fn set_grant_enabled(
        &self,
        org: &str,
        server: &str,
        enabled: bool,
        wait: WaitFor,
    ) -> Result<Timed> {
        let path = format!("/orgs/{org}/grants/{server}");
        let query: &[(&str, &str)] = match wait {
            WaitFor::Local => &[],
            WaitFor::Propagated => &[("wait", "propagated")],
        };
        self.send(
            Method::PATCH,
            &path,
            query,
            Some(json!({ "enabled": enabled })),
        )
        .await
    }

    /// `GET /replicas`: the items whose heartbeat is recent.
    pub async fn live_replicas(&self) -> Result<usize> {
        let listed = self.send(Method::GET, "/replicas", &[], None).await?;
        Ok(listed
            .body
            .get("items")
            .and_then(Value::as_array)
            .map_or(0, |items| {
                items
                    .iter()
                    .filter(|r| r.get("live") == Some(&Value::Bool(true)))
                    .count()
            }))
    }
}
