//! The production [`EventSource`]: a JetStream stream read through ordered
//! (ephemeral, ack-less) consumers. The hub opens one for its live fan-out and,
//! for a resume that reaches beyond its memory, one short-lived one per replay.

use crate::config::NatsConfig;
use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures::StreamExt;
use sapha_log::{EventSource, SourceError, SourceMessage, SourceStream, StreamBounds};
use std::sync::Arc;
use tokio::sync::watch;

/// A JetStream stream as an [`EventSource`].
#[derive(Clone)]
pub struct NatsSource {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    /// Bumped on every reconnect after the first connect, so that open readers
    /// end and are reopened from their last sequence at once instead of waiting
    /// for the consumer's missed heartbeats.
    reconnects: Arc<watch::Sender<u64>>,
    /// The object store bucket of the state snapshots.
    snapshot_bucket: String,
}

/// The object that holds the newest state snapshot in its bucket.
const SNAPSHOT_OBJECT: &str = "state";

/// How long reading the stored lifecycle events may wait for the next one.
const LIFECYCLE_STALL: std::time::Duration = std::time::Duration::from_secs(5);

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> SourceError {
    SourceError::Unavailable(Box::new(e))
}

impl NatsSource {
    /// The stream's replicas: the buckets beside it are replicated like it.
    async fn stream_replicas(&self) -> Result<usize, SourceError> {
        Ok(self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(unavailable)?
            .cached_info()
            .config
            .num_replicas)
    }

    /// Connects to NATS at `[nats] url`: one URL or several, comma-separated (the
    /// nodes of a cluster). The connection is retried in the background, so a
    /// hub can start before NATS does; `/readyz` says when it is connected.
    pub async fn connect(config: &NatsConfig) -> Result<NatsSource, SourceError> {
        let addrs = sapha_proto::subject::server_urls(&config.url)
            .into_iter()
            .map(|u| u.parse::<async_nats::ServerAddr>().map_err(unavailable))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, _) = watch::channel(0u64);
        let reconnects = Arc::new(tx);
        let events = reconnects.clone();
        let max_backoff = std::time::Duration::from_millis(config.max_backoff_ms.max(10));
        let client = async_nats::ConnectOptions::new()
            .name("sapha-hub")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(move |attempts| {
                let ms = 50u64.saturating_mul(1 << attempts.min(10) as u64);
                std::time::Duration::from_millis(ms).min(max_backoff)
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("nats connected");
                            events.send_modify(|n| *n += 1);
                        }
                        async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                        other => tracing::debug!(event = %other, "nats event"),
                    }
                }
            })
            .connect(addrs)
            .await
            .map_err(unavailable)?;
        Ok(NatsSource::with_client(client, &config.stream, reconnects))
    }

    fn with_client(
        client: async_nats::Client,
        stream: &str,
        reconnects: Arc<watch::Sender<u64>>,
    ) -> NatsSource {
        NatsSource {
            js: jetstream::new(client.clone()),
            client,
            stream: stream.to_owned(),
            reconnects,
            snapshot_bucket: format!("{stream}_STATE"),
        }
    }

    /// Keeps the state snapshots in `bucket` (default `<stream>_STATE`).
    pub fn with_snapshot_bucket(mut self, bucket: &str) -> NatsSource {
        if !bucket.is_empty() {
            self.snapshot_bucket = bucket.to_owned();
        }
        self
    }

    /// The underlying client (for tests and tools).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

impl EventSource for NatsSource {
    async fn bounds(&self) -> Result<StreamBounds, SourceError> {
        use async_nats::jetstream::context::GetStreamErrorKind;
        use async_nats::jetstream::ErrorCode;
        let mut stream = match self.js.get_stream(&self.stream).await {
            Ok(stream) => stream,
            // No stream yet (the hub started before the publisher): it holds no
            // events, so everything stored once it exists is new to our clients
            // and the fan-out must start from its very first sequence.
            Err(e)
                if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(StreamBounds {
                    first: 1,
                    last: 0,
                    epoch: String::new(),
                });
            }
            Err(e) => return Err(unavailable(e)),
        };
        let info = stream.info().await.map_err(unavailable)?;
        let state = &info.state;
        let first = if state.messages == 0 {
            state.last_sequence + 1
        } else {
            state.first_sequence
        };
        Ok(StreamBounds {
            first,
            last: state.last_sequence,
            // The stream's creation time: a recreated stream gets a new one.
            epoch: format!("{:x}", info.created.unix_timestamp_nanos()),
        })
    }

    async fn read_from(&self, start: u64) -> Result<SourceStream, SourceError> {
        let mut epoch = self.reconnects.subscribe();
        epoch.borrow_and_update();
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(unavailable)?;
        let deliver_policy = if start <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: start,
            }
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let out = futures::stream::unfold(Some((messages, epoch)), |state| async move {
            let (mut messages, mut epoch) = state?;
            tokio::select! {
                next = messages.next() => match next {
                    Some(Ok(msg)) => match msg.info() {
                        Ok(info) => {
                            let item = SourceMessage {
                                seq: info.stream_sequence,
                                payload: msg.payload.clone(),
                                stored_at: Some(info.published.into()),
                            };
                            Some((Ok(item), Some((messages, epoch))))
                        }
                        Err(e) => Some((Err(SourceError::Unavailable(e)), None)),
                    },
                    Some(Err(e)) => Some((Err(unavailable(e)), None)),
                    None => Some((
                        Err(SourceError::Unavailable("the consumer ended".into())),
                        None,
                    )),
                },
                _ = epoch.changed() => Some((Err(SourceError::Reconnected), None)),
            }
        });
        Ok(out.boxed())
    }

    async fn lifecycle_until(&self, until: u64) -> Result<Vec<SourceMessage>, SourceError> {
        let mut out = Vec::new();
        if until == 0 {
            return Ok(out);
        }
        let stream = match self.js.get_stream(&self.stream).await {
            Ok(s) => s,
            Err(e) => {
                use async_nats::jetstream::context::GetStreamErrorKind;
                use async_nats::jetstream::ErrorCode;
                if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND)
                {
                    return Ok(out);
                }
                return Err(unavailable(e));
            }
        };
        let mut consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                filter_subject: format!("{}.sitting.*.*.lifecycle", sapha_proto::subject::PREFIX),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        if consumer.info().await.map_err(unavailable)?.num_pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        loop {
            let next = tokio::time::timeout(LIFECYCLE_STALL, messages.next())
                .await
                .map_err(|_| SourceError::Unavailable("reading lifecycle events stalled".into()))?;
            let msg = match next {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => return Err(unavailable(e)),
                None => return Err(SourceError::Unavailable("the consumer ended".into())),
            };
            let info = msg.info().map_err(SourceError::Unavailable)?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            if seq > until {
                break;
            }
            out.push(SourceMessage {
                seq,
                payload: msg.payload.clone(),
                stored_at: Some(info.published.into()),
            });
            if pending == 0 || seq == until {
                break;
            }
        }
        Ok(out)
    }

    async fn load_snapshot(&self) -> Result<Option<bytes::Bytes>, SourceError> {
        use tokio::io::AsyncReadExt;
        let store = match self.js.get_object_store(&self.snapshot_bucket).await {
            Ok(store) => store,
            Err(e) if e.kind() == jetstream::context::ObjectStoreErrorKind::GetStore => {
                return Ok(None)
            }
            Err(e) => return Err(unavailable(e)),
        };
        let mut object = match store.get(SNAPSHOT_OBJECT).await {
            Ok(object) => object,
            Err(e) if e.kind() == jetstream::object_store::GetErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(unavailable(e)),
        };
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(unavailable)?;
        Ok(Some(bytes.into()))
    }

    async fn store_snapshot(&self, snapshot: bytes::Bytes) -> Result<(), SourceError> {
        let store = match self.js.get_object_store(&self.snapshot_bucket).await {
            Ok(store) => store,
            Err(_) => {
                let replicas = self.stream_replicas().await?;
                self.js
                    .create_object_store(jetstream::object_store::Config {
                        bucket: self.snapshot_bucket.clone(),
                        description: Some(format!("Sapha hub state snapshots of {}", self.stream)),
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(unavailable)?
            }
        };
        store
            .put(SNAPSHOT_OBJECT, &mut snapshot.as_ref())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

impl crate::follow::FollowBackend for NatsSource {
    fn open_follow_store<'a>(
        &'a self,
        bucket: &'a str,
        replicas_without_stream: usize,
    ) -> futures::future::BoxFuture<'a, Result<sapha_follows::FollowStore, SourceError>> {
        Box::pin(async move {
            // An existing bucket needs no replica count, and the follow API
            // works as soon as NATS answers, with or without the event stream.
            if let Some(store) = sapha_follows::FollowStore::open_existing(&self.js, bucket)
                .await
                .map_err(unavailable)?
            {
                return Ok(store);
            }
            // A new one is replicated like the stream; before the stream
            // exists, by `[follow] replicas` (0: as many as the cluster has
            // servers, at most 3).
            let replicas = match self.stream_replicas().await {
                Ok(r) => r,
                Err(_) if replicas_without_stream > 0 => replicas_without_stream,
                Err(_) => {
                    let info = self.client.server_info();
                    if info.cluster.is_some() {
                        info.connect_urls.len().clamp(1, 3)
                    } else {
                        1
                    }
                }
            };
            sapha_follows::FollowStore::open(&self.js, bucket, replicas)
                .await
                .map_err(unavailable)
        })
    }
}
