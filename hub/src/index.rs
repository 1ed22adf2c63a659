//! The subscription index: a token trie of topic filters (like NATS's sublist),
//! so that finding the connections for one topic costs the depth of the topic
//! (at most 4 tokens) times the wildcards at each level, never a scan of every
//! connection or every filter.

use sapha_proto::topic::{Token, TopicFilter};
use std::collections::{HashMap, HashSet};

/// A connection's id.
pub(crate) type ConnId = u64;

#[derive(Default, Debug)]
struct Node {
    literals: HashMap<Box<str>, Node>,
    any: Option<Box<Node>>,
    /// Filters that end at this node: they match every topic reaching it (a
    /// filter shorter than a topic matches it as a prefix).
    ends: HashSet<ConnId>,
    /// Filters that end with `>` at this node: they match every topic with at
    /// least one more token.
    rest: HashSet<ConnId>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literals.is_empty()
            && self.any.is_none()
            && self.ends.is_empty()
            && self.rest.is_empty()
    }
}

/// Topic filter -> connections.
#[derive(Default, Debug)]
pub(crate) struct Index {
    root: Node,
    /// (filter, connection) pairs held.
    len: usize,
}

impl Index {
    /// Adds `conn` under `filter`; false if it was already there.
    pub(crate) fn insert(&mut self, filter: &TopicFilter, conn: ConnId) -> bool {
        let mut node = &mut self.root;
        let tokens = filter.tokens();
        for token in tokens {
            node = match token {
                Token::Literal(l) => node.literals.entry(l.as_str().into()).or_default(),
                Token::Any => node.any.get_or_insert_with(Default::default),
                Token::Rest => {
                    let added = node.rest.insert(conn);
                    self.len += usize::from(added);
                    return added;
                }
            };
        }
        let added = node.ends.insert(conn);
        self.len += usize::from(added);
        added
    }

    /// Removes `conn` from under `filter`, pruning empty branches; false if absent.
    pub(crate) fn remove(&mut self, filter: &TopicFilter, conn: ConnId) -> bool {
        let removed = remove_at(&mut self.root, filter.tokens(), conn);
        self.len -= usize::from(removed);
        removed
    }

    /// Appends every connection with a filter matching `topic` to `out`
    /// (possibly more than once; callers dedup across topics anyway).
    pub(crate) fn lookup(&self, topic: &str, out: &mut Vec<ConnId>) {
        let mut tokens = [""; 8];
        let mut n = 0;
        for part in topic.split('.') {
            if n == tokens.len() {
                return; // deeper than any topic of the schema: nothing matches
            }
            tokens[n] = part;
            n += 1;
        }
        collect(&self.root, &tokens[..n], out);
    }

    /// (filter, connection) pairs held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

fn collect(node: &Node, rest: &[&str], out: &mut Vec<ConnId>) {
    out.extend(node.ends.iter().copied());
    let Some((first, tail)) = rest.split_first() else {
        return;
    };
    out.extend(node.rest.iter().copied());
    if let Some(child) = node.literals.get(*first) {
        collect(child, tail, out);
    }
    if let Some(child) = &node.any {
        collect(child, tail, out);
    }
}

fn remove_at(node: &mut Node, tokens: &[Token], conn: ConnId) -> bool {
    let Some((first, tail)) = tokens.split_first() else {
        return node.ends.remove(&conn);
    };
    match first {
        Token::Rest => node.rest.remove(&conn),
        Token::Literal(l) => {
            let Some(child) = node.literals.get_mut(l.as_str()) else {
                return false;
            };
            let removed = remove_at(child, tail, conn);
            if child.is_empty() {
                node.literals.remove(l.as_str());
            }
            removed
        }
        Token::Any => {
            let Some(child) = node.any.as_deref_mut() else {
                return false;
            };
            let removed = remove_at(child, tail, conn);
            if child.is_empty() {
                node.any = None;
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::parse(s).unwrap()
    }

    fn look(index: &Index, topic: &str) -> Vec<ConnId> {
        let mut out = Vec::new();
        index.lookup(topic, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The trie agrees with `TopicFilter::matches` on every pair.
    #[test]
    fn agrees_with_the_filter_grammar() {
        let filters = [
            ">",
            "*",
            "bill",
            "bill.>",
            "bill.*",
            "bill.b-1",
            "bill.b-1.stage",
            "bill.*.stage",
            "bill.*.vote",
            "bill.b-2.>",
            "sitting",
            "sitting.senate",
            "sitting.senate.>",
            "sitting.*.*.vote",
            "sitting.senate.s-1",
            "sitting.senate.s-1.floor",
            "*.*.s-1",
            "*.senate.*.floor",
        ];
        let topics = [
            "bill.b-1.stage",
            "bill.b-1.vote",
            "bill.b-2.stage",
            "sitting.senate.s-1.floor",
            "sitting.senate.s-2.vote",
            "sitting.joint.j-1.vote",
            "sitting.house.h-1.lifecycle",
        ];
        let mut index = Index::default();
        for (i, text) in filters.iter().enumerate() {
            assert!(index.insert(&f(text), i as ConnId));
        }
        assert_eq!(index.len(), filters.len());
        for topic in topics {
            let expected: Vec<ConnId> = filters
                .iter()
                .enumerate()
                .filter(|(_, text)| f(text).matches(topic))
                .map(|(i, _)| i as ConnId)
                .collect();
            assert_eq!(look(&index, topic), expected, "{topic}");
        }
    }

    #[test]
    fn remove_prunes_and_is_exact() {
        let mut index = Index::default();
        assert!(index.insert(&f("bill.b-1"), 1));
        assert!(!index.insert(&f("bill.b-1"), 1));
        assert!(index.insert(&f("bill.b-1"), 2));
        assert!(index.insert(&f("bill.*.stage"), 1));
        assert!(!index.remove(&f("bill.b-2"), 1));
        assert!(index.remove(&f("bill.b-1"), 1));
        assert_eq!(look(&index, "bill.b-1.stage"), [1, 2]);
        assert!(index.remove(&f("bill.b-1"), 2));
        assert!(index.remove(&f("bill.*.stage"), 1));
        assert_eq!(index.len(), 0);
        assert!(index.root.is_empty(), "{:?}", index.root);
    }

    #[test]
    fn many_distinct_filters_stay_exact() {
        let mut index = Index::default();
        for i in 0..20_000u64 {
            index.insert(&f(&format!("bill.b-{i}")), i);
        }
        index.insert(&f("bill.*.stage"), 99_999);
        assert_eq!(look(&index, "bill.b-12345.stage"), [12_345, 99_999]);
        assert_eq!(look(&index, "bill.b-12345.vote"), [12_345]);
    }
}
