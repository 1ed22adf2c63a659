//! Where events come from: the small [`EventSource`] trait that the hub reads
//! through. JetStream (`sapha_hub::nats::NatsSource`) is the production path; the
//! in-process bus (`sapha_bus::MemoryBus`, for `sapha demo`) implements the same trait.

use bytes::Bytes;
use futures::stream::BoxStream;
use std::future::Future;
use thiserror::Error;

/// One stored event: its position in the stream and its protobuf `Envelope` bytes
/// (what `Event::encode_proto` produced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// The stream sequence: 1 for the first event ever stored, strictly increasing.
    /// Sequences may have holes (deleted messages); they never go back.
    pub seq: u64,
    pub payload: Bytes,
    /// When the stream stored it (JetStream's message timestamp), for the
    /// delivery lag histogram; `None` when the source does not know.
    pub stored_at: Option<std::time::SystemTime>,
}

/// What the stream holds right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamBounds {
    /// The oldest sequence still stored; `last + 1` when the stream is empty.
    pub first: u64,
    /// The newest sequence stored; 0 when nothing was ever stored.
    pub last: u64,
    /// Changes when the stream is recreated (or restored), so that a client
    /// can tell a position of the old stream from one of the new; empty when
    /// the source cannot tell.
    pub epoch: String,
}

/// Why the source could not answer. The hub retries with backoff; none is fatal.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("the event source is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the event source reconnected; read again from the last sequence")]
    Reconnected,
}

/// The stream of messages from a start sequence on: first what is stored, then
/// live, in sequence order. An `Err` item means "this stream is broken": the hub
/// drops it and calls [`EventSource::read_from`] again from the next sequence it needs.
pub type SourceStream = BoxStream<'static, Result<SourceMessage, SourceError>>;

/// How long [`EventSource::lifecycle_until`]'s default waits for a next message
/// before it takes the stream as read.
const LIFECYCLE_STALL: std::time::Duration = std::time::Duration::from_secs(2);

/// An ordered, replayable log of encoded events.
///
/// The hub calls `read_from` once for its live fan-out, again after any error,
/// and once per client whose resume reaches back beyond the hub's memory.
/// Implementations must yield messages with `seq >= start` in increasing order,
/// and must not end the stream while they are healthy (live reading waits for
/// new messages).
pub trait EventSource: Send + Sync + 'static {
    /// The first and last sequence stored now.
    fn bounds(&self) -> impl Future<Output = Result<StreamBounds, SourceError>> + Send;

    /// Every message with `seq >= start`, then live ones as they are stored.
    fn read_from(
        &self,
        start: u64,
    ) -> impl Future<Output = Result<SourceStream, SourceError>> + Send;

    /// The stored sitting lifecycle messages (`parl.v1.sitting.*.*.lifecycle`)
    /// with `seq <= until`, oldest first. The hub rebuilds from them which
    /// sittings were in camera when, before it fans anything out.
    ///
    /// It may return other messages too: the hub keeps only lifecycle events.
    /// The default reads the whole stream up to `until` (fine for in-process
    /// sources); JetStream reads only the lifecycle subjects.
    fn lifecycle_until(
        &self,
        until: u64,
    ) -> impl Future<Output = Result<Vec<SourceMessage>, SourceError>> + Send {
        async move {
            use futures::StreamExt;
            let mut out = Vec::new();
            if until == 0 {
                return Ok(out);
            }
            let mut stream = self.read_from(1).await?;
            loop {
                let next = tokio::time::timeout(LIFECYCLE_STALL, stream.next()).await;
                match next {
                    Ok(Some(Ok(msg))) => {
                        if msg.seq > until {
                            break;
                        }
                        let done = msg.seq == until;
                        out.push(msg);
                        if done {
                            break;
                        }
                    }
                    Ok(Some(Err(e))) => return Err(e),
                    // Ended, or nothing more is coming (the last ones were deleted).
                    Ok(None) | Err(_) => break,
                }
            }
            Ok(out)
        }
    }

    /// Whether the source is connected (for `/readyz`). In-process sources are
    /// always ready.
    fn is_connected(&self) -> bool {
        true
    }

    /// The newest snapshot of the hub's state stored beside the stream, if any
    /// (see the hub's `state` module). The default stores none.
    fn load_snapshot(&self) -> impl Future<Output = Result<Option<Bytes>, SourceError>> + Send {
        async { Ok(None) }
    }

    /// Stores a snapshot of the hub's state beside the stream, replacing the
    /// one before. The default drops it.
    fn store_snapshot(
        &self,
        snapshot: Bytes,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let _ = snapshot;
        async { Ok(()) }
    }
}
