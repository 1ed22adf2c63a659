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

use crate::auth::Grant;
use crate::camera::{Camera, CameraInfo};
use crate::config::Config;
use crate::index::{ConnId, Index};
use crate::metrics::{DisconnectReason, Metrics};
use crate::prepared::Prepared;
use crate::protocol::{code, Format, Frame, Id, LimitsInfo};
use crate::trust::Trust;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use sapha_log::{EventSource, SourceError, SourceMessage, SourceStream, StreamBounds};
use sapha_proto::TopicFilter;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
// A panic while a lock is held must not take down every later fan-out: the
// locks recover from poisoning (`PoisonError::into_inner`) and go on.
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long a replay waits for the next stored message before it re-checks the
/// stream's bounds (the messages it expects may have been deleted meanwhile).
const REPLAY_STALL: Duration = Duration::from_secs(3);
/// How often a replay may reopen its reader after errors before it gives up.
const REPLAY_ATTEMPTS: u32 = 20;
/// Most rounds of "replay up to the fan-out's position"; each round is shorter
/// than the one before, so a handful is normal.
const CATCH_UP_ROUNDS: u32 = 1_000;
/// Queue slots that events leave free for control frames (acks, errors), at
/// most half the queue: a client that is behind still gets its answers.
const CONTROL_HEADROOM: usize = 16;

/// What goes into a connection's outgoing queue.
#[derive(Debug)]
pub(crate) enum Out {
    Event(Arc<Prepared>),
    /// Boxed so that a queue slot is two words: the channel allocates its slots
    /// in blocks, and that block is most of an idle connection's memory.
    Frame(Box<Frame>),
}

/// A connection's filters, and whether they are in the index yet.
#[derive(Debug, Default)]
struct Subs {
    filters: Vec<TopicFilter>,
    /// False while a resume is replaying: the filters are not in the index yet.
    live: bool,
    /// Whether any subscribe was accepted (a `since` is only allowed on the first).
    started: bool,
}

/// One client connection as the hub sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    pub(crate) format: Format,
    /// The client accepts `batch` frames (several queued events in one frame).
    pub(crate) batch: bool,
    /// The bounded outgoing queue (`limits.queue_frames`). Events fill it only
    /// up to `Hub::headroom` free slots, which are kept for control frames. The
    /// fan-out never waits: an event that does not fit starts a catch-up from
    /// the ring (see the module docs).
    tx: mpsc::Sender<Out>,
    /// Cancelled when the connection must end; `reason` says why.
    kill: CancellationToken,
    reason: OnceLock<DisconnectReason>,
    /// Events with `seq <= floor` are never delivered: the client has them.
    floor: AtomicU64,
    /// While the connection is not live (resuming, or catching up after its
    /// queue filled): every matching event up to here has been queued. Acks
    /// carry it as their `seq`, so a client may take an ack as a position.
    replayed_to: AtomicU64,
    /// Signalled by the writer each time it takes frames from the queue, for
    /// replays waiting for room.
    drained: tokio::sync::Notify,
    /// Guarded by a std mutex held only in short synchronous sections, always
    /// after the core lock when both are held.
    subs: Mutex<Subs>,
    /// What the client may subscribe to, set once at connect from its token;
    /// unset means anything (auth off).
    grant: OnceLock<Grant>,
}

impl Conn {
    /// Ends the connection; the first reason wins and is counted.
    pub(crate) fn kill(&self, reason: DisconnectReason, metrics: &Metrics) {
        if self.reason.set(reason).is_ok() {
            metrics.disconnected(reason);
        }
        self.kill.cancel();
    }

    pub(crate) fn reason(&self) -> Option<DisconnectReason> {
        self.reason.get().copied()
    }

    pub(crate) fn killed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.kill.cancelled()
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.kill.is_cancelled()
    }

    /// Whether the connection has been given a reason to end: one atomic load,
    /// for the fan-out's per-delivery check (`is_killed` takes the token's
    /// lock). Only a connection registered while the hub is shutting down can
    /// have its token cancelled with no reason yet; the fan-out may then queue
    /// an event or two for it before its tasks end and unregister it.
    fn is_ending(&self) -> bool {
        self.reason.get().is_some()
    }

    fn matches(&self, p: &Prepared) -> bool {
        let subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        subs.filters
            .iter()
            .any(|f| f.matches(&p.topic) || p.secondary.as_deref().is_some_and(|s| f.matches(s)))
    }

    /// Sets what this connection may subscribe to (once, before its first subscribe).
    pub(crate) fn set_grant(&self, grant: Grant) {
        let _ = self.grant.set(grant);
    }

    /// Called by the writer after it takes frames from the queue.
    pub(crate) fn drained(&self) {
        self.drained.notify_one();
    }

    pub(crate) fn subscription_count(&self) -> usize {
        self.subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .filters
            .len()
    }
}

/// State that the fan-out and subscription changes share, under one lock.
struct Core {
    index: Index,
    conns: HashMap<ConnId, Arc<Conn>>,
    /// The latest events, oldest first, contiguous up to `last_seq` (bounded by
    /// `history.cache_events`; the oldest is dropped).
    recent: VecDeque<Arc<Prepared>>,
    /// The last sequence fanned out.
    last_seq: u64,
    /// The first sequence the source still had, when last asked.
    first_seq: u64,
    /// Reused for lookups, so the fan-out does not allocate per event.
    scratch: Vec<ConnId>,
    /// Which sittings were in camera when, up to `last_seq`: their content is
    /// never delivered (live or replayed).
    camera: Camera,
    /// Each aggregate's last sequence and stage, for the stream checks.
    trust: Trust,
    /// The stream's epoch when the fan-out started (empty: unknown).
    epoch: String,
}

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
        }
    }

    /// How the hub waits between attempts to reach its source (`[nats] max_backoff_ms`).
    pub(crate) fn retry_policy(&self) -> sapha_proto::backoff::Backoff {
        sapha_proto::backoff::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(self.config.nats.max_backoff_ms.max(10)),
        }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the fan-out's starting position (the stream's last sequence at start),
    /// with the stored lifecycle events up to it, so that the in-camera state is
    /// known for every sequence the hub may deliver.
    pub(crate) fn start_at(&self, bounds: StreamBounds, lifecycle: Vec<SourceMessage>) {
        let mut core = self.core();
        let mut camera = Camera::default();
        for msg in lifecycle {
            if msg.seq > bounds.last {
                break;
            }
            if let Ok(event) = sapha_proto::Event::decode_proto(&msg.payload) {
                camera.observe(msg.seq, &CameraInfo::of(&event));
            }
        }
        core.camera = camera;
        core.last_seq = bounds.last;
        core.first_seq = bounds.first;
        core.epoch = bounds.epoch;
        self.metrics.last_seq.store(bounds.last, Ordering::Relaxed);
        drop(core);
        self.started.send_replace(true);
    }

    pub(crate) fn note_first_seq(&self, first: u64) {
        self.core().first_seq = first;
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.core().last_seq
    }

    /// Adds a connection; the receiver is its outgoing queue.
    pub(crate) fn register(&self, format: Format, batch: bool) -> (Arc<Conn>, mpsc::Receiver<Out>) {
        let (tx, rx) = mpsc::channel(self.config.limits.queue_frames.max(1));
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            format,
            batch,
            tx,
            kill: self.shutdown.child_token(),
            reason: OnceLock::new(),
            floor: AtomicU64::new(0),
            replayed_to: AtomicU64::new(0),
            drained: tokio::sync::Notify::new(),
            subs: Mutex::new(Subs {
                live: true,
                ..Default::default()
            }),
            grant: OnceLock::new(),
        });
        self.core().conns.insert(conn.id, conn.clone());
        self.metrics.connections.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        (conn, rx)
    }

    /// Removes a connection and its filters.
    pub(crate) fn unregister(&self, conn: &Conn) {
        let mut core = self.core();
        core.conns.remove(&conn.id);
        let subs = std::mem::take(&mut *conn.subs.lock().unwrap_or_else(PoisonError::into_inner));
        if subs.live {
            for f in &subs.filters {
                core.index.remove(f, conn.id);
            }
        }
        drop(core);
        self.metrics
            .subscriptions
            .fetch_sub(subs.filters.len() as u64, Ordering::Relaxed);
        self.metrics.connections.fetch_sub(1, Ordering::Relaxed);
        // A connection that ends without a reason was closed by its client.
        if conn.reason.set(DisconnectReason::Client).is_ok() {
            self.metrics.disconnected(DisconnectReason::Client);
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

    /// Queues a control frame without waiting; a full queue ends the connection.
    pub(crate) fn send_frame(&self, conn: &Conn, frame: Frame) {
        if matches!(frame, Frame::Error { .. }) {
            self.metrics.error_frames.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(mpsc::error::TrySendError::Full(_)) =
            conn.tx.try_send(Out::Frame(Box::new(frame)))
        {
            self.slow_consumer(conn);
        }
    }

    /// Closes a connection that stopped reading (4001); the frame it could not
    /// take is counted as dropped.
    fn slow_consumer(&self, conn: &Conn) {
        self.metrics.drops.fetch_add(1, Ordering::Relaxed);
        conn.kill(DisconnectReason::SlowConsumer, &self.metrics);
    }

    /// Queues a frame, waiting for room (used by replays, which the client
    /// paces). An event waits until it leaves the control headroom free.
    async fn deliver_wait(&self, conn: &Conn, mut out: Out) -> bool {
        loop {
            if matches!(out, Out::Event(_)) && !self.wait_for_event_room(conn).await {
                return false;
            }
            let full = match conn.tx.try_send(out) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(back)) => back,
            };
            out = full;
            if matches!(out, Out::Frame(_)) && !self.wait_for_drain(conn).await {
                return false;
            }
        }
    }

    /// Queues a control frame, waiting for room: for tests that keep a
    /// connection's queue full.
    #[cfg(test)]
    pub(crate) async fn send_frame_waiting(&self, conn: &Conn, frame: Frame) -> bool {
        self.deliver_wait(conn, Out::Frame(Box::new(frame))).await
    }

    /// Waits until an event fits beside the control headroom; false if the
    /// connection ended or stalled (see [`Hub::wait_for_drain`]).
    async fn wait_for_event_room(&self, conn: &Conn) -> bool {
        while self.event_room(conn) == 0 {
            if !self.wait_for_drain(conn).await {
                return false;
            }
        }
        true
    }

    /// Waits until the writer takes frames from the queue. False if the
    /// connection ended, or took nothing for `limits.stall_timeout_ms` (it is
    /// then closed as a slow consumer).
    async fn wait_for_drain(&self, conn: &Conn) -> bool {
        let stall = self.config.limits.stall_timeout();
        tokio::select! {
            r = tokio::time::timeout(stall, conn.drained.notified()) => {
                if r.is_err() {
                    self.slow_consumer(conn);
                }
                r.is_ok()
            }
            _ = conn.killed() => false,
        }
    }

    /// Queue slots free for events (beyond the control headroom).
    fn event_room(&self, conn: &Conn) -> usize {
        conn.tx.capacity().saturating_sub(self.headroom)
    }

    /// The `seq` for an ack on this connection: every matching event up to it
    /// is queued before the ack. Called with the core lock held.
    fn position(&self, core: &Core, conn: &Conn, subs: &Subs) -> u64 {
        if subs.live {
            core.last_seq
        } else {
            conn.replayed_to.load(Ordering::Relaxed)
        }
    }

    /// The `seq` for an ack on this connection (see [`Hub::position`]).
    pub(crate) fn ack_seq(&self, conn: &Conn) -> u64 {
        let core = self.core();
        let subs = conn.subs.lock().unwrap_or_else(PoisonError::into_inner);
        self.position(&core, conn, &subs)
    }

    /// Takes a live connection whose queue is full out of the index. Called
    /// under the core lock; its catch-up from the ring puts it back.
    fn lag(&self, index: &mut Index, conn: &Conn, seq: u64) {
        let mut subs = conn.subs.lock().unwrap_or_else(PoisonError::into_inner);
        conn.replayed_to.store(seq - 1, Ordering::Relaxed);
        subs.live = false;
        for f in &subs.filters {
            index.remove(f, conn.id);
        }
        self.metrics.lagged.fetch_add(1, Ordering::Relaxed);
    }

    /// Fans one event out to every matching connection. A connection whose
    /// queue is full catches up from the ring (see the module docs).
    pub(crate) fn fan_out(self: &Arc<Self>, p: Prepared) {
        let p = Arc::new(p);
        let mut core = self.core();
        let core = &mut *core;
        if p.seq <= core.last_seq {
            return; // already handled (a reader reopened from an older position)
        }
        core.last_seq = p.seq;
        self.metrics.last_seq.store(p.seq, Ordering::Relaxed);
        self.metrics.events_in.fetch_add(1, Ordering::Relaxed);
        core.camera.observe(p.seq, &p.camera);
        for suspect in core.trust.observe(&p.trust) {
            self.metrics.events_suspect[suspect.index()].fetch_add(1, Ordering::Relaxed);
            if core.trust.should_log(suspect) {
                tracing::warn!(
                    seq = p.seq,
                    topic = %p.topic,
                    kind = suspect.label(),
                    "an event the publisher would have refused is in the stream (delivered as \
                     stored; logged at most once per 10 s per kind, counted in \
                     sapha_hub_events_suspect_total)"
                );
            }
        }
        let withheld = core.camera.withheld(&p);
        let cap = self.config.history.cache_events;
        if cap > 0 {
            if core.recent.len() >= cap {
                core.recent.pop_front();
            }
            core.recent.push_back(p.clone());
        }
        if withheld {
            // In camera: kept in the ring (sequences stay contiguous) but never
            // delivered; replays skip it too.
            self.metrics
                .in_camera_withheld
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                seq = p.seq,
                topic = %p.topic,
                "withholding content of a sitting in camera"
            );
            return;
        }
        let mut ids = std::mem::take(&mut core.scratch);
        ids.clear();
        core.index.lookup(&p.topic, &mut ids);
        if let Some(s) = &p.secondary {
            core.index.lookup(s, &mut ids);
        }
        if ids.len() > 1 {
            ids.sort_unstable();
            ids.dedup();
        }
        // Counted once per event: one shared atomic add per delivery is
        // contended by every worker.
        let mut delivered = 0;
        let mut lagged = Vec::new();
        for id in &ids {
            let Some(conn) = core.conns.get(id) else {
                continue;
            };
            // A closed connection waits for its tasks to unregister it; skip it
            // rather than count drops against a queue nobody drains.
            if conn.floor.load(Ordering::Relaxed) >= p.seq || conn.is_ending() {
                continue;
            }
            if self.event_room(conn) > 0 {
                match conn.tx.try_send(Out::Event(p.clone())) {
                    Ok(()) => {
                        delivered += 1;
                        continue;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => continue,
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                }
            }
            // No room beside the control headroom: catch up from the ring.
            self.lag(&mut core.index, conn, p.seq);
            lagged.push(conn.clone());
        }
        if delivered > 0 {
            self.metrics
                .deliveries
                .fetch_add(delivered, Ordering::Relaxed);
        }
        core.scratch = ids;
        for conn in lagged {
            let hub = self.clone();
            let seq = p.seq;
            tokio::spawn(async move { hub.catch_up_lagged(conn, seq).await });
        }
    }

    /// Records that a sequence was seen but could not be decoded.
    pub(crate) fn skip(&self, seq: u64) {
        let mut core = self.core();
        if seq > core.last_seq {
            core.last_seq = seq;
            self.metrics.last_seq.store(seq, Ordering::Relaxed);
        }
        self.metrics.events_invalid.fetch_add(1, Ordering::Relaxed);
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

    /// Replays what a resuming client missed, then switches it to live. See the
    /// module docs for why this has neither gap nor duplicate.
    pub(crate) async fn catch_up(
        &self,
        conn: Arc<Conn>,
        id: Id,
        topics: Vec<String>,
        since: u64,
        epoch: Option<String>,
    ) {
        // Until the fan-out knows the stream's position, any `since` would
        // look like the future and the client would skip straight to live.
        let mut started = self.started.subscribe();
        tokio::select! {
            r = started.wait_for(|s| *s) => if r.is_err() { return },
            _ = conn.killed() => return,
        }
        let mut next = since.saturating_add(1);
        // Does the ring reach back far enough, or must we ask the source? A
        // position past the fan-out's must be checked against the stream too:
        // either the fan-out has not seen the newest events yet (the position
        // is real), or the position does not exist (the stream was recreated
        // or restored with fewer events) and nothing after it will ever come.
        // A position of another incarnation of the stream (the client says
        // which epoch it belongs to) is checked against the stream too.
        let client_epoch = epoch.filter(|e| !e.is_empty());
        let (in_memory, mut first_seq, mut stream_epoch) = {
            let core = self.core();
            let same_epoch = client_epoch.as_ref().is_none_or(|e| *e == core.epoch);
            let covered = same_epoch
                && (since == core.last_seq
                    || (since < core.last_seq
                        && core.recent.front().is_some_and(|p| p.seq <= next)));
            (covered, core.first_seq, core.epoch.clone())
        };
        let mut recovered = true;
        if !in_memory {
            let Some(bounds) = self.bounds_until_killed(&conn).await else {
                return;
            };
            first_seq = bounds.first;
            self.note_first_seq(bounds.first);
            let other_epoch = client_epoch
                .as_ref()
                .is_some_and(|e| !bounds.epoch.is_empty() && *e != bounds.epoch);
            if next < bounds.first || since > bounds.last || other_epoch {
                // History is gone (retention), or the position does not exist
                // (past the end, or of a stream since recreated): say so, and
                // start from the oldest.
                recovered = false;
                next = bounds.first;
            }
            if !bounds.epoch.is_empty() {
                stream_epoch = bounds.epoch;
            }
        }
        let ack = Frame::Ack {
            id: id.clone(),
            op: "subscribe",
            topics,
            subscriptions: conn.subscription_count(),
            since: Some(since),
            recovered: Some(recovered),
            first_seq: Some(first_seq),
            seq: self.last_seq(),
            epoch: Some(stream_epoch.into_boxed_str()),
        };
        if !self.deliver_wait(&conn, Out::Frame(Box::new(ack))).await {
            return;
        }
        let floor = if recovered {
            since
        } else {
            next.saturating_sub(1)
        };
        conn.replayed_to.store(floor, Ordering::Relaxed);
        self.replay_until_live(&conn, next, floor, Some(id)).await;
    }

    /// Serves a connection whose queue filled at event `next` from the ring,
    /// until it has caught up and is live again.
    async fn catch_up_lagged(&self, conn: Arc<Conn>, next: u64) {
        self.replay_until_live(&conn, next, next.saturating_sub(1), None)
            .await;
    }

    /// Replays the matching events from `next` on, then, under the core lock,
    /// puts the connection's filters back in the index with `floor`. `resume`
    /// is the id of a client's resume request: it may read from the source and
    /// ends with a `live` frame. Without it (a client whose queue filled) only
    /// the ring serves, and a client that fell behind the ring is closed (4001).
    async fn replay_until_live(
        &self,
        conn: &Arc<Conn>,
        mut next: u64,
        floor: u64,
        resume: Option<Id>,
    ) {
        for _ in 0..CATCH_UP_ROUNDS {
            enum Plan {
                /// Matching events to queue, waiting for room.
                Ring(Vec<Arc<Prepared>>),
                /// Nothing to queue, but no room for the `live` frame yet.
                WaitForRoom,
                Source(u64),
                BehindRing,
            }
            let plan = {
                let mut core = self.core();
                let last = core.last_seq;
                let start = core.recent.partition_point(|p| p.seq < next);
                let ring_covers = next > last || core.recent.front().is_some_and(|p| p.seq <= next);
                if ring_covers {
                    // In-camera content is never delivered, whatever the
                    // filters become while this replay waits.
                    let matching: Vec<Arc<Prepared>> = core
                        .recent
                        .range(start..)
                        .filter(|p| conn.matches(p) && !self.withheld(&core.camera, p))
                        .cloned()
                        .collect();
                    let needed = matching.len() + usize::from(resume.is_some());
                    if needed <= self.event_room(conn) {
                        // Finish under the lock: the rest and the `live`
                        // frame fit in the queue, beside the control headroom.
                        let replayed = matching.len() as u64;
                        let mut queued = matching
                            .into_iter()
                            .all(|p| conn.tx.try_send(Out::Event(p)).is_ok());
                        if let Some(id) = resume {
                            queued &= conn
                                .tx
                                .try_send(Out::Frame(Box::new(Frame::Live { id, seq: last })))
                                .is_ok();
                        }
                        if !queued {
                            // Control frames took the room meanwhile: the
                            // client cannot have everything, so it is closed
                            // (and resumes) rather than given a gap.
                            drop(core);
                            self.slow_consumer(conn);
                            return;
                        }
                        self.metrics.replayed.fetch_add(replayed, Ordering::Relaxed);
                        self.go_live(&mut core, conn, floor);
                        return;
                    }
                    next = last + 1;
                    if matching.is_empty() {
                        Plan::WaitForRoom
                    } else {
                        Plan::Ring(matching)
                    }
                } else if resume.is_some() {
                    Plan::Source(last)
                } else {
                    Plan::BehindRing
                }
            };
            match plan {
                Plan::Ring(events) => {
                    for p in events {
                        let seq = p.seq;
                        // Unsubscribed meanwhile: skipped.
                        if conn.matches(&p) {
                            if !self.deliver_wait(conn, Out::Event(p)).await {
                                return;
                            }
                            self.metrics.replayed.fetch_add(1, Ordering::Relaxed);
                        }
                        conn.replayed_to.store(seq, Ordering::Relaxed);
                    }
                    conn.replayed_to.store(next - 1, Ordering::Relaxed);
                }
                Plan::WaitForRoom => {
                    conn.replayed_to.store(next - 1, Ordering::Relaxed);
                    if !self.wait_for_event_room(conn).await {
                        return;
                    }
                }
                Plan::Source(until) => {
                    let _permit = tokio::select! {
                        p = self.replays.acquire() => p.expect("never closed"),
                        _ = conn.killed() => return,
                    };
                    match self.replay_from_source(conn, next, until).await {
                        Some(n) => next = n,
                        None => return,
                    }
                }
                Plan::BehindRing => {
                    tracing::debug!(conn = conn.id, next, "fell behind the ring; closing");
                    self.slow_consumer(conn);
                    return;
                }
            }
            if conn.is_killed() {
                return;
            }
        }
        tracing::warn!(
            conn = conn.id,
            "resume did not catch up with the stream; closing"
        );
        conn.kill(DisconnectReason::SlowConsumer, &self.metrics);
    }

    /// Whether a replayed event must be skipped because its sitting was in
    /// camera (counted).
    fn withheld(&self, camera: &Camera, p: &Prepared) -> bool {
        let withheld = camera.withheld(p);
        if withheld {
            self.metrics
                .in_camera_withheld
                .fetch_add(1, Ordering::Relaxed);
        }
        withheld
    }

    /// Puts a resumed connection's filters in the index. Called under the core lock.
    fn go_live(&self, core: &mut Core, conn: &Conn, floor: u64) {
        let mut subs = conn.subs.lock().unwrap_or_else(PoisonError::into_inner);
        conn.floor.store(floor, Ordering::Relaxed);
        subs.live = true;
        for f in &subs.filters {
            core.index.insert(f, conn.id);
        }
    }

    async fn bounds_until_killed(&self, conn: &Conn) -> Option<StreamBounds> {
        let mut retry = self.retry_policy().retrying();
        loop {
            tokio::select! {
                r = self.source.bounds() => match r {
                    Ok(b) => return Some(b),
                    Err(e) => tracing::warn!(error = %e, "resume: cannot read the stream's bounds"),
                },
                _ = conn.killed() => return None,
            }
            tokio::select! {
                _ = tokio::time::sleep(retry.next_delay()) => {}
                _ = conn.killed() => return None,
            }
        }
    }

    /// Replays stored events `next..=until` that the connection matches; returns
    /// the next sequence to read, or `None` if the connection ended.
    async fn replay_from_source(&self, conn: &Conn, mut next: u64, until: u64) -> Option<u64> {
        let mut attempts = 0;
        while next <= until {
            let mut stream = tokio::select! {
                r = self.source.read_from(next) => r,
                _ = conn.killed() => return None,
            };
            let mut broken = false;
            while next <= until && !broken {
                let item = match &mut stream {
                    Ok(s) => tokio::select! {
                        item = tokio::time::timeout(REPLAY_STALL, s.next()) => item,
                        _ = conn.killed() => return None,
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "resume: cannot read the stream");
                        broken = true;
                        continue;
                    }
                };
                match item {
                    Ok(Some(Ok(msg))) => {
                        if msg.seq < next {
                            continue;
                        }
                        next = msg.seq + 1;
                        if msg.seq > until {
                            break;
                        }
                        let Ok(p) = Prepared::decode(msg.seq, msg.payload) else {
                            continue;
                        };
                        if conn.matches(&p) && !self.withheld(&self.core().camera, &p) {
                            if !self.deliver_wait(conn, Out::Event(Arc::new(p))).await {
                                return None;
                            }
                            self.metrics.replayed.fetch_add(1, Ordering::Relaxed);
                        }
                        conn.replayed_to.store(msg.seq, Ordering::Relaxed);
                    }
                    Ok(Some(Err(_))) | Ok(None) => broken = true,
                    Err(_stalled) => {
                        // Nothing came: are the messages we wait for still stored?
                        match self.source.bounds().await {
                            Ok(b) if b.last < next || b.first > until => return Some(until + 1),
                            Ok(b) if b.first > next => next = b.first,
                            _ => {}
                        }
                        broken = true;
                    }
                }
            }
            if broken {
                attempts += 1;
                if attempts > REPLAY_ATTEMPTS {
                    tracing::warn!(conn = conn.id, "resume: the source keeps failing; closing");
                    conn.kill(DisconnectReason::Shutdown, &self.metrics);
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100 * u64::from(attempts))) => {}
                    _ = conn.killed() => return None,
                }
            }
        }
        Some(next)
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
pub(crate) mod tests {
    use super::*;
    use sapha_log::{EventSource, SourceStream, StreamBounds};

    /// A source with nothing in it: for tests that need a hub, not events.
    pub(crate) struct Silent;

    impl EventSource for Silent {
        async fn bounds(&self) -> Result<StreamBounds, SourceError> {
            Ok(StreamBounds::default())
        }
        async fn read_from(&self, _start: u64) -> Result<SourceStream, SourceError> {
            Ok(futures::stream::pending().boxed())
        }
    }

    /// A panic while the core lock is held poisons it; the hub goes on.
    #[test]
    fn a_poisoned_core_lock_does_not_stop_the_hub() {
        let hub = Arc::new(Hub::new(Config::default(), Box::new(Silent)));
        let h = hub.clone();
        let panicked = std::thread::spawn(move || {
            let _core = h.core();
            panic!("a bug while holding the core lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(hub.core.is_poisoned());
        assert_eq!(hub.last_seq(), 0);
        let (conn, _rx) = hub.register(crate::protocol::Format::Json, false);
        assert_eq!(hub.core().conns.len(), 1, "{}", conn.id);
    }
}
