//! The protobuf form: the generated `pb` types and the lossless mapping between
//! them and [`Event`]. This is what the publisher stores in JetStream and what
//! `sapha.v1.proto` WebSocket clients receive.

use crate::event::*;
use crate::stage::{BillType, Stage};
use crate::vote::{Threshold, ThresholdPart};
use prost::Message;
use std::str::FromStr;
use thiserror::Error;

/// The types generated from `schema/sapha/v1/events.proto`.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/sapha.v1.rs"));
}

/// Why protobuf bytes are not a valid event.
#[derive(Debug, Error)]
pub enum WireError {
    #[error("malformed protobuf")]
    Decode(#[from] prost::DecodeError),
    #[error("the envelope has no body")]
    MissingBody,
    #[error("missing field '{0}'")]
    MissingField(&'static str),
    #[error(transparent)]
    UnknownCode(#[from] UnknownCode),
}

impl Event {
    /// Encodes the protobuf form.
    pub fn encode_proto(&self) -> Vec<u8> {
        pb::Envelope::from(self).encode_to_vec()
    }

    /// Decodes the protobuf form.
    pub fn decode_proto(bytes: &[u8]) -> Result<Event, WireError> {
        Event::try_from(pb::Envelope::decode(bytes)?)
    }
}

fn code<T: FromStr<Err = UnknownCode>>(s: &str) -> Result<T, WireError> {
    Ok(s.parse()?)
}

fn opt_code<T: FromStr<Err = UnknownCode>>(s: Option<String>) -> Result<Option<T>, WireError> {
    s.map(|s| code(&s)).transpose()
}

fn need<T>(v: Option<T>, field: &'static str) -> Result<T, WireError> {
    v.ok_or(WireError::MissingField(field))
}

impl From<&Text> for pb::Text {
    fn from(t: &Text) -> Self {
        pb::Text {
            th: t.th.clone(),
            en: t.en.clone(),
        }
    }
}

impl From<pb::Text> for Text {
    fn from(t: pb::Text) -> Self {
        Text { th: t.th, en: t.en }
    }
}

fn text(t: Option<pb::Text>, field: &'static str) -> Result<Text, WireError> {
    need(t, field).map(Text::from)
}

impl From<&SittingRef> for pb::SittingRef {
    fn from(s: &SittingRef) -> Self {
        pb::SittingRef {
            chamber: s.chamber.code().into(),
            sitting_id: s.sitting_id.clone(),
        }
    }
}

fn sitting(s: Option<pb::SittingRef>) -> Result<SittingRef, WireError> {
    let s = need(s, "sitting")?;
    Ok(SittingRef {
        chamber: code(&s.chamber)?,
        sitting_id: s.sitting_id,
    })
}

impl From<&Person> for pb::Person {
    fn from(p: &Person) -> Self {
        pb::Person {
            person_id: p.person_id.clone(),
            name: Some((&p.name).into()),
        }
    }
}

fn person(p: Option<pb::Person>, field: &'static str) -> Result<Person, WireError> {
    let p = need(p, field)?;
    Ok(Person {
        person_id: p.person_id,
        name: text(p.name, "person.name")?,
    })
}

impl From<&Event> for pb::Envelope {
    fn from(e: &Event) -> Self {
        use pb::envelope::Body as B;
        let s = |s: &SittingRef| Some(pb::SittingRef::from(s));
        let t = |t: &Text| Some(pb::Text::from(t));
        let p = |p: &Person| Some(pb::Person::from(p));
        let body = match &e.body {
            Body::BillStageChanged(b) => B::BillStageChanged(pb::BillStageChanged {
                bill_id: b.bill_id.clone(),
                bill_type: b.bill_type.code().into(),
                title: t(&b.title),
                from_stage: b.from_stage.map(|s| s.code().into()),
                to_stage: b.to_stage.code().into(),
                note: b.note.as_ref().map(pb::Text::from),
                merged_into: b.merged_into.clone(),
                deemed: b.deemed,
                deadline: b.deadline.map(|d| d.to_string()),
                money_bill: b.money_bill,
                proposer: b.proposer.map(|p| p.code().into()),
                recommended_by: b.recommended_by.map(|r| r.code().into()),
                returned_on: b.returned_on.map(|d| d.to_string()),
            }),
            Body::SittingLifecycle(b) => B::SittingLifecycle(pb::SittingLifecycle {
                sitting: s(&b.sitting),
                phase: b.phase.code().into(),
                outcome: b.outcome.map(|o| o.code().into()),
                title: b.title.as_ref().map(pb::Text::from),
                number: b.number,
                session: b.session.as_ref().map(|s| pb::Session {
                    kind: s.kind.code().into(),
                    number: s.number,
                    year: s.year,
                }),
            }),
            Body::QuorumChecked(b) => B::QuorumChecked(pb::QuorumChecked {
                sitting: s(&b.sitting),
                present: b.present,
                required: b.required,
                met: b.met,
                in_office: b.in_office,
            }),
            Body::AgendaItemStarted(b) => B::AgendaItemStarted(pb::AgendaItemStarted {
                sitting: s(&b.sitting),
                item_id: b.item_id.clone(),
                category: b.category.code().into(),
                title: t(&b.title),
                bill_id: b.bill_id.clone(),
            }),
            Body::AgendaItemEnded(b) => B::AgendaItemEnded(pb::AgendaItemEnded {
                sitting: s(&b.sitting),
                item_id: b.item_id.clone(),
                disposition: b.disposition.code().into(),
            }),
            Body::SectionConsidered(b) => B::SectionConsidered(pb::SectionConsidered {
                sitting: s(&b.sitting),
                item_id: b.item_id.clone(),
                section_no: b.section_no.clone(),
            }),
            Body::SpeechStarted(b) => B::SpeechStarted(pb::SpeechStarted {
                sitting: s(&b.sitting),
                person: p(&b.person),
                role: b.role.code().into(),
            }),
            Body::SpeechEnded(b) => B::SpeechEnded(pb::SpeechEnded {
                sitting: s(&b.sitting),
                person: p(&b.person),
            }),
            Body::ChairChanged(b) => B::ChairChanged(pb::ChairChanged {
                sitting: s(&b.sitting),
                person: p(&b.person),
                office: t(&b.office),
            }),
            Body::MotionMoved(b) => B::MotionMoved(pb::MotionMoved {
                sitting: s(&b.sitting),
                motion_id: b.motion_id.clone(),
                text: t(&b.text),
                mover: p(&b.mover),
            }),
            Body::MotionWithdrawn(b) => B::MotionWithdrawn(pb::MotionWithdrawn {
                sitting: s(&b.sitting),
                motion_id: b.motion_id.clone(),
            }),
            Body::MotionDecided(b) => B::MotionDecided(pb::MotionDecided {
                sitting: s(&b.sitting),
                motion_id: b.motion_id.clone(),
                decision: b.decision.code().into(),
            }),
            Body::VoteOpened(b) => B::VoteOpened(pb::VoteOpened {
                sitting: s(&b.sitting),
                vote_id: b.vote_id.clone(),
                method: b.method.code().into(),
                requirement: t(&b.requirement),
                question: t(&b.question),
                bill_id: b.bill_id.clone(),
                threshold: b.threshold.as_ref().map(|t| pb::Threshold {
                    parts: t
                        .parts
                        .iter()
                        .map(|p| pb::ThresholdPart {
                            group: p.group.map(|g| g.code().into()),
                            base: p.base.code().into(),
                            compare: p.compare.map(|c| c.code().into()),
                            numerator: p.numerator,
                            denominator: p.denominator,
                            members_in_office: p.members_in_office,
                        })
                        .collect(),
                }),
            }),
            Body::VoteClosed(b) => B::VoteClosed(pb::VoteClosed {
                sitting: s(&b.sitting),
                vote_id: b.vote_id.clone(),
                counts: b
                    .counts
                    .iter()
                    .map(|c| pb::VoteCount {
                        option: c.option.code().into(),
                        group: c.group.map(|g| g.code().into()),
                        value: c.value,
                    })
                    .collect(),
                bill_id: b.bill_id.clone(),
                casting_vote: b.casting_vote.map(|o| o.code().into()),
            }),
            Body::VoteResult(b) => B::VoteResult(pb::VoteResult {
                sitting: s(&b.sitting),
                vote_id: b.vote_id.clone(),
                result: b.result.code().into(),
                bill_id: b.bill_id.clone(),
            }),
        };
        pb::Envelope {
            event_id: e.event_id.clone(),
            aggregate_id: e.aggregate_id.clone(),
            seq: e.seq,
            occurred_at_ms: to_millis(e.occurred_at),
            precision: match e.precision {
                DatePrecision::Instant => pb::DatePrecision::Instant,
                DatePrecision::Day => pb::DatePrecision::Day,
            } as i32,
            recorded_at_ms: e.recorded_at.map(to_millis).unwrap_or(0),
            source: e.source.clone(),
            source_ref: e.source_ref.clone(),
            schema_version: e.schema_version,
            supersedes: e.supersedes.clone(),
            body: Some(body),
        }
    }
}

impl TryFrom<pb::Envelope> for Event {
    type Error = WireError;

    fn try_from(e: pb::Envelope) -> Result<Self, WireError> {
        use pb::envelope::Body as B;
        let body = match e.body.ok_or(WireError::MissingBody)? {
            B::BillStageChanged(b) => Body::BillStageChanged(BillStageChanged {
                bill_id: b.bill_id,
                bill_type: code::<BillType>(&b.bill_type)?,
                title: text(b.title, "title")?,
                from_stage: opt_code::<Stage>(b.from_stage)?,
                to_stage: code(&b.to_stage)?,
                note: b.note.map(Text::from),
                merged_into: b.merged_into,
                deemed: b.deemed,
                deadline: b
                    .deadline
                    .map(|d| {
                        d.parse::<chrono::NaiveDate>().map_err(|_| UnknownCode {
                            what: "date",
                            code: d,
                        })
                    })
                    .transpose()?,
                money_bill: b.money_bill,
                proposer: opt_code(b.proposer)?,
                recommended_by: opt_code(b.recommended_by)?,
                returned_on: b
                    .returned_on
                    .map(|d| {
                        d.parse::<chrono::NaiveDate>().map_err(|_| UnknownCode {
                            what: "date",
                            code: d,
                        })
                    })
                    .transpose()?,
            }),
            B::SittingLifecycle(b) => Body::SittingLifecycle(SittingLifecycle {
                sitting: sitting(b.sitting)?,
                phase: code(&b.phase)?,
                outcome: opt_code(b.outcome)?,
                title: b.title.map(Text::from),
                number: b.number,
                session: b
                    .session
                    .map(|s| {
                        Ok::<_, WireError>(Session {
                            kind: code(&s.kind)?,
                            number: s.number,
                            year: s.year,
                        })
                    })
                    .transpose()?,
            }),
            B::QuorumChecked(b) => Body::QuorumChecked(QuorumChecked {
                sitting: sitting(b.sitting)?,
                present: b.present,
                required: b.required,
                met: b.met,
                in_office: b.in_office,
            }),
            B::AgendaItemStarted(b) => Body::AgendaItemStarted(AgendaItemStarted {
                sitting: sitting(b.sitting)?,
                item_id: b.item_id,
                category: code(&b.category)?,
                title: text(b.title, "title")?,
                bill_id: b.bill_id,
            }),
            B::AgendaItemEnded(b) => Body::AgendaItemEnded(AgendaItemEnded {
                sitting: sitting(b.sitting)?,
                item_id: b.item_id,
                disposition: code(&b.disposition)?,
            }),
            B::SectionConsidered(b) => Body::SectionConsidered(SectionConsidered {
                sitting: sitting(b.sitting)?,
                item_id: b.item_id,
                section_no: b.section_no,
            }),
            B::SpeechStarted(b) => Body::SpeechStarted(SpeechStarted {
                sitting: sitting(b.sitting)?,
                person: person(b.person, "person")?,
                role: code(&b.role)?,
            }),
            B::SpeechEnded(b) => Body::SpeechEnded(SpeechEnded {
                sitting: sitting(b.sitting)?,
                person: person(b.person, "person")?,
            }),
            B::ChairChanged(b) => Body::ChairChanged(ChairChanged {
                sitting: sitting(b.sitting)?,
                person: person(b.person, "person")?,
                office: text(b.office, "office")?,
            }),
            B::MotionMoved(b) => Body::MotionMoved(MotionMoved {
                sitting: sitting(b.sitting)?,
                motion_id: b.motion_id,
                text: text(b.text, "text")?,
                mover: person(b.mover, "mover")?,
            }),
            B::MotionWithdrawn(b) => Body::MotionWithdrawn(MotionWithdrawn {
                sitting: sitting(b.sitting)?,
                motion_id: b.motion_id,
            }),
            B::MotionDecided(b) => Body::MotionDecided(MotionDecided {
                sitting: sitting(b.sitting)?,
                motion_id: b.motion_id,
                decision: code(&b.decision)?,
            }),
            B::VoteOpened(b) => Body::VoteOpened(VoteOpened {
                sitting: sitting(b.sitting)?,
                vote_id: b.vote_id,
                method: code(&b.method)?,
                requirement: text(b.requirement, "requirement")?,
                question: text(b.question, "question")?,
                bill_id: b.bill_id,
                threshold: b
                    .threshold
                    .map(|t| {
                        Ok::<_, WireError>(Threshold {
                            parts: t
                                .parts
                                .into_iter()
                                .map(|p| {
                                    Ok(ThresholdPart {
                                        group: opt_code(p.group)?,
                                        base: code(&p.base)?,
                                        compare: opt_code(p.compare)?,
                                        numerator: p.numerator,
                                        denominator: p.denominator,
                                        members_in_office: p.members_in_office,
                                    })
                                })
                                .collect::<Result<_, WireError>>()?,
                        })
                    })
                    .transpose()?,
            }),
            B::VoteClosed(b) => Body::VoteClosed(VoteClosed {
                sitting: sitting(b.sitting)?,
                vote_id: b.vote_id,
                counts: b
                    .counts
                    .into_iter()
                    .map(|c| {
                        Ok(VoteCount {
                            option: code(&c.option)?,
                            group: opt_code(c.group)?,
                            value: c.value,
                        })
                    })
                    .collect::<Result<_, WireError>>()?,
                bill_id: b.bill_id,
                casting_vote: opt_code(b.casting_vote)?,
            }),
            B::VoteResult(b) => Body::VoteResult(VoteResult {
                sitting: sitting(b.sitting)?,
                vote_id: b.vote_id,
                result: code(&b.result)?,
                bill_id: b.bill_id,
            }),
        };
        Ok(Event {
            schema_version: e.schema_version,
            event_id: e.event_id,
            aggregate_id: e.aggregate_id,
            seq: e.seq,
            occurred_at: from_millis(e.occurred_at_ms),
            precision: match pb::DatePrecision::try_from(e.precision) {
                Ok(pb::DatePrecision::Day) => DatePrecision::Day,
                _ => DatePrecision::Instant,
            },
            recorded_at: (e.recorded_at_ms != 0).then(|| from_millis(e.recorded_at_ms)),
            source: e.source,
            source_ref: e.source_ref,
            supersedes: e.supersedes,
            body,
        })
    }
}
