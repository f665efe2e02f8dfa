//! What the platform lets tenants reach: the egress policy for upstream
//! URLs an org admin sets, and the allow-list of stdio commands.
//!
//! One pure check, used twice: by the admin API when an org admin writes a
//! URL (the host resolved then), and by the gateway on every connection to
//! such an upstream (on the addresses its DNS resolver returns, so a name
//! that later resolves elsewhere, DNS rebinding, is still refused).
//!
//! Refused by default: loopback, unspecified, link-local (cloud metadata
//! `169.254.169.254`, `fd00:ec2::254`), private (`10/8`, `172.16/12`,
//! `192.168/16`, `fc00::/7`), shared CGNAT (`100.64/10`), multicast,
//! broadcast and reserved ranges, and the IPv6 forms that embed such an
//! IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`). Also refused: schemes other than
//! `http`/`https` and URLs with userinfo. The platform may allow hosts
//! (exact names, or `*.suffix`) and CIDR ranges in its configuration.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::error::{Result, StoreError};

/// Longest a write-time lookup of an upstream host may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an upstream URL or address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDenied {
    /// Not a URL the gateway can use.
    BadUrl(String),
    /// A scheme other than `http` or `https`.
    Scheme(String),
    /// `user:password@` in the URL.
    Userinfo,
    /// The address lies in a range tenants may not reach.
    Address { ip: IpAddr, range: &'static str },
    /// The host name did not resolve (so it cannot be checked).
    Unresolvable { host: String, detail: String },
}

impl EgressDenied {
    /// A stable snake_case reason code.
    pub fn code(&self) -> &'static str {
        match self {
            EgressDenied::BadUrl(_) => "bad_url",
            EgressDenied::Scheme(_) => "scheme_not_allowed",
            EgressDenied::Userinfo => "userinfo_not_allowed",
            EgressDenied::Address { range, .. } => range,
            EgressDenied::Unresolvable { .. } => "unresolvable_host",
        }
    }
}

impl fmt::Display for EgressDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressDenied::BadUrl(why) => write!(f, "not a usable URL: {why}"),
            EgressDenied::Scheme(s) => write!(f, "scheme {s:?} is not allowed (http or https)"),
            EgressDenied::Userinfo => f.write_str("URLs with user:password@ are not allowed"),
            EgressDenied::Address { ip, range } => write!(
                f,
                "address {ip} is in a range upstreams may not use ({range})"
            ),
            EgressDenied::Unresolvable { host, detail } => {
                write!(f, "host {host:?} does not resolve: {detail}")
            }
        }
    }
}

/// (network, prefix length, range name), IPv4.
const V4_FORBIDDEN: &[(u32, u32, &str)] = &[
    (0x0000_0000, 8, "unspecified"),
    (0x0a00_0000, 8, "private"),
    (0x6440_0000, 10, "shared_cgnat"),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link_local"),
    (0xac10_0000, 12, "private"),
    (0xc000_0000, 24, "ietf_protocol"),
    (0xc0a8_0000, 16, "private"),
    (0xc612_0000, 15, "benchmarking"),
    (0xe000_0000, 4, "multicast"),
    (0xffff_ffff, 32, "broadcast"),
    (0xf000_0000, 4, "reserved"),
];

/// (network, prefix length, range name), IPv6, for addresses that do not
/// embed an IPv4 address.
const V6_FORBIDDEN: &[(u128, u32, &str)] = &[
    (0, 128, "unspecified"),
    (1, 128, "loopback"),
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, "discard"),
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique_local"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link_local"),
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, "site_local"),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
];

fn in_v4(ip: Ipv4Addr, net: u32, len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == net
}

fn in_v6(ip: Ipv6Addr, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == net
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    V4_FORBIDDEN
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, name)| *name)
}

/// The IPv4 address an IPv6 address stands for (mapped, compatible,
/// NAT64, 6to4), if any.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if in_v6(ip, 0xffff_0000_0000, 96) || in_v6(ip, 0x64_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return Some(low32);
    }
    // IPv4-compatible (deprecated): `::a.b.c.d`, but not `::` and `::1`.
    if in_v6(ip, 0, 96) && bits > 1 {
        return Some(low32);
    }
    if in_v6(ip, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// The forbidden range `ip` lies in, if any (before any allow-list).
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_range(v4),
            None => V6_FORBIDDEN
                .iter()
                .find(|(net, len, _)| in_v6(v6, *net, *len))
                .map(|(_, _, name)| *name),
        },
    }
}

/// Where a URL points, once its scheme, userinfo and any IP literal passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlTarget {
    /// An IP literal that is allowed.
    Ip(IpAddr),
    /// A host name the platform allowed as such: no address check.
    AllowedHost(String),
    /// A host name whose addresses must be checked when resolved.
    Host { host: String, port: u16 },
}

/// The platform's egress policy for upstreams whose URL an org admin set.
/// The default refuses every range listed in the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Lowercase names, without a trailing dot; `*.suffix` matches below it.
    allow_hosts: Vec<String>,
    allow_cidrs: Vec<IpNet>,
}

impl EgressPolicy {
    /// `allow_hosts`: names (`mcp.internal`) or `*.suffix` patterns whose
    /// addresses are not checked; `allow_cidrs`: ranges (`10.20.0.0/16`,
    /// `fd12::/16`, or a single address) allowed although forbidden by default.
    pub fn new<S: AsRef<str>>(allow_hosts: &[S], allow_cidrs: &[S]) -> Result<EgressPolicy> {
        let mut hosts = Vec::new();
        for h in allow_hosts {
            let h = h.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
            if h.is_empty() || h == "*" || h == "*." {
                return Err(StoreError::BadInput(format!(
                    "egress allow_hosts entry {h:?} is empty or matches every host"
                )));
            }
            hosts.push(h);
        }
        let mut cidrs = Vec::new();
        for c in allow_cidrs {
            let c = c.as_ref().trim();
            let net = c
                .parse::<IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    StoreError::BadInput(format!("egress allow_cidrs entry {c:?} is not a CIDR"))
                })?;
            cidrs.push(net.trunc());
        }
        Ok(EgressPolicy {
            allow_hosts: hosts,
            allow_cidrs: cidrs,
        })
    }

    /// May an upstream connect to `ip`?
    pub fn check_ip(&self, ip: IpAddr) -> std::result::Result<(), EgressDenied> {
        let canonical = ip.to_canonical();
        if self
            .allow_cidrs
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        match forbidden_range(ip) {
            None => Ok(()),
            Some(range) => Err(EgressDenied::Address { ip, range }),
        }
    }

    /// Is `host` (a DNS name) allowed as such by the platform?
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.')),
                None => *pattern == host,
            })
    }

    /// Checks what can be checked without DNS: the URL parses (the same
    /// parser the HTTP client uses), is `http`/`https` without userinfo,
    /// and an IP literal host (`http://127.1/`, `http://2130706433/`,
    /// `http://[::ffff:127.0.0.1]/` all are) is allowed.
    pub fn check_url(&self, url: &str) -> std::result::Result<UrlTarget, EgressDenied> {
        let parsed = url::Url::parse(url).map_err(|e| EgressDenied::BadUrl(e.to_string()))?;
        let scheme = parsed.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(EgressDenied::Scheme(scheme.to_owned()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressDenied::Userinfo);
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        match parsed.host() {
            None => Err(EgressDenied::BadUrl("no host".into())),
            Some(url::Host::Ipv4(ip)) => self
                .check_ip(IpAddr::V4(ip))
                .map(|()| UrlTarget::Ip(ip.into())),
            Some(url::Host::Ipv6(ip)) => self
                .check_ip(IpAddr::V6(ip))
                .map(|()| UrlTarget::Ip(ip.into())),
            Some(url::Host::Domain(host)) if self.host_allowed(host) => {
                Ok(UrlTarget::AllowedHost(host.to_owned()))
            }
            Some(url::Host::Domain(host)) => Ok(UrlTarget::Host {
                host: host.to_owned(),
                port,
            }),
        }
    }

    /// [`check_url`](Self::check_url), then resolves a host name and checks
    /// every address it has now (all must be allowed).
    pub async fn check_url_resolved(&self, url: &str) -> std::result::Result<(), EgressDenied> {
        let UrlTarget::Host { host, port } = self.check_url(url)? else {
            return Ok(());
        };
        let unresolvable = |detail: String| EgressDenied::Unresolvable {
            host: host.clone(),
            detail,
        };
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(
            LOOKUP_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        {
            Err(_) => return Err(unresolvable("lookup timed out".into())),
            Ok(Err(e)) => return Err(unresolvable(e.to_string())),
            Ok(Ok(addrs)) => addrs.collect(),
        };
        if addrs.is_empty() {
            return Err(unresolvable("no addresses".into()));
        }
        addrs.iter().try_for_each(|a| self.check_ip(a.ip()))
    }
}

/// What the platform lets tenants run and reach upstream: shared by the
/// admin API (at write time) and the gateway (at connect / spawn time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamPolicy {
    /// Applies to servers whose URL an org admin set (`egress_restricted`).
    pub egress: EgressPolicy,
    /// When set, the only stdio commands Warden creates or spawns (compared
    /// exactly as written in the server's `command`), for every admin.
    /// `None`: any command (stdio servers are platform-admin only anyway).
    pub stdio_allowed_commands: Option<Vec<String>>,
}

impl UpstreamPolicy {
    pub fn stdio_command_allowed(&self, command: &str) -> bool {
        match &self.stdio_allowed_commands {
            None => true,
            Some(allowed) => allowed.iter().any(|c| c == command),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> EgressPolicy {
        EgressPolicy::default()
    }

    fn denied_range(url: &str) -> &'static str {
        match default_policy().check_url(url) {
            Err(EgressDenied::Address { range, .. }) => range,
            other => panic!("{url}: expected an address refusal, got {other:?}"),
        }
    }

    #[test]
    fn attacker_spellings_of_internal_addresses_are_refused() {
        for (url, range) in [
            ("http://127.0.0.1:8080/mcp", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://169.254.169.254/latest/meta-data/", "link_local"),
            ("http://[fd00:ec2::254]/", "unique_local"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:7f00:1]/", "loopback"),
            ("http://[::127.0.0.1]/", "loopback"),
            ("http://[64:ff9b::a9fe:a9fe]/", "link_local"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://0x7f.0.0.1/", "loopback"),
            ("http://017700000001/", "loopback"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "shared_cgnat"),
            ("http://[fc00::1]/", "unique_local"),
            ("http://[fe80::1]/", "link_local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "broadcast"),
            ("http://240.0.0.1/", "reserved"),
        ] {
            assert_eq!(denied_range(url), range, "{url}");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_the_static_check() {
        let p = default_policy();
        assert_eq!(
            p.check_url("https://8.8.8.8/mcp"),
            Ok(UrlTarget::Ip("8.8.8.8".parse().unwrap()))
        );
        assert!(p.check_url("http://172.32.0.1/").is_ok());
        assert!(p.check_url("http://[2606:4700::1111]/").is_ok());
        assert!(p.check_url("http://[::ffff:8.8.8.8]/").is_ok());
        assert_eq!(
            p.check_url("https://mcp.example.com/x"),
            Ok(UrlTarget::Host {
                host: "mcp.example.com".into(),
                port: 443
            })
        );
    }

    #[test]
    fn schemes_userinfo_and_garbage_are_refused() {
        let p = default_policy();
        assert_eq!(
            p.check_url("file:///etc/passwd"),
            Err(EgressDenied::Scheme("file".into()))
        );
        assert!(matches!(
            p.check_url("gopher://x/"),
            Err(EgressDenied::Scheme(_))
        ));
        assert_eq!(
            p.check_url("http://user:pw@example.com/"),
            Err(EgressDenied::Userinfo)
        );
        assert_eq!(
            p.check_url("http://user@example.com/"),
            Err(EgressDenied::Userinfo)
        );
        assert!(matches!(
            p.check_url("not a url"),
            Err(EgressDenied::BadUrl(_))
        ));
    }

    #[test]
    fn allow_lists_open_exactly_what_they_name() {
        let p = EgressPolicy::new(
            &["mcp.internal", "*.corp.example"],
            &["10.20.0.0/16", "127.0.0.1"],
        )
        .unwrap();
        assert!(p.check_ip("10.20.3.4".parse().unwrap()).is_ok());
        assert!(p.check_ip("10.21.0.1".parse().unwrap()).is_err());
        assert!(p.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("127.0.0.2".parse().unwrap()).is_err());
        assert!(p.host_allowed("mcp.internal"));
        assert!(p.host_allowed("MCP.internal."));
        assert!(p.host_allowed("a.corp.example"));
        assert!(!p.host_allowed("corp.example"));
        assert!(!p.host_allowed("evilcorp.example"));
        assert!(!p.host_allowed("mcp.internal.evil"));
        assert_eq!(
            p.check_url("http://mcp.internal:9/"),
            Ok(UrlTarget::AllowedHost("mcp.internal".into()))
        );
        // Scheme and userinfo rules hold for allowed hosts too.
        assert_eq!(
            p.check_url("http://u:p@mcp.internal/"),
            Err(EgressDenied::Userinfo)
        );
        assert!(EgressPolicy::new(&["*"], &[] as &[&str]).is_err());
        assert!(EgressPolicy::new(&[] as &[&str], &["10.0.0.0/33"]).is_err());
    }

    #[tokio::test]
    async fn names_are_checked_on_their_resolved_addresses() {
        let p = default_policy();
        let err = p
            .check_url_resolved("http://localhost:9/")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "loopback", "{err}");
        let allowed = EgressPolicy::new(&["localhost"], &[] as &[&str]).unwrap();
        assert!(allowed
            .check_url_resolved("http://localhost:9/")
            .await
            .is_ok());
        let err = p
            .check_url_resolved("http://no-such-host.invalid/")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unresolvable_host");
    }

    #[test]
    fn stdio_allow_list() {
        let mut p = UpstreamPolicy::default();
        assert!(p.stdio_command_allowed("/bin/sh"));
        p.stdio_allowed_commands = Some(vec!["npx".into()]);
        assert!(p.stdio_command_allowed("npx"));
        assert!(!p.stdio_command_allowed("/bin/sh"));
        assert!(!p.stdio_command_allowed("npx "));
    }
}
