//! Scaling out and losing NATS: two hubs on one stream both deliver everything,
//! and a NATS restart in the middle of a stream costs clients nothing.

mod hub_support;

use hub_support::*;
use sapha_tests::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_stream_both_deliver() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let one = TestHub::start(test_config(&nats)).await;
    let two = TestHub::start(test_config(&nats)).await;
    let mut a = Client::connect(&one.ws_url("/v1/ws?topics=bill")).await;
    a.welcome().await;
    a.json().await;
    let mut b = Client::connect(&two.ws_url("/v1/ws?topics=bill.*.stage")).await;
    b.welcome().await;
    b.json().await;

    let mut published = Vec::new();
    for i in 0..10 {
        let e = bill_stage(&format!("b-2566-{i:04}"));
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    assert_eq!(seq_ids(&a.events(10).await), published);
    assert_eq!(seq_ids(&b.events(10).await), published);
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_stream_loses_nothing() {
    let mut nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let mut client = Client::connect(&hub.ws_url("/v1/ws?topics=bill.b-2566-0001")).await;
    client.welcome().await;
    client.json().await;

    let mut published = Vec::new();
    for _ in 0..10 {
        let e = bill_stage("b-2566-0001");
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let mut got = seq_ids(&client.events(5).await);

    nats.restart();
    for _ in 0..10 {
        let e = bill_stage("b-2566-0001");
        published.push((publisher.publish_retrying(&e).await, e.event_id.clone()));
    }
    while got.len() < published.len() {
        let d = client.events(1).await.remove(0);
        got.push((d.seq, d.event.event_id));
    }
    assert_eq!(
        got, published,
        "every event once, in order, across the restart"
    );
    hub.wait_ready().await;
    assert!(
        hub.metric("sapha_hub_consumer_restarts_total")
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(
        hub.metric("sapha_hub_connections").await,
        Some(1),
        "the client stayed"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_before_the_stream_exists_delivers_its_first_events() {
    let nats = NatsServer::start();
    let hub = TestHub::start_unready(test_config(&nats)).await;
    let mut client = Client::connect(&hub.ws_url("/v1/ws?topics=bill")).await;
    client.welcome().await;
    client.json().await; // the ack of the URL subscription
                         // Only now does the publisher create the stream and write to it.
    let publisher = Publisher::new(&nats).await;
    let mut published = Vec::new();
    for i in 0..5 {
        let e = bill_stage(&format!("b-2566-{i:04}"));
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    hub.wait_ready().await;
    let got = seq_ids(&client.events(5).await);
    assert_eq!(
        got, published,
        "the first events of a new stream reach live clients"
    );
    hub.shutdown().await;
}
