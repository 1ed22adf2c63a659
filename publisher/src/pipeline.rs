//! The one validation and delivery path that every source feeds: check the event,
//! check it against the aggregate's stored history, append it with retries, and
//! count what happened.

use crate::metrics::Metrics;
use crate::state::{aggregate_key, AggregateState};
use dashmap::DashMap;
use sapha_log::{EventLog, LogError};
use sapha_proto::backoff::{Backoff, Retrying};
use sapha_proto::event::{Body, VoteOutcome};
use sapha_proto::stage::{BillType, Stage};
use sapha_proto::subject::aggregate_filter;
use sapha_proto::validate::{validate, ValidationError};
use sapha_proto::vote::Verdict;
use sapha_proto::Event;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Mutex, Semaphore};

/// How the pipeline retries when the log is unavailable.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First wait after a failure; doubles up to `max_backoff`, with jitter
    /// (`sapha_proto::backoff`).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Give up on one event after retrying this long, and report it unavailable.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            give_up_after: Duration::from_secs(120),
        }
    }
}

/// What happened to an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Newly stored at this stream sequence.
    Stored { stream_seq: u64 },
    /// Already stored earlier; nothing was written.
    Duplicate,
}

/// Why an event was not stored. Every variant has a stable [`code`](SubmitError::code)
/// and names the failing field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("seq: expected {expected} (the aggregate's next sequence), got {got}")]
    SeqGap { expected: u64, got: u64 },
    #[error("seq: {seq} is already taken by event '{existing}'")]
    SeqConflict { seq: u64, existing: String },
    #[error("event_id: '{0}' is already stored with other content (send a correction as a new event with `supersedes`)")]
    EventIdReused(String),
    #[error("data.from_stage: the bill is at {}, the event says {}", show(*.expected), show(*.got))]
    StageMismatch {
        expected: Option<Stage>,
        got: Option<Stage>,
    },
    #[error("data.bill_type: the bill is a {expected} bill, the event says {got}")]
    BillTypeChanged { expected: BillType, got: BillType },
    #[error(
        "kind: the sitting is in camera; only lifecycle events may be published until it ends"
    )]
    InCamera,
    #[error("data.result: the tally of vote '{vote_id}' against its threshold says {verdict}")]
    ResultContradictsThreshold {
        vote_id: String,
        verdict: &'static str,
    },
    #[error("the log is unavailable, try again later: {0}")]
    Unavailable(String),
    #[error("the log refused the event: {0}")]
    Refused(String),
    #[error("the publisher's backlog is full ({0} events waiting); try again later")]
    Backlog(usize),
}

fn show(stage: Option<Stage>) -> String {
    stage.map_or_else(|| "(new bill)".into(), |s| s.to_string())
}

impl SubmitError {
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Invalid(e) => e.code(),
            SubmitError::SeqGap { .. } => "seq_gap",
            SubmitError::SeqConflict { .. } => "seq_conflict",
            SubmitError::EventIdReused(_) => "event_id_reused",
            SubmitError::StageMismatch { .. } => "stage_mismatch",
            SubmitError::BillTypeChanged { .. } => "bill_type_changed",
            SubmitError::InCamera => "in_camera",
            SubmitError::ResultContradictsThreshold { .. } => "result_contradicts_threshold",
            SubmitError::Unavailable(_) => "unavailable",
            SubmitError::Refused(_) => "refused",
            SubmitError::Backlog(_) => "backlog_full",
        }
    }

    /// The failing field's path, when the error is about one field.
    pub fn field(&self) -> Option<String> {
        match self {
            SubmitError::Invalid(e) => Some(e.field()),
            SubmitError::SeqGap { .. } | SubmitError::SeqConflict { .. } => Some("seq".into()),
            SubmitError::EventIdReused(_) => Some("event_id".into()),
            SubmitError::StageMismatch { .. } => Some("data.from_stage".into()),
            SubmitError::BillTypeChanged { .. } => Some("data.bill_type".into()),
            SubmitError::InCamera => Some("kind".into()),
            SubmitError::ResultContradictsThreshold { .. } => Some("data.result".into()),
            _ => None,
        }
    }

    /// Whether the client should retry the same event later.
    pub fn is_transient(&self) -> bool {
        matches!(self, SubmitError::Unavailable(_) | SubmitError::Backlog(_))
    }
}

/// One aggregate's state, loaded lazily; `None` until loaded or after a failed
/// append left it uncertain.
type Slot = Arc<Mutex<Option<AggregateState>>>;

/// Validates and appends events. Cheap to share: wrap it in an `Arc`.
pub struct Pipeline<L: EventLog> {
    log: L,
    /// One async lock per aggregate, held across check-append-ack so that two
    /// requests for the same bill cannot both take the same sequence.
    states: DashMap<String, Slot>,
    /// Bounds the events waiting in `submit` at once; the rest get `Backlog`.
    backlog: Semaphore,
    backlog_limit: usize,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl<L: EventLog> Pipeline<L> {
    pub fn new(log: L, retry: RetryPolicy, backlog_limit: usize, metrics: Arc<Metrics>) -> Self {
        Pipeline {
            log,
            states: DashMap::new(),
            backlog: Semaphore::new(backlog_limit),
            backlog_limit,
            retry,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    /// Validates `event` and appends it once. `source` labels the metrics.
    pub async fn submit(&self, event: Event, source: &str) -> Result<Outcome, SubmitError> {
        let result = self.submit_inner(event).await;
        match &result {
            Ok(Outcome::Stored { .. }) => self.metrics.accepted(source, "stored"),
            Ok(Outcome::Duplicate) => self.metrics.accepted(source, "duplicate"),
            Err(e) => self.metrics.rejected(source, e.code()),
        }
        result
    }

    async fn submit_inner(&self, mut event: Event) -> Result<Outcome, SubmitError> {
        let _permit = self
            .backlog
            .try_acquire()
            .map_err(|_| SubmitError::Backlog(self.backlog_limit))?;
        validate(&event)?;
        let key = aggregate_key(event.aggregate());
        let slot = self.states.entry(key).or_default().clone();
        let mut guard = slot.lock().await;
        if guard.is_none() {
            *guard = Some(self.load(&event).await?);
        }
        let state = guard.as_mut().expect("loaded above");
        if let Some(outcome) = check_against(state, &event)? {
            return Ok(outcome);
        }
        if event.recorded_at.is_none() {
            event.recorded_at = Some(chrono::Utc::now());
        }
        match self.append_with_retry(&event).await {
            Ok(appended) if !appended.duplicate => {
                state.apply(&event);
                Ok(Outcome::Stored {
                    stream_seq: appended.stream_seq,
                })
            }
            Ok(_) => {
                // The log had this id although our state did not: either an earlier
                // attempt was stored but its ack was lost, or the id is reused.
                let reloaded = self.load(&event).await?;
                let same = reloaded.holds(&event);
                *guard = Some(reloaded);
                if same {
                    Ok(Outcome::Duplicate)
                } else {
                    Err(SubmitError::EventIdReused(event.event_id.clone()))
                }
            }
            Err(e) => {
                // The event may or may not be stored: forget what we knew and
                // reload from the log next time.
                *guard = None;
                Err(e)
            }
        }
    }

    async fn load(&self, event: &Event) -> Result<AggregateState, SubmitError> {
        let filter = aggregate_filter(event.aggregate());
        let mut backoff = self.retry_policy().retrying();
        let deadline = tokio::time::Instant::now() + self.retry.give_up_after;
        loop {
            match self.log.history(filter.clone()).await {
                Ok(history) => return Ok(AggregateState::from_history(&history)),
                Err(e) => self.wait_or_give_up(e, &mut backoff, deadline).await?,
            }
        }
    }

    async fn append_with_retry(&self, event: &Event) -> Result<sapha_log::Appended, SubmitError> {
        let mut backoff = self.retry_policy().retrying();
        let deadline = tokio::time::Instant::now() + self.retry.give_up_after;
        loop {
            match self.log.append(event).await {
                Ok(appended) => {
                    self.metrics.published(appended.duplicate);
                    return Ok(appended);
                }
                Err(e) => self.wait_or_give_up(e, &mut backoff, deadline).await?,
            }
        }
    }

    /// After a failed log call: waits and returns `Ok` to retry, or the error to
    /// give up with.
    async fn wait_or_give_up(
        &self,
        error: LogError,
        backoff: &mut Retrying,
        deadline: tokio::time::Instant,
    ) -> Result<(), SubmitError> {
        if !error.is_retryable() {
            return Err(SubmitError::Refused(error.to_string()));
        }
        let wait = backoff.next_delay();
        if tokio::time::Instant::now() + wait > deadline {
            return Err(SubmitError::Unavailable(error.to_string()));
        }
        self.metrics.retried();
        tracing::warn!(error = %error, backoff_ms = wait.as_millis() as u64, "log unavailable, retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The shared backoff, with this pipeline's first and longest waits.
    fn retry_policy(&self) -> Backoff {
        Backoff {
            initial: self.retry.initial_backoff,
            max: self.retry.max_backoff,
        }
    }
}

/// Checks `event` against the stored history. `Ok(Some(Duplicate))` means it is
/// already stored; `Ok(None)` means it is the next event and may be appended.
fn check_against(state: &AggregateState, event: &Event) -> Result<Option<Outcome>, SubmitError> {
    if event.seq <= state.last_seq() {
        return match state.id_at(event.seq) {
            // The same id with other content is a change, not a resend:
            // corrections go through `supersedes`.
            Some(id) if id == event.event_id && state.holds(event) => Ok(Some(Outcome::Duplicate)),
            Some(id) if id == event.event_id => {
                Err(SubmitError::EventIdReused(event.event_id.clone()))
            }
            Some(id) => Err(SubmitError::SeqConflict {
                seq: event.seq,
                existing: id.to_owned(),
            }),
            // Older than what retention kept: we cannot tell, so refuse to rewrite history.
            None => Err(SubmitError::SeqGap {
                expected: state.last_seq() + 1,
                got: event.seq,
            }),
        };
    }
    if event.seq != state.last_seq() + 1 {
        return Err(SubmitError::SeqGap {
            expected: state.last_seq() + 1,
            got: event.seq,
        });
    }
    // ประชุมลับ: while a sitting is in camera nothing of its content may be
    // streamed, only the lifecycle (that it is in camera, that it ended).
    if state.in_camera() && !matches!(event.body, Body::SittingLifecycle(_)) {
        return Err(SubmitError::InCamera);
    }
    if let Body::BillStageChanged(b) = &event.body {
        let (known_type, known_stage) = match state.bill() {
            Some((t, s)) => (Some(t), Some(s)),
            None => (None, None),
        };
        if let Some(expected) = known_type {
            if expected != b.bill_type {
                return Err(SubmitError::BillTypeChanged {
                    expected,
                    got: b.bill_type,
                });
            }
        }
        if b.from_stage != known_stage {
            return Err(SubmitError::StageMismatch {
                expected: known_stage,
                got: b.from_stage,
            });
        }
        // validate() has already checked that from_stage -> to_stage is legal for
        // the bill type, and from_stage is now known to be the stored stage; the
        // rules that need the history (waits, returns, deadlines) are checked here.
        if let Some(progress) = state.progress() {
            progress
                .check(b, event.occurred_at)
                .map_err(|e| SubmitError::Invalid(ValidationError::Transition(e)))?;
        }
    }
    // A result must agree with the vote's threshold and tally, when both say.
    if let Body::VoteResult(r) = &event.body {
        let verdict = match state.verdict(&r.vote_id) {
            Some(Verdict::Passed) => Some(VoteOutcome::Passed),
            Some(Verdict::Failed) => Some(VoteOutcome::Failed),
            Some(Verdict::Undetermined) | None => None,
        };
        if let Some(expected) = verdict.filter(|v| *v != r.result) {
            return Err(SubmitError::ResultContradictsThreshold {
                vote_id: r.vote_id.clone(),
                verdict: expected.code(),
            });
        }
    }
    Ok(None)
}
