//! The Rust client against real hubs: it resumes after its connection is cut
//! and fails over to a second hub, with no gap and no duplicate while events
//! keep being published.

mod hub_support;
mod subscribers_support;

use futures::StreamExt;
use hub_support::*;
use sapha_subscribers::{ClientBuilder, EventStream, Item};
use sapha_tests::NatsServer;
use std::time::Duration;
use subscribers_support::*;

/// Reads the stream until `n` events arrived (or the deadline), calling
/// `during` once after `at` events. Returns (seq, event id) and the other items.
async fn collect(
    stream: &mut EventStream,
    n: usize,
    at: usize,
    mut during: impl FnMut(),
) -> (Vec<(u64, String)>, Vec<Item>) {
    let mut events = Vec::new();
    let mut others = Vec::new();
    let mut fired = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while events.len() < n {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events in time", events.len()))
            .expect("the stream goes on")
            .expect("no client error");
        match item {
            Item::Event(d) => events.push((d.seq, d.event.event_id)),
            other => others.push(other),
        }
        if !fired && events.len() >= at {
            fired = true;
            during();
        }
    }
    (events, others)
}

async fn connected(stream: &mut EventStream) {
    let item = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert!(matches!(item, Some(Ok(Item::Connected { .. }))), "{item:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_the_connection_is_cut_with_no_gap_and_no_duplicate() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let proxy = Proxy::start(hub.addr).await;
    let mut stream = ClientBuilder::new()
        .url(format!("ws://{}", proxy.addr))
        .topic("bill")
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .subscribe()
        .unwrap();
    connected(&mut stream).await;

    const N: usize = 200;
    let background = Background::start(&publisher, N, Duration::from_millis(2), |i| {
        bill_stage(if i % 2 == 0 {
            "b-2566-0001"
        } else {
            "b-2566-0002"
        })
    });
    let (got, others) = collect(&mut stream, N, 50, || proxy.cut()).await;
    let published = background.finish().await;
    assert_eq!(got, published, "every event once, in stream order");
    let reconnects = others
        .iter()
        .filter(|i| {
            matches!(
                i,
                Item::Connected {
                    resumed_after: Some(_),
                    ..
                }
            )
        })
        .count();
    assert!(reconnects >= 1, "the client resumed: {others:?}");
    assert!(others
        .iter()
        .any(|i| matches!(i, Item::Disconnected { .. })));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_a_second_hub() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub_a = TestHub::start(test_config(&nats)).await;
    let hub_b = TestHub::start(test_config(&nats)).await;
    let (a, b) = (hub_a.ws_url("/v1/ws"), hub_b.ws_url("/v1/ws"));
    let mut stream = ClientBuilder::new()
        .url(&a)
        .url(&b)
        .topic(">")
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .subscribe()
        .unwrap();
    connected(&mut stream).await;

    const N: usize = 150;
    let background = Background::start(&publisher, N, Duration::from_millis(2), |_| {
        bill_stage("b-2566-0003")
    });
    // Read 40 events, then stop hub A (it says "going away") while publishing goes on.
    let (mut got, _) = collect(&mut stream, 40, usize::MAX, || {}).await;
    hub_a.shutdown().await;
    let (rest, others) = collect(&mut stream, N - 40, usize::MAX, || {}).await;
    got.extend(rest);
    let published = background.finish().await;
    assert_eq!(got, published, "every event once, in stream order");
    let moved = others
        .iter()
        .any(|i| matches!(i, Item::Connected { url, .. } if *url == b));
    assert!(moved, "the client moved to hub B: {others:?}");
    hub_b.shutdown().await;
}

/// A checkpoint past the end of the stream (recreated, or restored with fewer
/// events): the client reports `StreamReset` and delivers the stream again
/// from its first event, instead of waiting for positions that never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_past_the_end_of_the_stream_starts_again_from_its_first_event() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut published = Vec::new();
    for _ in 0..5 {
        let e = bill_stage("b-2566-0001");
        published.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let hub = TestHub::start(test_config(&nats)).await;
    let mut stream = ClientBuilder::new()
        .url(hub.ws_url(""))
        .topic("bill")
        .start(sapha_subscribers::Start::After(50))
        .subscribe()
        .unwrap();
    let (got, others) = collect(&mut stream, 5, 5, || {}).await;
    assert_eq!(got, published, "the whole stream, once, in order");
    assert!(
        others.iter().any(|i| matches!(
            i,
            Item::StreamReset {
                since: 50,
                first_seq: 1
            }
        )),
        "the reset is reported: {others:?}"
    );
    hub.shutdown().await;
}

/// The stream is recreated with *more* events than the client had read, and
/// the client moves to a hub of the new stream: it sends back the epoch of its
/// position, hears that it is not the stream's, reports `StreamReset` and
/// delivers the new stream from its first event (not from seq 6 on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_recreated_stream_starts_again_from_its_first_event() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut old = Vec::new();
    for _ in 0..5 {
        let e = bill_stage("b-2566-0001");
        old.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let hub_a = TestHub::start(test_config(&nats)).await;
    // Hub B's address is reserved now; it starts once the stream is recreated.
    let b_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b_addr = b_listener.local_addr().unwrap();
    drop(b_listener);
    let mut stream = ClientBuilder::new()
        .url(hub_a.ws_url("/v1/ws"))
        .url(format!("ws://{b_addr}/v1/ws"))
        .topic("bill")
        .start(sapha_subscribers::Start::Beginning)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .subscribe()
        .unwrap();
    let (got, _) = collect(&mut stream, 5, usize::MAX, || {}).await;
    assert_eq!(got, old);
    hub_a.shutdown().await;

    publisher.js.delete_stream("PARL").await.unwrap();
    let publisher = Publisher::new(&nats).await;
    let mut new = Vec::new();
    for _ in 0..8 {
        let e = bill_stage("b-2566-0002");
        new.push((publisher.publish(&e).await, e.event_id.clone()));
    }
    let hub_b = TestHub::start_at(test_config(&nats), b_addr).await;
    let (got, others) = collect(&mut stream, 8, usize::MAX, || {}).await;
    assert_eq!(got, new, "the new stream from its first event");
    assert!(
        others.iter().any(|i| matches!(
            i,
            Item::StreamReset {
                since: 5,
                first_seq: 1
            }
        )),
        "{others:?}"
    );
    hub_b.shutdown().await;
}
