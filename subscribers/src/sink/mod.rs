//! `sapha sink`: the newsroom consumer. Writes the stream (or a filter of it)
//! to rotated NDJSON files and/or POSTs each event to a signed webhook, and
//! carries on after a crash with no gap and no duplicate.
//!
//! ## Exactly once in the files
//!
//! Events are handled in batches (whatever has arrived, up to
//! [`SinkSettings::batch`]). For each batch the sink
//! 1. appends one JSON line per event and fsyncs the file,
//! 2. POSTs each event to the webhook, in order, until each gets a 2xx,
//! 3. saves the [`Checkpoint`] (last stream seq, file, length) atomically.
//!
//! A crash before 3 leaves lines past the checkpoint; on restart they are cut
//! off and the client resumes after the checkpointed seq, so the hub replays
//! exactly them. The files therefore hold every event once, in stream order.
//! The webhook is at least once: a crash between a 2xx and the checkpoint
//! resends, with the same `X-Sapha-Event-Id`.

mod checkpoint;
mod files;
pub mod webhook;

pub use checkpoint::Checkpoint;
pub use files::FileSettings;
pub use webhook::{WebhookError, WebhookSettings};

use crate::client::{ClientError, Delivery, Item};
use files::Files;
use futures::{FutureExt, Stream, StreamExt};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;
use webhook::Webhook;

/// Most events handled between two checkpoints, by default.
pub const DEFAULT_BATCH: usize = 256;

/// What the sink writes, and where it keeps its checkpoint.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// NDJSON output, if any.
    pub files: Option<FileSettings>,
    /// Webhook output, if any.
    pub webhook: Option<WebhookSettings>,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// Most events per batch (and per checkpoint write).
    pub batch: usize,
    /// Stop with [`SinkError::HistoryLost`] when the hub reports lost history,
    /// or [`SinkError::StreamReset`] when the stream no longer reaches the
    /// checkpoint, instead of logging it and going on.
    pub fail_on_gap: bool,
}

/// Why the sink stopped.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("the sink has no output: give an output directory, a webhook, or both")]
    NoOutput,
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the output does not match the checkpoint: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("events after {since} up to {first_seq} are no longer held by the hub")]
    HistoryLost { since: u64, first_seq: u64 },
    #[error("the stream does not reach position {since} (recreated or restored); it starts at {first_seq}")]
    StreamReset { since: u64, first_seq: u64 },
}

/// What a sink did, for `/metrics` (`sapha sink --metrics-addr`).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Events written to every output and checkpointed.
    pub events: AtomicU64,
    /// Bytes of those events' JSON lines, newline included.
    pub bytes: AtomicU64,
    /// Checkpoints saved (one per batch).
    pub checkpoints: AtomicU64,
    /// Sessions the client opened with a hub (the first, then each reconnect).
    pub connects: AtomicU64,
    /// Times the hub no longer held events the sink needed.
    pub history_lost: AtomicU64,
    /// Times the stream was reset below the sink's position.
    pub stream_resets: AtomicU64,
    /// The last stream sequence checkpointed.
    pub last_seq: AtomicU64,
}

impl Collector for SinkStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, help, value) in [
            (
                "sapha_sink_events_written",
                "Events written to every output and checkpointed",
                g(&self.events),
            ),
            (
                "sapha_sink_written_bytes",
                "Bytes of the events' JSON lines written, newline included",
                g(&self.bytes),
            ),
            (
                "sapha_sink_checkpoints",
                "Checkpoints saved (one per batch)",
                g(&self.checkpoints),
            ),
            (
                "sapha_sink_connects",
                "Sessions opened with a hub (the first, then each reconnect)",
                g(&self.connects),
            ),
            (
                "sapha_sink_history_lost",
                "Times the hub no longer held events the sink needed",
                g(&self.history_lost),
            ),
            (
                "sapha_sink_stream_resets",
                "Times the stream was reset below the sink's position",
                g(&self.stream_resets),
            ),
        ] {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let seq = ConstGauge::new(g(&self.last_seq));
        seq.encode(encoder.encode_descriptor(
            "sapha_sink_last_seq",
            "The last stream sequence checkpointed",
            None,
            seq.metric_type(),
        )?)
    }
}

/// A sink with its outputs open and repaired to its checkpoint.
pub struct Sink {
    stats: Arc<SinkStats>,
    settings: SinkSettings,
    checkpoint: Checkpoint,
    files: Option<Files>,
    webhook: Option<Webhook>,
    written: u64,
    /// The stream epoch of the session delivering now (checkpointed with `seq`).
    epoch: Option<String>,
}

impl Sink {
    /// Loads the checkpoint (or creates one), and cuts the files back to it.
    pub fn open(settings: SinkSettings) -> Result<Sink, SinkError> {
        if settings.files.is_none() && settings.webhook.is_none() {
            return Err(SinkError::NoOutput);
        }
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| SinkError::Io { what, source }
        };
        if let Some(dir) = settings
            .checkpoint
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(io("creating the checkpoint directory"))?;
        }
        let checkpoint = Checkpoint::load(&settings.checkpoint)
            .map_err(io("reading the checkpoint"))?
            .unwrap_or(Checkpoint {
                version: 1,
                ..Checkpoint::default()
            });
        let checkpoint_epoch = checkpoint.epoch.clone();
        let files = match &settings.files {
            Some(f) => Some(Files::open(f.clone(), &checkpoint)?),
            None => None,
        };
        let webhook = match &settings.webhook {
            Some(w) => Some(Webhook::new(w.clone())?),
            None => None,
        };
        let stats = Arc::new(SinkStats::default());
        stats
            .last_seq
            .store(checkpoint.seq.unwrap_or(0), Ordering::Relaxed);
        Ok(Sink {
            stats,
            settings,
            checkpoint,
            files,
            webhook,
            written: 0,
            epoch: checkpoint_epoch,
        })
    }

    /// The last stream sequence durably written: resume after it.
    pub fn position(&self) -> Option<u64> {
        self.checkpoint.seq
    }

    /// The stream epoch [`Sink::position`] belongs to, if known: give it to
    /// [`ClientBuilder::resume_epoch`](crate::ClientBuilder::resume_epoch).
    pub fn epoch(&self) -> Option<String> {
        self.checkpoint.epoch.clone()
    }

    /// Its counters, to register for `/metrics`.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// How many events this sink has written since it opened.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes one batch to every output, then checkpoints it.
    pub async fn write_batch(&mut self, batch: &[Delivery]) -> Result<(), SinkError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let lines: Vec<(u64, String)> = batch.iter().map(|d| (d.seq, d.event.to_json())).collect();
        let mut next = Checkpoint {
            version: 1,
            seq: Some(last.seq),
            file: self.checkpoint.file.clone(),
            offset: self.checkpoint.offset,
            epoch: self.epoch.clone(),
        };
        // File writes, fsyncs and the checkpoint's save run on tokio's
        // blocking pool, never on an async worker.
        let mut lines = lines;
        if let Some(mut files) = self.files.take() {
            let (files, back, appended) = tokio::task::spawn_blocking(move || {
                let appended = files.append(&lines);
                (files, lines, appended)
            })
            .await
            .map_err(blocking_failed)?;
            self.files = Some(files);
            lines = back;
            let (file, offset) = appended?;
            next.file = Some(file);
            next.offset = offset;
        }
        if let Some(webhook) = &self.webhook {
            for (d, (_, json)) in batch.iter().zip(&lines) {
                webhook.post(d.seq, &d.event.event_id, json).await?;
            }
        }
        let (path, to_save) = (self.settings.checkpoint.clone(), next.clone());
        tokio::task::spawn_blocking(move || to_save.save(&path))
            .await
            .map_err(blocking_failed)?
            .map_err(|source| SinkError::Io {
                what: "saving the checkpoint".into(),
                source,
            })?;
        self.checkpoint = next;
        self.written += batch.len() as u64;
        let bytes: usize = lines.iter().map(|(_, json)| json.len() + 1).sum();
        let s = &self.stats;
        s.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        s.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        s.checkpoints.fetch_add(1, Ordering::Relaxed);
        s.last_seq.store(last.seq, Ordering::Relaxed);
        Ok(())
    }

    /// Consumes `items` until they end, fail, or `shutdown` resolves; a batch
    /// in progress is finished and checkpointed first.
    pub async fn run<S>(
        mut self,
        items: S,
        shutdown: impl Future<Output = ()>,
    ) -> Result<u64, SinkError>
    where
        S: Stream<Item = Result<Item, ClientError>> + Unpin,
    {
        let mut items = items;
        let mut shutdown = std::pin::pin!(shutdown);
        let max = self.settings.batch.max(1);
        loop {
            let first = tokio::select! {
                item = items.next() => item,
                _ = &mut shutdown => return Ok(self.written),
            };
            let mut batch = Vec::new();
            let mut stop: Option<Result<(), SinkError>> = None;
            let mut next = first;
            loop {
                match next {
                    None => {
                        stop = Some(Ok(()));
                        break;
                    }
                    Some(Err(e)) => {
                        stop = Some(Err(e.into()));
                        break;
                    }
                    Some(Ok(Item::Event(d))) => batch.push(d),
                    Some(Ok(Item::HistoryLost { since, first_seq })) => {
                        self.stats.history_lost.fetch_add(1, Ordering::Relaxed);
                        if self.settings.fail_on_gap {
                            stop = Some(Err(SinkError::HistoryLost { since, first_seq }));
                            break;
                        }
                        tracing::error!(
                            since,
                            first_seq,
                            "history lost: events in between are missing from the output"
                        );
                    }
                    Some(Ok(Item::StreamReset { since, first_seq })) => {
                        self.stats.stream_resets.fetch_add(1, Ordering::Relaxed);
                        if self.settings.fail_on_gap {
                            stop = Some(Err(SinkError::StreamReset { since, first_seq }));
                            break;
                        }
                        tracing::error!(
                            since,
                            first_seq,
                            "the stream was reset below our position: writing it again from its first event"
                        );
                    }
                    Some(Ok(Item::Connected {
                        url,
                        resumed_after,
                        epoch,
                        ..
                    })) => {
                        self.stats.connects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%url, ?resumed_after, %epoch, "subscribed");
                        // Events from here on belong to this epoch: write what
                        // came before under the old one first.
                        let epoch = Some(epoch).filter(|e| !e.is_empty());
                        if epoch.is_some() && epoch != self.epoch {
                            self.write_batch(&std::mem::take(&mut batch)).await?;
                            self.epoch = epoch;
                        }
                    }
                    Some(Ok(other)) => tracing::info!(?other, "client"),
                }
                if batch.len() >= max {
                    break;
                }
                // Take whatever else is ready, without waiting.
                match items.next().now_or_never() {
                    Some(item) => next = item,
                    None => break,
                }
            }
            self.write_batch(&batch).await?;
            if let Some(result) = stop {
                return result.map(|()| self.written);
            }
        }
    }
}

/// A blocking write task that panicked or was cancelled.
fn blocking_failed(e: tokio::task::JoinError) -> SinkError {
    SinkError::Io {
        what: "the blocking write task failed".into(),
        source: std::io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_proto::examples::one_of_each_kind;

    fn deliveries(from_seq: u64, n: usize) -> Vec<Delivery> {
        one_of_each_kind()
            .into_iter()
            .cycle()
            .take(n)
            .enumerate()
            .map(|(i, mut event)| {
                let seq = from_seq + i as u64;
                event.event_id = format!("e-{seq}");
                Delivery {
                    seq,
                    topic: event.topic(),
                    secondary_topic: None,
                    event,
                }
            })
            .collect()
    }

    fn settings(dir: &std::path::Path) -> SinkSettings {
        SinkSettings {
            files: Some(FileSettings {
                dir: dir.join("out"),
                prefix: "events".into(),
                max_bytes: 4096,
                max_age: None,
            }),
            webhook: None,
            checkpoint: dir.join("checkpoint.json"),
            batch: 8,
            fail_on_gap: false,
        }
    }

    fn output(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir.join("out"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(|l| sapha_proto::Event::from_json(l).unwrap().event_id)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn writes_batches_rotates_and_resumes_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::open(settings(dir.path())).unwrap();
        assert_eq!(sink.position(), None);
        let items =
            futures::stream::iter(deliveries(1, 40).into_iter().map(|d| Ok(Item::Event(d))));
        let written = sink.run(items, std::future::pending()).await.unwrap();
        assert_eq!(written, 40);
        let sink = Sink::open(settings(dir.path())).unwrap();
        assert_eq!(sink.position(), Some(40));
        let items =
            futures::stream::iter(deliveries(41, 5).into_iter().map(|d| Ok(Item::Event(d))));
        sink.run(items, std::future::pending()).await.unwrap();
        let want: Vec<String> = (1..=45).map(|s| format!("e-{s}")).collect();
        assert_eq!(output(dir.path()), want);
        let files = std::fs::read_dir(dir.path().join("out")).unwrap().count();
        assert!(files > 1, "4 KiB files rotate");
    }

    #[tokio::test]
    async fn a_gap_can_stop_the_sink() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.fail_on_gap = true;
        let sink = Sink::open(s).unwrap();
        let mut items: Vec<Result<Item, ClientError>> = deliveries(1, 2)
            .into_iter()
            .map(|d| Ok(Item::Event(d)))
            .collect();
        items.push(Ok(Item::HistoryLost {
            since: 2,
            first_seq: 9,
        }));
        let e = sink
            .run(futures::stream::iter(items), std::future::pending())
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            SinkError::HistoryLost {
                since: 2,
                first_seq: 9
            }
        ));
        // What came before the gap is written and checkpointed.
        assert_eq!(output(dir.path()), ["e-1", "e-2"]);
    }
}
