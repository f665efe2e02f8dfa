//! The HTTP side of the CLI: bearer auth, JSON in and out, API errors
//! turned into [`WardenError::Api`] with the server's stable code.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::WardenError;

/// Percent-encodes one path segment (slugs are safe; end-user external ids
/// may hold `@`, `/` or spaces).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    pub fn new(url: &str, token: &str) -> Result<Self, WardenError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|source| WardenError::Connect {
                url: url.to_owned(),
                source,
            })?;
        Ok(AdminClient {
            http,
            base: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, WardenError> {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn get_query(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, WardenError> {
        self.send(Method::GET, path, query, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, WardenError> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, WardenError> {
        self.send(Method::PUT, path, &[], Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, WardenError> {
        self.send(Method::PATCH, path, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, WardenError> {
        self.send(Method::DELETE, path, &[], None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, WardenError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            req = req.json(body);
        }
        let connect = |source| WardenError::Connect {
            url: self.base.clone(),
            source,
        };
        let resp = req.send().await.map_err(connect)?;
        let status = resp.status();
        let text = resp.text().await.map_err(connect)?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| {
                WardenError::BadResponse(format!("{status}: not JSON ({e}): {}", truncate(&text)))
            })?
        };
        if status.is_success() {
            Ok(value)
        } else {
            Err(api_error(status, &value, &text))
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

fn api_error(status: StatusCode, value: &Value, text: &str) -> WardenError {
    let error = value.get("error");
    let field = |name: &str| error.and_then(|e| e.get(name));
    let details = match field("details") {
        None | Some(Value::Null) => String::new(),
        Some(d) => format!("\n{}", serde_json::to_string_pretty(d).unwrap_or_default()),
    };
    WardenError::Api {
        status: status.as_u16(),
        code: field("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        message: field("message")
            .and_then(Value::as_str)
            .map_or_else(|| truncate(text), str::to_owned),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("github"), "github");
        assert_eq!(seg("a@b.com"), "a%40b.com");
        assert_eq!(seg("x/y z"), "x%2Fy%20z");
    }
}
