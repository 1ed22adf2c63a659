//! `sapha tail` against a real hub on a real nats-server: `--bill` for a bill
//! the hub does not know yet (it waits, saying so, then shows the bill with
//! each move's note and follows it), and `--state` (what is true now, then
//! live).

mod hub_support;

use hub_support::*;
use sapha_proto::Event;
use sapha_tests::{sapha_bin, scenario, NatsServer};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A running `sapha tail`, killed on drop, and its output as lines.
struct Tail {
    _child: Child,
    out: Lines<BufReader<ChildStdout>>,
    err: Lines<BufReader<ChildStderr>>,
    /// Every stdout line read so far, for failure messages.
    seen: Vec<String>,
}

impl Tail {
    fn start(hub: &TestHub, args: &[&str]) -> Tail {
        let mut child = Command::new(sapha_bin())
            .arg("tail")
            .args(args)
            .args(["--lang", "en", "--hub", &hub.ws_url("")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sapha tail starts");
        Tail {
            out: BufReader::new(child.stdout.take().unwrap()).lines(),
            err: BufReader::new(child.stderr.take().unwrap()).lines(),
            _child: child,
            seen: Vec::new(),
        }
    }

    /// The next stdout line for which `want` holds (the lines before it are
    /// kept in `seen`), within a bounded wait.
    async fn line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.out.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                other => panic!("no such line ({other:?}); stdout so far: {:#?}", self.seen),
            }
        }
    }

    async fn err_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.err.next_line()).await {
                Ok(Ok(Some(line))) if want(&line) => return line,
                Ok(Ok(Some(_))) => {}
                other => panic!("no such stderr line: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn tail_bill_waits_for_a_bill_the_hub_does_not_know_then_shows_it_with_its_notes() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let bill: Vec<Event> = scenario("senate-2566-02-28.ndjson")
        .into_iter()
        .filter(|e| e.aggregate_id == "b-2565-0087")
        .collect();
    assert_eq!(bill.len(), 11);

    let mut tail = Tail::start(&hub, &["--bill", "b-2565-0087"]);
    let waiting = tail
        .err_line(|l| l.contains("does not know bill b-2565-0087 yet: waiting"))
        .await;
    assert!(waiting.starts_with("! "), "{waiting}");

    // The bill appears: its heading, then its timeline, with the first move's note.
    for e in &bill[..10] {
        publisher.publish(e).await;
    }
    tail.line(|l| l.starts_with("b-2565-0087 ") && l.contains("now at"))
        .await;
    let first = tail.line(|l| l.contains("introduced by the Cabinet")).await;
    assert!(first.starts_with("  15 Mar B.E. 2565 · "), "{first}");
    // Then every change after it, live, with its note too.
    // The third reading's vote moves the bill on (the stage convention).
    publisher.publish(&bill[10]).await;
    let live = tail
        .line(|l| l.contains("Senate third reading → House decision on the Senate's amendments"))
        .await;
    assert!(
        live.contains("approved by the Senate with an amendment to section 4"),
        "{live}"
    );
}

#[tokio::test]
async fn tail_state_prints_what_is_true_now_then_follows_live() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut events = scenario("joint-2564-09-10.ndjson");
    events.extend(scenario("senate-2566-02-28.ndjson"));
    // Up to the result of the Senate's first vote: the sitting is in progress.
    let cut = events
        .iter()
        .position(|e| e.event_id == "e-senate-2566-2-28-56")
        .unwrap();
    let mut last = 0;
    for e in &events[..=cut] {
        last = publisher.publish(e).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    assert!(hub.wait_metric("sapha_hub_state_seq", last).await);

    let mut tail = Tail::start(&hub, &["--state"]);
    let head = tail
        .line(|l| l.starts_with("== now, at stream position"))
        .await;
    assert_eq!(head, format!("== now, at stream position {last} =="));
    tail.line(|l| l == "== from here on, live ==").await;
    let state = tail.seen.join("\n");
    assert!(
        state.contains("Senate senate-2566-2-28 · in session · opened 28 Feb B.E. 2566 09:30"),
        "{state}"
    );
    assert!(
        state.contains("  quorum: present 203 · required 125"),
        "{state}"
    );
    assert!(state.contains("  vote vote-1: "), "{state}");
    assert!(
        !state.contains("joint-2564-1-10 ·"),
        "a closed sitting is not in progress: {state}"
    );
    assert!(state.contains("bills that moved last (2 of 2):"), "{state}");
    assert!(state.contains("  b-2565-0087 "), "{state}");
    assert!(state.contains("  b-2564-ca-0001 "), "{state}");

    // Then live from that position: the next event, and no earlier one.
    publisher.publish(&events[cut + 1]).await;
    let next = tail.line(|l| !l.trim().is_empty()).await;
    assert!(next.contains("senate-2566-2-28"), "{next}");
    assert!(next.to_lowercase().contains("suspended"), "{next}");
}
