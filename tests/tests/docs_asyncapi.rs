//! docs/asyncapi.yaml against the code: its lists of event kinds and error
//! codes are the code's own, so an independent client written from it sees
//! the same strings as real frames carry.

use sapha_tests::repo_root;

/// The items of the first `enum: [...]` (possibly over several lines) after
/// the line that contains `anchor`.
fn enum_after(yaml: &str, anchor: &str) -> Vec<String> {
    let start = yaml
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} in asyncapi.yaml"));
    let rest = &yaml[start..];
    let open = rest.find("enum: [").expect("an enum") + "enum: [".len();
    let close = rest[open..].find(']').expect("the enum ends") + open;
    rest[open..close]
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn asyncapi() -> String {
    std::fs::read_to_string(repo_root().join("docs/asyncapi.yaml")).unwrap()
}

#[test]
fn event_kinds_are_the_codes_own() {
    let yaml = asyncapi();
    assert_eq!(enum_after(&yaml, "kind:"), sapha_proto::event::KINDS);
    assert!(
        !yaml.contains("bill_stage_changed"),
        "kinds are dotted: bill.stage_changed"
    );
}

#[test]
fn error_codes_are_the_hubs_own() {
    let yaml = asyncapi();
    let anchor = "bad_json, bad_request";
    let start = yaml.find(anchor).expect("the error code enum");
    let line_start = yaml[..start].rfind('\n').unwrap_or(0);
    assert_eq!(
        enum_after(&yaml[line_start..], "enum:"),
        sapha_hub::protocol::code::ALL
    );
}

mod hub_support;

use hub_support::*;
use sapha_tests::NatsServer;
use serde_json::{json, Value};

/// The payload schema of `components.messages.<name>` in asyncapi.yaml.
fn message_schema(name: &str) -> serde_yaml::Value {
    let doc: serde_yaml::Value = serde_yaml::from_str(&asyncapi()).expect("asyncapi.yaml parses");
    doc["components"]["messages"][name]["payload"].clone()
}

/// Checks `value` against the parts of a JSON schema this document uses:
/// `required`, `properties` (no key outside them), `const`, `enum`, and nested
/// objects. Returns every mismatch, named by its path.
fn mismatches(schema: &serde_yaml::Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = schema.get("const") {
        let want: Value = serde_json::to_value(c).unwrap();
        if want != *value {
            out.push(format!("{path}: {value} is not the const {want}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(|e| e.as_sequence()) {
        let options: Vec<Value> = options
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        if !options.contains(value) {
            out.push(format!("{path}: {value} is not in the enum"));
        }
    }
    let (Some(props), Some(object)) = (
        schema.get("properties").and_then(|p| p.as_mapping()),
        value.as_object(),
    ) else {
        return out;
    };
    for key in schema
        .get("required")
        .and_then(|r| r.as_sequence())
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap();
        if !object.contains_key(key) {
            out.push(format!("{path}.{key}: required, missing"));
        }
    }
    for (key, v) in object {
        match props.get(key.as_str()) {
            None => out.push(format!("{path}.{key}: not in the documented properties")),
            Some(sub) => out.extend(mismatches(sub, v, &format!("{path}.{key}"))),
        }
    }
    out
}

/// Real frames from a running hub fit their documented message schemas: every
/// required field present, no undocumented field, enums and consts kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_frames_fit_their_message_schemas() {
    let nats = NatsServer::start();
    let publisher = Publisher::new(&nats).await;
    for _ in 0..2 {
        publisher.publish(&bill_stage("b-2566-0001")).await;
    }
    let hub = TestHub::start(test_config(&nats)).await;
    let mut client = Client::connect(&hub.ws_url("/v1/ws?topics=bill.%3E&since=0")).await;
    let mut frames = vec![
        ("Welcome", client.json().await),
        ("Ack", client.json().await),
    ];
    for _ in 0..2 {
        frames.push(("Event", client.json().await));
    }
    frames.push(("Live", client.json().await));
    client.send(json!({"op": "ping", "id": 7})).await;
    frames.push(("Ack", client.json().await));
    client
        .send(json!({"op": "subscribe", "id": "x", "topics": ["bill.>.stage"]}))
        .await;
    frames.push(("Error", client.json().await));
    let mut all = Vec::new();
    for (name, frame) in &frames {
        all.extend(mismatches(&message_schema(name), frame, name));
    }
    assert!(
        all.is_empty(),
        "frames that do not fit docs/asyncapi.yaml:\n{}",
        all.join("\n")
    );
    hub.shutdown().await;
}
