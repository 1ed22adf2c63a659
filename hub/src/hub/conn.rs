//! One connection as the hub sees it: its bounded outgoing queue, its filters,
//! why it ended, and how frames are queued (at once, or waiting for room, with a
//! slow consumer closed after `limits.stall_timeout_ms`).

use super::{Core, Hub};
use crate::auth::Grant;
use crate::index::ConnId;
use crate::metrics::{DisconnectReason, Metrics};
use crate::prepared::Prepared;
use crate::protocol::{Format, Frame};
use sapha_proto::TopicFilter;
use std::sync::atomic::{AtomicU64, Ordering};
// A panic while a lock is held must not take down every later fan-out: the
// locks recover from poisoning (`PoisonError::into_inner`) and go on.
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Queue slots that events leave free for control frames (acks, errors), at
/// most half the queue: a client that is behind still gets its answers.
pub(super) const CONTROL_HEADROOM: usize = 16;

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
pub(super) struct Subs {
    pub(super) filters: Vec<TopicFilter>,
    /// False while a resume is replaying: the filters are not in the index yet.
    pub(super) live: bool,
    /// Whether any subscribe was accepted (a `since` is only allowed on the first).
    pub(super) started: bool,
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
    pub(super) tx: mpsc::Sender<Out>,
    /// Cancelled when the connection must end; `reason` says why.
    pub(super) kill: CancellationToken,
    pub(super) reason: OnceLock<DisconnectReason>,
    /// Events with `seq <= floor` are never delivered: the client has them.
    pub(super) floor: AtomicU64,
    /// While the connection is not live (resuming, or catching up after its
    /// queue filled): every matching event up to here has been queued. Acks
    /// carry it as their `seq`, so a client may take an ack as a position.
    pub(super) replayed_to: AtomicU64,
    /// Signalled by the writer each time it takes frames from the queue, for
    /// replays waiting for room.
    pub(super) drained: tokio::sync::Notify,
    /// Guarded by a std mutex held only in short synchronous sections, always
    /// after the core lock when both are held.
    pub(super) subs: Mutex<Subs>,
    /// What the client may subscribe to, set once at connect from its token;
    /// unset means anything (auth off).
    pub(super) grant: OnceLock<Grant>,
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
    pub(super) fn is_ending(&self) -> bool {
        self.reason.get().is_some()
    }

    pub(super) fn matches(&self, p: &Prepared) -> bool {
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

impl Hub {
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
    pub(super) fn slow_consumer(&self, conn: &Conn) {
        self.metrics.drops.fetch_add(1, Ordering::Relaxed);
        conn.kill(DisconnectReason::SlowConsumer, &self.metrics);
    }

    /// Queues a frame, waiting for room (used by replays, which the client
    /// paces). An event waits until it leaves the control headroom free.
    pub(super) async fn deliver_wait(&self, conn: &Conn, mut out: Out) -> bool {
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
    pub(super) async fn wait_for_event_room(&self, conn: &Conn) -> bool {
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
    pub(super) async fn wait_for_drain(&self, conn: &Conn) -> bool {
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
    pub(super) fn event_room(&self, conn: &Conn) -> usize {
        conn.tx.capacity().saturating_sub(self.headroom)
    }

    /// The `seq` for an ack on this connection: every matching event up to it
    /// is queued before the ack. Called with the core lock held.
    pub(super) fn position(&self, core: &Core, conn: &Conn, subs: &Subs) -> u64 {
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
}
