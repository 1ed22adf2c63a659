//! Replay: what a resuming client missed, or a lagging client could not take,
//! from the ring or the source, then the switch to live without gap or duplicate.

use super::{Conn, Hub, Out};
use crate::metrics::DisconnectReason;
use crate::prepared::Prepared;
use crate::protocol::{Frame, Id};
use futures::StreamExt;
use sapha_log::StreamBounds;
use std::sync::atomic::Ordering;
// A panic while a lock is held must not take down every later fan-out: the
// locks recover from poisoning (`PoisonError::into_inner`) and go on.
use std::sync::Arc;
use std::time::Duration;

/// How long a replay waits for the next stored message before it re-checks the
/// stream's bounds (the messages it expects may have been deleted meanwhile).
const REPLAY_STALL: Duration = Duration::from_secs(3);
/// How often a replay may reopen its reader after errors before it gives up.
pub(super) const REPLAY_ATTEMPTS: u32 = 20;
/// Most rounds of "replay up to the fan-out's position"; each round is shorter
/// than the one before, so a handful is normal.
const CATCH_UP_ROUNDS: u32 = 1_000;

impl Hub {
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
    pub(super) async fn catch_up_lagged(&self, conn: Arc<Conn>, next: u64) {
        self.replay_until_live(&conn, next, next.saturating_sub(1), None)
            .await;
    }

    /// Replays the matching events from `next` on, then, under the core lock,
    /// puts the connection's filters back in the index with `floor`. `resume`
    /// is the id of a client's resume request: it may read from the source and
    /// ends with a `live` frame. Without it (a client whose queue filled) only
    /// the ring serves, and a client that fell behind the ring is closed (4001).
    pub(super) async fn replay_until_live(
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

    pub(super) async fn bounds_until_killed(&self, conn: &Conn) -> Option<StreamBounds> {
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
    pub(super) async fn replay_from_source(
        &self,
        conn: &Conn,
        mut next: u64,
        until: u64,
    ) -> Option<u64> {
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
