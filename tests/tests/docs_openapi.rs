//! docs/openapi.yaml is a valid OpenAPI 3.1 document whose schemas compile,
//! every `$ref` resolves, and every documented response of every path is what
//! a real hub sends: each status is produced, and each body fits its schema.

mod hub_support;

use hub_support::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sapha_hub::config::{AuthMode, Secret};
use sapha_tests::{repo_root, scenario, NatsServer};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn openapi() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docs/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("openapi.yaml parses")
}

/// Every `$ref` in the document, with where it is.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if k == "$ref" {
                    out.push((at.to_owned(), v.as_str().unwrap().to_owned()));
                } else {
                    refs(v, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The operations of a path item: (method, operation).
fn operations(item: &Value) -> Vec<(&str, &Value)> {
    ["get", "post", "put", "patch", "delete"]
        .into_iter()
        .filter_map(|m| item.get(m).map(|op| (m, op)))
        .collect()
}

fn pointer(r: &str) -> &str {
    r.strip_prefix('#').expect("a local $ref")
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointer of the schema of `path`'s `status` response, following a
/// `$ref` to `components/responses`; `None` for a response without a body.
fn response_schema(doc: &Value, path: &str, status: &str) -> Option<String> {
    operation_schema(doc, path, "get", status)
}

/// As [`response_schema`], for any method.
fn operation_schema(doc: &Value, path: &str, method: &str, status: &str) -> Option<String> {
    let mut at = format!("/paths/{}/{method}/responses/{status}", escape(path));
    if let Some(r) = doc.pointer(&at).and_then(|r| r.get("$ref")) {
        at = pointer(r.as_str().unwrap()).to_owned();
    }
    let schema = format!("{at}/content/application~1json/schema");
    doc.pointer(&schema).map(|_| schema)
}

/// Validates `body` against the schema at `schema_ptr`, `$ref`s resolved in the document.
fn check(doc: &Value, schema_ptr: &str, body: &Value, what: &str) {
    let mut root = doc.clone();
    root.as_object_mut().unwrap().insert(
        "$ref".into(),
        json!(format!(
            "#{}",
            schema_ptr.replace('{', "%7B").replace('}', "%7D")
        )),
    );
    let validator = jsonschema::validator_for(&root).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{body}");
}

#[test]
fn the_document_is_openapi_31_and_every_ref_resolves() {
    let doc = openapi();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut all = Vec::new();
    refs(&doc, "", &mut all);
    assert!(all.len() > 20);
    for (at, r) in &all {
        assert!(
            doc.pointer(pointer(r)).is_some(),
            "{at}: {r} does not resolve"
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in operations(item) {
            for (status, response) in op["responses"].as_object().unwrap() {
                let described =
                    response.get("description").is_some() || response.get("$ref").is_some();
                assert!(described, "{method} {path} {status} has no description");
            }
        }
    }
    for (name, _) in doc["components"]["schemas"].as_object().unwrap() {
        let mut root = doc.clone();
        root.as_object_mut()
            .unwrap()
            .insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
        jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The check can fail: a body missing a required field, or with one too many.
    let mut root = doc.clone();
    root.as_object_mut()
        .unwrap()
        .insert("$ref".into(), json!("#/components/schemas/Error"));
    let error = jsonschema::validator_for(&root).unwrap();
    assert!(error.is_valid(&json!({"type": "error", "code": "not_found", "message": "m"})));
    assert!(!error.is_valid(&json!({"type": "error", "code": "not_found"})));
    assert!(!error.is_valid(&json!({"type": "error", "code": "not_found", "message": "m", "x": 1})));
}

fn hs256(topics: &[&str]) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "t", "exp": exp, "topics": topics}),
        &EncodingKey::from_secret(b"openapi-test-secret"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_response_is_what_the_hub_sends() {
    let doc = openapi();
    let nats = NatsServer::start();
    // A hub before the stream exists: its state is not ready.
    let early = TestHub::start_unready(test_config(&nats)).await;
    let r = reqwest::get(early.http("/v1/bills")).await.unwrap();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut observe = |path: &str, status: u16, body: &Value| {
        let status = status.to_string();
        if let Some(schema) = response_schema(&doc, path, &status) {
            check(&doc, &schema, body, &format!("{path} {status}"));
        }
        seen.insert((path.to_owned(), status));
    };
    assert_eq!(r.status().as_u16(), 503);
    for path in [
        "/v1/bills",
        "/v1/bills/{bill_id}",
        "/v1/sittings",
        "/v1/sittings/{sitting_id}",
        "/v1/sittings/live",
    ] {
        let concrete = path
            .replace("{bill_id}", "b-2564-ca-0001")
            .replace("{sitting_id}", "joint-2564-1-10");
        let r = reqwest::get(early.http(&concrete)).await.unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 503, "{path}");
        observe(path, status, &r.json().await.unwrap());
    }
    drop(early);

    // The senate sitting in full, the joint one half way: one sitting is live.
    let publisher = Publisher::new(&nats).await;
    let joint = scenario("joint-2564-09-10.ndjson");
    let mut events = scenario("senate-2566-02-28.ndjson");
    events.extend(joint[..25].iter().cloned());
    let mut last = 0;
    for e in &events {
        last = publisher.publish(e).await;
    }
    let mut config = test_config(&nats);
    config.auth.mode = AuthMode::Optional;
    config.auth.hs256_secret = Some(Secret("openapi-test-secret".into()));
    // Without a token, only the sittings; a token adds its grant.
    config.auth.anonymous_topics = vec!["sitting.>".into()];
    config.state.requests_per_second = 1_000;
    config.state.request_burst = 1_000;
    let hub = TestHub::start(config).await;
    assert!(hub.wait_metric("sapha_hub_state_seq", last).await);

    let client = reqwest::Client::new();
    let cases: &[(&str, &str, u16)] = &[
        ("/v1/bills", "/v1/bills", 200),
        (
            "/v1/bills",
            "/v1/bills?q=%E0%B8%A1%E0%B8%B2%E0%B8%95%E0%B8%A3%E0%B8%B2",
            200,
        ),
        (
            "/v1/bills",
            "/v1/bills?stage=SENATE_R3,JOINT_R2&sort=id&limit=1",
            200,
        ),
        ("/v1/bills", "/v1/bills?stage=NOPE", 400),
        ("/v1/bills", "/v1/bills?limit=1000", 400),
        ("/v1/bills", "/v1/bills?q=%FF", 400),
        ("/v1/bills", "/v1/bills?sort=id&sort=id", 400),
        ("/v1/bills/{bill_id}", "/v1/bills/%FF", 400),
        ("/v1/sittings/{sitting_id}", "/v1/sittings/%FF", 400),
        (
            "/v1/sittings/live",
            "/v1/sittings/live?token=a&token=b",
            400,
        ),
        ("/v1/bills", "/v1/bills?token=not-a-jwt", 401),
        ("/v1/bills/{bill_id}", "/v1/bills/b-2564-ca-0001", 200),
        ("/v1/bills/{bill_id}", "/v1/bills/b-2565-0087", 200),
        ("/v1/bills/{bill_id}", "/v1/bills/b-0000-0000", 404),
        (
            "/v1/bills/{bill_id}",
            "/v1/bills/b-2564-ca-0001?token=x",
            401,
        ),
        ("/v1/sittings", "/v1/sittings", 200),
        (
            "/v1/sittings",
            "/v1/sittings?from=2021-09-10&to=2021-09-10&chamber=joint",
            200,
        ),
        ("/v1/sittings", "/v1/sittings?status=sleeping", 400),
        ("/v1/sittings", "/v1/sittings?token=x", 401),
        (
            "/v1/sittings/{sitting_id}",
            "/v1/sittings/joint-2564-1-10",
            200,
        ),
        (
            "/v1/sittings/{sitting_id}",
            "/v1/sittings/senate-2566-2-28",
            200,
        ),
        (
            "/v1/sittings/{sitting_id}",
            "/v1/sittings/house-0000-0-0",
            404,
        ),
        (
            "/v1/sittings/{sitting_id}",
            "/v1/sittings/joint-2564-1-10?token=x",
            401,
        ),
        ("/v1/sittings/live", "/v1/sittings/live", 200),
        ("/v1/sittings/live", "/v1/sittings/live?token=x", 401),
    ];
    let firehose = hs256(&[">"]);
    for (path, url, want) in cases {
        let mut request = client.get(hub.http(url));
        if !url.contains("token=") {
            request = request.bearer_auth(&firehose);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, *want, "{url}");
        let etag = r.headers().get("etag").cloned();
        let body: Value = r.json().await.unwrap();
        observe(path, status, &body);
        if status == 200 {
            // The same position again: 304, with the same ETag.
            let etag = etag.expect("an ETag");
            let again = client
                .get(hub.http(url))
                .bearer_auth(&firehose)
                .header("if-none-match", etag.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(again.status().as_u16(), 304, "{url}");
            assert_eq!(again.headers().get("etag"), Some(&etag));
            observe(path, 304, &Value::Null);
        }
    }
    let live = client
        .get(hub.http("/v1/sittings/live"))
        .send()
        .await
        .unwrap();
    let live: Value = live.json().await.unwrap();
    assert_eq!(live["items"][0]["sitting_id"], "joint-2564-1-10", "{live}");
    // A token with a grant sees only what it grants.
    let granted = client
        .get(hub.http("/v1/bills"))
        .bearer_auth(hs256(&["bill.b-2565-0087.>"]))
        .send()
        .await
        .unwrap();
    let granted: Value = granted.json().await.unwrap();
    assert_eq!(granted["total"], 1, "{granted}");
    let anonymous: Value = client
        .get(hub.http("/v1/bills"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        anonymous["total"], 0,
        "no bill without a grant: {anonymous}"
    );
    drop(hub);

    // A hub with a tight rate limit: the burst, then 429.
    let mut config = test_config(&nats);
    config.state.requests_per_second = 1;
    config.state.request_burst = 2;
    let tight = TestHub::start(config).await;
    let mut statuses = Vec::new();
    for path in [
        "/v1/bills",
        "/v1/bills/{bill_id}",
        "/v1/sittings",
        "/v1/sittings/{sitting_id}",
        "/v1/sittings/live",
    ] {
        let concrete = path
            .replace("{bill_id}", "b-2564-ca-0001")
            .replace("{sitting_id}", "joint-2564-1-10");
        let mut status = 0;
        for _ in 0..4 {
            let r = client.get(tight.http(&concrete)).send().await.unwrap();
            status = r.status().as_u16();
            if status == 429 {
                observe(path, status, &r.json().await.unwrap());
                break;
            }
        }
        statuses.push(status);
    }
    assert!(statuses.iter().all(|s| *s == 429), "{statuses:?}");

    // Every documented (path, status) was produced.
    let mut documented = BTreeSet::new();
    let state_paths = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/v1/bills") || path.starts_with("/v1/sittings"));
    for (path, item) in state_paths {
        for status in item["get"]["responses"].as_object().unwrap().keys() {
            documented.insert((path.clone(), status.clone()));
        }
    }
    let missing: Vec<_> = documented.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
}

/// The follow API: every documented (path, method, status) is produced by a
/// real hub on NATS, and every body fits its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_follow_response_is_what_the_hub_sends() {
    use reqwest::Method;
    let doc = openapi();
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    // The followed bills exist (the follow API refuses unknown ones).
    for bill in ["b-2566-0001", "b-2566-0002"] {
        publisher
            .publish(&sapha_tests::fixtures::bill_event(
                bill,
                1,
                None,
                sapha_proto::stage::Stage::Proposed,
            ))
            .await;
    }
    let mut config = test_config(&nats);
    // A key for integrators' tokens (the streams' auth stays off).
    config.auth.hs256_secret = Some(sapha_hub::config::Secret("integrator".into()));
    config.follow.max_body_bytes = 2048;
    config.follow.followers_per_ip_per_hour = 2;
    config.state.request_burst = 40;
    let hub = TestHub::start(config).await;
    for bill in ["b-2566-0001", "b-2566-0002"] {
        let url = hub.http(&format!("/v1/bills/{bill}"));
        let known = sapha_tests::wait_until(WAIT, || {
            let url = url.clone();
            async move { reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        assert!(known, "the hub knows {bill}");
    }
    let http = reqwest::Client::new();
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    let doc_ref = &doc;
    let seen_ref = &mut seen;
    let call = |method: Method,
                path: &'static str,
                url: String,
                secret: Option<String>,
                body: Option<Value>| {
        let http = http.clone();
        async move {
            let mut r = http.request(method.clone(), url);
            if let Some(s) = secret {
                r = r.bearer_auth(s);
            }
            if let Some(b) = body {
                r = r.json(&b);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16().to_string();
            let text = r.text().await.unwrap();
            (method.as_str().to_lowercase(), path, status, text)
        }
    };
    let mut record = |(method, path, status, text): (String, &'static str, String, String)| {
        let op = format!("/paths/{}/{method}/responses/{status}", escape(path));
        assert!(
            doc_ref.pointer(&op).is_some(),
            "{method} {path} answered {status}, undocumented: {text}"
        );
        if let Some(schema) = operation_schema(doc_ref, path, &method, &status) {
            let body: Value = serde_json::from_str(&text).unwrap();
            check(
                doc_ref,
                &schema,
                &body,
                &format!("{method} {path} {status}"),
            );
        }
        seen_ref.insert((path.to_owned(), method, status.clone()));
        (status, text)
    };
    let key = "/v1/push/key";
    record(call(Method::GET, key, hub.http(key), None, None).await);
    // The notifier publishes its key into the follow store.
    let store = sapha_tests::fixtures::follow_store(&nats.url()).await;
    let (_, vapid_public) = sapha_subscribers::notify::generate_vapid_key();
    store.set_vapid_public_key(&vapid_public).await.unwrap();
    store.announce_channels(&["webhook"]).await.unwrap();
    record(call(Method::GET, key, hub.http(key), None, None).await);

    let create = "/v1/followers";
    let webhook = json!({"lang": "th", "channel": {"type": "webhook", "reference": "u-1"}, "bills": ["b-2566-0001"]});
    let (_, text) = record(
        call(
            Method::POST,
            create,
            hub.http(create),
            None,
            Some(webhook.clone()),
        )
        .await,
    );
    let created: Value = serde_json::from_str(&text).unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    record(
        call(
            Method::POST,
            create,
            hub.http(create),
            None,
            Some(json!({"lang": "xx"})),
        )
        .await,
    );
    record(call(Method::POST, create, hub.http(create), None, Some(json!({"lang": "th", "channel": {"type": "webhook", "reference": "x".repeat(3000)}}))).await);
    record(
        call(
            Method::POST,
            create,
            hub.http(create),
            None,
            Some(webhook.clone()),
        )
        .await,
    );
    let (status, _) = record(
        call(
            Method::POST,
            create,
            hub.http(create),
            None,
            Some(webhook.clone()),
        )
        .await,
    );
    assert_eq!(status, "429");

    // Not JSON (415), on every path that takes a body.
    let not_json = |method: Method, path: &'static str, url: String, secret: Option<String>| {
        let http = http.clone();
        async move {
            let mut r = http
                .request(method.clone(), url)
                .header("content-type", "text/plain")
                .body("{}");
            if let Some(s) = secret {
                r = r.bearer_auth(s);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16().to_string();
            (
                method.as_str().to_lowercase(),
                path,
                status,
                r.text().await.unwrap(),
            )
        }
    };
    record(not_json(Method::POST, create, hub.http(create), None).await);
    // An integrator's token that does not verify (401), or lacks the scope (403).
    let no_scope = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "app", "exp": 4_000_000_000u64}),
        &EncodingKey::from_secret(b"integrator"),
    )
    .unwrap();
    for token in ["not-a-jwt".to_owned(), no_scope] {
        record(
            call(
                Method::POST,
                create,
                hub.http(create),
                Some(token),
                Some(webhook.clone()),
            )
            .await,
        );
    }

    let one = "/v1/followers/{follower_id}";
    let url = hub.http(&format!("/v1/followers/{id}"));
    record(not_json(Method::PATCH, one, url.clone(), Some(secret.clone())).await);
    let bill_path = "/v1/followers/{follower_id}/bills/{bill_id}";
    record(
        not_json(
            Method::PUT,
            bill_path,
            hub.http(&format!("/v1/followers/{id}/bills/b-2566-0002")),
            Some(secret.clone()),
        )
        .await,
    );
    let unknown = hub.http("/v1/followers/0123456789abcdef0123456789abcdef");
    for method in [Method::GET, Method::DELETE] {
        record(call(method.clone(), one, url.clone(), None, None).await);
        record(call(method.clone(), one, url.clone(), Some("wrong".into()), None).await);
        record(
            call(
                method.clone(),
                one,
                unknown.clone(),
                Some(secret.clone()),
                None,
            )
            .await,
        );
    }
    record(call(Method::GET, one, url.clone(), Some(secret.clone()), None).await);
    let patch = Some(json!({"lang": "en"}));
    record(
        call(
            Method::PATCH,
            one,
            url.clone(),
            Some(secret.clone()),
            patch.clone(),
        )
        .await,
    );
    record(
        call(
            Method::PATCH,
            one,
            url.clone(),
            Some(secret.clone()),
            Some(json!({"lang": 1})),
        )
        .await,
    );
    record(call(Method::PATCH, one, url.clone(), None, patch.clone()).await);
    record(
        call(
            Method::PATCH,
            one,
            url.clone(),
            Some("wrong".into()),
            patch.clone(),
        )
        .await,
    );
    record(
        call(
            Method::PATCH,
            one,
            unknown.clone(),
            Some(secret.clone()),
            patch.clone(),
        )
        .await,
    );

    let bill = "/v1/followers/{follower_id}/bills/{bill_id}";
    let bill_url = |b: &str| hub.http(&format!("/v1/followers/{id}/bills/{b}"));
    let unknown_bill = hub.http("/v1/followers/0123456789abcdef0123456789abcdef/bills/b-1");
    record(
        call(
            Method::PUT,
            bill,
            bill_url("b-2566-0002"),
            Some(secret.clone()),
            None,
        )
        .await,
    );
    record(
        call(
            Method::PUT,
            bill,
            bill_url("B.X"),
            Some(secret.clone()),
            None,
        )
        .await,
    );
    for method in [Method::PUT, Method::DELETE] {
        record(call(method.clone(), bill, bill_url("b-1"), None, None).await);
        record(
            call(
                method.clone(),
                bill,
                bill_url("b-1"),
                Some("wrong".into()),
                None,
            )
            .await,
        );
        record(
            call(
                method.clone(),
                bill,
                unknown_bill.clone(),
                Some(secret.clone()),
                None,
            )
            .await,
        );
    }
    record(
        call(
            Method::DELETE,
            bill,
            bill_url("b-2566-0001"),
            Some(secret.clone()),
            None,
        )
        .await,
    );
    record(call(Method::DELETE, one, url.clone(), Some(secret.clone()), None).await);
    hub.shutdown().await;

    // 503: a hub with the follow API off; 429 from the request rate.
    let mut off = test_config(&nats);
    off.follow.enabled = false;
    off.state.requests_per_second = 1;
    off.state.request_burst = 1;
    let hub = TestHub::start(off).await;
    record(
        call(
            Method::POST,
            create,
            hub.http(create),
            None,
            Some(webhook.clone()),
        )
        .await,
    );
    let mut limited = test_config(&nats);
    limited.state.requests_per_second = 1;
    limited.state.request_burst = 1;
    hub.shutdown().await;
    let hub = TestHub::start(limited).await;
    record(call(Method::GET, key, hub.http(key), None, None).await);
    record(call(Method::GET, key, hub.http(key), None, None).await);
    hub.shutdown().await;

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/followers") && path != "/v1/push/key" {
            continue;
        }
        for (method, op) in operations(item) {
            for status in op["responses"].as_object().unwrap().keys() {
                documented.insert((path.clone(), method.to_owned(), status.clone()));
            }
        }
    }
    let missing: Vec<_> = documented.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
}
