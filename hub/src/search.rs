//! Text search over bill titles that works in Thai.
//!
//! Thai is written without spaces between words, so a query is matched as a
//! substring of the title, not word by word. Both sides are normalized first:
//!
//! - lower case, Thai digits as Arabic ones (๒๕๖๗ = 2567), no spaces;
//! - **no dots**: `B.E.` = `BE`, and a query typed key by key (`พ.`, `พ.ร`)
//!   keeps matching on the way to `พ.ร.บ.`;
//! - **the common Thai legal abbreviations written out**, with or without their
//!   dots ([`ABBREVIATIONS`]): `พ.ร.บ.`, `พ.ร.บ` and `พรบ` are all
//!   `พระราชบัญญัติ`, so `พรบภาษี` finds `ร่างพระราชบัญญัติภาษี...`. The short
//!   ones that could be part of a word (`ส.ส.`, `ป.อ.`) count only with their
//!   dots between letters.
//!
//! A title is also given the words of a small English synonym list
//! ([`SYNONYMS`]): `budget` finds the "Annual Appropriations Act". They are
//! appended after the title (behind a separator no query can contain), each
//! mapped back to the word it stands for, so a query matches a synonym whole or
//! by its beginning, never across it and the title.
//!
//! The match is mapped back to the title as it is written, so the answer can
//! mark it.
//!
//! The state keeps each title prepared ([`title_key`]), so a search is a
//! substring scan of prepared strings; at the sizes Sapha serves (20,000 bills)
//! that is fast enough (BENCHMARKS.md, "The state API at scale") that there is
//! no index to keep in step with the projection.

/// One abbreviation: its parts (the letters between its dots), what it stands
/// for, and whether it counts only when written with its dots between parts
/// (two-letter ones that could be the inside of a word).
struct Abbreviation {
    parts: &'static [&'static str],
    long: &'static str,
    needs_dots: bool,
}

const fn abbr(parts: &'static [&'static str], long: &'static str) -> Abbreviation {
    Abbreviation {
        parts,
        long,
        needs_dots: false,
    }
}

const fn dotted(parts: &'static [&'static str], long: &'static str) -> Abbreviation {
    Abbreviation {
        parts,
        long,
        needs_dots: true,
    }
}

/// The Thai legal abbreviations search writes out (docs/STATE.md lists them).
/// Tried in this order; none is the beginning of another.
const ABBREVIATIONS: &[Abbreviation] = &[
    abbr(&["พ", "ร", "บ"], "พระราชบัญญัติ"),
    abbr(&["พ", "ร", "ก"], "พระราชกำหนด"),
    abbr(&["พ", "ร", "ป"], "พระราชบัญญัติประกอบรัฐธรรมนูญ"),
    abbr(&["พ", "ร", "ฎ"], "พระราชกฤษฎีกา"),
    abbr(&["รธน"], "รัฐธรรมนูญ"),
    abbr(&["ครม"], "คณะรัฐมนตรี"),
    abbr(&["ป", "พ", "พ"], "ประมวลกฎหมายแพ่งและพาณิชย์"),
    abbr(&["ป", "วิ", "อ"], "ประมวลกฎหมายวิธีพิจารณาความอาญา"),
    abbr(&["ป", "วิ", "พ"], "ประมวลกฎหมายวิธีพิจารณาความแพ่ง"),
    dotted(&["ป", "อ"], "ประมวลกฎหมายอาญา"),
    dotted(&["ส", "ส"], "สมาชิกสภาผู้แทนราษฎร"),
    dotted(&["ส", "ว"], "สมาชิกวุฒิสภา"),
];

/// English synonyms: a title whose normalized text contains the first gives
/// the others too (docs/STATE.md lists them).
pub(crate) const SYNONYMS: &[(&str, &[&str])] = &[
    ("appropriation", &["budget"]),
    ("budget", &["appropriation"]),
    ("organicact", &["organiclaw"]),
    ("amending", &["amendment"]),
    ("amendment", &["amending"]),
    ("draft", &["bill"]),
];

/// Stands between a title and its synonyms: folded away from any query.
const SEPARATOR: char = '\u{1}';

/// A normalized text, and for each of its chars the range of chars of the
/// original that it came from.
pub(crate) struct Normalized {
    pub(crate) chars: Vec<char>,
    origin: Vec<(usize, usize)>,
}

fn fold_char(c: char) -> Option<char> {
    match c {
        '๐'..='๙' => char::from_u32(c as u32 - '๐' as u32 + '0' as u32),
        c if c.is_whitespace() || c == '\u{200b}' || c == '.' || c.is_control() => None,
        c => Some(c.to_lowercase().next().unwrap_or(c)),
    }
}

/// The end (exclusive) of `abbreviation` written at `at` in `text`, if it is:
/// its parts in order, each but the first after at most one dot (and spaces
/// after that dot), with an optional dot at the end.
fn abbreviation_at(text: &[char], at: usize, abbreviation: &Abbreviation) -> Option<usize> {
    let mut i = at;
    let mut dots = 0;
    for (k, part) in abbreviation.parts.iter().enumerate() {
        if k > 0 && text.get(i) == Some(&'.') {
            dots += 1;
            i += 1;
            while text.get(i).is_some_and(|c| *c == ' ') {
                i += 1;
            }
        }
        for c in part.chars() {
            if text.get(i) != Some(&c) {
                return None;
            }
            i += 1;
        }
    }
    if abbreviation.needs_dots && dots + 1 < abbreviation.parts.len() {
        return None;
    }
    if text.get(i) == Some(&'.') {
        i += 1;
    }
    Some(i)
}

/// Normalizes a query (see the module doc), keeping where each char came from.
pub(crate) fn normalize(text: &str) -> Normalized {
    let original: Vec<char> = text.chars().collect();
    let mut out = Normalized {
        chars: Vec::with_capacity(original.len()),
        origin: Vec::with_capacity(original.len()),
    };
    let mut i = 0;
    'outer: while i < original.len() {
        for abbreviation in ABBREVIATIONS {
            if let Some(end) = abbreviation_at(&original, i, abbreviation) {
                for c in abbreviation.long.chars() {
                    out.chars.push(c);
                    out.origin.push((i, end));
                }
                i = end;
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

/// Normalizes a title: as a query, then its synonyms after a separator.
fn normalize_title(text: &str) -> Normalized {
    let mut out = normalize(text);
    let body: String = out.chars.iter().collect();
    for (word, others) in SYNONYMS {
        let Some(byte_at) = body.find(word) else {
            continue;
        };
        // The synonym stands for the title's word: mark that when it matches.
        let at = body[..byte_at].chars().count();
        let len = word.chars().count();
        let origin = (out.origin[at].0, out.origin[at + len - 1].1);
        for other in *others {
            out.chars.push(SEPARATOR);
            out.origin.push(origin);
            for c in other.chars() {
                out.chars.push(c);
                out.origin.push(origin);
            }
        }
    }
    out
}

/// A query normalized, as a string: what the prepared titles are searched for.
pub(crate) fn normalized(text: &str) -> String {
    normalize(text).chars.into_iter().collect()
}

/// A title prepared for search: normalized, with its synonyms (see the module doc).
pub(crate) fn title_key(text: &str) -> String {
    normalize_title(text).chars.into_iter().collect()
}

/// Where `query` (normalized) first occurs in the title `text`: the range of
/// chars (Unicode code points) of the original text.
pub(crate) fn find(query: &Normalized, text: &str) -> Option<(usize, usize)> {
    let q = &query.chars;
    if q.is_empty() {
        return None;
    }
    let t = normalize_title(text);
    let at = t.chars.windows(q.len()).position(|w| w == q.as_slice())?;
    Some((t.origin[at].0, t.origin[at + q.len() - 1].1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(q: &str, text: &str) -> Option<String> {
        let (a, b) = find(&normalize(q), text)?;
        // What the state API does first: the prepared title contains the query.
        assert!(title_key(text).contains(&normalized(q)), "{q} in {text}");
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

    /// The everyday spellings: without the last dot, without any dot, with
    /// spaces after the dots, and run into the next word.
    #[test]
    fn an_abbreviation_matches_with_or_without_its_dots() {
        let title = "ร่างพระราชบัญญัติภาษีสรรพสามิต (ฉบับที่ ..) พ.ศ. ....";
        for q in [
            "พ.ร.บ.",
            "พ.ร.บ",
            "พรบ",
            "พ. ร. บ.",
            "พรบ.",
            "พรบภาษี",
            "พ.ร.บ.ภาษี",
            "พรบ ภาษี",
        ] {
            assert!(hit(q, title).is_some(), "{q}");
        }
        assert_eq!(hit("พรบภาษี", title).as_deref(), Some("พระราชบัญญัติภาษี"));
        let code = "ร่างพระราชบัญญัติแก้ไขเพิ่มเติมประมวลกฎหมายแพ่งและพาณิชย์ (ฉบับที่ ..)";
        for q in ["ป.พ.พ.", "ปพพ", "ป.พ.พ"] {
            assert!(hit(q, code).is_some(), "{q}");
        }
        let criminal = "ร่างพระราชบัญญัติแก้ไขเพิ่มเติมประมวลกฎหมายวิธีพิจารณาความอาญา";
        assert!(hit("ป.วิ.อ.", criminal).is_some());
        assert!(hit("รธน.", "ร่างรัฐธรรมนูญแก้ไขเพิ่มเติม (ฉบับที่ ..)").is_some());
        assert!(hit("พ.ร.ฎ.", "ร่างพระราชกฤษฎีกาจัดตั้ง").is_some());
        assert!(hit("ป.อ.", "แก้ไขเพิ่มเติมประมวลกฎหมายอาญา").is_some());
    }

    /// Two-letter abbreviations count only with their dots: `ปอ` is the start
    /// of ปอด (lung), not the Criminal Code.
    #[test]
    fn short_abbreviations_need_their_dots() {
        assert_eq!(hit("ปอด", "ร่างพระราชบัญญัติโรคปอด"), Some("ปอด".into()));
        assert_eq!(hit("ป.อ.", "ร่างพระราชบัญญัติโรคปอด"), None);
        assert!(hit("ส.ส.", "การเลือกตั้งสมาชิกสภาผู้แทนราษฎร").is_some());
        assert_eq!(hit("สส", "การเลือกตั้งสมาชิกสภาผู้แทนราษฎร"), None);
    }

    /// A query typed key by key keeps matching all the way to `พ.ร.บ.`.
    #[test]
    fn typing_an_abbreviation_key_by_key_never_stops_matching() {
        let title = "ร่างพระราชบัญญัติการสาธารณสุข (ฉบับที่ ..) พ.ศ. ....";
        let mut typed = String::new();
        for c in "พ.ร.บ.การ".chars() {
            typed.push(c);
            assert!(hit(&typed, title).is_some(), "{typed}");
        }
    }

    #[test]
    fn english_synonyms_find_the_title_and_mark_its_word() {
        let budget = "Draft Annual Appropriations Act for Fiscal Year B.E. 2568";
        // The synonym marks the word it stands for (its stem, as listed).
        assert_eq!(hit("budget", budget).as_deref(), Some("Appropriation"));
        assert_eq!(hit("BUDG", budget).as_deref(), Some("Appropriation"));
        assert_eq!(
            hit("appropriations", budget).as_deref(),
            Some("Appropriations")
        );
        assert_eq!(
            hit("budget act", budget),
            None,
            "a synonym does not run into the title"
        );
        let organic = "Draft Organic Act on the Ombudsmen (No. ..) B.E. ....";
        assert_eq!(hit("organic law", organic).as_deref(), Some("Organic Act"));
        let amending = "Draft Act Amending the Revenue Code (No. ..) B.E. ....";
        assert_eq!(hit("amendment", amending).as_deref(), Some("Amending"));
        assert_eq!(hit("bill", amending).as_deref(), Some("Draft"));
        // The separator cannot be typed.
        assert_eq!(hit("\u{1}budget", budget).as_deref(), Some("Appropriation"));
    }

    #[test]
    fn digits_and_case_and_spaces_and_dots_do_not_matter() {
        assert_eq!(hit("2567", "พ.ศ. ๒๕๖๗").as_deref(), Some("๒๕๖๗"));
        assert_eq!(hit("๒๕๖๗", "B.E. 2567").as_deref(), Some("2567"));
        assert_eq!(hit("BE 2567", "B.E. 2567").as_deref(), Some("B.E. 2567"));
        assert_eq!(
            hit("ombudsmen", "Draft Organic Act on the Ombudsmen").as_deref(),
            Some("Ombudsmen")
        );
        assert_eq!(
            hit("public health", "Draft Public Health Act").as_deref(),
            Some("Public Health")
        );
        assert_eq!(hit("  ", "anything"), None);
        assert_eq!(hit("...", "anything"), None);
    }
}
