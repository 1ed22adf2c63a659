//! What the publisher knows of each aggregate (bill or sitting): the event id at
//! each sequence and, for a bill, its type and last stage. It is rebuilt from the
//! log itself, so a restarted publisher knows it too.

use crate::log::StoredEvent;
use sapha_proto::event::{Aggregate, Body, Phase};
use sapha_proto::stage::{BillType, Stage};
use sapha_proto::Event;
use std::collections::HashMap;

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
    /// Event id stored at each per-aggregate sequence.
    ids: HashMap<u64, String>,
    last_seq: u64,
    /// For a bill: its type and the stage it is at.
    bill: Option<(BillType, Stage)>,
    /// For a sitting: whether it is in camera (ประชุมลับ) now.
    in_camera: bool,
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
        self.ids.insert(event.seq, event.event_id.clone());
        self.last_seq = self.last_seq.max(event.seq);
        match &event.body {
            Body::BillStageChanged(b) => self.bill = Some((b.bill_type, b.to_stage)),
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
        self.ids.get(&seq).map(String::as_str)
    }

    /// The bill's type and current stage; `None` for a new bill or a sitting.
    pub fn bill(&self) -> Option<(BillType, Stage)> {
        self.bill
    }
}
