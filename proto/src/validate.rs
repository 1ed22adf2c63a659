//! The checks that need nothing but the event itself: ids, consistency of the
//! envelope with its payload, tallies against the membership, and the stage move
//! the event claims. (Checks against the stored history, such as the bill's last
//! known stage and sequence gaps, are the publisher's; see `publisher::state`.)

use crate::event::*;
use crate::ids::{validate_id, IdError};
use crate::progress::bangkok_day;
use crate::stage::{check_transition, rules_for, BillType, Proposer, Stage, TransitionError};
use crate::vote::{count, Threshold};
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
    #[error("{field}: {0}", field = .0.field())]
    Transition(TransitionError),
    #[error("data.proposer: {0}")]
    Proposer(&'static str),
    #[error("data.recommended_by: only the Cabinet's organic bill carries a recommendation (s.131 (1)), on its first event with proposer cabinet")]
    RecommendedBy,
    #[error("data.returned_on: {0}")]
    ReturnedOn(&'static str),
    #[error("data.session: {0}")]
    Session(&'static str),
    #[error("data.in_office: {0}")]
    QuorumInOffice(String),
    #[error("data.threshold{at}: {reason}")]
    Threshold { at: String, reason: String },
    #[error("data.casting_vote: {0}")]
    CastingVote(&'static str),
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
            Proposer(_) | RecommendedBy => "bad_proposer",
            ReturnedOn(_) => "bad_returned_on",
            Session(_) => "bad_session",
            QuorumInOffice(_) => "quorum_in_office",
            Threshold { .. } => "bad_threshold",
            CastingVote(_) => "bad_casting_vote",
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
        Group::House | Group::Government | Group::Opposition | Group::NoOfficeParties => 500,
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
            if let Some(p) = b.proposer {
                if b.from_stage.is_some() {
                    return Err(ValidationError::Proposer(
                        "only a bill's first event names who introduced it",
                    ));
                }
                if !Proposer::allowed(b.bill_type).contains(&p) {
                    return Err(ValidationError::Proposer(
                        "cannot introduce a bill of this type (ss.131, 133, 256)",
                    ));
                }
            }
            // s.138 (1): the day the Senate sent the bill back, on the reaffirmation only.
            if let Some(returned) = b.returned_on {
                if b.from_stage != Some(Stage::Withheld) || b.to_stage != Stage::HouseReaffirm {
                    return Err(ValidationError::ReturnedOn(
                        "only on the move WITHHELD -> HOUSE_REAFFIRM (s.138 (1))",
                    ));
                }
                if returned > bangkok_day(event.occurred_at) {
                    return Err(ValidationError::ReturnedOn("must not be after the move"));
                }
            }
            // s.131 (1): a court or organ only recommends; the Cabinet introduces.
            if b.recommended_by.is_some()
                && (b.proposer != Some(Proposer::Cabinet) || b.bill_type != BillType::OrganicAct)
            {
                return Err(ValidationError::RecommendedBy);
            }
            check_transition(b.bill_type, b.from_stage, b.to_stage, b.deemed)
                .map_err(ValidationError::Transition)?;
            if let Some(deadline) = b.deadline {
                let money_bill = b.money_bill || b.bill_type == BillType::Budget;
                rules_for(b.bill_type)
                    .check_deadline(
                        b.from_stage,
                        b.to_stage,
                        bangkok_day(event.occurred_at),
                        deadline,
                        money_bill,
                    )
                    .map_err(ValidationError::Transition)?;
            }
            Ok(())
        }
        Body::SittingLifecycle(b) => {
            if b.outcome.is_some() && b.phase != Phase::Closed {
                return Err(ValidationError::OutcomeWithoutClose);
            }
            if let Some(s) = &b.session {
                // Two ordinary sessions a year (s.121); a House term is 4 years,
                // a Senate term 5.
                if s.number == 0 || (s.kind == SessionKind::Ordinary && s.number > 2) {
                    return Err(ValidationError::Session(
                        "number: an ordinary session is the first or second of its year",
                    ));
                }
                if !(1..=5).contains(&s.year) {
                    return Err(ValidationError::Session("year: from 1 to 5"));
                }
            }
            if b.number == Some(0) {
                return Err(ValidationError::Session("the sitting number starts at 1"));
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
            // s.120: the quorum is half of the members in office, not of the seats.
            let Some(in_office) = b.in_office else {
                return Err(ValidationError::QuorumInOffice(
                    "is required: s.120 counts the quorum against the members in office".into(),
                ));
            };
            if in_office > members {
                return Err(ValidationError::ExceedsMembership {
                    field: "data.in_office".into(),
                    count: in_office.into(),
                    membership: members,
                });
            }
            if b.present > in_office {
                return Err(ValidationError::QuorumInOffice(format!(
                    "{} present is more than the {in_office} members in office",
                    b.present
                )));
            }
            if b.required != in_office.div_ceil(2) {
                return Err(ValidationError::QuorumInOffice(format!(
                    "the quorum of {in_office} members in office is {} (s.120: not less than half), not {}",
                    in_office.div_ceil(2),
                    b.required
                )));
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
            text("data.question", &b.question)?;
            b.threshold.as_ref().map_or(Ok(()), |t| {
                validate_threshold(b.sitting.chamber, t, event.occurred_at)
            })
        }
        Body::VoteClosed(b) => {
            id("data.vote_id", &b.vote_id)?;
            opt_id("data.bill_id", &b.bill_id)?;
            validate_tally(b.sitting.chamber, &b.counts, event.occurred_at)?;
            if let Some(casting) = b.casting_vote {
                if !matches!(casting, VoteOption::Aye | VoteOption::No) {
                    return Err(ValidationError::CastingVote("is aye or no"));
                }
                let tie = count(&b.counts, None, VoteOption::Aye)
                    == count(&b.counts, None, VoteOption::No);
                if !tie {
                    return Err(ValidationError::CastingVote(
                        "the chair votes only on a tie (s.120)",
                    ));
                }
            }
            Ok(())
        }
        Body::VoteResult(b) => {
            id("data.vote_id", &b.vote_id)?;
            opt_id("data.bill_id", &b.bill_id)
        }
    }
}

/// Why `group` cannot appear in a tally or a threshold of a `chamber` sitting.
fn group_problem(chamber: Chamber, group: Option<Group>) -> Option<&'static str> {
    match (chamber, group) {
        (Chamber::Joint, None) => Some("a joint sitting counts house and senate separately"),
        (Chamber::House, Some(Group::Senate))
        | (
            Chamber::Senate,
            Some(Group::House | Group::Government | Group::Opposition | Group::NoOfficeParties),
        ) => Some("the group is not a member of this chamber"),
        _ => None,
    }
}

/// A threshold must have parts, each complete, on groups of the chamber, and
/// count no more members in office than a group has seats.
fn validate_threshold(
    chamber: Chamber,
    threshold: &Threshold,
    on: DateTime<Utc>,
) -> Result<(), ValidationError> {
    let bad = |at: String, reason: &str| ValidationError::Threshold {
        at,
        reason: reason.to_owned(),
    };
    if threshold.parts.is_empty() {
        return Err(bad(".parts".into(), "is empty"));
    }
    for (i, part) in threshold.parts.iter().enumerate() {
        let at = format!(".parts[{i}]");
        if let Some(reason) = part.problem() {
            return Err(bad(at, reason));
        }
        if part.group.is_some() {
            if let Some(reason) = group_problem(chamber, part.group) {
                return Err(bad(format!("{at}.group"), reason));
            }
        }
        // s.256 (6) counts the MPs of the parties holding no minister, Speaker or
        // Deputy Speaker post, not "the opposition": see `Group`.
        if part.group.is_some_and(|g| !g.is_constitutional_base()) {
            return Err(bad(
                format!("{at}.group"),
                "no threshold counts government or opposition MPs; s.256 (6) counts no_office_parties",
            ));
        }
        let seats = part
            .group
            .map_or(chamber_membership(chamber, on), |g| membership(g, on));
        if part.members_in_office.is_some_and(|m| m == 0 || m > seats) {
            return Err(bad(
                format!("{at}.members_in_office"),
                &format!("must be from 1 to the {seats} seats"),
            ));
        }
    }
    Ok(())
}

/// A tally must name each (option, group) once, use groups the chamber has,
/// and never count more members than a group or the chamber has.
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
        if let Some(reason) = group_problem(chamber, c.group) {
            return Err(ValidationError::BadGroup { index, reason });
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
    // The blocs split the MPs a second way, so together they are counted
    // against the House like the `house` group.
    let blocs: &[Group] = &[Group::Government, Group::Opposition];
    for groups in [
        &[Group::House][..],
        &[Group::Senate],
        blocs,
        &[Group::NoOfficeParties],
    ] {
        let members = membership(groups[0], on);
        let sum: u64 = counts
            .iter()
            .filter(|c| c.group.is_some_and(|g| groups.contains(&g)))
            .map(|c| u64::from(c.value))
            .sum();
        if sum > u64::from(members) {
            return Err(ValidationError::ExceedsMembership {
                field: format!("data.counts (group {})", groups[0]),
                count: sum,
                membership: members,
            });
        }
    }
    let total: u64 = counts
        .iter()
        .filter(|c| c.group.is_none_or(Group::is_chamber))
        .map(|c| u64::from(c.value))
        .sum();
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
