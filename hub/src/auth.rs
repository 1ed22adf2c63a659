//! Client authentication: an optional JWT (HS256 or RS256) on WebSocket and SSE
//! connections, and the per-topic grant it carries.
//!
//! The token comes from `Authorization: Bearer <jwt>` or, for browsers (whose
//! `WebSocket` and `EventSource` cannot set headers), `?token=<jwt>`. It is
//! checked once, at connect: signature, `exp`/`nbf` (with `auth.leeway_secs`),
//! and `iss`/`aud` when configured. Its `topics` claim (name configurable) lists
//! the filters it grants, e.g. `["sitting.>", "bill.>"]`; a newsroom firehose is
//! `[">"]`. A connection may subscribe to a filter only if one granted filter
//! [covers](sapha_proto::TopicFilter::covers) it, on connect and on every
//! subscribe. Anonymous clients (mode `optional`) get `auth.anonymous_topics`.
//! Tokens are never logged.

use crate::config::{AuthConfig, AuthMode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sapha_proto::TopicFilter;
use std::sync::Arc;
use thiserror::Error;

/// Why the auth section cannot be used (the hub does not start).
#[derive(Debug, Error)]
pub enum AuthConfigError {
    #[error("auth.mode is {0:?} but neither auth.hs256_secret(_file) nor auth.rs256_public_key_file is set")]
    NoKey(&'static str),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an RSA public key in PEM")]
    BadKey {
        path: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("auth.anonymous_topics: '{topic}' is not a topic filter")]
    BadTopic {
        topic: String,
        #[source]
        source: sapha_proto::topic::TopicError,
    },
}

/// Why a client's token is refused (HTTP 401; the message says which check failed).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unauthorized {
    #[error("a token is required: Authorization: Bearer <jwt>, or ?token=<jwt>")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is signed with an algorithm this hub does not accept")]
    WrongAlgorithm,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's audience is not this hub")]
    WrongAudience,
    #[error("the token's '{0}' claim is not a list of topic filters")]
    BadTopicsClaim(String),
    #[error("the token is malformed or misses a required claim")]
    Malformed,
    #[error("this hub verifies no tokens (no key in [auth])")]
    NoKey,
    #[error("the token's 'scope' does not include '{0}'")]
    MissingScope(String),
}

/// The topic filters a connection may subscribe to.
#[derive(Debug, Clone)]
pub(crate) enum Grant {
    /// Auth is off: anything.
    All,
    /// Only filters covered by one of these. Shared: every anonymous connection
    /// holds the same list.
    Only(Arc<[TopicFilter]>),
}

impl Grant {
    pub(crate) fn allows(&self, requested: &TopicFilter) -> bool {
        match self {
            Grant::All => true,
            Grant::Only(granted) => granted.iter().any(|g| g.covers(requested)),
        }
    }
}

/// The configured verifier.
pub(crate) struct Auth {
    mode: AuthMode,
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    validation: Validation,
    topics_claim: String,
    anonymous: Grant,
}

impl Auth {
    pub(crate) fn from_config(c: &AuthConfig) -> Result<Auth, AuthConfigError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| AuthConfigError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let mut hs256 = c
            .hs256_secret
            .as_ref()
            .filter(|s| !s.0.is_empty())
            .map(|s| DecodingKey::from_secret(s.0.as_bytes()));
        if let Some(path) = &c.hs256_secret_file {
            let bytes = read(path)?;
            let secret = bytes.trim_ascii_end();
            hs256 = Some(DecodingKey::from_secret(secret));
        }
        let rs256 = match &c.rs256_public_key_file {
            Some(path) => {
                let pem = read(path)?;
                Some(
                    DecodingKey::from_rsa_pem(&pem).map_err(|source| AuthConfigError::BadKey {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        if c.mode != AuthMode::Off && hs256.is_none() && rs256.is_none() {
            return Err(AuthConfigError::NoKey(c.mode.name()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = Vec::new();
        if hs256.is_some() {
            validation.algorithms.push(Algorithm::HS256);
        }
        if rs256.is_some() {
            validation.algorithms.push(Algorithm::RS256);
        }
        validation.leeway = c.leeway_secs;
        validation.validate_nbf = true;
        match c.issuer.as_deref().filter(|s| !s.is_empty()) {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match c.audience.as_deref().filter(|s| !s.is_empty()) {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let anonymous = c
            .anonymous_topics
            .iter()
            .map(|t| {
                TopicFilter::parse(t).map_err(|source| AuthConfigError::BadTopic {
                    topic: t.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Auth {
            mode: c.mode,
            hs256,
            rs256,
            validation,
            topics_claim: c.topics_claim.clone(),
            anonymous: Grant::Only(anonymous.into()),
        })
    }

    /// The grant of a connection that presents `token` (or none).
    pub(crate) fn authenticate(&self, token: Option<&str>) -> Result<Grant, Unauthorized> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        match (self.mode, token) {
            (AuthMode::Off, _) => Ok(Grant::All),
            (AuthMode::Optional, None) => Ok(self.anonymous.clone()),
            (AuthMode::Required, None) => Err(Unauthorized::Missing),
            (_, Some(token)) => self.verify(token),
        }
    }

    /// An integrator's token for the follow API (docs/NOTIFY.md,
    /// "Integrators"): verified as a connection's token is (signature,
    /// `exp`/`nbf`, `iss`/`aud`), whatever `auth.mode` says, and its `scope`
    /// (a space-separated string, or a list) must include `scope`. Returns
    /// the integrator's name, its `sub`.
    pub(crate) fn integrator(&self, token: &str, scope: &str) -> Result<String, Unauthorized> {
        if self.hs256.is_none() && self.rs256.is_none() {
            return Err(Unauthorized::NoKey);
        }
        let claims = self.claims(token.trim())?;
        let scopes: Vec<&str> = match claims.get("scope") {
            Some(serde_json::Value::String(s)) => s.split_ascii_whitespace().collect(),
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str()).collect()
            }
            _ => Vec::new(),
        };
        if !scopes.contains(&scope) {
            return Err(Unauthorized::MissingScope(scope.to_owned()));
        }
        match claims.get("sub").and_then(|s| s.as_str()) {
            Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
            _ => Err(Unauthorized::Malformed),
        }
    }

    /// The verified claims of `token`.
    fn claims(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Unauthorized> {
        use jsonwebtoken::errors::ErrorKind;
        let header = jsonwebtoken::decode_header(token).map_err(|_| Unauthorized::Malformed)?;
        // The key is chosen by the algorithm we configured for it, never the
        // other way round: an RS256 public key is never used as an HMAC secret.
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or(Unauthorized::WrongAlgorithm)?;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &self.validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => Unauthorized::Expired,
            ErrorKind::ImmatureSignature => Unauthorized::NotYetValid,
            ErrorKind::InvalidSignature => Unauthorized::BadSignature,
            ErrorKind::InvalidAlgorithm => Unauthorized::WrongAlgorithm,
            ErrorKind::InvalidIssuer => Unauthorized::WrongIssuer,
            ErrorKind::InvalidAudience => Unauthorized::WrongAudience,
            _ => Unauthorized::Malformed,
        })?;
        Ok(data.claims)
    }

    fn verify(&self, token: &str) -> Result<Grant, Unauthorized> {
        let claims = self.claims(token)?;
        let bad = || Unauthorized::BadTopicsClaim(self.topics_claim.clone());
        let mut granted: Vec<TopicFilter> = match claims.get(&self.topics_claim) {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().and_then(|s| TopicFilter::parse(s).ok()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
            Some(_) => return Err(bad()),
        };
        // A token never grants less than no token.
        if let Grant::Only(anonymous) = &self.anonymous {
            if self.mode == AuthMode::Optional {
                granted.extend(anonymous.iter().cloned());
            }
        }
        Ok(Grant::Only(granted.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn config(mode: AuthMode) -> AuthConfig {
        AuthConfig {
            mode,
            hs256_secret: Some(Secret("s3cret".into())),
            issuer: Some("https://auth.example".into()),
            audience: Some("sapha".into()),
            ..AuthConfig::default()
        }
    }

    fn token(secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn f(s: &str) -> TopicFilter {
        TopicFilter::parse(s).unwrap()
    }

    #[test]
    fn each_check_has_its_refusal() {
        let auth = Auth::from_config(&config(AuthMode::Required)).unwrap();
        let good = json!({"iss": "https://auth.example", "aud": "sapha", "exp": now() + 60, "topics": [">"]});
        let g = auth
            .authenticate(Some(&token("s3cret", good.clone())))
            .unwrap();
        assert!(g.allows(&f(">")));
        assert_eq!(auth.authenticate(None).unwrap_err(), Unauthorized::Missing);
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            c[k] = v;
            auth.authenticate(Some(&token("s3cret", c))).unwrap_err()
        };
        assert_eq!(with("exp", json!(now() - 3600)), Unauthorized::Expired);
        assert_eq!(with("nbf", json!(now() + 3600)), Unauthorized::NotYetValid);
        assert_eq!(
            with("iss", json!("https://evil")),
            Unauthorized::WrongIssuer
        );
        assert_eq!(with("aud", json!("other")), Unauthorized::WrongAudience);
        assert!(matches!(
            with("topics", json!(["bill.B-1"])),
            Unauthorized::BadTopicsClaim(_)
        ));
        assert_eq!(
            auth.authenticate(Some(&token("wrong", good))).unwrap_err(),
            Unauthorized::BadSignature
        );
        assert_eq!(
            auth.authenticate(Some("not.a.jwt")).unwrap_err(),
            Unauthorized::Malformed
        );
        // alg "none" is never accepted.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTl9.";
        assert!(auth.authenticate(Some(none)).is_err());
    }

    #[test]
    fn anonymous_and_token_grants() {
        let mut c = config(AuthMode::Optional);
        c.anonymous_topics = vec!["bill.>".into()];
        let auth = Auth::from_config(&c).unwrap();
        let anon = auth.authenticate(None).unwrap();
        assert!(anon.allows(&f("bill.*.stage")));
        assert!(!anon.allows(&f(">")));
        assert!(!anon.allows(&f("sitting.senate.s-1")));
        let claims = json!({"iss": "https://auth.example", "aud": "sapha", "exp": now() + 60,
                            "topics": ["sitting.senate.>"]});
        let g = auth.authenticate(Some(&token("s3cret", claims))).unwrap();
        assert!(g.allows(&f("sitting.senate.s-1.vote")));
        assert!(
            g.allows(&f("bill.b-1")),
            "a token adds to the anonymous grant"
        );
        assert!(!g.allows(&f("sitting.*.*.vote")));
        let off = Auth::from_config(&AuthConfig::default()).unwrap();
        assert!(matches!(off.authenticate(Some("garbage")), Ok(Grant::All)));
    }

    #[test]
    fn a_mode_without_a_key_does_not_start() {
        let c = AuthConfig {
            mode: AuthMode::Required,
            ..AuthConfig::default()
        };
        assert!(matches!(
            Auth::from_config(&c),
            Err(AuthConfigError::NoKey(_))
        ));
    }
}
