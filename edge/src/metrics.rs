//! What every Sapha process that serves `/metrics` shares: the OpenMetrics
//! text of a `prometheus-client` registry, `sapha_build_info`, the standard
//! `process_*` metrics (read from `/proc/self` on Linux), the edge's own
//! counters, and a small `/metrics` server for the subscriber programs.

use crate::EdgeStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
pub use prometheus_client::registry::Registry;
use prometheus_client::registry::Unit;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The content type of the text [`render`] produces (OpenMetrics 1.0, which
/// Prometheus scrapes as it is).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The version every process reports in `sapha_build_info`.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source revision, when the build sets `SAPHA_REVISION` (a git commit).
const REVISION: Option<&str> = option_env!("SAPHA_REVISION");

/// A registry with the metrics every process has: `sapha_build_info` and the
/// `process_*` family. A process registers its own under a prefix, with
/// `registry.sub_registry_with_prefix("sapha_hub")`.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Common));
    registry
}

/// The OpenMetrics text of `registries`, in order, ending with `# EOF`.
/// Their metric names must not overlap.
pub fn render(registries: &[&Registry]) -> String {
    let mut text = String::with_capacity(4096);
    for registry in registries {
        prometheus_client::encoding::text::encode_registry(&mut text, registry)
            .expect("writing to a String cannot fail");
    }
    prometheus_client::encoding::text::encode_eof(&mut text)
        .expect("writing to a String cannot fail");
    text
}

/// `sapha_build_info` and the process metrics, read at each scrape.
#[derive(Debug)]
struct Common;

impl Collector for Common {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut labels = vec![("version", VERSION)];
        if let Some(revision) = REVISION {
            labels.push(("revision", revision));
        }
        let mut info = encoder.encode_descriptor(
            "sapha_build_info",
            "Always 1; the labels say which build of Sapha is running",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1i64).encode(info.encode_family(&labels)?)?;
        if let Some(p) = process() {
            let seconds = Unit::Seconds;
            let bytes = Unit::Bytes;
            let cpu = ConstCounter::new(p.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "User and system CPU time spent",
                Some(&seconds),
                cpu.metric_type(),
            )?)?;
            let gauges: [(&str, &str, Option<&Unit>, f64); 5] = [
                (
                    "process_resident_memory",
                    "Resident memory size",
                    Some(&bytes),
                    p.resident_bytes as f64,
                ),
                (
                    "process_virtual_memory",
                    "Virtual memory size",
                    Some(&bytes),
                    p.virtual_bytes as f64,
                ),
                (
                    "process_open_fds",
                    "Open file descriptors",
                    None,
                    p.open_fds as f64,
                ),
                (
                    "process_max_fds",
                    "The soft limit on open file descriptors",
                    None,
                    p.max_fds as f64,
                ),
                (
                    "process_start_time",
                    "Start time of the process since the Unix epoch",
                    Some(&seconds),
                    p.start_time_seconds,
                ),
            ];
            for (name, help, unit, value) in gauges {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    unit,
                    gauge.metric_type(),
                )?)?;
            }
        }
        Ok(())
    }
}

/// What the process metrics report.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

/// This process's figures from `/proc/self` (Linux); `None` elsewhere or when
/// `/proc` cannot be read. Small reads of kernel-generated files, at scrape
/// time only.
pub fn process() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: the
    // fields after it start past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // Field n of proc(5) is fields[n - 3] here (fields 1 and 2 are cut off).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let cpu_seconds = (field(14)? + field(15)?) as f64 / ticks;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    let resident_bytes = field(24)? * page;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let max_fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        0
    };
    Some(ProcessStats {
        cpu_seconds,
        resident_bytes,
        virtual_bytes,
        open_fds,
        max_fds,
        start_time_seconds: boot as f64 + start_ticks as f64 / ticks,
    })
}

/// The edge's counters under a prefix (`sapha_hub`, `sapha_ingest`), as a
/// collector: they stay plain atomics on the accept path.
#[derive(Debug)]
pub struct EdgeCollector(pub Arc<EdgeStats>);

impl Collector for EdgeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        for (name, help, value) in [
            (
                "connections_open",
                "TCP connections the HTTP edge holds",
                s.open.load(Ordering::Relaxed) as u64,
            ),
            (
                "connections_pending",
                "Connections with no request in progress (before the first, or idle between requests)",
                s.pending.load(Ordering::Relaxed) as u64,
            ),
        ] {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        for (name, help, value) in [
            (
                "request_deadline_closes",
                "Connections closed for sending no complete request head in time",
                s.request_timeouts.load(Ordering::Relaxed),
            ),
            (
                "pending_evictions",
                "Pending connections closed to make room (pending caps, descriptor budget)",
                s.evicted.load(Ordering::Relaxed),
            ),
            (
                "refused_no_headroom",
                "Connections closed at accept to keep the descriptor reserve",
                s.refused_no_headroom.load(Ordering::Relaxed),
            ),
        ] {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

/// Serves `GET /metrics` with the text of `registry` (start from
/// [`registry`]) on `listener` until `shutdown` resolves: the metrics endpoint
/// of the programs that serve nothing else (`sapha sink`, `sapha notify`).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(registry);
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    render(&[&registry]),
                )
            }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
