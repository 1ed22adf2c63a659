//! Topic filters: what a client sends to say which events it wants.
//!
//! The grammar follows NATS subjects, relative to `parl.v1.`:
//!
//! ```text
//! filter  = token *( "." token )
//! token   = id | "*" | ">"        ; "*" is exactly one token, ">" is the rest and must be last
//! id      = 1*64( a-z / 0-9 / "_" / "-" )
//! ```
//!
//! A filter shorter than a topic matches it as a prefix, so `bill.b-2566-0123`
//! means every event of that bill (as `bill.b-2566-0123.>` would). Filters must
//! also fit the topic schema: `bill.<id>.<stage|vote>` and
//! `sitting.<chamber>.<id>.<category>`, so a typo is an error rather than a
//! subscription that silently never matches.

use crate::ids::{validate_id, IdError};
use crate::subject::{chamber_codes, BILL_CATEGORIES, SITTING_CATEGORIES};
use std::fmt;
use thiserror::Error;

/// Longest filter we accept, in bytes.
pub const MAX_FILTER_LEN: usize = 256;

/// One token of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Token {
    Literal(String),
    /// `*`: exactly one token.
    Any,
    /// `>`: one or more remaining tokens.
    Rest,
}

/// A parsed, validated topic filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter {
    tokens: Vec<Token>,
    text: String,
}

/// Why a topic filter is rejected. Each has a stable [`code`](TopicError::code).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    #[error("the topic filter is empty")]
    Empty,
    #[error("the topic filter is {0} bytes long, the limit is {MAX_FILTER_LEN}")]
    TooLong(usize),
    #[error("token {0} of the topic filter is empty")]
    EmptyToken(usize),
    #[error("'>' must be the last token of a topic filter")]
    RestNotLast,
    #[error("token '{0}' mixes a wildcard with other characters; '*' and '>' must stand alone")]
    PartialWildcard(String),
    #[error("token '{token}' is not a valid id: it {reason}")]
    BadToken { token: String, reason: IdError },
    #[error("unknown topic '{0}': topics start with 'bill', 'sitting', '*' or '>'")]
    UnknownRoot(String),
    #[error("unknown chamber '{0}': expected senate, house or joint")]
    UnknownChamber(String),
    #[error("unknown category '{token}' for {root} topics: expected one of {expected}")]
    UnknownCategory {
        root: &'static str,
        token: String,
        expected: String,
    },
    #[error("the topic filter has {0} tokens, more than any topic")]
    TooManyTokens(usize),
}

impl TopicError {
    /// A stable machine-readable code, used in error frames.
    pub fn code(&self) -> &'static str {
        match self {
            TopicError::Empty => "topic_empty",
            TopicError::TooLong(_) => "topic_too_long",
            TopicError::EmptyToken(_) => "topic_empty_token",
            TopicError::RestNotLast => "topic_rest_not_last",
            TopicError::PartialWildcard(_) => "topic_partial_wildcard",
            TopicError::BadToken { .. } => "topic_bad_token",
            TopicError::UnknownRoot(_) => "unknown_topic",
            TopicError::UnknownChamber(_) => "unknown_topic",
            TopicError::UnknownCategory { .. } => "unknown_topic",
            TopicError::TooManyTokens(_) => "unknown_topic",
        }
    }
}

impl TopicFilter {
    /// Parses and validates a filter.
    pub fn parse(text: &str) -> Result<TopicFilter, TopicError> {
        if text.is_empty() {
            return Err(TopicError::Empty);
        }
        if text.len() > MAX_FILTER_LEN {
            return Err(TopicError::TooLong(text.len()));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let mut tokens = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let token = match *part {
                "" => return Err(TopicError::EmptyToken(i + 1)),
                "*" => Token::Any,
                ">" if i + 1 == parts.len() => Token::Rest,
                ">" => return Err(TopicError::RestNotLast),
                p if p.len() > 1 && (p.contains('*') || p.contains('>')) => {
                    return Err(TopicError::PartialWildcard(p.to_owned()))
                }
                p => {
                    validate_id(p).map_err(|reason| TopicError::BadToken {
                        token: p.to_owned(),
                        reason,
                    })?;
                    Token::Literal(p.to_owned())
                }
            };
            tokens.push(token);
        }
        check_schema(&tokens)?;
        Ok(TopicFilter {
            tokens,
            text: text.to_owned(),
        })
    }

    /// The filter as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Whether `topic` (e.g. `bill.b-1.stage`) matches this filter.
    pub fn matches(&self, topic: &str) -> bool {
        let mut parts = topic.split('.');
        for token in &self.tokens {
            match (token, parts.next()) {
                (_, None) => return false,
                (Token::Rest, Some(_)) => return true,
                (Token::Any, Some(_)) => {}
                (Token::Literal(l), Some(p)) => {
                    if l != p {
                        return false;
                    }
                }
            }
        }
        // A filter that ran out of tokens matches the rest as a prefix.
        true
    }

    /// Whether every topic `requested` can match is also matched by `self`: the
    /// check behind per-topic grants (a client may subscribe to `requested` only
    /// if a filter it was granted covers it).
    ///
    /// Both filters have the prefix meaning (`bill.b-1` is `bill.b-1.>`), and
    /// topics are never longer than the schema allows, so the test is token by
    /// token: `>` covers whatever is left; `*` covers one token of anything
    /// (`*` or a literal); a literal covers only itself. `sitting.>` covers
    /// `sitting.*.*.vote`, but `sitting.senate.>` does not.
    ///
    /// ```
    /// use sapha_proto::TopicFilter;
    /// let f = |s| TopicFilter::parse(s).unwrap();
    /// assert!(f(">").covers(&f("sitting.*.*.vote")));
    /// assert!(f("sitting.>").covers(&f("sitting.*.*.vote")));
    /// assert!(!f("sitting.senate.>").covers(&f("sitting.*.*.vote")));
    /// ```
    pub fn covers(&self, requested: &TopicFilter) -> bool {
        let granted = &self.tokens;
        let wild = |t: &Token| matches!(t, Token::Any | Token::Rest);
        for (i, want) in requested.tokens.iter().enumerate() {
            let Some(have) = granted.get(i) else {
                // The grant ran out first: it matches everything below its prefix.
                return true;
            };
            match (have, want) {
                (Token::Rest, _) => return true,
                // The request takes any continuation: so must the grant.
                (_, Token::Rest) => return granted[i..].iter().all(wild),
                (Token::Any, _) => {}
                (Token::Literal(_), Token::Any) => return false,
                (Token::Literal(h), Token::Literal(w)) => {
                    if h != w {
                        return false;
                    }
                }
            }
        }
        // The request ran out first (it is a prefix): the rest of the grant must
        // take anything.
        granted[requested.tokens.len()..].iter().all(wild)
    }

    /// The NATS subject filters equivalent to this topic filter (used by clients
    /// that subscribe to NATS directly, such as the benchmark baseline).
    pub fn nats_subjects(&self) -> Vec<String> {
        let base = format!("{}.{}", crate::subject::PREFIX, self.text);
        if matches!(self.tokens.last(), Some(Token::Rest))
            || self.tokens.len() >= max_depth(&self.tokens)
        {
            vec![base]
        } else {
            vec![base.clone(), format!("{base}.>")]
        }
    }
}

fn max_depth(tokens: &[Token]) -> usize {
    match tokens.first() {
        Some(Token::Literal(r)) if r == "bill" => 3,
        _ => 4,
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Rejects filters that cannot match any topic of the schema.
fn check_schema(tokens: &[Token]) -> Result<(), TopicError> {
    let lit = |i: usize| match tokens.get(i) {
        Some(Token::Literal(s)) => Some(s.as_str()),
        _ => None,
    };
    let (root, category_at, categories) = match tokens.first() {
        Some(Token::Any) | Some(Token::Rest) => {
            if tokens.len() > 4 {
                return Err(TopicError::TooManyTokens(tokens.len()));
            }
            return Ok(());
        }
        Some(Token::Literal(r)) if r == "bill" => ("bill", 2, BILL_CATEGORIES),
        Some(Token::Literal(r)) if r == "sitting" => {
            if let Some(c) = lit(1) {
                if !chamber_codes().any(|code| code == c) {
                    return Err(TopicError::UnknownChamber(c.to_owned()));
                }
            }
            ("sitting", 3, SITTING_CATEGORIES)
        }
        Some(Token::Literal(r)) => return Err(TopicError::UnknownRoot(r.clone())),
        None => return Err(TopicError::Empty),
    };
    if let Some(c) = lit(category_at) {
        if !categories.contains(&c) {
            return Err(TopicError::UnknownCategory {
                root,
                token: c.to_owned(),
                expected: categories.join(", "),
            });
        }
    }
    if tokens.len() > category_at + 1 {
        return Err(TopicError::TooManyTokens(tokens.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn literal_and_prefix_matching() {
        let bill = f("bill.b-2566-0123");
        assert!(bill.matches("bill.b-2566-0123.stage"));
        assert!(bill.matches("bill.b-2566-0123.vote"));
        assert!(!bill.matches("bill.b-2566-0124.stage"));
        assert!(!f("bill.b-2566-0123.stage").matches("bill.b-2566-0123.vote"));
        assert!(f("bill.b-2566-0123.stage").matches("bill.b-2566-0123.stage"));
    }

    #[test]
    fn wildcards_follow_nats() {
        assert!(f("bill.*.stage").matches("bill.b-1.stage"));
        assert!(!f("bill.*.stage").matches("sitting.senate.s-1.lifecycle"));
        assert!(f("sitting.*.*.vote").matches("sitting.joint.j-1.vote"));
        assert!(!f("sitting.*.*.vote").matches("sitting.joint.j-1.floor"));
        assert!(f("sitting.senate.>").matches("sitting.senate.s-1.floor"));
        assert!(!f("sitting.senate.>").matches("sitting.senate"));
        assert!(!f("sitting.senate.>").matches("sitting.house.h-1.floor"));
        assert!(f(">").matches("bill.b-1.stage"));
        assert!(f("*").matches("bill.b-1.stage"));
    }

    #[test]
    fn each_bad_filter_has_its_own_error() {
        let e = |s: &str| TopicFilter::parse(s).unwrap_err();
        assert_eq!(e(""), TopicError::Empty);
        assert_eq!(e("bill..stage"), TopicError::EmptyToken(2));
        assert_eq!(e("bill.>.stage"), TopicError::RestNotLast);
        assert_eq!(e("bill.b-1*"), TopicError::PartialWildcard("b-1*".into()));
        assert_eq!(e("bill.b>"), TopicError::PartialWildcard("b>".into()));
        assert_eq!(e("bill.B-1").code(), "topic_bad_token");
        assert_eq!(e("bill.ร่าง").code(), "topic_bad_token");
        assert_eq!(e("bill.b 1").code(), "topic_bad_token");
        assert_eq!(e("bills.b-1"), TopicError::UnknownRoot("bills".into()));
        assert_eq!(
            e("sitting.senat"),
            TopicError::UnknownChamber("senat".into())
        );
        assert_eq!(e("bill.b-1.stages").code(), "unknown_topic");
        assert_eq!(e("bill.b-1.stage.x"), TopicError::TooManyTokens(4));
        assert_eq!(e(&"a".repeat(300)), TopicError::TooLong(300));
    }

    #[test]
    fn covers_follows_the_sets_of_topics() {
        let yes = |g: &str, r: &str| assert!(f(g).covers(&f(r)), "{g} should cover {r}");
        let no = |g: &str, r: &str| assert!(!f(g).covers(&f(r)), "{g} should not cover {r}");
        for r in [">", "*", "bill.>", "sitting.*.*.vote", "bill.b-1.stage"] {
            yes(">", r);
            yes("*", r);
        }
        yes("sitting.>", "sitting.senate.s-1.vote");
        yes("sitting.>", "sitting.*.*.vote");
        yes("sitting.>", "sitting.senate");
        yes("sitting.>", "sitting.>");
        yes("sitting", "sitting.house.>");
        yes("sitting.senate.>", "sitting.senate.s-1");
        yes("sitting.senate.>", "sitting.senate.*.floor");
        yes("sitting.senate", "sitting.senate.>");
        yes("sitting.senate.>", "sitting.senate");
        yes("sitting.*.*.vote", "sitting.joint.j-1.vote");
        yes("sitting.*.*.vote", "sitting.*.j-1.vote");
        yes("bill.*.stage", "bill.b-1.stage");
        yes("bill.b-1", "bill.b-1.stage");
        yes("bill.b-1.*", "bill.b-1");
        yes("bill.*.*", "bill.>");
        no("sitting.senate.>", "sitting.*.*.vote");
        no("sitting.senate.>", "sitting.house.h-1.vote");
        no("sitting.>", ">");
        no("sitting.>", "*.*.*.vote");
        no("sitting.>", "bill.b-1.stage");
        no("sitting.*.*.vote", "sitting.>");
        no("sitting.*.*.vote", "sitting.senate.s-1");
        no("bill.*.stage", "bill.>");
        no("bill.*.stage", "bill.b-1");
        no("bill.b-1", "bill.*.stage");
        no("bill.b-1.stage", "bill.b-1");
        no("bill.b-1", "bill.b-2.stage");
        no("bill.*.vote", "bill.*.stage");
    }

    #[test]
    fn nats_equivalents() {
        assert_eq!(
            f("bill.b-1").nats_subjects(),
            ["parl.v1.bill.b-1", "parl.v1.bill.b-1.>"]
        );
        assert_eq!(
            f("bill.b-1.stage").nats_subjects(),
            ["parl.v1.bill.b-1.stage"]
        );
        assert_eq!(f(">").nats_subjects(), ["parl.v1.>"]);
    }
}
