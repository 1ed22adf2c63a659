//! The follow API: citizens follow bills and choose how to be told when one
//! moves (docs/NOTIFY.md). The hub only stores followers, in the NATS
//! key-value bucket `[follow] bucket`; `sapha notify` reads it and sends.
//!
//! - `GET /v1/push/key`: the VAPID public key browsers subscribe with.
//! - `POST /v1/followers`: a new follower; the answer holds its id and secret.
//! - `GET`, `PATCH`, `DELETE /v1/followers/{id}`; `PUT`, `DELETE
//!   /v1/followers/{id}/bills/{bill}`: with `Authorization: Bearer <secret>`.
//!
//! Every request takes a token from the caller's state API bucket (per IP);
//! creating a follower also counts against `followers_per_ip_per_hour`.

use crate::client_ip::client_ip;
use crate::server::{reject, App};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use dashmap::DashMap;
use futures::future::BoxFuture;
use sapha_follows::{Channel, FollowStore, Follower, InvalidFollow, Lang, StoreError};
use sapha_log::SourceError;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// Where the follow API keeps its followers: the NATS key-value bucket beside
/// the stream ([`crate::nats::NatsSource`]). It is the hub's own trait, not part
/// of [`sapha_log::EventSource`], so that the log traits do not depend on NATS.
/// A hub run without one (`sapha demo`, [`crate::run`]) answers the follow
/// API with 503.
pub(crate) trait FollowBackend: Send + Sync + 'static {
    /// Opens the follow store in bucket `bucket`: an existing one as it is; a
    /// missing one is created with the stream's replicas, or, before the
    /// stream exists, `replicas_without_stream` (0: automatic).
    fn open_follow_store<'a>(
        &'a self,
        bucket: &'a str,
        replicas_without_stream: usize,
    ) -> BoxFuture<'a, Result<FollowStore, SourceError>>;
}

/// The follow API's own state, shared by every request.
#[derive(Default)]
pub(crate) struct FollowApi {
    /// Where the store is opened from; `None`: the API answers 503.
    backend: Option<Box<dyn FollowBackend>>,
    /// Opened on first use (the bucket may be created then).
    store: tokio::sync::OnceCell<FollowStore>,
    /// Followers created per IP in the current hour: (count, hour started).
    created: DashMap<IpAddr, (u32, Instant)>,
    /// The same per integrator (a verified token's `sub`).
    created_by_integrator: DashMap<String, (u32, Instant)>,
}

impl FollowApi {
    pub(crate) fn new(backend: Option<Box<dyn FollowBackend>>) -> FollowApi {
        FollowApi {
            backend,
            ..Default::default()
        }
    }
}

/// The follow API's routes.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/push/key", get(push_key))
        .route("/v1/followers", post(create))
        .route("/v1/followers/{id}", get(read).patch(change).delete(remove))
        .route(
            "/v1/followers/{id}/bills/{bill}",
            put(follow_bill).delete(unfollow_bill),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFollower {
    lang: Lang,
    channel: Channel,
    #[serde(default)]
    bills: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowerChange {
    lang: Option<Lang>,
    channel: Option<Channel>,
}

/// A refusal, as the error body every Sapha API uses (boxed: a response is large).
struct Refused(Box<Response>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn refused(status: StatusCode, code: &str, message: &str) -> Refused {
    Refused(Box::new(reject(status, code, message)))
}

fn bad_parameter(parameter: &str, message: &str) -> Refused {
    let body = serde_json::json!({
        "type": "error", "code": "bad_parameter", "parameter": parameter, "message": message,
    });
    Refused(Box::new(
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
    ))
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        match e {
            StoreError::UnknownFollower => refused(
                StatusCode::NOT_FOUND,
                "unknown_follower",
                "no such follower",
            ),
            StoreError::BadSecret => refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the secret does not match this follower",
            ),
            StoreError::Invalid(InvalidFollow::UnknownBill(bill)) => unknown_bill("bills", &bill),
            StoreError::Invalid(e) => bad_parameter(e.field(), &e.to_string()),
            StoreError::Conflict => refused(StatusCode::CONFLICT, "conflict", &e.to_string()),
            StoreError::BadVapidKey => refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "push_key_invalid",
                "the Web Push key in the follow store is not a P-256 public key; a notifier publishes a good one when it starts",
            ),
            StoreError::Corrupt => refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "follower_unreadable",
                "this follower's record cannot be read; DELETE it and follow again",
            ),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "follow store unavailable");
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "follow_store_unavailable",
                    "the follow store cannot be reached; try again shortly",
                )
            }
        }
    }
}

type Answer = Result<Response, Refused>;

impl App {
    /// The checks every follow request passes: the API is on, the caller's
    /// rate, and the store is open.
    async fn follow_store(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        rate_exempt: bool,
    ) -> Result<FollowStore, Refused> {
        let config = &self.hub.config.follow;
        if !config.enabled {
            return Err(notifications_off());
        }
        let ip = client_ip(peer.ip(), headers, &self.hub.config.proxy.trusted);
        if !rate_exempt && !self.is_trusted_proxy(peer.ip()) && !self.state_rate_ok(ip) {
            return Err(refused(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; slow down",
            ));
        }
        let store = self
            .follows
            .store
            .get_or_try_init(|| async {
                let Some(backend) = &self.follows.backend else {
                    return Err(None);
                };
                match backend
                    .open_follow_store(&config.bucket, config.replicas)
                    .await
                {
                    Ok(store) => Ok(store),
                    Err(e) => Err(Some(e.to_string())),
                }
            })
            .await;
        match store {
            Ok(store) => Ok(store.clone()),
            Err(None) => Err(notifications_off()),
            Err(Some(reason)) => Err(StoreError::Unavailable(reason).into()),
        }
    }

    /// Counts a new follower against its IP's hourly allowance; `Err`: how
    /// long until the address's hour is over.
    fn may_create(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<(), Duration> {
        if self.is_trusted_proxy(peer.ip()) {
            return Ok(());
        }
        let ip = client_ip(peer.ip(), headers, &self.hub.config.proxy.trusted);
        let allowance = self.hub.config.follow.followers_per_ip_per_hour;
        count_hourly(&self.follows.created, ip, allowance)
    }

    /// Counts a new follower against an integrator's hourly allowance.
    fn may_create_as(&self, integrator: &str) -> Result<(), Duration> {
        let allowance = self.hub.config.follow.integrator_followers_per_hour;
        count_hourly(
            &self.follows.created_by_integrator,
            integrator.to_owned(),
            allowance,
        )
    }
}

/// Counts one creation against `key`'s allowance in its current hour (a
/// fixed window from its first creation); `Err`: when that hour ends.
fn count_hourly<K: std::hash::Hash + Eq>(
    map: &DashMap<K, (u32, Instant)>,
    key: K,
    allowance: u32,
) -> Result<(), Duration> {
    let now = Instant::now();
    if map.len() > 10_000 {
        map.retain(|_, (_, since)| now.duration_since(*since) < HOUR);
    }
    let mut entry = map.entry(key).or_insert((0, now));
    if now.duration_since(entry.1) >= HOUR {
        *entry = (0, now);
    }
    if entry.0 >= allowance {
        return Err(HOUR.saturating_sub(now.duration_since(entry.1)));
    }
    entry.0 += 1;
    Ok(())
}

/// 429 with `Retry-After` (whole seconds, rounded up, at least 1).
fn too_many(code: &str, message: &str, wait: Duration) -> Refused {
    let mut r = reject(StatusCode::TOO_MANY_REQUESTS, code, message);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    r.headers_mut()
        .insert(header::RETRY_AFTER, secs.max(1).into());
    Refused(Box::new(r))
}

/// The integrator named by a bearer token on `POST /v1/followers`, if one
/// is sent: 401 when it does not verify, 403 without the scope.
fn integrator(app: &App, headers: &HeaderMap) -> Result<Option<String>, Refused> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or_default();
    let scope = &app.hub.config.follow.integrator_scope;
    match app.auth.integrator(token, scope) {
        Ok(sub) => Ok(Some(sub)),
        Err(e @ crate::auth::Unauthorized::MissingScope(_)) => {
            Err(refused(StatusCode::FORBIDDEN, "forbidden", &e.to_string()))
        }
        Err(e) => {
            let mut r = reject(StatusCode::UNAUTHORIZED, "unauthorized", &e.to_string());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Err(Refused(Box::new(r)))
        }
    }
}

/// 400 `unknown_bill`: a bill the hub's state does not hold.
fn unknown_bill(parameter: &str, bill: &str) -> Refused {
    let body = serde_json::json!({
        "type": "error", "code": "unknown_bill", "parameter": parameter,
        "message": format!("no bill '{bill}' is known to this hub"),
    });
    Refused(Box::new(
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
    ))
}

/// A body must be JSON: `Content-Type: application/json` (or
/// `application/*+json`), so that a cross-site HTML form (which can send only
/// `text/plain`, `multipart/form-data` and `application/x-www-form-urlencoded`
/// without a preflight) cannot create or change followers. `required`: the
/// request takes a body; otherwise only a declared non-JSON type is refused.
fn require_json(headers: &HeaderMap, required: bool) -> Result<(), Refused> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let is_json = |t: &str| {
        let essence = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    };
    match declared {
        Some(t) if is_json(&t) => Ok(()),
        None if !required => Ok(()),
        _ => Err(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )),
    }
}

impl App {
    /// Refuses bills the state does not hold (503 `state_not_ready` while
    /// the state is still being built).
    fn known_bills(&self, bills: &[String], parameter: &str) -> Result<(), Refused> {
        for bill in bills {
            match self.hub.state.has_bill(bill) {
                Some(true) => {}
                Some(false) => return Err(unknown_bill(parameter, bill)),
                None => return Err(state_not_ready()),
            }
        }
        Ok(())
    }
}

fn state_not_ready() -> Refused {
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "state_not_ready",
        "the hub is still building its state from the stream; try again shortly",
    )
}

/// Refuses a channel no notifier has set up (400 `channel_unavailable`), or
/// any channel when no notifier has announced its channels yet (503
/// `notifications_off`).
async fn served(store: &FollowStore, channel: &Channel) -> Result<(), Refused> {
    match store.channels().await? {
        None => Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "notifications_off",
            "no notifier has started yet, so no channel is delivered",
        )),
        Some(kinds) if !kinds.iter().any(|k| k == channel.kind()) => {
            let body = serde_json::json!({
                "type": "error", "code": "channel_unavailable", "parameter": "channel.type",
                "message": format!("no notifier sends '{}' notifications; this hub delivers: {}",
                    channel.kind(), kinds.join(", ")),
            });
            Err(Refused(Box::new(
                (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
            )))
        }
        Some(_) => Ok(()),
    }
}

fn notifications_off() -> Refused {
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "notifications_off",
        "this hub does not take followers (no notifier is set up)",
    )
}

/// The follower's secret from `Authorization: Bearer <secret>`.
fn secret(headers: &HeaderMap) -> Result<String, Refused> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            let mut r = reject(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the follower's secret as Authorization: Bearer <secret>",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Refused(Box::new(r))
        })
}

/// Reads a JSON body of at most `[follow] max_body_bytes`.
async fn json_body<T: serde::de::DeserializeOwned>(app: &App, body: Body) -> Result<T, Refused> {
    let limit = app.hub.config.follow.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("the request body is larger than {limit} bytes"),
        )
    })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let parameter = if path == "." { "body" } else { path.as_str() };
        bad_parameter(parameter, &e.inner().to_string())
    })
}

fn public(follower: &Follower) -> serde_json::Value {
    serde_json::json!({
        "id": follower.id,
        "lang": follower.lang,
        "channel": follower.channel.kind(),
        "bills": follower.bills,
        "created_at": follower.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn ok(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

async fn push_key(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    let store = app.follow_store(peer, &headers, false).await?;
    match store.vapid_public_key().await? {
        Some(key) => Ok(ok(
            StatusCode::OK,
            serde_json::json!({ "vapid_public_key": key }),
        )),
        None => Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "notifications_off",
            "no notifier has published its Web Push key yet",
        )),
    }
}

async fn create(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    // A verified integrator has its own hourly allowance and skips the
    // per-IP request rate (its backend may register followers in bursts).
    let integrator = match integrator(&app, &headers) {
        Ok(who) => who,
        Err(refusal) => {
            // A bad token still counts against the address's request rate.
            app.follow_store(peer, &headers, false).await?;
            return Err(refusal);
        }
    };
    let store = app
        .follow_store(peer, &headers, integrator.is_some())
        .await?;
    require_json(&headers, true)?;
    let new: NewFollower = json_body(&app, body).await?;
    let limits = app.hub.config.follow.limits();
    // Bad input does not count against the address's allowance.
    sapha_follows::check_channel(&new.channel, &limits).map_err(StoreError::from)?;
    let bills = sapha_follows::check_bills(&new.bills, &limits).map_err(StoreError::from)?;
    app.known_bills(&bills, "bills")?;
    served(&store, &new.channel).await?;
    match &integrator {
        Some(name) => app.may_create_as(name).map_err(|wait| {
            too_many(
                "too_many_followers_from_integrator",
                "this integrator created its followers_per_hour this hour",
                wait,
            )
        })?,
        None => app.may_create(peer, &headers).map_err(|wait| {
            too_many(
                "too_many_followers_from_ip",
                "this address created too many followers this hour",
                wait,
            )
        })?,
    }
    let (follower, secret) = store
        .create(new.lang, new.channel, &new.bills, &limits)
        .await?;
    let mut body = public(&follower);
    body["secret"] = secret.into();
    Ok(ok(StatusCode::CREATED, body))
}

async fn read(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let store = app.follow_store(peer, &headers, false).await?;
    let follower = store.authorize(&id, &secret(&headers)?).await?;
    Ok(ok(StatusCode::OK, public(&follower)))
}

async fn change(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let store = app.follow_store(peer, &headers, false).await?;
    let secret = secret(&headers)?;
    require_json(&headers, true)?;
    let change: FollowerChange = json_body(&app, body).await?;
    let limits = app.hub.config.follow.limits();
    if let Some(channel) = &change.channel {
        sapha_follows::check_channel(channel, &limits).map_err(StoreError::from)?;
        served(&store, channel).await?;
    }
    let follower = store
        .update(&id, &secret, &limits, |f| {
            if let Some(lang) = change.lang {
                f.lang = lang;
            }
            if let Some(channel) = &change.channel {
                f.channel = channel.clone();
            }
            Ok(())
        })
        .await?;
    Ok(ok(StatusCode::OK, public(&follower)))
}

async fn remove(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let store = app.follow_store(peer, &headers, false).await?;
    store.delete(&id, &secret(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn follow_bill(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, bill)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    require_json(&headers, false)?;
    let state = app.hub.state.clone();
    let answer = edit_bills(app, peer, id, headers, true, {
        let bill = bill.clone();
        move |bills: &mut Vec<String>| {
            sapha_follows::check_bill(&bill)?;
            if state.has_bill(&bill) == Some(false) {
                return Err(InvalidFollow::UnknownBill(bill.clone()));
            }
            if !bills.contains(&bill) {
                bills.push(bill.clone());
            }
            Ok(())
        }
    })
    .await;
    match answer {
        Err(EditError::Store(StoreError::Invalid(InvalidFollow::UnknownBill(b)))) => {
            Err(unknown_bill("bill_id", &b))
        }
        other => other.map_err(Refused::from),
    }
}

async fn unfollow_bill(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, bill)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    edit_bills(
        app,
        peer,
        id,
        headers,
        false,
        move |bills: &mut Vec<String>| {
            bills.retain(|b| *b != bill);
            Ok(())
        },
    )
    .await
    .map_err(Refused::from)
}

/// Why an edit of the bills failed: a refusal before the store, or the
/// store's own error (kept, so a caller can word it for its path).
enum EditError {
    Refused(Refused),
    Store(StoreError),
}

impl From<Refused> for EditError {
    fn from(r: Refused) -> EditError {
        EditError::Refused(r)
    }
}

impl From<EditError> for Refused {
    fn from(e: EditError) -> Refused {
        match e {
            EditError::Refused(r) => r,
            EditError::Store(e) => e.into(),
        }
    }
}

async fn edit_bills(
    app: App,
    peer: SocketAddr,
    id: String,
    headers: HeaderMap,
    needs_state: bool,
    edit: impl Fn(&mut Vec<String>) -> Result<(), InvalidFollow>,
) -> Result<Response, EditError> {
    let store = app.follow_store(peer, &headers, false).await?;
    let secret = secret(&headers)?;
    if needs_state && !app.hub.state.is_ready() {
        return Err(state_not_ready().into());
    }
    let limits = app.hub.config.follow.limits();
    let follower = store
        .update(&id, &secret, &limits, |f| edit(&mut f.bills))
        .await
        .map_err(EditError::Store)?;
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "bills": follower.bills }),
    ))
}
