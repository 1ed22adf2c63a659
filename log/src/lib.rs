//! # Sapha's log traits
//!
//! The two small traits that sit between Sapha's parts and the durable log, so
//! that the publisher, the hub and the in-memory bus agree on them without
//! depending on each other or on NATS.
//!
//! ## Layout
//!
//! - [`event_log`]: [`EventLog`], what the publisher appends to (JetStream in
//!   production, the in-memory bus in `sapha demo`).
//! - [`source`]: [`EventSource`], what the hub reads from: bounds, ordered
//!   reads from a sequence, and the snapshot stored beside the stream.

#![deny(unreachable_pub)]

pub mod event_log;
pub mod source;

pub use event_log::{Appended, EventLog, LogError, StoredEvent};
pub use source::{EventSource, SourceError, SourceMessage, SourceStream, StreamBounds};
