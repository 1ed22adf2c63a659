//! Identifiers and subject tokens: the one check that keeps a client-supplied id
//! from widening or breaking a NATS subject.

use thiserror::Error;

/// Longest id or token we accept; long enough for `senate-2566-2-28-item-12-vote-3`.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id or subject token. Each unsafe shape has its own
/// variant, so clients and tests can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes long, the limit is {MAX_ID_LEN}")]
    TooLong(usize),
    #[error("contains the wildcard '{0}'")]
    Wildcard(char),
    #[error("contains '.', the subject token separator")]
    Dot,
    #[error("contains whitespace")]
    Whitespace,
    #[error("contains non-ASCII text; ids are ASCII [a-z0-9_-]")]
    NonAscii,
    #[error("contains '{0}'; ids are ASCII [a-z0-9_-]")]
    InvalidChar(char),
}

impl IdError {
    /// A stable machine-readable code, used in HTTP and WebSocket error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Empty => "id_empty",
            IdError::TooLong(_) => "id_too_long",
            IdError::Wildcard(_) => "id_wildcard",
            IdError::Dot => "id_dot",
            IdError::Whitespace => "id_whitespace",
            IdError::NonAscii => "id_non_ascii",
            IdError::InvalidChar(_) => "id_invalid_char",
        }
    }
}

/// Checks that `id` is a safe id and subject token: ASCII `[a-z0-9_-]`, 1..=64 bytes.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    // Check the dangerous shapes first, so `>` is reported as a wildcard and not as
    // merely "too long" or "invalid".
    for c in id.chars() {
        match c {
            '*' | '>' => return Err(IdError::Wildcard(c)),
            '.' => return Err(IdError::Dot),
            c if c.is_whitespace() => return Err(IdError::Whitespace),
            c if !c.is_ascii() => return Err(IdError::NonAscii),
            'a'..='z' | '0'..='9' | '_' | '-' => {}
            c => return Err(IdError::InvalidChar(c)),
        }
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(id.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_domain_ids() {
        for id in ["b-2566-0123", "senate-2566-2-28", "joint_2564_1", "a"] {
            assert_eq!(validate_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn each_unsafe_shape_has_its_own_error() {
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(validate_id(">"), Err(IdError::Wildcard('>')));
        assert_eq!(validate_id("b-*"), Err(IdError::Wildcard('*')));
        assert_eq!(validate_id("b.1"), Err(IdError::Dot));
        assert_eq!(validate_id("b 1"), Err(IdError::Whitespace));
        assert_eq!(validate_id("b\t1"), Err(IdError::Whitespace));
        assert_eq!(validate_id("ร่าง"), Err(IdError::NonAscii));
        assert_eq!(validate_id("B-1"), Err(IdError::InvalidChar('B')));
        assert_eq!(validate_id("b/1"), Err(IdError::InvalidChar('/')));
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert_eq!(validate_id(&long), Err(IdError::TooLong(MAX_ID_LEN + 1)));
        assert_eq!(validate_id(&"a".repeat(MAX_ID_LEN)), Ok(()));
    }
}
