//! `sapha notify`: a notification at every stage of a followed bill, to
//! anonymous followers (the hub's follow API writes them into a NATS
//! key-value bucket, `sapha_follows`), by Web Push, LINE or a signed webhook.
//!
//! ## The path of one stage change (docs/NOTIFY.md)
//!
//! 1. **Plan** ([`plan`]). One durable pull consumer on the event stream,
//!    `parl.v1.bill.*.stage`, shared by every notifier replica, one event at a
//!    time (in stream order). A replica reads the bill's followers from the
//!    follow store and publishes them, in chunks of [`NotifySettings::chunk`],
//!    as jobs to a work-queue stream, each with a `Nats-Msg-Id` of
//!    `<event id>/<chunk>`, so a re-plan after a crash is deduplicated. Then it
//!    acks the event.
//! 2. **Send** ([`send`]). A second durable consumer on the work queue, also
//!    shared: each job goes to one replica at a time. For each follower it
//!    checks the sent marker `s.<event id>.<follower>` in a key-value bucket,
//!    sends, and creates the marker (compare-and-set on "no such key"). It acks
//!    the job when every follower in it is sent, gone or refused for good.
//!
//! ## Exactly once
//!
//! A marker is written only after the channel accepted the message, and read
//! before sending, so a job redelivered after a crash, or planned twice, skips
//! whoever was told. The one window left, a crash between the push service's
//! acceptance and the marker's write, is closed at the receiver: Web Push
//! messages carry a `Topic` (an undelivered older copy is replaced) and the
//! browser shows them with one `tag` per bill; LINE gets the same
//! `X-Line-Retry-Key` (LINE drops a repeat); the webhook gets an
//! `Idempotency-Key`.
//!
//! ## Corrections
//!
//! An event that `supersedes` another is notified, marked as a correction
//! (the citizen was told something that turned out wrong), under the same
//! Web Push `Topic` and `tag`, so it replaces the wrong one where that is
//! still shown or undelivered.

mod channels;
pub mod egress;
pub mod plan;
pub mod send;
mod text;

pub use channels::{
    generate_vapid_key, line_retry_key, push_payload, push_topic, Channels, LineSettings, Outcome,
    Targets, WebPushSettings, WebhookTarget,
};
pub use text::notification_text;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use sapha_proto::event::{Body, Event, Text};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use thiserror::Error;

/// One stage change, as every channel words it (the job's common part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub bill_id: String,
    pub event_id: String,
    /// The stream sequence of the stage change.
    pub seq: u64,
    pub from_stage: Option<String>,
    pub to_stage: String,
    /// The bill's title (full), in Thai and English.
    pub title: Text,
    /// The message, in Thai and English, with the bill's short title.
    pub text: Text,
    /// When the change happened (RFC 3339, UTC).
    pub occurred_at: String,
    /// This event corrects (supersedes) an earlier one.
    pub correction: bool,
}

impl Change {
    /// The change an event announces, if it is a bill's stage change.
    pub fn of(seq: u64, event: &Event) -> Option<Change> {
        let Body::BillStageChanged(b) = &event.body else {
            return None;
        };
        Some(Change {
            bill_id: b.bill_id.clone(),
            event_id: event.event_id.clone(),
            seq,
            from_stage: b.from_stage.map(|s| s.code().to_owned()),
            to_stage: b.to_stage.code().to_owned(),
            title: b.title.clone(),
            text: notification_text(b),
            occurred_at: event
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            correction: event.supersedes.is_some(),
        })
    }
}

/// What the webhook receives (JSON): one notification for one follower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The app's own reference for the follower (`channel.reference`).
    pub user: String,
    /// The follower id in the follow store.
    pub follower: String,
    pub lang: sapha_follows::Lang,
    #[serde(flatten)]
    pub change: Change,
    /// The dashboard page of the bill.
    pub url: String,
}

/// Settings of a notifier replica.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The event stream (`PARL`).
    pub stream: String,
    /// The follow store bucket (the hub's `[follow] bucket`).
    pub follows_bucket: String,
    /// The sent markers' bucket.
    pub sent_bucket: String,
    /// How long a sent marker is kept: a stage change older than this is
    /// never re-planned, so its markers are no longer needed.
    pub sent_ttl: Duration,
    /// The work-queue stream of jobs.
    pub jobs_stream: String,
    /// Start with the next stage change (`false`), or with every stored one
    /// (`true`), when the plan consumer does not exist yet.
    pub from_start: bool,
    /// Followers per job.
    pub chunk: usize,
    /// Messages one replica sends at once.
    pub concurrency: usize,
    /// How long a job or event may be held without progress before NATS gives
    /// it to another replica (a replica that dies is noticed this late).
    pub ack_wait: Duration,
    /// Attempts of one message within one delivery of its job before the job
    /// is handed back (NAK with a delay) for a later try.
    pub attempts: u32,
    /// The wait between those attempts (exponential, jittered; a channel's
    /// `Retry-After` wins).
    pub attempt_backoff: sapha_proto::backoff::Backoff,
    /// Deliveries of a job: at the last one, a follower that still fails is
    /// given up (`gave_up`). One (stage change, follower) is tried at most
    /// `attempts * deliveries` times.
    pub deliveries: u32,
    /// The delay before a job comes back (exponential in its deliveries,
    /// jittered, at most `max`; a longer `Retry-After` wins, within `max`).
    pub redelivery_backoff: sapha_proto::backoff::Backoff,
    /// Consecutive permanent failures (given up, refused, blocked) after
    /// which a Web Push or LINE follower is removed; 0 never removes. A
    /// success starts the count again. Webhook failures never remove.
    pub remove_after: u32,
    /// The dashboard's public URL; a notification links to `<url>/?bill=<id>`.
    pub dashboard_url: String,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            stream: "PARL".into(),
            follows_bucket: sapha_follows::DEFAULT_BUCKET.into(),
            sent_bucket: "SAPHA_NOTIFY_SENT".into(),
            sent_ttl: Duration::from_secs(35 * 24 * 3600),
            jobs_stream: "SAPHA_NOTIFY_JOBS".into(),
            from_start: false,
            chunk: 250,
            concurrency: 64,
            ack_wait: Duration::from_secs(30),
            attempts: 3,
            attempt_backoff: sapha_proto::backoff::Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(10),
            },
            deliveries: 6,
            redelivery_backoff: sapha_proto::backoff::Backoff {
                initial: Duration::from_secs(30),
                max: Duration::from_secs(30 * 60),
            },
            remove_after: 3,
            dashboard_url: String::new(),
        }
    }
}

impl NotifySettings {
    /// The link a notification opens.
    pub fn bill_url(&self, bill_id: &str) -> String {
        format!(
            "{}/?bill={bill_id}",
            self.dashboard_url.trim_end_matches('/')
        )
    }
}

#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error(transparent)]
    Follows(#[from] sapha_follows::StoreError),
    #[error("{0}")]
    Config(String),
}

pub(crate) fn nats(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Nats(e.to_string())
}

/// What a replica did, for logs and `/metrics`.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Stage changes planned (events acked by the plan consumer).
    pub planned: AtomicU64,
    /// Jobs published.
    pub jobs: AtomicU64,
    /// Messages accepted by a channel, by this replica.
    pub sent: AtomicU64,
    /// Skipped because their marker showed them sent already.
    pub already_sent: AtomicU64,
    /// Sent, then the marker was found written by another: a duplicate.
    pub duplicates: AtomicU64,
    /// Followers removed because their push subscription is gone (404/410).
    pub gone: AtomicU64,
    /// Refused for good by the channel (a 4xx other than 404/408/410/429).
    pub refused: AtomicU64,
    /// Failed attempts (retried).
    pub failed_attempts: AtomicU64,
    /// Not sent because the target is not allowed (egress policy): never
    /// connected to, never retried.
    pub blocked: AtomicU64,
    /// Given up after `attempts * deliveries` failed tries.
    pub gave_up: AtomicU64,
    /// Followers removed from the store because their channel is gone.
    pub removed: AtomicU64,
    /// The outcomes above, by channel, in the order of [`CHANNELS`].
    pub by_channel: [ChannelCounts; 3],
}

/// The channels, in the order of [`NotifyStats::by_channel`].
pub const CHANNELS: [&str; 3] = ["webpush", "line", "webhook"];

/// One channel's outcomes.
#[derive(Debug, Default)]
pub struct ChannelCounts {
    pub sent: AtomicU64,
    pub gone: AtomicU64,
    pub refused: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub blocked: AtomicU64,
    pub gave_up: AtomicU64,
}

impl NotifyStats {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The outcomes of one channel (`Channel::kind`).
    pub fn channel(&self, kind: &str) -> &ChannelCounts {
        let i = CHANNELS.iter().position(|c| *c == kind).unwrap_or(0);
        &self.by_channel[i]
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "planned {} jobs {} sent {} already_sent {} duplicates {} gone {} refused {} failed_attempts {} blocked {} gave_up {}",
            g(&self.planned),
            g(&self.jobs),
            g(&self.sent),
            g(&self.already_sent),
            g(&self.duplicates),
            g(&self.gone),
            g(&self.refused),
            g(&self.failed_attempts),
            g(&self.blocked),
            g(&self.gave_up)
        )
    }
}

impl Collector for NotifyStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, help, value) in [
            (
                "sapha_notify_changes_planned",
                "Stage changes planned (acked by the plan consumer)",
                g(&self.planned),
            ),
            (
                "sapha_notify_jobs_published",
                "Jobs (chunks of followers) published to the work queue",
                g(&self.jobs),
            ),
            (
                "sapha_notify_already_sent",
                "Notifications skipped because their marker showed them sent",
                g(&self.already_sent),
            ),
            (
                "sapha_notify_duplicates",
                "Notifications sent twice (another replica had marked them)",
                g(&self.duplicates),
            ),
            (
                "sapha_notify_followers_removed",
                "Followers removed because their channel is gone (404/410) or failed remove_after times in a row",
                g(&self.removed),
            ),
        ] {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let mut sent = encoder.encode_descriptor(
            "sapha_notify_sent",
            "Notifications a channel accepted, by channel",
            None,
            MetricType::Counter,
        )?;
        for (channel, counts) in CHANNELS.iter().zip(&self.by_channel) {
            ConstCounter::new(g(&counts.sent))
                .encode(sent.encode_family(&[("channel", *channel)])?)?;
        }
        let mut failed = encoder.encode_descriptor(
            "sapha_notify_failed",
            "Notifications not sent, by channel and reason: gone (the subscription is gone; the follower is removed), refused (a permanent 4xx), retry (an attempt failed and is retried), blocked_target (the target is not allowed by the egress policy; never connected to, never retried), gave_up (every try failed: attempts times deliveries)",
            None,
            MetricType::Counter,
        )?;
        for (channel, counts) in CHANNELS.iter().zip(&self.by_channel) {
            for (reason, value) in [
                ("gone", &counts.gone),
                ("refused", &counts.refused),
                ("retry", &counts.failed_attempts),
                ("blocked_target", &counts.blocked),
                ("gave_up", &counts.gave_up),
            ] {
                ConstCounter::new(g(value))
                    .encode(failed.encode_family(&[("channel", *channel), ("reason", reason)])?)?;
            }
        }
        Ok(())
    }
}

/// Connects to NATS at one URL or several, comma-separated (cluster nodes),
/// retrying the first connect until a node answers.
pub async fn connect(urls: &str) -> Result<async_nats::Client, NotifyError> {
    let addrs = sapha_proto::subject::server_urls(urls)
        .into_iter()
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| NotifyError::Config(format!("NATS URL {u}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .map_err(nats)
}

/// Runs one notifier replica (planning and sending) until `shutdown`.
pub async fn run(
    client: async_nats::Client,
    settings: NotifySettings,
    channels: Channels,
    stats: std::sync::Arc<NotifyStats>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), NotifyError> {
    let js = async_nats::jetstream::new(client);
    // The publisher creates the stream; until then, wait (as the hub does).
    let replicas = loop {
        match js.get_stream(&settings.stream).await {
            Ok(stream) => break stream.cached_info().config.num_replicas,
            Err(e) => {
                tracing::warn!(stream = %settings.stream, error = %e, "waiting for the event stream");
                plan::pause(&shutdown, Duration::from_secs(2)).await;
                if shutdown.is_cancelled() {
                    return Ok(());
                }
            }
        }
    };
    let follows = sapha_follows::FollowStore::open(&js, &settings.follows_bucket, replicas).await?;
    if let Some(key) = channels.vapid_public_key() {
        follows.set_vapid_public_key(&key).await?;
    }
    // The follow API takes only channels some notifier sends.
    follows.announce_channels(&channels.kinds()).await?;
    let planner =
        plan::Planner::open(&js, &settings, replicas, follows.clone(), stats.clone()).await?;
    let sender =
        send::Sender::open(&js, &settings, replicas, follows, channels, stats.clone()).await?;
    let plan_task = tokio::spawn(planner.run(shutdown.clone()));
    let send_task = tokio::spawn(sender.run(shutdown.clone()));
    let (p, s) = tokio::join!(plan_task, send_task);
    tracing::info!(stats = %stats.summary(), "notify stopped");
    p.map_err(|e| NotifyError::Nats(e.to_string()))??;
    s.map_err(|e| NotifyError::Nats(e.to_string()))??;
    Ok(())
}
