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
