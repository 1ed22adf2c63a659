//! What the publisher knows of each aggregate (bill or sitting): the event id at
//! each sequence; for a bill, its progress (type, stage and what the stage
//! rules need of its history); for a sitting, whether it is in camera and each
//! vote's threshold and tally. It is rebuilt from the log itself, so a
//! restarted publisher knows it too.

use crate::log::StoredEvent;
use sapha_proto::event::{Aggregate, Body, Phase, VoteCount, VoteOption};
use sapha_proto::progress::BillProgress;
use sapha_proto::stage::{BillType, Stage};
use sapha_proto::vote::{Threshold, Verdict};
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
    /// For a bill: its progress through the stages.
    bill: Option<BillProgress>,
    /// For a sitting: whether it is in camera (ประชุมลับ) now.
    in_camera: bool,
    /// For a sitting: each vote's threshold (from `vote.opened`) and tally
    /// with the chair's casting vote (from `vote.closed`).
    votes: HashMap<String, Vote>,
}

#[derive(Debug, Default, Clone)]
struct Vote {
    threshold: Option<Threshold>,
    tally: Option<(Vec<VoteCount>, Option<VoteOption>)>,
}

impl AggregateState {
    /// Rebuilds the state from the aggregate's stored events.
    pub fn from_history(history: &[StoredEvent]) -> AggregateState {
        let mut state = AggregateState::default();
        for stored in history {
            state.apply(&stored.event);
        }
        state
    }

    /// Records an event as stored.
    pub fn apply(&mut self, event: &Event) {
        self.ids
            .insert(event.seq, (event.event_id.clone(), content_digest(event)));
        self.last_seq = self.last_seq.max(event.seq);
        match &event.body {
            Body::BillStageChanged(b) => match &mut self.bill {
                Some(progress) => progress.apply(b, event.occurred_at),
                None => self.bill = Some(BillProgress::start(b, event.occurred_at)),
            },
            Body::VoteOpened(v) => {
                self.votes.entry(v.vote_id.clone()).or_default().threshold = v.threshold.clone();
            }
            Body::VoteClosed(v) => {
                self.votes.entry(v.vote_id.clone()).or_default().tally =
                    Some((v.counts.clone(), v.casting_vote));
            }
            Body::SittingLifecycle(l) => match l.phase {
                Phase::InCameraStarted => self.in_camera = true,
                Phase::InCameraEnded | Phase::Closed | Phase::Cancelled => self.in_camera = false,
                _ => {}
            },
            _ => {}
        }
    }

    /// Whether the sitting is in camera: then only lifecycle events may be published.
    pub fn in_camera(&self) -> bool {
        self.in_camera
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
        self.bill.as_ref().map(|p| (p.bill_type, p.stage))
    }

    /// The bill's progress, for the rules that need its history.
    pub fn progress(&self) -> Option<&BillProgress> {
        self.bill.as_ref()
    }

    /// What the vote's threshold says of its tally, once both are known;
    /// `None` before that or without a threshold.
    pub fn verdict(&self, vote_id: &str) -> Option<Verdict> {
        let vote = self.votes.get(vote_id)?;
        let (counts, casting) = vote.tally.as_ref()?;
        Some(vote.threshold.as_ref()?.evaluate(counts, *casting))
    }
}
