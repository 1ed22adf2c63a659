//! `sapha demo`, the README's run command: publisher, hub and scenario player in
//! one process on the in-process bus.
//!
//! - At start, within a bounded wait: every bill is in the state API at its
//!   stage as of the scenarios' end, `q=ภาษี` matches, and a sitting is live
//!   with a vote being counted; after the first live sitting closed, the next
//!   one is live with its vote, and the loop replays a sitting with fresh ids.
//! - `--speed max`: a client that starts from the beginning gets every shipped
//!   scenario event once, each bill and sitting in order, then the live loop.

use futures::StreamExt;
use sapha_subscribers::{ClientBuilder, Item, Start};
use sapha_tests::sapha_bin;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `sapha demo`, killed on drop.
struct Demo {
    child: Child,
    hub: SocketAddr,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sapha demo` on port 0 with `args`, and reads the hub's address
/// from its startup text (`dashboard   http://<addr>/`).
fn start_demo(args: &[&str]) -> Demo {
    let mut child = Command::new(sapha_bin())
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--ingest-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sapha demo starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut hub = None;
    for line in lines.by_ref() {
        let line = line.expect("the demo's startup text");
        if let Some(url) = line.trim().strip_prefix("dashboard") {
            let addr = url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches('/');
            hub = Some(addr.parse().expect("the dashboard's address"));
            break;
        }
    }
    // Keep reading, so that the demo never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Demo {
        child,
        hub: hub.expect("the demo printed its dashboard address"),
    }
}

/// GETs a state API path; `None` while the hub is not ready, or on a 429
/// (the state API is rate-limited per address).
async fn get(hub: SocketAddr, path: &str, query: &[(&str, &str)]) -> Option<Value> {
    let response = reqwest::Client::new()
        .get(format!("http://{hub}{path}"))
        .query(query)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Polls `condition` every 100 ms (under the state API's 20 requests a second)
/// until it gives a value or `deadline` passes.
async fn poll<T, F, Fut>(deadline: Duration, mut condition: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = condition().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live sitting `id` once it has a vote opened, with its threshold (the
/// vote being counted).
async fn live_with_vote(hub: SocketAddr, id: &str) -> Option<Value> {
    let live = get(hub, "/v1/sittings/live", &[]).await?;
    let sitting = live["items"]
        .as_array()?
        .iter()
        .find(|s| s["sitting_id"] == id)?
        .clone();
    let vote = sitting["votes"].as_array()?.first()?;
    (vote["opened_at"].is_string() && vote["threshold"].is_object()).then_some(sitting)
}

fn scenario_bills() -> HashSet<String> {
    sapha_publisher::scenario::all_scenarios()
        .iter()
        .flat_map(|(_, events)| events.iter())
        .filter(|e| e.body.kind() == "bill.stage_changed")
        .map(|e| e.aggregate_id.clone())
        .collect()
}

#[tokio::test]
async fn the_demo_shows_every_bill_and_a_live_vote_at_start_and_keeps_a_sitting_live() {
    // Waits of at most 0.5 s: the first vote is on for about 4 s before its
    // sitting closes, the loop comes round within a minute.
    let demo = start_demo(&["--max-gap-secs", "0.5"]);
    let hub = demo.hub;
    let wait = Duration::from_secs(90);

    // At start: the first live sitting, with its vote being counted.
    let first = poll(wait, || live_with_vote(hub, "joint-2564-1-10")).await;
    assert!(
        first.is_some(),
        "the joint sitting is live with a vote at start"
    );
    // The bills went first, at once: every one is there now, at its final stage.
    let bills = get(hub, "/v1/bills", &[("limit", "1")]).await.unwrap();
    assert_eq!(bills["total"].as_u64(), Some(scenario_bills().len() as u64));
    let amendment = get(hub, "/v1/bills/b-2564-ca-0001", &[]).await.unwrap();
    assert_eq!(amendment["bill"]["stage"], "ENACTED");
    let tax = get(hub, "/v1/bills", &[("q", "ภาษี")]).await.unwrap();
    assert!(tax["total"].as_u64() > Some(0), "q=ภาษี matches: {tax}");

    // The first live sitting closes; the next one is live with its vote.
    let closed = poll(wait, || async {
        let s = get(hub, "/v1/sittings/joint-2564-1-10", &[]).await?;
        (s["sitting"]["status"] == "closed").then_some(())
    })
    .await;
    assert!(closed.is_some(), "the first live sitting closes");
    let second = poll(wait, || live_with_vote(hub, "senate-2566-2-28")).await;
    assert!(
        second.is_some(),
        "the Senate sitting is live with a vote next"
    );

    // Then the loop: the joint sitting again, as a new aggregate with fresh ids.
    let replay = poll(wait, || live_with_vote(hub, "joint-2564-1-10-r2"))
        .await
        .expect("the joint sitting is replayed live, with its vote");
    assert!(
        replay["title"]["en"]
            .as_str()
            .is_some_and(|t| t.ends_with("(replay 2)")),
        "{}",
        replay["title"]
    );
    // Still every bill, still found.
    let bills = get(hub, "/v1/bills", &[("limit", "1")]).await.unwrap();
    assert_eq!(bills["total"].as_u64(), Some(scenario_bills().len() as u64));
    let tax = get(hub, "/v1/bills", &[("q", "ภาษี")]).await.unwrap();
    assert!(tax["total"].as_u64() > Some(0), "q=ภาษี matches: {tax}");
    // A replay adds no vote to the real bill it voted on (checked once its
    // vote's result is out: its sitting closed).
    let replayed = poll(wait, || async {
        let s = get(hub, "/v1/sittings/joint-2564-1-10-r2", &[]).await?;
        (s["sitting"]["status"] == "closed").then_some(s)
    })
    .await
    .expect("the replayed sitting closes");
    assert_eq!(replayed["sitting"]["votes"][0]["result"], "passed");
    let amendment = get(hub, "/v1/bills/b-2564-ca-0001", &[]).await.unwrap();
    let votes = amendment["bill"]["votes"].as_array().unwrap();
    assert_eq!(votes.len(), 1, "{votes:?}");
    assert_eq!(votes[0]["sitting_id"], "joint-2564-1-10");
}

/// A replayed sitting's aggregate id ends in `-r<n>`.
fn is_replay(aggregate_id: &str) -> bool {
    aggregate_id
        .rsplit_once("-r")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test]
async fn at_speed_max_the_demo_serves_every_scenario_event_once_in_order() {
    let expected: usize = sapha_publisher::scenario::all_scenarios()
        .iter()
        .map(|(_, e)| e.len())
        .sum();
    let demo = start_demo(&["--speed", "max", "--max-gap-secs", "0.3"]);
    let hub = demo.hub;
    let ready = poll(Duration::from_secs(30), || async {
        get(hub, "/readyz", &[]).await.map(|_| ())
    })
    .await;
    assert!(ready.is_some(), "the demo hub is ready");
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
                assert!(
                    !is_replay(&d.event.aggregate_id),
                    "{} comes before the last scenario event",
                    d.event
                );
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
    assert_eq!(received, expected);
    for (aggregate, seqs) in seqs_by_aggregate {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, want, "{aggregate} in order, once");
    }
    // Both sittings are closed in the state; the loop then plays one live.
    for id in ["joint-2564-1-10", "senate-2566-2-28"] {
        let path = format!("/v1/sittings/{id}");
        let s = poll(Duration::from_secs(10), || get(hub, &path, &[]))
            .await
            .unwrap();
        assert_eq!(s["sitting"]["status"], "closed", "{id}");
    }
    let live = poll(Duration::from_secs(60), || {
        live_with_vote(hub, "joint-2564-1-10-r2")
    })
    .await;
    assert!(live.is_some(), "a sitting is live at --speed max too");
}
