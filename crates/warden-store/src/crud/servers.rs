//! Servers: how to reach an upstream, its secret headers encrypted.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use warden_policy::{validate_slug, OrgId, ServerId};

use super::{check_name, name_or, opt_id, require_org};
use crate::db::{self, to_json, RowExt};
use crate::entities::*;
use crate::error::{constraint, Result, StoreError};
use crate::store::Store;
use crate::stored::{Decoded, Stored};
use crate::types::{Secret, Transport, UpstreamConfig};

fn check_header_name(name: &str) -> Result<()> {
    // An HTTP token (RFC 9110) so it can be sent as a header as is.
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadInput(format!(
            "secret header name {name:?} is not a valid HTTP header name"
        )))
    }
}

fn check_timeout(timeout_ms: u64) -> Result<i64> {
    match i64::try_from(timeout_ms) {
        Ok(t) if t > 0 && t <= 24 * 3600 * 1000 => Ok(t),
        _ => Err(StoreError::BadInput(
            "timeout_ms must be between 1 and 86400000".into(),
        )),
    }
}

fn check_transport(transport: &Transport) -> Result<()> {
    match transport {
        Transport::Http { url } => {
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(())
            } else {
                Err(StoreError::BadInput(format!(
                    "server URL {url:?} must be http:// or https://"
                )))
            }
        }
        Transport::Stdio { command, .. } => check_name("stdio command", command),
    }
}

impl Store {
    /// Another server that `slug` would clash with for `owner` (a global
    /// slug must be unique among all servers; an org server's among global
    /// servers and that org's), ignoring `except`.
    async fn server_slug_taken(
        conn: &mut AnyConnection,
        slug: &str,
        owner: Option<OrgId>,
        except: Option<ServerId>,
    ) -> Result<bool> {
        let rows = sqlx::query("SELECT id, owner_org FROM servers WHERE slug = $1")
            .bind(slug.to_owned())
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            if Some(ServerId(r.int("id")?)) == except {
                continue;
            }
            let other_owner = r.opt_int("owner_org")?.map(OrgId);
            if owner.is_none() || other_owner.is_none() || other_owner == owner {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn encrypt_headers(&self, headers: &BTreeMap<String, Secret>) -> Result<String> {
        let mut out = BTreeMap::new();
        for (name, value) in headers {
            check_header_name(name)?;
            out.insert(name.clone(), self.inner.cipher.encrypt(name, value)?);
        }
        to_json(&out)
    }

    pub async fn create_server(&self, actor: &str, new: NewServer) -> Result<Written<Server>> {
        validate_slug("server", &new.slug)?;
        check_transport(&new.transport)?;
        let timeout = check_timeout(new.timeout_ms)?;
        let secrets = self.encrypt_headers(&new.secret_headers)?;
        let name = name_or(new.name, &new.slug);
        let mut w = self.begin_write(actor).await?;
        if let Some(org) = new.owner_org {
            require_org(w.conn(), org).await?;
        }
        if Self::server_slug_taken(w.conn(), &new.slug, new.owner_org, None).await? {
            return Err(StoreError::Duplicate {
                kind: "server",
                name: new.slug,
            });
        }
        let revision = w.revision as i64;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO servers (slug, owner_org, name, transport, secret_headers, enabled, \
             timeout_ms, config_revision, created_at_ms, egress_restricted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(new.slug.clone())
        .bind(opt_id(new.owner_org.map(|o| o.0)))
        .bind(name)
        .bind(to_json(&new.transport)?)
        .bind(secrets)
        .bind(i64::from(new.enabled))
        .bind(timeout)
        .bind(revision)
        .bind(db::now_ms())
        .bind(i64::from(new.egress_restricted))
        .fetch_one(w.conn())
        .await
        .map_err(constraint("server", &new.slug))?;
        w.commit_written("create", ServerId(id), None).await
    }

    /// Updates a server. `secret_headers`, when given, replaces all of them.
    /// Changing how to reach it moves `config_revision` (the gateway reconnects).
    pub async fn update_server(
        &self,
        actor: &str,
        id: ServerId,
        patch: ServerPatch,
    ) -> Result<Written<Server>> {
        if let Some(slug) = &patch.slug {
            validate_slug("server", slug)?;
        }
        if let Some(t) = &patch.transport {
            check_transport(t)?;
        }
        let timeout = patch.timeout_ms.map(check_timeout).transpose()?;
        let secrets = patch
            .secret_headers
            .as_ref()
            .map(|h| self.encrypt_headers(h))
            .transpose()?;
        let mut w = self.begin_write(actor).await?;
        let before = Server::fetch_existing(w.conn(), id).await?;
        let slug = patch.slug.clone().unwrap_or_else(|| before.slug.clone());
        if slug != before.slug
            && Self::server_slug_taken(w.conn(), &slug, before.owner_org, Some(id)).await?
        {
            return Err(StoreError::Duplicate {
                kind: "server",
                name: slug,
            });
        }
        let egress_restricted = patch.egress_restricted.unwrap_or(before.egress_restricted);
        let reconnect = patch.slug.as_ref().is_some_and(|s| *s != before.slug)
            || patch
                .transport
                .as_ref()
                .is_some_and(|t| *t != before.transport)
            || secrets.is_some()
            || patch.timeout_ms.is_some_and(|t| t != before.timeout_ms)
            || egress_restricted != before.egress_restricted;
        let config_revision = if reconnect {
            w.revision
        } else {
            before.config_revision
        };
        let mut q = sqlx::query(
            "UPDATE servers SET slug = $1, name = $2, transport = $3, enabled = $4, timeout_ms = $5, \
             config_revision = $6, egress_restricted = $7 WHERE id = $8",
        )
        .bind(slug.clone())
        .bind(patch.name.unwrap_or_else(|| before.name.clone()))
        .bind(to_json(patch.transport.as_ref().unwrap_or(&before.transport))?)
        .bind(i64::from(patch.enabled.unwrap_or(before.enabled)))
        .bind(timeout.unwrap_or(before.timeout_ms as i64))
        .bind(config_revision as i64)
        .bind(i64::from(egress_restricted))
        .bind(id.0);
        q.execute(w.conn())
            .await
            .map_err(constraint("server", &slug))?;
        if let Some(secrets) = secrets {
            q = sqlx::query("UPDATE servers SET secret_headers = $1 WHERE id = $2")
                .bind(secrets)
                .bind(id.0);
            q.execute(w.conn()).await?;
        }
        w.commit_written("update", id, Some(&before)).await
    }

    /// Deletes a server with every grant, scope entry and toolset entry for it.
    pub async fn delete_server(&self, actor: &str, id: ServerId) -> Result<u64> {
        self.delete_stored::<Server>(actor, id).await
    }

    pub async fn get_server(&self, id: ServerId) -> Result<Option<Server>> {
        self.get_stored(id).await
    }

    /// The server with exactly this owner (`None`: global) and slug.
    pub async fn get_server_by_slug(
        &self,
        owner: Option<OrgId>,
        slug: &str,
    ) -> Result<Option<Server>> {
        let sql = match owner {
            None => Server::select("WHERE owner_org IS NULL AND slug = $1"),
            Some(_) => Server::select("WHERE owner_org = $2 AND slug = $1"),
        };
        let mut q = sqlx::query(&sql).bind(slug.to_owned());
        if let Some(org) = owner {
            q = q.bind(org.0);
        }
        self.find(q).await
    }

    /// The server `slug` names for `org`: global, or owned by `org`.
    /// Another org's server is `None`, like a missing one.
    pub async fn find_server_for_org(&self, org: OrgId, slug: &str) -> Result<Option<Server>> {
        let sql = Server::select("WHERE slug = $1 AND (owner_org IS NULL OR owner_org = $2)");
        self.find(sqlx::query(&sql).bind(slug.to_owned()).bind(org.0))
            .await
    }

    /// All servers (`visible_to: None`), or those an org can see: global
    /// ones and its own.
    pub async fn list_servers(&self, visible_to: Option<OrgId>) -> Result<Vec<Server>> {
        match visible_to {
            None => {
                let sql = Server::select("ORDER BY id");
                self.find_all(sqlx::query(&sql)).await
            }
            Some(org) => {
                let sql = Server::select("WHERE owner_org IS NULL OR owner_org = $1 ORDER BY id");
                self.find_all(sqlx::query(&sql).bind(org.0)).await
            }
        }
    }

    fn upstream_from(&self, r: &AnyRow) -> Result<UpstreamConfig> {
        let stored: BTreeMap<String, String> = r.json("secret_headers")?;
        let mut secret_headers = BTreeMap::new();
        for (name, value) in stored {
            let secret = self.inner.cipher.decrypt(&name, &value)?;
            secret_headers.insert(name, secret);
        }
        Ok(UpstreamConfig {
            server: ServerId(r.int("id")?),
            slug: r.text("slug")?,
            owner_org: r.opt_int("owner_org")?.map(OrgId),
            transport: r.json("transport")?,
            secret_headers,
            timeout_ms: r.int("timeout_ms")? as u64,
            egress_restricted: r.flag("egress_restricted")?,
            config_revision: r.int("config_revision")? as u64,
        })
    }

    /// How to reach every server, secrets decrypted (for the gateway only).
    pub async fn load_upstreams(&self) -> Result<Vec<UpstreamConfig>> {
        let sql = Server::select("ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(|r| self.upstream_from(r)).collect()
    }

    pub async fn load_upstream(&self, id: ServerId) -> Result<Option<UpstreamConfig>> {
        let sql = Server::select("WHERE id = $1");
        match sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
        {
            Some(r) => Ok(Some(self.upstream_from(&r)?)),
            None => Ok(None),
        }
    }
}
