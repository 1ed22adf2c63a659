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
    let one = bill_history("b-2566-0001", &[Proposed, HouseR1, HouseCommittee]);
    let two = bill_history("b-2566-0002", &[Proposed, HouseR1, HouseCommittee]);
    let unfollowed = bill_history("b-2566-0003", &[Proposed, HouseR1]);
    for e in one.iter().chain(&two[..2]).chain(&unfollowed) {
        publisher.publish(e).await;
    }
    // Bills can be followed once the hub knows them; the replica (from the
    // start of the stream) plans after the follows.
    wait_bills_known(&hub, &["b-2566-0001", "b-2566-0002"]).await;
    announce_channels(&nats.url()).await;
    follow(&hub, "th", webhook("alice"), &["b-2566-0001"]).await;
    follow(&hub, "en", webhook("bob"), &["b-2566-0001", "b-2566-0002"]).await;
    let replica = Replica::start(
        &nats.url(),
        test_settings(),
        webhook_channels(receiver.url()),
    )
    .await;
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
            .find(|n| {
                n.user == user
                    && n.change.to_stage == "HOUSE_COMMITTEE"
                    && n.change.bill_id == "b-2566-0001"
            })
            .unwrap()
            .clone()
    };
    assert_eq!(
        passed("alice").change.text.th,
        "ร่าง พ.ร.บ. ทดสอบ พ.ศ. .... ผ่านวาระที่ 1 ขั้นรับหลักการ"
    );
    assert_eq!(passed("alice").lang, sapha_follows::Lang::Th);
    assert_eq!(passed("bob").lang, sapha_follows::Lang::En);
    assert_eq!(passed("bob").url, "https://sapha.example/?bill=b-2566-0001");

    // Signed, with an idempotency key per (change, follower).
    for r in receiver.all() {
        let n: Notification = serde_json::from_str(&r.body).unwrap();
        let key = r.headers.get("idempotency-key").unwrap().to_str().unwrap();
        assert_eq!(key, format!("{}:{}", n.change.event_id, n.follower));
        let ts: u64 = r
            .headers
            .get("x-sapha-timestamp")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let sig = r
            .headers
            .get("x-sapha-signature")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            sig,
            sapha_subscribers::sink::webhook::sign(b"hook-secret", ts, r.body.as_bytes())
        );
    }

    // A new replica (same durable consumers) goes on from there: only the
    // new change of bill 2 and a correction of bill 1 are sent.
    let mut correction = one[2].clone();
    correction.event_id = "e-b-2566-0001-3-fix".into();
    correction.supersedes = Some(one[2].event_id.clone());
    publisher.publish(&two[2]).await;
    publisher.publish(&correction).await;
    let replica = Replica::start(
        &nats.url(),
        test_settings(),
        webhook_channels(receiver.url()),
    )
    .await;
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
    assert_eq!(
        corrections.len(),
        2,
        "both followers of bill 1 hear of the correction"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_push_and_line_reach_the_receivers_decrypted_and_once() {
    use sapha_subscribers::notify::{Channels, LineSettings, WebPushSettings};
    use sapha_tests::line_service::LineService;
    use sapha_tests::push_service::PushService;
    use std::time::Duration;

    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(follow_config(nats.url())).await;
    let push = PushService::start().await;
    let line = LineService::start("line-token").await;
    let (private, public) = sapha_subscribers::notify::generate_vapid_key();
    push.expect_vapid_key(&public);
    let channels = Channels::new(
        Some(WebPushSettings {
            vapid_private_key: private,
            subject: "mailto:ops@senate.example".into(),
            ttl: Duration::from_secs(3600),
            per_host: 4,
        }),
        Some(LineSettings {
            api_base: line.base_url(),
            channel_token: "line-token".into(),
        }),
        None,
        Duration::from_secs(5),
        loopback_targets(),
    )
    .unwrap();
    // The bill exists before it is followed; the replica notifies only the
    // changes published after it started.
    let bill = "b-2566-0001";
    introduce_bills(&hub, &publisher, &[bill]).await;
    let settings = sapha_subscribers::notify::NotifySettings {
        from_start: false,
        ..test_settings()
    };
    let replica = Replica::start(&nats.url(), settings, channels).await;
    wait_plan_consumer(&nats.url()).await;

    // The hub hands browsers the key the notifier published.
    let key_ok = sapha_tests::wait_until(WAIT, || async {
        let r = reqwest::get(hub.http("/v1/push/key")).await.unwrap();
        r.status() == 200
            && r.json::<serde_json::Value>().await.unwrap()["vapid_public_key"] == public
    })
    .await;
    assert!(key_ok, "GET /v1/push/key gives the notifier's VAPID key");

    let (sub_th, sub_en) = (push.subscribe(), push.subscribe());
    let channel = |s: &sapha_tests::push_service::Subscription| serde_json::json!({ "type": "webpush", "subscription": s.to_json() });
    let th = follow(&hub, "th", channel(&sub_th), &[bill]).await;
    follow(&hub, "en", channel(&sub_en), &[bill]).await;
    let line_user = format!("U{}", "0123456789abcdef".repeat(2));
    let on_line = follow(
        &hub,
        "en",
        serde_json::json!({"type": "line", "to": line_user}),
        &[bill],
    )
    .await;
    // The English subscription's push service is busy once: 429, Retry-After 1 s.
    push.fail_next(&sub_en, 429, Some(1), 1);

    let history = bill_history(bill, &[Proposed, HouseR1, HouseCommittee]);
    publisher.publish(&history[0]).await;
    assert!(push.wait_for(2, WAIT).await, "{} pushes", push.count());
    assert!(
        line.wait_for(1, WAIT).await,
        "{} LINE messages",
        line.count()
    );

    let messages = push.received();
    let to_th = messages
        .iter()
        .find(|m| sub_th.endpoint.ends_with(&m.endpoint_id))
        .unwrap();
    let payload = to_th.payload_json();
    assert_eq!(payload["lang"], "th");
    assert_eq!(payload["bill_id"], bill);
    assert_eq!(payload["title"]["th"], "ร่าง พ.ร.บ. ทดสอบ พ.ศ. ....");
    assert_eq!(
        payload["body"]["en"],
        "Draft Test Act B.E. .... moved on to: introduced"
    );
    assert_eq!(payload["url"], "https://sapha.example/?bill=b-2566-0001");
    assert_eq!(payload["tag"], "bill-b-2566-0001");
    assert_eq!(to_th.ttl, 3600);
    assert_eq!(to_th.urgency.as_deref(), Some("normal"));
    assert_eq!(to_th.topic.as_deref(), Some(bill));
    assert_eq!(to_th.claims["sub"], "mailto:ops@senate.example");
    assert!(
        push.rejected().iter().any(|r| r.status == 429),
        "the 429 was answered and then retried"
    );
    let texts = line.received()[0].texts();
    assert_eq!(texts, ["Draft Test Act B.E. .... moved on to: introduced\nhttps://sapha.example/?bill=b-2566-0001"]);
    assert_eq!(
        line.received()[0].retry_key.as_deref(),
        Some(sapha_subscribers::notify::line_retry_key(&history[0].event_id, &on_line.id).as_str())
    );

    // The Thai browser unsubscribed: its push service answers 410, and the
    // follower (with its endpoint) is deleted from the follow store.
    push.unsubscribe(&sub_th);
    publisher.publish(&history[1]).await;
    assert!(push.wait_for(3, WAIT).await, "{} pushes", push.count());
    let store = sapha_tests::fixtures::follow_store(&nats.url()).await;
    let gone = sapha_tests::wait_until(WAIT, || async {
        store.read(&th.id).await.unwrap().is_none()
    })
    .await;
    assert!(gone, "a 410 deletes the follower");
    assert!(line.wait_for(2, WAIT).await);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!((push.count(), line.count()), (3, 2), "nothing twice");
    replica.stop().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_started_before_the_stream_waits_for_it() {
    let nats = NatsServer::start();
    let receiver = Receiver::start().await;
    let replica = Replica::start(
        &nats.url(),
        test_settings(),
        webhook_channels(receiver.url()),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // The publisher creates the stream later; a follower appears meanwhile.
    let publisher = Publisher::new(&nats).await;
    let store = sapha_tests::fixtures::follow_store(&nats.url()).await;
    store
        .create(
            sapha_follows::Lang::En,
            sapha_follows::Channel::Webhook {
                reference: "late".into(),
            },
            &["b-2566-0009".to_owned()],
            &sapha_follows::Limits::default(),
        )
        .await
        .unwrap();
    let got = sapha_tests::wait_until(WAIT, || async {
        // Published until the notifier's plan consumer exists (it starts from the next change).
        publisher
            .publish(&bill_history("b-2566-0009", &[Proposed])[0])
            .await;
        receiver.count() >= 1
    })
    .await;
    assert!(got, "the notifier did not start once the stream existed");
    replica.stop().await;
}
