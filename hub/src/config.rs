//! The hub's configuration: one serde struct per section, every field documented
//! and defaulted, unknown keys rejected. Layers, lowest first: defaults, a TOML
//! file, `SAPHA_HUB__SECTION__KEY` environment variables, then flags.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// The prefix of environment variables that override config keys:
/// `SAPHA_HUB__LIMITS__MAX_CONNECTIONS=5000` sets `limits.max_connections`.
pub const ENV_PREFIX: &str = "SAPHA_HUB__";

/// Why a configuration cannot be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid toml")]
    Toml {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("override '{0}' is not of the form key.path=value")]
    BadOverride(String),
    #[error("override of '{key}' goes inside '{parent}', which is not a table")]
    NotATable { key: String, parent: String },
    #[error("config key '{path}': {message}")]
    Invalid { path: String, message: String },
}

/// Everything the hub needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The address the HTTP server (WebSocket, SSE, health, metrics) listens on.
    pub listen: SocketAddr,
    /// Bind `listen` with `SO_REUSEPORT`, so that several hub processes on one
    /// machine share one port and the kernel spreads new connections over them
    /// (past one process's descriptor limit; docs/OPERATIONS.md). Every process
    /// on the port must set it.
    pub reuse_port: bool,
    /// Where the events come from.
    pub nats: NatsConfig,
    /// Per-connection and per-process limits.
    pub limits: Limits,
    /// The in-memory history that serves most resumes without asking NATS.
    pub history: HistoryConfig,
    /// WebSocket buffer sizes: small, so that many idle connections stay cheap.
    pub websocket: WebSocketConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Client authentication (JWT) and per-topic grants; off by default.
    pub auth: AuthConfig,
    /// Reverse proxies in front of the hub.
    pub proxy: ProxyConfig,
    /// The state API (`/v1/bills`, `/v1/sittings`) and its snapshots.
    pub state: StateConfig,
    /// The follow API (`/v1/followers`, `/v1/push/key`; docs/NOTIFY.md).
    pub follow: FollowConfig,
}

/// The follow API: anonymous followers of bills, stored in a NATS key-value
/// bucket that the notifier reads (docs/NOTIFY.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FollowConfig {
    /// Serve the follow API. Off: its paths answer 503 `notifications_off`.
    pub enabled: bool,
    /// The key-value bucket (created with the stream's replicas if missing).
    pub bucket: String,
    /// The bucket's replicas when the hub creates it before the event stream
    /// exists (otherwise it has the stream's). 0: as many as the NATS
    /// cluster has servers, at most 3 (1 on a single server).
    pub replicas: usize,
    /// Bills one follower may follow.
    pub max_bills: usize,
    /// Followers one IP address may create per hour (trusted proxies exempt).
    pub followers_per_ip_per_hour: u32,
    /// The scope an integrator's token (a JWT verified with the `[auth]`
    /// keys, sent as `Authorization: Bearer` on `POST /v1/followers`) must
    /// carry to create followers under its own allowance, not its IP's.
    pub integrator_scope: String,
    /// Followers one integrator (a token's `sub`) may create per hour.
    pub integrator_followers_per_hour: u32,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Accept `http://` push endpoints and endpoints on loopback
    /// (`127.0.0.0/8`, `::1`, `localhost`), outside `push_hosts`. For tests on
    /// one machine only: every browser's push service is `https://` on a public
    /// host. No setting lets an endpoint onto a private network.
    pub allow_http_endpoints: bool,
    /// The hosts a Web Push endpoint may name: `host`, or `*.suffix` for any
    /// name under it; `["*"]` takes any public host. The default is the
    /// browsers' push services (docs/NOTIFY.md, "Where notifications may go").
    pub push_hosts: Vec<String>,
    /// Origins (`https://news.example`) whose pages may call the follow API
    /// from a browser: its answers carry CORS headers for them. `*` (the
    /// default) allows any page; `[]` keeps the follow API to the hub's own
    /// pages. Safe to open: the API is called with a follower's secret in
    /// `Authorization: Bearer`, never with cookies, and credentialed CORS is
    /// never allowed, so a page can only act with a secret it already holds.
    #[serde(deserialize_with = "origins")]
    pub allowed_origins: Vec<String>,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            enabled: true,
            bucket: sapha_follows::DEFAULT_BUCKET.into(),
            replicas: 0,
            max_bills: 50,
            followers_per_ip_per_hour: 20,
            integrator_scope: "followers:create".into(),
            integrator_followers_per_hour: 10_000,
            max_body_bytes: 8 * 1024,
            allow_http_endpoints: false,
            push_hosts: sapha_follows::DEFAULT_PUSH_HOSTS
                .iter()
                .map(|h| h.to_string())
                .collect(),
            allowed_origins: vec!["*".into()],
        }
    }
}

impl FollowConfig {
    /// The limits the follow store checks input against.
    pub fn limits(&self) -> sapha_follows::Limits {
        sapha_follows::Limits {
            max_bills: self.max_bills,
            allow_http_endpoints: self.allow_http_endpoints,
            push_hosts: sapha_follows::PushHosts::from_list(&self.push_hosts),
        }
    }
}

/// The state API and its snapshots (docs/STATE.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// How often a snapshot of the state is written to NATS (when it moved), in
    /// milliseconds; one is written at shutdown too. 0 turns snapshots off.
    pub snapshot_interval_ms: u64,
    /// The JetStream object store bucket of the snapshots; empty means
    /// `<stream>_STATE`. It is created with the stream's replicas.
    pub snapshot_bucket: String,
    /// State API requests per second from one IP address (trusted proxies exempt).
    pub requests_per_second: u32,
    /// The burst above that rate.
    pub request_burst: u32,
    /// A secret that keys the `next_cursor` MACs too (HMAC-SHA256), so that a
    /// client cannot forge a cursor. Without it cursors are still bound to
    /// their query and the stream's epoch and refused when edited, foreign or
    /// of a recreated stream, but a determined client could compute one;
    /// that only ever yields a page of a list it may read anyway. Set the same
    /// value on every hub behind one load balancer (a cursor from one hub then
    /// works on the others), and prefer `SAPHA_HUB__STATE__CURSOR_SECRET`.
    pub cursor_secret: Option<Secret>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            snapshot_interval_ms: 300_000,
            snapshot_bucket: String::new(),
            requests_per_second: 20,
            request_burst: 40,
            cursor_secret: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            reuse_port: false,
            nats: NatsConfig::default(),
            limits: Limits::default(),
            history: HistoryConfig::default(),
            websocket: WebSocketConfig::default(),
            shutdown: ShutdownConfig::default(),
            auth: AuthConfig::default(),
            proxy: ProxyConfig::default(),
            state: StateConfig::default(),
            follow: FollowConfig::default(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// The JetStream stream the hub reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// The NATS server URL (several may be given, comma-separated).
    pub url: String,
    /// The JetStream stream that the publisher writes to.
    pub stream: String,
    /// Longest wait between two attempts to reach NATS or the stream, in milliseconds.
    pub max_backoff_ms: u64,
    /// How often the readiness probe asks NATS for the stream's info (one
    /// request per hub, whatever the number of clients), in milliseconds.
    pub health_interval_ms: u64,
    /// How long the probe waits for the answer, in milliseconds. `/readyz`
    /// turns 503 at most `health_interval_ms + health_timeout_ms` after NATS
    /// stops answering (3 s by default).
    pub health_timeout_ms: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            stream: "PARL".into(),
            max_backoff_ms: 2_000,
            health_interval_ms: 1_000,
            health_timeout_ms: 2_000,
        }
    }
}

/// The limits. Each one is announced to clients in the welcome frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most WebSocket + SSE connections this process serves at once; more get HTTP 503.
    pub max_connections: usize,
    /// Most connections from one IP address; more get HTTP 429.
    pub max_connections_per_ip: usize,
    /// Most topic filters one connection may hold.
    pub max_subscriptions: usize,
    /// Largest client message, in bytes. A larger one gets a `frame_too_large`
    /// error frame; one larger than `hard_max_frame_bytes` closes the connection (1009).
    pub max_frame_bytes: usize,
    /// Largest client message the WebSocket layer reads at all, in bytes.
    pub hard_max_frame_bytes: usize,
    /// Sustained client messages per second per connection (token bucket rate).
    pub messages_per_second: u32,
    /// Client messages a connection may send in a burst (token bucket size).
    pub message_burst: u32,
    /// Frames that may wait in one connection's outgoing queue. A client whose
    /// queue is full falls back to being served from the ring of recent events
    /// (`history.cache_events`) until it has caught up; one that falls behind
    /// the ring is disconnected as a slow consumer (close code 4001).
    pub queue_frames: usize,
    /// A client being served history (a resume, or catching up after its queue
    /// filled) that accepts no frame for this long is disconnected as a slow
    /// consumer (4001), in milliseconds.
    pub stall_timeout_ms: u64,
    /// A connection from which nothing (not even a pong) arrives for this long is
    /// closed (4002), in milliseconds.
    pub idle_timeout_ms: u64,
    /// How often the hub pings each client (WebSocket ping, SSE comment), in milliseconds.
    pub ping_interval_ms: u64,
    /// How long a WebSocket connection's writer waits, once woken by a frame,
    /// for more to join the same socket write, in milliseconds (0 = write at
    /// once). Fewer writes per delivery, at most this much more latency.
    pub write_delay_ms: u64,
    /// Browser origins allowed to use the hub's public read side: to connect
    /// to `/v1/ws` and `/v1/sse` (another origin gets HTTP 403), and to read
    /// the state API, `/v1/sse`, `/sapha.js` and the dashboard's files from a
    /// page (their answers carry CORS headers for it). `*` allows any; a
    /// request without an `Origin` header (curl, servers) is always allowed.
    /// Each entry is `*` or an origin as browsers send it:
    /// `scheme://host[:port]`, no path.
    #[serde(deserialize_with = "origins")]
    pub allowed_origins: Vec<String>,
    /// Resumes that may read history from NATS at once (the rest wait their turn).
    pub max_concurrent_replays: usize,
    /// Longest time a connection with no request in progress may take to send
    /// a complete HTTP request head, in milliseconds: from accept, and between
    /// keep-alive requests, whatever the protocol (HTTP/1, HTTP/2, or silence).
    /// A slower one (slowloris, silent sockets) is closed.
    pub header_read_timeout_ms: u64,
    /// Most connections, in total, with no request in progress: not yet sent a
    /// complete first request head, or idle between keep-alive requests. Over
    /// it, the oldest such connection is closed to make room.
    pub max_pending_connections: usize,
    /// Most such connections from one IP. Over it, that IP's oldest such
    /// connection is closed. Trusted proxies (`proxy.trusted`) are exempt.
    pub max_pending_connections_per_ip: usize,
    /// How long a connection must have had no request in progress before a
    /// pending cap may close it, in milliseconds; one with bytes waiting
    /// unread (a request head not yet read) is never closed by a cap.
    /// Younger ones may take an address (or the total) over its cap for that
    /// long, as in a reconnect storm; the descriptor budget (`fd_reserve`)
    /// still holds at once.
    pub pending_min_age_ms: u64,
    /// File descriptors kept free below the process limit (`ulimit -n`, whose
    /// soft value the hub raises to the hard one) for NATS, files and health
    /// checks. At the rest, a new connection takes the place of the oldest
    /// connection with no request in progress; with none, it is closed at accept.
    pub fd_reserve: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            max_connections_per_ip: 200,
            max_subscriptions: 100,
            max_frame_bytes: 4_096,
            hard_max_frame_bytes: 65_536,
            messages_per_second: 20,
            message_burst: 40,
            queue_frames: 512,
            stall_timeout_ms: 15_000,
            idle_timeout_ms: 60_000,
            ping_interval_ms: 20_000,
            write_delay_ms: 0,
            allowed_origins: vec!["*".into()],
            max_concurrent_replays: 16,
            header_read_timeout_ms: 10_000,
            max_pending_connections: 1_024,
            max_pending_connections_per_ip: 64,
            pending_min_age_ms: 2_000,
            fd_reserve: 64,
        }
    }
}

impl Limits {
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms.max(1))
    }

    pub fn write_delay(&self) -> Duration {
        Duration::from_millis(self.write_delay_ms)
    }

    /// The accept loop's limits; trusted proxies are exempt from the per-IP
    /// pending cap.
    pub fn edge(&self, proxy: &ProxyConfig) -> sapha_edge::EdgeLimits {
        sapha_edge::EdgeLimits {
            request_deadline: Duration::from_millis(self.header_read_timeout_ms.max(1)),
            max_pending: self.max_pending_connections,
            max_pending_per_ip: self.max_pending_connections_per_ip,
            pending_min_age: Duration::from_millis(self.pending_min_age_ms),
            fd_reserve: self.fd_reserve,
            exempt: proxy.trusted.clone(),
        }
    }

    /// Whether a browser at `origin` may connect.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        origin_listed(&self.allowed_origins, origin)
    }
}

/// Whether `origin` is in `list` (`*` is every origin; case does not matter).
pub(crate) fn origin_listed(list: &[String], origin: &str) -> bool {
    list.iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

/// Reads a list of origins: each `*` or `scheme://host[:port]` as a browser
/// sends it in `Origin`. A path, even a trailing `/`, is refused: it would
/// never match, and the page would be refused with no hint why.
fn origins<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error as _;
    let list = Vec::<String>::deserialize(d)?;
    for o in &list {
        if o != "*" && !is_origin(o) {
            return Err(D::Error::custom(format!(
                "'{o}' is not an origin: write * or scheme://host[:port], no path \
                 (https://news.example, http://localhost:3000)"
            )));
        }
    }
    Ok(list)
}

fn is_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
    scheme_ok && host_ok
}

/// Reverse proxies (TLS terminators, load balancers) in front of the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Addresses or CIDR ranges (`127.0.0.1`, `10.0.0.0/8`, `::1/128`) of the
    /// proxies whose `X-Forwarded-For` the hub believes. A connection from one
    /// of them counts against `limits.max_connections_per_ip` as the nearest
    /// address in that header that is not itself trusted. Empty (the default):
    /// the header is ignored and the TCP peer counts.
    #[serde(deserialize_with = "nets")]
    pub trusted: Vec<ipnet::IpNet>,
}

/// Reads CIDR ranges and bare addresses (a bare address is a /32 or /128).
/// IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`) become IPv4 ranges, as
/// peers are compared in their IPv4 form.
fn nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    use serde::de::Error as _;
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(ipv4_form)
                .map_err(|_| {
                    D::Error::custom(format!(
                        "'{s}' is not an address or a CIDR range like 10.0.0.0/8"
                    ))
                })
        })
        .collect()
}

fn ipv4_form(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(ipnet::IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// The recent-events cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// How many of the latest events the hub keeps in memory (already encoded),
    /// so that a client resuming within them is served without NATS.
    pub cache_events: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            cache_events: 10_000,
        }
    }
}

/// WebSocket buffers, per connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Read buffer, in bytes (tungstenite's default is 128 KiB; clients send little,
    /// and a larger message is still read, in several reads). Most of an idle
    /// connection's memory.
    pub read_buffer_bytes: usize,
    /// Bytes buffered before a write reaches the socket; the writer flushes after
    /// each batch of up to 16 queued frames anyway.
    pub write_buffer_bytes: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            read_buffer_bytes: 1_024,
            write_buffer_bytes: 16_384,
        }
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long clients get to receive their close frame (1001) and go, in milliseconds.
    pub drain_timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout_ms: 10_000,
        }
    }
}

/// Whether clients must, may or need not present a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication; every client may subscribe to anything.
    #[default]
    Off,
    /// A token is checked if given; without one a client gets `anonymous_topics`.
    Optional,
    /// Every client needs a valid token (HTTP 401 otherwise).
    Required,
}

impl AuthMode {
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Optional => "optional",
            AuthMode::Required => "required",
        }
    }
}

/// A secret string: never shown by `Debug` (the config is printed in logs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Client authentication: JWT on WebSocket and SSE connections (docs/SECURITY.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `off` (default), `optional` or `required`.
    pub mode: AuthMode,
    /// The HS256 shared secret. Prefer `hs256_secret_file` or the environment
    /// (`SAPHA_HUB__AUTH__HS256_SECRET`) to writing it in a file under version control.
    pub hs256_secret: Option<Secret>,
    /// A file holding the HS256 secret (trailing whitespace is ignored).
    pub hs256_secret_file: Option<std::path::PathBuf>,
    /// A PEM file with the RSA public key that verifies RS256 tokens.
    pub rs256_public_key_file: Option<std::path::PathBuf>,
    /// If set, the `iss` claim must equal it.
    pub issuer: Option<String>,
    /// If set, the `aud` claim must contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// The claim listing the topic filters a token grants, e.g. `["sitting.>"]`.
    pub topics_claim: String,
    /// What a client without a token may subscribe to (mode `optional`); a
    /// token's grant is added to it.
    pub anonymous_topics: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Off,
            hs256_secret: None,
            hs256_secret_file: None,
            rs256_public_key_file: None,
            issuer: None,
            audience: None,
            leeway_secs: 30,
            topics_claim: "topics".into(),
            anonymous_topics: vec!["bill.>".into(), "sitting.>".into()],
        }
    }
}

impl Config {
    /// Loads the config: defaults, then `file` (if any), then `SAPHA_HUB__*`
    /// variables from `env`, then `overrides` (`key.path=value`, from flags).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|source| ConfigError::Toml {
                    path: path.display().to_string(),
                    source,
                })?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            if let Some(path) = key.strip_prefix(ENV_PREFIX) {
                let path = path.to_ascii_lowercase().replace("__", ".");
                set_path(&mut table, &path, &value)?;
            }
        }
        for item in overrides {
            let (path, value) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
            set_path(&mut table, path.trim(), value.trim())?;
        }
        Config::from_table(table)
    }

    /// Parses a TOML document (used by tests and by `load`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table = toml::from_str::<toml::Table>(text).map_err(|source| ConfigError::Toml {
            path: "<string>".into(),
            source,
        })?;
        Config::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError::Invalid {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            }
        })
    }
}

/// Sets `a.b.c = value` in `table`. The value is read as TOML when it parses as
/// one (numbers, booleans, arrays) and as a plain string otherwise.
fn set_path(table: &mut toml::Table, path: &str, raw: &str) -> Result<(), ConfigError> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(ConfigError::BadOverride(format!("{path}={raw}")));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a non-empty path");
    let mut current = table;
    let mut walked = String::new();
    for part in parts {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::NotATable {
                    key: path.to_owned(),
                    parent: walked,
                })
            }
        };
    }
    current.insert(last.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, Vec::new(), &[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.nats.stream, "PARL");
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("sapha-hub-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hub.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[limits]\nmax_connections = 10\nmax_subscriptions = 7\n",
        )
        .unwrap();
        let env = vec![
            (
                "SAPHA_HUB__LIMITS__MAX_CONNECTIONS".to_string(),
                "20".to_string(),
            ),
            ("SAPHA_HUB__NATS__STREAM".to_string(), "OTHER".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let flags = vec![
            "limits.max_subscriptions=3".to_string(),
            "limits.allowed_origins=[\"https://a.example\"]".to_string(),
        ];
        let c = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.max_connections, 20);
        assert_eq!(c.limits.max_subscriptions, 3);
        assert_eq!(c.nats.stream, "OTHER");
        assert_eq!(c.limits.allowed_origins, ["https://a.example"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unknown_keys_are_errors_with_their_path() {
        let e = Config::from_toml("[limits]\nmax_conections = 1\n").unwrap_err();
        assert!(matches!(&e, ConfigError::Invalid { path, .. } if path.starts_with("limits")));
        let e = Config::load(
            None,
            vec![("SAPHA_HUB__NOPE".to_string(), "1".to_string())],
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{e}");
        assert!(matches!(
            Config::load(None, Vec::new(), &["x".to_string()]),
            Err(ConfigError::BadOverride(_))
        ));
    }

    #[test]
    fn origins() {
        let mut l = Limits::default();
        assert!(l.origin_allowed("https://anything.example"));
        l.allowed_origins = vec!["https://parliament.go.th".into()];
        assert!(l.origin_allowed("https://PARLIAMENT.go.th"));
        assert!(!l.origin_allowed("https://evil.example"));
        for good in [
            "*",
            "https://news.example",
            "http://localhost:3000",
            "http://[::1]:8080",
        ] {
            let flag = format!("limits.allowed_origins=[\"{good}\"]");
            assert!(Config::load(None, Vec::new(), &[flag]).is_ok(), "{good}");
        }
        for bad in [
            "https://news.example/",
            "news.example",
            "https://a.example/page",
            "*.example",
        ] {
            for key in ["limits", "follow"] {
                let flag = format!("{key}.allowed_origins=[\"{bad}\"]");
                let e = Config::load(None, Vec::new(), &[flag]).unwrap_err();
                assert!(e.to_string().contains("allowed_origins"), "{bad}: {e}");
            }
        }
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let flags = [
            "proxy.trusted=[\"127.0.0.1\", \"10.0.0.0/8\", \"::1\", \"::ffff:192.0.2.0/120\"]"
                .to_string(),
        ];
        let c = Config::load(None, Vec::new(), &flags).unwrap();
        let shown: Vec<String> = c.proxy.trusted.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            shown,
            ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "192.0.2.0/24"]
        );
        let bad = ["proxy.trusted=[\"10.0.0.0/33\"]".to_string()];
        let e = Config::load(None, Vec::new(), &bad).unwrap_err();
        assert!(e.to_string().contains("proxy.trusted"), "{e}");
    }
}
