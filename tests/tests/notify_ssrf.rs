//! Server-side request forgery (issue 21, High 1): followers whose endpoints
//! point at the notifier's own machine, written straight into the follow
//! bucket (bypassing the follow API's check), and a notifier without the
//! loopback test setting: it makes no connection to them, counts each as
//! `blocked_target`, and never retries them.

mod hub_support;
mod notify_support;

use hub_support::*;
use notify_support::*;
use sapha_follows::{Channel, Lang, Limits, PushHosts, PushKeys, PushSubscription};
use sapha_proto::stage::Stage::*;
use sapha_subscribers::notify::egress::Lookup;
use sapha_subscribers::notify::{Channels, Targets, WebPushSettings, WebhookTarget};
use sapha_tests::fixtures::bill_history;
use sapha_tests::NatsServer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A loopback listener that counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, accepted, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_on_loopback_are_never_connected_to() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let store = sapha_tests::fixtures::follow_store(&nats.url()).await;
    let (port, accepted, listener) = counting_listener().await;
    let push = sapha_tests::push_service::PushService::start().await;
    let bill = "b-2566-0001";

    // Written with the store's own API under the loosest policy: what a
    // record that never passed the follow API looks like.
    let loose = Limits {
        allow_http_endpoints: true,
        push_hosts: PushHosts::Any,
        ..Limits::default()
    };
    let endpoints = [
        format!("http://127.0.0.1:{port}/push/1"),
        format!("https://127.0.0.1:{port}/push/2"),
        format!("http://127.0.0.2:{port}/push/3"),
        format!("http://2130706433:{port}/push/4"),
        format!("http://[::ffff:127.0.0.1]:{port}/push/5"),
        format!("http://localhost:{port}/push/6"),
        // A public-looking name that resolves to loopback (see `lookup`).
        format!("https://rebind.example:{port}/push/7"),
    ];
    for endpoint in &endpoints {
        let sub = push.subscribe();
        let channel = Channel::Webpush {
            subscription: PushSubscription {
                endpoint: endpoint.clone(),
                keys: PushKeys {
                    p256dh: sub.p256dh,
                    auth: sub.auth,
                },
                expiration_time: (),
            },
        };
        store
            .create(Lang::Th, channel, &[bill.to_owned()], &loose)
            .await
            .unwrap();
    }
    let webhook_user = Channel::Webhook {
        reference: "user-1".into(),
    };
    store
        .create(Lang::En, webhook_user, &[bill.to_owned()], &loose)
        .await
        .unwrap();

    // The notifier: any public push host (so that the address checks, not the
    // host list, are what refuses), no loopback test setting, and a resolver
    // that answers loopback for `rebind.example` (DNS rebinding).
    let lookup = Lookup::Static(Arc::new(
        [(
            "rebind.example".to_owned(),
            vec!["127.0.0.1".parse().unwrap()],
        )]
        .into(),
    ));
    let targets = Targets {
        allow_loopback: false,
        allow_nets: Vec::new(),
        push_hosts: PushHosts::Any,
        lookup,
    };
    let (private, _) = sapha_subscribers::notify::generate_vapid_key();
    let webpush = WebPushSettings {
        vapid_private_key: private,
        subject: "mailto:ops@senate.example".into(),
        ttl: Duration::from_secs(60),
        per_host: 4,
    };
    // The operator's webhook on loopback is refused at start...
    let on_loopback = Channels::new(
        None,
        None,
        Some(WebhookTarget {
            url: format!("http://127.0.0.1:{port}/hook"),
            secret: b"s".to_vec(),
        }),
        Duration::from_secs(5),
        targets.clone(),
    );
    assert!(
        on_loopback.is_err(),
        "a loopback webhook is refused at start"
    );
    // ... and one behind a name that resolves to loopback is refused at
    // connect time.
    let channels = Channels::new(
        Some(webpush),
        None,
        Some(WebhookTarget {
            url: format!("http://rebind.example:{port}/hook"),
            secret: b"s".to_vec(),
        }),
        Duration::from_secs(5),
        targets,
    )
    .unwrap();
    let replica = Replica::start(&nats.url(), test_settings(), channels).await;
    for e in bill_history(bill, &[Proposed, HouseR1]) {
        publisher.publish(&e).await;
    }
    let expected = (endpoints.len() as u64 + 1) * 2;
    let stats = replica.stats.clone();
    let done = sapha_tests::wait_until(WAIT, || {
        let stats = stats.clone();
        async move { stats.blocked.load(Ordering::Relaxed) >= expected }
    })
    .await;
    assert!(
        done,
        "{} of {expected} sends blocked: {}",
        replica.stats.blocked.load(Ordering::Relaxed),
        replica.stats.summary()
    );
    let stats = &replica.stats;
    assert_eq!(stats.channel("webpush").blocked.load(Ordering::Relaxed), 14);
    assert_eq!(stats.channel("webhook").blocked.load(Ordering::Relaxed), 2);
    assert_eq!(
        stats.failed_attempts.load(Ordering::Relaxed),
        0,
        "never retried"
    );
    assert_eq!(stats.sent.load(Ordering::Relaxed), 0);
    // The planned jobs are done (acked), not waiting to come back.
    let url = nats.url();
    let acked = sapha_tests::wait_until(WAIT, || async {
        sapha_tests::fixtures::stream_len(&url, "SAPHA_NOTIFY_JOBS").await == 0
    })
    .await;
    assert!(acked, "every job is acked: nothing is retried");
    replica.stop().await;
    // Our own connection, accepted after any the notifier might have made
    // (the accept loop takes them in order): then the count is final.
    let _probe = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let counted =
        sapha_tests::wait_until(WAIT, || async { accepted.load(Ordering::SeqCst) >= 1 }).await;
    assert!(counted);
    assert_eq!(
        accepted.load(Ordering::SeqCst) - 1,
        0,
        "the notifier connected to the loopback listener"
    );
    listener.abort();
}
