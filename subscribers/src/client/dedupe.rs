//! Drops events the client has already delivered, in bounded memory.

use std::collections::{HashSet, VecDeque};

/// Remembers the last stream sequence delivered and the ids of the most recent
/// events. Stream sequences only grow, so anything at or below the last one is
/// old; the id window catches the same event stored twice under two sequences
/// (a publisher retry outside JetStream's duplicate window).
#[derive(Debug)]
pub(crate) struct Dedupe {
    /// The most ids remembered; the oldest is forgotten first.
    capacity: usize,
    order: VecDeque<String>,
    ids: HashSet<String>,
    /// The last stream sequence delivered (or the position to resume after).
    pub(crate) position: Option<u64>,
    /// The stream epoch `position` belongs to (from the hub's `welcome`), sent
    /// back on resume so that a recreated stream is told apart.
    pub(crate) epoch: Option<String>,
}

/// Why an event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    New,
    OldSeq,
    SeenId,
}

impl Dedupe {
    pub(crate) fn new(capacity: usize, position: Option<u64>) -> Dedupe {
        Dedupe {
            capacity: capacity.max(1),
            order: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            ids: HashSet::with_capacity(capacity.clamp(1, 4096)),
            position,
            epoch: None,
        }
    }

    /// Checks one delivery; a new one advances the position and is remembered.
    pub(crate) fn check(&mut self, seq: u64, event_id: &str) -> Verdict {
        if self.position.is_some_and(|p| seq <= p) {
            return Verdict::OldSeq;
        }
        // The position moves on even for a repeated id, so a resume starts after it.
        self.position = Some(seq);
        if self.ids.contains(event_id) {
            return Verdict::SeenId;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.order.push_back(event_id.to_owned());
        self.ids.insert(event_id.to_owned());
        Verdict::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_old_sequences_and_repeated_ids() {
        let mut d = Dedupe::new(2, Some(10));
        assert_eq!(d.check(10, "a"), Verdict::OldSeq);
        assert_eq!(d.check(11, "a"), Verdict::New);
        assert_eq!(d.check(11, "a"), Verdict::OldSeq);
        assert_eq!(d.check(12, "a"), Verdict::SeenId);
        assert_eq!(d.position, Some(12));
        assert_eq!(d.check(13, "b"), Verdict::New);
        assert_eq!(d.check(14, "c"), Verdict::New);
        // "a" has left the window of two.
        assert_eq!(d.check(15, "a"), Verdict::New);
        assert_eq!(d.ids.len(), 2);
    }

    #[test]
    fn without_a_position_everything_is_new() {
        let mut d = Dedupe::new(8, None);
        assert_eq!(d.check(1, "a"), Verdict::New);
        assert_eq!(d.position, Some(1));
    }
}
