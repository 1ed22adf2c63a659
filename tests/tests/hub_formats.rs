//! Formats: a `sapha.v1.proto` client and a JSON client on the same filters see
//! the same events, with the same sequences and topics.

mod hub_support;

use futures::SinkExt;
use hub_support::*;
use prost::Message as _;
use sapha_proto::event::Chamber;
use sapha_proto::wire::pb;
use sapha_proto::{Event, TopicFilter};
use sapha_tests::NatsServer;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_and_json_clients_see_the_same_events() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;

    let mut json_client = Client::connect(&hub.ws_url("/v1/ws")).await;
    json_client.welcome().await;
    json_client
        .subscribe("j", &["bill.b-2566-0001", "sitting.joint.>"])
        .await;

    let mut proto_client =
        Client::connect_with(&hub.ws_url("/v1/ws"), Some("sapha.v1.proto")).await;
    let Some(pb::hub_frame::Kind::Welcome(w)) = Some(proto_client.proto().await) else {
        panic!("no welcome");
    };
    assert_eq!(w.format, "proto");
    assert_eq!(w.limits.unwrap().max_subscriptions, 100);
    // Requests may be binary ClientFrames...
    let subscribe = pb::ClientFrame {
        id: "p".into(),
        op: Some(pb::client_frame::Op::Subscribe(pb::Subscribe {
            topics: vec!["bill.b-2566-0001".into()],
            since: None,
            epoch: None,
        })),
    };
    proto_client
        .ws
        .send(Message::Binary(subscribe.encode_to_vec().into()))
        .await
        .unwrap();
    let pb::hub_frame::Kind::Ack(ack) = proto_client.proto().await else {
        panic!("no ack");
    };
    assert_eq!(
        (ack.id.as_str(), ack.op.as_str(), ack.subscriptions),
        ("p", "subscribe", 1)
    );
    // ...or JSON text; the answers are binary either way.
    proto_client
        .send(serde_json::json!({"op": "subscribe", "id": 7, "topics": ["sitting.joint.>"]}))
        .await;
    let pb::hub_frame::Kind::Ack(ack) = proto_client.proto().await else {
        panic!("no ack");
    };
    assert_eq!((ack.id.as_str(), ack.subscriptions), ("7", 2));
    // A bad request gets a binary error frame.
    proto_client.send_text("{oops").await;
    let pb::hub_frame::Kind::Error(err) = proto_client.proto().await else {
        panic!("no error");
    };
    assert_eq!(err.code, "bad_json");

    let mut events = Vec::new();
    for example in sapha_proto::examples::one_of_each_kind() {
        events.push(example);
    }
    events.push(bill_stage("b-2566-0001"));
    events.push(bill_vote(
        Chamber::Senate,
        "senate-2566-2-28",
        "b-2566-0001",
    ));
    events.push(bill_stage("b-2566-0002")); // matched by neither
    let mut seqs = Vec::new();
    for e in &events {
        seqs.push(publisher.publish(e).await);
    }
    let filters = ["bill.b-2566-0001", "sitting.joint.>"].map(|f| TopicFilter::parse(f).unwrap());
    let matching: Vec<(u64, Event)> = seqs
        .iter()
        .zip(&events)
        .filter(|(_, e)| {
            filters.iter().any(|f| {
                f.matches(&e.topic()) || e.secondary_topic().is_some_and(|s| f.matches(&s))
            })
        })
        .map(|(s, e)| (*s, e.clone()))
        .collect();
    let expected = matching.len();
    assert!(expected >= 10 && expected < events.len());

    let from_json = json_client.events(expected).await;
    let mut from_proto = Vec::new();
    while from_proto.len() < expected {
        match proto_client.proto().await {
            pb::hub_frame::Kind::Event(d) => from_proto.push(delivered_proto(d)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(from_json, from_proto);
    let got: Vec<(u64, Event)> = from_json.into_iter().map(|d| (d.seq, d.event)).collect();
    assert_eq!(got, matching);
    hub.shutdown().await;
}
