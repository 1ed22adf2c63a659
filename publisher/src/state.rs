//! What the publisher knows of each aggregate (bill or sitting): the event id at
//! each sequence, and the aggregate's state by the projection's one fold
//! (`sapha_proto::projection`): for a bill its stage and what the stage rules
//! need of its history, for a sitting whether it is in camera and each vote's
//! threshold and tally. It is rebuilt from the log itself, so a restarted
//! publisher knows it too.

use sapha_log::StoredEvent;
use sapha_proto::event::{Aggregate, Body};
use sapha_proto::progress::BillProgress;
use sapha_proto::projection::{BillState, SittingState};
use sapha_proto::stage::{BillType, Stage};
use sapha_proto::vote::Verdict;
use sapha_proto::Event;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// What makes two events with the same id the same event: a SHA-256 of the
/// protobuf encoding with `recorded_at` left out, since the publisher fills
/// that in when a sender omits it, and an honest retry must still match.
pub type ContentDigest = [u8; 32];

/// The content digest of `event` (see [`ContentDigest`]).
pub fn content_digest(event: &Event) -> ContentDigest {
    let mut content = event.clone();
    content.recorded_at = None;
    Sha256::digest(content.encode_proto()).into()
}

/// The key of an aggregate in the publisher's state table.
pub fn aggregate_key(aggregate: Aggregate<'_>) -> String {
    match aggregate {
        Aggregate::Bill { bill_id } => format!("bill/{bill_id}"),
        Aggregate::Sitting {
            chamber,
            sitting_id,
        } => format!("sitting/{chamber}/{sitting_id}"),
    }
}

/// The known history of one aggregate.
#[derive(Debug, Default, Clone)]
pub struct AggregateState {
    /// Event id and content digest stored at each per-aggregate sequence.
    ids: HashMap<u64, (String, ContentDigest)>,
    last_seq: u64,
    /// For a bill: its state, by the projection's fold.
    bill: Option<BillState>,
    /// For a sitting: its state (in camera or not, each vote's threshold and
    /// tally), by the projection's fold.
    sitting: Option<SittingState>,
}

impl AggregateState {
    /// Rebuilds the state from the aggregate's stored events.
    pub fn from_history(history: &[StoredEvent]) -> AggregateState {
        let mut state = AggregateState::default();
        for stored in history {
            state.apply_at(&stored.event, stored.stream_seq);
        }
        state
    }

    /// Records an event as stored.
    pub fn apply(&mut self, event: &Event) {
        self.apply_at(event, 0);
    }

    fn apply_at(&mut self, event: &Event, stream_seq: u64) {
        self.ids
            .insert(event.seq, (event.event_id.clone(), content_digest(event)));
        self.last_seq = self.last_seq.max(event.seq);
        match &event.body {
            Body::BillStageChanged(b) => match &mut self.bill {
                Some(bill) => bill.apply(b, event, stream_seq),
                None => self.bill = Some(BillState::start(b, event, stream_seq)),
            },
            body => {
                if let Some(sitting) = body.sitting() {
                    self.sitting
                        .get_or_insert_with(|| SittingState::start(sitting, event))
                        .apply(event, stream_seq);
                }
            }
        }
    }

    /// Whether the sitting is in camera: then only lifecycle events may be published.
    pub fn in_camera(&self) -> bool {
        self.sitting.as_ref().is_some_and(SittingState::in_camera)
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The event id stored at `seq`, if the log still holds it.
    pub fn id_at(&self, seq: u64) -> Option<&str> {
        self.ids.get(&seq).map(|(id, _)| id.as_str())
    }

    /// Whether `event` is the event stored at its sequence: the same id and
    /// the same content (a resend, not a change).
    pub fn holds(&self, event: &Event) -> bool {
        self.ids
            .get(&event.seq)
            .is_some_and(|(id, digest)| *id == event.event_id && *digest == content_digest(event))
    }

    /// The bill's type and current stage; `None` for a new bill or a sitting.
    pub fn bill(&self) -> Option<(BillType, Stage)> {
        self.bill.as_ref().map(|b| (b.bill_type, b.stage))
    }

    /// The bill's progress, for the rules that need its history.
    pub fn progress(&self) -> Option<&BillProgress> {
        self.bill.as_ref()?.progress()
    }

    /// What the vote's threshold says of its tally, once both are known;
    /// `None` before that or without a threshold.
    pub fn verdict(&self, vote_id: &str) -> Option<Verdict> {
        self.sitting.as_ref()?.vote(vote_id)?.verdict()
    }
}
