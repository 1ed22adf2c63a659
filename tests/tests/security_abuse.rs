//! Abuse and bad input against a real hub and a real nats-server: each case gets
//! its documented error or close code, the hub keeps serving others, and memory
//! stays bounded (the last test runs `sapha hub` as a child process and prints
//! its peak RSS). Loops are bounded in count and time; no timing is asserted.

mod hub_support;
mod security_support;

use futures::SinkExt;
use hub_support::*;
use sapha_tests::{free_port, NatsServer};
use security_support::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Opens a TCP connection and sends an HTTP request head one byte at a time,
/// `every` apart, until the hub closes the connection. Returns whether the
/// hub closed it before the whole head was sent.
async fn slowloris(addr: std::net::SocketAddr, every: Duration) -> bool {
    let head = b"GET /v1/ws?topics=bill.%3E HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 256];
    for byte in head.iter() {
        if tcp.write_all(&[*byte]).await.is_err() {
            return true;
        }
        // Did the hub close (EOF or reset) meanwhile?
        match tokio::time::timeout(every, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => return false, // an answer: it would have waited for us
            Err(_) => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_handshakes_are_cut_and_others_still_connect() {
    raise_nofile();
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.header_read_timeout_ms = 500;
    let hub = TestHub::start(config).await;

    // 30 dribbling clients: ~230 bytes at 50 ms a byte would take 11 s each.
    let attackers: Vec<_> = (0..30)
        .map(|_| tokio::spawn(slowloris(hub.addr, Duration::from_millis(50))))
        .collect();
    // Meanwhile a normal client is served.
    let mut c = Client::connect(&hub.ws_url("/v1/ws?topics=bill.%3E")).await;
    c.welcome().await;
    assert_eq!(c.json().await["type"], "ack");
    let e = bill_stage("b-2566-0100");
    publisher.publish(&e).await;
    assert_eq!(ws_event_ids(&mut c, 1).await, vec![e.event_id.clone()]);
    for a in attackers {
        let cut = tokio::time::timeout(WAIT, a)
            .await
            .expect("the hub cut the slow client in time")
            .unwrap();
        assert!(cut, "a slowloris client was cut");
    }
    // The hub is fine.
    let mut d = Client::connect(&hub.ws_url("/v1/ws")).await;
    d.welcome().await;
    hub.shutdown().await;
}

/// Sends raw frames and returns the close code the hub answers with.
async fn close_code_after(hub: &TestHub, frames: Vec<Frame>) -> Option<u16> {
    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;
    for f in frames {
        if c.ws.send(Message::Frame(f)).await.is_err() {
            break;
        }
    }
    c.close_code().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_oversized_and_invalid_utf8_frames_close_with_their_codes() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.max_frame_bytes = 1024;
    config.limits.hard_max_frame_bytes = 8192;
    let hub = TestHub::start(config).await;

    // 40 fragments of 1 KiB: each is small, the message is 40 KiB.
    let mut frames = vec![Frame::message(
        vec![b'['; 1024],
        OpCode::Data(Data::Text),
        false,
    )];
    for i in 0..40 {
        frames.push(Frame::message(
            vec![b'['; 1024],
            OpCode::Data(Data::Continue),
            i == 39,
        ));
    }
    assert_eq!(close_code_after(&hub, frames).await, Some(1009));
    // One frame above the hard limit.
    let big = Frame::message(vec![b'x'; 20_000], OpCode::Data(Data::Text), true);
    assert_eq!(close_code_after(&hub, vec![big]).await, Some(1009));
    // A text frame that is not UTF-8, whole or split inside a character.
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    assert_eq!(close_code_after(&hub, vec![bad]).await, Some(1007));
    let split = vec![
        Frame::message(vec![b'"', 0xe0, 0xb8], OpCode::Data(Data::Text), false),
        Frame::message(vec![0x41, b'"'], OpCode::Data(Data::Continue), true),
    ];
    assert_eq!(close_code_after(&hub, split).await, Some(1007));
    // Fragments that stay under the limits are one ordinary message.
    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;
    let ping = br#"{"op":"ping","id":"frag"}"#;
    c.ws.send(Message::Frame(Frame::message(
        ping[..10].to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    c.ws.send(Message::Frame(Frame::message(
        ping[10..].to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(c.json().await["id"], "frag");

    for (reason, n) in [("frame_too_large", 2), ("invalid_utf8", 2)] {
        let name = format!("sapha_hub_disconnects_total{{reason=\"{reason}\"}}");
        assert!(hub.wait_metric(&name, n).await, "{name}");
    }
    hub.shutdown().await;
}

/// Sends `text`, expects one error frame with `code`, then checks the connection.
async fn expect_error(c: &mut Client, text: &str, code: &str) -> Value {
    c.send_text(text).await;
    let f = c.json().await;
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(f["code"], code, "{f}");
    c.send(json!({"op": "ping", "id": "alive"})).await;
    assert_eq!(c.json().await["id"], "alive");
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_and_huge_json_and_topic_injection_get_their_errors() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.max_frame_bytes = 32_768;
    config.limits.messages_per_second = 1000;
    config.limits.message_burst = 1000;
    let hub = TestHub::start(config).await;
    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;

    // 10,000 levels: serde_json stops at its recursion limit (128).
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    expect_error(&mut c, &deep, "bad_json").await;
    let deep_obj = format!(
        r#"{{"op":"ping","id":{}{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    expect_error(&mut c, &deep_obj, "bad_json").await;
    // Huge but valid JSON: above max_frame_bytes, below the hard limit.
    let huge = json!({"op": "ping", "id": "x".repeat(40_000)}).to_string();
    expect_error(&mut c, &huge, "frame_too_large").await;

    // Topic injection: wildcards or dots inside ids never widen a subscription.
    for (topic, reason) in [
        ("bill.b>1", "topic_partial_wildcard"),
        ("bill.b-1*", "topic_partial_wildcard"),
        ("bill.>.stage", "topic_rest_not_last"),
        ("sitting.senate.s.1.vote", "unknown_topic"),
        ("bill.b-1.stage.>", "unknown_topic"),
        ("bill.b 1", "topic_bad_token"),
        ("bill.b-1\u{0}", "topic_bad_token"),
        ("bill.ร่าง", "topic_bad_token"),
        ("bill..stage", "topic_empty_token"),
        ("parl.v1.>", "unknown_topic"),
    ] {
        let text = json!({"op": "subscribe", "id": "inj", "topics": [topic]}).to_string();
        let f = expect_error(&mut c, &text, "invalid_topic").await;
        assert_eq!(
            (f["topic"].as_str(), f["reason"].as_str()),
            (Some(topic), Some(reason))
        );
    }
    c.send(json!({"op": "ping", "id": "n"})).await;
    assert_eq!(c.json().await["subscriptions"], 0, "nothing was subscribed");
    // The same through the URL, on SSE: refused before streaming.
    for q in ["bill.b%3E1", "bill.%3E.stage", "sitting.senate.s.1.vote"] {
        let r = reqwest::get(hub.http(&format!("/v1/sse?topics={q}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "invalid_topic");
    }
    // And after all that, one message too big for the WebSocket layer: 1009.
    c.send_text(&"y".repeat(100_000)).await;
    assert_eq!(c.close_code().await, Some(1009));
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_bombs_are_capped_and_rate_limited() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.max_frame_bytes = 65_536;
    config.limits.hard_max_frame_bytes = 131_072;
    let hub = TestHub::start(config).await;
    let mut c = Client::connect(&hub.ws_url("/v1/ws")).await;
    c.welcome().await;

    // One request with 4,000 filters.
    let many: Vec<String> = (0..4_000).map(|i| format!("bill.b-{i}")).collect();
    c.send(json!({"op": "subscribe", "id": "bomb", "topics": many}))
        .await;
    let f = c.json().await;
    assert_eq!(f["code"], "too_many_subscriptions", "{f}");

    // 500 requests back to back, one new filter each.
    for i in 0..500 {
        c.send(json!({"op": "subscribe", "id": i, "topics": [format!("bill.c-{i}")]}))
            .await;
    }
    let (mut acks, mut limited, mut capped) = (0, 0, 0);
    for _ in 0..500 {
        let f = c.json().await;
        match (f["type"].as_str(), f["code"].as_str()) {
            (Some("ack"), _) => acks += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            (Some("error"), Some("too_many_subscriptions")) => capped += 1,
            _ => panic!("unexpected {f}"),
        }
    }
    assert!(limited > 0, "the burst is limited");
    assert!(acks <= 100, "never more than max_subscriptions");
    assert_eq!(acks + limited + capped, 500, "one answer per request");
    let n = sapha_tests::wait_until(WAIT, || async {
        hub.metric("sapha_hub_subscriptions").await.unwrap_or(0) == acks
    })
    .await;
    assert!(n, "the index holds what was acknowledged");
    hub.shutdown().await;
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abuse_run_against_sapha_hub_keeps_its_memory_bounded() {
    raise_nofile();
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let port = free_port();
    let child = Child(
        std::process::Command::new(sapha_tests::sapha_bin())
            .args(["hub", "--nats-url", &nats.url(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "--set",
                "limits.max_connections_per_ip=200",
                "--set",
                "limits.header_read_timeout_ms=1000",
            ])
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sapha hub starts"),
    );
    let pid = child.0.id().to_string();
    let base = format!("127.0.0.1:{port}");
    let ready = sapha_tests::wait_until(WAIT, || {
        let url = format!("http://{base}/readyz");
        async move {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    assert!(ready, "sapha hub became ready");
    let start_kib = proc_status_kib(&pid, "VmRSS").unwrap();

    // A flood from one IP: 200 are admitted, the rest get 429.
    let url = format!("ws://{base}/v1/ws");
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((ws, _)) => open.push(Client { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 429);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((open.len(), refused), (200, 100));
    // Each admitted connection holds the most filters it may (100).
    for (i, c) in open.iter_mut().enumerate() {
        c.welcome().await;
        let topics: Vec<String> = (0..100).map(|j| format!("bill.b-{i}-{j}")).collect();
        c.send(json!({"op": "subscribe", "id": "s", "topics": topics}))
            .await;
    }
    for c in open.iter_mut() {
        assert_eq!(c.json().await["subscriptions"], 100);
    }
    // Bad input on each: deep JSON, a message over max_frame_bytes.
    let deep = format!("{}{}", "[".repeat(2_000), "]".repeat(2_000));
    for c in open.iter_mut() {
        c.send_text(&deep).await;
        c.send_text(&"z".repeat(5_000)).await;
    }
    for c in open.iter_mut() {
        assert_eq!(c.json().await["code"], "bad_json");
        assert_eq!(c.json().await["code"], "frame_too_large");
    }
    // 50 slowloris clients at once, while events flow to everyone.
    let addr: std::net::SocketAddr = base.parse().unwrap();
    let attackers: Vec<_> = (0..50)
        .map(|_| tokio::spawn(slowloris(addr, Duration::from_millis(40))))
        .collect();
    let mut e = bill_stage("b-0-0");
    for _ in 0..20 {
        e = bill_stage("b-0-0");
        publisher.publish(&e).await;
    }
    for a in attackers {
        assert!(tokio::time::timeout(WAIT, a).await.unwrap().unwrap());
    }
    let got = open[0].events(20).await;
    assert_eq!(got.last().unwrap().event.event_id, e.event_id);

    let peak_kib = proc_status_kib(&pid, "VmHWM").unwrap();
    let now_kib = proc_status_kib(&pid, "VmRSS").unwrap();
    println!(
        "PEAK RSS of sapha hub: VmHWM {peak_kib} KiB (start {start_kib} KiB, end {now_kib} KiB) \
         after 300-connection flood (200 admitted, 100 refused), 20,000 filters, \
         400 bad messages, 50 slowloris clients"
    );
    // Generous: what matters is that nothing grows without bound.
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
    drop(open);
    drop(child);
}
