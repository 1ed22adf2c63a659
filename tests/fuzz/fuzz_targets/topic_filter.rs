//! The topic-filter parser: any input either parses or gets an error; what
//! parses is stable, never contains an unsafe token, and matches consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapha_proto::topic::{Token, TopicFilter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = TopicFilter::parse(text) else { return };
    assert_eq!(TopicFilter::parse(filter.as_str()).as_ref(), Ok(&filter));
    for token in filter.tokens() {
        if let Token::Literal(l) = token {
            assert!(!l.contains(['.', '*', '>', ' ']), "unsafe literal {l:?}");
            assert!(sapha_proto::ids::validate_id(l).is_ok());
        }
    }
    // A filter of literals only matches its own text as a topic.
    if filter.tokens().iter().all(|t| matches!(t, Token::Literal(_))) {
        assert!(filter.matches(filter.as_str()));
    }
});
