//! Fault tests: a NATS cluster node dies under the publisher and the hub, the
//! publisher is killed with SIGKILL mid-file, and a hub with 1,000 clients is
//! killed with SIGKILL. In every case each event is stored once and every client
//! sees every event once, in order.

mod hub_support;

use futures::StreamExt;
use hub_support::{Client, TestHub};
use sapha_publisher::jetstream::{JetStreamLog, StreamSettings};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Pipeline, RetryPolicy};
use sapha_subscribers::{ClientBuilder, Item};
use sapha_tests::fixtures::*;
use sapha_tests::{free_port, sapha_bin, wait_until, NatsCluster, NatsServer};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const STREAM: &str = "PARL";

fn retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        give_up_after: Duration::from_secs(60),
    }
}

/// Kills the child with SIGKILL on drop, so a failing test leaves nothing behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_cluster_node_under_publisher_and_hub_loses_nothing() {
    let mut cluster = NatsCluster::start(3);
    // Publisher and hub know only node 0; they learn the others from the cluster.
    let node0 = cluster.nodes[0].url();
    let settings = StreamSettings {
        replicas: 3,
        ..stream_settings()
    };
    // The JetStream meta leader is elected shortly after the nodes start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let log = loop {
        match JetStreamLog::open(&node0, &settings).await {
            Ok(log) => break log,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the R3 stream is not created: {e}"),
        }
    };
    let p = Arc::new(Pipeline::new(
        log,
        retry(),
        1000,
        Arc::new(Metrics::default()),
    ));

    let mut config = hub_support::test_config(&cluster.nodes[0]);
    config.nats.url = node0.clone();
    let hub = TestHub::start(config).await;
    let mut client = Client::connect(&hub.ws_url("/v1/ws?topics=bill")).await;
    client.welcome().await;
    client.json().await;

    let events = interleaved_bills(30, 10); // 300 events
    let publishing = {
        let p = p.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for e in events {
                outcomes.push(p.submit(e, "test").await);
                // Paced, so that the node dies in the middle of the stream.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcomes
        })
    };
    let got_some = client.events(80).await;
    assert!(!publishing.is_finished(), "the node dies mid-stream");
    cluster.nodes[0].kill();
    let outcomes = tokio::time::timeout(Duration::from_secs(120), publishing)
        .await
        .expect("publishing finishes on the surviving nodes")
        .unwrap();
    assert!(
        outcomes.iter().all(Result::is_ok),
        "every event accepted: {outcomes:?}"
    );

    let mut received: Vec<String> = got_some.into_iter().map(|d| d.event.event_id).collect();
    // A new stream leader is elected and the hub's consumer moves to a live node;
    // on a loaded 2-core machine that can take a while, so wait patiently.
    let killed_at = std::time::Instant::now();
    while received.len() < 300 {
        let message = client.next_message_within(Duration::from_secs(60)).await;
        let Some(tokio_tungstenite::tungstenite::Message::Text(text)) = message else {
            panic!("the connection ended after {} events", received.len());
        };
        let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        if frame["type"] == "event" {
            received.push(hub_support::delivered_json(&frame).event.event_id);
        }
    }
    eprintln!(
        "all events delivered {:?} after the node was killed",
        killed_at.elapsed()
    );
    let sent: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(received, sent, "the client saw every event once, in order");

    let stored = read_stream(&cluster.nodes[1].url(), STREAM).await;
    let ids: Vec<String> = stored.iter().map(|s| s.event.event_id.clone()).collect();
    assert_eq!(ids, sent, "the stream holds every event once, in order");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_publisher_killed_mid_file_and_rerun_stores_each_event_once() {
    let server = NatsServer::start();
    let events = interleaved_bills(200, 10); // 2,000 events
    let file = ndjson_file(&events);
    let publish = || {
        Command::new(sapha_bin())
            .args([
                "publish",
                "--nats-url",
                &server.url(),
                "--max-bytes",
                "268435456",
            ])
            .arg("--from")
            .arg(file.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sapha publish starts")
    };
    let mut first = Killed(publish());
    let url = server.url();
    let started = wait_until(Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let client = async_nats::connect(&url).await.unwrap();
            let js = async_nats::jetstream::new(client);
            match js.get_stream(STREAM).await {
                Ok(mut s) => s
                    .info()
                    .await
                    .map(|i| i.state.messages >= 300)
                    .unwrap_or(false),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(started, "the first run published some events");
    first.0.kill().unwrap(); // SIGKILL: some publish may be between send and ack
    first.0.wait().unwrap();
    let before = stream_len(&server.url(), STREAM).await;
    assert!(before < 2000, "killed before the end ({before} stored)");

    let second = publish().wait_with_output().expect("the rerun finishes");
    let summary = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{summary}");
    let line = summary.lines().last().unwrap_or_default();
    assert!(line.ends_with("0 rejected"), "{summary}");

    let stored = read_stream(&server.url(), STREAM).await;
    let ids: Vec<&str> = stored.iter().map(|s| s.event.event_id.as_str()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (2000, 2000), "every event once");
    for b in [0, 57, 199] {
        let bill = format!("b-2566-{b:04}");
        let seqs: Vec<u64> = stored
            .iter()
            .filter(|s| s.event.aggregate_id == bill)
            .map(|s| s.event.seq)
            .collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "{bill} in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_move_to_a_second_hub_when_the_first_is_killed() {
    const CLIENTS: usize = 1000;
    const EVENTS: usize = 120;
    let server = NatsServer::start();
    let publisher = hub_support::Publisher::new(&server).await;
    let hub_process = |port: u16| {
        Killed(
            Command::new(sapha_bin())
                .args(["hub", "--nats-url", &server.url(), "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["--set", "limits.max_connections_per_ip=5000"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sapha hub starts"),
        )
    };
    let (port_a, port_b) = (free_port(), free_port());
    let mut hub_a = hub_process(port_a);
    let _hub_b = hub_process(port_b);
    for port in [port_a, port_b] {
        let ready = wait_until(Duration::from_secs(30), || async move {
            reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "hub on {port} is ready");
    }

    // Every client lists hub A first, so all of them start there.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Vec<String>>(CLIENTS);
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel::<()>(CLIENTS);
    for i in 0..CLIENTS {
        let mut stream = ClientBuilder::new()
            .url(format!("ws://127.0.0.1:{port_a}"))
            .url(format!("ws://127.0.0.1:{port_b}"))
            .topic(if i % 2 == 0 { "bill" } else { "bill.*.stage" })
            .backoff(Duration::from_millis(50), Duration::from_millis(1000))
            .subscribe()
            .unwrap();
        let done = done_tx.clone();
        let connected = connected_tx.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut first = true;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            while ids.len() < EVENTS {
                let item = tokio::time::timeout_at(deadline, stream.next()).await;
                match item {
                    Ok(Some(Ok(Item::Event(d)))) => ids.push(d.event.event_id),
                    Ok(Some(Ok(Item::Connected { .. }))) if first => {
                        first = false;
                        let _ = connected.send(()).await;
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            let _ = done.send(ids).await;
        });
    }
    for _ in 0..CLIENTS {
        tokio::time::timeout(Duration::from_secs(60), connected_rx.recv())
            .await
            .expect("every client connects to hub A");
    }

    let mut sent = Vec::new();
    for i in 0..EVENTS {
        let e = hub_support::bill_stage(&format!("b-2566-{:04}", i % 7));
        publisher.publish_retrying(&e).await;
        sent.push(e.event_id.clone());
        if i == EVENTS / 3 {
            hub_a.0.kill().unwrap(); // SIGKILL, no goodbye
            hub_a.0.wait().unwrap();
        }
    }
    let mut complete = 0;
    for _ in 0..CLIENTS {
        let ids = tokio::time::timeout(Duration::from_secs(120), done_rx.recv())
            .await
            .expect("every client finishes")
            .unwrap();
        assert_eq!(ids, sent, "a client missed, repeated or reordered an event");
        complete += 1;
    }
    assert_eq!(complete, CLIENTS);
}
