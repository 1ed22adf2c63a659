//! The one consumer per process: reads the source from the hub's last sequence
//! on, decodes each event once and hands it to the fan-out. When the source
//! breaks (NATS lost, consumer deleted) it reopens from the next sequence it
//! needs, so clients see neither a gap nor a duplicate. Each time it opens, it
//! checks the stream's epoch: one it did not know (the hub started before the
//! stream existed) is learnt; another one (the stream was recreated under the
//! hub; the readiness probe also notices it) makes the hub forget the old
//! stream and start over, as at start-up.

use crate::hub::{EpochCheck, Hub};
use crate::prepared::Prepared;
use futures::StreamExt;
use sapha_proto::backoff::Retrying;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs until the hub shuts down.
pub(crate) async fn run(hub: Arc<Hub>) {
    let mut retry = hub.retry_policy().retrying();
    let mut started = false;
    loop {
        if hub.shutdown.is_cancelled() {
            return;
        }
        if !started {
            let start = async {
                let bounds = hub.source.bounds().await?;
                // Fail closed: no fan-out until the in-camera state is known.
                let lifecycle = hub.source.lifecycle_until(bounds.last).await?;
                // The state up to the same position: a snapshot, then the rest.
                let began = std::time::Instant::now();
                let report = hub.state.build(&*hub.source, &bounds).await?;
                Ok::<_, sapha_log::SourceError>((bounds, lifecycle, report, began.elapsed()))
            };
            match start.await {
                Ok((bounds, lifecycle, report, took)) => {
                    tracing::info!(
                        last_seq = bounds.last,
                        first_seq = bounds.first,
                        epoch = %bounds.epoch,
                        snapshot_seq = ?report.snapshot_seq,
                        replayed = report.replayed,
                        state_ms = took.as_millis() as u64,
                        "fan-out starts"
                    );
                    hub.start_at(bounds, lifecycle);
                    started = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for the event stream");
                    if sleep_or_shutdown(&hub, &mut retry).await {
                        return;
                    }
                    continue;
                }
            }
        }
        // The stream as it is now: an epoch the fan-out did not know yet (the
        // hub started before the stream existed) is learnt, and another one
        // (the stream was recreated) starts everything over.
        if let Ok(bounds) = hub.source.bounds().await {
            if hub.check_epoch(&bounds.epoch) == EpochCheck::Changed {
                hub.forget_stream();
                started = false;
                continue;
            }
        }
        let start = hub.last_seq() + 1;
        let mut stream = match hub.source.read_from(start).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, start, "cannot open the consumer");
                if sleep_or_shutdown(&hub, &mut retry).await {
                    return;
                }
                continue;
            }
        };
        hub.consumer_live.store(true, Ordering::Relaxed);
        tracing::info!(start, "consumer open");
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = hub.shutdown.cancelled() => return,
                // The probe saw another epoch: reopen, and check it above.
                _ = hub.stream_reset.notified() => {
                    tracing::warn!("the stream's epoch changed; reopening");
                    break;
                }
            };
            match item {
                Some(Ok(msg)) => {
                    retry.reset();
                    match Prepared::decode_with_event(msg.seq, msg.payload) {
                        Ok((p, event)) => {
                            let p = p.stored_at(msg.stored_at);
                            let seq = p.seq;
                            hub.fan_out(p);
                            // Once, in stream order, right after the fan-out
                            // (applied on the state's own thread).
                            hub.state.enqueue(seq, Some(event));
                        }
                        Err(e) => {
                            tracing::warn!(seq = msg.seq, error = %e, "skipping a message that is not an event");
                            hub.skip(msg.seq);
                            hub.state.enqueue(msg.seq, None);
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer broke; reopening");
                    break;
                }
                None => {
                    tracing::warn!("consumer ended; reopening");
                    break;
                }
            }
        }
        hub.consumer_live.store(false, Ordering::Relaxed);
        hub.metrics
            .consumer_restarts
            .fetch_add(1, Ordering::Relaxed);
        if sleep_or_shutdown(&hub, &mut retry).await {
            return;
        }
    }
}

/// Sleeps for the next backoff; true if the hub shut down meanwhile.
async fn sleep_or_shutdown(hub: &Hub, retry: &mut Retrying) -> bool {
    let wait = retry.next_delay();
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = hub.shutdown.cancelled() => true,
    }
}
