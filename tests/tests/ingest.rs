//! The HTTP ingest endpoint against a real nats-server: auth, every kind of bad
//! input, batches, idempotent resends, health and metrics.

use reqwest::StatusCode;
use sapha_proto::stage::Stage::*;
use sapha_publisher::ingest::{self, IngestConfig, SharedTokens, Tokens};
use sapha_publisher::jetstream::JetStreamLog;
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Pipeline, RetryPolicy};
use sapha_tests::fixtures::*;
use sapha_tests::NatsServer;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "secret-token-of-the-secretariat";

struct Ingest {
    server: NatsServer,
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Ingest {
    async fn start() -> Ingest {
        Self::start_with(SharedTokens::new(
            Tokens::parse(&format!("secretariat:{TOKEN}")).unwrap(),
        ))
        .await
    }

    async fn start_with(tokens: SharedTokens) -> Ingest {
        Self::start_config(tokens, |_| {}).await
    }

    async fn start_config(tokens: SharedTokens, tune: impl FnOnce(&mut IngestConfig)) -> Ingest {
        let server = NatsServer::start();
        let log = JetStreamLog::open(&server.url(), &stream_settings())
            .await
            .unwrap();
        let pipeline = Arc::new(Pipeline::new(
            log,
            RetryPolicy::default(),
            100,
            Arc::new(Metrics::default()),
        ));
        let mut config = IngestConfig::new(tokens);
        config.max_body_bytes = 64 * 1024;
        config.max_batch = 50;
        tune(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ingest::serve(listener, pipeline, config, async move {
            let _ = rx.await;
        }));
        Ingest {
            server,
            base,
            addr,
            http: reqwest::Client::new(),
            _shutdown: tx,
        }
    }

    async fn post(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/events", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn stored(&self) -> u64 {
        stream_len(&self.server.url(), "PARL").await
    }
}

fn json_of(events: &[sapha_proto::Event]) -> String {
    serde_json::to_string(&events).unwrap()
}

#[tokio::test]
async fn a_batch_is_stored_and_a_resend_is_reported_as_duplicates() {
    let ingest = Ingest::start().await;
    let events = bill_history("b-2566-0123", &[Proposed, HouseR1, HouseCommittee]);
    let (status, body) = ingest.post(Some(TOKEN), json_of(&events)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["status"] == "stored"), "{body}");
    assert_eq!(results[0]["stream_seq"], 1);

    let (status, body) = ingest.post(Some(TOKEN), json_of(&events)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "duplicate"),
        "{body}"
    );
    // A single object is accepted too.
    let next = bill_event("b-2566-0123", 4, Some(HouseCommittee), HouseR2);
    let (status, _) = ingest.post(Some(TOKEN), next.to_json()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ingest.stored().await, 4);
}

#[tokio::test]
async fn a_missing_or_bad_token_gets_401_and_nothing_is_stored() {
    let ingest = Ingest::start().await;
    let events = json_of(&bill_history("b-2566-0123", &[Proposed]));
    let (status, body) = ingest.post(None, events.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "missing_token");
    let (status, body) = ingest
        .post(Some("secret-token-of-the-secretariaX"), events.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "bad_token");
    assert!(
        !body.to_string().contains("secretaria"),
        "no token echoed back: {body}"
    );
    assert_eq!(ingest.stored().await, 0);
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_oversized_bodies_get_clear_4xx() {
    let ingest = Ingest::start().await;

    let (status, body) = ingest.post(Some(TOKEN), "{\"event_id\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "malformed_json");

    let mut batch: Value =
        serde_json::from_str(&json_of(&bill_history("b-2566-0001", &[Proposed, HouseR1]))).unwrap();
    batch[1]["data"]["colour"] = json!("red");
    let (status, body) = ingest.post(Some(TOKEN), batch.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_field", "{body}");
    assert_eq!(body["error"]["index"], 1);
    assert_eq!(body["error"]["event_id"], "e-b-2566-0001-2");
    assert_eq!(body["error"]["field"], "data.colour");

    let mut bad_id: Value =
        serde_json::from_str(&bill_event("b-2566-0001", 1, None, Proposed).to_json()).unwrap();
    bad_id["aggregate_id"] = json!(">");
    bad_id["data"]["bill_id"] = json!(">");
    let (status, body) = ingest.post(Some(TOKEN), bad_id.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "bad_id", "{body}");
    assert_eq!(body["error"]["field"], "aggregate_id");

    let huge = format!(
        "[{}]",
        vec![bill_event("b-2566-0001", 1, None, Proposed).to_json(); 200].join(",")
    );
    assert!(huge.len() > 64 * 1024);
    let (status, body) = ingest.post(Some(TOKEN), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large");

    let many = json_of(&interleaved_bills(60, 1));
    let (status, body) = ingest.post(Some(TOKEN), many).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "batch_too_large");

    let resp = ingest
        .http
        .post(format!("{}/v1/events", ingest.base))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (status, body) = ingest.post(Some(TOKEN), "[]").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("empty_batch"))
    );
    assert_eq!(ingest.stored().await, 0, "no bad request stored anything");
}

#[tokio::test]
async fn an_illegal_transition_in_a_batch_names_the_event_and_keeps_the_ones_before() {
    let ingest = Ingest::start().await;
    let mut events = bill_history("b-2566-0777", &[Proposed, HouseR1]);
    events.push(bill_event("b-2566-0777", 3, Some(HouseR1), RoyalAssent));
    let (status, body) = ingest.post(Some(TOKEN), json_of(&events)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "illegal_transition");
    assert_eq!(body["error"]["index"], 2);
    assert_eq!(body["error"]["field"], "data.to_stage");
    // Validation runs on the whole batch before anything is written.
    assert_eq!(ingest.stored().await, 0);

    // A move that is legal in itself but not from the stored stage is caught
    // against JetStream, after the events before it are stored.
    let mut events = bill_history("b-2566-0777", &[Proposed, HouseR1]);
    events.push(bill_event("b-2566-0777", 3, Some(HouseR2), HouseR3));
    let (status, body) = ingest.post(Some(TOKEN), json_of(&events)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "stage_mismatch");
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(ingest.stored().await, 2);
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let ingest = Ingest::start().await;
    let health = ingest
        .http
        .get(format!("{}/healthz", ingest.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    ingest
        .post(
            Some(TOKEN),
            json_of(&bill_history("b-2566-0001", &[Proposed])),
        )
        .await;
    ingest
        .post(
            Some(TOKEN),
            json_of(&bill_history("b-2566-0001", &[Proposed])),
        )
        .await;
    ingest
        .post(
            Some(TOKEN),
            json_of(&[bill_event("b-2566-0002", 2, None, Proposed)]),
        )
        .await;
    let text = ingest
        .http
        .get(format!("{}/metrics", ingest.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"sapha_publisher_events_accepted_total{source="http:secretariat",result="stored"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"result="duplicate"} 1"#), "{text}");
    assert!(text.contains(r#"reason="seq_gap"} 1"#), "{text}");
    assert!(
        text.contains("sapha_publisher_events_published_total"),
        "{text}"
    );
    assert!(!text.contains(TOKEN));
    // Strict OpenMetrics, with the build, process and HTTP edge metrics.
    let exp = sapha_tests::openmetrics::check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let version = format!(
        "sapha_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(exp.get(&version), Some(1.0));
    assert!(exp.get("process_resident_memory_bytes") > Some(0.0));
    assert!(exp.get("process_open_fds") > Some(0.0));
    assert!(exp.get("sapha_ingest_connections_open") >= Some(1.0));
    assert_eq!(exp.get("sapha_publisher_retries_total"), Some(0.0));
}

#[tokio::test]
async fn tokens_rotate_from_their_file_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    let old = "old-token-0123456789abcdef";
    let new = "new-token-0123456789abcdef";
    std::fs::write(&path, format!("# ingest tokens\nsecretariat:{old}\n")).unwrap();
    let tokens = SharedTokens::new(Tokens::read_file(&path).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tokens.clone().watch_file(
        path.clone(),
        std::time::Duration::from_millis(20),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let ingest = Ingest::start_with(tokens).await;
    let one = |seq: u64, from, to| json_of(&[bill_event("b-2566-0042", seq, from, to)]);
    let (status, _) = ingest.post(Some(old), one(1, None, Proposed)).await;
    assert_eq!(status, StatusCode::OK);

    std::fs::write(&path, format!("secretariat:{new}\n")).unwrap();
    let rotated = sapha_tests::wait_until(std::time::Duration::from_secs(10), || async {
        ingest
            .post(Some(old), one(2, Some(Proposed), HouseR1))
            .await
            .0
            == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(rotated, "the old token stops working");
    let (status, body) = ingest
        .post(Some(new), one(2, Some(Proposed), HouseR1))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(ingest.stored().await, 2);
    // A broken file does not parse, so the watcher keeps the tokens in force.
    std::fs::write(&path, "no colon here\n").unwrap();
    assert!(Tokens::read_file(&path).is_err());
    let _ = stop_tx.send(());
}

/// The head of a chunked `POST /v1/events`, with or without the token.
fn chunked_head(token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}\
         Transfer-Encoding: chunked\r\n\r\n"
    )
}

/// Reads what the server sends on `tcp` until it closes or `patience` passes:
/// the text, and whether it closed.
async fn read_answer(tcp: &mut TcpStream, patience: Duration) -> (String, bool) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(patience, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

/// The JSON body of a raw HTTP/1.1 answer.
fn body_json(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_before_its_body_is_read() {
    let ingest = Ingest::start().await;
    let mut tcp = TcpStream::connect(ingest.addr).await.unwrap();
    tcp.write_all(chunked_head(None).as_bytes()).await.unwrap();
    // 256 KiB of a body that never ends.
    let chunk = vec![b'x'; 65_536];
    for _ in 0..4 {
        let _ = tcp.write_all(b"10000\r\n").await;
        let _ = tcp.write_all(&chunk).await;
        let _ = tcp.write_all(b"\r\n").await;
    }
    let (answer, _) = read_answer(&mut tcp, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "got {answer:?}");
    assert_eq!(body_json(&answer)["error"]["code"], "missing_token");
    assert_eq!(ingest.stored().await, 0);
}

#[tokio::test]
async fn a_body_that_never_ends_gets_408_and_the_connection_is_closed() {
    let ingest =
        Ingest::start_config(tokens(), |c| c.body_timeout = Duration::from_millis(500)).await;
    let mut tcp = TcpStream::connect(ingest.addr).await.unwrap();
    tcp.write_all(chunked_head(Some(TOKEN)).as_bytes())
        .await
        .unwrap();
    tcp.write_all(b"5\r\n[{\"a\"\r\n").await.unwrap();
    let (answer, closed) = read_answer(&mut tcp, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "got {answer:?}");
    assert_eq!(body_json(&answer)["error"]["code"], "body_timeout");
    assert!(closed, "the connection is closed after the 408");
}

#[tokio::test]
async fn too_many_bodies_at_once_from_one_ip_get_429() {
    let ingest = Ingest::start_config(tokens(), |c| {
        c.max_bodies_per_ip = 2;
        c.body_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(ingest.addr).await.unwrap();
        tcp.write_all(chunked_head(Some(TOKEN)).as_bytes())
            .await
            .unwrap();
        tcp.write_all(b"1\r\n[\r\n").await.unwrap();
        held.push(tcp);
    }
    // The server has both bodies in hand once a third request is refused; a
    // request that arrives before that is simply the third body, so retry.
    let refused = sapha_tests::wait_until(Duration::from_secs(10), || {
        let addr = ingest.addr;
        async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(chunked_head(Some(TOKEN)).as_bytes())
                .await
                .unwrap();
            tcp.write_all(b"1\r\n[\r\n").await.unwrap();
            let (answer, _) = read_answer(&mut tcp, Duration::from_millis(500)).await;
            answer.starts_with("HTTP/1.1 429")
                && body_json(&answer)["error"]["code"] == "too_many_bodies"
        }
    })
    .await;
    assert!(
        refused,
        "a third body from the same IP gets 429 too_many_bodies"
    );
    drop(held);
}

#[tokio::test]
async fn a_dribbled_or_silent_connection_to_ingest_is_closed() {
    let ingest = Ingest::start_config(tokens(), |c| {
        c.edge.request_deadline = Duration::from_millis(800);
    })
    .await;
    // Silent: not a byte.
    let mut silent = TcpStream::connect(ingest.addr).await.unwrap();
    // Dribbled: one header line every 300 ms, for up to 40 lines (12 s).
    let mut dribble = TcpStream::connect(ingest.addr).await.unwrap();
    let mut cut = false;
    dribble
        .write_all(b"POST /v1/events HTTP/1.1\r\n")
        .await
        .unwrap();
    for i in 0..40 {
        if dribble
            .write_all(format!("X-Line-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(300), dribble.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            _ => {}
        }
    }
    assert!(cut, "a dribbled request head is cut by the header deadline");
    let (_, closed) = read_answer(&mut silent, Duration::from_secs(10)).await;
    assert!(closed, "a silent connection is closed");
}

fn tokens() -> SharedTokens {
    SharedTokens::new(Tokens::parse(&format!("secretariat:{TOKEN}")).unwrap())
}

/// The same event with one thing changed: its `occurred_at`, a day later.
fn changed(e: &sapha_proto::Event) -> sapha_proto::Event {
    let mut c = e.clone();
    c.occurred_at += chrono::Duration::days(1);
    c
}

#[tokio::test]
async fn a_changed_resend_under_the_same_id_is_refused_not_taken_for_a_duplicate() {
    let ingest = Ingest::start().await;
    let first = bill_event("b-2566-0300", 1, None, Proposed);
    let (status, _) = ingest.post(Some(TOKEN), first.to_json()).await;
    assert_eq!(status, StatusCode::OK);

    // Changed and resent: refused, and named.
    let (status, body) = ingest.post(Some(TOKEN), changed(&first).to_json()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "event_id_reused", "{body}");
    assert_eq!(body["error"]["field"], "event_id");
    // An honest resend (the publisher filled recorded_at on the first) is a duplicate.
    let (status, body) = ingest.post(Some(TOKEN), first.to_json()).await;
    assert_eq!(
        (status, body["results"][0]["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );

    // Both versions in one batch: the first is stored, the second refused.
    let other = bill_event("b-2566-0301", 1, None, Proposed);
    let batch = json_of(&[other.clone(), changed(&other)]);
    let (status, body) = ingest.post(Some(TOKEN), batch).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        (
            body["error"]["code"].as_str(),
            body["error"]["index"].as_u64()
        ),
        (Some("event_id_reused"), Some(1))
    );
    assert_eq!(body["results"][0]["status"], "stored");
    assert_eq!(ingest.stored().await, 2);

    // A publisher that starts afresh reads the digest back from the stream.
    let log = JetStreamLog::open(&ingest.server.url(), &stream_settings())
        .await
        .unwrap();
    let restarted = Pipeline::new(
        log,
        RetryPolicy::default(),
        10,
        Arc::new(Metrics::default()),
    );
    let refused = restarted.submit(changed(&first), "test").await;
    assert_eq!(
        refused.map_err(|e| e.code()),
        Err("event_id_reused"),
        "after a restart"
    );
    let again = restarted.submit(first.clone(), "test").await;
    assert_eq!(again, Ok(sapha_publisher::pipeline::Outcome::Duplicate));
    assert_eq!(ingest.stored().await, 2);
}
