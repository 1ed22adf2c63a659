//! The event model and its stable JSON form (what WebSocket and SSE clients see).
//!
//! An [`Event`] is the envelope (ids, sequence, times, provenance) plus a [`Body`]
//! whose `kind` names the payload. In JSON the body is `"kind"` and `"data"` at
//! the top level of the envelope. Unknown fields are rejected everywhere, and a
//! parse error names the path of the failing field (`data.counts[0].value`).

use crate::stage::{code_enum, BillType, Proposer, Recommender, Stage};
use crate::vote::Threshold;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A code that is not in its table (an unknown stage, chamber, option...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} code '{code}'")]
pub struct UnknownCode {
    pub what: &'static str,
    pub code: String,
}

/// A bilingual text: Thai is authoritative, English is a translation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub th: String,
    pub en: String,
}

impl Text {
    pub fn new(th: impl Into<String>, en: impl Into<String>) -> Self {
        Text {
            th: th.into(),
            en: en.into(),
        }
    }
}

code_enum! {
    /// How precisely `occurred_at` is known.
    DatePrecision {
        Instant => "instant",
        Day => "day",
    }
}

code_enum! {
    /// The chamber a sitting belongs to.
    Chamber {
        Senate => "senate",
        House => "house",
        Joint => "joint",
    }
}

code_enum! {
    /// A lifecycle phase of a sitting.
    Phase {
        Scheduled => "scheduled",
        AgendaPublished => "agenda_published",
        Opened => "opened",
        Suspended => "suspended",
        Resumed => "resumed",
        Closed => "closed",
        Cancelled => "cancelled",
        InCameraStarted => "in_camera_started",
        InCameraEnded => "in_camera_ended",
    }
}

code_enum! {
    /// How a closed sitting ended.
    Outcome {
        Completed => "completed",
        NoQuorum => "no_quorum",
    }
}

code_enum! {
    /// Agenda categories of a Thai sitting.
    AgendaCategory {
        ChairAnnouncement => "chair_announcement",
        Minutes => "minutes",
        Consultation => "consultation",
        Question => "question",
        Urgent => "urgent",
        CommitteeReport => "committee_report",
        NewBusiness => "new_business",
    }
}

code_enum! {
    /// What became of an agenda item.
    Disposition {
        Completed => "completed",
        Deferred => "deferred",
        Withdrawn => "withdrawn",
        Referred => "referred",
    }
}

code_enum! {
    /// The capacity in which someone has the floor.
    Role {
        Member => "member",
        Minister => "minister",
        Chair => "chair",
        Committee => "committee",
        Official => "official",
        Other => "other",
    }
}

code_enum! {
    /// A decision on a motion.
    Decision {
        Adopted => "adopted",
        Rejected => "rejected",
    }
}

code_enum! {
    /// How a vote is taken.
    VoteMethod {
        Electronic => "electronic",
        RollCall => "roll_call",
        SecretBallot => "secret_ballot",
        ShowOfHands => "show_of_hands",
    }
}

code_enum! {
    /// A vote option: เห็นด้วย, ไม่เห็นด้วย, งดออกเสียง, ไม่ลงคะแนนเสียง, absent.
    VoteOption {
        Aye => "aye",
        No => "no",
        Abstain => "abstain",
        NotVoting => "not_voting",
        Absent => "absent",
    }
}

code_enum! {
    /// A group of members in a tally: MPs or senators (the chamber groups,
    /// which split a joint sitting's tally); the MPs of the government or the
    /// opposition parties (a political breakdown of the MPs' votes, for display:
    /// no threshold counts them); or `no_office_parties`, the s.256 (6) base:
    /// the MPs of the parties none of whose members is a minister, the Speaker
    /// or a Deputy Speaker ("พรรคการเมืองที่สมาชิกมิได้ดำรงตำแหน่งรัฐมนตรี
    /// ประธานสภาผู้แทนราษฎรหรือรองประธานสภาผู้แทนราษฎร"). It is not "the
    /// opposition": it takes in government parties with no minister and leaves
    /// out an opposition party holding a Deputy Speaker post.
    Group {
        House => "house",
        Senate => "senate",
        Government => "government",
        Opposition => "opposition",
        NoOfficeParties => "no_office_parties",
    }
}

impl Group {
    /// Whether the group is a House (`house`, `senate`) rather than a bloc of MPs.
    pub fn is_chamber(self) -> bool {
        matches!(self, Group::House | Group::Senate)
    }

    /// Whether a threshold may count the group: the Houses, and the s.256 (6)
    /// base; `government` and `opposition` are no base the Constitution names.
    pub fn is_constitutional_base(self) -> bool {
        !matches!(self, Group::Government | Group::Opposition)
    }
}

code_enum! {
    /// The kind of session a sitting belongs to (s.121–122).
    SessionKind {
        Ordinary => "ordinary",
        Extraordinary => "extraordinary",
    }
}

/// Where a sitting falls in the parliamentary calendar: "the second ordinary
/// session of year 4" is `{kind: ordinary, number: 2, year: 4}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub kind: SessionKind,
    /// The session's number within the parliamentary year (ครั้งที่).
    pub number: u32,
    /// The parliamentary year of the House's or the Senate's term (ปีที่).
    pub year: u32,
}

code_enum! {
    /// The result of a vote.
    VoteOutcome {
        Passed => "passed",
        Failed => "failed",
    }
}

/// The sitting an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SittingRef {
    pub chamber: Chamber,
    pub sitting_id: String,
}

/// A person on the floor or in the chair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub person_id: String,
    pub name: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillStageChanged {
    pub bill_id: String,
    pub bill_type: BillType,
    pub title: Text,
    /// The stage the bill leaves; absent for a bill's first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_stage: Option<Stage>,
    pub to_stage: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Text>,
    /// For `MERGED`: the main bill it was merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The move happened because a deadline passed without a decision (the
    /// bill is deemed approved: ss.132, 137, 143, 146).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deemed: bool,
    /// The last day (Bangkok) of the period the Constitution gives for the
    /// stage entered, where it sets one (see docs/EVENTS.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<chrono::NaiveDate>,
    /// Certified a money bill (s.134): the Senate has 30 days, not 60.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub money_bill: bool,
    /// Who introduced the bill; on its first event only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposer: Option<Proposer>,
    /// Whose recommendation the Cabinet's organic bill carries (s.131 (1)); on the
    /// first event only, with `proposer: cabinet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_by: Option<Recommender>,
    /// On the move `WITHHELD -> HOUSE_REAFFIRM` only: the Bangkok day the Senate sent
    /// the withheld bill back to the House, from which s.138 (1) counts the 180 (10)
    /// days ("นับแต่วันที่วุฒิสภาส่งร่างพระราชบัญญัตินั้นคืนไปยังสภาผู้แทนราษฎร").
    /// Absent: counted from the day the bill entered `WITHHELD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_on: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SittingLifecycle {
    pub sitting: SittingRef,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// The sitting's number in its session (การประชุม ครั้งที่).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumChecked {
    pub sitting: SittingRef,
    pub present: u32,
    pub required: u32,
    pub met: bool,
    /// Members in office (เท่าที่มีอยู่) on the day, which s.120 counts the
    /// quorum against: `required` is half of it, rounded up. The seats
    /// (500 / 250 / 200) are only an upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_office: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgendaItemStarted {
    pub sitting: SittingRef,
    pub item_id: String,
    pub category: AgendaCategory,
    pub title: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgendaItemEnded {
    pub sitting: SittingRef,
    pub item_id: String,
    pub disposition: Disposition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionConsidered {
    pub sitting: SittingRef,
    pub item_id: String,
    pub section_no: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechStarted {
    pub sitting: SittingRef,
    pub person: Person,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechEnded {
    pub sitting: SittingRef,
    pub person: Person,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChairChanged {
    pub sitting: SittingRef,
    pub person: Person,
    pub office: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotionMoved {
    pub sitting: SittingRef,
    pub motion_id: String,
    pub text: Text,
    pub mover: Person,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotionWithdrawn {
    pub sitting: SittingRef,
    pub motion_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotionDecided {
    pub sitting: SittingRef,
    pub motion_id: String,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteOpened {
    pub sitting: SittingRef,
    pub vote_id: String,
    pub method: VoteMethod,
    /// What it takes to pass, e.g. "more than half of the members present".
    pub requirement: Text,
    pub question: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_id: Option<String>,
    /// The requirement in machine-readable form (see [`crate::vote`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
}

/// One line of a tally (Popolo `counts[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteCount {
    pub option: VoteOption,
    /// `house` or `senate` in a joint sitting; absent for a single chamber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
    pub value: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteClosed {
    pub sitting: SittingRef,
    pub vote_id: String,
    pub counts: Vec<VoteCount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_id: Option<String>,
    /// On a tie, the chair's casting vote (s.120): `aye` or `no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub casting_vote: Option<VoteOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteResult {
    pub sitting: SittingRef,
    pub vote_id: String,
    pub result: VoteOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_id: Option<String>,
}

/// The payload of an event; [`Body::kind`] names it in the JSON `kind` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    BillStageChanged(BillStageChanged),
    SittingLifecycle(SittingLifecycle),
    QuorumChecked(QuorumChecked),
    AgendaItemStarted(AgendaItemStarted),
    AgendaItemEnded(AgendaItemEnded),
    SectionConsidered(SectionConsidered),
    SpeechStarted(SpeechStarted),
    SpeechEnded(SpeechEnded),
    ChairChanged(ChairChanged),
    MotionMoved(MotionMoved),
    MotionWithdrawn(MotionWithdrawn),
    MotionDecided(MotionDecided),
    VoteOpened(VoteOpened),
    VoteClosed(VoteClosed),
    VoteResult(VoteResult),
}

/// Every event kind, as it appears in the JSON `kind` field.
pub const KINDS: &[&str] = &[
    "bill.stage_changed",
    "sitting.lifecycle",
    "sitting.quorum_checked",
    "agenda.item_started",
    "agenda.item_ended",
    "agenda.section_considered",
    "floor.speech_started",
    "floor.speech_ended",
    "floor.chair_changed",
    "motion.moved",
    "motion.withdrawn",
    "motion.decided",
    "vote.opened",
    "vote.closed",
    "vote.result",
];

/// The aggregate an event belongs to, which also names its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate<'a> {
    Bill {
        bill_id: &'a str,
    },
    Sitting {
        chamber: Chamber,
        sitting_id: &'a str,
    },
}

impl Body {
    /// The JSON `kind` of this payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::BillStageChanged(_) => "bill.stage_changed",
            Body::SittingLifecycle(_) => "sitting.lifecycle",
            Body::QuorumChecked(_) => "sitting.quorum_checked",
            Body::AgendaItemStarted(_) => "agenda.item_started",
            Body::AgendaItemEnded(_) => "agenda.item_ended",
            Body::SectionConsidered(_) => "agenda.section_considered",
            Body::SpeechStarted(_) => "floor.speech_started",
            Body::SpeechEnded(_) => "floor.speech_ended",
            Body::ChairChanged(_) => "floor.chair_changed",
            Body::MotionMoved(_) => "motion.moved",
            Body::MotionWithdrawn(_) => "motion.withdrawn",
            Body::MotionDecided(_) => "motion.decided",
            Body::VoteOpened(_) => "vote.opened",
            Body::VoteClosed(_) => "vote.closed",
            Body::VoteResult(_) => "vote.result",
        }
    }

    /// The sitting of a sitting event; `None` for bill events.
    pub fn sitting(&self) -> Option<&SittingRef> {
        Some(match self {
            Body::BillStageChanged(_) => return None,
            Body::SittingLifecycle(b) => &b.sitting,
            Body::QuorumChecked(b) => &b.sitting,
            Body::AgendaItemStarted(b) => &b.sitting,
            Body::AgendaItemEnded(b) => &b.sitting,
            Body::SectionConsidered(b) => &b.sitting,
            Body::SpeechStarted(b) => &b.sitting,
            Body::SpeechEnded(b) => &b.sitting,
            Body::ChairChanged(b) => &b.sitting,
            Body::MotionMoved(b) => &b.sitting,
            Body::MotionWithdrawn(b) => &b.sitting,
            Body::MotionDecided(b) => &b.sitting,
            Body::VoteOpened(b) => &b.sitting,
            Body::VoteClosed(b) => &b.sitting,
            Body::VoteResult(b) => &b.sitting,
        })
    }

    /// The bill or sitting this event belongs to.
    pub fn aggregate(&self) -> Aggregate<'_> {
        match (self, self.sitting()) {
            (Body::BillStageChanged(b), _) => Aggregate::Bill {
                bill_id: &b.bill_id,
            },
            (_, Some(s)) => Aggregate::Sitting {
                chamber: s.chamber,
                sitting_id: &s.sitting_id,
            },
            (_, None) => unreachable!("every non-bill body carries its sitting"),
        }
    }
}

/// One legislative event: the envelope and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub schema_version: u32,
    /// Globally unique, `[a-z0-9_-]`; also the JetStream `Nats-Msg-Id`, so a resent
    /// event is stored once.
    pub event_id: String,
    /// The bill id or sitting id; must match the payload.
    pub aggregate_id: String,
    /// Per-aggregate sequence: 1 for an aggregate's first event, then +1, no gaps.
    pub seq: u64,
    /// When it happened, UTC, millisecond precision.
    pub occurred_at: DateTime<Utc>,
    pub precision: DatePrecision,
    /// When the publisher accepted it; `None` on input, set by the publisher.
    pub recorded_at: Option<DateTime<Utc>>,
    /// The system that reported the event.
    pub source: String,
    pub source_ref: Option<String>,
    /// The event id this one corrects.
    pub supersedes: Option<String>,
    pub body: Body,
}

/// Why a JSON document is not a valid event. `path` names the failing field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct JsonError {
    /// A dotted path to the failing field, e.g. `data.counts[0].option`; `.` for the document.
    pub path: String,
    pub message: String,
}

impl JsonError {
    /// A stable code: `malformed_json`, `unknown_field`, `unknown_kind` or `invalid_field`.
    pub fn code(&self) -> &'static str {
        if self.path == "kind" && self.message.starts_with("unknown event kind") {
            "unknown_kind"
        } else if self.message.starts_with("unknown field") {
            "unknown_field"
        } else if self.path == "." && !self.message.starts_with("missing field") {
            "malformed_json"
        } else {
            "invalid_field"
        }
    }
}

/// The JSON shape of the envelope. `data` is parsed once `kind` is known, so that
/// errors inside it name their real path.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRepr<D> {
    schema_version: u32,
    event_id: String,
    kind: String,
    aggregate_id: String,
    seq: u64,
    #[serde(with = "json_time")]
    occurred_at: DateTime<Utc>,
    #[serde(default = "default_precision")]
    precision: DatePrecision,
    #[serde(
        default,
        with = "json_time::option",
        skip_serializing_if = "Option::is_none"
    )]
    recorded_at: Option<DateTime<Utc>>,
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    supersedes: Option<String>,
    data: D,
}

fn default_precision() -> DatePrecision {
    DatePrecision::Instant
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Data<'a> {
            BillStageChanged(&'a BillStageChanged),
            SittingLifecycle(&'a SittingLifecycle),
            QuorumChecked(&'a QuorumChecked),
            AgendaItemStarted(&'a AgendaItemStarted),
            AgendaItemEnded(&'a AgendaItemEnded),
            SectionConsidered(&'a SectionConsidered),
            SpeechStarted(&'a SpeechStarted),
            SpeechEnded(&'a SpeechEnded),
            ChairChanged(&'a ChairChanged),
            MotionMoved(&'a MotionMoved),
            MotionWithdrawn(&'a MotionWithdrawn),
            MotionDecided(&'a MotionDecided),
            VoteOpened(&'a VoteOpened),
            VoteClosed(&'a VoteClosed),
            VoteResult(&'a VoteResult),
        }
        let data = match &self.body {
            Body::BillStageChanged(b) => Data::BillStageChanged(b),
            Body::SittingLifecycle(b) => Data::SittingLifecycle(b),
            Body::QuorumChecked(b) => Data::QuorumChecked(b),
            Body::AgendaItemStarted(b) => Data::AgendaItemStarted(b),
            Body::AgendaItemEnded(b) => Data::AgendaItemEnded(b),
            Body::SectionConsidered(b) => Data::SectionConsidered(b),
            Body::SpeechStarted(b) => Data::SpeechStarted(b),
            Body::SpeechEnded(b) => Data::SpeechEnded(b),
            Body::ChairChanged(b) => Data::ChairChanged(b),
            Body::MotionMoved(b) => Data::MotionMoved(b),
            Body::MotionWithdrawn(b) => Data::MotionWithdrawn(b),
            Body::MotionDecided(b) => Data::MotionDecided(b),
            Body::VoteOpened(b) => Data::VoteOpened(b),
            Body::VoteClosed(b) => Data::VoteClosed(b),
            Body::VoteResult(b) => Data::VoteResult(b),
        };
        EventRepr {
            schema_version: self.schema_version,
            event_id: self.event_id.clone(),
            kind: self.body.kind().to_owned(),
            aggregate_id: self.aggregate_id.clone(),
            seq: self.seq,
            occurred_at: self.occurred_at,
            precision: self.precision,
            recorded_at: self.recorded_at,
            source: self.source.clone(),
            source_ref: self.source_ref.clone(),
            supersedes: self.supersedes.clone(),
            data,
        }
        .serialize(s)
    }
}

impl Event {
    /// Parses the JSON form. Unknown fields, unknown kinds and bad codes are errors
    /// that name the failing field.
    pub fn from_json(text: &str) -> Result<Event, JsonError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let repr: EventRepr<serde_json::Value> =
            serde_path_to_error::deserialize(de).map_err(|e| JsonError {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        Event::from_repr(repr)
    }

    /// Parses one already-parsed JSON value (an element of a batch).
    pub fn from_value(value: serde_json::Value) -> Result<Event, JsonError> {
        let repr: EventRepr<serde_json::Value> =
            serde_path_to_error::deserialize(value).map_err(|e| JsonError {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        Event::from_repr(repr)
    }

    fn from_repr(repr: EventRepr<serde_json::Value>) -> Result<Event, JsonError> {
        let body = body_from_data(&repr.kind, repr.data)?;
        Ok(Event {
            schema_version: repr.schema_version,
            event_id: repr.event_id,
            aggregate_id: repr.aggregate_id,
            seq: repr.seq,
            occurred_at: repr.occurred_at,
            precision: repr.precision,
            recorded_at: repr.recorded_at,
            source: repr.source,
            source_ref: repr.source_ref,
            supersedes: repr.supersedes,
            body,
        })
    }

    /// The JSON form, compact.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }

    /// The bill or sitting this event belongs to.
    pub fn aggregate(&self) -> Aggregate<'_> {
        self.body.aggregate()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} #{} ({})",
            self.body.kind(),
            self.aggregate_id,
            self.seq,
            self.event_id
        )
    }
}

/// Parses `data` as the payload of `kind`, keeping the field path of any error.
fn body_from_data(kind: &str, data: serde_json::Value) -> Result<Body, JsonError> {
    fn parse<T: serde::de::DeserializeOwned>(data: serde_json::Value) -> Result<T, JsonError> {
        serde_path_to_error::deserialize(data).map_err(|e| {
            let inner = e.path().to_string();
            JsonError {
                path: if inner == "." {
                    "data".into()
                } else {
                    format!("data.{inner}")
                },
                message: e.inner().to_string(),
            }
        })
    }
    Ok(match kind {
        "bill.stage_changed" => Body::BillStageChanged(parse(data)?),
        "sitting.lifecycle" => Body::SittingLifecycle(parse(data)?),
        "sitting.quorum_checked" => Body::QuorumChecked(parse(data)?),
        "agenda.item_started" => Body::AgendaItemStarted(parse(data)?),
        "agenda.item_ended" => Body::AgendaItemEnded(parse(data)?),
        "agenda.section_considered" => Body::SectionConsidered(parse(data)?),
        "floor.speech_started" => Body::SpeechStarted(parse(data)?),
        "floor.speech_ended" => Body::SpeechEnded(parse(data)?),
        "floor.chair_changed" => Body::ChairChanged(parse(data)?),
        "motion.moved" => Body::MotionMoved(parse(data)?),
        "motion.withdrawn" => Body::MotionWithdrawn(parse(data)?),
        "motion.decided" => Body::MotionDecided(parse(data)?),
        "vote.opened" => Body::VoteOpened(parse(data)?),
        "vote.closed" => Body::VoteClosed(parse(data)?),
        "vote.result" => Body::VoteResult(parse(data)?),
        other => {
            return Err(JsonError {
                path: "kind".into(),
                message: format!(
                    "unknown event kind '{other}'; known kinds: {}",
                    KINDS.join(", ")
                ),
            })
        }
    })
}

/// Milliseconds since the epoch, the precision of the wire.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the epoch.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// RFC 3339 in UTC (`2021-09-10T08:31:00Z`), truncated to milliseconds on input so
/// that JSON and protobuf carry exactly the same instant.
mod json_time {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = DateTime::parse_from_rfc3339(&text).map_err(|e| {
            serde::de::Error::custom(format!("'{text}' is not an RFC 3339 time: {e}"))
        })?;
        Ok(from_millis(parsed.timestamp_millis()))
    }

    pub(super) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}
