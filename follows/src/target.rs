//! Where a notification may go: the one egress policy the follow API (at
//! `POST`/`PATCH`) and the notifier (before each send, and on every address a
//! name resolves to) both apply, so that a follower cannot make the notifier
//! connect to the operator's own network (server-side request forgery).
//!
//! - A URL is parsed as browsers parse it (WHATWG, the `url` crate): the odd
//!   IPv4 spellings (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`),
//!   percent-encoding, upper case and a trailing dot are normalised before
//!   anything is judged.
//! - An address must be public: private, loopback, link-local, multicast,
//!   unspecified, broadcast, shared (CGNAT), documentation, benchmarking and
//!   reserved IPv4 ranges, and every IPv6 address outside global unicast
//!   (`2000::/3`) or inside its special blocks, are refused. IPv6 forms that
//!   carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
//!   IPv4 address they carry.
//! - A name must not be `localhost`, a `*.localhost`, a single label or under a
//!   special-use or private-use suffix (`.local`, `.internal`, `.home.arpa`...).
//! - A Web Push endpoint must also be on one of the browser push services
//!   ([`DEFAULT_PUSH_HOSTS`]), unless the operator chose [`PushHosts::Any`].
//!
//! Loopback is allowed only with [`Egress::allow_loopback`] (tests, whose fake
//! services listen on 127.0.0.1), and other non-public networks only where an
//! operator lists them in [`Egress::allow_nets`] (for targets the operator
//! configured, never for a follower's own endpoint).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// The push services of the browsers in use, the default Web Push allow-list:
/// Chrome, Edge on Android and most Chromium browsers (FCM), Firefox
/// (Mozilla autopush), Safari (Apple) and Edge on Windows (WNS).
pub const DEFAULT_PUSH_HOSTS: [&str; 4] = [
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
];

/// Which hosts a Web Push endpoint may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushHosts {
    /// Any public host (the other checks still apply).
    Any,
    /// Only these: `host` exactly, or `*.suffix` for any name under `suffix`.
    Only(Vec<String>),
}

impl Default for PushHosts {
    fn default() -> Self {
        PushHosts::from_list(&DEFAULT_PUSH_HOSTS)
    }
}

impl PushHosts {
    /// From a configured list: `["*"]` (or any list holding `*`) is
    /// [`PushHosts::Any`]. Entries are lower-cased, trailing dots dropped.
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> PushHosts {
        if list.iter().any(|h| h.as_ref().trim() == "*") {
            return PushHosts::Any;
        }
        PushHosts::Only(
            list.iter()
                .map(|h| h.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        )
    }

    /// Whether `host` (lower case, no trailing dot) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        match self {
            PushHosts::Any => true,
            PushHosts::Only(list) => list.iter().any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                None => host == pattern,
            }),
        }
    }
}

/// Which targets, beyond public ones, a sender may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    /// Accept `http://` and loopback targets (`127.0.0.0/8`, `::1`,
    /// `localhost`). For tests on one machine only.
    pub allow_loopback: bool,
    /// Non-public networks an operator opts into, e.g. a webhook at
    /// `10.0.0.5` (`10.0.0.0/8`). Applied to operator-configured targets only.
    pub allow_nets: Vec<IpNet>,
}

/// Why a target is refused (the follow API answers 400 with it; the notifier
/// counts it as `blocked_target` and never retries).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockedTarget {
    #[error("not a URL")]
    NotUrl,
    #[error("must be an https:// URL")]
    Scheme,
    #[error("must not carry credentials")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error("{0} is not a public address ({1})")]
    Address(IpAddr, &'static str),
    #[error("'{0}' is not a public host name ({1})")]
    Name(String, &'static str),
    #[error("'{0}' is not a push service this hub delivers to")]
    NotPushService(String),
    #[error("'{0}' resolves to no public address")]
    Resolved(String),
}

/// Name suffixes that never name a public host: special-use names (RFC 6761,
/// RFC 6762, RFC 8375, RFC 7686) and the private-use ones in common use.
const PRIVATE_SUFFIXES: [&str; 13] = [
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "home.arpa",
    "arpa",
    "invalid",
    "onion",
];

/// Why an address is not public, or `None` when it is. IPv6 forms that carry
/// an IPv4 address are judged by that address.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => non_public_v4(v4),
            None => non_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002:AABB:CCDD::/48`).
pub fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return Some(low);
    }
    // `::` and `::1` are themselves, not IPv4-compatible addresses.
    if s[..6] == [0; 6] && u32::from(low) > 1 {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    // The IANA IPv4 special-purpose address registry, and multicast/reserved.
    const RANGES: [([u8; 4], u8, &str); 19] = [
        ([0, 0, 0, 0], 8, "this network"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared address space"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 31, 196, 0], 24, "AS112"),
        ([192, 52, 193, 0], 24, "AMT"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private"),
        ([192, 175, 48, 0], 24, "AS112"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    let bits = u32::from(ip);
    RANGES.iter().find_map(|(net, len, why)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        (bits & mask == u32::from_be_bytes(*net)).then_some(*why)
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let within = |net: u128, len: u32| bits & (u128::MAX << (128 - len)) == net;
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if within(0xff00 << 112, 8) {
        return Some("multicast");
    }
    if within(0xfc00 << 112, 7) {
        return Some("unique local");
    }
    if within(0xfe80 << 112, 10) {
        return Some("link-local");
    }
    if within(0xfec0 << 112, 10) {
        return Some("site-local");
    }
    // Global unicast is 2000::/3; inside it, the special blocks.
    if !within(0x2000 << 112, 3) {
        return Some("reserved");
    }
    if within(0x2001_0db8 << 96, 32) || within(0x3fff << 112, 20) {
        return Some("documentation");
    }
    if within(0x2001 << 112, 23) {
        return Some("IETF protocol assignments (Teredo, benchmarking, ORCHID)");
    }
    if within(0x5f00 << 112, 16) {
        return Some("segment routing");
    }
    None
}

/// Whether `ip` may be connected to under `egress`.
pub fn check_ip(ip: IpAddr, egress: &Egress) -> Result<(), BlockedTarget> {
    let Some(why) = non_public(ip) else {
        return Ok(());
    };
    let v4 = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    let candidates = [Some(ip), v4];
    let candidates = candidates.iter().flatten();
    if egress.allow_loopback && candidates.clone().any(|a| a.is_loopback()) {
        return Ok(());
    }
    if candidates
        .clone()
        .any(|a| egress.allow_nets.iter().any(|net| net.contains(a)))
    {
        return Ok(());
    }
    Err(BlockedTarget::Address(ip, why))
}

/// Whether a host name (lower case, as the URL parser leaves it) may name a
/// public host. Names that resolve to a non-public address anyway are caught
/// at connect time, on the resolved address.
pub fn check_name(host: &str, egress: &Egress) -> Result<(), BlockedTarget> {
    let name = host.trim_end_matches('.');
    let refuse = |why| Err(BlockedTarget::Name(name.to_owned(), why));
    if name.is_empty() {
        return refuse("empty");
    }
    let is_localhost = name == "localhost" || name.ends_with(".localhost");
    if is_localhost && egress.allow_loopback {
        return Ok(());
    }
    if is_localhost {
        return refuse("loopback");
    }
    // An operator who listed private networks may name hosts on them
    // (`http://hooks:8080`, `hooks.internal`): the addresses they resolve
    // to are still checked against the list at connect time.
    if !egress.allow_nets.is_empty() {
        return Ok(());
    }
    for suffix in PRIVATE_SUFFIXES {
        if name == suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
        {
            return refuse("a special-use or private-use name");
        }
    }
    if !name.contains('.') {
        return refuse("a single label, resolved through the local search domains");
    }
    Ok(())
}

/// Parses and checks a target URL: `http(s)://`, no credentials, a public
/// host (an address, or a name that may be public). `https_only`: `http://`
/// only with [`Egress::allow_loopback`]. Returns the parsed URL.
pub fn check_url(url: &str, egress: &Egress, https_only: bool) -> Result<url::Url, BlockedTarget> {
    let parsed = url::Url::parse(url).map_err(|_| BlockedTarget::NotUrl)?;
    match parsed.scheme() {
        "https" => {}
        "http" if !https_only || egress.allow_loopback => {}
        _ => return Err(BlockedTarget::Scheme),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(BlockedTarget::Credentials);
    }
    match parsed.host() {
        None => return Err(BlockedTarget::NoHost),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), egress)?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), egress)?,
        Some(url::Host::Domain(name)) => check_name(name, egress)?,
    }
    Ok(parsed)
}

/// Checks a follower's Web Push endpoint: [`check_url`] (`https://` only),
/// then the push host allow-list. With [`Egress::allow_loopback`], a loopback
/// endpoint passes the allow-list too (the tests' push service).
/// `egress.allow_nets` is not used: a follower's endpoint is never let onto an
/// operator's private network.
pub fn check_push_endpoint(
    endpoint: &str,
    egress: &Egress,
    hosts: &PushHosts,
) -> Result<url::Url, BlockedTarget> {
    let follower_egress = Egress {
        allow_loopback: egress.allow_loopback,
        allow_nets: Vec::new(),
    };
    let url = check_url(endpoint, &follower_egress, true)?;
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.trim_end_matches('.').to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(BlockedTarget::NoHost),
    };
    let loopback = egress.allow_loopback
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => {
                ip.is_loopback() || embedded_v4(ip).is_some_and(|v4| v4.is_loopback())
            }
            Some(url::Host::Domain(name)) => {
                name == "localhost" || name.trim_end_matches('.').ends_with(".localhost")
            }
            None => false,
        };
    if !loopback && !hosts.allows(&host) {
        return Err(BlockedTarget::NotPushService(host));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Egress {
        Egress::default()
    }

    /// Every spelling from issue 21, and more: all refused by default.
    #[test]
    fn every_spelling_of_a_non_public_target_is_refused() {
        let refused = [
            "https://127.0.0.1/",
            "https://127.0.0.2/",
            "https://127.1/",
            "https://127.0.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://017700000001/",
            "https://%31%32%37.0.0.1/",
            "https://127.0.0.1./",
            "https://[::1]/",
            "https://[0:0:0:0:0:0:0:1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://0.0.0.0/",
            "https://0/",
            "https://[::]/",
            "https://169.254.169.254/latest/meta-data/",
            "https://2852039166/",
            "https://10.0.0.1/",
            "https://10.1/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://100.127.255.255/",
            "https://192.0.0.1/",
            "https://192.0.2.1/",
            "https://198.51.100.7/",
            "https://203.0.113.9/",
            "https://198.18.0.1/",
            "https://198.19.255.255/",
            "https://224.0.0.1/",
            "https://239.255.255.250/",
            "https://240.0.0.1/",
            "https://255.255.255.255/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://[fe80::1]/",
            "https://[fec0::1]/",
            "https://[ff02::1]/",
            "https://[2001:db8::1]/",
            "https://[2001:0:4136:e378::1]/",
            "https://[3fff::1]/",
            "https://[100::1]/",
            "https://[64:ff9b:1::1]/",
            "https://localhost/",
            "https://LOCALHOST/",
            "https://localhost./",
            "https://LocalHost.:8443/",
            "https://api.localhost/",
            "https://%6c%6f%63%61%6c%68%6f%73%74/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://printer.local/",
            "https://router.home.arpa/",
            "https://1.0.0.127.in-addr.arpa/",
            "https://intranet/",
            "https://db.corp/",
            "http://fcm.googleapis.com/",
            "ftp://fcm.googleapis.com/",
            "https://user:pass@fcm.googleapis.com/",
            "https://user@fcm.googleapis.com/",
            "not a url",
            "https:///path",
        ];
        for url in refused {
            assert!(
                check_url(url, &strict(), true).is_err(),
                "{url} was accepted"
            );
            assert!(
                check_push_endpoint(url, &strict(), &PushHosts::Any).is_err(),
                "{url} was accepted as a push endpoint"
            );
        }
    }

    #[test]
    fn public_targets_pass() {
        for url in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://8.8.8.8/",
            "https://134744072/",
            "https://[2606:4700:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://[64:ff9b::808:808]/",
            "https://example.org:8443/hook",
            "https://FCM.GoogleAPIs.com./x",
        ] {
            assert!(check_url(url, &strict(), true).is_ok(), "{url} was refused");
        }
    }

    #[test]
    fn push_endpoints_must_be_on_a_push_service_by_default() {
        let hosts = PushHosts::default();
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://FCM.googleapis.com./fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://web.push.apple.com/QGa",
            "https://wns2-par02p.notify.windows.com/w/?token=x",
        ] {
            assert!(
                check_push_endpoint(ok, &strict(), &hosts).is_ok(),
                "{ok} was refused"
            );
        }
        for bad in [
            "https://push.apple.com/x",
            "https://evilpush.apple.com/x",
            "https://push.apple.com.evil.org/x",
            "https://fcm.googleapis.com.evil.org/x",
            "https://example.org/push",
            "https://8.8.8.8/push",
        ] {
            assert!(
                matches!(
                    check_push_endpoint(bad, &strict(), &hosts),
                    Err(BlockedTarget::NotPushService(_))
                ),
                "{bad} was accepted"
            );
        }
        assert!(
            check_push_endpoint("https://example.org/push", &strict(), &PushHosts::Any).is_ok()
        );
        assert_eq!(PushHosts::from_list(&["*"]), PushHosts::Any);
    }

    #[test]
    fn loopback_only_with_the_test_setting_and_private_nets_only_when_listed() {
        let test = Egress {
            allow_loopback: true,
            allow_nets: Vec::new(),
        };
        let hosts = PushHosts::default();
        for url in [
            "http://127.0.0.1:9/push/1",
            "http://[::1]:9/",
            "http://localhost:9/",
            "http://[::ffff:127.0.0.1]:9/",
        ] {
            assert!(check_push_endpoint(url, &test, &hosts).is_ok(), "{url}");
            assert!(
                check_push_endpoint(url, &strict(), &hosts).is_err(),
                "{url}"
            );
        }
        // The test setting is about loopback only.
        assert!(check_url("http://10.0.0.1/", &test, false).is_err());
        assert!(check_url("http://169.254.169.254/", &test, false).is_err());
        let private = Egress {
            allow_loopback: false,
            allow_nets: vec!["10.0.0.0/8".parse().unwrap()],
        };
        assert!(check_url("http://10.0.0.5:8080/hook", &private, false).is_ok());
        assert!(check_url("http://[::ffff:10.0.0.5]/hook", &private, false).is_ok());
        assert!(check_url("http://192.168.0.5/hook", &private, false).is_err());
        // Internal names are the operator's to use once it listed networks
        // (the resolved address is what is checked then), localhost is not.
        assert!(check_url("http://hooks:8080/x", &private, false).is_ok());
        assert!(check_url("http://hooks.internal/x", &private, false).is_ok());
        assert!(check_url("http://localhost/x", &private, false).is_err());
        assert!(check_url("http://hooks:8080/x", &strict(), false).is_err());
        // ... but never for a follower's own endpoint.
        assert!(check_push_endpoint("https://10.0.0.5/p", &private, &PushHosts::Any).is_err());
    }

    #[test]
    fn addresses_are_judged_by_the_ipv4_address_they_carry() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(non_public(ip("::ffff:127.0.0.1")), Some("loopback"));
        assert_eq!(non_public(ip("64:ff9b::10.0.0.1")), Some("private"));
        assert_eq!(non_public(ip("2002:c0a8:101::1")), Some("private"));
        assert_eq!(non_public(ip("::ffff:8.8.8.8")), None);
        assert_eq!(non_public(ip("::")), Some("unspecified"));
        assert_eq!(non_public(ip("::1")), Some("loopback"));
        assert_eq!(non_public(ip("1.1.1.1")), None);
    }
}
