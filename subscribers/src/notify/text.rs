//! The words of a notification, built from the stage labels of
//! `sapha_proto::stage::Stage::label`.

use crate::tail::{short_title, Lang};
use sapha_proto::event::{BillStageChanged, Text};
use sapha_proto::stage::Stage;

/// Readings: leaving one of these means the bill passed it.
fn is_reading(s: Stage) -> bool {
    use Stage::*;
    matches!(
        s,
        HouseR1 | HouseR2 | HouseR3 | SenateR1 | SenateR2 | SenateR3 | JointR1 | JointR2 | JointR3
    )
}

/// Ends that are not a success.
fn is_failure(s: Stage) -> bool {
    matches!(
        s,
        Stage::Rejected | Stage::Lapsed | Stage::Withdrawn | Stage::Merged
    )
}

/// "ร่าง พ.ร.บ. … ผ่านวาระที่ 1 ขั้นรับหลักการ" / "… passed the House first reading".
pub fn notification_text(b: &BillStageChanged) -> Text {
    let th_title = short_title(&b.title, Lang::Th);
    let en_title = short_title(&b.title, Lang::En);
    let (to_th, to_en) = b.to_stage.label();
    match b.from_stage {
        _ if is_failure(b.to_stage) => Text::new(
            format!("{th_title} {to_th}"),
            format!("{en_title}: {to_en}"),
        ),
        // A deadline passed without a decision (ss.132, 137, 143, 146).
        _ if b.deemed => Text::new(
            format!("{th_title} ถือว่าได้รับความเห็นชอบเพราะพ้นกำหนดเวลา เข้าสู่ขั้นตอน{to_th}"),
            format!("{en_title} is deemed approved (the deadline passed) and moved on to: {to_en}"),
        ),
        // s.137 (3) and s.138: the House's two different reconsiderations.
        _ if b.to_stage == Stage::HouseSenateAmendments => Text::new(
            format!("{th_title} วุฒิสภาแก้ไขเพิ่มเติม ส่งกลับสภาผู้แทนราษฎรพิจารณา"),
            format!("{en_title} was amended by the Senate and goes back to the House to agree or not"),
        ),
        _ if b.to_stage == Stage::HouseReaffirm => Text::new(
            format!("{th_title} สภาผู้แทนราษฎรยกขึ้นพิจารณาเพื่อยืนยันร่างเดิม"),
            format!("{en_title} is before the House again, to be reaffirmed after the Senate withheld it"),
        ),
        Some(from) if is_reading(from) => {
            let (from_th, from_en) = from.label();
            Text::new(
                format!("{th_title} ผ่าน{from_th}"),
                format!("{en_title} passed the {from_en}"),
            )
        }
        _ => Text::new(
            format!("{th_title} เข้าสู่ขั้นตอน{to_th}"),
            format!("{en_title} moved on to: {to_en}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_proto::stage::BillType;

    fn change(from: Option<Stage>, to: Stage) -> BillStageChanged {
        BillStageChanged {
            bill_id: "b-2566-0123".into(),
            bill_type: BillType::Act,
            title: Text::new(
                "ร่างพระราชบัญญัติการศึกษาแห่งชาติ พ.ศ. ....",
                "Draft National Education Act",
            ),
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

    #[test]
    fn passing_a_reading() {
        let t = notification_text(&change(Some(Stage::HouseR1), Stage::HouseCommittee));
        assert_eq!(
            t.th,
            "ร่าง พ.ร.บ. การศึกษาแห่งชาติ พ.ศ. .... ผ่านวาระที่ 1 ขั้นรับหลักการ"
        );
        assert_eq!(
            t.en,
            "Draft National Education Act passed the House first reading"
        );
    }

    #[test]
    fn other_moves_and_failures() {
        let t = notification_text(&change(Some(Stage::HouseCommittee), Stage::HouseR2));
        assert_eq!(t.th, "ร่าง พ.ร.บ. การศึกษาแห่งชาติ พ.ศ. .... เข้าสู่ขั้นตอนวาระที่ 2");
        assert_eq!(
            t.en,
            "Draft National Education Act moved on to: House second reading"
        );
        let t = notification_text(&change(Some(Stage::HouseR1), Stage::Rejected));
        assert_eq!(t.th, "ร่าง พ.ร.บ. การศึกษาแห่งชาติ พ.ศ. .... ตกไป");
        assert_eq!(t.en, "Draft National Education Act: rejected");
        let t = notification_text(&change(None, Stage::Proposed));
        assert_eq!(t.en, "Draft National Education Act moved on to: introduced");
    }

    #[test]
    fn a_deemed_approval_says_so() {
        let mut b = change(Some(Stage::SenateR2), Stage::PresentedForAssent);
        b.deemed = true;
        let t = notification_text(&b);
        assert_eq!(
            t.en,
            "Draft National Education Act is deemed approved (the deadline passed) and moved on to: presented for royal assent"
        );
        assert!(t.th.contains("ถือว่าได้รับความเห็นชอบ"), "{}", t.th);
    }

    #[test]
    fn the_two_house_reconsiderations_read_differently() {
        let amended =
            notification_text(&change(Some(Stage::SenateR3), Stage::HouseSenateAmendments));
        let reaffirm = notification_text(&change(Some(Stage::Withheld), Stage::HouseReaffirm));
        assert!(
            amended.en.contains("amended by the Senate"),
            "{}",
            amended.en
        );
        assert!(reaffirm.en.contains("to be reaffirmed"), "{}", reaffirm.en);
        assert_ne!(amended.th, reaffirm.th);
    }
}
