//! What both targets get: topic filters, topics, and events that carry their
//! generator index and send time in `source_ref` (`bench:<index>:<unix ns>`),
//! a field that the JSON form and the stored protobuf both carry verbatim.

use sapha_proto::event::*;
use sapha_proto::stage::{BillType, Stage};
use sapha_proto::{Event, TopicFilter};
use std::time::{SystemTime, UNIX_EPOCH};

/// The marker in front of the index and the timestamp, searched for in raw frames.
pub const MARKER: &[u8] = b"bench:";

/// The bill id of topic number `i`.
pub fn bill_id(i: usize) -> String {
    format!("b-2566-{i:05}")
}

/// The per-bill filter of topic number `i` (every event of that bill).
pub fn bill_filter(i: usize) -> TopicFilter {
    TopicFilter::parse(&format!("bill.{}", bill_id(i))).expect("a valid filter")
}

/// Nanoseconds since the Unix epoch, the clock both the publisher and the
/// clients read (one machine, one clock).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Event number `index` of a run, on topic number `topic`, sent at `sent_ns`.
/// Its size is that of a real bill stage change (Thai and English title).
pub fn event(run: &str, index: u64, topic: usize, sent_ns: u64) -> Event {
    let bill = bill_id(topic);
    Event {
        schema_version: SCHEMA_VERSION,
        event_id: format!("e-{run}-{index}"),
        aggregate_id: bill.clone(),
        seq: index + 1,
        occurred_at: chrono::DateTime::from_timestamp(1_693_526_400, 0).expect("a valid time"),
        precision: DatePrecision::Day,
        recorded_at: None,
        source: "bench".into(),
        source_ref: Some(format!("bench:{index}:{sent_ns}")),
        supersedes: None,
        body: Body::BillStageChanged(BillStageChanged {
            bill_id: bill,
            bill_type: BillType::Act,
            title: Text::new(
                "ร่างพระราชบัญญัติงบประมาณรายจ่ายประจำปีงบประมาณ พ.ศ. 2567",
                "Draft Budget Expenditure Act B.E. 2567",
            ),
            from_stage: Some(Stage::HouseR1),
            to_stage: Stage::HouseCommittee,
            note: None,
            merged_into: None,
            deemed: false,
            deadline: None,
            money_bill: false,
            proposer: None,
            recommended_by: None,
            returned_on: None,
        }),
    }
}

/// Finds every `bench:<index>:<ns>` marker in a frame (a frame may carry
/// several events) and calls `f(index, sent_ns)` for each.
pub fn scan_markers(frame: &[u8], mut f: impl FnMut(u64, u64)) {
    let finder = memchr::memmem::Finder::new(MARKER);
    let mut at = 0;
    while let Some(pos) = finder.find(&frame[at..]) {
        let start = at + pos + MARKER.len();
        let (index, used) = digits(&frame[start..]);
        let mut next = start + used;
        if used > 0 && frame.get(next) == Some(&b':') {
            let (ns, used_ns) = digits(&frame[next + 1..]);
            if used_ns > 0 {
                f(index, ns);
            }
            next += 1 + used_ns;
        }
        at = next;
    }
}

fn digits(s: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    let mut n = 0;
    for &b in s.iter().take(20) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        n += 1;
    }
    (v, n)
}

/// `n` distinct filters in the mix a real hub would hold: per-bill filters,
/// per-bill stage filters, per-sitting filters, and a few wildcards.
pub fn mixed_filters(n: usize) -> Vec<TopicFilter> {
    let wildcards = [
        ">",
        "bill.*.stage",
        "bill.*.vote",
        "sitting.*.*.vote",
        "sitting.senate.>",
        "sitting.house.*.floor",
        "bill.>",
        "*.*.*.vote",
    ];
    let mut out: Vec<TopicFilter> = wildcards
        .iter()
        .map(|w| TopicFilter::parse(w).expect("a valid filter"))
        .collect();
    let mut i = 0;
    while out.len() < n {
        let text = match i % 4 {
            0 | 1 => format!("bill.{}", bill_id(i)),
            2 => format!("bill.{}.stage", bill_id(i)),
            _ => format!("sitting.senate.senate-2566-{i}"),
        };
        out.push(TopicFilter::parse(&text).expect("a valid filter"));
        i += 1;
    }
    out.truncate(n);
    out
}

/// Topics to look up against [`mixed_filters`]: hits, misses, and votes.
pub fn sample_topics() -> Vec<String> {
    let mut out = Vec::new();
    for i in (0..10_000).step_by(625) {
        out.push(format!("bill.{}.stage", bill_id(i)));
        out.push(format!("sitting.senate.senate-2566-{}.floor", i + 3));
    }
    out.push("bill.b-2566-99999.vote".into());
    out.push("sitting.joint.joint-2564-1-10.vote".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_survive_both_encodings() {
        let e = event("r1", 42, 7, 1_700_000_000_123_456_789);
        let mut seen = Vec::new();
        scan_markers(e.to_json().as_bytes(), |i, ns| seen.push((i, ns)));
        scan_markers(&e.encode_proto(), |i, ns| seen.push((i, ns)));
        assert_eq!(seen, [(42, 1_700_000_000_123_456_789); 2]);
    }

    #[test]
    fn several_markers_in_one_frame() {
        let frame = b"{..\"source_ref\":\"bench:1:10\"..}\n{..\"bench:2:20\"}bench:x bench:3:";
        let mut seen = Vec::new();
        scan_markers(frame, |i, ns| seen.push((i, ns)));
        assert_eq!(seen, [(1, 10), (2, 20)]);
    }

    #[test]
    fn mixed_filters_are_distinct() {
        let f = mixed_filters(10_000);
        let mut texts: Vec<&str> = f.iter().map(|f| f.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), 10_000);
    }
}
