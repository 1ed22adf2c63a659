//! The checks that need nothing but the event itself: ids, consistency of the
//! envelope with its payload, tallies against the membership, and the stage move
//! the event claims. (Checks against the stored history, such as the bill's last
//! known stage and sequence gaps, are the publisher's; see `publisher::state`.)

use crate::event::*;
use crate::ids::{validate_id, IdError};
use crate::stage::{check_transition, Stage, TransitionError};
use chrono::{DateTime, NaiveDate, Utc};
use thiserror::Error;

/// Longest free text (a title, a question) in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// Why an event is rejected. Every variant names the failing field and has a
/// stable [`code`](ValidationError::code).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("{field}: unsupported schema version {got}, this publisher speaks {SCHEMA_VERSION}")]
    SchemaVersion { field: &'static str, got: u32 },
    #[error("{field}: '{value}' {reason}")]
    BadId {
        field: String,
        value: String,
        reason: IdError,
    },
    #[error("aggregate_id: '{aggregate_id}' does not match the payload's {field} '{payload}'")]
    AggregateMismatch {
        field: &'static str,
        aggregate_id: String,
        payload: String,
    },
    #[error("seq: must be 1 or more")]
    ZeroSeq,
    #[error("data.to_stage: {0}")]
    Transition(TransitionError),
    #[error("data.merged_into: required when to_stage is MERGED, and only then")]
    MergedInto,
    #[error("data.outcome: only a closed sitting has an outcome")]
    OutcomeWithoutClose,
    #[error("data.met: present {present} against required {required} means met = {expected}")]
    QuorumInconsistent {
        present: u32,
        required: u32,
        expected: bool,
    },
    #[error("{field}: {count} exceeds the membership of {membership}")]
    ExceedsMembership {
        field: String,
        count: u64,
        membership: u32,
    },
    #[error("data.counts: is empty")]
    EmptyTally,
    #[error("data.counts[{index}]: option '{option}' is counted twice for the same group")]
    DuplicateCount { index: usize, option: VoteOption },
    #[error("data.counts[{index}].group: {reason}")]
    BadGroup { index: usize, reason: &'static str },
    #[error("{field}: is empty")]
    EmptyText { field: String },
    #[error("{field}: is {len} bytes long, the limit is {MAX_TEXT_LEN}")]
    TextTooLong { field: String, len: usize },
}

impl ValidationError {
    /// A stable machine-readable code for error bodies and metrics.
    pub fn code(&self) -> &'static str {
        use ValidationError::*;
        match self {
            SchemaVersion { .. } => "schema_version",
            BadId { .. } => "bad_id",
            AggregateMismatch { .. } => "aggregate_mismatch",
            ZeroSeq => "bad_seq",
            Transition(e) => e.code(),
            MergedInto => "merged_into",
            OutcomeWithoutClose => "outcome_without_close",
            QuorumInconsistent { .. } => "quorum_inconsistent",
            ExceedsMembership { .. } => "tally_exceeds_membership",
            EmptyTally => "empty_tally",
            DuplicateCount { .. } => "duplicate_count",
            BadGroup { .. } => "bad_group",
            EmptyText { .. } => "empty_text",
            TextTooLong { .. } => "text_too_long",
        }
    }

    /// The path of the failing field, e.g. `data.counts[2].value`.
    pub fn field(&self) -> String {
        let text = self.to_string();
        text.split(':').next().unwrap_or_default().to_owned()
    }
}

/// The day the Senate of 200 members (chosen in 2024) replaced the Senate of 250.
fn senate_of_200_since() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2024, 7, 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
}

/// How many members a group has on a given day.
pub fn membership(group: Group, on: DateTime<Utc>) -> u32 {
    match group {
        Group::House => 500,
        Group::Senate if on < senate_of_200_since() => 250,
        Group::Senate => 200,
    }
}

/// How many members a chamber's sitting has on a given day.
pub fn chamber_membership(chamber: Chamber, on: DateTime<Utc>) -> u32 {
    match chamber {
        Chamber::House => membership(Group::House, on),
        Chamber::Senate => membership(Group::Senate, on),
        Chamber::Joint => membership(Group::House, on) + membership(Group::Senate, on),
    }
}

fn id(field: impl Into<String>, value: &str) -> Result<(), ValidationError> {
    validate_id(value).map_err(|reason| ValidationError::BadId {
        field: field.into(),
        value: value.to_owned(),
        reason,
    })
}

fn opt_id(field: &str, value: &Option<String>) -> Result<(), ValidationError> {
    value.as_deref().map_or(Ok(()), |v| id(field, v))
}

fn text(field: &str, t: &Text) -> Result<(), ValidationError> {
    if t.th.trim().is_empty() && t.en.trim().is_empty() {
        return Err(ValidationError::EmptyText {
            field: field.to_owned(),
        });
    }
    for (lang, s) in [("th", &t.th), ("en", &t.en)] {
        if s.len() > MAX_TEXT_LEN {
            return Err(ValidationError::TextTooLong {
                field: format!("{field}.{lang}"),
                len: s.len(),
            });
        }
    }
    Ok(())
}

fn person(field: &str, p: &Person) -> Result<(), ValidationError> {
    id(format!("{field}.person_id"), &p.person_id)?;
    text(&format!("{field}.name"), &p.name)
}

/// Checks everything that can be checked from the event alone.
pub fn validate(event: &Event) -> Result<(), ValidationError> {
    if event.schema_version != SCHEMA_VERSION {
        return Err(ValidationError::SchemaVersion {
            field: "schema_version",
            got: event.schema_version,
        });
    }
    id("event_id", &event.event_id)?;
    id("aggregate_id", &event.aggregate_id)?;
    id("source", &event.source)?;
    opt_id("supersedes", &event.supersedes)?;
    if let Some(r) = &event.source_ref {
        if r.len() > MAX_TEXT_LEN {
            return Err(ValidationError::TextTooLong {
                field: "source_ref".into(),
                len: r.len(),
            });
        }
    }
    if event.seq == 0 {
        return Err(ValidationError::ZeroSeq);
    }
    let (field, payload_id) = match event.aggregate() {
        Aggregate::Bill { bill_id } => ("data.bill_id", bill_id),
        Aggregate::Sitting { sitting_id, .. } => ("data.sitting.sitting_id", sitting_id),
    };
    id(field, payload_id)?;
    if payload_id != event.aggregate_id {
        return Err(ValidationError::AggregateMismatch {
            field,
            aggregate_id: event.aggregate_id.clone(),
            payload: payload_id.to_owned(),
        });
    }
    validate_body(event)
}

fn validate_body(event: &Event) -> Result<(), ValidationError> {
    match &event.body {
        Body::BillStageChanged(b) => {
            text("data.title", &b.title)?;
            if let Some(n) = &b.note {
                text("data.note", n)?;
            }
            opt_id("data.merged_into", &b.merged_into)?;
            if (b.to_stage == Stage::Merged) != b.merged_into.is_some() {
                return Err(ValidationError::MergedInto);
            }
            check_transition(b.bill_type, b.from_stage, b.to_stage)
                .map_err(ValidationError::Transition)
        }
        Body::SittingLifecycle(b) => {
            if b.outcome.is_some() && b.phase != Phase::Closed {
                return Err(ValidationError::OutcomeWithoutClose);
            }
            b.title.as_ref().map_or(Ok(()), |t| text("data.title", t))
        }
        Body::QuorumChecked(b) => {
            let members = chamber_membership(b.sitting.chamber, event.occurred_at);
            for (field, n) in [("data.present", b.present), ("data.required", b.required)] {
                if n > members {
                    return Err(ValidationError::ExceedsMembership {
                        field: field.into(),
                        count: n.into(),
                        membership: members,
                    });
                }
            }
            let expected = b.present >= b.required;
            if b.met != expected {
                return Err(ValidationError::QuorumInconsistent {
                    present: b.present,
                    required: b.required,
                    expected,
                });
            }
            Ok(())
        }
        Body::AgendaItemStarted(b) => {
            id("data.item_id", &b.item_id)?;
            opt_id("data.bill_id", &b.bill_id)?;
            text("data.title", &b.title)
        }
        Body::AgendaItemEnded(b) => id("data.item_id", &b.item_id),
        Body::SectionConsidered(b) => {
            id("data.item_id", &b.item_id)?;
            if b.section_no.trim().is_empty() {
                return Err(ValidationError::EmptyText {
                    field: "data.section_no".into(),
                });
            }
            Ok(())
        }
        Body::SpeechStarted(b) => person("data.person", &b.person),
        Body::SpeechEnded(b) => person("data.person", &b.person),
        Body::ChairChanged(b) => {
            person("data.person", &b.person)?;
            text("data.office", &b.office)
        }
        Body::MotionMoved(b) => {
            id("data.motion_id", &b.motion_id)?;
            text("data.text", &b.text)?;
            person("data.mover", &b.mover)
        }
        Body::MotionWithdrawn(b) => id("data.motion_id", &b.motion_id),
        Body::MotionDecided(b) => id("data.motion_id", &b.motion_id),
        Body::VoteOpened(b) => {
            id("data.vote_id", &b.vote_id)?;
            opt_id("data.bill_id", &b.bill_id)?;
            text("data.requirement", &b.requirement)?;
            text("data.question", &b.question)
        }
        Body::VoteClosed(b) => {
            id("data.vote_id", &b.vote_id)?;
            opt_id("data.bill_id", &b.bill_id)?;
            validate_tally(b.sitting.chamber, &b.counts, event.occurred_at)
        }
        Body::VoteResult(b) => {
            id("data.vote_id", &b.vote_id)?;
            opt_id("data.bill_id", &b.bill_id)
        }
    }
}

/// A tally must name each (option, group) once, use groups only in a joint
/// sitting, and never count more members than a group or the chamber has.
fn validate_tally(
    chamber: Chamber,
    counts: &[VoteCount],
    on: DateTime<Utc>,
) -> Result<(), ValidationError> {
    if counts.is_empty() {
        return Err(ValidationError::EmptyTally);
    }
    let mut seen: Vec<(VoteOption, Option<Group>)> = Vec::with_capacity(counts.len());
    for (index, c) in counts.iter().enumerate() {
        match (chamber, c.group) {
            (Chamber::Joint, None) => {
                return Err(ValidationError::BadGroup {
                    index,
                    reason: "a joint sitting counts house and senate separately",
                })
            }
            (Chamber::House, Some(Group::Senate)) | (Chamber::Senate, Some(Group::House)) => {
                return Err(ValidationError::BadGroup {
                    index,
                    reason: "the group is not a member of this chamber",
                })
            }
            _ => {}
        }
        if seen.contains(&(c.option, c.group)) {
            return Err(ValidationError::DuplicateCount {
                index,
                option: c.option,
            });
        }
        seen.push((c.option, c.group));
        if c.value > chamber_membership(chamber, on) {
            return Err(ValidationError::ExceedsMembership {
                field: format!("data.counts[{index}].value"),
                count: c.value.into(),
                membership: chamber_membership(chamber, on),
            });
        }
    }
    for group in Group::ALL {
        let members = membership(*group, on);
        let sum: u64 = counts
            .iter()
            .filter(|c| c.group == Some(*group))
            .map(|c| u64::from(c.value))
            .sum();
        if sum > u64::from(members) {
            return Err(ValidationError::ExceedsMembership {
                field: format!("data.counts (group {group})"),
                count: sum,
                membership: members,
            });
        }
    }
    let total: u64 = counts.iter().map(|c| u64::from(c.value)).sum();
    let members = chamber_membership(chamber, on);
    if total > u64::from(members) {
        return Err(ValidationError::ExceedsMembership {
            field: "data.counts".into(),
            count: total,
            membership: members,
        });
    }
    Ok(())
}
