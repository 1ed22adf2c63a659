//! Generated bill histories: a seeded random walk over the stage rules, with dates that follow the deadlines of the domain reference.
//!
//! Every move is drawn from `rules_for(bill_type).next(stage)`, weighted so that most
//! bills move on and few are rejected or withdrawn, so the output is legal by
//! construction and stays legal when a rule in `sapha_proto::stage::RULES` changes.
//! Dates advance with the deadlines: the Senate has 60 days (30 for a money bill, each
//! extendable by 30) or the bill is deemed approved; a budget bill 20 days; a withheld
//! bill waits 180 days (10 for a money bill, s.138; only a rejected budget may be taken up again at once, s.143); an
//! approved bill waits at `APPROVED` and is presented 6 to 20 days after approval (s.145), and 16 days or more after an
//! amendment's third reading (s.256 (7)). Stages follow the convention of docs/LEGISLATIVE-MODEL.md: a reading stage is
//! pending, and its decision moves the bill on.
//! Readings fall on sitting days (House Wednesday and Thursday, Senate Monday and
//! Tuesday, joint sittings Tuesday to Thursday). Bills still in progress at the
//! horizon (two months after the last introduction) stop mid-way, as they would in a
//! snapshot of the live system.
//!
//! Not generated: `LAPSED` (a dissolution ends every pending bill at once, which a
//! per-bill walk cannot model). `MERGED` happens only when an earlier act on the same
//! subject (its main bill, ร่างหลัก) reaches its first reading after this one was
//! introduced; the two are then read together and this one is merged into it.

use super::BillHistory;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use sapha_proto::event::{Event, Text};
use sapha_proto::stage::{resume_stage, rules_for, BillType, Proposer, Stage};
use std::collections::{HashMap, HashSet};

/// The bill histories of `count` bills introduced from `start` on, interleaved by
/// date as a live feed would carry them (each bill's own events stay in order).
/// The same `(count, seed, start)` always gives the same events.
pub fn generate_bills(count: usize, seed: u64, start: NaiveDate) -> Vec<Event> {
    generate_bills_over(count, seed, start, (count as i64 * 2).max(90))
}

/// [`generate_bills`] with the bills introduced over `window` days (for a
/// history of many bills a year, such as the state benchmark's ten years).
pub fn generate_bills_over(count: usize, seed: u64, start: NaiveDate, window: i64) -> Vec<Event> {
    let mut rng = SplitMix64::new(seed);
    let horizon = start + Duration::days(window + 60);

    // Draw every bill first, then number them in order of introduction.
    let mut drafts: Vec<Draft> = (0..count)
        .map(|_| {
            let bill_type = *rng.weighted_pick(TYPE_MIX);
            let mut introduced = start + Duration::days(rng.below(window as u64) as i64);
            if bill_type == BillType::Budget {
                introduced = budget_season(introduced, start, rng.below(15) as i64);
            }
            let introduced = weekday(introduced);
            let topic = rng.below(topic_count(bill_type) as u64) as usize;
            let proposer = rng.weighted_pick(proposers(bill_type)).clone();
            Draft {
                bill_type,
                introduced,
                topic,
                proposer,
            }
        })
        .collect();
    drafts.sort_by_key(|d| d.introduced);

    let mut numbers: HashMap<i32, u32> = HashMap::new();
    let mut budget_titles: HashSet<String> = HashSet::new();
    // Acts that reached committee, by subject: (bill id, first-reading day).
    let mut mains: HashMap<usize, Vec<(String, NaiveDate)>> = HashMap::new();
    let mut events = Vec::new();
    for draft in drafts {
        let be = buddhist_year(draft.introduced);
        let n = numbers.entry(be).or_insert(0);
        *n += 1;
        let bill_id = format!("b-{be}-{n:04}");
        let (bill_type, title, money) = title(&draft, &mut budget_titles);
        let walk = Walk {
            bill_id,
            bill_type,
            topic: draft.topic,
            money,
            horizon,
        };
        events.extend(walk.run(&mut rng, &draft, title, &mut mains));
    }
    // A stable sort keeps each bill's own order (its days never go backwards).
    events.sort_by_key(|e| e.occurred_at);
    events
}

/// splitmix64 (Steele, Lea and Flood): ten lines, and unlike a crate's generator its
/// output can never change under us, so a seed always yields the same file.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (the modulo bias is negligible for our small `n`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number of days in `lo..=hi`.
    fn days(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::days(lo + self.below((hi - lo + 1) as u64) as i64)
    }

    /// A float in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index drawn in proportion to `weights`; `None` if they are all zero.
    fn weighted(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return None;
        }
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Some(i);
            }
            x -= w;
        }
        weights.iter().rposition(|w| *w > 0.0)
    }

    fn weighted_pick<'a, T>(&mut self, items: &'a [(T, f64)]) -> &'a T {
        let weights: Vec<f64> = items.iter().map(|(_, w)| *w).collect();
        let i = self.weighted(&weights).expect("a non-empty mix");
        &items[i].0
    }
}

/// The mix of bill types: mostly acts.
const TYPE_MIX: &[(BillType, f64)] = &[
    (BillType::Act, 80.0),
    (BillType::EmergencyDecree, 7.0),
    (BillType::ConstitutionalAmendment, 6.0),
    (BillType::OrganicAct, 5.0),
    (BillType::Budget, 2.0),
];

struct Draft {
    bill_type: BillType,
    introduced: NaiveDate,
    topic: usize,
    proposer: (Text, Proposer),
}

#[derive(Clone, Copy)]
enum Form {
    /// An amendment of an existing act: "(ฉบับที่ ..)".
    Amend,
    /// A new act.
    New,
    /// An amendment of a code (ประมวลกฎหมาย).
    Code,
}

/// Subjects of acts: (Thai, English, form, money bill).
const ACTS: &[(&str, &str, Form, bool)] = &[
    ("การสาธารณสุข", "Public Health", Form::Amend, false),
    ("คุ้มครองแรงงาน", "Labour Protection", Form::Amend, false),
    ("ประกันสังคม", "Social Security", Form::Amend, false),
    ("แรงงานสัมพันธ์", "Labour Relations", Form::Amend, false),
    ("ป่าไม้", "Forest", Form::Amend, false),
    ("อุทยานแห่งชาติ", "National Parks", Form::Amend, false),
    ("การผังเมือง", "Town and Country Planning", Form::Amend, false),
    ("ควบคุมอาคาร", "Building Control", Form::Amend, false),
    (
        "หลักประกันสุขภาพแห่งชาติ",
        "National Health Security",
        Form::Amend,
        false,
    ),
    ("ยา", "Drug", Form::Amend, false),
    ("อาหาร", "Food", Form::Amend, false),
    ("จราจรทางบก", "Land Traffic", Form::Amend, false),
    ("รถยนต์", "Motor Vehicle", Form::Amend, true),
    (
        "ภาษีที่ดินและสิ่งปลูกสร้าง",
        "Land and Buildings Tax",
        Form::Amend,
        true,
    ),
    ("ศุลกากร", "Customs", Form::Amend, true),
    ("ภาษีสรรพสามิต", "Excise Tax", Form::Amend, true),
    ("สหกรณ์", "Cooperatives", Form::Amend, false),
    (
        "ข้อมูลข่าวสารของราชการ",
        "Official Information",
        Form::Amend,
        false,
    ),
    (
        "คุ้มครองข้อมูลส่วนบุคคล",
        "Personal Data Protection",
        Form::Amend,
        false,
    ),
    (
        "ว่าด้วยการกระทำความผิดเกี่ยวกับคอมพิวเตอร์",
        "Computer-Related Crime",
        Form::Amend,
        false,
    ),
    (
        "ระเบียบบริหารราชการแผ่นดิน",
        "State Administration",
        Form::Amend,
        false,
    ),
    ("ผู้สูงอายุ", "Older Persons", Form::Amend, false),
    (
        "ส่งเสริมและพัฒนาคุณภาพชีวิตคนพิการ",
        "Persons with Disabilities Empowerment",
        Form::Amend,
        false,
    ),
    (
        "ควบคุมเครื่องดื่มแอลกอฮอล์",
        "Alcoholic Beverage Control",
        Form::Amend,
        false,
    ),
    (
        "ธุรกิจนำเที่ยวและมัคคุเทศก์",
        "Tourism Business and Guide",
        Form::Amend,
        false,
    ),
    (
        "การปฏิรูปที่ดินเพื่อเกษตรกรรม",
        "Agricultural Land Reform",
        Form::Amend,
        false,
    ),
    ("การศึกษาแห่งชาติ", "National Education", Form::Amend, false),
    ("อากาศสะอาด", "Clean Air", Form::New, false),
    (
        "การเปลี่ยนแปลงสภาพภูมิอากาศ",
        "Climate Change",
        Form::New,
        false,
    ),
    (
        "คุ้มครองและส่งเสริมวิถีชีวิตกลุ่มชาติพันธุ์",
        "Protection and Promotion of the Ways of Life of Ethnic Groups",
        Form::New,
        false,
    ),
    ("ประมวลกฎหมายอาญา", "Criminal Code", Form::Code, false),
    (
        "ประมวลกฎหมายแพ่งและพาณิชย์",
        "Civil and Commercial Code",
        Form::Code,
        false,
    ),
    (
        "ประมวลกฎหมายวิธีพิจารณาความอาญา",
        "Criminal Procedure Code",
        Form::Code,
        false,
    ),
    ("ประมวลรัษฎากร", "Revenue Code", Form::Code, true),
    ("ประมวลกฎหมายที่ดิน", "Land Code", Form::Code, false),
];

/// Subjects of organic acts (พ.ร.ป.).
const ORGANIC_ACTS: &[(&str, &str)] = &[
    (
        "การเลือกตั้งสมาชิกสภาผู้แทนราษฎร",
        "the Election of Members of the House of Representatives",
    ),
    ("พรรคการเมือง", "Political Parties"),
    ("คณะกรรมการการเลือกตั้ง", "the Election Commission"),
    (
        "การป้องกันและปราบปรามการทุจริต",
        "the Prevention and Suppression of Corruption",
    ),
    ("ผู้ตรวจการแผ่นดิน", "the Ombudsmen"),
    ("การออกเสียงประชามติ", "Referendums"),
    (
        "วิธีพิจารณาของศาลรัฐธรรมนูญ",
        "Procedures of the Constitutional Court",
    ),
];

/// Subjects of emergency decrees (พ.ร.ก.); the English follows "Emergency Decree".
const DECREES: &[(&str, &str)] = &[
    (
        "มาตรการป้องกันและปราบปรามอาชญากรรมทางเทคโนโลยี",
        "on Measures for the Prevention and Suppression of Technology Crimes",
    ),
    ("แก้ไขเพิ่มเติมประมวลรัษฎากร", "Amending the Revenue Code"),
    (
        "การบริหารจัดการการทำงานของคนต่างด้าว",
        "on the Management of Foreign Workers",
    ),
    (
        "ให้อำนาจกระทรวงการคลังกู้เงินเพื่อฟื้นฟูเศรษฐกิจ",
        "Authorising the Ministry of Finance to Borrow for Economic Recovery",
    ),
    (
        "แก้ไขเพิ่มเติมพระราชบัญญัติภาษีสรรพสามิต",
        "Amending the Excise Tax Act",
    ),
];

/// What a constitutional amendment amends.
const AMENDMENTS: &[(&str, &str)] = &[
    ("มาตรา 256", "section 256"),
    ("มาตรา 272", "section 272"),
    ("มาตรา 159", "section 159"),
    ("มาตรา 65", "section 65"),
    ("มาตรา 144 และมาตรา 185", "sections 144 and 185"),
    (
        "หมวด 14 การปกครองส่วนท้องถิ่น",
        "chapter 14, local administration",
    ),
];

fn topic_count(bill_type: BillType) -> usize {
    match bill_type {
        BillType::Act => ACTS.len(),
        BillType::OrganicAct => ORGANIC_ACTS.len(),
        BillType::EmergencyDecree => DECREES.len(),
        BillType::ConstitutionalAmendment => AMENDMENTS.len(),
        BillType::Budget => 1,
    }
}

/// Who may introduce each type of bill, with how often they do (the note of the
/// bill's first event).
fn proposers(bill_type: BillType) -> &'static [((Text, Proposer), f64)] {
    use std::sync::OnceLock;
    use Proposer::*;
    /// Built once: `Text` holds `String`s, so the tables cannot be `const`.
    type Table = Vec<((Text, Proposer), f64)>;
    static TABLES: OnceLock<Vec<Table>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        let t = |p: Proposer, th: &str, en: &str, w: f64| ((Text::new(th, en), p), w);
        let cabinet = |w| t(Cabinet, "คณะรัฐมนตรีเป็นผู้เสนอ", "introduced by the Cabinet", w);
        vec![
            // act
            vec![
                cabinet(55.0),
                t(
                    Mps,
                    "สมาชิกสภาผู้แทนราษฎรเข้าชื่อเสนอ (ไม่น้อยกว่า 20 คน)",
                    "introduced by at least 20 MPs",
                    40.0,
                ),
                t(
                    Voters,
                    "ประชาชนผู้มีสิทธิเลือกตั้งเข้าชื่อเสนอ (ไม่น้อยกว่า 10,000 คน)",
                    "introduced by at least 10,000 voters",
                    5.0,
                ),
            ],
            // organic act
            vec![
                cabinet(60.0),
                t(
                    Mps,
                    "สมาชิกสภาผู้แทนราษฎรเข้าชื่อเสนอ (ไม่น้อยกว่าหนึ่งในสิบ)",
                    "introduced by at least one tenth of the MPs",
                    40.0,
                ),
            ],
            // budget
            vec![cabinet(1.0)],
            // emergency decree
            vec![t(
                Cabinet,
                "ประกาศในราชกิจจานุเบกษา มีผลใช้บังคับทันที",
                "published in the Royal Gazette; in force at once",
                1.0,
            )],
            // constitutional amendment
            vec![
                cabinet(20.0),
                t(
                    Mps,
                    "สมาชิกสภาผู้แทนราษฎรเข้าชื่อเสนอ (ไม่น้อยกว่าหนึ่งในห้า)",
                    "introduced by at least one fifth of the MPs",
                    40.0,
                ),
                t(
                    MpsAndSenators,
                    "สมาชิกทั้งสองสภาเข้าชื่อเสนอ (ไม่น้อยกว่าหนึ่งในห้า)",
                    "introduced by at least one fifth of the members of both Houses",
                    25.0,
                ),
                t(
                    Voters,
                    "ประชาชนผู้มีสิทธิเลือกตั้งเข้าชื่อเสนอ (ไม่น้อยกว่า 50,000 คน)",
                    "introduced by at least 50,000 voters",
                    15.0,
                ),
            ],
        ]
    });
    let i = match bill_type {
        BillType::Act => 0,
        BillType::OrganicAct => 1,
        BillType::Budget => 2,
        BillType::EmergencyDecree => 3,
        BillType::ConstitutionalAmendment => 4,
    };
    &tables[i]
}

/// The Cabinet sends the annual budget bill to the House in late May or June, so
/// that it can pass before the fiscal year starts on 1 October: the season of the
/// year of `day`, or of the next year if that season is before `start`.
fn budget_season(day: NaiveDate, start: NaiveDate, offset: i64) -> NaiveDate {
    let season =
        |year| NaiveDate::from_ymd_opt(year, 5, 25).expect("a valid date") + Duration::days(offset);
    let this_year = season(day.year());
    if this_year >= start {
        this_year
    } else {
        season(day.year() + 1)
    }
}

fn buddhist_year(day: NaiveDate) -> i32 {
    day.year() + 543
}

/// The bill's type (a second budget bill in a year becomes an act), its title, and
/// whether it is a money bill.
fn title(draft: &Draft, budget_titles: &mut HashSet<String>) -> (BillType, Text, bool) {
    let draft_year = "พ.ศ. ....";
    match draft.bill_type {
        BillType::Act => {
            let (th, en, form, money) = ACTS[draft.topic];
            let text = match form {
                Form::Amend => Text::new(
                    format!("ร่างพระราชบัญญัติ{th} (ฉบับที่ ..) {draft_year}"),
                    format!("Draft {en} Act (No. ..) B.E. ...."),
                ),
                Form::New => Text::new(
                    format!("ร่างพระราชบัญญัติ{th} {draft_year}"),
                    format!("Draft {en} Act B.E. ...."),
                ),
                Form::Code => Text::new(
                    format!("ร่างพระราชบัญญัติแก้ไขเพิ่มเติม{th} (ฉบับที่ ..) {draft_year}"),
                    format!("Draft Act Amending the {en} (No. ..) B.E. ...."),
                ),
            };
            (BillType::Act, text, money)
        }
        BillType::OrganicAct => {
            let (th, en) = ORGANIC_ACTS[draft.topic];
            let text = Text::new(
                format!("ร่างพระราชบัญญัติประกอบรัฐธรรมนูญว่าด้วย{th} (ฉบับที่ ..) {draft_year}"),
                format!("Draft Organic Act on {en} (No. ..) B.E. ...."),
            );
            (BillType::OrganicAct, text, false)
        }
        BillType::EmergencyDecree => {
            // A decree is already law: its year is known.
            let (th, en) = DECREES[draft.topic];
            let be = buddhist_year(draft.introduced);
            let text = Text::new(
                format!("พระราชกำหนด{th} พ.ศ. {be}"),
                format!("Emergency Decree {en} B.E. {be}"),
            );
            (BillType::EmergencyDecree, text, false)
        }
        BillType::ConstitutionalAmendment => {
            let (th, en) = AMENDMENTS[draft.topic];
            let text = Text::new(
                format!("ร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (ฉบับที่ ..) {draft_year} ({th})"),
                format!("Draft Constitutional Amendment (No. ..) B.E. .... ({en})"),
            );
            (BillType::ConstitutionalAmendment, text, false)
        }
        BillType::Budget => {
            // One annual bill a year, for the fiscal year that starts on 1 October.
            // (Supplementary and transfer bills are rare and not generated: a second
            // budget draft in a year becomes an act.)
            let fiscal_year = buddhist_year(draft.introduced) + 1;
            let th = format!("ร่างพระราชบัญญัติงบประมาณรายจ่ายประจำปีงบประมาณ พ.ศ. {fiscal_year}");
            if budget_titles.insert(th.clone()) {
                let en =
                    format!("Draft Annual Appropriations Act for Fiscal Year B.E. {fiscal_year}");
                return (BillType::Budget, Text::new(th, en), true);
            }
            let act = Draft {
                bill_type: BillType::Act,
                introduced: draft.introduced,
                topic: draft.topic % ACTS.len(),
                proposer: draft.proposer.clone(),
            };
            title(&act, budget_titles)
        }
    }
}

/// The next day on or after `day` that is one of `days`.
fn on_or_after(day: NaiveDate, days: &[Weekday]) -> NaiveDate {
    let mut d = day;
    while !days.contains(&d.weekday()) {
        d += Duration::days(1);
    }
    d
}

fn weekday(day: NaiveDate) -> NaiveDate {
    use Weekday::*;
    on_or_after(day, &[Mon, Tue, Wed, Thu, Fri])
}

/// The day a move to `to` can happen on, at or after `day`: readings on sitting days.
fn sitting_day(to: Stage, day: NaiveDate) -> NaiveDate {
    use Stage::*;
    use Weekday::*;
    match to {
        HouseR1 | HouseR2 | HouseR3 | HouseSenateAmendments | HouseReaffirm | HouseApproval => {
            on_or_after(day, &[Wed, Thu])
        }
        SenateR1 | SenateR2 | SenateR3 | SenateApproval => on_or_after(day, &[Mon, Tue]),
        JointR1 | JointR2 | JointR3 | VetoReconsider => on_or_after(day, &[Tue, Wed, Thu]),
        // The Royal Gazette publishes on any day, and a law may come into force on any day.
        Published | Enacted => day,
        _ => weekday(day),
    }
}

/// How likely a move is, relative to the other moves from the same stage.
fn weight(bill_type: BillType, from: Stage, to: Stage, deemed: bool) -> f64 {
    use BillType::*;
    use Stage::*;
    match (bill_type, from, to, deemed) {
        // A dissolution lapses every pending bill at once; a per-bill walk does not model it.
        (_, _, Lapsed, _) => 0.0,
        // Merging needs a main bill; see `Walk::run`.
        (_, _, Merged, _) => 0.0,
        // The Senate misses its deadline now and then (s.137); the other deemed
        // approvals (the House's 105 days for the budget, s.143; an organic
        // act's committee, s.132; an unsigned re-presented bill, s.146) are too
        // rare to generate.
        (Act, SenateR1 | SenateCommittee | SenateR2, Approved, true) => 0.04,
        (_, _, _, true) => 0.0,
        // The Cabinet does not abandon its budget.
        (Budget, _, Withdrawn, _) => 0.0,
        (_, _, Withdrawn, _) => 0.015,
        (_, Proposed, Hearing, _) => 0.6,
        (_, Proposed, Rejected, _) => 0.04,
        (ConstitutionalAmendment, JointR1, Rejected, _) => 0.6,
        (_, HouseR1 | JointR1, Rejected, _) => 0.12,
        (ConstitutionalAmendment, JointR3, Rejected, _) => 0.13,
        (ConstitutionalAmendment, Approved, PresentedForAssent, _) => 0.6,
        (ConstitutionalAmendment, Approved, Referendum | ConstCourt, _) => 0.13,
        (_, JointR3, Rejected, _) => 0.05,
        (_, HouseR3, Rejected, _) => 0.03,
        (Act, SenateR1 | SenateR2, Withheld, _) => 0.03,
        (Budget, SenateR1, Withheld, _) => 0.03,
        (_, SenateR3, Approved, _) => 0.72,
        (_, SenateR3, HouseSenateAmendments, _) => 0.22,
        (_, SenateR3, Withheld, _) => 0.03,
        (_, Approved, ConstCourt, _) => 0.03,
        (OrganicAct, OrganOpinions, ObjectionReconsider | ConstCourt, _) => 0.1,
        (OrganicAct, ObjectionReconsider, ConstCourt, _) => 0.05,
        (EmergencyDecree, Enacted | HouseApproval | SenateApproval, ConstCourt, _) => 0.04,
        (EmergencyDecree, HouseApproval, Rejected, _) => 0.04,
        (EmergencyDecree, SenateApproval, HouseReaffirm, _) => 0.04,
        (EmergencyDecree, HouseReaffirm, Rejected, _) => 0.3,
        (_, HouseSenateAmendments, Approved, _) => 0.7,
        (_, HouseSenateAmendments, JointCommittee, _) => 0.25,
        (_, HouseReaffirm, Rejected, _) => 0.3,
        (_, JointCommittee, Withheld, _) => 0.07,
        (_, ConstCourt, Rejected, _) => 0.12,
        (_, ConstCourt, Referendum, _) => 0.1,
        (_, PresentedForAssent, VetoReconsider, _) => 0.005,
        (_, Referendum, Rejected, _) => 0.3,
        _ => 1.0,
    }
}

/// The `deadline` of a move into `to` on `day`, where the Constitution sets one:
/// the Senate's clock (s.136, with its extension), the budget's 105 and 20 days
/// (s.143), the organs' 10 days to object (s.132), the Court's 60 days on a decree
/// (s.173) and 30 on an amendment (s.256 (9)), and the King's 90 days (s.146; 30
/// on a second presentation after a reaffirmation, s.146 ¶2).
fn deadline(
    bill_type: BillType,
    from: Option<Stage>,
    to: Stage,
    day: NaiveDate,
    senate: Option<SenateClock>,
) -> Option<NaiveDate> {
    use Stage::*;
    let days = match (bill_type, to) {
        (_, SenateR1) => senate?.days,
        (BillType::Budget, Proposed) => 105,
        (BillType::OrganicAct, Proposed) => 180,
        (_, OrganOpinions) => 10,
        (_, ObjectionReconsider) => 30,
        (BillType::EmergencyDecree, ConstCourt) => 60,
        (BillType::ConstitutionalAmendment, ConstCourt) => 30,
        (_, PresentedForAssent) if from == Some(VetoReconsider) => 30,
        (_, PresentedForAssent) => 90,
        _ => return None,
    };
    Some(day + Duration::days(days))
}

/// One bill's walk through its stages.
struct Walk {
    bill_id: String,
    bill_type: BillType,
    topic: usize,
    money: bool,
    horizon: NaiveDate,
}

/// Where a bill is in the Senate: since when, and how many days it has.
#[derive(Clone, Copy)]
struct SenateClock {
    since: NaiveDate,
    days: i64,
}

/// A guard against a walk that never ends (the horizon ends every real one first).
const MAX_STEPS: usize = 48;

impl Walk {
    fn run(
        &self,
        rng: &mut SplitMix64,
        draft: &Draft,
        title: Text,
        mains: &mut HashMap<usize, Vec<(String, NaiveDate)>>,
    ) -> Vec<Event> {
        use Stage::*;
        let rules = rules_for(self.bill_type);
        let mut bill = BillHistory::new(self.bill_id.clone(), self.bill_type, title);
        let mut day = draft.introduced;
        let (note, proposer) = draft.proposer.clone();
        let first = bill.step(day, rules.initial, Some(note), None);
        first.proposer = Some(proposer);
        first.money_bill = self.money && self.bill_type != BillType::Budget;
        first.deadline = deadline(self.bill_type, None, rules.initial, day, None);
        let mut senate: Option<SenateClock> = None;
        let mut first_reading: Option<NaiveDate> = None;
        let mut previous: Option<Stage> = None;

        for _ in 0..MAX_STEPS {
            let stage = bill.stage().expect("the first step is taken");
            // Every move a body may decide, then every deemed approval.
            let mut options: Vec<(Stage, bool)> = rules
                .next(stage)
                .into_iter()
                .map(|to| (to, false))
                .chain(rules.next_deemed(stage).into_iter().map(|to| (to, true)))
                .collect();
            // Leaving the Court (a decree), a bill goes back where it came from.
            if rules.resumes.contains(&stage) {
                let back = previous.map(|p| resume_stage(self.bill_type, p));
                options.retain(|(to, _)| rules.is_terminal(*to) || Some(*to) == back);
            }
            if options.is_empty() {
                break;
            }
            // Read together with an earlier main bill on the same subject, and merged into it.
            if self.bill_type == BillType::Act && options.contains(&(HouseR1, false)) {
                let main = mains.get(&self.topic).and_then(|list| {
                    list.iter()
                        .find(|(_, r1)| *r1 >= day + Duration::days(7) && *r1 <= self.horizon)
                        .cloned()
                });
                if let Some((main_id, r1)) = main {
                    if rng.chance(0.2) {
                        let note = Text::new(
                            "พิจารณาพร้อมกับร่างหลักในวาระที่ 1",
                            "read together with the main bill at first reading",
                        );
                        bill.step(r1, HouseR1, Some(note), None);
                        let note = Text::new(
                            format!("รวมร่างกับร่างหลัก ({main_id})"),
                            format!("merged into the main bill {main_id}"),
                        );
                        bill.step(r1, Merged, Some(note), Some(main_id));
                        break;
                    }
                }
            }
            let weights: Vec<f64> = options
                .iter()
                .map(|(to, deemed)| weight(self.bill_type, stage, *to, *deemed))
                .collect();
            let Some(i) = rng.weighted(&weights) else {
                break;
            };
            let (to, deemed) = options[i];
            let (next, note) = self.schedule(rng, stage, to, deemed, day, &mut senate);
            if next > self.horizon {
                // Still at `stage` when the snapshot is taken.
                break;
            }
            day = next;
            if to == HouseR1 {
                first_reading = Some(day);
            }
            if to == HouseCommittee {
                if let Some(r1) = first_reading {
                    mains
                        .entry(self.topic)
                        .or_default()
                        .push((self.bill_id.clone(), r1));
                }
            }
            let step = bill.step(day, to, note, None);
            step.deemed = deemed;
            step.money_bill = self.money && self.bill_type != BillType::Budget;
            step.deadline = deadline(
                self.bill_type,
                Some(stage),
                to,
                day,
                senate.filter(|_| to == SenateR1),
            );
            previous = Some(stage);
        }
        bill.into_events()
    }

    /// The day of a move from `from` to `to` made at or after `day`, and its note.
    fn schedule(
        &self,
        rng: &mut SplitMix64,
        from: Stage,
        to: Stage,
        deemed: bool,
        day: NaiveDate,
        senate: &mut Option<SenateClock>,
    ) -> (NaiveDate, Option<Text>) {
        use BillType::*;
        use Stage::*;
        let t = self.bill_type;
        let mut note = None;
        let next = match (from, to) {
            (_, Withdrawn) => day + rng.days(7, 60),
            (Proposed, Hearing) => day + rng.days(7, 30),
            (Proposed, HouseR1) if t == Budget => day + rng.days(7, 21),
            // An organic act's three readings fit in the joint sitting's 180 days (s.132).
            (Proposed | Hearing, JointR1) if t == OrganicAct => day + rng.days(14, 45),
            (Proposed | Hearing, HouseR1 | JointR1) => day + rng.days(30, 120),
            (Proposed, Rejected) => day + rng.days(30, 180),
            // A committee is appointed at the reading that accepts the bill in principle;
            // a reading that fails, fails that day.
            (_, HouseCommittee | ParliamentCommittee | SenateCommittee) => day,
            // s.256 (5): an amendment's third reading votes 15 days after its second
            // reading ended (entering JOINT_R3), the first not counted: D+16 at the earliest.
            (JointR3, Approved | Rejected) if t == ConstitutionalAmendment => {
                day + rng.days(16, 21)
            }
            (HouseR1 | JointR1 | HouseR3 | JointR3 | HouseApproval, Rejected) => day,
            // The House has 105 days for the budget bill.
            (HouseCommittee, HouseR2) if t == Budget => day + rng.days(60, 80),
            (HouseCommittee, HouseR2) => day + rng.days(45, 180),
            (ParliamentCommittee, JointR2) if t == OrganicAct => day + rng.days(30, 90),
            (ParliamentCommittee, JointR2) => day + rng.days(45, 120),
            (HouseR2, HouseR3) | (SenateR2, SenateR3) => day,
            // The second reading's last vote moves the bill to JOINT_R3 (the stage convention).
            (JointR2, JointR3) => day,
            (HouseR3, SenateR1) => {
                let wait = if t == Budget { (1, 7) } else { (5, 21) };
                let d = sitting_day(SenateR1, day + rng.days(wait.0, wait.1));
                let base = if self.money { 30 } else { 60 };
                let extended = if t != Budget && rng.chance(0.25) {
                    30
                } else {
                    0
                };
                *senate = Some(SenateClock {
                    since: d,
                    days: if t == Budget { 20 } else { base + extended },
                });
                d
            }
            // A budget bill: the Senate decides within 20 days and cannot amend.
            (SenateR1, Approved) if t == Budget => day + rng.days(1, 12),
            (SenateR1, Withheld) if t == Budget => day + rng.days(1, 20),
            (SenateR1, Withheld) => day,
            // The Senate missed its deadline: the bill is deemed approved (s.137).
            (SenateR1 | SenateCommittee | SenateR2 | SenateR3, Approved) if deemed => {
                let clock = senate.expect("a bill in the Senate has a clock");
                note = Some(Text::new(
                    format!("ถือว่าวุฒิสภาให้ความเห็นชอบ (พ้นกำหนด {} วัน)", clock.days),
                    format!(
                        "deemed approved by the Senate ({}-day deadline passed)",
                        clock.days
                    ),
                ));
                clock.since + Duration::days(clock.days) + rng.days(1, 3)
            }
            (SenateCommittee, SenateR2) => {
                let clock = senate.expect("a bill in the Senate has a clock");
                let target = clock.since + rng.days(clock.days / 3, clock.days - 7);
                target.max(day)
            }
            (SenateR3, Approved) => day,
            (SenateR3, HouseSenateAmendments) => day + rng.days(7, 30),
            (SenateR3, Withheld) => day,
            // s.132: the courts and the organ have 10 days to object.
            (JointR3, OrganOpinions) => day + rng.days(1, 7),
            (OrganOpinions, ObjectionReconsider) => day + rng.days(5, 10),
            (OrganOpinions, _) => day + rng.days(11, 20),
            (ObjectionReconsider, _) => day + rng.days(15, 30),
            (Enacted, ConstCourt) => day + rng.days(7, 30),
            (_, ConstCourt) => day + rng.days(3, 5),
            (ConstCourt, _) => day + rng.days(30, 120),
            // A withheld budget bill may be taken up again at once (s.143), another
            // money bill after 10 days (s.138).
            (Withheld, _) if t == Budget => day + rng.days(1, 7),
            // The first day is not counted (CCC s.193/3): D+11 and D+181 at the earliest.
            (Withheld, _) if self.money => day + rng.days(11, 31),
            (Withheld, _) => day + rng.days(181, 241),
            (HouseReaffirm, _) if t == EmergencyDecree => day + rng.days(0, 7),
            (HouseSenateAmendments | HouseReaffirm, _) => day + rng.days(7, 30),
            (JointCommittee, _) => day + rng.days(30, 90),
            // 15 days for a petition to the Court, then presented for assent (s.256 (7)).
            (Approved, PresentedForAssent) if t == ConstitutionalAmendment => {
                day + rng.days(16, 25)
            }
            (Approved, Referendum) => day + rng.days(90, 120),
            // s.145: the Prime Minister waits 5 days, then presents within 20.
            (Approved, PresentedForAssent) if t == Budget => day + rng.days(6, 8),
            (Approved, PresentedForAssent) => day + rng.days(6, 20),
            (Referendum, _) => day + rng.days(30, 60),
            // The budget must be law by 1 October.
            (PresentedForAssent, RoyalAssent) if t == Budget => day + rng.days(2, 7),
            (PresentedForAssent, RoyalAssent) => day + rng.days(7, 60),
            (RoyalAssent, Published) if t == Budget => day + rng.days(1, 3),
            (RoyalAssent, Published) => day + rng.days(3, 30),
            // No assent within 90 days: Parliament reconsiders (s.146).
            (PresentedForAssent, VetoReconsider) => day + rng.days(91, 100),
            (VetoReconsider, _) => day + rng.days(30, 90),
            (Published, Enacted) if t == Budget => day + Duration::days(1),
            (Published, Enacted) => {
                let delays = [1, 1, 1, 1, 1, 30, 60, 90, 120, 180, 365];
                day + Duration::days(delays[rng.below(delays.len() as u64) as usize])
            }
            // Emergency decrees go to the House at its next sitting, then the Senate.
            (Enacted, HouseApproval) => day + rng.days(7, 60),
            (HouseApproval, SenateApproval) => day + rng.days(3, 14),
            (SenateApproval, Confirmed) => day,
            (SenateApproval, HouseReaffirm) => day + rng.days(7, 14),
            _ => day + rng.days(7, 60),
        };
        (sitting_day(to, next), note)
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::*;
    use sapha_proto::stage::{BillType, RULES};

    #[test]
    fn every_generated_deadline_is_one_the_rules_accept() {
        // The generator's deadlines against the clocks of `sapha_proto::stage`, on
        // every decided move: a second presentation has 30 days (s.146 ¶2), not 90.
        let day = NaiveDate::from_ymd_opt(2024, 1, 10).unwrap();
        let mut checked = 0;
        for rules in RULES {
            for rule in rules.rules {
                for &to in rule.to {
                    let Some(on) = deadline(rules.bill_type, Some(rule.from), to, day, None) else {
                        continue;
                    };
                    let money = rules.bill_type == BillType::Budget;
                    assert_eq!(
                        rules.check_deadline(Some(rule.from), to, day, on, money),
                        Ok(()),
                        "{} {} -> {to}",
                        rules.bill_type,
                        rule.from
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 0);
        let again = deadline(
            BillType::Act,
            Some(Stage::VetoReconsider),
            Stage::PresentedForAssent,
            day,
            None,
        );
        assert_eq!(again, Some(day + Duration::days(30)));
    }
}
