//! The follow API against a real hub and nats-server: followers are created,
//! changed and deleted in the NATS key-value bucket, every refusal has its
//! documented code, and a deleted follower leaves nothing behind.

mod hub_support;
mod notify_support;

use hub_support::*;
use notify_support::*;
use sapha_follows::FollowStore;
use sapha_tests::NatsServer;
use serde_json::{json, Value};

async fn store(nats: &NatsServer) -> FollowStore {
    sapha_tests::fixtures::follow_store(&nats.url()).await
}

/// The P-256 base point, uncompressed: a valid browser key.
const P256_GENERATOR: [u8; 65] = [
    4, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
    0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
    0xf5,
];

/// A subscription whose p256dh has the right length but is off the curve.
fn off_curve(endpoint: &str) -> Value {
    let mut point = P256_GENERATOR;
    point[64] ^= 1;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    json!({ "type": "webpush", "subscription": {
        "endpoint": endpoint,
        "keys": { "p256dh": b64.encode(point), "auth": b64.encode([3u8; 16]) },
    }})
}

fn push(endpoint: &str) -> Value {
    let point = P256_GENERATOR;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    json!({ "type": "webpush", "subscription": {
        "endpoint": endpoint,
        "keys": { "p256dh": b64.encode(point), "auth": b64.encode([3u8; 16]) },
    }})
}

async fn call(
    method: reqwest::Method,
    url: String,
    secret: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(s) = secret {
        r = r.bearer_auth(s);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_are_created_changed_and_deleted_in_nats() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(follow_config(nats.url())).await;
    let store = store(&nats).await;
    introduce_bills(&hub, &publisher, &["b-2566-0001", "b-2566-0002"]).await;
    announce_channels(&nats.url()).await;

    let alice = follow(
        &hub,
        "th",
        push("http://127.0.0.1:9/push/a"),
        &["b-2566-0001"],
    )
    .await;
    let (status, body) = call(
        reqwest::Method::GET,
        hub.http(&format!("/v1/followers/{}", alice.id)),
        Some(&alice.secret),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["bills"], json!(["b-2566-0001"]));
    assert_eq!(body["channel"], "webpush");
    assert_eq!(body["lang"], "th");
    assert!(
        body.get("secret").is_none(),
        "the secret is shown once: {body}"
    );

    // Follow a second bill, then unfollow the first.
    let bills = |b: &str| hub.http(&format!("/v1/followers/{}/bills/{b}", alice.id));
    let (status, body) = call(
        reqwest::Method::PUT,
        bills("b-2566-0002"),
        Some(&alice.secret),
        None,
    )
    .await;
    assert_eq!(
        (status, body["bills"].clone()),
        (200, json!(["b-2566-0001", "b-2566-0002"]))
    );
    let (status, body) = call(
        reqwest::Method::DELETE,
        bills("b-2566-0001"),
        Some(&alice.secret),
        None,
    )
    .await;
    assert_eq!(
        (status, body["bills"].clone()),
        (200, json!(["b-2566-0002"]))
    );
    let followers = |b: &'static str| {
        let store = store.clone();
        async move {
            store
                .followers_of(b)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.follower)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(followers("b-2566-0001").await, Vec::<String>::new());
    assert_eq!(followers("b-2566-0002").await, vec![alice.id.clone()]);

    // Change the language: the index entries follow.
    let (status, body) = call(
        reqwest::Method::PATCH,
        hub.http(&format!("/v1/followers/{}", alice.id)),
        Some(&alice.secret),
        Some(json!({"lang": "en"})),
    )
    .await;
    assert_eq!((status, body["lang"].clone()), (200, json!("en")));
    let d = store.followers_of("b-2566-0002").await.unwrap();
    assert_eq!(d[0].lang, sapha_follows::Lang::En);

    // Delete: the follower and its push endpoint are gone from the bucket.
    let (status, _) = call(
        reqwest::Method::DELETE,
        hub.http(&format!("/v1/followers/{}", alice.id)),
        Some(&alice.secret),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(store.read(&alice.id).await.unwrap().is_none());
    assert!(store.followers_of("b-2566-0002").await.unwrap().is_empty());
    let (status, body) = call(
        reqwest::Method::GET,
        hub.http(&format!("/v1/followers/{}", alice.id)),
        Some(&alice.secret),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (404, json!("unknown_follower"))
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_documented_error() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = follow_config(nats.url());
    config.follow.max_bills = 3;
    config.follow.followers_per_ip_per_hour = 2;
    let mut strict = config.clone();
    strict.follow.allow_http_endpoints = false;
    let hub = TestHub::start(config).await;
    // The notifier here sends Web Push and webhooks, not LINE.
    store(&nats)
        .await
        .announce_channels(&["webhook", "webpush"])
        .await
        .unwrap();
    let post = |body: Value| {
        call(
            reqwest::Method::POST,
            hub.http("/v1/followers"),
            None,
            Some(body),
        )
    };

    let cases = [
        (json!({"lang": "de", "channel": webhook("u1")}), "lang"),
        (
            json!({"lang": "th", "channel": {"type": "sms", "to": "x"}}),
            "channel",
        ),
        (
            json!({"lang": "th", "channel": webhook("u 1")}),
            "channel.reference",
        ),
        (
            json!({"lang": "th", "channel": webhook("u1"), "bills": ["b.>"]}),
            "bills",
        ),
        (
            json!({"lang": "th", "channel": webhook("u1"), "bills": ["a", "b", "c", "d"]}),
            "bills",
        ),
        (
            json!({"lang": "th", "channel": {"type": "line", "to": "U1"}}),
            "channel.to",
        ),
        (
            json!({"lang": "th", "channel": webhook("u1"), "extra": 1}),
            "extra",
        ),
        // Issue 21, item 10: an unknown field inside a channel object.
        (
            json!({"lang": "th", "channel": {"type": "webhook", "reference": "u1", "extra": 1}}),
            "channel",
        ),
        (
            json!({"lang": "th", "channel": {"type": "line", "to": format!("U{}", "a".repeat(32)), "x": 1}}),
            "channel",
        ),
        // ... a LINE id in upper case (the documented pattern is lower-case hex).
        (
            json!({"lang": "th", "channel": {"type": "line", "to": format!("U{}", "A".repeat(32))}}),
            "channel.to",
        ),
        // ... a p256dh that is not a point on P-256.
        (
            json!({"lang": "th", "channel": off_curve("http://127.0.0.1:9/p")}),
            "channel.subscription.keys.p256dh",
        ),
    ];
    for (body, parameter) in cases {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["code"], "bad_parameter", "{answer}");
        assert!(
            answer["parameter"].as_str().unwrap().starts_with(parameter),
            "{body} -> {answer}"
        );
    }
    // A bill the hub does not know.
    let (status, answer) =
        post(json!({"lang": "th", "channel": webhook("u1"), "bills": ["b-9999-0001"]})).await;
    assert_eq!(
        (status, answer["code"].clone(), answer["parameter"].clone()),
        (400, json!("unknown_bill"), json!("bills")),
        "{answer}"
    );
    // A channel no notifier sends.
    let (status, answer) = post(
        json!({"lang": "th", "channel": {"type": "line", "to": format!("U{}", "a".repeat(32))}}),
    )
    .await;
    assert_eq!(
        (status, answer["code"].clone(), answer["parameter"].clone()),
        (400, json!("channel_unavailable"), json!("channel.type")),
        "{answer}"
    );
    // Not JSON: a cross-site form cannot create followers.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut r = reqwest::Client::new()
            .post(hub.http("/v1/followers"))
            .body(json!({"lang": "th", "channel": webhook("u1")}).to_string());
        if let Some(t) = content_type {
            r = r.header("content-type", t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 415, "{content_type:?}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "unsupported_media_type");
    }
    // Too large a body.
    let big = json!({"lang": "th", "channel": webhook(&"x".repeat(9000))});
    let (status, answer) = post(big).await;
    assert_eq!(
        (status, answer["code"].clone()),
        (413, json!("body_too_large"))
    );
    // No secret, a wrong secret.
    let f = follow(&hub, "en", webhook("u1"), &[]).await;
    let url = hub.http(&format!("/v1/followers/{}", f.id));
    let (status, answer) = call(reqwest::Method::GET, url.clone(), None, None).await;
    assert_eq!(
        (status, answer["code"].clone()),
        (401, json!("unauthorized"))
    );
    let (status, answer) = call(reqwest::Method::GET, url, Some("wrong"), None).await;
    assert_eq!((status, answer["code"].clone()), (403, json!("forbidden")));
    // The hourly allowance per address: 2 (one used above).
    follow(&hub, "en", webhook("u2"), &[]).await;
    let (status, answer) = post(json!({"lang": "th", "channel": webhook("u3")})).await;
    assert_eq!(
        (status, answer["code"].clone()),
        (429, json!("too_many_followers_from_ip"))
    );
    // No notifier has published a VAPID key yet.
    let (status, answer) = call(reqwest::Method::GET, hub.http("/v1/push/key"), None, None).await;
    assert_eq!(
        (status, answer["code"].clone()),
        (503, json!("notifications_off"))
    );
    hub.shutdown().await;

    // A hub that takes only https:// push endpoints (the default).
    let hub = TestHub::start(strict).await;
    let (status, answer) = call(
        reqwest::Method::POST,
        hub.http("/v1/followers"),
        None,
        Some(json!({"lang": "th", "channel": push("http://127.0.0.1:9/p")})),
    )
    .await;
    assert_eq!(
        (status, answer["parameter"].clone()),
        (400, json!("channel.subscription.endpoint"))
    );
    hub.shutdown().await;
}

/// Issue 21, High 1: every spelling of a non-public endpoint is refused at
/// POST and at PATCH, even on a hub that takes any push host; a hub with the
/// default takes only the browsers' push services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_push_endpoints_are_refused_at_post_and_patch() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = follow_config(nats.url());
    config.follow.allow_http_endpoints = false;
    config.follow.push_hosts = vec!["*".into()];
    config.follow.followers_per_ip_per_hour = 1000;
    config.state.request_burst = 1000;
    let hub = TestHub::start(config).await;
    announce_channels(&nats.url()).await;
    let refused = [
        "https://127.0.0.1/p",
        "https://127.0.0.2/p",
        "https://127.1/p",
        "https://[::1]/p",
        "https://localhost/p",
        "https://LOCALHOST./p",
        "https://a.localhost/p",
        "https://2130706433/p",
        "https://0x7f000001/p",
        "https://0177.0.0.1/p",
        "https://%31%32%37.0.0.1/p",
        "https://[::ffff:127.0.0.1]/p",
        "https://[::ffff:7f00:1]/p",
        "https://[64:ff9b::7f00:1]/p",
        "https://[2002:7f00:1::]/p",
        "https://0.0.0.0/p",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/p",
        "https://192.168.0.1/p",
        "https://100.64.0.1/p",
        "https://[fd00::1]/p",
        "https://[fe80::1]/p",
        "https://224.0.0.1/p",
        "https://255.255.255.255/p",
        "https://metadata.google.internal/p",
        "https://intranet/p",
        "http://fcm.googleapis.com/p",
    ];
    let post = |channel: Value| {
        call(
            reqwest::Method::POST,
            hub.http("/v1/followers"),
            None,
            Some(json!({"lang": "th", "channel": channel})),
        )
    };
    for endpoint in refused {
        let (status, answer) = post(push(endpoint)).await;
        assert_eq!(
            (status, answer["parameter"].clone()),
            (400, json!("channel.subscription.endpoint")),
            "{endpoint} -> {answer}"
        );
    }
    // A public endpoint is taken; a PATCH to a private one is refused.
    let (status, created) = post(push("https://push.example.org/p/1")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    for endpoint in refused {
        let (status, answer) = call(
            reqwest::Method::PATCH,
            hub.http(&format!("/v1/followers/{id}")),
            Some(secret),
            Some(json!({"channel": push(endpoint)})),
        )
        .await;
        assert_eq!(
            (status, answer["parameter"].clone()),
            (400, json!("channel.subscription.endpoint")),
            "PATCH {endpoint} -> {answer}"
        );
    }
    hub.shutdown().await;

    // The default: only the browsers' push services.
    let mut config = follow_config(nats.url());
    config.follow.allow_http_endpoints = false;
    let hub = TestHub::start(config).await;
    let (status, answer) = call(
        reqwest::Method::POST,
        hub.http("/v1/followers"),
        None,
        Some(json!({"lang": "th", "channel": push("https://push.example.org/p/1")})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not a push service"),
        "{answer}"
    );
    let (status, answer) = call(
        reqwest::Method::POST,
        hub.http("/v1/followers"),
        None,
        Some(json!({"lang": "th", "channel": push("https://fcm.googleapis.com/fcm/send/x")})),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    hub.shutdown().await;
}

/// Issue 21, item 8: the follow API works as soon as NATS answers, before the
/// event stream exists (the README's order: `hub`, then `play`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follow_api_works_before_the_event_stream_exists() {
    let nats = NatsServer::start();
    let hub = TestHub::start_unready(follow_config(nats.url())).await;
    // The store opens (the hub creates the bucket); with no notifier started
    // yet, the answer is notifications_off, not follow_store_unavailable.
    let last = std::sync::Mutex::new((0, Value::Null));
    let opened = sapha_tests::wait_until(WAIT, || async {
        let answer = call(
            reqwest::Method::POST,
            hub.http("/v1/followers"),
            None,
            Some(json!({"lang": "th", "channel": webhook("early-1")})),
        )
        .await;
        let done = answer.1["code"] == "notifications_off";
        *last.lock().unwrap() = answer;
        done
    })
    .await;
    assert!(opened, "{:?}", last.lock().unwrap());
    announce_channels(&nats.url()).await;
    let created = sapha_tests::wait_until(WAIT, || async {
        let answer = call(
            reqwest::Method::POST,
            hub.http("/v1/followers"),
            None,
            Some(json!({"lang": "th", "channel": webhook("early-1")})),
        )
        .await;
        let done = answer.0 == 201;
        *last.lock().unwrap() = answer;
        done
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(created, "POST /v1/followers before the stream: {last:?}");
    let id = last.1["id"].as_str().unwrap().to_owned();
    // The bucket is there, with the follower in it.
    let store = store(&nats).await;
    assert!(store.read(&id).await.unwrap().is_some());
    hub.shutdown().await;
}

fn jwt(claims: Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Issue 21, item 13: a server-side integrator with a token (a JWT with the
/// follow scope, verified with the `[auth]` keys) has its own hourly
/// allowance, not its address's, and is not held to the per-IP request rate;
/// every 429 of the hourly caps says when to come back (`Retry-After`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrators_have_their_own_allowance() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = follow_config(nats.url());
    config.follow.followers_per_ip_per_hour = 1;
    config.follow.integrator_followers_per_hour = 3;
    config.auth.hs256_secret = Some(sapha_hub::config::Secret("integrator-secret".into()));
    config.state.requests_per_second = 1;
    config.state.request_burst = 5;
    let hub = TestHub::start(config).await;
    announce_channels(&nats.url()).await;
    let exp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600) as i64;
    let post = |token: Option<String>, user: &'static str| {
        let url = hub.http("/v1/followers");
        async move {
            let mut r = reqwest::Client::new()
                .post(url)
                .json(&json!({"lang": "th", "channel": webhook(user)}));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body["code"].clone(), retry_after)
        }
    };
    // An anonymous caller: 1 an hour from this address, then 429 + Retry-After.
    assert_eq!(post(None, "a1").await.0, 201);
    let (status, code, retry_after) = post(None, "a2").await;
    assert_eq!((status, code), (429, json!("too_many_followers_from_ip")));
    let wait = retry_after.expect("the hourly cap's 429 has Retry-After");
    assert!((1..=3600).contains(&wait), "{wait}");
    // Tokens that do not verify, or lack the scope.
    let secret = b"integrator-secret";
    let no_scope = jwt(json!({"sub": "app-1", "exp": exp}), secret);
    let (status, code, _) = post(Some(no_scope), "x").await;
    assert_eq!((status, code), (403, json!("forbidden")));
    let forged = jwt(
        json!({"sub": "app-1", "exp": exp, "scope": "followers:create"}),
        b"wrong",
    );
    let (status, code, _) = post(Some(forged), "x").await;
    assert_eq!((status, code), (401, json!("unauthorized")));
    let expired = jwt(
        json!({"sub": "app-1", "exp": exp - 7200, "scope": "followers:create"}),
        secret,
    );
    let (status, code, _) = post(Some(expired), "x").await;
    assert_eq!((status, code), (401, json!("unauthorized")));
    // The address's request burst (5) is spent; the integrator is not held
    // to it, and gets its own 3 an hour.
    let app1 = jwt(
        json!({"sub": "app-1", "exp": exp, "scope": "profile followers:create"}),
        secret,
    );
    for user in ["i1", "i2", "i3"] {
        let (status, code, _) = post(Some(app1.clone()), user).await;
        assert_eq!(status, 201, "{user}: {code}");
    }
    let (status, code, retry_after) = post(Some(app1), "i4").await;
    assert_eq!(
        (status, code),
        (429, json!("too_many_followers_from_integrator"))
    );
    assert!(retry_after.is_some_and(|w| (1..=3600).contains(&w)));
    // Another integrator has its own allowance.
    let app2 = jwt(
        json!({"sub": "app-2", "exp": exp, "scope": ["followers:create"]}),
        secret,
    );
    assert_eq!(post(Some(app2), "j1").await.0, 201);
    hub.shutdown().await;
}

/// Issue 21, Low: a follower whose record is garbage can still be deleted
/// (with its secret while its hash can be read; by id when nothing can), and
/// a garbage VAPID key in the bucket is never handed to browsers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_bucket_is_deletable_and_never_served() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(follow_config(nats.url())).await;
    let store = store(&nats).await;
    introduce_bills(&hub, &publisher, &["b-2566-0001"]).await;
    announce_channels(&nats.url()).await;
    let kv = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap())
        .get_key_value(sapha_follows::DEFAULT_BUCKET)
        .await
        .unwrap();
    let delete = |id: &str, secret: &str| {
        let (url, secret) = (hub.http(&format!("/v1/followers/{id}")), secret.to_owned());
        async move { call(reqwest::Method::DELETE, url, Some(&secret), None).await }
    };

    // A record whose secret hash is still readable: the secret is checked.
    let a = follow(&hub, "th", webhook("a"), &["b-2566-0001"]).await;
    let raw = kv.get(format!("f.{}", a.id)).await.unwrap().unwrap();
    let stored: Value = serde_json::from_slice(&raw).unwrap();
    let hash = stored["secret_sha256"].as_str().unwrap().to_owned();
    let garbage = json!({"secret_sha256": hash, "bills": 7, "lang": "xx"});
    kv.put(format!("f.{}", a.id), garbage.to_string().into())
        .await
        .unwrap();
    let (status, answer) = call(
        reqwest::Method::GET,
        hub.http(&format!("/v1/followers/{}", a.id)),
        Some(&a.secret),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["code"].clone()),
        (500, json!("follower_unreadable"))
    );
    assert_eq!(delete(&a.id, "wrong").await.0, 403);
    assert_eq!(delete(&a.id, &a.secret).await.0, 204);
    assert!(store.read(&a.id).await.unwrap().is_none());

    // A record that is not even JSON: deleted by naming its id.
    let b = follow(&hub, "th", webhook("b"), &["b-2566-0001"]).await;
    kv.put(format!("f.{}", b.id), vec![0u8, 159, 146, 150].into())
        .await
        .unwrap();
    let (status, _) = call(
        reqwest::Method::DELETE,
        hub.http(&format!("/v1/followers/{}", b.id)),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "still needs an Authorization header");
    assert_eq!(delete(&b.id, "anything").await.0, 204);
    // Both are gone from the bill's index too, and unknown now.
    assert!(store.followers_of("b-2566-0001").await.unwrap().is_empty());
    assert_eq!(delete(&b.id, "anything").await.0, 404);

    // A garbage VAPID key is not served.
    for bad in ["not-a-key", &format!("B{}", "A".repeat(86))] {
        kv.put("config.vapid_public_key", bad.to_owned().into())
            .await
            .unwrap();
        let (status, answer) =
            call(reqwest::Method::GET, hub.http("/v1/push/key"), None, None).await;
        assert_eq!(
            (status, answer["code"].clone()),
            (503, json!("push_key_invalid")),
            "{bad}"
        );
    }
    let (_, good) = sapha_subscribers::notify::generate_vapid_key();
    store.set_vapid_public_key(&good).await.unwrap();
    let (status, answer) = call(reqwest::Method::GET, hub.http("/v1/push/key"), None, None).await;
    assert_eq!(
        (status, answer["vapid_public_key"].clone()),
        (200, json!(good))
    );
    hub.shutdown().await;
}
