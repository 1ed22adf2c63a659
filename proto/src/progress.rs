//! A bill's progress: the fold of its stage events, and the stage rules that
//! need its history (the waits of ss.138 and 256, the return after a revival or
//! a s.173 ruling, and a deemed approval only once its deadline has passed).
//! The rules that need only the event itself are [`crate::stage::check_transition`].

use crate::event::BillStageChanged;
use crate::stage::{resume_stage, rules_for, BillType, Stage, TransitionError, Wait};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// The calendar day of `at` in Bangkok (UTC+7, no daylight saving), the day the
/// Constitution's periods are counted in.
pub fn bangkok_day(at: DateTime<Utc>) -> NaiveDate {
    let bangkok = FixedOffset::east_opt(7 * 3600).expect("a valid offset");
    at.with_timezone(&bangkok).date_naive()
}

/// What the rules need to know of a bill's past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillProgress {
    pub bill_type: BillType,
    pub stage: Stage,
    /// The stage before the current one.
    pub previous: Option<Stage>,
    /// Certified a money bill (s.134); a budget bill always is.
    pub money_bill: bool,
    /// The open deadline (a Bangkok day), from the last move that set one.
    pub deadline: Option<NaiveDate>,
    /// The Bangkok day the bill last entered each stage it has been at.
    entered: Vec<(Stage, NaiveDate)>,
}

impl BillProgress {
    /// The progress of a bill whose first event is `first`, at `at`.
    pub fn start(first: &BillStageChanged, at: DateTime<Utc>) -> BillProgress {
        let mut progress = BillProgress {
            bill_type: first.bill_type,
            stage: first.to_stage,
            previous: None,
            money_bill: false,
            deadline: None,
            entered: Vec::new(),
        };
        progress.apply(first, at);
        progress
    }

    /// The day the bill last entered `stage`, if it has been there.
    pub fn entered(&self, stage: Stage) -> Option<NaiveDate> {
        self.entered
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, day)| *day)
    }

    /// Checks the next move `b`, at `at`, against the bill's history. The
    /// caller has already checked `b` on its own (`validate`) and that its
    /// `from_stage` is the bill's stage.
    pub fn check(&self, b: &BillStageChanged, at: DateTime<Utc>) -> Result<(), TransitionError> {
        let rules = rules_for(self.bill_type);
        let day = bangkok_day(at);
        let to = b.to_stage;
        if self.stage == Stage::Lapsed && !rules.is_terminal(to) {
            if let Some(at) = self.previous.filter(|p| !rules.revivable.contains(p)) {
                return Err(TransitionError::NotRevivable { at });
            }
        }
        if rules.resumes.contains(&self.stage) && !rules.is_terminal(to) {
            if let Some(previous) = self.previous {
                let expected = resume_stage(self.bill_type, previous);
                if to != expected {
                    return Err(TransitionError::WrongReturn {
                        from: self.stage,
                        expected,
                        got: to,
                    });
                }
            }
        }
        // s.136 ¶4: the Speaker's notice to the Senate is final ("ให้ถือเป็นเด็ดขาด หากมิได้
        // แจ้ง ให้ถือว่า…ไม่เป็นร่าง…เกี่ยวด้วยการเงิน"): a bill that entered the Senate as a
        // non-money bill never becomes one (which would shorten its s.138 wait to 10 days).
        if b.money_bill && !self.money_bill {
            if let Some(senate) = self.entered(Stage::SenateR1) {
                return Err(TransitionError::MoneyBillTooLate { senate });
            }
        }
        let money_bill = self.money_bill || b.money_bill;
        for wait in rules.waits.iter().filter(|w| w.before == to) {
            let days = match wait.money_bill_days {
                Some(days) if money_bill => days,
                _ => wait.days,
            };
            let Some(entered) = self.entered(wait.after) else {
                continue;
            };
            // s.138 (1) counts from the day the Senate sent the bill back, when the
            // feed says it; it cannot be before the bill was withheld.
            let after = match b.returned_on {
                Some(returned) if wait.after == Stage::Withheld && returned >= entered => returned,
                Some(_) if wait.after == Stage::Withheld => {
                    return Err(TransitionError::ReturnedBeforeWithheld { withheld: entered })
                }
                _ => entered,
            };
            // CCC s.193/3: the day of `after` is not counted.
            let earliest = Wait::earliest(after, days);
            if day < earliest {
                return Err(TransitionError::TooEarly {
                    after: wait.after,
                    to,
                    days,
                    section: wait.section,
                    earliest,
                });
            }
        }
        // s.146 ¶2: "as if signed" only after the 2/3 reaffirmation and a second
        // presentation ("มิได้ทรงลงพระปรมาภิไธยพระราชทานคืนมาภายในสามสิบวัน"); a first
        // presentation not returned in 90 days goes back to Parliament (¶1).
        if b.deemed
            && self.stage == Stage::PresentedForAssent
            && to == Stage::Published
            && self.previous != Some(Stage::VetoReconsider)
        {
            return Err(TransitionError::DeemedWithoutReaffirmation);
        }
        if b.deemed {
            if let Some(deadline) = self.deadline {
                if day <= deadline {
                    return Err(TransitionError::DeemedBeforeDeadline { on: day, deadline });
                }
            }
        }
        Ok(())
    }

    /// Records the move `b`, at `at`.
    pub fn apply(&mut self, b: &BillStageChanged, at: DateTime<Utc>) {
        let day = bangkok_day(at);
        if b.from_stage.is_some() {
            self.previous = Some(self.stage);
        }
        self.stage = b.to_stage;
        self.money_bill = self.money_bill || b.money_bill || self.bill_type == BillType::Budget;
        if b.deadline.is_some() || rules_for(self.bill_type).clock(b.to_stage).is_some() {
            self.deadline = b.deadline;
        }
        self.entered.retain(|(s, _)| *s != b.to_stage);
        self.entered.push((b.to_stage, day));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Text;
    use Stage::*;

    fn at(day: &str) -> DateTime<Utc> {
        format!("{day}T03:00:00Z").parse().unwrap()
    }

    fn event(bill_type: BillType, from: Option<Stage>, to: Stage) -> BillStageChanged {
        BillStageChanged {
            bill_id: "b-1".into(),
            bill_type,
            title: Text::new("ร่าง", "draft"),
            from_stage: from,
            to_stage: to,
            note: None,
            merged_into: None,
            deemed: false,
            deadline: None,
            money_bill: false,
            proposer: None,
            recommended_by: None,
            returned_on: None,
        }
    }

    /// Walks `path` of (day, stage), checking and applying each move; returns
    /// the progress, or the first error with the stage it happened at.
    fn walk(
        bill_type: BillType,
        path: &[(&str, Stage)],
    ) -> Result<BillProgress, (Stage, TransitionError)> {
        let (day, first) = path[0];
        let mut p = BillProgress::start(&event(bill_type, None, first), at(day));
        for &(day, to) in &path[1..] {
            let e = event(bill_type, Some(p.stage), to);
            p.check(&e, at(day)).map_err(|err| (to, err))?;
            p.apply(&e, at(day));
        }
        Ok(p)
    }

    #[test]
    fn an_amendment_waits_15_days_before_its_third_reading_and_before_presentation() {
        // s.256 (5) and (7), on the dates of 2021. The stage convention: the second
        // reading (JOINT_R2) began on 24 Aug and ended on 25 Aug, when the bill entered
        // JOINT_R3; the third reading's vote (into APPROVED) was on 10 Sep, D+16 after
        // the end of the second reading (CCC s.193/3), not after its start.
        let ok = [
            ("2021-06-24", Proposed),
            ("2021-06-24", JointR1),
            ("2021-06-25", ParliamentCommittee),
            ("2021-08-24", JointR2),
            ("2021-08-25", JointR3),
            ("2021-09-10", Approved),
            ("2021-09-26", PresentedForAssent),
        ];
        assert!(walk(BillType::ConstitutionalAmendment, &ok).is_ok());
        let mut early = ok;
        early[5].0 = "2021-09-09"; // D+15 after the end of the second reading
        let (stage, err) = walk(BillType::ConstitutionalAmendment, &early).unwrap_err();
        assert_eq!((stage, err.code()), (Approved, "wait_not_over"));
        let mut rejected = early;
        rejected[5].1 = Rejected; // the vote itself waits, whatever its result
        let (stage, err) = walk(BillType::ConstitutionalAmendment, &rejected).unwrap_err();
        assert_eq!((stage, err.code()), (Rejected, "wait_not_over"));
        let mut early = ok;
        early[6].0 = "2021-09-25"; // D+15 after the third reading
        let (stage, err) = walk(BillType::ConstitutionalAmendment, &early).unwrap_err();
        assert_eq!((stage, err.code()), (PresentedForAssent, "wait_not_over"));
        assert_eq!(
            err.to_string(),
            "PRESENTED_FOR_ASSENT may come only once 15 days have passed after APPROVED (s.256 (7); the first day is not counted, CCC s.193/3); the earliest day is 2021-09-26"
        );
    }

    #[test]
    fn a_withheld_bill_waits_180_days_a_money_bill_10_and_a_budget_none() {
        // s.138, s.143.
        let path = [
            ("2023-01-10", Proposed),
            ("2023-02-01", HouseR1),
            ("2023-03-01", HouseCommittee),
            ("2023-05-01", HouseR2),
            ("2023-05-01", HouseR3),
            ("2023-05-20", SenateR1),
            ("2023-06-01", Withheld),
            ("2023-10-01", HouseReaffirm),
        ];
        let (stage, err) = walk(BillType::Act, &path).unwrap_err();
        assert_eq!((stage, err.code()), (HouseReaffirm, "wait_not_over"));
        let mut later = path;
        later[7].0 = "2023-11-28"; // D+180: the wait's last day (CCC s.193/3)
        assert_eq!(
            walk(BillType::Act, &later).unwrap_err().1.code(),
            "wait_not_over"
        );
        later[7].0 = "2023-11-29"; // D+181
        assert!(walk(BillType::Act, &later).is_ok());
        // A money bill: 10 days.
        let money = |day: &str| {
            let (first, rest) = path.split_first().unwrap();
            let mut first_event = event(BillType::Act, None, first.1);
            first_event.money_bill = true;
            let mut p = BillProgress::start(&first_event, at(first.0));
            for &(d, to) in rest {
                let d = if to == HouseReaffirm { day } else { d };
                let e = event(BillType::Act, Some(p.stage), to);
                p.check(&e, at(d))?;
                p.apply(&e, at(d));
            }
            Ok::<_, TransitionError>(())
        };
        assert_eq!(money("2023-06-05").unwrap_err().code(), "wait_not_over");
        assert_eq!(money("2023-06-11").unwrap_err().code(), "wait_not_over"); // D+10
        assert_eq!(money("2023-06-12"), Ok(())); // D+11
                                                 // A budget bill: at once (s.143).
        let budget = [
            ("2023-05-31", Proposed),
            ("2023-06-01", HouseR1),
            ("2023-06-02", HouseCommittee),
            ("2023-08-20", HouseR2),
            ("2023-08-21", HouseR3),
            ("2023-08-25", SenateR1),
            ("2023-09-01", Withheld),
            ("2023-09-02", HouseReaffirm),
        ];
        assert!(walk(BillType::Budget, &budget).is_ok());
    }

    #[test]
    fn the_s138_wait_runs_from_the_day_the_senate_sent_the_bill_back() {
        // s.138 (1): "นับแต่วันที่วุฒิสภาส่งร่างพระราชบัญญัตินั้นคืนไปยังสภาผู้แทนราษฎร".
        let path = [
            ("2023-01-10", Proposed),
            ("2023-02-01", HouseR1),
            ("2023-03-01", HouseCommittee),
            ("2023-05-01", HouseR2),
            ("2023-05-01", HouseR3),
            ("2023-05-20", SenateR1),
            ("2023-06-01", Withheld), // the Senate's vote
        ];
        let p = walk(BillType::Act, &path).unwrap();
        let mut reaffirm = event(BillType::Act, Some(Withheld), HouseReaffirm);
        // Without the day of return: counted from the vote, D+181 is 29 Nov.
        assert_eq!(p.check(&reaffirm, at("2023-11-29")), Ok(()));
        // Sent back on 10 Jun: the earliest day is 8 Dec.
        reaffirm.returned_on = "2023-06-10".parse().ok();
        let err = p.check(&reaffirm, at("2023-11-29")).unwrap_err();
        assert_eq!(err.code(), "wait_not_over");
        assert!(
            err.to_string().ends_with("the earliest day is 2023-12-08"),
            "{err}"
        );
        assert_eq!(p.check(&reaffirm, at("2023-12-08")), Ok(()));
        reaffirm.returned_on = "2023-05-30".parse().ok();
        let err = p.check(&reaffirm, at("2023-12-08")).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("bad_returned_on", "data.returned_on")
        );
    }

    #[test]
    fn the_prime_minister_waits_5_days_before_presenting_an_approved_bill() {
        // s.145: five days from receipt, which is on or after approval: D+6.
        let mut path = presented_act("2023-05-06").to_vec();
        path.insert(9, ("2023-05-01", Approved));
        let (stage, err) = walk(BillType::Act, &path).unwrap_err();
        assert_eq!((stage, err.code()), (PresentedForAssent, "wait_not_over"));
        path[10].0 = "2023-05-07";
        assert!(walk(BillType::Act, &path).is_ok());
    }

    #[test]
    fn the_money_bill_status_is_fixed_when_the_bill_enters_the_senate() {
        // s.136 ¶4: certified on the move into SENATE_R1 or before, never after.
        let path = [
            ("2023-01-10", Proposed),
            ("2023-02-01", HouseR1),
            ("2023-03-01", HouseCommittee),
            ("2023-05-01", HouseR2),
            ("2023-05-01", HouseR3),
        ];
        let mut p = walk(BillType::Act, &path).unwrap();
        let mut to_senate = event(BillType::Act, Some(HouseR3), SenateR1);
        p.check(&to_senate, at("2023-05-20")).unwrap();
        let mut certified = p.clone();
        to_senate.money_bill = true;
        assert_eq!(certified.check(&to_senate, at("2023-05-20")), Ok(()));
        certified.apply(&to_senate, at("2023-05-20"));
        assert!(certified.money_bill);
        to_senate.money_bill = false;
        p.apply(&to_senate, at("2023-05-20"));
        let mut withheld = event(BillType::Act, Some(SenateR1), Withheld);
        withheld.money_bill = true;
        let err = p.check(&withheld, at("2023-06-01")).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("money_bill_too_late", "data.money_bill")
        );
    }

    #[test]
    fn a_revived_bill_goes_back_to_the_stage_it_lapsed_at() {
        // s.147 paragraph two.
        let path = [
            ("2023-01-10", Proposed),
            ("2023-02-01", HouseR1),
            ("2023-03-01", HouseCommittee),
            ("2023-03-20", Lapsed),
            ("2023-09-01", HouseCommittee),
        ];
        let p = walk(BillType::Act, &path).unwrap();
        assert_eq!(p.stage, HouseCommittee);
        // A bill that lapsed after a royal veto is not revived.
        let vetoed = [
            ("2023-01-10", Proposed),
            ("2023-02-01", HouseR1),
            ("2023-03-01", HouseCommittee),
            ("2023-03-20", HouseR2),
            ("2023-03-20", HouseR3),
            ("2023-04-03", SenateR1),
            ("2023-04-03", SenateCommittee),
            ("2023-05-01", SenateR2),
            ("2023-05-01", SenateR3),
            ("2023-05-20", PresentedForAssent),
            ("2023-08-20", VetoReconsider),
            ("2023-09-01", Lapsed),
            ("2024-01-10", VetoReconsider),
        ];
        assert_eq!(
            walk(BillType::Act, &vetoed).unwrap_err().1.code(),
            "not_revivable"
        );
        let mut wrong = path;
        wrong[4].1 = HouseR2;
        let (_, err) = walk(BillType::Act, &wrong).unwrap_err();
        assert_eq!(
            err,
            TransitionError::WrongReturn {
                from: Lapsed,
                expected: HouseCommittee,
                got: HouseR2
            }
        );
    }

    #[test]
    fn a_decree_goes_back_from_the_court_to_the_house_that_deferred_it() {
        // s.173: consideration waits for the ruling, then goes on where it was.
        let senate = [
            ("2024-01-05", Enacted),
            ("2024-01-20", HouseApproval),
            ("2024-01-27", SenateApproval),
            ("2024-02-01", ConstCourt),
            ("2024-03-20", SenateApproval),
        ];
        assert!(walk(BillType::EmergencyDecree, &senate).is_ok());
        let mut wrong = senate;
        wrong[4].1 = HouseApproval;
        assert_eq!(
            walk(BillType::EmergencyDecree, &wrong)
                .unwrap_err()
                .1
                .code(),
            "wrong_return_stage"
        );
        // Referred before the House took it up: back to the House.
        let early = [
            ("2024-01-05", Enacted),
            ("2024-01-08", ConstCourt),
            ("2024-02-20", HouseApproval),
        ];
        assert!(walk(BillType::EmergencyDecree, &early).is_ok());
        // Not an emergency decree: no force from the start.
        let void = [
            ("2024-01-05", Enacted),
            ("2024-01-08", ConstCourt),
            ("2024-02-20", Rejected),
        ];
        assert!(walk(BillType::EmergencyDecree, &void).is_ok());
    }

    #[test]
    fn a_deemed_approval_comes_only_after_the_deadline() {
        // s.137: the Senate's 60 days from 1 Mar end on 30 Apr.
        let mut p = walk(
            BillType::Act,
            &[
                ("2024-01-10", Proposed),
                ("2024-01-20", HouseR1),
                ("2024-02-01", HouseCommittee),
                ("2024-02-20", HouseR2),
                ("2024-02-20", HouseR3),
            ],
        )
        .unwrap();
        let mut to_senate = event(BillType::Act, Some(HouseR3), SenateR1);
        to_senate.deadline = "2024-04-30".parse().ok();
        p.apply(&to_senate, at("2024-03-01"));
        assert_eq!(p.deadline, "2024-04-30".parse().ok());
        let mut deemed = event(BillType::Act, Some(SenateR1), PresentedForAssent);
        deemed.deemed = true;
        assert_eq!(
            p.check(&deemed, at("2024-04-30")).unwrap_err().code(),
            "deemed_before_deadline"
        );
        assert_eq!(p.check(&deemed, at("2024-05-01")), Ok(()));
    }

    /// An act up to its first presentation for royal assent, on `presented`.
    fn presented_act(presented: &str) -> Vec<(&str, Stage)> {
        vec![
            ("2023-01-10", Proposed),
            ("2023-02-01", HouseR1),
            ("2023-03-01", HouseCommittee),
            ("2023-03-20", HouseR2),
            ("2023-03-20", HouseR3),
            ("2023-04-03", SenateR1),
            ("2023-04-03", SenateCommittee),
            ("2023-05-01", SenateR2),
            ("2023-05-01", SenateR3),
            (presented, PresentedForAssent),
        ]
    }

    #[test]
    fn a_bill_is_published_as_if_signed_only_after_a_reaffirmation_and_a_second_presentation() {
        // s.146: a first presentation is never deemed signed, however long it waits.
        let mut p = walk(BillType::Act, &presented_act("2023-05-20")).unwrap();
        let mut deemed = event(BillType::Act, Some(PresentedForAssent), Published);
        deemed.deemed = true;
        let err = p.check(&deemed, at("2023-09-01")).unwrap_err();
        assert_eq!(err, TransitionError::DeemedWithoutReaffirmation);
        assert_eq!((err.code(), err.field()), ("not_deemable", "data.deemed"));
        // Past 90 days it goes back to Parliament, which reaffirms it by 2/3; re-presented
        // and not returned within 30 days, it is published as if signed.
        let back = event(BillType::Act, Some(PresentedForAssent), VetoReconsider);
        p.check(&back, at("2023-08-19")).unwrap();
        p.apply(&back, at("2023-08-19"));
        let mut again = event(BillType::Act, Some(VetoReconsider), PresentedForAssent);
        again.deadline = "2023-10-01".parse().ok();
        p.check(&again, at("2023-09-01")).unwrap();
        p.apply(&again, at("2023-09-01"));
        assert_eq!(
            p.check(&deemed, at("2023-10-01")).unwrap_err().code(),
            "deemed_before_deadline"
        );
        assert_eq!(p.check(&deemed, at("2023-10-02")), Ok(()));
    }

    #[test]
    fn an_amendment_has_no_veto_override_and_no_deemed_publication() {
        // s.256 (7): only s.81 applies; s.147 ¶1 lapses an unsigned draft.
        let path = [
            ("2021-06-24", Proposed),
            ("2021-06-24", JointR1),
            ("2021-06-25", ParliamentCommittee),
            ("2021-08-24", JointR2),
            ("2021-08-25", JointR3),
            ("2021-09-10", Approved),
            ("2021-09-30", PresentedForAssent),
        ];
        let p = walk(BillType::ConstitutionalAmendment, &path).unwrap();
        let mut deemed = event(
            BillType::ConstitutionalAmendment,
            Some(PresentedForAssent),
            Published,
        );
        deemed.deemed = true;
        let check = |e: &BillStageChanged| {
            crate::stage::check_transition(e.bill_type, e.from_stage, e.to_stage, e.deemed)
        };
        assert_eq!(check(&deemed).unwrap_err().code(), "not_deemable");
        let veto = event(
            BillType::ConstitutionalAmendment,
            Some(PresentedForAssent),
            VetoReconsider,
        );
        assert_eq!(check(&veto).unwrap_err().code(), "illegal_transition");
        let lapse = event(
            BillType::ConstitutionalAmendment,
            Some(PresentedForAssent),
            Lapsed,
        );
        assert_eq!(check(&lapse), Ok(()));
        let mut lapsed = p.clone();
        lapsed.apply(&lapse, at("2022-01-10"));
        let revive = event(
            BillType::ConstitutionalAmendment,
            Some(Lapsed),
            PresentedForAssent,
        );
        assert_eq!(
            lapsed.check(&revive, at("2022-06-01")).unwrap_err().code(),
            "not_revivable"
        );
    }

    #[test]
    fn the_day_is_counted_in_bangkok() {
        let late_evening_utc: DateTime<Utc> = "2024-03-01T18:30:00Z".parse().unwrap();
        assert_eq!(bangkok_day(late_evening_utc).to_string(), "2024-03-02");
    }
}
