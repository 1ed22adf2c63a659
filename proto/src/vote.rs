//! A vote's threshold, machine-readable, and the check of a tally against it,
//! so that a hub or a client can tell whether a vote passed instead of taking
//! the announced result on trust.
//!
//! The Constitution B.E. 2560 states thresholds in three ways, and a
//! [`ThresholdPart`] holds each: a majority of the votes (s.120: more ayes than
//! noes, the chair casting a deciding vote on a tie), a share of the votes cast,
//! and a share of the members **in office** (เท่าที่มีอยู่), never of the nominal
//! seats. Extra conditions (at least 1/3 of senators, s.256 (3) and (6); at
//! least 20% of the MPs of parties with no minister or presiding officer,
//! s.256 (6)) are further parts on one group.

use crate::event::{Group, VoteCount, VoteOption};
use crate::stage::code_enum;
use serde::{Deserialize, Serialize};

code_enum! {
    /// What a threshold counts the ayes against: `majority`, more ayes than
    /// noes (abstentions count neither way; a tie is decided by the chair's
    /// casting vote, s.120); `votes_cast`, a share of the votes cast (aye, no
    /// and abstain); `members_in_office`, a share of the members in office of
    /// the group (or of the sitting).
    Base {
        Majority => "majority",
        VotesCast => "votes_cast",
        MembersInOffice => "members_in_office",
    }
}

code_enum! {
    /// How the ayes compare with the share: "more than" (เกิน) or "not less
    /// than" (ไม่น้อยกว่า).
    Compare {
        MoreThan => "more_than",
        AtLeast => "at_least",
    }
}

/// One condition of a threshold; every part must hold for the vote to pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdPart {
    /// Whose ayes count; absent for the whole sitting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
    pub base: Base,
    /// For `votes_cast` and `members_in_office`: "more than" or "not less than"
    /// `numerator / denominator` of the base. Ignored for `majority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<u32>,
    /// For `members_in_office`: how many members the group (or the sitting)
    /// has in office on the day of the vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_in_office: Option<u32>,
}

/// A vote's threshold: all of its parts must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub parts: Vec<ThresholdPart>,
}

/// What a tally says about a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// The tally does not break the votes down by a group a part needs (for
    /// example `no_office_parties`), or a majority vote is tied and no casting
    /// vote is recorded (s.120 says the chair *shall* cast one), so the
    /// threshold cannot be checked.
    Undetermined,
}

impl ThresholdPart {
    /// The fewest ayes that satisfy a `votes_cast` or `members_in_office` part
    /// out of `base` votes or members.
    pub fn ayes_needed(&self, base: u32) -> Option<u64> {
        let (num, den) = (u64::from(self.numerator?), u64::from(self.denominator?));
        if den == 0 {
            return None;
        }
        let share = u64::from(base) * num;
        Some(match self.compare? {
            Compare::MoreThan => share / den + 1,
            Compare::AtLeast => share.div_ceil(den),
        })
    }

    /// Whether the part is complete: a fraction for a share, and the members
    /// in office for `members_in_office`.
    pub fn problem(&self) -> Option<&'static str> {
        let fraction = self.compare.is_some() && self.numerator.is_some();
        match self.base {
            Base::Majority if fraction || self.members_in_office.is_some() => {
                Some("a majority part takes no fraction and no members_in_office")
            }
            Base::Majority => None,
            _ if !fraction || self.denominator.is_none() => {
                Some("needs compare, numerator and denominator")
            }
            _ if self.denominator == Some(0) || self.numerator > self.denominator => {
                Some("the fraction must be between 0 and 1")
            }
            Base::MembersInOffice if self.members_in_office.is_none() => {
                Some("needs members_in_office")
            }
            Base::VotesCast if self.members_in_office.is_some() => {
                Some("a votes_cast part takes no members_in_office")
            }
            _ => None,
        }
    }
}

/// The count of `option` for `group` (`None`: the whole sitting, which in a
/// joint sitting is the house and senate lines added up). `None` when the
/// tally has no line for the group at all.
pub fn count(counts: &[VoteCount], group: Option<Group>, option: VoteOption) -> Option<u32> {
    let lines: Vec<&VoteCount> = match group {
        Some(g) => counts.iter().filter(|c| c.group == Some(g)).collect(),
        None if counts.iter().any(|c| c.group.is_none()) => {
            counts.iter().filter(|c| c.group.is_none()).collect()
        }
        None => counts
            .iter()
            .filter(|c| c.group.is_some_and(Group::is_chamber))
            .collect(),
    };
    if lines.is_empty() {
        return None;
    }
    Some(
        lines
            .iter()
            .filter(|c| c.option == option)
            .map(|c| c.value)
            .sum(),
    )
}

impl Threshold {
    /// Checks a tally (and the chair's casting vote, if any) against every part.
    pub fn evaluate(&self, counts: &[VoteCount], casting_vote: Option<VoteOption>) -> Verdict {
        let mut verdict = Verdict::Passed;
        for part in &self.parts {
            let get = |option| count(counts, part.group, option);
            let (Some(aye), Some(no), Some(abstain)) = (
                get(VoteOption::Aye),
                get(VoteOption::No),
                get(VoteOption::Abstain),
            ) else {
                verdict = Verdict::Undetermined;
                continue;
            };
            // s.120: on a tie "ให้ประธานในที่ประชุมออกเสียงเพิ่มขึ้นอีกเสียงหนึ่งเป็นเสียงชี้ขาด"; a
            // recorded tie without that vote does not say the outcome.
            if part.base == Base::Majority && aye == no && casting_vote.is_none() {
                verdict = Verdict::Undetermined;
                continue;
            }
            let holds = match part.base {
                Base::Majority => aye > no || (aye == no && casting_vote == Some(VoteOption::Aye)),
                Base::VotesCast => part
                    .ayes_needed(aye + no + abstain)
                    .is_some_and(|n| u64::from(aye) >= n),
                Base::MembersInOffice => part
                    .members_in_office
                    .and_then(|m| part.ayes_needed(m))
                    .is_some_and(|n| u64::from(aye) >= n),
            };
            if !holds {
                return Verdict::Failed;
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(option: VoteOption, group: Group, value: u32) -> VoteCount {
        VoteCount {
            option,
            group: Some(group),
            value,
        }
    }

    fn in_office(
        group: Option<Group>,
        compare: Compare,
        n: u32,
        d: u32,
        members: u32,
    ) -> ThresholdPart {
        ThresholdPart {
            group,
            base: Base::MembersInOffice,
            compare: Some(compare),
            numerator: Some(n),
            denominator: Some(d),
            members_in_office: Some(members),
        }
    }

    /// The tally of 10 Sep 2021 (third reading, sections 83 and 91).
    fn tally_2021_09_10() -> Vec<VoteCount> {
        use Group::*;
        use VoteOption::*;
        vec![
            line(Aye, House, 323),
            line(Aye, Senate, 149),
            line(No, House, 23),
            line(No, Senate, 10),
            line(Abstain, House, 121),
            line(Abstain, Senate, 66),
        ]
    }

    #[test]
    fn the_third_reading_of_10_sep_2021_passed_its_threshold() {
        // s.256 (6): more than half of the members in office of both Houses, and
        // at least 1/3 of the senators in office. Members in office: 730 (480 MPs,
        // 250 senators; Daily News 256036), so more than 365.
        let threshold = Threshold {
            parts: vec![
                in_office(None, Compare::MoreThan, 1, 2, 730),
                in_office(Some(Group::Senate), Compare::AtLeast, 1, 3, 250),
            ],
        };
        assert_eq!(threshold.parts[0].ayes_needed(730), Some(366));
        assert_eq!(threshold.parts[1].ayes_needed(250), Some(84));
        let tally = tally_2021_09_10();
        assert_eq!(count(&tally, None, VoteOption::Aye), Some(472));
        assert_eq!(threshold.evaluate(&tally, None), Verdict::Passed);
        // s.256 (6): 20% of the MPs of the parties holding no minister, Speaker or
        // Deputy Speaker post, 242 on 10 Sep 2021, so 49 (Daily News 256036); the
        // tally has no such line, so it cannot be checked.
        let mut with_base = threshold.clone();
        with_base.parts.push(in_office(
            Some(Group::NoOfficeParties),
            Compare::AtLeast,
            1,
            5,
            242,
        ));
        assert_eq!(with_base.parts[2].ayes_needed(242), Some(49));
        assert_eq!(with_base.evaluate(&tally, None), Verdict::Undetermined);
    }

    #[test]
    fn the_third_reading_of_17_mar_2021_failed_on_both_counts() {
        // Voted late on 17 Mar 2021: 208 (206 + 2), 4, 94, 136, with 487 MPs and
        // 250 senators in office, 737 (siambusinessnews 30845).
        use Group::*;
        use VoteOption::*;
        let tally = vec![
            line(Aye, House, 206),
            line(Aye, Senate, 2),
            line(No, House, 0),
            line(No, Senate, 4),
            line(Abstain, House, 10),
            line(Abstain, Senate, 84),
            line(NotVoting, House, 9),
            line(NotVoting, Senate, 127),
        ];
        let senators = Threshold {
            parts: vec![in_office(Some(Senate), Compare::AtLeast, 1, 3, 250)],
        };
        assert_eq!(senators.evaluate(&tally, None), Verdict::Failed);
        let half = Threshold {
            parts: vec![in_office(None, Compare::MoreThan, 1, 2, 737)],
        };
        assert_eq!(half.evaluate(&tally, None), Verdict::Failed);
    }

    #[test]
    fn the_first_reading_of_18_nov_2020_needed_366_of_732() {
        // s.256 (3): not less than half of the 732 members then in office.
        let part = in_office(None, Compare::AtLeast, 1, 2, 732);
        assert_eq!(part.ayes_needed(732), Some(366));
    }

    #[test]
    fn a_majority_counts_ayes_against_noes_and_a_tie_goes_to_the_casting_vote() {
        let majority = Threshold {
            parts: vec![ThresholdPart {
                group: None,
                base: Base::Majority,
                compare: None,
                numerator: None,
                denominator: None,
                members_in_office: None,
            }],
        };
        let tally = |aye, no| {
            vec![
                VoteCount {
                    option: VoteOption::Aye,
                    group: None,
                    value: aye,
                },
                VoteCount {
                    option: VoteOption::No,
                    group: None,
                    value: no,
                },
                VoteCount {
                    option: VoteOption::Abstain,
                    group: None,
                    value: 40,
                },
            ]
        };
        assert_eq!(majority.evaluate(&tally(101, 100), None), Verdict::Passed);
        // s.120: the chair shall cast a deciding vote; a tie without one says nothing.
        assert_eq!(
            majority.evaluate(&tally(100, 100), None),
            Verdict::Undetermined
        );
        assert_eq!(
            majority.evaluate(&tally(100, 100), Some(VoteOption::No)),
            Verdict::Failed
        );
        assert_eq!(
            majority.evaluate(&tally(100, 100), Some(VoteOption::Aye)),
            Verdict::Passed
        );
        assert_eq!(majority.parts[0].problem(), None);
    }

    #[test]
    fn incomplete_parts_are_named() {
        let mut part = in_office(None, Compare::AtLeast, 2, 3, 500);
        assert_eq!(part.problem(), None);
        part.members_in_office = None;
        assert!(part.problem().is_some());
        part.base = Base::VotesCast;
        assert_eq!(part.problem(), None);
        part.numerator = Some(4);
        assert!(part.problem().is_some());
    }
}
