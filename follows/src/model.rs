//! What a follower is, and what makes one valid.
//!
//! A follower is anonymous: an id, a hashed secret, a language, one delivery
//! channel and the bills it follows. No name, e-mail or phone is ever stored.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The language notifications are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Th,
    En,
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// The push service URL messages are POSTed to (RFC 8030).
    pub endpoint: String,
    pub keys: PushKeys,
}

/// The subscription's keys (RFC 8291), base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

/// Where a follower's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Channel {
    /// Web Push to a browser (RFC 8030, 8291, 8292).
    Webpush { subscription: PushSubscription },
    /// A LINE push message to this user, group or room id.
    Line { to: String },
    /// The notifier's configured webhook (an app's own backend), with the
    /// app's opaque reference for this follower.
    Webhook { reference: String },
}

impl Channel {
    /// `webpush`, `line` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webpush { .. } => "webpush",
            Channel::Line { .. } => "line",
            Channel::Webhook { .. } => "webhook",
        }
    }
}

/// A follower as stored (`f.<id>`). The secret is kept only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follower {
    pub id: String,
    /// Hex SHA-256 of the secret handed out at creation.
    pub secret_sha256: String,
    pub lang: Lang,
    pub channel: Channel,
    /// Followed bill ids, in the order they were followed.
    pub bills: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What the notifier needs to reach one follower of a bill (`b.<bill>.<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub follower: String,
    pub lang: Lang,
    pub channel: Channel,
}

impl Follower {
    /// The index entry stored under each followed bill.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            follower: self.id.clone(),
            lang: self.lang,
            channel: self.channel.clone(),
        }
    }
}

/// What the API accepts; [`Limits`] decide what is valid.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bills one follower may follow.
    pub max_bills: usize,
    /// Accept `http://` push endpoints (tests on loopback only; real push
    /// services are all `https://`).
    pub allow_http_endpoints: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bills: 50,
            allow_http_endpoints: false,
        }
    }
}

/// Input the follow API refuses, with the field it names.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidFollow {
    #[error("bills: '{0}' is not a bill id (a-z, 0-9, - and _, at most 64)")]
    BillId(String),
    #[error("bills: at most {0} bills per follower")]
    TooManyBills(usize),
    #[error("channel.subscription.endpoint: {0}")]
    Endpoint(&'static str),
    #[error("channel.subscription.keys.{0}: {1}")]
    Key(&'static str, &'static str),
    #[error("channel.to: a LINE user, group or room id (U, C or R and 32 hex digits)")]
    LineTo,
    #[error("channel.reference: 1 to 128 characters of A-Z a-z 0-9 - _ . :")]
    Reference,
}

impl InvalidFollow {
    /// The request field at fault, for the error body.
    pub fn field(&self) -> &'static str {
        match self {
            InvalidFollow::BillId(_) | InvalidFollow::TooManyBills(_) => "bills",
            InvalidFollow::Endpoint(_) => "channel.subscription.endpoint",
            InvalidFollow::Key("p256dh", _) => "channel.subscription.keys.p256dh",
            InvalidFollow::Key(_, _) => "channel.subscription.keys.auth",
            InvalidFollow::LineTo => "channel.to",
            InvalidFollow::Reference => "channel.reference",
        }
    }
}

/// Checks a bill id (the stream's id rules).
pub fn check_bill(id: &str) -> Result<(), InvalidFollow> {
    sapha_proto::ids::validate_id(id).map_err(|_| InvalidFollow::BillId(id.to_owned()))
}

/// Checks a list of bills: valid ids, within the limit (duplicates are dropped).
pub fn check_bills(bills: &[String], limits: &Limits) -> Result<Vec<String>, InvalidFollow> {
    let mut out: Vec<String> = Vec::with_capacity(bills.len());
    for b in bills {
        check_bill(b)?;
        if !out.contains(b) {
            out.push(b.clone());
        }
    }
    if out.len() > limits.max_bills {
        return Err(InvalidFollow::TooManyBills(limits.max_bills));
    }
    Ok(out)
}

/// Checks a delivery channel.
pub fn check_channel(channel: &Channel, limits: &Limits) -> Result<(), InvalidFollow> {
    match channel {
        Channel::Webpush { subscription } => check_subscription(subscription, limits),
        Channel::Line { to } => {
            let ok = to.len() == 33
                && matches!(to.as_bytes()[0], b'U' | b'C' | b'R')
                && to[1..].bytes().all(|c| c.is_ascii_hexdigit());
            if ok {
                Ok(())
            } else {
                Err(InvalidFollow::LineTo)
            }
        }
        Channel::Webhook { reference } => {
            let ok = (1..=128).contains(&reference.len())
                && reference
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c));
            if ok {
                Ok(())
            } else {
                Err(InvalidFollow::Reference)
            }
        }
    }
}

fn check_subscription(s: &PushSubscription, limits: &Limits) -> Result<(), InvalidFollow> {
    let endpoint = s.endpoint.as_str();
    if endpoint.len() > 1024 {
        return Err(InvalidFollow::Endpoint("at most 1024 characters"));
    }
    let rest = if let Some(rest) = endpoint.strip_prefix("https://") {
        rest
    } else if let Some(rest) = endpoint
        .strip_prefix("http://")
        .filter(|_| limits.allow_http_endpoints)
    {
        rest
    } else {
        return Err(InvalidFollow::Endpoint("must be an https:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || endpoint.chars().any(char::is_whitespace) {
        return Err(InvalidFollow::Endpoint(
            "must name a host, without credentials",
        ));
    }
    let p256dh =
        decode_b64url(&s.keys.p256dh).ok_or(InvalidFollow::Key("p256dh", "not base64url"))?;
    if p256dh.len() != 65 || p256dh[0] != 4 {
        return Err(InvalidFollow::Key(
            "p256dh",
            "must be an uncompressed P-256 point (65 bytes)",
        ));
    }
    let auth = decode_b64url(&s.keys.auth).ok_or(InvalidFollow::Key("auth", "not base64url"))?;
    if auth.len() != 16 {
        return Err(InvalidFollow::Key("auth", "must be 16 bytes"));
    }
    Ok(())
}

/// Decodes base64url with or without padding (browsers send it without).
pub fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(endpoint: &str) -> Channel {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let mut point = vec![4u8];
        point.extend([7u8; 64]);
        Channel::Webpush {
            subscription: PushSubscription {
                endpoint: endpoint.into(),
                keys: PushKeys {
                    p256dh: URL_SAFE_NO_PAD.encode(&point),
                    auth: URL_SAFE_NO_PAD.encode([1u8; 16]),
                },
            },
        }
    }

    #[test]
    fn push_endpoints_must_be_https_unless_allowed() {
        let strict = Limits::default();
        let loose = Limits {
            allow_http_endpoints: true,
            ..Limits::default()
        };
        assert!(check_channel(&subscription("https://fcm.googleapis.com/wp/abc"), &strict).is_ok());
        assert_eq!(
            check_channel(&subscription("http://127.0.0.1:9/push/1"), &strict),
            Err(InvalidFollow::Endpoint("must be an https:// URL"))
        );
        assert!(check_channel(&subscription("http://127.0.0.1:9/push/1"), &loose).is_ok());
        assert!(check_channel(&subscription("https://u:p@evil/"), &strict).is_err());
        assert!(check_channel(&subscription("ftp://x/"), &loose).is_err());
    }

    #[test]
    fn keys_lines_and_references_are_checked() {
        let mut c = subscription("https://push.example/1");
        if let Channel::Webpush { subscription } = &mut c {
            subscription.keys.auth = "AAAA".into();
        }
        let e = check_channel(&c, &Limits::default()).unwrap_err();
        assert_eq!(e.field(), "channel.subscription.keys.auth");
        let line = |to: &str| Channel::Line { to: to.into() };
        assert!(check_channel(&line(&format!("U{}", "a".repeat(32))), &Limits::default()).is_ok());
        assert_eq!(
            check_channel(&line("U123"), &Limits::default()),
            Err(InvalidFollow::LineTo)
        );
        let hook = |r: &str| Channel::Webhook {
            reference: r.into(),
        };
        assert!(check_channel(&hook("user:42"), &Limits::default()).is_ok());
        assert!(check_channel(&hook("a b"), &Limits::default()).is_err());
    }

    #[test]
    fn bills_are_checked_deduplicated_and_capped() {
        let limits = Limits {
            max_bills: 2,
            ..Limits::default()
        };
        let bills = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_bills(&bills(&["b-1", "b-1", "b-2"]), &limits).unwrap(),
            ["b-1", "b-2"]
        );
        assert_eq!(
            check_bills(&bills(&["b-1", "b-2", "b-3"]), &limits),
            Err(InvalidFollow::TooManyBills(2))
        );
        assert_eq!(
            check_bills(&bills(&["bill.>"]), &limits)
                .unwrap_err()
                .field(),
            "bills"
        );
    }
}
