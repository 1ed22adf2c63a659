//! The hub's second look at what it reads from the stream. The publisher is
//! the first line of defence; anything with write access to `parl.v1.>` can
//! bypass it. Events it would have refused (a broken contract rule, an illegal
//! stage move, a per-aggregate sequence gap, a second copy) are counted and
//! logged here, never rewritten: the stream is the record, and every client,
//! live or replayed, gets the same events (docs/PROTOCOL.md, "What the hub
//! trusts").

use sapha_proto::event::{Aggregate, Body};
use sapha_proto::stage::Stage;
use sapha_proto::Event;
use std::collections::HashMap;

/// How often each kind is logged at most (the counter has every one): a
/// writer that floods the stream must not flood the log too.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Aggregates remembered at most; past this the memory starts afresh (and the
/// next event of each aggregate is taken as its first sighting).
const MAX_AGGREGATES: usize = 200_000;

/// What the checks need to know about one event, from its decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrustInfo {
    /// `bill/<id>` or `sitting/<chamber>/<id>`.
    aggregate: String,
    /// The event's per-aggregate sequence.
    seq: u64,
    /// For a bill stage change: (from, to).
    stage: Option<(Option<Stage>, Stage)>,
    /// Whether it passes the contract's rules (`sapha_proto::validate`).
    valid: bool,
}

impl TrustInfo {
    pub(crate) fn of(event: &Event) -> TrustInfo {
        let aggregate = match event.aggregate() {
            Aggregate::Bill { bill_id } => format!("bill/{bill_id}"),
            Aggregate::Sitting {
                chamber,
                sitting_id,
            } => format!("sitting/{chamber}/{sitting_id}"),
        };
        let stage = match &event.body {
            Body::BillStageChanged(b) => Some((b.from_stage, b.to_stage)),
            _ => None,
        };
        TrustInfo {
            aggregate,
            seq: event.seq,
            stage,
            valid: sapha_proto::validate::validate(event).is_ok(),
        }
    }
}

/// A kind of event the publisher would have refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspect {
    /// Breaks a rule of the contract (`validate`): a tally, a text, a move
    /// that no bill type allows...
    Contract,
    /// A stage change whose `from_stage` is not the bill's stage.
    IllegalStage,
    /// A per-aggregate sequence that skips one or more.
    SeqGap,
    /// A per-aggregate sequence already seen: a second copy, or an event out
    /// of order.
    Duplicate,
}

impl Suspect {
    pub(crate) const ALL: [Suspect; 4] = [
        Suspect::Contract,
        Suspect::IllegalStage,
        Suspect::SeqGap,
        Suspect::Duplicate,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Suspect::Contract => "contract",
            Suspect::IllegalStage => "illegal_stage",
            Suspect::SeqGap => "seq_gap",
            Suspect::Duplicate => "duplicate",
        }
    }

    pub(crate) fn index(self) -> usize {
        Suspect::ALL
            .iter()
            .position(|s| *s == self)
            .expect("listed")
    }
}

/// One aggregate as the fan-out has seen it.
#[derive(Debug, Default)]
struct Seen {
    last_seq: u64,
    stage: Option<Stage>,
}

/// The per-aggregate memory of the fan-out. The first event the hub sees of
/// an aggregate (it may start mid-stream) is taken as it comes.
#[derive(Debug, Default)]
pub(crate) struct Trust {
    seen: HashMap<String, Seen>,
    /// When each kind was last logged.
    logged: [Option<std::time::Instant>; 4],
}

impl Trust {
    /// Whether to log this kind now: at most once per [`LOG_EVERY`].
    pub(crate) fn should_log(&mut self, suspect: Suspect) -> bool {
        let last = &mut self.logged[suspect.index()];
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }

    /// Checks one event in stream order; what is suspect about it.
    pub(crate) fn observe(&mut self, info: &TrustInfo) -> Vec<Suspect> {
        let mut found = Vec::new();
        if !info.valid {
            found.push(Suspect::Contract);
        }
        if self.seen.len() >= MAX_AGGREGATES && !self.seen.contains_key(&info.aggregate) {
            self.seen.clear();
        }
        let seen = self.seen.entry(info.aggregate.clone()).or_default();
        let first_sighting = seen.last_seq == 0;
        if !first_sighting && info.seq <= seen.last_seq {
            found.push(Suspect::Duplicate);
            return found;
        }
        if !first_sighting && info.seq != seen.last_seq + 1 {
            found.push(Suspect::SeqGap);
        }
        seen.last_seq = info.seq;
        if let Some((from, to)) = info.stage {
            if !first_sighting && from != seen.stage {
                found.push(Suspect::IllegalStage);
            }
            seen.stage = Some(to);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    fn bill(seq: u64, from: Option<Stage>, to: Stage) -> TrustInfo {
        TrustInfo {
            aggregate: "bill/b-1".into(),
            seq,
            stage: Some((from, to)),
            valid: true,
        }
    }

    #[test]
    fn each_kind_is_found_and_a_clean_history_is_not() {
        let mut t = Trust::default();
        assert!(t.observe(&bill(1, None, Proposed)).is_empty());
        assert!(t.observe(&bill(2, Some(Proposed), HouseR1)).is_empty());
        assert_eq!(
            t.observe(&bill(2, Some(Proposed), HouseR1)),
            [Suspect::Duplicate]
        );
        assert_eq!(
            t.observe(&bill(4, Some(HouseR1), HouseCommittee)),
            [Suspect::SeqGap]
        );
        assert_eq!(
            t.observe(&bill(5, Some(HouseR1), HouseR2)),
            [Suspect::IllegalStage]
        );
        let mut broken = bill(6, Some(HouseR2), HouseR3);
        broken.valid = false;
        assert_eq!(t.observe(&broken), [Suspect::Contract]);
    }

    #[test]
    fn each_kind_is_logged_at_most_once_per_interval() {
        let mut t = Trust::default();
        assert!(t.should_log(Suspect::SeqGap));
        assert!(!t.should_log(Suspect::SeqGap));
        assert!(t.should_log(Suspect::Duplicate), "kinds are apart");
    }

    #[test]
    fn the_first_sighting_of_an_aggregate_is_taken_as_it_comes() {
        let mut t = Trust::default();
        // A hub that starts mid-stream sees a bill first at seq 7.
        assert!(t
            .observe(&bill(7, Some(HouseR1), HouseCommittee))
            .is_empty());
    }
}
