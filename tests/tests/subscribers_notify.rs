//! Bill-follow notifications against a real hub: one per follower and stage
//! change, in Thai and English, and none sent twice across a restart, even
//! one that replays the whole stream.

mod hub_support;
mod subscribers_support;

use hub_support::*;
use sapha_proto::stage::Stage::*;
use sapha_subscribers::client::Backoff;
use sapha_subscribers::notify::{Follows, Notification, Notifier, NotifySettings};
use sapha_subscribers::{ClientBuilder, Start};
use sapha_tests::fixtures::bill_history;
use sapha_tests::NatsServer;
use std::path::Path;
use std::time::Duration;
use subscribers_support::*;

/// Runs a notifier until the receiver holds `want` notifications, then stops it.
async fn run_until(hub: &TestHub, state: &Path, gateway: &Receiver, want: usize) {
    let follows =
        Follows::parse(r#"{"alice": ["b-2566-0001"], "bob": ["b-2566-0001", "b-2566-0002"]}"#)
            .unwrap();
    let notifier = Notifier::open(NotifySettings {
        follows,
        gateway_url: gateway.url(),
        state_dir: state.to_owned(),
        max_attempts: 3,
        backoff: Backoff::default(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let start = notifier.position().map_or(Start::Beginning, Start::After);
    let items = ClientBuilder::new()
        .url(hub.ws_url("/v1/ws"))
        .topics(notifier.topics())
        .start(start)
        .subscribe()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(notifier.run(items, async {
        let _ = stopped.await;
    }));
    let ok = sapha_tests::wait_until(WAIT, || async { gateway.count() >= want }).await;
    assert!(ok, "{} of {want} notifications", gateway.count());
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

fn sent(gateway: &Receiver) -> Vec<(String, String)> {
    gateway
        .all()
        .iter()
        .map(|r| {
            let n: Notification = serde_json::from_str(&r.body).unwrap();
            (n.user, n.event_id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notification_per_stage_change_and_none_twice_across_a_restart() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let gateway = Receiver::start().await;
    let state = tempfile::tempdir().unwrap();

    let one = bill_history("b-2566-0001", &[Proposed, HouseR1, HouseCommittee]);
    let two = bill_history("b-2566-0002", &[Proposed, HouseR1, HouseCommittee]);
    let unfollowed = bill_history("b-2566-0003", &[Proposed, HouseR1]);
    for e in one.iter().chain(&two[..2]).chain(&unfollowed) {
        publisher.publish(e).await;
    }
    // alice: 3 changes of bill 1; bob: 3 of bill 1 and 2 of bill 2.
    run_until(&hub, state.path(), &gateway, 8).await;

    // The text of bill 1 passing its first reading, in both languages.
    let passed = gateway
        .all()
        .iter()
        .map(|r| serde_json::from_str::<Notification>(&r.body).unwrap())
        .find(|n| n.user == "alice" && n.to_stage == "HOUSE_COMMITTEE")
        .unwrap();
    assert_eq!(
        passed.text.th,
        "ร่าง พ.ร.บ. ทดสอบ พ.ศ. .... ผ่านวาระที่ 1 ขั้นรับหลักการ"
    );
    assert_eq!(
        passed.text.en,
        "Draft Test Act B.E. .... passed the House first reading"
    );

    // A restart that lost its position replays everything; only the new
    // change of bill 2 is notified.
    std::fs::remove_file(state.path().join("checkpoint.json")).unwrap();
    publisher.publish(&two[2]).await;
    run_until(&hub, state.path(), &gateway, 9).await;

    let keys = sent(&gateway);
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "no key twice: {keys:?}");
    assert_eq!(keys.len(), 9);
    assert_eq!(keys[8], ("bob".into(), two[2].event_id.clone()));
    assert!(keys.iter().all(|(_, id)| !id.starts_with("e-b-2566-0003")));
    for r in gateway.all() {
        let key = r
            .headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let n: Notification = serde_json::from_str(&r.body).unwrap();
        assert_eq!(key, format!("{}:{}", n.user, n.event_id));
    }
    hub.shutdown().await;
}
