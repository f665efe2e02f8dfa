//! One rule for every free-text field of a request body, checked before
//! any handler runs: [`ApiJson`](crate::extract::ApiJson) accepts only
//! bodies that implement [`Validate`], so a new DTO cannot skip it.
//!
//! Names (labels for people, key and token names, external ids) are 1 to
//! [`NAME_MAX`] bytes and not blank; URLs, commands, arguments, environment
//! variables and secret headers have their own bounds. Anything longer is
//! 422 `invalid_value` naming the field. Slugs have the engine's own rule
//! (`bad_slug`).

use std::collections::BTreeMap;

use crate::dto::*;
use crate::error::AdminError;

/// Longest name, in bytes.
pub const NAME_MAX: usize = 256;
/// Longest upstream URL, in bytes.
pub const URL_MAX: usize = 2048;
/// Longest stdio command, in bytes.
pub const COMMAND_MAX: usize = 1024;
/// Most stdio arguments, and the longest one in bytes.
pub const ARGS_MAX: usize = 64;
pub const ARG_MAX: usize = 4096;
/// Most environment variables / secret headers of one server.
pub const ENTRIES_MAX: usize = 64;
/// Longest environment variable or header name, and value, in bytes.
pub const ENTRY_NAME_MAX: usize = 256;
pub const ENTRY_VALUE_MAX: usize = 8192;

/// A request body that checks its own fields.
pub trait Validate {
    fn validate(&self) -> Result<(), AdminError>;
}

/// A name: 1 to [`NAME_MAX`] bytes, not blank.
pub fn name(field: &'static str, value: &str) -> Result<(), AdminError> {
    if value.trim().is_empty() || value.len() > NAME_MAX {
        return Err(AdminError::invalid(
            field,
            format!("{field} must be 1 to {NAME_MAX} bytes and not blank"),
        ));
    }
    Ok(())
}

/// An optional name: when given, [`name`]'s rule.
pub fn opt_name(field: &'static str, value: Option<&String>) -> Result<(), AdminError> {
    value.map_or(Ok(()), |v| name(field, v))
}

/// Any other text: at most `max` bytes.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<(), AdminError> {
    if value.len() > max {
        return Err(AdminError::invalid(
            field,
            format!("{field} must be at most {max} bytes"),
        ));
    }
    Ok(())
}

/// A map of names to values (environment, secret headers).
fn entries(field: &'static str, map: &BTreeMap<String, String>) -> Result<(), AdminError> {
    if map.len() > ENTRIES_MAX {
        return Err(AdminError::invalid(
            field,
            format!("{field} may have at most {ENTRIES_MAX} entries"),
        ));
    }
    for (k, v) in map {
        if k.is_empty() || k.len() > ENTRY_NAME_MAX || v.len() > ENTRY_VALUE_MAX {
            return Err(AdminError::invalid(
                field,
                format!(
                    "{field}: names must be 1 to {ENTRY_NAME_MAX} bytes and values at most {ENTRY_VALUE_MAX} bytes"
                ),
            ));
        }
    }
    Ok(())
}

impl Validate for TransportSpec {
    fn validate(&self) -> Result<(), AdminError> {
        match self {
            TransportSpec::Http { url } => text("transport.url", url, URL_MAX),
            TransportSpec::Stdio { command, args, env } => {
                text("transport.command", command, COMMAND_MAX)?;
                if args.len() > ARGS_MAX {
                    return Err(AdminError::invalid(
                        "transport.args",
                        format!("transport.args may have at most {ARGS_MAX} entries"),
                    ));
                }
                for a in args {
                    text("transport.args", a, ARG_MAX)?;
                }
                entries("transport.env", env)
            }
        }
    }
}

impl Validate for CreateOrg {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for PatchOrg {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for CreateAdminToken {
    fn validate(&self) -> Result<(), AdminError> {
        name("name", &self.name)
    }
}

impl Validate for CreateServer {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())?;
        self.transport.validate()?;
        entries("secret_headers", &self.secret_headers)
    }
}

impl Validate for PatchServer {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())?;
        if let Some(t) = &self.transport {
            t.validate()?;
        }
        self.secret_headers
            .as_ref()
            .map_or(Ok(()), |h| entries("secret_headers", h))
    }
}

impl Validate for PutGrant {
    fn validate(&self) -> Result<(), AdminError> {
        Ok(())
    }
}

impl Validate for PatchGrant {
    fn validate(&self) -> Result<(), AdminError> {
        Ok(())
    }
}

impl Validate for ScopeSpec {
    fn validate(&self) -> Result<(), AdminError> {
        Ok(())
    }
}

impl Validate for CreateTeam {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for PatchTeam {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for CreateAgent {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for PatchAgent {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for CreateEndUser {
    fn validate(&self) -> Result<(), AdminError> {
        name("external_id", &self.external_id)?;
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for PatchEndUser {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for CreateToolset {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for PatchToolset {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())
    }
}

impl Validate for PutToolsetServers {
    fn validate(&self) -> Result<(), AdminError> {
        Ok(())
    }
}

impl Validate for CreateKey {
    fn validate(&self) -> Result<(), AdminError> {
        name("name", &self.name)?;
        self.expires_at
            .as_deref()
            .map_or(Ok(()), |t| text("expires_at", t, 64))
    }
}

impl Validate for PatchKey {
    fn validate(&self) -> Result<(), AdminError> {
        opt_name("name", self.name.as_ref())?;
        match &self.expires_at {
            Some(Some(t)) => text("expires_at", t, 64),
            _ => Ok(()),
        }
    }
}

impl Validate for LimitLevelSpec {
    fn validate(&self) -> Result<(), AdminError> {
        match self {
            LimitLevelSpec::Org {} | LimitLevelSpec::Key { .. } => Ok(()),
            LimitLevelSpec::Team { slug } | LimitLevelSpec::Agent { slug } => {
                name("level.slug", slug)
            }
            LimitLevelSpec::EndUser { external_id } => name("level.external_id", external_id),
        }
    }
}

impl Validate for CreateLimit {
    fn validate(&self) -> Result<(), AdminError> {
        self.level.validate()?;
        opt_name("server", self.server.as_ref())?;
        opt_name("tool", self.tool.as_ref())
    }
}

impl Validate for PatchLimit {
    fn validate(&self) -> Result<(), AdminError> {
        if let Some(level) = &self.level {
            level.validate()?;
        }
        opt_name("server", self.server.as_ref().and_then(Option::as_ref))?;
        opt_name("tool", self.tool.as_ref().and_then(Option::as_ref))
    }
}

/// An identity provider's configuration: its own shape rules (URLs,
/// bounded claim names and mappings, group teams within the orgs it
/// serves), then a slug. That the orgs, teams and agents exist is the
/// store's check.
impl Validate for warden_identity::ProviderConfig {
    fn validate(&self) -> Result<(), AdminError> {
        warden_policy::validate_slug("identity provider", &self.slug)?;
        warden_identity::ProviderConfig::validate(self)
            .map_err(|e| AdminError::invalid("config", e.to_string()))
    }
}

impl Validate for crate::idp_routes::PatchIdentityProvider {
    fn validate(&self) -> Result<(), AdminError> {
        match &self.config {
            Some(c) => Validate::validate(c),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_to_256_bytes_and_not_blank() {
        assert!(name("name", "a").is_ok());
        assert!(name("name", &"é".repeat(128)).is_ok());
        assert!(name("name", &"a".repeat(256)).is_ok());
        assert_eq!(
            name("name", &"a".repeat(257)).unwrap_err().code(),
            "invalid_value"
        );
        assert!(name("name", "   ").is_err());
        assert!(name("name", "").is_err());
    }

    #[test]
    fn transports_are_bounded() {
        let url = |n: usize| TransportSpec::Http {
            url: format!("http://h/{}", "a".repeat(n)),
        };
        assert!(url(100).validate().is_ok());
        assert!(url(URL_MAX).validate().is_err());
        let stdio = |args: usize, env: usize| TransportSpec::Stdio {
            command: "npx".into(),
            args: vec!["x".into(); args],
            env: (0..env).map(|i| (format!("V{i}"), "v".into())).collect(),
        };
        assert!(stdio(ARGS_MAX, ENTRIES_MAX).validate().is_ok());
        assert!(stdio(ARGS_MAX + 1, 0).validate().is_err());
        assert!(stdio(0, ENTRIES_MAX + 1).validate().is_err());
    }
}
