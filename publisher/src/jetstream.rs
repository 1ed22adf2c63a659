//! The production log: NATS JetStream. Creates or updates the stream on start,
//! publishes each event with `Nats-Msg-Id` = event id and waits for the ack.

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use futures::StreamExt;
use sapha_log::{Appended, EventLog, LogError, StoredEvent};
use sapha_proto::{subject::STREAM_SUBJECTS, Event};
use std::time::Duration;
use thiserror::Error;

/// How the JetStream stream is configured; every field has a documented default.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Stream name. Default `PARL`.
    pub name: String,
    /// Drop events older than this. Default 365 days.
    pub max_age: Duration,
    /// Drop the oldest events beyond this many bytes; -1 for no limit. Default 10 GiB.
    pub max_bytes: i64,
    /// Window in which a resent event id is recognised as a duplicate. Default 2 hours.
    pub duplicate_window: Duration,
    /// Replicas (1 for a single server, 3 for a cluster). Default 1.
    pub replicas: usize,
    /// How long to wait for JetStream's ack of one publish before retrying. Default 5 s.
    pub ack_timeout: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            name: "PARL".into(),
            max_age: Duration::from_secs(365 * 24 * 3600),
            max_bytes: 10 * 1024 * 1024 * 1024,
            duplicate_window: Duration::from_secs(2 * 3600),
            replicas: 1,
            ack_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the publisher could not get its stream ready.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("cannot reach NATS at {url}: {source}")]
    Unreachable {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("JetStream is not enabled on the NATS server (start nats-server with -js)")]
    NoJetStream,
    #[error("stream '{name}' cannot be created or updated to Sapha's configuration: {detail}")]
    Conflict { name: String, detail: String },
}

/// Connects to NATS (one URL, or several comma-separated: the nodes of a cluster),
/// failing fast with a clear message if it is unreachable. Once
/// connected, the client reconnects by itself for as long as the process runs.
pub async fn connect(url: &str) -> Result<async_nats::Client, SetupError> {
    async_nats::ConnectOptions::new()
        .name("sapha-publisher")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .connect(sapha_proto::subject::server_urls(url))
        .await
        .map_err(|source| SetupError::Unreachable {
            url: url.to_owned(),
            source,
        })
}

/// The stream configuration Sapha wants.
pub fn stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: settings.name.clone(),
        subjects: vec![STREAM_SUBJECTS.into()],
        retention: stream::RetentionPolicy::Limits,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the stream, or updates it to Sapha's configuration.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Info, SetupError> {
    use async_nats::jetstream::context::CreateStreamErrorKind as K;
    js.create_or_update_stream(stream_config(settings))
        .await
        .map_err(|e| match e.kind() {
            K::JetStreamUnavailable | K::TimedOut => SetupError::NoJetStream,
            _ => SetupError::Conflict {
                name: settings.name.clone(),
                detail: e.to_string(),
            },
        })
}

/// [`EventLog`] on a JetStream stream.
#[derive(Clone)]
pub struct JetStreamLog {
    js: jetstream::Context,
    stream: String,
}

impl JetStreamLog {
    /// Connects, ensures the stream and returns the log.
    pub async fn open(url: &str, settings: &StreamSettings) -> Result<JetStreamLog, SetupError> {
        let client = connect(url).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(settings.ack_timeout)
            .build(client);
        ensure_stream(&js, settings).await?;
        Ok(JetStreamLog {
            js,
            stream: settings.name.clone(),
        })
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }
}

fn publish_error(e: jetstream::context::PublishError) -> LogError {
    let text = e.to_string();
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => LogError::Refused(text),
        // Limits the server will not lift by itself: the operator must act.
        PublishErrorKind::Other
            if [
                "maximum bytes",
                "maximum messages",
                "insufficient resources",
                "storage",
            ]
            .iter()
            .any(|m| text.contains(m)) =>
        {
            LogError::Refused(text)
        }
        _ => LogError::Unavailable(text),
    }
}

impl EventLog for JetStreamLog {
    async fn append(&self, event: &Event) -> Result<Appended, LogError> {
        let message = jetstream::message::PublishMessage::build()
            .message_id(&event.event_id)
            .payload(event.encode_proto().into());
        let ack = self
            .js
            .send_publish(event.subject(), message)
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        Ok(Appended {
            stream_seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    async fn history(&self, subject_filter: String) -> Result<Vec<StoredEvent>, LogError> {
        use jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
        let unavailable = |e: &dyn std::fmt::Display| LogError::Unavailable(e.to_string());
        let stream = self
            .js
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| unavailable(&e))?;
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: subject_filter,
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                memory_storage: true,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&e))?;
        let total = consumer.cached_info().num_pending as usize;
        let name = consumer.cached_info().name.clone();
        let mut events = Vec::with_capacity(total);
        while events.len() < total {
            let mut batch = consumer
                .fetch()
                .max_messages((total - events.len()).min(512))
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .map_err(|e| unavailable(&e))?;
            let before = events.len();
            while let Some(message) = batch.next().await {
                let message = message.map_err(|e| unavailable(&e))?;
                let stream_seq = message.info().map_err(|e| unavailable(&e))?.stream_sequence;
                let event = Event::decode_proto(&message.payload)
                    .map_err(|e| LogError::Corrupt(format!("stream seq {stream_seq}: {e}")))?;
                events.push(StoredEvent { stream_seq, event });
            }
            if events.len() == before {
                return Err(LogError::Unavailable("history read stalled".into()));
            }
        }
        let _ = stream.delete_consumer(&name).await;
        Ok(events)
    }
}
