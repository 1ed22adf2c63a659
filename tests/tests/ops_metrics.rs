//! `/metrics` of `sapha sink` and `sapha notify` as real child processes
//! (`--metrics-addr`): each serves strict OpenMetrics text, with the build and
//! process metrics, and its counters move after real work.

mod hub_support;
mod subscribers_support;

use hub_support::*;
use sapha_proto::stage::Stage::*;
use sapha_tests::fixtures::bill_history;
use sapha_tests::openmetrics::{check, Exposition};
use sapha_tests::{free_port, NatsServer};
use std::process::{Child, Command, Stdio};
use subscribers_support::{sapha_bin, Receiver};

/// A child process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> Process {
    let child = Command::new(sapha_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sapha");
    Process(child)
}

/// One scrape, checked strictly; `None` until the server answers.
async fn scrape(url: &str) -> Option<Exposition> {
    let response = reqwest::get(url).await.ok()?;
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let text = response.text().await.ok()?;
    Some(check(&text).unwrap_or_else(|e| panic!("{e}\n{text}")))
}

/// Waits until `series` reaches `at_least`; gives the last scrape.
async fn wait_for(url: &str, series: &str, at_least: f64) -> Exposition {
    let ok = sapha_tests::wait_until(WAIT, || async {
        scrape(url)
            .await
            .and_then(|e| e.get(series))
            .is_some_and(|v| v >= at_least)
    })
    .await;
    let last = scrape(url).await.expect("the metrics server answers");
    assert!(ok, "{series} < {at_least}: {:?}", last.samples);
    last
}

fn has_common(exp: &Exposition) {
    let version = format!(
        "sapha_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(exp.get(&version), Some(1.0));
    // CPU time counts in clock ticks (10 ms): a process that did little may
    // show 0 yet, so it need only be there.
    let cpu = exp.get("process_cpu_seconds_total");
    assert!(cpu >= Some(0.0), "process_cpu_seconds_total: {cpu:?}");
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(exp.get(name) > Some(0.0), "{name}: {:?}", exp.get(name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_serves_its_counters_on_metrics_addr() {
    let bin = tokio::task::spawn_blocking(sapha_bin).await.unwrap();
    assert!(bin.exists());
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let out = dir.path().join("out");
    let _sink = start(&[
        "sink",
        "--hub",
        &hub.ws_url("/v1/ws"),
        "--out",
        out.to_str().unwrap(),
        "--metrics-addr",
        &addr,
    ]);
    let url = format!("http://{addr}/metrics");
    for i in 0..5 {
        publisher
            .publish(&bill_stage(&format!("b-2566-{i:04}")))
            .await;
    }
    let exp = wait_for(&url, "sapha_sink_events_written_total", 5.0).await;
    has_common(&exp);
    assert!(exp.get("sapha_sink_checkpoints_total") >= Some(1.0));
    assert!(exp.get("sapha_sink_connects_total") >= Some(1.0));
    assert!(exp.get("sapha_sink_written_bytes_total") > Some(5.0 * 100.0));
    assert_eq!(exp.get("sapha_sink_last_seq"), Some(5.0));
    assert_eq!(exp.get("sapha_sink_history_lost_total"), Some(0.0));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_serves_its_counters_on_metrics_addr() {
    let bin = tokio::task::spawn_blocking(sapha_bin).await.unwrap();
    assert!(bin.exists());
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let receiver = Receiver::start().await;
    let store = sapha_tests::fixtures::follow_store(&nats.url()).await;
    store
        .create(
            sapha_follows::Lang::En,
            sapha_follows::Channel::Webhook {
                reference: "ops".into(),
            },
            &["b-2566-0001".to_owned()],
            &sapha_follows::Limits::default(),
        )
        .await
        .unwrap();
    for e in bill_history("b-2566-0001", &[Proposed, HouseR1]) {
        publisher.publish(&e).await;
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let _notify = start(&[
        "notify",
        "--nats-url",
        &nats.url(),
        "--from-start",
        "--webhook-url",
        &receiver.url(),
        "--webhook-secret",
        "hook-secret",
        "--allow-loopback-targets",
        "--metrics-addr",
        &addr,
    ]);
    let url = format!("http://{addr}/metrics");
    let exp = wait_for(&url, "sapha_notify_sent_total{channel=\"webhook\"}", 2.0).await;
    has_common(&exp);
    assert_eq!(receiver.count(), 2);
    assert_eq!(exp.get("sapha_notify_changes_planned_total"), Some(2.0));
    assert!(exp.get("sapha_notify_jobs_published_total") >= Some(2.0));
    assert_eq!(
        exp.get("sapha_notify_sent_total{channel=\"line\"}"),
        Some(0.0)
    );
    assert_eq!(
        exp.get("sapha_notify_failed_total{channel=\"webhook\",reason=\"refused\"}"),
        Some(0.0)
    );
    assert_eq!(exp.get("sapha_notify_followers_removed_total"), Some(0.0));
    for reason in ["blocked_target", "gave_up"] {
        let name = format!("sapha_notify_failed_total{{channel=\"webhook\",reason=\"{reason}\"}}");
        assert_eq!(exp.get(&name), Some(0.0), "{name}");
    }
}
