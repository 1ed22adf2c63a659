//! Sending: jobs from the work queue, each follower once, with a sent marker
//! per (stage change, follower) in a key-value bucket (module docs of
//! `notify`, "Exactly once").

use super::channels::{Channels, Outcome};
use super::plan::{jobs_stream, pause, Job};
use super::{nats, Change, NotifyError, NotifySettings, NotifyStats};
use crate::client::Backoff;
use async_nats::jetstream::{self, consumer::pull, kv};
use futures::StreamExt;
use sapha_follows::{Delivery, FollowStore};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The send consumer's durable name.
pub const SEND_CONSUMER: &str = "sapha-notify-send";
/// Jobs one replica works on at once (each sends `concurrency` messages at once).
const JOBS_IN_FLIGHT: usize = 2;

/// The marker key of one notification.
pub fn marker_key(event_id: &str, follower: &str) -> String {
    format!("s.{event_id}.{follower}")
}

/// How a follower's notification ended, for the job's ack.
enum Done {
    /// Sent, already sent, gone or refused for good: never again.
    Final,
    /// Still to send: the job comes back later.
    Later(Option<Duration>),
}

pub struct Sender {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    markers: kv::Store,
    follows: FollowStore,
    channels: Channels,
    settings: NotifySettings,
    stats: Arc<NotifyStats>,
}

impl Sender {
    /// Creates (or binds to) the work queue, its consumer and the markers bucket.
    pub async fn open(
        js: &jetstream::Context,
        settings: &NotifySettings,
        replicas: usize,
        follows: FollowStore,
        channels: Channels,
        stats: Arc<NotifyStats>,
    ) -> Result<Sender, NotifyError> {
        let jobs = jobs_stream(js, settings, replicas).await?;
        let consumer = jobs
            .get_or_create_consumer(
                SEND_CONSUMER,
                pull::Config {
                    durable_name: Some(SEND_CONSUMER.into()),
                    description: Some("sapha notify: jobs to send".into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: settings.ack_wait,
                    num_replicas: replicas,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats)?;
        let markers = match js.get_key_value(&settings.sent_bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: settings.sent_bucket.clone(),
                    description: "sapha notify: (stage change, follower) notified".into(),
                    history: 1,
                    max_age: settings.sent_ttl,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(nats)?,
        };
        Ok(Sender {
            consumer,
            markers,
            follows,
            channels,
            settings: settings.clone(),
            stats,
        })
    }

    /// Sends jobs until `shutdown`; reopens the consumer after errors.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), NotifyError> {
        while !shutdown.is_cancelled() {
            // Pull no more jobs than are worked on: a job waiting in a
            // client-side batch still runs its ack_wait, and one buffered past
            // it is handed to another replica while this one still holds it
            // (with the default batch of 200, 3 replicas sent 484 of 100,000
            // notifications twice, when two replicas checked a marker at once).
            let messages = match self
                .consumer
                .stream()
                .max_messages_per_batch(JOBS_IN_FLIGHT)
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the send consumer; retrying");
                    pause(&shutdown, Duration::from_secs(1)).await;
                    continue;
                }
            };
            let work = messages
                .take_until(shutdown.cancelled())
                .for_each_concurrent(JOBS_IN_FLIGHT, |message| async {
                    match message {
                        Ok(m) => self.job(m, &shutdown).await,
                        Err(e) => tracing::warn!(error = %e, "send consumer error"),
                    }
                });
            work.await;
            pause(&shutdown, Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// One job: every follower in it, with progress acks meanwhile so NATS
    /// does not hand it to another replica while this one works.
    async fn job(&self, message: jetstream::Message, shutdown: &CancellationToken) {
        let job: Job = match serde_json::from_slice(&message.payload) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "a job that is not a job; dropping it");
                let _ = message.ack_with(jetstream::AckKind::Term).await;
                return;
            }
        };
        let url = self.settings.bill_url(&job.change.bill_id);
        let change = &job.change;
        let url = url.as_str();
        let sends = futures::stream::iter(job.followers.iter().cloned())
            .map(|d| async move { self.deliver(change, &d, url, shutdown).await })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<Vec<Done>>();
        let mut sends = std::pin::pin!(sends);
        let mut tick = tokio::time::interval(self.settings.ack_wait / 3);
        tick.tick().await;
        let outcomes = loop {
            tokio::select! {
                outcomes = &mut sends => break outcomes,
                _ = tick.tick() => {
                    let _ = message.ack_with(jetstream::AckKind::Progress).await;
                }
            }
        };
        let later = outcomes.iter().find_map(|d| match d {
            Done::Later(wait) => Some(wait.unwrap_or(Duration::from_secs(10))),
            Done::Final => None,
        });
        let acked = match later {
            None => message.double_ack().await,
            Some(wait) => message.ack_with(jetstream::AckKind::Nak(Some(wait))).await,
        };
        if let Err(e) = acked {
            tracing::warn!(error = %e, "cannot ack a job; it comes back and its markers skip who was told");
        }
    }

    /// One follower: the marker, the send, the marker again.
    async fn deliver(
        &self,
        change: &Change,
        to: &Delivery,
        url: &str,
        shutdown: &CancellationToken,
    ) -> Done {
        let key = marker_key(&change.event_id, &to.follower);
        match self.markers.get(key.as_str()).await {
            Ok(Some(_)) => {
                NotifyStats::add(&self.stats.already_sent);
                return Done::Final;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a sent marker; trying later");
                return Done::Later(None);
            }
        }
        let backoff = Backoff::default();
        for attempt in 1..=self.settings.attempts.max(1) {
            let outcome = self.channels.send(change, to, url).await;
            let mark = match outcome {
                Outcome::Sent => {
                    NotifyStats::add(&self.stats.sent);
                    NotifyStats::add(&self.stats.channel(to.channel.kind()).sent);
                    "sent"
                }
                Outcome::Gone => {
                    NotifyStats::add(&self.stats.gone);
                    NotifyStats::add(&self.stats.channel(to.channel.kind()).gone);
                    match self.follows.remove_unreachable(&to.follower).await {
                        Ok(()) => NotifyStats::add(&self.stats.removed),
                        Err(e) => tracing::warn!(error = %e, "cannot remove a gone subscription"),
                    }
                    "gone"
                }
                Outcome::Refused(_) => {
                    NotifyStats::add(&self.stats.refused);
                    NotifyStats::add(&self.stats.channel(to.channel.kind()).refused);
                    "refused"
                }
                Outcome::Blocked(_) => {
                    NotifyStats::add(&self.stats.blocked);
                    NotifyStats::add(&self.stats.channel(to.channel.kind()).blocked);
                    "blocked"
                }
                Outcome::Retry(wait) => {
                    NotifyStats::add(&self.stats.failed_attempts);
                    NotifyStats::add(&self.stats.channel(to.channel.kind()).failed_attempts);
                    if attempt == self.settings.attempts.max(1) || shutdown.is_cancelled() {
                        return Done::Later(wait);
                    }
                    let wait = wait.unwrap_or_else(|| backoff.delay(attempt));
                    pause(shutdown, wait.min(Duration::from_secs(60))).await;
                    continue;
                }
            };
            self.mark(&key, mark).await;
            return Done::Final;
        }
        Done::Later(None)
    }

    /// Writes a marker, create-only: finding one already there means another
    /// replica sent the same notification (counted, and logged).
    async fn mark(&self, key: &str, what: &'static str) {
        match self.markers.create(key, what.into()).await {
            Ok(_) => {}
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                NotifyStats::add(&self.stats.duplicates);
                tracing::warn!(key, "a notification was sent twice");
            }
            Err(e) => tracing::warn!(key, error = %e, "cannot write a sent marker"),
        }
    }
}
