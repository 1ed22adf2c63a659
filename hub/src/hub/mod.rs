//! The hub's shared state: connections, the subscription index, the recent-events
//! ring, and the one lock that makes "switch a resuming client to live" atomic
//! with respect to the fan-out.
//!
//! ## Resume without gap or duplicate
//!
//! A client that subscribes with `since = S` is not put in the index at once.
//! Its catch-up task replays, in order, every stored event after `S` that its
//! filters match (from the in-memory ring when it reaches back far enough, else
//! from the source), up to `H`, the last sequence the fan-out has handled. It then
//! takes the core lock, and, if the fan-out has moved on, replays the few events
//! between `H` and the new last sequence from the ring *under the lock*; finally,
//! still under the lock, it adds the client's filters to the index. The fan-out
//! handles each event under the same lock, so every event is either before the
//! switch (replayed) or after it (delivered live): never both, never neither.
//! Every frame on a connection therefore has a larger `seq` than the one before.
//!
//! ## A client whose queue fills
//!
//! The fan-out never waits for a client. When a live client's queue is full,
//! the fan-out takes its filters out of the index (under the core lock, so the
//! event it could not take is the first one it has not got) and starts the
//! same replay from that event, from the ring only. The replay waits for the
//! client to make room, and switches it back to live exactly as a resume does.
//! A client that falls behind the ring, or takes no frame for
//! `limits.stall_timeout_ms`, is closed with 4001 (slow consumer).

mod conn;
mod fan_out;
mod replay;

use conn::CONTROL_HEADROOM;
pub(crate) use conn::{Conn, Out};
use fan_out::Core;
pub(crate) use fan_out::EpochCheck;

use crate::camera::Camera;
use crate::config::Config;
use crate::index::Index;
use crate::metrics::{DisconnectReason, Metrics};
use crate::protocol::{code, Frame, Id, LimitsInfo};
use crate::trust::Trust;
use futures::future::BoxFuture;
use futures::FutureExt;
use sapha_log::{EventSource, SourceError, SourceMessage, SourceStream, StreamBounds};
use sapha_proto::TopicFilter;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
// A panic while a lock is held must not take down every later fan-out: the
// locks recover from poisoning (`PoisonError::into_inner`) and go on.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// An object-safe view of an [`EventSource`], so the hub and the HTTP handlers
/// need no type parameter.
pub(crate) trait DynSource: Send + Sync {
    fn bounds(&self) -> BoxFuture<'_, Result<StreamBounds, SourceError>>;
    fn read_from(&self, start: u64) -> BoxFuture<'_, Result<SourceStream, SourceError>>;
    fn lifecycle_until(&self, until: u64)
        -> BoxFuture<'_, Result<Vec<SourceMessage>, SourceError>>;
    fn is_connected(&self) -> bool;
    fn load_snapshot(&self) -> BoxFuture<'_, Result<Option<bytes::Bytes>, SourceError>>;
    fn store_snapshot(&self, snapshot: bytes::Bytes) -> BoxFuture<'_, Result<(), SourceError>>;
}

impl<S: EventSource> DynSource for S {
    fn bounds(&self) -> BoxFuture<'_, Result<StreamBounds, SourceError>> {
        EventSource::bounds(self).boxed()
    }
    fn read_from(&self, start: u64) -> BoxFuture<'_, Result<SourceStream, SourceError>> {
        EventSource::read_from(self, start).boxed()
    }
    fn lifecycle_until(
        &self,
        until: u64,
    ) -> BoxFuture<'_, Result<Vec<SourceMessage>, SourceError>> {
        EventSource::lifecycle_until(self, until).boxed()
    }
    fn is_connected(&self) -> bool {
        EventSource::is_connected(self)
    }
    fn load_snapshot(&self) -> BoxFuture<'_, Result<Option<bytes::Bytes>, SourceError>> {
        EventSource::load_snapshot(self).boxed()
    }
    fn store_snapshot(&self, snapshot: bytes::Bytes) -> BoxFuture<'_, Result<(), SourceError>> {
        EventSource::store_snapshot(self, snapshot).boxed()
    }
}

/// The hub.
pub(crate) struct Hub {
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
    pub(crate) source: Box<dyn DynSource>,
    core: Mutex<Core>,
    next_id: AtomicU64,
    /// Bounds the resumes that read from the source at once.
    replays: Semaphore,
    /// Queue slots events leave free for control frames.
    headroom: usize,
    /// True once [`Hub::start_at`] has set the fan-out's position: before
    /// that, `last_seq` is 0 and says nothing about the stream.
    started: tokio::sync::watch::Sender<bool>,
    /// Whether the fan-out's consumer is open (for `/readyz`).
    pub(crate) consumer_live: std::sync::atomic::AtomicBool,
    /// Cancelled when the process shuts down.
    pub(crate) shutdown: CancellationToken,
    /// What is true now: the projection of the stream (see `state`).
    pub(crate) state: std::sync::Arc<crate::state::StateStore>,
    /// Told by the readiness probe when the stream has another epoch than the
    /// fan-out's (recreated under a running hub): the consumer then starts over.
    pub(crate) stream_reset: tokio::sync::Notify,
}

pub(crate) enum Subscribed {
    /// Send this ack; events follow live.
    Ack(Frame),
    /// Start a catch-up (it sends the ack itself).
    CatchUp { topics: Vec<String>, since: u64 },
}

impl Hub {
    pub(crate) fn new(config: Config, source: Box<dyn DynSource>) -> Hub {
        let replays = Semaphore::new(config.limits.max_concurrent_replays.max(1));
        let headroom = (config.limits.queue_frames / 2).min(CONTROL_HEADROOM);
        Hub {
            config,
            metrics: Metrics::default(),
            source,
            core: Mutex::new(Core {
                index: Index::default(),
                conns: HashMap::new(),
                recent: VecDeque::new(),
                last_seq: 0,
                first_seq: 0,
                scratch: Vec::new(),
                camera: Camera::default(),
                trust: Trust::default(),
                epoch: String::new(),
            }),
            next_id: AtomicU64::new(1),
            replays,
            headroom,
            started: tokio::sync::watch::Sender::new(false),
            consumer_live: Default::default(),
            shutdown: CancellationToken::new(),
            state: crate::state::StateStore::shared(),
            stream_reset: tokio::sync::Notify::new(),
        }
    }

    /// How the hub waits between attempts to reach its source (`[nats] max_backoff_ms`).
    pub(crate) fn retry_policy(&self) -> sapha_proto::backoff::Backoff {
        sapha_proto::backoff::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(self.config.nats.max_backoff_ms.max(10)),
        }
    }

    /// Closes every connection with 1001.
    pub(crate) fn close_all(&self) {
        let conns: Vec<Arc<Conn>> = self.core().conns.values().cloned().collect();
        for conn in conns {
            conn.kill(DisconnectReason::Shutdown, &self.metrics);
        }
    }

    pub(crate) fn limits_info(&self) -> LimitsInfo {
        let l = &self.config.limits;
        LimitsInfo {
            max_subscriptions: l.max_subscriptions,
            max_frame_bytes: l.max_frame_bytes,
            messages_per_second: l.messages_per_second,
            message_burst: l.message_burst,
            queue_frames: l.queue_frames,
            idle_timeout_ms: l.idle_timeout_ms,
            ping_interval_ms: l.ping_interval_ms,
        }
    }

    pub(crate) fn welcome(&self, conn: &Conn) -> Frame {
        let (seq, first_seq, epoch) = {
            let core = self.core();
            (core.last_seq, core.first_seq, core.epoch.clone())
        };
        Frame::Welcome {
            session: format!("s-{:x}-{}", std::process::id(), conn.id),
            seq,
            first_seq,
            format: conn.format.name(),
            limits: Box::new(self.limits_info()),
            server: concat!("sapha-hub/", env!("CARGO_PKG_VERSION")),
            batch: conn.batch,
            epoch,
        }
    }

    /// Applies a subscribe request.
    pub(crate) fn subscribe(
        &self,
        conn: &Conn,
        id: &Id,
        topics: Vec<String>,
        since: Option<u64>,
    ) -> Result<Subscribed, Frame> {
        let filters = parse_topics(id, &topics)?;
        if let Some(grant) = conn.grant.get() {
            if let Some(f) = filters.iter().find(|f| !grant.allows(f)) {
                return Err(forbidden(id, f.as_str()));
            }
        }
        let mut core = self.core();
        let mut subs = conn.subs.lock().unwrap_or_else(PoisonError::into_inner);
        if since.is_some() && subs.started {
            return Err(Frame::error(
                id.clone(),
                code::SINCE_NOT_FIRST,
                "since is only allowed on a connection's first subscribe; reconnect to resume",
            ));
        }
        let mut new: Vec<TopicFilter> = Vec::new();
        for f in filters {
            if !subs.filters.contains(&f) && !new.contains(&f) {
                new.push(f);
            }
        }
        let max = self.config.limits.max_subscriptions;
        if subs.filters.len() + new.len() > max {
            return Err(Frame::error(
                id.clone(),
                code::TOO_MANY_SUBSCRIPTIONS,
                format!(
                    "a connection may hold {max} topic filters; it holds {} and asked for {} more",
                    subs.filters.len(),
                    new.len()
                ),
            ));
        }
        subs.started = true;
        if since.is_some() {
            subs.live = false;
        }
        if subs.live {
            for f in &new {
                core.index.insert(f, conn.id);
            }
        }
        self.metrics
            .subscriptions
            .fetch_add(new.len() as u64, Ordering::Relaxed);
        subs.filters.extend(new);
        let count = subs.filters.len();
        let seq = self.position(&core, conn, &subs);
        drop(subs);
        drop(core);
        Ok(match since {
            Some(since) => Subscribed::CatchUp { topics, since },
            None => Subscribed::Ack(Frame::Ack {
                id: id.clone(),
                op: "subscribe",
                topics,
                subscriptions: count,
                since: None,
                recovered: None,
                first_seq: None,
                seq,
                epoch: None,
            }),
        })
    }

    /// Applies an unsubscribe request (filters not held are ignored).
    pub(crate) fn unsubscribe(
        &self,
        conn: &Conn,
        id: &Id,
        topics: Vec<String>,
    ) -> Result<Frame, Frame> {
        let filters = parse_topics(id, &topics)?;
        let mut core = self.core();
        let mut subs = conn.subs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut removed = 0u64;
        for f in &filters {
            if let Some(pos) = subs.filters.iter().position(|g| g == f) {
                subs.filters.remove(pos);
                removed += 1;
                if subs.live {
                    core.index.remove(f, conn.id);
                }
            }
        }
        self.metrics
            .subscriptions
            .fetch_sub(removed, Ordering::Relaxed);
        Ok(Frame::Ack {
            id: id.clone(),
            op: "unsubscribe",
            topics,
            subscriptions: subs.filters.len(),
            since: None,
            recovered: None,
            first_seq: None,
            seq: self.position(&core, conn, &subs),
            epoch: None,
        })
    }
}

/// The error for a filter the connection's grant does not cover.
pub(crate) fn forbidden(id: &Id, topic: &str) -> Frame {
    Frame::Error {
        id: id.clone(),
        code: code::FORBIDDEN_TOPIC,
        message: format!(
            "this connection may not subscribe to '{topic}': its token does not grant it"
        ),
        topic: Some(topic.to_owned()),
        reason: None,
    }
}

/// Parses every filter of a request; the first bad one is the error.
fn parse_topics(id: &Id, topics: &[String]) -> Result<Vec<TopicFilter>, Frame> {
    topics
        .iter()
        .map(|t| {
            TopicFilter::parse(t).map_err(|e| Frame::Error {
                id: id.clone(),
                code: code::INVALID_TOPIC,
                message: e.to_string(),
                topic: Some(t.clone()),
                reason: Some(e.code()),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
