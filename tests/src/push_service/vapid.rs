//! VAPID (RFC 8292): the `Authorization: vapid t=<JWT>, k=<key>` header that
//! an application server sends with each push message.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    Duration, ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, VerificationOptions,
};

use super::Refusal;

/// The longest a VAPID JWT may be valid for, from now (RFC 8292 §2).
const MAX_VALIDITY: u64 = 24 * 60 * 60;

/// A VAPID credential whose signature was verified.
#[derive(Clone, Debug)]
pub(crate) struct Vapid {
    /// The application server's public key, base64url without padding.
    pub(crate) key: String,
    /// The JWT's claims.
    pub(crate) claims: serde_json::Value,
}

/// The `t` and `k` parameters of a `vapid` Authorization header.
pub(crate) struct Credentials<'a> {
    token: &'a str,
    key: &'a str,
}

/// What a push resource's JWT is checked against.
pub(crate) struct Audience<'a> {
    /// The push resource's origin, `http://127.0.0.1:PORT`.
    pub(crate) origin: &'a str,
    /// Whether the origin without its port is accepted too.
    pub(crate) allow_without_port: bool,
    /// The application server key the test pinned, if any.
    pub(crate) pinned_key: Option<&'a [u8]>,
}

/// Reads `Authorization: vapid t=..., k=...`; 401 when there is none.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Credentials<'_>, Refusal> {
    let unauthorized = |reason: &str| Refusal::new(StatusCode::UNAUTHORIZED, reason);
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing Authorization header"))?
        .to_str()
        .map_err(|_| unauthorized("Authorization header is not ASCII"))?;
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(unauthorized("Authorization scheme is not vapid"));
    }
    let (mut token, mut key) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some((name, v)) if name.trim().eq_ignore_ascii_case("t") => token = Some(v.trim()),
            Some((name, v)) if name.trim().eq_ignore_ascii_case("k") => key = Some(v.trim()),
            _ => {}
        }
    }
    match (token, key) {
        (Some(token), Some(key)) => Ok(Credentials { token, key }),
        _ => Err(unauthorized("vapid Authorization lacks t= or k=")),
    }
}

impl Credentials<'_> {
    /// Verifies the JWT's ES256 signature with `k` and its claims; 403 if bad.
    pub(crate) fn verify(&self, audience: &Audience<'_>) -> Result<Vapid, Refusal> {
        let key = decode_key(self.key)?;
        if audience
            .pinned_key
            .is_some_and(|pinned| pinned != key.as_slice())
        {
            return Err(forbidden("k is not the expected application server key"));
        }
        let public = ES256PublicKey::from_bytes(&key)
            .map_err(|e| forbidden(&format!("k is not a P-256 public key: {e}")))?;
        public
            .verify_token::<NoCustomClaims>(self.token, Some(signature_only()))
            .map_err(|e| forbidden(&format!("JWT does not verify with k: {e}")))?;
        let claims = decode_claims(self.token)?;
        check_claims(&claims, audience)?;
        Ok(Vapid {
            key: URL_SAFE_NO_PAD.encode(&key),
            claims,
        })
    }
}

/// Options that leave the time checks to [`check_claims`], which is stricter.
fn signature_only() -> VerificationOptions {
    VerificationOptions {
        accept_future: true,
        time_tolerance: Some(Duration::from_secs(MAX_VALIDITY)),
        ..VerificationOptions::default()
    }
}

/// Decodes `k`: base64url of an uncompressed SEC1 P-256 point (65 bytes).
fn decode_key(key: &str) -> Result<Vec<u8>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(key.trim_end_matches('='))
        .map_err(|_| forbidden("k is not base64url"))?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(forbidden("k is not an uncompressed P-256 point"));
    }
    Ok(bytes)
}

/// The JWT's payload as JSON (its signature was already verified).
fn decode_claims(token: &str) -> Result<serde_json::Value, Refusal> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| forbidden("JWT has no payload"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| forbidden("JWT payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| forbidden("JWT payload is not JSON"))
}

/// Checks `aud`, `exp` and `sub` as RFC 8292 §2 asks.
pub(crate) fn check_claims(
    claims: &serde_json::Value,
    audience: &Audience<'_>,
) -> Result<(), Refusal> {
    check_aud(claims, audience)?;
    check_exp(claims)?;
    check_sub(claims)
}

fn check_aud(claims: &serde_json::Value, audience: &Audience<'_>) -> Result<(), Refusal> {
    let aud = claims["aud"]
        .as_str()
        .ok_or_else(|| forbidden("JWT has no aud string"))?;
    let without_port = audience
        .origin
        .rsplit_once(':')
        .map_or(audience.origin, |(origin, _port)| origin);
    if aud == audience.origin || (audience.allow_without_port && aud == without_port) {
        return Ok(());
    }
    Err(forbidden(&format!(
        "JWT aud {aud:?} is not the push resource's origin {:?}",
        audience.origin
    )))
}

fn check_exp(claims: &serde_json::Value) -> Result<(), Refusal> {
    let exp = claims["exp"]
        .as_u64()
        .ok_or_else(|| forbidden("JWT has no numeric exp"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if exp <= now {
        return Err(forbidden(&format!("JWT expired: exp {exp} <= now {now}")));
    }
    if exp > now + MAX_VALIDITY {
        return Err(forbidden(&format!(
            "JWT exp {exp} is more than 24 h after now {now}"
        )));
    }
    Ok(())
}

fn check_sub(claims: &serde_json::Value) -> Result<(), Refusal> {
    match claims["sub"].as_str() {
        Some(sub) if sub.starts_with("mailto:") || sub.starts_with("https:") => Ok(()),
        Some(sub) => Err(forbidden(&format!(
            "JWT sub {sub:?} is neither mailto: nor https:"
        ))),
        None => Err(forbidden("JWT has no sub")),
    }
}

fn forbidden(reason: &str) -> Refusal {
    Refusal::new(StatusCode::FORBIDDEN, reason)
}
