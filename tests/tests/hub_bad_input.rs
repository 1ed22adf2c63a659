//! Bad input: every kind gets its error frame with a stable code, and both the
//! connection and the hub survive it. Limits on connections and origins are
//! enforced before the upgrade.

mod hub_support;

use futures::SinkExt;
use hub_support::*;
use sapha_hub::Config;
use sapha_tests::NatsServer;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Sends `text`, expects an error frame with `code`, then proves the connection
/// still works with a ping.
async fn expect_error(client: &mut Client, text: &str, code: &str) -> Value {
    client.send_text(text).await;
    let f = client.json().await;
    assert_eq!(f["type"], "error", "{text} -> {f}");
    assert_eq!(f["code"], code, "{text} -> {f}");
    assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()));
    client.send(json!({"op": "ping", "id": "alive"})).await;
    let pong = client.json().await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("ack"), Some("alive"))
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_error_frame_and_the_connection_survives() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.max_subscriptions = 3;
    config.limits.max_frame_bytes = 1024;
    config.limits.hard_max_frame_bytes = 8192;
    config.limits.messages_per_second = 1000;
    config.limits.message_burst = 1000;
    let hub = TestHub::start(config).await;

    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;
    expect_error(&mut c, "{not json", "bad_json").await;
    let f = expect_error(&mut c, r#"{"op":"dance","id":"d1"}"#, "unknown_op").await;
    assert_eq!(f["id"], "d1");
    expect_error(&mut c, r#"{"op":"subscribe","id":"m"}"#, "bad_request").await;
    expect_error(&mut c, r#"[1,2,3]"#, "bad_request").await;
    for (topic, reason) in [
        ("bill.>.stage", "topic_rest_not_last"),
        ("bill.B-1", "topic_bad_token"),
        ("bills.b-1", "unknown_topic"),
        ("", "topic_empty"),
    ] {
        let text = json!({"op": "subscribe", "id": "t", "topics": ["bill.b-1", topic]}).to_string();
        let f = expect_error(&mut c, &text, "invalid_topic").await;
        assert_eq!(f["topic"], topic);
        assert_eq!(f["reason"], reason);
    }
    // A rejected request changes nothing: still no subscriptions.
    c.send(json!({"op": "ping", "id": "n"})).await;
    assert_eq!(c.json().await["subscriptions"], 0);

    let text = json!({"op": "subscribe", "id": "many", "topics": ["bill.a", "bill.b", "bill.c", "bill.d"]});
    let f = expect_error(&mut c, &text.to_string(), "too_many_subscriptions").await;
    assert_eq!(f["id"], "many");
    let big = format!(r#"{{"op":"ping","id":"{}"}}"#, "x".repeat(2000));
    expect_error(&mut c, &big, "frame_too_large").await;

    // The connection still delivers.
    c.subscribe("ok", &["bill.b-2566-0001"]).await;
    let e = bill_stage("b-2566-0001");
    publisher.publish(&e).await;
    assert_eq!(ids(&c.events(1).await), vec![e.event_id.clone()]);

    // Beyond the hard limit the WebSocket layer gives up: close 1009.
    c.ws.send(Message::Text("y".repeat(10_000).into()))
        .await
        .unwrap();
    assert_eq!(c.close_code().await, Some(1009));

    // The hub is fine.
    let mut d = Client::connect(&hub.ws_url("/v1/ws")).await;
    d.welcome().await;
    d.subscribe("again", &["bill.b-2566-0001"]).await;
    assert_eq!(
        hub.metric("sapha_hub_disconnects_total{reason=\"frame_too_large\"}")
            .await,
        Some(1)
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_message_rate_is_told_and_kept() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.messages_per_second = 5;
    config.limits.message_burst = 5;
    let hub = TestHub::start(config).await;

    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;
    for i in 0..20 {
        c.send(json!({"op": "ping", "id": i})).await;
    }
    let mut acks = 0;
    let mut limited = 0;
    for _ in 0..20 {
        let f = c.json().await;
        match (f["type"].as_str(), f["code"].as_str()) {
            (Some("ack"), _) => acks += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("unexpected {f}"),
        }
    }
    assert!(acks >= 5, "the burst is allowed");
    assert!(limited >= 1, "the excess is refused");
    // Tokens come back: the connection works again (poll with a deadline).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        c.send(json!({"op": "ping", "id": "later"})).await;
        if c.json().await["type"] == "ack" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never accepted again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    hub.shutdown().await;
}

/// Opens a WebSocket from the loopback address `ip` with an optional
/// `X-Forwarded-For`; the HTTP status (101 when it opened). The socket is
/// returned so that the connection stays counted.
async fn connect_from(
    hub: &TestHub,
    ip: [u8; 4],
    forwarded_for: Option<&str>,
) -> (u16, Option<WebSocketStream<tokio::net::TcpStream>>) {
    let mut req = hub.ws_url("/v1/ws").into_client_request().unwrap();
    if let Some(xff) = forwarded_for {
        req.headers_mut()
            .insert("X-Forwarded-For", xff.parse().unwrap());
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((ip, 0).into()).unwrap();
    let tcp = socket.connect(hub.addr).await.unwrap();
    let handshake = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp));
    match handshake.await.expect("an answer in time") {
        Ok((ws, _)) => (101, Some(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => (resp.status().as_u16(), None),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_per_ip_limit_counts_the_forwarded_client() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.max_connections_per_ip = 1;
    // 127.0.0.1 plays the TLS-terminating proxy; 127.0.0.2 is a direct client.
    config.proxy = Config::from_toml("[proxy]\ntrusted = [\"127.0.0.1\"]")
        .unwrap()
        .proxy;
    let hub = TestHub::start(config).await;
    let proxy = [127, 0, 0, 1];
    let mut open = Vec::new();
    let mut expect = |(status, ws): (u16, Option<_>), want: u16, what: &str| {
        assert_eq!(status, want, "{what}");
        open.extend(ws);
    };

    expect(
        connect_from(&hub, proxy, Some("203.0.113.1")).await,
        101,
        "first client",
    );
    expect(
        connect_from(&hub, proxy, Some("203.0.113.2")).await,
        101,
        "another client through the same proxy",
    );
    expect(
        connect_from(&hub, proxy, Some("203.0.113.1")).await,
        429,
        "the first client again: one per IP",
    );
    // The proxy appends the address it saw; what the client wrote before it
    // does not count, so a client cannot pick its own address.
    expect(
        connect_from(&hub, proxy, Some("198.51.100.9, 203.0.113.1")).await,
        429,
        "a spoofed entry left of the real one",
    );
    expect(
        connect_from(&hub, proxy, None).await,
        101,
        "no header: the proxy itself counts",
    );
    // From an untrusted peer the header is ignored.
    let direct = [127, 0, 0, 2];
    expect(
        connect_from(&hub, direct, Some("203.0.113.3")).await,
        101,
        "direct client",
    );
    expect(
        connect_from(&hub, direct, Some("203.0.113.4")).await,
        429,
        "an untrusted peer cannot claim another address",
    );
    drop(open);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_and_origins_are_enforced_before_the_upgrade() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.max_connections = 3;
    config.limits.max_connections_per_ip = 2;
    config.limits.allowed_origins = vec!["https://parliament.example".into()];
    let hub = TestHub::start(config).await;

    let status = |r: Result<_, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    let with_origin = |origin: &str| {
        let mut req = hub.ws_url("/v1/ws").into_client_request().unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req
    };
    let r = tokio_tungstenite::connect_async(with_origin("https://evil.example")).await;
    assert_eq!(status(r.map(|_| ())), 403);
    let (a, _) = tokio_tungstenite::connect_async(with_origin("https://parliament.example"))
        .await
        .unwrap();
    let b = Client::connect(&hub.ws_url("/v1/ws")).await;
    // Connections from another loopback address count separately per IP.
    assert_eq!(
        connect_from(&hub, [127, 0, 0, 1], None).await.0,
        429,
        "two per IP"
    );
    let (opened, c) = connect_from(&hub, [127, 0, 0, 2], None).await;
    assert_eq!(opened, 101, "another IP may connect");
    assert_eq!(
        connect_from(&hub, [127, 0, 0, 3], None).await.0,
        503,
        "three in all"
    );
    drop((a, b, c));
    // Slots come back when connections end.
    let url = hub.ws_url("/v1/ws");
    let ok = sapha_tests::wait_until(WAIT, || {
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await.is_ok() }
    })
    .await;
    assert!(ok);
    assert!(
        hub.metric("sapha_hub_connections_rejected_total")
            .await
            .unwrap()
            >= 3
    );
    hub.shutdown().await;
}
