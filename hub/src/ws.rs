//! One WebSocket connection: a reader that applies requests and a writer that
//! drains the bounded queue, coalescing up to [`WRITE_BATCH`] frames per flush.
//! Both are generic over `Sink`/`Stream`, so the protocol can run over channels.

use crate::hub::{Conn, Hub, Out, Subscribed};
use crate::metrics::DisconnectReason;
use crate::prepared::Prepared;
use crate::protocol::{code, BadRequest, Format, Frame, Id, Request};
use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most queued frames written before one flush.
pub(crate) const WRITE_BATCH: usize = 16;
/// How long the hub tries to deliver its close frame before dropping the socket.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// The request a connection starts with, from the URL (`?topics=...&since=...`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Initial {
    pub(crate) topics: Vec<String>,
    pub(crate) since: Option<u64>,
    pub(crate) epoch: Option<String>,
}

/// Serves one upgraded socket until it ends.
pub(crate) async fn serve<W, R>(
    hub: Arc<Hub>,
    conn: Arc<Conn>,
    rx: mpsc::Receiver<Out>,
    sink: W,
    stream: R,
    initial: Initial,
) where
    W: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    hub.send_frame(&conn, hub.welcome(&conn));
    if !initial.topics.is_empty() {
        apply(
            &hub,
            &conn,
            Request::Subscribe {
                id: Id::none(),
                topics: initial.topics,
                since: initial.since,
                epoch: initial.epoch,
            },
        );
    }
    let writer = tokio::spawn(write_loop(hub.clone(), conn.clone(), rx, sink));
    read_loop(&hub, &conn, stream).await;
    conn.kill(DisconnectReason::Client, &hub.metrics);
    let _ = writer.await;
    hub.unregister(&conn);
}

/// A token bucket for client messages.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Bucket {
        Bucket {
            tokens: f64::from(burst.max(1)),
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn read_loop<R>(hub: &Arc<Hub>, conn: &Arc<Conn>, mut stream: R)
where
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let limits = &hub.config.limits;
    let mut bucket = Bucket::new(limits.messages_per_second, limits.message_burst);
    loop {
        let next = tokio::select! {
            _ = conn.killed() => return,
            next = tokio::time::timeout(limits.idle_timeout(), stream.next()) => next,
        };
        let msg = match next {
            Err(_idle) => {
                conn.kill(DisconnectReason::IdleTimeout, &hub.metrics);
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                // tungstenite reports an oversized message as a capacity error.
                let text = e.to_string();
                let reason = if text.contains("too long") || text.contains("Space limit") {
                    DisconnectReason::TooBig
                } else if text.contains("UTF-8") || text.contains("utf-8") {
                    DisconnectReason::BadUtf8
                } else if text.contains("without closing handshake") || text.contains("IO error") {
                    // The peer went away (reset, EOF) without a close frame:
                    // a disconnect, not a protocol error.
                    DisconnectReason::Dropped
                } else {
                    DisconnectReason::Protocol
                };
                tracing::debug!(conn = conn.id, error = %text, "websocket read error");
                conn.kill(reason, &hub.metrics);
                return;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let parsed = match msg {
            Message::Text(text) => {
                admit(hub, &mut bucket, text.len()).and_then(|()| Request::from_json(text.as_str()))
            }
            Message::Binary(bytes) => {
                admit(hub, &mut bucket, bytes.len()).and_then(|()| Request::from_proto(&bytes))
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return,
        };
        match parsed {
            Ok(request) => apply(hub, conn, request),
            Err(bad) => hub.send_frame(conn, Frame::error(bad.id, bad.code, bad.message)),
        }
    }
}

/// Checks a client message against the rate and size limits.
fn admit(hub: &Hub, bucket: &mut Bucket, len: usize) -> Result<(), BadRequest> {
    let limits = &hub.config.limits;
    if !bucket.take() {
        return Err(BadRequest {
            id: Id::none(),
            code: code::RATE_LIMITED,
            message: format!(
                "more than {} messages per second (burst {}); this message was ignored",
                limits.messages_per_second, limits.message_burst
            ),
        });
    }
    if len > limits.max_frame_bytes {
        return Err(BadRequest {
            id: Id::none(),
            code: code::FRAME_TOO_LARGE,
            message: format!(
                "the message is {len} bytes, the limit is {}; it was ignored",
                limits.max_frame_bytes
            ),
        });
    }
    Ok(())
}

/// Applies one request and queues its answer.
pub(crate) fn apply(hub: &Arc<Hub>, conn: &Arc<Conn>, request: Request) {
    match request {
        Request::Subscribe {
            id,
            topics,
            since,
            epoch,
        } => match hub.subscribe(conn, &id, topics, since) {
            Ok(Subscribed::Ack(frame)) => hub.send_frame(conn, frame),
            Ok(Subscribed::CatchUp { topics, since }) => {
                let (hub, conn) = (hub.clone(), conn.clone());
                tokio::spawn(async move { hub.catch_up(conn, id, topics, since, epoch).await });
            }
            Err(frame) => hub.send_frame(conn, frame),
        },
        Request::Unsubscribe { id, topics } => {
            let frame = hub.unsubscribe(conn, &id, topics).unwrap_or_else(|e| e);
            hub.send_frame(conn, frame);
        }
        Request::Ping { id } => {
            let frame = Frame::Ack {
                id,
                op: "ping",
                topics: Vec::new(),
                subscriptions: conn.subscription_count(),
                since: None,
                recovered: None,
                first_seq: None,
                seq: hub.ack_seq(conn),
                epoch: None,
            };
            hub.send_frame(conn, frame);
        }
    }
}

fn to_message(format: Format, out: Out) -> Message {
    match (format, out) {
        (Format::Proto, Out::Event(p)) => Message::Binary(p.proto().clone()),
        (Format::Proto, Out::Frame(f)) => Message::Binary(f.to_proto()),
        (_, Out::Event(p)) => Message::Text(p.json().clone()),
        (_, Out::Frame(f)) => Message::Text(f.to_json().into()),
    }
}

/// The collected events as one message: an `event` frame, or a `batch` frame
/// for several; `None` when there are none.
fn take_events(format: Format, events: &mut Vec<Arc<Prepared>>) -> Option<Message> {
    let message = match (events.len(), format) {
        (0, _) => return None,
        (1, _) => to_message(format, Out::Event(events.pop().expect("one"))),
        (_, Format::Proto) => Message::Binary(Prepared::batch_proto(events)),
        (_, _) => Message::Text(Prepared::batch_json(events)),
    };
    events.clear();
    Some(message)
}

/// Observes the delivery lag of each event frame in a drained batch: one
/// clock read for the batch, then two relaxed atomic adds per event.
fn observe_lags(lag: &crate::metrics::LagHistogram, batch: &[Out]) {
    let now = std::time::SystemTime::now();
    for out in batch {
        if let Out::Event(p) = out {
            p.observe_lag(lag, now);
        }
    }
}

/// Writes the drained frames and flushes once. On a connection that accepts
/// batches, consecutive events go out as one `batch` frame; control frames
/// keep their place between them.
async fn write_batch<W>(
    sink: &mut W,
    conn: &Conn,
    batch: &mut Vec<Out>,
    events: &mut Vec<Arc<Prepared>>,
) -> Result<(), W::Error>
where
    W: Sink<Message> + Unpin,
{
    for out in batch.drain(..) {
        match out {
            Out::Event(p) if conn.batch => events.push(p),
            other => {
                if let Some(m) = take_events(conn.format, events) {
                    sink.feed(m).await?;
                }
                sink.feed(to_message(conn.format, other)).await?;
            }
        }
    }
    if let Some(m) = take_events(conn.format, events) {
        sink.feed(m).await?;
    }
    sink.flush().await
}

async fn write_loop<W>(hub: Arc<Hub>, conn: Arc<Conn>, mut rx: mpsc::Receiver<Out>, mut sink: W)
where
    W: Sink<Message> + Unpin,
{
    let interval = hub.config.limits.ping_interval();
    let write_delay = hub.config.limits.write_delay();
    let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
    // After a long write, one ping, not one per missed interval.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut events = Vec::new();
    // One kill future for the connection's life: creating one per wake-up would
    // register and unregister a waiter on the token each time. It is polled
    // last: polling it takes the token's lock (a cache miss per connection),
    // and a killed connection's queue stops growing, so at most the frames
    // already queued go out before the close frame. The ping comes first so
    // that a client whose queue never empties is still pinged: its pongs are
    // what keep it from being closed as idle.
    let killed = conn.killed();
    tokio::pin!(killed);
    loop {
        tokio::select! {
            biased;
            _ = ping.tick() => {
                let sent = tokio::select! {
                    r = sink.send(Message::Ping(bytes::Bytes::new())) => r.is_ok(),
                    _ = &mut killed => break,
                };
                if !sent {
                    break;
                }
            }
            first = rx.recv() => {
                let Some(first) = first else { break };
                batch.push(first);
                if !write_delay.is_zero() {
                    // Let the frames that follow join this write.
                    tokio::select! {
                        biased;
                        _ = &mut killed => break,
                        _ = tokio::time::sleep(write_delay) => {}
                    }
                }
                while batch.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(out) => batch.push(out),
                        Err(_) => break,
                    }
                }
                conn.drained();
                observe_lags(&hub.metrics.delivery_lag, &batch);
                let written = tokio::select! {
                    biased;
                    r = write_batch(&mut sink, &conn, &mut batch, &mut events) => r.is_ok(),
                    _ = &mut killed => break,
                };
                if !written {
                    break;
                }
            }
            _ = &mut killed => break,
        }
    }
    if conn.reason().is_none() && hub.shutdown.is_cancelled() {
        conn.kill(DisconnectReason::Shutdown, &hub.metrics);
    }
    conn.kill(DisconnectReason::Client, &hub.metrics);
    if let Some((code, reason)) = conn.reason().and_then(DisconnectReason::close_frame) {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
    } else {
        // The client closed: flush tungstenite's answer to its close frame
        // (the same code, or 1002 for a code RFC 6455 forbids on the wire), so
        // that its close is clean (not 1006), then the TCP connection ends.
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.flush()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::Silent;
    use crate::Config;

    /// A client that reads steadily but never empties its queue is still
    /// pinged: its pongs are what keep it from being closed as idle. (With the
    /// queue polled before the ping, this client got no ping at all.)
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_writer_whose_queue_never_empties_still_pings() {
        let mut config = Config::default();
        config.limits.ping_interval_ms = 20;
        config.limits.queue_frames = 64;
        let hub = Arc::new(Hub::new(config, Box::new(Silent)));
        let (conn, rx) = hub.register(Format::Json, false);
        let (sink, mut client) = futures::channel::mpsc::channel::<Message>(0);
        let writer = tokio::spawn(write_loop(hub.clone(), conn.clone(), rx, sink));
        // Keeps the queue topped up, waiting for room each time.
        let producer = {
            let (hub, conn) = (hub.clone(), conn.clone());
            tokio::spawn(async move {
                for seq in 0..1_000_000 {
                    let frame = Frame::Live {
                        id: Id::none(),
                        seq,
                    };
                    if !hub.send_frame_waiting(&conn, frame).await {
                        return;
                    }
                }
            })
        };
        // The client reads one message per millisecond for 15 ping intervals
        // (of paused time: tokio advances the clock when every task waits).
        let until = Instant::now() + Duration::from_millis(300);
        let (mut pings, mut frames) = (0, 0);
        while Instant::now() < until {
            let next = tokio::time::timeout(Duration::from_secs(5), client.next()).await;
            match next.expect("a message from the busy writer") {
                Some(Message::Ping(_)) => pings += 1,
                Some(_) => frames += 1,
                None => panic!("the writer ended"),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            frames > 20,
            "the queue kept the writer busy ({frames} frames)"
        );
        assert!(
            pings >= 3,
            "pinged while busy: {pings} pings in 15 intervals"
        );
        conn.kill(DisconnectReason::Client, &hub.metrics);
        drop(client);
        producer.await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the writer ends once killed")
            .unwrap();
    }

    /// Frames queued within `write_delay_ms` of the one that woke the writer
    /// go out with it, after the delay; without a delay, at once.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_write_delay_gathers_the_frames_that_follow() {
        for delay_ms in [0, 10] {
            let mut config = Config::default();
            config.limits.write_delay_ms = delay_ms;
            let hub = Arc::new(Hub::new(config, Box::new(Silent)));
            let (conn, rx) = hub.register(Format::Json, true);
            let (sink, mut client) = futures::channel::mpsc::unbounded::<Message>();
            let writer = tokio::spawn(write_loop(hub.clone(), conn.clone(), rx, sink));
            let start = Instant::now();
            let producer = {
                let (hub, conn) = (hub.clone(), conn.clone());
                tokio::spawn(async move {
                    for seq in 0..3 {
                        let frame = Frame::Live {
                            id: Id::none(),
                            seq,
                        };
                        assert!(hub.send_frame_waiting(&conn, frame).await);
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                })
            };
            let mut arrivals = Vec::new();
            for _ in 0..3 {
                let m = tokio::time::timeout(Duration::from_secs(5), client.next()).await;
                assert!(matches!(m, Ok(Some(Message::Text(_)))), "a frame: {m:?}");
                arrivals.push(start.elapsed().as_millis());
            }
            if delay_ms == 0 {
                assert_eq!(arrivals, [0, 3, 6], "written at once");
            } else {
                assert_eq!(arrivals, [10, 10, 10], "gathered into one write");
            }
            producer.await.unwrap();
            conn.kill(DisconnectReason::Client, &hub.metrics);
            writer.await.unwrap();
        }
    }
}
