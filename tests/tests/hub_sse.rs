//! SSE: `/v1/sse?topics=...` streams events with `id:` = stream sequence, and a
//! reconnect with `Last-Event-ID` resumes after it.

mod hub_support;

use hub_support::*;
use sapha_tests::NatsServer;

/// The next `n` `event` messages, as (id, event id); `id:` must be the stream sequence.
async fn events(sse: &mut SseReader, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = sse.next().await;
        if m.event.as_deref() == Some("event") {
            let v: serde_json::Value = serde_json::from_str(&m.data).unwrap();
            let id: u64 = m.id.unwrap().parse().unwrap();
            assert_eq!(v["seq"], id, "id: is the stream sequence");
            out.push((id, v["event"]["event_id"].as_str().unwrap().to_owned()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_with_ids_and_resumes_from_last_event_id() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;

    let url = hub.http("/v1/sse?topics=bill.b-2566-0001");
    let mut sse = SseReader::open(&url, &[]).await;
    let welcome = sse.next().await;
    assert_eq!(welcome.event.as_deref(), Some("welcome"));
    let ack = sse.next().await;
    assert_eq!(ack.event.as_deref(), Some("ack"));

    let mut published = Vec::new();
    for i in 0..6 {
        let bill = if i % 2 == 0 {
            "b-2566-0001"
        } else {
            "b-2566-0002"
        };
        let e = bill_stage(bill);
        let seq = publisher.publish(&e).await;
        if bill == "b-2566-0001" {
            published.push((seq, e.event_id.clone()));
        }
    }
    let got = events(&mut sse, 3).await;
    assert_eq!(got, published);
    let last = got[1].0;
    drop(sse);

    // More arrives while it is away; it comes back with Last-Event-ID.
    for _ in 0..2 {
        let e = bill_stage("b-2566-0001");
        let seq = publisher.publish(&e).await;
        published.push((seq, e.event_id.clone()));
    }
    let mut sse = SseReader::open(&url, &[("Last-Event-ID", last.to_string())]).await;
    sse.next().await; // welcome
    let ack = sse.next().await;
    assert_eq!(ack.event.as_deref(), Some("ack"));
    let ack: serde_json::Value = serde_json::from_str(&ack.data).unwrap();
    assert_eq!(
        (ack["since"].as_u64(), ack["recovered"].as_bool()),
        (Some(last), Some(true))
    );
    let got = events(&mut sse, 3).await;
    assert_eq!(got, published[2..]);

    // A bad topic is refused before streaming.
    let r = reqwest::get(hub.http("/v1/sse?topics=bill.B"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_topic");
    let r = reqwest::get(hub.http("/v1/sse")).await.unwrap();
    assert_eq!(r.status(), 400);
    hub.shutdown().await;
}
