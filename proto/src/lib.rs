//! # Sapha's event contract
//!
//! Everything that the publisher, the hub and the subscribers must agree on, and
//! nothing else: this crate has no async runtime and depends on no crate of ours.
//!
//! ## Layout
//!
//! - [`event`]: the event model and its stable JSON form (docs/EVENTS.md).
//! - [`wire`]: the protobuf form (`schema/sapha/v1/events.proto`) and the mapping to [`Event`].
//! - [`ids`]: the id / subject-token check that keeps a client id from widening a subscription.
//! - [`subject`]: the NATS subject scheme (`parl.v1.bill.<id>.stage`, ...).
//! - [`topic`]: the grammar of the topic filters that clients send.
//! - [`stage`]: bill stages and the one table of legal transitions per bill type.
//! - [`projection`]: the fold of the stream into what is true now (bills, sittings).
//! - [`progress`]: a bill's history as the stage rules need it (waits, returns, deadlines).
//! - [`vote`]: a vote's machine-readable threshold and the check of a tally against it.
//! - [`validate`]: the checks an event must pass before it is written.

pub mod backoff;
pub mod event;
pub mod examples;
pub mod ids;
pub mod progress;
pub mod projection;
pub mod stage;
pub mod subject;
pub mod topic;
pub mod validate;
pub mod vote;
pub mod wire;

pub use event::{Body, Event};
pub use topic::TopicFilter;
