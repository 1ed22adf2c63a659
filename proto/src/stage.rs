//! Bill stages and the one table of legal stage transitions, per bill type.
//!
//! The rules are a reconstruction from public sources (see LEGISLATIVE.md in the
//! domain reference) and some details are not settled. Everything about them
//! lives in [`RULES`]: correcting a rule means editing one row here and nothing else.

use thiserror::Error;

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire code, identical in the JSON and the protobuf form.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::event::UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err(crate::event::UnknownCode {
                        what: stringify!($name),
                        code: s.to_owned(),
                    }),
                }
            }
        }
    };
}
pub(crate) use code_enum;

code_enum! {
    /// The kind of bill; each kind follows its own path (see [`RULES`]).
    BillType {
        Act => "act",
        OrganicAct => "organic_act",
        Budget => "budget",
        EmergencyDecree => "emergency_decree",
        ConstitutionalAmendment => "constitutional_amendment",
    }
}

code_enum! {
    /// A stage in a bill's life.
    Stage {
        Proposed => "PROPOSED",
        Hearing => "HEARING",
        HouseR1 => "HOUSE_R1",
        HouseCommittee => "HOUSE_COMMITTEE",
        HouseR2 => "HOUSE_R2",
        HouseR3 => "HOUSE_R3",
        SenateR1 => "SENATE_R1",
        SenateCommittee => "SENATE_COMMITTEE",
        SenateR2 => "SENATE_R2",
        SenateR3 => "SENATE_R3",
        HouseReconsider => "HOUSE_RECONSIDER",
        Withheld => "WITHHELD",
        JointCommittee => "JOINT_COMMITTEE",
        JointR1 => "JOINT_R1",
        ParliamentCommittee => "PARLIAMENT_COMMITTEE",
        JointR2 => "JOINT_R2",
        JointR3 => "JOINT_R3",
        Referendum => "REFERENDUM",
        HouseApproval => "HOUSE_APPROVAL",
        SenateApproval => "SENATE_APPROVAL",
        ConstCourt => "CONST_COURT",
        RoyalAssent => "ROYAL_ASSENT",
        VetoReconsider => "VETO_RECONSIDER",
        Published => "PUBLISHED",
        Enacted => "ENACTED",
        Confirmed => "CONFIRMED",
        Rejected => "REJECTED",
        Merged => "MERGED",
        Withdrawn => "WITHDRAWN",
        Lapsed => "LAPSED",
    }
}

impl Stage {
    /// Thai and English labels, for people.
    pub fn label(self) -> (&'static str, &'static str) {
        use Stage::*;
        match self {
            Proposed => ("เสนอร่าง", "introduced"),
            Hearing => ("รับฟังความคิดเห็น", "public hearing"),
            HouseR1 => ("วาระที่ 1 ขั้นรับหลักการ", "House first reading"),
            HouseCommittee => ("ขั้นกรรมาธิการ", "House committee"),
            HouseR2 => ("วาระที่ 2", "House second reading"),
            HouseR3 => ("วาระที่ 3", "House third reading"),
            SenateR1 => ("วุฒิสภา วาระที่ 1", "Senate first reading"),
            SenateCommittee => ("วุฒิสภา ขั้นกรรมาธิการ", "Senate committee"),
            SenateR2 => ("วุฒิสภา วาระที่ 2", "Senate second reading"),
            SenateR3 => ("วุฒิสภา วาระที่ 3", "Senate third reading"),
            HouseReconsider => ("สภาผู้แทนราษฎรพิจารณาใหม่", "House reconsideration"),
            Withheld => ("ยับยั้งไว้ก่อน", "withheld"),
            JointCommittee => ("คณะกรรมาธิการร่วมกัน", "joint committee"),
            JointR1 => ("รัฐสภา วาระที่ 1", "joint sitting first reading"),
            ParliamentCommittee => ("กรรมาธิการของรัฐสภา", "joint sitting committee"),
            JointR2 => ("รัฐสภา วาระที่ 2", "joint sitting second reading"),
            JointR3 => ("รัฐสภา วาระที่ 3", "joint sitting third reading"),
            Referendum => ("ออกเสียงประชามติ", "referendum"),
            HouseApproval => ("สภาผู้แทนราษฎรพิจารณาอนุมัติ", "House approval"),
            SenateApproval => ("วุฒิสภาพิจารณาอนุมัติ", "Senate approval"),
            ConstCourt => ("ศาลรัฐธรรมนูญวินิจฉัย", "Constitutional Court review"),
            RoyalAssent => ("นำขึ้นทูลเกล้าฯ", "presented for royal assent"),
            VetoReconsider => ("รัฐสภาปรึกษาใหม่", "reconsidered after royal veto"),
            Published => ("ประกาศในราชกิจจานุเบกษา", "published in the Royal Gazette"),
            Enacted => ("มีผลบังคับใช้", "in force"),
            Confirmed => ("อนุมัติ", "confirmed by Parliament"),
            Rejected => ("ตกไป", "rejected"),
            Merged => ("รวมร่าง", "merged into a main bill"),
            Withdrawn => ("ถอน", "withdrawn"),
            Lapsed => ("ตกไปเพราะยุบสภา", "lapsed on dissolution"),
        }
    }
}

/// One row of the rule table: from a stage, the stages a bill may move to.
pub struct Rule {
    pub from: Stage,
    pub to: &'static [Stage],
}

/// The rules for one bill type: where a bill starts, and the moves from each stage.
pub struct TypeRules {
    pub bill_type: BillType,
    /// The stage a bill's first event must name.
    pub initial: Stage,
    /// Stages that end a bill's life: no move leads out of them.
    pub terminal: &'static [Stage],
    /// The usual path of a bill that becomes law, for progress displays and tests.
    pub main_path: &'static [Stage],
    pub rules: &'static [Rule],
}

/// Moves allowed from every non-terminal stage of every bill type: the bill is
/// withdrawn by its sponsor, or lapses when the House is dissolved.
pub const ALWAYS_ALLOWED: &[Stage] = &[Stage::Withdrawn, Stage::Lapsed];

use Stage::*;

const ENDED: &[Stage] = &[Enacted, Rejected, Merged, Withdrawn, Lapsed];

/// The one table of stage rules, one row per stage (kept unformatted so each
/// row stays one line).
#[rustfmt::skip]
pub const RULES: &[TypeRules] = &[
    // ร่าง พ.ร.บ.: the full path through both Houses.
    TypeRules {
        bill_type: BillType::Act,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, Hearing, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, SenateCommittee, SenateR2, SenateR3, RoyalAssent, Published, Enacted],
        rules: &[
            Rule { from: Proposed, to: &[Hearing, HouseR1, Rejected] },
            Rule { from: Hearing, to: &[HouseR1] },
            Rule { from: HouseR1, to: &[HouseCommittee, Rejected, Merged] },
            Rule { from: HouseCommittee, to: &[HouseR2] },
            Rule { from: HouseR2, to: &[HouseR3] },
            Rule { from: HouseR3, to: &[SenateR1, Rejected] },
            // The Senate has 60 days (30 + 30 for money bills); if it misses the
            // deadline the bill is deemed approved and goes for royal assent.
            Rule { from: SenateR1, to: &[SenateCommittee, Withheld, RoyalAssent] },
            Rule { from: SenateCommittee, to: &[SenateR2, RoyalAssent] },
            Rule { from: SenateR2, to: &[SenateR3, RoyalAssent] },
            // approve / amend (back to the House) / disapprove / court review.
            Rule { from: SenateR3, to: &[RoyalAssent, HouseReconsider, Withheld, ConstCourt] },
            Rule { from: HouseReconsider, to: &[RoyalAssent, JointCommittee, Rejected, ConstCourt] },
            Rule { from: Withheld, to: &[HouseReconsider, Rejected] },
            Rule { from: JointCommittee, to: &[RoyalAssent, Withheld, ConstCourt] },
            Rule { from: ConstCourt, to: &[RoyalAssent, Rejected] },
            Rule { from: RoyalAssent, to: &[Published, VetoReconsider] },
            Rule { from: VetoReconsider, to: &[RoyalAssent, Rejected] },
            Rule { from: Published, to: &[Enacted] },
        ],
    },
    // พ.ร.ป.: all three readings in a joint sitting; the Constitutional Court reviews it.
    TypeRules {
        bill_type: BillType::OrganicAct,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3, ConstCourt, RoyalAssent, Published, Enacted],
        rules: &[
            Rule { from: Proposed, to: &[Hearing, JointR1, Rejected] },
            Rule { from: Hearing, to: &[JointR1] },
            Rule { from: JointR1, to: &[ParliamentCommittee, Rejected] },
            Rule { from: ParliamentCommittee, to: &[JointR2] },
            Rule { from: JointR2, to: &[JointR3] },
            Rule { from: JointR3, to: &[ConstCourt, Rejected] },
            Rule { from: ConstCourt, to: &[RoyalAssent, Rejected] },
            Rule { from: RoyalAssent, to: &[Published, VetoReconsider] },
            Rule { from: VetoReconsider, to: &[RoyalAssent, Rejected] },
            Rule { from: Published, to: &[Enacted] },
        ],
    },
    // Budget bill: the Senate approves or rejects within 20 days and cannot amend,
    // so there is no Senate committee and no return to the House with amendments.
    TypeRules {
        bill_type: BillType::Budget,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, RoyalAssent, Published, Enacted],
        rules: &[
            Rule { from: Proposed, to: &[HouseR1, Rejected] },
            Rule { from: HouseR1, to: &[HouseCommittee, Rejected] },
            Rule { from: HouseCommittee, to: &[HouseR2] },
            Rule { from: HouseR2, to: &[HouseR3] },
            Rule { from: HouseR3, to: &[SenateR1, Rejected] },
            Rule { from: SenateR1, to: &[RoyalAssent, Withheld, ConstCourt] },
            Rule { from: Withheld, to: &[HouseReconsider, Rejected] },
            Rule { from: HouseReconsider, to: &[RoyalAssent, Rejected] },
            Rule { from: ConstCourt, to: &[RoyalAssent, Rejected] },
            Rule { from: RoyalAssent, to: &[Published, VetoReconsider] },
            Rule { from: VetoReconsider, to: &[RoyalAssent, Rejected] },
            Rule { from: Published, to: &[Enacted] },
        ],
    },
    // พ.ร.ก.: in force at once, then approved or rejected by each House in turn.
    TypeRules {
        bill_type: BillType::EmergencyDecree,
        initial: Enacted,
        terminal: &[Confirmed, Rejected, Withdrawn, Lapsed],
        main_path: &[Enacted, HouseApproval, SenateApproval, Confirmed],
        rules: &[
            Rule { from: Enacted, to: &[HouseApproval, ConstCourt] },
            Rule { from: ConstCourt, to: &[HouseApproval, Rejected] },
            Rule { from: HouseApproval, to: &[SenateApproval, Rejected] },
            // Senate disapproval sends it back; the House may reaffirm it.
            Rule { from: SenateApproval, to: &[Confirmed, HouseReconsider] },
            Rule { from: HouseReconsider, to: &[Confirmed, Rejected] },
        ],
    },
    // Constitutional amendment: joint sitting, special thresholds, possibly a referendum.
    TypeRules {
        bill_type: BillType::ConstitutionalAmendment,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3, RoyalAssent, Published, Enacted],
        rules: &[
            Rule { from: Proposed, to: &[JointR1, Rejected] },
            Rule { from: JointR1, to: &[ParliamentCommittee, Rejected] },
            Rule { from: ParliamentCommittee, to: &[JointR2] },
            Rule { from: JointR2, to: &[JointR3] },
            Rule { from: JointR3, to: &[RoyalAssent, Referendum, ConstCourt, Rejected] },
            Rule { from: Referendum, to: &[RoyalAssent, Rejected] },
            Rule { from: ConstCourt, to: &[RoyalAssent, Referendum, Rejected] },
            Rule { from: RoyalAssent, to: &[Published, VetoReconsider] },
            Rule { from: VetoReconsider, to: &[RoyalAssent, Rejected] },
            Rule { from: Published, to: &[Enacted] },
        ],
    },
];

/// Why a stage transition is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("a {bill_type} bill must start at {expected}, not {got}")]
    BadInitialStage {
        bill_type: BillType,
        expected: Stage,
        got: Stage,
    },
    #[error("the bill is at {from}, a terminal stage; it cannot move to {to}")]
    FromTerminal { from: Stage, to: Stage },
    #[error("a {bill_type} bill cannot move from {from} to {to}")]
    Illegal {
        bill_type: BillType,
        from: Stage,
        to: Stage,
    },
}

impl TransitionError {
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::BadInitialStage { .. } => "bad_initial_stage",
            TransitionError::FromTerminal { .. } => "from_terminal_stage",
            TransitionError::Illegal { .. } => "illegal_transition",
        }
    }
}

/// The rules for one bill type.
pub fn rules_for(bill_type: BillType) -> &'static TypeRules {
    RULES
        .iter()
        .find(|r| r.bill_type == bill_type)
        .expect("every bill type has a row in RULES")
}

impl TypeRules {
    pub fn is_terminal(&self, stage: Stage) -> bool {
        self.terminal.contains(&stage)
    }

    /// The stages a bill at `from` may move to next.
    pub fn next(&self, from: Stage) -> Vec<Stage> {
        if self.is_terminal(from) {
            return Vec::new();
        }
        let mut next: Vec<Stage> = self
            .rules
            .iter()
            .filter(|r| r.from == from)
            .flat_map(|r| r.to.iter().copied())
            .collect();
        for s in ALWAYS_ALLOWED {
            if !next.contains(s) {
                next.push(*s);
            }
        }
        next
    }
}

/// Checks a move of a `bill_type` bill from `from` (`None` for a new bill) to `to`.
pub fn check_transition(
    bill_type: BillType,
    from: Option<Stage>,
    to: Stage,
) -> Result<(), TransitionError> {
    let rules = rules_for(bill_type);
    let Some(from) = from else {
        return if to == rules.initial {
            Ok(())
        } else {
            Err(TransitionError::BadInitialStage {
                bill_type,
                expected: rules.initial,
                got: to,
            })
        };
    };
    if rules.is_terminal(from) {
        return Err(TransitionError::FromTerminal { from, to });
    }
    if rules.next(from).contains(&to) {
        Ok(())
    } else {
        Err(TransitionError::Illegal {
            bill_type,
            from,
            to,
        })
    }
}

/// The legal stage moves of every bill type as Markdown tables, for
/// docs/EVENTS.md (generated from [`RULES`], so the doc cannot drift).
pub fn moves_markdown() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for bill_type in BillType::ALL {
        let rules = rules_for(*bill_type);
        let _ = writeln!(out, "### `{bill_type}`\n");
        let _ = writeln!(
            out,
            "First stage `{}`; terminal: {}.\n",
            rules.initial,
            rules
                .terminal
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "| from | may move to |\n|---|---|");
        for from in Stage::ALL {
            let is_from = *from == rules.initial || rules.rules.iter().any(|r| r.from == *from);
            let next = rules.next(*from);
            if !is_from || next.is_empty() {
                continue;
            }
            let to: Vec<String> = next.iter().map(|s| format!("`{s}`")).collect();
            let _ = writeln!(out, "| `{from}` | {} |", to.join(", "));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(bill_type: BillType, path: &[Stage]) -> Result<(), TransitionError> {
        let mut from = None;
        for &to in path {
            check_transition(bill_type, from, to)?;
            from = Some(to);
        }
        Ok(())
    }

    #[test]
    fn every_main_path_is_legal_and_ends_at_a_terminal_stage() {
        for rules in RULES {
            assert_eq!(
                walk(rules.bill_type, rules.main_path),
                Ok(()),
                "{}",
                rules.bill_type
            );
            let last = *rules.main_path.last().unwrap();
            assert!(
                rules.is_terminal(last),
                "{} ends at {last}",
                rules.bill_type
            );
        }
    }

    #[test]
    fn senate_amendment_goes_back_to_the_house_then_joint_committee() {
        let path = [
            Proposed,
            HouseR1,
            HouseCommittee,
            HouseR2,
            HouseR3,
            SenateR1,
            SenateCommittee,
            SenateR2,
            SenateR3,
            HouseReconsider,
            JointCommittee,
            RoyalAssent,
        ];
        assert_eq!(walk(BillType::Act, &path), Ok(()));
    }

    #[test]
    fn withheld_bill_can_be_reconsidered_after_180_days() {
        let path = [
            Proposed,
            HouseR1,
            HouseCommittee,
            HouseR2,
            HouseR3,
            SenateR1,
            Withheld,
        ];
        assert_eq!(walk(BillType::Act, &path), Ok(()));
        assert_eq!(
            check_transition(BillType::Act, Some(Withheld), HouseReconsider),
            Ok(())
        );
    }

    #[test]
    fn skipping_a_reading_is_illegal() {
        assert_eq!(
            check_transition(BillType::Act, Some(HouseR1), HouseR3),
            Err(TransitionError::Illegal {
                bill_type: BillType::Act,
                from: HouseR1,
                to: HouseR3
            })
        );
        assert_eq!(
            check_transition(BillType::Act, Some(Proposed), RoyalAssent)
                .unwrap_err()
                .code(),
            "illegal_transition"
        );
    }

    #[test]
    fn a_new_bill_must_start_at_its_initial_stage() {
        assert_eq!(check_transition(BillType::Act, None, Proposed), Ok(()));
        assert_eq!(
            check_transition(BillType::Act, None, HouseR2),
            Err(TransitionError::BadInitialStage {
                bill_type: BillType::Act,
                expected: Proposed,
                got: HouseR2
            })
        );
        assert_eq!(
            check_transition(BillType::EmergencyDecree, None, Enacted),
            Ok(())
        );
    }

    #[test]
    fn terminal_stages_have_no_way_out() {
        for stage in [Enacted, Rejected, Merged, Withdrawn, Lapsed] {
            assert_eq!(
                check_transition(BillType::Act, Some(stage), HouseR1)
                    .unwrap_err()
                    .code(),
                "from_terminal_stage",
                "{stage}"
            );
        }
    }

    #[test]
    fn any_live_bill_can_be_withdrawn_or_lapse() {
        for rules in RULES {
            for rule in rules.rules {
                for s in ALWAYS_ALLOWED {
                    assert_eq!(
                        check_transition(rules.bill_type, Some(rule.from), *s),
                        Ok(())
                    );
                }
            }
        }
    }

    #[test]
    fn budget_senate_cannot_amend() {
        assert_eq!(
            check_transition(BillType::Budget, Some(SenateR1), SenateCommittee)
                .unwrap_err()
                .code(),
            "illegal_transition"
        );
        assert_eq!(
            check_transition(BillType::Budget, Some(SenateR1), RoyalAssent),
            Ok(())
        );
        assert_eq!(
            check_transition(BillType::Budget, Some(Proposed), Hearing)
                .unwrap_err()
                .code(),
            "illegal_transition"
        );
    }

    #[test]
    fn organic_act_goes_through_joint_sitting_and_court() {
        let path = [
            Proposed,
            JointR1,
            ParliamentCommittee,
            JointR2,
            JointR3,
            ConstCourt,
            RoyalAssent,
            Published,
            Enacted,
        ];
        assert_eq!(walk(BillType::OrganicAct, &path), Ok(()));
        assert!(check_transition(BillType::OrganicAct, Some(Proposed), HouseR1).is_err());
        assert!(check_transition(BillType::OrganicAct, Some(JointR3), RoyalAssent).is_err());
    }

    #[test]
    fn emergency_decree_is_in_force_first_then_approved() {
        let path = [Enacted, HouseApproval, SenateApproval, Confirmed];
        assert_eq!(walk(BillType::EmergencyDecree, &path), Ok(()));
        assert!(check_transition(BillType::EmergencyDecree, None, Proposed).is_err());
        assert_eq!(
            check_transition(BillType::EmergencyDecree, Some(Confirmed), Rejected)
                .unwrap_err()
                .code(),
            "from_terminal_stage"
        );
    }

    #[test]
    fn constitutional_amendment_of_10_sep_2021() {
        // Sections 83 and 91: passed its third reading in the joint sitting.
        let path = [
            Proposed,
            JointR1,
            ParliamentCommittee,
            JointR2,
            JointR3,
            RoyalAssent,
        ];
        assert_eq!(walk(BillType::ConstitutionalAmendment, &path), Ok(()));
        assert!(
            check_transition(BillType::ConstitutionalAmendment, Some(JointR1), JointR3).is_err()
        );
    }

    #[test]
    fn every_rule_names_stages_that_are_not_terminal_sources() {
        for rules in RULES {
            for rule in rules.rules {
                assert!(
                    !rules.is_terminal(rule.from),
                    "{:?} {}",
                    rules.bill_type,
                    rule.from
                );
            }
            // Every bill type is covered exactly once.
            assert_eq!(
                RULES
                    .iter()
                    .filter(|r| r.bill_type == rules.bill_type)
                    .count(),
                1
            );
        }
        for t in BillType::ALL {
            let _ = rules_for(*t);
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in Stage::ALL {
            assert_eq!(s.code().parse::<Stage>().unwrap(), *s);
        }
        assert!("HOUSE_R9".parse::<Stage>().is_err());
    }
}
