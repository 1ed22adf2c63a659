//! The NATS subject scheme. Every event has one subject under `parl.v1.`; the part
//! after that prefix is its *topic*, which is what clients filter on.
//!
//! ```text
//! parl.v1.bill.<bill_id>.stage
//! parl.v1.sitting.<senate|house|joint>.<sitting_id>.<lifecycle|quorum|agenda|floor|motion|vote>
//! ```
//!
//! A vote on a bill is stored once, on its sitting's subject, and also carries the
//! secondary topic `bill.<bill_id>.vote` so that people following a bill see it.

use crate::event::{Aggregate, Body, Chamber, Event};

/// The prefix every Sapha subject starts with.
pub const PREFIX: &str = "parl.v1";

/// The subjects the JetStream stream captures.
pub const STREAM_SUBJECTS: &str = "parl.v1.>";

/// The NATS server URLs in a comma-separated list (`nats://a:4222, nats://b:4222`),
/// trimmed, empty entries dropped. Every Sapha process takes its NATS URL this way,
/// so one setting can name every node of a cluster; async-nats itself reads a
/// single string as one address.
pub fn server_urls(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// The categories a sitting topic can end with.
pub const SITTING_CATEGORIES: &[&str] =
    &["lifecycle", "quorum", "agenda", "floor", "motion", "vote"];

/// The categories a bill topic can end with.
pub const BILL_CATEGORIES: &[&str] = &["stage", "vote"];

/// The category token of a payload.
pub fn category(body: &Body) -> &'static str {
    match body {
        Body::BillStageChanged(_) => "stage",
        Body::SittingLifecycle(_) => "lifecycle",
        Body::QuorumChecked(_) => "quorum",
        Body::AgendaItemStarted(_) | Body::AgendaItemEnded(_) | Body::SectionConsidered(_) => {
            "agenda"
        }
        Body::SpeechStarted(_) | Body::SpeechEnded(_) | Body::ChairChanged(_) => "floor",
        Body::MotionMoved(_) | Body::MotionWithdrawn(_) | Body::MotionDecided(_) => "motion",
        Body::VoteOpened(_) | Body::VoteClosed(_) | Body::VoteResult(_) => "vote",
    }
}

impl Event {
    /// The topic this event is stored under, e.g. `bill.b-2566-0123.stage`.
    pub fn topic(&self) -> String {
        match self.aggregate() {
            Aggregate::Bill { bill_id } => format!("bill.{bill_id}.{}", category(&self.body)),
            Aggregate::Sitting {
                chamber,
                sitting_id,
            } => {
                format!("sitting.{chamber}.{sitting_id}.{}", category(&self.body))
            }
        }
    }

    /// The NATS subject this event is stored under, e.g. `parl.v1.bill.b-2566-0123.stage`.
    pub fn subject(&self) -> String {
        format!("{PREFIX}.{}", self.topic())
    }

    /// Other topics the event is delivered on: a vote on a bill is also `bill.<id>.vote`.
    pub fn secondary_topic(&self) -> Option<String> {
        let bill_id = match &self.body {
            Body::VoteOpened(v) => v.bill_id.as_deref(),
            Body::VoteClosed(v) => v.bill_id.as_deref(),
            Body::VoteResult(v) => v.bill_id.as_deref(),
            _ => None,
        }?;
        Some(format!("bill.{bill_id}.vote"))
    }
}

/// The subject filter that captures every event of one aggregate.
pub fn aggregate_filter(aggregate: Aggregate<'_>) -> String {
    match aggregate {
        Aggregate::Bill { bill_id } => format!("{PREFIX}.bill.{bill_id}.>"),
        Aggregate::Sitting {
            chamber,
            sitting_id,
        } => {
            format!("{PREFIX}.sitting.{chamber}.{sitting_id}.>")
        }
    }
}

/// The subject of a bill's stage changes.
pub fn bill_stage_subject(bill_id: &str) -> String {
    format!("{PREFIX}.bill.{bill_id}.stage")
}

/// The topic part of a subject (`parl.v1.bill.x.stage` -> `bill.x.stage`).
pub fn topic_of(subject: &str) -> Option<&str> {
    subject.strip_prefix(PREFIX)?.strip_prefix('.')
}

/// Every chamber code, for the topic grammar.
pub fn chamber_codes() -> impl Iterator<Item = &'static str> {
    Chamber::ALL.iter().map(|c| c.code())
}

#[cfg(test)]
mod tests {
    use super::server_urls;

    #[test]
    fn server_urls_split_a_cluster_list_and_keep_a_single_url() {
        assert_eq!(
            server_urls(" nats://a:4222,nats://b:4223 , ,nats://c:4224"),
            ["nats://a:4222", "nats://b:4223", "nats://c:4224"]
        );
        assert_eq!(
            server_urls("nats://127.0.0.1:4222"),
            ["nats://127.0.0.1:4222"]
        );
        assert!(server_urls(" , ").is_empty());
    }
}
