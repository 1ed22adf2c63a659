//! Sending: jobs from the work queue, each follower once, with a sent marker
//! per (stage change, follower) in a key-value bucket (module docs of
//! `notify`, "Exactly once").

use super::channels::{Channels, Outcome};
use super::plan::{jobs_stream, pause, Job};
use super::{nats, Change, NotifyError, NotifySettings, NotifyStats};
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

/// The key of a follower's count of consecutive permanent failures.
pub fn failures_key(follower: &str) -> String {
    format!("failures.{follower}")
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
        // Deliveries of this job so far (redeliveries after a NAK or a lost
        // replica count too): at the last one, a follower that still fails is
        // given up, so one (change, follower) is tried at most
        // `attempts * deliveries` times.
        let delivered = message.info().map(|i| i.delivered.max(1)).unwrap_or(1) as u32;
        let last = delivered >= self.settings.deliveries.max(1);
        let sends = futures::stream::iter(job.followers.iter().cloned())
            .map(|d| async move { self.deliver(change, &d, url, last, shutdown).await })
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
        // The job comes back after an exponential, jittered delay (or the
        // longest Retry-After a channel asked for, within the cap).
        let backoff = self.settings.redelivery_backoff;
        let later = outcomes
            .iter()
            .filter_map(|d| match d {
                Done::Later(wait) => Some(wait.unwrap_or_default()),
                Done::Final => None,
            })
            .max()
            .map(|asked| asked.max(backoff.delay(delivered)).min(backoff.max));
        let acked = match later {
            None => message.double_ack().await,
            Some(wait) => message.ack_with(jetstream::AckKind::Nak(Some(wait))).await,
        };
        if let Err(e) = acked {
            tracing::warn!(error = %e, "cannot ack a job; it comes back and its markers skip who was told");
        }
    }

    /// One follower: the marker, the send, the marker again. `last`: this is
    /// the job's last delivery, so a follower that still fails is given up.
    async fn deliver(
        &self,
        change: &Change,
        to: &Delivery,
        url: &str,
        last: bool,
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
        let kind = to.channel.kind();
        let attempts = self.settings.attempts.max(1);
        for attempt in 1..=attempts {
            let outcome = self.channels.send(change, to, url).await;
            let mark = match outcome {
                Outcome::Sent => {
                    NotifyStats::add(&self.stats.sent);
                    NotifyStats::add(&self.stats.channel(kind).sent);
                    self.reset_failures(to).await;
                    "sent"
                }
                Outcome::Gone => {
                    NotifyStats::add(&self.stats.gone);
                    NotifyStats::add(&self.stats.channel(kind).gone);
                    self.remove(to, "gone").await;
                    "gone"
                }
                Outcome::Refused(_) => {
                    NotifyStats::add(&self.stats.refused);
                    NotifyStats::add(&self.stats.channel(kind).refused);
                    self.count_failure(to).await;
                    "refused"
                }
                Outcome::Blocked(_) => {
                    NotifyStats::add(&self.stats.blocked);
                    NotifyStats::add(&self.stats.channel(kind).blocked);
                    self.count_failure(to).await;
                    "blocked"
                }
                Outcome::Retry(wait) => {
                    NotifyStats::add(&self.stats.failed_attempts);
                    NotifyStats::add(&self.stats.channel(kind).failed_attempts);
                    if shutdown.is_cancelled() {
                        return Done::Later(wait);
                    }
                    if attempt < attempts {
                        let wait = wait
                            .unwrap_or_else(|| self.settings.attempt_backoff.delay(attempt))
                            .min(Duration::from_secs(60));
                        pause(shutdown, wait).await;
                        continue;
                    }
                    if !last {
                        return Done::Later(wait);
                    }
                    tracing::warn!(
                        follower = %to.follower,
                        channel = kind,
                        tries = attempts * self.settings.deliveries.max(1),
                        "giving up on a notification"
                    );
                    NotifyStats::add(&self.stats.gave_up);
                    NotifyStats::add(&self.stats.channel(kind).gave_up);
                    self.count_failure(to).await;
                    "gave_up"
                }
            };
            self.mark(&key, mark).await;
            return Done::Final;
        }
        Done::Later(None)
    }

    /// Whether failures to reach this follower are the follower's own: its
    /// push subscription, or its LINE id. A webhook failure is the app
    /// backend's, and must not remove the app's users.
    fn failures_are_the_followers(to: &Delivery) -> bool {
        !matches!(to.channel, sapha_follows::Channel::Webhook { .. })
    }

    /// Counts one more consecutive permanent failure (given up, refused or
    /// blocked) of a follower; at `remove_after` the follower is removed
    /// (RFC 8030 services expect a dead subscription to be dropped).
    async fn count_failure(&self, to: &Delivery) {
        let limit = self.settings.remove_after;
        if limit == 0 || !Self::failures_are_the_followers(to) {
            return;
        }
        let key = failures_key(&to.follower);
        for _ in 0..8 {
            let entry = match self.markers.entry(key.as_str()).await {
                Ok(e) => e.filter(|e| e.operation == kv::Operation::Put),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a failure count");
                    return;
                }
            };
            let count = entry
                .as_ref()
                .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            if count >= limit {
                self.remove(to, "failed").await;
                let _ = self.markers.purge(key.as_str()).await;
                return;
            }
            let value = count.to_string().into();
            let written = match &entry {
                Some(e) => self
                    .markers
                    .update(key.as_str(), value, e.revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => self
                    .markers
                    .create(key.as_str(), value)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(()) => return,
                Err(_) => continue, // another replica counted at once: again
            }
        }
    }

    /// A success ends a run of failures.
    async fn reset_failures(&self, to: &Delivery) {
        if self.settings.remove_after == 0 || !Self::failures_are_the_followers(to) {
            return;
        }
        let key = failures_key(&to.follower);
        if let Ok(Some(_)) = self.markers.get(key.as_str()).await {
            let _ = self.markers.purge(key.as_str()).await;
        }
    }

    /// Removes a follower whose channel is gone or keeps failing.
    async fn remove(&self, to: &Delivery, why: &'static str) {
        match self.follows.remove_unreachable(&to.follower).await {
            Ok(()) => {
                NotifyStats::add(&self.stats.removed);
                tracing::info!(follower = %to.follower, why, "follower removed");
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove a follower"),
        }
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
