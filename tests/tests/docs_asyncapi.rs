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
