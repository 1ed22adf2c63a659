//! The projection of the stream into what is true now: one pure fold,
//! `(state, event) -> state`, that the publisher (its validation state), the
//! hub (its state API) and the clients (snapshot, then subscribe) all use.
//!
//! - [`BillState`]: a bill's type, bilingual title, proposer, current stage and
//!   since when, and its timeline: every stage with its date, the event and
//!   stream position, and the vote that decided it where one did.
//! - [`SittingState`]: a sitting's chamber, number, session, day and status,
//!   its agenda with the current item, the chair, the floor, the last quorum
//!   check and every vote with its tallies.
//! - [`Projection`]: all of them, at a stream position (`seq`).
//!
//! In-camera rule: while a sitting is in camera only its lifecycle may change
//! it; anything else of that sitting is ignored, so nothing the stream withholds
//! can appear here, even if a source broke the rule.

use crate::event::*;
use crate::progress::{bangkok_day, BillProgress};
use crate::stage::{BillType, Proposer, Stage};
use crate::vote::{Threshold, Verdict};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One stage a bill passed, in its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Stage>,
    pub to: Stage,
    pub at: DateTime<Utc>,
    pub precision: DatePrecision,
    /// The Bangkok day of `at`.
    pub day: NaiveDate,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deemed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<Text>,
    pub event_id: String,
    /// The stream position of the event.
    pub seq: u64,
    /// The vote on this bill, that day, whose result moved it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<VoteRef>,
}

/// A vote, by its sitting and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRef {
    pub sitting_id: String,
    pub vote_id: String,
    pub result: VoteOutcome,
    pub at: DateTime<Utc>,
}

/// A bill, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillState {
    pub bill_id: String,
    pub bill_type: BillType,
    pub title: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposer: Option<Proposer>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub money_bill: bool,
    pub stage: Stage,
    /// When the bill entered its stage.
    pub since: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    pub timeline: Vec<StageEntry>,
    /// Votes on the bill, in any sitting, in order.
    pub votes: Vec<VoteRef>,
    /// The stream position of the bill's last event.
    pub seq: u64,
    /// What the stage rules need of the history (the publisher checks with it).
    #[serde(skip)]
    progress: Option<BillProgress>,
}

impl BillState {
    /// A bill from its first event (then [`BillState::apply`] it).
    fn new(b: &BillStageChanged, event: &Event) -> BillState {
        BillState {
            bill_id: b.bill_id.clone(),
            bill_type: b.bill_type,
            title: b.title.clone(),
            proposer: b.proposer,
            money_bill: false,
            stage: b.to_stage,
            since: event.occurred_at,
            deadline: None,
            merged_into: None,
            timeline: Vec::new(),
            votes: Vec::new(),
            seq: 0,
            progress: None,
        }
    }

    /// A bill's state after its first event, at stream position `seq`.
    pub fn start(b: &BillStageChanged, event: &Event, seq: u64) -> BillState {
        let mut state = BillState::new(b, event);
        state.apply(b, event, seq);
        state
    }

    /// The fold of one stage event.
    pub fn apply(&mut self, b: &BillStageChanged, event: &Event, seq: u64) {
        let day = bangkok_day(event.occurred_at);
        // A day-precision event happened some time that day; an exact one after
        // the vote that moved it.
        let decided_by = self
            .votes
            .iter()
            .rev()
            .find(|v| {
                bangkok_day(v.at) == day
                    && (event.precision == DatePrecision::Day || v.at <= event.occurred_at)
            })
            .filter(|_| b.from_stage.is_some())
            .cloned();
        if self.title != b.title {
            self.title = b.title.clone();
        }
        self.stage = b.to_stage;
        self.since = event.occurred_at;
        self.money_bill |= b.money_bill || b.bill_type == BillType::Budget;
        self.proposer = self.proposer.or(b.proposer);
        self.merged_into = b.merged_into.clone().or(self.merged_into.take());
        if b.deadline.is_some() {
            self.deadline = b.deadline;
        } else if crate::stage::rules_for(self.bill_type)
            .clock(b.to_stage)
            .is_some()
        {
            self.deadline = None;
        }
        self.timeline.push(StageEntry {
            from: b.from_stage,
            to: b.to_stage,
            at: event.occurred_at,
            precision: event.precision,
            day,
            deemed: b.deemed,
            deadline: b.deadline,
            note: b.note.clone(),
            event_id: event.event_id.clone(),
            seq,
            decided_by,
        });
        self.seq = seq;
        match &mut self.progress {
            Some(p) => p.apply(b, event.occurred_at),
            None => self.progress = Some(BillProgress::start(b, event.occurred_at)),
        }
    }

    /// The bill's progress for the stage rules (`None` only in a state read
    /// from a snapshot, until [`BillState::restore`]).
    pub fn progress(&self) -> Option<&BillProgress> {
        self.progress.as_ref()
    }

    /// Rebuilds what the snapshot leaves out (the rules' view of the history)
    /// from the timeline.
    pub fn restore(&mut self) {
        let mut progress: Option<BillProgress> = None;
        for entry in &self.timeline {
            let b = BillStageChanged {
                bill_id: self.bill_id.clone(),
                bill_type: self.bill_type,
                title: self.title.clone(),
                from_stage: entry.from,
                to_stage: entry.to,
                note: None,
                merged_into: None,
                deemed: entry.deemed,
                deadline: entry.deadline,
                money_bill: self.money_bill,
                proposer: None,
                recommended_by: None,
                returned_on: None,
            };
            match &mut progress {
                Some(p) => p.apply(&b, entry.at),
                None => progress = Some(BillProgress::start(&b, entry.at)),
            }
        }
        self.progress = progress;
    }

    /// The day the bill last moved, in Bangkok.
    pub fn moved_on(&self) -> NaiveDate {
        bangkok_day(self.since)
    }

    /// Whether the bill moved on `day` (Bangkok).
    pub fn moved_on_day(&self, day: NaiveDate) -> bool {
        self.timeline.iter().any(|e| e.day == day)
    }
}

/// The status of a sitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SittingStatus {
    Scheduled,
    Open,
    Suspended,
    InCamera,
    Closed,
    Cancelled,
}

impl SittingStatus {
    /// Whether the sitting is in progress (open, suspended or in camera).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SittingStatus::Open | SittingStatus::Suspended | SittingStatus::InCamera
        )
    }

    pub fn code(self) -> &'static str {
        match self {
            SittingStatus::Scheduled => "scheduled",
            SittingStatus::Open => "open",
            SittingStatus::Suspended => "suspended",
            SittingStatus::InCamera => "in_camera",
            SittingStatus::Closed => "closed",
            SittingStatus::Cancelled => "cancelled",
        }
    }
}

/// An agenda item and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaEntry {
    pub item_id: String,
    pub category: AgendaCategory,
    pub title: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bill_id: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Sections considered, in a second reading.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sections: Vec<String>,
}

/// Who holds the chair or the floor, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub person: Person,
    /// The office (chair) or the role (floor).
    pub capacity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub office: Option<Text>,
    pub since: DateTime<Utc>,
}

/// The last quorum check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumState {
    pub present: u32,
    pub required: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_office: Option<u32>,
    pub met: bool,
    pub at: DateTime<Utc>,
}

/// A vote, from its opening to its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteState {
    pub vote_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<VoteMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bill_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Vec<VoteCount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub casting_vote: Option<VoteOption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<VoteOutcome>,
}

impl VoteState {
    /// What the threshold says of the tally, once both are known.
    pub fn verdict(&self) -> Option<Verdict> {
        Some(
            self.threshold
                .as_ref()?
                .evaluate(self.counts.as_ref()?, self.casting_vote),
        )
    }
}

/// A motion and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MotionState {
    pub motion_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    /// `moved`, `withdrawn`, `adopted` or `rejected`.
    pub status: String,
}

/// A sitting, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SittingState {
    pub sitting_id: String,
    pub chamber: Chamber,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// The sitting's day (Bangkok): the day it opened, else of its first event.
    pub day: NaiveDate,
    pub status: SittingStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    pub agenda: Vec<AgendaEntry>,
    /// The item under consideration now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chair: Option<Holder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<Holder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumState>,
    pub votes: Vec<VoteState>,
    pub motions: Vec<MotionState>,
    /// The stream position of the sitting's last event.
    pub seq: u64,
}

impl SittingState {
    /// An empty sitting that `event` (of it) is the first event of; apply it next.
    pub fn start(sitting: &SittingRef, event: &Event) -> SittingState {
        SittingState {
            sitting_id: sitting.sitting_id.clone(),
            chamber: sitting.chamber,
            title: None,
            number: None,
            session: None,
            day: bangkok_day(event.occurred_at),
            status: SittingStatus::Scheduled,
            outcome: None,
            opened_at: None,
            closed_at: None,
            agenda: Vec::new(),
            current_item: None,
            chair: None,
            floor: None,
            quorum: None,
            votes: Vec::new(),
            motions: Vec::new(),
            seq: 0,
        }
    }

    /// Whether only lifecycle events may change the sitting now (ประชุมลับ).
    pub fn in_camera(&self) -> bool {
        self.status == SittingStatus::InCamera
    }

    /// The vote `vote_id`, if the sitting has seen it.
    pub fn vote(&self, vote_id: &str) -> Option<&VoteState> {
        self.votes.iter().find(|v| v.vote_id == vote_id)
    }

    fn vote_mut(&mut self, vote_id: &str) -> &mut VoteState {
        if let Some(i) = self.votes.iter().position(|v| v.vote_id == vote_id) {
            return &mut self.votes[i];
        }
        self.votes.push(VoteState {
            vote_id: vote_id.to_owned(),
            method: None,
            question: None,
            requirement: None,
            threshold: None,
            bill_id: None,
            opened_at: None,
            counts: None,
            casting_vote: None,
            closed_at: None,
            result: None,
        });
        self.votes.last_mut().expect("just pushed")
    }

    fn motion_mut(&mut self, motion_id: &str) -> &mut MotionState {
        if let Some(i) = self.motions.iter().position(|m| m.motion_id == motion_id) {
            return &mut self.motions[i];
        }
        self.motions.push(MotionState {
            motion_id: motion_id.to_owned(),
            text: None,
            status: "moved".into(),
        });
        self.motions.last_mut().expect("just pushed")
    }

    /// The fold of one event of this sitting. Returns false when the event was
    /// ignored (content while in camera).
    pub fn apply(&mut self, event: &Event, seq: u64) -> bool {
        let at = event.occurred_at;
        if self.in_camera() && !matches!(event.body, Body::SittingLifecycle(_)) {
            return false;
        }
        self.seq = seq;
        match &event.body {
            Body::SittingLifecycle(l) => {
                if l.title.is_some() {
                    self.title = l.title.clone();
                }
                self.number = l.number.or(self.number);
                if l.session.is_some() {
                    self.session = l.session.clone();
                }
                self.status = match l.phase {
                    Phase::Scheduled | Phase::AgendaPublished => self.status,
                    Phase::Opened => {
                        self.opened_at = Some(at);
                        self.day = bangkok_day(at);
                        SittingStatus::Open
                    }
                    Phase::Resumed | Phase::InCameraEnded => SittingStatus::Open,
                    Phase::Suspended => SittingStatus::Suspended,
                    Phase::InCameraStarted => SittingStatus::InCamera,
                    Phase::Closed => {
                        self.closed_at = Some(at);
                        self.outcome = l.outcome;
                        self.floor = None;
                        SittingStatus::Closed
                    }
                    Phase::Cancelled => SittingStatus::Cancelled,
                };
            }
            Body::QuorumChecked(q) => {
                self.quorum = Some(QuorumState {
                    present: q.present,
                    required: q.required,
                    in_office: q.in_office,
                    met: q.met,
                    at,
                });
            }
            Body::AgendaItemStarted(a) => {
                self.current_item = Some(a.item_id.clone());
                self.agenda.retain(|e| e.item_id != a.item_id);
                self.agenda.push(AgendaEntry {
                    item_id: a.item_id.clone(),
                    category: a.category,
                    title: a.title.clone(),
                    bill_id: a.bill_id.clone(),
                    started_at: at,
                    ended_at: None,
                    disposition: None,
                    sections: Vec::new(),
                });
            }
            Body::AgendaItemEnded(a) => {
                if let Some(e) = self.agenda.iter_mut().find(|e| e.item_id == a.item_id) {
                    e.ended_at = Some(at);
                    e.disposition = Some(a.disposition);
                }
                if self.current_item.as_deref() == Some(a.item_id.as_str()) {
                    self.current_item = None;
                }
            }
            Body::SectionConsidered(s) => {
                if let Some(e) = self.agenda.iter_mut().find(|e| e.item_id == s.item_id) {
                    e.sections.push(s.section_no.clone());
                }
            }
            Body::SpeechStarted(s) => {
                self.floor = Some(Holder {
                    person: s.person.clone(),
                    capacity: s.role.code().into(),
                    office: None,
                    since: at,
                });
            }
            Body::SpeechEnded(s) => {
                if self
                    .floor
                    .as_ref()
                    .is_some_and(|f| f.person.person_id == s.person.person_id)
                {
                    self.floor = None;
                }
            }
            Body::ChairChanged(c) => {
                self.chair = Some(Holder {
                    person: c.person.clone(),
                    capacity: "chair".into(),
                    office: Some(c.office.clone()),
                    since: at,
                });
            }
            Body::MotionMoved(m) => {
                let motion = self.motion_mut(&m.motion_id);
                motion.text = Some(m.text.clone());
                motion.status = "moved".into();
            }
            Body::MotionWithdrawn(m) => self.motion_mut(&m.motion_id).status = "withdrawn".into(),
            Body::MotionDecided(m) => {
                self.motion_mut(&m.motion_id).status = m.decision.code().into();
            }
            Body::VoteOpened(v) => {
                let vote = self.vote_mut(&v.vote_id);
                vote.method = Some(v.method);
                vote.question = Some(v.question.clone());
                vote.requirement = Some(v.requirement.clone());
                vote.threshold = v.threshold.clone();
                vote.bill_id = v.bill_id.clone().or(vote.bill_id.take());
                vote.opened_at = Some(at);
            }
            Body::VoteClosed(v) => {
                let vote = self.vote_mut(&v.vote_id);
                vote.counts = Some(v.counts.clone());
                vote.casting_vote = v.casting_vote;
                vote.bill_id = v.bill_id.clone().or(vote.bill_id.take());
                vote.closed_at = Some(at);
            }
            Body::VoteResult(v) => {
                let vote = self.vote_mut(&v.vote_id);
                vote.result = Some(v.result);
                vote.bill_id = v.bill_id.clone().or(vote.bill_id.take());
            }
            Body::BillStageChanged(_) => {}
        }
        true
    }
}

/// Every bill and sitting, as of stream position `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    /// The last stream position applied.
    pub seq: u64,
    pub bills: BTreeMap<String, BillState>,
    pub sittings: BTreeMap<String, SittingState>,
}

impl Projection {
    /// Applies the event at stream position `seq`. Positions at or below the
    /// projection's are ignored (an event is applied once).
    pub fn apply(&mut self, seq: u64, event: &Event) {
        if seq <= self.seq && self.seq != 0 {
            return;
        }
        self.seq = seq;
        match &event.body {
            Body::BillStageChanged(b) => {
                self.bills
                    .entry(b.bill_id.clone())
                    .or_insert_with(|| BillState::new(b, event))
                    .apply(b, event, seq);
            }
            body => {
                let Some(sitting) = body.sitting() else {
                    return;
                };
                let state = self
                    .sittings
                    .entry(sitting.sitting_id.clone())
                    .or_insert_with(|| SittingState::start(sitting, event));
                let applied = state.apply(event, seq);
                if let (true, Body::VoteResult(v)) = (applied, body) {
                    self.record_vote_on_bill(sitting, v, event.occurred_at);
                }
            }
        }
    }

    /// A position with nothing to apply (a message that is not an event).
    pub fn advance(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    fn record_vote_on_bill(&mut self, sitting: &SittingRef, v: &VoteResult, at: DateTime<Utc>) {
        let Some(bill) = v.bill_id.as_ref().and_then(|id| self.bills.get_mut(id)) else {
            return;
        };
        bill.votes.push(VoteRef {
            sitting_id: sitting.sitting_id.clone(),
            vote_id: v.vote_id.clone(),
            result: v.result,
            at,
        });
    }

    /// Rebuilds what a snapshot leaves out; call it on a deserialized projection.
    pub fn restore(&mut self) {
        for bill in self.bills.values_mut() {
            bill.restore();
        }
    }

    /// The sittings in progress, by id.
    pub fn live_sittings(&self) -> impl Iterator<Item = &SittingState> {
        self.sittings.values().filter(|s| s.status.is_live())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::one_of_each_kind;

    #[test]
    fn the_story_of_10_sep_2021_folds_into_one_bill_and_one_sitting() {
        let mut p = Projection::default();
        for (i, e) in one_of_each_kind().iter().enumerate() {
            p.apply(i as u64 + 1, e);
        }
        assert_eq!(p.seq, 15);
        let bill = &p.bills["b-2564-ca-0001"];
        assert_eq!(bill.stage, Stage::Approved);
        assert_eq!(bill.timeline.len(), 1);
        let sitting = &p.sittings["joint-2564-1-10"];
        assert_eq!(sitting.status, SittingStatus::Open);
        assert_eq!(sitting.quorum.as_ref().unwrap().required, 365);
        let vote = sitting.vote("vote-1").unwrap();
        assert_eq!(vote.result, Some(VoteOutcome::Passed));
        assert_eq!(vote.verdict(), Some(Verdict::Passed));
        assert_eq!(
            sitting.chair.as_ref().unwrap().office.as_ref().unwrap().en,
            "President of the National Assembly"
        );
        assert_eq!(sitting.session.as_ref().unwrap().year, 3);
        // The vote came after the bill's event here, so it is on the bill but
        // decided no stage of its timeline.
        assert_eq!(bill.votes.len(), 1);
    }

    #[test]
    fn nothing_of_an_in_camera_sitting_changes_it_but_its_lifecycle() {
        let events = one_of_each_kind();
        let sitting_events: Vec<&Event> = events
            .iter()
            .filter(|e| e.aggregate_id == "joint-2564-1-10")
            .collect();
        let mut p = Projection::default();
        p.apply(1, sitting_events[0]);
        let mut in_camera = sitting_events[0].clone();
        let Body::SittingLifecycle(l) = &mut in_camera.body else {
            unreachable!()
        };
        l.phase = Phase::InCameraStarted;
        p.apply(2, &in_camera);
        // A quorum check and a vote while in camera: ignored.
        p.apply(3, sitting_events[1]);
        p.apply(4, sitting_events[6]);
        let s = &p.sittings["joint-2564-1-10"];
        assert_eq!(s.status, SittingStatus::InCamera);
        assert!(s.quorum.is_none() && s.votes.is_empty());
        assert_eq!(p.seq, 4, "the position still moves on");
    }

    #[test]
    fn an_event_is_applied_once() {
        let events = one_of_each_kind();
        let mut p = Projection::default();
        p.apply(1, &events[0]);
        p.apply(1, &events[0]);
        assert_eq!(p.bills["b-2564-ca-0001"].timeline.len(), 1);
    }

    #[test]
    fn a_snapshot_round_trips_and_rebuilds_the_rules_state() {
        let mut p = Projection::default();
        for (i, e) in one_of_each_kind().iter().enumerate() {
            p.apply(i as u64 + 1, e);
        }
        let json = serde_json::to_string(&p).unwrap();
        let mut back: Projection = serde_json::from_str(&json).unwrap();
        assert!(back.bills["b-2564-ca-0001"].progress().is_none());
        back.restore();
        assert_eq!(back, p);
    }
}
