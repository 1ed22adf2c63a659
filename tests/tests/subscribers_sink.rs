//! `sapha sink` as a real child process: killed with SIGKILL mid-stream and
//! restarted, its NDJSON output holds every event exactly once, in order; its
//! webhook requests carry a valid HMAC-SHA256 signature.

mod hub_support;
mod subscribers_support;

use hub_support::*;
use sapha_subscribers::sink::Checkpoint;
use sapha_tests::NatsServer;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use subscribers_support::*;

struct SinkProcess(Child);

impl SinkProcess {
    fn start(hub: &str, dir: &Path, extra: &[&str]) -> SinkProcess {
        let child = Command::new(sapha_bin())
            .arg("sink")
            .args(["--hub", hub, "--batch", "16", "--max-file-bytes", "20000"])
            .arg("--out")
            .arg(dir.join("out"))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sapha sink");
        SinkProcess(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL: no chance to flush or checkpoint
        let _ = self.0.wait();
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn checkpoint_seq(dir: &Path) -> u64 {
    Checkpoint::load(&dir.join("out/checkpoint.json"))
        .ok()
        .flatten()
        .and_then(|c| c.seq)
        .unwrap_or(0)
}

async fn wait_checkpoint(dir: &Path, at_least: u64) {
    let ok = sapha_tests::wait_until(WAIT, || async { checkpoint_seq(dir) >= at_least }).await;
    assert!(ok, "checkpoint at {} < {at_least}", checkpoint_seq(dir));
}

/// The sink's NDJSON files, in order.
fn written_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    files
}

/// The (stream order) event ids in the sink's files.
fn all_written_ids(dir: &Path) -> Vec<String> {
    written_files(dir)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    sapha_proto::Event::from_json(l)
                        .expect("whole lines only")
                        .event_id
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The same, after checking that the 20 kB files rotated.
fn written_ids(dir: &Path) -> Vec<String> {
    assert!(written_files(dir).len() > 1, "20 kB files rotate");
    all_written_ids(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_stream_and_restarted_it_writes_every_event_exactly_once() {
    let bin = tokio::task::spawn_blocking(sapha_bin).await.unwrap();
    assert!(bin.exists());
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let url = hub.ws_url("/v1/ws");
    let dir = tempfile::tempdir().unwrap();

    let mut sink = SinkProcess::start(&url, dir.path(), &[]);
    let background = Background::start(&publisher, 3_000, Duration::from_millis(1), |i| {
        bill_stage(&format!("b-2566-{:04}", i % 7))
    });
    wait_checkpoint(dir.path(), 60).await;
    sink.kill();
    // Publishing goes on while the sink is down.
    let at_kill = background.count();
    let ok = sapha_tests::wait_until(WAIT, || async { background.count() >= at_kill + 50 }).await;
    assert!(ok);
    let mut sink = SinkProcess::start(&url, dir.path(), &[]);
    let resumed = checkpoint_seq(dir.path());
    wait_checkpoint(dir.path(), resumed + 50).await;
    let published = background.finish().await;
    let last = published.last().unwrap().0;
    wait_checkpoint(dir.path(), last).await;
    sink.kill();

    let want: Vec<String> = published.into_iter().map(|(_, id)| id).collect();
    assert_eq!(written_ids(dir.path()), want);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_are_signed() {
    let bin = tokio::task::spawn_blocking(sapha_bin).await.unwrap();
    assert!(bin.exists());
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    for _ in 0..5 {
        let e = bill_stage("b-2566-0042");
        publisher.publish(&e).await;
        events.push(e);
    }
    let hook = receiver.url();
    let _sink = SinkProcess::start(
        &hub.ws_url("/v1/ws"),
        dir.path(),
        &[
            "--webhook",
            &hook,
            "--webhook-secret",
            "s3cret",
            "bill.b-2566-0042",
        ],
    );
    let ok = sapha_tests::wait_until(WAIT, || async { receiver.count() >= 5 }).await;
    assert!(ok, "5 posts, got {}", receiver.count());
    for (r, e) in receiver.all().iter().zip(&events) {
        let header = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_owned();
        let ts: u64 = header("x-sapha-timestamp").parse().unwrap();
        assert!(sapha_subscribers::sink::webhook::verify(
            b"s3cret",
            ts,
            r.body.as_bytes(),
            &header("x-sapha-signature")
        ));
        assert_eq!(header("x-sapha-event-id"), e.event_id);
        assert_eq!(sapha_proto::Event::from_json(&r.body).unwrap(), *e);
    }
    hub.shutdown().await;
}

/// The stream is recreated with more events than the sink's checkpoint while
/// the sink is down: the checkpoint's epoch tells, and the restarted sink
/// writes the new stream from its first event instead of skipping to seq 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sink_notices_a_recreated_stream_by_its_checkpointed_epoch() {
    let bin = tokio::task::spawn_blocking(sapha_bin).await.unwrap();
    assert!(bin.exists());
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut want = Vec::new();
    for _ in 0..5 {
        let e = bill_stage("b-2566-0001");
        publisher.publish(&e).await;
        want.push(e.event_id.clone());
    }
    let hub = TestHub::start(test_config(&nats)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = SinkProcess::start(&hub.ws_url("/v1/ws"), dir.path(), &["--from", "start"]);
    wait_checkpoint(dir.path(), 5).await;
    sink.kill();
    hub.shutdown().await;
    let saved = Checkpoint::load(&dir.path().join("out/checkpoint.json"))
        .unwrap()
        .unwrap();
    assert!(
        saved.epoch.is_some(),
        "the checkpoint keeps the epoch: {saved:?}"
    );

    publisher.js.delete_stream("PARL").await.unwrap();
    let publisher = Publisher::new(&nats).await;
    for _ in 0..8 {
        let e = bill_stage("b-2566-0002");
        publisher.publish(&e).await;
        want.push(e.event_id.clone());
    }
    let hub = TestHub::start(test_config(&nats)).await;
    let mut sink = SinkProcess::start(&hub.ws_url("/v1/ws"), dir.path(), &["--from", "start"]);
    let dir_path = dir.path().to_owned();
    let complete = sapha_tests::wait_until(WAIT, || {
        let dir = dir_path.clone();
        async move { all_written_ids(&dir).len() >= 13 }
    })
    .await;
    sink.kill();
    assert!(complete, "wrote {:?}", all_written_ids(dir.path()));
    assert_eq!(
        all_written_ids(dir.path()),
        want,
        "the old stream, then all of the new one"
    );
    hub.shutdown().await;
}
