//! `sapha tail`: one line per event for people, in Thai or English.
//!
//! Everything here is a pure function of the event and the options, so every
//! line can be tested without a hub. Times are shown in Asia/Bangkok, which is
//! UTC+7 all year (Thailand has no daylight saving time), so a fixed offset is
//! exact and no time-zone database is needed. Years are Buddhist Era
//! (พ.ศ. = CE + 543).

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use sapha_proto::event::*;
use sapha_proto::Event;
use std::fmt::Display;

/// The language of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Th,
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s {
            "th" => Ok(Lang::Th),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language '{other}': expected th or en")),
        }
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatOptions {
    pub lang: Lang,
    /// Write the numbers this module produces (dates, times, tallies) in Thai
    /// digits ๐-๙, as official letters do. Ids and source texts are unchanged.
    pub thai_digits: bool,
}

/// Asia/Bangkok: UTC+7, no DST.
pub fn bangkok() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("a valid offset")
}

const MONTHS_TH: [&str; 12] = [
    "ม.ค.",
    "ก.พ.",
    "มี.ค.",
    "เม.ย.",
    "พ.ค.",
    "มิ.ย.",
    "ก.ค.",
    "ส.ค.",
    "ก.ย.",
    "ต.ค.",
    "พ.ย.",
    "ธ.ค.",
];
const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Replaces ASCII digits by Thai digits.
pub fn thai_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32('๐' as u32 + (c as u32 - '0' as u32)).unwrap_or(c),
            c => c,
        })
        .collect()
}

struct Fmt {
    opts: FormatOptions,
}

impl Fmt {
    fn num(&self, v: impl Display) -> String {
        let s = v.to_string();
        if self.opts.thai_digits {
            thai_digits(&s)
        } else {
            s
        }
    }

    fn th(&self) -> bool {
        self.opts.lang == Lang::Th
    }

    /// Thai or English, whichever the options ask for.
    fn say<'a>(&self, th: &'a str, en: &'a str) -> &'a str {
        if self.th() {
            th
        } else {
            en
        }
    }

    /// One side of a bilingual text, falling back to the other side when empty.
    fn text<'a>(&self, t: &'a Text) -> &'a str {
        match (self.th(), t.th.is_empty(), t.en.is_empty()) {
            (true, false, _) | (false, _, true) => &t.th,
            _ => &t.en,
        }
    }
}

/// A time in Asia/Bangkok with a Buddhist Era year: `10 ก.ย. 2564 12:40` or
/// `10 Sep B.E. 2564 12:40`; only the date when `precision` is `day`.
pub fn bangkok_time(t: DateTime<Utc>, precision: DatePrecision, opts: FormatOptions) -> String {
    let f = Fmt { opts };
    let local = t.with_timezone(&bangkok());
    let month = local.month0() as usize;
    let year = f.num(local.year() + 543);
    let day = f.num(local.day());
    let mut s = match opts.lang {
        Lang::Th => format!("{day} {} {year}", MONTHS_TH[month]),
        Lang::En => format!("{day} {} B.E. {year}", MONTHS_EN[month]),
    };
    if precision == DatePrecision::Instant {
        s.push(' ');
        s.push_str(&f.num(format!("{:02}:{:02}", local.hour(), local.minute())));
    }
    s
}

/// A bill title as people say it: `ร่างพระราชบัญญัติ…` becomes `ร่าง พ.ร.บ. …`.
pub fn short_title(title: &Text, lang: Lang) -> String {
    let f = Fmt {
        opts: FormatOptions {
            lang,
            thai_digits: false,
        },
    };
    let text = f.text(title);
    const SHORT: [(&str, &str); 3] = [
        ("ร่างพระราชบัญญัติประกอบรัฐธรรมนูญ", "ร่าง พ.ร.ป. "),
        ("ร่างพระราชบัญญัติ", "ร่าง พ.ร.บ. "),
        ("ร่างพระราชกำหนด", "ร่าง พ.ร.ก. "),
    ];
    for (long, short) in SHORT {
        if let Some(rest) = text.strip_prefix(long) {
            return format!("{short}{}", rest.trim_start());
        }
    }
    text.to_owned()
}

fn chamber(f: &Fmt, c: Chamber) -> &'static str {
    match c {
        Chamber::Senate => f.say("วุฒิสภา", "Senate"),
        Chamber::House => f.say("สภาผู้แทนราษฎร", "House"),
        Chamber::Joint => f.say("รัฐสภา", "Joint sitting"),
    }
}

fn option(f: &Fmt, o: VoteOption) -> &'static str {
    match o {
        VoteOption::Aye => f.say("เห็นด้วย", "aye"),
        VoteOption::No => f.say("ไม่เห็นด้วย", "no"),
        VoteOption::Abstain => f.say("งดออกเสียง", "abstain"),
        VoteOption::NotVoting => f.say("ไม่ลงคะแนนเสียง", "not voting"),
        VoteOption::Absent => f.say("ขาดประชุม", "absent"),
    }
}

fn group(f: &Fmt, g: Group) -> &'static str {
    match g {
        Group::House => f.say("ส.ส.", "MPs"),
        Group::Senate => f.say("ส.ว.", "senators"),
        Group::Government => f.say("ส.ส. ฝ่ายรัฐบาล", "government MPs"),
        Group::Opposition => f.say("ส.ส. ฝ่ายค้าน", "opposition MPs"),
        Group::NoOfficeParties => f.say(
            "ส.ส. พรรคที่ไม่มีรัฐมนตรีหรือประธาน/รองประธานสภา",
            "MPs of parties with no minister or presiding officer",
        ),
    }
}

/// `เห็นด้วย 472 (ส.ส. 323, ส.ว. 149) · ไม่เห็นด้วย 33 (ส.ส. 23, ส.ว. 10)`: one
/// total per option, in the order options first appear, with the groups.
fn tally(f: &Fmt, counts: &[VoteCount]) -> String {
    let mut options: Vec<VoteOption> = Vec::new();
    for c in counts {
        if !options.contains(&c.option) {
            options.push(c.option);
        }
    }
    let parts: Vec<String> = options
        .iter()
        .map(|&o| {
            let lines: Vec<&VoteCount> = counts.iter().filter(|c| c.option == o).collect();
            // The blocs split the MPs a second time: the total counts each member once.
            let total = sapha_proto::vote::count(counts, None, o).unwrap_or(0);
            let groups: Vec<String> = lines
                .iter()
                .filter_map(|c| Some(format!("{} {}", group(f, c.group?), f.num(c.value))))
                .collect();
            if groups.is_empty() {
                format!("{} {}", option(f, o), f.num(total))
            } else {
                format!("{} {} ({})", option(f, o), f.num(total), groups.join(", "))
            }
        })
        .collect();
    parts.join(" · ")
}

fn on_bill(f: &Fmt, bill: &Option<String>) -> String {
    match bill {
        Some(b) => format!(" [{}{b}]", f.say("ร่าง ", "bill ")),
        None => String::new(),
    }
}

/// What happened, without the time and place.
fn what(f: &Fmt, body: &Body) -> String {
    let th = f.th();
    match body {
        Body::BillStageChanged(b) => {
            let title = short_title(&b.title, f.opts.lang);
            let label = |s: sapha_proto::stage::Stage| {
                let (t, e) = s.label();
                f.say(t, e).to_owned()
            };
            let mut s = match b.from_stage {
                Some(from) => format!("{title}: {} → {}", label(from), label(b.to_stage)),
                None => format!("{title}: {}", label(b.to_stage)),
            };
            if let Some(note) = &b.note {
                s.push_str(&format!(" ({})", f.text(note)));
            }
            s
        }
        Body::SittingLifecycle(b) => {
            let phase = match b.phase {
                Phase::Scheduled => f.say("กำหนดการประชุม", "scheduled"),
                Phase::AgendaPublished => f.say("ประกาศระเบียบวาระ", "agenda published"),
                Phase::Opened => f.say("เปิดประชุม", "opened"),
                Phase::Suspended => f.say("พักการประชุม", "suspended"),
                Phase::Resumed => f.say("ประชุมต่อ", "resumed"),
                Phase::Closed => f.say("ปิดประชุม", "closed"),
                Phase::Cancelled => f.say("งดการประชุม", "cancelled"),
                Phase::InCameraStarted => f.say("เริ่มประชุมลับ", "in camera"),
                Phase::InCameraEnded => f.say("สิ้นสุดการประชุมลับ", "in camera ended"),
            };
            let mut s = phase.to_owned();
            if b.outcome == Some(Outcome::NoQuorum) {
                s.push_str(f.say(" เพราะองค์ประชุมไม่ครบ", " for want of a quorum"));
            }
            if let Some(t) = &b.title {
                s.push_str(&format!(": {}", f.text(t)));
            }
            s
        }
        Body::QuorumChecked(b) => {
            let met = if b.met {
                f.say("ครบองค์ประชุม", "quorum met")
            } else {
                f.say("ไม่ครบองค์ประชุม", "no quorum")
            };
            // s.120: the quorum is half of the members in office.
            let of = b.in_office.map_or(String::new(), |n| {
                if th {
                    format!(" จากสมาชิกเท่าที่มีอยู่ {}", f.num(n))
                } else {
                    format!(" of {} in office", f.num(n))
                }
            });
            if th {
                format!(
                    "ตรวจองค์ประชุม: แสดงตน {} ต้องการ {}{of} — {met}",
                    f.num(b.present),
                    f.num(b.required)
                )
            } else {
                format!(
                    "quorum check: {} present, {} required{of} — {met}",
                    f.num(b.present),
                    f.num(b.required)
                )
            }
        }
        Body::AgendaItemStarted(b) => {
            let category = match b.category {
                AgendaCategory::ChairAnnouncement => {
                    f.say("ประธานแจ้งต่อที่ประชุม", "chair's announcement")
                }
                AgendaCategory::Minutes => f.say("รับรองรายงานการประชุม", "minutes"),
                AgendaCategory::Consultation => f.say("ปรึกษาหารือ", "consultation"),
                AgendaCategory::Question => f.say("กระทู้ถาม", "question"),
                AgendaCategory::Urgent => f.say("เรื่องด่วน", "urgent business"),
                AgendaCategory::CommitteeReport => {
                    f.say("รายงานของคณะกรรมาธิการ", "committee report")
                }
                AgendaCategory::NewBusiness => f.say("เรื่องที่เสนอใหม่", "new business"),
            };
            format!(
                "{} ({category}): {}{}",
                f.say("เริ่มระเบียบวาระ", "agenda item"),
                f.text(&b.title),
                on_bill(f, &b.bill_id)
            )
        }
        Body::AgendaItemEnded(b) => {
            let d = match b.disposition {
                Disposition::Completed => f.say("เสร็จสิ้น", "completed"),
                Disposition::Deferred => f.say("เลื่อนไป", "deferred"),
                Disposition::Withdrawn => f.say("ถอน", "withdrawn"),
                Disposition::Referred => f.say("ส่งต่อ", "referred"),
            };
            if th {
                format!("จบระเบียบวาระ {}: {d}", b.item_id)
            } else {
                format!("agenda item {} ended: {d}", b.item_id)
            }
        }
        Body::SectionConsidered(b) => {
            format!(
                "{} {}",
                f.say("พิจารณามาตรา", "considering section"),
                b.section_no
            )
        }
        Body::SpeechStarted(b) => {
            let role = match b.role {
                Role::Member => f.say("สมาชิก", "member"),
                Role::Minister => f.say("รัฐมนตรี", "minister"),
                Role::Chair => f.say("ประธาน", "chair"),
                Role::Committee => f.say("กรรมาธิการ", "committee"),
                Role::Official => f.say("เจ้าหน้าที่", "official"),
                Role::Other => f.say("อื่น ๆ", "other"),
            };
            let name = f.text(&b.person.name);
            if th {
                format!("{name} เริ่มอภิปราย ({role})")
            } else {
                format!("{name} has the floor ({role})")
            }
        }
        Body::SpeechEnded(b) => {
            let name = f.text(&b.person.name);
            if th {
                format!("{name} อภิปรายจบ")
            } else {
                format!("{name} finished speaking")
            }
        }
        Body::ChairChanged(b) => {
            // A source that knows only the office names the person by it: say
            // it once ("ประธานรัฐสภา", not "ประธานรัฐสภา (ประธานรัฐสภา)").
            let (name, office) = (f.text(&b.person.name), f.text(&b.office));
            let who = if name.trim().is_empty() || name == office {
                office.to_owned()
            } else {
                format!("{name} ({office})")
            };
            format!("{}: {who}", f.say("ผู้ทำหน้าที่ประธาน", "in the chair"))
        }
        Body::MotionMoved(b) => {
            if th {
                format!(
                    "เสนอญัตติ: {} (โดย {})",
                    f.text(&b.text),
                    f.text(&b.mover.name)
                )
            } else {
                format!(
                    "motion moved: {} (by {})",
                    f.text(&b.text),
                    f.text(&b.mover.name)
                )
            }
        }
        Body::MotionWithdrawn(b) => {
            if th {
                format!("ถอนญัตติ {}", b.motion_id)
            } else {
                format!("motion {} withdrawn", b.motion_id)
            }
        }
        Body::MotionDecided(b) => {
            let d = match b.decision {
                Decision::Adopted => f.say("ที่ประชุมเห็นชอบ", "adopted"),
                Decision::Rejected => f.say("ที่ประชุมไม่เห็นชอบ", "rejected"),
            };
            if th {
                format!("ญัตติ {}: {d}", b.motion_id)
            } else {
                format!("motion {} {d}", b.motion_id)
            }
        }
        Body::VoteOpened(b) => {
            let method = match b.method {
                VoteMethod::Electronic => f.say("ลงคะแนนด้วยเครื่อง", "electronic"),
                VoteMethod::RollCall => f.say("ขานชื่อ", "roll call"),
                VoteMethod::SecretBallot => f.say("ลงคะแนนลับ", "secret ballot"),
                VoteMethod::ShowOfHands => f.say("ยกมือ", "show of hands"),
            };
            format!(
                "{} ({method}): {}{}",
                f.say("เปิดการลงมติ", "vote opened"),
                f.text(&b.question),
                on_bill(f, &b.bill_id)
            )
        }
        Body::VoteClosed(b) => format!(
            "{}: {}{}",
            f.say("ปิดการลงมติ", "vote closed"),
            tally(f, &b.counts),
            on_bill(f, &b.bill_id)
        ),
        Body::VoteResult(b) => {
            let r = match b.result {
                VoteOutcome::Passed => f.say("ผ่าน", "passed"),
                VoteOutcome::Failed => f.say("ไม่ผ่าน", "failed"),
            };
            format!(
                "{}: {r}{}",
                f.say("ผลการลงมติ", "vote result"),
                on_bill(f, &b.bill_id)
            )
        }
    }
}

/// One line for people: `<time> <where> · <what>`.
///
/// ```
/// use sapha_subscribers::tail::{format_line, FormatOptions, Lang};
/// let closed = sapha_proto::examples::one_of_each_kind()
///     .into_iter()
///     .find(|e| e.body.kind() == "vote.closed")
///     .unwrap();
/// let line = format_line(&closed, FormatOptions { lang: Lang::En, thai_digits: false });
/// assert!(line.contains("aye 472 (MPs 323, senators 149)"));
/// ```
pub fn format_line(event: &Event, opts: FormatOptions) -> String {
    let f = Fmt { opts };
    let when = bangkok_time(event.occurred_at, event.precision, opts);
    let place = match event.body.sitting() {
        Some(s) => format!("{} {}", chamber(&f, s.chamber), s.sitting_id),
        None => event.aggregate_id.clone(),
    };
    format!("{when} {place} · {}", what(&f, &event.body))
}

/// A bill as the state API has it: a heading with its current stage, then one
/// line per stage of its timeline (`sapha tail --bill`).
pub fn format_bill(bill: &sapha_proto::projection::BillState, opts: FormatOptions) -> Vec<String> {
    let f = Fmt { opts };
    let label = |s: sapha_proto::stage::Stage| {
        let (t, e) = s.label();
        f.say(t, e).to_owned()
    };
    let mut lines = vec![format!(
        "{} {} · {}: {} ({} {})",
        bill.bill_id,
        short_title(&bill.title, opts.lang),
        f.say("ขั้นตอนปัจจุบัน", "now at"),
        label(bill.stage),
        f.say("ตั้งแต่", "since"),
        bangkok_time(bill.since, DatePrecision::Day, opts),
    )];
    for entry in &bill.timeline {
        let mut line = format!(
            "  {} · {}",
            bangkok_time(entry.at, entry.precision, opts),
            label(entry.to)
        );
        if entry.deemed {
            line.push_str(&format!(
                " ({})",
                f.say("ถือว่าให้ความเห็นชอบ", "deemed approved")
            ));
        }
        // The move's note, as the live line of the same event shows it.
        if let Some(note) = &entry.note {
            line.push_str(&format!(" ({})", f.text(note)));
        }
        if let Some(v) = &entry.decided_by {
            let result = match v.result {
                VoteOutcome::Passed => f.say("ผ่าน", "passed"),
                VoteOutcome::Failed => f.say("ไม่ผ่าน", "failed"),
            };
            line.push_str(&format!(
                " · {} {} {}",
                f.say("มติ", "vote"),
                v.sitting_id,
                result
            ));
        }
        lines.push(line);
    }
    lines
}

/// A bill as `GET /v1/bills` lists it (docs/STATE.md): what `sapha tail
/// --state` prints of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct BillSummary {
    pub bill_id: String,
    pub title: Text,
    pub stage: sapha_proto::stage::Stage,
    pub since: DateTime<Utc>,
}

/// What is true now, as the state API answered at stream position `seq`
/// (`sapha tail --state`): the sittings in progress in full, then the bills
/// that moved last (`bills` of `total`). The live lines follow it.
pub fn format_state(
    seq: u64,
    sittings: &[sapha_proto::projection::SittingState],
    bills: &[BillSummary],
    total: u64,
    opts: FormatOptions,
) -> Vec<String> {
    use sapha_proto::projection::SittingStatus;
    let f = Fmt { opts };
    let time = |t: DateTime<Utc>| bangkok_time(t, DatePrecision::Instant, opts);
    let mut lines = vec![format!(
        "== {} {} ==",
        f.say("ขณะนี้ ณ ลำดับที่", "now, at stream position"),
        f.num(seq)
    )];
    if sittings.is_empty() {
        lines.push(
            f.say("ไม่มีการประชุมที่กำลังดำเนินอยู่", "no sitting in progress")
                .to_owned(),
        );
    }
    for s in sittings {
        let status = match s.status {
            SittingStatus::Open => f.say("กำลังประชุม", "in session"),
            SittingStatus::Suspended => f.say("พักการประชุม", "suspended"),
            SittingStatus::InCamera => f.say("ประชุมลับ", "in camera"),
            SittingStatus::Scheduled => f.say("นัดประชุม", "scheduled"),
            SittingStatus::Closed => f.say("ปิดประชุมแล้ว", "closed"),
            SittingStatus::Cancelled => f.say("งดประชุม", "cancelled"),
        };
        let mut head = format!("{} {} · {status}", chamber(&f, s.chamber), s.sitting_id);
        if let Some(at) = s.opened_at {
            head.push_str(&format!(" · {} {}", f.say("เปิดประชุม", "opened"), time(at)));
        }
        lines.push(head);
        if let Some(title) = &s.title {
            lines.push(format!("  {}", f.text(title)));
        }
        let item = s
            .current_item
            .as_ref()
            .and_then(|id| s.agenda.iter().find(|a| &a.item_id == id));
        if let Some(a) = item {
            let mut line = format!("  {}: {}", f.say("ระเบียบวาระ", "agenda"), f.text(&a.title));
            if let Some(section) = a.sections.last() {
                line.push_str(&format!(" · {} {section}", f.say("มาตรา", "section")));
            }
            lines.push(line);
        }
        if let Some(chair) = &s.chair {
            lines.push(format!(
                "  {}: {}",
                f.say("ประธาน", "in the chair"),
                f.text(&chair.person.name)
            ));
        }
        if let Some(floor) = &s.floor {
            lines.push(format!(
                "  {}: {}",
                f.say("ผู้อภิปราย", "has the floor"),
                f.text(&floor.person.name)
            ));
        }
        if let Some(q) = &s.quorum {
            let met = if q.met {
                f.say("ครบองค์ประชุม", "quorum met")
            } else {
                f.say("ไม่ครบองค์ประชุม", "no quorum")
            };
            lines.push(format!(
                "  {}: {} {} · {} {} ({met}, {})",
                f.say("องค์ประชุม", "quorum"),
                f.say("แสดงตน", "present"),
                f.num(q.present),
                f.say("ต้องมี", "required"),
                f.num(q.required),
                time(q.at)
            ));
        }
        for v in &s.votes {
            let question = v
                .question
                .as_ref()
                .map_or(v.vote_id.as_str(), |q| f.text(q));
            let state = match (&v.result, &v.counts) {
                (Some(VoteOutcome::Passed), _) => f.say("ผ่าน", "passed").to_owned(),
                (Some(VoteOutcome::Failed), _) => f.say("ไม่ผ่าน", "failed").to_owned(),
                (None, Some(_)) => f.say("นับคะแนนแล้ว", "counted").to_owned(),
                (None, None) => f.say("กำลังนับคะแนน", "being counted").to_owned(),
            };
            let mut line = format!(
                "  {} {}: {question} · {state}",
                f.say("มติ", "vote"),
                v.vote_id
            );
            if let Some(counts) = &v.counts {
                line.push_str(&format!(" · {}", tally(&f, counts)));
            }
            lines.push(line);
        }
    }
    lines.push(format!(
        "{} ({} {} {}):",
        f.say("ร่างกฎหมายที่มีความเคลื่อนไหวล่าสุด", "bills that moved last"),
        f.num(bills.len()),
        f.say("จาก", "of"),
        f.num(total)
    ));
    for b in bills {
        let (th, en) = b.stage.label();
        lines.push(format!(
            "  {} {} · {} {} ({} {})",
            b.bill_id,
            short_title(&b.title, opts.lang),
            f.say("ขั้นตอนปัจจุบัน", "now at"),
            f.say(th, en),
            f.say("ตั้งแต่", "since"),
            bangkok_time(b.since, DatePrecision::Day, opts)
        ));
    }
    lines.push(format!(
        "== {} ==",
        f.say("ต่อจากนี้ สด", "from here on, live")
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_proto::examples::one_of_each_kind;

    fn example(kind: &str) -> Event {
        one_of_each_kind()
            .into_iter()
            .find(|e| e.body.kind() == kind)
            .unwrap()
    }

    const TH: FormatOptions = FormatOptions {
        lang: Lang::Th,
        thai_digits: false,
    };
    const EN: FormatOptions = FormatOptions {
        lang: Lang::En,
        thai_digits: false,
    };

    #[test]
    fn the_vote_of_10_september_2021_shows_its_tallies() {
        let e = example("vote.closed");
        assert_eq!(
            format_line(&e, TH),
            "10 ก.ย. 2564 12:40 รัฐสภา joint-2564-1-10 · ปิดการลงมติ: \
             เห็นด้วย 472 (ส.ส. 323, ส.ว. 149) · ไม่เห็นด้วย 33 (ส.ส. 23, ส.ว. 10) · \
             งดออกเสียง 187 (ส.ส. 121, ส.ว. 66) [ร่าง b-2564-ca-0001]"
        );
        assert_eq!(
            format_line(&e, EN),
            "10 Sep B.E. 2564 12:40 Joint sitting joint-2564-1-10 · vote closed: \
             aye 472 (MPs 323, senators 149) · no 33 (MPs 23, senators 10) · \
             abstain 187 (MPs 121, senators 66) [bill b-2564-ca-0001]"
        );
    }

    #[test]
    fn a_bill_prints_its_stage_and_timeline() {
        let mut p = sapha_proto::projection::Projection::default();
        for (i, e) in one_of_each_kind().iter().enumerate() {
            p.apply(i as u64 + 1, e);
        }
        let lines = format_bill(&p.bills["b-2564-ca-0001"], EN);
        assert!(
            lines[0].starts_with("b-2564-ca-0001 ")
                && lines[0]
                    .contains("now at: approved, awaiting presentation for royal assent (since 10 Sep B.E. 2564)"),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            "  10 Sep B.E. 2564 · approved, awaiting presentation for royal assent (passed its third reading)"
        );
    }

    /// `tail --bill` shows each move's note, as the live line of that move does.
    #[test]
    fn a_bills_timeline_keeps_each_moves_note() {
        let mut e = example("bill.stage_changed");
        let Body::BillStageChanged(b) = &mut e.body else {
            unreachable!()
        };
        b.note = Some(Text::new("เสนอโดยคณะรัฐมนตรี", "introduced by the Cabinet"));
        let mut p = sapha_proto::projection::Projection::default();
        p.apply(1, &e);
        let lines = format_bill(&p.bills[&e.aggregate_id], EN);
        assert!(
            lines[1].ends_with(" (introduced by the Cabinet)"),
            "{lines:?}"
        );
        assert!(format_line(&e, EN).contains("(introduced by the Cabinet)"));
        let th = format_bill(&p.bills[&e.aggregate_id], FormatOptions::default());
        assert!(th[1].ends_with(" (เสนอโดยคณะรัฐมนตรี)"), "{th:?}");
    }

    /// `tail --state`: a sitting in progress in full (agenda, floor, quorum,
    /// the vote being counted), then the bills that moved last.
    #[test]
    fn the_state_now_shows_the_sitting_in_progress_and_the_bills() {
        let mut p = sapha_proto::projection::Projection::default();
        for (i, e) in one_of_each_kind().iter().enumerate() {
            p.apply(i as u64 + 1, e);
        }
        let live: Vec<_> = p.live_sittings().cloned().collect();
        assert_eq!(live.len(), 1);
        let bill = &p.bills["b-2564-ca-0001"];
        let summary = BillSummary {
            bill_id: bill.bill_id.clone(),
            title: bill.title.clone(),
            stage: bill.stage,
            since: bill.since,
        };
        let lines = format_state(p.seq, &live, &[summary], 1, EN);
        let text = lines.join("\n");
        assert_eq!(lines[0], format!("== now, at stream position {} ==", p.seq));
        assert!(
            text.contains("Joint sitting joint-2564-1-10 · in session · opened "),
            "{text}"
        );
        assert!(
            text.contains("  quorum: present 692 · required 365 (quorum met, "),
            "{text}"
        );
        assert!(text.contains("  vote vote-1: "), "{text}");
        assert!(
            text.contains("passed · aye 472 (MPs 323, senators 149)"),
            "{text}"
        );
        assert!(text.contains("bills that moved last (1 of 1):"), "{text}");
        assert!(text.contains("  b-2564-ca-0001 "), "{text}");
        assert_eq!(lines.last().unwrap(), "== from here on, live ==");
        let none = format_state(7, &[], &[], 0, FormatOptions::default());
        assert_eq!(none[1], "ไม่มีการประชุมที่กำลังดำเนินอยู่");
    }

    #[test]
    fn the_chair_is_named_once_when_the_name_is_the_office() {
        let mut e = example("floor.chair_changed");
        assert!(
            format_line(&e, EN)
                .ends_with("in the chair: Chuan Leekpai (President of the National Assembly)"),
            "{}",
            format_line(&e, EN)
        );
        let Body::ChairChanged(b) = &mut e.body else {
            unreachable!()
        };
        b.person.name = b.office.clone();
        let line = format_line(&e, TH);
        assert!(line.ends_with("ผู้ทำหน้าที่ประธาน: ประธานรัฐสภา"), "{line}");
    }

    #[test]
    fn a_bloc_breakdown_does_not_count_the_mps_twice() {
        let mut e = example("vote.closed");
        let Body::VoteClosed(b) = &mut e.body else {
            unreachable!()
        };
        b.counts.push(VoteCount {
            option: VoteOption::Aye,
            group: Some(Group::Opposition),
            value: 100,
        });
        let line = format_line(&e, EN);
        assert!(
            line.contains("aye 472 (MPs 323, senators 149, opposition MPs 100)"),
            "{line}"
        );
    }

    #[test]
    fn thai_digits_apply_to_numbers_but_not_ids() {
        let e = example("vote.closed");
        let line = format_line(
            &e,
            FormatOptions {
                lang: Lang::Th,
                thai_digits: true,
            },
        );
        assert!(
            line.starts_with("๑๐ ก.ย. ๒๕๖๔ ๑๒:๔๐ รัฐสภา joint-2564-1-10"),
            "{line}"
        );
        assert!(line.contains("เห็นด้วย ๔๗๒ (ส.ส. ๓๒๓, ส.ว. ๑๔๙)"), "{line}");
    }

    #[test]
    fn times_are_bangkok_with_buddhist_era_years() {
        // 23:30 UTC on 31 Dec 2023 is already 1 Jan 2024 (พ.ศ. 2567) in Bangkok.
        let t = "2023-12-31T23:30:00Z".parse().unwrap();
        assert_eq!(
            bangkok_time(t, DatePrecision::Instant, TH),
            "1 ม.ค. 2567 06:30"
        );
        assert_eq!(bangkok_time(t, DatePrecision::Day, EN), "1 Jan B.E. 2567");
    }

    #[test]
    fn a_stage_change_reads_as_a_move_between_stages() {
        let e = example("bill.stage_changed");
        assert_eq!(
            format_line(&e, EN),
            "10 Sep B.E. 2564 b-2564-ca-0001 · Draft Constitutional Amendment (No. ..) B.E. .... \
             (sections 83 and 91): joint sitting third reading → approved, awaiting presentation \
             for royal assent (passed its third reading)"
        );
        let th = format_line(&e, TH);
        assert!(
            th.contains("รัฐสภา วาระที่ 3 → ผ่านความเห็นชอบแล้ว รอนำขึ้นทูลเกล้าฯ (ผ่านวาระที่ 3)"),
            "{th}"
        );
    }

    #[test]
    fn every_kind_has_a_line_in_both_languages() {
        for e in one_of_each_kind() {
            for opts in [TH, EN] {
                let line = format_line(&e, opts);
                assert!(line.contains(" · "), "{line}");
                assert!(!line.contains('\n'));
            }
        }
        let q = format_line(&example("sitting.quorum_checked"), TH);
        assert!(
            q.ends_with("ตรวจองค์ประชุม: แสดงตน 692 ต้องการ 365 จากสมาชิกเท่าที่มีอยู่ 730 — ครบองค์ประชุม"),
            "{q}"
        );
    }

    #[test]
    fn titles_are_shortened() {
        let t = Text::new(
            "ร่างพระราชบัญญัติการศึกษา (ฉบับที่ ..) พ.ศ. ....",
            "Draft Education Act",
        );
        assert_eq!(
            short_title(&t, Lang::Th),
            "ร่าง พ.ร.บ. การศึกษา (ฉบับที่ ..) พ.ศ. ...."
        );
        assert_eq!(short_title(&t, Lang::En), "Draft Education Act");
        let th_only = Text::new("ร่างพระราชกำหนดภาษี", "");
        assert_eq!(short_title(&th_only, Lang::En), "ร่าง พ.ร.ก. ภาษี");
    }
}
