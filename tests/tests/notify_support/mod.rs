//! Shared by the `notify*` tests: a hub whose follow API takes loopback push
//! endpoints, a follow API client, and notifier replicas run in-process.
#![allow(dead_code)]

use crate::hub_support::*;
use sapha_subscribers::notify::{self, Channels, NotifySettings, NotifyStats};
use sapha_tests::NatsServer;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A hub config whose follow API accepts `http://` (loopback) push endpoints.
pub fn follow_config(nats_url: String) -> sapha_hub::Config {
    let mut config = sapha_hub::Config::default();
    config.nats.url = nats_url;
    config.nats.max_backoff_ms = 200;
    config.shutdown.drain_timeout_ms = 3_000;
    config.follow.allow_http_endpoints = true;
    config
}

/// A follower made through the follow API.
#[derive(Debug, Clone)]
pub struct Follower {
    pub id: String,
    pub secret: String,
}

/// Creates a follower; panics unless the API answers 201.
pub async fn follow(hub: &TestHub, lang: &str, channel: Value, bills: &[&str]) -> Follower {
    let r = reqwest::Client::new()
        .post(hub.http("/v1/followers"))
        .json(&json!({ "lang": lang, "channel": channel, "bills": bills }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    Follower {
        id: body["id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    }
}

/// A webhook channel with the app's reference `user`.
pub fn webhook(user: &str) -> Value {
    json!({ "type": "webhook", "reference": user })
}

/// Settings for a test notifier: quick redelivery, small jobs.
pub fn test_settings() -> NotifySettings {
    NotifySettings {
        from_start: true,
        chunk: 50,
        concurrency: 16,
        ack_wait: Duration::from_secs(3),
        attempts: 3,
        redelivery_backoff: sapha_proto::backoff::Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(1),
        },
        dashboard_url: "https://sapha.example".into(),
        ..NotifySettings::default()
    }
}

/// One notifier replica running in this process.
pub struct Replica {
    pub stats: Arc<NotifyStats>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    pub async fn start(nats_url: &str, settings: NotifySettings, channels: Channels) -> Replica {
        let client = async_nats::connect(nats_url).await.unwrap();
        let stats = Arc::new(NotifyStats::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (stats, stop) = (stats.clone(), stop.clone());
            async move {
                notify::run(client, settings, channels, stats, stop)
                    .await
                    .expect("the notifier runs");
            }
        });
        Replica { stats, stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}

/// The notifier's egress policy in tests: the fake services listen on
/// loopback, which only the test setting allows.
pub fn loopback_targets() -> notify::Targets {
    notify::Targets {
        allow_loopback: true,
        ..Default::default()
    }
}

/// Channels with only the webhook, to `url`.
pub fn webhook_channels(url: String) -> Channels {
    Channels::new(
        None,
        None,
        Some(notify::WebhookTarget {
            url,
            secret: b"hook-secret".to_vec(),
        }),
        Duration::from_secs(5),
        loopback_targets(),
    )
    .unwrap()
}

/// Waits until `nats` has the stream (the publisher made it).
pub fn nats_url(nats: &NatsServer) -> String {
    nats.url()
}

/// What a notifier does at start for the follow API: announces every channel
/// (the hub takes only channels some notifier sends).
pub async fn announce_channels(nats_url: &str) {
    sapha_tests::fixtures::follow_store(nats_url)
        .await
        .announce_channels(&["webpush", "line", "webhook"])
        .await
        .unwrap();
}

/// Waits until the hub's state holds each of `bills` (the follow API refuses
/// bills it does not know).
pub async fn wait_bills_known(hub: &TestHub, bills: &[&str]) {
    for bill in bills {
        let known = sapha_tests::wait_http_ok(&hub.http(&format!("/v1/bills/{bill}")), WAIT).await;
        assert!(known, "the hub does not know {bill}");
    }
}

/// Makes `bills` known to the hub: one stage change each (an event id no
/// fixture history uses), then waits for the hub's state to hold them.
pub async fn introduce_bills(hub: &TestHub, publisher: &Publisher, bills: &[&str]) {
    for bill in bills {
        let mut e =
            sapha_tests::fixtures::bill_event(bill, 1, None, sapha_proto::stage::Stage::Proposed);
        e.event_id = format!("e-{bill}-introduced");
        publisher.publish(&e).await;
    }
    wait_bills_known(hub, bills).await;
}

/// Waits until the notifier's plan consumer exists (a replica started
/// without `from_start` notifies only changes published after it).
pub async fn wait_plan_consumer(nats_url: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url).await.unwrap());
    let ok = sapha_tests::wait_until(WAIT, || {
        let js = js.clone();
        async move {
            match js.get_stream("PARL").await {
                Ok(s) => s
                    .consumer_info(sapha_subscribers::notify::plan::PLAN_CONSUMER)
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(ok, "the plan consumer does not exist");
}
