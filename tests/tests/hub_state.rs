//! The state API against a real nats-server: what is true now, at a stream
//! position; snapshots in NATS; snapshot-then-subscribe with no gap and no
//! duplicate; two hubs agreeing.

mod hub_support;

use hub_support::*;
use sapha_proto::projection::Projection;
use sapha_proto::Event;
use sapha_tests::{scenario, NatsServer};
use serde_json::Value;
use std::time::Duration;

fn sittings() -> Vec<Event> {
    let mut events = scenario("joint-2564-09-10.ndjson");
    events.extend(scenario("senate-2566-02-28.ndjson"));
    events
}

async fn get(hub: &TestHub, path: &str) -> (u16, Value, Option<String>) {
    let r = reqwest::get(hub.http(path)).await.unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, etag)
}

/// Waits until the hub's state reflects position `seq`.
async fn wait_state(hub: &TestHub, seq: u64) {
    assert!(
        hub.wait_metric("sapha_hub_state_seq", seq).await,
        "the state never reached {seq}"
    );
}

#[tokio::test]
async fn the_state_answers_what_is_true_now() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut last = 0;
    for e in sittings() {
        last = publisher.publish(&e).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, last).await;

    // A bill, with its full timeline and the vote that moved it.
    let (status, body, etag) = get(&hub, "/v1/bills/b-2564-ca-0001").await;
    assert_eq!(status, 200);
    assert_eq!(body["seq"], last);
    let bill = &body["bill"];
    assert_eq!(bill["stage"], "ENACTED");
    assert_eq!(bill["timeline"].as_array().unwrap().len(), 10);
    // The stage convention: the third reading's vote moves the bill to APPROVED.
    let third = &bill["timeline"][5];
    assert_eq!(third["to"], "APPROVED");
    assert_eq!(third["decided_by"]["vote_id"], "vote-1");
    assert_eq!(third["decided_by"]["result"], "passed");
    assert_eq!(bill["proposer"], "mps_and_senators");

    // The same position again: 304.
    let r = reqwest::Client::new()
        .get(hub.http("/v1/bills/b-2564-ca-0001"))
        .header("if-none-match", etag.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);

    // Search in Thai (no word breaks), in English in any case, by abbreviation.
    let (_, body, _) = get(
        &hub,
        "/v1/bills?q=%E0%B8%A1%E0%B8%B2%E0%B8%95%E0%B8%A3%E0%B8%B2%2083",
    )
    .await;
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["items"][0]["match"]["text"], "มาตรา 83");
    let (_, body, _) = get(&hub, "/v1/bills?q=public%20HEALTH").await;
    assert_eq!(body["items"][0]["bill_id"], "b-2565-0087");
    let (_, body, _) = get(&hub, "/v1/bills?q=%E0%B8%9E.%E0%B8%A3.%E0%B8%9A.%E0%B8%81%E0%B8%B2%E0%B8%A3%E0%B8%AA%E0%B8%B2%E0%B8%98%E0%B8%B2%E0%B8%A3%E0%B8%93%E0%B8%AA%E0%B8%B8%E0%B8%82").await;
    assert_eq!(
        body["items"][0]["bill_id"], "b-2565-0087",
        "พ.ร.บ.การสาธารณสุข: {body}"
    );

    // Filters: by stage and chamber; by day moved.
    let (_, body, _) = get(
        &hub,
        "/v1/bills?stage=HOUSE_SENATE_AMENDMENTS&chamber=house",
    )
    .await;
    assert_eq!(body["items"][0]["bill_id"], "b-2565-0087");
    assert_eq!(body["total"], 1);
    let (_, body, _) = get(&hub, "/v1/bills?moved_on=2021-09-10").await;
    assert_eq!(body["items"][0]["bill_id"], "b-2564-ca-0001");

    // Sittings by date range and chamber; one sitting in full.
    let (_, body, _) = get(
        &hub,
        "/v1/sittings?from=2023-02-01&to=2023-02-28&chamber=senate",
    )
    .await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["items"][0]["sitting_id"], "senate-2566-2-28");
    assert_eq!(body["items"][0]["number"], 28);
    let (_, body, _) = get(&hub, "/v1/sittings/joint-2564-1-10").await;
    let s = &body["sitting"];
    assert_eq!(s["status"], "closed");
    assert_eq!(s["quorum"]["required"], 365);
    assert_eq!(s["quorum"]["in_office"], 730);
    assert_eq!(s["votes"][0]["result"], "passed");
    assert_eq!(s["votes"][0]["counts"].as_array().unwrap().len(), 6);
    let (_, body, _) = get(&hub, "/v1/sittings/live").await;
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        0,
        "both sittings closed"
    );

    // Errors: the body used elsewhere, naming what is wrong.
    let (status, body, _) = get(&hub, "/v1/bills/b-0000-0000").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body, _) = get(&hub, "/v1/bills?stage=HOUSE_R9").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "bad_parameter");
    assert_eq!(body["parameter"], "stage");
    let (status, body, _) = get(&hub, "/v1/sittings?from=2023-13-01").await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("from")));
}

#[tokio::test]
async fn nothing_of_an_in_camera_session_reaches_the_state() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut last = 0;
    let mut events = scenario("senate-2566-02-28.ndjson");
    // A vote smuggled into the in-camera part (the publisher would refuse it).
    let at = events
        .iter()
        .position(|e| {
            e.body.kind() == "sitting.lifecycle" && e.to_json().contains("in_camera_started")
        })
        .unwrap();
    let mut smuggled = events
        .iter()
        .find(|e| e.body.kind() == "vote.opened")
        .unwrap()
        .clone();
    smuggled.event_id = "e-smuggled".into();
    if let sapha_proto::Body::VoteOpened(v) = &mut smuggled.body {
        v.vote_id = "vote-secret".into();
    }
    events.insert(at + 1, smuggled);
    for e in &events {
        last = publisher.publish(e).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, last).await;
    let (_, body, _) = get(&hub, "/v1/sittings/senate-2566-2-28").await;
    let votes: Vec<&str> = body["sitting"]["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vote_id"].as_str().unwrap())
        .collect();
    assert!(!votes.contains(&"vote-secret"), "{votes:?}");
    assert_eq!(votes.len(), 3);
}

#[tokio::test]
async fn a_restarted_hub_starts_from_its_snapshot_and_a_bad_one_means_a_full_replay() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut last = 0;
    for e in sittings() {
        last = publisher.publish(&e).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, last).await;
    let (_, before, before_tag) = get(&hub, "/v1/bills?limit=200").await;
    // Shutdown writes a snapshot.
    hub.shutdown().await;
    let store = publisher.js.get_object_store("PARL_STATE").await.unwrap();
    assert!(store.info("state").await.is_ok(), "no snapshot in NATS");

    // A new hub loads it: it starts at the snapshot's position, replaying nothing.
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, last).await;
    assert_eq!(hub.metric("sapha_hub_state_snapshot_seq").await, Some(last));
    let (_, after, after_tag) = get(&hub, "/v1/bills?limit=200").await;
    assert_eq!(after, before);
    assert_eq!(after_tag, before_tag);
    // More events after the snapshot are replayed on top of it.
    let mut bills = hub_support::bill_stage("b-2567-0999");
    bills.occurred_at = "2024-06-03T00:00:00Z".parse().unwrap();
    let next = publisher.publish(&bills).await;
    wait_state(&hub, next).await;
    hub.shutdown().await;

    // A corrupt snapshot: a full replay gives the same answers.
    store
        .put("state", &mut b"{ not a snapshot".as_ref())
        .await
        .unwrap();
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, next).await;
    let (_, body, _) = get(&hub, "/v1/bills/b-2564-ca-0001").await;
    assert_eq!(body["bill"]["stage"], "ENACTED");
    let (status, _, _) = get(&hub, "/v1/bills/b-2567-0999").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn state_at_n_then_live_from_n_equals_a_full_replay_and_two_hubs_agree() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let events = sittings();
    let (early, late) = events.split_at(60);
    let mut last = 0;
    for e in early {
        last = publisher.publish(e).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, last).await;

    // Publish the rest while a client reads the state, then subscribes from it.
    let rest = late.to_vec();
    let js = publisher.js.clone();
    let writer = tokio::spawn(async move {
        let p = Publisher { js };
        let mut last = 0;
        for e in rest {
            last = p.publish(&e).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (_, snapshot, _) = get(&hub, "/v1/sittings/senate-2566-2-28").await;
    let n = snapshot["seq"].as_u64().unwrap();
    let mut client = Client::connect(&hub.ws_url("/v1/ws")).await;
    client.welcome().await;
    client
        .send(serde_json::json!({"op": "subscribe", "id": "s", "topics": [">"], "since": n}))
        .await;
    let ack = client.json().await;
    assert_eq!(ack["recovered"], true, "{ack}");
    let last = writer.await.unwrap();
    assert!(
        n < last,
        "the state was read while events were still being published"
    );
    let live = client.events((last - n) as usize).await;
    assert_increasing(&live);
    assert_eq!(
        live.first().unwrap().seq,
        n + 1,
        "no gap after the state's position"
    );

    // The state at n, then the live events, folded: the same as a full replay.
    let mut folded: Projection = Projection::default();
    let mut replay: Projection = Projection::default();
    let all: Vec<Event> = events.clone();
    for (i, e) in all.iter().enumerate() {
        replay.apply(i as u64 + 1, e);
        if (i as u64) < n {
            folded.apply(i as u64 + 1, e);
        }
    }
    assert_eq!(
        serde_json::to_value(&folded.sittings["senate-2566-2-28"]).unwrap(),
        snapshot["sitting"],
        "the state at n is the fold of the first n events"
    );
    for d in &live {
        folded.apply(d.seq, &d.event);
    }
    assert_eq!(folded, replay);

    // A second hub, started now (a full replay), agrees with the first at the same position.
    let other = TestHub::start(test_config(&nats)).await;
    wait_state(&other, last).await;
    wait_state(&hub, last).await;
    for path in [
        "/v1/bills?limit=200",
        "/v1/sittings?limit=200",
        "/v1/sittings/joint-2564-1-10",
        "/v1/bills/b-2565-0087",
    ] {
        let (_, a, tag_a) = get(&hub, path).await;
        let (_, b, tag_b) = get(&other, path).await;
        assert_eq!(a, b, "{path}");
        assert_eq!(tag_a, tag_b, "{path}");
    }
}

#[tokio::test]
async fn the_rust_client_reads_a_bill_then_follows_it_from_there() {
    use futures::StreamExt;
    use sapha_subscribers::{snapshot_then_subscribe, ClientBuilder, Item};
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let bill: Vec<Event> = scenario("senate-2566-02-28.ndjson")
        .into_iter()
        .filter(|e| e.aggregate_id == "b-2565-0087")
        .collect();
    let (before, after) = bill.split_at(6);
    let mut last = 0;
    for e in before {
        last = publisher.publish(e).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    wait_state(&hub, last).await;

    let client = ClientBuilder::new().url(hub.ws_url("/v1/ws"));
    let (mut state, mut events) = snapshot_then_subscribe(client, "b-2565-0087")
        .await
        .unwrap();
    assert_eq!(state.stage, sapha_proto::stage::Stage::HouseR3);
    assert_eq!(state.timeline.len(), 6);
    // The rest of the bill, with another bill's events between.
    for (i, e) in after.iter().enumerate() {
        publisher
            .publish(&hub_support::bill_stage(&format!("b-2567-{i:04}")))
            .await;
        last = publisher.publish(e).await;
    }
    let mut seen = Vec::new();
    while seen.len() < after.len() {
        let item = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("the later events arrive")
            .unwrap()
            .unwrap();
        if let Item::Event(d) = item {
            if let sapha_proto::Body::BillStageChanged(b) = &d.event.body {
                state.apply(b, &d.event, d.seq);
            }
            seen.push(d.event.event_id);
        }
    }
    let expected: Vec<String> = after.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        seen, expected,
        "every later event once, in order, and only this bill's"
    );
    wait_state(&hub, last).await;
    let (_, body, _) = get(&hub, "/v1/bills/b-2565-0087").await;
    assert_eq!(
        serde_json::to_value(&state).unwrap()["timeline"],
        body["bill"]["timeline"]
    );
    assert_eq!(body["bill"]["stage"], "HOUSE_SENATE_AMENDMENTS");
}
