//! Per-bill filtering: each client gets exactly the events its filters match,
//! once each, in stream order, whether it subscribed by request or in the URL.

mod hub_support;

use hub_support::*;
use sapha_proto::event::Chamber;
use sapha_tests::NatsServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_receives_exactly_its_own_events_in_order() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;

    let mut bill_a = Client::connect(&hub.ws_url("/v1/ws")).await;
    let welcome = bill_a.welcome().await;
    assert_eq!(welcome["format"], "json");
    assert_eq!(welcome["seq"], 0);
    assert_eq!(welcome["limits"]["max_subscriptions"], 100);
    bill_a.subscribe("a", &["bill.b-2566-0001"]).await;

    // The URL form: no request needed; the ack has a null id.
    let mut bill_b = Client::connect(&hub.ws_url("/v1/ws?topics=bill.b-2566-0002")).await;
    bill_b.welcome().await;
    let ack = bill_b.json().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["id"], serde_json::Value::Null);
    assert_eq!(ack["topics"], json!(["bill.b-2566-0002"]));

    let mut stages = Client::connect(&hub.ws_url("/v1/ws")).await;
    stages.welcome().await;
    stages.subscribe("s", &["bill.*.stage"]).await;

    let mut everything = Client::connect(&hub.ws_url("/v1/ws?topics=%3E")).await;
    everything.welcome().await;
    everything.json().await;

    let mut senate = Client::connect(&hub.ws_url("/v1/ws")).await;
    senate.welcome().await;
    // Two overlapping filters: each event still arrives once.
    let ack = senate
        .subscribe(
            "x",
            &["sitting.senate.senate-2566-2-28", "sitting.senate.>"],
        )
        .await;
    assert_eq!(ack["subscriptions"], 2);

    let a1 = bill_stage("b-2566-0001");
    let b1 = bill_stage("b-2566-0002");
    let open = sitting_event(Chamber::Senate, "senate-2566-2-28");
    let house = sitting_event(Chamber::House, "house-2566-1-3");
    let vote_a = bill_vote(Chamber::Senate, "senate-2566-2-28", "b-2566-0001");
    let a2 = bill_stage("b-2566-0001");
    let b2 = bill_stage("b-2566-0002");
    let all = [&a1, &b1, &open, &house, &vote_a, &a2, &b2];
    let mut seqs = Vec::new();
    for e in all {
        seqs.push(publisher.publish(e).await);
    }

    let want = |events: &[&sapha_proto::Event]| -> Vec<String> {
        events.iter().map(|e| e.event_id.clone()).collect()
    };
    let got = bill_a.events(3).await;
    assert_eq!(ids(&got), want(&[&a1, &vote_a, &a2]));
    assert_eq!(got[1].topic, "sitting.senate.senate-2566-2-28.vote");
    assert_eq!(got[1].seq, seqs[4]);
    assert_eq!(got[1].event, vote_a);
    let got = bill_b.events(2).await;
    assert_eq!(ids(&got), want(&[&b1, &b2]));
    let got = stages.events(4).await;
    assert_eq!(ids(&got), want(&[&a1, &b1, &a2, &b2]));
    let got = everything.events(7).await;
    assert_eq!(ids(&got), want(&all));
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs);
    let got = senate.events(2).await;
    assert_eq!(ids(&got), want(&[&open, &vote_a]));

    // Nothing more arrives: a ping is answered before any further event.
    for client in [
        &mut bill_a,
        &mut bill_b,
        &mut stages,
        &mut everything,
        &mut senate,
    ] {
        client.send(json!({"op": "ping", "id": "p"})).await;
        let pong = client.json().await;
        assert_eq!(pong["type"], "ack", "{pong}");
        assert_eq!(pong["op"], "ping");
        assert_eq!(pong["seq"], *seqs.last().unwrap());
    }

    // After unsubscribing, bill A's client gets nothing of bill A.
    bill_a
        .send(json!({"op": "unsubscribe", "id": "u", "topics": ["bill.b-2566-0001"]}))
        .await;
    let ack = bill_a.json().await;
    assert_eq!(
        (ack["type"].as_str(), ack["subscriptions"].as_u64()),
        (Some("ack"), Some(0))
    );
    let a3 = bill_stage("b-2566-0001");
    publisher.publish(&a3).await;
    assert_eq!(ids(&everything.events(1).await), want(&[&a3]));
    bill_a.send(json!({"op": "ping", "id": "p2"})).await;
    assert_eq!(bill_a.json().await["id"], "p2");
    hub.shutdown().await;
}
