//! Shared by the `hub_*` tests: a hub running on port 0 against a real
//! nats-server, a JetStream publisher that writes what the real publisher
//! writes, event builders, and small WebSocket / SSE clients.
#![allow(dead_code)]

use async_nats::jetstream;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use sapha_hub::Config;
use sapha_proto::event::{Body, Chamber, SittingRef, Text};
use sapha_proto::wire::pb;
use sapha_proto::Event;
use sapha_tests::NatsServer;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one thing.
pub const WAIT: Duration = Duration::from_secs(8);

/// How long a hub may take to stop: its drain (3 s here), then the state
/// snapshot it writes at shutdown, which waits up to 10 s for NATS (longer
/// than `WAIT` while a cluster re-elects the object store's leader), and margin.
const STOP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- the hub

/// A hub on a random port; shut down on drop.
pub struct TestHub {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The config tests start from: quick backoff, quick pings.
pub fn test_config(nats: &NatsServer) -> Config {
    let mut config = Config::default();
    config.nats.url = nats.url();
    config.nats.max_backoff_ms = 200;
    config.shutdown.drain_timeout_ms = 3_000;
    config
}

impl TestHub {
    pub async fn start(config: Config) -> TestHub {
        let hub = Self::start_unready(config).await;
        hub.wait_ready().await;
        hub
    }

    /// Starts the hub without waiting for `/readyz` (e.g. before the stream exists).
    pub async fn start_unready(config: Config) -> TestHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(config, listener).await
    }

    /// Starts the hub on `listener` (a fixed address a client already knows)
    /// and waits until it is ready.
    pub async fn start_at(config: Config, addr: std::net::SocketAddr) -> TestHub {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let hub = Self::start_on(config, listener).await;
        hub.wait_ready().await;
        hub
    }

    async fn start_on(config: Config, listener: tokio::net::TcpListener) -> TestHub {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            sapha_hub::run_with_nats(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("the hub runs");
        });
        TestHub {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn wait_ready(&self) {
        let ok = sapha_tests::wait_http_ok(&self.http("/readyz"), WAIT).await;
        assert!(ok, "the hub did not become ready");
    }

    /// The value of one metric line (exact name with labels).
    pub async fn metric(&self, name: &str) -> Option<u64> {
        let text = reqwest::get(self.http("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Waits until a metric reaches at least `value`.
    pub async fn wait_metric(&self, name: &str, value: u64) -> bool {
        sapha_tests::wait_until(WAIT, || async move {
            self.metric(name).await.unwrap_or(0) >= value
        })
        .await
    }

    /// Stops the hub and waits for `run` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(STOP, task)
                .await
                .expect("the hub stops within its bound (drain, then the last snapshot)")
                .unwrap();
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ---------------------------------------------------------------- publishing

/// Writes events as the publisher does: protobuf `Envelope` payloads on the
/// event's subject, `Nats-Msg-Id` = event id.
pub struct Publisher {
    pub js: jetstream::Context,
}

impl Publisher {
    /// Connects and creates the `PARL` stream.
    pub async fn new(nats: &NatsServer) -> Publisher {
        Self::with_stream(nats, jetstream::stream::Config::default()).await
    }

    /// Connects and creates the stream with `config` (name and subjects are set here).
    pub async fn with_stream(nats: &NatsServer, config: jetstream::stream::Config) -> Publisher {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .reconnect_delay_callback(|_| Duration::from_millis(100))
            .connect(nats.url())
            .await
            .unwrap();
        let js = jetstream::new(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: "PARL".into(),
            subjects: vec!["parl.v1.>".into()],
            ..config
        })
        .await
        .unwrap();
        Publisher { js }
    }

    /// Publishes one event and returns its stream sequence.
    pub async fn publish(&self, event: &Event) -> u64 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        let ack = self
            .js
            .publish_with_headers(event.subject(), headers, event.encode_proto().into())
            .await
            .expect("publish")
            .await
            .expect("ack");
        ack.sequence
    }

    /// Publishes, retrying while NATS is away (bounded by [`WAIT`]).
    pub async fn publish_retrying(&self, event: &Event) -> u64 {
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.event_id.as_str());
            let attempt = async {
                self.js
                    .publish_with_headers(event.subject(), headers, event.encode_proto().into())
                    .await
                    .ok()?
                    .await
                    .ok()
            };
            if let Ok(Some(ack)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                return ack.sequence;
            }
            assert!(tokio::time::Instant::now() < deadline, "could not publish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------- events

static NEXT: AtomicU64 = AtomicU64::new(1);

fn unique() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn template(pick: impl Fn(&Body) -> bool) -> Event {
    sapha_proto::examples::one_of_each_kind()
        .into_iter()
        .find(|e| pick(&e.body))
        .expect("an example of the kind")
}

/// A stage change of `bill` (topic `bill.<bill>.stage`).
pub fn bill_stage(bill: &str) -> Event {
    let mut e = template(|b| matches!(b, Body::BillStageChanged(_)));
    let n = unique();
    if let Body::BillStageChanged(b) = &mut e.body {
        b.bill_id = bill.into();
    }
    e.aggregate_id = bill.into();
    e.seq = n;
    e.event_id = format!("e-{bill}-{n}");
    e
}

/// A stage change with a large note, to fill buffers quickly.
pub fn big_bill_stage(bill: &str) -> Event {
    let mut e = bill_stage(bill);
    if let Body::BillStageChanged(b) = &mut e.body {
        b.note = Some(Text::new("ก".repeat(2000), "x".repeat(2000)));
    }
    e
}

fn sitting(chamber: Chamber, id: &str) -> SittingRef {
    SittingRef {
        chamber,
        sitting_id: id.into(),
    }
}

/// A lifecycle event of a sitting (topic `sitting.<chamber>.<id>.lifecycle`).
pub fn sitting_event(chamber: Chamber, id: &str) -> Event {
    let mut e = template(|b| matches!(b, Body::SittingLifecycle(_)));
    let n = unique();
    if let Body::SittingLifecycle(b) = &mut e.body {
        b.sitting = sitting(chamber, id);
    }
    e.aggregate_id = id.into();
    e.seq = n;
    e.event_id = format!("e-{id}-{n}");
    e
}

/// A vote result on `bill` in a sitting: topic `sitting.<chamber>.<id>.vote`,
/// secondary topic `bill.<bill>.vote`.
pub fn bill_vote(chamber: Chamber, id: &str, bill: &str) -> Event {
    let mut e = template(|b| matches!(b, Body::VoteResult(_)));
    let n = unique();
    if let Body::VoteResult(b) = &mut e.body {
        b.sitting = sitting(chamber, id);
        b.bill_id = Some(bill.into());
    }
    e.aggregate_id = id.into();
    e.seq = n;
    e.event_id = format!("e-{id}-vote-{n}");
    e
}

// ---------------------------------------------------------------- clients

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket test client.
pub struct Client {
    pub ws: Ws,
}

/// One event frame, in either format.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub seq: u64,
    pub topic: String,
    pub event: Event,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        Self::connect_with(url, None).await
    }

    pub async fn connect_with(url: &str, protocol: Option<&str>) -> Client {
        let mut request = url.into_client_request().unwrap();
        if let Some(p) = protocol {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        let (ws, _response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("websocket handshake");
        Client { ws }
    }

    /// The next data or close message (pings and pongs are skipped); `None` at the end.
    pub async fn next_message(&mut self) -> Option<Message> {
        self.next_message_within(WAIT).await
    }

    /// Like [`Client::next_message`], waiting up to `patience` for each message.
    pub async fn next_message_within(&mut self, patience: Duration) -> Option<Message> {
        loop {
            let msg = tokio::time::timeout(patience, self.ws.next())
                .await
                .expect("a message in time")?;
            match msg {
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => continue,
                Ok(m) => return Some(m),
                Err(_) => return None,
            }
        }
    }

    /// The next JSON frame.
    pub async fn json(&mut self) -> Value {
        match self.next_message().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected a json frame, got {other:?}"),
        }
    }

    /// The next protobuf frame.
    pub async fn proto(&mut self) -> pb::hub_frame::Kind {
        match self.next_message().await {
            Some(Message::Binary(b)) => pb::HubFrame::decode(b).unwrap().kind.unwrap(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// Reads the welcome frame.
    pub async fn welcome(&mut self) -> Value {
        let w = self.json().await;
        assert_eq!(w["type"], "welcome", "{w}");
        w
    }

    /// Subscribes and returns the ack (the frame for this request id).
    pub async fn subscribe(&mut self, id: &str, topics: &[&str]) -> Value {
        self.send(json!({"op": "subscribe", "id": id, "topics": topics}))
            .await;
        let ack = self.json().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["id"], id);
        ack
    }

    /// Collects `n` JSON event frames, failing on any error frame. Other frames
    /// (acks, live) are skipped.
    pub async fn events(&mut self, n: usize) -> Vec<Delivered> {
        let mut out = Vec::new();
        while out.len() < n {
            let f = self.json().await;
            match f["type"].as_str() {
                Some("event") => out.push(delivered_json(&f)),
                Some("error") => panic!("error frame: {f}"),
                _ => {}
            }
        }
        out
    }

    /// Waits for the close frame and returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no close frame in time"
            );
            match self.next_message().await {
                Some(Message::Close(Some(f))) => return Some(u16::from(f.code)),
                Some(Message::Close(None)) | None => return None,
                Some(_) => continue,
            }
        }
    }
}

pub fn delivered_json(f: &Value) -> Delivered {
    Delivered {
        seq: f["seq"].as_u64().unwrap(),
        topic: f["topic"].as_str().unwrap().to_owned(),
        event: Event::from_value(f["event"].clone()).unwrap(),
    }
}

pub fn delivered_proto(d: pb::Delivery) -> Delivered {
    Delivered {
        seq: d.seq,
        topic: d.topic,
        event: Event::try_from(d.event.unwrap()).unwrap(),
    }
}

pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// The event ids of a list of deliveries.
pub fn ids(d: &[Delivered]) -> Vec<String> {
    d.iter().map(|d| d.event.event_id.clone()).collect()
}

/// The (stream sequence, event id) of each delivery, to compare with what was published.
pub fn seq_ids(d: &[Delivered]) -> Vec<(u64, String)> {
    d.iter()
        .map(|d| (d.seq, d.event.event_id.clone()))
        .collect()
}

/// Asserts strictly increasing stream sequences.
pub fn assert_increasing(d: &[Delivered]) {
    for w in d.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "sequences go back: {} then {}",
            w[0].seq,
            w[1].seq
        );
    }
}

// ---------------------------------------------------------------- SSE

/// One parsed SSE message.
#[derive(Debug, Default, Clone)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads SSE messages from a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Opens `url`; the response must be a 200 event stream.
    pub async fn open(url: &str, headers: &[(&str, String)]) -> SseReader {
        let mut req = reqwest::Client::new().get(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next message with data (comments and `retry:` are skipped).
    pub async fn next(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut msg = SseMessage::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        msg.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        msg.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        msg.data.push_str(v);
                    }
                }
                if !msg.data.is_empty() {
                    return msg;
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("sse data in time")
                .unwrap()
                .expect("the stream goes on");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The event ids of the next `n` events.
    pub async fn event_ids(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let m = self.next().await;
            if m.event.as_deref() == Some("event") {
                let v: serde_json::Value = serde_json::from_str(&m.data).unwrap();
                out.push(v["event"]["event_id"].as_str().unwrap().to_owned());
            }
        }
        out
    }
}
