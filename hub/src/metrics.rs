//! Counters and gauges, rendered as Prometheus text on `/metrics`. Plain atomics:
//! the fan-out bumps them on its hot path without locks or allocation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a connection ended. Each has a counter and a documented close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed or went away.
    Client,
    /// Its queue filled up (4001).
    SlowConsumer,
    /// Nothing arrived within the idle timeout (4002).
    IdleTimeout,
    /// A message above the hard size limit (1009).
    TooBig,
    /// A WebSocket protocol error (1002).
    Protocol,
    /// The hub is shutting down (1001).
    Shutdown,
    /// A text message that is not UTF-8 (1007).
    BadUtf8,
    /// The client's TCP connection ended (reset or EOF) without a close frame.
    Dropped,
}

impl DisconnectReason {
    pub const ALL: [DisconnectReason; 8] = [
        DisconnectReason::Client,
        DisconnectReason::SlowConsumer,
        DisconnectReason::IdleTimeout,
        DisconnectReason::TooBig,
        DisconnectReason::Protocol,
        DisconnectReason::Shutdown,
        DisconnectReason::BadUtf8,
        DisconnectReason::Dropped,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DisconnectReason::Client => "client",
            DisconnectReason::SlowConsumer => "slow_consumer",
            DisconnectReason::IdleTimeout => "idle_timeout",
            DisconnectReason::TooBig => "frame_too_large",
            DisconnectReason::Protocol => "protocol_error",
            DisconnectReason::Shutdown => "shutdown",
            DisconnectReason::BadUtf8 => "invalid_utf8",
            DisconnectReason::Dropped => "dropped",
        }
    }

    /// The close frame the hub sends, if any.
    pub fn close_frame(self) -> Option<(u16, &'static str)> {
        use crate::protocol::close;
        match self {
            DisconnectReason::Client => None,
            DisconnectReason::SlowConsumer => Some((close::SLOW_CONSUMER, "slow consumer")),
            DisconnectReason::IdleTimeout => Some((close::IDLE_TIMEOUT, "idle timeout")),
            DisconnectReason::TooBig => Some((close::TOO_BIG, "message too big")),
            DisconnectReason::Protocol => Some((close::PROTOCOL, "protocol error")),
            DisconnectReason::Shutdown => Some((close::GOING_AWAY, "going away")),
            DisconnectReason::BadUtf8 => Some((close::BAD_UTF8, "invalid utf-8")),
            DisconnectReason::Dropped => None,
        }
    }

    fn index(self) -> usize {
        DisconnectReason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("listed")
    }
}

/// Every metric of one hub process.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub subscriptions: AtomicU64,
    pub events_in: AtomicU64,
    pub events_invalid: AtomicU64,
    /// Events the publisher would have refused, by kind (`trust::Suspect`).
    pub events_suspect: [AtomicU64; 4],
    pub deliveries: AtomicU64,
    pub replayed: AtomicU64,
    pub drops: AtomicU64,
    /// Times a connection's queue filled and it was switched to catching up
    /// from the ring instead of being closed.
    pub lagged: AtomicU64,
    /// Content events of a sitting in camera that were not delivered (once per
    /// event in the fan-out, once per event and resuming connection in replays).
    pub in_camera_withheld: AtomicU64,
    pub error_frames: AtomicU64,
    pub consumer_restarts: AtomicU64,
    pub last_seq: AtomicU64,
    disconnects: [AtomicU64; DisconnectReason::ALL.len()],
}

impl Metrics {
    pub fn disconnected(&self, reason: DisconnectReason) {
        self.disconnects[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn disconnects(&self, reason: DisconnectReason) -> u64 {
        self.disconnects[reason.index()].load(Relaxed)
    }

    /// The Prometheus text exposition. `stream_last` is the stream's last
    /// sequence, when known, for the lag gauge.
    pub fn render(&self, stream_last: Option<u64>) -> String {
        let mut out = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let g = |a: &AtomicU64| a.load(Relaxed);
        one(
            "sapha_hub_connections",
            "gauge",
            "Open WebSocket and SSE connections.",
            g(&self.connections),
        );
        one(
            "sapha_hub_connections_total",
            "counter",
            "Connections accepted.",
            g(&self.connections_total),
        );
        one(
            "sapha_hub_connections_rejected_total",
            "counter",
            "Connections refused by a limit (origin, max connections, per IP).",
            g(&self.rejected_connections),
        );
        one(
            "sapha_hub_subscriptions",
            "gauge",
            "Topic filters held by all connections.",
            g(&self.subscriptions),
        );
        one(
            "sapha_hub_events_in_total",
            "counter",
            "Events read from the stream.",
            g(&self.events_in),
        );
        one(
            "sapha_hub_events_invalid_total",
            "counter",
            "Stored messages that did not decode as events (skipped).",
            g(&self.events_invalid),
        );
        one(
            "sapha_hub_deliveries_total",
            "counter",
            "Event frames queued to connections (live).",
            g(&self.deliveries),
        );
        one(
            "sapha_hub_replayed_total",
            "counter",
            "Event frames queued to connections while resuming.",
            g(&self.replayed),
        );
        one(
            "sapha_hub_drops_total",
            "counter",
            "Frames not delivered because a connection stopped reading (it is then closed with 4001).",
            g(&self.drops),
        );
        one(
            "sapha_hub_lagged_total",
            "counter",
            "Times a connection's queue filled and it caught up from the ring of recent events instead of being closed.",
            g(&self.lagged),
        );
        one(
            "sapha_hub_in_camera_withheld_total",
            "counter",
            "Content events of a sitting in camera that were withheld (live once per event, replays once per connection).",
            g(&self.in_camera_withheld),
        );
        one(
            "sapha_hub_error_frames_total",
            "counter",
            "Error frames sent to clients.",
            g(&self.error_frames),
        );
        one(
            "sapha_hub_consumer_restarts_total",
            "counter",
            "Times the stream consumer was reopened (NATS loss, errors).",
            g(&self.consumer_restarts),
        );
        one(
            "sapha_hub_last_seq",
            "gauge",
            "Last stream sequence fanned out.",
            g(&self.last_seq),
        );
        if let Some(last) = stream_last {
            one(
                "sapha_hub_consumer_lag",
                "gauge",
                "Stream sequences stored but not yet fanned out.",
                last.saturating_sub(g(&self.last_seq)),
            );
        }
        let _ = writeln!(
            out,
            "# HELP sapha_hub_events_suspect_total Events read from the stream that the publisher would have refused, by kind (delivered as stored).\n# TYPE sapha_hub_events_suspect_total counter"
        );
        for suspect in crate::trust::Suspect::ALL {
            let _ = writeln!(
                out,
                "sapha_hub_events_suspect_total{{kind=\"{}\"}} {}",
                suspect.label(),
                g(&self.events_suspect[suspect.index()])
            );
        }
        let _ = writeln!(
            out,
            "# HELP sapha_hub_disconnects_total Connections closed, by reason.\n# TYPE sapha_hub_disconnects_total counter"
        );
        for reason in DisconnectReason::ALL {
            let _ = writeln!(
                out,
                "sapha_hub_disconnects_total{{reason=\"{}\"}} {}",
                reason.label(),
                self.disconnects(reason)
            );
        }
        out
    }
}
