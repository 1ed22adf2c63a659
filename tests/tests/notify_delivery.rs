//! Notifications end to end: followers made through the hub's follow API,
//! stage changes published into JetStream, `sapha notify` replicas in this
//! process, and real receivers: a webhook, an RFC 8030 push service that
//! decrypts as a browser does, and a LINE look-alike.

mod hub_support;
mod notify_support;
mod subscribers_support;

use hub_support::*;
use notify_support::*;
use sapha_proto::stage::Stage::*;
use sapha_subscribers::notify::Notification;
use sapha_tests::fixtures::bill_history;
use sapha_tests::NatsServer;
use std::collections::BTreeSet;
use subscribers_support::Receiver;

fn keys(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .all()
        .iter()
        .map(|r| {
            let n: Notification = serde_json::from_str(&r.body).unwrap();
            (n.user, n.change.event_id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_once_per_follower_and_change_across_a_restart() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(follow_config(nats.url())).await;
    let receiver = Receiver::start().await;
    follow(&hub, "th", webhook("alice"), &["b-2566-0001"]).await;
    follow(&hub, "en", webhook("bob"), &["b-2566-0001", "b-2566-0002"]).await;

    let one = bill_history("b-2566-0001", &[Proposed, HouseR1, HouseCommittee]);
    let two = bill_history("b-2566-0002", &[Proposed, HouseR1, HouseCommittee]);
    let unfollowed = bill_history("b-2566-0003", &[Proposed, HouseR1]);
    for e in one.iter().chain(&two[..2]).chain(&unfollowed) {
        publisher.publish(e).await;
    }
    let replica = Replica::start(&nats.url(), test_settings(), webhook_channels(receiver.url())).await;
    // alice: 3 changes of bill 1; bob: 3 of bill 1 and 2 of bill 2.
    let got = sapha_tests::wait_until(WAIT, || async { receiver.count() >= 8 }).await;
    assert!(got, "{} of 8 notifications", receiver.count());
    replica.stop().await;

    // The text of bill 1 passing its first reading, in each follower's language.
    let all: Vec<Notification> = receiver
        .all()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let passed = |user: &str| {
        all.iter()
            .find(|n| n.user == user && n.change.to_stage == "HOUSE_COMMITTEE" && n.change.bill_id == "b-2566-0001")
            .unwrap()
            .clone()
    };
    assert_eq!(passed("alice").change.text.th, "ร่าง พ.ร.บ. ทดสอบ พ.ศ. .... ผ่านวาระที่ 1 ขั้นรับหลักการ");
    assert_eq!(passed("alice").lang, sapha_follows::Lang::Th);
    assert_eq!(passed("bob").lang, sapha_follows::Lang::En);
    assert_eq!(passed("bob").url, "https://sapha.example/?bill=b-2566-0001");

    // Signed, with an idempotency key per (change, follower).
    for r in receiver.all() {
        let n: Notification = serde_json::from_str(&r.body).unwrap();
        let key = r.headers.get("idempotency-key").unwrap().to_str().unwrap();
        assert_eq!(key, format!("{}:{}", n.change.event_id, n.follower));
        let ts: u64 = r.headers.get("x-sapha-timestamp").unwrap().to_str().unwrap().parse().unwrap();
        let sig = r.headers.get("x-sapha-signature").unwrap().to_str().unwrap();
        assert_eq!(sig, sapha_subscribers::sink::webhook::sign(b"hook-secret", ts, r.body.as_bytes()));
    }

    // A new replica (same durable consumers) goes on from there: only the
    // new change of bill 2 and a correction of bill 1 are sent.
    let mut correction = one[2].clone();
    correction.event_id = "e-b-2566-0001-3-fix".into();
    correction.supersedes = Some(one[2].event_id.clone());
    publisher.publish(&two[2]).await;
    publisher.publish(&correction).await;
    let replica = Replica::start(&nats.url(), test_settings(), webhook_channels(receiver.url())).await;
    let got = sapha_tests::wait_until(WAIT, || async { receiver.count() >= 11 }).await;
    assert!(got, "{} of 11 notifications", receiver.count());
    // Nothing more comes (a redelivery would show within the ack wait).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    replica.stop().await;

    let keys = keys(&receiver);
    let unique: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "no key twice: {keys:?}");
    assert_eq!(keys.len(), 11, "{keys:?}");
    assert!(keys.iter().all(|(_, id)| !id.starts_with("e-b-2566-0003")));
    let corrections: Vec<Notification> = receiver
        .all()
        .iter()
        .map(|r| serde_json::from_str::<Notification>(&r.body).unwrap())
        .filter(|n| n.change.correction)
        .collect();
    assert_eq!(corrections.len(), 2, "both followers of bill 1 hear of the correction");
    hub.shutdown().await;
}
