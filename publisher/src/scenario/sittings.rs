//! Hand-built sittings and the bill histories that go with them.
//!
//! Each sitting is built once as a feed (the order a live system would publish:
//! a bill's stage change right after the vote that caused it), and the public
//! builders pick the sitting's or the bill's events out of it.
//!
//! People are named by their role (`p-president-assembly`), never by name: the
//! scenarios must not put words or acts in the mouth of a real person.

use super::BillHistory;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sapha_proto::event::*;
use sapha_proto::examples::{third_reading_threshold_2021, JOINT_IN_OFFICE_2021_09_10};
use sapha_proto::stage::{BillType, Proposer, Stage};
use sapha_proto::vote::{Base, Compare, Threshold, ThresholdPart};

/// The source id of the sitting events.
pub const SITTING_SOURCE: &str = "parliament-sitting-system";

/// The joint sitting of 10 Sep 2021 (the id is the one of docs/EVENTS.md).
pub const JOINT_2021_SITTING_ID: &str = "joint-2564-1-10";
/// The constitutional amendment of sections 83 and 91 (the id of docs/EVENTS.md).
pub const AMENDMENT_2021_BILL_ID: &str = "b-2564-ca-0001";
/// Senate sitting no. 28 of the second ordinary session of 2566.
pub const SENATE_2023_SITTING_ID: &str = "senate-2566-2-28";
/// The illustrative bill whose Senate second and third readings are on 28 Feb 2023.
pub const SENATE_2023_BILL_ID: &str = "b-2565-0087";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid scenario date")
}

/// A wall-clock time in Bangkok (UTC+7), as UTC.
fn bangkok(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, minute, 0)
        .expect("a valid scenario time")
        .and_utc()
        - Duration::hours(7)
}

fn person(id: &str, th: &str, en: &str) -> Person {
    Person {
        person_id: id.into(),
        name: Text::new(th, en),
    }
}

/// Builds a sitting's events (seq 1..n, ids `e-<sitting_id>-<seq>`) and the feed
/// they are part of.
struct Feed {
    sitting: SittingRef,
    day: NaiveDate,
    seq: u64,
    events: Vec<Event>,
    /// The sitting's number and session, given on its `scheduled` event.
    calendar: Option<(Option<u32>, Session)>,
    /// Members in office on the day (s.120 counts the quorum against them).
    in_office: u32,
}

impl Feed {
    fn new(chamber: Chamber, sitting_id: &str, day: NaiveDate) -> Self {
        Feed {
            sitting: SittingRef {
                chamber,
                sitting_id: sitting_id.into(),
            },
            day,
            seq: 0,
            events: Vec::new(),
            calendar: None,
            in_office: 0,
        }
    }

    /// `hh:mm` in Bangkok on the sitting day.
    fn at(&self, hour: u32, minute: u32) -> DateTime<Utc> {
        bangkok(self.day, hour, minute)
    }

    fn s(&self) -> SittingRef {
        self.sitting.clone()
    }

    fn push(&mut self, occurred_at: DateTime<Utc>, body: Body) {
        self.seq += 1;
        self.events.push(Event {
            schema_version: SCHEMA_VERSION,
            event_id: format!("e-{}-{}", self.sitting.sitting_id, self.seq),
            aggregate_id: self.sitting.sitting_id.clone(),
            seq: self.seq,
            occurred_at,
            precision: DatePrecision::Instant,
            recorded_at: None,
            source: SITTING_SOURCE.into(),
            source_ref: None,
            supersedes: None,
            body,
        });
    }

    /// Appends a bill's event to the feed (it keeps its own aggregate and seq).
    fn bill(&mut self, events: &mut std::vec::IntoIter<Event>, n: usize) {
        self.events.extend(events.by_ref().take(n));
    }

    fn lifecycle(
        &mut self,
        at: DateTime<Utc>,
        phase: Phase,
        outcome: Option<Outcome>,
        title: Option<Text>,
    ) {
        let sitting = self.s();
        let (number, session) = match (&self.calendar, phase) {
            (Some((number, session)), Phase::Scheduled) => (*number, Some(session.clone())),
            _ => (None, None),
        };
        self.push(
            at,
            Body::SittingLifecycle(SittingLifecycle {
                sitting,
                phase,
                outcome,
                title,
                number,
                session,
            }),
        );
    }

    /// A quorum check: half of the members in office, rounded up (s.120).
    fn quorum(&mut self, at: DateTime<Utc>, present: u32) {
        let sitting = self.s();
        let required = self.in_office.div_ceil(2);
        self.push(
            at,
            Body::QuorumChecked(QuorumChecked {
                sitting,
                present,
                required,
                met: present >= required,
                in_office: Some(self.in_office),
            }),
        );
    }

    fn chair(&mut self, at: DateTime<Utc>, who: &Person, office: Text) {
        let sitting = self.s();
        self.push(
            at,
            Body::ChairChanged(ChairChanged {
                sitting,
                person: who.clone(),
                office,
            }),
        );
    }

    fn item_started(
        &mut self,
        at: DateTime<Utc>,
        item_id: &str,
        category: AgendaCategory,
        title: Text,
        bill_id: Option<&str>,
    ) {
        let sitting = self.s();
        self.push(
            at,
            Body::AgendaItemStarted(AgendaItemStarted {
                sitting,
                item_id: item_id.into(),
                category,
                title,
                bill_id: bill_id.map(Into::into),
            }),
        );
    }

    fn item_ended(&mut self, at: DateTime<Utc>, item_id: &str, disposition: Disposition) {
        let sitting = self.s();
        self.push(
            at,
            Body::AgendaItemEnded(AgendaItemEnded {
                sitting,
                item_id: item_id.into(),
                disposition,
            }),
        );
    }

    fn section(&mut self, at: DateTime<Utc>, item_id: &str, section_no: &str) {
        let sitting = self.s();
        self.push(
            at,
            Body::SectionConsidered(SectionConsidered {
                sitting,
                item_id: item_id.into(),
                section_no: section_no.into(),
            }),
        );
    }

    /// A speech from `start` to `end` (each `(hour, minute)` in Bangkok).
    fn speech(&mut self, start: (u32, u32), end: (u32, u32), who: &Person, role: Role) {
        let sitting = self.s();
        self.push(
            self.at(start.0, start.1),
            Body::SpeechStarted(SpeechStarted {
                sitting: sitting.clone(),
                person: who.clone(),
                role,
            }),
        );
        self.push(
            self.at(end.0, end.1),
            Body::SpeechEnded(SpeechEnded {
                sitting,
                person: who.clone(),
            }),
        );
    }

    fn motion_moved(&mut self, at: DateTime<Utc>, motion_id: &str, text: Text, mover: &Person) {
        let sitting = self.s();
        self.push(
            at,
            Body::MotionMoved(MotionMoved {
                sitting,
                motion_id: motion_id.into(),
                text,
                mover: mover.clone(),
            }),
        );
    }

    fn motion_withdrawn(&mut self, at: DateTime<Utc>, motion_id: &str) {
        let sitting = self.s();
        self.push(
            at,
            Body::MotionWithdrawn(MotionWithdrawn {
                sitting,
                motion_id: motion_id.into(),
            }),
        );
    }

    fn motion_decided(&mut self, at: DateTime<Utc>, motion_id: &str, decision: Decision) {
        let sitting = self.s();
        self.push(
            at,
            Body::MotionDecided(MotionDecided {
                sitting,
                motion_id: motion_id.into(),
                decision,
            }),
        );
    }

    fn vote_opened(
        &mut self,
        at: DateTime<Utc>,
        vote_id: &str,
        method: VoteMethod,
        requirement: (Text, Threshold),
        question: Text,
        bill_id: Option<&str>,
    ) {
        let sitting = self.s();
        let (requirement, threshold) = requirement;
        self.push(
            at,
            Body::VoteOpened(VoteOpened {
                sitting,
                vote_id: vote_id.into(),
                method,
                requirement,
                question,
                bill_id: bill_id.map(Into::into),
                threshold: Some(threshold),
            }),
        );
    }

    /// Closes a vote and announces its result a minute later.
    fn vote_closed(
        &mut self,
        at: DateTime<Utc>,
        vote_id: &str,
        counts: Vec<VoteCount>,
        result: VoteOutcome,
        bill_id: Option<&str>,
    ) {
        let sitting = self.s();
        self.push(
            at,
            Body::VoteClosed(VoteClosed {
                sitting: sitting.clone(),
                vote_id: vote_id.into(),
                counts,
                bill_id: bill_id.map(Into::into),
                casting_vote: None,
            }),
        );
        self.push(
            at + Duration::minutes(1),
            Body::VoteResult(VoteResult {
                sitting,
                vote_id: vote_id.into(),
                result,
                bill_id: bill_id.map(Into::into),
            }),
        );
    }
}

/// A simple majority (s.120): more ayes than noes, the chair deciding a tie.
fn majority() -> (Text, Threshold) {
    (
        Text::new(
            "เสียงข้างมากของสมาชิกที่ลงคะแนน",
            "a majority of the members voting",
        ),
        Threshold {
            parts: vec![ThresholdPart {
                group: None,
                base: Base::Majority,
                compare: None,
                numerator: None,
                denominator: None,
                members_in_office: None,
            }],
        },
    )
}

/// Counts of a single chamber (no group).
fn chamber_counts(aye: u32, no: u32, abstain: u32, not_voting: u32) -> Vec<VoteCount> {
    [
        (VoteOption::Aye, aye),
        (VoteOption::No, no),
        (VoteOption::Abstain, abstain),
        (VoteOption::NotVoting, not_voting),
    ]
    .into_iter()
    .map(|(option, value)| VoteCount {
        option,
        group: None,
        value,
    })
    .collect()
}

// ---------------------------------------------------------------------------
// Joint sitting, 10 Sep 2021
// ---------------------------------------------------------------------------

/// The real third-reading tally of 10 Sep 2021: aye 472 (MPs 323, senators 149);
/// no 33 (23, 10); abstain 187 (121, 66). One copy of the facts, in the contract.
pub fn joint_2021_tally() -> Vec<VoteCount> {
    sapha_proto::examples::real_tally_10_sep_2021()
}

fn amendment_2021_title() -> Text {
    // The title of docs/EVENTS.md: a draft's number and year are dots until enacted.
    Text::new(
        "ร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (ฉบับที่ ..) พ.ศ. .... (มาตรา 83 และมาตรา 91)",
        "Draft Constitutional Amendment (No. ..) B.E. .... (sections 83 and 91)",
    )
}

/// The bill history of the amendment of sections 83 and 91 (the electoral system:
/// two ballots, 400 constituency and 100 party-list MPs).
///
/// Real: the first reading of 24 Jun 2021 and its tally, the two-day second reading
/// (24-25 Aug 2021), the third reading of 10 Sep 2021, royal assent on 7 Nov 2021,
/// publication on 21 Nov and force on 22 Nov (see scenarios/README.md for the
/// sources). Estimated: the introduction, the committee stage and the presentation
/// (after the 15-day wait of s.256 (7)); they are not a source to cite.
pub fn amendment_2021_history() -> Vec<Event> {
    let mut bill = BillHistory::new(
        AMENDMENT_2021_BILL_ID,
        BillType::ConstitutionalAmendment,
        amendment_2021_title(),
    );
    let steps: [(NaiveDate, Stage, Option<Text>); 10] = [
        (
            date(2021, 6, 1),
            Stage::Proposed,
            Some(Text::new(
                "สมาชิกทั้งสองสภาเข้าชื่อเสนอ (ไม่น้อยกว่าหนึ่งในห้า)",
                "introduced by at least one fifth of the members of both Houses",
            )),
        ),
        (
            date(2021, 6, 24),
            Stage::JointR1,
            // The tally: BBC Thai (552, 24, 130, 27); the aye split: dramathailand.com 3050.
            Some(Text::new(
                "ที่ประชุมร่วมกันของรัฐสภารับหลักการ: เห็นด้วย 552 (ส.ส. 342 ส.ว. 210) ไม่เห็นด้วย 24 งดออกเสียง 130 ไม่ลงคะแนนเสียง 27",
                "accepted in principle by the joint sitting: aye 552 (MPs 342, senators 210), no 24, abstain 130, not voting 27",
            )),
        ),
        (date(2021, 6, 24), Stage::ParliamentCommittee, None),
        // The second reading took two days, 24-25 Aug 2021 (Thansettakij, 4 Sep 2021).
        (
            date(2021, 8, 24),
            Stage::JointR2,
            Some(Text::new(
                "พิจารณาวาระที่ 2 วันที่ 24-25 สิงหาคม 2564",
                "second reading, 24-25 Aug 2021",
            )),
        ),
        // The stage convention: the second reading ended on 25 Aug, the bill waits for
        // its third reading (s.256 (5): 15 days from here).
        (date(2021, 8, 25), Stage::JointR3, None),
        (
            date(2021, 9, 10),
            Stage::Approved,
            Some(Text::new(
                "ผ่านวาระที่ 3: เห็นด้วย 472 ไม่เห็นด้วย 33 งดออกเสียง 187",
                "passed its third reading: aye 472, no 33, abstain 187",
            )),
        ),
        (date(2021, 9, 30), Stage::PresentedForAssent, None),
        // "ให้ไว้ ณ วันที่ ๗ พฤศจิกายน พ.ศ. ๒๕๖๔" (the act as given, OCS).
        (date(2021, 11, 7), Stage::RoyalAssent, None),
        (date(2021, 11, 21), Stage::Published, None),
        (date(2021, 11, 22), Stage::Enacted, None),
    ];
    for (day, stage, note) in steps {
        let step = bill.step(day, stage, note, None);
        match stage {
            Stage::Proposed => step.proposer = Some(Proposer::MpsAndSenators),
            // The King's 90 days (s.146).
            Stage::PresentedForAssent => step.deadline = Some(day + Duration::days(90)),
            _ => {}
        }
    }
    bill.into_events()
}

/// The joint sitting of 10 Sep 2021 alone: the third reading of the amendment of
/// sections 83 and 91, passed by roll call with the real tallies.
pub fn joint_2021_09_10() -> Vec<Event> {
    only(joint_2021_09_10_feed(), JOINT_2021_SITTING_ID)
}

/// The sitting of 10 Sep 2021 with the amendment's history, in feed order: the
/// history up to the second reading, the sitting, `APPROVED` right after the vote
/// result, then royal assent, publication and entry into force.
///
/// Real: the date, the third reading by roll call, the requirement and the tally.
/// Illustrative: the times, who spoke (by role), the motions and the quorum count.
/// The quorum required is half of the members in office (s.120, "เท่าที่มีอยู่"),
/// not of the 750 seats: see `JOINT_IN_OFFICE_2021_09_10`.
pub fn joint_2021_09_10_feed() -> Vec<Event> {
    let day = date(2021, 9, 10);
    let bill_id = Some(AMENDMENT_2021_BILL_ID);
    let mut history = amendment_2021_history().into_iter();
    let mut f = Feed::new(Chamber::Joint, JOINT_2021_SITTING_ID, day);
    // The first ordinary session of the third year of the 25th House (elected in
    // March 2019): the title's session is real, the year follows from the term.
    f.calendar = Some((
        None,
        Session {
            kind: SessionKind::Ordinary,
            number: 1,
            year: 3,
        },
    ));
    // An estimate, with its source: see `JOINT_IN_OFFICE_2021_09_10`.
    f.in_office = JOINT_IN_OFFICE_2021_09_10.0 + JOINT_IN_OFFICE_2021_09_10.1;

    let president = person(
        "p-president-assembly",
        "ประธานรัฐสภา",
        "President of the National Assembly",
    );
    let vice = person(
        "p-vice-president-assembly",
        "รองประธานรัฐสภา",
        "Vice-President of the National Assembly",
    );
    let mp = |n: u32| {
        person(
            &format!("p-mp-{n:03}"),
            &format!("สมาชิกสภาผู้แทนราษฎร (ผู้อภิปรายคนที่ {n})"),
            &format!("Member of the House (speaker {n})"),
        )
    };
    let senator = |n: u32| {
        person(
            &format!("p-senator-{n:03}"),
            &format!("สมาชิกวุฒิสภา (ผู้อภิปรายคนที่ {n})"),
            &format!("Senator (speaker {n})"),
        )
    };

    // The history before the sitting: introduced, first reading, committee, second
    // and third readings entered.
    f.bill(&mut history, 5);

    f.lifecycle(
        bangkok(date(2021, 9, 7), 15, 0),
        Phase::Scheduled,
        None,
        Some(Text::new(
            "การประชุมร่วมกันของรัฐสภา สมัยประชุมสามัญประจำปีครั้งที่หนึ่ง วันศุกร์ที่ 10 กันยายน 2564",
            "Joint sitting of the National Assembly, first ordinary session, Friday 10 September 2021",
        )),
    );
    f.lifecycle(
        bangkok(date(2021, 9, 8), 16, 30),
        Phase::AgendaPublished,
        None,
        None,
    );
    f.lifecycle(f.at(9, 30), Phase::Opened, None, None);
    f.chair(
        f.at(9, 30),
        &president,
        Text::new("ประธานรัฐสภา", "President of the National Assembly"),
    );
    // s.120: half of the members in office (730: 480 MPs, 250 senators), not of the 750 seats.
    f.quorum(f.at(9, 41), 692);

    f.item_started(
        f.at(9, 43),
        "item-1",
        AgendaCategory::ChairAnnouncement,
        Text::new("เรื่องที่ประธานแจ้งต่อที่ประชุม", "Announcements by the President"),
        None,
    );
    f.speech((9, 43), (9, 45), &president, Role::Chair);
    f.item_ended(f.at(9, 45), "item-1", Disposition::Completed);

    f.item_started(
        f.at(9, 45),
        "item-2",
        AgendaCategory::Urgent,
        Text::new(
            "ร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (มาตรา 83 และมาตรา 91) วาระที่ 3",
            "Constitutional amendment (sections 83 and 91), third reading",
        ),
        bill_id,
    );
    // The chair explains the procedure: the 15 days after the second reading have
    // passed, the third reading is a vote on the whole draft, by roll call.
    f.speech((9, 45), (9, 52), &president, Role::Chair);
    // Points raised from the floor before the vote.
    f.speech((9, 52), (9, 57), &mp(1), Role::Member);
    f.speech((9, 57), (10, 1), &senator(1), Role::Member);
    f.speech((10, 1), (10, 5), &mp(2), Role::Member);
    f.speech((10, 5), (10, 8), &president, Role::Chair);
    f.speech((10, 8), (10, 12), &senator(2), Role::Member);
    f.speech((10, 12), (10, 15), &mp(3), Role::Member);
    f.motion_moved(
        f.at(10, 15),
        "motion-1",
        Text::new(
            "ขอให้พักการประชุม 10 นาทีก่อนลงมติ",
            "that the sitting be suspended for ten minutes before the vote",
        ),
        &mp(3),
    );
    f.motion_withdrawn(f.at(10, 16), "motion-1");
    f.motion_moved(
        f.at(10, 16),
        "motion-2",
        Text::new(
            "ขอให้ปิดการหารือและลงมติในวาระที่ 3",
            "that the discussion be closed and the third-reading vote be taken",
        ),
        &senator(2),
    );
    f.motion_decided(f.at(10, 17), "motion-2", Decision::Adopted);
    f.speech((10, 17), (10, 20), &president, Role::Chair);

    f.vote_opened(
        f.at(10, 20),
        "vote-1",
        VoteMethod::RollCall,
        (
            Text::new(
                "คะแนนเสียงเห็นชอบเกินกึ่งหนึ่งของจำนวนสมาชิกทั้งหมดเท่าที่มีอยู่ของทั้งสองสภา โดยต้องมีสมาชิกวุฒิสภาเห็นชอบไม่น้อยกว่าหนึ่งในสามของจำนวนสมาชิกวุฒิสภาทั้งหมดเท่าที่มีอยู่ และสมาชิกสภาผู้แทนราษฎรจากพรรคการเมืองที่ไม่มีสมาชิกเป็นรัฐมนตรี ประธานสภา หรือรองประธานสภา เห็นชอบไม่น้อยกว่าร้อยละยี่สิบของทุกพรรคดังกล่าวรวมกัน (มาตรา 256 (6))",
                "more than half of the members in office of both Houses, including at least one third of the senators in office and at least 20 per cent of the MPs of the parties that hold no ministerial, Speaker or Deputy Speaker post (section 256 (6))",
            ),
            third_reading_threshold_2021(),
        ),
        Text::new(
            "ที่ประชุมรัฐสภาจะให้ความเห็นชอบร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (มาตรา 83 และมาตรา 91) ในวาระที่ 3 หรือไม่",
            "Does the joint sitting approve the constitutional amendment (sections 83 and 91) at its third reading?",
        ),
        bill_id,
    );
    // The roll call takes more than two hours; the chair changes hands meanwhile.
    f.chair(
        f.at(11, 5),
        &vice,
        Text::new("รองประธานรัฐสภา", "Vice-President of the National Assembly"),
    );
    f.chair(
        f.at(12, 0),
        &president,
        Text::new("ประธานรัฐสภา", "President of the National Assembly"),
    );
    f.vote_closed(
        f.at(12, 40),
        "vote-1",
        joint_2021_tally(),
        VoteOutcome::Passed,
        bill_id,
    );
    // The stage change is published as soon as the result is announced.
    f.bill(&mut history, 1);
    f.speech((12, 41), (12, 45), &president, Role::Chair);
    f.item_ended(f.at(12, 45), "item-2", Disposition::Completed);
    f.lifecycle(f.at(12, 48), Phase::Closed, Some(Outcome::Completed), None);

    // Royal assent, publication, entry into force.
    f.bill(&mut history, usize::MAX);
    f.events
}

// ---------------------------------------------------------------------------
// Senate sitting no. 28, 28 Feb 2023
// ---------------------------------------------------------------------------

fn senate_2023_bill_title() -> Text {
    Text::new(
        "ร่างพระราชบัญญัติการสาธารณสุข (ฉบับที่ ..) พ.ศ. ....",
        "Draft Public Health Act (No. ..) B.E. ....",
    )
}

/// The history of the illustrative bill of the Senate sitting of 28 Feb 2023, up to
/// its Senate third reading that day. Entirely illustrative.
pub fn senate_2023_bill_history() -> Vec<Event> {
    let mut bill = BillHistory::new(SENATE_2023_BILL_ID, BillType::Act, senate_2023_bill_title());
    let steps: [(NaiveDate, Stage, Option<Text>); 11] = [
        (
            date(2022, 3, 15),
            Stage::Proposed,
            Some(Text::new("คณะรัฐมนตรีเป็นผู้เสนอ", "introduced by the Cabinet")),
        ),
        (date(2022, 4, 5), Stage::Hearing, None),
        (date(2022, 6, 15), Stage::HouseR1, None),
        (date(2022, 6, 15), Stage::HouseCommittee, None),
        (date(2022, 12, 14), Stage::HouseR2, None),
        (date(2022, 12, 14), Stage::HouseR3, None),
        // The Senate has 60 days from here: until 11 Mar 2023.
        (date(2023, 1, 10), Stage::SenateR1, None),
        (date(2023, 1, 10), Stage::SenateCommittee, None),
        (date(2023, 2, 28), Stage::SenateR2, None),
        // The stage convention: the second reading ends, the third is under way.
        (date(2023, 2, 28), Stage::SenateR3, None),
        // The third reading's vote moves the bill on (s.137 (3)).
        (
            date(2023, 2, 28),
            Stage::HouseSenateAmendments,
            Some(Text::new(
                "วุฒิสภาเห็นชอบโดยมีการแก้ไขมาตรา 4 ส่งคืนสภาผู้แทนราษฎร",
                "approved by the Senate with an amendment to section 4; returned to the House",
            )),
        ),
    ];
    for (day, stage, note) in steps {
        let step = bill.step(day, stage, note, None);
        match stage {
            Stage::Proposed => step.proposer = Some(Proposer::Cabinet),
            // The Senate's 60 days (s.136).
            Stage::SenateR1 => step.deadline = Some(day + Duration::days(60)),
            _ => {}
        }
    }
    bill.into_events()
}

/// Senate sitting no. 28 of 28 Feb 2023 alone.
pub fn senate_2023_02_28() -> Vec<Event> {
    only(senate_2023_02_28_feed(), SENATE_2023_SITTING_ID)
}

/// Senate sitting no. 28 (สมัยสามัญประจำปีครั้งที่สอง), Tuesday 28 Feb 2023, opened at
/// 09:30 Bangkok time, with its illustrative bill's history, in feed order.
///
/// ONLY THE SITTING'S DATE, NUMBER, SESSION AND OPENING TIME ARE REAL. The agenda, the
/// bill, the speakers, the quorum count, the tallies and every other time are
/// illustrative (a plausible Senate day, at most 250 senators in office), not a record
/// of that day.
pub fn senate_2023_02_28_feed() -> Vec<Event> {
    let day = date(2023, 2, 28);
    let bill_id = Some(SENATE_2023_BILL_ID);
    let mut history = senate_2023_bill_history().into_iter();
    let mut f = Feed::new(Chamber::Senate, SENATE_2023_SITTING_ID, day);
    // Sitting no. 28 of the second ordinary session (real); year 4 of the Senate
    // chosen in May 2019 (derived from the term).
    f.calendar = Some((
        Some(28),
        Session {
            kind: SessionKind::Ordinary,
            number: 2,
            year: 4,
        },
    ));
    // Estimated, an upper bound: 250 seats; 249 were in office in Aug 2022 (Bangkok
    // Biz News politics/1020094); the figure of 28 Feb 2023 was not found.
    f.in_office = 250;

    let president = person(
        "p-president-senate",
        "ประธานวุฒิสภา",
        "President of the Senate",
    );
    let first_vice = person(
        "p-vice-president-senate-1",
        "รองประธานวุฒิสภา คนที่หนึ่ง",
        "First Vice-President of the Senate",
    );
    let minister = person(
        "p-minister-assigned",
        "รัฐมนตรีผู้ได้รับมอบหมาย",
        "Minister assigned to answer",
    );
    let committee_chair = person(
        "p-senate-committee-chair",
        "ประธานคณะกรรมาธิการวิสามัญ",
        "Chair of the ad hoc committee",
    );
    let senator = |n: u32| {
        person(
            &format!("p-senator-{n:03}"),
            &format!("สมาชิกวุฒิสภา (ผู้อภิปรายคนที่ {n})"),
            &format!("Senator (speaker {n})"),
        )
    };

    // The bill's history up to its Senate committee stage.
    f.bill(&mut history, 8);

    f.lifecycle(
        bangkok(date(2023, 2, 24), 14, 0),
        Phase::Scheduled,
        None,
        Some(Text::new(
            "การประชุมวุฒิสภา ครั้งที่ 28 (สมัยสามัญประจำปีครั้งที่สอง) วันอังคารที่ 28 กุมภาพันธ์ 2566 เวลา 09.30 นาฬิกา",
            "Senate sitting no. 28 (second ordinary session), Tuesday 28 February 2023, 09:30",
        )),
    );
    f.lifecycle(
        bangkok(date(2023, 2, 27), 10, 0),
        Phase::AgendaPublished,
        None,
        None,
    );
    f.lifecycle(f.at(9, 30), Phase::Opened, None, None);
    f.chair(
        f.at(9, 30),
        &president,
        Text::new("ประธานวุฒิสภา", "President of the Senate"),
    );
    // s.120: at least half of the senators in office.
    f.quorum(f.at(9, 33), 203);

    f.item_started(
        f.at(9, 35),
        "item-1",
        AgendaCategory::ChairAnnouncement,
        Text::new("เรื่องที่ประธานแจ้งต่อที่ประชุม", "Announcements by the President"),
        None,
    );
    f.speech((9, 35), (9, 40), &president, Role::Chair);
    f.item_ended(f.at(9, 40), "item-1", Disposition::Completed);

    f.item_started(
        f.at(9, 40),
        "item-2",
        AgendaCategory::Minutes,
        Text::new(
            "รับรองรายงานการประชุมวุฒิสภา",
            "Adoption of the minutes of earlier sittings",
        ),
        None,
    );
    f.item_ended(f.at(9, 42), "item-2", Disposition::Completed);

    f.item_started(
        f.at(9, 42),
        "item-3",
        AgendaCategory::Consultation,
        Text::new(
            "สมาชิกปรึกษาหารือปัญหาความเดือดร้อนของประชาชน",
            "Members raise matters of public concern (consultation)",
        ),
        None,
    );
    let slots = [
        ((9, 42), (9, 45)),
        ((9, 45), (9, 48)),
        ((9, 48), (9, 51)),
        ((9, 51), (9, 54)),
        ((9, 54), (9, 57)),
        ((9, 57), (10, 0)),
    ];
    for (n, (start, end)) in (1..).zip(slots) {
        f.speech(start, end, &senator(n), Role::Member);
    }
    f.item_ended(f.at(10, 0), "item-3", Disposition::Completed);

    f.item_started(
        f.at(10, 0),
        "item-4",
        AgendaCategory::Question,
        Text::new(
            "กระทู้ถามเรื่อง การบริหารจัดการน้ำในฤดูแล้ง",
            "Question on water management in the dry season",
        ),
        None,
    );
    f.speech((10, 0), (10, 10), &senator(7), Role::Member);
    f.speech((10, 10), (10, 25), &minister, Role::Minister);
    f.speech((10, 25), (10, 30), &senator(7), Role::Member);
    f.speech((10, 30), (10, 40), &minister, Role::Minister);
    f.item_ended(f.at(10, 40), "item-4", Disposition::Completed);

    f.chair(
        f.at(10, 40),
        &first_vice,
        Text::new(
            "รองประธานวุฒิสภา คนที่หนึ่ง",
            "First Vice-President of the Senate",
        ),
    );
    f.item_started(
        f.at(10, 41),
        "item-5",
        AgendaCategory::CommitteeReport,
        Text::new(
            "รายงานของคณะกรรมาธิการวิสามัญพิจารณาร่างพระราชบัญญัติการสาธารณสุข (ฉบับที่ ..) พ.ศ. ....",
            "Report of the ad hoc committee on the Draft Public Health Act (No. ..) B.E. ....",
        ),
        bill_id,
    );
    // SENATE_COMMITTEE -> SENATE_R2: the second reading begins.
    f.bill(&mut history, 1);
    f.speech((10, 41), (11, 0), &committee_chair, Role::Committee);
    f.speech((11, 0), (11, 8), &senator(8), Role::Member);
    f.speech((11, 8), (11, 15), &senator(9), Role::Member);
    f.speech((11, 15), (11, 20), &committee_chair, Role::Committee);
    for (minute, section) in [(20, "1"), (22, "2"), (24, "3"), (26, "4")] {
        f.section(f.at(11, minute), "item-5", section);
    }
    // Section 4, as amended by the committee, is debated and voted on.
    f.speech((11, 27), (11, 35), &senator(10), Role::Member);
    f.speech((11, 35), (11, 42), &committee_chair, Role::Committee);
    f.vote_opened(
        f.at(11, 42),
        "vote-1",
        VoteMethod::Electronic,
        majority(),
        Text::new(
            "ที่ประชุมเห็นด้วยกับการแก้ไขของคณะกรรมาธิการในมาตรา 4 หรือไม่",
            "Does the Senate agree with the committee's amendment to section 4?",
        ),
        bill_id,
    );
    f.vote_closed(
        f.at(11, 45),
        "vote-1",
        chamber_counts(172, 9, 11, 2),
        VoteOutcome::Passed,
        bill_id,
    );
    f.lifecycle(f.at(12, 0), Phase::Suspended, None, None);
    f.lifecycle(f.at(13, 0), Phase::Resumed, None, None);
    f.quorum(f.at(13, 2), 189);
    for (minute, section) in [(5, "5"), (8, "6"), (10, "7")] {
        f.section(f.at(13, minute), "item-5", section);
    }
    // SENATE_R2 -> SENATE_R3: the second reading is over, the third begins.
    f.bill(&mut history, 1);
    f.vote_opened(
        f.at(13, 15),
        "vote-2",
        VoteMethod::Electronic,
        majority(),
        Text::new(
            "วุฒิสภาจะให้ความเห็นชอบร่างพระราชบัญญัตินี้ในวาระที่ 3 หรือไม่",
            "Does the Senate approve the bill at its third reading?",
        ),
        bill_id,
    );
    f.vote_closed(
        f.at(13, 18),
        "vote-2",
        chamber_counts(186, 1, 6, 2),
        VoteOutcome::Passed,
        bill_id,
    );
    // SENATE_R3 -> HOUSE_SENATE_AMENDMENTS, published as soon as the result is announced.
    f.bill(&mut history, 1);
    f.item_ended(f.at(13, 20), "item-5", Disposition::Completed);

    f.chair(
        f.at(13, 20),
        &president,
        Text::new("ประธานวุฒิสภา", "President of the Senate"),
    );
    f.item_started(
        f.at(13, 21),
        "item-6",
        AgendaCategory::CommitteeReport,
        Text::new(
            "รายงานของคณะกรรมาธิการตรวจสอบประวัติ ความประพฤติ และพฤติกรรมทางจริยธรรมของผู้ได้รับการเสนอชื่อให้ดำรงตำแหน่ง (ประชุมลับ)",
            "Report of the committee vetting a nominee for a public office (in camera)",
        ),
        None,
    );
    f.motion_moved(
        f.at(13, 21),
        "motion-1",
        Text::new(
            "ขอให้พิจารณาเป็นการประชุมลับ",
            "that the item be considered in camera",
        ),
        &president,
    );
    f.motion_decided(f.at(13, 22), "motion-1", Decision::Adopted);
    // Nothing of an in-camera session's content is streamed: only that it began and ended.
    f.lifecycle(f.at(13, 25), Phase::InCameraStarted, None, None);
    f.lifecycle(f.at(14, 40), Phase::InCameraEnded, None, None);
    f.vote_opened(
        f.at(14, 42),
        "vote-3",
        VoteMethod::SecretBallot,
        (
            Text::new(
                "ไม่น้อยกว่ากึ่งหนึ่งของจำนวนสมาชิกวุฒิสภาทั้งหมดที่มีอยู่",
                "at least half of all the senators in office",
            ),
            Threshold {
                parts: vec![ThresholdPart {
                    group: None,
                    base: Base::MembersInOffice,
                    compare: Some(Compare::AtLeast),
                    numerator: Some(1),
                    denominator: Some(2),
                    members_in_office: Some(f.in_office),
                }],
            },
        ),
        Text::new(
            "วุฒิสภาจะให้ความเห็นชอบผู้ได้รับการเสนอชื่อหรือไม่",
            "Does the Senate approve the nominee?",
        ),
        None,
    );
    f.vote_closed(
        f.at(15, 10),
        "vote-3",
        chamber_counts(168, 14, 9, 0),
        VoteOutcome::Passed,
        None,
    );
    f.item_ended(f.at(15, 12), "item-6", Disposition::Completed);
    f.lifecycle(f.at(15, 15), Phase::Closed, Some(Outcome::Completed), None);
    f.events
}

/// The events of one aggregate, in order.
fn only(events: Vec<Event>, aggregate_id: &str) -> Vec<Event> {
    events
        .into_iter()
        .filter(|e| e.aggregate_id == aggregate_id)
        .collect()
}
