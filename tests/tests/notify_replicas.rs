//! Several `sapha notify` processes share the work on a 3-node NATS cluster:
//! one is killed with SIGKILL mid-run and a NATS node is killed too, and every
//! (follower, stage change) still reaches the receiver, once per idempotency
//! key.

mod hub_support;
mod subscribers_support;

use sapha_follows::{Channel, FollowStore, Lang, Limits};
use sapha_proto::stage::Stage;
use sapha_subscribers::notify::Notification;
use sapha_tests::fixtures::bill_event;
use sapha_tests::{sapha_bin, NatsCluster};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use subscribers_support::Receiver;

const BILLS: usize = 4;
const FOLLOWERS: usize = 200;
const CHANGES: u64 = 20;

/// Retries a JetStream call while the cluster elects its leaders.
async fn retrying<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    mut call: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the cluster did not answer: {e:?}"),
        }
    }
}

fn spawn_notifier(urls: &str, webhook: &str) -> tokio::process::Child {
    tokio::process::Command::new(sapha_bin())
        .args([
            "notify",
            "--nats-url",
            urls,
            "--webhook-url",
            webhook,
            "--webhook-secret",
            "s",
            "--from-start",
            "--allow-loopback-targets",
            "--ack-wait-secs",
            "3",
            "--chunk",
            "20",
            "--concurrency",
            "8",
        ])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("sapha notify starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_a_sigkill_and_a_node_kill_lose_and_repeat_nothing() {
    let t0 = std::time::Instant::now();
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let client = sapha_subscribers::notify::connect(&urls).await.unwrap();
    let js = async_nats::jetstream::new(client);
    retrying(|| {
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "PARL".into(),
            subjects: vec!["parl.v1.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
    })
    .await;
    let store = retrying(|| FollowStore::open(&js, sapha_follows::DEFAULT_BUCKET, 3)).await;
    // Follower i follows bills i % 4 and (i + 1) % 4: 100 followers per bill.
    let bill = |b: usize| format!("b-2567-{b:04}");
    let mut follower_ids = Vec::new();
    for i in 0..FOLLOWERS {
        let (f, _) = store
            .create(
                Lang::Th,
                Channel::Webhook {
                    reference: format!("user-{i}"),
                },
                &[bill(i % BILLS), bill((i + 1) % BILLS)],
                &Limits::default(),
            )
            .await
            .unwrap();
        follower_ids.push(f);
    }
    println!("cluster and followers ready after {:?}", t0.elapsed());
    let receiver = Receiver::start().await;
    let mut replicas: Vec<_> = (0..3)
        .map(|_| spawn_notifier(&urls, &receiver.url()))
        .collect();

    // 20 stage changes, 5 per bill, paced over about 10 s; expected keys.
    let mut expected = BTreeSet::new();
    let stages = [
        Stage::Proposed,
        Stage::HouseR1,
        Stage::HouseCommittee,
        Stage::HouseR2,
        Stage::HouseR3,
    ];
    let mut killed_replica = false;
    let mut killed_node = false;
    for n in 0..CHANGES {
        let b = (n as usize) % BILLS;
        let step = (n as usize) / BILLS;
        let from = step.checked_sub(1).map(|s| stages[s]);
        let event = bill_event(&bill(b), step as u64 + 1, from, stages[step]);
        for f in follower_ids.iter().filter(|f| f.bills.contains(&bill(b))) {
            expected.insert((event.event_id.clone(), f.id.clone()));
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        retrying(|| async {
            js.publish_with_headers(
                event.subject(),
                headers.clone(),
                event.encode_proto().into(),
            )
            .await?
            .await
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !killed_replica && receiver.count() >= 300 {
            replicas[0].start_kill().unwrap();
            killed_replica = true;
        }
        if killed_replica && !killed_node && n >= 12 {
            cluster.nodes[1].kill();
            killed_node = true;
        }
    }
    println!("published after {:?}", t0.elapsed());
    assert!(
        killed_replica,
        "a replica was killed mid-run ({} received)",
        receiver.count()
    );
    assert!(killed_node, "a NATS node was killed mid-run");

    let distinct = || {
        receiver
            .all()
            .iter()
            .map(|r| {
                let n: Notification = serde_json::from_str(&r.body).unwrap();
                (n.change.event_id, n.follower)
            })
            .collect::<BTreeSet<_>>()
    };
    let waiting = std::time::Instant::now();
    let all_in = sapha_tests::wait_until(Duration::from_secs(120), || async {
        distinct().len() >= expected.len()
    })
    .await;
    println!("all in {:?} after the last publish", waiting.elapsed());
    // Anything still redelivered would arrive within a few ack waits.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for r in &mut replicas[1..] {
        let _ = r.start_kill();
    }
    let got = distinct();
    assert!(all_in, "{} of {} notifications", got.len(), expected.len());
    assert_eq!(
        got, expected,
        "exactly the expected (change, follower) pairs"
    );

    // Repeats of one key can only come from the SIGKILL: sends in flight
    // whose marker was not written. The receiver drops them by key.
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.all() {
        let key = r
            .headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        *per_key.entry(key).or_default() += 1;
    }
    let repeats: usize = per_key.values().map(|n| n - 1).sum();
    println!(
        "{} notifications, {} distinct, {repeats} repeated (from the SIGKILLed replica's sends in flight)",
        receiver.count(),
        got.len()
    );
    assert!(
        repeats <= 16,
        "at most the killed replica's sends in flight repeat: {repeats}"
    );
}
