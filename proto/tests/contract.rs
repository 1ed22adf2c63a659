//! The contract's promises: every kind round-trips between JSON and protobuf,
//! the examples are valid, and docs/EVENTS.md shows exactly these examples.

use sapha_proto::event::{Body, Event, KINDS};
use sapha_proto::examples::one_of_each_kind;
use sapha_proto::validate::{validate, ValidationError};

#[test]
fn there_is_one_example_of_every_kind() {
    let mut kinds: Vec<&str> = one_of_each_kind().iter().map(|e| e.body.kind()).collect();
    kinds.sort();
    let mut all = KINDS.to_vec();
    all.sort();
    assert_eq!(kinds, all);
}

#[test]
fn every_kind_round_trips_json_proto_json() {
    for event in one_of_each_kind() {
        let json = event.to_json();
        let from_json = Event::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(from_json, event, "JSON round trip of {}", event.body.kind());
        let bytes = from_json.encode_proto();
        let from_proto = Event::decode_proto(&bytes).expect("decodes");
        assert_eq!(
            from_proto,
            event,
            "protobuf round trip of {}",
            event.body.kind()
        );
        assert_eq!(
            from_proto.to_json(),
            json,
            "JSON text is stable for {}",
            event.body.kind()
        );
    }
}

#[test]
fn every_example_is_valid() {
    for event in one_of_each_kind() {
        assert_eq!(validate(&event), Ok(()), "{event}");
    }
}

#[test]
fn docs_events_md_shows_every_example() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/EVENTS.md"))
        .expect("docs/EVENTS.md exists");
    for event in one_of_each_kind() {
        let pretty = serde_json::to_string_pretty(&event).unwrap();
        assert!(
            doc.contains(&pretty),
            "docs/EVENTS.md lacks the current example of {}; regenerate it with \
             `cargo run -p sapha-proto --example events_md > docs/EVENTS.md`",
            event.body.kind()
        );
    }
}

#[test]
fn docs_events_md_shows_the_legal_stage_moves() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/EVENTS.md"))
        .expect("docs/EVENTS.md exists");
    assert!(
        doc.contains(&sapha_proto::stage::moves_markdown()),
        "docs/EVENTS.md lacks the current stage moves; regenerate it with \
         `cargo run -p sapha-proto --example events_md > docs/EVENTS.md`"
    );
}

fn example_json(kind: &str) -> serde_json::Value {
    let event = one_of_each_kind()
        .into_iter()
        .find(|e| e.body.kind() == kind)
        .unwrap();
    serde_json::to_value(&event).unwrap()
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let mut v = example_json("vote.closed");
    v["colour"] = "red".into();
    let err = Event::from_value(v).unwrap_err();
    assert!(err.message.contains("unknown field `colour`"), "{err}");

    let mut v = example_json("vote.closed");
    v["data"]["counts"][1]["weight"] = 2.into();
    let err = Event::from_value(v).unwrap_err();
    assert_eq!(err.path, "data.counts[1].weight");
    assert!(err.message.contains("unknown field `weight`"), "{err}");
}

#[test]
fn bad_codes_and_kinds_name_the_field() {
    let mut v = example_json("vote.closed");
    v["data"]["counts"][0]["option"] = "maybe".into();
    let err = Event::from_value(v).unwrap_err();
    assert_eq!(err.path, "data.counts[0].option", "{err}");

    let mut v = example_json("vote.closed");
    v["kind"] = "vote.recounted".into();
    let err = Event::from_value(v).unwrap_err();
    assert_eq!(err.path, "kind");

    let mut v = example_json("bill.stage_changed");
    v["occurred_at"] = "yesterday".into();
    let err = Event::from_value(v).unwrap_err();
    assert_eq!(err.path, "occurred_at");

    let err = Event::from_json("{not json").unwrap_err();
    assert!(!err.message.is_empty());
}

#[test]
fn tallies_above_membership_are_rejected() {
    let mut event = one_of_each_kind()
        .into_iter()
        .find(|e| e.body.kind() == "vote.closed")
        .unwrap();
    let Body::VoteClosed(vote) = &mut event.body else {
        unreachable!()
    };
    // 250 senators sat in 2021: 149 + 10 + 66 = 225; push the senate group over.
    vote.counts[1].value = 149 + 30;
    assert_eq!(
        validate(&event).unwrap_err().code(),
        "tally_exceeds_membership"
    );
    let Body::VoteClosed(vote) = &mut event.body else {
        unreachable!()
    };
    vote.counts[1].value = 149;
    vote.counts[0].value = 323 + 40; // 363 + 23 + 121 = 507 > 500 MPs
    let err = validate(&event).unwrap_err();
    assert!(
        matches!(err, ValidationError::ExceedsMembership { .. }),
        "{err}"
    );
}

#[test]
fn ids_that_would_widen_a_subject_are_rejected() {
    let mut event = one_of_each_kind().remove(0);
    let Body::BillStageChanged(b) = &mut event.body else {
        unreachable!()
    };
    b.bill_id = ">".into();
    event.aggregate_id = ">".into();
    let err = validate(&event).unwrap_err();
    assert_eq!(err.code(), "bad_id");
    assert_eq!(err.field(), "aggregate_id");
}

#[test]
fn subjects_follow_the_scheme() {
    let events = one_of_each_kind();
    assert_eq!(events[0].subject(), "parl.v1.bill.b-2564-ca-0001.stage");
    assert_eq!(
        events[1].subject(),
        "parl.v1.sitting.joint.joint-2564-1-10.lifecycle"
    );
    let vote = events
        .iter()
        .find(|e| e.body.kind() == "vote.closed")
        .unwrap();
    assert_eq!(vote.subject(), "parl.v1.sitting.joint.joint-2564-1-10.vote");
    assert_eq!(
        vote.secondary_topic().as_deref(),
        Some("bill.b-2564-ca-0001.vote")
    );
}

/// The example of `kind`, changed by `edit` on its JSON form, then validated:
/// the error's code and field.
fn invalid(kind: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (String, String) {
    let mut v = example_json(kind);
    edit(&mut v);
    let event = Event::from_value(v).expect("still parses");
    let err = validate(&event).expect_err("must be invalid");
    (err.code().to_owned(), err.field())
}

fn pair(code: &str, field: &str) -> (String, String) {
    (code.to_owned(), field.to_owned())
}

#[test]
fn the_quorum_is_half_of_the_members_in_office() {
    // s.120: 730 members in office need 365, not 375 (half of the 750 seats).
    let (code, field) = invalid("sitting.quorum_checked", |v| {
        v["data"]["required"] = 375.into();
    });
    assert_eq!((code, field), pair("quorum_in_office", "data.in_office"));
    let (code, _) = invalid("sitting.quorum_checked", |v| {
        v["data"].as_object_mut().unwrap().remove("in_office");
    });
    assert_eq!(code, "quorum_in_office");
    let (code, _) = invalid("sitting.quorum_checked", |v| {
        v["data"]["present"] = 740.into();
    });
    assert_eq!(code, "quorum_in_office");
    let (code, field) = invalid("sitting.quorum_checked", |v| {
        v["data"]["in_office"] = 751.into();
    });
    assert_eq!(
        (code, field),
        pair("tally_exceeds_membership", "data.in_office")
    );
}

#[test]
fn a_threshold_must_be_complete_and_of_the_sittings_groups() {
    let (code, field) = invalid("vote.opened", |v| {
        v["data"]["threshold"]["parts"][1]
            .as_object_mut()
            .unwrap()
            .remove("members_in_office");
    });
    assert_eq!(
        (code, field),
        pair("bad_threshold", "data.threshold.parts[1]")
    );
    let (code, _) = invalid("vote.opened", |v| {
        v["data"]["threshold"]["parts"][0]["numerator"] = 3.into();
    });
    assert_eq!(code, "bad_threshold");
    let (code, field) = invalid("vote.opened", |v| {
        v["data"]["threshold"]["parts"][1]["members_in_office"] = 251.into();
    });
    assert_eq!(
        (code, field),
        pair("bad_threshold", "data.threshold.parts[1].members_in_office")
    );
    let (code, _) = invalid("vote.opened", |v| {
        v["data"]["sitting"]["chamber"] = "house".into();
        v["aggregate_id"] = v["data"]["sitting"]["sitting_id"].clone();
    });
    assert_eq!(code, "bad_threshold");
}

#[test]
fn returned_on_is_only_on_the_reaffirmation_of_a_withheld_bill() {
    // s.138 (1): the day the Senate sent the bill back; no other move carries it.
    let (code, field) = invalid("bill.stage_changed", |v| {
        v["data"]["returned_on"] = "2021-09-01".into();
    });
    assert_eq!((code, field), pair("bad_returned_on", "data.returned_on"));
}

#[test]
fn the_s256_6_group_is_the_no_office_parties_not_the_opposition() {
    // s.256 (6): 20% of the MPs of parties with no minister, Speaker or Deputy
    // Speaker, 49 of 242 on 10 Sep 2021. A part on `opposition` counts no base
    // the Constitution names.
    let part = |group: &str| {
        serde_json::json!({"group": group, "base": "members_in_office", "compare": "at_least",
            "numerator": 1, "denominator": 5, "members_in_office": 242})
    };
    let mut v = example_json("vote.opened");
    v["data"]["threshold"]["parts"]
        .as_array_mut()
        .unwrap()
        .push(part("no_office_parties"));
    let event = Event::from_value(v).expect("parses");
    assert_eq!(validate(&event), Ok(()));
    let (code, field) = invalid("vote.opened", |v| {
        v["data"]["threshold"]["parts"]
            .as_array_mut()
            .unwrap()
            .push(part("opposition"));
    });
    assert_eq!(
        (code, field),
        pair("bad_threshold", "data.threshold.parts[2].group")
    );
}

#[test]
fn the_real_tally_of_10_sep_2021_passes_its_threshold() {
    use sapha_proto::vote::Verdict;
    let events = one_of_each_kind();
    let threshold = events
        .iter()
        .find_map(|e| match &e.body {
            Body::VoteOpened(v) => v.threshold.clone(),
            _ => None,
        })
        .unwrap();
    let Some(Body::VoteClosed(closed)) = events
        .iter()
        .map(|e| &e.body)
        .find(|b| b.kind() == "vote.closed")
    else {
        unreachable!()
    };
    assert_eq!(threshold.evaluate(&closed.counts, None), Verdict::Passed);
}

#[test]
fn the_chair_casts_a_vote_only_on_a_tie() {
    let (code, field) = invalid("vote.closed", |v| {
        v["data"]["casting_vote"] = "aye".into();
    });
    assert_eq!((code, field), pair("bad_casting_vote", "data.casting_vote"));
}

#[test]
fn deemed_deadline_and_proposer_follow_the_constitution() {
    // JOINT_R2 -> JOINT_R3 is a vote, never a deemed approval.
    let (code, field) = invalid("bill.stage_changed", |v| {
        v["data"]["deemed"] = true.into();
    });
    assert_eq!((code, field), pair("not_deemable", "data.deemed"));
    let (code, field) = invalid("bill.stage_changed", |v| {
        v["data"]["deadline"] = "2021-09-30".into();
    });
    assert_eq!((code, field), pair("deadline_not_set", "data.deadline"));
    let (code, field) = invalid("bill.stage_changed", |v| {
        v["data"]["proposer"] = "cabinet".into();
    });
    assert_eq!((code, field), pair("bad_proposer", "data.proposer"));
    let (code, _) = invalid("bill.stage_changed", |v| {
        v["data"].as_object_mut().unwrap().remove("from_stage");
        v["data"]["to_stage"] = "PROPOSED".into();
        v["data"]["proposer"] = "court".into();
    });
    assert_eq!(code, "bad_proposer", "a court cannot propose an amendment");
    // s.131 (1): an organic bill is the Cabinet's, on a court's or organ's
    // recommendation; a court or organ never introduces one itself (the 2550 rule).
    let organic = |proposer: &str, recommended_by: Option<&str>| {
        let mut v = example_json("bill.stage_changed");
        let data = v["data"].as_object_mut().unwrap();
        data.remove("from_stage");
        data.remove("deadline");
        data.insert("to_stage".into(), "PROPOSED".into());
        data.insert("bill_type".into(), "organic_act".into());
        data.insert("proposer".into(), proposer.into());
        if let Some(r) = recommended_by {
            data.insert("recommended_by".into(), r.into());
        }
        let event = Event::from_value(v).expect("parses");
        validate(&event).map_err(|e| (e.code().to_owned(), e.field()))
    };
    assert_eq!(organic("cabinet", Some("constitutional_court")), Ok(()));
    assert_eq!(organic("cabinet", None), Ok(()));
    assert_eq!(organic("mps", None), Ok(()));
    for proposer in ["court", "independent_organ"] {
        assert_eq!(
            organic(proposer, None),
            Err(pair("bad_proposer", "data.proposer")),
            "{proposer}"
        );
    }
    assert_eq!(
        organic("mps", Some("supreme_court")),
        Err(pair("bad_proposer", "data.recommended_by"))
    );
    let mut v = example_json("bill.stage_changed");
    v["data"]["deadline"] = "30 Sep".into();
    assert_eq!(Event::from_value(v).unwrap_err().path, "data.deadline");
}

#[test]
fn a_session_is_the_first_or_second_ordinary_one_of_a_year() {
    let (code, field) = invalid("sitting.lifecycle", |v| {
        v["data"]["session"]["number"] = 3.into();
    });
    assert_eq!((code, field), pair("bad_session", "data.session"));
    let (code, _) = invalid("sitting.lifecycle", |v| {
        v["data"]["session"]["year"] = 7.into();
    });
    assert_eq!(code, "bad_session");
}

#[test]
fn the_dashboards_stage_tables_are_the_rules() {
    let js = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hub/web/dashboard.js"
    ))
    .unwrap();
    let tables = sapha_proto::stage::dashboard_tables_js();
    assert!(
        tables.split("\n\n").all(|table| js.contains(table)),
        "hub/web/dashboard.js's STAGES and PATHS differ from proto/src/stage.rs; print them with \
         `cargo run -p sapha-proto --example dashboard_tables`"
    );
}
