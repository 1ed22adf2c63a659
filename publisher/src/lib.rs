//! # Sapha's publisher: sources -> validation -> NATS JetStream
//!
//! Every source feeds the same [`pipeline::Pipeline`], which validates an event,
//! checks it against the aggregate's stored history (the bill's last stage, the
//! per-aggregate sequence), and appends it to the log once, retrying while the log
//! is unavailable.
//!
//! ## Layout
//!
//! - The pipeline writes to an [`sapha_log::EventLog`] (the trait lives in `sapha-log`).
//! - [`jetstream`]: the production log: stream setup, `Nats-Msg-Id` publishes, acks.
//! - [`state`]: what is known of each bill or sitting, rebuilt from the log.
//! - [`pipeline`]: validation, sequence and stage checks, retries with backoff.
//! - [`metrics`]: Prometheus counters.
//! - Sources: [`ingest`] (HTTP `POST /v1/events`), [`file`] (NDJSON file or stdin),
//!   [`player`] (replays scenarios in time) and [`scenario`] (the shipped scenarios).

pub mod file;
pub mod ingest;
pub mod jetstream;
pub mod metrics;
pub mod pipeline;
pub mod player;
pub mod scenario;
pub mod state;
