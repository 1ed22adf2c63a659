//! The Rust client library: a live, resumable feed of events from one of
//! several hubs.
//!
//! [`ClientBuilder::subscribe`] spawns one task that owns the WebSocket. The
//! task reads the hub's JSON frames and hands [`Item`]s to the returned
//! [`EventStream`] through a bounded channel. When the connection drops, the
//! task waits (exponential backoff with jitter), connects to the next hub in
//! its list, and subscribes again with `since` = the last stream sequence it
//! delivered, so the hub replays exactly what was missed. Anything at or below
//! that sequence, and any event id among the last few thousand, is dropped.

mod dedupe;
mod frame;
mod session;
mod state;

pub use sapha_proto::backoff::Backoff;
pub use state::{fetch_bill, fetch_state, snapshot_then_subscribe};

use futures::Stream;
use sapha_proto::topic::TopicError;
use sapha_proto::{Event, TopicFilter};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

/// Items buffered between the connection task and the consumer by default.
/// A consumer that falls further behind stops the task from reading, and the
/// hub eventually drops the connection as a slow consumer; the client then
/// reconnects and resumes, so nothing is lost.
pub const DEFAULT_BUFFER: usize = 1024;
/// Event ids remembered for de-duplication by default.
pub const DEFAULT_DEDUPE_IDS: usize = 4096;

/// Where a new client starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Only events published after the subscription (the default).
    #[default]
    Live,
    /// Everything the stream still holds, then live. History that retention
    /// already removed is not reported as lost: none was asked for.
    Beginning,
    /// Every event after this stream sequence (a saved checkpoint), then live.
    After(u64),
}

/// One event as delivered by a hub.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The JetStream stream sequence: the same on every hub, and the position
    /// to resume after.
    pub seq: u64,
    /// The event's topic (its subject without `parl.v1.`).
    pub topic: String,
    /// A second topic it is delivered on, e.g. `bill.<id>.vote` for a vote on a bill.
    pub secondary_topic: Option<String>,
    pub event: Event,
}

/// What an [`EventStream`] yields.
// Nearly every item is an event: boxing it to shrink the rare variants would
// cost an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Item {
    /// An event, once, in stream order.
    Event(Delivery),
    /// Subscribed on a hub (the first time, or again after a reconnect).
    Connected {
        url: String,
        /// The hub's id for this connection, for its logs.
        session: String,
        /// The position the subscription resumed after, if any.
        resumed_after: Option<u64>,
        /// The stream's epoch (empty: the hub cannot tell): the positions
        /// delivered from here on belong to it. Save it with a checkpoint and
        /// give it back to [`ClientBuilder::resume_epoch`].
        epoch: String,
    },
    /// The connection was lost; the client is reconnecting by itself.
    Disconnected { url: String, reason: String },
    /// The hub no longer holds the events after `since` up to `first_seq`
    /// (retention removed them): those are lost. Events continue from `first_seq`.
    HistoryLost { since: u64, first_seq: u64 },
    /// The hub's stream does not reach the position `since` (it was recreated,
    /// or restored from a backup with fewer events): the client has started
    /// again from `first_seq`, so events it had seen may come again under new
    /// sequences (those in its id window are still dropped). An app should
    /// reload the state it built from the stream.
    StreamReset { since: u64, first_seq: u64 },
}

impl Item {
    /// The delivery, if this item is an event.
    pub fn into_event(self) -> Option<Delivery> {
        match self {
            Item::Event(d) => Some(d),
            _ => None,
        }
    }
}

/// Why a client stopped. Connection trouble is not an error: the client
/// reconnects by itself and yields [`Item::Disconnected`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("no hub url given")]
    NoUrl,
    #[error("no topic filter given")]
    NoTopic,
    #[error("invalid hub url '{url}': expected ws://, wss://, http:// or https://")]
    InvalidUrl { url: String },
    #[error("invalid topic filter '{topic}'")]
    InvalidTopic {
        topic: String,
        #[source]
        source: TopicError,
    },
    /// The hub refused the subscription (an `error` frame answering it).
    #[error("the hub refused the subscription: {code}: {message}")]
    Rejected { code: String, message: String },
    #[error("gave up after {attempts} failed connection attempts; last: {last}")]
    GaveUp { attempts: u32, last: String },
    /// The hub's state API did not answer, or answered an error (docs/STATE.md).
    #[error("reading the state at {url}: {message}")]
    State {
        url: String,
        /// The HTTP status of an error answer; `None` when there was no answer.
        status: Option<u16>,
        message: String,
    },
}

impl ClientError {
    /// Whether the state API answered 404: no such bill or sitting (yet).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ClientError::State {
                status: Some(404),
                ..
            }
        )
    }
}

/// The settings of one client, fixed when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) urls: Vec<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) start: Start,
    /// The stream epoch a [`Start::After`] position belongs to, if known.
    pub(crate) resume_epoch: Option<String>,
    pub(crate) backoff: Backoff,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) dedupe_ids: usize,
    pub(crate) buffer: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Option<Duration>,
}

/// Configures and starts a client.
///
/// ```no_run
/// use futures::StreamExt;
/// use sapha_subscribers::{ClientBuilder, Item, Start};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), sapha_subscribers::ClientError> {
/// let mut events = ClientBuilder::new()
///     // Two hubs: when one goes away, the client moves to the other.
///     .url("ws://hub-a.example:8080/v1/ws")
///     .url("ws://hub-b.example:8080/v1/ws")
///     // Every stage change, and everything about one bill.
///     .topic("bill.*.stage")
///     .topic("bill.b-2566-0123")
///     // Resume after a sequence saved earlier.
///     .start(Start::After(41))
///     // Reconnect after 200 ms, 400 ms, ... up to 5 s, with jitter.
///     .backoff(Duration::from_millis(200), Duration::from_secs(5))
///     .subscribe()?;
/// while let Some(item) = events.next().await {
///     match item? {
///         Item::Event(d) => println!("{} {} {}", d.seq, d.topic, d.event.event_id),
///         Item::HistoryLost { since, first_seq } => {
///             eprintln!("events {since}..{first_seq} are gone from the hub")
///         }
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// A builder with no hub and no topic yet, starting live.
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            config: Config {
                urls: Vec::new(),
                topics: Vec::new(),
                start: Start::Live,
                resume_epoch: None,
                backoff: Backoff::default(),
                max_attempts: None,
                dedupe_ids: DEFAULT_DEDUPE_IDS,
                buffer: DEFAULT_BUFFER,
                connect_timeout: Duration::from_secs(5),
                read_timeout: None,
            },
        }
    }

    /// Adds a hub. `ws://host:port` gets the path `/v1/ws`; `http(s)://` is
    /// read as `ws(s)://`. With several hubs the client tries the next one
    /// after each failure, round robin.
    ///
    /// ```
    /// let b = sapha_subscribers::ClientBuilder::new().url("http://127.0.0.1:8080");
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.urls.push(url.into());
        self
    }

    /// Adds several hubs (see [`url`](Self::url)).
    pub fn urls<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
        self.config.urls.extend(urls.into_iter().map(Into::into));
        self
    }

    /// Adds a topic filter: NATS-style, `*` one token, `>` the rest, and a
    /// shorter filter matches as a prefix (`bill.b-2566-0123` = all of that bill).
    pub fn topic(mut self, filter: impl Into<String>) -> Self {
        self.config.topics.push(filter.into());
        self
    }

    /// Adds several topic filters.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, filters: I) -> Self {
        self.config
            .topics
            .extend(filters.into_iter().map(Into::into));
        self
    }

    /// Where to start: live (default), the beginning, or after a saved sequence.
    pub fn start(mut self, start: Start) -> Self {
        self.config.start = start;
        self
    }

    /// The stream epoch a saved [`Start::After`] position belongs to (the
    /// `epoch` of the [`Item::Connected`] it came after). With it, a stream
    /// recreated since is noticed even when it has more events than the
    /// position: the client reports [`Item::StreamReset`] and starts again.
    pub fn resume_epoch(mut self, epoch: Option<String>) -> Self {
        self.config.resume_epoch = epoch.filter(|e| !e.is_empty());
        self
    }

    /// The reconnect backoff: doubles from `initial` to `max`, with jitter.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.backoff = Backoff { initial, max };
        self
    }

    /// Gives up (the stream yields [`ClientError::GaveUp`] and ends) after this
    /// many failed attempts in a row. Default: never give up.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = Some(attempts);
        self
    }

    /// How many recent event ids to remember for de-duplication.
    pub fn dedupe_ids(mut self, ids: usize) -> Self {
        self.config.dedupe_ids = ids;
        self
    }

    /// How many items may wait for the consumer (see [`DEFAULT_BUFFER`]).
    pub fn buffer(mut self, items: usize) -> Self {
        self.config.buffer = items.max(1);
        self
    }

    /// How long one connection attempt (TCP + WebSocket handshake + welcome) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// A connection from which nothing (not even a ping) arrives for this long
    /// is taken as dead. Default: twice the hub's announced ping interval plus a second.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout = Some(timeout);
        self
    }

    /// Checks the settings and starts the connection task on the current Tokio
    /// runtime. Dropping the returned stream stops the task.
    pub fn subscribe(self) -> Result<EventStream, ClientError> {
        let mut config = self.config;
        if config.urls.is_empty() {
            return Err(ClientError::NoUrl);
        }
        if config.topics.is_empty() {
            return Err(ClientError::NoTopic);
        }
        for t in &config.topics {
            TopicFilter::parse(t).map_err(|source| ClientError::InvalidTopic {
                topic: t.clone(),
                source,
            })?;
        }
        config.urls = config
            .urls
            .iter()
            .map(|u| normalize_url(u))
            .collect::<Result<_, _>>()?;
        let (tx, rx) = mpsc::channel(config.buffer);
        let task = tokio::spawn(session::run(Arc::new(config), tx));
        Ok(EventStream { rx, task })
    }
}

/// `http://h:p` -> `ws://h:p/v1/ws`; a URL with a path keeps it.
fn normalize_url(url: &str) -> Result<String, ClientError> {
    let bad = || ClientError::InvalidUrl { url: url.into() };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = match scheme {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(bad()),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        Ok(format!("{scheme}://{rest}"))
    } else {
        Ok(format!("{scheme}://{rest}/v1/ws"))
    }
}

/// The items of one client, in order. Ends after an error, or never.
///
/// ```no_run
/// # async fn run() -> Result<(), sapha_subscribers::ClientError> {
/// use futures::StreamExt;
/// let stream = sapha_subscribers::ClientBuilder::new()
///     .url("ws://127.0.0.1:8080")
///     .topic(">")
///     .subscribe()?;
/// // Just the events:
/// let mut events = std::pin::pin!(stream.filter_map(|i| async move { i.ok()?.into_event() }));
/// while let Some(d) = events.next().await {
///     println!("{}", d.event);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Result<Item, ClientError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream for EventStream {
    type Item = Result<Item, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_websocket_path() {
        assert_eq!(normalize_url("http://h:1").unwrap(), "ws://h:1/v1/ws");
        assert_eq!(normalize_url("ws://h:1/").unwrap(), "ws://h:1/v1/ws");
        assert_eq!(
            normalize_url("https://h/x/v1/ws").unwrap(),
            "wss://h/x/v1/ws"
        );
        assert!(normalize_url("h:1").is_err());
        assert!(normalize_url("ftp://h").is_err());
    }

    #[tokio::test]
    async fn bad_settings_fail_before_connecting() {
        assert!(matches!(
            ClientBuilder::new().topic(">").subscribe(),
            Err(ClientError::NoUrl)
        ));
        assert!(matches!(
            ClientBuilder::new().url("ws://h").subscribe(),
            Err(ClientError::NoTopic)
        ));
        let e = ClientBuilder::new()
            .url("ws://h")
            .topic("bill.>.x")
            .subscribe()
            .unwrap_err();
        assert!(matches!(e, ClientError::InvalidTopic { .. }), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        use futures::StreamExt;
        // Port 9 on localhost: connection refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut s = ClientBuilder::new()
            .url(format!("ws://{addr}"))
            .topic(">")
            .max_attempts(2)
            .subscribe()
            .unwrap();
        let mut disconnects = 0;
        loop {
            match s.next().await {
                Some(Ok(Item::Disconnected { .. })) => disconnects += 1,
                Some(Err(ClientError::GaveUp { attempts, .. })) => {
                    assert_eq!(attempts, 3);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(disconnects, 3);
        assert!(s.next().await.is_none());
    }
}
