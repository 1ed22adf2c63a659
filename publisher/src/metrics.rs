//! The publisher's Prometheus metrics, served at `/metrics` by the ingest server.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Counters for everything the pipeline does. Registered once; cheap to update.
pub struct Metrics {
    registry: Registry,
    accepted: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    published: Family<Labels, Counter>,
    retries: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        // `sapha_build_info` and the process metrics, then the publisher's own.
        let mut root = sapha_edge::metrics::registry();
        let registry = root.sub_registry_with_prefix("sapha_publisher");
        let accepted = Family::<Labels, Counter>::default();
        let rejected = Family::<Labels, Counter>::default();
        let published = Family::<Labels, Counter>::default();
        let retries = Counter::default();
        registry.register(
            "events_accepted",
            "Events accepted, by source and result (stored or duplicate)",
            accepted.clone(),
        );
        registry.register(
            "events_rejected",
            "Events rejected, by source and reason code",
            rejected.clone(),
        );
        registry.register(
            "events_published",
            "Appends acknowledged by the log, by whether the log saw a duplicate id",
            published.clone(),
        );
        registry.register(
            "retries",
            "Log calls retried after the log was unavailable",
            retries.clone(),
        );
        Metrics {
            registry: root,
            accepted,
            rejected,
            published,
            retries,
        }
    }
}

impl Metrics {
    pub fn accepted(&self, source: &str, result: &'static str) {
        self.accepted
            .get_or_create(&vec![
                ("source", source.to_owned()),
                ("result", result.into()),
            ])
            .inc();
    }

    pub fn rejected(&self, source: &str, reason: &'static str) {
        self.rejected
            .get_or_create(&vec![
                ("source", source.to_owned()),
                ("reason", reason.into()),
            ])
            .inc();
    }

    pub fn published(&self, duplicate: bool) {
        self.published
            .get_or_create(&vec![("duplicate", duplicate.to_string())])
            .inc();
    }

    pub fn retried(&self) {
        self.retries.inc();
    }

    /// The OpenMetrics text of every metric (`sapha_edge::metrics::CONTENT_TYPE`).
    pub fn render(&self) -> String {
        self.render_with(&Registry::default())
    }

    /// As [`Metrics::render`], with the metrics of `scrape` (read at scrape
    /// time, such as the HTTP edge's) before the end.
    pub fn render_with(&self, scrape: &Registry) -> String {
        sapha_edge::metrics::render(&[&self.registry, scrape])
    }
}
