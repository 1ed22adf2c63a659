//! Server-sent events: `/v1/sse?topics=...`, one `id:` per stream sequence, and
//! resume from `Last-Event-ID` (or `?since=`). Same queue, same shared bytes as
//! the WebSocket path; the body stream is the writer.

use crate::auth::Grant;
use crate::hub::{Conn, Hub, Out, Subscribed};
use crate::metrics::DisconnectReason;
use crate::protocol::{Format, Frame, Id};
use crate::server::Permit;
use bytes::Bytes;
use futures::Stream;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};

/// Unregisters the connection when the body is dropped (the client went away).
struct Guard {
    hub: Arc<Hub>,
    conn: Arc<Conn>,
    _permit: Permit,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.conn.kill(DisconnectReason::Client, &self.hub.metrics);
        self.hub.unregister(&self.conn);
    }
}

struct State {
    guard: Guard,
    rx: mpsc::Receiver<Out>,
    ping: Interval,
    done: bool,
}

/// Subscribes a new SSE connection; on a bad request, the error frame.
pub(crate) fn open(
    hub: Arc<Hub>,
    permit: Permit,
    grant: Grant,
    topics: Vec<String>,
    since: Option<u64>,
    epoch: Option<String>,
) -> Result<impl Stream<Item = Result<Bytes, std::convert::Infallible>>, Frame> {
    let (conn, rx) = hub.register(Format::Sse, false);
    conn.set_grant(grant);
    let guard = Guard {
        hub: hub.clone(),
        conn: conn.clone(),
        _permit: permit,
    };
    hub.send_frame(&conn, hub.welcome(&conn));
    match hub.subscribe(&conn, &Id::none(), topics, since)? {
        Subscribed::Ack(frame) => hub.send_frame(&conn, frame),
        Subscribed::CatchUp { topics, since } => {
            let hub = hub.clone();
            tokio::spawn(async move { hub.catch_up(conn, Id::none(), topics, since, epoch).await });
        }
    }
    let interval = guard.hub.config.limits.ping_interval();
    let state = State {
        rx,
        ping: tokio::time::interval_at(Instant::now() + interval, interval),
        guard,
        done: false,
    };
    // The first chunk tells EventSource how soon to reconnect.
    let head = futures::stream::once(async { Ok(Bytes::from_static(b"retry: 2000\n\n")) });
    let body = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let chunk = tokio::select! {
            biased;
            _ = st.guard.conn.killed() => {
                st.done = true;
                let reason = st.guard.conn.reason().unwrap_or(DisconnectReason::Shutdown);
                let code = reason.close_frame().map(|(c, _)| c).unwrap_or(1000);
                Bytes::from(format!(
                    "event: close\ndata: {{\"code\":{code},\"reason\":\"{}\"}}\n\n",
                    reason.label()
                ))
            }
            _ = st.ping.tick() => Bytes::from_static(b": ping\n\n"),
            out = st.rx.recv() => {
                st.guard.conn.drained();
                match out {
                    None => return None,
                    Some(Out::Event(p)) => {
                        p.observe_lag(&st.guard.hub.metrics.delivery_lag, std::time::SystemTime::now());
                        p.sse().clone()
                    }
                    Some(Out::Frame(f)) => f.to_sse(),
                }
            }
        };
        Some((Ok(chunk), st))
    });
    use futures::StreamExt;
    Ok(head.chain(body))
}
