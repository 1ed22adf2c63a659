//! # Sapha's hub
//!
//! Reads the JetStream stream of legislative events with one consumer per
//! process and fans each event out to the WebSocket and SSE clients whose topic
//! filters match it. The protocol is in docs/PROTOCOL.md and docs/asyncapi.yaml.
//!
//! ## Layout
//!
//! - [`config`]: the serde config (file, `SAPHA_HUB__*` environment, then
//!   overrides); the `sapha` binary parses the flags and wires the parts together.
//! - [`nats`]: the JetStream implementation of [`sapha_log::EventSource`], the
//!   trait the hub reads through (the production path).
//! - `consumer`: the one consumer loop: decode once, fan out, reopen after errors.
//! - `hub`: shared state and the resume algorithm (no gap, no duplicate):
//!   `hub::conn` (connections and their queues), `hub::fan_out` (the core lock,
//!   the ring, in-camera withholding), `hub::replay` (resume and catch-up).
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
mod consumer;
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
mod sse;
mod state;
mod trust;
pub mod web;
mod ws;

pub use config::Config;
pub use server::{bind, run, HubError};

/// Connects to NATS as configured and runs the hub until `shutdown` completes,
/// with the follow API's store in the NATS key-value bucket beside the stream.
pub async fn run_with_nats(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), HubError> {
    let source = nats::NatsSource::connect(&config.nats)
        .await
        .map_err(HubError::Nats)?
        .with_snapshot_bucket(&config.state.snapshot_bucket);
    let follows = Box::new(source.clone());
    server::serve(config, listener, Box::new(source), Some(follows), shutdown).await
}

/// Checks what the hub checks at start before it touches the network: the
/// auth section (keys readable and well-formed, anonymous topics valid). A
/// config that [`Config::load`] returned and that passes this starts.
pub fn check(config: &Config) -> Result<(), HubError> {
    auth::Auth::from_config(&config.auth).map_err(HubError::Auth)?;
    Ok(())
}
