//! Events and helpers that the end-to-end tests share.

use async_nats::jetstream;
use futures::StreamExt;
use sapha_proto::event::*;
use sapha_proto::stage::{BillType, Stage};
use sapha_proto::Event;
use std::io::Write;
use std::time::Duration;

/// A bill stage change, seq `seq`, moving `from` -> `to`.
pub fn bill_event(bill_id: &str, seq: u64, from: Option<Stage>, to: Stage) -> Event {
    Event {
        schema_version: SCHEMA_VERSION,
        event_id: format!("e-{bill_id}-{seq}"),
        aggregate_id: bill_id.into(),
        seq,
        occurred_at: chrono::DateTime::from_timestamp(1_677_542_400 + seq as i64 * 86_400, 0)
            .expect("a valid time"),
        precision: DatePrecision::Day,
        recorded_at: None,
        source: "test".into(),
        source_ref: None,
        supersedes: None,
        body: Body::BillStageChanged(BillStageChanged {
            bill_id: bill_id.into(),
            bill_type: BillType::Act,
            title: Text::new("ร่างพระราชบัญญัติทดสอบ พ.ศ. ....", "Draft Test Act B.E. ...."),
            from_stage: from,
            to_stage: to,
            note: None,
            merged_into: None,
            deemed: false,
            deadline: None,
            money_bill: false,
            proposer: None,
            recommended_by: None,
            returned_on: None,
        }),
    }
}

/// A legal act history along `path`, seqs 1..=path.len().
pub fn bill_history(bill_id: &str, path: &[Stage]) -> Vec<Event> {
    let mut from = None;
    path.iter()
        .enumerate()
        .map(|(i, &to)| {
            let e = bill_event(bill_id, i as u64 + 1, from, to);
            from = Some(to);
            e
        })
        .collect()
}

/// `bills` act histories of `stages` stages each, interleaved as a feed would be.
pub fn interleaved_bills(bills: usize, stages: usize) -> Vec<Event> {
    let path = sapha_proto::stage::rules_for(BillType::Act).main_path;
    let histories: Vec<Vec<Event>> = (0..bills)
        .map(|b| bill_history(&format!("b-2566-{b:04}"), &path[..stages.min(path.len())]))
        .collect();
    let mut out = Vec::new();
    for i in 0..stages {
        for h in &histories {
            if let Some(e) = h.get(i) {
                out.push(e.clone());
            }
        }
    }
    out
}

/// Writes events as an NDJSON temp file.
pub fn ndjson_file(events: &[Event]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for e in events {
        writeln!(file, "{}", e.to_json()).expect("write");
    }
    file.flush().expect("flush");
    file
}

/// One stored message, as read back from JetStream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub stream_seq: u64,
    pub subject: String,
    pub event: Event,
    pub msg_id: Option<String>,
}

/// Retries a JetStream call for up to 30 s: right after a cluster node dies,
/// the API may answer "temporarily unavailable" until new leaders are elected.
async fn retrying<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut call: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("{what}: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Reads every message of `stream` in order.
pub async fn read_stream(url: &str, stream: &str) -> Vec<Stored> {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    // get_stream fetches the stream's info, so its cached count is current.
    let stream = retrying("stream exists", || js.get_stream(stream)).await;
    let total = stream.cached_info().state.messages as usize;
    let consumer = retrying("consumer", || {
        stream.create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
    })
    .await;
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let mut batch = consumer
            .fetch()
            .max_messages((total - out.len()).min(500))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .expect("fetch");
        let before = out.len();
        while let Some(m) = batch.next().await {
            let m = m.expect("message");
            out.push(Stored {
                stream_seq: m.info().expect("info").stream_sequence,
                subject: m.subject.to_string(),
                event: Event::decode_proto(&m.payload).expect("a stored event decodes"),
                msg_id: m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.to_string()),
            });
        }
        assert!(out.len() > before, "reading the stream stalled");
    }
    out
}

/// The number of messages in `stream`.
pub async fn stream_len(url: &str, stream: &str) -> u64 {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("stream exists");
    stream.info().await.expect("info").state.messages
}

/// The stream settings tests use: Sapha's defaults, but a 256 MiB size limit, so
/// JetStream's storage reservation fits a small disk (three times over in a
/// cluster), and a 2 s ack timeout, so a dead server is noticed quickly.
pub fn stream_settings() -> sapha_publisher::jetstream::StreamSettings {
    sapha_publisher::jetstream::StreamSettings {
        max_bytes: 256 * 1024 * 1024,
        ack_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// The follow store on `url` (its default bucket, one replica), as the
/// notifier and the hub open it.
pub async fn follow_store(url: &str) -> sapha_follows::FollowStore {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    sapha_follows::FollowStore::open(
        &async_nats::jetstream::new(client),
        sapha_follows::DEFAULT_BUCKET,
        1,
    )
    .await
    .expect("open the follow store")
}
