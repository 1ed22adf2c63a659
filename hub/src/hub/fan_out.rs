//! The fan-out: the core lock that every event and every switch to live takes,
//! the recent-events ring, in-camera withholding, and handing each event to the
//! matching connections' queues (a full queue starts a catch-up, see `replay`).

use super::{Conn, Hub, Out};
use crate::camera::{Camera, CameraInfo};
use crate::index::{ConnId, Index};
use crate::prepared::Prepared;
use crate::trust::Trust;
use sapha_log::{SourceMessage, StreamBounds};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
// A panic while a lock is held must not take down every later fan-out: the
// locks recover from poisoning (`PoisonError::into_inner`) and go on.
use std::sync::{Arc, PoisonError};
use tokio::sync::mpsc;

/// What [`Hub::check_epoch`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochCheck {
    /// The epoch the fan-out knows (or none to compare).
    Same,
    /// The fan-out had none and has it now.
    Learnt,
    /// Another epoch: the stream was recreated.
    Changed,
}

/// State that the fan-out and subscription changes share, under one lock.
pub(super) struct Core {
    pub(super) index: Index,
    pub(super) conns: HashMap<ConnId, Arc<Conn>>,
    /// The latest events, oldest first, contiguous up to `last_seq` (bounded by
    /// `history.cache_events`; the oldest is dropped).
    pub(super) recent: VecDeque<Arc<Prepared>>,
    /// The last sequence fanned out.
    pub(super) last_seq: u64,
    /// The first sequence the source still had, when last asked.
    pub(super) first_seq: u64,
    /// Reused for lookups, so the fan-out does not allocate per event.
    pub(super) scratch: Vec<ConnId>,
    /// Which sittings were in camera when, up to `last_seq`: their content is
    /// never delivered (live or replayed).
    pub(super) camera: Camera,
    /// Each aggregate's last sequence and stage, for the stream checks.
    pub(super) trust: Trust,
    /// The stream's epoch when the fan-out started (empty: unknown).
    pub(super) epoch: String,
}

impl Hub {
    pub(super) fn core(&self) -> std::sync::MutexGuard<'_, Core> {
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

    /// Compares the stream's epoch now (from its bounds) with the fan-out's.
    /// An epoch the fan-out did not know yet (the hub started before the
    /// stream existed, so it started with none) is learnt here, for the
    /// fan-out, the welcome frames and the state's ETags.
    pub(crate) fn check_epoch(&self, epoch: &str) -> EpochCheck {
        if epoch.is_empty() || !*self.started.borrow() {
            // The source cannot tell (or has no stream now), or the fan-out
            // has not started: its start sets the epoch.
            return EpochCheck::Same;
        }
        let mut core = self.core();
        if core.epoch == epoch {
            return EpochCheck::Same;
        }
        if core.epoch.is_empty() {
            core.epoch = epoch.to_owned();
            drop(core);
            self.state.set_epoch(epoch);
            tracing::info!(epoch, "the stream exists now: learnt its epoch");
            return EpochCheck::Learnt;
        }
        tracing::warn!(
            old = %core.epoch,
            new = epoch,
            "the stream was recreated under the hub (another epoch): starting over"
        );
        EpochCheck::Changed
    }

    /// Forgets everything of a stream that was recreated: the ring, the
    /// position, the in-camera and trust state and the epoch; the state is
    /// rebuilt (503 `state_not_ready` meanwhile); every client is closed with
    /// 1001 so that it resumes, with its epoch, from the new stream
    /// (`recovered: false`). The consumer then starts again as at start-up.
    pub(crate) fn forget_stream(&self) {
        self.started.send_replace(false);
        {
            let mut core = self.core();
            core.recent.clear();
            core.last_seq = 0;
            core.first_seq = 0;
            core.camera = Camera::default();
            core.trust = Trust::default();
            core.epoch.clear();
        }
        self.metrics.last_seq.store(0, Ordering::Relaxed);
        self.state.forget();
        self.close_all();
    }

    pub(crate) fn note_first_seq(&self, first: u64) {
        self.core().first_seq = first;
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.core().last_seq
    }

    /// Takes a live connection whose queue is full out of the index. Called
    /// under the core lock; its catch-up from the ring puts it back.
    pub(super) fn lag(&self, index: &mut Index, conn: &Conn, seq: u64) {
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

    /// Whether a replayed event must be skipped because its sitting was in
    /// camera (counted).
    pub(super) fn withheld(&self, camera: &Camera, p: &Prepared) -> bool {
        let withheld = camera.withheld(p);
        if withheld {
            self.metrics
                .in_camera_withheld
                .fetch_add(1, Ordering::Relaxed);
        }
        withheld
    }

    /// Puts a resumed connection's filters in the index. Called under the core lock.
    pub(super) fn go_live(&self, core: &mut Core, conn: &Conn, floor: u64) {
        let mut subs = conn.subs.lock().unwrap_or_else(PoisonError::into_inner);
        conn.floor.store(floor, Ordering::Relaxed);
        subs.live = true;
        for f in &subs.filters {
            core.index.insert(f, conn.id);
        }
    }
}
