//! The fan-out's hot paths, exposed for the criterion benchmarks in `benches/`
//! (package `sapha-benches`) and nothing else. Not a stable API: it wraps the
//! private modules so they can stay private.

use crate::hub::Out;
use bytes::Bytes;
use sapha_proto::wire::WireError;
use sapha_proto::TopicFilter;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The subscription index (the private token trie of `index.rs`).
#[derive(Default)]
pub struct Index(crate::index::Index);

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Adds connection `conn` under `filter`; false if it was already there.
    pub fn insert(&mut self, filter: &TopicFilter, conn: u64) -> bool {
        self.0.insert(filter, conn)
    }

    /// Appends every connection with a filter matching `topic` to `out`, as the
    /// fan-out does for each event (possibly with repeats).
    pub fn lookup(&self, topic: &str, out: &mut Vec<u64>) {
        self.0.lookup(topic, out)
    }
}

/// An event decoded once and encoded once per wire format, shared by every
/// connection that receives it.
#[derive(Clone)]
pub struct Prepared(Arc<crate::prepared::Prepared>);

impl Prepared {
    /// Decodes a stored protobuf `Envelope` and builds its JSON frame, as the
    /// fan-out does once per event.
    pub fn decode(seq: u64, payload: Bytes) -> Result<Prepared, WireError> {
        crate::prepared::Prepared::decode(seq, payload).map(|p| Prepared(Arc::new(p)))
    }

    /// The JSON `event` frame.
    pub fn json(&self) -> &str {
        self.0.json().as_str()
    }

    /// The protobuf `HubFrame` (built on first use, then shared).
    pub fn proto(&self) -> &Bytes {
        self.0.proto()
    }

    /// The SSE message (built on first use, then shared).
    pub fn sse(&self) -> &Bytes {
        self.0.sse()
    }
}

/// A connection's bounded outgoing queue, as the fan-out fills it.
pub struct Queue {
    tx: mpsc::Sender<Out>,
    rx: mpsc::Receiver<Out>,
}

impl Queue {
    /// A queue of `frames` slots (`limits.queue_frames`).
    pub fn new(frames: usize) -> Queue {
        let (tx, rx) = mpsc::channel(frames.max(1));
        Queue { tx, rx }
    }

    /// Queues an event without waiting, as the fan-out does; false if the queue
    /// is full (the hub would close that client with 4001).
    pub fn push(&self, event: &Prepared) -> bool {
        self.tx.try_send(Out::Event(event.0.clone())).is_ok()
    }

    /// Takes everything queued, as the writer does; how many frames it took.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

/// The state store (`state.rs`): the projection and the answers of the state
/// API, without HTTP.
#[derive(Default)]
pub struct State(crate::state::StateStore);

struct Everyone;

impl crate::state::Visibility for Everyone {
    fn sees(&self, _: &str) -> bool {
        true
    }

    fn sees_all(&self) -> bool {
        true
    }
}

impl State {
    /// Applies the event at stream position `seq`, as the fan-out does.
    pub fn apply(&self, seq: u64, event: &sapha_proto::Event) {
        self.0.apply(seq, event);
    }

    /// Marks the state built (the hub does so after its start-up replay).
    pub fn set_ready(&self) {
        self.0.set_ready();
    }

    /// `GET /v1/bills` with these query parameters: the body, or `None` for
    /// an answer that is not 200.
    pub fn bills(
        &self,
        params: &std::collections::HashMap<String, String>,
    ) -> Option<serde_json::Value> {
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let params = crate::state::Params::from_pairs(&pairs);
        match self.0.bills(&params, &Everyone, Default::default()) {
            crate::state::Answer::Ok { body, .. } => Some(body),
            _ => None,
        }
    }

    /// `GET /v1/bills/{id}`.
    pub fn bill(&self, id: &str) -> Option<serde_json::Value> {
        match self.0.bill(id, &Everyone, Default::default()) {
            crate::state::Answer::Ok { body, .. } => Some(body),
            _ => None,
        }
    }
}
