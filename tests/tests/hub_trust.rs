//! What the hub does with events the publisher would have refused, written
//! straight into JetStream (as a writer that bypasses `sapha publish` could):
//! each kind is counted in `sapha_hub_events_suspect_total{kind}` and
//! delivered as stored, the same live and replayed.

mod hub_support;

use hub_support::*;
use sapha_proto::stage::Stage::*;
use sapha_tests::fixtures::bill_event;
use sapha_tests::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_publisher_would_refuse_are_counted_and_delivered_as_stored() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let mut live = Client::connect(&hub.ws_url("/v1/ws?topics=bill.%3E")).await;
    live.welcome().await;
    live.json().await; // the ack

    let bill = "b-2566-0777";
    let first = bill_event(bill, 1, None, Proposed);
    let mut second_copy = bill_event(bill, 1, None, Proposed);
    second_copy.event_id = "e-b-2566-0777-1-again".into();
    let gap = bill_event(bill, 3, Some(Proposed), HouseR1);
    let wrong_stage = bill_event(bill, 4, Some(HouseR2), HouseR3);
    let mut broken = bill_event(bill, 5, Some(HouseR3), SenateR1);
    broken.source = String::new();
    let stored = [first, second_copy, gap, wrong_stage, broken];
    let mut seqs = Vec::new();
    for e in &stored {
        seqs.push(publisher.publish(e).await);
    }
    let got: Vec<u64> = live
        .events(stored.len())
        .await
        .iter()
        .map(|d| d.seq)
        .collect();
    assert_eq!(got, seqs, "delivered as stored");
    for kind in ["duplicate", "seq_gap", "illegal_stage", "contract"] {
        let name = format!("sapha_hub_events_suspect_total{{kind=\"{kind}\"}}");
        assert_eq!(hub.metric(&name).await, Some(1), "{kind}");
    }
    // A resume from the start gets exactly what live clients got.
    let mut replay = Client::connect(&hub.ws_url("/v1/ws?topics=bill.%3E&since=0")).await;
    replay.welcome().await;
    replay.json().await;
    let again: Vec<u64> = replay
        .events(stored.len())
        .await
        .iter()
        .map(|d| d.seq)
        .collect();
    assert_eq!(again, seqs);
    hub.shutdown().await;
}
