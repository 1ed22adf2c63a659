//! One realistic example of every event kind. They are the examples in
//! docs/EVENTS.md (a test checks that the document shows exactly these) and the
//! inputs of the round-trip tests.

use crate::event::*;
use crate::stage::{BillType, Stage};
use crate::vote::{Base, Compare, Threshold, ThresholdPart};
use chrono::{DateTime, Utc};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("a valid example time")
        .to_utc()
}

fn joint() -> SittingRef {
    SittingRef {
        chamber: Chamber::Joint,
        sitting_id: "joint-2564-1-10".into(),
    }
}

fn envelope(event_id: &str, aggregate_id: &str, seq: u64, occurred_at: &str, body: Body) -> Event {
    Event {
        schema_version: SCHEMA_VERSION,
        event_id: event_id.into(),
        aggregate_id: aggregate_id.into(),
        seq,
        occurred_at: at(occurred_at),
        precision: DatePrecision::Instant,
        recorded_at: Some(at(occurred_at) + chrono::Duration::milliseconds(420)),
        source: "parliament-sitting-system".into(),
        source_ref: None,
        supersedes: None,
        body,
    }
}

fn speaker() -> Person {
    Person {
        person_id: "p-chuan-leekpai".into(),
        name: Text::new("ชวน หลีกภัย", "Chuan Leekpai"),
    }
}

/// One example per kind, in the order of the story of 10 Sep 2021.
pub fn one_of_each_kind() -> Vec<Event> {
    let s = joint;
    let amendment = Some("b-2564-ca-0001".to_string());
    let mut bill = envelope(
        "e-b-2564-ca-0001-6",
        "b-2564-ca-0001",
        6,
        "2021-09-10T00:00:00Z",
        Body::BillStageChanged(BillStageChanged {
            bill_id: "b-2564-ca-0001".into(),
            bill_type: BillType::ConstitutionalAmendment,
            title: Text::new(
                "ร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (ฉบับที่ ..) พ.ศ. .... (มาตรา 83 และมาตรา 91)",
                "Draft Constitutional Amendment (No. ..) B.E. .... (sections 83 and 91)",
            ),
            from_stage: Some(Stage::JointR3),
            to_stage: Stage::Approved,
            note: Some(Text::new("ผ่านวาระที่ 3", "passed its third reading")),
            merged_into: None,
            deemed: false,
            deadline: None,
            money_bill: false,
            proposer: None,
            recommended_by: None,
            returned_on: None,
        }),
    );
    bill.precision = DatePrecision::Day;
    bill.source = "senate-secretariat".into();
    bill.source_ref = Some("lis/2564/ca-0001".into());
    vec![
        bill,
        envelope(
            "e-joint-2564-1-10-1",
            "joint-2564-1-10",
            1,
            "2021-09-10T02:30:00Z",
            Body::SittingLifecycle(SittingLifecycle {
                sitting: s(),
                phase: Phase::Opened,
                outcome: None,
                title: Some(Text::new(
                    "การประชุมร่วมกันของรัฐสภา สมัยประชุมสามัญประจำปีครั้งที่หนึ่ง",
                    "Joint sitting of the National Assembly, first ordinary session",
                )),
                number: None,
                session: Some(Session {
                    kind: SessionKind::Ordinary,
                    number: 1,
                    year: 3,
                }),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-2",
            "joint-2564-1-10",
            2,
            "2021-09-10T02:41:00Z",
            Body::QuorumChecked(QuorumChecked {
                sitting: s(),
                present: 692,
                required: 365,
                met: true,
                in_office: Some(JOINT_IN_OFFICE_2021_09_10.0 + JOINT_IN_OFFICE_2021_09_10.1),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-3",
            "joint-2564-1-10",
            3,
            "2021-09-10T02:45:00Z",
            Body::AgendaItemStarted(AgendaItemStarted {
                sitting: s(),
                item_id: "item-1".into(),
                category: AgendaCategory::Urgent,
                title: Text::new(
                    "ร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (มาตรา 83 และมาตรา 91) วาระที่ 3",
                    "Constitutional amendment (sections 83 and 91), third reading",
                ),
                bill_id: amendment.clone(),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-4",
            "joint-2564-1-10",
            4,
            "2021-09-10T02:50:00Z",
            Body::SpeechStarted(SpeechStarted {
                sitting: s(),
                person: speaker(),
                role: Role::Chair,
            }),
        ),
        envelope(
            "e-joint-2564-1-10-5",
            "joint-2564-1-10",
            5,
            "2021-09-10T02:55:00Z",
            Body::SpeechEnded(SpeechEnded {
                sitting: s(),
                person: speaker(),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-6",
            "joint-2564-1-10",
            6,
            "2021-09-10T03:00:00Z",
            Body::ChairChanged(ChairChanged {
                sitting: s(),
                person: speaker(),
                office: Text::new("ประธานรัฐสภา", "President of the National Assembly"),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-7",
            "joint-2564-1-10",
            7,
            "2021-09-10T03:05:00Z",
            Body::VoteOpened(VoteOpened {
                sitting: s(),
                vote_id: "vote-1".into(),
                method: VoteMethod::RollCall,
                requirement: Text::new(
                    "มากกว่ากึ่งหนึ่งของจำนวนสมาชิกทั้งหมดเท่าที่มีอยู่ของทั้งสองสภา",
                    "more than half of the members in office of both Houses",
                ),
                question: Text::new(
                    "เห็นชอบร่างรัฐธรรมนูญแก้ไขเพิ่มเติมในวาระที่ 3",
                    "approve the amendment at its third reading",
                ),
                bill_id: amendment.clone(),
                threshold: Some(third_reading_threshold_2021()),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-8",
            "joint-2564-1-10",
            8,
            "2021-09-10T05:40:00Z",
            Body::VoteClosed(VoteClosed {
                sitting: s(),
                vote_id: "vote-1".into(),
                counts: real_tally_10_sep_2021(),
                bill_id: amendment.clone(),
                casting_vote: None,
            }),
        ),
        envelope(
            "e-joint-2564-1-10-9",
            "joint-2564-1-10",
            9,
            "2021-09-10T05:41:00Z",
            Body::VoteResult(VoteResult {
                sitting: s(),
                vote_id: "vote-1".into(),
                result: VoteOutcome::Passed,
                bill_id: amendment,
            }),
        ),
        envelope(
            "e-joint-2564-1-10-10",
            "joint-2564-1-10",
            10,
            "2021-09-10T05:50:00Z",
            Body::AgendaItemEnded(AgendaItemEnded {
                sitting: s(),
                item_id: "item-1".into(),
                disposition: Disposition::Completed,
            }),
        ),
        envelope(
            "e-joint-2564-1-10-11",
            "joint-2564-1-10",
            11,
            "2021-09-10T06:00:00Z",
            Body::SectionConsidered(SectionConsidered {
                sitting: s(),
                item_id: "item-2".into(),
                section_no: "83".into(),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-12",
            "joint-2564-1-10",
            12,
            "2021-09-10T06:10:00Z",
            Body::MotionMoved(MotionMoved {
                sitting: s(),
                motion_id: "motion-1".into(),
                text: Text::new("ขอให้ปิดการอภิปราย", "that the debate be closed"),
                mover: Person {
                    person_id: "p-member-0412".into(),
                    name: Text::new("สมาชิกรัฐสภา", "a member of Parliament"),
                },
            }),
        ),
        envelope(
            "e-joint-2564-1-10-13",
            "joint-2564-1-10",
            13,
            "2021-09-10T06:12:00Z",
            Body::MotionWithdrawn(MotionWithdrawn {
                sitting: s(),
                motion_id: "motion-1".into(),
            }),
        ),
        envelope(
            "e-joint-2564-1-10-14",
            "joint-2564-1-10",
            14,
            "2021-09-10T06:20:00Z",
            Body::MotionDecided(MotionDecided {
                sitting: s(),
                motion_id: "motion-2".into(),
                decision: Decision::Adopted,
            }),
        ),
    ]
}

/// The third-reading vote of 10 Sep 2021 on sections 83 and 91: aye 472 (MPs
/// 323, senators 149); no 33 (23, 10); abstain 187 (121, 66).
pub fn real_tally_10_sep_2021() -> Vec<VoteCount> {
    let c = |option, group, value| VoteCount {
        option,
        group: Some(group),
        value,
    };
    vec![
        c(VoteOption::Aye, Group::House, 323),
        c(VoteOption::Aye, Group::Senate, 149),
        c(VoteOption::No, Group::House, 23),
        c(VoteOption::No, Group::Senate, 10),
        c(VoteOption::Abstain, Group::House, 121),
        c(VoteOption::Abstain, Group::Senate, 66),
    ]
}

/// Members in office (MPs, senators) at the joint sitting of 10 Sep 2021: 480 MPs
/// and 250 senators, 730 in all, so a quorum of 365 and a third-reading threshold of
/// 366 (Daily News, 10 Sep 2021, dailynews.co.th/news/256036: "สมาชิกรัฐสภาที่สามารถ
/// ปฏิบัติหน้าที่ได้ … 730 คน … ส.ว. 250 คน ส.ส. 480 คน"; iLaw node/5972 also gives 730).
/// 733 (483 + 250) was the figure of 24 Jun 2021.
pub const JOINT_IN_OFFICE_2021_09_10: (u32, u32) = (480, 250);

/// The threshold of an amendment's third reading, s.256 (6) (a permanent rule, not a
/// transitory one): more
/// than half of the members in office of both Houses, among them at least 1/3
/// of the senators in office. (Its third condition, 20% of the MPs of parties
/// with no minister or presiding officer, is left out: no tally of 10 Sep 2021
/// by party bloc was found, so it could not be checked.)
pub fn third_reading_threshold_2021() -> Threshold {
    let (mps, senators) = JOINT_IN_OFFICE_2021_09_10;
    let part = |group, compare, numerator, denominator, members| ThresholdPart {
        group,
        base: Base::MembersInOffice,
        compare: Some(compare),
        numerator: Some(numerator),
        denominator: Some(denominator),
        members_in_office: Some(members),
    };
    Threshold {
        parts: vec![
            part(None, Compare::MoreThan, 1, 2, mps + senators),
            part(Some(Group::Senate), Compare::AtLeast, 1, 3, senators),
        ],
    }
}
