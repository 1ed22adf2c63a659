//! The connection task: connect, subscribe, read, and on any loss back off and
//! do it again on the next hub, resuming after the last delivered sequence.

use super::dedupe::{Dedupe, Verdict};
use super::frame::HubFrame;
use super::{ClientError, Config, Delivery, Item, Start};
use futures::{SinkExt, StreamExt};
use sapha_proto::Event;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The id of the one request a session sends.
const REQUEST_ID: &str = "sapha-client";
/// Read timeout when the hub announced no ping interval.
const FALLBACK_READ_TIMEOUT: Duration = Duration::from_secs(60);

type Tx = mpsc::Sender<Result<Item, ClientError>>;

/// How one session ended.
enum End {
    /// The consumer dropped the stream: stop.
    ConsumerGone,
    /// A reason to stop for good.
    Fatal(ClientError),
    /// The connection is gone; `established` if it had been subscribed.
    Lost { reason: String, established: bool },
}

/// Runs sessions until the consumer goes away or a fatal error.
pub(super) async fn run(config: Arc<Config>, tx: Tx) {
    let position = match config.start {
        Start::After(seq) => Some(seq),
        Start::Live | Start::Beginning => None,
    };
    let mut dedupe = Dedupe::new(config.dedupe_ids, position);
    if position.is_some() {
        dedupe.epoch = config.resume_epoch.clone();
    }
    let mut failures: u32 = 0;
    let mut next_url = 0usize;
    loop {
        let url = &config.urls[next_url % config.urls.len()];
        let end = session(&config, url, &mut dedupe, &tx).await;
        let (reason, established) = match end {
            End::ConsumerGone => return,
            End::Fatal(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            End::Lost {
                reason,
                established,
            } => (reason, established),
        };
        tracing::info!(%url, %reason, "hub connection lost; reconnecting");
        if established {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let lost = Item::Disconnected {
            url: url.clone(),
            reason: reason.clone(),
        };
        if tx.send(Ok(lost)).await.is_err() {
            return;
        }
        if config.max_attempts.is_some_and(|max| failures > max) {
            let _ = tx
                .send(Err(ClientError::GaveUp {
                    attempts: failures,
                    last: reason,
                }))
                .await;
            return;
        }
        next_url = next_url.wrapping_add(1);
        tokio::select! {
            _ = tokio::time::sleep(config.backoff.delay(failures)) => {}
            _ = tx.closed() => return,
        }
    }
}

/// The URL with `batch=true`: this client reads `batch` frames, so it asks for
/// them, unless the URL already says (a repeated parameter is a 400).
fn with_batch(url: &str) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let query = base.split_once('?').map(|(_, q)| q);
    if query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "batch" || kv.starts_with("batch="))
    }) {
        return url.to_owned();
    }
    let separator = if query.is_some() { '&' } else { '?' };
    match fragment {
        Some(f) => format!("{base}{separator}batch=true#{f}"),
        None => format!("{base}{separator}batch=true"),
    }
}

fn lost(reason: impl Into<String>, established: bool) -> End {
    End::Lost {
        reason: reason.into(),
        established,
    }
}

/// One connection: handshake, welcome, subscribe, then frames until it ends.
async fn session(config: &Config, url: &str, dedupe: &mut Dedupe, tx: &Tx) -> End {
    let connect = tokio_tungstenite::connect_async(with_batch(url));
    let mut ws = match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return lost(format!("connect: {e}"), false),
        Err(_) => return lost("connect: timed out", false),
    };

    // The welcome frame comes first.
    let mut read_timeout = config.read_timeout.unwrap_or(FALLBACK_READ_TIMEOUT);
    let (session_id, stream_epoch) = loop {
        let msg = match tokio::time::timeout(config.connect_timeout, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return lost(format!("reading welcome: {e}"), false),
            Ok(None) => return lost("closed before welcome", false),
            Err(_) => return lost("no welcome in time", false),
        };
        let Message::Text(text) = msg else { continue };
        match HubFrame::parse(text.as_str()) {
            Ok(HubFrame::Welcome {
                session,
                limits,
                epoch,
            }) => {
                if config.read_timeout.is_none() {
                    if let Some(ping) = limits.map(|l| l.ping_interval_ms).filter(|p| *p > 0) {
                        read_timeout = Duration::from_millis(ping * 2 + 1_000);
                    }
                }
                break (session, epoch);
            }
            Ok(_) => continue,
            Err(e) => return lost(format!("unreadable frame: {e}"), false),
        }
    };

    // Subscribe, resuming after the last delivered sequence.
    let fresh_from_start = dedupe.position.is_none() && config.start == Start::Beginning;
    let since = dedupe.position.or(fresh_from_start.then_some(0));
    let mut request = json!({"op": "subscribe", "id": REQUEST_ID, "topics": config.topics});
    if let Some(since) = since {
        request["since"] = json!(since);
        if let Some(epoch) = &dedupe.epoch {
            request["epoch"] = json!(epoch);
        }
    }
    // From here on the position is one of this stream (a resume that is not
    // recovered says so below, and starts again within it).
    if !stream_epoch.is_empty() {
        dedupe.epoch = Some(stream_epoch.clone());
    }
    if let Err(e) = ws.send(Message::Text(request.to_string().into())).await {
        return lost(format!("sending subscribe: {e}"), false);
    }

    let mut established = false;
    loop {
        let msg = match tokio::time::timeout(read_timeout, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return lost(format!("read: {e}"), established),
            Ok(None) => return lost("connection closed", established),
            Err(_) => return lost("no traffic within the read timeout", established),
        };
        let text = match msg {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let reason = match frame {
                    Some(f) => format!("closed by the hub: {} {}", u16::from(f.code), f.reason),
                    None => "closed by the hub".to_owned(),
                };
                return lost(reason, established);
            }
            // Pings are answered by tungstenite; binary frames are not ours.
            _ => continue,
        };
        let frame = match HubFrame::parse(text.as_str()) {
            Ok(f) => f,
            Err(e) => return lost(format!("unreadable frame: {e}"), established),
        };
        // A batch frame carries several event frames, handled one by one.
        let frames = match frame {
            HubFrame::Batch { events } => events,
            one => vec![one],
        };
        for frame in frames {
            match frame {
                HubFrame::Ack {
                    id,
                    op,
                    recovered,
                    first_seq,
                    seq,
                } if op == "subscribe" && id == REQUEST_ID => {
                    established = true;
                    if since.is_none() && dedupe.position.is_none() {
                        // Live start: everything after the hub's position at this ack is ours.
                        dedupe.position = Some(seq);
                    }
                    let connected = Item::Connected {
                        url: url.to_owned(),
                        session: session_id.clone(),
                        resumed_after: since,
                        epoch: stream_epoch.clone(),
                    };
                    if tx.send(Ok(connected)).await.is_err() {
                        return End::ConsumerGone;
                    }
                    if recovered == Some(false) {
                        let first_seq = first_seq.unwrap_or(0);
                        let since = since.unwrap_or(0);
                        if fresh_from_start {
                            tracing::debug!(first_seq, "the stream's oldest events are gone");
                        } else if first_seq <= since {
                            // The position is not in this stream (recreated, or
                            // restored with fewer events): start again from its
                            // first event; the id window still drops events
                            // delivered recently.
                            tracing::warn!(
                                since,
                                first_seq,
                                "the stream does not reach our position: starting again from its first event"
                            );
                            dedupe.position = Some(first_seq.saturating_sub(1));
                            let reset = Item::StreamReset { since, first_seq };
                            if tx.send(Ok(reset)).await.is_err() {
                                return End::ConsumerGone;
                            }
                        } else {
                            tracing::warn!(
                                since,
                                first_seq,
                                "history lost: the hub no longer holds it"
                            );
                            let gap = Item::HistoryLost { since, first_seq };
                            if tx.send(Ok(gap)).await.is_err() {
                                return End::ConsumerGone;
                            }
                        }
                    }
                }
                HubFrame::Event {
                    seq,
                    topic,
                    secondary_topic,
                    event,
                } => {
                    let event = match Event::from_value(event) {
                        Ok(e) => e,
                        Err(e) => {
                            // A kind this client does not know: skip it, but keep the position.
                            tracing::warn!(seq, %topic, error = %e, "skipping an unreadable event");
                            dedupe.position = dedupe.position.max(Some(seq));
                            continue;
                        }
                    };
                    match dedupe.check(seq, &event.event_id) {
                        Verdict::New => {}
                        verdict => {
                            tracing::debug!(seq, id = %event.event_id, ?verdict, "dropping a duplicate");
                            continue;
                        }
                    }
                    let d = Delivery {
                        seq,
                        topic,
                        secondary_topic,
                        event,
                    };
                    if tx.send(Ok(Item::Event(d))).await.is_err() {
                        return End::ConsumerGone;
                    }
                }
                HubFrame::Error { id, code, message } if id == REQUEST_ID => {
                    return End::Fatal(ClientError::Rejected { code, message });
                }
                HubFrame::Error { code, message, .. } => {
                    return lost(format!("hub error {code}: {message}"), established);
                }
                HubFrame::Welcome { .. }
                | HubFrame::Ack { .. }
                | HubFrame::Live {}
                | HubFrame::Batch { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_batch;

    #[test]
    fn batch_is_asked_for_once() {
        assert_eq!(with_batch("ws://h:1/v1/ws"), "ws://h:1/v1/ws?batch=true");
        assert_eq!(
            with_batch("ws://h:1/v1/ws?token=t"),
            "ws://h:1/v1/ws?token=t&batch=true"
        );
        assert_eq!(
            with_batch("ws://h:1/v1/ws?batch=false"),
            "ws://h:1/v1/ws?batch=false"
        );
        assert_eq!(
            with_batch("ws://h:1/v1/ws#x"),
            "ws://h:1/v1/ws?batch=true#x"
        );
    }
}
