//! Slow consumers. A client whose queue fills is served from the ring of recent
//! events until it has caught up, and loses nothing; one that stops reading, or
//! falls behind the ring, is closed with 4001 and counted. A fast client on the
//! same topic gets every event throughout.

mod hub_support;

use futures::SinkExt;
use hub_support::*;
use sapha_hub::Config;
use sapha_tests::NatsServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

const BILL: &str = "b-2566-0001";
const SLOW_CONSUMER: &str = "sapha_hub_disconnects_total{reason=\"slow_consumer\"}";
const LAGGED: &str = "sapha_hub_lagged_total";

/// A hub with a small queue, a publisher, and a fast client on [`BILL`].
struct Setup {
    _nats: NatsServer,
    publisher: Publisher,
    hub: TestHub,
    fast: Client,
    published: Vec<String>,
}

impl Setup {
    async fn start(tune: impl FnOnce(&mut Config)) -> Setup {
        let nats = NatsServer::start();
        let publisher = Publisher::new(&nats).await;
        let mut config = test_config(&nats);
        config.limits.queue_frames = 64;
        tune(&mut config);
        let hub = TestHub::start(config).await;
        let mut fast = Client::connect(&hub.ws_url(&format!("/v1/ws?topics=bill.{BILL}"))).await;
        fast.welcome().await;
        fast.json().await;
        Setup {
            _nats: nats,
            publisher,
            hub,
            fast,
            published: Vec::new(),
        }
    }

    /// A client with a tiny receive buffer that subscribes and then reads
    /// nothing until the test says so.
    async fn paused_client(&self) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(self.hub.addr).await.unwrap();
        let (ws, _) =
            tokio_tungstenite::client_async(self.hub.ws_url("/v1/ws"), MaybeTlsStream::Plain(tcp))
                .await
                .unwrap();
        let mut client = Client { ws };
        client
            .ws
            .send(Message::Text(
                json!({"op": "subscribe", "id": "s", "topics": [format!("bill.{BILL}")]})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        client
    }

    /// Publishes 20 large events, and checks that the fast client got them.
    async fn publish_batch(&mut self) {
        for _ in 0..20 {
            let e = big_bill_stage(BILL);
            self.publisher.publish(&e).await;
            self.published.push(e.event_id);
        }
        let got = self.fast.events(20).await;
        assert_eq!(ids(&got), self.published[self.published.len() - 20..]);
    }

    /// Publishes batches until `metric` reaches 1 (at most 60 batches).
    async fn publish_until(&mut self, metric: &str) {
        for _batch in 0..60 {
            self.publish_batch().await;
            if self.hub.metric(metric).await >= Some(1) {
                return;
            }
        }
        panic!("{metric} never reached 1");
    }

    /// One more event reaches the fast client: it was never disturbed.
    async fn fast_client_still_live(&mut self) {
        let last = bill_stage(BILL);
        self.publisher.publish(&last).await;
        assert_eq!(ids(&self.fast.events(1).await), vec![last.event_id]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_queue_fills_catches_up_with_every_event_in_order() {
    let mut s = Setup::start(|_| {}).await;
    let mut paused = s.paused_client().await;
    assert!(s.hub.wait_metric("sapha_hub_subscriptions", 2).await);

    s.publish_until(LAGGED).await;
    // More events while it is still behind: they, too, come from the ring.
    s.publish_batch().await;
    s.publish_batch().await;

    // Reading at last, it gets its welcome, its ack, and every event once, in order.
    assert_eq!(paused.welcome().await["type"], "welcome");
    let got = paused.events(s.published.len()).await;
    assert_eq!(ids(&got), s.published);
    assert_increasing(&got);

    // It is live again: the next event reaches it too, and nobody was closed.
    s.fast_client_still_live().await;
    let last = s.published.len();
    let next = paused.events(1).await;
    assert!(next[0].seq > got[last - 1].seq);
    assert!(s.hub.metric(LAGGED).await >= Some(1));
    assert_eq!(s.hub.metric(SLOW_CONSUMER).await, Some(0));
    assert_eq!(s.hub.metric("sapha_hub_connections").await, Some(2));
    s.hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4001_after_the_stall_timeout() {
    let mut s = Setup::start(|c| c.limits.stall_timeout_ms = 1_000).await;
    let mut stopped = s.paused_client().await;
    assert!(s.hub.wait_metric("sapha_hub_subscriptions", 2).await);

    s.publish_until(LAGGED).await;
    assert!(
        s.hub.wait_metric(SLOW_CONSUMER, 1).await,
        "the stopped client was never closed"
    );

    // Reading at last, it finds its close frame after what was sent.
    assert_eq!(stopped.close_code().await, Some(4001));
    s.fast_client_still_live().await;
    assert!(s.hub.metric("sapha_hub_drops_total").await >= Some(1));
    assert_eq!(s.hub.metric(SLOW_CONSUMER).await, Some(1));
    s.hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_falls_behind_the_ring_is_closed_with_4001() {
    let mut s = Setup::start(|c| c.history.cache_events = 100).await;
    let mut paused = s.paused_client().await;
    assert!(s.hub.wait_metric("sapha_hub_subscriptions", 2).await);

    s.publish_until(LAGGED).await;
    // Far more than the ring holds, while it reads nothing.
    for _ in 0..10 {
        s.publish_batch().await;
    }

    // Reading at last: what the ring still had when it fell behind, then 4001.
    assert_eq!(paused.close_code().await, Some(4001));
    assert_eq!(s.hub.metric(SLOW_CONSUMER).await, Some(1));
    s.fast_client_still_live().await;
    s.hub.shutdown().await;
}
