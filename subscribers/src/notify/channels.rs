//! The delivery channels: Web Push (RFC 8030 delivery, RFC 8291 encryption,
//! RFC 8292 VAPID, through `web-push-native`), LINE's push message API, and a
//! signed webhook to an app's own backend. Each send ends in an [`Outcome`].

use super::egress::{self, blocked_in, check_before_send, Lookup};
use super::{Change, Notification};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dashmap::DashMap;
use sapha_follows::target::check_push_endpoint;
use sapha_follows::{BlockedTarget, Channel, Delivery, Egress, Lang, PushHosts, PushSubscription};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;

/// How one message fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The channel accepted it.
    Sent,
    /// The subscription no longer exists (Web Push 404 or 410).
    Gone,
    /// Refused for good (the status, or 0 when the channel is not set up).
    Refused(u16),
    /// Try again, after this long if the channel said so (`Retry-After`).
    Retry(Option<Duration>),
    /// The target is not one the egress policy lets the notifier reach (a
    /// private, loopback or reserved address, or not a push service): never
    /// connected to, never retried.
    Blocked(BlockedTarget),
}

/// Where the notifier may connect (docs/NOTIFY.md, "Where notifications may
/// go"): the policy of `sapha_follows::target`, applied before each send and
/// on every resolved address.
#[derive(Clone, Default)]
pub struct Targets {
    /// Accept `http://` and loopback targets (`--allow-loopback-targets`).
    /// For tests on one machine only.
    pub allow_loopback: bool,
    /// Non-public networks the operator's own targets (the LINE API base and
    /// the webhook) may be on (`--egress-allow-net`). A follower's Web Push
    /// endpoint is never let onto them.
    pub allow_nets: Vec<ipnet::IpNet>,
    /// The hosts a Web Push endpoint may name (`--push-hosts`).
    pub push_hosts: PushHosts,
    /// How names are resolved (tests substitute a table).
    pub lookup: Lookup,
}

impl Targets {
    /// The policy of a follower's own endpoint.
    fn follower(&self) -> Egress {
        Egress {
            allow_loopback: self.allow_loopback,
            allow_nets: Vec::new(),
        }
    }

    /// The policy of the operator's targets.
    fn operator(&self) -> Egress {
        Egress {
            allow_loopback: self.allow_loopback,
            allow_nets: self.allow_nets.clone(),
        }
    }
}

/// Web Push settings.
#[derive(Debug, Clone)]
pub struct WebPushSettings {
    /// The VAPID private key: the P-256 scalar, base64url (32 bytes).
    pub vapid_private_key: String,
    /// The VAPID `sub` claim: `mailto:` or `https:` of the operator.
    pub subject: String,
    /// How long a push service keeps an undelivered message (`TTL`), at
    /// most 24 h (it also bounds the VAPID token's life).
    pub ttl: Duration,
    /// Messages in flight to one push-service host.
    pub per_host: usize,
}

/// LINE Messaging API settings.
#[derive(Debug, Clone)]
pub struct LineSettings {
    /// `https://api.line.me` (a test receiver elsewhere).
    pub api_base: String,
    /// The channel access token.
    pub channel_token: String,
}

/// The app backend's webhook.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    /// The HMAC key (the same signature scheme as `sapha sink --webhook`).
    pub secret: Vec<u8>,
}

struct WebPush {
    key: ES256KeyPair,
    public_key: String,
    settings: WebPushSettings,
    /// One semaphore per push-service host.
    hosts: DashMap<String, Arc<Semaphore>>,
    /// Hosts that answered 429, until when they asked us to wait.
    paused: DashMap<String, Instant>,
    /// The VAPID header per push-service origin, and when it was signed: one
    /// ES256 signature per origin and [`VAPID_REUSE`], not one per message
    /// (and a push service verifies one JWT, not one per message).
    vapid_headers: DashMap<String, (Instant, String)>,
}

/// How long one signed VAPID JWT is reused for an origin. It is valid for
/// [`VAPID_VALIDITY`], so a reused one has at least 11 hours left.
const VAPID_REUSE: Duration = Duration::from_secs(3600);
/// The VAPID JWT's `exp` after its signing (RFC 8292: at most 24 hours).
const VAPID_VALIDITY: Duration = Duration::from_secs(12 * 3600);
/// Origins whose VAPID header is kept (push services are few; a follower's
/// endpoint on an odd host must not grow the map without bound).
const VAPID_ORIGINS: usize = 1024;

/// Every configured channel, and the HTTP clients they share: one for the
/// followers' push endpoints, one for the operator's targets (which may be
/// allowed onto listed private networks).
pub struct Channels {
    http: reqwest::Client,
    operator_http: reqwest::Client,
    targets: Targets,
    webpush: Option<WebPush>,
    line: Option<LineSettings>,
    webhook: Option<WebhookTarget>,
}

/// A new VAPID key pair: (private, public), both base64url.
pub fn generate_vapid_key() -> (String, String) {
    let pair = ES256KeyPair::generate();
    let public = pair.public_key().public_key().to_bytes_uncompressed();
    (
        URL_SAFE_NO_PAD.encode(pair.to_bytes()),
        URL_SAFE_NO_PAD.encode(public),
    )
}

impl Channels {
    /// Sets up the channels; a bad VAPID key, or a LINE API base or webhook
    /// URL that `targets` does not allow, is an error.
    pub fn new(
        webpush: Option<WebPushSettings>,
        line: Option<LineSettings>,
        webhook: Option<WebhookTarget>,
        timeout: Duration,
        targets: Targets,
    ) -> Result<Channels, String> {
        if let Some(l) = &line {
            check_before_send(&l.api_base, &targets.operator(), false)
                .map_err(|e| format!("the LINE API base {}: {e}", l.api_base))?;
        }
        if let Some(h) = &webhook {
            check_before_send(&h.url, &targets.operator(), false).map_err(|e| {
                format!("the webhook URL: {e} (a private network needs --egress-allow-net)")
            })?;
        }
        let webpush = match webpush {
            None => None,
            Some(settings) => {
                let raw = sapha_follows::decode_b64url(&settings.vapid_private_key)
                    .ok_or("the VAPID private key is not base64url")?;
                let key = ES256KeyPair::from_bytes(&raw)
                    .map_err(|e| format!("the VAPID private key is not a P-256 key: {e}"))?;
                let public_key =
                    URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
                Some(WebPush {
                    key,
                    public_key,
                    settings,
                    hosts: DashMap::new(),
                    paused: DashMap::new(),
                    vapid_headers: DashMap::new(),
                })
            }
        };
        let build = |egress: &Egress| {
            egress::client(egress, targets.lookup.clone(), timeout)
                .map_err(|e| format!("building the HTTP client: {e}"))
        };
        let http = build(&targets.follower())?;
        let operator_http = build(&targets.operator())?;
        Ok(Channels {
            http,
            operator_http,
            targets,
            webpush,
            line,
            webhook,
        })
    }

    /// The VAPID public key browsers subscribe with, when Web Push is on.
    pub fn vapid_public_key(&self) -> Option<String> {
        self.webpush.as_ref().map(|w| w.public_key.clone())
    }

    /// The channels set up here (`webpush`, `line`, `webhook`).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.webpush.is_some() {
            kinds.push("webpush");
        }
        if self.line.is_some() {
            kinds.push("line");
        }
        if self.webhook.is_some() {
            kinds.push("webhook");
        }
        kinds
    }

    /// Sends one notification to one follower.
    pub async fn send(&self, change: &Change, to: &Delivery, url: &str) -> Outcome {
        match &to.channel {
            Channel::Webpush { subscription } => match &self.webpush {
                Some(w) => {
                    // A record may have reached the bucket without the follow
                    // API's check (or under a looser policy): checked again.
                    let checked = check_push_endpoint(
                        &subscription.endpoint,
                        &self.targets.follower(),
                        &self.targets.push_hosts,
                    );
                    if let Err(e) = checked {
                        return blocked(e);
                    }
                    w.send(&self.http, change, to.lang, subscription, url).await
                }
                None => unconfigured("webpush"),
            },
            Channel::Line { to: line_to } => match &self.line {
                Some(l) => send_line(&self.operator_http, l, change, to, line_to, url).await,
                None => unconfigured("line"),
            },
            Channel::Webhook { reference } => match &self.webhook {
                Some(h) => send_webhook(&self.operator_http, h, change, to, reference, url).await,
                None => unconfigured("webhook"),
            },
        }
    }
}

fn blocked(e: BlockedTarget) -> Outcome {
    tracing::warn!(reason = %e, "a notification target is not allowed; not sent");
    Outcome::Blocked(e)
}

/// A network error, or the guarded resolver's refusal.
fn unreachable(what: &str, e: reqwest::Error) -> Outcome {
    match blocked_in(&e) {
        Some(b) => blocked(b),
        None => {
            tracing::warn!(error = %e, "{what} unreachable");
            Outcome::Retry(None)
        }
    }
}

fn unconfigured(channel: &str) -> Outcome {
    tracing::error!(
        channel,
        "a follower uses a channel this notifier has not set up"
    );
    Outcome::Refused(0)
}

fn pick(text: &sapha_proto::event::Text, lang: Lang) -> &str {
    match lang {
        Lang::Th => &text.th,
        Lang::En => &text.en,
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The Web Push `Topic` of a bill (RFC 8030 5.4: at most 32 base64url
/// characters): a newer stage replaces an older one still undelivered.
pub fn push_topic(bill_id: &str) -> String {
    if bill_id.len() <= 32 {
        return bill_id.to_owned();
    }
    URL_SAFE_NO_PAD.encode(Sha256::digest(bill_id.as_bytes()))[..32].to_owned()
}

/// The JSON the service worker receives (docs/NOTIFY.md, "The push message").
pub fn push_payload(change: &Change, lang: Lang, url: &str) -> serde_json::Value {
    use crate::tail::{short_title, Lang as TailLang};
    let (mut body_th, mut body_en) = (change.text.th.clone(), change.text.en.clone());
    if change.correction {
        body_th = format!("แก้ไข: {body_th}");
        body_en = format!("Correction: {body_en}");
    }
    serde_json::json!({
        "v": 1,
        "lang": lang,
        "title": {
            "th": clip(&short_title(&change.title, TailLang::Th), 120),
            "en": clip(&short_title(&change.title, TailLang::En), 120),
        },
        "body": { "th": clip(&body_th, 400), "en": clip(&body_en, 400) },
        "bill_id": change.bill_id,
        "to_stage": change.to_stage,
        "event_id": change.event_id,
        "seq": change.seq,
        "correction": change.correction,
        "url": url,
        "tag": format!("bill-{}", change.bill_id),
    })
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl WebPush {
    fn host_slot(&self, host: &str) -> Arc<Semaphore> {
        self.hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_host.max(1))))
            .clone()
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        change: &Change,
        lang: Lang,
        subscription: &PushSubscription,
        url: &str,
    ) -> Outcome {
        let request = match self.encrypt(change, lang, subscription, url).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot build a push message for this subscription");
                return Outcome::Refused(0);
            }
        };
        let host = request.uri().host().unwrap_or_default().to_owned();
        let slot = self.host_slot(&host);
        let Ok(_permit) = slot.acquire().await else {
            return Outcome::Retry(None);
        };
        // A push service that answered 429 gets nothing until its Retry-After.
        let until = self.paused.get(&host).map(|t| *t);
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
        let (parts, body) = request.into_parts();
        let response = http
            .post(subscription.endpoint.as_str())
            .headers(parts.headers)
            .header("Urgency", "normal")
            .header("Topic", push_topic(&change.bill_id))
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%host, "push service unreachable");
                return unreachable("push service", e);
            }
        };
        match response.status().as_u16() {
            200..=299 => Outcome::Sent,
            404 | 410 => Outcome::Gone,
            429 => {
                let wait = retry_after(response.headers()).unwrap_or(Duration::from_secs(5));
                let wait = wait.min(Duration::from_secs(600));
                self.paused.insert(host, Instant::now() + wait);
                Outcome::Retry(Some(wait))
            }
            408 | 500..=599 => Outcome::Retry(retry_after(response.headers())),
            status => {
                tracing::warn!(%host, status, "push service refused a message");
                Outcome::Refused(status)
            }
        }
    }

    async fn encrypt(
        &self,
        change: &Change,
        lang: Lang,
        subscription: &PushSubscription,
        url: &str,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let endpoint: http::Uri = subscription
            .endpoint
            .parse()
            .map_err(|e| format!("endpoint: {e}"))?;
        let p256dh = sapha_follows::decode_b64url(&subscription.keys.p256dh).ok_or("p256dh")?;
        let auth = sapha_follows::decode_b64url(&subscription.keys.auth).ok_or("auth")?;
        if auth.len() != 16 {
            return Err("auth is not 16 bytes".into());
        }
        let public = web_push_native::p256::PublicKey::from_sec1_bytes(&p256dh)
            .map_err(|_| "p256dh is not a P-256 point")?;
        let auth = web_push_native::Auth::clone_from_slice(&auth);
        let payload = serde_json::to_vec(&push_payload(change, lang, url)).expect("serializes");
        let ttl = self.settings.ttl.min(Duration::from_secs(24 * 3600));
        let audience = origin(&endpoint).ok_or("the endpoint has no origin")?;
        // The encryption (an ECDH and AES-GCM per message) is CPU work: it
        // runs on the blocking pool, so one replica's sends use every core
        // and never stall the async workers.
        let mut request = tokio::task::spawn_blocking(move || {
            web_push_native::WebPushBuilder::new(endpoint, public, auth)
                .with_valid_duration(ttl)
                .build(payload)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("the encryption task failed: {e}"))??;
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            self.vapid(&audience)?
                .parse()
                .map_err(|_| "VAPID header".to_owned())?,
        );
        Ok(request)
    }

    /// The RFC 8292 `Authorization: vapid t=<JWT>, k=<key>` for a push
    /// service's origin. (web-push-native's own leaves a non-default port
    /// out of `aud`; an origin keeps it.)
    /// The header is signed once per origin and reused for [`VAPID_REUSE`].
    fn vapid(&self, audience: &str) -> Result<String, String> {
        if let Some(cached) = self.vapid_headers.get(audience) {
            let (signed, header) = &*cached;
            if signed.elapsed() < VAPID_REUSE {
                return Ok(header.clone());
            }
        }
        let claims = Claims::create(VAPID_VALIDITY.into())
            .with_audience(audience)
            .with_subject(&self.settings.subject);
        let token = self.key.sign(claims).map_err(|e| e.to_string())?;
        let header = format!("vapid t={token}, k={}", self.public_key);
        if self.vapid_headers.len() >= VAPID_ORIGINS {
            self.vapid_headers.clear();
        }
        self.vapid_headers
            .insert(audience.to_owned(), (Instant::now(), header.clone()));
        Ok(header)
    }
}

/// The origin of a URL (RFC 6454): scheme, host, and the port unless it is
/// the scheme's default.
fn origin(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let host = uri.host()?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => 0,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The `X-Line-Retry-Key` of one notification: a UUID derived from (event,
/// follower), so a resend after a crash is the same request to LINE.
pub fn line_retry_key(event_id: &str, follower: &str) -> String {
    let h = Sha256::digest(format!("{event_id}/{follower}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5 layout (name-based)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

async fn send_line(
    http: &reqwest::Client,
    line: &LineSettings,
    change: &Change,
    to: &Delivery,
    line_to: &str,
    url: &str,
) -> Outcome {
    let mut text = pick(&change.text, to.lang).to_owned();
    if change.correction {
        text = match to.lang {
            Lang::Th => format!("แก้ไข: {text}"),
            Lang::En => format!("Correction: {text}"),
        };
    }
    let body = serde_json::json!({
        "to": line_to,
        "messages": [{ "type": "text", "text": clip(&format!("{text}\n{url}"), 5000) }],
    });
    let response = http
        .post(format!(
            "{}/v2/bot/message/push",
            line.api_base.trim_end_matches('/')
        ))
        .bearer_auth(&line.channel_token)
        .header(
            "X-Line-Retry-Key",
            line_retry_key(&change.event_id, &to.follower),
        )
        .json(&body)
        .send()
        .await;
    match response.map(|r| r.status().as_u16()) {
        // 409: LINE already accepted this retry key: it was sent.
        Ok(200..=299) | Ok(409) => Outcome::Sent,
        Ok(408 | 429 | 500..=599) => Outcome::Retry(None),
        Ok(status) => {
            tracing::warn!(status, "LINE refused a message");
            Outcome::Refused(status)
        }
        Err(e) => unreachable("LINE", e),
    }
}

async fn send_webhook(
    http: &reqwest::Client,
    hook: &WebhookTarget,
    change: &Change,
    to: &Delivery,
    reference: &str,
    url: &str,
) -> Outcome {
    let body = serde_json::to_vec(&Notification {
        user: reference.to_owned(),
        follower: to.follower.clone(),
        lang: to.lang,
        change: change.clone(),
        url: url.to_owned(),
    })
    .expect("serializes");
    let timestamp = chrono::Utc::now().timestamp().max(0) as u64;
    let response = http
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-sapha-timestamp", timestamp.to_string())
        .header(
            "x-sapha-signature",
            crate::sink::webhook::sign(&hook.secret, timestamp, &body),
        )
        .header(
            "idempotency-key",
            format!("{}:{}", change.event_id, to.follower),
        )
        .body(body)
        .send()
        .await;
    match response.map(|r| r.status().as_u16()) {
        Ok(200..=299) => Outcome::Sent,
        Ok(408 | 429 | 500..=599) => Outcome::Retry(None),
        Ok(status) => {
            tracing::warn!(status, "the webhook refused a notification");
            Outcome::Refused(status)
        }
        Err(e) => unreachable("the webhook", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_fit_rfc_8030() {
        assert_eq!(push_topic("b-2566-0123"), "b-2566-0123");
        let long = push_topic(&"b".repeat(64));
        assert_eq!(long.len(), 32);
        assert!(long
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn origins_keep_only_a_port_that_is_not_the_default() {
        let o = |u: &str| origin(&u.parse().unwrap()).unwrap();
        assert_eq!(
            o("https://fcm.googleapis.com/wp/x"),
            "https://fcm.googleapis.com"
        );
        assert_eq!(o("https://push.example:443/x"), "https://push.example");
        assert_eq!(o("http://127.0.0.1:8123/push/1"), "http://127.0.0.1:8123");
    }

    #[test]
    fn retry_keys_are_stable_uuids() {
        let k = line_retry_key("e-1", "f-1");
        assert_eq!(k, line_retry_key("e-1", "f-1"));
        assert_ne!(k, line_retry_key("e-1", "f-2"));
        assert_eq!(k.len(), 36);
        assert_eq!(&k[14..15], "5");
    }

    /// Channels with Web Push only, signing with `private`.
    fn web_push_only(private: String) -> Channels {
        Channels::new(
            Some(WebPushSettings {
                vapid_private_key: private,
                subject: "mailto:ops@example.org".into(),
                ttl: Duration::from_secs(60),
                per_host: 4,
            }),
            None,
            None,
            Duration::from_secs(5),
            Targets::default(),
        )
        .unwrap()
    }

    #[test]
    fn one_vapid_header_per_origin_is_reused() {
        let (private, _) = generate_vapid_key();
        let channels = web_push_only(private);
        let w = channels.webpush.as_ref().unwrap();
        let a = w.vapid("https://push.example").unwrap();
        // ES256 signatures are randomized: an equal header is the cached one.
        assert_eq!(a, w.vapid("https://push.example").unwrap());
        let b = w.vapid("https://other.example").unwrap();
        assert_ne!(a, b);
        // An old entry is signed again.
        let Some(old) = Instant::now().checked_sub(VAPID_REUSE * 2) else {
            return; // booted under two hours ago: no such old instant
        };
        w.vapid_headers
            .insert("https://push.example".into(), (old, a.clone()));
        assert_ne!(a, w.vapid("https://push.example").unwrap());
    }

    #[test]
    fn vapid_keys_round_trip() {
        let (private, public) = generate_vapid_key();
        let channels = web_push_only(private);
        assert_eq!(channels.vapid_public_key().unwrap(), public);
        assert_eq!(sapha_follows::decode_b64url(&public).unwrap().len(), 65);
    }
}
