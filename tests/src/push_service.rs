//! # A local Web Push service
//!
//! The receiving side of RFC 8030 Web Push, as a browser's push service would
//! be: [`PushService::subscribe`] makes a subscription as a browser does (a
//! P-256 key pair and an `auth` secret, kept here), and `POST /push/{id}`
//! checks the VAPID header (RFC 8292) and the push headers, then decrypts the
//! body with the subscription's keys (RFC 8291, `aes128gcm` of RFC 8188), so a
//! test sees exactly what the browser would.
//!
//! A push message is checked in this order, and the first failure answers:
//! 1. the subscription: `410 Gone` if unknown or unsubscribed (`404` after
//!    [`PushService::gone_404`]);
//! 2. VAPID: `401` without credentials, `403` if they are bad;
//! 3. the headers: `TTL`, `Content-Encoding: aes128gcm`, `Urgency`, `Topic`: `400`;
//! 4. a scripted failure from [`PushService::fail_next`];
//! 5. the body: `413` over 4096 bytes, `400` if it does not decrypt.
//!
//! Success answers `201 Created` with `Location: {origin}/message/{n}`.

mod vapid;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::Sha256;

use crate::receiver::{lock, Arrivals, Server};
use vapid::{Audience, Vapid};

/// The largest push message body accepted (RFC 8030 §7.2 asks for at least 4096).
pub const MAX_BODY: usize = 4096;

/// The `aes128gcm` header: salt (16), record size (4), key id length (1).
const ECE_HEADER: usize = 21;
/// An uncompressed P-256 point, the key id of RFC 8291 §4.
const KEY_ID_LEN: usize = 65;
/// The smallest record: the padding delimiter and the AES-GCM tag.
const MIN_RECORD: usize = 17;
/// How many distinct VAPID headers the no-decrypt mode remembers.
const VAPID_CACHE_SIZE: usize = 10_000;

/// How a [`PushService`] treats push messages.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Decrypt every body and verify every JWT (the default). When false,
    /// for benchmarks, a distinct VAPID header is verified once and then
    /// cached, bodies are not decrypted, and accepted messages are only
    /// counted ([`PushService::received`] stays empty).
    pub decrypt: bool,
    /// Also accept a JWT `aud` of the origin without its port
    /// (`http://127.0.0.1`). Off by default: RFC 8292 asks for the origin,
    /// which has the port, but `web-push-native` 0.4's `with_vapid` leaves the
    /// port out, which is only right on the default port of a real service.
    pub allow_aud_without_port: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            decrypt: true,
            allow_aud_without_port: false,
        }
    }
}

/// A browser's push subscription, as the application server is given it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The random id in the endpoint's path.
    pub id: String,
    /// The push resource: `{origin}/push/{id}`.
    pub endpoint: String,
    /// The browser's public key: base64url (no padding) of the uncompressed point.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url (no padding).
    pub auth: String,
}

impl Subscription {
    /// The JSON of the browser's `PushSubscription.toJSON()`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": { "p256dh": self.p256dh, "auth": self.auth },
        })
    }
}

/// A push message that was accepted (`201`).
#[derive(Clone, Debug)]
pub struct PushMessage {
    /// The `n` of its `Location: {origin}/message/{n}`.
    pub id: u64,
    /// The subscription's id.
    pub endpoint_id: String,
    /// The decrypted payload.
    pub payload: Vec<u8>,
    /// The `TTL` header, in seconds.
    pub ttl: u64,
    /// The `Urgency` header, if sent.
    pub urgency: Option<String>,
    /// The `Topic` header, if sent.
    pub topic: Option<String>,
    /// The application server's VAPID key (`k`), base64url without padding.
    pub vapid_key: String,
    /// The VAPID JWT's claims.
    pub claims: serde_json::Value,
    /// When it arrived.
    pub received_at: Instant,
}

impl PushMessage {
    /// The payload parsed as JSON.
    ///
    /// # Panics
    /// If the payload is not JSON: the test expected JSON.
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "push payload is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
}

/// A push message that was not accepted.
#[derive(Clone, Debug)]
pub struct Rejection {
    /// The id in the request's path.
    pub endpoint_id: String,
    /// The status answered.
    pub status: u16,
    /// Why.
    pub reason: String,
    /// When it arrived.
    pub received_at: Instant,
}

/// A running push service on `127.0.0.1`; stops when dropped.
pub struct PushService {
    server: Server,
    shared: Arc<Shared>,
}

impl PushService {
    /// Starts a push service that decrypts and verifies everything.
    pub async fn start() -> PushService {
        Self::start_with(PushOptions::default()).await
    }

    /// Starts a push service with `options`.
    pub async fn start_with(options: PushOptions) -> PushService {
        let shared = Arc::new(Shared::new(options));
        let router = axum::Router::new()
            .route("/push/{id}", post(push))
            .with_state(shared.clone());
        let server = Server::start(router).await;
        *lock(&shared.origin) = server.origin();
        PushService { server, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// Makes a subscription as a browser would: a fresh P-256 key pair and a
    /// random 16-byte `auth` secret, whose private parts stay here.
    pub fn subscribe(&self) -> Subscription {
        let keys = Keys::generate();
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let subscription = Subscription {
            endpoint: format!("{}/push/{id}", self.origin()),
            p256dh: URL_SAFE_NO_PAD.encode(keys.public_point()),
            auth: URL_SAFE_NO_PAD.encode(keys.auth),
            id: id.clone(),
        };
        lock(&self.shared.book)
            .subscriptions
            .insert(id, Sub::new(keys));
        subscription
    }

    /// Accepts only VAPID key `key` (base64url) from now on; others get 403.
    ///
    /// # Panics
    /// If `key` is not base64url.
    pub fn expect_vapid_key(&self, key: &str) {
        let key = URL_SAFE_NO_PAD
            .decode(key.trim_end_matches('='))
            .expect("expect_vapid_key: key is not base64url");
        lock(&self.shared.book).pinned_key = Some(key);
    }

    /// Answers the next `times` pushes to `sub` with `status` (and a
    /// `Retry-After` header if given), once they pass the VAPID and header checks.
    ///
    /// # Panics
    /// If `status` is not an HTTP status code.
    pub fn fail_next(
        &self,
        sub: &Subscription,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    ) {
        let status = StatusCode::from_u16(status).expect("fail_next: not an HTTP status");
        let script = Script {
            status,
            retry_after,
            times,
        };
        self.shared
            .with_sub(&sub.id, |s| s.scripts.push_back(script));
    }

    /// Makes `sub` answer `410 Gone` from now on, as after the user unsubscribed.
    pub fn unsubscribe(&self, sub: &Subscription) {
        self.shared
            .with_sub(&sub.id, |s| s.gone = Some(StatusCode::GONE));
    }

    /// Makes `sub` answer `404 Not Found` from now on (an expired subscription).
    pub fn gone_404(&self, sub: &Subscription) {
        self.shared
            .with_sub(&sub.id, |s| s.gone = Some(StatusCode::NOT_FOUND));
    }

    /// The accepted messages, in order of arrival (empty without decryption).
    pub fn received(&self) -> Vec<PushMessage> {
        lock(&self.shared.book).received.clone()
    }

    /// The refused messages, in order of arrival.
    pub fn rejected(&self) -> Vec<Rejection> {
        lock(&self.shared.book).rejected.clone()
    }

    /// How many messages were accepted.
    pub fn count(&self) -> usize {
        self.shared.arrivals.count()
    }

    /// Waits until at least `n` messages were accepted; false after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.shared.arrivals.wait_for(n, timeout).await
    }
}

/// A subscription's private keys, as the browser keeps them.
#[derive(Clone)]
struct Keys {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Keys {
    fn generate() -> Keys {
        let secret = loop {
            // Almost every 32 random bytes are a valid scalar.
            if let Ok(secret) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break secret;
            }
        };
        Keys {
            secret,
            auth: rand::random(),
        }
    }

    /// The uncompressed SEC1 public point (65 bytes).
    fn public_point(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }
}

/// A subscription's state.
struct Sub {
    keys: Keys,
    /// Set once unsubscribed: the status every push gets.
    gone: Option<StatusCode>,
    scripts: VecDeque<Script>,
}

impl Sub {
    fn new(keys: Keys) -> Sub {
        Sub {
            keys,
            gone: None,
            scripts: VecDeque::new(),
        }
    }

    /// The next scripted failure, if any, used up by one.
    fn take_script(&mut self) -> Option<Refusal> {
        let script = self.scripts.front_mut()?;
        let refusal = Refusal {
            status: script.status,
            reason: format!("scripted {}", script.status.as_u16()),
            retry_after: script.retry_after,
        };
        script.times = script.times.saturating_sub(1);
        if script.times == 0 {
            self.scripts.pop_front();
        }
        Some(refusal)
    }
}

/// A scripted answer for the next `times` pushes.
struct Script {
    status: StatusCode,
    retry_after: Option<u64>,
    times: usize,
}

/// Why a push message was refused: its status, reason and `Retry-After`.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    reason: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, reason: &str) -> Refusal {
        Refusal {
            status,
            reason: reason.to_string(),
            retry_after: None,
        }
    }

    fn bad_request(reason: &str) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, reason)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.reason).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// What the handler shares with the [`PushService`].
struct Shared {
    options: PushOptions,
    /// Set once the port is known, before the first request.
    origin: Mutex<String>,
    book: Mutex<Book>,
    /// Verified VAPID headers, by header value (only without decryption).
    vapid_cache: Mutex<HashMap<String, Vapid>>,
    arrivals: Arrivals,
}

/// The subscriptions and what arrived.
#[derive(Default)]
struct Book {
    subscriptions: HashMap<String, Sub>,
    received: Vec<PushMessage>,
    rejected: Vec<Rejection>,
    pinned_key: Option<Vec<u8>>,
    next_message: u64,
}

/// The push headers of RFC 8030 §5.
struct PushHeaders {
    ttl: u64,
    urgency: Option<String>,
    topic: Option<String>,
}

impl Shared {
    fn new(options: PushOptions) -> Shared {
        Shared {
            options,
            origin: Mutex::new(String::new()),
            book: Mutex::new(Book::default()),
            vapid_cache: Mutex::new(HashMap::new()),
            arrivals: Arrivals::default(),
        }
    }

    fn with_sub(&self, id: &str, change: impl FnOnce(&mut Sub)) {
        let mut book = lock(&self.book);
        let sub = book
            .subscriptions
            .get_mut(id)
            .expect("subscription was not made by this PushService");
        change(sub);
    }

    /// Checks a push message and decrypts it; the `Location` of the message.
    fn accept(&self, id: &str, headers: &HeaderMap, body: &[u8]) -> Result<String, Refusal> {
        let keys = self.subscription_keys(id)?;
        let vapid = self.authorize(headers)?;
        let push_headers = push_headers(headers)?;
        self.scripted(id)?;
        if body.len() > MAX_BODY {
            let reason = format!("body of {} bytes is over {MAX_BODY}", body.len());
            return Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, &reason));
        }
        if !self.options.decrypt {
            self.arrivals.add();
            return Ok(self.location(self.next_message_id()));
        }
        let payload = decrypt(body, &keys)?;
        Ok(self.record(id, payload, push_headers, vapid))
    }

    fn subscription_keys(&self, id: &str) -> Result<Keys, Refusal> {
        let book = lock(&self.book);
        match book.subscriptions.get(id) {
            None => Err(Refusal::new(StatusCode::GONE, "no such subscription")),
            Some(Sub {
                gone: Some(status), ..
            }) => Err(Refusal::new(*status, "unsubscribed")),
            Some(sub) => Ok(sub.keys.clone()),
        }
    }

    fn scripted(&self, id: &str) -> Result<(), Refusal> {
        let mut book = lock(&self.book);
        match book.subscriptions.get_mut(id).and_then(Sub::take_script) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// Verifies the VAPID header, or finds it in the cache without decryption.
    fn authorize(&self, headers: &HeaderMap) -> Result<Vapid, Refusal> {
        let credentials = vapid::credentials(headers)?;
        let origin = lock(&self.origin).clone();
        let pinned_key = lock(&self.book).pinned_key.clone();
        let audience = Audience {
            origin: &origin,
            allow_without_port: self.options.allow_aud_without_port,
            pinned_key: pinned_key.as_deref(),
        };
        if self.options.decrypt {
            return credentials.verify(&audience);
        }
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if let Some(vapid) = self.cached_vapid(&header, &audience)? {
            return Ok(vapid);
        }
        let vapid = credentials.verify(&audience)?;
        let mut cache = lock(&self.vapid_cache);
        if cache.len() >= VAPID_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(header, vapid.clone());
        Ok(vapid)
    }

    /// A cached VAPID credential, its claims checked again (it may have expired).
    fn cached_vapid(
        &self,
        header: &str,
        audience: &Audience<'_>,
    ) -> Result<Option<Vapid>, Refusal> {
        let Some(vapid) = lock(&self.vapid_cache).get(header).cloned() else {
            return Ok(None);
        };
        if let Some(pinned) = audience.pinned_key {
            if URL_SAFE_NO_PAD.decode(&vapid.key).ok().as_deref() != Some(pinned) {
                let reason = "k is not the expected application server key";
                return Err(Refusal::new(StatusCode::FORBIDDEN, reason));
            }
        }
        vapid::check_claims(&vapid.claims, audience)?;
        Ok(Some(vapid))
    }

    fn next_message_id(&self) -> u64 {
        let mut book = lock(&self.book);
        book.next_message += 1;
        book.next_message
    }

    fn location(&self, n: u64) -> String {
        format!("{}/message/{n}", lock(&self.origin))
    }

    fn record(&self, id: &str, payload: Vec<u8>, headers: PushHeaders, vapid: Vapid) -> String {
        let n = self.next_message_id();
        lock(&self.book).received.push(PushMessage {
            id: n,
            endpoint_id: id.to_string(),
            payload,
            ttl: headers.ttl,
            urgency: headers.urgency,
            topic: headers.topic,
            vapid_key: vapid.key,
            claims: vapid.claims,
            received_at: Instant::now(),
        });
        self.arrivals.add();
        self.location(n)
    }

    fn reject(&self, id: &str, refusal: &Refusal) {
        lock(&self.book).rejected.push(Rejection {
            endpoint_id: id.to_string(),
            status: refusal.status.as_u16(),
            reason: refusal.reason.clone(),
            received_at: Instant::now(),
        });
    }
}

/// `POST /push/{id}`.
async fn push(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.accept(&id, &headers, &body) {
        Ok(location) => (StatusCode::CREATED, [(header::LOCATION, location)]).into_response(),
        Err(refusal) => {
            shared.reject(&id, &refusal);
            refusal.into_response()
        }
    }
}

/// Reads `TTL`, `Content-Encoding`, `Urgency` and `Topic`.
fn push_headers(headers: &HeaderMap) -> Result<PushHeaders, Refusal> {
    let text = |name: &str| -> Result<Option<&str>, Refusal> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| Refusal::bad_request(&format!("{name} is not ASCII")))
            })
            .transpose()
    };
    let ttl = text("ttl")?
        .ok_or_else(|| Refusal::bad_request("missing TTL header"))?
        .trim()
        .parse()
        .map_err(|_| Refusal::bad_request("TTL is not a non-negative integer"))?;
    if text("content-encoding")? != Some("aes128gcm") {
        return Err(Refusal::bad_request("Content-Encoding is not aes128gcm"));
    }
    let urgency = text("urgency")?;
    if urgency.is_some_and(|u| !["very-low", "low", "normal", "high"].contains(&u)) {
        return Err(Refusal::bad_request(
            "Urgency is not very-low, low, normal or high",
        ));
    }
    let topic = text("topic")?;
    if topic.is_some_and(|t| !is_valid_topic(t)) {
        return Err(Refusal::bad_request(
            "Topic is not up to 32 base64url characters",
        ));
    }
    Ok(PushHeaders {
        ttl,
        urgency: urgency.map(str::to_string),
        topic: topic.map(str::to_string),
    })
}

/// RFC 8030 §5.4: at most 32 characters of the URL- and filename-safe base64 alphabet.
fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 32
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Decrypts a push message as a browser does (RFC 8291 with RFC 8188's `aes128gcm`).
fn decrypt(body: &[u8], keys: &Keys) -> Result<Vec<u8>, Refusal> {
    let sender_key = check_ece_layout(body)?;
    let sender = p256::PublicKey::from_sec1_bytes(sender_key)
        .map_err(|_| Refusal::bad_request("keyid is not a P-256 point"))?;
    let shared = p256::ecdh::diffie_hellman(keys.secret.to_nonzero_scalar(), sender.as_affine());
    let ikm = web_push_ikm(keys, &sender, &shared)?;
    ece_native::decrypt(ikm, body.to_vec())
        .map_err(|e| Refusal::bad_request(&format!("aes128gcm decryption failed: {e}")))
}

/// Checks what RFC 8291 §4 asks of the `aes128gcm` header: a 65-byte key id
/// and a single record; returns the key id (the application server's key).
fn check_ece_layout(body: &[u8]) -> Result<&[u8], Refusal> {
    if body.len() < ECE_HEADER + KEY_ID_LEN + MIN_RECORD {
        return Err(Refusal::bad_request("body too short for aes128gcm"));
    }
    let record_size = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    if record_size < MIN_RECORD + 1 {
        return Err(Refusal::bad_request("aes128gcm record size under 18"));
    }
    if usize::from(body[20]) != KEY_ID_LEN {
        return Err(Refusal::bad_request("aes128gcm keyid is not 65 bytes"));
    }
    if body.len() - ECE_HEADER - KEY_ID_LEN > record_size {
        return Err(Refusal::bad_request(
            "aes128gcm body has more than one record",
        ));
    }
    Ok(&body[ECE_HEADER..ECE_HEADER + KEY_ID_LEN])
}

/// RFC 8291 §3.4: IKM = HKDF(auth, ecdh, "WebPush: info" 0 ua_public as_public, 32).
fn web_push_ikm(
    keys: &Keys,
    sender: &p256::PublicKey,
    shared: &p256::ecdh::SharedSecret,
) -> Result<[u8; 32], Refusal> {
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(&keys.public_point());
    info.extend_from_slice(sender.to_encoded_point(false).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&keys.auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| Refusal::bad_request("HKDF expand failed"))?;
    Ok(ikm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    /// The user agent's keys of RFC 8291 Appendix A.
    fn rfc8291_keys() -> Keys {
        let secret = b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94");
        Keys {
            secret: p256::SecretKey::from_slice(&secret).expect("RFC 8291 private key"),
            auth: b64("BTBZMqHH6r4Tts7J_aSIgg").try_into().expect("16 bytes"),
        }
    }

    /// RFC 8291 Appendix A's push message body (record size 4096).
    const RFC8291_BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    #[test]
    fn decrypts_the_rfc8291_example() {
        let keys = rfc8291_keys();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(keys.public_point()),
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
        );
        let plaintext = decrypt(&b64(RFC8291_BODY), &keys).expect("decrypts");
        assert_eq!(plaintext, b"When I grow up, I want to be a watermelon");
    }

    #[test]
    fn refuses_the_rfc8291_example_with_another_auth_or_a_changed_byte() {
        let mut keys = rfc8291_keys();
        let body = b64(RFC8291_BODY);
        for i in [0, 30, body.len() - 1] {
            let mut tampered = body.clone();
            tampered[i] ^= 1;
            let refusal = decrypt(&tampered, &keys).expect_err("tampered body");
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "byte {i}");
        }
        keys.auth[0] ^= 1;
        assert!(decrypt(&body, &keys).is_err());
    }

    #[test]
    fn refuses_bad_aes128gcm_layouts_without_panicking() {
        let keys = rfc8291_keys();
        let body = b64(RFC8291_BODY);
        let mut zero_record_size = body.clone();
        zero_record_size[16..20].copy_from_slice(&[0, 0, 0, 0]);
        let mut short_key_id = body.clone();
        short_key_id[20] = 64;
        let mut two_records = body.clone();
        two_records[16..20].copy_from_slice(&20u32.to_be_bytes());
        for bad in [&body[..50], &zero_record_size, &short_key_id, &two_records] {
            assert!(decrypt(bad, &keys).is_err());
        }
    }

    #[test]
    fn topics_are_short_base64url() {
        assert!(is_valid_topic("bill-42_votes"));
        assert!(is_valid_topic(&"a".repeat(32)));
        assert!(!is_valid_topic(&"a".repeat(33)));
        assert!(!is_valid_topic("bill 42"));
        assert!(!is_valid_topic("bill+42"));
        assert!(!is_valid_topic(""));
    }
}
