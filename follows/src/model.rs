//! What a follower is, and what makes one valid.
//!
//! A follower is anonymous: an id, a hashed secret, a language, one delivery
//! channel and the bills it follows. No name, e-mail or phone is ever stored.

use crate::target::{check_push_endpoint, BlockedTarget, Egress, PushHosts};
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
/// Unknown fields are refused (a misspelt key is an error, not ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSubscription {
    /// The push service URL messages are POSTed to (RFC 8030).
    pub endpoint: String,
    pub keys: PushKeys,
    /// `expirationTime` as browsers send it (a number or null): accepted,
    /// never stored.
    #[serde(
        default,
        rename = "expirationTime",
        skip_serializing,
        deserialize_with = "ignore"
    )]
    pub expiration_time: (),
}

fn ignore<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| ())
}

/// The subscription's keys (RFC 8291), base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

/// Where a follower's notifications go. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
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
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bills one follower may follow.
    pub max_bills: usize,
    /// Accept `http://` and loopback push endpoints (tests on loopback only;
    /// real push services are all `https://` on public hosts).
    pub allow_http_endpoints: bool,
    /// The hosts a Web Push endpoint may name.
    pub push_hosts: PushHosts,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bills: 50,
            allow_http_endpoints: false,
            push_hosts: PushHosts::default(),
        }
    }
}

impl Limits {
    /// The egress policy of a follower's own endpoint.
    pub fn egress(&self) -> Egress {
        Egress {
            allow_loopback: self.allow_http_endpoints,
            allow_nets: Vec::new(),
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
    #[error("bills: no bill '{0}' is known to this hub")]
    UnknownBill(String),
    #[error("channel.subscription.endpoint: {0}")]
    Endpoint(&'static str),
    #[error("channel.subscription.endpoint: {0}")]
    Target(#[from] BlockedTarget),
    #[error("channel.subscription.keys.{0}: {1}")]
    Key(&'static str, &'static str),
    #[error("channel.to: a LINE user, group or room id (U, C or R and 32 lower-case hex digits)")]
    LineTo,
    #[error("channel.reference: 1 to 128 characters of A-Z a-z 0-9 - _ . :")]
    Reference,
}

impl InvalidFollow {
    /// The request field at fault, for the error body.
    pub fn field(&self) -> &'static str {
        match self {
            InvalidFollow::BillId(_)
            | InvalidFollow::TooManyBills(_)
            | InvalidFollow::UnknownBill(_) => "bills",
            InvalidFollow::Endpoint(_) | InvalidFollow::Target(_) => {
                "channel.subscription.endpoint"
            }
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
                && to[1..]
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
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
    if endpoint.chars().any(char::is_whitespace) {
        return Err(InvalidFollow::Endpoint("must not contain white space"));
    }
    check_push_endpoint(endpoint, &limits.egress(), &limits.push_hosts)?;
    let p256dh =
        decode_b64url(&s.keys.p256dh).ok_or(InvalidFollow::Key("p256dh", "not base64url"))?;
    if p256dh.len() != 65 || p256dh[0] != 4 {
        return Err(InvalidFollow::Key(
            "p256dh",
            "must be an uncompressed P-256 point (65 bytes)",
        ));
    }
    if p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(InvalidFollow::Key(
            "p256dh",
            "is not a point on the P-256 curve",
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
        Channel::Webpush {
            subscription: PushSubscription {
                endpoint: endpoint.into(),
                keys: PushKeys {
                    p256dh: URL_SAFE_NO_PAD.encode(P256_GENERATOR),
                    auth: URL_SAFE_NO_PAD.encode([1u8; 16]),
                },
                expiration_time: (),
            },
        }
    }

    /// The P-256 base point, uncompressed: a valid public key.
    const P256_GENERATOR: [u8; 65] = [
        4, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4,
        0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8,
        0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a,
        0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40,
        0x68, 0x37, 0xbf, 0x51, 0xf5,
    ];

    #[test]
    fn p256dh_must_be_a_point_on_the_curve() {
        let mut c = subscription("https://fcm.googleapis.com/wp/abc");
        assert!(check_channel(&c, &Limits::default()).is_ok());
        if let Channel::Webpush { subscription } = &mut c {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            use base64::Engine;
            let mut off = P256_GENERATOR;
            off[64] ^= 1;
            subscription.keys.p256dh = URL_SAFE_NO_PAD.encode(off);
        }
        assert_eq!(
            check_channel(&c, &Limits::default()).unwrap_err().field(),
            "channel.subscription.keys.p256dh"
        );
    }

    #[test]
    fn unknown_fields_in_a_channel_are_refused() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Channel>(v);
        assert!(parse(serde_json::json!({"type": "line", "to": "x", "extra": 1})).is_err());
        assert!(
            parse(serde_json::json!({"type": "webhook", "reference": "x", "to": "y"})).is_err()
        );
        let sub = |extra: serde_json::Value| {
            let mut s = serde_json::json!({"endpoint": "https://fcm.googleapis.com/x",
                "keys": {"p256dh": "AA", "auth": "AA"}});
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            parse(serde_json::json!({"type": "webpush", "subscription": s}))
        };
        // What browsers send is accepted (expirationTime is not stored).
        assert!(sub(serde_json::json!({"expirationTime": null})).is_ok());
        assert!(sub(serde_json::json!({"expirationTime": 1700000000000u64})).is_ok());
        assert!(sub(serde_json::json!({"endpiont": "x"})).is_err());
        let keys = serde_json::json!({"type": "webpush", "subscription": {
            "endpoint": "https://fcm.googleapis.com/x",
            "keys": {"p256dh": "AA", "auth": "AA", "x": 1}}});
        assert!(parse(keys).is_err());
        let stored = serde_json::to_value(sub(serde_json::json!({"expirationTime": 5})).unwrap());
        let stored = stored.unwrap();
        assert!(stored["subscription"].get("expirationTime").is_none());
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
            Err(InvalidFollow::Target(BlockedTarget::Scheme))
        );
        assert!(check_channel(&subscription("https://127.0.0.1:9/push/1"), &strict).is_err());
        assert!(check_channel(&subscription("http://127.0.0.1:9/push/1"), &loose).is_ok());
        assert!(check_channel(&subscription("https://u:p@evil/"), &strict).is_err());
        assert!(check_channel(&subscription("ftp://x/"), &loose).is_err());
    }

    #[test]
    fn keys_lines_and_references_are_checked() {
        let mut c = subscription("https://fcm.googleapis.com/1");
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
        // LINE ids are lower-case hex.
        assert_eq!(
            check_channel(&line(&format!("U{}", "A".repeat(32))), &Limits::default()),
            Err(InvalidFollow::LineTo)
        );
        assert!(check_channel(&line(&format!("C{}", "0f".repeat(16))), &Limits::default()).is_ok());
        assert!(check_channel(&line(&format!("X{}", "a".repeat(32))), &Limits::default()).is_err());
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
