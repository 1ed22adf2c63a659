//! `sapha demo`, the README's run command: publisher, hub and scenario player in
//! one process on the in-process bus. A client that starts from the beginning
//! gets every shipped scenario event once, each bill and sitting in order.

use futures::StreamExt;
use sapha_subscribers::{ClientBuilder, Item, Start};
use sapha_tests::{sapha_bin, wait_until};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_demo_serves_every_scenario_event_once_in_order() {
    let expected: usize = sapha_publisher::scenario::all_scenarios()
        .iter()
        .map(|(_, e)| e.len())
        .sum();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (hub, ingest) = (free(), free());
    let mut demo = Command::new(sapha_bin())
        .args(["demo", "--speed", "0", "--listen", &hub.to_string()])
        .args(["--ingest-listen", &ingest.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sapha demo starts");
    let ready = wait_until(Duration::from_secs(30), || async move {
        reqwest::get(format!("http://{hub}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "the demo hub is ready");
    let dashboard = reqwest::get(format!("http://{hub}/")).await.unwrap();
    assert!(dashboard.status().is_success(), "the dashboard is served");

    let mut stream = ClientBuilder::new()
        .url(format!("ws://{hub}"))
        .topic(">")
        .start(Start::Beginning)
        .subscribe()
        .unwrap();
    let mut seqs_by_aggregate: HashMap<String, Vec<u64>> = HashMap::new();
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received < expected {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(Item::Event(d)))) => {
                received += 1;
                seqs_by_aggregate
                    .entry(d.event.aggregate_id.clone())
                    .or_default()
                    .push(d.event.seq);
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("stream ended after {received} of {expected} events: {other:?}"),
        }
    }
    // The state API of the demo hub reflects every event too.
    let state_ready = wait_until(Duration::from_secs(10), || async move {
        let r: serde_json::Value = reqwest::get(format!("http://{hub}/v1/bills?limit=1"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        r["seq"].as_u64() == Some(expected as u64)
    })
    .await;
    let bill: serde_json::Value = reqwest::get(format!("http://{hub}/v1/bills/b-2564-ca-0001"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(state_ready, "the demo's state reached every event");
    assert_eq!(bill["bill"]["stage"], "ENACTED");
    assert_eq!(received, expected);
    for (aggregate, seqs) in seqs_by_aggregate {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, want, "{aggregate} in order, once");
    }
}
