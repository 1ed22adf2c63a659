//! What an operator's tooling sees of the `sapha` binary: log lines on a pipe
//! without colour codes, `--log-format json` as one JSON object a line,
//! `sapha probe` as a health check, and `sapha play --speed max` storing a
//! scenario at once and in order.

use sapha_tests::fixtures::read_stream;
use sapha_tests::{free_port, repo_root, sapha_bin, wait_until, NatsServer};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const STREAM: &str = "PARL";

/// Runs `sapha` with `args` (stdout discarded, stderr captured through a pipe,
/// so not a terminal) and returns its exit status and stderr.
async fn run_sapha(args: &[&str], rust_log: &str) -> (std::process::ExitStatus, String) {
    let child = Command::new(sapha_bin())
        .args(args)
        .env("RUST_LOG", rust_log)
        .env_remove("SAPHA_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sapha starts");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sapha finishes within 60 s")
        .expect("sapha's output");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scenario(name: &str) -> String {
    repo_root()
        .join("scenarios")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `sapha play` merges its files by `occurred_at`, as the demo does: given in
/// any order, the scenarios are stored in the order the events happened, each
/// file keeping its own order.
#[tokio::test]
async fn play_speed_max_stores_every_scenario_event_at_once_in_order() {
    let server = NatsServer::start();
    let url = server.url();
    // Newest file first: file order is not time order.
    let mut scenarios = sapha_publisher::scenario::all_scenarios();
    scenarios.reverse();
    let files: Vec<String> = scenarios.iter().map(|(name, _)| scenario(name)).collect();
    let mut args = vec!["play", "--speed", "max", "--nats-url", &url];
    args.extend(files.iter().map(String::as_str));
    // At real speed (1, with --max-gap-secs 10) these files take about an hour.
    let (status, stderr) = run_sapha(&args, "warn").await;
    assert!(
        status.success(),
        "sapha play --speed max: {status}\n{stderr}"
    );

    // The expected feed: at each step the file whose next event is earliest.
    let mut queues: Vec<std::collections::VecDeque<_>> = scenarios
        .into_iter()
        .map(|(_, events)| events.into())
        .collect();
    let mut sent = Vec::new();
    while let Some((_, i)) = queues
        .iter()
        .enumerate()
        .filter_map(|(i, q)| q.front().map(|e: &sapha_proto::Event| (e.occurred_at, i)))
        .min()
    {
        sent.push(queues[i].pop_front().unwrap());
    }
    let stored = read_stream(&url, STREAM).await;
    assert_eq!(stored.len(), sent.len(), "every event stored once");
    for (s, e) in stored.iter().zip(&sent) {
        assert_eq!(s.event.event_id, e.event_id, "in time order");
        assert_eq!(s.subject, e.subject());
    }
    // By Bangkok day, time never goes back (a day-precision event at midnight
    // UTC may follow an instant of the same day).
    let day = |e: &sapha_proto::Event| (e.occurred_at + Duration::from_secs(7 * 3600)).date_naive();
    for pair in stored.windows(2) {
        assert!(
            day(&pair[1].event) >= day(&pair[0].event),
            "{} goes back in time after {}",
            pair[1].event.event_id,
            pair[0].event.event_id
        );
    }
}

#[tokio::test]
async fn a_speed_that_is_not_a_factor_or_max_is_refused() {
    for bad in ["fast", "inf", "NaN"] {
        let (status, stderr) = run_sapha(&["play", "--speed", bad, "x.ndjson"], "info").await;
        assert_eq!(status.code(), Some(2), "--speed {bad}: {stderr}");
        assert!(stderr.contains("is not a speed"), "{stderr}");
    }
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let server = NatsServer::start();
    let url = server.url();
    let file = scenario("joint-2564-09-10.ndjson");
    let (status, stderr) =
        run_sapha(&["play", "--speed", "0", "--nats-url", &url, &file], "info").await;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("JetStream stream ready"),
        "info lines are logged: {stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "no ANSI escape codes when stderr is not a terminal: {stderr:?}"
    );
}

/// Checks that every line of `stderr` is a JSON object with a level, a target
/// and fields, and returns the messages.
fn json_messages(stderr: &str) -> Vec<String> {
    let mut messages = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["level"].is_string(), "level: {line}");
        assert!(v["target"].is_string(), "target: {line}");
        assert!(v["timestamp"].is_string(), "timestamp: {line}");
        assert!(v["fields"].is_object(), "fields: {line}");
        messages.push(v["fields"]["message"].as_str().unwrap_or("").to_owned());
    }
    messages
}

#[tokio::test]
async fn log_format_json_prints_one_json_object_a_line() {
    let server = NatsServer::start();
    let url = server.url();
    let file = scenario("joint-2564-09-10.ndjson");
    // The flag is global: it may come after the subcommand.
    let (status, stderr) = run_sapha(
        &[
            "play",
            "--speed",
            "max",
            "--nats-url",
            &url,
            &file,
            "--log-format",
            "json",
        ],
        "info",
    )
    .await;
    assert!(status.success(), "{stderr}");
    let messages = json_messages(&stderr);
    assert!(
        messages.iter().any(|m| m == "JetStream stream ready"),
        "{stderr}"
    );
    // The closing report is a JSON line too, with its figures as fields.
    let done = stderr
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["fields"]["message"] == "done")
        .unwrap_or_else(|| panic!("a done line: {stderr}"));
    assert_eq!(done["fields"]["stored"], 49, "{done}");
}

#[tokio::test]
async fn the_hub_logs_json_lines_from_start_to_shutdown() {
    let server = NatsServer::start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(sapha_bin())
        .args(["--log-format", "json", "hub", "--nats-url", &server.url()])
        .args(["--listen", &listen])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sapha hub starts");
    let up = wait_until(Duration::from_secs(30), || {
        let listen = listen.clone();
        async move {
            reqwest::get(format!("http://{listen}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    assert!(up, "the hub answers /healthz");
    // `sapha probe`, the image's HEALTHCHECK, agrees: 0 on /healthz; 1 on
    // /readyz (503: no stream yet) and on a port nothing listens on.
    let (status, stderr) = run_sapha(&["probe", &format!("http://{listen}/healthz")], "warn").await;
    assert!(status.success(), "probe /healthz: {stderr}");
    let (status, stderr) = run_sapha(&["probe", &format!("http://{listen}/readyz")], "warn").await;
    assert_eq!(
        status.code(),
        Some(1),
        "probe /readyz before the stream exists: {stderr}"
    );
    assert!(stderr.contains("503"), "{stderr}");
    let closed = format!("http://127.0.0.1:{}/healthz", free_port());
    let (status, _) = run_sapha(&["probe", &closed, "--timeout-ms", "2000"], "warn").await;
    assert_eq!(status.code(), Some(1), "probe of a closed port");
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the hub stops on SIGTERM")
        .expect("the hub's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
    let messages = json_messages(&stderr);
    assert!(messages.iter().any(|m| m == "hub listening"), "{stderr}");
}
