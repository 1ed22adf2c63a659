//! The hub's metrics, registered once with `prometheus-client` and served as
//! OpenMetrics text on `/metrics`. Each counter and gauge is an atomic the
//! fan-out bumps directly (`fetch_add(1, Relaxed)`), without locks or
//! allocation; labelled ones are created at start and kept by index, so no
//! label set is looked up on the hot path.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

/// A `prometheus-client` counter whose atomic the hot path bumps directly.
#[derive(Debug, Clone, Default)]
pub struct Count(Counter<u64, AtomicU64>);

impl Deref for Count {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

/// A `prometheus-client` gauge whose atomic the hot path sets directly.
#[derive(Debug, Clone, Default)]
pub struct Level(Gauge<u64, AtomicU64>);

impl Deref for Level {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

/// Upper bounds of the delivery lag buckets, in nanoseconds (1 ms to 60 s;
/// `+Inf` follows).
const LAG_BUCKETS_NS: [u64; 15] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

#[derive(Debug, Default)]
struct LagCells {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; LAG_BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// A histogram of durations with fixed buckets and no lock: an observation
/// is two relaxed atomic adds. (`prometheus-client`'s own histogram takes a
/// lock per observation, too much for once per delivery.)
#[derive(Debug, Clone, Default)]
pub struct LagHistogram(Arc<LagCells>);

impl LagHistogram {
    pub fn observe(&self, lag: Duration) {
        let ns = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        let i = LAG_BUCKETS_NS.partition_point(|&upper| upper < ns);
        self.0.buckets[i].fetch_add(1, Relaxed);
        self.0.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Observes `now - stored_at` (0 if the clocks disagree and it is negative).
    pub fn observe_since(&self, stored_at: SystemTime, now: SystemTime) {
        self.observe(now.duration_since(stored_at).unwrap_or_default());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }
}

impl TypedMetric for LagHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LagHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0); LAG_BUCKETS_NS.len() + 1];
        for (i, cell) in self.0.buckets.iter().enumerate() {
            let upper = LAG_BUCKETS_NS
                .get(i)
                .map_or(f64::INFINITY, |ns| *ns as f64 / 1e9);
            buckets[i] = (upper, cell.load(Relaxed));
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_ns.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<Vec<(String, String)>>(
            sum,
            count,
            &buckets,
            None::<&HashMap<usize, Exemplar<Vec<(String, String)>, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Every metric of one hub process. Counters are exported with `_total`
/// appended to the name they are registered under (OpenMetrics).
#[derive(Debug)]
pub struct Metrics {
    pub connections: Level,
    /// Exported as `sapha_hub_connections_opened_total` (the gauge
    /// `sapha_hub_connections` owns the family name `sapha_hub_connections`).
    pub connections_total: Count,
    pub rejected_connections: Count,
    pub subscriptions: Level,
    pub events_in: Count,
    pub events_invalid: Count,
    /// Events the publisher would have refused, by kind (`trust::Suspect`).
    pub events_suspect: [Count; 4],
    pub deliveries: Count,
    pub replayed: Count,
    pub drops: Count,
    /// Times a connection's queue filled and it was switched to catching up
    /// from the ring instead of being closed.
    pub lagged: Count,
    /// Content events of a sitting in camera that were not delivered (once per
    /// event in the fan-out, once per event and resuming connection in replays).
    pub in_camera_withheld: Count,
    pub error_frames: Count,
    pub consumer_restarts: Count,
    pub last_seq: Level,
    /// From an event's store time in the stream to its writer taking it for
    /// the socket, per event frame (see docs/PROTOCOL.md, "Metrics").
    pub delivery_lag: LagHistogram,
    disconnects: [Count; DisconnectReason::ALL.len()],
    /// Holds a clone of each metric above (they share their atomics), plus
    /// `sapha_build_info` and the process metrics.
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = sapha_edge::metrics::registry();
        let hub = registry.sub_registry_with_prefix("sapha_hub");
        let counter = |hub: &mut Registry, name: &str, help: &str| {
            let c = Count::default();
            hub.register(name, help, c.0.clone());
            c
        };
        let gauge = |hub: &mut Registry, name: &str, help: &str| {
            let g = Level::default();
            hub.register(name, help, g.0.clone());
            g
        };
        let connections = gauge(hub, "connections", "Open WebSocket and SSE connections");
        let connections_total = counter(hub, "connections_opened", "Connections accepted");
        let rejected_connections = counter(
            hub,
            "connections_rejected",
            "Connections refused by a limit (origin, max connections, per IP)",
        );
        let subscriptions = gauge(
            hub,
            "subscriptions",
            "Topic filters held by all connections",
        );
        let events_in = counter(hub, "events_in", "Events read from the stream");
        let events_invalid = counter(
            hub,
            "events_invalid",
            "Stored messages that did not decode as events (skipped)",
        );
        let deliveries = counter(
            hub,
            "deliveries",
            "Event frames queued to connections (live)",
        );
        let replayed = counter(
            hub,
            "replayed",
            "Event frames queued to connections while resuming",
        );
        let drops = counter(
            hub,
            "drops",
            "Frames not delivered because a connection stopped reading (it is then closed with 4001)",
        );
        let lagged = counter(
            hub,
            "lagged",
            "Times a connection's queue filled and it caught up from the ring of recent events instead of being closed",
        );
        let in_camera_withheld = counter(
            hub,
            "in_camera_withheld",
            "Content events of a sitting in camera that were withheld (live once per event, replays once per connection)",
        );
        let error_frames = counter(hub, "error_frames", "Error frames sent to clients");
        let consumer_restarts = counter(
            hub,
            "consumer_restarts",
            "Times the stream consumer was reopened (NATS loss, errors)",
        );
        let last_seq = gauge(hub, "last_seq", "Last stream sequence fanned out");
        let delivery_lag = LagHistogram::default();
        hub.register_with_unit(
            "delivery_lag",
            "From an event's store time in the stream to its writer taking it for the socket, per event frame",
            Unit::Seconds,
            delivery_lag.clone(),
        );
        type Labels = [(&'static str, &'static str); 1];
        let suspect = Family::<Labels, Counter<u64, AtomicU64>>::default();
        hub.register(
            "events_suspect",
            "Events read from the stream that the publisher would have refused, by kind (delivered as stored)",
            suspect.clone(),
        );
        let events_suspect = crate::trust::Suspect::ALL
            .map(|s| Count((*suspect.get_or_create(&[("kind", s.label())])).clone()));
        let by_reason = Family::<Labels, Counter<u64, AtomicU64>>::default();
        hub.register(
            "disconnects",
            "Connections closed, by reason",
            by_reason.clone(),
        );
        let disconnects = DisconnectReason::ALL
            .map(|r| Count((*by_reason.get_or_create(&[("reason", r.label())])).clone()));
        Metrics {
            connections,
            connections_total,
            rejected_connections,
            subscriptions,
            events_in,
            events_invalid,
            events_suspect,
            deliveries,
            replayed,
            drops,
            lagged,
            in_camera_withheld,
            error_frames,
            consumer_restarts,
            last_seq,
            delivery_lag,
            disconnects,
            registry,
        }
    }
}

impl Metrics {
    pub fn disconnected(&self, reason: DisconnectReason) {
        self.disconnects[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn disconnects(&self, reason: DisconnectReason) -> u64 {
        self.disconnects[reason.index()].load(Relaxed)
    }

    /// The OpenMetrics text (`sapha_edge::metrics::CONTENT_TYPE`) of every
    /// metric, then those of `scrape` (figures read at scrape time, prefixed
    /// `sapha_hub`). `stream_last` is the stream's last sequence, when known,
    /// for the lag gauge.
    pub fn render(&self, stream_last: Option<u64>, mut scrape: Registry) -> String {
        if let Some(last) = stream_last {
            scrape.register(
                "consumer_lag",
                "Stream sequences stored but not yet fanned out",
                ConstGauge::new(last.saturating_sub(self.last_seq.load(Relaxed))),
            );
        }
        sapha_edge::metrics::render(&[&self.registry, &scrape])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_metrics_render_as_openmetrics_with_the_hot_path_atomics() {
        let m = Metrics::default();
        m.connections.fetch_add(2, Relaxed);
        m.connections_total.fetch_add(3, Relaxed);
        m.disconnected(DisconnectReason::SlowConsumer);
        m.events_suspect[crate::trust::Suspect::SeqGap.index()].fetch_add(1, Relaxed);
        m.delivery_lag.observe(Duration::from_millis(3));
        m.delivery_lag.observe(Duration::from_secs(100));
        m.last_seq.store(7, Relaxed);
        let text = m.render(Some(10), Registry::with_prefix("sapha_hub"));
        for line in [
            "# TYPE sapha_hub_connections gauge",
            "sapha_hub_connections 2",
            "# TYPE sapha_hub_connections_opened counter",
            "sapha_hub_connections_opened_total 3",
            "sapha_hub_disconnects_total{reason=\"slow_consumer\"} 1",
            "sapha_hub_disconnects_total{reason=\"client\"} 0",
            "sapha_hub_events_suspect_total{kind=\"seq_gap\"} 1",
            "# TYPE sapha_hub_delivery_lag_seconds histogram",
            "sapha_hub_delivery_lag_seconds_bucket{le=\"0.0025\"} 0",
            "sapha_hub_delivery_lag_seconds_bucket{le=\"0.005\"} 1",
            "sapha_hub_delivery_lag_seconds_bucket{le=\"60.0\"} 1",
            "sapha_hub_delivery_lag_seconds_bucket{le=\"+Inf\"} 2",
            "sapha_hub_delivery_lag_seconds_count 2",
            "sapha_hub_consumer_lag 3",
            "# TYPE sapha_build_info gauge",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
        assert!(!text.contains("sapha_hub_connections_total"), "{text}");
    }

    #[test]
    fn a_lag_lands_in_the_first_bucket_that_holds_it() {
        let h = LagHistogram::default();
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_nanos(1_000_001));
        h.observe(Duration::ZERO);
        h.observe(Duration::MAX);
        let counts: Vec<u64> = h.0.buckets.iter().map(|b| b.load(Relaxed)).collect();
        assert_eq!(counts[0], 2);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[LAG_BUCKETS_NS.len()], 1);
        assert_eq!(h.count(), 4);
    }
}
