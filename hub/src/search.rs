//! Text search over bill titles that works in Thai.
//!
//! Thai is written without spaces between words, so a query is matched as a
//! substring of the title, not word by word. Both sides are normalized first:
//! lower case, Thai digits as Arabic ones (๒๕๖๗ = 2567), no spaces, and the
//! common abbreviations written out (`พ.ร.บ.` = `พระราชบัญญัติ`, `พ.ร.ก.` =
//! `พระราชกำหนด`, `พ.ร.ป.` = `พระราชบัญญัติประกอบรัฐธรรมนูญ`). The match is
//! mapped back to the title as it is written, so the answer can mark it.
//!
//! The state keeps each title normalized (`normalized`), so a search is a
//! substring scan of prepared strings; at the sizes Sapha serves (20,000 bills)
//! that is fast enough (BENCHMARKS.md, "The state API at scale") that there is
//! no index to keep in step with the projection.

/// Abbreviations and their long forms, longest abbreviation first.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("พ.ร.บ.", "พระราชบัญญัติ"),
    ("พ.ร.ก.", "พระราชกำหนด"),
    ("พ.ร.ป.", "พระราชบัญญัติประกอบรัฐธรรมนูญ"),
];

/// A normalized text, and for each of its chars the range of chars of the
/// original that it came from.
pub(crate) struct Normalized {
    pub(crate) chars: Vec<char>,
    origin: Vec<(usize, usize)>,
}

fn fold_char(c: char) -> Option<char> {
    match c {
        '๐'..='๙' => char::from_u32(c as u32 - '๐' as u32 + '0' as u32),
        c if c.is_whitespace() || c == '\u{200b}' => None,
        c => Some(c.to_lowercase().next().unwrap_or(c)),
    }
}

/// Normalizes `text` (see the module doc), keeping where each char came from.
pub(crate) fn normalize(text: &str) -> Normalized {
    let original: Vec<char> = text.chars().collect();
    let mut out = Normalized {
        chars: Vec::with_capacity(original.len()),
        origin: Vec::with_capacity(original.len()),
    };
    let mut i = 0;
    'outer: while i < original.len() {
        for (short, long) in ABBREVIATIONS {
            let n = short.chars().count();
            if original.len() >= i + n && original[i..i + n].iter().copied().eq(short.chars()) {
                for c in long.chars() {
                    out.chars.push(c);
                    out.origin.push((i, i + n));
                }
                i += n;
                continue 'outer;
            }
        }
        if let Some(c) = fold_char(original[i]) {
            out.chars.push(c);
            out.origin.push((i, i + 1));
        }
        i += 1;
    }
    out
}

/// `text` normalized, as a string: what a prepared title or query is compared as.
pub(crate) fn normalized(text: &str) -> String {
    normalize(text).chars.into_iter().collect()
}

/// Where `query` (normalized) first occurs in `text`: the range of chars
/// (Unicode code points) of the original text.
pub(crate) fn find(query: &Normalized, text: &str) -> Option<(usize, usize)> {
    let q = &query.chars;
    if q.is_empty() {
        return None;
    }
    let t = normalize(text);
    let at = t.chars.windows(q.len()).position(|w| w == q.as_slice())?;
    Some((t.origin[at].0, t.origin[at + q.len() - 1].1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(q: &str, text: &str) -> Option<String> {
        let (a, b) = find(&normalize(q), text)?;
        Some(text.chars().skip(a).take(b - a).collect())
    }

    #[test]
    fn thai_substrings_match_without_word_breaks() {
        let title = "ร่างพระราชบัญญัติภาษีเงินได้ (ฉบับที่ ..) พ.ศ. ....";
        assert_eq!(hit("ภาษี", title).as_deref(), Some("ภาษี"));
        assert_eq!(hit("ภาษีเงินได้", title).as_deref(), Some("ภาษีเงินได้"));
        assert_eq!(hit("ประมง", title), None);
    }

    #[test]
    fn abbreviations_match_their_long_forms_both_ways() {
        let long = "ร่างพระราชบัญญัติการประมง (ฉบับที่ ..) พ.ศ. ....";
        assert_eq!(
            hit("พ.ร.บ.การประมง", long).as_deref(),
            Some("พระราชบัญญัติการประมง")
        );
        let short = "ร่าง พ.ร.บ. การประมง";
        assert_eq!(
            hit("พระราชบัญญัติการประมง", short).as_deref(),
            Some("พ.ร.บ. การประมง")
        );
        let organic = "ร่างพระราชบัญญัติประกอบรัฐธรรมนูญว่าด้วยผู้ตรวจการแผ่นดิน";
        assert!(hit("พ.ร.ป.ว่าด้วยผู้ตรวจการแผ่นดิน", organic).is_some());
        assert!(hit("พ.ร.ก.", "ร่างพระราชกำหนดการกู้เงิน").is_some());
    }

    #[test]
    fn digits_and_case_and_spaces_do_not_matter() {
        assert_eq!(hit("2567", "พ.ศ. ๒๕๖๗").as_deref(), Some("๒๕๖๗"));
        assert_eq!(hit("๒๕๖๗", "B.E. 2567").as_deref(), Some("2567"));
        assert_eq!(
            hit("ombudsmen", "Draft Organic Act on the Ombudsmen").as_deref(),
            Some("Ombudsmen")
        );
        assert_eq!(
            hit("public health", "Draft Public Health Act").as_deref(),
            Some("Public Health")
        );
        assert_eq!(hit("  ", "anything"), None);
    }
}
