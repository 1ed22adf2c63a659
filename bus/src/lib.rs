//! The in-process bus behind `sapha demo` and the hub's unit tests: an
//! append-only, deduplicating log in memory that implements both the
//! publisher's [`EventLog`] and the hub's [`EventSource`], so the demo runs the
//! same pipeline and the same hub as production, without NATS. It is not
//! durable; production uses JetStream.

#![deny(unreachable_pub)]

use bytes::Bytes;
use futures::StreamExt;
use sapha_log::{
    Appended, EventLog, EventSource, LogError, SourceError, SourceMessage, SourceStream,
    StoredEvent, StreamBounds,
};
use sapha_proto::Event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Most events the demo bus keeps; past this it refuses writes, like a full stream.
pub const MAX_EVENTS: usize = 1_000_000;

struct Stored {
    subject: String,
    payload: Bytes,
}

#[derive(Default)]
struct Log {
    /// Message `i` has stream sequence `i + 1`.
    messages: Vec<Stored>,
    seq_of_id: HashMap<String, u64>,
}

/// The in-memory bus. Clones share the same log.
#[derive(Clone)]
pub struct MemoryBus {
    /// Guards the log; held only for short synchronous sections, never across `.await`.
    log: Arc<Mutex<Log>>,
    /// The last stored sequence, so that live readers wake when it moves.
    last: watch::Sender<u64>,
    /// This log's epoch: a new bus (a restarted demo) is a new stream.
    epoch: String,
    /// The hub's newest state snapshot, kept beside the log as NATS keeps it
    /// in an object store.
    snapshot: Arc<Mutex<Option<Bytes>>>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus {
            log: Arc::default(),
            last: watch::channel(0).0,
            epoch: format!("{:x}", rand::random::<u64>()),
            snapshot: Arc::default(),
        }
    }
}

/// NATS subject matching: `*` is one token, `>` the rest.
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in filter.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

impl EventLog for MemoryBus {
    async fn append(&self, event: &Event) -> Result<Appended, LogError> {
        let seq = {
            let mut log = self.log.lock().expect("bus lock poisoned");
            if let Some(&seq) = log.seq_of_id.get(&event.event_id) {
                return Ok(Appended {
                    stream_seq: seq,
                    duplicate: true,
                });
            }
            if log.messages.len() >= MAX_EVENTS {
                return Err(LogError::Refused(format!(
                    "the demo bus holds {MAX_EVENTS} events"
                )));
            }
            log.messages.push(Stored {
                subject: event.subject(),
                payload: event.encode_proto().into(),
            });
            let seq = log.messages.len() as u64;
            log.seq_of_id.insert(event.event_id.clone(), seq);
            seq
        };
        self.last.send_replace(seq);
        Ok(Appended {
            stream_seq: seq,
            duplicate: false,
        })
    }

    async fn history(&self, subject_filter: String) -> Result<Vec<StoredEvent>, LogError> {
        let log = self.log.lock().expect("bus lock poisoned");
        log.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| subject_matches(&subject_filter, &m.subject))
            .map(|(i, m)| {
                let event = Event::decode_proto(&m.payload)
                    .map_err(|e| LogError::Corrupt(e.to_string()))?;
                Ok(StoredEvent {
                    stream_seq: i as u64 + 1,
                    event,
                })
            })
            .collect()
    }
}

impl MemoryBus {
    /// Stored messages from `start` on, at most `max` of them.
    fn read_batch(&self, start: u64, max: usize) -> Vec<SourceMessage> {
        let log = self.log.lock().expect("bus lock poisoned");
        let from = start.saturating_sub(1) as usize;
        log.messages
            .iter()
            .enumerate()
            .skip(from)
            .take(max)
            .map(|(i, m)| SourceMessage {
                seq: i as u64 + 1,
                payload: m.payload.clone(),
                stored_at: None,
            })
            .collect()
    }
}

impl EventSource for MemoryBus {
    async fn bounds(&self) -> Result<StreamBounds, SourceError> {
        let last = *self.last.borrow();
        Ok(StreamBounds {
            first: 1,
            last,
            epoch: self.epoch.clone(),
        })
    }

    async fn read_from(&self, start: u64) -> Result<SourceStream, SourceError> {
        let bus = self.clone();
        let watcher = self.last.subscribe();
        let stream = futures::stream::unfold(
            (bus, watcher, start.max(1)),
            |(bus, mut watcher, next)| async move {
                loop {
                    let batch = bus.read_batch(next, 256);
                    if let Some(last) = batch.last() {
                        let next = last.seq + 1;
                        return Some((futures::stream::iter(batch), (bus, watcher, next)));
                    }
                    // Caught up: wait until something new is stored.
                    if watcher.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
        .flat_map(|batch| batch.map(Ok));
        Ok(stream.boxed())
    }

    async fn load_snapshot(&self) -> Result<Option<Bytes>, SourceError> {
        Ok(self
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    async fn store_snapshot(&self, snapshot: Bytes) -> Result<(), SourceError> {
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_proto::examples::one_of_each_kind;

    #[tokio::test]
    async fn a_snapshot_is_kept_beside_the_log() {
        let bus = MemoryBus::default();
        assert_eq!(bus.load_snapshot().await.unwrap(), None);
        bus.store_snapshot(Bytes::from_static(b"state"))
            .await
            .unwrap();
        assert_eq!(
            bus.load_snapshot().await.unwrap().as_deref(),
            Some(&b"state"[..])
        );
    }

    #[test]
    fn subjects_match_like_nats() {
        assert!(subject_matches(
            "parl.v1.bill.b-1.>",
            "parl.v1.bill.b-1.stage"
        ));
        assert!(!subject_matches(
            "parl.v1.bill.b-1.>",
            "parl.v1.bill.b-10.stage"
        ));
        assert!(subject_matches(
            "parl.v1.*.b-1.stage",
            "parl.v1.bill.b-1.stage"
        ));
        assert!(!subject_matches(
            "parl.v1.bill.b-1",
            "parl.v1.bill.b-1.stage"
        ));
    }

    #[tokio::test]
    async fn appends_dedupe_and_live_readers_see_everything_in_order() {
        let bus = MemoryBus::default();
        let events = one_of_each_kind();
        let mut reader = bus.read_from(1).await.unwrap();
        for e in &events {
            assert!(!bus.append(e).await.unwrap().duplicate);
        }
        assert!(bus.append(&events[0]).await.unwrap().duplicate);
        for (i, e) in events.iter().enumerate() {
            let m = reader.next().await.unwrap().unwrap();
            assert_eq!(m.seq, i as u64 + 1);
            assert_eq!(
                Event::decode_proto(&m.payload).unwrap().event_id,
                e.event_id
            );
        }
        let bounds = bus.bounds().await.unwrap();
        assert_eq!((bounds.first, bounds.last), (1, 15));
        assert!(!bounds.epoch.is_empty());
        assert_ne!(
            bounds.epoch,
            MemoryBus::default().bounds().await.unwrap().epoch
        );
        let history = bus.history("parl.v1.bill.>".into()).await.unwrap();
        assert_eq!(history.len(), 1);
        let mut from_ten = bus.read_from(10).await.unwrap();
        assert_eq!(from_ten.next().await.unwrap().unwrap().seq, 10);
    }
}
