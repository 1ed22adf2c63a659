//! Tests of the scenarios: valid, gapless, legal, unique, deterministic, and equal to the committed files.

use super::generate::generate_bills;
use super::sittings::*;
use super::*;
use sapha_proto::event::{Body, Chamber, Group, Phase, VoteOption};
use sapha_proto::progress::BillProgress;
use sapha_proto::stage::{check_transition, rules_for, BillType, Proposer, Stage};
use sapha_proto::validate::validate;
use std::collections::{BTreeMap, HashMap, HashSet};

fn every_event() -> Vec<Event> {
    all_scenarios().into_iter().flat_map(|(_, e)| e).collect()
}

/// Events grouped by aggregate, each group in file order.
fn by_aggregate(events: &[Event]) -> BTreeMap<&str, Vec<&Event>> {
    let mut map: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        map.entry(e.aggregate_id.as_str()).or_default().push(e);
    }
    map
}

fn stage_change(e: &Event) -> Option<&sapha_proto::event::BillStageChanged> {
    match &e.body {
        Body::BillStageChanged(b) => Some(b),
        _ => None,
    }
}

#[test]
fn every_scenario_event_is_valid() {
    for (name, events) in all_scenarios() {
        assert!(!events.is_empty(), "{name}");
        for e in &events {
            assert_eq!(validate(e), Ok(()), "{name}: {e}");
            assert_eq!(e.recorded_at, None, "{name}: {e}");
            // The JSON form parses back to the same event.
            assert_eq!(
                Event::from_json(&e.to_json()).as_ref(),
                Ok(e),
                "{name}: {e}"
            );
        }
    }
}

#[test]
fn seqs_run_from_one_without_gaps_per_aggregate() {
    let events = every_event();
    for (aggregate, list) in by_aggregate(&events) {
        let seqs: Vec<u64> = list.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (1..=list.len() as u64).collect();
        assert_eq!(seqs, expected, "{aggregate}");
    }
}

#[test]
fn event_ids_are_unique_across_all_files() {
    let events = every_event();
    let mut seen = HashSet::new();
    for e in &events {
        assert!(seen.insert(e.event_id.as_str()), "duplicate {}", e.event_id);
    }
}

#[test]
fn no_aggregate_spans_two_files() {
    let mut owner: HashMap<String, &str> = HashMap::new();
    for (name, events) in all_scenarios() {
        for e in events {
            let first = owner.entry(e.aggregate_id.clone()).or_insert(name);
            assert_eq!(*first, name, "{} is in two files", e.aggregate_id);
        }
    }
}

#[test]
fn every_bill_history_is_legal_and_consistent() {
    let events = every_event();
    let bill_ids: HashSet<&str> = events
        .iter()
        .filter_map(stage_change)
        .map(|b| b.bill_id.as_str())
        .collect();
    let mut bills = 0;
    for (bill_id, list) in by_aggregate(&events) {
        let changes: Vec<_> = list.iter().filter_map(|e| stage_change(e)).collect();
        if changes.is_empty() {
            continue;
        }
        bills += 1;
        assert_eq!(changes.len(), list.len(), "{bill_id} mixes kinds");
        let (bill_type, title) = (changes[0].bill_type, &changes[0].title);
        let mut previous: Option<Stage> = None;
        let mut previous_day = None;
        let mut progress: Option<BillProgress> = None;
        for (b, e) in changes.iter().zip(&list) {
            assert_eq!(b.bill_type, bill_type, "{bill_id}");
            assert_eq!(&b.title, title, "{bill_id}");
            assert_eq!(b.from_stage, previous, "{e}");
            assert_eq!(
                check_transition(bill_type, previous, b.to_stage, b.deemed),
                Ok(()),
                "{e}"
            );
            // The rules that need the history: waits, returns, deadlines passed.
            match &mut progress {
                None => progress = Some(BillProgress::start(b, e.occurred_at)),
                Some(p) => {
                    assert_eq!(p.check(b, e.occurred_at), Ok(()), "{e}");
                    p.apply(b, e.occurred_at);
                }
            }
            assert_eq!(e.precision, DatePrecision::Day, "{e}");
            assert!(previous_day <= Some(e.occurred_at), "{e} goes back in time");
            if let Some(main) = &b.merged_into {
                assert!(bill_ids.contains(main.as_str()), "{e}: unknown {main}");
                assert_ne!(main, bill_id, "{e}");
            }
            previous = Some(b.to_stage);
            previous_day = Some(e.occurred_at);
        }
    }
    assert!(bills >= GENERATED_BILL_COUNT + 2, "{bills}");
}

#[test]
fn the_joint_vote_of_10_sep_2021_carries_exactly_the_real_tally() {
    let sitting = joint_2021_09_10();
    let closed: Vec<_> = sitting
        .iter()
        .filter_map(|e| match &e.body {
            Body::VoteClosed(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1);
    let counts = &closed[0].counts;
    assert_eq!(
        counts,
        &sapha_proto::examples::real_tally_10_sep_2021(),
        "the docs' example and the scenario must agree"
    );
    let sum = |option: VoteOption, group: Option<Group>| -> u32 {
        counts
            .iter()
            .filter(|c| c.option == option && (group.is_none() || c.group == group))
            .map(|c| c.value)
            .sum()
    };
    let expected = [
        (VoteOption::Aye, 472, 323, 149),
        (VoteOption::No, 33, 23, 10),
        (VoteOption::Abstain, 187, 121, 66),
    ];
    for (option, total, house, senate) in expected {
        assert_eq!(sum(option, None), total, "{option}");
        assert_eq!(sum(option, Some(Group::House)), house, "{option}");
        assert_eq!(sum(option, Some(Group::Senate)), senate, "{option}");
    }
    assert_eq!(counts.len(), 6);
    assert_eq!(closed[0].bill_id.as_deref(), Some(AMENDMENT_2021_BILL_ID));
    let passed = sitting.iter().any(|e| {
        matches!(&e.body, Body::VoteResult(r) if r.result == sapha_proto::event::VoteOutcome::Passed)
    });
    assert!(passed);
    let day = chrono::NaiveDate::from_ymd_opt(2021, 9, 10).unwrap();
    let opened = sitting
        .iter()
        .find(|e| matches!(&e.body, Body::SittingLifecycle(l) if l.phase == Phase::Opened))
        .unwrap();
    assert_eq!(opened.occurred_at.date_naive(), day);
}

#[test]
fn the_joint_sitting_of_10_sep_2021_counts_the_730_members_in_office() {
    // Daily News 256036: 730 in office (480 MPs, 250 senators): a quorum of 365,
    // more than half is 366; the requirement says "เท่าที่มีอยู่" (in office).
    let sitting = joint_2021_09_10();
    let quorum = sitting
        .iter()
        .find_map(|e| match &e.body {
            Body::QuorumChecked(q) => Some(q),
            _ => None,
        })
        .unwrap();
    assert_eq!((quorum.in_office, quorum.required), (Some(730), 365));
    let opened = sitting
        .iter()
        .find_map(|e| match &e.body {
            Body::VoteOpened(v) => Some(v),
            _ => None,
        })
        .unwrap();
    assert_eq!(opened.requirement.th.matches("เท่าที่มีอยู่").count(), 2);
    assert_eq!(opened.requirement.en.matches("in office").count(), 2);
    let threshold = opened.threshold.as_ref().unwrap();
    let needed: Vec<_> = threshold
        .parts
        .iter()
        .map(|p| p.ayes_needed(p.members_in_office.unwrap()))
        .collect();
    assert_eq!(needed, [Some(366), Some(84)]);
}

#[test]
fn the_amendment_reaches_its_third_reading_on_10_sep_2021() {
    let history = amendment_2021_history();
    // The stage convention: the third reading's vote moves the bill to APPROVED.
    let r3 = history
        .iter()
        .find(|e| stage_change(e).map(|b| b.to_stage) == Some(Stage::Approved))
        .expect("a third reading");
    assert_eq!(r3.occurred_at.to_rfc3339(), "2021-09-10T00:00:00+00:00");
    let stages: Vec<Stage> = history
        .iter()
        .filter_map(stage_change)
        .map(|b| b.to_stage)
        .collect();
    assert_eq!(
        stages,
        [
            Stage::Proposed,
            Stage::JointR1,
            Stage::ParliamentCommittee,
            Stage::JointR2,
            Stage::JointR3,
            Stage::Approved,
            Stage::PresentedForAssent,
            Stage::RoyalAssent,
            Stage::Published,
            Stage::Enacted
        ]
    );
    // The 15-day wait between the end of the second reading (entering JOINT_R3)
    // and the third reading's vote (entering APPROVED), D+16 (s.256 (5)).
    assert_eq!(
        history[4].occurred_at.date_naive().to_string(),
        "2021-08-25"
    );
    assert!(history[5].occurred_at - history[4].occurred_at >= chrono::Duration::days(16));
    // The sourced dates (scenarios/README.md): the second reading began on
    // 24 Aug 2021 (it took two days), royal assent was given on 7 Nov 2021.
    let day = |stage: Stage| {
        history
            .iter()
            .find(|e| stage_change(e).map(|b| b.to_stage) == Some(stage))
            .map(|e| e.occurred_at.date_naive().to_string())
    };
    assert_eq!(day(Stage::JointR1).as_deref(), Some("2021-06-24"));
    assert_eq!(day(Stage::JointR2).as_deref(), Some("2021-08-24"));
    assert_eq!(day(Stage::RoyalAssent).as_deref(), Some("2021-11-07"));
    assert_eq!(day(Stage::Published).as_deref(), Some("2021-11-21"));
    let first_reading = stage_change(&history[1]).unwrap().note.clone().unwrap();
    assert!(first_reading.th.contains("552"), "{}", first_reading.th);
    assert!(first_reading
        .en
        .contains("aye 552 (MPs 342, senators 210), no 24, abstain 130, not voting 27"));
    // In the feed, the stage change follows the vote result that caused it.
    let feed = joint_2021_09_10_feed();
    let result = feed
        .iter()
        .position(|e| matches!(e.body, Body::VoteResult(_)))
        .unwrap();
    assert_eq!(feed[result + 1].event_id, r3.event_id);
}

#[test]
fn the_senate_sitting_of_28_feb_2023_has_its_real_date_time_and_size() {
    let sitting = senate_2023_02_28();
    assert!(sitting
        .iter()
        .all(|e| e.aggregate_id == SENATE_2023_SITTING_ID));
    let opened = sitting
        .iter()
        .find(|e| matches!(&e.body, Body::SittingLifecycle(l) if l.phase == Phase::Opened))
        .unwrap();
    // 09:30 in Bangkok.
    assert_eq!(opened.occurred_at.to_rfc3339(), "2023-02-28T02:30:00+00:00");
    let mut sections = 0;
    for e in &sitting {
        match &e.body {
            Body::VoteClosed(v) => {
                assert_eq!(v.sitting.chamber, Chamber::Senate);
                assert!(v.counts.iter().all(|c| c.group.is_none()), "{e}");
                assert!(v.counts.iter().map(|c| c.value).sum::<u32>() <= 250, "{e}");
            }
            Body::QuorumChecked(q) => assert!(q.present <= 250 && q.required == 125, "{e}"),
            Body::SectionConsidered(_) => sections += 1,
            _ => {}
        }
    }
    assert!(sections >= 5);
    let history = senate_2023_bill_history();
    // The Senate's 60 days: from SENATE_R1 to SENATE_R3.
    let day_of = |stage| {
        history
            .iter()
            .find(|e| stage_change(e).map(|b| b.to_stage) == Some(stage))
            .unwrap()
            .occurred_at
    };
    assert!(day_of(Stage::SenateR3) - day_of(Stage::SenateR1) <= chrono::Duration::days(60));
    assert_eq!(
        day_of(Stage::SenateR3).date_naive(),
        opened.occurred_at.date_naive()
    );
}

#[test]
fn nothing_of_an_in_camera_session_is_streamed() {
    for (name, events) in all_scenarios() {
        let mut in_camera = false;
        for e in events.iter().filter(|e| e.body.sitting().is_some()) {
            match &e.body {
                Body::SittingLifecycle(l) if l.phase == Phase::InCameraStarted => in_camera = true,
                Body::SittingLifecycle(l) if l.phase == Phase::InCameraEnded => in_camera = false,
                Body::SittingLifecycle(_) => {}
                _ => assert!(!in_camera, "{name}: {e} streamed in camera"),
            }
        }
    }
}

#[test]
fn sitting_events_keep_time_order() {
    for sitting in [joint_2021_09_10(), senate_2023_02_28()] {
        for pair in sitting.windows(2) {
            assert!(pair[0].occurred_at <= pair[1].occurred_at, "{}", pair[1]);
        }
    }
}

fn start() -> chrono::NaiveDate {
    generated_start()
}

#[test]
fn the_generator_is_deterministic_for_a_seed() {
    let a = generate_bills(60, 7, start());
    let b = generate_bills(60, 7, start());
    assert_eq!(a, b);
    let c = generate_bills(60, 8, start());
    assert_ne!(a, c);
    assert!(generate_bills(0, 7, start()).is_empty());
}

#[test]
fn generated_bills_have_a_realistic_mix() {
    let events = generate_bills(GENERATED_BILL_COUNT, GENERATED_SEED, start());
    let firsts: Vec<_> = events
        .iter()
        .filter(|e| e.seq == 1)
        .filter_map(stage_change)
        .collect();
    assert_eq!(firsts.len(), GENERATED_BILL_COUNT);
    let mut per_type: HashMap<BillType, usize> = HashMap::new();
    for b in &firsts {
        *per_type.entry(b.bill_type).or_default() += 1;
        assert!(
            b.bill_id.starts_with("b-25") && b.bill_id.len() == "b-2566-0001".len(),
            "{}",
            b.bill_id
        );
        assert!(b.title.th.contains("พ.ศ. "), "{}", b.title.th);
        assert!(b.title.en.contains("B.E. "), "{}", b.title.en);
        assert!(b.note.is_some(), "{} has no note", b.bill_id);
        let proposer = b.proposer.expect("a generated bill names its proposer");
        assert!(
            Proposer::allowed(b.bill_type).contains(&proposer),
            "{}",
            b.bill_id
        );
    }
    for t in BillType::ALL {
        assert!(per_type.get(t).copied().unwrap_or(0) > 0, "no {t} bill");
    }
    assert!(
        per_type[&BillType::Act] * 2 > GENERATED_BILL_COUNT,
        "{per_type:?}"
    );

    // Some bills end, some are still on their way; some are enacted.
    let mut last: HashMap<&str, &sapha_proto::event::BillStageChanged> = HashMap::new();
    for b in events.iter().filter_map(stage_change) {
        last.insert(&b.bill_id, b);
    }
    let ended = last
        .values()
        .filter(|b| rules_for(b.bill_type).is_terminal(b.to_stage))
        .count();
    assert!(ended > 0 && ended < last.len(), "{ended} of {}", last.len());
    assert!(last.values().any(|b| b.to_stage == Stage::Enacted));
    assert!(last.values().any(|b| b.to_stage == Stage::Merged));
    // The Senate's deadline passes now and then: deemed approvals, with a
    // deadline on every move into the Senate.
    let moves: Vec<_> = events.iter().filter_map(stage_change).collect();
    assert!(moves.iter().any(|b| b.deemed));
    assert!(moves
        .iter()
        .filter(|b| b.to_stage == Stage::SenateR1)
        .all(|b| b.deadline.is_some()));
}

#[test]
fn generated_events_are_interleaved_by_date() {
    let events = generate_bills(GENERATED_BILL_COUNT, GENERATED_SEED, start());
    for pair in events.windows(2) {
        assert!(pair[0].occurred_at <= pair[1].occurred_at, "{}", pair[1]);
    }
    // Interleaved, not bill after bill.
    let switches = events
        .windows(2)
        .filter(|p| p[0].aggregate_id != p[1].aggregate_id)
        .count();
    assert!(switches > events.len() / 2, "{switches}");
    assert!(events.iter().all(|e| e.occurred_at.date_naive() >= start()));
}

#[test]
fn generated_dates_respect_the_deadlines() {
    let events = generate_bills(GENERATED_BILL_COUNT, GENERATED_SEED, start());
    let mut bills = 0;
    for (bill_id, list) in by_aggregate(&events) {
        let day = |stage: Stage| {
            list.iter()
                .find(|e| stage_change(e).map(|b| b.to_stage) == Some(stage))
                .map(|e| e.occurred_at)
        };
        let bill_type = stage_change(list[0]).unwrap().bill_type;
        if let (Some(r1), Some(r3)) = (day(Stage::SenateR1), day(Stage::SenateR3)) {
            bills += 1;
            // 60 days, extendable by 30.
            assert!(r3 - r1 <= chrono::Duration::days(90), "{bill_id}");
        }
        if let (Some(r3), Some(vote)) = (day(Stage::JointR3), day(Stage::Approved)) {
            if bill_type == BillType::ConstitutionalAmendment {
                // 15 days from the end of the second reading, the first not counted
                // (s.256 (5), CCC s.193/3).
                assert!(vote - r3 >= chrono::Duration::days(16), "{bill_id}");
            }
        }
        if bill_type == BillType::Budget {
            if let (Some(r1), Some(next)) = (day(Stage::SenateR1), day(Stage::PresentedForAssent)) {
                assert!(next - r1 <= chrono::Duration::days(25), "{bill_id}");
            }
        }
    }
    assert!(bills > 0);
}

#[test]
fn committed_files_equal_the_builders() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for (name, events) in all_scenarios() {
        let path = dir.join(name);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert!(
            committed == to_ndjson(&events),
            "{name} differs from its builder; regenerate with \
             `cargo run -p sapha-publisher --example make_scenarios`"
        );
    }
}

#[test]
fn write_ndjson_writes_one_event_per_line() {
    let events = senate_2023_02_28();
    let mut out = Vec::new();
    write_ndjson(&mut out, &events).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, to_ndjson(&events));
    assert_eq!(text.lines().count(), events.len());
    for (line, e) in text.lines().zip(&events) {
        assert_eq!(&Event::from_json(line).unwrap(), e);
    }
}
