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
    let text = reqwest::get(hub.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "# TYPE sapha_hub_connections gauge",
        "sapha_hub_drops_total 0",
        "sapha_hub_disconnects_total{reason=\"slow_consumer\"} 0",
    ] {
        assert!(text.contains(name), "{name} missing in:\n{text}");
    }

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
