//! # Sapha's subscriber side
//!
//! What the people who use Sapha run: a client library that keeps a live,
//! gap-free, duplicate-free feed from one of several hubs, and the three
//! programs built on it.
//!
//! ## Layout
//!
//! - [`client`]: connect to a hub's `/v1/ws`, subscribe with topic filters, and
//!   get a [`Stream`](futures::Stream) of [`client::Item`]s. Reconnects with
//!   exponential backoff and jitter, fails over between hubs, resumes from the
//!   last stream sequence it saw and drops duplicates.
//! - [`tail`]: one human-readable line per event, in Thai or English, with
//!   Asia/Bangkok times and Buddhist Era years (`sapha tail`).
//! - [`sink`]: the newsroom consumer: rotated NDJSON files and/or an
//!   HMAC-signed webhook, with a checkpoint that makes restarts exactly-once
//!   (`sapha sink`).
//! - [`notify`]: bill-follow notifications to a push gateway, never sent twice
//!   (`sapha notify`).
//! - `durable`: write-temp-then-rename and fsync helpers shared by sink and notify.
//!
//! This crate depends on `sapha-proto` only: it speaks the hub's wire protocol
//! (docs/PROTOCOL.md) and never links the hub or the publisher.

#![deny(unreachable_pub)]

pub mod client;
mod durable;
pub mod notify;
pub mod sink;
pub mod tail;

pub use client::{
    fetch_bill, fetch_state, snapshot_then_subscribe, ClientBuilder, ClientError, Delivery,
    EventStream, Item, Start,
};
