//! In-camera sittings (ประชุมลับ) at the hub: defence in depth behind the
//! publisher's own check. While a sitting is in camera nothing of its content may
//! be streamed, only the lifecycle (that it went in camera, that it came out).
//!
//! The publisher refuses such events, but another writer (a bug, a compromised
//! system, an operator with `nats pub`) could still put one into the stream. The
//! hub therefore keeps, per sitting, the stream-sequence intervals during which
//! it was in camera, and never delivers a non-lifecycle event of that sitting
//! whose sequence falls in one: not live, not in a replay from memory, not in a
//! replay from the stream, in any format.
//!
//! The intervals are keyed by stream sequence rather than by "now", so a resume
//! that replays an old in-camera period withholds it too, and content published
//! after the sitting came out of camera is delivered normally. At start the hub
//! rebuilds them from the stored lifecycle events
//! ([`crate::EventSource::lifecycle_until`]); from then on the fan-out updates
//! them in stream order.

use crate::prepared::Prepared;
use sapha_proto::event::{Body, Phase};
use sapha_proto::Event;
use std::collections::HashMap;

/// Most in-camera intervals remembered in all. Each is a few words; a real
/// legislature has a handful a year. Past the bound the oldest *closed* interval
/// is forgotten (an open one never is), which can only matter for a resume that
/// reaches years back.
pub(crate) const MAX_INTERVALS: usize = 100_000;

/// What a lifecycle event does to a sitting's in-camera state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// `in_camera_started`.
    Start,
    /// `in_camera_ended`, `closed` or `cancelled` (as in the publisher's state).
    End,
}

/// What the in-camera rule needs to know about one event, from its decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CameraInfo {
    /// `sitting.<chamber>.<sitting_id>` for a sitting event, else `None`.
    pub(crate) sitting: Option<String>,
    /// Whether the event is a lifecycle event (always deliverable).
    pub(crate) lifecycle: bool,
    pub(crate) change: Option<Change>,
}

impl CameraInfo {
    pub(crate) fn of(event: &Event) -> CameraInfo {
        let sitting = event
            .body
            .sitting()
            .map(|s| format!("sitting.{}.{}", s.chamber, s.sitting_id));
        let (lifecycle, change) = match &event.body {
            Body::SittingLifecycle(l) => (
                true,
                match l.phase {
                    Phase::InCameraStarted => Some(Change::Start),
                    Phase::InCameraEnded | Phase::Closed | Phase::Cancelled => Some(Change::End),
                    _ => None,
                },
            ),
            _ => (false, None),
        };
        CameraInfo {
            sitting,
            lifecycle,
            change,
        }
    }
}

/// One in-camera period: sequences strictly between `start` and `end` (open
/// while `end` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    start: u64,
    end: Option<u64>,
}

/// The in-camera intervals of every sitting that was ever in camera (only those:
/// a sitting that never went in camera costs nothing).
#[derive(Debug, Default)]
pub(crate) struct Camera {
    sittings: HashMap<String, Vec<Interval>>,
    intervals: usize,
}

impl Camera {
    /// Applies a lifecycle event at `seq`. Events must come in stream order.
    pub(crate) fn observe(&mut self, seq: u64, info: &CameraInfo) {
        let (Some(sitting), Some(change)) = (&info.sitting, info.change) else {
            return;
        };
        let list = self.sittings.entry(sitting.clone()).or_default();
        let open = list.last_mut().filter(|i| i.end.is_none());
        match (change, open) {
            (Change::Start, None) => {
                list.push(Interval {
                    start: seq,
                    end: None,
                });
                self.intervals += 1;
            }
            (Change::End, Some(i)) => i.end = Some(seq),
            // A second start while in camera, or an end while not: nothing changes.
            _ => {}
        }
        if self.intervals > MAX_INTERVALS {
            self.forget_oldest_closed();
        }
    }

    /// Whether the event `p` must not be delivered to anyone.
    pub(crate) fn withheld(&self, p: &Prepared) -> bool {
        self.withheld_at(&p.camera, p.seq)
    }

    pub(crate) fn withheld_at(&self, info: &CameraInfo, seq: u64) -> bool {
        if info.lifecycle {
            return false;
        }
        let Some(sitting) = &info.sitting else {
            return false;
        };
        self.sittings.get(sitting).is_some_and(|list| {
            list.iter()
                .any(|i| i.start < seq && i.end.is_none_or(|end| seq < end))
        })
    }

    /// Whether `sitting` (`sitting.<chamber>.<id>`) is in camera now.
    #[cfg(test)]
    pub(crate) fn in_camera(&self, sitting: &str) -> bool {
        self.sittings
            .get(sitting)
            .and_then(|l| l.last())
            .is_some_and(|i| i.end.is_none())
    }

    fn forget_oldest_closed(&mut self) {
        let oldest = self
            .sittings
            .iter()
            .filter_map(|(k, l)| l.first().filter(|i| i.end.is_some()).map(|i| (i.start, k)))
            .min()
            .map(|(_, k)| k.clone());
        if let Some(k) = oldest {
            let list = self.sittings.get_mut(&k).expect("just found");
            list.remove(0);
            self.intervals -= 1;
            if list.is_empty() {
                self.sittings.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sitting: &str, lifecycle: bool, change: Option<Change>) -> CameraInfo {
        CameraInfo {
            sitting: Some(sitting.into()),
            lifecycle,
            change,
        }
    }

    #[test]
    fn content_between_start_and_end_is_withheld() {
        let s = "sitting.senate.s-1";
        let content = info(s, false, None);
        let mut c = Camera::default();
        c.observe(10, &info(s, true, Some(Change::Start)));
        assert!(c.in_camera(s));
        assert!(!c.withheld_at(&content, 9), "before the start");
        assert!(c.withheld_at(&content, 11));
        assert!(c.withheld_at(&content, 1_000), "open: everything after");
        assert!(
            !c.withheld_at(&info(s, true, None), 12),
            "lifecycle always passes"
        );
        assert!(
            !c.withheld_at(&info("sitting.senate.s-2", false, None), 12),
            "other sittings pass"
        );
        let bill = CameraInfo {
            sitting: None,
            lifecycle: false,
            change: None,
        };
        assert!(!c.withheld_at(&bill, 12));
        c.observe(20, &info(s, true, Some(Change::End)));
        assert!(!c.in_camera(s));
        assert!(c.withheld_at(&content, 19), "still withheld on replay");
        assert!(!c.withheld_at(&content, 21), "after the end");
        // A second period.
        c.observe(30, &info(s, true, Some(Change::Start)));
        c.observe(31, &info(s, true, Some(Change::Start)));
        c.observe(40, &info(s, true, Some(Change::End)));
        assert!(c.withheld_at(&content, 35));
        assert!(!c.withheld_at(&content, 25));
        assert!(!c.withheld_at(&content, 41));
    }

    #[test]
    fn closed_and_cancelled_end_it_and_an_end_alone_does_nothing() {
        let s = "sitting.house.h-1";
        let mut c = Camera::default();
        c.observe(5, &info(s, true, Some(Change::End)));
        assert!(!c.withheld_at(&info(s, false, None), 6));
        let e = sapha_proto::examples::one_of_each_kind()
            .into_iter()
            .find(|e| matches!(e.body, Body::SittingLifecycle(_)))
            .unwrap();
        for (phase, change) in [
            (Phase::InCameraStarted, Some(Change::Start)),
            (Phase::InCameraEnded, Some(Change::End)),
            (Phase::Closed, Some(Change::End)),
            (Phase::Cancelled, Some(Change::End)),
            (Phase::Opened, None),
        ] {
            let mut e = e.clone();
            if let Body::SittingLifecycle(l) = &mut e.body {
                l.phase = phase;
            }
            let i = CameraInfo::of(&e);
            assert!(i.lifecycle);
            assert_eq!(i.change, change, "{phase:?}");
            assert!(i.sitting.unwrap().starts_with("sitting."));
        }
    }

    #[test]
    fn memory_is_bounded_and_open_intervals_are_kept() {
        let mut c = Camera::default();
        c.observe(1, &info("sitting.joint.open", true, Some(Change::Start)));
        for n in 0..(MAX_INTERVALS as u64 + 10) {
            let s = format!("sitting.senate.s-{}", n % 1000);
            c.observe(10 + 2 * n, &info(&s, true, Some(Change::Start)));
            c.observe(11 + 2 * n, &info(&s, true, Some(Change::End)));
        }
        assert!(c.intervals <= MAX_INTERVALS);
        assert!(c.in_camera("sitting.joint.open"));
    }
}
