//! # Sapha's benchmarks
//!
//! Criterion micro-benchmarks of the hub's hot paths (`benches/hot_paths.rs`)
//! and `fanout`, a load generator that drives the hub and, as the baseline,
//! nats-server's own WebSocket listener with the same clients, events and
//! accounting. BENCHMARKS.md has the commands and the figures.
//!
//! ## Layout
//!
//! - [`workload`]: the filters, topics and timestamped events both targets get.
//! - [`stats`]: per-client loss and duplicate accounting, latency percentiles.
//! - [`procfs`]: a server process's RSS and CPU seconds from `/proc`.
//! - [`nats_proto`]: the slice of the NATS client protocol the baseline speaks.
//! - [`servers`]: starting nats-server and the `sapha hub` binary as processes.
//! - [`load`]: the clients, the publisher and one measured run.
//! - [`scenarios`]: the five scenarios of issue 4 and the report tables.

pub mod load;
pub mod nats_proto;
pub mod procfs;
pub mod scenarios;
pub mod servers;
pub mod stats;
pub mod workload;
