//! Readiness: one background probe per process asks the source for its stream
//! bounds (for NATS, a JetStream stream-info request) every
//! `[nats] health_interval_ms`, with a `health_timeout_ms` deadline, and
//! `/readyz` answers from the cached result.
//!
//! The client library's own view ("connected") is not enough: a server that
//! stops answering but keeps its TCP connection open (stopped, swapping, a
//! network path that drops packets) stays "connected" until two of its pings
//! go unanswered, and async-nats pings once a minute. The probe is one request
//! per hub per interval, whatever the number of clients.

use crate::hub::Hub;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The probe interval while the source does not answer.
const RETRY_SOONER: Duration = Duration::from_millis(250);

/// What the last probe learnt about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StreamState {
    /// No probe has answered yet, or the last one did not answer.
    #[default]
    Unknown,
    /// The source answered and has no stream: the publisher (`sapha ingest`,
    /// `sapha publish`) has not created it yet. The hub waits for it.
    Missing,
    /// The stream exists.
    Present,
}

impl StreamState {
    fn as_str(self) -> &'static str {
        match self {
            StreamState::Unknown => "unknown",
            StreamState::Missing => "missing",
            StreamState::Present => "present",
        }
    }
}

/// The last probe's result.
#[derive(Debug, Default, Clone, Copy)]
struct Probe {
    /// The source answered the last probe within its deadline.
    answering: bool,
    stream: StreamState,
}

/// The cached probe result `/readyz` reads.
#[derive(Default)]
pub(crate) struct Readiness {
    /// Written by the probe task, read by `/readyz`; held for a copy only.
    last: Mutex<Probe>,
}

impl Readiness {
    fn get(&self) -> Probe {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, probe: Probe) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = probe;
    }
}

/// Probes the source until the hub shuts down.
pub(crate) async fn probe(hub: Arc<Hub>, readiness: Arc<Readiness>) {
    let every = Duration::from_millis(hub.config.nats.health_interval_ms.max(100));
    let deadline = Duration::from_millis(hub.config.nats.health_timeout_ms.max(100));
    loop {
        let result = tokio::select! {
            r = tokio::time::timeout(deadline, hub.source.bounds()) => r,
            _ = hub.shutdown.cancelled() => return,
        };
        // The probe asks for the bounds anyway: learn an epoch the fan-out
        // lacks, and tell the consumer when the stream was recreated.
        if let Ok(Ok(b)) = &result {
            if hub.check_epoch(&b.epoch) == crate::hub::EpochCheck::Changed {
                hub.stream_reset.notify_one();
            }
        }
        let probe = match result {
            // An empty epoch and nothing stored: the source has no stream (see
            // `NatsSource::bounds`), unless the fan-out already reads one.
            Ok(Ok(b))
                if b.epoch.is_empty()
                    && b.last == 0
                    && !hub.consumer_live.load(Ordering::Relaxed) =>
            {
                Probe {
                    answering: true,
                    stream: StreamState::Missing,
                }
            }
            Ok(Ok(_)) => Probe {
                answering: true,
                stream: StreamState::Present,
            },
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "readiness probe failed");
                Probe::default()
            }
            Err(_) => {
                tracing::debug!(?deadline, "readiness probe timed out");
                Probe::default()
            }
        };
        let before = readiness.get();
        if before.answering != probe.answering || before.stream != probe.stream {
            tracing::info!(
                nats_answering = probe.answering,
                stream = probe.stream.as_str(),
                "readiness changed"
            );
        }
        readiness.set(probe);
        // While the source does not answer, ask again sooner, so that the hub
        // is ready soon after it does (a request every 250 ms at most).
        let wait = if probe.answering {
            every
        } else {
            every.min(RETRY_SOONER)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = hub.shutdown.cancelled() => return,
        }
    }
}

/// `GET /readyz`: 200 when the source is connected and answering and the
/// fan-out's consumer is live; else 503. The body says which part is missing.
pub(crate) async fn readyz(hub: &Hub, readiness: &Readiness) -> Response {
    let connected = hub.source.is_connected();
    let consumer = hub.consumer_live.load(Ordering::Relaxed);
    let probe = readiness.get();
    // The fan-out reads a stream the last probe did not see yet.
    let stream = match probe.stream {
        StreamState::Missing if consumer => StreamState::Present,
        other => other,
    };
    let body = serde_json::json!({
        "source_connected": connected,
        "nats_answering": probe.answering,
        "stream": stream.as_str(),
        "consumer_live": consumer,
    });
    let status = if connected && probe.answering && consumer && !hub.shutdown.is_cancelled() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// The axum handler.
pub(crate) async fn handler(State(app): State<crate::server::App>) -> Response {
    readyz(&app.hub, &app.readiness).await
}
