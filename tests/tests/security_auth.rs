//! Client auth: real signed JWTs (HS256 and RS256, test-only key in
//! `security_support/`), checked at connect (HTTP 401 / 403) and on every
//! subscribe (error frame `forbidden_topic`), on WebSocket and SSE.

mod hub_support;
mod security_support;

use hub_support::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sapha_hub::config::{AuthMode, Secret};
use sapha_tests::NatsServer;
use security_support::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "test-only-hs256-secret";
const ISS: &str = "https://auth.parliament.example";
const AUD: &str = "sapha";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(topics: &[&str], exp: u64) -> Value {
    json!({"sub": "newsroom-1", "iss": ISS, "aud": AUD, "exp": exp, "topics": topics})
}

fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn support_file(name: &str) -> std::path::PathBuf {
    sapha_tests::repo_root()
        .join("tests/tests/security_support")
        .join(name)
}

fn rs256(claims: &Value) -> String {
    let pem = std::fs::read(support_file("rs256-test-private.pem")).unwrap();
    encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap()
}

/// The HTTP status of a WebSocket handshake (101 when it upgraded).
async fn ws_status(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => (101, Value::Null),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("{e}"),
    }
}

async fn connect_bearer(url: &str, token: &str) -> Client {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    Client { ws }
}

async fn sse_status(url: &str, bearer: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = if status == 200 {
        Value::Null
    } else {
        r.json().await.unwrap_or(Value::Null)
    };
    (status, www, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_hs256_tokens_are_checked_on_connect_and_on_subscribe() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.auth.mode = AuthMode::Required;
    config.auth.hs256_secret = Some(Secret(SECRET.into()));
    config.auth.issuer = Some(ISS.into());
    config.auth.audience = Some(AUD.into());
    config.auth.leeway_secs = 0;
    let hub = TestHub::start(config).await;
    let ws = hub.ws_url("/v1/ws?topics=sitting.%3E");

    // Refused at connect, with the reason and never the token.
    let sittings = hs256(&claims(&["sitting.>"], now() + 600), SECRET);
    for (token, want) in [
        (None, "required"),
        (
            Some(hs256(&claims(&["sitting.>"], now() - 600), SECRET)),
            "expired",
        ),
        (
            Some(hs256(&claims(&["sitting.>"], now() + 600), "wrong")),
            "signature",
        ),
        (Some("garbage".to_string()), "malformed"),
    ] {
        let (status, body) = ws_status(&ws, token.as_deref()).await;
        assert_eq!(status, 401, "{want}");
        assert_eq!(body["code"], "unauthorized");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(want), "{message}");
        if let Some(t) = &token {
            assert!(!message.contains(t.as_str()));
        }
        let (status, www, _) =
            sse_status(&hub.http("/v1/sse?topics=bill.%3E"), token.as_deref()).await;
        assert_eq!((status, www.as_deref()), (401, Some("Bearer")));
    }
    let mut other_iss = claims(&["sitting.>"], now() + 600);
    other_iss["iss"] = json!("https://evil.example");
    assert_eq!(
        ws_status(&ws, Some(&hs256(&other_iss, SECRET))).await.0,
        401
    );

    // URL topics the token does not grant: 403 forbidden_topic, before the upgrade.
    let (status, body) = ws_status(&hub.ws_url("/v1/ws?topics=%3E"), Some(&sittings)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden_topic"))
    );
    assert_eq!(body["topic"], ">");
    let (status, _, body) = sse_status(
        &hub.http(&format!("/v1/sse?topics=bill.%3E&token={sittings}")),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden_topic"))
    );

    // Granted: header token; each subscribe is checked, all or nothing.
    let mut c = connect_bearer(&ws, &sittings).await;
    c.welcome().await;
    assert_eq!(c.json().await["type"], "ack");
    c.send(json!({"op": "subscribe", "id": "s1", "topics": ["sitting.*.*.vote", "bill.>"]}))
        .await;
    let f = c.json().await;
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str()),
        (Some("error"), Some("forbidden_topic")),
        "{f}"
    );
    assert_eq!(
        (f["id"].as_str(), f["topic"].as_str()),
        (Some("s1"), Some("bill.>"))
    );
    c.send(json!({"op": "ping", "id": "p"})).await;
    assert_eq!(c.json().await["subscriptions"], 1, "nothing was added");
    c.subscribe("s2", &["sitting.*.*.vote"]).await;

    // The firehose needs a token that grants it; ?token= works for browsers.
    let firehose = hs256(&claims(&[">"], now() + 600), SECRET);
    let mut newsroom =
        Client::connect(&hub.ws_url(&format!("/v1/ws?topics=%3E&token={firehose}"))).await;
    newsroom.welcome().await;
    assert_eq!(newsroom.json().await["type"], "ack");
    let mut sse = SseReader::open(
        &hub.http("/v1/sse?topics=%3E"),
        &[("Authorization", format!("Bearer {firehose}"))],
    )
    .await;
    let e = bill_stage("b-2566-0001");
    publisher.publish(&e).await;
    assert_eq!(
        ws_event_ids(&mut newsroom, 1).await,
        vec![e.event_id.clone()]
    );
    assert_eq!(sse.event_ids(1).await, vec![e.event_id.clone()]);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_rs256_gives_anonymous_clients_the_public_grant() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.auth.mode = AuthMode::Optional;
    config.auth.rs256_public_key_file = Some(support_file("rs256-test-public.pem"));
    config.auth.anonymous_topics = vec!["bill.>".into()];
    let hub = TestHub::start(config).await;

    // Anonymous: public topics yes, the firehose and sittings no.
    let mut anon = Client::connect(&hub.ws_url("/v1/ws?topics=bill.%3E")).await;
    anon.welcome().await;
    assert_eq!(anon.json().await["type"], "ack");
    for topic in [">", "sitting.senate.>", "*.*.stage"] {
        anon.send(json!({"op": "subscribe", "id": topic, "topics": [topic]}))
            .await;
        let f = anon.json().await;
        assert_eq!(f["code"], "forbidden_topic", "{topic}: {f}");
    }
    assert_eq!(
        ws_status(&hub.ws_url("/v1/ws?topics=%3E"), None).await.0,
        403
    );

    // An RS256 token with the firehose.
    let token = rs256(&json!({"sub": "newsroom", "exp": now() + 600, "topics": [">"]}));
    let mut newsroom = connect_bearer(&hub.ws_url("/v1/ws"), &token).await;
    newsroom.welcome().await;
    newsroom.subscribe("all", &[">"]).await;
    // An HS256 token is refused: this hub only has an RS256 key.
    let hs = hs256(&json!({"exp": now() + 600, "topics": [">"]}), SECRET);
    let (status, body) = ws_status(&hub.ws_url("/v1/ws"), Some(&hs)).await;
    assert_eq!(status, 401);
    assert!(
        body["message"].as_str().unwrap().contains("algorithm"),
        "{body}"
    );

    let vote = bill_vote(sapha_proto::event::Chamber::Senate, "s-1", "b-2566-0002");
    publisher.publish(&vote).await;
    assert_eq!(
        ws_event_ids(&mut newsroom, 1).await,
        vec![vote.event_id.clone()]
    );
    assert_eq!(
        ws_event_ids(&mut anon, 1).await,
        vec![vote.event_id.clone()],
        "the secondary topic bill.<id>.vote is public"
    );
    hub.shutdown().await;
}
