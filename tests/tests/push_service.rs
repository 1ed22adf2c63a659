//! The local push and LINE receivers (`sapha_tests::push_service`,
//! `sapha_tests::line_service`) accept what a correct sender sends and refuse
//! what a browser's push service or LINE would refuse. No NATS needed.

use std::time::Duration;

use axum::http::{HeaderValue, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sapha_tests::line_service::LineService;
use sapha_tests::push_service::{PushOptions, PushService, Subscription};
use serde_json::{json, Value};
use web_push_native::jwt_simple::prelude::{
    Claims, Clock, Duration as JwtDuration, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike,
    ES256KeyPair,
};
use web_push_native::{p256::PublicKey, Auth, WebPushBuilder};

/// The bound on every wait.
const WAIT: Duration = Duration::from_secs(5);
const CONTACT: &str = "mailto:ops@sapha.example";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("reqwest client")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The application server's VAPID key, base64url, as `k` carries it.
fn public_key(key: &ES256KeyPair) -> String {
    b64(&key.public_key().public_key().to_bytes_uncompressed())
}

/// A web-push-native builder for `sub`, as the notifier makes one.
fn builder(sub: &Subscription) -> WebPushBuilder {
    let p256dh = URL_SAFE_NO_PAD.decode(&sub.p256dh).expect("p256dh");
    let auth = URL_SAFE_NO_PAD.decode(&sub.auth).expect("auth");
    WebPushBuilder::new(
        sub.endpoint.parse().expect("endpoint URI"),
        PublicKey::from_sec1_bytes(&p256dh).expect("p256dh point"),
        Auth::clone_from_slice(&auth),
    )
    .with_valid_duration(Duration::from_secs(60))
}

/// `vapid t=<JWT>, k=<key>` with `aud`, `sub` and `exp` = now + `valid_for` (may be negative).
fn vapid_header(key: &ES256KeyPair, aud: &str, sub: &str, valid_for: i64) -> String {
    let mut claims = Claims::create(JwtDuration::from_secs(60))
        .with_audience(aud)
        .with_subject(sub);
    let now = Clock::now_since_epoch();
    let offset = JwtDuration::from_secs(valid_for.unsigned_abs());
    claims.expires_at = Some(if valid_for < 0 {
        now - offset
    } else {
        now + offset
    });
    let token = key.sign(claims).expect("sign JWT");
    format!("vapid t={token}, k={}", public_key(key))
}

/// A push request for `sub`: encrypted by web-push-native, with a VAPID JWT for `aud`.
fn request_with(
    sub: &Subscription,
    key: &ES256KeyPair,
    aud: &str,
    payload: &[u8],
) -> Request<Vec<u8>> {
    let mut request = builder(sub).build(payload).expect("encrypt");
    let header = vapid_header(key, aud, CONTACT, 3600);
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&header).expect("header"),
    );
    request
}

/// A correct push request for `sub` on `service`.
fn request(
    service: &PushService,
    sub: &Subscription,
    key: &ES256KeyPair,
    payload: &[u8],
) -> Request<Vec<u8>> {
    request_with(sub, key, &service.origin(), payload)
}

async fn send(request: Request<Vec<u8>>) -> reqwest::Response {
    let request = reqwest::Request::try_from(request).expect("http request into reqwest");
    client()
        .execute(request)
        .await
        .expect("push service answers")
}

async fn status_of(request: Request<Vec<u8>>) -> u16 {
    send(request).await.status().as_u16()
}

#[tokio::test]
async fn decrypts_what_web_push_native_encrypted_and_records_the_headers() {
    let service = PushService::start().await;
    let sub = service.subscribe();
    let key = ES256KeyPair::generate();
    let payload = serde_json::to_vec(&json!({"title": "Bill 42 passed", "seq": 7})).expect("json");
    let mut request = request(&service, &sub, &key, &payload);
    request
        .headers_mut()
        .insert("urgency", HeaderValue::from_static("high"));
    request
        .headers_mut()
        .insert("topic", HeaderValue::from_static("bill-42"));

    let response = send(request).await;

    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().expect("location");
    assert_eq!(location, format!("{}/message/1", service.origin()));
    assert!(service.wait_for(1, WAIT).await);
    let message = &service.received()[0];
    assert_eq!(message.payload, payload);
    assert_eq!(
        message.payload_json(),
        json!({"title": "Bill 42 passed", "seq": 7})
    );
    assert_eq!(message.endpoint_id, sub.id);
    assert_eq!(message.ttl, 60);
    assert_eq!(message.urgency.as_deref(), Some("high"));
    assert_eq!(message.topic.as_deref(), Some("bill-42"));
    assert_eq!(message.vapid_key, public_key(&key));
    assert_eq!(message.claims["aud"], json!(service.origin()));
    assert_eq!(message.claims["sub"], json!(CONTACT));
    assert_eq!(service.count(), 1);
    assert!(service.rejected().is_empty());
}

#[tokio::test]
async fn subscriptions_look_like_a_browsers() {
    let service = PushService::start().await;
    let (a, b) = (service.subscribe(), service.subscribe());
    assert_ne!(a.endpoint, b.endpoint);
    assert_ne!(a.p256dh, b.p256dh);
    assert!(a
        .endpoint
        .starts_with(&format!("{}/push/", service.origin())));
    let p256dh = URL_SAFE_NO_PAD.decode(&a.p256dh).expect("base64url p256dh");
    assert_eq!((p256dh.len(), p256dh[0]), (65, 4));
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(&a.auth)
            .expect("base64url auth")
            .len(),
        16
    );
    let json = a.to_json();
    assert_eq!(json["endpoint"], json!(a.endpoint));
    assert_eq!(json["keys"], json!({"p256dh": a.p256dh, "auth": a.auth}));
}

#[tokio::test]
async fn a_wrong_auth_secret_or_a_tampered_body_is_400() {
    let service = PushService::start().await;
    let sub = service.subscribe();
    let key = ES256KeyPair::generate();
    let wrong_auth = Subscription {
        auth: b64(&[7u8; 16]),
        ..sub.clone()
    };
    assert_eq!(
        status_of(request(&service, &wrong_auth, &key, b"hello")).await,
        400
    );

    let mut tampered = request(&service, &sub, &key, b"hello");
    let last = tampered.body().len() - 1;
    tampered.body_mut()[last] ^= 1;
    assert_eq!(status_of(tampered).await, 400);

    let rejected = service.rejected();
    assert_eq!(rejected.len(), 2);
    assert!(rejected
        .iter()
        .all(|r| r.status == 400 && r.reason.contains("decrypt")));
    assert_eq!(service.count(), 0);
}

#[tokio::test]
async fn bad_vapid_jwts_are_403_and_a_missing_one_401() {
    let service = PushService::start().await;
    let sub = service.subscribe();
    let key = ES256KeyPair::generate();
    let origin = service.origin();
    let cases = [
        (
            "wrong aud",
            vapid_header(&key, "http://127.0.0.1:1", CONTACT, 3600),
        ),
        ("expired", vapid_header(&key, &origin, CONTACT, -60)),
        ("over 24 h", vapid_header(&key, &origin, CONTACT, 25 * 3600)),
        (
            "bad sub",
            vapid_header(&key, &origin, "ops@sapha.example", 3600),
        ),
        ("other k", {
            let header = vapid_header(&key, &origin, CONTACT, 3600);
            let other = public_key(&ES256KeyPair::generate());
            format!("{}k={other}", header.split("k=").next().expect("t="))
        }),
    ];
    for (case, header) in cases {
        let mut request = request(&service, &sub, &key, b"hello");
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&header).expect("header"),
        );
        assert_eq!(status_of(request).await, 403, "{case}");
    }
    let mut request = request(&service, &sub, &key, b"hello");
    request.headers_mut().remove("authorization");
    assert_eq!(status_of(request).await, 401);

    let reasons: Vec<String> = service.rejected().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(reasons[0].contains("aud"), "{reasons:?}");
    assert!(reasons[1].contains("expired"), "{reasons:?}");
    assert!(reasons[2].contains("24 h"), "{reasons:?}");
    assert!(reasons[3].contains("sub"), "{reasons:?}");
    assert!(reasons[4].contains("verify"), "{reasons:?}");
    assert!(reasons[5].contains("missing"), "{reasons:?}");
    assert_eq!(service.count(), 0);
}

#[tokio::test]
async fn web_push_native_with_vapid_leaves_the_port_out_of_aud() {
    let key = ES256KeyPair::generate();
    let strict = PushService::start().await;
    let sub = strict.subscribe();
    let request = builder(&sub)
        .with_vapid(&key, CONTACT)
        .build(b"hi".to_vec())
        .expect("build");
    assert_eq!(status_of(request).await, 403);
    assert!(strict.rejected()[0]
        .reason
        .contains("aud \"http://127.0.0.1\""));

    let lenient = PushService::start_with(PushOptions {
        allow_aud_without_port: true,
        ..PushOptions::default()
    })
    .await;
    let sub = lenient.subscribe();
    let request = builder(&sub)
        .with_vapid(&key, CONTACT)
        .build(b"hi".to_vec())
        .expect("build");
    assert_eq!(status_of(request).await, 201);
    assert_eq!(lenient.received()[0].payload, b"hi");
}

#[tokio::test]
async fn a_pinned_vapid_key_refuses_other_keys() {
    let service = PushService::start().await;
    let sub = service.subscribe();
    let (ours, theirs) = (ES256KeyPair::generate(), ES256KeyPair::generate());
    service.expect_vapid_key(&public_key(&ours));
    assert_eq!(status_of(request(&service, &sub, &theirs, b"x")).await, 403);
    assert_eq!(status_of(request(&service, &sub, &ours, b"x")).await, 201);
}

#[tokio::test]
async fn unsubscribed_and_unknown_endpoints_are_gone() {
    let service = PushService::start().await;
    let key = ES256KeyPair::generate();
    let (gone, expired) = (service.subscribe(), service.subscribe());
    service.unsubscribe(&gone);
    service.gone_404(&expired);
    let unknown = Subscription {
        id: "nope".into(),
        endpoint: format!("{}/push/nope", service.origin()),
        ..gone.clone()
    };
    assert_eq!(status_of(request(&service, &gone, &key, b"x")).await, 410);
    assert_eq!(
        status_of(request(&service, &expired, &key, b"x")).await,
        404
    );
    assert_eq!(
        status_of(request(&service, &unknown, &key, b"x")).await,
        410
    );
    assert_eq!(service.rejected().len(), 3);
}

#[tokio::test]
async fn scripted_failures_answer_then_stop() {
    let service = PushService::start().await;
    let sub = service.subscribe();
    let key = ES256KeyPair::generate();
    service.fail_next(&sub, 429, Some(2), 1);
    service.fail_next(&sub, 500, None, 2);

    let response = send(request(&service, &sub, &key, b"x")).await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    for _ in 0..2 {
        let response = send(request(&service, &sub, &key, b"x")).await;
        assert_eq!(response.status().as_u16(), 500);
        assert!(response.headers().get("retry-after").is_none());
    }
    assert_eq!(status_of(request(&service, &sub, &key, b"x")).await, 201);
    let statuses: Vec<u16> = service.rejected().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 500, 500]);
    assert_eq!(service.count(), 1);
}

#[tokio::test]
async fn push_headers_are_checked() {
    let service = PushService::start().await;
    let sub = service.subscribe();
    let key = ES256KeyPair::generate();
    let changes: [(&str, Option<&str>); 5] = [
        ("ttl", None),
        ("ttl", Some("soon")),
        ("content-encoding", Some("aesgcm")),
        ("urgency", Some("urgent")),
        ("topic", Some("a topic with spaces")),
    ];
    for (name, value) in changes {
        let mut request = request(&service, &sub, &key, b"x");
        match value {
            Some(value) => request
                .headers_mut()
                .insert(name, HeaderValue::from_static(value)),
            None => request.headers_mut().remove(name),
        };
        assert_eq!(status_of(request).await, 400, "{name}: {value:?}");
    }
    let mut long_topic = request(&service, &sub, &key, b"x");
    let topic = HeaderValue::from_str(&"t".repeat(33)).expect("header");
    long_topic.headers_mut().insert("topic", topic);
    assert_eq!(status_of(long_topic).await, 400);
    assert_eq!(
        status_of(request(&service, &sub, &key, &[b'x'; 5000])).await,
        413
    );
    assert_eq!(service.count(), 0);
}

#[tokio::test]
async fn without_decryption_counts_but_still_checks_vapid() {
    let service = PushService::start_with(PushOptions {
        decrypt: false,
        ..PushOptions::default()
    })
    .await;
    let sub = service.subscribe();
    let key = ES256KeyPair::generate();
    let header = vapid_header(&key, &service.origin(), CONTACT, 3600);
    let sends = (0..20).map(|_| {
        let mut request = builder(&sub).build(b"bench".to_vec()).expect("encrypt");
        let value = HeaderValue::from_str(&header).expect("header");
        request.headers_mut().insert("authorization", value);
        send(request)
    });
    let statuses: Vec<u16> = futures::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert!(service.wait_for(20, WAIT).await);
    assert!(service.received().is_empty());

    let wrong_aud = request_with(&sub, &key, "http://127.0.0.1:1", b"x");
    assert_eq!(status_of(wrong_aud).await, 403);
    assert_eq!(service.count(), 20);
    assert!(!service.wait_for(21, Duration::from_millis(100)).await);
}

// LINE

const TOKEN: &str = "channel-token-1";

fn line_body(text: &str) -> Value {
    json!({"to": "U4af4980629", "messages": [{"type": "text", "text": text}]})
}

async fn line_push(
    line: &LineService,
    token: &str,
    body: &Value,
    retry_key: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}/v2/bot/message/push", line.base_url()))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = retry_key {
        request = request.header("X-Line-Retry-Key", key);
    }
    request.send().await.expect("LINE answers")
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

#[tokio::test]
async fn line_records_a_good_push() {
    let line = LineService::start(TOKEN).await;
    let response = line_push(&line, TOKEN, &line_body("Bill 42 passed"), None).await;
    assert_eq!(response.status().as_u16(), 200);
    let request_id = response.headers()["x-line-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    let body = json_of(response).await;
    let sent = body["sentMessages"].as_array().expect("sentMessages");
    assert_eq!(sent.len(), 1);
    assert!(sent[0]["id"]
        .as_str()
        .is_some_and(|id| id.chars().all(|c| c.is_ascii_digit())));
    assert!(sent[0]["quoteToken"].is_string());

    assert!(line.wait_for(1, WAIT).await);
    let pushes = line.received();
    assert_eq!(pushes[0].to, "U4af4980629");
    assert_eq!(pushes[0].texts(), ["Bill 42 passed"]);
    assert_eq!(pushes[0].request_id, request_id);
}

#[tokio::test]
async fn line_refuses_a_bad_token_with_401() {
    let line = LineService::start(TOKEN).await;
    let response = line_push(&line, "wrong", &line_body("hi"), None).await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(json_of(response).await["message"].is_string());
    let response = client()
        .post(format!("{}/v2/bot/message/push", line.base_url()))
        .json(&line_body("hi"))
        .send()
        .await
        .expect("LINE answers");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(line.count(), 0);
}

#[tokio::test]
async fn line_refuses_bad_bodies_with_400_and_details() {
    let line = LineService::start(TOKEN).await;
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"type": "text", "text": i.to_string()}))
        .collect();
    let bodies = [
        (
            json!({"to": "", "messages": [{"type": "text", "text": "x"}]}),
            "to",
        ),
        (json!({"to": "U1", "messages": []}), "messages"),
        (json!({"to": "U1", "messages": six}), "messages"),
        (line_body(&"x".repeat(5001)), "messages[0].text"),
        (
            json!({"to": "U1", "messages": [{"type": "text"}]}),
            "messages[0].text",
        ),
    ];
    for (body, property) in bodies {
        let response = line_push(&line, TOKEN, &body, None).await;
        assert_eq!(response.status().as_u16(), 400, "{property}");
        let answer = json_of(response).await;
        assert_eq!(answer["message"], "The request body has 1 error(s)");
        assert_eq!(answer["details"][0]["property"], property);
    }
    assert_eq!(
        line_push(&line, TOKEN, &line_body(&"é".repeat(5000)), None)
            .await
            .status(),
        200
    );
    let bad_key = line_push(&line, TOKEN, &line_body("x"), Some("not-a-uuid")).await;
    assert_eq!(bad_key.status().as_u16(), 400);
    assert_eq!(line.count(), 1);
}

#[tokio::test]
async fn line_answers_a_repeated_retry_key_with_409() {
    let line = LineService::start(TOKEN).await;
    let key = "123e4567-e89b-12d3-a456-426614174000";
    line.fail_next(500, 1);
    let failed = line_push(&line, TOKEN, &line_body("hi"), Some(key)).await;
    assert_eq!(failed.status().as_u16(), 500);

    let first = line_push(&line, TOKEN, &line_body("hi"), Some(key)).await;
    assert_eq!(first.status().as_u16(), 200);
    let request_id = first.headers()["x-line-request-id"].clone();
    let sent = json_of(first).await["sentMessages"].clone();

    let again = line_push(&line, TOKEN, &line_body("hi"), Some(key)).await;
    assert_eq!(again.status().as_u16(), 409);
    assert_eq!(again.headers()["x-line-accepted-request-id"], request_id);
    assert_eq!(json_of(again).await["sentMessages"], sent);
    assert_eq!(line.count(), 1);
    assert_eq!(line.received().len(), 1);
}
