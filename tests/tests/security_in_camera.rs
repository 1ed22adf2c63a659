//! In-camera sittings (ประชุมลับ) at the hub: defence in depth. Events are
//! published straight into JetStream, bypassing the publisher's own check, as a
//! rogue or broken writer would. The hub still never delivers the content of a
//! sitting while it is in camera: not live, not on resume (from memory or from
//! the stream), not on a bill's secondary topic, in no format.

mod hub_support;
mod security_support;

use hub_support::*;
use sapha_proto::event::{Chamber, Phase};
use sapha_proto::wire::pb::hub_frame::Kind;
use sapha_tests::NatsServer;
use security_support::*;

const SITTING: &str = "senate-2566-2-28";
const BILL: &str = "b-2566-0777";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_camera_content_is_never_delivered_live_or_replayed() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    // Hub B runs from the start and serves resumes from memory.
    let hub_b = TestHub::start(test_config(&nats)).await;
    let sittings = "/v1/ws?topics=sitting.%3E";
    let mut b_all = Client::connect(&hub_b.ws_url(sittings)).await;
    b_all.welcome().await;
    assert_eq!(b_all.json().await["type"], "ack");
    let mut b_bill = Client::connect(&hub_b.ws_url("/v1/ws?topics=bill.%3E")).await;
    b_bill.welcome().await;
    assert_eq!(b_bill.json().await["type"], "ack");
    let proto_url = hub_b.ws_url(&format!("/v1/ws?topics=sitting.senate.{SITTING}"));
    let mut b_proto = Client::connect_with(&proto_url, Some("sapha.v1.proto")).await;
    assert!(matches!(b_proto.proto().await, Kind::Welcome(_)));
    assert!(matches!(b_proto.proto().await, Kind::Ack(_)));
    let mut b_sse = SseReader::open(&hub_b.http("/v1/sse?topics=sitting.senate.%3E"), &[]).await;

    let opened = lifecycle(Chamber::Senate, SITTING, Phase::Opened);
    let v1 = bill_vote(Chamber::Senate, SITTING, BILL);
    let started = lifecycle(Chamber::Senate, SITTING, Phase::InCameraStarted);
    for e in [&opened, &v1, &started] {
        publisher.publish(e).await;
    }
    let started_seq = 3;

    // Hub A starts while the sitting is in camera, with no memory of events:
    // it must learn the in-camera state from the stream, and replay from it.
    let mut config = test_config(&nats);
    config.history.cache_events = 0;
    let hub_a = TestHub::start(config).await;
    let mut a_live = Client::connect(&hub_a.ws_url(sittings)).await;
    a_live.welcome().await;
    assert_eq!(a_live.json().await["type"], "ack");

    // Content published while in camera, by a writer that skipped the check.
    let v2 = bill_vote(Chamber::Senate, SITTING, BILL);
    let v3 = bill_vote(Chamber::Senate, SITTING, BILL);
    let ended = lifecycle(Chamber::Senate, SITTING, Phase::InCameraEnded);
    let v4 = bill_vote(Chamber::Senate, SITTING, BILL);
    for e in [&v2, &v3, &ended, &v4] {
        publisher.publish(e).await;
    }

    let id = |e: &sapha_proto::Event| e.event_id.clone();
    let whole = vec![id(&opened), id(&v1), id(&started), id(&ended), id(&v4)];
    // The events arrive in stream order, so if v2 or v3 had been sent they
    // would stand before `ended` in these lists.
    assert_eq!(ws_event_ids(&mut b_all, 5).await, whole, "live, json");
    assert_eq!(
        ws_event_ids(&mut b_bill, 2).await,
        vec![id(&v1), id(&v4)],
        "live, secondary topic"
    );
    let mut proto_ids = Vec::new();
    while proto_ids.len() < 5 {
        if let Kind::Event(d) = b_proto.proto().await {
            proto_ids.push(delivered_proto(d).event.event_id);
        }
    }
    assert_eq!(proto_ids, whole, "live, protobuf");
    assert_eq!(b_sse.event_ids(5).await, whole, "live, sse");
    assert_eq!(
        ws_event_ids(&mut a_live, 2).await,
        vec![id(&ended), id(&v4)],
        "live on a hub that started in camera"
    );

    // Resumes: from memory (B) and from the stream (A), from the start and from
    // inside the in-camera period; WebSocket and SSE.
    for hub in [&hub_b, &hub_a] {
        let mut c = Client::connect(&hub.ws_url(&format!("{sittings}&since=0"))).await;
        assert_eq!(ws_event_ids(&mut c, 5).await, whole, "resume from 0");
        let mut c = Client::connect(&hub.ws_url(&format!("{sittings}&since={started_seq}"))).await;
        assert_eq!(
            ws_event_ids(&mut c, 2).await,
            vec![id(&ended), id(&v4)],
            "resume from inside the period"
        );
        let mut c = Client::connect(&hub.ws_url("/v1/ws?topics=bill.%3E&since=0")).await;
        assert_eq!(ws_event_ids(&mut c, 2).await, vec![id(&v1), id(&v4)]);
        let url = hub.http("/v1/sse?topics=sitting.%3E");
        let mut sse = SseReader::open(&url, &[("Last-Event-ID", "1".into())]).await;
        assert_eq!(sse.event_ids(4).await, whole[1..].to_vec(), "sse resume");
    }

    for hub in [&hub_a, &hub_b] {
        assert!(
            hub.wait_metric("sapha_hub_in_camera_withheld_total", 2)
                .await,
            "withheld events are counted"
        );
    }
    hub_a.shutdown().await;
    hub_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_ends_in_camera_and_other_sittings_are_unaffected() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let mut c = Client::connect(&hub.ws_url("/v1/ws?topics=sitting.%3E")).await;
    c.welcome().await;
    assert_eq!(c.json().await["type"], "ack");

    let started = lifecycle(Chamber::House, "h-1", Phase::InCameraStarted);
    let secret = bill_vote(Chamber::House, "h-1", BILL);
    let other = bill_vote(Chamber::Joint, "j-1", BILL);
    let closed = lifecycle(Chamber::House, "h-1", Phase::Closed);
    let after = bill_vote(Chamber::House, "h-1", BILL);
    for e in [&started, &secret, &other, &closed, &after] {
        publisher.publish(e).await;
    }
    let want: Vec<String> = [&started, &other, &closed, &after]
        .iter()
        .map(|e| e.event_id.clone())
        .collect();
    assert_eq!(ws_event_ids(&mut c, 4).await, want);
    assert_eq!(
        hub.metric("sapha_hub_in_camera_withheld_total").await,
        Some(1)
    );
    hub.shutdown().await;
}
