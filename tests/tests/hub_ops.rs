//! Operations: the example config parses to the defaults, health and metrics
//! endpoints answer, and shutdown closes clients with 1001 within the deadline.

mod hub_support;

use hub_support::*;
use sapha_hub::Config;
use sapha_tests::NatsServer;

#[test]
fn the_example_config_parses_and_shows_the_defaults() {
    let path = sapha_tests::repo_root().join("hub/hub.example.toml");
    let config = Config::load(Some(&path), Vec::new(), &[]).expect("the example parses");
    assert_eq!(
        config,
        Config::default(),
        "the example documents the defaults"
    );
    let text = std::fs::read_to_string(&path).unwrap() + "\n[limits]\nnope = 1\n";
    assert!(
        Config::from_toml(&text).is_err(),
        "unknown keys are refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_graceful_shutdown() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;

    let health = reqwest::get(hub.http("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = reqwest::get(hub.http("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["source_connected"], true);
    assert_eq!(ready["consumer_live"], true);

    let mut a = Client::connect(&hub.ws_url("/v1/ws?topics=bill")).await;
    a.welcome().await;
    a.json().await;
    let mut b = Client::connect(&hub.ws_url("/v1/ws?topics=%3E")).await;
    b.welcome().await;
    b.json().await;
    let e = bill_stage("b-2566-0001");
    publisher.publish(&e).await;
    a.events(1).await;
    b.events(1).await;

    assert_eq!(hub.metric("sapha_hub_connections").await, Some(2));
    assert_eq!(hub.metric("sapha_hub_subscriptions").await, Some(2));
    assert_eq!(hub.metric("sapha_hub_events_in_total").await, Some(1));
    assert_eq!(hub.metric("sapha_hub_deliveries_total").await, Some(2));
    assert_eq!(hub.metric("sapha_hub_consumer_lag").await, Some(0));
    let response = reqwest::get(hub.http("/metrics")).await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for name in [
        "# TYPE sapha_hub_connections gauge",
        "sapha_hub_drops_total 0",
        "sapha_hub_disconnects_total{reason=\"slow_consumer\"} 0",
    ] {
        assert!(text.contains(name), "{name} missing in:\n{text}");
    }
    // Strict OpenMetrics: one family per name (the gauge
    // `sapha_hub_connections` and the old counter `sapha_hub_connections_total`
    // clashed), and the figures operators expect.
    let exp = sapha_tests::openmetrics::check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(exp.get("sapha_hub_connections_opened_total"), Some(2.0));
    // Both deliveries were written, each with a lag from the stream's store time.
    assert_eq!(exp.get("sapha_hub_delivery_lag_seconds_count"), Some(2.0));
    assert!(exp.get("sapha_hub_delivery_lag_seconds_sum") >= Some(0.0));
    assert_eq!(
        exp.get(&format!(
            "sapha_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        Some(1.0)
    );
    // Counted in 10 ms clock ticks: present, and not negative.
    assert!(exp.get("process_cpu_seconds_total") >= Some(0.0));
    assert!(exp.get("process_resident_memory_bytes") > Some(0.0));
    assert!(exp.get("process_open_fds") > Some(0.0));
    assert!(exp.get("process_max_fds") > Some(0.0));
    assert!(exp.get("process_start_time_seconds") > Some(1e9));
    assert!(exp.get("sapha_hub_connections_open").is_some());
    assert!(exp.get("sapha_hub_state_seq").is_some());

    let stopping = tokio::spawn(hub.shutdown());
    assert_eq!(a.close_code().await, Some(1001));
    assert_eq!(b.close_code().await, Some(1001));
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.idle_timeout_ms = 300;
    config.limits.ping_interval_ms = 60_000;
    let hub = TestHub::start(config).await;
    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;
    // The client sends nothing, not even a pong (no ping came to answer).
    assert_eq!(c.close_code().await, Some(4002));
    assert_eq!(
        hub.metric("sapha_hub_disconnects_total{reason=\"idle_timeout\"}")
            .await,
        Some(1)
    );
    hub.shutdown().await;
}
