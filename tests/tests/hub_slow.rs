//! Slow consumers. A client whose queue fills is served from the ring of recent
//! events until it has caught up, and loses nothing; one that stops reading is
//! closed with 4001 and counted. A fast client on the same topic gets every
//! event throughout. (Falling behind the ring, and the catch-up rules without
//! sockets, are the hub's unit tests: `hub::tests`.)

mod hub_support;

use hub_support::*;
use prost::Message as _;
use sapha_hub::Config;
use sapha_proto::wire::pb;
use sapha_tests::NatsServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
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
    /// nothing until the test says so. Returns once its subscription is in
    /// place (beside the fast client's).
    async fn paused_client(&self) -> Client {
        let mut client = self.paused_connection("/v1/ws", None).await;
        client
            .send(json!({"op": "subscribe", "id": "s", "topics": [format!("bill.{BILL}")]}))
            .await;
        assert!(self.hub.wait_metric("sapha_hub_subscriptions", 2).await);
        client
    }

    /// A connection with a tiny receive buffer; see [`small_buffer_client`].
    async fn paused_connection(&self, path: &str, protocol: Option<&str>) -> Client {
        small_buffer_client(&self.hub, path, protocol).await
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

/// A connection with a tiny receive buffer (so that the hub's writes block
/// soon after the client stops reading), on `path`, with an optional subprotocol.
async fn small_buffer_client(hub: &TestHub, path: &str, protocol: Option<&str>) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(hub.addr).await.unwrap();
    let mut request = hub.ws_url(path).into_client_request().unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    Client { ws }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_queue_fills_catches_up_with_every_event_in_order() {
    let mut s = Setup::start(|_| {}).await;
    let mut paused = s.paused_client().await;

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

/// Reads frames until `n` events arrived; returns the events' ids in order and
/// the number of events in each frame that carried any.
async fn read_events(client: &mut Client, n: usize) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    while ids.len() < n {
        let frames: Vec<Delivered> = match client.next_message().await {
            Some(Message::Text(t)) => {
                let f: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                match f["type"].as_str() {
                    Some("event") => vec![delivered_json(&f)],
                    Some("batch") => f["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(delivered_json)
                        .collect(),
                    Some("error") => panic!("error frame: {f}"),
                    _ => Vec::new(),
                }
            }
            Some(Message::Binary(b)) => match pb::HubFrame::decode(b).unwrap().kind.unwrap() {
                pb::hub_frame::Kind::Event(d) => vec![delivered_proto(d)],
                pb::hub_frame::Kind::Batch(b) => {
                    b.events.into_iter().map(delivered_proto).collect()
                }
                pb::hub_frame::Kind::Error(e) => panic!("error frame: {e:?}"),
                _ => Vec::new(),
            },
            other => panic!("expected a frame, got {other:?}"),
        };
        if !frames.is_empty() {
            sizes.push(frames.len());
        }
        assert_increasing(&frames);
        ids.extend(hub_support::ids(&frames));
    }
    (ids, sizes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_batches_gets_queued_events_in_batch_frames() {
    let mut s = Setup::start(|_| {}).await;
    let topics = format!("/v1/ws?topics=bill.{BILL}&batch=true");
    let mut json_client = s.paused_connection(&topics, None).await;
    let mut proto_client = s.paused_connection(&topics, Some("sapha.v1.proto")).await;
    assert!(s.hub.wait_metric("sapha_hub_subscriptions", 3).await);

    // Both read nothing while 100 events arrive, so their queues hold many.
    for _ in 0..5 {
        s.publish_batch().await;
    }

    let welcome = json_client.json().await;
    assert_eq!(
        (welcome["type"].as_str(), welcome["batch"].as_bool()),
        (Some("welcome"), Some(true))
    );
    let (ids, sizes) = read_events(&mut json_client, s.published.len()).await;
    assert_eq!(ids, s.published, "every event once, in order");
    assert!(
        sizes.iter().any(|n| *n > 1),
        "no batch frame among {sizes:?}"
    );
    assert!(
        sizes.iter().all(|n| *n <= 16),
        "a batch above 16 events: {sizes:?}"
    );

    let Some(Message::Binary(b)) = proto_client.next_message().await else {
        panic!("no welcome");
    };
    let Some(pb::hub_frame::Kind::Welcome(w)) = pb::HubFrame::decode(b).unwrap().kind else {
        panic!("not a welcome");
    };
    assert!(w.batch);
    let (ids, sizes) = read_events(&mut proto_client, s.published.len()).await;
    assert_eq!(ids, s.published, "every event once, in order");
    assert!(
        sizes.iter().any(|n| *n > 1),
        "no batch frame among {sizes:?}"
    );

    // A client that did not ask gets one event per frame, as before.
    let mut plain = Client::connect(&s.hub.ws_url(&format!("/v1/ws?topics=bill.{BILL}"))).await;
    assert_eq!(plain.welcome().await["batch"], false);
    s.hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_while_catching_up_and_acks_are_positions() {
    let mut s = Setup::start(|_| {}).await;
    let mut paused = s.paused_client().await;
    s.publish_until(LAGGED).await;

    // Still reading nothing, it asks two things; answers must not close it.
    paused.send(json!({"op": "ping", "id": "p"})).await;
    paused
        .send(json!({"op": "subscribe", "id": "s2", "topics": ["bill.b-2566-0002"]}))
        .await;
    s.publish_batch().await;

    // In the order received: every event once, and each ack a true position:
    // events before it have a seq at most the ack's, events after it more.
    assert_eq!(paused.welcome().await["type"], "welcome");
    let (mut events, mut acks) = (Vec::new(), Vec::new());
    while events.len() < s.published.len() || acks.len() < 3 {
        let f = paused.json().await;
        match f["type"].as_str() {
            Some("event") => events.push(delivered_json(&f)),
            Some("ack") => acks.push((
                f["id"].as_str().unwrap().to_owned(),
                f["seq"].as_u64().unwrap(),
                events.len(),
            )),
            other => panic!("unexpected frame {other:?}: {f}"),
        }
    }
    assert_eq!(ids(&events), s.published);
    assert_increasing(&events);
    let names: Vec<&str> = acks.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(names, ["s", "p", "s2"]);
    for (id, seq, before) in &acks {
        assert!(
            events[..*before].iter().all(|e| e.seq <= *seq),
            "ack {id} at {seq}"
        );
        assert!(
            events[*before..].iter().all(|e| e.seq > *seq),
            "ack {id} at {seq}"
        );
    }
    assert_eq!(s.hub.metric(SLOW_CONSUMER).await, Some(0));
    s.hub.shutdown().await;
}
