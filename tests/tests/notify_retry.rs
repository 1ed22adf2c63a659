//! A dead endpoint is not a retry storm (issue 21, High 2): a push
//! subscription that answers 500 to everything is tried at most
//! `attempts * deliveries` times per stage change, each given-up change is
//! counted (`gave_up`), and after `remove_after` given-up changes in a row the
//! follower is removed, so later stage changes do not try it at all.

mod hub_support;
mod notify_support;

use hub_support::*;
use notify_support::*;
use sapha_follows::{Channel, Lang, Limits, PushKeys, PushSubscription};
use sapha_proto::backoff::Backoff;
use sapha_proto::stage::Stage::*;
use sapha_subscribers::notify::{Channels, WebPushSettings};
use sapha_tests::fixtures::bill_history;
use sapha_tests::push_service::{PushService, Subscription};
use sapha_tests::NatsServer;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn channel(sub: &Subscription) -> Channel {
    Channel::Webpush {
        subscription: PushSubscription {
            endpoint: sub.endpoint.clone(),
            keys: PushKeys {
                p256dh: sub.p256dh.clone(),
                auth: sub.auth.clone(),
            },
            expiration_time: (),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_tried_a_bounded_number_of_times_then_removed() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let store = sapha_tests::fixtures::follow_store(&nats.url()).await;
    let push = PushService::start().await;
    let bill = "b-2566-0001";
    let limits = Limits {
        allow_http_endpoints: true,
        ..Limits::default()
    };
    let (dead, alive) = (push.subscribe(), push.subscribe());
    push.fail_next(&dead, 500, None, 1_000_000);
    let (dead_follower, _) = store
        .create(Lang::Th, channel(&dead), &[bill.to_owned()], &limits)
        .await
        .unwrap();
    store
        .create(Lang::En, channel(&alive), &[bill.to_owned()], &limits)
        .await
        .unwrap();

    let (private, public) = sapha_subscribers::notify::generate_vapid_key();
    push.expect_vapid_key(&public);
    let channels = Channels::new(
        Some(WebPushSettings {
            vapid_private_key: private,
            subject: "mailto:ops@senate.example".into(),
            ttl: Duration::from_secs(60),
            per_host: 4,
        }),
        None,
        None,
        Duration::from_secs(5),
        loopback_targets(),
    )
    .unwrap();
    // Quick waits, so the test is quick; the counts are what is checked.
    let quick = Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
    };
    let settings = sapha_subscribers::notify::NotifySettings {
        attempts: 2,
        deliveries: 3,
        attempt_backoff: quick,
        redelivery_backoff: quick,
        remove_after: 2,
        ..test_settings()
    };
    let cap = (settings.attempts * settings.deliveries) as usize;
    let replica = Replica::start(&nats.url(), settings, channels).await;

    // Two stage changes: the dead subscription fails both, is given up on
    // twice, and is removed.
    for e in bill_history(bill, &[Proposed, HouseR1]) {
        publisher.publish(&e).await;
    }
    let stats = replica.stats.clone();
    let given_up = sapha_tests::wait_until(WAIT, || {
        let stats = stats.clone();
        async move { stats.gave_up.load(Ordering::Relaxed) >= 2 }
    })
    .await;
    assert!(given_up, "{}", replica.stats.summary());
    let removed = sapha_tests::wait_until(WAIT, || async {
        store.read(&dead_follower.id).await.unwrap().is_none()
    })
    .await;
    assert!(removed, "the follower is removed after 2 given-up changes");
    assert!(store.followers_of(bill).await.unwrap().len() == 1);
    let url = nats.url();
    let drained = sapha_tests::wait_until(WAIT, || async {
        sapha_tests::fixtures::stream_len(&url, "SAPHA_NOTIFY_JOBS").await == 0
    })
    .await;
    assert!(drained, "no job is left to come back");
    let tries = |sub: &Subscription| {
        push.rejected()
            .iter()
            .filter(|r| r.endpoint_id == sub.id)
            .count()
    };
    let seen = tries(&dead);
    assert!(
        seen <= 2 * cap,
        "{seen} tries for 2 changes, more than the cap of {cap} each"
    );
    assert!(seen >= 2, "{seen}");
    assert_eq!(replica.stats.gave_up.load(Ordering::Relaxed), 2);
    assert_eq!(
        replica
            .stats
            .channel("webpush")
            .gave_up
            .load(Ordering::Relaxed),
        2
    );
    assert!(replica.stats.removed.load(Ordering::Relaxed) >= 1);

    // A third change: the live subscription gets it, the removed one is not
    // tried again.
    publisher
        .publish(&bill_history(bill, &[Proposed, HouseR1, HouseCommittee])[2])
        .await;
    assert!(push.wait_for(3, WAIT).await, "the live follower gets all 3");
    let planned = sapha_tests::wait_until(WAIT, || {
        let stats = stats.clone();
        async move { stats.planned.load(Ordering::Relaxed) >= 3 }
    })
    .await;
    assert!(planned);
    assert_eq!(tries(&dead), seen, "a removed follower is not tried again");
    replica.stop().await;
}
