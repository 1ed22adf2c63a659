//! The hub's HTTP surface against a real nats-server: CORS on the public read
//! side and the follow API (headers and preflights), and the state API's
//! answers to bad and borderline requests.

mod hub_support;

use hub_support::*;
use sapha_tests::NatsServer;
use serde_json::Value;

/// The header `name` of `r`, as a string ("" when absent).
fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A GET from a page at `origin`.
async fn get_from(hub: &TestHub, path: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(hub.http(path))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

/// A CORS preflight from a page at `origin` for `method` with `headers`.
async fn preflight(
    hub: &TestHub,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, hub.http(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

/// By default any page may read the public side (`*`), errors included, and
/// call the follow API; preflights are answered; credentials are never
/// allowed; the operator's endpoints get no CORS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_any_page_read_the_public_side_by_default() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let seq = publisher.publish(&bill_stage("b-2566-0001")).await;
    let hub = TestHub::start(test_config(&nats)).await;
    assert!(hub.wait_metric("sapha_hub_state_seq", seq).await);
    let page = "https://news.example";

    for path in [
        "/v1/bills",
        "/v1/bills/b-2566-0001",
        "/v1/sittings",
        "/v1/sittings/live",
        "/sapha.js",
    ] {
        let r = get_from(&hub, path, page).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "access-control-allow-origin"), page, "{path}");
        assert_eq!(header(&r, "access-control-allow-credentials"), "", "{path}");
    }
    // A page may read the ETag (for If-None-Match) and Retry-After.
    let r = get_from(&hub, "/v1/bills", page).await;
    let exposed = header(&r, "access-control-expose-headers").to_ascii_lowercase();
    for h in ["etag", "retry-after", "www-authenticate"] {
        assert!(exposed.contains(h), "{h} not exposed: {exposed}");
    }
    // Errors carry it too, so that the page can read the JSON error.
    for path in ["/v1/bills?limit=0", "/v1/bills/b-nope"] {
        let r = get_from(&hub, path, page).await;
        assert!(r.status().is_client_error(), "{path}");
        assert_eq!(header(&r, "access-control-allow-origin"), page, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["type"], "error", "{path}");
    }
    // SSE: EventSource from another origin.
    let r = reqwest::Client::new()
        .get(hub.http("/v1/sse?topics=bill.>"))
        .header("origin", page)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), page);
    drop(r);

    // The preflight of a state request with a token and a conditional GET.
    let r = preflight(
        &hub,
        "/v1/bills",
        page,
        "GET",
        "authorization, if-none-match",
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(header(&r, "access-control-allow-origin"), page);
    let allowed = header(&r, "access-control-allow-headers").to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("if-none-match"),
        "{allowed}"
    );
    assert!(header(&r, "access-control-allow-methods").contains("GET"));
    assert_eq!(header(&r, "access-control-max-age"), "600");
    assert_eq!(header(&r, "access-control-allow-credentials"), "");
    // The follow API: a JSON POST and a PATCH with the follower's secret.
    for (path, method) in [
        ("/v1/followers", "POST"),
        ("/v1/followers/f-x", "PATCH"),
        ("/v1/followers/f-x/bills/b-2566-0001", "PUT"),
    ] {
        let r = preflight(&hub, path, page, method, "content-type, authorization").await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(header(&r, "access-control-allow-origin"), page, "{path}");
        assert!(
            header(&r, "access-control-allow-methods").contains(method),
            "{path}"
        );
        assert_eq!(header(&r, "access-control-allow-credentials"), "", "{path}");
    }
    // The operator's endpoints are not for pages of other origins.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = get_from(&hub, path, page).await;
        assert_eq!(header(&r, "access-control-allow-origin"), "", "{path}");
    }
    hub.shutdown().await;
}

/// With origins listed, only those pages get CORS (the origin echoed, with
/// `Vary: Origin`); another page gets none, for reads and preflights; the
/// follow API has its own list (`[]`: the hub's own pages only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_follows_the_configured_origins() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let mut config = test_config(&nats);
    config.limits.allowed_origins = vec!["https://news.example".into()];
    config.follow.allowed_origins = vec![];
    let hub = TestHub::start(config).await;

    let r = get_from(&hub, "/v1/bills", "https://news.example").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://news.example"
    );
    assert!(header(&r, "vary").to_ascii_lowercase().contains("origin"));
    let r = get_from(&hub, "/v1/bills", "https://evil.example").await;
    assert_eq!(header(&r, "access-control-allow-origin"), "");
    let r = preflight(
        &hub,
        "/v1/bills",
        "https://evil.example",
        "GET",
        "authorization",
    )
    .await;
    assert_eq!(header(&r, "access-control-allow-origin"), "");
    let r = preflight(
        &hub,
        "/v1/bills",
        "https://news.example",
        "GET",
        "authorization",
    )
    .await;
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://news.example"
    );
    let r = preflight(
        &hub,
        "/v1/followers",
        "https://news.example",
        "POST",
        "content-type",
    )
    .await;
    assert_eq!(header(&r, "access-control-allow-origin"), "");
    hub.shutdown().await;
}

/// GET with headers; status, body (JSON or Null) and headers.
async fn get_with(
    hub: &TestHub,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().get(hub.http(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// The state API over HTTP: repeated keys (a list takes them all, a single
/// value refuses them, naming the parameter), invalid UTF-8 in `q` or an id,
/// strict numbers and dates, weak and per-URL ETags, bound cursors, and a
/// `Retry-After` on every 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_api_reads_its_query_strictly() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut last = 0;
    let joint =
        std::fs::read_to_string(sapha_tests::repo_root().join("scenarios/joint-2564-09-10.ndjson"))
            .unwrap();
    for line in joint.lines() {
        last = publisher
            .publish(&sapha_proto::Event::from_json(line).unwrap())
            .await;
    }
    for bill in ["b-2566-0001", "b-2566-0002"] {
        last = publisher.publish(&bill_stage(bill)).await;
    }
    let mut config = test_config(&nats);
    config.state.requests_per_second = 1;
    config.state.request_burst = 200;
    let hub = TestHub::start(config).await;
    assert!(hub.wait_metric("sapha_hub_state_seq", last).await);
    let total = |b: &Value| b["total"].as_u64().unwrap();

    // Repeated list keys: all of them, in any order, as with commas.
    let (_, one, _) = get_with(&hub, "/v1/bills?stage=ENACTED", &[]).await;
    let (_, both, _) = get_with(&hub, "/v1/bills?stage=ENACTED&stage=PROPOSED", &[]).await;
    let (_, reversed, _) = get_with(&hub, "/v1/bills?stage=PROPOSED&stage=ENACTED", &[]).await;
    let (_, commas, _) = get_with(&hub, "/v1/bills?stage=ENACTED,PROPOSED", &[]).await;
    assert!(total(&one) > 0);
    assert_eq!(total(&both), total(&reversed));
    assert_eq!(total(&both), total(&commas));
    assert!(total(&both) >= total(&one));
    // A single-valued key twice: 400 naming it.
    for (path, name) in [
        ("/v1/bills?sort=id&sort=moved_asc", "sort"),
        ("/v1/bills?q=a&q=b", "q"),
        ("/v1/bills?limit=5&limit=6", "limit"),
        ("/v1/sittings?from=2021-01-01&from=2022-01-01", "from"),
        ("/v1/bills/b-2564-ca-0001?token=a&token=b", "token"),
    ] {
        let (status, body, _) = get_with(&hub, path, &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_parameter")),
            "{path}"
        );
        assert_eq!(body["parameter"], name, "{path}: {body}");
    }
    // Invalid UTF-8 once percent-decoded: 400 with the JSON error, in the
    // query and in a path id; valid Thai is found.
    for (path, name) in [
        ("/v1/bills?q=%FF", "q"),
        ("/v1/bills?q=%E0%B8", "q"),
        ("/v1/sittings?status=%C3%28", "status"),
        ("/v1/bills/%FF", "id"),
    ] {
        let (status, body, _) = get_with(&hub, path, &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_parameter")),
            "{path}"
        );
        assert_eq!(body["parameter"], name, "{path}: {body}");
    }
    let (status, _, _) = get_with(
        &hub,
        "/v1/bills?q=%E0%B8%A0%E0%B8%B2%E0%B8%A9%E0%B8%B5",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    // The streams' query strings too (a replaced epoch or token would be used).
    let (status, body, _) = get_with(&hub, "/v1/sse?topics=bill.%3E&epoch=%FF", &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    match tokio_tungstenite::connect_async(hub.ws_url("/v1/ws?topics=bill.%3E&token=%FF")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 400);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"")).unwrap();
            assert_eq!(body["code"], "bad_request", "{body}");
        }
        other => panic!(
            "a WebSocket with a non-UTF-8 query: {:?}",
            other.map(|_| ())
        ),
    }
    // Strict numbers and dates; a Buddhist-era year is told to subtract 543.
    for (path, name) in [
        ("/v1/bills?limit=%2B5", "limit"),
        ("/v1/bills?moved_since=24-01-01", "moved_since"),
        ("/v1/sittings?to=2021-9-10", "to"),
    ] {
        let (status, body, _) = get_with(&hub, path, &[]).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some(name)),
            "{path}: {body}"
        );
    }
    let (status, body, _) = get_with(&hub, "/v1/bills?moved_since=2567-12-04", &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("subtract 543"),
        "{body}"
    );

    // ETags: weak comparison, lists, `*`; another URL's tag is not a match,
    // and a missing bill is never 304.
    let (_, _, h) = get_with(&hub, "/v1/bills/b-2564-ca-0001", &[]).await;
    let tag = h["etag"].to_str().unwrap().to_owned();
    for inm in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"x\", W/{tag}"),
        "*".into(),
    ] {
        let (status, _, _) =
            get_with(&hub, "/v1/bills/b-2564-ca-0001", &[("if-none-match", &inm)]).await;
        assert_eq!(status, 304, "If-None-Match: {inm}");
    }
    for (path, inm) in [
        ("/v1/bills/b-nope", tag.as_str()),
        ("/v1/bills/b-nope", "*"),
        ("/v1/bills", tag.as_str()),
        ("/v1/bills?stage=ENACTED", tag.as_str()),
    ] {
        let (status, _, _) = get_with(&hub, path, &[("if-none-match", inm)]).await;
        assert_ne!(status, 304, "{path} with {inm}");
    }

    // Cursors: bound to their query; a foreign or edited one is 400.
    let (_, page, _) = get_with(&hub, "/v1/bills?limit=1&sort=id", &[]).await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("more than one bill")
        .to_owned();
    let (status, next, _) = get_with(
        &hub,
        &format!("/v1/bills?limit=1&sort=id&cursor={cursor}"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(next["items"][0]["bill_id"], page["items"][0]["bill_id"]);
    let mut edited = cursor.clone();
    edited.replace_range(0..1, if edited.starts_with('A') { "B" } else { "A" });
    for path in [
        format!("/v1/bills?limit=1&sort=moved_asc&cursor={cursor}"),
        format!("/v1/bills?limit=1&sort=id&stage=ENACTED&cursor={cursor}"),
        format!("/v1/sittings?limit=1&cursor={cursor}"),
        format!("/v1/bills?limit=1&sort=id&cursor={edited}"),
    ] {
        let (status, body, _) = get_with(&hub, &path, &[]).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some("cursor")),
            "{path}: {body}"
        );
    }

    // 429 carries Retry-After (1 request a second here, the burst spent).
    let mut limited = None;
    for _ in 0..400 {
        let (status, body, h) = get_with(&hub, "/v1/bills?limit=1", &[]).await;
        if status == 429 {
            limited = Some((body, h));
            break;
        }
    }
    let (body, h) = limited.expect("the burst runs out within 400 requests");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(h["retry-after"], "1");
    // The follow API shares the per-address bucket, and its 429 says the same.
    let mut follow_limited = None;
    for _ in 0..50 {
        let (status, body, h) = get_with(
            &hub,
            "/v1/followers/f-nobody",
            &[("authorization", "Bearer x")],
        )
        .await;
        if status == 429 {
            follow_limited = Some((body, h));
            break;
        }
    }
    let (body, h) = follow_limited.expect("the shared bucket is spent");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert_eq!(h["retry-after"], "1");
    hub.shutdown().await;
}

/// Sends `request` on a new connection (while reading, so that a large one
/// cannot block) and returns what came back until the hub closed.
async fn raw_exchange(hub: &TestHub, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, read.read_to_end(&mut answer)).await;
    drop(writer.await);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP/1.1 answer.
fn raw_body(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").unwrap_or(("", ""));
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// The errors hyper answers by itself (a request head too large, 431; one
/// that is not HTTP, 400) carry the JSON error body like every other error,
/// also on a keep-alive connection after a good request; the router's own
/// answers are left as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_the_http_layer_carry_the_json_body() {
    let nats = NatsServer::start();
    let _publisher = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;

    // A 1 MB q.
    let mut big = b"GET /v1/bills?q=".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend_from_slice(b" HTTP/1.1\r\nHost: hub\r\n\r\n");
    let answer = raw_exchange(&hub, big).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{:.200}", answer);
    let body = raw_body(&answer);
    assert_eq!(body["type"], "error", "{answer:.400}");
    assert_eq!(body["code"], "request_header_fields_too_large");
    // Over 100 headers.
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: hub\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("x-h{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let answer = raw_exchange(&hub, many).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(raw_body(&answer)["code"], "request_header_fields_too_large");
    // Not HTTP, at once and after a good request on the same connection.
    let answer = raw_exchange(&hub, b"GARBAGE\r\n\r\n".to_vec()).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(raw_body(&answer)["code"], "bad_request");
    let answer = raw_exchange(
        &hub,
        b"GET /nope HTTP/1.1\r\nHost: hub\r\n\r\nGARBAGE\r\n\r\n".to_vec(),
    )
    .await;
    let (first, second) = answer.split_at(answer.rfind("HTTP/1.1 400 ").expect("the 400"));
    assert!(first.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(
        first.contains("\"code\":\"not_found\""),
        "the router's 404 as it was: {first}"
    );
    assert_eq!(raw_body(second)["code"], "bad_request", "{answer}");
    hub.shutdown().await;
}
