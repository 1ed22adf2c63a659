//! Search through the state API against a real nats-server, on every shipped
//! scenario: the everyday spellings of Thai legal abbreviations, a query typed
//! key by key, the English synonyms, and every page of a long answer.

mod hub_support;

use hub_support::*;
use sapha_tests::{scenario, NatsServer};
use serde_json::Value;
use std::collections::HashSet;

/// `GET /v1/bills` with `q` (and more), as a client would send it (percent-encoded).
async fn search(hub: &TestHub, query: &[(&str, &str)]) -> Value {
    let r = reqwest::Client::new()
        .get(hub.http("/v1/bills"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{query:?}");
    r.json().await.unwrap()
}

async fn total(hub: &TestHub, q: &str) -> u64 {
    search(hub, &[("q", q), ("limit", "1")]).await["total"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn search_finds_abbreviations_as_people_type_them_synonyms_and_every_page() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    let mut last = 0;
    for file in [
        "joint-2564-09-10.ndjson",
        "senate-2566-02-28.ndjson",
        "bills-generated.ndjson",
    ] {
        for e in scenario(file) {
            last = publisher.publish(&e).await;
        }
    }
    let hub = TestHub::start(test_config(&nats)).await;
    assert!(hub.wait_metric("sapha_hub_state_seq", last).await);

    // Every spelling of พ.ร.บ. finds the same bills; the written-out form too.
    let acts = total(&hub, "พ.ร.บ.").await;
    assert!(acts > 100, "พ.ร.บ. finds {acts}");
    for q in ["พรบ", "พ.ร.บ", "พ. ร. บ.", "พระราชบัญญัติ"]
    {
        assert_eq!(total(&hub, q).await, acts, "{q}");
    }
    // Run into the next word.
    let tax = total(&hub, "พ.ร.บ.ภาษี").await;
    assert!(tax > 0);
    assert_eq!(total(&hub, "พรบภาษี").await, tax);
    // Typed key by key, it never finds nothing on the way.
    let mut typed = String::new();
    for c in "พ.ร.บ.".chars() {
        typed.push(c);
        assert!(total(&hub, &typed).await > 0, "{typed} finds nothing");
    }
    // The annual budget bill is the "Appropriations Act": `budget` finds it,
    // with the word it stands for marked.
    let budget = search(&hub, &[("q", "budget")]).await;
    let items = budget["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{budget}");
    assert!(items.iter().all(|i| i["bill_type"] == "budget"), "{budget}");
    assert_eq!(items[0]["match"]["field"], "title.en");
    assert_eq!(items[0]["match"]["text"], "Appropriation");

    // Every page of a long answer, by its cursors: each bill once.
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("q", "พรบ"), ("limit", "20")];
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let page = search(&hub, &query).await;
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["bill_id"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, acts);
}
