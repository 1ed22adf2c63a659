//! Resume: a client that comes back with `since` gets every event it missed,
//! then the live stream, with no gap and no duplicate even while publishing
//! goes on; and history lost to retention is flagged, never skipped silently.

mod hub_support;

use async_nats::jetstream;
use hub_support::*;
use sapha_tests::NatsServer;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// (stream seq, event id, bill) of every published event, in order.
type Log = Arc<Mutex<Vec<(u64, String, String)>>>;

async fn publish_n(publisher: &Publisher, log: &Log, n: usize) {
    for i in 0..n {
        let bill = if i % 2 == 0 {
            "b-2566-0001"
        } else {
            "b-2566-0002"
        };
        let e = bill_stage(bill);
        let seq = publisher.publish(&e).await;
        log.lock()
            .unwrap()
            .push((seq, e.event_id.clone(), bill.to_owned()));
    }
}

fn bill_a_after(log: &Log, after: u64) -> Vec<(u64, String)> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(seq, _, bill)| *seq > after && bill == "b-2566-0001")
        .map(|(seq, id, _)| (*seq, id.clone()))
        .collect()
}

async fn resume_case(cache_events: usize) {
    let nats = NatsServer::start();
    let publisher = Arc::new(Publisher::new(&nats).await);
    let mut config = test_config(&nats);
    config.history.cache_events = cache_events;
    let hub = TestHub::start(config).await;
    let log: Log = Arc::default();

    // First connection: sees the start, then goes away.
    let mut first = Client::connect(&hub.ws_url("/v1/ws")).await;
    first.welcome().await;
    first.subscribe("a", &["bill.b-2566-0001"]).await;
    publish_n(&publisher, &log, 40).await;
    let seen = first.events(20).await;
    let last = seen.last().unwrap().seq;
    drop(first);

    // While it is away, more is published.
    publish_n(&publisher, &log, 100).await;

    // It comes back while publishing goes on.
    let background = {
        let (publisher, log) = (publisher.clone(), log.clone());
        tokio::spawn(async move { publish_n(&publisher, &log, 200).await })
    };
    let mut second =
        Client::connect(&hub.ws_url(&format!("/v1/ws?topics=bill.b-2566-0001&since={last}"))).await;
    second.welcome().await;
    let ack = second.json().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["since"], last);
    assert_eq!(ack["recovered"], true);
    background.await.unwrap();

    let expected = bill_a_after(&log, last);
    let mut got = Vec::new();
    let mut live_frames = 0;
    while got.len() < expected.len() {
        let f = second.json().await;
        match f["type"].as_str().unwrap() {
            "event" => got.push(delivered_json(&f)),
            "live" => live_frames += 1,
            other => panic!("unexpected {other}: {f}"),
        }
    }
    assert_eq!(live_frames, 1, "one switch from replay to live");
    let got = seq_ids(&got);
    assert_eq!(got, expected, "no gap, no duplicate, in order");

    // And nothing after: the next frame answers a ping.
    second.send(json!({"op": "ping", "id": "p"})).await;
    assert_eq!(second.json().await["id"], "p");
    hub.shutdown().await;
}

/// The replay from the ring (and every boundary between ring and stream) is
/// covered by the hub's unit tests (`hub::tests`, over the memory bus); this
/// one reads JetStream, which only a nats-server can show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_the_stream_while_publishing_has_no_gap_and_no_duplicate() {
    // A ring of 8 events cannot cover the gap: the replay reads JetStream.
    resume_case(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_past_retention_says_so_and_starts_at_the_first_available() {
    let nats = NatsServer::start();
    let publisher = Publisher::with_stream(
        &nats,
        jetstream::stream::Config {
            max_messages: 5,
            ..Default::default()
        },
    )
    .await;
    let mut seqs = Vec::new();
    for _ in 0..12 {
        seqs.push(publisher.publish(&bill_stage("b-2566-0001")).await);
    }
    let mut config = test_config(&nats);
    config.history.cache_events = 0;
    let hub = TestHub::start(config).await;

    let mut client = Client::connect(&hub.ws_url("/v1/ws")).await;
    let welcome = client.welcome().await;
    assert_eq!(welcome["seq"], seqs[11]);
    assert_eq!(welcome["first_seq"], seqs[7]);
    client
        .send(
            json!({"op": "subscribe", "id": "r", "topics": ["bill.b-2566-0001"], "since": seqs[1]}),
        )
        .await;
    let ack = client.json().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["recovered"], false);
    assert_eq!(ack["first_seq"], seqs[7]);
    let got = client.events(5).await;
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs[7..]);
    let live = client.json().await;
    assert_eq!(
        (live["type"].as_str(), live["seq"].as_u64()),
        (Some("live"), Some(seqs[11]))
    );

    // A resume inside what is still stored is recovered.
    let mut other =
        Client::connect(&hub.ws_url(&format!("/v1/ws?topics=bill.b-2566-0001&since={}", seqs[9])))
            .await;
    other.welcome().await;
    let ack = other.json().await;
    assert_eq!(ack["recovered"], true);
    let got = other.events(2).await;
    assert_eq!(got.iter().map(|d| d.seq).collect::<Vec<_>>(), seqs[10..]);

    // `since` is only for a connection's first subscribe.
    other
        .send(json!({"op": "subscribe", "id": "again", "topics": ["bill.b-2566-0002"], "since": 1}))
        .await;
    let f = other.json().await;
    let f = if f["type"] == "live" {
        other.json().await
    } else {
        f
    };
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str()),
        (Some("error"), Some("since_not_first"))
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_before_the_hub_knows_the_stream_waits_for_it() {
    let mut nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut published = Vec::new();
    for _ in 0..5 {
        let e = bill_stage("b-2566-0001");
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    drop(publisher);
    // The hub starts while NATS is down, so its fan-out has no position yet.
    nats.kill();
    let hub = TestHub::start_unready(test_config(&nats)).await;
    let since = published[1].0;
    let mut client =
        Client::connect(&hub.ws_url(&format!("/v1/ws?topics=bill.b-2566-0001&since={since}")))
            .await;
    client.welcome().await;

    nats.restart();
    hub.wait_ready().await;
    let got = seq_ids(&client.events(3).await);
    assert_eq!(
        got,
        published[2..],
        "what came after since, not a skip to live"
    );
    hub.shutdown().await;
}

/// A position past the end of the stream (it was recreated, or restored from a
/// backup, with fewer events) does not exist: the ack says `recovered: false`
/// with `first_seq`, and every stored event is replayed, on WebSocket and on
/// SSE with `Last-Event-ID`, checked against JetStream's bounds. (Other
/// positions past the end, and with or without a ring, are the hub's unit
/// tests' `resume_from_past_the_end_*`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_past_the_end_of_the_stream_is_not_recovered() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut published = Vec::new();
    for _ in 0..5 {
        let e = bill_stage("b-2566-0001");
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let cache_events = 2;
    let mut config = test_config(&nats);
    config.history.cache_events = cache_events;
    let hub = TestHub::start(config).await;
    assert!(hub.wait_metric("sapha_hub_last_seq", 5).await);
    for since in ["6", "18446744073709551615"] {
        let url = hub.ws_url(&format!("/v1/ws?topics=%3E&since={since}"));
        let mut client = Client::connect(&url).await;
        client.welcome().await;
        let ack = client.json().await;
        assert_eq!(
            (
                ack["type"].as_str(),
                ack["recovered"].as_bool(),
                ack["first_seq"].as_u64()
            ),
            (Some("ack"), Some(false), Some(1)),
            "since={since} (cache {cache_events}): {ack}"
        );
        assert_eq!(seq_ids(&client.events(5).await), published, "since={since}");
        assert_eq!(client.json().await["type"], "live");
    }
    // SSE: the browser's `Last-Event-ID`.
    let mut sse = SseReader::open(
        &hub.http("/v1/sse?topics=%3E"),
        &[("last-event-id", "50".to_owned())],
    )
    .await;
    assert_eq!(sse.next().await.event.as_deref(), Some("welcome"));
    let ack: serde_json::Value = serde_json::from_str(&sse.next().await.data).unwrap();
    assert_eq!(ack["recovered"], false, "{ack}");
    let ids: Vec<String> = published.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(sse.event_ids(5).await, ids);
    hub.shutdown().await;
}

/// A stream recreated with *more* events than a client's position: the
/// position looks valid, and only the epoch tells. The hub says
/// `recovered: false` for a position of the old epoch and replays the new
/// stream from its start; a position of the current epoch is recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_of_a_recreated_stream_is_told_apart_by_its_epoch() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    for _ in 0..5 {
        publisher.publish(&bill_stage("b-2566-0001")).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    let mut client = Client::connect(&hub.ws_url("/v1/ws")).await;
    let old_epoch = client.welcome().await["epoch"]
        .as_str()
        .expect("welcome carries the epoch")
        .to_owned();
    assert!(!old_epoch.is_empty());
    drop(client);
    hub.shutdown().await;

    // Restored from another backup: a new stream, with 8 other events.
    publisher.js.delete_stream("PARL").await.unwrap();
    let publisher = Publisher::new(&nats).await;
    let mut published = Vec::new();
    for _ in 0..8 {
        let e = bill_stage("b-2566-0002");
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let hub = TestHub::start(test_config(&nats)).await;

    let url = hub.ws_url(&format!("/v1/ws?topics=%3E&since=5&epoch={old_epoch}"));
    let mut stale = Client::connect(&url).await;
    let new_epoch = stale.welcome().await["epoch"].as_str().unwrap().to_owned();
    assert_ne!(new_epoch, old_epoch, "a recreated stream has a new epoch");
    let ack = stale.json().await;
    assert_eq!(
        (
            ack["recovered"].as_bool(),
            ack["first_seq"].as_u64(),
            ack["epoch"].as_str()
        ),
        (Some(false), Some(1), Some(new_epoch.as_str())),
        "{ack}"
    );
    assert_eq!(seq_ids(&stale.events(8).await), published);

    let url = hub.ws_url(&format!("/v1/ws?topics=%3E&since=5&epoch={new_epoch}"));
    let mut current = Client::connect(&url).await;
    current.welcome().await;
    let ack = current.json().await;
    assert_eq!(ack["recovered"], true, "{ack}");
    assert_eq!(seq_ids(&current.events(3).await), published[5..]);
    hub.shutdown().await;
}

/// The stream's epoch as the hub computes it (its creation time).
async fn stream_epoch(publisher: &Publisher) -> String {
    let mut stream = publisher.js.get_stream("PARL").await.unwrap();
    let info = stream.info().await.unwrap();
    format!("{:x}", info.created.unix_timestamp_nanos())
}

/// The epoch of a new connection's welcome, and the state API's ETag.
async fn epoch_and_etag(hub: &TestHub) -> (String, String) {
    let mut client = Client::connect(&hub.ws_url("/v1/ws")).await;
    let epoch = client.welcome().await["epoch"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = reqwest::get(hub.http("/v1/bills")).await.unwrap();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (epoch, etag)
}

/// The README's order: the hub first, then the stream. The hub learns the
/// stream's epoch when it appears (welcome frames and ETags carry it, not an
/// empty one), and so it notices when the stream is recreated under it: its
/// clients are closed (1001), a resume from the old stream's position is
/// `recovered: false` and gets the new stream from its first event, and the
/// state is the new stream's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_before_the_stream_learns_its_epoch_and_sees_it_reset() {
    let nats = NatsServer::start();
    let hub = TestHub::start_unready(test_config(&nats)).await;
    let publisher = Publisher::new(&nats).await;
    for _ in 0..5 {
        publisher.publish(&bill_stage("b-2566-0001")).await;
    }
    hub.wait_ready().await;
    assert!(hub.wait_metric("sapha_hub_state_seq", 5).await);
    let old_epoch = stream_epoch(&publisher).await;
    let (epoch, etag) = epoch_and_etag(&hub).await;
    assert_eq!(epoch, old_epoch, "the welcome carries the stream's epoch");
    assert!(
        etag.starts_with(&format!("\"{old_epoch}-5-")),
        "the ETag carries it too: {etag}"
    );

    // A client of the old stream, live.
    let mut old_client = Client::connect(&hub.ws_url("/v1/ws?topics=%3E")).await;
    old_client.welcome().await;
    old_client.json().await; // its ack

    // The stream is recreated under the running hub, with more events.
    publisher.js.delete_stream("PARL").await.unwrap();
    let publisher = Publisher::new(&nats).await;
    let mut published = Vec::new();
    for _ in 0..8 {
        let e = bill_stage("b-2566-0002");
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let new_epoch = stream_epoch(&publisher).await;
    assert_ne!(new_epoch, old_epoch);
    assert_eq!(
        old_client.close_code().await,
        Some(1001),
        "the old stream's clients are told to go and resume"
    );
    let seen = sapha_tests::wait_until(WAIT, || {
        let (hub, new_epoch) = (&hub, new_epoch.clone());
        async move {
            let (epoch, etag) = epoch_and_etag(hub).await;
            epoch == new_epoch && etag.starts_with(&format!("\"{new_epoch}-8-"))
        }
    })
    .await;
    assert!(
        seen,
        "the hub serves the new stream: {:?}, want {new_epoch}-8",
        epoch_and_etag(&hub).await
    );
    let r: serde_json::Value = reqwest::get(hub.http("/v1/bills"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bills: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bill_id"].as_str().unwrap())
        .collect();
    assert_eq!(bills, ["b-2566-0002"], "the state is the new stream's");

    let url = hub.ws_url(&format!("/v1/ws?topics=%3E&since=5&epoch={old_epoch}"));
    let mut stale = Client::connect(&url).await;
    stale.welcome().await;
    let ack = stale.json().await;
    assert_eq!(
        (
            ack["recovered"].as_bool(),
            ack["first_seq"].as_u64(),
            ack["epoch"].as_str()
        ),
        (Some(false), Some(1), Some(new_epoch.as_str())),
        "{ack}"
    );
    assert_eq!(seq_ids(&stale.events(8).await), published);
    hub.shutdown().await;
}
