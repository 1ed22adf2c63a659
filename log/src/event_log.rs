//! The durable log the publisher writes to, as a trait: JetStream in production
//! (`sapha_publisher::jetstream::JetStreamLog`), the in-process bus in `sapha demo`.

use sapha_proto::Event;
use std::future::Future;
use thiserror::Error;

/// What the log says about an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream sequence the event is stored at.
    pub stream_seq: u64,
    /// The log already held an event with this id (deduplicated by `Nats-Msg-Id`).
    pub duplicate: bool,
}

/// One stored event and its place in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub stream_seq: u64,
    pub event: Event,
}

/// Why the log could not append or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LogError {
    /// The log cannot be reached right now; retrying later may succeed.
    #[error("the log is unavailable: {0}")]
    Unavailable(String),
    /// The log refuses this write for good (stream limits reached, disk full,
    /// message too large); retrying will not help.
    #[error("the log refused the write: {0}")]
    Refused(String),
    /// A stored message could not be decoded.
    #[error("a stored message is corrupt: {0}")]
    Corrupt(String),
}

impl LogError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable(_))
    }
}

/// An append-only, deduplicating event log.
pub trait EventLog: Send + Sync + 'static {
    /// Appends one event, deduplicated by its event id, and resolves once the log
    /// has acknowledged it as stored.
    fn append(&self, event: &Event) -> impl Future<Output = Result<Appended, LogError>> + Send;

    /// Every stored event whose subject matches `subject_filter`
    /// (e.g. `parl.v1.bill.b-1.>`), in stream order.
    fn history(
        &self,
        subject_filter: String,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, LogError>> + Send;
}
