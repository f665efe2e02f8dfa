//! `warden limit list|set|delete`: an org's quotas and rate limits over
//! `/admin/v1/orgs/{org}/limits`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::AdminClient;
use super::{body_of, org_path, Output};
use crate::error::WardenError;

#[derive(Debug, Clone, Subcommand)]
pub enum LimitCommand {
    /// List the org's limits.
    List {
        /// The org (slug).
        org: String,
    },
    /// Create the limit of a holder on a target, or change the one it has
    /// (a limit is identified by holder, server and tool).
    Set(LimitSetArgs),
    /// Delete a limit by id.
    Delete {
        /// The org (slug).
        org: String,
        /// The limit's id (`warden limit list`).
        id: i64,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LimitSetArgs {
    /// The org (slug).
    pub org: String,
    /// Hold for this team (by slug). Without a holder: the whole org.
    #[arg(long, conflicts_with_all = ["key", "end_user", "agent"])]
    pub team: Option<String>,
    /// Hold for this key (by id).
    #[arg(long, conflicts_with_all = ["end_user", "agent"])]
    pub key: Option<i64>,
    /// Hold for this end user (by external id).
    #[arg(long = "end-user", conflicts_with = "agent")]
    pub end_user: Option<String>,
    /// Hold for this agent (by slug).
    #[arg(long)]
    pub agent: Option<String>,
    /// Only calls to this server (default: all servers).
    #[arg(long)]
    pub server: Option<String>,
    /// Only calls of this tool (needs --server).
    #[arg(long, requires = "server")]
    pub tool: Option<String>,
    /// A rate: `N/minute` or `N/hour` (also `N/min`, `N/m`, `N/h`).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<(u32, &'static str)>,
    /// Calls allowed at once above the rate (default: N).
    #[arg(long, requires = "rate")]
    pub burst: Option<u32>,
    /// The most calls in flight at once.
    #[arg(long)]
    pub concurrency: Option<u32>,
}

/// `60/minute` → (60, "minute").
fn parse_rate(s: &str) -> Result<(u32, &'static str), String> {
    let (n, per) = s
        .split_once('/')
        .ok_or_else(|| format!("expected N/minute or N/hour, got {s:?}"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("not a number of requests: {n:?}"))?;
    let per = match per.trim() {
        "minute" | "min" | "m" => "minute",
        "hour" | "h" => "hour",
        other => return Err(format!("unknown period {other:?}: use minute or hour")),
    };
    Ok((n, per))
}

impl LimitSetArgs {
    fn level(&self) -> Value {
        if let Some(slug) = &self.team {
            json!({ "kind": "team", "slug": slug })
        } else if let Some(id) = self.key {
            json!({ "kind": "key", "id": id })
        } else if let Some(ext) = &self.end_user {
            json!({ "kind": "end_user", "external_id": ext })
        } else if let Some(slug) = &self.agent {
            json!({ "kind": "agent", "slug": slug })
        } else {
            json!({ "kind": "org" })
        }
    }

    fn rate(&self) -> Option<Value> {
        self.rate.map(|(requests, per)| {
            json!({ "requests": requests, "per": per, "burst": self.burst.unwrap_or(requests) })
        })
    }
}

pub(super) async fn run_limit(
    api: &AdminClient,
    out: &mut Output,
    c: LimitCommand,
) -> Result<(), WardenError> {
    match c {
        LimitCommand::List { org } => {
            let v = api.get(&org_path(&org, "/limits")).await?;
            out.list(
                &v,
                &["id", "level", "server", "tool", "rate", "concurrency"],
            );
        }
        LimitCommand::Set(a) => {
            if a.rate.is_none() && a.concurrency.is_none() {
                return Err(WardenError::BadArgument(
                    "give --rate, --concurrency or both".into(),
                ));
            }
            let level = a.level();
            let server = a.server.clone().map(Value::from).unwrap_or(Value::Null);
            let tool = a.tool.clone().map(Value::from).unwrap_or(Value::Null);
            let existing = api.get(&org_path(&a.org, "/limits")).await?;
            let same = existing
                .get("items")
                .and_then(Value::as_array)
                .and_then(|items| {
                    items.iter().find(|l| {
                        l.get("level") == Some(&level)
                            && l.get("server") == Some(&server)
                            && l.get("tool") == Some(&tool)
                    })
                })
                .and_then(|l| l.get("id"))
                .and_then(Value::as_i64);
            let v = match same {
                Some(id) => {
                    let body = body_of(&[
                        ("rate", a.rate()),
                        ("concurrency", a.concurrency.map(Value::from)),
                    ]);
                    api.patch(&org_path(&a.org, &format!("/limits/{id}")), &body)
                        .await?
                }
                None => {
                    let body = body_of(&[
                        ("level", Some(level)),
                        ("server", a.server.clone().map(Value::from)),
                        ("tool", a.tool.clone().map(Value::from)),
                        ("rate", a.rate()),
                        ("concurrency", a.concurrency.map(Value::from)),
                    ]);
                    api.post(&org_path(&a.org, "/limits"), &body).await?
                }
            };
            out.written(&v);
        }
        LimitCommand::Delete { org, id } => {
            let v = api
                .delete(&org_path(&org, &format!("/limits/{id}")))
                .await?;
            out.written(&v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("60/minute"), Ok((60, "minute")));
        assert_eq!(parse_rate("1000/h"), Ok((1000, "hour")));
        assert!(parse_rate("60").is_err());
        assert!(parse_rate("x/minute").is_err());
        assert!(parse_rate("6/day").is_err());
    }
}
