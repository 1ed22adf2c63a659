//! # Sapha's hub
//!
//! Reads the JetStream stream of legislative events with one consumer per
//! process and fans each event out to the WebSocket and SSE clients whose topic
//! filters match it. The protocol is in docs/PROTOCOL.md and docs/asyncapi.yaml.
//!
//! ## Layout
//!
//! - [`config`]: the serde config (file, `SAPHA_HUB__*` environment, flags).
//! - [`source`]: the [`EventSource`] trait the hub reads through; [`nats`] is its
//!   JetStream implementation (the production path).
//! - `fanout`: the one consumer loop: decode once, fan out, reopen after errors.
//! - `hub`: shared state: connections, the subscription index, the recent-events
//!   ring, and the resume algorithm (no gap, no duplicate).
//! - `index`: the token trie of topic filters.
//! - [`auth`]: client JWTs and the per-topic grants they carry.
//! - `client_ip`: the address a connection counts as (behind a trusted proxy,
//!   from `X-Forwarded-For`).
//! - `camera`: which sittings were in camera when (never deliver their content).
//! - `prepared`: an event decoded once and encoded once per wire format.
//! - `state` / `search`: the projection of the stream (what is true now), its
//!   snapshots in NATS, and the answers of `GET /v1/bills` and `/v1/sittings`.
//! - [`protocol`]: requests, frames, error codes and close codes.
//! - `ws` / `sse`: one connection each: reader, bounded queue, coalescing writer.
//! - [`metrics`]: counters, rendered as Prometheus text.
//! - `server`: routes, admission limits, health, and [`run`] with graceful shutdown.
//! - `bench_api`: the index, prepared events and queues, for `benches/` only.

#![deny(unreachable_pub)]

pub mod auth;
#[doc(hidden)]
pub mod bench_api;
mod camera;
mod client_ip;
pub mod config;
mod fanout;
mod follow;
mod hub;
mod index;
pub mod metrics;
pub mod nats;
mod prepared;
pub mod protocol;
mod ready;
mod search;
mod server;
pub mod source;
mod sse;
mod state;
mod trust;
pub mod web;
mod ws;

pub use config::Config;
pub use server::{run, HubError};
pub use source::{EventSource, SourceError, SourceMessage, SourceStream, StreamBounds};

/// Connects to NATS as configured and runs the hub until `shutdown` completes.
pub async fn run_with_nats(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let source = nats::NatsSource::connect(&config.nats)
        .await
        .context("connecting to nats")?
        .with_snapshot_bucket(&config.state.snapshot_bucket);
    run(config, listener, source, shutdown)
        .await
        .context("running the hub")
}

/// The command-line flags of `sapha hub` (flatten them into a bigger CLI).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HubArgs {
    /// A TOML config file (see hub/hub.example.toml).
    #[arg(long, short = 'c')]
    pub config: Option<std::path::PathBuf>,
    /// The address to listen on (overrides `listen`).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The NATS URL (overrides `nats.url`).
    #[arg(long)]
    pub nats_url: Option<String>,
    /// The JetStream stream (overrides `nats.stream`).
    #[arg(long)]
    pub stream: Option<String>,
    /// Any other key: `--set limits.max_connections=5000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl HubArgs {
    /// Loads the config: defaults, file, `SAPHA_HUB__*` environment, then these flags.
    pub fn load(&self) -> Result<Config, config::ConfigError> {
        let mut overrides = Vec::new();
        if let Some(listen) = self.listen {
            overrides.push(format!("listen=\"{listen}\""));
        }
        if let Some(url) = &self.nats_url {
            overrides.push(format!("nats.url={}", toml_string(url)));
        }
        if let Some(stream) = &self.stream {
            overrides.push(format!("nats.stream={}", toml_string(stream)));
        }
        overrides.extend(self.set.iter().cloned());
        Config::load(self.config.as_deref(), std::env::vars(), &overrides)
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
