//! The notifier's outbound HTTP: the egress policy of `sapha_follows::target`
//! enforced at connect time, so that a name which passed the follow API's
//! check and then resolves to a private address (DNS rebinding, or a record
//! written straight into the bucket) is never connected to.
//!
//! - A resolver ([`GuardedResolver`]) drops every non-public address a name
//!   resolves to, and fails when none is left.
//! - reqwest does not resolve IP-literal hosts, so [`check_before_send`]
//!   checks every URL (literal or name) before a request is made.
//! - No redirects (a `3xx` is an answer, not a new target), and no proxy from
//!   the environment (a proxy would resolve the name itself).

use futures::future::BoxFuture;
use sapha_follows::target::{check_ip, check_url, BlockedTarget};
use sapha_follows::Egress;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How names are looked up: the system resolver, or (tests) a fixed table.
#[derive(Clone, Default)]
pub enum Lookup {
    /// `getaddrinfo`, through tokio.
    #[default]
    System,
    /// Names to addresses, for tests of the resolver's filter.
    Static(Arc<HashMap<String, Vec<IpAddr>>>),
}

impl Lookup {
    fn resolve(&self, name: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        match self {
            Lookup::System => Box::pin(async move {
                let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
                Ok(addrs.map(|a| a.ip()).collect())
            }),
            Lookup::Static(table) => {
                let found = table.get(&name).cloned();
                Box::pin(async move {
                    found.ok_or_else(|| std::io::Error::other(format!("no such name: {name}")))
                })
            }
        }
    }
}

/// A reqwest resolver that keeps only the addresses `egress` allows.
pub struct GuardedResolver {
    egress: Egress,
    lookup: Lookup,
}

impl GuardedResolver {
    pub fn new(egress: Egress, lookup: Lookup) -> GuardedResolver {
        GuardedResolver { egress, lookup }
    }

    /// The allowed addresses of `name`, or [`BlockedTarget::Resolved`] when
    /// it resolves to none that is allowed.
    pub async fn allowed(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let all = self
            .lookup
            .resolve(name.to_owned())
            .await
            .map_err(ResolveError::Lookup)?;
        let kept: Vec<IpAddr> = all
            .iter()
            .copied()
            .filter(|ip| check_ip(*ip, &self.egress).is_ok())
            .collect();
        if kept.is_empty() && !all.is_empty() {
            tracing::warn!(name, addresses = ?all, "a target name resolves to no public address");
            return Err(ResolveError::Blocked(BlockedTarget::Resolved(
                name.to_owned(),
            )));
        }
        Ok(kept)
    }
}

/// Why a name yields no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Blocked(BlockedTarget),
    #[error("cannot resolve: {0}")]
    Lookup(#[source] std::io::Error),
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.egress.clone();
        let lookup = self.lookup.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let guard = GuardedResolver { egress, lookup };
            let kept = guard.allowed(&name).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(kept.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// An HTTP client that connects only where `egress` allows: the guarded
/// resolver, no redirects, no proxy.
pub fn client(
    egress: &Egress,
    lookup: Lookup,
    timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(256)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(egress.clone(), lookup)))
        .build()
}

/// Checks a URL before a request to it (the resolver never sees an
/// IP-literal host). `https_only`: Web Push endpoints.
pub fn check_before_send(
    url: &str,
    egress: &Egress,
    https_only: bool,
) -> Result<(), BlockedTarget> {
    check_url(url, egress, https_only).map(|_| ())
}

/// The refusal inside a reqwest error, when the guarded resolver refused.
pub fn blocked_in(error: &reqwest::Error) -> Option<BlockedTarget> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(ResolveError::Blocked(b)) = e.downcast_ref::<ResolveError>() {
            return Some(b.clone());
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[&str])]) -> Lookup {
        Lookup::Static(Arc::new(
            entries
                .iter()
                .map(|(n, ips)| {
                    (
                        n.to_string(),
                        ips.iter().map(|i| i.parse().unwrap()).collect(),
                    )
                })
                .collect(),
        ))
    }

    #[tokio::test]
    async fn the_resolver_drops_non_public_addresses() {
        let lookup = table(&[
            ("rebind.example", &["127.0.0.1"]),
            (
                "mixed.example",
                &["10.0.0.1", "8.8.8.8", "::1", "2606:4700::1"],
            ),
            (
                "metadata.example",
                &["169.254.169.254", "::ffff:169.254.169.254"],
            ),
        ]);
        let strict = GuardedResolver::new(Egress::default(), lookup.clone());
        assert!(matches!(
            strict.allowed("rebind.example").await,
            Err(ResolveError::Blocked(BlockedTarget::Resolved(_)))
        ));
        assert!(matches!(
            strict.allowed("metadata.example").await,
            Err(ResolveError::Blocked(_))
        ));
        let kept = strict.allowed("mixed.example").await.unwrap();
        assert_eq!(
            kept,
            vec![
                "8.8.8.8".parse::<IpAddr>().unwrap(),
                "2606:4700::1".parse().unwrap()
            ]
        );
        let test = GuardedResolver::new(
            Egress {
                allow_loopback: true,
                allow_nets: Vec::new(),
            },
            lookup,
        );
        assert_eq!(test.allowed("rebind.example").await.unwrap().len(), 1);
    }

    /// The system resolver's answer for `localhost` (loopback) is dropped:
    /// what a rebinding name that passed every name check would meet.
    #[tokio::test]
    async fn the_system_resolvers_loopback_answer_is_dropped() {
        let guard = GuardedResolver::new(Egress::default(), Lookup::System);
        match guard.allowed("localhost").await {
            Err(ResolveError::Blocked(BlockedTarget::Resolved(name))) => {
                assert_eq!(name, "localhost")
            }
            other => panic!("localhost resolved to something allowed: {other:?}"),
        }
        let test = GuardedResolver::new(
            Egress {
                allow_loopback: true,
                allow_nets: Vec::new(),
            },
            Lookup::System,
        );
        assert!(test
            .allowed("localhost")
            .await
            .unwrap()
            .iter()
            .all(|ip| ip.is_loopback()));
    }

    /// Through reqwest: a name resolving to a loopback listener is never
    /// connected to, and the error says why.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_never_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let server = tokio::spawn(async move {
            while let Ok((_s, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let lookup = table(&[("rebind.example", &["127.0.0.1"])]);
        let http = client(&Egress::default(), lookup, Duration::from_secs(5)).unwrap();
        let error = http
            .post(format!("http://rebind.example:{port}/push"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            blocked_in(&error),
            Some(BlockedTarget::Resolved("rebind.example".into()))
        );
        // And the IP literal is refused before any request.
        assert!(check_before_send(
            &format!("http://127.0.0.1:{port}/"),
            &Egress::default(),
            false
        )
        .is_err());
        // A request to a public-looking name that reaches the listener would
        // have been accepted by now: the accept loop is idle.
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
        server.abort();
    }
}
