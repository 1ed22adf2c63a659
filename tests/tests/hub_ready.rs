//! What `/readyz` says, and how soon: a hub started before the stream exists
//! reports `"stream":"missing"` (503) until the publisher creates it, and a
//! hub whose nats-server stops answering (SIGSTOP: the TCP connection stays
//! open, so the client library still calls it connected) turns 503 within the
//! documented bound, then 200 again once the server answers.

mod hub_support;

use hub_support::*;
use sapha_tests::{wait_until, NatsServer};
use serde_json::Value;
use std::time::Duration;

/// The bound docs/PROTOCOL.md gives for the default `[nats] health_interval_ms`
/// and `health_timeout_ms` (1 s + 2 s), plus slack for a loaded 2-core box.
const NOT_ANSWERING_BOUND: Duration = Duration::from_secs(3);
const SLACK: Duration = Duration::from_secs(2);

async fn readyz(hub: &TestHub) -> Option<(u16, Value)> {
    let response = reqwest::get(hub.http("/readyz")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

/// Sends `signal` to the nats-server process.
fn signal(nats: &NatsServer, signal: libc::c_int) {
    // SAFETY: kill(2) on a child process this test started and still owns.
    let rc = unsafe { libc::kill(nats.pid() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({signal}) on nats-server");
}

/// Resumes a stopped nats-server when dropped, so that a failing assertion
/// does not leave a stopped process behind (its own Drop then kills it).
struct Continue<'a>(&'a NatsServer);

impl Drop for Continue<'_> {
    fn drop(&mut self) {
        signal(self.0, libc::SIGCONT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_before_the_stream_says_stream_missing_then_turns_ready() {
    let nats = NatsServer::start();
    let hub = TestHub::start_unready(test_config(&nats)).await;
    // NATS answers (the probe ran) but there is no stream: 503, and why.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = readyz(&hub).await;
    while !last
        .as_ref()
        .is_some_and(|(_, body)| body["stream"] == "missing")
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = readyz(&hub).await;
    }
    let missing = last
        .as_ref()
        .is_some_and(|(_, body)| body["stream"] == "missing");
    assert!(missing, "no stream: missing; got {last:?}");
    let (status, body) = last.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["consumer_live"], false, "{body}");
    assert_eq!(body["nats_answering"], true, "{body}");

    let _publisher = Publisher::new(&nats).await;
    hub.wait_ready().await;
    let (status, body) = readyz(&hub).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stream"], "present", "{body}");
    assert_eq!(body["consumer_live"], true, "{body}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_within_the_bound_when_nats_stops_answering_and_200_after() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    // The defaults the documented bound is for.
    config.nats.health_interval_ms = sapha_hub::config::NatsConfig::default().health_interval_ms;
    config.nats.health_timeout_ms = sapha_hub::config::NatsConfig::default().health_timeout_ms;
    let hub = TestHub::start(config).await;

    // Held stopped for 10 s at most: long past the bound, well short of the
    // client library's own ping timeout (2 pings of 60 s), which is what
    // `/readyz` went by before.
    signal(&nats, libc::SIGSTOP);
    let resume = Continue(&nats);
    let stopped_at = tokio::time::Instant::now();
    let unready = wait_until(NOT_ANSWERING_BOUND + SLACK, || async {
        readyz(&hub).await.is_some_and(|(status, _)| status == 503)
    })
    .await;
    let took = stopped_at.elapsed();
    let body = readyz(&hub).await;
    assert!(
        unready,
        "still ready {took:?} after nats-server stopped answering: {body:?}"
    );
    eprintln!("/readyz turned 503 {took:?} after SIGSTOP: {body:?}");
    assert_eq!(body.unwrap().1["nats_answering"], false);
    // Stays unready while the server is stopped (10 s in all).
    let held = tokio::time::Instant::now() + Duration::from_secs(10).saturating_sub(took);
    while tokio::time::Instant::now() < held {
        let (status, body) = readyz(&hub).await.expect("the hub answers");
        assert_eq!(status, 503, "ready while nats-server is stopped: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    drop(resume); // SIGCONT
    let resumed_at = tokio::time::Instant::now();
    let ready = wait_until(Duration::from_secs(20), || async {
        readyz(&hub).await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert!(
        ready,
        "not ready again after SIGCONT: {:?}",
        readyz(&hub).await
    );
    eprintln!("/readyz 200 again {:?} after SIGCONT", resumed_at.elapsed());
    hub.shutdown().await;
}
