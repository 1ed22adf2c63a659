//! Planning: each stage change on the event stream becomes jobs on the work
//! queue, one per chunk of the bill's followers. One durable consumer, shared
//! by every replica, one event in flight (`max_ack_pending = 1`), so stage
//! changes are planned in stream order.

use super::{nats, Change, NotifyError, NotifySettings, NotifyStats};
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use sapha_follows::{Delivery, FollowStore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The plan consumer's durable name.
pub const PLAN_CONSUMER: &str = "sapha-notify-plan";

/// One unit of sending work: a change and some of its followers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub change: Change,
    pub followers: Vec<Delivery>,
}

/// The work queue's subject.
pub fn jobs_subject(jobs_stream: &str) -> String {
    format!("sapha.notify.{jobs_stream}")
}

/// Creates the work-queue stream if it is missing.
pub(crate) async fn jobs_stream(
    js: &jetstream::Context,
    settings: &NotifySettings,
    replicas: usize,
) -> Result<stream::Stream, NotifyError> {
    // Long enough that a re-plan after a replica died (ack_wait later) is
    // still deduplicated.
    let window = (settings.ack_wait * 4).max(Duration::from_secs(120));
    js.get_or_create_stream(stream::Config {
        name: settings.jobs_stream.clone(),
        subjects: vec![jobs_subject(&settings.jobs_stream)],
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: window,
        max_age: Duration::from_secs(7 * 24 * 3600),
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(nats)
}

pub struct Planner {
    js: jetstream::Context,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    subject: String,
    chunk: usize,
    follows: FollowStore,
    stats: Arc<NotifyStats>,
}

impl Planner {
    /// Creates (or binds to) the plan consumer and the work queue.
    pub async fn open(
        js: &jetstream::Context,
        settings: &NotifySettings,
        replicas: usize,
        follows: FollowStore,
        stats: Arc<NotifyStats>,
    ) -> Result<Planner, NotifyError> {
        jobs_stream(js, settings, replicas).await?;
        let events = js.get_stream(&settings.stream).await.map_err(nats)?;
        let deliver_policy = if settings.from_start {
            jetstream::consumer::DeliverPolicy::All
        } else {
            jetstream::consumer::DeliverPolicy::New
        };
        let consumer = events
            .get_or_create_consumer(
                PLAN_CONSUMER,
                pull::Config {
                    durable_name: Some(PLAN_CONSUMER.into()),
                    description: Some("sapha notify: stage changes to plan".into()),
                    filter_subject: format!("{}.bill.*.stage", sapha_proto::subject::PREFIX),
                    deliver_policy,
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: settings.ack_wait,
                    max_ack_pending: 1,
                    num_replicas: replicas,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats)?;
        Ok(Planner {
            js: js.clone(),
            consumer,
            subject: jobs_subject(&settings.jobs_stream),
            chunk: settings.chunk.max(1),
            follows,
            stats,
        })
    }

    /// Plans stage changes until `shutdown`; reopens the consumer after errors.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), NotifyError> {
        while !shutdown.is_cancelled() {
            let mut messages = match self.consumer.messages().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the plan consumer; retrying");
                    pause(&shutdown, Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = shutdown.cancelled() => return Ok(()),
                };
                match next {
                    Some(Ok(message)) => {
                        if let Err(e) = self.plan(&message).await {
                            // Not acked: NATS gives it again after ack_wait.
                            tracing::warn!(error = %e, "planning failed; the event comes back");
                            let _ = message
                                .ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1))))
                                .await;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "plan consumer broke; reopening");
                        break;
                    }
                    None => break,
                }
            }
            pause(&shutdown, Duration::from_millis(500)).await;
        }
        Ok(())
    }

    async fn plan(&self, message: &jetstream::Message) -> Result<(), NotifyError> {
        let seq = message.info().map_err(nats)?.stream_sequence;
        let change = sapha_proto::Event::decode_proto(&message.payload)
            .ok()
            .and_then(|event| Change::of(seq, &event));
        if let Some(change) = change {
            let followers = self.follows.followers_of(&change.bill_id).await?;
            let mut acks = Vec::new();
            for (i, chunk) in followers.chunks(self.chunk).enumerate() {
                let job = Job {
                    change: change.clone(),
                    followers: chunk.to_vec(),
                };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("{}/{i}", change.event_id).as_str());
                let ack = self
                    .js
                    .publish_with_headers(
                        self.subject.clone(),
                        headers,
                        serde_json::to_vec(&job).expect("serializes").into(),
                    )
                    .await
                    .map_err(nats)?;
                acks.push(ack);
            }
            let jobs = acks.len();
            for ack in acks {
                ack.await.map_err(nats)?;
            }
            self.stats
                .jobs
                .fetch_add(jobs as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                bill = %change.bill_id,
                event_id = %change.event_id,
                followers = followers.len(),
                jobs,
                "stage change planned"
            );
        }
        message.double_ack().await.map_err(nats)?;
        NotifyStats::add(&self.stats.planned);
        Ok(())
    }
}

/// Sleeps, or returns early at shutdown.
pub(crate) async fn pause(shutdown: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.cancelled() => {}
    }
}
