//! Slow consumers: a client that stops reading is disconnected with close code
//! 4001 and counted, while a fast client on the same topic gets every event.

mod hub_support;

use futures::{SinkExt, StreamExt};
use hub_support::*;
use sapha_tests::NatsServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_with_4001_and_a_fast_one_gets_everything() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.queue_frames = 64;
    let hub = TestHub::start(config).await;

    // The slow client: a tiny receive buffer, and it stops reading after the ack.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(hub.addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(hub.ws_url("/v1/ws"), tcp)
        .await
        .unwrap();
    slow.send(Message::Text(
        json!({"op": "subscribe", "id": "s", "topics": ["bill.b-2566-0001"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();

    let mut fast = Client::connect(&hub.ws_url("/v1/ws?topics=bill.b-2566-0001")).await;
    fast.welcome().await;
    fast.json().await;
    // Make sure the slow client's subscription is in place before publishing.
    assert!(hub.wait_metric("sapha_hub_subscriptions", 2).await);

    let mut published = Vec::new();
    let mut disconnected = false;
    for _batch in 0..60 {
        for _ in 0..20 {
            let e = big_bill_stage("b-2566-0001");
            publisher.publish(&e).await;
            published.push(e.event_id);
        }
        // The fast client keeps up.
        let got = fast.events(20).await;
        assert_eq!(ids(&got), published[published.len() - 20..]);
        let slow_count = hub
            .metric("sapha_hub_disconnects_total{reason=\"slow_consumer\"}")
            .await;
        if slow_count == Some(1) {
            disconnected = true;
            break;
        }
    }
    assert!(disconnected, "the slow client was never disconnected");

    // The slow client, reading at last, finds its close frame after what was sent.
    let mut code = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(f))) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        }
    }
    assert_eq!(code, Some(4001));

    // The fast client is unaffected and still live.
    let last = bill_stage("b-2566-0001");
    publisher.publish(&last).await;
    assert_eq!(ids(&fast.events(1).await), vec![last.event_id.clone()]);
    assert!(hub.metric("sapha_hub_drops_total").await.unwrap() >= 1);
    assert_eq!(
        hub.metric("sapha_hub_disconnects_total{reason=\"slow_consumer\"}")
            .await,
        Some(1)
    );
    hub.shutdown().await;
}
