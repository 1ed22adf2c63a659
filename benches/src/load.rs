//! One measured run: C WebSocket clients (each with one topic filter), a
//! publisher writing timestamped events into JetStream on a schedule, and the
//! accounting: deliveries per second, end-to-end latency, loss and duplicates
//! per client, and the servers' RSS and CPU seconds.
//!
//! The clients are the same for every target except for the protocol: Sapha's
//! `/v1/ws?topics=...&batch=true` (JSON frames, or protobuf frames with the
//! subprotocol `sapha.v1.proto`), or NATS over WebSocket (`CONNECT`, `SUB`
//! for each of the filter's `nats_subjects()`, `PING`/`PONG`, `MSG`).

use crate::nats_proto::{self, Op};
use crate::procfs;
use crate::stats::{self, Percentiles, Tally};
use crate::workload::{now_ns, scan_markers};
use anyhow::Context;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use sapha_proto::{Event, TopicFilter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Connections being opened at once.
const CONNECT_CONCURRENCY: usize = 64;
/// Publishes awaiting JetStream's ack at once.
const PUBLISH_WINDOW: usize = 512;
/// Most time one client may take to connect and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Each client's WebSocket read buffer (tungstenite's default is 128 KiB).
const CLIENT_READ_BUFFER: usize = 16 * 1024;

/// Which server the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `sapha hub`: clients on `/v1/ws`, the hub reading JetStream.
    Hub,
    /// The same hub, its clients taking protobuf frames (`sapha.v1.proto`).
    HubProto,
    /// The baseline: nats-server's own WebSocket listener, NATS protocol.
    Nats,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Hub => "sapha hub",
            Target::HubProto => "sapha hub, protobuf",
            Target::Nats => "nats-server ws",
        }
    }
}

/// Where the clients connect, and which processes to watch.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub target: Target,
    /// The port the clients connect to (the hub's, or nats-server's WebSocket port).
    pub port: u16,
    /// Hub clients ask for `batch` frames.
    pub batch: bool,
    /// The process serving the clients.
    pub server_pid: u32,
    /// nats-server, when it is not the process serving the clients.
    pub nats_pid: Option<u32>,
    /// nats-server's client URL, for the publisher.
    pub nats_url: String,
}

/// When the events are sent.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// This many events per second, evenly spaced; 0 = as fast as acks allow.
    Rate(f64),
    /// Each event at its offset from the start.
    Offsets(Vec<Duration>),
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct Workload {
    /// One filter per client.
    pub filters: Vec<TopicFilter>,
    /// The events, in order; their `source_ref` and `event_id` are rewritten
    /// at send time (marker and send time; a per-run suffix).
    pub events: Vec<Event>,
    pub schedule: Schedule,
    /// How long to wait for deliveries after the last publish.
    pub drain: Duration,
    /// A short id that makes this run's event ids unique in the stream.
    pub run_id: String,
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub target: String,
    pub clients: usize,
    pub connect_failures: usize,
    pub events: u64,
    pub published: u64,
    pub publish_errors: u64,
    pub publish_secs: f64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unknown: u64,
    /// Clients whose connection ended during the run, by reason.
    pub disconnects: HashMap<String, usize>,
    /// Clients that lost at least one event.
    pub clients_with_loss: usize,
    pub deliveries_per_sec: f64,
    pub latency: Percentiles,
    pub server_rss_kib: u64,
    pub server_peak_rss_kib: u64,
    pub server_cpu_secs: f64,
    pub nats_cpu_secs: Option<f64>,
    pub generator_cpu_secs: f64,
    pub wall_secs: f64,
}

impl RunResult {
    /// Delivered every expected event exactly once, to clients that stayed.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.unknown == 0
            && self.connect_failures == 0
            && self.publish_errors == 0
    }

    /// The serving process's CPU time per delivery made, in µs.
    pub fn cpu_us_per_delivery(&self) -> f64 {
        self.server_cpu_secs * 1e6 / self.delivered.max(1) as f64
    }

    /// The same with the hub's JetStream server's CPU time added.
    pub fn cpu_us_per_delivery_with_nats(&self) -> f64 {
        (self.server_cpu_secs + self.nats_cpu_secs.unwrap_or(0.0)) * 1e6
            / self.delivered.max(1) as f64
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target, "clients": self.clients,
            "connect_failures": self.connect_failures, "events": self.events,
            "published": self.published, "publish_errors": self.publish_errors,
            "publish_secs": self.publish_secs, "expected": self.expected,
            "delivered": self.delivered, "lost": self.lost, "duplicates": self.duplicates,
            "unknown": self.unknown, "disconnects": self.disconnects,
            "clients_with_loss": self.clients_with_loss,
            "deliveries_per_sec": self.deliveries_per_sec,
            "p50_ms": self.latency.p50_ms, "p99_ms": self.latency.p99_ms,
            "p999_ms": self.latency.p999_ms, "max_ms": self.latency.max_ms,
            "server_rss_kib": self.server_rss_kib, "server_peak_rss_kib": self.server_peak_rss_kib,
            "server_cpu_secs": self.server_cpu_secs, "nats_cpu_secs": self.nats_cpu_secs,
            "cpu_us_per_delivery": self.cpu_us_per_delivery(),
            "cpu_us_per_delivery_with_nats": self.cpu_us_per_delivery_with_nats(),
            "generator_cpu_secs": self.generator_cpu_secs, "wall_secs": self.wall_secs,
        })
    }

    /// One line for the console.
    pub fn line(&self) -> String {
        format!(
            "{:<15} {:>6} clients  {:>8.0} deliveries/s  p50 {:>7.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  \
             lost {} dup {} disc {:?}  rss {} KiB  cpu {:.2} s{}  gen cpu {:.2} s",
            self.target,
            self.clients,
            self.deliveries_per_sec,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.p999_ms,
            self.lost,
            self.duplicates,
            self.disconnects,
            self.server_rss_kib,
            self.server_cpu_secs,
            self.nats_cpu_secs
                .map(|c| format!(" (+ nats {c:.2} s)"))
                .unwrap_or_default(),
            self.generator_cpu_secs,
        )
    }
}

/// Shared between the clients and the run.
struct Shared {
    ready: AtomicUsize,
    failed: AtomicUsize,
    delivered: AtomicU64,
}

/// The connected clients of a run, reading until told to stop.
pub struct Clients {
    handles: Vec<tokio::task::JoinHandle<Tally>>,
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
    pub opened: usize,
    pub failed: usize,
}

impl Clients {
    /// Opens one client per filter and waits until each has subscribed (or
    /// failed), at most `deadline`.
    pub async fn open(
        endpoint: &Endpoint,
        filters: &[TopicFilter],
        events: u64,
        deadline: Duration,
    ) -> Clients {
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
        });
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let mut handles = Vec::with_capacity(filters.len());
        for filter in filters {
            let (endpoint, filter, shared, gate, stop) = (
                endpoint.clone(),
                filter.clone(),
                shared.clone(),
                gate.clone(),
                stop_rx.clone(),
            );
            handles.push(tokio::spawn(async move {
                client(endpoint, filter, events, shared, gate, stop).await
            }));
        }
        let n = filters.len();
        let end = Instant::now() + deadline;
        while shared.ready.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire) < n
            && Instant::now() < end
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let opened = shared.ready.load(Ordering::Acquire);
        Clients {
            handles,
            stop,
            opened,
            failed: n - opened,
            shared,
        }
    }

    /// Unique deliveries so far, across clients.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Waits until `expected` deliveries arrived or `until` passes. It polls:
    /// waking this task per delivery would cost the generator as much as a
    /// client's own work (times come from the clients, not from here).
    pub async fn wait_for(&self, expected: u64, until: Instant) {
        while self.delivered() < expected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops every client and returns their tallies, in the order opened.
    pub async fn close(self) -> Vec<Tally> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.handles.len());
        for h in self.handles {
            out.push(h.await.unwrap_or_else(|_| {
                let mut t = Tally::new(0);
                t.closed = Some("panicked".into());
                t
            }));
        }
        out
    }
}

async fn client(
    endpoint: Endpoint,
    filter: TopicFilter,
    events: u64,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let mut tally = Tally::new(events);
    let permit = gate.acquire_owned().await.expect("never closed");
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, connect(&endpoint, &filter)).await;
    drop(permit);
    let (mut ws, mut parser) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tally.closed = Some(format!("connect: {e:#}"));
            shared.failed.fetch_add(1, Ordering::AcqRel);
            return tally;
        }
        Err(_) => {
            tally.closed = Some("connect: timed out".into());
            shared.failed.fetch_add(1, Ordering::AcqRel);
            return tally;
        }
    };
    shared.ready.fetch_add(1, Ordering::AcqRel);
    // Events that arrived with the subscription's answer are in the parser.
    let mut pending: Vec<(u64, u64)> = Vec::new();
    // One stop future for the client's life: a new one per message would
    // register and unregister a waiter on the shared channel each time.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    'read: loop {
        let first = tokio::select! {
            biased;
            _ = &mut stopped => break,
            msg = ws.next() => msg,
        };
        let before = tally.unique;
        // Handle every message already buffered before touching the shared
        // counters, so a wake-up costs the same whether it brings one frame or many.
        // Each is timed on its own: a later one may come from a later read.
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match on_message(msg, &mut parser, &mut pending, &mut tally, now_ns()) {
                Step::Read => {}
                Step::Pong => {
                    if ws.send(Message::binary(&b"PONG\r\n"[..])).await.is_err() {
                        tally.closed.get_or_insert_with(|| "write failed".into());
                        break 'read;
                    }
                }
                Step::End => break 'read,
            }
            next = ws.next().now_or_never();
        }
        let new = tally.unique - before;
        if new > 0 {
            shared.delivered.fetch_add(new, Ordering::Relaxed);
        }
    }
    tally
}

/// What a client does after one message.
enum Step {
    Read,
    /// Answer the server's PING (NATS).
    Pong,
    End,
}

/// Records the events in one message (several per frame are handled).
fn on_message(
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    parser: &mut Option<nats_proto::Parser>,
    pending: &mut Vec<(u64, u64)>,
    tally: &mut Tally,
    now: u64,
) -> Step {
    match msg {
        Some(Ok(Message::Text(text))) => {
            scan_markers(text.as_bytes(), |i, ns| tally.record(i, ns, now))
        }
        Some(Ok(Message::Binary(bytes))) => match parser {
            None => scan_markers(&bytes, |i, ns| tally.record(i, ns, now)),
            Some(p) => {
                p.push(&bytes);
                let mut pong = false;
                while let Some(op) = p.next_op() {
                    match op {
                        Op::Msg { payload, .. } => {
                            scan_markers(payload, |i, ns| pending.push((i, ns)))
                        }
                        Op::Ping => pong = true,
                        Op::Err(e) => tally.closed = Some(String::from_utf8_lossy(e).into_owned()),
                        Op::Pong | Op::Ok | Op::Info => {}
                    }
                }
                for (i, ns) in pending.drain(..) {
                    tally.record(i, ns, now);
                }
                if pong {
                    return Step::Pong;
                }
            }
        },
        Some(Ok(Message::Close(frame))) => {
            tally.closed = Some(match frame {
                Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
                None => "close".into(),
            });
            return Step::End;
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            tally.closed.get_or_insert_with(|| format!("error: {e}"));
            return Step::End;
        }
        None => {
            tally.closed.get_or_insert_with(|| "eof".into());
            return Step::End;
        }
    }
    Step::Read
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and subscribes; returns once the subscription is in place (the
/// hub's ack, or the PONG after the SUBs), with the NATS parser for NATS.
async fn connect(
    endpoint: &Endpoint,
    filter: &TopicFilter,
) -> anyhow::Result<(Ws, Option<nats_proto::Parser>)> {
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    match endpoint.target {
        Target::Hub | Target::HubProto => {
            use prost::Message as _;
            use sapha_proto::wire::pb::{hub_frame::Kind, HubFrame};
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let topics = filter.as_str().replace('>', "%3E");
            let mut request = format!(
                "ws://127.0.0.1:{}/v1/ws?topics={topics}&batch={}",
                endpoint.port, endpoint.batch
            )
            .into_client_request()?;
            if endpoint.target == Target::HubProto {
                request.headers_mut().insert(
                    "sec-websocket-protocol",
                    tokio_tungstenite::tungstenite::http::HeaderValue::from_static(
                        "sapha.v1.proto",
                    ),
                );
            }
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                    .await
                    .context("websocket handshake")?;
            while let Some(msg) = ws.next().await {
                match msg? {
                    Message::Text(t) if t.contains(r#""type":"ack""#) => return Ok((ws, None)),
                    Message::Text(t) if t.contains(r#""type":"error""#) => {
                        anyhow::bail!("subscribe refused: {t}")
                    }
                    Message::Binary(b) => match HubFrame::decode(b)?.kind {
                        Some(Kind::Ack(_)) => return Ok((ws, None)),
                        Some(Kind::Error(e)) => anyhow::bail!("subscribe refused: {e:?}"),
                        _ => {}
                    },
                    _ => {}
                }
            }
            anyhow::bail!("closed before the ack")
        }
        Target::Nats => {
            let url = format!("ws://127.0.0.1:{}", endpoint.port);
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .context("websocket handshake")?;
            ws.send(Message::binary(nats_proto::opening(
                &filter.nats_subjects(),
            )))
            .await?;
            let mut parser = nats_proto::Parser::default();
            while let Some(msg) = ws.next().await {
                if let Message::Binary(b) = msg? {
                    parser.push(&b);
                    while let Some(op) = parser.next_op() {
                        match op {
                            Op::Pong => return Ok((ws, Some(parser))),
                            Op::Err(e) => {
                                anyhow::bail!("nats refused: {}", String::from_utf8_lossy(e))
                            }
                            _ => {}
                        }
                    }
                }
            }
            anyhow::bail!("closed before the PONG")
        }
    }
}

/// How many of `events` each distinct filter expects (topic or secondary topic).
pub fn expected_counts(filters: &[TopicFilter], events: &[Event]) -> HashMap<String, u64> {
    let mut by_topic: HashMap<(String, Option<String>), u64> = HashMap::new();
    for e in events {
        *by_topic
            .entry((e.topic(), e.secondary_topic()))
            .or_default() += 1;
    }
    let mut out = HashMap::new();
    for f in filters {
        if out.contains_key(f.as_str()) {
            continue;
        }
        let n = by_topic
            .iter()
            .filter(|((t, s), _)| f.matches(t) || s.as_deref().is_some_and(|s| f.matches(s)))
            .map(|(_, n)| n)
            .sum();
        out.insert(f.as_str().to_owned(), n);
    }
    out
}

/// Publishes the workload's events on schedule; returns (published, errors, seconds).
pub async fn publish(nats_url: &str, w: &Workload) -> anyhow::Result<(u64, u64, f64)> {
    use async_nats::jetstream;
    let client = async_nats::connect(nats_url)
        .await
        .context("publisher connect")?;
    let js = jetstream::new(client);
    let start = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let (mut ok, mut errors) = (0u64, 0u64);
    for (i, template) in w.events.iter().enumerate() {
        let due = match &w.schedule {
            Schedule::Rate(r) if *r > 0.0 => Some(start + Duration::from_secs_f64(i as f64 / r)),
            Schedule::Rate(_) => None,
            Schedule::Offsets(o) => o.get(i).map(|d| start + *d),
        };
        if let Some(due) = due {
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        while inflight.len() >= PUBLISH_WINDOW {
            match inflight.next().await {
                Some(Ok(_)) => ok += 1,
                _ => errors += 1,
            }
        }
        let mut e = template.clone();
        e.event_id = format!("{}-{}", e.event_id, w.run_id);
        e.source_ref = Some(format!("bench:{i}:{}", now_ns()));
        let msg = jetstream::message::PublishMessage::build()
            .message_id(&e.event_id)
            .payload(e.encode_proto().into());
        match js.send_publish(e.subject(), msg).await {
            Ok(ack) => inflight.push(std::future::IntoFuture::into_future(ack)),
            Err(_) => errors += 1,
        }
    }
    while let Some(r) = inflight.next().await {
        match r {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
    }
    Ok((ok, errors, start.elapsed().as_secs_f64()))
}

/// Makes sure the stream exists (the hub waits for it; the baseline's clients
/// only need the subjects, but both targets store every event the same way).
pub async fn ensure_stream(nats_url: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(nats_url).await.context("connect")?;
    let js = async_nats::jetstream::new(client);
    sapha_publisher::jetstream::ensure_stream(
        &js,
        &sapha_publisher::jetstream::StreamSettings::default(),
    )
    .await
    .context("creating the stream")?;
    Ok(())
}

/// One measured run against `endpoint`.
pub async fn run(endpoint: &Endpoint, w: &Workload) -> anyhow::Result<RunResult> {
    let n_events = w.events.len() as u64;
    let expected_by = expected_counts(&w.filters, &w.events);
    let expected: Vec<u64> = w.filters.iter().map(|f| expected_by[f.as_str()]).collect();
    let expected_total: u64 = expected.iter().sum();
    let connect_deadline = Duration::from_secs(60 + w.filters.len() as u64 / 100);
    let clients = Clients::open(endpoint, &w.filters, n_events, connect_deadline).await;
    // Let the connection burst settle before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let me = std::process::id();
    let cpu0 = procfs::cpu_seconds(endpoint.server_pid);
    let nats0 = endpoint.nats_pid.map(procfs::cpu_seconds);
    let gen0 = procfs::cpu_seconds(me);
    let wall = Instant::now();
    let first_ns = now_ns();
    let (published, publish_errors, publish_secs) = publish(&endpoint.nats_url, w).await?;
    clients
        .wait_for(expected_total, Instant::now() + w.drain)
        .await;
    let server_cpu_secs = procfs::cpu_seconds(endpoint.server_pid) - cpu0;
    let nats_cpu_secs = endpoint
        .nats_pid
        .zip(nats0)
        .map(|(pid, c0)| procfs::cpu_seconds(pid) - c0);
    let generator_cpu_secs = procfs::cpu_seconds(me) - gen0;
    let wall_secs = wall.elapsed().as_secs_f64();
    let server_rss_kib = procfs::rss_kib(endpoint.server_pid);
    let server_peak_rss_kib = procfs::peak_rss_kib(endpoint.server_pid);
    let connect_failures = clients.failed;
    let tallies = clients.close().await;

    let mut h = stats::histogram();
    let mut r = RunResult {
        target: endpoint.target.name().into(),
        clients: w.filters.len(),
        connect_failures,
        events: n_events,
        published,
        publish_errors,
        publish_secs,
        expected: expected_total,
        server_rss_kib,
        server_peak_rss_kib,
        server_cpu_secs,
        nats_cpu_secs,
        generator_cpu_secs,
        wall_secs,
        ..Default::default()
    };
    let mut last_ns = first_ns;
    for (t, exp) in tallies.iter().zip(&expected) {
        r.delivered += t.unique;
        r.duplicates += t.duplicates;
        r.unknown += t.unknown;
        let lost = t.lost(*exp);
        r.lost += lost;
        r.clients_with_loss += usize::from(lost > 0);
        last_ns = last_ns.max(t.last_ns);
        if let Some(reason) = &t.closed {
            let key: String = reason.chars().take(40).collect();
            *r.disconnects.entry(key).or_default() += 1;
        }
        stats::add_latencies(&mut h, &t.latencies_us);
    }
    let secs = (last_ns - first_ns) as f64 / 1e9;
    r.deliveries_per_sec = if secs > 0.0 {
        r.delivered as f64 / secs
    } else {
        0.0
    };
    r.latency = Percentiles::of(&h);
    Ok(r)
}
