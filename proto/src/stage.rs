//! Bill stages and the one table of legal stage transitions, per bill type.
//!
//! The rules follow the Constitution of the Kingdom of Thailand B.E. 2560 (2017);
//! each row cites its section, and docs/LEGISLATIVE-MODEL.md says which sections
//! were read and what is still unsettled. Everything about them lives in
//! [`RULES`]: correcting a rule means editing one row here and nothing else.

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
    /// A stage in a bill's life. Each stage names the body that has the bill and
    /// what it is doing with it; the sections that set each stage are cited in
    /// [`RULES`] and in docs/LEGISLATIVE-MODEL.md.
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
        HouseSenateAmendments => "HOUSE_SENATE_AMENDMENTS",
        Withheld => "WITHHELD",
        HouseReaffirm => "HOUSE_REAFFIRM",
        JointCommittee => "JOINT_COMMITTEE",
        JointR1 => "JOINT_R1",
        ParliamentCommittee => "PARLIAMENT_COMMITTEE",
        JointR2 => "JOINT_R2",
        JointR3 => "JOINT_R3",
        OrganOpinions => "ORGAN_OPINIONS",
        ObjectionReconsider => "OBJECTION_RECONSIDER",
        Referendum => "REFERENDUM",
        HouseApproval => "HOUSE_APPROVAL",
        SenateApproval => "SENATE_APPROVAL",
        ConstCourt => "CONST_COURT",
        Approved => "APPROVED",
        PresentedForAssent => "PRESENTED_FOR_ASSENT",
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
    /// The chamber that has a bill at this stage, if one does (the joint
    /// sitting for the readings and reconsiderations of the National Assembly).
    /// `JOINT_COMMITTEE` has none: it is a committee of both Houses, not a joint
    /// sitting, and each House votes on its draft separately (s.137 (3): "ถ้าสภา
    /// ทั้งสองต่างเห็นชอบ").
    pub fn chamber(self) -> Option<crate::event::Chamber> {
        use crate::event::Chamber;
        use Stage::*;
        match self {
            HouseR1
            | HouseCommittee
            | HouseR2
            | HouseR3
            | HouseSenateAmendments
            | HouseReaffirm
            | HouseApproval => Some(Chamber::House),
            SenateR1 | SenateCommittee | SenateR2 | SenateR3 | SenateApproval => {
                Some(Chamber::Senate)
            }
            JointR1 | ParliamentCommittee | JointR2 | JointR3 | ObjectionReconsider
            | VetoReconsider => Some(Chamber::Joint),
            _ => None,
        }
    }

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
            HouseSenateAmendments => (
                "สภาผู้แทนราษฎรพิจารณาร่างที่วุฒิสภาแก้ไขเพิ่มเติม",
                "House decision on the Senate's amendments",
            ),
            Withheld => ("ยับยั้งไว้ก่อน", "withheld"),
            HouseReaffirm => (
                "สภาผู้แทนราษฎรลงมติยืนยันร่างเดิม",
                "House reaffirmation of the withheld bill",
            ),
            JointCommittee => ("คณะกรรมาธิการร่วมกัน", "joint committee"),
            JointR1 => ("รัฐสภา วาระที่ 1", "joint sitting first reading"),
            ParliamentCommittee => ("กรรมาธิการของรัฐสภา", "joint sitting committee"),
            JointR2 => ("รัฐสภา วาระที่ 2", "joint sitting second reading"),
            JointR3 => ("รัฐสภา วาระที่ 3", "joint sitting third reading"),
            OrganOpinions => (
                "ส่งศาลฎีกา ศาลรัฐธรรมนูญ หรือองค์กรอิสระที่เกี่ยวข้องให้ความเห็น",
                "sent to the court or independent organ concerned for comment",
            ),
            ObjectionReconsider => (
                "รัฐสภาพิจารณาตามความเห็นที่ทักท้วง",
                "joint sitting reconsiders after an objection",
            ),
            Referendum => ("ออกเสียงประชามติ", "referendum"),
            HouseApproval => ("สภาผู้แทนราษฎรพิจารณาอนุมัติ", "House approval"),
            SenateApproval => ("วุฒิสภาพิจารณาอนุมัติ", "Senate approval"),
            ConstCourt => ("ศาลรัฐธรรมนูญวินิจฉัย", "Constitutional Court review"),
            Approved => (
                "ผ่านความเห็นชอบแล้ว รอนำขึ้นทูลเกล้าฯ",
                "approved, awaiting presentation for royal assent",
            ),
            PresentedForAssent => ("นำขึ้นทูลเกล้าฯ", "presented for royal assent"),
            RoyalAssent => ("ทรงลงพระปรมาภิไธย", "royal assent given"),
            VetoReconsider => ("รัฐสภาปรึกษาใหม่", "reconsidered after royal veto"),
            Published => ("ประกาศในราชกิจจานุเบกษา", "published in the Royal Gazette"),
            Enacted => ("มีผลบังคับใช้", "in force"),
            Confirmed => ("อนุมัติ", "confirmed by Parliament"),
            Rejected => ("ตกไป", "rejected"),
            Merged => ("รวมร่าง", "merged into a main bill"),
            Withdrawn => ("ถอน", "withdrawn"),
            // s.147 ¶1: "อายุของสภาผู้แทนราษฎรสิ้นสุดลงหรือมีการยุบสภาผู้แทนราษฎร".
            Lapsed => (
                "ตกไปเพราะสภาผู้แทนราษฎรสิ้นอายุหรือถูกยุบ",
                "lapsed at the end of the House's term or on dissolution",
            ),
        }
    }
}

code_enum! {
    /// Who introduced a bill (ss.131, 133, 256 (1); an emergency decree is
    /// the Cabinet's, s.172).
    Proposer {
        Cabinet => "cabinet",
        Mps => "mps",
        MpsAndSenators => "mps_and_senators",
        Voters => "voters",
        // Kept so that old feeds still parse; no bill type allows them under
        // 2560 (they were the 2550 rule, 2550 s.139 (3)): see `Recommender`.
        Court => "court",
        IndependentOrgan => "independent_organ",
    }
}

code_enum! {
    /// On whose recommendation the Cabinet introduces an organic bill (s.131 (1):
    /// "คณะรัฐมนตรี โดยข้อเสนอแนะของศาลฎีกา ศาลรัฐธรรมนูญ หรือองค์กรอิสระที่เกี่ยวข้อง").
    Recommender {
        SupremeCourt => "supreme_court",
        ConstitutionalCourt => "constitutional_court",
        IndependentOrgan => "independent_organ",
    }
}

impl Proposer {
    /// Who may introduce a bill of `bill_type`: an act, the Cabinet, 20 MPs or
    /// 10,000 voters (s.133); an organic act, the Cabinet (on the
    /// recommendation of the Supreme Court, the Constitutional Court or the
    /// independent organ concerned, recorded in `recommended_by`, never as the
    /// proposer: s.131 (1)) or 1/10 of the MPs (s.131 (2)); a budget bill or an
    /// emergency decree, the Cabinet (ss.143, 172); an amendment, the Cabinet,
    /// 1/5 of the MPs, 1/5 of both Houses together, or 50,000 voters (s.256 (1)).
    pub fn allowed(bill_type: BillType) -> &'static [Proposer] {
        use Proposer::*;
        match bill_type {
            BillType::Act => &[Cabinet, Mps, Voters],
            BillType::OrganicAct => &[Cabinet, Mps],
            BillType::Budget | BillType::EmergencyDecree => &[Cabinet],
            BillType::ConstitutionalAmendment => &[Cabinet, Mps, MpsAndSenators, Voters],
        }
    }
}

/// One row of the rule table: from a stage, the stages a bill may move to.
#[derive(Clone, Copy)]
pub struct Rule {
    pub from: Stage,
    pub to: &'static [Stage],
}

/// A minimum wait: a bill may enter `before` only once `days` whole days (Bangkok
/// calendar days) have passed after the day it entered `after`.
///
/// Counted as the Civil and Commercial Code s.193/3 counts a period in days: "มิให้นับวันแรก
/// แห่งระยะเวลานั้นรวมเข้าด้วยกัน" (the first day is not counted). A wait of 15 days from day D
/// ends at the close of D+15, so the earliest lawful day is D+16 (s.256 (5), (7): "ให้รอไว้
/// สิบห้าวัน"); 180 days gives D+181 and 10 days D+11 (s.138: "เมื่อพ้นหนึ่งร้อยแปดสิบวัน").
/// Deadlines are counted the same way: the last day of "ภายในยี่สิบวัน" from D is D+20.
pub struct Wait {
    pub after: Stage,
    pub before: Stage,
    pub days: u32,
    /// The wait for a money bill, where the law shortens it (s.138: 10 days).
    pub money_bill_days: Option<u32>,
    pub section: &'static str,
}

impl Wait {
    /// The earliest day a bill that entered `after` on `day` may enter `before`,
    /// for a wait of `days` (CCC s.193/3: `day` itself is not counted, so
    /// `day + days` is the wait's last day and the next one the first free day).
    pub fn earliest(day: chrono::NaiveDate, days: u32) -> chrono::NaiveDate {
        day.checked_add_days(chrono::Days::new(u64::from(days) + 1))
            .unwrap_or(chrono::NaiveDate::MAX)
    }
}

/// A deadline the law sets when a bill enters `stage`: the event may carry a
/// `deadline` at most `max_days` after its day (`money_bill_max_days` for a
/// money bill), extensions included. `None`: the period is counted in days of
/// session (s.136), so a recess can push the calendar day out by any amount,
/// and only "after the move" is checked.
pub struct Clock {
    pub stage: Stage,
    /// Only on a move from this stage (`None`: from any). A clock with a `from`
    /// takes precedence over one without for the same `stage`.
    pub from: Option<Stage>,
    pub max_days: Option<u32>,
    pub money_bill_max_days: Option<u32>,
    pub section: &'static str,
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
    /// The moves a body decides.
    pub rules: &'static [Rule],
    /// The moves that happen when a deadline passes without a decision: the bill
    /// is deemed approved (`deemed: true` on the event, and only on these moves).
    pub deemed: &'static [Rule],
    /// Where the sponsor may withdraw the bill (`WITHDRAWN`): while a chamber
    /// still has it (after its first decision, with that chamber's consent).
    pub withdraw_from: &'static [Stage],
    /// Where a dissolution or the end of the House's term ends the bill
    /// (`LAPSED`, s.147): while Parliament has not yet approved it, and after
    /// a royal veto (refused, or not returned within 90 days).
    pub lapse_from: &'static [Stage],
    /// The stages a lapsed bill may be revived into (s.147 paragraph two: only
    /// a bill Parliament had not yet approved), back to the stage it lapsed at.
    pub revivable: &'static [Stage],
    /// Stages a bill leaves, unless it ends, by going back to where it came
    /// from (see [`resume_stage`]).
    pub resumes: &'static [Stage],
    pub waits: &'static [Wait],
    pub clocks: &'static [Clock],
}

use Stage::*;

const ENDED: &[Stage] = &[Enacted, Rejected, Merged, Withdrawn];

/// The common tail of every bill that becomes law (ss.145–146): presented for
/// royal assent, assent given (or veto and reconsideration, 2/3 of the members
/// in office to reaffirm), published, in force. Re-presented after a
/// reaffirmation and not signed within 30 days, the Prime Minister has it
/// published as if signed (s.146 paragraph two): a deemed move.
macro_rules! assent_tail {
    () => {
        [
            Rule {
                from: PresentedForAssent,
                to: &[RoyalAssent, VetoReconsider],
            },
            Rule {
                from: RoyalAssent,
                to: &[Published],
            },
            Rule {
                from: VetoReconsider,
                to: &[PresentedForAssent, Rejected],
            },
            Rule {
                from: Published,
                to: &[Enacted],
            },
        ]
    };
}

/// s.146 ¶1: a first presentation the King does not return within 90 days goes
/// back to Parliament ("เมื่อพ้นเก้าสิบวันแล้วมิได้พระราชทานคืนมา รัฐสภาจะต้องปรึกษา…ใหม่").
const PRESENTED_WITHIN_90_DAYS: Clock = Clock {
    stage: PresentedForAssent,
    from: None,
    max_days: Some(90),
    money_bill_max_days: Some(90),
    section: "s.146",
};

/// s.146 ¶2: re-presented after the 2/3 reaffirmation, the bill is published as if
/// signed if not returned within 30 days ("มิได้ทรงลงพระปรมาภิไธยพระราชทานคืนมาภายในสามสิบวัน").
const PRESENTED_AGAIN_WITHIN_30_DAYS: Clock = Clock {
    stage: PresentedForAssent,
    from: Some(VetoReconsider),
    max_days: Some(30),
    money_bill_max_days: Some(30),
    section: "s.146",
};

/// s.145: "ให้นายกรัฐมนตรีรอไว้ห้าวันนับแต่วันที่ได้รับร่างพระราชบัญญัตินั้นจากรัฐสภา". The Prime
/// Minister receives the bill on or after the day of approval, so five days from
/// entering `APPROVED` is the earliest the text allows (D+6); the stream does not
/// carry the day of receipt, so the 20 days that follow are not checked.
const PM_WAITS_5_DAYS: Wait = Wait {
    after: Approved,
    before: PresentedForAssent,
    days: 5,
    money_bill_days: None,
    section: "s.145",
};

/// A clock of the same length for every bill.
const fn clock(stage: Stage, days: u32, section: &'static str) -> Clock {
    Clock {
        stage,
        from: None,
        max_days: Some(days),
        money_bill_max_days: Some(days),
        section,
    }
}

const HOUSE_AND_SENATE: &[Stage] = &[
    Proposed,
    Hearing,
    HouseR1,
    HouseCommittee,
    HouseR2,
    HouseR3,
    SenateR1,
    SenateCommittee,
    SenateR2,
    SenateR3,
];
const JOINT_READINGS: &[Stage] = &[
    Proposed,
    Hearing,
    JointR1,
    ParliamentCommittee,
    JointR2,
    JointR3,
];

/// The one table of stage rules, one row per stage (kept unformatted so each
/// row stays one line).
#[rustfmt::skip]
pub const RULES: &[TypeRules] = &[
    // ร่าง พ.ร.บ.: the full path through both Houses (ss.133–138, 145–148).
    TypeRules {
        bill_type: BillType::Act,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, Hearing, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, SenateCommittee, SenateR2, SenateR3, Approved, PresentedForAssent, RoyalAssent, Published, Enacted],
        rules: &{
            const TAIL: [Rule; 4] = assent_tail!();
            [
                Rule { from: Proposed, to: &[Hearing, HouseR1, Rejected] },
                Rule { from: Hearing, to: &[HouseR1] },
                Rule { from: HouseR1, to: &[HouseCommittee, Rejected, Merged] },
                Rule { from: HouseCommittee, to: &[HouseR2] },
                Rule { from: HouseR2, to: &[HouseR3] },
                Rule { from: HouseR3, to: &[SenateR1, Rejected] },
                // s.137 (2): the Senate disapproves at any reading, and the bill is withheld.
                Rule { from: SenateR1, to: &[SenateCommittee, Withheld] },
                Rule { from: SenateCommittee, to: &[SenateR2] },
                Rule { from: SenateR2, to: &[SenateR3, Withheld] },
                // s.137: approve / withhold / amend. The vote moves the bill on: an approved
                // bill waits at APPROVED (s.145), where s.147 cannot lapse it.
                Rule { from: SenateR3, to: &[Approved, Withheld, HouseSenateAmendments] },
                // s.137 (3): the House agrees with the amendments, or a joint committee.
                Rule { from: HouseSenateAmendments, to: &[Approved, JointCommittee] },
                // s.137 (3): both Houses approve the joint committee's bill, or it is withheld.
                Rule { from: JointCommittee, to: &[Approved, Withheld] },
                // s.138: after 180 days (10 for a money bill, "ให้ลดเหลือสิบวัน").
                Rule { from: Withheld, to: &[HouseReaffirm] },
                Rule { from: HouseReaffirm, to: &[Approved, Rejected] },
                // s.145: presented by the Prime Minister, or first referred (s.148).
                Rule { from: Approved, to: &[PresentedForAssent, ConstCourt] },
                // s.148: the Court rules; a bill whose essence is unconstitutional falls.
                Rule { from: ConstCourt, to: &[PresentedForAssent, Rejected] },
                TAIL[0], TAIL[1], TAIL[2], TAIL[3],
            ]
        },
        // s.137 paragraph three: the Senate's 60 (money bill 30) days pass.
        deemed: &[
            Rule { from: SenateR1, to: &[Approved] },
            Rule { from: SenateCommittee, to: &[Approved] },
            Rule { from: SenateR2, to: &[Approved] },
            Rule { from: SenateR3, to: &[Approved] },
            Rule { from: PresentedForAssent, to: &[Published] },
        ],
        withdraw_from: HOUSE_AND_SENATE,
        lapse_from: &[Proposed, Hearing, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, SenateCommittee, SenateR2, SenateR3, HouseSenateAmendments, JointCommittee, Withheld, HouseReaffirm, VetoReconsider],
        revivable: &[Proposed, Hearing, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, SenateCommittee, SenateR2, SenateR3, HouseSenateAmendments, JointCommittee, Withheld, HouseReaffirm],
        resumes: &[Lapsed],
        // s.138: 180 days, 10 for a money bill.
        waits: &[
            Wait { after: Withheld, before: HouseReaffirm, days: 180, money_bill_days: Some(10), section: "s.138" },
            PM_WAITS_5_DAYS,
        ],
        // s.136: 60 days of session (30 for a money bill), +30 by the Senate's resolution.
        clocks: &[
            Clock { stage: SenateR1, from: None, max_days: None, money_bill_max_days: None, section: "s.136" },
            PRESENTED_WITHIN_90_DAYS,
            PRESENTED_AGAIN_WITHIN_30_DAYS,
        ],
    },
    // พ.ร.ป. (ss.131–132): the three readings in a joint sitting within 180 days
    // (or it is deemed approved as introduced); the approved draft goes to the
    // Supreme Court, the Constitutional Court or the independent organ concerned,
    // which have 10 days to object; on an objection the joint sitting reconsiders
    // within 30 days and may amend it. The Court reviews the draft only on a
    // referral under s.148.
    TypeRules {
        bill_type: BillType::OrganicAct,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3, OrganOpinions, PresentedForAssent, RoyalAssent, Published, Enacted],
        rules: &{
            const TAIL: [Rule; 4] = assent_tail!();
            [
                Rule { from: Proposed, to: &[Hearing, JointR1, Rejected] },
                Rule { from: Hearing, to: &[JointR1] },
                Rule { from: JointR1, to: &[ParliamentCommittee, Rejected, Merged] },
                Rule { from: ParliamentCommittee, to: &[JointR2] },
                Rule { from: JointR2, to: &[JointR3] },
                Rule { from: JointR3, to: &[OrganOpinions, Rejected] },
                // No objection in 10 days: on to a s.148 referral or presentation.
                Rule { from: OrganOpinions, to: &[PresentedForAssent, ConstCourt, ObjectionReconsider] },
                Rule { from: ObjectionReconsider, to: &[PresentedForAssent, ConstCourt] },
                Rule { from: ConstCourt, to: &[PresentedForAssent, Rejected] },
                TAIL[0], TAIL[1], TAIL[2], TAIL[3],
            ]
        },
        // s.132 (1): the joint sitting's 180 days pass.
        deemed: &[
            Rule { from: Proposed, to: &[OrganOpinions] },
            Rule { from: Hearing, to: &[OrganOpinions] },
            Rule { from: JointR1, to: &[OrganOpinions] },
            Rule { from: ParliamentCommittee, to: &[OrganOpinions] },
            Rule { from: JointR2, to: &[OrganOpinions] },
            Rule { from: JointR3, to: &[OrganOpinions] },
            Rule { from: PresentedForAssent, to: &[Published] },
        ],
        withdraw_from: JOINT_READINGS,
        lapse_from: &[Proposed, Hearing, JointR1, ParliamentCommittee, JointR2, JointR3, VetoReconsider],
        revivable: JOINT_READINGS,
        resumes: &[Lapsed],
        waits: &[],
        clocks: &[
            clock(Proposed, 180, "s.132 (1)"),
            // s.132 (2): sent "ภายในสิบห้าวันนับแต่วันที่รัฐสภาให้ความเห็นชอบ", then 10 days "นับแต่วันที่
            // ได้รับร่าง": from the approval (the move), at most 15 + 10 days.
            clock(OrganOpinions, 25, "s.132 (2)"),
            clock(ObjectionReconsider, 30, "s.132 (3)"),
            PRESENTED_WITHIN_90_DAYS,
            PRESENTED_AGAIN_WITHIN_30_DAYS,
        ],
    },
    // Budget bill (s.143): the House has 105 days, the Senate 20 and cannot amend.
    TypeRules {
        bill_type: BillType::Budget,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, Approved, PresentedForAssent, RoyalAssent, Published, Enacted],
        rules: &{
            const TAIL: [Rule; 4] = assent_tail!();
            [
                Rule { from: Proposed, to: &[HouseR1] },
                Rule { from: HouseR1, to: &[HouseCommittee, Rejected] },
                Rule { from: HouseCommittee, to: &[HouseR2] },
                Rule { from: HouseR2, to: &[HouseR3] },
                Rule { from: HouseR3, to: &[SenateR1, Rejected] },
                Rule { from: SenateR1, to: &[Approved, Withheld] },
                // s.143: the House may reaffirm it at once.
                Rule { from: Withheld, to: &[HouseReaffirm] },
                Rule { from: HouseReaffirm, to: &[Approved, Rejected] },
                Rule { from: Approved, to: &[PresentedForAssent, ConstCourt] },
                Rule { from: ConstCourt, to: &[PresentedForAssent, Rejected] },
                TAIL[0], TAIL[1], TAIL[2], TAIL[3],
            ]
        },
        // s.143: the House's 105 days pass (the bill goes to the Senate as the
        // House sent it), or the Senate's 20 days.
        deemed: &[
            // s.143 ¶2: also a House that never took the bill up ("พิจารณา…ไม่แล้วเสร็จภายในกำหนดเวลา").
            Rule { from: Proposed, to: &[SenateR1] },
            Rule { from: HouseR1, to: &[SenateR1] },
            Rule { from: HouseCommittee, to: &[SenateR1] },
            Rule { from: HouseR2, to: &[SenateR1] },
            Rule { from: HouseR3, to: &[SenateR1] },
            Rule { from: SenateR1, to: &[Approved] },
            Rule { from: PresentedForAssent, to: &[Published] },
        ],
        withdraw_from: &[Proposed, HouseR1, HouseCommittee, HouseR2, HouseR3],
        lapse_from: &[Proposed, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, Withheld, HouseReaffirm, VetoReconsider],
        revivable: &[Proposed, HouseR1, HouseCommittee, HouseR2, HouseR3, SenateR1, Withheld, HouseReaffirm],
        resumes: &[Lapsed],
        waits: &[PM_WAITS_5_DAYS],
        clocks: &[
            clock(Proposed, 105, "s.143"),
            clock(SenateR1, 20, "s.143"),
            PRESENTED_WITHIN_90_DAYS,
            PRESENTED_AGAIN_WITHIN_30_DAYS,
        ],
    },
    // พ.ร.ก. (ss.172–173): in force at once, then approved or rejected by each
    // House in turn. Before either House approves it, members may refer it to the
    // Court (s.173); consideration waits, then resumes where it stopped. It does
    // not lapse with the House and cannot be withdrawn.
    TypeRules {
        bill_type: BillType::EmergencyDecree,
        initial: Enacted,
        terminal: &[Confirmed, Rejected],
        main_path: &[Enacted, HouseApproval, SenateApproval, Confirmed],
        rules: &[
            Rule { from: Enacted, to: &[HouseApproval, ConstCourt] },
            Rule { from: HouseApproval, to: &[SenateApproval, Rejected, ConstCourt] },
            // The Senate disapproves: the House may reaffirm it (s.172).
            Rule { from: SenateApproval, to: &[Confirmed, HouseReaffirm, ConstCourt] },
            Rule { from: HouseReaffirm, to: &[Confirmed, Rejected] },
            // s.173: not an emergency decree, no force from the start; or back
            // to the House that deferred it.
            Rule { from: ConstCourt, to: &[HouseApproval, SenateApproval, Rejected] },
        ],
        deemed: &[],
        withdraw_from: &[],
        lapse_from: &[],
        revivable: &[],
        resumes: &[ConstCourt],
        waits: &[],
        // s.173: the Speaker forwards "ภายในสามวัน", the Court has 60 days "นับแต่วันที่ได้รับเรื่อง":
        // from the referral (the move), at most 3 + 60 days.
        clocks: &[clock(ConstCourt, 63, "s.173")],
    },
    // Constitutional amendment (s.256): joint sitting, special thresholds, waits
    // of 15 days before the third reading and before presentation, and a
    // referendum for the subjects of s.256 (8) (see [`REFERENDUM_SUBJECTS`]).
    TypeRules {
        bill_type: BillType::ConstitutionalAmendment,
        initial: Proposed,
        terminal: ENDED,
        main_path: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3, Approved, PresentedForAssent, RoyalAssent, Published, Enacted],
        rules: &{
            [
                Rule { from: Proposed, to: &[JointR1, Rejected] },
                Rule { from: JointR1, to: &[ParliamentCommittee, Rejected] },
                Rule { from: ParliamentCommittee, to: &[JointR2] },
                Rule { from: JointR2, to: &[JointR3] },
                // The third reading's vote: approved (waiting 15 days, s.256 (7)) or rejected.
                Rule { from: JointR3, to: &[Approved, Rejected] },
                Rule { from: Approved, to: &[PresentedForAssent, Referendum, ConstCourt] },
                // s.256 (9): a referral is open "ก่อนนายกรัฐมนตรีนำความกราบบังคมทูล", so after a
                // referendum too.
                Rule { from: Referendum, to: &[PresentedForAssent, ConstCourt, Rejected] },
                // s.256 (9): the Court rules whether a referendum is needed.
                Rule { from: ConstCourt, to: &[PresentedForAssent, Referendum, Rejected] },
                // s.256 (7): "ให้นำความในมาตรา ๘๑ มาใช้บังคับโดยอนุโลม", s.81 only: no s.146 veto
                // override (no VETO_RECONSIDER) and no deemed publication. A draft the King does
                // not sign stays at PRESENTED_FOR_ASSENT until a dissolution lapses it (s.147 ¶1).
                Rule { from: PresentedForAssent, to: &[RoyalAssent] },
                Rule { from: RoyalAssent, to: &[Published] },
                Rule { from: Published, to: &[Enacted] },
            ]
        },
        deemed: &[],
        withdraw_from: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3],
        // s.147 ¶1: "ที่รัฐสภาให้ความเห็นชอบแล้วแต่พระมหากษัตริย์ไม่ทรงเห็นชอบด้วย หรือเมื่อพ้นเก้าสิบวัน
        // แล้วมิได้พระราชทานคืนมา": an unsigned draft lapses (never revived).
        lapse_from: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3, PresentedForAssent],
        revivable: &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3],
        resumes: &[Lapsed],
        waits: &[
            // s.256 (5): the third reading's vote only 15 days after the second reading
            // ended, which is when the bill entered JOINT_R3 (the stage convention).
            Wait { after: JointR3, before: Approved, days: 15, money_bill_days: None, section: "s.256 (5)" },
            Wait { after: JointR3, before: Rejected, days: 15, money_bill_days: None, section: "s.256 (5)" },
            Wait { after: Approved, before: PresentedForAssent, days: 15, money_bill_days: None, section: "s.256 (7)" },
        ],
        // s.147 ¶1 counts 90 days from presentation for an amendment too.
        // s.256 (9): 30 days "นับแต่วันที่ได้รับเรื่อง", but the text sets no time for forwarding
        // the petition, so no calendar bound from the move holds: only "after the move".
        clocks: &[
            Clock { stage: ConstCourt, from: None, max_days: None, money_bill_max_days: None, section: "s.256 (9)" },
            clock(PresentedForAssent, 90, "s.147"),
        ],
    },
];

/// What a constitutional amendment is about that puts it to a referendum
/// before it is presented for royal assent (s.256 (8)).
pub const REFERENDUM_SUBJECTS: &[(&str, &str)] = &[
    ("หมวด 1 บททั่วไป", "Chapter 1, General Provisions"),
    ("หมวด 2 พระมหากษัตริย์", "Chapter 2, The King"),
    (
        "หมวด 15 การแก้ไขเพิ่มเติมรัฐธรรมนูญ",
        "Chapter 15, Amendment of the Constitution",
    ),
    (
        "คุณสมบัติหรือลักษณะต้องห้ามของผู้ดำรงตำแหน่งต่าง ๆ",
        "the qualifications and prohibitions of holders of office",
    ),
    (
        "หน้าที่หรืออำนาจของศาลหรือองค์กรอิสระ",
        "the duties or powers of the courts or independent organs",
    ),
    (
        "เรื่องที่ทำให้ศาลหรือองค์กรอิสระไม่อาจปฏิบัติตามหน้าที่หรืออำนาจได้",
        "a matter that leaves a court or independent organ unable to act",
    ),
];

/// Where a bill goes back to when it leaves a stage of [`TypeRules::resumes`]:
/// a revived bill (s.147) to the stage it lapsed at; an emergency decree after
/// the Court (s.173) to the House that deferred it (the House, if it had not
/// yet taken it up).
pub fn resume_stage(bill_type: BillType, left: Stage) -> Stage {
    match (bill_type, left) {
        (BillType::EmergencyDecree, Enacted) => HouseApproval,
        _ => left,
    }
}

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
    #[error("a {bill_type} bill is not deemed approved from {from} to {to}: no deadline of the Constitution makes that move")]
    NotDeemable {
        bill_type: BillType,
        from: Stage,
        to: Stage,
    },
    #[error("a {bill_type} bill moving to {to} does not wait on a deadline the Constitution sets")]
    DeadlineNotSet { bill_type: BillType, to: Stage },
    #[error("the deadline must fall after the move{} ({section})", .max_days.map(|d| format!(" and at most {d} days after it")).unwrap_or_default())]
    DeadlineOutOfRange {
        max_days: Option<u32>,
        section: &'static str,
    },
    #[error(
        "{to} may come only once {days} days have passed after {after} ({section}; the first day is not counted, CCC s.193/3); the earliest day is {earliest}"
    )]
    TooEarly {
        after: Stage,
        to: Stage,
        days: u32,
        section: &'static str,
        earliest: chrono::NaiveDate,
    },
    #[error("a bill that lapsed at {at} cannot be revived: s.147 revives only a bill Parliament had not yet approved")]
    NotRevivable { at: Stage },
    #[error("the bill left {from}, so it goes back to {expected}, not {got}")]
    WrongReturn {
        from: Stage,
        expected: Stage,
        got: Stage,
    },
    #[error("a bill is published as if signed (s.146) only after Parliament reaffirmed it and re-presented it (from VETO_RECONSIDER), not after a first presentation; one not returned within 90 days goes to VETO_RECONSIDER")]
    DeemedWithoutReaffirmation,
    #[error("a bill becomes a money bill only by the Speaker's notice when it is sent to the Senate (s.136: \"ให้ถือเป็นเด็ดขาด\"), on the move into SENATE_R1 or before; this one entered SENATE_R1 on {senate} as a bill that is not")]
    MoneyBillTooLate { senate: chrono::NaiveDate },
    #[error("returned_on is before the bill was withheld ({withheld}); the Senate sends back a bill it has withheld (s.138 (1))")]
    ReturnedBeforeWithheld { withheld: chrono::NaiveDate },
    #[error("deemed approved on {on}, before its deadline of {deadline} has passed")]
    DeemedBeforeDeadline {
        on: chrono::NaiveDate,
        deadline: chrono::NaiveDate,
    },
}

impl TransitionError {
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::BadInitialStage { .. } => "bad_initial_stage",
            TransitionError::FromTerminal { .. } => "from_terminal_stage",
            TransitionError::Illegal { .. } => "illegal_transition",
            TransitionError::NotDeemable { .. } | TransitionError::DeemedWithoutReaffirmation => {
                "not_deemable"
            }
            TransitionError::DeadlineNotSet { .. } => "deadline_not_set",
            TransitionError::DeadlineOutOfRange { .. } => "deadline_out_of_range",
            TransitionError::TooEarly { .. } => "wait_not_over",
            TransitionError::MoneyBillTooLate { .. } => "money_bill_too_late",
            TransitionError::ReturnedBeforeWithheld { .. } => "bad_returned_on",
            TransitionError::WrongReturn { .. } => "wrong_return_stage",
            TransitionError::NotRevivable { .. } => "not_revivable",
            TransitionError::DeemedBeforeDeadline { .. } => "deemed_before_deadline",
        }
    }

    /// The failing field of a stage event.
    pub fn field(&self) -> &'static str {
        match self {
            TransitionError::NotDeemable { .. }
            | TransitionError::DeemedWithoutReaffirmation
            | TransitionError::DeemedBeforeDeadline { .. } => "data.deemed",
            TransitionError::DeadlineNotSet { .. } | TransitionError::DeadlineOutOfRange { .. } => {
                "data.deadline"
            }
            TransitionError::MoneyBillTooLate { .. } => "data.money_bill",
            TransitionError::ReturnedBeforeWithheld { .. } => "data.returned_on",
            _ => "data.to_stage",
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

fn rows(rules: &'static [Rule], from: Stage) -> impl Iterator<Item = Stage> {
    rules
        .iter()
        .filter(move |r| r.from == from)
        .flat_map(|r| r.to.iter().copied())
}

impl TypeRules {
    pub fn is_terminal(&self, stage: Stage) -> bool {
        self.terminal.contains(&stage)
    }

    /// The stages a bill at `from` may move to by a decision: the table's rows,
    /// withdrawal, lapse, and a lapsed bill's revival.
    pub fn next(&self, from: Stage) -> Vec<Stage> {
        if self.is_terminal(from) {
            return Vec::new();
        }
        let mut next: Vec<Stage> = rows(self.rules, from).collect();
        if self.withdraw_from.contains(&from) {
            next.push(Withdrawn);
        }
        if self.lapse_from.contains(&from) {
            next.push(Lapsed);
        }
        if from == Lapsed {
            next.extend(self.revivable.iter().copied());
        }
        next.dedup();
        next
    }

    /// The stages a bill at `from` may move to when it is deemed approved.
    pub fn next_deemed(&self, from: Stage) -> Vec<Stage> {
        rows(self.deemed, from).collect()
    }

    /// The deadline rule of a move into `to`, if the law sets one (from any
    /// stage; see [`TypeRules::clock_from`] for the one a given move uses).
    pub fn clock(&self, to: Stage) -> Option<&Clock> {
        self.clocks.iter().find(|c| c.stage == to)
    }

    /// The deadline rule of a move from `from` into `to`: the clock for that
    /// `from` if there is one (s.146: 30 days on a second presentation), else
    /// the clock of `to` from any stage.
    pub fn clock_from(&self, from: Option<Stage>, to: Stage) -> Option<&Clock> {
        self.clocks
            .iter()
            .find(|c| c.stage == to && c.from.is_some() && c.from == from)
            .or_else(|| {
                self.clocks
                    .iter()
                    .find(|c| c.stage == to && c.from.is_none())
            })
    }

    /// Checks a move's `deadline` (a Bangkok date) against the clock of the
    /// move from `from` into `to`.
    pub fn check_deadline(
        &self,
        from: Option<Stage>,
        to: Stage,
        on: chrono::NaiveDate,
        deadline: chrono::NaiveDate,
        money_bill: bool,
    ) -> Result<(), TransitionError> {
        let Some(clock) = self.clock_from(from, to) else {
            return Err(TransitionError::DeadlineNotSet {
                bill_type: self.bill_type,
                to,
            });
        };
        let max_days = if money_bill {
            clock.money_bill_max_days
        } else {
            clock.max_days
        };
        let days = (deadline - on).num_days();
        if days < 1 || max_days.is_some_and(|max| days > i64::from(max)) {
            return Err(TransitionError::DeadlineOutOfRange {
                max_days,
                section: clock.section,
            });
        }
        Ok(())
    }
}

/// Checks a move of a `bill_type` bill from `from` (`None` for a new bill) to
/// `to`; `deemed` says the move is a deemed approval. These are the rules that
/// need nothing but the event; [`crate::progress::BillProgress`] adds the ones
/// that need the bill's history (waits, returns, deadlines passed).
pub fn check_transition(
    bill_type: BillType,
    from: Option<Stage>,
    to: Stage,
    deemed: bool,
) -> Result<(), TransitionError> {
    let rules = rules_for(bill_type);
    let Some(from) = from else {
        return if to == rules.initial && !deemed {
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
    let (allowed, error) = if deemed {
        (
            rules.next_deemed(from),
            TransitionError::NotDeemable {
                bill_type,
                from,
                to,
            },
        )
    } else {
        (
            rules.next(from),
            TransitionError::Illegal {
                bill_type,
                from,
                to,
            },
        )
    };
    if allowed.contains(&to) {
        Ok(())
    } else {
        Err(error)
    }
}

fn codes(stages: &[Stage]) -> String {
    if stages.is_empty() {
        return "none".into();
    }
    stages
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dashboard's stage tables (hub/web/dashboard.js): every stage's labels,
/// and each bill type's usual path, as JavaScript.
pub fn dashboard_tables_js() -> String {
    let mut out = String::from("const STAGES = {\n");
    for stage in Stage::ALL {
        let (th, en) = stage.label();
        let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
        out.push_str(&format!("  {stage}: [{}, {}],\n", quote(th), quote(en)));
    }
    out.push_str("};\n\nconst PATHS = {\n");
    for rules in RULES {
        let path: Vec<String> = rules.main_path.iter().map(|s| format!("'{s}'")).collect();
        out.push_str(&format!("  {}: [{}],\n", rules.bill_type, path.join(", ")));
    }
    out.push_str("};\n");
    out
}

/// Every stage code with its Thai and English labels, as a Markdown table for
/// docs/EVENTS.md.
pub fn stages_markdown() -> String {
    let mut out = String::from("| code | Thai | English |\n|---|---|---|\n");
    for stage in Stage::ALL {
        let (th, en) = stage.label();
        out.push_str(&format!("| `{stage}` | {th} | {en} |\n"));
    }
    out.push('\n');
    out
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
            codes(rules.terminal)
        );
        let _ = writeln!(
            out,
            "| from | may move to | when deemed approved (`deemed: true`) |\n|---|---|---|"
        );
        for from in Stage::ALL {
            let next = rules.next(*from);
            let deemed = rules.next_deemed(*from);
            if next.is_empty() && deemed.is_empty() {
                continue;
            }
            let deemed = if deemed.is_empty() {
                String::new()
            } else {
                codes(&deemed)
            };
            let _ = writeln!(out, "| `{from}` | {} | {deemed} |", codes(&next));
        }
        let _ = writeln!(
            out,
            "\n- Withdrawal (`WITHDRAWN`) from: {}.",
            codes(rules.withdraw_from)
        );
        let _ = writeln!(
            out,
            "- Lapse on dissolution (`LAPSED`, s.147) from: {}.",
            codes(rules.lapse_from)
        );
        for stage in rules.resumes {
            let _ = writeln!(
                out,
                "- Leaving `{stage}` other than to an end, the bill goes back to the stage it came from{}.",
                if *bill_type == BillType::EmergencyDecree {
                    " (`HOUSE_APPROVAL` if it came from `ENACTED`)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            out,
            "- Revival of a lapsed bill (s.147) into: {}.",
            codes(rules.revivable)
        );
        for w in rules.waits {
            let money = w
                .money_bill_days
                .map(|d| format!("; {d} for a money bill, D+{}", d + 1))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{}` once {} days have passed after `{}`, the first not counted (CCC s.193/3): day D+{} at the earliest ({}{money}).",
                w.before, w.days, w.after, w.days + 1, w.section
            );
        }
        for c in rules.clocks {
            let limit = match (c.max_days, c.money_bill_max_days) {
                (Some(d), Some(m)) if d == m => format!("at most {d} days after the move"),
                (Some(d), Some(m)) => {
                    format!("at most {d} days after the move, {m} for a money bill")
                }
                _ => "any later day (the period counts days of session)".to_string(),
            };
            let from = c.from.map(|f| format!(" from `{f}`")).unwrap_or_default();
            let _ = writeln!(
                out,
                "- `deadline` on entering `{}`{from}: {limit} ({}).",
                c.stage, c.section
            );
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
            check_transition(bill_type, from, to, false)?;
            from = Some(to);
        }
        Ok(())
    }

    fn legal(bill_type: BillType, from: Stage, to: Stage) -> bool {
        check_transition(bill_type, Some(from), to, false).is_ok()
    }

    fn deemable(bill_type: BillType, from: Stage, to: Stage) -> bool {
        check_transition(bill_type, Some(from), to, true).is_ok()
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
    fn senate_amendments_go_back_to_the_house_then_a_joint_committee() {
        // s.137 (3).
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
            HouseSenateAmendments,
            JointCommittee,
            Approved,
            PresentedForAssent,
        ];
        assert_eq!(walk(BillType::Act, &path), Ok(()));
        assert!(legal(BillType::Act, HouseSenateAmendments, Approved));
        assert!(!legal(BillType::Act, HouseSenateAmendments, Rejected));
        assert!(!legal(BillType::Act, Withheld, HouseSenateAmendments));
    }

    #[test]
    fn a_withheld_bill_is_reaffirmed_by_the_house_not_sent_to_a_joint_committee() {
        // s.138.
        let path = [
            Proposed,
            HouseR1,
            HouseCommittee,
            HouseR2,
            HouseR3,
            SenateR1,
            Withheld,
            HouseReaffirm,
            Approved,
            PresentedForAssent,
        ];
        assert_eq!(walk(BillType::Act, &path), Ok(()));
        assert!(!legal(BillType::Act, HouseReaffirm, JointCommittee));
        assert!(!legal(BillType::Act, SenateR3, HouseReaffirm));
        assert!(legal(BillType::Act, JointCommittee, Withheld));
    }

    #[test]
    fn skipping_a_reading_is_illegal() {
        assert_eq!(
            check_transition(BillType::Act, Some(HouseR1), HouseR3, false),
            Err(TransitionError::Illegal {
                bill_type: BillType::Act,
                from: HouseR1,
                to: HouseR3
            })
        );
        assert_eq!(
            check_transition(BillType::Act, Some(Proposed), PresentedForAssent, false)
                .unwrap_err()
                .code(),
            "illegal_transition"
        );
    }

    #[test]
    fn a_new_bill_must_start_at_its_initial_stage() {
        assert_eq!(
            check_transition(BillType::Act, None, Proposed, false),
            Ok(())
        );
        assert_eq!(
            check_transition(BillType::Act, None, HouseR2, false),
            Err(TransitionError::BadInitialStage {
                bill_type: BillType::Act,
                expected: Proposed,
                got: HouseR2
            })
        );
        assert_eq!(
            check_transition(BillType::EmergencyDecree, None, Enacted, false),
            Ok(())
        );
    }

    #[test]
    fn terminal_stages_have_no_way_out() {
        for stage in [Enacted, Rejected, Merged, Withdrawn] {
            assert_eq!(
                check_transition(BillType::Act, Some(stage), HouseR1, false)
                    .unwrap_err()
                    .code(),
                "from_terminal_stage",
                "{stage}"
            );
        }
    }

    #[test]
    fn each_bill_type_has_its_own_exits() {
        // Withdrawal and lapse are exactly where each type's table says, and
        // never once Parliament has approved the bill (s.147).
        for rules in RULES {
            let t = rules.bill_type;
            for from in Stage::ALL
                .iter()
                .copied()
                .filter(|s| !rules.is_terminal(*s))
            {
                assert_eq!(
                    legal(t, from, Withdrawn),
                    rules.withdraw_from.contains(&from),
                    "{t} {from} -> WITHDRAWN"
                );
                assert_eq!(
                    legal(t, from, Lapsed),
                    rules.lapse_from.contains(&from),
                    "{t} {from} -> LAPSED"
                );
            }
            for approved in [
                PresentedForAssent,
                RoyalAssent,
                Published,
                ConstCourt,
                Referendum,
            ] {
                // s.147 ¶1: an amendment has no VETO_RECONSIDER, so its unsigned
                // draft lapses from PRESENTED_FOR_ASSENT (and is not revivable).
                let unsigned_amendment =
                    t == BillType::ConstitutionalAmendment && approved == PresentedForAssent;
                assert_eq!(
                    legal(t, approved, Lapsed),
                    unsigned_amendment,
                    "{t} {approved} lapsed"
                );
                assert!(!legal(t, approved, Withdrawn), "{t} {approved} withdrawn");
            }
        }
        // An emergency decree is law already: it neither lapses nor is withdrawn.
        let decree = rules_for(BillType::EmergencyDecree);
        assert!(decree.withdraw_from.is_empty() && decree.lapse_from.is_empty());
        assert!(legal(BillType::Act, SenateCommittee, Lapsed));
        assert!(legal(BillType::Act, SenateR2, Withdrawn));
    }

    #[test]
    fn a_lapsed_bill_may_be_revived_into_the_process() {
        // s.147 paragraph two: LAPSED is not terminal.
        let rules = rules_for(BillType::Act);
        assert!(!rules.is_terminal(Lapsed));
        assert!(legal(BillType::Act, Lapsed, SenateR1));
        assert!(legal(BillType::ConstitutionalAmendment, Lapsed, JointR2));
        assert!(!legal(BillType::Act, Lapsed, PresentedForAssent));
        assert!(!legal(BillType::Act, Lapsed, Enacted));
    }

    #[test]
    fn an_approved_bill_waits_where_it_can_neither_lapse_nor_be_revived() {
        // s.147: only drafts "ที่รัฐสภายังมิได้ให้ความเห็นชอบ" lapse. The vote moves a bill
        // out of its reading stage, so an approved bill waiting for presentation
        // (s.145, s.256 (7)) is at APPROVED, never at a reading stage.
        for rules in RULES {
            assert!(!rules.lapse_from.contains(&Approved), "{}", rules.bill_type);
            assert!(!rules.revivable.contains(&Approved), "{}", rules.bill_type);
            for from in [
                SenateR3,
                JointR3,
                HouseSenateAmendments,
                JointCommittee,
                HouseReaffirm,
            ] {
                assert!(
                    !rules.next(from).contains(&PresentedForAssent),
                    "{} {from} -> PRESENTED_FOR_ASSENT skips APPROVED",
                    rules.bill_type
                );
            }
        }
        assert!(legal(BillType::Act, SenateR3, Approved));
        assert!(legal(BillType::Act, SenateR3, Lapsed));
        assert!(!legal(BillType::Act, Approved, Lapsed));
        assert!(!legal(BillType::ConstitutionalAmendment, Approved, Lapsed));
    }

    #[test]
    fn an_amendment_may_go_to_the_court_after_its_referendum() {
        // s.256 (9): any time before the Prime Minister presents it.
        assert!(legal(
            BillType::ConstitutionalAmendment,
            Referendum,
            ConstCourt
        ));
        assert!(legal(
            BillType::ConstitutionalAmendment,
            Approved,
            ConstCourt
        ));
    }

    #[test]
    fn lapsing_says_both_causes_of_s147() {
        let (th, en) = Lapsed.label();
        assert!(th.contains("สิ้นอายุ") && th.contains("ยุบ"), "{th}");
        assert!(en.contains("end of the House's term") && en.contains("dissolution"));
    }

    #[test]
    fn the_joint_committee_is_no_joint_sitting() {
        // s.137 (3): a committee of both Houses; each House votes on its draft.
        use crate::event::Chamber;
        assert_eq!(JointCommittee.chamber(), None);
        assert_eq!(JointR3.chamber(), Some(Chamber::Joint));
        assert_eq!(VetoReconsider.chamber(), Some(Chamber::Joint));
    }

    #[test]
    fn deemed_approvals_are_only_where_a_deadline_makes_them() {
        // s.137: the Senate's deadline passes.
        assert!(deemable(BillType::Act, SenateR1, Approved));
        assert!(!legal(BillType::Act, SenateR1, Approved));
        assert!(!deemable(BillType::Act, SenateR1, PresentedForAssent));
        assert_eq!(
            check_transition(BillType::Act, Some(HouseR3), SenateR1, true)
                .unwrap_err()
                .code(),
            "not_deemable"
        );
        // s.143: the House's 105 days, then the Senate's 20 days.
        assert!(deemable(BillType::Budget, HouseCommittee, SenateR1));
        // s.143: the 105 days pass before the House even reads the bill (I4).
        assert!(deemable(BillType::Budget, Proposed, SenateR1));
        assert!(!legal(BillType::Budget, HouseCommittee, SenateR1));
        assert!(deemable(BillType::Budget, SenateR1, Approved));
        // s.132 (1): the joint sitting's 180 days pass; the organs' 10 days and
        // the reconsideration's 30 deem nothing.
        assert!(deemable(BillType::OrganicAct, JointR2, OrganOpinions));
        assert!(!legal(BillType::OrganicAct, JointR2, OrganOpinions));
        assert!(!deemable(
            BillType::OrganicAct,
            ObjectionReconsider,
            PresentedForAssent
        ));
        assert!(!deemable(
            BillType::OrganicAct,
            OrganOpinions,
            PresentedForAssent
        ));
        // s.146: re-presented and not signed within 30 days.
        assert!(deemable(BillType::Act, PresentedForAssent, Published));
        assert!(!legal(BillType::Act, PresentedForAssent, Published));
        assert!(!deemable(
            BillType::EmergencyDecree,
            HouseApproval,
            SenateApproval
        ));
    }

    #[test]
    fn budget_senate_cannot_amend() {
        assert!(!legal(BillType::Budget, SenateR1, SenateCommittee));
        assert!(!legal(BillType::Budget, SenateR1, HouseSenateAmendments));
        assert!(legal(BillType::Budget, SenateR1, Approved));
        assert!(!legal(BillType::Budget, Proposed, Hearing));
    }

    #[test]
    fn organic_act_reaches_royal_assent_through_the_comments_not_the_court() {
        // s.132: comments by the courts and the independent organ; the Court
        // reviews only on a referral (s.148).
        let path = [
            Proposed,
            JointR1,
            ParliamentCommittee,
            JointR2,
            JointR3,
            OrganOpinions,
            PresentedForAssent,
            RoyalAssent,
            Published,
            Enacted,
        ];
        assert_eq!(walk(BillType::OrganicAct, &path), Ok(()));
        // s.132 (3): an objection, and the joint sitting reconsiders.
        let objection = [
            JointR3,
            OrganOpinions,
            ObjectionReconsider,
            PresentedForAssent,
        ];
        assert!(objection
            .windows(2)
            .all(|w| legal(BillType::OrganicAct, w[0], w[1])));
        assert!(legal(BillType::OrganicAct, OrganOpinions, ConstCourt));
        assert!(legal(BillType::OrganicAct, ConstCourt, PresentedForAssent));
        assert!(!legal(BillType::OrganicAct, JointR3, ConstCourt));
        assert!(!legal(BillType::OrganicAct, JointR3, PresentedForAssent));
        assert!(!legal(BillType::OrganicAct, Proposed, HouseR1));
    }

    #[test]
    fn an_emergency_decree_can_reach_the_court_before_either_house_approves_it() {
        // s.173.
        for from in [Enacted, HouseApproval, SenateApproval] {
            assert!(legal(BillType::EmergencyDecree, from, ConstCourt), "{from}");
        }
        assert!(legal(BillType::EmergencyDecree, ConstCourt, SenateApproval));
        assert!(legal(BillType::EmergencyDecree, ConstCourt, Rejected));
        assert!(!legal(BillType::EmergencyDecree, ConstCourt, Confirmed));
        let path = [
            Enacted,
            HouseApproval,
            SenateApproval,
            HouseReaffirm,
            Confirmed,
        ];
        assert_eq!(walk(BillType::EmergencyDecree, &path), Ok(()));
        assert!(check_transition(BillType::EmergencyDecree, None, Proposed, false).is_err());
        assert_eq!(
            check_transition(BillType::EmergencyDecree, Some(Confirmed), Rejected, false)
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
            Approved,
            PresentedForAssent,
            RoyalAssent,
            Published,
            Enacted,
        ];
        assert_eq!(walk(BillType::ConstitutionalAmendment, &path), Ok(()));
        assert!(!legal(BillType::ConstitutionalAmendment, JointR1, JointR3));
        // s.256 (8), (9): a referendum, possibly after a Court ruling.
        assert!(legal(
            BillType::ConstitutionalAmendment,
            Approved,
            Referendum
        ));
        assert!(legal(
            BillType::ConstitutionalAmendment,
            ConstCourt,
            Referendum
        ));
        assert!(legal(
            BillType::ConstitutionalAmendment,
            Referendum,
            PresentedForAssent
        ));
    }

    #[test]
    fn presented_is_not_assent_given() {
        // ss.145–146.
        assert!(legal(BillType::Act, PresentedForAssent, RoyalAssent));
        assert!(legal(BillType::Act, PresentedForAssent, VetoReconsider));
        assert!(legal(BillType::Act, RoyalAssent, Published));
        assert!(!legal(BillType::Act, RoyalAssent, VetoReconsider));
        assert!(legal(BillType::Act, VetoReconsider, PresentedForAssent));
    }

    #[test]
    fn deadlines_are_where_the_law_sets_them_and_no_longer() {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 10).unwrap();
        let plus = |n: u64| day.checked_add_days(chrono::Days::new(n)).unwrap();
        let act = rules_for(BillType::Act);
        // s.146: 90 days on a first presentation, 30 on the second, after a reaffirmation.
        let again = Some(VetoReconsider);
        assert_eq!(
            act.check_deadline(Some(SenateR3), PresentedForAssent, day, plus(90), false),
            Ok(())
        );
        assert_eq!(
            act.check_deadline(again, PresentedForAssent, day, plus(30), false),
            Ok(())
        );
        assert_eq!(
            act.check_deadline(again, PresentedForAssent, day, plus(31), false)
                .unwrap_err()
                .code(),
            "deadline_out_of_range"
        );
        // s.136: 60 days of session (30 for a money bill, +30): a recess can
        // push the calendar day out by any amount, but never before the move.
        assert_eq!(
            act.check_deadline(None, SenateR1, day, plus(60), false),
            Ok(())
        );
        assert_eq!(
            act.check_deadline(None, SenateR1, day, plus(150), true),
            Ok(())
        );
        assert_eq!(
            act.check_deadline(None, SenateR1, day, day, false)
                .unwrap_err()
                .code(),
            "deadline_out_of_range"
        );
        assert_eq!(
            act.check_deadline(None, HouseR1, day, plus(10), false)
                .unwrap_err()
                .code(),
            "deadline_not_set"
        );
        // s.143: the Senate has 20 days for the budget; s.146: the King 90.
        let budget = rules_for(BillType::Budget);
        assert!(budget
            .check_deadline(None, SenateR1, day, plus(20), true)
            .is_ok());
        assert!(budget
            .check_deadline(None, SenateR1, day, plus(21), true)
            .is_err());
        assert!(budget
            .check_deadline(None, Proposed, day, plus(105), true)
            .is_ok());
        assert!(act
            .check_deadline(None, PresentedForAssent, day, plus(90), false)
            .is_ok());
        assert!(act
            .check_deadline(None, PresentedForAssent, day, plus(91), false)
            .is_err());
        // s.132: 180 days for the joint sitting, 10 to object, 30 to reconsider.
        let organic = rules_for(BillType::OrganicAct);
        assert!(organic
            .check_deadline(None, Proposed, day, plus(180), false)
            .is_ok());
        assert!(organic
            .check_deadline(None, OrganOpinions, day, plus(26), false)
            .is_err());
        // s.132 (2): 15 days to send, then 10 from receipt (I5).
        assert!(organic
            .check_deadline(None, OrganOpinions, day, plus(25), false)
            .is_ok());
        let decree = rules_for(BillType::EmergencyDecree);
        assert!(decree
            .check_deadline(None, ConstCourt, day, plus(63), false)
            .is_ok());
        assert!(decree
            .check_deadline(None, ConstCourt, day, plus(64), false)
            .is_err());
        assert!(organic
            .check_deadline(None, ObjectionReconsider, day, plus(30), false)
            .is_ok());
    }

    #[test]
    fn every_rule_names_stages_that_are_not_terminal_sources() {
        for rules in RULES {
            for rule in rules.rules.iter().chain(rules.deemed) {
                assert!(
                    !rules.is_terminal(rule.from),
                    "{:?} {}",
                    rules.bill_type,
                    rule.from
                );
            }
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
        assert!("HOUSE_RECONSIDER".parse::<Stage>().is_err());
    }
}
